//! Log events: PutLogEvents (AWS's batch limits and rejected-event answers), GetLogEvents (both
//! directions with forward/backward tokens) and FilterLogEvents (stream selection, time window,
//! filter pattern, paging), all over [`LogStore`] partitions read in time order.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use opsloop_core::{ApiError, Value};
use serde_json::json;

use crate::error::{self, opt_bool, opt_i64, opt_str};
use crate::pattern::Pattern;
use crate::storage::columns::Columns;
use crate::storage::granules::Probe;
use crate::storage::LogStore;

pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const DAY_MS: i64 = 86_400_000;
const RESPONSE_BYTES: usize = 1_048_576;

/// A PutLogEvents batch after validation: the events to store and the rejection report.
#[derive(Debug)]
pub struct Accepted {
    pub cols: Columns,
    pub rejected: Option<Value>,
}

/// The events of a PutLogEvents input document in columns (timestamps and messages as sent), as
/// [`crate::putdecode`] produces them from the request text.
pub fn batch_of(input: &Value) -> Result<Columns, ApiError> {
    let events = input
        .get("logEvents")
        .and_then(Value::as_array)
        .ok_or_else(|| error::invalid("logEvents must be a list"))?;
    let mut cols = Columns::default();
    for (i, e) in events.iter().enumerate() {
        let ts = opt_i64(e, "timestamp")
            .ok_or_else(|| error::invalid(format!("logEvents.{} is missing a timestamp", i + 1)))?;
        let msg = opt_str(e, "message")
            .ok_or_else(|| error::invalid(format!("logEvents.{} is missing a message", i + 1)))?;
        cols.push(ts, 0, 0, 0, msg.as_bytes());
    }
    Ok(cols)
}

/// Validate a PutLogEvents input document for stream `sid` at `now` with the group's retention.
pub fn validate_put(
    input: &Value,
    sid: u32,
    now: i64,
    retention_days: Option<i64>,
) -> Result<Accepted, ApiError> {
    validate_batch(batch_of(input)?, sid, now, retention_days)
}

