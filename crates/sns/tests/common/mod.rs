//! Test fixtures: an SNS service over a temporary SQLite store (with a pre-generated signing key so
//! tests do not each pay for RSA key generation), a loopback webhook receiver (HTTP or HTTPS with a
//! CA made here) that records requests and answers with scripted statuses, and a loopback SMTP
//! sink that records mails. Waiting is always on conditions with deadlines.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opsloop_core::{ApiError, RequestContext, Service, Value};
use opsloop_sns::{Sns, SnsConfig};
use opsloop_store::{ControlStore, SqliteStore};
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const ACCOUNT: &str = "000000000000";
pub const REGION: &str = "us-east-1";
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A signing key shared by every test of this binary.
fn shared_key_pem() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| opsloop_sns::signing::generate_key_pem().expect("rsa key"))
}

/// An SNS service over a store in `dir` (reopenable), with the shared key.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sns: Arc<Sns>,
    pub store: Arc<dyn ControlStore>,
    pub config: SnsConfig,
}

pub fn key_dir(dir: &Path) -> PathBuf {
    let kd = dir.join("keys");
    std::fs::create_dir_all(&kd).unwrap();
    let key = kd.join(opsloop_sns::signing::KEY_FILE);
    if !key.exists() {
        std::fs::write(&key, shared_key_pem()).unwrap();
    }
    kd
}

impl Harness {
    pub fn new(configure: impl FnOnce(&mut SnsConfig)) -> Harness {
        // Logs go to the test's captured output (shown for failing tests).
        let _ = tracing_subscriber::fmt()
            .with_env_filter("opsloop_sns=debug")
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut config = SnsConfig::new("http://127.0.0.1:9", key_dir(dir.path()));
        configure(&mut config);
        let store: Arc<dyn ControlStore> =
            Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let sns = Arc::new(Sns::new(store.clone(), config.clone()).unwrap());
        Harness {
            dir,
            sns,
            store,
            config,
        }
    }

    /// A second service over the same store and keys (a restart), the first one shut down.
    pub fn restart(&mut self) {
        self.sns.shutdown();
        let store: Arc<dyn ControlStore> =
            Arc::new(SqliteStore::open(&self.dir.path().join("state.db")).unwrap());
        self.store = store.clone();
        self.sns = Arc::new(Sns::new(store, self.config.clone()).unwrap());
    }

    pub async fn call(&self, op: &str, input: Value) -> Result<Value, ApiError> {
        let ctx = RequestContext::internal(ACCOUNT, REGION, op);
        self.sns.call(&ctx, input).await
    }

    pub async fn ok(&self, op: &str, input: Value) -> Value {
        match self.call(op, input).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    pub async fn create_topic(&self, name: &str) -> String {
        let v = self
            .ok("CreateTopic", serde_json::json!({"Name": name}))
            .await;
        v["TopicArn"].as_str().unwrap().to_string()
    }

    /// GET a public URL (absolute, as found in a message) through `handle_public`.
    pub async fn visit(&self, url: &str) -> opsloop_sns::PublicResponse {
        let uri: http::Uri = url.parse().unwrap();
        self.sns
            .handle_public("GET", uri.path(), uri.query().unwrap_or(""))
            .await
    }

    /// Wait until no delivery is scheduled, in flight, or left in the outbox.
    pub async fn drained(&self) {
        wait_for(|| {
            self.sns.pending_deliveries() == 0
                && self
                    .store
                    .scan("sns.outbox", "", None, 1)
                    .map(|r| r.is_empty())
                    .unwrap_or(false)
        })
        .await;
    }
}

/// Poll `cond` until it holds, failing after [`DEADLINE`].
pub async fn wait_for(mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "condition not met within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A fresh CA (PEM) and a TLS acceptor for 127.0.0.1 with a certificate it signed.
pub fn loopback_tls() -> (String, tokio_rustls::TlsAcceptor) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "opsloop test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    statuses: Mutex<VecDeque<u16>>,
    notify: Notify,
}

/// A loopback webhook receiver.
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    /// PEM of the CA that signed an HTTPS receiver's certificate.
    pub ca_pem: Option<String>,
}

impl Receiver {
    pub async fn http() -> Receiver {
        Self::start(None).await
    }

