//! Dump gateway responses for the botocore parse check (`tests/fixtures/check_botocore_parse.py`):
//! replays the captured botocore requests through a [`Gateway`] whose fake CloudWatch answers with a
//! canned output or error, and writes each response (status, headers, base64 body) as JSON.
//!
//! `cargo run -p opsloop-wire --example dump_responses -- <out-dir>`

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, Value};
use opsloop_wire::{AuthMode, CredentialStore, Credentials, Gateway, GatewayConfig};
use serde_json::json;

const CLOUDWATCH: &str = include_str!("../../../models/cloudwatch-2010-08-01.json");

struct Canned(Result<Value, ApiError>);

impl Service for Canned {
    fn model_json(&self) -> &'static str {
        CLOUDWATCH
    }
    fn call<'a>(
        &'a self,
        _: &'a RequestContext,
        _: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        let r = self.0.clone();
        Box::pin(async move { r })
    }
}

struct NoCreds;

impl CredentialStore for NoCreds {
    fn lookup(&self, _: &str) -> Option<Credentials> {
        None
    }
}

fn request(protocol: &str, case: &str) -> Result<http::Request<Bytes>, Box<dyn std::error::Error>> {
    let path = format!(
        "{}/tests/fixtures/botocore/{protocol}-{case}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(raw["body_base64"].as_str().unwrap_or_default())?;
    let mut b = http::Request::builder()
        .method(raw["method"].as_str().unwrap_or("POST"))
        .uri(format!(
            "http://localhost{}",
            raw["path"].as_str().unwrap_or("/")
        ));
    for (k, v) in raw["headers"].as_object().into_iter().flatten() {
        b = b.header(k.as_str(), v.as_str().unwrap_or_default());
    }
    Ok(b.body(Bytes::from(body))?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .ok_or("usage: dump_responses <out-dir>")?;
    std::fs::create_dir_all(&out_dir)?;
    let scenarios: Vec<(&str, &str, Result<Value, ApiError>)> = vec![
        (
            "get_metric_data_ok",
            "get_metric_data",
            Ok(
                json!({"MetricDataResults": [{"Id": "m1", "Label": "L <&>", "StatusCode": "Complete",
                "Timestamps": [1767323045, 1767323105.5], "Values": [1.5, 2.0]}], "Messages": [], "NextToken": "n"}),
            ),
        ),
        (
            "list_metrics_ok",
            "list_metrics",
            Ok(
                json!({"Metrics": [{"Namespace": "App/Web", "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}]}], "OwningAccounts": ["123456789012"], "NextToken": "t"}),
            ),
        ),
        (
            "describe_alarms_ok",
            "describe_alarms",
            Ok(
                json!({"MetricAlarms": [{"AlarmName": "a1", "StateValue": "ALARM", "StateUpdatedTimestamp": 1767323045.5,
                "Threshold": 1.5, "ActionsEnabled": true, "EvaluationPeriods": 3, "AlarmActions": [],
                "Dimensions": [{"Name": "Host", "Value": "a"}]}]}),
            ),
        ),
        ("put_metric_data_ok", "put_metric_data", Ok(json!({}))),
        (
            "err_invalid_parameter",
            "list_metrics",
            Err(ApiError::new("InvalidParameterValueException", "bad value")),
        ),
        (
            "err_missing_parameter",
            "list_metrics",
            Err(ApiError::new(
                "MissingRequiredParameterException",
                "need it",
            )),
        ),
        (
            "err_resource_not_found",
            "describe_alarms",
            Err(ApiError::new("ResourceNotFoundException", "gone")),
        ),
        (
            "err_internal",
            "list_metrics",
            Err(ApiError::new("InternalServiceFault", "db on fire")),
        ),
        (
            "err_limit",
            "list_metrics",
            Err(ApiError::new("LimitExceededFault", "too many")),
        ),
        (
            "err_concurrent",
            "list_metrics",
            Err(ApiError::new("ConcurrentModificationException", "busy")),
        ),
        (
            "err_unmodelled",
            "list_metrics",
            Err(ApiError::with_status(
                "ThrottlingException",
                400,
                "Rate exceeded",
            )),
        ),
        (
            "err_validation",
            "list_metrics",
            Err(ApiError::new("ValidationException", "1 validation error")),
        ),
    ];
    for protocol in ["json", "smithy-rpc-v2-cbor", "query"] {
        for (name, case, result) in &scenarios {
            let cfg = GatewayConfig {
                auth: AuthMode::AnyKey,
                ..GatewayConfig::default()
            };
            let mut g = Gateway::new(cfg, Arc::new(NoCreds));
            g.register(Arc::new(Canned(result.clone())))?;
            let resp = g.handle(request(protocol, case)?).await;
            let headers: serde_json::Map<String, Value> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value::String(v.to_str().unwrap_or_default().to_string()),
                    )
                })
                .collect();
            let dump = json!({
                "protocol": protocol,
                "scenario": name,
                "case": case,
                "status": resp.status().as_u16(),
                "headers": headers,
                "body_base64": base64::engine::general_purpose::STANDARD.encode(resp.body()),
            });
            std::fs::write(
                format!("{out_dir}/{protocol}-{name}.json"),
                serde_json::to_vec_pretty(&dump)?,
            )?;
        }
    }
    println!("wrote {} responses to {out_dir}", scenarios.len() * 3);
    Ok(())
}
