//! Aggregation semantics: values with counts, statistic sets and percentile capability, bucket
//! alignment, equal timestamps — the same answers from the head, from chunk files and after reopen.

mod common;

use common::*;
use opsloop_tsdb::{MetricStore, Point};

const T0: i64 = 1_700_000_040_000; // a minute boundary

fn scenario() -> Vec<Point> {
    vec![
        v(T0, 10.0),
        v(T0, 10.0), // equal timestamp: both count
        vc(T0 + 5_000, 2.0, 3.0),
        st(T0 + 61_000, 4.0, 20.0, 5.0, 5.0), // capable (identical values)
        st(T0 + 62_000, 1.0, 7.0, 7.0, 7.0),  // capable (single value)
        st(T0 + 125_000, 2.0, 3.0, 1.0, 2.0), // not capable
        v(T0 + 130_000, 100.0),
        v(T0 + 600_000, -1.5),
    ]
}

fn check_all(db: &dyn MetricStore, pts: &[Point]) {
    let k = key("Latency", &[("Host", "a")]);
    for (start, period) in [
        (T0, 60_000),
        (T0 - 30_000, 60_000),
        (T0 + 1, 1_000),
        (T0, 3_600_000),
        (T0 - 7, 7),
    ] {
        for with_values in [false, true] {
            let got = db
                .aggregate(&k, start, T0 + 3_600_000, period, with_values)
                .unwrap();
            assert_buckets_eq(
                &got,
                &reference(pts, start, T0 + 3_600_000, period, with_values),
            );
        }
    }
}

#[test]
fn semantics_hold_in_head_files_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let k = key("Latency", &[("Host", "a")]);
    let pts = scenario();
    {
        let db = open(dir.path(), manual_opts(&clock));
        db.write_blocking(vec![sw(&k, false, pts[..4].to_vec())])
            .unwrap();
        db.write_blocking(vec![sw(&k, false, pts[4..].to_vec())])
            .unwrap();
        check_all(&*db, &pts);

        // Explicit expectations for the first minute, so the reference itself is pinned.
        let b = db.aggregate(&k, T0, T0 + 3_600_000, 60_000, true).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(
            (b[0].start_ms, b[0].count, b[0].sum, b[0].min, b[0].max),
            (T0, 5.0, 26.0, 2.0, 10.0)
        );
        assert_eq!(b[0].values, Some(vec![(2.0, 3.0), (10.0, 2.0)]));
        assert_eq!(b[1].values, Some(vec![(5.0, 4.0), (7.0, 1.0)]));
        assert_eq!(
            (
                b[2].count,
                b[2].sum,
                b[2].min,
                b[2].max,
                b[2].values.clone()
            ),
            (3.0, 103.0, 1.0, 100.0, None)
        );
        assert_eq!(b[3].start_ms, T0 + 600_000);

        assert!(db.checkpoint().unwrap());
        assert!(!db.checkpoint().unwrap(), "nothing left to checkpoint");
        assert_eq!(db.detailed_stats().head_points, 0);
        check_all(&*db, &pts);

        // Half in files, half in the head.
        let more = vec![v(T0 + 3_000, 4.0), st(T0 + 700_000, 3.0, 3.0, 1.0, 1.0)];
        db.write_blocking(vec![sw(&k, false, more.clone())])
            .unwrap();
        let all: Vec<Point> = pts.iter().chain(&more).copied().collect();
        check_all(&*db, &all);
        db.close().unwrap();
    }
    let db = open(dir.path(), manual_opts(&clock));
    let all: Vec<Point> = pts
        .iter()
        .copied()
        .chain([v(T0 + 3_000, 4.0), st(T0 + 700_000, 3.0, 3.0, 1.0, 1.0)])
        .collect();
    check_all(&*db, &all);
}

