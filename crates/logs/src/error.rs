//! The CloudWatch Logs errors this crate answers with (kinds are the model's exception shapes) and
//! small helpers for reading members of an input document.

use opsloop_core::{ApiError, Value};

use crate::storage::StorageError;

pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", message)
}

pub fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new("ResourceNotFoundException", message)
}

pub fn group_not_found() -> ApiError {
    not_found("The specified log group does not exist.")
}

pub fn stream_not_found() -> ApiError {
    not_found("The specified log stream does not exist.")
}

pub fn already_exists(message: impl Into<String>) -> ApiError {
    ApiError::new("ResourceAlreadyExistsException", message)
}

pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new("LimitExceededException", message)
}

pub fn malformed_query(message: impl Into<String>) -> ApiError {
    ApiError::new("MalformedQueryException", message)
}

/// An internal failure: logged here, answered as a bare 500.
pub fn internal(cause: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %cause, "logs internal failure");
    ApiError::internal()
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        internal(e)
    }
}

/// Errors of the control store map to internal failures.
pub fn store_err(e: opsloop_store::StoreError) -> ApiError {
    internal(e)
}

/// A string member, if present.
pub fn opt_str<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// A required string member.
pub fn req_str<'a>(input: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    opt_str(input, name).ok_or_else(|| {
        ApiError::new(
            "InvalidParameterException",
            format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

/// An integer member, if present.
pub fn opt_i64(input: &Value, name: &str) -> Option<i64> {
    input
        .get(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// A boolean member, if present.
pub fn opt_bool(input: &Value, name: &str) -> Option<bool> {
    input.get(name).and_then(Value::as_bool)
}

/// A list-of-strings member (absent → empty).
pub fn str_list(input: &Value, name: &str) -> Vec<String> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
