//! Anomaly detection through the service: detector resources, `ANOMALY_DETECTION_BAND` in
//! GetMetricData over two weeks of synthetic seasonal data with injected anomalies (anomalies fall
//! outside the band, normal points inside), and an anomaly-detection alarm reacting to a spike.

mod alarm_support;

use alarm_support::*;
use opsloop_tsdb::{MetricStore, Point, Sample, SeriesKey, SeriesWrite};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const STEP: i64 = 5 * 60_000;

/// The normal shape: a daily cycle, quieter weekends, slow growth.
fn normal(t: i64) -> f64 {
    let hod = t.rem_euclid(DAY) as f64 / HOUR as f64;
    let weekend = (t.div_euclid(DAY) + 3).rem_euclid(7) >= 5;
    500.0
        + (t - 1_600_000_000_000) as f64 / HOUR as f64 * 0.01
        + 100.0 * (std::f64::consts::TAU * hod / 24.0).sin()
        + if weekend { -80.0 } else { 0.0 }
}

/// Deterministic noise in [-5, 5).
fn noise(i: i64) -> f64 {
    let x = (i.wrapping_mul(2_654_435_761) ^ (i >> 3)).rem_euclid(1000) as f64 / 1000.0;
    (x - 0.5) * 10.0
}

/// Fourteen days of 5-minute data ending at `end` (exclusive), with spikes at `anomalies`.
async fn seed(h: &Harness, end: i64, anomalies: &[i64]) {
    let start = end - 14 * DAY;
    let points: Vec<Point> = (0..(14 * DAY / STEP))
        .map(|i| {
            let t = start + i * STEP;
            let mut v = normal(t) + noise(i);
            if anomalies.contains(&t) {
                v += 150.0;
            }
            Point {
                ts_ms: t,
                sample: Sample::Value {
                    value: v,
                    count: 1.0,
                },
            }
        })
        .collect();
    let key = SeriesKey {
        account: ACCOUNT.into(),
        region: REGION.into(),
        namespace: "NS".into(),
        metric_name: "Traffic".into(),
        dimensions: vec![],
        unit: "None".into(),
    };
    h.store
        .write(vec![SeriesWrite {
            key,
            high_resolution: false,
            points,
        }])
        .await
        .unwrap();
}

fn band_queries(k: f64) -> Value {
    json!([
        {"Id": "m1", "ReturnData": true, "MetricStat": {
            "Metric": {"Namespace": "NS", "MetricName": "Traffic"}, "Period": 300, "Stat": "Average"}},
        {"Id": "ad1", "ReturnData": true, "Expression": format!("ANOMALY_DETECTION_BAND(m1, {k})")},
    ])
}

#[tokio::test]
async fn the_band_separates_anomalies_from_normal_data() {
    let h = Harness::new();
    let end = h.now();
    let anomalies: Vec<i64> = (1..12).map(|i| end - i * 2 * HOUR - 7 * STEP).collect();
    seed(&h, end, &anomalies).await;
    let out = h
        .ok(
            "GetMetricData",
            json!({"MetricDataQueries": band_queries(3.0), "StartTime": (end - DAY) / 1000,
                   "EndTime": end / 1000, "ScanBy": "TimestampAscending"}),
        )
        .await;
    let results = out["MetricDataResults"].as_array().unwrap();
    assert_eq!(
        results.len(),
        3,
        "the metric, then the band's lower and upper series"
    );
    let series = |r: &Value| -> Vec<(i64, f64)> {
        r["Timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["Values"].as_array().unwrap())
            .map(|(t, v)| (t.as_i64().unwrap() * 1000, v.as_f64().unwrap()))
            .collect()
    };
    let data = series(&results[0]);
    let (lower, upper) = (series(&results[1]), series(&results[2]));
    assert_eq!(results[1]["Id"], "ad1");
    assert_eq!(results[1]["Label"], "Traffic (expected) Lower");
    assert_eq!(results[2]["Label"], "Traffic (expected) Upper");
    assert_eq!(data.len(), (DAY / STEP) as usize);
    assert_eq!(lower.len(), data.len());
    let mut outside = 0;
    for ((t, v), ((_, lo), (_, hi))) in data.iter().zip(lower.iter().zip(&upper)) {
        let inside = v >= lo && v <= hi;
        if anomalies.contains(t) {
            outside += 1;
            assert!(!inside, "anomaly at {t}: {v} inside [{lo}, {hi}]");
        } else {
            assert!(inside, "normal point at {t}: {v} outside [{lo}, {hi}]");
        }
    }
    assert_eq!(outside, 11);

    // Without data there is no band, and the band needs the Id of a metric.
    let empty = h
        .ok(
            "GetMetricData",
            json!({"MetricDataQueries": [
                {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "Nothing"}, "Period": 300, "Stat": "Average"}},
                {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1)"}],
                "StartTime": (end - HOUR) / 1000, "EndTime": end / 1000}),
        )
        .await;
    assert!(empty["MetricDataResults"][1]["Values"]
        .as_array()
        .unwrap()
        .is_empty());
    let e = expect_err(
        h.call(
            "GetMetricData",
            json!({"MetricDataQueries": [
                {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "Traffic"}, "Period": 300, "Stat": "Average"}},
                {"Id": "e1", "Expression": "m1 * 2", "ReturnData": false},
                {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(e1)"}],
                "StartTime": (end - HOUR) / 1000, "EndTime": end / 1000}),
        )
        .await,
        "ValidationError",
    );
    assert!(e.message.contains("MetricStat"), "{}", e.message);
}

