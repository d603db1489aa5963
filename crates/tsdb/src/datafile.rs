//! Immutable data files: one time window of one tier (raw points or one roll-up period), holding a
//! chunk per series and a series index, written once (to a temporary name, fsynced, renamed) and
//! then only read with positional reads.
//!
//! Layout:
//! ```text
//! header   32 B  "OLTSDAT1" | version u32 | tier u8 | level u8 | 0u16 | window_start i64 | id u64
//! chunks         per series: payload (frame bitstreams or roll-up records) then frame table
//! index  n×60 B  per series, ascending sid: sid u32 | n_frames u32 | n_points u64 | min_ts i64 |
//!                max_ts i64 | offset u64 | payload_len u64 | table_len u32 | payload_crc u32 |
//!                table_crc u32
//! footer  84 B   the file's FileMeta (72 B) | crc32 of it | "OLTSEND1"
//! ```
//! The manifest carries the same [`FileMeta`], so opening the store reads no data file. The index
//! is verified (crc) on first use and then only a sparse fence of every 64th sid is kept in memory.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::bits::{Cursor, Truncated};
use crate::gorilla::ChunkDone;
use crate::TsdbError;

const MAGIC: &[u8; 8] = b"OLTSDAT1";
const END_MAGIC: &[u8; 8] = b"OLTSEND1";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 32;
pub(crate) const ENTRY_LEN: usize = 60;
pub(crate) const META_LEN: usize = 72;
const FENCE: usize = 64;

/// Resolution tier of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Tier {
    Raw = 0,
    R60 = 1,
    R300 = 2,
    R3600 = 3,
}

impl Tier {
    pub(crate) fn from_u8(v: u8) -> Option<Tier> {
        Some(match v {
            0 => Tier::Raw,
            1 => Tier::R60,
            2 => Tier::R300,
            3 => Tier::R3600,
            _ => return None,
        })
    }

    /// Length of the time windows files of this tier cover (nested: each divides the next).
    pub(crate) fn window_ms(self) -> i64 {
        match self {
            Tier::Raw => 2 * 3_600_000,
            Tier::R60 => 86_400_000,
            Tier::R300 => 7 * 86_400_000,
            Tier::R3600 => 28 * 86_400_000,
        }
    }

    /// Roll-up period (0 for raw).
    pub(crate) fn period_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::R60 => 60_000,
            Tier::R300 => 300_000,
            Tier::R3600 => 3_600_000,
        }
    }

    pub(crate) fn window_of(self, ts: i64) -> i64 {
        let w = self.window_ms();
        ts.div_euclid(w).saturating_mul(w)
    }
}

/// What the manifest records about a data file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileMeta {
    pub id: u64,
    pub tier: Tier,
    pub level: u8,
    pub window_start: i64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub n_series: u32,
    /// Series flagged high-resolution when the file was written.
    pub n_hr: u32,
    pub n_points: u64,
    pub bytes: u64,
    pub index_offset: u64,
    pub index_crc: u32,
}

