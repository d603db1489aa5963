//! The two threads behind a [`LogStore`](super::LogStore).
//!
//! The writer owns every mutation: it drains queued appends, assigns sequence numbers and writes
//! them to the current WAL file, then hands them to its sync thread, which makes everything written
//! so far durable with one fdatasync (group commit), applies it to the heads and answers — while
//! the writer already writes the next group. So an append is visible and acknowledged only once
//! durable, and the disk's sync latency overlaps encoding and writing. Before anything that
//! must see every earlier append applied (drop, expire, a checkpoint, shutdown) the writer waits
//! for the sync thread to drain. At a checkpoint it rotates to a new WAL file and *freezes* the
//! heads (they stay readable), handing them to the flusher, so ingest never waits for compression.
//!
//! The flusher turns frozen heads into segment files in two phases so a crash at any point neither
//! loses nor duplicates events: it writes every segment of the freeze as a fsynced
//! `N.wW.pending` file, then commits by atomically replacing `stats.json` (stream statistics, the
//! next sequence number and `wal_upto = W` as of the freeze), then renames the pending files to
//! `N.seg`, registers them and removes the WAL files up to `W`. Recovery promotes pending files of
//! committed freezes (`W <= wal_upto`), deletes the others, and replays only WAL files after
//! `wal_upto`. A freeze whose segments could not be written is carried into the next one (its WAL
//! files are kept until a later commit covers them). After each flush the compactor is nudged.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

use super::columns::Columns;
use super::segment::{self, Segment};
use super::wal::Wal;
use super::{
    apply, concat, Chunks, Inner, Msg, Reply, StatsFile, StorageError, StoreOptions, PARTITION_MS,
};

pub(super) fn wal_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("wal-{n:08}.log"))
}

/// Numbers of the WAL files in `dir`.
pub(super) fn wal_numbers(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("wal-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
        {
            out.push(n);
        }
    }
    Ok(out)
}

/// One frozen head: group id, partition hour, segment number, events (the head's chunks, joined
/// by the flusher).
type FrozenPart = (u64, i64, u32, Arc<Chunks>);

/// Frozen heads to write out, and what becomes redundant once they are.
pub(super) struct FlushJob {
    parts: Vec<FrozenPart>,
    stats: StatsFile,
    wal_upto: u64,
    reply: Option<Reply>,
}

/// How many checkpoints the flusher has yet to finish, and a way to wait until it has none.
#[derive(Default)]
pub(super) struct Flights {
    n: Mutex<usize>,
    idle: Condvar,
}

