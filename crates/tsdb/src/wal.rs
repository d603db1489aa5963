//! Write-ahead log: segment files `wal/<seq>.log`, one writer thread with group commit, and replay.
//!
//! A segment starts with a 20-byte header (`"OLWALSG1"` | seq u64 | crc32 of both) and holds
//! records framed as `len u32 | crc32(payload) u32 | payload`. Payloads:
//! * definition `1 | sid varint | hr u8 | key` — logged before any batch uses the id;
//! * batch `2 | wall_ms zigzag | n varint | n × (sid varint | flags u8 | m varint | m points)`,
//!   flags bit 0 high-resolution, bit 1 every point plain (count 1); a point is
//!   `[kind u8 unless plain] | ts delta zigzag | f64s` (value; value, count; count, sum, min, max).
//!
//! The writer thread drains every queued record, writes them with one `write`, calls
//! `fdatasync` once and then acknowledges them all. Replay stops at the first record that is
//! short or fails its checksum, truncates the segment there and logs a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::bits::{put_ivarint, put_uvarint, Cursor, Truncated};
use crate::series::KeyView;
use crate::{Point, Sample, TsdbError};

const SEG_MAGIC: &[u8; 8] = b"OLWALSG1";
const SEG_HEADER_LEN: usize = 20;
const REC_DEF: u8 = 1;
const REC_BATCH: u8 = 2;
/// Largest record accepted at replay.
pub(crate) const MAX_RECORD: u32 = 1 << 30;

pub(crate) type Ack = oneshot::Sender<Result<(), TsdbError>>;

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.log"))
}

