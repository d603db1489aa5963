//! restJson1: routing by the model's HTTP bindings (method + `requestUri` templates with `{Label}`,
//! greedy `{Label+}` and literal query parts), decoding members bound to the URI, query string,
//! headers, prefixed header maps, payload or JSON body, and encoding outputs the same way (status
//! code from `responseCode` or a `statusCode` member).
//!
//! Timestamp defaults follow the location: JSON body epoch seconds, headers HTTP dates, URI and query
//! ISO-8601; any of the formats is accepted on input.

use std::borrow::Cow;

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::{encode_base64, json, query, scalar_from_str, timestamp, DecodeError, Path, Seg};
use crate::model::{
    Location, Member, Model, ModelError, Operation, ShapeId, ShapeKind, StructureShape,
    TimestampFormat,
};

/// One piece of a `requestUri` path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Label(String),
    Greedy(String),
}

/// A parsed `requestUri`: path pieces and literal query requirements (`?versioning`, `?x-id=Foo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    query: Vec<(String, Option<String>)>,
}

impl Template {
    /// Parse a `requestUri`.
    pub fn parse(uri: &str) -> Result<Template, ModelError> {
        let (path, q) = uri.split_once('?').unwrap_or((uri, ""));
        let mut pieces = Vec::new();
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            let piece = match seg
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .filter(|l| !l.contains(['{', '}']))
            {
                Some(label) => match label.strip_suffix('+') {
                    Some(greedy) => Piece::Greedy(greedy.to_string()),
                    None => Piece::Label(label.to_string()),
                },
                None if seg.contains('{') || seg.contains('}') => {
                    return Err(ModelError::Malformed(format!(
                        "unsupported requestUri segment {seg:?} in {uri:?}"
                    )))
                }
                None => Piece::Literal(seg.to_string()),
            };
            pieces.push(piece);
        }
        if pieces
            .iter()
            .filter(|p| matches!(p, Piece::Greedy(_)))
            .count()
            > 1
        {
            return Err(ModelError::Malformed(format!(
                "more than one greedy label in {uri:?}"
            )));
        }
        let query = q
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (kv.to_string(), None),
            })
            .collect();
        Ok(Template { pieces, query })
    }

    fn literal_count(&self) -> usize {
        self.pieces
            .iter()
            .filter(|p| matches!(p, Piece::Literal(_)))
            .count()
    }

    /// A key that identifies the route shape (labels anonymised) for conflict detection.
    pub fn conflict_key(&self, method: &str) -> String {
        let mut k = method.to_ascii_uppercase();
        for p in &self.pieces {
            k.push('/');
            match p {
                Piece::Literal(l) => k.push_str(l),
                Piece::Label(_) => k.push_str("{}"),
                Piece::Greedy(_) => k.push_str("{+}"),
            }
        }
        let mut q: Vec<String> = self
            .query
            .iter()
            .map(|(a, b)| format!("{a}={}", b.as_deref().unwrap_or("")))
            .collect();
        q.sort();
        k.push('?');
        k.push_str(&q.join("&"));
        k
    }

    /// Match a raw (percent-encoded) request path and its parameters; returns decoded labels.
    pub fn matches(&self, path: &str, params: &query::Params<'_>) -> Option<Vec<(String, String)>> {
        for (k, v) in &self.query {
            let found = params
                .iter()
                .any(|(pk, pv)| pk == k && v.as_deref().is_none_or(|v| pv == v));
            if !found {
                return None;
            }
        }
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut labels = Vec::new();
        if match_pieces(&self.pieces, &segs, &mut labels) {
            Some(labels)
        } else {
            None
        }
    }
}

fn decode_label(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

fn match_pieces(pieces: &[Piece], segs: &[&str], labels: &mut Vec<(String, String)>) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return segs.is_empty();
    };
    match first {
        Piece::Literal(l) => {
            segs.first().is_some_and(|s| s == l) && match_pieces(rest, &segs[1..], labels)
        }
        Piece::Label(name) => {
            let Some(seg) = segs.first() else {
                return false;
            };
            let Some(v) = decode_label(seg) else {
                return false;
            };
            labels.push((name.clone(), v));
            if match_pieces(rest, &segs[1..], labels) {
                return true;
            }
            labels.pop();
            false
        }
        Piece::Greedy(name) => {
            // Only one greedy label per template and every other piece takes exactly one segment,
            // so the greedy label takes whatever the rest leaves (at least one segment).
            let Some(take) = segs.len().checked_sub(rest.len()).filter(|t| *t >= 1) else {
                return false;
            };
            let Some(v) = decode_label(&segs[..take].join("/")) else {
                return false;
            };
            labels.push((name.clone(), v));
            if match_pieces(rest, &segs[take..], labels) {
                return true;
            }
            labels.pop();
            false
        }
    }
}

