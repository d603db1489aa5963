//! The CloudWatch agent's JSON configuration file, the subset opsloop honours: `agent`,
//! `metrics` (namespace, append_dimensions, aggregation_dimensions, metrics_collected with cpu,
//! mem, disk, net, swap, processes and procstat) and `logs.logs_collected.files.collect_list`.
//! Unknown sections and keys are ignored with a warning; invalid values are a [`ConfigError`]
//! naming the field.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value};

/// A configuration problem, naming the JSON path of the offending field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The parsed configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `agent.metrics_collection_interval` (default 60 s).
    pub interval: Duration,
    /// `metrics`, if present.
    pub metrics: Option<MetricsConfig>,
    /// `logs.logs_collected.files.collect_list`.
    pub logs: Vec<LogFileConfig>,
    /// `logs.force_flush_interval` (default 5 s): the longest a read line waits before sending.
    pub logs_flush_interval: Duration,
    /// `agent.omit_hostname`: no `host` dimension even without append_dimensions.
    pub omit_hostname: bool,
    /// Warnings found while parsing (unknown sections, ignored keys).
    pub warnings: Vec<String>,
}

/// `metrics`.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub namespace: String,
    /// Dimension name → value template (`${aws:InstanceId}` is replaced by the node id).
    pub append_dimensions: BTreeMap<String, String>,
    pub aggregation_dimensions: Vec<Vec<String>>,
    pub plugins: Vec<Plugin>,
    pub procstat: Vec<ProcstatConfig>,
}

/// The system plugins of `metrics_collected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginKind {
    Cpu,
    Mem,
    Disk,
    Net,
    Swap,
    Processes,
}

impl PluginKind {
    fn from_key(k: &str) -> Option<PluginKind> {
        Some(match k {
            "cpu" => PluginKind::Cpu,
            "mem" => PluginKind::Mem,
            "disk" => PluginKind::Disk,
            "net" => PluginKind::Net,
            "swap" => PluginKind::Swap,
            "processes" => PluginKind::Processes,
            _ => return None,
        })
    }
    /// The metric-name prefix (`cpu_`, `mem_` …).
    pub fn prefix(self) -> &'static str {
        match self {
            PluginKind::Cpu => "cpu",
            PluginKind::Mem => "mem",
            PluginKind::Disk => "disk",
            PluginKind::Net => "net",
            PluginKind::Swap => "swap",
            PluginKind::Processes => "processes",
        }
    }
}

/// One requested measurement: full metric name (`cpu_usage_idle`), optional rename and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub rename: Option<String>,
    pub unit: Option<String>,
}

/// One system plugin section.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub kind: PluginKind,
    /// Empty = every default measurement of the plugin.
    pub measurements: Vec<Measurement>,
    /// `resources` (cpu cores, mount points, interfaces); `*` = all. Empty = plugin default.
    pub resources: Vec<String>,
    /// cpu: `totalcpu` (default true).
    pub totalcpu: bool,
    /// disk: `ignore_file_system_types`.
    pub ignore_fs: Vec<String>,
    pub interval: Option<Duration>,
    pub append_dimensions: BTreeMap<String, String>,
}

/// How a procstat entry selects processes.
#[derive(Debug, Clone)]
pub enum ProcSelector {
    /// `pid_file`: the pid written in this file.
    PidFile(String),
    /// `exe`: regex "contains" match on the process name.
    Exe(String, Regex),
    /// `pattern`: regex "contains" match on the full command line.
    Pattern(String, Regex),
}

impl ProcSelector {
    /// The dimension the CloudWatch agent uses for this selector, and its value.
    pub fn dimension(&self) -> (&'static str, &str) {
        match self {
            ProcSelector::PidFile(p) => ("pidfile", p),
            ProcSelector::Exe(s, _) => ("exe", s),
            ProcSelector::Pattern(s, _) => ("pattern", s),
        }
    }
}

/// One `procstat` entry.
#[derive(Debug, Clone)]
pub struct ProcstatConfig {
    pub selector: ProcSelector,
    pub measurements: Vec<Measurement>,
    pub interval: Option<Duration>,
    pub append_dimensions: BTreeMap<String, String>,
}

/// One `collect_list` entry.
#[derive(Debug, Clone)]
pub struct LogFileConfig {
    pub file_path: String,
    pub log_group_name: String,
    /// Template; `{instance_id}`, `{hostname}`, `{ip_address}` are replaced. Default `{instance_id}`.
    pub log_stream_name: String,
    pub timestamp_format: Option<String>,
    pub multi_line_start_pattern: Option<Regex>,
    pub retention_in_days: Option<i64>,
}

/// Retention values CloudWatch Logs accepts.
const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

struct Ctx {
    warnings: Vec<String>,
}

