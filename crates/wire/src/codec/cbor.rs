//! Smithy RPC v2 CBOR bodies: a hand-written, model-driven CBOR reader that decodes straight into
//! the document (accepting definite and indefinite lengths, tags, half/single/double floats) and a
//! writer for outputs (definite lengths, timestamps as tag 1 epoch seconds, blobs as byte strings).
//!
//! The reader is bounded: nesting depth is capped, declared lengths are checked against the bytes
//! left before anything is allocated, and every malformation is a [`DecodeError`], never a panic.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::{
    decode_base64, encode_base64, float_value, integer_value, non_finite_name, timestamp,
    DecodeError, Path, Seg,
};
use crate::model::{Model, Operation, ShapeId, ShapeKind};

/// Deepest nesting accepted in a request.
const MAX_DEPTH: usize = 128;

const BREAK: u8 = 0xff;

fn malformed(msg: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(msg.into())
}

/// Decode an RPC v2 CBOR request body for `op`. An empty body is `{}`.
pub fn decode(model: &Model, op: &Operation, body: &[u8]) -> Result<Value, DecodeError> {
    let Some(input) = op.input else {
        // Inputless operations: the body (if any) must still be well-formed CBOR.
        if !body.is_empty() {
            let mut r = Reader { b: body, i: 0 };
            r.skip(0)?;
            r.finish()?;
        }
        return Ok(Value::Object(Map::new()));
    };
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let mut r = Reader { b: body, i: 0 };
    let (major, info) = r.skip_tags()?;
    if major != 5 {
        return Err(malformed("the request body must be a CBOR map"));
    }
    let v = r.structure(model, input, info, 0, &mut Path::new())?;
    r.finish()?;
    Ok(v)
}

struct Reader<'b> {
    b: &'b [u8],
    i: usize,
}

impl<'b> Reader<'b> {
    fn remaining(&self) -> usize {
        self.b.len() - self.i
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(malformed("trailing bytes after the CBOR body"))
        }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .b
            .get(self.i)
            .ok_or_else(|| malformed("unexpected end of CBOR data"))?;
        self.i += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'b [u8], DecodeError> {
        let n = usize::try_from(n).map_err(|_| malformed("CBOR length too large"))?;
        if n > self.remaining() {
            return Err(malformed("CBOR length exceeds the data"));
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }

    fn peek_break(&mut self) -> bool {
        if self.b.get(self.i) == Some(&BREAK) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `(major type, additional info)` of the next item.
    fn initial(&mut self) -> Result<(u8, u8), DecodeError> {
        let b = self.byte()?;
        Ok((b >> 5, b & 0x1f))
    }

    /// The argument of an item; `None` for indefinite length (info 31).
    fn argument(&mut self, info: u8) -> Result<Option<u64>, DecodeError> {
        let n = match info {
            0..=23 => return Ok(Some(u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Ok(None),
            _ => return Err(malformed("reserved CBOR additional information")),
        };
        let bytes = self.take(n)?;
        Ok(Some(
            bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        ))
    }

    fn definite(&mut self, info: u8) -> Result<u64, DecodeError> {
        self.argument(info)?
            .ok_or_else(|| malformed("indefinite length not allowed here"))
    }

    /// Skip any tags; return the head of the tagged item.
    fn skip_tags(&mut self) -> Result<(u8, u8), DecodeError> {
        loop {
            let (major, info) = self.initial()?;
            if major != 6 {
                return Ok((major, info));
            }
            self.definite(info)?;
        }
    }

    /// A byte or text string body (major 2/3) after its head; chunks of indefinite strings joined.
    fn string_bytes(&mut self, major: u8, info: u8) -> Result<Cow<'b, [u8]>, DecodeError> {
        match self.argument(info)? {
            Some(len) => Ok(Cow::Borrowed(self.take(len)?)),
            None => {
                let mut out = Vec::new();
                while !self.peek_break() {
                    let (m, i) = self.initial()?;
                    if m != major {
                        return Err(malformed("bad chunk in an indefinite-length CBOR string"));
                    }
                    let len = self.definite(i)?;
                    out.extend_from_slice(self.take(len)?);
                }
                Ok(Cow::Owned(out))
            }
        }
    }

    fn text(&mut self, info: u8) -> Result<Cow<'b, str>, DecodeError> {
        match self.string_bytes(3, info)? {
            Cow::Borrowed(b) => std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|_| malformed("invalid UTF-8 in a CBOR text string")),
            Cow::Owned(b) => String::from_utf8(b)
                .map(Cow::Owned)
                .map_err(|_| malformed("invalid UTF-8 in a CBOR text string")),
        }
    }

