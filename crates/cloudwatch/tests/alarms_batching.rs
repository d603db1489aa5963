//! Mass transitions: one evaluation run's transitions are saved in a few bounded control-store
//! batches (counted through a wrapping store), every transition still gets its history item, its
//! event and its SNS action; actions are dispatched ahead of a backlog of EventBridge events, and
//! events for an absent EventBridge are dropped in bulk; a transition is stamped with the clock at
//! the moment its alarm is evaluated.

mod alarm_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use alarm_support::*;
use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::{ControlStore, SqliteStore, StoreError, WriteOp};
use parking_lot::Mutex;
use serde_json::json;

/// A control store that counts its `batch` calls and remembers the largest one.
struct Counting {
    inner: SqliteStore,
    batches: AtomicUsize,
    largest: AtomicUsize,
}

impl Counting {
    fn new() -> Arc<Counting> {
        Arc::new(Counting {
            inner: SqliteStore::memory().unwrap(),
            batches: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
        })
    }

    /// Batch calls since the last reset, and reset.
    fn take(&self) -> usize {
        self.largest.store(0, Ordering::SeqCst);
        self.batches.swap(0, Ordering::SeqCst)
    }
}

impl ControlStore for Counting {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.put(table, key, value)
    }
    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(table, key)
    }
    fn scan(
        &self,
        table: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan(table, prefix, after, limit)
    }
    fn batch(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.largest.fetch_max(ops.len(), Ordering::SeqCst);
        self.inner.batch(ops)
    }
    fn wipe(&self) -> Result<(), StoreError> {
        self.inner.wipe()
    }
}

/// A peer service appending `<service> <operation>` to a log shared with other peers.
struct Logged {
    name: &'static str,
    log: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Service for Logged {
    fn model_json(&self) -> &'static str {
        "{}"
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.log
            .lock()
            .push((format!("{} {}", self.name, ctx.operation), input));
        Box::pin(async move { Ok(json!({"MessageId": "00000000-0000-0000-0000-000000000002"})) })
    }
}

fn counted_harness(counting: &Arc<Counting>) -> Harness {
    let control: Arc<dyn ControlStore> = counting.clone();
    Harness::over(
        Arc::new(MemStore::default()),
        control,
        Arc::new(AtomicI64::new(base_time())),
    )
}

/// Records of `table` whose JSON contains `needle`.
fn count_rows(control: &dyn ControlStore, table: &str, needle: &str) -> usize {
    control
        .scan(table, "", None, usize::MAX)
        .unwrap()
        .iter()
        .filter(|(_, v)| String::from_utf8_lossy(v).contains(needle))
        .count()
}

