//! What a state transition sends, and delivering it.
//!
//! For every transition an outbox item carries the EventBridge `CloudWatch Alarm State Change`
//! event (`PutEvents`, always — CloudWatch emits the event whether or not actions are enabled), and,
//! when actions are enabled, one item per action of the new state:
//!
//! * SNS topics → `SNS` `Publish` with the alarm notification (subject
//!   `ALARM: "name" in US East (N. Virginia)`, message in the JSON shape of CloudWatch's SNS
//!   notifications: `AlarmName`, `AlarmDescription`, `AWSAccountId`, …, `Trigger`);
//! * `arn:aws:ssm:<region>:<account>:opsitem:<severity>[#CATEGORY=<category>]` → `SSM`
//!   `CreateOpsItem`;
//! * `arn:aws:ssm-incidents::<account>:responseplan/<name>` → `SSM Incidents` `StartIncident`;
//! * anything else (EC2, Auto Scaling, Lambda, investigations) is recorded as a failed action: this
//!   release cannot perform it.
//!
//! Each delivered action yields an `Action` history item — "Successfully executed action <arn>" or
//! "Failed to execute action <arn>" with `actionState`, `notificationResource` and the error — written
//! in the same batch that removes the item from the outbox. A service that is absent from this
//! process (the `Directory` answers `ServiceUnavailable`) is a failed action; for the EventBridge
//! event it is only logged at debug level.

use opsloop_core::{ApiError, Directory, Value};
use serde_json::{json, Map};

use super::model::{alarm_arn, AlarmKind, AlarmState, StateValue, StoredAlarm};
use super::store::{HistoryRecord, OutboxItem, Target};
use super::time::{iso_millis, iso_seconds};
use crate::doc::f64_value;
use crate::token::fnv1a;

/// Longest SNS subject.
const MAX_SUBJECT: usize = 100;

/// The long name of a region, as CloudWatch notifications print it.
pub fn region_name(region: &str) -> &str {
    match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "af-south-1" => "Africa (Cape Town)",
        "ap-east-1" => "Asia Pacific (Hong Kong)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-northeast-2" => "Asia Pacific (Seoul)",
        "ap-northeast-3" => "Asia Pacific (Osaka)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "ca-central-1" => "Canada (Central)",
        "eu-central-1" => "EU (Frankfurt)",
        "eu-west-1" => "EU (Ireland)",
        "eu-west-2" => "EU (London)",
        "eu-west-3" => "EU (Paris)",
        "eu-north-1" => "EU (Stockholm)",
        "eu-south-1" => "EU (Milan)",
        "me-south-1" => "Middle East (Bahrain)",
        "sa-east-1" => "South America (Sao Paulo)",
        other => other,
    }
}

fn dims_lower(dims: &[(String, String)]) -> Value {
    Value::Array(
        dims.iter()
            .map(|(n, v)| json!({"value": v, "name": n}))
            .collect(),
    )
}

/// `Metrics` of a math alarm as the notification `Trigger` prints them.
fn trigger_metrics(queries: &[Value]) -> Value {
    let convert = |q: &Value| -> Value {
        let mut out = Map::new();
        for (k, v) in q.as_object().into_iter().flatten() {
            let v = if k == "MetricStat" {
                let mut ms = v.clone();
                if let Some(dims) = ms.pointer_mut("/Metric/Dimensions") {
                    let pairs = crate::doc::dimensions_of(Some(dims));
                    *dims = dims_lower(&pairs);
                }
                ms
            } else {
                v.clone()
            };
            out.insert(k.clone(), v);
        }
        Value::Object(out)
    };
    Value::Array(queries.iter().map(convert).collect())
}

