//! Durable log-event storage: per log group, hour partitions (by event timestamp) holding immutable
//! lz4-compressed column segments plus an in-memory head, and one WAL in front of everything.
//!
//! One writer thread owns every mutation: it drains all queued appends, assigns sequence numbers,
//! writes them to the WAL with a single fdatasync (group commit), applies them to the heads and only
//! then answers the callers, so an acknowledged append is durable. When the WAL grows past a
//! threshold it checkpoints: heads become segment files, stream statistics and the next sequence
//! number go to `stats.json`, and the WAL files made redundant are removed (see [`writer`] for the
//! two-phase commit that keeps this crash-safe). A compactor thread merges runs of small segments
//! of a partition (see [`compact`]). Scans snapshot a window's partitions (segments plus a shared
//! copy of the head) and read without holding any lock; retention removes whole partition
//! directories.
//!
//! Layout of the store directory: `wal-N.log`, `stats.json`, and `gG/<hour ms>/` partition
//! directories of `N.seg` / `A-B.seg` segment files (plus `N.wW.pending` between a checkpoint's
//! two phases).

pub mod columns;
pub mod compact;
#[cfg(test)]
mod crash_tests;
pub mod granules;
pub mod scan;
pub mod segment;
pub mod wal;
mod writer;

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use columns::Columns;
use segment::Segment;
use wal::Wal;

/// Milliseconds in one partition.
pub const PARTITION_MS: i64 = 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt data: {0}")]
    Corrupt(&'static str),
    #[error("the log store is closed")]
    Closed,
    #[error("stats file: {0}")]
    Stats(#[from] serde_json::Error),
}

/// What a stream has received, kept by the store because it changes with every append.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamStats {
    pub first_ts: i64,
    pub last_ts: i64,
    pub last_ingest: i64,
    pub events: u64,
}

/// Thresholds of the writer and compactor threads.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Checkpoint when the WAL holds this many bytes.
    pub checkpoint_wal_bytes: u64,
    /// While a checkpoint is being written, take appends only until the WAL holds this many
    /// bytes (backpressure: bounds the memory of unflushed heads).
    pub max_unflushed_wal_bytes: u64,
    /// Segments smaller than this (file bytes) are merged with their neighbours.
    pub compact_small_bytes: u64,
    /// Merge a run of at least this many small segments (below 2: never merge).
    pub compact_min_run: usize,
    /// Most segments merged at once.
    pub compact_max_run: usize,
    /// Most input bytes (file bytes) merged at once.
    pub compact_max_bytes: u64,
    /// How often the compactor looks for work besides after each checkpoint.
    pub compact_interval: std::time::Duration,
    /// Whether the background thread compacts (else only [`LogStore::compact`] does).
    pub compact_background: bool,
    /// When segments get a skip index (format 3: message text in ~1 KiB granules, each with a
    /// bloom filter of its letter trigrams, so searches for a literal decode only the granules that
    /// may hold it). See [`SkipIndex`].
    pub skip_index: SkipIndex,
    /// With [`SkipIndex::Idle`]: how long the store must go without a scan, and with appends
    /// below `index_quiet_rate`, before the background thread rewrites segments with the index.
    pub index_idle: std::time::Duration,
    /// Message bytes per second of appends below which the store counts as idle (a steady trickle
    /// of logs does not keep the index from being built; a heavy ingest does).
    pub index_quiet_rate: u64,
    /// Failure injection for crash tests.
    pub faults: Faults,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            checkpoint_wal_bytes: 64 << 20,
            max_unflushed_wal_bytes: 256 << 20,
            compact_small_bytes: 4 << 20,
            compact_min_run: 4,
            compact_max_run: 64,
            compact_max_bytes: 64 << 20,
            compact_interval: std::time::Duration::from_secs(60),
            compact_background: true,
            skip_index: SkipIndex::Idle,
            index_idle: std::time::Duration::from_secs(2),
            index_quiet_rate: 2 << 20,
            faults: Faults::default(),
        }
    }
}

/// When segments are written with the skip index (format 3). Segments of every format are read
/// whatever the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipIndex {
    /// Never: segments are written in format 2 (cheapest to write, fastest to decode whole).
    Off,
    /// Checkpoints write format 2, so ingest pays nothing; once the store has been idle (no scan,
    /// appends below [`StoreOptions::index_quiet_rate`]) for [`StoreOptions::index_idle`], a
    /// background thread rewrites format-1 and format-2 segments in format 3, one at a time,
    /// giving up a rewrite as soon as a scan starts or appends pick up. The default.
    Idle,
    /// Checkpoints write format 3 directly: every segment is indexed at once, for ~8 ns of
    /// checkpoint CPU per message byte more than format 2.
    Checkpoint,
}

