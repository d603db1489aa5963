//! The gateway: protocol detection, authentication, decode → validate → service call → encode, and
//! one tracing span plus one completion event per request.
//!
//! Detection order: `X-Amz-Target` → awsJson; `smithy-protocol: rpc-v2-cbor` + `/service/S/operation/O`
//! → RPC v2 CBOR; a form body or an `Action=` query parameter → awsQuery; otherwise the REST routes
//! of restJson services. Every failure is an AWS-style error in the request's protocol carrying
//! `x-amzn-RequestId`; nothing here panics on bad input, and a panicking service becomes a 500.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use opsloop_core::{ApiError, BoxFuture, DecodedOutput, RequestContext, Service, Value};
use tracing::Instrument;

use crate::codec::rest_json::Routes;
use crate::codec::{self, cbor, json, query, rest_json, DecodeError, InflateError};
use crate::error;
use crate::model::{Model, ModelError, Operation, Protocol};
use crate::sigv4;
use crate::validate::validate;

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

    /// Whether the (authenticated) holder of `access_key_id` may call `operation` of the service
    /// whose model `serviceId` is `service_id`. Restricted principals (e.g. a managed node's own
    /// key) answer false for everything outside their allow-list, and the gateway refuses the
    /// request with `AccessDeniedException` before decoding it. Default: everything.
    fn permits(&self, _access_key_id: &str, _service_id: &str, _operation: &str) -> bool {
        true
    }
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

/// Region used when a request carries no credential scope (`AnyKey` mode only).
const DEFAULT_REGION: &str = "us-east-1";

struct Registered {
    service: Arc<dyn Service>,
    model: Model,
    routes: Option<Routes>,
}

/// Serves every registered service on one endpoint.
pub struct Gateway {
    config: GatewayConfig,
    creds: Arc<dyn CredentialStore>,
    services: Vec<Registered>,
    /// awsJson `X-Amz-Target` prefixes.
    by_target: HashMap<String, usize>,
    /// RPC v2 CBOR `/service/<name>/` names (target prefix, and service id without spaces).
    by_cbor_name: HashMap<String, usize>,
    /// SigV4 signing names.
    by_signing: HashMap<String, usize>,
    /// awsQuery actions → query-speaking services that have them.
    by_action: HashMap<String, Vec<usize>>,
    route_keys: HashMap<String, usize>,
}

/// What protocol detection found.
enum Detected<'a> {
    Json { prefix: &'a str, op: &'a str },
    Cbor { service: &'a str, op: &'a str },
    Query,
    Rest { svc: usize, op: usize },
    Nothing,
}

impl Detected<'_> {
    fn protocol(&self) -> Protocol {
        match self {
            Detected::Json { .. } => Protocol::Json,
            Detected::Cbor { .. } => Protocol::RpcV2Cbor,
            Detected::Query => Protocol::Query,
            Detected::Rest { .. } | Detected::Nothing => Protocol::RestJson,
        }
    }
}

/// Fields of the per-request log event.
struct Outcome {
    service: Option<usize>,
    operation: Option<String>,
    account: Option<String>,
}

/// The caller, after authentication.
struct Caller {
    account: String,
    region: String,
    access_key: Option<String>,
    scope_service: Option<String>,
}

impl Gateway {
    pub fn new(config: GatewayConfig, creds: Arc<dyn CredentialStore>) -> Self {
        Gateway {
            config,
            creds,
            services: Vec::new(),
            by_target: HashMap::new(),
            by_cbor_name: HashMap::new(),
            by_signing: HashMap::new(),
            by_action: HashMap::new(),
            route_keys: HashMap::new(),
        }
    }

