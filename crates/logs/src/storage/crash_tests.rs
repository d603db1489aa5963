//! Crash-safety tests of checkpoints, compaction and indexing: failures are injected at every named point
//! ([`Faults`]), the store is abandoned as a crash would leave it, and the reopened store must hold
//! every acknowledged event exactly once, with matching stream statistics.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::columns::Columns;
use super::*;

/// Faults that fire once at the armed point.
fn armed() -> (Faults, Arc<Mutex<Option<&'static str>>>) {
    let slot: Arc<Mutex<Option<&'static str>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let faults = Faults::new(move |point| {
        let mut g = s.lock();
        if *g == Some(point) {
            *g = None;
            true
        } else {
            false
        }
    });
    (faults, slot)
}

fn opts(faults: Faults) -> StoreOptions {
    StoreOptions {
        compact_min_run: 2,
        compact_small_bytes: 1 << 20,
        // only explicit passes, so the tests decide when merges happen
        compact_background: false,
        // format 3, so merges and recovery are exercised with granules and bloom filters
        skip_index: SkipIndex::Checkpoint,
        faults,
        ..StoreOptions::default()
    }
}

fn batch(ts: &[i64], tag: &str) -> Columns {
    let mut c = Columns::default();
    for (k, t) in ts.iter().enumerate() {
        c.push(
            *t,
            0,
            0,
            (k % 3) as u32,
            format!("{tag}-{t} ERROR user=u{k}").as_bytes(),
        );
    }
    c
}

fn messages(store: &LogStore, gid: u64) -> Vec<String> {
    let (mut buf, mut raw) = (Columns::default(), Vec::new());
    let mut out = Vec::new();
    for p in store.snapshot(gid, i64::MIN / 2, i64::MAX / 2) {
        p.scan(i64::MIN / 2, i64::MAX / 2, &mut buf, &mut raw, &mut |b| {
            for i in 0..b.len() {
                out.push(String::from_utf8_lossy(b.message(i)).into_owned());
            }
            true
        })
        .unwrap();
    }
    out.sort();
    out
}

fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// Five checkpoints of three events each into two partitions of group 1; returns the messages.
async fn fill(store: &LogStore, rounds: i64) -> Vec<String> {
    let mut all = Vec::new();
    for r in 0..rounds {
        let ts = [r * 10, r * 10 + 1, PARTITION_MS + r];
        let c = batch(&ts, "r");
        all.extend((0..c.len()).map(|i| String::from_utf8_lossy(c.message(i)).into_owned()));
        store.append(1, c).await.unwrap();
        store.checkpoint().await.unwrap();
    }
    all.sort();
    all
}

/// A thread scanning group 1 over and over, each scan checked against `want`, until finished.
struct Reader {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<usize>,
}

impl Reader {
    fn start(store: &Arc<LogStore>, want: &[String], what: &'static str) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let (store, flag, want) = (store.clone(), stop.clone(), want.to_vec());
        let handle = std::thread::spawn(move || {
            let mut scans = 0;
            while !flag.load(Ordering::SeqCst) || scans == 0 {
                assert_eq!(messages(&store, 1), want, "{what}");
                scans += 1;
            }
            scans
        });
        Reader { stop, handle }
    }

    /// Stop and check the thread scanned at least once (a failed check fails the test here).
    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        assert!(self.handle.join().unwrap() > 0);
    }
}

fn assert_exactly(store: &LogStore, want: &[String]) {
    let got = messages(store, 1);
    assert_eq!(got.len(), want.len(), "event count");
    assert_eq!(got, want);
    let events: u64 = store.stream_stats(1).values().map(|s| s.events).sum();
    assert_eq!(
        events,
        want.len() as u64,
        "stream statistics count each event once"
    );
}

#[tokio::test]
async fn checkpoint_crash_at_every_point_keeps_events_exactly_once() {
    for point in [
        "flush.pending",
        "flush.commit",
        "flush.committed",
        "flush.published",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (faults, slot) = armed();
        let store = LogStore::open(dir.path(), opts(faults), &|_| true).unwrap();
        let mut want = fill(&store, 2).await;
        let c = batch(&[100, 101, PARTITION_MS + 100], "crash");
        want.extend((0..c.len()).map(|i| String::from_utf8_lossy(c.message(i)).into_owned()));
        want.sort();
        store.append(1, c).await.unwrap();
        *slot.lock() = Some(point);
        assert!(store.checkpoint().await.is_err(), "{point} fired");
        assert_exactly(&store, &want);
        store.abandon();
        let reopened = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
        assert_exactly(&reopened, &want);
        assert!(
            files(dir.path(), ".pending").is_empty(),
            "{point}: no pending left"
        );
        // appends after recovery get fresh sequence numbers and survive another restart
        reopened.append(1, batch(&[200], "after")).await.unwrap();
        reopened.close();
        let again = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
        assert_eq!(messages(&again, 1).len(), want.len() + 1, "{point}");
        let mut seqs = HashSet::new();
        for p in again.snapshot(1, 0, i64::MAX) {
            p.scan(
                0,
                i64::MAX,
                &mut Columns::default(),
                &mut Vec::new(),
                &mut |b| {
                    seqs.extend(b.seq.iter().copied());
                    true
                },
            )
            .unwrap();
        }
        assert_eq!(
            seqs.len(),
            want.len() + 1,
            "{point}: sequence numbers unique"
        );
    }
}

