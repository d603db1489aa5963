//! Aggregation semantics: what one sample contributes to a period, and the per-query bucket
//! accumulator that turns contributions from the head, raw chunks (points or whole-frame
//! summaries) and roll-up records into [`Bucket`]s.
//!
//! A `Value { value, count }` contributes `count` samples of `value`; a `Stats` sample contributes
//! its count/sum/min/max and joins the percentile distribution only when it describes identical
//! values (`count == 1 && min == max == sum`, or `min == max && sum == min * count`). One
//! non-qualifying contribution makes the whole bucket's `values` `None`.

use std::collections::BTreeMap;

use crate::{Bucket, Sample};

/// What one sample adds to a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Contribution {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Whether it can join a percentile distribution, as `count` copies of `dist`.
    pub capable: bool,
    pub dist: f64,
}

#[inline]
pub(crate) fn contribution(s: &Sample) -> Contribution {
    match *s {
        Sample::Value { value, count } => Contribution {
            count,
            sum: value * count,
            min: value,
            max: value,
            capable: true,
            dist: value,
        },
        Sample::Stats {
            count,
            sum,
            min,
            max,
        } => {
            let capable =
                (count == 1.0 && min == max && max == sum) || (min == max && sum == min * count);
            Contribution {
                count,
                sum,
                min,
                max,
                capable,
                dist: min,
            }
        }
    }
}

/// Running aggregate of one bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acc {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub used: bool,
    pub incapable: bool,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            used: false,
            incapable: false,
        }
    }
}

impl Acc {
    #[inline]
    fn add(&mut self, count: f64, sum: f64, min: f64, max: f64) {
        self.count += count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        self.used = true;
    }
}

/// A bucket's distribution while it is being collected: plain values (weight 1) as sort keys,
/// which sort much faster than pairs, and weighted pairs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vals {
    keys: Vec<i64>,
    pairs: Vec<(f64, f64)>,
}

impl Vals {
    fn clear(&mut self) {
        *self = Vals::default();
    }

    /// Sorted `(value, weight)` pairs, equal values merged.
    fn finish(self) -> Vec<(f64, f64)> {
        let mut keys = self.keys;
        keys.sort_unstable();
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(keys.len().min(1024) + self.pairs.len());
        let mut prev = None;
        for k in keys {
            if prev == Some(k) {
                if let Some(l) = out.last_mut() {
                    l.1 += 1.0;
                }
            } else {
                out.push((from_key(k), 1.0));
                prev = Some(k);
            }
        }
        if self.pairs.is_empty() {
            return out;
        }
        out.extend(self.pairs);
        normalize_pairs(out)
    }
}

/// An integer ordered like `f64::total_cmp` (an involution: [`from_key`] undoes it).
#[inline]
fn to_key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

#[inline]
fn from_key(k: i64) -> f64 {
    f64::from_bits((k ^ ((((k >> 63) as u64) >> 1) as i64)) as u64)
}

/// Largest number of periods kept in a dense array; larger ranges use a map.
const DENSE_LIMIT: u64 = 1 << 16;

/// Bucket accumulator for one `aggregate` call.
pub(crate) struct Buckets {
    start: i64,
    end: i64,
    period: u64,
    pub(crate) with_values: bool,
    dense: Vec<Acc>,
    dense_vals: Vec<Vals>,
    sparse: Option<BTreeMap<u64, (Acc, Vals)>>,
    scratch: Vals,
    /// Cache of the last bucket hit: [lo, hi) in ms and its index.
    cache_lo: i64,
    cache_hi: i64,
    cache_idx: u64,
}

impl Buckets {
    /// `period_ms` must be positive and `start_ms < end_ms`.
    pub(crate) fn new(start_ms: i64, end_ms: i64, period_ms: i64, with_values: bool) -> Self {
        let period = period_ms.max(1) as u64;
        let span = end_ms.wrapping_sub(start_ms) as u64;
        let n = span.div_ceil(period);
        let (dense, dense_vals, sparse) = if n <= DENSE_LIMIT {
            let vals = if with_values {
                vec![Vals::default(); n as usize]
            } else {
                Vec::new()
            };
            (vec![Acc::default(); n as usize], vals, None)
        } else {
            (Vec::new(), Vec::new(), Some(BTreeMap::new()))
        };
        Buckets {
            start: start_ms,
            end: end_ms,
            period,
            with_values,
            dense,
            dense_vals,
            sparse,
            scratch: Vals::default(),
            cache_lo: 1,
            cache_hi: 0,
            cache_idx: 0,
        }
    }

    pub(crate) fn start(&self) -> i64 {
        self.start
    }

    pub(crate) fn end(&self) -> i64 {
        self.end
    }

    /// Bucket index of `ts`, or `None` outside `[start, end)`.
    #[inline]
    pub(crate) fn index(&mut self, ts: i64) -> Option<u64> {
        if ts >= self.cache_lo && ts < self.cache_hi {
            return Some(self.cache_idx);
        }
        if ts < self.start || ts >= self.end {
            return None;
        }
        let idx = ts.wrapping_sub(self.start) as u64 / self.period;
        let lo = self.start.wrapping_add((idx * self.period) as i64);
        self.cache_lo = lo;
        self.cache_hi = lo.saturating_add(self.period as i64).min(self.end);
        self.cache_idx = idx;
        Some(idx)
    }

