//! Fuzzing entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets/logs_insights.rs`,
//! `logs_filter_pattern.rs`) and the regression tests (`crates/logs/tests/fuzz_regressions.rs`),
//! so a stored crash replays through exactly the code the fuzzer ran. Each takes raw bytes: the
//! first line is the query or pattern, the rest (if any) one more log event.

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
    }
}
