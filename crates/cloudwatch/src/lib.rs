//! CloudWatch metrics service logic. (SKELETON)
