//! Account-level resource policies (Put/Describe/DeleteResourcePolicy, with revision ids) and
//! subscription destinations (Put/Describe/DeleteDestination, PutDestinationPolicy). Policies are
//! stored and described, not enforced (opsloop has no IAM). A destination's target must be an
//! EventBridge event bus; subscription filters naming the destination deliver there
//! (`subscriptions`).
//!
//! Keys: `{account}/{region}/{name}` in tables `logs.rpolicies` and `logs.destinations`.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_bool, opt_i64, opt_str, req_str, store_err};

const POLICIES: &str = "logs.rpolicies";
const DESTINATIONS: &str = "logs.destinations";
/// Resource policies per account and region.
const MAX_POLICIES: usize = 10;

fn key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{}/{name}", ctx.account_id, ctx.region)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Policy {
    name: String,
    document: String,
    revision: String,
    updated: i64,
}

fn policy_json(p: &Policy) -> Value {
    json!({
        "policyName": p.name, "policyDocument": p.document, "lastUpdatedTime": p.updated,
        "policyScope": "ACCOUNT", "revisionId": p.revision,
    })
}

pub fn put_resource_policy(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let name = req_str(input, "policyName")?;
    let document = req_str(input, "policyDocument")?;
    if serde_json::from_str::<Value>(document).map_or(true, |v| !v.is_object()) {
        return Err(error::invalid(
            "policyDocument must be a JSON policy document.",
        ));
    }
    if input.get("resourceArn").is_some_and(|v| !v.is_null()) {
        return Err(error::invalid(
            "Resource-scoped policies are not supported by this opsloop release.",
        ));
    }
    let existing = store.get(POLICIES, &key(ctx, name)).map_err(store_err)?;
    let existing: Option<Policy> = existing.and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(expected) = opt_str(input, "expectedRevisionId") {
        if existing.as_ref().map(|p| p.revision.as_str()) != Some(expected) {
            return Err(ApiError::new(
                "OperationAbortedException",
                "The expected revision id does not match.",
            ));
        }
    }
    if existing.is_none() {
        let count = store
            .scan(POLICIES, &key(ctx, ""), None, MAX_POLICIES + 1)
            .map_err(store_err)?
            .len();
        if count >= MAX_POLICIES {
            return Err(error::limit_exceeded(
                "Resource limit exceeded: at most 10 resource policies per region.",
            ));
        }
    }
    let p = Policy {
        name: name.to_string(),
        document: document.to_string(),
        revision: uuid::Uuid::new_v4().to_string(),
        updated: now_ms,
    };
    store
        .put(
            POLICIES,
            &key(ctx, name),
            &serde_json::to_vec(&p).map_err(error::internal)?,
        )
        .map_err(store_err)?;
    Ok(json!({"resourcePolicy": policy_json(&p), "revisionId": p.revision}))
}

pub fn describe_resource_policies(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let limit = opt_i64(input, "limit").unwrap_or(50).clamp(1, 50) as usize;
    let rows = store
        .scan(POLICIES, &key(ctx, ""), None, 100)
        .map_err(store_err)?;
    let list: Vec<Value> = rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<Policy>(v).ok())
        .take(limit)
        .map(|p| policy_json(&p))
        .collect();
    Ok(json!({"resourcePolicies": list}))
}

