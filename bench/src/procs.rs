//! Child processes under test (the opsloop server, Prometheus) and what `/proc` says about them:
//! CPU time, resident memory, and on-disk sizes of their data directories.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::awsclient::{free_loopback_addr, HttpConn};

/// Clock ticks per second for `/proc/<pid>/stat` CPU times.
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// User + system CPU seconds a process has used (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so fields 14/15 are at indexes 11/12.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck() as f64)
}

/// CPU seconds the whole machine has been busy (all CPUs: `/proc/stat` time that is not idle or
/// iowait).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    let busy = f
        .get(..8)?
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum::<u64>();
    Some(busy as f64 / clk_tck() as f64)
}

/// `VmRSS` of a process in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `(apparent bytes, allocated bytes)` of every file under `dir`.
pub fn dir_size(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let entry = entry?;
            let md = entry.metadata()?;
            if md.is_dir() {
                stack.push(entry.path());
            } else {
                total.0 += md.len();
                total.1 += md.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// A child process that is killed (SIGKILL) when dropped, unless it was stopped before.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// When `spawn` was called.
    pub spawned_at: Instant,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Spawn `cmd` (stdout and stderr to `log`).
    pub fn spawn(name: &str, mut cmd: Command, addr: SocketAddr, log: &Path) -> Result<Proc> {
        let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {name} ({:?})", cmd.get_program()))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            addr,
            log: log.to_path_buf(),
            spawned_at,
        })
    }

    /// Poll `GET path` until it answers 200; returns the time since spawn. Fails if the process
    /// exits or `deadline` passes.
    pub async fn wait_ready(&mut self, path: &str, deadline: Duration) -> Result<Duration> {
        loop {
            let probe = async {
                let mut c = HttpConn::connect(self.addr).await?;
                c.get(path).await
            };
            if let Ok(Ok((200, _))) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                return Ok(self.spawned_at.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready; log: {}",
                    self.name,
                    self.tail_log()
                );
            }
            if self.spawned_at.elapsed() > deadline {
                bail!(
                    "{} not ready after {deadline:?}; log: {}",
                    self.name,
                    self.tail_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The last lines of the log, for error messages.
    pub fn tail_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "{} (last lines:)\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then wait up to `grace` for exit (SIGKILL after that). Returns whether it exited
    /// on its own and how long that took.
    pub async fn terminate(&mut self, grace: Duration) -> Result<(bool, Duration)> {
        let start = Instant::now();
        if self.child.try_wait()?.is_some() {
            return Ok((true, Duration::ZERO));
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        while start.elapsed() < grace {
            if self.child.try_wait()?.is_some() {
                return Ok((true, start.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.kill()?;
        Ok((false, start.elapsed()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Credentials the bench gives the opsloop server (and signs with).
pub const BENCH_AKID: &str = "AKIAOPSLOOPBENCH0001";
pub const BENCH_SECRET: &str = "opsloop-bench-secret-key-not-a-real-secret";
pub const BENCH_ACCOUNT: &str = "111122223333";

/// Start `opsloop server` on a free loopback port with `data_dir`.
pub fn spawn_opsloop(bin: &Path, data_dir: &Path, log: &Path) -> Result<Proc> {
    std::fs::create_dir_all(data_dir)?;
    let addr = free_loopback_addr()?;
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .env("OPSLOOP_ACCESS_KEY_ID", BENCH_AKID)
        .env("OPSLOOP_SECRET_ACCESS_KEY", BENCH_SECRET)
        .env("OPSLOOP_ACCOUNT_ID", BENCH_ACCOUNT);
    Proc::spawn("opsloop", cmd, addr, log)
}

/// Start Prometheus on a free loopback port with its remote-write receiver, a minimal config (no
/// scrape jobs) and `dir/data` as its TSDB; everything else at its defaults.
pub fn spawn_prometheus(bin: &Path, dir: &Path) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n",
    )?;
    let addr = free_loopback_addr()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver");
    Proc::spawn("prometheus", cmd, addr, &dir.join("prometheus.log"))
}

/// Find an executable: `explicit`, else `name` next to this executable (the cargo target dir), else
/// on `PATH`.
pub fn find_binary(explicit: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("`{name}` not found next to this binary or on PATH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_proc_entries() {
        let pid = std::process::id();
        assert!(vm_rss_kib(pid).unwrap() > 0);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn sizes_a_directory() {
        let dir = std::env::temp_dir().join(format!("opsloop-bench-size-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.join("sub/b"), vec![0u8; 24]).unwrap();
        let (apparent, _) = dir_size(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(apparent, 1024);
    }
}
