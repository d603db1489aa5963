//! The metric-math environment of one GetMetricData expression: values of other queries,
//! `METRICS()`, and `SEARCH()` over the caller's stored metrics.
//!
//! `SEARCH()` matches every stored metric of the account and region against the search expression
//! (`SearchQuery::matches`), keeps at most 500 metrics (reporting `MaxMetricsExceeded` beyond), merges
//! a metric's units, and returns one series per metric that has datapoints in the window. A result's
//! label is the metric name followed by the values of the dimensions that differ between the
//! results (just the metric name when nothing differs), like the CloudWatch console's search labels.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use opsloop_tsdb::{MetricStore, SeriesFilter, SeriesInfo};

use crate::anomaly::Models;
use crate::fetch::{aggregate_metric, MetricId};
use crate::get_data::labels::LabelProps;
use crate::math::{MathEnv, MathError, MathValue, MetricIdentity, SearchQuery, Series};
use crate::stats::Statistic;
use crate::window::{valid_period, Window};

/// Most metrics one `SEARCH()` returns.
pub const MAX_SEARCH_METRICS: usize = 500;

/// Request-wide facts every expression environment shares.
pub struct Shared<'a> {
    pub store: &'a dyn MetricStore,
    pub account: &'a str,
    pub region: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    pub now_ms: i64,
    /// Values of evaluated queries by id.
    pub values: &'a HashMap<String, MathValue>,
    /// Ids of `MetricStat` queries in request order (what `METRICS()` sees).
    pub metric_ids: &'a [String],
    /// Label props of series produced by `SEARCH()`, by label.
    pub search_props: RefCell<HashMap<String, LabelProps>>,
    /// Request-level `(Code, Value)` messages.
    pub messages: RefCell<Vec<(String, String)>>,
    /// Properties of the `MetricStat` queries by Id (what `ANOMALY_DETECTION_BAND` models).
    pub props: &'a HashMap<String, LabelProps>,
    /// Trained anomaly detection models.
    pub models: &'a Models,
}

/// The environment of one expression.
pub struct Env<'a, 'b> {
    pub shared: &'b Shared<'a>,
    pub period: i64,
}

fn math_error(message: impl Into<String>) -> MathError {
    MathError {
        message: message.into(),
    }
}

impl Env<'_, '_> {
    fn window(&self, period: i64) -> Window {
        let s = self.shared;
        Window::new(s.start_ms, s.end_ms, period, s.now_ms)
    }
}

