//! The PutLogEvents fast path: a typed, single-pass decode of the request's JSON text straight into
//! event columns ([`Columns`]: timestamps, message offsets and one message buffer), instead of a
//! generic [`Value`](opsloop_core::Value) tree of ~10,000 objects that is then walked by the model
//! validator and copied again into columns.
//!
//! The gateway offers every awsJson body of an operation to [`Service::decode_json_input`]
//! (`opsloop_core`); this decoder answers only for inputs that the generic path (JSON decode, then
//! the model's types, required members, lengths and ranges) accepts unchanged, and gives up
//! (`None`) on anything else — malformed JSON, a missing or `null` member, a wrong type, a
//! negative or non-integer timestamp, an empty message, a name of the wrong length, a list of 0 or
//! more than 10,000 events, a repeated key, a key written with escapes, or an `entity` member
//! (whose nested maps carry constraints of their own). The gateway then takes the generic path, so
//! every error answer is exactly the generic one. Members the model does not know are skipped, as
//! the generic decode drops them. The bounds below are the model's; a test checks them against it.
//!
//! [`Service::decode_json_input`]: opsloop_core::Service::decode_json_input

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::storage::columns::Columns;

/// `LogGroupName` / `LogStreamName` length bounds (characters).
pub const NAME_MIN: usize = 1;
pub const NAME_MAX: usize = 512;
/// `InputLogEvents` length bounds.
pub const EVENTS_MIN: usize = 1;
pub const EVENTS_MAX: usize = 10_000;

/// A PutLogEvents input decoded by [`decode`]: the names and the events in columns (`ts`, `ends`
/// and `text` as sent; `ingest`, `seq` and `stream` zero until the batch is accepted).
#[derive(Debug, PartialEq)]
pub struct PutInput {
    pub group: String,
    pub stream: String,
    pub events: Columns,
}

/// Decode a PutLogEvents input document from its JSON text, or `None` when the generic path must
/// handle it (see the module documentation). The body the SDKs send (only the model's members,
/// names without escapes, events `{"timestamp":…,"message":"…"}` in either order) takes the
/// hand-written [`scan`]; anything else it does not know takes the typed serde decode.
pub fn decode(json: &[u8]) -> Option<PutInput> {
    scan(json).or_else(|| decode_serde(json))
}

/// The typed serde decode (the reference for [`scan`]: every input `scan` accepts, this accepts
/// with the same content).
fn decode_serde(json: &[u8]) -> Option<PutInput> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let input = de
        .deserialize_map(TopVisitor {
            text_hint: json.len(),
        })
        .ok()?;
    de.end().ok()?;
    Some(input)
}

/// Whether `s` has a length (in characters, as the model counts) within the name bounds.
fn name_ok(s: &str) -> bool {
    let bytes = s.len();
    if (NAME_MIN..=NAME_MAX).contains(&bytes) {
        return true;
    }
    // more bytes than the maximum may still be few enough characters
    bytes > NAME_MAX && s.chars().count() <= NAME_MAX
}

fn give_up<E: de::Error>(why: &str) -> E {
    E::custom(why)
}

fn once<T, E: de::Error>(slot: &mut Option<T>, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(give_up("repeated key"));
    }
    *slot = Some(v);
    Ok(())
}

