//! The benchmark's data: realistic raw log text written to a file, one event per line, with a
//! known share of `ERROR` lines, Lambda `START`/`END`/`REPORT` triplets and `user=…` fields, from a
//! fixed seed so every run ingests the same bytes. Only `ERROR` lines contain the string `ERROR`
//! (the other vocabulary never does), so `rg -c ERROR` over the file must equal the number of
//! events Insights counts with `filter @message like /ERROR/`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Result;
use opsloop_bench::Rng;

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub bytes: u64,
    pub lines: u64,
    pub errors: u64,
    pub reports: u64,
    /// Lines per `user=` value among the lines that carry one.
    pub users: std::collections::BTreeMap<String, u64>,
}

const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/items",
    "/api/v1/items/{id}/stock",
    "/api/v2/checkout",
    "/healthz",
    "/api/v1/users/{id}/profile",
    "/static/app.js",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const WARNINGS: &[&str] = &[
    "slow query on orders_by_customer took",
    "retrying upstream call to inventory-service after",
    "cache miss ratio above threshold:",
    "connection pool nearly exhausted, in use:",
];
const ERRORS: &[&str] = &[
    "ERROR failed to charge card: gateway timeout after",
    "ERROR unhandled exception in CheckoutHandler: NullReferenceException at line",
    "ERROR database connection refused by 10.0.3.17:5432, attempt",
    "ERROR request validation failed: missing field 'quantity' in item",
];
const HEX: &[u8] = b"0123456789abcdef";

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[(rng.next_u64() % list.len() as u64) as usize]
}

fn uuid(rng: &mut Rng, out: &mut Vec<u8>) {
    for (k, len) in [8, 4, 4, 4, 12].iter().enumerate() {
        if k > 0 {
            out.push(b'-');
        }
        for _ in 0..*len {
            out.push(HEX[(rng.next_u64() & 15) as usize]);
        }
    }
}

/// 400 users with a skewed (roughly Zipf) popularity.
fn user(rng: &mut Rng) -> String {
    let r = (rng.next_u64() % 1_000_000) as f64 / 1_000_000.0;
    let n = (400f64.powf(r * r)) as u64; // small numbers much more frequent
    format!("user{n:03}")
}

/// Append one log line (without the newline) to `out`; returns (is_error, is_report, user).
fn line(
    rng: &mut Rng,
    error_per_mille: u64,
    ts_ms: i64,
    out: &mut Vec<u8>,
) -> (bool, bool, Option<String>) {
    let roll = rng.next_u64() % 1000;
    let secs = ts_ms.div_euclid(1000);
    let stamp = format!(
        "2026-11-21T{:02}:{:02}:{:02}.{:03}Z",
        secs.div_euclid(3600).rem_euclid(24),
        secs.div_euclid(60).rem_euclid(60),
        secs.rem_euclid(60),
        ts_ms.rem_euclid(1000)
    );
    if roll < error_per_mille {
        let u = user(rng);
        write!(out, "{stamp} {} request_id=", pick(rng, ERRORS),).ok();
        uuid(rng, out);
        write!(
            out,
            " {} user={u} shard={}",
            rng.next_u64() % 97,
            rng.next_u64() % 16
        )
        .ok();
        return (true, false, Some(u));
    }
    let roll = roll - error_per_mille;
    if roll < 100 {
        // a Lambda invocation's REPORT line (START/END lines come as ordinary INFO-level traffic)
        let d = (rng.next_u64() % 250_000) as f64 / 100.0;
        let mem = [128u64, 256, 512, 1024][(rng.next_u64() % 4) as usize];
        out.extend_from_slice(b"REPORT RequestId: ");
        uuid(rng, out);
        write!(
            out,
            "\tDuration: {d:.2} ms\tBilled Duration: {} ms\tMemory Size: {mem} MB\tMax Memory Used: {} MB\t",
            d.ceil() as u64,
            mem / 4 + rng.next_u64() % (mem / 2)
        )
        .ok();
        return (false, true, None);
    }
    if roll < 180 {
        let kind = if rng.next_u64().is_multiple_of(2) {
            "START"
        } else {
            "END"
        };
        write!(out, "{kind} RequestId: ").ok();
        uuid(rng, out);
        if kind == "START" {
            out.extend_from_slice(b" Version: $LATEST");
        }
        return (false, false, None);
    }
    if roll < 230 {
        let u = user(rng);
        write!(
            out,
            "{stamp} WARN {} {} ms user={u}",
            pick(rng, WARNINGS),
            rng.next_u64() % 5000
        )
        .ok();
        return (false, false, Some(u));
    }
    if roll < 300 {
        let u = user(rng);
        write!(
            out,
            "{{\"level\":\"info\",\"ts\":\"{stamp}\",\"msg\":\"order placed\",\"order\":{{\"id\":{},\"items\":{},\"total\":{:.2}}},\"user\":\"{u}\"}}",
            rng.next_u64() % 10_000_000,
            1 + rng.next_u64() % 9,
            (rng.next_u64() % 100_000) as f64 / 100.0
        )
        .ok();
        return (false, false, None);
    }
    let u = user(rng);
    let path = pick(rng, PATHS).replace("{id}", &(rng.next_u64() % 100_000).to_string());
    let status = [200u64, 200, 200, 200, 201, 204, 304, 404][(rng.next_u64() % 8) as usize];
    write!(
        out,
        "{stamp} INFO http {} {path} status={status} bytes={} latency_ms={} user={u} trace=",
        pick(rng, METHODS),
        rng.next_u64() % 50_000,
        rng.next_u64() % 900
    )
    .ok();
    uuid(rng, out);
    (false, false, Some(u))
}

