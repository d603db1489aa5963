//! CloudWatch alarms: metric alarms (static thresholds, M of N, missing-data treatment, percentiles,
//! metric math, anomaly bands), composite alarms, their history, actions and events.
//!
//! Layout:
//!
//! * [`model`] — configuration and state; [`parse`] — PutMetricAlarm / PutCompositeAlarm
//!   validation; [`rule`] — the composite `AlarmRule` language;
//! * [`evaluate`] — the decision from datapoints to a state (the user guide's semantics and
//!   tables); [`data`] — reading datapoints; [`reason`] — `StateReason` / `StateReasonData`;
//! * [`engine`] — evaluating alarms and committing transitions; [`registry`] — the in-memory
//!   index; [`store`] — control-store records (alarms, history, outbox);
//! * [`ops`] — the mutating operations; [`describe`] — DescribeAlarms, DescribeAlarmsForMetric,
//!   DescribeAlarmHistory; [`actions`] — SNS / SSM / Incident Manager actions and EventBridge
//!   events, delivered from the outbox; [`render`] — API shapes; [`time`] — timestamp formats.
//!
//! **When alarms are evaluated.** On a clock, as CloudWatch does: every 10 seconds for alarms whose
//! period is under a minute, every minute for the others ([`Alarms::tick`]); and on arriving data:
//! after PutMetricData has durably written datapoints of a metric an alarm watches, that alarm is
//! queued and evaluated at once ([`Alarms::run_pending`]); alarms are also evaluated right after
//! they are created or updated. The clock is injectable ([`Alarms::set_clock`]) and every step can
//! be driven by hand, so tests need no sleeps.
//!
//! **Durability.** Alarm records, history and the outbox live in the control store; a transition
//! and its pending actions are atomic. The metric alarm transitions of one evaluation run are
//! saved together, in control-store batches of at most 500 transitions, and an alarm adopts its
//! new state in memory only once its batch is durable; each transition is stamped with the clock
//! read when its alarm is evaluated. The dispatcher ([`Alarms::dispatch`]) works actions ahead of
//! EventBridge events (separate key ranges of the outbox), delivers a page of items and deletes
//! them in one batch together with their `Action` history items, so after a restart undelivered
//! actions are delivered; events for an EventBridge absent from this process are dropped a page at
//! a time. The crash window: if the process dies after deliveries succeeded and before their
//! page's batch commits, those actions are delivered again after the restart (at-least-once); in
//! normal operation every action is delivered exactly once.

pub mod actions;
pub mod data;
pub mod describe;
pub mod engine;
pub mod evaluate;
pub mod model;
pub mod ops;
pub mod parse;
pub mod reason;
pub mod registry;
pub mod render;
pub mod rule;
pub mod store;
pub mod time;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{ApiError, Directory, RequestContext, Value};
use opsloop_store::ControlStore;
use opsloop_tsdb::{Clock, MetricStore, SeriesFilter, SeriesWrite};
use parking_lot::{Mutex, RwLock};

use crate::anomaly::Models;
use crate::error::InternalError;
use crate::tags::{ResourceArn, ResourceKind, ResourceRegistry};
use registry::{metric_hash, AlarmKey, Entry, Registry};

/// How often the clock ticks (sub-minute alarms are evaluated every tick).
pub const TICK: Duration = Duration::from_secs(10);
/// How often the outbox is swept even without a wake-up (delivery retries after a restart).
const OUTBOX_SWEEP: Duration = Duration::from_secs(5);
/// Outbox actions read (and removed in one batch) per dispatcher round.
const OUTBOX_BATCH: usize = 100;
/// Outbox events read (and removed in one batch) per dispatcher round.
const EVENT_BATCH: usize = 1000;
/// How often old history is pruned.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The alarms service state, shared by the API handlers and the background tasks.
pub struct Alarms {
    pub(crate) metrics: Arc<dyn MetricStore>,
    pub(crate) control: Arc<dyn ControlStore>,
    pub(crate) models: Arc<Models>,
    directory: RwLock<Option<Arc<Directory>>>,
    clock: RwLock<Clock>,
    pub(crate) registry: RwLock<Registry>,
    loaded: AtomicBool,
    load_lock: Mutex<()>,
    /// Alarms waiting for an arrival-triggered evaluation.
    pending: Mutex<HashSet<AlarmKey>>,
    pending_wake: tokio::sync::Notify,
    pub(crate) outbox_wake: tokio::sync::Notify,
    dispatch_lock: tokio::sync::Mutex<()>,
    /// Serialises the mutating operations (Put*, Delete, SetAlarmState, Enable/Disable).
    pub(crate) admin: Mutex<()>,
    started: AtomicBool,
    last_minute: AtomicI64,
    last_prune: AtomicI64,
}

