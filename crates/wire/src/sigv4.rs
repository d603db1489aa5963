//! AWS Signature Version 4: verification of incoming requests (header and presigned-query forms) and
//! signing (for tests, tools and load generators). (SKELETON: API fixed; implementation pending.)

use std::time::SystemTime;

use crate::dispatch::Credentials;

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
    /// Outside the ±15-minute window or past a presigned expiry: `RequestExpired` (400) /
    /// `SignatureDoesNotMatch` for expired presigned URLs as AWS answers.
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

/// Parse the credential scope from the `Authorization` header or presigned query, without verifying.
/// `None` when the request carries no SigV4 authorization.
pub fn parse_scope(parts: &http::request::Parts) -> Option<Result<Scope, SigV4Error>> {
    let _ = parts;
    todo!()
}

/// Verify a request. `body` is the body as received on the wire (before any decompression).
/// `lookup` finds the credentials for an access key id. Constant-time signature comparison.
pub fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    lookup: &dyn Fn(&str) -> Option<Credentials>,
    now: SystemTime,
) -> Result<(Scope, Credentials), SigV4Error> {
    let _ = (parts, body, lookup, now);
    todo!()
}

/// Sign a request in place (adds `x-amz-date`, `Authorization`; `host` must be set), as the AWS SDKs do.
pub fn sign(
    req: &mut http::Request<bytes::Bytes>,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
    now: SystemTime,
) {
    let _ = (req, access_key_id, secret_access_key, region, service, now);
    todo!()
}
