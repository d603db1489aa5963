//! awsJson 1.0 / 1.1 bodies (also the body half of restJson1): decoding into the document and
//! encoding documents back, driven by the model.
//!
//! Decoding parses with serde_json and then converts the tree in place: members are renamed from
//! their JSON key (`locationName`) to the member name, unknown members and nulls dropped, types
//! checked, timestamps (numbers or ISO-8601 / HTTP-date strings) turned into epoch seconds. Encoding
//! writes JSON straight from the document without building an intermediate tree.

use std::io::Write;

use serde_json::{Map, Value};

use super::{is_base64, non_finite_name, number_as_integer, timestamp, DecodeError, Path, Seg};
use crate::model::{Location, Model, Operation, ShapeId, ShapeKind, TimestampFormat};

/// Decode an awsJson request body for `op` into the input document. An empty body is `{}`.
pub fn decode(model: &Model, op: &Operation, body: &[u8]) -> Result<Value, DecodeError> {
    let mut doc = parse_object(body)?;
    if let Some(input) = op.input {
        convert(model, input, None, &mut doc, &mut Path::new(), false)?;
    } else {
        doc = Value::Object(Map::new());
    }
    Ok(doc)
}

/// Parse a JSON body that must be an object (empty or whitespace-only means `{}`).
pub(crate) fn parse_object(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::Malformed(format!("malformed JSON body: {e}")))?;
    if !doc.is_object() {
        return Err(DecodeError::Malformed(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(doc)
}

fn type_error(path: &Path<'_>, expected: &str) -> DecodeError {
    DecodeError::invalid(path, format!("Value must be {expected}"))
}

/// Convert a parsed JSON value of shape `shape` into document form, in place. With `body_only`,
/// members bound elsewhere (REST headers, URI, ...) are dropped from structures at this level.
pub(crate) fn convert<'m>(
    model: &'m Model,
    shape: ShapeId,
    ts: Option<TimestampFormat>,
    v: &mut Value,
    path: &mut Path<'m>,
    body_only: bool,
) -> Result<(), DecodeError> {
    let sh = model.shape(shape);
    match &sh.kind {
        ShapeKind::Structure(st) => {
            let Value::Object(map) = v else {
                return Err(type_error(path, "an object"));
            };
            if st.document {
                return Ok(());
            }
            let mut out = Map::with_capacity(map.len());
            for (key, mut val) in std::mem::take(map) {
                let Some(m) = st.member_by_json_name(&key) else {
                    continue;
                };
                if val.is_null() || (body_only && m.location != Location::Body) {
                    continue;
                }
                path.push(Seg::Member(&m.name));
                convert(model, m.target, m.timestamp_format, &mut val, path, false)?;
                path.pop();
                if m.name == key {
                    out.insert(key, val);
                } else {
                    out.insert(m.name.clone(), val);
                }
            }
            *map = out;
        }
        ShapeKind::List(l) => {
            let Value::Array(items) = v else {
                return Err(type_error(path, "a list"));
            };
            // Fast path for the common list of numbers (metric values): nothing to convert.
            if matches!(
                model.shape(l.member).kind,
                ShapeKind::Double(_) | ShapeKind::Float(_)
            ) && items.iter().all(Value::is_number)
            {
                return Ok(());
            }
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                if item.is_null() {
                    if !l.sparse {
                        return Err(DecodeError::invalid(path, "Member must not be null"));
                    }
                } else {
                    convert(model, l.member, None, item, path, false)?;
                }
                path.pop();
            }
        }
        ShapeKind::Map(m) => {
            let Value::Object(map) = v else {
                return Err(type_error(path, "a map"));
            };
            let mut drop_nulls = false;
            for (key, val) in map.iter_mut() {
                if val.is_null() {
                    drop_nulls |= !m.sparse;
                    continue;
                }
                path.push(Seg::Key(key.clone()));
                convert(model, m.value, None, val, path, false)?;
                path.pop();
            }
            if drop_nulls {
                map.retain(|_, v| !v.is_null());
            }
        }
        ShapeKind::String(_) => {
            if !v.is_string() {
                return Err(type_error(path, "a string"));
            }
        }
        ShapeKind::Boolean => {
            if !v.is_boolean() {
                return Err(type_error(path, "a boolean"));
            }
        }
        ShapeKind::Integer(_) | ShapeKind::Long(_) => {
            let long = matches!(sh.kind, ShapeKind::Long(_));
            let converted = match v {
                Value::Number(n) => number_as_integer(n, long),
                _ => None,
            };
            match converted {
                Some(c) => *v = c,
                None => {
                    return Err(type_error(
                        path,
                        if long {
                            "a 64-bit integer"
                        } else {
                            "a 32-bit integer"
                        },
                    ))
                }
            }
        }
        ShapeKind::Float(_) | ShapeKind::Double(_) => match v {
            Value::Number(_) => {}
            Value::String(s) if non_finite_name(s).is_some() => {}
            _ => return Err(type_error(path, "a number")),
        },
        ShapeKind::Timestamp => {
            let secs = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => {
                    let fmt = ts
                        .or(sh.timestamp_format)
                        .unwrap_or(TimestampFormat::EpochSeconds);
                    timestamp::parse_any(s, fmt)
                }
                _ => None,
            };
            match secs.and_then(timestamp::seconds_value) {
                Some(t) => *v = t,
                None => return Err(type_error(path, "a timestamp")),
            }
        }
        ShapeKind::Blob(_) => match v {
            Value::String(s) if is_base64(s) => {}
            _ => return Err(type_error(path, "base64-encoded binary data")),
        },
    }
    Ok(())
}