    /// Register a service; parses its model. Fails if the model is malformed or collides with a
    /// registered service (same target prefix, signing name or REST route).
    pub fn register(&mut self, service: Arc<dyn Service>) -> Result<(), ModelError> {
        let model = Model::parse(service.model_json())?;
        let md = &model.metadata;
        let idx = self.services.len();
        let conflict = |what: &str, key: &str| {
            ModelError::Conflict(format!(
                "{} {what} {key:?} is already registered",
                md.service_id
            ))
        };

        if self
            .services
            .iter()
            .any(|r| r.model.metadata.service_id == md.service_id)
        {
            return Err(conflict("serviceId", &md.service_id));
        }
        let rpc = md.speaks(Protocol::Json) || md.speaks(Protocol::RpcV2Cbor);
        let target = md.target_prefix.clone().filter(|_| rpc);
        if let Some(t) = &target {
            if self.by_target.contains_key(t) {
                return Err(conflict("target prefix", t));
            }
        }
        let signing = md.signing_name().to_string();
        if self.by_signing.contains_key(&signing) {
            return Err(conflict("signing name", &signing));
        }
        let routes = if md.speaks(Protocol::RestJson) {
            Some(Routes::build(&model)?)
        } else {
            None
        };
        // REST routes may be shared between services (Scheduler and Incident Manager both have
        // `GET /tags/{resourceArn}`): the request's SigV4 credential scope chooses among them.
        let keys: Vec<String> = routes.iter().flat_map(|r| r.keys()).collect();

        if let Some(t) = target {
            self.by_target.insert(t.clone(), idx);
            self.by_cbor_name.insert(t, idx);
            self.by_cbor_name
                .entry(md.service_id.replace(' ', ""))
                .or_insert(idx);
        }
        self.by_signing.insert(signing, idx);
        if md.speaks(Protocol::Query) {
            for op in model.operations() {
                self.by_action.entry(op.name.clone()).or_default().push(idx);
            }
        }
        for k in keys {
            self.route_keys.entry(k).or_insert(idx);
        }
        tracing::info!(service = %md.service_id, operations = model.operations().len(), "service registered");
        self.services.push(Registered {
            service,
            model,
            routes,
        });
        Ok(())
    }

    /// The largest request body any registered service accepts (the configured default, or a
    /// service's own larger limit): the bound a listener should read bodies up to.
    pub fn max_body_bytes(&self) -> usize {
        self.services
            .iter()
            .filter_map(|r| r.service.max_request_bytes())
            .fold(self.config.max_body_bytes, usize::max)
    }

    /// `(serviceId, service)` of every registered service, e.g. `("CloudWatch", ...)`.
    pub fn services(&self) -> Vec<(String, Arc<dyn Service>)> {
        self.services
            .iter()
            .map(|r| (r.model.metadata.service_id.clone(), r.service.clone()))
            .collect()
    }

