//! `opsloop-bench`: runs opsloop's benchmarks on loopback and prints a results table.
//!
//! * `ingest`  — PutMetricData throughput (and the same workload into Prometheus remote write)
//! * `query`   — GetMetricStatistics latency over a 24-hour, 1M-datapoint series
//! * `startup` — spawn-to-healthy time and idle memory on an empty data dir
//! * `alarms`  — 10,000 metric alarms under load: breach-to-ALARM and breach-to-SNS-webhook latency
//! * `all`     — everything above, with restarts on the loaded data dir, in one table
//!
//! Every number printed is measured in this run; see BENCHMARKS.md for methodology.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use opsloop_bench::alarms::{self, AlarmsConfig};
use opsloop_bench::awsclient::Creds;
use opsloop_bench::ingest::{self, IngestConfig, IngestResult, Target};
use opsloop_bench::procs::{self, Proc, BENCH_AKID, BENCH_SECRET};
use opsloop_bench::query;

#[derive(Parser)]
#[command(name = "opsloop-bench", about = "opsloop benchmarks (loopback only)")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// The opsloop binary (default: `opsloop` next to this binary, then PATH).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// The Prometheus binary (default: `prometheus` on PATH; Debian package `prometheus`).
    #[arg(long, global = true)]
    prometheus_bin: Option<PathBuf>,
    /// Scratch directory for data dirs and logs (default: a new one under the temp dir).
    #[arg(long, global = true)]
    work_dir: Option<PathBuf>,
    /// Keep the scratch directory afterwards.
    #[arg(long, global = true)]
    keep: bool,
}