struct TopVisitor {
    text_hint: usize,
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = PutInput;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a PutLogEvents input object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PutInput, A::Error> {
        let (mut group, mut stream, mut events, mut token) = (None, None, None, None);
        // a key with escapes is not a borrowed string: the generic path takes it
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "logGroupName" => once(&mut group, map.next_value::<String>()?)?,
                "logStreamName" => once(&mut stream, map.next_value::<String>()?)?,
                "sequenceToken" => once(&mut token, map.next_value::<String>()?)?,
                "logEvents" => once(
                    &mut events,
                    map.next_value_seed(EventsSeed {
                        text_hint: self.text_hint,
                    })?,
                )?,
                "entity" => return Err(give_up("entity")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (Some(group), Some(stream), Some(events)) = (group, stream, events) else {
            return Err(give_up("missing member"));
        };
        if !name_ok(&group) || !name_ok(&stream) || token.is_some_and(|t| t.is_empty()) {
            return Err(give_up("length"));
        }
        Ok(PutInput {
            group,
            stream,
            events,
        })
    }
}

struct EventsSeed {
    text_hint: usize,
}

impl<'de> DeserializeSeed<'de> for EventsSeed {
    type Value = Columns;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Columns, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed {
    type Value = Columns;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of log events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Columns, A::Error> {
        let mut cols = Columns::default();
        // the messages are most of the body
        cols.text.reserve(self.text_hint);
        while seq.next_element_seed(EventSeed(&mut cols))?.is_some() {
            if cols.len() > EVENTS_MAX {
                return Err(give_up("too many events"));
            }
        }
        if cols.len() < EVENTS_MIN {
            return Err(give_up("too few events"));
        }
        Ok(cols)
    }
}

/// One `InputLogEvent`, appended to the columns.
struct EventSeed<'c>(&'c mut Columns);

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a log event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let cols = self.0;
        let start = cols.text.len();
        let (mut ts, mut message) = (None, None);
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "timestamp" => once(&mut ts, map.next_value::<i64>()?)?,
                "message" => {
                    if message.is_some() {
                        return Err(give_up("repeated key"));
                    }
                    map.next_value_seed(MessageSeed(&mut cols.text))?;
                    message = Some(());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (Some(ts), Some(())) = (ts, message) else {
            return Err(give_up("missing member"));
        };
        // Timestamp has min 0; EventMessage has min 1
        if ts < 0 || cols.text.len() == start {
            return Err(give_up("range"));
        }
        let end = u32::try_from(cols.text.len()).map_err(|_| give_up("too large"))?;
        cols.ts.push(ts);
        cols.ingest.push(0);
        cols.seq.push(0);
        cols.stream.push(0);
        cols.ends.push(end);
        Ok(())
    }
}

