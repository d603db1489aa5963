//! GetMetricData through the service interface: metric statistics, metric math, SEARCH, labels,
//! ordering, paging and validation.

mod common;

use common::*;
use opsloop_cloudwatch::error::{INVALID_NEXT_TOKEN, VALIDATION};
use serde_json::{json, Value};

/// Hosts a and b publish Latency each minute for 5 minutes: a = minute index + 1, b = 10 * that.
async fn seeded() -> (opsloop_cloudwatch::CloudWatch, i64) {
    let (svc, _) = service();
    let t0 = minute(20);
    let mut data = Vec::new();
    for i in 0..5i64 {
        for (host, scale) in [("a", 1.0), ("b", 10.0)] {
            data.push(json!({"MetricName": "Latency", "Value": (i + 1) as f64 * scale, "Timestamp": t0 + i * 60 + 1,
                             "Dimensions": [{"Name": "Host", "Value": host}]}));
        }
    }
    // Host a also reports in Seconds once: merged when no unit is asked for.
    data.push(
        json!({"MetricName": "Latency", "Value": 100, "Timestamp": t0 + 1, "Unit": "Seconds",
                     "Dimensions": [{"Name": "Host", "Value": "a"}]}),
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

fn stat(id: &str, host: &str, stat: &str) -> Value {
    json!({"Id": id, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency",
            "Dimensions": [{"Name": "Host", "Value": host}]}, "Period": 60, "Stat": stat}})
}

fn request(t0: i64, queries: Vec<Value>) -> Value {
    json!({"MetricDataQueries": queries, "StartTime": t0, "EndTime": t0 + 300})
}

fn result<'a>(out: &'a Value, id: &str) -> &'a Value {
    out["MetricDataResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Id"] == id)
        .unwrap()
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn metric_stat_results_newest_first_by_default() {
    let (svc, t0) = seeded().await;
    let mut q = stat("m1", "b", "Sum");
    q["MetricStat"]["Unit"] = json!("None");
    let out = call(&svc, "GetMetricData", request(t0, vec![q]))
        .await
        .unwrap();
    let r = result(&out, "m1");
    assert_eq!(r["Label"], "Latency");
    assert_eq!(r["StatusCode"], "Complete");
    assert_eq!(nums(&r["Values"]), vec![50.0, 40.0, 30.0, 20.0, 10.0]);
    assert_eq!(r["Timestamps"][0], json!(t0 + 240));
    assert!(out.get("NextToken").is_none());

    let mut asc = request(t0, vec![stat("m1", "b", "Sum")]);
    asc["ScanBy"] = json!("TimestampAscending");
    let out = call(&svc, "GetMetricData", asc).await.unwrap();
    assert_eq!(
        nums(&result(&out, "m1")["Values"]),
        vec![10.0, 20.0, 30.0, 40.0, 50.0]
    );
}

#[tokio::test]
async fn units_merge_unless_one_is_asked_for() {
    let (svc, t0) = seeded().await;
    let mut only = stat("s", "a", "SampleCount");
    only["MetricStat"]["Unit"] = json!("Seconds");
    let mut req = request(t0, vec![stat("all", "a", "SampleCount"), only]);
    req["ScanBy"] = json!("TimestampAscending");
    let out = call(&svc, "GetMetricData", req).await.unwrap();
    assert_eq!(
        nums(&result(&out, "all")["Values"]),
        vec![2.0, 1.0, 1.0, 1.0, 1.0]
    );
    assert_eq!(nums(&result(&out, "s")["Values"]), vec![1.0]);
}

