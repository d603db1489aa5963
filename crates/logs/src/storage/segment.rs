//! Immutable segment files: the events of one log group and one hour partition, sorted by
//! (timestamp, sequence), cut into blocks of at most [`BLOCK_BYTES`] of message text, each block
//! lz4-compressed with a CRC and a (count, min, max timestamp) header so a scan can skip blocks
//! outside its window without decompressing them.
//!
//! Layout: a magic naming the format, then per block `[count u32][min_ts i64][max_ts i64][clen u32]
//! [crc u32][clen bytes]`. Format 1 (`OLLOGSG1`, still read): the payload is the lz4 (size-prefixed)
//! of the block's [`Columns::encode`]. Format 2 (`OLLOGSG2`, still read): the payload is
//! `[alen u32][A: alen bytes][B]`, A and B the lz4 (size-prefixed) of the two parts of
//! [`Columns::encode_split`]: A holds the stream ids, message ends and text, B the timestamps,
//! ingestion times and sequence numbers, so a count over blocks wholly inside its window
//! decompresses A only. Format 3 (`OLLOGSG3`, written now): `[alen u32][A][blen u32][B][T]`, A
//! and B as in format 2 but A without the text ([`Columns::encode_head`]); T holds the text as
//! granules with bloom filters ([`super::granules`]), so a search for a literal decodes only the
//! granules that may hold it. The CRC covers the whole payload.
//! Files are written to a temporary name, fsynced and renamed, so a segment is either whole or absent.
//! A segment covers a range of segment numbers of its partition (`N.seg` covers `N..=N`, a merged
//! `A-B.seg` covers `A..=B`, see [`super::compact`]). A segment replaced by a merge is marked
//! obsolete and its file is removed when the last scan holding it lets go.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::columns::{self, Columns, Lean};
use super::granules::{self, Granules, Probe};
use super::StorageError;

const MAGIC_V1: &[u8; 8] = b"OLLOGSG1";
const MAGIC_V2: &[u8; 8] = b"OLLOGSG2";
const MAGIC: &[u8; 8] = b"OLLOGSG3";
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

/// An open segment: its path, the segment numbers it covers and its block index (data is read on
/// demand).
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub blocks: Vec<BlockMeta>,
    pub bytes: u64,
    /// Segment numbers covered, inclusive.
    pub first: u32,
    pub last: u32,
    /// Set once a merged segment replaced this one: the file goes when the last holder drops it.
    obsolete: AtomicBool,
    /// Set when a rewrite with the skip index failed.
    unindexable: AtomicBool,
    /// The file's format (1, 2 or 3, see the module docs).
    format: u8,
}

/// The file name of a segment covering `first..=last`.
pub fn file_name(first: u32, last: u32) -> String {
    if first == last {
        format!("{first:08}.seg")
    } else {
        format!("{first:08}-{last:08}.seg")
    }
}

/// Name of the skip-indexed rewrite of segment `first..=last` (`N.i.seg` or `A-B.i.seg`): a name
/// of its own, so the original stays readable by scans that hold it until it is retired, and
/// recovery can tell the two apart (the rewrite wins).
pub fn indexed_file_name(first: u32, last: u32) -> String {
    let plain = file_name(first, last);
    format!("{}.i.seg", plain.trim_end_matches(".seg"))
}

/// Whether a segment file name stem is that of an indexed rewrite (see [`indexed_file_name`]).
pub fn is_indexed_stem(stem: &str) -> bool {
    stem.ends_with(".i")
}

/// The numbers covered by a segment file name stem (`N` or `A-B`, either with an `.i` suffix).
pub fn parse_stem(stem: &str) -> Option<(u32, u32)> {
    let stem = stem.strip_suffix(".i").unwrap_or(stem);
    match stem.split_once('-') {
        None => stem.parse().ok().map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
    }
}

/// Writes a segment block by block (events must arrive sorted by (timestamp, sequence)) to a
/// temporary file; [`SegmentWriter::finish`] fsyncs and renames it into place.
pub struct SegmentWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<File>,
    block: Columns,
    /// Whether blocks are written in format 3 (granules with bloom filters) rather than 2.
    granules: bool,
    blocks: Vec<BlockMeta>,
    off: u64,
}

