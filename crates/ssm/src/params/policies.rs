//! Parameter policies (advanced tier): parsing and validation of the `Policies` JSON (Expiration,
//! ExpirationNotification, NoChangeNotification; at most 10, one of each type), and enforcement of
//! Expiration — an expired parameter reads as deleted at once and [`sweep`] (run by the service's
//! background task) deletes it with its tags. Notifications are stored and reported, not sent.

use opsloop_core::{ApiError, Value};
use opsloop_store::{ControlStore, WriteOp};

use super::{Param, TABLE};
use crate::common::{s, scan_rows};
use crate::error::{err, InternalError};

const MAX_POLICIES: usize = 10;

fn parse_time(v: &str) -> Option<f64> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

/// Parse and check a `Policies` string at time `now` (an Expiration must lie in the future).
pub fn parse(text: Option<&str>, now: f64) -> Result<Vec<Value>, ApiError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let not_json = || {
        err(
            "InvalidPolicyAttributeException",
            "Policies must be a JSON array of parameter policies.",
        )
    };
    let list = match serde_json::from_str::<Value>(text).map_err(|_| not_json())? {
        Value::Array(a) => a,
        other @ Value::Object(_) => vec![other],
        _ => return Err(not_json()),
    };
    if list.len() > MAX_POLICIES {
        return Err(err(
            "PoliciesLimitExceededException",
            format!("You specified more than the maximum number of allowed policies for the parameter. The maximum is {MAX_POLICIES}."),
        ));
    }
    let mut seen = Vec::new();
    for p in &list {
        let ty = s(p, "Type").unwrap_or("");
        let attrs = p.get("Attributes").cloned().unwrap_or(Value::Null);
        let ok = match ty {
            "Expiration" => attrs
                .get("Timestamp")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .map(|ts| ts > now)
                .unwrap_or(false),
            "ExpirationNotification" => attrs.get("Before").is_some(),
            "NoChangeNotification" => attrs.get("After").is_some(),
            _ => {
                return Err(err(
                    "InvalidPolicyTypeException",
                    format!("The policy type {ty} is not supported. Valid types are Expiration, ExpirationNotification and NoChangeNotification."),
                ))
            }
        };
        if !ok {
            return Err(err(
                "InvalidPolicyAttributeException",
                format!("A policy of type {ty} has a missing or invalid attribute (Expiration needs a future ISO 8601 Timestamp, ExpirationNotification a Before, NoChangeNotification an After)."),
            ));
        }
        if seen.contains(&ty) {
            return Err(err(
                "IncompatiblePolicyException",
                format!("There is a conflict in the policies specified for this parameter: {ty} is given twice."),
            ));
        }
        seen.push(ty);
    }
    Ok(list)
}

/// When the latest version's Expiration policy expires the parameter.
pub fn expiry(p: &Param) -> Option<f64> {
    p.latest().policies.iter().find_map(|pol| {
        if s(pol, "Type") != Some("Expiration") {
            return None;
        }
        pol.get("Attributes")
            .and_then(|a| a.get("Timestamp"))
            .and_then(Value::as_str)
            .and_then(parse_time)
    })
}

/// Has the parameter expired at `t`?
pub fn expired(p: &Param, t: f64) -> bool {
    expiry(p).map(|e| e <= t).unwrap_or(false)
}

/// Delete every expired parameter (all accounts and regions) with its tags; returns how many.
pub fn sweep(store: &dyn ControlStore, t: f64) -> Result<usize, InternalError> {
    let mut ops = Vec::new();
    for (key, p) in scan_rows::<Param>(store, TABLE, "")? {
        if !expired(&p, t) {
            continue;
        }
        let mut parts = key.splitn(3, '/');
        let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
            continue;
        };
        let scope = crate::common::Scope::new(account, region);
        ops.push(WriteOp::Delete {
            table: TABLE.into(),
            key,
        });
        ops.push(crate::tags::delete_op(&scope, "Parameter", &p.name));
    }
    let n = ops.len() / 2;
    if n > 0 {
        store.batch(ops)?;
        tracing::info!(count = n, "expired parameters deleted");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rules() {
        let ok = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-01T00:00:00.000Z"}}]"#;
        assert_eq!(parse(Some(ok), 0.0).unwrap().len(), 1);
        let past = r#"[{"Type":"Expiration","Attributes":{"Timestamp":"2001-01-01T00:00:00Z"}}]"#;
        assert_eq!(
            parse(Some(past), 1.9e9).unwrap_err().kind,
            "InvalidPolicyAttributeException"
        );
        let bad_type = r#"[{"Type":"Explode","Attributes":{}}]"#;
        assert_eq!(
            parse(Some(bad_type), 0.0).unwrap_err().kind,
            "InvalidPolicyTypeException"
        );
        let bad_ts = r#"[{"Type":"Expiration","Attributes":{"Timestamp":"tomorrow"}}]"#;
        assert_eq!(
            parse(Some(bad_ts), 0.0).unwrap_err().kind,
            "InvalidPolicyAttributeException"
        );
        let twice = format!("[{},{}]", &ok[1..ok.len() - 1], &ok[1..ok.len() - 1]);
        assert_eq!(
            parse(Some(&twice), 0.0).unwrap_err().kind,
            "IncompatiblePolicyException"
        );
        assert!(parse(None, 0.0).unwrap().is_empty());
    }
}