/// Validate a batch (see [`batch_of`]) for stream `sid` at `now` with the group's retention: AWS's
/// limits, then the rejected-event ranges. The accepted events keep their columns (no copy when
/// none is rejected), stamped with `now` as ingestion time and `sid`.
pub fn validate_batch(
    batch: Columns,
    sid: u32,
    now: i64,
    retention_days: Option<i64>,
) -> Result<Accepted, ApiError> {
    let n = batch.len();
    if n == 0 {
        return Err(error::invalid("1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1"));
    }
    if n > MAX_BATCH_EVENTS {
        return Err(error::invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_EVENTS}"
        )));
    }
    let mut prev_end = 0usize;
    for &end in &batch.ends {
        let len = end as usize - prev_end;
        prev_end = end as usize;
        if len == 0 {
            return Err(error::invalid(
                "Log event messages must be at least 1 character long.",
            ));
        }
        if len + EVENT_OVERHEAD > MAX_BATCH_BYTES {
            return Err(error::invalid(
                "Log event too large: an event can be at most 1,048,550 bytes.",
            ));
        }
    }
    let size = batch.text.len() + n * EVENT_OVERHEAD;
    if size > MAX_BATCH_BYTES {
        return Err(error::invalid(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    let ts = &batch.ts;
    if ts.windows(2).any(|w| w[1] < w[0]) {
        return Err(error::invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    let too_old_before = now - 14 * DAY_MS;
    let expired_before = retention_days.map(|d| now - d * DAY_MS);
    let too_new_from = now + 2 * 3_600_000;
    // timestamps ascend: each rejected range is a prefix or a suffix
    let too_old = ts.partition_point(|t| *t < too_old_before);
    let expired = expired_before.map_or(0, |b| ts.partition_point(|t| *t < b));
    let too_new_start = ts.iter().position(|t| *t > too_new_from);
    let first_ok = too_old.max(expired);
    let end_ok = too_new_start.unwrap_or(n).max(first_ok);
    if end_ok > first_ok && ts[end_ok - 1] - ts[first_ok] > DAY_MS {
        return Err(error::invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    let mut cols = if first_ok == 0 && end_ok == n {
        batch
    } else {
        let mut kept = Columns::default();
        kept.extend_range(&batch, first_ok..end_ok);
        kept
    };
    cols.ingest.iter_mut().for_each(|t| *t = now);
    cols.stream.iter_mut().for_each(|s| *s = sid);
    cols.seq.iter_mut().for_each(|s| *s = 0);
    let mut rejected = serde_json::Map::new();
    if too_old > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(too_old));
    }
    if expired > 0 {
        rejected.insert("expiredLogEventEndIndex".into(), json!(expired));
    }
    if let Some(i) = too_new_start {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
    }
    Ok(Accepted {
        cols,
        rejected: (!rejected.is_empty()).then_some(Value::Object(rejected)),
    })
}

/// One event read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts: i64,
    pub seq: u64,
    pub ingest: i64,
    pub stream: u32,
    pub msg: String,
}

/// Position between events, ordered by (timestamp, sequence).
pub type Pos = (i64, u64);

/// Read events of `gid` in `[start, end)` accepted by `keep`, strictly after (`forward`) or before
/// `from`, in time order, until `limit` events or the response byte budget are collected. Returns the
/// events (ascending) and whether more matching events exist past them.
#[allow(clippy::too_many_arguments)]
pub fn read_events(
    store: &LogStore,
    gid: u64,
    start: i64,
    end: i64,
    from: Option<Pos>,
    forward: bool,
    limit: usize,
    needle: Option<&str>,
    keep: &dyn Fn(u32, &[u8]) -> bool,
) -> Result<(Vec<Event>, bool), ApiError> {
    // a page token bounds the window, so later pages skip the partitions already read
    let (start, end) = match from {
        Some(p) if forward => (start.max(p.0), end),
        Some(p) => (start, end.min(p.0.saturating_add(1))),
        None => (start, end),
    };
    let finder = needle.map(memchr::memmem::Finder::new);
    // segments with the skip index decode only the granules that may hold the needle (the rest
    // reads as zeros, where the needle is never found)
    let probe = needle.map(|n| Probe::new(n.as_bytes()));
    let mut hits = Vec::new();
    let mut parts = store.snapshot(gid, start, end);
    if !forward {
        parts.reverse();
    }
    let (mut cols, mut raw) = (Columns::default(), Vec::new());
    let mut out: Vec<Event> = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    for part in parts {
        let mut found: Vec<Event> = Vec::new();
        part.scan_probed(start, end, probe.as_ref(), &mut cols, &mut raw, &mut |b| {
            let all = 0..b.len();
            let indexes: &mut dyn Iterator<Item = usize> = match &finder {
                Some(f) => {
                    b.containing(f, &mut hits);
                    &mut hits.iter().copied()
                }
                None => &mut all.into_iter(),
            };
            for i in indexes {
                let (ts, seq) = (b.ts[i], b.seq[i]);
                if ts < start || ts >= end {
                    continue;
                }
                if let Some(p) = from {
                    if (forward && (ts, seq) <= p) || (!forward && (ts, seq) >= p) {
                        continue;
                    }
                }
                let msg = b.message(i);
                if keep(b.stream[i], msg) {
                    found.push(Event {
                        ts,
                        seq,
                        ingest: b.ingest[i],
                        stream: b.stream[i],
                        msg: String::from_utf8_lossy(msg).into_owned(),
                    });
                }
            }
            true
        })?;
        found.sort_by_key(|e| (e.ts, e.seq));
        if !forward {
            found.reverse();
        }
        for e in found {
            if out.len() >= limit || bytes + e.msg.len() + EVENT_OVERHEAD > RESPONSE_BYTES {
                more = true;
                break;
            }
            bytes += e.msg.len() + EVENT_OVERHEAD;
            out.push(e);
        }
        if more {
            break;
        }
    }
    if !forward {
        out.reverse();
    }
    Ok((out, more))
}

fn pos_token(dir: char, p: Pos) -> String {
    format!("{dir}/{:019}{:020}", p.0.max(0), p.1)
}

fn parse_pos_token(t: &str) -> Result<(char, Pos), ApiError> {
    let bad = || error::invalid("The specified nextToken is invalid.");
    let (dir, digits) = t.split_once('/').ok_or_else(bad)?;
    let dir = match dir {
        "f" => 'f',
        "b" => 'b',
        _ => return Err(bad()),
    };
    if digits.len() != 39 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ts = digits[..19].parse::<i64>().map_err(|_| bad())?;
    let seq = digits[19..].parse::<u64>().map_err(|_| bad())?;
    Ok((dir, (ts, seq)))
}

fn window(input: &Value) -> (i64, i64) {
    let start = opt_i64(input, "startTime").unwrap_or(0).max(0);
    let end = opt_i64(input, "endTime").unwrap_or(i64::MAX);
    (start, end)
}

fn limit_of(input: &Value) -> Result<usize, ApiError> {
    let limit = opt_i64(input, "limit").unwrap_or(10_000);
    if !(1..=10_000).contains(&limit) {
        return Err(error::invalid("limit must be between 1 and 10000."));
    }
    Ok(limit as usize)
}

/// GetLogEvents for stream `sid` of group `gid`.
pub fn get_log_events(
    store: &LogStore,
    gid: u64,
    sid: u32,
    input: &Value,
) -> Result<Value, ApiError> {
    let (start, end) = window(input);
    let limit = limit_of(input)?;
    let keep = move |s: u32, _: &[u8]| s == sid;
    let token = opt_str(input, "nextToken")
        .map(parse_pos_token)
        .transpose()?;
    let head = opt_bool(input, "startFromHead").unwrap_or(false);
    let (forward, from) = match token {
        Some(('f', p)) => (true, Some(p)),
        Some((_, p)) => (false, Some(p)),
        None => (head, None),
    };
    let (events, _) = read_events(store, gid, start, end, from, forward, limit, None, &keep)?;
    let zero: Pos = (0, 0);
    let (next_f, next_b) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (
            pos_token('f', (last.ts, last.seq)),
            pos_token('b', (first.ts, first.seq)),
        ),
        _ => {
            // nothing further in this direction: hand the caller's token back unchanged
            let p = from.unwrap_or(zero);
            match token {
                Some(('f', _)) => (pos_token('f', p), pos_token('b', p)),
                Some(_) => (pos_token('f', p), pos_token('b', p)),
                None => (pos_token('f', zero), pos_token('b', zero)),
            }
        }
    };
    let list: Vec<Value> = events
        .iter()
        .map(|e| json!({"timestamp": e.ts, "message": e.msg, "ingestionTime": e.ingest}))
        .collect();
    Ok(json!({"events": list, "nextForwardToken": next_f, "nextBackwardToken": next_b}))
}

/// FilterLogEvents over group `gid` whose streams are `streams` (id → name).
pub fn filter_log_events(
    store: &LogStore,
    gid: u64,
    streams: &HashMap<u32, String>,
    input: &Value,
) -> Result<Value, ApiError> {
    let names = crate::error::str_list(input, "logStreamNames");
    let prefix = opt_str(input, "logStreamNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(error::invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
        ));
    }
    if names.len() > 100 {
        return Err(error::invalid("At most 100 logStreamNames may be given."));
    }
    let (start, end) = window(input);
    let limit = limit_of(input)?;
    let pattern = Pattern::parse(opt_str(input, "filterPattern").unwrap_or(""))?;
    let wanted: HashSet<u32> = streams
        .iter()
        .filter(|(_, n)| {
            (names.is_empty() || names.iter().any(|x| x == *n))
                && prefix.is_none_or(|p| n.starts_with(p))
        })
        .map(|(id, _)| *id)
        .collect();
    let from = match opt_str(input, "nextToken") {
        Some(t) => Some(parse_filter_token(t)?),
        None => None,
    };
    let keep = |s: u32, msg: &[u8]| wanted.contains(&s) && pattern.matches(msg);
    let (events, more) = read_events(
        store,
        gid,
        start,
        end,
        from,
        true,
        limit,
        pattern.required_literal(),
        &keep,
    )?;
    let list: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "logStreamName": streams.get(&e.stream).cloned().unwrap_or_default(),
                "timestamp": e.ts,
                "message": e.msg,
                "ingestionTime": e.ingest,
                "eventId": format!("{:019}{:020}", e.ts.max(0), e.seq),
            })
        })
        .collect();
    let mut out = json!({"events": list, "searchedLogStreams": []});
    if more {
        if let Some(last) = events.last() {
            let raw = format!("{}:{}", last.ts, last.seq);
            out["nextToken"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
        }
    }
    Ok(out)
}

