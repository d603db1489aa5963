//! From a metric identity to aggregated periods: finding the stored series of exactly one metric
//! (one per unit), aggregating each over a query [`Window`], and merging units into one series.

use std::collections::BTreeMap;

use opsloop_tsdb::{Bucket, MetricStore, SeriesFilter, SeriesInfo, TsdbError};

use crate::window::Window;

/// A metric: namespace, name and its full dimension set (sorted by name).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct MetricId {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    /// A metric id with its dimensions sorted by name.
    pub fn new(
        namespace: String,
        metric_name: String,
        mut dimensions: Vec<(String, String)>,
    ) -> Self {
        dimensions.sort();
        MetricId {
            namespace,
            metric_name,
            dimensions,
        }
    }
}

/// The series of exactly `id` (the full dimension set must match) in this account and region,
/// restricted to `unit` when given, sorted by key.
pub fn find_series(
    store: &dyn MetricStore,
    account: &str,
    region: &str,
    id: &MetricId,
    unit: Option<&str>,
) -> Result<Vec<SeriesInfo>, TsdbError> {
    let filter = SeriesFilter {
        account: account.to_string(),
        region: region.to_string(),
        namespace: Some(id.namespace.clone()),
        metric_name: Some(id.metric_name.clone()),
        dimensions: id
            .dimensions
            .iter()
            .map(|(n, v)| (n.clone(), Some(v.clone())))
            .collect(),
        written_since_ms: None,
    };
    let mut found = store.list_series(&filter)?;
    found.retain(|s| {
        s.key.namespace == id.namespace
            && s.key.metric_name == id.metric_name
            && s.key.dimensions == id.dimensions
            && unit.is_none_or(|u| s.key.unit == u)
    });
    Ok(found)
}

/// Non-empty periods of one series over the window, ascending (see [`Window::span`] for how
/// standard-resolution series are treated).
pub fn aggregate(
    store: &dyn MetricStore,
    series: &SeriesInfo,
    window: &Window,
    with_values: bool,
) -> Result<Vec<Bucket>, TsdbError> {
    let span = window.span(series.high_resolution);
    if span.start_ms >= span.end_ms {
        return Ok(Vec::new());
    }
    store.aggregate(
        &series.key,
        span.start_ms,
        span.end_ms,
        span.period_ms,
        with_values,
    )
}

/// Combine two aggregates of the same period.
pub fn merge_bucket(into: &mut Bucket, other: Bucket) {
    into.count += other.count;
    into.sum += other.sum;
    into.min = into.min.min(other.min);
    into.max = into.max.max(other.max);
    into.values = match (into.values.take(), other.values) {
        (Some(a), Some(b)) => Some(merge_sorted(a, b)),
        _ => None,
    };
}

fn merge_sorted(a: Vec<(f64, f64)>, b: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut ia, mut ib) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (ia.peek(), ib.peek()) {
            (Some(x), Some(y)) => x.0 <= y.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_a { ia.next() } else { ib.next() };
        out.extend(next);
    }
    out
}

/// Buckets of several series merged period by period, ascending.
pub fn merge_series(parts: Vec<Vec<Bucket>>) -> Vec<Bucket> {
    let mut parts = parts.into_iter().filter(|p| !p.is_empty());
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut by_start: BTreeMap<i64, Bucket> = first.into_iter().map(|b| (b.start_ms, b)).collect();
    for part in parts {
        for b in part {
            match by_start.get_mut(&b.start_ms) {
                Some(existing) => merge_bucket(existing, b),
                None => {
                    by_start.insert(b.start_ms, b);
                }
            }
        }
    }
    by_start.into_values().collect()
}

/// All units of one metric, aggregated over the window and merged.
pub fn aggregate_metric(
    store: &dyn MetricStore,
    series: &[SeriesInfo],
    window: &Window,
    with_values: bool,
) -> Result<Vec<Bucket>, TsdbError> {
    let parts = series
        .iter()
        .map(|s| aggregate(store, s, window, with_values))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge_series(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(start: i64, values: &[f64]) -> Bucket {
        Bucket {
            start_ms: start,
            count: values.len() as f64,
            sum: values.iter().sum(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            values: Some(values.iter().map(|&v| (v, 1.0)).collect()),
        }
    }

    #[test]
    fn merging_units_combines_equal_periods() {
        let merged = merge_series(vec![
            vec![b(0, &[1.0, 5.0]), b(60, &[2.0])],
            vec![b(0, &[3.0]), b(120, &[4.0])],
        ]);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].start_ms, 0);
        assert_eq!(merged[0].count, 3.0);
        assert_eq!(merged[0].sum, 9.0);
        assert_eq!(merged[0].min, 1.0);
        assert_eq!(merged[0].max, 5.0);
        assert_eq!(
            merged[0].values,
            Some(vec![(1.0, 1.0), (3.0, 1.0), (5.0, 1.0)])
        );
        assert_eq!(
            merged.iter().map(|b| b.start_ms).collect::<Vec<_>>(),
            vec![0, 60, 120]
        );
    }

    #[test]
    fn missing_distribution_poisons_the_merge() {
        let mut x = b(0, &[1.0]);
        let mut y = b(0, &[2.0]);
        y.values = None;
        merge_bucket(&mut x, y);
        assert_eq!(x.values, None);
        assert_eq!(x.count, 2.0);
    }

    #[test]
    fn metric_ids_sort_dimensions() {
        let id = MetricId::new(
            "N".into(),
            "M".into(),
            vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        );
        assert_eq!(id.dimensions[0].0, "a");
    }
}
