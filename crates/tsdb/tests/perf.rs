//! Measurements, printed (run `cargo test -p opsloop-tsdb --release --test perf -- --nocapture
//! --test-threads 1`): ingest rate on one submitting thread with durability on, aggregation over a
//! 1,000,000-point series, bytes per stored point, open time and resident memory on a big data
//! directory. Timings are printed, never asserted; the results themselves are checked. Debug
//! builds run scaled-down sizes.

mod common;

use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use opsloop_tsdb::{MetricStore, Point, SeriesWrite, Tsdb, TsdbError, TsdbOptions};

const RELEASE: bool = !cfg!(debug_assertions);
const PROBE_ENV: &str = "OPSLOOP_TSDB_OPEN_PROBE_DIR";

fn now_minute() -> i64 {
    let now = (opsloop_tsdb::system_clock())();
    now - now % 60_000
}

/// CPU time of the calling thread, in ns (Linux).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Submits batches from this one thread, keeping up to `window` writes in flight, and waits for
/// all acknowledgements.
fn pipelined_ingest(
    db: &Arc<Tsdb>,
    batches: impl Iterator<Item = Vec<SeriesWrite>>,
    window: usize,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), TsdbError>> + Send>>;
    let mut inflight: VecDeque<Fut> = VecDeque::new();
    for b in batches {
        inflight.push_back(db.write(b));
        if inflight.len() >= window {
            rt.block_on(inflight.pop_front().unwrap()).unwrap();
        }
    }
    for f in inflight {
        rt.block_on(f).unwrap();
    }
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn ingest_rate_single_submitting_thread() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
    let t0 = now_minute() - 3_600_000;
    let total: u64 = if RELEASE { 5_000_000 } else { 100_000 };
    // Shape 1: 100 series x 100 points per batch.
    let keys: Vec<_> = (0..1000)
        .map(|i| {
            key(
                "Ingest",
                &[("Host", &format!("host-{i:04}")), ("Az", "use1-az1")],
            )
        })
        .collect();
    let per_batch = 10_000u64;
    let mut rng = Lcg(1);
    let batches = (0..total / per_batch).map(|b| {
        (0..100)
            .map(|s| {
                let k = &keys[((b * 100 + s) % 1000) as usize];
                let pts = (0..100)
                    .map(|j| {
                        v(
                            t0 + (b as i64 * 100 + j) * 10,
                            (rng.below(10_000) as f64) / 100.0,
                        )
                    })
                    .collect();
                sw(k, false, pts)
            })
            .collect::<Vec<_>>()
    });
    let batches: Vec<_> = batches.collect();
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    pipelined_ingest(&db, batches.into_iter(), 64);
    let (el, cpu) = (t.elapsed(), thread_cpu_ns() - cpu);
    println!(
        "ingest (100 series x 100 points per write, one submitting thread, fdatasync group commit): {total} points in {:.3} s = {:.2} M points/s wall; submitting thread CPU {:.3} s = {:.2} M points per CPU-second",
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64() / 1e6,
        cpu as f64 / 1e9,
        total as f64 / (cpu as f64 / 1e9) / 1e6
    );
    // Shape 2: PutMetricData-like, 1000 series writes of one point each.
    let make = || -> Vec<Vec<SeriesWrite>> {
        (0..total / 1000)
            .map(|b| {
                keys.iter()
                    .map(|k| sw(k, false, vec![v(t0 + 3_000_000 + b as i64, 1.0)]))
                    .collect()
            })
            .collect()
    };
    // Baseline: just dropping the same input (the store takes ownership and drops it).
    let batches = make();
    let t = Instant::now();
    for b in batches {
        drop(std::hint::black_box(b));
    }
    let drop_cost = t.elapsed();
    let batches = make();
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    pipelined_ingest(&db, batches.into_iter(), 64);
    let (el, cpu) = (t.elapsed(), thread_cpu_ns() - cpu);
    println!(
        "ingest (1000 series x 1 point per write): {total} points in {:.3} s = {:.2} M points/s wall; submitting thread CPU {:.3} s = {:.2} M points per CPU-second (dropping the caller's input alone takes {:.3} s)",
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64() / 1e6,
        cpu as f64 / 1e9,
        total as f64 / (cpu as f64 / 1e9) / 1e6,
        drop_cost.as_secs_f64()
    );
    assert_eq!(db.stats().points, 2 * total);
    db.close().unwrap();
    let st = db.detailed_stats();
    println!(
        "after close: {} raw points in {} files, {} data bytes = {:.2} bytes/point",
        st.raw_points,
        st.files_per_tier[0],
        st.data_bytes,
        st.data_bytes as f64 / st.raw_points as f64
    );
}

