//! Alarm evaluation through the whole service with a hand-driven clock: the user guide's
//! missing-data tables reproduced end to end, M of N over time, arrival-triggered evaluation of a
//! breaching datapoint, partial periods, percentiles with few samples, metric math, SetAlarmState,
//! and state surviving a restart.

mod alarm_support;

use alarm_support::*;
use serde_json::{json, Value};

const MIN: i64 = 60_000;

fn reason_data(alarm: &Value) -> Value {
    serde_json::from_str(alarm["StateReasonData"].as_str().expect("StateReasonData")).unwrap()
}

#[tokio::test]
async fn a_breaching_datapoint_alarms_on_arrival_with_aws_shaped_reason() {
    let h = Harness::new();
    let t0 = h.now();
    h.set_time(t0 + 30_000);
    h.alarm(
        "cpu",
        "CPU",
        json!({"AlarmActions": [topic("ops")], "AlarmDescription": "too hot"}),
    )
    .await;
    let a = h.describe("cpu").await;
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(a["StateReason"], "Unchecked: Initial alarm creation");
    assert_eq!(a["AlarmArn"], alarm_arn("cpu"));
    // The creation-time evaluation finds no data: no transition.
    assert_eq!(h.settle().await, 0);

    h.put("CPU", 50.0, t0 + 20_000).await;
    assert_eq!(h.settle().await, 1, "the write triggers the evaluation");
    let a = h.describe("cpu").await;
    assert_eq!(a["StateValue"], "ALARM");
    let reason = a["StateReason"].as_str().unwrap();
    let (head, tail) = reason.split_once(" (").unwrap();
    assert_eq!(
        head,
        "Threshold Crossed: 1 out of the last 1 datapoints [50.0"
    );
    assert!(tail.ends_with(
        ":00:00)] was greater than the threshold (10.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition)."
    ), "{reason}");
    let data = reason_data(&a);
    assert_eq!(data["version"], "1.0");
    assert_eq!(data["statistic"], "Maximum");
    assert_eq!(data["period"], 60);
    assert_eq!(data["threshold"], json!(10.0));
    assert_eq!(data["recentDatapoints"], json!([50.0]));
    assert_eq!(data["evaluatedDatapoints"][0]["value"], json!(50.0));
    assert_eq!(data["evaluatedDatapoints"][0]["sampleCount"], json!(1.0));
    assert!(data["queryDate"].as_str().unwrap().ends_with("+0000"));
    assert_eq!(a["StateTransitionedTimestamp"], json!((t0 + 30_000) / 1000));

    // The SNS action and the EventBridge event went out once.
    let published = h.sns.calls();
    assert_eq!(published.len(), 1);
    let (op, input) = &published[0];
    assert_eq!(op, "Publish");
    assert_eq!(input["TopicArn"], topic("ops"));
    assert_eq!(input["Subject"], "ALARM: \"cpu\" in US East (N. Virginia)");
    let msg: Value = serde_json::from_str(input["Message"].as_str().unwrap()).unwrap();
    assert_eq!(msg["AlarmName"], "cpu");
    assert_eq!(msg["AlarmDescription"], "too hot");
    assert_eq!(msg["AWSAccountId"], ACCOUNT);
    assert_eq!(msg["NewStateValue"], "ALARM");
    assert_eq!(msg["OldStateValue"], "INSUFFICIENT_DATA");
    assert_eq!(msg["NewStateReason"], a["StateReason"]);
    assert_eq!(msg["Region"], "US East (N. Virginia)");
    assert_eq!(msg["AlarmArn"], alarm_arn("cpu"));
    assert_eq!(msg["AlarmActions"], json!([topic("ops")]));
    let trigger = &msg["Trigger"];
    assert_eq!(trigger["MetricName"], "CPU");
    assert_eq!(trigger["Namespace"], "NS");
    assert_eq!(trigger["StatisticType"], "Statistic");
    assert_eq!(trigger["Statistic"], "MAXIMUM");
    assert_eq!(trigger["Period"], 60);
    assert_eq!(trigger["EvaluationPeriods"], 1);
    assert_eq!(trigger["DatapointsToAlarm"], 1);
    assert_eq!(trigger["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(trigger["Threshold"], json!(10.0));
    assert_eq!(trigger["Dimensions"], json!([]));
    for key in ["StateChangeTime", "AlarmConfigurationUpdatedTimestamp"] {
        assert!(msg[key].as_str().unwrap().ends_with("+0000"), "{key}");
    }

    let events = h.events.calls();
    assert_eq!(events.len(), 1);
    let entry = &events[0].1["Entries"][0];
    assert_eq!(entry["Source"], "aws.cloudwatch");
    assert_eq!(entry["DetailType"], "CloudWatch Alarm State Change");
    assert_eq!(entry["Resources"], json!([alarm_arn("cpu")]));
    let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["alarmName"], "cpu");
    assert_eq!(detail["state"]["value"], "ALARM");
    assert_eq!(detail["state"]["reason"], a["StateReason"]);
    assert_eq!(detail["previousState"]["value"], "INSUFFICIENT_DATA");
    assert_eq!(
        detail["previousState"]["reason"],
        "Unchecked: Initial alarm creation"
    );
    assert_eq!(detail["configuration"]["description"], "too hot");
    let stat = &detail["configuration"]["metrics"][0]["metricStat"];
    assert_eq!(stat["metric"]["name"], "CPU");
    assert_eq!(stat["metric"]["namespace"], "NS");
    assert_eq!(stat["period"], 60);
    assert_eq!(stat["stat"], "Maximum");

    let history = h.history("cpu", None).await;
    let kinds: Vec<(&str, &str)> = history
        .iter()
        .map(|i| {
            (
                i["HistoryItemType"].as_str().unwrap(),
                i["HistorySummary"].as_str().unwrap(),
            )
        })
        .collect();
    let action = format!("Successfully executed action {}", topic("ops"));
    assert_eq!(
        kinds,
        vec![
            ("ConfigurationUpdate", "Alarm \"cpu\" created"),
            (
                "StateUpdate",
                "Alarm updated from INSUFFICIENT_DATA to ALARM"
            ),
            ("Action", action.as_str()),
        ]
    );
    let update: Value = serde_json::from_str(history[1]["HistoryData"].as_str().unwrap()).unwrap();
    assert_eq!(update["oldState"]["stateValue"], "INSUFFICIENT_DATA");
    assert_eq!(update["newState"]["stateValue"], "ALARM");
    assert_eq!(
        update["newState"]["stateReasonData"]["recentDatapoints"],
        json!([50.0])
    );

    // Delivered once: another dispatch sends nothing more.
    h.svc.alarms().dispatch().await;
    assert_eq!(h.sns.calls().len(), 1);
}

/// One row of the guide's tables run through the engine: period 5 minutes, range 5, the data
/// pattern (oldest first) published into the 5 periods before now.
async fn run_row(n: i64, m: i64, pattern: &str, mode: &str, start_in: &str) -> String {
    let h = Harness::new();
    let t0 = h.now();
    let p = 5 * MIN;
    h.set_time(t0 + 5 * p + 1000);
    h.alarm(
        "row",
        "Row",
        json!({"Period": 300, "EvaluationPeriods": n, "DatapointsToAlarm": m, "TreatMissingData": mode}),
    )
    .await;
    for (i, c) in pattern.split_whitespace().enumerate() {
        let v = match c {
            "X" => 100.0,
            "0" => 1.0,
            _ => continue,
        };
        h.put("Row", v, t0 + i as i64 * p + 1000).await;
    }
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": "row", "StateValue": start_in, "StateReason": "test start"}),
    )
    .await;
    h.tick().await;
    h.state("row").await
}

