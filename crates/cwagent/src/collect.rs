//! Host metric collectors reading Linux /proc and statvfs: cpu (/proc/stat), mem and swap
//! (/proc/meminfo), disk (/proc/self/mounts + statvfs), net (/proc/net/dev) and processes
//! (/proc/[pid]/stat). Counters become rates or per-interval deltas from the previous sample, as
//! the CloudWatch agent publishes them; the first sample of a counter publishes nothing.
//! Metric names and units are the CloudWatch agent's.

use std::collections::HashMap;
use std::fs;

use crate::config::{Measurement, Plugin, PluginKind};

/// One metric value before publishing.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: String,
    pub unit: &'static str,
    pub value: f64,
    pub dims: Vec<(String, String)>,
}

/// The CloudWatch agent's unit for a metric name.
pub fn unit_of(name: &str) -> &'static str {
    if name.ends_with("_percent") || name.starts_with("cpu_usage_") || name == "procstat_cpu_usage"
    {
        "Percent"
    } else if name.starts_with("processes_")
        || name.starts_with("cpu_time_")
        || name.contains("inodes")
    {
        "None"
    } else if name.starts_with("net_bytes_") {
        "Bytes"
    } else if name.starts_with("net_") {
        "Count"
    } else if name.starts_with("mem_")
        || name.starts_with("swap_")
        || name.starts_with("disk_")
        || name.starts_with("procstat_memory_")
    {
        "Bytes"
    } else {
        "None"
    }
}

/// CPU jiffies of one /proc/stat line: user nice system idle iowait irq softirq steal guest guest_nice.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTimes([u64; 10]);

impl CpuTimes {
    /// Total time (guest is already counted in user, guest_nice in nice).
    fn total(&self) -> u64 {
        self.0[..8].iter().sum()
    }
}

const CPU_FIELDS: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

fn read_cpu() -> HashMap<String, CpuTimes> {
    let mut out = HashMap::new();
    let Ok(text) = fs::read_to_string("/proc/stat") else {
        return out;
    };
    for line in text.lines().filter(|l| l.starts_with("cpu")) {
        let mut it = line.split_ascii_whitespace();
        let Some(name) = it.next() else { continue };
        let mut t = CpuTimes::default();
        for (i, v) in it.take(10).enumerate() {
            t.0[i] = v.parse().unwrap_or(0);
        }
        let key = if name == "cpu" {
            "cpu-total".to_string()
        } else {
            name.to_string()
        };
        out.insert(key, t);
    }
    out
}

/// /proc/meminfo in bytes, by key.
pub fn read_meminfo() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    if let Ok(text) = fs::read_to_string("/proc/meminfo") {
        for line in text.lines() {
            let Some((k, rest)) = line.split_once(':') else {
                continue;
            };
            let mut it = rest.split_ascii_whitespace();
            let Some(v) = it.next().and_then(|v| v.parse::<u64>().ok()) else {
                continue;
            };
            let mult = if it.next() == Some("kB") { 1024 } else { 1 };
            out.insert(k.to_string(), v * mult);
        }
    }
    out
}

/// Per-interface counters of /proc/net/dev: bytes_recv packets_recv err_in drop_in bytes_sent packets_sent err_out drop_out.
fn read_net() -> HashMap<String, [u64; 8]> {
    let mut out = HashMap::new();
    let Ok(text) = fs::read_to_string("/proc/net/dev") else {
        return out;
    };
    for line in text.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        let v: Vec<u64> = rest
            .split_ascii_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            iface.trim().to_string(),
            [v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11]],
        );
    }
    out
}

const NET_FIELDS: [&str; 8] = [
    "bytes_recv",
    "packets_recv",
    "err_in",
    "drop_in",
    "bytes_sent",
    "packets_sent",
    "err_out",
    "drop_out",
];

/// A mount from /proc/self/mounts.
#[derive(Debug, Clone)]
pub struct Mount {
    pub device: String,
    pub path: String,
    pub fstype: String,
}

pub fn read_mounts() -> Vec<Mount> {
    let Ok(text) = fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_ascii_whitespace();
            let unescape = |s: &str| s.replace("\\040", " ").replace("\\011", "\t");
            Some(Mount {
                device: unescape(it.next()?),
                path: unescape(it.next()?),
                fstype: it.next()?.to_string(),
            })
        })
        .collect()
}

