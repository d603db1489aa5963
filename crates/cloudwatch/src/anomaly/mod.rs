//! Anomaly detection: the band model ([`model`]), the anomaly detector resources of
//! `PutAnomalyDetector` / `DescribeAnomalyDetectors` / `DeleteAnomalyDetector` ([`detectors`]), and
//! [`Models`], the cache of trained models that `ANOMALY_DETECTION_BAND` in GetMetricData and in
//! alarms draws on.
//!
//! A model is trained on demand from the metric store (see [`model`] for the algorithm) and kept for
//! the hour in which its training window ends, so an alarm evaluated every minute retrains at most
//! once an hour. Training honours the `ExcludedTimeRanges` of a matching detector.

pub mod detectors;
pub mod model;

use std::collections::HashMap;
use std::sync::Arc;

use opsloop_store::ControlStore;
use opsloop_tsdb::MetricStore;
use parking_lot::Mutex;

use crate::error::InternalError;
use crate::fetch::{aggregate_metric, find_series, MetricId};
use crate::stats::Statistic;
use crate::window::Window;
pub use model::Model;

const HOUR_MS: i64 = 3_600_000;
/// Most models kept in memory; the cache is emptied when it grows beyond.
const MAX_CACHED: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ModelKey {
    account: String,
    region: String,
    metric: MetricId,
    stat: String,
    period: i64,
    hour: i64,
}

/// Trained models, by metric, statistic, period and training hour.
pub struct Models {
    control: Option<Arc<dyn ControlStore>>,
    cache: Mutex<HashMap<ModelKey, Option<Arc<Model>>>>,
}

impl Models {
    /// Models whose training honours the detectors stored in `control`.
    pub fn new(control: Arc<dyn ControlStore>) -> Self {
        Models {
            control: Some(control),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Models without detector configuration (no excluded ranges).
    pub fn detached() -> Self {
        Models {
            control: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forget every trained model (after a reset).
    pub fn clear(&self) {
        self.cache.lock().clear();
    }

    /// The model of `metric`'s `stat` at `period_s`, trained on the 14 days before `end_ms`;
    /// `None` when there is too little data.
    #[allow(clippy::too_many_arguments)]
    pub fn model(
        &self,
        store: &dyn MetricStore,
        account: &str,
        region: &str,
        metric: &MetricId,
        stat: &str,
        period_s: i64,
        end_ms: i64,
    ) -> Result<Option<Arc<Model>>, InternalError> {
        let key = ModelKey {
            account: account.to_string(),
            region: region.to_string(),
            metric: metric.clone(),
            stat: stat.to_string(),
            period: period_s,
            hour: end_ms.div_euclid(HOUR_MS),
        };
        if let Some(m) = self.cache.lock().get(&key) {
            return Ok(m.clone());
        }
        let excluded = match &self.control {
            Some(control) => detectors::excluded_ranges(&**control, account, region, metric, stat)?,
            None => Vec::new(),
        };
        let points = training_points(store, account, region, metric, stat, period_s, end_ms)?;
        let model = Model::fit(&points, &excluded).map(Arc::new);
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, model.clone());
        Ok(model)
    }
}

/// The statistic of every period with data in the training window ending at `end_ms`.
pub fn training_points(
    store: &dyn MetricStore,
    account: &str,
    region: &str,
    metric: &MetricId,
    stat: &str,
    period_s: i64,
    end_ms: i64,
) -> Result<Vec<(i64, f64)>, InternalError> {
    let Some(statistic) = Statistic::parse(stat) else {
        return Ok(Vec::new());
    };
    let period_ms = period_s.max(1) * 1000;
    // Align the window to the period so training buckets line up with query buckets.
    let end = end_ms.div_euclid(period_ms) * period_ms + period_ms;
    let start = end - model::TRAINING_MS;
    let window = Window {
        start_ms: start,
        end_ms: end,
        period_s,
    };
    let series = find_series(store, account, region, metric, None)?;
    let buckets = aggregate_metric(store, &series, &window, statistic.needs_values())?;
    Ok(buckets
        .iter()
        .filter_map(|b| statistic.compute(b).map(|v| (b.start_ms, v)))
        .collect())
}
