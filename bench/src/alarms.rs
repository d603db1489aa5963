//! The alarms benchmark: detection and notification latency of CloudWatch metric alarms whose
//! actions publish to an SNS topic with an HTTP subscriber, under a steady PutMetricData load.
//!
//! On loopback only: a webhook receiver (hyper, in this process) subscribes to an SNS topic and
//! confirms through the SubscribeURL it receives; `alarms` metric alarms (one per `Host` dimension
//! value, `Maximum`, one period, `GreaterThanThreshold`, `AlarmActions` = the topic) are created; a
//! paced background load writes non-breaching values to every alarmed metric; then breaching
//! datapoints are injected one at a time on distinct random alarmed metrics. For each injection:
//!
//! * **to ALARM** — the alarm's `StateUpdatedTimestamp` (DescribeAlarms, read after the
//!   notification arrived) minus the wall-clock time just before the PutMetricData was sent;
//! * **to delivery** — the wall-clock arrival of the SNS Notification for that alarm at the webhook
//!   minus the same send time.
//!
//! Finally, with the load stopped, the server's CPU time is sampled around clock ticks (every
//! alarm with a period under a minute is evaluated on every 10-second tick) and compared with
//! tick-free windows, giving CPU per alarm evaluation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::awsclient::{
    cbor, cbor_request, error_summary, Creds, CwClient, HttpConn, PutMetricData,
};
use crate::{percentile, procs, unix_secs, Rng};

/// Namespace of the alarmed metrics.
pub const NAMESPACE: &str = "Bench/Alarms";
/// Metric name of every alarmed metric (they differ by their `Host` dimension).
pub const METRIC: &str = "Latency";
/// Alarm threshold; the background load writes values in [0, 1000).
const THRESHOLD: f64 = 1000.0;
/// Value of an injected breaching datapoint.
const BREACH: f64 = 5000.0;
/// Wait after the last INSUFFICIENT_DATA -> OK transition before injecting.
const DRAIN: Duration = Duration::from_secs(20);
/// The alarm engine's clock tick (crates/cloudwatch/src/alarms/mod.rs `TICK`).
const TICK_MS: i64 = 10_000;

#[derive(Debug, Clone)]
pub struct AlarmsConfig {
    /// Metric alarms (and alarmed metrics).
    pub alarms: usize,
    /// Alarm period in seconds (10, 30 or a multiple of 60).
    pub period: u64,
    /// Background load in datapoints per second.
    pub load_rate: u64,
    /// Values per MetricDatum in the background load.
    pub load_values: usize,
    /// Connections of the background load.
    pub load_connections: usize,
    /// Connections creating alarms.
    pub create_connections: usize,
    /// Breaching datapoints injected (each on a distinct alarm).
    pub breaches: usize,
    /// Most time to wait for one notification.
    pub breach_timeout: Duration,
    /// Clock ticks sampled for the evaluation cost.
    pub ticks: usize,
}

impl AlarmsConfig {
    pub fn validate(&self) -> Result<()> {
        if self.alarms == 0 || self.load_connections == 0 || self.create_connections == 0 {
            bail!("alarms and connection counts must be positive");
        }
        if self.breaches > self.alarms {
            bail!("at most one breach per alarm (breaches <= alarms)");
        }
        if self.load_values == 0 || self.load_values > 150 {
            bail!("values per datum must be 1..=150");
        }
        if !self.alarms.is_multiple_of(self.load_connections) {
            bail!("alarms must be a multiple of the load connections");
        }
        Ok(())
    }

    /// Datums per load request: each connection writes its share of the metrics once per second.
    fn datums_per_request(&self) -> usize {
        (self.alarms / self.load_connections).min(1000)
    }
}