    /// Handle one request whose body has been read in full. Never panics on bad input: every failure
    /// is an AWS-style error response in the request's protocol, carrying `x-amzn-RequestId`.
    /// Emits one `tracing` span per request (its request_id: on every line logged inside it) and
    /// one completion event (service, operation, request_id, account, status, latency).
    pub async fn handle(&self, req: http::Request<Bytes>) -> http::Response<Bytes> {
        let started = Instant::now();
        let request_id = new_request_id();
        // Only the request id is known before the request is processed. Service, operation and
        // account are fields of the completion event, not recorded into the span afterwards: the
        // span's fields are formatted on every record, and nothing but that event is logged in
        // it once processing is over.
        let span = tracing::info_span!("request", request_id = request_id.as_str());
        let mut outcome = Outcome {
            service: None,
            operation: None,
            account: None,
        };
        let (parts, body) = req.into_parts();
        let mut resp = self
            .process(&parts, body, &request_id, &mut outcome)
            .instrument(span.clone())
            .await;
        if !resp.headers().contains_key("x-amzn-requestid") {
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                resp.headers_mut().insert("x-amzn-RequestId", v);
            }
        }
        let service = outcome
            .service
            .and_then(|i| self.services.get(i))
            .map_or("-", |r| r.model.metadata.service_id.as_str());
        let operation = outcome.operation.as_deref().unwrap_or("-");
        let account = outcome.account.as_deref().unwrap_or("-");
        // one line per request: errors where an operator looks (server errors at WARN, client
        // errors at INFO), successes at DEBUG — formatting and writing a line for every
        // successful call costs a few per cent of the server's CPU at high request rates
        let status = resp.status().as_u16();
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        macro_rules! completed {
            ($level:expr) => {
                tracing::event!(
                    parent: &span,
                    $level,
                    service,
                    operation,
                    request_id = %request_id,
                    account,
                    status,
                    latency_us,
                    "request completed"
                )
            };
        }
        match status {
            500.. => completed!(tracing::Level::WARN),
            400..=499 => completed!(tracing::Level::INFO),
            _ => completed!(tracing::Level::DEBUG),
        }
        resp
    }

    fn error(
        &self,
        protocol: Protocol,
        svc: Option<usize>,
        err: &ApiError,
        request_id: &str,
    ) -> http::Response<Bytes> {
        let model = svc.and_then(|i| self.services.get(i)).map(|r| &r.model);
        error::render(protocol, model, err, request_id)
    }

    fn detect<'a>(
        &self,
        parts: &'a http::request::Parts,
        uri_params: &query::Params<'_>,
    ) -> Detected<'a> {
        let headers = &parts.headers;
        if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            let (prefix, op) = target.rsplit_once('.').unwrap_or((target, ""));
            return Detected::Json { prefix, op };
        }
        if headers
            .get("smithy-protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("rpc-v2-cbor"))
        {
            let path = parts.uri.path();
            let (service, op) = path
                .rsplit_once("/operation/")
                .and_then(|(before, op)| before.rsplit_once("/service/").map(|(_, svc)| (svc, op)))
                .unwrap_or(("", ""));
            return Detected::Cbor { service, op };
        }
        let form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if form || query::param(uri_params, "Action").is_some() {
            return Detected::Query;
        }
        let method = parts.method.as_str();
        let route = |i: usize| {
            self.services[i]
                .routes
                .as_ref()
                .and_then(|routes| routes.find(method, parts.uri.path(), uri_params))
        };
        // A route several services share goes to the one the request was signed for.
        if let Some(&i) = scope_service_hint(parts, uri_params).and_then(|s| self.by_signing.get(s))
        {
            if let Some(op) = route(i) {
                return Detected::Rest { svc: i, op };
            }
        }
        for i in 0..self.services.len() {
            if let Some(op) = route(i) {
                return Detected::Rest { svc: i, op };
            }
        }
        Detected::Nothing
    }

    async fn process(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        rid: &str,
        outcome: &mut Outcome,
    ) -> http::Response<Bytes> {
        // A query string that is not UTF-8 only matters to protocols that read it.
        let (uri_params, uri_malformed) =
            match query::parse_form(parts.uri.query().unwrap_or("").as_bytes()) {
                Ok(p) => (p, false),
                Err(_) => (Vec::new(), true),
            };
        let detected = self.detect(parts, &uri_params);
        let protocol = detected.protocol();
        if uri_malformed && matches!(protocol, Protocol::Query | Protocol::RestJson) {
            let err = ApiError::new(
                "MalformedQueryString",
                "The query string contains invalid UTF-8.",
            );
            return self.error(protocol, None, &err, rid);
        }

        // The service, where detection alone tells (query needs the parameters, below).
        let mut svc = match &detected {
            Detected::Json { prefix, .. } => self.by_target.get(*prefix).copied(),
            Detected::Cbor { service, .. } => self.by_cbor_name.get(*service).copied(),
            Detected::Rest { svc, .. } => Some(*svc),
            Detected::Query | Detected::Nothing => None,
        };
        outcome.service = svc;

        let body_limit = svc
            .and_then(|i| self.services.get(i))
            .and_then(|r| r.service.max_request_bytes())
            .unwrap_or(self.config.max_body_bytes);
        if body.len() > body_limit {
            let err = ApiError::with_status(
                "RequestEntityTooLarge",
                413,
                format!("Request size {} exceeded {} bytes", body.len(), body_limit),
            );
            return self.error(protocol, svc, &err, rid);
        }

        let caller = match self.authenticate(parts, &body) {
            Ok(c) => c,
            Err(err) => return self.error(protocol, svc, &err, rid),
        };
        outcome.account = Some(caller.account.clone());

        let body: Cow<'_, [u8]> = match self.inflate(parts, &body) {
            Ok(b) => b,
            Err(err) => return self.error(protocol, svc, &err, rid),
        };

        // Resolve service and operation.
        let mut query_params: Option<query::Params<'_>> = None;
        let op: &Operation = match &detected {
            Detected::Nothing => {
                let err = ApiError::with_status(
                    "UnknownOperationException",
                    404,
                    format!(
                        "No service operation matches {} {}",
                        parts.method,
                        parts.uri.path()
                    ),
                );
                return self.error(protocol, None, &err, rid);
            }
            Detected::Json { op, .. } | Detected::Cbor { op, .. } => {
                let found = svc
                    .and_then(|i| self.services.get(i))
                    .and_then(|r| r.model.operation(op));
                match found {
                    Some(o) => o,
                    None => {
                        let err = ApiError::new(
                            "UnknownOperationException",
                            format!("Unknown operation {op:?}"),
                        );
                        return self.error(protocol, svc, &err, rid);
                    }
                }
            }
            Detected::Rest { svc: i, op } => match self
                .services
                .get(*i)
                .and_then(|r| r.model.operations().get(*op))
            {
                Some(o) => o,
                None => return self.error(protocol, svc, &ApiError::internal(), rid),
            },
            Detected::Query => {
                let mut params = uri_params.clone();
                if parts.method != http::Method::GET {
                    match query::parse_form(&body) {
                        Ok(p) => params.extend(p),
                        Err(_) => {
                            let err = ApiError::new(
                                "MalformedQueryString",
                                "The request body contains invalid UTF-8.",
                            );
                            return self.error(protocol, None, &err, rid);
                        }
                    }
                }
                let Some(action) = query::param(&params, "Action").map(str::to_string) else {
                    let err = ApiError::new(
                        "MissingAction",
                        "The request must contain the parameter Action.",
                    );
                    return self.error(protocol, None, &err, rid);
                };
                svc = self.query_service(&caller, &action);
                outcome.service = svc;
                let found = svc
                    .and_then(|i| self.services.get(i))
                    .and_then(|r| r.model.operation(&action));
                let Some(o) = found else {
                    let err = ApiError::new(
                        "InvalidAction",
                        format!("The action {action} is not valid for this web service."),
                    );
                    return self.error(protocol, svc, &err, rid);
                };
                query_params = Some(params);
                o
            }
        };
        outcome.operation = Some(op.name.clone());
        let Some(reg) = svc.and_then(|i| self.services.get(i)) else {
            return self.error(protocol, None, &ApiError::internal(), rid);
        };
        if !reg.model.metadata.speaks(protocol) {
            let err = ApiError::new(
                if protocol == Protocol::Query {
                    "InvalidAction"
                } else {
                    "UnknownOperationException"
                },
                format!(
                    "{} does not support the {} protocol",
                    reg.model.metadata.service_id,
                    protocol.model_name()
                ),
            );
            return self.error(protocol, svc, &err, rid);
        }

        if matches!(self.config.auth, AuthMode::SigV4) {
            if let Some(key) = caller.access_key.as_deref() {
                if !self
                    .creds
                    .permits(key, &reg.model.metadata.service_id, &op.name)
                {
                    let err = ApiError::with_status(
                        "AccessDeniedException",
                        400,
                        format!(
                            "The access key {key} is not authorized to perform {}:{}.",
                            reg.model.metadata.service_id, op.name
                        ),
                    );
                    return self.error(protocol, svc, &err, rid);
                }
            }
        }

        let ctx = RequestContext {
            request_id: rid.to_string(),
            account_id: caller.account,
            region: caller.region,
            access_key_id: caller.access_key,
            operation: op.name.clone(),
            received_at: SystemTime::now(),
        };

        // The service's own decoder for a bulk operation (awsJson bodies are the input document's
        // JSON text). It answers only for inputs the generic decode and validation below accept,
        // so every error still comes from the generic path. Its answer may be the output's JSON
        // text, sent as the body unchanged (`DecodedOutput::Json`).
        if protocol == Protocol::Json {
            if let Some(input) = reg.service.decode_json_input(&op.name, &body) {
                let service = reg.service.as_ref();
                let called = call_guarded(|| service.call_decoded(&ctx, input)).await;
                return self.answer(reg, op, protocol, svc, called, rid);
            }
        }

        // Decode and validate.
        let decoded = match protocol {
            Protocol::Json => json::decode(&reg.model, op, &body),
            Protocol::RpcV2Cbor => cbor::decode(&reg.model, op, &body),
            Protocol::Query => {
                query::decode_params(&reg.model, op, query_params.as_ref().unwrap_or(&uri_params))
            }
            _ => rest_json::decode(&reg.model, op, parts, &body),
        };
        let input = match decoded {
            Ok(v) => v,
            Err(DecodeError::Malformed(msg)) => {
                let kind = if protocol == Protocol::Query {
                    "MalformedQueryString"
                } else {
                    "SerializationException"
                };
                return self.error(protocol, svc, &ApiError::new(kind, msg), rid);
            }
            Err(DecodeError::Invalid(f)) => {
                return self.error(protocol, svc, &reg.service.validation_error(&f), rid)
            }
        };
        if let Some(shape) = op.input {
            if let Err(f) = validate(&reg.model, shape, &input) {
                return self.error(protocol, svc, &reg.service.validation_error(&f), rid);
            }
        }

        // Call the service.
        let service = reg.service.as_ref();
        let called = call_guarded(|| service.call(&ctx, input))
            .await
            .map(|r| r.map(DecodedOutput::Doc));
        self.answer(reg, op, protocol, svc, called, rid)
    }

    /// The response to a service call's outcome (`Err(())`: the service panicked).
    fn answer(
        &self,
        reg: &Registered,
        op: &Operation,
        protocol: Protocol,
        svc: Option<usize>,
        called: Result<Result<DecodedOutput, ApiError>, ()>,
        rid: &str,
    ) -> http::Response<Bytes> {
        match called {
            Ok(Ok(DecodedOutput::Doc(output))) => encode(&reg.model, op, protocol, &output, rid),
            Ok(Ok(DecodedOutput::Json(text))) if protocol == Protocol::Json => {
                json_answer(&reg.model, text, rid)
            }
            Ok(Ok(DecodedOutput::Json(_))) => {
                tracing::error!(service = %reg.model.metadata.service_id, operation = %op.name, ?protocol, "JSON text answered to a request of another protocol");
                self.error(protocol, svc, &ApiError::internal(), rid)
            }
            Ok(Err(err)) => self.error(protocol, svc, &err, rid),
            Err(()) => {
                tracing::error!(service = %reg.model.metadata.service_id, operation = %op.name, "service panicked");
                self.error(protocol, svc, &ApiError::internal(), rid)
            }
        }
    }

    fn query_service(&self, caller: &Caller, action: &str) -> Option<usize> {
        if let Some(s) = &caller.scope_service {
            if let Some(&i) = self.by_signing.get(s) {
                return Some(i);
            }
        }
        match self.by_action.get(action).map(Vec::as_slice) {
            Some([only]) => Some(*only),
            _ => None,
        }
    }

    fn authenticate(&self, parts: &http::request::Parts, body: &[u8]) -> Result<Caller, ApiError> {
        let auth_error = |e: sigv4::SigV4Error| {
            let (code, status) = e.code();
            ApiError::with_status(code, status, e.to_string())
        };
        match self.config.auth {
            AuthMode::SigV4 => {
                let creds = &self.creds;
                let lookup = |ak: &str| creds.lookup(ak);
                let (scope, c) =
                    sigv4::verify(parts, body, &lookup, SystemTime::now()).map_err(auth_error)?;
                Ok(Caller {
                    account: c.account_id,
                    region: scope.region,
                    access_key: Some(scope.access_key_id),
                    scope_service: Some(scope.service),
                })
            }
            AuthMode::AnyKey => match sigv4::parse_scope(parts) {
                None => Ok(Caller {
                    account: self.config.default_account.clone(),
                    region: DEFAULT_REGION.to_string(),
                    access_key: None,
                    scope_service: None,
                }),
                Some(Ok(scope)) => Ok(Caller {
                    account: self.config.default_account.clone(),
                    region: scope.region,
                    access_key: Some(scope.access_key_id),
                    scope_service: Some(scope.service),
                }),
                Some(Err(e)) => Err(auth_error(e)),
            },
        }
    }

    /// The body after `Content-Encoding` (gzip, bounded; identity passes through).
    fn inflate<'b>(
        &self,
        parts: &http::request::Parts,
        body: &'b [u8],
    ) -> Result<Cow<'b, [u8]>, ApiError> {
        let Some(enc) = parts.headers.get(CONTENT_ENCODING) else {
            return Ok(Cow::Borrowed(body));
        };
        let enc = enc.to_str().unwrap_or("?");
        let mut gzip = false;
        for token in enc.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token.to_ascii_lowercase().as_str() {
                "identity" => {}
                "gzip" | "x-gzip" if !gzip => gzip = true,
                _ => {
                    return Err(ApiError::with_status(
                        "UnsupportedMediaType",
                        415,
                        format!("Unsupported Content-Encoding {enc:?}"),
                    ));
                }
            }
        }
        if !gzip {
            return Ok(Cow::Borrowed(body));
        }
        match codec::gunzip_bounded(body, self.config.max_decompressed_bytes) {
            Ok(b) => Ok(Cow::Owned(b)),
            Err(InflateError::TooLarge) => Err(ApiError::with_status(
                "RequestEntityTooLarge",
                413,
                format!(
                    "Decompressed request size exceeded {} bytes",
                    self.config.max_decompressed_bytes
                ),
            )),
            Err(InflateError::Corrupt(e)) => Err(ApiError::new(
                "InvalidContentEncoding",
                format!("The request body is not valid gzip: {e}"),
            )),
        }
    }
}