/// A message string, appended to the text buffer (unescaped).
struct MessageSeed<'t>(&'t mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for MessageSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The hand-written scan of the common PutLogEvents body: one UTF-8 check of the whole text, then
/// one pass in which each message's plain runs are found 16 bytes at a time (up to a `"`, `\\` or
/// control character) and copied straight into the text column. It answers `None` for anything outside its narrow grammar — a
/// key other than the model's members, an escape in a name, key or token, a `\\u` escape in a
/// message, a number other than plain decimal digits (at most 18), a repeated key, and every
/// JSON or model error — and [`decode`] then asks [`decode_serde`], so what `scan` accepts is
/// always a subset of what the serde decode accepts, with the same content (tested).
fn scan(json: &[u8]) -> Option<PutInput> {
    // valid UTF-8 everywhere, so every message (cut only at ASCII escapes) is valid UTF-8
    std::str::from_utf8(json).ok()?;
    let mut c = Cursor { b: json, i: 0 };
    c.expect(b'{')?;
    let (mut group, mut stream, mut events, mut token): (
        Option<&str>,
        Option<&str>,
        Option<Columns>,
        Option<&str>,
    ) = (None, None, None, None);
    loop {
        let key = c.key()?;
        match key {
            b"logGroupName" => once_opt(&mut group, c.plain_string()?)?,
            b"logStreamName" => once_opt(&mut stream, c.plain_string()?)?,
            b"sequenceToken" => once_opt(&mut token, c.plain_string()?)?,
            b"logEvents" => once_opt(&mut events, c.events(json.len())?)?,
            _ => return None,
        }
        match c.next_byte()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    c.ws();
    if c.i != json.len() {
        return None;
    }
    let (group, stream, events) = (group?, stream?, events?);
    if !name_ok(group) || !name_ok(stream) || token.is_some_and(str::is_empty) {
        return None;
    }
    Some(PutInput {
        group: group.to_string(),
        stream: stream.to_string(),
        events,
    })
}

fn once_opt<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// Whether `b` ends or interrupts a JSON string's plain run: a quote, a backslash or a control
/// character (which JSON forbids unescaped).
fn special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The index of the first [`special`] byte of `s` (or `s.len()`): one pass, 16 bytes at a time
/// (a branch-free test per 16-byte block, which the compiler turns into vector compares).
fn special_at(s: &[u8]) -> usize {
    let mut i = 0;
    // a fixed-size block, so the test compiles to vector compares and one mask
    while let Some(block) = s.get(i..i + 16).and_then(|b| <&[u8; 16]>::try_from(b).ok()) {
        if block.iter().fold(false, |any, &b| {
            any | (b == b'"') | (b == b'\\') | (b < 0x20)
        }) {
            break;
        }
        i += 16;
    }
    while let Some(&b) = s.get(i) {
        if special(b) {
            return i;
        }
        i += 1;
    }
    s.len()
}

/// A position in the body being scanned.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Skip JSON whitespace.
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    /// The next byte after whitespace (consumed).
    fn next_byte(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next_byte()? == want).then_some(())
    }

    /// A string without escapes or control characters; the cursor is past its closing quote.
    fn plain(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = &self.b[self.i..];
        // keys and names are short: a byte loop beats a vector search's setup
        let k = rest.iter().position(|&b| special(b))?;
        if rest[k] != b'"' {
            return None;
        }
        self.i += k + 1;
        Some(&rest[..k])
    }

    /// Whether the next token (after whitespace) is exactly `lit`; consumed if so.
    fn literal(&mut self, lit: &[u8]) -> bool {
        self.ws();
        let hit = self.b[self.i..].starts_with(lit);
        if hit {
            self.i += lit.len();
        }
        hit
    }

    /// An object key and its colon.
    fn key(&mut self) -> Option<&'a [u8]> {
        let k = self.plain()?;
        self.expect(b':')?;
        Some(k)
    }

    /// A string value without escapes.
    fn plain_string(&mut self) -> Option<&'a str> {
        // the whole body is valid UTF-8 and the quotes are ASCII
        std::str::from_utf8(self.plain()?).ok()
    }

    /// A string value appended to `out` unescaped (no `\u` escapes).
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.expect(b'"')?;
        loop {
            let rest = &self.b[self.i..];
            let k = special_at(rest);
            out.extend_from_slice(&rest[..k]);
            match *rest.get(k)? {
                b'"' => {
                    self.i += k + 1;
                    return Some(());
                }
                b'\\' => {}
                // a control character
                _ => return None,
            }
            let unescaped = match *rest.get(k + 1)? {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                _ => return None,
            };
            out.push(unescaped);
            self.i += k + 2;
        }
    }

    /// A non-negative integer written as plain decimal digits (no sign, fraction or exponent; no
    /// leading zero; at most 18 digits, so it fits an `i64`).
    fn digits(&mut self) -> Option<i64> {
        self.ws();
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(&d) = self.b.get(self.i) {
            if !d.is_ascii_digit() {
                break;
            }
            v = v * 10 + i64::from(d - b'0');
            self.i += 1;
            if self.i - start > 18 {
                return None;
            }
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        Some(v)
    }

    /// The `logEvents` list, into columns.
    fn events(&mut self, text_hint: usize) -> Option<Columns> {
        self.expect(b'[')?;
        let mut cols = Columns::default();
        cols.text.reserve(text_hint);
        loop {
            self.event(&mut cols)?;
            if cols.len() > EVENTS_MAX {
                return None;
            }
            match self.next_byte()? {
                b',' => continue,
                b']' => break,
                _ => return None,
            }
        }
        // an empty list failed at the first event (`]` is no object)
        Some(cols)
    }

    /// One `{"timestamp":…,"message":"…"}` (either order), appended to `cols`.
    fn event(&mut self, cols: &mut Columns) -> Option<()> {
        self.expect(b'{')?;
        let start = cols.text.len();
        let (mut ts, mut message) = (None, false);
        loop {
            // the two members as SDKs write them, else the general key
            let key: &[u8] = if self.literal(b"\"timestamp\":") {
                b"timestamp"
            } else if self.literal(b"\"message\":") {
                b"message"
            } else {
                self.key()?
            };
            match key {
                b"timestamp" => once_opt(&mut ts, self.digits()?)?,
                b"message" if !message => {
                    self.string_into(&mut cols.text)?;
                    message = true;
                }
                _ => return None,
            }
            match self.next_byte()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        let ts = ts?;
        // EventMessage has min 1
        if !message || cols.text.len() == start {
            return None;
        }
        let end = u32::try_from(cols.text.len()).ok()?;
        cols.ts.push(ts);
        cols.ingest.push(0);
        cols.seq.push(0);
        cols.stream.push(0);
        cols.ends.push(end);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn body(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn decodes_a_batch_with_escapes_and_unknown_members() {
        let raw = br#" {"logGroupName":"g/1","unknown":{"a":[1,2]},"logStreamName":"s\u00e9",
            "logEvents":[{"timestamp":5,"message":"plain"},{"message":"tab\there \"q\" \u00e9","timestamp":6,"x":null}],
            "sequenceToken":"49"} "#;
        let p = decode(raw).expect("fast path");
        assert_eq!(p.group, "g/1");
        assert_eq!(p.stream, "s\u{e9}");
        assert_eq!(p.events.ts, vec![5, 6]);
        assert_eq!(p.events.message(0), b"plain");
        assert_eq!(p.events.message(1), "tab\there \"q\" \u{e9}".as_bytes());
        assert_eq!(p.events.ingest, vec![0, 0]);
    }

    #[test]
    fn gives_up_on_everything_the_generic_path_must_answer() {
        let ok = json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 1, "message": "m"}]});
        assert!(decode(&body(&ok)).is_some());
        let mutate = |f: &dyn Fn(&mut Value)| {
            let mut v = ok.clone();
            f(&mut v);
            body(&v)
        };
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"   ".to_vec(),
            b"[]".to_vec(),
            b"{".to_vec(),
            [body(&ok), b"x".to_vec()].concat(),
            mutate(&|v| {
                v.as_object_mut().unwrap().remove("logGroupName");
            }),
            mutate(&|v| {
                v.as_object_mut().unwrap().remove("logStreamName");
            }),
            mutate(&|v| {
                v.as_object_mut().unwrap().remove("logEvents");
            }),
            mutate(&|v| v["logGroupName"] = Value::Null),
            mutate(&|v| v["logGroupName"] = json!("")),
            mutate(&|v| v["logGroupName"] = json!(7)),
            mutate(&|v| v["logStreamName"] = json!("x".repeat(513))),
            mutate(&|v| v["logEvents"] = json!([])),
            mutate(&|v| v["logEvents"] = Value::Null),
            mutate(&|v| v["logEvents"] = json!({})),
            mutate(&|v| v["logEvents"] = json!([null])),
            mutate(&|v| v["logEvents"][0]["timestamp"] = json!(-1)),
            mutate(&|v| v["logEvents"][0]["timestamp"] = json!(1.5)),
            mutate(&|v| v["logEvents"][0]["timestamp"] = json!("1")),
            mutate(&|v| v["logEvents"][0]["timestamp"] = json!(u64::MAX)),
            mutate(&|v| v["logEvents"][0]["timestamp"] = Value::Null),
            mutate(&|v| v["logEvents"][0]["message"] = json!("")),
            mutate(&|v| v["logEvents"][0]["message"] = json!(3)),
            mutate(&|v| {
                v["logEvents"][0].as_object_mut().unwrap().remove("message");
            }),
            mutate(&|v| v["sequenceToken"] = json!("")),
            mutate(&|v| v["sequenceToken"] = Value::Null),
            mutate(&|v| v["entity"] = json!({"keyAttributes": {"a": "b"}})),
            mutate(&|v| {
                v["logEvents"] = Value::Array(vec![json!({"timestamp": 1, "message": "m"}); 10_001])
            }),
            br#"{"logGroupName":"g","logGroupName":"h","logStreamName":"s","logEvents":[{"timestamp":1,"message":"m"}]}"#.to_vec(),
            br#"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"timestamp":2,"message":"m"}]}"#.to_vec(),
            br#"{"log\u0047roupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"m"}]}"#.to_vec(),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(
                decode(c).is_none(),
                "case {i}: {}",
                String::from_utf8_lossy(c)
            );
        }
        // lengths are characters, not bytes
        let wide = mutate(&|v| v["logGroupName"] = json!("\u{e9}".repeat(512)));
        assert!(decode(&wide).is_some());
        let exactly = mutate(&|v| {
            v["logEvents"] = Value::Array(vec![json!({"timestamp": 1, "message": "m"}); 10_000])
        });
        assert_eq!(decode(&exactly).unwrap().events.len(), 10_000);
    }

    /// The generic path's verdict: the decoded and validated document, or `None` for an error.
    fn generic(json: &[u8]) -> Option<Value> {
        use opsloop_wire::{codec, validate, Model};
        let model = Model::parse(crate::MODEL_JSON).unwrap();
        let op = model.operation("PutLogEvents").unwrap();
        let doc = codec::json::decode(&model, op, json).ok()?;
        validate::validate(&model, op.input.unwrap(), &doc).ok()?;
        Some(doc)
    }

    #[test]
    fn agrees_with_the_generic_decode_and_validation() {
        // every variation: the fast path either gives up or carries exactly what the generic
        // path accepts
        let names = [
            json!("g"),
            json!(""),
            json!("\u{e9}".repeat(600)),
            json!(null),
            json!(5),
        ];
        let events = [
            json!([{"timestamp": 0, "message": "a"}, {"timestamp": 7, "message": "b\"c"}]),
            json!([]),
            json!([{"timestamp": 1}]),
            json!([{"timestamp": -5, "message": "a"}]),
            json!([{"timestamp": 1.0, "message": "a"}]),
            json!([{"timestamp": 1, "message": ""}]),
            json!([{"timestamp": 1, "message": "x", "extra": [1]}]),
            json!([null]),
            json!("events"),
        ];
        let tokens = [None, Some(json!("")), Some(json!("t")), Some(json!(null))];
        let mut fast_count = 0;
        for g in &names {
            for e in &events {
                for t in &tokens {
                    let mut v = json!({"logGroupName": g, "logStreamName": "s", "logEvents": e});
                    if let Some(t) = t {
                        v["sequenceToken"] = t.clone();
                    }
                    let raw = body(&v);
                    let Some(fast) = decode(&raw) else { continue };
                    fast_count += 1;
                    let doc = generic(&raw).unwrap_or_else(|| panic!("generic refuses {v}"));
                    assert_eq!(doc["logGroupName"].as_str(), Some(fast.group.as_str()));
                    assert_eq!(doc["logStreamName"].as_str(), Some(fast.stream.as_str()));
                    let list = doc["logEvents"].as_array().unwrap();
                    assert_eq!(list.len(), fast.events.len());
                    for (i, ev) in list.iter().enumerate() {
                        assert_eq!(ev["timestamp"].as_i64(), Some(fast.events.ts[i]));
                        assert_eq!(
                            ev["message"].as_str().map(str::as_bytes),
                            Some(fast.events.message(i))
                        );
                    }
                }
            }
        }
        assert!(fast_count >= 4, "{fast_count}");
    }

    /// A deterministic byte generator for the mutation test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn the_scan_takes_what_sdks_send() {
        let sdk = br#"{"logGroupName":"/aws/app","logStreamName":"i-1","logEvents":[{"timestamp":1700000000000,"message":"GET /x user=u1 \"q\" a\\b \/ \t\n\r\b\f"},{"message":"caf\u00e9","timestamp":0}]}"#;
        // the last message has a \u escape: the scan leaves it to serde
        assert!(scan(sdk).is_none());
        let sdk = r#" { "logGroupName" : "/aws/app" , "sequenceToken":"1", "logStreamName":"i-1","logEvents":[ {"timestamp":1700000000000,"message":"GET /x user=u1 \"q\" a\\b \/ \t\n\r\b\f"} , {"message":"café ☃","timestamp":0}] } "#.as_bytes();
        let p = scan(sdk).expect("scan");
        assert_eq!(p, decode_serde(sdk).unwrap());
        assert_eq!(
            p.events.message(0),
            b"GET /x user=u1 \"q\" a\\b / \t\n\r\x08\x0c"
        );
        assert_eq!(p.events.message(1), "café ☃".as_bytes());
        assert_eq!(p.events.ts, vec![1_700_000_000_000, 0]);
        // what the scan refuses, serde still decodes
        for other in [
            &br#"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"\u0001"}]}"#[..],
            br#"{"logGroupName":"g\/h","logStreamName":"s","logEvents":[{"timestamp":1,"message":"m"}]}"#,
            br#"{"logGroupName":"g","logStreamName":"s","x":[1],"logEvents":[{"timestamp":1,"message":"m"}]}"#,
            br#"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"m","y":{}}]}"#,
            br#"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1234567890123456789,"message":"m"}]}"#,
        ] {
            assert!(scan(other).is_none(), "{}", String::from_utf8_lossy(other));
            assert!(decode(other).is_some(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn special_bytes_are_found_at_every_position() {
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100] {
            let plain = vec![b'a'; len];
            assert_eq!(special_at(&plain), len);
            for at in 0..len {
                for b in [b'"', b'\\', 0x00, 0x1f] {
                    let mut s = plain.clone();
                    s[at] = b;
                    // a later special byte does not hide the first
                    if at + 1 < len {
                        s[len - 1] = b'"';
                    }
                    assert_eq!(special_at(&s), at, "len {len} at {at} byte {b}");
                }
            }
        }
        // bytes of multi-byte characters and DEL are plain
        assert_eq!(special_at("é ☃ \x7f\"".as_bytes()), 8);
    }

    #[test]
    fn the_scan_agrees_with_serde_under_mutation() {
        // random edits of valid bodies: whatever the scan accepts, the serde decode accepts with
        // the same content (so, through `agrees_with_the_generic_decode_and_validation`, the
        // generic path does too)
        let seeds: Vec<Vec<u8>> = vec![
            br#"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":10,"message":"a \"b\" \\c"},{"message":"d\te","timestamp":20}],"sequenceToken":"t"}"#.to_vec(),
            r#" {"logEvents":[{"timestamp":0,"message":"x"}], "logStreamName":"é","logGroupName":"g/1"} "#.as_bytes().to_vec(),
        ];
        let alphabet = b"{}[]\":,\\ 0129-.eEtunlf/\x01\x7f\xc3\xa9ab";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut scanned, mut total) = (0, 0);
        for round in 0..20_000 {
            let mut b = seeds[round % seeds.len()].clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(b.len() + 1);
                match rng.below(3) {
                    0 if at < b.len() => {
                        b.remove(at);
                    }
                    1 if at < b.len() => b[at] = alphabet[rng.below(alphabet.len())],
                    _ => b.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            total += 1;
            if let Some(fast) = scan(&b) {
                scanned += 1;
                assert_eq!(
                    Some(fast),
                    decode_serde(&b),
                    "{}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
        assert!(scanned > 500 && scanned < total, "{scanned} of {total}");
    }

    #[test]
    fn bounds_are_the_models() {
        let model: Value = serde_json::from_str(crate::MODEL_JSON).unwrap();
        let shapes = &model["shapes"];
        for name in ["LogGroupName", "LogStreamName"] {
            assert_eq!(shapes[name]["min"], json!(NAME_MIN), "{name}");
            assert_eq!(shapes[name]["max"], json!(NAME_MAX), "{name}");
        }
        assert_eq!(shapes["InputLogEvents"]["min"], json!(EVENTS_MIN));
        assert_eq!(shapes["InputLogEvents"]["max"], json!(EVENTS_MAX));
        assert_eq!(shapes["EventMessage"]["min"], json!(1));
        assert_eq!(shapes["Timestamp"]["min"], json!(0));
        assert_eq!(shapes["SequenceToken"]["min"], json!(1));
        let request = &shapes["PutLogEventsRequest"];
        let mut members: Vec<&str> = request["members"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        // a new member with constraints would need handling here
        assert_eq!(
            members,
            [
                "entity",
                "logEvents",
                "logGroupName",
                "logStreamName",
                "sequenceToken"
            ]
        );
        let mut event: Vec<&str> = shapes["InputLogEvent"]["members"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        event.sort_unstable();
        assert_eq!(event, ["message", "timestamp"]);
        for s in [
            "EventMessage",
            "LogGroupName",
            "LogStreamName",
            "SequenceToken",
        ] {
            assert!(shapes[s]["enum"].is_null(), "{s}");
        }
    }
}