#[test]
fn dense_series_matches_reference_through_frame_summaries_and_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let db = open(dir.path(), manual_opts(&clock));
    let k = key("Dense", &[]);
    let mut rng = Lcg(42);
    let mut pts = Vec::new();
    // ~2000 points per minute over 30 minutes, some with counts and stat sets.
    for i in 0..60_000i64 {
        let ts = T0 + i * 30 + rng.below(30) as i64;
        let p = match rng.below(50) {
            0 => vc(ts, rng.below(1000) as f64 / 10.0, 1.0 + rng.below(4) as f64),
            1 => st(ts, 2.0, 4.0, 2.0, 2.0),
            _ => v(ts, rng.below(10_000) as f64 / 100.0),
        };
        pts.push(p);
    }
    for chunk in pts.chunks(5_000) {
        db.write_blocking(vec![sw(&k, true, chunk.to_vec())])
            .unwrap();
    }
    db.checkpoint().unwrap();
    let end = T0 + 1_800_000;
    for (start, period) in [
        (T0, 60_000),
        (T0 + 17_000, 60_000),
        (T0, 300_000),
        (T0 + 5, 1_000),
        (T0 - 60_000, 120_000),
    ] {
        for with_values in [false, true] {
            let got = db.aggregate(&k, start, end, period, with_values).unwrap();
            assert_buckets_eq(&got, &reference(&pts, start, end, period, with_values));
        }
    }
    // A stat set that does not qualify poisons only its own minute's values.
    db.write_blocking(vec![sw(
        &k,
        true,
        vec![st(T0 + 60_500, 2.0, 3.0, 1.0, 2.0)],
    )])
    .unwrap();
    let b = db.aggregate(&k, T0, end, 60_000, true).unwrap();
    assert!(b[0].values.is_some());
    assert!(b[1].values.is_none());
    assert!(b[2].values.is_some());
}

#[test]
fn degenerate_queries_return_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let db = open(dir.path(), manual_opts(&clock));
    let k = key("M", &[]);
    db.write_blocking(vec![sw(&k, false, vec![v(T0, 1.0)])])
        .unwrap();
    assert!(db.aggregate(&k, T0, T0, 60_000, false).unwrap().is_empty());
    assert!(db
        .aggregate(&k, T0 + 1, T0, 60_000, false)
        .unwrap()
        .is_empty());
    assert!(db
        .aggregate(&k, T0, T0 + 60_000, 0, false)
        .unwrap()
        .is_empty());
    assert!(db
        .aggregate(&key("Other", &[]), T0, T0 + 60_000, 60_000, false)
        .unwrap()
        .is_empty());
    // The unit is part of the identity.
    let mut k2 = k.clone();
    k2.unit = "Seconds".into();
    assert!(db
        .aggregate(&k2, T0, T0 + 60_000, 60_000, false)
        .unwrap()
        .is_empty());
    assert_eq!(
        db.aggregate(&k, T0, T0 + 60_000, 60_000, false)
            .unwrap()
            .len(),
        1
    );
    // A huge range at a tiny period still works (sparse buckets).
    let b = db.aggregate(&k, 0, i64::MAX, 1, false).unwrap();
    assert_eq!((b.len(), b[0].start_ms), (1, T0));
}

#[test]
fn late_and_out_of_order_points_spanning_windows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let db = open(dir.path(), manual_opts(&clock));
    let k = key("Late", &[]);
    let mut pts = Vec::new();
    // Points over 10 hours (five raw windows), written newest first, in several checkpoints.
    for i in (0..600i64).rev() {
        pts.push(v(T0 - 36_000_000 + i * 60_000, i as f64));
    }
    for (n, c) in pts.chunks(100).enumerate() {
        db.write_blocking(vec![sw(&k, false, c.to_vec())]).unwrap();
        if n % 2 == 1 {
            db.checkpoint().unwrap();
        }
    }
    let (s, e) = (T0 - 40_000_000, T0);
    assert_buckets_eq(
        &db.aggregate(&k, s, e, 3_600_000, true).unwrap(),
        &reference(&pts, s, e, 3_600_000, true),
    );
    let rep = db.compact_now().unwrap();
    assert!(rep.merges > 0, "{rep:?}");
    assert_buckets_eq(
        &db.aggregate(&k, s, e, 3_600_000, true).unwrap(),
        &reference(&pts, s, e, 3_600_000, true),
    );
    assert_buckets_eq(
        &db.aggregate(&k, s, e, 60_000, false).unwrap(),
        &reference(&pts, s, e, 60_000, false),
    );
}