/// One block's payload (see the module docs) and its header fields.
struct Encoded {
    payload: Vec<u8>,
    count: u32,
    min_ts: i64,
    max_ts: i64,
}

fn encode_block(block: &Columns, granules: bool) -> Result<Encoded, StorageError> {
    let (mut raw, mut rest) = (Vec::new(), Vec::new());
    if !granules {
        // format 2: [alen][lz4 of ids, ends and text][lz4 of timestamps, ingestion times, seqs]
        block.encode_split(&mut raw, &mut rest);
        let mut compressed = Vec::with_capacity(4 + raw.len() / 2 + rest.len() / 2);
        compressed.extend_from_slice(&[0; 4]);
        let alen = compress_append(&raw, &mut compressed)?;
        compressed[..4].copy_from_slice(&(alen as u32).to_le_bytes());
        compress_append(&rest, &mut compressed)?;
        let (min_ts, max_ts) = block.ts_range().unwrap_or((0, 0));
        return Ok(Encoded {
            payload: compressed,
            count: block.len() as u32,
            min_ts,
            max_ts,
        });
    }
    block.encode_head(&mut raw, &mut rest);
    let mut compressed =
        Vec::with_capacity(8 + raw.len() / 2 + rest.len() / 2 + block.text.len() * 2 / 3);
    compressed.extend_from_slice(&[0; 4]);
    let alen = compress_append(&raw, &mut compressed)?;
    compressed[..4].copy_from_slice(&(alen as u32).to_le_bytes());
    let at = compressed.len();
    compressed.extend_from_slice(&[0; 4]);
    let blen = compress_append(&rest, &mut compressed)?;
    compressed[at..at + 4].copy_from_slice(&(blen as u32).to_le_bytes());
    granules::encode(&block.text, &block.ends, &mut compressed)?;
    let (min_ts, max_ts) = block.ts_range().unwrap_or((0, 0));
    Ok(Encoded {
        payload: compressed,
        count: block.len() as u32,
        min_ts,
        max_ts,
    })
}

impl SegmentWriter {
    /// Start writing `path`, in format 3 (granules with bloom filters: literal searches skip
    /// text) when `granules`, else in format 2 (cheaper to write, faster to decode whole).
    pub fn create(path: &Path, granules: bool) -> Result<SegmentWriter, StorageError> {
        let tmp = path.with_extension("tmp");
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        file.write_all(if granules { MAGIC } else { MAGIC_V2 })?;
        Ok(SegmentWriter {
            path: path.to_path_buf(),
            tmp,
            file,
            block: Columns::default(),
            granules,
            blocks: Vec::new(),
            off: MAGIC.len() as u64,
        })
    }

    /// Append event `i` of `cols`.
    pub fn push_from(&mut self, cols: &Columns, i: usize) -> Result<(), StorageError> {
        self.block.push_from(cols, i);
        if self.block.text.len() >= BLOCK_BYTES || self.block.len() >= BLOCK_EVENTS {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Encode the current block and write it out.
    fn flush_block(&mut self) -> Result<(), StorageError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let encoded = encode_block(&self.block, self.granules)?;
        self.write_encoded(encoded)?;
        self.block.clear();
        Ok(())
    }

    fn write_encoded(&mut self, e: Encoded) -> Result<(), StorageError> {
        let compressed = e.payload;
        let meta = BlockMeta {
            offset: self.off,
            clen: compressed.len() as u32,
            crc: crc32fast::hash(&compressed),
            count: e.count,
            min_ts: e.min_ts,
            max_ts: e.max_ts,
        };
        let f = &mut self.file;
        f.write_all(&meta.count.to_le_bytes())?;
        f.write_all(&meta.min_ts.to_le_bytes())?;
        f.write_all(&meta.max_ts.to_le_bytes())?;
        f.write_all(&meta.clen.to_le_bytes())?;
        f.write_all(&meta.crc.to_le_bytes())?;
        f.write_all(&compressed)?;
        self.off += (HEADER + compressed.len()) as u64;
        self.blocks.push(meta);
        Ok(())
    }

    /// Write the temporary file out and fsync it, without renaming it into place yet.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.flush_block()?;
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        Ok(())
    }

