//! EventBridge end-to-end benchmark: starts `opsloop server`, puts `--rules` rules on the default bus
//! (rule i: `{"source": ["bench.orders"], "detail-type": ["Order Placed"], "detail": {"shard": [i]}}`,
//! one target each: an SNS topic without subscriptions, so delivery costs EventBridge's work and an
//! in-process Publish but no network), then drives PutEvents (awsJson 1.1, SigV4, batches of 10
//! entries, `--connections` keep-alive connections) for `--seconds`. Every event matches exactly
//! one rule (its shard), so each accepted event is written to the outbox (group commit) and
//! delivered. Reports accepted events/s, request latency percentiles and the server's CPU time
//! (in cores and per accepted event).
//!
//! The client shares the machine with the server, so it is kept cheap: each connection cycles
//! through 32 pre-built request bodies and reuses each one's SigV4-signed request for a minute
//! (well inside SigV4's 15-minute clock-skew window) instead of hashing and signing every request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use opsloop_bench::awsclient::{Creds, HttpConn};
use opsloop_bench::procs::{self, BENCH_ACCOUNT, BENCH_AKID, BENCH_SECRET};
use opsloop_bench::{percentile, Rng};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "PutEvents throughput with many rules on the bus")]
struct Args {
    /// The opsloop binary (default: next to this one, or on PATH).
    #[arg(long)]
    opsloop: Option<PathBuf>,
    /// Use an already running server at this address instead of starting one.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Rules on the default bus.
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Data directory of the started server (default: a fresh one under /tmp).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Send events that match no rule (the same patterns are evaluated, nothing is written to
    /// the outbox or delivered): isolates the cost of accepting and matching.
    #[arg(long)]
    unmatched: bool,
}

const REGION: &str = "us-east-1";

fn creds() -> Creds {
    Creds {
        access_key_id: BENCH_AKID.into(),
        secret_access_key: BENCH_SECRET.into(),
        region: REGION.into(),
    }
}

/// A signed awsJson 1.1 EventBridge request.
fn events_request(host: &str, op: &str, body: Vec<u8>) -> Result<http::Request<Bytes>> {
    let c = creds();
    let body = Bytes::from(body);
    let mut req = http::Request::post("/")
        .header(http::header::HOST, host)
        .header("x-amz-target", format!("AWSEvents.{op}"))
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)?;
    opsloop_wire::sigv4::sign(
        &mut req,
        &c.access_key_id,
        &c.secret_access_key,
        &c.region,
        "events",
        SystemTime::now(),
    );
    Ok(req)
}

/// A signed awsQuery SNS request.
fn sns_request(host: &str, form: &str) -> Result<http::Request<Bytes>> {
    let c = creds();
    let body = Bytes::from(form.to_string());
    let mut req = http::Request::post("/")
        .header(http::header::HOST, host)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)?;
    opsloop_wire::sigv4::sign(
        &mut req,
        &c.access_key_id,
        &c.secret_access_key,
        &c.region,
        "sns",
        SystemTime::now(),
    );
    Ok(req)
}

