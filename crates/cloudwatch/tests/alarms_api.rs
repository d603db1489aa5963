//! The alarm API surface: PutMetricAlarm validation (table of bad inputs with their error codes),
//! DescribeAlarms filters and paging, DescribeAlarmsForMetric, DescribeAlarmHistory filters and
//! paging, Enable/DisableAlarmActions, DeleteAlarms, and tags on alarm ARNs.

mod alarm_support;

use alarm_support::*;
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "AlarmName": "a", "Namespace": "NS", "MetricName": "M", "Statistic": "Average",
        "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
    })
}

fn with(changes: Value) -> Value {
    let mut v = base();
    for (k, x) in changes.as_object().unwrap() {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    v
}

#[tokio::test]
async fn put_metric_alarm_rejects_invalid_input() {
    let h = Harness::new();
    let math = |extra: Value| {
        let mut v =
            with(json!({"Namespace": null, "MetricName": null, "Statistic": null, "Period": null}));
        v["Metrics"] = json!([
            {"Id": "m1", "ReturnData": true, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}}
        ]);
        for (k, x) in extra.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        v
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(json!({"DatapointsToAlarm": 2})),
            "ValidationError",
            "DatapointsToAlarm must be less than or equal to EvaluationPeriods",
        ),
        (
            with(json!({"Period": 45})),
            "ValidationError",
            "must be 10, 20, 30, or a multiple of 60",
        ),
        (
            with(json!({"Period": 5})),
            "ValidationError",
            "must be 10, 20, 30, or a multiple of 60",
        ),
        (
            with(json!({"Period": 60, "EvaluationPeriods": 1441})),
            "ValidationError",
            "86400",
        ),
        (
            with(json!({"Period": 3600, "EvaluationPeriods": 169})),
            "ValidationError",
            "604800",
        ),
        (
            with(json!({"Statistic": null})),
            "ValidationError",
            "Either Statistic or ExtendedStatistic",
        ),
        (
            with(json!({"ExtendedStatistic": "p99"})),
            "ValidationError",
            "mutually exclusive",
        ),
        (
            with(json!({"Statistic": null, "ExtendedStatistic": "p999x"})),
            "ValidationError",
            "ExtendedStatistic is invalid",
        ),
        (
            with(json!({"MetricName": null})),
            "ValidationError",
            "MetricName must not be null",
        ),
        (
            with(json!({"Namespace": null})),
            "ValidationError",
            "Namespace must not be null",
        ),
        (
            with(json!({"Period": null})),
            "ValidationError",
            "Period must not be null",
        ),
        (
            with(json!({"EvaluationPeriods": null})),
            "ValidationError",
            "EvaluationPeriods must not be null",
        ),
        (
            with(json!({"Threshold": null})),
            "ValidationError",
            "Threshold must not be null",
        ),
        (
            with(json!({"ComparisonOperator": null})),
            "ValidationError",
            "ComparisonOperator must not be null",
        ),
        (
            with(json!({"TreatMissingData": "sometimes"})),
            "ValidationError",
            "TreatMissingData",
        ),
        (
            with(json!({"EvaluateLowSampleCountPercentile": "maybe"})),
            "ValidationError",
            "EvaluateLowSampleCountPercentile",
        ),
        (
            with(json!({"Dimensions": [{"Name": "A", "Value": "1"}, {"Name": "A", "Value": "2"}]})),
            "ValidationError",
            "duplicate",
        ),
        (
            with(json!({"AlarmActions": ["not-an-arn"]})),
            "ValidationError",
            "Invalid arn syntax: not-an-arn",
        ),
        (
            with(json!({"AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:t"]})),
            "ValidationError",
            "Invalid region eu-west-1 specified. Only us-east-1 is supported.",
        ),
        (
            with(json!({"OKActions": ["arn:aws:ssm:us-east-1:123456789012:opsitem:9"]})),
            "ValidationError",
            "Invalid arn syntax",
        ),
        (
            with(json!({"AlarmActions": ["arn:aws:sqs:us-east-1:123456789012:q"]})),
            "ValidationError",
            "not a supported alarm action",
        ),
        (
            with(
                json!({"AlarmActions": (0..6).map(|i| topic(&format!("t{i}"))).collect::<Vec<_>>()}),
            ),
            "ValidationError",
            "size greater than 5",
        ),
        (
            with(json!({"ComparisonOperator": "LessThanLowerThreshold"})),
            "ValidationError",
            "Threshold should not be set",
        ),
        (
            with(json!({"ThresholdMetricId": "ad1"})),
            "ValidationError",
            "ThresholdMetricId",
        ),
        (
            with(json!({"AlarmName": "bad\u{7}name"})),
            "ValidationError",
            "control characters",
        ),
        (
            with(json!({"EvaluationInterval": 60})),
            "ValidationError",
            "EvaluationInterval",
        ),
        (
            with(json!({"EvaluationCriteria": {"PromQLCriteria": {"Query": "up"}}})),
            "InvalidParameterValueException",
            "not supported",
        ),
        (
            with(json!({"Tags": [{"Key": "aws:x", "Value": "v"}]})),
            "InvalidParameterValueException",
            "reserved prefix",
        ),
        (
            with(json!({"Threshold": "NaN"})),
            "ValidationError",
            "finite",
        ),
        (
            math(json!({"Statistic": "Sum"})),
            "ValidationError",
            "Statistic should not be set if list of Metrics is set.",
        ),
        (
            math(json!({"Period": 60})),
            "ValidationError",
            "Period should not be set if list of Metrics is set.",
        ),
        (
            math(json!({"MetricName": "M"})),
            "ValidationError",
            "MetricName should not be set if list of Metrics is set.",
        ),
        (
            math(json!({"Metrics": [
            {"Id": "m1", "ReturnData": true, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "e1", "ReturnData": true, "Expression": "m1 * 2"}]})),
            "ValidationError",
            "Exactly one element of the metrics list should return data.",
        ),
        (
            math(json!({"Metrics": [
            {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}}]})),
            "ValidationError",
            "Exactly one element of the metrics list should return data.",
        ),
        (
            math(json!({"Metrics": [
            {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "m2", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "N"}, "Period": 120, "Stat": "Sum"}},
            {"Id": "e1", "ReturnData": true, "Expression": "m1 + m2"}]})),
            "ValidationError",
            "same period",
        ),
        (
            math(json!({"Metrics": [
            {"Id": "e1", "ReturnData": true, "Expression": "m9 * 2"}]})),
            "ValidationError",
            "Unrecognized metric id m9",
        ),
        (
            math(json!({"Metrics": [
            {"Id": "e1", "ReturnData": true, "Expression": "SEARCH('{NS} M', 'Sum', 60)"}]})),
            "ValidationError",
            "SEARCH",
        ),
        (
            math(json!({"Metrics": [
            {"Id": "M1", "ReturnData": true, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}}]})),
            "ValidationError",
            "expected pattern",
        ),
        (
            math(
                json!({"ComparisonOperator": "GreaterThanUpperThreshold", "Threshold": null, "ThresholdMetricId": "ad1", "Metrics": [
            {"Id": "m1", "ReturnData": true, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "ad1", "ReturnData": true, "Expression": "m1 * 2"}]}),
            ),
            "ValidationError",
            "ANOMALY_DETECTION_BAND",
        ),
        (
            math(json!({"AlarmActions": ["arn:aws:automate:us-east-1:ec2:stop"]})),
            "ValidationError",
            "EC2 actions",
        ),
    ];
    for (input, kind, message) in cases {
        let e = expect_err(h.call("PutMetricAlarm", input.clone()).await, kind);
        assert!(e.message.contains(message), "{input}: got {:?}", e.message);
    }
    // Nothing was created by the rejected requests.
    let all = h
        .ok(
            "DescribeAlarms",
            json!({"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}),
        )
        .await;
    assert_eq!(all["MetricAlarms"], json!([]));
    assert_eq!(all["CompositeAlarms"], json!([]));
}

#[tokio::test]
async fn put_metric_alarm_accepts_every_field() {
    let h = Harness::new();
    let input = json!({
        "AlarmName": "full", "AlarmDescription": "everything", "ActionsEnabled": false,
        "OKActions": [topic("ok")], "AlarmActions": [topic("alarm"), "arn:aws:ssm:us-east-1:123456789012:opsitem:2#CATEGORY=Availability"],
        "InsufficientDataActions": ["arn:aws:ssm-incidents::123456789012:responseplan/oncall"],
        "Namespace": "NS", "MetricName": "M", "Dimensions": [{"Name": "B", "Value": "2"}, {"Name": "A", "Value": "1"}],
        "ExtendedStatistic": "p95", "Period": 10, "Unit": "Milliseconds", "EvaluationPeriods": 5,
        "DatapointsToAlarm": 3, "Threshold": 250.5, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching", "EvaluateLowSampleCountPercentile": "ignore",
        "Tags": [{"Key": "team", "Value": "core"}],
    });
    h.ok("PutMetricAlarm", input).await;
    let a = h.describe("full").await;
    for (k, v) in [
        ("AlarmDescription", json!("everything")),
        ("ActionsEnabled", json!(false)),
        ("OKActions", json!([topic("ok")])),
        (
            "Dimensions",
            json!([{"Name": "B", "Value": "2"}, {"Name": "A", "Value": "1"}]),
        ),
        ("ExtendedStatistic", json!("p95")),
        ("Period", json!(10)),
        ("Unit", json!("Milliseconds")),
        ("EvaluationPeriods", json!(5)),
        ("DatapointsToAlarm", json!(3)),
        ("Threshold", json!(250.5)),
        ("ComparisonOperator", json!("GreaterThanOrEqualToThreshold")),
        ("TreatMissingData", json!("notBreaching")),
        ("EvaluateLowSampleCountPercentile", json!("ignore")),
        ("StateValue", json!("INSUFFICIENT_DATA")),
    ] {
        assert_eq!(a[k], v, "{k}");
    }
    assert!(a.get("Statistic").is_none());
    assert_eq!(
        a["AlarmConfigurationUpdatedTimestamp"],
        json!(h.now() / 1000)
    );
    let tags = h
        .ok(
            "ListTagsForResource",
            json!({"ResourceARN": alarm_arn("full")}),
        )
        .await;
    assert_eq!(tags, json!({"Tags": [{"Key": "team", "Value": "core"}]}));
}

#[tokio::test]
async fn describe_alarms_filters_and_pages() {
    let h = Harness::new();
    for i in 0..7 {
        let actions = if i % 2 == 0 {
            json!([topic("even")])
        } else {
            json!([topic("odd")])
        };
        h.alarm(&format!("web-{i}"), "M", json!({"AlarmActions": actions}))
            .await;
    }
    h.alarm("db-0", "M", json!({"OKActions": [topic("db")]}))
        .await;
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "web-all", "AlarmRule": "ALARM(\"web-0\") OR ALARM(web-1)"}),
    )
    .await;
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": "web-3", "StateValue": "ALARM", "StateReason": "x"}),
    )
    .await;

    let names = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["AlarmName"].as_str().unwrap().to_string())
            .collect()
    };
    // Without AlarmTypes only metric alarms are returned.
    let all = h.ok("DescribeAlarms", json!({})).await;
    assert_eq!(names(&all, "MetricAlarms").len(), 8);
    assert_eq!(names(&all, "CompositeAlarms").len(), 0);
    let both = h
        .ok(
            "DescribeAlarms",
            json!({"AlarmTypes": ["CompositeAlarm", "MetricAlarm"]}),
        )
        .await;
    assert_eq!(names(&both, "CompositeAlarms"), vec!["web-all"]);
    let prefix = h
        .ok("DescribeAlarms", json!({"AlarmNamePrefix": "web-"}))
        .await;
    assert_eq!(names(&prefix, "MetricAlarms").len(), 7);
    let listed = h
        .ok(
            "DescribeAlarms",
            json!({"AlarmNames": ["db-0", "web-5", "ghost"]}),
        )
        .await;
    assert_eq!(names(&listed, "MetricAlarms"), vec!["db-0", "web-5"]);
    let alarming = h.ok("DescribeAlarms", json!({"StateValue": "ALARM"})).await;
    assert_eq!(names(&alarming, "MetricAlarms"), vec!["web-3"]);
    let by_action = h
        .ok("DescribeAlarms", json!({"ActionPrefix": topic("odd")}))
        .await;
    assert_eq!(
        names(&by_action, "MetricAlarms"),
        vec!["web-1", "web-3", "web-5"]
    );
    let by_ok_action = h
        .ok(
            "DescribeAlarms",
            json!({"ActionPrefix": "arn:aws:sns:us-east-1:123456789012:d"}),
        )
        .await;
    assert_eq!(names(&by_ok_action, "MetricAlarms"), vec!["db-0"]);

    // Paging in name order.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"MaxRecords": 3});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let page = h.ok("DescribeAlarms", input).await;
        let got = names(&page, "MetricAlarms");
        assert!(got.len() <= 3);
        seen.extend(got);
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("web-{i}")).collect();
    expected.insert(0, "db-0".into());
    assert_eq!(seen, expected);

    // Children and parents.
    let children = h
        .ok("DescribeAlarms", json!({"ChildrenOfAlarmName": "web-all"}))
        .await;
    assert_eq!(names(&children, "MetricAlarms"), vec!["web-0", "web-1"]);
    let child = &children["MetricAlarms"][0];
    let keys: Vec<&String> = child.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec![
            "AlarmName",
            "AlarmArn",
            "StateValue",
            "StateUpdatedTimestamp"
        ]
    );
    let parents = h
        .ok("DescribeAlarms", json!({"ParentsOfAlarmName": "web-1"}))
        .await;
    assert_eq!(
        parents["CompositeAlarms"],
        json!([{"AlarmName": "web-all", "AlarmArn": alarm_arn("web-all")}])
    );

    // Parameter rules.
    expect_err(
        h.call(
            "DescribeAlarms",
            json!({"ChildrenOfAlarmName": "web-all", "StateValue": "OK"}),
        )
        .await,
        "ValidationError",
    );
    expect_err(
        h.call(
            "DescribeAlarms",
            json!({"AlarmNames": ["a"], "AlarmNamePrefix": "a"}),
        )
        .await,
        "InvalidParameterCombinationException",
    );
    expect_err(
        h.call("DescribeAlarms", json!({"NextToken": "garbage"}))
            .await,
        "InvalidNextToken",
    );
    expect_err(
        h.call("DescribeAlarms", json!({"MaxRecords": 101})).await,
        "InvalidParameterValueException",
    );
}

