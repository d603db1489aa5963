//! End to end: the real `opsloop server` (built with `cargo build -p opsloop`), `run` with the
//! SigV4 HTTP sink at a 1-second interval, and the data read back through the CloudWatch and
//! Logs APIs (ListMetrics / GetMetricData by InstanceId, GetLogEvents).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opsloop_cwagent::{AgentConfig, HttpSink, HttpSinkConfig};
use serde_json::{json, Value};

/// Kills a child process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug/opsloop");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "opsloop"])
        .current_dir(&root)
        .status()
        .expect("run cargo build -p opsloop");
    assert!(
        status.success() || bin.exists(),
        "cargo build -p opsloop failed and no server binary exists"
    );
    bin
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn poll<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_logs_reach_the_real_server() {
    let bin = server_binary();
    let port = free_port();
    let _server = Guard(
        Command::new(&bin)
            .args(["server", "--ephemeral", "--auth", "any-key", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start opsloop server"),
    );
    let sink = Arc::new(
        HttpSink::new(HttpSinkConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            region: "us-east-1".into(),
            access_key_id: "AKIDCWAGENTTEST".into(),
            secret_access_key: "secret".into(),
            session_token: None,
            timeout: Duration::from_secs(10),
        })
        .unwrap(),
    );
    poll("server to answer", 60, async || {
        sink.cloudwatch("ListMetrics", &json!({})).await.ok()
    })
    .await;

    // A process for procstat to count, and a log file to tail.
    let marker = format!("cwagent-e2e-{}", std::process::id());
    // A shell blocked in the `read` builtin: it forks nothing, so exactly one process carries the
    // marker (a loop of `sleep`s forks children that carry it until they exec, and a sample taken
    // then counts two; one left at the kill outlives the test).
    let _watched = Guard(
        Command::new("sh")
            .arg("-c")
            .arg(format!("read _ # {marker}"))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "line one\nline two\n").unwrap();
    let cfg = format!(
        r#"{{"agent": {{"metrics_collection_interval": 1}},
          "metrics": {{"namespace": "CWAgent", "append_dimensions": {{"InstanceId": "${{aws:InstanceId}}"}},
            "metrics_collected": {{
              "cpu": {{"measurement": ["cpu_usage_idle", "cpu_usage_user"], "totalcpu": true}},
              "mem": {{"measurement": ["mem_used_percent"]}},
              "disk": {{"measurement": ["used_percent"], "resources": ["/"]}},
              "procstat": [{{"pattern": "{marker}", "measurement": ["pid_count"]}}]}}}},
          "logs": {{"logs_collected": {{"files": {{"collect_list": [
            {{"file_path": "{}/*.log", "log_group_name": "/opsloop/cwagent-e2e", "log_stream_name": "{{instance_id}}", "retention_in_days": 7}}]}}}}}}}}"#,
        logs.display()
    );
    let config = AgentConfig::parse(&cfg).unwrap();
    let node = "mi-0abc1234def567890";
    let (tx, rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(opsloop_cwagent::run(
        config,
        sink.clone(),
        node.to_string(),
        dir.path().join("state"),
        rx,
    ));

    let by_node = json!([{"Name": "InstanceId", "Value": node}]);
    let names = poll("metrics listed by InstanceId", 30, async || {
        let r = sink
            .cloudwatch(
                "ListMetrics",
                &json!({"Namespace": "CWAgent", "Dimensions": by_node}),
            )
            .await
            .ok()?;
        let names: Vec<String> = r["Metrics"]
            .as_array()?
            .iter()
            .filter_map(|m| m["MetricName"].as_str().map(String::from))
            .collect();
        [
            "cpu_usage_idle",
            "cpu_usage_user",
            "mem_used_percent",
            "disk_used_percent",
            "procstat_lookup_pid_count",
        ]
        .iter()
        .all(|n| names.iter().any(|x| x == n))
        .then_some(names)
    })
    .await;
    assert!(names.len() >= 5, "{names:?}");

    let query = |name: &str, dims: Value| {
        json!({
            "MetricDataQueries": [{"Id": "m", "MetricStat": {
                "Metric": {"Namespace": "CWAgent", "MetricName": name, "Dimensions": dims},
                "Period": 1, "Stat": "Maximum"}}],
            "StartTime": now() - 120.0, "EndTime": now() + 60.0,
        })
    };
    let count_dims = json!([
        {"Name": "InstanceId", "Value": node},
        {"Name": "pattern", "Value": marker},
        {"Name": "pid_finder", "Value": "native"},
    ]);
    let values = poll("procstat_lookup_pid_count samples", 30, async || {
        let r = sink
            .cloudwatch(
                "GetMetricData",
                &query("procstat_lookup_pid_count", count_dims.clone()),
            )
            .await
            .ok()?;
        let v: Vec<f64> = r["MetricDataResults"][0]["Values"]
            .as_array()?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        (v.len() >= 2).then_some(v)
    })
    .await;
    assert!(
        values.iter().all(|v| *v == 1.0),
        "one watched process: {values:?}"
    );
    let mem_dims = json!([{"Name": "InstanceId", "Value": node}]);
    let mem = poll("mem_used_percent samples", 30, async || {
        let r = sink
            .cloudwatch(
                "GetMetricData",
                &query("mem_used_percent", mem_dims.clone()),
            )
            .await
            .ok()?;
        let v: Vec<f64> = r["MetricDataResults"][0]["Values"]
            .as_array()?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert!(mem.iter().all(|v| *v > 0.0 && *v < 100.0), "{mem:?}");

    // Tailed lines, including one appended while running.
    std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("app.log"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"line three\n"))
        .unwrap();
    let messages = poll("tailed lines", 30, async || {
        let r = sink
            .logs(
                "GetLogEvents",
                &json!({"logGroupName": "/opsloop/cwagent-e2e", "logStreamName": node, "startFromHead": true}),
            )
            .await
            .ok()?;
        let m: Vec<String> = r["events"]
            .as_array()?
            .iter()
            .filter_map(|e| e["message"].as_str().map(String::from))
            .collect();
        (m.len() >= 3).then_some(m)
    })
    .await;
    assert_eq!(messages, ["line one", "line two", "line three"]);
    let groups = sink
        .logs(
            "DescribeLogGroups",
            &json!({"logGroupNamePrefix": "/opsloop/cwagent-e2e"}),
        )
        .await
        .unwrap();
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 7);

    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .expect("run stops on shutdown")
        .unwrap()
        .unwrap();
}
