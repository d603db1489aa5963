//! Validating `PutMetricAlarm` and `PutCompositeAlarm` inputs into alarm configurations.
//!
//! Rules (API reference and user guide): exactly one of `MetricName` and `Metrics`; with `Metrics`
//! none of `Namespace`, `Dimensions`, `Period`, `Unit`, `Statistic`, `ExtendedStatistic`; exactly one
//! of `Statistic` and `ExtendedStatistic`; `Period` 10, 20, 30 or a multiple of 60; Period ×
//! EvaluationPeriods at most 86,400 s when Period < 3,600, at most 604,800 s otherwise;
//! `DatapointsToAlarm` ≤ `EvaluationPeriods`; static operators need `Threshold`, anomaly-band
//! operators need `ThresholdMetricId` naming an `ANOMALY_DETECTION_BAND` expression; `Metrics`: up to
//! 20 queries (10 metrics, 10 expressions), one `ReturnData` (besides the threshold), one period;
//! at most 5 actions per state, each a well-formed ARN (SNS topics in the alarm's region); names
//! without ASCII control characters. Errors are `ValidationError`s worded as CloudWatch words them
//! where known ("DatapointsToAlarm must be less than or equal to EvaluationPeriods", "Exactly one
//! element of the metrics list should return data.", "Statistic should not be set if list of Metrics
//! is set.", "Invalid region … specified. Only … is supported.").

use std::collections::HashSet;

use opsloop_core::{ApiError, Value};

use super::model::{
    AlarmConfig, AlarmKind, Comparison, CompositeAlarmConfig, MetricAlarmConfig, TreatMissing,
};
use super::rule;
use crate::doc::as_f64;
use crate::error;
use crate::math;
use crate::stats::{self, Statistic};

/// Most actions per state.
pub const MAX_ACTIONS: usize = 5;
/// Most queries in an alarm's `Metrics`, and of each kind.
pub const MAX_QUERIES: usize = 20;
pub const MAX_QUERIES_OF_KIND: usize = 10;
/// Longest evaluation span for periods under an hour, and overall.
pub const MAX_SPAN_SHORT: i64 = 86_400;
pub const MAX_SPAN: i64 = 604_800;

/// A validated alarm and its initial tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub config: AlarmConfig,
    pub tags: Vec<(String, String)>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    error::validation(message)
}

fn text(input: &Value, key: &str) -> Option<String> {
    input.get(key).and_then(Value::as_str).map(str::to_string)
}

fn int(input: &Value, key: &str) -> Result<Option<i64>, ApiError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("The parameter {key} must be an integer."))),
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