pub fn delete_resource_policy(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name =
        opt_str(input, "policyName").ok_or_else(|| error::invalid("policyName is required"))?;
    if let Some(expected) = opt_str(input, "expectedRevisionId") {
        let current: Option<Policy> = store
            .get(POLICIES, &key(ctx, name))
            .map_err(store_err)?
            .and_then(|b| serde_json::from_slice(&b).ok());
        if current.is_some_and(|p| p.revision != expected) {
            return Err(ApiError::new(
                "OperationAbortedException",
                "The expected revision id does not match.",
            ));
        }
    }
    if !store.delete(POLICIES, &key(ctx, name)).map_err(store_err)? {
        return Err(error::not_found(
            "Policy with name [".to_string() + name + "] does not exist",
        ));
    }
    Ok(json!({}))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Destination {
    name: String,
    target_arn: String,
    role_arn: String,
    access_policy: Option<String>,
    creation_time: i64,
}

fn destination_json(ctx: &RequestContext, d: &Destination) -> Value {
    let mut v = json!({
        "destinationName": d.name, "targetArn": d.target_arn, "roleArn": d.role_arn,
        "arn": format!("arn:aws:logs:{}:{}:destination:{}", ctx.region, ctx.account_id, d.name),
        "creationTime": d.creation_time,
    });
    if let Some(p) = &d.access_policy {
        v["accessPolicy"] = json!(p);
    }
    v
}

pub fn put_destination(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let name = req_str(input, "destinationName")?;
    let existing: Option<Destination> = store
        .get(DESTINATIONS, &key(ctx, name))
        .map_err(store_err)?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let target = req_str(input, "targetArn")?;
    match crate::subscriptions::classify(target)? {
        crate::subscriptions::Target::Bus { .. } => {}
        crate::subscriptions::Target::Destination { .. } => {
            return Err(error::invalid(
                "targetArn must be an EventBridge event bus ARN, not a Logs destination.",
            ))
        }
    }
    let d = Destination {
        name: name.to_string(),
        target_arn: target.to_string(),
        role_arn: req_str(input, "roleArn")?.to_string(),
        access_policy: existing.as_ref().and_then(|e| e.access_policy.clone()),
        creation_time: existing.map_or(now_ms, |e| e.creation_time),
    };
    store
        .put(
            DESTINATIONS,
            &key(ctx, name),
            &serde_json::to_vec(&d).map_err(error::internal)?,
        )
        .map_err(store_err)?;
    Ok(json!({"destination": destination_json(ctx, &d)}))
}

pub fn put_destination_policy(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = req_str(input, "destinationName")?;
    let policy = req_str(input, "accessPolicy")?;
    let _force = opt_bool(input, "forceUpdate");
    let mut d: Destination = store
        .get(DESTINATIONS, &key(ctx, name))
        .map_err(store_err)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| error::not_found("The specified destination does not exist."))?;
    d.access_policy = Some(policy.to_string());
    store
        .put(
            DESTINATIONS,
            &key(ctx, name),
            &serde_json::to_vec(&d).map_err(error::internal)?,
        )
        .map_err(store_err)?;
    Ok(json!({}))
}

pub fn describe_destinations(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let prefix = opt_str(input, "DestinationNamePrefix").unwrap_or("");
    let limit = opt_i64(input, "limit").unwrap_or(50).clamp(1, 50) as usize;
    let after = match opt_str(input, "nextToken") {
        Some(t) => Some(key(ctx, &crate::groups::decode_token(t)?)),
        None => None,
    };
    let rows = store
        .scan(DESTINATIONS, &key(ctx, prefix), after.as_deref(), limit + 1)
        .map_err(store_err)?;
    let list: Vec<Destination> = rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect();
    let mut out = json!({"destinations": list.iter().take(limit).map(|d| destination_json(ctx, d)).collect::<Vec<_>>()});
    if list.len() > limit {
        out["nextToken"] = json!(crate::groups::encode_token(&list[limit - 1].name));
    }
    Ok(out)
}

/// The target ARN of destination `name` of `account`/`region`, if it exists.
pub fn destination_target(
    store: &dyn ControlStore,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<String>, ApiError> {
    Ok(store
        .get(DESTINATIONS, &format!("{account}/{region}/{name}"))
        .map_err(store_err)?
        .and_then(|b| serde_json::from_slice::<Destination>(&b).ok())
        .map(|d| d.target_arn))
}

pub fn delete_destination(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = req_str(input, "destinationName")?;
    if !store
        .delete(DESTINATIONS, &key(ctx, name))
        .map_err(store_err)?
    {
        return Err(error::not_found(
            "The specified destination does not exist.",
        ));
    }
    Ok(json!({}))
}
