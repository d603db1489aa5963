//! The message text of a format-3 segment block, cut into granules that decode on their own and
//! each carry an n-gram bloom filter, so a search for a literal decodes only the granules that may
//! contain it (the skip index; the design of ClickHouse's `ngrambf_v1` and Loki's blooms).
//!
//! - A granule is a run of whole events holding about [`GRANULE_BYTES`] of text (one larger event
//!   makes a larger granule). Each is lz4-compressed (`lz4_flex`) against a dictionary: the
//!   block's first [`DICT_BYTES`] of text, compressed on its own. A granule decodes with the
//!   dictionary alone; granules inside the dictionary's span compress to almost nothing.
//! - Grams: every window of [`GRAM`] consecutive ASCII letters, case-folded to lowercase (windows
//!   holding a digit, punctuation, space or a non-ASCII byte are not indexed, so ids, numbers and
//!   uuids do not fill the filters). Windows across message boundaries are indexed too (a
//!   superset). A granule's filter is [`BLOOM_BITS`] bits, [`HASHES`] bits per gram, both in
//!   the one 64-bit word the gram's hash picks (a blocked filter: one update per gram, and on
//!   the benchmark's text it admits ~12 % fewer granules than two independent bits did).
//! - A [`Probe`] holds the grams of a literal: a granule whose filter lacks one of its bits cannot
//!   contain the literal (in any case variant), so it is skipped. A literal without a gram probes
//!   nothing and every granule is searched. The filter only ever skips: hits are found on decoded
//!   text, so results are exact.
//!
//! Section layout (all little-endian u32): `[g][dict raw len][dict compressed len]`, then per
//! granule `[first event][text end][compressed end]` (text ends are offsets in the block's text,
//! compressed ends offsets after the dictionary), then `g` filters of [`BLOOM_BYTES`], the
//! compressed dictionary and the compressed granules back to back.

use memchr::memmem::Finder;

use super::columns::for_each_hit_from;
use super::StorageError;

/// Target text bytes per granule.
pub const GRANULE_BYTES: usize = 1024;
/// Dictionary bytes: the start of the block's text.
pub const DICT_BYTES: usize = 4 << 10;
/// Letters per gram.
pub const GRAM: usize = 3;
/// Bits of one granule's bloom filter.
pub const BLOOM_BITS: usize = 512;
pub const BLOOM_BYTES: usize = BLOOM_BITS / 8;
const BLOOM_WORDS: usize = BLOOM_BITS / 64;
/// Bits set per gram.
pub const HASHES: usize = 2;
const ENTRY: usize = 12;

/// Lowercase of an ASCII letter, 0 for every other byte.
pub const FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() {
            t[b] = c | 0x20;
        }
        b += 1;
    }
    t
};

/// `1 << i` for every bit `i` of a word (a load: cheaper than a shift by a variable amount).
const BIT: [u64; 64] = {
    let mut t = [0u64; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = 1 << i;
        i += 1;
    }
    t
};

/// The filter word and bits of a gram (its three folded letters `a b c` packed as
/// `a | b << 8 | c << 16`): one multiplication; its top 3 bits pick the word, the next 2 × 6 the
/// two bits in it.
#[inline]
fn word_bits(gram: u32) -> (usize, u64) {
    let h = gram.wrapping_mul(0x9E37_79B1);
    (
        (h >> 29) as usize,
        BIT[(h >> 23) as usize & 63] | BIT[(h >> 17) as usize & 63],
    )
}

/// Call `f` with every indexed gram of `text` (folded letters packed in a u32 as in
/// [`word_bits`]; repeats included).
#[inline]
fn grams(text: &[u8], mut f: impl FnMut(u32)) {
    let (mut w, mut run) = (0u32, 0usize);
    for &b in text {
        let c = FOLD[b as usize];
        if c == 0 {
            run = 0;
            continue;
        }
        w = w >> 8 | u32::from(c) << 16;
        run += 1;
        if run >= GRAM {
            f(w);
        }
    }
}

/// The bloom filter of `text`. (Measured with `examples/granule_cost.rs`: branch-free variants
/// of this loop, a mask instead of the letter-run test, ran more instructions and no faster.)
pub fn bloom(text: &[u8]) -> [u64; BLOOM_WORDS] {
    let mut m = [0u64; BLOOM_WORDS];
    grams(text, |g| {
        let (w, b) = word_bits(g);
        m[w] |= b;
    });
    m
}