#[tokio::test]
async fn five_thousand_transitions_in_one_tick_are_batched_and_all_delivered() {
    const N: usize = 5_000;
    let counting = Counting::new();
    let h = counted_harness(&counting);
    let t0 = h.now();
    for i in 0..N {
        h.alarm(
            &format!("a{i:05}"),
            "M",
            json!({"AlarmActions": [topic("t")]}),
        )
        .await;
    }
    h.put("M", 50.0, t0 + 1000).await;
    counting.take();
    let n = h.svc.alarms().tick_at(t0 + 2000);
    assert_eq!(n, N, "every alarm transitions");
    let batches = counting.take();
    assert!(
        (1..=N.div_ceil(500)).contains(&batches),
        "{N} transitions in {batches} batches (expected at most {})",
        N.div_ceil(500)
    );
    // Durable before any dispatch: alarm records, history items and outbox items are stored.
    let control = h.control.as_ref();
    assert_eq!(
        count_rows(control, "cloudwatch.alarms", "\"ALARM\""),
        N,
        "every record saved in ALARM"
    );
    assert_eq!(
        count_rows(control, "cloudwatch.alarm_history", "StateUpdate"),
        N
    );
    assert_eq!(
        count_rows(control, "cloudwatch.alarm_outbox", ""),
        2 * N,
        "one action and one event per transition"
    );

    let delivered = h.svc.alarms().dispatch().await;
    assert_eq!(delivered, 2 * N);
    let dispatch_batches = counting.take();
    assert!(
        dispatch_batches <= N / 100 + N / 1000 + 2,
        "outbox completed in {dispatch_batches} batches"
    );
    let published: HashSet<String> = h
        .sns
        .calls()
        .iter()
        .map(|(op, input)| {
            assert_eq!(op, "Publish");
            let msg: Value = serde_json::from_str(input["Message"].as_str().unwrap()).unwrap();
            msg["AlarmName"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(h.sns.calls().len(), N, "one SNS Publish per alarm");
    assert_eq!(published.len(), N, "no alarm published twice");
    assert_eq!(
        h.events.calls().len(),
        N,
        "one state-change event per alarm"
    );
    assert_eq!(count_rows(control, "cloudwatch.alarm_outbox", ""), 0);
    assert_eq!(
        count_rows(
            control,
            "cloudwatch.alarm_history",
            "Successfully executed action"
        ),
        N
    );
    for name in ["a00000", "a02500", "a04999"] {
        assert_eq!(h.state(name).await, "ALARM");
        assert_eq!(h.history(name, Some("StateUpdate")).await.len(), 1);
        assert_eq!(h.history(name, Some("Action")).await.len(), 1);
    }
    // Nothing is sent twice.
    assert_eq!(h.svc.alarms().dispatch().await, 0);
    assert_eq!(h.sns.calls().len(), N);
}

#[tokio::test]
async fn actions_are_dispatched_ahead_of_thousands_of_pending_events() {
    let h = Harness::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let directory = Directory::new();
    directory.insert(
        "SNS",
        Arc::new(Logged {
            name: "SNS",
            log: log.clone(),
        }),
    );
    directory.insert(
        "EventBridge",
        Arc::new(Logged {
            name: "EventBridge",
            log: log.clone(),
        }),
    );
    let h = Harness {
        svc: h.svc.with_directory(directory),
        ..h
    };
    let t0 = h.now();
    // 3,000 alarms without actions transition first (their events are queued first) ...
    for i in 0..3_000 {
        h.alarm(&format!("quiet{i:04}"), "Q", json!({})).await;
    }
    h.put("Q", 50.0, t0 + 1000).await;
    assert_eq!(h.svc.alarms().tick_at(t0 + 1500), 3_000);
    // ... then one alarm with an SNS action.
    h.set_time(t0 + 2000);
    h.alarm("loud", "L", json!({"AlarmActions": [topic("pager")]}))
        .await;
    h.put("L", 50.0, t0 + 2000).await;
    assert_eq!(h.svc.alarms().run_pending().await, 1);
    assert_eq!(h.state("loud").await, "ALARM");

    h.svc.alarms().dispatch().await;
    let log = log.lock().clone();
    assert_eq!(log.len(), 3_002, "3,001 events and one action");
    let first_event = log
        .iter()
        .position(|(who, _)| who == "EventBridge PutEvents")
        .unwrap();
    let action = log
        .iter()
        .position(|(who, _)| who == "SNS Publish")
        .expect("the action was delivered");
    assert!(
        action < first_event,
        "the action went out at position {action}, behind {first_event} events"
    );
    assert_eq!(log[action].1["TopicArn"], topic("pager"));
    assert_eq!(h.history("loud", Some("Action")).await.len(), 1);
}

#[tokio::test]
async fn events_for_an_absent_eventbridge_are_dropped_in_bulk() {
    let counting = Counting::new();
    let h = counted_harness(&counting);
    let bare = Directory::new();
    bare.insert("SNS", h.sns.clone());
    let h = Harness {
        svc: h.svc.with_directory(bare),
        ..h
    };
    let t0 = h.now();
    for i in 0..2_000 {
        h.alarm(&format!("e{i:04}"), "M", json!({})).await;
    }
    h.alarm("act", "M", json!({"AlarmActions": [topic("t")]}))
        .await;
    h.put("M", 50.0, t0 + 1000).await;
    assert_eq!(h.svc.alarms().tick_at(t0 + 2000), 2_001);
    counting.take();
    assert_eq!(h.svc.alarms().dispatch().await, 2_002);
    let batches = counting.take();
    assert!(
        batches <= 4,
        "2,001 events and one action completed in {batches} batches"
    );
    assert_eq!(
        count_rows(h.control.as_ref(), "cloudwatch.alarm_outbox", ""),
        0
    );
    assert_eq!(h.sns.calls().len(), 1);
}

#[tokio::test]
async fn a_transition_is_stamped_when_its_alarm_is_evaluated() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm("late", "M", json!({"AlarmActions": [topic("t")]}))
        .await;
    // The evaluation run began at t0 + 1000, but by the time the alarm is evaluated the clock
    // reads t0 + 5000 and a datapoint stamped t0 + 4000 has arrived.
    h.put("M", 50.0, t0 + 4000).await;
    h.set_time(t0 + 5000);
    assert_eq!(h.svc.alarms().tick_at(t0 + 1000), 1);
    h.svc.alarms().dispatch().await;
    let alarm = h.describe("late").await;
    assert_eq!(alarm["StateValue"], "ALARM");
    let ms = |v: &Value| (v.as_f64().unwrap() * 1000.0).round() as i64;
    assert_eq!(ms(&alarm["StateUpdatedTimestamp"]), t0 + 5000);
    let history = h.history("late", Some("StateUpdate")).await;
    assert_eq!(history.len(), 1);
    assert_eq!(ms(&history[0]["Timestamp"]), t0 + 5000);
    let publish = &h.sns.calls()[0].1;
    let msg: Value = serde_json::from_str(publish["Message"].as_str().unwrap()).unwrap();
    // base_time() is an hour boundary: t0 + 5000 prints as hh:00:05.000.
    let change = msg["StateChangeTime"].as_str().unwrap();
    assert!(change.contains(":00:05.000"), "{change}");
}
