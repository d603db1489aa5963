//! The incident timeline: automatic events written by the service (`event_op`) and the
//! Create/Get/List/Update/DeleteTimelineEvent API for custom events and notes.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::plans::{token_key, token_result};
use crate::records::get_record;
use crate::util::{
    invalid, not_found, now, page_doc, paginate, put, req, s, uuid, Db, T_EVENT, T_TOKEN,
};
use crate::Inner;

/// Event types a caller may create and edit; every other type is written by the service.
const USER_TYPES: [&str; 2] = ["Custom Event", "Note"];

/// One timeline event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub record: String,
    pub time: f64,
    pub updated: f64,
    pub kind: String,
    pub data: String,
    pub refs: Vec<Value>,
}

impl Event {
    fn doc(&self, with_data: bool) -> Value {
        let mut d = json!({
            "eventId": self.id, "incidentRecordArn": self.record, "eventTime": self.time,
            "eventUpdatedTime": self.updated, "eventType": self.kind, "eventReferences": self.refs,
        });
        if with_data {
            d["eventData"] = json!(self.data);
        }
        d
    }
}

/// The write of a new automatic event.
pub fn event_op(record: &str, kind: &str, time: f64, data: String, refs: Vec<Value>) -> WriteOp {
    let e = Event {
        id: uuid(),
        record: record.into(),
        time,
        updated: now(),
        kind: kind.into(),
        data,
        refs,
    };
    put(T_EVENT, &format!("{record}|{}", e.id), &e)
}

fn db(i: &Inner) -> Db<'_> {
    Db(&*i.control)
}

fn check_refs(v: &Value) -> Result<Vec<Value>, ApiError> {
    let refs = v
        .get("eventReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &refs {
        if r.as_object().map(|o| o.len()) != Some(1) {
            return Err(invalid(
                "eventReferences",
                "each reference sets exactly one of resource or relatedItemId",
            ));
        }
    }
    Ok(refs)
}

fn check_type(v: &Value) -> Result<Option<String>, ApiError> {
    match s(v, "eventType") {
        Some(t) if USER_TYPES.contains(&t) => Ok(Some(t.to_string())),
        Some(t) => Err(invalid(
            "eventType",
            format!("'{t}' is not one of Custom Event, Note"),
        )),
        None => Ok(None),
    }
}

fn get_event(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Event, ApiError> {
    let rec = get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let id = req(v, "eventId")?;
    db(i)
        .get::<Event>(T_EVENT, &format!("{}|{id}", rec.arn))?
        .ok_or_else(|| not_found("Timeline event", id))
}

pub fn create_event(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    if let Some(prev) = token_result(i, ctx, v)? {
        return Ok(prev);
    }
    let rec = get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let kind = check_type(v)?.ok_or_else(|| invalid("eventType", "member must not be null"))?;
    let refs = check_refs(v)?;
    let time = v["eventTime"]
        .as_f64()
        .ok_or_else(|| invalid("eventTime", "member must not be null"))?;
    let e = Event {
        id: uuid(),
        record: rec.arn.clone(),
        time,
        updated: now(),
        kind,
        data: req(v, "eventData")?.to_string(),
        refs,
    };
    let out = json!({"eventId": e.id, "incidentRecordArn": rec.arn});
    let mut ops = vec![put(T_EVENT, &format!("{}|{}", rec.arn, e.id), &e)];
    if let Some(tok) = s(v, "clientToken") {
        ops.push(put(T_TOKEN, &token_key(ctx, tok), &out));
    }
    db(i).batch(ops)?;
    Ok(out)
}

pub fn get_event_op(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    Ok(json!({"event": get_event(i, ctx, v)?.doc(true)}))
}

pub fn update_event(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let mut e = get_event(i, ctx, v)?;
    if !USER_TYPES.contains(&e.kind.as_str()) {
        return Err(invalid(
            "eventId",
            "events written by Incident Manager cannot be edited",
        ));
    }
    if let Some(k) = check_type(v)? {
        e.kind = k;
    }
    if v.get("eventReferences").is_some() {
        e.refs = check_refs(v)?;
    }
    if let Some(t) = v["eventTime"].as_f64() {
        e.time = t;
    }
    if let Some(d) = s(v, "eventData") {
        e.data = d.to_string();
    }
    e.updated = now();
    db(i).batch(vec![put(T_EVENT, &format!("{}|{}", e.record, e.id), &e)])?;
    Ok(json!({}))
}

pub fn delete_event(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let _g = i.lock.lock();
    let rec = get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let key = format!("{}|{}", rec.arn, req(v, "eventId")?);
    if let Some(e) = db(i).get::<Event>(T_EVENT, &key)? {
        if !USER_TYPES.contains(&e.kind.as_str()) {
            return Err(invalid(
                "eventId",
                "events written by Incident Manager cannot be deleted",
            ));
        }
        i.control
            .delete(T_EVENT, &key)
            .map_err(crate::util::store_err)?;
    }
    Ok(json!({}))
}

pub fn list_events(i: &Inner, ctx: &RequestContext, v: &Value) -> Result<Value, ApiError> {
    let rec = get_record(i, &ctx.account_id, req(v, "incidentRecordArn")?)?;
    let filters = v["filters"].as_array().cloned().unwrap_or_default();
    for f in &filters {
        match s(f, "key") {
            Some("eventTime")
                if f["condition"].get("before").is_some()
                    || f["condition"].get("after").is_some() => {}
            Some("eventType") if f["condition"]["equals"]["stringValues"].is_array() => {}
            _ => {
                return Err(invalid(
                    "filters",
                    "supported filters: eventTime (before/after), eventType (equals.stringValues)",
                ))
            }
        }
    }
    let mut events: Vec<Event> = db(i)
        .scan::<Event>(T_EVENT, &format!("{}|", rec.arn))?
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| {
            filters.iter().all(|f| {
                let c = &f["condition"];
                match s(f, "key") {
                    Some("eventTime") => {
                        c["before"].as_f64().is_none_or(|b| e.time < b)
                            && c["after"].as_f64().is_none_or(|a| e.time > a)
                    }
                    _ => c["equals"]["stringValues"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x.as_str() == Some(&e.kind)),
                }
            })
        })
        .collect();
    events.sort_by(|a, b| {
        a.time
            .total_cmp(&b.time)
            .then(a.updated.total_cmp(&b.updated))
    });
    if s(v, "sortOrder") == Some("DESCENDING") {
        events.reverse();
    }
    let docs = events.iter().map(|e| e.doc(false)).collect();
    let (page, next) = paginate(docs, v, 100)?;
    Ok(page_doc("eventSummaries", page, next))
}