#[tokio::test]
async fn the_guides_missing_data_tables_hold_end_to_end() {
    // (N, M, data, [MISSING, IGNORE, BREACHING, NOT BREACHING]); "keep" = retain current state.
    let rows: [(i64, i64, &str, [&str; 4]); 11] = [
        (3, 3, "0 - X - X", ["OK", "OK", "OK", "OK"]),
        (3, 3, "0 - - - -", ["OK", "OK", "OK", "OK"]),
        (
            3,
            3,
            "- - - - -",
            ["INSUFFICIENT_DATA", "keep", "ALARM", "OK"],
        ),
        (3, 3, "0 X X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
        (3, 3, "- - X - -", ["ALARM", "keep", "ALARM", "OK"]),
        (3, 2, "0 - X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
        (3, 2, "0 0 X 0 X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
        (3, 2, "0 - X - -", ["OK", "OK", "ALARM", "OK"]),
        (3, 2, "- - - - 0", ["OK", "OK", "ALARM", "OK"]),
        (3, 2, "- - - X -", ["ALARM", "keep", "ALARM", "OK"]),
        (
            3,
            3,
            "- - - - X",
            ["INSUFFICIENT_DATA", "keep", "ALARM", "OK"],
        ),
    ];
    let modes = ["missing", "ignore", "breaching", "notBreaching"];
    for (n, m, data, expected) in rows {
        for (mode, want) in modes.iter().zip(expected) {
            // Start from a state other than the expected one, so a match proves a transition;
            // for "keep", check both starting states survive.
            let starts: Vec<(&str, &str)> = match want {
                "keep" => vec![("OK", "OK"), ("ALARM", "ALARM")],
                "OK" => vec![("ALARM", "OK")],
                other => vec![("OK", other)],
            };
            for (start, expect) in starts {
                let got = run_row(n, m, data, mode, start).await;
                assert_eq!(
                    got, expect,
                    "{m} of {n}, data `{data}`, {mode}, starting in {start}"
                );
            }
        }
    }
}

#[tokio::test]
async fn m_of_n_over_time_and_the_ok_reason() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm(
        "mofn",
        "Lat",
        json!({"EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Statistic": "Average"}),
    )
    .await;
    for (i, v) in [50.0, 1.0, 50.0].iter().enumerate() {
        h.put("Lat", *v, t0 + i as i64 * MIN + 5000).await;
    }
    h.set_time(t0 + 3 * MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("mofn").await, "ALARM");
    let reason = h.describe("mofn").await["StateReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [50.0 ("),
        "{reason}"
    );
    assert!(reason.ends_with("were greater than the threshold (10.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM transition)."), "{reason}");

    for (i, v) in [1.0, 2.0].iter().enumerate() {
        h.put("Lat", *v, t0 + (3 + i as i64) * MIN + 5000).await;
    }
    h.set_time(t0 + 5 * MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("mofn").await, "OK");
    let reason = h.describe("mofn").await["StateReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [2.0 ("),
        "{reason}"
    );
    assert!(reason.ends_with("were not greater than the threshold (10.0) (minimum 2 datapoints for ALARM -> OK transition)."), "{reason}");
}

