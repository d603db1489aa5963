//! Data protection: Put/Get/DeleteDataProtectionPolicy per log group, validation of the policy
//! document (shared with account-level DATA_PROTECTION_POLICY in `accountpolicies`), and masking.
//!
//! Masking is applied when events are read, to events ingested at or after the policy was last put
//! (AWS masks what is ingested after the policy exists): GetLogEvents and FilterLogEvents mask
//! unless `unmask` is true, subscription deliveries are masked. Stored events keep their original
//! text, which is what makes `unmask` possible.
//!
//! For Logs Insights (and any other reader): [`masker`] returns the effective [`Masker`] of a log
//! group — its own policy plus the account's DATA_PROTECTION_POLICY, cumulative as in AWS — and
//! [`Masker::mask`] masks one message given its ingestion time.
//!
//! Data identifiers: the managed identifiers in [`MANAGED`] (by name or
//! `arn:aws:dataprotection::aws:data-identifier/<Name>`) and custom identifiers from
//! `Configuration.CustomDataIdentifier` (`Name`, `Regex`). Other managed identifiers are refused
//! with InvalidParameterException naming them. Masked text is replaced by one `*` per character.
//!
//! Keys: table `logs.dataprotection`, `{account}/{region}/{group}`.

use std::borrow::Cow;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, req_str, store_err};
use crate::groups::{group_key, load_group, name_from_identifier};
use crate::records;

const TABLE: &str = "logs.dataprotection";
const ARN_PREFIX: &str = "arn:aws:dataprotection::aws:data-identifier/";

/// Managed data identifiers opsloop detects (name, pattern; capture group 1 is masked when present).
pub const MANAGED: &[(&str, &str)] = &[
    (
        "EmailAddress",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    ),
    (
        "IpAddress",
        r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
    ),
    (
        "AwsSecretKey",
        r#"(?i)(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["'\s:=]+([A-Za-z0-9/+=]{40})\b"#,
    ),
    ("CreditCardNumber", r"\b(?:\d[ -]?){12,18}\d\b"),
    ("Ssn-US", r"\b\d{3}-\d{2}-\d{4}\b"),
    (
        "PhoneNumber-US",
        r"(?:\+1[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
    ),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    group: String,
    document: String,
    updated: i64,
}

