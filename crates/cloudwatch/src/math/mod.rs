//! CloudWatch metric math: the expression language of GetMetricData (and metric-math alarms), parsed
//! and evaluated over time series. (SKELETON: API fixed; implementation pending.)

/// A time series as metric math sees it: ascending timestamps (seconds since the epoch), one value each.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

/// The value of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum MathValue {
    Scalar(f64),
    Series(Series),
    /// An array of series (from `METRICS()`, `SEARCH()`, or a function applied to an array).
    Array(Vec<Series>),
}

/// A parse or evaluation error; `message` is what GetMetricData reports (AWS's wording where known).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct MathError {
    pub message: String,
}

/// A parsed `SEARCH()` search expression (its first argument).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {}

/// The identity of a metric, for [`SearchQuery::matches`].
#[derive(Debug, Clone, PartialEq)]
pub struct MetricIdentity {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
}

impl SearchQuery {
    /// Whether a metric matches this search expression.
    pub fn matches(&self, metric: &MetricIdentity) -> bool {
        let _ = metric;
        todo!()
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {}

impl Expr {
    /// Ids of other queries the expression refers to (for ordering and cycle detection).
    pub fn referenced_ids(&self) -> Vec<String> {
        todo!()
    }
}

/// What evaluation needs from the caller.
pub trait MathEnv {
    /// The value of query `id` (a MetricStat result or an already-evaluated expression).
    fn lookup(&self, id: &str) -> Option<MathValue>;
    /// Every query id visible to `METRICS()` with its value, in request order; `filter` is the
    /// optional substring argument of `METRICS('...')` matched against labels.
    fn metrics(&self, filter: Option<&str>) -> Vec<Series>;
    /// Evaluate `SEARCH(query, stat, period)`: one series per matching metric.
    fn search(&self, query: &SearchQuery, stat: &str, period: i64) -> Result<Vec<Series>, MathError>;
    /// The period (seconds) of the enclosing query, used by `RATE`, `PERIOD`, `FILL` etc.
    fn period(&self) -> i64;
    /// Query window, seconds since the epoch.
    fn start_time(&self) -> i64;
    fn end_time(&self) -> i64;
}

/// Parse an expression.
pub fn parse(expression: &str) -> Result<Expr, MathError> {
    let _ = expression;
    todo!()
}

/// Evaluate a parsed expression.
pub fn eval(expr: &Expr, env: &dyn MathEnv) -> Result<MathValue, MathError> {
    let _ = (expr, env);
    todo!()
}