#[derive(Args, Clone)]
struct IngestOpts {
    /// Seconds of load per target.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent keep-alive HTTP/1.1 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// MetricDatum (series) per request.
    #[arg(long, default_value_t = 1000)]
    datums: usize,
    /// Values per datum (`Values`/`Counts` arrays); samples per series per request.
    #[arg(long, default_value_t = 10)]
    values: usize,
    /// Distinct series.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Runs per target (alternating opsloop and Prometheus); the table shows the median run.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

impl IngestOpts {
    fn config(&self) -> IngestConfig {
        IngestConfig {
            duration: Duration::from_secs(self.duration),
            connections: self.connections,
            datums_per_request: self.datums,
            values_per_datum: self.values,
            series: self.series,
        }
    }
}

#[derive(Args, Clone)]
struct QueryOpts {
    /// Datapoints loaded into the one series (over 24 h).
    #[arg(long, default_value_t = 1_000_000)]
    points: u64,
    /// Timed queries per kind.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Connections used to load.
    #[arg(long, default_value_t = 4)]
    load_connections: usize,
}

#[derive(Args, Clone)]
struct AlarmsOpts {
    /// Metric alarms to create (one alarmed metric each).
    #[arg(long, default_value_t = 10_000)]
    alarms: usize,
    /// Alarm period in seconds (10 = evaluated on every 10-second clock tick).
    #[arg(long, default_value_t = 10)]
    alarm_period: u64,
    /// Background PutMetricData load, datapoints per second, across the alarmed metrics.
    #[arg(long, default_value_t = 100_000)]
    alarm_load_rate: u64,
    /// Values per MetricDatum in the background load.
    #[arg(long, default_value_t = 10)]
    alarm_load_values: usize,
    /// Connections of the background load.
    #[arg(long, default_value_t = 2)]
    alarm_load_connections: usize,
    /// Breaching datapoints injected, one at a time, each on a distinct random alarm.
    #[arg(long, default_value_t = 200)]
    breaches: usize,
    /// Clock ticks sampled for the per-evaluation CPU cost.
    #[arg(long, default_value_t = 4)]
    ticks: usize,
}

impl AlarmsOpts {
    fn config(&self) -> AlarmsConfig {
        AlarmsConfig {
            alarms: self.alarms,
            period: self.alarm_period,
            load_rate: self.alarm_load_rate,
            load_values: self.alarm_load_values,
            load_connections: self.alarm_load_connections,
            create_connections: 4,
            breaches: self.breaches,
            breach_timeout: Duration::from_secs(10),
            ticks: self.ticks,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Opsloop,
    Prometheus,
    Both,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ingest throughput.
    Ingest {
        #[command(flatten)]
        opts: IngestOpts,
        #[arg(long, value_enum, default_value_t = Which::Both)]
        target: Which,
        /// Use this running opsloop server instead of starting one (credentials from
        /// OPSLOOP_ACCESS_KEY_ID / OPSLOOP_SECRET_ACCESS_KEY).
        #[arg(long)]
        opsloop_addr: Option<SocketAddr>,
    },
    /// GetMetricStatistics latency.
    Query {
        #[command(flatten)]
        opts: QueryOpts,
    },
    /// Startup-to-healthy time and idle memory on an empty data dir.
    Startup,
    /// Metric alarms under load: time from a breaching datapoint to ALARM and to the SNS webhook.
    Alarms {
        #[command(flatten)]
        opts: AlarmsOpts,
    },
    /// Everything.
    All {
        #[command(flatten)]
        ingest: IngestOpts,
        #[command(flatten)]
        query: QueryOpts,
        #[command(flatten)]
        alarms: AlarmsOpts,
    },
}

/// Rows of the results table.
#[derive(Default)]
struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    fn add(&mut self, k: impl Into<String>, v: impl Into<String>) {
        let (k, v) = (k.into(), v.into());
        println!("  {k}: {v}");
        self.rows.push((k, v));
    }
    fn print(&self) {
        println!("\n| measurement | result |\n| --- | --- |");
        for (k, v) in &self.rows {
            println!("| {k} | {v} |");
        }
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (neg, digits) = s
        .strip_prefix('-')
        .map(|d| (true, d))
        .unwrap_or((false, s.as_str()));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn bench_creds() -> Creds {
    Creds {
        access_key_id: BENCH_AKID.to_string(),
        secret_access_key: BENCH_SECRET.to_string(),
        region: "us-east-1".to_string(),
    }
}

struct Ctx {
    work: PathBuf,
    server_bin: PathBuf,
    prometheus_bin: Option<PathBuf>,
    table: Table,
    /// Keep every data dir (`--keep`).
    keep: bool,
}

impl Ctx {
    fn server_bin(&self) -> &Path {
        &self.server_bin
    }

    async fn start_opsloop(&self, data: &Path, log_name: &str) -> Result<(Proc, Duration)> {
        let mut p = procs::spawn_opsloop(&self.server_bin, data, &self.work.join(log_name))?;
        let t = p
            .wait_ready("/_opsloop/health", Duration::from_secs(120))
            .await?;
        Ok((p, t))
    }
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), MemTotal {mem}, Linux {}",
        kernel.trim()
    )
}

fn prometheus_version(bin: &Path) -> String {
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

/// The table rows describing one ingest run (all but its samples/s, which [`report_rounds`] adds).
fn ingest_rows(name: &str, r: &IngestResult) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            format!("{name} ingest: requests/s"),
            format!("{:.1}", r.requests_per_sec()),
        ),
        (
            format!("{name} ingest: request latency p50 / p99"),
            format!("{:.1} ms / {:.1} ms", r.latency_p50_ms, r.latency_p99_ms),
        ),
        (
            format!("{name} ingest: acknowledged samples (requests ok / failed)"),
            format!(
                "{} in {:.2} s ({} / {})",
                thousands(r.points as f64),
                r.elapsed.as_secs_f64(),
                r.requests_ok,
                r.requests_failed
            ),
        ),
        (
            format!("{name} ingest: request body size"),
            format!(
                "{:.0} KiB",
                r.body_bytes as f64 / (r.requests_ok + r.requests_failed).max(1) as f64 / 1024.0
            ),
        ),
    ];
    if let Some(c) = r.server_cores {
        rows.push((
            format!("{name} ingest: server CPU (cores of 2)"),
            format!("{c:.2}"),
        ));
    }
    if let Some(c) = r.client_cores {
        rows.push((
            format!("{name} ingest: load-generator CPU (cores)"),
            format!("{c:.2}"),
        ));
    }
    if let (Some(m), Some(sv), Some(c)) = (r.machine_cores, r.server_cores, r.client_cores) {
        rows.push((
            format!("{name} ingest: CPU taken by other processes (cores)"),
            format!("{:.2}", (m - sv - c).max(0.0)),
        ));
    }
    if let Some(e) = &r.first_error {
        rows.push((format!("{name} ingest: first error"), e.replace('|', "/")));
    }
    rows
}

