//! Error construction for the SNS API: the modelled exception kinds (the wire layer maps each kind to
//! its awsQuery code, e.g. `InvalidParameterException` → `InvalidParameter`), SNS's message wording
//! (`Invalid parameter: <what>`), and internal failures that are logged and answered with a 500.

use opsloop_core::ApiError;

pub const INVALID_PARAMETER: &str = "InvalidParameterException";
pub const INVALID_PARAMETER_VALUE: &str = "InvalidParameterValueException";
pub const NOT_FOUND: &str = "NotFoundException";
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
pub const AUTHORIZATION: &str = "AuthorizationErrorException";
pub const TAG_LIMIT: &str = "TagLimitExceededException";
pub const TOPIC_LIMIT: &str = "TopicLimitExceededException";
pub const SUBSCRIPTION_LIMIT: &str = "SubscriptionLimitExceededException";
pub const FILTER_POLICY_LIMIT: &str = "FilterPolicyLimitExceededException";
pub const BATCH_IDS_NOT_DISTINCT: &str = "BatchEntryIdsNotDistinctException";
pub const BATCH_TOO_MANY: &str = "TooManyEntriesInBatchRequestException";
pub const BATCH_EMPTY: &str = "EmptyBatchRequestException";
pub const BATCH_INVALID_ID: &str = "InvalidBatchEntryIdException";
pub const BATCH_TOO_LONG: &str = "BatchRequestTooLongException";

/// `InvalidParameter` with SNS's `Invalid parameter: ...` prefix.
pub fn invalid(what: impl AsRef<str>) -> ApiError {
    ApiError::new(
        INVALID_PARAMETER,
        format!("Invalid parameter: {}", what.as_ref()),
    )
}

/// `InvalidParameter` for a named parameter with a reason: `Invalid parameter: X Reason: Y`.
pub fn invalid_reason(param: &str, reason: impl AsRef<str>) -> ApiError {
    invalid(format!("{param} Reason: {}", reason.as_ref()))
}

/// `ParameterValueInvalid` (the modelled `InvalidParameterValueException`).
pub fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::new(INVALID_PARAMETER_VALUE, message)
}

pub fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(NOT_FOUND, message)
}

pub fn topic_not_found() -> ApiError {
    not_found("Topic does not exist")
}

pub fn subscription_not_found() -> ApiError {
    not_found("Subscription does not exist")
}

pub fn resource_not_found() -> ApiError {
    ApiError::new(RESOURCE_NOT_FOUND, "Resource does not exist")
}

/// A failure of the machinery behind the API (store, tasks, corrupt rows). Logged, then answered
/// with a 500 that reveals nothing internal.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("control store: {0}")]
    Store(#[from] opsloop_store::StoreError),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
    #[error("signing: {0}")]
    Signing(String),
}

impl From<serde_json::Error> for InternalError {
    fn from(e: serde_json::Error) -> Self {
        InternalError::Corrupt(e.to_string())
    }
}

impl From<InternalError> for ApiError {
    fn from(e: InternalError) -> Self {
        tracing::error!(error = %e, "sns internal failure");
        ApiError::internal()
    }
}

/// A store failure as an API error.
pub fn store(e: opsloop_store::StoreError) -> ApiError {
    InternalError::from(e).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameter_wording() {
        let e = invalid("Topic Name");
        assert_eq!(e.kind, INVALID_PARAMETER);
        assert_eq!(e.message, "Invalid parameter: Topic Name");
        let e = invalid_reason("Attributes", "bad");
        assert_eq!(e.message, "Invalid parameter: Attributes Reason: bad");
    }

    #[test]
    fn internal_errors_reveal_nothing() {
        let e: ApiError = InternalError::Corrupt("secret detail".into()).into();
        assert_eq!(e.status, Some(500));
        assert!(!e.message.contains("secret"));
    }
}