#[tokio::test]
async fn partial_periods_count_only_when_the_breach_cannot_be_undone() {
    let h = Harness::new();
    let t0 = h.now();
    h.set_time(t0 + 10_000);
    // Too little traffic: a partial Sum only grows, so an early low sum must not alarm.
    h.alarm(
        "low",
        "Req",
        json!({"Statistic": "Sum", "ComparisonOperator": "LessThanThreshold", "Threshold": 5.0}),
    )
    .await;
    // A partial Minimum only shrinks: an early high minimum must not alarm.
    h.alarm(
        "floor",
        "Req",
        json!({"Statistic": "Minimum", "Threshold": 0.5}),
    )
    .await;
    // A partial Average stands as it is.
    h.alarm(
        "avg",
        "Req",
        json!({"Statistic": "Average", "Threshold": 0.5}),
    )
    .await;
    h.put("Req", 1.0, t0 + 5000).await;
    h.settle().await;
    assert_eq!(h.state("low").await, "INSUFFICIENT_DATA");
    assert_eq!(h.state("floor").await, "INSUFFICIENT_DATA");
    assert_eq!(h.state("avg").await, "ALARM");
    // Once the minute is complete, its values count.
    h.set_time(t0 + MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("low").await, "ALARM");
    assert_eq!(h.state("floor").await, "ALARM");
}

#[tokio::test]
async fn missing_data_treatments_without_any_data() {
    let h = Harness::new();
    for (name, mode) in [
        ("b", "breaching"),
        ("nb", "notBreaching"),
        ("m", "missing"),
        ("i", "ignore"),
    ] {
        h.alarm(name, "Nothing", json!({"TreatMissingData": mode}))
            .await;
    }
    h.advance(MIN);
    h.tick().await;
    assert_eq!(h.state("b").await, "ALARM");
    assert_eq!(
        h.describe("b").await["StateReason"],
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching]."
    );
    assert_eq!(h.state("nb").await, "OK");
    assert_eq!(
        h.describe("nb").await["StateReason"],
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [NonBreaching]."
    );
    assert_eq!(h.state("m").await, "INSUFFICIENT_DATA");
    assert_eq!(h.state("i").await, "INSUFFICIENT_DATA");
    // After data went away, `missing` reports the unknown datapoints.
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": "m", "StateValue": "OK", "StateReason": "x"}),
    )
    .await;
    h.advance(MIN);
    h.tick().await;
    assert_eq!(
        h.describe("m").await["StateReason"],
        "Insufficient Data: 3 datapoints were unknown."
    );
}

