//! [`Tsdb`]: the embedded [`MetricStore`]. Owns the directory layout, the write path (intern,
//! encode, append to the head, queue to the WAL writer), queries, checkpoints, wipe and close, and
//! the background threads.
//!
//! Directory: `MANIFEST`, `series-<gen>.idx`, `wal/<seq>.log`, `data/<id>.tsd`.
//!
//! Invariants:
//! * WAL records are queued in the same critical section (the head lock) that applies them to the
//!   head, so a checkpoint that freezes the head and rotates the WAL under that lock gets a head
//!   holding exactly the records of the segments up to the rotation.
//! * A series' definition record is queued (under the head lock) before the first record using its
//!   id, by whichever writer gets there first.
//! * A query sees the active head, the frozen head and the file set under one head read lock; a
//!   checkpoint installs its files and drops the frozen head under the head write lock, so no point
//!   is seen twice or missed.
//! * Points are visible to queries once accepted, slightly before they are durable; `write`
//!   resolves only once they are durable.

mod maintenance;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opsloop_core::BoxFuture;
use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

use crate::agg::Buckets;
use crate::compact::{self, CompactionReport};
use crate::datafile::{DataFile, FileMeta, Tier};
use crate::head::Head;
use crate::manifest::{Manifest, MANIFEST};
use crate::options::TsdbOptions;
use crate::series::{SeriesIndex, SeriesMeta};
use crate::wal::{self, WalItem, WalQueue, WalRecord};
use crate::{
    query, Bucket, MetricStore, SeriesFilter, SeriesInfo, SeriesKey, SeriesWrite, StoreStats,
    TsdbError,
};

/// Longest a write waits for head space (see `TsdbOptions::max_head_points`).
const HEAD_SPACE_WAIT: Duration = Duration::from_secs(5);

/// Longest a checkpoint reuses the previous series snapshot when no series were created.
const SNAPSHOT_REFRESH: Duration = Duration::from_secs(60);

/// A frozen head being written out, with the last WAL segment it covers.
pub(crate) struct Frozen {
    head: Head,
    seq: u64,
}

pub(crate) struct HeadState {
    active: Head,
    frozen: Option<Arc<Frozen>>,
    /// Segment new records go to.
    wal_seq: u64,
    epoch: u64,
    closed: bool,
    active_since: Option<Instant>,
}

#[derive(Default)]
struct BgState {
    stop: bool,
    flush_wanted: bool,
    compact_wanted: bool,
}

pub(crate) struct Inner {
    pub(crate) opts: TsdbOptions,
    pub(crate) dir: PathBuf,
    pub(crate) data_dir: PathBuf,
    wal_dir: PathBuf,
    pub(crate) index: RwLock<SeriesIndex>,
    heads: RwLock<HeadState>,
    pub(crate) files: RwLock<Arc<Vec<Arc<DataFile>>>>,
    /// The committed manifest (its file list mirrors `files`); also allocates file ids.
    pub(crate) manifest: Mutex<Manifest>,
    /// Background steps and explicit maintenance hold it shared; wipe holds it exclusively.
    maint: RwLock<()>,
    flush_lock: Mutex<()>,
    pub(crate) compact_lock: Mutex<()>,
    wal: Arc<WalQueue>,
    closed: AtomicBool,
    bg: Mutex<BgState>,
    bg_cv: Condvar,
    wal_since_checkpoint: AtomicU64,
    head_points: AtomicU64,
    /// Series count and time of the last series snapshot.
    last_snapshot: Mutex<(usize, Instant)>,
    /// Writers waiting for head space park here; checkpoints notify.
    space: Mutex<()>,
    space_cv: Condvar,
}

/// The embedded metric store. See the crate documentation and `DESIGN.md`.
pub struct Tsdb {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
    background: Mutex<Vec<JoinHandle<()>>>,
}

/// Detailed sizes, beyond [`StoreStats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TsdbStats {
    pub series: u64,
    /// Points in the in-memory head (not yet in data files).
    pub head_points: u64,
    /// Raw points in data files.
    pub raw_points: u64,
    /// Roll-up records in data files.
    pub rollup_records: u64,
    /// Data files per tier: raw, 60 s, 5 min, 1 h.
    pub files_per_tier: [usize; 4],
    pub data_bytes: u64,
    pub wal_bytes: u64,
    pub index_bytes: u64,
}

