//! Subscription filters (Put/Describe/DeleteSubscriptionFilter) and their delivery.
//!
//! Destinations opsloop hosts: an EventBridge event bus (`arn:aws:events:<region>:<account>:event-bus/<name>`)
//! given directly, or a Logs destination (PutDestination) whose target is one. Kinesis, Firehose
//! and Lambda destinations are refused at PutSubscriptionFilter (opsloop hosts none of them).
//!
//! Delivery is durable and at-least-once: PutLogEvents, after the events are durable in the event
//! store and before it answers, writes one outbox row per (filter, batch of matching events of the
//! call's stream) into table `logs.suboutbox` of the control store (one atomic batch). A dispatcher
//! task (started by `Logs::start`) works the outbox in key order: it sends each row as AWS's
//! subscription payload (`messageType` DATA_MESSAGE, `owner`, `logGroup`, `logStream`,
//! `subscriptionFilters`, `logEvents`) in the `Detail` of one EventBridge `PutEvents` entry
//! (`Source` aws.logs, `DetailType` "CloudWatch Logs Subscription") through the [`Directory`], and
//! deletes the row only after the entry was accepted. Consecutive due rows of the same filter,
//! stream and destination are merged into one entry (as AWS batches) while it stays under the limit. Failures retry with exponential backoff (1 s
//! doubling to 5 min) for 24 hours, after which the row is dropped with a warning. Rows of a
//! `ByLogStream` filter are delivered in order per stream (a failing row holds back later rows of
//! the same filter and stream); `Random` rows are delivered independently. Rows are kept at most
//! [`MAX_DETAIL_BYTES`] of payload; a single event larger than that cannot be carried by a PutEvents
//! entry and is dropped at ingest with a warning.
//!
//! Creating a filter (or pointing it at a new destination) sends the CONTROL_MESSAGE synchronously;
//! if it cannot be delivered the call fails with InvalidParameterException and nothing is stored,
//! as AWS does when its test message fails.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, Directory, RequestContext, Value};
use opsloop_store::{ControlStore, WriteOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_str, req_str, store_err};
use crate::filters::{filter_prefix, SubscriptionRecord, SUBSCRIPTION_FILTERS};
use crate::pattern::Pattern;

/// The outbox table.
pub const OUTBOX: &str = "logs.suboutbox";
/// Largest `Detail` a row carries (a PutEvents entry may hold 256 KiB in all).
pub const MAX_DETAIL_BYTES: usize = 240 * 1024;
/// How long an undeliverable row is retried.
const GIVE_UP_MS: i64 = 86_400_000;
/// Rows sent per PutEvents call (EventBridge's limit).
const ENTRIES_PER_CALL: usize = 10;
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Where a subscription filter delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// An EventBridge bus ARN, with the bus's region and account.
    Bus {
        arn: String,
        region: String,
        account: String,
    },
    /// A Logs destination (region, account, name).
    Destination {
        region: String,
        account: String,
        name: String,
    },
}

/// Classify a destination ARN; destinations opsloop does not host are an InvalidParameterException
/// naming the fact.
pub fn classify(arn: &str) -> Result<Target, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2].is_empty() {
        return Err(error::invalid(format!(
            "Invalid destinationArn: {arn} is not an ARN."
        )));
    }
    let (service, region, account, resource) = (parts[2], parts[3], parts[4], parts[5]);
    match service {
        "events" => match resource.strip_prefix("event-bus/") {
            Some(name) if !name.is_empty() && !region.is_empty() && !account.is_empty() => {
                Ok(Target::Bus {
                    arn: arn.to_string(),
                    region: region.to_string(),
                    account: account.to_string(),
                })
            }
            _ => Err(error::invalid(format!(
                "Invalid destinationArn: {arn} is not an EventBridge event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)."
            ))),
        },
        "logs" => match resource.strip_prefix("destination:") {
            Some(name) if !name.is_empty() => Ok(Target::Destination {
                region: region.to_string(),
                account: account.to_string(),
                name: name.to_string(),
            }),
            _ => Err(error::invalid(format!(
                "Invalid destinationArn: {arn} is not a CloudWatch Logs destination ARN."
            ))),
        },
        "kinesis" | "firehose" | "lambda" => {
            let what = match service {
                "kinesis" => "Amazon Kinesis Data Streams",
                "firehose" => "Amazon Data Firehose",
                _ => "AWS Lambda",
            };
            Err(error::invalid(format!(
                "opsloop does not host {what}: subscription filters here deliver to EventBridge event buses (arn:aws:events:<region>:<account>:event-bus/<name>) or to Logs destinations targeting one."
            )))
        }
        other => Err(error::invalid(format!(
            "Unsupported destinationArn service '{other}': opsloop delivers subscription filters to EventBridge event buses or Logs destinations targeting one."
        ))),
    }
}

