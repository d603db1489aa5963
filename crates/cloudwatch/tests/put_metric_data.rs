//! PutMetricData through the service interface: what is stored, and every validation rule.

mod common;

use common::*;
use opsloop_cloudwatch::error::{COMBINATION, INVALID_VALUE, MISSING};
use opsloop_core::{RequestContext, Service};
use serde_json::json;

async fn put(metric_data: serde_json::Value) -> Result<serde_json::Value, opsloop_core::ApiError> {
    let (svc, _) = service();
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": metric_data}),
    )
    .await
}

#[tokio::test]
async fn stores_values_statistic_sets_and_value_lists() {
    let (svc, store) = service();
    let t = minute(5);
    let out = call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [
            {"MetricName": "Latency", "Value": 3.5, "Timestamp": t,
             "Dimensions": [{"Name": "Z", "Value": "z"}, {"Name": "A", "Value": "a"}]},
            {"MetricName": "Latency", "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6},
             "Timestamp": t, "Dimensions": [{"Name": "A", "Value": "a"}, {"Name": "Z", "Value": "z"}]},
            {"MetricName": "Latency", "Values": [1, 2, 3], "Counts": [1, 0, 4], "Unit": "Milliseconds",
             "StorageResolution": 1},
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({}));
    // The first two share a series (dimension order does not matter); the third differs by unit and
    // dimensions. A zero count contributes nothing.
    let series = store
        .list_series(&opsloop_tsdb::SeriesFilter {
            account: ACCOUNT.into(),
            region: REGION.into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(series.len(), 2);
    let with_dims = series
        .iter()
        .find(|s| !s.key.dimensions.is_empty())
        .unwrap();
    assert_eq!(
        with_dims.key.dimensions,
        vec![("A".into(), "a".into()), ("Z".into(), "z".into())]
    );
    assert_eq!(with_dims.key.unit, "None");
    assert!(!with_dims.high_resolution);
    let ms = series
        .iter()
        .find(|s| s.key.unit == "Milliseconds")
        .unwrap();
    assert!(ms.high_resolution);
    assert_eq!(store.points(), 4);
}

use opsloop_tsdb::MetricStore;

#[tokio::test]
async fn timestamps_default_to_receipt_and_are_bounded() {
    let (svc, store) = service();
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [{"MetricName": "M", "Value": 1}]}),
    )
    .await
    .unwrap();
    let info = &store
        .list_series(&opsloop_tsdb::SeriesFilter {
            account: ACCOUNT.into(),
            region: REGION.into(),
            ..Default::default()
        })
        .unwrap()[0];
    assert!((wall_ms() - info.last_ts_ms).abs() < 60_000);

    let now = wall_ms() / 1000;
    let e = expect_err(
        put(json!([{"MetricName": "M", "Value": 1, "Timestamp": now - 15 * 86_400}])).await,
        INVALID_VALUE,
    );
    assert_eq!(e.message, "The parameter MetricData.member.1.Timestamp must specify a time within the past two weeks.");
    let e = expect_err(
        put(json!([{"MetricName": "M", "Value": 1, "Timestamp": now + 3 * 3600}])).await,
        INVALID_VALUE,
    );
    assert!(
        e.message.contains("no more than two hours in the future"),
        "{}",
        e.message
    );
    put(json!([{"MetricName": "M", "Value": 1, "Timestamp": now - 13 * 86_400}]))
        .await
        .unwrap();
    put(json!([{"MetricName": "M", "Value": 1, "Timestamp": now + 3600}]))
        .await
        .unwrap();
}

#[tokio::test]
async fn every_bad_member_is_reported() {
    let e = expect_err(
        put(json!([
            {"MetricName": "M", "Value": 1},
            {"MetricName": "M", "Value": "NaN"},
            {"MetricName": "M", "Value": "Infinity"},
        ]))
        .await,
        INVALID_VALUE,
    );
    assert_eq!(
        e.message,
        "The value NaN for parameter MetricData.member.2.Value is invalid.\n\
         The value Infinity for parameter MetricData.member.3.Value is invalid."
    );
}

