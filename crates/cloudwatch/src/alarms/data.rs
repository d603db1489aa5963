//! Reading an alarm's datapoints from the metric store: one value per period over a window of whole
//! periods aligned to the epoch.
//!
//! * Single-metric alarms aggregate the alarm's series directly (every unit of the metric, or the
//!   one `Unit` named), compute the statistic per period and the sample count, and flag
//!   percentiles computed from too few samples.
//! * Metric-math alarms run their `Metrics` through GetMetricData over the same window and take the
//!   series of the query with `ReturnData`; anomaly-detection alarms also take the band series of
//!   `ThresholdMetricId` (lower, then upper).

use std::collections::HashMap;

use opsloop_core::{RequestContext, Value};
use opsloop_tsdb::{MetricStore, SeriesKey, TsdbError};
use serde_json::json;

use super::evaluate::enough_samples;
use super::model::MetricAlarmConfig;
use crate::anomaly::Models;
use crate::doc::as_f64;
use crate::fetch::merge_series;
use crate::get_data;
use crate::stats::Statistic;

/// The raw datapoint of one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Raw {
    pub value: f64,
    pub sample_count: Option<f64>,
    pub band: Option<(f64, f64)>,
    pub low_sample: bool,
}

/// The window read: `periods` periods of `period_ms` from `start_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_ms: i64,
    pub period_ms: i64,
    pub periods: usize,
}

impl Span {
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.period_ms * self.periods as i64
    }

    fn index(&self, ts_ms: i64) -> Option<usize> {
        if ts_ms < self.start_ms || (ts_ms - self.start_ms) % self.period_ms != 0 {
            return None;
        }
        let i = ((ts_ms - self.start_ms) / self.period_ms) as usize;
        (i < self.periods).then_some(i)
    }
}

/// Datapoints of a single-metric alarm.
pub fn single_metric(
    store: &dyn MetricStore,
    series: &[SeriesKey],
    statistic: &Statistic,
    percentile: Option<f64>,
    span: Span,
) -> Result<Vec<Option<Raw>>, TsdbError> {
    let mut parts = Vec::with_capacity(series.len());
    for key in series {
        parts.push(store.aggregate(
            key,
            span.start_ms,
            span.end_ms(),
            span.period_ms,
            statistic.needs_values(),
        )?);
    }
    let buckets = if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        merge_series(parts)
    };
    let mut out = vec![None; span.periods];
    for b in &buckets {
        let (Some(i), Some(value)) = (span.index(b.start_ms), statistic.compute(b)) else {
            continue;
        };
        if !value.is_finite() {
            continue;
        }
        out[i] = Some(Raw {
            value,
            sample_count: Some(b.count),
            band: None,
            low_sample: percentile.is_some_and(|p| !enough_samples(p, b.count)),
        });
    }
    Ok(out)
}

/// Why a metric-math alarm could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MathFailure(pub String);

/// Datapoints of a metric-math alarm.
pub fn metric_math(
    store: &dyn MetricStore,
    models: &Models,
    account: &str,
    region: &str,
    cfg: &MetricAlarmConfig,
    span: Span,
    now_ms: i64,
) -> Result<Vec<Option<Raw>>, MathFailure> {
    let queries = cfg.metrics.clone().unwrap_or_default();
    let return_id = queries
        .iter()
        .find(|q| {
            q.get("ReturnData").and_then(Value::as_bool) == Some(true)
                && q.get("Id").and_then(Value::as_str) != cfg.threshold_metric_id.as_deref()
        })
        .and_then(|q| q.get("Id").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let input = json!({
        "MetricDataQueries": queries,
        "StartTime": span.start_ms as f64 / 1000.0,
        "EndTime": span.end_ms() as f64 / 1000.0,
        "ScanBy": "TimestampAscending",
    });
    let ctx = RequestContext::internal(account, region, "GetMetricData");
    let output = get_data::get_metric_data_with(store, &ctx, input, now_ms, models)
        .map_err(|e| MathFailure(e.message))?;
    let mut by_id: HashMap<String, Vec<Vec<(i64, f64)>>> = HashMap::new();
    for r in output
        .get("MetricDataResults")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = r.get("Id").and_then(Value::as_str).unwrap_or_default();
        let ts = r.get("Timestamps").and_then(Value::as_array);
        let vs = r.get("Values").and_then(Value::as_array);
        let points = ts
            .into_iter()
            .flatten()
            .zip(vs.into_iter().flatten())
            .filter_map(|(t, v)| Some(((as_f64(t)? * 1000.0).round() as i64, as_f64(v)?)))
            .collect();
        by_id.entry(id.to_string()).or_default().push(points);
    }
    let mut out = vec![None; span.periods];
    for (t, v) in by_id
        .get(&return_id)
        .and_then(|s| s.first())
        .into_iter()
        .flatten()
    {
        if let Some(i) = span.index(*t) {
            if v.is_finite() {
                out[i] = Some(Raw {
                    value: *v,
                    sample_count: None,
                    band: None,
                    low_sample: false,
                });
            }
        }
    }
    if let Some(tid) = &cfg.threshold_metric_id {
        let parts = by_id.get(tid).cloned().unwrap_or_default();
        let lower: HashMap<i64, f64> = parts
            .first()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let upper: HashMap<i64, f64> = parts
            .get(1)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (i, slot) in out.iter_mut().enumerate() {
            let t = span.start_ms + i as i64 * span.period_ms;
            let band = match (lower.get(&t), upper.get(&t)) {
                (Some(lo), Some(hi)) => Some((*lo, *hi)),
                _ => None,
            };
            match (slot, band) {
                (Some(raw), Some(b)) => raw.band = Some(b),
                // Without a band the datapoint cannot be compared: it counts as missing.
                (slot @ Some(_), None) => *slot = None,
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_indexes_period_starts_only() {
        let s = Span {
            start_ms: 60_000,
            period_ms: 60_000,
            periods: 3,
        };
        assert_eq!(s.end_ms(), 240_000);
        assert_eq!(s.index(60_000), Some(0));
        assert_eq!(s.index(180_000), Some(2));
        assert_eq!(s.index(240_000), None);
        assert_eq!(s.index(90_000), None);
        assert_eq!(s.index(0), None);
    }
}
