//! A [`MathEnv`] for the metric math tests: named values, a `METRICS()` list filtered on Ids, and a
//! small metric catalog for `SEARCH()`.

use std::cell::RefCell;

use super::{eval, parse, MathEnv, MathError, MathValue, MetricIdentity, SearchQuery, Series};

/// A series from `(timestamp, value)` pairs.
pub(crate) fn ts(label: &str, points: &[(i64, f64)]) -> Series {
    Series {
        label: label.to_string(),
        timestamps: points.iter().map(|p| p.0).collect(),
        values: points.iter().map(|p| p.1).collect(),
    }
}

/// The points of a series, for compact assertions.
pub(crate) fn pts(s: &Series) -> Vec<(i64, f64)> {
    s.timestamps
        .iter()
        .copied()
        .zip(s.values.iter().copied())
        .collect()
}

pub(crate) struct TestEnv {
    /// Values by Id.
    pub vars: Vec<(String, MathValue)>,
    /// Ids that are metrics (visible to `METRICS()`), in request order.
    pub metric_ids: Vec<String>,
    pub period: i64,
    pub start: i64,
    pub end: i64,
    /// Metrics `SEARCH()` can find, each with the series it returns.
    pub catalog: Vec<(MetricIdentity, Series)>,
    /// `(stat, period)` of every `search` call.
    pub searches: RefCell<Vec<(String, i64)>>,
    /// When set, `ANOMALY_DETECTION_BAND(id, k)` is the series of `id` plus/minus `k` times this.
    pub band_spread: Option<f64>,
}

impl TestEnv {
    /// Period 60, window [0, 300): the grid is 0, 60, 120, 180, 240.
    pub fn new() -> Self {
        TestEnv {
            vars: Vec::new(),
            metric_ids: Vec::new(),
            period: 60,
            start: 0,
            end: 300,
            catalog: Vec::new(),
            searches: RefCell::new(Vec::new()),
            band_spread: None,
        }
    }

    /// Add a metric query result (visible to `METRICS()`); its label is its Id.
    pub fn metric(mut self, id: &str, points: &[(i64, f64)]) -> Self {
        self.vars
            .push((id.to_string(), MathValue::Series(ts(id, points))));
        self.metric_ids.push(id.to_string());
        self
    }

    /// Add an already-evaluated expression result (not visible to `METRICS()`).
    pub fn value(mut self, id: &str, v: MathValue) -> Self {
        self.vars.push((id.to_string(), v));
        self
    }

    /// Parse and evaluate.
    pub fn run(&self, expression: &str) -> Result<MathValue, MathError> {
        eval(&parse(expression)?, self)
    }

    /// Parse and evaluate, expecting a single series.
    pub fn series(&self, expression: &str) -> Vec<(i64, f64)> {
        match self.run(expression) {
            Ok(MathValue::Series(s)) => pts(&s),
            other => panic!("{expression}: expected a series, got {other:?}"),
        }
    }

    /// Parse and evaluate, expecting a scalar.
    pub fn scalar(&self, expression: &str) -> f64 {
        match self.run(expression) {
            Ok(MathValue::Scalar(x)) => x,
            other => panic!("{expression}: expected a scalar, got {other:?}"),
        }
    }

    /// Parse and evaluate, expecting an array; returns `(label, points)` per member.
    pub fn array(&self, expression: &str) -> Vec<(String, Vec<(i64, f64)>)> {
        match self.run(expression) {
            Ok(MathValue::Array(items)) => {
                items.iter().map(|s| (s.label.clone(), pts(s))).collect()
            }
            other => panic!("{expression}: expected an array, got {other:?}"),
        }
    }

    /// Parse and evaluate, expecting an error; returns its message.
    pub fn error(&self, expression: &str) -> String {
        match self.run(expression) {
            Err(e) => e.message,
            Ok(v) => panic!("{expression}: expected an error, got {v:?}"),
        }
    }
}

impl MathEnv for TestEnv {
    fn lookup(&self, id: &str) -> Option<MathValue> {
        self.vars
            .iter()
            .find(|(name, _)| name == id)
            .map(|(_, v)| v.clone())
    }

    fn metrics(&self, filter: Option<&str>) -> Vec<Series> {
        self.metric_ids
            .iter()
            .filter(|id| filter.is_none_or(|f| id.contains(f)))
            .filter_map(|id| match self.lookup(id) {
                Some(MathValue::Series(s)) => Some(s),
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
        self.searches.borrow_mut().push((stat.to_string(), period));
        Ok(self
            .catalog
            .iter()
            .filter(|(m, _)| query.matches(m))
            .map(|(_, s)| s.clone())
            .collect())
    }

    fn period(&self) -> i64 {
        self.period
    }

    fn start_time(&self) -> i64 {
        self.start
    }

    fn end_time(&self) -> i64 {
        self.end
    }

    fn anomaly_band(&self, id: &str, k: f64) -> Result<(Series, Series), MathError> {
        let Some(spread) = self.band_spread else {
            return Err(MathError::new(format!(
                "ANOMALY_DETECTION_BAND is not available for {id} here"
            )));
        };
        let Some(MathValue::Series(s)) = self.lookup(id) else {
            return Err(MathError::new(format!("{id} is not a metric")));
        };
        let shift = |d: f64| Series {
            label: s.label.clone(),
            timestamps: s.timestamps.clone(),
            values: s.values.iter().map(|v| v + d).collect(),
        };
        Ok((shift(-k * spread), shift(k * spread)))
    }
}
