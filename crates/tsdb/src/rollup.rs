//! Roll-up records: one series' aggregate over one period (60 s, 5 min or 1 h) — count, sum, min,
//! max and, when every contributing sample was percentile-capable, a [`Sketch`] of the values.
//!
//! Chunk encoding (records ascending by start): per record the start as a zigzag varint of
//! `(start - previous start) / period` (the first against 0), a flags byte (bit 0: sketch
//! present), count/sum/min/max as XOR floats (see [`crate::bits::put_xf64`]) each against the
//! previous record's field, then the sketch as a varint byte length and its encoding.

use std::collections::BTreeMap;

use crate::agg::contribution;
use crate::bits::{put_ivarint, put_uvarint, put_xf64, Cursor, Truncated};
use crate::sketch::Sketch;
use crate::Sample;

/// One period's aggregate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RollupRec {
    pub ts: i64,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Option<Sketch>,
}

impl RollupRec {
    fn empty(ts: i64) -> Self {
        RollupRec {
            ts,
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sketch: Some(Sketch::default()),
        }
    }

    /// Folds `other` (same period) into `self`.
    pub(crate) fn merge(&mut self, other: &RollupRec) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        match (&mut self.sketch, &other.sketch) {
            (Some(a), Some(b)) => a.merge(b),
            _ => self.sketch = None,
        }
    }
}

/// Aggregates samples and finer records into records of one period.
pub(crate) struct RollupBuilder {
    period: i64,
    recs: BTreeMap<i64, RollupRec>,
}

impl RollupBuilder {
    pub(crate) fn new(period: i64) -> Self {
        RollupBuilder {
            period,
            recs: BTreeMap::new(),
        }
    }

    fn slot(&mut self, ts: i64) -> &mut RollupRec {
        let start = ts.div_euclid(self.period).saturating_mul(self.period);
        self.recs
            .entry(start)
            .or_insert_with(|| RollupRec::empty(start))
    }

    pub(crate) fn add_sample(&mut self, ts: i64, s: &Sample) {
        let c = contribution(s);
        let r = self.slot(ts);
        r.count += c.count;
        r.sum += c.sum;
        r.min = r.min.min(c.min);
        r.max = r.max.max(c.max);
        if c.capable {
            if let Some(sk) = &mut r.sketch {
                sk.push(c.dist, c.count);
            }
        } else {
            r.sketch = None;
        }
    }

    pub(crate) fn add_record(&mut self, rec: &RollupRec) {
        self.slot(rec.ts).merge(rec);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub(crate) fn finish(self) -> Vec<RollupRec> {
        self.recs
            .into_values()
            .map(|mut r| {
                if let Some(s) = &mut r.sketch {
                    s.normalize();
                }
                r
            })
            .collect()
    }
}

/// Encodes records (ascending, aligned to `period`).
pub(crate) fn encode_records(recs: &[RollupRec], period: i64, buf: &mut Vec<u8>) {
    let mut prev_ts = 0i64;
    let (mut pc, mut ps, mut pmin, mut pmax) = (0u64, 0u64, 0u64, 0u64);
    let mut sk = Vec::new();
    for r in recs {
        put_ivarint(buf, r.ts.wrapping_sub(prev_ts) / period);
        prev_ts = r.ts;
        buf.push(r.sketch.is_some() as u8);
        put_xf64(buf, &mut pc, r.count);
        put_xf64(buf, &mut ps, r.sum);
        put_xf64(buf, &mut pmin, r.min);
        put_xf64(buf, &mut pmax, r.max);
        if let Some(s) = &r.sketch {
            sk.clear();
            s.encode(&mut sk);
            put_uvarint(buf, sk.len() as u64);
            buf.extend_from_slice(&sk);
        }
    }
}

/// A decoded record whose sketch is left encoded until asked for.
pub(crate) struct RecView<'a> {
    pub ts: i64,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Option<&'a [u8]>,
}

