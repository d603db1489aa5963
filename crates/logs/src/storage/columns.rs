//! Column-oriented batches of log events: timestamps, ingestion times, sequence numbers, stream ids
//! and message bytes held in parallel vectors, with a compact little-endian encoding used both by the
//! WAL and (lz4-compressed) by segment blocks. Decoding reuses the caller's buffers, so scanning
//! allocates nothing per event.

use super::granules::{Granules, Probe};
use super::StorageError;

/// A batch of events in columns. Event `i`'s message is `text[start(i)..ends[i]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    pub ts: Vec<i64>,
    pub ingest: Vec<i64>,
    pub seq: Vec<u64>,
    pub stream: Vec<u32>,
    pub ends: Vec<u32>,
    pub text: Vec<u8>,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn clear(&mut self) {
        self.ts.clear();
        self.ingest.clear();
        self.seq.clear();
        self.stream.clear();
        self.ends.clear();
        self.text.clear();
    }

    /// Append one event.
    pub fn push(&mut self, ts: i64, ingest: i64, seq: u64, stream: u32, msg: &[u8]) {
        self.ts.push(ts);
        self.ingest.push(ingest);
        self.seq.push(seq);
        self.stream.push(stream);
        self.text.extend_from_slice(msg);
        self.ends.push(self.text.len() as u32);
    }

    /// Append event `i` of `other`.
    pub fn push_from(&mut self, other: &Columns, i: usize) {
        self.push(
            other.ts[i],
            other.ingest[i],
            other.seq[i],
            other.stream[i],
            other.message(i),
        );
    }

    /// Append events `range` of `other`.
    pub fn extend_range(&mut self, other: &Columns, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        let (from, to) = (other.start(range.start), other.ends[range.end - 1] as usize);
        let shift = self.text.len() as i64 - from as i64;
        self.ts.extend_from_slice(&other.ts[range.clone()]);
        self.ingest.extend_from_slice(&other.ingest[range.clone()]);
        self.seq.extend_from_slice(&other.seq[range.clone()]);
        self.stream.extend_from_slice(&other.stream[range.clone()]);
        self.ends
            .extend(other.ends[range].iter().map(|e| (*e as i64 + shift) as u32));
        self.text.extend_from_slice(&other.text[from..to]);
    }

    /// Indexes of events whose message contains `needle`, found by searching the whole text
    /// buffer at once (one `memmem` pass, skipping to the next message after each hit).
    pub fn containing(&self, finder: &memchr::memmem::Finder, out: &mut Vec<usize>) {
        out.clear();
        for_each_hit(&self.text, &self.ends, finder, |i| out.push(i));
    }

    /// Message bytes of event `i`.
    pub fn message(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Byte offset of event `i`'s message in `text`.
    pub fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    /// Smallest and largest timestamp, if any.
    pub fn ts_range(&self) -> Option<(i64, i64)> {
        let min = self.ts.iter().copied().min()?;
        let max = self.ts.iter().copied().max()?;
        Some((min, max))
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        4 + self.len() * (8 + 8 + 8 + 4 + 4) + self.text.len()
    }

    /// Append the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for v in &self.ts {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.ingest {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.seq {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.stream {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.ends {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.text);
    }

    /// The split encoding of segment blocks (format 2): `lean` gets `[n u32][stream u32 × n]
    /// [ends u32 × n][text]`, what a count needs ([`Lean`]); `rest` gets `[ts i64 × n]
    /// [ingest i64 × n][seq u64 × n]`. Each part is compressed on its own, so a scan can leave
    /// the second compressed.
    pub fn encode_split(&self, lean: &mut Vec<u8>, rest: &mut Vec<u8>) {
        lean.reserve(4 + 8 * self.len() + self.text.len());
        lean.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for v in &self.stream {
            lean.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.ends {
            lean.extend_from_slice(&v.to_le_bytes());
        }
        lean.extend_from_slice(&self.text);
        rest.reserve(24 * self.len());
        for v in &self.ts {
            rest.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.ingest {
            rest.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.seq {
            rest.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The format-3 split: as [`Columns::encode_split`] but `head` without the message text
    /// (`[n u32][stream u32 × n][ends u32 × n]`), which goes into granules, and every column but
    /// the stream ids as differences from the previous value (wrapping; the first from 0), which
    /// compress far better than the values; [`undelta_head`] and [`undelta_rest`] undo them.
    pub fn encode_head(&self, head: &mut Vec<u8>, rest: &mut Vec<u8>) {
        head.reserve(4 + 8 * self.len());
        head.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for v in &self.stream {
            head.extend_from_slice(&v.to_le_bytes());
        }
        let mut prev = 0u32;
        for v in &self.ends {
            head.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
            prev = *v;
        }
        rest.reserve(24 * self.len());
        for col in [&self.ts, &self.ingest] {
            let mut prev = 0i64;
            for v in col {
                rest.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
                prev = *v;
            }
        }
        let mut prev = 0u64;
        for v in &self.seq {
            rest.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
            prev = *v;
        }
    }

    /// Replace the contents with the decoding of the two parts of [`Columns::encode_split`].
    pub fn decode_split(&mut self, lean: &[u8], rest: &[u8]) -> Result<(), StorageError> {
        self.clear();
        let (n, fixed) = block_header(lean, 8)?;
        if rest.len() != 24 * n {
            return Err(StorageError::Corrupt("column block too short"));
        }
        read_u32s(&lean[4..4 + 4 * n], &mut self.stream);
        read_u32s(&lean[4 + 4 * n..fixed], &mut self.ends);
        check_ends(&self.ends, lean.len() - fixed)?;
        self.text.extend_from_slice(&lean[fixed..]);
        read_i64s(&rest[..8 * n], &mut self.ts);
        read_i64s(&rest[8 * n..16 * n], &mut self.ingest);
        read_u64s(&rest[16 * n..], &mut self.seq);
        Ok(())
    }

    /// Replace the contents with the decoding of `buf`, reusing allocations.
    pub fn decode_into(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        self.clear();
        let (n, _) = block_header(buf, 32)?;
        let mut off = 4;
        read_i64s(&buf[off..off + 8 * n], &mut self.ts);
        off += 8 * n;
        read_i64s(&buf[off..off + 8 * n], &mut self.ingest);
        off += 8 * n;
        read_u64s(&buf[off..off + 8 * n], &mut self.seq);
        off += 8 * n;
        read_u32s(&buf[off..off + 4 * n], &mut self.stream);
        off += 4 * n;
        read_u32s(&buf[off..off + 4 * n], &mut self.ends);
        off += 4 * n;
        check_ends(&self.ends, buf.len() - off)?;
        self.text.extend_from_slice(&buf[off..]);
        Ok(())
    }
}

/// Call `hit(i)` once for every event `i` (ascending) whose message, `text[ends[i-1]..ends[i]]`,
/// contains the finder's needle: one `memmem` pass over the whole text, as `rg` searches lines;
/// after a hit the search resumes at the next message, and a hit spanning two messages is no
/// match. `ends` must be non-decreasing (decoding checks it).
pub fn for_each_hit(
    text: &[u8],
    ends: &[u32],
    finder: &memchr::memmem::Finder,
    hit: impl FnMut(usize),
) {
    for_each_hit_from(text, 0, ends, finder, hit)
}

/// [`for_each_hit`] over a slice of a block's text that starts at offset `base` of it, `ends`
/// the (absolute) ends of the messages the slice holds; `hit` gets indexes into `ends`.
pub fn for_each_hit_from(
    text: &[u8],
    base: usize,
    ends: &[u32],
    finder: &memchr::memmem::Finder,
    mut hit: impl FnMut(usize),
) {
    let needle = finder.needle().len();
    let (mut from, mut lo) = (0usize, 0usize);
    while from < text.len() {
        let Some(at) = finder.find(&text[from..]) else {
            break;
        };
        let pos = from + at;
        // hits only move forward: search the events not passed yet
        let i = lo + ends[lo..].partition_point(|e| (*e as usize) <= base + pos);
        let Some(&end) = ends.get(i) else {
            break;
        };
        let end = (end as usize).saturating_sub(base).max(pos + 1);
        if pos + needle <= end {
            hit(i);
            from = end;
            lo = i + 1;
        } else {
            // the hit spans two messages: continue inside the next one
            from = pos + 1;
            lo = i;
        }
    }
}

/// The columns of a block an order-free count needs, decoded from a block's raw (decompressed)
/// bytes without copying the message text: stream ids and message ends always, timestamps only
/// when asked for (a block wholly inside the query window needs none), no ingestion times or
/// sequence numbers.
#[derive(Debug, Default)]
pub struct Lean {
    pub ts: Vec<i64>,
    pub stream: Vec<u32>,
    pub ends: Vec<u32>,
    /// The decompressed block (format 1) or its lean part (format 2); the message text starts
    /// at `text_at`.
    pub raw: Vec<u8>,
    /// The decompressed second part of a format-2 or 3 block, when timestamps are wanted.
    pub rest: Vec<u8>,
    text_at: usize,
    /// A format-3 block's text granules; `lazy` while they are not decoded into `raw`.
    pub granules: Granules,
    /// The payload of a format-3 block, which holds its granules.
    pub packed: Vec<u8>,
    lazy: bool,
}

impl Lean {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The message text of every event, back to back (of a format-3 block: only once
    /// [`Lean::load_text`] decoded it).
    pub fn text(&self) -> &[u8] {
        self.raw.get(self.text_at..).unwrap_or_default()
    }

    /// Bytes of message text.
    pub fn text_len(&self) -> usize {
        self.ends.last().map_or(0, |e| *e as usize)
    }

    /// Decode a format-3 block's text granules, so [`Lean::text`] holds the whole text.
    pub fn load_text(&mut self) -> Result<&[u8], StorageError> {
        if self.lazy {
            self.raw.truncate(self.text_at);
            self.granules.decode_all(&self.packed, &mut self.raw)?;
            self.lazy = false;
        }
        Ok(self.text())
    }

    /// Call `hit(i)` (ascending) for every event `i` whose message contains the finder's needle
    /// (see [`for_each_hit`]). A format-3 block whose text is not loaded decodes only the granules
    /// whose bloom filter passes `probe` (the probe of the same needle).
    pub fn for_each_hit(
        &mut self,
        finder: &memchr::memmem::Finder,
        probe: &Probe,
        hit: impl FnMut(usize),
    ) -> Result<(), StorageError> {
        self.split().1.for_each_hit(finder, probe, hit)
    }

    /// The decoded columns (timestamps, stream ids, message ends) and a [`TextSearch`] over the
    /// text, borrowed apart so a search's callback can read the columns.
    pub fn split(&mut self) -> (LeanCols<'_>, TextSearch<'_>) {
        let text = self.raw.get(self.text_at..).unwrap_or_default();
        (
            LeanCols {
                ts: &self.ts,
                stream: &self.stream,
                ends: &self.ends,
            },
            TextSearch {
                lazy: self.lazy,
                granules: &mut self.granules,
                packed: &self.packed,
                ends: &self.ends,
                text,
            },
        )
    }

    /// Clear the decoded columns and read the lean part's header: (events, end of the fixed part).
    fn start_decode(&mut self) -> Result<(usize, usize), StorageError> {
        self.ts.clear();
        self.stream.clear();
        self.ends.clear();
        self.text_at = 0;
        self.lazy = false;
        block_header(&self.raw, 8)
    }

    /// Decode a format-3 block's lean columns from `self.raw` (its first part without the
    /// text) and `self.rest` (when `with_ts`), its granules already parsed with `text` bytes of
    /// text; the text stays in the granules until [`Lean::load_text`].
    pub fn decode_lazy(&mut self, with_ts: bool, text: usize) -> Result<(), StorageError> {
        let (n, fixed) = self.start_decode()?;
        let buf = &self.raw;
        if buf.len() != fixed {
            return Err(StorageError::Corrupt("column block too long"));
        }
        read_u32s(&buf[4..4 + 4 * n], &mut self.stream);
        read_u32s(&buf[4 + 4 * n..fixed], &mut self.ends);
        check_ends(&self.ends, text)?;
        self.granules.check_ends(&self.ends)?;
        if with_ts {
            if self.rest.len() != 24 * n {
                return Err(StorageError::Corrupt("column block too short"));
            }
            read_i64s(&self.rest[..8 * n], &mut self.ts);
        }
        self.text_at = fixed;
        self.lazy = true;
        Ok(())
    }

    /// Decode `self.raw`, the lean part of [`Columns::encode_split`], and when `with_ts` the
    /// timestamps from `self.rest`, its other part.
    pub fn decode_split(&mut self, with_ts: bool) -> Result<(), StorageError> {
        let (n, fixed) = self.start_decode()?;
        let buf = &self.raw;
        read_u32s(&buf[4..4 + 4 * n], &mut self.stream);
        read_u32s(&buf[4 + 4 * n..fixed], &mut self.ends);
        check_ends(&self.ends, buf.len() - fixed)?;
        if with_ts {
            if self.rest.len() != 24 * n {
                return Err(StorageError::Corrupt("column block too short"));
            }
            read_i64s(&self.rest[..8 * n], &mut self.ts);
        }
        self.text_at = fixed;
        Ok(())
    }

    /// Decode `self.raw` (the encoding of [`Columns::encode`]); timestamps only if `with_ts`.
    pub fn decode(&mut self, with_ts: bool) -> Result<(), StorageError> {
        self.ts.clear();
        self.stream.clear();
        self.ends.clear();
        self.text_at = 0;
        self.lazy = false;
        let buf = &self.raw;
        let (n, fixed) = block_header(buf, 32)?;
        if with_ts {
            read_i64s(&buf[4..4 + 8 * n], &mut self.ts);
        }
        let off = 4 + 24 * n;
        read_u32s(&buf[off..off + 4 * n], &mut self.stream);
        read_u32s(&buf[off + 4 * n..fixed], &mut self.ends);
        let text = buf.len() - fixed;
        check_ends(&self.ends, text)?;
        self.text_at = fixed;
        Ok(())
    }
}

/// The columns of a [`Lean`] (see [`Lean::split`]).
pub struct LeanCols<'a> {
    pub ts: &'a [i64],
    pub stream: &'a [u32],
    pub ends: &'a [u32],
}

/// A search over a [`Lean`]'s text (see [`Lean::split`]).
pub struct TextSearch<'a> {
    lazy: bool,
    granules: &'a mut Granules,
    packed: &'a [u8],
    ends: &'a [u32],
    text: &'a [u8],
}

impl TextSearch<'_> {
    /// See [`Lean::for_each_hit`].
    pub fn for_each_hit(
        self,
        finder: &memchr::memmem::Finder,
        probe: &Probe,
        hit: impl FnMut(usize),
    ) -> Result<(), StorageError> {
        if self.lazy {
            return self
                .granules
                .for_each_hit(self.packed, self.ends, finder, probe, hit);
        }
        for_each_hit(self.text, self.ends, finder, hit);
        Ok(())
    }
}

/// Undo the differences of a format-3 head ([`Columns::encode_head`]) in place.
pub fn undelta_head(head: &mut [u8]) -> Result<(), StorageError> {
    let (n, fixed) = block_header(head, 8)?;
    let mut acc = 0u32;
    for c in head[4 + 4 * n..fixed].chunks_exact_mut(4) {
        let mut a = [0u8; 4];
        a.copy_from_slice(c);
        acc = acc.wrapping_add(u32::from_le_bytes(a));
        c.copy_from_slice(&acc.to_le_bytes());
    }
    Ok(())
}

/// Undo the differences of the first `cols` columns (timestamps, ingestion times, sequence
/// numbers) of a format-3 second part ([`Columns::encode_head`]) in place.
pub fn undelta_rest(rest: &mut [u8], cols: usize) -> Result<(), StorageError> {
    if !rest.len().is_multiple_of(24) {
        return Err(StorageError::Corrupt("column block too short"));
    }
    let n = rest.len() / 24;
    for k in 0..cols.min(3) {
        let mut acc = 0u64;
        for c in rest[8 * n * k..8 * n * (k + 1)].chunks_exact_mut(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            acc = acc.wrapping_add(u64::from_le_bytes(a));
            c.copy_from_slice(&acc.to_le_bytes());
        }
    }
    Ok(())
}

/// Message ends must be non-decreasing and end exactly at the text's length.
fn check_ends(ends: &[u32], text: usize) -> Result<(), StorageError> {
    // branch-free fold (vectorises): any decrease or overshoot sets `bad`
    let (mut prev, mut bad) = (0u32, false);
    for &e in ends {
        bad |= e < prev;
        prev = e;
    }
    if bad || prev as usize > text {
        return Err(StorageError::Corrupt("message offsets out of order"));
    }
    if prev as usize != text {
        return Err(StorageError::Corrupt("message bytes length mismatch"));
    }
    Ok(())
}

/// A column block starts with its event count `n`, then `per_event` bytes of fixed-width columns per
/// event, then the message text: returns `n` and where the text starts, checking the block holds them.
fn block_header(buf: &[u8], per_event: usize) -> Result<(usize, usize), StorageError> {
    let n = u32::from_le_bytes(take::<4>(buf, 0)?) as usize;
    let fixed = n
        .checked_mul(per_event)
        .and_then(|v| v.checked_add(4))
        .ok_or(StorageError::Corrupt("column count overflow"))?;
    if buf.len() < fixed {
        return Err(StorageError::Corrupt("column block too short"));
    }
    Ok((n, fixed))
}

fn take<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], StorageError> {
    let slice = buf
        .get(at..at + N)
        .ok_or(StorageError::Corrupt("truncated column block"))?;
    let mut a = [0u8; N];
    a.copy_from_slice(slice);
    Ok(a)
}

fn read_i64s(buf: &[u8], out: &mut Vec<i64>) {
    out.extend(buf.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        i64::from_le_bytes(a)
    }));
}