#[tokio::test]
async fn a_failed_checkpoint_is_carried_into_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (faults, slot) = armed();
    let store = LogStore::open(dir.path(), opts(faults), &|_| true).unwrap();
    store.append(1, batch(&[1, 2], "a")).await.unwrap();
    *slot.lock() = Some("flush.pending");
    assert!(store.checkpoint().await.is_err());
    store.append(1, batch(&[3], "b")).await.unwrap();
    store.checkpoint().await.unwrap();
    let want = messages(&store, 1);
    assert_eq!(want.len(), 3);
    assert_eq!(
        files(dir.path(), ".seg").len(),
        2,
        "the carried head was written"
    );
    store.abandon();
    let reopened = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
    assert_exactly(&reopened, &want);
}

#[tokio::test]
async fn compaction_merges_runs_while_scans_continue() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap());
    let want = fill(&store, 12).await;
    assert_eq!(store.segment_count(1), 24);
    let reader = Reader::start(&store, &want, "a scan during compaction");
    let merges = store.compact().unwrap();
    reader.finish();
    assert_eq!(merges, 2, "one merge per partition");
    assert_eq!(store.segment_count(1), 2);
    assert_eq!(messages(&store, 1), want);
    let segs = files(dir.path(), ".seg");
    assert_eq!(segs.len(), 2, "the inputs' files are gone: {segs:?}");
    assert!(segs.iter().all(|s| s.ends_with("00000000-00000011.seg")));
    // merged segments are written in the current format (3: text granules with bloom filters)
    for s in &segs {
        assert_eq!(&fs::read(s).unwrap()[..8], b"OLLOGSG3", "{s}");
    }
    // merged blocks are sorted by time
    for p in store.snapshot(1, 0, i64::MAX) {
        p.scan(
            0,
            i64::MAX,
            &mut Columns::default(),
            &mut Vec::new(),
            &mut |b| {
                assert!(b.ts.windows(2).all(|w| w[0] <= w[1]));
                true
            },
        )
        .unwrap();
    }
    // new checkpoints continue the numbering; another run of two merges again
    let more = fill(&store, 2).await;
    assert_eq!(store.compact().unwrap(), 2);
    assert_eq!(store.segment_count(1), 2);
    let mut all = want.clone();
    all.extend(more);
    all.sort();
    assert_eq!(messages(&store, 1), all);
    store.close();
    let reopened = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
    assert_exactly(&reopened, &all);
    // retention still removes whole partitions, merged or not
    reopened.expire(1, PARTITION_MS).await.unwrap();
    assert_eq!(messages(&reopened, 1).len(), all.len() / 3);
    assert!(!dir.path().join("g1").join("0").exists());
}

#[tokio::test]
async fn compaction_crash_at_every_point_keeps_events_exactly_once() {
    for point in ["compact.written", "compact.renamed"] {
        let dir = tempfile::tempdir().unwrap();
        let (faults, slot) = armed();
        let store = LogStore::open(dir.path(), opts(faults), &|_| true).unwrap();
        let want = fill(&store, 4).await;
        *slot.lock() = Some(point);
        assert!(store.compact().is_err(), "{point} fired");
        assert_eq!(
            messages(&store, 1),
            want,
            "{point}: readable after the failure"
        );
        store.abandon();
        let reopened = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
        assert_exactly(&reopened, &want);
        assert!(files(dir.path(), ".tmp").is_empty());
        let expect_segs = if point == "compact.written" { 8 } else { 5 };
        assert_eq!(files(dir.path(), ".seg").len(), expect_segs, "{point}");
        assert!(reopened.compact().unwrap() >= 1);
        assert_exactly(&reopened, &want);
    }
}

#[tokio::test]
async fn inputs_left_behind_by_a_crash_mid_removal_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
    let want = fill(&store, 3).await;
    let part = dir.path().join("g1").join("0");
    let keep = part.join("00000001.seg");
    let copy = fs::read(&keep).unwrap();
    assert_eq!(store.compact().unwrap(), 2);
    assert!(!keep.exists());
    store.close();
    // a crash after the rename removed only some inputs
    fs::write(&keep, copy).unwrap();
    let reopened = LogStore::open(dir.path(), opts(Faults::default()), &|_| true).unwrap();
    assert_exactly(&reopened, &want);
    assert!(!keep.exists(), "the covered input was removed at recovery");
    assert!(part.join("00000000-00000002.seg").exists());
}

#[tokio::test]
async fn the_background_thread_compacts_after_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        compact_background: true,
        ..opts(Faults::default())
    };
    let store = LogStore::open(dir.path(), o, &|_| true).unwrap();
    let want = fill(&store, 6).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.segment_count(1) > 2 {
        assert!(std::time::Instant::now() < deadline, "no background merge");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(messages(&store, 1), want);
}

