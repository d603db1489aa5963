//! Harness for the `math_parse` fuzz target, shared with the regression tests.
//!
//! Compiled as `opsloop_fuzz::math` by the fuzz target and by
//! `crates/cloudwatch/tests/fuzz_regressions.rs` through `#[path]`; it only uses
//! `opsloop_cloudwatch`.
//!
//! Input: arbitrary bytes; non-UTF-8 inputs are skipped. The text goes through `math::parse` and
//! `math::parse_search`. A parsed expression is inspected (referenced ids, `METRICS()` use, its
//! `SEARCH` queries matched against a metric) and evaluated over a small fixed environment (two
//! five-point series `m1`, `m2`, a scalar `s1`, one searchable metric), so parser output that the
//! evaluator cannot handle shows up too.

#![allow(dead_code)]

use opsloop_cloudwatch::math::{
    self, Expr, MathEnv, MathError, MathValue, MetricIdentity, SearchQuery, Series,
};

/// Period of the environment, seconds.
pub const PERIOD: i64 = 60;
/// Start of the environment's window (2026-01-02T00:00:00Z).
pub const START: i64 = 1_767_312_000;
/// Points per series.
pub const POINTS: i64 = 5;

/// What one input did.
#[derive(Debug)]
pub struct MathOutcome {
    pub parse: Result<Expr, MathError>,
    pub eval: Option<Result<MathValue, MathError>>,
    pub search: Result<SearchQuery, MathError>,
}

/// A small evaluation environment.
pub struct Env;

fn series(label: &str, f: impl Fn(i64) -> f64) -> Series {
    Series {
        label: label.to_string(),
        timestamps: (0..POINTS).map(|i| START + i * PERIOD).collect(),
        values: (0..POINTS).map(f).collect(),
    }
}

/// The metric the environment's `SEARCH` can find.
pub fn searchable() -> MetricIdentity {
    MetricIdentity {
        namespace: "AWS/EC2".to_string(),
        metric_name: "CPUUtilization".to_string(),
        dimensions: vec![("InstanceId".to_string(), "i-0123456789abcdef0".to_string())],
    }
}

impl MathEnv for Env {
    fn lookup(&self, id: &str) -> Option<MathValue> {
        match id {
            "m1" => Some(MathValue::Series(series("m1", |i| i as f64 * 1.5))),
            "m2" => Some(MathValue::Series(series("m2", |i| {
                if i == 2 {
                    0.0
                } else {
                    10.0 - i as f64
                }
            }))),
            "s1" => Some(MathValue::Scalar(3.0)),
            _ => None,
        }
    }

    fn metrics(&self, filter: Option<&str>) -> Vec<Series> {
        ["m1", "m2"]
            .into_iter()
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
        _stat: &str,
        _period: i64,
    ) -> Result<Vec<Series>, MathError> {
        Ok(if query.matches(&searchable()) {
            vec![series("CPUUtilization", |i| 40.0 + i as f64)]
        } else {
            Vec::new()
        })
    }

    fn period(&self) -> i64 {
        PERIOD
    }

    fn start_time(&self) -> i64 {
        START
    }

    fn end_time(&self) -> i64 {
        START + POINTS * PERIOD
    }
}

/// Run one input of `math_parse`. `None` when it is not UTF-8.
pub fn math_input(data: &[u8]) -> Option<MathOutcome> {
    let text = std::str::from_utf8(data).ok()?;
    let parse = math::parse(text);
    let eval = parse.as_ref().ok().map(|expr| {
        let _ = expr.referenced_ids();
        let _ = expr.uses_metrics_function();
        for q in expr.search_queries() {
            let _ = q.matches(&searchable());
        }
        math::eval_result(expr, &Env)
    });
    let search = math::parse_search(text);
    if let Ok(q) = &search {
        let _ = q.matches(&searchable());
    }
    Some(MathOutcome {
        parse,
        eval,
        search,
    })
}
