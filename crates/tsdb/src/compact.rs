//! Compaction, roll-ups and retention, CloudWatch's way: high-resolution raw points are kept 3 h,
//! then rolled up to 60-s aggregates; everything older than 15 days becomes 5-minute aggregates,
//! older than 63 days 1-hour aggregates, and data older than 455 days is deleted.
//!
//! Files are grouped by (tier, window). One pass repeatedly plans the most urgent job on the
//! current file set and runs it: delete expired groups, roll groups up into a coarser tier, or
//! merge a group's runs (all of them once the window is closed, otherwise four or more runs of the
//! same level, size-tiered). Every job writes its outputs, fsyncs them, then commits by replacing
//! the manifest; inputs are deleted when their last reader lets go.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::datafile::{DataFile, FileMeta, FileWriter, IndexEntry, Tier};
use crate::db::Inner;
use crate::gorilla::{decode_frame, parse_table, ChunkBuilder, FrameInfo};
use crate::manifest::sync_dir;
use crate::rollup::{decode_records, encode_records, RollupBuilder};
use crate::{Point, TsdbError};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Raw data of high-resolution series stays at full resolution this long.
pub const HIGH_RES_RETENTION_MS: i64 = 3 * HOUR_MS;
/// 60-second data stays this long.
pub const MINUTE_RETENTION_MS: i64 = 15 * DAY_MS;
/// 5-minute data stays this long.
pub const FIVE_MINUTE_RETENTION_MS: i64 = 63 * DAY_MS;
/// 1-hour data stays this long; older data is deleted.
pub const HOUR_RETENTION_MS: i64 = 455 * DAY_MS;
/// A window this far in the past is considered closed: all its runs are merged into one.
const CLOSE_GRACE_MS: i64 = 10 * 60_000;
/// Runs of one level in an open window that trigger a merge.
const TIER_FANOUT: usize = 4;
/// Payload bytes buffered before they are written out while building a chunk.
const STREAM_BYTES: usize = 1 << 20;

/// What a compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Groups of runs merged into one file.
    pub merges: usize,
    /// Groups rolled up into a coarser tier.
    pub rollups: usize,
    /// Files deleted because their data expired.
    pub expired_files: usize,
    /// Files written.
    pub files_written: usize,
}

enum Job {
    Delete(Vec<Arc<DataFile>>),
    Merge {
        tier: Tier,
        window: i64,
        inputs: Vec<Arc<DataFile>>,
    },
    Rollup {
        window: i64,
        inputs: Vec<Arc<DataFile>>,
        target: Tier,
        hr_only: bool,
    },
}

fn plan(files: &[Arc<DataFile>], now: i64) -> Option<Job> {
    let mut groups: BTreeMap<(Tier, i64), Vec<Arc<DataFile>>> = BTreeMap::new();
    for f in files {
        groups
            .entry((f.meta.tier, f.meta.window_start))
            .or_default()
            .push(f.clone());
    }
    let end_of = |t: Tier, w: i64| w.saturating_add(t.window_ms());
    let older = |t: Tier, w: i64, age: i64| end_of(t, w) <= now.saturating_sub(age);
    for (&(t, w), fs) in &groups {
        if older(t, w, HOUR_RETENTION_MS) {
            return Some(Job::Delete(fs.clone()));
        }
    }
    for (&(t, w), fs) in &groups {
        let target = if t < Tier::R3600 && older(t, w, FIVE_MINUTE_RETENTION_MS) {
            Some((Tier::R3600, false))
        } else if t < Tier::R300 && older(t, w, MINUTE_RETENTION_MS) {
            Some((Tier::R300, false))
        } else if t == Tier::Raw
            && older(t, w, HIGH_RES_RETENTION_MS)
            && fs.iter().any(|f| f.meta.n_hr > 0)
        {
            Some((Tier::R60, true))
        } else {
            None
        };
        if let Some((target, hr_only)) = target {
            return Some(Job::Rollup {
                window: w,
                inputs: fs.clone(),
                target,
                hr_only,
            });
        }
    }
    for (&(t, w), fs) in &groups {
        if fs.len() < 2 {
            continue;
        }
        if older(t, w, CLOSE_GRACE_MS) {
            return Some(Job::Merge {
                tier: t,
                window: w,
                inputs: fs.clone(),
            });
        }
        let mut by_level: BTreeMap<u8, Vec<Arc<DataFile>>> = BTreeMap::new();
        for f in fs {
            by_level.entry(f.meta.level).or_default().push(f.clone());
        }
        if let Some((_, runs)) = by_level.into_iter().find(|(_, r)| r.len() >= TIER_FANOUT) {
            return Some(Job::Merge {
                tier: t,
                window: w,
                inputs: runs,
            });
        }
    }
    None
}

