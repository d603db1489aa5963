//! Service-level tests over an in-memory control store, with fake SNS, CloudWatch and Contacts
//! peers in the `Directory` (SSM is absent, as a peer that does not answer).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::{ControlStore, SqliteStore};
use parking_lot::Mutex;
use serde_json::json;

use crate::Incidents;

const ACCOUNT: &str = "123456789012";

/// A peer that records calls and answers from a table of canned results.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(String, Value)>>,
    alarm_state: Mutex<HashMap<String, String>>,
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
        Box::pin(async move {
            self.calls
                .lock()
                .push((ctx.operation.clone(), input.clone()));
            Ok(match ctx.operation.as_str() {
                "DescribeAlarms" => {
                    let states = self.alarm_state.lock();
                    let alarms: Vec<Value> = input["AlarmNames"].as_array().into_iter().flatten()
                        .filter_map(Value::as_str)
                        .map(|n| json!({"AlarmName": n, "AlarmArn": alarm_arn(n),
                                        "StateValue": states.get(n).cloned().unwrap_or("ALARM".into())}))
                        .collect();
                    json!({"MetricAlarms": alarms})
                }
                "ListPagesByEngagement" => {
                    json!({"Pages": [{"PageArn": "p", "EngagementArn": input["EngagementId"],
                    "ContactArn": "arn:aws:ssm-contacts:us-east-1:123456789012:contact/oncall", "Sender": "s", "ReadTime": 5.0}]})
                }
                "StartEngagement" => {
                    json!({"EngagementArn": "arn:aws:ssm-contacts:us-east-1:123456789012:engagement/x/1"})
                }
                _ => json!({"MessageId": "m"}),
            })
        })
    }
}

impl Fake {
    fn ops(&self, op: &str) -> Vec<Value> {
        self.calls
            .lock()
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}")
}

struct Env {
    store: Arc<dyn ControlStore>,
    dir: Arc<Directory>,
    sns: Arc<Fake>,
    cw: Arc<Fake>,
    contacts: Arc<Fake>,
    svc: Arc<Incidents>,
}

fn env() -> Env {
    let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
    let dir = Directory::new();
    let (sns, cw, contacts) = (
        Arc::new(Fake::default()),
        Arc::new(Fake::default()),
        Arc::new(Fake::default()),
    );
    dir.insert("SNS", sns.clone());
    dir.insert("CloudWatch", cw.clone());
    dir.insert("SSM Contacts", contacts.clone());
    let svc = Arc::new(Incidents::with_minute(store.clone(), dir.clone(), 0.05));
    Env {
        store,
        dir,
        sns,
        cw,
        contacts,
        svc,
    }
}

impl Env {
    async fn call(&self, op: &str, input: Value) -> Result<Value, ApiError> {
        self.svc
            .handle(&RequestContext::internal(ACCOUNT, "us-east-1", op), input)
            .await
    }
    async fn ok(&self, op: &str, input: Value) -> Value {
        self.call(op, input)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    }
    /// A second service instance over the same store: a restart.
    fn restart(&mut self) {
        self.svc.shutdown();
        self.svc = Arc::new(Incidents::with_minute(
            self.store.clone(),
            self.dir.clone(),
            0.05,
        ));
    }
}

async fn wait_for<F: FnMut() -> bool>(mut f: F, what: &str) {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < end, "{what} not met in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn plan_input(name: &str) -> Value {
    json!({"name": name, "incidentTemplate": {"title": "Web down", "impact": 2},
           "chatChannel": {"chatbotSns": ["arn:aws:sns:us-east-1:123456789012:chat"]}})
}

async fn plan(e: &Env, input: Value, tags: Value) -> String {
    let a = e.ok("CreateResponsePlan", input).await["arn"]
        .as_str()
        .unwrap()
        .to_string();
    if tags.is_object() {
        e.ok("TagResource", json!({"resourceArn": a, "tags": tags}))
            .await;
    }
    a
}

async fn record(e: &Env, a: &str) -> Value {
    e.ok("GetIncidentRecord", json!({"arn": a})).await["incidentRecord"].clone()
}

async fn events(e: &Env, a: &str) -> Vec<String> {
    let list = e
        .ok("ListTimelineEvents", json!({"incidentRecordArn": a}))
        .await;
    let mut out = Vec::new();
    for s in list["eventSummaries"].as_array().unwrap() {
        let ev = e
            .ok(
                "GetTimelineEvent",
                json!({"incidentRecordArn": a, "eventId": s["eventId"]}),
            )
            .await;
        out.push(ev["event"]["eventData"].as_str().unwrap().to_string());
    }
    out
}

