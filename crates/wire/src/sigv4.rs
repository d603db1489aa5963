//! AWS Signature Version 4: verification of incoming requests (header and presigned-query forms) and
//! signing (for tests, tools and load generators).
//!
//! Verification follows AWS's specification as botocore implements the client side, so a request
//! signed by botocore (and the other SDKs) verifies (the `canonical` submodule documents exactly
//! what is canonicalized and how).
//! The canonical request and string to sign are streamed into SHA-256 / HMAC without building
//! strings; derived signing keys are kept in a small bounded cache; signatures are compared in
//! constant time. Checks run in AWS's order, and errors carry AWS's wording where it is known:
//!
//! 1. shape of the `Authorization` header / presigned parameters and presence of a date
//!    ([`SigV4Error::Incomplete`]);
//! 2. date format, credential shape, scope terminator and date, `host` signed;
//! 3. clock: ±15 minutes for the header form, `X-Amz-Expires` for presigned URLs
//!    ([`SigV4Error::Expired`]);
//! 4. access key known ([`SigV4Error::UnknownKey`]);
//! 5. payload hash (`x-amz-content-sha256` must match the body when it is a hash) and signature
//!    ([`SigV4Error::Mismatch`]).

mod canonical;
mod clock;
mod parse;

use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, DATE, HOST};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::dispatch::Credentials;

pub use parse::{parse_authorization, parse_credential, AuthorizationHeader, CredentialScope};

use canonical::{Canonical, Sink};
use clock::Stamp;
use parse::{Form, Parsed};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The canonical payload of requests whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Largest accepted difference between a header-form request's timestamp and the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// Largest `X-Amz-Expires` of a presigned URL (7 days).
pub const MAX_PRESIGNED_EXPIRES: i64 = 604_800;
/// [`SigV4Error::Missing`] message for most protocols.
pub const MISSING_TOKEN_MESSAGE: &str = "Missing Authentication Token";
/// [`SigV4Error::Missing`] message for awsQuery services.
pub const MISSING_TOKEN_MESSAGE_QUERY: &str = "Request is missing Authentication Token";
/// [`SigV4Error::UnknownKey`] message.
pub const UNKNOWN_KEY_MESSAGE: &str = "The security token included in the request is invalid.";
/// [`SigV4Error::Mismatch`] message for a wrong signature.
pub const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// [`SigV4Error::Expired`] message for a presigned URL past its `X-Amz-Expires`.
pub const PRESIGNED_EXPIRED_MESSAGE: &str = "Request has expired";

const CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_DATE: &str = "x-amz-date";
const SECURITY_TOKEN: &str = "x-amz-security-token";

/// Headers botocore never signs.
const UNSIGNABLE_HEADERS: [&str; 11] = [
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// The credential scope of a request (`AKID/20260101/us-east-1/monitoring/aws4_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    /// The signing name, e.g. `monitoring`.
    pub service: String,
}

impl From<CredentialScope<'_>> for Scope {
    fn from(c: CredentialScope<'_>) -> Self {
        Scope {
            access_key_id: c.access_key_id.to_string(),
            date: c.date.to_string(),
            region: c.region.to_string(),
            service: c.service.to_string(),
        }
    }
}

/// Why a request failed authentication. Each maps to AWS's error code (see [`SigV4Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned query: `MissingAuthenticationToken` (403).
    #[error("{0}")]
    Missing(String),
    /// Malformed or partial authorization: `IncompleteSignature` (400).
    #[error("{0}")]
    Incomplete(String),
    /// Unknown access key: `InvalidClientTokenId` (403).
    #[error("{0}")]
    UnknownKey(String),
    /// Signature mismatch: `SignatureDoesNotMatch` (403).
    #[error("{0}")]
    Mismatch(String),
    /// Outside the ±15-minute window (`Signature expired: ...` / `Signature not yet current: ...`)
    /// or past a presigned URL's `X-Amz-Expires` (`Request has expired`): `RequestExpired` (400).
    #[error("{0}")]
    Expired(String),
}

