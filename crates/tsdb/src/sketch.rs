//! A log-bucket histogram sketch (in the spirit of DDSketch) that roll-ups keep per period so that
//! percentiles stay available, with ~1% relative accuracy, after raw points are gone.
//!
//! A value `v` with `|v| in (γ^(k-1), γ^k]` lands in bucket `k` (mirrored for negative values,
//! one bucket for zero and magnitudes below 1e-300). A bucket is represented by
//! `2·γ^k / (γ+1)`, within `(γ-1)/(γ+1) ≈ 0.99%` of every value in it, for `γ = 1.02`.
//!
//! Encoding: bin count (varint), a flags byte (bit 0: every weight is a whole number), keys
//! ascending as a zigzag first key and positive deltas, then weights as varints or raw f64s.

use crate::bits::{put_ivarint, put_uvarint, Cursor, Truncated};

/// Bucket growth factor.
pub(crate) const GAMMA: f64 = 1.02;
const KEY_OFFSET: i32 = 40_000;
const MIN_MAGNITUDE: f64 = 1e-300;

/// Sorted `(key, weight)` bins.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sketch {
    pub bins: Vec<(i32, f64)>,
}

/// Bucket key of `v`; keys order like values.
pub(crate) fn key_of(v: f64) -> i32 {
    let a = v.abs();
    if a.is_nan() || a < MIN_MAGNITUDE {
        return 0;
    }
    let k = (a.ln() / GAMMA.ln()).ceil();
    let k = if k.is_finite() {
        k.clamp(-(KEY_OFFSET - 1) as f64, (KEY_OFFSET - 1) as f64) as i32
    } else {
        KEY_OFFSET - 1
    };
    let k = k + KEY_OFFSET;
    if v > 0.0 {
        k
    } else {
        -k
    }
}

/// Representative value of bucket `key`.
pub(crate) fn value_of(key: i32) -> f64 {
    if key == 0 {
        return 0.0;
    }
    let k = key.abs() - KEY_OFFSET;
    let v = 2.0 * GAMMA.powi(k) / (GAMMA + 1.0);
    if key > 0 {
        v
    } else {
        -v
    }
}

impl Sketch {
    /// Adds `w` copies of `v` (bins unsorted until [`Sketch::normalize`]).
    pub(crate) fn push(&mut self, v: f64, w: f64) {
        if w > 0.0 {
            self.bins.push((key_of(v), w));
            // Keep memory bounded by the number of distinct buckets, not of samples.
            if self.bins.len() >= 4096 && self.bins.len().is_power_of_two() {
                self.normalize();
            }
        }
    }

    /// Sorts bins and merges equal keys.
    pub(crate) fn normalize(&mut self) {
        if self.bins.windows(2).all(|p| p[0].0 < p[1].0) {
            return;
        }
        self.bins.sort_unstable_by_key(|b| b.0);
        let mut out: Vec<(i32, f64)> = Vec::with_capacity(self.bins.len());
        for (k, w) in self.bins.drain(..) {
            match out.last_mut() {
                Some(l) if l.0 == k => l.1 += w,
                _ => out.push((k, w)),
            }
        }
        self.bins = out;
    }

    /// Adds another sketch's bins (call [`Sketch::normalize`] after).
    pub(crate) fn merge(&mut self, other: &Sketch) {
        self.bins.extend_from_slice(&other.bins);
    }

    /// `(representative value, weight)` pairs, representatives clamped into `[min, max]`.
    pub(crate) fn pairs(&self, min: f64, max: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.bins.iter().map(move |&(k, w)| {
            let v = value_of(k);
            let v = if v < min {
                min
            } else if v > max {
                max
            } else {
                v
            };
            (v, w)
        })
    }

    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, self.bins.len() as u64);
        let integral = self
            .bins
            .iter()
            .all(|b| b.1.fract() == 0.0 && b.1 >= 0.0 && b.1 < 9.0e15);
        buf.push(integral as u8);
        let mut prev = 0i32;
        for (i, &(k, _)) in self.bins.iter().enumerate() {
            if i == 0 {
                put_ivarint(buf, k as i64);
            } else {
                put_uvarint(buf, (k as i64 - prev as i64) as u64);
            }
            prev = k;
        }
        for &(_, w) in &self.bins {
            if integral {
                put_uvarint(buf, w as u64);
            } else {
                buf.extend_from_slice(&w.to_le_bytes());
            }
        }
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Sketch, Truncated> {
        let n = usize::try_from(c.uvarint()?).map_err(|_| Truncated)?;
        if n > c.data.len() {
            return Err(Truncated);
        }
        let integral = match c.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Truncated),
        };
        let mut bins = Vec::with_capacity(n);
        let mut prev = 0i64;
        for i in 0..n {
            let k = if i == 0 {
                c.ivarint()?
            } else {
                let d = c.uvarint()?;
                if d == 0 || d > (2 * KEY_OFFSET) as u64 {
                    return Err(Truncated);
                }
                prev + d as i64
            };
            if k.unsigned_abs() > KEY_OFFSET as u64 * 2 {
                return Err(Truncated);
            }
            prev = k;
            bins.push((k as i32, 0.0));
        }
        for b in &mut bins {
            b.1 = if integral {
                c.uvarint()? as f64
            } else {
                c.f64le()?
            };
        }
        Ok(Sketch { bins })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representatives_are_within_one_percent() {
        let mut x = 1e-12f64;
        while x < 1e15 {
            for v in [x, -x] {
                let r = value_of(key_of(v));
                assert!(((r - v) / v).abs() <= 0.01, "v={v} r={r}");
            }
            x *= 1.0137;
        }
        assert_eq!(value_of(key_of(0.0)), 0.0);
        assert!(
            key_of(-5.0) < key_of(-4.0) && key_of(-4.0) < key_of(0.0) && key_of(0.0) < key_of(1e-9)
        );
        // Extremes do not panic and stay ordered.
        assert!(key_of(f64::MAX) >= key_of(1e300));
        assert!(key_of(f64::INFINITY) > 0 && key_of(f64::NEG_INFINITY) < 0);
    }

    #[test]
    fn percentile_from_sketch_is_close() {
        let mut s = Sketch::default();
        for i in 1..=10_000 {
            s.push(i as f64, 1.0);
        }
        s.normalize();
        let pairs: Vec<(f64, f64)> = s.pairs(1.0, 10_000.0).collect();
        let mut acc = 0.0;
        let mut p90 = 0.0;
        for (v, w) in &pairs {
            acc += w;
            if acc >= 9_000.0 {
                p90 = *v;
                break;
            }
        }
        assert!((p90 - 9_000.0f64).abs() / 9_000.0 <= 0.011, "p90={p90}");
        assert!(pairs.len() < 500, "bins={}", pairs.len());
    }

    #[test]
    fn encode_roundtrip_integral_and_fractional() {
        for w in [1.0, 0.5] {
            let mut s = Sketch::default();
            for v in [-3.0, 0.0, 1e-5, 2.0, 2.0, 1e9] {
                s.push(v, w);
            }
            s.normalize();
            let mut buf = Vec::new();
            s.encode(&mut buf);
            let mut c = Cursor::new(&buf);
            assert_eq!(Sketch::decode(&mut c).unwrap(), s);
            assert!(c.is_empty());
            assert!(Sketch::decode(&mut Cursor::new(&buf[..buf.len() - 1])).is_err());
        }
    }
}
