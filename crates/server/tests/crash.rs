//! Crash durability: every PutMetricData the server acknowledged survives a SIGKILL mid-ingest.
//!
//! The test spawns the real `opsloop` binary on a free loopback port with a temp data dir, runs
//! signed PutMetricData (RPC v2 CBOR) from several tasks, each owning its own series and counting
//! per series how many values it sent (`attempted`) and how many the server acknowledged with a 200
//! (`acked`). It SIGKILLs the server mid-ingest, restarts it on the same dir, waits for health, and
//! checks with GetMetricStatistics (SampleCount over the whole range) that each series holds at
//! least `acked` and at most `attempted` values. Two crash rounds run on the same dir, so recovery of
//! an already-recovered store is covered too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

// The CBOR/SigV4 client shared with the bench crate (crates/server cannot depend on it).
#[allow(dead_code)]
#[path = "../../../bench/src/awsclient.rs"]
mod awsclient;

use awsclient::{error_summary, Creds, CwClient, PutMetricData, StatsQuery};

const AKID: &str = "AKIAOPSLOOPCRASHTEST";
const SECRET: &str = "crash-test-secret-key";
const ACCOUNT: &str = "123456789012";
const NAMESPACE: &str = "Crash/Test";
const METRIC: &str = "Ingested";
const WRITERS: usize = 4;
const SERIES_PER_WRITER: usize = 8;

