//! Model-driven codecs between each wire protocol and the protocol-neutral document of
//! [`opsloop_core::Service`]: structures are objects keyed by member name, lists arrays, maps objects,
//! numbers numbers, booleans booleans, timestamps numbers of epoch seconds and blobs base64 strings.
//! Non-finite floats (which JSON numbers cannot hold) travel as the strings `"NaN"`, `"Infinity"` and
//! `"-Infinity"`, as botocore writes them in awsJson.
//!
//! One module per protocol (`json`, `cbor`, `query`, `rest_json`), each with a pub `decode` that
//! never panics (fuzz targets call them directly) and an encoder for outputs. Shared here: the
//! decode error, member paths for validation messages, conversion of string scalars (query strings,
//! URIs, headers) and bounded gzip decompression.

pub mod cbor;
pub mod json;
pub mod query;
pub mod rest_json;
pub mod timestamp;
pub(crate) mod xml;

use std::io::Read;

use base64::Engine;
use opsloop_core::ValidationFailure;
use serde_json::{Number, Value};

use crate::model::{Model, ShapeId, ShapeKind, TimestampFormat};

/// Why an input could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// The body is not well-formed for the protocol (bad JSON/CBOR/form, wrong top-level type).
    Malformed(String),
    /// Well-formed but a value does not fit its modelled type (string for a number, bad timestamp...).
    Invalid(ValidationFailure),
}

impl DecodeError {
    pub(crate) fn invalid(path: &Path<'_>, reason: impl Into<String>) -> DecodeError {
        DecodeError::Invalid(ValidationFailure::Invalid {
            path: path.render(),
            reason: reason.into(),
        })
    }
}

/// One step of a member path.
#[derive(Debug, Clone)]
pub(crate) enum Seg<'m> {
    Member(&'m str),
    /// A zero-based list index, rendered `member.N` (one-based) as awsQuery does.
    Index(usize),
    /// A map key.
    Key(String),
}

/// A member path, e.g. `MetricData.member.1.MetricName`; rendered only when an error needs it.
#[derive(Debug, Default)]
pub(crate) struct Path<'m> {
    segs: Vec<Seg<'m>>,
}

impl<'m> Path<'m> {
    pub(crate) fn new() -> Self {
        Path {
            segs: Vec::with_capacity(8),
        }
    }
    pub(crate) fn push(&mut self, seg: Seg<'m>) {
        self.segs.push(seg);
    }
    pub(crate) fn pop(&mut self) {
        self.segs.pop();
    }
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for seg in &self.segs {
            if !out.is_empty() {
                out.push('.');
            }
            match seg {
                Seg::Member(m) => out.push_str(m),
                Seg::Index(i) => {
                    out.push_str("member.");
                    out.push_str(&(i + 1).to_string());
                }
                Seg::Key(k) => out.push_str(k),
            }
        }
        out
    }
}

/// The strings that stand for non-finite floats in documents.
pub(crate) fn non_finite_name(s: &str) -> Option<&'static str> {
    match s {
        "NaN" => Some("NaN"),
        "Infinity" => Some("Infinity"),
        "-Infinity" => Some("-Infinity"),
        _ => None,
    }
}

/// A document value for a float: a number when finite, else its name string.
pub(crate) fn float_value(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Check an integer against the 32-bit (`integer`) or 64-bit (`long`) range.
pub(crate) fn integer_value(v: i64, long: bool) -> Option<Value> {
    if !long && i32::try_from(v).is_err() {
        return None;
    }
    Some(Value::Number(Number::from(v)))
}

/// Accept a JSON number as an integer (whole floats included).
pub(crate) fn number_as_integer(n: &Number, long: bool) -> Option<Value> {
    let v = if let Some(i) = n.as_i64() {
        i
    } else {
        let f = n.as_f64()?;
        if f.fract() != 0.0 || !(-9.2e18..=9.2e18).contains(&f) {
            return None;
        }
        f as i64
    };
    integer_value(v, long)
}

/// Whether a string is valid standard base64 (padding optional).
pub(crate) fn is_base64(s: &str) -> bool {
    decode_base64(s).is_some()
}

pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .or_else(|| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(s)
                .ok()
        })
}

