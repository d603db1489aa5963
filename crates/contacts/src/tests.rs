//! Service-level unit tests over an in-memory control store: contacts and channels with activation
//! codes, engagements walking plans on timers fired with an injected clock, acknowledgement, and a
//! "restart" (a second service over the same store) in the middle of an escalation.

use std::sync::Arc;

use opsloop_core::{Directory, RequestContext, Value};
use opsloop_store::{ControlStore, SqliteStore};
use serde_json::json;

use crate::engage::{fire_due, Delivery};
use crate::util::{Db, T_OUTBOX};
use crate::{Contacts, ContactsConfig};

fn service(store: Arc<dyn ControlStore>) -> Contacts {
    let dir = tempfile::tempdir().unwrap();
    Contacts::open(
        dir.path(),
        store,
        Directory::new(),
        ContactsConfig::default(),
    )
    .unwrap()
}

async fn call(c: &Contacts, op: &str, input: Value) -> Result<Value, opsloop_core::ApiError> {
    let ctx = RequestContext::internal("111122223333", "us-east-1", op);
    c.handle(&ctx, input).await
}

fn outbox(c: &Contacts) -> Vec<(String, Delivery)> {
    Db(&*c.inner.control).scan(T_OUTBOX, "").unwrap()
}

/// Take (remove) the outbox, as the delivery loop would after sending.
fn drain(c: &Contacts) -> Vec<Delivery> {
    let rows = outbox(c);
    for (k, _) in &rows {
        c.inner.control.delete(T_OUTBOX, k).unwrap();
    }
    rows.into_iter().map(|(_, d)| d).collect()
}

