//! Pipelined segment scans: when a scan covers enough compressed data, a helper thread reads,
//! checks and decompresses the next blocks while the caller's callback works on the current one,
//! so decoding and query evaluation use both cores. Decoded blocks travel through a small bounded
//! channel and their buffers are handed back for reuse, so memory stays at a few blocks.

use std::fs::File;
use std::sync::mpsc;
use std::sync::Arc;

use super::columns::Columns;
use super::segment::Segment;
use super::StorageError;

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
                        .read_block(&file, k, &mut cols, &mut buf, &mut raw)
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
            segs.push(Arc::new(Segment::write(&path, &c, s, s).unwrap()));
        }
        let mut seen = Vec::new();
        let done = pipelined(&segs, 20_000, 220_000, &mut |b| {
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
        let done = pipelined(&segs, 0, i64::MAX, &mut |_| {
            blocks += 1;
            blocks < 2
        })
        .unwrap();
        assert!(!done);
        assert_eq!(blocks, 2);
        assert!(wanted_bytes(&segs, 0, i64::MAX) > wanted_bytes(&segs, 0, 10));
        // a corrupt block is an error, not a panic or a silent skip
        let bad = &segs[1];
        let mut data = std::fs::read(&bad.path).unwrap();
        let n = data.len();
        data[n - 10] ^= 0xff;
        std::fs::write(&bad.path, data).unwrap();
        assert!(pipelined(&segs, 0, i64::MAX, &mut |_| true).is_err());
    }
}
