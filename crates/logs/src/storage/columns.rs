//! Column-oriented batches of log events: timestamps, ingestion times, sequence numbers, stream ids
//! and message bytes held in parallel vectors, with a compact little-endian encoding used both by the
//! WAL and (lz4-compressed) by segment blocks. Decoding reuses the caller's buffers, so scanning
//! allocates nothing per event.

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
        let needle = finder.needle().len();
        let mut from = 0usize;
        while from < self.text.len() {
            let Some(at) = finder.find(&self.text[from..]) else {
                break;
            };
            let pos = from + at;
            let i = self.ends.partition_point(|e| (*e as usize) <= pos);
            if i >= self.len() {
                break;
            }
            let end = self.ends[i] as usize;
            if pos + needle <= end {
                out.push(i);
                from = end;
            } else {
                // the hit spans two messages: continue inside the next one
                from = pos + 1;
            }
        }
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

    /// Replace the contents with the decoding of `buf`, reusing allocations.
    pub fn decode_into(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        self.clear();
        let n = u32::from_le_bytes(take::<4>(buf, 0)?) as usize;
        let fixed = n
            .checked_mul(32)
            .and_then(|v| v.checked_add(4))
            .ok_or(StorageError::Corrupt("column count overflow"))?;
        if buf.len() < fixed {
            return Err(StorageError::Corrupt("column block too short"));
        }
        let mut off = 4;
        read_i64s(&buf[off..off + 8 * n], &mut self.ts);
        off += 8 * n;
        read_i64s(&buf[off..off + 8 * n], &mut self.ingest);
        off += 8 * n;
        self.seq
            .extend(buf[off..off + 8 * n].chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            }));
        off += 8 * n;
        read_u32s(&buf[off..off + 4 * n], &mut self.stream);
        off += 4 * n;
        read_u32s(&buf[off..off + 4 * n], &mut self.ends);
        off += 4 * n;
        self.text.extend_from_slice(&buf[off..]);
        let mut prev = 0u32;
        for &e in &self.ends {
            if e < prev || e as usize > self.text.len() {
                return Err(StorageError::Corrupt("message offsets out of order"));
            }
            prev = e;
        }
        if prev as usize != self.text.len() {
            return Err(StorageError::Corrupt("message bytes length mismatch"));
        }
        Ok(())
    }
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
