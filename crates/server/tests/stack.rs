//! The whole stack in-process: `app::build` + `serve::serve` on a loopback port, driven over real HTTP
//! with SigV4-signed awsJson 1.0 requests. Covers the health and reset endpoints, a put/get round trip,
//! an oversized body, auth failures, and that shutdown closes the stores (the data directory can be
//! reopened and still holds the data).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opsloop::config::{Config, Layer};
use opsloop::{app, serve};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const AKID: &str = "AKIAINPROCESSTEST001";
const SECRET: &str = "in-process-secret-key";

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(data_dir: &Path, extra: Layer) -> Running {
        let flags = Layer {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.to_path_buf()),
            access_key_id: Some(AKID.into()),
            secret_access_key: Some(SECRET.into()),
            ..extra
        };
        let config = Config::resolve(flags, Layer::default(), None).unwrap();
        let app = app::build(config).unwrap();
        let listener = serve::bind(&app).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve::serve(Arc::new(app), listener, async move {
            let _ = rx.await;
        }));
        Running {
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    async fn send(&self, req: http::Request<Bytes>) -> (u16, http::HeaderMap, Bytes) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req.map(Full::new)).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let req = http::Request::get(path)
            .header("host", self.addr.to_string())
            .body(Bytes::new())
            .unwrap();
        let (status, _, body) = self.send(req).await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        let req = http::Request::post(path)
            .header("host", self.addr.to_string())
            .body(Bytes::new())
            .unwrap();
        let (status, _, body) = self.send(req).await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// An awsJson 1.0 CloudWatch call signed with `secret`.
    async fn call_with(&self, op: &str, input: Value, secret: &str) -> (u16, Value) {
        let mut req = http::Request::post("/")
            .header("host", self.addr.to_string())
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "x-amz-target",
                format!("GraniteServiceVersion20100801.{op}"),
            )
            .body(Bytes::from(serde_json::to_vec(&input).unwrap()))
            .unwrap();
        opsloop_wire::sigv4::sign(
            &mut req,
            AKID,
            secret,
            "us-east-1",
            "monitoring",
            SystemTime::now(),
        );
        let (status, headers, body) = self.send(req).await;
        assert!(
            headers.contains_key("x-amzn-requestid"),
            "every answer carries a request id"
        );
        let value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, value)
    }

    async fn call(&self, op: &str, input: Value) -> (u16, Value) {
        self.call_with(op, input, SECRET).await
    }
}

fn minute_ago(n: i64) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now % 60 - 60 * n
}

async fn put(server: &Running, ns: &str, ts: i64, value: f64) {
    let (status, body) = server
        .call(
            "PutMetricData",
            json!({"Namespace": ns, "MetricData": [{"MetricName": "M", "Timestamp": ts, "Value": value}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn sum(server: &Running, ns: &str, ts: i64) -> Option<f64> {
    let (status, body) = server
        .call(
            "GetMetricStatistics",
            json!({"Namespace": ns, "MetricName": "M", "StartTime": ts, "EndTime": ts + 60,
                   "Period": 60, "Statistics": ["Sum"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let points = body["Datapoints"].as_array().cloned().unwrap_or_default();
    assert!(points.len() <= 1, "{body}");
    points.first().map(|p| p["Sum"].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_put_get_and_shutdown_closes_stores() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), Layer::default()).await;

    let (status, health) = server.get("/_opsloop/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["services"]["CloudWatch"]["ready"], true);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let ts = minute_ago(5);
    put(&server, "InProc", ts, 2.5).await;
    put(&server, "InProc", ts + 1, 4.0).await;
    assert_eq!(sum(&server, "InProc", ts).await, Some(6.5));

    let (status, _) = server.post("/_opsloop/reset").await;
    assert_eq!(status, 403, "reset is off by default");
    let (status, _) = server.get("/_opsloop/nope").await;
    assert_eq!(status, 404);

    server.stop().await;
    // The lock is released and the stores were closed cleanly: reopen and read back.
    let again = Running::start(dir.path(), Layer::default()).await;
    assert_eq!(sum(&again, "InProc", ts).await, Some(6.5));
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_when_enabled_wipes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(
        dir.path(),
        Layer {
            enable_reset: Some(true),
            ..Layer::default()
        },
    )
    .await;
    let ts = minute_ago(3);
    put(&server, "Reset", ts, 1.0).await;
    assert_eq!(sum(&server, "Reset", ts).await, Some(1.0));
    let (status, body) = server.post("/_opsloop/reset").await;
    assert_eq!((status, body), (200, json!({"status": "reset"})));
    assert_eq!(sum(&server, "Reset", ts).await, None);
    let (_, listed) = server
        .call("ListMetrics", json!({"Namespace": "Reset"}))
        .await;
    assert_eq!(
        listed["Metrics"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{listed}"
    );
    put(&server, "Reset", ts, 7.0).await;
    assert_eq!(sum(&server, "Reset", ts).await, Some(7.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_and_oversized_body_are_aws_errors_that_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(
        dir.path(),
        Layer {
            max_body_bytes: Some(4096),
            ..Layer::default()
        },
    )
    .await;
    let ts = minute_ago(4);

    let input = json!({"Namespace": "Auth", "MetricData": [{"MetricName": "M", "Timestamp": ts, "Value": 1.0}]});
    let (status, body) = server
        .call_with("PutMetricData", input, "wrong-secret")
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("SignatureDoesNotMatch"), "{body}");

    let big: Vec<Value> = (0..200)
        .map(|i| json!({"MetricName": format!("M{i:03}"), "Timestamp": ts, "Value": 1.0}))
        .collect();
    let (status, body) = server
        .call(
            "PutMetricData",
            json!({"Namespace": "Auth", "MetricData": big}),
        )
        .await;
    assert!(
        (400..500).contains(&status),
        "oversized body must be a client error, got {status}: {body}"
    );

    let (_, listed) = server
        .call("ListMetrics", json!({"Namespace": "Auth"}))
        .await;
    assert_eq!(
        listed["Metrics"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{listed}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_app_on_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), Layer::default()).await;
    let flags = Layer {
        data_dir: Some(dir.path().to_path_buf()),
        ..Layer::default()
    };
    let config = Config::resolve(flags, Layer::default(), None).unwrap();
    let err = app::build(config).err().expect("second build must fail");
    assert!(
        format!("{err:#}").contains("in use by another opsloop server"),
        "{err:#}"
    );
    server.stop().await;
}
