//! EventBridge Scheduler: schedules and schedule groups with at/rate/cron expressions, time zones, flexible windows and durable, exactly-timed firing.
//!
//! - `api`: the REST-JSON operations (schedules, groups, tags), over the control store.
//! - `input`: validation of schedule inputs and planning of each schedule's next fire.
//! - `timer`: the firing loop — fires every schedule whose due instant has come, recording the
//!   fire and the schedule's next due instant in one atomic batch.
//! - `delivery`: the outbox dispatcher — calls each fire's target through the [`Directory`],
//!   retries per `RetryPolicy`, then dead-letters.
//! - `target`: what target ARNs mean in opsloop and the call that delivers a fire.
//! - `model`: records, tables and keys.
//!
//! Durability: a fire is recorded (delivery row inserted, schedule moved to its next occurrence)
//! in one `ControlStore::batch`, so a restart neither repeats nor loses it; an occurrence that
//! came while the server was down is fired once when it starts (see `timer`).

mod api;
mod delivery;
mod input;
mod model;
mod target;
mod timer;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::ControlStore;
use tokio::sync::{watch, Notify};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/scheduler-2021-06-30.json");

/// State shared by the API, the timer and the dispatcher.
pub(crate) struct Inner {
    pub store: Arc<dyn ControlStore>,
    pub directory: Arc<Directory>,
    /// Serializes read-modify-write of schedule rows between the API and the timer.
    pub write: parking_lot::Mutex<()>,
    /// Wakes the timer when a schedule's due instant may have moved earlier.
    pub timer_wake: Notify,
    /// Wakes the dispatcher when deliveries were queued.
    pub outbox_wake: Notify,
    /// Deliveries being attempted right now (by id), so one is never attempted twice at once.
    pub in_flight: parking_lot::Mutex<HashSet<String>>,
}

/// The Scheduler service.
pub struct Scheduler {
    inner: Arc<Inner>,
    started: AtomicBool,
    stop: watch::Sender<bool>,
}

impl Scheduler {
    /// Open the service over the control store; `data_dir` is the server's data directory (for any
    /// files of its own, under a subdirectory); peers are reached through `directory`. Cheap: the
    /// server must be healthy within milliseconds.
    pub fn open(
        data_dir: &Path,
        control: Arc<dyn ControlStore>,
        directory: Arc<Directory>,
    ) -> Result<Scheduler, String> {
        let _ = data_dir; // everything lives in the control store
        let (stop, _) = watch::channel(false);
        Ok(Scheduler {
            inner: Arc::new(Inner {
                store: control,
                directory,
                write: parking_lot::Mutex::new(()),
                timer_wake: Notify::new(),
                outbox_wake: Notify::new(),
                in_flight: parking_lot::Mutex::new(HashSet::new()),
            }),
            started: AtomicBool::new(false),
            stop,
        })
    }

    /// Start background work on the current tokio runtime. Called once.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        handle.spawn(timer::run(self.inner.clone(), self.stop.subscribe()));
        handle.spawn(delivery::run(self.inner.clone(), self.stop.subscribe()));
        Ok(())
    }

    /// The control store was wiped: drop in-memory state derived from it.
    pub fn reset(&self) {
        self.inner.in_flight.lock().clear();
        self.inner.timer_wake.notify_one();
    }

    /// Stop background work (blocking; called once at shutdown).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let inner = self.inner.clone();
        let owned = ctx.clone();
        let result = tokio::task::spawn_blocking(move || api::dispatch(&inner, &owned, input))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, operation = %ctx.operation, "scheduler operation task failed");
                Err(ApiError::internal())
            });
        if result.is_ok() {
            self.inner.timer_wake.notify_one();
        }
        result
    }
}

impl Service for Scheduler {
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

#[cfg(test)]
mod tests;
