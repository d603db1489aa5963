//! Harness for the wire-layer fuzz targets, shared with the regression tests.
//!
//! This file is compiled twice: as `opsloop_fuzz::wire` by the fuzz targets, and by
//! `crates/wire/tests/fuzz_regressions.rs` through `#[path]`, so the stored crashes and seeds run
//! through exactly the code the fuzzer ran. It may therefore only use crates that
//! `opsloop-wire`'s integration tests can see: `opsloop_wire`, `http`, `bytes`, `serde_json`.
//!
//! Input formats:
//!
//! * `json_decode`, `cbor_decode`, `query_decode`: the first byte picks an operation of the
//!   CloudWatch model (`byte % n` over the operations sorted by name, see [`operation_for`]); the
//!   rest is the request body. A body that decodes is also run through `validate::validate`, as the
//!   gateway does.
//! * `sigv4_parse`: an HTTP/1-like request (see [`parse_request`]); the whole input and every line
//!   also go through `parse_authorization` / `parse_credential` as plain strings.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use opsloop_wire::codec::{self, DecodeError};
use opsloop_wire::model::{Model, Operation};
use opsloop_wire::sigv4::{self, Scope, SigV4Error};
use opsloop_wire::{validate, Credentials};
use serde_json::Value;

/// The CloudWatch botocore model the service registers with the gateway.
pub const CLOUDWATCH_MODEL: &str = include_str!("../../models/cloudwatch-2010-08-01.json");

/// The access key and secret of the SigV4 seeds (botocore's documentation example pair, used by
/// `crates/wire/tests/fixtures/sigv4/vectors.json`).
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Clock used when the input carries no `YYYYMMDDTHHMMSSZ` stamp: 2026-01-02T03:04:05Z.
pub const DEFAULT_NOW: u64 = 1_767_323_045;

struct Cw {
    model: Model,
    /// Indices into `model.operations()`, sorted by operation name.
    sorted: Vec<usize>,
}

fn cw() -> &'static Cw {
    static CW: OnceLock<Cw> = OnceLock::new();
    CW.get_or_init(|| {
        let model = Model::parse(CLOUDWATCH_MODEL).expect("the CloudWatch model parses");
        let mut sorted: Vec<usize> = (0..model.operations().len()).collect();
        sorted.sort_by(|&a, &b| model.operations()[a].name.cmp(&model.operations()[b].name));
        assert!(!sorted.is_empty(), "the CloudWatch model has operations");
        Cw { model, sorted }
    })
}

/// The CloudWatch model, parsed once.
pub fn model() -> &'static Model {
    &cw().model
}

/// Operation names in selector order (sorted by name).
pub fn operation_names() -> Vec<&'static str> {
    let cw = cw();
    cw.sorted
        .iter()
        .map(|&i| cw.model.operations()[i].name.as_str())
        .collect()
}

/// The operation a selector byte picks.
pub fn operation_for(selector: u8) -> &'static Operation {
    let cw = cw();
    &cw.model.operations()[cw.sorted[usize::from(selector) % cw.sorted.len()]]
}

/// The selector byte of an operation (for building seeds).
pub fn selector_of(operation: &str) -> Option<u8> {
    operation_names()
        .iter()
        .position(|n| *n == operation)
        .and_then(|i| u8::try_from(i).ok())
}

/// The body protocols fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProtocol {
    Json,
    Cbor,
    Query,
}

impl BodyProtocol {
    pub fn target(self) -> &'static str {
        match self {
            BodyProtocol::Json => "json_decode",
            BodyProtocol::Cbor => "cbor_decode",
            BodyProtocol::Query => "query_decode",
        }
    }
}

/// What one body-decoding input did.
#[derive(Debug)]
pub struct Decoded {
    pub operation: &'static str,
    pub result: Result<Value, DecodeError>,
    /// `validate::validate` of a decoded document (`None` when decoding failed or the operation
    /// has no input); the failure rendered with `Debug`.
    pub validation: Option<Result<(), String>>,
}

