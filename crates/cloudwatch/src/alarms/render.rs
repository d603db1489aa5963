//! Alarms as the API returns them: `MetricAlarm` and `CompositeAlarm` structures for
//! DescribeAlarms, and the camel-case alarm documents inside `ConfigurationUpdate` history data
//! (`{"version":"1.0","type":"Create","createdAlarm":{...}}`).

use serde_json::{json, Map, Value};

use super::model::{alarm_arn, AlarmKind, StoredAlarm};
use super::time::iso_millis;
use crate::doc::{dimensions_value, f64_value, ms_to_value};

fn put_opt(doc: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        doc.insert(key.into(), v);
    }
}

/// The `MetricAlarm` or `CompositeAlarm` structure.
pub fn api_alarm(a: &StoredAlarm) -> Value {
    let c = &a.config;
    let s = &a.state;
    let mut doc = Map::new();
    doc.insert("AlarmName".into(), json!(c.name));
    doc.insert(
        "AlarmArn".into(),
        json!(alarm_arn(&a.account, &a.region, &c.name)),
    );
    put_opt(
        &mut doc,
        "AlarmDescription",
        c.description.as_ref().map(|d| json!(d)),
    );
    doc.insert(
        "AlarmConfigurationUpdatedTimestamp".into(),
        ms_to_value(c.configuration_updated_ms),
    );
    doc.insert("ActionsEnabled".into(), json!(c.actions_enabled));
    doc.insert("OKActions".into(), json!(c.ok_actions));
    doc.insert("AlarmActions".into(), json!(c.alarm_actions));
    doc.insert(
        "InsufficientDataActions".into(),
        json!(c.insufficient_data_actions),
    );
    doc.insert("StateValue".into(), json!(s.value.as_str()));
    doc.insert("StateReason".into(), json!(s.reason));
    put_opt(
        &mut doc,
        "StateReasonData",
        s.reason_data.as_ref().map(|d| json!(d)),
    );
    doc.insert("StateUpdatedTimestamp".into(), ms_to_value(s.updated_ms));
    doc.insert(
        "StateTransitionedTimestamp".into(),
        ms_to_value(s.transitioned_ms),
    );
    match &c.kind {
        AlarmKind::Metric(m) => {
            put_opt(
                &mut doc,
                "MetricName",
                m.metric_name.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "Namespace",
                m.namespace.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "Statistic",
                m.statistic.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "ExtendedStatistic",
                m.extended_statistic.as_ref().map(|v| json!(v)),
            );
            if m.metric_name.is_some() {
                doc.insert("Dimensions".into(), dimensions_value(&m.dimensions));
            }
            put_opt(&mut doc, "Period", m.period.map(|v| json!(v)));
            put_opt(&mut doc, "Unit", m.unit.as_ref().map(|v| json!(v)));
            doc.insert("EvaluationPeriods".into(), json!(m.evaluation_periods));
            put_opt(
                &mut doc,
                "DatapointsToAlarm",
                m.datapoints_to_alarm.map(|v| json!(v)),
            );
            put_opt(&mut doc, "Threshold", m.threshold.map(f64_value));
            doc.insert("ComparisonOperator".into(), json!(m.comparison_operator));
            put_opt(
                &mut doc,
                "TreatMissingData",
                m.treat_missing_data.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "EvaluateLowSampleCountPercentile",
                m.evaluate_low_sample_count_percentile
                    .as_ref()
                    .map(|v| json!(v)),
            );
            put_opt(&mut doc, "Metrics", m.metrics.as_ref().map(|v| json!(v)));
            put_opt(
                &mut doc,
                "ThresholdMetricId",
                m.threshold_metric_id.as_ref().map(|v| json!(v)),
            );
        }
        AlarmKind::Composite(comp) => {
            doc.insert("AlarmRule".into(), json!(comp.alarm_rule));
            put_opt(
                &mut doc,
                "ActionsSuppressor",
                comp.actions_suppressor.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "ActionsSuppressorWaitPeriod",
                comp.actions_suppressor_wait_period.map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "ActionsSuppressorExtensionPeriod",
                comp.actions_suppressor_extension_period.map(|v| json!(v)),
            );
            if let Some(sup) = &s.suppression {
                doc.insert("ActionsSuppressedBy".into(), json!(sup.by.as_str()));
                doc.insert(
                    "ActionsSuppressedReason".into(),
                    json!(format!("Actions suppressed by {}", sup.by.as_str())),
                );
            }
        }
    }
    Value::Object(doc)
}

