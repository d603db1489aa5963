//! Metric filters (Put/Describe/Delete/TestMetricFilter and turning matching events into metric
//! data), the embedded metric format (`_aws.CloudWatchMetrics` in JSON events) and the subscription
//! filter record with DescribeSubscriptionFilters (creation and delivery: `subscriptions`).
//!
//! Keys: `{account}/{region}/{group}:{filterName}` in tables `logs.mfilters` / `logs.sfilters`
//! (`:` cannot occur in group names, so a group's filters share an unambiguous prefix).

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_i64, opt_str, req_str, store_err};
use crate::pattern::{Extracted, Pattern};

pub const METRIC_FILTERS: &str = "logs.mfilters";
pub const SUBSCRIPTION_FILTERS: &str = "logs.sfilters";

/// The store key of filter `name` on `group` in `table`, refusing a new filter when the group already
/// has `limit` of them (replacing an existing filter of that name is always allowed).
pub fn claim_filter_slot(
    store: &dyn ControlStore,
    table: &str,
    ctx: &RequestContext,
    group: &str,
    name: &str,
    limit: usize,
    limit_message: &str,
) -> Result<String, ApiError> {
    let prefix = filter_prefix(ctx, group);
    let key = format!("{prefix}{name}");
    let existing = store
        .scan(table, &prefix, None, limit + 1)
        .map_err(store_err)?;
    if existing.len() >= limit && !existing.iter().any(|(k, _)| *k == key) {
        return Err(error::limit_exceeded(limit_message));
    }
    Ok(key)
}

