//! The Scheduler's persistent records and how they are keyed in the control store.
//!
//! Tables (all keys start with `account/region/` so tenants never see each other's rows, except the
//! two time-ordered queues, whose keys start with the instant they are due):
//!
//! | table                | key                                   | value                     |
//! |----------------------|---------------------------------------|---------------------------|
//! | `scheduler_groups`   | `acct/region/group`                   | [`GroupRecord`]           |
//! | `scheduler_schedules`| `acct/region/group/name`              | [`ScheduleRecord`]        |
//! | `scheduler_due`      | `due_ms(16 digits)/acct/region/group/name` | schedule key          |
//! | `scheduler_outbox`   | `attempt_ms(16 digits)/delivery id`   | [`Delivery`]              |
//! | `scheduler_dead`     | `dlq arn/delivery id`                 | dead-letter message       |
//!
//! Invariant: a schedule row with `due_ms = Some(t)` has exactly one `scheduler_due` row keyed by
//! `t`, written in the same atomic batch as the schedule row; firing moves it forward in the same
//! batch that inserts the delivery, so a fire is recorded exactly once.

use opsloop_core::{ApiError, Value};
use opsloop_store::{ControlStore, StoreError, WriteOp};
use serde::{Deserialize, Serialize};

pub(crate) const GROUPS: &str = "scheduler_groups";
pub(crate) const SCHEDULES: &str = "scheduler_schedules";
pub(crate) const DUE: &str = "scheduler_due";
pub(crate) const OUTBOX: &str = "scheduler_outbox";
pub(crate) const DEAD: &str = "scheduler_dead";

pub(crate) const DEFAULT_GROUP: &str = "default";

/// One schedule, as the API describes it plus the timer's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ScheduleRecord {
    pub account: String,
    pub region: String,
    pub group: String,
    pub name: String,
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Epoch seconds, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<f64>,
    pub state: String,
    /// `FlexibleTimeWindow` as given.
    pub flexible: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_after_completion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// `Target` as given.
    pub target: Value,
    /// The `ClientToken` of the request that created the schedule: a retry of that request
    /// answers with the schedule instead of a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    pub created: f64,
    pub modified: f64,
    /// Rates count from here (StartDate, else creation or the last update).
    pub anchor_ms: i64,
    /// The next occurrence (the `<aws.scheduler.scheduled-time>` of the next fire).
    #[serde(default)]
    pub next_ms: Option<i64>,
    /// When the next fire is delivered: `next_ms` plus a random delay inside a flexible window.
    #[serde(default)]
    pub due_ms: Option<i64>,
}

impl ScheduleRecord {
    pub fn key(&self) -> String {
        schedule_key(&self.account, &self.region, &self.group, &self.name)
    }

    pub fn arn(&self) -> String {
        schedule_arn(&self.account, &self.region, &self.group, &self.name)
    }

    /// `MaximumWindowInMinutes` when the window is `FLEXIBLE`.
    pub fn window_ms(&self) -> Option<i64> {
        if self.flexible.get("Mode").and_then(Value::as_str) != Some("FLEXIBLE") {
            return None;
        }
        let minutes = self.flexible.get("MaximumWindowInMinutes")?.as_i64()?;
        Some(minutes * 60_000)
    }
}

/// One schedule group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct GroupRecord {
    pub name: String,
    pub created: f64,
    pub modified: f64,
    /// `[{Key, Value}]`, in the order set.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// One fire of one schedule on its way to the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Delivery {
    pub id: String,
    pub account: String,
    pub region: String,
    pub schedule_arn: String,
    /// The occurrence this delivers (`<aws.scheduler.scheduled-time>`).
    pub scheduled_ms: i64,
    /// The target as it was when the schedule fired.
    pub target: Value,
    /// Attempts made so far.
    pub attempts: u32,
    pub first_attempt_ms: i64,
    pub next_attempt_ms: i64,
}

impl Delivery {
    pub fn outbox_key(&self) -> String {
        time_key(self.next_attempt_ms, &self.id)
    }
}