/// Runs jobs until none is due (or `stop` says so).
pub(crate) fn run(
    inner: &Inner,
    now: i64,
    stop: &dyn Fn() -> bool,
) -> Result<CompactionReport, TsdbError> {
    let _g = inner.compact_lock.lock();
    let mut rep = CompactionReport::default();
    for _ in 0..100_000 {
        if stop() {
            break;
        }
        let files = inner.files.read().clone();
        let Some(job) = plan(&files, now) else { break };
        match job {
            Job::Delete(inputs) => {
                tracing::info!(files = inputs.len(), "deleting expired data files");
                rep.expired_files += inputs.len();
                commit(inner, &inputs, Vec::new())?;
            }
            Job::Merge {
                tier,
                window,
                inputs,
            } => {
                let outs = merge(inner, tier, window, &inputs)?;
                tracing::debug!(?tier, window, inputs = inputs.len(), "merged runs");
                rep.merges += 1;
                rep.files_written += outs.len();
                commit(inner, &inputs, outs)?;
            }
            Job::Rollup {
                window,
                inputs,
                target,
                hr_only,
            } => {
                let outs = rollup(inner, window, &inputs, target, hr_only)?;
                tracing::info!(
                    ?target,
                    window,
                    inputs = inputs.len(),
                    hr_only,
                    "rolled up window"
                );
                rep.rollups += 1;
                rep.files_written += outs.len();
                commit(inner, &inputs, outs)?;
            }
        }
    }
    Ok(rep)
}

/// Replaces `inputs` by `outputs` in the manifest and the live file set.
fn commit(
    inner: &Inner,
    inputs: &[Arc<DataFile>],
    outputs: Vec<FileMeta>,
) -> Result<(), TsdbError> {
    if !outputs.is_empty() {
        sync_dir(&inner.data_dir)?;
    }
    let gone: HashSet<u64> = inputs.iter().map(|f| f.meta.id).collect();
    let mut man = inner.manifest.lock();
    let mut next = man.clone();
    next.files.retain(|m| !gone.contains(&m.id));
    next.files.extend(outputs.iter().cloned());
    next.store(&inner.dir)?;
    *man = next;
    let mut files = inner.files.write();
    let mut v: Vec<Arc<DataFile>> = files
        .iter()
        .filter(|f| !gone.contains(&f.meta.id))
        .cloned()
        .collect();
    v.extend(
        outputs
            .into_iter()
            .map(|m| Arc::new(DataFile::new(&inner.data_dir, m))),
    );
    *files = Arc::new(v);
    drop(files);
    drop(man);
    for f in inputs {
        f.mark_obsolete();
    }
    Ok(())
}

/// Every (sid, input, entry), ascending by sid then input.
fn all_entries(inputs: &[Arc<DataFile>]) -> Result<Vec<(u32, usize, IndexEntry)>, TsdbError> {
    let mut v = Vec::new();
    for (i, f) in inputs.iter().enumerate() {
        for e in f.entries()? {
            v.push((e.sid, i, e));
        }
    }
    v.sort_by_key(|x| (x.0, x.1));
    Ok(v)
}

fn groups(
    entries: &[(u32, usize, IndexEntry)],
) -> impl Iterator<Item = &[(u32, usize, IndexEntry)]> {
    entries.chunk_by(|a, b| a.0 == b.0)
}

/// Output files under construction, removed again on failure.
struct Outputs(Vec<Option<FileWriter>>);

