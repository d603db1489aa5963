//! The PutEvents fast path: a typed, single-pass decode of the request's JSON text straight into
//! entries ([`PutInput`]), instead of a generic [`Value`](opsloop_core::Value) tree (one map per
//! entry) that the model validator then walks and PutEvents reads member by member.
//!
//! The gateway offers every awsJson body of an operation to `Service::decode_json_input`
//! (`opsloop_core`); this decoder answers only for inputs that the generic path (JSON decode, then
//! the model's types, required members, lengths and patterns) accepts unchanged, and gives up
//! (`None`) on anything else: malformed JSON, a missing `Entries` or a list of 0 or more than 10,
//! an entry that is not an object, a `null` or a value of the wrong type, a repeated key, a
//! resource longer than 2,048 characters, an `EventBusName` that is not a plain name of 1 to
//! 1,600 characters (ARNs take the generic path), and every member it does not handle (`Time`,
//! `TraceHeader`, `EndpointId`, members the model does not know). The gateway then takes the
//! generic path, so every error answer is exactly the generic one. The bounds below are the
//! model's; a test checks them against it.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Entries` length bounds.
pub const ENTRIES_MIN: usize = 1;
pub const ENTRIES_MAX: usize = 10;
/// Most characters of one `Resources` element.
pub const RESOURCE_MAX: usize = 2048;
/// `EventBusName` length bounds (characters).
pub const BUS_MIN: usize = 1;
pub const BUS_MAX: usize = 1600;

/// One entry as sent (members the fast path handles; `None`: absent).
#[derive(Debug, Default, PartialEq)]
pub struct PutEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub detail: Option<String>,
    pub resources: Option<Vec<String>>,
    pub event_bus_name: Option<String>,
}

/// A PutEvents input decoded by [`decode`].
#[derive(Debug, PartialEq)]
pub struct PutInput {
    pub entries: Vec<PutEntry>,
}

/// Decode a PutEvents input document from its JSON text, or `None` when the generic path must
/// handle it (see the module documentation).
pub fn decode(json: &[u8]) -> Option<PutInput> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let input = de.deserialize_map(TopVisitor).ok()?;
    de.end().ok()?;
    Some(input)
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

/// Characters in `s`, counted only when its byte length does not already decide `max`.
fn chars_at_most(s: &str, max: usize) -> bool {
    s.len() <= max || s.chars().count() <= max
}