/// Everything measured.
#[derive(Debug, Default)]
pub struct AlarmsResult {
    pub created: usize,
    pub create_elapsed: Duration,
    pub create_p50_ms: f64,
    pub create_p99_ms: f64,
    pub confirm_ms: f64,
    /// Acknowledged background datapoints per second, over the injection phase.
    pub load_rate: f64,
    pub load_failed: u64,
    pub load_first_error: Option<String>,
    /// Requests the pacer sent late by more than one interval (the load could not keep up).
    pub load_late: u64,
    /// Server CPU cores used over the injection phase.
    pub server_cores: Option<f64>,
    pub machine_cores: Option<f64>,
    /// Milliseconds from send to ALARM, and to the webhook's receipt.
    pub to_alarm_ms: Vec<f64>,
    pub to_delivery_ms: Vec<f64>,
    pub injected: usize,
    /// Injections whose notification never came within the timeout.
    pub missed: Vec<String>,
    /// Notifications that arrived for no injected alarm, or twice.
    pub unexpected: usize,
    pub injection_elapsed: Duration,
    /// From starting the load until no alarm was INSUFFICIENT_DATA (10,000 transitions to OK).
    pub settle: Duration,
    /// Per injection with both: webhook arrival minus StateUpdatedTimestamp (ms).
    pub alarm_to_delivery_ms: Vec<f64>,
    /// Per tick: server CPU seconds attributed to the tick (window minus baseline).
    pub tick_cpu_s: Vec<f64>,
    pub clk_tck: u64,
}