/// Write at least `target_bytes` of log text to `path`. Line `i` has timestamp
/// `ts0 + i * span_ms / lines_estimate` (the caller recomputes it the same way with [`ts_of`]).
pub fn generate(
    path: &Path,
    target_bytes: u64,
    error_per_mille: u64,
    seed: u64,
) -> Result<Generated> {
    let mut w = BufWriter::with_capacity(4 << 20, File::create(path)?);
    let mut rng = Rng::new(seed);
    let mut g = Generated::default();
    let mut buf = Vec::with_capacity(512);
    while g.bytes < target_bytes {
        buf.clear();
        // the text's own clock: 2 ms per line (the ingest assigns event timestamps separately)
        let (err, report, u) = line(&mut rng, error_per_mille, g.lines as i64 * 2, &mut buf);
        buf.push(b'\n');
        w.write_all(&buf)?;
        g.bytes += buf.len() as u64 - 1; // message bytes, without the newline
        g.lines += 1;
        g.errors += u64::from(err);
        g.reports += u64::from(report);
        if let Some(u) = u {
            *g.users.entry(u).or_default() += 1;
        }
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    Ok(g)
}

/// The event timestamp of line `i` of `lines` spread evenly over `[ts0, ts0 + span_ms)`.
pub fn ts_of(i: u64, lines: u64, ts0: i64, span_ms: i64) -> i64 {
    ts0 + ((i as u128 * span_ms as u128) / lines.max(1) as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_exactly_the_lines_with_error() {
        let dir =
            std::env::temp_dir().join(format!("opsloop-bench-logs-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.log");
        let g = generate(&path, 2_000_000, 20, 7).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, g.lines);
        assert_eq!(
            lines.iter().filter(|l| l.contains("ERROR")).count() as u64,
            g.errors
        );
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("REPORT ")).count() as u64,
            g.reports
        );
        assert_eq!(lines.iter().map(|l| l.len() as u64).sum::<u64>(), g.bytes);
        let share = g.errors as f64 / g.lines as f64;
        assert!((0.015..0.025).contains(&share), "{share}");
        assert!(g.users.len() > 50);
        assert!(lines.iter().all(|l| !l.contains('\\') && l.is_ascii()));
        assert_eq!(ts_of(0, 10, 1000, 100), 1000);
        assert_eq!(ts_of(5, 10, 1000, 100), 1050);
    }
}