/// Sequence numbers and paths of the segments in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(hex) = name.strip_suffix(".log") {
            if let Ok(seq) = u64::from_str_radix(hex, 16) {
                out.push((seq, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Starts a record: reserves the frame header.
pub(crate) fn begin_record(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    start
}

/// Fills in the frame header of the record started at `start`.
pub(crate) fn end_record(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - 8) as u32;
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a framed definition record.
pub(crate) fn encode_def(buf: &mut Vec<u8>, sid: u32, hr: bool, key: &[u8]) {
    let start = begin_record(buf);
    buf.push(REC_DEF);
    put_uvarint(buf, sid as u64);
    buf.push(hr as u8);
    buf.extend_from_slice(key);
    end_record(buf, start);
}

/// Writes a batch record's header; follow with `n` [`encode_series_points`] calls, then
/// [`end_record`].
pub(crate) fn begin_batch(buf: &mut Vec<u8>, wall_ms: i64, n: usize) -> usize {
    let start = begin_record(buf);
    buf.push(REC_BATCH);
    put_ivarint(buf, wall_ms);
    put_uvarint(buf, n as u64);
    start
}

pub(crate) fn encode_series_points(buf: &mut Vec<u8>, sid: u32, hr: bool, points: &[Point]) {
    put_uvarint(buf, sid as u64);
    let plain = points
        .iter()
        .all(|p| matches!(p.sample, Sample::Value { count, .. } if count == 1.0));
    buf.push(hr as u8 | ((plain as u8) << 1));
    put_uvarint(buf, points.len() as u64);
    buf.reserve(points.len() * if plain { 11 } else { 20 });
    let mut prev = 0i64;
    for p in points {
        match p.sample {
            Sample::Value { value, count } => {
                if plain {
                    put_ivarint(buf, p.ts_ms.wrapping_sub(prev));
                    buf.extend_from_slice(&value.to_le_bytes());
                } else if count == 1.0 {
                    buf.push(0);
                    put_ivarint(buf, p.ts_ms.wrapping_sub(prev));
                    buf.extend_from_slice(&value.to_le_bytes());
                } else {
                    buf.push(1);
                    put_ivarint(buf, p.ts_ms.wrapping_sub(prev));
                    buf.extend_from_slice(&value.to_le_bytes());
                    buf.extend_from_slice(&count.to_le_bytes());
                }
            }
            Sample::Stats {
                count,
                sum,
                min,
                max,
            } => {
                buf.push(2);
                put_ivarint(buf, p.ts_ms.wrapping_sub(prev));
                for f in [count, sum, min, max] {
                    buf.extend_from_slice(&f.to_le_bytes());
                }
            }
        }
        prev = p.ts_ms;
    }
}

/// A decoded WAL record.
pub(crate) enum WalRecord<'a> {
    /// `key` is the encoded key.
    Def {
        sid: u32,
        hr: bool,
        key: &'a [u8],
    },
    Batch(BatchView<'a>),
}

/// A batch record, decoded lazily.
pub(crate) struct BatchView<'a> {
    pub wall_ms: i64,
    n: u64,
    c: Cursor<'a>,
}

impl BatchView<'_> {
    /// Calls `f(sid, hr, points)` per series write.
    pub(crate) fn for_each(
        mut self,
        mut f: impl FnMut(u32, bool, &[Point]) -> Result<(), TsdbError>,
    ) -> Result<(), TsdbError> {
        let mut pts = Vec::new();
        for _ in 0..self.n {
            let c = &mut self.c;
            let sid = c.u32v()?;
            let flags = c.u8()?;
            let m = c.uvarint()?;
            if m > c.data.len() as u64 {
                return Err(Truncated.into());
            }
            pts.clear();
            let mut ts = 0i64;
            for _ in 0..m {
                let kind = if flags & 2 != 0 { 0 } else { c.u8()? };
                ts = ts.wrapping_add(c.ivarint()?);
                let sample = match kind {
                    0 => Sample::Value {
                        value: c.f64le()?,
                        count: 1.0,
                    },
                    1 => Sample::Value {
                        value: c.f64le()?,
                        count: c.f64le()?,
                    },
                    2 => Sample::Stats {
                        count: c.f64le()?,
                        sum: c.f64le()?,
                        min: c.f64le()?,
                        max: c.f64le()?,
                    },
                    _ => return Err(Truncated.into()),
                };
                pts.push(Point { ts_ms: ts, sample });
            }
            f(sid, flags & 1 != 0, &pts)?;
        }
        if !self.c.is_empty() {
            return Err(Truncated.into());
        }
        Ok(())
    }
}

pub(crate) fn decode_record(payload: &[u8]) -> Result<WalRecord<'_>, Truncated> {
    let mut c = Cursor::new(payload);
    match c.u8()? {
        REC_DEF => {
            let sid = c.u32v()?;
            let hr = c.u8()? != 0;
            let rest = &c.data[c.pos..];
            let (_, len) = KeyView::parse(rest)?;
            if len != rest.len() {
                return Err(Truncated);
            }
            Ok(WalRecord::Def { sid, hr, key: rest })
        }
        REC_BATCH => {
            let wall_ms = c.ivarint()?;
            let n = c.uvarint()?;
            Ok(WalRecord::Batch(BatchView { wall_ms, n, c }))
        }
        _ => Err(Truncated),
    }
}

/// What replaying one segment found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentReplay {
    pub records: u64,
    pub bytes: u64,
    pub truncated: bool,
}

/// Replays one segment, calling `f` per record payload in order. A torn or corrupt tail is cut
/// off (and the file truncated) with a warning; a record whose payload `f` rejects is skipped
/// with a warning.
pub(crate) fn replay_segment(
    path: &Path,
    seq: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), TsdbError>,
) -> Result<SegmentReplay, TsdbError> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut out = SegmentReplay::default();
    let header_ok = data.len() >= SEG_HEADER_LEN
        && &data[..8] == SEG_MAGIC
        && data[8..16] == seq.to_le_bytes()
        && data[16..20] == crc32fast::hash(&data[..16]).to_le_bytes();
    if !header_ok {
        tracing::warn!(path = %path.display(), len = data.len(), "wal segment header torn; discarding segment");
        fs::remove_file(path)?;
        out.truncated = true;
        return Ok(out);
    }
    let mut pos = SEG_HEADER_LEN;
    loop {
        if pos == data.len() {
            break;
        }
        let good = (|| {
            let hdr = data.get(pos..pos + 8)?;
            let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
            if len == 0 || len > MAX_RECORD {
                return None;
            }
            let payload = data.get(pos + 8..pos + 8 + len as usize)?;
            (crc32fast::hash(payload) == crc).then_some(payload)
        })();
        let Some(payload) = good else {
            tracing::warn!(
                path = %path.display(),
                offset = pos,
                dropped_bytes = data.len() - pos,
                "wal tail torn or corrupt; truncating"
            );
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(pos as u64)?;
            file.sync_all()?;
            out.truncated = true;
            break;
        };
        if let Err(e) = f(payload) {
            tracing::warn!(path = %path.display(), offset = pos, error = %e, "skipping undecodable wal record");
        }
        out.records += 1;
        pos += 8 + payload.len();
    }
    out.bytes = pos as u64;
    Ok(out)
}

