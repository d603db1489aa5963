//! Moving data out of the head and maintaining the store: checkpoints (freeze the head, write it
//! as raw chunk files per window, commit the manifest, truncate the WAL), wipe, and the background
//! flush and compaction threads.

use std::fs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{remove_if_exists, Frozen, Inner, SNAPSHOT_REFRESH};
use crate::compact;
use crate::datafile::{DataFile, FileMeta, FileWriter, Tier};
use crate::head::Head;
use crate::manifest::{sync_dir, write_atomic, Manifest};
use crate::series::SeriesIndex;
use crate::wal::{self, WalItem};
use crate::TsdbError;

impl Inner {
    pub(super) fn should_flush(&self) -> bool {
        if self.head_points.load(Ordering::Relaxed) >= self.opts.flush_points
            || self.wal_since_checkpoint.load(Ordering::Relaxed) >= self.opts.flush_wal_bytes
        {
            return true;
        }
        let h = self.heads.read();
        h.frozen.is_some()
            || h.active_since
                .is_some_and(|t| t.elapsed() >= self.opts.flush_interval)
    }

    /// Freezes the head, writes it out, commits the manifest and truncates the WAL.
    pub(crate) fn checkpoint(&self, force_snapshot: bool) -> Result<bool, TsdbError> {
        let _f = self.flush_lock.lock();
        let (frozen, rotated) = {
            let mut h = self.heads.write();
            match &h.frozen {
                Some(f) => (f.clone(), None),
                None => {
                    if h.active.is_empty() {
                        return Ok(false);
                    }
                    let head = std::mem::take(&mut h.active);
                    let seq = h.wal_seq;
                    h.wal_seq += 1;
                    let (tx, rx) = std::sync::mpsc::channel();
                    self.wal.push(WalItem::Rotate {
                        seq: h.wal_seq,
                        done: tx,
                    });
                    let f = Arc::new(Frozen { head, seq });
                    h.frozen = Some(f.clone());
                    h.active_since = None;
                    self.head_points.fetch_sub(
                        f.head.points.min(self.head_points.load(Ordering::Relaxed)),
                        Ordering::Relaxed,
                    );
                    self.wal_since_checkpoint.store(0, Ordering::Relaxed);
                    {
                        let _g = self.space.lock();
                        self.space_cv.notify_all();
                    }
                    (f, Some(rx))
                }
            }
        };
        if let Some(rx) = rotated {
            rx.recv().map_err(|_| TsdbError::Closed)??;
        }
        let t0 = Instant::now();
        let metas = self.write_head(&frozen.head)?;
        // A new series snapshot is needed when series were created since the last one (their
        // definitions are in the segments about to go); otherwise only metadata (last write and
        // timestamp) moved, and refreshing it at most once a minute (and at close) is enough.
        let snapshot = {
            let idx = self.index.read();
            let mut last = self.last_snapshot.lock();
            let due = force_snapshot || idx.len() != last.0 || last.1.elapsed() >= SNAPSHOT_REFRESH;
            if due {
                *last = (idx.len(), Instant::now());
            }
            due.then(|| idx.encode_snapshot())
        };
        let mut man = self.manifest.lock();
        let gen = if snapshot.is_some() {
            man.series_gen + 1
        } else {
            man.series_gen
        };
        if let Some(snapshot) = &snapshot {
            if let Err(e) = write_atomic(&self.dir, &SeriesIndex::file_name(gen), snapshot) {
                for m in &metas {
                    remove_if_exists(&self.data_dir.join(FileMeta::file_name(m.id)));
                }
                self.last_snapshot.lock().0 = usize::MAX;
                return Err(e);
            }
        }
        let mut next = man.clone();
        next.series_gen = gen;
        next.wal_checkpoint = frozen.seq;
        next.files.extend(metas.iter().cloned());
        if let Err(e) = next.store(&self.dir) {
            // Not committed: the new files and snapshot are orphans; the frozen head stays and
            // the next attempt writes it again.
            if snapshot.is_some() {
                remove_if_exists(&self.dir.join(SeriesIndex::file_name(gen)));
                self.last_snapshot.lock().0 = usize::MAX;
            }
            for m in &metas {
                remove_if_exists(&self.data_dir.join(FileMeta::file_name(m.id)));
            }
            return Err(e);
        }
        let old_gen = man.series_gen;
        *man = next;
        {
            let mut h = self.heads.write();
            let mut files = self.files.write();
            let mut v: Vec<Arc<DataFile>> = files.iter().cloned().collect();
            v.extend(
                metas
                    .iter()
                    .map(|m| Arc::new(DataFile::new(&self.data_dir, m.clone()))),
            );
            *files = Arc::new(v);
            h.frozen = None;
        }
        drop(man);
        if old_gen > 0 && old_gen != gen {
            remove_if_exists(&self.dir.join(SeriesIndex::file_name(old_gen)));
        }
        let mut wal_left = 0u64;
        for (seq, path) in wal::list_segments(&self.wal_dir)? {
            if seq <= frozen.seq {
                remove_if_exists(&path);
            } else {
                wal_left += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            }
        }
        self.wal.bytes.store(wal_left, Ordering::Relaxed);
        tracing::debug!(
            points = frozen.head.points,
            files = metas.len(),
            wal_seq = frozen.seq,
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "checkpoint written"
        );
        {
            let mut g = self.bg.lock();
            g.compact_wanted = true;
        }
        self.bg_cv.notify_all();
        Ok(true)
    }

