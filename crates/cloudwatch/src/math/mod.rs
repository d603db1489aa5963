//! CloudWatch metric math: the expression language of GetMetricData (and metric-math alarms), parsed
//! and evaluated over time series.
//!
//! The spec is the CloudWatch user guide: "Metric math syntax and functions" (using-metric-math) and
//! "CloudWatch search expression syntax" (search-expression-syntax). Layout:
//!
//! * [`lexer`] — tokens of an expression;
//! * [`parser`] / [`ast`] — the syntax tree ([`Expr`], [`Node`]) with a nesting cap, so hostile input
//!   errors cleanly instead of overflowing the stack;
//! * [`eval`] — operators and the scalar / time-series / array combination rules;
//! * [`functions`] — the function table;
//! * [`series`] — alignment, the time grid of `FILL` / `TIME_SERIES`, UTC calendar helpers;
//! * [`search`] — `SEARCH()` query syntax ([`SearchQuery`]) and metric matching.
//!
//! A scalar whose value is `NaN` means "no value" (for example `AVG` of an empty series, or a scalar
//! division by zero); combining it with a time series drops the affected data points, and any data
//! point whose computed value is not finite is dropped, as the guide prescribes for division by zero.

mod ast;
mod eval;
mod functions;
mod lexer;
mod parser;
mod search;
mod series;

#[cfg(test)]
mod testenv;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_functions;
#[cfg(test)]
mod tests_parse;
#[cfg(test)]
mod tests_search;

pub use ast::{BinOp, Func, Node};
pub use search::{parse_search, SearchProperty, SearchSchema, SearchTerm};

/// Maximum nesting depth (parentheses, function calls, arrays, unary minus) accepted by [`parse`] and
/// [`parse_search`].
pub const MAX_NESTING: usize = 50;

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

impl MathError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        MathError {
            message: message.into(),
        }
    }
}

/// A parsed `SEARCH()` search expression (its first argument). Build one with [`parse_search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The query text as written.
    pub text: String,
    /// The `{Namespace, DimensionName, ...}` metric schema, if any: a metric matches only if it is in
    /// that namespace and has exactly that set of dimension names.
    pub schema: Option<SearchSchema>,
    /// The search term (partial / exact matches, property designators, `AND` / `OR` / `NOT`), if any.
    pub term: Option<SearchTerm>,
}

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
        search::matches(self, metric)
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The syntax tree.
    pub root: Node,
}

impl Expr {
    /// Ids of other queries the expression refers to (for ordering and cycle detection), each once,
    /// in order of first appearance.
    pub fn referenced_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.root
            .collect_ids(&mut out, &mut std::collections::HashSet::new());
        out
    }

    /// Whether the expression calls `METRICS()`, i.e. depends on every metric query of the request.
    pub fn uses_metrics_function(&self) -> bool {
        self.root.any_call(&|f| f == Func::Metrics)
    }

    /// The `SEARCH()` queries in the expression.
    pub fn search_queries(&self) -> Vec<&SearchQuery> {
        let mut out = Vec::new();
        self.root.collect_searches(&mut out);
        out
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
    fn search(
        &self,
        query: &SearchQuery,
        stat: &str,
        period: i64,
    ) -> Result<Vec<Series>, MathError>;
    /// The period (seconds) of the enclosing query, used by `RATE`, `PERIOD`, `FILL` etc.
    fn period(&self) -> i64;
    /// Query window, seconds since the epoch.
    fn start_time(&self) -> i64;
    fn end_time(&self) -> i64;
    /// `ANOMALY_DETECTION_BAND(id, k)`: the (lower, upper) band series of the metric query `id`.
    fn anomaly_band(&self, id: &str, _k: f64) -> Result<(Series, Series), MathError> {
        Err(MathError::new(format!(
            "ANOMALY_DETECTION_BAND is not available for {id} here"
        )))
    }
}

/// Parse an expression.
pub fn parse(expression: &str) -> Result<Expr, MathError> {
    parser::parse_expression(expression).map(|root| Expr { root })
}

/// Evaluate a parsed expression. The result may be a scalar (e.g. `AVG(m1)`); use [`eval_result`]
/// when the value is the final result of a query, which AWS requires to be a time series or an array.
pub fn eval(expr: &Expr, env: &dyn MathEnv) -> Result<MathValue, MathError> {
    eval::eval_root(&expr.root, env)
}

/// Evaluate an expression whose value is the final result of a query: like [`eval`], but a scalar
/// result is an error, because "the final result of any math expression must be a single time series
/// or an array of time series".
pub fn eval_result(expr: &Expr, env: &dyn MathEnv) -> Result<MathValue, MathError> {
    match eval(expr, env)? {
        MathValue::Scalar(_) => Err(MathError::new(
            "The final result of a math expression must be a single time series or an array of time \
             series, not a scalar value",
        )),
        other => Ok(other),
    }
}