fn parse_filter_token(t: &str) -> Result<Pos, ApiError> {
    let bad = || error::invalid("The specified nextToken is invalid.");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, seq) = raw.split_once(':').ok_or_else(bad)?;
    Ok((
        ts.parse().map_err(|_| bad())?,
        seq.parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ts: &[i64]) -> Value {
        json!({"logEvents": ts.iter().map(|t| json!({"timestamp": t, "message": "m"})).collect::<Vec<_>>()})
    }

    #[test]
    fn rejected_indexes() {
        let now = 100 * DAY_MS;
        let old = now - 15 * DAY_MS;
        let new = now + 3 * 3_600_000;
        let a = validate_put(&batch(&[old, old, now - 1000, now, new]), 1, now, None).unwrap();
        assert_eq!(a.cols.len(), 2);
        let r = a.rejected.unwrap();
        assert_eq!(r["tooOldLogEventEndIndex"], 2);
        assert_eq!(r["tooNewLogEventStartIndex"], 4);
        let a = validate_put(&batch(&[now - 5 * DAY_MS, now]), 1, now, Some(3)).unwrap();
        assert_eq!(a.rejected.unwrap()["expiredLogEventEndIndex"], 1);
        assert_eq!(a.cols.ts, vec![now]);
    }

    #[test]
    fn batch_limits() {
        let now = 100 * DAY_MS;
        assert!(validate_put(&batch(&[now, now - 1]), 1, now, None)
            .unwrap_err()
            .message
            .contains("chronological"));
        assert!(validate_put(&batch(&[now - 2 * DAY_MS, now]), 1, now, None)
            .unwrap_err()
            .message
            .contains("24 hours"));
        let big = "x".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD);
        assert!(validate_put(
            &json!({"logEvents": [{"timestamp": now, "message": big}]}),
            1,
            now,
            None
        )
        .is_ok());
        let too_big = json!({"logEvents": [{"timestamp": now, "message": big}, {"timestamp": now, "message": "y"}]});
        assert!(validate_put(&too_big, 1, now, None)
            .unwrap_err()
            .message
            .contains("too large"));
        let many: Vec<i64> = vec![now; MAX_BATCH_EVENTS + 1];
        assert!(validate_put(&batch(&many), 1, now, None).is_err());
        assert!(validate_put(&batch(&vec![now; MAX_BATCH_EVENTS]), 1, now, None).is_ok());
    }

    #[test]
    fn tokens_roundtrip_and_reject_garbage() {
        let t = pos_token('f', (1_700_000_000_000, 42));
        assert_eq!(parse_pos_token(&t).unwrap(), ('f', (1_700_000_000_000, 42)));
        for bad in [
            "",
            "f/",
            "x/0000",
            "f/12a",
            "b/99999999999999999999999999999999999999999",
        ] {
            assert!(parse_pos_token(bad).is_err(), "{bad}");
        }
        assert!(parse_filter_token("!!").is_err());
    }
}

