//! Immutable segment files: the events of one log group and one hour partition, sorted by
//! (timestamp, sequence), cut into blocks of at most [`BLOCK_BYTES`] of message text, each block
//! lz4-compressed with a CRC and a (count, min, max timestamp) header so a scan can skip blocks
//! outside its window without decompressing them.
//!
//! Layout: `MAGIC`, then per block `[count u32][min_ts i64][max_ts i64][clen u32][crc u32][clen bytes]`.
//! Files are written to a temporary name, fsynced and renamed, so a segment is either whole or absent.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::columns::Columns;
use super::StorageError;

const MAGIC: &[u8; 8] = b"OLLOGSG1";
const HEADER: usize = 4 + 8 + 8 + 4 + 4;
/// Target uncompressed message bytes per block.
pub const BLOCK_BYTES: usize = 1 << 20;
/// Most events per block.
pub const BLOCK_EVENTS: usize = 16_384;

/// Where a block sits in its file and what it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockMeta {
    pub offset: u64,
    pub clen: u32,
    pub crc: u32,
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// An open segment: its path and block index (data is read on demand).
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub blocks: Vec<BlockMeta>,
    pub bytes: u64,
}

impl Segment {
    /// Write `cols` (any order) as a new segment at `path`.
    pub fn write(path: &Path, cols: &Columns) -> Result<Segment, StorageError> {
        let mut order: Vec<usize> = (0..cols.len()).collect();
        order.sort_by_key(|&i| (cols.ts[i], cols.seq[i]));
        let mut out = Vec::with_capacity(cols.text.len() / 2 + 64);
        out.extend_from_slice(MAGIC);
        let mut blocks = Vec::new();
        let mut block = Columns::default();
        let mut raw = Vec::new();
        let mut flush = |block: &mut Columns, out: &mut Vec<u8>| {
            if block.is_empty() {
                return;
            }
            raw.clear();
            block.encode(&mut raw);
            let compressed = lz4_flex::compress_prepend_size(&raw);
            let (min_ts, max_ts) = block.ts_range().unwrap_or((0, 0));
            let meta = BlockMeta {
                offset: out.len() as u64,
                clen: compressed.len() as u32,
                crc: crc32fast::hash(&compressed),
                count: block.len() as u32,
                min_ts,
                max_ts,
            };
            out.extend_from_slice(&meta.count.to_le_bytes());
            out.extend_from_slice(&meta.min_ts.to_le_bytes());
            out.extend_from_slice(&meta.max_ts.to_le_bytes());
            out.extend_from_slice(&meta.clen.to_le_bytes());
            out.extend_from_slice(&meta.crc.to_le_bytes());
            out.extend_from_slice(&compressed);
            blocks.push(meta);
            block.clear();
        };
        for i in order {
            block.push_from(cols, i);
            if block.text.len() >= BLOCK_BYTES || block.len() >= BLOCK_EVENTS {
                flush(&mut block, &mut out);
            }
        }
        flush(&mut block, &mut out);
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            sync_dir(parent);
        }
        Ok(Segment {
            path: path.to_path_buf(),
            blocks,
            bytes: out.len() as u64,
        })
    }

    /// Open an existing segment, reading only its block headers.
    pub fn open(path: &Path) -> Result<Segment, StorageError> {
        let data = fs::read(path)?;
        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            return Err(StorageError::Corrupt("segment magic"));
        }
        let mut blocks = Vec::new();
        let mut off = MAGIC.len();
        while off < data.len() {
            let h = data
                .get(off..off + HEADER)
                .ok_or(StorageError::Corrupt("segment block header"))?;
            let count = u32::from_le_bytes(h[0..4].try_into().unwrap_or([0; 4]));
            let min_ts = i64::from_le_bytes(h[4..12].try_into().unwrap_or([0; 8]));
            let max_ts = i64::from_le_bytes(h[12..20].try_into().unwrap_or([0; 8]));
            let clen = u32::from_le_bytes(h[20..24].try_into().unwrap_or([0; 4]));
            let crc = u32::from_le_bytes(h[24..28].try_into().unwrap_or([0; 4]));
            let start = off + HEADER;
            if start + clen as usize > data.len() {
                return Err(StorageError::Corrupt("segment block truncated"));
            }
            blocks.push(BlockMeta {
                offset: off as u64,
                clen,
                crc,
                count,
                min_ts,
                max_ts,
            });
            off = start + clen as usize;
        }
        Ok(Segment {
            path: path.to_path_buf(),
            blocks,
            bytes: data.len() as u64,
        })
    }

    /// Decode every block overlapping `[start, end)` into `cols` (reused) and hand it to `f`.
    /// Returns false when `f` asked to stop.
    pub fn scan(
        &self,
        start: i64,
        end: i64,
        cols: &mut Columns,
        raw: &mut Vec<u8>,
        f: &mut dyn FnMut(&Columns) -> bool,
    ) -> Result<bool, StorageError> {
        if !self
            .blocks
            .iter()
            .any(|b| b.max_ts >= start && b.min_ts < end)
        {
            return Ok(true);
        }
        let data = fs::read(&self.path)?;
        for b in &self.blocks {
            if b.max_ts < start || b.min_ts >= end {
                continue;
            }
            let at = b.offset as usize + HEADER;
            let payload = data
                .get(at..at + b.clen as usize)
                .ok_or(StorageError::Corrupt("segment block truncated"))?;
            if crc32fast::hash(payload) != b.crc {
                return Err(StorageError::Corrupt("segment block checksum"));
            }
            decompress_into(payload, raw)?;
            cols.decode_into(raw)?;
            if !f(cols) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Decompress a size-prefixed lz4 payload into `raw`, reusing its allocation.
fn decompress_into(payload: &[u8], raw: &mut Vec<u8>) -> Result<(), StorageError> {
    let size = payload
        .get(..4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or(StorageError::Corrupt("lz4 size"))?;
    if size > 1 << 30 {
        return Err(StorageError::Corrupt("lz4 size"));
    }
    raw.clear();
    raw.resize(size, 0);
    let n = lz4_flex::decompress_into(&payload[4..], raw)
        .map_err(|_| StorageError::Corrupt("lz4 block"))?;
    raw.truncate(n);
    Ok(())
}

/// fsync a directory so a rename or unlink in it is durable (best effort).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_open_scan_sorted_and_windowed() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Columns::default();
        for i in (0..40_000i64).rev() {
            c.push(
                i,
                i + 1,
                i as u64,
                (i % 3) as u32,
                format!("line {i} ERROR").as_bytes(),
            );
        }
        let path = dir.path().join("a.seg");
        let written = Segment::write(&path, &c).unwrap();
        assert!(written.blocks.len() >= 3);
        let seg = Segment::open(&path).unwrap();
        assert_eq!(seg.blocks, written.blocks);
        let (mut cols, mut raw) = (Columns::default(), Vec::new());
        let mut seen = Vec::new();
        seg.scan(100, 20_000, &mut cols, &mut raw, &mut |b| {
            for i in 0..b.len() {
                if b.ts[i] >= 100 && b.ts[i] < 20_000 {
                    seen.push((b.ts[i], String::from_utf8_lossy(b.message(i)).into_owned()));
                }
            }
            true
        })
        .unwrap();
        assert_eq!(seen.len(), 19_900);
        assert_eq!(seen[0], (100, "line 100 ERROR".to_string()));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn corrupt_block_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Columns::default();
        c.push(1, 1, 1, 1, b"some message text");
        let path = dir.path().join("b.seg");
        Segment::write(&path, &c).unwrap();
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let seg = Segment::open(&path).unwrap();
        let (mut cols, mut raw) = (Columns::default(), Vec::new());
        assert!(seg.scan(0, 10, &mut cols, &mut raw, &mut |_| true).is_err());
    }
}
