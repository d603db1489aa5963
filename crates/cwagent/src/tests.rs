//! Unit tests of the configuration parser and of [`crate::run`] against a recording sink.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{AgentConfig, PluginKind, ProcSelector};
use crate::sink::{Sink, SinkError, SinkFuture};

/// A sink that records what it receives, behaves like CloudWatch Logs about missing groups and
/// streams, and can be switched "down" (every call fails retryably).
#[derive(Default)]
pub(crate) struct MockSink {
    pub down: AtomicBool,
    pub metrics: Mutex<Vec<Value>>,
    /// (group, stream) → messages.
    pub logs: Mutex<BTreeMap<(String, String), Vec<String>>>,
    pub groups: Mutex<Vec<String>>,
    pub retention: Mutex<Vec<Value>>,
}

impl MockSink {
    fn check(&self) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::network("down"));
        }
        Ok(())
    }
    pub fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .get(&(group.to_string(), stream.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

fn not_found() -> SinkError {
    SinkError {
        code: "ResourceNotFoundException".into(),
        message: "missing".into(),
        retryable: false,
    }
}

impl Sink for MockSink {
    fn put_metric_data(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move {
            self.check()?;
            self.metrics.lock().unwrap().push(input);
            Ok(json!({}))
        })
    }
    fn put_log_events(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move {
            self.check()?;
            let g = input["logGroupName"].as_str().unwrap().to_string();
            let s = input["logStreamName"].as_str().unwrap().to_string();
            let mut logs = self.logs.lock().unwrap();
            let Some(stream) = logs.get_mut(&(g, s)) else {
                return Err(not_found());
            };
            let evs = input["logEvents"].as_array().unwrap();
            let ts: Vec<i64> = evs
                .iter()
                .map(|e| e["timestamp"].as_i64().unwrap())
                .collect();
            assert!(ts.windows(2).all(|w| w[0] <= w[1]), "events out of order");
            stream.extend(
                evs.iter()
                    .map(|e| e["message"].as_str().unwrap().to_string()),
            );
            Ok(json!({}))
        })
    }
    fn create_log_group(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move {
            self.check()?;
            let g = input["logGroupName"].as_str().unwrap().to_string();
            let mut groups = self.groups.lock().unwrap();
            if groups.contains(&g) {
                return Err(SinkError {
                    code: "ResourceAlreadyExistsException".into(),
                    message: "exists".into(),
                    retryable: false,
                });
            }
            groups.push(g);
            Ok(json!({}))
        })
    }
    fn create_log_stream(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move {
            self.check()?;
            let g = input["logGroupName"].as_str().unwrap().to_string();
            if !self.groups.lock().unwrap().contains(&g) {
                return Err(not_found());
            }
            let s = input["logStreamName"].as_str().unwrap().to_string();
            self.logs.lock().unwrap().entry((g, s)).or_default();
            Ok(json!({}))
        })
    }
    fn put_retention_policy(&self, input: Value) -> SinkFuture<'_> {
        Box::pin(async move {
            self.check()?;
            self.retention.lock().unwrap().push(input);
            Ok(json!({}))
        })
    }
}

/// The seed scenario's agent: CPU, memory, disk, the agent's own process count, a log file.
const SEED_STYLE: &str = r#"{
  "agent": {"metrics_collection_interval": 60, "run_as_user": "root"},
  "metrics": {
    "namespace": "CWAgent",
    "append_dimensions": {"InstanceId": "${aws:InstanceId}", "InstanceType": "${aws:InstanceType}"},
    "aggregation_dimensions": [["InstanceId"]],
    "metrics_collected": {
      "cpu": {"measurement": ["cpu_usage_idle", "usage_user", {"name": "cpu_usage_system", "rename": "CPU_SYS", "unit": "Percent"}], "totalcpu": true, "resources": ["*"]},
      "mem": {"measurement": ["mem_used_percent"], "metrics_collection_interval": 10},
      "disk": {"measurement": ["used_percent"], "resources": ["/"], "ignore_file_system_types": ["sysfs", "devtmpfs"]},
      "netstat": {"measurement": ["tcp_established"]},
      "procstat": [
        {"pattern": "amazon-cloudwatch-agent", "measurement": ["pid_count"]},
        {"exe": "nginx", "pid_file": "/run/nginx.pid", "measurement": ["cpu_usage", "memory_rss"]}
      ]
    }
  },
  "logs": {"logs_collected": {"files": {"collect_list": [
    {"file_path": "/var/log/messages", "log_group_name": "/ec2/messages", "log_stream_name": "{instance_id}-{hostname}",
     "timestamp_format": "%b %d %H:%M:%S", "retention_in_days": 30},
    {"file_path": "/var/log/app/*.log", "log_group_name": "app", "multi_line_start_pattern": "{timestamp_format}", "timestamp_format": "%Y-%m-%d %H:%M:%S"}
  ]}}},
  "traces": {},
  "unknown_section": {}
}"#;

