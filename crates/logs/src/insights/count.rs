//! The parallel literal count: `filter @message like /LITERAL/ | stats count()` (and the queries
//! [`super::exec::Pipeline::prefiltered`] says are equivalent) answered without evaluating events.
//!
//! Every segment block of the window is a task for [`scan::unordered`]: each thread decodes its
//! block (no timestamps when the block lies wholly inside the window, message text not copied),
//! searches the block's text with `memmem` and maps the hits to events through the message-end
//! column ([`for_each_hit`]), as `rg` maps hits to lines. Of a format-3 block only the text
//! granules whose bloom filter admits the literal's grams are decoded and searched
//! ([`Probe`]); record and byte counts come from the message ends, so they need no text. A block whose events are all
//! in the window and all of known streams is accounted for in one step; other blocks event by
//! event. Blocks still in memory (the partition heads) are counted the same way on the caller's
//! thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use memchr::memmem::Finder;
use parking_lot::Mutex;

use super::exec::{ExecError, Outcome, Pipeline, Source};
use crate::storage::columns::for_each_hit;
use crate::storage::granules::Probe;
use crate::storage::scan::{self, BlockRef};
use crate::storage::{LogStore, StorageError};

/// What one block contributed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tally {
    pub scanned: u64,
    pub bytes: u64,
    pub matched: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.scanned += o.scanned;
        self.bytes += o.bytes;
        self.matched += o.matched;
    }
}

/// One block's columns: `ts` may be empty when `inside` (every event is in the window).
pub struct Block<'a> {
    pub inside: bool,
    pub ts: &'a [i64],
    pub stream: &'a [u32],
    pub ends: &'a [u32],
}

/// Count the events of `b` in `[start, end)` of known `streams` (scanned, message bytes) and
/// those `search` reports (it calls its argument with the index of every event whose message
/// contains the needle, ascending).
pub fn tally(
    b: &Block<'_>,
    streams: &HashMap<u32, String>,
    search: impl FnOnce(&mut dyn FnMut(usize)) -> Result<(), StorageError>,
    start: i64,
    end: i64,
) -> Result<Tally, StorageError> {
    let n = b.ends.len();
    if b.stream.len() != n || (!b.inside && b.ts.len() != n) {
        return Ok(Tally::default());
    }
    // stream ids come in runs: look each run up once
    let mut last: Option<(u32, bool)> = None;
    let mut known = |id: u32| match last {
        Some((l, k)) if l == id => k,
        _ => {
            let k = streams.contains_key(&id);
            last = Some((id, k));
            k
        }
    };
    let all_known = b.stream.iter().all(|id| known(*id));
    let mut t = Tally::default();
    if b.inside && all_known {
        t.scanned = n as u64;
        t.bytes = b.ends.last().map_or(0, |e| u64::from(*e));
        search(&mut |_| t.matched += 1)?;
        return Ok(t);
    }
    let mut wanted = |i: usize| {
        (b.inside || (b.ts[i] >= start && b.ts[i] < end)) && (all_known || known(b.stream[i]))
    };
    let mut from = 0u32;
    for (i, &e) in b.ends.iter().enumerate() {
        if wanted(i) {
            t.scanned += 1;
            t.bytes += u64::from(e - from);
        }
        from = e;
    }
    search(&mut |i| {
        if wanted(i) {
            t.matched += 1;
        }
    })?;
    Ok(t)
}