/// The filter bits a literal needs: a granule lacking any of them cannot contain it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    need: [u64; BLOOM_WORDS],
    any: bool,
}

impl Probe {
    pub fn new(literal: &[u8]) -> Probe {
        let need = bloom(literal);
        Probe {
            any: need.iter().any(|w| *w != 0),
            need,
        }
    }

    /// Whether a literal had no indexable gram (then every granule may match).
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// Whether a granule with filter `f` (its [`BLOOM_BYTES`]) may contain the literal.
    #[inline]
    pub fn may_match(&self, f: &[u8]) -> bool {
        if !self.any {
            return true;
        }
        self.need.iter().enumerate().all(|(i, n)| {
            let w = f
                .get(i * 8..i * 8 + 8)
                .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])));
            w & n == *n
        })
    }
}

/// Append the text section of a block (message `text`, message `ends`) to `out`.
pub fn encode(text: &[u8], ends: &[u32], out: &mut Vec<u8>) -> Result<(), StorageError> {
    // cut after the event that brings a granule to GRANULE_BYTES
    let mut cuts: Vec<(u32, u32)> = Vec::new();
    let (mut first, mut from) = (0usize, 0u32);
    for (i, &e) in ends.iter().enumerate() {
        if (e - from) as usize >= GRANULE_BYTES || i + 1 == ends.len() {
            cuts.push((first as u32, e));
            first = i + 1;
            from = e;
        }
    }
    let dict = &text[..text.len().min(DICT_BYTES)];
    let head = out.len();
    out.extend_from_slice(&(cuts.len() as u32).to_le_bytes());
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let entries = out.len();
    out.resize(entries + cuts.len() * (ENTRY + BLOOM_BYTES), 0);
    let dict_at = out.len();
    let n = compress(dict, out, b"")?;
    out[head + 8..head + 12].copy_from_slice(&(n as u32).to_le_bytes());
    let data_at = out.len();
    let mut start = 0usize;
    for (k, &(first, end)) in cuts.iter().enumerate() {
        let g = &text[start..end as usize];
        compress(g, out, dict)?;
        let cend = (out.len() - data_at) as u32;
        let e = entries + k * ENTRY;
        out[e..e + 4].copy_from_slice(&first.to_le_bytes());
        out[e + 4..e + 8].copy_from_slice(&end.to_le_bytes());
        out[e + 8..e + 12].copy_from_slice(&cend.to_le_bytes());
        let f = entries + cuts.len() * ENTRY + k * BLOOM_BYTES;
        for (i, w) in bloom(g).iter().enumerate() {
            out[f + i * 8..f + i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        start = end as usize;
    }
    debug_assert!(dict_at <= data_at);
    Ok(())
}

fn compress(src: &[u8], out: &mut Vec<u8>, dict: &[u8]) -> Result<usize, StorageError> {
    let at = out.len();
    out.resize(at + lz4_flex::block::get_maximum_output_size(src.len()), 0);
    let n = if dict.is_empty() {
        lz4_flex::block::compress_into(src, &mut out[at..])
    } else {
        lz4_flex::block::compress_into_with_dict(src, &mut out[at..], dict)
    }
    .map_err(|_| StorageError::Corrupt("granule compression"))?;
    out.truncate(at + n);
    Ok(n)
}

/// One granule of a parsed section.
#[derive(Debug, Clone, Copy)]
struct Entry {
    first: usize,
    /// Its text in the block's text.
    text: (usize, usize),
    /// Its compressed bytes in the section.
    packed: (usize, usize),
}

/// A block's text section, parsed and checked, decoded granule by granule on demand. Buffers are
/// reused from block to block.
#[derive(Debug, Default)]
pub struct Granules {
    entries: Vec<Entry>,
    blooms: usize,
    dict: (usize, usize),
    dict_len: usize,
    dict_buf: Vec<u8>,
    dict_ok: bool,
    text_buf: Vec<u8>,
    /// Granules probed and decoded since the last [`Granules::take_counts`].
    probed: u64,
    decoded: u64,
}

impl Granules {
    /// Parse the section at `packed[at..]` (a block payload) for a block of `events` events; returns the
    /// length of the block's text.
    pub fn parse(
        &mut self,
        packed: &[u8],
        at: usize,
        events: usize,
    ) -> Result<usize, StorageError> {
        self.entries.clear();
        self.dict_ok = false;
        let bad = || StorageError::Corrupt("granule index");
        let sec = packed.get(at..).ok_or_else(bad)?;
        let u = |o: usize| -> Result<usize, StorageError> {
            sec.get(o..o + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
                .ok_or_else(bad)
        };
        let (g, dict_len, dict_clen) = (u(0)?, u(4)?, u(8)?);
        let blooms = g
            .checked_mul(ENTRY)
            .and_then(|v| v.checked_add(12))
            .ok_or_else(bad)?;
        let dict_at = g
            .checked_mul(BLOOM_BYTES)
            .and_then(|v| v.checked_add(blooms))
            .ok_or_else(bad)?;
        let data_at = dict_at.checked_add(dict_clen).ok_or_else(bad)?;
        if data_at > sec.len() || (g == 0) != (events == 0) {
            return Err(bad());
        }
        let (mut text, mut packed) = (0usize, 0usize);
        for k in 0..g {
            let (first, end, cend) = (u(12 + k * ENTRY)?, u(16 + k * ENTRY)?, u(20 + k * ENTRY)?);
            let first_ok = if k == 0 {
                first == 0
            } else {
                first > self.entries[k - 1].first
            };
            if !first_ok || first >= events || end < text || cend < packed {
                return Err(bad());
            }
            self.entries.push(Entry {
                first,
                text: (text, end),
                packed: (at + data_at + packed, at + data_at + cend),
            });
            (text, packed) = (end, cend);
        }
        if data_at + packed != sec.len() || dict_len > text {
            return Err(bad());
        }
        self.blooms = at + blooms;
        self.dict = (at + dict_at, at + data_at);
        self.dict_len = dict_len;
        Ok(text)
    }

    /// Check the granules against the block's message ends: each starts where an event starts.
    pub fn check_ends(&self, ends: &[u32]) -> Result<(), StorageError> {
        for w in self.entries.windows(2) {
            let before = ends.get(w[1].first - 1).copied();
            if before != Some(w[1].text.0 as u32) {
                return Err(StorageError::Corrupt("granule bounds"));
            }
        }
        Ok(())
    }

    fn load_dict(&mut self, packed: &[u8]) -> Result<(), StorageError> {
        if !self.dict_ok {
            self.dict_buf.resize(self.dict_len, 0);
            let src = packed.get(self.dict.0..self.dict.1).unwrap_or_default();
            let n = lz4_flex::block::decompress_into(src, &mut self.dict_buf)
                .map_err(|_| StorageError::Corrupt("granule dictionary"))?;
            if n != self.dict_len {
                return Err(StorageError::Corrupt("granule dictionary"));
            }
            self.dict_ok = true;
        }
        Ok(())
    }

    /// Decode granule `k` into `out` (sized to fit).
    fn decode_into(&mut self, packed: &[u8], k: usize, out: &mut [u8]) -> Result<(), StorageError> {
        self.load_dict(packed)?;
        let e = self.entries[k];
        let src = packed.get(e.packed.0..e.packed.1).unwrap_or_default();
        let n = lz4_flex::block::decompress_into_with_dict(src, out, &self.dict_buf)
            .map_err(|_| StorageError::Corrupt("granule block"))?;
        if n != out.len() {
            return Err(StorageError::Corrupt("granule block"));
        }
        Ok(())
    }

    /// Append the whole text (every granule) to `out`; `packed` as given to [`Granules::parse`].
    pub fn decode_all(&mut self, packed: &[u8], out: &mut Vec<u8>) -> Result<(), StorageError> {
        self.decode_some(packed, None, out)
    }

    /// Append the whole text to `out`, but with a `probe` leave the granules whose filter rules
    /// its literal out zeroed: text in which the literal cannot occur, as in the real one.
    pub fn decode_some(
        &mut self,
        packed: &[u8],
        probe: Option<&Probe>,
        out: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        let probe = probe.filter(|p| !p.is_empty());
        let at = out.len();
        let len = self.entries.last().map_or(0, |e| e.text.1);
        // resizing writes zeros over every new byte
        out.resize(at + len, 0);
        for k in 0..self.entries.len() {
            let f = self.blooms + k * BLOOM_BYTES;
            if probe.is_none_or(|p| p.may_match(packed.get(f..f + BLOOM_BYTES).unwrap_or_default()))
            {
                let (a, b) = self.entries[k].text;
                self.decode_into(packed, k, &mut out[at + a..at + b])?;
            }
        }
        Ok(())
    }

    /// Call `hit(i)` (ascending) for every event `i` whose message contains the finder's needle,
    /// decoding only the granules whose filter passes `probe`. `ends` are the block's message
    /// ends (checked with [`Granules::check_ends`]).
    pub fn for_each_hit(
        &mut self,
        packed: &[u8],
        ends: &[u32],
        finder: &Finder,
        probe: &Probe,
        mut hit: impl FnMut(usize),
    ) -> Result<(), StorageError> {
        let mut buf = std::mem::take(&mut self.text_buf);
        let r = (|| {
            for k in 0..self.entries.len() {
                let f = self.blooms + k * BLOOM_BYTES;
                self.probed += 1;
                if !probe.may_match(packed.get(f..f + BLOOM_BYTES).unwrap_or_default()) {
                    continue;
                }
                self.decoded += 1;
                let e = self.entries[k];
                let last = self.entries.get(k + 1).map_or(ends.len(), |n| n.first);
                buf.resize(e.text.1 - e.text.0, 0);
                self.decode_into(packed, k, &mut buf)?;
                let ends = ends.get(e.first..last).unwrap_or_default();
                for_each_hit_from(&buf, e.text.0, ends, finder, |i| hit(e.first + i));
            }
            Ok(())
        })();
        self.text_buf = buf;
        r
    }

    /// Granules probed and decoded by [`Granules::for_each_hit`] since the last call; resets them.
    pub fn take_counts(&mut self) -> (u64, u64) {
        let c = (self.probed, self.decoded);
        (self.probed, self.decoded) = (0, 0);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(msgs: &[&[u8]]) -> (Vec<u8>, Vec<u32>) {
        let mut text = Vec::new();
        let mut ends = Vec::new();
        for m in msgs {
            text.extend_from_slice(m);
            ends.push(text.len() as u32);
        }
        (text, ends)
    }

    fn parsed(text: &[u8], ends: &[u32]) -> (Granules, Vec<u8>) {
        let mut g = Granules::default();
        let mut packed = b"xyz".to_vec();
        encode(text, ends, &mut packed).unwrap();
        assert_eq!(g.parse(&packed, 3, ends.len()).unwrap(), text.len());
        g.check_ends(ends).unwrap();
        (g, packed)
    }

    #[test]
    fn grams_are_folded_letter_windows() {
        let mut got = Vec::new();
        grams(b"ERRor x1abcd a-bc ab\xc3\xa9cd", |g| got.push(g));
        let want: Vec<u32> = ["err", "rro", "ror", "abc", "bcd"]
            .iter()
            .map(|s| {
                let b = s.as_bytes();
                u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
            })
            .collect();
        assert_eq!(got, want);
        assert!(Probe::new(b"12-ab").is_empty());
        assert!(!Probe::new(b"ERROR").is_empty());
        let f = bloom(b"an error here");
        let bytes: Vec<u8> = f.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert!(Probe::new(b"ERROR").may_match(&bytes));
        assert!(Probe::new(b"ror her").may_match(&bytes));
        assert!(Probe::new(b"12").may_match(&bytes));
        // a gram's two bits share one word (a blocked filter)
        for gram in ["err", "ror", "abc", "zzz"] {
            let f = bloom(gram.as_bytes());
            assert_eq!(f.iter().filter(|w| **w != 0).count(), 1, "{gram}");
            assert!((1..=2).contains(&f.iter().map(|w| w.count_ones()).sum::<u32>()));
        }
    }

    #[test]
    fn sections_roundtrip_and_skip() {
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        for i in 0..3_000u32 {
            let m = if i % 397 == 0 {
                format!("{i} ERROR disk full on host{}", i % 7)
            } else {
                format!("{i} INFO request served in {} ms user=u{}", i % 89, i % 13)
            };
            msgs.push(m.into_bytes());
        }
        msgs.push(vec![b'q'; 10_000]);
        msgs.push(Vec::new());
        let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
        let (text, ends) = block(&refs);
        let (mut g, packed) = parsed(&text, &ends);
        assert!(g.entries.len() > 50, "{}", g.entries.len());
        let mut all = b"keep".to_vec();
        g.decode_all(&packed, &mut all).unwrap();
        assert_eq!(&all[4..], &text[..]);
        for needle in ["ERROR", "error", "served", "host3", "q", "zzz", "ms user"] {
            let (f, p) = (Finder::new(needle), Probe::new(needle.as_bytes()));
            let mut got = Vec::new();
            g.for_each_hit(&packed, &ends, &f, &p, |i| got.push(i))
                .unwrap();
            let want: Vec<usize> = (0..msgs.len())
                .filter(|i| memchr::memmem::find(&msgs[*i], needle.as_bytes()).is_some())
                .collect();
            assert_eq!(got, want, "{needle}");
            let (probed, decoded) = g.take_counts();
            assert_eq!(probed, g.entries.len() as u64);
            if needle == "zzz" {
                assert_eq!(decoded, 0);
            }
            if needle == "ERROR" {
                assert!(decoded < probed / 2, "{decoded} of {probed}");
            }
        }
        // an empty block has no granules
        let (t, e) = block(&[]);
        let (g, _) = parsed(&t, &e);
        assert!(g.entries.is_empty());
    }

    /// Differential: random messages from a small vocabulary (case variants, digits, unicode,
    /// empty messages, long ones spanning granules) and random literals (pieces of the vocabulary,
    /// cut anywhere, so they start and end mid-word and mid-character): the skip path finds
    /// exactly the messages a naive search finds.
    #[test]
    fn skip_search_equals_naive_search() {
        const WORDS: [&str; 12] = [
            "ERROR",
            "error",
            "Error",
            "errand",
            "rro",
            "42",
            "x9z",
            "é",
            "ünïcödé",
            " ",
            "-",
            "WARN",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for round in 0..60 {
            let mut msgs: Vec<Vec<u8>> = Vec::new();
            for _ in 0..next(900) + 1 {
                let mut m = Vec::new();
                let words = if next(50) == 0 { 2_000 } else { next(12) };
                for _ in 0..words {
                    m.extend_from_slice(WORDS[next(WORDS.len())].as_bytes());
                }
                msgs.push(m);
            }
            let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
            let (text, ends) = block(&refs);
            let (mut g, packed) = parsed(&text, &ends);
            for _ in 0..25 {
                // a literal: a slice of some message (or of the vocabulary glued together)
                let src = &msgs[next(msgs.len())];
                let lit: Vec<u8> = if src.is_empty() || next(4) == 0 {
                    let mut l = Vec::new();
                    for _ in 0..next(3) + 1 {
                        l.extend_from_slice(WORDS[next(WORDS.len())].as_bytes());
                    }
                    l
                } else {
                    let a = next(src.len());
                    let b = (a + 1 + next(12)).min(src.len());
                    src[a..b].to_vec()
                };
                let (f, p) = (Finder::new(&lit), Probe::new(&lit));
                let mut got = Vec::new();
                g.for_each_hit(&packed, &ends, &f, &p, |i| got.push(i))
                    .unwrap();
                let want: Vec<usize> = (0..msgs.len())
                    .filter(|i| memchr::memmem::find(&msgs[*i], &lit).is_some())
                    .collect();
                assert_eq!(
                    got,
                    want,
                    "round {round} literal {:?}",
                    String::from_utf8_lossy(&lit)
                );
            }
        }
    }

    #[test]
    fn corrupt_sections_are_errors_not_panics() {
        let msgs: Vec<Vec<u8>> = (0..400)
            .map(|i| format!("event {i} with some ERROR text").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
        let (text, ends) = block(&refs);
        let mut sec = Vec::new();
        encode(&text, &ends, &mut sec).unwrap();
        let (f, p) = (Finder::new("ERROR"), Probe::new(b"ERROR"));
        let mut g = Granules::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..3_000 {
            let mut bad = sec.clone();
            if round % 3 == 0 {
                bad.truncate((x as usize) % sec.len());
            } else {
                for _ in 0..1 + round % 4 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = (x as usize) % bad.len();
                    bad[at] ^= (x >> 40) as u8 | 1;
                }
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if g.parse(&bad, 0, ends.len()).is_ok() && g.check_ends(&ends).is_ok() {
                let mut out = Vec::new();
                let _ = g.decode_all(&bad, &mut out);
                let _ = g.for_each_hit(&bad, &ends, &f, &p, |i| assert!(i < ends.len()));
            }
        }
    }
}
