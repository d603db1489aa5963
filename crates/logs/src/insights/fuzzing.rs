//! Fuzzing entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets/logs_insights.rs`,
//! `logs_filter_pattern.rs`; [`skip_search`] has no target yet) and the regression tests
//! (`crates/logs/tests/fuzz_regressions.rs`), so a stored crash replays through exactly the code
//! the fuzzer ran. Each takes raw bytes: the first line is the query, pattern or literal, the rest
//! (if any) one more log event ([`skip_search`]: one message per line).

use super::exec::run_events;
use super::parser::parse;
use crate::pattern::Pattern;

/// Fixed events every fuzzed query runs over: plain text, JSON (nested, arrays, nulls), Lambda
/// platform lines, numbers, IPs and non-ASCII text.
pub const EVENTS: [&str; 9] = [
    "2026-11-21 ERROR user=alice took 12ms from 10.0.0.1",
    "INFO user=bob GET /index.html 200 512",
    r#"{"level":"error","user":{"name":"carol","id":7},"tags":["a","b"],"ms":1.5,"ok":true,"none":null}"#,
    r#"{"level":"info","user":{"name":"dave","id":"x"},"ms":-3,"ip":"2001:db8::1"}"#,
    "REPORT RequestId: 3f1c2a\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB",
    "START RequestId: 3f1c2a Version: $LATEST",
    "[01/Jan/2026:00:00:00 +0000] 127.0.0.1 - frank \"POST /api\" 500 1024",
    "ünïcödé ☃ 𝄞 ERROR",
    "",
];

fn split(data: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(data);
    match text.split_once('\n') {
        Some((first, rest)) => (first.to_string(), Some(rest.to_string())),
        None => (text.into_owned(), None),
    }
}

/// Parse the query; when it parses, run it over [`EVENTS`] (plus the extra event) at 1-minute
/// spacing. Returns the number of result rows (or `None` for a query the parser refused).
pub fn insights(data: &[u8]) -> Option<usize> {
    let (query, extra) = split(data);
    let cmds = parse(&query).ok()?;
    let base = 1_795_287_600_000i64;
    let mut events: Vec<(i64, &str)> = EVENTS
        .iter()
        .enumerate()
        .map(|(i, m)| (base + i as i64 * 60_000, *m))
        .collect();
    if let Some(e) = &extra {
        events.push((base - 1, e.as_str()));
    }
    let out = run_events(&cmds, &events, 100);
    assert!(out.rows.len() <= 100, "more rows than the limit");
    Some(out.rows.len())
}

/// Parse the filter pattern; when it parses, match and extract against [`EVENTS`] (plus the
/// extra event). Returns how many events matched.
pub fn filter_pattern(data: &[u8]) -> Option<usize> {
    let (src, extra) = split(data);
    let pattern = Pattern::parse(&src).ok()?;
    let _ = pattern.required_literal();
    let mut matched = 0;
    for msg in EVENTS.iter().copied().chain(extra.as_deref()) {
        let hit = pattern.matches(msg.as_bytes());
        let extracted = pattern.extract(msg);
        assert_eq!(
            hit,
            extracted.is_some(),
            "matches and extract disagree on {msg:?}"
        );
        if let Some(lit) = pattern.required_literal() {
            if hit {
                assert!(msg.contains(lit), "a match lacks the required literal");
            }
        }
        matched += usize::from(hit);
    }
    Some(matched)
}

/// The granule skip index against a naive search: the first line is a literal, every further
/// line one message. The messages become one segment block's text section (granules with bloom
/// filters); the events the skip path reports must be exactly those whose message contains the
/// literal. Returns how many matched (`None` for an empty literal, which no query has).
pub fn skip_search(data: &[u8]) -> Option<usize> {
    use crate::storage::granules::{encode, Granules, Probe};
    let mut lines = data.split(|b| *b == b'\n');
    let literal = lines.next().filter(|l| !l.is_empty())?;
    let msgs: Vec<&[u8]> = lines.collect();
    let mut text = Vec::new();
    let mut ends = Vec::new();
    for m in &msgs {
        text.extend_from_slice(m);
        ends.push(text.len() as u32);
    }
    let mut packed = Vec::new();
    encode(&text, &ends, &mut packed).ok()?;
    let mut g = Granules::default();
    assert_eq!(g.parse(&packed, 0, ends.len()).ok(), Some(text.len()));
    assert!(g.check_ends(&ends).is_ok());
    let finder = memchr::memmem::Finder::new(literal);
    let mut got = Vec::new();
    g.for_each_hit(&packed, &ends, &finder, &Probe::new(literal), |i| {
        got.push(i)
    })
    .ok()?;
    let want: Vec<usize> = (0..msgs.len())
        .filter(|i| memchr::memmem::find(msgs[*i], literal).is_some())
        .collect();
    assert_eq!(got, want, "the skip index lost or invented a match");
    Some(got.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_run_the_seed_shapes() {
        assert_eq!(
            insights(b"fields @message | filter @message like /ERROR/ | limit 5"),
            Some(2)
        );
        assert_eq!(insights(b"stats count(*) by level"), Some(3));
        assert_eq!(insights(b"fields @message | sort"), None);
        assert_eq!(
            insights(b"filter user.name = 'zed'\n{\"user\":{\"name\":\"zed\"}}"),
            Some(1)
        );
        assert_eq!(filter_pattern(b"ERROR"), Some(2));
        assert_eq!(filter_pattern(b"{ $.user.id = 7 }"), Some(1));
        assert_eq!(filter_pattern(b"{ $.user.id = "), None);
        assert_eq!(
            skip_search(b"ERROR\nan ERROR\nerror\nERR\nOR ERRORs"),
            Some(2)
        );
        assert_eq!(skip_search(b"\nx"), None);
        let mut many = b"Timeout".to_vec();
        for i in 0..5_000 {
            many.extend_from_slice(
                format!("\nreq {i} TIMEOUT timeout Time out {}", i % 7).as_bytes(),
            );
            if i % 613 == 0 {
                many.extend_from_slice(b" Timeout");
            }
        }
        assert_eq!(skip_search(&many), Some(9));
    }
}