fn creds() -> Creds {
    Creds {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        region: "us-east-1".into(),
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The server process; SIGKILLed on drop so a failing test leaves nothing behind.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Server {
    fn spawn(data: &Path, log: std::path::PathBuf) -> Result<Server> {
        let addr = awsclient::free_loopback_addr()?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_opsloop"))
            .arg("server")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data)
            .env("OPSLOOP_ACCESS_KEY_ID", AKID)
            .env("OPSLOOP_SECRET_ACCESS_KEY", SECRET)
            .env("OPSLOOP_ACCOUNT_ID", ACCOUNT)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawn opsloop")?;
        Ok(Server { child, addr, log })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Wait (bounded) for `GET /_opsloop/health` to answer 200.
    async fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if awsclient::health_ok(self.addr, Duration::from_secs(2)).await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "server exited with {status} before becoming healthy; log:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "server not healthy within {within:?}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Per series (writer, slot): values sent and values acknowledged.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    attempted: u64,
    acked: u64,
}

type Tallies = BTreeMap<(usize, usize), Tally>;

/// One writer: requests of one datum per owned series, each with 1..=20 values, until `stop` or the
/// connection dies. Returns its tallies (added to `acked_requests` as it goes).
async fn writer(
    addr: SocketAddr,
    w: usize,
    round: u64,
    stop: Arc<AtomicBool>,
    acked_requests: Arc<AtomicU64>,
    hard_deadline: Instant,
) -> (Tallies, Option<String>) {
    let mut tallies: Tallies = (0..SERIES_PER_WRITER)
        .map(|s| ((w, s), Tally::default()))
        .collect();
    let mut client = match CwClient::connect(addr, creds()).await {
        Ok(c) => c,
        Err(e) => return (tallies, Some(format!("connect: {e:#}"))),
    };
    let mut seq: u64 = round * 1_000_000;
    let mut last_error = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < hard_deadline {
        seq += 1;
        let ts = now_s();
        let mut body = PutMetricData::new(NAMESPACE, SERIES_PER_WRITER, 4096);
        let mut sizes = [0u64; SERIES_PER_WRITER];
        for (s, size) in sizes.iter_mut().enumerate() {
            let n = 1 + (seq * 7 + s as u64 * 13 + w as u64) % 20;
            *size = n;
            let values: Vec<f64> = (0..n)
                .map(|i| (seq % 1000) as f64 + i as f64 / 32.0)
                .collect();
            let (ws, ss) = (w.to_string(), s.to_string());
            body.datum(
                METRIC,
                &[("Slot", ss.as_str()), ("Writer", ws.as_str())],
                ts,
                &values,
                None,
            );
        }
        for (s, size) in sizes.iter().enumerate() {
            tallies.get_mut(&(w, s)).unwrap().attempted += size;
        }
        match client.call("PutMetricData", body.finish()).await {
            Ok((200, _)) => {
                for (s, size) in sizes.iter().enumerate() {
                    tallies.get_mut(&(w, s)).unwrap().acked += size;
                }
                acked_requests.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, body)) => {
                // Not acknowledged; keep going (it counts as attempted only).
                last_error = Some(error_summary(status, &body));
            }
            Err(e) => {
                // The server is gone (killed): stop.
                last_error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    (tallies, last_error)
}

/// Ingest until at least `min_acked` requests are acknowledged and `min_time` has passed, then
/// SIGKILL the server while the writers are still sending. Returns the tallies of this round.
async fn ingest_and_kill(
    server: &mut Server,
    round: u64,
    min_acked: u64,
    min_time: Duration,
) -> Result<Tallies> {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let hard_deadline = Instant::now() + Duration::from_secs(60);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(writer(
                server.addr,
                w,
                round,
                stop.clone(),
                acked.clone(),
                hard_deadline,
            ))
        })
        .collect();
    let started = Instant::now();
    loop {
        if acked.load(Ordering::Relaxed) >= min_acked && started.elapsed() >= min_time {
            break;
        }
        if Instant::now() > hard_deadline || tasks.iter().all(|t| t.is_finished()) {
            stop.store(true, Ordering::Relaxed);
            let mut errors = Vec::new();
            for t in tasks {
                errors.extend(t.await?.1);
            }
            bail!(
                "round {round}: only {} requests acknowledged; errors: {errors:?}; log:\n{}",
                acked.load(Ordering::Relaxed),
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Mid-ingest: the writers are still sending.
    server.sigkill();
    stop.store(true, Ordering::Relaxed);
    let mut all = Tallies::new();
    for t in tasks {
        let (tallies, _) = t.await?;
        all.extend(tallies);
    }
    Ok(all)
}

/// SampleCount of one series over `[from, to)`, summed over 60-second periods.
async fn stored_count(
    client: &mut CwClient,
    w: usize,
    s: usize,
    from: i64,
    to: i64,
) -> Result<f64> {
    let (ws, ss) = (w.to_string(), s.to_string());
    let dims = [("Slot", ss.as_str()), ("Writer", ws.as_str())];
    let q = StatsQuery {
        namespace: NAMESPACE,
        metric_name: METRIC,
        dimensions: &dims,
        start_s: from,
        end_s: to,
        period_s: 60,
        statistics: &["SampleCount"],
        extended_statistics: &[],
    };
    let points = client.get_metric_statistics(&q).await?;
    Ok(points.iter().filter_map(|p| p.sample_count).sum())
}

async fn check(server: &Server, totals: &Tallies, from: i64) -> Result<()> {
    let to = (now_s() + 120) / 60 * 60;
    let mut client = CwClient::connect(server.addr, creds()).await?;
    let mut failures = Vec::new();
    for (&(w, s), t) in totals {
        let stored = stored_count(&mut client, w, s, from, to).await?;
        if stored < t.acked as f64 || stored > t.attempted as f64 {
            failures.push(format!(
                "series w{w}/s{s}: stored {stored}, acked {}, attempted {}",
                t.acked, t.attempted
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "acknowledged data lost or duplicated:\n{}",
            failures.join("\n")
        );
    }
    Ok(())
}

fn merge(into: &mut Tallies, round: Tallies) {
    for (k, t) in round {
        let e = into.entry(k).or_default();
        e.attempted += t.attempted;
        e.acked += t.acked;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_datapoints_survive_sigkill() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let log = dir.path().join("server.log");
    let from = (now_s() - 120) / 60 * 60;
    let mut totals = Tallies::new();

    for round in 0..2u64 {
        let mut server = Server::spawn(&data, log.clone())?;
        server.wait_healthy(Duration::from_secs(60)).await?;
        let tallies = ingest_and_kill(&mut server, round, 20, Duration::from_millis(1500)).await?;
        let acked: u64 = tallies.values().map(|t| t.acked).sum();
        let attempted: u64 = tallies.values().map(|t| t.attempted).sum();
        assert!(acked > 0, "round {round}: nothing acknowledged");
        eprintln!(
            "round {round}: SIGKILL with {acked} values acknowledged, {} in flight",
            attempted - acked
        );
        merge(&mut totals, tallies);

        let mut restarted = Server::spawn(&data, log.clone())?;
        restarted.wait_healthy(Duration::from_secs(60)).await?;
        check(&restarted, &totals, from)
            .await
            .with_context(|| format!("after crash round {round}"))?;
        restarted.sigkill();
    }
    Ok(())
}
