//! Types shared by the wire layer and every service: the request context, the API error a service
//! returns, and the [`Service`] trait the wire layer dispatches to.
//!
//! Architecture invariant: this crate knows no wire format (no HTTP, XML, CBOR or JSON envelopes) and
//! does no I/O. A service receives its input as a protocol-neutral document (see [`Service::call`]).

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

pub use serde_json::Value;

/// A boxed, sendable future, so [`Service`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An operation input a service decoded itself from the input document's JSON text (see
/// [`Service::decode_json_input`]); only that service knows its concrete type.
pub type DecodedInput = Box<dyn std::any::Any + Send>;

/// The output of [`Service::call_decoded`]: the output document, or its JSON text.
///
/// `Json` lets a bulk operation's fast path write its answer straight into the response body,
/// skipping the document tree and the wire layer's model walk. Contract: the text is one JSON
/// object that a JSON parser cannot tell from what the generic path (the wire layer's awsJson
/// encoding of the same output document) would send — the same members with the same values
/// (member order and insignificant whitespace may differ); members of the document that the
/// model does not list, or that are null, are left out, as the generic encoding leaves them out.
/// The gateway sends it unchanged as the awsJson response body, with the status and headers of an
/// encoded answer (200, the service's JSON content type, `x-amzn-RequestId`). Only awsJson
/// requests reach [`Service::call_decoded`], so the text never needs another protocol's form.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedOutput {
    /// The output document, encoded by the wire layer as for [`Service::call`].
    Doc(Value),
    /// The JSON text of the output document (see the contract above).
    Json(Vec<u8>),
}

impl From<Value> for DecodedOutput {
    fn from(v: Value) -> Self {
        DecodedOutput::Doc(v)
    }
}

impl DecodedOutput {
    /// The output as a document (the JSON text parsed; `Null` if it is not JSON, a service bug).
    /// For tests and internal callers; the gateway sends `Json` as it is.
    pub fn into_value(self) -> Value {
        match self {
            DecodedOutput::Doc(v) => v,
            DecodedOutput::Json(text) => serde_json::from_slice(&text).unwrap_or(Value::Null),
        }
    }
}

/// Who is calling and where: filled in by the wire layer after authentication.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `x-amzn-RequestId` of this request.
    pub request_id: String,
    /// The account the caller's credentials map to (12 digits).
    pub account_id: String,
    /// The region named by the request's credential scope (any name is accepted).
    pub region: String,
    /// The access key id that signed the request, if any.
    pub access_key_id: Option<String>,
    /// Operation name as in the service model, e.g. `PutMetricData`.
    pub operation: String,
    /// Time the request was received.
    pub received_at: SystemTime,
}

impl RequestContext {
    /// A context for tests and internal callers.
    pub fn internal(account_id: &str, region: &str, operation: &str) -> Self {
        RequestContext {
            request_id: INTERNAL_REQUEST_ID.to_string(),
            account_id: account_id.to_string(),
            region: region.to_string(),
            access_key_id: None,
            operation: operation.to_string(),
            received_at: SystemTime::now(),
        }
    }

    /// Whether this call comes from another opsloop service in this process (made with
    /// [`RequestContext::internal`], e.g. through the [`Directory`]) rather than from the wire.
    /// Internal callers may do what AWS reserves for AWS itself, such as publishing metrics in an
    /// `AWS/` namespace.
    pub fn is_internal(&self) -> bool {
        self.request_id == INTERNAL_REQUEST_ID
    }
}

/// The request id of [`RequestContext::internal`] contexts; the wire layer never generates it.
const INTERNAL_REQUEST_ID: &str = "internal";

/// An error a service (or the wire layer) answers with.
///
/// `kind` is the name of the modelled exception shape (e.g. `InvalidParameterValueException`); the wire
/// layer looks it up in the service model to find the wire error code (e.g. `InvalidParameterValue`)
/// and HTTP status. For kinds the model does not list (auth errors, `ValidationException`, ...), the code
/// is `kind` itself and the status is `status` (400 when `None`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    pub kind: String,
    pub message: String,
    pub status: Option<u16>,
}

impl ApiError {
    /// An error of a modelled (or well-known) kind with a message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            kind: kind.into(),
            message: message.into(),
            status: None,
        }
    }
    /// An error with an explicit HTTP status (for kinds the model does not carry).
    pub fn with_status(kind: impl Into<String>, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            kind: kind.into(),
            message: message.into(),
            status: Some(status),
        }
    }
    /// A 500 that reveals nothing internal. Log the cause before returning it.
    pub fn internal() -> Self {
        ApiError::with_status(
            "InternalFailure",
            500,
            "We encountered an internal error. Please try again.",
        )
    }
}

