//! Archives: Create/Describe/Update/Delete/List, the archiving of accepted events, and retention.
//! An archive's record (`events.ext.archives`) carries its EventCount and SizeBytes; each archived
//! event is one row of `events.ext.archived_events` keyed `account/region/archive/<time ms>/<id>`
//! (so a replay reads a time range in order), written in the same atomic batch as the counters.
//! Which archives a bus feeds is cached in memory by bus ARN (patterns compiled), rebuilt from the
//! store after any archive change; events older than `RetentionDays` are deleted by the worker.

use std::collections::HashMap;
use std::sync::Arc;

use opsloop_core::{ApiError, Value};
use opsloop_eventpattern::Pattern;
use opsloop_store::{ControlStore, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common::{
    already_exists, count_records, encode, get_record, limit_exceeded, list_page, not_found,
    now_ms, now_secs, parse_events_arn, record_key, required_str, store_error, str_of, validation,
    T_ARCHIVED, T_ARCHIVES,
};
use super::Shared;
use crate::Events;

/// Most archives per account and region (AWS documents no lower quota).
const MAX_ARCHIVES: usize = 10_000;
const PAGE: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Archive {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub source_arn: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kms_key: Option<String>,
    pub retention_days: i64,
    pub state: String,
    pub created: f64,
    pub event_count: i64,
    pub size_bytes: i64,
}

impl Archive {
    pub(crate) fn key(&self) -> String {
        record_key(&self.account, &self.region, &self.name)
    }

    fn summary(&self) -> Value {
        json!({
            "ArchiveName": self.name,
            "EventSourceArn": self.source_arn,
            "State": self.state,
            "RetentionDays": self.retention_days,
            "SizeBytes": self.size_bytes,
            "EventCount": self.event_count,
            "CreationTime": self.created,
        })
    }
}

/// One archive as the archiving path sees it.
pub(crate) struct CachedArchive {
    key: String,
    pattern: Option<Pattern>,
}

pub(crate) type BusArchives = Vec<CachedArchive>;

/// The prefix of an archive's event rows.
pub(crate) fn rows_prefix(archive_key: &str) -> String {
    format!("{archive_key}/")
}

/// The time (ms) encoded in an event row's key.
pub(crate) fn row_time(prefix: &str, key: &str) -> Option<i64> {
    key.strip_prefix(prefix)?.split('/').next()?.parse().ok()
}

fn compile(pattern: Option<&str>) -> Result<Option<Pattern>, ApiError> {
    match pattern {
        None => Ok(None),
        Some(p) => opsloop_eventpattern::parse(p)
            .map(Some)
            .map_err(|e| ApiError::new("InvalidEventPatternException", e.0)),
    }
}

fn invalidate(shared: &Shared) {
    *shared.archives.write() = None;
}

fn cache(
    shared: &Shared,
    control: &dyn ControlStore,
) -> Result<Arc<HashMap<String, BusArchives>>, ApiError> {
    if let Some(map) = shared.archives.read().as_ref() {
        return Ok(Arc::clone(map));
    }
    let mut map: HashMap<String, BusArchives> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let rows = control
            .scan(T_ARCHIVES, "", after.as_deref(), PAGE)
            .map_err(store_error)?;
        let full = rows.len() == PAGE;
        for (key, bytes) in rows {
            after = Some(key.clone());
            let Ok(archive) = serde_json::from_slice::<Archive>(&bytes) else {
                continue;
            };
            let pattern = match compile(archive.pattern.as_deref()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(archive = %archive.arn, error = %e.message, "archive pattern does not compile; archive skipped");
                    continue;
                }
            };
            map.entry(archive.source_arn.clone())
                .or_default()
                .push(CachedArchive { key, pattern });
        }
        if !full {
            break;
        }
    }
    let map = Arc::new(map);
    *shared.archives.write() = Some(Arc::clone(&map));
    Ok(map)
}

/// The time of an event (its `time` field) in ms; now when absent or unreadable.
fn event_time_ms(event: &Value) -> i64 {
    event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or_else(now_ms)
}

/// Does the bus `bus_arn` have any archive? (Checked before an event is decoded for them.)
pub(crate) fn has_archives(events: &Events, bus_arn: &str) -> Result<bool, ApiError> {
    Ok(cache(&events.ext.shared, &*events.control)?.contains_key(bus_arn))
}