    /// The temporary file's path.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Sync, rename into place (then the directory is synced) and open the result.
    pub fn finish(mut self, first: u32, last: u32) -> Result<Segment, StorageError> {
        self.sync()?;
        fs::rename(&self.tmp, &self.path)?;
        if let Some(parent) = self.path.parent() {
            sync_dir(parent);
        }
        Ok(Segment {
            path: self.path,
            blocks: self.blocks,
            bytes: self.off,
            first,
            last,
            obsolete: AtomicBool::new(false),
            unindexable: AtomicBool::new(false),
            format: if self.granules { 3 } else { 2 },
        })
    }

    /// Remove the temporary file (an abandoned write).
    pub fn discard(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Segment {
    /// Write `cols` (any order) as a new segment at `path` covering `first..=last`, in format 3
    /// when `granules` (see [`SegmentWriter::create`]).
    pub fn write(
        path: &Path,
        cols: &Columns,
        first: u32,
        last: u32,
        granules: bool,
    ) -> Result<Segment, StorageError> {
        let mut order: Vec<usize> = (0..cols.len()).collect();
        order.sort_by_key(|&i| (cols.ts[i], cols.seq[i]));
        let mut w = SegmentWriter::create(path, granules)?;
        for i in order {
            w.push_from(cols, i)?;
        }
        w.finish(first, last)
    }

    /// Open an existing segment, reading only its magic and block headers (one small read per
    /// block, so opening a store does not read its data). The numbers it covers come from its
    /// name.
    pub fn open(path: &Path) -> Result<Segment, StorageError> {
        let (first, last) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(parse_stem)
            .ok_or(StorageError::Corrupt("segment file name"))?;
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut magic = [0u8; MAGIC.len()];
        if len < magic.len() as u64 {
            return Err(StorageError::Corrupt("segment magic"));
        }
        file.read_exact_at(&mut magic, 0)?;
        let format = match &magic {
            m if m == MAGIC => 3,
            m if m == MAGIC_V2 => 2,
            m if m == MAGIC_V1 => 1,
            _ => return Err(StorageError::Corrupt("segment magic")),
        };
        let mut blocks = Vec::new();
        let mut off = MAGIC.len() as u64;
        let mut h = [0u8; HEADER];
        while off < len {
            if off + HEADER as u64 > len {
                return Err(StorageError::Corrupt("segment block header"));
            }
            file.read_exact_at(&mut h, off)?;
            let count = u32::from_le_bytes(h[0..4].try_into().unwrap_or([0; 4]));
            let min_ts = i64::from_le_bytes(h[4..12].try_into().unwrap_or([0; 8]));
            let max_ts = i64::from_le_bytes(h[12..20].try_into().unwrap_or([0; 8]));
            let clen = u32::from_le_bytes(h[20..24].try_into().unwrap_or([0; 4]));
            let crc = u32::from_le_bytes(h[24..28].try_into().unwrap_or([0; 4]));
            let start = off + HEADER as u64;
            if start + u64::from(clen) > len {
                return Err(StorageError::Corrupt("segment block truncated"));
            }
            blocks.push(BlockMeta {
                offset: off,
                clen,
                crc,
                count,
                min_ts,
                max_ts,
            });
            off = start + u64::from(clen);
        }
        Ok(Segment {
            path: path.to_path_buf(),
            blocks,
            bytes: len,
            first,
            last,
            obsolete: AtomicBool::new(false),
            unindexable: AtomicBool::new(false),
            format,
        })
    }

    /// The file's format: 1, 2, or 3 (with the skip index).
    pub fn format(&self) -> u8 {
        self.format
    }

    /// Whether a merged segment replaced this one.
    pub fn is_retired(&self) -> bool {
        self.obsolete.load(Ordering::SeqCst)
    }

    /// Whether the idle indexer still has to rewrite this segment with the skip index: a live
    /// format-1/2 segment whose rewrite has not failed.
    pub fn awaits_index(&self) -> bool {
        self.format < 3 && !self.is_retired() && !self.unindexable.load(Ordering::Relaxed)
    }

    /// Note that rewriting this segment failed (it is not tried again).
    pub fn mark_unindexable(&self) {
        self.unindexable.store(true, Ordering::Relaxed);
    }

    /// Events stored.
    pub fn events(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.count)).sum()
    }

