//! OpsCenter: OpsItems with operational data (SearchableString vs String), notifications, related
//! OpsItems, statuses, severity / priority / category, dedup strings (`/aws/dedup`: a create that
//! duplicates an open item's dedup string returns that item's id and creates nothing), an event per
//! change (ListOpsItemEvents) and related resources ([`related`]). Queries live in [`query`].
//! One row per item in `ssm.opsitems` (key `<account>/<region>/<oi-id>`), the dedup index in
//! `ssm.opsitem_dedup` (key `<account>/<region>/<sha256 of the dedup string>`), written together.
//! CloudWatch alarm actions `arn:aws:ssm:<region>:<account>:opsitem:<severity>` arrive here as
//! in-process CreateOpsItem calls through the Directory.

pub mod query;
pub mod related;

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use sha2::{Digest, Sha256};

use crate::common::{arr, get_row, i, now, random_hex, s, strings, tag_list, to_bytes, Scope};
use crate::error::{err, InternalError};
use crate::tags;
use crate::Inner;

pub const TABLE: &str = "ssm.opsitems";
pub const DEDUP_TABLE: &str = "ssm.opsitem_dedup";
const MAX_OPERATIONAL_DATA: usize = 20 * 1024;
const CATEGORIES: &[&str] = &[
    "Availability",
    "Cost",
    "Performance",
    "Recovery",
    "Security",
];
const SEVERITIES: &[&str] = &["1", "2", "3", "4"];
/// Statuses that end an item's life: a dedup string no longer matches it.
const CLOSED: &[&str] = &["Resolved", "Closed", "Cancelled", "Rejected"];
/// `/aws/...` operational-data keys callers may set.
const AWS_KEYS: &[&str] = &[
    "/aws/resources",
    "/aws/dedup",
    "/aws/automations",
    "/aws/insights",
];

/// One OpsItem event (ListOpsItemEvents).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub detail: String,
    pub created_by: String,
    pub created: f64,
}

/// One related resource (ListOpsItemRelatedItems).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Related {
    pub association_id: String,
    pub resource_type: String,
    pub association_type: String,
    pub resource_uri: String,
    pub created_by: String,
    pub created: f64,
}

/// A stored OpsItem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpsItem {
    pub id: String,
    pub title: String,
    pub description: String,
    pub source: String,
    pub ops_item_type: String,
    pub status: String,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub operational_data: Map<String, Value>,
    #[serde(default)]
    pub notifications: Vec<Value>,
    #[serde(default)]
    pub related_ops_items: Vec<Value>,
    #[serde(default)]
    pub times: Map<String, Value>,
    pub created_by: String,
    pub created: f64,
    pub modified_by: String,
    pub modified: f64,
    pub version: u64,
    #[serde(default)]
    pub related: Vec<Related>,
    #[serde(default)]
    pub events: Vec<Event>,
}

const TIME_FIELDS: &[&str] = &[
    "ActualStartTime",
    "ActualEndTime",
    "PlannedStartTime",
    "PlannedEndTime",
];

fn invalid(param: &str, msg: impl Into<String>) -> ApiError {
    let _ = param;
    err("OpsItemInvalidParameterException", msg)
}

pub(crate) fn not_found(id: &str) -> ApiError {
    err(
        "OpsItemNotFoundException",
        format!("OpsItem with id {id} does not exist."),
    )
}

pub(crate) fn load(inner: &Inner, scope: &Scope, id: &str) -> Result<Option<OpsItem>, ApiError> {
    Ok(get_row(&*inner.store, TABLE, &scope.key(id))?)
}

pub(crate) fn load_required(inner: &Inner, scope: &Scope, id: &str) -> Result<OpsItem, ApiError> {
    load(inner, scope, id)?.ok_or_else(|| not_found(id))
}

pub(crate) fn item_op(scope: &Scope, item: &OpsItem) -> WriteOp {
    WriteOp::Put {
        table: TABLE.into(),
        key: scope.key(&item.id),
        value: to_bytes(item),
    }
}

/// Does the OpsItem exist (for tagging)?
pub fn exists(inner: &Inner, scope: &Scope, id: &str) -> Result<Option<String>, ApiError> {
    Ok(load(inner, scope, id)?.map(|o| o.id))
}

