//! The in-memory head: points accepted since the last checkpoint, per series, in arrival order.
//! Plain values (count 1, the common case) cost 16 bytes; other samples keep their extra fields
//! in a side list. A checkpoint freezes the head, sorts each series and writes it out as chunks.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::{Point, Sample};

/// Multiplicative hasher for `u32` series ids (assigned by the store) and for keys that are
/// already keyed hashes; not for attacker-chosen input.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, v: u64) {
        // Keys that are already hashes (series key hashes): fold the high bits in.
        self.0 = (v ^ (v >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, Debug)]
struct Ext {
    idx: u32,
    /// 1: value with count `a`; 2: statistic set with `val` = sum, count `a`, min `b`, max `c`.
    kind: u8,
    a: f64,
    b: f64,
    c: f64,
}

/// One series' head points.
#[derive(Default, Debug)]
pub(crate) struct SeriesHead {
    ts: Vec<i64>,
    val: Vec<f64>,
    ext: Vec<Ext>,
}

impl SeriesHead {
    #[inline]
    pub(crate) fn push(&mut self, p: &Point) {
        let idx = self.ts.len() as u32;
        self.ts.push(p.ts_ms);
        match p.sample {
            Sample::Value { value, count } => {
                self.val.push(value);
                if count != 1.0 {
                    self.ext.push(Ext {
                        idx,
                        kind: 1,
                        a: count,
                        b: 0.0,
                        c: 0.0,
                    });
                }
            }
            Sample::Stats {
                count,
                sum,
                min,
                max,
            } => {
                self.val.push(sum);
                self.ext.push(Ext {
                    idx,
                    kind: 2,
                    a: count,
                    b: min,
                    c: max,
                });
            }
        }
    }

    #[inline]
    fn sample(&self, i: usize, ext: Option<&Ext>) -> Sample {
        let v = self.val[i];
        match ext {
            Some(e) if e.idx as usize == i => {
                if e.kind == 1 {
                    Sample::Value {
                        value: v,
                        count: e.a,
                    }
                } else {
                    Sample::Stats {
                        count: e.a,
                        sum: v,
                        min: e.b,
                        max: e.c,
                    }
                }
            }
            _ => Sample::Value {
                value: v,
                count: 1.0,
            },
        }
    }

    /// Calls `f` for every point, in arrival order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(i64, &Sample)) {
        let mut next_ext = 0usize;
        for i in 0..self.ts.len() {
            let e = self.ext.get(next_ext);
            let s = self.sample(i, e);
            if e.is_some_and(|e| e.idx as usize == i) {
                next_ext += 1;
            }
            f(self.ts[i], &s);
        }
    }

    /// Adds every point to `b`: runs of plain values in bulk, other samples one by one.
    pub(crate) fn aggregate_into(&self, b: &mut crate::agg::Buckets) {
        let mut from = 0usize;
        for e in &self.ext {
            let i = e.idx as usize;
            if i < from || i >= self.ts.len() {
                continue;
            }
            b.add_plain_run(&self.ts[from..i], &self.val[from..i]);
            b.add_sample(self.ts[i], &self.sample(i, Some(e)));
            from = i + 1;
        }
        b.add_plain_run(&self.ts[from..], &self.val[from..]);
    }

    /// All points sorted by timestamp (stable).
    pub(crate) fn sorted_points(&self) -> Vec<Point> {
        let mut out = Vec::with_capacity(self.ts.len());
        self.for_each(|ts_ms, s| out.push(Point { ts_ms, sample: *s }));
        if !out.is_sorted_by_key(|p| p.ts_ms) {
            out.sort_by_key(|p| p.ts_ms);
        }
        out
    }
}

/// All series' head points.
#[derive(Default)]
pub(crate) struct Head {
    pub series: IdMap<SeriesHead>,
    pub points: u64,
}

impl Head {
    pub(crate) fn is_empty(&self) -> bool {
        self.points == 0
    }

    pub(crate) fn push(&mut self, sid: u32, points: &[Point]) {
        if points.is_empty() {
            return;
        }
        let s = self.series.entry(sid).or_default();
        s.ts.reserve(points.len());
        s.val.reserve(points.len());
        for p in points {
            s.push(p);
        }
        self.points += points.len() as u64;
    }

    /// Series ids, ascending.
    pub(crate) fn sids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.series.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_samples_come_back_sorted() {
        let mut h = Head::default();
        let pts = [
            Point {
                ts_ms: 30,
                sample: Sample::Value {
                    value: 1.0,
                    count: 1.0,
                },
            },
            Point {
                ts_ms: 10,
                sample: Sample::Stats {
                    count: 2.0,
                    sum: 3.0,
                    min: 1.0,
                    max: 2.0,
                },
            },
            Point {
                ts_ms: 20,
                sample: Sample::Value {
                    value: 4.0,
                    count: 5.0,
                },
            },
            Point {
                ts_ms: 10,
                sample: Sample::Value {
                    value: 6.0,
                    count: 1.0,
                },
            },
        ];
        h.push(9, &pts);
        assert_eq!(h.points, 4);
        let mut seen = Vec::new();
        h.series[&9].for_each(|t, s| {
            seen.push(Point {
                ts_ms: t,
                sample: *s,
            })
        });
        assert_eq!(seen, pts);
        let sorted = h.series[&9].sorted_points();
        assert_eq!(
            sorted.iter().map(|p| p.ts_ms).collect::<Vec<_>>(),
            vec![10, 10, 20, 30]
        );
        assert_eq!(sorted[0], pts[1]);
        assert_eq!(sorted[1], pts[3]);
    }
}
