//! Raw chunk codec: one series' points in one time window, split into *frames* of at most
//! [`FRAME_MAX_POINTS`] points, each compressed and summarised (count/sum/min/max, capability
//! flags) in a frame table, so aggregation by period can add whole frames without decoding them.
//!
//! Frames are cut at minute boundaries once they hold [`FRAME_MIN_POINTS`] points, so for dense
//! series a minute-aligned query period covers whole frames.
//!
//! Each frame picks, by computing both sizes, the smaller of two encodings for its timestamps and
//! (when all its samples are plain values) for its values:
//! * timestamps: Gorilla delta-of-delta (`0` same delta, `10`+7, `110`+12, `1110`+20 or `1111`+64
//!   bits of zigzag), or fixed width: every delta as `delta - min_delta` in `w` bits;
//! * values: Gorilla XOR against the previous value of the same field (`0` same, `10` meaningful
//!   bits in the previous window, `11` + 5 bits leading zeros + 6 bits length-1 + bits), or
//!   *decimal*: when every value is exactly `m / 10^d` for an integer `m` (`d <= 9`), the zigzag
//!   deltas of `m` in a fixed width — integers and few-decimal values compress to a few bits.
//!
//! Bitstream: header (fixed timestamps: `w` in 7 bits, `min_delta` as varbits; decimal: `d` in 4
//! bits, `w` in 7 bits, first `m` as varbits), then per point: timestamp (the first point's is in
//! the frame table), kind in 2 bits unless the frame is all plain values (0 plain, 1 value with
//! count, 2 statistic set), then the fields — value (V); count (C); stat set: count (C), sum (S),
//! min (V), max (M). Varbits: a 7-bit length, then that many bits.

use crate::agg::contribution;
use crate::bits::{
    put_ivarint, put_uvarint, put_xf64, unzigzag, zigzag, BitReader, BitWriter, Cursor, Truncated,
};
use crate::{Point, Sample};

/// Largest number of points in one frame.
pub(crate) const FRAME_MAX_POINTS: usize = 1024;
/// A frame is cut at a minute boundary once it holds this many points.
pub(crate) const FRAME_MIN_POINTS: usize = 32;
const MINUTE_MS: i64 = 60_000;

const FLAG_ALL_SIMPLE: u8 = 1;
const FLAG_ALL_CAPABLE: u8 = 2;
const FLAG_COUNT_IS_N: u8 = 4;
const FLAG_TS_FIXED: u8 = 8;
const FLAG_DECIMAL: u8 = 16;
/// Largest decimal exponent tried.
const MAX_DECIMALS: u32 = 9;
const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// One frame's entry in a chunk's frame table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FrameInfo {
    pub first_ts: i64,
    pub last_ts: i64,
    pub n: u32,
    /// Offset of the frame's bitstream within the chunk payload.
    pub payload_off: usize,
    pub payload_len: usize,
    /// Every point is a plain value with count 1.
    pub all_simple: bool,
    /// Every point can contribute to a percentile distribution.
    pub all_capable: bool,
    /// Timestamps in fixed width rather than delta-of-delta.
    pub ts_fixed: bool,
    /// Values as scaled decimal integers rather than XOR.
    pub decimal: bool,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Clone, Copy, Default)]
struct XorState {
    prev: u64,
    lead: u32,
    trail: u32,
    has_window: bool,
}

#[inline]
fn put_xor(w: &mut BitWriter, st: &mut XorState, v: f64) {
    let bits = v.to_bits();
    let x = st.prev ^ bits;
    st.prev = bits;
    if x == 0 {
        w.write(0, 1);
        return;
    }
    let lz = x.leading_zeros().min(31);
    let tz = x.trailing_zeros();
    if st.has_window && lz >= st.lead && tz >= st.trail {
        let n = 64 - st.lead - st.trail;
        w.write(0b10, 2);
        w.write(x >> st.trail, n);
    } else {
        let sig = 64 - lz - tz;
        w.write((0b11 << 11) | ((lz as u64) << 6) | (sig as u64 - 1), 13);
        w.write(x >> tz, sig);
        st.lead = lz;
        st.trail = tz;
        st.has_window = true;
    }
}

