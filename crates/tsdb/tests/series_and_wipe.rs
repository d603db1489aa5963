//! The series index: list filters, `written_since` on the injected wall clock, persistence across
//! checkpoints and reopen; and wipe, after which the store is empty and usable.

mod common;

use common::*;
use opsloop_tsdb::{MetricStore, SeriesFilter, SeriesKey};

const T0: i64 = 1_700_000_040_000;

fn base() -> SeriesFilter {
    SeriesFilter {
        account: "123456789012".into(),
        region: "us-east-1".into(),
        ..Default::default()
    }
}

fn names(db: &dyn MetricStore, f: &SeriesFilter) -> Vec<String> {
    db.list_series(f)
        .unwrap()
        .into_iter()
        .map(|s| {
            format!(
                "{}{}",
                s.key.metric_name,
                s.key
                    .dimensions
                    .iter()
                    .map(|d| format!(",{}={}", d.0, d.1))
                    .collect::<String>()
            )
        })
        .collect()
}

fn seed(db: &opsloop_tsdb::Tsdb, clock: &ManualClock) {
    clock.set(T0);
    db.write_blocking(vec![
        sw(&key("CPU", &[("Host", "a")]), false, vec![v(T0, 1.0)]),
        sw(&key("CPU", &[("Host", "b")]), true, vec![v(T0 + 5, 2.0)]),
    ])
    .unwrap();
    clock.set(T0 + 4 * 3_600_000);
    let mut other_ns = key("Mem", &[("Host", "a"), ("Zone", "z1")]);
    other_ns.namespace = "Other".into();
    let mut other_region = key("CPU", &[("Host", "a")]);
    other_region.region = "eu-west-1".into();
    db.write_blocking(vec![
        sw(
            &key("Disk", &[("Host", "a"), ("Zone", "z1")]),
            false,
            vec![v(T0 - 1000, 3.0)],
        ),
        sw(&other_ns, false, vec![v(T0, 4.0)]),
        sw(&other_region, false, vec![v(T0, 5.0)]),
    ])
    .unwrap();
}

fn check_filters(db: &dyn MetricStore) {
    // Sorted by key: namespace "Other" before "Test/App".
    assert_eq!(
        names(db, &base()),
        [
            "Mem,Host=a,Zone=z1",
            "CPU,Host=a",
            "CPU,Host=b",
            "Disk,Host=a,Zone=z1"
        ]
    );
    let f = SeriesFilter {
        namespace: Some("Test/App".into()),
        ..base()
    };
    assert_eq!(
        names(db, &f),
        ["CPU,Host=a", "CPU,Host=b", "Disk,Host=a,Zone=z1"]
    );
    let f = SeriesFilter {
        metric_name: Some("CPU".into()),
        ..base()
    };
    assert_eq!(names(db, &f).len(), 2);
    let f = SeriesFilter {
        dimensions: vec![("Zone".into(), None)],
        ..base()
    };
    assert_eq!(names(db, &f), ["Mem,Host=a,Zone=z1", "Disk,Host=a,Zone=z1"]);
    let f = SeriesFilter {
        dimensions: vec![("Host".into(), Some("b".into()))],
        ..base()
    };
    assert_eq!(names(db, &f), ["CPU,Host=b"]);
    let f = SeriesFilter {
        dimensions: vec![
            ("Host".into(), Some("a".into())),
            ("Zone".into(), Some("z2".into())),
        ],
        ..base()
    };
    assert!(names(db, &f).is_empty());
    let f = SeriesFilter {
        written_since_ms: Some(T0 + 3 * 3_600_000),
        ..base()
    };
    assert_eq!(names(db, &f), ["Mem,Host=a,Zone=z1", "Disk,Host=a,Zone=z1"]);
    let f = SeriesFilter {
        region: "eu-west-1".into(),
        ..base()
    };
    assert_eq!(names(db, &f), ["CPU,Host=a"]);
    let f = SeriesFilter {
        account: "999999999999".into(),
        ..base()
    };
    assert!(names(db, &f).is_empty());
    let all = db.list_series(&base()).unwrap();
    let b = all.iter().find(|s| s.key.dimensions[0].1 == "b").unwrap();
    assert!(b.high_resolution);
    assert_eq!((b.last_ts_ms, b.last_write_ms), (T0 + 5, T0));
    let d = all.iter().find(|s| s.key.metric_name == "Disk").unwrap();
    assert!(!d.high_resolution);
    assert_eq!(
        (d.last_ts_ms, d.last_write_ms),
        (T0 - 1000, T0 + 4 * 3_600_000)
    );
}

#[test]
fn list_series_filters_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        seed(&db, &clock);
        check_filters(&*db);
    }
    // From the WAL alone.
    {
        let db = open(dir.path(), manual_opts(&clock));
        check_filters(&*db);
        db.checkpoint().unwrap();
    }
    // From the snapshot alone (WAL truncated).
    let db = open(dir.path(), manual_opts(&clock));
    check_filters(&*db);
    // A later write moves last_write forward.
    clock.set(T0 + 10 * 3_600_000);
    db.write_blocking(vec![sw(
        &key("CPU", &[("Host", "a")]),
        false,
        vec![v(T0 - 50_000, 1.0)],
    )])
    .unwrap();
    let f = SeriesFilter {
        written_since_ms: Some(T0 + 9 * 3_600_000),
        ..base()
    };
    let got = db.list_series(&f).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].last_ts_ms, T0,
        "older timestamp does not move last_ts back"
    );
}

#[test]
fn wipe_empties_everything_and_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let db = open(dir.path(), manual_opts(&clock));
    seed(&db, &clock);
    db.checkpoint().unwrap();
    db.write_blocking(vec![sw(
        &key("CPU", &[("Host", "a")]),
        false,
        vec![v(T0 + 60_000, 9.0)],
    )])
    .unwrap();
    assert!(db.stats().points > 0);
    db.wipe().unwrap();
    let s = db.stats();
    assert_eq!((s.series, s.points), (0, 0));
    assert!(db.list_series(&base()).unwrap().is_empty());
    assert!(db
        .aggregate(&key("CPU", &[("Host", "a")]), 0, i64::MAX, 60_000, false)
        .unwrap()
        .is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("data")).unwrap().count(),
        0
    );

    let k = SeriesKey {
        metric_name: "After".into(),
        ..key("x", &[])
    };
    db.write_blocking(vec![sw(&k, false, vec![v(T0, 1.0), v(T0 + 1, 2.0)])])
        .unwrap();
    assert_eq!(
        db.aggregate(&k, T0, T0 + 60_000, 60_000, false).unwrap()[0].count,
        2.0
    );
    drop(db);
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(names(&*db, &base()), ["After"]);
    assert_eq!(db.stats().points, 2);
    db.wipe().unwrap();
    db.close().unwrap();
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(db.stats().series, 0);
}