/// One archive_event call waiting for the group commit.
pub(crate) struct Pending {
    /// (archive record key, event row key) pairs to write with `bytes`.
    rows: Vec<(String, String)>,
    bytes: Vec<u8>,
    done: tokio::sync::oneshot::Sender<Result<(), ApiError>>,
}

/// Archive writes waiting, and whether a caller is writing them (the leader).
#[derive(Default)]
pub(crate) struct ArchiveQueue {
    pending: Vec<Pending>,
    leader: bool,
}

pub(crate) async fn archive_event(
    events: &Events,
    _account: &str,
    _region: &str,
    bus_arn: &str,
    event: &Value,
) -> Result<(), ApiError> {
    let shared = &*events.ext.shared;
    let map = cache(shared, &*events.control)?;
    let Some(archives) = map.get(bus_arn) else {
        return Ok(());
    };
    let matching: Vec<&CachedArchive> = archives
        .iter()
        .filter(|a| a.pattern.as_ref().is_none_or(|p| p.matches(event)))
        .collect();
    if matching.is_empty() {
        return Ok(());
    }
    let ms = event_time_ms(event);
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let rows = matching
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                format!("{}{ms:015}/{id}", rows_prefix(&a.key)),
            )
        })
        .collect();
    let (done, outcome) = tokio::sync::oneshot::channel();
    let pending = Pending {
        rows,
        bytes: serde_json::to_vec(event).unwrap_or_default(),
        done,
    };
    // Group commit: the first caller to find no leader writes everything queued (its own and what
    // arrives meanwhile) in one batch per round; the others wait for their answer. The leader's
    // loop has no await point, so it cannot be abandoned half-way.
    let lead = {
        let mut queue = shared.archive_queue.lock();
        queue.pending.push(pending);
        !std::mem::replace(&mut queue.leader, true)
    };
    if lead {
        loop {
            let round = {
                let mut queue = shared.archive_queue.lock();
                if queue.pending.is_empty() {
                    queue.leader = false;
                    break;
                }
                std::mem::take(&mut queue.pending)
            };
            let result = write_round(shared, &*events.control, &round);
            for p in round {
                let _ = p.done.send(result.clone());
            }
        }
    }
    outcome.await.unwrap_or_else(|_| Err(ApiError::internal()))
}

/// Write the rows of `round` and the archives' new counters in one atomic batch.
fn write_round(
    shared: &Shared,
    control: &dyn ControlStore,
    round: &[Pending],
) -> Result<(), ApiError> {
    let _guard = shared.write_lock.lock();
    let mut archives: HashMap<&str, Option<Archive>> = HashMap::new();
    let mut ops = Vec::new();
    for p in round {
        for (archive_key, row_key) in &p.rows {
            let slot = match archives.entry(archive_key.as_str()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(get_record::<Archive>(control, T_ARCHIVES, archive_key)?)
                }
            };
            let Some(archive) = slot else { continue };
            archive.event_count += 1;
            archive.size_bytes += p.bytes.len() as i64;
            ops.push(WriteOp::Put {
                table: T_ARCHIVED.into(),
                key: row_key.clone(),
                value: p.bytes.clone(),
            });
        }
    }
    let mut stale = false;
    for (key, archive) in archives {
        match archive {
            Some(a) => ops.push(WriteOp::Put {
                table: T_ARCHIVES.into(),
                key: key.to_string(),
                value: encode(&a),
            }),
            None => stale = true,
        }
    }
    if stale {
        invalidate(shared);
    }
    if ops.is_empty() {
        return Ok(());
    }
    control.batch(ops).map_err(store_error)
}

fn missing(name: &str) -> ApiError {
    not_found(format!("Archive {name} does not exist."))
}

