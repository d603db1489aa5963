//! ListMetrics, the tagging operations and unimplemented operations through the service interface.

mod common;

use std::sync::Arc;

use common::*;
use opsloop_cloudwatch::error::{INVALID_VALUE, NOT_FOUND};
use opsloop_cloudwatch::{CloudWatch, InternalError, ResourceArn, ResourceKind, ResourceRegistry};
use opsloop_store::SqliteStore;
use serde_json::{json, Value};

fn metrics(out: &Value) -> Vec<String> {
    out["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let dims: Vec<String> = m["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "{}={}",
                        d["Name"].as_str().unwrap(),
                        d["Value"].as_str().unwrap()
                    )
                })
                .collect();
            format!(
                "{}/{}[{}]",
                m["Namespace"].as_str().unwrap(),
                m["MetricName"].as_str().unwrap(),
                dims.join(",")
            )
        })
        .collect()
}

#[tokio::test]
async fn list_filters_and_deduplicates_units() {
    let (svc, _) = service();
    call(&svc, "PutMetricData", json!({"Namespace": "App", "MetricData": [
        {"MetricName": "Cpu", "Value": 1, "Dimensions": [{"Name": "Host", "Value": "a"}], "Unit": "Percent"},
        {"MetricName": "Cpu", "Value": 1, "Dimensions": [{"Name": "Host", "Value": "a"}], "Unit": "None"},
        {"MetricName": "Cpu", "Value": 1, "Dimensions": [{"Name": "Host", "Value": "b"}, {"Name": "Az", "Value": "1"}]},
        {"MetricName": "Mem", "Value": 1},
    ]}))
    .await
    .unwrap();
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "Other", "MetricData": [{"MetricName": "Cpu", "Value": 1}]}),
    )
    .await
    .unwrap();

    let all = call(&svc, "ListMetrics", json!({})).await.unwrap();
    assert_eq!(
        metrics(&all),
        vec![
            "App/Cpu[Az=1,Host=b]",
            "App/Cpu[Host=a]",
            "App/Mem[]",
            "Other/Cpu[]"
        ]
    );
    assert!(all.get("NextToken").is_none());
    assert!(all.get("OwningAccounts").is_none());

    let ns = call(
        &svc,
        "ListMetrics",
        json!({"Namespace": "App", "MetricName": "Cpu"}),
    )
    .await
    .unwrap();
    assert_eq!(metrics(&ns).len(), 2);
    let by_dim = call(
        &svc,
        "ListMetrics",
        json!({"Dimensions": [{"Name": "Host"}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        metrics(&by_dim),
        vec!["App/Cpu[Az=1,Host=b]", "App/Cpu[Host=a]"]
    );
    let by_value = call(
        &svc,
        "ListMetrics",
        json!({"Dimensions": [{"Name": "Host", "Value": "a"}]}),
    )
    .await
    .unwrap();
    assert_eq!(metrics(&by_value), vec!["App/Cpu[Host=a]"]);

    let linked = call(
        &svc,
        "ListMetrics",
        json!({"Namespace": "Other", "IncludeLinkedAccounts": true}),
    )
    .await
    .unwrap();
    assert_eq!(linked["OwningAccounts"], json!([ACCOUNT]));
    let elsewhere = call(
        &svc,
        "ListMetrics",
        json!({"OwningAccount": "999999999999"}),
    )
    .await
    .unwrap();
    assert_eq!(elsewhere["Metrics"], json!([]));
}

#[tokio::test]
async fn listing_windows_use_write_time() {
    let (svc, store) = service();
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [
        {"MetricName": "Fresh", "Value": 1}, {"MetricName": "Stale", "Value": 1}]}),
    )
    .await
    .unwrap();
    store.set_last_write("Stale", wall_ms() - 4 * 3600 * 1000);
    call(
        &svc,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": [{"MetricName": "Gone", "Value": 1}]}),
    )
    .await
    .unwrap();
    store.set_last_write("Gone", wall_ms() - 15 * 86_400 * 1000);
    let out = call(&svc, "ListMetrics", json!({"RecentlyActive": "PT3H"}))
        .await
        .unwrap();
    assert_eq!(metrics(&out), vec!["App/Fresh[]"]);
    // Without RecentlyActive: the past two weeks.
    assert_eq!(
        metrics(&call(&svc, "ListMetrics", json!({})).await.unwrap()),
        vec!["App/Fresh[]", "App/Stale[]"]
    );
}

