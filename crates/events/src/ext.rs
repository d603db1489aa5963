//! Connections, API destinations, archives and replays (SKELETON: owned by the events-ext helper;
//! the signatures of the `pub` functions here are what the core of this crate calls and must stay).

use opsloop_core::{ApiError, RequestContext, Value};

use crate::Events;

/// The operations this module answers (the core dispatches them here).
pub const OPERATIONS: &[&str] = &[
    "CreateConnection",
    "DescribeConnection",
    "UpdateConnection",
    "DeleteConnection",
    "ListConnections",
    "DeauthorizeConnection",
    "CreateApiDestination",
    "DescribeApiDestination",
    "UpdateApiDestination",
    "DeleteApiDestination",
    "ListApiDestinations",
    "CreateArchive",
    "DescribeArchive",
    "UpdateArchive",
    "DeleteArchive",
    "ListArchives",
    "StartReplay",
    "DescribeReplay",
    "CancelReplay",
    "ListReplays",
];

/// In-memory state of this module (caches, OAuth tokens, rate limiters, running replays).
#[derive(Default)]
pub struct ExtState {}

/// Answer one of [`OPERATIONS`].
pub async fn handle(
    events: &Events,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let _ = (events, input);
    Err(ApiError::with_status(
        "NotImplemented",
        501,
        format!(
            "Operation {} is not implemented by this opsloop release.",
            ctx.operation
        ),
    ))
}

/// Why a delivery to an API destination failed.
#[derive(Debug, Clone)]
pub struct InvokeFailure {
    /// Worth retrying (5xx, 429, connection errors, rate limit) — or not (4xx, missing destination).
    pub retryable: bool,
    pub message: String,
}

/// Deliver one target invocation to API destination `arn`: `body` is the (already transformed)
/// input, `http_parameters` the target's `HttpParameters` (PathParameterValues, HeaderParameters,
/// QueryStringParameters) or `Value::Null`. Applies the connection's auth and the destination's
/// invocation rate limit.
pub async fn invoke_api_destination(
    events: &Events,
    account_id: &str,
    region: &str,
    arn: &str,
    body: String,
    http_parameters: &Value,
) -> Result<(), InvokeFailure> {
    let _ = (events, account_id, region, arn, body, http_parameters);
    Err(InvokeFailure {
        retryable: false,
        message: "API destinations are not implemented".into(),
    })
}

/// An event was accepted on bus `bus_arn` (after PutEvents made it durable): record it in every
/// archive of that bus whose pattern matches. Must be durable when it returns Ok.
pub async fn archive_event(
    events: &Events,
    account_id: &str,
    region: &str,
    bus_arn: &str,
    event: &Value,
) -> Result<(), ApiError> {
    let _ = (events, account_id, region, bus_arn, event);
    Ok(())
}
