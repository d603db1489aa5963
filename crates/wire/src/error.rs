//! Rendering an [`opsloop_core::ApiError`] in each protocol. (SKELETON)