impl Ctx {
    fn unknown(&mut self, path: &str, obj: &Map<String, Value>, known: &[&str]) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                let w = format!("{path}.{k}: not supported by opsloop, ignored");
                tracing::warn!(field = %format!("{path}.{k}"), "unknown configuration key ignored");
                self.warnings.push(w);
            }
        }
    }
}

fn obj<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object()
        .ok_or_else(|| invalid(field, "must be a JSON object"))
}

fn string(v: &Value, field: &str) -> Result<String, ConfigError> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(invalid(field, "must be a non-empty string")),
    }
}

fn interval(v: &Value, field: &str) -> Result<Duration, ConfigError> {
    match v.as_u64() {
        Some(n) if n >= 1 => Ok(Duration::from_secs(n)),
        _ => Err(invalid(field, "must be a whole number of seconds >= 1")),
    }
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, ConfigError> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(field, "must be an array of strings"))?;
    arr.iter()
        .enumerate()
        .map(|(i, s)| string(s, &format!("{field}[{i}]")))
        .collect()
}

fn dims(v: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let Some(v) = v else {
        return Ok(BTreeMap::new());
    };
    obj(v, field)?
        .iter()
        .map(|(k, val)| Ok((k.clone(), string(val, &format!("{field}.{k}"))?)))
        .collect()
}

fn regex(s: &str, field: &str) -> Result<Regex, ConfigError> {
    Regex::new(s).map_err(|e| invalid(field, format!("not a valid regular expression: {e}")))
}

/// `measurement`: strings or `{name, rename, unit}`; short names get the plugin prefix.
fn measurements(
    v: Option<&Value>,
    prefix: &str,
    field: &str,
) -> Result<Vec<Measurement>, ConfigError> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(field, "must be an array"))?;
    let full = |n: &str| {
        if n.starts_with(&format!("{prefix}_")) {
            n.to_string()
        } else {
            format!("{prefix}_{n}")
        }
    };
    arr.iter()
        .enumerate()
        .map(|(i, m)| {
            let f = format!("{field}[{i}]");
            match m {
                Value::String(s) if !s.is_empty() => Ok(Measurement {
                    name: full(s),
                    rename: None,
                    unit: None,
                }),
                Value::Object(o) => Ok(Measurement {
                    name: full(&string(
                        o.get("name").unwrap_or(&Value::Null),
                        &format!("{f}.name"),
                    )?),
                    rename: o
                        .get("rename")
                        .map(|r| string(r, &format!("{f}.rename")))
                        .transpose()?,
                    unit: o
                        .get("unit")
                        .map(|r| string(r, &format!("{f}.unit")))
                        .transpose()?,
                }),
                _ => Err(invalid(
                    &f,
                    "must be a metric name or an object with `name`",
                )),
            }
        })
        .collect()
}

impl AgentConfig {
    /// Parse the CloudWatch agent's JSON configuration.
    pub fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        let root: Value = serde_json::from_str(text)?;
        let root = obj(&root, "$")?;
        let mut cx = Ctx {
            warnings: Vec::new(),
        };
        cx.unknown("$", root, &["agent", "metrics", "logs", "traces", "csm"]);
        let mut interval_s = Duration::from_secs(60);
        let mut omit_hostname = false;
        if let Some(agent) = root.get("agent") {
            let agent = obj(agent, "agent")?;
            if let Some(v) = agent.get("metrics_collection_interval") {
                interval_s = interval(v, "agent.metrics_collection_interval")?;
            }
            match agent.get("omit_hostname") {
                None => {}
                Some(Value::Bool(b)) => omit_hostname = *b,
                Some(_) => return Err(invalid("agent.omit_hostname", "must be true or false")),
            }
            cx.unknown(
                "agent",
                agent,
                &[
                    "metrics_collection_interval",
                    "logfile",
                    "debug",
                    "run_as_user",
                    "region",
                    "omit_hostname",
                ],
            );
        }
        let metrics = root
            .get("metrics")
            .map(|m| parse_metrics(m, &mut cx))
            .transpose()?;
        let (logs, flush) = match root.get("logs") {
            Some(l) => parse_logs(l, &mut cx)?,
            None => (Vec::new(), Duration::from_secs(5)),
        };
        Ok(AgentConfig {
            interval: interval_s,
            metrics,
            logs,
            logs_flush_interval: flush,
            omit_hostname,
            warnings: cx.warnings,
        })
    }
}

