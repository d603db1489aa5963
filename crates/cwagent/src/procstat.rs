//! The `procstat` plugin: finds processes by `pid_file`, `exe` (regex on the process name) or
//! `pattern` (regex on the full command line) from /proc, and publishes
//! `procstat_lookup_pid_count` (dimensions: `pidfile`/`exe`/`pattern` plus `pid_finder=native`, as
//! the CloudWatch agent on Linux) and per-process `procstat_cpu_usage`, `procstat_memory_rss`,
//! `procstat_memory_vms`, `procstat_num_threads`, `procstat_cpu_time_user/system`, `procstat_pid`
//! (dimensions: the selector plus `process_name`). Also the process table used by `processes`.

use std::collections::HashMap;
use std::fs;
use std::time::Instant;

use crate::collect::Datum;
use crate::config::{ProcSelector, ProcstatConfig};

/// The fields of /proc/[pid]/stat we use.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub comm: String,
    pub state: char,
    /// utime + stime, clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    pub vsize: u64,
    pub rss_pages: u64,
}

/// Parse one /proc/[pid]/stat line (the command name may hold spaces and parentheses).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let v: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    if v.len() < 22 {
        return None;
    }
    let n = |i: usize| v[i].parse::<u64>().unwrap_or(0);
    Some(ProcStat {
        comm,
        state: v[0].chars().next()?,
        utime: n(11),
        stime: n(12),
        threads: n(17),
        vsize: n(20),
        rss_pages: n(21),
    })
}