/// Answer a prefiltered count query (see the module docs) over `sources` for `[start, end)`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    store: &LogStore,
    sources: &[Source],
    mut pipeline: Pipeline<'_>,
    finder: &Finder,
    start: i64,
    end: i64,
    cancel: &AtomicBool,
    deadline: Instant,
) -> Result<Outcome, ExecError> {
    let snaps: Vec<(usize, crate::storage::PartSnap)> = sources
        .iter()
        .enumerate()
        .flat_map(|(k, s)| {
            store
                .snapshot(s.gid, start, end)
                .into_iter()
                .map(move |p| (k, p))
        })
        .collect();
    let parts: Vec<(usize, &crate::storage::PartSnap)> =
        snaps.iter().map(|(k, p)| (*k, p)).collect();
    let probe = Probe::new(finder.needle());
    let (scanned, bytes, matched) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let halted: Mutex<Option<ExecError>> = Mutex::new(None);
    let check = || {
        if cancel.load(Ordering::Relaxed) {
            Err(ExecError::Cancelled)
        } else if Instant::now() > deadline {
            Err(ExecError::Timeout)
        } else {
            Ok(())
        }
    };
    let on_block = |b: BlockRef<'_>| {
        if let Err(e) = check() {
            halted.lock().get_or_insert(e);
            return false;
        }
        let (cols, text) = b.cols.split();
        let block = Block {
            inside: b.inside,
            ts: cols.ts,
            stream: cols.stream,
            ends: cols.ends,
        };
        let search = |h: &mut dyn FnMut(usize)| text.for_each_hit(finder, &probe, h);
        let t = match tally(&block, &sources[b.tag].streams, search, start, end) {
            Ok(t) => t,
            Err(e) => {
                halted.lock().get_or_insert(e.into());
                return false;
            }
        };
        scanned.fetch_add(t.scanned, Ordering::Relaxed);
        bytes.fetch_add(t.bytes, Ordering::Relaxed);
        matched.fetch_add(t.matched, Ordering::Relaxed);
        true
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    scan::unordered(&parts, start, end, threads, &on_block)?;
    if let Some(e) = halted.into_inner() {
        return Err(e);
    }
    let mut total = Tally {
        scanned: scanned.into_inner(),
        bytes: bytes.into_inner(),
        matched: matched.into_inner(),
    };
    for (k, part) in &snaps {
        for c in part.memory_blocks() {
            check()?;
            let block = Block {
                inside: false,
                ts: &c.ts,
                stream: &c.stream,
                ends: &c.ends,
            };
            let search = |h: &mut dyn FnMut(usize)| {
                for_each_hit(&c.text, &c.ends, finder, h);
                Ok(())
            };
            total.add(tally(&block, &sources[*k].streams, search, start, end)?);
        }
    }
    pipeline.add_matches(total.matched);
    Ok(Outcome {
        matched: pipeline.matched,
        scanned: total.scanned,
        bytes: total.bytes,
        rows: pipeline.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::exec;
    use crate::insights::parser::parse;
    use crate::storage::columns::Columns;
    use crate::storage::StoreOptions;

    #[test]
    fn tally_counts_each_message_once_and_respects_window_and_streams() {
        let mut c = Columns::default();
        let msgs = [
            "ERROR a ERROR",
            "xERR",
            "ORx",
            "",
            "ERROR",
            "no",
            "ERRORERROR",
        ];
        for (i, m) in msgs.iter().enumerate() {
            c.push(i as i64, 0, 0, (i % 2) as u32, m.as_bytes());
        }
        let f = Finder::new("ERROR");
        let both = HashMap::from([(0, "a".to_string()), (1, "b".to_string())]);
        let block = |inside| Block {
            inside,
            ts: &c.ts,
            stream: &c.stream,
            ends: &c.ends,
        };
        let tally = |b: &Block<'_>, streams, f: &Finder, start, end| {
            let search = |h: &mut dyn FnMut(usize)| {
                for_each_hit(&c.text, &c.ends, f, h);
                Ok(())
            };
            tally(b, streams, search, start, end).unwrap()
        };
        let all = tally(&block(true), &both, &f, 0, 100);
        let bytes: usize = msgs.iter().map(|m| m.len()).sum();
        assert_eq!(
            all,
            Tally {
                scanned: 7,
                bytes: bytes as u64,
                matched: 3
            }
        );
        assert_eq!(tally(&block(false), &both, &f, 0, 100), all);
        // window [1, 5): xERR, ORx, "", ERROR
        let w = tally(&block(false), &both, &f, 1, 5);
        assert_eq!((w.scanned, w.bytes, w.matched), (4, 12, 1));
        // stream 0 only: events 0, 2, 4, 6
        let even = HashMap::from([(0, "a".to_string())]);
        let s = tally(&block(true), &even, &f, 0, 100);
        assert_eq!((s.scanned, s.matched), (4, 3));
        let s = tally(&block(false), &even, &f, 1, 100);
        assert_eq!((s.scanned, s.matched), (3, 2));
    }

    /// The parallel count over segments agrees with evaluating every event, for whole and cut
    /// windows, across many blocks, partitions and the in-memory head.
    #[tokio::test]
    async fn parallel_count_agrees_with_evaluation() {
        parallel_count_case(crate::storage::SkipIndex::Off).await;
    }

    /// The same over format-3 segments (granules skipped by their bloom filters).
    #[tokio::test]
    async fn parallel_count_agrees_with_evaluation_with_the_skip_index() {
        parallel_count_case(crate::storage::SkipIndex::Checkpoint).await;
    }

    async fn parallel_count_case(skip_index: crate::storage::SkipIndex) {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            skip_index,
            ..StoreOptions::default()
        };
        let store = LogStore::open(dir.path(), opts, &|_| true).unwrap();
        let hour = crate::storage::PARTITION_MS;
        let mut events = Vec::new();
        for i in 0..120_000i64 {
            let m = match i % 11 {
                0 => format!("ERROR disk {i} full"),
                1 => format!("warn ERRO{i}R split"),
                2 => format!("{i} ERRORERROR twice"),
                _ => format!("ok {i} request served in {} ms", i % 97),
            };
            // three partitions, two streams
            events.push((i * 3 * hour / 120_000, (i % 2) as u32, m));
        }
        for chunk in events.chunks(20_000) {
            let mut c = Columns::default();
            for (ts, s, m) in chunk {
                c.push(*ts, *ts, 0, *s, m.as_bytes());
            }
            store.append(1, c).await.unwrap();
        }
        store.checkpoint().await.unwrap();
        assert!(store.segment_count(1) >= 3);
        // a few more events stay in the head
        let mut c = Columns::default();
        for i in 0..50i64 {
            c.push(hour + i, 0, 0, 1, format!("late ERROR {i}").as_bytes());
        }
        store.append(1, c).await.unwrap();
        let sources = |streams: &[u32]| {
            vec![Source {
                gid: 1,
                name: "g".into(),
                account: "123456789012".into(),
                streams: streams.iter().map(|s| (*s, format!("s{s}"))).collect(),
            }]
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let count = parse("filter @message like /ERROR/ | stats count()").unwrap();
        let slow =
            parse("filter @message like /ERROR/ and strlen(@message) > 0 | stats count()").unwrap();
        for (start, end, streams) in [
            (0, i64::MAX, &[0u32, 1][..]),
            (hour / 3, 2 * hour + 12_345, &[0, 1][..]),
            (0, i64::MAX, &[1][..]),
            (hour - 7, hour + 20, &[1][..]),
            (10 * hour, 11 * hour, &[0, 1][..]),
        ] {
            let src = sources(streams);
            let run = |cmds| {
                exec::run(
                    &store,
                    &src,
                    cmds,
                    start,
                    end,
                    100,
                    &AtomicBool::new(false),
                    deadline,
                )
                .unwrap()
            };
            let (fast, want) = (run(&count), run(&slow));
            let expect = events
                .iter()
                .map(|(t, s, m)| (*t, *s, m.as_str()))
                .chain((0..50).map(|i| (hour + i, 1, "late ERROR")))
                .filter(|(t, s, m)| {
                    (start..end).contains(t) && streams.contains(s) && m.contains("ERROR")
                })
                .count();
            assert_eq!(fast.matched, expect as u64, "{start}..{end} {streams:?}");
            assert_eq!(fast.rows, want.rows, "{start}..{end} {streams:?}");
            assert_eq!(
                (fast.matched, fast.scanned, fast.bytes),
                (want.matched, want.scanned, want.bytes),
                "{start}..{end} {streams:?}"
            );
        }
        let src = sources(&[0, 1]);
        let all = exec::run(
            &store,
            &src,
            &count,
            0,
            i64::MAX,
            100,
            &AtomicBool::new(false),
            deadline,
        )
        .unwrap();
        let want = events.iter().filter(|e| e.2.contains("ERROR")).count() + 50;
        assert_eq!(all.matched, want as u64);
        assert_eq!(all.scanned, 120_050);
        // other literals (case variants, digits only, inside words, absent): the count path and
        // the evaluation path (both skip granules by their bloom filters) equal a naive count
        for lit in [
            "disk", "ERRO", "rror", "twice", "Error", "late", "zzz", "77", "d in 5", "RERR",
        ] {
            let q = |extra: &str| {
                let text = format!("filter @message like '{lit}'{extra} | stats count()");
                let cmds = parse(&text).unwrap();
                exec::run(
                    &store,
                    &src,
                    &cmds,
                    0,
                    i64::MAX,
                    100,
                    &AtomicBool::new(false),
                    deadline,
                )
                .unwrap()
            };
            let (fast, slow) = (q(""), q(" and strlen(@message) > 0"));
            let want = events.iter().filter(|e| e.2.contains(lit)).count()
                + (0..50)
                    .filter(|i| format!("late ERROR {i}").contains(lit))
                    .count();
            assert_eq!(fast.matched, want as u64, "{lit}");
            assert_eq!(slow.matched, want as u64, "{lit}");
            assert_eq!((fast.scanned, slow.scanned), (120_050, 120_050), "{lit}");
        }
        let cancelled = exec::run(
            &store,
            &src,
            &count,
            0,
            i64::MAX,
            100,
            &AtomicBool::new(true),
            deadline,
        );
        assert!(matches!(cancelled, Err(ExecError::Cancelled)));
    }
}
