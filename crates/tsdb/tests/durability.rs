//! Durability: the WAL brings back everything acknowledged after a drop without close, torn or
//! corrupt WAL tails are cut off without failing the open, checkpoints survive reopen, and a
//! closed store refuses writes.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use opsloop_tsdb::{MetricStore, TsdbError};

const T0: i64 = 1_700_000_040_000;

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn count(db: &dyn MetricStore, metric: &str) -> f64 {
    db.aggregate(&key(metric, &[]), 0, i64::MAX, i64::MAX, false)
        .unwrap()
        .iter()
        .map(|b| b.count)
        .sum()
}

/// Writes `n` batches of 10 points to metric "M" (batch `i` at `T0 + i * 1000`).
fn write_batches(db: &opsloop_tsdb::Tsdb, from: i64, n: i64) {
    for i in from..from + n {
        let pts = (0..10).map(|j| v(T0 + i * 1000 + j, i as f64)).collect();
        db.write_blocking(vec![sw(&key("M", &[]), false, pts)])
            .unwrap();
    }
}

#[test]
fn drop_without_close_then_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 50);
        // Dropped without close: no checkpoint, only the WAL.
    }
    assert!(
        !dir.path().join("MANIFEST").exists(),
        "no checkpoint should have happened"
    );
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 500.0);
    assert_eq!(db.stats().points, 500);
    // And again, after more writes on top of the replayed head.
    write_batches(&db, 50, 5);
    drop(db);
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 550.0);
    let info = db.list_series(&opsloop_tsdb::SeriesFilter {
        account: "123456789012".into(),
        region: "us-east-1".into(),
        ..Default::default()
    });
    assert_eq!(info.unwrap()[0].last_ts_ms, T0 + 54 * 1000 + 9);
}

#[test]
fn garbage_appended_to_wal_is_truncated_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 20);
    }
    let seg = wal_segments(dir.path()).pop().unwrap();
    let good_len = fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0x13, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();
    drop(f);
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 200.0);
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        good_len,
        "garbage tail truncated"
    );
    write_batches(&db, 20, 1);
    drop(db);
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 210.0);
}

#[test]
fn record_cut_mid_way_loses_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 20);
    }
    let seg = wal_segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 190.0);
    // Batch 19 is the one that was cut; 0..19 are intact.
    let b = db
        .aggregate(&key("M", &[]), T0, T0 + 20_000, 1000, false)
        .unwrap();
    assert_eq!(b.len(), 19);
    assert_eq!(b[18].start_ms, T0 + 18_000);
}

#[test]
fn flipped_byte_inside_wal_record_drops_the_tail_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 10);
    }
    let seg = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0x40;
    fs::write(&seg, bytes).unwrap();
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 90.0);
}

#[test]
fn checkpoint_truncates_wal_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 100);
        let before: u64 = wal_segments(dir.path())
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(db.checkpoint().unwrap());
        let after: u64 = wal_segments(dir.path())
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(after < before / 10, "wal {before} -> {after} bytes");
        write_batches(&db, 100, 10);
        let st = db.detailed_stats();
        assert_eq!((st.raw_points, st.head_points), (1000, 100));
        assert!(st.files_per_tier[0] >= 1);
    }
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(count(&*db, "M"), 1100.0);
    let st = db.detailed_stats();
    assert_eq!((st.raw_points, st.head_points), (1000, 100));
    db.close().unwrap();
    // close() checkpoints: nothing left to replay.
    let db = open(dir.path(), manual_opts(&clock));
    let st = db.detailed_stats();
    assert_eq!((st.raw_points, st.head_points), (1100, 0));
    assert_eq!(count(&*db, "M"), 1100.0);
}

#[tokio::test]
async fn closed_store_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let db = open(dir.path(), manual_opts(&clock));
    db.write(vec![sw(&key("M", &[]), false, vec![v(T0, 1.0)])])
        .await
        .unwrap();
    db.close().unwrap();
    db.close().unwrap();
    let r = db
        .write(vec![sw(&key("M", &[]), false, vec![v(T0, 1.0)])])
        .await;
    assert!(matches!(r, Err(TsdbError::Closed)), "{r:?}");
    assert!(matches!(
        db.write_blocking(vec![sw(&key("M", &[]), false, vec![v(T0, 1.0)])]),
        Err(TsdbError::Closed)
    ));
    assert!(matches!(db.wipe(), Err(TsdbError::Closed)));
    // Reads still answer from what was flushed.
    assert_eq!(count(&*db, "M"), 1.0);
}

#[test]
fn corrupt_chunk_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 30);
        db.close().unwrap();
    }
    let data: Vec<PathBuf> = fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(data.len(), 1);
    let mut bytes = fs::read(&data[0]).unwrap();
    bytes[40] ^= 0xff; // inside the first chunk
    fs::write(&data[0], bytes).unwrap();
    let db = open(dir.path(), manual_opts(&clock));
    let r = db.aggregate(&key("M", &[]), 0, i64::MAX, 1000, true);
    assert!(matches!(r, Err(TsdbError::Corrupt(_))), "{r:?}");
}

#[test]
fn corrupt_manifest_fails_open_with_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 3);
        db.close().unwrap();
    }
    let p = dir.path().join("MANIFEST");
    let mut bytes = fs::read(&p).unwrap();
    bytes[20] ^= 1;
    fs::write(&p, bytes).unwrap();
    let r = opsloop_tsdb::Tsdb::open(dir.path(), manual_opts(&clock));
    assert!(matches!(r, Err(TsdbError::Corrupt(_))));
}

#[test]
fn orphans_from_an_interrupted_checkpoint_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        write_batches(&db, 0, 3);
        db.close().unwrap();
    }
    fs::write(
        dir.path().join("data").join("00000000000000ff.tsd"),
        b"half-written",
    )
    .unwrap();
    fs::write(
        dir.path().join("data").join("0000000000000100.tsd.tmp"),
        b"x",
    )
    .unwrap();
    let db = open(dir.path(), manual_opts(&clock));
    assert_eq!(fs::read_dir(dir.path().join("data")).unwrap().count(), 1);
    assert_eq!(count(&*db, "M"), 30.0);
}

#[test]
fn random_damage_to_data_files_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let db = open(dir.path(), manual_opts(&clock));
        for s in 0..5 {
            let k = key(&format!("S{s}"), &[]);
            let pts = (0..500)
                .map(|i| {
                    if i % 7 == 0 {
                        st(T0 + i * 997, 2.0, 4.0, 2.0, 2.0)
                    } else {
                        v(T0 + i * 997, i as f64)
                    }
                })
                .collect();
            db.write_blocking(vec![sw(&k, s % 2 == 0, pts)]).unwrap();
        }
        db.close().unwrap();
    }
    let data: Vec<PathBuf> = fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let pristine: Vec<Vec<u8>> = data.iter().map(|p| fs::read(p).unwrap()).collect();
    let mut rng = Lcg(11);
    let mut corrupt_seen = 0;
    for _ in 0..150 {
        for (p, orig) in data.iter().zip(&pristine) {
            let mut b = orig.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] ^= 1 << rng.below(8);
            }
            fs::write(p, b).unwrap();
        }
        let db = open(dir.path(), manual_opts(&clock));
        for s in 0..5 {
            for with_values in [false, true] {
                match db.aggregate(
                    &key(&format!("S{s}"), &[]),
                    T0,
                    T0 + 600_000,
                    60_000,
                    with_values,
                ) {
                    Ok(_) => {}
                    Err(TsdbError::Corrupt(_)) => corrupt_seen += 1,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }
    }
    assert!(corrupt_seen > 0);
}