fn remove_if_exists(p: &Path) {
    if let Err(e) = fs::remove_file(p) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %p.display(), error = %e, "cannot delete file");
        }
    }
}

impl Tsdb {
    /// Opens (or creates) the store in `dir`: reads the manifest and series snapshot, replays the
    /// WAL tail into the head, and starts the WAL writer (and, if enabled, background threads).
    pub fn open(dir: &Path, options: TsdbOptions) -> Result<Arc<Tsdb>, TsdbError> {
        let t0 = Instant::now();
        let data_dir = dir.join("data");
        let wal_dir = dir.join("wal");
        fs::create_dir_all(&data_dir)?;
        fs::create_dir_all(&wal_dir)?;
        let _ = fs::remove_file(dir.join(format!("{MANIFEST}.tmp")));
        let man = Manifest::load(dir)?.unwrap_or_default();
        let mut index = if man.series_gen > 0 {
            SeriesIndex::decode_snapshot(&fs::read(
                dir.join(SeriesIndex::file_name(man.series_gen)),
            )?)?
        } else {
            SeriesIndex::default()
        };
        // Files from interrupted checkpoints/compactions and superseded snapshots.
        let live: std::collections::HashSet<String> = man
            .files
            .iter()
            .map(|m| FileMeta::file_name(m.id))
            .collect();
        for e in fs::read_dir(&data_dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                tracing::info!(file = %name, "removing orphan data file");
                remove_if_exists(&e.path());
            }
        }
        let series_name = SeriesIndex::file_name(man.series_gen);
        for e in fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("series-") && name != series_name {
                remove_if_exists(&e.path());
            }
        }
        let files: Vec<Arc<DataFile>> = man
            .files
            .iter()
            .map(|m| Arc::new(DataFile::new(&data_dir, m.clone())))
            .collect();
        // WAL replay.
        let mut head = Head::default();
        let mut last_seq = man.wal_checkpoint;
        let mut replayed = 0u64;
        let mut wal_bytes = 0u64;
        for (seq, path) in wal::list_segments(&wal_dir)? {
            if seq <= man.wal_checkpoint {
                remove_if_exists(&path);
                continue;
            }
            let r = wal::replay_segment(&path, seq, |payload| {
                apply_record(payload, &mut index, &mut head)
            })?;
            replayed += r.records;
            wal_bytes += r.bytes;
            last_seq = last_seq.max(seq);
        }
        let wal_seq = last_seq + 1;
        let queue = WalQueue::new();
        queue.bytes.store(wal_bytes, Ordering::Relaxed);
        let head_points = head.points;
        let active_since = (!head.is_empty()).then(Instant::now);
        let epoch = index.epoch;
        let inner = Arc::new(Inner {
            opts: options.clone(),
            dir: dir.to_path_buf(),
            data_dir,
            wal_dir: wal_dir.clone(),
            index: RwLock::new(index),
            heads: RwLock::new(HeadState {
                active: head,
                frozen: None,
                wal_seq,
                epoch,
                closed: false,
                active_since,
            }),
            files: RwLock::new(Arc::new(files)),
            manifest: Mutex::new(man),
            maint: RwLock::new(()),
            flush_lock: Mutex::new(()),
            compact_lock: Mutex::new(()),
            wal: queue.clone(),
            closed: AtomicBool::new(false),
            bg: Mutex::new(BgState::default()),
            bg_cv: Condvar::new(),
            wal_since_checkpoint: AtomicU64::new(wal_bytes),
            head_points: AtomicU64::new(head_points),
            last_snapshot: Mutex::new((usize::MAX, Instant::now())),
            space: Mutex::new(()),
            space_cv: Condvar::new(),
        });
        let writer = std::thread::Builder::new()
            .name("tsdb-wal".into())
            .spawn(move || wal::writer_loop(queue, wal_dir, wal_seq))?;
        let mut background = Vec::new();
        if options.background {
            let i = inner.clone();
            background.push(
                std::thread::Builder::new()
                    .name("tsdb-flush".into())
                    .spawn(move || maintenance::flusher_loop(i))?,
            );
            let i = inner.clone();
            background.push(
                std::thread::Builder::new()
                    .name("tsdb-compact".into())
                    .spawn(move || maintenance::compactor_loop(i))?,
            );
        }
        tracing::info!(
            dir = %dir.display(),
            elapsed_us = t0.elapsed().as_micros() as u64,
            series = inner.index.read().len(),
            files = inner.files.read().len(),
            wal_records = replayed,
            head_points,
            "tsdb opened"
        );
        Ok(Arc::new(Tsdb {
            inner,
            writer: Mutex::new(Some(writer)),
            background: Mutex::new(background),
        }))
    }

    /// Writes the head out as chunk files and truncates the WAL. Returns whether there was
    /// anything to write.
    pub fn checkpoint(&self) -> Result<bool, TsdbError> {
        let _m = self.inner.maint.read();
        self.inner.checkpoint(true)
    }

    /// Runs merges, roll-ups and retention now, judged at the clock's current time.
    pub fn compact_now(&self) -> Result<CompactionReport, TsdbError> {
        let _m = self.inner.maint.read();
        compact::run(&self.inner, self.inner.opts.now(), &|| false)
    }

    /// Like [`MetricStore::write`], blocking the calling thread until durable. Must not be called
    /// from within an async runtime's worker thread.
    pub fn write_blocking(&self, batch: Vec<SeriesWrite>) -> Result<(), TsdbError> {
        match self.inner.submit(&batch)? {
            None => Ok(()),
            Some(rx) => rx.blocking_recv().unwrap_or(Err(TsdbError::Closed)),
        }
    }

    pub fn detailed_stats(&self) -> TsdbStats {
        self.inner.detailed_stats()
    }

    fn stop_background(&self) {
        {
            let mut g = self.inner.bg.lock();
            g.stop = true;
        }
        self.inner.bg_cv.notify_all();
        for h in self.background.lock().drain(..) {
            let _ = h.join();
        }
    }

    fn stop_writer(&self) {
        if let Some(h) = self.writer.lock().take() {
            self.inner.wal.push(WalItem::Stop);
            let _ = h.join();
        }
    }

    /// Marks the store closed for writers. False if it already was.
    fn mark_closed(&self) -> bool {
        let mut h = self.inner.heads.write();
        if h.closed {
            return false;
        }
        h.closed = true;
        self.inner.closed.store(true, Ordering::Release);
        drop(h);
        let _g = self.inner.space.lock();
        self.inner.space_cv.notify_all();
        true
    }
}

