//! Reading the protocol-neutral input documents (strings, booleans, attribute maps, tag lists) and
//! writing SNS's timestamps (`2012-05-02T00:54:06.655Z`) and opaque pagination tokens.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use opsloop_core::{ApiError, Value};

use crate::error;

/// A string member, if present.
pub fn str_field<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// A boolean member given as a boolean or as the string `true`/`false`.
pub fn bool_field(input: &Value, name: &str) -> Option<bool> {
    match input.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A string-to-string map member (attributes); non-string values are an error naming `param`.
pub fn string_map(input: &Value, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    match input.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    Value::Null => {
                        out.insert(k.clone(), String::new());
                    }
                    _ => return Err(error::invalid(name)),
                }
            }
        }
        Some(_) => return Err(error::invalid(name)),
    }
    Ok(out)
}

/// A `[{Key, Value}]` tag list member.
pub fn tag_list(input: &Value, name: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    match input.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let key = str_field(item, "Key").ok_or_else(|| error::invalid(name))?;
                let value = str_field(item, "Value").unwrap_or("");
                out.push((key.to_string(), value.to_string()));
            }
        }
        Some(_) => return Err(error::invalid(name)),
    }
    Ok(out)
}

/// A string list member.
pub fn string_list(input: &Value, name: &str) -> Vec<String> {
    match input.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A random (version 4) UUID from the thread-local generator: no system call per id, unlike
/// `Uuid::new_v4` without uuid's `fast-rng` feature (message and delivery ids are made per publish).
pub fn new_uuid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso_millis(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// An opaque pagination token for a store key.
pub fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// The store key in a token; it must lie under `prefix` (a token of another listing is invalid).
pub fn decode_token(token: &str, prefix: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|k| k.starts_with(prefix))
        .ok_or_else(|| error::invalid("NextToken"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_have_milliseconds_and_zulu() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_335_472_704_751), "2012-04-26T20:38:24.751Z");
    }

    #[test]
    fn tokens_round_trip_and_are_scoped() {
        let t = encode_token("000000000000/us-east-1/b");
        assert_eq!(
            decode_token(&t, "000000000000/us-east-1/").unwrap(),
            "000000000000/us-east-1/b"
        );
        assert!(decode_token(&t, "000000000000/eu-west-1/").is_err());
        assert!(decode_token("!!!", "").is_err());
    }

    #[test]
    fn fields() {
        let doc = json!({"A": {"x": "1", "y": null}, "B": "true", "T": [{"Key": "k", "Value": "v"}], "L": ["a", 1]});
        assert_eq!(
            string_map(&doc, "A").unwrap().get("x").map(String::as_str),
            Some("1")
        );
        assert_eq!(bool_field(&doc, "B"), Some(true));
        assert_eq!(
            tag_list(&doc, "T").unwrap(),
            vec![("k".to_string(), "v".to_string())]
        );
        assert_eq!(string_list(&doc, "L"), vec!["a".to_string()]);
        assert!(string_map(&json!({"A": {"x": 1}}), "A").is_err());
    }
}
