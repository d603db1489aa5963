//! Replication sets, response plans, tags and resource policies: the configuration side of
//! Incident Manager. Response plans are stored as their `GetResponsePlan` document.

use opsloop_core::{ApiError, RequestContext, Value};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::util::{
    arn, arn_account, caller, conflict, del, invalid, not_found, now, page_doc, paginate, put, req,
    s, uuid, Db, T_PLAN, T_POLICY, T_RECORD, T_REPLSET, T_TAGS, T_TOKEN,
};
use crate::Inner;

/// A replication set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicationSet {
    pub arn: String,
    pub account: String,
    pub created: f64,
    pub modified: f64,
    pub deletion_protected: bool,
    /// Region name → optional KMS key id.
    pub regions: Map<String, Value>,
}

impl ReplicationSet {
    fn doc(&self) -> Value {
        let mut map = Map::new();
        for (name, key) in &self.regions {
            let mut r = json!({"status": "ACTIVE", "statusUpdateDateTime": self.modified});
            if let Some(k) = key.as_str() {
                r["sseKmsKeyId"] = json!(k);
            }
            map.insert(name.clone(), r);
        }
        json!({
            "arn": self.arn,
            "createdBy": caller(&self.account),
            "createdTime": self.created,
            "deletionProtected": self.deletion_protected,
            "lastModifiedBy": caller(&self.account),
            "lastModifiedTime": self.modified,
            "regionMap": map,
            "status": "ACTIVE",
        })
    }
}

/// A stored response plan: its `GetResponsePlan` document and owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub account: String,
    pub doc: Value,
}

impl Plan {
    pub fn name(&self) -> &str {
        s(&self.doc, "name").unwrap_or_default()
    }
    pub fn template(&self) -> &Value {
        &self.doc["incidentTemplate"]
    }
}

fn db(i: &Inner) -> Db<'_> {
    Db(&*i.control)
}

/// A client token seen before for this operation: the stored result.
pub fn token_result(
    i: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Option<Value>, ApiError> {
    match s(input, "clientToken") {
        Some(t) => db(i).get(T_TOKEN, &token_key(ctx, t)),
        None => Ok(None),
    }
}

pub fn token_key(ctx: &RequestContext, token: &str) -> String {
    format!("{}|{}|{token}", ctx.account_id, ctx.operation)
}

fn validate_regions(regions: &Map<String, Value>) -> Result<(), ApiError> {
    for name in regions.keys() {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid("regions", format!("'{name}' is not a region name")));
        }
    }
    Ok(())
}

fn replication_sets(i: &Inner, account: &str) -> Result<Vec<ReplicationSet>, ApiError> {
    Ok(db(i)
        .scan::<ReplicationSet>(T_REPLSET, "")?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.account == account)
        .collect())
}

fn get_replication_set(
    i: &Inner,
    ctx: &RequestContext,
    a: &str,
) -> Result<ReplicationSet, ApiError> {
    db(i)
        .get::<ReplicationSet>(T_REPLSET, a)?
        .filter(|r| r.account == ctx.account_id)
        .ok_or_else(|| not_found("Replication set", a))
}

pub fn create_replication_set(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    if let Some(prev) = token_result(i, ctx, v)? {
        return Ok(prev);
    }
    let regions = v["regions"].as_object().cloned().unwrap_or_default();
    if regions.is_empty() {
        return Err(invalid("regions", "at least one region is required"));
    }
    validate_regions(&regions)?;
    if !replication_sets(i, &ctx.account_id)?.is_empty() {
        return Err(conflict(
            "A replication set already exists in this account.",
        ));
    }
    let t = now();
    let set = ReplicationSet {
        arn: arn(&ctx.account_id, &format!("replication-set/{}", uuid())),
        account: ctx.account_id.clone(),
        created: t,
        modified: t,
        deletion_protected: false,
        regions: regions
            .into_iter()
            .map(|(k, r)| (k, r.get("sseKmsKeyId").cloned().unwrap_or(Value::Null)))
            .collect(),
    };
    let out = json!({"arn": set.arn});
    let mut ops = vec![put(T_REPLSET, &set.arn, &set)];
    ops.extend(tag_ops(i, &set.arn, v.get("tags"))?);
    if let Some(tok) = s(v, "clientToken") {
        ops.push(put(T_TOKEN, &token_key(ctx, tok), &out));
    }
    db(i).batch(ops)?;
    Ok(out)
}

pub fn get_replication_set_op(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let set = get_replication_set(i, ctx, req(v, "arn")?)?;
    Ok(json!({"replicationSet": set.doc()}))
}