fn pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn stat_of(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process's stat (processes that exit while scanning are skipped).
pub fn all_stats() -> Vec<(u32, ProcStat)> {
    pids()
        .into_iter()
        .filter_map(|p| Some((p, stat_of(p)?)))
        .collect()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    Some(String::from_utf8_lossy(&s).trim_end().to_string())
}

/// The pids `selector` selects now.
pub fn find(selector: &ProcSelector) -> Vec<(u32, ProcStat)> {
    match selector {
        ProcSelector::PidFile(path) => {
            let Some(pid) = fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            else {
                return Vec::new();
            };
            stat_of(pid).map(|s| vec![(pid, s)]).unwrap_or_default()
        }
        ProcSelector::Exe(_, re) => all_stats()
            .into_iter()
            .filter(|(_, s)| re.is_match(&s.comm))
            .collect(),
        ProcSelector::Pattern(_, re) => {
            // The agent itself counts too (a pattern may watch `opsloop agent`).
            pids()
                .into_iter()
                .filter(|&p| cmdline(p).is_some_and(|c| !c.is_empty() && re.is_match(&c)))
                .filter_map(|p| Some((p, stat_of(p)?)))
                .collect()
        }
    }
}

/// Per-process CPU time between samples.
#[derive(Debug, Default)]
pub struct ProcstatCollector {
    prev: HashMap<u32, (u64, Instant)>,
}

impl ProcstatCollector {
    /// One sample of `entry`.
    pub fn collect(&mut self, entry: &ProcstatConfig) -> Vec<Datum> {
        let found = find(&entry.selector);
        let (dim, val) = entry.selector.dimension();
        let tick = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        let now = Instant::now();
        let mut out = Vec::new();
        let mut push = |name: &str, value: f64, dims: Vec<(String, String)>| {
            let Some(m) = entry.measurements.iter().find(|m| m.name == name) else {
                return;
            };
            let unit = m
                .unit
                .as_deref()
                .and_then(|u| {
                    crate::collect::KNOWN_UNITS
                        .iter()
                        .find(|k| **k == u)
                        .copied()
                })
                .unwrap_or_else(|| crate::collect::unit_of(name));
            out.push(Datum {
                name: m.rename.clone().unwrap_or_else(|| name.to_string()),
                unit,
                value,
                dims,
            });
        };
        push(
            "procstat_lookup_pid_count",
            found.len() as f64,
            vec![
                (dim.to_string(), val.to_string()),
                ("pid_finder".to_string(), "native".to_string()),
            ],
        );
        for (pid, s) in &found {
            let dims = vec![
                (dim.to_string(), val.to_string()),
                ("process_name".to_string(), s.comm.clone()),
            ];
            let cpu = s.utime + s.stime;
            if let Some((prev, at)) = self.prev.get(pid) {
                let secs = now.duration_since(*at).as_secs_f64();
                if secs > 0.0 {
                    let usage = cpu.saturating_sub(*prev) as f64 / tick / secs * 100.0;
                    push("procstat_cpu_usage", usage, dims.clone());
                }
            }
            push(
                "procstat_memory_rss",
                s.rss_pages as f64 * page,
                dims.clone(),
            );
            push("procstat_memory_vms", s.vsize as f64, dims.clone());
            push("procstat_num_threads", s.threads as f64, dims.clone());
            push(
                "procstat_cpu_time_user",
                s.utime as f64 / tick,
                dims.clone(),
            );
            push(
                "procstat_cpu_time_system",
                s.stime as f64 / tick,
                dims.clone(),
            );
            push("procstat_pid", *pid as f64, dims);
        }
        self.prev.retain(|p, _| found.iter().any(|(f, _)| f == p));
        for (pid, s) in &found {
            self.prev.insert(*pid, (s.utime + s.stime, now));
        }
        for d in &mut out {
            for (k, v) in &entry.append_dimensions {
                d.dims.push((k.clone(), v.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Measurement;

    fn entry(sel: ProcSelector) -> ProcstatConfig {
        ProcstatConfig {
            selector: sel,
            measurements: [
                "procstat_lookup_pid_count",
                "procstat_cpu_usage",
                "procstat_memory_rss",
            ]
            .iter()
            .map(|n| Measurement {
                name: n.to_string(),
                rename: None,
                unit: None,
            })
            .collect(),
            interval: None,
            append_dimensions: Default::default(),
        }
    }

    fn count(d: &[Datum]) -> f64 {
        d.iter()
            .find(|x| x.name == "procstat_lookup_pid_count")
            .unwrap()
            .value
    }

    #[test]
    fn stat_line_with_odd_command_name() {
        let s = parse_stat("42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 5 0 1234 10485760 300 18446744073709551615").unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(
            (s.state, s.utime, s.stime, s.threads, s.vsize, s.rss_pages),
            ('S', 7, 3, 5, 10_485_760, 300)
        );
    }

    #[test]
    fn counts_a_spawned_process_by_pattern_exe_and_pidfile() {
        let marker = format!("cwagent-procstat-{}", std::process::id());
        let pat = regex::Regex::new(&regex::escape(&marker)).unwrap();
        let sel = ProcSelector::Pattern(marker.clone(), pat);
        let mut c = ProcstatCollector::default();
        assert_eq!(count(&c.collect(&entry(sel.clone()))), 0.0);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 30 # {marker}"))
            .spawn()
            .unwrap();
        // sh execs sleep: argv becomes `sleep 30`, so match on the shell only until exec. Use the
        // pid file and exe selectors for the long-lived process, and a second process for pattern.
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("p.pid");
        std::fs::write(&pidfile, child.id().to_string()).unwrap();
        let by_file = ProcSelector::PidFile(pidfile.display().to_string());
        let d = c.collect(&entry(by_file));
        assert_eq!(count(&d), 1.0);
        let lookup = d
            .iter()
            .find(|x| x.name == "procstat_lookup_pid_count")
            .unwrap();
        assert_eq!(lookup.dims[0].0, "pidfile");
        assert_eq!(lookup.unit, "None");
        assert!(d
            .iter()
            .any(|x| x.name == "procstat_memory_rss" && x.unit == "Bytes"));

        // A shell blocked in the `read` builtin keeps the marker in its argv and forks nothing:
        // a loop of `sleep`s would fork children that carry the shell's argv until they exec,
        // and one forked just before the kill outlives it, still matching the pattern.
        let mut py = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("read _ # {marker}"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let d = c.collect(&entry(sel.clone()));
            if count(&d) >= 1.0 {
                let lookup = d
                    .iter()
                    .find(|x| x.name == "procstat_lookup_pid_count")
                    .unwrap();
                assert_eq!(lookup.dims[0], ("pattern".to_string(), marker.clone()));
                break;
            }
            assert!(Instant::now() < deadline, "pattern never matched");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let exe = ProcSelector::Exe("^sleep$".into(), regex::Regex::new("^sleep$").unwrap());
        assert!(count(&c.collect(&entry(exe))) >= 1.0);
        child.kill().unwrap();
        child.wait().unwrap();
        py.kill().unwrap();
        py.wait().unwrap();
        assert_eq!(count(&c.collect(&entry(sel))), 0.0);
        let gone = ProcSelector::PidFile(pidfile.display().to_string());
        assert_eq!(count(&c.collect(&entry(gone))), 0.0);
    }
}