/// Resolve a filter's destination ARN to the event bus to deliver to.
fn resolve_bus(
    control: &dyn ControlStore,
    arn: &str,
) -> Result<(String, String, String), ApiError> {
    match classify(arn)? {
        Target::Bus {
            arn,
            region,
            account,
        } => Ok((arn, region, account)),
        Target::Destination {
            region,
            account,
            name,
        } => {
            let target = crate::policies::destination_target(control, &account, &region, &name)?
                .ok_or_else(|| {
                    error::not_found(format!("The specified destination {arn} does not exist."))
                })?;
            match classify(&target)? {
                Target::Bus {
                    arn,
                    region,
                    account,
                } => Ok((arn, region, account)),
                Target::Destination { .. } => Err(error::invalid(
                    "A Logs destination cannot target another Logs destination.",
                )),
            }
        }
    }
}

/// The AWS subscription payload of a control message.
pub fn control_message(now_ms: i64) -> Value {
    json!({
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{
            "id": "",
            "timestamp": now_ms,
            "message": "CWL CONTROL MESSAGE: Checking health of destination EventBridge event bus."
        }]
    })
}

fn put_events_input(bus_arn: &str, group_arn: &str, detail: &Value) -> Value {
    json!({
        "Source": "aws.logs",
        "DetailType": "CloudWatch Logs Subscription",
        "EventBusName": bus_arn,
        "Detail": detail.to_string(),
        "Resources": [group_arn],
    })
}

/// Send entries to one bus; returns per-entry success.
async fn send(
    dir: &Directory,
    account: &str,
    region: &str,
    entries: Vec<Value>,
) -> Result<Vec<Result<(), String>>, ApiError> {
    let n = entries.len();
    let out = dir
        .invoke(
            "EventBridge",
            account,
            region,
            "PutEvents",
            json!({ "Entries": entries }),
        )
        .await?;
    let results = out.get("Entries").and_then(Value::as_array);
    Ok((0..n)
        .map(|i| {
            let e = results.and_then(|r| r.get(i));
            match e.and_then(|e| e.get("ErrorCode")).and_then(Value::as_str) {
                Some(code) => Err(format!(
                    "{code}: {}",
                    e.and_then(|e| e.get("ErrorMessage"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )),
                None if results.is_none()
                    && out
                        .get("FailedEntryCount")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        > 0 =>
                {
                    Err("PutEvents reported failed entries".to_string())
                }
                None => Ok(()),
            }
        })
        .collect())
}

/// PutSubscriptionFilter: validate, send the control message to a new destination, store.
pub async fn put_filter(
    control: &dyn ControlStore,
    dir: Option<Arc<Directory>>,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let group = req_str(input, "logGroupName")?;
    let name = req_str(input, "filterName")?;
    let pattern = req_str(input, "filterPattern")?;
    Pattern::parse(pattern)?;
    let destination = req_str(input, "destinationArn")?;
    let g = crate::groups::load_group(control, ctx, group)?;
    let (bus, bus_region, bus_account) = resolve_bus(control, destination)?;
    let key = crate::filters::claim_filter_slot(
        control,
        SUBSCRIPTION_FILTERS,
        ctx,
        group,
        name,
        2,
        "Resource limit exceeded: a log group can have at most 2 subscription filters.",
    )?;
    let previous: Option<SubscriptionRecord> = control
        .get(SUBSCRIPTION_FILTERS, &key)
        .map_err(store_err)?
        .and_then(|b| serde_json::from_slice(&b).ok());
    if previous.as_ref().map(|p| p.destination_arn.as_str()) != Some(destination) {
        let Some(dir) = dir else {
            return Err(error::invalid(
                "Could not deliver test message to specified destination: EventBridge is not available in this opsloop process.",
            ));
        };
        let entry = put_events_input(&bus, &g.arn(), &control_message(now_ms));
        match send(&dir, &bus_account, &bus_region, vec![entry]).await {
            Ok(r) if r.iter().all(Result::is_ok) => {}
            Ok(r) => {
                let why = r.into_iter().find_map(Result::err).unwrap_or_default();
                return Err(error::invalid(format!(
                    "Could not deliver test message to specified destination: {why}"
                )));
            }
            Err(e) => {
                return Err(error::invalid(format!(
                    "Could not deliver test message to specified destination: {}",
                    e.message
                )))
            }
        }
    }
    let rec = SubscriptionRecord {
        group: group.to_string(),
        name: name.to_string(),
        pattern: pattern.to_string(),
        destination_arn: destination.to_string(),
        role_arn: opt_str(input, "roleArn").map(str::to_string),
        distribution: opt_str(input, "distribution")
            .unwrap_or("ByLogStream")
            .to_string(),
        creation_time: previous.map_or(now_ms, |p| p.creation_time),
    };
    control
        .put(
            SUBSCRIPTION_FILTERS,
            &key,
            &serde_json::to_vec(&rec).map_err(error::internal)?,
        )
        .map_err(store_err)?;
    Ok(json!({}))
}

/// The subscription filters of a group, with the account's subscription filter policies that
/// select it.
pub fn group_filters(
    control: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Vec<SubscriptionRecord>, ApiError> {
    let rows = control
        .scan(SUBSCRIPTION_FILTERS, &filter_prefix(ctx, group), None, 10)
        .map_err(store_err)?;
    let mut out: Vec<SubscriptionRecord> = rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect();
    out.extend(crate::accountpolicies::subscription_policies(
        control, ctx, group,
    )?);
    Ok(out)
}

/// One outbox row: a batch of one stream's events matched by one filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub account: String,
    pub region: String,
    pub group: String,
    pub stream: String,
    pub filter: String,
    pub destination: String,
    pub distribution: String,
    pub created: i64,
    /// The `logEvents` of the payload.
    pub events: Vec<Value>,
}

impl Row {
    fn payload(&self) -> Value {
        json!({
            "messageType": "DATA_MESSAGE",
            "owner": self.account,
            "logGroup": self.group,
            "logStream": self.stream,
            "subscriptionFilters": [self.filter],
            "logEvents": self.events,
        })
    }

    fn group_arn(&self) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{}",
            self.region, self.account, self.group
        )
    }

    /// Rows with the same order key are delivered in order.
    fn order_key(&self) -> Option<String> {
        (self.distribution != "Random").then(|| {
            format!(
                "{}/{}/{}:{}/{}",
                self.account, self.region, self.group, self.filter, self.stream
            )
        })
    }
}