fn parse_metrics(v: &Value, cx: &mut Ctx) -> Result<MetricsConfig, ConfigError> {
    let m = obj(v, "metrics")?;
    cx.unknown(
        "metrics",
        m,
        &[
            "namespace",
            "append_dimensions",
            "aggregation_dimensions",
            "metrics_collected",
            "force_flush_interval",
            "credentials",
            "endpoint_override",
        ],
    );
    let namespace = match m.get("namespace") {
        Some(n) => {
            let n = string(n, "metrics.namespace")?;
            if n.starts_with("AWS/") || n.len() > 255 {
                return Err(invalid(
                    "metrics.namespace",
                    "must not start with AWS/ and be at most 255 characters",
                ));
            }
            n
        }
        None => "CWAgent".to_string(),
    };
    let append_dimensions = dims(m.get("append_dimensions"), "metrics.append_dimensions")?;
    let mut aggregation_dimensions = Vec::new();
    if let Some(a) = m.get("aggregation_dimensions") {
        let arr = a.as_array().ok_or_else(|| {
            invalid(
                "metrics.aggregation_dimensions",
                "must be an array of arrays",
            )
        })?;
        for (i, set) in arr.iter().enumerate() {
            aggregation_dimensions.push(strings(
                set,
                &format!("metrics.aggregation_dimensions[{i}]"),
            )?);
        }
    }
    let mut plugins = Vec::new();
    let mut procstat = Vec::new();
    if let Some(mc) = m.get("metrics_collected") {
        let mc = obj(mc, "metrics.metrics_collected")?;
        for (key, section) in mc {
            let field = format!("metrics.metrics_collected.{key}");
            if key == "procstat" {
                let arr = section
                    .as_array()
                    .ok_or_else(|| invalid(&field, "must be an array"))?;
                for (i, e) in arr.iter().enumerate() {
                    procstat.push(parse_procstat(e, &format!("{field}[{i}]"), cx)?);
                }
                continue;
            }
            let Some(kind) = PluginKind::from_key(key) else {
                tracing::warn!(field = %field, "unsupported metrics plugin ignored");
                cx.warnings
                    .push(format!("{field}: not supported by opsloop, ignored"));
                continue;
            };
            let s = obj(section, &field)?;
            cx.unknown(
                &field,
                s,
                &[
                    "measurement",
                    "resources",
                    "totalcpu",
                    "ignore_file_system_types",
                    "metrics_collection_interval",
                    "append_dimensions",
                    "drop_device",
                ],
            );
            plugins.push(Plugin {
                kind,
                measurements: measurements(
                    s.get("measurement"),
                    kind.prefix(),
                    &format!("{field}.measurement"),
                )?,
                resources: s
                    .get("resources")
                    .map(|r| strings(r, &format!("{field}.resources")))
                    .transpose()?
                    .unwrap_or_default(),
                totalcpu: match s.get("totalcpu") {
                    None => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(invalid(
                            &format!("{field}.totalcpu"),
                            "must be true or false",
                        ))
                    }
                },
                ignore_fs: s
                    .get("ignore_file_system_types")
                    .map(|r| strings(r, &format!("{field}.ignore_file_system_types")))
                    .transpose()?
                    .unwrap_or_default(),
                interval: s
                    .get("metrics_collection_interval")
                    .map(|v| interval(v, &format!("{field}.metrics_collection_interval")))
                    .transpose()?,
                append_dimensions: dims(
                    s.get("append_dimensions"),
                    &format!("{field}.append_dimensions"),
                )?,
            });
        }
    }
    plugins.sort_by_key(|p| p.kind);
    Ok(MetricsConfig {
        namespace,
        append_dimensions,
        aggregation_dimensions,
        plugins,
        procstat,
    })
}

fn parse_procstat(v: &Value, field: &str, cx: &mut Ctx) -> Result<ProcstatConfig, ConfigError> {
    let o = obj(v, field)?;
    cx.unknown(
        field,
        o,
        &[
            "pid_file",
            "exe",
            "pattern",
            "measurement",
            "metrics_collection_interval",
            "append_dimensions",
        ],
    );
    // As the CloudWatch agent: pid_file wins over exe, exe over pattern.
    let selector = if let Some(p) = o.get("pid_file") {
        ProcSelector::PidFile(string(p, &format!("{field}.pid_file"))?)
    } else if let Some(e) = o.get("exe") {
        let s = string(e, &format!("{field}.exe"))?;
        let r = regex(&s, &format!("{field}.exe"))?;
        ProcSelector::Exe(s, r)
    } else if let Some(p) = o.get("pattern") {
        let s = string(p, &format!("{field}.pattern"))?;
        let r = regex(&s, &format!("{field}.pattern"))?;
        ProcSelector::Pattern(s, r)
    } else {
        return Err(invalid(field, "needs one of pid_file, exe or pattern"));
    };
    let mut ms = measurements(
        o.get("measurement"),
        "procstat",
        &format!("{field}.measurement"),
    )?;
    for m in &mut ms {
        // `pid_count` is published as procstat_lookup_pid_count.
        if m.name == "procstat_pid_count" || m.name == "procstat_lookup_pid_count" {
            m.name = "procstat_lookup_pid_count".to_string();
        }
    }
    if ms.is_empty() {
        ms.push(Measurement {
            name: "procstat_lookup_pid_count".into(),
            rename: None,
            unit: None,
        });
    }
    Ok(ProcstatConfig {
        selector,
        measurements: ms,
        interval: o
            .get("metrics_collection_interval")
            .map(|v| interval(v, &format!("{field}.metrics_collection_interval")))
            .transpose()?,
        append_dimensions: dims(
            o.get("append_dimensions"),
            &format!("{field}.append_dimensions"),
        )?,
    })
}

