//! Gateway behaviour beyond the happy path: modelled and unmodelled errors in each protocol,
//! validation, unknown operations, body limits and gzip, authentication, registration conflicts,
//! service panics, protocol gating, query service selection and restJson routing.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use common::*;
use opsloop_core::{ApiError, DecodedOutput};
use opsloop_wire::{AuthMode, Gateway, GatewayConfig, ModelError};
use serde_json::json;

fn invalid_param(_: &str, _: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
    Err(ApiError::new(
        "InvalidParameterValueException",
        "The value -1 for parameter Period is not valid.",
    ))
}

#[tokio::test]
async fn modelled_errors_in_all_three_protocols() {
    let g = gateway([Fake::new(CLOUDWATCH, invalid_param)]);
    for name in [
        "json-get_metric_data.json",
        "smithy-rpc-v2-cbor-get_metric_data.json",
    ] {
        let resp = g.handle(fixture(name).request).await;
        assert_eq!(resp.status(), 400, "{name}");
        assert_eq!(
            header(&resp, "x-amzn-query-error"),
            Some("InvalidParameterValue;Sender"),
            "{name}"
        );
        assert!(header(&resp, "x-amzn-requestid").is_some());
        let (ty, msg) = error_fields(&resp);
        assert_eq!(ty, "InvalidParameterValueException", "{name}");
        assert_eq!(msg, "The value -1 for parameter Period is not valid.");
    }
    let resp = g
        .handle(fixture("query-get_metric_data.json").request)
        .await;
    assert_eq!(resp.status(), 400);
    let xml = body_str(&resp);
    let rid = header(&resp, "x-amzn-requestid").expect("rid");
    assert!(xml.contains(&format!(
        "<Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>The value -1 for parameter Period is not valid.</Message></Error><RequestId>{rid}</RequestId>"
    )), "{xml}");
}

#[tokio::test]
async fn validation_failures_reach_the_service_hook_with_paths() {
    let fake = Fake::empty(CLOUDWATCH);
    let g = gateway([fake.clone()]);
    let resp = g
        .handle(json_request("PutMetricData", r#"{"MetricData":[]}"#))
        .await;
    assert_eq!(resp.status(), 400);
    let (ty, msg) = error_fields(&resp);
    assert_eq!(ty, "ValidationException");
    assert!(msg.contains("'Namespace'"), "{msg}");

    let resp = g
        .handle(query_request(
            "Action=PutMetricData&Namespace=N&MetricData.member.1.Value=1",
        ))
        .await;
    assert!(
        body_str(&resp).contains("MetricData.member.1.MetricName"),
        "{}",
        body_str(&resp)
    );

    let resp = g
        .handle(json_request(
            "PutMetricData",
            r#"{"Namespace":"N","MetricData":[{"MetricName":"m","Value":"high"}]}"#,
        ))
        .await;
    let (ty, msg) = error_fields(&resp);
    assert_eq!(ty, "ValidationException");
    assert!(msg.contains("MetricData.member.1.Value"), "{msg}");
    assert_eq!(fake.count(), 0, "invalid input never reaches the service");
}

#[tokio::test]
async fn malformed_bodies_per_protocol() {
    let g = gateway([Fake::empty(CLOUDWATCH)]);
    let resp = g.handle(json_request("ListMetrics", "{not json")).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (400, "SerializationException")
    );
    let resp = g
        .handle(cbor_request("ListMetrics", vec![0xa1, 0x61]))
        .await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (400, "SerializationException")
    );
    let resp = g
        .handle(query_request("Action=ListMetrics&Namespace=%FF%FE"))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(
        body_str(&resp).contains("<Code>MalformedQueryString</Code>"),
        "{}",
        body_str(&resp)
    );
}

