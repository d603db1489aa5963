//! Runs a command's plugins on this host: each `aws:runShellScript` step is one `sh -c` of its
//! lines (joined by newlines) in its working directory (default: the command's directory in the
//! state dir), in its own process group; output is appended to a shared buffer the reporter drains
//! in chunks; on the step's timeout or a cancellation the whole process group is killed.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// What a command ended as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub plugin_name: String,
    pub status: &'static str,
    pub details: &'static str,
    pub code: i64,
}

/// Output produced and not yet reported: (stdout, stderr), behind a std mutex never held across
/// an await.
#[derive(Default)]
pub struct Buffer {
    inner: std::sync::Mutex<(String, String)>,
    /// Most characters kept per stream (none: unbounded, drained by the reporter).
    cap: Option<usize>,
}

impl Buffer {
    /// A buffer keeping at most `cap` characters of each stream (a step's own output).
    pub fn capped(cap: usize) -> Buffer {
        Buffer {
            inner: Default::default(),
            cap: Some(cap),
        }
    }

    pub fn push(&self, stderr: bool, text: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let buf = if stderr { &mut g.1 } else { &mut g.0 };
        match self.cap {
            None => buf.push_str(text),
            Some(cap) => {
                let have = buf.chars().count();
                if have < cap {
                    buf.extend(text.chars().take(cap - have));
                }
            }
        }
    }

    /// Take everything buffered: (stdout, stderr).
    pub fn take(&self) -> (String, String) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut g.0), std::mem::take(&mut g.1))
    }

    /// Put back output a failed report did not deliver (before anything newer).
    pub fn unshift(&self, out: String, err: String) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.insert_str(0, &out);
        g.1.insert_str(0, &err);
    }
}

/// Kill process group `pgid` (SIGKILL) with the system's `kill`.
fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Where a step's output goes: the shared buffer the reporter drains, and the step's own copy.
#[derive(Clone)]
struct Sinks {
    shared: Arc<Buffer>,
    own: Arc<Buffer>,
}

impl Sinks {
    fn push(&self, stderr: bool, text: &str) {
        self.shared.push(stderr, text);
        self.own.push(stderr, text);
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(mut r: R, out: Sinks, stderr: bool) {
    let mut buf = vec![0u8; 8192];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                carry.extend_from_slice(&buf[..n]);
                // Keep an incomplete UTF-8 sequence for the next read.
                let valid = match std::str::from_utf8(&carry) {
                    Ok(_) => carry.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => carry.len(),
                };
                let text = String::from_utf8_lossy(&carry[..valid]).into_owned();
                out.push(stderr, &text);
                carry.drain(..valid);
            }
        }
    }
    if !carry.is_empty() {
        out.push(stderr, &String::from_utf8_lossy(&carry));
    }
}

/// Run one shell step. `Err(())` means it was cancelled.
async fn run_shell(
    script: &str,
    dir: &Path,
    timeout: Duration,
    out: &Sinks,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Option<i64>, ()> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.push(true, &format!("failed to run the script: {e}\n"));
            return Ok(Some(1));
        }
    };
    let pgid = child.id().unwrap_or(0);
    let o = tokio::spawn(pump(
        child.stdout.take().expect("piped"),
        out.clone(),
        false,
    ));
    let e = tokio::spawn(pump(child.stderr.take().expect("piped"), out.clone(), true));
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let result = loop {
        tokio::select! {
            status = child.wait() => {
                break Ok(Some(status.ok().and_then(|s| s.code()).map(i64::from).unwrap_or(-1)));
            }
            _ = &mut deadline => {
                kill_group(pgid);
                let _ = child.wait().await;
                break Ok(None);
            }
            changed = cancel.changed() => {
                if changed.is_err() || *cancel.borrow() {
                    kill_group(pgid);
                    let _ = child.wait().await;
                    break Err(());
                }
            }
        }
    };
    // The group is gone (or finished): the pipes close; collect what is left.
    if result != Ok(Some(0)) || pgid != 0 {
        kill_group(pgid);
    }
    let _ = o.await;
    let _ = e.await;
    result
}