pub fn list_replication_sets(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let arns: Vec<Value> = replication_sets(i, &ctx.account_id)?
        .into_iter()
        .map(|r| json!(r.arn))
        .collect();
    let (page, next) = paginate(arns, v, 100)?;
    Ok(page_doc("replicationSetArns", page, next))
}

pub fn update_replication_set(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let mut set = get_replication_set(i, ctx, req(v, "arn")?)?;
    let actions = v["actions"].as_array().cloned().unwrap_or_default();
    if actions.is_empty() {
        return Err(invalid("actions", "at least one action is required"));
    }
    for a in &actions {
        if let Some(add) = a.get("addRegionAction") {
            let name = req(add, "regionName")?;
            if set.regions.contains_key(name) {
                return Err(invalid(
                    "addRegionAction.regionName",
                    format!("region {name} is already in the replication set"),
                ));
            }
            let mut one = Map::new();
            one.insert(name.to_string(), Value::Null);
            validate_regions(&one)?;
            set.regions.insert(
                name.to_string(),
                add.get("sseKmsKeyId").cloned().unwrap_or(Value::Null),
            );
        } else if let Some(d) = a.get("deleteRegionAction") {
            let name = req(d, "regionName")?;
            if set.regions.remove(name).is_none() {
                return Err(invalid(
                    "deleteRegionAction.regionName",
                    format!("region {name} is not in the replication set"),
                ));
            }
            if set.regions.is_empty() {
                return Err(invalid("deleteRegionAction", "the last region of a replication set cannot be deleted; delete the replication set"));
            }
        } else {
            return Err(invalid(
                "actions",
                "each action must set addRegionAction or deleteRegionAction",
            ));
        }
    }
    if set.regions.len() > 3 {
        return Err(invalid(
            "actions",
            "a replication set holds at most 3 regions",
        ));
    }
    set.modified = now();
    db(i).batch(vec![put(T_REPLSET, &set.arn, &set)])?;
    Ok(json!({}))
}

pub fn update_deletion_protection(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let mut set = get_replication_set(i, ctx, req(v, "arn")?)?;
    set.deletion_protected = v["deletionProtected"].as_bool().unwrap_or(false);
    set.modified = now();
    db(i).batch(vec![put(T_REPLSET, &set.arn, &set)])?;
    Ok(json!({}))
}

pub fn delete_replication_set(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let set = get_replication_set(i, ctx, req(v, "arn")?)?;
    if set.deletion_protected {
        return Err(invalid("arn", "the replication set has deletion protection enabled; disable it with UpdateDeletionProtection first"));
    }
    db(i).batch(vec![del(T_REPLSET, &set.arn), del(T_TAGS, &set.arn)])?;
    Ok(json!({}))
}

// ---- response plans ------------------------------------------------------------------------

/// CloudWatch alarm actions name a plan `…:responseplan/<name>` (the form PutMetricAlarm
/// documents); Incident Manager's own ARNs say `…:response-plan/<name>`. Both find the plan.
pub fn canonical_plan_arn(a: &str) -> String {
    match a.split_once(":responseplan/") {
        Some((head, name)) => format!("{head}:response-plan/{name}"),
        None => a.to_string(),
    }
}

pub fn get_plan(i: &Inner, account: &str, a: &str) -> Result<Plan, ApiError> {
    db(i)
        .get::<Plan>(T_PLAN, &canonical_plan_arn(a))?
        .filter(|p| p.account == account)
        .ok_or_else(|| not_found("Response plan", a))
}

fn check_plan_parts(v: &Value) -> Result<(), ApiError> {
    if let Some(chat) = v.get("chatChannel") {
        check_chat(chat, "chatChannel")?;
    }
    if let Some(actions) = v.get("actions").and_then(Value::as_array) {
        for (n, a) in actions.iter().enumerate() {
            let Some(auto) = a.get("ssmAutomation") else {
                return Err(invalid(
                    &format!("actions[{n}]"),
                    "ssmAutomation is required",
                ));
            };
            for k in ["documentName", "roleArn"] {
                if s(auto, k).unwrap_or_default().is_empty() {
                    return Err(invalid(
                        &format!("actions[{n}].ssmAutomation.{k}"),
                        "member must not be null",
                    ));
                }
            }
        }
    }
    if let Some(engs) = v.get("engagements").and_then(Value::as_array) {
        for e in engs {
            let a = e.as_str().unwrap_or_default();
            if !a.starts_with("arn:") || !a.contains(":ssm-contacts:") {
                return Err(invalid(
                    "engagements",
                    format!("'{a}' is not an SSM Contacts contact ARN"),
                ));
            }
        }
    }
    Ok(())
}

