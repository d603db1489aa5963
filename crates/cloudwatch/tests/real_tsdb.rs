//! The service over the real embedded metric store ([`opsloop_tsdb::Tsdb`]): publish, query with
//! every read operation, and survive a restart.

mod common;

use std::sync::Arc;

use common::*;
use opsloop_tsdb::{MetricStore, Tsdb, TsdbOptions};
use serde_json::{json, Value};

fn open(dir: &std::path::Path) -> Arc<Tsdb> {
    Tsdb::open(dir, TsdbOptions::default()).unwrap()
}

async fn publish(svc: &opsloop_cloudwatch::CloudWatch, t0: i64) {
    let mut data = Vec::new();
    for i in 0..3i64 {
        for (host, base) in [("a", 1.0), ("b", 100.0)] {
            data.push(json!({
                "MetricName": "Latency", "Timestamp": t0 + i * 60 + 2, "Unit": "Milliseconds",
                "Dimensions": [{"Name": "Host", "Value": host}],
                "Values": [base, base + 1.0, base + 2.0, base + 3.0], "Counts": [1, 1, 1, 1],
            }));
        }
    }
    data.push(
        json!({"MetricName": "Requests", "Timestamp": t0 + 2, "Unit": "Count",
        "StatisticValues": {"SampleCount": 3, "Sum": 30, "Minimum": 5, "Maximum": 15}}),
    );
    call(
        svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": data}),
    )
    .await
    .unwrap();
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

async fn check_reads(svc: &opsloop_cloudwatch::CloudWatch, t0: i64) {
    let stats = call(
        svc,
        "GetMetricStatistics",
        json!({"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
               "StartTime": t0, "EndTime": t0 + 180, "Period": 60,
               "Statistics": ["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
               "ExtendedStatistics": ["p50", "p100", "tm50"]}),
    )
    .await
    .unwrap();
    let dps = stats["Datapoints"].as_array().unwrap();
    assert_eq!(dps.len(), 3);
    assert_eq!(dps[0]["Timestamp"], json!(t0));
    assert_eq!(dps[0]["SampleCount"], json!(4.0));
    assert_eq!(dps[0]["Sum"], json!(10.0));
    assert_eq!(dps[0]["Average"], json!(2.5));
    assert_eq!(dps[0]["Minimum"], json!(1.0));
    assert_eq!(dps[0]["Maximum"], json!(4.0));
    assert_eq!(dps[0]["Unit"], "Milliseconds");
    let ext = &dps[0]["ExtendedStatistics"];
    assert_eq!(ext["p50"], json!(2.0));
    assert_eq!(ext["p100"], json!(4.0));
    assert_eq!(ext["tm50"], json!(1.5));

    let sets = call(
        svc,
        "GetMetricStatistics",
        json!({"Namespace": "App", "MetricName": "Requests", "StartTime": t0, "EndTime": t0 + 60, "Period": 60,
               "Statistics": ["Average", "SampleCount"], "ExtendedStatistics": ["p50"]}),
    )
    .await
    .unwrap();
    let dp = &sets["Datapoints"][0];
    assert_eq!(
        (dp["Average"].as_f64(), dp["SampleCount"].as_f64()),
        (Some(10.0), Some(3.0))
    );
    assert!(
        dp.get("ExtendedStatistics").is_none(),
        "a min != max statistic set has no percentiles"
    );

    let data = call(
        svc,
        "GetMetricData",
        json!({"StartTime": t0, "EndTime": t0 + 180, "ScanBy": "TimestampAscending", "MetricDataQueries": [
            {"Id": "s", "Expression": "SEARCH('{App,Host} MetricName=\"Latency\"', 'Sum', 60)"},
            {"Id": "ma", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}]}, "Period": 60, "Stat": "Maximum"}},
            {"Id": "twice", "Expression": "ma * 2"},
        ]}),
    )
    .await
    .unwrap();
    let results = data["MetricDataResults"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["Label"], "Latency a");
    assert_eq!(nums(&results[0]["Values"]), vec![10.0, 10.0, 10.0]);
    assert_eq!(nums(&results[1]["Values"]), vec![406.0, 406.0, 406.0]);
    assert_eq!(results[2]["Id"], "twice");
    assert_eq!(nums(&results[2]["Values"]), vec![8.0, 8.0, 8.0]);

    let listed = call(svc, "ListMetrics", json!({"Namespace": "App"}))
        .await
        .unwrap();
    assert_eq!(listed["Metrics"].as_array().unwrap().len(), 3);
    let active = call(
        svc,
        "ListMetrics",
        json!({"RecentlyActive": "PT3H", "MetricName": "Latency"}),
    )
    .await
    .unwrap();
    assert_eq!(active["Metrics"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_query_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = minute(30);
    {
        let db = open(dir.path());
        let svc = service_over(db.clone());
        publish(&svc, t0).await;
        check_reads(&svc, t0).await;
        db.close().unwrap();
    }
    // Acknowledged data is durable: a reopened store serves the same answers.
    let db = open(dir.path());
    let svc = service_over(db.clone());
    check_reads(&svc, t0).await;
    db.close().unwrap();
}