pub(crate) fn load(
    events: &Events,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<Archive>, ApiError> {
    get_record(
        &*events.control,
        T_ARCHIVES,
        &record_key(account, region, name),
    )
}

/// Is `arn` an event bus of this account and region that exists? (Asks the core through the
/// directory; a core that cannot answer yet does not block archives.)
async fn check_bus(
    events: &Events,
    account: &str,
    region: &str,
    arn: &str,
) -> Result<(), ApiError> {
    let invalid = || {
        validation(format!(
            "Parameter EventSourceArn is not valid. Reason: '{arn}' is not an event bus ARN."
        ))
    };
    let (bus_region, bus_account, bus) = parse_events_arn(arn, "event-bus").ok_or_else(invalid)?;
    if bus.is_empty() || bus.contains('/') {
        return Err(invalid());
    }
    if bus_region != region || bus_account != account {
        return Err(validation(format!(
            "Parameter EventSourceArn is not valid. Reason: the event bus must be in account {account} and region {region}."
        )));
    }
    match events
        .directory
        .invoke(
            "EventBridge",
            account,
            region,
            "DescribeEventBus",
            json!({"Name": bus}),
        )
        .await
    {
        Err(e) if e.kind == "ResourceNotFoundException" => {
            Err(not_found(format!("Event bus {bus} does not exist.")))
        }
        _ => Ok(()),
    }
}

pub(crate) async fn create(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ArchiveName")?;
    let source = required_str(input, "EventSourceArn")?;
    let pattern = str_of(input, "EventPattern");
    compile(pattern)?;
    let retention = input
        .get("RetentionDays")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if retention < 0 {
        return Err(validation(
            "RetentionDays must be greater than or equal to 0.",
        ));
    }
    let key = record_key(account, region, name);
    if get_record::<Archive>(&*events.control, T_ARCHIVES, &key)?.is_some() {
        return Err(already_exists(format!("Archive {name} already exists.")));
    }
    check_bus(events, account, region, source).await?;
    if count_records(&*events.control, T_ARCHIVES, account, region)? >= MAX_ARCHIVES {
        return Err(limit_exceeded(format!(
            "The requested resource exceeds the maximum number allowed ({MAX_ARCHIVES} archives)."
        )));
    }
    let archive = Archive {
        name: name.to_string(),
        arn: format!("arn:aws:events:{region}:{account}:archive/{name}"),
        account: account.to_string(),
        region: region.to_string(),
        source_arn: source.to_string(),
        pattern: pattern.map(str::to_string),
        description: str_of(input, "Description").map(str::to_string),
        kms_key: str_of(input, "KmsKeyIdentifier").map(str::to_string),
        retention_days: retention,
        state: "ENABLED".into(),
        created: now_secs(),
        event_count: 0,
        size_bytes: 0,
    };
    {
        let _guard = events.ext.shared.write_lock.lock();
        // Rows a crashed delete left behind must not count for the new archive.
        purge_rows(&*events.control, &key)?;
        let insert = WriteOp::Insert {
            table: T_ARCHIVES.into(),
            key,
            value: encode(&archive),
        };
        events.control.batch(vec![insert]).map_err(|e| match e {
            opsloop_store::StoreError::Conflict { .. } => {
                already_exists(format!("Archive {name} already exists."))
            }
            e => store_error(e),
        })?;
        invalidate(&events.ext.shared);
    }
    tracing::info!(
        account,
        region,
        archive = name,
        bus = source,
        "archive created"
    );
    Ok(json!({"ArchiveArn": archive.arn, "State": archive.state, "CreationTime": archive.created}))
}

fn purge_rows(control: &dyn ControlStore, archive_key: &str) -> Result<(), ApiError> {
    let prefix = rows_prefix(archive_key);
    loop {
        let rows = control
            .scan(T_ARCHIVED, &prefix, None, PAGE)
            .map_err(store_error)?;
        if rows.is_empty() {
            return Ok(());
        }
        let ops = rows
            .into_iter()
            .map(|(key, _)| WriteOp::Delete {
                table: T_ARCHIVED.into(),
                key,
            })
            .collect();
        control.batch(ops).map_err(store_error)?;
    }
}

pub(crate) fn describe(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ArchiveName")?;
    let a = load(events, account, region, name)?.ok_or_else(|| missing(name))?;
    let mut out = a.summary();
    out["ArchiveArn"] = json!(a.arn);
    if let Some(p) = &a.pattern {
        out["EventPattern"] = json!(p);
    }
    if let Some(d) = &a.description {
        out["Description"] = json!(d);
    }
    if let Some(k) = &a.kms_key {
        out["KmsKeyIdentifier"] = json!(k);
    }
    Ok(out)
}

pub(crate) fn update(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ArchiveName")?;
    let pattern = str_of(input, "EventPattern");
    compile(pattern)?;
    let retention = input.get("RetentionDays").and_then(Value::as_i64);
    if retention.is_some_and(|r| r < 0) {
        return Err(validation(
            "RetentionDays must be greater than or equal to 0.",
        ));
    }
    let shared = &*events.ext.shared;
    let _guard = shared.write_lock.lock();
    let mut a = load(events, account, region, name)?.ok_or_else(|| missing(name))?;
    if let Some(p) = pattern {
        a.pattern = Some(p.to_string());
    }
    if let Some(r) = retention {
        a.retention_days = r;
    }
    if let Some(d) = str_of(input, "Description") {
        a.description = Some(d.to_string());
    }
    if let Some(k) = str_of(input, "KmsKeyIdentifier") {
        a.kms_key = Some(k.to_string());
    }
    super::common::put_record(&*events.control, T_ARCHIVES, &a.key(), &a)?;
    invalidate(shared);
    Ok(json!({"ArchiveArn": a.arn, "State": a.state, "CreationTime": a.created}))
}

pub(crate) fn delete(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "ArchiveName")?;
    let shared = &*events.ext.shared;
    let _guard = shared.write_lock.lock();
    let a = load(events, account, region, name)?.ok_or_else(|| missing(name))?;
    events
        .control
        .delete(T_ARCHIVES, &a.key())
        .map_err(store_error)?;
    invalidate(shared);
    purge_rows(&*events.control, &a.key())?;
    tracing::info!(account, region, archive = name, "archive deleted");
    Ok(json!({}))
}

