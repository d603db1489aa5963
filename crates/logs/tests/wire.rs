//! The service behind the real wire layer: awsJson 1.1 requests (`X-Amz-Target: Logs_20140328.*`)
//! decoded and validated against the model, answers and errors encoded as the SDKs expect.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Env, T0};
use opsloop_wire::{AuthMode, CredentialStore, Credentials, Gateway, GatewayConfig};
use serde_json::{json, Value};

struct NoKeys;

impl CredentialStore for NoKeys {
    fn lookup(&self, _access_key_id: &str) -> Option<Credentials> {
        None
    }
}

fn gateway(env: &Env) -> Gateway {
    let config = GatewayConfig {
        auth: AuthMode::AnyKey,
        default_account: common::ACCOUNT.to_string(),
        max_body_bytes: 4 << 20,
        ..GatewayConfig::default()
    };
    let mut g = Gateway::new(config, Arc::new(NoKeys));
    g.register(env.logs.clone()).unwrap();
    g
}

async fn send(g: &Gateway, op: &str, body: Value) -> (u16, Value) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Logs_20140328.{op}"))
        .body(Bytes::from(body.to_string()))
        .unwrap();
    let resp = g.handle(req).await;
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn json_protocol_round_trip_and_errors() {
    let env = Env::new();
    let g = gateway(&env);
    assert_eq!(
        send(&g, "CreateLogGroup", json!({"logGroupName": "/wire/g"}))
            .await
            .0,
        200
    );
    assert_eq!(
        send(
            &g,
            "CreateLogStream",
            json!({"logGroupName": "/wire/g", "logStreamName": "s"})
        )
        .await
        .0,
        200
    );
    let events: Vec<Value> = (0..3)
        .map(|i| json!({"timestamp": T0 - 3000 + i * 1000, "message": format!("line {i}")}))
        .collect();
    let (status, put) = send(
        &g,
        "PutLogEvents",
        json!({"logGroupName": "/wire/g", "logStreamName": "s", "logEvents": events}),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert!(put["nextSequenceToken"].is_string());
    let (status, got) = send(
        &g,
        "GetLogEvents",
        json!({"logGroupName": "/wire/g", "logStreamName": "s", "startFromHead": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["events"][2]["message"], "line 2");
    assert_eq!(
        got["events"][0]["timestamp"],
        T0 - 3000,
        "long timestamps stay millisecond numbers"
    );
    assert_eq!(got["events"][0]["ingestionTime"], T0);

    let (status, err) = send(&g, "CreateLogGroup", json!({"logGroupName": "/wire/g"})).await;
    assert_eq!(status, 400);
    assert!(
        err["__type"]
            .as_str()
            .unwrap()
            .ends_with("ResourceAlreadyExistsException"),
        "{err}"
    );
    let (status, err) = send(&g, "DescribeLogStreams", json!({"logGroupName": "/nope"})).await;
    assert_eq!(status, 400);
    assert!(
        err["__type"]
            .as_str()
            .unwrap()
            .ends_with("ResourceNotFoundException"),
        "{err}"
    );
    // model validation (required member, pattern) reaches the caller as InvalidParameterException
    let (status, err) = send(&g, "PutRetentionPolicy", json!({"logGroupName": "/wire/g"})).await;
    assert_eq!(status, 400);
    assert!(
        err["__type"]
            .as_str()
            .unwrap()
            .ends_with("InvalidParameterException"),
        "{err}"
    );
    let (status, err) = send(
        &g,
        "CreateLogGroup",
        json!({"logGroupName": "bad name with spaces"}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = send(&g, "StartQuery", json!({"logGroupName": "/wire/g", "queryString": "stats count(*) by", "startTime": 0, "endTime": 1})).await;
    assert_eq!(status, 400);
    assert!(
        err["__type"]
            .as_str()
            .unwrap()
            .ends_with("MalformedQueryException"),
        "{err}"
    );
    let (status, err) = send(
        &g,
        "StartLiveTail",
        json!({"logGroupIdentifiers": ["/wire/g"]}),
    )
    .await;
    assert_eq!(status, 501, "{err}");
    assert!(
        err.to_string().contains("StartLiveTail"),
        "a 501 carries the service's own message naming the operation: {err}"
    );
}
