//! In-process tests of the whole service: the operations over a real SQLite control store, firing
//! driven with explicit instants (no sleeping), restarts over the same database file, and delivery
//! to fake peer services registered in the `Directory`.

use std::sync::Arc;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::{ControlStore, SqliteStore};
use parking_lot::Mutex;
use serde_json::json;

use crate::delivery::{self, Outcome};
use crate::model::{now_ms, Delivery, OUTBOX};
use crate::timer::fire_due;
use crate::Scheduler;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alerts";
const ROLE: &str = "arn:aws:iam::123456789012:role/scheduler";

/// A peer service that records calls and answers from a script (then `{}`).
struct Fake {
    calls: Mutex<Vec<(String, Value)>>,
    script: Mutex<Vec<Result<Value, ApiError>>>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            calls: Mutex::new(Vec::new()),
            script: Mutex::new(Vec::new()),
        })
    }
    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().clone()
    }
}

impl Service for Fake {
    fn model_json(&self) -> &'static str {
        "{}"
    }
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.calls.lock().push((ctx.operation.clone(), input));
        let answer = {
            let mut script = self.script.lock();
            if script.is_empty() {
                Ok(json!({}))
            } else {
                script.remove(0)
            }
        };
        Box::pin(async move { answer })
    }
}

struct Fixture {
    scheduler: Scheduler,
    sns: Arc<Fake>,
}

fn open(store: Arc<dyn ControlStore>) -> Fixture {
    let directory = Directory::new();
    let sns = Fake::new();
    directory.insert("SNS", sns.clone());
    let scheduler = Scheduler::open(std::path::Path::new("."), store, directory).unwrap();
    Fixture { scheduler, sns }
}