/// Pseudo file systems never reported (they have no blocks).
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
];

/// The system collectors' state between intervals.
#[derive(Debug, Default)]
pub struct SystemCollector {
    cpu: HashMap<String, CpuTimes>,
    net: HashMap<String, [u64; 8]>,
}

/// Keep `name` if the plugin asked for it (or asked for nothing), applying rename/unit.
fn emit(
    out: &mut Vec<Datum>,
    wanted: &[Measurement],
    name: &str,
    value: f64,
    dims: &[(String, String)],
) {
    if !value.is_finite() {
        return;
    }
    let (name, unit) = if wanted.is_empty() {
        (name.to_string(), unit_of(name))
    } else {
        let Some(m) = wanted.iter().find(|m| m.name == name) else {
            return;
        };
        let unit = m
            .unit
            .as_deref()
            .and_then(|u| KNOWN_UNITS.iter().find(|k| **k == u).copied())
            .unwrap_or_else(|| unit_of(name));
        (m.rename.clone().unwrap_or_else(|| name.to_string()), unit)
    };
    out.push(Datum {
        name,
        unit,
        value,
        dims: dims.to_vec(),
    });
}

/// CloudWatch's StandardUnit values.
pub const KNOWN_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn wants(resources: &[String], item: &str) -> bool {
    resources.is_empty() || resources.iter().any(|r| r == "*" || r == item)
}

impl SystemCollector {
    /// A collector primed with the current counters, so the first `collect` has deltas.
    pub fn new() -> SystemCollector {
        SystemCollector {
            cpu: read_cpu(),
            net: read_net(),
        }
    }