impl Drop for Tsdb {
    /// Without `close`, stops threads without a checkpoint: the WAL holds every acknowledged
    /// point and the next open replays it.
    fn drop(&mut self) {
        self.mark_closed();
        self.stop_background();
        self.stop_writer();
    }
}

fn apply_record(payload: &[u8], index: &mut SeriesIndex, head: &mut Head) -> Result<(), TsdbError> {
    match wal::decode_record(payload)? {
        WalRecord::Def { sid, hr, key } => {
            index.define(sid, key, hr, i64::MIN, i64::MIN)?;
        }
        WalRecord::Batch(b) => {
            let wall = b.wall_ms;
            b.for_each(|sid, hr, pts| {
                let m = index.get(sid).ok_or_else(|| {
                    TsdbError::Corrupt(format!("wal batch uses undefined series id {sid}"))
                })?;
                m.note_write(
                    hr,
                    pts.iter().map(|p| p.ts_ms).max().unwrap_or(i64::MIN),
                    wall,
                );
                head.push(sid, pts);
                Ok(())
            })?;
        }
    }
    Ok(())
}

impl Inner {
    pub(crate) fn alloc_file_id(&self) -> u64 {
        let mut m = self.manifest.lock();
        let id = m.next_file_id;
        m.next_file_id += 1;
        id
    }