fn memory() -> Fixture {
    open(Arc::new(SqliteStore::memory().unwrap()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

impl Fixture {
    fn call(&self, op: &str, input: Value) -> Result<Value, ApiError> {
        let ctx = RequestContext::internal(ACCOUNT, REGION, op);
        rt().block_on(self.scheduler.handle(&ctx, input))
    }
    fn ok(&self, op: &str, input: Value) -> Value {
        self.call(op, input).unwrap_or_else(|e| panic!("{op}: {e}"))
    }
    fn err(&self, op: &str, input: Value) -> ApiError {
        self.call(op, input).expect_err(op)
    }
    fn outbox(&self) -> Vec<Delivery> {
        self.scheduler
            .inner
            .store
            .scan(OUTBOX, "", None, 1000)
            .unwrap()
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).unwrap())
            .collect()
    }
    /// Attempt every outbox delivery once, at `now`.
    fn deliver(&self, now: i64) -> Vec<Outcome> {
        let inner = &self.scheduler.inner;
        let (ready, _) = delivery::ready(inner, now).unwrap();
        rt().block_on(async {
            let mut out = Vec::new();
            for (key, d) in ready {
                let outcome = delivery::attempt(inner, &d).await;
                delivery::settle(inner, &key, &d, &outcome, now).unwrap();
                out.push(outcome);
            }
            out
        })
    }
}

fn schedule(name: &str, expression: &str) -> Value {
    json!({
        "Name": name,
        "ScheduleExpression": expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": TOPIC, "RoleArn": ROLE, "Input": "tick <aws.scheduler.scheduled-time>"},
    })
}

#[test]
fn schedule_crud() {
    let f = memory();
    let mut input = schedule("daily", "cron(0 9 * * ? *)");
    input["ScheduleExpressionTimezone"] = json!("America/New_York");
    input["Description"] = json!("every morning");
    let arn = f.ok("CreateSchedule", input.clone())["ScheduleArn"].clone();
    assert_eq!(
        arn,
        json!(format!(
            "arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/daily"
        ))
    );
    let got = f.ok("GetSchedule", json!({"Name": "daily"}));
    assert_eq!(got["ScheduleExpressionTimezone"], "America/New_York");
    assert_eq!(got["Description"], "every morning");
    assert_eq!(got["State"], "ENABLED");
    assert_eq!(got["ActionAfterCompletion"], "NONE");
    assert_eq!(got["Target"]["Arn"], TOPIC);
    let e = f.err("CreateSchedule", input.clone());
    assert_eq!(
        (e.kind.as_str(), e.message.as_str()),
        ("ConflictException", "Schedule daily already exists.")
    );
    // A retried create (same ClientToken) answers with the schedule; another token conflicts.
    let mut tokened = schedule("tokened", "rate(1 hour)");
    tokened["ClientToken"] = json!("tok-1");
    let first = f.ok("CreateSchedule", tokened.clone());
    assert_eq!(f.ok("CreateSchedule", tokened.clone()), first);
    tokened["ClientToken"] = json!("tok-2");
    assert_eq!(f.err("CreateSchedule", tokened).kind, "ConflictException");

    let mut update = schedule("daily", "rate(2 hours)");
    update["State"] = json!("DISABLED");
    f.ok("UpdateSchedule", update);
    let got = f.ok("GetSchedule", json!({"Name": "daily"}));
    assert_eq!(got["ScheduleExpression"], "rate(2 hours)");
    assert_eq!(got["State"], "DISABLED");
    assert!(
        got.get("Description").is_none(),
        "update replaces every field"
    );

    let e = f.err("UpdateSchedule", schedule("nope", "rate(1 hour)"));
    assert_eq!(
        (e.kind.as_str(), e.message.as_str()),
        ("ResourceNotFoundException", "Schedule nope does not exist.")
    );
    let e = f.err("CreateSchedule", schedule("bad", "cron(0 9 * * * *)"));
    assert_eq!(e.kind, "ValidationException");
    assert_eq!(e.message, "Invalid Schedule Expression cron(0 9 * * * *)");
    let mut other_group = schedule("x", "rate(1 hour)");
    other_group["GroupName"] = json!("missing");
    let e = f.err("CreateSchedule", other_group);
    assert_eq!(e.message, "Schedule group missing does not exist.");

    f.ok("DeleteSchedule", json!({"Name": "daily"}));
    assert_eq!(
        f.err("GetSchedule", json!({"Name": "daily"})).kind,
        "ResourceNotFoundException"
    );
    assert_eq!(
        f.err("DeleteSchedule", json!({"Name": "daily"})).kind,
        "ResourceNotFoundException"
    );
}

#[test]
fn list_filters_and_pages() {
    let f = memory();
    f.ok("CreateScheduleGroup", json!({"Name": "ops"}));
    for i in 0..7 {
        let mut s = schedule(&format!("job-{i}"), "rate(1 hour)");
        if i % 2 == 0 {
            s["State"] = json!("DISABLED");
        }
        f.ok("CreateSchedule", s);
    }
    let mut in_ops = schedule("job-ops", "rate(1 hour)");
    in_ops["GroupName"] = json!("ops");
    f.ok("CreateSchedule", in_ops);
    let all = f.ok("ListSchedules", json!({}));
    assert_eq!(all["Schedules"].as_array().unwrap().len(), 8);
    let ops = f.ok("ListSchedules", json!({"GroupName": "ops"}));
    assert_eq!(ops["Schedules"][0]["Name"], "job-ops");
    assert_eq!(ops["Schedules"][0]["Target"]["Arn"], TOPIC);
    let disabled = f.ok(
        "ListSchedules",
        json!({"State": "DISABLED", "GroupName": "default"}),
    );
    assert_eq!(disabled["Schedules"].as_array().unwrap().len(), 4);
    let prefixed = f.ok("ListSchedules", json!({"NamePrefix": "job-o"}));
    assert_eq!(prefixed["Schedules"].as_array().unwrap().len(), 1);
    // Pages of three over the eight.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"MaxResults": 3});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let page = f.ok("ListSchedules", req);
        for s in page["Schedules"].as_array().unwrap() {
            names.push(s["Name"].as_str().unwrap().to_string());
        }
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names.len(), 8);
    assert_eq!(
        f.err("ListSchedules", json!({"NextToken": "zz"})).kind,
        "ValidationException"
    );
    assert_eq!(
        f.err("ListSchedules", json!({"GroupName": "none"})).kind,
        "ResourceNotFoundException"
    );
}

