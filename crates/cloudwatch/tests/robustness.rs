//! Malformed and extreme inputs never panic: every operation answers with a result or an error.
//! (The wire layer already rejects most of these; internal callers get the same guarantees.)

mod common;

use common::*;
use serde_json::{json, Value};

async fn survives(op: &str, inputs: Vec<Value>) {
    let (svc, _) = service();
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [{"MetricName": "M", "Value": 1}]}),
    )
    .await
    .unwrap();
    for input in inputs {
        // Any Ok or client error is acceptable. A panic on the async path fails the test directly; one
        // on the blocking pool surfaces as InternalFailure (the store double itself never fails).
        if let Err(e) = call(&svc, op, input.clone()).await {
            assert_ne!(e.kind, "InternalFailure", "{op} {input}: {}", e.message);
        }
    }
}

fn shapes() -> Vec<Value> {
    vec![
        json!(null),
        json!(5),
        json!("x"),
        json!([1, 2]),
        json!({}),
        json!({"Unexpected": true}),
    ]
}

#[tokio::test]
async fn put_metric_data() {
    let mut inputs = shapes();
    for datum in [
        json!(5),
        json!({"MetricName": 5, "Value": 1}),
        json!({"MetricName": "M", "Dimensions": "x", "Value": 1}),
        json!({"MetricName": "M", "Dimensions": [5, {"Name": 1}], "Value": 1}),
        json!({"MetricName": "M", "Timestamp": "x", "Value": 1}),
        json!({"MetricName": "M", "Timestamp": 1e300, "Value": 1}),
        json!({"MetricName": "M", "Timestamp": -1e300, "Value": 1}),
        json!({"MetricName": "M", "Value": {}}),
        json!({"MetricName": "M", "Values": [null, "x", 1e308], "Counts": ["x", -1, 1e308]}),
        json!({"MetricName": "M", "Values": "x"}),
        json!({"MetricName": "M", "StatisticValues": 5}),
        json!({"MetricName": "M", "StatisticValues": {"SampleCount": "x", "Sum": {}, "Minimum": [], "Maximum": null}}),
        json!({"MetricName": "M", "Value": 1, "StorageResolution": "x"}),
        json!({"MetricName": "M", "Value": 1, "StorageResolution": 1e300}),
        json!({"MetricName": "M", "Value": 1, "Unit": 5}),
        json!({"MetricName": "", "Value": 1, "Dimensions": [{"Name": "", "Value": ""}]}),
    ] {
        inputs.push(json!({"Namespace": "App", "MetricData": [datum]}));
    }
    inputs.push(json!({"Namespace": 5, "MetricData": []}));
    inputs.push(
        json!({"Namespace": "App", "MetricData": "x", "EntityMetricData": [5, {"MetricData": 5}]}),
    );
    survives("PutMetricData", inputs).await;
}

#[tokio::test]
async fn get_metric_statistics() {
    let mut inputs = shapes();
    let base = json!({"Namespace": "App", "MetricName": "M", "StartTime": 0, "EndTime": 1, "Period": 60,
                      "Statistics": ["Sum"]});
    for (k, v) in [
        ("StartTime", json!("x")),
        ("StartTime", json!(-1e300)),
        ("EndTime", json!(1e300)),
        ("Period", json!(1e300)),
        ("Period", json!(-60)),
        ("Period", json!(i64::MAX)),
        ("Statistics", json!("x")),
        (
            "ExtendedStatistics",
            json!([5, "p", "TM(", "PR(:)", "p1e5"]),
        ),
        ("Dimensions", json!([{"Name": "A"}])),
        ("Unit", json!(5)),
    ] {
        let mut input = base.clone();
        input[k] = v;
        inputs.push(input);
    }
    survives("GetMetricStatistics", inputs).await;
}

#[tokio::test]
async fn get_metric_data() {
    let mut inputs = shapes();
    let stat = json!({"Id": "m", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "M"}, "Period": 3600,
                       "Stat": "Sum"}});
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    for queries in [
        json!([]),
        json!([{}]),
        json!([{"Id": 5}]),
        json!([{"Id": "m", "MetricStat": {}}]),
        json!([{"Id": "m", "MetricStat": {"Metric": 5, "Period": "x", "Stat": 5}}]),
        json!([{"Id": "e", "Expression": deep}]),
        json!([{"Id": "e", "Expression": "SEARCH('{', 'Sum', 60)"}]),
        json!([{"Id": "e", "Expression": "SEARCH('App', 'Nope', 7)"}]),
        json!([{"Id": "e", "Expression": "m / 0"}, stat.clone()]),
        json!([{"Id": "e", "Expression": "FILL(m, 0)", "Period": 1}, stat.clone()]),
        json!([{"Id": "e", "Expression": "\u{0}\u{ffff}"}]),
        json!([{"Id": "e", "Label": "${", "Expression": "1"}]),
    ] {
        inputs.push(
            json!({"MetricDataQueries": queries, "StartTime": 0, "EndTime": wall_ms() / 1000}),
        );
    }
    for (k, v) in [
        ("StartTime", json!(-1e300)),
        ("EndTime", json!(1e300)),
        ("MaxDatapoints", json!(i64::MAX)),
        ("MaxDatapoints", json!(-1)),
        ("NextToken", json!(5)),
        ("NextToken", json!("1.%%%.0")),
        ("ScanBy", json!("Sideways")),
        ("LabelOptions", json!({"Timezone": "+99999"})),
        ("LabelOptions", json!(5)),
    ] {
        let mut input =
            json!({"MetricDataQueries": [stat.clone()], "StartTime": -1e300, "EndTime": 1e300});
        input[k] = v;
        inputs.push(input);
    }
    survives("GetMetricData", inputs).await;
}

#[tokio::test]
async fn list_metrics_and_tags() {
    let mut inputs = shapes();
    inputs.extend([
        json!({"Dimensions": 5}),
        json!({"Dimensions": [{"Value": "x"}]}),
        json!({"NextToken": 5}),
        json!({"RecentlyActive": 5}),
        json!({"IncludeLinkedAccounts": "yes"}),
    ]);
    survives("ListMetrics", inputs).await;
    for op in ["TagResource", "UntagResource", "ListTagsForResource"] {
        let mut inputs = shapes();
        inputs.extend([
            json!({"ResourceARN": 5, "Tags": "x", "TagKeys": 5}),
            json!({"ResourceARN": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x", "Tags": [5], "TagKeys": [5]}),
            json!({"ResourceARN": "arn:aws:cloudwatch:::::::", "Tags": [], "TagKeys": []}),
        ]);
        survives(op, inputs).await;
    }
}