/// Named failure points (`flush.pending`, `flush.commit`, `flush.committed`, `flush.published`,
/// `compact.written`, `compact.renamed`, `index.written`, `index.renamed`): when the predicate returns true for a point, the
/// operation stops there with an I/O error, leaving the files as a crash at that point would.
#[derive(Clone, Default)]
pub struct Faults(Option<Arc<FaultFn>>);

type FaultFn = dyn Fn(&str) -> bool + Send + Sync;

impl Faults {
    /// Fail at the points for which `f` returns true.
    pub fn new(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Faults {
        Faults(Some(Arc::new(f)))
    }

    fn hit(&self, point: &str) -> Result<(), StorageError> {
        match &self.0 {
            Some(f) if f(point) => Err(StorageError::Io(std::io::Error::other(format!(
                "injected fault at {point}"
            )))),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Faults(set)"
        } else {
            "Faults(none)"
        })
    }
}

/// The in-memory events of a partition since its last checkpoint: the accepted batches as they
/// arrived (a PutLogEvents batch becomes a chunk without a copy; small batches are gathered into
/// the last chunk up to [`CHUNK_GATHER_BYTES`]).
type Chunks = Vec<Arc<Columns>>;

/// A batch with less text than this is copied onto the end of the partition's last chunk...
const CHUNK_SMALL_BYTES: usize = 64 << 10;
/// ...while that chunk holds less text than this.
const CHUNK_GATHER_BYTES: usize = 1 << 20;

#[derive(Default)]
struct Partition {
    segments: Vec<Arc<Segment>>,
    /// Heads handed to the flusher, readable until their segment is registered.
    frozen: Vec<Arc<Chunks>>,
    head: Chunks,
    next_segment: u32,
}

impl Partition {
    /// Add events to the head: `cols` itself as a new chunk, or copied onto the last chunk when
    /// both are small.
    fn push(&mut self, cols: Columns) {
        if let Some(last) = self.head.last_mut() {
            if cols.text.len() < CHUNK_SMALL_BYTES && last.text.len() < CHUNK_GATHER_BYTES {
                // copies the last chunk only if a scan snapshot still holds it
                Arc::make_mut(last).extend_range(&cols, 0..cols.len());
                return;
            }
        }
        self.head.push(Arc::new(cols));
    }
}

/// One `Columns` of all events of `chunks` (no copy for a single chunk).
fn concat(chunks: &[Arc<Columns>]) -> std::borrow::Cow<'_, Columns> {
    if let [one] = chunks {
        return std::borrow::Cow::Borrowed(&**one);
    }
    let n: usize = chunks.iter().map(|c| c.len()).sum();
    let bytes: usize = chunks.iter().map(|c| c.text.len()).sum();
    let mut all = Columns::default();
    all.ts.reserve_exact(n);
    all.ingest.reserve_exact(n);
    all.seq.reserve_exact(n);
    all.stream.reserve_exact(n);
    all.ends.reserve_exact(n);
    all.text.reserve_exact(bytes);
    for c in chunks {
        all.extend_range(c, 0..c.len());
    }
    std::borrow::Cow::Owned(all)
}

#[derive(Default)]
struct Group {
    parts: BTreeMap<i64, Partition>,
    streams: HashMap<u32, StreamStats>,
}

#[derive(Default, Serialize, Deserialize)]
struct StatsFile {
    next_seq: u64,
    /// The largest group id ever written, so ids are not reused after a reset.
    #[serde(default)]
    max_gid: u64,
    /// WAL files up to this number are covered by segments (a committed checkpoint).
    #[serde(default)]
    wal_upto: u64,
    /// group id → stream id → stats
    streams: HashMap<u64, HashMap<u32, StreamStats>>,
}

struct Inner {
    dir: PathBuf,
    groups: RwLock<HashMap<u64, Group>>,
    /// Held while segment files are written, renamed or swapped, or partition directories removed.
    fs_lock: Mutex<()>,
    /// One compaction pass at a time.
    compact_lock: Mutex<()>,
    options: StoreOptions,
    /// The largest group id ever written (including dropped groups).
    max_gid: std::sync::atomic::AtomicU64,
    /// Foreground work seen (scans, appended bytes), which the background indexer yields to.
    load: Load,
    /// Set by `close`/`abandon`: background work stops at the next step instead of finishing.
    closing: std::sync::atomic::AtomicBool,
}

