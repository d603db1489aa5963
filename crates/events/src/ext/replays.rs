//! Replays: StartReplay/DescribeReplay/CancelReplay/ListReplays and the stepping of running replays.
//! A replay is one record in `events.ext.replays`, holding its state and a durable cursor (the key
//! of the last archived event handed to `Events::replay_event`). The worker steps every active
//! replay a batch at a time: STARTING → RUNNING → COMPLETED (or CANCELLING → CANCELLED, or FAILED
//! with a StateReason when the archive disappears or the core refuses an event). After a restart a
//! RUNNING replay resumes from its cursor; delivery is at-least-once (the events of the batch in
//! flight at a crash are replayed again).

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::archives::{self, row_time, rows_prefix, Archive};
use super::common::{
    already_exists, encode, get_record, limit_exceeded, list_page, not_found, now_secs,
    parse_events_arn, put_record, record_key, required_str, store_error, str_of, timestamp_ms,
    validation, T_ARCHIVED, T_ARCHIVES, T_REPLAYS,
};
use crate::{Events, ReplayDelivery};

/// Most replays active at once per account and region (STARTING, RUNNING or CANCELLING).
const MAX_ACTIVE: usize = 10;
/// Events replayed per step of one replay.
const BATCH: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Replay {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub archive_arn: String,
    pub archive_key: String,
    #[serde(default)]
    pub description: Option<String>,
    pub destination_arn: String,
    pub bus_name: String,
    #[serde(default)]
    pub filter_arns: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub state: String,
    #[serde(default)]
    pub state_reason: Option<String>,
    pub replay_start: f64,
    #[serde(default)]
    pub replay_end: Option<f64>,
    #[serde(default)]
    pub last_replayed: Option<f64>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub replayed: u64,
}

fn active(state: &str) -> bool {
    matches!(state, "STARTING" | "RUNNING" | "CANCELLING")
}

impl Replay {
    fn summary(&self) -> Value {
        let mut o = json!({
            "ReplayName": self.name,
            "EventSourceArn": self.archive_arn,
            "State": self.state,
            "EventStartTime": self.start_ms as f64 / 1000.0,
            "EventEndTime": self.end_ms as f64 / 1000.0,
            "ReplayStartTime": self.replay_start,
        });
        if let Some(r) = &self.state_reason {
            o["StateReason"] = json!(r);
        }
        if let Some(t) = self.last_replayed {
            o["EventLastReplayedTime"] = json!(t);
        }
        if let Some(t) = self.replay_end {
            o["ReplayEndTime"] = json!(t);
        }
        o
    }
}

fn missing(name: &str) -> ApiError {
    not_found(format!("Replay {name} does not exist."))
}

/// `Destination.FilterArns` must be rules of the destination bus.
fn check_filter(arn: &str, bus: &str) -> Result<(), ApiError> {
    let rest = parse_events_arn(arn, "rule").map(|(_, _, rest)| rest);
    let ok = match rest {
        Some(rest) => match rest.split_once('/') {
            Some((b, rule)) => b == bus && !rule.is_empty(),
            None => bus == "default" && !rest.is_empty(),
        },
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "Parameter Destination.FilterArns is not valid. Reason: '{arn}' is not a rule of event bus {bus}."
        )))
    }
}