/// One ingest run and the checks made around it.
struct Round {
    r: IngestResult,
    /// Rows about this run beyond [`ingest_rows`] (read-back, size on disk, readiness).
    rows: Vec<(String, String)>,
    /// A failed check, reported whichever run is the median.
    problem: Option<String>,
}

impl Round {
    fn print(&self, name: &str, i: usize) {
        println!(
            "  run {}: {} samples/s",
            i + 1,
            thousands(self.r.points_per_sec())
        );
        for (k, v) in ingest_rows(name, &self.r).iter().chain(&self.rows) {
            println!("    {k}: {v}");
        }
    }
}

/// Add the median run (by samples/s) to the table, with every run's rate and every failed check.
fn report_rounds(t: &mut Table, name: &str, rounds: &[Round]) -> Option<IngestResult> {
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| {
        rounds[a]
            .r
            .points_per_sec()
            .total_cmp(&rounds[b].r.points_per_sec())
    });
    let median = &rounds[*order.get(rounds.len() / 2)?];
    let each: Vec<String> = rounds
        .iter()
        .map(|r| thousands(r.r.points_per_sec()))
        .collect();
    t.add(
        format!(
            "{name} ingest: acknowledged samples/s (median of {} runs)",
            rounds.len()
        ),
        format!(
            "{} (runs: {})",
            thousands(median.r.points_per_sec()),
            each.join(", ")
        ),
    );
    for (k, v) in ingest_rows(name, &median.r)
        .into_iter()
        .chain(median.rows.iter().cloned())
    {
        t.add(format!("{k} (median run)"), v);
    }
    for (i, round) in rounds.iter().enumerate() {
        if let Some(p) = &round.problem {
            t.add(
                format!("{name} ingest: run {} check FAILED", i + 1),
                p.clone(),
            );
        }
    }
    Some(median.r.clone())
}

async fn opsloop_round(
    ctx: &Ctx,
    cfg: &IngestConfig,
    external: Option<SocketAddr>,
    i: usize,
) -> Result<Round> {
    if let Some(addr) = external {
        let creds = Creds {
            access_key_id: std::env::var("OPSLOOP_ACCESS_KEY_ID")
                .context("OPSLOOP_ACCESS_KEY_ID")?,
            secret_access_key: std::env::var("OPSLOOP_SECRET_ACCESS_KEY")
                .context("OPSLOOP_SECRET_ACCESS_KEY")?,
            region: "us-east-1".into(),
        };
        let r = ingest::run(Target::Opsloop(creds), addr, cfg, None).await?;
        return Ok(Round {
            r,
            rows: Vec::new(),
            problem: None,
        });
    }
    let data = ctx.work.join(format!("ingest-data-{i}"));
    let (mut p, _) = ctx
        .start_opsloop(&data, &format!("opsloop-ingest-{i}.log"))
        .await?;
    let r = ingest::run(Target::Opsloop(bench_creds()), p.addr, cfg, Some(p.pid())).await?;
    let mut rows = Vec::new();
    let mut problem = None;
    let (checked, bad) = ingest::verify_opsloop(p.addr, &bench_creds(), &r, 100).await?;
    if bad.is_empty() {
        rows.push((
            "opsloop ingest: read-back check (SampleCount per series)".to_string(),
            format!("{checked} series checked, all match"),
        ));
    } else {
        problem = Some(format!(
            "{} of {checked} series MISMATCH: {}",
            bad.len(),
            bad[0]
        ));
    }
    let (clean, took) = p.terminate(Duration::from_secs(60)).await?;
    if !clean {
        problem = Some(format!("did not exit within {took:?} of SIGTERM (killed)"));
    }
    let (bytes, _) = procs::dir_size(&data)?;
    if r.points > 0 {
        rows.push((
            "opsloop ingest: data dir bytes per acknowledged sample".to_string(),
            format!(
                "{:.2} ({} MiB)",
                bytes as f64 / r.points as f64,
                bytes / (1 << 20)
            ),
        ));
    }
    if !ctx.keep {
        std::fs::remove_dir_all(&data)?;
    }
    Ok(Round { r, rows, problem })
}