impl SigV4Error {
    /// `(AWS error code, HTTP status)`.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            SigV4Error::Missing(_) => ("MissingAuthenticationToken", 403),
            SigV4Error::Incomplete(_) => ("IncompleteSignature", 400),
            SigV4Error::UnknownKey(_) => ("InvalidClientTokenId", 403),
            SigV4Error::Mismatch(_) => ("SignatureDoesNotMatch", 403),
            SigV4Error::Expired(_) => ("RequestExpired", 400),
        }
    }
}

/// Whether a signing name follows S3's rules (path neither normalized nor encoded again; presigned
/// payload `UNSIGNED-PAYLOAD`).
pub fn is_s3_signing_name(service: &str) -> bool {
    service == "s3" || service == "s3express" || service.starts_with("s3-")
}

/// Parse the credential scope from the `Authorization` header or presigned query, without verifying.
/// `None` when the request carries no SigV4 authorization.
///
/// Runs every check that needs neither clock, key nor body, so `Some(Ok(_))` means the authorization
/// is well formed: all parts present, a valid date matching the scope date, a five-element credential
/// ending in `aws4_request`, and `host` signed.
pub fn parse_scope(parts: &http::request::Parts) -> Option<Result<Scope, SigV4Error>> {
    parse::parse_request(parts).map(|r| r.map(|p| Scope::from(p.scope())))
}

/// Verify a request. `body` is the body as received on the wire (before any decompression).
/// `lookup` finds the credentials for an access key id. Constant-time signature comparison.
pub fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    lookup: &dyn Fn(&str) -> Option<Credentials>,
    now: SystemTime,
) -> Result<(Scope, Credentials), SigV4Error> {
    let parsed = match parse::parse_request(parts) {
        Some(parsed) => parsed?,
        None => return Err(SigV4Error::Missing(missing_message(parts).to_string())),
    };
    check_clock(&parsed, clock::unix_secs(now))?;
    let scope = parsed.scope();
    let Some(creds) = lookup(scope.access_key_id) else {
        tracing::debug!(
            access_key_id = scope.access_key_id,
            "sigv4 unknown access key"
        );
        return Err(SigV4Error::UnknownKey(UNKNOWN_KEY_MESSAGE.to_string()));
    };
    let s3 = is_s3_signing_name(scope.service);
    let (payload, alternate) = payload_hash(parts, body, parsed.presigned(), s3)?;
    let key = signing_key(
        &creds.secret_access_key,
        scope.date,
        scope.region,
        scope.service,
    );
    let matches = |payload: &[u8]| {
        let computed =
            compute_signature(&canonical_input(parts, &parsed, s3, payload), &parsed, &key);
        bool::from(computed.ct_eq(parsed.signature.as_bytes()))
    };
    let ok = matches(payload.as_bytes()) || alternate.is_some_and(|alt| matches(alt.as_bytes()));
    if !ok {
        if tracing::enabled!(tracing::Level::TRACE) {
            let c = canonical_input(parts, &parsed, s3, payload.as_bytes());
            let (canonical_request, string_to_sign) = render(&c, &parsed);
            tracing::trace!(%canonical_request, %string_to_sign, "sigv4 signature mismatch");
        }
        tracing::debug!(
            access_key_id = scope.access_key_id,
            "sigv4 signature mismatch"
        );
        return Err(SigV4Error::Mismatch(MISMATCH_MESSAGE.to_string()));
    }
    Ok((Scope::from(scope), creds))
}

/// The canonical request and string to sign the server computes for a request, for diagnostics and
/// tests. Same checks as [`parse_scope`]; the payload is what [`verify`] tries first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// Explain how a request would be verified. `Err(Missing)` when it carries no authorization.
pub fn explain(parts: &http::request::Parts, body: &[u8]) -> Result<Explanation, SigV4Error> {
    let parsed = match parse::parse_request(parts) {
        Some(parsed) => parsed?,
        None => return Err(SigV4Error::Missing(missing_message(parts).to_string())),
    };
    let s3 = is_s3_signing_name(parsed.scope().service);
    let (payload, _) = payload_hash(parts, body, parsed.presigned(), s3)?;
    let (canonical_request, string_to_sign) = render(
        &canonical_input(parts, &parsed, s3, payload.as_bytes()),
        &parsed,
    );
    Ok(Explanation {
        canonical_request,
        string_to_sign,
    })
}