async fn call(conn: &mut HttpConn, op: &str, doc: serde_json::Value) -> Result<Bytes> {
    let req = events_request(&conn.host.clone(), op, serde_json::to_vec(&doc)?)?;
    let (status, body) = conn.send(req).await?;
    if status != 200 {
        bail!("{op} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

async fn setup(addr: SocketAddr, rules: usize) -> Result<()> {
    let mut conn = HttpConn::connect(addr).await?;
    let host = conn.host.clone();
    let (status, body) = conn
        .send(sns_request(
            &host,
            "Action=CreateTopic&Version=2010-03-31&Name=bench-events",
        )?)
        .await?;
    if status != 200 {
        bail!(
            "CreateTopic answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let topic = format!("arn:aws:sns:{REGION}:{BENCH_ACCOUNT}:bench-events");
    for i in 0..rules {
        let name = format!("bench-{i:05}");
        let pattern = json!({"source": ["bench.orders"], "detail-type": ["Order Placed"], "detail": {"shard": [i]}});
        call(
            &mut conn,
            "PutRule",
            json!({"Name": name, "EventPattern": pattern.to_string()}),
        )
        .await?;
        call(
            &mut conn,
            "PutTargets",
            json!({"Rule": name, "Targets": [{"Id": "sns", "Arn": topic}]}),
        )
        .await?;
    }
    Ok(())
}

fn batch_body(rng: &mut Rng, rules: usize, seq: u64, unmatched: bool) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = (0..10u64)
        .map(|j| {
            let offset = if unmatched { rules } else { 0 };
            let shard = offset + (rng.next_u64() % rules as u64) as usize;
            let detail = json!({"shard": shard, "order": seq * 10 + j, "amount": 42.5, "currency": "EUR", "customer": {"id": "c-123", "tier": "gold"}});
            json!({"Source": "bench.orders", "DetailType": "Order Placed", "Detail": detail.to_string(), "Resources": ["arn:aws:bench:::order"]})
        })
        .collect();
    serde_json::to_vec(&json!({"Entries": entries})).unwrap_or_default()
}

struct Shared {
    measuring: AtomicBool,
    stop: AtomicBool,
    events: AtomicU64,
    failed: AtomicU64,
}

/// Distinct request bodies each connection cycles through (their shards are random).
const BODIES_PER_CONNECTION: usize = 32;
/// How long a signed request is reused: SigV4 allows 15 minutes of clock skew; re-signing every
/// minute keeps the client's CPU (it shares the machine with the server) on sending, not hashing.
const RESIGN_EVERY: Duration = Duration::from_secs(60);

async fn worker(
    addr: SocketAddr,
    rules: usize,
    unmatched: bool,
    id: u64,
    shared: Arc<Shared>,
) -> Result<Vec<f64>> {
    let mut conn = HttpConn::connect(addr).await?;
    let host = conn.host.clone();
    let mut rng = Rng::new(0x5eed ^ id);
    let mut lat = Vec::new();
    let base = id << 32;
    let bodies: Vec<Vec<u8>> = (0..BODIES_PER_CONNECTION as u64)
        .map(|i| batch_body(&mut rng, rules, base + i, unmatched))
        .collect();
    let mut signed: Vec<Option<(Instant, http::Request<Bytes>)>> = vec![None; bodies.len()];
    let mut next = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        let i = next % bodies.len();
        next += 1;
        let req = match &signed[i] {
            Some((at, req)) if at.elapsed() < RESIGN_EVERY => req.clone(),
            _ => {
                let req = events_request(&host, "PutEvents", bodies[i].clone())?;
                signed[i] = Some((Instant::now(), req.clone()));
                req
            }
        };
        let t = Instant::now();
        let (status, body) = conn.send(req).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if status != 200 {
            bail!(
                "PutEvents answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let failed = failed_entries(&body)?;
        if shared.measuring.load(Ordering::Relaxed) {
            shared.events.fetch_add(10 - failed, Ordering::Relaxed);
            shared.failed.fetch_add(failed, Ordering::Relaxed);
            lat.push(ms);
        }
    }
    Ok(lat)
}

/// `FailedEntryCount` of a PutEvents answer, read without decoding the whole answer when it is 0.
fn failed_entries(body: &[u8]) -> Result<u64> {
    const NONE_FAILED: &[u8] = b"\"FailedEntryCount\":0";
    if body.windows(NONE_FAILED.len()).any(|w| w == NONE_FAILED)
        && !body
            .windows(NONE_FAILED.len() + 1)
            .any(|w| w.starts_with(NONE_FAILED) && w[NONE_FAILED.len()].is_ascii_digit())
    {
        return Ok(0);
    }
    let v: serde_json::Value = serde_json::from_slice(body).context("PutEvents answer")?;
    Ok(v["FailedEntryCount"].as_u64().unwrap_or(10))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut server = None;
    let addr = match args.addr {
        Some(a) => a,
        None => {
            let bin = procs::find_binary(args.opsloop.as_deref(), "opsloop")?;
            let dir = args.data_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("opsloop-bench-events-{}", std::process::id()))
            });
            let _ = std::fs::remove_dir_all(&dir);
            let mut p = procs::spawn_opsloop(&bin, &dir.join("data"), &dir.join("opsloop.log"))?;
            p.wait_ready("/_opsloop/health", Duration::from_secs(30))
                .await?;
            let a = p.addr;
            server = Some(p);
            a
        }
    };
    let t = Instant::now();
    setup(addr, args.rules).await?;
    eprintln!(
        "setup: {} rules in {:.1} s",
        args.rules,
        t.elapsed().as_secs_f64()
    );

    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        events: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for i in 0..args.connections {
        tasks.push(tokio::spawn(worker(
            addr,
            args.rules,
            args.unmatched,
            i as u64,
            shared.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu0 = server.as_ref().and_then(|p| procs::cpu_seconds(p.pid()));
    let busy0 = procs::machine_busy_seconds();
    shared.measuring.store(true, Ordering::SeqCst);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = server.as_ref().and_then(|p| procs::cpu_seconds(p.pid()));
    let busy1 = procs::machine_busy_seconds();
    shared.stop.store(true, Ordering::SeqCst);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = shared.events.load(Ordering::Relaxed);
    println!(
        "rules: {}, connections: {}, batch: 10 entries, events {}, measured: {:.1} s",
        args.rules,
        args.connections,
        if args.unmatched {
            "matching no rule"
        } else {
            "matching one rule each"
        },
        elapsed
    );
    println!(
        "accepted events/s: {:.0} (failed entries: {})",
        n as f64 / elapsed,
        shared.failed.load(Ordering::Relaxed)
    );
    println!(
        "PutEvents latency ms: p50 {:.2}, p99 {:.2}, max {:.2} ({} requests)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0),
        lat.len()
    );
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let per_event = if n > 0 { (b - a) / n as f64 * 1e6 } else { 0.0 };
        println!(
            "server CPU: {:.2} cores, {:.1} µs per accepted event",
            (b - a) / elapsed,
            per_event
        );
    }
    if let (Some(a), Some(b)) = (busy0, busy1) {
        println!(
            "machine busy: {:.2} cores (all processes)",
            (b - a) / elapsed
        );
    }
    if let Some(mut p) = server {
        let _ = p.terminate(Duration::from_secs(10)).await;
    }
    Ok(())
}