pub(crate) fn tenant_prefix(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

pub(crate) fn group_key(account: &str, region: &str, group: &str) -> String {
    format!("{account}/{region}/{group}")
}

pub(crate) fn schedule_key(account: &str, region: &str, group: &str, name: &str) -> String {
    format!("{account}/{region}/{group}/{name}")
}

/// A key that sorts by instant: 16 zero-padded digits (instants before the epoch sort first).
pub(crate) fn time_key(ms: i64, rest: &str) -> String {
    format!("{:016}/{rest}", ms.max(0))
}

/// The instant a [`time_key`] starts with.
pub(crate) fn time_of_key(key: &str) -> Option<i64> {
    key.get(..16)?.parse().ok()
}

pub(crate) fn schedule_arn(account: &str, region: &str, group: &str, name: &str) -> String {
    format!("arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}")
}

pub(crate) fn group_arn(account: &str, region: &str, group: &str) -> String {
    format!("arn:aws:scheduler:{region}:{account}:schedule-group/{group}")
}

/// `arn:aws:scheduler:region:account:schedule-group/name` → (account, region, name).
pub(crate) fn parse_group_arn(arn: &str) -> Option<(String, String, String)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    if parts.next()? != "scheduler" {
        return None;
    }
    let region = parts.next()?;
    let account = parts.next()?;
    let name = parts.next()?.strip_prefix("schedule-group/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some((account.to_string(), region.to_string(), name.to_string()))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds as the API's timestamps carry them.
pub(crate) fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new("ResourceNotFoundException", message)
}

pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new("ConflictException", message)
}

/// A store failure: logged, answered as a 500 that reveals nothing.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "scheduler control store failure");
    ApiError::internal()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "undecodable scheduler record");
            None
        }
    }
}

pub(crate) fn get<T: for<'de> Deserialize<'de>>(
    store: &dyn ControlStore,
    table: &str,
    key: &str,
) -> Result<Option<T>, ApiError> {
    Ok(store
        .get(table, key)
        .map_err(store_error)?
        .and_then(|b| decode(&b)))
}

pub(crate) fn put(table: &str, key: String, value: Vec<u8>) -> WriteOp {
    WriteOp::Put {
        table: table.to_string(),
        key,
        value,
    }
}

pub(crate) fn del(table: &str, key: String) -> WriteOp {
    WriteOp::Delete {
        table: table.to_string(),
        key,
    }
}

/// The writes that store `rec` (replacing `old`, if any) with its due-index row.
pub(crate) fn save_schedule(old: Option<&ScheduleRecord>, rec: &ScheduleRecord) -> Vec<WriteOp> {
    let mut ops = Vec::with_capacity(3);
    if let Some(due) = old.and_then(|o| o.due_ms) {
        ops.push(del(
            DUE,
            time_key(due, &old.map(|o| o.key()).unwrap_or_default()),
        ));
    }
    ops.push(put(SCHEDULES, rec.key(), encode(rec)));
    if let Some(due) = rec.due_ms {
        ops.push(put(DUE, time_key(due, &rec.key()), rec.key().into_bytes()));
    }
    ops
}

/// The writes that remove `rec` and its due-index row.
pub(crate) fn remove_schedule(rec: &ScheduleRecord) -> Vec<WriteOp> {
    let mut ops = vec![del(SCHEDULES, rec.key())];
    if let Some(due) = rec.due_ms {
        ops.push(del(DUE, time_key(due, &rec.key())));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_arns() {
        assert_eq!(time_key(1_700_000_000_000, "a/b"), "0001700000000000/a/b");
        assert_eq!(time_of_key("0001700000000000/a/b"), Some(1_700_000_000_000));
        assert!(time_key(1, "x") < time_key(10, "x"));
        assert_eq!(
            schedule_arn("123456789012", "us-east-1", "default", "s1"),
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s1"
        );
        let g = group_arn("123456789012", "eu-west-1", "ops");
        assert_eq!(
            parse_group_arn(&g),
            Some(("123456789012".into(), "eu-west-1".into(), "ops".into()))
        );
        assert_eq!(
            parse_group_arn("arn:aws:scheduler:r:1:schedule/default/x"),
            None
        );
        assert_eq!(parse_group_arn("arn:aws:sns:r:1:schedule-group/x"), None);
    }
}
