//! Where collected data goes: the [`Sink`] trait (AWS-shaped JSON in, AWS-shaped JSON out) and
//! [`HttpSink`], which sends CloudWatch calls as awsJson 1.0 (`X-Amz-Target:
//! GraniteServiceVersion20100801.<Op>`, signing name `monitoring`) and Logs calls as awsJson 1.1
//! (`Logs_20140328.<Op>`, signing name `logs`), SigV4-signed, over one keep-alive HTTP/1.1
//! connection per service.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// A boxed future returned by [`Sink`] methods.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, SinkError>> + Send + 'a>>;

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SinkError {
    /// The AWS error code (`ResourceNotFoundException`, `Throttling` …), or `NetworkError`.
    pub code: String,
    pub message: String,
    /// True when trying again later may succeed (network, 5xx, throttling).
    pub retryable: bool,
}

impl SinkError {
    pub fn network(message: impl Into<String>) -> SinkError {
        SinkError {
            code: "NetworkError".into(),
            message: message.into(),
            retryable: true,
        }
    }
}

/// The four (plus retention) calls the agent makes. Inputs are the AWS request documents
/// (`{"Namespace": …, "MetricData": [...]}`, `{"logGroupName": …, "logEvents": [...]}` …) with
/// timestamps as epoch seconds (metrics) or epoch milliseconds (log events), as on the wire.
pub trait Sink: Send + Sync {
    fn put_metric_data(&self, input: Value) -> SinkFuture<'_>;
    fn put_log_events(&self, input: Value) -> SinkFuture<'_>;
    fn create_log_group(&self, input: Value) -> SinkFuture<'_>;
    fn create_log_stream(&self, input: Value) -> SinkFuture<'_>;
    /// `PutRetentionPolicy` for `retention_in_days`; sinks that do not keep logs may succeed.
    fn put_retention_policy(&self, input: Value) -> SinkFuture<'_>;
}

/// Credentials and endpoint of [`HttpSink`].
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    /// `http://host:port` (plain HTTP; the opsloop server).
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

type Conn = tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>;

/// The built-in HTTP [`Sink`].
pub struct HttpSink {
    cfg: HttpSinkConfig,
    authority: String,
    cw: Conn,
    logs: Conn,
}

#[derive(Clone, Copy)]
enum Svc {
    CloudWatch,
    Logs,
}

impl HttpSink {
    pub fn new(cfg: HttpSinkConfig) -> Result<HttpSink, SinkError> {
        let uri: http::Uri = cfg
            .endpoint
            .parse()
            .map_err(|e| SinkError::network(format!("endpoint {:?}: {e}", cfg.endpoint)))?;
        if uri.scheme_str() != Some("http") {
            return Err(SinkError {
                code: "InvalidEndpoint".into(),
                message: format!("endpoint {:?}: only http:// is supported", cfg.endpoint),
                retryable: false,
            });
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| SinkError::network("endpoint has no host"))?;
        Ok(HttpSink {
            cfg,
            authority,
            cw: Default::default(),
            logs: Default::default(),
        })
    }

    /// A CloudWatch call (awsJson 1.0), for any operation; used by tests to read data back.
    pub async fn cloudwatch(&self, op: &str, input: &Value) -> Result<Value, SinkError> {
        self.call(Svc::CloudWatch, op, input).await
    }