#[tokio::test]
async fn response_plan_crud_and_errors() {
    let e = env();
    let a = plan(&e, plan_input("p1"), Value::Null).await;
    assert_eq!(
        a,
        format!("arn:aws:ssm-incidents::{ACCOUNT}:response-plan/p1")
    );
    let dup = e
        .call("CreateResponsePlan", plan_input("p1"))
        .await
        .unwrap_err();
    assert_eq!(dup.kind, "ConflictException");
    let got = e.ok("GetResponsePlan", json!({"arn": a})).await;
    assert_eq!(got["incidentTemplate"]["title"], "Web down");
    e.ok(
        "UpdateResponsePlan",
        json!({"arn": a, "incidentTemplateImpact": 1, "displayName": "P"}),
    )
    .await;
    let got = e.ok("GetResponsePlan", json!({"arn": a})).await;
    assert_eq!(got["incidentTemplate"]["impact"], 1);
    assert_eq!(got["displayName"], "P");
    let bad =
        json!({"name": "p2", "incidentTemplate": {"title": "t", "impact": 1}, "chatChannel": {}});
    assert_eq!(
        e.call("CreateResponsePlan", bad).await.unwrap_err().kind,
        "ValidationException"
    );
    plan(
        &e,
        json!({"name": "p2", "incidentTemplate": {"title": "t", "impact": 1}}),
        Value::Null,
    )
    .await;
    let page = e.ok("ListResponsePlans", json!({"maxResults": 1})).await;
    assert_eq!(page["responsePlanSummaries"].as_array().unwrap().len(), 1);
    let page2 = e
        .ok(
            "ListResponsePlans",
            json!({"maxResults": 1, "nextToken": page["nextToken"]}),
        )
        .await;
    assert_eq!(page2["responsePlanSummaries"][0]["name"], "p2");
    assert!(page2.get("nextToken").is_none());
    e.ok("DeleteResponsePlan", json!({"arn": a})).await;
    assert_eq!(
        e.call("GetResponsePlan", json!({"arn": a}))
            .await
            .unwrap_err()
            .kind,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn replication_set_lifecycle() {
    let e = env();
    let a = e
        .ok(
            "CreateReplicationSet",
            json!({"regions": {"us-east-1": {}}}),
        )
        .await["arn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        e.call(
            "CreateReplicationSet",
            json!({"regions": {"us-west-2": {}}})
        )
        .await
        .unwrap_err()
        .kind,
        "ConflictException"
    );
    e.ok(
        "UpdateReplicationSet",
        json!({"arn": a, "actions": [{"addRegionAction": {"regionName": "eu-west-1"}}]}),
    )
    .await;
    let got = e.ok("GetReplicationSet", json!({"arn": a})).await;
    assert_eq!(
        got["replicationSet"]["regionMap"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    e.ok(
        "UpdateDeletionProtection",
        json!({"arn": a, "deletionProtected": true}),
    )
    .await;
    assert_eq!(
        e.call("DeleteReplicationSet", json!({"arn": a}))
            .await
            .unwrap_err()
            .kind,
        "ValidationException"
    );
    e.ok(
        "UpdateDeletionProtection",
        json!({"arn": a, "deletionProtected": false}),
    )
    .await;
    e.ok("DeleteReplicationSet", json!({"arn": a})).await;
    assert_eq!(
        e.ok("ListReplicationSets", json!({})).await["replicationSetArns"],
        json!([])
    );
}

#[tokio::test]
async fn start_incident_dedupes_and_honours_client_tokens() {
    let e = env();
    let mut p = plan_input("dd");
    p["incidentTemplate"]["dedupeString"] = json!("web");
    let a = plan(&e, p, Value::Null).await;
    let r1 = e
        .ok(
            "StartIncident",
            json!({"responsePlanArn": a, "clientToken": "t1"}),
        )
        .await;
    let again = e
        .ok(
            "StartIncident",
            json!({"responsePlanArn": a, "clientToken": "t1"}),
        )
        .await;
    assert_eq!(r1, again);
    let r2 = e.ok("StartIncident", json!({"responsePlanArn": a, "title": "other",
        "triggerDetails": {"source": "aws.cloudwatch", "timestamp": 1.0, "triggerArn": alarm_arn("cpu")}})).await;
    assert_eq!(r1, r2, "deduplicated onto the open incident");
    let rec_arn = r1["incidentRecordArn"].as_str().unwrap();
    let evs = events(&e, rec_arn).await;
    assert!(
        evs.iter().any(|d| d.contains("Deduplicated trigger")),
        "{evs:?}"
    );
    let list = e.ok("ListIncidentRecords", json!({})).await;
    assert_eq!(list["incidentRecordSummaries"].as_array().unwrap().len(), 1);
    // Resolved: a new trigger opens a new incident.
    e.ok(
        "UpdateIncidentRecord",
        json!({"arn": rec_arn, "status": "RESOLVED", "impact": 4}),
    )
    .await;
    let rec = record(&e, rec_arn).await;
    assert_eq!(rec["status"], "RESOLVED");
    assert_eq!(rec["impact"], 4);
    assert!(rec["resolvedTime"].is_number());
    let r3 = e.ok("StartIncident", json!({"responsePlanArn": a})).await;
    assert_ne!(r3, r1);
    let open = e.ok("ListIncidentRecords", json!({"filters": [{"key": "status", "condition": {"equals": {"stringValues": ["OPEN"]}}}]})).await;
    assert_eq!(open["incidentRecordSummaries"].as_array().unwrap().len(), 1);
    let bad = e.call("ListIncidentRecords", json!({"filters": [{"key": "colour", "condition": {"equals": {"stringValues": ["x"]}}}]})).await;
    assert_eq!(bad.unwrap_err().kind, "ValidationException");
    let missing = e
        .call(
            "StartIncident",
            json!({"responsePlanArn": "arn:aws:ssm-incidents::123456789012:response-plan/nope"}),
        )
        .await;
    assert_eq!(missing.unwrap_err().kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn timeline_related_items_and_findings() {
    let e = env();
    let a = plan(&e, plan_input("tl"), Value::Null).await;
    let r = e.ok("StartIncident", json!({"responsePlanArn": a})).await["incidentRecordArn"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = e
        .ok(
            "CreateTimelineEvent",
            json!({"incidentRecordArn": r, "eventTime": 100.0,
        "eventType": "Custom Event", "eventData": "\"hello\""}),
        )
        .await;
    let id = ev["eventId"].as_str().unwrap();
    e.ok(
        "UpdateTimelineEvent",
        json!({"incidentRecordArn": r, "eventId": id, "eventData": "\"bye\""}),
    )
    .await;
    let got = e
        .ok(
            "GetTimelineEvent",
            json!({"incidentRecordArn": r, "eventId": id}),
        )
        .await;
    assert_eq!(got["event"]["eventData"], "\"bye\"");
    let first = e
        .ok(
            "ListTimelineEvents",
            json!({"incidentRecordArn": r, "sortOrder": "ASCENDING", "sortBy": "EVENT_TIME"}),
        )
        .await;
    assert_eq!(
        first["eventSummaries"][0]["eventId"], id,
        "eventTime 100 sorts first"
    );
    let custom = e.ok("ListTimelineEvents", json!({"incidentRecordArn": r,
        "filters": [{"key": "eventType", "condition": {"equals": {"stringValues": ["Custom Event"]}}}]})).await;
    assert_eq!(custom["eventSummaries"].as_array().unwrap().len(), 1);
    let bad = e.call("CreateTimelineEvent", json!({"incidentRecordArn": r, "eventTime": 1.0, "eventType": "Bogus", "eventData": "x"})).await;
    assert_eq!(bad.unwrap_err().kind, "ValidationException");
    e.ok(
        "DeleteTimelineEvent",
        json!({"incidentRecordArn": r, "eventId": id}),
    )
    .await;
    assert_eq!(
        e.call(
            "GetTimelineEvent",
            json!({"incidentRecordArn": r, "eventId": id})
        )
        .await
        .unwrap_err()
        .kind,
        "ResourceNotFoundException"
    );
    let item = json!({"identifier": {"type": "OTHER", "value": {"url": "https://runbook"}}, "title": "doc"});
    e.ok(
        "UpdateRelatedItems",
        json!({"incidentRecordArn": r, "relatedItemsUpdate": {"itemToAdd": item}}),
    )
    .await;
    let dup = e
        .call(
            "UpdateRelatedItems",
            json!({"incidentRecordArn": r, "relatedItemsUpdate": {"itemToAdd": item}}),
        )
        .await;
    assert_eq!(dup.unwrap_err().kind, "ConflictException");
    assert_eq!(
        e.ok("ListRelatedItems", json!({"incidentRecordArn": r}))
            .await["relatedItems"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.ok(
        "UpdateRelatedItems",
        json!({"incidentRecordArn": r, "relatedItemsUpdate": {"itemToRemove": item["identifier"]}}),
    )
    .await;
    assert_eq!(
        e.ok("ListRelatedItems", json!({"incidentRecordArn": r}))
            .await["relatedItems"],
        json!([])
    );
    assert_eq!(
        e.ok("ListIncidentFindings", json!({"incidentRecordArn": r}))
            .await["findings"],
        json!([])
    );
    let b = e
        .ok(
            "BatchGetIncidentFindings",
            json!({"incidentRecordArn": r, "findingIds": ["f1"]}),
        )
        .await;
    assert_eq!(b["findings"], json!([]));
    assert_eq!(b["errors"][0]["findingId"], "f1");
}

#[tokio::test]
async fn alarm_incident_posts_to_chat_records_missing_runbook_and_auto_resolves() {
    let e = env();
    e.svc.start().unwrap();
    let mut p = plan_input("ar");
    p["actions"] = json!([{"ssmAutomation": {"documentName": "Restart", "roleArn": "arn:aws:iam::123456789012:role/r",
        "dynamicParameters": {"IncidentArn": {"variable": "INCIDENT_RECORD_ARN"}}}}]);
    let a = plan(&e, p, json!({"opsloop:auto-resolve": "true"})).await;
    let r = e.ok("StartIncident", json!({"responsePlanArn": a,
        "triggerDetails": {"source": "aws.cloudwatch", "timestamp": 1.0, "triggerArn": alarm_arn("cpu")}})).await;
    let r = r["incidentRecordArn"].as_str().unwrap().to_string();
    wait_for(
        || !e.sns.ops("Publish").is_empty(),
        "chat post of the opening",
    )
    .await;
    assert!(e.sns.ops("Publish")[0]["Message"]
        .as_str()
        .unwrap()
        .contains("Incident opened"));
    // SSM is absent: the runbook failure is on the timeline and blocks auto-resolve.
    let mut evs = Vec::new();
    for _ in 0..500 {
        evs = events(&e, &r).await;
        if evs.iter().any(|d| d.contains("could not be started")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        evs.iter().any(|d| d.contains("could not be started")),
        "{evs:?}"
    );
    e.cw.alarm_state.lock().insert("cpu".into(), "OK".into());
    let mut seen = false;
    for _ in 0..200 {
        if events(&e, &r)
            .await
            .iter()
            .any(|d| d.contains("changed from ALARM to OK"))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "alarm state change on the timeline");
    assert_eq!(
        record(&e, &r).await["status"],
        "OPEN",
        "a failed runbook keeps it open"
    );

    // Without actions, the alarm returning to OK resolves it.
    let b = plan(
        &e,
        plan_input("ar2"),
        json!({"opsloop:auto-resolve": "true"}),
    )
    .await;
    e.cw.alarm_state.lock().insert("mem".into(), "ALARM".into());
    let r2 = e.ok("StartIncident", json!({"responsePlanArn": b,
        "triggerDetails": {"source": "aws.cloudwatch", "timestamp": 1.0, "triggerArn": alarm_arn("mem")}})).await;
    let r2 = r2["incidentRecordArn"].as_str().unwrap().to_string();
    e.cw.alarm_state.lock().insert("mem".into(), "OK".into());
    let mut status = Value::Null;
    for _ in 0..300 {
        status = record(&e, &r2).await["status"].clone();
        if status == "RESOLVED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "RESOLVED");
    assert!(events(&e, &r2)
        .await
        .iter()
        .any(|d| d.contains("Auto-resolved")));
    wait_for(
        || {
            e.sns
                .ops("Publish")
                .iter()
                .any(|p| p["Message"].as_str().unwrap().contains("Incident resolved"))
        },
        "resolved post",
    )
    .await;
    e.svc.shutdown();
}

#[tokio::test]
async fn conditional_engagement_pages_only_if_still_open_and_survives_restart() {
    let mut e = env();
    let mut p = plan_input("ce");
    p["engagements"] = json!(["arn:aws:ssm-contacts:us-east-1:123456789012:contact/oncall"]);
    // 0.05 s minutes: 4 minutes = 0.2 s.
    let a = plan(&e, p, json!({"opsloop:engage-delay-minutes": "4"})).await;
    let fixed = e
        .ok(
            "StartIncident",
            json!({"responsePlanArn": a, "title": "fixed"}),
        )
        .await["incidentRecordArn"]
        .as_str()
        .unwrap()
        .to_string();
    e.ok(
        "UpdateIncidentRecord",
        json!({"arn": fixed, "status": "RESOLVED"}),
    )
    .await;
    let open = e
        .ok(
            "StartIncident",
            json!({"responsePlanArn": a, "title": "still broken"}),
        )
        .await["incidentRecordArn"]
        .as_str()
        .unwrap()
        .to_string();
    // Restart before the timers are due: the jobs are durable.
    e.restart();
    e.svc.start().unwrap();
    wait_for(
        || !e.contacts.ops("StartEngagement").is_empty(),
        "engagement of the open incident",
    )
    .await;
    let mut skipped = false;
    for _ in 0..200 {
        if events(&e, &fixed)
            .await
            .iter()
            .any(|d| d.contains("skipped"))
        {
            skipped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(skipped);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pages = e.contacts.ops("StartEngagement");
    assert_eq!(
        pages.len(),
        1,
        "only the open incident pages, once: {pages:?}"
    );
    assert_eq!(pages[0]["IncidentId"], open);
    assert!(events(&e, &open)
        .await
        .iter()
        .any(|d| d.contains("Engaged")));
    // The page was read: acknowledged on the timeline and in chat.
    wait_for(
        || {
            e.sns
                .ops("Publish")
                .iter()
                .any(|p| p["Message"].as_str().unwrap().contains("Page acknowledged"))
        },
        "acknowledged post",
    )
    .await;
    assert!(events(&e, &open)
        .await
        .iter()
        .any(|d| d.contains("Page acknowledged by")));
    e.svc.shutdown();
}

#[test]
fn ready_to_resolve_needs_every_alarm_ok() {
    use crate::records::Record;
    let mut r: Record = serde_json::from_value(json!({
        "arn": "a", "account": ACCOUNT, "region": "us-east-1", "plan_arn": "p", "title": "t", "impact": 3,
        "summary": null, "status": "OPEN", "created": 0.0, "modified": 0.0, "resolved": null, "dedupe": "",
        "source": {}, "chat": null, "notification_targets": [], "automation_executions": [],
        "auto_resolve": true, "alarms": {"x": "OK", "y": "ALARM"}, "automations": {}, "runbook_failed": false
    })).unwrap();
    assert!(!crate::engine::ready_to_resolve(&r));
    r.alarms.insert("y".into(), "OK".into());
    assert!(crate::engine::ready_to_resolve(&r));
    r.automations.insert("e".into(), "InProgress".into());
    assert!(!crate::engine::ready_to_resolve(&r));
    r.automations.insert("e".into(), "Success".into());
    r.auto_resolve = false;
    assert!(!crate::engine::ready_to_resolve(&r));
}

#[tokio::test]
async fn an_eventbridge_alarm_event_trigger_tracks_the_alarm() {
    let e = env();
    let a = plan(&e, plan_input("eb"), Value::Null).await;
    let event = json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
                       "resources": [alarm_arn("disk")], "detail": {"alarmName": "disk"}});
    let r = e.ok("StartIncident", json!({"responsePlanArn": a, "triggerDetails": {
        "source": "aws.events", "timestamp": 1.0,
        "triggerArn": "arn:aws:events:us-east-1:123456789012:rule/alarms", "rawData": event.to_string()}})).await;
    let r = r["incidentRecordArn"].as_str().unwrap();
    let rec = record(&e, r).await;
    assert_eq!(rec["incidentRecordSource"]["source"], "aws.events");
    assert_eq!(
        rec["incidentRecordSource"]["invokedBy"],
        "events.amazonaws.com"
    );
    // Without a template dedupe string, the alarm is the dedupe key: a second event joins it.
    assert_eq!(rec["dedupeString"], alarm_arn("disk"));
    let items = e
        .ok("ListRelatedItems", json!({"incidentRecordArn": r}))
        .await;
    assert_eq!(
        items["relatedItems"][0]["identifier"]["value"]["arn"],
        alarm_arn("disk")
    );
}