/// Due outbox rows merged into one PutEvents entry: consecutive rows of the same filter, stream
/// and destination are carried together while the payload stays under [`MAX_DETAIL_BYTES`].
struct Due {
    keys: Vec<String>,
    row: Row,
    bus: String,
    size: usize,
}

/// Payload bytes of a row's events (without the envelope).
fn events_size(row: &Row) -> usize {
    row.events.iter().map(|e| e.to_string().len() + 1).sum()
}

/// The outbox's in-memory side: row key sequence, wake-ups, retry schedule.
pub struct Outbox {
    seq: AtomicU64,
    notify: tokio::sync::Notify,
    retry: Mutex<HashMap<String, (Instant, Duration)>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            seq: AtomicU64::new(0),
            notify: tokio::sync::Notify::new(),
            retry: Mutex::new(HashMap::new()),
        }
    }
}

/// AWS-style 56-digit event id of event `i` of a call at `now`.
fn event_id(ts: i64, now_ms: i64, i: usize) -> String {
    format!("{:019}{:019}{:018}", ts.max(0), now_ms.max(0), i)
}

impl Outbox {
    /// A fresh, increasing row key (stays above earlier keys across restarts while the clock does).
    fn next_key(&self) -> String {
        let floor = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut cur = self.seq.load(Ordering::SeqCst);
        loop {
            let next = (cur + 1).max(floor);
            match self
                .seq
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return format!("{next:020}"),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Outbox rows for `events` (timestamp ms, message) just stored in `stream` of `group` under
    /// `filters`; written in one atomic batch. Returns the number of rows.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &self,
        control: &dyn ControlStore,
        ctx: &RequestContext,
        group: &str,
        stream: &str,
        filters: &[SubscriptionRecord],
        events: &[(i64, &str)],
        now_ms: i64,
    ) -> Result<usize, ApiError> {
        let masker = crate::dataprotection::masker(control, ctx, group)?;
        let mut ops = Vec::new();
        for f in filters {
            let Ok(pattern) = Pattern::parse(&f.pattern) else {
                continue;
            };
            let base = Row {
                account: ctx.account_id.clone(),
                region: ctx.region.clone(),
                group: group.to_string(),
                stream: stream.to_string(),
                filter: f.name.clone(),
                destination: f.destination_arn.clone(),
                distribution: f.distribution.clone(),
                created: now_ms,
                events: Vec::new(),
            };
            let envelope = base.payload().to_string().len();
            let mut row = base.clone();
            let mut size = envelope;
            for (i, (ts, msg)) in events.iter().enumerate() {
                let Some(extracted) = pattern.extract(msg) else {
                    continue;
                };
                let shown = match &masker {
                    Some(m) => m.mask(msg, now_ms),
                    None => std::borrow::Cow::Borrowed(*msg),
                };
                let mut ev =
                    json!({"id": event_id(*ts, now_ms, i), "timestamp": ts, "message": shown});
                if matches!(pattern, Pattern::Space(_)) && !extracted.is_empty() {
                    let fields: serde_json::Map<String, Value> = extracted
                        .into_iter()
                        .map(|(k, v)| {
                            let s = match &v {
                                Value::String(s) => s.clone(),
                                Value::Number(n) => match n.as_f64() {
                                    Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                                        format!("{}", f as i64)
                                    }
                                    _ => n.to_string(),
                                },
                                other => other.to_string(),
                            };
                            (k.trim_start_matches('$').to_string(), Value::String(s))
                        })
                        .collect();
                    ev["extractedFields"] = Value::Object(fields);
                }
                let len = ev.to_string().len() + 1;
                if envelope + len > MAX_DETAIL_BYTES {
                    tracing::warn!(group, stream, filter = %f.name, bytes = len,
                        "log event too large for an EventBridge entry: not delivered to the subscription");
                    continue;
                }
                if size + len > MAX_DETAIL_BYTES {
                    let full = std::mem::replace(&mut row, base.clone());
                    ops.push(self.row_op(&full)?);
                    size = envelope;
                }
                size += len;
                row.events.push(ev);
            }
            if !row.events.is_empty() {
                ops.push(self.row_op(&row)?);
            }
        }
        let n = ops.len();
        if n > 0 {
            control.batch(ops).map_err(store_err)?;
            self.notify.notify_one();
        }
        Ok(n)
    }