    #[inline]
    fn slot(&mut self, idx: u64) -> (&mut Acc, &mut Vals) {
        match &mut self.sparse {
            None => {
                let i = idx as usize;
                // `dense_vals` is empty unless values were asked for; hand out a scratch vector then.
                match self.dense_vals.get_mut(i) {
                    Some(v) => (&mut self.dense[i], v),
                    None => (&mut self.dense[i], &mut self.scratch),
                }
            }
            Some(map) => {
                let e = map
                    .entry(idx)
                    .or_insert_with(|| (Acc::default(), Vals::default()));
                (&mut e.0, &mut e.1)
            }
        }
    }

    /// Adds one sample at `ts` (ignored outside the range).
    #[inline]
    pub(crate) fn add_sample(&mut self, ts: i64, s: &Sample) {
        let Some(idx) = self.index(ts) else { return };
        let c = contribution(s);
        let with_values = self.with_values;
        let (acc, vals) = self.slot(idx);
        acc.add(c.count, c.sum, c.min, c.max);
        if with_values && !acc.incapable {
            if c.capable {
                if c.count == 1.0 {
                    vals.keys.push(to_key(c.dist));
                } else if c.count > 0.0 {
                    vals.pairs.push((c.dist, c.count));
                }
            } else {
                acc.incapable = true;
                vals.clear();
            }
        }
    }

    /// Adds plain values (count 1) given in ascending timestamp order, a bucket's run at a time.
    pub(crate) fn add_plain_run(&mut self, ts: &[i64], vals: &[f64]) {
        let n = ts.len().min(vals.len());
        let mut i = 0;
        while i < n {
            let Some(idx) = self.index(ts[i]) else {
                i += 1;
                continue;
            };
            let (lo, hi) = (self.cache_lo, self.cache_hi);
            let mut j = i;
            let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
            while j < n && ts[j] < hi && ts[j] >= lo {
                let v = vals[j];
                sum += v;
                min = min.min(v);
                max = max.max(v);
                j += 1;
            }
            let with_values = self.with_values;
            let (acc, out) = self.slot(idx);
            acc.add((j - i) as f64, sum, min, max);
            if with_values && !acc.incapable {
                out.keys.extend(vals[i..j].iter().map(|&v| to_key(v)));
            }
            i = j;
        }
    }

    /// Adds an aggregate whose samples all fall in bucket `idx`. `pairs` is its distribution, or
    /// `None` when it is not percentile-capable; it is only consulted when values were asked for.
    pub(crate) fn add_aggregate(
        &mut self,
        idx: u64,
        count: f64,
        sum: f64,
        min: f64,
        max: f64,
        pairs: Option<&mut dyn Iterator<Item = (f64, f64)>>,
    ) {
        let with_values = self.with_values;
        let (acc, vals) = self.slot(idx);
        acc.add(count, sum, min, max);
        if with_values && !acc.incapable {
            match pairs {
                Some(it) => vals.pairs.extend(it.filter(|p| p.1 > 0.0)),
                None => {
                    acc.incapable = true;
                    vals.clear();
                }
            }
        }
    }

    fn bucket(
        start: i64,
        period: u64,
        idx: u64,
        acc: &Acc,
        vals: Vals,
        with_values: bool,
    ) -> Bucket {
        let values = if with_values && !acc.incapable {
            Some(vals.finish())
        } else {
            None
        };
        Bucket {
            start_ms: start.wrapping_add((idx * period) as i64),
            count: acc.count,
            sum: acc.sum,
            min: acc.min,
            max: acc.max,
            values,
        }
    }

    /// The non-empty buckets, ascending.
    pub(crate) fn finish(self) -> Vec<Bucket> {
        let (start, period, with_values) = (self.start, self.period, self.with_values);
        match self.sparse {
            Some(map) => map
                .into_iter()
                .map(|(i, (acc, vals))| Self::bucket(start, period, i, &acc, vals, with_values))
                .collect(),
            None => {
                let mut vals_iter = if with_values {
                    self.dense_vals
                } else {
                    Vec::new()
                }
                .into_iter();
                let mut out = Vec::new();
                for (i, acc) in self.dense.iter().enumerate() {
                    let vals = if with_values {
                        vals_iter.next().unwrap_or_default()
                    } else {
                        Vals::default()
                    };
                    if acc.used {
                        out.push(Self::bucket(
                            start,
                            period,
                            i as u64,
                            acc,
                            vals,
                            with_values,
                        ));
                    }
                }
                out
            }
        }
    }
}