impl Alarms {
    pub fn new(
        metrics: Arc<dyn MetricStore>,
        control: Arc<dyn ControlStore>,
        models: Arc<Models>,
    ) -> Self {
        Alarms {
            metrics,
            control,
            models,
            directory: RwLock::new(None),
            clock: RwLock::new(opsloop_tsdb::system_clock()),
            registry: RwLock::new(Registry::default()),
            loaded: AtomicBool::new(false),
            load_lock: Mutex::new(()),
            pending: Mutex::new(HashSet::new()),
            pending_wake: tokio::sync::Notify::new(),
            outbox_wake: tokio::sync::Notify::new(),
            dispatch_lock: tokio::sync::Mutex::new(()),
            admin: Mutex::new(()),
            started: AtomicBool::new(false),
            last_minute: AtomicI64::new(i64::MIN),
            last_prune: AtomicI64::new(i64::MIN),
        }
    }

    /// Use `directory` for actions and events.
    pub fn set_directory(&self, directory: Arc<Directory>) {
        *self.directory.write() = Some(directory);
    }

    /// Replace the clock (milliseconds since the epoch).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write() = clock;
    }

    /// The current time by the service clock.
    pub fn now(&self) -> i64 {
        let clock = self.clock.read().clone();
        clock()
    }

    /// Load every alarm from the control store, once.
    pub fn ensure_loaded(&self) -> Result<(), InternalError> {
        if self.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.load_lock.lock();
        if self.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let stored = store::load_alarms(&*self.control)?;
        let entries: Vec<Arc<Entry>> = stored.into_iter().map(Entry::new).collect();
        self.warm_series(&entries)?;
        let mut reg = self.registry.write();
        for e in entries {
            let compiled = e.inner.lock().compiled.clone();
            reg.insert(e, &compiled);
        }
        tracing::info!(alarms = reg.len(), "alarms loaded");
        drop(reg);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Resolve the series of single-metric alarms with one series listing per account and region.
    fn warm_series(&self, entries: &[Arc<Entry>]) -> Result<(), InternalError> {
        let mut regions: HashSet<(String, String)> = HashSet::new();
        for e in entries {
            regions.insert((e.key.account.clone(), e.key.region.clone()));
        }
        for (account, region) in regions {
            let all = self.metrics.list_series(&SeriesFilter {
                account: account.clone(),
                region: region.clone(),
                ..SeriesFilter::default()
            })?;
            for e in entries
                .iter()
                .filter(|e| e.key.account == account && e.key.region == region)
            {
                let mut cache = e.series.lock();
                if cache.metric.is_none() {
                    continue;
                }
                let keys = all
                    .iter()
                    .filter(|s| cache.matches(&s.key))
                    .map(|s| s.key.clone())
                    .collect();
                cache.keys = Some(keys);
            }
        }
        Ok(())
    }

    /// Forget everything in memory and reload from the stores (after the server wiped them).
    pub fn reload(&self) -> Result<(), InternalError> {
        {
            let _guard = self.load_lock.lock();
            *self.registry.write() = Registry::default();
            self.pending.lock().clear();
            self.models.clear();
            self.loaded.store(false, Ordering::Release);
        }
        self.ensure_loaded()
    }

    /// Alarms reading the metrics of `writes` (call before the write; pass the result to
    /// [`Alarms::written`] once it is durable). Cheap when no alarm watches metrics.
    pub fn watchers(&self, writes: &[SeriesWrite]) -> Vec<AlarmKey> {
        if let Err(e) = self.ensure_loaded() {
            tracing::error!(error = %e, "alarms could not be loaded");
            return Vec::new();
        }
        let hits: Vec<(Arc<Entry>, usize)> = {
            let reg = self.registry.read();
            if !reg.watches_any() {
                return Vec::new();
            }
            let mut hits = Vec::new();
            for (i, w) in writes.iter().enumerate() {
                let k = &w.key;
                let h = metric_hash(
                    &k.account,
                    &k.region,
                    &k.namespace,
                    &k.metric_name,
                    &k.dimensions,
                );
                for e in reg.watching(h) {
                    hits.push((e, i));
                }
            }
            hits
        };
        let mut keys = Vec::with_capacity(hits.len());
        for (entry, i) in hits {
            let key = &writes[i].key;
            {
                // Learn new series (a new unit of the metric) without listing the store.
                let mut cache = entry.series.lock();
                let matches = cache.matches(key);
                if let Some(known) = cache.keys.as_mut() {
                    if matches && !known.contains(key) {
                        known.push(key.clone());
                    }
                }
            }
            keys.push(entry.key.clone());
        }
        keys
    }

    /// Queue alarms for an evaluation now (their data was written, or they were created).
    pub fn queue(&self, keys: impl IntoIterator<Item = AlarmKey>) {
        let mut pending = self.pending.lock();
        let before = pending.len();
        pending.extend(keys);
        if pending.len() > before {
            drop(pending);
            self.pending_wake.notify_one();
        }
    }

    /// Evaluate the queued alarms now. Returns the number of transitions.
    pub async fn run_pending(self: &Arc<Self>) -> usize {
        let keys: Vec<AlarmKey> = self.pending.lock().drain().collect();
        if keys.is_empty() {
            return 0;
        }
        let me = self.clone();
        let now = self.now();
        let n = run_blocking(move || me.evaluate_keys(keys, now))
            .await
            .unwrap_or(0);
        if n > 0 {
            self.outbox_wake.notify_one();
        }
        n
    }

    /// One clock tick at the service clock's time: evaluate due alarms, advance suppression
    /// periods, prune old history hourly. Returns the number of transitions.
    pub async fn tick(self: &Arc<Self>) -> usize {
        let now = self.now();
        let me = self.clone();
        run_blocking(move || me.tick_at(now)).await.unwrap_or(0)
    }

    /// [`Alarms::tick`] at a given time, synchronously.
    pub fn tick_at(&self, now_ms: i64) -> usize {
        if let Err(e) = self.ensure_loaded() {
            tracing::error!(error = %e, "alarms could not be loaded");
            return 0;
        }
        let minute = now_ms.div_euclid(60_000);
        let whole_minute = self.last_minute.swap(minute, Ordering::AcqRel) != minute;
        let keys = self.due_alarms(now_ms, whole_minute);
        let n = self.evaluate_keys(keys, now_ms);
        if now_ms.saturating_sub(self.last_prune.load(Ordering::Acquire)) >= PRUNE_EVERY_MS {
            self.last_prune.store(now_ms, Ordering::Release);
            match store::prune_history(&*self.control, now_ms) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(items = n, "pruned alarm history"),
                Err(e) => tracing::error!(error = %e, "alarm history pruning failed"),
            }
        }
        n
    }

    /// Evaluate every alarm now (as after a restart, or in tests).
    pub fn evaluate_all(&self, now_ms: i64) -> usize {
        if self.ensure_loaded().is_err() {
            return 0;
        }
        let entries = self.registry.read().all();
        // Metric alarms first, so composites see fresh children.
        let mut keys: Vec<(bool, AlarmKey)> = entries
            .iter()
            .map(|e| (e.inner.lock().stored.config.is_composite(), e.key.clone()))
            .collect();
        keys.sort();
        self.evaluate_keys(keys.into_iter().map(|(_, k)| k).collect(), now_ms)
    }

    /// Deliver every outbox item. Returns the number delivered (successfully or not).
    ///
    /// Actions go first and are re-checked between pages of events, so an action never waits
    /// behind a backlog of EventBridge events. Delivered items leave the outbox one batch per page
    /// (with their `Action` history items); an action is removed only after its delivery, so one
    /// not delivered before a restart goes out after it. When EventBridge is not in this process,
    /// events are dropped a page at a time without a call each.
    pub async fn dispatch(&self) -> usize {
        let _one = self.dispatch_lock.lock().await;
        let directory = self.directory.read().clone();
        let mut delivered = 0;
        // Items of earlier releases, keyed `<ms>/<seq>` (sorted before the prefixed keys).
        match self
            .drain(directory.as_deref(), "", OUTBOX_BATCH, true)
            .await
        {
            Ok(n) => delivered += n,
            Err(()) => return delivered,
        }
        match self
            .drain(
                directory.as_deref(),
                store::ACTION_PREFIX,
                OUTBOX_BATCH,
                false,
            )
            .await
        {
            Ok(n) => delivered += n,
            Err(()) => return delivered,
        }
        let mut after: Option<String> = None;
        loop {
            let (n, last) = match self
                .drain_page(
                    directory.as_deref(),
                    store::EVENT_PREFIX,
                    after.as_deref(),
                    EVENT_BATCH,
                    false,
                )
                .await
            {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(()) => return delivered,
            };
            delivered += n;
            after = Some(last);
            match self
                .drain(
                    directory.as_deref(),
                    store::ACTION_PREFIX,
                    OUTBOX_BATCH,
                    false,
                )
                .await
            {
                Ok(n) => delivered += n,
                Err(()) => return delivered,
            }
        }
        delivered
    }

    /// Deliver every item under `prefix`, a page at a time.
    async fn drain(
        &self,
        directory: Option<&Directory>,
        prefix: &str,
        page: usize,
        legacy: bool,
    ) -> Result<usize, ()> {
        let mut delivered = 0;
        let mut after: Option<String> = None;
        while let Some((n, last)) = self
            .drain_page(directory, prefix, after.as_deref(), page, legacy)
            .await?
        {
            delivered += n;
            after = Some(last);
        }
        Ok(delivered)
    }

    /// Deliver one page of items under `prefix` after `after` and remove them in one batch.
    /// `None` when there was nothing left; otherwise the number delivered and the last key.
    /// With `legacy`, only keys of earlier releases (starting with a digit) count.
    async fn drain_page(
        &self,
        directory: Option<&Directory>,
        prefix: &str,
        after: Option<&str>,
        page: usize,
        legacy: bool,
    ) -> Result<Option<(usize, String)>, ()> {
        let mut items = match store::load_outbox(&*self.control, prefix, after, page) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "outbox could not be read");
                return Err(());
            }
        };
        if legacy {
            items.retain(|(k, _)| k.starts_with(|c: char| c.is_ascii_digit()));
        }
        let Some(last) = items.last().map(|(k, _)| k.clone()) else {
            return Ok(None);
        };
        let events_absent = directory.is_none_or(|d| d.get("EventBridge").is_none());
        let mut ops = Vec::with_capacity(items.len() * 2);
        for (key, item) in &items {
            ops.push(store::delete_outbox(key));
            if item.target == store::Target::EventBridge {
                if events_absent {
                    continue;
                }
                if let Err(e) = actions::deliver(directory, item).await {
                    tracing::debug!(alarm = %item.alarm_name, error = %e, "alarm state change event not delivered");
                }
                continue;
            }
            let result = actions::deliver(directory, item).await;
            match &result {
                Ok(_) => {
                    tracing::info!(alarm = %item.alarm_name, action = %item.resource, "alarm action executed")
                }
                Err(e) => {
                    tracing::warn!(alarm = %item.alarm_name, action = %item.resource, error = %e, "alarm action failed")
                }
            }
            let record = actions::action_history(item, &result, self.now());
            match store::put_history(&item.account, &item.region, &record) {
                Ok(op) => ops.push(op),
                Err(e) => tracing::error!(error = %e, "action history could not be encoded"),
            }
        }
        if events_absent
            && items
                .iter()
                .any(|(_, i)| i.target == store::Target::EventBridge)
        {
            tracing::debug!(
                "EventBridge is not in this process: alarm state change events dropped"
            );
        }
        if let Err(e) = self.control.batch(ops) {
            tracing::error!(error = %e, "outbox items could not be completed");
            return Err(());
        }
        Ok(Some((items.len(), last)))
    }

    /// Start the background tasks on the current tokio runtime (idempotent): the arrival-triggered
    /// evaluator, the 10-second clock and the outbox dispatcher. Alarms are loaded first and every
    /// alarm is evaluated once, so state is fresh after a restart and undelivered actions go out.
    pub fn start(this: &Arc<Self>) {
        if this.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            this.started.store(false, Ordering::Release);
            tracing::warn!("alarm engine not started: no async runtime");
            return;
        };
        let me = this.clone();
        handle.spawn(async move {
            let first = me.clone();
            let now = me.now();
            if let Err(e) = run_blocking(move || first.evaluate_all(now)).await {
                tracing::error!(error = %e, "initial alarm evaluation failed");
            }
            me.outbox_wake.notify_one();
            loop {
                me.pending_wake.notified().await;
                me.run_pending().await;
            }
        });
        let me = this.clone();
        handle.spawn(async move {
            loop {
                let now = me.now();
                let tick_ms = TICK.as_millis() as i64;
                let wait = tick_ms - now.rem_euclid(tick_ms);
                tokio::time::sleep(Duration::from_millis(wait.max(1) as u64)).await;
                me.tick().await;
            }
        });
        let me = this.clone();
        handle.spawn(async move {
            loop {
                let _ = tokio::time::timeout(OUTBOX_SWEEP, me.outbox_wake.notified()).await;
                me.dispatch().await;
            }
        });
        tracing::info!("alarm engine started");
    }

    /// Whether [`Alarms::start`] ran.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Whether `operation` belongs to the alarms feature.
    pub fn handles(operation: &str) -> bool {
        matches!(
            operation,
            "PutMetricAlarm"
                | "PutCompositeAlarm"
                | "DeleteAlarms"
                | "DescribeAlarms"
                | "DescribeAlarmsForMetric"
                | "DescribeAlarmHistory"
                | "SetAlarmState"
                | "EnableAlarmActions"
                | "DisableAlarmActions"
        )
    }

    /// Run one API operation of the alarms feature (see [`Alarms::handles`]).
    pub async fn handle(
        self: &Arc<Self>,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Value, ApiError> {
        let op = ctx.operation.as_str();
        if !Self::handles(op) {
            return Err(crate::not_implemented(op));
        }
        let me = self.clone();
        let ctx = ctx.clone();
        let result = run_blocking(move || me.call(&ctx, input)).await;
        let result = match result {
            Ok(r) => r,
            Err(e) => Err(ApiError::from(e)),
        };
        if result.is_ok()
            && matches!(
                op,
                "PutMetricAlarm" | "PutCompositeAlarm" | "SetAlarmState" | "DeleteAlarms"
            )
        {
            self.outbox_wake.notify_one();
        }
        result
    }

    fn call(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        self.ensure_loaded()?;
        let now = self.now();
        match ctx.operation.as_str() {
            "PutMetricAlarm" => self.put_metric_alarm(ctx, input, now),
            "PutCompositeAlarm" => self.put_composite_alarm(ctx, input, now),
            "DeleteAlarms" => self.delete_alarms(ctx, input, now),
            "SetAlarmState" => self.set_alarm_state(ctx, input, now),
            "EnableAlarmActions" => self.set_actions_enabled(ctx, input, true, now),
            "DisableAlarmActions" => self.set_actions_enabled(ctx, input, false, now),
            "DescribeAlarms" => self.describe_alarms(ctx, input),
            "DescribeAlarmsForMetric" => self.describe_alarms_for_metric(ctx, input),
            "DescribeAlarmHistory" => self.describe_alarm_history(ctx, input),
            other => Err(crate::not_implemented(other)),
        }
    }

    /// Whether the alarm `name` exists in `account`/`region`.
    pub fn exists(&self, account: &str, region: &str, name: &str) -> Result<bool, InternalError> {
        self.ensure_loaded()?;
        Ok(self
            .registry
            .read()
            .get(&AlarmKey::new(account, region, name))
            .is_some())
    }
}

/// Run CPU- or store-bound work off the async executor when there is one.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, InternalError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(handle.spawn_blocking(f).await?),
        Err(_) => Ok(f()),
    }
}

/// The resource registry with alarms plugged in: an alarm ARN exists when the alarm does (or when
/// `others` says so); other kinds are asked of `others`.
pub struct AlarmResources {
    pub alarms: Arc<Alarms>,
    pub others: Arc<dyn ResourceRegistry>,
}

impl ResourceRegistry for AlarmResources {
    fn exists(&self, arn: &ResourceArn) -> Result<bool, InternalError> {
        match arn.kind {
            ResourceKind::Alarm => Ok(self.alarms.exists(&arn.account, &arn.region, &arn.name)?
                || self.others.exists(arn)?),
            _ => self.others.exists(arn),
        }
    }
}