    /// Writes a head as raw chunk files, one per 2-hour window it touches.
    pub(super) fn write_head(&self, head: &Head) -> Result<Vec<FileMeta>, TsdbError> {
        let hr = self.index.read().hr_flags();
        let mut writers: std::collections::BTreeMap<i64, (FileWriter, u32)> =
            std::collections::BTreeMap::new();
        let result = (|| -> Result<(), TsdbError> {
            let mut cb = crate::gorilla::ChunkBuilder::new();
            for sid in head.sids() {
                let pts = head.series[&sid].sorted_points();
                let mut i = 0;
                while i < pts.len() {
                    let w = Tier::Raw.window_of(pts[i].ts_ms);
                    let j = i + pts[i..].partition_point(|p| Tier::Raw.window_of(p.ts_ms) == w);
                    let (fw, n_hr) = match writers.entry(w) {
                        std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::btree_map::Entry::Vacant(v) => {
                            let id = self.alloc_file_id();
                            v.insert((FileWriter::create(&self.data_dir, id, Tier::Raw, 0, w)?, 0))
                        }
                    };
                    fw.begin_chunk();
                    for p in &pts[i..j] {
                        cb.push(*p);
                        if cb.payload.len() >= 1 << 20 {
                            fw.write_payload(&cb.payload)?;
                            cb.payload.clear();
                        }
                    }
                    let done = cb.finish();
                    fw.write_payload(&cb.payload)?;
                    cb.payload.clear();
                    fw.end_raw_chunk(sid, &done)?;
                    *n_hr += hr.get(sid as usize).copied().unwrap_or(false) as u32;
                    i = j;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            for (_, (w, _)) in writers {
                w.abort();
            }
            return Err(e);
        }
        let mut metas = Vec::with_capacity(writers.len());
        let mut iter = writers.into_iter();
        while let Some((_, (w, n_hr))) = iter.next() {
            match w.finish(n_hr) {
                Ok(Some(m)) => metas.push(m),
                Ok(None) => {}
                Err(e) => {
                    for (_, (w, _)) in iter {
                        w.abort();
                    }
                    for m in &metas {
                        remove_if_exists(&self.data_dir.join(FileMeta::file_name(m.id)));
                    }
                    return Err(e.into());
                }
            }
        }
        sync_dir(&self.data_dir)?;
        Ok(metas)
    }

    pub(super) fn wipe(&self) -> Result<(), TsdbError> {
        let _m = self.maint.write();
        let _f = self.flush_lock.lock();
        let mut h = self.heads.write();
        if h.closed {
            return Err(TsdbError::Closed);
        }
        // Everything queued so far goes to segments <= seq.
        let seq = h.wal_seq;
        h.wal_seq += 1;
        let (tx, rx) = std::sync::mpsc::channel();
        self.wal.push(WalItem::Rotate {
            seq: h.wal_seq,
            done: tx,
        });
        rx.recv().map_err(|_| TsdbError::Closed)??;
        let mut idx = self.index.write();
        let mut man = self.manifest.lock();
        let mut empty = SeriesIndex::default();
        empty.epoch = idx.epoch + 1;
        let gen = man.series_gen + 1;
        write_atomic(
            &self.dir,
            &SeriesIndex::file_name(gen),
            &empty.encode_snapshot(),
        )?;
        let next = Manifest {
            next_file_id: man.next_file_id,
            wal_checkpoint: seq,
            series_gen: gen,
            files: Vec::new(),
        };
        next.store(&self.dir)?;
        let old_gen = man.series_gen;
        *man = next;
        *self.last_snapshot.lock() = (0, Instant::now());
        h.epoch = empty.epoch;
        *idx = empty;
        h.active = Head::default();
        h.frozen = None;
        h.active_since = None;
        let old = std::mem::replace(&mut *self.files.write(), Arc::new(Vec::new()));
        self.head_points.store(0, Ordering::Relaxed);
        self.wal_since_checkpoint.store(0, Ordering::Relaxed);
        drop(man);
        drop(idx);
        drop(h);
        for f in old.iter() {
            f.mark_obsolete();
        }
        drop(old);
        if old_gen > 0 {
            remove_if_exists(&self.dir.join(SeriesIndex::file_name(old_gen)));
        }
        for (s, path) in wal::list_segments(&self.wal_dir)? {
            if s <= seq {
                remove_if_exists(&path);
            }
        }
        tracing::info!(dir = %self.dir.display(), "tsdb wiped");
        Ok(())
    }
}

pub(super) fn flusher_loop(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        {
            let mut g = inner.bg.lock();
            if !g.stop && !g.flush_wanted {
                inner.bg_cv.wait_for(&mut g, Duration::from_millis(500));
            }
            if g.stop {
                return;
            }
            g.flush_wanted = false;
        }
        if !inner.should_flush() {
            continue;
        }
        let r = {
            let _m = inner.maint.read();
            inner.checkpoint(false)
        };
        match r {
            Ok(_) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; will retry");
                let mut g = inner.bg.lock();
                if !g.stop {
                    inner.bg_cv.wait_for(&mut g, backoff);
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

pub(super) fn compactor_loop(inner: Arc<Inner>) {
    loop {
        {
            let mut g = inner.bg.lock();
            if !g.stop && !g.compact_wanted {
                inner.bg_cv.wait_for(&mut g, inner.opts.compaction_interval);
            }
            if g.stop {
                return;
            }
            g.compact_wanted = false;
        }
        let stop = || inner.bg.lock().stop;
        let _m = inner.maint.read();
        if let Err(e) = compact::run(&inner, inner.opts.now(), &stop) {
            tracing::error!(error = %e, "compaction failed; will retry");
        }
    }
}