/// Check operational data (keys, types, reserved prefixes, size, the `/aws/` formats).
fn check_operational_data(data: &Map<String, Value>) -> Result<(), ApiError> {
    let mut size = 0;
    for (k, v) in data {
        let lower = k.to_ascii_lowercase();
        let reserved = [
            "amazon", "aws", "amzn", "ssm", "/amazon", "/aws", "/amzn", "/ssm",
        ]
        .iter()
        .any(|p| lower.starts_with(p));
        if reserved && !AWS_KEYS.contains(&k.as_str()) {
            return Err(invalid("OperationalData", format!("Operational data keys can't begin with the following: amazon, aws, amzn, ssm, /amazon, /aws, /amzn, /ssm. Key: {k}")));
        }
        let value = s(v, "Value").unwrap_or("");
        size += k.len() + value.len();
        match k.as_str() {
            "/aws/resources" => {
                let ok = serde_json::from_str::<Value>(value)
                    .ok()
                    .and_then(|p| p.as_array().cloned())
                    .map(|a| {
                        a.iter()
                            .all(|r| r.get("arn").and_then(Value::as_str).is_some())
                    })
                    .unwrap_or(false);
                if !ok {
                    return Err(invalid("OperationalData", "The value of /aws/resources must be a JSON list of objects with an arn, e.g. [{\"arn\":\"arn:aws:...\"}]."));
                }
            }
            "/aws/dedup" if dedup_string_of(value).is_none() => {
                return Err(invalid("OperationalData", "The value of /aws/dedup must be a JSON object with a dedupString, e.g. {\"dedupString\":\"disk-full-web-1\"}."));
            }
            _ => {}
        }
    }
    if size > MAX_OPERATIONAL_DATA {
        return Err(invalid(
            "OperationalData",
            "The operational data of an OpsItem can't exceed 20 KB.",
        ));
    }
    Ok(())
}

fn dedup_string_of(value: &str) -> Option<String> {
    let v: Value = serde_json::from_str(value).ok()?;
    v.get("dedupString")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

fn dedup_key(scope: &Scope, dedup: &str) -> String {
    scope.key(&hex::encode(Sha256::digest(dedup.as_bytes())))
}

fn check_fields(input: &Value) -> Result<(), ApiError> {
    if let Some(c) = s(input, "Category") {
        if !CATEGORIES.contains(&c) {
            return Err(invalid(
                "Category",
                format!(
                    "The Category {c} is not valid. Valid categories: {}.",
                    CATEGORIES.join(", ")
                ),
            ));
        }
    }
    if let Some(sev) = s(input, "Severity") {
        if !SEVERITIES.contains(&sev) {
            return Err(invalid(
                "Severity",
                format!("The Severity {sev} is not valid. Valid severities: 1, 2, 3, 4."),
            ));
        }
    }
    if let Some(p) = i(input, "Priority") {
        if !(1..=5).contains(&p) {
            return Err(invalid("Priority", "The Priority must be between 1 and 5."));
        }
    }
    Ok(())
}

fn event(scope: &Scope, detail_type: &str, detail: Value) -> Event {
    Event {
        id: uuid::Uuid::new_v4().to_string(),
        source: "aws.ssm".into(),
        detail_type: detail_type.into(),
        detail: detail.to_string(),
        created_by: scope.principal.clone(),
        created: now(),
    }
}

/// CreateOpsItem.
pub fn create_ops_item(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    check_fields(input)?;
    let data: Map<String, Value> = input
        .get("OperationalData")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    check_operational_data(&data)?;
    let item_tags = tag_list(input, "Tags");
    tags::validate_tags(&item_tags)?;
    let dedup = data
        .get("/aws/dedup")
        .and_then(|v| s(v, "Value"))
        .and_then(dedup_string_of);

    let _guard = inner.lock.lock();
    if let Some(d) = &dedup {
        let existing: Option<String> = get_row(&*inner.store, DEDUP_TABLE, &dedup_key(scope, d))?;
        if let Some(id) = existing {
            if let Some(item) = load(inner, scope, &id)? {
                if !CLOSED.contains(&item.status.as_str()) {
                    tracing::debug!(ops_item = %id, "duplicate ops item suppressed by dedup string");
                    return Ok(json!({
                        "OpsItemId": id,
                        "OpsItemArn": scope.arn(&format!("opsitem/{id}")),
                    }));
                }
            }
        }
    }
    let id = format!("oi-{}", random_hex(12));
    let t = now();
    let mut times = Map::new();
    for f in TIME_FIELDS {
        if let Some(v) = input.get(*f) {
            times.insert((*f).to_string(), v.clone());
        }
    }
    let mut item = OpsItem {
        id: id.clone(),
        title: s(input, "Title").unwrap_or("").into(),
        description: s(input, "Description").unwrap_or("").into(),
        source: s(input, "Source").unwrap_or("").into(),
        ops_item_type: s(input, "OpsItemType").unwrap_or("/aws/issue").into(),
        status: "Open".into(),
        priority: i(input, "Priority"),
        severity: s(input, "Severity").map(str::to_string),
        category: s(input, "Category").map(str::to_string),
        operational_data: data,
        notifications: arr(input, "Notifications").to_vec(),
        related_ops_items: arr(input, "RelatedOpsItems").to_vec(),
        times,
        created_by: scope.principal.clone(),
        created: t,
        modified_by: scope.principal.clone(),
        modified: t,
        version: 1,
        related: Vec::new(),
        events: Vec::new(),
    };
    item.events.push(event(
        scope,
        "OpsItem Create",
        json!({"OpsItemId": id, "Title": item.title, "Status": item.status, "Source": item.source}),
    ));
    let mut ops = vec![item_op(scope, &item)];
    if let Some(d) = &dedup {
        ops.push(WriteOp::Put {
            table: DEDUP_TABLE.into(),
            key: dedup_key(scope, d),
            value: to_bytes(&id),
        });
    }
    if !item_tags.is_empty() {
        ops.push(tags::put_op(scope, "OpsItem", &id, &item_tags));
    }
    inner.store.batch(ops).map_err(InternalError::from)?;
    tracing::info!(ops_item = %id, source = %item.source, "ops item created");
    Ok(json!({ "OpsItemId": id, "OpsItemArn": scope.arn(&format!("opsitem/{id}")) }))
}

/// The `OpsItem` shape.
pub fn item_doc(scope: &Scope, o: &OpsItem) -> Value {
    let mut doc = json!({
        "CreatedBy": o.created_by,
        "OpsItemType": o.ops_item_type,
        "CreatedTime": o.created,
        "Description": o.description,
        "LastModifiedBy": o.modified_by,
        "LastModifiedTime": o.modified,
        "Notifications": o.notifications,
        "RelatedOpsItems": o.related_ops_items,
        "Status": o.status,
        "OpsItemId": o.id,
        "Version": o.version.to_string(),
        "Title": o.title,
        "Source": o.source,
        "OperationalData": o.operational_data,
        "OpsItemArn": scope.arn(&format!("opsitem/{}", o.id)),
    });
    let obj = doc.as_object_mut().expect("object");
    if let Some(p) = o.priority {
        obj.insert("Priority".into(), json!(p));
    }
    if let Some(v) = &o.severity {
        obj.insert("Severity".into(), json!(v));
    }
    if let Some(v) = &o.category {
        obj.insert("Category".into(), json!(v));
    }
    for (k, v) in &o.times {
        obj.insert(k.clone(), v.clone());
    }
    doc
}

/// GetOpsItem.
pub fn get_ops_item(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "OpsItemId").unwrap_or("");
    let item = load_required(inner, scope, id)?;
    Ok(json!({ "OpsItem": item_doc(scope, &item) }))
}

