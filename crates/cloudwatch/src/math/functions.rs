//! The metric math function table (user guide, "Functions supported for metric math").
//!
//! Argument types follow the guide's S / TS / TS[] notation. Where a function needs a single time
//! series, an array holding exactly one series is accepted too; where it needs an array, a single
//! series counts as an array of one. Functions this implementation cannot back (anomaly detection,
//! Performance Insights, Contributor Insights, Lambda data sources, Service Quotas) fail with a clear
//! error instead of inventing data.

use super::ast::{Func, Node};
use super::eval::{eval_node, map_values, normalize_value, scalar_result, Ctx};
use super::series::{
    civil, empty, from_points, grid, merge_sorted, normalize, points, union_timestamps, value_at,
};
use super::{MathError, MathValue, SearchQuery, Series};

fn kind(v: &MathValue) -> &'static str {
    match v {
        MathValue::Scalar(_) => "a scalar",
        MathValue::Series(_) => "a time series",
        MathValue::Array(_) => "an array of time series",
    }
}

fn type_error(func: Func, want: &str, got: &MathValue) -> MathError {
    MathError::new(format!(
        "{} expects {want}, but was given {}",
        func.name(),
        kind(got)
    ))
}

/// A single time series (an array of exactly one series also qualifies).
fn as_series(func: Func, v: MathValue) -> Result<Series, MathError> {
    match v {
        MathValue::Series(s) => Ok(s),
        MathValue::Array(mut items) if items.len() == 1 => Ok(items.remove(0)),
        other => Err(type_error(func, "a time series", &other)),
    }
}

/// An array of time series (a single series counts as an array of one).
fn as_array(func: Func, v: MathValue) -> Result<Vec<Series>, MathError> {
    match v {
        MathValue::Array(items) => Ok(items),
        MathValue::Series(s) => Ok(vec![s]),
        other => Err(type_error(func, "an array of time series", &other)),
    }
}

fn as_scalar(func: Func, v: MathValue) -> Result<f64, MathError> {
    match v {
        MathValue::Scalar(x) => Ok(x),
        other => Err(type_error(func, "a scalar", &other)),
    }
}

/// A scalar argument that must be a whole number >= 0 (SLICE bounds, SORT limit).
fn whole(func: Func, what: &str, x: f64) -> Result<usize, MathError> {
    if !x.is_finite() || x < 0.0 || x.fract() != 0.0 {
        return Err(MathError::new(format!(
            "The {what} of {} must be a whole number >= 0, not {x}",
            func.name()
        )));
    }
    Ok(if x >= usize::MAX as f64 {
        usize::MAX
    } else {
        x as usize
    })
}

/// Apply a per-series transformation to a series or to every series of an array.
fn per_series(
    func: Func,
    v: MathValue,
    mut f: impl FnMut(&Series) -> Series,
) -> Result<MathValue, MathError> {
    match v {
        MathValue::Series(s) => Ok(MathValue::Series(f(&s))),
        MathValue::Array(items) => Ok(MathValue::Array(items.iter().map(&mut f).collect())),
        other => Err(type_error(
            func,
            "a time series or an array of time series",
            &other,
        )),
    }
}

