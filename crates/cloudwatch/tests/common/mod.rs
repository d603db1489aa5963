//! Test support: an in-memory [`MetricStore`] double with the contract of `opsloop_tsdb` (periods
//! aligned to the requested start, half-open ranges, distributions for raw values and qualifying
//! statistic sets), and helpers to call the service like the wire layer does.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opsloop_cloudwatch::CloudWatch;
use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, Value};
use opsloop_store::SqliteStore;
use opsloop_tsdb::{
    Bucket, MetricStore, Sample, SeriesFilter, SeriesInfo, SeriesKey, SeriesWrite, StoreStats,
    TsdbError,
};
use parking_lot::Mutex;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

#[derive(Default)]
struct Stored {
    high_resolution: bool,
    points: Vec<(i64, Sample)>,
    last_write_ms: i64,
}

/// The in-memory store double.
#[derive(Default)]
pub struct MemStore {
    series: Mutex<std::collections::BTreeMap<SeriesKey, Stored>>,
    pub writes: Mutex<usize>,
}

pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl MetricStore for MemStore {
    fn write(&self, batch: Vec<SeriesWrite>) -> BoxFuture<'static, Result<(), TsdbError>> {
        let now = wall_ms();
        let mut series = self.series.lock();
        for w in batch {
            let s = series.entry(w.key).or_default();
            s.high_resolution |= w.high_resolution;
            s.points
                .extend(w.points.into_iter().map(|p| (p.ts_ms, p.sample)));
            s.last_write_ms = now;
        }
        *self.writes.lock() += 1;
        Box::pin(async { Ok(()) })
    }

    fn aggregate(
        &self,
        key: &SeriesKey,
        start_ms: i64,
        end_ms: i64,
        period_ms: i64,
        with_values: bool,
    ) -> Result<Vec<Bucket>, TsdbError> {
        let series = self.series.lock();
        let Some(s) = series.get(key) else {
            return Ok(Vec::new());
        };
        let mut buckets: std::collections::BTreeMap<i64, (Bucket, bool)> = Default::default();
        for &(ts, sample) in &s.points {
            if ts < start_ms || ts >= end_ms {
                continue;
            }
            let start = start_ms + (ts - start_ms) / period_ms * period_ms;
            let (b, ok) = buckets.entry(start).or_insert_with(|| {
                (
                    Bucket {
                        start_ms: start,
                        count: 0.0,
                        sum: 0.0,
                        min: f64::INFINITY,
                        max: f64::NEG_INFINITY,
                        values: Some(Vec::new()),
                    },
                    true,
                )
            });
            let (count, sum, min, max, dist) = match sample {
                Sample::Value { value, count } => {
                    (count, value * count, value, value, Some((value, count)))
                }
                Sample::Stats {
                    count,
                    sum,
                    min,
                    max,
                } => {
                    let qualifies = count == 1.0 || min == max;
                    (count, sum, min, max, qualifies.then_some((min, count)))
                }
            };
            b.count += count;
            b.sum += sum;
            b.min = b.min.min(min);
            b.max = b.max.max(max);
            match dist {
                Some(d) => b.values.get_or_insert_with(Vec::new).push(d),
                None => *ok = false,
            }
        }
        Ok(buckets
            .into_values()
            .map(|(mut b, ok)| {
                b.values = match (with_values && ok, b.values.take()) {
                    (true, Some(mut v)) => {
                        v.sort_by(|a, b| a.0.total_cmp(&b.0));
                        Some(v)
                    }
                    _ => None,
                };
                b
            })
            .collect())
    }

    fn list_series(&self, f: &SeriesFilter) -> Result<Vec<SeriesInfo>, TsdbError> {
        let series = self.series.lock();
        Ok(series
            .iter()
            .filter(|(k, s)| {
                k.account == f.account
                    && k.region == f.region
                    && f.namespace.as_ref().is_none_or(|n| *n == k.namespace)
                    && f.metric_name.as_ref().is_none_or(|n| *n == k.metric_name)
                    && f.dimensions.iter().all(|(name, value)| {
                        k.dimensions
                            .iter()
                            .any(|(n, v)| n == name && value.as_ref().is_none_or(|x| x == v))
                    })
                    && f.written_since_ms.is_none_or(|t| s.last_write_ms >= t)
            })
            .map(|(k, s)| SeriesInfo {
                key: k.clone(),
                high_resolution: s.high_resolution,
                last_ts_ms: s.points.iter().map(|p| p.0).max().unwrap_or(0),
                last_write_ms: s.last_write_ms,
            })
            .collect())
    }

    fn stats(&self) -> StoreStats {
        let series = self.series.lock();
        StoreStats {
            series: series.len() as u64,
            points: series.values().map(|s| s.points.len() as u64).sum(),
            bytes_on_disk: 0,
        }
    }

    fn wipe(&self) -> Result<(), TsdbError> {
        self.series.lock().clear();
        Ok(())
    }

    fn close(&self) -> Result<(), TsdbError> {
        Ok(())
    }
}

impl MemStore {
    /// Make a series look last written at `ms` (wall clock).
    pub fn set_last_write(&self, metric_name: &str, ms: i64) {
        for (k, s) in self.series.lock().iter_mut() {
            if k.metric_name == metric_name {
                s.last_write_ms = ms;
            }
        }
    }

    pub fn points(&self) -> usize {
        self.stats().points as usize
    }
}

/// A service over a fresh in-memory metric store and SQLite control store.
pub fn service() -> (CloudWatch, Arc<MemStore>) {
    let store = Arc::new(MemStore::default());
    let control = Arc::new(SqliteStore::memory().unwrap());
    (CloudWatch::new(store.clone(), control), store)
}

/// A service over any metric store.
pub fn service_over(store: Arc<dyn MetricStore>) -> CloudWatch {
    CloudWatch::new(store, Arc::new(SqliteStore::memory().unwrap()))
}

/// The context of a request as it arrives from the wire (not from another opsloop service).
pub fn ctx(operation: &str) -> RequestContext {
    RequestContext {
        request_id: "test-request".to_string(),
        ..RequestContext::internal(ACCOUNT, REGION, operation)
    }
}

pub async fn call(svc: &CloudWatch, operation: &str, input: Value) -> Result<Value, ApiError> {
    svc.call(&ctx(operation), input).await
}

/// The current minute, in epoch seconds, minus `minutes_ago` minutes.
pub fn minute(minutes_ago: i64) -> i64 {
    let now_s = wall_ms() / 1000;
    now_s - now_s.rem_euclid(60) - minutes_ago * 60
}

pub fn expect_err(r: Result<Value, ApiError>, kind: &str) -> ApiError {
    match r {
        Ok(v) => panic!("expected {kind}, got {v}"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{}", e.message);
            e
        }
    }
}
