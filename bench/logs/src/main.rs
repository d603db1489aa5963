//! `opsloop-bench-logs`: the CloudWatch Logs benchmark (issue 4). It generates realistic raw log
//! text ([`gen`]), counts `ERROR` lines in it with `rg -c ERROR`, ingests it through signed
//! PutLogEvents over loopback HTTP into a release-built `opsloop server` (raw message MB/s),
//! restarts the server (a checkpoint: everything is in compressed segments) and measures the
//! compression ratio, then runs `filter @message like /ERROR/ | stats count()` and the three seed
//! queries through StartQuery/GetQueryResults, timing them, checking the count against `rg`, and
//! sampling the server's RSS meanwhile. The work directory is removed at the end unless `--keep`.

mod client;
mod gen;
mod ingest;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use opsloop_bench::awsclient::Creds;
use opsloop_bench::procs::{self, BENCH_AKID, BENCH_SECRET};
use serde_json::{json, Value};

use client::LogsClient;

const GROUP: &str = "bench-app";
const SEED_QUERIES: [&str; 3] = [
    "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100",
    "fields @timestamp, @duration | stats avg(@duration), max(@duration), min(@duration) by bin(5m)",
    r"fields @message | parse @message /user=(?<user>\S+)/ | stats count(*) by user | sort count desc",
];

#[derive(Debug, Parser)]
#[command(
    name = "opsloop-bench-logs",
    about = "CloudWatch Logs ingest and Insights benchmark"
)]
struct Cli {
    /// Megabytes (10^6) of raw log text to generate and ingest.
    #[arg(long, default_value_t = 2048)]
    mb: u64,
    /// ERROR lines per thousand.
    #[arg(long, default_value_t = 20)]
    error_per_mille: u64,
    /// Concurrent PutLogEvents connections (one log stream each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// PutLogEvents batch size as AWS counts it (message bytes + 26 per event), at most 1048576.
    #[arg(long, default_value_t = 1_000_000)]
    batch_bytes: usize,
    /// Hours the event timestamps span (ending a few minutes ago).
    #[arg(long, default_value_t = 10)]
    span_hours: i64,
    /// Timed runs of each query and of rg.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Work directory (text file, server data, logs).
    #[arg(long, default_value = "/tmp/opsloop-bench-logs")]
    work_dir: PathBuf,
    /// The opsloop binary [default: next to this binary, else on PATH].
    #[arg(long)]
    opsloop: Option<PathBuf>,
    /// Keep the work directory.
    #[arg(long)]
    keep: bool,
    /// Reuse the text and server data a previous `--keep` run left in the work directory: skip
    /// generation and ingest, measure only the queries (implies `--keep`; for iterating).
    #[arg(long)]
    reuse: bool,
    /// Run only the scan query (not the one-hour window or the seed queries).
    #[arg(long)]
    scan_only: bool,
    /// Milliseconds between GetQueryResults polls while the scan query runs (its time is
    /// StartQuery sent to `Complete` received, so a coarser poll adds up to this much; a finer
    /// one costs the server CPU the scan competes for).
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Generate and ingest only (no rg, no restart, no queries; for iterating on the ingest).
    #[arg(long, conflicts_with = "reuse")]
    ingest_only: bool,
}