#[tokio::test]
async fn describe_alarms_for_metric_matches_the_metric_exactly() {
    let h = Harness::new();
    let dims = json!([{"Name": "Host", "Value": "a"}]);
    h.alarm(
        "avg",
        "CPU",
        json!({"Dimensions": dims, "Statistic": "Average"}),
    )
    .await;
    h.alarm("max", "CPU", json!({"Dimensions": dims, "Period": 300}))
        .await;
    h.alarm(
        "other-host",
        "CPU",
        json!({"Dimensions": [{"Name": "Host", "Value": "b"}]}),
    )
    .await;
    h.alarm("no-dims", "CPU", json!({})).await;
    let names = |v: Value| -> Vec<String> {
        v["MetricAlarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["AlarmName"].as_str().unwrap().to_string())
            .collect()
    };
    let q = json!({"Namespace": "NS", "MetricName": "CPU", "Dimensions": dims});
    assert_eq!(
        names(h.ok("DescribeAlarmsForMetric", q.clone()).await),
        vec!["avg", "max"]
    );
    let mut narrowed = q.clone();
    narrowed["Period"] = json!(300);
    assert_eq!(
        names(h.ok("DescribeAlarmsForMetric", narrowed).await),
        vec!["max"]
    );
    let mut by_stat = q.clone();
    by_stat["Statistic"] = json!("Average");
    assert_eq!(
        names(h.ok("DescribeAlarmsForMetric", by_stat).await),
        vec!["avg"]
    );
    assert_eq!(
        names(
            h.ok(
                "DescribeAlarmsForMetric",
                json!({"Namespace": "NS", "MetricName": "CPU"})
            )
            .await
        ),
        vec!["no-dims"]
    );
}

#[tokio::test]
async fn alarm_history_filters_pages_and_outlives_the_alarm() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm("h1", "M", json!({})).await;
    for (i, state) in ["OK", "ALARM", "OK", "ALARM"].iter().enumerate() {
        h.set_time(t0 + (i as i64 + 1) * 1000);
        h.ok(
            "SetAlarmState",
            json!({"AlarmName": "h1", "StateValue": state, "StateReason": format!("step {i}")}),
        )
        .await;
    }
    h.ok(
        "PutCompositeAlarm",
        json!({"AlarmName": "c1", "AlarmRule": "ALARM(h1)"}),
    )
    .await;

    let items = |v: &Value| v["AlarmHistoryItems"].as_array().unwrap().clone();
    let newest_first = h
        .ok(
            "DescribeAlarmHistory",
            json!({"AlarmName": "h1", "HistoryItemType": "StateUpdate"}),
        )
        .await;
    let summaries: Vec<String> = items(&newest_first)
        .iter()
        .map(|i| i["HistorySummary"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        summaries,
        vec![
            "Alarm updated from OK to ALARM",
            "Alarm updated from ALARM to OK",
            "Alarm updated from OK to ALARM",
            "Alarm updated from INSUFFICIENT_DATA to OK",
        ]
    );
    let first = &items(&newest_first)[3];
    assert_eq!(first["AlarmType"], "MetricAlarm");
    assert_eq!(first["Timestamp"], json!((t0 + 1000) / 1000));

    // Without a name, only metric alarms' history unless AlarmTypes says otherwise.
    let metric_only = h.ok("DescribeAlarmHistory", json!({})).await;
    assert!(items(&metric_only)
        .iter()
        .all(|i| i["AlarmType"] == "MetricAlarm"));
    let composite = h
        .ok(
            "DescribeAlarmHistory",
            json!({"AlarmTypes": ["CompositeAlarm"]}),
        )
        .await;
    let kinds: Vec<String> = items(&composite)
        .iter()
        .map(|i| i["AlarmType"].as_str().unwrap().to_string())
        .collect();
    assert!(!kinds.is_empty() && kinds.iter().all(|k| *k == "CompositeAlarm"));

    // Date range (inclusive), ascending order, paging.
    let ranged = h
        .ok(
            "DescribeAlarmHistory",
            json!({"AlarmName": "h1", "StartDate": (t0 + 2000) as f64 / 1000.0,
            "EndDate": (t0 + 3000) as f64 / 1000.0, "ScanBy": "TimestampAscending"}),
        )
        .await;
    let reasons: Vec<String> = items(&ranged)
        .iter()
        .map(|i| {
            let d: Value = serde_json::from_str(i["HistoryData"].as_str().unwrap()).unwrap();
            d["newState"]["stateReason"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(reasons, vec!["step 1", "step 2"]);
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"AlarmName": "h1", "MaxRecords": 2});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let page = h.ok("DescribeAlarmHistory", input).await;
        all.extend(items(&page));
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(all.len(), 5, "1 creation + 4 state updates");

    // Deleting keeps the history and records the deletion.
    h.ok("DeleteAlarms", json!({"AlarmNames": ["c1"]})).await;
    h.ok("DeleteAlarms", json!({"AlarmNames": ["h1"]})).await;
    let after = h.history("h1", Some("ConfigurationUpdate")).await;
    assert_eq!(
        after.last().unwrap()["HistorySummary"],
        "Alarm \"h1\" deleted"
    );
    let data: Value =
        serde_json::from_str(after.last().unwrap()["HistoryData"].as_str().unwrap()).unwrap();
    assert_eq!(data["type"], "Delete");
    assert_eq!(data["deletedAlarm"]["alarmName"], "h1");
    expect_err(
        h.call("DescribeAlarmHistory", json!({"NextToken": "x"}))
            .await,
        "InvalidNextToken",
    );
}

#[tokio::test]
async fn enabling_and_disabling_actions() {
    let h = Harness::new();
    let t0 = h.now();
    h.alarm(
        "act",
        "M",
        json!({"AlarmActions": [topic("ops")], "OKActions": [topic("ops")]}),
    )
    .await;
    h.ok(
        "DisableAlarmActions",
        json!({"AlarmNames": ["act", "ghost"]}),
    )
    .await;
    assert_eq!(h.describe("act").await["ActionsEnabled"], json!(false));
    h.put("M", 50.0, t0 + 1000).await;
    h.settle().await;
    assert_eq!(h.state("act").await, "ALARM");
    assert!(h.sns.calls().is_empty(), "disabled actions do not run");
    assert_eq!(
        h.events.calls().len(),
        1,
        "the state change event is sent regardless"
    );
    h.ok("EnableAlarmActions", json!({"AlarmNames": ["act"]}))
        .await;
    assert_eq!(h.describe("act").await["ActionsEnabled"], json!(true));
    h.ok(
        "SetAlarmState",
        json!({"AlarmName": "act", "StateValue": "OK", "StateReason": "r"}),
    )
    .await;
    h.svc.alarms().dispatch().await;
    assert_eq!(h.sns.calls().len(), 1);
    let updates = h.history("act", Some("ConfigurationUpdate")).await;
    assert_eq!(updates.len(), 3, "created, disabled, enabled");
}

#[tokio::test]
async fn deleting_alarms_and_their_tags() {
    let h = Harness::new();
    h.alarm("x", "M", json!({"Tags": [{"Key": "k", "Value": "v"}]}))
        .await;
    h.alarm("y", "M", json!({})).await;
    h.ok(
        "TagResource",
        json!({"ResourceARN": alarm_arn("y"), "Tags": [{"Key": "a", "Value": "b"}]}),
    )
    .await;
    assert_eq!(
        h.ok(
            "ListTagsForResource",
            json!({"ResourceARN": alarm_arn("y")})
        )
        .await,
        json!({"Tags": [{"Key": "a", "Value": "b"}]})
    );
    // Unknown names are ignored; the known ones go.
    h.ok("DeleteAlarms", json!({"AlarmNames": ["x", "nope"]}))
        .await;
    let left = h.ok("DescribeAlarms", json!({})).await;
    assert_eq!(left["MetricAlarms"].as_array().unwrap().len(), 1);
    expect_err(
        h.call(
            "ListTagsForResource",
            json!({"ResourceARN": alarm_arn("x")}),
        )
        .await,
        "ResourceNotFoundException",
    );
    // A re-created alarm starts without the old tags.
    h.alarm("x", "M", json!({})).await;
    assert_eq!(
        h.ok(
            "ListTagsForResource",
            json!({"ResourceARN": alarm_arn("x")})
        )
        .await,
        json!({"Tags": []})
    );
    expect_err(
        h.call(
            "TagResource",
            json!({"ResourceARN": alarm_arn("ghost"), "Tags": [{"Key": "a", "Value": "b"}]}),
        )
        .await,
        "ResourceNotFoundException",
    );
}