    /// Backpressure: while the head is over `max_head_points` (checkpoints falling behind), wait
    /// for a checkpoint to take it, at most [`HEAD_SPACE_WAIT`].
    fn wait_for_head_space(&self) {
        if !self.opts.background
            || self.head_points.load(Ordering::Relaxed) <= self.opts.max_head_points
        {
            return;
        }
        let deadline = Instant::now() + HEAD_SPACE_WAIT;
        let mut g = self.space.lock();
        while self.head_points.load(Ordering::Relaxed) > self.opts.max_head_points
            && !self.closed.load(Ordering::Acquire)
        {
            {
                let mut b = self.bg.lock();
                b.flush_wanted = true;
            }
            self.bg_cv.notify_all();
            if self.space_cv.wait_until(&mut g, deadline).timed_out() {
                tracing::warn!(
                    head_points = self.head_points.load(Ordering::Relaxed),
                    "head over its limit and no checkpoint freed it; accepting the write anyway"
                );
                return;
            }
        }
    }

    fn resolve(&self, batch: &[SeriesWrite]) -> (u64, Vec<Arc<SeriesMeta>>) {
        {
            let idx = self.index.read();
            let found: Vec<Arc<SeriesMeta>> = batch
                .iter()
                .map_while(|sw| idx.lookup(&sw.key).cloned())
                .collect();
            if found.len() == batch.len() {
                return (idx.epoch, found);
            }
        }
        let mut idx = self.index.write();
        let metas = batch.iter().map(|sw| idx.intern(&sw.key)).collect();
        (idx.epoch, metas)
    }

    /// Accepts a batch: queues it to the WAL and applies it to the head. The receiver resolves
    /// once the batch is durable.
    pub(crate) fn submit(
        &self,
        batch: &[SeriesWrite],
    ) -> Result<Option<oneshot::Receiver<Result<(), TsdbError>>>, TsdbError> {
        if batch.is_empty() {
            return Ok(None);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(TsdbError::Closed);
        }
        if self.wal.failed.load(Ordering::Acquire) {
            return Err(TsdbError::Io(std::io::Error::other(
                "write-ahead log failed; reopen the store",
            )));
        }
        self.wait_for_head_space();
        let wall = self.opts.now();
        let n_points: usize = batch.iter().map(|sw| sw.points.len()).sum();
        loop {
            let (epoch, metas) = self.resolve(batch);
            let mut rec = Vec::with_capacity(32 + batch.len() * 8 + n_points * 12);
            let start = wal::begin_batch(&mut rec, wall, batch.len());
            for (sw, m) in batch.iter().zip(&metas) {
                wal::encode_series_points(&mut rec, m.sid, sw.high_resolution, &sw.points);
            }
            wal::end_record(&mut rec, start);
            let rec_len = rec.len() as u64;
            if rec_len > wal::MAX_RECORD as u64 {
                return Err(TsdbError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "batch too large for one write-ahead log record; split it",
                )));
            }
            let (tx, rx) = oneshot::channel();
            {
                let mut h = self.heads.write();
                if h.closed {
                    return Err(TsdbError::Closed);
                }
                if h.epoch != epoch {
                    continue;
                }
                let mut defs = Vec::new();
                for (sw, m) in batch.iter().zip(&metas) {
                    if !m.logged.load(Ordering::Acquire) && !m.logged.swap(true, Ordering::AcqRel) {
                        wal::encode_def(&mut defs, m.sid, sw.high_resolution, m.key_bytes());
                    }
                }
                if !defs.is_empty() {
                    self.wal.push(WalItem::Record {
                        bytes: defs,
                        ack: None,
                    });
                }
                for (sw, m) in batch.iter().zip(&metas) {
                    h.active.push(m.sid, &sw.points);
                    m.note_write(
                        sw.high_resolution,
                        sw.points.iter().map(|p| p.ts_ms).max().unwrap_or(i64::MIN),
                        wall,
                    );
                }
                if h.active_since.is_none() {
                    h.active_since = Some(Instant::now());
                }
                self.wal.push(WalItem::Record {
                    bytes: rec,
                    ack: Some(tx),
                });
            }
            let pts = self
                .head_points
                .fetch_add(n_points as u64, Ordering::Relaxed)
                + n_points as u64;
            let wal = self
                .wal_since_checkpoint
                .fetch_add(rec_len, Ordering::Relaxed)
                + rec_len;
            if pts >= self.opts.flush_points || wal >= self.opts.flush_wal_bytes {
                let mut g = self.bg.lock();
                if !g.flush_wanted {
                    g.flush_wanted = true;
                    self.bg_cv.notify_all();
                }
            }
            return Ok(Some(rx));
        }
    }

    fn aggregate(
        &self,
        key: &SeriesKey,
        start: i64,
        end: i64,
        period: i64,
        with_values: bool,
    ) -> Result<Vec<Bucket>, TsdbError> {
        if period <= 0 || end <= start {
            return Ok(Vec::new());
        }
        let (sid, epoch) = {
            let idx = self.index.read();
            match idx.lookup(key) {
                Some(m) => (m.sid, idx.epoch),
                None => return Ok(Vec::new()),
            }
        };
        let mut b = Buckets::new(start, end, period, with_values);
        let files = {
            let h = self.heads.read();
            if h.epoch != epoch {
                return Ok(Vec::new());
            }
            if let Some(s) = h.active.series.get(&sid) {
                s.aggregate_into(&mut b);
            }
            if let Some(f) = &h.frozen {
                if let Some(s) = f.head.series.get(&sid) {
                    s.aggregate_into(&mut b);
                }
            }
            self.files.read().clone()
        };
        for f in files.iter() {
            query::aggregate_file(f, sid, &mut b)?;
        }
        Ok(b.finish())
    }

    fn detailed_stats(&self) -> TsdbStats {
        let mut s = TsdbStats {
            series: self.index.read().len() as u64,
            ..Default::default()
        };
        let files = {
            let h = self.heads.read();
            s.head_points = h.active.points + h.frozen.as_ref().map_or(0, |f| f.head.points);
            self.files.read().clone()
        };
        for f in files.iter() {
            if f.meta.tier == Tier::Raw {
                s.raw_points += f.meta.n_points;
            } else {
                s.rollup_records += f.meta.n_points;
            }
            s.files_per_tier[f.meta.tier as usize] += 1;
            s.data_bytes += f.meta.bytes;
        }
        if let Ok(segs) = wal::list_segments(&self.wal_dir) {
            s.wal_bytes = segs
                .iter()
                .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                .sum();
        }
        let gen = self.manifest.lock().series_gen;
        for name in [MANIFEST.to_string(), SeriesIndex::file_name(gen)] {
            s.index_bytes += fs::metadata(self.dir.join(name))
                .map(|m| m.len())
                .unwrap_or(0);
        }
        s
    }
}

