//! The monitoring side of `opsloop agent`: what the CloudWatch agent does on a host, driven by the
//! CloudWatch agent's own JSON configuration. [`run`] collects host metrics on an interval and
//! publishes them with `PutMetricData` (namespace `CWAgent` by default, `InstanceId` = the node
//! id), and tails log files into CloudWatch Logs, both through a [`Sink`] until the shutdown
//! signal. See README.md for how the agent calls it.

pub mod collect;
pub mod config;
pub mod glob;
pub mod procstat;
pub mod sink;
pub mod tail;
pub mod timestamp;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::watch;

pub use config::{AgentConfig, ConfigError};
pub use sink::{HttpSink, HttpSinkConfig, Sink, SinkError, SinkFuture};

use collect::{Datum, SystemCollector};
use procstat::ProcstatCollector;

/// Why [`run`] stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// At most this many metric data wait for an unreachable server; older ones are dropped first.
pub const MAX_BUFFERED_DATA: usize = 100_000;
/// Data per PutMetricData call.
pub const DATA_PER_CALL: usize = 1000;
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Run the collectors until `shutdown` becomes true (or its sender is dropped).
///
/// `instance_id` is the managed node id (`mi-…`) that replaces `${aws:InstanceId}` and
/// `{instance_id}`; `state_dir` holds the log positions. Sink failures never stop the loop: data
/// are kept (metrics: up to [`MAX_BUFFERED_DATA`]; logs: in the files themselves) and retried with
/// exponential backoff.
pub async fn run(
    config: AgentConfig,
    sink: Arc<dyn Sink>,
    instance_id: String,
    state_dir: PathBuf,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let tailer = tail::Tailer::new(&config.logs, &instance_id, &state_dir).map_err(|source| {
        Error::State {
            path: state_dir.clone(),
            source,
        }
    })?;
    tracing::info!(
        instance_id = %instance_id,
        plugins = config.metrics.as_ref().map(|m| m.plugins.len() + m.procstat.len()).unwrap_or(0),
        log_files = config.logs.len(),
        "monitoring agent started"
    );
    let metrics = metrics_loop(&config, sink.as_ref(), &instance_id, shutdown.clone());
    let logs = logs_loop(&config, tailer, sink.as_ref(), shutdown);
    tokio::join!(metrics, logs);
    Ok(())
}

