//! Shared helpers: control-store tables, AWS-style errors, ARNs, typed store access, input field
//! access, offset pagination tokens and the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use opsloop_core::{ApiError, Value};
use opsloop_store::typed::Typed;
use opsloop_store::{ControlStore, WriteOp};
use serde::de::DeserializeOwned;

/// Replication sets, keyed by ARN (at most one per account).
pub const T_REPLSET: &str = "incidents.replset";
/// Response plans, keyed by ARN.
pub const T_PLAN: &str = "incidents.plan";
/// Tags, keyed by resource ARN (a JSON object key → value).
pub const T_TAGS: &str = "incidents.tags";
/// Resource policies, keyed `<resource arn>|<policy id>`.
pub const T_POLICY: &str = "incidents.policy";
/// Incident records, keyed by ARN.
pub const T_RECORD: &str = "incidents.record";
/// Open incidents by dedupe string, keyed `<account>|<dedupe string>` → record ARN.
pub const T_OPEN: &str = "incidents.open";
/// Timeline events, keyed `<record arn>|<event id>`.
pub const T_EVENT: &str = "incidents.event";
/// Related items, keyed `<record arn>|<sequence>`.
pub const T_ITEM: &str = "incidents.item";
/// Client tokens of mutating calls, keyed `<account>|<operation>|<token>` → result.
pub const T_TOKEN: &str = "incidents.token";
/// Durable jobs (runbooks, engagements, chat posts), keyed `<due millis, 16 digits>|<sequence>`.
pub const T_JOB: &str = "incidents.job";

/// Seconds since the epoch, fractional.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A key that sorts in creation order, unique within the process and across restarts.
pub fn seq() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = nanos.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => return format!("{next:020}"),
            Err(p) => prev = p,
        }
    }
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `arn:aws:ssm-incidents::<account>:<resource>` (Incident Manager ARNs carry no region).
pub fn arn(account: &str, resource: &str) -> String {
    format!("arn:aws:ssm-incidents::{account}:{resource}")
}

/// The account named by an Incident Manager ARN, if it is one.
pub fn arn_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    (parts.len() == 5 && parts[1] == "ssm-incidents").then_some(parts[3])
}

/// The caller as Incident Manager names it in `createdBy` / `lastModifiedBy`.
pub fn caller(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// ValidationException naming the field.
pub fn invalid(field: &str, message: impl AsRef<str>) -> ApiError {
    ApiError::new(
        "ValidationException",
        format!("Invalid value for {field}: {}", message.as_ref()),
    )
}

pub fn not_found(resource_type: &str, id: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("{resource_type} {id} does not exist"),
    )
}

pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new("ConflictException", message)
}

pub fn store_err(e: opsloop_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "incidents: control store failure");
    ApiError::internal()
}

fn typed_err(e: opsloop_store::typed::TypedError) -> ApiError {
    tracing::error!(error = %e, "incidents: control store failure");
    ApiError::internal()
}

/// Typed access to the control store (JSON records; see `opsloop_store::typed`).
pub struct Db<'a>(pub &'a dyn ControlStore);

impl Db<'_> {
    pub fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>, ApiError> {
        Typed(self.0).get(table, key).map_err(typed_err)
    }

    /// Every row of `table` under `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, ApiError> {
        Typed(self.0).scan(table, prefix).map_err(typed_err)
    }

    pub fn batch(&self, ops: Vec<WriteOp>) -> Result<(), ApiError> {
        Typed(self.0).batch(ops).map_err(typed_err)
    }
}

pub use opsloop_store::typed::{del, put};

/// A string member of an input document.
pub fn s<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// A required string member (the wire layer checked presence; this guards internal callers).
pub fn req<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    s(v, name).ok_or_else(|| invalid(name, "member must not be null"))
}

/// One page of `items` from an offset token (`maxResults` / `nextToken`).
pub fn paginate<T>(
    items: Vec<T>,
    input: &Value,
    default_max: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = match input.get("maxResults").and_then(Value::as_u64) {
        Some(0) | None => default_max,
        Some(n) => n as usize,
    };
    let start = match s(input, "nextToken") {
        Some(t) => t
            .strip_prefix("o")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| invalid("nextToken", "the pagination token is not valid"))?,
        None => 0,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| format!("o{end}"));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// `{key: items, nextToken?}`.
pub fn page_doc(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = serde_json::Map::new();
    out.insert(key.into(), Value::Array(items));
    if let Some(t) = next {
        out.insert("nextToken".into(), Value::String(t));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paginate_walks_every_item_once() {
        let items: Vec<i32> = (0..5).collect();
        let (p1, t1) = paginate(items.clone(), &json!({"maxResults": 2}), 10).unwrap();
        assert_eq!(p1, vec![0, 1]);
        let (p2, t2) = paginate(
            items.clone(),
            &json!({"maxResults": 2, "nextToken": t1}),
            10,
        )
        .unwrap();
        assert_eq!(p2, vec![2, 3]);
        let (p3, t3) = paginate(
            items.clone(),
            &json!({"maxResults": 2, "nextToken": t2}),
            10,
        )
        .unwrap();
        assert_eq!(p3, vec![4]);
        assert!(t3.is_none());
        assert!(paginate(items, &json!({"nextToken": "bogus"}), 10).is_err());
    }

    #[test]
    fn arn_account_reads_incident_manager_arns_only() {
        let a = arn("123456789012", "response-plan/p");
        assert_eq!(arn_account(&a), Some("123456789012"));
        assert_eq!(arn_account("arn:aws:sns:us-east-1:1:t"), None);
        assert_eq!(arn_account("nonsense"), None);
    }
}
