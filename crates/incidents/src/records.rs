//! Incident records: StartIncident (client tokens, triggers, dedupe onto the open incident),
//! Get/List/Update/DeleteIncidentRecord, related items and findings. Every change writes its
//! timeline events, its jobs (runbooks, engagements, chat posts) and the record in one batch.

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::{self, JobKind};
use crate::plans::{check_chat, get_plan, tags_of, token_key, token_result};
use crate::timeline::event_op;
use crate::util::{
    arn, caller, conflict, del, invalid, not_found, now, page_doc, paginate, put, req, s, seq,
    uuid, Db, T_EVENT, T_ITEM, T_OPEN, T_RECORD, T_TAGS, T_TOKEN,
};
use crate::Inner;

/// Response-plan tag: resolve the incident when its alarms are OK again (value `true`).
pub const TAG_AUTO_RESOLVE: &str = "opsloop:auto-resolve";
/// Response-plan tag: page the engagements only if the incident is still open after N minutes.
pub const TAG_ENGAGE_DELAY: &str = "opsloop:engage-delay-minutes";

/// A stored incident record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub arn: String,
    pub account: String,
    /// Region of the call that opened it: peers (SSM, SNS, Contacts, CloudWatch) are called there.
    pub region: String,
    pub plan_arn: String,
    pub title: String,
    pub impact: i64,
    pub summary: Option<String>,
    pub status: String,
    pub created: f64,
    pub modified: f64,
    pub resolved: Option<f64>,
    pub dedupe: String,
    pub source: Value,
    pub chat: Option<Value>,
    pub notification_targets: Vec<Value>,
    pub automation_executions: Vec<String>,
    /// Opted in to auto-resolve (plan tag `opsloop:auto-resolve=true`).
    pub auto_resolve: bool,
    /// CloudWatch alarms that opened or deduplicated into the incident → last state seen.
    pub alarms: BTreeMap<String, String>,
    /// Automation execution id → status (`Pending` until it ends).
    pub automations: BTreeMap<String, String>,
    /// A runbook could not be started or did not succeed: auto-resolve is off for this incident.
    pub runbook_failed: bool,
    /// SSM Contacts engagements started for the incident → acknowledged yet.
    #[serde(default)]
    pub engagements: BTreeMap<String, bool>,
}

impl Record {
    pub fn doc(&self) -> Value {
        let mut d = json!({
            "arn": self.arn,
            "creationTime": self.created,
            "dedupeString": self.dedupe,
            "impact": self.impact,
            "incidentRecordSource": self.source,
            "lastModifiedBy": caller(&self.account),
            "lastModifiedTime": self.modified,
            "status": self.status,
            "title": self.title,
            "notificationTargets": self.notification_targets,
            "automationExecutions": self.automation_executions.iter()
                .map(|a| json!({"ssmExecutionArn": a})).collect::<Vec<_>>(),
        });
        if let Some(x) = &self.summary {
            d["summary"] = json!(x);
        }
        if let Some(x) = &self.chat {
            d["chatChannel"] = x.clone();
        }
        if let Some(x) = self.resolved {
            d["resolvedTime"] = json!(x);
        }
        d
    }

    fn summary_doc(&self) -> Value {
        let mut d = json!({
            "arn": self.arn, "creationTime": self.created, "impact": self.impact,
            "incidentRecordSource": self.source, "status": self.status, "title": self.title,
        });
        if let Some(x) = self.resolved {
            d["resolvedTime"] = json!(x);
        }
        d
    }