#[inline]
fn get_xor(r: &mut BitReader<'_>, st: &mut XorState) -> Result<f64, Truncated> {
    if r.read_bit()? {
        if r.read_bit()? {
            let hdr = r.read(11)?;
            let lz = (hdr >> 6) as u32;
            let sig = (hdr & 0x3f) as u32 + 1;
            if lz + sig > 64 {
                return Err(Truncated);
            }
            let tz = 64 - lz - sig;
            st.prev ^= r.read(sig)? << tz;
            st.lead = lz;
            st.trail = tz;
            st.has_window = true;
        } else {
            if !st.has_window {
                return Err(Truncated);
            }
            let n = 64 - st.lead - st.trail;
            st.prev ^= r.read(n)? << st.trail;
        }
    }
    Ok(f64::from_bits(st.prev))
}

#[inline]
fn put_dod(w: &mut BitWriter, dod: i64) {
    let z = zigzag(dod);
    if z == 0 {
        w.write(0, 1);
    } else if z < 1 << 7 {
        w.write((0b10 << 7) | z, 9);
    } else if z < 1 << 12 {
        w.write((0b110 << 12) | z, 15);
    } else if z < 1 << 20 {
        w.write((0b1110 << 20) | z, 24);
    } else {
        w.write(0b1111, 4);
        w.write(z, 64);
    }
}

#[inline]
fn get_dod(r: &mut BitReader<'_>) -> Result<i64, Truncated> {
    if !r.read_bit()? {
        return Ok(0);
    }
    let z = if !r.read_bit()? {
        r.read(7)?
    } else if !r.read_bit()? {
        r.read(12)?
    } else if !r.read_bit()? {
        r.read(20)?
    } else {
        r.read(64)?
    };
    Ok(unzigzag(z))
}

#[inline]
fn dod_bits(dod: i64) -> u64 {
    match zigzag(dod) {
        0 => 1,
        z if z < 1 << 7 => 9,
        z if z < 1 << 12 => 15,
        z if z < 1 << 20 => 24,
        _ => 68,
    }
}

#[inline]
fn bit_len(v: u64) -> u32 {
    64 - v.leading_zeros()
}

fn put_varbits(w: &mut BitWriter, v: u64) {
    let n = bit_len(v);
    w.write(n as u64, 7);
    w.write(v, n);
}

fn get_varbits(r: &mut BitReader<'_>) -> Result<u64, Truncated> {
    let n = r.read(7)? as u32;
    if n > 64 {
        return Err(Truncated);
    }
    r.read(n)
}

/// Bits `put_xor` would use for `values`.
fn xor_bits(values: impl Iterator<Item = f64>) -> u64 {
    let mut st = XorState::default();
    let mut bits = 0u64;
    for v in values {
        let b = v.to_bits();
        let x = st.prev ^ b;
        st.prev = b;
        if x == 0 {
            bits += 1;
            continue;
        }
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        if st.has_window && lz >= st.lead && tz >= st.trail {
            bits += 2 + (64 - st.lead - st.trail) as u64;
        } else {
            bits += 13 + (64 - lz - tz) as u64;
            st.lead = lz;
            st.trail = tz;
            st.has_window = true;
        }
    }
    bits
}

/// The decimal form of `values`: exponent and integers, if every value round-trips exactly.
fn as_decimal(values: &[f64], out: &mut Vec<i64>) -> Option<u32> {
    'exp: for d in 0..=MAX_DECIMALS {
        let scale = POW10[d as usize];
        out.clear();
        for &v in values {
            let m = (v * scale).round();
            if m.is_nan() || m.abs() >= 9.0e15 {
                continue 'exp;
            }
            let mi = m as i64;
            if (mi as f64 / scale).to_bits() != v.to_bits() {
                continue 'exp;
            }
            out.push(mi);
        }
        return Some(d);
    }
    None
}

/// How one frame's timestamps and values are laid out.
struct Layout {
    ts_fixed: Option<(i64, u32)>,
    decimal: Option<(u32, u32)>,
}

