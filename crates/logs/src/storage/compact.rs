//! Segment compaction: a background thread merges runs of small segments of one hour partition
//! into one larger segment, so partitions that were checkpointed many times (a slow trickle of
//! events, many groups) are read with few files and well-filled blocks.
//!
//! Only runs of segments with *contiguous* segment numbers are merged; the result is named
//! `A-B.seg` after the numbers it covers. The switch is crash-safe without a manifest: the merged
//! file is written under a temporary name and fsynced, renamed into place (atomic; the directory is
//! synced) and only then swapped in for the old segments in memory, which are retired (their files
//! are removed once no scan holds them). Recovery keeps, of overlapping segment files, the one
//! covering the widest range, so a crash before the rename leaves the old segments (the temporary
//! file is removed) and a crash after it leaves the merged one: never both, never neither. Scans
//! hold `Arc`s to the segments of their snapshot, so they read the old files to the end while a
//! merge replaces them. Merging streams the inputs block by block (a k-way merge on
//! (timestamp, sequence)), so memory stays at about one block per input.
//!
//! The same thread adds the skip index ([`SkipIndex::Idle`]): once the store has seen no scan and
//! appends below `index_quiet_rate` for `index_idle`, it rewrites format-1/2 segments in format 3,
//! one at a time, as
//! `N.i.seg` / `A-B.i.seg` (same numbers, a name of its own). The switch is the merge's: write
//! the temporary file, fsync, rename, swap in memory under the fs lock, retire the original.
//! Recovery prefers the indexed file of two with the same span. A rewrite is abandoned (its
//! temporary file removed) as soon as a scan starts or appends pick up, so it never competes with
//! a heavy ingest or a query for long.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::columns::Columns;
use super::segment::{self, Segment, SegmentWriter};
use super::{Inner, SkipIndex, StorageError};

/// A run of segments of one partition to merge.
struct Plan {
    gid: u64,
    hour: i64,
    segs: Vec<Arc<Segment>>,
}

