//! The ingest load generator: K keep-alive connections push batches at full speed for a fixed time,
//! either to opsloop (signed PutMetricData, RPC v2 CBOR) or to Prometheus (remote write). Both see
//! the same series, the same batch shape and the same values; only acknowledged samples count.
//!
//! Workload: `series` series (10 metric names × hosts, dimensions `AvailabilityZone` and `Host`),
//! split among the connections so that each series is written by one connection in time order. A
//! request carries `datums_per_request` series, each with `values_per_datum` samples: for opsloop one
//! MetricDatum with `Values`/`Counts` arrays at the current second; for Prometheus one TimeSeries
//! with that many samples at consecutive milliseconds (remote write rejects duplicate timestamps).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;

use crate::awsclient::{
    cbor_request, error_summary, Creds, CwClient, HttpConn, PutMetricData, StatsQuery,
};
use crate::{percentile, procs, promwrite, unix_millis, unix_secs, Rng};

/// CloudWatch namespace of the ingest workload.
pub const NAMESPACE: &str = "Bench/Ingest";

const METRICS: [(&str, &str); 10] = [
    ("CPUUtilization", "cpu_utilization"),
    ("MemoryUtilization", "memory_utilization"),
    ("DiskReadOps", "disk_read_ops"),
    ("DiskWriteOps", "disk_write_ops"),
    ("NetworkIn", "network_in"),
    ("NetworkOut", "network_out"),
    ("RequestCount", "request_count"),
    ("Latency", "latency"),
    ("Errors", "errors"),
    ("QueueDepth", "queue_depth"),
];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// One series of the workload.
#[derive(Debug, Clone)]
pub struct Series {
    pub cw_name: &'static str,
    pub prom_name: &'static str,
    pub zone: &'static str,
    pub host: String,
}

/// The `n` distinct series of the workload.
pub fn series_set(n: usize) -> Vec<Series> {
    (0..n)
        .map(|i| {
            let (cw_name, prom_name) = METRICS[i % METRICS.len()];
            let host_no = i / METRICS.len();
            Series {
                cw_name,
                prom_name,
                zone: ZONES[host_no % ZONES.len()],
                host: format!("host-{host_no:05}"),
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub duration: Duration,
    pub connections: usize,
    pub datums_per_request: usize,
    pub values_per_datum: usize,
    pub series: usize,
}

impl IngestConfig {
    pub fn validate(&self) -> Result<()> {
        if self.connections == 0 || self.datums_per_request == 0 || self.values_per_datum == 0 {
            bail!("connections, datums per request and values per datum must be positive");
        }
        if self.values_per_datum > 150 {
            bail!("CloudWatch accepts at most 150 values per datum");
        }
        if self.series < self.connections * self.datums_per_request {
            bail!(
                "need at least connections × datums per request = {} series so no series repeats within a request",
                self.connections * self.datums_per_request
            );
        }
        Ok(())
    }
    pub fn points_per_request(&self) -> u64 {
        (self.datums_per_request * self.values_per_datum) as u64
    }
}

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    Opsloop(Creds),
    Prometheus,
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Opsloop(_) => "opsloop",
            Target::Prometheus => "prometheus",
        }
    }
}

/// The outcome of one ingest run.
#[derive(Debug, Clone, Default)]
pub struct IngestResult {
    /// Acknowledged samples (HTTP 200 from opsloop, 2xx from Prometheus).
    pub points: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    /// Start to the last acknowledgement.
    pub elapsed: Duration,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// Request body bytes sent (after compression, for Prometheus).
    pub body_bytes: u64,
    /// CPU cores the server used on average over the run (user + system).
    pub server_cores: Option<f64>,
    /// CPU cores this load generator used.
    pub client_cores: Option<f64>,
    /// CPU cores busy on the whole machine over the run (`/proc/stat`); minus server and client,
    /// what other processes took.
    pub machine_cores: Option<f64>,
    pub first_error: Option<String>,
    /// opsloop only: per series (index into [`series_set`]), the SampleCount acknowledged (the sum of
    /// `Counts` of acknowledged datums), for read-back checks.
    pub expected_sample_counts: Vec<f64>,
    /// Wall-clock second the run started.
    pub start_s: i64,
}