#[test]
fn groups_and_tags() {
    let f = memory();
    let default = f.ok("GetScheduleGroup", json!({"Name": "default"}));
    assert_eq!(default["State"], "ACTIVE");
    let arn = f.ok(
        "CreateScheduleGroup",
        json!({"Name": "ops", "Tags": [{"Key": "team", "Value": "sre"}]}),
    )["ScheduleGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        arn,
        format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/ops")
    );
    assert_eq!(
        f.err("CreateScheduleGroup", json!({"Name": "ops"})).kind,
        "ConflictException"
    );
    assert_eq!(
        f.err("CreateScheduleGroup", json!({"Name": "default"}))
            .kind,
        "ConflictException"
    );
    let groups = f.ok("ListScheduleGroups", json!({}));
    let names: Vec<&str> = groups["ScheduleGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "ops"]);
    assert_eq!(
        f.ok("ListScheduleGroups", json!({"NamePrefix": "o"}))["ScheduleGroups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    f.ok("TagResource", json!({"ResourceArn": arn, "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "ops"}]}));
    assert_eq!(
        f.ok("ListTagsForResource", json!({"ResourceArn": arn}))["Tags"],
        json!([{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "prod"}])
    );
    f.ok(
        "UntagResource",
        json!({"ResourceArn": arn, "TagKeys": ["team"]}),
    );
    assert_eq!(
        f.ok("ListTagsForResource", json!({"ResourceArn": arn}))["Tags"],
        json!([{"Key": "env", "Value": "prod"}])
    );
    let elsewhere = format!("arn:aws:scheduler:{REGION}:999999999999:schedule-group/ops");
    assert_eq!(
        f.err("ListTagsForResource", json!({"ResourceArn": elsewhere}))
            .kind,
        "ResourceNotFoundException"
    );

    // Deleting a group deletes its schedules (and their timer rows).
    let mut s = schedule("in-ops", "rate(1 minute)");
    s["GroupName"] = json!("ops");
    f.ok("CreateSchedule", s);
    f.ok("DeleteScheduleGroup", json!({"Name": "ops"}));
    assert_eq!(
        f.err("GetScheduleGroup", json!({"Name": "ops"})).kind,
        "ResourceNotFoundException"
    );
    assert_eq!(f.ok("ListSchedules", json!({}))["Schedules"], json!([]));
    assert_eq!(
        fire_due(&f.scheduler.inner, now_ms() + 3_600_000)
            .unwrap()
            .fired,
        0
    );
    assert_eq!(
        f.err("DeleteScheduleGroup", json!({"Name": "default"}))
            .kind,
        "ValidationException"
    );
}

#[test]
fn fires_once_per_occurrence_without_drift() {
    let f = memory();
    let before = now_ms();
    f.ok("CreateSchedule", schedule("every-minute", "rate(1 minute)"));
    let inner = &f.scheduler.inner;
    // Created without StartDate: the first occurrence is the creation instant.
    let first = fire_due(inner, now_ms()).unwrap();
    assert_eq!(first.fired, 1);
    let anchor = f.outbox()[0].scheduled_ms;
    assert!(anchor >= before);
    // Asking again at the same instant fires nothing.
    assert_eq!(fire_due(inner, now_ms()).unwrap().fired, 0);
    assert_eq!(first.next_due, Some(anchor + 60_000));
    // Waking late (but within the catch-up allowance) keeps the grid.
    for k in 1..=5 {
        assert_eq!(
            fire_due(inner, anchor + k * 60_000 + 20_000).unwrap().fired,
            1
        );
    }
    let scheduled: Vec<i64> = f.outbox().iter().map(|d| d.scheduled_ms - anchor).collect();
    let mut sorted = scheduled.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 60_000, 120_000, 180_000, 240_000, 300_000]);
}

#[test]
fn restart_neither_repeats_nor_loses_and_collapses_missed_fires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let anchor;
    {
        let f = open(Arc::new(SqliteStore::open(&path).unwrap()));
        f.ok("CreateSchedule", schedule("m", "rate(1 minute)"));
        let pass = fire_due(&f.scheduler.inner, now_ms()).unwrap();
        assert_eq!(pass.fired, 1);
        anchor = f.outbox()[0].scheduled_ms;
    }
    // "Restart": a new service over the same file. The fire already recorded is not repeated.
    let f = open(Arc::new(SqliteStore::open(&path).unwrap()));
    assert_eq!(
        fire_due(&f.scheduler.inner, anchor + 59_999).unwrap().fired,
        0
    );
    assert_eq!(f.outbox().len(), 1);
    // Down for ten minutes: the first missed occurrence is delivered once, then the schedule
    // resumes with the first occurrence after the restart.
    let restart = anchor + 10 * 60_000 + 30_000;
    assert_eq!(fire_due(&f.scheduler.inner, restart).unwrap().fired, 1);
    assert_eq!(fire_due(&f.scheduler.inner, restart).unwrap().fired, 0);
    let mut scheduled: Vec<i64> = f.outbox().iter().map(|d| d.scheduled_ms - anchor).collect();
    scheduled.sort();
    assert_eq!(scheduled, [0, 60_000]);
    let pass = fire_due(&f.scheduler.inner, restart).unwrap();
    assert_eq!(pass.next_due, Some(anchor + 11 * 60_000));
}