#[tokio::test]
async fn unknown_operations_and_services() {
    let g = gateway([Fake::empty(CLOUDWATCH)]);
    let resp = g.handle(json_request("LaunchRockets", "{}")).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (400, "UnknownOperationException")
    );

    let mut req = json_request("ListMetrics", "{}");
    req.headers_mut().insert(
        "x-amz-target",
        "NoSuchService_2020.ListMetrics".parse().expect("header"),
    );
    let resp = g.handle(req).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (400, "UnknownOperationException")
    );

    let resp = g.handle(cbor_request("LaunchRockets", vec![0xa0])).await;
    assert_eq!(error_fields(&resp).0, "UnknownOperationException");

    let resp = g
        .handle(query_request("Action=LaunchRockets&Version=2010-08-01"))
        .await;
    assert!(
        body_str(&resp).contains("<Code>InvalidAction</Code>"),
        "{}",
        body_str(&resp)
    );
    let resp = g
        .handle(query_request("Version=2010-08-01&Namespace=x"))
        .await;
    assert!(
        body_str(&resp).contains("<Code>MissingAction</Code>"),
        "{}",
        body_str(&resp)
    );

    let req = http::Request::builder()
        .method("GET")
        .uri("http://localhost/favicon.ico")
        .body(Bytes::new())
        .expect("req");
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        header(&resp, "x-amzn-errortype"),
        Some("UnknownOperationException")
    );
    assert!(header(&resp, "x-amzn-requestid").is_some());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("write");
    e.finish().expect("finish")
}

#[tokio::test]
async fn body_limits_and_gzip() {
    let cfg = GatewayConfig {
        max_body_bytes: 1000,
        max_decompressed_bytes: 5000,
        ..config(AuthMode::AnyKey)
    };
    let fake = Fake::empty(CLOUDWATCH);
    let g = gateway_with(cfg, [fake.clone()]);

    let big = format!(r#"{{"Namespace":"{}"}}"#, "x".repeat(1000));
    let resp = g.handle(json_request("ListMetrics", &big)).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (413, "RequestEntityTooLarge")
    );

    // A small compressed body that inflates past the limit.
    let bomb = format!(r#"{{"Namespace":"{}"}}"#, "x".repeat(10_000));
    let mut req = json_request("ListMetrics", "");
    *req.body_mut() = Bytes::from(gzip(bomb.as_bytes()));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    assert!(req.body().len() < 1000);
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 413);

    // Within limits it decodes.
    let mut req = query_request("");
    *req.body_mut() = Bytes::from(gzip(b"Action=ListMetrics&Namespace=Zipped"));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 200, "{}", body_str(&resp));
    assert_eq!(
        fake.last().map(|(_, v)| v),
        Some(json!({"Namespace":"Zipped"}))
    );

    let mut req = json_request("ListMetrics", "definitely not gzip");
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 400);

    let mut req = json_request("ListMetrics", "{}");
    req.headers_mut()
        .insert("content-encoding", "br".parse().expect("header"));
    assert_eq!(g.handle(req).await.status(), 415);
}

fn signed(mut req: http::Request<Bytes>, secret: &str, region: &str) -> http::Request<Bytes> {
    req.headers_mut()
        .insert("host", "localhost".parse().expect("host"));
    opsloop_wire::sigv4::sign(
        &mut req,
        "AKIDTEST",
        secret,
        region,
        "monitoring",
        SystemTime::now(),
    );
    req
}

