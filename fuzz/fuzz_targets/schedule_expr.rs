#![no_main]
//! schedule_expr: schedule expressions (`rate()`, `cron()`, `at()`) parsed in both dialects from
//! arbitrary bytes, then `next_after` run from fuzzer-chosen instants in several time zones. Must
//! never panic or hang; every fire time found must lie strictly after the instant asked from and
//! not before the anchor, and a second step must move strictly forward.

use libfuzzer_sys::fuzz_target;
use opsloop_schedule::{parse_rule_expression, parse_scheduler_expression};

const ZONES: [&str; 6] = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Asia/Kolkata",
];

/// Wall-clock instants worth reaching often: around 1970, now-ish, DST transitions, year 2199.
const INSTANTS: [i64; 6] = [
    0,
    1_710_054_000_000,  // 2024-03-10T07:00:00Z, New York spring forward
    1_730_610_000_000,  // 2024-11-03T05:00:00Z, New York fall back
    1_325_239_200_000,  // 2011-12-30, Samoa's skipped day
    7_258_118_399_000,  // 2199-12-31T23:59:59Z
    -86_400_000,
];

fn instant(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    let raw = i64::from_le_bytes(b);
    match raw & 3 {
        // Near a known interesting instant, within about ±12 days.
        0 | 1 => INSTANTS[(raw >> 2).rem_euclid(6) as usize] + (raw >> 5) % 1_000_000_000,
        // Anywhere from 1970 to 2200.
        2 => (raw >> 2).rem_euclid(7_258_118_400_000),
        _ => raw,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let (head, text) = data.split_at(17);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let zone = ZONES[(head[0] % 6) as usize];
    let anchor = instant(&head[1..9]);
    let after = instant(&head[9..17]);
    let _ = parse_rule_expression(text);
    let Ok(expr) = parse_scheduler_expression(text) else {
        return;
    };
    if let Ok(Some(next)) = expr.next_after(anchor, after, zone) {
        assert!(next > after, "{text} in {zone}: {next} <= {after}");
        assert!(next >= anchor, "{text} in {zone}: {next} < anchor {anchor}");
        if let Ok(Some(again)) = expr.next_after(anchor, next, zone) {
            assert!(again > next, "{text} in {zone}: {again} <= {next}");
        }
    }
});