/// The compactor thread: a pass after every flush (nudged through `rx`) and every
/// `compact_interval`, until every sender is gone; in between, with [`SkipIndex::Idle`], index
/// segments while the store is idle.
pub(super) fn run_compactor(inner: &Inner, rx: mpsc::Receiver<()>) {
    let o = &inner.options;
    let idle_mode = o.skip_index == SkipIndex::Idle && o.compact_background;
    // wake often enough to notice idleness soon after it starts
    let tick = if idle_mode {
        o.compact_interval
            .min(o.index_idle / 2)
            .max(std::time::Duration::from_millis(10))
    } else {
        o.compact_interval
    };
    let mut last_pass = Instant::now();
    // recent (time, bytes appended so far) samples, to tell the append rate over `index_idle`
    let mut samples: std::collections::VecDeque<(Instant, u64)> = Default::default();
    loop {
        let nudged = match rx.recv_timeout(tick) {
            Ok(()) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        while rx.try_recv().is_ok() {}
        if !o.compact_background {
            continue;
        }
        if nudged || last_pass.elapsed() >= o.compact_interval {
            last_pass = Instant::now();
            if let Err(e) = compact_all(inner) {
                tracing::error!(error = %e, "log segment compaction failed");
            }
        }
        if !idle_mode {
            continue;
        }
        let now = (Instant::now(), inner.load.appended.load(Ordering::Relaxed));
        samples.push_back(now);
        while samples.len() > 2 && now.0 - samples[1].0 >= o.index_idle {
            samples.pop_front();
        }
        let quiet_appends = samples.front().is_some_and(|(t, bytes)| {
            let span = now.0 - *t;
            span >= o.index_idle
                && (now.1 - bytes) as f64 <= o.index_quiet_rate as f64 * span.as_secs_f64()
        });
        if quiet_appends && inner.load.since_scan() >= o.index_idle {
            if let Err(e) = index_all(inner, true) {
                tracing::error!(error = %e, "log segment indexing failed");
            }
        }
    }
}

/// What the idle indexer yields to: a scan started since `scans` was read, appends beyond the
/// quiet rate since `at` (with one `index_idle` worth of slack), or the store closing.
struct Yield {
    at: Instant,
    scans: u64,
    appended: u64,
}

impl Yield {
    fn now(inner: &Inner) -> Yield {
        Yield {
            at: Instant::now(),
            scans: inner.load.scans.load(Ordering::Relaxed),
            appended: inner.load.appended.load(Ordering::Relaxed),
        }
    }

    fn busy(&self, inner: &Inner) -> bool {
        let o = &inner.options;
        let allowed = o.index_quiet_rate as f64 * (self.at.elapsed() + o.index_idle).as_secs_f64();
        inner.closing.load(Ordering::SeqCst)
            || inner.load.scans.load(Ordering::Relaxed) != self.scans
            || (inner.load.appended.load(Ordering::Relaxed) - self.appended) as f64 > allowed
    }
}

/// Rewrite format-1/2 segments in format 3 until none is left or, when `yield_to_work`, until
/// foreground work shows up (see [`Yield`]). Returns the number rewritten.
pub(super) fn index_all(inner: &Inner, yield_to_work: bool) -> Result<usize, StorageError> {
    let _one = inner.compact_lock.lock();
    let mut done = 0;
    let mut skip: Vec<*const Segment> = Vec::new();
    let started = Instant::now();
    let watch = yield_to_work.then(|| Yield::now(inner));
    loop {
        if watch.as_ref().is_some_and(|w| w.busy(inner)) {
            break;
        }
        let Some((gid, hour, seg)) = pick_unindexed(inner, &skip) else {
            break;
        };
        match reindex(inner, gid, hour, &seg, watch.as_ref()) {
            Ok(Reindex::Done) => done += 1,
            Ok(Reindex::Gone) => skip.push(Arc::as_ptr(&seg)),
            Ok(Reindex::Busy) => break,
            Err(e) => {
                // leave this one as it is (still readable, or its scans report the damage) and
                // never try it again in this process: no retry loop on a damaged file
                tracing::warn!(path = %seg.path.display(), error = %e, "cannot index a log segment; left as it is");
                seg.mark_unindexable();
            }
        }
    }
    if done > 0 {
        tracing::info!(
            segments = done,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "log segments indexed"
        );
    }
    Ok(done)
}

/// A live segment without the skip index, the newest partition first (recent data is the most
/// searched).
fn pick_unindexed(inner: &Inner, skip: &[*const Segment]) -> Option<(u64, i64, Arc<Segment>)> {
    let groups = inner.groups.read();
    let mut best: Option<(u64, i64, Arc<Segment>)> = None;
    for (gid, g) in groups.iter() {
        for (hour, p) in &g.parts {
            if best.as_ref().is_some_and(|(_, h, _)| h >= hour) {
                continue;
            }
            if let Some(seg) = p
                .segments
                .iter()
                .find(|s| s.awaits_index() && !skip.contains(&Arc::as_ptr(s)))
            {
                best = Some((*gid, *hour, seg.clone()));
            }
        }
    }
    best
}

enum Reindex {
    Done,
    /// The partition no longer holds the segment (merged, expired, dropped).
    Gone,
    /// Foreground work arrived: abandoned.
    Busy,
}

/// Rewrite `seg` of partition (`gid`, `hour`) in format 3 and swap it in. With `watch`, give up
/// (between blocks) as soon as it says the store is busy.
fn reindex(
    inner: &Inner,
    gid: u64,
    hour: i64,
    seg: &Arc<Segment>,
    watch: Option<&Yield>,
) -> Result<Reindex, StorageError> {
    let faults = &inner.options.faults;
    let busy = || watch.is_some_and(|w| w.busy(inner));
    let file = match File::open(&seg.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Reindex::Gone),
        Err(e) => return Err(e.into()),
    };
    let path = seg
        .path
        .with_file_name(segment::indexed_file_name(seg.first, seg.last));
    let mut w = SegmentWriter::create(&path, true)?;
    let written = (|| {
        let (mut cols, mut buf, mut raw) = (Columns::default(), Vec::new(), Vec::new());
        let mut events = 0u64;
        for b in 0..seg.blocks.len() {
            if busy() {
                return Ok(None);
            }
            seg.read_block(&file, b, None, &mut cols, &mut buf, &mut raw)?;
            for i in 0..cols.len() {
                w.push_from(&cols, i)?;
            }
            events += cols.len() as u64;
        }
        w.sync()?;
        faults.hit("index.written")?;
        Ok::<Option<u64>, StorageError>(Some(events))
    })();
    let events = match written {
        Ok(Some(n)) => n,
        Ok(None) => {
            w.discard();
            return Ok(Reindex::Busy);
        }
        Err(e) => {
            w.discard();
            return Err(e);
        }
    };
    if events != seg.events() {
        w.discard();
        return Err(StorageError::Corrupt("indexed segment lost events"));
    }
    // the switch, as for a merge: under the fs lock, only if the partition still holds `seg`
    let _fs = inner.fs_lock.lock();
    if !holds_all(inner, gid, hour, std::slice::from_ref(seg)) {
        w.discard();
        return Ok(Reindex::Gone);
    }
    let indexed = Arc::new(w.finish(seg.first, seg.last)?);
    faults.hit("index.renamed")?;
    {
        let mut groups = inner.groups.write();
        if let Some(p) = groups.get_mut(&gid).and_then(|g| g.parts.get_mut(&hour)) {
            for x in p.segments.iter_mut() {
                if Arc::ptr_eq(x, seg) {
                    *x = indexed.clone();
                }
            }
        }
    }
    seg.retire();
    tracing::debug!(gid, hour, path = %indexed.path.display(), bytes = indexed.bytes, "indexed a log segment");
    Ok(Reindex::Done)
}

