//! DescribeAlarms, DescribeAlarmsForMetric and DescribeAlarmHistory.
//!
//! DescribeAlarms (API reference): without `AlarmTypes` only metric alarms are returned;
//! `AlarmNames` and `AlarmNamePrefix` exclude each other; `ChildrenOfAlarmName` returns the alarms a
//! composite alarm's rule references (name, ARN, state value and state update time only) and
//! `ParentsOfAlarmName` the composite alarms referencing an alarm (name and ARN only) — both allow
//! only `MaxRecords` and `NextToken` besides; `StateValue` and `ActionPrefix` filter; results are in
//! name order, `MaxRecords` (1–100, default 50) per page. DescribeAlarmsForMetric returns the
//! single-metric alarms on exactly that metric (namespace, name and full dimension set), optionally
//! narrowed by statistic, period and unit. DescribeAlarmHistory returns history items of the region
//! (kept two weeks, also for deleted alarms), newest first unless `ScanBy` is
//! `TimestampAscending`, filtered by alarm name, alarm type (metric alarms only unless `AlarmTypes`
//! says otherwise or an alarm is named), item type and date range, `MaxRecords` (default 100) per
//! page.

use std::collections::BTreeSet;
use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use super::model::{alarm_arn, StoredAlarm};
use super::registry::{AlarmKey, Entry};
use super::render::api_alarm;
use super::store;
use super::Alarms;
use crate::doc::{as_f64, ms_to_value, secs_to_ms};
use crate::error;
use crate::token;

/// Default and largest `MaxRecords` of DescribeAlarms.
pub const DEFAULT_ALARM_RECORDS: usize = 50;
pub const MAX_RECORDS: usize = 100;
/// Default `MaxRecords` of DescribeAlarmHistory.
pub const DEFAULT_HISTORY_RECORDS: usize = 100;

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// Last alarm name returned, or history items already returned.
    after: String,
    offset: usize,
    request: u64,
}

fn fingerprint(input: &Value) -> u64 {
    let mut print = input.clone();
    if let Some(m) = print.as_object_mut() {
        m.remove("NextToken");
        m.remove("MaxRecords");
    }
    token::fingerprint(&print)
}

fn cursor(input: &Value, request: u64) -> Result<Option<Cursor>, ApiError> {
    match input.get("NextToken").and_then(Value::as_str) {
        None => Ok(None),
        Some(t) => token::decode::<Cursor>(t)
            .filter(|c| c.request == request)
            .map(Some)
            .ok_or_else(|| ApiError::new(error::INVALID_NEXT_TOKEN, "The NextToken is invalid.")),
    }
}