/// The REST routes of one model, most specific first.
#[derive(Debug, Default)]
pub struct Routes {
    routes: Vec<(String, Template, usize)>,
}

impl Routes {
    /// Routes for every operation of `model`.
    pub fn build(model: &Model) -> Result<Routes, ModelError> {
        let mut routes = Vec::with_capacity(model.operations().len());
        for (i, op) in model.operations().iter().enumerate() {
            routes.push((
                op.http.method.to_ascii_uppercase(),
                Template::parse(&op.http.request_uri)?,
                i,
            ));
        }
        routes.sort_by_key(|(_, t, _)| {
            let greedy = t.pieces.iter().any(|p| matches!(p, Piece::Greedy(_)));
            (
                usize::MAX - t.literal_count(),
                usize::MAX - t.query.len(),
                greedy,
                usize::MAX - t.pieces.len(),
            )
        });
        Ok(Routes { routes })
    }

    /// `(method, template)` of each route, for conflict detection.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.routes.iter().map(|(m, t, _)| t.conflict_key(m))
    }

    /// The operation index (into [`Model::operations`]) serving `method path?query`.
    pub fn find(&self, method: &str, path: &str, params: &query::Params<'_>) -> Option<usize> {
        self.routes
            .iter()
            .find(|(m, t, _)| m.eq_ignore_ascii_case(method) && t.matches(path, params).is_some())
            .map(|(_, _, i)| *i)
    }
}

fn invalid_at<'m>(path: &mut Path<'m>, m: &'m Member, reason: String) -> DecodeError {
    path.push(Seg::Member(&m.name));
    DecodeError::invalid(path, reason)
}

/// Split a header list value on commas outside double quotes, unquoting quoted items.
fn split_header_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in v.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Decode a restJson request for `op` (whose route the caller matched).
pub fn decode(
    model: &Model,
    op: &Operation,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Value, DecodeError> {
    let Some(input) = op.input else {
        return Ok(Value::Object(Map::new()));
    };
    let ShapeKind::Structure(st) = &model.shape(input).kind else {
        return Ok(Value::Object(Map::new()));
    };
    let template =
        Template::parse(&op.http.request_uri).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let params = query::parse_form(parts.uri.query().unwrap_or("").as_bytes())?;
    let labels = template.matches(parts.uri.path(), &params).ok_or_else(|| {
        DecodeError::Malformed("the request path does not match the operation".into())
    })?;
    let mut path = Path::new();
    let mut out = Map::new();

    // Body (or payload) first, so bound members below take precedence.
    if let Some(p) = st.payload {
        let m = &st.members[p];
        if let Some(v) = decode_payload(model, m, body, &mut path)? {
            out.insert(m.name.clone(), v);
        }
    } else if st.members.iter().any(|m| m.location == Location::Body) {
        let mut doc = json::parse_object(body)?;
        json::convert(model, input, None, &mut doc, &mut path, true)?;
        if let Value::Object(map) = doc {
            out = map;
        }
    }

    let bound_query: Vec<&str> = st
        .members
        .iter()
        .filter(|m| m.location == Location::QueryString && !is_map(model, m.target))
        .map(|m| m.json_name())
        .collect();
    for m in &st.members {
        let name = m.json_name();
        let value = match m.location {
            Location::Body | Location::StatusCode => continue,
            Location::Uri => match labels.iter().find(|(l, _)| l == name) {
                Some((_, v)) => Some(scalar(model, m, v, TimestampFormat::Iso8601, &mut path)?),
                None => None,
            },
            Location::QueryString => {
                decode_query_member(model, m, &params, &bound_query, &mut path)?
            }
            Location::Header => match parts.headers.get(name) {
                Some(hv) => {
                    let s = hv.to_str().map_err(|_| {
                        invalid_at(&mut path, m, "Header value must be visible ASCII".into())
                    })?;
                    Some(decode_header(model, m, s, &mut path)?)
                }
                None => None,
            },
            Location::Headers => {
                let prefix = name.to_ascii_lowercase();
                let mut map = Map::new();
                for (hn, hv) in &parts.headers {
                    if let (Some(rest), Ok(v)) = (hn.as_str().strip_prefix(&prefix), hv.to_str()) {
                        map.insert(rest.to_string(), Value::String(v.to_string()));
                    }
                }
                (!map.is_empty()).then_some(Value::Object(map))
            }
        };
        if let Some(v) = value {
            out.insert(m.name.clone(), v);
        }
    }
    Ok(Value::Object(out))
}

fn is_map(model: &Model, shape: ShapeId) -> bool {
    matches!(model.shape(shape).kind, ShapeKind::Map(_))
}

fn scalar<'m>(
    model: &'m Model,
    m: &'m Member,
    s: &str,
    default: TimestampFormat,
    path: &mut Path<'m>,
) -> Result<Value, DecodeError> {
    scalar_from_str(model, m.target, m.timestamp_format, default, s)
        .map_err(|reason| invalid_at(path, m, reason))
}