#[test]
fn parses_the_seed_style_config() {
    let c = AgentConfig::parse(SEED_STYLE).unwrap();
    assert_eq!(c.interval, Duration::from_secs(60));
    let m = c.metrics.as_ref().unwrap();
    assert_eq!(m.namespace, "CWAgent");
    assert_eq!(m.append_dimensions["InstanceId"], "${aws:InstanceId}");
    assert_eq!(
        m.aggregation_dimensions,
        vec![vec!["InstanceId".to_string()]]
    );
    let kinds: Vec<_> = m.plugins.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![PluginKind::Cpu, PluginKind::Mem, PluginKind::Disk]
    );
    let cpu = &m.plugins[0];
    let names: Vec<_> = cpu.measurements.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        ["cpu_usage_idle", "cpu_usage_user", "cpu_usage_system"]
    );
    assert_eq!(cpu.measurements[2].rename.as_deref(), Some("CPU_SYS"));
    assert_eq!(m.plugins[1].interval, Some(Duration::from_secs(10)));
    assert_eq!(m.plugins[2].measurements[0].name, "disk_used_percent");
    assert_eq!(m.procstat.len(), 2);
    assert_eq!(
        m.procstat[0].selector.dimension(),
        ("pattern", "amazon-cloudwatch-agent")
    );
    assert_eq!(
        m.procstat[0].measurements[0].name,
        "procstat_lookup_pid_count"
    );
    // pid_file wins over exe, as in the CloudWatch agent.
    assert!(
        matches!(m.procstat[1].selector, ProcSelector::PidFile(ref p) if p == "/run/nginx.pid")
    );
    assert_eq!(m.procstat[1].measurements[1].name, "procstat_memory_rss");
    assert_eq!(c.logs.len(), 2);
    assert_eq!(c.logs[0].retention_in_days, Some(30));
    assert_eq!(c.logs[0].log_stream_name, "{instance_id}-{hostname}");
    assert_eq!(c.logs[1].log_stream_name, "{instance_id}");
    let re = c.logs[1].multi_line_start_pattern.as_ref().unwrap();
    assert!(re.is_match("2024-01-02 03:04:05 start") && !re.is_match("  at frame"));
    assert!(
        c.warnings.iter().any(|w| w.contains("netstat")),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("unknown_section")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn defaults_and_errors_name_the_field() {
    let c = AgentConfig::parse(r#"{"metrics": {"metrics_collected": {"mem": {}}}}"#).unwrap();
    assert_eq!(c.metrics.unwrap().namespace, "CWAgent");
    assert_eq!(c.interval, Duration::from_secs(60));
    for (bad, field) in [
        (
            r#"{"agent": {"metrics_collection_interval": 0}}"#,
            "agent.metrics_collection_interval",
        ),
        (
            r#"{"agent": {"metrics_collection_interval": "x"}}"#,
            "agent.metrics_collection_interval",
        ),
        (
            r#"{"metrics": {"namespace": "AWS/EC2"}}"#,
            "metrics.namespace",
        ),
        (
            r#"{"metrics": {"metrics_collected": {"cpu": {"totalcpu": "yes"}}}}"#,
            "metrics.metrics_collected.cpu.totalcpu",
        ),
        (
            r#"{"metrics": {"metrics_collected": {"procstat": [{"measurement": ["pid_count"]}]}}}"#,
            "metrics.metrics_collected.procstat[0]",
        ),
        (
            r#"{"metrics": {"metrics_collected": {"procstat": [{"pattern": "("}]}}}"#,
            "metrics.metrics_collected.procstat[0].pattern",
        ),
        (
            r#"{"metrics": {"metrics_collected": {"mem": {"measurement": [3]}}}}"#,
            "metrics.metrics_collected.mem.measurement[0]",
        ),
        (
            r#"{"logs": {"logs_collected": {"files": {"collect_list": [{"file_path": "rel.log", "log_group_name": "g"}]}}}}"#,
            "collect_list[0].file_path",
        ),
        (
            r#"{"logs": {"logs_collected": {"files": {"collect_list": [{"file_path": "/a.log"}]}}}}"#,
            "collect_list[0].log_group_name",
        ),
        (
            r#"{"logs": {"logs_collected": {"files": {"collect_list": [{"file_path": "/a.log", "log_group_name": "g", "retention_in_days": 2}]}}}}"#,
            "collect_list[0].retention_in_days",
        ),
    ] {
        let e = AgentConfig::parse(bad).unwrap_err().to_string();
        assert!(e.contains(field), "{bad}: {e}");
    }
    assert!(
        AgentConfig::parse(r#"{"agent": {"omit_hostname": true}}"#)
            .unwrap()
            .omit_hostname
    );
    assert!(AgentConfig::parse("[1]").is_err());
    assert!(AgentConfig::parse("{").is_err());
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_publishes_metrics_and_logs_and_buffers_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "first\n").unwrap();
    let cfg = format!(
        r#"{{"agent": {{"metrics_collection_interval": 1}},
            "metrics": {{"append_dimensions": {{"InstanceId": "${{aws:InstanceId}}"}},
              "metrics_collected": {{"cpu": {{"measurement": ["cpu_usage_idle"]}}, "mem": {{"measurement": ["mem_used_percent"]}},
                "procstat": [{{"pattern": "cargo|nextest|opsloop", "measurement": ["pid_count"]}}]}}}},
            "logs": {{"logs_collected": {{"files": {{"collect_list": [{{"file_path": "{}/*.log", "log_group_name": "g", "retention_in_days": 7}}]}}}}}}}}"#,
        dir.path().display()
    );
    let config = AgentConfig::parse(&cfg).unwrap();
    let sink = Arc::new(MockSink::default());
    sink.down.store(true, Ordering::SeqCst);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(crate::run(
        config,
        sink.clone(),
        "mi-0123456789abcdef0".into(),
        dir.path().join("state"),
        rx,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sink.metrics.lock().unwrap().is_empty());
    sink.down.store(false, Ordering::SeqCst);
    let s2 = sink.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("metrics", || {
            let m = s2.metrics.lock().unwrap();
            let all: Vec<&Value> = m
                .iter()
                .flat_map(|c| c["MetricData"].as_array().unwrap())
                .collect();
            [
                "cpu_usage_idle",
                "mem_used_percent",
                "procstat_lookup_pid_count",
            ]
            .iter()
            .all(|n| all.iter().any(|d| d["MetricName"] == *n))
        });
        wait_until("log line", || {
            s2.messages("g", "mi-0123456789abcdef0") == ["first"]
        });
    })
    .await
    .unwrap();
    let m = sink.metrics.lock().unwrap().clone();
    let d = m
        .iter()
        .flat_map(|c| c["MetricData"].as_array().unwrap().clone())
        .find(|d| d["MetricName"] == "mem_used_percent")
        .unwrap();
    assert_eq!(m[0]["Namespace"], "CWAgent");
    assert_eq!(d["Unit"], "Percent");
    assert_eq!(d["StorageResolution"], 1);
    assert_eq!(
        d["Dimensions"],
        json!([{"Name": "InstanceId", "Value": "mi-0123456789abcdef0"}])
    );
    let p = m
        .iter()
        .flat_map(|c| c["MetricData"].as_array().unwrap().clone())
        .find(|d| d["MetricName"] == "procstat_lookup_pid_count")
        .unwrap();
    assert!(p["Value"].as_f64().unwrap() >= 1.0, "{p}");
    assert_eq!(sink.retention.lock().unwrap()[0]["retentionInDays"], 7);
    // Data collected while the sink was down were kept: more than one cpu sample arrives at once.
    let first_call = m[0]["MetricData"].as_array().unwrap();
    assert!(
        first_call
            .iter()
            .filter(|d| d["MetricName"] == "mem_used_percent")
            .count()
            >= 1
    );
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
