//! How alarms live in the control store. Three tables:
//!
//! * `cloudwatch.alarms` — one [`StoredAlarm`] per alarm, keyed `<account>/<region>/<name>`;
//! * `cloudwatch.alarm_history` — [`HistoryRecord`]s keyed `<account>/<region>/<ms>/<seq>`, so a
//!   scan of one account and region is in time order; kept for two weeks;
//! * `cloudwatch.alarm_outbox` — [`OutboxItem`]s of state transitions not yet delivered: actions
//!   keyed `a/<ms>/<seq>`, EventBridge events keyed `e/<ms>/<seq>`, so the dispatcher works the
//!   actions without waiting behind events (items written by earlier releases are keyed
//!   `<ms>/<seq>`).
//!
//! A transition is one atomic batch: the new alarm record, its history item and its outbox items.
//! The dispatcher then deletes delivered outbox items in batches, each together with the `Action`
//! history item that records its delivery.

use std::sync::atomic::{AtomicU64, Ordering};

use opsloop_store::{ControlStore, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::StoredAlarm;
use crate::error::InternalError;

pub const ALARMS: &str = "cloudwatch.alarms";
pub const HISTORY: &str = "cloudwatch.alarm_history";
pub const OUTBOX: &str = "cloudwatch.alarm_outbox";

/// How long history is kept (the user guide: "CloudWatch preserves alarm history for two weeks").
pub const HISTORY_RETENTION_MS: i64 = 14 * 24 * 3_600_000;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A sequence number distinguishing records written in the same millisecond.
fn next_seq() -> u64 {
    let seed = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0)
    };
    let _ = SEQ.compare_exchange(0, seed() | 1, Ordering::Relaxed, Ordering::Relaxed);
    SEQ.fetch_add(1, Ordering::Relaxed) % 10_000_000_000
}

pub fn alarm_key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

pub fn region_prefix(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

fn time_key(ms: i64) -> String {
    format!("{:013}/{:010}", ms.max(0), next_seq())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, InternalError> {
    serde_json::to_vec(v).map_err(|e| InternalError::Corrupt(format!("encode: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, InternalError> {
    serde_json::from_slice(bytes).map_err(|e| InternalError::Corrupt(format!("{what}: {e}")))
}

/// The write of an alarm record.
pub fn put_alarm(stored: &StoredAlarm) -> Result<WriteOp, InternalError> {
    Ok(WriteOp::Put {
        table: ALARMS.into(),
        key: alarm_key(&stored.account, &stored.region, &stored.config.name),
        value: encode(stored)?,
    })
}

pub fn delete_alarm(account: &str, region: &str, name: &str) -> WriteOp {
    WriteOp::Delete {
        table: ALARMS.into(),
        key: alarm_key(account, region, name),
    }
}

/// Every stored alarm.
pub fn load_alarms(control: &dyn ControlStore) -> Result<Vec<StoredAlarm>, InternalError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = control.scan(ALARMS, "", after.as_deref(), 1000)?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = Some(last.clone());
        for (key, bytes) in &rows {
            match decode::<StoredAlarm>("alarm", bytes) {
                Ok(a) => out.push(a),
                // One unreadable record must not take every other alarm down with it.
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "skipping unreadable alarm record")
                }
            }
        }
    }
    Ok(out)
}

/// One `AlarmHistoryItem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub alarm_name: String,
    pub alarm_type: String,
    pub timestamp_ms: i64,
    /// `StateUpdate`, `ConfigurationUpdate` or `Action`.
    pub item_type: String,
    pub summary: String,
    /// `HistoryData`, a JSON document as a string.
    pub data: String,
}

pub fn put_history(
    account: &str,
    region: &str,
    record: &HistoryRecord,
) -> Result<WriteOp, InternalError> {
    Ok(WriteOp::Put {
        table: HISTORY.into(),
        key: format!(
            "{}{}",
            region_prefix(account, region),
            time_key(record.timestamp_ms)
        ),
        value: encode(record)?,
    })
}

/// History of one account and region, oldest first.
pub fn load_history(
    control: &dyn ControlStore,
    account: &str,
    region: &str,
) -> Result<Vec<HistoryRecord>, InternalError> {
    let rows = control.scan(HISTORY, &region_prefix(account, region), None, usize::MAX)?;
    rows.iter()
        .map(|(_, bytes)| decode("alarm history", bytes))
        .collect()
}