/// Encode an output document of `op` as an awsJson body (`{}` when the operation has no output).
pub fn encode_output(model: &Model, op: &Operation, doc: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match op.output {
        Some(shape) => write_value(&mut out, model, shape, None, doc, false),
        None => out.extend_from_slice(b"{}"),
    }
    out
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Write `v` (of shape `shape`) as JSON. Values that do not fit their shape (a service bug) are
/// written as `null`, which every client treats as absent. With `body_only`, structure members bound
/// to REST locations are left out at this level.
pub(crate) fn write_value(
    out: &mut Vec<u8>,
    model: &Model,
    shape: ShapeId,
    ts: Option<TimestampFormat>,
    v: &Value,
    body_only: bool,
) {
    let sh = model.shape(shape);
    match (&sh.kind, v) {
        (ShapeKind::Structure(st), Value::Object(map)) => {
            if st.document {
                let _ = serde_json::to_writer(&mut *out, v);
                return;
            }
            out.push(b'{');
            let mut first = true;
            for (key, val) in map {
                let Some(m) = st.member(key) else { continue };
                if val.is_null() || (body_only && m.location != Location::Body) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_str(out, m.json_name());
                out.push(b':');
                write_value(out, model, m.target, m.timestamp_format, val, false);
            }
            out.push(b'}');
        }
        (ShapeKind::List(l), Value::Array(items)) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, model, l.member, None, item, false);
            }
            out.push(b']');
        }
        (ShapeKind::Map(m), Value::Object(map)) => {
            out.push(b'{');
            let mut first = true;
            for (key, val) in map {
                if val.is_null() && !m.sparse {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_str(out, key);
                out.push(b':');
                write_value(out, model, m.value, None, val, false);
            }
            out.push(b'}');
        }
        (ShapeKind::String(_), Value::String(s)) | (ShapeKind::Blob(_), Value::String(s)) => {
            write_str(out, s)
        }
        (ShapeKind::Boolean, Value::Bool(b)) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" })
        }
        (ShapeKind::Integer(_) | ShapeKind::Long(_), Value::Number(n)) => match n.as_i64() {
            Some(i) => {
                let _ = write!(out, "{i}");
            }
            None => match n.as_f64().map(|f| f.trunc()) {
                Some(f) if f.abs() < 9.2e18 => {
                    let _ = write!(out, "{}", f as i64);
                }
                _ => out.extend_from_slice(b"null"),
            },
        },
        (ShapeKind::Float(_) | ShapeKind::Double(_), Value::Number(n)) => {
            let _ = write!(out, "{n}");
        }
        (ShapeKind::Float(_) | ShapeKind::Double(_), Value::String(s))
            if non_finite_name(s).is_some() =>
        {
            write_str(out, s)
        }
        (ShapeKind::Timestamp, Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(0.0);
            match ts.or(sh.timestamp_format) {
                Some(TimestampFormat::Iso8601) => write_str(out, &timestamp::format_iso8601(secs)),
                Some(TimestampFormat::HttpDate) => {
                    write_str(out, &timestamp::format_http_date(secs))
                }
                _ => match timestamp::seconds_value(secs) {
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                    None => out.extend_from_slice(b"null"),
                },
            }
        }
        _ => {
            tracing::debug!(shape = %sh.name, "output value does not match its shape; written as null");
            out.extend_from_slice(b"null");
        }
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
