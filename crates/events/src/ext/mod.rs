//! Connections, API destinations, archives and replays: the parts of EventBridge that are not buses,
//! rules and delivery. The core of the crate dispatches [`OPERATIONS`] to [`handle`], calls
//! [`invoke_api_destination`] to deliver to an API-destination target and [`archive_event`] for every
//! accepted event; replays call back into the core through `Events::replay_event`.
//!
//! All state lives in the control store (tables named `events.ext.*`); [`ExtState`] only holds
//! caches (OAuth tokens, rate-limit buckets, the archives of each bus, the HTTP client) and the
//! handle of the background worker that runs replays and archive retention.

mod archives;
mod auth;
mod common;
mod connections;
mod destinations;
mod http;
mod params;
mod replays;
mod secrets;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};

use crate::Events;

pub(crate) use common::Shared;

/// The internal operation the background worker invokes through the `Directory` to get hold of
/// the service (it runs replays and retention). Not in the model, so no wire request can name it.
pub(crate) const TICK_OPERATION: &str = "OpsloopExtTick";

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
    TICK_OPERATION,
];

/// In-memory state of this module (caches, OAuth tokens, rate limiters, the replay worker).
#[derive(Default)]
pub struct ExtState {
    pub(crate) shared: Arc<Shared>,
}

/// Start the background worker (replays, archive retention) if it is not running. Called by every
/// entry point of this module; the core may also call it from `Events::start` so that replays
/// interrupted by a restart resume without waiting for the first request.
pub fn start(events: &Events) {
    worker::ensure_started(events);
}

/// Answer one of [`OPERATIONS`].
pub async fn handle(
    events: &Events,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    if ctx.operation == TICK_OPERATION {
        // Only the worker, in process, reaches this (the wire layer knows no such operation).
        if ctx.request_id != "internal" || ctx.access_key_id.is_some() {
            return Err(ApiError::new(
                "UnknownOperationException",
                "Unknown operation",
            ));
        }
        return worker::tick(events).await;
    }
    worker::ensure_started(events);
    let account = ctx.account_id.as_str();
    let region = ctx.region.as_str();
    match ctx.operation.as_str() {
        "CreateConnection" => connections::create(events, account, region, &input).await,
        "DescribeConnection" => connections::describe(events, account, region, &input),
        "UpdateConnection" => connections::update(events, account, region, &input).await,
        "DeleteConnection" => connections::delete(events, account, region, &input),
        "ListConnections" => connections::list(events, account, region, &input),
        "DeauthorizeConnection" => connections::deauthorize(events, account, region, &input),
        "CreateApiDestination" => destinations::create(events, account, region, &input),
        "DescribeApiDestination" => destinations::describe(events, account, region, &input),
        "UpdateApiDestination" => destinations::update(events, account, region, &input),
        "DeleteApiDestination" => destinations::delete(events, account, region, &input),
        "ListApiDestinations" => destinations::list(events, account, region, &input),
        "CreateArchive" => archives::create(events, account, region, &input).await,
        "DescribeArchive" => archives::describe(events, account, region, &input),
        "UpdateArchive" => archives::update(events, account, region, &input),
        "DeleteArchive" => archives::delete(events, account, region, &input),
        "ListArchives" => archives::list(events, account, region, &input),
        "StartReplay" => replays::start(events, account, region, &input),
        "DescribeReplay" => replays::describe(events, account, region, &input),
        "CancelReplay" => replays::cancel(events, account, region, &input),
        "ListReplays" => replays::list(events, account, region, &input),
        other => Err(ApiError::with_status(
            "NotImplemented",
            501,
            format!("Operation {other} is not implemented by this opsloop release."),
        )),
    }
}

/// Why a delivery to an API destination failed.
#[derive(Debug, Clone)]
pub struct InvokeFailure {
    /// Worth retrying (5xx, 429, connection errors, rate limit) — or not (4xx, missing destination).
    pub retryable: bool,
    pub message: String,
}

impl InvokeFailure {
    pub(crate) fn retry(message: impl Into<String>) -> Self {
        InvokeFailure {
            retryable: true,
            message: message.into(),
        }
    }
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        InvokeFailure {
            retryable: false,
            message: message.into(),
        }
    }
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
    worker::ensure_started(events);
    destinations::invoke(events, account_id, region, arn, body, http_parameters).await
}

/// Might bus `bus_arn` have archives? (`true` when that cannot be told: `archive_event` decides.)
pub fn has_archives(events: &Events, bus_arn: &str) -> bool {
    archives::has_archives(events, bus_arn).unwrap_or(true)
}

/// An event was accepted on bus `bus_arn` (after PutEvents made it durable): record it in every
/// archive of that bus whose pattern matches. Must be durable when it returns Ok.
pub async fn archive_event(
    events: &Events,
    account_id: &str,
    region: &str,
    bus_arn: &str,
    event: &crate::event::Event,
) -> Result<(), ApiError> {
    worker::ensure_started(events);
    if !archives::has_archives(events, bus_arn)? {
        return Ok(());
    }
    archives::archive_event(events, account_id, region, bus_arn, event.value()).await
}
