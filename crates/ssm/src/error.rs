//! Error construction for the SSM API: the modelled exception kinds (the wire layer maps each kind to
//! its awsJson code, e.g. `ParameterNotFound`), AWS's message wording, and internal failures (store,
//! corrupt rows, crypto) that are logged and answered with a 500 revealing nothing.

use opsloop_core::ApiError;

/// `ValidationException` with a message (SSM's generic bad-input error).
pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", message)
}

/// An error of a modelled kind.
pub fn err(kind: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(kind, message)
}

pub fn invalid_next_token() -> ApiError {
    err("InvalidNextToken", "The specified token isn't valid.")
}

/// A failure of the machinery behind the API. Logged, then answered with a 500.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("control store: {0}")]
    Store(#[from] opsloop_store::StoreError),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
    #[error("parameter encryption: {0}")]
    Crypto(String),
}

impl From<serde_json::Error> for InternalError {
    fn from(e: serde_json::Error) -> Self {
        InternalError::Corrupt(e.to_string())
    }
}

impl From<InternalError> for ApiError {
    fn from(e: InternalError) -> Self {
        tracing::error!(error = %e, "ssm internal failure");
        ApiError::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_reveal_nothing() {
        let e: ApiError = InternalError::Corrupt("secret detail".into()).into();
        assert_eq!(e.status, Some(500));
        assert!(!e.message.contains("secret"));
    }

    #[test]
    fn kinds_are_the_modelled_shapes() {
        assert_eq!(err("ParameterNotFound", "x").kind, "ParameterNotFound");
        assert_eq!(validation("x").kind, "ValidationException");
        assert_eq!(invalid_next_token().kind, "InvalidNextToken");
    }
}