impl Flights {
    fn count(&self) -> std::sync::MutexGuard<'_, usize> {
        self.n.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn start(&self) {
        *self.count() += 1;
    }
    fn finish(&self) {
        let mut n = self.count();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }
    fn busy(&self) -> bool {
        *self.count() > 0
    }
    /// Block until no checkpoint is in flight.
    fn wait_idle(&self) {
        let mut n = self.count();
        while *n > 0 {
            n = self.idle.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
}

pub(super) struct Writer {
    pub(super) inner: Arc<Inner>,
    pub(super) wal: Wal,
    pub(super) wal_no: u64,
    pub(super) next_seq: u64,
    pub(super) options: StoreOptions,
    pub(super) flush_tx: Option<mpsc::Sender<FlushJob>>,
    pub(super) in_flight: Arc<Flights>,
}

/// Work for the sync thread, in WAL order.
enum SyncJob {
    /// Appends written (or not: `written` is the error) to `file`: sync, apply, answer.
    Commit {
        file: Arc<fs::File>,
        appends: Vec<(u64, Columns, Reply)>,
        written: Result<(), String>,
    },
    /// Answered once every earlier job is done.
    Barrier(mpsc::Sender<()>),
}

/// The sync thread: one fdatasync per file for everything queued, then apply and answer in order.
fn run_syncer(inner: &Inner, rx: mpsc::Receiver<SyncJob>) {
    let mut replies = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        // jobs of one drain share a file except across a rotation (preceded by a barrier)
        let mut synced: Vec<(Arc<fs::File>, Result<(), String>)> = Vec::new();
        for job in &jobs {
            if let SyncJob::Commit {
                file,
                written: Ok(()),
                ..
            } = job
            {
                if !synced.iter().any(|(f, _)| Arc::ptr_eq(f, file)) {
                    let r = file.sync_data().map_err(|e| e.to_string());
                    if let Err(e) = &r {
                        tracing::error!(error = %e, "wal sync failed");
                    }
                    synced.push((file.clone(), r));
                }
            }
        }
        for job in jobs {
            match job {
                SyncJob::Commit {
                    file,
                    appends,
                    written,
                } => {
                    let durable = written.and_then(|()| {
                        synced
                            .iter()
                            .find(|(f, _)| Arc::ptr_eq(f, &file))
                            .map_or(Ok(()), |(_, r)| r.clone())
                    });
                    if durable.is_ok() {
                        let mut groups = inner.groups.write();
                        for (gid, cols, reply) in appends {
                            inner.max_gid.fetch_max(gid, Ordering::SeqCst);
                            apply(groups.entry(gid).or_default(), cols);
                            replies.push(reply);
                        }
                    } else {
                        replies.extend(appends.into_iter().map(|(_, _, reply)| reply));
                    }
                    for reply in replies.drain(..) {
                        let _ = reply.send(durable.clone());
                    }
                }
                SyncJob::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let (sync_tx, sync_rx) = mpsc::channel();
        let syncer = {
            let inner = self.inner.clone();
            std::thread::Builder::new()
                .name("logs-sync".into())
                .spawn(move || run_syncer(&inner, sync_rx))
        };
        let syncer = match syncer {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the wal sync thread");
                return;
            }
        };
        let drain = |tx: &mpsc::Sender<SyncJob>| {
            let (done, wait) = mpsc::channel();
            if tx.send(SyncJob::Barrier(done)).is_ok() {
                let _ = wait.recv();
            }
        };
        while let Ok(first) = rx.recv() {
            let mut msgs = vec![first];
            while let Ok(m) = rx.try_recv() {
                msgs.push(m);
            }
            if msgs.iter().any(|m| matches!(m, Msg::Abort)) {
                // a crash: what is queued for the sync thread may or may not become durable
                drop(sync_tx);
                let _ = syncer.join();
                return;
            }
            // group commit: every append queued so far shares one write (and one fdatasync)
            let mut appends = Vec::new();
            let mut others = Vec::new();
            for m in msgs {
                match m {
                    Msg::Append {
                        gid,
                        mut cols,
                        reply,
                    } => {
                        for s in cols.seq.iter_mut() {
                            *s = self.next_seq;
                            self.next_seq += 1;
                        }
                        appends.push((gid, cols, reply));
                    }
                    other => others.push(other),
                }
            }
            if !appends.is_empty() {
                let written = self
                    .wal
                    .append_columns(appends.iter_mut().map(|(gid, cols, _)| (*gid, cols)))
                    .map_err(|e| e.to_string());
                if let Err(e) = &written {
                    tracing::error!(error = %e, "wal write failed");
                }
                let job = SyncJob::Commit {
                    file: self.wal.sync_handle(),
                    appends,
                    written,
                };
                if let Err(mpsc::SendError(SyncJob::Commit { appends, .. })) = sync_tx.send(job) {
                    for (_, _, reply) in appends {
                        let _ = reply.send(Err("the wal sync thread has stopped".into()));
                    }
                }
            }
            // backpressure: while a checkpoint is being written, the WAL (and the heads it
            // mirrors in memory) may grow only to `max_unflushed_wal_bytes`; beyond that no
            // further append is taken until the flusher is done, so memory stays bounded and
            // acknowledged ingest cannot run ahead of compression
            if self.wal.len() >= self.options.max_unflushed_wal_bytes && self.in_flight.busy() {
                let started = Instant::now();
                self.in_flight.wait_idle();
                tracing::debug!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    wal_bytes = self.wal.len(),
                    "log ingest waited for the checkpoint"
                );
            }
            // what follows must see every earlier append applied
            let checkpoint =
                self.wal.len() >= self.options.checkpoint_wal_bytes && !self.in_flight.busy();
            if !others.is_empty() || checkpoint {
                drain(&sync_tx);
            }
            for m in others {
                match m {
                    Msg::Drop { gid, reply } => {
                        let _ = reply.send(self.drop_group(gid).map_err(|e| e.to_string()));
                    }
                    Msg::Expire { gid, before, reply } => {
                        let _ = reply.send(self.expire(gid, before).map_err(|e| e.to_string()));
                    }
                    Msg::Checkpoint { reply } => self.freeze(Some(reply)),
                    Msg::Append { .. } | Msg::Abort => {}
                }
            }
            // one checkpoint in flight at a time: while the flusher works, the WAL keeps growing
            // (only this thread starts one, so `checkpoint` still holds unless a message did)
            if checkpoint && !self.in_flight.busy() {
                self.freeze(None);
            }
        }
        drain(&sync_tx);
        self.freeze(None);
        drop(sync_tx);
        let _ = syncer.join();
    }

    /// Rotate the WAL and hand the heads to the flusher.
    fn freeze(&mut self, reply: Option<Reply>) {
        let next = self.wal_no + 1;
        let wal = match Wal::open(&wal_path(&self.inner.dir, next), &mut |_, _| {}) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "wal rotation failed");
                if let Some(r) = reply {
                    let _ = r.send(Err(e.to_string()));
                }
                return;
            }
        };
        segment::sync_dir(&self.inner.dir);
        self.wal = wal;
        let wal_upto = self.wal_no;
        self.wal_no = next;
        let mut parts = Vec::new();
        let mut stats = StatsFile {
            next_seq: self.next_seq,
            max_gid: self.inner.max_gid.load(Ordering::SeqCst),
            wal_upto,
            streams: HashMap::new(),
        };
        {
            let mut groups = self.inner.groups.write();
            for (gid, g) in groups.iter_mut() {
                stats.streams.insert(*gid, g.streams.clone());
                for (hour, p) in g.parts.iter_mut() {
                    if p.head.is_empty() {
                        continue;
                    }
                    let head = Arc::new(std::mem::take(&mut p.head));
                    p.frozen.push(head.clone());
                    parts.push((*gid, *hour, p.next_segment, head));
                    p.next_segment += 1;
                }
            }
        }
        let job = FlushJob {
            parts,
            stats,
            wal_upto,
            reply,
        };
        self.in_flight.start();
        if let Some(tx) = &self.flush_tx {
            if let Err(mpsc::SendError(job)) = tx.send(job) {
                self.in_flight.finish();
                if let Some(r) = job.reply {
                    let _ = r.send(Err("the flusher has stopped".into()));
                }
            }
        }
    }

    fn drop_group(&mut self, gid: u64) -> Result<(), StorageError> {
        let _fs = self.inner.fs_lock.lock();
        self.inner.groups.write().remove(&gid);
        let path = self.inner.dir.join(format!("g{gid}"));
        match fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn expire(&mut self, gid: u64, before: i64) -> Result<(), StorageError> {
        let _fs = self.inner.fs_lock.lock();
        let hours: Vec<i64> = {
            let mut groups = self.inner.groups.write();
            let Some(g) = groups.get_mut(&gid) else {
                return Ok(());
            };
            let hours: Vec<i64> = g
                .parts
                .keys()
                .copied()
                .filter(|h| h + PARTITION_MS <= before)
                .collect();
            for h in &hours {
                g.parts.remove(h);
            }
            hours
        };
        for h in hours {
            let path = self.inner.dir.join(format!("g{gid}")).join(h.to_string());
            if let Err(e) = fs::remove_dir_all(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e.into());
                }
            }
            tracing::debug!(gid, hour = h, "expired log partition");
        }
        Ok(())
    }
}