/// What the wire layer found wrong with an input before the service saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidationFailure {
    /// A required member is absent. `path` is the member path, e.g. `MetricData.member.1.MetricName`.
    Missing { path: String },
    /// A value is not of the modelled type or violates a modelled constraint
    /// (enum, length, range, pattern). `reason` is a human sentence.
    Invalid { path: String, reason: String },
}

/// Readiness of one service, for `GET /_opsloop/health`.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub ready: bool,
    pub detail: Option<String>,
}

/// A service: domain logic behind one AWS API.
///
/// The input and output documents are protocol-neutral JSON trees typed by the service model:
/// structures are objects keyed by member name, lists are arrays, maps are objects, numbers are
/// numbers, booleans are booleans, **timestamps are numbers of seconds since the epoch** (fractional
/// allowed) and blobs are base64 strings. The wire layer converts every protocol to and from this form.
pub trait Service: Send + Sync + 'static {
    /// The botocore `service-2.json` model of this service (documentation may be stripped).
    fn model_json(&self) -> &'static str;

    /// Run one operation. `ctx.operation` names it.
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>>;

    /// A fast path for bulk operations: decode `operation`'s input straight from the JSON text of
    /// its input document (for awsJson requests, the verified and inflated request body) into the
    /// service's own typed form, skipping the generic [`Value`] tree and model walk.
    ///
    /// Contract: answer `Some` only for a text that the generic path (JSON decode, then the
    /// model's type, required-member, length and range validation) accepts, carrying the same
    /// input; answer `None` for anything else, including every input that should fail. On `None`
    /// the caller takes the generic path, so every error answer is the generic one. A `Some` is
    /// passed to [`Service::call_decoded`]. Default: `None` (no fast path).
    fn decode_json_input(&self, _operation: &str, _json: &[u8]) -> Option<DecodedInput> {
        None
    }

    /// Run `ctx.operation` with an input from [`Service::decode_json_input`]. The answer is the
    /// output document or, to skip the generic encoding, its JSON text (see [`DecodedOutput`]
    /// for what that text must be); errors take the normal error path. The default, never
    /// reached while `decode_json_input` answers `None`, is an internal error.
    fn call_decoded<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _input: DecodedInput,
    ) -> BoxFuture<'a, Result<DecodedOutput, ApiError>> {
        Box::pin(async { Err(ApiError::internal()) })
    }

    /// Map a model-level validation failure to this service's error (default: `ValidationException`).
    fn validation_error(&self, failure: &ValidationFailure) -> ApiError {
        match failure {
            ValidationFailure::Missing { path } => ApiError::new(
                "ValidationException",
                format!("1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null"),
            ),
            ValidationFailure::Invalid { path, reason } => ApiError::new(
                "ValidationException",
                format!("1 validation error detected: Value at '{path}' failed to satisfy constraint: {reason}"),
            ),
        }
    }

    /// The largest request body (as received, before decompression) this service accepts, in bytes,
    /// where AWS sets one above the gateway's default (e.g. a full `PutLogEvents` batch is 1 MiB of
    /// events plus its JSON envelope). `None`: the gateway's configured default applies.
    fn max_request_bytes(&self) -> Option<usize> {
        None
    }

    /// Readiness for the health endpoint.
    fn health(&self) -> Health {
        Health {
            ready: true,
            detail: None,
        }
    }
}

/// Services of this process by `serviceId` (e.g. `"SNS"`, `"CloudWatch"`), for in-process calls
/// between services (an alarm publishing to SNS, a rule starting an automation) without any wire
/// format and without one service crate depending on another. Filled once at startup; services hold
/// an `Arc<Directory>` and look peers up when they need them.
#[derive(Default)]
pub struct Directory {
    services: std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<dyn Service>>>,
}

impl Directory {
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Directory::default())
    }

    /// Register `service` under its `serviceId`.
    pub fn insert(&self, service_id: &str, service: std::sync::Arc<dyn Service>) {
        if let Ok(mut map) = self.services.write() {
            map.insert(service_id.to_string(), service);
        }
    }

    pub fn get(&self, service_id: &str) -> Option<std::sync::Arc<dyn Service>> {
        self.services
            .read()
            .ok()
            .and_then(|m| m.get(service_id).cloned())
    }

    /// Call `operation` of the service `service_id` as `account`/`region`, with a protocol-neutral
    /// input document. Fails with `ServiceUnavailable`-kind error when the service is not present.
    pub async fn invoke(
        &self,
        service_id: &str,
        account_id: &str,
        region: &str,
        operation: &str,
        input: Value,
    ) -> Result<Value, ApiError> {
        let Some(service) = self.get(service_id) else {
            return Err(ApiError::with_status(
                "ServiceUnavailable",
                503,
                format!("service {service_id} is not available in this opsloop process"),
            ));
        };
        let ctx = RequestContext::internal(account_id, region, operation);
        service.call(&ctx, input).await
    }
}