/// Run one input of `json_decode` / `cbor_decode` / `query_decode`. `None` for the empty input.
pub fn decode_body(protocol: BodyProtocol, data: &[u8]) -> Option<Decoded> {
    let (&selector, body) = data.split_first()?;
    let model = model();
    let op = operation_for(selector);
    let result = match protocol {
        BodyProtocol::Json => codec::json::decode(model, op, body),
        BodyProtocol::Cbor => codec::cbor::decode(model, op, body),
        BodyProtocol::Query => codec::query::decode(model, op, body),
    };
    let validation = match (&result, op.input) {
        (Ok(doc), Some(input)) => {
            Some(validate::validate(model, input, doc).map_err(|e| format!("{e:?}")))
        }
        _ => None,
    };
    Some(Decoded {
        operation: op.name.as_str(),
        result,
        validation,
    })
}

/// A request rebuilt from fuzz input.
pub struct FuzzRequest {
    pub parts: http::request::Parts,
    pub body: Bytes,
}

/// Build a request from bytes laid out like HTTP/1:
///
/// ```text
/// METHOD SP PATH-AND-QUERY LF
/// Name: value LF        (any number; a trailing CR is dropped)
/// LF
/// body
/// ```
///
/// Pieces `http` refuses are replaced (method `GET`, target `/`) or skipped (headers), so every
/// input yields a request. Header values are raw bytes (`http` allows obs-text, e.g. Latin-1).
pub fn parse_request(data: &[u8]) -> FuzzRequest {
    let (head, body) = match find(data, b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = match request_line.iter().position(|&b| b == b' ') {
        Some(i) => (&request_line[..i], &request_line[i + 1..]),
        None => (&b"GET"[..], request_line),
    };
    let method = http::Method::from_bytes(method).unwrap_or(http::Method::GET);
    let uri = http::Uri::try_from(target).unwrap_or_else(|_| http::Uri::from_static("/"));
    let (mut parts, ()) = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .expect("method and uri are valid")
        .into_parts();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = &value[value.iter().take_while(|&&b| b == b' ').count()..];
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        parts.headers.append(name, value);
    }
    FuzzRequest {
        parts,
        body: Bytes::copy_from_slice(body),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The verification clock for an input: the first `YYYYMMDDTHHMMSSZ` stamp in it (so signed seeds
/// get past the clock check and the fuzzer reaches canonicalization), else [`DEFAULT_NOW`].
pub fn clock_for(data: &[u8]) -> SystemTime {
    let secs = data
        .windows(16)
        .find_map(stamp_secs)
        .unwrap_or(DEFAULT_NOW as i64);
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn stamp_secs(w: &[u8]) -> Option<i64> {
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        w[r].iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    if w[8] != b'T' || w[15] != b'Z' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, s) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_since_epoch(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (March-based year, 400-year eras).
fn days_since_epoch(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Credentials for any access key id, all with [`SECRET_ACCESS_KEY`], so the fuzzer gets past the
/// key lookup into canonicalization and signature comparison.
pub fn lookup(access_key_id: &str) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: SECRET_ACCESS_KEY.to_string(),
        account_id: "000000000000".to_string(),
    })
}

/// What one `sigv4_parse` input did with the request built from it.
#[derive(Debug)]
pub struct SigV4Outcome {
    pub scope: Option<Result<Scope, SigV4Error>>,
    pub verify: Result<Scope, SigV4Error>,
}

/// Run one input of `sigv4_parse`.
pub fn sigv4_input(data: &[u8]) -> SigV4Outcome {
    if let Ok(text) = std::str::from_utf8(data) {
        parse_strings(text);
        for line in text.lines() {
            parse_strings(line);
            if let Some((_, value)) = line.split_once(':') {
                parse_strings(value.trim_start());
            }
        }
    }
    let req = parse_request(data);
    for value in req.parts.headers.values() {
        if let Ok(s) = value.to_str() {
            parse_strings(s);
        }
    }
    let scope = sigv4::parse_scope(&req.parts);
    let verify = sigv4::verify(&req.parts, &req.body, &lookup, clock_for(data)).map(|(s, _)| s);
    let _ = sigv4::explain(&req.parts, &req.body);
    SigV4Outcome { scope, verify }
}

/// `parse_authorization`, and `parse_credential` both on the string and on the credential an
/// authorization names.
fn parse_strings(s: &str) {
    if let Ok(auth) = sigv4::parse_authorization(s) {
        let _ = sigv4::parse_credential(auth.credential);
    }
    let _ = sigv4::parse_credential(s);
}