    /// The chat channel's SNS topics.
    pub fn chat_topics(&self) -> Vec<String> {
        self.chat
            .as_ref()
            .and_then(|c| c.get("chatbotSns"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn db(i: &Inner) -> Db<'_> {
    Db(&*i.control)
}

pub fn get_record(i: &Inner, account: &str, a: &str) -> Result<Record, ApiError> {
    db(i)
        .get::<Record>(T_RECORD, a)?
        .filter(|r| r.account == account)
        .ok_or_else(|| not_found("Incident record", a))
}

fn check_impact(v: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_i64() {
            Some(n @ 1..=5) => Ok(Some(n)),
            _ => Err(invalid(field, "impact must be an integer from 1 to 5")),
        },
    }
}

fn check_related(item: &Value, field: &str) -> Result<(String, String), ApiError> {
    let id = &item["identifier"];
    let ty = s(id, "type").ok_or_else(|| {
        invalid(
            &format!("{field}.identifier.type"),
            "member must not be null",
        )
    })?;
    let val = id
        .get("value")
        .and_then(Value::as_object)
        .filter(|o| o.len() == 1)
        .ok_or_else(|| {
            invalid(
                &format!("{field}.identifier.value"),
                "set exactly one of arn, url, metricDefinition, pagerDutyIncidentDetail",
            )
        })?;
    Ok((
        ty.to_string(),
        serde_json::to_string(val).unwrap_or_default(),
    ))
}

/// A text describing a trigger, for the timeline.
fn trigger_text(t: &Value) -> String {
    let src = s(t, "source").unwrap_or("aws.ssm-incidents.custom");
    match s(t, "triggerArn") {
        Some(a) => format!("{src}: {a}"),
        None => src.to_string(),
    }
}

pub fn start_incident(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    if let Some(prev) = token_result(i, ctx, v)? {
        return Ok(prev);
    }
    let plan = get_plan(i, &ctx.account_id, req(v, "responsePlanArn")?)?;
    let impact = check_impact(v, "impact")?;
    let items = v
        .get("relatedItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (n, it) in items.iter().enumerate() {
        check_related(it, &format!("relatedItems[{n}]"))?;
    }
    let trigger = v.get("triggerDetails").cloned().unwrap_or(Value::Null);
    if !trigger.is_null() && s(&trigger, "source").is_none() {
        return Err(invalid("triggerDetails.source", "member must not be null"));
    }
    let source = s(&trigger, "source")
        .unwrap_or("aws.ssm-incidents.custom")
        .to_string();
    let trigger_arn = s(&trigger, "triggerArn").map(str::to_string);
    let alarm = trigger_arn
        .clone()
        .filter(|_| source == "aws.cloudwatch")
        .or_else(|| alarm_of_event(&source, &trigger));
    let template = plan.template().clone();
    let mut dedupe = s(&template, "dedupeString").unwrap_or_default().to_string();
    if dedupe.is_empty() {
        if let Some(a) = &alarm {
            dedupe = a.clone();
        }
    }
    let t = now();
    let mut ops: Vec<WriteOp> = Vec::new();
    // Dedupe onto the open incident.
    let open_key = format!("{}|{dedupe}", ctx.account_id);
    if !dedupe.is_empty() {
        if let Some(existing) = db(i).get::<String>(T_OPEN, &open_key)? {
            if let Ok(mut rec) = get_record(i, &ctx.account_id, &existing) {
                if rec.status == "OPEN" {
                    if let Some(a) = &alarm {
                        rec.alarms.insert(a.clone(), "ALARM".into());
                    }
                    rec.modified = t;
                    let data = json!({"message": format!("Deduplicated trigger added to the incident ({})", trigger_text(&trigger)),
                                      "rawData": trigger.get("rawData")}).to_string();
                    let refs = trigger_arn.iter().map(|a| json!({"resource": a})).collect();
                    ops.push(event_op(&rec.arn, "SSM Incident Trigger", t, data, refs));
                    ops.extend(item_ops(&rec.arn, &items)?);
                    ops.push(put(T_RECORD, &rec.arn, &rec));
                    let out = json!({"incidentRecordArn": rec.arn});
                    if let Some(tok) = s(v, "clientToken") {
                        ops.push(put(T_TOKEN, &token_key(ctx, tok), &out));
                    }
                    db(i).batch(ops)?;
                    return Ok(out);
                }
            }
        }
    }
    let tags = tags_of(i, plan.doc["arn"].as_str().unwrap_or_default())?;
    let auto_resolve = tags.get(TAG_AUTO_RESOLVE).and_then(Value::as_str) == Some("true");
    let delay_min = tags
        .get(TAG_ENGAGE_DELAY)
        .and_then(Value::as_str)
        .and_then(|x| x.parse::<f64>().ok())
        .filter(|x| x.is_finite() && *x >= 0.0)
        .unwrap_or(0.0);
    let rec_arn = arn(
        &ctx.account_id,
        &format!("incident-record/{}/{}", plan.name(), uuid()),
    );
    let mut src = json!({"createdBy": caller(&ctx.account_id), "source": source});
    match source.as_str() {
        "aws.cloudwatch" => src["invokedBy"] = json!("cloudwatch.amazonaws.com"),
        "aws.events" => src["invokedBy"] = json!("events.amazonaws.com"),
        _ => {}
    }
    if let Some(a) = &trigger_arn {
        src["resourceArn"] = json!(a);
    }
    let rec = Record {
        arn: rec_arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        plan_arn: plan.doc["arn"].as_str().unwrap_or_default().to_string(),
        title: s(v, "title")
            .or(s(&template, "title"))
            .unwrap_or_default()
            .to_string(),
        impact: impact.or(template["impact"].as_i64()).unwrap_or(3),
        summary: s(&template, "summary").map(str::to_string),
        status: "OPEN".into(),
        created: t,
        modified: t,
        resolved: None,
        dedupe: dedupe.clone(),
        source: src,
        chat: plan.doc.get("chatChannel").cloned(),
        notification_targets: template["notificationTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        automation_executions: vec![],
        auto_resolve,
        alarms: alarm
            .iter()
            .map(|a| (a.clone(), "ALARM".to_string()))
            .collect(),
        automations: BTreeMap::new(),
        runbook_failed: false,
        engagements: BTreeMap::new(),
    };
    let data = json!({"message": format!("Incident created by {}", trigger_text(&trigger)),
                      "title": rec.title, "impact": rec.impact, "responsePlanArn": rec.plan_arn,
                      "rawData": trigger.get("rawData")})
    .to_string();
    let refs = trigger_arn.iter().map(|a| json!({"resource": a})).collect();
    ops.push(event_op(
        &rec_arn,
        "SSM Incident Record Update",
        t,
        data,
        refs,
    ));
    ops.extend(item_ops(&rec_arn, &items)?);
    if let Some(a) = &alarm {
        let alarm_item = json!({"identifier": {"type": "METRIC", "value": {"arn": a}}, "title": "Triggering alarm"});
        if !items
            .iter()
            .any(|x| x["identifier"] == alarm_item["identifier"])
        {
            ops.extend(item_ops(&rec_arn, &[alarm_item])?);
        }
    }
    if let Some(incident_tags) = template.get("incidentTags").filter(|x| x.is_object()) {
        ops.push(put(T_TAGS, &rec_arn, incident_tags));
    }
    if !dedupe.is_empty() {
        ops.push(put(T_OPEN, &open_key, &rec_arn));
    }
    for (n, _) in plan.doc["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        ops.push(engine::job_op(&rec, t, JobKind::Automation { index: n }));
    }
    for c in plan.doc["engagements"].as_array().into_iter().flatten() {
        if let Some(c) = c.as_str() {
            let due = t + delay_min * i.minute_seconds;
            ops.push(engine::job_op(
                &rec,
                due,
                JobKind::Engage {
                    contact: c.to_string(),
                    delay_minutes: delay_min,
                },
            ));
        }
    }
    ops.extend(engine::announce(
        &rec,
        t,
        "opened",
        &format!(
            "Incident opened: {} (impact {}). {}",
            rec.title,
            rec.impact,
            trigger_text(&trigger)
        ),
    ));
    ops.push(put(T_RECORD, &rec_arn, &rec));
    let out = json!({"incidentRecordArn": rec_arn});
    if let Some(tok) = s(v, "clientToken") {
        ops.push(put(T_TOKEN, &token_key(ctx, tok), &out));
    }
    db(i).batch(ops)?;
    tracing::info!(incident = %rec_arn, plan = %rec.plan_arn, "incidents: incident opened");
    i.wake.notify_waiters();
    Ok(out)
}

/// The alarm of an EventBridge-delivered `CloudWatch Alarm State Change` event (rule target).
fn alarm_of_event(source: &str, trigger: &Value) -> Option<String> {
    if source != "aws.events" {
        return None;
    }
    let ev: Value = serde_json::from_str(s(trigger, "rawData")?).ok()?;
    (s(&ev, "source") == Some("aws.cloudwatch")
        && s(&ev, "detail-type") == Some("CloudWatch Alarm State Change"))
    .then(|| ev["resources"][0].as_str().map(str::to_string))
    .flatten()
}

fn item_ops(rec: &str, items: &[Value]) -> Result<Vec<WriteOp>, ApiError> {
    let mut ops = Vec::new();
    for it in items {
        ops.push(put(T_ITEM, &format!("{rec}|{}", seq()), it));
    }
    Ok(ops)
}

pub fn get_incident_record(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    Ok(json!({"incidentRecord": get_record(i, &ctx.account_id, req(v, "arn")?)?.doc()}))
}

fn matches(rec: &Record, f: &Value) -> Result<bool, ApiError> {
    let key = req(f, "key")?;
    let c = &f["condition"];
    let time = |t: Option<f64>| -> Result<bool, ApiError> {
        let (b, a) = (c["before"].as_f64(), c["after"].as_f64());
        if b.is_none() && a.is_none() {
            return Err(invalid(
                "filters.condition",
                format!("{key} takes before or after"),
            ));
        }
        Ok(t.is_some_and(|t| b.is_none_or(|b| t < b) && a.is_none_or(|a| t > a)))
    };
    let strings = |x: &str| -> Result<bool, ApiError> {
        let vals = c["equals"]["stringValues"].as_array().ok_or_else(|| {
            invalid(
                "filters.condition",
                format!("{key} takes equals.stringValues"),
            )
        })?;
        Ok(vals.iter().any(|v| v.as_str() == Some(x)))
    };
    match key {
        "creationTime" => time(Some(rec.created)),
        "resolvedTime" => time(rec.resolved),
        "status" => strings(&rec.status),
        "createdBy" => strings(rec.source["createdBy"].as_str().unwrap_or_default()),
        "impact" => {
            let vals = c["equals"]["integerValues"]
                .as_array()
                .ok_or_else(|| invalid("filters.condition", "impact takes equals.integerValues"))?;
            Ok(vals.iter().any(|v| v.as_i64() == Some(rec.impact)))
        }
        other => Err(invalid(
            "filters.key",
            format!(
                "'{other}' is not one of creationTime, resolvedTime, impact, status, createdBy"
            ),
        )),
    }
}

pub fn list_incident_records(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let filters = v["filters"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (_, r) in db(i).scan::<Record>(T_RECORD, "")? {
        if r.account != ctx.account_id {
            continue;
        }
        let mut ok = true;
        for f in &filters {
            ok &= matches(&r, f)?;
        }
        if ok {
            out.push(r);
        }
    }
    // Validate filters even when there is no record.
    if out.is_empty() && !filters.is_empty() {
        let probe = Record {
            created: 0.0,
            ..dummy()
        };
        for f in &filters {
            matches(&probe, f)?;
        }
    }
    out.sort_by(|a, b| b.created.total_cmp(&a.created));
    let docs = out.iter().map(Record::summary_doc).collect();
    let (page, next) = paginate(docs, v, 100)?;
    Ok(page_doc("incidentRecordSummaries", page, next))
}

fn dummy() -> Record {
    Record {
        arn: String::new(),
        account: String::new(),
        region: String::new(),
        plan_arn: String::new(),
        title: String::new(),
        impact: 0,
        summary: None,
        status: String::new(),
        created: 0.0,
        modified: 0.0,
        resolved: None,
        dedupe: String::new(),
        source: Value::Null,
        chat: None,
        notification_targets: vec![],
        automation_executions: vec![],
        auto_resolve: false,
        alarms: BTreeMap::new(),
        automations: BTreeMap::new(),
        runbook_failed: false,
        engagements: BTreeMap::new(),
    }
}

/// Close (or reopen) `rec` in `ops`: status, resolvedTime, the dedupe index, a timeline event and
/// the chat post.
pub fn set_status(rec: &mut Record, status: &str, t: f64, why: &str, ops: &mut Vec<WriteOp>) {
    if rec.status == status {
        return;
    }
    let before = std::mem::replace(&mut rec.status, status.to_string());
    let open_key = format!("{}|{}", rec.account, rec.dedupe);
    if status == "RESOLVED" {
        rec.resolved = Some(t);
        if !rec.dedupe.is_empty() {
            ops.push(del(T_OPEN, &open_key));
        }
        ops.extend(engine::announce(
            rec,
            t,
            "resolved",
            &format!("Incident resolved: {}. {why}", rec.title),
        ));
    } else {
        rec.resolved = None;
        if !rec.dedupe.is_empty() {
            ops.push(put(T_OPEN, &open_key, &rec.arn));
        }
    }
    let data =
        json!({"message": format!("Status changed from {before} to {status}. {why}")}).to_string();
    ops.push(event_op(
        &rec.arn,
        "SSM Incident Record Update",
        t,
        data,
        vec![],
    ));
}

pub fn update_incident_record(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    if token_result(i, ctx, v)?.is_some() {
        return Ok(json!({}));
    }
    let mut rec = get_record(i, &ctx.account_id, req(v, "arn")?)?;
    let impact = check_impact(v, "impact")?;
    if let Some(c) = v.get("chatChannel") {
        check_chat(c, "chatChannel")?;
    }
    let status = s(v, "status");
    if let Some(st) = status {
        if st != "OPEN" && st != "RESOLVED" {
            return Err(invalid("status", "must be OPEN or RESOLVED"));
        }
        if st == "OPEN" && rec.status == "RESOLVED" && !rec.dedupe.is_empty() {
            if let Some(other) =
                db(i).get::<String>(T_OPEN, &format!("{}|{}", rec.account, rec.dedupe))?
            {
                if other != rec.arn {
                    return Err(conflict(format!(
                        "Another open incident ({other}) has the same dedupe string."
                    )));
                }
            }
        }
    }
    let t = now();
    let mut ops = Vec::new();
    if let Some(n) = impact.filter(|n| *n != rec.impact) {
        let data =
            json!({"message": format!("Impact changed from {} to {n}", rec.impact)}).to_string();
        ops.push(event_op(
            &rec.arn,
            "SSM Incident Record Update",
            t,
            data,
            vec![],
        ));
        rec.impact = n;
    }
    if let Some(x) = s(v, "title") {
        rec.title = x.to_string();
    }
    if let Some(x) = s(v, "summary") {
        rec.summary = Some(x.to_string());
    }
    if let Some(c) = v.get("chatChannel") {
        rec.chat = Some(c.clone());
    }
    if let Some(n) = v.get("notificationTargets").and_then(Value::as_array) {
        rec.notification_targets = n.clone();
    }
    if let Some(st) = status {
        set_status(
            &mut rec,
            st,
            t,
            "Updated through UpdateIncidentRecord.",
            &mut ops,
        );
    }
    rec.modified = t;
    ops.push(put(T_RECORD, &rec.arn, &rec));
    if let Some(tok) = s(v, "clientToken") {
        ops.push(put(T_TOKEN, &token_key(ctx, tok), &json!({})));
    }
    db(i).batch(ops)?;
    i.wake.notify_waiters();
    Ok(json!({}))
}

pub fn delete_incident_record(
    i: &Inner,
    ctx: &RequestContext,
    v: &Value,
) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let a = req(v, "arn")?;
    let Some(rec) = db(i)
        .get::<Record>(T_RECORD, a)?
        .filter(|r| r.account == ctx.account_id)
    else {
        return Ok(json!({}));
    };
    let mut ops = vec![del(T_RECORD, a), del(T_TAGS, a)];
    if rec.status == "OPEN" && !rec.dedupe.is_empty() {
        let k = format!("{}|{}", rec.account, rec.dedupe);
        if db(i).get::<String>(T_OPEN, &k)?.as_deref() == Some(a) {
            ops.push(del(T_OPEN, &k));
        }
    }
    for t in [T_EVENT, T_ITEM] {
        for (k, _) in db(i).scan::<Value>(t, &format!("{a}|"))? {
            ops.push(del(t, &k));
        }
    }
    db(i).batch(ops)?;
    Ok(json!({}))
}

// ---- related items -------------------------------------------------------------------------

pub fn update_related_items(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    if token_result(i, ctx, v)?.is_some() {
        return Ok(json!({}));
    }
    let rec = get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let u = &v["relatedItemsUpdate"];
    let existing = db(i).scan::<Value>(T_ITEM, &format!("{}|", rec.arn))?;
    let mut ops = Vec::new();
    if let Some(add) = u.get("itemToAdd") {
        let (ty, val) = check_related(add, "relatedItemsUpdate.itemToAdd")?;
        if existing
            .iter()
            .any(|(_, x)| check_related(x, "").ok() == Some((ty.clone(), val.clone())))
        {
            return Err(conflict("The related item is already in the incident."));
        }
        ops.extend(item_ops(&rec.arn, std::slice::from_ref(add))?);
    } else if let Some(rm) = u.get("itemToRemove") {
        let (ty, val) = check_related(
            &json!({"identifier": rm}),
            "relatedItemsUpdate.itemToRemove",
        )?;
        let hit = existing
            .iter()
            .find(|(_, x)| check_related(x, "").ok() == Some((ty.clone(), val.clone())));
        match hit {
            Some((k, _)) => ops.push(del(T_ITEM, k)),
            None => return Err(not_found("Related item", &val)),
        }
    } else {
        return Err(invalid(
            "relatedItemsUpdate",
            "set itemToAdd or itemToRemove",
        ));
    }
    if let Some(tok) = s(v, "clientToken") {
        ops.push(put(T_TOKEN, &token_key(ctx, tok), &json!({})));
    }
    db(i).batch(ops)?;
    Ok(json!({}))
}

pub fn list_related_items(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let rec = get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let items = db(i)
        .scan::<Value>(T_ITEM, &format!("{}|", rec.arn))?
        .into_iter()
        .map(|(_, x)| x)
        .collect();
    let (page, next) = paginate(items, v, 100)?;
    Ok(page_doc("relatedItems", page, next))
}

// ---- findings (none are generated in this release) --------------------------------------------

pub fn list_findings(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let (page, next) = paginate(Vec::<Value>::new(), v, 20)?;
    Ok(page_doc("findings", page, next))
}

pub fn batch_get_findings(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let errors: Vec<Value> = v["findingIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|id| {
            json!({"findingId": id, "code": "ResourceNotFoundException",
                         "message": format!("Finding {id} does not exist")})
        })
        .collect();
    Ok(json!({"findings": [], "errors": errors}))
}
