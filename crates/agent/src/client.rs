//! The agent's HTTP client for the `Opsloop Agent` protocol: awsJson 1.1 POSTs with
//! `X-Amz-Target: OpsloopAgent.<Operation>`, SigV4-signed (signing name `opsloop-agent`) with the
//! key it is given, over a pooled HTTP/1 connection, with a per-request timeout.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::AgentError;

/// Signing name and target prefix of the protocol (models/opsloop-agent.json).
pub const SIGNING_NAME: &str = "opsloop-agent";
pub const TARGET_PREFIX: &str = "OpsloopAgent";

/// A signing key.
#[derive(Debug, Clone)]
pub struct Key {
    pub access_key_id: String,
    pub secret: String,
}

/// A client of one server endpoint.
#[derive(Clone)]
pub struct AgentClient {
    endpoint: http::Uri,
    region: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AgentClient {
    /// A client of `endpoint` (`http://host:port`) signing for `region`.
    pub fn new(endpoint: &str, region: &str) -> Result<AgentClient, AgentError> {
        let endpoint: http::Uri = endpoint
            .parse()
            .map_err(|_| AgentError::Config(format!("--endpoint {endpoint:?} is not a URL")))?;
        if endpoint.scheme_str() != Some("http") || endpoint.authority().is_none() {
            return Err(AgentError::Config(format!(
                "--endpoint {endpoint} must be an http://host:port URL"
            )));
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(AgentClient {
            endpoint,
            region: region.to_string(),
            http,
        })
    }

    /// The endpoint's `host:port`.
    pub fn authority(&self) -> String {
        self.endpoint
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default()
    }

    /// Call `operation` with `input`, signed with `key`; waits at most `timeout`.
    pub async fn call(
        &self,
        key: &Key,
        operation: &str,
        input: &Value,
        timeout: Duration,
    ) -> Result<Value, AgentError> {
        let body = Bytes::from(serde_json::to_vec(input).unwrap_or_default());
        let uri = format!("{}/", self.endpoint.to_string().trim_end_matches('/'));
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&uri)
            .header("host", self.authority())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("{TARGET_PREFIX}.{operation}"))
            .body(body)
            .map_err(|e| AgentError::Network(e.to_string()))?;
        opsloop_wire::sigv4::sign(
            &mut req,
            &key.access_key_id,
            &key.secret,
            &self.region,
            SIGNING_NAME,
            SystemTime::now(),
        );
        let (parts, body) = req.into_parts();
        let req = http::Request::from_parts(parts, Full::new(body));
        let send = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| AgentError::Network(e.to_string()))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| AgentError::Network(e.to_string()))?
                .to_bytes();
            Ok::<_, AgentError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| AgentError::Network(format!("{operation} timed out")))??;
        let doc: Value = if bytes.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| AgentError::Network(format!("{operation}: bad response: {e}")))?
        };
        if status.is_success() {
            return Ok(doc);
        }
        let kind = doc
            .get("__type")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .rsplit('#')
            .next()
            .unwrap_or("Unknown")
            .to_string();
        let message = doc
            .get("message")
            .or_else(|| doc.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if status.is_server_error() {
            return Err(AgentError::Network(format!(
                "{operation}: {status} {kind}: {message}"
            )));
        }
        Err(AgentError::Api { kind, message })
    }
}