impl Outputs {
    fn finish(mut self, n_hr: &[u32]) -> Result<Vec<FileMeta>, TsdbError> {
        let mut out = Vec::new();
        let writers: Vec<Option<FileWriter>> = self.0.drain(..).collect();
        for (w, hr) in writers.into_iter().zip(n_hr) {
            if let Some(w) = w {
                if let Some(m) = w.finish(*hr)? {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for w in self.0.drain(..).flatten() {
            w.abort();
        }
    }
}

fn merge(
    inner: &Inner,
    tier: Tier,
    window: i64,
    inputs: &[Arc<DataFile>],
) -> Result<Vec<FileMeta>, TsdbError> {
    let level = inputs
        .iter()
        .map(|f| f.meta.level)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let hr = inner.index.read().hr_flags();
    let entries = all_entries(inputs)?;
    let mut outs = Outputs(vec![Some(FileWriter::create(
        &inner.data_dir,
        inner.alloc_file_id(),
        tier,
        level,
        window,
    )?)]);
    let mut n_hr = 0u32;
    let mut cb = ChunkBuilder::new();
    for g in groups(&entries) {
        let sid = g[0].0;
        let Some(w) = outs.0[0].as_mut() else { break };
        if tier == Tier::Raw {
            merge_raw(inputs, g, w, &mut cb)?;
            n_hr += hr.get(sid as usize).copied().unwrap_or(false) as u32;
        } else if g.len() == 1 {
            copy_chunk(&inputs[g[0].1], &g[0].2, w)?;
        } else {
            let mut rb = RollupBuilder::new(tier.period_ms());
            add_to_rollup(inputs, g, &mut rb)?;
            write_rollup(w, sid, rb, tier.period_ms())?;
        }
    }
    outs.finish(&[n_hr])
}

fn copy_chunk(f: &DataFile, e: &IndexEntry, w: &mut FileWriter) -> Result<(), TsdbError> {
    let payload = f.read_payload(e)?;
    let table = if e.table_len > 0 {
        f.read_table(e)?
    } else {
        Vec::new()
    };
    w.copy_chunk(e, &payload, &table)?;
    Ok(())
}

/// Streams one raw chunk's points frame by frame.
struct ChunkCursor {
    payload: Vec<u8>,
    frames: Vec<FrameInfo>,
    next_frame: usize,
    buf: Vec<Point>,
    pos: usize,
}

impl ChunkCursor {
    fn open(f: &DataFile, e: &IndexEntry) -> Result<ChunkCursor, TsdbError> {
        let table = f.read_table(e)?;
        let payload = f.read_payload(e)?;
        let frames = parse_table(&table, e.n_frames, payload.len())?;
        Ok(ChunkCursor {
            payload,
            frames,
            next_frame: 0,
            buf: Vec::new(),
            pos: 0,
        })
    }

    fn peek(&mut self) -> Result<Option<Point>, TsdbError> {
        while self.pos >= self.buf.len() {
            let Some(fi) = self.frames.get(self.next_frame) else {
                return Ok(None);
            };
            self.next_frame += 1;
            self.buf.clear();
            self.pos = 0;
            let buf = &mut self.buf;
            decode_frame(&self.payload, fi, |ts_ms, sample| {
                buf.push(Point { ts_ms, sample })
            })?;
        }
        Ok(Some(self.buf[self.pos]))
    }
}

/// Writes the union of a sid's raw chunks (one per input in `g`) as one chunk, ascending by time.
fn merge_raw(
    inputs: &[Arc<DataFile>],
    g: &[(u32, usize, IndexEntry)],
    w: &mut FileWriter,
    cb: &mut ChunkBuilder,
) -> Result<(), TsdbError> {
    if g.len() == 1 {
        return copy_chunk(&inputs[g[0].1], &g[0].2, w);
    }
    let mut cursors = Vec::with_capacity(g.len());
    for (_, i, e) in g {
        cursors.push(ChunkCursor::open(&inputs[*i], e)?);
    }
    w.begin_chunk();
    loop {
        let mut best: Option<(usize, Point)> = None;
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(p) = c.peek()? {
                if best.is_none_or(|b| p.ts_ms < b.1.ts_ms) {
                    best = Some((i, p));
                }
            }
        }
        let Some((i, p)) = best else { break };
        cursors[i].pos += 1;
        cb.push(p);
        if cb.payload.len() >= STREAM_BYTES {
            w.write_payload(&cb.payload)?;
            cb.payload.clear();
        }
    }
    let done = cb.finish();
    w.write_payload(&cb.payload)?;
    cb.payload.clear();
    w.end_raw_chunk(g[0].0, &done)?;
    Ok(())
}

/// Feeds a sid's chunks (raw points or finer records) into a roll-up builder.
fn add_to_rollup(
    inputs: &[Arc<DataFile>],
    g: &[(u32, usize, IndexEntry)],
    rb: &mut RollupBuilder,
) -> Result<(), TsdbError> {
    for (_, i, e) in g {
        let f = &inputs[*i];
        let payload = f.read_payload(e)?;
        match f.meta.tier {
            Tier::Raw => {
                let table = f.read_table(e)?;
                let frames = parse_table(&table, e.n_frames, payload.len())?;
                for fi in &frames {
                    decode_frame(&payload, fi, |ts, s| rb.add_sample(ts, &s))?;
                }
            }
            t => {
                let n = u32::try_from(e.n_points)
                    .map_err(|_| TsdbError::Corrupt("roll-up record count".into()))?;
                decode_records(&payload, n, t.period_ms(), |r| {
                    rb.add_record(&r.to_rec()?);
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

fn write_rollup(
    w: &mut FileWriter,
    sid: u32,
    rb: RollupBuilder,
    period: i64,
) -> Result<(), TsdbError> {
    if rb.is_empty() {
        return Ok(());
    }
    let recs = rb.finish();
    let mut bytes = Vec::new();
    encode_records(&recs, period, &mut bytes);
    let (min_ts, max_ts) = (recs[0].ts, recs[recs.len() - 1].ts);
    w.add_rollup_chunk(sid, recs.len() as u64, min_ts, max_ts, &bytes)?;
    Ok(())
}

fn rollup(
    inner: &Inner,
    window: i64,
    inputs: &[Arc<DataFile>],
    target: Tier,
    hr_only: bool,
) -> Result<Vec<FileMeta>, TsdbError> {
    let hr = inner.index.read().hr_flags();
    let entries = all_entries(inputs)?;
    let target_window = target.window_of(window);
    let level = inputs
        .iter()
        .map(|f| f.meta.level)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let mut outs = Outputs(vec![
        Some(FileWriter::create(
            &inner.data_dir,
            inner.alloc_file_id(),
            target,
            0,
            target_window,
        )?),
        if hr_only {
            Some(FileWriter::create(
                &inner.data_dir,
                inner.alloc_file_id(),
                Tier::Raw,
                level,
                window,
            )?)
        } else {
            None
        },
    ]);
    let mut cb = ChunkBuilder::new();
    for g in groups(&entries) {
        let sid = g[0].0;
        let is_hr = hr.get(sid as usize).copied().unwrap_or(false);
        if hr_only && !is_hr {
            if let Some(w) = outs.0[1].as_mut() {
                merge_raw(inputs, g, w, &mut cb)?;
            }
            continue;
        }
        let mut rb = RollupBuilder::new(target.period_ms());
        add_to_rollup(inputs, g, &mut rb)?;
        if let Some(w) = outs.0[0].as_mut() {
            write_rollup(w, sid, rb, target.period_ms())?;
        }
    }
    outs.finish(&[0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(dir: &Path, id: u64, tier: Tier, level: u8, window: i64, n_hr: u32) -> Arc<DataFile> {
        Arc::new(DataFile::new(
            dir,
            FileMeta {
                id,
                tier,
                level,
                window_start: window,
                min_ts: window,
                max_ts: window + 1,
                n_series: 1,
                n_hr,
                n_points: 1,
                bytes: 200,
                index_offset: 100,
                index_crc: 0,
            },
        ))
    }

    #[test]
    fn planning_follows_cloudwatch_retention() {
        let d = Path::new("/nonexistent");
        let now = 1_000 * DAY_MS;
        let w2h = Tier::Raw.window_ms();
        // Fresh raw data: nothing to do.
        let fresh = file(d, 1, Tier::Raw, 0, Tier::Raw.window_of(now), 1);
        assert!(plan(std::slice::from_ref(&fresh), now).is_none());
        // High-res raw data older than 3 h: rolled to 60 s.
        let hr_old = file(
            d,
            2,
            Tier::Raw,
            0,
            Tier::Raw.window_of(now - 6 * HOUR_MS),
            1,
        );
        assert!(matches!(
            plan(&[fresh.clone(), hr_old], now),
            Some(Job::Rollup {
                target: Tier::R60,
                hr_only: true,
                ..
            })
        ));
        // Standard raw data older than 3 h stays raw...
        let std_old = file(
            d,
            3,
            Tier::Raw,
            0,
            Tier::Raw.window_of(now - 6 * HOUR_MS),
            0,
        );
        assert!(plan(&[std_old], now).is_none());
        // ...until 15 days, then 5 minutes; 63 days: 1 hour; 455 days: gone.
        let w = Tier::Raw.window_of(now - 16 * DAY_MS);
        assert!(matches!(
            plan(&[file(d, 4, Tier::Raw, 0, w, 0)], now),
            Some(Job::Rollup {
                target: Tier::R300,
                ..
            })
        ));
        let w = Tier::R60.window_of(now - 70 * DAY_MS);
        assert!(matches!(
            plan(&[file(d, 5, Tier::R60, 0, w, 0)], now),
            Some(Job::Rollup {
                target: Tier::R3600,
                ..
            })
        ));
        let w = Tier::R3600.window_of(now - 500 * DAY_MS);
        assert!(matches!(
            plan(&[file(d, 6, Tier::R3600, 0, w, 0)], now),
            Some(Job::Delete(_))
        ));
        // 1-hour data inside 455 days is kept.
        let w = Tier::R3600.window_of(now - 400 * DAY_MS);
        assert!(plan(&[file(d, 7, Tier::R3600, 0, w, 0)], now).is_none());
        // Open window: four level-0 runs merge, three do not.
        let w = Tier::Raw.window_of(now);
        let runs: Vec<_> = (10..14).map(|i| file(d, i, Tier::Raw, 0, w, 0)).collect();
        assert!(plan(&runs[..3], now).is_none());
        assert!(matches!(plan(&runs, now), Some(Job::Merge { .. })));
        // Closed window: any two runs merge.
        let w = Tier::Raw.window_of(now - w2h - HOUR_MS);
        let runs: Vec<_> = (20..22).map(|i| file(d, i, Tier::Raw, 0, w, 0)).collect();
        assert!(matches!(plan(&runs, now), Some(Job::Merge { .. })));
    }
}