/// What the webhook saw.
#[derive(Debug)]
enum Hook {
    Confirm(String),
    Notification {
        alarm: String,
        state: String,
        at_ms: f64,
    },
    Other(#[allow(dead_code)] String),
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Start the webhook receiver on a loopback port; every POST becomes a [`Hook`] on the channel.
async fn start_webhook() -> Result<(SocketAddr, mpsc::UnboundedReceiver<Hook>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let tx = tx.clone();
                    async move { Ok::<_, Infallible>(webhook(req, &tx).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, rx))
}

async fn webhook(
    req: http::Request<Incoming>,
    tx: &mpsc::UnboundedSender<Hook>,
) -> http::Response<Full<Bytes>> {
    let kind = req
        .headers()
        .get("x-amz-sns-message-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let at_ms = wall_ms();
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hook = match kind.as_str() {
        "SubscriptionConfirmation" => match doc["SubscribeURL"].as_str() {
            Some(u) => Hook::Confirm(u.to_string()),
            None => Hook::Other("confirmation without SubscribeURL".into()),
        },
        "Notification" => {
            let msg: Value = doc["Message"]
                .as_str()
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or(Value::Null);
            match msg["AlarmName"].as_str() {
                Some(a) => Hook::Notification {
                    alarm: a.to_string(),
                    state: msg["NewStateValue"].as_str().unwrap_or("").to_string(),
                    at_ms,
                },
                None => Hook::Other(format!("notification without AlarmName: {doc}")),
            }
        }
        other => Hook::Other(format!("message type {other:?}")),
    };
    let _ = tx.send(hook);
    http::Response::new(Full::new(Bytes::new()))
}

fn form_encode(params: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An SNS (awsQuery) call; the XML answer on 200.
async fn sns_call(conn: &mut HttpConn, creds: &Creds, params: &[(&str, &str)]) -> Result<String> {
    let mut all = params.to_vec();
    all.push(("Version", "2010-03-31"));
    let body = Bytes::from(form_encode(&all));
    let mut req = http::Request::post("/")
        .header(http::header::HOST, &conn.host)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)?;
    opsloop_wire::sigv4::sign(
        &mut req,
        &creds.access_key_id,
        &creds.secret_access_key,
        &creds.region,
        "sns",
        SystemTime::now(),
    );
    let (status, body) = conn.send(req).await?;
    let text = String::from_utf8_lossy(&body).to_string();
    if status != 200 {
        bail!("SNS {} answered {status}: {text}", params[0].1);
    }
    Ok(text)
}

/// The text of the first `<tag>` element (entities unescaped).
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

pub fn alarm_name(i: usize) -> String {
    format!("bench-alarm-{i:05}")
}

pub fn host(i: usize) -> String {
    format!("host-{i:05}")
}

fn put_metric_alarm(cfg: &AlarmsConfig, i: usize, topic: &str) -> Vec<u8> {
    let mut e = cbor::Enc::with_capacity(512);
    e.map(11);
    e.text("AlarmName");
    e.text(&alarm_name(i));
    e.text("Namespace");
    e.text(NAMESPACE);
    e.text("MetricName");
    e.text(METRIC);
    e.text("Dimensions");
    e.array(1);
    e.map(2);
    e.text("Name");
    e.text("Host");
    e.text("Value");
    e.text(&host(i));
    e.text("Statistic");
    e.text("Maximum");
    e.text("Period");
    e.uint(cfg.period);
    e.text("EvaluationPeriods");
    e.uint(1);
    e.text("Threshold");
    e.f64(THRESHOLD);
    e.text("ComparisonOperator");
    e.text("GreaterThanThreshold");
    // Periods without data keep the state: with the load stopped, the tick-cost windows see no
    // transitions (each would be a durable write), only evaluations.
    e.text("TreatMissingData");
    e.text("ignore");
    e.text("AlarmActions");
    e.array(1);
    e.text(topic);
    e.buf
}

/// Create alarms `0..cfg.alarms` on `cfg.create_connections` connections; per-request latencies.
async fn create_alarms(
    addr: SocketAddr,
    creds: &Creds,
    cfg: &AlarmsConfig,
    topic: &str,
) -> Result<(Duration, Vec<f64>)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for idx in 0..cfg.create_connections {
        let (creds, cfg, topic) = (creds.clone(), cfg.clone(), topic.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = CwClient::connect(addr, creds).await?;
            let mut lat = Vec::new();
            for i in (idx..cfg.alarms).step_by(cfg.create_connections) {
                let t = Instant::now();
                let (status, body) = c
                    .call("PutMetricAlarm", put_metric_alarm(&cfg, i, &topic))
                    .await?;
                if status != 200 {
                    bail!("PutMetricAlarm answered {}", error_summary(status, &body));
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_by(f64::total_cmp);
    Ok((start.elapsed(), all))
}

#[derive(Debug, Default)]
struct LoadStats {
    samples: u64,
    failed: u64,
    late: u64,
    first_error: Option<String>,
}

/// One paced load connection: writes its share of the metrics (`idx`, `idx + conns`, …) with
/// `load_values` values each, so the whole load is `load_rate` datapoints per second.
async fn load_worker(
    addr: SocketAddr,
    creds: Creds,
    cfg: AlarmsConfig,
    idx: usize,
    stop: Arc<AtomicBool>,
    hard_stop: Instant,
) -> Result<LoadStats> {
    let mut conn = HttpConn::connect(addr).await?;
    let owned: Vec<usize> = (idx..cfg.alarms).step_by(cfg.load_connections).collect();
    let hosts: Vec<String> = owned.iter().map(|&i| host(i)).collect();
    let d = cfg.datums_per_request().min(owned.len());
    let per_request = (d * cfg.load_values) as f64;
    let interval =
        Duration::from_secs_f64(per_request * cfg.load_connections as f64 / cfg.load_rate as f64);
    let mut rng = Rng::new(0xa1a2_0000 + idx as u64);
    let mut values = vec![0.0; cfg.load_values];
    let mut stats = LoadStats::default();
    let mut cursor = 0usize;
    let start = tokio::time::Instant::now();
    let mut k: u32 = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < hard_stop {
        let due = start + interval * k;
        k += 1;
        let now = tokio::time::Instant::now();
        if due > now {
            tokio::time::sleep_until(due).await;
        } else if now - due > interval {
            stats.late += 1;
        }
        let ts = unix_secs();
        let mut body = PutMetricData::new(NAMESPACE, d, d * (90 + 9 * cfg.load_values));
        for _ in 0..d {
            for v in values.iter_mut() {
                *v = rng.value(); // [0, 1000): never above THRESHOLD.
            }
            body.datum(
                METRIC,
                &[("Host", hosts[cursor].as_str())],
                ts,
                &values,
                None,
            );
            cursor = (cursor + 1) % owned.len();
        }
        let req = cbor_request(&conn.host, &creds, "PutMetricData", body.finish())?;
        match conn.send(req).await {
            Ok((200, _)) => stats.samples += per_request as u64,
            Ok((status, body)) => {
                stats.failed += 1;
                stats
                    .first_error
                    .get_or_insert_with(|| error_summary(status, &body));
            }
            Err(e) => {
                stats.failed += 1;
                stats.first_error.get_or_insert_with(|| format!("{e:#}"));
                match HttpConn::connect(addr).await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
            }
        }
    }
    Ok(stats)
}

/// Whether any alarm is in `state` (DescribeAlarms with `StateValue`, one record): 0 or 1.
async fn count_in_state(c: &mut CwClient, state: &str) -> Result<usize> {
    let mut e = cbor::Enc::with_capacity(64);
    e.map(2);
    e.text("StateValue");
    e.text(state);
    e.text("MaxRecords");
    e.uint(1);
    let (status, body) = c.call("DescribeAlarms", e.buf).await?;
    if status != 200 {
        bail!("DescribeAlarms answered {}", error_summary(status, &body));
    }
    let v = cbor::decode(&body)?;
    Ok(v["MetricAlarms"].as_array().map_or(0, |a| a.len()))
}

/// The alarm's state and `StateUpdatedTimestamp` (epoch ms) from DescribeAlarms.
async fn describe_alarm(c: &mut CwClient, name: &str) -> Result<(String, f64)> {
    let mut e = cbor::Enc::with_capacity(64);
    e.map(1);
    e.text("AlarmNames");
    e.array(1);
    e.text(name);
    let (status, body) = c.call("DescribeAlarms", e.buf).await?;
    if status != 200 {
        bail!("DescribeAlarms answered {}", error_summary(status, &body));
    }
    let v = cbor::decode(&body)?;
    let a = &v["MetricAlarms"][0];
    let state = a["StateValue"]
        .as_str()
        .ok_or_else(|| anyhow!("no alarm {name} in DescribeAlarms: {v}"))?
        .to_string();
    let ts = a["StateUpdatedTimestamp"]
        .as_f64()
        .ok_or_else(|| anyhow!("no StateUpdatedTimestamp for {name}"))?;
    // Seconds (possibly fractional) on the wire; tolerate milliseconds.
    let ms = if ts > 1e11 { ts } else { ts * 1000.0 };
    Ok((state, ms))
}

/// Run the whole benchmark against a fresh server at `addr` (pid `server_pid`). `log` prints
/// progress lines.
pub async fn run(
    addr: SocketAddr,
    server_pid: u32,
    creds: &Creds,
    cfg: &AlarmsConfig,
) -> Result<AlarmsResult> {
    cfg.validate()?;
    let mut r = AlarmsResult {
        clk_tck: procs::clk_tck(),
        ..Default::default()
    };
    let (hook_addr, mut hooks) = start_webhook().await?;

    // Topic, subscription, confirmation.
    let mut sns = HttpConn::connect(addr).await?;
    let xml = sns_call(
        &mut sns,
        creds,
        &[("Action", "CreateTopic"), ("Name", "bench-alarms")],
    )
    .await?;
    let topic = xml_text(&xml, "TopicArn").ok_or_else(|| anyhow!("no TopicArn in {xml}"))?;
    let endpoint = format!("http://{hook_addr}/sns");
    let t = Instant::now();
    sns_call(
        &mut sns,
        creds,
        &[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "http"),
            ("Endpoint", &endpoint),
        ],
    )
    .await?;
    let url = loop {
        match tokio::time::timeout(Duration::from_secs(30), hooks.recv()).await {
            Ok(Some(Hook::Confirm(u))) => break u,
            Ok(Some(other)) => println!("  webhook: ignoring {other:?} while waiting to confirm"),
            Ok(None) => bail!("webhook receiver stopped"),
            Err(_) => bail!("no SubscriptionConfirmation within 30 s"),
        }
    };
    let prefix = format!("http://{addr}");
    let path = url
        .strip_prefix(&prefix)
        .ok_or_else(|| anyhow!("SubscribeURL {url} is not on the server at {prefix}"))?;
    let (status, body) = HttpConn::connect(addr).await?.get(path).await?;
    if status != 200 {
        bail!(
            "SubscribeURL answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    r.confirm_ms = t.elapsed().as_secs_f64() * 1000.0;
    let subs = sns_call(
        &mut sns,
        creds,
        &[("Action", "ListSubscriptionsByTopic"), ("TopicArn", &topic)],
    )
    .await?;
    if xml_text(&subs, "SubscriptionArn").is_none_or(|a| !a.starts_with("arn:")) {
        bail!("subscription not confirmed: {subs}");
    }
    println!("  topic {topic}, webhook {endpoint} confirmed");

    // Alarms.
    println!("  creating {} alarms", cfg.alarms);
    let (took, lat) = create_alarms(addr, creds, cfg, &topic).await?;
    r.created = lat.len();
    r.create_elapsed = took;
    r.create_p50_ms = percentile(&lat, 0.5);
    r.create_p99_ms = percentile(&lat, 0.99);
    println!(
        "  created {} alarms in {:.2} s",
        r.created,
        took.as_secs_f64()
    );

    // Background load; let every alarm see data (INSUFFICIENT_DATA -> OK) before injecting.
    let stop = Arc::new(AtomicBool::new(false));
    let hard_stop = Instant::now() + Duration::from_secs(1800);
    let mut load = Vec::new();
    for idx in 0..cfg.load_connections {
        load.push(tokio::spawn(load_worker(
            addr,
            creds.clone(),
            cfg.clone(),
            idx,
            stop.clone(),
            hard_stop,
        )));
    }
    let mut cw = CwClient::connect(addr, creds.clone()).await?;
    let settle = Instant::now();
    loop {
        if count_in_state(&mut cw, "INSUFFICIENT_DATA").await? == 0 {
            break;
        }
        if settle.elapsed() > Duration::from_secs(300) {
            bail!("alarms still INSUFFICIENT_DATA after 300 s of load");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    r.settle = settle.elapsed();
    // Each transition also queued an EventBridge event in the alarm outbox (delivered, or dropped,
    // in order with the SNS actions): let that backlog drain before measuring.
    println!(
        "  all alarms OK after {:.1} s of load; waiting {} s for the alarm outbox to drain",
        r.settle.as_secs_f64(),
        DRAIN.as_secs()
    );
    tokio::time::sleep(DRAIN).await;
    // Drain anything the webhook got so far (there should be nothing: OK has no actions).
    while let Ok(h) = hooks.try_recv() {
        r.unexpected += 1;
        println!("  webhook before injections: {h:?}");
    }
    println!("  injecting {} breaches", cfg.breaches);

    // Injections on distinct random alarms.
    let mut order: Vec<usize> = (0..cfg.alarms).collect();
    let mut rng = Rng::new(0xb4ea_c400);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let cpu0 = procs::cpu_seconds(server_pid);
    let machine0 = procs::machine_busy_seconds();
    let phase = Instant::now();
    let mut pending_notes: HashMap<String, f64> = HashMap::new();
    for &i in order.iter().take(cfg.breaches) {
        let name = alarm_name(i);
        let mut body = PutMetricData::new(NAMESPACE, 1, 128);
        body.datum(METRIC, &[("Host", host(i))], unix_secs(), &[BREACH], None);
        let sent_ms = wall_ms();
        let (status, resp) = cw.call("PutMetricData", body.finish()).await?;
        if status != 200 {
            bail!(
                "breach PutMetricData answered {}",
                error_summary(status, &resp)
            );
        }
        r.injected += 1;
        let deadline = Instant::now() + cfg.breach_timeout;
        let arrived = loop {
            if let Some(at) = pending_notes.remove(&name) {
                break Some(at);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, hooks.recv()).await {
                Ok(Some(Hook::Notification {
                    alarm,
                    state,
                    at_ms,
                })) => {
                    if state == "ALARM" && !pending_notes.contains_key(&alarm) {
                        pending_notes.insert(alarm, at_ms);
                    } else {
                        r.unexpected += 1;
                    }
                }
                Ok(Some(other)) => {
                    r.unexpected += 1;
                    println!("  webhook: {other:?}");
                }
                Ok(None) => bail!("webhook receiver stopped"),
                Err(_) => break None,
            }
        };
        match arrived {
            Some(at) => r.to_delivery_ms.push(at - sent_ms),
            None => r.missed.push(name.clone()),
        }
        let (state, updated_ms) = describe_alarm(&mut cw, &name).await?;
        if state == "ALARM" {
            r.to_alarm_ms.push(updated_ms - sent_ms);
            if let Some(at) = arrived {
                r.alarm_to_delivery_ms.push(at - updated_ms);
            }
        } else if arrived.is_some() {
            println!("  {name}: notified but DescribeAlarms says {state}");
        }
        tokio::time::sleep(Duration::from_millis(20 + rng.next_u64() % 80)).await;
    }
    r.unexpected += pending_notes.len();
    r.injection_elapsed = phase.elapsed();
    let wall = r.injection_elapsed.as_secs_f64();
    r.server_cores = cpu0
        .zip(procs::cpu_seconds(server_pid))
        .map(|(a, b)| (b - a) / wall);
    r.machine_cores = machine0
        .zip(procs::machine_busy_seconds())
        .map(|(a, b)| (b - a) / wall);
    stop.store(true, Ordering::Relaxed);
    let mut samples = 0;
    for t in load {
        let s = t.await??;
        samples += s.samples;
        r.load_failed += s.failed;
        r.load_late += s.late;
        if r.load_first_error.is_none() {
            r.load_first_error = s.first_error;
        }
    }
    // The rate over the whole load (settling + injections).
    r.load_rate = samples as f64 / settle.elapsed().as_secs_f64();
    r.to_alarm_ms.sort_by(f64::total_cmp);
    r.to_delivery_ms.sort_by(f64::total_cmp);
    r.alarm_to_delivery_ms.sort_by(f64::total_cmp);

    // Tick cost, load stopped. Skip the first tick after the load (it may still commit
    // ALARM -> OK transitions of the last breached alarms); then per tick T: baseline CPU over
    // [T-9 s, T-1 s] (no tick), tick window [T-1 s, T+1 s].
    println!(
        "  load stopped; sampling server CPU around {} clock ticks",
        cfg.ticks
    );
    let now = crate::unix_millis();
    let first_tick = (now / TICK_MS + 2) * TICK_MS;
    for k in 0..cfg.ticks as i64 {
        let t = first_tick + k * TICK_MS;
        sleep_until_ms(t - 9_000).await;
        let c0 = procs::cpu_seconds(server_pid);
        sleep_until_ms(t - 1_000).await;
        let c1 = procs::cpu_seconds(server_pid);
        sleep_until_ms(t + 1_000).await;
        let c2 = procs::cpu_seconds(server_pid);
        if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, c2) {
            r.tick_cpu_s.push((c2 - c1) - (c1 - c0) / 8.0 * 2.0);
        }
    }
    Ok(r)
}

async fn sleep_until_ms(at_ms: i64) {
    let wait = at_ms - crate::unix_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_unescapes() {
        let xml = "<R><TopicArn>arn:aws:sns:us-east-1:1:t&amp;u</TopicArn></R>";
        assert_eq!(
            xml_text(xml, "TopicArn").as_deref(),
            Some("arn:aws:sns:us-east-1:1:t&u")
        );
        assert_eq!(xml_text(xml, "Missing"), None);
    }

    #[test]
    fn form_encoding_escapes_reserved() {
        assert_eq!(
            form_encode(&[("Endpoint", "http://127.0.0.1:1/a b")]),
            "Endpoint=http%3A%2F%2F127.0.0.1%3A1%2Fa%20b"
        );
    }

    #[test]
    fn alarm_input_is_cbor_with_eleven_fields() {
        let cfg = AlarmsConfig {
            alarms: 10,
            period: 10,
            load_rate: 100,
            load_values: 1,
            load_connections: 2,
            create_connections: 1,
            breaches: 1,
            breach_timeout: Duration::from_secs(1),
            ticks: 1,
        };
        let v = cbor::decode(&put_metric_alarm(&cfg, 7, "arn:t")).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 11);
        assert_eq!(v["Dimensions"][0]["Value"], "host-00007");
        assert_eq!(v["AlarmActions"][0], "arn:t");
    }
}