pub fn filter_prefix(ctx: &RequestContext, group: &str) -> String {
    format!("{}/{}/{group}:", ctx.account_id, ctx.region)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricFilterRecord {
    pub group: String,
    pub name: String,
    pub pattern: String,
    /// The metricTransformations list as given.
    pub transformations: Value,
    pub creation_time: i64,
}

fn is_field_ref(s: &str) -> bool {
    s.starts_with("$.") || (s.starts_with('$') && s.len() > 1)
}

fn validate_transformations(t: &Value, pattern: &Pattern) -> Result<(), ApiError> {
    let list = t
        .as_array()
        .ok_or_else(|| error::invalid("metricTransformations must be a list"))?;
    if list.len() != 1 {
        return Err(error::invalid(
            "metricTransformations must contain exactly one transformation.",
        ));
    }
    for m in list {
        let value = req_str(m, "metricValue")?;
        req_str(m, "metricName")?;
        req_str(m, "metricNamespace")?;
        if !is_field_ref(value) && value.parse::<f64>().is_err() {
            return Err(error::invalid(format!(
                "Invalid metric value '{value}': use a number or a field reference like $.latency or $size."
            )));
        }
        let dims = m.get("dimensions").and_then(Value::as_object);
        if let Some(d) = dims {
            if d.len() > 3 {
                return Err(error::invalid(
                    "A metric filter can have at most 3 dimensions.",
                ));
            }
            if m.get("defaultValue").is_some_and(|v| !v.is_null()) && !d.is_empty() {
                return Err(error::invalid(
                    "Metric filters with dimensions cannot have a default value.",
                ));
            }
            for v in d.values() {
                if !v.as_str().is_some_and(is_field_ref) {
                    return Err(error::invalid(
                        "Dimension values must be field references like $.field.",
                    ));
                }
            }
            if matches!(pattern, Pattern::All | Pattern::Terms { .. }) && !d.is_empty() {
                return Err(error::invalid(
                    "Dimensions need a JSON or space-delimited filter pattern that extracts fields.",
                ));
            }
        }
    }
    Ok(())
}

pub fn put_metric_filter(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let group = req_str(input, "logGroupName")?;
    let name = req_str(input, "filterName")?;
    let pattern_src = req_str(input, "filterPattern")?;
    let pattern = Pattern::parse(pattern_src)?;
    let transformations = input
        .get("metricTransformations")
        .cloned()
        .unwrap_or(Value::Null);
    validate_transformations(&transformations, &pattern)?;
    crate::groups::load_group(store, ctx, group)?;
    let key = claim_filter_slot(
        store,
        METRIC_FILTERS,
        ctx,
        group,
        name,
        100,
        "A log group can have at most 100 metric filters.",
    )?;
    let rec = MetricFilterRecord {
        group: group.to_string(),
        name: name.to_string(),
        pattern: pattern_src.to_string(),
        transformations,
        creation_time: now_ms,
    };
    store
        .put(
            METRIC_FILTERS,
            &key,
            &serde_json::to_vec(&rec).map_err(error::internal)?,
        )
        .map_err(store_err)?;
    Ok(json!({}))
}

pub fn group_metric_filters(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Vec<MetricFilterRecord>, ApiError> {
    let rows = store
        .scan(METRIC_FILTERS, &filter_prefix(ctx, group), None, 1000)
        .map_err(store_err)?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect())
}

fn metric_filter_json(r: &MetricFilterRecord) -> Value {
    json!({
        "filterName": r.name,
        "filterPattern": r.pattern,
        "metricTransformations": r.transformations,
        "creationTime": r.creation_time,
        "logGroupName": r.group,
    })
}

pub fn describe_metric_filters(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let group = opt_str(input, "logGroupName");
    let name_prefix = opt_str(input, "filterNamePrefix");
    if name_prefix.is_some() && group.is_none() {
        return Err(error::invalid("filterNamePrefix requires logGroupName."));
    }
    let metric_name = opt_str(input, "metricName");
    let namespace = opt_str(input, "metricNamespace");
    if metric_name.is_some() != namespace.is_some() {
        return Err(error::invalid(
            "metricName and metricNamespace must be given together.",
        ));
    }
    let limit = opt_i64(input, "limit").unwrap_or(50);
    if !(1..=50).contains(&limit) {
        return Err(error::invalid("limit must be between 1 and 50."));
    }
    if let Some(g) = group {
        crate::groups::load_group(store, ctx, g)?;
    }
    let prefix = match group {
        Some(g) => format!("{}{}", filter_prefix(ctx, g), name_prefix.unwrap_or("")),
        None => format!("{}/{}/", ctx.account_id, ctx.region),
    };
    let mut after = match opt_str(input, "nextToken") {
        Some(t) => Some(crate::groups::decode_token(t)?),
        None => None,
    };
    let mut out = Vec::new();
    let mut token = None;
    let mut last_pushed = String::new();
    'outer: loop {
        let rows = store
            .scan(METRIC_FILTERS, &prefix, after.as_deref(), 200)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        for (k, v) in rows {
            let Ok(r) = serde_json::from_slice::<MetricFilterRecord>(&v) else {
                continue;
            };
            if let (Some(mn), Some(ns)) = (metric_name, namespace) {
                let hit = r.transformations.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|t| t["metricName"] == mn && t["metricNamespace"] == ns)
                });
                if !hit {
                    continue;
                }
            }
            if out.len() == limit as usize {
                token = Some(crate::groups::encode_token(&last_pushed));
                break 'outer;
            }
            out.push(metric_filter_json(&r));
            last_pushed = k;
        }
    }
    let mut resp = json!({"metricFilters": out});
    if let Some(t) = token {
        resp["nextToken"] = json!(t);
    }
    Ok(resp)
}

pub fn delete_filter(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    table: &str,
) -> Result<Value, ApiError> {
    let group = req_str(input, "logGroupName")?;
    let name = req_str(input, "filterName")?;
    crate::groups::load_group(store, ctx, group)?;
    if !store
        .delete(table, &format!("{}{name}", filter_prefix(ctx, group)))
        .map_err(store_err)?
    {
        return Err(error::not_found("The specified resource does not exist."));
    }
    Ok(json!({}))
}