    /// A map key: must be a text string.
    fn key(&mut self) -> Result<Cow<'b, str>, DecodeError> {
        let (major, info) = self.skip_tags()?;
        if major != 3 {
            return Err(malformed("CBOR map keys must be text strings"));
        }
        self.text(info)
    }

    /// Skip one complete item.
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(malformed("CBOR nesting too deep"));
        }
        let (major, info) = self.skip_tags()?;
        match major {
            0 | 1 => {
                self.definite(info)?;
            }
            2 | 3 => {
                self.string_bytes(major, info)?;
            }
            4 | 5 => {
                let per = if major == 5 { 2 } else { 1 };
                match self.argument(info)? {
                    Some(n) => {
                        if n.saturating_mul(per) > self.remaining() as u64 {
                            return Err(malformed("CBOR length exceeds the data"));
                        }
                        for _ in 0..n * per {
                            self.skip(depth + 1)?;
                        }
                    }
                    None => {
                        while !self.peek_break() {
                            for _ in 0..per {
                                self.skip(depth + 1)?;
                            }
                        }
                    }
                }
            }
            _ => {
                self.simple(info)?;
            }
        }
        Ok(())
    }

    /// A major-7 item after its head.
    fn simple(&mut self, info: u8) -> Result<Simple, DecodeError> {
        Ok(match info {
            20 => Simple::Bool(false),
            21 => Simple::Bool(true),
            22 | 23 => Simple::Null,
            25 => {
                let b = self.take(2)?;
                Simple::Float(half_to_f64(u16::from_be_bytes([b[0], b[1]])))
            }
            26 => {
                let b = self.take(4)?;
                Simple::Float(f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            27 => {
                let b = self.take(8)?;
                Simple::Float(f64::from_be_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            }
            24 => {
                self.take(1)?;
                Simple::Other
            }
            0..=19 => Simple::Other,
            _ => return Err(malformed("unexpected CBOR simple value or break")),
        })
    }

    /// Read a number item (major 0, 1 or 7-float); `None` if the item is not numeric.
    fn number(&mut self, major: u8, info: u8) -> Result<Option<Num>, DecodeError> {
        Ok(match major {
            0 => Some(Num::U(self.definite(info)?)),
            1 => {
                let n = self.definite(info)?;
                Some(
                    i64::try_from(n)
                        .map(|n| Num::I(-1 - n))
                        .unwrap_or(Num::F(-1.0 - n as f64)),
                )
            }
            7 => match self.simple(info)? {
                Simple::Float(f) => Some(Num::F(f)),
                _ => None,
            },
            _ => {
                self.rest_of(major, info, 0)?;
                None
            }
        })
    }

    /// Skip the remainder of an item whose head was already read.
    fn rest_of(&mut self, major: u8, info: u8, depth: usize) -> Result<(), DecodeError> {
        // Re-dispatch by rewinding one byte: heads are a single byte.
        self.i -= 1;
        let _ = (major, info);
        self.skip(depth)
    }

    fn structure<'m>(
        &mut self,
        model: &'m Model,
        shape: ShapeId,
        info: u8,
        depth: usize,
        path: &mut Path<'m>,
    ) -> Result<Value, DecodeError> {
        let ShapeKind::Structure(st) = &model.shape(shape).kind else {
            return Err(malformed("internal: not a structure"));
        };
        let count = self.argument(info)?;
        // Sized up front (a structure holds at most one entry per member) so it never regrows.
        let mut map =
            Map::with_capacity(count.map_or(0, |n| n.min(st.members.len() as u64)) as usize);
        let mut seen = 0u64;
        loop {
            match count {
                Some(n) if seen == n => break,
                None if self.peek_break() => break,
                _ => {}
            }
            seen += 1;
            let key = self.key()?;
            let member = st.member(&key).or_else(|| st.member_by_json_name(&key));
            match member {
                Some(m) => {
                    path.push(Seg::Member(&m.name));
                    let v = self.value(model, m.target, depth + 1, path)?;
                    path.pop();
                    if !v.is_null() {
                        map.insert(m.name.clone(), v);
                    }
                }
                None => self.skip(depth + 1)?,
            }
        }
        Ok(Value::Object(map))
    }

    /// Decode one item of shape `shape`. CBOR null/undefined decode to `Value::Null`.
    fn value<'m>(
        &mut self,
        model: &'m Model,
        shape: ShapeId,
        depth: usize,
        path: &mut Path<'m>,
    ) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(malformed("CBOR nesting too deep"));
        }
        let sh = model.shape(shape);
        let (major, info) = self.skip_tags()?;
        if major == 7 && (info == 22 || info == 23) {
            return Ok(Value::Null);
        }
        let mismatch = |path: &Path<'_>, what: &str| {
            DecodeError::invalid(path, format!("Value must be {what}"))
        };
        match &sh.kind {
            ShapeKind::Structure(st) if st.document => {
                self.i -= 1;
                self.document(depth)
            }
            ShapeKind::Structure(_) => {
                if major != 5 {
                    return Err(mismatch(path, "a structure"));
                }
                self.structure(model, shape, info, depth, path)
            }
            ShapeKind::List(l) => {
                if major != 4 {
                    return Err(mismatch(path, "a list"));
                }
                let count = self.argument(info)?;
                if let Some(n) = count {
                    if n > self.remaining() as u64 {
                        return Err(malformed("CBOR length exceeds the data"));
                    }
                }
                let mut items = Vec::with_capacity(count.unwrap_or(0) as usize);
                // Lists of numbers (metric values, counts) take the plain encodings inline; anything
                // else (tags, negative or wide integers, null, a mismatch) goes through `value`.
                let numbers = depth < MAX_DEPTH
                    && matches!(
                        model.shape(l.member).kind,
                        ShapeKind::Float(_) | ShapeKind::Double(_)
                    );
                loop {
                    match count {
                        Some(n) if items.len() as u64 == n => break,
                        None if self.peek_break() => break,
                        _ => {}
                    }
                    if numbers {
                        if let Some(v) = self.plain_number() {
                            items.push(v);
                            continue;
                        }
                    }
                    path.push(Seg::Index(items.len()));
                    let v = self.value(model, l.member, depth + 1, path)?;
                    if v.is_null() && !l.sparse {
                        return Err(DecodeError::invalid(path, "Member must not be null"));
                    }
                    path.pop();
                    items.push(v);
                }
                Ok(Value::Array(items))
            }
            ShapeKind::Map(m) => {
                if major != 5 {
                    return Err(mismatch(path, "a map"));
                }
                let count = self.argument(info)?;
                let mut map = Map::new();
                let mut seen = 0u64;
                loop {
                    match count {
                        Some(n) if seen == n => break,
                        None if self.peek_break() => break,
                        _ => {}
                    }
                    seen += 1;
                    let key = self.key()?;
                    path.push(Seg::Key(key.to_string()));
                    let v = self.value(model, m.value, depth + 1, path)?;
                    path.pop();
                    if !v.is_null() || m.sparse {
                        map.insert(key.into_owned(), v);
                    }
                }
                Ok(Value::Object(map))
            }
            ShapeKind::String(_) => match major {
                3 => Ok(Value::String(self.text(info)?.into_owned())),
                _ => {
                    self.rest_of(major, info, depth)?;
                    Err(mismatch(path, "a string"))
                }
            },
            ShapeKind::Blob(_) => match major {
                2 => Ok(Value::String(encode_base64(&self.string_bytes(2, info)?))),
                _ => {
                    self.rest_of(major, info, depth)?;
                    Err(mismatch(path, "binary data"))
                }
            },
            ShapeKind::Boolean => match (major, self.simple_if(major, info)?) {
                (7, Some(Simple::Bool(b))) => Ok(Value::Bool(b)),
                _ => Err(mismatch(path, "a boolean")),
            },
            ShapeKind::Integer(_) | ShapeKind::Long(_) => {
                let long = matches!(sh.kind, ShapeKind::Long(_));
                let v = match self.number(major, info)? {
                    Some(Num::U(u)) => i64::try_from(u).ok().and_then(|i| integer_value(i, long)),
                    Some(Num::I(i)) => integer_value(i, long),
                    Some(Num::F(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                        integer_value(f as i64, long)
                    }
                    _ => None,
                };
                v.ok_or_else(|| {
                    mismatch(
                        path,
                        if long {
                            "a 64-bit integer"
                        } else {
                            "a 32-bit integer"
                        },
                    )
                })
            }
            ShapeKind::Float(_) | ShapeKind::Double(_) => match self.number(major, info)? {
                Some(Num::U(u)) => Ok(Value::Number(Number::from(u))),
                Some(Num::I(i)) => Ok(Value::Number(Number::from(i))),
                Some(Num::F(f)) => Ok(float_value(f)),
                None => Err(mismatch(path, "a number")),
            },
            ShapeKind::Timestamp => {
                let secs = match self.number(major, info)? {
                    Some(Num::U(u)) => Some(u as f64),
                    Some(Num::I(i)) => Some(i as f64),
                    Some(Num::F(f)) => Some(f),
                    None => None,
                };
                secs.and_then(timestamp::seconds_value)
                    .ok_or_else(|| mismatch(path, "a timestamp"))
            }
        }
    }

    /// The next item as a float/double member if it is a plain CBOR float or a small unsigned
    /// integer, decoded exactly as [`Reader::value`] would; `None` (nothing consumed) otherwise.
    fn plain_number(&mut self) -> Option<Value> {
        let rest = &self.b[self.i..];
        let (&head, tail) = rest.split_first()?;
        let (v, used) = match head {
            0x00..=0x17 => (Value::Number(Number::from(u64::from(head))), 1),
            0x18 => (Value::Number(Number::from(u64::from(*tail.first()?))), 2),
            0xf9 => {
                let b: [u8; 2] = tail.get(..2)?.try_into().ok()?;
                (float_value(half_to_f64(u16::from_be_bytes(b))), 3)
            }
            0xfa => {
                let b: [u8; 4] = tail.get(..4)?.try_into().ok()?;
                (float_value(f64::from(f32::from_be_bytes(b))), 5)
            }
            0xfb => {
                let b: [u8; 8] = tail.get(..8)?.try_into().ok()?;
                (float_value(f64::from_be_bytes(b)), 9)
            }
            _ => return None,
        };
        self.i += used;
        Some(v)
    }

    fn simple_if(&mut self, major: u8, info: u8) -> Result<Option<Simple>, DecodeError> {
        if major == 7 {
            self.simple(info).map(Some)
        } else {
            self.rest_of(major, info, 0)?;
            Ok(None)
        }
    }

    /// Any CBOR item as a JSON document (document types): byte strings become base64.
    fn document(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(malformed("CBOR nesting too deep"));
        }
        let (major, info) = self.skip_tags()?;
        Ok(match major {
            0 => Value::Number(Number::from(self.definite(info)?)),
            1 => match self.number(major, info)? {
                Some(Num::I(i)) => Value::Number(Number::from(i)),
                Some(Num::F(f)) => float_value(f),
                _ => Value::Null,
            },
            7 => match self.simple(info)? {
                Simple::Bool(b) => Value::Bool(b),
                Simple::Float(f) => float_value(f),
                Simple::Null | Simple::Other => Value::Null,
            },
            2 => Value::String(encode_base64(&self.string_bytes(2, info)?)),
            3 => Value::String(self.text(info)?.into_owned()),
            4 => {
                let count = self.argument(info)?;
                let mut items = Vec::new();
                loop {
                    match count {
                        Some(n) if items.len() as u64 == n => break,
                        None if self.peek_break() => break,
                        _ => {}
                    }
                    items.push(self.document(depth + 1)?);
                }
                Value::Array(items)
            }
            _ => {
                let count = self.argument(info)?;
                let mut map = Map::new();
                let mut seen = 0u64;
                loop {
                    match count {
                        Some(n) if seen == n => break,
                        None if self.peek_break() => break,
                        _ => {}
                    }
                    seen += 1;
                    let k = self.key()?.into_owned();
                    let v = self.document(depth + 1)?;
                    map.insert(k, v);
                }
                Value::Object(map)
            }
        })
    }
}