/// One line of the results table.
struct Row(String, String);

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if !cli.reuse {
        let _ = std::fs::remove_dir_all(&cli.work_dir);
    }
    std::fs::create_dir_all(&cli.work_dir)?;
    let result = runtime.block_on(run(&cli));
    if !cli.keep && !cli.reuse {
        let _ = std::fs::remove_dir_all(&cli.work_dir);
    }
    let rows = result?;
    println!("\n| measurement | result |\n|---|---|");
    for Row(k, v) in rows {
        println!("| {k} | {v} |");
    }
    Ok(())
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Run `q` over the bench group as the scan measurement does: StartQuery, then GetQueryResults
/// every `poll_ms` until `Complete` (calling `during` between polls); returns the last answer and
/// the time from StartQuery sent to `Complete` received.
async fn scan_query(
    c: &mut LogsClient,
    q: &str,
    start_s: i64,
    end_s: i64,
    poll_ms: u64,
    mut during: impl FnMut(),
) -> Result<(Value, Duration)> {
    let t = Instant::now();
    let started = c
        .call(
            "StartQuery",
            &json!({"logGroupName": GROUP, "queryString": q, "startTime": start_s, "endTime": end_s, "limit": 10000}),
        )
        .await?;
    let id = started["queryId"].clone();
    loop {
        let r = c.call("GetQueryResults", &json!({"queryId": id})).await?;
        match r["status"].as_str().unwrap_or_default() {
            "Running" | "Scheduled" => {
                during();
                tokio::time::sleep(Duration::from_millis(poll_ms)).await;
            }
            "Complete" => return Ok((r, t.elapsed())),
            other => bail!("query {q:?} ended {other}: {r}"),
        }
    }
}

/// The health endpoint's note of log segments waiting for the skip index, if any.
async fn skip_index_backlog(addr: std::net::SocketAddr) -> Result<Option<String>> {
    let mut c = opsloop_bench::awsclient::HttpConn::connect(addr).await?;
    let (status, body) = c.get("/_opsloop/health").await?;
    if status != 200 {
        bail!("health answered {status}");
    }
    let v: Value = serde_json::from_slice(&body)?;
    Ok(v["services"].as_object().and_then(|services| {
        services.values().find_map(|s| {
            s["detail"]
                .as_str()
                .filter(|d| d.contains("skip index"))
                .map(str::to_string)
        })
    }))
}