pub(crate) fn call(
    func: Func,
    args: &[Node],
    pos: usize,
    ctx: &Ctx<'_>,
) -> Result<MathValue, MathError> {
    if let Some(reason) = func.unsupported_reason() {
        return Err(MathError::new(format!(
            "The function {} is not supported by this CloudWatch implementation: {reason}",
            func.name()
        )));
    }
    let arg = |i: usize| -> Result<MathValue, MathError> {
        let node = args.get(i).ok_or_else(|| {
            MathError::new(format!(
                "{} at position {pos} is missing argument {}",
                func.name(),
                i + 1
            ))
        })?;
        eval_node(node, ctx)
    };
    match func {
        Func::Abs => Ok(map_values(arg(0)?, f64::abs)),
        Func::Ceil => Ok(map_values(arg(0)?, f64::ceil)),
        Func::Floor => Ok(map_values(arg(0)?, f64::floor)),
        Func::Log => Ok(map_values(arg(0)?, f64::ln)),
        Func::Log10 => Ok(map_values(arg(0)?, f64::log10)),
        Func::Avg | Func::Sum | Func::Min | Func::Max | Func::Stddev | Func::DatapointCount => {
            reduce(func, arg(0)?)
        }
        Func::Diff => per_series(func, arg(0)?, |s| pairwise(s, |(_, v0), (_, v1)| v1 - v0)),
        Func::DiffTime => per_series(func, arg(0)?, |s| {
            pairwise(s, |(t0, _), (t1, _)| span(t0, t1))
        }),
        Func::Rate => per_series(func, arg(0)?, |s| {
            pairwise(s, |(t0, v0), (t1, v1)| (v1 - v0) / span(t0, t1))
        }),
        Func::RunningSum => per_series(func, arg(0)?, |s| {
            let mut acc = 0.0;
            from_points(
                s.label.clone(),
                points(s).map(|(t, v)| {
                    acc += v;
                    (t, acc)
                }),
            )
        }),
        Func::Fill => fill(args, ctx),
        Func::First | Func::Last => {
            let items = as_array(func, arg(0)?)?;
            let pick = if func == Func::First {
                items.first()
            } else {
                items.last()
            };
            Ok(MathValue::Series(
                pick.cloned().unwrap_or_else(|| empty("")),
            ))
        }
        Func::If => if_fn(args, ctx),
        Func::MetricCount => Ok(MathValue::Scalar(as_array(func, arg(0)?)?.len() as f64)),
        Func::Metrics => {
            let filter = match args.first() {
                Some(Node::Str(s)) => Some(s.as_str()),
                Some(_) => {
                    return Err(MathError::new(
                        "The argument of METRICS must be a quoted string",
                    ))
                }
                None => None,
            };
            Ok(MathValue::Array(
                ctx.env.metrics(filter).into_iter().map(normalize).collect(),
            ))
        }
        Func::Minute
        | Func::Hour
        | Func::Day
        | Func::Date
        | Func::Month
        | Func::Year
        | Func::Epoch => {
            let v = arg(0)?;
            if let MathValue::Scalar(_) = v {
                return Err(type_error(func, "a time series", &v));
            }
            let mut failure = None;
            let out = per_series(func, v, |s| match calendar(func, s, ctx) {
                Ok(done) => done,
                Err(e) => {
                    failure = Some(e);
                    empty("")
                }
            })?;
            failure.map_or(Ok(out), Err)
        }
        Func::Period => {
            if !matches!(args.first(), Some(Node::Id { .. })) {
                return Err(MathError::new("PERIOD accepts only the Id of a metric"));
            }
            let v = arg(0)?;
            if let MathValue::Scalar(_) = v {
                return Err(type_error(func, "a time series", &v));
            }
            Ok(MathValue::Scalar(ctx.env.period() as f64))
        }
        Func::RemoveEmpty => Ok(MathValue::Array(
            as_array(func, arg(0)?)?
                .into_iter()
                .filter(|s| !s.timestamps.is_empty())
                .collect(),
        )),
        Func::Slice => {
            let items = as_array(func, arg(0)?)?;
            let start = whole(func, "start index", as_scalar(func, arg(1)?)?)?;
            let end = match args.get(2) {
                Some(_) => whole(func, "end index", as_scalar(func, arg(2)?)?)?,
                None => items.len(),
            };
            let end = end.min(items.len());
            let start = start.min(end);
            Ok(MathValue::Array(items[start..end].to_vec()))
        }
        Func::Sort => sort(args, ctx),
        Func::TimeSeries => {
            let x = as_scalar(func, arg(0)?)?;
            let ts = grid(ctx.env, None)?;
            Ok(MathValue::Series(from_points(
                "",
                ts.into_iter().map(|t| (t, x)),
            )))
        }
        Func::Search => Err(MathError::new(
            "SEARCH must be called with a quoted search expression",
        )),
        Func::AnomalyDetectionBand => anomaly_band(args, pos, ctx),
        Func::DbPerfInsights | Func::InsightRuleMetric | Func::Lambda | Func::ServiceQuota => Err(
            MathError::new(format!("The function {} is not supported", func.name())),
        ),
    }
}