/// Labels for a set of search results: the metric name plus the differing dimension values.
fn search_labels(ids: &[&MetricId]) -> Vec<String> {
    let differs = |f: &dyn Fn(&MetricId) -> Option<String>| {
        ids.first()
            .is_some_and(|first| ids.iter().any(|id| f(id) != f(first)))
    };
    let mut names: Vec<&str> = ids
        .iter()
        .flat_map(|id| id.dimensions.iter().map(|(n, _)| n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let varying: Vec<&str> = names
        .into_iter()
        .filter(|name| {
            differs(&|id: &MetricId| {
                id.dimensions
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
        })
        .collect();
    ids.iter()
        .map(|id| {
            let mut parts = vec![id.metric_name.clone()];
            for name in &varying {
                if let Some((_, v)) = id.dimensions.iter().find(|(n, _)| n == name) {
                    parts.push(v.clone());
                }
            }
            parts.join(" ")
        })
        .collect()
}

impl MathEnv for Env<'_, '_> {
    fn lookup(&self, id: &str) -> Option<MathValue> {
        self.shared.values.get(id).cloned()
    }

    fn metrics(&self, filter: Option<&str>) -> Vec<Series> {
        // CloudWatch: METRICS('s') returns the metrics whose Id contains `s`; expressions excluded.
        self.shared
            .metric_ids
            .iter()
            .filter(|id| filter.is_none_or(|f| id.contains(f)))
            .filter_map(|id| match self.shared.values.get(id) {
                Some(MathValue::Series(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    fn search(
        &self,
        query: &SearchQuery,
        stat: &str,
        period: i64,
    ) -> Result<Vec<Series>, MathError> {
        let statistic = Statistic::parse(stat)
            .ok_or_else(|| math_error(format!("Invalid statistic {stat} in SEARCH.")))?;
        if !valid_period(period) {
            return Err(math_error(format!("Invalid period {period} in SEARCH.")));
        }
        let s = self.shared;
        let filter = SeriesFilter {
            account: s.account.to_string(),
            region: s.region.to_string(),
            ..SeriesFilter::default()
        };
        let all = s.store.list_series(&filter).map_err(|e| {
            tracing::error!(error = %e, "search could not list series");
            math_error("SEARCH failed with an internal error.")
        })?;
        let mut by_metric: BTreeMap<MetricId, Vec<SeriesInfo>> = BTreeMap::new();
        let mut verdicts: HashMap<MetricId, bool> = HashMap::new();
        for info in all {
            let id = MetricId::new(
                info.key.namespace.clone(),
                info.key.metric_name.clone(),
                info.key.dimensions.clone(),
            );
            let matched = *verdicts.entry(id.clone()).or_insert_with(|| {
                query.matches(&MetricIdentity {
                    namespace: id.namespace.clone(),
                    metric_name: id.metric_name.clone(),
                    dimensions: id.dimensions.clone(),
                })
            });
            if matched {
                by_metric.entry(id).or_default().push(info);
            }
        }
        if by_metric.len() > MAX_SEARCH_METRICS {
            s.messages.borrow_mut().push((
                "MaxMetricsExceeded".into(),
                "Maximum number of allowed metrics exceeded".into(),
            ));
        }
        let window = self.window(period);
        if !window.retained(s.now_ms) {
            return Ok(Vec::new());
        }
        let mut found: Vec<(&MetricId, Vec<i64>, Vec<f64>)> = Vec::new();
        for (id, infos) in by_metric.iter().take(MAX_SEARCH_METRICS) {
            let buckets = aggregate_metric(s.store, infos, &window, statistic.needs_values())
                .map_err(|e| {
                    tracing::error!(error = %e, "search could not aggregate a series");
                    math_error("SEARCH failed with an internal error.")
                })?;
            let (mut ts, mut vals) = (Vec::new(), Vec::new());
            for b in &buckets {
                if let Some(v) = statistic.compute(b) {
                    ts.push(b.start_ms / 1000);
                    vals.push(v);
                }
            }
            if !ts.is_empty() {
                found.push((id, ts, vals));
            }
        }
        let labels = search_labels(&found.iter().map(|(id, _, _)| *id).collect::<Vec<_>>());
        let mut props = s.search_props.borrow_mut();
        Ok(found
            .into_iter()
            .zip(labels)
            .map(|((id, timestamps, values), label)| {
                props.insert(
                    label.clone(),
                    LabelProps {
                        namespace: id.namespace.clone(),
                        metric_name: id.metric_name.clone(),
                        dimensions: id.dimensions.clone(),
                        period,
                        stat: stat.to_string(),
                        account: s.account.to_string(),
                        region: s.region.to_string(),
                    },
                );
                Series {
                    label,
                    timestamps,
                    values,
                }
            })
            .collect())
    }

    fn period(&self) -> i64 {
        self.period
    }

    fn start_time(&self) -> i64 {
        self.window(self.period).start_ms.div_euclid(1000)
    }

    fn end_time(&self) -> i64 {
        self.shared.end_ms.div_euclid(1000)
    }

    fn anomaly_band(&self, id: &str, k: f64) -> Result<(Series, Series), MathError> {
        let s = self.shared;
        let Some(props) = s.props.get(id) else {
            return Err(math_error(format!(
                "ANOMALY_DETECTION_BAND needs the Id of a metric (a MetricStat query), and {id} is not one."
            )));
        };
        let metric = MetricId::new(
            props.namespace.clone(),
            props.metric_name.clone(),
            props.dimensions.clone(),
        );
        let train_end = s.end_ms.min(s.now_ms);
        let model = s
            .models
            .model(
                s.store,
                s.account,
                s.region,
                &metric,
                &props.stat,
                props.period,
                train_end,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "anomaly model training failed");
                math_error("ANOMALY_DETECTION_BAND failed with an internal error.")
            })?;
        let label = |side: &str| format!("{} (expected) {side}", props.metric_name);
        let (mut lower, mut upper) = (
            Series {
                label: label("Lower"),
                timestamps: Vec::new(),
                values: Vec::new(),
            },
            Series {
                label: label("Upper"),
                timestamps: Vec::new(),
                values: Vec::new(),
            },
        );
        if let Some(model) = model {
            let window = self.window(props.period);
            for t in window
                .period_starts()
                .take(super::MAX_SCALAR_PERIODS as usize)
            {
                let (lo, hi) = model.band(t, k);
                lower.timestamps.push(t / 1000);
                lower.values.push(lo);
                upper.timestamps.push(t / 1000);
                upper.values.push(hi);
            }
        }
        Ok((lower, upper))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, dims: &[(&str, &str)]) -> MetricId {
        MetricId::new(
            "N".into(),
            name.into(),
            dims.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn search_labels_show_what_differs() {
        let a = id("CPU", &[("Host", "a"), ("Az", "1")]);
        let b = id("CPU", &[("Host", "b"), ("Az", "1")]);
        assert_eq!(search_labels(&[&a, &b]), vec!["CPU a", "CPU b"]);
        assert_eq!(search_labels(&[&a]), vec!["CPU"]);
        let c = id("Mem", &[("Host", "a"), ("Az", "2")]);
        assert_eq!(search_labels(&[&a, &c]), vec!["CPU 1", "Mem 2"]);
    }
}