/// The notification an SNS action publishes.
pub fn notification(a: &StoredAlarm, old: StateValue) -> Value {
    let c = &a.config;
    let s = &a.state;
    let mut doc = Map::new();
    doc.insert("AlarmName".into(), json!(c.name));
    doc.insert("AlarmDescription".into(), json!(c.description));
    doc.insert("AWSAccountId".into(), json!(a.account));
    doc.insert(
        "AlarmConfigurationUpdatedTimestamp".into(),
        json!(iso_millis(c.configuration_updated_ms)),
    );
    doc.insert("NewStateValue".into(), json!(s.value.as_str()));
    doc.insert("NewStateReason".into(), json!(s.reason));
    doc.insert("StateChangeTime".into(), json!(iso_millis(s.updated_ms)));
    doc.insert("Region".into(), json!(region_name(&a.region)));
    doc.insert(
        "AlarmArn".into(),
        json!(alarm_arn(&a.account, &a.region, &c.name)),
    );
    doc.insert("OldStateValue".into(), json!(old.as_str()));
    doc.insert("OKActions".into(), json!(c.ok_actions));
    doc.insert("AlarmActions".into(), json!(c.alarm_actions));
    doc.insert(
        "InsufficientDataActions".into(),
        json!(c.insufficient_data_actions),
    );
    match &c.kind {
        AlarmKind::Metric(m) => {
            let mut t = Map::new();
            if let Some(name) = &m.metric_name {
                t.insert("MetricName".into(), json!(name));
                t.insert("Namespace".into(), json!(m.namespace));
                match (&m.statistic, &m.extended_statistic) {
                    (_, Some(ext)) => {
                        t.insert("StatisticType".into(), json!("ExtendedStatistic"));
                        t.insert("ExtendedStatistic".into(), json!(ext));
                    }
                    (stat, None) => {
                        let upper = match stat.as_deref() {
                            Some("SampleCount") => "SAMPLE_COUNT".to_string(),
                            Some(s) => s.to_ascii_uppercase(),
                            None => String::new(),
                        };
                        t.insert("StatisticType".into(), json!("Statistic"));
                        t.insert("Statistic".into(), json!(upper));
                    }
                }
                t.insert("Unit".into(), json!(m.unit));
                t.insert("Dimensions".into(), dims_lower(&m.dimensions));
                t.insert("Period".into(), json!(m.period));
            } else {
                t.insert("Period".into(), json!(m.effective_period()));
            }
            t.insert("EvaluationPeriods".into(), json!(m.evaluation_periods));
            t.insert("DatapointsToAlarm".into(), json!(m.datapoints_to_alarm()));
            t.insert("ComparisonOperator".into(), json!(m.comparison_operator));
            match m.threshold {
                Some(th) => {
                    t.insert("Threshold".into(), f64_value(th));
                }
                None => {
                    t.insert("ThresholdMetricId".into(), json!(m.threshold_metric_id));
                }
            }
            t.insert(
                "TreatMissingData".into(),
                json!(m.treat_missing_data.clone().unwrap_or_default()),
            );
            t.insert(
                "EvaluateLowSampleCountPercentile".into(),
                json!(m
                    .evaluate_low_sample_count_percentile
                    .clone()
                    .unwrap_or_default()),
            );
            if let Some(q) = &m.metrics {
                t.insert("Metrics".into(), trigger_metrics(q));
            }
            doc.insert("Trigger".into(), Value::Object(t));
        }
        AlarmKind::Composite(comp) => {
            doc.insert("AlarmRule".into(), json!(comp.alarm_rule));
            let children = s
                .reason_data
                .as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|d| d.get("triggeringAlarms").cloned())
                .and_then(|t| t.as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    json!({
                        "Arn": t.get("arn"),
                        "State": {
                            "Value": t.pointer("/state/value"),
                            "Timestamp": t.pointer("/state/timestamp"),
                        }
                    })
                })
                .collect::<Vec<_>>();
            doc.insert("TriggeringChildren".into(), Value::Array(children));
        }
    }
    Value::Object(doc)
}

fn state_doc(s: &AlarmState) -> Value {
    let mut doc = Map::new();
    doc.insert("value".into(), json!(s.value.as_str()));
    doc.insert("reason".into(), json!(s.reason));
    if let Some(d) = &s.reason_data {
        doc.insert("reasonData".into(), json!(d));
    }
    doc.insert("timestamp".into(), json!(iso_millis(s.updated_ms)));
    if let Some(sup) = &s.suppression {
        doc.insert("actionsSuppressedBy".into(), json!(sup.by.as_str()));
        doc.insert(
            "actionsSuppressedReason".into(),
            json!(format!("Actions suppressed by {}", sup.by.as_str())),
        );
    }
    Value::Object(doc)
}

/// A stable identifier shaped like a UUID, for the single metric of an event's configuration.
fn metric_uuid(seed: &str) -> String {
    let a = fnv1a(seed.as_bytes());
    let b = fnv1a(format!("{seed}#").as_bytes());
    let h = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn event_metric_stat(metric: &Value, period: Value, stat: Value, unit: Option<&Value>) -> Value {
    let dims: Map<String, Value> = metric
        .get("Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.get("Name")?.as_str()?.to_string(),
                d.get("Value")?.clone(),
            ))
        })
        .collect();
    let mut ms = json!({
        "metric": {
            "namespace": metric.get("Namespace"),
            "name": metric.get("MetricName"),
            "dimensions": dims,
        },
        "period": period,
        "stat": stat,
    });
    if let (Some(u), Some(obj)) = (unit, ms.as_object_mut()) {
        obj.insert("unit".into(), u.clone());
    }
    ms
}

