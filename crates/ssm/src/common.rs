//! Helpers shared by the SSM modules: the caller's scope (account and region, the key prefix of
//! every table), reading members of input documents, JSON rows in the control store, pagination
//! tokens, timestamps and ARNs.

use base64::Engine;
use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{invalid_next_token, InternalError};

/// Who is calling and where: every row is keyed under `<account>/<region>/`.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account: String,
    pub region: String,
    /// The caller as AWS names it in CreatedBy / LastModifiedBy / LastModifiedUser.
    pub principal: String,
}

impl Scope {
    pub fn of(ctx: &RequestContext) -> Scope {
        Scope::new(&ctx.account_id, &ctx.region)
    }

    pub fn new(account: &str, region: &str) -> Scope {
        Scope {
            account: account.to_string(),
            region: region.to_string(),
            principal: format!("arn:aws:iam::{account}:root"),
        }
    }

    /// The key prefix of this scope's rows.
    pub fn prefix(&self) -> String {
        format!("{}/{}/", self.account, self.region)
    }

    /// The row key of `id` in this scope.
    pub fn key(&self, id: &str) -> String {
        format!("{}/{}/{id}", self.account, self.region)
    }

    /// `arn:aws:ssm:<region>:<account>:<resource>`.
    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ssm:{}:{}:{resource}", self.region, self.account)
    }
}

/// Seconds since the epoch, with milliseconds.
pub fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// A string member of an input document.
pub fn s<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

/// A boolean member (absent: false).
pub fn b(input: &Value, key: &str) -> bool {
    input.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// An integer member.
pub fn i(input: &Value, key: &str) -> Option<i64> {
    input.get(key).and_then(Value::as_i64)
}

/// An array member (absent: empty).
pub fn arr<'a>(input: &'a Value, key: &str) -> &'a [Value] {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A list of strings member (non-strings skipped).
pub fn strings(input: &Value, key: &str) -> Vec<String> {
    arr(input, key)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Read one JSON row.
pub fn get_row<T: DeserializeOwned>(
    store: &dyn ControlStore,
    table: &str,
    key: &str,
) -> Result<Option<T>, InternalError> {
    match store.get(table, key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// All JSON rows of `table` under `prefix`, in key order.
pub fn scan_rows<T: DeserializeOwned>(
    store: &dyn ControlStore,
    table: &str,
    prefix: &str,
) -> Result<Vec<(String, T)>, InternalError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = store.scan(table, prefix, after.as_deref(), 1000)?;
        let n = rows.len();
        for (k, v) in rows {
            let row: T = serde_json::from_slice(&v)?;
            after = Some(k.clone());
            out.push((k, row));
        }
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// Serialize a row for a put.
pub fn to_bytes<T: Serialize>(row: &T) -> Vec<u8> {
    serde_json::to_vec(row).unwrap_or_default()
}

/// Put one JSON row.
pub fn put_row<T: Serialize>(
    store: &dyn ControlStore,
    table: &str,
    key: &str,
    row: &T,
) -> Result<(), InternalError> {
    store.put(table, key, &to_bytes(row))?;
    Ok(())
}

/// One page of `items` (already filtered and ordered) after the position `token` names, at most
/// `max`; the token of the next page when more remain. Tokens are opaque: the base64 of the offset
/// and a fingerprint of the item after which the page starts, so a stale token is detected.
pub fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: usize,
    id: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match token {
        None => 0,
        Some(t) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .map_err(|_| invalid_next_token())?;
            let raw = String::from_utf8(raw).map_err(|_| invalid_next_token())?;
            let (n, after) = raw.split_once('|').ok_or_else(invalid_next_token)?;
            let n: usize = n.parse().map_err(|_| invalid_next_token())?;
            // Resume after the named item when it is still there (items may have been removed).
            match items.iter().position(|x| id(x) == after) {
                Some(p) => p + 1,
                None => n.min(items.len()),
            }
        }
    };
    let max = max.max(1);
    let total = items.len();
    let end = (start + max).min(total);
    let next = if end < total && end > 0 {
        let last = id(&items[end - 1]);
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{end}|{last}")))
    } else {
        None
    };
    let out: Vec<T> = items.into_iter().skip(start).take(end - start).collect();
    Ok((out, next))
}

/// The page size of a request: `MaxResults` when given, else `default`.
pub fn max_results(input: &Value, default: usize) -> usize {
    i(input, "MaxResults")
        .map(|n| n.max(1) as usize)
        .unwrap_or(default)
}

/// Random lowercase hex of `n` characters.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Tags from a `[{Key, Value}]` list member.
pub fn tag_list(input: &Value, key: &str) -> Vec<(String, String)> {
    arr(input, key)
        .iter()
        .filter_map(|t| {
            Some((
                s(t, "Key")?.to_string(),
                s(t, "Value").unwrap_or("").to_string(),
            ))
        })
        .collect()
}

/// `[{Key, Value}]` from pairs.
pub fn tags_value(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_everything_once() {
        let items: Vec<u32> = (0..7).collect();
        let (p1, t1) = page(items.clone(), None, 3, |x| x.to_string()).unwrap();
        assert_eq!(p1, vec![0, 1, 2]);
        let (p2, t2) = page(items.clone(), t1.as_deref(), 3, |x| x.to_string()).unwrap();
        assert_eq!(p2, vec![3, 4, 5]);
        let (p3, t3) = page(items.clone(), t2.as_deref(), 3, |x| x.to_string()).unwrap();
        assert_eq!(p3, vec![6]);
        assert!(t3.is_none());
    }

    #[test]
    fn bad_tokens_are_rejected() {
        let e = page(vec![1], Some("!!"), 3, |x: &i32| x.to_string()).unwrap_err();
        assert_eq!(e.kind, "InvalidNextToken");
    }

    #[test]
    fn scope_keys_and_arns() {
        let sc = Scope::new("123456789012", "eu-west-1");
        assert_eq!(sc.key("x"), "123456789012/eu-west-1/x");
        assert_eq!(
            sc.arn("opsitem/oi-1"),
            "arn:aws:ssm:eu-west-1:123456789012:opsitem/oi-1"
        );
    }
}
