//! Incident Manager: replication set, response plans, incidents from alarms/rules/API with dedupe, timelines, related items, runbooks and engagements, auto-resolve and conditional paging.
//!
//! (SKELETON: the constructor and lifecycle signatures below are what `opsloop-server` calls and
//! must stay; everything else is the owner's to build.)

use std::path::Path;
use std::sync::Arc;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::ControlStore;

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/ssm-incidents-2018-05-10.json");

/// The SSM Incidents service.
pub struct Incidents {
    #[allow(dead_code)]
    control: Arc<dyn ControlStore>,
    #[allow(dead_code)]
    directory: Arc<Directory>,
}

impl Incidents {
    /// Open the service over the control store; `data_dir` is the server's data directory (for any
    /// files of its own, under a subdirectory); peers are reached through `directory`. Cheap: the
    /// server must be healthy within milliseconds.
    pub fn open(
        data_dir: &Path,
        control: Arc<dyn ControlStore>,
        directory: Arc<Directory>,
    ) -> Result<Incidents, String> {
        let _ = data_dir;
        Ok(Incidents { control, directory })
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
        let _ = input;
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

impl Service for Incidents {
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
