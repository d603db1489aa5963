//! Query windows: valid periods, how CloudWatch rounds `StartTime`, and the retention rules that
//! decide which periods can still be served for old data (API reference, `GetMetricStatistics` and
//! `GetMetricData` `StartTime`/`Period`):
//!
//! * Periods are 1, 5, 10, 20, 30 or any multiple of 60 seconds.
//! * `StartTime` is rounded down: to the period for sub-minute periods (even 5-, 10-, 20-, 30-second
//!   divisions of a minute); otherwise to the whole minute when less than 15 days ago, to 5 minutes
//!   when 15 to 63 days ago, to the hour beyond. Periods are then aligned to the rounded start, and
//!   each datapoint is stamped with the start of its period. `EndTime` is exclusive.
//! * Data older than 3 hours is only served at multiples of 60 s, older than 15 days at multiples of
//!   300 s, older than 63 days at multiples of 3600 s; otherwise "no data points in that time range
//!   is returned".

pub const SECOND_MS: i64 = 1000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Whether CloudWatch accepts `period` seconds.
pub fn valid_period(period: i64) -> bool {
    // `Period` is a 32-bit integer in the model; larger values are not periods.
    matches!(period, 1 | 5 | 10 | 20 | 30)
        || (period >= 60 && period % 60 == 0 && period <= i64::from(i32::MAX))
}

/// The message for an invalid period of parameter `path`.
pub fn period_message(path: &str) -> String {
    format!("The parameter {path} must be 1, 5, 10, 20, 30, or a multiple of 60.")
}

fn floor_to(ms: i64, unit: i64) -> i64 {
    ms.div_euclid(unit) * unit
}

fn ceil_to(ms: i64, unit: i64) -> i64 {
    -floor_to(-ms, unit)
}

/// `StartTime` rounded down as CloudWatch does, relative to `now_ms`.
pub fn round_start(start_ms: i64, period_s: i64, now_ms: i64) -> i64 {
    let age = now_ms - start_ms;
    if period_s < 60 {
        floor_to(start_ms, period_s.max(1) * SECOND_MS)
    } else if age <= 15 * DAY_MS {
        floor_to(start_ms, MINUTE_MS)
    } else if age <= 63 * DAY_MS {
        floor_to(start_ms, 5 * MINUTE_MS)
    } else {
        floor_to(start_ms, HOUR_MS)
    }
}

/// Whether data starting at `start_ms` is still kept at `period_s` granularity.
pub fn retention_allows(start_ms: i64, period_s: i64, now_ms: i64) -> bool {
    let age = now_ms - start_ms;
    if age <= 3 * HOUR_MS {
        true
    } else if age <= 15 * DAY_MS {
        period_s % 60 == 0
    } else if age <= 63 * DAY_MS {
        period_s % 300 == 0
    } else {
        period_s % 3600 == 0
    }
}

/// Number of periods between the rounded start and the (exclusive) end.
pub fn period_count(start_ms: i64, end_ms: i64, period_s: i64) -> i64 {
    let span = end_ms.saturating_sub(start_ms).max(0);
    let p = period_s.clamp(1, i64::from(i32::MAX)) * SECOND_MS;
    span / p + i64::from(span % p != 0)
}

/// One aggregation request against a series, in store terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
    pub period_ms: i64,
}

/// A resolved query window: rounded start, exclusive end, period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
    pub period_s: i64,
}

impl Window {
    pub fn new(start_ms: i64, end_ms: i64, period_s: i64, now_ms: i64) -> Self {
        Window {
            start_ms: round_start(start_ms, period_s, now_ms),
            end_ms,
            period_s,
        }
    }

    /// What to ask the store for a series.
    ///
    /// Standard-resolution data (StorageResolution 60) is stored with full timestamp precision but
    /// has minute granularity, as in CloudWatch: a sample counts as occurring at the start of its
    /// minute. Such a sample belongs to the window when its minute start does, i.e. when its raw
    /// time is in `[ceil_minute(start), ceil_minute(end))`. For sub-minute periods it is aggregated
    /// per minute, and the minute starts lie on the query's period grid because the period divides
    /// 60 and the start is rounded to it.
    pub fn span(&self, high_resolution: bool) -> Span {
        let period_ms = self.period_s * SECOND_MS;
        if high_resolution {
            return Span {
                start_ms: self.start_ms,
                end_ms: self.end_ms,
                period_ms,
            };
        }
        Span {
            start_ms: ceil_to(self.start_ms, MINUTE_MS),
            end_ms: ceil_to(self.end_ms, MINUTE_MS),
            period_ms: period_ms.max(MINUTE_MS),
        }
    }

