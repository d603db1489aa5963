//! Encoding primitives shared by every on-disk format of the store: an MSB-first bit writer and
//! reader for the Gorilla-style chunk streams, LEB128 varints, zigzag integers, length-prefixed
//! strings, and a byte-oriented XOR float codec used by roll-up records.
//!
//! Every decoder here is total: malformed input yields [`Truncated`] (mapped to
//! `TsdbError::Corrupt` by callers), never a panic.

/// Input ended early or held an impossible value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

impl From<Truncated> for crate::TsdbError {
    fn from(_: Truncated) -> Self {
        crate::TsdbError::Corrupt("truncated or malformed encoded data".to_string())
    }
}

/// Appends bits MSB-first into a byte vector.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        BitWriter::default()
    }

    /// Writes the low `n` bits of `v` (`n <= 64`).
    #[inline]
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let v = if n >= 64 { v } else { v & ((1u64 << n) - 1) };
        let free = 64 - self.nbits;
        if n < free {
            self.acc = (self.acc << n) | v;
            self.nbits += n;
        } else {
            let rest = n - free;
            let hi = if rest == 0 { v } else { v >> rest };
            self.acc = if free >= 64 {
                hi
            } else {
                (self.acc << free) | hi
            };
            self.buf.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = if rest == 0 {
                0
            } else {
                v & ((1u64 << rest) - 1)
            };
            self.nbits = rest;
        }
    }

    /// Pads the last byte with zeros and appends everything to `out`; the writer is left empty.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf);
        if self.nbits > 0 {
            let bytes = self.nbits.div_ceil(8) as usize;
            let aligned = self.acc << (64 - self.nbits);
            out.extend_from_slice(&aligned.to_be_bytes()[..bytes]);
        }
        self.buf.clear();
        self.acc = 0;
        self.nbits = 0;
    }
}

/// Reads bits MSB-first from a byte slice.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Pending bits, left-aligned.
    acc: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            nbits: 0,
        }
    }

    #[inline(always)]
    fn refill(&mut self) {
        if self.pos + 8 <= self.data.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.data[self.pos..self.pos + 8]);
            let w = u64::from_be_bytes(w);
            if self.nbits < 64 {
                self.acc |= w >> self.nbits;
            }
            let bytes = (63 - self.nbits.min(63)) >> 3;
            self.pos += bytes as usize;
            self.nbits += bytes * 8;
        } else {
            while self.nbits <= 56 && self.pos < self.data.len() {
                self.acc |= (self.data[self.pos] as u64) << (56 - self.nbits);
                self.pos += 1;
                self.nbits += 8;
            }
        }
    }

    /// Reads `n` bits, `1 <= n <= 56`.
    #[inline(always)]
    fn read_small(&mut self, n: u32) -> Result<u64, Truncated> {
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return Err(Truncated);
            }
        }
        let v = self.acc >> (64 - n);
        self.acc <<= n;
        self.nbits -= n;
        Ok(v)
    }

    /// Reads `n` bits (`n <= 64`).
    #[inline(always)]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64, Truncated> {
        match n {
            0 => Ok(0),
            1..=56 => self.read_small(n),
            57..=64 => {
                let hi = self.read_small(n - 32)?;
                let lo = self.read_small(32)?;
                Ok((hi << 32) | lo)
            }
            _ => Err(Truncated),
        }
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, Truncated> {
        Ok(self.read_small(1)? == 1)
    }
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
pub(crate) fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// A cursor over a byte slice with total (non-panicking) readers.
pub(crate) struct Cursor<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    #[inline]
    pub(crate) fn uvarint(&mut self) -> Result<u64, Truncated> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self.data.get(self.pos).ok_or(Truncated)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(Truncated);
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(Truncated);
            }
        }
    }

    #[inline]
    pub(crate) fn ivarint(&mut self) -> Result<i64, Truncated> {
        Ok(unzigzag(self.uvarint()?))
    }

    /// A varint that must fit in `u32`.
    pub(crate) fn u32v(&mut self) -> Result<u32, Truncated> {
        u32::try_from(self.uvarint()?).map_err(|_| Truncated)
    }

    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(s)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, Truncated> {
        let b = *self.data.get(self.pos).ok_or(Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn u32le(&mut self) -> Result<u32, Truncated> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(a))
    }

    #[inline]
    pub(crate) fn u64le(&mut self) -> Result<u64, Truncated> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }

    #[inline]
    pub(crate) fn i64le(&mut self) -> Result<i64, Truncated> {
        Ok(self.u64le()? as i64)
    }

    #[inline]
    pub(crate) fn f64le(&mut self) -> Result<f64, Truncated> {
        Ok(f64::from_bits(self.u64le()?))
    }

    /// A varint-length-prefixed UTF-8 string, borrowed.
    pub(crate) fn str_ref(&mut self) -> Result<&'a str, Truncated> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| Truncated)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Truncated)
    }

    /// Reads a float written by [`put_xf64`] against the previous value's bits.
    #[inline]
    pub(crate) fn xf64(&mut self, prev: &mut u64) -> Result<f64, Truncated> {
        let ctrl = self.u8()?;
        if ctrl != 0 {
            let lz = (ctrl >> 4) as u32;
            let n = (ctrl & 0x0f) as u32;
            if n == 0 || lz + n > 8 {
                return Err(Truncated);
            }
            let tz = 8 - lz - n;
            let mut mid = 0u64;
            for (i, b) in self.bytes(n as usize)?.iter().enumerate() {
                mid |= (*b as u64) << (8 * i);
            }
            *prev ^= mid << (8 * tz);
        }
        Ok(f64::from_bits(*prev))
    }
}