pub(crate) fn start(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ReplayName")?;
    let source = required_str(input, "EventSourceArn")?;
    let start_ms = timestamp_ms(input, "EventStartTime")
        .ok_or_else(|| validation("EventStartTime must be specified."))?;
    let end_ms = timestamp_ms(input, "EventEndTime")
        .ok_or_else(|| validation("EventEndTime must be specified."))?;
    let destination = input
        .get("Destination")
        .filter(|d| d.is_object())
        .ok_or_else(|| validation("Destination must be specified."))?;
    let dest_arn = required_str(destination, "Arn")?;
    if start_ms >= end_ms {
        return Err(validation(
            "Parameter EventStartTime is not valid. Reason: EventStartTime must be before EventEndTime.",
        ));
    }
    let key = record_key(account, region, name);
    if get_record::<Replay>(&*events.control, T_REPLAYS, &key)?.is_some() {
        return Err(already_exists(format!("Replay {name} already exists.")));
    }
    let archive_name = parse_events_arn(source, "archive")
        .filter(|(r, a, _)| *r == region && *a == account)
        .map(|(_, _, n)| n)
        .ok_or_else(|| validation(format!("Parameter EventSourceArn is not valid. Reason: '{source}' is not an archive ARN of this account and region.")))?;
    let archive: Archive = archives::load(events, account, region, archive_name)?
        .ok_or_else(|| not_found(format!("Archive {archive_name} does not exist.")))?;
    if dest_arn != archive.source_arn {
        return Err(validation(
            "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.",
        ));
    }
    let bus_name = parse_events_arn(dest_arn, "event-bus")
        .map(|(_, _, b)| b.to_string())
        .unwrap_or_default();
    let filters: Vec<String> = destination
        .get("FilterArns")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for f in &filters {
        check_filter(f, &bus_name)?;
    }
    let _guard = events.ext.shared.write_lock.lock();
    let (running, _) = list_page::<Replay>(
        &*events.control,
        T_REPLAYS,
        account,
        region,
        &json!({}),
        |r| active(&r.state),
    )?;
    if running.len() >= MAX_ACTIVE {
        return Err(limit_exceeded(format!(
            "The requested resource exceeds the maximum number allowed ({MAX_ACTIVE} active replays)."
        )));
    }
    let replay = Replay {
        name: name.to_string(),
        arn: format!("arn:aws:events:{region}:{account}:replay/{name}"),
        account: account.to_string(),
        region: region.to_string(),
        archive_arn: archive.arn.clone(),
        archive_key: archive.key(),
        description: str_of(input, "Description").map(str::to_string),
        destination_arn: dest_arn.to_string(),
        bus_name,
        filter_arns: filters,
        start_ms,
        end_ms,
        state: "STARTING".into(),
        state_reason: None,
        replay_start: now_secs(),
        replay_end: None,
        last_replayed: None,
        cursor: None,
        replayed: 0,
    };
    let insert = WriteOp::Insert {
        table: T_REPLAYS.into(),
        key,
        value: encode(&replay),
    };
    events.control.batch(vec![insert]).map_err(|e| match e {
        opsloop_store::StoreError::Conflict { .. } => {
            already_exists(format!("Replay {name} already exists."))
        }
        e => store_error(e),
    })?;
    events.ext.shared.wake.notify_one();
    tracing::info!(account, region, replay = name, archive = %archive.arn, "replay started");
    Ok(
        json!({"ReplayArn": replay.arn, "State": replay.state, "ReplayStartTime": replay.replay_start}),
    )
}

pub(crate) fn describe(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ReplayName")?;
    let r: Replay = get_record(
        &*events.control,
        T_REPLAYS,
        &record_key(account, region, name),
    )?
    .ok_or_else(|| missing(name))?;
    let mut out = r.summary();
    out["ReplayArn"] = json!(r.arn);
    let mut dest = json!({"Arn": r.destination_arn});
    if !r.filter_arns.is_empty() {
        dest["FilterArns"] = json!(r.filter_arns);
    }
    out["Destination"] = dest;
    if let Some(d) = &r.description {
        out["Description"] = json!(d);
    }
    Ok(out)
}

pub(crate) fn cancel(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ReplayName")?;
    let key = record_key(account, region, name);
    let _guard = events.ext.shared.write_lock.lock();
    let mut r: Replay =
        get_record(&*events.control, T_REPLAYS, &key)?.ok_or_else(|| missing(name))?;
    if !matches!(r.state.as_str(), "STARTING" | "RUNNING") {
        return Err(ApiError::new(
            "IllegalStatusException",
            format!("Replay {name} is {} and cannot be cancelled.", r.state),
        ));
    }
    r.state = "CANCELLING".into();
    put_record(&*events.control, T_REPLAYS, &key, &r)?;
    events.ext.shared.wake.notify_one();
    Ok(json!({"ReplayArn": r.arn, "State": r.state}))
}

