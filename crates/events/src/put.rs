//! PutEvents: per-entry validation and error codes, the event as EventBridge builds it (`version`,
//! `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`), matching
//! against the bus's compiled rules, and the durable acceptance through the outbox before the
//! answer, which is built as a document for the generic path and written straight as JSON text
//! for the fast path ([`PutAnswer`]). Also the two other ways events enter a bus: forwarding from a rule whose target is a bus,
//! and replays (`Events::replay_event`, called by `ext`).

use std::sync::Arc;

use std::io::Write as _;

use opsloop_core::{ApiError, RequestContext, Value};
use serde_json::json;

use crate::event::{push_compact_object, push_json_str, Event};
use crate::outbox::{Item, Record};
use crate::putdecode::{PutEntry, PutInput};
use crate::util::{
    self, internal, is_internal, iso_seconds, now_ms, resolve_bus_ref, s, validation,
};
use crate::{ext, Events, ReplayDelivery};

/// Largest total size of a PutEvents request's entries (AWS's 256 KB).
pub const MAX_ENTRIES_BYTES: usize = 256 * 1024;

/// A random (version 4) UUID, the form of EventBridge's event ids.
fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// A new event id (a random UUID, as EventBridge's).
pub fn new_event_id() -> String {
    random_uuid().hyphenated().to_string()
}

/// Append a new event id (36 lowercase hyphenated hex characters) to `out`, with no `String`
/// between.
fn push_event_id(out: &mut Vec<u8>) {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(random_uuid().hyphenated().encode_lower(&mut id).as_bytes());
}

/// The answer of one PutEvents call: per entry, the accepted event's id or the entry's error, in
/// the order of the entries. Rendered as the output document (generic path) or as its JSON text
/// (fast path); both say the same.
#[derive(Debug, Default)]
pub(crate) struct PutAnswer {
    failed: usize,
    entries: Vec<EntryAnswer>,
}

#[derive(Debug)]
enum EntryAnswer {
    /// The event id (ASCII).
    Accepted([u8; 36]),
    Failed(&'static str, String),
}

impl PutAnswer {
    /// The output document (`FailedEntryCount`, `Entries`).
    pub(crate) fn into_value(self) -> Value {
        let entries = self
            .entries
            .into_iter()
            .map(|e| {
                // Built directly: `json!` serializes each value into a document first.
                let mut o = serde_json::Map::with_capacity(2);
                match e {
                    EntryAnswer::Accepted(id) => {
                        let id = String::from_utf8_lossy(&id).into_owned();
                        o.insert("EventId".into(), Value::String(id));
                    }
                    EntryAnswer::Failed(code, message) => {
                        o.insert("ErrorCode".into(), code.into());
                        o.insert("ErrorMessage".into(), message.into());
                    }
                }
                Value::Object(o)
            })
            .collect();
        let mut out = serde_json::Map::with_capacity(2);
        out.insert("FailedEntryCount".into(), Value::from(self.failed));
        out.insert("Entries".into(), Value::Array(entries));
        Value::Object(out)
    }