impl IngestResult {
    pub fn points_per_sec(&self) -> f64 {
        self.points as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn requests_per_sec(&self) -> f64 {
        self.requests_ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Default)]
struct WorkerStats {
    points: u64,
    ok: u64,
    failed: u64,
    body_bytes: u64,
    latencies_ms: Vec<f64>,
    last_ack: Option<Instant>,
    first_error: Option<String>,
    /// `(series index, acknowledged SampleCount)`.
    expected: Vec<(usize, f64)>,
}

/// Run the workload against `addr` for `cfg.duration`. `server_pid` is sampled for CPU time.
pub async fn run(
    target: Target,
    addr: SocketAddr,
    cfg: &IngestConfig,
    server_pid: Option<u32>,
) -> Result<IngestResult> {
    cfg.validate()?;
    let series = Arc::new(series_set(cfg.series));
    let target = Arc::new(target);
    let cpu0 = server_pid.and_then(procs::cpu_seconds);
    let self0 = procs::cpu_seconds(std::process::id());
    let machine0 = procs::machine_busy_seconds();
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let start_ms = unix_millis();
    let start_s = unix_secs();
    let mut tasks = Vec::new();
    for idx in 0..cfg.connections {
        let (target, series, cfg) = (target.clone(), series.clone(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            worker(&target, addr, idx, &cfg, &series, start_ms, deadline).await
        }));
    }
    let mut all = WorkerStats::default();
    let mut latencies = Vec::new();
    for t in tasks {
        let w = t.await??;
        all.points += w.points;
        all.ok += w.ok;
        all.failed += w.failed;
        all.body_bytes += w.body_bytes;
        all.last_ack = all.last_ack.max(w.last_ack);
        if all.first_error.is_none() {
            all.first_error = w.first_error;
        }
        latencies.extend(w.latencies_ms);
        all.expected.extend(w.expected);
    }
    let mut expected_sample_counts = vec![
        0.0;
        if matches!(*target, Target::Opsloop(_)) {
            cfg.series
        } else {
            0
        }
    ];
    for (i, c) in all.expected {
        expected_sample_counts[i] += c;
    }
    let wall = start.elapsed();
    let cpu1 = server_pid.and_then(procs::cpu_seconds);
    let self1 = procs::cpu_seconds(std::process::id());
    let machine1 = procs::machine_busy_seconds();
    latencies.sort_by(f64::total_cmp);
    let elapsed = all.last_ack.map(|t| t - start).unwrap_or(wall);
    Ok(IngestResult {
        points: all.points,
        requests_ok: all.ok,
        requests_failed: all.failed,
        elapsed,
        latency_p50_ms: percentile(&latencies, 0.50),
        latency_p99_ms: percentile(&latencies, 0.99),
        body_bytes: all.body_bytes,
        server_cores: cpu0.zip(cpu1).map(|(a, b)| (b - a) / wall.as_secs_f64()),
        client_cores: self0.zip(self1).map(|(a, b)| (b - a) / wall.as_secs_f64()),
        machine_cores: machine0
            .zip(machine1)
            .map(|(a, b)| (b - a) / wall.as_secs_f64()),
        first_error: all.first_error,
        expected_sample_counts,
        start_s,
    })
}

async fn worker(
    target: &Target,
    addr: SocketAddr,
    idx: usize,
    cfg: &IngestConfig,
    series: &[Series],
    start_ms: i64,
    deadline: Instant,
) -> Result<WorkerStats> {
    let mut conn = HttpConn::connect(addr).await?;
    let owned: Vec<usize> = (idx..cfg.series).step_by(cfg.connections).collect();
    let mut rng = Rng::new(0x5eed_0000 + idx as u64);
    let mut stats = WorkerStats::default();
    let (d, v) = (cfg.datums_per_request, cfg.values_per_datum);
    let mut values = vec![0.0; v];
    let mut counts = vec![0.0; v];
    let mut samples = vec![(0i64, 0.0); v];
    let mut cursor = 0usize;
    let mut seq: i64 = 0;
    // SampleCount acknowledged per owned series, and what the request in flight adds.
    let mut acked_counts = vec![0.0; owned.len()];
    let mut in_flight: Vec<(usize, f64)> = Vec::with_capacity(d);
    while Instant::now() < deadline {
        let req: http::Request<Bytes> = match target {
            Target::Opsloop(creds) => {
                let ts = unix_secs();
                let mut body = PutMetricData::new(NAMESPACE, d, d * (110 + 18 * v));
                in_flight.clear();
                for _ in 0..d {
                    let s = &series[owned[cursor]];
                    for k in 0..v {
                        values[k] = rng.value();
                        counts[k] = (1 + rng.next_u64() % 3) as f64;
                    }
                    in_flight.push((cursor, counts.iter().sum()));
                    cursor = (cursor + 1) % owned.len();
                    body.datum(
                        s.cw_name,
                        &[("AvailabilityZone", s.zone), ("Host", s.host.as_str())],
                        ts,
                        &values,
                        Some(&counts),
                    );
                }
                cbor_request(&conn.host, creds, "PutMetricData", body.finish())?
            }
            Target::Prometheus => {
                let mut body = promwrite::WriteRequest::with_capacity(d * (100 + 20 * v));
                let base = start_ms + seq * v as i64;
                for _ in 0..d {
                    let s = &series[owned[cursor]];
                    cursor = (cursor + 1) % owned.len();
                    for (k, sample) in samples.iter_mut().enumerate() {
                        *sample = (base + k as i64, rng.value());
                        let _ = rng.next_u64(); // Keep the value stream identical to opsloop's.
                    }
                    let labels = [
                        ("__name__", s.prom_name),
                        ("availability_zone", s.zone),
                        ("host", s.host.as_str()),
                        ("namespace", "bench_ingest"),
                    ];
                    body.series(&labels, &samples);
                }
                promwrite::request(&conn.host, body.into_snappy())
            }
        };
        seq += 1;
        stats.body_bytes += req.body().len() as u64;
        let sent = Instant::now();
        match conn.send(req).await {
            Ok((status, body)) => {
                stats
                    .latencies_ms
                    .push(sent.elapsed().as_secs_f64() * 1000.0);
                let ok = match target {
                    Target::Opsloop(_) => status == 200,
                    Target::Prometheus => (200..300).contains(&status),
                };
                if ok {
                    for &(i, c) in &in_flight {
                        acked_counts[i] += c;
                    }
                    stats.points += cfg.points_per_request();
                    stats.ok += 1;
                    stats.last_ack = Some(Instant::now());
                } else {
                    stats.failed += 1;
                    stats
                        .first_error
                        .get_or_insert_with(|| error_summary(status, &body));
                }
            }
            Err(e) => {
                stats.failed += 1;
                stats.first_error.get_or_insert_with(|| format!("{e:#}"));
                // The connection is gone: open a new one, or stop if the server is unreachable.
                match HttpConn::connect(addr).await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
            }
        }
    }
    if let Target::Opsloop(_) = target {
        stats.expected = owned.iter().copied().zip(acked_counts).collect();
    }
    Ok(stats)
}

