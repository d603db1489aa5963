//! The event as it travels from PutEvents through the outbox to its targets: its JSON text, built
//! once, plus the decoded document, made only when something needs it (an `InputPath` or
//! `InputTransformer`, an archive's pattern, a bus or log-group target, a dead-letter copy).
//!
//! PutEvents writes the envelope (`version`, `id`, `detail-type`, `source`, `account`, `time`,
//! `region`, `resources`, `detail`) straight as text around the entry's `Detail`, which is checked
//! to be a JSON object and copied without its insignificant whitespace — so the common path (match
//! the text, store it in the outbox, hand it to an SNS topic unchanged) never decodes the event
//! into a document tree.

use std::fmt;
use std::sync::OnceLock;

use opsloop_core::Value;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One event: compact JSON text and, on demand, its document.
pub struct Event {
    text: String,
    value: OnceLock<Value>,
}

impl Event {
    /// An event given as a document (schedules, forwarding, replays, stored rows).
    pub fn from_value(value: Value) -> Event {
        let text = value.to_string();
        let cell = OnceLock::new();
        let _ = cell.set(value);
        Event { text, value: cell }
    }

    /// An event given as JSON text the caller built (a valid JSON object).
    pub(crate) fn from_text(text: String) -> Event {
        Event {
            text,
            value: OnceLock::new(),
        }
    }

    /// The event's JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The event as a document (decoded from the text the first time it is asked for).
    pub fn value(&self) -> &Value {
        self.value
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        Value::deserialize(d).map(Event::from_value)
    }
}

/// (De)serialize an `Arc<Event>` (an event shared by its deliveries) as the event document.
pub mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Event;

    pub fn serialize<S: Serializer>(e: &Arc<Event>, s: S) -> Result<S::Ok, S::Error> {
        e.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Event>, D::Error> {
        Event::deserialize(d).map(Arc::new)
    }
}

/// Append `s` to `out` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Append `text` — which must be one JSON object — to `out` without insignificant whitespace.
/// `None` (and `out` unchanged) when it is not a JSON object.
pub(crate) fn push_compact_object(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let trimmed = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if !trimmed.starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(trimmed);
    IgnoredAny::deserialize(&mut de).ok()?;
    de.end().ok()?;
    let bytes = trimmed.as_bytes();
    let mut in_string = false;
    let mut escaped = false;
    let mut run = 0; // start of the run of bytes still to copy
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.extend_from_slice(&bytes[run..i]);
            run = i + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compact(text: &str) -> Option<String> {
        let mut out = Vec::new();
        push_compact_object(&mut out, text)?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn compacts_objects_and_keeps_strings() {
        assert_eq!(
            compact(" {\n \"a\" : [1, 2.50 ,\"x y\"],\t\"b\\\" c\": {\"d\": \" \\\\\"} } ")
                .unwrap(),
            r#"{"a":[1,2.50,"x y"],"b\" c":{"d":" \\"}}"#
        );
        assert_eq!(compact("{}").unwrap(), "{}");
        assert_eq!(compact(r#"{"é": "ü ✓"}"#).unwrap(), r#"{"é":"ü ✓"}"#);
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for bad in [
            "[1]",
            "1",
            "\"x\"",
            "{",
            "{} {}",
            "{\"a\":}",
            "",
            "  ",
            "{\"a\":1} x",
        ] {
            assert_eq!(compact(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn text_and_value_agree() {
        let e = Event::from_value(json!({"id": "1", "detail": {"a": [1, "x"]}}));
        assert_eq!(e.text(), r#"{"id":"1","detail":{"a":[1,"x"]}}"#);
        let t = Event::from_text(e.text().to_string());
        assert_eq!(t.value(), e.value());
        assert_eq!(t, e);
        let stored = serde_json::to_string(&t).unwrap();
        let back: Event = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.text(), e.text());
        let mut s = Vec::new();
        push_json_str(&mut s, "a\"b\n");
        assert_eq!(s, br#""a\"b\n""#);
    }
}