/// Options for the indexing tests: format-2 checkpoints, indexing only when a test asks.
fn idle_opts(faults: Faults) -> StoreOptions {
    StoreOptions {
        skip_index: SkipIndex::Idle,
        ..opts(faults)
    }
}

fn formats(dir: &Path) -> Vec<(String, u8)> {
    files(dir, ".seg")
        .into_iter()
        .map(|f| {
            let magic = fs::read(&f).unwrap()[..8].to_vec();
            let name = Path::new(&f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, magic[7] - b'0')
        })
        .collect()
}

#[tokio::test]
async fn indexing_rewrites_every_segment_while_scans_continue_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(LogStore::open(dir.path(), idle_opts(Faults::default()), &|_| true).unwrap());
    let want = fill(&store, 4).await;
    assert!(
        formats(dir.path()).iter().all(|(_, f)| *f == 2),
        "checkpoints write format 2"
    );
    assert_eq!(store.unindexed().0, 8);
    let reader = Reader::start(&store, &want, "a scan during indexing");
    assert_eq!(store.index_now().unwrap(), 8);
    reader.finish();
    assert_eq!(store.unindexed(), (0, 0));
    assert_eq!(messages(&store, 1), want);
    let after = formats(dir.path());
    assert_eq!(after.len(), 8, "the originals are gone: {after:?}");
    assert!(
        after.iter().all(|(n, f)| *f == 3 && n.ends_with(".i.seg")),
        "{after:?}"
    );
    // a merge of indexed segments stays indexed
    assert_eq!(store.compact().unwrap(), 2);
    assert!(formats(dir.path()).iter().all(|(_, f)| *f == 3));
    store.close();
    let reopened = LogStore::open(dir.path(), idle_opts(Faults::default()), &|_| true).unwrap();
    assert_exactly(&reopened, &want);
    assert_eq!(reopened.unindexed(), (0, 0));
}

#[tokio::test]
async fn indexing_crash_at_every_point_keeps_events_exactly_once() {
    for point in ["index.written", "index.renamed"] {
        let dir = tempfile::tempdir().unwrap();
        let (faults, slot) = armed();
        let store = LogStore::open(dir.path(), idle_opts(faults), &|_| true).unwrap();
        let want = fill(&store, 2).await;
        *slot.lock() = Some(point);
        // the failed rewrite is left as it was; the other segments are indexed
        assert_eq!(store.index_now().unwrap(), 3, "{point}");
        assert_eq!(
            store.unindexed().0,
            0,
            "{point}: a failed rewrite is not retried"
        );
        assert_eq!(store.index_now().unwrap(), 0, "{point}");
        assert_eq!(
            messages(&store, 1),
            want,
            "{point}: readable after the failure"
        );
        store.abandon();
        let reopened = LogStore::open(dir.path(), idle_opts(Faults::default()), &|_| true).unwrap();
        assert_exactly(&reopened, &want);
        assert!(files(dir.path(), ".tmp").is_empty(), "{point}");
        let segs = formats(dir.path());
        assert_eq!(segs.len(), 4, "{point}: one file per segment: {segs:?}");
        let indexed = segs.iter().filter(|(_, f)| *f == 3).count();
        // a crash after the rename leaves both files: recovery keeps the indexed one
        let want_indexed = if point == "index.written" { 3 } else { 4 };
        assert_eq!(indexed, want_indexed, "{point}: {segs:?}");
        assert_eq!(reopened.unindexed().0, 4 - want_indexed);
        reopened.index_now().unwrap();
        assert_eq!(reopened.unindexed(), (0, 0));
        assert_exactly(&reopened, &want);
    }
}

#[tokio::test]
async fn the_background_thread_indexes_when_no_scan_comes_even_under_a_trickle_of_appends() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        compact_background: true,
        index_idle: std::time::Duration::from_secs(1),
        // no merges: the segment count below changes only by indexing
        compact_min_run: 100,
        ..idle_opts(Faults::default())
    };
    // the store counts idle time from its opening until the first scan
    let opened = std::time::Instant::now();
    let store = LogStore::open(dir.path(), o, &|_| true).unwrap();
    let mut want = fill(&store, 3).await;
    // busy: scans at a pace well inside the idle time hold the indexer off. Checked only while
    // the pace holds: if this thread is descheduled for most of the idle time (a loaded CI
    // machine), the store really was idle and indexing may start, so the busy phase ends there.
    let busy_until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    let mut last_scan = opened;
    while std::time::Instant::now() < busy_until {
        if last_scan.elapsed() >= std::time::Duration::from_millis(800) {
            break;
        }
        last_scan = std::time::Instant::now();
        assert_eq!(messages(&store, 1), want);
        assert_eq!(store.unindexed().0, 6, "indexed while scans kept coming");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // no scans, a trickle of small appends (far below the quiet rate): the indexer gets to work
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut k = 0;
    while store.unindexed().0 > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never indexed under a trickle"
        );
        let c = batch(&[5 + k], "trickle");
        want.push(String::from_utf8_lossy(c.message(0)).into_owned());
        store.append(1, c).await.unwrap();
        k += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    want.sort();
    assert_eq!(messages(&store, 1), want);
}
