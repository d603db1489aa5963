//! The HTTP/S client deliveries use: hyper with rustls (ring), trusting the system's roots plus an
//! optional extra CA file, a 15-second request timeout as SNS's, and SNS's classification of
//! answers: 2xx delivered; 1xx, 5xx, 429, timeouts and connection or TLS errors retried; other
//! statuses permanent failures.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// SNS's request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = "Amazon Simple Notification Service Agent";
/// Most of a response body read (and discarded).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("tls configuration: {0}")]
    Tls(String),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth retrying (reason for the log).
    Retry(String),
    /// Retrying will not help.
    Permanent(String),
}

impl Outcome {
    /// SNS's reading of an HTTP status.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Delivered,
            100..=199 | 429 | 500..=599 => Outcome::Retry(format!("endpoint answered {status}")),
            _ => Outcome::Permanent(format!("endpoint answered {status}")),
        }
    }
}

/// Root certificates: the system's plus those in `extra_ca_file`.
pub fn root_store(extra_ca_file: Option<&Path>) -> Result<rustls::RootCertStore, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca_file {
        let ca_err = |reason: String| ClientError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))? {
            let cert = cert.map_err(|e| ca_err(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_err("no certificate found".into()));
        }
    }
    Ok(roots)
}

/// A rustls client configuration over `roots` (ring provider).
pub fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The delivery client (connection pooling per endpoint).
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

impl HttpClient {
    pub fn new(tls: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(REQUEST_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        HttpClient { client }
    }

    /// POST `body` to `url` with `headers`; SNS's outcome classification.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Outcome {
        let mut builder = http::Request::builder().method(http::Method::POST).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = match builder.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return Outcome::Permanent(format!("invalid request: {e}")),
        };
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            // Read (a bounded part of) the answer so the connection can be reused.
            let _ = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await;
            Ok::<u16, String>(status)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(status)) => Outcome::from_status(status),
            Ok(Err(e)) => Outcome::Retry(format!("request failed: {e}")),
            Err(_) => Outcome::Retry("request timed out".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_sns_does() {
        assert_eq!(Outcome::from_status(200), Outcome::Delivered);
        assert_eq!(Outcome::from_status(204), Outcome::Delivered);
        assert!(matches!(Outcome::from_status(500), Outcome::Retry(_)));
        assert!(matches!(Outcome::from_status(503), Outcome::Retry(_)));
        assert!(matches!(Outcome::from_status(429), Outcome::Retry(_)));
        assert!(matches!(Outcome::from_status(101), Outcome::Retry(_)));
        assert!(matches!(Outcome::from_status(404), Outcome::Permanent(_)));
        assert!(matches!(Outcome::from_status(301), Outcome::Permanent(_)));
    }

    #[test]
    fn missing_or_empty_ca_files_are_errors() {
        assert!(root_store(Some(Path::new("/nonexistent/ca.pem"))).is_err());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(root_store(Some(&empty)).is_err());
    }
}
