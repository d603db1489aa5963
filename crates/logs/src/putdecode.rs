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
/// handle it (see the module documentation).
pub fn decode(json: &[u8]) -> Option<PutInput> {
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