/// Merge until no partition has a run worth merging; returns the number of merges.
pub(super) fn compact_all(inner: &Inner) -> Result<usize, StorageError> {
    if inner.options.compact_min_run < 2 {
        return Ok(0);
    }
    let _one = inner.compact_lock.lock();
    let mut done = 0;
    let mut skip: Vec<(u64, i64, u32)> = Vec::new();
    while let Some(plan) = pick(inner, &skip) {
        let key = (plan.gid, plan.hour, plan.segs[0].first);
        if !merge(inner, plan)? {
            // the partition changed under us (expired, dropped): do not pick it again this pass
            skip.push(key);
            continue;
        }
        done += 1;
    }
    Ok(done)
}

/// The first run of at least `compact_min_run` small, contiguously numbered segments.
fn pick(inner: &Inner, skip: &[(u64, i64, u32)]) -> Option<Plan> {
    let o = &inner.options;
    let groups = inner.groups.read();
    for (gid, g) in groups.iter() {
        for (hour, p) in &g.parts {
            let segs = &p.segments;
            let mut i = 0;
            while i < segs.len() {
                let mut j = i;
                let mut total = 0u64;
                while j < segs.len()
                    && segs[j].bytes < o.compact_small_bytes
                    && total + segs[j].bytes <= o.compact_max_bytes
                    && j - i < o.compact_max_run
                    && (j == i || segs[j].first == segs[j - 1].last.wrapping_add(1))
                {
                    total += segs[j].bytes;
                    j += 1;
                }
                if j - i >= o.compact_min_run && !skip.contains(&(*gid, *hour, segs[i].first)) {
                    return Some(Plan {
                        gid: *gid,
                        hour: *hour,
                        segs: segs[i..j].to_vec(),
                    });
                }
                i = j.max(i + 1);
            }
        }
    }
    None
}

/// Whether partition (`gid`, `hour`) still holds every one of `segs` (a switch checks it under
/// the fs lock: retention, group deletion or another switch may have changed the partition).
fn holds_all(inner: &Inner, gid: u64, hour: i64, segs: &[Arc<Segment>]) -> bool {
    inner
        .groups
        .read()
        .get(&gid)
        .and_then(|g| g.parts.get(&hour))
        .is_some_and(|p| {
            segs.iter()
                .all(|s| p.segments.iter().any(|x| Arc::ptr_eq(x, s)))
        })
}

/// One input of the k-way merge: a segment and its current decoded block.
struct Cursor<'a> {
    seg: &'a Segment,
    file: File,
    block: usize,
    cols: Columns,
    i: usize,
}

impl Cursor<'_> {
    /// Move to the next event, loading blocks as needed; false at the end.
    fn advance(&mut self, buf: &mut Vec<u8>, raw: &mut Vec<u8>) -> Result<bool, StorageError> {
        self.i += 1;
        while self.i >= self.cols.len() {
            if self.block >= self.seg.blocks.len() {
                return Ok(false);
            }
            self.seg
                .read_block(&self.file, self.block, None, &mut self.cols, buf, raw)?;
            self.block += 1;
            self.i = 0;
        }
        Ok(true)
    }

    fn key(&self, k: usize) -> Reverse<(i64, u64, usize)> {
        Reverse((self.cols.ts[self.i], self.cols.seq[self.i], k))
    }
}