/// The flusher thread: run jobs in order until the writer goes away.
pub(super) fn run_flusher(
    inner: &Inner,
    rx: mpsc::Receiver<FlushJob>,
    in_flight: &Flights,
    compactor: mpsc::Sender<()>,
) {
    // parts of failed flushes, written again with the next job
    let mut carry: Vec<FrozenPart> = Vec::new();
    for mut job in rx {
        let mut parts = std::mem::take(&mut carry);
        parts.append(&mut job.parts);
        let result = flush(inner, &job, &parts);
        match &result {
            Err((e, committed)) => {
                tracing::error!(error = %e, committed, "log checkpoint failed");
                if !committed {
                    carry = parts;
                }
            }
            Ok(()) => {
                let _ = compactor.send(());
            }
        }
        in_flight.finish();
        if let Some(r) = job.reply.take() {
            let _ = r.send(result.map_err(|(e, _)| e.to_string()));
        }
    }
}

fn pending_path(dir: &Path, n: u32, wal_upto: u64) -> PathBuf {
    dir.join(format!("{n:08}.w{wal_upto}.pending"))
}

/// The segment number and freeze of a `N.wW.pending` file name.
pub(super) fn parse_pending(name: &str) -> Option<(u32, u64)> {
    let (n, w) = name.strip_suffix(".pending")?.split_once(".w")?;
    Some((n.parse().ok()?, w.parse().ok()?))
}