/// Foreground work seen by the store, for the idle indexer: scans started (and when the last one
/// started, in ms since `opened`) and message bytes appended.
struct Load {
    opened: std::time::Instant,
    scans: std::sync::atomic::AtomicU64,
    last_scan_ms: std::sync::atomic::AtomicU64,
    appended: std::sync::atomic::AtomicU64,
}

impl Load {
    fn new() -> Load {
        Load {
            opened: std::time::Instant::now(),
            scans: Default::default(),
            last_scan_ms: Default::default(),
            appended: Default::default(),
        }
    }

    fn note_scan(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.scans.fetch_add(1, Relaxed);
        self.last_scan_ms
            .store(self.opened.elapsed().as_millis() as u64, Relaxed);
    }

    fn note_append(&self, bytes: usize) {
        self.appended
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Time since the last scan started (since the store opened, if none did).
    fn since_scan(&self) -> std::time::Duration {
        let last = self.last_scan_ms.load(std::sync::atomic::Ordering::Relaxed);
        self.opened
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(last))
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;

enum Msg {
    Append {
        gid: u64,
        cols: Columns,
        reply: Reply,
    },
    Drop {
        gid: u64,
        reply: Reply,
    },
    Expire {
        gid: u64,
        before: i64,
        reply: Reply,
    },
    Checkpoint {
        reply: Reply,
    },
    /// Stop without the final checkpoint (a crash, for recovery tests).
    Abort,
}

/// One partition of a scan snapshot.
pub struct PartSnap {
    pub hour: i64,
    segments: Vec<Arc<Segment>>,
    frozen: Vec<Arc<Columns>>,
    head: Arc<Columns>,
}

/// Counters of one scan.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanStats {
    pub records: u64,
    pub bytes: u64,
}

impl PartSnap {
    /// Hand every block (segments, then the head) that may hold events in `[start, end)` to `f`;
    /// rows outside the window may be included and must be filtered by the caller.
    pub fn scan(
        &self,
        start: i64,
        end: i64,
        cols: &mut Columns,
        raw: &mut Vec<u8>,
        f: &mut dyn FnMut(&Columns) -> bool,
    ) -> Result<bool, StorageError> {
        self.scan_probed(start, end, None, cols, raw, f)
    }

