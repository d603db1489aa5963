//! In-process tests of the EventBridge core over a real SQLite control store: PutEvents → rule →
//! target through the `Directory` (a recording fake SNS), retries with backoff, dead-lettering,
//! resumption of undelivered events after the service is reopened over the same store (retry rows,
//! outbox log records in flight at a crash, rows left in the old outbox table), and PutEvents
//! through the fast decoder agreeing with the generic path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_events::Events;
use opsloop_store::{ControlStore, SqliteStore};
use parking_lot::Mutex;
use serde_json::json;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

/// A fake SNS: records every published message (Publish, and each message of the internal
/// OpsloopPublishMessages, as `{"TopicArn", "Message", ...}`); fails the first `fail` calls with a
/// retryable 503, and the first `fail_entries` OpsloopPublishMessages messages with a retryable
/// per-message failure.
#[derive(Default)]
struct FakeSns {
    calls: Mutex<Vec<Value>>,
    fail: Mutex<usize>,
    fail_entries: Mutex<usize>,
    /// Sizes of the OpsloopPublishMessages calls answered.
    batches: Mutex<Vec<usize>>,
    /// Calls never answer (a target hanging while the server crashes).
    hang: std::sync::atomic::AtomicBool,
}

impl Service for FakeSns {
    fn model_json(&self) -> &'static str {
        "{}"
    }
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            if self.hang.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let mut fail = self.fail.lock();
            if *fail > 0 {
                *fail -= 1;
                return Err(ApiError::with_status("ServiceUnavailable", 503, "down"));
            }
            match ctx.operation.as_str() {
                "Publish" => {
                    self.calls.lock().push(input);
                    Ok(json!({"MessageId": "m"}))
                }
                "OpsloopPublishMessages" => {
                    let messages = input["Messages"].as_array().unwrap();
                    assert!((1..=10).contains(&messages.len()), "{input}");
                    self.batches.lock().push(messages.len());
                    let (mut published, mut failed) = (0, Vec::new());
                    let mut fail_entries = self.fail_entries.lock();
                    for (i, m) in messages.iter().enumerate() {
                        if *fail_entries > 0 {
                            *fail_entries -= 1;
                            failed.push(json!({"Index": i, "Code": "InternalError", "Message": "busy", "SenderFault": false}));
                            continue;
                        }
                        self.calls
                            .lock()
                            .push(json!({"TopicArn": input["TopicArn"], "Message": m}));
                        published += 1;
                    }
                    Ok(json!({"Published": published, "Failed": failed}))
                }
                op => panic!("unexpected SNS operation {op}"),
            }
        })
    }
}

fn ctx(op: &str) -> RequestContext {
    let mut c = RequestContext::internal(ACCOUNT, REGION, op);
    c.request_id = "test".into();
    c.access_key_id = Some("AKID".into());
    c
}

async fn call(events: &Events, op: &str, input: Value) -> Value {
    events
        .handle(&ctx(op), input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

struct Env {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sns: Arc<FakeSns>,
    directory: Arc<Directory>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let sns = Arc::new(FakeSns::default());
        let directory = Directory::new();
        directory.insert("SNS", sns.clone());
        Env {
            _dir: dir,
            path,
            sns,
            directory,
        }
    }

    fn open(&self) -> Arc<Events> {
        let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::open(&self.path).unwrap());
        let events =
            Arc::new(Events::open(self._dir.path(), store, self.directory.clone()).unwrap());
        events.start().unwrap();
        events
    }

    async fn wait_published(&self, n: usize) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.sns.calls.lock().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < end,
                "{n} publishes expected, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn topic() -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:t")
}

async fn rule(events: &Events, name: &str, source: &str, target: Value) {
    call(
        events,
        "PutRule",
        json!({"Name": name, "EventPattern": json!({"source": [source]}).to_string()}),
    )
    .await;
    let out = call(
        events,
        "PutTargets",
        json!({"Rule": name, "Targets": [target]}),
    )
    .await;
    assert_eq!(out["FailedEntryCount"], 0, "{out}");
}

