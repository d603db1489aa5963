//! What the ext submodules share: the in-memory [`Shared`] state, AWS-style errors, JSON records in
//! control-store tables keyed `account/region/name`, input accessors, list pagination tokens and
//! clock helpers.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use opsloop_core::{ApiError, Value};
use opsloop_store::{ControlStore, StoreError};
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;

use super::archives::BusArchives;
use super::auth::Token;
use super::destinations::Bucket;
use super::http::HttpClient;

/// Shared in-memory state (behind an `Arc` so background tasks can hold it).
#[derive(Default)]
pub struct Shared {
    /// Serializes read-modify-write cycles on ext records (archive counters, replay progress,
    /// connection state) so concurrent writers do not lose updates.
    pub(crate) write_lock: Mutex<()>,
    /// OAuth access tokens by connection ARN.
    pub(crate) tokens: Mutex<HashMap<String, Token>>,
    /// One-at-a-time token fetches per connection.
    pub(crate) token_fetch: tokio::sync::Mutex<()>,
    /// Invocation-rate token buckets by API-destination ARN.
    pub(crate) buckets: Mutex<HashMap<String, Bucket>>,
    /// Archives by bus ARN (`None`: load from the store on next use).
    pub(crate) archives: RwLock<Option<Arc<HashMap<String, BusArchives>>>>,
    pub(crate) http: OnceLock<Result<HttpClient, String>>,
    pub(crate) worker_started: AtomicBool,
    pub(crate) wake: Notify,
    pub(crate) last_sweep: Mutex<Option<Instant>>,
    /// Archive writes waiting for the group commit.
    pub(crate) archive_queue: Mutex<super::archives::ArchiveQueue>,
}

pub(crate) const T_CONNECTIONS: &str = "events.ext.connections";
pub(crate) const T_SECRETS: &str = "events.ext.secrets";
pub(crate) const T_META: &str = "events.ext.meta";
pub(crate) const T_DESTINATIONS: &str = "events.ext.api_destinations";
pub(crate) const T_ARCHIVES: &str = "events.ext.archives";
pub(crate) const T_ARCHIVED: &str = "events.ext.archived_events";
pub(crate) const T_REPLAYS: &str = "events.ext.replays";

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new("ResourceNotFoundException", message)
}

pub(crate) fn already_exists(message: impl Into<String>) -> ApiError {
    ApiError::new("ResourceAlreadyExistsException", message)
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new("LimitExceededException", message)
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "events ext: control store failed");
    ApiError::internal()
}

/// `account/region/name`: the key of a record in a table.
pub(crate) fn record_key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

pub(crate) fn get_record<T: DeserializeOwned>(
    control: &dyn ControlStore,
    table: &str,
    key: &str,
) -> Result<Option<T>, ApiError> {
    match control.get(table, key).map_err(store_error)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            tracing::error!(table, key, error = %e, "events ext: undecodable record");
            ApiError::internal()
        }),
    }
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

pub(crate) fn put_record<T: Serialize>(
    control: &dyn ControlStore,
    table: &str,
    key: &str,
    record: &T,
) -> Result<(), ApiError> {
    control
        .put(table, key, &encode(record))
        .map_err(store_error)
}

/// How many records of `table` belong to `account`/`region`.
pub(crate) fn count_records(
    control: &dyn ControlStore,
    table: &str,
    account: &str,
    region: &str,
) -> Result<usize, ApiError> {
    let prefix = format!("{account}/{region}/");
    let mut count = 0;
    let mut after: Option<String> = None;
    loop {
        let rows = control
            .scan(table, &prefix, after.as_deref(), 1000)
            .map_err(store_error)?;
        count += rows.len();
        match rows.last() {
            Some((k, _)) if rows.len() == 1000 => after = Some(k.clone()),
            _ => return Ok(count),
        }
    }
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// A required string member (the wire layer checks presence for model-required members; this
/// covers nested and in-process calls).
pub(crate) fn required_str<'a>(input: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    str_of(input, name).ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// The `Limit` of a list call (1..=100; default 100).
pub(crate) fn list_limit(input: &Value) -> Result<usize, ApiError> {
    match input.get("Limit") {
        None | Some(Value::Null) => Ok(100),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=100).contains(&n) => Ok(n as usize),
            _ => Err(validation(
                "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 100",
            )),
        },
    }
}