    /// [`PartSnap::scan`] for a caller that only looks at the events whose message contains the
    /// literal of `probe` (and at message lengths): the text of segment granules whose bloom
    /// filter rules the literal out is left zeroed, not decoded (see [`granules`]).
    pub fn scan_probed(
        &self,
        start: i64,
        end: i64,
        probe: Option<&granules::Probe>,
        cols: &mut Columns,
        raw: &mut Vec<u8>,
        f: &mut dyn FnMut(&Columns) -> bool,
    ) -> Result<bool, StorageError> {
        if scan::wanted_bytes(&self.segments, start, end) >= scan::PIPELINE_MIN_BYTES {
            if !scan::pipelined(&self.segments, start, end, probe, f)? {
                return Ok(false);
            }
        } else {
            for seg in &self.segments {
                if !seg.scan(start, end, probe, cols, raw, f)? {
                    return Ok(false);
                }
            }
        }
        for frozen in &self.frozen {
            if !frozen.is_empty() && !f(frozen) {
                return Ok(false);
            }
        }
        if !self.head.is_empty() {
            return Ok(f(&self.head));
        }
        Ok(true)
    }
}

/// The log-event store of one data directory.
pub struct LogStore {
    inner: Arc<Inner>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    compactor: Mutex<Option<JoinHandle<()>>>,
}

fn hour_of(ts: i64) -> i64 {
    ts.div_euclid(PARTITION_MS) * PARTITION_MS
}

impl LogStore {
    /// Open (creating) the store in `dir`. WAL records of groups for which `live` is false are
    /// dropped (their group was deleted).
    pub fn open(
        dir: &Path,
        options: StoreOptions,
        live: &dyn Fn(u64) -> bool,
    ) -> Result<LogStore, StorageError> {
        fs::create_dir_all(dir)?;
        let mut groups: HashMap<u64, Group> = HashMap::new();
        let stats: StatsFile = match fs::read(dir.join("stats.json")) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StatsFile::default(),
            Err(e) => return Err(e.into()),
        };
        let mut max_gid = stats.max_gid;
        for (gid, streams) in stats.streams {
            if live(gid) {
                groups.entry(gid).or_default().streams = streams;
            }
        }
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(gid) = name.strip_prefix('g').and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            max_gid = max_gid.max(gid);
            if !live(gid) {
                let _ = fs::remove_dir_all(entry.path());
                continue;
            }
            let group = groups.entry(gid).or_default();
            for part in fs::read_dir(entry.path())? {
                let part = part?;
                let Ok(hour) = part.file_name().to_string_lossy().parse::<i64>() else {
                    continue;
                };
                let p = open_partition(&part.path(), stats.wal_upto)?;
                group.parts.insert(hour, p);
            }
        }
        let mut next_seq = stats.next_seq;
        let mut wal_numbers = writer::wal_numbers(dir)?;
        wal_numbers.sort_unstable();
        // WAL files a committed checkpoint covers are redundant
        for n in wal_numbers.iter().filter(|n| **n <= stats.wal_upto) {
            fs::remove_file(writer::wal_path(dir, *n))?;
        }
        wal_numbers.retain(|n| *n > stats.wal_upto);
        for n in &wal_numbers {
            Wal::open(&writer::wal_path(dir, *n), &mut |gid, cols| {
                if let Some(max) = cols.seq.iter().max() {
                    next_seq = next_seq.max(max + 1);
                }
                max_gid = max_gid.max(gid);
                if live(gid) {
                    apply(groups.entry(gid).or_default(), cols.clone());
                }
            })?;
        }
        // never reuse a number at or below wal_upto: recovery would skip that file
        let wal_no = wal_numbers.last().copied().unwrap_or(0).max(stats.wal_upto) + 1;
        let wal = Wal::open(&writer::wal_path(dir, wal_no), &mut |_, _| {})?;
        segment::sync_dir(dir);
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            groups: RwLock::new(groups),
            fs_lock: Mutex::new(()),
            compact_lock: Mutex::new(()),
            options: options.clone(),
            max_gid: std::sync::atomic::AtomicU64::new(max_gid),
            load: Load::new(),
            closing: std::sync::atomic::AtomicBool::new(false),
        });
        let (compact_tx, compact_rx) = mpsc::channel();
        let compactor = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("logs-compact".into())
                .spawn(move || compact::run_compactor(&inner, compact_rx))?
        };
        let (flush_tx, flush_rx) = mpsc::channel();
        let in_flight = Arc::new(writer::Flights::default());
        let flusher = {
            let (inner, in_flight) = (inner.clone(), in_flight.clone());
            std::thread::Builder::new()
                .name("logs-flush".into())
                .spawn(move || writer::run_flusher(&inner, flush_rx, &in_flight, compact_tx))?
        };
        let (tx, rx) = mpsc::channel();
        let writer = writer::Writer {
            inner: inner.clone(),
            wal,
            wal_no,
            next_seq,
            options,
            flush_tx: Some(flush_tx),
            in_flight,
        };
        let thread = std::thread::Builder::new()
            .name("logs-wal".into())
            .spawn(move || writer.run(rx))?;
        Ok(LogStore {
            inner,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            flusher: Mutex::new(Some(flusher)),
            compactor: Mutex::new(Some(compactor)),
        })
    }

    async fn send(&self, make: impl FnOnce(Reply) -> Msg) -> Result<(), StorageError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        {
            let tx = self.tx.lock();
            let tx = tx.as_ref().ok_or(StorageError::Closed)?;
            tx.send(make(reply)).map_err(|_| StorageError::Closed)?;
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageError::Io(std::io::Error::other(e))),
            Err(_) => Err(StorageError::Closed),
        }
    }

    /// Append events (sequence numbers are assigned here); resolves once durable.
    pub async fn append(&self, gid: u64, cols: Columns) -> Result<(), StorageError> {
        self.inner.load.note_append(cols.text.len());
        self.send(|reply| Msg::Append { gid, cols, reply }).await
    }

    /// Remove all data of a group.
    pub async fn drop_group(&self, gid: u64) -> Result<(), StorageError> {
        self.send(|reply| Msg::Drop { gid, reply }).await
    }

    /// Remove every partition of `gid` that ends at or before `before` (ms).
    pub async fn expire(&self, gid: u64, before: i64) -> Result<(), StorageError> {
        self.send(|reply| Msg::Expire { gid, before, reply }).await
    }

    /// Write the heads out as segments and reset the WAL.
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        self.send(|reply| Msg::Checkpoint { reply }).await
    }

    /// Checkpoint and stop the writer and flusher threads (blocking). Later calls fail with
    /// `Closed`.
    pub fn close(&self) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // the writer checkpoints when its channel closes
        drop(self.tx.lock().take());
        self.join();
    }

    fn join(&self) {
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
        if let Some(handle) = self.flusher.lock().take() {
            let _ = handle.join();
        }
        // the flusher held the compactor's only sender
        if let Some(handle) = self.compactor.lock().take() {
            let _ = handle.join();
        }
    }

    /// Run a compaction pass now on the calling thread (blocking); returns the merges done.
    pub fn compact(&self) -> Result<usize, StorageError> {
        compact::compact_all(&self.inner)
    }

    /// Segment files of `gid` (for tools and tests).
    pub fn segment_count(&self, gid: u64) -> usize {
        self.inner
            .groups
            .read()
            .get(&gid)
            .map_or(0, |g| g.parts.values().map(|p| p.segments.len()).sum())
    }

    /// Stop the writer thread without checkpointing, leaving the WAL as a crash would (for
    /// recovery tests). Later calls fail with `Closed`.
    pub fn abandon(&self) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let tx = self.tx.lock().take();
        if let Some(tx) = tx {
            let _ = tx.send(Msg::Abort);
        }
        self.join();
    }

    /// Partitions of `gid` that may hold events in `[start, end)`, ascending.
    pub fn snapshot(&self, gid: u64, start: i64, end: i64) -> Vec<PartSnap> {
        self.inner.load.note_scan();
        let groups = self.inner.groups.read();
        let Some(g) = groups.get(&gid) else {
            return Vec::new();
        };
        if end <= start {
            return Vec::new();
        }
        g.parts
            .range(hour_of(start)..=hour_of(end.saturating_sub(1)))
            .map(|(hour, p)| PartSnap {
                hour: *hour,
                segments: p.segments.clone(),
                // every in-memory chunk is a block of its own: frozen heads', then the head's
                frozen: p
                    .frozen
                    .iter()
                    .flat_map(|f| f.iter())
                    .chain(&p.head)
                    .cloned()
                    .collect(),
                head: Arc::default(),
            })
            .collect()
    }

    /// Ids of the groups holding data.
    pub fn group_ids(&self) -> Vec<u64> {
        self.inner.groups.read().keys().copied().collect()
    }

    /// The largest group id holding data.
    /// The largest group id ever written, including groups dropped since (ids handed out later
    /// must stay above it so stale WAL records can never belong to a new group).
    pub fn max_group_id(&self) -> Option<u64> {
        let seen = self.inner.max_gid.load(std::sync::atomic::Ordering::SeqCst);
        let live = self.inner.groups.read().keys().copied().max().unwrap_or(0);
        Some(seen.max(live)).filter(|g| *g > 0)
    }

    /// Statistics of the streams of `gid`.
    pub fn stream_stats(&self, gid: u64) -> HashMap<u32, StreamStats> {
        self.inner
            .groups
            .read()
            .get(&gid)
            .map(|g| g.streams.clone())
            .unwrap_or_default()
    }

    /// Whether the background thread adds the skip index ([`SkipIndex::Idle`]).
    pub fn indexes_when_idle(&self) -> bool {
        self.inner.options.skip_index == SkipIndex::Idle && self.inner.options.compact_background
    }

    /// Segments still without the skip index, and their bytes (what [`SkipIndex::Idle`] has
    /// left to rewrite).
    pub fn unindexed(&self) -> (usize, u64) {
        let groups = self.inner.groups.read();
        groups
            .values()
            .flat_map(|g| g.parts.values())
            .flat_map(|p| &p.segments)
            .filter(|s| s.awaits_index())
            .fold((0, 0), |(n, b), s| (n + 1, b + s.bytes))
    }

    /// Rewrite segments with the skip index now, on the calling thread, as the idle indexer does
    /// (for tests and tools; runs whatever the [`SkipIndex`] setting). Returns how many were
    /// rewritten.
    pub fn index_now(&self) -> Result<usize, StorageError> {
        compact::index_all(&self.inner, false)
    }

    /// Bytes stored for `gid` (compressed segments plus raw head text).
    pub fn stored_bytes(&self, gid: u64) -> u64 {
        let groups = self.inner.groups.read();
        groups.get(&gid).map_or(0, |g| {
            g.parts
                .values()
                .map(|p| {
                    p.segments.iter().map(|s| s.bytes).sum::<u64>()
                        + p.frozen
                            .iter()
                            .flat_map(|f| f.iter())
                            .chain(&p.head)
                            .map(|c| c.text.len() as u64)
                            .sum::<u64>()
                })
                .sum()
        })
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Load one partition directory: promote pending segments of committed checkpoints (`W <=
/// wal_upto`) and delete the others and temporary files, then drop segments that a merged segment
/// covers (a compaction interrupted between its rename and the removal of its inputs).
fn open_partition(path: &Path, wal_upto: u64) -> Result<Partition, StorageError> {
    // (first, last, indexed, path)
    let mut found: Vec<(u32, u32, bool, PathBuf)> = Vec::new();
    for seg in fs::read_dir(path)? {
        let path = seg?.path();
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some((n, w)) = writer::parse_pending(&name) {
            if w <= wal_upto {
                let to = path.with_file_name(segment::file_name(n, n));
                fs::rename(&path, &to)?;
                found.push((n, n, false, to));
            } else {
                fs::remove_file(&path)?;
            }
        } else if let Some(stem) = name.strip_suffix(".seg") {
            if let Some((a, b)) = segment::parse_stem(stem) {
                found.push((a, b, segment::is_indexed_stem(stem), path));
            }
        } else if name.ends_with(".tmp") {
            fs::remove_file(&path)?;
        }
    }
    segment::sync_dir(path);
    // widest first among equal starts, and of two equal spans the indexed rewrite (an indexing
    // interrupted before the original was removed); a segment inside the span of one kept before
    // it is covered
    found.sort_by_key(|(a, b, indexed, _)| (*a, Reverse(*b), Reverse(*indexed)));
    let mut p = Partition::default();
    let mut covered_to: Option<u32> = None;
    for (a, b, _, path) in found {
        if let Some(end) = covered_to.filter(|end| a <= *end) {
            if b <= end {
                tracing::info!(path = %path.display(), "removing a segment a merged one replaced");
                fs::remove_file(&path)?;
                continue;
            }
            tracing::warn!(path = %path.display(), "segment overlaps another partly; kept");
        }
        covered_to = Some(covered_to.map_or(b, |e| e.max(b)));
        p.segments.push(Arc::new(Segment::open(&path)?));
        p.next_segment = p.next_segment.max(b + 1);
    }
    Ok(p)
}

/// Add accepted events to the heads of their hour partitions and to the stream statistics.
fn apply(group: &mut Group, cols: Columns) {
    stream_stats(group, &cols);
    // runs of events in the same hour; a batch within one hour (the usual case) is kept as it is
    let mut runs = Vec::new();
    let mut i = 0;
    while i < cols.len() {
        let hour = hour_of(cols.ts[i]);
        let mut j = i + 1;
        while j < cols.len() && hour_of(cols.ts[j]) == hour {
            j += 1;
        }
        runs.push((hour, i..j));
        i = j;
    }
    if let [(hour, _)] = runs[..] {
        group.parts.entry(hour).or_default().push(cols);
        return;
    }
    for (hour, range) in runs {
        let mut run = Columns::default();
        run.extend_range(&cols, range);
        group.parts.entry(hour).or_default().push(run);
    }
}

/// Stream statistics per run of events of one stream (a PutLogEvents batch is one run).
fn stream_stats(group: &mut Group, cols: &Columns) {
    let mut i = 0;
    while i < cols.len() {
        let stream = cols.stream[i];
        let mut j = i + 1;
        while j < cols.len() && cols.stream[j] == stream {
            j += 1;
        }
        let (ts, ingest) = (&cols.ts[i..j], &cols.ingest[i..j]);
        let (lo, hi) = ts
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
        let last_ingest = ingest.iter().copied().max().unwrap_or(i64::MIN);
        let s = group.streams.entry(stream).or_insert(StreamStats {
            first_ts: lo,
            last_ts: hi,
            last_ingest,
            events: 0,
        });
        s.first_ts = s.first_ts.min(lo);
        s.last_ts = s.last_ts.max(hi);
        s.last_ingest = s.last_ingest.max(last_ingest);
        s.events += (j - i) as u64;
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(ts: &[i64], msg: &str) -> Columns {
        let mut c = Columns::default();
        for t in ts {
            c.push(*t, 0, 0, 1, msg.as_bytes());
        }
        c
    }

    fn read_all(store: &LogStore, gid: u64) -> Vec<(i64, u64, String)> {
        let (mut buf, mut raw) = (Columns::default(), Vec::new());
        let mut out = Vec::new();
        for p in store.snapshot(gid, 0, i64::MAX) {
            p.scan(0, i64::MAX, &mut buf, &mut raw, &mut |b| {
                for i in 0..b.len() {
                    out.push((
                        b.ts[i],
                        b.seq[i],
                        String::from_utf8_lossy(b.message(i)).into_owned(),
                    ));
                }
                true
            })
            .unwrap();
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn acknowledged_appends_survive_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), StoreOptions::default(), &|_| true).unwrap();
        store.append(1, cols(&[10, 20], "a")).await.unwrap();
        store.checkpoint().await.unwrap();
        // concurrent appends share commits; all are acknowledged before the crash
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for k in 0..8i64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.append(1, cols(&[3_600_000 + k], "b")).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        store.abandon();
        assert!(store.append(1, cols(&[1], "late")).await.is_err());
        let reopened = LogStore::open(dir.path(), StoreOptions::default(), &|_| true).unwrap();
        let got = read_all(&reopened, 1);
        assert_eq!(got.len(), 10);
        let seqs: std::collections::HashSet<u64> = got.iter().map(|e| e.1).collect();
        assert_eq!(
            seqs.len(),
            10,
            "sequence numbers stay unique across the crash"
        );
        assert_eq!(reopened.stream_stats(1)[&1].last_ts, 3_600_007);
        reopened.append(1, cols(&[30], "c")).await.unwrap();
        let got = read_all(&reopened, 1);
        let seqs: std::collections::HashSet<u64> = got.iter().map(|e| e.1).collect();
        assert_eq!(
            seqs.len(),
            11,
            "appends after recovery get fresh sequence numbers"
        );
    }

    #[tokio::test]
    async fn every_acknowledged_append_is_readable_at_once() {
        // writers on four tasks while small checkpoints keep freezing heads: each answer comes
        // only after the append is durable and applied, so the event is readable right away
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            checkpoint_wal_bytes: 2048,
            ..StoreOptions::default()
        };
        let store = Arc::new(LogStore::open(dir.path(), opts.clone(), &|_| true).unwrap());
        let mut tasks = Vec::new();
        for k in 0..4i64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    let ts = k * 1000 + i;
                    s.append(9, cols(&[ts], &"y".repeat(100))).await.unwrap();
                    let seen = read_all(&s, 9).iter().filter(|e| e.0 == ts).count();
                    assert_eq!(seen, 1, "event {ts} after its acknowledgement");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(read_all(&store, 9).len(), 160);
        assert_eq!(store.stream_stats(9)[&1].events, 160);
        store.close();
        let reopened = LogStore::open(dir.path(), opts, &|_| true).unwrap();
        assert_eq!(read_all(&reopened, 9).len(), 160);
    }

    #[tokio::test]
    async fn ingest_waits_for_a_slow_checkpoint_beyond_the_backlog_limit() {
        use std::sync::{Condvar, Mutex as StdMutex};
        // the flusher blocks at its commit point until the gate opens
        let gate = Arc::new((StdMutex::new((false, false)), Condvar::new()));
        let g = gate.clone();
        let faults = Faults::new(move |point| {
            if point == "flush.commit" {
                let (m, cv) = &*g;
                let mut st = m.lock().unwrap();
                st.1 = true; // reached
                cv.notify_all();
                while !st.0 {
                    st = cv.wait(st).unwrap();
                }
            }
            false
        });
        // opens the gate however the test ends, so a failed assertion cannot leave the flusher
        // (and the store's shutdown) hanging
        struct Open(Arc<(StdMutex<(bool, bool)>, Condvar)>);
        impl Drop for Open {
            fn drop(&mut self) {
                let (m, cv) = &*self.0;
                m.lock().unwrap_or_else(|e| e.into_inner()).0 = true;
                cv.notify_all();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            checkpoint_wal_bytes: 4096,
            max_unflushed_wal_bytes: 16_384,
            faults,
            ..StoreOptions::default()
        };
        let store = Arc::new(LogStore::open(dir.path(), opts, &|_| true).unwrap());
        let opener = Open(gate.clone());
        let msg = "z".repeat(1000);
        // fill past the checkpoint size: a checkpoint starts and hangs at the gate
        let mut ts = 0i64;
        for _ in 0..5 {
            store.append(3, cols(&[ts], &msg)).await.unwrap();
            ts += 1;
        }
        {
            let (m, cv) = &*gate;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let mut st = m.lock().unwrap();
            while !st.1 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no checkpoint started"
                );
                st = cv
                    .wait_timeout(st, std::time::Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
        }
        // appends go on until the WAL holds the backlog limit, then wait for the checkpoint
        let mut accepted = 0;
        let mut blocked = false;
        for _ in 0..40 {
            let append = store.append(3, cols(&[ts], &msg));
            ts += 1;
            match tokio::time::timeout(std::time::Duration::from_secs(2), append).await {
                Ok(r) => {
                    r.unwrap();
                    accepted += 1;
                }
                Err(_) => {
                    blocked = true;
                    break;
                }
            }
        }
        assert!(
            blocked,
            "40 KB were taken while a checkpoint hung (limit 16 KB)"
        );
        assert!(
            (5..=17).contains(&accepted),
            "{accepted} appends of 1 KB taken before the limit of 16 KB"
        );
        // the checkpoint finishes: the waiting append (already queued) and new ones go through
        drop(opener);
        let late = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            store.append(3, cols(&[ts], &msg)),
        )
        .await
        .expect("ingest resumes once the checkpoint is done");
        late.unwrap();
        assert_eq!(read_all(&store, 3).len(), 5 + accepted + 2);
    }

    #[tokio::test]
    async fn wal_checkpoints_by_size_and_groups_can_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            checkpoint_wal_bytes: 4096,
            ..StoreOptions::default()
        };
        let store = LogStore::open(dir.path(), opts.clone(), &|_| true).unwrap();
        for i in 0..20 {
            store
                .append(7, cols(&[i * 1000], &"x".repeat(500)))
                .await
                .unwrap();
        }
        store.append(8, cols(&[5], "other")).await.unwrap();
        // the first size-triggered freeze is certain (nothing in flight yet); the explicit
        // checkpoint queues behind it, so afterwards both segments exist and old WALs are gone
        store.checkpoint().await.unwrap();
        let segs = seg_count(&dir.path().join("g7"));
        assert!(
            segs >= 2,
            "a size-triggered and the explicit checkpoint wrote segments ({segs})"
        );
        let wal_bytes: u64 = writer::wal_numbers(dir.path())
            .unwrap()
            .iter()
            .map(|n| {
                fs::metadata(writer::wal_path(dir.path(), *n))
                    .unwrap()
                    .len()
            })
            .sum();
        assert!(
            wal_bytes < 2 * 4096 + 1024,
            "old wal files are removed ({wal_bytes})"
        );
        assert_eq!(read_all(&store, 7).len(), 20);
        store.drop_group(7).await.unwrap();
        assert!(!dir.path().join("g7").exists());
        assert!(read_all(&store, 7).is_empty());
        store.expire(8, PARTITION_MS - 1).await.unwrap();
        assert_eq!(
            read_all(&store, 8).len(),
            1,
            "a partition ending after the cutoff stays"
        );
        store.expire(8, PARTITION_MS).await.unwrap();
        assert!(
            read_all(&store, 8).is_empty(),
            "a partition ending at the cutoff is expired"
        );
        store.close();
        let reopened = LogStore::open(dir.path(), opts, &|g| g != 7).unwrap();
        assert!(read_all(&reopened, 7).is_empty());
    }

    #[tokio::test]
    async fn heads_keep_large_batches_as_chunks_and_gather_small_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), StoreOptions::default(), &|_| true).unwrap();
        let big = "b".repeat(CHUNK_SMALL_BYTES);
        // two large batches, then small ones gathered onto the last chunk, then a batch that
        // crosses an hour boundary (split between the two partitions' heads)
        store.append(3, cols(&[1, 2], &big)).await.unwrap();
        store.append(3, cols(&[3], &big)).await.unwrap();
        for t in 4..10 {
            store.append(3, cols(&[t], "small")).await.unwrap();
        }
        let snap = store.snapshot(3, 0, i64::MAX);
        assert_eq!(snap.len(), 1);
        let chunks: Vec<usize> = snap[0].memory_blocks().map(Columns::len).collect();
        assert_eq!(
            chunks,
            vec![2, 7],
            "a chunk per large batch, small ones gathered"
        );
        store
            .append(3, cols(&[PARTITION_MS - 1, PARTITION_MS], "edge"))
            .await
            .unwrap();
        let snap = store.snapshot(3, 0, i64::MAX);
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].memory_blocks().map(Columns::len).sum::<usize>(), 10);
        assert_eq!(snap[1].memory_blocks().map(Columns::len).sum::<usize>(), 1);
        assert_eq!(store.stored_bytes(3), 3 * big.len() as u64 + 6 * 5 + 2 * 4);
        // the checkpoint joins each partition's chunks into one segment
        store.checkpoint().await.unwrap();
        assert_eq!(store.segment_count(3), 2);
        let got = read_all(&store, 3);
        assert_eq!(got.len(), 11);
        assert_eq!(got.iter().filter(|e| e.2 == big).count(), 3);
        assert_eq!(store.stream_stats(3)[&1].events, 11);
        store.close();
        let reopened = LogStore::open(dir.path(), StoreOptions::default(), &|_| true).unwrap();
        assert_eq!(read_all(&reopened, 3), got);
    }

    fn seg_count(dir: &Path) -> usize {
        let Ok(rd) = fs::read_dir(dir) else { return 0 };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    seg_count(&p)
                } else {
                    usize::from(p.extension().is_some_and(|x| x == "seg"))
                }
            })
            .sum()
    }
}
