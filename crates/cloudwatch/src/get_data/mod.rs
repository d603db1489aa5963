//! GetMetricData: up to 500 queries, each either a metric statistic (`MetricStat`) or a metric-math
//! `Expression`, evaluated over one time window and returned page by page.
//!
//! Validation failures answer `ValidationError` in CloudWatch's wording (the operation models only
//! `InvalidNextToken`). Expressions are parsed up front; an expression that does not parse, refers
//! to an unknown id, takes part in a dependency cycle or fails to evaluate fails the request with a
//! `ValidationError` naming the expression, as CloudWatch rejects malformed math. Expressions are
//! evaluated in dependency order ([`crate::math::Expr::referenced_ids`]).
//!
//! Decisions where the API reference is silent: the default label of a `MetricStat` is the metric
//! name, of a single-series expression its `Id`, and of each series of an array result (`SEARCH`,
//! `METRICS()`) that series' own label; an expression without `Period` uses the period of the first
//! `MetricStat` it refers to (else the request's first `MetricStat`, else 60 s); a scalar result is
//! returned as that value at every period of the window; non-finite values (e.g. division by zero)
//! are dropped from results. Metrics Insights (`SELECT ...`) queries are not supported.

mod env;
pub mod labels;
pub mod page;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_tsdb::MetricStore;
use serde::Deserialize;

use crate::anomaly::Models;
use crate::doc::secs_to_ms;
use crate::error::{self, ErrorList, InternalError, VALIDATION};
use crate::fetch::{aggregate_metric, find_series, MetricId};
use crate::math::{self, Expr, MathValue, Series};
use crate::stats::Statistic;
use crate::window::{period_count, period_message, valid_period, Window};

use env::{Env, Shared};
use labels::{LabelInput, LabelProps};
use page::ResultSeries;