    /// Mark replaced: the file is removed when the last `Arc` to this segment is dropped.
    pub fn retire(&self) {
        self.obsolete.store(true, Ordering::SeqCst);
    }

    /// Decode every block overlapping `[start, end)` into `cols` (reused) and hand it to `f`.
    /// Returns false when `f` asked to stop. A file removed meanwhile (its partition expired or
    /// its group was deleted) reads as empty.
    pub fn scan(
        &self,
        start: i64,
        end: i64,
        probe: Option<&Probe>,
        cols: &mut Columns,
        raw: &mut Vec<u8>,
        f: &mut dyn FnMut(&Columns) -> bool,
    ) -> Result<bool, StorageError> {
        let wanted = |b: &BlockMeta| b.max_ts >= start && b.min_ts < end;
        let (Some(lo), Some(hi)) = (
            self.blocks.iter().position(wanted),
            self.blocks.iter().rposition(wanted),
        ) else {
            return Ok(true);
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        // read the span of wanted blocks (a few MiB at a time) and decode them in order
        let mut data = Vec::new();
        let mut i = lo;
        while i <= hi {
            let from = self.blocks[i].offset;
            let mut j = i;
            let mut to = from + (HEADER as u64) + u64::from(self.blocks[i].clen);
            while j < hi && to - from < (8 << 20) {
                j += 1;
                to = self.blocks[j].offset + (HEADER as u64) + u64::from(self.blocks[j].clen);
            }
            data.resize((to - from) as usize, 0);
            file.read_exact_at(&mut data, from)
                .map_err(|_| StorageError::Corrupt("segment block truncated"))?;
            for b in &self.blocks[i..=j] {
                if !wanted(b) {
                    continue;
                }
                let at = (b.offset - from) as usize + HEADER;
                let payload = data
                    .get(at..at + b.clen as usize)
                    .ok_or(StorageError::Corrupt("segment block truncated"))?;
                if crc32fast::hash(payload) != b.crc {
                    return Err(StorageError::Corrupt("segment block checksum"));
                }
                self.decode(payload, probe, cols, raw)?;
                if !f(cols) {
                    return Ok(false);
                }
            }
            i = j + 1;
        }
        Ok(true)
    }
}

impl Segment {
    /// Decode block `k` into `cols` reading from `file` (this segment's file, opened by the caller).
    /// Read block `k`'s compressed bytes into `buf` and check its CRC.
    fn read_checked(&self, file: &File, k: usize, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        let b = self
            .blocks
            .get(k)
            .ok_or(StorageError::Corrupt("segment block index"))?;
        buf.resize(b.clen as usize, 0);
        file.read_exact_at(buf, b.offset + HEADER as u64)
            .map_err(|_| StorageError::Corrupt("segment block truncated"))?;
        if crc32fast::hash(buf) != b.crc {
            return Err(StorageError::Corrupt("segment block checksum"));
        }
        Ok(())
    }

    /// With a `probe`, format-3 granules that cannot hold its literal are left zeroed (see
    /// [`super::PartSnap::scan_probed`]).
    pub fn read_block(
        &self,
        file: &File,
        k: usize,
        probe: Option<&Probe>,
        cols: &mut Columns,
        buf: &mut Vec<u8>,
        raw: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        self.read_checked(file, k, buf)?;
        self.decode(buf, probe, cols, raw)
    }

    /// Decode a checked block payload into `cols`, decompressing into `raw` (reused).
    fn decode(
        &self,
        payload: &[u8],
        probe: Option<&Probe>,
        cols: &mut Columns,
        raw: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        if self.format == 1 {
            decompress_into(payload, raw)?;
            return cols.decode_into(raw);
        }
        if self.format == 3 {
            let (head, rest, text_at) = split_payload3(payload)?;
            decompress_into(head, raw)?;
            columns::undelta_head(raw)?;
            let mut g = Granules::default();
            let n = raw
                .get(..4)
                .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
            g.parse(payload, text_at, n)?;
            g.decode_some(payload, probe, raw)?;
            let at = raw.len();
            decompress_append(rest, raw)?;
            columns::undelta_rest(&mut raw[at..], 3)?;
            let (lean, rest) = raw.split_at(at);
            return cols.decode_split(lean, rest);
        }
        let (lean, rest) = split_payload(payload)?;
        let at = decompress_into(lean, raw)?;
        decompress_append(rest, raw)?;
        let (lean, rest) = raw.split_at(at);
        cols.decode_split(lean, rest)
    }