impl RecView<'_> {
    pub(crate) fn to_rec(&self) -> Result<RollupRec, Truncated> {
        let sketch = match self.sketch {
            Some(b) => {
                let mut c = Cursor::new(b);
                let s = Sketch::decode(&mut c)?;
                if !c.is_empty() {
                    return Err(Truncated);
                }
                Some(s)
            }
            None => None,
        };
        Ok(RollupRec {
            ts: self.ts,
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            sketch,
        })
    }
}

/// Decodes `n` records, calling `f` for each.
pub(crate) fn decode_records<'a>(
    data: &'a [u8],
    n: u32,
    period: i64,
    mut f: impl FnMut(RecView<'a>) -> Result<(), Truncated>,
) -> Result<(), Truncated> {
    let mut c = Cursor::new(data);
    let mut ts = 0i64;
    let (mut pc, mut ps, mut pmin, mut pmax) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..n {
        ts = ts.wrapping_add(c.ivarint()?.wrapping_mul(period));
        let flags = c.u8()?;
        if flags > 1 {
            return Err(Truncated);
        }
        let count = c.xf64(&mut pc)?;
        let sum = c.xf64(&mut ps)?;
        let min = c.xf64(&mut pmin)?;
        let max = c.xf64(&mut pmax)?;
        let sketch = if flags == 1 {
            let len = usize::try_from(c.uvarint()?).map_err(|_| Truncated)?;
            Some(c.bytes(len)?)
        } else {
            None
        };
        f(RecView {
            ts,
            count,
            sum,
            min,
            max,
            sketch,
        })?;
    }
    if !c.is_empty() {
        return Err(Truncated);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_encode_decode_roundtrip() {
        let mut b = RollupBuilder::new(60_000);
        for i in 0..600i64 {
            b.add_sample(
                i * 1000,
                &Sample::Value {
                    value: (i % 10) as f64,
                    count: 1.0,
                },
            );
        }
        b.add_sample(
            -1,
            &Sample::Stats {
                count: 2.0,
                sum: 3.0,
                min: 1.0,
                max: 2.0,
            },
        );
        let recs = b.finish();
        assert_eq!(recs.len(), 11);
        assert_eq!(recs[0].ts, -60_000);
        assert!(recs[0].sketch.is_none());
        assert_eq!(
            (recs[1].count, recs[1].sum, recs[1].min, recs[1].max),
            (60.0, 270.0, 0.0, 9.0)
        );
        let mut buf = Vec::new();
        encode_records(&recs, 60_000, &mut buf);
        let mut back = Vec::new();
        decode_records(&buf, recs.len() as u32, 60_000, |v| {
            back.push(v.to_rec()?);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, recs);
        assert!(
            decode_records(&buf[..buf.len() - 2], recs.len() as u32, 60_000, |_| Ok(())).is_err()
        );
    }

    #[test]
    fn coarser_rollup_merges_records_and_drops_sketch_when_any_incapable() {
        let mut fine = RollupBuilder::new(60_000);
        for i in 0..10i64 {
            fine.add_sample(
                i * 60_000,
                &Sample::Value {
                    value: i as f64,
                    count: 2.0,
                },
            );
        }
        fine.add_sample(
            6 * 60_000,
            &Sample::Stats {
                count: 2.0,
                sum: 3.0,
                min: 1.0,
                max: 2.0,
            },
        );
        let mut coarse = RollupBuilder::new(300_000);
        for r in fine.finish() {
            coarse.add_record(&r);
        }
        let out = coarse.finish();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].count, out[0].sum), (10.0, 20.0));
        assert_eq!(
            out[0]
                .sketch
                .as_ref()
                .map(|s| s.bins.iter().map(|b| b.1).sum::<f64>()),
            Some(10.0)
        );
        assert!(out[1].sketch.is_none());
        assert_eq!((out[1].count, out[1].min, out[1].max), (12.0, 1.0, 9.0));
    }
}
