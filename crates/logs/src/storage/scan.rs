//! Segment scans that use more than one core.
//!
//! - [`pipelined`] (ordered): when a scan covers enough compressed data, a helper thread reads,
//!   checks and decompresses the next blocks while the caller's callback works on the current one.
//!   Decoded blocks travel through a small bounded channel and their buffers are handed back for
//!   reuse, so memory stays at a few blocks.
//! - [`unordered`]: for queries whose answer does not depend on event order (a count), every
//!   wanted block of every partition is a task; the caller and helper threads take tasks from a
//!   shared counter, each decoding its block into its own reused [`Lean`] buffers (only the columns
//!   a count needs, message text not copied) and evaluating it right there.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;

use super::columns::{Columns, Lean};
use super::granules::Probe;
use super::segment::Segment;
use super::{PartSnap, StorageError};

/// Scans of at least this many compressed bytes are pipelined.
pub const PIPELINE_MIN_BYTES: u64 = 4 << 20;
/// Decoded blocks in flight between the helper and the caller.
const DEPTH: usize = 3;

/// Compressed bytes of the blocks of `segs` overlapping `[start, end)`.
pub fn wanted_bytes(segs: &[Arc<Segment>], start: i64, end: i64) -> u64 {
    segs.iter()
        .flat_map(|s| s.blocks.iter())
        .filter(|b| b.max_ts >= start && b.min_ts < end)
        .map(|b| u64::from(b.clen))
        .sum()
}

/// Hand every block of `segs` overlapping `[start, end)` to `f`, decoding on a helper thread.
/// Returns false when `f` asked to stop.
pub fn pipelined(
    segs: &[Arc<Segment>],
    start: i64,
    end: i64,
    probe: Option<&Probe>,
    f: &mut dyn FnMut(&Columns) -> bool,
) -> Result<bool, StorageError> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Columns, StorageError>>(DEPTH);
    let (free_tx, free_rx) = mpsc::channel::<Columns>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let (mut buf, mut raw) = (Vec::new(), Vec::new());
            for seg in segs {
                let file = match File::open(&seg.path) {
                    Ok(f) => f,
                    // expired or deleted meanwhile: reads as empty, as in Segment::scan
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        let _ = full_tx.send(Err(e.into()));
                        return;
                    }
                };
                for (k, b) in seg.blocks.iter().enumerate() {
                    if b.max_ts < start || b.min_ts >= end {
                        continue;
                    }
                    let mut cols = free_rx.try_recv().unwrap_or_default();
                    let r = seg
                        .read_block(&file, k, probe, &mut cols, &mut buf, &mut raw)
                        .map(|()| cols);
                    let failed = r.is_err();
                    // the caller stopped (dropped the receiver) or this failed: done
                    if full_tx.send(r).is_err() || failed {
                        return;
                    }
                }
            }
        });
        // owned here, so an early return drops it and unblocks the helper before the scope joins
        let full_rx = full_rx;
        for r in full_rx.iter() {
            let cols = r?;
            if !f(&cols) {
                return Ok(false);
            }
            let _ = free_tx.send(cols);
        }
        Ok(true)
    })
}

impl PartSnap {
    /// The blocks still in memory (heads being flushed, then the head), non-empty ones only.
    pub fn memory_blocks(&self) -> impl Iterator<Item = &Columns> {
        self.frozen
            .iter()
            .map(|c| &**c)
            .chain(std::iter::once(&*self.head))
            .filter(|c| !c.is_empty())
    }
}

/// One segment block of an [`unordered`] scan as its callback sees it.
pub struct BlockRef<'a> {
    /// The tag the block's partition was given.
    pub tag: usize,
    /// Every event of the block lies in the scan's window (then `cols.ts` is not decoded).
    pub inside: bool,
    /// Text not copied; of a format-3 block not even decoded (see [`Lean::for_each_hit`],
    /// [`Lean::load_text`]).
    pub cols: &'a mut Lean,
}