fn extracted_json(ex: &Extracted) -> Value {
    let map: BTreeMap<&String, String> = ex
        .iter()
        .map(|(k, v)| {
            (
                k,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    json!(map)
}

pub fn test_metric_filter(input: &Value) -> Result<Value, ApiError> {
    let pattern = Pattern::parse(req_str(input, "filterPattern")?)?;
    let messages = crate::error::str_list(input, "logEventMessages");
    if messages.is_empty() || messages.len() > 50 {
        return Err(error::invalid(
            "logEventMessages must hold 1 to 50 messages.",
        ));
    }
    let matches: Vec<Value> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            pattern.extract(m).map(|ex| {
                json!({"eventNumber": i + 1, "eventMessage": m, "extractedValues": extracted_json(&ex)})
            })
        })
        .collect();
    Ok(json!({"matches": matches}))
}

fn num_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// Metric datums (PutMetricData `MetricData` members, grouped by namespace) for events
/// `(timestamp ms, message)` under the given filters.
pub fn metric_data(
    filters: &[MetricFilterRecord],
    events: &[(i64, &str)],
    now_ms: i64,
) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for f in filters {
        let Ok(pattern) = Pattern::parse(&f.pattern) else {
            continue;
        };
        let Some(t) = f.transformations.as_array().and_then(|a| a.first()) else {
            continue;
        };
        let (Some(name), Some(ns), Some(value_src)) = (
            t["metricName"].as_str(),
            t["metricNamespace"].as_str(),
            t["metricValue"].as_str(),
        ) else {
            continue;
        };
        let unit = t["unit"].as_str();
        let mut matched = false;
        for (ts, msg) in events {
            let Some(mut ex) = pattern.extract(msg) else {
                continue;
            };
            matched = true;
            if matches!(pattern, Pattern::Json(_)) {
                // values and dimensions may name any field of the event, not only the pattern's
                if let Ok(doc) = serde_json::from_str::<Value>(msg.trim()) {
                    let refs = std::iter::once(value_src).chain(
                        t["dimensions"]
                            .as_object()
                            .into_iter()
                            .flat_map(|d| d.values().filter_map(Value::as_str)),
                    );
                    for r in refs {
                        if !ex.contains_key(r) {
                            if let Some(v) = crate::pattern::resolve_ref(&doc, r) {
                                ex.insert(r.to_string(), v);
                            }
                        }
                    }
                }
            }
            let value = match value_src.parse::<f64>() {
                Ok(v) => Some(v),
                Err(_) => ex.get(value_src).and_then(num_of),
            };
            let Some(value) = value else { continue };
            let mut dims = Vec::new();
            let mut complete = true;
            if let Some(d) = t["dimensions"].as_object() {
                for (dn, dv) in d {
                    match dv.as_str().and_then(|r| ex.get(r)) {
                        Some(v) => dims.push(json!({"Name": dn, "Value": text_of(v)})),
                        None => complete = false,
                    }
                }
            }
            if !complete {
                continue;
            }
            let mut datum =
                json!({"MetricName": name, "Timestamp": *ts as f64 / 1000.0, "Value": value});
            if !dims.is_empty() {
                datum["Dimensions"] = json!(dims);
            }
            if let Some(u) = unit {
                datum["Unit"] = json!(u);
            }
            out.entry(ns.to_string()).or_default().push(datum);
        }
        if !matched {
            if let Some(dv) = t.get("defaultValue").and_then(Value::as_f64) {
                let mut datum =
                    json!({"MetricName": name, "Timestamp": now_ms as f64 / 1000.0, "Value": dv});
                if let Some(u) = unit {
                    datum["Unit"] = json!(u);
                }
                out.entry(ns.to_string()).or_default().push(datum);
            }
        }
    }
    out
}