    /// The output document's JSON text, as the wire layer's awsJson encoding of
    /// [`PutAnswer::into_value`] reads to a JSON parser.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + 52 * self.entries.len());
        let _ = write!(out, "{{\"FailedEntryCount\":{},\"Entries\":[", self.failed);
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match e {
                EntryAnswer::Accepted(id) => {
                    // An id is hex digits and hyphens: nothing to escape.
                    out.extend_from_slice(b"{\"EventId\":\"");
                    out.extend_from_slice(id);
                    out.extend_from_slice(b"\"}");
                }
                EntryAnswer::Failed(code, message) => {
                    out.extend_from_slice(b"{\"ErrorCode\":");
                    push_json_str(&mut out, code);
                    out.extend_from_slice(b",\"ErrorMessage\":");
                    push_json_str(&mut out, message);
                    out.push(b'}');
                }
            }
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// One PutEvents entry as PutEvents reads it, from either decode path: the generic request
/// document or the fast decoder's [`PutEntry`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EntryRef<'a> {
    source: Option<&'a str>,
    detail_type: Option<&'a str>,
    detail: Option<&'a str>,
    event_bus_name: Option<&'a str>,
    /// `Some(None)`: a `Time` that is not a number.
    time: Option<Option<f64>>,
    resources: Resources<'a>,
}

#[derive(Debug, Clone, Copy, Default)]
enum Resources<'a> {
    #[default]
    None,
    /// The request document's `Resources` array.
    Doc(&'a [Value]),
    List(&'a [String]),
}

impl<'a> Resources<'a> {
    fn each(self) -> impl Iterator<Item = &'a str> {
        let (doc, list): (&[Value], &[String]) = match self {
            Resources::None => (&[], &[]),
            Resources::Doc(d) => (d, &[]),
            Resources::List(l) => (&[], l),
        };
        doc.iter()
            .filter_map(Value::as_str)
            .chain(list.iter().map(String::as_str))
    }
}

impl<'a> EntryRef<'a> {
    /// An entry of the generic request document.
    pub(crate) fn of_doc(e: &'a Value) -> EntryRef<'a> {
        EntryRef {
            source: s(e, "Source"),
            detail_type: s(e, "DetailType"),
            detail: s(e, "Detail"),
            event_bus_name: s(e, "EventBusName"),
            time: e.get("Time").map(Value::as_f64),
            resources: match e.get("Resources") {
                Some(Value::Array(a)) => Resources::Doc(a),
                _ => Resources::None,
            },
        }
    }

    /// An entry of the fast decoder.
    pub(crate) fn of_decoded(e: &'a PutEntry) -> EntryRef<'a> {
        EntryRef {
            source: e.source.as_deref(),
            detail_type: e.detail_type.as_deref(),
            detail: e.detail.as_deref(),
            event_bus_name: e.event_bus_name.as_deref(),
            time: None,
            resources: e
                .resources
                .as_deref()
                .map_or(Resources::None, Resources::List),
        }
    }

    /// AWS's size of the entry.
    fn size(&self) -> usize {
        let mut n = 0;
        if self.time.is_some() {
            n += 14;
        }
        for v in [self.source, self.detail_type, self.detail] {
            n += v.map_or(0, str::len);
        }
        n + self.resources.each().map(str::len).sum::<usize>()
    }
}

/// Build the event of one entry — its JSON text, envelope written around the entry's `Detail` —
/// or the entry's (ErrorCode, ErrorMessage).
#[cfg(test)]
pub(crate) fn build_event(
    ctx: &RequestContext,
    entry: &Value,
    now: i64,
) -> Result<(String, String, String, Event), (&'static str, String)> {
    build_entry(ctx, &EntryRef::of_doc(entry), now)
        .map(|(a, r, b, ev)| (a.to_string(), r.to_string(), b.to_string(), ev))
}

/// The names of the bus an event goes to (account, region, bus), borrowed from the request.
type BusNames<'a> = (&'a str, &'a str, &'a str);

/// See `build_event`.
pub(crate) fn build_entry<'a>(
    ctx: &'a RequestContext,
    entry: &EntryRef<'a>,
    now: i64,
) -> Result<(&'a str, &'a str, &'a str, Event), (&'static str, String)> {
    fn required<'a>(k: &str, v: Option<&'a str>) -> Result<&'a str, (&'static str, String)> {
        v.filter(|v| !v.is_empty()).ok_or_else(|| {
            (
                "InvalidArgument",
                format!("Parameter {k} is not valid. Reason: {k} is a required argument."),
            )
        })
    }
    let source = required("Source", entry.source)?;
    let detail_type = required("DetailType", entry.detail_type)?;
    let detail_text = required("Detail", entry.detail)?;
    if source.starts_with("aws.") && !is_internal(ctx) {
        return Err((
            "NotAuthorizedForSourceException",
            "Not authorized for the source.".into(),
        ));
    }
    let (account, region, bus) = resolve_bus_ref(ctx, entry.event_bus_name);
    let time_ms = entry
        .time
        .flatten()
        .map(|t| (t * 1000.0) as i64)
        .unwrap_or(now);
    let mut t = Vec::with_capacity(256 + detail_text.len());
    t.extend_from_slice(b"{\"version\":\"0\",\"id\":\"");
    push_event_id(&mut t);
    t.extend_from_slice(b"\",\"detail-type\":");
    push_json_str(&mut t, detail_type);
    t.extend_from_slice(b",\"source\":");
    push_json_str(&mut t, source);
    t.extend_from_slice(b",\"account\":");
    push_json_str(&mut t, &ctx.account_id);
    t.extend_from_slice(b",\"time\":\"");
    t.extend_from_slice(iso_seconds(time_ms).as_bytes());
    t.extend_from_slice(b"\",\"region\":");
    push_json_str(&mut t, &ctx.region);
    t.extend_from_slice(b",\"resources\":[");
    for (i, r) in entry.resources.each().enumerate() {
        if i > 0 {
            t.push(b',');
        }
        push_json_str(&mut t, r);
    }
    t.extend_from_slice(b"],\"detail\":");
    if push_compact_object(&mut t, detail_text).is_none() {
        return Err(("MalformedDetail", "Detail is malformed.".into()));
    }
    t.push(b'}');
    let text =
        String::from_utf8(t).map_err(|_| ("MalformedDetail", "Detail is malformed.".into()))?;
    Ok((account, region, bus, Event::from_text(text)))
}