fn parse_logs(v: &Value, cx: &mut Ctx) -> Result<(Vec<LogFileConfig>, Duration), ConfigError> {
    let l = obj(v, "logs")?;
    cx.unknown(
        "logs",
        l,
        &[
            "logs_collected",
            "force_flush_interval",
            "log_stream_name",
            "credentials",
            "endpoint_override",
        ],
    );
    let flush = l
        .get("force_flush_interval")
        .map(|v| interval(v, "logs.force_flush_interval"))
        .transpose()?
        .unwrap_or(Duration::from_secs(5));
    let default_stream = l
        .get("log_stream_name")
        .map(|v| string(v, "logs.log_stream_name"))
        .transpose()?;
    let mut out = Vec::new();
    let Some(lc) = l.get("logs_collected") else {
        return Ok((out, flush));
    };
    let lc = obj(lc, "logs.logs_collected")?;
    cx.unknown("logs.logs_collected", lc, &["files"]);
    let Some(files) = lc.get("files") else {
        return Ok((out, flush));
    };
    let files = obj(files, "logs.logs_collected.files")?;
    cx.unknown("logs.logs_collected.files", files, &["collect_list"]);
    let Some(list) = files.get("collect_list") else {
        return Ok((out, flush));
    };
    let list = list
        .as_array()
        .ok_or_else(|| invalid("logs.logs_collected.files.collect_list", "must be an array"))?;
    for (i, e) in list.iter().enumerate() {
        let f = format!("logs.logs_collected.files.collect_list[{i}]");
        let o = obj(e, &f)?;
        cx.unknown(
            &f,
            o,
            &[
                "file_path",
                "log_group_name",
                "log_stream_name",
                "timestamp_format",
                "multi_line_start_pattern",
                "retention_in_days",
                "timezone",
                "encoding",
                "log_group_class",
                "auto_removal",
            ],
        );
        let file_path = string(
            o.get("file_path").unwrap_or(&Value::Null),
            &format!("{f}.file_path"),
        )?;
        if !file_path.starts_with('/') {
            return Err(invalid(
                &format!("{f}.file_path"),
                "must be an absolute path",
            ));
        }
        let log_group_name = string(
            o.get("log_group_name").unwrap_or(&Value::Null),
            &format!("{f}.log_group_name"),
        )?;
        if log_group_name.len() > 512
            || !log_group_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
        {
            return Err(invalid(
                &format!("{f}.log_group_name"),
                "must be 1-512 characters of [A-Za-z0-9_-/.#]",
            ));
        }
        let timestamp_format = o
            .get("timestamp_format")
            .map(|v| string(v, &format!("{f}.timestamp_format")))
            .transpose()?;
        let multi = match o.get("multi_line_start_pattern") {
            None => None,
            Some(v) => {
                let s = string(v, &format!("{f}.multi_line_start_pattern"))?;
                if s == "{timestamp_format}" {
                    let Some(tf) = &timestamp_format else {
                        return Err(invalid(
                            &format!("{f}.multi_line_start_pattern"),
                            "{timestamp_format} needs timestamp_format",
                        ));
                    };
                    Some(regex(
                        &crate::timestamp::format_regex(tf),
                        &format!("{f}.timestamp_format"),
                    )?)
                } else {
                    Some(regex(&s, &format!("{f}.multi_line_start_pattern"))?)
                }
            }
        };
        let retention = match o.get("retention_in_days") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(-1) => None,
                Some(n) if RETENTION_DAYS.contains(&n) => Some(n),
                _ => {
                    return Err(invalid(
                        &format!("{f}.retention_in_days"),
                        format!("must be -1 or one of {RETENTION_DAYS:?}"),
                    ))
                }
            },
        };
        out.push(LogFileConfig {
            file_path,
            log_group_name,
            log_stream_name: o
                .get("log_stream_name")
                .map(|v| string(v, &format!("{f}.log_stream_name")))
                .transpose()?
                .or_else(|| default_stream.clone())
                .unwrap_or_else(|| "{instance_id}".to_string()),
            timestamp_format,
            multi_line_start_pattern: multi,
            retention_in_days: retention,
        });
    }
    Ok((out, flush))
}
