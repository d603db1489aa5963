//! Durable at-least-once delivery: the dispatcher that works the outbox.
//!
//! Each committed [`Record`](crate::outbox::Record) expands into one delivery per (event, matched
//! rule, target of the rule). A delivery is attempted at once; if it fails and may be retried
//! (per the target's `RetryPolicy`: `MaximumRetryAttempts`, default 185, and
//! `MaximumEventAgeInSeconds`, default 86400) it becomes a retry row (`events.retry`), written
//! durably before its outbox record can be released, and is attempted again after an exponential
//! backoff (1 s, 2 s, 4 s, ... capped at 5 minutes, ±10 % jitter). A delivery that cannot be
//! retried any longer goes to the target's dead-letter destination (SNS topic or log group), if any.
//! The outbox record is deleted once every one of its deliveries is delivered, dead-lettered or
//! turned into a retry row. After a restart, stored records and retry rows are resumed (a delivery
//! in flight at the crash is attempted again: at least once).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use crate::event::Event;
use crate::outbox::{Committed, Record};
use crate::targets::TargetKind;
use crate::util::{self, now_ms, s, T_OUTBOX, T_RETRY};
use crate::{invoke, Events};

/// Most target invocations in flight.
pub const MAX_IN_FLIGHT: usize = 256;
const DEFAULT_MAX_RETRIES: u64 = 185;
const DEFAULT_MAX_AGE_S: u64 = 86_400;
const MAX_BACKOFF_MS: i64 = 300_000;

/// One delivery of an event to one target of one rule (also the stored retry row).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    /// `<record key>.<item>.<rule>.<target id>`. Empty until needed (see [`Delivery::ensure_id`]):
    /// most first attempts succeed and never need it.
    pub id: String,
    /// Account, region and bus are shared by the deliveries of one record.
    pub account: Arc<str>,
    pub region: Arc<str>,
    pub bus: Arc<str>,
    /// The rule's name (shared with the bus's matcher and the outbox record).
    pub rule: Arc<str>,
    /// The target as stored in its rule (shared with the rule, not copied per delivery).
    pub target: Arc<crate::targets::Target>,
    #[serde(with = "crate::event::shared")]
    pub event: Arc<Event>,
    pub accepted_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    pub due_ms: i64,
    /// The outbox record this delivery still holds (first attempt only; not stored), shared by
    /// the deliveries of the record.
    #[serde(skip)]
    pub parent: Option<Arc<str>>,
    /// Position of the event in its outbox record (first attempt only; not stored).
    #[serde(skip)]
    pub item: u32,
    /// The rule's lock-free metric counters (first attempt only; not stored): a successful first
    /// attempt counts there, everything else in the keyed counters.
    #[serde(skip)]
    pub counters: Option<Arc<crate::metrics::RuleCounters>>,
}

impl Delivery {
    /// The id of a first attempt, built from its record key the first time it is needed (a
    /// retry row, the in-flight guard, a resume); stored deliveries already have theirs.
    pub(crate) fn ensure_id(&mut self) -> &str {
        if self.id.is_empty() {
            if let Some(p) = &self.parent {
                self.id = delivery_id(p, self.item as usize, &self.rule, &self.target.id);
            }
        }
        &self.id
    }

    pub(crate) fn rule_arn(&self) -> String {
        util::rule_arn(&self.account, &self.region, &self.bus, &self.rule)
    }
    pub(crate) fn target_arn(&self) -> &str {
        s(&self.target, "Arn").unwrap_or_default()
    }
    fn max_retries(&self) -> u64 {
        self.target
            .get("RetryPolicy")
            .and_then(|p| p.get("MaximumRetryAttempts"))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_RETRIES)
    }
    fn max_age_ms(&self) -> i64 {
        self.target
            .get("RetryPolicy")
            .and_then(|p| p.get("MaximumEventAgeInSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_AGE_S) as i64
            * 1000
    }
}

/// Why an invocation failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub retryable: bool,
    pub code: String,
    pub message: String,
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        let throttled = matches!(
            e.kind.as_str(),
            "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "ConcurrentModificationException"
        );
        Failure {
            retryable: throttled || e.status.is_some_and(|s| s >= 500),
            code: e.kind,
            message: e.message,
        }
    }
}