#[tokio::test]
async fn list_pages_by_500() {
    let (svc, _) = service();
    for chunk in 0..2 {
        let data: Vec<Value> = (0..600)
            .map(|i| json!({"MetricName": format!("M{:04}", chunk * 600 + i), "Value": 1}))
            .collect();
        call(
            &svc,
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": data}),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = json!({"Namespace": "App"});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let out = call(&svc, "ListMetrics", req).await.unwrap();
        let page = metrics(&out);
        assert!(page.len() <= 500);
        seen.extend(page);
        pages += 1;
        match out["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 1200);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1200, "no metric is listed twice");

    expect_err(
        call(&svc, "ListMetrics", json!({"NextToken": "junk"})).await,
        INVALID_VALUE,
    );
}

const ALARM: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-cpu";

#[tokio::test]
async fn tags_on_missing_resources_are_not_found() {
    let (svc, _) = service();
    let e = expect_err(
        call(
            &svc,
            "TagResource",
            json!({"ResourceARN": ALARM, "Tags": [{"Key": "k", "Value": "v"}]}),
        )
        .await,
        NOT_FOUND,
    );
    assert!(e.message.contains(ALARM));
    expect_err(
        call(&svc, "ListTagsForResource", json!({"ResourceARN": ALARM})).await,
        NOT_FOUND,
    );
    expect_err(
        call(
            &svc,
            "UntagResource",
            json!({"ResourceARN": ALARM, "TagKeys": ["k"]}),
        )
        .await,
        NOT_FOUND,
    );
    expect_err(
        call(
            &svc,
            "ListTagsForResource",
            json!({"ResourceARN": "arn:aws:s3:::bucket"}),
        )
        .await,
        INVALID_VALUE,
    );
}

/// A registry where every alarm and insight rule exists.
struct Everything;

impl ResourceRegistry for Everything {
    fn exists(&self, arn: &ResourceArn) -> Result<bool, InternalError> {
        Ok(matches!(
            arn.kind,
            ResourceKind::Alarm | ResourceKind::InsightRule
        ))
    }
}

fn with_registry() -> CloudWatch {
    CloudWatch::new(
        Arc::new(MemStore::default()),
        Arc::new(SqliteStore::memory().unwrap()),
    )
    .with_registry(Arc::new(Everything))
}

#[tokio::test]
async fn tag_lifecycle() {
    let svc = with_registry();
    call(
        &svc,
        "TagResource",
        json!({"ResourceARN": ALARM, "Tags": [
        {"Key": "team", "Value": "core"}, {"Key": "env", "Value": "prod"}]}),
    )
    .await
    .unwrap();
    call(
        &svc,
        "TagResource",
        json!({"ResourceARN": ALARM, "Tags": [{"Key": "env", "Value": "dev"}]}),
    )
    .await
    .unwrap();
    let out = call(&svc, "ListTagsForResource", json!({"ResourceARN": ALARM}))
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({"Tags": [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "core"}]})
    );
    call(
        &svc,
        "UntagResource",
        json!({"ResourceARN": ALARM, "TagKeys": ["team", "absent"]}),
    )
    .await
    .unwrap();
    let out = call(&svc, "ListTagsForResource", json!({"ResourceARN": ALARM}))
        .await
        .unwrap();
    assert_eq!(out, json!({"Tags": [{"Key": "env", "Value": "dev"}]}));

    // Other accounts' and regions' resources are not visible; metric streams don't exist here.
    for arn in [
        "arn:aws:cloudwatch:us-east-1:999999999999:alarm:high-cpu",
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:high-cpu",
        "arn:aws:cloudwatch:us-east-1:123456789012:metric-stream/s",
    ] {
        expect_err(
            call(&svc, "ListTagsForResource", json!({"ResourceARN": arn})).await,
            NOT_FOUND,
        );
    }
    let rule = "arn:aws:cloudwatch:us-east-1:123456789012:insight-rule/r";
    assert_eq!(
        call(&svc, "ListTagsForResource", json!({"ResourceARN": rule}))
            .await
            .unwrap(),
        json!({"Tags": []})
    );
}

#[tokio::test]
async fn tag_limits() {
    let svc = with_registry();
    let fifty: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    call(
        &svc,
        "TagResource",
        json!({"ResourceARN": ALARM, "Tags": fifty}),
    )
    .await
    .unwrap();
    let e = expect_err(
        call(
            &svc,
            "TagResource",
            json!({"ResourceARN": ALARM, "Tags": [{"Key": "one-more", "Value": "v"}]}),
        )
        .await,
        INVALID_VALUE,
    );
    assert!(e.message.contains("50"));
    for bad in [
        json!({"Key": "aws:reserved", "Value": "v"}),
        json!({"Key": "a*b", "Value": "v"}),
        json!({"Key": "k", "Value": "x".repeat(257)}),
        json!({"Key": "k".repeat(129), "Value": "v"}),
    ] {
        expect_err(
            call(
                &svc,
                "TagResource",
                json!({"ResourceARN": ALARM, "Tags": [bad]}),
            )
            .await,
            INVALID_VALUE,
        );
    }
}

#[tokio::test]
async fn other_operations_are_not_implemented() {
    let (svc, _) = service();
    // (Alarms and anomaly detectors are implemented now; see tests/alarms_*.rs.)
    for op in [
        "PutInsightRule",
        "PutMetricStream",
        "PutDashboard",
        "GetMetricWidgetImage",
    ] {
        let e = call(&svc, op, json!({})).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.status), ("NotImplemented", Some(501)));
        assert!(e.message.contains(op));
    }
}