/// Sorts `(value, weight)` pairs by value and merges equal values.
pub(crate) fn normalize_pairs(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    // Integer keys ordered like `f64::total_cmp`, cheaper to compare.
    v.sort_unstable_by_key(|p| {
        let b = p.0.to_bits() as i64;
        b ^ (((b >> 63) as u64) >> 1) as i64
    });
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (x, w) in v {
        match out.last_mut() {
            Some(last) if last.0 == x => last.1 += w,
            _ => out.push((x, w)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_set_capability_rules() {
        let c = |count, sum, min, max| {
            contribution(&Sample::Stats {
                count,
                sum,
                min,
                max,
            })
            .capable
        };
        assert!(c(1.0, 5.0, 5.0, 5.0));
        assert!(c(4.0, 20.0, 5.0, 5.0));
        assert!(!c(4.0, 21.0, 5.0, 5.0));
        assert!(!c(2.0, 6.0, 1.0, 5.0));
        assert!(!c(1.0, 4.0, 5.0, 5.0));
        let v = contribution(&Sample::Value {
            value: 2.5,
            count: 4.0,
        });
        assert_eq!(
            (v.count, v.sum, v.min, v.max, v.capable),
            (4.0, 10.0, 2.5, 2.5, true)
        );
    }

    #[test]
    fn buckets_align_to_start_and_skip_empty() {
        let mut b = Buckets::new(1_000, 10_000, 3_000, true);
        b.add_sample(
            999,
            &Sample::Value {
                value: 9.0,
                count: 1.0,
            },
        );
        b.add_sample(
            1_000,
            &Sample::Value {
                value: 1.0,
                count: 1.0,
            },
        );
        b.add_sample(
            3_999,
            &Sample::Value {
                value: 3.0,
                count: 2.0,
            },
        );
        b.add_sample(
            7_000,
            &Sample::Value {
                value: 5.0,
                count: 1.0,
            },
        );
        b.add_sample(
            10_000,
            &Sample::Value {
                value: 9.0,
                count: 1.0,
            },
        );
        let out = b.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(
            (
                out[0].start_ms,
                out[0].count,
                out[0].sum,
                out[0].min,
                out[0].max
            ),
            (1_000, 3.0, 7.0, 1.0, 3.0)
        );
        assert_eq!(out[0].values, Some(vec![(1.0, 1.0), (3.0, 2.0)]));
        assert_eq!(
            (out[1].start_ms, out[1].count, out[1].sum),
            (7_000, 1.0, 5.0)
        );
        assert_eq!(out[1].values, Some(vec![(5.0, 1.0)]));
    }

    #[test]
    fn sparse_buckets_match_dense() {
        let samples = [
            (5i64, 1.0),
            (70_000_000, 2.0),
            (70_000_001, 4.0),
            (99_999_999, 3.0),
        ];
        let mut dense = Buckets::new(0, 100_000_000, 1_000_000, true);
        let mut sparse = Buckets::new(0, 100_000_000, 1, true);
        for (t, v) in samples {
            dense.add_sample(
                t,
                &Sample::Value {
                    value: v,
                    count: 1.0,
                },
            );
            sparse.add_sample(
                t,
                &Sample::Value {
                    value: v,
                    count: 1.0,
                },
            );
        }
        let d = dense.finish();
        let s = sparse.finish();
        assert_eq!(d.len(), 3);
        assert_eq!(s.len(), 4);
        assert_eq!(d[1].count, 2.0);
        assert_eq!(s[2].start_ms, 70_000_001);
    }

    #[test]
    fn value_keys_sort_like_floats_and_merge_with_weighted_pairs() {
        let xs = [
            3.5,
            -0.0,
            0.0,
            -2.0,
            1e-300,
            -1e300,
            7.0,
            3.5,
            f64::MAX,
            -2.0,
        ];
        for x in xs {
            assert_eq!(from_key(to_key(x)).to_bits(), x.to_bits());
        }
        let mut keys: Vec<i64> = xs.iter().map(|&x| to_key(x)).collect();
        keys.sort_unstable();
        let back: Vec<f64> = keys.iter().map(|&k| from_key(k)).collect();
        assert!(back.windows(2).all(|w| w[0].total_cmp(&w[1]).is_le()));
        let vals = Vals {
            keys: [3.5, -2.0, 3.5].iter().map(|&x| to_key(x)).collect(),
            pairs: vec![(3.5, 0.5), (1.0, 2.0)],
        };
        assert_eq!(vals.finish(), vec![(-2.0, 1.0), (1.0, 2.0), (3.5, 2.5)]);
    }

    #[test]
    fn incapable_stat_set_clears_values() {
        let mut b = Buckets::new(0, 100, 100, true);
        b.add_sample(
            1,
            &Sample::Value {
                value: 1.0,
                count: 1.0,
            },
        );
        b.add_sample(
            2,
            &Sample::Stats {
                count: 2.0,
                sum: 3.0,
                min: 1.0,
                max: 2.0,
            },
        );
        b.add_sample(
            3,
            &Sample::Stats {
                count: 2.0,
                sum: 8.0,
                min: 4.0,
                max: 4.0,
            },
        );
        let out = b.finish();
        assert_eq!(out[0].values, None);
        assert_eq!(
            (out[0].count, out[0].sum, out[0].min, out[0].max),
            (5.0, 12.0, 1.0, 4.0)
        );
    }
}
