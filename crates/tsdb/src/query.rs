//! Reading one series out of a data file into a [`Buckets`] accumulator.
//!
//! Raw chunks: frames entirely inside one bucket are added from their summary (no decoding) unless
//! percentiles are wanted and the frame could contribute values; other frames overlapping the range
//! are decoded. Roll-up chunks: each record lands in the bucket holding its start; its sketch is
//! decoded only when percentiles are wanted.

use crate::agg::Buckets;
use crate::bits::Cursor;
use crate::datafile::{DataFile, IndexEntry, Tier};
use crate::gorilla::{decode_frame, decode_simple, parse_table};
use crate::rollup::decode_records;
use crate::sketch::Sketch;
use crate::TsdbError;

/// Adds `sid`'s samples in `f` that fall in the accumulator's range.
pub(crate) fn aggregate_file(f: &DataFile, sid: u32, b: &mut Buckets) -> Result<(), TsdbError> {
    if f.meta.max_ts < b.start() || f.meta.min_ts >= b.end() {
        return Ok(());
    }
    let Some(e) = f.lookup(sid)? else {
        return Ok(());
    };
    if e.max_ts < b.start() || e.min_ts >= b.end() {
        return Ok(());
    }
    match f.meta.tier {
        Tier::Raw => raw(f, &e, b),
        t => rolled(f, &e, t.period_ms(), b),
    }
}

fn raw(f: &DataFile, e: &IndexEntry, b: &mut Buckets) -> Result<(), TsdbError> {
    let table = f.read_table(e)?;
    let frames = parse_table(&table, e.n_frames, e.payload_len as usize)?;
    let (start, end) = (b.start(), b.end());
    let mut decode = Vec::new();
    for fi in &frames {
        if fi.last_ts < start || fi.first_ts >= end {
            continue;
        }
        if fi.first_ts >= start && fi.last_ts < end && (!b.with_values || !fi.all_capable) {
            let i0 = b.index(fi.first_ts);
            let i1 = b.index(fi.last_ts);
            if let (Some(i0), Some(i1)) = (i0, i1) {
                if i0 == i1 {
                    b.add_aggregate(i0, fi.count, fi.sum, fi.min, fi.max, None);
                    continue;
                }
            }
        }
        decode.push(fi);
    }
    if decode.is_empty() {
        return Ok(());
    }
    let payload = f.read_payload(e)?;
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    for fi in decode {
        if fi.all_simple {
            ts.clear();
            vals.clear();
            decode_simple(&payload, fi, &mut ts, &mut vals)?;
            b.add_plain_run(&ts, &vals);
        } else {
            decode_frame(&payload, fi, |ts, s| b.add_sample(ts, &s))?;
        }
    }
    Ok(())
}

fn rolled(f: &DataFile, e: &IndexEntry, period: i64, b: &mut Buckets) -> Result<(), TsdbError> {
    let payload = f.read_payload(e)?;
    let n =
        u32::try_from(e.n_points).map_err(|_| TsdbError::Corrupt("roll-up record count".into()))?;
    decode_records(&payload, n, period, |r| {
        let Some(idx) = b.index(r.ts) else {
            return Ok(());
        };
        match (b.with_values, r.sketch) {
            (true, Some(bytes)) => {
                let mut c = Cursor::new(bytes);
                let sk = Sketch::decode(&mut c)?;
                let mut pairs = sk.pairs(r.min, r.max);
                b.add_aggregate(idx, r.count, r.sum, r.min, r.max, Some(&mut pairs));
            }
            _ => b.add_aggregate(idx, r.count, r.sum, r.min, r.max, None),
        }
        Ok(())
    })?;
    Ok(())
}
