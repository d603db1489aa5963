//! Metric filters and the embedded metric format end to end: PutLogEvents publishes
//! PutMetricData through the Directory to whatever serves `CloudWatch` (here a recorder).

mod common;

use std::sync::Arc;

use common::{Env, T0};
use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use parking_lot::Mutex;
use serde_json::json;

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value)>>,
}

impl Service for Recorder {
    fn model_json(&self) -> &'static str {
        "{}"
    }
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.calls.lock().push((ctx.operation.clone(), input));
        Box::pin(async { Ok(json!({})) })
    }
}

fn env_with_recorder() -> (Env, Arc<Recorder>) {
    let mut env = Env::new();
    let recorder = Arc::new(Recorder::default());
    let dir = Directory::new();
    dir.insert("CloudWatch", recorder.clone());
    env.logs.close();
    let logs =
        common::open(env.dir.path(), env.control.clone(), env.clock.clone()).with_directory(dir);
    env.logs = Arc::new(logs);
    (env, recorder)
}

#[tokio::test]
async fn metric_filters_publish_matching_events() {
    let (env, rec) = env_with_recorder();
    env.stream("web", "s").await;
    env.ok("PutMetricFilter", json!({
        "logGroupName": "web", "filterName": "latency", "filterPattern": "{ $.status = 200 }",
        "metricTransformations": [{"metricName": "Latency", "metricNamespace": "Web", "metricValue": "$.ms", "unit": "Milliseconds", "dimensions": {"Path": "$.path"}}]
    })).await;
    env.ok("PutMetricFilter", json!({
        "logGroupName": "web", "filterName": "errors", "filterPattern": "[ip, user, status=5*, size]",
        "metricTransformations": [{"metricName": "Errors", "metricNamespace": "Web", "metricValue": "1", "defaultValue": 0}]
    })).await;
    let e = env.err("PutMetricFilter", json!({
        "logGroupName": "web", "filterName": "bad", "filterPattern": "{ $.x = ",
        "metricTransformations": [{"metricName": "M", "metricNamespace": "N", "metricValue": "1"}]
    })).await;
    assert_eq!(e.kind, "InvalidParameterException");
    let d = env
        .ok("DescribeMetricFilters", json!({"logGroupName": "web"}))
        .await;
    let names: Vec<&str> = d["metricFilters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filterName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["errors", "latency"]);
    let by_metric = env
        .ok(
            "DescribeMetricFilters",
            json!({"metricName": "Latency", "metricNamespace": "Web"}),
        )
        .await;
    assert_eq!(by_metric["metricFilters"].as_array().unwrap().len(), 1);
    let g = env
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "web"}))
        .await;
    assert_eq!(g["logGroups"][0]["metricFilterCount"], 2);

    env.put(
        "web",
        "s",
        &[
            (
                T0 - 3000,
                json!({"status": 200, "ms": 12.5, "path": "/a"}).to_string(),
            ),
            (
                T0 - 2000,
                json!({"status": 404, "ms": 3, "path": "/b"}).to_string(),
            ),
            (T0 - 1000, "10.0.0.1 bob 503 512".to_string()),
        ],
    )
    .await;
    let calls = rec.calls.lock().clone();
    assert_eq!(calls.len(), 1, "one PutMetricData per namespace: {calls:?}");
    let (op, input) = &calls[0];
    assert_eq!(op, "PutMetricData");
    assert_eq!(input["Namespace"], "Web");
    let data = input["MetricData"].as_array().unwrap();
    let latency: Vec<&Value> = data
        .iter()
        .filter(|d| d["MetricName"] == "Latency")
        .collect();
    assert_eq!(latency.len(), 1);
    assert_eq!(latency[0]["Value"], 12.5);
    assert_eq!(latency[0]["Unit"], "Milliseconds");
    assert_eq!(
        latency[0]["Dimensions"],
        json!([{"Name": "Path", "Value": "/a"}])
    );
    assert_eq!(latency[0]["Timestamp"], (T0 - 3000) as f64 / 1000.0);
    let errors: Vec<&Value> = data
        .iter()
        .filter(|d| d["MetricName"] == "Errors")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["Value"], 1.0);

    // a batch with no 5xx line publishes the default value once
    rec.calls.lock().clear();
    env.put("web", "s", &[(T0, "10.0.0.1 bob 200 512".to_string())])
        .await;
    let calls = rec.calls.lock().clone();
    let data = calls[0].1["MetricData"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["MetricName"], "Errors");
    assert_eq!(data[0]["Value"], 0.0);

    env.ok(
        "DeleteMetricFilter",
        json!({"logGroupName": "web", "filterName": "errors"}),
    )
    .await;
    assert_eq!(
        env.err(
            "DeleteMetricFilter",
            json!({"logGroupName": "web", "filterName": "errors"})
        )
        .await
        .kind,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn embedded_metric_format_becomes_metrics() {
    let (env, rec) = env_with_recorder();
    env.stream("emf", "s").await;
    let doc = json!({
        "_aws": {"Timestamp": T0 - 5000, "CloudWatchMetrics": [{"Namespace": "Shop", "Dimensions": [["Service", "Op"]], "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Items"}]}]},
        "Service": "cart", "Op": "add", "Latency": [4, 6], "Items": 3
    });
    env.put(
        "emf",
        "s",
        &[
            (T0 - 5000, doc.to_string()),
            (T0 - 4000, "plain line".to_string()),
        ],
    )
    .await;
    let calls = rec.calls.lock().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["Namespace"], "Shop");
    let data = calls[0].1["MetricData"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["MetricName"], "Latency");
    assert_eq!(data[0]["Values"], json!([4.0, 6.0]));
    assert_eq!(
        data[0]["Dimensions"],
        json!([{"Name": "Service", "Value": "cart"}, {"Name": "Op", "Value": "add"}])
    );
    assert_eq!(data[1]["MetricName"], "Items");
    assert_eq!(data[1]["Value"], 3.0);
    // the EMF event is still stored as a log event
    let got = env
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "emf", "filterPattern": "{ $.Service = cart }"}),
        )
        .await;
    assert_eq!(got["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn subscription_filters_are_stored() {
    let (env, _rec) = common::Recorder::env();
    env.stream("g", "s").await;
    let dest = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    env.ok("PutSubscriptionFilter", json!({"logGroupName": "g", "filterName": "a", "filterPattern": "ERROR", "destinationArn": dest})).await;
    env.ok("PutSubscriptionFilter", json!({"logGroupName": "g", "filterName": "b", "filterPattern": "", "destinationArn": dest})).await;
    let e = env.err("PutSubscriptionFilter", json!({"logGroupName": "g", "filterName": "c", "filterPattern": "", "destinationArn": dest})).await;
    assert_eq!(e.kind, "LimitExceededException");
    let d = env
        .ok("DescribeSubscriptionFilters", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(d["subscriptionFilters"][0]["filterPattern"], "ERROR");
    assert_eq!(d["subscriptionFilters"][0]["destinationArn"], dest);
    env.ok(
        "DeleteSubscriptionFilter",
        json!({"logGroupName": "g", "filterName": "a"}),
    )
    .await;
    let d = env
        .ok("DescribeSubscriptionFilters", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(d["subscriptionFilters"].as_array().unwrap().len(), 1);
    let t = env.ok("TestMetricFilter", json!({"filterPattern": "{ $.a > 1 }", "logEventMessages": ["{\"a\": 2}", "{\"a\": 0}"]})).await;
    assert_eq!(
        t["matches"],
        json!([{"eventNumber": 1, "eventMessage": "{\"a\": 2}", "extractedValues": {"$.a": "2"}}])
    );
}

#[tokio::test]
async fn resource_policies_and_destinations_are_stored() {
    let env = Env::new();
    let doc = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let p = env
        .ok(
            "PutResourcePolicy",
            json!({"policyName": "p1", "policyDocument": doc}),
        )
        .await;
    let rev = p["revisionId"].as_str().unwrap().to_string();
    assert_eq!(p["resourcePolicy"]["policyName"], "p1");
    let e = env
        .err(
            "PutResourcePolicy",
            json!({"policyName": "p1", "policyDocument": doc, "expectedRevisionId": "stale"}),
        )
        .await;
    assert_eq!(e.kind, "OperationAbortedException");
    env.ok(
        "PutResourcePolicy",
        json!({"policyName": "p1", "policyDocument": doc, "expectedRevisionId": rev}),
    )
    .await;
    assert_eq!(
        env.err(
            "PutResourcePolicy",
            json!({"policyName": "p2", "policyDocument": "not json"})
        )
        .await
        .kind,
        "InvalidParameterException"
    );
    let d = env.ok("DescribeResourcePolicies", json!({})).await;
    assert_eq!(d["resourcePolicies"].as_array().unwrap().len(), 1);
    env.ok("DeleteResourcePolicy", json!({"policyName": "p1"}))
        .await;
    assert_eq!(
        env.err("DeleteResourcePolicy", json!({"policyName": "p1"}))
            .await
            .kind,
        "ResourceNotFoundException"
    );

    let dest = env.ok("PutDestination", json!({"destinationName": "d", "targetArn": "arn:aws:events:us-east-1:123456789012:event-bus/default", "roleArn": "arn:aws:iam::123456789012:role/r"})).await;
    assert_eq!(
        dest["destination"]["arn"],
        "arn:aws:logs:us-east-1:123456789012:destination:d"
    );
    env.ok(
        "PutDestinationPolicy",
        json!({"destinationName": "d", "accessPolicy": doc}),
    )
    .await;
    let list = env
        .ok(
            "DescribeDestinations",
            json!({"DestinationNamePrefix": "d"}),
        )
        .await;
    assert_eq!(list["destinations"][0]["accessPolicy"], doc);
    env.ok("DeleteDestination", json!({"destinationName": "d"}))
        .await;
    assert!(
        env.ok("DescribeDestinations", json!({})).await["destinations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