/// Work for the writer thread.
pub(crate) enum WalItem {
    /// A framed record; acknowledged once durable.
    Record {
        bytes: Vec<u8>,
        ack: Option<Ack>,
    },
    /// Finish the current segment and continue in segment `seq`.
    Rotate {
        seq: u64,
        done: std::sync::mpsc::Sender<Result<(), TsdbError>>,
    },
    Stop,
}

/// The queue between submitters and the writer thread.
pub(crate) struct WalQueue {
    items: Mutex<Vec<WalItem>>,
    cv: Condvar,
    /// Set after an I/O error: the log can no longer be trusted to be appendable.
    pub failed: AtomicBool,
    /// Bytes on disk in live segments (approximate, for stats).
    pub bytes: AtomicU64,
}

impl WalQueue {
    pub(crate) fn new() -> Arc<WalQueue> {
        Arc::new(WalQueue {
            items: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            failed: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
        })
    }

    pub(crate) fn push(&self, item: WalItem) {
        self.items.lock().push(item);
        self.cv.notify_one();
    }
}

fn io_err(e: &std::io::Error) -> TsdbError {
    TsdbError::Io(std::io::Error::new(e.kind(), e.to_string()))
}

/// Creates segment `seq` (header written and synced, directory synced).
pub(crate) fn create_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    let path = segment_path(dir, seq);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let mut h = Vec::with_capacity(SEG_HEADER_LEN);
    h.extend_from_slice(SEG_MAGIC);
    h.extend_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    f.write_all(&h)?;
    f.sync_all()?;
    crate::manifest::sync_dir(dir)?;
    Ok(f)
}

/// The writer thread's loop: creates segment `seq` (so opening the store does not wait for its
/// fsyncs; the first commit does), then group-commits until [`WalItem::Stop`].
pub(crate) fn writer_loop(q: Arc<WalQueue>, dir: PathBuf, seq: u64) {
    let mut file = match create_segment(&dir, seq) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(error = %e, seq, "cannot create wal segment; writes are refused");
            q.failed.store(true, Ordering::Release);
            None
        }
    };
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut acks: Vec<Ack> = Vec::new();
    let mut stop = false;
    while !stop {
        let items = {
            let mut g = q.items.lock();
            while g.is_empty() {
                q.cv.wait(&mut g);
            }
            std::mem::take(&mut *g)
        };
        for item in items {
            match item {
                WalItem::Record { bytes, ack } => {
                    buf.extend_from_slice(&bytes);
                    if let Some(a) = ack {
                        acks.push(a);
                    }
                }
                WalItem::Rotate { seq, done } => {
                    commit(&q, file.as_mut(), &mut buf, &mut acks);
                    let r = if q.failed.load(Ordering::Acquire) {
                        Err(TsdbError::Io(std::io::Error::other("wal failed earlier")))
                    } else {
                        match create_segment(&dir, seq) {
                            Ok(f) => {
                                file = Some(f);
                                q.bytes.fetch_add(SEG_HEADER_LEN as u64, Ordering::Relaxed);
                                Ok(())
                            }
                            Err(e) => {
                                tracing::error!(error = %e, seq, "cannot create wal segment");
                                q.failed.store(true, Ordering::Release);
                                Err(io_err(&e))
                            }
                        }
                    };
                    let _ = done.send(r);
                }
                WalItem::Stop => stop = true,
            }
        }
        commit(&q, file.as_mut(), &mut buf, &mut acks);
    }
}