/// Hand every segment block of `parts` (each with a caller's tag) overlapping `[start, end)` to
/// `f`, on `threads` threads (the caller's included), in no particular order. Blocks still in
/// memory are not included (see [`PartSnap::memory_blocks`]). Returns false when `f` asked to stop
/// (the other threads stop after their current block).
pub fn unordered(
    parts: &[(usize, &PartSnap)],
    start: i64,
    end: i64,
    threads: usize,
    f: &(dyn Fn(BlockRef<'_>) -> bool + Sync),
) -> Result<bool, StorageError> {
    let tasks: Vec<(usize, &Segment, usize)> = parts
        .iter()
        .flat_map(|(tag, p)| p.segments.iter().map(move |s| (*tag, &**s)))
        .flat_map(|(tag, s)| {
            s.blocks
                .iter()
                .enumerate()
                .filter(move |(_, b)| b.max_ts >= start && b.min_ts < end)
                .map(move |(k, _)| (tag, s, k))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failed: Mutex<Option<StorageError>> = Mutex::new(None);
    let work = || {
        let (mut lean, mut buf) = (Lean::default(), Vec::new());
        // the file of the segment this thread read last
        let mut open: Option<(&Segment, Option<File>)> = None;
        while !stop.load(Ordering::Relaxed) {
            let Some(&(tag, seg, k)) = tasks.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return;
            };
            if open.as_ref().is_none_or(|(s, _)| !std::ptr::eq(*s, seg)) {
                let file = match File::open(&seg.path) {
                    Ok(f) => Some(f),
                    // expired or deleted meanwhile: reads as empty, as in Segment::scan
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        *failed.lock() = Some(e.into());
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                };
                open = Some((seg, file));
            }
            let Some((_, Some(file))) = &open else {
                continue;
            };
            let b = &seg.blocks[k];
            let inside = b.min_ts >= start && b.max_ts < end;
            if let Err(e) = seg.read_lean(file, k, &mut lean, &mut buf, !inside) {
                failed.lock().get_or_insert(e);
                stop.store(true, Ordering::Relaxed);
                return;
            }
            let block = BlockRef {
                tag,
                inside,
                cols: &mut lean,
            };
            if !f(block) {
                stop.store(true, Ordering::Relaxed);
                return;
            }
        }
    };
    let helpers = threads.clamp(1, 16).min(tasks.len()).saturating_sub(1);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    Ok(!stop.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_scans_see_every_block_in_order_and_stop_early() {
        let dir = tempfile::tempdir().unwrap();
        let mut segs = Vec::new();
        for s in 0..3u32 {
            let mut c = Columns::default();
            for i in 0..50_000i64 {
                let ts = i64::from(s) * 100_000 + i;
                c.push(
                    ts,
                    0,
                    ts as u64,
                    0,
                    format!("seg {s} event {i} padding padding").as_bytes(),
                );
            }
            let path = dir.path().join(super::super::segment::file_name(s, s));
            segs.push(Arc::new(
                Segment::write(&path, &c, s, s, s % 2 == 0).unwrap(),
            ));
        }
        let mut seen = Vec::new();
        let done = pipelined(&segs, 20_000, 220_000, None, &mut |b| {
            seen.extend(
                b.ts.iter()
                    .copied()
                    .filter(|t| (20_000..220_000).contains(t)),
            );
            true
        })
        .unwrap();
        assert!(done);
        let want: Vec<i64> = (20_000..50_000)
            .chain(100_000..150_000)
            .chain(200_000..220_000)
            .collect();
        assert_eq!(seen, want);
        let mut blocks = 0;
        let done = pipelined(&segs, 0, i64::MAX, None, &mut |_| {
            blocks += 1;
            blocks < 2
        })
        .unwrap();
        assert!(!done);
        assert_eq!(blocks, 2);
        assert!(wanted_bytes(&segs, 0, i64::MAX) > wanted_bytes(&segs, 0, 10));
        // the unordered scan sees the same events (in some order), with timestamps only for
        // blocks that cross the window's edges
        let mut part = PartSnap {
            hour: 0,
            segments: segs.clone(),
            frozen: Vec::new(),
            head: Arc::new(Columns::default()),
        };
        for threads in [1, 2, 3] {
            let got = Mutex::new(Vec::new());
            let done = unordered(&[(7, &part)], 20_000, 220_000, threads, &|b| {
                assert_eq!(b.tag, 7);
                b.cols.load_text().unwrap();
                let text = std::str::from_utf8(b.cols.text()).unwrap();
                assert_eq!(text.len(), *b.cols.ends.last().unwrap() as usize);
                if b.inside {
                    assert!(b.cols.ts.is_empty());
                    // every message of the block names its own event number
                    let first = text.split(" event ").nth(1).unwrap();
                    let first: i64 = first.split(' ').next().unwrap().parse().unwrap();
                    let seg: i64 = text[4..5].parse().unwrap();
                    let ts0 = seg * 100_000 + first;
                    got.lock().extend(ts0..ts0 + b.cols.len() as i64);
                } else {
                    assert_eq!(b.cols.ts.len(), b.cols.len());
                    got.lock().extend(
                        b.cols
                            .ts
                            .iter()
                            .copied()
                            .filter(|t| (20_000..220_000).contains(t)),
                    );
                }
                true
            })
            .unwrap();
            assert!(done);
            let mut got = got.into_inner();
            got.sort_unstable();
            assert_eq!(got, want, "{threads} threads");
        }
        let calls = AtomicUsize::new(0);
        let done = unordered(&[(0, &part)], 0, i64::MAX, 2, &|_| {
            calls.fetch_add(1, Ordering::SeqCst) < 1
        })
        .unwrap();
        assert!(!done, "a callback can stop the scan");
        assert!(
            calls.into_inner() <= 3,
            "the threads stop after their current block"
        );
        Arc::make_mut(&mut part.head).push(1, 1, 1, 1, b"in memory");
        assert_eq!(part.memory_blocks().count(), 1);
        // a corrupt block is an error, not a panic or a silent skip
        let bad = &segs[1];
        let mut data = std::fs::read(&bad.path).unwrap();
        let n = data.len();
        data[n - 10] ^= 0xff;
        std::fs::write(&bad.path, data).unwrap();
        assert!(pipelined(&segs, 0, i64::MAX, None, &mut |_| true).is_err());
        assert!(unordered(&[(0, &part)], 0, i64::MAX, 2, &|_| true).is_err());
        // a file removed meanwhile (expired partition) reads as empty
        std::fs::remove_file(&segs[1].path).unwrap();
        let n = AtomicUsize::new(0);
        assert!(unordered(&[(0, &part)], 0, i64::MAX, 2, &|b| {
            n.fetch_add(b.cols.len(), Ordering::SeqCst);
            true
        })
        .unwrap());
        assert_eq!(n.into_inner(), 100_000);
    }
}