/// The camel-case alarm document of `ConfigurationUpdate` history items.
pub fn history_alarm(a: &StoredAlarm) -> Value {
    let c = &a.config;
    let s = &a.state;
    let mut doc = Map::new();
    doc.insert("alarmName".into(), json!(c.name));
    doc.insert(
        "alarmArn".into(),
        json!(alarm_arn(&a.account, &a.region, &c.name)),
    );
    put_opt(
        &mut doc,
        "alarmDescription",
        c.description.as_ref().map(|d| json!(d)),
    );
    doc.insert("actionsEnabled".into(), json!(c.actions_enabled));
    doc.insert("okActions".into(), json!(c.ok_actions));
    doc.insert("alarmActions".into(), json!(c.alarm_actions));
    doc.insert(
        "insufficientDataActions".into(),
        json!(c.insufficient_data_actions),
    );
    doc.insert("stateValue".into(), json!(s.value.as_str()));
    doc.insert("stateReason".into(), json!(s.reason));
    doc.insert(
        "stateUpdatedTimestamp".into(),
        json!(iso_millis(s.updated_ms)),
    );
    doc.insert(
        "alarmConfigurationUpdatedTimestamp".into(),
        json!(iso_millis(c.configuration_updated_ms)),
    );
    match &c.kind {
        AlarmKind::Metric(m) => {
            put_opt(
                &mut doc,
                "namespace",
                m.namespace.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "metricName",
                m.metric_name.as_ref().map(|v| json!(v)),
            );
            if m.metric_name.is_some() {
                let dims: Vec<Value> = m
                    .dimensions
                    .iter()
                    .map(|(n, v)| json!({"name": n, "value": v}))
                    .collect();
                doc.insert("dimensions".into(), Value::Array(dims));
            }
            put_opt(
                &mut doc,
                "statistic",
                m.statistic.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "extendedStatistic",
                m.extended_statistic.as_ref().map(|v| json!(v)),
            );
            put_opt(&mut doc, "period", m.period.map(|v| json!(v)));
            put_opt(&mut doc, "unit", m.unit.as_ref().map(|v| json!(v)));
            doc.insert("evaluationPeriods".into(), json!(m.evaluation_periods));
            put_opt(
                &mut doc,
                "datapointsToAlarm",
                m.datapoints_to_alarm.map(|v| json!(v)),
            );
            put_opt(&mut doc, "threshold", m.threshold.map(f64_value));
            doc.insert("comparisonOperator".into(), json!(m.comparison_operator));
            doc.insert("treatMissingData".into(), json!(m.treat_missing().as_str()));
            put_opt(
                &mut doc,
                "evaluateLowSampleCountPercentile",
                m.evaluate_low_sample_count_percentile
                    .as_ref()
                    .map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "thresholdMetricId",
                m.threshold_metric_id.as_ref().map(|v| json!(v)),
            );
            put_opt(&mut doc, "metrics", m.metrics.as_ref().map(|v| json!(v)));
        }
        AlarmKind::Composite(comp) => {
            doc.insert("alarmRule".into(), json!(comp.alarm_rule));
            put_opt(
                &mut doc,
                "actionsSuppressor",
                comp.actions_suppressor.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "actionsSuppressorWaitPeriod",
                comp.actions_suppressor_wait_period.map(|v| json!(v)),
            );
            put_opt(
                &mut doc,
                "actionsSuppressorExtensionPeriod",
                comp.actions_suppressor_extension_period.map(|v| json!(v)),
            );
        }
    }
    Value::Object(doc)
}

/// Fields of `new` that differ from `old`, with their old values (`originalUpdatedFields`).
pub fn changed_fields(old: &Value, new: &Value) -> Value {
    let mut out = Map::new();
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
        for (k, v) in o {
            if k.starts_with("state") || k == "alarmConfigurationUpdatedTimestamp" {
                continue;
            }
            if n.get(k) != Some(v) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}