enum Simple {
    Bool(bool),
    Null,
    Float(f64),
    Other,
}

enum Num {
    U(u64),
    I(i64),
    F(f64),
}

/// IEEE 754 half precision to f64 (exact, by widening the bit pattern to single precision).
fn half_to_f64(h: u16) -> f64 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match exp {
        0 => {
            // Zero or subnormal: mant × 2^-24.
            let v = f64::from(mant) / 16_777_216.0;
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (mant << 13),
        e => sign | ((e + 112) << 23) | (mant << 13),
    };
    f64::from(f32::from_bits(bits))
}

// ---------------------------------------------------------------------------------------------
// Encoding.

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub(crate) fn write_text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        head(out, 0, i as u64);
    } else {
        head(out, 1, (-1 - i) as u64);
    }
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    out.push(0xfb);
    out.extend_from_slice(&f.to_be_bytes());
}

fn write_non_finite(out: &mut Vec<u8>, name: &str) {
    let bits: u16 = match name {
        "Infinity" => 0x7c00,
        "-Infinity" => 0xfc00,
        _ => 0x7e00,
    };
    out.push(0xf9);
    out.extend_from_slice(&bits.to_be_bytes());
}

/// Encode the output document of `op`. Operations without output get an empty body.
pub fn encode_output(model: &Model, op: &Operation, doc: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if let Some(shape) = op.output {
        write_value(&mut out, model, shape, doc);
    }
    out
}