/// Characters of each step's own output kept for its result (GetCommandInvocation's cap).
pub const STEP_OUTPUT_CAP: usize = 24_000;

/// What one step (plugin) ended as.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    pub name: String,
    pub status: &'static str,
    pub details: &'static str,
    pub code: i64,
    /// The step's own output (each stream capped at [`STEP_OUTPUT_CAP`] characters).
    pub stdout: String,
    pub stderr: String,
    pub started: f64,
    pub ended: f64,
}

fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// This node's platform type as preconditions name it.
pub fn platform_type() -> &'static str {
    if cfg!(target_os = "macos") {
        "MacOS"
    } else {
        "Linux"
    }
}

/// The first precondition of `p` that does not hold on this node, if any. Only
/// `{"StringEquals": ["platformType", X]}` exists in schema 2.2; anything else does not hold.
fn unmet_precondition(p: &Value) -> Option<String> {
    let list = p["preconditions"].as_array()?;
    list.iter()
        .find(|pre| {
            let ops: Vec<&str> = pre["StringEquals"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            !matches!(ops.as_slice(), ["platformType", v] if *v == platform_type())
        })
        .map(|pre| pre.to_string())
}

/// Run a command's plugins in order, stopping at the first that does not succeed (a step whose
/// precondition does not hold is skipped: Success / Skipped). Returns the command's outcome and
/// each step's.
pub async fn run_plugins(
    plugins: Vec<Value>,
    default_dir: std::path::PathBuf,
    out: Arc<Buffer>,
    mut cancel: watch::Receiver<bool>,
) -> (Outcome, Vec<StepOutcome>) {
    let mut last = Outcome {
        plugin_name: String::new(),
        status: "Success",
        details: "Success",
        code: 0,
    };
    let mut steps = Vec::new();
    for p in &plugins {
        let name = p["name"].as_str().unwrap_or("step").to_string();
        last.plugin_name = name.clone();
        let sinks = Sinks {
            shared: out.clone(),
            own: Arc::new(Buffer::capped(STEP_OUTPUT_CAP)),
        };
        let started = epoch();
        let finish = |status: &'static str, details: &'static str, code: i64, sinks: &Sinks| {
            let (stdout, stderr) = sinks.own.take();
            StepOutcome {
                name: name.clone(),
                status,
                details,
                code,
                stdout,
                stderr,
                started,
                ended: epoch(),
            }
        };
        if let Some(pre) = unmet_precondition(p) {
            sinks.push(
                false,
                &format!("Step execution skipped due to unsatisfied preconditions: {pre}. Step name: {name}\n"),
            );
            steps.push(finish("Success", "Skipped", 0, &sinks));
            continue;
        }
        let action = p["action"].as_str().unwrap_or("");
        if action != "aws:runShellScript" {
            sinks.push(
                true,
                &format!("opsloop agent: action {action} is not supported on this node\n"),
            );
            steps.push(finish("Failed", "Failed", 1, &sinks));
            return (
                Outcome {
                    plugin_name: name,
                    status: "Failed",
                    details: "Failed",
                    code: 1,
                },
                steps,
            );
        }
        let script: Vec<String> = p["runCommand"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let dir = match p["workingDirectory"].as_str() {
            Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
            _ => {
                let _ = std::fs::create_dir_all(&default_dir);
                default_dir.clone()
            }
        };
        let timeout = Duration::from_secs(p["timeoutSeconds"].as_u64().unwrap_or(3600).max(1));
        let (status, details, code) =
            match run_shell(&script.join("\n"), &dir, timeout, &sinks, &mut cancel).await {
                Err(()) => ("Cancelled", "Cancelled", -1),
                Ok(None) => {
                    sinks.push(true, "\nfailed to run commands: the command timed out\n");
                    ("TimedOut", "ExecutionTimedOut", -1)
                }
                Ok(Some(0)) => ("Success", "Success", 0),
                Ok(Some(code)) => ("Failed", "Failed", code),
            };
        steps.push(finish(status, details, code, &sinks));
        if status != "Success" {
            return (
                Outcome {
                    plugin_name: name,
                    status,
                    details,
                    code,
                },
                steps,
            );
        }
    }
    (last, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(lines: &[&str], timeout: u64) -> Value {
        json!({"name": "runShellScript", "action": "aws:runShellScript", "runCommand": lines,
               "workingDirectory": "", "timeoutSeconds": timeout})
    }

    #[tokio::test]
    async fn runs_reports_exit_codes_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let (_tx, rx) = watch::channel(false);
        let out = Arc::new(Buffer::default());
        let (r, steps) = run_plugins(
            vec![step(&["echo Hello World", "pwd", "echo oops >&2"], 10)],
            dir.path().to_path_buf(),
            out.clone(),
            rx.clone(),
        )
        .await;
        assert_eq!((r.status, r.code), ("Success", 0));
        let (o, e) = out.take();
        assert_eq!(o, format!("Hello World\n{}\n", dir.path().display()));
        assert_eq!(e, "oops\n");
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].stdout, o);
        assert_eq!(steps[0].stderr, "oops\n");
        let (r, steps) = run_plugins(
            vec![step(&["exit 3"], 10), step(&["echo never"], 10)],
            dir.path().to_path_buf(),
            out.clone(),
            rx,
        )
        .await;
        assert_eq!((r.status, r.code), ("Failed", 3));
        assert_eq!(out.take().0, "");
        assert_eq!(steps.len(), 1);
    }

    #[tokio::test]
    async fn steps_whose_precondition_fails_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (_tx, rx) = watch::channel(false);
        let out = Arc::new(Buffer::default());
        let mut win = step(&["echo windows-only"], 10);
        win["name"] = json!("win");
        win["preconditions"] = json!([{"StringEquals": ["platformType", "Windows"]}]);
        let mut here = step(&["echo here"], 10);
        here["name"] = json!("here");
        here["preconditions"] = json!([{"StringEquals": ["platformType", platform_type()]}]);
        let (r, steps) =
            run_plugins(vec![win, here], dir.path().to_path_buf(), out.clone(), rx).await;
        assert_eq!((r.status, r.plugin_name.as_str()), ("Success", "here"));
        assert_eq!(
            steps
                .iter()
                .map(|s| (s.name.as_str(), s.status, s.details))
                .collect::<Vec<_>>(),
            [
                ("win", "Success", "Skipped"),
                ("here", "Success", "Success")
            ]
        );
        assert!(steps[0]
            .stdout
            .contains("skipped due to unsatisfied preconditions"));
        assert_eq!(steps[1].stdout, "here\n");
        assert!(!out.take().0.contains("windows-only"));
        let capped = Buffer::capped(3);
        capped.push(false, "héllo");
        capped.push(false, "more");
        assert_eq!(capped.take().0, "hél");
    }

    #[tokio::test]
    async fn timeout_and_cancel_kill_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-alive");
        let (_tx, rx) = watch::channel(false);
        let out = Arc::new(Buffer::default());
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let (r, _) = run_plugins(
            vec![step(&[&script], 1)],
            dir.path().to_path_buf(),
            out.clone(),
            rx,
        )
        .await;
        assert_eq!((r.status, r.details), ("TimedOut", "ExecutionTimedOut"));
        assert!(started.elapsed() < Duration::from_secs(3));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_plugins(
            vec![step(&["sleep 30"], 60)],
            dir.path().to_path_buf(),
            out,
            rx,
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(true).unwrap();
        let (r, _) = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status, "Cancelled");
        // The background child of the timed-out group was killed with it.
        tokio::time::sleep(Duration::from_millis(3500).saturating_sub(started.elapsed())).await;
        assert!(!marker.exists());
    }
}