impl FileMeta {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.id.to_le_bytes());
        buf.push(self.tier as u8);
        buf.push(self.level);
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&self.n_hr.to_le_bytes());
        buf.extend_from_slice(&self.window_start.to_le_bytes());
        buf.extend_from_slice(&self.min_ts.to_le_bytes());
        buf.extend_from_slice(&self.max_ts.to_le_bytes());
        buf.extend_from_slice(&self.n_series.to_le_bytes());
        buf.extend_from_slice(&self.index_crc.to_le_bytes());
        buf.extend_from_slice(&self.n_points.to_le_bytes());
        buf.extend_from_slice(&self.bytes.to_le_bytes());
        buf.extend_from_slice(&self.index_offset.to_le_bytes());
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<FileMeta, Truncated> {
        let id = c.u64le()?;
        let tier = Tier::from_u8(c.u8()?).ok_or(Truncated)?;
        let level = c.u8()?;
        c.bytes(2)?;
        let n_hr = c.u32le()?;
        let window_start = c.i64le()?;
        let min_ts = c.i64le()?;
        let max_ts = c.i64le()?;
        let n_series = c.u32le()?;
        let index_crc = c.u32le()?;
        let n_points = c.u64le()?;
        let bytes = c.u64le()?;
        let index_offset = c.u64le()?;
        let index_end = (n_series as u64)
            .checked_mul(ENTRY_LEN as u64)
            .and_then(|l| l.checked_add(index_offset));
        if index_end.is_none_or(|e| e > bytes) || index_offset < HEADER_LEN {
            return Err(Truncated);
        }
        Ok(FileMeta {
            id,
            tier,
            level,
            window_start,
            min_ts,
            max_ts,
            n_series,
            n_hr,
            n_points,
            bytes,
            index_offset,
            index_crc,
        })
    }

    pub(crate) fn file_name(id: u64) -> String {
        format!("{id:016x}.tsd")
    }
}

/// One series' entry in a file's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub sid: u32,
    pub n_frames: u32,
    pub n_points: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub offset: u64,
    pub payload_len: u64,
    pub table_len: u32,
    pub payload_crc: u32,
    pub table_crc: u32,
}

impl IndexEntry {
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.sid.to_le_bytes());
        buf.extend_from_slice(&self.n_frames.to_le_bytes());
        buf.extend_from_slice(&self.n_points.to_le_bytes());
        buf.extend_from_slice(&self.min_ts.to_le_bytes());
        buf.extend_from_slice(&self.max_ts.to_le_bytes());
        buf.extend_from_slice(&self.offset.to_le_bytes());
        buf.extend_from_slice(&self.payload_len.to_le_bytes());
        buf.extend_from_slice(&self.table_len.to_le_bytes());
        buf.extend_from_slice(&self.payload_crc.to_le_bytes());
        buf.extend_from_slice(&self.table_crc.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Result<IndexEntry, Truncated> {
        let mut c = Cursor::new(b);
        Ok(IndexEntry {
            sid: c.u32le()?,
            n_frames: c.u32le()?,
            n_points: c.u64le()?,
            min_ts: c.i64le()?,
            max_ts: c.i64le()?,
            offset: c.u64le()?,
            payload_len: c.u64le()?,
            table_len: c.u32le()?,
            payload_crc: c.u32le()?,
            table_crc: c.u32le()?,
        })
    }

    fn end(&self) -> Option<u64> {
        self.offset
            .checked_add(self.payload_len)?
            .checked_add(self.table_len as u64)
    }
}

/// Writes one data file.
pub(crate) struct FileWriter {
    w: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    pos: u64,
    chunk_start: u64,
    entries: Vec<IndexEntry>,
    meta: FileMeta,
}

