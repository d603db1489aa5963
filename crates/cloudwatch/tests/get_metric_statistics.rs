//! GetMetricStatistics through the service interface.

mod common;

use common::*;
use opsloop_cloudwatch::error::{COMBINATION, INVALID_VALUE, MISSING};
use serde_json::{json, Value};

async fn seeded() -> (opsloop_cloudwatch::CloudWatch, i64) {
    let (svc, _) = service();
    let t0 = minute(30);
    let mut data = Vec::new();
    // Minute 0: 1..=10; minute 1: 100 (statistic set, min == max so percentiles work);
    // minute 2: a statistic set that does not qualify for percentiles.
    for v in 1..=10 {
        data.push(
            json!({"MetricName": "Latency", "Value": v, "Timestamp": t0 + 5,
                         "Dimensions": [{"Name": "Host", "Value": "a"}], "Unit": "Milliseconds"}),
        );
    }
    data.push(
        json!({"MetricName": "Latency", "Timestamp": t0 + 65, "Unit": "Milliseconds",
        "Dimensions": [{"Name": "Host", "Value": "a"}],
        "StatisticValues": {"SampleCount": 4, "Sum": 400, "Minimum": 100, "Maximum": 100}}),
    );
    data.push(
        json!({"MetricName": "Latency", "Timestamp": t0 + 125, "Unit": "Milliseconds",
        "Dimensions": [{"Name": "Host", "Value": "a"}],
        "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 1, "Maximum": 9}}),
    );
    // Same metric, another unit.
    data.push(
        json!({"MetricName": "Latency", "Value": 7, "Timestamp": t0 + 10, "Unit": "Seconds",
                     "Dimensions": [{"Name": "Host", "Value": "a"}]}),
    );
    // A metric with a superset of the dimensions: never part of the exact match.
    data.push(
        json!({"MetricName": "Latency", "Value": 1000, "Timestamp": t0 + 5,
        "Dimensions": [{"Name": "Host", "Value": "a"}, {"Name": "Az", "Value": "1"}]}),
    );
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": data}),
    )
    .await
    .unwrap();
    (svc, t0)
}

fn req(t0: i64, extra: Value) -> Value {
    let mut base = json!({
        "Namespace": "App", "MetricName": "Latency",
        "Dimensions": [{"Name": "Host", "Value": "a"}],
        "StartTime": t0, "EndTime": t0 + 180, "Period": 60,
    });
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

#[tokio::test]
async fn standard_statistics_per_period_and_unit() {
    let (svc, t0) = seeded().await;
    let out = call(
        &svc,
        "GetMetricStatistics",
        req(t0, json!({"Statistics": ["SampleCount", "Average", "Sum", "Minimum", "Maximum"], "Unit": "Milliseconds"})),
    )
    .await
    .unwrap();
    assert_eq!(out["Label"], "Latency");
    let dps = out["Datapoints"].as_array().unwrap();
    assert_eq!(dps.len(), 3);
    assert_eq!(
        dps[0],
        json!({"Timestamp": t0, "SampleCount": 10.0, "Average": 5.5, "Sum": 55.0, "Minimum": 1.0,
               "Maximum": 10.0, "Unit": "Milliseconds"})
    );
    assert_eq!(dps[1]["Timestamp"], json!(t0 + 60));
    assert_eq!(dps[1]["Average"], json!(100.0));
    assert_eq!(dps[2]["Average"], json!(5.0));

    // Without Unit every unit has its own datapoints.
    let all = call(
        &svc,
        "GetMetricStatistics",
        req(t0, json!({"Statistics": ["Sum"]})),
    )
    .await
    .unwrap();
    let units: Vec<(i64, String)> = all["Datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["Timestamp"].as_i64().unwrap(),
                d["Unit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        units,
        vec![
            (t0, "Milliseconds".into()),
            (t0, "Seconds".into()),
            (t0 + 60, "Milliseconds".into()),
            (t0 + 120, "Milliseconds".into())
        ]
    );
    assert!(
        all["Datapoints"][0].get("Average").is_none(),
        "only requested statistics are returned"
    );
}

#[tokio::test]
async fn extended_statistics() {
    let (svc, t0) = seeded().await;
    let out = call(
        &svc,
        "GetMetricStatistics",
        req(t0, json!({"ExtendedStatistics": ["p50", "tm90", "IQM", "PR(:5)"], "Statistics": ["Maximum"],
                       "Unit": "Milliseconds"})),
    )
    .await
    .unwrap();
    let dps = out["Datapoints"].as_array().unwrap();
    assert_eq!(
        dps[0]["ExtendedStatistics"],
        json!({"p50": 5.0, "tm90": 5.0, "IQM": 5.5, "PR(:5)": 50.0})
    );
    assert_eq!(dps[0]["Maximum"], json!(10.0));
    // min == max statistic set: percentiles are available.
    assert_eq!(dps[1]["ExtendedStatistics"]["p50"], json!(100.0));
    // Non-qualifying statistic set: no percentile, standard statistics still there.
    assert!(dps[2].get("ExtendedStatistics").is_none());
    assert_eq!(dps[2]["Maximum"], json!(9.0));
}

#[tokio::test]
async fn periods_align_to_the_rounded_start_time() {
    let (svc, t0) = seeded().await;
    // A start 30 s into the first minute is rounded down to the minute.
    let out = call(
        &svc,
        "GetMetricStatistics",
        req(t0, json!({"StartTime": t0 + 30, "EndTime": t0 + 600, "Period": 120, "Statistics": ["SampleCount"],
                       "Unit": "Milliseconds"})),
    )
    .await
    .unwrap();
    let dps = out["Datapoints"].as_array().unwrap();
    assert_eq!(dps[0]["Timestamp"], json!(t0));
    assert_eq!(dps[0]["SampleCount"], json!(14.0));
    assert_eq!(dps[1]["Timestamp"], json!(t0 + 120));
}

#[tokio::test]
async fn the_datapoint_limit() {
    let (svc, t0) = seeded().await;
    let e = expect_err(
        call(
            &svc,
            "GetMetricStatistics",
            req(
                t0,
                json!({"StartTime": t0 - 86_400, "EndTime": t0 + 1, "Period": 60,
                                                          "Statistics": ["Sum"]}),
            ),
        )
        .await,
        COMBINATION,
    );
    assert_eq!(
        e.message,
        "You have requested up to 1441 datapoints, which exceeds the limit of 1440. You may reduce the datapoints \
         requested by increasing Period, or decreasing the time range."
    );
    call(
        &svc,
        "GetMetricStatistics",
        req(
            t0,
            json!({"StartTime": t0 - 86_340, "EndTime": t0 + 60, "Period": 60,
                                                      "Statistics": ["Sum"]}),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn validation() {
    let (svc, t0) = seeded().await;
    let cases = [
        (json!({"Period": 45, "Statistics": ["Sum"]}), INVALID_VALUE),
        (json!({"EndTime": t0, "Statistics": ["Sum"]}), INVALID_VALUE),
        (json!({"ExtendedStatistics": ["p101"]}), INVALID_VALUE),
        (json!({"Statistics": ["Median"]}), INVALID_VALUE),
        (json!({}), COMBINATION),
    ];
    for (extra, kind) in cases {
        let e = expect_err(
            call(&svc, "GetMetricStatistics", req(t0, extra.clone())).await,
            kind,
        );
        assert!(!e.message.is_empty(), "{extra}");
    }
    let e = expect_err(
        call(
            &svc,
            "GetMetricStatistics",
            req(t0, json!({"EndTime": t0, "Statistics": ["Sum"]})),
        )
        .await,
        INVALID_VALUE,
    );
    assert_eq!(
        e.message,
        "The parameter StartTime must be less than the parameter EndTime."
    );
    let mut missing = req(t0, json!({"Statistics": ["Sum"]}));
    missing.as_object_mut().unwrap().remove("Period");
    let e = expect_err(call(&svc, "GetMetricStatistics", missing).await, MISSING);
    assert_eq!(e.message, "The parameter Period is required.");
}

#[tokio::test]
async fn old_data_needs_coarse_periods() {
    let (svc, _) = service();
    let t = minute(5 * 60); // five hours ago
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [
        {"MetricName": "Hi", "Value": 1, "Timestamp": t + 3, "StorageResolution": 1}]}),
    )
    .await
    .unwrap();
    let q = |period: i64| {
        json!({"Namespace": "App", "MetricName": "Hi", "StartTime": t, "EndTime": t + 60,
                                  "Period": period, "Statistics": ["Sum"]})
    };
    let fine = call(&svc, "GetMetricStatistics", q(1)).await.unwrap();
    assert_eq!(
        fine["Datapoints"],
        json!([]),
        "1-second data is kept for 3 hours only"
    );
    let coarse = call(&svc, "GetMetricStatistics", q(60)).await.unwrap();
    assert_eq!(coarse["Datapoints"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn high_and_standard_resolution_with_sub_minute_periods() {
    let (svc, _) = service();
    let t = minute(10);
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [
            {"MetricName": "Hi", "Value": 1, "Timestamp": t + 7, "StorageResolution": 1},
            {"MetricName": "Hi", "Value": 2, "Timestamp": t + 23, "StorageResolution": 1},
            {"MetricName": "Std", "Value": 1, "Timestamp": t + 7},
            {"MetricName": "Std", "Value": 2, "Timestamp": t + 23},
        ]}),
    )
    .await
    .unwrap();
    let q = |name: &str| {
        json!({"Namespace": "App", "MetricName": name, "StartTime": t, "EndTime": t + 60,
                                "Period": 10, "Statistics": ["Sum"]})
    };
    let hi = call(&svc, "GetMetricStatistics", q("Hi")).await.unwrap();
    let stamps: Vec<i64> = hi["Datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["Timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(stamps, vec![t, t + 20]);
    // Standard resolution has minute granularity: one datapoint at the minute.
    let std = call(&svc, "GetMetricStatistics", q("Std")).await.unwrap();
    assert_eq!(
        std["Datapoints"],
        json!([{"Timestamp": t, "Sum": 3.0, "Unit": "None"}])
    );
}