fn missing_message(parts: &http::request::Parts) -> &'static str {
    if parse::looks_like_query_protocol(parts) {
        MISSING_TOKEN_MESSAGE_QUERY
    } else {
        MISSING_TOKEN_MESSAGE
    }
}

fn check_clock(parsed: &Parsed<'_>, now: i64) -> Result<(), SigV4Error> {
    let signed = parsed.stamp.secs;
    if signed > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(SigV4Error::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            parsed.stamp.as_str(),
            Stamp::from_secs(now.saturating_add(MAX_CLOCK_SKEW_SECS)).as_str(),
            Stamp::from_secs(now).as_str()
        )));
    }
    match parsed.form {
        Form::Header if signed < now.saturating_sub(MAX_CLOCK_SKEW_SECS) => {
            Err(SigV4Error::Expired(format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                parsed.stamp.as_str(),
                Stamp::from_secs(now.saturating_sub(MAX_CLOCK_SKEW_SECS)).as_str(),
                Stamp::from_secs(now).as_str()
            )))
        }
        Form::Presigned { expires } if now > signed.saturating_add(expires) => {
            Err(SigV4Error::Expired(PRESIGNED_EXPIRED_MESSAGE.to_string()))
        }
        _ => Ok(()),
    }
}

/// A canonical payload: a hex SHA-256 or a literal such as `UNSIGNED-PAYLOAD`.
enum Payload<'a> {
    Hex([u8; 64]),
    Text(&'a str),
}

impl Payload<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Hex(h) => h,
            Payload::Text(t) => t.as_bytes(),
        }
    }
}

fn sha256_hex(data: &[u8]) -> [u8; 64] {
    hex_lower(&Sha256::digest(data))
}

fn hex_lower(bytes: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // A 32-byte input always fits 64 hex digits.
    let _ = hex::encode_to_slice(bytes, &mut out);
    out
}

/// The canonical payload to try first and, for presigned URLs without `x-amz-content-sha256`, the
/// other convention (S3 presigns `UNSIGNED-PAYLOAD`, botocore's other presigners the body hash).
fn payload_hash<'a>(
    parts: &'a http::request::Parts,
    body: &[u8],
    presigned: bool,
    s3: bool,
) -> Result<(Payload<'a>, Option<Payload<'a>>), SigV4Error> {
    if let Some(v) = parts.headers.get(CONTENT_SHA256) {
        let v = v.to_str().unwrap_or("");
        if v == UNSIGNED_PAYLOAD {
            return Ok((Payload::Text(v), None));
        }
        if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            if !sha256_hex(body).eq_ignore_ascii_case(v.as_bytes()) {
                return Err(SigV4Error::Mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .to_string(),
                ));
            }
            return Ok((Payload::Text(v), None));
        }
        return Err(SigV4Error::Incomplete(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, or a valid sha256 value.".to_string(),
        ));
    }
    if !presigned {
        return Ok((Payload::Hex(sha256_hex(body)), None));
    }
    let unsigned = Payload::Text(UNSIGNED_PAYLOAD);
    let hashed = Payload::Hex(sha256_hex(body));
    Ok(if s3 {
        (unsigned, Some(hashed))
    } else {
        (hashed, Some(unsigned))
    })
}

fn canonical_input<'a>(
    parts: &'a http::request::Parts,
    parsed: &'a Parsed<'_>,
    s3: bool,
    payload: &'a [u8],
) -> Canonical<'a> {
    Canonical {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        exclude_signature: parsed.presigned(),
        s3,
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        signed_headers: &parsed.signed_headers,
        payload,
    }
}