fn entries(source: &str, n: usize) -> Value {
    let e: Vec<Value> = (0..n)
        .map(
            |i| json!({"Source": source, "DetailType": "t", "Detail": json!({"i": i}).to_string()}),
        )
        .collect();
    json!({"Entries": e})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matched_events_reach_the_target_with_the_rendered_input() {
    let env = Env::new();
    let events = env.open();
    rule(
        &events,
        "r",
        "app",
        json!({"Id": "t", "Arn": topic(), "InputPath": "$.detail"}),
    )
    .await;
    let out = call(&events, "PutEvents", entries("app", 3)).await;
    assert_eq!(out["FailedEntryCount"], 0);
    call(&events, "PutEvents", entries("other", 2)).await;
    // A matched event accepted after the unmatched ones: once it is delivered, anything the
    // unmatched events had wrongly queued before it has been delivered too.
    let barrier =
        json!({"Entries": [{"Source": "app", "DetailType": "t", "Detail": r#"{"i":9}"#}]});
    call(&events, "PutEvents", barrier).await;
    let got = env.wait_published(4).await;
    let mut messages: Vec<String> = got
        .iter()
        .map(|p| p["Message"].as_str().unwrap().to_string())
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [r#"{"i":0}"#, r#"{"i":1}"#, r#"{"i":2}"#, r#"{"i":9}"#],
        "only the matched events reach the target"
    );
    assert!(got.iter().all(|p| p["TopicArn"] == topic()));
    events.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_topic_are_batched_and_failed_entries_retried() {
    let env = Env::new();
    *env.sns.fail_entries.lock() = 3;
    let events = env.open();
    rule(&events, "r", "app", json!({"Id": "t", "Arn": topic()})).await;
    let out = call(&events, "PutEvents", entries("app", 10)).await;
    assert_eq!(out["FailedEntryCount"], 0);
    let start = Instant::now();
    let got = env.wait_published(10).await;
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "three entries failed and were retried after the backoff"
    );
    let mut details: Vec<i64> = got
        .iter()
        .map(|p| {
            let e: Value = serde_json::from_str(p["Message"].as_str().unwrap()).unwrap();
            assert_eq!(e["source"], "app");
            e["detail"]["i"].as_i64().unwrap()
        })
        .collect();
    details.sort();
    assert_eq!(details, (0..10).collect::<Vec<i64>>(), "each event once");
    assert_eq!(
        *env.sns.batches.lock(),
        [10],
        "one call for the ten first attempts; the retries went one by one"
    );
    wait_backlog(&events, (0, 0)).await;
    events.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_with_backoff() {
    let env = Env::new();
    *env.sns.fail.lock() = 2;
    let events = env.open();
    rule(&events, "r", "app", json!({"Id": "t", "Arn": topic()})).await;
    let start = Instant::now();
    call(&events, "PutEvents", entries("app", 1)).await;
    env.wait_published(1).await;
    // Two failures: retried after ~1 s and ~2 s.
    assert!(
        start.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(events.backlog().0, 0);
    events.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_go_to_the_dead_letter_topic() {
    let env = Env::new();
    *env.sns.fail.lock() = 1;
    let events = env.open();
    let dlq = format!("arn:aws:sns:{REGION}:{ACCOUNT}:dlq");
    rule(
        &events,
        "r",
        "app",
        json!({"Id": "t", "Arn": topic(), "RetryPolicy": {"MaximumRetryAttempts": 0},
        "DeadLetterConfig": {"Arn": dlq}}),
    )
    .await;
    call(&events, "PutEvents", entries("app", 1)).await;
    let got = env.wait_published(1).await;
    assert_eq!(got[0]["TopicArn"], dlq);
    let attrs = &got[0]["MessageAttributes"];
    assert_eq!(attrs["ERROR_CODE"]["StringValue"], "ServiceUnavailable");
    assert_eq!(
        attrs["EXHAUSTED_RETRY_CONDITION"]["StringValue"],
        "MaximumRetryAttempts"
    );
    assert_eq!(
        attrs["RULE_ARN"]["StringValue"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/r")
    );
    let event: Value = serde_json::from_str(got[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(event["source"], "app");
    events.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_events_are_delivered_after_reopening() {
    let env = Env::new();
    // The target is down for a long time: every delivery becomes a stored retry row.
    *env.sns.fail.lock() = usize::MAX;
    let events = env.open();
    rule(&events, "r", "app", json!({"Id": "t", "Arn": topic()})).await;
    for _ in 0..5 {
        call(&events, "PutEvents", entries("app", 10)).await;
    }
    wait_backlog(&events, (50, 0)).await;
    events.shutdown();
    drop(events);
    // "Restart": the target is back; a new service over the same store finishes the work.
    *env.sns.fail.lock() = 0;
    let events = env.open();
    let got = env.wait_published(50).await;
    let ids = event_ids(&got);
    assert_eq!(
        ids.len(),
        50,
        "every accepted event delivered (at least once)"
    );
    wait_backlog(&events, (0, 0)).await;
    events.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_survives_reopening_and_managed_rules_are_protected() {
    let env = Env::new();
    let events = env.open();
    call(&events, "CreateEventBus", json!({"Name": "orders"})).await;
    call(&events, "PutRule", json!({"Name": "r", "EventBusName": "orders", "EventPattern": "{\"source\":[\"a\"]}", "State": "DISABLED"})).await;
    // Only opsloop's own services (internal calls) can create managed rules.
    let internal = RequestContext::internal(ACCOUNT, REGION, "PutRule");
    events
        .handle(&internal, json!({"Name": "managed", "EventPattern": "{\"source\":[\"aws.ssm\"]}", "ManagedBy": "ssm.amazonaws.com"}))
        .await
        .unwrap();
    events.shutdown();
    drop(events);
    let events = env.open();
    let d = call(
        &events,
        "DescribeRule",
        json!({"Name": "r", "EventBusName": "orders"}),
    )
    .await;
    assert_eq!(d["State"], "DISABLED");
    let d = call(&events, "DescribeRule", json!({"Name": "managed"})).await;
    assert_eq!(d["ManagedBy"], "ssm.amazonaws.com");
    let e = events
        .handle(&ctx("DeleteRule"), json!({"Name": "managed"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "ManagedRuleException");
    let e = events
        .handle(&ctx("DisableRule"), json!({"Name": "managed"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "ManagedRuleException");
    call(
        &events,
        "DeleteRule",
        json!({"Name": "managed", "Force": true}),
    )
    .await;
    events.shutdown();
}

/// PutEvents through the fast decoder (`decode_json_input` + `call_decoded`) answers and delivers
/// as the generic path does. Its answer is JSON text written by the service; the generic answer is
/// the document, compared both as it is and as the wire layer encodes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_decoded_put_events_matches_the_generic_path() {
    let env = Env::new();
    let events = env.open();
    rule(&events, "r", "app", json!({"Id": "t", "Arn": topic()})).await;
    let body = json!({"Entries": [
        {"Source": "app", "DetailType": "t", "Detail": "{ \"i\" : [1, 2.50] }", "Resources": ["r1", "r\"2"]},
        {"Source": "app", "DetailType": "t"},
        {"Source": "app", "DetailType": "t", "Detail": "[1]"},
        {"Source": "aws.ec2", "DetailType": "t", "Detail": "{}"},
        {"Source": "app", "DetailType": "t", "Detail": "{}", "EventBusName": "missing"},
        {"Source": "other", "DetailType": "t", "Detail": "{}", "EventBusName": "default"},
    ]});
    let raw = serde_json::to_vec(&body).unwrap();
    let decoded = events
        .decode_json_input("PutEvents", &raw)
        .expect("the fast path takes this body");
    let opsloop_core::DecodedOutput::Json(text) = events
        .call_decoded(&ctx("PutEvents"), decoded)
        .await
        .unwrap()
    else {
        panic!("the fast path answers JSON text");
    };
    let mut fast: Value = serde_json::from_slice(&text).expect("the answer is JSON");
    let mut generic = call(&events, "PutEvents", body).await;
    let model = opsloop_wire::Model::parse(events.model_json()).unwrap();
    let op = model.operation("PutEvents").unwrap();
    let encoded = opsloop_wire::codec::json::encode_output(&model, op, &generic);
    let mut wire_generic: Value = serde_json::from_slice(&encoded).unwrap();
    for out in [&mut fast, &mut generic, &mut wire_generic] {
        for e in out["Entries"].as_array_mut().unwrap() {
            if let Some(id) = e.as_object_mut().unwrap().remove("EventId") {
                assert_eq!(id.as_str().unwrap().len(), 36);
                e["EventId"] = json!("<id>");
            }
        }
    }
    assert_eq!(fast, generic);
    assert_eq!(fast, wire_generic);
    assert_eq!(fast["FailedEntryCount"], 4, "{fast}");
    assert_eq!(fast["Entries"].as_array().unwrap().len(), 6, "{fast}");
    let published = env.wait_published(2).await;
    let strip = |p: &Value| {
        let mut e: Value = serde_json::from_str(p["Message"].as_str().unwrap()).unwrap();
        let o = e.as_object_mut().unwrap();
        o.remove("id");
        o.remove("time");
        e
    };
    assert_eq!(strip(&published[0]), strip(&published[1]));
    assert_eq!(strip(&published[0])["resources"], json!(["r1", "r\"2"]));
    assert_eq!(strip(&published[0])["detail"], json!({"i": [1, 2.5]}));
    events.shutdown();
}

fn event_ids(published: &[Value]) -> std::collections::HashSet<String> {
    published
        .iter()
        .map(|p| {
            serde_json::from_str::<Value>(p["Message"].as_str().unwrap()).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn wait_backlog_empty(events: &Events) {
    wait_backlog(events, (0, 0)).await;
}

/// Wait (10 s at most) until the service's backlog is `want`.
async fn wait_backlog(events: &Events, want: (usize, usize)) {
    let end = Instant::now() + Duration::from_secs(10);
    while events.backlog() != want {
        assert!(Instant::now() < end, "backlog {:?}", events.backlog());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Records acknowledged and still in flight when the server stops dead are in the outbox log; the
/// reopened service delivers each of them, ignoring a torn frame the crash left at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_flight_at_a_crash_are_delivered_after_reopening() {
    let env = Env::new();
    env.sns
        .hang
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let events = env.open();
    rule(&events, "r", "app", json!({"Id": "t", "Arn": topic()})).await;
    let mut accepted = std::collections::HashSet::new();
    for _ in 0..5 {
        let out = call(&events, "PutEvents", entries("app", 10)).await;
        assert_eq!(out["FailedEntryCount"], 0);
        for e in out["Entries"].as_array().unwrap() {
            accepted.insert(e["EventId"].as_str().unwrap().to_string());
        }
    }
    // every record waits for its hanging target
    wait_backlog(&events, (0, 5)).await;
    events.shutdown();
    drop(events);
    // The crash tore the frame being written after the last acknowledged group.
    let dir = opsloop_events::outbox_dir(env._dir.path());
    let segs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segs[0])
        .unwrap();
    std::io::Write::write_all(&mut f, &[77, 1, 0, 0, 9, 9, 9, 9, 1, 23]).unwrap();
    drop(f);
    assert!(
        SqliteStore::open(&env.path)
            .unwrap()
            .scan("events.outbox", "", None, 10)
            .unwrap()
            .is_empty(),
        "the records are in the log, not the control store"
    );
    env.sns
        .hang
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let events = env.open();
    let got = env.wait_published(50).await;
    assert_eq!(event_ids(&got), accepted, "every accepted event delivered");
    wait_backlog_empty(&events).await;
    events.shutdown();
    drop(events);
    // Settled records leave nothing to deliver again: their tombstones were written at stop.
    assert!(opsloop_events::outlog::OutLog::peek(&dir)
        .unwrap()
        .is_empty());
}

/// A server upgraded with records still in the old control-store outbox table delivers them and
/// deletes them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_left_in_the_old_outbox_table_are_delivered_after_an_upgrade() {
    let env = Env::new();
    let events = env.open();
    rule(&events, "r", "app", json!({"Id": "t", "Arn": topic()})).await;
    events.shutdown();
    drop(events);
    // Rows as the version before the outbox log wrote them (one per PutEvents call, names in
    // each item), keyed by acceptance time.
    let store = SqliteStore::open(&env.path).unwrap();
    for n in 0..3 {
        let row = json!({"accepted_ms": 1_795_296_820_000i64 + n, "items": [
            {"account": ACCOUNT, "region": REGION, "bus": "default", "rules": ["r"],
             "event": {"version": "0", "id": format!("old-{n}"), "detail-type": "t", "source": "app",
                       "account": ACCOUNT, "time": "2026-11-21T12:00:00Z", "region": REGION,
                       "resources": [], "detail": {"n": n}}}]});
        store
            .put(
                "events.outbox",
                &format!("{:013}{:010}", 1_795_296_820_000i64 + n, n + 1),
                row.to_string().as_bytes(),
            )
            .unwrap();
    }
    drop(store);
    let events = env.open();
    let got = env.wait_published(3).await;
    let want: std::collections::HashSet<String> = (0..3).map(|n| format!("old-{n}")).collect();
    assert_eq!(event_ids(&got), want);
    wait_backlog_empty(&events).await;
    // the drained rows are deleted (deletes ride along with the next commit or go out ≤ 100 ms)
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let left = SqliteStore::open(&env.path)
            .unwrap()
            .scan("events.outbox", "", None, 10)
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "rows left: {}", left.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    events.shutdown();
}
