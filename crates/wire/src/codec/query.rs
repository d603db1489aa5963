//! awsQuery: `application/x-www-form-urlencoded` parameters (POST bodies or GET query strings) in,
//! XML out.
//!
//! Decoding first splits the form into borrowed key/value pairs, then inserts each pair into a
//! shape-typed builder tree by walking its dotted key against the model (`Name.member.N`, flattened
//! lists, `Name.entry.N.key/value` maps), and finally converts the builder into the document,
//! turning string values into their modelled types. Unknown members are dropped. Lists are ordered
//! by their index; keys usually arrive in order, which keeps insertion O(1) per pair.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::xml::XmlWriter;
use super::{scalar_from_str, timestamp, DecodeError, Path, Seg};
use crate::model::{Model, Operation, ShapeId, ShapeKind, TimestampFormat};

/// Most dot-separated segments a parameter name may have.
const MAX_SEGMENTS: usize = 128;

/// Decoded form parameters, in order.
pub type Params<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

fn decode_component(s: &str, escaped: bool) -> Result<Cow<'_, str>, DecodeError> {
    if !escaped {
        return Ok(Cow::Borrowed(s));
    }
    let plus: Cow<'_, str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&plus).collect();
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::Malformed("the query string contains invalid UTF-8".into()))
}

