//! `opsloop logs tail` and `opsloop logs query` end to end: the real binary serves on a free
//! loopback port with a fresh data directory (it generates `credentials.json`), events go in
//! through signed PutLogEvents over HTTP, and the subcommands — separate processes of the same
//! binary, signing with the key pair they find in the data directory or in `AWS_*` variables —
//! print what the server holds. `--follow` must show an event put after it started, within a
//! deadline.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opsloop::cli::HttpLogs;
use opsloop_logs::cli::LogsClient;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_opsloop");

/// The server process, SIGKILLed on drop.
struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A command of the binary with no AWS / opsloop credentials in its environment.
fn bare(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "OPSLOOP_ACCESS_KEY_ID",
        "OPSLOOP_SECRET_ACCESS_KEY",
        "OPSLOOP_CONFIG",
        "OPSLOOP_DATA_DIR",
    ] {
        cmd.env_remove(k);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn start(data: &Path) -> Server {
    let addr = free_addr();
    let log = std::fs::File::create(data.with_extension("log")).unwrap();
    let child = bare(&["server", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Server {
        child,
        endpoint: format!("http://{addr}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The generated key pair, once the server wrote it.
fn keys(data: &Path) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("credentials.json")) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                return (
                    v["access_key_id"].as_str().unwrap().to_string(),
                    v["secret_access_key"].as_str().unwrap().to_string(),
                );
            }
        }
        assert!(Instant::now() < deadline, "no credentials.json");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn call(c: &HttpLogs, op: &str, input: Value) -> Value {
    c.call(op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {}: {}", e.kind, e.message))
}

async fn ready(c: &HttpLogs) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.call("DescribeLogGroups", json!({})).await.is_err() {
        assert!(Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put(c: &HttpLogs, events: &[(i64, &str)]) {
    let events: Vec<Value> = events
        .iter()
        .map(|(ts, m)| json!({"timestamp": ts, "message": m}))
        .collect();
    call(
        c,
        "PutLogEvents",
        json!({"logGroupName": "app", "logStreamName": "web-1", "logEvents": events}),
    )
    .await;
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_query_and_follow_against_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start(&data);
    let (id, secret) = keys(&data);
    let client = HttpLogs::with_keys(&server.endpoint, &id, &secret, "us-east-1").unwrap();
    ready(&client).await;
    call(&client, "CreateLogGroup", json!({"logGroupName": "app"})).await;
    call(
        &client,
        "CreateLogStream",
        json!({"logGroupName": "app", "logStreamName": "web-1"}),
    )
    .await;
    let t0 = now_ms() - 60_000;
    put(
        &client,
        &[
            (t0, "INFO start user=alice"),
            (t0 + 1, "ERROR boom user=bob"),
            (t0 + 2, "INFO ok user=alice"),
            (t0 + 3, "ERROR again user=alice"),
            (t0 + 4, "INFO done user=carol"),
        ],
    )
    .await;
    let data_dir = data.to_str().unwrap();
    let endpoint = server.endpoint.as_str();

    // tail with the key pair from the data directory
    let text = stdout(
        &bare(&[
            "logs",
            "tail",
            "app",
            "--since",
            "5m",
            "--endpoint-url",
            endpoint,
            "--data-dir",
            data_dir,
        ])
        .output()
        .unwrap(),
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].ends_with(" web-1 INFO start user=alice"), "{text}");
    assert!(lines[4].ends_with(" web-1 INFO done user=carol"), "{text}");
    let first_time = opsloop_logs::insights::eval::format_time(t0);
    assert!(lines[0].starts_with(&first_time), "{text}");

    // a filter pattern, and credentials from AWS_* variables instead
    let text = stdout(
        bare(&[
            "logs",
            "tail",
            "app",
            "--filter-pattern",
            "ERROR",
            "--endpoint-url",
            endpoint,
        ])
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .output()
        .as_ref()
        .unwrap(),
    );
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|l| l.contains("ERROR")), "{text}");

    // a query printed as a table
    let text = stdout(
        bare(&[
            "logs", "query", "app",
            r"fields @message | parse @message /user=(?<user>\S+)/ | stats count(*) as n by user | sort n desc",
            "--start", "10m", "--endpoint-url", endpoint, "--data-dir", data_dir,
        ])
        .output()
        .as_ref()
        .unwrap(),
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split('|').map(str::trim).collect::<Vec<_>>(),
        ["user", "n"],
        "{text}"
    );
    assert!(lines[1].starts_with("-"), "{text}");
    assert_eq!(
        lines[2].split('|').map(str::trim).collect::<Vec<_>>(),
        ["alice", "3"],
        "{text}"
    );
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[5].starts_with("3 rows, 5 records matched"), "{text}");
    let text = stdout(
        bare(&[
            "logs",
            "query",
            "app",
            "filter @message like /ERROR/ | stats count() as errors",
            "--endpoint-url",
            endpoint,
            "--data-dir",
            data_dir,
        ])
        .output()
        .as_ref()
        .unwrap(),
    );
    assert_eq!(text.lines().nth(2).map(str::trim), Some("2"), "{text}");

    // errors: an unknown group, a bad query, a wrong key, no server
    let out = bare(&[
        "logs",
        "tail",
        "nope",
        "--endpoint-url",
        endpoint,
        "--data-dir",
        data_dir,
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let out = bare(&[
        "logs",
        "query",
        "app",
        "stats count( by",
        "--endpoint-url",
        endpoint,
        "--data-dir",
        data_dir,
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MalformedQueryException"), "{err}");
    let out = bare(&["logs", "tail", "app", "--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    let dead = format!("http://{}", free_addr());
    let out = bare(&[
        "logs",
        "tail",
        "app",
        "--endpoint-url",
        &dead,
        "--data-dir",
        data_dir,
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");

    // --follow prints an event put after it started
    let mut follower = bare(&[
        "logs",
        "tail",
        "app",
        "--follow",
        "--since",
        "5m",
        "--poll-ms",
        "100",
        "--endpoint-url",
        endpoint,
        "--data-dir",
        data_dir,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let pipe = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{needle:?} not printed; got {seen:?}");
            if let Ok(l) = rx.recv_timeout(left) {
                seen.push(l);
            }
        }
    };
    let mut seen = Vec::new();
    wait_for("done user=carol", &mut seen);
    put(&client, &[(now_ms(), "WARN followed user=dave")]).await;
    wait_for("WARN followed user=dave", &mut seen);
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(
        seen.iter().filter(|l| l.contains("followed")).count(),
        1,
        "printed once: {seen:?}"
    );
    assert_eq!(seen.len(), 6, "{seen:?}");
    drop(server);
}