/// A chat channel must set exactly one of `empty` / `chatbotSns`.
pub fn check_chat(chat: &Value, field: &str) -> Result<(), ApiError> {
    let n = chat.as_object().map(|o| o.len()).unwrap_or(0);
    if n != 1 {
        return Err(invalid(field, "set exactly one of empty or chatbotSns"));
    }
    if let Some(topics) = chat.get("chatbotSns").and_then(Value::as_array) {
        if topics
            .iter()
            .any(|t| !t.as_str().unwrap_or_default().contains(":sns:"))
        {
            return Err(invalid(
                &format!("{field}.chatbotSns"),
                "each member must be an SNS topic ARN",
            ));
        }
    }
    Ok(())
}

pub fn create_response_plan(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    if let Some(prev) = token_result(i, ctx, v)? {
        return Ok(prev);
    }
    let name = req(v, "name")?;
    check_plan_parts(v)?;
    let plan_arn = arn(&ctx.account_id, &format!("response-plan/{name}"));
    let _g = i.lock.lock();
    if db(i).get::<Plan>(T_PLAN, &plan_arn)?.is_some() {
        return Err(conflict(format!(
            "A response plan named {name} already exists."
        )));
    }
    let mut doc = Map::new();
    doc.insert("arn".into(), json!(plan_arn));
    for k in [
        "name",
        "displayName",
        "incidentTemplate",
        "chatChannel",
        "engagements",
        "actions",
        "integrations",
    ] {
        if let Some(x) = v.get(k) {
            doc.insert(k.into(), x.clone());
        }
    }
    let plan = Plan {
        account: ctx.account_id.clone(),
        doc: Value::Object(doc),
    };
    let out = json!({"arn": plan_arn});
    let mut ops = vec![put(T_PLAN, &plan_arn, &plan)];
    ops.extend(tag_ops(i, &plan_arn, v.get("tags"))?);
    if let Some(tok) = s(v, "clientToken") {
        ops.push(put(T_TOKEN, &token_key(ctx, tok), &out));
    }
    db(i).batch(ops)?;
    Ok(out)
}

pub fn get_response_plan(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    Ok(get_plan(i, &ctx.account_id, req(v, "arn")?)?.doc)
}

pub fn list_response_plans(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let plans: Vec<Value> = db(i)
        .scan::<Plan>(T_PLAN, "")?
        .into_iter()
        .filter(|(_, p)| p.account == ctx.account_id)
        .map(|(_, p)| {
            let mut o = json!({"arn": p.doc["arn"], "name": p.doc["name"]});
            if let Some(d) = p.doc.get("displayName") {
                o["displayName"] = d.clone();
            }
            o
        })
        .collect();
    let (page, next) = paginate(plans, v, 100)?;
    Ok(page_doc("responsePlanSummaries", page, next))
}

pub fn update_response_plan(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    check_plan_parts(v)?;
    let _g = i.lock.lock();
    let mut plan = get_plan(i, &ctx.account_id, req(v, "arn")?)?;
    let doc = plan.doc.as_object_mut().ok_or_else(ApiError::internal)?;
    for k in [
        "displayName",
        "chatChannel",
        "engagements",
        "actions",
        "integrations",
    ] {
        if let Some(x) = v.get(k) {
            doc.insert(k.into(), x.clone());
        }
    }
    let t = doc
        .entry("incidentTemplate")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(ApiError::internal)?;
    for (from, to) in [
        ("incidentTemplateTitle", "title"),
        ("incidentTemplateImpact", "impact"),
        ("incidentTemplateSummary", "summary"),
        ("incidentTemplateDedupeString", "dedupeString"),
        ("incidentTemplateNotificationTargets", "notificationTargets"),
        ("incidentTemplateTags", "incidentTags"),
    ] {
        if let Some(x) = v.get(from) {
            t.insert(to.into(), x.clone());
        }
    }
    let a = plan.doc["arn"].as_str().unwrap_or_default().to_string();
    db(i).batch(vec![put(T_PLAN, &a, &plan)])?;
    Ok(json!({}))
}

pub fn delete_response_plan(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let a = req(v, "arn")?;
    // Deleting a plan that does not exist succeeds, as in AWS.
    if let Some(p) = db(i)
        .get::<Plan>(T_PLAN, a)?
        .filter(|p| p.account == ctx.account_id)
    {
        let a = p.doc["arn"].as_str().unwrap_or_default().to_string();
        let mut ops = vec![del(T_PLAN, &a), del(T_TAGS, &a)];
        for (k, _) in db(i).scan::<Value>(T_POLICY, &format!("{a}|"))? {
            ops.push(del(T_POLICY, &k));
        }
        db(i).batch(ops)?;
    }
    Ok(json!({}))
}

