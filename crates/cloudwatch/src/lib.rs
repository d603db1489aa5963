//! CloudWatch metrics service logic. (SKELETON)

pub mod math;
