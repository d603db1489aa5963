//! EventBridge end-to-end benchmark: starts `opsloop server`, puts `--rules` rules on the default bus
//! (rule i: `{"source": ["bench.orders"], "detail-type": ["Order Placed"], "detail": {"shard": [i]}}`,
//! one target each: an SNS topic without subscriptions, so delivery costs EventBridge's work and an
//! in-process Publish but no network), then drives PutEvents (awsJson 1.1, SigV4, batches of 10
//! entries, `--connections` keep-alive connections) for `--seconds`. Every event matches exactly
//! one rule (its shard), so each accepted event is written to the outbox (group commit) and
//! delivered. Reports accepted events/s, request latency percentiles and the server's CPU time
//! (in cores and per accepted event).
//!
//! The client shares the machine with the server, so it is kept cheap (see `raw`): one thread, each
//! connection cycles through 32 pre-built bodies sent as pre-signed raw HTTP/1.1 bytes (re-signed
//! every minute), answers framed by Content-Length and checked (200, `FailedEntryCount`). It reports
//! its own CPU per request, and the server's CPU per thread name (`threads`). `--floor` sends a trivial signed `ListEventBuses` instead, the cost of
//! HTTP + SigV4 + routing alone; `--depth N` pipelines N requests per connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::Parser;
use opsloop_bench::awsclient::{Creds, HttpConn};
use opsloop_bench::procs::{self, BENCH_ACCOUNT, BENCH_AKID, BENCH_SECRET};
use opsloop_bench::{percentile, Rng};
use serde_json::json;

mod raw;
mod threads;

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
    /// Measure the floor instead: the same client sending a trivial signed request
    /// (`ListEventBuses`), so the cost of HTTP + SigV4 + routing alone is known.
    #[arg(long)]
    floor: bool,
    /// Requests outstanding per connection (HTTP/1.1 pipelining when above 1).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// With `--addr`: the server's process id, to report its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
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

/// State shared by the connections and the main task.
pub struct Shared {
    pub measuring: AtomicBool,
    pub stop: AtomicBool,
    /// Accepted events (PutEvents) or answered requests (`--floor`) while measuring.
    pub events: AtomicU64,
}

/// Distinct request bodies each connection cycles through (their shards are random).
const BODIES_PER_CONNECTION: usize = 32;

/// The requests one connection cycles through.
fn requests(host: &str, args: &Args, id: u64) -> Result<raw::Requests> {
    if args.floor {
        return raw::Requests::new(
            host,
            "AWSEvents.ListEventBuses",
            REGION,
            vec![br#"{"Limit":1}"#.to_vec()],
        );
    }
    let mut rng = Rng::new(0x5eed ^ id);
    let base = id << 32;
    let bodies = (0..BODIES_PER_CONNECTION as u64)
        .map(|i| batch_body(&mut rng, args.rules, base + i, args.unmatched))
        .collect();
    raw::Requests::new(host, "AWSEvents.PutEvents", REGION, bodies)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.depth == 0 {
        bail!("--depth must be at least 1");
    }
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
            server = Some((p, dir));
            a
        }
    };
    let server_pid = server.as_ref().map(|(p, _)| p.pid()).or(args.server_pid);
    if !args.floor {
        let t = Instant::now();
        setup(addr, args.rules).await?;
        eprintln!(
            "setup: {} rules in {:.1} s",
            args.rules,
            t.elapsed().as_secs_f64()
        );
    }

    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        events: AtomicU64::new(0),
    });
    let (check, per_request) = if args.floor {
        (raw::Check::Ok200, 1)
    } else {
        (raw::Check::PutEvents, 10)
    };
    let host = addr.to_string();
    let mut tasks = Vec::new();
    for i in 0..args.connections {
        let reqs = requests(&host, &args, i as u64)?;
        let shared = shared.clone();
        let depth = args.depth;
        tasks.push(tokio::spawn(async move {
            raw::drive(addr, reqs, depth, check, per_request, &shared).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let me = std::process::id();
    let cpu0 = server_pid.and_then(procs::cpu_seconds);
    let threads0 = server_pid.map(threads::cpu_by_name);
    let own0 = procs::cpu_seconds(me);
    let busy0 = procs::machine_busy_seconds();
    shared.measuring.store(true, Ordering::SeqCst);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = server_pid.and_then(procs::cpu_seconds);
    let threads1 = server_pid.map(threads::cpu_by_name);
    let own1 = procs::cpu_seconds(me);
    let busy1 = procs::machine_busy_seconds();
    shared.stop.store(true, Ordering::SeqCst);
    let mut lat = Vec::new();
    let mut requests_n = 0u64;
    let mut failed = 0u64;
    for t in tasks {
        let tally = t.await??;
        requests_n += tally.requests;
        failed += tally.failed_entries;
        lat.extend(tally.latencies_ms);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = shared.events.load(Ordering::Relaxed);
    let what = if args.floor {
        "floor: ListEventBuses (HTTP + SigV4 + routing only)"
    } else if args.unmatched {
        "PutEvents, 10 entries, events matching no rule"
    } else {
        "PutEvents, 10 entries, events matching one rule each"
    };
    println!(
        "{what}; rules: {}, connections: {}, pipelining depth: {}, measured: {:.1} s",
        args.rules, args.connections, args.depth, elapsed
    );
    println!(
        "requests/s: {:.0}; accepted events/s: {:.0} (failed entries: {failed})",
        requests_n as f64 / elapsed,
        if args.floor { 0.0 } else { n as f64 / elapsed },
    );
    println!(
        "latency ms: p50 {:.2}, p99 {:.2}, max {:.2} ({} requests)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0),
        lat.len()
    );
    let per = |cpu: f64, k: u64| if k > 0 { cpu / k as f64 * 1e6 } else { 0.0 };
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let unit = if args.floor {
            "request"
        } else {
            "accepted event"
        };
        println!(
            "server CPU: {:.2} cores, {:.1} µs per {unit}, {:.1} µs per request",
            (b - a) / elapsed,
            per(b - a, n),
            per(b - a, requests_n)
        );
    }
    if let (Some(a), Some(b)) = (&threads0, &threads1) {
        let unit = if args.floor { "request" } else { "event" };
        let units = if args.floor { requests_n } else { n };
        println!(
            "server CPU by thread, µs per {unit}: {}",
            threads::report(a, b, units)
        );
    }
    if let (Some(a), Some(b)) = (own0, own1) {
        println!(
            "client CPU: {:.2} cores, {:.1} µs per request",
            (b - a) / elapsed,
            per(b - a, requests_n)
        );
    }
    if let (Some(a), Some(b)) = (busy0, busy1) {
        println!(
            "machine busy: {:.2} cores (all processes)",
            (b - a) / elapsed
        );
    }
    if let Some((mut p, dir)) = server {
        let _ = p.terminate(Duration::from_secs(10)).await;
        if args.data_dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(())
}
