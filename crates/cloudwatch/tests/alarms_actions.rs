//! Alarm actions and events: SSM OpsCenter and Incident Manager payloads, failed and unsupported
//! actions as `Action` history items, absent services, the durable outbox across a restart (no
//! action lost, none sent twice), and the background engine delivering a breaching datapoint's
//! actions on its own.

mod alarm_support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alarm_support::*;
use opsloop_core::Value;
use opsloop_store::{ControlStore, SqliteStore};
use serde_json::json;

const OPSITEM: &str = "arn:aws:ssm:us-east-1:123456789012:opsitem:2#CATEGORY=Availability";
const PLAN: &str = "arn:aws:ssm-incidents::123456789012:responseplan/oncall";

fn action_items(history: &[Value]) -> Vec<(String, Value)> {
    history
        .iter()
        .filter(|i| i["HistoryItemType"] == "Action")
        .map(|i| {
            (
                i["HistorySummary"].as_str().unwrap().to_string(),
                serde_json::from_str(i["HistoryData"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn absent_services_are_failed_actions_and_quiet_events() {
    let h = Harness::new();
    // No EventBridge and no SSM in this process.
    let bare = opsloop_core::Directory::new();
    bare.insert("SNS", h.sns.clone());
    let h = Harness {
        svc: h.svc.with_directory(bare),
        ..h
    };
    let t0 = h.now();
    h.alarm(
        "ops",
        "M",
        json!({"AlarmActions": [OPSITEM, PLAN, topic("t")]}),
    )
    .await;
    h.put("M", 50.0, t0 + 1000).await;
    h.settle().await;
    assert_eq!(h.state("ops").await, "ALARM");
    let items = action_items(&h.history("ops", None).await);
    assert_eq!(
        items.len(),
        3,
        "one Action item per action, none for the event: {items:?}"
    );
    let by_resource = |arn: &str| {
        items
            .iter()
            .find(|(_, d)| d["notificationResource"] == arn)
            .cloned()
            .unwrap()
    };
    for arn in [OPSITEM, PLAN] {
        let (summary, data) = by_resource(arn);
        assert_eq!(summary, format!("Failed to execute action {arn}"));
        assert_eq!(data["actionState"], "Failed");
        assert!(
            data["error"]
                .as_str()
                .unwrap()
                .starts_with("ServiceUnavailable"),
            "{data}"
        );
    }
    let (summary, data) = by_resource(&topic("t"));
    assert_eq!(
        summary,
        format!("Successfully executed action {}", topic("t"))
    );
    assert_eq!(data["actionState"], "Succeeded");
    let published: Value =
        serde_json::from_str(data["publishedMessage"].as_str().unwrap()).unwrap();
    assert_eq!(published["NewStateValue"], "ALARM");
    // The outbox is empty afterwards.
    assert_eq!(h.svc.alarms().dispatch().await, 0);
}

#[tokio::test]
async fn ssm_and_incident_manager_payloads() {
    let h = Harness::new();
    let ssm = Arc::new(Recorder::default());
    let incidents = Arc::new(Recorder::default());
    h.directory.insert("SSM", ssm.clone());
    h.directory.insert("SSM Incidents", incidents.clone());
    let t0 = h.now();
    h.alarm("ops", "M", json!({"AlarmActions": [OPSITEM, PLAN]}))
        .await;
    h.put("M", 50.0, t0 + 1000).await;
    h.settle().await;
    let calls = ssm.calls();
    assert_eq!(calls.len(), 1);
    let (op, item) = &calls[0];
    assert_eq!(op, "CreateOpsItem");
    assert_eq!(item["Severity"], "2");
    assert_eq!(item["Category"], "Availability");
    assert_eq!(item["Source"], "CloudWatch Alarm");
    assert_eq!(item["Title"], "CloudWatch alarm - 'ops' is in ALARM state");
    let resources: Value = serde_json::from_str(
        item["OperationalData"]["/aws/resources"]["Value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(resources, json!([{"arn": alarm_arn("ops")}]));
    let calls = incidents.calls();
    assert_eq!(calls.len(), 1);
    let (op, start) = &calls[0];
    assert_eq!(op, "StartIncident");
    assert_eq!(start["responsePlanArn"], PLAN);
    assert_eq!(start["triggerDetails"]["source"], "aws.cloudwatch");
    assert_eq!(start["triggerDetails"]["triggerArn"], alarm_arn("ops"));
    let raw: Value =
        serde_json::from_str(start["triggerDetails"]["rawData"].as_str().unwrap()).unwrap();
    assert_eq!(raw["alarmName"], "ops");
    let items = action_items(&h.history("ops", None).await);
    assert!(
        items.iter().all(|(_, d)| d["actionState"] == "Succeeded"),
        "{items:?}"
    );
}

#[tokio::test]
async fn failing_and_unsupported_actions_are_recorded() {
    let h = Harness::new();
    h.sns.failing.store(true, Ordering::SeqCst);
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:f";
    h.alarm(
        "f",
        "M",
        json!({"OKActions": [topic("gone"), lambda], "TreatMissingData": "notBreaching"}),
    )
    .await;
    h.advance(60_000);
    h.tick().await;
    assert_eq!(h.state("f").await, "OK");
    let items = action_items(&h.history("f", None).await);
    assert_eq!(items.len(), 2);
    let sns = items
        .iter()
        .find(|(_, d)| d["notificationResource"] == topic("gone"))
        .unwrap();
    assert_eq!(sns.0, format!("Failed to execute action {}", topic("gone")));
    assert_eq!(sns.1["error"], "NotFound: Topic does not exist");
    let l = items
        .iter()
        .find(|(_, d)| d["notificationResource"] == lambda)
        .unwrap();
    assert!(
        l.1["error"].as_str().unwrap().contains("not supported"),
        "{}",
        l.1
    );
    // Failed actions are not retried.
    assert_eq!(h.svc.alarms().dispatch().await, 0);
    assert_eq!(h.sns.calls().len(), 1);
}

#[tokio::test]
async fn undelivered_actions_survive_a_restart_and_go_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let control: Arc<dyn ControlStore> = Arc::new(SqliteStore::open(&path).unwrap());
    let store = Arc::new(MemStore::default());
    let clock = Arc::new(AtomicI64::new(base_time()));
    let h = Harness::over(store.clone(), control, clock.clone());
    let t0 = h.now();
    h.alarm("d", "M", json!({"AlarmActions": [topic("a"), topic("b")]}))
        .await;
    h.put("M", 50.0, t0 + 1000).await;
    // Evaluate (the transition and its outbox commit together) but "crash" before delivering.
    assert_eq!(h.svc.alarms().run_pending().await, 1);
    assert!(h.sns.calls().is_empty());
    drop(h);

    let control: Arc<dyn ControlStore> = Arc::new(SqliteStore::open(&path).unwrap());
    let again = Harness::over(store, control, clock);
    assert_eq!(again.state("d").await, "ALARM");
    assert_eq!(
        again.svc.alarms().dispatch().await,
        3,
        "two actions and the event"
    );
    let topics: Vec<Value> = again
        .sns
        .calls()
        .iter()
        .map(|(_, i)| i["TopicArn"].clone())
        .collect();
    assert_eq!(topics, vec![json!(topic("a")), json!(topic("b"))]);
    assert_eq!(again.events.calls().len(), 1);
    assert_eq!(
        again.svc.alarms().dispatch().await,
        0,
        "nothing is sent twice"
    );
    // Re-evaluating the same data does not fire the actions again: no transition.
    again.svc.alarms().evaluate_all(again.now());
    again.svc.alarms().dispatch().await;
    assert_eq!(again.sns.calls().len(), 2);
    assert_eq!(action_items(&again.history("d", None).await).len(), 2);
}

#[tokio::test]
async fn the_background_engine_acts_on_a_breaching_datapoint() {
    let h = Harness::new();
    let t0 = h.now();
    h.set_time(t0 + 30_000);
    h.alarm("live", "Hot", json!({"AlarmActions": [topic("pager")]}))
        .await;
    h.svc.start();
    h.put("Hot", 99.0, t0 + 20_000).await;
    // Wait for the condition, with a deadline.
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if !h.sns.calls().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        delivered.is_ok(),
        "the engine did not deliver the ALARM action in time"
    );
    assert_eq!(h.state("live").await, "ALARM");
    assert_eq!(h.sns.calls().len(), 1);
}