/// The rules of a policy document, validated.
pub fn parse_document(document: &str) -> Result<Vec<(String, Regex)>, ApiError> {
    let doc: Value = serde_json::from_str(document)
        .map_err(|e| error::invalid(format!("policyDocument is not valid JSON: {e}")))?;
    let statements = doc
        .get("Statement")
        .and_then(Value::as_array)
        .ok_or_else(|| error::invalid("policyDocument must have a Statement list."))?;
    let mut custom: Vec<(String, Regex)> = Vec::new();
    if let Some(list) = doc
        .pointer("/Configuration/CustomDataIdentifier")
        .and_then(Value::as_array)
    {
        for c in list {
            let (Some(name), Some(re)) = (
                c.get("Name").and_then(Value::as_str),
                c.get("Regex").and_then(Value::as_str),
            ) else {
                return Err(error::invalid(
                    "Each CustomDataIdentifier needs a Name and a Regex.",
                ));
            };
            let re = regex::RegexBuilder::new(re)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    error::invalid(format!(
                        "Invalid Regex of custom data identifier {name}: {e}"
                    ))
                })?;
            custom.push((name.to_string(), re));
        }
    }
    let ids_of = |s: &Value| -> Vec<String> {
        s.get("DataIdentifier")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let audits: Vec<&Value> = statements
        .iter()
        .filter(|s| s.pointer("/Operation/Audit").is_some())
        .collect();
    let deidentify: Vec<&Value> = statements
        .iter()
        .filter(|s| s.pointer("/Operation/Deidentify/MaskConfig").is_some())
        .collect();
    if audits.len() != 1
        || audits[0]
            .pointer("/Operation/Audit/FindingsDestination")
            .is_none()
    {
        return Err(error::invalid(
            "policyDocument must have exactly one statement with an Audit operation holding a FindingsDestination.",
        ));
    }
    if deidentify.is_empty() || audits.len() + deidentify.len() != statements.len() {
        return Err(error::invalid(
            "policyDocument must have a statement with a Deidentify operation holding a MaskConfig, and no other statements.",
        ));
    }
    let audit_ids = ids_of(audits[0]);
    let mut rules = Vec::new();
    for s in deidentify {
        let ids = ids_of(s);
        if ids.is_empty() {
            return Err(error::invalid(
                "Every statement needs a non-empty DataIdentifier list.",
            ));
        }
        for id in ids {
            if !audit_ids.contains(&id) {
                return Err(error::invalid(format!(
                    "DataIdentifier {id} of the Deidentify statement must also be in the Audit statement."
                )));
            }
            let short = id.strip_prefix(ARN_PREFIX).unwrap_or(&id);
            if let Some((n, re)) = custom.iter().find(|(n, _)| n == short) {
                rules.push((n.clone(), re.clone()));
            } else if let Some((n, p)) = MANAGED.iter().find(|(n, _)| *n == short) {
                rules.push((n.to_string(), Regex::new(p).map_err(error::internal)?));
            } else {
                return Err(error::invalid(format!(
                    "Data identifier {id} is not supported by opsloop; supported managed identifiers: {}, or a CustomDataIdentifier.",
                    MANAGED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    Ok(rules)
}

/// Luhn check for card-number candidates.
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The masking rules in force for a log group, each with the time from which it applies.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    rules: Vec<(String, Regex, i64)>,
}

impl Masker {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `msg` with sensitive data masked, for an event ingested at `ingest_ms`.
    pub fn mask<'a>(&self, msg: &'a str, ingest_ms: i64) -> Cow<'a, str> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (name, re, since) in &self.rules {
            if ingest_ms < *since {
                continue;
            }
            for caps in re.captures_iter(msg) {
                let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                    continue;
                };
                if name == "CreditCardNumber" && !luhn(m.as_str()) {
                    continue;
                }
                spans.push((m.start(), m.end()));
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(msg);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(msg.len());
        let mut pos = 0;
        for (s, e) in spans {
            let s = s.max(pos);
            if e <= s {
                continue;
            }
            out.push_str(&msg[pos..s]);
            out.extend(std::iter::repeat_n('*', msg[s..e].chars().count()));
            pos = e;
        }
        out.push_str(&msg[pos..]);
        Cow::Owned(out)
    }

    /// Mask the `message` of every event of an answer's `events` list (which carry `ingestionTime`).
    pub fn mask_events(&self, answer: &mut Value) {
        let Some(events) = answer.get_mut("events").and_then(Value::as_array_mut) else {
            return;
        };
        for e in events {
            let ingest = e.get("ingestionTime").and_then(Value::as_i64).unwrap_or(0);
            if let Some(m) = e.get("message").and_then(Value::as_str) {
                if let Cow::Owned(masked) = self.mask(m, ingest) {
                    e["message"] = Value::String(masked);
                }
            }
        }
    }
}

/// The effective masker of log group `group` (its policy and the account's), `None` without any.
pub fn masker(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Option<Masker>, ApiError> {
    let mut m = Masker::default();
    if let Some(p) = records::get::<Stored>(store, TABLE, &group_key(ctx, group))? {
        for (n, re) in parse_document(&p.document)? {
            m.rules.push((n, re, p.updated));
        }
    }
    for (document, updated) in crate::accountpolicies::data_protection_policies(store, ctx, group)?
    {
        for (n, re) in parse_document(&document)? {
            m.rules.push((n, re, updated));
        }
    }
    Ok((!m.is_empty()).then_some(m))
}

pub fn handle(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let ident = req_str(input, "logGroupIdentifier")?;
    let group = name_from_identifier(ident);
    load_group(store, ctx, &group)?;
    let key = group_key(ctx, &group);
    match ctx.operation.as_str() {
        "PutDataProtectionPolicy" => {
            let document = req_str(input, "policyDocument")?;
            parse_document(document)?;
            let p = Stored {
                group: group.clone(),
                document: document.to_string(),
                updated: now_ms,
            };
            records::put(store, TABLE, &key, &p)?;
            Ok(
                json!({"logGroupIdentifier": ident, "policyDocument": p.document, "lastUpdatedTime": now_ms}),
            )
        }
        "GetDataProtectionPolicy" => Ok(match records::get::<Stored>(store, TABLE, &key)? {
            Some(p) => {
                json!({"logGroupIdentifier": ident, "policyDocument": p.document, "lastUpdatedTime": p.updated})
            }
            None => json!({"logGroupIdentifier": ident}),
        }),
        "DeleteDataProtectionPolicy" => {
            if !store.delete(TABLE, &key).map_err(store_err)? {
                return Err(error::not_found(
                    "The specified log group has no data protection policy.",
                ));
            }
            Ok(json!({}))
        }
        other => Err(crate::not_implemented(other)),
    }
}

/// Delete a group's policy along with the group (part of DeleteLogGroup's batch).
pub fn delete_op(ctx: &RequestContext, group: &str) -> opsloop_store::WriteOp {
    opsloop_store::WriteOp::Delete {
        table: TABLE.into(),
        key: group_key(ctx, group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ids: &[&str]) -> String {
        json!({
            "Name": "p", "Version": "2021-06-01",
            "Statement": [
                {"Sid": "audit", "DataIdentifier": ids, "Operation": {"Audit": {"FindingsDestination": {}}}},
                {"Sid": "redact", "DataIdentifier": ids, "Operation": {"Deidentify": {"MaskConfig": {}}}}
            ],
            "Configuration": {"CustomDataIdentifier": [{"Name": "EmployeeId", "Regex": "EmployeeId-\\d{9}"}]}
        })
        .to_string()
    }

    #[test]
    fn masks_managed_and_custom_identifiers_after_the_policy_time() {
        let rules = parse_document(&doc(&[
            "arn:aws:dataprotection::aws:data-identifier/EmailAddress",
            "CreditCardNumber",
            "EmployeeId",
        ]))
        .unwrap();
        let m = Masker {
            rules: rules.into_iter().map(|(n, r)| (n, r, 100)).collect(),
        };
        assert_eq!(
            m.mask(
                "user bob@example.com paid 4111 1111 1111 1111 as EmployeeId-123456789",
                100
            ),
            "user *************** paid ******************* as ********************"
        );
        assert_eq!(
            m.mask("card 1234 5678 9012 3456", 100),
            "card 1234 5678 9012 3456"
        );
        assert_eq!(m.mask("bob@example.com", 99), "bob@example.com");
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(parse_document("{}").is_err());
        assert!(parse_document(&doc(&["Address"])).is_err());
        let e = parse_document(&doc(&["arn:aws:dataprotection::aws:data-identifier/Name"]))
            .unwrap_err();
        assert!(
            e.message.contains("not supported by opsloop"),
            "{}",
            e.message
        );
    }
}
