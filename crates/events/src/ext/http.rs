//! The HTTP/S client of API destinations and OAuth token requests: hyper with rustls (ring),
//! trusting the system's roots, AWS's 5-second invocation timeout, and AWS's reading of answers
//! (2xx delivered; 401, 407, 409, 429 and 5xx retried; other statuses final).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// AWS's API-destination invocation timeout.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// `User-Agent` of invocations.
pub(crate) const USER_AGENT: &str = "Amazon/EventBridge/ApiDestinations";
/// Most of a response body read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client.
pub(crate) struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

/// A request.
pub(crate) struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// An answer (status and a bounded prefix of the body).
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Whether AWS retries an API destination that answered `status`.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 401 | 407 | 409 | 429 | 500..=599)
}

impl HttpClient {
    pub(crate) fn new() -> Result<HttpClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(HttpClient { client })
    }

    /// Send `req`; `Err` for requests that could not be built (final) or transport failures and
    /// timeouts (`Err((retryable, reason))`).
    pub(crate) async fn send(&self, req: Request) -> Result<Response, (bool, String)> {
        let method = http::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| (false, format!("invalid method: {e}")))?;
        let mut builder = http::Request::builder().method(method).uri(&req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = Full::new(Bytes::from(req.body.unwrap_or_default()));
        let request = builder
            .body(body)
            .map_err(|e| (false, format!("invalid request: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Ok::<Response, String>(Response { status, body })
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err((true, format!("request failed: {e}"))),
            Err(_) => Err((true, "request timed out after 5 seconds".into())),
        }
    }
}

/// The client of `shared`, built on first use.
pub(crate) fn client(shared: &super::Shared) -> Result<&HttpClient, String> {
    shared
        .http
        .get_or_init(HttpClient::new)
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
pub(crate) mod testserver {
    //! A tiny HTTP/1.1 listener for tests: answers each request with the next scripted status
    //! (and body) and records what it received.

    use std::sync::Arc;

    use parking_lot::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[derive(Debug, Clone)]
    pub struct Seen {
        pub request_line: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Seen {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub struct TestServer {
        pub url: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
    }

    /// Serve `answers` in order (the last one repeats).
    pub async fn start(answers: Vec<(u16, String)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (status, body) = answers[n.min(answers.len() - 1)].clone();
                n += 1;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, content_length) = loop {
                    let Ok(k) = sock.read(&mut chunk).await else {
                        break (0, 0);
                    };
                    if k == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        break (p + 4, len);
                    }
                };
                while buf.len() < head_end + content_length {
                    let Ok(k) = sock.read(&mut chunk).await else {
                        break;
                    };
                    if k == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end.saturating_sub(4)]).to_string();
                let mut lines = head.lines();
                let request_line = lines.next().unwrap_or("").to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                let req_body = String::from_utf8_lossy(&buf[head_end.min(buf.len())..]).to_string();
                log.lock().push(Seen {
                    request_line,
                    headers,
                    body: req_body,
                });
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        TestServer { url, seen }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_as_aws_reads_them() {
        for s in [401, 407, 409, 429, 500, 503] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 403, 404, 413] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[tokio::test]
    async fn sends_and_reads_an_answer() {
        let server = testserver::start(vec![(201, "{\"ok\":true}".into())]).await;
        let client = HttpClient::new().unwrap();
        let r = client
            .send(Request {
                method: "PUT".into(),
                url: format!("{}/x?y=1", server.url),
                headers: vec![("x-test".into(), "v".into())],
                body: Some(b"hello".to_vec()),
            })
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(&r.body[..], b"{\"ok\":true}");
        let seen = server.seen.lock()[0].clone();
        assert_eq!(seen.request_line, "PUT /x?y=1 HTTP/1.1");
        assert_eq!(seen.header("x-test"), Some("v"));
        assert_eq!(seen.body, "hello");
    }

    #[tokio::test]
    async fn refused_connections_are_retryable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = HttpClient::new().unwrap();
        let e = client
            .send(Request {
                method: "POST".into(),
                url: format!("http://127.0.0.1:{port}/"),
                headers: vec![],
                body: None,
            })
            .await
            .unwrap_err();
        assert!(e.0, "{e:?}");
    }
}