pub(crate) fn encode_base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Convert a scalar written as a string (awsQuery values, URI labels, query parameters, headers)
/// into its document form. `ts_default` is the timestamp format of the location.
pub(crate) fn scalar_from_str(
    model: &Model,
    shape: ShapeId,
    ts_format: Option<TimestampFormat>,
    ts_default: TimestampFormat,
    s: &str,
) -> Result<Value, String> {
    let sh = model.shape(shape);
    match &sh.kind {
        ShapeKind::String(_) => Ok(Value::String(s.to_string())),
        ShapeKind::Boolean => match s {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("Value '{s}' is not a valid boolean")),
        },
        ShapeKind::Integer(_) | ShapeKind::Long(_) => {
            let long = matches!(sh.kind, ShapeKind::Long(_));
            s.trim()
                .parse::<i64>()
                .ok()
                .and_then(|v| integer_value(v, long))
                .ok_or_else(|| {
                    format!(
                        "Value '{s}' is not a valid {}",
                        if long { "long" } else { "integer" }
                    )
                })
        }
        ShapeKind::Float(_) | ShapeKind::Double(_) => {
            if let Some(name) = non_finite_name(s) {
                return Ok(Value::String(name.to_string()));
            }
            match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(float_value(v)),
                _ => Err(format!("Value '{s}' is not a valid number")),
            }
        }
        ShapeKind::Timestamp => {
            let fmt = ts_format.or(sh.timestamp_format).unwrap_or(ts_default);
            timestamp::parse_any(s, fmt)
                .and_then(timestamp::seconds_value)
                .ok_or_else(|| format!("Value '{s}' is not a valid timestamp"))
        }
        ShapeKind::Blob(_) => {
            if is_base64(s) {
                Ok(Value::String(s.to_string()))
            } else {
                Err("Value is not valid base64".to_string())
            }
        }
        ShapeKind::Structure(_) | ShapeKind::List(_) | ShapeKind::Map(_) => {
            Err("Value must be a complex type, not a string".to_string())
        }
    }
}

/// Why a compressed body could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated body exceeds the limit.
    TooLarge,
    /// Not a valid gzip stream.
    Corrupt(String),
}

/// Inflate a gzip body (all members), refusing to produce more than `limit` bytes.
pub fn gunzip_bounded(body: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let decoder = flate2::read::MultiGzDecoder::new(body);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| InflateError::Corrupt(e.to_string()))?;
    if out.len() > limit {
        return Err(InflateError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn path_renders_query_style() {
        let mut p = Path::new();
        p.push(Seg::Member("MetricData"));
        p.push(Seg::Index(0));
        p.push(Seg::Member("Dimensions"));
        p.push(Seg::Index(2));
        p.push(Seg::Member("Name"));
        assert_eq!(p.render(), "MetricData.member.1.Dimensions.member.3.Name");
        p.pop();
        p.pop();
        p.pop();
        p.push(Seg::Member("Tags"));
        p.push(Seg::Key("env".into()));
        assert_eq!(p.render(), "MetricData.member.1.Tags.env");
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn gunzip_within_and_over_limit() {
        let data = vec![b'a'; 10_000];
        let z = gzip(&data);
        assert_eq!(gunzip_bounded(&z, 10_000).as_deref(), Ok(&data[..]));
        assert_eq!(gunzip_bounded(&z, 9_999), Err(InflateError::TooLarge));
        assert!(matches!(
            gunzip_bounded(b"not gzip at all", 100),
            Err(InflateError::Corrupt(_))
        ));
        let truncated = &z[..z.len() / 2];
        assert!(matches!(
            gunzip_bounded(truncated, 100_000),
            Err(InflateError::Corrupt(_))
        ));
        // Two concatenated members inflate to both payloads.
        let mut two = gzip(b"hello ");
        two.extend(gzip(b"world"));
        assert_eq!(
            gunzip_bounded(&two, 100).as_deref(),
            Ok(&b"hello world"[..])
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(integer_value(i64::from(i32::MAX) + 1, false), None);
        assert_eq!(
            integer_value(i64::from(i32::MAX) + 1, true),
            Some(Value::from(2_147_483_648i64))
        );
        assert_eq!(
            number_as_integer(&Number::from_f64(3.0).expect("finite"), false),
            Some(Value::from(3))
        );
        assert_eq!(
            number_as_integer(&Number::from_f64(3.5).expect("finite"), false),
            None
        );
        assert_eq!(float_value(f64::NAN), Value::from("NaN"));
        assert_eq!(float_value(f64::NEG_INFINITY), Value::from("-Infinity"));
        assert_eq!(float_value(1.5), Value::from(1.5));
        assert!(is_base64("aGVsbG8="));
        assert!(is_base64("aGVsbG8"));
        assert!(!is_base64("not base64!"));
    }
}