/// The canonical request and string to sign as text.
fn render(c: &Canonical<'_>, parsed: &Parsed<'_>) -> (String, String) {
    let mut cr = Vec::new();
    canonical::write_canonical_request(&mut cr, c);
    let hash = hex_lower(&Sha256::digest(&cr));
    let scope = parsed.scope();
    let mut sts = Vec::new();
    canonical::write_string_to_sign(
        &mut sts,
        parsed.stamp.as_str(),
        scope.date,
        scope.region,
        scope.service,
        &hash,
    );
    (
        String::from_utf8_lossy(&cr).into_owned(),
        String::from_utf8_lossy(&sts).into_owned(),
    )
}

fn compute_signature(c: &Canonical<'_>, parsed: &Parsed<'_>, key: &[u8; 32]) -> [u8; 64] {
    let scope = parsed.scope();
    signature_hex(
        c,
        parsed.stamp.as_str(),
        scope.date,
        scope.region,
        scope.service,
        key,
    )
}

fn signature_hex(
    c: &Canonical<'_>,
    timestamp: &str,
    date: &str,
    region: &str,
    service: &str,
    key: &[u8; 32],
) -> [u8; 64] {
    let mut h = Sha256::new();
    canonical::write_canonical_request(&mut h, c);
    let canonical_hash = hex_lower(&h.finalize());
    let mut mac = new_mac(key);
    canonical::write_string_to_sign(&mut mac, timestamp, date, region, service, &canonical_hash);
    hex_lower(&mac.finalize().into_bytes())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC is defined for keys of every length; the error type exists only for other MACs.
        Err(_) => unreachable!("hmac-sha256 accepts keys of any length"),
    }
}

fn hmac(key: &[u8], msg: &str) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.put(msg.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut seed = Vec::with_capacity(4 + secret.len());
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&seed, date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    hmac(&k_service, "aws4_request")
}

/// A derived signing key and what it was derived from.
struct CachedKey {
    secret: String,
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
}

const KEY_CACHE_SLOTS: usize = 64;

/// Direct-mapped cache of derived signing keys, one lock per slot. Bounded at
/// [`KEY_CACHE_SLOTS`] entries; a busy or colliding slot just means deriving again.
static KEY_CACHE: [Mutex<Option<CachedKey>>; KEY_CACHE_SLOTS] =
    [const { Mutex::new(None) }; KEY_CACHE_SLOTS];

fn cache_slot(parts: [&str; 4]) -> usize {
    // FNV-1a; the slot only spreads entries, equality is checked on the full key.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.as_bytes().iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % KEY_CACHE_SLOTS as u64) as usize
}

/// [`derive_signing_key`] through the cache.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let slot = &KEY_CACHE[cache_slot([secret, date, region, service])];
    if let Ok(guard) = slot.try_lock() {
        if let Some(e) = guard.as_ref() {
            if e.secret == secret && e.date == date && e.region == region && e.service == service {
                return e.key;
            }
        }
    }
    let key = derive_signing_key(secret, date, region, service);
    if let Ok(mut guard) = slot.try_lock() {
        *guard = Some(CachedKey {
            secret: secret.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            key,
        });
    }
    key
}

/// Sign a request in place (adds `x-amz-date`, `Authorization`; `host` must be set), as the AWS SDKs do.
///
/// Mirrors botocore's `SigV4Auth` (`S3SigV4Auth` for S3 signing names): every header except the
/// hop-by-hop ones and `user-agent` is signed; if the request has a `Date` header it is rewritten and
/// signed instead of adding `x-amz-date`; the payload is `x-amz-content-sha256` when present, else the
/// body's SHA-256 (S3 also gets that header added). A missing `host` header is filled from the URI's
/// authority (default port dropped). Values that cannot go into a header leave the request unsigned.
pub fn sign(
    req: &mut http::Request<Bytes>,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
    now: SystemTime,
) {
    sign_with_token(
        req,
        access_key_id,
        secret_access_key,
        None,
        region,
        service,
        now,
    );
}