#[test]
fn one_time_schedule_fires_and_deletes_itself() {
    let f = memory();
    let at = now_ms() + 120_000;
    let text = opsloop_schedule::iso8601_utc(at);
    let mut s = schedule("once", &format!("at({})", &text[..19]));
    s["ActionAfterCompletion"] = json!("DELETE");
    f.ok("CreateSchedule", s);
    let mut keep = schedule("once-kept", &format!("at({})", &text[..19]));
    keep["ScheduleExpressionTimezone"] = json!("UTC");
    f.ok("CreateSchedule", keep);
    let inner = &f.scheduler.inner;
    assert_eq!(fire_due(inner, at - 1_001).unwrap().fired, 0);
    assert_eq!(fire_due(inner, at).unwrap().fired, 2);
    assert_eq!(
        f.err("GetSchedule", json!({"Name": "once"})).kind,
        "ResourceNotFoundException"
    );
    assert_eq!(
        f.ok("GetSchedule", json!({"Name": "once-kept"}))["Name"],
        "once-kept"
    );
    assert_eq!(fire_due(inner, at + 86_400_000).unwrap().fired, 0);
    // Delivered to SNS with the context attribute filled in.
    let outcomes = f.deliver(at + 10);
    assert_eq!(outcomes, [Outcome::Delivered, Outcome::Delivered]);
    let calls = f.sns.calls();
    assert_eq!(calls[0].0, "Publish");
    assert_eq!(calls[0].1["TopicArn"], TOPIC);
    assert_eq!(calls[0].1["Message"], json!(format!("tick {text}")));
    assert!(f.outbox().is_empty());
}

#[test]
fn retries_then_dead_letters() {
    let f = memory();
    let mut s = schedule("flaky", "rate(1 hour)");
    s["Target"]["RetryPolicy"] =
        json!({"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600});
    s["Target"]["DeadLetterConfig"] = json!({"Arn": "arn:aws:sqs:us-east-1:123456789012:dlq"});
    f.ok("CreateSchedule", s);
    let now = now_ms();
    fire_due(&f.scheduler.inner, now).unwrap();
    *f.sns.script.lock() = vec![
        Err(ApiError::with_status("InternalError", 500, "boom")),
        Err(ApiError::with_status("ServiceUnavailable", 503, "down")),
        Err(ApiError::with_status("InternalError", 500, "boom again")),
    ];
    let mut t = now;
    for attempt in 0..3 {
        let outcomes = f.deliver(t);
        assert_eq!(outcomes.len(), 1, "attempt {attempt}");
        assert!(matches!(&outcomes[0], Outcome::Failed { retry: true, .. }));
        let pending = f.outbox();
        if attempt < 2 {
            assert_eq!(pending[0].attempts, attempt + 1);
            // Not ready before its backoff.
            assert!(f.deliver(t).is_empty());
            t = pending[0].next_attempt_ms;
        } else {
            assert!(pending.is_empty());
        }
    }
    let letters =
        delivery::dead_letters(&f.scheduler.inner, "arn:aws:sqs:us-east-1:123456789012:dlq");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["Attributes"]["ERROR_MESSAGE"], "boom again");
    assert_eq!(letters[0]["Attributes"]["RETRY_ATTEMPTS"], 2);
    assert_eq!(
        letters[0]["Attributes"]["EXHAUSTED_RETRY_CONDITION"],
        "MaximumRetryAttempts"
    );
    assert_eq!(f.sns.calls().len(), 3);
}

#[test]
fn rejected_and_unserved_targets_are_not_retried() {
    let f = memory();
    f.ok("CreateSchedule", schedule("rejected", "rate(1 hour)"));
    let mut ssm = schedule("to-ssm", "rate(1 hour)");
    ssm["Target"] = json!({"Arn": "arn:aws:scheduler:::aws-sdk:ssm:startAutomationExecution", "RoleArn": ROLE, "Input": "{\"DocumentName\":\"X\"}"});
    f.ok("CreateSchedule", ssm);
    fire_due(&f.scheduler.inner, now_ms()).unwrap();
    *f.sns.script.lock() = vec![Err(ApiError::new("NotFound", "Topic does not exist"))];
    let outcomes = f.deliver(now_ms());
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Failed { retry: false, .. })),
        "{outcomes:?}"
    );
    assert!(f.outbox().is_empty());
}

#[test]
fn background_loops_deliver_in_real_time() {
    let runtime = rt();
    let f = memory();
    let scheduler = Arc::new(f.scheduler);
    runtime.block_on(async {
        scheduler.start().unwrap();
        let ctx = RequestContext::internal(ACCOUNT, REGION, "CreateSchedule");
        scheduler
            .handle(&ctx, schedule("now", "rate(1 day)"))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while f.sns.calls().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no delivery within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        scheduler.shutdown();
    });
    assert_eq!(f.sns.calls().len(), 1);
}
