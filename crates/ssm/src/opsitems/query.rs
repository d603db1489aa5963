//! OpsItem queries: DescribeOpsItems with OpsItemFilters (Equal / Contains / GreaterThan / LessThan
//! on status, title, source, priority, severity, category, type, times, searchable operational
//! data, resources and automations), and ListOpsItemEvents.

use opsloop_core::{ApiError, Value};
use serde_json::json;

use super::{item_doc, load_required, OpsItem, TABLE};
use crate::common::{arr, max_results, page, s, scan_rows, strings, Scope};
use crate::error::validation;
use crate::Inner;

/// One parsed OpsItemFilter.
struct Filter {
    key: String,
    values: Vec<String>,
    op: String,
}

const STRING_KEYS: &[&str] = &[
    "Status",
    "CreatedBy",
    "Source",
    "Title",
    "OpsItemId",
    "Category",
    "Severity",
    "OpsItemType",
    "LastModifiedBy",
];
const TIME_KEYS: &[&str] = &[
    "CreatedTime",
    "LastModifiedTime",
    "ActualStartTime",
    "ActualEndTime",
    "PlannedStartTime",
    "PlannedEndTime",
];

fn parse(list: &[Value]) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    for f in list {
        let key = s(f, "Key").unwrap_or("").to_string();
        let op = s(f, "Operator").unwrap_or("Equal").to_string();
        let values = strings(f, "Values");
        let allowed: &[&str] = if STRING_KEYS.contains(&key.as_str()) {
            &["Equal", "Contains"]
        } else if key == "Priority" {
            &["Equal", "GreaterThan", "LessThan"]
        } else if TIME_KEYS.contains(&key.as_str()) {
            &["GreaterThan", "LessThan"]
        } else if matches!(
            key.as_str(),
            "OperationalData" | "OperationalDataValue" | "ResourceId" | "AutomationId"
        ) {
            &["Equal", "Contains"]
        } else if key == "OperationalDataKey" {
            &["Equal"]
        } else {
            return Err(validation(format!(
                "The OpsItem filter key {key} is not supported by this opsloop release."
            )));
        };
        if !allowed.contains(&op.as_str()) {
            return Err(validation(format!(
                "The operator {op} is not valid for the OpsItem filter key {key}. Valid operators: {}.",
                allowed.join(", ")
            )));
        }
        if key == "Priority" && values.iter().any(|v| v.parse::<i64>().is_err()) {
            return Err(validation("Priority filter values must be integers."));
        }
        if TIME_KEYS.contains(&key.as_str()) && values.iter().any(|v| parse_time(v).is_none()) {
            return Err(validation(format!(
                "{key} filter values must be ISO 8601 timestamps or epoch seconds."
            )));
        }
        if key == "OperationalData"
            && values.iter().any(|v| {
                serde_json::from_str::<Value>(v)
                    .ok()
                    .and_then(|j| j.get("key").and_then(Value::as_str).map(|_| ()))
                    .is_none()
            })
        {
            return Err(validation(
                "OperationalData filter values must be JSON objects like {\"key\":\"k\",\"value\":\"v\"}.",
            ));
        }
        out.push(Filter { key, values, op });
    }
    Ok(out)
}