/// Encode a successful output in `protocol`.
fn encode(
    model: &Model,
    op: &Operation,
    protocol: Protocol,
    output: &Value,
    rid: &str,
) -> http::Response<Bytes> {
    if protocol == Protocol::Json {
        return json_answer(model, json::encode_output(model, op, output), rid);
    }
    let mut b = http::Response::builder().header("x-amzn-RequestId", rid);
    let body = match protocol {
        Protocol::RpcV2Cbor => {
            let body = cbor::encode_output(model, op, output);
            b = b.status(200).header("smithy-protocol", "rpc-v2-cbor");
            if !body.is_empty() {
                b = b.header(CONTENT_TYPE, "application/cbor");
            }
            body
        }
        Protocol::Query => {
            b = b.status(200).header(CONTENT_TYPE, "text/xml");
            query::encode_output(model, op, output, rid).into_bytes()
        }
        _ => {
            let r = rest_json::encode_output(model, op, output);
            b = b.status(r.status);
            if let Some(ct) = r.content_type {
                b = b.header(CONTENT_TYPE, ct);
            }
            for (k, v) in r.headers {
                b = b.header(k, v);
            }
            r.body
        }
    };
    b.body(Bytes::from(body))
        .unwrap_or_else(|_| error::render(protocol, Some(model), &ApiError::internal(), rid))
}

