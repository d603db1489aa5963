//! Replays inputs through the same entry points the fuzz targets run
//! (`opsloop_logs::insights::fuzzing::{insights, filter_pattern}`): shapes that stress the parsers'
//! limits (nesting, length, odd bytes, comments, unterminated literals) and every input a fuzzing
//! run found worth keeping. Each must finish without a panic; parse failures must be
//! `MalformedQueryException` / `InvalidParameterException` answers, not crashes.

use opsloop_logs::insights::fuzzing::{filter_pattern, insights};
use opsloop_logs::insights::parser::parse;
use opsloop_logs::pattern::Pattern;

/// Queries that once took a wrong path or sit at an edge of the lexer and parser.
const QUERIES: &[&[u8]] = &[
    b"",
    b"\n",
    b"#",
    b"# only a comment\n",
    b"fields a # comment 'with quote\n| limit 1",
    b"fields `unterminated",
    b"filter x like /unterminated",
    b"filter x like /\\",
    b"fields 'a\\",
    b"fields 1e",
    b"fields 1e+",
    b"fields .5m",
    b"fields 99999999999999999999999999999999y",
    b"stats count(*) by bin(0ms)",
    b"stats count(*) by bin(-5m)",
    b"fields datefloor(@timestamp, 0) , dateceil(@timestamp, -1)",
    b"fields substr(@message, -5, 99999999999)",
    b"fields substr(@message, 1e300, 1e300)",
    b"fields 2 ^ 99999, -(2 ^ 99999), 1 % 0, 1 / 0",
    b"parse @message '*' as a | parse a '**' as b, c",
    b"parse @message '' as",
    b"parse @message /(?<a>x)|(?<b>y)/ | stats count(*) by a, b",
    b"stats count(*) as n by bin(1m) | stats sum(n) as s by bin(1h) | sort s desc | limit 1",
    b"stats sum(count(*)) as x",
    b"stats count(*) + count(*) * pct(ms, 200) as weird",
    b"stats pct(ms, -1), pct(ms), pct(), sum(), earliest(), sortsFirst()",
    b"fields \xff\xfe\x00",
    b"filter @message like /\xe2\x98\x83+/ | parse @message /(?<s>\xf0\x9d\x84\x9e)/",
    b"dedup | stats",
    b"limit 0",
    b"limit 10001 | limit 1.5",
    b"sort",
    b"filter x in [] and y not in [1, 'a', [2]]",
    b"filter not not not not x",
    b"fields isIpInSubnet('::ffff:10.0.0.1', '10.0.0.0/8'), isIpInSubnet('1.2.3.4', '1.2.3.4/999')",
    b"fields trim(@message, ''), ltrim(), rtrim(@message, @message)",
    b"display @message | display | fields",
    b"filter @message =~ 'not a regex literal ('",
    b"stats count(*) by `` | sort ``",
    b"fields @message\nERROR extra event line\nwith a second line",
];

/// Filter patterns at the edges of the filter-pattern grammar.
const PATTERNS: &[&[u8]] = &[
    b"",
    b"{",
    b"{ }",
    b"{ $ = 1 }",
    b"{ $. = 1 }",
    b"{ $.a[ = 1 }",
    b"{ $.a[99999999999999999999] = 1 }",
    b"{ $.a = }",
    b"{ $.a = \"unterminated }",
    b"{ ($.a = 1 }",
    b"{ $.a = 1 && }",
    b"{ $.a IS }",
    b"{ $.a NOT }",
    b"{ $.a = %regex( }",
    b"[",
    b"[a,",
    b"[..., ...]",
    b"[a=, b]",
    b"[a>x]",
    b"%",
    b"%(%",
    b"\"unterminated",
    b"-",
    b"?",
    b"? ? ?",
    b"\xff\xfe",
    b"ERROR\n{\"a\": 1}",
];

fn replay(data: &[u8]) {
    let _ = insights(data);
    let _ = filter_pattern(data);
}

#[test]
fn edge_queries_neither_panic_nor_misreport() {
    for q in QUERIES {
        replay(q);
        let text = String::from_utf8_lossy(q);
        let first = text.split('\n').next().unwrap_or_default();
        if let Err(e) = parse(first) {
            assert_eq!(e.kind, "MalformedQueryException", "{first:?}");
            assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn edge_patterns_neither_panic_nor_misreport() {
    for p in PATTERNS {
        replay(p);
        let text = String::from_utf8_lossy(p);
        let first = text.split('\n').next().unwrap_or_default();
        if let Err(e) = Pattern::parse(first) {
            assert_eq!(e.kind, "InvalidParameterException", "{first:?}");
        }
    }
}

#[test]
fn long_and_deep_inputs_are_bounded() {
    let deep = format!("filter {}x{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(insights(deep.as_bytes()), None);
    let long = format!("fields {}", "a, ".repeat(4000));
    assert_eq!(
        insights(long.as_bytes()),
        None,
        "longer than 10,000 characters"
    );
    let wide = format!("fields {}a", "a + ".repeat(900));
    let _ = insights(wide.as_bytes());
    let pat = format!("{{ {}$.a = 1 }}", "(".repeat(2000));
    assert_eq!(filter_pattern(pat.as_bytes()), None);
    let pat = format!("[{}]", "a, ".repeat(400));
    let _ = filter_pattern(pat.as_bytes());
}

/// Inputs cargo-fuzz kept (`fuzz/artifacts/logs_insights`, `fuzz/artifacts/logs_filter_pattern`),
/// when a run left any behind, replay too.
#[test]
fn stored_fuzz_artifacts_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/artifacts");
    for target in ["logs_insights", "logs_filter_pattern"] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in dir.flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                replay(&data);
            }
        }
    }
}
