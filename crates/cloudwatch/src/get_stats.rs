//! GetMetricStatistics: statistics of one metric (exact namespace, name and full dimension set) per
//! period.
//!
//! Behaviour (API reference `GetMetricStatistics`): `StartTime` must be before `EndTime`; periods as
//! in [`crate::window`]; at least one of `Statistics` and `ExtendedStatistics` (the reference says
//! "either ... but not both", yet CloudWatch serves requests with both, and so do we); at most 1,440
//! datapoints per request, else `InvalidParameterCombination`. Without `Unit`, each unit the metric was
//! published with yields its own datapoints, stamped with that unit; with `Unit`, only that unit.
//! Datapoints carry only the requested statistics; an extended statistic that cannot be computed for
//! a period (statistic sets, negative values) is left out of that datapoint's map. Datapoints are
//! returned in ascending time order (CloudWatch promises no order).

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_tsdb::MetricStore;
use serde::Deserialize;
use serde_json::Map;

use crate::doc::{f64_value, ms_to_value, secs_to_ms};
use crate::error::{self, InternalError};
use crate::fetch::{aggregate, find_series, MetricId};
use crate::stats::{parse_extended, parse_standard, Statistic};
use crate::window::{period_count, period_message, valid_period, Window};

/// Most datapoints one request may ask for.
pub const MAX_DATAPOINTS: i64 = 1440;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionInput {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricStatisticsInput {
    namespace: String,
    metric_name: String,
    #[serde(default)]
    dimensions: Vec<DimensionInput>,
    start_time: f64,
    end_time: f64,
    period: i64,
    #[serde(default)]
    statistics: Vec<String>,
    #[serde(default)]
    extended_statistics: Vec<String>,
    unit: Option<String>,
}

const STANDARD: &str = "SampleCount, Average, Sum, Minimum, Maximum";

/// GetMetricStatistics.
pub fn get_metric_statistics(
    store: &dyn MetricStore,
    ctx: &RequestContext,
    input: Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    for required in ["Namespace", "MetricName", "StartTime", "EndTime", "Period"] {
        if input.get(required).is_none_or(Value::is_null) {
            return Err(error::missing(required));
        }
    }
    let req: GetMetricStatisticsInput = serde_json::from_value(input)
        .map_err(|e| error::invalid_value(format!("The request is malformed: {e}")))?;

    if !valid_period(req.period) {
        return Err(error::invalid_value(period_message("Period")));
    }
    let (start_ms, end_ms) = (secs_to_ms(req.start_time), secs_to_ms(req.end_time));
    if start_ms >= end_ms {
        return Err(error::invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let mut stats: Vec<(Statistic, &str)> = Vec::new();
    for (i, name) in req.statistics.iter().enumerate() {
        let stat = parse_standard(name).ok_or_else(|| {
            error::invalid_value(format!(
                "The parameter Statistics.member.{} must be a value in the set [ {STANDARD} ].",
                i + 1
            ))
        })?;
        if !stats.iter().any(|(s, _)| *s == stat) {
            stats.push((stat, name));
        }
    }
    let mut extended = Vec::new();
    for (i, name) in req.extended_statistics.iter().enumerate() {
        let stat = parse_extended(name).ok_or_else(|| {
            error::invalid_value(format!(
                "The value {name} for parameter ExtendedStatistics.member.{} is not a valid statistic.",
                i + 1
            ))
        })?;
        if !extended.iter().any(|(_, n): &(_, &String)| *n == name) {
            extended.push((Statistic::Extended(stat), name));
        }
    }
    if stats.is_empty() && extended.is_empty() {
        return Err(error::combination(
            "Must specify either Statistics or ExtendedStatistics.",
        ));
    }
    let dims: Vec<(String, String)> = req
        .dimensions
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect();
    let id = MetricId::new(req.namespace, req.metric_name, dims);
    if let Some(w) = id.dimensions.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(error::invalid_value(format!(
            "The dimension name {} is specified more than once in Dimensions.",
            w[0].0
        )));
    }
    let window = Window::new(start_ms, end_ms, req.period, now_ms);
    let requested = period_count(window.start_ms, end_ms, req.period);
    if requested > MAX_DATAPOINTS {
        return Err(error::combination(format!(
            "You have requested up to {requested} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. \
             You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )));
    }

    let mut datapoints: Vec<(i64, String, Value)> = Vec::new();
    if window.retained(now_ms) {
        let series = find_series(
            store,
            &ctx.account_id,
            &ctx.region,
            &id,
            req.unit.as_deref(),
        )
        .map_err(InternalError::from)?;
        let with_values = !extended.is_empty();
        for s in &series {
            for b in aggregate(store, s, &window, with_values).map_err(InternalError::from)? {
                let mut dp = Map::new();
                dp.insert("Timestamp".into(), ms_to_value(b.start_ms));
                for (stat, name) in &stats {
                    if let Some(v) = stat.compute(&b) {
                        dp.insert((*name).to_string(), f64_value(v));
                    }
                }
                dp.insert("Unit".into(), Value::String(s.key.unit.clone()));
                if with_values {
                    let mut ext = Map::new();
                    for (stat, name) in &extended {
                        if let Some(v) = stat.compute(&b) {
                            ext.insert((*name).clone(), f64_value(v));
                        }
                    }
                    if !ext.is_empty() {
                        dp.insert("ExtendedStatistics".into(), Value::Object(ext));
                    }
                }
                datapoints.push((b.start_ms, s.key.unit.clone(), Value::Object(dp)));
            }
        }
    }
    datapoints.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut out = Map::new();
    out.insert("Label".into(), Value::String(id.metric_name));
    out.insert(
        "Datapoints".into(),
        Value::Array(datapoints.into_iter().map(|(_, _, v)| v).collect()),
    );
    Ok(Value::Object(out))
}