impl MetricStore for Tsdb {
    fn write(&self, batch: Vec<SeriesWrite>) -> BoxFuture<'static, Result<(), TsdbError>> {
        match self.inner.submit(&batch) {
            Err(e) => Box::pin(async move { Err(e) }),
            Ok(None) => Box::pin(async { Ok(()) }),
            Ok(Some(rx)) => Box::pin(async move { rx.await.unwrap_or(Err(TsdbError::Closed)) }),
        }
    }

    fn aggregate(
        &self,
        key: &SeriesKey,
        start_ms: i64,
        end_ms: i64,
        period_ms: i64,
        with_values: bool,
    ) -> Result<Vec<Bucket>, TsdbError> {
        self.inner
            .aggregate(key, start_ms, end_ms, period_ms, with_values)
    }

    fn list_series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>, TsdbError> {
        Ok(self.inner.index.read().list(filter))
    }

    fn stats(&self) -> StoreStats {
        let d = self.inner.detailed_stats();
        StoreStats {
            series: d.series,
            points: d.head_points + d.raw_points + d.rollup_records,
            bytes_on_disk: d.data_bytes + d.wal_bytes + d.index_bytes,
        }
    }

    fn wipe(&self) -> Result<(), TsdbError> {
        self.inner.wipe()
    }

    fn close(&self) -> Result<(), TsdbError> {
        if !self.mark_closed() {
            return Ok(());
        }
        self.stop_background();
        let r = {
            let _m = self.inner.maint.read();
            self.inner.checkpoint(true).map(|_| ())
        };
        self.stop_writer();
        r
    }
}