/// One page of `table`'s records of `account`/`region` whose name starts with `NamePrefix` and that
/// pass `keep`, after the input's `NextToken`. Returns the records and the next token.
pub(crate) fn list_page<T: DeserializeOwned>(
    control: &dyn ControlStore,
    table: &str,
    account: &str,
    region: &str,
    input: &Value,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = list_limit(input)?;
    let base = format!("{account}/{region}/");
    let prefix = format!("{base}{}", str_of(input, "NamePrefix").unwrap_or(""));
    let mut after = match str_of(input, "NextToken") {
        None => None,
        Some(token) => Some(format!("{base}{}", decode_token(token)?)),
    };
    let mut out = Vec::new();
    loop {
        let rows = control
            .scan(table, &prefix, after.as_deref(), 200)
            .map_err(store_error)?;
        let full = rows.len() == 200;
        for (key, bytes) in rows {
            let Ok(record) = serde_json::from_slice::<T>(&bytes) else {
                tracing::error!(table, key, "events ext: undecodable record skipped in list");
                continue;
            };
            after = Some(key.clone());
            if !keep(&record) {
                continue;
            }
            out.push(record);
            if out.len() == limit {
                // Is there anything after this one? A token only when there is.
                let more = !control
                    .scan(table, &prefix, Some(&key), 1)
                    .map_err(store_error)?
                    .is_empty();
                let token = more.then(|| encode_token(&key[base.len()..]));
                return Ok((out, token));
            }
        }
        if !full {
            return Ok((out, None));
        }
    }
}

pub(crate) fn encode_token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("opsloop1:{name}"))
}

pub(crate) fn decode_token(token: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("opsloop1:").map(str::to_string))
        .ok_or_else(|| validation("The NextToken provided is not valid."))
}

/// Parse `arn:aws:events:<region>:<account>:<kind>/<rest>` into (region, account, rest).
pub(crate) fn parse_events_arn<'a>(
    arn: &'a str,
    kind: &str,
) -> Option<(&'a str, &'a str, &'a str)> {
    let mut parts = arn.splitn(6, ':');
    let (
        Some("arn"),
        Some(_partition),
        Some("events"),
        Some(region),
        Some(account),
        Some(resource),
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return None;
    };
    let rest = resource.strip_prefix(kind)?.strip_prefix('/')?;
    Some((region, account, rest))
}

/// A timestamp member (epoch seconds) as milliseconds.
pub(crate) fn timestamp_ms(input: &Value, name: &str) -> Option<i64> {
    input
        .get(name)
        .and_then(Value::as_f64)
        .map(|s| (s * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_store::SqliteStore;
    use serde_json::json;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let t = encode_token("my-conn");
        assert_eq!(decode_token(&t).unwrap(), "my-conn");
        assert_eq!(
            decode_token("not a token").unwrap_err().kind,
            "ValidationException"
        );
    }

    #[test]
    fn arns_are_split() {
        assert_eq!(
            parse_events_arn(
                "arn:aws:events:us-east-1:123456789012:connection/c1/abc",
                "connection"
            ),
            Some(("us-east-1", "123456789012", "c1/abc"))
        );
        assert_eq!(
            parse_events_arn("arn:aws:events:us-east-1:1:rule/x", "connection"),
            None
        );
        assert_eq!(
            parse_events_arn("arn:aws:sns:r:1:connection/x", "connection"),
            None
        );
    }

    #[test]
    fn list_pages_through_filtered_records() {
        let store = SqliteStore::memory().unwrap();
        for i in 0..7 {
            let name = format!("n{i}");
            put_record(
                &store,
                "t",
                &record_key("1", "r", &name),
                &json!({"Name": name, "Odd": i % 2 == 1}),
            )
            .unwrap();
        }
        put_record(
            &store,
            "t",
            &record_key("1", "other", "n9"),
            &json!({"Name": "n9", "Odd": true}),
        )
        .unwrap();
        let keep = |v: &Value| v["Odd"] == json!(true);
        let (page, token) =
            list_page::<Value>(&store, "t", "1", "r", &json!({"Limit": 2}), keep).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0]["Name"], "n1");
        let token = token.expect("more pages");
        let (page, token) = list_page::<Value>(
            &store,
            "t",
            "1",
            "r",
            &json!({"Limit": 2, "NextToken": token}),
            keep,
        )
        .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0]["Name"], "n5");
        assert!(token.is_none());
        assert_eq!(
            list_page::<Value>(&store, "t", "1", "r", &json!({"Limit": 0}), keep)
                .unwrap_err()
                .kind,
            "ValidationException"
        );
        assert_eq!(count_records(&store, "t", "1", "r").unwrap(), 7);
    }
}