// ---- tags and policies ---------------------------------------------------------------------

/// The tags of a resource.
pub fn tags_of(i: &Inner, a: &str) -> Result<Map<String, Value>, ApiError> {
    Ok(db(i)
        .get::<Map<String, Value>>(T_TAGS, a)?
        .unwrap_or_default())
}

fn tag_ops(
    i: &Inner,
    a: &str,
    tags: Option<&Value>,
) -> Result<Vec<opsloop_store::WriteOp>, ApiError> {
    let Some(new) = tags.and_then(Value::as_object) else {
        return Ok(vec![]);
    };
    let mut all = tags_of(i, a)?;
    for (k, v) in new {
        if k.starts_with("aws:") {
            return Err(invalid("tags", "tag keys must not begin with aws:"));
        }
        all.insert(k.clone(), v.clone());
    }
    if all.len() > 50 {
        return Err(ApiError::new(
            "ServiceQuotaExceededException",
            "a resource holds at most 50 tags",
        ));
    }
    Ok(vec![put(T_TAGS, a, &all)])
}

fn resource_exists(i: &Inner, account: &str, a: &str) -> Result<bool, ApiError> {
    if arn_account(a) != Some(account) {
        return Ok(false);
    }
    for t in [T_PLAN, T_RECORD, T_REPLSET] {
        if i.control
            .get(t, a)
            .map_err(crate::util::store_err)?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn existing(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<String, ApiError> {
    let a = req(v, "resourceArn")?;
    if !resource_exists(i, &ctx.account_id, a)? {
        return Err(not_found("Resource", a));
    }
    Ok(a.to_string())
}

pub fn tag_resource(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let a = existing(i, ctx, v)?;
    db(i).batch(tag_ops(i, &a, v.get("tags"))?)?;
    Ok(json!({}))
}

pub fn untag_resource(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let a = existing(i, ctx, v)?;
    let mut all = tags_of(i, &a)?;
    for k in v["tagKeys"].as_array().into_iter().flatten() {
        if let Some(k) = k.as_str() {
            all.remove(k);
        }
    }
    db(i).batch(vec![put(T_TAGS, &a, &all)])?;
    Ok(json!({}))
}

pub fn list_tags(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let a = existing(i, ctx, v)?;
    Ok(json!({"tags": tags_of(i, &a)?}))
}

pub fn put_policy(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let a = req(v, "resourceArn")?;
    get_plan(i, &ctx.account_id, a)?;
    let doc = req(v, "policy")?;
    if serde_json::from_str::<Value>(doc)
        .map(|d| !d.is_object())
        .unwrap_or(true)
    {
        return Err(invalid(
            "policy",
            "the policy must be a JSON policy document",
        ));
    }
    let id = uuid().replace('-', "");
    db(i).batch(vec![put(
        T_POLICY,
        &format!("{a}|{id}"),
        &json!({"policyDocument": doc, "policyId": id}),
    )])?;
    Ok(json!({"policyId": id}))
}

pub fn get_policies(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let a = req(v, "resourceArn")?;
    get_plan(i, &ctx.account_id, a)?;
    let items: Vec<Value> = db(i)
        .scan::<Value>(T_POLICY, &format!("{a}|"))?
        .into_iter()
        .map(|(_, mut p)| {
            p["ramResourceShareRegion"] = json!(ctx.region);
            p
        })
        .collect();
    let (page, next) = paginate(items, v, 100)?;
    Ok(page_doc("resourcePolicies", page, next))
}

pub fn delete_policy(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let a = req(v, "resourceArn")?;
    get_plan(i, &ctx.account_id, a)?;
    let key = format!("{a}|{}", req(v, "policyId")?);
    if !i
        .control
        .delete(T_POLICY, &key)
        .map_err(crate::util::store_err)?
    {
        return Err(not_found("Resource policy", req(v, "policyId")?));
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::canonical_plan_arn;

    #[test]
    fn alarm_action_form_of_a_plan_arn_is_accepted() {
        assert_eq!(
            canonical_plan_arn("arn:aws:ssm-incidents::123456789012:responseplan/web"),
            "arn:aws:ssm-incidents::123456789012:response-plan/web"
        );
        let own = "arn:aws:ssm-incidents::123456789012:response-plan/web";
        assert_eq!(canonical_plan_arn(own), own);
    }
}