/// Read back up to `sample` series (evenly spread) from opsloop with GetMetricStatistics and compare
/// their SampleCount over the run with what was acknowledged. Returns `(checked, mismatches)`.
pub async fn verify_opsloop(
    addr: SocketAddr,
    creds: &Creds,
    r: &IngestResult,
    sample: usize,
) -> Result<(usize, Vec<String>)> {
    let mut client = CwClient::connect(addr, creds.clone()).await?;
    let series = series_set(r.expected_sample_counts.len());
    let step = (series.len() / sample.max(1)).max(1);
    let (from, to) = ((r.start_s - 60) / 60 * 60, (unix_secs() + 120) / 60 * 60);
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for i in (0..series.len()).step_by(step).take(sample) {
        let s = &series[i];
        let dims = [("AvailabilityZone", s.zone), ("Host", s.host.as_str())];
        let q = StatsQuery {
            namespace: NAMESPACE,
            metric_name: s.cw_name,
            dimensions: &dims,
            start_s: from,
            end_s: to,
            period_s: 60,
            statistics: &["SampleCount"],
            extended_statistics: &[],
        };
        let got: f64 = client
            .get_metric_statistics(&q)
            .await?
            .iter()
            .filter_map(|p| p.sample_count)
            .sum();
        checked += 1;
        if got != r.expected_sample_counts[i] {
            mismatches.push(format!(
                "{} {}: SampleCount {got}, acknowledged {}",
                s.cw_name, s.host, r.expected_sample_counts[i]
            ));
        }
    }
    Ok((checked, mismatches))
}

/// Ask Prometheus how many samples of the workload it holds (PromQL `count_over_time`, one query
/// per metric name since the function drops names and the series would collide).
pub async fn prometheus_sample_count(addr: SocketAddr) -> Result<f64> {
    let mut conn = HttpConn::connect(addr).await?;
    let at = unix_secs() + 3600;
    let mut total = 0.0;
    for (_, name) in METRICS {
        let promql = format!("sum(count_over_time({name}{{namespace=\"bench_ingest\"}}[2h]))");
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = conn
            .get(&format!("/api/v1/query?query={encoded}&time={at}"))
            .await?;
        if status != 200 {
            bail!(
                "Prometheus query answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let n = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok());
        total += n.unwrap_or(0.0);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_distinct() {
        let s = series_set(10_000);
        let keys: std::collections::HashSet<(&str, &str, &str)> = s
            .iter()
            .map(|x| (x.cw_name, x.zone, x.host.as_str()))
            .collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn config_rejects_repeating_series() {
        let cfg = IngestConfig {
            duration: Duration::from_secs(1),
            connections: 4,
            datums_per_request: 1000,
            values_per_datum: 10,
            series: 3999,
        };
        assert!(cfg.validate().is_err());
        assert!(IngestConfig {
            series: 4000,
            ..cfg
        }
        .validate()
        .is_ok());
    }
}
