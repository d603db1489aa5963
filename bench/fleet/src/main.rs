//! Run Command fleet benchmark: one `opsloop server` and `--nodes` simulated managed nodes.
//!
//! Each node registers through a real hybrid activation (`CreateActivation`, then the agent
//! protocol's `RegisterManagedInstance` with `opsloop_agent::register_or_load`, its own state
//! directory and its own key pair), sends a heartbeat, then long-polls `GetMessages` with its own
//! credentials. A delivered command is "run" in process (no shell is spawned: the bench measures
//! the server) and answered with one final `SendReply` carrying its output and per-step result.
//!
//! Measured: the server's RSS idle with 0 nodes and with every node long-polling (memory per
//! node); `--rounds` sequential `SendCommand`s by tag to the whole fleet (latency from the
//! SendCommand request to the server acknowledging the last node's final reply, p50/p99); then
//! `--in-flight` concurrent senders for `--seconds` (invocations completed per second). The last
//! command's ListCommands row is checked (Success, CompletedCount = nodes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use opsloop_agent::client::{AgentClient, Key};
use opsloop_agent::state::StateDir;
use opsloop_bench::awsclient::HttpConn;
use opsloop_bench::percentile;
use opsloop_bench::procs::{self, BENCH_AKID, BENCH_SECRET};
use serde_json::{json, Value};
use tokio::sync::oneshot;

#[derive(Parser, Debug)]
#[command(about = "Run Command with a fleet of simulated managed nodes")]
struct Args {
    /// The opsloop binary (default: next to this one, or on PATH).
    #[arg(long)]
    opsloop: Option<PathBuf>,
    /// Simulated managed nodes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Sequential SendCommands to the whole fleet for the latency figures.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
    /// Concurrent senders in the throughput phase.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Seconds of the throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Working directory (server data, node state dirs); default a fresh one under /tmp, removed
    /// at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
}

const REGION: &str = "us-east-1";

/// A signed awsJson 1.1 request of the SSM API.
fn ssm_request(host: &str, op: &str, doc: &Value) -> Result<http::Request<Bytes>> {
    let body = Bytes::from(serde_json::to_vec(doc)?);
    let mut req = http::Request::post("/")
        .header(http::header::HOST, host)
        .header("x-amz-target", format!("AmazonSSM.{op}"))
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)?;
    opsloop_wire::sigv4::sign(
        &mut req,
        BENCH_AKID,
        BENCH_SECRET,
        REGION,
        "ssm",
        SystemTime::now(),
    );
    Ok(req)
}

