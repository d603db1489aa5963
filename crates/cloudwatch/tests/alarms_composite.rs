//! Composite alarms: creation-time evaluation, re-evaluation when children change (also through a
//! composite of composites), the reason and reason data, rule validation (missing children,
//! cycles), deletion rules, and action suppression (suppressor in ALARM, wait and extension
//! periods).

mod alarm_support;

use alarm_support::*;
use serde_json::{json, Value};

async fn set(h: &Harness, name: &str, state: &str) {
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": name, "StateValue": state, "StateReason": "test"}),
    )
    .await;
}

#[tokio::test]
async fn composite_state_follows_its_children() {
    let h = Harness::new();
    h.alarm("cpu", "CPU", json!({})).await;
    h.alarm("disk", "Disk", json!({})).await;
    h.alarm("deploy", "Deploy", json!({})).await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "svc", "AlarmRule": "(ALARM(cpu) OR ALARM(\"disk\")) AND NOT ALARM(deploy)",
               "AlarmActions": [topic("pager")], "AlarmDescription": "service health"}),
    )
    .await;
    // Evaluated at once: a composite alarm is INSUFFICIENT_DATA only before its first evaluation.
    let c = h.describe("svc").await;
    assert_eq!(c["StateValue"], "OK");
    assert_eq!(
        c["AlarmRule"],
        "(ALARM(cpu) OR ALARM(\"disk\")) AND NOT ALARM(deploy)"
    );

    h.advance(1000);
    set(&h, "disk", "ALARM").await;
    h.svc.alarms().dispatch().await;
    let c = h.describe("svc").await;
    assert_eq!(c["StateValue"], "ALARM");
    let reason = c["StateReason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("{} transitioned to ALARM at ", alarm_arn("disk")))
            && reason.ends_with(" UTC"),
        "{reason}"
    );
    let data: Value = serde_json::from_str(c["StateReasonData"].as_str().unwrap()).unwrap();
    assert_eq!(data["triggeringAlarms"][0]["arn"], alarm_arn("disk"));
    assert_eq!(data["triggeringAlarms"][0]["state"]["value"], "ALARM");
    // The composite's SNS notification carries the rule and the triggering children.
    let publishes = h.sns.calls();
    assert_eq!(publishes.len(), 1);
    let msg: Value = serde_json::from_str(publishes[0].1["Message"].as_str().unwrap()).unwrap();
    assert_eq!(msg["AlarmRule"], c["AlarmRule"]);
    assert_eq!(msg["TriggeringChildren"][0]["Arn"], alarm_arn("disk"));
    assert!(msg.get("Trigger").is_none());
    // The event's configuration carries the rule.
    let detail: Value = serde_json::from_str(
        h.events.calls().last().unwrap().1["Entries"][0]["Detail"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(detail["alarmName"], "svc");
    assert_eq!(detail["configuration"]["alarmRule"], c["AlarmRule"]);

    set(&h, "deploy", "ALARM").await;
    assert_eq!(h.state("svc").await, "OK", "NOT ALARM(deploy) is false now");
    set(&h, "deploy", "OK").await;
    assert_eq!(h.state("svc").await, "ALARM");
    set(&h, "disk", "OK").await;
    assert_eq!(h.state("svc").await, "OK");
    let updates = h.history("svc", Some("StateUpdate")).await;
    assert_eq!(
        updates.len(),
        5,
        "INSUFFICIENT_DATA->OK, ->ALARM, ->OK, ->ALARM, ->OK"
    );
    assert_eq!(updates[0]["AlarmType"], "CompositeAlarm");
}

#[tokio::test]
async fn composites_of_composites_and_arn_references() {
    let h = Harness::new();
    h.alarm("leaf", "L", json!({})).await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "mid", "AlarmRule": format!("ALARM({})", alarm_arn("leaf"))}),
    )
    .await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "top", "AlarmRule": "ALARM(mid) OR TRUE AND FALSE"}),
    )
    .await;
    assert_eq!(h.state("top").await, "OK");
    set(&h, "leaf", "ALARM").await;
    assert_eq!(h.state("mid").await, "ALARM");
    assert_eq!(h.state("top").await, "ALARM");
    // A metric alarm's real evaluation propagates too.
    h.advance(60_000);
    h.tick().await;
    assert_eq!(h.state("leaf").await, "INSUFFICIENT_DATA");
    assert_eq!(h.state("top").await, "OK");
    let children = h
        .ok("DescribeAlarms", json!({"ChildrenOfAlarmName": "top"}))
        .await;
    assert_eq!(children["CompositeAlarms"][0]["AlarmName"], "mid");
}