#[tokio::test]
async fn values_beyond_two_to_the_360_are_rejected() {
    let limit = 2f64.powi(360);
    put(json!([{"MetricName": "M", "Value": limit}, {"MetricName": "M", "Value": -limit}]))
        .await
        .unwrap();
    let e = expect_err(
        put(json!([{"MetricName": "M", "Value": limit * 2.0}])).await,
        INVALID_VALUE,
    );
    assert!(
        e.message.contains("MetricData.member.1.Value"),
        "{}",
        e.message
    );
    let e = expect_err(
        put(json!([{"MetricName": "M", "Values": [1, 1e200]}])).await,
        INVALID_VALUE,
    );
    assert!(
        e.message.contains("MetricData.member.1.Values.member.2"),
        "{}",
        e.message
    );
    let e = expect_err(
        put(json!([{"MetricName": "M", "StatisticValues": {"SampleCount": 1, "Sum": "NaN", "Minimum": 1, "Maximum": 1}}]))
            .await,
        INVALID_VALUE,
    );
    assert!(e.message.contains("StatisticValues.Sum"), "{}", e.message);
}

#[tokio::test]
async fn value_kinds_are_mutually_exclusive() {
    let cases = [
        (json!({"MetricName": "M", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}),
         "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually exclusive and you have specified both."),
        (json!({"MetricName": "M", "Value": 1, "Values": [1]}),
         "The parameters MetricData.member.1.Value and MetricData.member.1.Values are mutually exclusive and you have specified both."),
        (json!({"MetricName": "M"}),
         "At least one of the parameters MetricData.member.1.Value, MetricData.member.1.StatisticValues and MetricData.member.1.Values must be specified."),
        (json!({"MetricName": "M", "Value": 1, "Counts": [1]}),
         "The parameter MetricData.member.1.Counts can only be specified with MetricData.member.1.Values."),
    ];
    for (datum, message) in cases {
        let e = expect_err(put(json!([datum])).await, COMBINATION);
        assert_eq!(e.message, message);
    }
}

#[tokio::test]
async fn counts_must_match_values() {
    let e = expect_err(
        put(json!([{"MetricName": "M", "Values": [1, 2], "Counts": [1]}])).await,
        INVALID_VALUE,
    );
    assert_eq!(
        e.message,
        "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size."
    );
}