async fn prometheus_round(ctx: &Ctx, cfg: &IngestConfig, i: usize) -> Result<Round> {
    let Some(bin) = ctx.prometheus_bin.clone() else {
        bail!("prometheus not found: install it with `apt-get install -y --no-install-recommends prometheus` (bench/run.sh does)");
    };
    let dir = ctx.work.join(format!("prometheus-{i}"));
    let mut p = procs::spawn_prometheus(&bin, &dir)?;
    let ready = p.wait_ready("/-/ready", Duration::from_secs(120)).await?;
    let mut rows = vec![(
        "prometheus: spawn to ready (empty dir)".to_string(),
        format!("{:.0} ms", ready.as_secs_f64() * 1000.0),
    )];
    if let Some(kib) = procs::vm_rss_kib(p.pid()) {
        rows.push((
            "prometheus: RSS when ready (empty dir)".to_string(),
            mib(kib),
        ));
    }
    let r = ingest::run(Target::Prometheus, p.addr, cfg, Some(p.pid())).await?;
    let held = ingest::prometheus_sample_count(p.addr).await?;
    let mut problem = None;
    let readback = format!(
        "{} samples held of {} acknowledged",
        thousands(held),
        thousands(r.points as f64)
    );
    if held < r.points as f64 {
        problem = Some(readback.clone());
    }
    rows.push((
        "prometheus ingest: read-back check (PromQL count_over_time)".to_string(),
        readback,
    ));
    p.terminate(Duration::from_secs(60)).await?;
    let (bytes, _) = procs::dir_size(&dir.join("data"))?;
    if r.points > 0 {
        rows.push((
            "prometheus ingest: data dir bytes per acknowledged sample".to_string(),
            format!(
                "{:.2} ({} MiB, WAL + head chunks: no 2 h block cut yet)",
                bytes as f64 / r.points as f64,
                bytes / (1 << 20)
            ),
        ));
    }
    if !ctx.keep {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(Round { r, rows, problem })
}

/// `rounds` runs per target, alternating opsloop and Prometheus so both see the same conditions.
async fn run_ingest(
    ctx: &mut Ctx,
    cfg: &IngestConfig,
    which: Which,
    external: Option<SocketAddr>,
    rounds: usize,
) -> Result<()> {
    let prom_version = ctx
        .prometheus_bin
        .as_deref()
        .map(prometheus_version)
        .unwrap_or_default();
    let (mut ops, mut prom) = (Vec::new(), Vec::new());
    for i in 0..rounds.max(1) {
        if which != Which::Prometheus {
            println!(
                "== opsloop ingest, run {} ({} s, {} connections)",
                i + 1,
                cfg.duration.as_secs(),
                cfg.connections
            );
            let round = opsloop_round(ctx, cfg, external, i).await?;
            round.print("opsloop", i);
            ops.push(round);
        }
        if which != Which::Opsloop {
            println!(
                "== {prom_version} remote write, run {} ({} s, {} connections)",
                i + 1,
                cfg.duration.as_secs(),
                cfg.connections
            );
            let round = prometheus_round(ctx, cfg, i).await?;
            round.print("prometheus", i);
            prom.push(round);
        }
    }
    println!("== ingest summary");
    let a = report_rounds(&mut ctx.table, "opsloop", &ops);
    let b = report_rounds(&mut ctx.table, "prometheus", &prom);
    if let (Some(a), Some(b)) = (a, b) {
        if b.points > 0 {
            ctx.table.add(
                "ingest ratio opsloop / prometheus (median samples/s)",
                format!("{:.2}×", a.points_per_sec() / b.points_per_sec()),
            );
        }
    }
    Ok(())
}

async fn run_startup_empty(ctx: &mut Ctx) -> Result<()> {
    println!("== startup on an empty data dir");
    let data = ctx.work.join("empty-data");
    let (mut p, t) = ctx.start_opsloop(&data, "opsloop-startup.log").await?;
    ctx.table.add(
        "opsloop: spawn to healthy (empty data dir)",
        format!("{:.1} ms", t.as_secs_f64() * 1000.0),
    );
    idle_rss(ctx, &p, "empty data dir").await;
    p.terminate(Duration::from_secs(30)).await?;
    Ok(())
}

/// VmRSS right after healthy and after one idle second.
async fn idle_rss(ctx: &mut Ctx, p: &Proc, what: &str) {
    let at_ready = procs::vm_rss_kib(p.pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(a), Some(b)) = (at_ready, procs::vm_rss_kib(p.pid())) {
        ctx.table.add(
            format!("opsloop: RSS idle after startup ({what})"),
            format!("{} (at healthy: {})", mib(b), mib(a)),
        );
    }
}

async fn run_query(ctx: &mut Ctx, opts: &QueryOpts) -> Result<()> {
    println!(
        "== GetMetricStatistics over {} datapoints in one series (24 h)",
        opts.points
    );
    let creds = bench_creds();
    let data = ctx.work.join("query-data");
    let (mut p, _) = ctx.start_opsloop(&data, "opsloop-query.log").await?;
    let loaded = query::load(p.addr, &creds, opts.points, opts.load_connections).await?;
    ctx.table.add(
        "query setup: load 1 series via PutMetricData",
        format!(
            "{} datapoints in {:.2} s ({}/s)",
            thousands(opts.points as f64),
            loaded.elapsed.as_secs_f64(),
            thousands(opts.points as f64 / loaded.elapsed.as_secs_f64())
        ),
    );
    query::verify(p.addr, &creds, &loaded)
        .await
        .context("read-back after load")?;
    let warmup = 5;
    let plain = query::measure(p.addr, &creds, loaded.start_s, false, warmup, opts.queries).await?;
    ctx.table.add(
        "GetMetricStatistics 24 h @ 60 s, 5 statistics: p50 / p99",
        format!(
            "{:.2} ms / {:.2} ms (mean {:.2} ms, n={})",
            plain.p50_ms, plain.p99_ms, plain.mean_ms, plain.n
        ),
    );
    let pct = query::measure(p.addr, &creds, loaded.start_s, true, warmup, opts.queries).await?;
    ctx.table.add(
        "GetMetricStatistics 24 h @ 60 s, p99: p50 / p99",
        format!(
            "{:.2} ms / {:.2} ms (mean {:.2} ms, n={})",
            pct.p50_ms, pct.p99_ms, pct.mean_ms, pct.n
        ),
    );

    // Crash, then restart on the same dir: recovery time.
    p.kill()?;
    let (mut p, t) = ctx
        .start_opsloop(&data, "opsloop-query-after-kill.log")
        .await?;
    ctx.table.add(
        format!(
            "opsloop: spawn to healthy after SIGKILL ({} points)",
            thousands(opts.points as f64)
        ),
        format!("{:.1} ms", t.as_secs_f64() * 1000.0),
    );
    query::verify(p.addr, &creds, &loaded)
        .await
        .context("read-back after SIGKILL and restart")?;
    let (clean, took) = p.terminate(Duration::from_secs(60)).await?;
    ctx.table.add(
        "opsloop: SIGTERM to exit (loaded)",
        format!(
            "{:.0} ms{}",
            took.as_secs_f64() * 1000.0,
            if clean { "" } else { " (timed out, killed)" }
        ),
    );

    // Clean restart on the full dir.
    let (mut p, t) = ctx
        .start_opsloop(&data, "opsloop-query-restart.log")
        .await?;
    ctx.table.add(
        format!(
            "opsloop: spawn to healthy after clean shutdown ({} points)",
            thousands(opts.points as f64)
        ),
        format!("{:.1} ms", t.as_secs_f64() * 1000.0),
    );
    idle_rss(
        ctx,
        &p,
        &format!("{} points", thousands(opts.points as f64)),
    )
    .await;
    query::verify(p.addr, &creds, &loaded)
        .await
        .context("read-back after clean restart")?;
    let again = query::measure(p.addr, &creds, loaded.start_s, false, warmup, opts.queries).await?;
    ctx.table.add(
        "GetMetricStatistics after restart, 5 statistics: p50 / p99",
        format!("{:.2} ms / {:.2} ms", again.p50_ms, again.p99_ms),
    );
    p.terminate(Duration::from_secs(60)).await?;
    let (apparent, allocated) = procs::dir_size(&data)?;
    ctx.table.add(
        "opsloop: data dir bytes per datapoint (1 series, after clean shutdown)",
        format!(
            "{:.2} ({:.1} MiB apparent, {:.1} MiB allocated)",
            apparent as f64 / opts.points as f64,
            apparent as f64 / (1 << 20) as f64,
            allocated as f64 / (1 << 20) as f64
        ),
    );
    Ok(())
}

async fn run_alarms(ctx: &mut Ctx, cfg: &AlarmsConfig) -> Result<()> {
    cfg.validate()?;
    println!(
        "== alarms: {} metric alarms (Maximum, period {} s, 1 evaluation period) -> SNS -> http webhook; \
         background load {} datapoints/s; {} breaches",
        cfg.alarms, cfg.period, thousands(cfg.load_rate as f64), cfg.breaches
    );
    let data = ctx.work.join("alarms-data");
    let (mut p, _) = ctx.start_opsloop(&data, "opsloop-alarms.log").await?;
    let r = alarms::run(p.addr, p.pid(), &bench_creds(), cfg).await?;
    let t = &mut ctx.table;
    t.add(
        format!(
            "alarms: PutMetricAlarm rate ({} alarms, 4 connections)",
            thousands(r.created as f64)
        ),
        format!(
            "{}/s in {:.2} s (request p50 {:.2} ms / p99 {:.2} ms)",
            thousands(r.created as f64 / r.create_elapsed.as_secs_f64()),
            r.create_elapsed.as_secs_f64(),
            r.create_p50_ms,
            r.create_p99_ms
        ),
    );
    t.add(
        "alarms: Subscribe to confirmed (SubscriptionConfirmation, GET SubscribeURL)",
        format!("{:.1} ms", r.confirm_ms),
    );
    t.add(
        format!(
            "alarms: load start to every alarm OK ({} INSUFFICIENT_DATA -> OK transitions)",
            thousands(r.created as f64)
        ),
        format!("{:.1} s", r.settle.as_secs_f64()),
    );
    t.add(
        "alarms: background load, acknowledged datapoints/s (failed requests, late sends)",
        format!(
            "{} ({}, {})",
            thousands(r.load_rate),
            r.load_failed,
            r.load_late
        ),
    );
    if let Some(e) = &r.load_first_error {
        t.add("alarms: background load first error", e.replace('|', "/"));
    }
    if let (Some(s), Some(m)) = (r.server_cores, r.machine_cores) {
        t.add(
            "alarms: server CPU during injections (cores of 2; whole machine busy)",
            format!("{s:.2} ({m:.2})"),
        );
    }
    let n = |v: &[f64]| v.len();
    t.add(
        format!(
            "alarms: breach to ALARM (StateUpdatedTimestamp) p50 / p99 / max (n={})",
            n(&r.to_alarm_ms)
        ),
        format!(
            "{:.1} ms / {:.1} ms / {:.1} ms",
            opsloop_bench::percentile(&r.to_alarm_ms, 0.5),
            opsloop_bench::percentile(&r.to_alarm_ms, 0.99),
            r.to_alarm_ms.last().copied().unwrap_or(0.0)
        ),
    );
    t.add(
        format!(
            "alarms: breach to SNS notification at webhook p50 / p99 / max (n={})",
            n(&r.to_delivery_ms)
        ),
        format!(
            "{:.1} ms / {:.1} ms / {:.1} ms",
            opsloop_bench::percentile(&r.to_delivery_ms, 0.5),
            opsloop_bench::percentile(&r.to_delivery_ms, 0.99),
            r.to_delivery_ms.last().copied().unwrap_or(0.0)
        ),
    );
    t.add(
        format!(
            "alarms: ALARM (StateUpdatedTimestamp) to webhook p50 / p99 / max (n={})",
            n(&r.alarm_to_delivery_ms)
        ),
        format!(
            "{:.1} ms / {:.1} ms / {:.1} ms",
            opsloop_bench::percentile(&r.alarm_to_delivery_ms, 0.5),
            opsloop_bench::percentile(&r.alarm_to_delivery_ms, 0.99),
            r.alarm_to_delivery_ms.last().copied().unwrap_or(0.0)
        ),
    );
    t.add(
        "alarms: injections without a notification within 10 s / unexpected webhook messages",
        format!(
            "{} of {}{} / {}",
            r.missed.len(),
            r.injected,
            r.missed
                .first()
                .map(|m| format!(" (first: {m})"))
                .unwrap_or_default(),
            r.unexpected
        ),
    );
    if !r.tick_cpu_s.is_empty() {
        let mut per: Vec<f64> = r
            .tick_cpu_s
            .iter()
            .map(|s| s * 1e6 / cfg.alarms as f64)
            .collect();
        let each: Vec<String> = per.iter().map(|u| format!("{u:.1}")).collect();
        per.sort_by(f64::total_cmp);
        t.add(
            format!(
                "alarms: server CPU per alarm evaluation on a clock tick, load stopped (median of {} ticks)",
                per.len()
            ),
            format!(
                "{:.1} µs (ticks: {} µs; /proc/<pid>/stat resolution {:.0} ms per tick = {:.1} µs/alarm)",
                per[per.len() / 2],
                each.join(", "),
                1000.0 / r.clk_tck as f64,
                1e6 / r.clk_tck as f64 / cfg.alarms as f64
            ),
        );
    }
    p.terminate(Duration::from_secs(60)).await?;
    if !ctx.keep {
        std::fs::remove_dir_all(&data)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let work = match &cli.common.work_dir {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("opsloop-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let needs_server = !matches!(
        &cli.cmd,
        Cmd::Ingest {
            target: Which::Prometheus,
            ..
        } | Cmd::Ingest {
            opsloop_addr: Some(_),
            ..
        }
    );
    let server_bin = match procs::find_binary(cli.common.server_bin.as_deref(), "opsloop") {
        Ok(b) => b,
        Err(e) if needs_server => {
            return Err(e.context("build it with `cargo build --release -p opsloop`"))
        }
        Err(_) => PathBuf::new(),
    };
    let prometheus_bin =
        procs::find_binary(cli.common.prometheus_bin.as_deref(), "prometheus").ok();
    let mut ctx = Ctx {
        work: work.clone(),
        server_bin,
        prometheus_bin,
        table: Table::default(),
        keep: cli.common.keep,
    };
    println!("machine: {}", machine_description());
    // Other work on the machine skews every number: show how busy it was when the run began.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start (1/5/15 min): {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("opsloop binary: {}", ctx.server_bin().display());
    println!("scratch dir: {}", work.display());

    let outcome: Result<()> = async {
        match &cli.cmd {
            Cmd::Ingest {
                opts,
                target,
                opsloop_addr,
            } => {
                let cfg = opts.config();
                cfg.validate()?;
                print_workload(&cfg);
                run_ingest(&mut ctx, &cfg, *target, *opsloop_addr, opts.rounds).await?;
            }
            Cmd::Query { opts } => run_query(&mut ctx, opts).await?,
            Cmd::Startup => run_startup_empty(&mut ctx).await?,
            Cmd::Alarms { opts } => run_alarms(&mut ctx, &opts.config()).await?,
            Cmd::All {
                ingest,
                query,
                alarms,
            } => {
                let cfg = ingest.config();
                cfg.validate()?;
                alarms.config().validate()?;
                print_workload(&cfg);
                run_startup_empty(&mut ctx).await?;
                run_ingest(&mut ctx, &cfg, Which::Both, None, ingest.rounds).await?;
                run_query(&mut ctx, query).await?;
                run_alarms(&mut ctx, &alarms.config()).await?;
            }
        }
        Ok(())
    }
    .await;
    ctx.table.print();
    match outcome {
        Ok(()) => {
            if !cli.common.keep && cli.common.work_dir.is_none() {
                let _ = std::fs::remove_dir_all(&work);
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("benchmark failed; logs and data kept in {}", work.display());
            Err(e)
        }
    }
}

fn print_workload(cfg: &IngestConfig) {
    println!(
        "workload: {} series, {} datums × {} values = {} samples per request, {} connections, {} s per target",
        cfg.series,
        cfg.datums_per_request,
        cfg.values_per_datum,
        cfg.points_per_request(),
        cfg.connections,
        cfg.duration.as_secs()
    );
}