/// The retry schedule in memory (the `events.retry` rows are the truth).
#[derive(Default)]
struct Retries {
    order: BTreeSet<(i64, String)>,
    rows: HashMap<String, Delivery>,
}

/// Dispatcher state held by [`Events`].
pub struct DeliveryState {
    rx: Mutex<Option<mpsc::UnboundedReceiver<Committed>>>,
    pending: Mutex<HashMap<String, usize>>,
    retries: Mutex<Retries>,
    in_flight: Mutex<HashSet<String>>,
    notify: Notify,
    sem: Arc<Semaphore>,
}

impl DeliveryState {
    pub fn new(rx: mpsc::UnboundedReceiver<Committed>) -> DeliveryState {
        DeliveryState {
            rx: Mutex::new(Some(rx)),
            pending: Mutex::new(HashMap::new()),
            retries: Mutex::new(Retries::default()),
            in_flight: Mutex::new(HashSet::new()),
            notify: Notify::new(),
            sem: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    pub fn clear(&self) {
        self.pending.lock().clear();
        *self.retries.lock() = Retries::default();
    }

    /// Deliveries waiting for a retry.
    pub fn retry_count(&self) -> usize {
        self.retries.lock().rows.len()
    }

    /// Outbox records not yet released.
    pub fn pending_records(&self) -> usize {
        self.pending.lock().len()
    }

    fn schedule_retry(&self, d: Delivery) {
        let mut r = self.retries.lock();
        r.order.insert((d.due_ms, d.id.clone()));
        r.rows.insert(d.id.clone(), d);
        drop(r);
        self.notify.notify_one();
    }

    fn pop_due(&self, now: i64) -> Result<Delivery, Option<i64>> {
        let mut r = self.retries.lock();
        let Some((due, id)) = r.order.first().cloned() else {
            return Err(None);
        };
        if due > now {
            return Err(Some(due));
        }
        r.order.remove(&(due, id.clone()));
        r.rows.remove(&id).ok_or(Some(now))
    }
}

/// See [`Delivery::id`].
fn delivery_id(record: &str, item: usize, rule: &str, target: &str) -> String {
    format!("{record}.{item}.{rule}.{target}")
}

fn backoff_ms(attempts: u32) -> i64 {
    let base = (1000i64 << attempts.saturating_sub(1).min(20)).min(MAX_BACKOFF_MS);
    let jitter = (rand::random::<u32>() % 21) as i64 - 10; // ±10 %
    base + base * jitter / 100
}

/// Run the dispatcher until `stop` turns true.
pub async fn run(events: Arc<Events>, mut stop: watch::Receiver<bool>) {
    let Some(mut rx) = events.delivery.rx.lock().take() else {
        return;
    };
    resume(&events);
    loop {
        let wait = loop {
            match events.delivery.pop_due(now_ms()) {
                Ok(d) => spawn_attempt(&events, d),
                Err(next) => break next,
            }
        };
        let sleep = match wait {
            Some(due) => Duration::from_millis((due - now_ms()).clamp(1, 60_000) as u64),
            None => Duration::from_secs(60),
        };
        tokio::select! {
            got = rx.recv() => match got {
                Some((key, rec)) => expand(&events, key, rec),
                None => return,
            },
            _ = events.delivery.notify.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Load stored retry rows and outbox records after a start.
fn resume(events: &Arc<Events>) {
    let retries = match crate::model::scan_all(events.control.as_ref(), T_RETRY) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot load the events retry rows");
            Vec::new()
        }
    };
    let mut known = HashSet::new();
    for (_, v) in retries {
        match serde_json::from_slice::<Delivery>(&v) {
            Ok(d) => {
                known.insert(d.id.clone());
                events.delivery.schedule_retry(d);
            }
            Err(e) => tracing::error!(error = %e, "unreadable events retry row"),
        }
    }
    match events.outbox.load(events.control.as_ref()) {
        Ok(records) => {
            let n = records.len();
            for (key, rec) in records {
                expand_skipping(events, key, rec, &known);
            }
            tracing::info!(
                records = n,
                retries = known.len(),
                "events dispatcher resumed"
            );
        }
        Err(e) => tracing::error!(error = %e, "cannot load the events outbox"),
    }
}

fn expand(events: &Arc<Events>, key: String, rec: Arc<Record>) {
    expand_skipping(events, key, rec, &HashSet::new());
}

/// Turn a record into deliveries and start them (except those already retry rows).
fn expand_skipping(events: &Arc<Events>, key: String, rec: Arc<Record>, skip: &HashSet<String>) {
    if events.delivery.pending.lock().contains_key(&key) {
        return;
    }
    let mut out = Vec::new();
    // (item, rule, whether the rule still exists): MatchedEvents and TriggeredRules. Rules that
    // still exist count in their own counters here; the list keeps them for the aggregate.
    let mut matched: Vec<(usize, &str, bool)> = Vec::new();
    let parent: Arc<str> = key.as_str().into();
    {
        // One look at the registry for the whole record (its items nearly always share a bus;
        // they share the names' `Arc`s too).
        let buses = events.registry.buses.read();
        let mut bus: Option<(&crate::outbox::Item, Option<&crate::model::BusState>)> = None;
        for (i, item) in rec.items.iter().enumerate() {
            let same = bus.as_ref().is_some_and(|(b, _)| {
                b.account == item.account && b.region == item.region && b.bus == item.bus
            });
            if !same {
                let st = buses.get(&util::bus_key(&item.account, &item.region, &item.bus));
                bus = Some((item, st));
            }
            let Some((_, Some(state))) = &bus else {
                matched.extend(item.rules.iter().map(|r| (i, &**r, false)));
                continue;
            };
            for rule_name in &item.rules {
                let Some(rule) = state.rules.get(&**rule_name) else {
                    matched.push((i, rule_name, false));
                    continue;
                };
                matched.push((i, rule_name, true));
                let counters = rule.counters.get(&events.metrics, rule);
                counters.matched_and_triggered();
                for t in &rule.targets {
                    let mut id = String::new();
                    if !skip.is_empty() {
                        id = delivery_id(&key, i, rule_name, &t.id);
                        if skip.contains(&id) {
                            continue;
                        }
                    }
                    out.push(Delivery {
                        id,
                        account: item.account.clone(),
                        region: item.region.clone(),
                        bus: item.bus.clone(),
                        rule: rule_name.clone(),
                        target: t.clone(),
                        event: item.event.clone(),
                        accepted_ms: rec.accepted_ms,
                        attempts: 0,
                        due_ms: rec.accepted_ms,
                        parent: Some(parent.clone()),
                        item: i as u32,
                        counters: Some(counters.clone()),
                    });
                }
            }
        }
    }
    // MatchedEvents and TriggeredRules, counted here (once the events are durable) rather than at
    // acceptance: one lock and one look-up per (event, rule) for both, one bulk count per run of
    // items on one bus.
    let mut start = 0;
    while start < matched.len() {
        let first = &rec.items[matched[start].0];
        let end = start
            + matched[start..]
                .iter()
                .take_while(|(i, _, _)| {
                    let it = &rec.items[*i];
                    it.bus == first.bus && it.account == first.account && it.region == first.region
                })
                .count();
        let run = &matched[start..end];
        let mut events_matched = 0;
        let mut last = None;
        for (i, _, _) in run {
            if last != Some(*i) {
                events_matched += 1;
                last = Some(*i);
            }
        }
        // Rules that still exist were counted in their own counters above.
        events.metrics.add_matched_rest(
            &first.account,
            &first.region,
            &first.bus,
            run.iter().filter(|(_, _, t)| !*t).map(|(_, r, _)| *r),
            events_matched,
            run.iter().filter(|(_, _, t)| *t).count(),
        );
        start = end;
    }
    if out.is_empty() {
        events.outbox.write_later(vec![WriteOp::Delete {
            table: T_OUTBOX.into(),
            key,
        }]);
        return;
    }
    events.delivery.pending.lock().insert(key, out.len());
    start_all(events, out);
}

/// Start first attempts: deliveries to the same standard SNS topic go out together, up to
/// [`invoke::MAX_BATCH`] per `PublishBatch` (one task per batch); the rest one task each.
fn start_all(events: &Arc<Events>, ds: Vec<Delivery>) {
    // Few topics per record: a short list searched linearly, one key allocated per topic.
    let mut by_topic: Vec<(String, Vec<Delivery>)> = Vec::new();
    for d in ds {
        let Some(topic) = invoke::batch_topic(&d) else {
            spawn_attempt(events, d);
            continue;
        };
        let at = match by_topic.iter().position(|(t, _)| t == topic) {
            Some(at) => at,
            None => {
                by_topic.push((topic.to_string(), Vec::with_capacity(invoke::MAX_BATCH)));
                by_topic.len() - 1
            }
        };
        let group = &mut by_topic[at].1;
        group.push(d);
        if group.len() == invoke::MAX_BATCH {
            let full = std::mem::replace(group, Vec::with_capacity(invoke::MAX_BATCH));
            spawn_batch(events, by_topic[at].0.clone(), full);
        }
    }
    for (topic, group) in by_topic {
        if !group.is_empty() {
            spawn_batch(events, topic, group);
        }
    }
}

/// One task invoking `ds` (all to SNS topic `topic`) with one `PublishBatch`, then settling each.
///
/// Only first attempts of a record come here. They need no in-flight guard: a record is expanded
/// once (`pending` holds its key until every delivery is settled), and a delivery that becomes a
/// retry row is due at least a second after its first attempt has settled.
fn spawn_batch(events: &Arc<Events>, topic: String, ds: Vec<Delivery>) {
    if ds.is_empty() {
        return;
    }
    let events = events.clone();
    tokio::spawn(async move {
        let Ok(_permit) = events.delivery.sem.clone().acquire_owned().await else {
            return;
        };
        let results = events.invoke_sns_batch(&topic, &ds).await;
        // Successful first attempts of one bus (the usual batch) are counted in bulk and
        // finished here; everything else is settled one by one.
        let one_bus = ds.windows(2).all(|w| {
            Arc::ptr_eq(&w[0].bus, &w[1].bus)
                && Arc::ptr_eq(&w[0].account, &w[1].account)
                && Arc::ptr_eq(&w[0].region, &w[1].region)
        });
        let bulk = |d: &Delivery, r: &Result<(), Failure>| one_bus && r.is_ok() && d.attempts == 0;
        let counted = ds.iter().zip(&results).filter(|(d, r)| bulk(d, r));
        if let Some((first, _)) = counted.clone().next() {
            // Per rule in the rule's own counters where the delivery has them; the aggregate
            // (and any rule without) in one keyed count.
            for (d, _) in counted.clone() {
                if let Some(c) = &d.counters {
                    c.first_attempt_delivered();
                }
            }
            events.metrics.add_bulk(
                &first.account,
                &first.region,
                &first.bus,
                counted
                    .clone()
                    .filter(|(d, _)| d.counters.is_none())
                    .map(|(d, _)| &*d.rule),
                &[
                    ("InvocationAttempts", 1.0),
                    ("RetryInvocationAttempts", 0.0),
                    ("SuccessfulInvocationAttempts", 1.0),
                    ("Invocations", 1.0),
                ],
                counted.count(),
            );
        }
        let mut done: Vec<(Arc<str>, usize)> = Vec::new();
        for (mut d, r) in ds.into_iter().zip(results) {
            let released = if bulk(&d, &r) {
                let stored = d.parent.is_none();
                finish(&events, &mut d, stored)
            } else {
                settle(&events, d, r).await
            };
            // Release the parent record once per batch instead of once per delivery.
            if let Some(p) = released {
                match done.iter_mut().find(|(k, _)| *k == p) {
                    Some((_, n)) => *n += 1,
                    None => done.push((p, 1)),
                }
            }
        }
        for (p, n) in done {
            release_parent_n(&events, &p, n);
        }
    });
}

fn release_parent(events: &Events, parent: &str) {
    release_parent_n(events, parent, 1);
}

/// `done` deliveries of outbox record `parent` are settled: delete the record after its last.
fn release_parent_n(events: &Events, parent: &str, done: usize) {
    let mut p = events.delivery.pending.lock();
    let Some(n) = p.get_mut(parent) else { return };
    *n = n.saturating_sub(done);
    if *n == 0 {
        p.remove(parent);
        drop(p);
        events.outbox.write_later(vec![WriteOp::Delete {
            table: T_OUTBOX.into(),
            key: parent.to_string(),
        }]);
    }
}

fn spawn_attempt(events: &Arc<Events>, mut d: Delivery) {
    if !events
        .delivery
        .in_flight
        .lock()
        .insert(d.ensure_id().to_string())
    {
        return;
    }
    let events = events.clone();
    tokio::spawn(async move {
        let Ok(_permit) = events.delivery.sem.clone().acquire_owned().await else {
            return;
        };
        let id = d.id.clone();
        attempt(&events, d).await;
        events.delivery.in_flight.lock().remove(&id);
    });
}

/// One attempt of `d` and what follows from it.
async fn attempt(events: &Arc<Events>, d: Delivery) {
    let result = events.invoke_target(&d).await;
    if let Some(p) = settle(events, d, result).await {
        release_parent(events, &p);
    }
}

/// What follows from one attempt of `d`: metrics, then done, a retry row, or the dead-letter
/// destination. Answers the outbox record `d` no longer holds (the caller releases it), `None`
/// when it still does (nothing durable stands for `d` yet) or `d` had none.
async fn settle(
    events: &Arc<Events>,
    mut d: Delivery,
    result: Result<(), Failure>,
) -> Option<Arc<str>> {
    let m = &events.metrics;
    let rule = Some(&*d.rule);
    let retry = if d.attempts > 0 { 1.0 } else { 0.0 };
    let stored = d.parent.is_none();
    match result {
        Ok(()) => {
            m.add_all(
                &d.account,
                &d.region,
                &d.bus,
                rule,
                &[
                    ("InvocationAttempts", 1.0),
                    ("RetryInvocationAttempts", retry),
                    ("SuccessfulInvocationAttempts", 1.0),
                    ("Invocations", 1.0),
                ],
            );
            finish(events, &mut d, stored)
        }
        Err(f) => {
            m.add_all(
                &d.account,
                &d.region,
                &d.bus,
                rule,
                &[
                    ("InvocationAttempts", 1.0),
                    ("RetryInvocationAttempts", retry),
                ],
            );
            d.attempts += 1;
            let now = now_ms();
            let age_ok = now - d.accepted_ms < d.max_age_ms();
            let retries_ok = u64::from(d.attempts) <= d.max_retries();
            tracing::debug!(rule = %d.rule, target = %d.target_arn(), attempts = d.attempts, code = %f.code, error = %f.message, "events delivery failed");
            if f.retryable && age_ok && retries_ok {
                d.due_ms = now + backoff_ms(d.attempts);
                d.ensure_id();
                let parent = d.parent.take();
                let bytes = match serde_json::to_vec(&d) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a retry row");
                        return None;
                    }
                };
                let op = WriteOp::Put {
                    table: T_RETRY.into(),
                    key: d.id.clone(),
                    value: bytes,
                };
                if let Err(e) = events.outbox.commit(None, vec![op]).await {
                    // The outbox record (or the old retry row) stays: retried after a restart.
                    tracing::error!(error = %e, "cannot store a retry row");
                    return None;
                }
                events.delivery.schedule_retry(d);
                parent
            } else {
                m.add_all(
                    &d.account,
                    &d.region,
                    &d.bus,
                    rule,
                    &[("Invocations", 1.0), ("FailedInvocations", 1.0)],
                );
                let condition = if !f.retryable {
                    "NonRetryableError"
                } else if !age_ok {
                    "MaximumEventAgeInSeconds"
                } else {
                    "MaximumRetryAttempts"
                };
                tracing::warn!(rule = %d.rule, target = %d.target_arn(), attempts = d.attempts, code = %f.code, error = %f.message, condition, "events delivery given up");
                dead_letter(events, &d, &f, condition).await;
                finish(events, &mut d, stored)
            }
        }
    }
}

/// `d` is done: answer its outbox record to release, or delete its retry row.
fn finish(events: &Events, d: &mut Delivery, stored: bool) -> Option<Arc<str>> {
    if stored {
        events.outbox.write_later(vec![WriteOp::Delete {
            table: T_RETRY.into(),
            key: d.id.clone(),
        }]);
    }
    d.parent.take()
}

/// Send a given-up delivery to the target's dead-letter destination, if it has one.
async fn dead_letter(events: &Events, d: &Delivery, f: &Failure, condition: &str) {
    let Some(arn) = d.target.get("DeadLetterConfig").and_then(|c| s(c, "Arn")) else {
        return;
    };
    let m = &events.metrics;
    let rule = Some(&*d.rule);
    let attrs = [
        ("RULE_ARN", d.rule_arn()),
        ("TARGET_ARN", d.target_arn().to_string()),
        ("ERROR_CODE", f.code.clone()),
        ("ERROR_MESSAGE", f.message.clone()),
        ("RETRY_ATTEMPTS", d.attempts.saturating_sub(1).to_string()),
        ("EXHAUSTED_RETRY_CONDITION", condition.to_string()),
    ];
    let result = match TargetKind::of(arn, &d.region) {
        Some(TargetKind::Sns {
            account,
            region,
            topic_arn,
        }) => {
            let mut ma = Map::new();
            for (k, v) in &attrs {
                let ty = if *k == "RETRY_ATTEMPTS" {
                    "Number"
                } else {
                    "String"
                };
                ma.insert((*k).into(), json!({"DataType": ty, "StringValue": v}));
            }
            let input =
                json!({"TopicArn": topic_arn, "Message": d.event.text(), "MessageAttributes": ma});
            events
                .directory
                .invoke("SNS", &account, &region, "Publish", input)
                .await
                .map(drop)
        }
        Some(TargetKind::LogGroup {
            account,
            region,
            group,
        }) => {
            let mut doc = Map::new();
            doc.insert("event".into(), d.event.value().clone());
            for (k, v) in &attrs {
                doc.insert((*k).into(), v.clone().into());
            }
            events
                .put_log_event(
                    &account,
                    &region,
                    &group,
                    "eventbridge-dead-letters",
                    now_ms(),
                    Value::Object(doc).to_string(),
                )
                .await
        }
        _ => Err(ApiError::new(
            "ValidationException",
            format!("unsupported dead-letter destination {arn}"),
        )),
    };
    match result {
        Ok(()) => m.add(
            &d.account,
            &d.region,
            &d.bus,
            rule,
            "DeadLetterInvocations",
            1.0,
        ),
        Err(e) => {
            tracing::warn!(dlq = %arn, error = %e, "cannot send to the dead-letter destination");
            m.add(
                &d.account,
                &d.region,
                &d.bus,
                rule,
                "InvocationsFailedToBeSentToDlq",
                1.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::event_time_ms;

    #[test]
    fn event_times_round_trip() {
        for ms in [0i64, 951_782_400_000, 1_795_296_820_000] {
            assert_eq!(
                event_time_ms(&json!({"time": util::iso_seconds(ms)})),
                Some(ms)
            );
        }
        assert_eq!(event_time_ms(&json!({"time": "x"})), None);
    }

    #[test]
    fn first_attempt_ids_are_built_when_needed_and_stored_ids_kept() {
        let mut d = Delivery {
            id: String::new(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            bus: "default".into(),
            rule: "r1".into(),
            target: Arc::new(crate::targets::Target::new(
                json!({"Id": "t1", "Arn": "arn:aws:sns:us-east-1:111122223333:t"}),
            )),
            event: Arc::new(Event::from_text("{}".into())),
            accepted_ms: 1,
            attempts: 0,
            due_ms: 1,
            parent: Some("0001795296820123000000042".into()),
            item: 7,
            counters: None,
        };
        // the same id expand_skipping compares with the stored retry rows after a restart
        let want = delivery_id("0001795296820123000000042", 7, "r1", "t1");
        assert_eq!(want, "0001795296820123000000042.7.r1.t1");
        assert_eq!(d.ensure_id(), want);
        // a retry row keeps its id through storage (parent and item are not stored)
        d.parent = None;
        let back: Delivery = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        let mut back2 = back.clone();
        assert_eq!(back2.ensure_id(), want);
        assert_eq!((back.parent, back.item), (None, 0));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b1 = backoff_ms(1);
        assert!((900..=1100).contains(&b1), "{b1}");
        let b3 = backoff_ms(3);
        assert!((3600..=4400).contains(&b3), "{b3}");
        assert!(backoff_ms(30) <= MAX_BACKOFF_MS * 11 / 10);
    }

    #[test]
    fn failures_classified() {
        assert!(Failure::from(ApiError::with_status("NotImplemented", 501, "x")).retryable);
        assert!(Failure::from(ApiError::with_status("ServiceUnavailable", 503, "x")).retryable);
        assert!(Failure::from(ApiError::new("ThrottlingException", "x")).retryable);
        assert!(!Failure::from(ApiError::new("NotFound", "x")).retryable);
    }
}