    /// An HTTPS receiver for 127.0.0.1 with a certificate from a fresh CA ([`Receiver::ca_pem`]).
    pub async fn https() -> Receiver {
        let (ca_pem, acceptor) = loopback_tls();
        let mut r = Self::start(Some(acceptor)).await;
        r.ca_pem = Some(ca_pem);
        r
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (s, tls) = (s.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let s = s.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let headers = req.headers().clone();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let status = s.statuses.lock().pop_front().unwrap_or(200);
                                s.received.lock().push(Received {
                                    path,
                                    headers,
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                });
                                s.notify.notify_waiters();
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from_static(b"ok")))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                                .await;
                        }
                    }
                });
            }
        });
        Receiver {
            url: format!("{scheme}://{addr}/hook"),
            shared,
            ca_pem: None,
        }
    }

    /// Answer the next requests with these statuses (then 200).
    pub fn script(&self, statuses: &[u16]) {
        self.shared.statuses.lock().extend(statuses.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().clone()
    }

    /// Wait until `n` requests arrived; returns them all.
    pub async fn wait_count(&self, n: usize) -> Vec<Received> {
        wait_for(|| self.shared.received.lock().len() >= n).await;
        self.received()
    }

    /// Wait for the first request whose `x-amz-sns-message-type` is `kind`.
    pub async fn wait_type(&self, kind: &str) -> Received {
        let mut found = None;
        wait_for(|| {
            found = self
                .received()
                .into_iter()
                .find(|r| r.header("x-amz-sns-message-type") == kind);
            found.is_some()
        })
        .await;
        found.unwrap()
    }
}

/// One mail the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether the mail came over a STARTTLS-secured connection.
    pub tls: bool,
}

impl Mail {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The body, base64-decoded.
    pub fn body(&self) -> String {
        use base64::Engine;
        let raw: String = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
            .split("\r\n")
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .expect("base64 body");
        String::from_utf8(bytes).unwrap()
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// A loopback SMTP server that accepts every mail (and offers STARTTLS when given an acceptor).
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// PEM of the CA of the STARTTLS certificate.
    pub ca_pem: Option<String>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::serve(None).await
    }

    /// A sink that offers STARTTLS with a certificate from a fresh CA ([`SmtpSink::ca_pem`]).
    pub async fn with_starttls() -> SmtpSink {
        let (ca_pem, acceptor) = loopback_tls();
        let mut sink = Self::serve(Some(acceptor)).await;
        sink.ca_pem = Some(ca_pem);
        sink
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (m, tls) = (m.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = session(Box::new(tcp), tls, m).await;
                });
            }
        });
        SmtpSink {
            port,
            mails,
            ca_pem: None,
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().clone()
    }

    pub async fn wait_count(&self, n: usize) -> Vec<Mail> {
        wait_for(|| self.mails.lock().len() >= n).await;
        self.mails()
    }
}

async fn session(
    stream: Box<dyn Stream>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mails: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(stream);
    r.get_mut().write_all(b"220 sink ESMTP\r\n").await?;
    let (mut from, mut to, mut secured) = (String::new(), Vec::new(), false);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let offer = if tls.is_some() && !secured {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            r.get_mut()
                .write_all(format!("250-sink\r\n{offer}250 8BITMIME\r\n").as_bytes())
                .await?;
        } else if upper == "STARTTLS" {
            let Some(acceptor) = tls.clone() else {
                r.get_mut().write_all(b"502 not offered\r\n").await?;
                continue;
            };
            r.get_mut().write_all(b"220 go ahead\r\n").await?;
            let plain = r.into_inner();
            let secure = acceptor.accept(plain).await?;
            r = BufReader::new(Box::new(secure));
            secured = true;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim_matches(|c| c == '<' || c == '>').to_string();
            r.get_mut().write_all(b"250 ok\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim_matches(|c| c == '<' || c == '>').to_string());
            r.get_mut().write_all(b"250 ok\r\n").await?;
        } else if upper == "DATA" {
            r.get_mut().write_all(b"354 go\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l.strip_prefix('.').map(str::to_string).unwrap_or(l);
                data.push_str(&l);
            }
            mails.lock().push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
                tls: secured,
            });
            r.get_mut().write_all(b"250 queued\r\n").await?;
        } else if upper == "QUIT" {
            r.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            r.get_mut().write_all(b"250 ok\r\n").await?;
        }
    }
}

/// Verify an SNS JSON document's signature with the private key in `key_dir` (its public half).
pub fn verify_signature(doc: &Value, key_dir: &Path) {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use sha2::Digest;
    let pem = std::fs::read_to_string(key_dir.join(opsloop_sns::signing::KEY_FILE)).unwrap();
    let public = rsa::RsaPublicKey::from(&rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap());
    let kind = doc["Type"].as_str().unwrap();
    let to_sign =
        opsloop_sns::signing::string_to_sign(kind, |n| doc.get(n).and_then(Value::as_str));
    let sig = base64::engine::general_purpose::STANDARD
        .decode(doc["Signature"].as_str().unwrap())
        .unwrap();
    match doc["SignatureVersion"].as_str().unwrap() {
        "1" => public
            .verify(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(to_sign.as_bytes()),
                &sig,
            )
            .expect("SHA1withRSA signature verifies"),
        "2" => public
            .verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(to_sign.as_bytes()),
                &sig,
            )
            .expect("SHA256withRSA signature verifies"),
        other => panic!("unexpected SignatureVersion {other}"),
    }
}
