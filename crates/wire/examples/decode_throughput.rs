//! Measure PutMetricData throughput through [`Gateway::handle`] (decode, validate, a service that
//! walks the input, encode) for each protocol, with requests of 1000 metrics × 150 values,
//! gzip-compressed as botocore sends them.
//!
//! `cargo run --release -p opsloop-wire --example decode_throughput -- [iterations] [json|cbor|query]`

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, Value};
use opsloop_wire::{AuthMode, CredentialStore, Credentials, Gateway, GatewayConfig};

const CLOUDWATCH: &str = include_str!("../../../models/cloudwatch-2010-08-01.json");
const METRICS: usize = 1000;
const VALUES: usize = 150;

struct Sink;

impl Service for Sink {
    fn model_json(&self) -> &'static str {
        CLOUDWATCH
    }
    fn call<'a>(
        &'a self,
        _: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            // Touch the data like a real service would.
            let n: usize = input["MetricData"].as_array().map_or(0, |a| {
                a.iter()
                    .map(|m| m["Values"].as_array().map_or(0, Vec::len))
                    .sum()
            });
            std::hint::black_box(n);
            Ok(Value::Object(Default::default()))
        })
    }
}

struct NoCreds;

impl CredentialStore for NoCreds {
    fn lookup(&self, _: &str) -> Option<Credentials> {
        None
    }
}

fn value(i: usize, j: usize) -> f64 {
    ((i * 31 + j * 17) % 1000) as f64 / 8.0
}

fn json_body() -> Vec<u8> {
    let mut s = String::from(r#"{"Namespace":"Bench/Load","MetricData":["#);
    for i in 0..METRICS {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(r#"{{"MetricName":"metric_{i}","Dimensions":[{{"Name":"Host","Value":"host-{}"}}],"Timestamp":1767323045,"Unit":"Milliseconds","Values":["#, i % 50));
        for j in 0..VALUES {
            if j > 0 {
                s.push(',');
            }
            s.push_str(&format!("{}", value(i, j)));
        }
        s.push_str(r#"],"Counts":["#);
        for j in 0..VALUES {
            if j > 0 {
                s.push(',');
            }
            s.push_str("1.0");
        }
        s.push_str("]}");
    }
    s.push_str("]}");
    s.into_bytes()
}

fn query_body() -> Vec<u8> {
    let mut s = String::from("Action=PutMetricData&Version=2010-08-01&Namespace=Bench%2FLoad");
    for i in 1..=METRICS {
        let p = format!("MetricData.member.{i}");
        s.push_str(&format!("&{p}.MetricName=metric_{i}&{p}.Dimensions.member.1.Name=Host&{p}.Dimensions.member.1.Value=host-{}", i % 50));
        s.push_str(&format!(
            "&{p}.Timestamp=2026-01-02T03%3A04%3A05Z&{p}.Unit=Milliseconds"
        ));
        for j in 1..=VALUES {
            s.push_str(&format!("&{p}.Values.member.{j}={}", value(i, j)));
        }
        for j in 1..=VALUES {
            s.push_str(&format!("&{p}.Counts.member.{j}=1.0"));
        }
    }
    s.into_bytes()
}

fn cbor_body() -> Vec<u8> {
    use ciborium::Value as C;
    let t = |s: &str| C::Text(s.to_string());
    let data: Vec<C> = (0..METRICS)
        .map(|i| {
            C::Map(vec![
                (t("MetricName"), t(&format!("metric_{i}"))),
                (
                    t("Dimensions"),
                    C::Array(vec![C::Map(vec![
                        (t("Name"), t("Host")),
                        (t("Value"), t(&format!("host-{}", i % 50))),
                    ])]),
                ),
                (
                    t("Timestamp"),
                    C::Tag(1, Box::new(C::Integer(1_767_323_045.into()))),
                ),
                (t("Unit"), t("Milliseconds")),
                (
                    t("Values"),
                    C::Array((0..VALUES).map(|j| C::Float(value(i, j))).collect()),
                ),
                (
                    t("Counts"),
                    C::Array((0..VALUES).map(|_| C::Float(1.0)).collect()),
                ),
            ])
        })
        .collect();
    let v = C::Map(vec![
        (t("Namespace"), t("Bench/Load")),
        (t("MetricData"), C::Array(data)),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).expect("cbor");
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

fn request(protocol: &str, body: &[u8]) -> http::Request<Bytes> {
    let b = http::Request::builder()
        .method("POST")
        .header("content-encoding", "gzip");
    let b = match protocol {
        "json" => b
            .uri("http://localhost/")
            .header(
                "x-amz-target",
                "GraniteServiceVersion20100801.PutMetricData",
            )
            .header("content-type", "application/x-amz-json-1.0"),
        "cbor" => b
            .uri("http://localhost/service/GraniteServiceVersion20100801/operation/PutMetricData")
            .header("smithy-protocol", "rpc-v2-cbor")
            .header("content-type", "application/cbor"),
        _ => b.uri("http://localhost/").header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    };
    b.body(Bytes::from(body.to_vec())).expect("request")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cfg = GatewayConfig {
        auth: AuthMode::AnyKey,
        max_body_bytes: 16 << 20,
        ..GatewayConfig::default()
    };
    let mut g = Gateway::new(cfg, Arc::new(NoCreds));
    let t = Instant::now();
    g.register(Arc::new(Sink)).expect("register");
    println!(
        "CloudWatch model parsed and indexed in {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let iterations = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let only = std::env::args().nth(2);
    for (name, make) in [
        ("json", json_body as fn() -> Vec<u8>),
        ("cbor", cbor_body),
        ("query", query_body),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let raw = make();
        let z = gzip(&raw);
        let reqs: Vec<_> = (0..iterations).map(|_| request(name, &z)).collect();
        let start = Instant::now();
        for req in reqs {
            let resp = g.handle(req).await;
            assert_eq!(
                resp.status(),
                200,
                "{}",
                String::from_utf8_lossy(resp.body())
            );
        }
        let secs = start.elapsed().as_secs_f64();
        let points = (iterations * METRICS * VALUES) as f64;
        println!(
            "{name:5} raw {:>9} B gzip {:>8} B  {:>7.1} ms/request  {:>10.0} datapoints/s (one core)",
            raw.len(),
            z.len(),
            secs * 1000.0 / iterations as f64,
            points / secs
        );
    }
}
