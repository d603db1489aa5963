//! Retention and roll-ups on an injected clock: high-resolution raw data becomes 60-s aggregates
//! after 3 h, everything becomes 5-minute aggregates after 15 days and 1-hour aggregates after
//! 63 days, and is gone after 455 days. Counts, sums, minima and maxima survive every roll-up
//! exactly; percentiles survive within about 1%.

mod common;

use common::*;
use opsloop_tsdb::{Bucket, MetricStore, Tsdb};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_006_400_000; // a 2-hour boundary (and a day boundary + 6400 s)

fn totals(b: &[Bucket]) -> (f64, f64, f64, f64) {
    b.iter()
        .fold((0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY), |a, x| {
            (a.0 + x.count, a.1 + x.sum, a.2.min(x.min), a.3.max(x.max))
        })
}

fn percentile(values: &[(f64, f64)], p: f64) -> f64 {
    let total: f64 = values.iter().map(|x| x.1).sum();
    let mut acc = 0.0;
    for (v, w) in values {
        acc += w;
        if acc >= p * total {
            return *v;
        }
    }
    values.last().unwrap().0
}

/// One hour of 1-second high-resolution data (values 1..=3600) and one hour of standard data.
fn seed(db: &Tsdb) -> (Vec<opsloop_tsdb::Point>, Vec<opsloop_tsdb::Point>) {
    let hr: Vec<_> = (0..3600)
        .map(|i| v(T0 + i * 1000, (i + 1) as f64))
        .collect();
    let std: Vec<_> = (0..60)
        .map(|i| vc(T0 + i * MIN + 500, (i % 7) as f64, 2.0))
        .collect();
    db.write_blocking(vec![
        sw(&key("Hr", &[]), true, hr.clone()),
        sw(&key("Std", &[]), false, std.clone()),
    ])
    .unwrap();
    db.checkpoint().unwrap();
    (hr, std)
}

#[test]
fn high_resolution_rolls_to_minutes_after_three_hours() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + HOUR);
    let db = open(dir.path(), manual_opts(&clock));
    let (hr, std) = seed(&db);
    let k_hr = key("Hr", &[]);
    let k_std = key("Std", &[]);

    // Two hours later nothing is due yet: 1-second periods still see 1-second data.
    clock.set(T0 + 3 * HOUR);
    db.compact_now().unwrap();
    assert_eq!(
        db.aggregate(&k_hr, T0, T0 + HOUR, 1000, false)
            .unwrap()
            .len(),
        3600
    );

    clock.set(T0 + 2 * HOUR + 3 * HOUR + 1);
    let rep = db.compact_now().unwrap();
    assert_eq!(rep.rollups, 1, "{rep:?}");
    let st = db.detailed_stats();
    assert_eq!(st.files_per_tier[1], 1, "{st:?}");
    assert_eq!(
        st.raw_points, 60,
        "only the standard series stays raw: {st:?}"
    );
    assert_eq!(st.rollup_records, 60);

    // 1-second queries now see one point per minute, with the minute's totals.
    let b = db.aggregate(&k_hr, T0, T0 + HOUR, 1000, false).unwrap();
    assert_eq!(b.len(), 60);
    assert_eq!(
        (b[0].start_ms, b[0].count, b[0].sum, b[0].min, b[0].max),
        (T0, 60.0, 1830.0, 1.0, 60.0)
    );
    let b = db.aggregate(&k_hr, T0, T0 + HOUR, HOUR, true).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(
        totals(&b),
        totals(&reference(&hr, T0, T0 + HOUR, HOUR, false))
    );
    let vals = b[0].values.as_ref().expect("sketch gives percentiles");
    for (p, exact) in [(0.5, 1800.0), (0.9, 3240.0), (0.99, 3564.0)] {
        let got = percentile(vals, p);
        assert!(
            (got - exact).abs() / exact < 0.012,
            "p{p}: {got} vs {exact}"
        );
    }
    // The standard series is untouched and exact.
    assert_buckets_eq(
        &db.aggregate(&k_std, T0, T0 + HOUR, 60_000, true).unwrap(),
        &reference(&std, T0, T0 + HOUR, 60_000, true),
    );
    // Survives reopen.
    db.close().unwrap();
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(
        db.aggregate(&k_hr, T0, T0 + HOUR, 1000, false)
            .unwrap()
            .len(),
        60
    );
}