fn pairs(input: &Value, key: &str, a: &str, b: &str) -> Vec<(String, String)> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|d| {
                    Some((
                        d.get(a)?.as_str()?.to_string(),
                        d.get(b)?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn present(input: &Value, key: &str) -> bool {
    input.get(key).is_some_and(|v| !v.is_null())
}

/// Whether CloudWatch accepts `period` for an alarm.
pub fn alarm_period_ok(period: i64) -> bool {
    matches!(period, 10 | 20 | 30)
        || (period >= 60 && period % 60 == 0 && period <= i64::from(i32::MAX))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.chars().any(|c| c.is_ascii_control()) {
        return Err(invalid(
            "AlarmName must not contain ASCII control characters.",
        ));
    }
    Ok(())
}

/// Which kinds of action an alarm may have.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    MetricAlarm,
    MathAlarm,
    Composite,
}

/// Validate the three action lists.
fn actions(input: &Value, region: &str, owner: Owner) -> Result<[Vec<String>; 3], ApiError> {
    let mut out: [Vec<String>; 3] = Default::default();
    for (slot, key) in out
        .iter_mut()
        .zip(["OKActions", "AlarmActions", "InsufficientDataActions"])
    {
        let list = strings(input, key);
        if list.len() > MAX_ACTIONS {
            return Err(invalid(format!(
                "The collection {key} must not have a size greater than {MAX_ACTIONS}."
            )));
        }
        for arn in &list {
            check_action(arn, region, owner)?;
        }
        *slot = list;
    }
    Ok(out)
}

fn check_action(arn: &str, region: &str, owner: Owner) -> Result<(), ApiError> {
    let syntax = || invalid(format!("Invalid arn syntax: {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" || !parts[1].starts_with("aws") || parts[5].is_empty() {
        return Err(syntax());
    }
    let (service, arn_region, resource) = (parts[2], parts[3], parts[5]);
    let wrong_region = || {
        invalid(format!(
            "Invalid region {arn_region} specified. Only {region} is supported."
        ))
    };
    match service {
        "sns" | "lambda" => {
            if arn_region != region {
                return Err(wrong_region());
            }
        }
        "ssm" => {
            let severity = resource
                .strip_prefix("opsitem:")
                .map(|r| r.split('#').next().unwrap_or(""))
                .ok_or_else(syntax)?;
            if !matches!(severity, "1" | "2" | "3" | "4") {
                return Err(syntax());
            }
            if arn_region != region {
                return Err(wrong_region());
            }
        }
        "ssm-incidents" => {
            if !resource.starts_with("responseplan/") || resource.len() <= "responseplan/".len() {
                return Err(syntax());
            }
        }
        "automate" | "swf" | "autoscaling" => match owner {
            Owner::Composite => {
                return Err(invalid(
                    "Composite alarms cannot have EC2 or Auto Scaling actions.",
                ))
            }
            Owner::MathAlarm if service != "autoscaling" => {
                return Err(invalid(
                    "Alarms based on metric math expressions cannot have EC2 actions.",
                ))
            }
            _ => {}
        },
        "aiops" => {}
        _ => {
            return Err(invalid(format!(
                "The action {arn} is not a supported alarm action."
            )))
        }
    }
    Ok(())
}

fn tags(input: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let list = pairs(input, "Tags", "Key", "Value");
    crate::tags::validate(&list)?;
    Ok(list)
}

fn query_id_ok(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Validate a `Metrics` array; returns the queries with `ReturnData` made explicit and the period.
fn metric_queries(
    queries: &[Value],
    threshold_id: Option<&str>,
) -> Result<(Vec<Value>, i64), ApiError> {
    if queries.is_empty() {
        return Err(invalid("The collection Metrics must not be empty."));
    }
    if queries.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "The collection Metrics must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let ids: HashSet<&str> = queries
        .iter()
        .filter_map(|q| q.get("Id").and_then(Value::as_str))
        .collect();
    let mut seen = HashSet::new();
    let (mut stats_n, mut exprs_n, mut returning) = (0, 0, 0);
    let mut periods = HashSet::new();
    let mut out = Vec::with_capacity(queries.len());
    for (i, q) in queries.iter().enumerate() {
        let at = |f: &str| format!("Metrics.member.{}.{f}", i + 1);
        let id = q
            .get("Id")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(error::missing_message(&at("Id"))))?;
        if !query_id_ok(id) {
            return Err(invalid(format!(
                "The value {id} for parameter {} is not matching the expected pattern ^[a-z][a-zA-Z0-9_]*$.",
                at("Id")
            )));
        }
        if !seen.insert(id) {
            return Err(invalid(format!(
                "The value {id} for parameter {} is not unique.",
                at("Id")
            )));
        }
        if let Some(p) = q.get("Period").and_then(Value::as_i64) {
            if !alarm_period_ok(p) {
                return Err(invalid(format!(
                    "The parameter {} must be 10, 20, 30, or a multiple of 60.",
                    at("Period")
                )));
            }
        }
        match (
            q.get("MetricStat").filter(|v| !v.is_null()),
            q.get("Expression").and_then(Value::as_str),
        ) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(format!(
                    "Exactly one of the parameters {} and {} must be specified.",
                    at("MetricStat"),
                    at("Expression")
                )))
            }
            (Some(ms), None) => {
                stats_n += 1;
                let metric = ms
                    .get("Metric")
                    .ok_or_else(|| invalid(error::missing_message(&at("MetricStat.Metric"))))?;
                for f in ["Namespace", "MetricName"] {
                    if metric.get(f).and_then(Value::as_str).is_none() {
                        return Err(invalid(error::missing_message(&at(&format!(
                            "MetricStat.Metric.{f}"
                        )))));
                    }
                }
                let period = ms
                    .get("Period")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| invalid(error::missing_message(&at("MetricStat.Period"))))?;
                if !alarm_period_ok(period) {
                    return Err(invalid(format!(
                        "The parameter {} must be 10, 20, 30, or a multiple of 60.",
                        at("MetricStat.Period")
                    )));
                }
                periods.insert(period);
                let stat = ms.get("Stat").and_then(Value::as_str).unwrap_or_default();
                if Statistic::parse(stat).is_none() {
                    return Err(invalid(format!(
                        "The value {stat} for parameter {} is not a valid statistic.",
                        at("MetricStat.Stat")
                    )));
                }
            }
            (None, Some(expr)) => {
                exprs_n += 1;
                if expr
                    .trim_start()
                    .get(..6)
                    .is_some_and(|w| w.eq_ignore_ascii_case("select"))
                {
                    return Err(invalid(format!(
                        "Error in expression {id}: Metrics Insights queries are not supported by this opsloop release."
                    )));
                }
                let parsed = math::parse(expr)
                    .map_err(|e| invalid(format!("Error in expression {id}: {}", e.message)))?;
                if !parsed.search_queries().is_empty() {
                    return Err(invalid(format!(
                        "Error in expression {id}: SEARCH expressions cannot be used in alarms."
                    )));
                }
                if let Some(unknown) = parsed
                    .referenced_ids()
                    .iter()
                    .find(|r| !ids.contains(r.as_str()))
                {
                    return Err(invalid(format!(
                        "Error in expression {id}: Unrecognized metric id {unknown}."
                    )));
                }
                if let Some(p) = q.get("Period").and_then(Value::as_i64) {
                    periods.insert(p);
                }
            }
        }
        let mut item = q.clone();
        let ret = q.get("ReturnData").and_then(Value::as_bool).unwrap_or(true);
        if Some(id) != threshold_id && ret {
            returning += 1;
        }
        if let Some(obj) = item.as_object_mut() {
            obj.insert("ReturnData".into(), Value::Bool(ret));
        }
        out.push(item);
    }
    if stats_n > MAX_QUERIES_OF_KIND || exprs_n > MAX_QUERIES_OF_KIND {
        return Err(invalid(format!(
            "The collection Metrics can hold at most {MAX_QUERIES_OF_KIND} metrics and {MAX_QUERIES_OF_KIND} expressions."
        )));
    }
    if returning != 1 {
        return Err(invalid(
            "Exactly one element of the metrics list should return data.",
        ));
    }
    if periods.len() > 1 {
        return Err(invalid(
            "All metrics in the Metrics list must use the same period.",
        ));
    }
    let period = periods.into_iter().next().unwrap_or(60);
    Ok((out, period))
}

