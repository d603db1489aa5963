//! Account-level policies (Put/Describe/DeleteAccountPolicy), log-group index policies
//! (Put/Describe/DeleteIndexPolicy) and DescribeFieldIndexes.
//!
//! Account policy types and what they do here:
//! - DATA_PROTECTION_POLICY (one per account): masks every selected group's events, cumulative
//!   with the group's own policy (`dataprotection::masker`).
//! - SUBSCRIPTION_FILTER_POLICY (one per account): document `{"DestinationArn", "FilterPattern",
//!   "Distribution"}`; every selected group delivers through it as if it had that subscription
//!   filter (`subscriptions::group_filters`), to destinations opsloop hosts.
//! - FIELD_INDEX_POLICY (up to 40): `{"Fields": [...]}` for groups whose name starts with a prefix of
//!   `selectionCriteria` `LogGroupNamePrefix IN [...]`; described by DescribeIndexPolicies and
//!   DescribeFieldIndexes. Indexes are declarative here: Insights scans the time window either way,
//!   so results are the same with or without them.
//! - TRANSFORMER_POLICY and METRIC_EXTRACTION_POLICY: refused (InvalidParameterException), since
//!   this release applies neither.
//!
//! `selectionCriteria`: `LogGroupName NOT IN ["a", ...]` (data protection, subscription) or
//! `LogGroupNamePrefix IN ["a", ...]` (field index).
//!
//! Keys: `logs.apolicies` `{account}/{region}/{type}/{name}`; `logs.ipolicies` `{account}/{region}/{group}`.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_str, req_str, store_err};
use crate::filters::SubscriptionRecord;
use crate::groups::{group_key, load_group, name_from_identifier};
use crate::records;

const ACCOUNT: &str = "logs.apolicies";
const INDEX: &str = "logs.ipolicies";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountPolicy {
    name: String,
    kind: String,
    document: String,
    selection: Option<String>,
    updated: i64,
}

/// A parsed `selectionCriteria`.
#[derive(Debug, Clone, PartialEq)]
enum Selection {
    All,
    NotIn(Vec<String>),
    PrefixIn(Vec<String>),
}

impl Selection {
    fn parse(src: Option<&str>) -> Result<Selection, ApiError> {
        let Some(src) = src.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Selection::All);
        };
        let bad = || {
            error::invalid(format!(
                "Invalid selectionCriteria '{src}': use LogGroupName NOT IN [\"name\", ...] or LogGroupNamePrefix IN [\"prefix\", ...]."
            ))
        };
        let (ctor, rest): (fn(Vec<String>) -> Selection, &str) =
            if let Some(r) = src.strip_prefix("LogGroupName NOT IN") {
                (Selection::NotIn, r)
            } else if let Some(r) = src.strip_prefix("LogGroupNamePrefix IN") {
                (Selection::PrefixIn, r)
            } else {
                return Err(bad());
            };
        let list: Vec<String> = serde_json::from_str(rest.trim()).map_err(|_| bad())?;
        if list.len() > 50 {
            return Err(error::invalid(
                "selectionCriteria can name at most 50 log groups or prefixes.",
            ));
        }
        Ok(ctor(list))
    }

    fn selects(&self, group: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::NotIn(l) => !l.iter().any(|n| n == group),
            Selection::PrefixIn(l) => l.iter().any(|p| group.starts_with(p.as_str())),
        }
    }
}

fn policy_json(ctx: &RequestContext, p: &AccountPolicy) -> Value {
    let mut v = json!({
        "policyName": p.name, "policyType": p.kind, "policyDocument": p.document,
        "lastUpdatedTime": p.updated, "scope": "ALL", "accountId": ctx.account_id,
    });
    if let Some(s) = &p.selection {
        v["selectionCriteria"] = json!(s);
    }
    v
}

fn akey(ctx: &RequestContext, kind: &str, name: &str) -> String {
    records::key(ctx, &format!("{kind}/{name}"))
}

fn policies_of(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    kind: &str,
) -> Result<Vec<AccountPolicy>, ApiError> {
    records::all(store, ACCOUNT, &akey(ctx, kind, ""))
}