fn parse_time(v: &str) -> Option<f64> {
    if let Ok(n) = v.parse::<f64>() {
        return Some(n);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

fn text_match(op: &str, have: &str, want: &str) -> bool {
    if op == "Contains" {
        have.contains(want)
    } else {
        have == want
    }
}

/// Searchable operational data as (key, value) pairs.
fn searchable(o: &OpsItem) -> Vec<(&str, &str)> {
    o.operational_data
        .iter()
        .filter(|(_, v)| s(v, "Type") == Some("SearchableString"))
        .map(|(k, v)| (k.as_str(), s(v, "Value").unwrap_or("")))
        .collect()
}

fn matches(o: &OpsItem, f: &Filter) -> bool {
    let op = f.op.as_str();
    let field = |k: &str| -> Option<String> {
        Some(match k {
            "Status" => o.status.clone(),
            "CreatedBy" => o.created_by.clone(),
            "LastModifiedBy" => o.modified_by.clone(),
            "Source" => o.source.clone(),
            "Title" => o.title.clone(),
            "OpsItemId" => o.id.clone(),
            "Category" => o.category.clone()?,
            "Severity" => o.severity.clone()?,
            "OpsItemType" => o.ops_item_type.clone(),
            _ => return None,
        })
    };
    let key = f.key.as_str();
    f.values.iter().any(|want| {
        if let Some(have) = field(key) {
            return text_match(op, &have, want);
        }
        match key {
            "Priority" => {
                let (Some(p), Ok(w)) = (o.priority, want.parse::<i64>()) else {
                    return false;
                };
                match op {
                    "GreaterThan" => p > w,
                    "LessThan" => p < w,
                    _ => p == w,
                }
            }
            k if TIME_KEYS.contains(&k) => {
                let have = match k {
                    "CreatedTime" => Some(o.created),
                    "LastModifiedTime" => Some(o.modified),
                    other => o.times.get(other).and_then(Value::as_f64),
                };
                match (have, parse_time(want)) {
                    (Some(h), Some(w)) if op == "GreaterThan" => h > w,
                    (Some(h), Some(w)) => h < w,
                    _ => false,
                }
            }
            "OperationalData" => {
                let Ok(w) = serde_json::from_str::<Value>(want) else {
                    return false;
                };
                let wk = s(&w, "key").unwrap_or("");
                let wv = s(&w, "value").unwrap_or("");
                searchable(o)
                    .iter()
                    .any(|(k, v)| *k == wk && text_match(op, v, wv))
            }
            "OperationalDataKey" => searchable(o).iter().any(|(k, _)| k == want),
            "OperationalDataValue" => searchable(o).iter().any(|(_, v)| text_match(op, v, want)),
            "ResourceId" | "AutomationId" => {
                let data_key = if key == "ResourceId" {
                    "/aws/resources"
                } else {
                    "/aws/automations"
                };
                let Some(raw) = o.operational_data.get(data_key).and_then(|v| s(v, "Value")) else {
                    return false;
                };
                let list: Vec<Value> = serde_json::from_str(raw).unwrap_or_default();
                list.iter().any(|r| {
                    ["arn", "automationId"].iter().any(|field| {
                        r.get(*field)
                            .and_then(Value::as_str)
                            .map(|have| text_match(op, have, want))
                            .unwrap_or(false)
                    })
                })
            }
            _ => false,
        }
    })
}

fn summary(scope: &Scope, o: &OpsItem) -> Value {
    let full = item_doc(scope, o);
    let mut out = serde_json::Map::new();
    for k in [
        "CreatedBy",
        "CreatedTime",
        "LastModifiedBy",
        "LastModifiedTime",
        "Priority",
        "Source",
        "Status",
        "OpsItemId",
        "Title",
        "OperationalData",
        "Category",
        "Severity",
        "OpsItemType",
        "ActualStartTime",
        "ActualEndTime",
        "PlannedStartTime",
        "PlannedEndTime",
    ] {
        if let Some(v) = full.get(k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

pub(crate) fn all_items(inner: &Inner, scope: &Scope) -> Result<Vec<OpsItem>, ApiError> {
    let rows: Vec<(String, OpsItem)> = scan_rows(&*inner.store, TABLE, &scope.prefix())?;
    Ok(rows.into_iter().map(|(_, o)| o).collect())
}

/// DescribeOpsItems: newest first.
pub fn describe_ops_items(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let filters = parse(arr(input, "OpsItemFilters"))?;
    let mut items: Vec<OpsItem> = all_items(inner, scope)?
        .into_iter()
        .filter(|o| filters.iter().all(|f| matches(o, f)))
        .collect();
    items.sort_by(|a, b| {
        b.created
            .partial_cmp(&a.created)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.id.cmp(&b.id))
    });
    let (items, next) = page(
        items,
        s(input, "NextToken"),
        max_results(input, 50),
        |o: &OpsItem| o.id.clone(),
    )?;
    let docs: Vec<Value> = items.iter().map(|o| summary(scope, o)).collect();
    let mut out = json!({ "OpsItemSummaries": docs });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// ListOpsItemEvents: newest first; the only filter key is OpsItemId (Equal).
pub fn list_ops_item_events(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let mut ids: Option<Vec<String>> = None;
    for f in arr(input, "Filters") {
        // Key and Operator are modelled enums (OpsItemId / Equal).
        ids.get_or_insert_with(Vec::new)
            .extend(strings(f, "Values"));
    }
    let items = match &ids {
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
                out.push(load_required(inner, scope, id)?);
            }
            out
        }
        None => all_items(inner, scope)?,
    };
    let mut events: Vec<Value> = items
        .iter()
        .flat_map(|o| {
            o.events.iter().map(move |e| {
                json!({
                    "OpsItemId": o.id,
                    "EventId": e.id,
                    "Source": e.source,
                    "DetailType": e.detail_type,
                    "Detail": e.detail,
                    "CreatedBy": { "Arn": e.created_by },
                    "CreatedTime": e.created,
                })
            })
        })
        .collect();
    events.sort_by(|a, b| {
        let t = |v: &Value| v.get("CreatedTime").and_then(Value::as_f64).unwrap_or(0.0);
        t(b).partial_cmp(&t(a)).unwrap_or(std::cmp::Ordering::Equal)
    });
    let (events, next) = page(
        events,
        s(input, "NextToken"),
        max_results(input, 50),
        |e: &Value| s(e, "EventId").unwrap_or("").to_string(),
    )?;
    let mut out = json!({ "Summaries": events });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