/// Split a form body or query string into decoded pairs. Fails only on invalid UTF-8.
/// One pass over the bytes finds separators and whether a component needs decoding at all.
pub fn parse_form(bytes: &[u8]) -> Result<Params<'_>, DecodeError> {
    let s = std::str::from_utf8(bytes)
        .map_err(|_| DecodeError::Malformed("the query string contains invalid UTF-8".into()))?;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 32 + 1);
    let mut start = 0;
    while start <= b.len() {
        let (mut eq, mut key_esc, mut val_esc) = (None, false, false);
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'&' => break,
                b'=' if eq.is_none() => eq = Some(i),
                b'%' | b'+' => {
                    if eq.is_none() {
                        key_esc = true;
                    } else {
                        val_esc = true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if i > start {
            // Separators are ASCII, so these slices fall on character boundaries.
            let (k, v) = match eq {
                Some(e) => (&s[start..e], &s[e + 1..i]),
                None => (&s[start..i], ""),
            };
            out.push((decode_component(k, key_esc)?, decode_component(v, val_esc)?));
        }
        start = i + 1;
    }
    Ok(out)
}

/// The value of the first parameter named `name`.
pub fn param<'p>(params: &'p Params<'_>, name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

/// Decode a form body for `op` (parameters `Action` and `Version` are ignored).
pub fn decode(model: &Model, op: &Operation, body: &[u8]) -> Result<Value, DecodeError> {
    let params = parse_form(body)?;
    decode_params(model, op, &params)
}

/// Decode already-split parameters for `op`.
pub fn decode_params(
    model: &Model,
    op: &Operation,
    params: &Params<'_>,
) -> Result<Value, DecodeError> {
    let Some(input) = op.input else {
        return Ok(Value::Object(Map::new()));
    };
    let mut root: Option<B<'_>> = None;
    for (k, v) in params {
        // Recursion follows the key's segments; keys under 256 bytes cannot exceed the bound.
        if k.len() > 2 * MAX_SEGMENTS && k.bytes().filter(|&b| b == b'.').count() >= MAX_SEGMENTS {
            return Err(DecodeError::Malformed(format!(
                "parameter name nests deeper than {MAX_SEGMENTS} levels"
            )));
        }
        insert(model, input, false, &mut root, k, 0, v)?;
    }
    match root {
        Some(b) => convert(model, input, None, b, &mut Path::new()),
        None => Ok(Value::Object(Map::new())),
    }
}

/// A shape-typed node under construction. `None` children are slots created for keys that turned
/// out to name nothing known below them.
enum B<'p> {
    Leaf(&'p str),
    Struct(Vec<(usize, Option<B<'p>>)>),
    List(Indexed<Option<B<'p>>>),
    Map(Indexed<Entry<'p>>),
}

#[derive(Default)]
struct Entry<'p> {
    key: Option<&'p str>,
    value: Option<B<'p>>,
}

/// Children by one-based query index: a sorted vector while keys arrive in order (the common case,
/// O(1) per key), a tree once they do not.
enum Indexed<T> {
    Seq(Vec<(u32, T)>),
    Tree(BTreeMap<u32, T>),
}

impl<T> Indexed<T> {
    fn new() -> Self {
        Indexed::Seq(Vec::new())
    }

    fn slot(&mut self, idx: u32, new: impl FnOnce() -> T) -> &mut T {
        let existing = match self {
            Indexed::Seq(v) => match v.last() {
                None => None,
                Some((last, _)) if *last < idx => None,
                Some(_) => match v.binary_search_by_key(&idx, |(i, _)| *i) {
                    Ok(pos) => Some(pos),
                    Err(_) => {
                        let tree: BTreeMap<u32, T> = std::mem::take(v).into_iter().collect();
                        *self = Indexed::Tree(tree);
                        None
                    }
                },
            },
            Indexed::Tree(_) => None,
        };
        match self {
            Indexed::Tree(t) => t.entry(idx).or_insert_with(new),
            Indexed::Seq(v) => {
                let pos = match existing {
                    Some(pos) => pos,
                    None => {
                        v.push((idx, new()));
                        v.len() - 1
                    }
                };
                &mut v[pos].1
            }
        }
    }

    fn into_sorted(self) -> Vec<(u32, T)> {
        match self {
            Indexed::Seq(v) => v,
            Indexed::Tree(t) => t.into_iter().collect(),
        }
    }
}

fn invalid_key(key: &str, end: usize, reason: &str) -> DecodeError {
    let path = key.get(..end).unwrap_or(key).to_string();
    DecodeError::Invalid(opsloop_core::ValidationFailure::Invalid {
        path,
        reason: reason.to_string(),
    })
}

/// Next segment of `key` starting at byte `pos`: `(segment, position after its dot)`; a final
/// segment's "next" is `key.len() + 1`, so `next - 1` is always the segment's end.
fn segment(key: &str, pos: usize) -> Option<(&str, usize)> {
    let rest = key.get(pos..)?;
    match rest.bytes().position(|b| b == b'.') {
        Some(d) => Some((&rest[..d], pos + d + 1)),
        None => Some((rest, key.len() + 1)),
    }
}

fn parse_index(key: &str, seg: &str, next: usize) -> Result<u32, DecodeError> {
    match seg.parse::<u32>() {
        Ok(i) if i >= 1 && seg.bytes().all(|b| b.is_ascii_digit()) => Ok(i),
        _ => Err(invalid_key(
            key,
            next - 1,
            "list and map indexes must be positive integers",
        )),
    }
}

/// Insert the pair `key = value` below `node` (of shape `shape`), reading `key` from byte `pos`.
/// `flattened` is the member-level flattened trait of the member that led here.
fn insert<'p>(
    model: &Model,
    shape: ShapeId,
    flattened: bool,
    node: &mut Option<B<'p>>,
    key: &'p str,
    pos: usize,
    value: &'p str,
) -> Result<(), DecodeError> {
    let seg = segment(key, pos);
    match &model.shape(shape).kind {
        ShapeKind::Structure(st) => {
            let Some((name, next)) = seg else {
                if value.is_empty() {
                    node.get_or_insert_with(|| B::Struct(Vec::new()));
                    return Ok(());
                }
                return Err(invalid_key(
                    key,
                    pos.saturating_sub(1),
                    "Value must be a structure",
                ));
            };
            let Some(idx) = st.xml_member_index(name) else {
                return Ok(());
            };
            let B::Struct(children) = node.get_or_insert_with(|| B::Struct(Vec::new())) else {
                return Err(invalid_key(key, next - 1, "Value must be a structure"));
            };
            let p = match children.iter().position(|(i, _)| *i == idx) {
                Some(p) => p,
                None => {
                    children.push((idx, None));
                    children.len() - 1
                }
            };
            let m = &st.members[idx];
            insert(
                model,
                m.target,
                m.flattened,
                &mut children[p].1,
                key,
                next,
                value,
            )
        }
        ShapeKind::List(l) => {
            let Some((mut name, mut next)) = seg else {
                if value.is_empty() {
                    node.get_or_insert_with(|| B::List(Indexed::new()));
                    return Ok(());
                }
                return Err(invalid_key(
                    key,
                    pos.saturating_sub(1),
                    "Value must be a list",
                ));
            };
            if !(flattened || l.flattened) {
                if name != l.member_location_name.as_deref().unwrap_or("member") {
                    return Ok(());
                }
                let Some(s) = segment(key, next) else {
                    return Ok(());
                };
                (name, next) = s;
            }
            let idx = parse_index(key, name, next)?;
            let B::List(items) = node.get_or_insert_with(|| B::List(Indexed::new())) else {
                return Err(invalid_key(key, next - 1, "Value must be a list"));
            };
            insert(
                model,
                l.member,
                false,
                items.slot(idx, || None),
                key,
                next,
                value,
            )
        }
        ShapeKind::Map(m) => {
            let Some((mut name, mut next)) = seg else {
                if value.is_empty() {
                    node.get_or_insert_with(|| B::Map(Indexed::new()));
                    return Ok(());
                }
                return Err(invalid_key(
                    key,
                    pos.saturating_sub(1),
                    "Value must be a map",
                ));
            };
            if !(flattened || m.flattened) {
                if name != "entry" {
                    return Ok(());
                }
                let Some(s) = segment(key, next) else {
                    return Ok(());
                };
                (name, next) = s;
            }
            let idx = parse_index(key, name, next)?;
            let Some((part, after)) = segment(key, next) else {
                return Ok(());
            };
            let B::Map(entries) = node.get_or_insert_with(|| B::Map(Indexed::new())) else {
                return Err(invalid_key(key, next - 1, "Value must be a map"));
            };
            let entry = entries.slot(idx, Entry::default);
            if part == m.key_location_name.as_deref().unwrap_or("key") {
                if after > key.len() {
                    entry.key = Some(value);
                }
                Ok(())
            } else if part == m.value_location_name.as_deref().unwrap_or("value") {
                insert(model, m.value, false, &mut entry.value, key, after, value)
            } else {
                Ok(())
            }
        }
        _ => {
            if seg.is_none() {
                *node = Some(B::Leaf(value));
            }
            Ok(())
        }
    }
}

fn convert<'m>(
    model: &'m Model,
    shape: ShapeId,
    ts: Option<TimestampFormat>,
    b: B<'_>,
    path: &mut Path<'m>,
) -> Result<Value, DecodeError> {
    let sh = model.shape(shape);
    match (&sh.kind, b) {
        (ShapeKind::Structure(st), B::Struct(children)) => {
            let mut map = Map::with_capacity(children.len());
            for (idx, child) in children {
                let (Some(m), Some(child)) = (st.members.get(idx), child) else {
                    continue;
                };
                path.push(Seg::Member(&m.name));
                let v = convert(model, m.target, m.timestamp_format, child, path)?;
                path.pop();
                map.insert(m.name.clone(), v);
            }
            Ok(Value::Object(map))
        }
        (ShapeKind::List(l), B::List(items)) => {
            let items = items.into_sorted();
            let mut out = Vec::with_capacity(items.len());
            for (idx, item) in items {
                let item = match item {
                    Some(item) => item,
                    // Only unknown keys below this element: an empty structure, else nothing.
                    None if matches!(model.shape(l.member).kind, ShapeKind::Structure(_)) => {
                        B::Struct(Vec::new())
                    }
                    None => continue,
                };
                path.push(Seg::Index((idx as usize).saturating_sub(1)));
                out.push(convert(model, l.member, None, item, path)?);
                path.pop();
            }
            Ok(Value::Array(out))
        }
        (ShapeKind::Map(m), B::Map(entries)) => {
            let mut map = Map::new();
            for (idx, entry) in entries.into_sorted() {
                path.push(Seg::Key(format!("entry.{idx}")));
                let Some(k) = entry.key else {
                    return Err(DecodeError::invalid(path, "Map entry must have a key"));
                };
                let Some(v) = entry.value else {
                    return Err(DecodeError::invalid(path, "Map entry must have a value"));
                };
                let v = convert(model, m.value, None, v, path)?;
                path.pop();
                map.insert(k.to_string(), v);
            }
            Ok(Value::Object(map))
        }
        (_, B::Leaf(s)) => scalar_from_str(model, shape, ts, TimestampFormat::Iso8601, s)
            .map_err(|reason| DecodeError::invalid(path, reason)),
        _ => Err(DecodeError::invalid(
            path,
            "Value does not match the modelled type",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// XML responses.

/// `<OpResponse xmlns=..><OpResult>..</OpResult><ResponseMetadata>..</ResponseMetadata></OpResponse>`.
pub fn encode_output(model: &Model, op: &Operation, doc: &Value, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    let root = format!("{}Response", op.name);
    w.open_ns(&root, model.metadata.xml_namespace.as_deref());
    if let Some(shape) = op.output {
        if let (ShapeKind::Structure(_), Value::Object(_)) = (&model.shape(shape).kind, doc) {
            match &op.result_wrapper {
                Some(wrapper) => {
                    w.open(wrapper);
                    write_members(&mut w, model, shape, doc);
                    w.close(wrapper);
                }
                None => write_members(&mut w, model, shape, doc),
            }
        }
    }
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&root);
    w.finish()
}

fn write_members(w: &mut XmlWriter, model: &Model, shape: ShapeId, doc: &Value) {
    let (ShapeKind::Structure(st), Value::Object(map)) = (&model.shape(shape).kind, doc) else {
        return;
    };
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        let Some(m) = st.member(k) else { continue };
        match (&model.shape(m.target).kind, v) {
            (ShapeKind::List(l), Value::Array(items)) if m.flattened || l.flattened => {
                for item in items {
                    write_elem(w, model, &m.xml_name, l.member, None, item);
                }
            }
            (ShapeKind::Map(mp), Value::Object(entries)) if m.flattened || mp.flattened => {
                for (ek, ev) in entries {
                    w.open(&m.xml_name);
                    write_entry(w, model, mp, ek, ev);
                    w.close(&m.xml_name);
                }
            }
            _ => write_elem(w, model, &m.xml_name, m.target, m.timestamp_format, v),
        }
    }
}

fn write_entry(w: &mut XmlWriter, model: &Model, mp: &crate::model::MapShape, k: &str, v: &Value) {
    w.leaf(mp.key_location_name.as_deref().unwrap_or("key"), k);
    write_elem(
        w,
        model,
        mp.value_location_name.as_deref().unwrap_or("value"),
        mp.value,
        None,
        v,
    );
}

fn write_elem(
    w: &mut XmlWriter,
    model: &Model,
    name: &str,
    shape: ShapeId,
    ts: Option<TimestampFormat>,
    v: &Value,
) {
    let sh = model.shape(shape);
    match (&sh.kind, v) {
        (ShapeKind::Structure(_), Value::Object(_)) => {
            w.open(name);
            write_members(w, model, shape, v);
            w.close(name);
        }
        (ShapeKind::List(l), Value::Array(items)) => {
            w.open(name);
            let inner = l.member_location_name.as_deref().unwrap_or("member");
            for item in items {
                write_elem(w, model, inner, l.member, None, item);
            }
            w.close(name);
        }
        (ShapeKind::Map(mp), Value::Object(entries)) => {
            w.open(name);
            for (ek, ev) in entries {
                w.open("entry");
                write_entry(w, model, mp, ek, ev);
                w.close("entry");
            }
            w.close(name);
        }
        (ShapeKind::Timestamp, Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(0.0);
            let text = match ts.or(sh.timestamp_format) {
                Some(TimestampFormat::EpochSeconds) => timestamp::format_epoch(secs),
                Some(TimestampFormat::HttpDate) => timestamp::format_http_date(secs),
                _ => timestamp::format_iso8601(secs),
            };
            w.leaf(name, &text);
        }
        (ShapeKind::Integer(_) | ShapeKind::Long(_), Value::Number(n)) => {
            let text = n.as_i64().map_or_else(
                || format!("{}", n.as_f64().unwrap_or(0.0).trunc() as i64),
                |i| i.to_string(),
            );
            w.leaf(name, &text);
        }
        (ShapeKind::Float(_) | ShapeKind::Double(_), Value::Number(n)) => {
            w.leaf(name, &n.to_string())
        }
        (_, Value::String(s)) => w.leaf(name, s),
        (ShapeKind::Boolean, Value::Bool(b)) => w.leaf(name, if *b { "true" } else { "false" }),
        _ => tracing::debug!(shape = %sh.name, "output value does not match its shape; left out"),
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
