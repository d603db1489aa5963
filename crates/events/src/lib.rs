//! EventBridge: event buses, rules, the pattern matcher, targets, durable at-least-once delivery, archives and replay, connections and API destinations.
//!
//! Architecture: [`Events`] keeps buses and rules in the control store (`events.bus`,
//! `events.rule`, targets and tags inside the rule record) and in memory ([`model::Registry`]: per
//! bus one compiled matcher over its enabled rules). PutEvents builds the events, matches them, and
//! writes the matched ones to the outbox ([`outbox`], group commit into the log of [`outlog`]: one
//! fsync for many concurrent calls) before answering; the dispatcher ([`delivery`]) invokes the targets through the
//! `Directory` with retries, backoff and dead-lettering; [`schedule`] fires schedule rules;
//! [`metrics`] publishes `AWS/Events`. Connections, API destinations, archives and replays live in
//! [`ext`].

mod buses;
pub mod delivery;
pub mod event;
pub mod ext;
mod invoke;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod outlog;
mod put;
pub mod putdecode;
mod rules;
pub mod schedule;
pub mod targets;
pub mod transform;
pub mod util;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use opsloop_core::{
    ApiError, BoxFuture, DecodedInput, DecodedOutput, Directory, RequestContext, Service, Value,
};
use opsloop_store::ControlStore;
use tokio::sync::{mpsc, watch};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/events-2015-10-07.json");

/// The EventBridge service.
pub struct Events {
    pub(crate) control: Arc<dyn ControlStore>,
    pub(crate) directory: Arc<Directory>,
    /// State of the `ext` module (connections, API destinations, archives, replays).
    pub(crate) ext: ext::ExtState,
    pub(crate) registry: model::Registry,
    /// Serialises configuration changes (buses, rules, targets, tags).
    pub(crate) write_lock: parking_lot::Mutex<()>,
    pub(crate) outbox: outbox::Writer,
    pub(crate) delivery: delivery::DeliveryState,
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) sched: schedule::SchedState,
    stop: watch::Sender<bool>,
    started: AtomicBool,
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
        let registry = model::Registry::load(control.as_ref())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = outbox::Writer::spawn(control.clone(), &outbox_dir(data_dir), tx)?;
        Ok(Events {
            control,
            directory,
            ext: ext::ExtState::default(),
            registry,
            write_lock: parking_lot::Mutex::new(()),
            outbox,
            delivery: delivery::DeliveryState::new(rx),
            metrics: Arc::new(metrics::Metrics::default()),
            sched: schedule::SchedState::default(),
            stop: watch::channel(false).0,
            started: AtomicBool::new(false),
        })
    }

    /// Start background work on the current tokio runtime. Called once.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        handle.spawn(delivery::run(self.clone(), self.stop.subscribe()));
        handle.spawn(schedule::run(self.clone(), self.stop.subscribe()));
        handle.spawn(metrics::run(
            self.metrics.clone(),
            self.directory.clone(),
            self.stop.subscribe(),
        ));
        ext::start(self);
        Ok(())
    }

    /// The control store was wiped: drop in-memory state derived from it, and the outbox log.
    pub fn reset(&self) {
        let _guard = self.write_lock.lock();
        if let Err(e) = self.outbox.wipe() {
            tracing::error!(error = %e, "cannot wipe the events outbox log");
        }
        self.registry.clear();
        self.delivery.clear();
        self.sched.clear();
        self.metrics.clear();
    }

    /// Stop background work (blocking; called once at shutdown).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.outbox.stop();
    }

    /// Deliveries waiting for a retry, and outbox records not yet released (for tests).
    pub fn backlog(&self) -> (usize, usize) {
        (self.delivery.retry_count(), self.delivery.pending_records())
    }

    /// Schedule rules changed: recompute fire times.
    pub(crate) fn schedule_changed(&self) {
        self.sched.changed();
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let op = ctx.operation.as_str();
        if ext::OPERATIONS.contains(&op) {
            return ext::handle(self, ctx, input).await;
        }
        let i = &input;
        match op {
            "PutEvents" => self.put_events(ctx, i).await,
            "CreateEventBus" => self.create_event_bus(ctx, i),
            "DescribeEventBus" => self.describe_event_bus(ctx, i),
            "ListEventBuses" => self.list_event_buses(ctx, i),
            "UpdateEventBus" => self.update_event_bus(ctx, i),
            "DeleteEventBus" => self.delete_event_bus(ctx, i),
            "PutPermission" => self.put_permission(ctx, i),
            "RemovePermission" => self.remove_permission(ctx, i),
            "PutRule" => self.put_rule(ctx, i),
            "DescribeRule" => self.describe_rule(ctx, i),
            "ListRules" => self.list_rules(ctx, i),
            "EnableRule" => self.set_rule_state(ctx, i, "ENABLED"),
            "DisableRule" => self.set_rule_state(ctx, i, "DISABLED"),
            "DeleteRule" => self.delete_rule(ctx, i),
            "ListRuleNamesByTarget" => self.list_rule_names_by_target(ctx, i),
            "TestEventPattern" => self.test_event_pattern(i),
            "PutTargets" => self.put_targets(ctx, i),
            "RemoveTargets" => self.remove_targets(ctx, i),
            "ListTargetsByRule" => self.list_targets_by_rule(ctx, i),
            "TagResource" => self.tag_resource(ctx, i, true),
            "UntagResource" => self.tag_resource(ctx, i, false),
            "ListTagsForResource" => self.list_tags(ctx, i),
            _ => Err(ApiError::with_status(
                "NotImplemented",
                501,
                format!(
                    "Operation {} is not implemented by this opsloop release.",
                    ctx.operation
                ),
            )),
        }
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

    fn decode_json_input(&self, operation: &str, json: &[u8]) -> Option<DecodedInput> {
        match operation {
            "PutEvents" => putdecode::decode(json).map(|p| Box::new(p) as DecodedInput),
            _ => None,
        }
    }

    fn call_decoded<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: DecodedInput,
    ) -> BoxFuture<'a, Result<DecodedOutput, ApiError>> {
        Box::pin(async move {
            match (
                ctx.operation.as_str(),
                input.downcast::<putdecode::PutInput>(),
            ) {
                ("PutEvents", Ok(p)) => {
                    let answer = self.put_decoded(ctx, &p).await?;
                    Ok(DecodedOutput::Json(answer.to_json()))
                }
                _ => Err(ApiError::internal()),
            }
        })
    }
}

/// The outbox log's directory under the server's data directory.
pub fn outbox_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("events").join("outbox")
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
        self.replay(to, event).await
    }
}