    /// A CloudWatch Logs call (awsJson 1.1), for any operation.
    pub async fn logs(&self, op: &str, input: &Value) -> Result<Value, SinkError> {
        self.call(Svc::Logs, op, input).await
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SinkError> {
        let addr = if self.authority.contains(':') {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| SinkError::network(format!("connect {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SinkError::network(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(&self, svc: Svc, op: &str, body: Bytes) -> http::Request<Bytes> {
        let (ct, target, signing) = match svc {
            Svc::CloudWatch => (
                "application/x-amz-json-1.0",
                format!("GraniteServiceVersion20100801.{op}"),
                "monitoring",
            ),
            Svc::Logs => (
                "application/x-amz-json-1.1",
                format!("Logs_20140328.{op}"),
                "logs",
            ),
        };
        let mut req = http::Request::post("/")
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, ct)
            .header("x-amz-target", target)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .expect("static request parts are valid");
        opsloop_wire::sigv4::sign_with_token(
            &mut req,
            &self.cfg.access_key_id,
            &self.cfg.secret_access_key,
            self.cfg.session_token.as_deref(),
            &self.cfg.region,
            signing,
            SystemTime::now(),
        );
        req
    }

    async fn call(&self, svc: Svc, op: &str, input: &Value) -> Result<Value, SinkError> {
        let body = Bytes::from(serde_json::to_vec(input).expect("JSON values serialize"));
        let slot = match svc {
            Svc::CloudWatch => &self.cw,
            Svc::Logs => &self.logs,
        };
        let mut conn = slot.lock().await;
        let mut last = SinkError::network("not sent");
        // A stale keep-alive connection is replaced once.
        for _ in 0..2 {
            if conn.is_none() {
                *conn = Some(self.connect().await?);
            }
            let Some(sender) = conn.as_mut() else {
                continue;
            };
            let req = self.request(svc, op, body.clone()).map(Full::new);
            let sent = tokio::time::timeout(self.cfg.timeout, async {
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, bytes))
            })
            .await;
            match sent {
                Ok(Ok((status, bytes))) => return parse_response(status, &bytes),
                Ok(Err(e)) => last = SinkError::network(format!("{op}: {e}")),
                Err(_) => last = SinkError::network(format!("{op}: timed out")),
            }
            *conn = None;
        }
        Err(last)
    }
}

fn parse_response(status: u16, body: &[u8]) -> Result<Value, SinkError> {
    let doc: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    if (200..300).contains(&status) {
        return Ok(doc);
    }
    let raw = doc
        .get("__type")
        .or_else(|| doc.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("UnknownError");
    let code = raw
        .rsplit('#')
        .next()
        .unwrap_or(raw)
        .split(':')
        .next()
        .unwrap_or(raw)
        .to_string();
    let message = doc
        .get("message")
        .or_else(|| doc.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let retryable = status >= 500
        || status == 429
        || code.contains("Throttl")
        || code == "ServiceUnavailable"
        || code == "RequestTimeout";
    Err(SinkError {
        code,
        message: format!("HTTP {status}: {message}"),
        retryable,
    })
}

impl Sink for HttpSink {
    fn put_metric_data(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move { self.call(Svc::CloudWatch, "PutMetricData", &input).await })
    }
    fn put_log_events(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move { self.call(Svc::Logs, "PutLogEvents", &input).await })
    }
    fn create_log_group(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move { self.call(Svc::Logs, "CreateLogGroup", &input).await })
    }
    fn create_log_stream(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move { self.call(Svc::Logs, "CreateLogStream", &input).await })
    }
    fn put_retention_policy(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move { self.call(Svc::Logs, "PutRetentionPolicy", &input).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_classify() {
        let e = parse_response(
            400,
            br#"{"__type":"com.amazonaws.logs#ResourceNotFoundException","message":"no group"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(!e.retryable);
        let e = parse_response(503, b"").unwrap_err();
        assert!(e.retryable);
        let e = parse_response(400, br#"{"__type":"Throttling","message":"slow"}"#).unwrap_err();
        assert!(e.retryable);
        assert_eq!(parse_response(200, b"").unwrap(), serde_json::json!({}));
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_retryable() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let s = HttpSink::new(HttpSinkConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            region: "us-east-1".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
            timeout: Duration::from_secs(2),
        })
        .unwrap();
        let e = s.put_metric_data(serde_json::json!({})).await.unwrap_err();
        assert!(e.retryable && e.code == "NetworkError", "{e:?}");
        assert!(HttpSink::new(HttpSinkConfig {
            endpoint: "https://x".into(),
            ..s.cfg.clone()
        })
        .is_err());
    }
}