#[cfg(test)]
mod skip_index_tests {
    use super::*;
    use crate::storage::{SkipIndex, StoreOptions};

    /// FilterLogEvents' needle search over indexed segments (granules skipped by their bloom
    /// filters) finds exactly the events a full scan finds, in both segment formats.
    #[tokio::test]
    async fn needle_search_is_exact_over_both_segment_formats() {
        for mode in [SkipIndex::Off, SkipIndex::Checkpoint] {
            let dir = tempfile::tempdir().unwrap();
            let opts = StoreOptions {
                skip_index: mode,
                compact_background: false,
                ..StoreOptions::default()
            };
            let store = LogStore::open(dir.path(), opts, &|_| true).unwrap();
            let mut cols = Columns::default();
            let mut want = Vec::new();
            for i in 0..30_000i64 {
                let msg = match i % 997 {
                    0 => format!("request {i} failed: Timeout talking to db"),
                    1 => format!("request {i} timeout (lower case, not the needle)"),
                    _ => format!("request {i} served in {} ms", i % 89),
                };
                if msg.contains("Timeout") {
                    want.push(msg.clone());
                }
                cols.push(i, i, 0, 0, msg.as_bytes());
            }
            store.append(1, cols).await.unwrap();
            store.checkpoint().await.unwrap();
            let keep = |_: u32, m: &[u8]| m.windows(7).any(|w| w == b"Timeout");
            let (events, more) = read_events(
                &store,
                1,
                0,
                i64::MAX,
                None,
                true,
                10_000,
                Some("Timeout"),
                &keep,
            )
            .unwrap();
            assert!(!more);
            let got: Vec<String> = events.into_iter().map(|e| e.msg).collect();
            assert_eq!(got, want, "{mode:?}");
            assert!(!want.is_empty());
        }
    }
}