/// `ANOMALY_DETECTION_BAND(id[, k])`: the lower and upper band series of a metric, `k` standard
/// deviations wide (default 2), from the environment's anomaly detection model.
fn anomaly_band(args: &[Node], pos: usize, ctx: &Ctx<'_>) -> Result<MathValue, MathError> {
    let func = Func::AnomalyDetectionBand;
    let Some(Node::Id { name, .. }) = args.first() else {
        return Err(MathError::new(format!(
            "{} at position {pos} accepts only the Id of a metric as its first argument",
            func.name()
        )));
    };
    let k = match args.get(1) {
        None => 2.0,
        Some(node) => as_scalar(func, eval_node(node, ctx)?)?,
    };
    if !k.is_finite() || k <= 0.0 {
        return Err(MathError::new(format!(
            "The band width of {} must be a positive number, not {k}",
            func.name()
        )));
    }
    let (lower, upper) = ctx.env.anomaly_band(name, k)?;
    Ok(MathValue::Array(vec![lower, upper]))
}

/// `b - a` in seconds, without integer overflow for extreme timestamps.
fn span(a: i64, b: i64) -> f64 {
    (i128::from(b) - i128::from(a)) as f64
}

/// A series built from each pair of consecutive data points; the first point has no predecessor and
/// produces nothing.
fn pairwise(s: &Series, f: impl Fn((i64, f64), (i64, f64)) -> f64) -> Series {
    let pts: Vec<(i64, f64)> = points(s).collect();
    from_points(
        s.label.clone(),
        pts.windows(2).map(|w| (w[1].0, f(w[0], w[1]))),
    )
}

/// AVG / SUM / MIN / MAX / STDDEV of the values of one series; NaN ("no value") when it is empty.
/// STDDEV is the population standard deviation.
pub(crate) fn reduce_values(func: Func, values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    let r = match func {
        Func::Sum => sum,
        Func::Avg => sum / n,
        Func::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Func::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Func::Stddev => {
            let mean = sum / n;
            (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
        }
        Func::DatapointCount => n,
        _ => f64::NAN,
    };
    scalar_result(r)
}

/// AVG / SUM / MIN / MAX / STDDEV / DATAPOINT_COUNT: of a series, a scalar; of an array, one series
/// holding, at every timestamp of any member, the statistic across members. Across an array AVG counts
/// a missing value as 0 (the guide says so for AVG); SUM, MIN, MAX and STDDEV use the values present,
/// DATAPOINT_COUNT counts them.
fn reduce(func: Func, v: MathValue) -> Result<MathValue, MathError> {
    match v {
        MathValue::Series(s) => Ok(MathValue::Scalar(if func == Func::DatapointCount {
            s.values.len() as f64
        } else {
            reduce_values(func, &s.values)
        })),
        MathValue::Array(items) => {
            let union = union_timestamps(&items);
            let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); union.len()];
            for s in &items {
                for (t, v) in points(s) {
                    if let Ok(i) = union.binary_search(&t) {
                        buckets[i].push(v);
                    }
                }
            }
            let members = items.len() as f64;
            let pts = union.into_iter().zip(buckets).map(|(t, vals)| {
                let r = match func {
                    Func::Avg => vals.iter().sum::<f64>() / members,
                    _ => reduce_values(func, &vals),
                };
                (t, r)
            });
            Ok(MathValue::Series(from_points("", pts)))
        }
        other => Err(type_error(
            func,
            "a time series or an array of time series",
            &other,
        )),
    }
}

/// What FILL puts into the gaps.
enum Filler {
    Value(f64),
    Series(Series),
    Repeat,
    Linear,
}