async fn ssm(conn: &mut HttpConn, op: &str, doc: Value) -> Result<Value> {
    let req = ssm_request(&conn.host.clone(), op, &doc)?;
    let (status, body) = conn.send(req).await?;
    if status != 200 {
        bail!("{op} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Completions per command: how many nodes answered, when the last did, and who waits.
#[derive(Default)]
struct Entry {
    done: usize,
    last: Option<Instant>,
    waiter: Option<oneshot::Sender<Instant>>,
}

struct Tracker {
    nodes: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Tracker {
    /// A node's final reply for `command` was acknowledged at `at`.
    fn completed(&self, command: &str, at: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.entry(command.to_string()).or_default();
        e.done += 1;
        e.last = Some(at);
        if e.done == self.nodes {
            if let Some(w) = e.waiter.take() {
                let _ = w.send(at);
                map.remove(command);
            }
        }
    }

    /// Resolves when every node answered `command`.
    async fn wait(&self, command: &str) -> Result<Instant> {
        let rx = {
            let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let e = map.entry(command.to_string()).or_default();
            if e.done == self.nodes {
                let at = e.last.unwrap_or_else(Instant::now);
                map.remove(command);
                return Ok(at);
            }
            let (tx, rx) = oneshot::channel();
            e.waiter = Some(tx);
            rx
        };
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .with_context(|| format!("command {command}: not every node answered within 60 s"))?
            .context("tracker dropped")
    }
}

/// One simulated node: long-poll, answer each command with a final reply.
async fn node(
    client: AgentClient,
    key: Key,
    id: String,
    tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    client
        .call(
            &key,
            "UpdateInstanceInformation",
            &json!({"InstanceId": id, "AgentStatus": "Active", "PlatformType": "Linux",
                    "PlatformName": "bench", "AgentVersion": "bench", "ComputerName": id}),
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| anyhow::anyhow!("heartbeat of {id}: {e}"))?;
    while !stop.load(Ordering::Relaxed) {
        let got = client
            .call(
                &key,
                "GetMessages",
                &json!({"InstanceId": id, "WaitSeconds": 20}),
                Duration::from_secs(30),
            )
            .await;
        let msgs = match got {
            Ok(v) => v["Messages"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    eprintln!("{id}: GetMessages failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                continue;
            }
        };
        for m in msgs {
            let command = m["CommandId"].as_str().unwrap_or("").to_string();
            let started = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let out = format!("hello from {id}\n");
            let reply = json!({
                "InstanceId": id, "CommandId": command, "PluginName": "runShellScript",
                "StandardOutput": out, "Final": true, "Status": "Success",
                "StatusDetails": "Success", "ResponseCode": 0,
                "PluginResults": [{"Name": "runShellScript", "Status": "Success",
                    "StatusDetails": "Success", "ResponseCode": 0, "StandardOutput": out,
                    "StartDateTime": started, "EndDateTime": started}],
            });
            client
                .call(&key, "SendReply", &reply, Duration::from_secs(30))
                .await
                .map_err(|e| anyhow::anyhow!("SendReply of {id}: {e}"))?;
            tracker.completed(&command, Instant::now());
        }
    }
    Ok(())
}

/// SendCommand to the whole fleet by tag; returns (command id, request start).
async fn send(conn: &mut HttpConn) -> Result<(String, Instant)> {
    let t0 = Instant::now();
    let out = ssm(
        conn,
        "SendCommand",
        json!({"DocumentName": "AWS-RunShellScript",
               "Targets": [{"Key": "tag:fleet", "Values": ["bench"]}],
               "Parameters": {"commands": ["echo hello"]}, "MaxConcurrency": "100%"}),
    )
    .await?;
    let id = out["Command"]["CommandId"]
        .as_str()
        .context("SendCommand returned no CommandId")?
        .to_string();
    Ok((id, t0))
}

async fn settle_rss(pid: u32) -> u64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    procs::vm_rss_kib(pid).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bin = procs::find_binary(args.opsloop.as_deref(), "opsloop")?;
    let (dir, remove) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("opsloop-bench-fleet-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let result = run(&args, &bin, &dir).await;
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run(args: &Args, bin: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let mut server = procs::spawn_opsloop(bin, &dir.join("data"), &dir.join("opsloop.log"))?;
    server
        .wait_ready("/_opsloop/health", Duration::from_secs(30))
        .await?;
    let addr: SocketAddr = server.addr;
    let pid = server.pid();
    let outcome = measure(args, addr, pid, dir).await;
    let _ = server.terminate(Duration::from_secs(10)).await;
    if outcome.is_err() {
        eprintln!("server log tail:\n{}", server.tail_log());
    }
    outcome
}

async fn measure(args: &Args, addr: SocketAddr, pid: u32, dir: &std::path::Path) -> Result<()> {
    let n = args.nodes;
    let mut conn = HttpConn::connect(addr).await?;
    // Warm the SSM service (first request opens its tables) before the idle reading.
    ssm(&mut conn, "DescribeInstanceInformation", json!({})).await?;
    let rss0 = settle_rss(pid).await;

    let act = ssm(
        &mut conn,
        "CreateActivation",
        json!({"IamRole": "SSMServiceRole", "RegistrationLimit": n, "DefaultInstanceName": "bench-node",
               "Tags": [{"Key": "fleet", "Value": "bench"}]}),
    )
    .await?;
    let (act_id, act_code) = (
        act["ActivationId"]
            .as_str()
            .context("ActivationId")?
            .to_string(),
        act["ActivationCode"]
            .as_str()
            .context("ActivationCode")?
            .to_string(),
    );
    let endpoint = format!("http://{addr}");
    let reg_start = Instant::now();
    let mut regs = Vec::new();
    for i in 0..n {
        let mut opts =
            opsloop_agent::Options::new(&endpoint, REGION, dir.join(format!("node-{i:03}")));
        opts.activation_id = Some(act_id.clone());
        opts.activation_code = Some(act_code.clone());
        regs.push(tokio::spawn(async move {
            let state = StateDir::open(&opts.state_dir)?;
            let client = AgentClient::new(&opts.endpoint, &opts.region)?;
            let reg = opsloop_agent::register_or_load(&opts, &state, &client).await?;
            Ok::<_, opsloop_agent::AgentError>((client, reg))
        }));
    }
    let tracker = Arc::new(Tracker {
        nodes: n,
        entries: Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for r in regs {
        let (client, reg) = r.await?.map_err(|e| anyhow::anyhow!("registration: {e}"))?;
        let key = Key {
            access_key_id: reg.access_key_id.clone(),
            secret: reg.secret_access_key.clone(),
        };
        tasks.push(tokio::spawn(node(
            client,
            key,
            reg.instance_id.clone(),
            tracker.clone(),
            stop.clone(),
        )));
    }
    let reg_s = reg_start.elapsed().as_secs_f64();
    // Every node Online (its heartbeat landed) before measuring.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = ssm(
            &mut conn,
            "DescribeInstanceInformation",
            json!({"MaxResults": 50}),
        )
        .await?;
        let mut online = 0;
        let mut page = v;
        loop {
            online += page["InstanceInformationList"]
                .as_array()
                .map(|a| a.iter().filter(|x| x["PingStatus"] == "Online").count())
                .unwrap_or(0);
            match page["NextToken"].as_str() {
                Some(t) => {
                    page = ssm(
                        &mut conn,
                        "DescribeInstanceInformation",
                        json!({"MaxResults": 50, "NextToken": t}),
                    )
                    .await?
                }
                None => break,
            }
        }
        if online == n {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {online} of {n} nodes Online after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_idle = settle_rss(pid).await;

    // Latency: sequential commands to the whole fleet.
    let mut lat = Vec::new();
    for _ in 0..args.rounds {
        let (id, t0) = send(&mut conn).await?;
        let done = tracker.wait(&id).await?;
        lat.push(done.duration_since(t0).as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);

    // Throughput: `in_flight` senders, each waiting for its command to complete on every node.
    let phase_end = Instant::now() + Duration::from_secs(args.seconds);
    let t_start = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..args.in_flight {
        let tracker = tracker.clone();
        senders.push(tokio::spawn(async move {
            let mut conn = HttpConn::connect(addr).await?;
            let mut commands = 0usize;
            let mut last = String::new();
            while Instant::now() < phase_end {
                let (id, _) = send(&mut conn).await?;
                tracker.wait(&id).await?;
                commands += 1;
                last = id;
            }
            Ok::<_, anyhow::Error>((commands, last))
        }));
    }
    let mut commands = 0;
    let mut last = String::new();
    for s in senders {
        let (c, l) = s.await??;
        commands += c;
        last = l;
    }
    let elapsed = t_start.elapsed().as_secs_f64();
    let rss_after = procs::vm_rss_kib(pid).unwrap_or(0);
    let cpu = procs::cpu_seconds(pid).unwrap_or(0.0);

    let row = ssm(&mut conn, "ListCommands", json!({"CommandId": last})).await?;
    let c = &row["Commands"][0];
    if c["Status"] != "Success" || c["CompletedCount"].as_u64() != Some(n as u64) {
        bail!("the last command did not complete everywhere: {c}");
    }
    stop.store(true, Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }

    let invocations = commands * n;
    println!("fleet: {n} simulated nodes, one server (pid {pid})");
    println!("registration: {n} nodes in {reg_s:.2} s");
    println!(
        "SendCommand -> all {n} final replies acknowledged: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    println!(
        "throughput: {commands} commands x {n} nodes = {invocations} invocations in {elapsed:.1} s = {:.0} invocations/s ({:.1} commands/s, {} in flight)",
        invocations as f64 / elapsed,
        commands as f64 / elapsed,
        args.in_flight
    );
    println!(
        "server RSS: {:.1} MiB with 0 nodes, {:.1} MiB with {n} nodes long-polling ({:.1} KiB per node), {:.1} MiB after the run; server CPU {cpu:.1} s total",
        rss0 as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        (rss_idle as f64 - rss0 as f64) / n as f64,
        rss_after as f64 / 1024.0
    );
    Ok(())
}
