//! Crash safety: a child process writes continuously (several threads, background checkpoints and
//! compaction running) and prints the id of every acknowledged batch; the parent kills it with
//! SIGKILL, reopens the directory and checks that every acknowledged batch is there, complete,
//! and that no batch is there twice or in part.
//!
//! The child is this test binary re-executed on the `writer_loop` test with an environment
//! variable set. Run without it, `writer_loop` is an in-process version of the same check.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use opsloop_tsdb::{MetricStore, Tsdb, TsdbOptions};

const DIR_ENV: &str = "OPSLOOP_TSDB_CRASH_DIR";
const T0_ENV: &str = "OPSLOOP_TSDB_CRASH_T0";
const BASE_ENV: &str = "OPSLOOP_TSDB_CRASH_BASE";
const THREADS: u64 = 4;
const SERIES: u64 = 7;
const POINTS: i64 = 40;

fn opts() -> TsdbOptions {
    TsdbOptions {
        flush_points: 4_000,
        compaction_interval: Duration::from_millis(50),
        ..TsdbOptions::default()
    }
}

fn recent_t0() -> i64 {
    let now = (opsloop_tsdb::system_clock())();
    now - now % 3_600_000 - 3_600_000
}

/// Batch `id` writes POINTS points to series `id % SERIES` at `[t0 + id*1000, +POINTS)`.
fn batch(t0: i64, id: u64) -> Vec<opsloop_tsdb::SeriesWrite> {
    let k = key("Crash", &[("S", &(id % SERIES).to_string())]);
    let pts = (0..POINTS)
        .map(|j| v(t0 + id as i64 * 1000 + j, id as f64))
        .collect();
    vec![sw(&k, id & 1 == 0, pts)]
}

/// Writes from THREADS threads, ids `base + thread + THREADS * n`, calling `acked` per batch.
fn run_writers(
    db: &Arc<Tsdb>,
    t0: i64,
    base: u64,
    per_thread: Option<u64>,
    acked: Arc<dyn Fn(u64) + Send + Sync>,
) {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while per_thread.is_none_or(|p| n < p) {
                    let id = base + t + THREADS * n;
                    db.write_blocking(batch(t0, id)).expect("write");
                    acked(id);
                    n += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Checks every id in `acked` holds exactly its points, and no other id holds a partial batch.
fn verify(dir: &Path, t0: i64, acked: &[u64]) -> Arc<Tsdb> {
    let db = Tsdb::open(
        dir,
        TsdbOptions {
            background: false,
            ..opts()
        },
    )
    .expect("reopen");
    let mut present = std::collections::HashMap::new();
    for s in 0..SERIES {
        let k = key("Crash", &[("S", &s.to_string())]);
        for b in db
            .aggregate(&k, t0, t0 + 1_000_000_000_000, 1000, false)
            .unwrap()
        {
            let id = ((b.start_ms - t0) / 1000) as u64;
            assert_eq!(id % SERIES, s);
            assert_eq!(
                b.count, POINTS as f64,
                "batch {id} partially present or duplicated"
            );
            assert_eq!(b.sum, id as f64 * POINTS as f64);
            present.insert(id, ());
        }
    }
    for id in acked {
        assert!(
            present.contains_key(id),
            "acknowledged batch {id} lost ({} acked, {} present)",
            acked.len(),
            present.len()
        );
    }
    db
}

#[test]
fn writer_loop() {
    if let Ok(dir) = std::env::var(DIR_ENV) {
        // Child mode: write until killed.
        let t0: i64 = std::env::var(T0_ENV).unwrap().parse().unwrap();
        let base: u64 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
        let db = Tsdb::open(Path::new(&dir), opts()).expect("open");
        let out = Arc::new(Mutex::new(std::io::stdout()));
        run_writers(
            &db,
            t0,
            base,
            None,
            Arc::new(move |id| {
                use std::io::Write;
                let mut o = out.lock().unwrap();
                let _ = writeln!(o, "ACK {id}");
                let _ = o.flush();
            }),
        );
        return;
    }
    // In-process: the same workload, dropped without close, then verified.
    let dir = tempfile::tempdir().unwrap();
    let t0 = recent_t0();
    let acked = Arc::new(Mutex::new(Vec::new()));
    {
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let a = acked.clone();
        run_writers(
            &db,
            t0,
            0,
            Some(300),
            Arc::new(move |id| a.lock().unwrap().push(id)),
        );
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 1200);
    let db = verify(dir.path(), t0, &acked);
    assert_eq!(db.stats().points, 1200 * POINTS as u64);
}

#[test]
fn sigkill_during_ingest_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = recent_t0();
    let exe = std::env::current_exe().unwrap();
    let mut all_acked: Vec<u64> = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(&exe)
            .args([
                "writer_loop",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(DIR_ENV, dir.path())
            .env(T0_ENV, t0.to_string())
            .env(BASE_ENV, (round * 10_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(id) = line.strip_prefix("ACK ") {
                        acked
                            .lock()
                            .unwrap()
                            .push(id.trim().parse::<u64>().unwrap());
                    }
                }
            })
        };
        // Let it run until it has acknowledged plenty and checkpointed at least once this round.
        let want = 2_000 + round as usize * 500;
        let deadline = Instant::now() + Duration::from_secs(120);
        let manifest = dir.path().join("MANIFEST");
        let m0 = std::fs::metadata(&manifest).and_then(|m| m.modified()).ok();
        loop {
            let n = acked.lock().unwrap().len();
            let checkpointed = std::fs::metadata(&manifest)
                .and_then(|m| m.modified())
                .ok()
                .is_some_and(|m| Some(m) != m0);
            if n >= want && checkpointed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "child made too little progress: {n} acks"
            );
            if let Ok(Some(st)) = child.try_wait() {
                panic!("child exited early: {st}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = acked.lock().unwrap().clone();
        all_acked.extend(acked);
        let db = verify(dir.path(), t0, &all_acked);
        drop(db);
    }
    assert!(all_acked.len() >= 7_500);
}