#[tokio::test]
async fn sigv4_mode_authenticates() {
    let fake = Fake::empty(CLOUDWATCH);
    let g = gateway_with(config(AuthMode::SigV4), [fake.clone()]);

    let resp = g
        .handle(signed(
            json_request("ListMetrics", r#"{"Namespace":"A"}"#),
            "s3cr3t",
            "eu-west-1",
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", body_str(&resp));
    let (ctx, _) = fake.last().expect("called");
    assert_eq!(
        (ctx.account_id.as_str(), ctx.region.as_str()),
        ("123456789012", "eu-west-1")
    );
    assert_eq!(ctx.access_key_id.as_deref(), Some("AKIDTEST"));

    let resp = g
        .handle(signed(
            json_request("ListMetrics", "{}"),
            "wrong",
            "eu-west-1",
        ))
        .await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (403, "SignatureDoesNotMatch")
    );
    assert_eq!(
        header(&resp, "x-amzn-query-error"),
        Some("SignatureDoesNotMatch;Sender")
    );

    let resp = g.handle(query_request("Action=ListMetrics")).await;
    assert_eq!(resp.status(), 403);
    assert!(
        body_str(&resp).contains("<Code>MissingAuthenticationToken</Code>"),
        "{}",
        body_str(&resp)
    );

    // Signed query requests pick the service by the scope's signing name.
    let resp = g
        .handle(signed(
            query_request("Action=ListMetrics&Namespace=Q"),
            "s3cr3t",
            "ap-south-1",
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", body_str(&resp));
    assert_eq!(
        fake.last().map(|(c, v)| (c.region, v)),
        Some(("ap-south-1".to_string(), json!({"Namespace":"Q"})))
    );
}

#[tokio::test]
async fn any_key_mode_takes_the_region_from_the_scope() {
    let fake = Fake::empty(CLOUDWATCH);
    let g = gateway([fake.clone()]);
    let resp = g
        .handle(signed(
            json_request("ListMetrics", "{}"),
            "whatever",
            "sa-east-1",
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let (ctx, _) = fake.last().expect("called");
    assert_eq!(
        (ctx.region.as_str(), ctx.account_id.as_str()),
        ("sa-east-1", "000000000000")
    );

    let resp = g.handle(json_request("ListMetrics", "{}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        fake.last().map(|(c, _)| c.region),
        Some("us-east-1".to_string())
    );

    let mut req = json_request("ListMetrics", "{}");
    req.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 garbage".parse().expect("header"),
    );
    let resp = g.handle(req).await;
    assert_eq!(error_fields(&resp).0, "IncompleteSignature");
}

#[test]
fn registration_conflicts() {
    let mut g = Gateway::new(config(AuthMode::AnyKey), Arc::new(Creds));
    g.register(Fake::empty(CLOUDWATCH)).expect("first");
    assert!(matches!(
        g.register(Fake::empty(CLOUDWATCH)),
        Err(ModelError::Conflict(_))
    ));
    g.register(Fake::empty(SINK)).expect("sink");
    g.register(Fake::empty(THINGS)).expect("things");
    let clash = Box::leak(
        THINGS
            .replace("\"Things\"", "\"Things2\"")
            .replace("\"things\"", "\"things2\"")
            .into_boxed_str(),
    );
    g.register(Fake::empty(clash))
        .expect("REST routes may be shared: the credential scope picks the service");
    assert!(matches!(
        g.register(Fake::empty("{}")),
        Err(ModelError::Malformed(_))
    ));
    let ids: Vec<String> = g.services().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec!["CloudWatch", "Sink", "Things", "Things2"]);
}

#[tokio::test]
async fn service_panics_become_internal_errors() {
    let g = gateway([Fake::empty(SINK)]);
    let req = http::Request::builder()
        .method("POST")
        .uri("http://localhost/")
        .header("X-Amz-Target", "Sink_20200101.Echo")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(Bytes::from_static(br#"{"Name":"panic"}"#))
        .expect("request");
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(
        header(&resp, "content-type"),
        Some("application/x-amz-json-1.1")
    );
    let (ty, msg) = error_fields(&resp);
    assert_eq!(ty, "InternalFailure");
    assert!(!msg.contains("panic"), "{msg}");
}

#[tokio::test]
async fn protocols_the_model_does_not_list_are_refused() {
    let json_only = Box::leak(
        CLOUDWATCH
            .replace(
                r#""protocols":["smithy-rpc-v2-cbor","json","query"]"#,
                r#""protocols":["json"]"#,
            )
            .into_boxed_str(),
    );
    assert_ne!(json_only, CLOUDWATCH);
    let fake = Fake::empty(json_only);
    let g = gateway([fake.clone()]);
    assert_eq!(
        g.handle(json_request("ListMetrics", "{}")).await.status(),
        200
    );
    let resp = g.handle(cbor_request("ListMetrics", vec![0xa0])).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (400, "UnknownOperationException")
    );
    let resp = g.handle(query_request("Action=ListMetrics")).await;
    assert!(body_str(&resp).contains("<Code>InvalidAction</Code>"));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn query_actions_shared_by_two_services_need_a_scope() {
    let sink2 = Box::leak(
        SINK.replace("\"Sink\"", "\"Sink2\"")
            .replace("\"sink\"", "\"sink2\"")
            .replace("Sink_20200101", "Sink2_20200101")
            .into_boxed_str(),
    );
    let (a, b) = (Fake::empty(SINK), Fake::empty(sink2));
    let g = gateway([a.clone(), b.clone()]);
    let resp = g.handle(query_request("Action=Echo&Name=x")).await;
    assert!(
        body_str(&resp).contains("<Code>InvalidAction</Code>"),
        "{}",
        body_str(&resp)
    );

    let mut req = query_request("Action=Echo&Name=x");
    req.headers_mut()
        .insert("host", "localhost".parse().expect("host"));
    opsloop_wire::sigv4::sign(
        &mut req,
        "AKIDTEST",
        "any",
        "us-west-2",
        "sink2",
        SystemTime::now(),
    );
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 200, "{}", body_str(&resp));
    assert!(
        body_str(&resp).contains(r#"<EchoResponse xmlns="http://sink.example/doc/2020-01-01/">"#)
    );
    assert_eq!((a.count(), b.count()), (0, 1));
}

#[tokio::test]
async fn rest_json_through_the_gateway() {
    let fake = Fake::new(THINGS, |op, input| match op {
        "GetThing" if input["ThingId"] == "missing" => {
            Err(ApiError::new("NotFound", "no such thing"))
        }
        "GetThing" => Ok(json!({"ThingId": input["ThingId"], "ETag": "e1", "Created": 1767323045})),
        "PutThing" => Ok(json!({"ThingId": input["ThingId"]})),
        _ => Ok(json!({})),
    });
    let g = gateway([fake.clone()]);

    let req = http::Request::builder()
        .method("GET")
        .uri("http://localhost/things/t%201?verbose=true")
        .header("X-Since", "Fri, 02 Jan 2026 03:04:05 GMT")
        .body(Bytes::new())
        .expect("req");
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "etag"), Some("e1"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(resp.body()).ok(),
        Some(json!({"ThingId":"t 1","Created":1767323045}))
    );
    assert_eq!(
        fake.last().map(|(_, v)| v),
        Some(json!({"ThingId":"t 1","Verbose":true,"Since":1767323045}))
    );

    let req = http::Request::builder()
        .method("PUT")
        .uri("http://localhost/things/t2")
        .body(Bytes::from_static(br#"{"Name":"n"}"#))
        .expect("req");
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 201);

    let req = http::Request::builder()
        .method("GET")
        .uri("http://localhost/things/missing")
        .body(Bytes::new())
        .expect("req");
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(header(&resp, "x-amzn-errortype"), Some("NotFound"));
    assert_eq!(error_fields(&resp).1, "no such thing");

    let req = http::Request::builder()
        .method("GET")
        .uri("http://localhost/things?maxResults=0")
        .body(Bytes::new())
        .expect("req");
    let resp = g.handle(req).await;
    assert_eq!(
        (resp.status().as_u16(), header(&resp, "x-amzn-errortype")),
        (400, Some("ValidationException"))
    );
}

/// A service with its own, larger body limit (as CloudWatch Logs has for a full PutLogEvents batch).
struct Roomy(Arc<Fake>);

impl opsloop_core::Service for Roomy {
    fn model_json(&self) -> &'static str {
        self.0.model_json()
    }
    fn call<'a>(
        &'a self,
        ctx: &'a opsloop_core::RequestContext,
        input: serde_json::Value,
    ) -> opsloop_core::BoxFuture<'a, Result<serde_json::Value, ApiError>> {
        self.0.call(ctx, input)
    }
    fn max_request_bytes(&self) -> Option<usize> {
        Some(4000)
    }
}

#[tokio::test]
async fn a_service_may_accept_bodies_above_the_default_limit() {
    let cfg = GatewayConfig {
        max_body_bytes: 1000,
        ..config(AuthMode::AnyKey)
    };
    let fake = Fake::empty(CLOUDWATCH);
    let mut g = Gateway::new(cfg, Arc::new(Creds));
    g.register(Arc::new(Roomy(fake.clone()))).expect("register");
    assert_eq!(
        g.max_body_bytes(),
        4000,
        "the listener must read up to the largest limit"
    );

    // Padding in a member the model does not know (dropped by the decoder).
    let body = |n: usize| format!(r#"{{"Namespace":"ns","Zpad":"{}"}}"#, "x".repeat(n));
    let resp = g.handle(json_request("ListMetrics", &body(2000))).await;
    assert_eq!(resp.status(), 200, "{}", body_str(&resp));
    assert_eq!(fake.count(), 1);

    let resp = g.handle(json_request("ListMetrics", &body(5000))).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (413, "RequestEntityTooLarge")
    );
    assert_eq!(fake.count(), 1, "an oversized request reaches no service");
}

/// Scheduler and Incident Manager both have `GET /tags/{resourceArn}`: both register, and the
/// request's SigV4 credential scope picks the service (signed in SigV4 mode and any-key mode alike).
#[tokio::test]
async fn shared_rest_route_goes_to_the_service_in_the_credential_scope() {
    const SCHEDULER: &str = include_str!("../../../models/scheduler-2021-06-30.json");
    const INCIDENTS: &str = include_str!("../../../models/ssm-incidents-2018-05-10.json");
    for auth in [AuthMode::SigV4, AuthMode::AnyKey] {
        let scheduler = Fake::new(SCHEDULER, |_, _| Ok(serde_json::json!({"Tags": []})));
        let incidents = Fake::new(INCIDENTS, |_, _| Ok(serde_json::json!({"tags": {}})));
        let g = gateway_with(config(auth), [scheduler.clone(), incidents.clone()]);
        for (signing, expect_scheduler) in [("scheduler", true), ("ssm-incidents", false)] {
            let arn = "arn%3Aaws%3Ascheduler%3Aus-east-1%3A123456789012%3Aschedule-group%2Fdefault";
            let mut req = http::Request::builder()
                .method("GET")
                .uri(format!("http://localhost/tags/{arn}"))
                .header("host", "localhost")
                .body(bytes::Bytes::new())
                .unwrap();
            opsloop_wire::sigv4::sign(
                &mut req,
                "AKIDTEST",
                "s3cr3t",
                "us-east-1",
                signing,
                std::time::SystemTime::now(),
            );
            let (s0, i0) = (scheduler.count(), incidents.count());
            let resp = g.handle(req).await;
            assert_eq!(resp.status().as_u16(), 200, "{}", body_str(&resp));
            assert_eq!(
                (scheduler.count() - s0, incidents.count() - i0),
                if expect_scheduler { (1, 0) } else { (0, 1) },
                "signed for {signing} ({auth:?})"
            );
            let op = if expect_scheduler {
                scheduler.last()
            } else {
                incidents.last()
            };
            assert_eq!(op.unwrap().0.operation, "ListTagsForResource");
        }
    }
}

/// A service that decodes one operation's JSON text itself (the contract of
/// `Service::decode_json_input`, which CloudWatch Logs uses for PutLogEvents): inputs whose
/// namespace is `fast` are its own, everything else takes the generic path. A namespace `raw` is
/// answered with the output's JSON text (`DecodedOutput::Json`) instead of a document.
struct SelfDecoding(Arc<Fake>);

/// The JSON text `SelfDecoding` answers for a `raw` input: spacing, escapes and member order no
/// encoder of the gateway would produce, so the test can see it arrive unchanged.
const RAW_ANSWER: &str = "{ \"Metrics\" : [],\n\"NextToken\":\"raw \\u00e9 \\\"q\\\"\"}";

/// The input `SelfDecoding` answers with [`RAW_ANSWER`].
struct RawInput;

impl opsloop_core::Service for SelfDecoding {
    fn model_json(&self) -> &'static str {
        self.0.model_json()
    }
    fn call<'a>(
        &'a self,
        ctx: &'a opsloop_core::RequestContext,
        input: serde_json::Value,
    ) -> opsloop_core::BoxFuture<'a, Result<serde_json::Value, ApiError>> {
        self.0.call(ctx, input)
    }
    fn decode_json_input(&self, op: &str, json: &[u8]) -> Option<opsloop_core::DecodedInput> {
        if op != "ListMetrics" {
            return None;
        }
        if json.starts_with(br#"{"Namespace":"raw""#) {
            return Some(Box::new(RawInput));
        }
        json.starts_with(br#"{"Namespace":"fast""#)
            .then(|| Box::new(json.len()) as opsloop_core::DecodedInput)
    }
    fn call_decoded<'a>(
        &'a self,
        ctx: &'a opsloop_core::RequestContext,
        input: opsloop_core::DecodedInput,
    ) -> opsloop_core::BoxFuture<'a, Result<DecodedOutput, ApiError>> {
        Box::pin(async move {
            if input.is::<RawInput>() {
                return Ok(DecodedOutput::Json(RAW_ANSWER.as_bytes().to_vec()));
            }
            let n = *input.downcast::<usize>().expect("this service's input");
            if n > 30 {
                panic!("asked to panic");
            }
            Ok(json!({"NextToken": format!("{} decoded {n}", ctx.operation)}).into())
        })
    }
}