pub(crate) fn list(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let source = str_of(input, "EventSourceArn");
    let state = str_of(input, "State");
    let (page, token) =
        list_page::<Archive>(&*events.control, T_ARCHIVES, account, region, input, |a| {
            source.is_none_or(|s| a.source_arn == s) && state.is_none_or(|s| a.state == s)
        })?;
    let mut out = json!({"Archives": page.iter().map(Archive::summary).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// Delete events older than their archive's retention (at most `budget` rows). Returns how many
/// were deleted.
pub(crate) fn sweep(
    shared: &Shared,
    control: &dyn ControlStore,
    now_ms: i64,
    budget: usize,
) -> Result<usize, ApiError> {
    let mut deleted = 0;
    let mut after: Option<String> = None;
    loop {
        let rows = control
            .scan(T_ARCHIVES, "", after.as_deref(), PAGE)
            .map_err(store_error)?;
        let full = rows.len() == PAGE;
        for (key, bytes) in rows {
            after = Some(key.clone());
            let Ok(a) = serde_json::from_slice::<Archive>(&bytes) else {
                continue;
            };
            if a.retention_days <= 0 {
                continue;
            }
            let cutoff = now_ms - a.retention_days * 86_400_000;
            let prefix = rows_prefix(&key);
            while deleted < budget {
                let rows = control
                    .scan(T_ARCHIVED, &prefix, None, PAGE.min(budget - deleted))
                    .map_err(store_error)?;
                let old: Vec<(String, usize)> = rows
                    .iter()
                    .take_while(|(k, _)| row_time(&prefix, k).is_some_and(|t| t < cutoff))
                    .map(|(k, v)| (k.clone(), v.len()))
                    .collect();
                if old.is_empty() {
                    break;
                }
                let _guard = shared.write_lock.lock();
                let Some(mut current) = get_record::<Archive>(control, T_ARCHIVES, &key)? else {
                    break;
                };
                current.event_count = (current.event_count - old.len() as i64).max(0);
                current.size_bytes =
                    (current.size_bytes - old.iter().map(|(_, n)| *n as i64).sum::<i64>()).max(0);
                deleted += old.len();
                let mut ops: Vec<WriteOp> = old
                    .into_iter()
                    .map(|(key, _)| WriteOp::Delete {
                        table: T_ARCHIVED.into(),
                        key,
                    })
                    .collect();
                ops.push(WriteOp::Put {
                    table: T_ARCHIVES.into(),
                    key: key.clone(),
                    value: encode(&current),
                });
                control.batch(ops).map_err(store_error)?;
            }
        }
        if !full || deleted >= budget {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_come_from_the_event() {
        let ms = event_time_ms(&json!({"time": "2024-03-01T12:00:00Z"}));
        assert_eq!(ms, 1_709_294_400_000);
        let now = now_ms();
        assert!((event_time_ms(&json!({"time": "yesterday"})) - now).abs() < 5_000);
    }

    #[test]
    fn row_keys_sort_by_time() {
        let p = rows_prefix("1/r/a");
        let k1 = format!("{p}{:015}/x", 999);
        let k2 = format!("{p}{:015}/a", 1000);
        assert!(k1 < k2);
        assert_eq!(row_time(&p, &k2), Some(1000));
    }
}
