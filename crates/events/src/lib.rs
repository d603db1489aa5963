//! EventBridge: event buses, rules, the pattern matcher, targets, durable at-least-once delivery, archives and replay, connections and API destinations.
//!
//! (SKELETON: the constructor and lifecycle signatures below are what `opsloop-server` calls and
//! must stay; everything else is the owner's to build.)

pub mod ext;

use std::path::Path;
use std::sync::Arc;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::ControlStore;

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/events-2015-10-07.json");

/// The EventBridge service.
pub struct Events {
    #[allow(dead_code)]
    pub(crate) control: Arc<dyn ControlStore>,
    #[allow(dead_code)]
    pub(crate) directory: Arc<Directory>,
    /// State of the `ext` module (connections, API destinations, archives, replays).
    #[allow(dead_code)]
    pub(crate) ext: ext::ExtState,
}

impl Events {
    /// Open the service over the control store; `data_dir` is the server's data directory (for any
    /// files of its own, under a subdirectory); peers are reached through `directory`. Cheap: the
    /// server must be healthy within milliseconds.
    pub fn open(
        data_dir: &Path,
        control: Arc<dyn ControlStore>,
        directory: Arc<Directory>,
    ) -> Result<Events, String> {
        let _ = data_dir;
        Ok(Events {
            control,
            directory,
            ext: ext::ExtState::default(),
        })
    }

    /// Start background work on the current tokio runtime. Called once.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        Ok(())
    }

    /// The control store was wiped: drop in-memory state derived from it.
    pub fn reset(&self) {}

    /// Stop background work (blocking; called once at shutdown).
    pub fn shutdown(&self) {}

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        if ext::OPERATIONS.contains(&ctx.operation.as_str()) {
            return ext::handle(self, ctx, input).await;
        }
        Err(ApiError::with_status(
            "NotImplemented",
            501,
            format!(
                "Operation {} is not implemented by this opsloop release.",
                ctx.operation
            ),
        ))
    }
}

impl Service for Events {
    fn model_json(&self) -> &'static str {
        MODEL_JSON
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(self.handle(ctx, input))
    }
}

/// Where a replayed event goes (called by `ext` for each archived event of a replay).
#[derive(Debug, Clone)]
pub struct ReplayDelivery<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    /// Name of the bus the replay targets (`Destination.Arn`).
    pub bus_name: &'a str,
    /// `Destination.FilterArns`: only these rules (all rules of the bus when empty).
    pub rule_arns: &'a [String],
    /// The replay's name, set as the event's `replay-name` field.
    pub replay_name: &'a str,
}

impl Events {
    /// Match an archived `event` against the destination bus's rules and enqueue deliveries
    /// durably, as for PutEvents (but not archived again). Implemented by the core owner.
    pub async fn replay_event(
        &self,
        to: &ReplayDelivery<'_>,
        event: Value,
    ) -> Result<(), ApiError> {
        let _ = (to, event);
        Err(ApiError::internal())
    }
}