#[tokio::test]
async fn rules_must_reference_existing_alarms_without_cycles() {
    let h = Harness::new();
    h.alarm("a", "A", json!({})).await;
    let e = expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "c", "AlarmRule": "ALARM(a) OR OK(missing)"}),
        )
        .await,
        "ValidationError",
    );
    assert!(e.message.contains("missing"), "{}", e.message);
    expect_err(
        h.call("PutCompositeAlarm", json!({"AlarmName": "c", "AlarmRule": "ALARM(arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a)"})).await,
        "ValidationError",
    );
    for bad in ["ALARM(a", "ALARM(a) AND", "alarm(a)", "ALARM(a) ALARM(a)"] {
        expect_err(
            h.call(
                "PutCompositeAlarm",
                json!({"AlarmName": "c", "AlarmRule": bad}),
            )
            .await,
            "ValidationError",
        );
    }
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "c1", "AlarmRule": "ALARM(a)"}),
    )
    .await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "c2", "AlarmRule": "ALARM(c1)"}),
    )
    .await;
    // c1 -> c2 -> c1 and c1 -> c1 are cycles.
    for rule in ["ALARM(c2)", "ALARM(c1)"] {
        let e = expect_err(
            h.call(
                "PutCompositeAlarm",
                json!({"AlarmName": "c1", "AlarmRule": rule}),
            )
            .await,
            "ValidationError",
        );
        assert!(e.message.contains("cycle"), "{}", e.message);
    }
    // The limit on distinct children.
    for i in 0..101 {
        h.alarm(&format!("kid{i}"), "K", json!({})).await;
    }
    let rule = (0..101)
        .map(|i| format!("ALARM(kid{i})"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let e = expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "big", "AlarmRule": rule}),
        )
        .await,
        "ValidationError",
    );
    assert!(e.message.contains("100"), "{}", e.message);
    // Names are unique across alarm kinds.
    expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "a", "AlarmRule": "TRUE"}),
        )
        .await,
        "ValidationError",
    );
    let e = expect_err(
        h.call("PutMetricAlarm", json!({"AlarmName": "c1", "Namespace": "NS", "MetricName": "M", "Statistic": "Sum",
            "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"})).await,
        "ValidationError",
    );
    assert!(e.message.contains("composite"), "{}", e.message);
}

#[tokio::test]
async fn deleting_respects_composite_dependencies() {
    let h = Harness::new();
    h.alarm("child", "C", json!({})).await;
    h.alarm("other", "O", json!({})).await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "p1", "AlarmRule": "ALARM(child)"}),
    )
    .await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "p2", "AlarmRule": "ALARM(other)"}),
    )
    .await;
    let e = expect_err(
        h.call("DeleteAlarms", json!({"AlarmNames": ["child"]}))
            .await,
        "ValidationError",
    );
    assert!(e.message.contains("p1"), "{}", e.message);
    // Nothing was deleted by the refused request.
    assert_eq!(h.state("child").await, "INSUFFICIENT_DATA");
    expect_err(
        h.call("DeleteAlarms", json!({"AlarmNames": ["p1", "p2"]}))
            .await,
        "ValidationError",
    );
    // A parent and its child together is fine.
    h.ok("DeleteAlarms", json!({"AlarmNames": ["child", "p1"]}))
        .await;
    let left = h
        .ok(
            "DescribeAlarms",
            json!({"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}),
        )
        .await;
    assert_eq!(left["MetricAlarms"].as_array().unwrap().len(), 1);
    assert_eq!(left["CompositeAlarms"].as_array().unwrap().len(), 1);
    // The rule of a remaining composite can be changed to drop the dependency, then the child goes.
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "p2", "AlarmRule": "FALSE"}),
    )
    .await;
    h.ok("DeleteAlarms", json!({"AlarmNames": ["other"]})).await;
}