impl FileWriter {
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        tier: Tier,
        level: u8,
        window_start: i64,
    ) -> std::io::Result<FileWriter> {
        let path = dir.join(FileMeta::file_name(id));
        let tmp = dir.join(format!("{}.tmp", FileMeta::file_name(id)));
        let mut w = BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
        let mut h = Vec::with_capacity(HEADER_LEN as usize);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.push(tier as u8);
        h.push(level);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&window_start.to_le_bytes());
        h.extend_from_slice(&id.to_le_bytes());
        w.write_all(&h)?;
        Ok(FileWriter {
            w,
            tmp,
            path,
            pos: HEADER_LEN,
            chunk_start: HEADER_LEN,
            entries: Vec::new(),
            meta: FileMeta {
                id,
                tier,
                level,
                window_start,
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                n_series: 0,
                n_hr: 0,
                n_points: 0,
                bytes: 0,
                index_offset: 0,
                index_crc: 0,
            },
        })
    }

    pub(crate) fn begin_chunk(&mut self) {
        self.chunk_start = self.pos;
    }

    pub(crate) fn write_payload(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn push_entry(&mut self, e: IndexEntry) {
        debug_assert!(self.entries.last().is_none_or(|l| l.sid < e.sid));
        self.meta.min_ts = self.meta.min_ts.min(e.min_ts);
        self.meta.max_ts = self.meta.max_ts.max(e.max_ts);
        self.meta.n_points += e.n_points;
        self.entries.push(e);
    }

    /// Ends a raw chunk whose payload was written since [`FileWriter::begin_chunk`].
    pub(crate) fn end_raw_chunk(&mut self, sid: u32, done: &ChunkDone) -> std::io::Result<()> {
        let table_len = u32::try_from(done.table.len()).map_err(std::io::Error::other)?;
        self.w.write_all(&done.table)?;
        self.pos += done.table.len() as u64;
        self.push_entry(IndexEntry {
            sid,
            n_frames: done.n_frames,
            n_points: done.n_points,
            min_ts: done.min_ts,
            max_ts: done.max_ts,
            offset: self.chunk_start,
            payload_len: done.payload_len,
            table_len,
            payload_crc: done.payload_crc,
            table_crc: crc32fast::hash(&done.table),
        });
        Ok(())
    }

    /// Copies an existing chunk verbatim (entry statistics unchanged).
    pub(crate) fn copy_chunk(
        &mut self,
        e: &IndexEntry,
        payload: &[u8],
        table: &[u8],
    ) -> std::io::Result<()> {
        self.begin_chunk();
        self.write_payload(payload)?;
        self.write_payload(table)?;
        self.push_entry(IndexEntry {
            offset: self.chunk_start,
            ..*e
        });
        Ok(())
    }

    /// Writes a roll-up chunk of `n` records.
    pub(crate) fn add_rollup_chunk(
        &mut self,
        sid: u32,
        n: u64,
        min_ts: i64,
        max_ts: i64,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        self.begin_chunk();
        self.write_payload(bytes)?;
        self.push_entry(IndexEntry {
            sid,
            n_frames: 0,
            n_points: n,
            min_ts,
            max_ts,
            offset: self.chunk_start,
            payload_len: bytes.len() as u64,
            table_len: 0,
            payload_crc: crc32fast::hash(bytes),
            table_crc: 0,
        });
        Ok(())
    }

    /// Writes index and footer, fsyncs and renames into place. `None` (and no file) when empty.
    pub(crate) fn finish(mut self, n_hr: u32) -> std::io::Result<Option<FileMeta>> {
        if self.entries.is_empty() {
            drop(self.w);
            let _ = fs::remove_file(&self.tmp);
            return Ok(None);
        }
        let mut idx = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            e.encode(&mut idx);
        }
        self.meta.index_offset = self.pos;
        self.meta.index_crc = crc32fast::hash(&idx);
        self.meta.n_series = self.entries.len() as u32;
        self.meta.n_hr = n_hr;
        self.w.write_all(&idx)?;
        self.pos += idx.len() as u64;
        self.meta.bytes = self.pos + (META_LEN + 12) as u64;
        let mut footer = Vec::with_capacity(META_LEN + 12);
        self.meta.encode(&mut footer);
        let crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&crc.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.w.write_all(&footer)?;
        let f = self.w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.path)?;
        Ok(Some(self.meta))
    }

    /// Discards the partial file.
    pub(crate) fn abort(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = fs::remove_file(tmp);
    }
}

/// A data file open for reading. Files replaced by compaction are marked obsolete and deleted when
/// the last reader lets go.
pub(crate) struct DataFile {
    pub meta: FileMeta,
    path: PathBuf,
    file: OnceLock<File>,
    fences: OnceLock<Vec<u32>>,
    obsolete: AtomicBool,
}

fn corrupt(path: &Path, what: &str) -> TsdbError {
    TsdbError::Corrupt(format!("{}: {what}", path.display()))
}

