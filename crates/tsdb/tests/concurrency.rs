//! Many concurrent writers (threads and async tasks) with background checkpoints and compaction
//! running: every write is acknowledged and present, queries never fail mid-flight.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use opsloop_tsdb::{MetricStore, TsdbOptions};

#[test]
fn concurrent_writers_are_all_acked_and_present() {
    // Recent timestamps: the background compactor applies retention on the system clock.
    let now = (opsloop_tsdb::system_clock())();
    let t0 = now - now % 60_000 - 600_000;
    let dir = tempfile::tempdir().unwrap();
    let opts = TsdbOptions {
        flush_points: 2_000,
        compaction_interval: Duration::from_millis(20),
        ..TsdbOptions::default()
    };
    let db = open(dir.path(), opts);
    let writers = 8;
    let batches = 150i64;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                for w in 0..writers {
                    db.aggregate(
                        &key("C", &[("W", &w.to_string())]),
                        t0,
                        t0 + 10_000_000,
                        60_000,
                        true,
                    )
                    .unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let k = key("C", &[("W", &w.to_string())]);
                let shared = key("Shared", &[]);
                for b in 0..batches {
                    let pts: Vec<_> = (0..20)
                        .map(|j| v(t0 + b * 1000 + j, (w * 1000 + b) as f64))
                        .collect();
                    db.write_blocking(vec![
                        sw(&k, false, pts),
                        sw(&shared, false, vec![v(t0 + b, 1.0)]),
                    ])
                    .unwrap();
                }
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let k = key("Async", &[("T", &t.to_string())]);
                for b in 0..50i64 {
                    db.write(vec![sw(&k, true, vec![v(t0 + b, 1.0), v(t0 + b, 2.0)])])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    for h in handles {
        h.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);

    let check = |db: &dyn MetricStore| {
        for w in 0..writers {
            let b = db
                .aggregate(
                    &key("C", &[("W", &w.to_string())]),
                    t0,
                    t0 + 10_000_000,
                    1000,
                    false,
                )
                .unwrap();
            assert_eq!(b.len() as i64, batches, "writer {w}");
            assert!(b.iter().all(|x| x.count == 20.0));
        }
        let b = db
            .aggregate(&key("Shared", &[]), t0, t0 + 10_000_000, 10_000_000, false)
            .unwrap();
        assert_eq!(b[0].count, (writers * batches) as f64);
        for t in 0..16 {
            let b = db
                .aggregate(
                    &key("Async", &[("T", &t.to_string())]),
                    t0,
                    t0 + 1000,
                    1000,
                    false,
                )
                .unwrap();
            assert_eq!((b[0].count, b[0].sum), (100.0, 150.0));
        }
        assert_eq!(db.stats().series, writers as u64 + 1 + 16);
    };
    check(&*db);
    // The head passed the checkpoint threshold many times: the background flusher writes files.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while db.detailed_stats().raw_points == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background checkpoint within 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    check(&*db);
    drop(db);
    let db = open(dir.path(), TsdbOptions::default());
    check(&*db);
}

#[test]
fn writers_wait_for_checkpoints_when_the_head_is_over_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let opts = TsdbOptions {
        flush_points: 500,
        max_head_points: 1_000,
        ..TsdbOptions::default()
    };
    let db = open(dir.path(), opts);
    let now = (opsloop_tsdb::system_clock())();
    let t0 = now - now % 60_000 - 600_000;
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let k = key("Bp", &[("W", &w.to_string())]);
                let mut max_head = 0;
                for b in 0..100i64 {
                    let pts = (0..50).map(|j| v(t0 + b * 100 + j, 1.0)).collect();
                    db.write_blocking(vec![sw(&k, false, pts)]).unwrap();
                    max_head = max_head.max(db.detailed_stats().head_points);
                }
                max_head
            })
        })
        .collect();
    let max_head = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    // Bounded by the limit plus what writers already admitted (4 writers x 50 points) and one
    // frozen head being written.
    assert!(max_head <= 2 * 1_000 + 4 * 50, "head reached {max_head}");
    for w in 0..4 {
        let b = db
            .aggregate(
                &key("Bp", &[("W", &w.to_string())]),
                t0,
                t0 + 100_000,
                100_000,
                false,
            )
            .unwrap();
        assert_eq!(b[0].count, 5_000.0);
    }
}