#[tokio::test]
async fn expressions_evaluate_in_dependency_order() {
    let (svc, t0) = seeded().await;
    let mut a = stat("a", "a", "Sum");
    a["MetricStat"]["Unit"] = json!("None");
    a["ReturnData"] = json!(false);
    let b = stat("b", "b", "Sum");
    let mut req = request(
        t0,
        vec![
            // Listed before what it depends on.
            json!({"Id": "ratio", "Expression": "total / 11", "Label": "avg-ish"}),
            json!({"Id": "total", "Expression": "a + b", "ReturnData": false}),
            a,
            b,
        ],
    );
    req["ScanBy"] = json!("TimestampAscending");
    let out = call(&svc, "GetMetricData", req).await.unwrap();
    let ids: Vec<&str> = out["MetricDataResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["ratio", "b"],
        "ReturnData=false results are omitted, request order kept"
    );
    let r = result(&out, "ratio");
    assert_eq!(r["Label"], "avg-ish");
    assert_eq!(nums(&r["Values"]), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[tokio::test]
async fn metrics_function_and_default_expression_label() {
    let (svc, t0) = seeded().await;
    let mut req = request(
        t0,
        vec![
            stat("ma", "a", "Maximum"),
            stat("mb", "b", "Maximum"),
            json!({"Id": "e1", "Expression": "SUM(METRICS())"}),
        ],
    );
    req["ScanBy"] = json!("TimestampAscending");
    let out = call(&svc, "GetMetricData", req).await.unwrap();
    let r = result(&out, "e1");
    assert_eq!(r["Label"], "e1");
    assert_eq!(nums(&r["Values"]), vec![110.0, 22.0, 33.0, 44.0, 55.0]);
}

#[tokio::test]
async fn search_returns_one_result_per_metric() {
    let (svc, t0) = seeded().await;
    let mut req = request(
        t0,
        vec![
            json!({"Id": "s", "Expression": "SEARCH('{App,Host} MetricName=\"Latency\"', 'Maximum', 60)"}),
        ],
    );
    req["ScanBy"] = json!("TimestampAscending");
    let out = call(&svc, "GetMetricData", req).await.unwrap();
    let results = out["MetricDataResults"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let labels: Vec<&str> = results
        .iter()
        .map(|r| r["Label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["Latency a", "Latency b"]);
    assert!(results.iter().all(|r| r["Id"] == "s"));
    assert_eq!(
        nums(&results[1]["Values"]),
        vec![10.0, 20.0, 30.0, 40.0, 50.0]
    );

    // A dynamic label applies to every series of the search.
    let mut labelled = request(
        t0,
        vec![
            json!({"Id": "s", "Label": "${PROP('Dim.Host')} max ${MAX} (${LABEL})",
                    "Expression": "SEARCH('{App,Host} MetricName=\"Latency\"', 'Maximum', 60)"}),
        ],
    );
    labelled["ScanBy"] = json!("TimestampAscending");
    let out = call(&svc, "GetMetricData", labelled).await.unwrap();
    let labels: Vec<&str> = out["MetricDataResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        vec!["a max 100 (Latency a)", "b max 50 (Latency b)"]
    );
}

#[tokio::test]
async fn dynamic_labels_on_metric_stats() {
    let (svc, t0) = seeded().await;
    let mut q = stat("m", "b", "Sum");
    q["Label"] = json!("${PROP('MetricName')}/${PROP('Dim.Host')} ${PROP('Stat')} ${PROP('Period')} avg=${AVG} first=${FIRST_TIME}");
    let mut req = request(t0, vec![q]);
    req["LabelOptions"] = json!({"Timezone": "+0130"});
    let out = call(&svc, "GetMetricData", req).await.unwrap();
    let label = result(&out, "m")["Label"].as_str().unwrap().to_string();
    assert!(
        label.starts_with("Latency/b Sum 60 avg=30 first="),
        "{label}"
    );
    assert!(label.ends_with("+01:30"), "{label}");
}

#[tokio::test]
async fn paging_across_results() {
    let (svc, t0) = seeded().await;
    let queries = vec![stat("a", "b", "Sum"), stat("b", "b", "Minimum")];
    let mut req = request(t0, queries.clone());
    req["MaxDatapoints"] = json!(3);
    let first = call(&svc, "GetMetricData", req.clone()).await.unwrap();
    assert_eq!(nums(&result(&first, "a")["Values"]), vec![50.0, 40.0, 30.0]);
    assert_eq!(result(&first, "a")["StatusCode"], "PartialData");
    let mut collected = nums(&result(&first, "a")["Values"]);
    let mut token = first["NextToken"].as_str().map(str::to_string);
    let mut pages = 1;
    let mut b_values = nums(&result(&first, "b")["Values"]);
    while let Some(t) = token {
        let mut next = req.clone();
        next["NextToken"] = json!(t);
        let page = call(&svc, "GetMetricData", next).await.unwrap();
        collected.extend(nums(&result(&page, "a")["Values"]));
        b_values.extend(nums(&result(&page, "b")["Values"]));
        token = page["NextToken"].as_str().map(str::to_string);
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(pages, 4);
    assert_eq!(collected, vec![50.0, 40.0, 30.0, 20.0, 10.0]);
    assert_eq!(b_values, vec![50.0, 40.0, 30.0, 20.0, 10.0]);

    let mut garbage = req.clone();
    garbage["NextToken"] = json!("not-a-token");
    expect_err(
        call(&svc, "GetMetricData", garbage).await,
        INVALID_NEXT_TOKEN,
    );
    // A token of one request is not valid for another.
    let mut other = request(t0 - 60, queries);
    other["NextToken"] = first["NextToken"].clone();
    expect_err(call(&svc, "GetMetricData", other).await, INVALID_NEXT_TOKEN);
}

#[tokio::test]
async fn query_validation() {
    let (svc, t0) = seeded().await;
    let e = expect_err(
        call(
            &svc,
            "GetMetricData",
            request(t0, vec![stat("M1", "a", "Sum")]),
        )
        .await,
        VALIDATION,
    );
    assert_eq!(
        e.message,
        "The value M1 for parameter MetricDataQueries.member.1.Id is not matching the expected pattern ^[a-z][a-zA-Z0-9_]*$."
    );
    let e = expect_err(
        call(
            &svc,
            "GetMetricData",
            request(t0, vec![stat("m", "a", "Sum"), stat("m", "b", "Sum")]),
        )
        .await,
        VALIDATION,
    );
    assert!(
        e.message.contains("MetricDataQueries.member.2.Id"),
        "{}",
        e.message
    );
    let e = expect_err(
        call(
            &svc,
            "GetMetricData",
            request(t0, vec![stat("m", "a", "Median")]),
        )
        .await,
        VALIDATION,
    );
    assert_eq!(e.message, "The value Median for parameter MetricDataQueries.member.1.MetricStat.Stat is not a valid statistic.");
    let mut both = stat("m", "a", "Sum");
    both["Expression"] = json!("1");
    expect_err(
        call(&svc, "GetMetricData", request(t0, vec![both])).await,
        VALIDATION,
    );
    expect_err(
        call(&svc, "GetMetricData", request(t0, vec![json!({"Id": "m"})])).await,
        VALIDATION,
    );
    let mut bad_period = stat("m", "a", "Sum");
    bad_period["MetricStat"]["Period"] = json!(7);
    expect_err(
        call(&svc, "GetMetricData", request(t0, vec![bad_period])).await,
        VALIDATION,
    );
    let mut reversed = request(t0, vec![stat("m", "a", "Sum")]);
    reversed["EndTime"] = json!(t0);
    let e = expect_err(call(&svc, "GetMetricData", reversed).await, VALIDATION);
    assert_eq!(
        e.message,
        "The parameter StartTime must be less than the parameter EndTime."
    );
    let many: Vec<Value> = (0..501)
        .map(|i| stat(&format!("m{i}"), "a", "Sum"))
        .collect();
    expect_err(
        call(&svc, "GetMetricData", request(t0, many)).await,
        VALIDATION,
    );
    let mut tz = request(t0, vec![stat("m", "a", "Sum")]);
    tz["LabelOptions"] = json!({"Timezone": "UTC"});
    expect_err(call(&svc, "GetMetricData", tz).await, VALIDATION);
}

#[tokio::test]
async fn expression_errors() {
    let (svc, t0) = seeded().await;
    let cases = [
        vec![
            json!({"Id": "e", "Expression": "m + "}),
            stat("m", "a", "Sum"),
        ],
        vec![json!({"Id": "e", "Expression": "nope * 2"})],
        vec![
            json!({"Id": "x", "Expression": "y + 1"}),
            json!({"Id": "y", "Expression": "x + 1"}),
        ],
        vec![json!({"Id": "x", "Expression": "x * 2"})],
        vec![json!({"Id": "q", "Expression": "SELECT AVG(CPUUtilization) FROM \"AWS/EC2\""})],
    ];
    for queries in cases {
        let e = expect_err(
            call(&svc, "GetMetricData", request(t0, queries.clone())).await,
            VALIDATION,
        );
        assert!(
            e.message.starts_with("Error in expression "),
            "{queries:?}: {}",
            e.message
        );
    }
}

#[tokio::test]
async fn empty_results_are_complete() {
    let (svc, t0) = seeded().await;
    let out = call(
        &svc,
        "GetMetricData",
        request(t0, vec![stat("m", "nobody", "Sum")]),
    )
    .await
    .unwrap();
    let r = result(&out, "m");
    assert_eq!(r["Values"], json!([]));
    assert_eq!(r["StatusCode"], "Complete");
    assert_eq!(out["Messages"], json!([]));
}

#[tokio::test]
async fn scalar_results_fill_the_window() {
    let (svc, t0) = seeded().await;
    let out = call(
        &svc,
        "GetMetricData",
        request(
            t0,
            vec![
                stat("m", "a", "Sum"),
                json!({"Id": "c", "Expression": "MAX(m)"}),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(nums(&result(&out, "c")["Values"]), vec![101.0; 5]);
}

#[tokio::test]
async fn scalar_results_over_huge_windows_are_refused() {
    let (svc, t0) = seeded().await;
    let req = json!({"StartTime": 0, "EndTime": t0, "MetricDataQueries": [
        {"Id": "c", "Expression": "42", "Period": 60}]});
    let e = expect_err(call(&svc, "GetMetricData", req).await, VALIDATION);
    assert!(
        e.message.starts_with("Error in expression c"),
        "{}",
        e.message
    );
}