#[tokio::test]
async fn low_sample_percentiles_can_be_ignored() {
    let h = Harness::new();
    let t0 = h.now();
    let base = json!({"Statistic": null, "ExtendedStatistic": "p99"});
    let mut ignore = base.clone();
    ignore["EvaluateLowSampleCountPercentile"] = json!("ignore");
    h.alarm("p99-ignore", "Lat", ignore).await;
    let mut evaluate = base.clone();
    evaluate["EvaluateLowSampleCountPercentile"] = json!("evaluate");
    h.alarm("p99-evaluate", "Lat", evaluate).await;
    // Five samples: far fewer than the 1000 a p99 needs.
    for i in 0..5 {
        h.put("Lat", 100.0, t0 + 1000 + i).await;
    }
    h.set_time(t0 + MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("p99-ignore").await, "INSUFFICIENT_DATA");
    assert_eq!(h.state("p99-evaluate").await, "ALARM");
    let data = reason_data(&h.describe("p99-evaluate").await);
    assert_eq!(data["extendedStatistic"], "p99");
    assert!(data.get("statistic").is_none());
}

#[tokio::test]
async fn units_filter_the_watched_series() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm("pct", "Disk", json!({"Unit": "Percent"})).await;
    h.alarm("any", "Disk", json!({})).await;
    h.put_with("Disk", &[], 99.0, t0 + 1000, "Count").await;
    h.set_time(t0 + MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("pct").await, "INSUFFICIENT_DATA");
    assert_eq!(h.state("any").await, "ALARM");
    h.put_with("Disk", &[], 99.0, t0 + MIN + 1500, "Percent")
        .await;
    h.set_time(t0 + 2 * MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("pct").await, "ALARM");
    assert_eq!(reason_data(&h.describe("pct").await)["unit"], "Percent");
}

#[tokio::test]
async fn dimensions_must_match_exactly() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm(
        "host-a",
        "Mem",
        json!({"Dimensions": [{"Name": "Host", "Value": "a"}]}),
    )
    .await;
    h.put_with("Mem", &[("Host", "b")], 99.0, t0 + 1000, "None")
        .await;
    h.put_with(
        "Mem",
        &[("Host", "a"), ("Az", "1")],
        99.0,
        t0 + 1000,
        "None",
    )
    .await;
    h.set_time(t0 + MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("host-a").await, "INSUFFICIENT_DATA");
    h.put_with("Mem", &[("Host", "a")], 99.0, t0 + MIN + 1000, "None")
        .await;
    assert_eq!(h.settle().await, 1);
    assert_eq!(h.state("host-a").await, "ALARM");
}

#[tokio::test]
async fn metric_math_alarms_evaluate_their_expression() {
    let h = Harness::new();
    let t0 = h.now();
    let stat = |id: &str, metric: &str| {
        json!({"Id": id, "ReturnData": false, "MetricStat": {
            "Metric": {"Namespace": "NS", "MetricName": metric}, "Period": 60, "Stat": "Sum"}})
    };
    h.ok(
        "PutMetricAlarm",
        json!({"AlarmName": "errors", "EvaluationPeriods": 1, "Threshold": 10.0,
               "ComparisonOperator": "GreaterThanOrEqualToThreshold",
               "Metrics": [stat("m1", "E4xx"), stat("m2", "E5xx"),
                           {"Id": "e1", "Expression": "m1 + m2", "Label": "All errors", "ReturnData": true}]}),
    )
    .await;
    h.put("E4xx", 6.0, t0 + 1000).await;
    h.put("E5xx", 4.0, t0 + 2000).await;
    // Sums only grow: a partial minute does not count.
    h.settle().await;
    assert_eq!(h.state("errors").await, "INSUFFICIENT_DATA");
    h.set_time(t0 + MIN + 1000);
    h.tick().await;
    let a = h.describe("errors").await;
    assert_eq!(a["StateValue"], "ALARM");
    let data = reason_data(&a);
    assert_eq!(data["recentDatapoints"], json!([10.0]));
    assert!(data.get("statistic").is_none());
    assert_eq!(a["Metrics"][2]["Expression"], "m1 + m2");
    assert!(a.get("MetricName").is_none());
}