pub(crate) fn list(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let state = str_of(input, "State");
    let source = str_of(input, "EventSourceArn");
    let (page, token) =
        list_page::<Replay>(&*events.control, T_REPLAYS, account, region, input, |r| {
            state.is_none_or(|s| r.state == s) && source.is_none_or(|s| r.archive_arn == s)
        })?;
    let mut out = json!({"Replays": page.iter().map(Replay::summary).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// Move every active replay (all accounts) one batch on. Returns whether any is still active.
pub(crate) async fn step_all(events: &Events) -> Result<bool, ApiError> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = events
            .control
            .scan(T_REPLAYS, "", after.as_deref(), 500)
            .map_err(store_error)?;
        let full = rows.len() == 500;
        for (key, bytes) in rows {
            after = Some(key.clone());
            if serde_json::from_slice::<Replay>(&bytes).is_ok_and(|r| active(&r.state)) {
                keys.push(key);
            }
        }
        if !full {
            break;
        }
    }
    let mut more = false;
    for key in keys {
        more |= step(events, &key).await?;
    }
    Ok(more)
}

/// Apply `change` to the stored replay under the write lock; a cancellation requested meanwhile
/// wins over RUNNING/COMPLETED. Returns the stored record.
fn save(
    events: &Events,
    key: &str,
    change: impl FnOnce(&mut Replay),
) -> Result<Option<Replay>, ApiError> {
    let _guard = events.ext.shared.write_lock.lock();
    let Some(mut r) = get_record::<Replay>(&*events.control, T_REPLAYS, key)? else {
        return Ok(None);
    };
    let cancelling = r.state == "CANCELLING";
    change(&mut r);
    if cancelling && r.state != "FAILED" {
        r.state = "CANCELLED".into();
        r.replay_end = Some(now_secs());
    }
    put_record(&*events.control, T_REPLAYS, key, &r)?;
    Ok(Some(r))
}

fn finish(r: &mut Replay, state: &str, reason: Option<String>) {
    r.state = state.to_string();
    r.state_reason = reason;
    r.replay_end = Some(now_secs());
}

/// One batch of one replay. Returns whether it is still active.
async fn step(events: &Events, key: &str) -> Result<bool, ApiError> {
    let Some(r) = save(events, key, |r| {
        if r.state == "STARTING" {
            r.state = "RUNNING".into();
        }
    })?
    else {
        return Ok(false);
    };
    if r.state != "RUNNING" {
        return Ok(false);
    }
    let archive: Option<Archive> = get_record(&*events.control, T_ARCHIVES, &r.archive_key)?;
    if archive.is_none_or(|a| a.arn != r.archive_arn) {
        save(events, key, |r| {
            finish(
                r,
                "FAILED",
                Some("The archive was deleted during the replay.".into()),
            )
        })?;
        return Ok(false);
    }
    let prefix = rows_prefix(&r.archive_key);
    let after = r
        .cursor
        .clone()
        .unwrap_or_else(|| format!("{prefix}{:015}", r.start_ms.max(0)));
    let rows = events
        .control
        .scan(T_ARCHIVED, &prefix, Some(&after), BATCH)
        .map_err(store_error)?;
    let mut done = rows.len() < BATCH;
    let mut progress: Option<(String, i64)> = None;
    let mut count = 0u64;
    let mut failure = None;
    for (row_key, bytes) in rows {
        let Some(t) = row_time(&prefix, &row_key) else {
            continue;
        };
        if t >= r.end_ms {
            done = true;
            break;
        }
        let event: Value = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(_) => continue,
        };
        let to = ReplayDelivery {
            account_id: &r.account,
            region: &r.region,
            bus_name: &r.bus_name,
            rule_arns: &r.filter_arns,
            replay_name: &r.name,
        };
        if let Err(e) = events.replay_event(&to, event).await {
            tracing::warn!(replay = %r.name, error = %e, "replay of an archived event failed");
            failure = Some(format!("Replaying an event failed: {}", e.message));
            break;
        }
        progress = Some((row_key, t));
        count += 1;
    }
    let stored = save(events, key, |s| {
        if let Some((cursor, t)) = &progress {
            s.cursor = Some(cursor.clone());
            s.last_replayed = Some(*t as f64 / 1000.0);
            s.replayed += count;
        }
        if let Some(reason) = failure.take() {
            finish(s, "FAILED", Some(reason));
        } else if done && s.state == "RUNNING" {
            finish(s, "COMPLETED", None);
        }
    })?;
    Ok(stored.is_some_and(|s| active(&s.state)))
}