fn million_point_series(n: i64, t0: i64) -> Vec<Point> {
    // n points over 24 h, irregular spacing, a random walk with two decimals.
    let mut rng = Lcg(7);
    let step = 86_400_000 / n;
    let mut x = 500.0f64;
    (0..n)
        .map(|i| {
            x = (x + (rng.below(201) as f64 - 100.0) / 100.0).clamp(0.0, 1000.0);
            v(
                t0 + i * step + rng.below(step as u64) as i64,
                (x * 100.0).round() / 100.0,
            )
        })
        .collect()
}

#[test]
fn aggregate_one_million_points() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let t0 = now_minute() - 86_400_000;
    clock.set(t0 + 86_400_000);
    let db = Tsdb::open(dir.path(), manual_opts(&clock)).unwrap();
    let k = key("Big", &[("Host", "a")]);
    let n: i64 = if RELEASE { 1_000_000 } else { 100_000 };
    let pts = million_point_series(n, t0);
    pipelined_ingest(
        &db,
        pts.chunks(1000).map(|c| vec![sw(&k, false, c.to_vec())]),
        32,
    );
    let runs = if RELEASE { 21 } else { 3 };
    let time = |db: &Tsdb, start: i64, with_values: bool| {
        let mut v = Vec::new();
        let mut buckets = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let b = db
                .aggregate(&k, start, t0 + 86_400_000, 60_000, with_values)
                .unwrap();
            v.push(t.elapsed());
            buckets = b.len();
            assert_eq!(
                b.iter().map(|x| x.count).sum::<f64>() as i64,
                n - pts.iter().filter(|p| p.ts_ms < start).count() as i64
            );
        }
        (p50(v), buckets)
    };
    let (h, hb) = time(&db, t0, false);
    println!(
        "aggregate {n} points, 24 h at 60 s, from the in-memory head: p50 {:.2} ms ({hb} buckets)",
        h.as_secs_f64() * 1e3
    );
    db.checkpoint().unwrap();
    clock.set(t0 + 2 * 86_400_000);
    db.compact_now().unwrap();
    let st = db.detailed_stats();
    println!(
        "stored: {} raw points in {} files, {} bytes = {:.2} bytes/point",
        st.raw_points,
        st.files_per_tier[0],
        st.data_bytes,
        st.data_bytes as f64 / st.raw_points as f64
    );
    for (label, start) in [
        ("minute-aligned start", t0),
        ("start 17 s off the minute", t0 + 17_000),
    ] {
        let (a, _) = time(&db, start, false);
        let (b, _) = time(&db, start, true);
        println!(
            "aggregate {n} points from chunk files, 24 h at 60 s, {label}: p50 {:.3} ms without values, {:.2} ms with values",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        );
    }
    // The answers equal a brute-force reference.
    let got = db.aggregate(&k, t0, t0 + 86_400_000, 60_000, true).unwrap();
    assert_buckets_eq(&got, &reference(&pts, t0, t0 + 86_400_000, 60_000, true));
}