/// Validate a PutMetricAlarm input.
pub fn metric_alarm(input: &Value, region: &str, now_ms: i64) -> Result<Parsed, ApiError> {
    let name = text(input, "AlarmName").ok_or_else(|| error::missing("AlarmName"))?;
    check_name(&name)?;
    if present(input, "EvaluationCriteria") {
        return Err(error::invalid_value(
            "PromQL alarms (EvaluationCriteria) are not supported by this opsloop release.",
        ));
    }
    if present(input, "EvaluationInterval") {
        return Err(invalid(
            "EvaluationInterval can only be specified for alarms with EvaluationCriteria.",
        ));
    }
    let metrics = input
        .get("Metrics")
        .and_then(Value::as_array)
        .filter(|_| present(input, "Metrics"));
    let threshold_id = text(input, "ThresholdMetricId");
    let mut cfg = MetricAlarmConfig {
        namespace: text(input, "Namespace"),
        metric_name: text(input, "MetricName"),
        dimensions: pairs(input, "Dimensions", "Name", "Value"),
        statistic: text(input, "Statistic"),
        extended_statistic: text(input, "ExtendedStatistic"),
        period: int(input, "Period")?,
        unit: text(input, "Unit"),
        evaluation_periods: 0,
        datapoints_to_alarm: int(input, "DatapointsToAlarm")?,
        threshold: None,
        threshold_metric_id: threshold_id.clone(),
        comparison_operator: String::new(),
        treat_missing_data: text(input, "TreatMissingData"),
        evaluate_low_sample_count_percentile: text(input, "EvaluateLowSampleCountPercentile"),
        metrics: None,
    };
    let period = match metrics {
        Some(queries) => {
            if cfg.metric_name.is_some() {
                return Err(invalid(
                    "MetricName should not be set if list of Metrics is set.",
                ));
            }
            for key in [
                "Namespace",
                "Dimensions",
                "Period",
                "Unit",
                "Statistic",
                "ExtendedStatistic",
            ] {
                if present(input, key) {
                    return Err(invalid(format!(
                        "{key} should not be set if list of Metrics is set."
                    )));
                }
            }
            let (queries, period) = metric_queries(queries, threshold_id.as_deref())?;
            cfg.metrics = Some(queries);
            period
        }
        None => {
            if cfg.metric_name.is_none() {
                return Err(invalid("MetricName must not be null"));
            }
            if cfg.namespace.is_none() {
                return Err(invalid("Namespace must not be null"));
            }
            match (&cfg.statistic, &cfg.extended_statistic) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
                    ))
                }
                (None, None) => {
                    return Err(invalid("Either Statistic or ExtendedStatistic must be specified."))
                }
                (Some(s), None) if stats::parse_standard(s).is_none() => {
                    return Err(invalid(format!("The value {s} for parameter Statistic is invalid.")))
                }
                (None, Some(e)) if stats::parse_extended(e).is_none() => {
                    return Err(invalid(format!("The value {e} for parameter ExtendedStatistic is invalid.")))
                }
                _ => {}
            }
            let mut names = HashSet::new();
            if cfg.dimensions.iter().any(|(n, _)| !names.insert(n.clone())) {
                return Err(invalid(
                    "The parameter Dimensions must not contain duplicate names.",
                ));
            }
            if threshold_id.is_some() {
                return Err(invalid(
                    "ThresholdMetricId can only be used with a list of Metrics.",
                ));
            }
            let p = cfg
                .period
                .ok_or_else(|| invalid("Period must not be null"))?;
            if !alarm_period_ok(p) {
                return Err(invalid(
                    "The parameter Period must be 10, 20, 30, or a multiple of 60.",
                ));
            }
            p
        }
    };
    let n = int(input, "EvaluationPeriods")?
        .ok_or_else(|| invalid("EvaluationPeriods must not be null"))?;
    if n < 1 {
        return Err(invalid("EvaluationPeriods must be at least 1."));
    }
    cfg.evaluation_periods = n;
    if let Some(m) = cfg.datapoints_to_alarm {
        if m < 1 {
            return Err(invalid("DatapointsToAlarm must be at least 1."));
        }
        if m > n {
            return Err(invalid(
                "DatapointsToAlarm must be less than or equal to EvaluationPeriods",
            ));
        }
    }
    let span = period.saturating_mul(n);
    if period < 3600 && span > MAX_SPAN_SHORT {
        return Err(invalid(format!(
            "The evaluation period of an alarm with a period shorter than one hour (Period * EvaluationPeriods) must not exceed {MAX_SPAN_SHORT} seconds."
        )));
    }
    if span > MAX_SPAN {
        return Err(invalid(format!(
            "The evaluation period of an alarm (Period * EvaluationPeriods) must not exceed {MAX_SPAN} seconds."
        )));
    }
    let op_text = text(input, "ComparisonOperator")
        .ok_or_else(|| invalid("ComparisonOperator must not be null"))?;
    let op = Comparison::parse(&op_text).ok_or_else(|| {
        invalid(format!(
            "The value {op_text} for parameter ComparisonOperator is invalid."
        ))
    })?;
    cfg.comparison_operator = op_text;
    let threshold = match input.get("Threshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            as_f64(v)
                .filter(|t| t.is_finite())
                .ok_or_else(|| invalid("The parameter Threshold must be a finite number."))?,
        ),
    };
    if op.is_band() {
        if threshold.is_some() {
            return Err(invalid(
                "Threshold should not be set for an alarm based on an anomaly detection model; use ThresholdMetricId.",
            ));
        }
        let Some(tid) = &threshold_id else {
            return Err(invalid(format!(
                "ThresholdMetricId must be set when ComparisonOperator is {}.",
                op.as_str()
            )));
        };
        let band = cfg
            .metrics
            .iter()
            .flatten()
            .find(|q| q.get("Id").and_then(Value::as_str) == Some(tid.as_str()));
        let is_band = band
            .and_then(|q| q.get("Expression"))
            .and_then(Value::as_str)
            .and_then(|e| math::parse(e).ok())
            .is_some_and(|e| {
                matches!(
                    e.root,
                    math::Node::Call {
                        func: math::Func::AnomalyDetectionBand,
                        ..
                    }
                )
            });
        if !is_band {
            return Err(invalid(format!(
                "ThresholdMetricId {tid} must be the Id of an ANOMALY_DETECTION_BAND expression in Metrics."
            )));
        }
    } else {
        if threshold_id.is_some() {
            return Err(invalid(format!(
                "ThresholdMetricId can only be used with the anomaly detection comparison operators, not {}.",
                op.as_str()
            )));
        }
        cfg.threshold = Some(threshold.ok_or_else(|| invalid("Threshold must not be null"))?);
    }
    if let Some(t) = &cfg.treat_missing_data {
        if TreatMissing::parse(t).is_none() {
            return Err(invalid(format!(
                "The value {t} for parameter TreatMissingData is invalid. Valid values are breaching, notBreaching, ignore and missing."
            )));
        }
    }
    if let Some(e) = &cfg.evaluate_low_sample_count_percentile {
        if e != "evaluate" && e != "ignore" {
            return Err(invalid(format!(
                "The value {e} for parameter EvaluateLowSampleCountPercentile is invalid. Valid values are evaluate and ignore."
            )));
        }
    }
    let owner = if cfg.metrics.is_some() {
        Owner::MathAlarm
    } else {
        Owner::MetricAlarm
    };
    let [ok, alarm, insufficient] = actions(input, region, owner)?;
    Ok(Parsed {
        config: AlarmConfig {
            name,
            description: text(input, "AlarmDescription"),
            actions_enabled: input
                .get("ActionsEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            ok_actions: ok,
            alarm_actions: alarm,
            insufficient_data_actions: insufficient,
            configuration_updated_ms: now_ms,
            kind: AlarmKind::Metric(cfg),
        },
        tags: tags(input)?,
    })
}