fn decode_query_member<'m>(
    model: &'m Model,
    m: &'m Member,
    params: &query::Params<'_>,
    bound: &[&str],
    path: &mut Path<'m>,
) -> Result<Option<Value>, DecodeError> {
    let name = m.json_name();
    match &model.shape(m.target).kind {
        ShapeKind::List(l) => {
            let mut items = Vec::new();
            for (_, v) in params.iter().filter(|(k, _)| k == name) {
                let item = scalar_from_str(model, l.member, None, TimestampFormat::Iso8601, v)
                    .map_err(|r| invalid_at(path, m, r))?;
                items.push(item);
            }
            Ok((!items.is_empty()).then_some(Value::Array(items)))
        }
        ShapeKind::Map(mp) => {
            let list_values = matches!(model.shape(mp.value).kind, ShapeKind::List(_));
            let mut map = Map::new();
            for (k, v) in params.iter().filter(|(k, _)| !bound.contains(&k.as_ref())) {
                if list_values {
                    let entry = map
                        .entry(k.to_string())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = entry {
                        a.push(Value::String(v.to_string()));
                    }
                } else {
                    map.entry(k.to_string())
                        .or_insert_with(|| Value::String(v.to_string()));
                }
            }
            Ok((!map.is_empty()).then_some(Value::Object(map)))
        }
        _ => match params.iter().find(|(k, _)| k == name) {
            Some((_, v)) => scalar(model, m, v, TimestampFormat::Iso8601, path).map(Some),
            None => Ok(None),
        },
    }
}

fn decode_header<'m>(
    model: &'m Model,
    m: &'m Member,
    s: &str,
    path: &mut Path<'m>,
) -> Result<Value, DecodeError> {
    if m.json_value {
        let bytes = super::decode_base64(s.trim()).ok_or_else(|| {
            invalid_at(path, m, "Header value must be base64-encoded JSON".into())
        })?;
        return serde_json::from_slice(&bytes)
            .map_err(|_| invalid_at(path, m, "Header value must be base64-encoded JSON".into()));
    }
    match &model.shape(m.target).kind {
        ShapeKind::List(l) => {
            let mut items = Vec::new();
            for item in split_header_list(s) {
                items.push(
                    scalar_from_str(model, l.member, None, TimestampFormat::HttpDate, &item)
                        .map_err(|r| invalid_at(path, m, r))?,
                );
            }
            Ok(Value::Array(items))
        }
        _ => scalar(model, m, s.trim(), TimestampFormat::HttpDate, path),
    }
}

fn decode_payload<'m>(
    model: &'m Model,
    m: &'m Member,
    body: &[u8],
    path: &mut Path<'m>,
) -> Result<Option<Value>, DecodeError> {
    match &model.shape(m.target).kind {
        ShapeKind::Blob(_) => Ok((!body.is_empty()).then(|| Value::String(encode_base64(body)))),
        ShapeKind::String(_) => {
            let s = std::str::from_utf8(body)
                .map_err(|_| invalid_at(path, m, "Payload must be UTF-8 text".into()))?;
            Ok((!body.is_empty()).then(|| Value::String(s.to_string())))
        }
        _ => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            let mut doc: Value = serde_json::from_slice(body)
                .map_err(|e| DecodeError::Malformed(format!("malformed JSON body: {e}")))?;
            path.push(Seg::Member(&m.name));
            json::convert(model, m.target, m.timestamp_format, &mut doc, path, false)?;
            path.pop();
            Ok(Some(doc))
        }
    }
}