fn max_records(input: &Value, default: usize) -> Result<usize, ApiError> {
    match input.get("MaxRecords").and_then(Value::as_i64) {
        None => Ok(default),
        Some(n) if (1..=MAX_RECORDS as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(error::invalid_value(error::bad_value_message(
            &n.to_string(),
            "MaxRecords",
        ))),
    }
}

fn strings(input: &Value, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn present(input: &Value, key: &str) -> bool {
    input.get(key).is_some_and(|v| !v.is_null())
}

fn snapshot(entries: &[Arc<Entry>]) -> Vec<StoredAlarm> {
    entries
        .iter()
        .filter_map(|e| {
            let inner = e.inner.lock();
            (!inner.deleted).then(|| inner.stored.clone())
        })
        .collect()
}

/// Split alarms into `MetricAlarms` and `CompositeAlarms`, with a `NextToken` when more remain.
fn page(alarms: Vec<Value>, composite: Vec<bool>, next: Option<String>) -> Value {
    let mut metric = Vec::new();
    let mut comp = Vec::new();
    for (a, c) in alarms.into_iter().zip(composite) {
        if c {
            comp.push(a);
        } else {
            metric.push(a);
        }
    }
    let mut doc = Map::new();
    doc.insert("MetricAlarms".into(), Value::Array(metric));
    doc.insert("CompositeAlarms".into(), Value::Array(comp));
    if let Some(t) = next {
        doc.insert("NextToken".into(), json!(t));
    }
    Value::Object(doc)
}

impl Alarms {
    /// DescribeAlarms.
    pub fn describe_alarms(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let request = fingerprint(&input);
        let after = cursor(&input, request)?.map(|c| c.after);
        let max = max_records(&input, DEFAULT_ALARM_RECORDS)?;
        let (account, region) = (&ctx.account_id, &ctx.region);
        let relative = ["ChildrenOfAlarmName", "ParentsOfAlarmName"];
        for rel in relative {
            if present(&input, rel) {
                let others = input.as_object().into_iter().flatten().any(|(k, v)| {
                    !v.is_null() && !matches!(k.as_str(), "MaxRecords" | "NextToken") && k != rel
                });
                if others {
                    return Err(error::validation(format!(
                        "If you specify {rel}, you cannot specify any other parameters in the request except for MaxRecords and NextToken."
                    )));
                }
            }
        }
        if present(&input, "AlarmNames") && present(&input, "AlarmNamePrefix") {
            return Err(error::combination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
            ));
        }
        let in_region = self.registry.read().in_region(account, region);
        let mut items: Vec<(String, bool, Value)> = Vec::new();
        if let Some(parent) = input.get("ChildrenOfAlarmName").and_then(Value::as_str) {
            let key = AlarmKey::new(account, region, parent);
            let parent_entry = self.registry.read().get(&key);
            let children: BTreeSet<String> = parent_entry
                .map(|e| e.inner.lock().compiled.children.clone())
                .unwrap_or_default();
            for a in snapshot(&in_region)
                .into_iter()
                .filter(|a| children.contains(&a.config.name))
            {
                let doc = json!({
                    "AlarmName": a.config.name,
                    "AlarmArn": alarm_arn(account, region, &a.config.name),
                    "StateValue": a.state.value.as_str(),
                    "StateUpdatedTimestamp": ms_to_value(a.state.updated_ms),
                });
                items.push((a.config.name.clone(), a.config.is_composite(), doc));
            }
        } else if let Some(child) = input.get("ParentsOfAlarmName").and_then(Value::as_str) {
            let parents: BTreeSet<String> = self
                .registry
                .read()
                .parents_of(&AlarmKey::new(account, region, child))
                .into_iter()
                .map(|k| k.name)
                .collect();
            for name in parents {
                let doc = json!({"AlarmName": name, "AlarmArn": alarm_arn(account, region, &name)});
                items.push((name, true, doc));
            }
        } else {
            let names: BTreeSet<String> = strings(&input, "AlarmNames").into_iter().collect();
            let prefix = input.get("AlarmNamePrefix").and_then(Value::as_str);
            let types = strings(&input, "AlarmTypes");
            let (want_metric, want_composite) = if types.is_empty() {
                (true, false)
            } else {
                (
                    types.iter().any(|t| t == "MetricAlarm"),
                    types.iter().any(|t| t == "CompositeAlarm"),
                )
            };
            let state = input.get("StateValue").and_then(Value::as_str);
            let action_prefix = input.get("ActionPrefix").and_then(Value::as_str);
            for a in snapshot(&in_region) {
                let composite = a.config.is_composite();
                let keep = (if composite {
                    want_composite
                } else {
                    want_metric
                }) && (names.is_empty() || names.contains(&a.config.name))
                    && prefix.is_none_or(|p| a.config.name.starts_with(p))
                    && state.is_none_or(|s| a.state.value.as_str() == s)
                    && action_prefix
                        .is_none_or(|p| a.config.all_actions().any(|x| x.starts_with(p)));
                if keep {
                    items.push((a.config.name.clone(), composite, api_alarm(&a)));
                }
            }
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(after) = &after {
            items.retain(|(n, _, _)| n > after);
        }
        let next = (items.len() > max).then(|| {
            token::encode(&Cursor {
                after: items[max - 1].0.clone(),
                offset: 0,
                request,
            })
        });
        items.truncate(max);
        let composite = items.iter().map(|i| i.1).collect();
        Ok(page(
            items.into_iter().map(|i| i.2).collect(),
            composite,
            next,
        ))
    }

    /// DescribeAlarmsForMetric.
    pub fn describe_alarms_for_metric(
        &self,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Value, ApiError> {
        let namespace = input
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or_else(|| error::missing("Namespace"))?;
        let name = input
            .get("MetricName")
            .and_then(Value::as_str)
            .ok_or_else(|| error::missing("MetricName"))?;
        let mut dims = crate::doc::dimensions_of(input.get("Dimensions"));
        dims.sort();
        let text = |k: &str| input.get(k).and_then(Value::as_str);
        let period = input.get("Period").and_then(Value::as_i64);
        let in_region = self.registry.read().in_region(&ctx.account_id, &ctx.region);
        let alarms: Vec<Value> = snapshot(&in_region)
            .iter()
            .filter(|a| {
                let Some(m) = a.config.metric() else {
                    return false;
                };
                let mut alarm_dims = m.dimensions.clone();
                alarm_dims.sort();
                m.namespace.as_deref() == Some(namespace)
                    && m.metric_name.as_deref() == Some(name)
                    && alarm_dims == dims
                    && text("Statistic").is_none_or(|s| m.statistic.as_deref() == Some(s))
                    && text("ExtendedStatistic")
                        .is_none_or(|s| m.extended_statistic.as_deref() == Some(s))
                    && period.is_none_or(|p| m.period == Some(p))
                    && text("Unit").is_none_or(|u| m.unit.as_deref() == Some(u))
            })
            .map(api_alarm)
            .collect();
        Ok(json!({ "MetricAlarms": alarms }))
    }

    /// DescribeAlarmHistory.
    pub fn describe_alarm_history(
        &self,
        ctx: &RequestContext,
        input: Value,
    ) -> Result<Value, ApiError> {
        let request = fingerprint(&input);
        let offset = cursor(&input, request)?.map(|c| c.offset).unwrap_or(0);
        let max = max_records(&input, DEFAULT_HISTORY_RECORDS)?;
        let name = input.get("AlarmName").and_then(Value::as_str);
        let types = strings(&input, "AlarmTypes");
        let item_type = input.get("HistoryItemType").and_then(Value::as_str);
        let start = input.get("StartDate").and_then(as_f64).map(secs_to_ms);
        let end = input.get("EndDate").and_then(as_f64).map(secs_to_ms);
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(error::invalid_value(
                    "The parameter StartDate must not be after EndDate.",
                ));
            }
        }
        let ascending = match input.get("ScanBy").and_then(Value::as_str) {
            None | Some("TimestampDescending") => false,
            Some("TimestampAscending") => true,
            Some(other) => {
                return Err(error::invalid_value(error::bad_value_message(
                    other, "ScanBy",
                )))
            }
        };
        if present(&input, "AlarmContributorId") {
            return Ok(json!({ "AlarmHistoryItems": [] }));
        }
        let mut records = store::load_history(&*self.control, &ctx.account_id, &ctx.region)?;
        records.retain(|r| {
            let type_ok = if types.is_empty() {
                name.is_some() || r.alarm_type == "MetricAlarm"
            } else {
                types.contains(&r.alarm_type)
            };
            type_ok
                && name.is_none_or(|n| r.alarm_name == n)
                && item_type.is_none_or(|t| r.item_type == t)
                && start.is_none_or(|s| r.timestamp_ms >= s)
                && end.is_none_or(|e| r.timestamp_ms <= e)
        });
        if !ascending {
            records.reverse();
        }
        let total = records.len();
        let items: Vec<Value> = records
            .into_iter()
            .skip(offset)
            .take(max)
            .map(|r| {
                json!({
                    "AlarmName": r.alarm_name,
                    "AlarmType": r.alarm_type,
                    "Timestamp": ms_to_value(r.timestamp_ms),
                    "HistoryItemType": r.item_type,
                    "HistorySummary": r.summary,
                    "HistoryData": r.data,
                })
            })
            .collect();
        let mut doc = Map::new();
        doc.insert("AlarmHistoryItems".into(), Value::Array(items));
        if offset + max < total {
            doc.insert(
                "NextToken".into(),
                json!(token::encode(&Cursor {
                    after: String::new(),
                    offset: offset + max,
                    request,
                })),
            );
        }
        Ok(Value::Object(doc))
    }
}