impl DataFile {
    pub(crate) fn new(dir: &Path, meta: FileMeta) -> DataFile {
        DataFile {
            path: dir.join(FileMeta::file_name(meta.id)),
            meta,
            file: OnceLock::new(),
            fences: OnceLock::new(),
            obsolete: AtomicBool::new(false),
        }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Result<&File, TsdbError> {
        if let Some(f) = self.file.get() {
            return Ok(f);
        }
        let f = File::open(&self.path)?;
        let len = f.metadata()?.len();
        if len < self.meta.bytes {
            return Err(corrupt(&self.path, "shorter than the manifest says"));
        }
        let _ = self.file.set(f);
        self.file
            .get()
            .ok_or_else(|| corrupt(&self.path, "cannot open"))
    }

    fn read_at(&self, off: u64, len: u64) -> Result<Vec<u8>, TsdbError> {
        let end = off
            .checked_add(len)
            .ok_or_else(|| corrupt(&self.path, "bad extent"))?;
        if off < HEADER_LEN || end > self.meta.index_offset {
            return Err(corrupt(&self.path, "extent outside the file"));
        }
        let mut buf = vec![0u8; len as usize];
        self.file()?.read_exact_at(&mut buf, off)?;
        Ok(buf)
    }

    fn read_index(&self) -> Result<Vec<u8>, TsdbError> {
        let len = self.meta.n_series as u64 * ENTRY_LEN as u64;
        let mut buf = vec![0u8; len as usize];
        self.file()?
            .read_exact_at(&mut buf, self.meta.index_offset)?;
        if crc32fast::hash(&buf) != self.meta.index_crc {
            return Err(corrupt(&self.path, "index checksum mismatch"));
        }
        Ok(buf)
    }

    fn check_entry(&self, e: &IndexEntry) -> Result<(), TsdbError> {
        if e.offset < HEADER_LEN || e.end().is_none_or(|end| end > self.meta.index_offset) {
            return Err(corrupt(
                &self.path,
                "index entry points outside the chunk area",
            ));
        }
        Ok(())
    }

    /// All index entries, ascending by sid (for compaction).
    pub(crate) fn entries(&self) -> Result<Vec<IndexEntry>, TsdbError> {
        let buf = self.read_index()?;
        let mut out = Vec::with_capacity(self.meta.n_series as usize);
        for b in buf.chunks_exact(ENTRY_LEN) {
            let e = IndexEntry::decode(b)?;
            self.check_entry(&e)?;
            if out.last().is_some_and(|l: &IndexEntry| l.sid >= e.sid) {
                return Err(corrupt(&self.path, "index not sorted"));
            }
            out.push(e);
        }
        Ok(out)
    }

    fn fences(&self) -> Result<&[u32], TsdbError> {
        if let Some(f) = self.fences.get() {
            return Ok(f);
        }
        let all = self.entries()?;
        let fences: Vec<u32> = all.iter().step_by(FENCE).map(|e| e.sid).collect();
        let _ = self.fences.set(fences);
        self.fences
            .get()
            .map(|v| v.as_slice())
            .ok_or_else(|| corrupt(&self.path, "fences"))
    }

    /// The index entry of `sid`, if the file holds it.
    pub(crate) fn lookup(&self, sid: u32) -> Result<Option<IndexEntry>, TsdbError> {
        let fences = self.fences()?;
        let block = match fences.binary_search(&sid) {
            Ok(i) => i,
            Err(0) => return Ok(None),
            Err(i) => i - 1,
        };
        let first = block * FENCE;
        let n = FENCE.min(self.meta.n_series as usize - first);
        let mut buf = vec![0u8; n * ENTRY_LEN];
        self.file()?.read_exact_at(
            &mut buf,
            self.meta.index_offset + (first * ENTRY_LEN) as u64,
        )?;
        let mut lo = 0usize;
        let mut hi = n;
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = IndexEntry::decode(&buf[mid * ENTRY_LEN..(mid + 1) * ENTRY_LEN])?;
            match e.sid.cmp(&sid) {
                std::cmp::Ordering::Equal => {
                    self.check_entry(&e)?;
                    return Ok(Some(e));
                }
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    pub(crate) fn read_table(&self, e: &IndexEntry) -> Result<Vec<u8>, TsdbError> {
        let b = self.read_at(e.offset + e.payload_len, e.table_len as u64)?;
        if crc32fast::hash(&b) != e.table_crc {
            return Err(corrupt(&self.path, "frame table checksum mismatch"));
        }
        Ok(b)
    }

    pub(crate) fn read_payload(&self, e: &IndexEntry) -> Result<Vec<u8>, TsdbError> {
        let b = self.read_at(e.offset, e.payload_len)?;
        if crc32fast::hash(&b) != e.payload_crc {
            return Err(corrupt(&self.path, "chunk checksum mismatch"));
        }
        Ok(b)
    }

    /// Schedules deletion for when the last reader drops this file.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Err(e) = fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot delete obsolete data file");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gorilla::{parse_table, ChunkBuilder};
    use crate::{Point, Sample};

    #[test]
    fn write_then_lookup_many_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FileWriter::create(dir.path(), 7, Tier::Raw, 0, 0).unwrap();
        let mut cb = ChunkBuilder::new();
        for sid in (0..500u32).map(|s| s * 3) {
            w.begin_chunk();
            for i in 0..10 {
                cb.push(Point {
                    ts_ms: i * 1000 + sid as i64,
                    sample: Sample::Value {
                        value: sid as f64,
                        count: 1.0,
                    },
                });
            }
            let done = cb.finish();
            w.write_payload(&std::mem::take(&mut cb.payload)).unwrap();
            w.end_raw_chunk(sid, &done).unwrap();
        }
        let meta = w.finish(2).unwrap().unwrap();
        assert_eq!(meta.n_series, 500);
        assert_eq!(meta.n_points, 5000);
        assert_eq!(
            meta.bytes,
            std::fs::metadata(dir.path().join(FileMeta::file_name(7)))
                .unwrap()
                .len()
        );
        let f = DataFile::new(dir.path(), meta.clone());
        for sid in 0..1500u32 {
            let e = f.lookup(sid).unwrap();
            assert_eq!(e.is_some(), sid % 3 == 0, "sid {sid}");
            if let Some(e) = e {
                let t = f.read_table(&e).unwrap();
                let p = f.read_payload(&e).unwrap();
                let frames = parse_table(&t, e.n_frames, p.len()).unwrap();
                assert_eq!(frames[0].sum, sid as f64 * 10.0);
            }
        }
        let mut buf = Vec::new();
        meta.encode(&mut buf);
        assert_eq!(buf.len(), META_LEN);
        assert_eq!(FileMeta::decode(&mut Cursor::new(&buf)).unwrap(), meta);
    }

    #[test]
    fn corrupted_index_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FileWriter::create(dir.path(), 1, Tier::R60, 0, 0).unwrap();
        w.add_rollup_chunk(4, 1, 0, 0, b"abc").unwrap();
        let meta = w.finish(0).unwrap().unwrap();
        let path = dir.path().join(FileMeta::file_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[meta.index_offset as usize + 2] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let f = DataFile::new(dir.path(), meta);
        assert!(matches!(f.lookup(4), Err(TsdbError::Corrupt(_))));
    }

    #[test]
    fn obsolete_file_is_deleted_on_last_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FileWriter::create(dir.path(), 2, Tier::R60, 0, 0).unwrap();
        w.add_rollup_chunk(1, 1, 0, 0, b"x").unwrap();
        let meta = w.finish(0).unwrap().unwrap();
        let f = std::sync::Arc::new(DataFile::new(dir.path(), meta));
        let reader = f.clone();
        f.mark_obsolete();
        drop(f);
        assert!(reader.path().exists());
        assert!(reader.lookup(1).unwrap().is_some());
        let path = reader.path().to_path_buf();
        drop(reader);
        assert!(!path.exists());
    }
}