/// UpdateOpsItem.
pub fn update_ops_item(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    check_fields(input)?;
    let id = s(input, "OpsItemId").unwrap_or("");
    let _guard = inner.lock.lock();
    let mut item = load_required(inner, scope, id)?;
    let mut changed = Vec::new();
    if let Some(data) = input.get("OperationalData").and_then(Value::as_object) {
        let mut merged = item.operational_data.clone();
        for (k, v) in data {
            merged.insert(k.clone(), v.clone());
        }
        for k in strings(input, "OperationalDataToDelete") {
            merged.remove(&k);
        }
        check_operational_data(&merged)?;
        item.operational_data = merged;
        changed.push("OperationalData");
    } else if !strings(input, "OperationalDataToDelete").is_empty() {
        for k in strings(input, "OperationalDataToDelete") {
            item.operational_data.remove(&k);
        }
        changed.push("OperationalData");
    }
    let mut dedup_op = None;
    if !changed.is_empty() {
        if let Some(d) = item
            .operational_data
            .get("/aws/dedup")
            .and_then(|v| s(v, "Value"))
            .and_then(dedup_string_of)
        {
            dedup_op = Some(WriteOp::Put {
                table: DEDUP_TABLE.into(),
                key: dedup_key(scope, &d),
                value: to_bytes(&item.id),
            });
        }
    }
    for (field, slot) in [
        ("Title", &mut item.title),
        ("Description", &mut item.description),
        ("Status", &mut item.status),
    ] {
        if let Some(v) = s(input, field) {
            *slot = v.to_string();
            changed.push(field);
        }
    }
    if let Some(p) = i(input, "Priority") {
        item.priority = Some(p);
        changed.push("Priority");
    }
    if let Some(v) = s(input, "Severity") {
        item.severity = Some(v.into());
        changed.push("Severity");
    }
    if let Some(v) = s(input, "Category") {
        item.category = Some(v.into());
        changed.push("Category");
    }
    if input.get("Notifications").is_some() {
        item.notifications = arr(input, "Notifications").to_vec();
        changed.push("Notifications");
    }
    if input.get("RelatedOpsItems").is_some() {
        item.related_ops_items = arr(input, "RelatedOpsItems").to_vec();
        changed.push("RelatedOpsItems");
    }
    for f in TIME_FIELDS {
        if let Some(v) = input.get(*f) {
            item.times.insert((*f).to_string(), v.clone());
            changed.push(f);
        }
    }
    item.version += 1;
    item.modified = now();
    item.modified_by = scope.principal.clone();
    item.events.push(event(
        scope,
        "OpsItem Update",
        json!({"OpsItemId": item.id, "Status": item.status, "ChangedFields": changed}),
    ));
    let mut ops = vec![item_op(scope, &item)];
    ops.extend(dedup_op);
    inner.store.batch(ops).map_err(InternalError::from)?;
    Ok(json!({}))
}

/// DeleteOpsItem: idempotent, as on AWS (deleting a missing item succeeds).
pub fn delete_ops_item(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "OpsItemId").unwrap_or("");
    let _guard = inner.lock.lock();
    inner
        .store
        .batch(vec![
            WriteOp::Delete {
                table: TABLE.into(),
                key: scope.key(id),
            },
            tags::delete_op(scope, "OpsItem", id),
        ])
        .map_err(InternalError::from)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests;
