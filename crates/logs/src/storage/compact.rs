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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::sync::{mpsc, Arc};

use super::columns::Columns;
use super::segment::{self, Segment, SegmentWriter};
use super::{Inner, StorageError};

/// A run of segments of one partition to merge.
struct Plan {
    gid: u64,
    hour: i64,
    segs: Vec<Arc<Segment>>,
}

/// The compactor thread: a pass after every flush (nudged through `rx`) and every
/// `compact_interval`, until every sender is gone.
pub(super) fn run_compactor(inner: &Inner, rx: mpsc::Receiver<()>) {
    loop {
        match rx.recv_timeout(inner.options.compact_interval) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while rx.try_recv().is_ok() {}
        if !inner.options.compact_background {
            continue;
        }
        if let Err(e) = compact_all(inner) {
            tracing::error!(error = %e, "log segment compaction failed");
        }
    }
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
    let mut w = SegmentWriter::create(
        &dir.join(segment::file_name(first, last)),
        inner.options.skip_index,
    )?;
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
    let still_there = inner
        .groups
        .read()
        .get(&plan.gid)
        .and_then(|g| g.parts.get(&plan.hour))
        .is_some_and(|p| {
            plan.segs
                .iter()
                .all(|s| p.segments.iter().any(|x| Arc::ptr_eq(x, s)))
        });
    if !still_there {
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