pub(crate) fn put_string(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Writes `v` as the XOR against the previous value's bits, dropping whole zero bytes on both ends:
/// one control byte (leading zero bytes << 4 | kept bytes; 0 means "same as before") then the kept
/// bytes, little-endian.
#[inline]
pub(crate) fn put_xf64(buf: &mut Vec<u8>, prev: &mut u64, v: f64) {
    let bits = v.to_bits();
    let x = *prev ^ bits;
    *prev = bits;
    if x == 0 {
        buf.push(0);
        return;
    }
    let lz = x.leading_zeros() / 8;
    let tz = x.trailing_zeros() / 8;
    let n = 8 - lz - tz;
    buf.push(((lz << 4) | n) as u8);
    let mid = x >> (8 * tz);
    buf.extend_from_slice(&mid.to_le_bytes()[..n as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state
    }

    #[test]
    fn bits_roundtrip_random_widths() {
        let mut s = 7u64;
        let mut items = Vec::new();
        let mut w = BitWriter::new();
        for _ in 0..10_000 {
            let n = (lcg(&mut s) % 65) as u32;
            let v = lcg(&mut s);
            let v = if n == 64 {
                v
            } else if n == 0 {
                0
            } else {
                v & ((1u64 << n) - 1)
            };
            w.write(v, n);
            items.push((v, n));
        }
        let mut out = Vec::new();
        w.finish_into(&mut out);
        let mut r = BitReader::new(&out);
        for (v, n) in items {
            assert_eq!(r.read(n).unwrap(), v, "width {n}");
        }
    }

    #[test]
    fn reader_reports_truncation() {
        let mut w = BitWriter::new();
        w.write(0b101, 3);
        let mut out = Vec::new();
        w.finish_into(&mut out);
        let mut r = BitReader::new(&out);
        assert_eq!(r.read(3).unwrap(), 0b101);
        assert_eq!(r.read(5).unwrap(), 0);
        assert_eq!(r.read(1), Err(Truncated));
    }

    #[test]
    fn varints_and_zigzag() {
        let mut buf = Vec::new();
        let vals = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for v in vals {
            put_ivarint(&mut buf, v);
        }
        put_uvarint(&mut buf, u64::MAX);
        let mut c = Cursor::new(&buf);
        for v in vals {
            assert_eq!(c.ivarint().unwrap(), v);
        }
        assert_eq!(c.uvarint().unwrap(), u64::MAX);
        assert!(c.is_empty());
        assert_eq!(c.uvarint(), Err(Truncated));
        let bad = [0xffu8; 11];
        assert_eq!(Cursor::new(&bad).uvarint(), Err(Truncated));
    }

    #[test]
    fn xf64_roundtrip() {
        let vals = [
            0.0,
            1.0,
            1.0,
            2.5,
            -3.75,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-300,
            42.0,
            42.0,
        ];
        let mut buf = Vec::new();
        let mut p = 0u64;
        for v in vals {
            put_xf64(&mut buf, &mut p, v);
        }
        let mut c = Cursor::new(&buf);
        let mut p = 0u64;
        for v in vals {
            assert_eq!(c.xf64(&mut p).unwrap().to_bits(), v.to_bits());
        }
        assert!(c.is_empty());
        // A control byte claiming more than eight bytes is rejected.
        assert_eq!(Cursor::new(&[0x59]).xf64(&mut 0), Err(Truncated));
    }
}