/// [`sign`] with temporary credentials: also sets and signs `x-amz-security-token`.
pub fn sign_with_token(
    req: &mut http::Request<Bytes>,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    now: SystemTime,
) {
    let stamp = Stamp::from_secs(clock::unix_secs(now));
    let s3 = is_s3_signing_name(service);
    let body_hash =
        (s3 && !req.headers().contains_key(CONTENT_SHA256)).then(|| sha256_hex(req.body()));
    let headers = req.headers_mut();
    headers.remove(AUTHORIZATION);
    let date_set = if headers.contains_key(DATE) {
        headers.remove(X_AMZ_DATE);
        set_header(headers, DATE, &clock::format_rfc2822(stamp.secs))
    } else {
        set_header(headers, HeaderName::from_static(X_AMZ_DATE), stamp.as_str())
    };
    let token_set = session_token
        .is_none_or(|t| set_header(headers, HeaderName::from_static(SECURITY_TOKEN), t));
    let hash_set = body_hash
        .is_none_or(|h| set_header(headers, HeaderName::from_static(CONTENT_SHA256), ascii(&h)));
    if !(date_set && token_set && hash_set && ensure_host(req)) {
        return;
    }
    let signed_headers = signable_header_names(req.headers());
    // a caller that set `x-amz-content-sha256` has hashed the body already
    let body_hash;
    let payload = match req.headers().get(CONTENT_SHA256) {
        Some(v) => v.as_bytes(),
        None => {
            body_hash = sha256_hex(req.body());
            &body_hash
        }
    };
    let c = Canonical {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        exclude_signature: false,
        s3,
        headers: req.headers(),
        authority: req.uri().authority().map(|a| a.as_str()),
        signed_headers: &signed_headers,
        payload,
    };
    let key = signing_key(secret_access_key, stamp.date(), region, service);
    let signature = signature_hex(&c, stamp.as_str(), stamp.date(), region, service, &key);
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{}/{region}/{service}/aws4_request, SignedHeaders={signed_headers}, Signature={}",
        stamp.date(),
        ascii(&signature)
    );
    set_header(req.headers_mut(), AUTHORIZATION, &authorization);
}

/// Presign a request: append the `X-Amz-*` query parameters and `X-Amz-Signature` to its URI, as
/// botocore's `SigV4QueryAuth` (`S3SigV4QueryAuth` for S3 signing names) does. The request's own query
/// parameters stay first. The payload is `UNSIGNED-PAYLOAD` for S3, otherwise `x-amz-content-sha256`
/// when present, else the body's SHA-256. A missing `host` header is filled from the URI's authority.
/// Values that cannot go into a URI leave the request unchanged. `expires_secs` is not checked here;
/// [`verify`] accepts 1..=604800.
#[allow(clippy::too_many_arguments)]
pub fn presign(
    req: &mut http::Request<Bytes>,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    now: SystemTime,
    expires_secs: u32,
) {
    let stamp = Stamp::from_secs(clock::unix_secs(now));
    let s3 = is_s3_signing_name(service);
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    if req
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == form.as_bytes())
    {
        req.headers_mut().remove(CONTENT_TYPE);
    }
    if !ensure_host(req) {
        return;
    }
    let signed_headers = signable_header_names(req.headers());
    let credential = format!(
        "{access_key_id}/{}/{region}/{service}/aws4_request",
        stamp.date()
    );
    let mut query = req.uri().query().unwrap_or("").to_string();
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders={}",
        canonical::encode(&credential),
        stamp.as_str(),
        canonical::encode(&signed_headers)
    ));
    if let Some(token) = session_token {
        query.push_str("&X-Amz-Security-Token=");
        query.push_str(&canonical::encode(token));
    }
    let body_hash = sha256_hex(req.body());
    let payload: &[u8] = if s3 {
        UNSIGNED_PAYLOAD.as_bytes()
    } else {
        match req.headers().get(CONTENT_SHA256) {
            Some(v) => v.as_bytes(),
            None => &body_hash,
        }
    };
    let c = Canonical {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: &query,
        exclude_signature: true,
        s3,
        headers: req.headers(),
        authority: req.uri().authority().map(|a| a.as_str()),
        signed_headers: &signed_headers,
        payload,
    };
    let key = signing_key(secret_access_key, stamp.date(), region, service);
    let signature = signature_hex(&c, stamp.as_str(), stamp.date(), region, service, &key);
    query.push_str("&X-Amz-Signature=");
    query.push_str(ascii(&signature));
    let path_and_query = format!("{}?{query}", req.uri().path());
    let mut uri_parts = req.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => uri_parts.path_and_query = Some(pq),
        Err(e) => {
            tracing::warn!(error = %e, "sigv4 presign produced an invalid uri");
            return;
        }
    }
    match http::Uri::from_parts(uri_parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => tracing::warn!(error = %e, "sigv4 presign produced an invalid uri"),
    }
}

