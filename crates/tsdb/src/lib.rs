//! The metric time-series store behind a trait ([`MetricStore`]) and its embedded implementation,
//! [`Tsdb`]: a write-ahead log with group commit, an in-memory head, immutable compressed chunk
//! files per time window (Gorilla-style, with per-frame pre-aggregates), CloudWatch-style roll-ups
//! and retention, and a persistent series index. See `DESIGN.md` beside this crate.
//!
//! Architecture invariant: this crate knows nothing of CloudWatch's API or any wire format; it stores
//! samples per series and aggregates them by period.

use opsloop_core::BoxFuture;

mod agg;
mod bits;
mod compact;
mod datafile;
mod db;
mod gorilla;
mod head;
mod manifest;
mod options;
mod query;
mod rollup;
mod series;
mod sketch;
mod wal;

pub use compact::{
    CompactionReport, FIVE_MINUTE_RETENTION_MS, HIGH_RES_RETENTION_MS, HOUR_RETENTION_MS,
    MINUTE_RETENTION_MS,
};
pub use db::{Tsdb, TsdbStats};
pub use options::{system_clock, Clock, TsdbOptions};

/// Identity of one stored series. Metric identity in CloudWatch is (namespace, name, dimensions); the
/// store also keys on `unit` so that unit filters are exact, and on account and region (resources are
/// regional).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub account: String,
    pub region: String,
    pub namespace: String,
    pub metric_name: String,
    /// Sorted by name; names unique.
    pub dimensions: Vec<(String, String)>,
    /// CloudWatch unit name, `"None"` when unspecified.
    pub unit: String,
}

/// One sample as published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A raw value occurring `count` times (`Value`, or `Values`/`Counts`).
    Value { value: f64, count: f64 },
    /// A statistic set.
    Stats {
        count: f64,
        sum: f64,
        min: f64,
        max: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub ts_ms: i64,
    pub sample: Sample,
}

/// Points for one series in a write.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesWrite {
    pub key: SeriesKey,
    /// StorageResolution 1 (true) or 60 (false).
    pub high_resolution: bool,
    pub points: Vec<Point>,
}

/// The aggregate of one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Start of the period, ms since the epoch (aligned as the query asked).
    pub start_ms: i64,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The distribution of values as `(value, weight)` pairs, sorted by value, when percentile-type
    /// statistics can be computed for this period (raw values, or statistic sets that qualify, or a
    /// roll-up's sketch); `None` when they cannot.
    pub values: Option<Vec<(f64, f64)>>,
}

/// A series the store knows.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    pub key: SeriesKey,
    pub high_resolution: bool,
    /// Newest timestamp written, ms since the epoch.
    pub last_ts_ms: i64,
    /// Wall-clock time of the last write to this series, ms since the epoch.
    pub last_write_ms: i64,
}

/// Which series to list. `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesFilter {
    pub account: String,
    pub region: String,
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// Each named dimension must be present; with `Some(value)` it must equal that value.
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only series written (wall clock) at or after this time.
    pub written_since_ms: Option<i64>,
}

/// Sizes, for health and benchmarks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    pub series: u64,
    pub points: u64,
    pub bytes_on_disk: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("store is closed")]
    Closed,
}

/// A metric store. Implementations must be durable: `write` resolves only after its points are on
/// stable storage (group commit allowed), and a crash after that never loses them.
pub trait MetricStore: Send + Sync + 'static {
    /// Append points; resolves once they are durable.
    fn write(&self, batch: Vec<SeriesWrite>) -> BoxFuture<'static, Result<(), TsdbError>>;

    /// Aggregate `key`'s samples with `start_ms <= ts < end_ms` into periods of `period_ms`, aligned
    /// to `start_ms`. Returns only non-empty buckets, ascending. `with_values` asks for
    /// [`Bucket::values`]. CPU-bound: call from a blocking context for large ranges.
    fn aggregate(
        &self,
        key: &SeriesKey,
        start_ms: i64,
        end_ms: i64,
        period_ms: i64,
        with_values: bool,
    ) -> Result<Vec<Bucket>, TsdbError>;

    /// Series matching `filter`, sorted by key.
    fn list_series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>, TsdbError>;

    fn stats(&self) -> StoreStats;

    /// Remove everything (the server's reset endpoint).
    fn wipe(&self) -> Result<(), TsdbError>;

    /// Flush and close; later writes fail with [`TsdbError::Closed`].
    fn close(&self) -> Result<(), TsdbError>;
}
