//! Time-series helpers: normalising caller input, aligning two series, the regular time grid used by
//! the functions that produce non-sparse series (`FILL`, `TIME_SERIES`, `MINUTE` ...), and UTC
//! calendar arithmetic.

use super::{MathEnv, MathError, Series};

/// Upper bound on the points of a generated grid, far above GetMetricData's 100,800 data points per
/// call; a larger window is an error instead of a huge allocation.
pub(crate) const MAX_GRID_POINTS: i128 = 1_000_000;

/// Build a series from points, dropping non-finite values (the guide: a data point whose computation
/// divides by zero is dropped; the same applies to any other undefined result).
pub(crate) fn from_points(
    label: impl Into<String>,
    points: impl IntoIterator<Item = (i64, f64)>,
) -> Series {
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for (t, v) in points {
        if v.is_finite() {
            timestamps.push(t);
            values.push(v);
        }
    }
    Series {
        label: label.into(),
        timestamps,
        values,
    }
}

/// An empty series with `label`.
pub(crate) fn empty(label: impl Into<String>) -> Series {
    Series {
        label: label.into(),
        timestamps: Vec::new(),
        values: Vec::new(),
    }
}

/// Make a caller-provided series well formed: equal lengths (extra entries ignored), ascending unique
/// timestamps (the last value wins on duplicates), finite values only.
pub(crate) fn normalize(s: Series) -> Series {
    let sorted = s.timestamps.windows(2).all(|w| w[0] < w[1]);
    if sorted && s.timestamps.len() == s.values.len() && s.values.iter().all(|v| v.is_finite()) {
        return s;
    }
    let mut points: Vec<(i64, f64)> = s
        .timestamps
        .iter()
        .copied()
        .zip(s.values.iter().copied())
        .collect();
    points.sort_by_key(|p| p.0);
    let mut dedup: Vec<(i64, f64)> = Vec::with_capacity(points.len());
    for p in points {
        match dedup.last_mut() {
            Some(last) if last.0 == p.0 => *last = p,
            _ => dedup.push(p),
        }
    }
    from_points(s.label, dedup)
}

/// The value of `s` at timestamp `t`, if it has one.
pub(crate) fn value_at(s: &Series, t: i64) -> Option<f64> {
    s.timestamps
        .binary_search(&t)
        .ok()
        .and_then(|i| s.values.get(i).copied())
}

/// Iterate the points of a series.
pub(crate) fn points(s: &Series) -> impl Iterator<Item = (i64, f64)> + '_ {
    s.timestamps.iter().copied().zip(s.values.iter().copied())
}

/// Combine two series over the union of their timestamps; a value missing from one side is 0
/// ("Missing values in a time series are treated as 0").
pub(crate) fn merge_union(a: &Series, b: &Series, f: impl Fn(f64, f64) -> f64) -> Vec<(i64, f64)> {
    let (mut i, mut j) = (0, 0);
    let (na, nb) = (
        a.timestamps.len().min(a.values.len()),
        b.timestamps.len().min(b.values.len()),
    );
    let mut out = Vec::with_capacity(na.max(nb));
    while i < na || j < nb {
        let ta = a.timestamps.get(i).copied().filter(|_| i < na);
        let tb = b.timestamps.get(j).copied().filter(|_| j < nb);
        match (ta, tb) {
            (Some(x), Some(y)) if x == y => {
                out.push((x, f(a.values[i], b.values[j])));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                out.push((x, f(a.values[i], 0.0)));
                i += 1;
            }
            (Some(x), None) => {
                out.push((x, f(a.values[i], 0.0)));
                i += 1;
            }
            (_, Some(y)) => {
                out.push((y, f(0.0, b.values[j])));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Sorted union of the timestamps of several series.
pub(crate) fn union_timestamps<'a>(all: impl IntoIterator<Item = &'a Series>) -> Vec<i64> {
    let mut ts: Vec<i64> = all
        .into_iter()
        .flat_map(|s| s.timestamps.iter().copied())
        .collect();
    ts.sort_unstable();
    ts.dedup();
    ts
}

/// The regular timestamps of the query window: every `t` in `[start_time, end_time)` that lies a whole
/// number of periods from `anchor` (a timestamp of the series being completed, so generated points line
/// up with real ones), or from `start_time` when there is no anchor.
pub(crate) fn grid(env: &dyn MathEnv, anchor: Option<i64>) -> Result<Vec<i64>, MathError> {
    let period = env.period();
    if period <= 0 {
        return Err(MathError::new(format!(
            "The period must be a positive number of seconds, not {period}"
        )));
    }
    let (start, end) = (env.start_time() as i128, env.end_time() as i128);
    let p = period as i128;
    let anchor = anchor.map_or(start, |a| a as i128);
    let first = start + (anchor - start).rem_euclid(p);
    if first >= end {
        return Ok(Vec::new());
    }
    let count = (end - first + p - 1) / p;
    if count > MAX_GRID_POINTS {
        return Err(MathError::new(format!(
            "The time range and period produce too many data points ({count}); use a longer period or a shorter range"
        )));
    }
    Ok((0..count)
        .filter_map(|k| i64::try_from(first + k * p).ok())
        .collect())
}

/// Sorted union of `a` and `b` (both sorted and free of duplicates).
pub(crate) fn merge_sorted(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push(*x);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// A UTC calendar breakdown of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: i64,
    /// Day of month, 1..=31.
    pub day: i64,
    /// Day of week, 1 = Monday .. 7 = Sunday.
    pub weekday: i64,
    pub hour: i64,
    pub minute: i64,
}

/// Break a Unix timestamp (seconds) down into its UTC calendar fields (proleptic Gregorian calendar).
pub(crate) fn civil(t: i64) -> Civil {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date, using 400-year eras of 146,097 days that begin on March 1.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // 1970-01-01 was a Thursday (weekday 4).
    let weekday = (days + 3).rem_euclid(7) + 1;
    Civil {
        year,
        month,
        day,
        weekday,
        hour: secs / 3_600,
        minute: (secs % 3_600) / 60,
    }
}