/// Where the event id is in event text built by [`build_entry`] (it starts with the version and
/// id).
const ID_AT: usize = r#"{"version":"0","id":""#.len();

/// The event id inside event text built by [`build_entry`].
#[cfg(test)]
fn event_id(text: &str) -> &str {
    text.get(ID_AT..ID_AT + 36).unwrap_or_default()
}

/// The event id inside event text built by [`build_entry`], as bytes.
fn event_id_bytes(text: &str) -> [u8; 36] {
    text.as_bytes()
        .get(ID_AT..ID_AT + 36)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([b'0'; 36])
}

impl Events {
    /// PutEvents from the generic request document.
    pub(crate) async fn put_events(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let entries: Vec<EntryRef<'_>> = input
            .get("Entries")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(EntryRef::of_doc).collect())
            .unwrap_or_default();
        self.put_entries(ctx, &entries)
            .await
            .map(PutAnswer::into_value)
    }

    /// PutEvents from the fast decoder's input; the answer as the output document's JSON text
    /// (see [`opsloop_core::DecodedOutput`]).
    pub(crate) async fn put_decoded(
        &self,
        ctx: &RequestContext,
        input: &PutInput,
    ) -> Result<PutAnswer, ApiError> {
        let entries: Vec<EntryRef<'_>> = input.entries.iter().map(EntryRef::of_decoded).collect();
        self.put_entries(ctx, &entries).await
    }

    async fn put_entries(
        &self,
        ctx: &RequestContext,
        entries: &[EntryRef<'_>],
    ) -> Result<PutAnswer, ApiError> {
        if entries.is_empty() || entries.len() > 10 {
            return Err(validation(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10",
            ));
        }
        if entries.iter().map(EntryRef::size).sum::<usize>() > MAX_ENTRIES_BYTES {
            return Err(validation(
                "Total size of the entries in the request is over the limit.",
            ));
        }
        let now = now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut accepted: Vec<Item> = Vec::with_capacity(entries.len());
        let mut failed = 0usize;
        // Entries of one call nearly always name one bus: its access check is made once, and its
        // names are copied once and shared by the call's items.
        let mut checked: Option<(BusNames<'_>, [Arc<str>; 3])> = None;
        for entry in entries {
            let built = build_entry(ctx, entry, now).and_then(|(account, region, bus, ev)| {
                let same = checked
                    .as_ref()
                    .is_some_and(|(names, _)| *names == (account, region, bus));
                if !same {
                    self.check_bus_access(ctx, account, region, bus)?;
                    let shared = [account.into(), region.into(), bus.into()];
                    checked = Some(((account, region, bus), shared));
                }
                Ok(ev)
            });
            match built {
                Ok(event) => {
                    let Some(((account, region, bus), [a, r, b])) = &checked else {
                        return Err(internal("bus names not recorded"));
                    };
                    results.push(EntryAnswer::Accepted(event_id_bytes(event.text())));
                    let rules =
                        self.registry
                            .matching_json(account, region, bus, event.text().as_bytes());
                    accepted.push(Item {
                        account: a.clone(),
                        region: r.clone(),
                        bus: b.clone(),
                        event: Arc::new(event),
                        rules,
                    });
                }
                Err((code, message)) => {
                    failed += 1;
                    results.push(EntryAnswer::Failed(code, message));
                }
            }
        }
        self.accept(accepted, now, true).await?;
        Ok(PutAnswer {
            failed,
            entries: results,
        })
    }

    /// May the caller put events on this bus? (Another account's bus needs its policy's consent.)
    fn check_bus_access(
        &self,
        ctx: &RequestContext,
        account: &str,
        region: &str,
        bus: &str,
    ) -> Result<(), (&'static str, String)> {
        let Some(b) = self.registry.bus(account, region, bus) else {
            return Err((
                "ResourceNotFoundException",
                format!("Event bus {bus} does not exist."),
            ));
        };
        if account == ctx.account_id || is_internal(ctx) {
            return Ok(());
        }
        let allowed = b
            .policy
            .as_ref()
            .and_then(|p| p.get("Statement"))
            .and_then(Value::as_array)
            .is_some_and(|stmts| {
                stmts.iter().any(|st| {
                    let p = st.get("Principal");
                    st.get("Effect").and_then(Value::as_str) == Some("Allow")
                        && (p == Some(&json!("*"))
                            || p.and_then(|p| p.get("AWS")).is_some_and(|a| {
                                let who = a.as_str().unwrap_or_default();
                                who == ctx.account_id
                                    || who.contains(&format!(":{}:", ctx.account_id))
                            }))
                })
            });
        if allowed {
            Ok(())
        } else {
            Err((
                "AccessDeniedException",
                format!("Not authorized to put events on event bus {bus}."),
            ))
        }
    }

    /// Make `items` durable (those that matched a rule), then archive them; `archive`: also hand
    /// each event to `ext::archive_event`.
    pub(crate) async fn accept(
        &self,
        items: Vec<Item>,
        now: i64,
        archive: bool,
    ) -> Result<(), ApiError> {
        // MatchedEvents are counted when the dispatcher takes the committed record.
        let (to_deliver, rest): (Vec<Item>, Vec<Item>) =
            items.into_iter().partition(|i| !i.rules.is_empty());
        let record = Arc::new(Record {
            accepted_ms: now,
            items: to_deliver,
        });
        if !record.items.is_empty() {
            self.outbox
                .commit(Some(record.clone()), Vec::new())
                .await
                .map_err(internal)?;
        }
        if archive {
            let mut arn = String::new();
            let mut arn_of: Option<(&str, &str, &str)> = None;
            let mut archived = false;
            for i in record.items.iter().chain(rest.iter()) {
                let this = (&*i.account, &*i.region, &*i.bus);
                if arn_of != Some(this) {
                    arn = util::bus_arn(&i.account, &i.region, &i.bus);
                    arn_of = Some(this);
                    // A bus without archives (the common case) costs one look per call.
                    archived = ext::has_archives(self, &arn);
                }
                if !archived {
                    continue;
                }
                if let Err(e) =
                    ext::archive_event(self, &i.account, &i.region, &arn, &i.event).await
                {
                    tracing::error!(bus = %arn, error = %e, "cannot archive an accepted event");
                }
            }
        }
        Ok(())
    }

    /// Deliver `event` (already built) to bus `name` of `account`/`region`: the target of a rule
    /// whose target is an event bus. The event keeps its id, time, account and source.
    pub(crate) async fn forward(
        &self,
        account: &str,
        region: &str,
        name: &str,
        event: Value,
    ) -> Result<(), ApiError> {
        if self.registry.bus(account, region, name).is_none() {
            return Err(util::not_found(format!("Event bus {name} does not exist.")));
        }
        let rules = self.registry.matching(account, region, name, &event);
        let item = Item {
            account: account.into(),
            region: region.into(),
            bus: name.into(),
            event: Arc::new(Event::from_value(event)),
            rules,
        };
        self.accept(vec![item], now_ms(), true).await
    }

    /// See [`Events::replay_event`].
    pub(crate) async fn replay(
        &self,
        to: &ReplayDelivery<'_>,
        mut event: Value,
    ) -> Result<(), ApiError> {
        if let Some(o) = event.as_object_mut() {
            o.insert("replay-name".into(), to.replay_name.into());
        }
        let mut rules = self
            .registry
            .matching(to.account_id, to.region, to.bus_name, &event);
        if !to.rule_arns.is_empty() {
            rules.retain(|r| {
                let arn = util::rule_arn(to.account_id, to.region, to.bus_name, r);
                to.rule_arns.contains(&arn)
            });
        }
        let item = Item {
            account: to.account_id.into(),
            region: to.region.into(),
            bus: to.bus_name.into(),
            event: Arc::new(Event::from_value(event)),
            rules,
        };
        self.accept(vec![item], now_ms(), false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        let mut c = RequestContext::internal("111122223333", "us-east-1", "PutEvents");
        c.request_id = "r1".into();
        c.access_key_id = Some("AKID".into());
        c
    }

    #[test]
    fn builds_events_as_eventbridge_does() {
        let e = json!({"Source": "my.app", "DetailType": "t", "Detail": "{\"a\":1}", "Time": 1_795_296_820.5, "Resources": ["r1"]});
        let (account, region, bus, event) = build_event(&ctx(), &e, 0).unwrap();
        let ev = event.value().clone();
        assert_eq!(event_id(event.text()), ev["id"].as_str().unwrap());
        assert_eq!(
            (account.as_str(), region.as_str(), bus.as_str()),
            ("111122223333", "us-east-1", "default")
        );
        let keys: Vec<&str> = ev.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "version",
                "id",
                "detail-type",
                "source",
                "account",
                "time",
                "region",
                "resources",
                "detail"
            ]
        );
        assert_eq!(ev["time"], "2026-11-21T21:33:40Z");
        assert_eq!(ev["detail"], json!({"a": 1}));
        assert_eq!(ev["id"].as_str().unwrap().len(), 36);
        assert_eq!(ev["resources"], json!(["r1"]));
        assert_eq!(ev["source"], "my.app");
        let (_, _, _, spaced) = build_event(
            &ctx(),
            &json!({"Source": "s\"q", "DetailType": "t", "Detail": " { \"a b\" : [1, 2.50] } "}),
            0,
        )
        .unwrap();
        assert!(
            spaced
                .text()
                .ends_with(r#","resources":[],"detail":{"a b":[1,2.50]}}"#),
            "{}",
            spaced.text()
        );
        assert_eq!(spaced.value()["source"], "s\"q");
    }

    #[test]
    fn event_ids_are_random_v4_uuids_written_in_place() {
        let mut a = b"x".to_vec();
        push_event_id(&mut a);
        let id = std::str::from_utf8(&a[1..]).unwrap();
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id, parsed.hyphenated().to_string(), "lowercase, hyphenated");
        let mut b = Vec::new();
        push_event_id(&mut b);
        assert_ne!(&a[1..], &b[..]);
        assert_eq!(
            uuid::Uuid::parse_str(&new_event_id())
                .unwrap()
                .get_version_num(),
            4
        );
    }

    #[test]
    fn the_answer_text_says_what_the_answer_document_says() {
        let id = *b"0f8e7d6c-5b4a-4392-8170-a1b2c3d4e5f6";
        let answer = || PutAnswer {
            failed: 2,
            entries: vec![
                EntryAnswer::Accepted(id),
                EntryAnswer::Failed(
                    "InvalidArgument",
                    "quote \" backslash \\ nl \n tab \t ctl \u{1} é ✓".into(),
                ),
                EntryAnswer::Accepted(id),
                EntryAnswer::Failed("MalformedDetail", "Detail is malformed.".into()),
            ],
        };
        let text = answer().to_json();
        let parsed: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(parsed, answer().into_value());
        assert_eq!(
            parsed["Entries"][0]["EventId"],
            std::str::from_utf8(&id).unwrap()
        );
        assert!(text.starts_with(br#"{"FailedEntryCount":2,"Entries":[{"EventId":"0f8e"#));
        let empty = PutAnswer::default();
        assert_eq!(empty.to_json(), br#"{"FailedEntryCount":0,"Entries":[]}"#);
        assert_eq!(
            empty.into_value(),
            json!({"FailedEntryCount": 0, "Entries": []})
        );
    }

    #[test]
    fn entry_errors() {
        let code = |e: Value| build_event(&ctx(), &e, 0).unwrap_err().0;
        assert_eq!(
            code(json!({"DetailType": "t", "Detail": "{}"})),
            "InvalidArgument"
        );
        assert_eq!(
            code(json!({"Source": "s", "Detail": "{}"})),
            "InvalidArgument"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "t"})),
            "InvalidArgument"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "t", "Detail": "[1]"})),
            "MalformedDetail"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "t", "Detail": "{"})),
            "MalformedDetail"
        );
        assert_eq!(
            code(json!({"Source": "aws.ec2", "DetailType": "t", "Detail": "{}"})),
            "NotAuthorizedForSourceException"
        );
        let internal = RequestContext::internal("111122223333", "us-east-1", "PutEvents");
        assert!(build_event(
            &internal,
            &json!({"Source": "aws.cloudwatch", "DetailType": "t", "Detail": "{}"}),
            0
        )
        .is_ok());
    }
}