async fn stopped(rx: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    if *rx.borrow() {
        return true;
    }
    tokio::select! {
        r = rx.wait_for(|v| *v) => { let _ = r; true }
        _ = tokio::time::sleep(wait) => false,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Resolve `${aws:InstanceId}` in append_dimensions; other EC2 metadata is unavailable.
fn global_dims(
    cfg: &config::MetricsConfig,
    instance_id: &str,
    omit_hostname: bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in &cfg.append_dimensions {
        if v == "${aws:InstanceId}" {
            out.push((k.clone(), instance_id.to_string()));
        } else if v.starts_with("${aws:") {
            tracing::warn!(dimension = %k, value = %v, "EC2 metadata dimension unavailable on a managed node; omitted");
        } else {
            out.push((k.clone(), v.clone()));
        }
    }
    if cfg.append_dimensions.is_empty() && !omit_hostname {
        out.push(("host".to_string(), hostname()));
    }
    out
}

/// The MetricDatum documents of one datum, with its aggregation_dimensions rollups.
fn datum_docs(
    d: &Datum,
    global: &[(String, String)],
    agg: &[Vec<String>],
    ts: f64,
    hires: bool,
    out: &mut VecDeque<Value>,
) {
    let mut dims = d.dims.clone();
    for g in global {
        if !dims.iter().any(|(k, _)| k == &g.0) {
            dims.push(g.clone());
        }
    }
    let doc = |dims: &[(String, String)]| {
        let mut m = json!({
            "MetricName": d.name,
            "Dimensions": dims.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect::<Vec<_>>(),
            "Timestamp": ts,
            "Value": d.value,
            "Unit": d.unit,
        });
        if hires {
            m["StorageResolution"] = json!(1);
        }
        m
    };
    out.push_back(doc(&dims));
    for set in agg {
        if set.len() == dims.len() && set.iter().all(|s| dims.iter().any(|(k, _)| k == s)) {
            continue;
        }
        let sub: Option<Vec<(String, String)>> = set
            .iter()
            .map(|s| dims.iter().find(|(k, _)| k == s).cloned())
            .collect();
        if let Some(sub) = sub {
            out.push_back(doc(&sub));
        }
    }
}

async fn metrics_loop(
    config: &AgentConfig,
    sink: &dyn Sink,
    instance_id: &str,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mc) = &config.metrics else {
        let _ = shutdown.wait_for(|v| *v).await;
        return;
    };
    let base = config.interval;
    let plugin_iv: Vec<Duration> = mc
        .plugins
        .iter()
        .map(|p| p.interval.unwrap_or(base))
        .collect();
    let proc_iv: Vec<Duration> = mc
        .procstat
        .iter()
        .map(|p| p.interval.unwrap_or(base))
        .collect();
    let tick = plugin_iv
        .iter()
        .chain(&proc_iv)
        .copied()
        .chain([base])
        .min()
        .unwrap_or(base);
    let global = global_dims(mc, instance_id, config.omit_hostname);
    let mut sys = SystemCollector::new();
    let mut procs = ProcstatCollector::default();
    for p in &mc.procstat {
        procs.collect(p);
    }
    let start = Instant::now();
    let mut plugin_due = vec![start + tick; plugin_iv.len()];
    let mut proc_due = vec![start + tick; proc_iv.len()];
    let mut buffer: VecDeque<Value> = VecDeque::new();
    let mut backoff = Duration::ZERO;
    let mut retry_at = start;
    let mut next = start + tick;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        if stopped(&mut shutdown, wait).await {
            // One last attempt to deliver what is buffered.
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                flush(sink, &mc.namespace, &mut buffer),
            )
            .await;
            return;
        }
        let now = Instant::now();
        next += tick;
        if next < now {
            next = now + tick;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut data = Vec::new();
        for (i, p) in mc.plugins.iter().enumerate() {
            if now + Duration::from_millis(50) >= plugin_due[i] {
                plugin_due[i] = now + plugin_iv[i];
                data.extend(sys.collect(p).into_iter().map(|d| (d, plugin_iv[i])));
            }
        }
        for (i, p) in mc.procstat.iter().enumerate() {
            if now + Duration::from_millis(50) >= proc_due[i] {
                proc_due[i] = now + proc_iv[i];
                data.extend(procs.collect(p).into_iter().map(|d| (d, proc_iv[i])));
            }
        }
        for (d, iv) in &data {
            datum_docs(
                d,
                &global,
                &mc.aggregation_dimensions,
                ts,
                *iv < Duration::from_secs(60),
                &mut buffer,
            );
        }
        if buffer.len() > MAX_BUFFERED_DATA {
            let drop = buffer.len() - MAX_BUFFERED_DATA;
            buffer.drain(..drop);
            tracing::warn!(dropped = drop, "metric buffer full; oldest data dropped");
        }
        if Instant::now() < retry_at {
            continue;
        }
        match flush(sink, &mc.namespace, &mut buffer).await {
            Ok(()) => backoff = Duration::ZERO,
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(500), MAX_BACKOFF);
                retry_at = Instant::now() + backoff;
                tracing::warn!(error = %e, buffered = buffer.len(), retry_in_ms = backoff.as_millis() as u64, "PutMetricData failed; will retry");
            }
        }
    }
}

/// Send the buffer in calls of [`DATA_PER_CALL`]; stop at the first retryable failure.
async fn flush(
    sink: &dyn Sink,
    namespace: &str,
    buffer: &mut VecDeque<Value>,
) -> Result<(), SinkError> {
    while !buffer.is_empty() {
        let n = buffer.len().min(DATA_PER_CALL);
        let batch: Vec<Value> = buffer.iter().take(n).cloned().collect();
        match sink
            .put_metric_data(json!({"Namespace": namespace, "MetricData": batch}))
            .await
        {
            Ok(_) => {
                buffer.drain(..n);
            }
            Err(e) if e.retryable => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, data = n, "PutMetricData rejected; data dropped");
                buffer.drain(..n);
            }
        }
    }
    Ok(())
}

async fn logs_loop(
    config: &AgentConfig,
    mut tailer: tail::Tailer,
    sink: &dyn Sink,
    mut shutdown: watch::Receiver<bool>,
) {
    if config.logs.is_empty() {
        let _ = shutdown.wait_for(|v| *v).await;
        return;
    }
    let every = config.logs_flush_interval.min(Duration::from_secs(1));
    let mut backoff = Duration::ZERO;
    loop {
        match tailer.poll(sink).await {
            Ok(_) => backoff = Duration::ZERO,
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(500), MAX_BACKOFF);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "PutLogEvents failed; will retry");
            }
        }
        if stopped(&mut shutdown, every.max(backoff)).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