#[tokio::test]
async fn an_anomaly_detection_alarm_goes_off_on_a_spike() {
    let h = Harness::new();
    let end = h.now();
    seed(&h, end, &[]).await;
    h.set_time(end + 30_000);
    h.ok(
        "PutMetricAlarm",
        json!({"AlarmName": "traffic-anomaly", "EvaluationPeriods": 1, "ThresholdMetricId": "ad1",
               "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "Metrics": band_queries(3.0)}),
    )
    .await;
    h.settle().await;
    assert_eq!(h.state("traffic-anomaly").await, "OK");
    // The alarm created its detector.
    let detectors = h
        .ok("DescribeAnomalyDetectors", json!({"MetricName": "Traffic"}))
        .await;
    assert_eq!(detectors["AnomalyDetectors"][0]["Stat"], "Average");

    h.put("Traffic", normal(end) + 200.0, end + 10_000).await;
    assert_eq!(h.settle().await, 1);
    let a = h.describe("traffic-anomaly").await;
    assert_eq!(a["StateValue"], "ALARM");
    let reason = a["StateReason"].as_str().unwrap();
    assert!(
        reason.starts_with("Thresholds Crossed: 1 out of the last 1 datapoints ["),
        "{reason}"
    );
    assert!(
        reason.contains("was less than the lower thresholds ["),
        "{reason}"
    );
    assert!(
        reason.contains("or greater than the upper thresholds ["),
        "{reason}"
    );
    assert!(
        reason.ends_with("(minimum 1 datapoint for OK -> ALARM transition)."),
        "{reason}"
    );
    let data: Value = serde_json::from_str(a["StateReasonData"].as_str().unwrap()).unwrap();
    let upper = data["recentUpperThresholds"][0].as_f64().unwrap();
    let lower = data["recentLowerThresholds"][0].as_f64().unwrap();
    assert!(
        lower < normal(end) && normal(end) < upper,
        "[{lower}, {upper}]"
    );
    assert!(data.get("threshold").is_none());
    assert_eq!(a["ThresholdMetricId"], "ad1");
    assert!(a.get("Threshold").is_none());
}

#[tokio::test]
async fn detector_resources() {
    let h = Harness::new();
    let dims = json!([{"Name": "Host", "Value": "a"}]);
    h.ok(
        "PutAnomalyDetector",
        json!({"Namespace": "NS", "MetricName": "CPU", "Dimensions": dims, "Stat": "Average"}),
    )
    .await;
    h.ok(
        "PutAnomalyDetector",
        json!({"SingleMetricAnomalyDetector": {"Namespace": "NS", "MetricName": "Mem", "Stat": "p90"},
               "Configuration": {"ExcludedTimeRanges": [{"StartTime": 1_700_000_000, "EndTime": 1_700_003_600}],
                                 "MetricTimezone": "Europe/Paris"}}),
    )
    .await;
    h.ok(
        "PutAnomalyDetector",
        json!({"MetricMathAnomalyDetector": {"MetricDataQueries": [
            {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "NS", "MetricName": "A"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "e1", "ReturnData": true, "Expression": "m1 * 2"}]}}),
    )
    .await;
    let all = h.ok("DescribeAnomalyDetectors", json!({})).await;
    let list = all["AnomalyDetectors"].as_array().unwrap();
    assert_eq!(list.len(), 2, "single-metric detectors by default");
    let cpu = list.iter().find(|d| d["MetricName"] == "CPU").unwrap();
    assert_eq!(cpu["SingleMetricAnomalyDetector"]["Dimensions"], dims);
    assert_eq!(cpu["StateValue"], "PENDING_TRAINING");
    let mem = list.iter().find(|d| d["MetricName"] == "Mem").unwrap();
    assert_eq!(mem["Configuration"]["MetricTimezone"], "Europe/Paris");
    let math = h
        .ok(
            "DescribeAnomalyDetectors",
            json!({"AnomalyDetectorTypes": ["METRIC_MATH"]}),
        )
        .await;
    assert_eq!(math["AnomalyDetectors"].as_array().unwrap().len(), 1);
    let filtered = h
        .ok("DescribeAnomalyDetectors", json!({"Dimensions": dims}))
        .await;
    assert_eq!(filtered["AnomalyDetectors"].as_array().unwrap().len(), 1);
    let page = h
        .ok("DescribeAnomalyDetectors", json!({"MaxResults": 1}))
        .await;
    assert_eq!(page["AnomalyDetectors"].as_array().unwrap().len(), 1);
    let next = page["NextToken"].as_str().unwrap();
    let rest = h
        .ok(
            "DescribeAnomalyDetectors",
            json!({"MaxResults": 1, "NextToken": next}),
        )
        .await;
    assert_eq!(rest["AnomalyDetectors"].as_array().unwrap().len(), 1);
    assert_ne!(rest["AnomalyDetectors"][0], page["AnomalyDetectors"][0]);

    // Training state follows the data.
    let t = h.now();
    for i in 0..20 {
        h.put_with("CPU", &[("Host", "a")], 10.0, t + i * 60_000, "None")
            .await;
    }
    let all = h
        .ok("DescribeAnomalyDetectors", json!({"MetricName": "CPU"}))
        .await;
    assert_eq!(all["AnomalyDetectors"][0]["StateValue"], "TRAINED");

    h.ok(
        "DeleteAnomalyDetector",
        json!({"SingleMetricAnomalyDetector": {"Namespace": "NS", "MetricName": "CPU", "Dimensions": dims, "Stat": "Average"}}),
    )
    .await;
    expect_err(
        h.call(
            "DeleteAnomalyDetector",
            json!({"Namespace": "NS", "MetricName": "CPU", "Dimensions": dims, "Stat": "Average"}),
        )
        .await,
        "ResourceNotFoundException",
    );
    expect_err(
        h.call("PutAnomalyDetector", json!({"Namespace": "NS", "MetricName": "X", "Stat": "Average",
            "SingleMetricAnomalyDetector": {"Namespace": "NS", "MetricName": "X", "Stat": "Average"}})).await,
        "InvalidParameterCombinationException",
    );
    expect_err(
        h.call(
            "PutAnomalyDetector",
            json!({"Namespace": "NS", "MetricName": "X"}),
        )
        .await,
        "MissingRequiredParameterException",
    );
    expect_err(
        h.call(
            "PutAnomalyDetector",
            json!({"Namespace": "NS", "MetricName": "X", "Stat": "Bogus"}),
        )
        .await,
        "InvalidParameterValueException",
    );
    expect_err(
        h.call(
            "PutAnomalyDetector",
            json!({"Namespace": "NS", "MetricName": "X", "Stat": "Sum",
            "Configuration": {"ExcludedTimeRanges": [{"StartTime": 10, "EndTime": 5}]}}),
        )
        .await,
        "InvalidParameterValueException",
    );
}