    /// Decode block `k` into `lean` (timestamps only if `with_ts`) reading from `file`.
    pub fn read_lean(
        &self,
        file: &File,
        k: usize,
        lean: &mut Lean,
        buf: &mut Vec<u8>,
        with_ts: bool,
    ) -> Result<(), StorageError> {
        self.read_checked(file, k, buf)?;
        if self.format == 1 {
            decompress_into(buf, &mut lean.raw)?;
            return lean.decode(with_ts);
        }
        if self.format == 3 {
            let (head, rest, text_at) = split_payload3(buf)?;
            decompress_into(head, &mut lean.raw)?;
            columns::undelta_head(&mut lean.raw)?;
            if with_ts {
                decompress_into(rest, &mut lean.rest)?;
                columns::undelta_rest(&mut lean.rest, 1)?;
            }
            // the payload stays with the granules (decoded on demand); `buf` takes their old one
            std::mem::swap(buf, &mut lean.packed);
            let n = lean
                .raw
                .get(..4)
                .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
            let text = lean.granules.parse(&lean.packed, text_at, n)?;
            return lean.decode_lazy(with_ts, text);
        }
        let (a, b) = split_payload(buf)?;
        decompress_into(a, &mut lean.raw)?;
        if with_ts {
            decompress_into(b, &mut lean.rest)?;
        }
        lean.decode_split(with_ts)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::SeqCst) {
            if let Err(e) = fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a merged segment");
                }
            }
        }
    }
}
/// The two compressed parts of a format-2 block payload.
fn split_payload(payload: &[u8]) -> Result<(&[u8], &[u8]), StorageError> {
    let alen = payload
        .get(..4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or(StorageError::Corrupt("block parts"))?;
    let rest = &payload[4..];
    if alen > rest.len() {
        return Err(StorageError::Corrupt("block parts"));
    }
    Ok(rest.split_at(alen))
}

/// The three parts of a format-3 block payload `[alen u32][A][blen u32][B][text section]`: A
/// (the compressed columns without text), B (the compressed timestamps, ingestion times and
/// sequence numbers) and where the text section ([`granules`]) starts.
fn split_payload3(payload: &[u8]) -> Result<(&[u8], &[u8], usize), StorageError> {
    let bad = || StorageError::Corrupt("block parts");
    let len_at = |at: usize| {
        payload
            .get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
            .ok_or_else(bad)
    };
    let alen = len_at(0)?;
    let b_at = 4usize.checked_add(alen).ok_or_else(bad)?;
    let blen = len_at(b_at)?;
    let t_at = (b_at + 4).checked_add(blen).ok_or_else(bad)?;
    if t_at > payload.len() {
        return Err(bad());
    }
    Ok((&payload[4..b_at], &payload[b_at + 4..t_at], t_at))
}

/// Decompress a size-prefixed lz4 payload into `raw`, reusing its allocation; returns its length.
fn decompress_into(payload: &[u8], raw: &mut Vec<u8>) -> Result<usize, StorageError> {
    decompress_at(payload, raw, 0)
}

/// Decompress a size-prefixed lz4 payload onto the end of `raw`.
fn decompress_append(payload: &[u8], raw: &mut Vec<u8>) -> Result<usize, StorageError> {
    let at = raw.len();
    decompress_at(payload, raw, at)
}

/// Decompress a size-prefixed lz4 payload into `raw[at..]`, leaving `raw` `at` + its size long.
/// The decoder is liblz4's `LZ4_decompress_safe` (through the `lz4` crate), which never reads or
/// writes outside the slices it is given and reports malformed input as an error.
fn decompress_at(payload: &[u8], raw: &mut Vec<u8>, at: usize) -> Result<usize, StorageError> {
    let size = payload
        .get(..4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or(StorageError::Corrupt("lz4 size"))?;
    if size > 1 << 30 {
        return Err(StorageError::Corrupt("lz4 size"));
    }
    // no clear(): resizing a reused buffer zeroes only the part that grows (the decoder
    // overwrites everything up to the size it returns)
    raw.resize(at + size, 0);
    let n = lz4::block::decompress_to_buffer(&payload[4..], Some(size as i32), &mut raw[at..])
        .map_err(|_| StorageError::Corrupt("lz4 block"))?;
    raw.truncate(at + n);
    Ok(at + n)
}

/// Append the lz4 block of `src` with its 4-byte little-endian size in front (the layout
/// `lz4_flex::compress_prepend_size` wrote, so old and new segments read alike) to `out`;
/// returns how many bytes were appended. liblz4's `LZ4_compress_default`.
fn compress_append(src: &[u8], out: &mut Vec<u8>) -> Result<usize, StorageError> {
    let at = out.len();
    let bound = lz4::block::compress_bound(src.len())?;
    out.resize(at + 4 + bound, 0);
    let n = lz4::block::compress_to_buffer(src, None, true, &mut out[at..])?;
    out.truncate(at + n);
    Ok(n)
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
        let path = dir.path().join("00000001.seg");
        let written = Segment::write(&path, &c, 1, 1, true).unwrap();
        assert!(written.blocks.len() >= 3);
        let seg = Segment::open(&path).unwrap();
        assert_eq!(seg.blocks, written.blocks);
        assert_eq!((seg.first, seg.last, seg.events()), (1, 1, 40_000));
        let (mut cols, mut raw) = (Columns::default(), Vec::new());
        let mut seen = Vec::new();
        seg.scan(100, 20_000, None, &mut cols, &mut raw, &mut |b| {
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
    fn names_and_retired_files() {
        assert_eq!(file_name(3, 3), "00000003.seg");
        assert_eq!(file_name(3, 9), "00000003-00000009.seg");
        assert_eq!(parse_stem("00000003"), Some((3, 3)));
        assert_eq!(parse_stem("00000003-00000009"), Some((3, 9)));
        assert_eq!(parse_stem("9-3"), None);
        assert_eq!(parse_stem("x"), None);
        assert_eq!(indexed_file_name(3, 3), "00000003.i.seg");
        assert_eq!(indexed_file_name(3, 9), "00000003-00000009.i.seg");
        assert_eq!(parse_stem("00000003-00000009.i"), Some((3, 9)));
        assert!(is_indexed_stem("00000003.i") && !is_indexed_stem("00000003"));
        let dir = tempfile::tempdir().unwrap();
        let mut c = Columns::default();
        c.push(1, 1, 1, 1, b"m");
        let path = dir.path().join(file_name(5, 5));
        let seg = std::sync::Arc::new(Segment::write(&path, &c, 5, 5, false).unwrap());
        let held = seg.clone();
        seg.retire();
        drop(seg);
        assert!(path.exists(), "a holder keeps a retired file");
        let (mut cols, mut raw) = (Columns::default(), Vec::new());
        let mut n = 0;
        held.scan(0, 10, None, &mut cols, &mut raw, &mut |b| {
            n += b.len();
            true
        })
        .unwrap();
        assert_eq!(n, 1);
        drop(held);
        assert!(!path.exists(), "the last holder removes it");
    }

    /// A format-1 file as earlier versions wrote it: whole blocks of [`Columns::encode`].
    fn write_v1(path: &Path, cols: &Columns, per_block: usize) {
        let mut out = MAGIC_V1.to_vec();
        for start in (0..cols.len()).step_by(per_block) {
            let mut b = Columns::default();
            b.extend_range(cols, start..(start + per_block).min(cols.len()));
            let mut raw = Vec::new();
            b.encode(&mut raw);
            // earlier versions compressed with lz4_flex: keep writing these test files with it
            let c = lz4_flex::compress_prepend_size(&raw);
            push_block(&mut out, &b, &c);
        }
        fs::write(path, out).unwrap();
    }

    /// Append a block header for `b` and its payload `c`.
    fn push_block(out: &mut Vec<u8>, b: &Columns, c: &[u8]) {
        let (min, max) = b.ts_range().unwrap();
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(c).to_le_bytes());
        out.extend_from_slice(c);
    }

    /// A format-2 file as the previous version wrote it: `[alen][lz4 A][lz4 B]` per block.
    fn write_v2(path: &Path, cols: &Columns, per_block: usize) {
        let mut out = MAGIC_V2.to_vec();
        for start in (0..cols.len()).step_by(per_block) {
            let mut b = Columns::default();
            b.extend_range(cols, start..(start + per_block).min(cols.len()));
            let (mut lean, mut rest) = (Vec::new(), Vec::new());
            b.encode_split(&mut lean, &mut rest);
            let mut c = vec![0; 4];
            let alen = compress_append(&lean, &mut c).unwrap();
            c[..4].copy_from_slice(&(alen as u32).to_le_bytes());
            compress_append(&rest, &mut c).unwrap();
            push_block(&mut out, &b, &c);
        }
        fs::write(path, out).unwrap();
    }

    #[test]
    fn both_formats_read_the_same_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Columns::default();
        for i in 0..30_000i64 {
            c.push(
                i,
                i + 7,
                i as u64 * 3,
                (i % 5) as u32,
                format!("event {i} ERROR {}", i % 13).as_bytes(),
            );
        }
        let old = dir.path().join("00000001.seg");
        write_v1(&old, &c, 7_000);
        let mid = dir.path().join("00000002.seg");
        write_v2(&mid, &c, 6_000);
        let new = dir.path().join("00000003.seg");
        Segment::write(&new, &c, 3, 3, true).unwrap();
        assert_eq!(&fs::read(&new).unwrap()[..8], MAGIC);
        let (v1, v2, v3) = (
            Segment::open(&old).unwrap(),
            Segment::open(&mid).unwrap(),
            Segment::open(&new).unwrap(),
        );
        assert_eq!((v1.format, v2.format, v3.format), (1, 2, 3));
        let (finder, probe) = (
            memchr::memmem::Finder::new("ERROR 7"),
            Probe::new(b"ERROR 7"),
        );
        let want: Vec<usize> = (0..c.len())
            .filter(|i| memchr::memmem::find(c.message(*i), b"ERROR 7").is_some())
            .collect();
        for seg in [&v1, &v2, &v3] {
            // ordered scans and block reads give every column back
            let (mut cols, mut raw) = (Columns::default(), Vec::new());
            let mut all = Columns::default();
            seg.scan(0, i64::MAX, None, &mut cols, &mut raw, &mut |b| {
                all.extend_range(b, 0..b.len());
                true
            })
            .unwrap();
            assert_eq!(all, c, "format {}", seg.format);
            let file = File::open(&seg.path).unwrap();
            let (mut buf, mut lean) = (Vec::new(), Lean::default());
            let mut text = Vec::new();
            let mut ends = 0;
            let mut hits = Vec::new();
            for k in 0..seg.blocks.len() {
                seg.read_block(&file, k, None, &mut cols, &mut buf, &mut raw)
                    .unwrap();
                assert_eq!(cols.ts[0], seg.blocks[k].min_ts);
                // lean reads, with and without timestamps
                for with_ts in [false, true] {
                    seg.read_lean(&file, k, &mut lean, &mut buf, with_ts)
                        .unwrap();
                    assert_eq!(lean.stream, cols.stream);
                    assert_eq!(lean.ends, cols.ends);
                    // format 3 leaves the text in its granules until asked for
                    let loaded = if seg.format == 3 {
                        &[][..]
                    } else {
                        &cols.text[..]
                    };
                    assert_eq!(lean.text(), loaded);
                    assert_eq!(lean.ts, if with_ts { cols.ts.clone() } else { Vec::new() });
                    // searches see the same hits, text loaded or not
                    let base = ends;
                    let mut got = Vec::new();
                    lean.for_each_hit(&finder, &probe, |i| got.push(base + i))
                        .unwrap();
                    let t = lean.text_len();
                    assert_eq!(lean.load_text().unwrap(), &cols.text[..]);
                    assert_eq!(t, cols.text.len());
                    let mut again = Vec::new();
                    lean.for_each_hit(&finder, &probe, |i| again.push(base + i))
                        .unwrap();
                    assert_eq!(got, again);
                    hits.extend(got.into_iter().filter(|_| with_ts));
                }
                text.extend_from_slice(lean.text());
                ends += lean.len();
            }
            assert_eq!((text, ends), (c.text.clone(), c.len()));
            assert_eq!(hits, want, "format {}", seg.format);
        }
    }

    #[test]
    fn corrupt_block_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Columns::default();
        c.push(1, 1, 1, 1, b"some message text");
        let path = dir.path().join("00000002-00000004.seg");
        Segment::write(&path, &c, 2, 4, true).unwrap();
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let seg = Segment::open(&path).unwrap();
        assert_eq!((seg.first, seg.last), (2, 4));
        let (mut cols, mut raw) = (Columns::default(), Vec::new());
        assert!(seg
            .scan(0, 10, None, &mut cols, &mut raw, &mut |_| true)
            .is_err());
    }

    /// Texts like the ones blocks hold: repetitive log lines, random bytes, empty, tiny.
    fn samples() -> Vec<Vec<u8>> {
        let mut logs = Vec::new();
        for i in 0..20_000u32 {
            logs.extend_from_slice(
                format!(
                    "2026-11-22T01:{:02}:00Z INFO GET /api/v1/items/{i} user=user{:03} 200 {}ms",
                    i % 60,
                    i % 400,
                    i % 97
                )
                .as_bytes(),
            );
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..70_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        vec![logs, noise, Vec::new(), b"x".to_vec(), vec![b'a'; 100_000]]
    }

    #[test]
    fn lz4_flex_and_liblz4_blocks_are_interchangeable() {
        for src in samples() {
            // written by lz4_flex (segments from earlier versions), read now
            let old = lz4_flex::compress_prepend_size(&src);
            let mut raw = b"keep".to_vec();
            assert_eq!(decompress_append(&old, &mut raw).unwrap(), 4 + src.len());
            assert_eq!((&raw[..4], &raw[4..]), (&b"keep"[..], &src[..]));
            // written now, read by lz4_flex (the format is the same standard lz4 block)
            let mut new = b"head".to_vec();
            let n = compress_append(&src, &mut new).unwrap();
            assert_eq!((n, &new[..4]), (new.len() - 4, &b"head"[..]));
            assert_eq!(lz4_flex::decompress_size_prepended(&new[4..]).unwrap(), src);
            assert_eq!(decompress_into(&new[4..], &mut raw).unwrap(), src.len());
            assert_eq!(raw, src);
        }
    }

    #[test]
    fn truncated_or_garbled_lz4_is_an_error_not_a_panic() {
        let mut raw = Vec::new();
        assert!(decompress_into(&[], &mut raw).is_err());
        assert!(decompress_into(&[1, 0], &mut raw).is_err());
        // a size beyond any block
        assert!(decompress_into(&[0xff, 0xff, 0xff, 0x7f, 0], &mut raw).is_err());
        for src in samples().into_iter().filter(|s| s.len() > 1) {
            let mut c = Vec::new();
            compress_append(&src, &mut c).unwrap();
            for cut in [4, 5, c.len() / 2, c.len() - 1] {
                assert!(
                    decompress_into(&c[..cut], &mut raw).is_err(),
                    "cut at {cut}"
                );
            }
            // a size prefix larger than the data: the decoder stops short of it or fails
            let mut longer = c.clone();
            longer[..4].copy_from_slice(&(src.len() as u32 + 10).to_le_bytes());
            if let Ok(n) = decompress_into(&longer, &mut raw) {
                assert_eq!(&raw[..n], &src[..]);
            }
            // a smaller one: the output does not fit
            let mut shorter = c.clone();
            shorter[..4].copy_from_slice(&(src.len() as u32 - 1).to_le_bytes());
            assert!(decompress_into(&shorter, &mut raw).is_err());
            // garbled bytes anywhere: an error or some output, never a panic or an overrun
            let mut x = 88172645463325252u64;
            for _ in 0..2_000 {
                let mut g = c.clone();
                for _ in 0..3 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = 4 + (x as usize) % (g.len() - 4);
                    g[at] ^= (x >> 32) as u8 | 1;
                }
                if let Ok(n) = decompress_into(&g, &mut raw) {
                    assert!(n <= src.len());
                }
            }
        }
    }
}