    fn row_op(&self, row: &Row) -> Result<WriteOp, ApiError> {
        Ok(WriteOp::Put {
            table: OUTBOX.into(),
            key: self.next_key(),
            value: serde_json::to_vec(row).map_err(error::internal)?,
        })
    }

    /// Forget the retry schedule (after the control store was wiped).
    pub fn clear(&self) {
        self.retry.lock().clear();
    }

    /// Wake the dispatcher.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Wait for a wake-up or `timeout`.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }

    /// One pass over the outbox: deliver every due row. Returns (delivered, failed) row counts.
    pub async fn deliver_due(
        &self,
        control: &dyn ControlStore,
        dir: Option<Arc<Directory>>,
        now_ms: i64,
    ) -> Result<(usize, usize), ApiError> {
        let (mut delivered, mut failed) = (0, 0);
        let mut blocked: HashSet<String> = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let rows = control
                .scan(OUTBOX, "", after.as_deref(), 200)
                .map_err(store_err)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            // due rows, grouped by the bus they go to, merged per filter and stream
            let mut batches: HashMap<(String, String), Vec<Due>> = HashMap::new();
            let mut open: HashMap<String, usize> = HashMap::new();
            let now = Instant::now();
            for (key, bytes) in rows {
                let Ok(row) = serde_json::from_slice::<Row>(&bytes) else {
                    tracing::warn!(key, "unreadable subscription outbox row dropped");
                    control.delete(OUTBOX, &key).map_err(store_err)?;
                    continue;
                };
                let order = row.order_key();
                if order.as_ref().is_some_and(|o| blocked.contains(o)) {
                    continue;
                }
                let waiting = self
                    .retry
                    .lock()
                    .get(&key)
                    .is_some_and(|(due, _)| *due > now);
                if waiting {
                    if let Some(o) = order {
                        blocked.insert(o);
                    }
                    continue;
                }
                match resolve_bus(control, &row.destination) {
                    Ok((bus, region, account)) => {
                        let merge_key = format!(
                            "{}/{}/{}:{}/{}>{}",
                            row.account, row.region, row.group, row.filter, row.stream, bus
                        );
                        let size = events_size(&row);
                        let envelope = Row {
                            events: Vec::new(),
                            ..row.clone()
                        }
                        .payload()
                        .to_string()
                        .len();
                        let list = batches.entry((account, region)).or_default();
                        match open.get(&merge_key).and_then(|&i| list.get_mut(i)) {
                            Some(d) if envelope + d.size + size <= MAX_DETAIL_BYTES => {
                                d.keys.push(key);
                                d.size += size;
                                d.row.events.extend(row.events);
                            }
                            _ => {
                                open.insert(merge_key, list.len());
                                list.push(Due {
                                    keys: vec![key],
                                    row,
                                    bus,
                                    size,
                                });
                            }
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        self.failed(control, &key, &row, &e.message, now_ms, order, &mut blocked)?;
                    }
                }
            }
            for ((account, region), mut items) in batches {
                while !items.is_empty() {
                    // rows of an order key that failed earlier in this pass wait for the next one
                    items.retain(|d| d.row.order_key().is_none_or(|o| !blocked.contains(&o)));
                    let take = items.len().min(ENTRIES_PER_CALL);
                    let chunk: Vec<Due> = items.drain(..take).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    let entries: Vec<Value> = chunk
                        .iter()
                        .map(|d| put_events_input(&d.bus, &d.row.group_arn(), &d.row.payload()))
                        .collect();
                    let results = match &dir {
                        Some(d) => match send(d, &account, &region, entries).await {
                            Ok(r) => r,
                            Err(e) => vec![Err(e.message); chunk.len()],
                        },
                        None => vec![Err("no service directory".to_string()); chunk.len()],
                    };
                    for (due, result) in chunk.iter().zip(results) {
                        match result {
                            Ok(()) => {
                                let ops = due
                                    .keys
                                    .iter()
                                    .map(|k| WriteOp::Delete {
                                        table: OUTBOX.into(),
                                        key: k.clone(),
                                    })
                                    .collect();
                                control.batch(ops).map_err(store_err)?;
                                let mut retry = self.retry.lock();
                                for k in &due.keys {
                                    retry.remove(k);
                                }
                                delivered += due.keys.len();
                                tracing::debug!(group = %due.row.group, filter = %due.row.filter,
                                    bus = %due.bus, events = due.row.events.len(),
                                    "subscription batch delivered");
                            }
                            Err(why) => {
                                failed += due.keys.len();
                                for k in &due.keys {
                                    self.failed(
                                        control,
                                        k,
                                        &due.row,
                                        &why,
                                        now_ms,
                                        due.row.order_key(),
                                        &mut blocked,
                                    )?;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((delivered, failed))
    }

    #[allow(clippy::too_many_arguments)]
    fn failed(
        &self,
        control: &dyn ControlStore,
        key: &str,
        row: &Row,
        why: &str,
        now_ms: i64,
        order: Option<String>,
        blocked: &mut HashSet<String>,
    ) -> Result<(), ApiError> {
        if now_ms - row.created > GIVE_UP_MS {
            tracing::warn!(group = %row.group, filter = %row.filter, destination = %row.destination,
                events = row.events.len(), error = why, "subscription delivery given up after 24 hours");
            control.delete(OUTBOX, key).map_err(store_err)?;
            self.retry.lock().remove(key);
            return Ok(());
        }
        let mut retry = self.retry.lock();
        let backoff = retry
            .get(key)
            .map_or(MIN_BACKOFF, |(_, b)| (*b * 2).min(MAX_BACKOFF));
        retry.insert(key.to_string(), (Instant::now() + backoff, backoff));
        tracing::warn!(group = %row.group, filter = %row.filter, destination = %row.destination,
            error = why, retry_in_ms = backoff.as_millis() as u64, "subscription delivery failed");
        if let Some(o) = order {
            blocked.insert(o);
        }
        Ok(())
    }

    /// The earliest retry due, if any (for the dispatcher's sleep).
    pub fn next_retry(&self) -> Option<Instant> {
        self.retry.lock().values().map(|(d, _)| *d).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_destinations() {
        assert!(matches!(
            classify("arn:aws:events:us-east-1:123456789012:event-bus/default").unwrap(),
            Target::Bus { .. }
        ));
        assert_eq!(
            classify("arn:aws:logs:eu-west-1:111122223333:destination:d1").unwrap(),
            Target::Destination {
                region: "eu-west-1".into(),
                account: "111122223333".into(),
                name: "d1".into()
            }
        );
        for arn in [
            "arn:aws:kinesis:us-east-1:123456789012:stream/s",
            "arn:aws:firehose:us-east-1:123456789012:deliverystream/f",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ] {
            let e = classify(arn).unwrap_err();
            assert_eq!(e.kind, "InvalidParameterException");
            assert!(e.message.contains("opsloop does not host"), "{}", e.message);
        }
        assert!(classify("nope").is_err());
        assert!(classify("arn:aws:events:us-east-1:123456789012:rule/r").is_err());
    }

    #[test]
    fn event_ids_are_56_digits() {
        assert_eq!(event_id(1_700_000_000_000, 1_700_000_000_001, 3).len(), 56);
    }
}
