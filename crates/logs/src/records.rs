//! Small helpers for the stored-record families (deliveries, account and index policies, anomaly
//! detectors, data protection): typed get/put of JSON records in a control-store table, per-account
//! keys, paging with opaque tokens, and tag validation.

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{self, opt_i64, opt_str, store_err};
use crate::groups::{decode_token, encode_token};

/// `{account}/{region}/{name}`.
pub fn key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{}/{name}", ctx.account_id, ctx.region)
}

pub fn get<T: DeserializeOwned>(
    store: &dyn ControlStore,
    table: &str,
    key: &str,
) -> Result<Option<T>, ApiError> {
    match store.get(table, key).map_err(store_err)? {
        Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(error::internal)?)),
        None => Ok(None),
    }
}

pub fn put<T: Serialize>(
    store: &dyn ControlStore,
    table: &str,
    key: &str,
    value: &T,
) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(value).map_err(error::internal)?;
    store.put(table, key, &bytes).map_err(store_err)
}

/// Every record under `prefix` (ascending by key).
pub fn all<T: DeserializeOwned>(
    store: &dyn ControlStore,
    table: &str,
    prefix: &str,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = store
            .scan(table, prefix, after.as_deref(), 500)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        for (_, v) in rows {
            out.push(serde_json::from_slice(&v).map_err(error::internal)?);
        }
    }
    Ok(out)
}

/// The `limit` of an input (default `default`, allowed `1..=max`), named in the error as AWS does.
pub fn limit(input: &Value, default: i64, max: i64) -> Result<usize, ApiError> {
    let l = opt_i64(input, "limit")
        .or_else(|| opt_i64(input, "maxResults"))
        .unwrap_or(default);
    if !(1..=max).contains(&l) {
        return Err(error::invalid(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        )));
    }
    Ok(l as usize)
}

/// One page of the records under `prefix`, resuming after the `nextToken` of `input`; the token
/// answered names the last key returned (relative to `prefix`).
pub fn page<T: DeserializeOwned>(
    store: &dyn ControlStore,
    table: &str,
    prefix: &str,
    input: &Value,
    limit: usize,
    keep: &dyn Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let mut after = match opt_str(input, "nextToken") {
        Some(t) => Some(format!("{prefix}{}", decode_token(t)?)),
        None => None,
    };
    let mut out = Vec::new();
    let mut last_key = String::new();
    loop {
        let rows = store
            .scan(table, prefix, after.as_deref(), 500)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else {
            return Ok((out, None));
        };
        after = Some(last.clone());
        for (k, v) in rows {
            let rec: T = serde_json::from_slice(&v).map_err(error::internal)?;
            if !keep(&rec) {
                continue;
            }
            if out.len() == limit {
                let rel = last_key.strip_prefix(prefix).unwrap_or(&last_key);
                return Ok((out, Some(encode_token(rel))));
            }
            out.push(rec);
            last_key = k;
        }
    }
}

/// Validate a `tags` map member (at most 50, no `aws:` keys).
pub fn tags(input: &Value, member: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    if let Some(map) = input.get(member).and_then(Value::as_object) {
        if map.len() > 50 {
            return Err(ApiError::new(
                "ValidationException",
                "A resource can have at most 50 tags.",
            ));
        }
        for (k, v) in map {
            if k.starts_with("aws:") {
                return Err(ApiError::new(
                    "ValidationException",
                    "Tag keys starting with 'aws:' are reserved.",
                ));
            }
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    Ok(out)
}

/// A Logs resource ARN of this account and region.
pub fn arn(ctx: &RequestContext, kind: &str, name: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:{kind}:{name}",
        ctx.region, ctx.account_id
    )
}