fn fill(args: &[Node], ctx: &Ctx<'_>) -> Result<MathValue, MathError> {
    let (Some(target), Some(how)) = (args.first(), args.get(1)) else {
        return Err(MathError::new("FILL takes two arguments"));
    };
    let filler = match how {
        Node::Keyword { name, .. } if name == "REPEAT" => Filler::Repeat,
        Node::Keyword { name, .. } if name == "LINEAR" => Filler::Linear,
        other => match eval_node(other, ctx)? {
            MathValue::Scalar(x) => Filler::Value(x),
            v => Filler::Series(as_series(Func::Fill, v)?),
        },
    };
    let target = eval_node(target, ctx)?;
    if let MathValue::Scalar(_) = target {
        return Err(type_error(
            Func::Fill,
            "a time series or an array of time series",
            &target,
        ));
    }
    let mut failure = None;
    let out = per_series(Func::Fill, target, |s| match fill_series(s, &filler, ctx) {
        Ok(done) => done,
        Err(e) => {
            failure = Some(e);
            empty("")
        }
    })?;
    failure.map_or(Ok(out), Err)
}

/// Fill the gaps of `s` on the query's time grid (anchored on the series' own timestamps).
fn fill_series(s: &Series, filler: &Filler, ctx: &Ctx<'_>) -> Result<Series, MathError> {
    let timeline = merge_sorted(
        &s.timestamps,
        &grid(ctx.env, s.timestamps.first().copied())?,
    );
    let actual: Vec<(i64, f64)> = points(s).collect();
    let mut j = 0; // index of the first actual point at or after t
    let mut out = Vec::with_capacity(timeline.len());
    for t in timeline {
        while j < actual.len() && actual[j].0 < t {
            j += 1;
        }
        if let Some(&(at, v)) = actual.get(j) {
            if at == t {
                out.push((t, v));
                continue;
            }
        }
        let prev = j.checked_sub(1).and_then(|i| actual.get(i)).copied();
        let next = actual.get(j).copied();
        let value = match filler {
            Filler::Value(x) => Some(*x),
            Filler::Series(f) => value_at(f, t),
            Filler::Repeat => prev.map(|p| p.1),
            Filler::Linear => match (prev, next) {
                (Some((t0, v0)), Some((t1, v1))) => {
                    Some(v0 + (v1 - v0) * (span(t0, t) / span(t0, t1)))
                }
                _ => None,
            },
        };
        if let Some(v) = value {
            out.push((t, v));
        }
    }
    Ok(from_points(s.label.clone(), out))
}

/// MINUTE / HOUR / DAY / DATE / MONTH / YEAR / EPOCH of every timestamp of the series' period grid
/// over the query window, plus its own timestamps (UTC).
fn calendar(func: Func, s: &Series, ctx: &Ctx<'_>) -> Result<Series, MathError> {
    let timeline = merge_sorted(
        &s.timestamps,
        &grid(ctx.env, s.timestamps.first().copied())?,
    );
    let pts = timeline.into_iter().map(|t| {
        let c = civil(t);
        let v = match func {
            Func::Minute => c.minute,
            Func::Hour => c.hour,
            Func::Day => c.weekday,
            Func::Date => c.day,
            Func::Month => c.month,
            Func::Year => c.year,
            _ => t,
        };
        (t, v as f64)
    });
    Ok(from_points(s.label.clone(), pts))
}

