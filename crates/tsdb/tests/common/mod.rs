//! Helpers shared by the integration tests: keys, points, a controllable clock, and a brute-force
//! reference aggregation to compare the store against.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use opsloop_tsdb::{Bucket, Point, Sample, SeriesKey, SeriesWrite, Tsdb, TsdbOptions};

pub fn key(metric: &str, dims: &[(&str, &str)]) -> SeriesKey {
    SeriesKey {
        account: "123456789012".into(),
        region: "us-east-1".into(),
        namespace: "Test/App".into(),
        metric_name: metric.into(),
        dimensions: dims
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        unit: "None".into(),
    }
}

pub fn v(ts_ms: i64, value: f64) -> Point {
    Point {
        ts_ms,
        sample: Sample::Value { value, count: 1.0 },
    }
}

pub fn vc(ts_ms: i64, value: f64, count: f64) -> Point {
    Point {
        ts_ms,
        sample: Sample::Value { value, count },
    }
}

pub fn st(ts_ms: i64, count: f64, sum: f64, min: f64, max: f64) -> Point {
    Point {
        ts_ms,
        sample: Sample::Stats {
            count,
            sum,
            min,
            max,
        },
    }
}

pub fn sw(key: &SeriesKey, hr: bool, points: Vec<Point>) -> SeriesWrite {
    SeriesWrite {
        key: key.clone(),
        high_resolution: hr,
        points,
    }
}

/// A clock tests move by hand.
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicI64>);

impl ManualClock {
    pub fn new(ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Options without background threads, on a manual clock.
pub fn manual_opts(clock: &ManualClock) -> TsdbOptions {
    let c = clock.0.clone();
    TsdbOptions {
        background: false,
        ..TsdbOptions::default()
    }
    .with_clock(move || c.load(Ordering::SeqCst))
}

pub fn open(dir: &Path, opts: TsdbOptions) -> Arc<Tsdb> {
    Tsdb::open(dir, opts).expect("open")
}

/// Straightforward aggregation of `points` following the documented semantics.
pub fn reference(
    points: &[Point],
    start: i64,
    end: i64,
    period: i64,
    with_values: bool,
) -> Vec<Bucket> {
    let mut out: Vec<(Bucket, bool)> = Vec::new();
    let mut sorted: Vec<&Point> = points
        .iter()
        .filter(|p| p.ts_ms >= start && p.ts_ms < end)
        .collect();
    sorted.sort_by_key(|p| p.ts_ms);
    for p in sorted {
        let b0 = start + (p.ts_ms - start) / period * period;
        if out.last().is_none_or(|(b, _)| b.start_ms != b0) {
            out.push((
                Bucket {
                    start_ms: b0,
                    count: 0.0,
                    sum: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    values: Some(Vec::new()),
                },
                true,
            ));
        }
        let (b, capable) = out.last_mut().unwrap();
        let (count, sum, min, max, ok, dist) = match p.sample {
            Sample::Value { value, count } => (count, value * count, value, value, true, value),
            Sample::Stats {
                count,
                sum,
                min,
                max,
            } => {
                let ok = (count == 1.0 && min == max && max == sum)
                    || (min == max && sum == min * count);
                (count, sum, min, max, ok, min)
            }
        };
        b.count += count;
        b.sum += sum;
        b.min = b.min.min(min);
        b.max = b.max.max(max);
        *capable &= ok;
        if let Some(vals) = &mut b.values {
            vals.push((dist, count));
        }
    }
    out.into_iter()
        .map(|(mut b, capable)| {
            b.values = if with_values && capable {
                let mut vals = b.values.take().unwrap();
                vals.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut merged: Vec<(f64, f64)> = Vec::new();
                for (x, w) in vals {
                    match merged.last_mut() {
                        Some(l) if l.0 == x => l.1 += w,
                        _ => merged.push((x, w)),
                    }
                }
                Some(merged)
            } else {
                None
            };
            b
        })
        .collect()
}

/// Compares buckets, allowing float sums to differ by rounding.
pub fn assert_buckets_eq(got: &[Bucket], want: &[Bucket]) {
    assert_eq!(
        got.len(),
        want.len(),
        "bucket count; got {:?}",
        got.iter().map(|b| b.start_ms).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.start_ms, w.start_ms);
        assert_eq!(g.count, w.count, "count at {}", w.start_ms);
        assert!(
            (g.sum - w.sum).abs() <= 1e-9 * w.sum.abs().max(1.0),
            "sum at {}: {} vs {}",
            w.start_ms,
            g.sum,
            w.sum
        );
        assert_eq!(g.min, w.min, "min at {}", w.start_ms);
        assert_eq!(g.max, w.max, "max at {}", w.start_ms);
        assert_eq!(g.values, w.values, "values at {}", w.start_ms);
    }
}

/// A deterministic pseudo-random sequence.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