/// Builds one series' chunk point by point (points must arrive in ascending timestamp order).
/// Payload bytes accumulate in [`ChunkBuilder::payload`], which the caller may drain at any time
/// (e.g. to stream a large chunk to a file); the frame table is kept until the end.
pub(crate) struct ChunkBuilder {
    frame: Vec<Point>,
    scratch_f: Vec<f64>,
    scratch_m: Vec<i64>,
    bw: BitWriter,
    pub(crate) payload: Vec<u8>,
    table: Vec<u8>,
    crc: crc32fast::Hasher,
    prev_last_ts: i64,
    /// Previous frame's count, sum, min, max bits (the table XORs against them).
    prev_stats: [u64; 4],
    pub(crate) payload_len: u64,
    pub(crate) n_frames: u32,
    pub(crate) n_points: u64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
}

/// A finished chunk's frame table and totals.
pub(crate) struct ChunkDone {
    pub table: Vec<u8>,
    pub payload_crc: u32,
    pub payload_len: u64,
    pub n_frames: u32,
    pub n_points: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl ChunkBuilder {
    pub(crate) fn new() -> Self {
        ChunkBuilder {
            frame: Vec::with_capacity(64),
            scratch_f: Vec::new(),
            scratch_m: Vec::new(),
            bw: BitWriter::new(),
            payload: Vec::new(),
            table: Vec::new(),
            crc: crc32fast::Hasher::new(),
            prev_last_ts: 0,
            prev_stats: [0; 4],
            payload_len: 0,
            n_frames: 0,
            n_points: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, p: Point) {
        if let Some(first) = self.frame.first() {
            let n = self.frame.len();
            if n >= FRAME_MAX_POINTS
                || (n >= FRAME_MIN_POINTS
                    && p.ts_ms.div_euclid(MINUTE_MS) != first.ts_ms.div_euclid(MINUTE_MS))
            {
                self.emit_frame();
            }
        }
        self.frame.push(p);
    }

    fn emit_frame(&mut self) {
        let pts = std::mem::take(&mut self.frame);
        let Some(first) = pts.first() else {
            self.frame = pts;
            return;
        };
        let first_ts = first.ts_ms;
        let last_ts = pts[pts.len() - 1].ts_ms;
        let all_simple = pts
            .iter()
            .all(|p| matches!(p.sample, Sample::Value { count, .. } if count == 1.0));
        let (mut count, mut sum, mut min, mut max, mut all_capable) =
            (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, true);
        for p in &pts {
            let c = contribution(&p.sample);
            count += c.count;
            sum += c.sum;
            min = min.min(c.min);
            max = max.max(c.max);
            all_capable &= c.capable;
        }
        let layout = self.layout(&pts, all_simple);
        // Bitstream.
        if let Some((min_d, w)) = layout.ts_fixed {
            self.bw.write(w as u64, 7);
            put_varbits(&mut self.bw, zigzag(min_d));
        }
        if let Some((d, w)) = layout.decimal {
            self.bw.write(d as u64, 4);
            self.bw.write(w as u64, 7);
            put_varbits(&mut self.bw, zigzag(self.scratch_m[0]));
        }
        let (mut v, mut c, mut s, mut m) = (
            XorState::default(),
            XorState::default(),
            XorState::default(),
            XorState::default(),
        );
        let mut prev_ts = first_ts;
        let mut prev_delta = 0i64;
        for (i, p) in pts.iter().enumerate() {
            if i > 0 {
                let delta = p.ts_ms.wrapping_sub(prev_ts);
                match layout.ts_fixed {
                    Some((min_d, w)) => self.bw.write(delta.wrapping_sub(min_d) as u64, w),
                    None => put_dod(&mut self.bw, delta.wrapping_sub(prev_delta)),
                }
                prev_delta = delta;
                prev_ts = p.ts_ms;
            }
            match p.sample {
                Sample::Value { value, count } => {
                    if all_simple {
                        match layout.decimal {
                            Some((_, w)) => {
                                if i > 0 {
                                    let dm = self.scratch_m[i].wrapping_sub(self.scratch_m[i - 1]);
                                    self.bw.write(zigzag(dm), w);
                                }
                            }
                            None => put_xor(&mut self.bw, &mut v, value),
                        }
                    } else if count == 1.0 {
                        self.bw.write(0, 2);
                        put_xor(&mut self.bw, &mut v, value);
                    } else {
                        self.bw.write(1, 2);
                        put_xor(&mut self.bw, &mut v, value);
                        put_xor(&mut self.bw, &mut c, count);
                    }
                }
                Sample::Stats {
                    count,
                    sum,
                    min,
                    max,
                } => {
                    self.bw.write(2, 2);
                    put_xor(&mut self.bw, &mut c, count);
                    put_xor(&mut self.bw, &mut s, sum);
                    put_xor(&mut self.bw, &mut v, min);
                    put_xor(&mut self.bw, &mut m, max);
                }
            }
        }
        let before = self.payload.len();
        self.bw.finish_into(&mut self.payload);
        let len = self.payload.len() - before;
        self.crc.update(&self.payload[before..]);
        // Table entry.
        let count_is_n = count == pts.len() as f64;
        put_ivarint(&mut self.table, first_ts.wrapping_sub(self.prev_last_ts));
        put_uvarint(&mut self.table, last_ts.wrapping_sub(first_ts) as u64);
        put_uvarint(&mut self.table, pts.len() as u64);
        put_uvarint(&mut self.table, len as u64);
        let flags = (all_simple as u8 * FLAG_ALL_SIMPLE)
            | (all_capable as u8 * FLAG_ALL_CAPABLE)
            | (count_is_n as u8 * FLAG_COUNT_IS_N)
            | (layout.ts_fixed.is_some() as u8 * FLAG_TS_FIXED)
            | (layout.decimal.is_some() as u8 * FLAG_DECIMAL);
        self.table.push(flags);
        if count_is_n {
            self.prev_stats[0] = count.to_bits();
        } else {
            put_xf64(&mut self.table, &mut self.prev_stats[0], count);
        }
        for (i, f) in [sum, min, max].into_iter().enumerate() {
            put_xf64(&mut self.table, &mut self.prev_stats[i + 1], f);
        }
        self.prev_last_ts = last_ts;
        self.payload_len += len as u64;
        self.n_frames += 1;
        self.n_points += pts.len() as u64;
        self.min_ts = self.min_ts.min(first_ts);
        self.max_ts = self.max_ts.max(last_ts);
        self.frame = pts;
        self.frame.clear();
    }

    /// Picks the cheaper timestamp and value encodings for a frame; leaves the decimal integers
    /// in `scratch_m` when the decimal form is chosen.
    fn layout(&mut self, pts: &[Point], all_simple: bool) -> Layout {
        let n = pts.len() as u64;
        let mut gorilla = 0u64;
        let (mut min_d, mut max_d) = (i64::MAX, i64::MIN);
        let mut prev_delta = 0i64;
        for w in pts.windows(2) {
            let d = w[1].ts_ms.wrapping_sub(w[0].ts_ms);
            gorilla += dod_bits(d.wrapping_sub(prev_delta));
            prev_delta = d;
            min_d = min_d.min(d);
            max_d = max_d.max(d);
        }
        let ts_fixed = (n > 1)
            .then(|| {
                let w = bit_len(max_d.wrapping_sub(min_d) as u64);
                let cost = 7 + 7 + bit_len(zigzag(min_d)) as u64 + (n - 1) * w as u64;
                (cost < gorilla).then_some((min_d, w))
            })
            .flatten();
        let mut decimal = None;
        if all_simple {
            self.scratch_f.clear();
            self.scratch_f.extend(pts.iter().map(|p| match p.sample {
                Sample::Value { value, .. } => value,
                Sample::Stats { sum, .. } => sum,
            }));
            if let Some(d) = as_decimal(&self.scratch_f, &mut self.scratch_m) {
                let m = &self.scratch_m;
                let maxz = m
                    .windows(2)
                    .map(|w| zigzag(w[1].wrapping_sub(w[0])))
                    .max()
                    .unwrap_or(0);
                let w = bit_len(maxz);
                let cost = 4 + 7 + 7 + bit_len(zigzag(m[0])) as u64 + (n - 1) * w as u64;
                if cost < xor_bits(self.scratch_f.iter().copied()) {
                    decimal = Some((d, w));
                }
            }
        }
        Layout { ts_fixed, decimal }
    }

    /// Ends the chunk. Payload bytes still in [`ChunkBuilder::payload`] belong to it.
    pub(crate) fn finish(&mut self) -> ChunkDone {
        self.emit_frame();
        let done = ChunkDone {
            table: std::mem::take(&mut self.table),
            payload_crc: std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize(),
            payload_len: self.payload_len,
            n_frames: self.n_frames,
            n_points: self.n_points,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
        };
        self.prev_last_ts = 0;
        self.prev_stats = [0; 4];
        self.payload_len = 0;
        self.n_frames = 0;
        self.n_points = 0;
        self.min_ts = i64::MAX;
        self.max_ts = i64::MIN;
        done
    }
}

/// Parses a chunk's frame table.
pub(crate) fn parse_table(
    table: &[u8],
    n_frames: u32,
    payload_len: usize,
) -> Result<Vec<FrameInfo>, Truncated> {
    let mut c = Cursor::new(table);
    let mut out = Vec::with_capacity(n_frames.min(1 << 20) as usize);
    let mut prev_last = 0i64;
    let mut prev = [0u64; 4];
    let mut off = 0usize;
    for _ in 0..n_frames {
        let first_ts = prev_last.wrapping_add(c.ivarint()?);
        let last_ts = first_ts.wrapping_add(c.uvarint()? as i64);
        if last_ts < first_ts {
            return Err(Truncated);
        }
        let n = c.u32v()?;
        let len = usize::try_from(c.uvarint()?).map_err(|_| Truncated)?;
        let flags = c.u8()?;
        if flags >= 32 || (flags & FLAG_DECIMAL != 0 && flags & FLAG_ALL_SIMPLE == 0) {
            return Err(Truncated);
        }
        let count = if flags & FLAG_COUNT_IS_N != 0 {
            prev[0] = (n as f64).to_bits();
            n as f64
        } else {
            c.xf64(&mut prev[0])?
        };
        let sum = c.xf64(&mut prev[1])?;
        let min = c.xf64(&mut prev[2])?;
        let max = c.xf64(&mut prev[3])?;
        if n == 0
            || n as usize > FRAME_MAX_POINTS
            || off.checked_add(len).is_none_or(|e| e > payload_len)
        {
            return Err(Truncated);
        }
        out.push(FrameInfo {
            first_ts,
            last_ts,
            n,
            payload_off: off,
            payload_len: len,
            all_simple: flags & FLAG_ALL_SIMPLE != 0,
            all_capable: flags & FLAG_ALL_CAPABLE != 0,
            ts_fixed: flags & FLAG_TS_FIXED != 0,
            decimal: flags & FLAG_DECIMAL != 0,
            count,
            sum,
            min,
            max,
        });
        off += len;
        prev_last = last_ts;
    }
    if !c.is_empty() {
        return Err(Truncated);
    }
    Ok(out)
}

/// Reads a frame's header: the timestamp and value decoders.
fn frame_header(
    r: &mut BitReader<'_>,
    fi: &FrameInfo,
) -> Result<(TsDec, Option<DecDec>), Truncated> {
    let ts = if fi.ts_fixed {
        let w = r.read(7)? as u32;
        if w > 64 {
            return Err(Truncated);
        }
        TsDec {
            fixed: Some((unzigzag(get_varbits(r)?), w)),
            ts: fi.first_ts,
            delta: 0,
        }
    } else {
        TsDec {
            fixed: None,
            ts: fi.first_ts,
            delta: 0,
        }
    };
    let dec = if fi.decimal {
        let d = r.read(4)? as usize;
        let w = r.read(7)? as u32;
        if d > MAX_DECIMALS as usize || w > 64 {
            return Err(Truncated);
        }
        Some(DecDec {
            scale: POW10[d],
            w,
            m: unzigzag(get_varbits(r)?),
        })
    } else {
        None
    };
    Ok((ts, dec))
}

struct TsDec {
    fixed: Option<(i64, u32)>,
    ts: i64,
    delta: i64,
}

impl TsDec {
    /// Timestamp of point `i`.
    #[inline(always)]
    fn next(&mut self, r: &mut BitReader<'_>, i: u32) -> Result<i64, Truncated> {
        if i > 0 {
            self.delta = match self.fixed {
                Some((min_d, w)) => min_d.wrapping_add(r.read(w)? as i64),
                None => self.delta.wrapping_add(get_dod(r)?),
            };
            self.ts = self.ts.wrapping_add(self.delta);
        }
        Ok(self.ts)
    }
}

struct DecDec {
    scale: f64,
    w: u32,
    m: i64,
}

impl DecDec {
    #[inline(always)]
    fn next(&mut self, r: &mut BitReader<'_>, i: u32) -> Result<f64, Truncated> {
        if i > 0 {
            self.m = self.m.wrapping_add(unzigzag(r.read(self.w)?));
        }
        Ok(self.m as f64 / self.scale)
    }
}

/// Decodes a frame of plain values (count 1) into `ts` and `vals`.
pub(crate) fn decode_simple(
    payload: &[u8],
    fi: &FrameInfo,
    ts: &mut Vec<i64>,
    vals: &mut Vec<f64>,
) -> Result<(), Truncated> {
    debug_assert!(fi.all_simple);
    let bytes = payload
        .get(fi.payload_off..fi.payload_off + fi.payload_len)
        .ok_or(Truncated)?;
    let mut r = BitReader::new(bytes);
    let (mut td, dec) = frame_header(&mut r, fi)?;
    ts.reserve(fi.n as usize);
    vals.reserve(fi.n as usize);
    match dec {
        Some(mut dd) => {
            for i in 0..fi.n {
                ts.push(td.next(&mut r, i)?);
                vals.push(dd.next(&mut r, i)?);
            }
        }
        None => {
            let mut v = XorState::default();
            for i in 0..fi.n {
                ts.push(td.next(&mut r, i)?);
                vals.push(get_xor(&mut r, &mut v)?);
            }
        }
    }
    Ok(())
}

/// Decodes one frame, calling `f(ts, sample)` for each point in order.
pub(crate) fn decode_frame(
    payload: &[u8],
    fi: &FrameInfo,
    mut f: impl FnMut(i64, Sample),
) -> Result<(), Truncated> {
    let bytes = payload
        .get(fi.payload_off..fi.payload_off + fi.payload_len)
        .ok_or(Truncated)?;
    let mut r = BitReader::new(bytes);
    let (mut td, mut dec) = frame_header(&mut r, fi)?;
    let (mut v, mut c, mut s, mut m) = (
        XorState::default(),
        XorState::default(),
        XorState::default(),
        XorState::default(),
    );
    for i in 0..fi.n {
        let ts = td.next(&mut r, i)?;
        let sample = if fi.all_simple {
            let value = match &mut dec {
                Some(dd) => dd.next(&mut r, i)?,
                None => get_xor(&mut r, &mut v)?,
            };
            Sample::Value { value, count: 1.0 }
        } else {
            match r.read(2)? {
                0 => Sample::Value {
                    value: get_xor(&mut r, &mut v)?,
                    count: 1.0,
                },
                1 => {
                    let value = get_xor(&mut r, &mut v)?;
                    Sample::Value {
                        value,
                        count: get_xor(&mut r, &mut c)?,
                    }
                }
                2 => {
                    let count = get_xor(&mut r, &mut c)?;
                    let sum = get_xor(&mut r, &mut s)?;
                    let min = get_xor(&mut r, &mut v)?;
                    let max = get_xor(&mut r, &mut m)?;
                    Sample::Stats {
                        count,
                        sum,
                        min,
                        max,
                    }
                }
                _ => return Err(Truncated),
            }
        };
        f(ts, sample);
    }
    Ok(())
}

/// Decodes a whole chunk into points.
#[cfg(test)]
pub(crate) fn decode_all(
    payload: &[u8],
    frames: &[FrameInfo],
    out: &mut Vec<Point>,
) -> Result<(), Truncated> {
    for fi in frames {
        decode_frame(payload, fi, |ts_ms, sample| {
            out.push(Point { ts_ms, sample })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