fn ascii(hex: &[u8; 64]) -> &str {
    std::str::from_utf8(hex).unwrap_or("")
}

fn set_header(headers: &mut http::HeaderMap, name: HeaderName, value: &str) -> bool {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name, v);
            true
        }
        Err(_) => {
            tracing::warn!(header = %name, "sigv4 sign: value not valid in a header, request left unsigned");
            false
        }
    }
}

/// Make sure a `host` header exists, taking it from the URI authority (without userinfo and without
/// the scheme's default port) as botocore does. False when there is neither.
fn ensure_host(req: &mut http::Request<Bytes>) -> bool {
    if req.headers().contains_key(HOST) {
        return true;
    }
    let Some(authority) = req.uri().authority() else {
        tracing::warn!("sigv4 sign: request has no host header and no authority");
        return false;
    };
    let default_port = match req.uri().scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let mut host = authority.host().to_ascii_lowercase();
    if let Some(port) = authority.port_u16() {
        if Some(port) != default_port {
            host.push_str(&format!(":{port}"));
        }
    }
    set_header(req.headers_mut(), HOST, &host)
}

/// `a;b;c`: the sorted, de-duplicated names of every header botocore would sign.
fn signable_header_names(headers: &http::HeaderMap) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| !UNSIGNABLE_HEADERS.contains(k) && *k != "authorization")
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4_signing_key_known_answer() {
        // AWS's documented example (IAM "Examples of how to derive a signing key"):
        // secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let key = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn sigv4_key_cache_returns_the_derived_key() {
        let args = ["s3cr3t", "20260102", "us-east-1", "monitoring"];
        let direct = derive_signing_key(args[0], args[1], args[2], args[3]);
        assert_eq!(signing_key(args[0], args[1], args[2], args[3]), direct);
        // Second call is served from the cache (or derived again if the slot is busy): same answer.
        assert_eq!(signing_key(args[0], args[1], args[2], args[3]), direct);
        // A different secret that lands in the same slot must get its own key, not the cached one.
        let slot = cache_slot(args);
        let other = (0..10_000)
            .map(|i| format!("other-{i}"))
            .find(|s| s != args[0] && cache_slot([s, args[1], args[2], args[3]]) == slot)
            .expect("64 slots: a colliding secret exists among 10000 candidates");
        let other_key = derive_signing_key(&other, args[1], args[2], args[3]);
        assert_ne!(other_key, direct);
        assert_eq!(signing_key(&other, args[1], args[2], args[3]), other_key);
        assert_eq!(signing_key(args[0], args[1], args[2], args[3]), direct);
    }

    #[test]
    fn sigv4_s3_signing_names() {
        assert!(is_s3_signing_name("s3"));
        assert!(is_s3_signing_name("s3-object-lambda"));
        assert!(is_s3_signing_name("s3express"));
        assert!(!is_s3_signing_name("monitoring"));
        assert!(!is_s3_signing_name("s3tables"));
    }
}