    /// Whether the window's start is served at this period at all.
    pub fn retained(&self, now_ms: i64) -> bool {
        retention_allows(self.start_ms, self.period_s, now_ms)
    }

    /// Every period start of the window, ascending.
    pub fn period_starts(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.period_s.max(1) * SECOND_MS;
        (0..period_count(self.start_ms, self.end_ms, self.period_s))
            .map(move |i| self.start_ms + i * step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn periods() {
        for p in [1, 5, 10, 20, 30, 60, 120, 300, 86_400, 604_800] {
            assert!(valid_period(p), "{p}");
        }
        for p in [
            0,
            -60,
            2,
            15,
            45,
            59,
            61,
            90,
            100,
            i64::MAX - 7,
            60 * i64::from(i32::MAX),
        ] {
            assert!(!valid_period(p), "{p}");
        }
    }

    #[test]
    fn start_rounding_by_age_and_period() {
        let recent = floor_to(NOW, DAY_MS) + 12 * HOUR_MS + 32 * MINUTE_MS + 34 * SECOND_MS;
        let now = recent + 10 * MINUTE_MS;
        // Less than 15 days ago: whole minute (12:32:34 -> 12:32:00).
        assert_eq!(round_start(recent, 60, now) % HOUR_MS, 32 * MINUTE_MS);
        // Sub-minute periods: 10-second divisions (12:32:34 -> 12:32:30), 1 s stays.
        assert_eq!(round_start(recent, 10, now) % MINUTE_MS, 30 * SECOND_MS);
        assert_eq!(round_start(recent, 20, now) % MINUTE_MS, 20 * SECOND_MS);
        assert_eq!(round_start(recent + 250, 1, now), recent);
        // 15 to 63 days ago: 5 minutes (12:32:34 -> 12:30:00).
        let old = recent - 20 * DAY_MS;
        assert_eq!(round_start(old, 60, now) % HOUR_MS, 30 * MINUTE_MS);
        // Beyond 63 days: the hour (12:32:34 -> 12:00:00).
        let older = recent - 70 * DAY_MS;
        assert_eq!(round_start(older, 60, now) % HOUR_MS, 0);
        assert_eq!(round_start(older, 60, now) % DAY_MS, 12 * HOUR_MS);
    }

    #[test]
    fn retention_rules() {
        assert!(retention_allows(NOW - HOUR_MS, 1, NOW));
        assert!(!retention_allows(NOW - 4 * HOUR_MS, 30, NOW));
        assert!(retention_allows(NOW - 4 * HOUR_MS, 60, NOW));
        assert!(!retention_allows(NOW - 20 * DAY_MS, 60, NOW));
        assert!(retention_allows(NOW - 20 * DAY_MS, 600, NOW));
        assert!(!retention_allows(NOW - 70 * DAY_MS, 300, NOW));
        assert!(retention_allows(NOW - 70 * DAY_MS, 7200, NOW));
    }

    #[test]
    fn counting_periods() {
        assert_eq!(period_count(0, DAY_MS, 1), 86_400);
        assert_eq!(period_count(0, DAY_MS, 60), 1440);
        assert_eq!(period_count(0, DAY_MS + 1, 60), 1441);
        assert_eq!(period_count(10, 5, 60), 0);
        assert_eq!(
            period_count(i64::MIN / 2, i64::MAX / 2, 1),
            (i64::MAX - 1) / 1000 + 1
        );
    }

    #[test]
    fn standard_resolution_spans_are_minute_grained() {
        let start = 10 * MINUTE_MS + 15 * SECOND_MS;
        let w = Window {
            start_ms: start,
            end_ms: 20 * MINUTE_MS + 5 * SECOND_MS,
            period_s: 5,
        };
        assert_eq!(
            w.span(true),
            Span {
                start_ms: start,
                end_ms: w.end_ms,
                period_ms: 5000
            }
        );
        assert_eq!(
            w.span(false),
            Span {
                start_ms: 11 * MINUTE_MS,
                end_ms: 21 * MINUTE_MS,
                period_ms: MINUTE_MS
            }
        );
        let w60 = Window {
            start_ms: 10 * MINUTE_MS,
            end_ms: 20 * MINUTE_MS,
            period_s: 300,
        };
        assert_eq!(w60.span(false).period_ms, 300_000);
        assert_eq!(w60.span(false).start_ms, 10 * MINUTE_MS);
    }

    #[test]
    fn period_starts_cover_the_window() {
        let w = Window {
            start_ms: 0,
            end_ms: 150_000,
            period_s: 60,
        };
        assert_eq!(
            w.period_starts().collect::<Vec<_>>(),
            vec![0, 60_000, 120_000]
        );
    }
}
