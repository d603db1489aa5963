//! The PutLogEvents fast path (`putdecode`, offered through `Service::decode_json_input`) against
//! the generic one: the same requests through two gateways — one over the service as it is, one
//! over a wrapper without the fast path — must give byte-identical answers and store the same events.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Env, T0};
use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, ValidationFailure, Value};
use opsloop_logs::Logs;
use opsloop_wire::{AuthMode, CredentialStore, Credentials, Gateway, GatewayConfig};
use serde_json::json;

struct NoKeys;

impl CredentialStore for NoKeys {
    fn lookup(&self, _access_key_id: &str) -> Option<Credentials> {
        None
    }
}

/// The service without its own decoder: every request takes the generic path.
struct GenericOnly(Arc<Logs>);

impl Service for GenericOnly {
    fn model_json(&self) -> &'static str {
        self.0.model_json()
    }
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.0.call(ctx, input)
    }
    fn validation_error(&self, failure: &ValidationFailure) -> ApiError {
        self.0.validation_error(failure)
    }
    fn max_request_bytes(&self) -> Option<usize> {
        self.0.max_request_bytes()
    }
}

fn gateway(service: Arc<dyn Service>) -> Gateway {
    let config = GatewayConfig {
        auth: AuthMode::AnyKey,
        default_account: common::ACCOUNT.to_string(),
        ..GatewayConfig::default()
    };
    let mut g = Gateway::new(config, Arc::new(NoKeys));
    g.register(service).unwrap();
    g
}

/// Status, error type header and body of one awsJson request.
async fn send(g: &Gateway, op: &str, body: &[u8]) -> (u16, Option<String>, Bytes) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Logs_20140328.{op}"))
        .body(Bytes::copy_from_slice(body))
        .unwrap();
    let resp = g.handle(req).await;
    let kind = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (resp.status().as_u16(), kind, resp.body().clone())
}

fn ev(ts: i64, msg: &str) -> Value {
    json!({"timestamp": ts, "message": msg})
}

#[tokio::test]
async fn fast_and_generic_paths_answer_alike() {
    let (fast_env, generic_env) = (Env::new(), Env::new());
    let fast = gateway(fast_env.logs.clone());
    let generic = gateway(Arc::new(GenericOnly(generic_env.logs.clone())));
    for g in [&fast, &generic] {
        for (op, body) in [
            ("CreateLogGroup", json!({"logGroupName": "/fast/g"})),
            (
                "CreateLogStream",
                json!({"logGroupName": "/fast/g", "logStreamName": "s"}),
            ),
        ] {
            assert_eq!(send(g, op, body.to_string().as_bytes()).await.0, 200);
        }
    }
    let put = |events: Value| {
        json!({"logGroupName": "/fast/g", "logStreamName": "s", "logEvents": events}).to_string()
    };
    let day = 86_400_000;
    let big = "x".repeat(600_000);
    let bodies: Vec<String> = vec![
        put(json!([ev(T0 - 3000, "plain"), ev(T0 - 2000, "tab\t \"quoted\" \\ é 🚀")])),
        put(json!([ev(T0 - 15 * day, "too old"), ev(T0 - 1000, "ok"), ev(T0 + 3 * 3_600_000, "too new")])),
        put(json!([ev(T0, "b"), ev(T0 - 1, "a")])),
        put(json!([ev(T0 - 2 * day, "a"), ev(T0, "b")])),
        put(json!([ev(T0, &big), ev(T0, &big)])),
        put(json!([])),
        put(json!([{"timestamp": T0}])),
        put(json!([{"timestamp": -1, "message": "m"}])),
        put(json!([{"timestamp": 1.5, "message": "m"}])),
        put(json!([{"timestamp": T0, "message": ""}])),
        put(json!([null])),
        put(json!("nope")),
        json!({"logGroupName": "/fast/g", "logStreamName": "s", "sequenceToken": "", "logEvents": [ev(T0, "m")]}).to_string(),
        json!({"logGroupName": "/fast/g", "logStreamName": "s", "sequenceToken": "abc", "logEvents": [ev(T0, "tok")]}).to_string(),
        json!({"logGroupName": "/fast/g", "logStreamName": "s", "entity": {"keyAttributes": {"a": "b"}}, "logEvents": [ev(T0, "m")]}).to_string(),
        json!({"logGroupName": "/fast/g", "logStreamName": "missing", "logEvents": [ev(T0, "m")]}).to_string(),
        json!({"logGroupName": "/fast/nope", "logStreamName": "s", "logEvents": [ev(T0, "m")]}).to_string(),
        json!({"logGroupName": "", "logStreamName": "s", "logEvents": [ev(T0, "m")]}).to_string(),
        json!({"logGroupName": "/fast/g", "logEvents": [ev(T0, "m")]}).to_string(),
        json!({"logGroupName": "/fast/g", "logStreamName": "s", "logEvents": [ev(T0, "m")], "unknown": [1, {"x": null}]}).to_string(),
        r#"{"logGroupName":"/fast/g","logGroupName":"/fast/nope","logStreamName":"s","logEvents":[{"timestamp":1795287600000,"message":"dup"}]}"#.to_string(),
        "{\"logGroupName\": \"/fast/g\",".to_string(),
        String::new(),
    ];
    // the fast path does take the well-formed batches
    for i in [0, 1, 2, 3, 4, 13, 15, 16, 19] {
        assert!(
            opsloop_logs::putdecode::decode(bodies[i].as_bytes()).is_some(),
            "{i}"
        );
    }
    for (i, body) in bodies.iter().enumerate() {
        let (a, b) = (
            send(&fast, "PutLogEvents", body.as_bytes()).await,
            send(&generic, "PutLogEvents", body.as_bytes()).await,
        );
        assert_eq!(a, b, "request {i}: {}", &body[..body.len().min(300)]);
    }
    let get =
        json!({"logGroupName": "/fast/g", "logStreamName": "s", "startFromHead": true}).to_string();
    let (a, b) = (
        send(&fast, "GetLogEvents", get.as_bytes()).await,
        send(&generic, "GetLogEvents", get.as_bytes()).await,
    );
    assert_eq!(a, b);
    let got: Value = serde_json::from_slice(&a.2).unwrap();
    let messages: Vec<&str> = got["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["plain", "tab\t \"quoted\" \\ é 🚀", "ok", "tok", "m"]
    );
}
