//! The gateway: protocol detection, authentication, decode → service call → encode, request spans.
//! (SKELETON: public API fixed; implementation pending.)

use std::sync::Arc;

use bytes::Bytes;
use opsloop_core::Service;

use crate::model::ModelError;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Full SigV4 verification against the [`CredentialStore`].
    SigV4,
    /// Any well-formed SigV4 `Authorization` header (or none) is accepted and mapped to the default
    /// account; the signature is not checked. The server refuses this mode unless it listens on loopback.
    AnyKey,
}

/// A key pair and the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
}

/// Where the gateway finds the secret for an access key id.
pub trait CredentialStore: Send + Sync + 'static {
    fn lookup(&self, access_key_id: &str) -> Option<Credentials>;
}

/// Gateway-wide settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub auth: AuthMode,
    /// Account used in `AnyKey` mode.
    pub default_account: String,
    /// Largest request body accepted before decompression, in bytes (AWS-style error above it).
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression, in bytes.
    pub max_decompressed_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            auth: AuthMode::SigV4,
            default_account: "000000000000".to_string(),
            max_body_bytes: 1024 * 1024,
            max_decompressed_bytes: 40 * 1024 * 1024,
        }
    }
}

/// Serves every registered service on one endpoint.
pub struct Gateway {
    _config: GatewayConfig,
    _creds: Arc<dyn CredentialStore>,
}

impl Gateway {
    pub fn new(config: GatewayConfig, creds: Arc<dyn CredentialStore>) -> Self {
        Gateway { _config: config, _creds: creds }
    }

    /// Register a service; parses its model. Fails if the model is malformed or collides with a
    /// registered service (same target prefix, signing name or REST route).
    pub fn register(&mut self, service: Arc<dyn Service>) -> Result<(), ModelError> {
        let _ = service;
        todo!()
    }

    /// `(serviceId, service)` of every registered service, e.g. `("CloudWatch", ...)`.
    pub fn services(&self) -> Vec<(String, Arc<dyn Service>)> {
        todo!()
    }

    /// Handle one request whose body has been read in full. Never panics on bad input: every failure
    /// is an AWS-style error response in the request's protocol, carrying `x-amzn-RequestId`.
    /// Emits one `tracing` span per request (service, operation, request_id, account, status, latency).
    pub async fn handle(&self, req: http::Request<Bytes>) -> http::Response<Bytes> {
        let _ = req;
        todo!()
    }
}
