//! The server's CPU time per thread name, from `/proc/<pid>/task/*/schedstat` (nanoseconds on
//! CPU) and `comm`: tokio workers, the events outbox writer, SQLite and log threads are told
//! apart, so a change to one of them can be measured on a shared machine where the total is
//! noisy. Threads that end during the window are not counted; names with trailing digits are
//! grouped (`tokio-runtime-w`, `logs-sync`, ...).

use std::collections::BTreeMap;

/// CPU seconds so far of each thread name of process `pid` (empty when unreadable).
pub fn cpu_by_name(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let dir = t.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue;
        };
        let Some(ns) = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let name = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .to_string();
        *out.entry(name).or_default() += ns as f64 / 1e9;
    }
    out
}

/// `name µs, ...` per unit of work, biggest first: the CPU each thread name used between `a`
/// and `b`, divided by `units`.
pub fn report(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, units: u64) -> String {
    let mut rows: Vec<(String, f64)> = b
        .iter()
        .map(|(k, v)| (k.clone(), v - a.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect();
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    rows.iter()
        .map(|(k, d)| format!("{k} {:.2}", d / units.max(1) as f64 * 1e6))
        .collect::<Vec<_>>()
        .join(", ")
}