fn read_u64s(buf: &[u8], out: &mut Vec<u64>) {
    out.extend(buf.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        u64::from_le_bytes(a)
    }));
}

fn read_u32s(buf: &[u8], out: &mut Vec<u32>) {
    out.extend(buf.chunks_exact(4).map(|c| {
        let mut a = [0u8; 4];
        a.copy_from_slice(c);
        u32::from_le_bytes(a)
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_reuse() {
        let mut c = Columns::default();
        c.push(5, 6, 7, 1, b"hello");
        c.push(1, 2, 8, 2, b"");
        c.push(9, 9, 9, 3, b"world!");
        let mut buf = Vec::new();
        c.encode(&mut buf);
        assert_eq!(buf.len(), c.encoded_len());
        let mut d = Columns::default();
        d.push(0, 0, 0, 0, b"stale");
        d.decode_into(&buf).unwrap();
        assert_eq!(c, d);
        assert_eq!(d.message(0), b"hello");
        assert_eq!(d.message(1), b"");
        assert_eq!(d.message(2), b"world!");
        assert_eq!(d.ts_range(), Some((1, 9)));
    }

    #[test]
    fn extend_range_and_containing() {
        let mut c = Columns::default();
        for (i, m) in ["xxERR", "ORyy", "an ERROR here", "none", "ERROR"]
            .iter()
            .enumerate()
        {
            c.push(i as i64, 0, i as u64, 0, m.as_bytes());
        }
        let mut hits = Vec::new();
        c.containing(&memchr::memmem::Finder::new("ERROR"), &mut hits);
        assert_eq!(
            hits,
            vec![2, 4],
            "a match spanning two messages does not count"
        );
        let mut d = Columns::default();
        d.push(9, 9, 9, 9, b"first");
        d.extend_range(&c, 1..3);
        assert_eq!(d.len(), 3);
        assert_eq!(d.message(1), b"ORyy");
        assert_eq!(d.message(2), b"an ERROR here");
        assert_eq!(d.ts, vec![9, 1, 2]);
    }

    #[test]
    fn lean_decodes_without_copying_the_text() {
        let mut c = Columns::default();
        c.push(5, 6, 7, 1, b"hello ERROR");
        c.push(1, 2, 8, 2, b"");
        c.push(9, 9, 9, 3, b"ERROR world!");
        let mut l = Lean::default();
        c.encode(&mut l.raw);
        l.decode(false).unwrap();
        assert!(l.ts.is_empty());
        assert_eq!(
            (l.len(), &l.stream[..], &l.ends[..]),
            (3, &c.stream[..], &c.ends[..])
        );
        assert_eq!(l.text(), &c.text[..]);
        l.decode(true).unwrap();
        assert_eq!(l.ts, c.ts);
        let mut hits = Vec::new();
        for_each_hit(
            l.text(),
            &l.ends,
            &memchr::memmem::Finder::new("ERROR"),
            |i| hits.push(i),
        );
        assert_eq!(hits, vec![0, 2]);
        // broken offsets and short buffers are errors
        let ends_at = 4 + 3 * 28;
        l.raw[ends_at..ends_at + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(l.decode(false).is_err());
        for bad in [&b""[..], &[1, 0, 0, 0][..]] {
            l.raw = bad.to_vec();
            assert!(l.decode(true).is_err());
            assert!(l.text().is_empty() || l.is_empty());
        }
    }

    #[test]
    fn split_encoding_roundtrips_and_lean_reads_its_first_part() {
        let mut c = Columns::default();
        c.push(5, 6, 7, 1, b"hello ERROR");
        c.push(1, 2, 8, 2, b"");
        c.push(9, 9, 9, 3, b"ERROR world!");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        c.encode_split(&mut a, &mut b);
        let mut d = Columns::default();
        d.push(0, 0, 0, 0, b"stale");
        d.decode_split(&a, &b).unwrap();
        assert_eq!(c, d);
        let mut l = Lean {
            raw: a.clone(),
            ..Lean::default()
        };
        l.decode_split(false).unwrap();
        assert!(l.ts.is_empty());
        assert_eq!(
            (&l.stream[..], &l.ends[..], l.text()),
            (&c.stream[..], &c.ends[..], &c.text[..])
        );
        l.rest = b.clone();
        l.decode_split(true).unwrap();
        assert_eq!(l.ts, c.ts);
        // parts that do not fit together are errors
        assert!(d.decode_split(&a, &b[8..]).is_err());
        assert!(d.decode_split(&a[..a.len() - 1], &b).is_err());
        l.rest.pop();
        assert!(l.decode_split(true).is_err());
        assert!(d.decode_split(&[], &b).is_err());
    }

    #[test]
    fn hits_map_to_messages_like_a_per_message_search() {
        let msgs = [
            "ERRORERROR",
            "",
            "E",
            "RROR",
            "xxERRO",
            "R",
            "ERROR",
            "ERROR",
            "a ERROR b ERROR",
        ];
        let mut c = Columns::default();
        for m in msgs {
            c.push(0, 0, 0, 0, m.as_bytes());
        }
        for needle in ["ERROR", "R", "RE", "ERRORERROR", "x"] {
            let mut got = Vec::new();
            c.containing(&memchr::memmem::Finder::new(needle), &mut got);
            let want: Vec<usize> = (0..msgs.len())
                .filter(|i| msgs[*i].contains(needle))
                .collect();
            assert_eq!(got, want, "{needle}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Columns::default();
        for input in [&b""[..], &[1, 0, 0, 0][..], &[255, 255, 255, 255, 1, 2][..]] {
            assert!(d.decode_into(input).is_err());
        }
        let mut c = Columns::default();
        c.push(1, 1, 1, 1, b"abc");
        let mut buf = Vec::new();
        c.encode(&mut buf);
        buf.pop();
        assert!(d.decode_into(&buf).is_err());
    }
}