/// Validate a PutCompositeAlarm input (references are checked against existing alarms by the
/// caller).
pub fn composite_alarm(
    input: &Value,
    region: &str,
    now_ms: i64,
) -> Result<(Parsed, rule::Rule), ApiError> {
    let name = text(input, "AlarmName").ok_or_else(|| error::missing("AlarmName"))?;
    check_name(&name)?;
    let rule_text = text(input, "AlarmRule").ok_or_else(|| error::missing("AlarmRule"))?;
    let parsed = rule::parse(&rule_text).map_err(|e| invalid(e.0))?;
    let distinct: HashSet<&str> = parsed.references().into_iter().collect();
    if distinct.len() > rule::MAX_CHILDREN {
        return Err(invalid(format!(
            "The alarm rule can reference at most {} alarms.",
            rule::MAX_CHILDREN
        )));
    }
    let suppressor = text(input, "ActionsSuppressor");
    let wait = int(input, "ActionsSuppressorWaitPeriod")?;
    let extension = int(input, "ActionsSuppressorExtensionPeriod")?;
    match &suppressor {
        Some(_) => {
            if wait.is_none() {
                return Err(invalid("ActionsSuppressorWaitPeriod must be specified when ActionsSuppressor is specified."));
            }
            if extension.is_none() {
                return Err(invalid("ActionsSuppressorExtensionPeriod must be specified when ActionsSuppressor is specified."));
            }
        }
        None => {
            if wait.is_some() || extension.is_some() {
                return Err(invalid(
                    "ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod can only be specified with ActionsSuppressor.",
                ));
            }
        }
    }
    if wait.is_some_and(|w| w < 0) || extension.is_some_and(|e| e < 0) {
        return Err(invalid("Suppressor periods must not be negative."));
    }
    let [ok, alarm, insufficient] = actions(input, region, Owner::Composite)?;
    let config = AlarmConfig {
        name,
        description: text(input, "AlarmDescription"),
        actions_enabled: input
            .get("ActionsEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        ok_actions: ok,
        alarm_actions: alarm,
        insufficient_data_actions: insufficient,
        configuration_updated_ms: now_ms,
        kind: AlarmKind::Composite(CompositeAlarmConfig {
            alarm_rule: rule_text,
            actions_suppressor: suppressor,
            actions_suppressor_wait_period: wait,
            actions_suppressor_extension_period: extension,
        }),
    };
    Ok((
        Parsed {
            config,
            tags: tags(input)?,
        },
        parsed,
    ))
}