/// Metric datums of embedded-metric-format events, grouped by namespace.
pub fn emf_data(events: &[(i64, &str)]) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (ts, msg) in events {
        if !msg.contains("CloudWatchMetrics") {
            continue;
        }
        let Ok(doc) = serde_json::from_str::<Value>(msg.trim()) else {
            continue;
        };
        let Some(directives) = doc["_aws"]["CloudWatchMetrics"].as_array() else {
            continue;
        };
        let ts_ms = doc["_aws"]["Timestamp"].as_i64().unwrap_or(*ts);
        for d in directives {
            let Some(ns) = d["Namespace"].as_str() else {
                continue;
            };
            let dim_sets: Vec<Vec<&str>> = d["Dimensions"]
                .as_array()
                .map(|sets| {
                    sets.iter()
                        .filter_map(Value::as_array)
                        .map(|s| s.iter().filter_map(Value::as_str).collect())
                        .collect()
                })
                .unwrap_or_default();
            let dim_sets = if dim_sets.is_empty() {
                vec![Vec::new()]
            } else {
                dim_sets
            };
            for m in d["Metrics"].as_array().into_iter().flatten() {
                let Some(name) = m["Name"].as_str() else {
                    continue;
                };
                let values: Vec<f64> = match &doc[name] {
                    Value::Array(a) => a.iter().filter_map(num_of).collect(),
                    v => num_of(v).into_iter().collect(),
                };
                if values.is_empty() {
                    continue;
                }
                for set in &dim_sets {
                    let dims: Option<Vec<Value>> = set
                        .iter()
                        .map(|k| doc.get(*k).map(|v| json!({"Name": k, "Value": text_of(v)})))
                        .collect();
                    let Some(dims) = dims else { continue };
                    let mut datum = json!({"MetricName": name, "Timestamp": ts_ms as f64 / 1000.0});
                    if values.len() == 1 {
                        datum["Value"] = json!(values[0]);
                    } else {
                        datum["Values"] = json!(values);
                    }
                    if !dims.is_empty() {
                        datum["Dimensions"] = json!(dims);
                    }
                    if let Some(u) = m["Unit"].as_str() {
                        datum["Unit"] = json!(u);
                    }
                    out.entry(ns.to_string()).or_default().push(datum);
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub group: String,
    pub name: String,
    pub pattern: String,
    pub destination_arn: String,
    pub role_arn: Option<String>,
    pub distribution: String,
    pub creation_time: i64,
}

pub fn describe_subscription_filters(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let group = req_str(input, "logGroupName")?;
    crate::groups::load_group(store, ctx, group)?;
    let prefix = format!(
        "{}{}",
        filter_prefix(ctx, group),
        opt_str(input, "filterNamePrefix").unwrap_or("")
    );
    let rows = store
        .scan(SUBSCRIPTION_FILTERS, &prefix, None, 10)
        .map_err(store_err)?;
    let list: Vec<Value> = rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<SubscriptionRecord>(v).ok())
        .map(|r| {
            let mut v = json!({
                "filterName": r.name, "logGroupName": r.group, "filterPattern": r.pattern,
                "destinationArn": r.destination_arn, "distribution": r.distribution,
                "creationTime": r.creation_time,
            });
            if let Some(role) = r.role_arn {
                v["roleArn"] = json!(role);
            }
            v
        })
        .collect();
    Ok(json!({"subscriptionFilters": list}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_filter_values_dimensions_and_default() {
        let f = MetricFilterRecord {
            group: "g".into(),
            name: "f".into(),
            pattern: "{ $.latency > 0 }".into(),
            transformations: json!([{"metricName": "Latency", "metricNamespace": "App", "metricValue": "$.latency", "unit": "Milliseconds", "dimensions": {"Op": "$.op"}}]),
            creation_time: 0,
        };
        let data = metric_data(
            &[f],
            &[
                (1000, r#"{"latency": 12.5, "op": "get"}"#),
                (2000, "not json"),
            ],
            5000,
        );
        let d = &data["App"];
        assert_eq!(d.len(), 1);
        assert_eq!(d[0]["Value"], 12.5);
        assert_eq!(d[0]["Timestamp"], 1.0);
        assert_eq!(d[0]["Dimensions"][0], json!({"Name": "Op", "Value": "get"}));
        let g = MetricFilterRecord {
            group: "g".into(),
            name: "e".into(),
            pattern: "ERROR".into(),
            transformations: json!([{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1", "defaultValue": 0.0}]),
            creation_time: 0,
        };
        let data = metric_data(std::slice::from_ref(&g), &[(1000, "ok")], 5000);
        assert_eq!(data["App"][0]["Value"], 0.0);
        let data = metric_data(&[g], &[(1000, "ERROR a"), (1001, "ERROR b")], 5000);
        assert_eq!(data["App"].len(), 2);
    }

    #[test]
    fn emf_events_become_metrics() {
        let msg = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"Svc","Dimensions":[["Op"],[]],"Metrics":[{"Name":"Time","Unit":"Milliseconds"}]}]},"Op":"put","Time":[1,2,3]}"#;
        let data = emf_data(&[(5, msg), (6, "plain text")]);
        let d = &data["Svc"];
        assert_eq!(d.len(), 2);
        assert_eq!(d[0]["Values"], json!([1.0, 2.0, 3.0]));
        assert_eq!(d[0]["Dimensions"], json!([{"Name": "Op", "Value": "put"}]));
        assert_eq!(d[0]["Timestamp"], 1_700_000_000.0);
        assert!(d[1].get("Dimensions").is_none());
    }

    #[test]
    fn test_metric_filter_reports_extracted_values() {
        let out = test_metric_filter(&json!({
            "filterPattern": "[ip, user, status=4*, size]",
            "logEventMessages": ["1.2.3.4 bob 404 10", "1.2.3.4 bob 200 10"]
        }))
        .unwrap();
        let m = out["matches"].as_array().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["eventNumber"], 1);
        assert_eq!(m[0]["extractedValues"]["$user"], "bob");
    }
}