#[tokio::test]
async fn a_service_may_decode_an_operation_itself() {
    let cfg = GatewayConfig {
        max_body_bytes: 100,
        ..config(AuthMode::AnyKey)
    };
    let fake = Fake::empty(CLOUDWATCH);
    let mut g = Gateway::new(cfg, Arc::new(Creds));
    g.register(Arc::new(SelfDecoding(fake.clone())))
        .expect("register");

    let resp = g
        .handle(json_request("ListMetrics", r#"{"Namespace":"fast"}"#))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(body_str(&resp).contains("ListMetrics decoded 20"));
    assert_eq!(fake.count(), 0, "the generic call is not made");

    // declined: the generic decode, validation and call, with their errors
    let resp = g
        .handle(json_request("ListMetrics", r#"{"Namespace":"slow"}"#))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.count(), 1);
    let resp = g
        .handle(json_request("ListMetrics", r#"{"Namespace":7}"#))
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(fake.count(), 1);

    // limits apply before the service's decoder
    let big = format!(r#"{{"Namespace":"fast","Zpad":"{}"}}"#, "x".repeat(200));
    let resp = g.handle(json_request("ListMetrics", &big)).await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (413, "RequestEntityTooLarge")
    );

    // a panic in the service's own call is an internal error too
    let resp = g
        .handle(json_request(
            "ListMetrics",
            r#"{"Namespace":"fast","Zpad":"xxxxxxxxxxxxxxxx"}"#,
        ))
        .await;
    assert_eq!(
        (resp.status().as_u16(), error_fields(&resp).0.as_str()),
        (500, "InternalFailure")
    );
}

#[tokio::test]
async fn a_self_decoded_answer_may_be_json_text_sent_unchanged() {
    let fake = Fake::empty(CLOUDWATCH);
    let mut g = Gateway::new(config(AuthMode::AnyKey), Arc::new(Creds));
    g.register(Arc::new(SelfDecoding(fake.clone())))
        .expect("register");
    let serde_json::Value::Object(answer) = serde_json::from_str(RAW_ANSWER).unwrap() else {
        panic!("RAW_ANSWER is an object");
    };
    assert_eq!(answer["NextToken"], "raw \u{e9} \"q\"");

    let raw = g
        .handle(json_request("ListMetrics", r#"{"Namespace":"raw"}"#))
        .await;
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.body().as_ref(), RAW_ANSWER.as_bytes(), "sent unchanged");
    assert_eq!(fake.count(), 0, "the generic call is not made");

    // the same head as an answer the gateway encoded itself
    let encoded = g
        .handle(json_request("ListMetrics", r#"{"Namespace":"fast"}"#))
        .await;
    assert_eq!(encoded.status(), 200);
    for h in ["content-type", "content-encoding"] {
        assert_eq!(raw.headers().get(h), encoded.headers().get(h), "{h}");
    }
    assert_eq!(
        raw.headers().get("content-type").unwrap(),
        "application/x-amz-json-1.0"
    );
    let rid = |r: &http::Response<Bytes>| {
        r.headers()
            .get("x-amzn-RequestId")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (raw_id, encoded_id) = (rid(&raw).unwrap(), rid(&encoded).unwrap());
    assert_eq!(raw_id.len(), 36, "{raw_id}");
    assert_ne!(raw_id, encoded_id, "one id per request");
    let mut names: Vec<&str> = raw.headers().keys().map(|k| k.as_str()).collect();
    let mut encoded_names: Vec<&str> = encoded.headers().keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    encoded_names.sort_unstable();
    assert_eq!(names, encoded_names);
}