/// Most queries in one request.
pub const MAX_QUERIES: usize = 500;
/// Most periods a scalar expression result is spread over.
pub const MAX_SCALAR_PERIODS: i64 = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionInput {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<DimensionInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStatInput {
    metric: Option<MetricInput>,
    period: Option<i64>,
    stat: Option<String>,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryInput {
    id: Option<String>,
    metric_stat: Option<MetricStatInput>,
    expression: Option<String>,
    label: Option<String>,
    return_data: Option<bool>,
    period: Option<i64>,
    account_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LabelOptionsInput {
    timezone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricDataInput {
    metric_data_queries: Vec<QueryInput>,
    start_time: f64,
    end_time: f64,
    next_token: Option<String>,
    scan_by: Option<String>,
    max_datapoints: Option<i64>,
    label_options: Option<LabelOptionsInput>,
}

enum Kind {
    Metric {
        id: MetricId,
        unit: Option<String>,
        stat: Statistic,
        stat_name: String,
        period: i64,
        foreign: bool,
    },
    Expression {
        text: String,
        period: Option<i64>,
    },
}

struct Query {
    id: String,
    label: Option<String>,
    return_data: bool,
    kind: Kind,
}

fn id_ok(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn validate_queries(inputs: Vec<QueryInput>, account: &str) -> Result<Vec<Query>, ApiError> {
    if inputs.is_empty() {
        return Err(error::missing("MetricDataQueries"));
    }
    if inputs.len() > MAX_QUERIES {
        return Err(error::validation(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let mut errors = ErrorList::new();
    let mut seen = HashSet::new();
    let mut queries = Vec::with_capacity(inputs.len());
    for (i, q) in inputs.into_iter().enumerate() {
        let at = |f: &str| format!("MetricDataQueries.member.{}.{f}", i + 1);
        let Some(id) = q.id else {
            errors.push(VALIDATION, error::missing_message(&at("Id")));
            continue;
        };
        if !id_ok(&id) {
            errors.push(
                VALIDATION,
                format!("The value {id} for parameter {} is not matching the expected pattern ^[a-z][a-zA-Z0-9_]*$.", at("Id")),
            );
        } else if !seen.insert(id.clone()) {
            errors.push(
                VALIDATION,
                format!("The value {id} for parameter {} is not unique.", at("Id")),
            );
        }
        if q.period.is_some_and(|p| !valid_period(p)) {
            errors.push(VALIDATION, period_message(&at("Period")));
        }
        let kind = match (q.metric_stat, q.expression) {
            (Some(_), Some(_)) => {
                errors.push(
                    VALIDATION,
                    format!(
                        "The parameters {} and {} are mutually exclusive and you have specified both.",
                        at("MetricStat"),
                        at("Expression")
                    ),
                );
                continue;
            }
            (None, None) => {
                errors.push(
                    VALIDATION,
                    format!(
                        "Exactly one of the parameters {} and {} must be specified.",
                        at("MetricStat"),
                        at("Expression")
                    ),
                );
                continue;
            }
            (None, Some(text)) => Kind::Expression {
                text,
                period: q.period,
            },
            (Some(ms), None) => {
                let Some(metric) = ms.metric else {
                    errors.push(VALIDATION, error::missing_message(&at("MetricStat.Metric")));
                    continue;
                };
                let (Some(namespace), Some(metric_name)) = (metric.namespace, metric.metric_name)
                else {
                    errors.push(
                        VALIDATION,
                        error::missing_message(&at("MetricStat.Metric.MetricName")),
                    );
                    continue;
                };
                let Some(period) = ms.period else {
                    errors.push(VALIDATION, error::missing_message(&at("MetricStat.Period")));
                    continue;
                };
                if !valid_period(period) {
                    errors.push(VALIDATION, period_message(&at("MetricStat.Period")));
                }
                let stat_name = ms.stat.unwrap_or_default();
                let Some(stat) = Statistic::parse(&stat_name) else {
                    errors.push(
                        VALIDATION,
                        format!(
                            "The value {stat_name} for parameter {} is not a valid statistic.",
                            at("MetricStat.Stat")
                        ),
                    );
                    continue;
                };
                let dims: Vec<(String, String)> = metric
                    .dimensions
                    .into_iter()
                    .map(|d| (d.name, d.value))
                    .collect();
                let id = MetricId::new(namespace, metric_name, dims);
                if id.dimensions.windows(2).any(|w| w[0].0 == w[1].0) {
                    errors.push(
                        VALIDATION,
                        format!(
                            "The parameter {} must not contain duplicate names.",
                            at("MetricStat.Metric.Dimensions")
                        ),
                    );
                }
                let foreign = q.account_id.as_deref().is_some_and(|a| a != account);
                Kind::Metric {
                    id,
                    unit: ms.unit,
                    stat,
                    stat_name,
                    period,
                    foreign,
                }
            }
        };
        queries.push(Query {
            id,
            label: q.label,
            return_data: q.return_data.unwrap_or(true),
            kind,
        });
    }
    errors.into_result()?;
    Ok(queries)
}

fn expression_error(id: &str, message: &str) -> ApiError {
    error::validation(format!("Error in expression {id}: {message}"))
}

/// Parsed expressions and an evaluation order over them.
fn plan(queries: &[Query]) -> Result<(HashMap<String, Expr>, Vec<String>), ApiError> {
    let ids: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
    let mut exprs = HashMap::new();
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for q in queries {
        let Kind::Expression { text, .. } = &q.kind else {
            continue;
        };
        if text
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("select"))
        {
            return Err(error::validation(format!(
                "Error in expression {}: Metrics Insights queries are not supported by this opsloop release.",
                q.id
            )));
        }
        let expr = math::parse(text).map_err(|e| expression_error(&q.id, &e.message))?;
        let refs = expr.referenced_ids();
        if let Some(unknown) = refs.iter().find(|r| !ids.contains(r.as_str())) {
            return Err(expression_error(
                &q.id,
                &format!("Unrecognized metric id {unknown}."),
            ));
        }
        deps.insert(q.id.clone(), refs);
        exprs.insert(q.id.clone(), expr);
    }
    // Depth-first topological order; a back edge is a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit(
        id: &str,
        deps: &HashMap<String, Vec<String>>,
        marks: &mut HashMap<String, Mark>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        match marks.get(id) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Active) => return Err(id.to_string()),
            None => {}
        }
        let Some(children) = deps.get(id) else {
            return Ok(()); // a MetricStat query
        };
        marks.insert(id.to_string(), Mark::Active);
        for child in children {
            visit(child, deps, marks, order)?;
        }
        marks.insert(id.to_string(), Mark::Done);
        order.push(id.to_string());
        Ok(())
    }
    let mut marks = HashMap::new();
    let mut order = Vec::new();
    for q in queries {
        if exprs.contains_key(&q.id) {
            visit(&q.id, &deps, &mut marks, &mut order).map_err(|at| {
                expression_error(
                    &q.id,
                    &format!("Circular dependency detected involving {at}."),
                )
            })?;
        }
    }
    Ok((exprs, order))
}

/// GetMetricData, with anomaly bands from untrained-per-call models (no detector configuration).
pub fn get_metric_data(
    store: &dyn MetricStore,
    ctx: &RequestContext,
    input: Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    get_metric_data_with(store, ctx, input, now_ms, &Models::detached())
}

/// GetMetricData, drawing `ANOMALY_DETECTION_BAND` models from `models`.
pub fn get_metric_data_with(
    store: &dyn MetricStore,
    ctx: &RequestContext,
    input: Value,
    now_ms: i64,
    models: &Models,
) -> Result<Value, ApiError> {
    for required in ["MetricDataQueries", "StartTime", "EndTime"] {
        if input.get(required).is_none_or(Value::is_null) {
            return Err(error::missing(required));
        }
    }
    let mut print_doc = input.clone();
    if let Some(m) = print_doc.as_object_mut() {
        m.remove("NextToken");
        m.remove("MaxDatapoints");
    }
    let request_print = crate::token::fingerprint(&print_doc);
    let req: GetMetricDataInput = serde_json::from_value(input)
        .map_err(|e| error::validation(format!("The request is malformed: {e}")))?;

    let queries = validate_queries(req.metric_data_queries, &ctx.account_id)?;
    let (start_ms, end_ms) = (secs_to_ms(req.start_time), secs_to_ms(req.end_time));
    if start_ms >= end_ms {
        return Err(error::validation(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let max_datapoints = match req.max_datapoints {
        None => page::DEFAULT_MAX_DATAPOINTS,
        Some(n) if n > 0 => n as u64,
        Some(n) => {
            return Err(error::validation(error::bad_value_message(
                &n.to_string(),
                "MaxDatapoints",
            )));
        }
    };
    let descending = match req.scan_by.as_deref() {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => return Err(error::validation(error::bad_value_message(other, "ScanBy"))),
    };
    let tz_minutes = match req.label_options.and_then(|o| o.timezone) {
        None => 0,
        Some(tz) => labels::parse_timezone(&tz).ok_or_else(|| {
            error::validation(error::bad_value_message(&tz, "LabelOptions.Timezone"))
        })?,
    };
    let offset = match &req.next_token {
        None => 0,
        Some(t) => page::resume_offset(t, request_print)
            .ok_or_else(|| ApiError::new(error::INVALID_NEXT_TOKEN, "The NextToken is invalid."))?,
    };
    let (exprs, order) = plan(&queries)?;

    // Metric statistics first: every expression may see them (METRICS()).
    let mut values: HashMap<String, MathValue> = HashMap::new();
    let mut props: HashMap<String, LabelProps> = HashMap::new();
    let mut metric_ids = Vec::new();
    for q in &queries {
        let Kind::Metric {
            id,
            unit,
            stat,
            stat_name,
            period,
            foreign,
        } = &q.kind
        else {
            continue;
        };
        let window = Window::new(start_ms, end_ms, *period, now_ms);
        let mut series = Series {
            label: q
                .label
                .clone()
                .filter(|l| !l.contains("${"))
                .unwrap_or_else(|| id.metric_name.clone()),
            timestamps: Vec::new(),
            values: Vec::new(),
        };
        if !*foreign && window.retained(now_ms) {
            let found = find_series(store, &ctx.account_id, &ctx.region, id, unit.as_deref())
                .map_err(InternalError::from)?;
            let buckets = aggregate_metric(store, &found, &window, stat.needs_values())
                .map_err(InternalError::from)?;
            for b in &buckets {
                if let Some(v) = stat.compute(b) {
                    series.timestamps.push(b.start_ms / 1000);
                    series.values.push(v);
                }
            }
        }
        props.insert(
            q.id.clone(),
            LabelProps {
                namespace: id.namespace.clone(),
                metric_name: id.metric_name.clone(),
                dimensions: id.dimensions.clone(),
                period: *period,
                stat: stat_name.clone(),
                account: ctx.account_id.clone(),
                region: ctx.region.clone(),
            },
        );
        metric_ids.push(q.id.clone());
        values.insert(q.id.clone(), MathValue::Series(series));
    }

    let first_metric_period = queries.iter().find_map(|q| match &q.kind {
        Kind::Metric { period, .. } => Some(*period),
        Kind::Expression { .. } => None,
    });
    let period_of = |id: &str| {
        queries
            .iter()
            .find(|q| q.id == id)
            .and_then(|q| match &q.kind {
                Kind::Metric { period, .. } => Some(*period),
                Kind::Expression { period, .. } => *period,
            })
    };
    let mut expr_periods: HashMap<String, i64> = HashMap::new();
    let search_props = RefCell::new(HashMap::new());
    let messages = RefCell::new(Vec::new());
    for id in &order {
        let Some(expr) = exprs.get(id) else { continue };
        let explicit = period_of(id);
        let period = explicit
            .or_else(|| expr.referenced_ids().iter().find_map(|r| period_of(r)))
            .or(first_metric_period)
            .unwrap_or(60);
        let shared = Shared {
            store,
            account: &ctx.account_id,
            region: &ctx.region,
            start_ms,
            end_ms,
            now_ms,
            values: &values,
            metric_ids: &metric_ids,
            props: &props,
            models,
            search_props: RefCell::new(std::mem::take(&mut *search_props.borrow_mut())),
            messages: RefCell::new(Vec::new()),
        };
        let result = math::eval(
            expr,
            &Env {
                shared: &shared,
                period,
            },
        );
        search_props
            .borrow_mut()
            .extend(shared.search_props.into_inner());
        messages.borrow_mut().extend(shared.messages.into_inner());
        let value = result.map_err(|e| expression_error(id, &e.message))?;
        expr_periods.insert(id.clone(), period);
        values.insert(id.clone(), value);
    }
    let search_props = search_props.into_inner();

    let mut results = Vec::new();
    for q in queries.iter().filter(|q| q.return_data) {
        let Some(value) = values.remove(&q.id) else {
            continue;
        };
        let metric_props = props.get(&q.id);
        let mut emit = |series: Series, default_label: String, p: Option<&LabelProps>| {
            let (mut timestamps, mut vals) = (Vec::with_capacity(series.values.len()), Vec::new());
            for (t, v) in series.timestamps.iter().zip(&series.values) {
                if v.is_finite() {
                    timestamps.push(t.saturating_mul(1000));
                    vals.push(*v);
                }
            }
            let label = labels::render(
                q.label.as_deref(),
                &LabelInput {
                    default_label: &default_label,
                    props: p,
                    timestamps: &timestamps,
                    values: &vals,
                    tz_minutes,
                    now_ms,
                },
            );
            results.push(ResultSeries {
                id: q.id.clone(),
                label,
                timestamps,
                values: vals,
                messages: Vec::new(),
            });
        };
        match value {
            MathValue::Series(s) => {
                let default = match &q.kind {
                    Kind::Metric { id, .. } => id.metric_name.clone(),
                    Kind::Expression { .. } => q.id.clone(),
                };
                emit(s, default, metric_props);
            }
            MathValue::Array(list) => {
                for s in list {
                    let default = if s.label.is_empty() {
                        q.id.clone()
                    } else {
                        s.label.clone()
                    };
                    let p = search_props.get(&s.label);
                    emit(s, default, p);
                }
            }
            MathValue::Scalar(x) => {
                let period = expr_periods.get(&q.id).copied().unwrap_or(60);
                let window = Window::new(start_ms, end_ms, period, now_ms);
                if period_count(window.start_ms, window.end_ms, period) > MAX_SCALAR_PERIODS {
                    return Err(expression_error(
                        &q.id,
                        "The expression returns a single value, and the time range holds too many periods \
                         to return it at each of them. Increase the period or narrow the time range.",
                    ));
                }
                let timestamps: Vec<i64> = window.period_starts().map(|t| t / 1000).collect();
                let values = vec![x; timestamps.len()];
                emit(
                    Series {
                        label: q.id.clone(),
                        timestamps,
                        values,
                    },
                    q.id.clone(),
                    None,
                );
            }
        }
    }
    let messages = messages.into_inner();
    Ok(page::page(
        results,
        descending,
        offset,
        max_datapoints,
        request_print,
        &messages,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_follow_the_pattern() {
        for ok in ["m1", "a", "cpu_Avg2", "zZ_9"] {
            assert!(id_ok(ok), "{ok}");
        }
        for bad in ["", "M1", "1m", "_m", "m-1", "m 1", "é"] {
            assert!(!id_ok(bad), "{bad}");
        }
    }
}