/// The `RssAnon` of `pid` in KiB (0 if unreadable).
fn rss_anon_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("RssAnon:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) of this process's waited-for children (`/proc/self/stat` fields
/// 16 and 17).
fn children_cpu_seconds(tck: u64) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // the slice starts at field 3: fields 16/17 are at indexes 13/14
    let ticks: u64 = [13, 14]
        .iter()
        .filter_map(|i| f.get(*i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / tck as f64
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run(cli: &Cli) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let bin = procs::find_binary(cli.opsloop.as_deref(), "opsloop")?;
    let text = cli.work_dir.join("app.log");

    // 1. the data (or what a kept run left)
    let summary = cli.work_dir.join("bench.json");
    let span_ms = cli.span_hours * 3_600_000;
    let (g, ts0) = if cli.reuse {
        load_summary(&summary).context("--reuse needs a work directory left by --keep")?
    } else {
        let t = Instant::now();
        let g = gen::generate(&text, cli.mb * 1_000_000, cli.error_per_mille, 42)?;
        eprintln!(
            "generated {} lines, {:.1} MB of messages ({} ERROR, {} REPORT) in {:.1?}",
            g.lines,
            g.bytes as f64 / 1e6,
            g.errors,
            g.reports,
            t.elapsed()
        );
        (g, opsloop_bench::unix_millis() - span_ms - 300_000)
    };
    let file_bytes = std::fs::metadata(&text)?.len();
    rows.push(Row(
        "data".into(),
        format!(
            "{} events, {:.1} MB raw message text ({:.1} MB file with newlines), {:.2}% ERROR, {} REPORT lines, {} users",
            g.lines,
            g.bytes as f64 / 1e6,
            file_bytes as f64 / 1e6,
            100.0 * g.errors as f64 / g.lines as f64,
            g.reports,
            g.users.len()
        ),
    ));

    let creds = Creds {
        access_key_id: BENCH_AKID.into(),
        secret_access_key: BENCH_SECRET.into(),
        region: "us-east-1".into(),
    };
    if cli.ingest_only {
        rows.extend(ingest_phase(cli, &bin, &text, &g, ts0, span_ms, &creds).await?);
        return Ok(rows);
    }

    // 2. rg over the same file (the first run warms the page cache)
    let rg = |path: &PathBuf| -> Result<(u64, Duration)> {
        let t = Instant::now();
        let out = Command::new("rg")
            .arg("-c")
            .arg("ERROR")
            .arg(path)
            .output()
            .context("run rg (apt-get install -y ripgrep)")?;
        let d = t.elapsed();
        let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
        Ok((n, d))
    };
    rg(&text)?;
    let mut rg_times = Vec::new();
    let mut rg_count = 0;
    // clock ticks per second (asked first: `getconf` is a child too)
    let tck = procs::clk_tck().max(1);
    let rg_cpu0 = children_cpu_seconds(tck);
    for _ in 0..cli.rounds {
        let (n, d) = rg(&text)?;
        rg_count = n;
        rg_times.push(d);
    }
    if rg_count != g.errors {
        bail!(
            "rg counted {rg_count} ERROR lines, the generator wrote {}",
            g.errors
        );
    }
    let rg_best = *rg_times.iter().min().unwrap_or(&Duration::ZERO);
    // CPU seconds of the waited-for rg runs (10 ms ticks: summed over the rounds)
    let rg_cpu = (children_cpu_seconds(tck) - rg_cpu0) / cli.rounds.max(1) as f64;

    // 3. the server
    let data = cli.work_dir.join("data");
    if !cli.reuse {
        rows.extend(ingest_phase(cli, &bin, &text, &g, ts0, span_ms, &creds).await?);
        save_summary(&summary, &g, ts0)?;
    }
    let mut server = procs::spawn_opsloop(&bin, &data, &cli.work_dir.join("server2.log"))?;
    let ready = server
        .wait_ready("/_opsloop/health", Duration::from_secs(120))
        .await?;
    rows.push(Row(
        "restart with the data".into(),
        format!("ready in {:.2} s", ready.as_secs_f64()),
    ));
    let mut c = LogsClient::connect(server.addr, creds.clone()).await?;
    let (start_s, end_s) = (ts0 / 1000, (ts0 + span_ms) / 1000 + 1);

    // 5. the skip index: with `logs_skip_index = idle` (the default) the restarted server adds it
    // in the background once idle. Measure the count on the plain segments first, then wait for
    // the index and say how long it took.
    let pid = server.pid();
    let q = "filter @message like /ERROR/ | stats count()";
    if let Some(note) = skip_index_backlog(server.addr).await? {
        let mut times = Vec::new();
        for _ in 0..cli.rounds {
            times.push(
                scan_query(&mut c, q, start_s, end_s, cli.poll_ms, || {})
                    .await?
                    .1,
            );
        }
        let best = *times.iter().min().unwrap_or(&Duration::ZERO);
        rows.push(Row(
            format!("`{q}` before the skip index (plain segments)"),
            format!(
                "{:.2} GB/s best ({:.3} s best of {}); opsloop / rg time = {:.2}x",
                g.bytes as f64 / 1e9 / best.as_secs_f64(),
                best.as_secs_f64(),
                times.len(),
                best.as_secs_f64() / rg_best.as_secs_f64()
            ),
        ));
        let (t, cpu0) = (Instant::now(), procs::cpu_seconds(pid).unwrap_or(0.0));
        while skip_index_backlog(server.addr).await?.is_some() {
            if t.elapsed() > Duration::from_secs(1800) {
                bail!("the skip index was not built within 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        rows.push(Row(
            "skip index, built in the background (`logs_skip_index = idle`)".into(),
            format!(
                "{note} after the restart; all indexed {:.1} s after the last query ({:.1} server CPU-s, {:.1} ns per message byte; it starts after 2 s idle)",
                t.elapsed().as_secs_f64(),
                procs::cpu_seconds(pid).unwrap_or(0.0) - cpu0,
                (procs::cpu_seconds(pid).unwrap_or(0.0) - cpu0) * 1e9 / g.bytes as f64
            ),
        ));
        let (apparent, _) = procs::dir_size(&data.join("logs"))?;
        rows.push(Row(
            "compression with the skip index".into(),
            format!(
                "{:.2}x ({:.1} MB raw / {:.1} MB on disk)",
                g.bytes as f64 / apparent as f64,
                g.bytes as f64 / 1e6,
                apparent as f64 / 1e6
            ),
        ));
    }

    // 6. the scan query against rg
    let idle_rss = procs::vm_rss_kib(pid).unwrap_or(0);
    let mut peak = idle_rss;
    // anonymous memory apart: file pages a server maps (page cache) count in VmRSS too
    let idle_anon = rss_anon_kib(pid);
    let mut peak_anon = idle_anon;
    let mut times = Vec::new();
    let mut last = Value::Null;
    let cpu0 = procs::cpu_seconds(pid).unwrap_or(0.0);
    for _ in 0..cli.rounds {
        let (r, d) = scan_query(&mut c, q, start_s, end_s, cli.poll_ms, || {
            peak = peak.max(procs::vm_rss_kib(pid).unwrap_or(0));
            peak_anon = peak_anon.max(rss_anon_kib(pid));
        })
        .await?;
        peak = peak.max(procs::vm_rss_kib(pid).unwrap_or(0));
        peak_anon = peak_anon.max(rss_anon_kib(pid));
        times.push(d);
        last = r;
    }
    // server CPU seconds per scan, request handling included (10 ms ticks: summed over the rounds)
    let scan_cpu = (procs::cpu_seconds(pid).unwrap_or(0.0) - cpu0) / cli.rounds.max(1) as f64;
    let count: u64 = last["results"][0][0]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .context("no count in the answer")?;
    let stats = &last["statistics"];
    let best = *times.iter().min().unwrap_or(&Duration::ZERO);
    rows.push(Row(
        format!("`{q}`"),
        format!(
            "**{:.2} GB/s** best, {:.2} GB/s median ({:.3} s best of {}; count {} {} rg's {}; recordsScanned {}, bytesScanned {})",
            g.bytes as f64 / 1e9 / best.as_secs_f64(),
            g.bytes as f64 / 1e9 / median(times.clone()).as_secs_f64(),
            best.as_secs_f64(),
            times.len(),
            count,
            if count == rg_count { "=" } else { "!=" },
            rg_count,
            stats["recordsScanned"],
            stats["bytesScanned"]
        ),
    ));
    rows.push(Row(
        "`rg -c ERROR` over the same text file".into(),
        format!(
            "{:.3} s best of {} ({:.2} GB/s of file); opsloop / rg time = **{:.2}x**",
            rg_best.as_secs_f64(),
            rg_times.len(),
            file_bytes as f64 / 1e9 / rg_best.as_secs_f64(),
            best.as_secs_f64() / rg_best.as_secs_f64()
        ),
    ));
    rows.push(Row(
        "CPU seconds per run (scan: the server's; rg: its own)".into(),
        format!(
            "scan **{scan_cpu:.3}** CPU-s ({:.3} per 512 MB), rg **{rg_cpu:.3}** CPU-s ({:.3} per 512 MB); CPU ratio {:.2}x",
            scan_cpu * 512e6 / g.bytes as f64,
            rg_cpu * 512e6 / g.bytes as f64,
            scan_cpu / rg_cpu.max(1e-9)
        ),
    ));
    rows.push(Row(
        "server RSS during the scan query".into(),
        format!(
            "{:.1} MB peak (idle after restart {:.1} MB); anonymous {:.1} MB peak (idle {:.1} MB)",
            peak as f64 / 1024.0,
            idle_rss as f64 / 1024.0,
            peak_anon as f64 / 1024.0,
            idle_anon as f64 / 1024.0
        ),
    ));
    if count != rg_count {
        bail!("Insights counted {count} ERROR events, rg {rg_count}");
    }
    if cli.scan_only {
        server.terminate(Duration::from_secs(60)).await?;
        return Ok(rows);
    }

    // 7. a one-hour window reads only its partition
    let mid = ts0 + span_ms / 2;
    let hour = mid - mid.rem_euclid(3_600_000);
    let (r, d) = c
        .run_query(GROUP, q, hour / 1000, (hour + 3_600_000) / 1000 - 1, || {})
        .await?;
    rows.push(Row(
        "same query over a one-hour window".into(),
        format!(
            "{:.3} s; bytesScanned {} of {} ({:.1}%)",
            d.as_secs_f64(),
            r["statistics"]["bytesScanned"],
            g.bytes,
            100.0 * r["statistics"]["bytesScanned"].as_f64().unwrap_or(0.0) / g.bytes as f64
        ),
    ));

    // 8. the seed queries
    for (k, q) in SEED_QUERIES.iter().enumerate() {
        let mut times = Vec::new();
        let mut last = Value::Null;
        for _ in 0..cli.rounds {
            let (r, d) = c
                .run_query(GROUP, q, start_s, end_s, || {
                    peak = peak.max(procs::vm_rss_kib(pid).unwrap_or(0));
                })
                .await?;
            times.push(d);
            last = r;
        }
        let results = last["results"].as_array().cloned().unwrap_or_default();
        let first = results.first().map(render_row).unwrap_or_default();
        let check = match k {
            0 => format!("{} rows", results.len()),
            1 => format!("{} bins", results.len()),
            _ => {
                let top = g.users.iter().max_by_key(|(_, n)| **n);
                format!(
                    "{} users (generator: {}; top {:?})",
                    results.len(),
                    g.users.len(),
                    top
                )
            }
        };
        let best = *times.iter().min().unwrap_or(&Duration::ZERO);
        rows.push(Row(
            format!("`{q}`"),
            format!(
                "{:.3} s best, {:.3} s median ({:.2} GB/s); {check}; first row: {first}",
                best.as_secs_f64(),
                median(times).as_secs_f64(),
                g.bytes as f64 / 1e9 / best.as_secs_f64()
            ),
        ));
    }
    rows.push(Row(
        "server RSS, all queries".into(),
        format!("{:.1} MB peak", peak as f64 / 1024.0),
    ));
    server.terminate(Duration::from_secs(60)).await?;
    Ok(rows)
}

/// Start a server on a fresh data directory, create the group and streams, ingest the text, stop
/// the server (its shutdown checkpoint writes every event into segments) and measure the store.
async fn ingest_phase(
    cli: &Cli,
    bin: &std::path::Path,
    text: &std::path::Path,
    g: &gen::Generated,
    ts0: i64,
    span_ms: i64,
    creds: &Creds,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let data = cli.work_dir.join("data");
    let mut server = procs::spawn_opsloop(bin, &data, &cli.work_dir.join("server.log"))?;
    server
        .wait_ready("/_opsloop/health", Duration::from_secs(60))
        .await?;
    let mut c = LogsClient::connect(server.addr, creds.clone()).await?;
    c.call("CreateLogGroup", &json!({"logGroupName": GROUP}))
        .await?;
    for k in 0..cli.connections {
        c.call(
            "CreateLogStream",
            &json!({"logGroupName": GROUP, "logStreamName": format!("i-{k:04}")}),
        )
        .await?;
    }

    // 4. ingest (step 3 is the server)
    let (text, lines) = (text.to_path_buf(), g.lines);
    let (connections, batch_bytes) = (cli.connections, cli.batch_bytes);
    let prepared = tokio::task::spawn_blocking(move || {
        ingest::prepare(&text, GROUP, lines, ts0, span_ms, connections, batch_bytes)
    })
    .await??;
    let prepare_time = prepared.took;
    let cpu0 = procs::cpu_seconds(server.pid()).unwrap_or(0.0);
    let me = std::process::id();
    let client0 = procs::cpu_seconds(me).unwrap_or(0.0);
    let sent = ingest::send(prepared, server.addr, creds).await?;
    let ingest_time = sent.elapsed;
    let cpu = procs::cpu_seconds(server.pid()).unwrap_or(0.0) - cpu0;
    let client_cpu = procs::cpu_seconds(me).unwrap_or(0.0) - client0;
    if sent.events != g.lines {
        bail!("ingested {} events, generated {}", sent.events, g.lines);
    }
    rows.push(Row(
        "ingest (PutLogEvents, loopback HTTP)".into(),
        format!(
            "**{:.1} MB/s** raw message bytes ({:.0} events/s; {:.1} s for {:.1} MB; {} connections, ~{} KB batches; server CPU {:.2} s = {:.2} ns/byte; bench client CPU {:.2} s = {:.2} ns/byte; request bodies {:.1} MB, built and hashed beforehand in {:.1} s, signed at send time)",
            mb_s(g.bytes, ingest_time),
            sent.events as f64 / ingest_time.as_secs_f64(),
            ingest_time.as_secs_f64(),
            g.bytes as f64 / 1e6,
            cli.connections,
            cli.batch_bytes / 1000,
            cpu,
            cpu * 1e9 / g.bytes as f64,
            client_cpu,
            client_cpu * 1e9 / g.bytes as f64,
            sent.body_bytes as f64 / 1e6,
            prepare_time.as_secs_f64()
        ),
    ));

    // 5. restart (the shutdown checkpoints everything into segments) and measure the disk; the
    // server's CPU from the start of the ingest to its exit (once reaped) includes compressing
    // what was still in the WAL
    let tck = procs::clk_tck();
    let reaped0 = ingest::reaped_children_cpu(tck);
    let (clean, stop) = server.terminate(Duration::from_secs(300)).await?;
    if let (Some(before), Some(after)) = (reaped0, ingest::reaped_children_cpu(tck)) {
        let whole = after - before - cpu0;
        rows.push(Row(
            "ingest, server CPU including the shutdown checkpoint".into(),
            format!(
                "{whole:.2} s = **{:.2} ns/byte** of raw message text (ingest {cpu:.2} s, then {:.2} s to compress and write what the WAL still held at shutdown)",
                whole * 1e9 / g.bytes as f64,
                whole - cpu,
            ),
        ));
    }
    let logs_dir = data.join("logs");
    let (apparent, _) = procs::dir_size(&logs_dir)?;
    rows.push(Row(
        "compression".into(),
        format!(
            "**{:.2}x** ({:.1} MB raw / {:.1} MB on disk in {}; shutdown {} in {:.1} s)",
            g.bytes as f64 / apparent as f64,
            g.bytes as f64 / 1e6,
            apparent as f64 / 1e6,
            logs_dir.display(),
            if clean { "clean" } else { "KILLED" },
            stop.as_secs_f64()
        ),
    ));
    Ok(rows)
}

/// Remember what a run generated and its first timestamp, for `--reuse`.
fn save_summary(path: &std::path::Path, g: &gen::Generated, ts0: i64) -> Result<()> {
    let v = json!({"bytes": g.bytes, "lines": g.lines, "errors": g.errors, "reports": g.reports,
        "users": g.users, "ts0": ts0});
    std::fs::write(path, serde_json::to_vec(&v)?)?;
    Ok(())
}

fn load_summary(path: &std::path::Path) -> Result<(gen::Generated, i64)> {
    let v: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let n = |k: &str| v[k].as_u64().with_context(|| format!("{k} missing"));
    let users = v["users"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect();
    let g = gen::Generated {
        bytes: n("bytes")?,
        lines: n("lines")?,
        errors: n("errors")?,
        reports: n("reports")?,
        users,
    };
    Ok((g, v["ts0"].as_i64().context("ts0 missing")?))
}

fn render_row(row: &Value) -> String {
    row.as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["field"] != "@ptr")
        .map(|c| {
            let v = c["value"].as_str().unwrap_or_default();
            let v: String = v.chars().take(60).collect();
            format!("{}={}", c["field"].as_str().unwrap_or_default(), v)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