fn probe(dir: &Path) -> (Duration, u64, Option<u64>, Option<u64>, u64) {
    let rss0 = rss_kb();
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    let db = Tsdb::open(dir, TsdbOptions::default()).unwrap();
    let (open, cpu) = (t.elapsed(), thread_cpu_ns() - cpu);
    let rss1 = rss_kb();
    let points = db.stats().points;
    (open, cpu, rss0, rss1, points)
}

/// Child mode of `big_dir_open_time_and_rss`; run alone it checks an empty store opens empty.
#[test]
fn open_probe() {
    if let Ok(dir) = std::env::var(PROBE_ENV) {
        let (open, cpu, rss0, rss1, points) = probe(Path::new(&dir));
        println!(
            "PROBE open_ms={:.2} open_cpu_ms={:.2} rss_before_kb={} rss_after_kb={} points={points}",
            open.as_secs_f64() * 1e3,
            cpu as f64 / 1e6,
            rss0.unwrap_or(0),
            rss1.unwrap_or(0)
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, _, _, _, points) = probe(dir.path());
    assert_eq!(points, 0);
    let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
    db.write_blocking(vec![sw(&key("P", &[]), false, vec![v(now_minute(), 1.0)])])
        .unwrap();
    db.close().unwrap();
    assert_eq!(probe(dir.path()).4, 1);
}

#[test]
fn big_dir_open_time_and_rss() {
    let dir = tempfile::tempdir().unwrap();
    let (series, per_series): (usize, i64) = if RELEASE {
        (2_000, 10_000)
    } else {
        (200, 1_000)
    };
    let t0 = now_minute() - per_series * 10_000;
    {
        let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
        let keys: Vec<_> = (0..series)
            .map(|i| key("Wide", &[("Host", &format!("h{i}")), ("Svc", "api")]))
            .collect();
        let mut rng = Lcg(3);
        let t = Instant::now();
        // Every series gets 100 points per write round, 10 s apart.
        let rounds = per_series / 100;
        let batches = (0..rounds).flat_map(|r| {
            keys.chunks(100)
                .map(|ks| {
                    ks.iter()
                        .map(|k| {
                            let pts = (0..100)
                                .map(|j| v(t0 + (r * 100 + j) * 10_000, rng.below(1000) as f64))
                                .collect();
                            sw(k, false, pts)
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        });
        pipelined_ingest(&db, batches, 64);
        let el = t.elapsed();
        db.close().unwrap();
        let st = db.detailed_stats();
        println!(
            "big dir: {} points in {} series written in {:.1} s; {} files, {:.1} MB data = {:.2} bytes/point",
            st.raw_points,
            st.series,
            el.as_secs_f64(),
            st.files_per_tier.iter().sum::<usize>(),
            st.data_bytes as f64 / 1e6,
            st.data_bytes as f64 / st.raw_points as f64
        );
        assert_eq!(st.raw_points, series as u64 * per_series as u64);
    }
    // A WAL tail as a crash would leave it: a head just under the checkpoint threshold,
    // dropped without close.
    let tail = (TsdbOptions::default().flush_points - 1) as i64;
    {
        let db = Tsdb::open(
            dir.path(),
            TsdbOptions {
                background: false,
                ..TsdbOptions::default()
            },
        )
        .unwrap();
        let k = key("Tail", &[]);
        let t1 = now_minute() - 3_600_000;
        pipelined_ingest(
            &db,
            (0..tail).step_by(1000).map(|i| {
                vec![sw(
                    &k,
                    false,
                    (i..(i + 1000).min(tail))
                        .map(|j| v(t1 + j * 10, j as f64))
                        .collect(),
                )]
            }),
            64,
        );
    }
    let total = series as u64 * per_series as u64 + tail as u64;
    for _ in 0..3 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "open_probe",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(PROBE_ENV, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("PROBE ").map(|x| x.1))
            .unwrap_or_else(|| panic!("no probe output: {stdout}"));
        println!("reopen in a fresh process (replaying a {tail}-point WAL tail): {line}");
        assert!(line.contains(&format!("points={total}")), "{line}");
    }
}