/// A plain bus name the model's pattern accepts whether it is matched whole or searched for.
fn plain_bus_name(s: &str) -> bool {
    (BUS_MIN..=BUS_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Member names, read without allocating.
#[derive(Clone, Copy)]
enum Field {
    Entries,
    Source,
    DetailType,
    Detail,
    Resources,
    EventBusName,
    /// Anything else (the fast path gives up on it).
    Other,
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "Entries" => Field::Entries,
                    "Source" => Field::Source,
                    "DetailType" => Field::DetailType,
                    "Detail" => Field::Detail,
                    "Resources" => Field::Resources,
                    "EventBusName" => Field::EventBusName,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_str(FieldVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = PutInput;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a PutEvents request")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PutInput, A::Error> {
        let mut entries = None;
        while let Some(k) = map.next_key::<Field>()? {
            match k {
                Field::Entries => once(&mut entries, map.next_value_seed(EntriesSeed)?)?,
                _ => return Err(give_up("a member the fast path does not handle")),
            }
        }
        let entries = entries.ok_or_else(|| give_up("no Entries"))?;
        if !(ENTRIES_MIN..=ENTRIES_MAX).contains(&entries.len()) {
            return Err(give_up("Entries length"));
        }
        Ok(PutInput { entries })
    }
}

struct EntriesSeed;

impl<'de> DeserializeSeed<'de> for EntriesSeed {
    type Value = Vec<PutEntry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<PutEntry>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed {
    type Value = Vec<PutEntry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<PutEntry>, A::Error> {
        let mut out = Vec::with_capacity(ENTRIES_MAX);
        while let Some(e) = seq.next_element_seed(EntrySeed)? {
            if out.len() == ENTRIES_MAX {
                return Err(give_up("too many entries"));
            }
            out.push(e);
        }
        Ok(out)
    }
}

struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = PutEntry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PutEntry, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = PutEntry;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PutEntry, A::Error> {
        let mut e = PutEntry::default();
        while let Some(k) = map.next_key::<Field>()? {
            match k {
                Field::Source => once(&mut e.source, map.next_value::<String>()?)?,
                Field::DetailType => once(&mut e.detail_type, map.next_value::<String>()?)?,
                Field::Detail => once(&mut e.detail, map.next_value::<String>()?)?,
                Field::Resources => {
                    let list = map.next_value::<Vec<String>>()?;
                    if !list.iter().all(|r| chars_at_most(r, RESOURCE_MAX)) {
                        return Err(give_up("resource too long"));
                    }
                    once(&mut e.resources, list)?;
                }
                Field::EventBusName => {
                    let name = map.next_value::<String>()?;
                    if !plain_bus_name(&name) {
                        return Err(give_up("not a plain bus name"));
                    }
                    once(&mut e.event_bus_name, name)?;
                }
                Field::Entries | Field::Other => {
                    return Err(give_up("a member the fast path does not handle"))
                }
            }
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_core::Value;
    use serde_json::json;

    fn body(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn bounds_are_the_models() {
        let m: Value = serde_json::from_str(crate::MODEL_JSON).unwrap();
        let sh = &m["shapes"];
        assert_eq!(sh["PutEventsRequestEntryList"]["min"], ENTRIES_MIN);
        assert_eq!(sh["PutEventsRequestEntryList"]["max"], ENTRIES_MAX);
        assert_eq!(sh["EventResource"]["max"], RESOURCE_MAX);
        assert_eq!(sh["NonPartnerEventBusNameOrArn"]["min"], BUS_MIN);
        assert_eq!(sh["NonPartnerEventBusNameOrArn"]["max"], BUS_MAX);
        let entry = sh["PutEventsRequestEntry"]["members"].as_object().unwrap();
        let names: Vec<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "Detail",
                "DetailType",
                "EventBusName",
                "Resources",
                "Source",
                "Time",
                "TraceHeader"
            ],
            "a new member needs a decision here"
        );
        assert_eq!(sh["PutEventsRequestEntry"].get("required"), None);
    }

    #[test]
    fn decodes_what_the_sdks_send() {
        let raw = body(&json!({"Entries": [
            {"Source": "s", "DetailType": "t", "Detail": "{\"a\":1}", "Resources": ["r\u{e9}"]},
            {"EventBusName": "my-bus.1_x", "Source": "s2"}
        ]}));
        let p = decode(&raw).unwrap();
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].detail.as_deref(), Some("{\"a\":1}"));
        assert_eq!(p.entries[0].resources, Some(vec!["r\u{e9}".to_string()]));
        assert_eq!(p.entries[1].event_bus_name.as_deref(), Some("my-bus.1_x"));
        assert_eq!(p.entries[1].detail, None);
        // escapes in keys and values decode as the generic path decodes them
        let p = decode(br#"{"Entries":[{"Sourc\u0065":"a\"b","Detail":"{}"}]}"#).unwrap();
        assert_eq!(p.entries[0].source.as_deref(), Some("a\"b"));
    }

    #[test]
    fn gives_up_on_everything_the_generic_path_must_answer() {
        let long = "x".repeat(RESOURCE_MAX + 1);
        for v in [
            json!({}),
            json!({"Entries": []}),
            json!({"Entries": null}),
            json!({"Entries": [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]}),
            json!({"Entries": [null]}),
            json!({"Entries": ["x"]}),
            json!({"Entries": [{"Source": null}]}),
            json!({"Entries": [{"Source": 5}]}),
            json!({"Entries": [{"Detail": {"a": 1}}]}),
            json!({"Entries": [{"Resources": "r"}]}),
            json!({"Entries": [{"Resources": [long]}]}),
            json!({"Entries": [{"Resources": [null]}]}),
            json!({"Entries": [{"Time": 1}]}),
            json!({"Entries": [{"TraceHeader": "t"}]}),
            json!({"Entries": [{"Colour": "red"}]}),
            json!({"Entries": [{"EventBusName": ""}]}),
            json!({"Entries": [{"EventBusName": "arn:aws:events:us-east-1:111122223333:event-bus/b"}]}),
            json!({"Entries": [{"EventBusName": "a b"}]}),
            json!({"Entries": [{}], "EndpointId": "a.b"}),
            json!({"Entries": [{}], "Extra": 1}),
            json!([]),
        ] {
            assert_eq!(decode(&body(&v)), None, "{v}");
        }
        for raw in [
            &br#"{"Entries":[{"Source":"a","Source":"b"}]}"#[..],
            br#"{"Entries":[{}],"Entries":[{}]}"#,
            br#"{"Entries":[{}]} x"#,
            br#"{"Entries":[{}]"#,
        ] {
            assert_eq!(decode(raw), None, "{}", String::from_utf8_lossy(raw));
        }
        // 2,048 characters of several bytes each are still within the bound
        let wide = "\u{e9}".repeat(RESOURCE_MAX);
        assert!(decode(&body(&json!({"Entries": [{"Resources": [wide]}]}))).is_some());
    }

    /// The generic path's verdict: the decoded and validated document, or `None` for an error.
    fn generic(json: &[u8]) -> Option<Value> {
        use opsloop_wire::{codec, validate, Model};
        let model = Model::parse(crate::MODEL_JSON).unwrap();
        let op = model.operation("PutEvents").unwrap();
        let doc = codec::json::decode(&model, op, json).ok()?;
        validate::validate(&model, op.input.unwrap(), &doc).ok()?;
        Some(doc)
    }

    #[test]
    fn agrees_with_the_generic_decode_and_validation() {
        let sources = [
            json!("s"),
            json!(""),
            json!(null),
            json!(7),
            json!("\u{e9}\"\n"),
        ];
        let details = [
            None,
            Some(json!("{\"a\": [1, 2.50]}")),
            Some(json!("not json")),
            Some(json!({"a": 1})),
        ];
        let resources = [
            None,
            Some(json!([])),
            Some(json!(["r1", "arn:aws:ec2:us-east-1:1:instance/i-1"])),
            Some(json!(["x".repeat(RESOURCE_MAX)])),
            Some(json!(["x".repeat(RESOURCE_MAX + 1)])),
            Some(json!([1])),
        ];
        let buses = [
            None,
            Some(json!("default")),
            Some(json!("b".repeat(BUS_MAX))),
            Some(json!("b".repeat(BUS_MAX + 1))),
            Some(json!("")),
            Some(json!("a/b")),
        ];
        let counts = [0usize, 1, 3, 10, 11];
        let mut fast_count = 0;
        for src in &sources {
            for det in &details {
                for res in &resources {
                    for bus in &buses {
                        for &n in &counts {
                            let mut e = json!({"Source": src, "DetailType": "t"});
                            if let Some(d) = det {
                                e["Detail"] = d.clone();
                            }
                            if let Some(r) = res {
                                e["Resources"] = r.clone();
                            }
                            if let Some(b) = bus {
                                e["EventBusName"] = b.clone();
                            }
                            let v = json!({ "Entries": vec![e; n] });
                            let raw = body(&v);
                            let Some(fast) = decode(&raw) else { continue };
                            fast_count += 1;
                            let doc =
                                generic(&raw).unwrap_or_else(|| panic!("generic refuses {v}"));
                            let list = doc["Entries"].as_array().unwrap();
                            assert_eq!(list.len(), fast.entries.len());
                            for (g, f) in list.iter().zip(&fast.entries) {
                                let str_of = |k: &str| g.get(k).and_then(Value::as_str);
                                assert_eq!(str_of("Source"), f.source.as_deref());
                                assert_eq!(str_of("DetailType"), f.detail_type.as_deref());
                                assert_eq!(str_of("Detail"), f.detail.as_deref());
                                assert_eq!(str_of("EventBusName"), f.event_bus_name.as_deref());
                                let res: Option<Vec<&str>> = g
                                    .get("Resources")
                                    .and_then(Value::as_array)
                                    .map(|a| a.iter().filter_map(Value::as_str).collect());
                                assert_eq!(
                                    res,
                                    f.resources
                                        .as_ref()
                                        .map(|r| r.iter().map(String::as_str).collect())
                                );
                                let known = [
                                    "Source",
                                    "DetailType",
                                    "Detail",
                                    "Resources",
                                    "EventBusName",
                                ];
                                assert!(
                                    g.as_object()
                                        .unwrap()
                                        .keys()
                                        .all(|k| known.contains(&k.as_str())),
                                    "{g}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(fast_count >= 50, "{fast_count}");
    }

    #[test]
    fn random_mutations_never_disagree() {
        let base = body(&json!({"Entries": [
            {"Source": "s", "DetailType": "t", "Detail": "{\"a\":1}", "Resources": ["r"], "EventBusName": "b"}
        ]}));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"{}[]\",:\\ 0aE-.nul";
        for _ in 0..3000 {
            let mut raw = base.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % raw.len();
                raw[at] = alphabet[(next() as usize) % alphabet.len()];
            }
            if let Some(fast) = decode(&raw) {
                let doc = generic(&raw)
                    .unwrap_or_else(|| panic!("generic refuses {}", String::from_utf8_lossy(&raw)));
                assert_eq!(
                    doc["Entries"].as_array().map(Vec::len),
                    Some(fast.entries.len())
                );
            }
        }
    }
}
