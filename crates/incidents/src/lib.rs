//! Incident Manager (`ssm-incidents`, REST-JSON): replication set, response plans, incidents from
//! StartIncident, CloudWatch alarm actions and EventBridge rule targets with dedupe, timelines,
//! related items, runbooks and engagements — plus opsloop's auto-resolve, conditional engagement
//! and chat updates.
//!
//! Modules: `plans` (replication set, response plans, tags, policies), `records` (incidents,
//! related items, findings), `timeline` (timeline events), `engine` (durable jobs and the watch
//! over open incidents), `util` (tables, errors, store access, pagination). This file holds the
//! service, operation dispatch and the background loop.

mod engine;
mod plans;
mod records;
mod timeline;
mod util;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::ControlStore;
use parking_lot::Mutex;
use tokio::sync::Notify;

pub use records::{TAG_AUTO_RESOLVE, TAG_ENGAGE_DELAY};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/ssm-incidents-2018-05-10.json");

/// Environment variable, for tests only: the length of one `opsloop:engage-delay-minutes` minute
/// in seconds (default 60).
pub const MINUTE_SECONDS_ENV: &str = "OPSLOOP_INCIDENTS_MINUTE_SECONDS";

/// How often the loop looks for due jobs when nothing woke it.
const POLL: Duration = Duration::from_millis(200);
/// How often open incidents' alarms and runbooks are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(1000);

/// State shared by the handlers and the background loop.
pub(crate) struct Inner {
    pub control: Arc<dyn ControlStore>,
    pub directory: Arc<Directory>,
    /// Seconds in one engagement-delay minute (60 unless a test shrinks it).
    pub minute_seconds: f64,
    /// Serialises read-modify-write of records, events and jobs.
    pub lock: Mutex<()>,
    pub wake: Notify,
    pub stopping: AtomicBool,
}

/// The SSM Incidents service.
pub struct Incidents {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
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
        let minute_seconds = match std::env::var(MINUTE_SECONDS_ENV) {
            Ok(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| *x > 0.0 && *x <= 3600.0)
                .ok_or_else(|| {
                    format!("{MINUTE_SECONDS_ENV} must be a number in (0, 3600], got {v:?}")
                })?,
            Err(_) => 60.0,
        };
        Ok(Incidents::with_minute(control, directory, minute_seconds))
    }

    pub(crate) fn with_minute(
        control: Arc<dyn ControlStore>,
        directory: Arc<Directory>,
        minute_seconds: f64,
    ) -> Incidents {
        Incidents {
            inner: Arc::new(Inner {
                control,
                directory,
                minute_seconds,
                lock: Mutex::new(()),
                wake: Notify::new(),
                stopping: AtomicBool::new(false),
            }),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Start the job and watch loop on the current tokio runtime. Called once.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        let inner = self.inner.clone();
        self.tasks
            .lock()
            .push(tokio::spawn(async move { run_loop(inner).await }));
        Ok(())
    }

    /// The control store was wiped: nothing is cached in memory.
    pub fn reset(&self) {}

    /// Stop background work (blocking; called once at shutdown).
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_waiters();
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        use plans as p;
        use records as r;
        use timeline as t;
        let i = &*self.inner;
        let v = &input;
        match ctx.operation.as_str() {
            "CreateReplicationSet" => p::create_replication_set(i, ctx, v),
            "GetReplicationSet" => p::get_replication_set_op(i, ctx, v),
            "ListReplicationSets" => p::list_replication_sets(i, ctx, v),
            "UpdateReplicationSet" => p::update_replication_set(i, ctx, v),
            "UpdateDeletionProtection" => p::update_deletion_protection(i, ctx, v),
            "DeleteReplicationSet" => p::delete_replication_set(i, ctx, v),
            "CreateResponsePlan" => p::create_response_plan(i, ctx, v),
            "GetResponsePlan" => p::get_response_plan(i, ctx, v),
            "ListResponsePlans" => p::list_response_plans(i, ctx, v),
            "UpdateResponsePlan" => p::update_response_plan(i, ctx, v),
            "DeleteResponsePlan" => p::delete_response_plan(i, ctx, v),
            "TagResource" => p::tag_resource(i, ctx, v),
            "UntagResource" => p::untag_resource(i, ctx, v),
            "ListTagsForResource" => p::list_tags(i, ctx, v),
            "PutResourcePolicy" => p::put_policy(i, ctx, v),
            "GetResourcePolicies" => p::get_policies(i, ctx, v),
            "DeleteResourcePolicy" => p::delete_policy(i, ctx, v),
            "StartIncident" => r::start_incident(i, ctx, v),
            "GetIncidentRecord" => r::get_incident_record(i, ctx, v),
            "ListIncidentRecords" => r::list_incident_records(i, ctx, v),
            "UpdateIncidentRecord" => r::update_incident_record(i, ctx, v),
            "DeleteIncidentRecord" => r::delete_incident_record(i, ctx, v),
            "UpdateRelatedItems" => r::update_related_items(i, ctx, v),
            "ListRelatedItems" => r::list_related_items(i, ctx, v),
            "ListIncidentFindings" => r::list_findings(i, ctx, v),
            "BatchGetIncidentFindings" => r::batch_get_findings(i, ctx, v),
            "CreateTimelineEvent" => t::create_event(i, ctx, v),
            "GetTimelineEvent" => t::get_event_op(i, ctx, v),
            "ListTimelineEvents" => t::list_events(i, ctx, v),
            "UpdateTimelineEvent" => t::update_event(i, ctx, v),
            "DeleteTimelineEvent" => t::delete_event(i, ctx, v),
            other => Err(ApiError::with_status(
                "UnknownOperationException",
                400,
                format!("Unknown operation {other}"),
            )),
        }
    }
}

/// Run due jobs; look at open incidents every `WATCH_EVERY`; sleep until the next job is due (at
/// most `POLL`) or until woken.
async fn run_loop(inner: Arc<Inner>) {
    let mut last_watch = Instant::now() - WATCH_EVERY;
    while !inner.stopping.load(Ordering::SeqCst) {
        match engine::run_due(&inner).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "incidents: job pass failed"),
        }
        if last_watch.elapsed() >= WATCH_EVERY {
            last_watch = Instant::now();
            if let Err(e) = engine::watch(&inner).await {
                tracing::warn!(error = %e, "incidents: watch pass failed");
            }
        }
        let wait = engine::next_due(&inner)
            .map(|due| Duration::from_secs_f64((due - util::now()).clamp(0.0, POLL.as_secs_f64())))
            .unwrap_or(POLL);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = inner.wake.notified() => {}
        }
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

#[cfg(test)]
mod tests;