/// The awsJson success response carrying `body`, the output document's JSON text (encoded here,
/// or written by the service itself: see [`DecodedOutput`]).
fn json_answer(model: &Model, body: Vec<u8>, rid: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .header("x-amzn-RequestId", rid)
        .status(200)
        .header(CONTENT_TYPE, error::json_content_type(Some(model)))
        .body(Bytes::from(body))
        .unwrap_or_else(|_| error::render(Protocol::Json, Some(model), &ApiError::internal(), rid))
}

/// Run a service call, turning a panic (while building or polling its future) into `Err(())`.
async fn call_guarded<'a, T>(
    start: impl FnOnce() -> BoxFuture<'a, Result<T, ApiError>>,
) -> Result<Result<T, ApiError>, ()> {
    let fut = std::panic::catch_unwind(AssertUnwindSafe(start)).map_err(|_| ())?;
    CatchUnwind(fut).await
}

struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// A random UUID-v4-formatted request id.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 hex digits, written straight into the string (no intermediate strings)
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// The service named in the request's SigV4 credential scope (`Credential=AK/date/region/SERVICE/
/// aws4_request`, from the `Authorization` header or a presigned URL's `X-Amz-Credential`), without
/// verifying anything: only a routing hint for REST paths that several services share.
fn scope_service_hint<'p>(
    parts: &'p http::request::Parts,
    uri_params: &'p query::Params<'_>,
) -> Option<&'p str> {
    let credential = match parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => {
            let start = auth.find("Credential=")? + "Credential=".len();
            let rest = &auth[start..];
            &rest[..rest.find([',', ' ']).unwrap_or(rest.len())]
        }
        None => query::param(uri_params, "X-Amz-Credential")?,
    };
    credential.split('/').nth(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(a.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
    }
}
