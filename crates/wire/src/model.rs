//! The botocore service model, parsed: operations, shapes, traits, protocols.
//! (SKELETON: implementation pending.)

/// A parsed botocore `service-2.json`.
#[derive(Debug)]
pub struct Model {}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("malformed service model: {0}")]
    Malformed(String),
    #[error("service model conflicts with a registered one: {0}")]
    Conflict(String),
}