    /// One sample of `plugin`.
    pub fn collect(&mut self, plugin: &Plugin) -> Vec<Datum> {
        let mut out = Vec::new();
        let m = &plugin.measurements;
        match plugin.kind {
            PluginKind::Cpu => {
                let now = read_cpu();
                for (cpu, t) in &now {
                    let is_total = cpu == "cpu-total";
                    if is_total && !plugin.totalcpu {
                        continue;
                    }
                    // Per-core only when resources name the core or "*".
                    if !is_total && !plugin.resources.iter().any(|r| r == "*" || r == cpu) {
                        continue;
                    }
                    let Some(prev) = self.cpu.get(cpu) else {
                        continue;
                    };
                    let dt = t.total().saturating_sub(prev.total()) as f64;
                    if dt <= 0.0 {
                        continue;
                    }
                    let dims = vec![("cpu".to_string(), cpu.clone())];
                    let d = |i: usize| t.0[i].saturating_sub(prev.0[i]) as f64;
                    for (i, f) in CPU_FIELDS.iter().enumerate() {
                        emit(
                            &mut out,
                            m,
                            &format!("cpu_usage_{f}"),
                            d(i) / dt * 100.0,
                            &dims,
                        );
                        emit(&mut out, m, &format!("cpu_time_{f}"), d(i) / 100.0, &dims);
                    }
                    let active = 100.0 - (d(3) + d(4)) / dt * 100.0;
                    emit(&mut out, m, "cpu_usage_active", active.max(0.0), &dims);
                    emit(
                        &mut out,
                        m,
                        "cpu_time_active",
                        (dt - d(3) - d(4)) / 100.0,
                        &dims,
                    );
                }
                self.cpu = now;
            }
            PluginKind::Mem => {
                let mi = read_meminfo();
                let g = |k: &str| *mi.get(k).unwrap_or(&0) as f64;
                let total = g("MemTotal");
                let available = if mi.contains_key("MemAvailable") {
                    g("MemAvailable")
                } else {
                    g("MemFree") + g("Buffers") + g("Cached")
                };
                let used = total - available;
                for (name, v) in [
                    ("mem_total", total),
                    ("mem_available", available),
                    ("mem_used", used),
                    ("mem_free", g("MemFree")),
                    ("mem_cached", g("Cached")),
                    ("mem_buffered", g("Buffers")),
                    ("mem_active", g("Active")),
                    ("mem_inactive", g("Inactive")),
                    ("mem_shared", g("Shmem")),
                    ("mem_used_percent", used / total * 100.0),
                    ("mem_available_percent", available / total * 100.0),
                ] {
                    emit(&mut out, m, name, v, &[]);
                }
            }
            PluginKind::Swap => {
                let mi = read_meminfo();
                let total = *mi.get("SwapTotal").unwrap_or(&0) as f64;
                let free = *mi.get("SwapFree").unwrap_or(&0) as f64;
                let used = total - free;
                emit(&mut out, m, "swap_free", free, &[]);
                emit(&mut out, m, "swap_used", used, &[]);
                let pct = if total > 0.0 {
                    used / total * 100.0
                } else {
                    0.0
                };
                emit(&mut out, m, "swap_used_percent", pct, &[]);
            }
            PluginKind::Disk => {
                for mnt in read_mounts() {
                    if PSEUDO_FS.contains(&mnt.fstype.as_str())
                        || plugin.ignore_fs.contains(&mnt.fstype)
                        || !wants(&plugin.resources, &mnt.path)
                    {
                        continue;
                    }
                    let Ok(st) = rustix::fs::statvfs(mnt.path.as_str()) else {
                        continue;
                    };
                    if st.f_blocks == 0 {
                        continue;
                    }
                    let fr = st.f_frsize as f64;
                    let total = st.f_blocks as f64 * fr;
                    let free = st.f_bavail as f64 * fr;
                    let used = (st.f_blocks - st.f_bfree) as f64 * fr;
                    let dims = vec![
                        (
                            "device".to_string(),
                            mnt.device.trim_start_matches("/dev/").to_string(),
                        ),
                        ("fstype".to_string(), mnt.fstype.clone()),
                        ("path".to_string(), mnt.path.clone()),
                    ];
                    let pct = if used + free > 0.0 {
                        used / (used + free) * 100.0
                    } else {
                        0.0
                    };
                    emit(&mut out, m, "disk_total", total, &dims);
                    emit(&mut out, m, "disk_free", free, &dims);
                    emit(&mut out, m, "disk_used", used, &dims);
                    emit(&mut out, m, "disk_used_percent", pct, &dims);
                    emit(&mut out, m, "disk_inodes_total", st.f_files as f64, &dims);
                    emit(&mut out, m, "disk_inodes_free", st.f_ffree as f64, &dims);
                    emit(
                        &mut out,
                        m,
                        "disk_inodes_used",
                        st.f_files.saturating_sub(st.f_ffree) as f64,
                        &dims,
                    );
                }
            }
            PluginKind::Net => {
                let now = read_net();
                for (iface, c) in &now {
                    let listed = plugin.resources.iter().any(|r| r == iface);
                    if (iface == "lo" && !listed) || !wants(&plugin.resources, iface) {
                        continue;
                    }
                    let Some(prev) = self.net.get(iface) else {
                        continue;
                    };
                    let dims = vec![("interface".to_string(), iface.clone())];
                    for (i, f) in NET_FIELDS.iter().enumerate() {
                        emit(
                            &mut out,
                            m,
                            &format!("net_{f}"),
                            c[i].saturating_sub(prev[i]) as f64,
                            &dims,
                        );
                    }
                }
                self.net = now;
            }
            PluginKind::Processes => {
                let mut counts: HashMap<&str, f64> = HashMap::new();
                let (mut total, mut threads) = (0.0, 0.0);
                for (_, stat) in crate::procstat::all_stats() {
                    total += 1.0;
                    threads += stat.threads as f64;
                    let k = match stat.state {
                        'R' => "running",
                        'S' => "sleeping",
                        'D' => "blocked",
                        'Z' => "zombies",
                        'T' | 't' => "stopped",
                        'I' => "idle",
                        'X' | 'x' => "dead",
                        'W' => "paging",
                        _ => "unknown",
                    };
                    *counts.entry(k).or_default() += 1.0;
                }
                for k in [
                    "running", "sleeping", "blocked", "zombies", "stopped", "idle", "dead",
                    "paging",
                ] {
                    emit(
                        &mut out,
                        m,
                        &format!("processes_{k}"),
                        counts.get(k).copied().unwrap_or(0.0),
                        &[],
                    );
                }
                emit(&mut out, m, "processes_total", total, &[]);
                emit(&mut out, m, "processes_total_threads", threads, &[]);
            }
        }
        for d in &mut out {
            for (k, v) in &plugin.append_dimensions {
                d.dims.push((k.clone(), v.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(kind: PluginKind, ms: &[&str]) -> Plugin {
        Plugin {
            kind,
            measurements: ms
                .iter()
                .map(|n| Measurement {
                    name: n.to_string(),
                    rename: None,
                    unit: None,
                })
                .collect(),
            resources: vec!["*".into()],
            totalcpu: true,
            ignore_fs: vec![],
            interval: None,
            append_dimensions: Default::default(),
        }
    }

    fn find<'a>(d: &'a [Datum], name: &str) -> Vec<&'a Datum> {
        d.iter().filter(|x| x.name == name).collect()
    }

    #[test]
    fn cpu_from_real_proc_sums_to_100() {
        let mut c = SystemCollector::new();
        // Burn a little CPU so the counters move, then sample.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < deadline {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        let d = c.collect(&plugin(PluginKind::Cpu, &[]));
        let total: Vec<_> = d
            .iter()
            .filter(|x| x.name.starts_with("cpu_usage_") && x.dims[0].1 == "cpu-total")
            .collect();
        assert!(!total.is_empty(), "no cpu-total data: {d:?}");
        let sum: f64 = total
            .iter()
            .filter(|x| {
                [
                    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
                ]
                .iter()
                .any(|f| x.name == format!("cpu_usage_{f}"))
            })
            .map(|x| x.value)
            .sum();
        assert!((sum - 100.0).abs() < 0.01, "sum {sum}");
        assert!(find(&d, "cpu_usage_idle")
            .iter()
            .all(|x| x.unit == "Percent"));
        assert!(find(&d, "cpu_usage_user")
            .iter()
            .any(|x| x.dims[0].1 == "cpu0"));
    }

    #[test]
    fn mem_swap_disk_net_processes_from_real_proc() {
        let mut c = SystemCollector::new();
        let d = c.collect(&plugin(
            PluginKind::Mem,
            &["mem_used_percent", "mem_available"],
        ));
        assert_eq!(d.len(), 2, "{d:?}");
        let pct = find(&d, "mem_used_percent")[0];
        assert!(pct.value > 0.0 && pct.value < 100.0 && pct.unit == "Percent");
        assert_eq!(find(&d, "mem_available")[0].unit, "Bytes");

        let d = c.collect(&plugin(PluginKind::Swap, &[]));
        assert_eq!(find(&d, "swap_used_percent").len(), 1);

        let mut p = plugin(PluginKind::Disk, &["disk_used_percent", "disk_free"]);
        p.resources = vec!["/".into()];
        let d = c.collect(&p);
        let root = find(&d, "disk_used_percent");
        assert_eq!(root.len(), 1, "{d:?}");
        assert!(root[0].dims.iter().any(|(k, v)| k == "path" && v == "/"));
        assert!(root[0].dims.iter().any(|(k, _)| k == "fstype"));
        assert!(find(&d, "disk_free")[0].value > 0.0);
        p.ignore_fs = vec![root[0].dims[1].1.clone()];
        assert!(c.collect(&p).is_empty());

        let mut p = plugin(PluginKind::Net, &["net_bytes_sent", "net_bytes_recv"]);
        p.resources = vec!["lo".into()];
        let d = c.collect(&p);
        assert_eq!(find(&d, "net_bytes_sent").len(), 1, "{d:?}");
        assert_eq!(find(&d, "net_bytes_sent")[0].unit, "Bytes");

        let d = c.collect(&plugin(PluginKind::Processes, &[]));
        let total = find(&d, "processes_total")[0].value;
        assert!(total >= 1.0);
        let by_state: f64 = [
            "running", "sleeping", "blocked", "zombies", "stopped", "idle", "dead", "paging",
        ]
        .iter()
        .map(|k| find(&d, &format!("processes_{k}"))[0].value)
        .sum();
        assert!(
            by_state <= total && by_state >= total - 2.0,
            "{by_state} of {total}"
        );
        assert!(find(&d, "processes_total_threads")[0].value >= total);
        assert_eq!(find(&d, "processes_total")[0].unit, "None");
    }

    #[test]
    fn rename_and_unit_apply() {
        let mut p = plugin(PluginKind::Mem, &[]);
        p.measurements = vec![Measurement {
            name: "mem_used_percent".into(),
            rename: Some("MemoryUsed".into()),
            unit: Some("Percent".into()),
        }];
        p.append_dimensions.insert("Role".into(), "web".into());
        let d = SystemCollector::new().collect(&p);
        assert_eq!(d[0].name, "MemoryUsed");
        assert_eq!(d[0].dims, vec![("Role".to_string(), "web".to_string())]);
    }
}
