//! Shared helpers for the gateway integration tests: a recording fake service, fixture loading and
//! number-tolerant document comparison.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, Value};
use opsloop_wire::{AuthMode, CredentialStore, Credentials, Gateway, GatewayConfig};

pub const CLOUDWATCH: &str = include_str!("../../../../models/cloudwatch-2010-08-01.json");
pub const SINK: &str = include_str!("../fixtures/sink-model.json");
pub const THINGS: &str = include_str!("../fixtures/things-model.json");

pub type Reply = Box<dyn Fn(&str, &Value) -> Result<Value, ApiError> + Send + Sync>;

/// A service that records every call and answers with `reply`.
pub struct Fake {
    pub model: &'static str,
    pub calls: Mutex<Vec<(RequestContext, Value)>>,
    pub reply: Reply,
}

impl Fake {
    pub fn new(
        model: &'static str,
        reply: impl Fn(&str, &Value) -> Result<Value, ApiError> + Send + Sync + 'static,
    ) -> Arc<Fake> {
        Arc::new(Fake {
            model,
            calls: Mutex::new(Vec::new()),
            reply: Box::new(reply),
        })
    }

    pub fn empty(model: &'static str) -> Arc<Fake> {
        Fake::new(model, |_, _| Ok(serde_json::json!({})))
    }

    pub fn last(&self) -> Option<(RequestContext, Value)> {
        self.calls.lock().ok().and_then(|c| c.last().cloned())
    }

    pub fn count(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }
}

impl Service for Fake {
    fn model_json(&self) -> &'static str {
        self.model
    }
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            if ctx.operation == "Explode"
                || input.get("Name").and_then(Value::as_str) == Some("panic")
            {
                panic!("the fake service was asked to panic");
            }
            let out = (self.reply)(&ctx.operation, &input);
            if let Ok(mut c) = self.calls.lock() {
                c.push((ctx.clone(), input));
            }
            out
        })
    }
}

pub struct Creds;

impl CredentialStore for Creds {
    fn lookup(&self, access_key_id: &str) -> Option<Credentials> {
        (access_key_id == "AKIDTEST").then(|| Credentials {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "s3cr3t".into(),
            account_id: "123456789012".into(),
        })
    }
}

pub fn config(auth: AuthMode) -> GatewayConfig {
    GatewayConfig {
        auth,
        default_account: "000000000000".into(),
        ..GatewayConfig::default()
    }
}

/// A gateway in `AnyKey` mode with the given services registered.
pub fn gateway<const N: usize>(services: [Arc<Fake>; N]) -> Gateway {
    gateway_with(config(AuthMode::AnyKey), services)
}

pub fn gateway_with<const N: usize>(cfg: GatewayConfig, services: [Arc<Fake>; N]) -> Gateway {
    let mut g = Gateway::new(cfg, Arc::new(Creds));
    for s in services {
        g.register(s).expect("registers");
    }
    g
}

/// A request captured from botocore (see tests/fixtures/capture.py).
pub struct Fixture {
    pub protocol: String,
    pub operation: String,
    pub expected: Value,
    pub request: http::Request<Bytes>,
}

pub fn fixture_names() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/botocore");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

pub fn fixture(name: &str) -> Fixture {
    use base64::Engine;
    let path = format!(
        "{}/tests/fixtures/botocore/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture json");
    let body = base64::engine::general_purpose::STANDARD
        .decode(raw["body_base64"].as_str().expect("body"))
        .expect("base64");
    let mut b = http::Request::builder()
        .method(raw["method"].as_str().expect("method"))
        .uri(format!(
            "http://localhost:4566{}",
            raw["path"].as_str().expect("path")
        ));
    for (k, v) in raw["headers"].as_object().expect("headers") {
        b = b.header(k.as_str(), v.as_str().expect("header value"));
    }
    Fixture {
        protocol: raw["protocol"].as_str().expect("protocol").to_string(),
        operation: raw["operation"].as_str().expect("operation").to_string(),
        expected: raw["expected"].clone(),
        request: b.body(Bytes::from(body)).expect("request"),
    }
}

/// Equal documents, comparing numbers by value (`1` == `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

pub fn header<'a>(r: &'a http::Response<Bytes>, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn body_str(r: &http::Response<Bytes>) -> &str {
    std::str::from_utf8(r.body()).expect("utf-8 body")
}

/// `__type` and message of a JSON or CBOR error body.
pub fn error_fields(r: &http::Response<Bytes>) -> (String, String) {
    let v: Value = if header(r, "content-type") == Some("application/cbor") {
        let c: ciborium::Value = ciborium::from_reader(&r.body()[..]).expect("cbor");
        let mut map = serde_json::Map::new();
        for (k, v) in c.as_map().expect("map") {
            map.insert(
                k.as_text().expect("key").to_string(),
                Value::String(v.as_text().unwrap_or_default().to_string()),
            );
        }
        Value::Object(map)
    } else {
        serde_json::from_slice(r.body()).expect("json error body")
    };
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (
        v["__type"].as_str().unwrap_or_default().to_string(),
        message,
    )
}

/// A JSON request to the CloudWatch target.
pub fn json_request(op: &str, body: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri("http://localhost/")
        .header(
            "X-Amz-Target",
            format!("GraniteServiceVersion20100801.{op}"),
        )
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(Bytes::from(body.to_string()))
        .expect("request")
}

/// An awsQuery POST.
pub fn query_request(body: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri("http://localhost/")
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(Bytes::from(body.to_string()))
        .expect("request")
}

/// An RPC v2 CBOR request to the CloudWatch service.
pub fn cbor_request(op: &str, body: Vec<u8>) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://localhost/service/GraniteServiceVersion20100801/operation/{op}"
        ))
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("Content-Type", "application/cbor")
        .header("Accept", "application/cbor")
        .body(Bytes::from(body))
        .expect("request")
}

pub fn cbor_bytes(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("cbor");
    out
}