/// The `configuration` of a state-change event.
fn event_configuration(a: &StoredAlarm) -> Value {
    let c = &a.config;
    let mut doc = Map::new();
    match &c.kind {
        AlarmKind::Metric(m) => {
            let metrics: Vec<Value> = match &m.metrics {
                None => {
                    let metric = json!({
                        "Namespace": m.namespace,
                        "MetricName": m.metric_name,
                        "Dimensions": crate::doc::dimensions_value(&m.dimensions),
                    });
                    let stat = m.statistic.clone().or(m.extended_statistic.clone());
                    let unit = m.unit.as_ref().map(|u| json!(u));
                    vec![json!({
                        "id": metric_uuid(&alarm_arn(&a.account, &a.region, &c.name)),
                        "metricStat": event_metric_stat(&metric, json!(m.period), json!(stat), unit.as_ref()),
                        "returnData": true,
                    })]
                }
                Some(queries) => queries
                    .iter()
                    .map(|q| {
                        let mut out = Map::new();
                        out.insert("id".into(), q.get("Id").cloned().unwrap_or(Value::Null));
                        if let Some(e) = q.get("Expression") {
                            out.insert("expression".into(), e.clone());
                        }
                        if let Some(l) = q.get("Label") {
                            out.insert("label".into(), l.clone());
                        }
                        if let Some(ms) = q.get("MetricStat") {
                            out.insert(
                                "metricStat".into(),
                                event_metric_stat(
                                    ms.get("Metric").unwrap_or(&Value::Null),
                                    ms.get("Period").cloned().unwrap_or(Value::Null),
                                    ms.get("Stat").cloned().unwrap_or(Value::Null),
                                    ms.get("Unit"),
                                ),
                            );
                        }
                        out.insert(
                            "returnData".into(),
                            q.get("ReturnData").cloned().unwrap_or(Value::Bool(true)),
                        );
                        Value::Object(out)
                    })
                    .collect(),
            };
            if let Some(d) = &c.description {
                doc.insert("description".into(), json!(d));
            }
            doc.insert("metrics".into(), Value::Array(metrics));
        }
        AlarmKind::Composite(comp) => {
            doc.insert("alarmRule".into(), json!(comp.alarm_rule));
            if let Some(s) = &comp.actions_suppressor {
                doc.insert("actionsSuppressor".into(), json!(s));
                doc.insert(
                    "actionsSuppressorWaitPeriod".into(),
                    json!(comp.actions_suppressor_wait_period),
                );
                doc.insert(
                    "actionsSuppressorExtensionPeriod".into(),
                    json!(comp.actions_suppressor_extension_period),
                );
            }
            if let Some(d) = &c.description {
                doc.insert("description".into(), json!(d));
            }
        }
    }
    Value::Object(doc)
}

/// The `detail` of a `CloudWatch Alarm State Change` event.
pub fn event_detail(a: &StoredAlarm, previous: &AlarmState) -> Value {
    json!({
        "alarmName": a.config.name,
        "state": state_doc(&a.state),
        "previousState": state_doc(previous),
        "configuration": event_configuration(a),
    })
}

fn item(a: &StoredAlarm, target: Target, resource: &str, input: Value) -> OutboxItem {
    OutboxItem {
        account: a.account.clone(),
        region: a.region.clone(),
        alarm_name: a.config.name.clone(),
        alarm_type: a.config.alarm_type().to_string(),
        target,
        resource: resource.to_string(),
        input,
        state_update_ms: a.state.updated_ms,
    }
}

/// The state-change event of a transition (`a` holds the new state).
pub fn event_item(a: &StoredAlarm, previous: &AlarmState) -> OutboxItem {
    let detail = event_detail(a, previous);
    let input = json!({
        "Entries": [{
            "Source": "aws.cloudwatch",
            "DetailType": "CloudWatch Alarm State Change",
            "Resources": [alarm_arn(&a.account, &a.region, &a.config.name)],
            "Time": a.state.updated_ms as f64 / 1000.0,
            "Detail": detail.to_string(),
        }]
    });
    item(a, Target::EventBridge, "", input)
}