#[tokio::test]
async fn set_alarm_state_lasts_until_the_next_evaluation() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm("calm", "Calm", json!({"AlarmActions": [topic("page")]}))
        .await;
    h.put("Calm", 1.0, t0 + 1000).await;
    h.set_time(t0 + MIN + 1000);
    h.tick().await;
    assert_eq!(h.state("calm").await, "OK");
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": "calm", "StateValue": "ALARM", "StateReason": "testing the pager",
               "StateReasonData": "{\"why\": \"drill\"}"}),
    )
    .await;
    h.svc.alarms().dispatch().await;
    let a = h.describe("calm").await;
    assert_eq!(a["StateValue"], "ALARM");
    assert_eq!(a["StateReason"], "testing the pager");
    assert_eq!(a["StateReasonData"], "{\"why\": \"drill\"}");
    assert_eq!(h.sns.calls().len(), 1, "the ALARM action ran");
    // Setting the same state again changes nothing.
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": "calm", "StateValue": "ALARM", "StateReason": "again"}),
    )
    .await;
    assert_eq!(h.describe("calm").await["StateReason"], "testing the pager");
    h.advance(MIN);
    h.tick().await;
    assert_eq!(h.state("calm").await, "OK");

    let e = expect_err(
        h.call("SetAlarmState", json!({"AlarmName": "calm", "StateValue": "OK", "StateReason": "r", "StateReasonData": "{nope"})).await,
        "InvalidFormatFault",
    );
    assert!(e.message.contains("JSON"));
    expect_err(
        h.call(
            "SetAlarmState",
            json!({"AlarmName": "ghost", "StateValue": "OK", "StateReason": "r"}),
        )
        .await,
        "ResourceNotFound",
    );
}

#[tokio::test]
async fn updating_an_alarm_keeps_its_state() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm(
        "keep",
        "K",
        json!({"Tags": [{"Key": "team", "Value": "a"}]}),
    )
    .await;
    h.put("K", 50.0, t0 + 1000).await;
    h.settle().await;
    assert_eq!(h.state("keep").await, "ALARM");
    h.advance(1000);
    h.alarm(
        "keep",
        "K",
        json!({"Threshold": 20.0, "Tags": [{"Key": "ignored", "Value": "b"}]}),
    )
    .await;
    let a = h.describe("keep").await;
    assert_eq!(a["StateValue"], "ALARM");
    assert_eq!(a["Threshold"], json!(20.0));
    let tags = h
        .ok(
            "ListTagsForResource",
            json!({"ResourceARN": alarm_arn("keep")}),
        )
        .await;
    assert_eq!(
        tags,
        json!({"Tags": [{"Key": "team", "Value": "a"}]}),
        "tags are ignored on update"
    );
    let updates = h.history("keep", Some("ConfigurationUpdate")).await;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[1]["HistorySummary"], "Alarm \"keep\" updated");
    let data: Value = serde_json::from_str(updates[1]["HistoryData"].as_str().unwrap()).unwrap();
    assert_eq!(data["type"], "Update");
    assert_eq!(data["updatedAlarm"]["threshold"], json!(20.0));
    assert_eq!(data["originalUpdatedFields"], json!({"threshold": 10.0}));
}

#[tokio::test]
async fn state_and_history_survive_a_restart() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm("durable", "D", json!({})).await;
    h.put("D", 50.0, t0 + 1000).await;
    h.settle().await;
    let before = h.describe("durable").await;
    assert_eq!(before["StateValue"], "ALARM");
    let again = h.restart();
    let after = again.describe("durable").await;
    assert_eq!(after, before);
    assert_eq!(again.history("durable", None).await.len(), 2);
    // The restarted engine keeps evaluating from the stored state.
    again.put("D", 1.0, t0 + MIN + 1000).await;
    again.set_time(t0 + 2 * MIN + 1000);
    again.tick().await;
    assert_eq!(again.state("durable").await, "OK");
}