/// An encoded restJson response.
#[derive(Debug)]
pub struct RestResponse {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

fn header_text(model: &Model, m: &Member, v: &Value) -> Option<String> {
    if m.json_value {
        return Some(encode_base64(v.to_string().as_bytes()));
    }
    let sh = model.shape(m.target);
    Some(match (&sh.kind, v) {
        (ShapeKind::Timestamp, Value::Number(n)) => {
            let secs = n.as_f64()?;
            match m.timestamp_format.or(sh.timestamp_format) {
                Some(TimestampFormat::Iso8601) => timestamp::format_iso8601(secs),
                Some(TimestampFormat::EpochSeconds) => timestamp::format_epoch(secs),
                _ => timestamp::format_http_date(secs),
            }
        }
        (ShapeKind::List(_), Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) if s.contains(',') || s.contains('"') => {
                    Some(format!("\"{}\"", s.replace('"', "\\\"")))
                }
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect::<Vec<_>>()
            .join(","),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Number(n)) => n.to_string(),
        (_, Value::Bool(b)) => b.to_string(),
        _ => return None,
    })
}

fn push_header(headers: &mut Vec<(HeaderName, HeaderValue)>, name: &str, value: &str) {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(n), Ok(v)) => headers.push((n, v)),
        _ => tracing::debug!(header = name, "output header not representable; left out"),
    }
}

/// Encode the output document of `op`.
pub fn encode_output(model: &Model, op: &Operation, doc: &Value) -> RestResponse {
    let mut resp = RestResponse {
        status: op.http.response_code,
        headers: Vec::new(),
        content_type: None,
        body: Vec::new(),
    };
    let Some(shape) = op.output else { return resp };
    let ShapeKind::Structure(st) = &model.shape(shape).kind else {
        return resp;
    };
    let empty = Value::Object(Map::new());
    let doc = if doc.is_object() { doc } else { &empty };
    let Value::Object(map) = doc else { return resp };
    encode_bound(model, st, map, &mut resp);
    match st.payload.map(|p| &st.members[p]) {
        Some(m) => match (map.get(&m.name), &model.shape(m.target).kind) {
            (Some(Value::String(s)), ShapeKind::Blob(_)) => {
                resp.body = super::decode_base64(s).unwrap_or_default();
                resp.content_type = Some("application/octet-stream");
            }
            (Some(Value::String(s)), ShapeKind::String(_)) => {
                resp.body = s.as_bytes().to_vec();
                resp.content_type = Some("text/plain");
            }
            (Some(v), _) if !v.is_null() => {
                json::write_value(
                    &mut resp.body,
                    model,
                    m.target,
                    m.timestamp_format,
                    v,
                    false,
                );
                resp.content_type = Some("application/json");
            }
            _ => {}
        },
        None => {
            json::write_value(&mut resp.body, model, shape, None, doc, true);
            resp.content_type = Some("application/json");
        }
    }
    if resp
        .headers
        .iter()
        .any(|(n, _)| n == http::header::CONTENT_TYPE)
    {
        resp.content_type = None;
    }
    resp
}

fn encode_bound(
    model: &Model,
    st: &StructureShape,
    map: &Map<String, Value>,
    resp: &mut RestResponse,
) {
    for m in &st.members {
        let Some(v) = map.get(&m.name).filter(|v| !v.is_null()) else {
            continue;
        };
        match m.location {
            Location::Header => {
                if let Some(text) = header_text(model, m, v) {
                    push_header(&mut resp.headers, m.json_name(), &text);
                }
            }
            Location::Headers => {
                if let Value::Object(entries) = v {
                    for (k, hv) in entries {
                        if let Value::String(s) = hv {
                            push_header(&mut resp.headers, &format!("{}{k}", m.json_name()), s);
                        }
                    }
                }
            }
            Location::StatusCode => {
                if let Some(code) = v
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| (100..600).contains(c))
                {
                    resp.status = code;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "rest_json_tests.rs"]
mod tests;