/// The outbox item of one action of `a`'s new state.
pub fn action_item(a: &StoredAlarm, arn: &str, old: StateValue) -> OutboxItem {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let service = parts.get(2).copied().unwrap_or("");
    let resource = parts.get(5).copied().unwrap_or("");
    let alarm = alarm_arn(&a.account, &a.region, &a.config.name);
    let state = a.state.value.as_str();
    match service {
        "sns" => {
            let subject: String = format!(
                "{state}: \"{}\" in {}",
                a.config.name,
                region_name(&a.region)
            )
            .chars()
            .take(MAX_SUBJECT)
            .collect();
            let input = json!({
                "TopicArn": arn,
                "Subject": subject,
                "Message": notification(a, old).to_string(),
            });
            item(a, Target::Sns, arn, input)
        }
        "ssm" if resource.starts_with("opsitem:") => {
            let spec = &resource["opsitem:".len()..];
            let (severity, category) = match spec.split_once("#CATEGORY=") {
                Some((s, c)) => (s, Some(c)),
                None => (spec.split('#').next().unwrap_or(spec), None),
            };
            let mut input = json!({
                "Title": format!("CloudWatch alarm - '{}' is in {state} state", a.config.name),
                "Description": a.state.reason,
                "Source": "CloudWatch Alarm",
                "Severity": severity,
                "OperationalData": {
                    "/aws/resources": {
                        "Value": json!([{ "arn": alarm }]).to_string(),
                        "Type": "SearchableString",
                    },
                    "/aws/dedup": {
                        "Value": json!({ "dedupString": format!("{alarm}:{state}") }).to_string(),
                        "Type": "SearchableString",
                    },
                },
            });
            if let (Some(c), Some(obj)) = (category, input.as_object_mut()) {
                obj.insert("Category".into(), json!(c));
            }
            item(a, Target::OpsItem, arn, input)
        }
        "ssm-incidents" => {
            let input = json!({
                "responsePlanArn": arn,
                "title": format!("CloudWatch alarm '{}' is in {state} state", a.config.name),
                "triggerDetails": {
                    "source": "aws.cloudwatch",
                    "triggerArn": alarm,
                    "timestamp": a.state.updated_ms as f64 / 1000.0,
                    "rawData": event_detail(a, &a.state).to_string(),
                },
            });
            item(a, Target::Incident, arn, input)
        }
        _ => item(a, Target::Unsupported, arn, Value::Null),
    }
}

/// Send one outbox item.
pub async fn deliver(directory: Option<&Directory>, item: &OutboxItem) -> Result<Value, ApiError> {
    let (service, operation) = match item.target {
        Target::Sns => ("SNS", "Publish"),
        Target::OpsItem => ("SSM", "CreateOpsItem"),
        Target::Incident => ("SSM Incidents", "StartIncident"),
        Target::EventBridge => ("EventBridge", "PutEvents"),
        Target::Unsupported => {
            return Err(ApiError::new(
                "UnsupportedAction",
                format!(
                    "The action {} is not supported by this opsloop release.",
                    item.resource
                ),
            ))
        }
    };
    match directory {
        Some(d) => {
            d.invoke(
                service,
                &item.account,
                &item.region,
                operation,
                item.input.clone(),
            )
            .await
        }
        None => Err(ApiError::with_status(
            "ServiceUnavailable",
            503,
            format!("service {service} is not available in this opsloop process"),
        )),
    }
}

/// The `Action` history item of a delivery.
pub fn action_history(
    item: &OutboxItem,
    result: &Result<Value, ApiError>,
    now_ms: i64,
) -> HistoryRecord {
    let mut data = Map::new();
    let summary = match result {
        Ok(_) => {
            data.insert("actionState".into(), json!("Succeeded"));
            format!("Successfully executed action {}", item.resource)
        }
        Err(_) => {
            data.insert("actionState".into(), json!("Failed"));
            format!("Failed to execute action {}", item.resource)
        }
    };
    data.insert("stateUpdateTimestamp".into(), json!(item.state_update_ms));
    data.insert("notificationResource".into(), json!(item.resource));
    match result {
        Ok(out) => {
            if let Some(m) = item.input.get("Message") {
                data.insert("publishedMessage".into(), m.clone());
            }
            if let Some(id) = out.get("MessageId") {
                data.insert("messageId".into(), id.clone());
            }
        }
        Err(e) => {
            data.insert("error".into(), json!(format!("{}: {}", e.kind, e.message)));
        }
    }
    let mut text = Value::Object(data.clone()).to_string();
    if text.len() > 4095 {
        data.remove("publishedMessage");
        text = Value::Object(data).to_string();
    }
    HistoryRecord {
        alarm_name: item.alarm_name.clone(),
        alarm_type: item.alarm_type.clone(),
        timestamp_ms: now_ms,
        item_type: "Action".into(),
        summary: summary.chars().take(255).collect(),
        data: text,
    }
}

/// The EventBridge `time` of an event (for logs).
pub fn event_time(ms: i64) -> String {
    iso_seconds(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_uuids_are_stable_and_uuid_shaped() {
        let a = metric_uuid("arn:x");
        assert_eq!(a, metric_uuid("arn:x"));
        assert_ne!(a, metric_uuid("arn:y"));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
    }

    #[test]
    fn regions_have_long_names() {
        assert_eq!(region_name("us-east-1"), "US East (N. Virginia)");
        assert_eq!(region_name("xx-test-1"), "xx-test-1");
    }
}