#[test]
fn minutes_then_five_minutes_then_hours_then_gone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + HOUR);
    let db = open(dir.path(), manual_opts(&clock));
    let (hr, std) = seed(&db);
    let keys = [(key("Hr", &[]), hr), (key("Std", &[]), std)];
    let exact: Vec<_> = keys
        .iter()
        .map(|(_, p)| totals(&reference(p, T0, T0 + HOUR, HOUR, false)))
        .collect();
    let check = |db: &Tsdb, want_buckets_at_1min: usize| {
        for ((k, _), want) in keys.iter().zip(&exact) {
            let b = db
                .aggregate(k, T0 - 30 * DAY, T0 + 30 * DAY, 60_000, true)
                .unwrap();
            assert_eq!(b.len(), want_buckets_at_1min, "{}", k.metric_name);
            assert_eq!(totals(&b), *want, "{}", k.metric_name);
        }
    };

    clock.set(T0 + 16 * DAY);
    let rep = db.compact_now().unwrap();
    assert!(rep.rollups >= 1, "{rep:?}");
    let st = db.detailed_stats();
    assert_eq!(
        (st.raw_points, st.files_per_tier),
        (0, [0, 0, 1, 0]),
        "{st:?}"
    );
    check(&db, 12); // one record per 5 minutes

    clock.set(T0 + 70 * DAY);
    db.compact_now().unwrap();
    assert_eq!(db.detailed_stats().files_per_tier, [0, 0, 0, 1]);
    check(&db, 1); // one record per hour
    let b = db.aggregate(&keys[0].0, T0, T0 + HOUR, HOUR, true).unwrap();
    let p50 = percentile(b[0].values.as_ref().unwrap(), 0.5);
    assert!((p50 - 1800.0).abs() / 1800.0 < 0.012, "p50 {p50}");
    // Standard samples were values with counts: still percentile-capable.
    assert!(
        db.aggregate(&keys[1].0, T0, T0 + HOUR, HOUR, true).unwrap()[0]
            .values
            .is_some()
    );

    clock.set(T0 + 400 * DAY);
    db.compact_now().unwrap();
    check(&db, 1);

    clock.set(T0 + 456 * DAY + 28 * DAY);
    let rep = db.compact_now().unwrap();
    assert_eq!(rep.expired_files, 1, "{rep:?}");
    let st = db.detailed_stats();
    assert_eq!(
        (st.raw_points, st.rollup_records, st.files_per_tier),
        (0, 0, [0; 4])
    );
    for (k, _) in &keys {
        assert!(db.aggregate(k, 0, i64::MAX, DAY, false).unwrap().is_empty());
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("data")).unwrap().count(),
        0
    );
}

#[test]
fn statistic_sets_that_do_not_qualify_lose_percentiles_but_keep_totals_in_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let db = open(dir.path(), manual_opts(&clock));
    let k = key("Sets", &[]);
    let pts = vec![
        st(T0, 3.0, 6.0, 1.0, 3.0),
        st(T0 + 10 * MIN, 2.0, 8.0, 4.0, 4.0),
    ];
    db.write_blocking(vec![sw(&k, true, pts.clone())]).unwrap();
    db.checkpoint().unwrap();
    clock.set(T0 + 20 * DAY);
    db.compact_now().unwrap();
    let b = db.aggregate(&k, T0, T0 + HOUR, 5 * MIN, true).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(
        (
            b[0].count,
            b[0].sum,
            b[0].min,
            b[0].max,
            b[0].values.clone()
        ),
        (3.0, 6.0, 1.0, 3.0, None)
    );
    assert_eq!(
        (b[1].count, b[1].sum, b[1].values.clone()),
        (2.0, 8.0, Some(vec![(4.0, 2.0)]))
    );
}

#[test]
fn late_data_for_an_old_window_is_rolled_up_on_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 10 * HOUR);
    let db = open(dir.path(), manual_opts(&clock));
    let k = key("Hr", &[]);
    // Written "now" for timestamps 9-10 hours ago, in two batches and two checkpoints.
    for half in 0..2i64 {
        let pts = (0..1800)
            .map(|i| v(T0 + (half * 1800 + i) * 1000, 1.0))
            .collect();
        db.write_blocking(vec![sw(&k, true, pts)]).unwrap();
        db.checkpoint().unwrap();
        db.compact_now().unwrap();
    }
    // Two 60-s runs in a day window that is still open.
    let st = db.detailed_stats();
    assert_eq!(
        (st.raw_points, st.rollup_records, st.files_per_tier),
        (0, 60, [0, 2, 0, 0]),
        "{st:?}"
    );
    let b = db.aggregate(&k, T0, T0 + HOUR, HOUR, false).unwrap();
    assert_eq!((b[0].count, b[0].sum), (3600.0, 3600.0));
    // Once the day is over they merge into one file.
    clock.set(T0 + 2 * DAY);
    let rep = db.compact_now().unwrap();
    assert_eq!(rep.merges, 1, "{rep:?}");
    let st = db.detailed_stats();
    assert_eq!(
        (st.rollup_records, st.files_per_tier),
        (60, [0, 1, 0, 0]),
        "{st:?}"
    );
    let b = db.aggregate(&k, T0, T0 + HOUR, MIN, true).unwrap();
    assert_eq!(b.len(), 60);
    assert_eq!(
        (b[59].count, b[59].sum, b[59].values.clone()),
        (60.0, 60.0, Some(vec![(1.0, 60.0)]))
    );
}