/// IF(condition, trueValue [, falseValue]) as specified in "Using IF expressions".
fn if_fn(args: &[Node], ctx: &Ctx<'_>) -> Result<MathValue, MathError> {
    let branch = |i: usize| -> Result<Option<MathValue>, MathError> {
        match args.get(i) {
            None => Ok(None),
            Some(node) => match eval_node(node, ctx)? {
                MathValue::Scalar(x) => Ok(Some(MathValue::Scalar(x))),
                v => Ok(Some(MathValue::Series(as_series(Func::If, v)?))),
            },
        }
    };
    let cond = match args.first().map(|n| eval_node(n, ctx)).transpose()? {
        Some(MathValue::Scalar(c)) => MathValue::Scalar(c),
        Some(v) => MathValue::Series(as_series(Func::If, v)?),
        None => return Err(MathError::new("IF needs a condition")),
    };
    let when_true =
        branch(1)?.ok_or_else(|| MathError::new("IF needs a value for a true condition"))?;
    let when_false = branch(2)?;
    match cond {
        MathValue::Scalar(c) if c.is_nan() => Ok(MathValue::Series(empty(""))),
        MathValue::Scalar(c) => Ok(if c != 0.0 {
            when_true
        } else {
            when_false.unwrap_or_else(|| MathValue::Series(empty("")))
        }),
        MathValue::Series(cs) => {
            let label = match (&when_true, &when_false) {
                (MathValue::Series(s), _) | (_, Some(MathValue::Series(s))) => s.label.clone(),
                _ => cs.label.clone(),
            };
            let pts = points(&cs).filter_map(|(t, c)| {
                if c != 0.0 {
                    match &when_true {
                        MathValue::Series(s) => Some((t, value_at(s, t).unwrap_or(0.0))),
                        MathValue::Scalar(x) => Some((t, *x)),
                        MathValue::Array(_) => None,
                    }
                } else {
                    match &when_false {
                        Some(MathValue::Series(s)) => value_at(s, t).map(|v| (t, v)),
                        Some(MathValue::Scalar(x)) => Some((t, *x)),
                        _ => None,
                    }
                }
            });
            Ok(MathValue::Series(from_points(
                label,
                pts.collect::<Vec<_>>(),
            )))
        }
        MathValue::Array(_) => Err(MathError::new(
            "IF does not accept an array of time series as its condition",
        )),
    }
}

/// SORT(array, AVG|MIN|MAX|SUM|STDDEV, ASC|DESC [, limit]). Ties keep their original order; series
/// without data (no statistic) go last in either order.
fn sort(args: &[Node], ctx: &Ctx<'_>) -> Result<MathValue, MathError> {
    let items = match args.first() {
        Some(n) => as_array(Func::Sort, eval_node(n, ctx)?)?,
        None => return Err(MathError::new("SORT needs an array of time series")),
    };
    let key_func = match args.get(1) {
        Some(Node::Keyword { name, .. }) => match name.as_str() {
            "AVG" => Func::Avg,
            "MIN" => Func::Min,
            "MAX" => Func::Max,
            "SUM" => Func::Sum,
            "STDDEV" => Func::Stddev,
            other => return Err(MathError::new(format!("SORT cannot sort by '{other}'"))),
        },
        _ => {
            return Err(MathError::new(
                "The second argument of SORT must be AVG, MIN, MAX, SUM or STDDEV",
            ))
        }
    };
    let descending = match args.get(2) {
        Some(Node::Keyword { name, .. }) if name == "ASC" => false,
        Some(Node::Keyword { name, .. }) if name == "DESC" => true,
        _ => {
            return Err(MathError::new(
                "The third argument of SORT must be ASC or DESC",
            ))
        }
    };
    let limit = match args.get(3) {
        Some(n) => Some(whole(
            Func::Sort,
            "limit",
            as_scalar(Func::Sort, eval_node(n, ctx)?)?,
        )?),
        None => None,
    };
    let mut keyed: Vec<(f64, Series)> = items
        .into_iter()
        .map(|s| (reduce_values(key_func, &s.values), s))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => {
            let ord = a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal);
            if descending {
                ord.reverse()
            } else {
                ord
            }
        }
    });
    let mut out: Vec<Series> = keyed.into_iter().map(|(_, s)| s).collect();
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(MathValue::Array(out))
}

/// SEARCH('query', 'stat' [, period]); without a period the enclosing query's period is used.
pub(crate) fn search(
    query: &SearchQuery,
    stat: &str,
    period: Option<&Node>,
    ctx: &Ctx<'_>,
) -> Result<MathValue, MathError> {
    let period = match period {
        None => ctx.env.period(),
        Some(node) => {
            let p = as_scalar(Func::Search, eval_node(node, ctx)?)?;
            if !p.is_finite() || p < 1.0 || p.fract() != 0.0 || p > i64::MAX as f64 {
                return Err(MathError::new(format!(
                    "The period of SEARCH must be a positive whole number of seconds, not {p}"
                )));
            }
            p as i64
        }
    };
    let found = ctx.env.search(query, stat, period)?;
    Ok(normalize_value(MathValue::Array(found)))
}