/// A `{key: text, ...}` map (error bodies).
pub(crate) fn encode_text_map(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    head(&mut out, 5, entries.len() as u64);
    for (k, v) in entries {
        write_text(&mut out, k);
        write_text(&mut out, v);
    }
    out
}

/// Write `v` (of shape `shape`); values that do not fit their shape are written as CBOR null.
fn write_value(out: &mut Vec<u8>, model: &Model, shape: ShapeId, v: &Value) {
    let sh = model.shape(shape);
    match (&sh.kind, v) {
        (ShapeKind::Structure(st), _) if st.document => write_document(out, v),
        (ShapeKind::Structure(st), Value::Object(map)) => {
            let n = map
                .iter()
                .filter(|(k, v)| !v.is_null() && st.member(k).is_some())
                .count();
            head(out, 5, n as u64);
            for (k, val) in map {
                if val.is_null() {
                    continue;
                }
                if let Some(m) = st.member(k) {
                    write_text(out, &m.name);
                    write_value(out, model, m.target, val);
                }
            }
        }
        (ShapeKind::List(l), Value::Array(items)) => {
            head(out, 4, items.len() as u64);
            for item in items {
                write_value(out, model, l.member, item);
            }
        }
        (ShapeKind::Map(m), Value::Object(map)) => {
            let n = map.values().filter(|v| m.sparse || !v.is_null()).count();
            head(out, 5, n as u64);
            for (k, val) in map {
                if val.is_null() && !m.sparse {
                    continue;
                }
                write_text(out, k);
                write_value(out, model, m.value, val);
            }
        }
        (ShapeKind::String(_), Value::String(s)) => write_text(out, s),
        (ShapeKind::Blob(_), Value::String(s)) => match decode_base64(s) {
            Some(bytes) => {
                head(out, 2, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
            None => out.push(0xf6),
        },
        (ShapeKind::Boolean, Value::Bool(b)) => out.push(if *b { 0xf5 } else { 0xf4 }),
        (ShapeKind::Integer(_) | ShapeKind::Long(_), Value::Number(n)) => match n.as_i64() {
            Some(i) => write_int(out, i),
            None => match n.as_f64().map(f64::trunc) {
                Some(f) if f.abs() < 9.2e18 => write_int(out, f as i64),
                _ => out.push(0xf6),
            },
        },
        (ShapeKind::Float(_) | ShapeKind::Double(_), Value::Number(n)) => {
            write_f64(out, n.as_f64().unwrap_or(0.0))
        }
        (ShapeKind::Float(_) | ShapeKind::Double(_), Value::String(s))
            if non_finite_name(s).is_some() =>
        {
            write_non_finite(out, s)
        }
        (ShapeKind::Timestamp, Value::Number(n)) => {
            out.push(0xc1);
            let secs = n.as_f64().unwrap_or(0.0);
            if secs.fract() == 0.0 && timestamp::in_range(secs) {
                write_int(out, secs as i64);
            } else {
                write_f64(out, secs);
            }
        }
        _ => {
            tracing::debug!(shape = %sh.name, "output value does not match its shape; written as null");
            out.push(0xf6);
        }
    }
}

/// Any JSON value as CBOR (document types).
fn write_document(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => write_int(out, i),
            None => match n.as_u64() {
                Some(u) => head(out, 0, u),
                None => write_f64(out, n.as_f64().unwrap_or(0.0)),
            },
        },
        Value::String(s) => write_text(out, s),
        Value::Array(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                write_document(out, item);
            }
        }
        Value::Object(map) => {
            head(out, 5, map.len() as u64);
            for (k, val) in map {
                write_text(out, k);
                write_document(out, val);
            }
        }
    }
}

#[cfg(test)]
#[path = "cbor_tests.rs"]
mod tests;
