//! PutEvents: per-entry validation and error codes, the event as EventBridge builds it (`version`,
//! `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`), matching
//! against the bus's compiled rules, and the durable acceptance through the outbox before the
//! answer. Also the two other ways events enter a bus: forwarding from a rule whose target is a bus,
//! and replays (`Events::replay_event`, called by `ext`).

use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};
use serde_json::{json, Map};

use crate::outbox::{Item, Record};
use crate::util::{self, internal, is_internal, iso_seconds, now_ms, resolve_bus, s, validation};
use crate::{ext, Events, ReplayDelivery};

/// Largest total size of a PutEvents request's entries (AWS's 256 KB).
pub const MAX_ENTRIES_BYTES: usize = 256 * 1024;

/// A new event id (a random UUID, as EventBridge's).
pub fn new_event_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// AWS's size of one entry.
fn entry_size(e: &Value) -> usize {
    let mut n = 0;
    if e.get("Time").is_some() {
        n += 14;
    }
    for k in ["Source", "DetailType", "Detail"] {
        n += s(e, k).map_or(0, str::len);
    }
    if let Some(r) = e.get("Resources").and_then(Value::as_array) {
        n += r
            .iter()
            .filter_map(Value::as_str)
            .map(str::len)
            .sum::<usize>();
    }
    n
}

/// Build the event of one entry, or the entry's (ErrorCode, ErrorMessage).
pub(crate) fn build_event(
    ctx: &RequestContext,
    entry: &Value,
    now: i64,
) -> Result<(String, String, String, Value), (&'static str, String)> {
    let required = |k: &str| {
        s(entry, k).filter(|v| !v.is_empty()).ok_or_else(|| {
            (
                "InvalidArgument",
                format!("Parameter {k} is not valid. Reason: {k} is a required argument."),
            )
        })
    };
    let source = required("Source")?;
    let detail_type = required("DetailType")?;
    let detail_text = required("Detail")?;
    if source.starts_with("aws.") && !is_internal(ctx) {
        return Err((
            "NotAuthorizedForSourceException",
            "Not authorized for the source.".into(),
        ));
    }
    let detail: Value = match serde_json::from_str(detail_text) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(("MalformedDetail", "Detail is malformed.".into())),
    };
    let (account, region, bus) = resolve_bus(ctx, s(entry, "EventBusName"));
    let time_ms = entry
        .get("Time")
        .and_then(Value::as_f64)
        .map(|t| (t * 1000.0) as i64)
        .unwrap_or(now);
    let resources = entry
        .get("Resources")
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let mut ev = Map::with_capacity(9);
    ev.insert("version".into(), "0".into());
    ev.insert("id".into(), new_event_id().into());
    ev.insert("detail-type".into(), detail_type.into());
    ev.insert("source".into(), source.into());
    ev.insert("account".into(), ctx.account_id.clone().into());
    ev.insert("time".into(), iso_seconds(time_ms).into());
    ev.insert("region".into(), ctx.region.clone().into());
    ev.insert("resources".into(), resources);
    ev.insert("detail".into(), detail);
    Ok((account, region, bus, Value::Object(ev)))
}

impl Events {
    pub(crate) async fn put_events(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let entries = input
            .get("Entries")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if entries.is_empty() || entries.len() > 10 {
            return Err(validation(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10",
            ));
        }
        if entries.iter().map(entry_size).sum::<usize>() > MAX_ENTRIES_BYTES {
            return Err(validation(
                "Total size of the entries in the request is over the limit.",
            ));
        }
        let now = now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut accepted: Vec<Item> = Vec::with_capacity(entries.len());
        let mut failed = 0usize;
        for entry in entries {
            let built = build_event(ctx, entry, now).and_then(|(account, region, bus, ev)| {
                self.check_bus_access(ctx, &account, &region, &bus)?;
                Ok((account, region, bus, ev))
            });
            match built {
                Ok((account, region, bus, event)) => {
                    results.push(json!({ "EventId": event["id"].clone() }));
                    let rules = self.registry.matching(&account, &region, &bus, &event);
                    accepted.push(Item {
                        account,
                        region,
                        bus,
                        event: Arc::new(event),
                        rules,
                    });
                }
                Err((code, message)) => {
                    failed += 1;
                    results.push(json!({ "ErrorCode": code, "ErrorMessage": message }));
                }
            }
        }
        self.accept(accepted, now, true).await?;
        Ok(json!({ "FailedEntryCount": failed, "Entries": results }))
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
        for it in &items {
            self.metrics
                .matched(&it.account, &it.region, &it.bus, &it.rules);
        }
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
            for i in record.items.iter().chain(rest.iter()) {
                let arn = util::bus_arn(&i.account, &i.region, &i.bus);
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
            event: Arc::new(event),
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
            event: Arc::new(event),
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
        let (account, region, bus, ev) = build_event(&ctx(), &e, 0).unwrap();
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