fn fields_of(document: &str) -> Result<Vec<String>, ApiError> {
    let doc: Value = serde_json::from_str(document)
        .map_err(|e| error::invalid(format!("policyDocument is not valid JSON: {e}")))?;
    let fields: Vec<String> = doc
        .get("Fields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .ok_or_else(|| error::invalid("policyDocument must have a Fields list of field names."))?;
    if fields.is_empty() || fields.len() > 20 {
        return Err(error::invalid("An index policy can index 1 to 20 fields."));
    }
    Ok(fields)
}

/// The subscription document of a SUBSCRIPTION_FILTER_POLICY, validated.
fn subscription_of(document: &str) -> Result<(String, String, String), ApiError> {
    let doc: Value = serde_json::from_str(document)
        .map_err(|e| error::invalid(format!("policyDocument is not valid JSON: {e}")))?;
    let dest = doc
        .get("DestinationArn")
        .and_then(Value::as_str)
        .ok_or_else(|| error::invalid("policyDocument must have a DestinationArn."))?;
    crate::subscriptions::classify(dest)?;
    let pattern = doc
        .get("FilterPattern")
        .and_then(Value::as_str)
        .unwrap_or("");
    crate::pattern::Pattern::parse(pattern)?;
    let distribution = doc
        .get("Distribution")
        .and_then(Value::as_str)
        .unwrap_or("ByLogStream");
    if !["ByLogStream", "Random"].contains(&distribution) {
        return Err(error::invalid(
            "Distribution must be ByLogStream or Random.",
        ));
    }
    Ok((
        dest.to_string(),
        pattern.to_string(),
        distribution.to_string(),
    ))
}

/// Account DATA_PROTECTION_POLICY documents (with their update time) selecting `group`.
pub fn data_protection_policies(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Vec<(String, i64)>, ApiError> {
    Ok(policies_of(store, ctx, "DATA_PROTECTION_POLICY")?
        .into_iter()
        .filter(|p| Selection::parse(p.selection.as_deref()).is_ok_and(|s| s.selects(group)))
        .map(|p| (p.document, p.updated))
        .collect())
}

/// Account SUBSCRIPTION_FILTER_POLICY filters selecting `group`, as subscription records.
pub fn subscription_policies(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Vec<SubscriptionRecord>, ApiError> {
    let mut out = Vec::new();
    for p in policies_of(store, ctx, "SUBSCRIPTION_FILTER_POLICY")? {
        if !Selection::parse(p.selection.as_deref()).is_ok_and(|s| s.selects(group)) {
            continue;
        }
        if let Ok((dest, pattern, distribution)) = subscription_of(&p.document) {
            out.push(SubscriptionRecord {
                group: group.to_string(),
                name: p.name,
                pattern,
                destination_arn: dest,
                role_arn: None,
                distribution,
                creation_time: p.updated,
            });
        }
    }
    Ok(out)
}

pub fn put_account_policy(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let name = req_str(input, "policyName")?;
    let kind = req_str(input, "policyType")?;
    let document = req_str(input, "policyDocument")?;
    let selection = opt_str(input, "selectionCriteria");
    let sel = Selection::parse(selection)?;
    let (limit, what) = match kind {
        "DATA_PROTECTION_POLICY" => {
            crate::dataprotection::parse_document(document)?;
            (1, "data protection")
        }
        "SUBSCRIPTION_FILTER_POLICY" => {
            subscription_of(document)?;
            (1, "subscription filter")
        }
        "FIELD_INDEX_POLICY" => {
            fields_of(document)?;
            (40, "field index")
        }
        other => {
            return Err(error::invalid(format!(
                "policyType {other} is not supported by this opsloop release (transformers and metric extraction are not applied)."
            )))
        }
    };
    match (&sel, kind) {
        (Selection::PrefixIn(_), "FIELD_INDEX_POLICY")
        | (Selection::All, _)
        | (Selection::NotIn(_), "DATA_PROTECTION_POLICY" | "SUBSCRIPTION_FILTER_POLICY") => {}
        _ => {
            return Err(error::invalid(format!(
                "selectionCriteria '{}' does not apply to {kind}.",
                selection.unwrap_or("")
            )))
        }
    }
    let key = akey(ctx, kind, name);
    let existing = policies_of(store, ctx, kind)?;
    if existing.len() >= limit && !existing.iter().any(|p| p.name == name) {
        return Err(error::limit_exceeded(format!(
            "An account can have at most {limit} {what} account policies."
        )));
    }
    let p = AccountPolicy {
        name: name.to_string(),
        kind: kind.to_string(),
        document: document.to_string(),
        selection: selection.map(str::to_string),
        updated: now_ms,
    };
    records::put(store, ACCOUNT, &key, &p)?;
    Ok(json!({"accountPolicy": policy_json(ctx, &p)}))
}

pub fn describe_account_policies(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let kind = req_str(input, "policyType")?;
    let accounts = error::str_list(input, "accountIdentifiers");
    if !accounts.is_empty() && !accounts.contains(&ctx.account_id) {
        return Ok(json!({"accountPolicies": []}));
    }
    let name = opt_str(input, "policyName");
    let list: Vec<Value> = policies_of(store, ctx, kind)?
        .iter()
        .filter(|p| name.is_none_or(|n| n == p.name))
        .map(|p| policy_json(ctx, p))
        .collect();
    if name.is_some() && list.is_empty() {
        return Err(error::not_found(
            "The specified account policy does not exist.",
        ));
    }
    Ok(json!({"accountPolicies": list}))
}

pub fn delete_account_policy(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = req_str(input, "policyName")?;
    let kind = req_str(input, "policyType")?;
    if !store
        .delete(ACCOUNT, &akey(ctx, kind, name))
        .map_err(store_err)?
    {
        return Err(error::not_found(format!(
            "Account policy {name} of type {kind} does not exist."
        )));
    }
    Ok(json!({}))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexPolicy {
    group: String,
    document: String,
    updated: i64,
}

/// The effective index policy of `group`: its own, else the first account FIELD_INDEX_POLICY
/// selecting it. (document, policy name, source, updated)
fn effective_index(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Option<(String, String, &'static str, i64)>, ApiError> {
    if let Some(p) = records::get::<IndexPolicy>(store, INDEX, &group_key(ctx, group))? {
        return Ok(Some((
            p.document,
            "log-group-level-policy".into(),
            "LOG_GROUP",
            p.updated,
        )));
    }
    Ok(policies_of(store, ctx, "FIELD_INDEX_POLICY")?
        .into_iter()
        .find(|p| Selection::parse(p.selection.as_deref()).is_ok_and(|s| s.selects(group)))
        .map(|p| (p.document, p.name, "ACCOUNT", p.updated)))
}

fn groups_of(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Vec<(String, String)>, ApiError> {
    let idents = error::str_list(input, "logGroupIdentifiers");
    if idents.is_empty() {
        return Err(error::invalid(
            "logGroupIdentifiers must name at least one log group.",
        ));
    }
    let mut out = Vec::new();
    for i in idents {
        let g = load_group(store, ctx, &name_from_identifier(&i))?;
        out.push((i, g.name));
    }
    Ok(out)
}

pub fn handle_index(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "PutIndexPolicy" => {
            let ident = req_str(input, "logGroupIdentifier")?;
            let g = load_group(store, ctx, &name_from_identifier(ident))?;
            let document = req_str(input, "policyDocument")?;
            fields_of(document)?;
            let p = IndexPolicy {
                group: g.name.clone(),
                document: document.to_string(),
                updated: now_ms,
            };
            records::put(store, INDEX, &group_key(ctx, &g.name), &p)?;
            Ok(json!({"indexPolicy": {
                "logGroupIdentifier": ident, "policyDocument": document, "lastUpdateTime": now_ms,
                "policyName": "log-group-level-policy", "source": "LOG_GROUP"
            }}))
        }
        "DeleteIndexPolicy" => {
            let ident = req_str(input, "logGroupIdentifier")?;
            let g = load_group(store, ctx, &name_from_identifier(ident))?;
            if !store
                .delete(INDEX, &group_key(ctx, &g.name))
                .map_err(store_err)?
            {
                return Err(error::not_found(
                    "The specified log group has no index policy.",
                ));
            }
            Ok(json!({}))
        }
        "DescribeIndexPolicies" => {
            let mut list = Vec::new();
            for (ident, name) in groups_of(store, ctx, input)? {
                if let Some((doc, pname, source, updated)) = effective_index(store, ctx, &name)? {
                    list.push(json!({
                        "logGroupIdentifier": ident, "policyDocument": doc, "policyName": pname,
                        "source": source, "lastUpdateTime": updated,
                    }));
                }
            }
            Ok(json!({"indexPolicies": list}))
        }
        "DescribeFieldIndexes" => {
            let mut list = Vec::new();
            for (ident, name) in groups_of(store, ctx, input)? {
                if let Some((doc, _, _, updated)) = effective_index(store, ctx, &name)? {
                    for f in fields_of(&doc)? {
                        list.push(json!({
                            "logGroupIdentifier": ident, "fieldIndexName": f,
                            "lastScanTime": updated, "type": "FIELD_INDEX",
                        }));
                    }
                }
            }
            Ok(json!({"fieldIndexes": list}))
        }
        other => Err(crate::not_implemented(other)),
    }
}

/// Delete a group's index policy along with the group.
pub fn delete_op(ctx: &RequestContext, group: &str) -> opsloop_store::WriteOp {
    opsloop_store::WriteOp::Delete {
        table: INDEX.into(),
        key: group_key(ctx, group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_criteria() {
        let s = Selection::parse(Some(r#"LogGroupName NOT IN ["a", "b"]"#)).unwrap();
        assert!(!s.selects("a") && s.selects("c"));
        let p = Selection::parse(Some(r#"LogGroupNamePrefix IN ["/app/"]"#)).unwrap();
        assert!(p.selects("/app/x") && !p.selects("/other"));
        assert_eq!(Selection::parse(None).unwrap(), Selection::All);
        assert!(Selection::parse(Some("LogGroupName IN [\"a\"]")).is_err());
    }
}