/// Writes and syncs `buf`, then acknowledges `acks`.
fn commit(q: &WalQueue, file: Option<&mut File>, buf: &mut Vec<u8>, acks: &mut Vec<Ack>) {
    if buf.is_empty() && acks.is_empty() {
        return;
    }
    let r = match file {
        Some(file) if !q.failed.load(Ordering::Acquire) => {
            file.write_all(buf).and_then(|_| file.sync_data())
        }
        _ => Err(std::io::Error::other("wal failed earlier")),
    };
    match &r {
        Ok(()) => {
            q.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            if !q.failed.swap(true, Ordering::AcqRel) {
                tracing::error!(error = %e, "wal write failed; further writes are refused");
            }
        }
    }
    for a in acks.drain(..) {
        let _ = a.send(r.as_ref().map(|_| ()).map_err(io_err));
    }
    buf.clear();
    if buf.capacity() > 64 << 20 {
        buf.shrink_to(1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Vec<u8> {
        let mut b = Vec::new();
        crate::series::encode_key(&mut b, &key_struct());
        b
    }

    fn key_struct() -> crate::SeriesKey {
        crate::SeriesKey {
            account: "a".into(),
            region: "r".into(),
            namespace: "n".into(),
            metric_name: "m".into(),
            dimensions: vec![("d".into(), "v".into())],
            unit: "None".into(),
        }
    }

    #[test]
    fn records_roundtrip() {
        let mut buf = Vec::new();
        encode_def(&mut buf, 3, true, &key());
        let pts = vec![
            Point {
                ts_ms: -5,
                sample: Sample::Value {
                    value: 1.5,
                    count: 1.0,
                },
            },
            Point {
                ts_ms: 1000,
                sample: Sample::Value {
                    value: 2.0,
                    count: 3.0,
                },
            },
            Point {
                ts_ms: 999,
                sample: Sample::Stats {
                    count: 2.0,
                    sum: 3.0,
                    min: 1.0,
                    max: 2.0,
                },
            },
        ];
        let s = begin_batch(&mut buf, 77, 2);
        encode_series_points(&mut buf, 3, true, &pts);
        encode_series_points(&mut buf, 4, false, &pts[..1]);
        end_record(&mut buf, s);
        let mut c = 0usize;
        let mut seen = Vec::new();
        while c < buf.len() {
            let len = u32::from_le_bytes(buf[c..c + 4].try_into().unwrap()) as usize;
            let payload = &buf[c + 8..c + 8 + len];
            match decode_record(payload).unwrap() {
                WalRecord::Def { sid, hr, key: k } => {
                    assert_eq!((sid, hr, k), (3, true, &key()[..]));
                }
                WalRecord::Batch(b) => {
                    assert_eq!(b.wall_ms, 77);
                    b.for_each(|sid, hr, p| {
                        seen.push((sid, hr, p.to_vec()));
                        Ok(())
                    })
                    .unwrap();
                }
            }
            c += 8 + len;
        }
        assert_eq!(
            seen,
            vec![(3, true, pts.clone()), (4, false, pts[..1].to_vec())]
        );
    }

    #[test]
    fn replay_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = create_segment(dir.path(), 5).unwrap();
        let mut buf = Vec::new();
        for i in 0..10u32 {
            encode_def(&mut buf, i, false, &key());
        }
        let full = buf.len();
        f.write_all(&buf).unwrap();
        f.write_all(&buf[..13]).unwrap(); // a torn eleventh record
        drop(f);
        let path = segment_path(dir.path(), 5);
        let mut n = 0;
        let r = replay_segment(&path, 5, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((n, r.records, r.truncated), (10, 10, true));
        assert_eq!(
            fs::metadata(&path).unwrap().len() as usize,
            SEG_HEADER_LEN + full
        );
        // Clean now: a second replay sees the same ten records and no damage.
        let r = replay_segment(&path, 5, |_| Ok(())).unwrap();
        assert_eq!((r.records, r.truncated), (10, false));
        // A segment whose header is torn is discarded.
        fs::write(segment_path(dir.path(), 6), b"OLWAL").unwrap();
        let r = replay_segment(&segment_path(dir.path(), 6), 6, |_| Ok(())).unwrap();
        assert!(r.truncated && !segment_path(dir.path(), 6).exists());
    }
}