/// Whether the frozen head `cols` is still wanted (its group or partition may be gone).
fn wanted(inner: &Inner, gid: u64, hour: i64, cols: &Arc<Chunks>) -> bool {
    inner
        .groups
        .read()
        .get(&gid)
        .and_then(|g| g.parts.get(&hour))
        .is_some_and(|p| p.frozen.iter().any(|f| Arc::ptr_eq(f, cols)))
}

/// Write `parts` of `job`; the error says whether the commit point was passed.
fn flush(inner: &Inner, job: &FlushJob, parts: &[FrozenPart]) -> Result<(), (StorageError, bool)> {
    let faults = &inner.options.faults;
    let mut written: Vec<(usize, Segment)> = Vec::new();
    let phase1 = (|| {
        for (k, (gid, hour, n, cols)) in parts.iter().enumerate() {
            let _fs = inner.fs_lock.lock();
            if !wanted(inner, *gid, *hour, cols) {
                continue;
            }
            let dir = inner.dir.join(format!("g{gid}")).join(hour.to_string());
            fs::create_dir_all(&dir)?;
            let all = concat(cols);
            let seg = Segment::write(
                &pending_path(&dir, *n, job.wal_upto),
                &all,
                *n,
                *n,
                inner.options.skip_index == super::SkipIndex::Checkpoint,
            )?;
            written.push((k, seg));
            faults.hit("flush.pending")?;
        }
        Ok::<(), StorageError>(())
    })();
    if let Err(e) = phase1 {
        for (_, seg) in &written {
            let _ = fs::remove_file(&seg.path);
        }
        return Err((e, false));
    }
    // the commit point: stats.json names the freeze whose pending segments now count
    let commit = (|| {
        faults.hit("flush.commit")?;
        let tmp = inner.dir.join("stats.json.tmp");
        fs::write(&tmp, serde_json::to_vec(&job.stats)?)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, inner.dir.join("stats.json"))?;
        segment::sync_dir(&inner.dir);
        Ok::<(), StorageError>(())
    })();
    if let Err(e) = commit {
        for (_, seg) in &written {
            let _ = fs::remove_file(&seg.path);
        }
        return Err((e, false));
    }
    let publish = (|| {
        faults.hit("flush.committed")?;
        for (k, mut seg) in written {
            let (gid, hour, n, cols) = &parts[k];
            let _fs = inner.fs_lock.lock();
            let dir = seg.path.parent().map(Path::to_path_buf).unwrap_or_default();
            let final_path = dir.join(segment::file_name(*n, *n));
            match fs::rename(&seg.path, &final_path) {
                Ok(()) => {}
                // expired or dropped since
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
            segment::sync_dir(&dir);
            seg.path = final_path;
            let mut groups = inner.groups.write();
            if let Some(p) = groups.get_mut(gid).and_then(|g| g.parts.get_mut(hour)) {
                p.segments.push(Arc::new(seg));
                p.segments.sort_by_key(|s| s.first);
                p.frozen.retain(|f| !Arc::ptr_eq(f, cols));
            }
        }
        faults.hit("flush.published")?;
        for n in wal_numbers(&inner.dir)? {
            if n <= job.wal_upto {
                fs::remove_file(wal_path(&inner.dir, n))?;
            }
        }
        Ok::<(), StorageError>(())
    })();
    publish.map_err(|e| (e, true))
}
