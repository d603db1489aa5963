//! Configuration of an embedded [`Tsdb`](crate::Tsdb): checkpoint and compaction thresholds, and
//! an injectable wall clock so retention and `written_since` can be tested deterministically.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall clock in milliseconds since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// Options for [`Tsdb::open`](crate::Tsdb::open).
#[derive(Clone)]
pub struct TsdbOptions {
    /// Wall clock used for `last_write` times and for retention decisions.
    pub clock: Clock,
    /// Checkpoint (write the head out as chunks) once it holds this many points.
    pub flush_points: u64,
    /// ... or once this many WAL bytes accumulated since the last checkpoint.
    pub flush_wal_bytes: u64,
    /// ... or once the head has held points for this long.
    pub flush_interval: Duration,
    /// How often the background compactor looks for merges, roll-ups and expired data.
    pub compaction_interval: Duration,
    /// Run the background checkpoint and compaction threads. When false, only explicit
    /// [`Tsdb::checkpoint`](crate::Tsdb::checkpoint) / [`Tsdb::compact_now`](crate::Tsdb::compact_now)
    /// calls (and `close`) move data out of the head; the WAL writer always runs.
    pub background: bool,
    /// With background threads on, a write waits (up to a few seconds) while the head holds more
    /// than this many points, i.e. while checkpoints cannot keep up: memory stays bounded.
    pub max_head_points: u64,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            clock: system_clock(),
            flush_points: 256 * 1024,
            flush_wal_bytes: 8 << 20,
            flush_interval: Duration::from_secs(30),
            compaction_interval: Duration::from_secs(30),
            background: true,
            max_head_points: 8 * 256 * 1024,
        }
    }
}

impl TsdbOptions {
    /// Replaces the clock.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }
}

impl fmt::Debug for TsdbOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsdbOptions")
            .field("flush_points", &self.flush_points)
            .field("flush_wal_bytes", &self.flush_wal_bytes)
            .field("flush_interval", &self.flush_interval)
            .field("compaction_interval", &self.compaction_interval)
            .field("background", &self.background)
            .field("max_head_points", &self.max_head_points)
            .finish_non_exhaustive()
    }
}