async fn person(c: &Contacts, alias: &str) -> (String, String) {
    let arn = call(
        c,
        "CreateContact",
        json!({"Alias": alias, "Type": "PERSONAL", "Plan": {"Stages": []}}),
    )
    .await
    .unwrap()["ContactArn"]
        .as_str()
        .unwrap()
        .to_string();
    let ch = call(
        c,
        "CreateContactChannel",
        json!({"ContactId": arn, "Name": "mail", "Type": "EMAIL", "DeliveryAddress": {"SimpleAddress": format!("{alias}@example.com")}}),
    )
    .await
    .unwrap()["ContactChannelArn"]
    .as_str()
    .unwrap()
    .to_string();
    let sent = drain(c);
    let code = sent[0].extra["activationCode"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sent[0].body.contains(&code));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = call(
        c,
        "ActivateContactChannel",
        json!({"ContactChannelId": ch, "ActivationCode": wrong}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    call(
        c,
        "ActivateContactChannel",
        json!({"ContactChannelId": ch, "ActivationCode": code}),
    )
    .await
    .unwrap();
    call(
        c,
        "UpdateContact",
        json!({"ContactId": arn, "Plan": {"Stages": [{"DurationInMinutes": 1, "Targets": [{"ChannelTargetInfo": {"ContactChannelId": ch}}]}]}}),
    )
    .await
    .unwrap();
    (arn, ch)
}

#[tokio::test]
async fn contacts_crud_errors_and_pagination() {
    let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
    let c = service(store);
    for a in ["alice", "bob", "carol"] {
        person(&c, a).await;
    }
    let dup = call(
        &c,
        "CreateContact",
        json!({"Alias": "bob", "Type": "PERSONAL", "Plan": {}}),
    )
    .await;
    assert_eq!(dup.unwrap_err().kind, "ConflictException");
    let p1 = call(&c, "ListContacts", json!({"MaxResults": 2}))
        .await
        .unwrap();
    assert_eq!(p1["Contacts"].as_array().unwrap().len(), 2);
    let p2 = call(
        &c,
        "ListContacts",
        json!({"MaxResults": 2, "NextToken": p1["NextToken"]}),
    )
    .await
    .unwrap();
    assert_eq!(p2["Contacts"][0]["Alias"], "carol");
    assert!(p2.get("NextToken").is_none());
    let missing = call(
        &c,
        "GetContact",
        json!({"ContactId": "arn:aws:ssm-contacts:us-east-1:111122223333:contact/zed"}),
    )
    .await;
    assert_eq!(missing.unwrap_err().kind, "ResourceNotFoundException");
    let bad = call(
        &c,
        "CreateContact",
        json!({"Alias": "oc", "Type": "ONCALL_SCHEDULE", "Plan": {"Stages": []}}),
    )
    .await;
    assert_eq!(bad.unwrap_err().kind, "ValidationException");
}

#[tokio::test]
async fn escalation_advances_on_timers_stops_on_ack_and_survives_restart() {
    let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
    let c = service(store.clone());
    let (alice, _) = person(&c, "alice").await;
    let (bob, _) = person(&c, "bob").await;
    let esc = call(
        &c,
        "CreateContact",
        json!({"Alias": "team", "Type": "ESCALATION", "Plan": {"Stages": [
            {"DurationInMinutes": 5, "Targets": [{"ContactTargetInfo": {"ContactId": alice, "IsEssential": true}}]},
            {"DurationInMinutes": 5, "Targets": [{"ContactTargetInfo": {"ContactId": bob, "IsEssential": true}}]}
        ]}}),
    )
    .await
    .unwrap()["ContactArn"]
    .as_str()
    .unwrap()
    .to_string();
    let eng = call(&c, "StartEngagement", json!({"ContactId": esc, "Sender": "ops", "Subject": "disk", "Content": "disk full", "IncidentId": "inc-1"}))
        .await
        .unwrap()["EngagementArn"]
        .as_str()
        .unwrap()
        .to_string();
    let first = drain(&c);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].address, "alice@example.com");
    // Not yet due: nothing fires.
    assert_eq!(fire_due(&c.inner, crate::util::now() + 10.0).unwrap(), 0);
    // "Restart": a new service over the same store fires stage 2 once.
    drop(c);
    let c = service(store.clone());
    let later = crate::util::now() + 301.0;
    assert!(fire_due(&c.inner, later).unwrap() >= 1);
    assert_eq!(
        fire_due(&c.inner, later).unwrap(),
        0,
        "a fired timer is gone"
    );
    let second = drain(&c);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].address, "bob@example.com");
    let pages = call(&c, "ListPagesByEngagement", json!({"EngagementId": eng}))
        .await
        .unwrap();
    assert_eq!(pages["Pages"].as_array().unwrap().len(), 2);
    let bob_page = pages["Pages"][1]["PageArn"].as_str().unwrap().to_string();
    let code = second[0].extra["acceptCode"].as_str().unwrap().to_string();
    assert!(second[0].body.contains(&code));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = call(
        &c,
        "AcceptPage",
        json!({"PageId": bob_page, "AcceptType": "READ", "AcceptCode": wrong}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    call(
        &c,
        "AcceptPage",
        json!({"PageId": bob_page, "AcceptType": "READ", "AcceptCode": code}),
    )
    .await
    .unwrap();
    let receipts = call(&c, "ListPageReceipts", json!({"PageId": bob_page}))
        .await
        .unwrap();
    assert_eq!(receipts["Receipts"][0]["ReceiptType"], "READ");
    let res = call(&c, "ListPageResolutions", json!({"PageId": bob_page}))
        .await
        .unwrap();
    assert_eq!(res["PageResolutions"][0]["Type"], "ESCALATION");
    assert_eq!(res["PageResolutions"][0]["StageIndex"], 1);
    // Acknowledged: the pending personal-plan timers fire into nothing.
    fire_due(&c.inner, later + 10_000.0).unwrap();
    assert!(drain(&c).is_empty());
    let d = call(&c, "DescribePage", json!({"PageId": bob_page}))
        .await
        .unwrap();
    assert!(d["ReadTime"].is_number());
    assert_eq!(d["Content"], "disk full");
    let list = call(&c, "ListEngagements", json!({"IncidentId": "inc-1"}))
        .await
        .unwrap();
    assert_eq!(list["Engagements"][0]["EngagementArn"], eng.as_str());
    call(
        &c,
        "StopEngagement",
        json!({"EngagementId": eng, "Reason": "fixed"}),
    )
    .await
    .unwrap();
    let e = call(&c, "DescribeEngagement", json!({"EngagementId": eng}))
        .await
        .unwrap();
    assert!(e["StopTime"].is_number());
}

#[tokio::test]
async fn oncall_schedule_pages_whoever_is_on_call() {
    let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
    let c = service(store);
    let (alice, _) = person(&c, "alice").await;
    let (bob, _) = person(&c, "bob").await;
    let now = crate::util::now();
    let rot = call(
        &c,
        "CreateRotation",
        json!({"Name": "primary", "ContactIds": [alice, bob], "TimeZoneId": "Asia/Tokyo", "StartTime": now - 3600.0,
               "Recurrence": {"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1, "DailySettings": [{"HourOfDay": 9, "MinuteOfHour": 0}]}}),
    )
    .await
    .unwrap()["RotationArn"]
    .as_str()
    .unwrap()
    .to_string();
    let shifts = call(
        &c,
        "ListRotationShifts",
        json!({"RotationId": rot, "StartTime": now, "EndTime": now + 86400.0 * 3.0}),
    )
    .await
    .unwrap();
    let first = shifts["RotationShifts"][0]["ContactIds"][0]
        .as_str()
        .unwrap()
        .to_string();
    let sched = call(
        &c,
        "CreateContact",
        json!({"Alias": "oncall", "Type": "ONCALL_SCHEDULE", "Plan": {"RotationIds": [rot]}}),
    )
    .await
    .unwrap()["ContactArn"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &c,
        "StartEngagement",
        json!({"ContactId": sched, "Sender": "ops", "Subject": "s", "Content": "c"}),
    )
    .await
    .unwrap();
    let sent = drain(&c);
    assert_eq!(sent.len(), 1);
    let who = if first == alice {
        "alice@example.com"
    } else {
        "bob@example.com"
    };
    assert_eq!(sent[0].address, who);
    let del = call(&c, "DeleteRotation", json!({"RotationId": rot})).await;
    assert_eq!(del.unwrap_err().kind, "ConflictException");
    let del = call(&c, "DeleteContact", json!({"ContactId": alice})).await;
    assert_eq!(
        del.unwrap_err().kind,
        "ConflictException",
        "alice is in a rotation"
    );
}

#[tokio::test]
async fn personal_plan_stages_advance_until_the_engagement_stops() {
    let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
    let c = service(store);
    let (alice, mail) = person(&c, "alice").await;
    let sms = call(
        &c,
        "CreateContactChannel",
        json!({"ContactId": alice, "Name": "phone", "Type": "SMS", "DeferActivation": true,
               "DeliveryAddress": {"SimpleAddress": "+12065550100"}}),
    )
    .await
    .unwrap()["ContactChannelArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(drain(&c).is_empty(), "deferred activation sends nothing");
    call(&c, "SendActivationCode", json!({"ContactChannelId": sms}))
        .await
        .unwrap();
    let code = drain(&c)[0].extra["activationCode"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &c,
        "ActivateContactChannel",
        json!({"ContactChannelId": sms, "ActivationCode": code}),
    )
    .await
    .unwrap();
    let stage = |ch: &str| json!({"DurationInMinutes": 2, "Targets": [{"ChannelTargetInfo": {"ContactChannelId": ch}}]});
    call(
        &c,
        "UpdateContact",
        json!({"ContactId": alice, "Plan": {"Stages": [stage(&mail), stage(&sms), stage(&mail)]}}),
    )
    .await
    .unwrap();
    let eng = call(&c, "StartEngagement", json!({"ContactId": alice, "Sender": "s", "Subject": "x", "Content": "y", "PublicContent": "public y"}))
        .await
        .unwrap()["EngagementArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(drain(&c)[0].kind, "EMAIL");
    let t1 = crate::util::now() + 121.0;
    fire_due(&c.inner, t1).unwrap();
    let second = drain(&c);
    assert_eq!(second[0].kind, "SMS");
    assert!(
        second[0].body.starts_with("public y"),
        "SMS carries the public content"
    );
    call(&c, "StopEngagement", json!({"EngagementId": eng}))
        .await
        .unwrap();
    fire_due(&c.inner, t1 + 1000.0).unwrap();
    assert!(
        drain(&c).is_empty(),
        "a stopped engagement sends nothing more"
    );
    let pages = call(&c, "ListPagesByContact", json!({"ContactId": alice}))
        .await
        .unwrap();
    let page = pages["Pages"][0]["PageArn"].as_str().unwrap();
    let receipts = call(&c, "ListPageReceipts", json!({"PageId": page}))
        .await
        .unwrap();
    assert_eq!(receipts["Receipts"][0]["ReceiptType"], "STOP");
}

#[tokio::test]
async fn preview_shifts_and_unknown_rotation() {
    let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
    let c = service(store);
    let out = call(
        &c,
        "ListPreviewRotationShifts",
        json!({"Members": ["a", "b"], "TimeZoneId": "UTC", "RotationStartTime": 0, "StartTime": 0, "EndTime": 86400 * 4,
               "Recurrence": {"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1, "DailySettings": [{"HourOfDay": 0, "MinuteOfHour": 0}]},
               "MaxResults": 3}),
    )
    .await
    .unwrap();
    let shifts = out["RotationShifts"].as_array().unwrap();
    assert_eq!(shifts.len(), 3);
    assert_eq!(shifts[1]["ContactIds"], json!(["b"]));
    assert!(out["NextToken"].is_string());
    let missing = call(
        &c,
        "ListRotationShifts",
        json!({"RotationId": "arn:aws:ssm-contacts:us-east-1:111122223333:rotation/nope", "EndTime": 1e10}),
    )
    .await;
    assert_eq!(missing.unwrap_err().kind, "ResourceNotFoundException");
}