#[tokio::test]
async fn suppressor_in_alarm_holds_the_actions() {
    let h = Harness::new();
    // Composite children without children of their own keep the states they are set to (metric
    // alarms would be re-evaluated by the clock).
    for name in ["cause", "maintenance"] {
        h.ok(
            "PutCompositeAlarm",
            json!({"AlarmName": name, "AlarmRule": "FALSE"}),
        )
        .await;
    }
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "s", "AlarmRule": "ALARM(cause)", "AlarmActions": [topic("pager")],
               "ActionsSuppressor": "maintenance", "ActionsSuppressorWaitPeriod": 60,
               "ActionsSuppressorExtensionPeriod": 120}),
    )
    .await;
    set(&h, "maintenance", "ALARM").await;
    set(&h, "cause", "ALARM").await;
    h.svc.alarms().dispatch().await;
    let c = h.describe("s").await;
    assert_eq!(c["StateValue"], "ALARM");
    assert_eq!(c["ActionsSuppressedBy"], "Alarm");
    assert_eq!(c["ActionsSuppressedReason"], "Actions suppressed by Alarm");
    assert!(h.sns.calls().is_empty());
    // The suppressor leaves ALARM: the extension period starts; when it ends the actions run.
    set(&h, "maintenance", "OK").await;
    assert_eq!(
        h.describe("s").await["ActionsSuppressedBy"],
        "ExtensionPeriod"
    );
    h.advance(119_000);
    h.tick().await;
    assert!(
        h.sns.calls().is_empty(),
        "still within the extension period"
    );
    h.advance(2_000);
    h.tick().await;
    assert_eq!(
        h.sns.calls().len(),
        1,
        "released after the extension period"
    );
    assert!(h.describe("s").await.get("ActionsSuppressedBy").is_none());
    let actions = h.history("s", Some("Action")).await;
    assert_eq!(actions.len(), 1);
}

#[tokio::test]
async fn wait_period_releases_or_suppresses() {
    let h = Harness::new();
    // Composite children without children of their own keep the states they are set to (metric
    // alarms would be re-evaluated by the clock).
    for name in ["cause", "maintenance"] {
        h.ok(
            "PutCompositeAlarm",
            json!({"AlarmName": name, "AlarmRule": "FALSE"}),
        )
        .await;
    }
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "w", "AlarmRule": "ALARM(cause)", "AlarmActions": [topic("pager")],
               "ActionsSuppressor": "maintenance", "ActionsSuppressorWaitPeriod": 30,
               "ActionsSuppressorExtensionPeriod": 30}),
    )
    .await;
    set(&h, "cause", "ALARM").await;
    assert_eq!(h.describe("w").await["ActionsSuppressedBy"], "WaitPeriod");
    h.advance(31_000);
    h.tick().await;
    assert_eq!(
        h.sns.calls().len(),
        1,
        "no suppressor alarm within the wait period: actions run"
    );

    // Second round: the suppressor goes into ALARM during the wait period.
    set(&h, "cause", "OK").await;
    h.svc.alarms().dispatch().await;
    set(&h, "cause", "ALARM").await;
    assert_eq!(h.describe("w").await["ActionsSuppressedBy"], "WaitPeriod");
    set(&h, "maintenance", "ALARM").await;
    assert_eq!(h.describe("w").await["ActionsSuppressedBy"], "Alarm");
    h.advance(31_000);
    h.tick().await;
    assert_eq!(h.sns.calls().len(), 1, "suppressed");
    // Suppressor periods need a suppressor, and the suppressor must exist.
    expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "x", "AlarmRule": "TRUE", "ActionsSuppressorWaitPeriod": 5}),
        )
        .await,
        "ValidationError",
    );
    expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "x", "AlarmRule": "TRUE", "ActionsSuppressor": "maintenance"}),
        )
        .await,
        "ValidationError",
    );
    expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "x", "AlarmRule": "TRUE", "ActionsSuppressor": "nope",
            "ActionsSuppressorWaitPeriod": 5, "ActionsSuppressorExtensionPeriod": 5}),
        )
        .await,
        "ValidationError",
    );
    expect_err(
        h.call(
            "PutCompositeAlarm",
            json!({"AlarmName": "x", "AlarmRule": "TRUE",
            "AlarmActions": ["arn:aws:automate:us-east-1:ec2:stop"]}),
        )
        .await,
        "ValidationError",
    );
}