/// Merge `plan` into one segment and swap it in. Returns false (and leaves everything as it
/// was) when the partition no longer holds exactly those segments.
fn merge(inner: &Inner, plan: Plan) -> Result<bool, StorageError> {
    let faults = &inner.options.faults;
    let (first, last) = (plan.segs[0].first, plan.segs[plan.segs.len() - 1].last);
    let dir = inner
        .dir
        .join(format!("g{}", plan.gid))
        .join(plan.hour.to_string());
    let mut cursors = Vec::with_capacity(plan.segs.len());
    for seg in &plan.segs {
        match File::open(&seg.path) {
            Ok(file) => cursors.push(Cursor {
                seg,
                file,
                block: 0,
                cols: Columns::default(),
                i: 0,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    // indexed when the setting says so at checkpoints, or when every input already is (the idle
    // indexer would only have to redo it)
    let granules = match inner.options.skip_index {
        SkipIndex::Off => false,
        SkipIndex::Checkpoint => true,
        SkipIndex::Idle => plan.segs.iter().all(|s| s.format() >= 3),
    };
    let mut w = SegmentWriter::create(&dir.join(segment::file_name(first, last)), granules)?;
    let written = (|| {
        let (mut buf, mut raw) = (Vec::new(), Vec::new());
        let mut heap = BinaryHeap::with_capacity(cursors.len());
        for (k, c) in cursors.iter_mut().enumerate() {
            if c.advance(&mut buf, &mut raw)? {
                heap.push(c.key(k));
            }
        }
        let mut events = 0u64;
        while let Some(Reverse((_, _, k))) = heap.pop() {
            let c = &mut cursors[k];
            w.push_from(&c.cols, c.i)?;
            events += 1;
            if c.advance(&mut buf, &mut raw)? {
                heap.push(c.key(k));
            }
        }
        w.sync()?;
        faults.hit("compact.written")?;
        Ok::<u64, StorageError>(events)
    })();
    let events = match written {
        Ok(n) => n,
        Err(e) => {
            w.discard();
            return Err(e);
        }
    };
    let expected: u64 = plan.segs.iter().map(|s| s.events()).sum();
    if events != expected {
        w.discard();
        return Err(StorageError::Corrupt("merged segment lost events"));
    }
    // the switch: rename into place and swap in memory under the fs lock, so retention and
    // group deletion (which remove directories under it) see either the old or the new state
    let _fs = inner.fs_lock.lock();
    if !holds_all(inner, plan.gid, plan.hour, &plan.segs) {
        w.discard();
        return Ok(false);
    }
    let merged = Arc::new(w.finish(first, last)?);
    faults.hit("compact.renamed")?;
    {
        let mut groups = inner.groups.write();
        if let Some(p) = groups
            .get_mut(&plan.gid)
            .and_then(|g| g.parts.get_mut(&plan.hour))
        {
            p.segments
                .retain(|x| !plan.segs.iter().any(|s| Arc::ptr_eq(x, s)));
            p.segments.push(merged.clone());
            p.segments.sort_by_key(|s| s.first);
        }
    }
    for s in &plan.segs {
        s.retire();
    }
    tracing::debug!(
        gid = plan.gid,
        hour = plan.hour,
        first,
        last,
        inputs = plan.segs.len(),
        bytes = merged.bytes,
        "merged log segments"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::{LogStore, StoreOptions};
    use super::*;

    fn batch(from: i64, n: i64) -> Columns {
        let mut c = Columns::default();
        for i in from..from + n {
            c.push(i, 0, 0, 0, format!("event {i} ERROR maybe").as_bytes());
        }
        c
    }

    #[tokio::test]
    async fn a_rewrite_gives_up_when_work_arrives_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let o = StoreOptions {
            compact_background: false,
            skip_index: SkipIndex::Idle,
            index_idle: std::time::Duration::from_secs(1),
            // 1 KiB/s: the 10 KB append below is a surge
            index_quiet_rate: 1024,
            ..StoreOptions::default()
        };
        let store = LogStore::open(dir.path(), o, &|_| true).unwrap();
        store.append(1, batch(0, 20_000)).await.unwrap();
        store.checkpoint().await.unwrap();
        let inner = &store.inner;
        let (gid, hour, seg) = pick_unindexed(inner, &[]).unwrap();
        assert_eq!((gid, hour), (1, 0));
        assert!(seg.blocks.len() > 1);
        let part = dir.path().join("g1").join("0");
        let names = || -> Vec<String> {
            std::fs::read_dir(&part)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        // a scan started since the indexer decided to start: abandoned
        let watch = Yield::now(inner);
        drop(store.snapshot(1, 0, 10));
        let r = reindex(inner, gid, hour, &seg, Some(&watch)).unwrap();
        assert!(matches!(r, Reindex::Busy));
        assert_eq!(
            names(),
            vec!["00000000.seg".to_string()],
            "no temporary file is left"
        );
        // appends beyond the quiet rate: abandoned
        let watch = Yield::now(inner);
        store.append(1, batch(20_000, 500)).await.unwrap();
        let r = reindex(inner, gid, hour, &seg, Some(&watch)).unwrap();
        assert!(matches!(r, Reindex::Busy));
        // a closing store: abandoned too (close does not wait for the backlog)
        inner.closing.store(true, Ordering::SeqCst);
        let r = reindex(inner, gid, hour, &seg, Some(&Yield::now(inner))).unwrap();
        assert!(matches!(r, Reindex::Busy));
        assert_eq!(index_all(inner, true).unwrap(), 0);
        inner.closing.store(false, Ordering::SeqCst);
        assert_eq!(store.unindexed().0, 1);
        assert_eq!(names(), vec!["00000000.seg".to_string()]);
        // nothing going on: done
        let r = reindex(inner, gid, hour, &seg, Some(&Yield::now(inner))).unwrap();
        assert!(matches!(r, Reindex::Done));
        assert_eq!(store.unindexed(), (0, 0));
        // the original goes with its last holder
        drop(seg);
        assert_eq!(names(), vec!["00000000.i.seg".to_string()]);
    }
}