/// Delete history older than the retention. Returns how many items went.
pub fn prune_history(control: &dyn ControlStore, now_ms: i64) -> Result<usize, InternalError> {
    let cutoff = now_ms - HISTORY_RETENTION_MS;
    let rows = control.scan(HISTORY, "", None, usize::MAX)?;
    let ops: Vec<WriteOp> = rows
        .into_iter()
        .filter(|(key, _)| {
            // <account>/<region>/<ms>/<seq>
            key.rsplit('/')
                .nth(1)
                .and_then(|ms| ms.parse::<i64>().ok())
                .is_some_and(|ms| ms < cutoff)
        })
        .map(|(key, _)| WriteOp::Delete {
            table: HISTORY.into(),
            key,
        })
        .collect();
    let n = ops.len();
    if n > 0 {
        control.batch(ops)?;
    }
    Ok(n)
}

/// Where an outbox item goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// `SNS` `Publish`.
    Sns,
    /// `SSM` `CreateOpsItem`.
    OpsItem,
    /// `SSM Incidents` `StartIncident`.
    Incident,
    /// `EventBridge` `PutEvents` (the state-change event; no history item).
    EventBridge,
    /// An action kind this release cannot perform (recorded as a failed action).
    Unsupported,
}

/// An undelivered action or event of a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub account: String,
    pub region: String,
    pub alarm_name: String,
    pub alarm_type: String,
    pub target: Target,
    /// The action ARN (empty for events).
    pub resource: String,
    /// The operation input to send.
    pub input: Value,
    /// When the transition happened.
    pub state_update_ms: i64,
}

/// Key prefix of outbox actions.
pub const ACTION_PREFIX: &str = "a/";
/// Key prefix of outbox EventBridge events.
pub const EVENT_PREFIX: &str = "e/";

pub fn put_outbox(item: &OutboxItem) -> Result<WriteOp, InternalError> {
    let prefix = if item.target == Target::EventBridge {
        EVENT_PREFIX
    } else {
        ACTION_PREFIX
    };
    Ok(WriteOp::Put {
        table: OUTBOX.into(),
        key: format!("{prefix}{}", time_key(item.state_update_ms)),
        value: encode(item)?,
    })
}

/// Up to `limit` outbox items under `prefix` after `after`, oldest first.
pub fn load_outbox(
    control: &dyn ControlStore,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, OutboxItem)>, InternalError> {
    let rows = control.scan(OUTBOX, prefix, after, limit)?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, bytes) in rows {
        match decode::<OutboxItem>("outbox item", &bytes) {
            Ok(item) => out.push((key, item)),
            Err(e) => {
                tracing::error!(key = %key, error = %e, "dropping unreadable outbox item");
                control.delete(OUTBOX, &key)?;
            }
        }
    }
    Ok(out)
}

pub fn delete_outbox(key: &str) -> WriteOp {
    WriteOp::Delete {
        table: OUTBOX.into(),
        key: key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_store::SqliteStore;

    fn record(ms: i64) -> HistoryRecord {
        HistoryRecord {
            alarm_name: "a/b".into(),
            alarm_type: "MetricAlarm".into(),
            timestamp_ms: ms,
            item_type: "StateUpdate".into(),
            summary: "s".into(),
            data: "{}".into(),
        }
    }

    #[test]
    fn history_is_time_ordered_per_region_and_pruned() {
        let s = SqliteStore::memory().unwrap();
        let day = 24 * 3_600_000;
        let now = 100 * day;
        let mut ops = Vec::new();
        for ms in [now - 20 * day, now - day, now - 2 * day, now] {
            ops.push(put_history("111111111111", "us-east-1", &record(ms)).unwrap());
        }
        ops.push(put_history("222222222222", "us-east-1", &record(now)).unwrap());
        s.batch(ops).unwrap();
        let h = load_history(&s, "111111111111", "us-east-1").unwrap();
        let times: Vec<i64> = h.iter().map(|r| r.timestamp_ms).collect();
        assert_eq!(times, vec![now - 20 * day, now - 2 * day, now - day, now]);
        assert_eq!(prune_history(&s, now).unwrap(), 1);
        assert_eq!(
            load_history(&s, "111111111111", "us-east-1").unwrap().len(),
            3
        );
        assert_eq!(
            load_history(&s, "222222222222", "us-east-1").unwrap().len(),
            1
        );
    }

    #[test]
    fn sequence_numbers_are_distinct() {
        let a = time_key(5);
        let b = time_key(5);
        assert_ne!(a, b);
        assert!(a < b);
    }
}