#[tokio::test]
async fn list_and_count_limits() {
    let values: Vec<f64> = (0..151).map(f64::from).collect();
    let e = expect_err(
        put(json!([{"MetricName": "M", "Values": values}])).await,
        INVALID_VALUE,
    );
    assert!(
        e.message.contains("must not have a size greater than 150"),
        "{}",
        e.message
    );
    put(json!([{"MetricName": "M", "Values": &values[..150]}]))
        .await
        .unwrap();

    let many: Vec<_> = (0..1001)
        .map(|i| json!({"MetricName": format!("M{i}"), "Value": 1}))
        .collect();
    let e = expect_err(
        put(serde_json::Value::Array(many[..1001].to_vec())).await,
        INVALID_VALUE,
    );
    assert!(e.message.contains("1000"), "{}", e.message);
    put(serde_json::Value::Array(many[..1000].to_vec()))
        .await
        .unwrap();

    // The limit spans MetricData and EntityMetricData.
    let (svc, _) = service();
    let e = expect_err(
        call(
            &svc,
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": many[..600].to_vec(),
                   "EntityMetricData": [{"Entity": {"KeyAttributes": {"Type": "Service", "Name": "s"}},
                                         "MetricData": many[..401].to_vec()}]}),
        )
        .await,
        INVALID_VALUE,
    );
    assert!(e.message.contains("1000"));
    let e = expect_err(
        call(
            &svc,
            "PutMetricData",
            json!({"Namespace": "App",
            "EntityMetricData": [{"MetricData": [{"MetricName": "M", "Value": "NaN"}]}]}),
        )
        .await,
        INVALID_VALUE,
    );
    assert!(
        e.message
            .contains("EntityMetricData.member.1.MetricData.member.1.Value"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn dimension_rules() {
    let dims = |d: serde_json::Value| json!([{"MetricName": "M", "Value": 1, "Dimensions": d}]);
    let thirty: Vec<_> = (0..30)
        .map(|i| json!({"Name": format!("D{i}"), "Value": "v"}))
        .collect();
    put(dims(json!(thirty))).await.unwrap();
    let mut thirty_one = thirty.clone();
    thirty_one.push(json!({"Name": "D30", "Value": "v"}));
    expect_err(put(dims(json!(thirty_one))).await, INVALID_VALUE);

    for bad in [
        json!([{"Name": "A", "Value": "1"}, {"Name": "A", "Value": "2"}]),
        json!([{"Name": ":A", "Value": "1"}]),
        json!([{"Name": "A", "Value": "   "}]),
        json!([{"Name": "A", "Value": "caf\u{e9}"}]),
        json!([{"Name": "A\u{7}", "Value": "1"}]),
    ] {
        expect_err(put(dims(bad.clone())).await, INVALID_VALUE);
    }
    let e = expect_err(put(dims(json!([{"Name": "A"}]))).await, MISSING);
    assert_eq!(
        e.message,
        "The parameter MetricData.member.1.Dimensions.member.1.Value is required."
    );
}

#[tokio::test]
async fn namespace_unit_and_resolution_rules() {
    let (svc, _) = service();
    let e = expect_err(
        call(
            &svc,
            "PutMetricData",
            json!({"Namespace": "AWS/EC2", "MetricData": [{"MetricName": "M", "Value": 1}]}),
        )
        .await,
        INVALID_VALUE,
    );
    assert_eq!(
        e.message,
        "The value AWS/EC2 for parameter Namespace is invalid."
    );
    // opsloop's own services (EventBridge's AWS/Events, ...) publish in AWS/ namespaces.
    let internal = RequestContext::internal(ACCOUNT, REGION, "PutMetricData");
    svc.call(
        &internal,
        json!({"Namespace": "AWS/Events", "MetricData": [{"MetricName": "Invocations", "Value": 1}]}),
    )
    .await
    .expect("an internal caller may use an AWS/ namespace");
    let e = expect_err(
        call(&svc, "PutMetricData", json!({"MetricData": []})).await,
        MISSING,
    );
    assert_eq!(e.message, "The parameter Namespace is required.");
    expect_err(
        call(&svc, "PutMetricData", json!({"Namespace": "App"})).await,
        MISSING,
    );

    let e = expect_err(
        put(json!([{"MetricName": "M", "Value": 1, "Unit": "Parsecs"}])).await,
        INVALID_VALUE,
    );
    assert!(e
        .message
        .starts_with("The parameter MetricData.member.1.Unit must be a value in the set"));
    let e = expect_err(
        put(json!([{"MetricName": "M", "Value": 1, "StorageResolution": 30}])).await,
        INVALID_VALUE,
    );
    assert_eq!(
        e.message,
        "The value 30 for parameter MetricData.member.1.StorageResolution is invalid."
    );
    put(json!([{"MetricName": "M", "Value": 1, "StorageResolution": 60, "Unit": "Bytes/Second"}]))
        .await
        .unwrap();
}

#[tokio::test]
async fn statistic_sets_must_be_consistent() {
    let set = |c: f64, min: f64, max: f64| json!([{"MetricName": "M", "StatisticValues": {"SampleCount": c, "Sum": 1, "Minimum": min, "Maximum": max}}]);
    put(set(1.0, 1.0, 1.0)).await.unwrap();
    expect_err(put(set(0.0, 1.0, 1.0)).await, INVALID_VALUE);
    expect_err(put(set(2.0, 3.0, 1.0)).await, COMBINATION);
    let e = expect_err(
        put(json!([{"MetricName": "M", "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1}}])).await,
        MISSING,
    );
    assert_eq!(
        e.message,
        "The parameter MetricData.member.1.StatisticValues.Maximum is required."
    );
}

#[tokio::test]
async fn nothing_is_written_when_anything_is_invalid() {
    let (svc, store) = service();
    let r = call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [
            {"MetricName": "Good", "Value": 1},
            {"MetricName": "Bad", "Value": "NaN"},
        ]}),
    )
    .await;
    expect_err(r, INVALID_VALUE);
    assert_eq!(store.points(), 0);
    assert_eq!(*store.writes.lock(), 0);
}
