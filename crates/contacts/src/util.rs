//! Shared helpers: AWS-style errors, ARNs, typed access to the control store, input field access
//! and offset pagination tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::typed::Typed;
use opsloop_store::{ControlStore, WriteOp};
use serde::de::DeserializeOwned;

/// Contacts (all types), keyed by ARN.
pub const T_CONTACT: &str = "contacts.contact";
/// Contact channels, keyed by ARN.
pub const T_CHANNEL: &str = "contacts.channel";
/// Rotations, keyed by ARN.
pub const T_ROTATION: &str = "contacts.rotation";
/// Rotation overrides, keyed `<rotation arn>|<override id>`.
pub const T_OVERRIDE: &str = "contacts.override";
/// Tags, keyed by resource ARN (a JSON object key → value).
pub const T_TAGS: &str = "contacts.tags";
/// Resource policies, keyed by contact ARN.
pub const T_POLICY: &str = "contacts.policy";
/// Engagements, keyed by ARN.
pub const T_ENGAGEMENT: &str = "contacts.engagement";
/// Pages, keyed by ARN.
pub const T_PAGE: &str = "contacts.page";
/// Page receipts, keyed `<page arn>|<sequence>`.
pub const T_RECEIPT: &str = "contacts.receipt";
/// Escalation timers, keyed `<due millis, 16 digits>|<sequence>`.
pub const T_TIMER: &str = "contacts.timer";
/// Deliveries waiting to be sent (email, SMS, voice), keyed by sequence.
pub const T_OUTBOX: &str = "contacts.outbox";
/// Idempotency tokens of create operations → the ARN created.
pub const T_IDEMPOTENCY: &str = "contacts.idempotency";

/// Seconds since the epoch, fractional.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A key that sorts in creation order and is unique within the process (and across restarts, as
/// it starts with the wall clock in nanoseconds).
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

/// A random numeric code of `digits` digits (activation and accept codes).
pub fn code(digits: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..digits)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// `arn:aws:ssm-contacts:<region>:<account>:<resource>`.
pub fn arn(ctx: &RequestContext, resource: &str) -> String {
    format!(
        "arn:aws:ssm-contacts:{}:{}:{resource}",
        ctx.region, ctx.account_id
    )
}

/// The ARN prefix of one resource type in the caller's account and region.
pub fn arn_prefix(ctx: &RequestContext, kind: &str) -> String {
    arn(ctx, &format!("{kind}/"))
}

/// ValidationException naming the field.
pub fn invalid(field: &str, message: impl AsRef<str>) -> ApiError {
    ApiError::new(
        "ValidationException",
        format!("1 validation error detected: {field}: {}", message.as_ref()),
    )
}

pub fn not_found(resource_type: &str, id: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("{resource_type} {id} not found"),
    )
}

pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new("ConflictException", message)
}

pub fn quota(message: impl Into<String>) -> ApiError {
    ApiError::new("ServiceQuotaExceededException", message)
}

pub fn store_err(e: opsloop_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "contacts: control store failure");
    ApiError::internal()
}

fn typed_err(e: opsloop_store::typed::TypedError) -> ApiError {
    tracing::error!(error = %e, "contacts: control store failure");
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

/// A required string member (the wire layer already checked presence; this guards internal callers).
pub fn req<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    s(v, name).ok_or_else(|| invalid(name, "Member must not be null"))
}

pub fn num(v: &Value, name: &str) -> Option<f64> {
    v.get(name).and_then(Value::as_f64)
}

/// One page of `items` from an offset token; returns the page and the next token.
pub fn paginate(
    items: Vec<Value>,
    input: &Value,
    default_max: usize,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let max = match input.get("MaxResults").and_then(Value::as_u64) {
        Some(0) | None => default_max,
        Some(n) => n as usize,
    };
    let start = match s(input, "NextToken") {
        Some(t) => t
            .strip_prefix("o")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| invalid("NextToken", "the pagination token is not valid"))?,
        None => 0,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| format!("o{end}"));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// Insert `key` into the output object when `value` is present.
pub fn opt<T: Into<Value>>(out: &mut serde_json::Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        out.insert(key.to_string(), v.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paginate_walks_every_item_once() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (p1, t1) = paginate(items.clone(), &json!({"MaxResults": 2}), 10).unwrap();
        assert_eq!(p1, vec![json!(0), json!(1)]);
        let (p2, t2) = paginate(
            items.clone(),
            &json!({"MaxResults": 2, "NextToken": t1}),
            10,
        )
        .unwrap();
        assert_eq!(p2, vec![json!(2), json!(3)]);
        let (p3, t3) = paginate(
            items.clone(),
            &json!({"MaxResults": 2, "NextToken": t2}),
            10,
        )
        .unwrap();
        assert_eq!(p3, vec![json!(4)]);
        assert!(t3.is_none());
        assert!(paginate(items, &json!({"NextToken": "bogus"}), 10).is_err());
    }

    #[test]
    fn seq_is_strictly_increasing_and_codes_are_digits() {
        let a = seq();
        let b = seq();
        assert!(b > a);
        let c = code(6);
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
}
