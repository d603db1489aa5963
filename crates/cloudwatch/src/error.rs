//! Error construction for the CloudWatch API: the modelled exception kinds, the unmodelled
//! `ValidationError` that GetMetricData answers with, accumulation of several parameter errors into
//! one response (CloudWatch lists every offending parameter, one per line), and internal failures.

use opsloop_core::ApiError;

/// `InvalidParameterValue` (HTTP 400).
pub const INVALID_VALUE: &str = "InvalidParameterValueException";
/// `MissingParameter` (HTTP 400).
pub const MISSING: &str = "MissingRequiredParameterException";
/// `InvalidParameterCombination` (HTTP 400).
pub const COMBINATION: &str = "InvalidParameterCombinationException";
/// GetMetricData's validation failures: not in the model, so the wire code is the kind itself.
pub const VALIDATION: &str = "ValidationError";
/// `InvalidNextToken` (HTTP 400).
pub const INVALID_NEXT_TOKEN: &str = "InvalidNextToken";
/// `ResourceNotFoundException` (HTTP 404).
pub const NOT_FOUND: &str = "ResourceNotFoundException";

/// Most messages joined into one error response; CloudWatch reports every bad member, but a
/// bounded response is kinder to clients than a megabyte of repeated lines.
const MAX_MESSAGES: usize = 100;

pub fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::new(INVALID_VALUE, message)
}

pub fn missing(path: &str) -> ApiError {
    ApiError::new(MISSING, missing_message(path))
}

pub fn missing_message(path: &str) -> String {
    format!("The parameter {path} is required.")
}

pub fn combination(message: impl Into<String>) -> ApiError {
    ApiError::new(COMBINATION, message)
}

pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(VALIDATION, message)
}

/// A value that failed a semantic check, in CloudWatch's wording.
pub fn bad_value_message(value: &str, path: &str) -> String {
    format!("The value {value} for parameter {path} is invalid.")
}

/// Several parameter errors found in one request. The response carries the kind of the first error
/// and the messages of every error of that kind, newline-separated, as CloudWatch does.
#[derive(Debug, Default)]
pub struct ErrorList {
    errors: Vec<(&'static str, String)>,
}

impl ErrorList {
    pub fn new() -> Self {
        ErrorList::default()
    }

    pub fn push(&mut self, kind: &'static str, message: String) {
        if self.errors.len() < MAX_MESSAGES {
            self.errors.push((kind, message));
        }
    }

    pub fn invalid(&mut self, message: String) {
        self.push(INVALID_VALUE, message);
    }

    pub fn combination(&mut self, message: String) {
        self.push(COMBINATION, message);
    }

    pub fn missing(&mut self, path: &str) {
        self.push(MISSING, missing_message(path));
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else the combined error.
    pub fn into_result(self) -> Result<(), ApiError> {
        let Some(&(kind, _)) = self.errors.first() else {
            return Ok(());
        };
        let message = self
            .errors
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Err(ApiError::new(kind, message))
    }
}

/// A failure of the machinery behind the API (stores, tasks). Logged, then answered with a 500
/// that reveals nothing internal.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("metric store: {0}")]
    Tsdb(#[from] opsloop_tsdb::TsdbError),
    #[error("control store: {0}")]
    Store(#[from] opsloop_store::StoreError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
}

impl From<InternalError> for ApiError {
    fn from(e: InternalError) -> Self {
        tracing::error!(error = %e, "cloudwatch internal failure");
        ApiError::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_list_joins_messages_of_the_first_kind() {
        let mut list = ErrorList::new();
        list.invalid("first".into());
        list.combination("other kind".into());
        list.invalid("second".into());
        let err = list.into_result().unwrap_err();
        assert_eq!(err.kind, INVALID_VALUE);
        assert_eq!(err.message, "first\nsecond");
    }

    #[test]
    fn empty_error_list_is_ok() {
        assert!(ErrorList::new().into_result().is_ok());
    }

    #[test]
    fn error_list_is_bounded() {
        let mut list = ErrorList::new();
        for i in 0..1000 {
            list.invalid(format!("m{i}"));
        }
        let err = list.into_result().unwrap_err();
        assert_eq!(err.message.lines().count(), MAX_MESSAGES);
    }
}
