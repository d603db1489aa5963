//! Server configuration: the resolved [`Config`], and how it is put together from four layers —
//! command-line flag > `OPSLOOP_*` environment variable > TOML config file > built-in default.
//!
//! Every key has the same name in the TOML file (`data_dir = "..."`) and, upper-cased with an
//! `OPSLOOP_` prefix, in the environment (`OPSLOOP_DATA_DIR`). The doc comments on [`Config`]'s fields
//! are the reference for each key; README.md's configuration table repeats them (a test keeps the two
//! in step).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Default listen address: loopback only, LocalStack's port so existing `--endpoint-url`s keep working.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./opsloop-data";
/// Default account every credential maps to.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// Default log filter.
pub const DEFAULT_LOG: &str = "info";

/// How callers authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AuthSetting {
    /// Every request must carry a valid SigV4 signature made with the server's key pair.
    Sigv4,
    /// Any access key is accepted and mapped to `account_id`; signatures are not checked.
    /// Only allowed when listening on a loopback address.
    AnyKey,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// When log segments get their skip index (see `logs_skip_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogsSkipIndex {
    /// Never: segments stay in format 2.
    Off,
    /// In the background, once the log store has been idle for 2 s (the default).
    Idle,
    /// At every checkpoint (costs ingest CPU).
    Checkpoint,
}

impl LogsSkipIndex {
    /// From a config value: a mode name, or a boolean (`true`: checkpoint, `false`: off).
    fn parse(name: &str, v: &str) -> Result<LogsSkipIndex> {
        match parse_bool(name, v) {
            Ok(true) => Ok(LogsSkipIndex::Checkpoint),
            Ok(false) => Ok(LogsSkipIndex::Off),
            Err(_) => parse_enum(name, v),
        }
    }
}

impl<'de> Deserialize<'de> for LogsSkipIndex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Bool(b) => b.to_string(),
            Raw::Text(t) => t,
        };
        LogsSkipIndex::parse("logs_skip_index", &text).map_err(serde::de::Error::custom)
    }
}

/// The resolved server configuration. Field docs are the configuration reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `listen` / `OPSLOOP_LISTEN` / `--listen`: address to serve on, `host:port`.
    /// Default `127.0.0.1:4566`. Use `0.0.0.0:4566` to accept connections from other machines.
    pub listen: String,
    /// `data_dir` / `OPSLOOP_DATA_DIR` / `--data-dir`: directory holding all durable state
    /// (`state.db`, `metrics/`, `credentials.json`). Created if missing. Default `./opsloop-data`.
    /// Ignored with `ephemeral`.
    pub data_dir: PathBuf,
    /// `ephemeral` / `OPSLOOP_EPHEMERAL` / `--ephemeral`: keep state in a fresh temporary directory
    /// that is removed when the server exits. Default `false`.
    pub ephemeral: bool,
    /// `account_id` / `OPSLOOP_ACCOUNT_ID`: the 12-digit account that requests act on.
    /// Default `000000000000`.
    pub account_id: String,
    /// `access_key_id` / `OPSLOOP_ACCESS_KEY_ID`: the access key id clients sign with. Set together
    /// with `secret_access_key`; when both are unset, a key pair is generated on first start and kept
    /// in `<data_dir>/credentials.json`.
    pub access_key_id: Option<String>,
    /// `secret_access_key` / `OPSLOOP_SECRET_ACCESS_KEY`: the secret for `access_key_id`.
    pub secret_access_key: Option<String>,
    /// `auth` / `OPSLOOP_AUTH` / `--auth`: `sigv4` (verify every signature) or `any-key` (accept any
    /// access key, check no signature; refused unless `listen` is a loopback address). Default `sigv4`.
    pub auth: AuthSetting,
    /// `enable_reset` / `OPSLOOP_ENABLE_RESET` / `--enable-reset`: serve `POST /_opsloop/reset`, which
    /// deletes all state. Default `false`, except `true` with `ephemeral`.
    pub enable_reset: bool,
    /// `log_format` / `OPSLOOP_LOG_FORMAT` / `--log-format`: `text` or `json`. Default `text`.
    pub log_format: LogFormat,
    /// `log` / `OPSLOOP_LOG`: log filter in `tracing` env-filter syntax, e.g. `info` or
    /// `info,opsloop_wire=debug`. Default `info`.
    pub log: String,
    /// `worker_threads` / `OPSLOOP_WORKER_THREADS`: async worker threads (1–64). Default `2`.
    pub worker_threads: usize,
    /// `max_body_bytes` / `OPSLOOP_MAX_BODY_BYTES`: largest request body accepted, in bytes, before
    /// decompression (at least 1024), by services that set no limit of their own (CloudWatch Logs
    /// sets 8 MiB, for full PutLogEvents batches). Default `1048576` (1 MiB, CloudWatch's
    /// PutMetricData limit).
    pub max_body_bytes: usize,
    /// `public_url` / `OPSLOOP_PUBLIC_URL`: base URL at which subscribers reach this server's
    /// `/_opsloop/sns/...` links (SubscribeURL, UnsubscribeURL, SigningCertURL). Default: `http://`
    /// plus the listen address (`0.0.0.0` shown as `127.0.0.1`).
    pub public_url: Option<String>,
    /// `sns_smtp_url` / `OPSLOOP_SNS_SMTP_URL`: SMTP server for SNS `email` / `email-json`
    /// subscriptions, `smtp://[user:pass@]host[:port][?starttls=never|opportunistic|required]`.
    /// Unset: email deliveries wait and retry.
    pub sns_smtp_url: Option<String>,
    /// `sns_email_from` / `OPSLOOP_SNS_EMAIL_FROM`: sender address of SNS email.
    /// Default `no-reply@opsloop.local`.
    pub sns_email_from: String,
    /// `sns_ca_file` / `OPSLOOP_SNS_CA_FILE`: PEM file of extra CA certificates trusted for SNS
    /// HTTPS endpoints (and SMTP STARTTLS), besides the system roots.
    pub sns_ca_file: Option<PathBuf>,
    /// `contacts_smtp_url` / `OPSLOOP_CONTACTS_SMTP_URL`: SMTP server for Incident Manager EMAIL
    /// contact channels (activation codes and pages), `smtp://[user:pass@]host[:port]` (plain SMTP,
    /// optional AUTH PLAIN). Default: `sns_smtp_url`.
    pub contacts_smtp_url: Option<String>,
    /// `contacts_email_from` / `OPSLOOP_CONTACTS_EMAIL_FROM`: sender address of contact email.
    /// Default: `sns_email_from`.
    pub contacts_email_from: String,
    /// `contacts_sms_gateway_url` / `OPSLOOP_CONTACTS_SMS_GATEWAY_URL`: `http://` URL that SMS
    /// channel messages are POSTed to as JSON `{channel, address, message, kind, ...}`. Unset: SMS
    /// deliveries are retried and end with an ERROR receipt.
    pub contacts_sms_gateway_url: Option<String>,
    /// `contacts_voice_gateway_url` / `OPSLOOP_CONTACTS_VOICE_GATEWAY_URL`: `http://` URL that
    /// VOICE channel messages are POSTed to as JSON, like SMS.
    pub contacts_voice_gateway_url: Option<String>,
    /// `contacts_minute_seconds` / `OPSLOOP_CONTACTS_MINUTE_SECONDS`: TEST-ONLY scaling — the length
    /// in seconds of one engagement-plan minute (`DurationInMinutes`). Default `60`; end-to-end tests
    /// set e.g. `0.5` so escalation stages pass quickly. Never change it in production.
    pub contacts_minute_seconds: f64,
    /// `logs_skip_index` / `OPSLOOP_LOGS_SKIP_INDEX`: when log segments get a skip index (message
    /// text in ~1 KiB granules, each with a bloom filter of its letter trigrams), so Insights
    /// searches for a literal (`like /text/`) decode only the granules that may hold it: `idle`
    /// (default: rewritten in the background once the store has been idle for 2 s, so ingest
    /// pays nothing), `checkpoint` (at every checkpoint: costs ingest CPU) or `off`. `true` and
    /// `false` mean `checkpoint` and `off`.
    pub logs_skip_index: LogsSkipIndex,
}

/// Every configuration key: `(file key, environment variable)`.
pub const KEYS: &[(&str, &str)] = &[
    ("listen", "OPSLOOP_LISTEN"),
    ("data_dir", "OPSLOOP_DATA_DIR"),
    ("ephemeral", "OPSLOOP_EPHEMERAL"),
    ("account_id", "OPSLOOP_ACCOUNT_ID"),
    ("access_key_id", "OPSLOOP_ACCESS_KEY_ID"),
    ("secret_access_key", "OPSLOOP_SECRET_ACCESS_KEY"),
    ("auth", "OPSLOOP_AUTH"),
    ("enable_reset", "OPSLOOP_ENABLE_RESET"),
    ("log_format", "OPSLOOP_LOG_FORMAT"),
    ("log", "OPSLOOP_LOG"),
    ("worker_threads", "OPSLOOP_WORKER_THREADS"),
    ("max_body_bytes", "OPSLOOP_MAX_BODY_BYTES"),
    ("public_url", "OPSLOOP_PUBLIC_URL"),
    ("sns_smtp_url", "OPSLOOP_SNS_SMTP_URL"),
    ("sns_email_from", "OPSLOOP_SNS_EMAIL_FROM"),
    ("sns_ca_file", "OPSLOOP_SNS_CA_FILE"),
    ("contacts_smtp_url", "OPSLOOP_CONTACTS_SMTP_URL"),
    ("contacts_email_from", "OPSLOOP_CONTACTS_EMAIL_FROM"),
    (
        "contacts_sms_gateway_url",
        "OPSLOOP_CONTACTS_SMS_GATEWAY_URL",
    ),
    (
        "contacts_voice_gateway_url",
        "OPSLOOP_CONTACTS_VOICE_GATEWAY_URL",
    ),
    ("contacts_minute_seconds", "OPSLOOP_CONTACTS_MINUTE_SECONDS"),
    ("logs_skip_index", "OPSLOOP_LOGS_SKIP_INDEX"),
];

/// Default sender address of SNS email.
pub const DEFAULT_SNS_EMAIL_FROM: &str = "no-reply@opsloop.local";

/// Environment variable naming the config file (the `--config` flag wins over it).
pub const CONFIG_ENV: &str = "OPSLOOP_CONFIG";

/// One layer of settings; `None` means "not set here, ask the next layer".
/// This is also the TOML file's schema (unknown keys are an error, to catch typos).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub ephemeral: Option<bool>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub auth: Option<AuthSetting>,
    pub enable_reset: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    pub worker_threads: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub public_url: Option<String>,
    pub sns_smtp_url: Option<String>,
    pub sns_email_from: Option<String>,
    pub sns_ca_file: Option<PathBuf>,
    pub contacts_smtp_url: Option<String>,
    pub contacts_email_from: Option<String>,
    pub contacts_sms_gateway_url: Option<String>,
    pub contacts_voice_gateway_url: Option<String>,
    pub contacts_minute_seconds: Option<f64>,
    pub logs_skip_index: Option<LogsSkipIndex>,
}

impl Layer {
    /// Read a TOML config file.
    pub fn from_file(path: &Path) -> Result<Layer> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Read the `OPSLOOP_*` variables through `get` (normally `std::env::var`). Empty values count
    /// as unset.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Layer> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        Ok(Layer {
            listen: var("OPSLOOP_LISTEN"),
            data_dir: var("OPSLOOP_DATA_DIR").map(PathBuf::from),
            ephemeral: var("OPSLOOP_EPHEMERAL")
                .map(|v| parse_bool("OPSLOOP_EPHEMERAL", &v))
                .transpose()?,
            account_id: var("OPSLOOP_ACCOUNT_ID"),
            access_key_id: var("OPSLOOP_ACCESS_KEY_ID"),
            secret_access_key: var("OPSLOOP_SECRET_ACCESS_KEY"),
            auth: var("OPSLOOP_AUTH")
                .map(|v| parse_enum("OPSLOOP_AUTH", &v))
                .transpose()?,
            enable_reset: var("OPSLOOP_ENABLE_RESET")
                .map(|v| parse_bool("OPSLOOP_ENABLE_RESET", &v))
                .transpose()?,
            log_format: var("OPSLOOP_LOG_FORMAT")
                .map(|v| parse_enum("OPSLOOP_LOG_FORMAT", &v))
                .transpose()?,
            log: var("OPSLOOP_LOG"),
            worker_threads: var("OPSLOOP_WORKER_THREADS")
                .map(|v| parse_num("OPSLOOP_WORKER_THREADS", &v))
                .transpose()?,
            max_body_bytes: var("OPSLOOP_MAX_BODY_BYTES")
                .map(|v| parse_num("OPSLOOP_MAX_BODY_BYTES", &v))
                .transpose()?,
            public_url: var("OPSLOOP_PUBLIC_URL"),
            sns_smtp_url: var("OPSLOOP_SNS_SMTP_URL"),
            sns_email_from: var("OPSLOOP_SNS_EMAIL_FROM"),
            sns_ca_file: var("OPSLOOP_SNS_CA_FILE").map(PathBuf::from),
            contacts_smtp_url: var("OPSLOOP_CONTACTS_SMTP_URL"),
            contacts_email_from: var("OPSLOOP_CONTACTS_EMAIL_FROM"),
            contacts_sms_gateway_url: var("OPSLOOP_CONTACTS_SMS_GATEWAY_URL"),
            contacts_voice_gateway_url: var("OPSLOOP_CONTACTS_VOICE_GATEWAY_URL"),
            contacts_minute_seconds: var("OPSLOOP_CONTACTS_MINUTE_SECONDS")
                .map(|v| {
                    v.trim().parse::<f64>().with_context(|| {
                        format!("OPSLOOP_CONTACTS_MINUTE_SECONDS={v:?} is not a number")
                    })
                })
                .transpose()?,
            logs_skip_index: var("OPSLOOP_LOGS_SKIP_INDEX")
                .map(|v| LogsSkipIndex::parse("OPSLOOP_LOGS_SKIP_INDEX", &v))
                .transpose()?,
        })
    }

    /// `self` where set, else `lower`.
    pub fn over(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            ephemeral: self.ephemeral.or(lower.ephemeral),
            account_id: self.account_id.or(lower.account_id),
            access_key_id: self.access_key_id.or(lower.access_key_id),
            secret_access_key: self.secret_access_key.or(lower.secret_access_key),
            auth: self.auth.or(lower.auth),
            enable_reset: self.enable_reset.or(lower.enable_reset),
            log_format: self.log_format.or(lower.log_format),
            log: self.log.or(lower.log),
            worker_threads: self.worker_threads.or(lower.worker_threads),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            public_url: self.public_url.or(lower.public_url),
            sns_smtp_url: self.sns_smtp_url.or(lower.sns_smtp_url),
            sns_email_from: self.sns_email_from.or(lower.sns_email_from),
            sns_ca_file: self.sns_ca_file.or(lower.sns_ca_file),
            contacts_smtp_url: self.contacts_smtp_url.or(lower.contacts_smtp_url),
            contacts_email_from: self.contacts_email_from.or(lower.contacts_email_from),
            contacts_sms_gateway_url: self
                .contacts_sms_gateway_url
                .or(lower.contacts_sms_gateway_url),
            contacts_voice_gateway_url: self
                .contacts_voice_gateway_url
                .or(lower.contacts_voice_gateway_url),
            contacts_minute_seconds: self
                .contacts_minute_seconds
                .or(lower.contacts_minute_seconds),
            logs_skip_index: self.logs_skip_index.or(lower.logs_skip_index),
        }
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}={v:?} is not a boolean (use true or false)"),
    }
}

fn parse_num(name: &str, v: &str) -> Result<usize> {
    v.trim()
        .parse()
        .with_context(|| format!("{name}={v:?} is not a whole number"))
}

fn parse_enum<T: clap::ValueEnum>(name: &str, v: &str) -> Result<T> {
    T::from_str(v.trim(), true).map_err(|_| {
        let allowed: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        anyhow::anyhow!("{name}={v:?} is not one of: {}", allowed.join(", "))
    })
}

impl Config {
    /// Resolve flag > env > file > default and validate the result.
    pub fn resolve(flags: Layer, env: Layer, file: Option<Layer>) -> Result<Config> {
        let merged = flags.over(env).over(file.unwrap_or_default());
        let ephemeral = merged.ephemeral.unwrap_or(false);
        let sns_smtp_url = merged.sns_smtp_url.clone();
        let sns_email_from = merged
            .sns_email_from
            .clone()
            .unwrap_or_else(|| DEFAULT_SNS_EMAIL_FROM.to_string());
        let config = Config {
            listen: merged.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            data_dir: merged
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            ephemeral,
            account_id: merged
                .account_id
                .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string()),
            access_key_id: merged.access_key_id,
            secret_access_key: merged.secret_access_key,
            auth: merged.auth.unwrap_or(AuthSetting::Sigv4),
            enable_reset: merged.enable_reset.unwrap_or(ephemeral),
            log_format: merged.log_format.unwrap_or(LogFormat::Text),
            log: merged.log.unwrap_or_else(|| DEFAULT_LOG.to_string()),
            worker_threads: merged.worker_threads.unwrap_or(2),
            max_body_bytes: merged.max_body_bytes.unwrap_or(1024 * 1024),
            public_url: merged.public_url,
            sns_smtp_url: merged.sns_smtp_url,
            sns_email_from: merged
                .sns_email_from
                .unwrap_or_else(|| DEFAULT_SNS_EMAIL_FROM.to_string()),
            sns_ca_file: merged.sns_ca_file,
            contacts_smtp_url: merged.contacts_smtp_url.or(sns_smtp_url),
            contacts_email_from: merged.contacts_email_from.unwrap_or(sns_email_from),
            contacts_sms_gateway_url: merged.contacts_sms_gateway_url,
            contacts_voice_gateway_url: merged.contacts_voice_gateway_url,
            contacts_minute_seconds: merged.contacts_minute_seconds.unwrap_or(60.0),
            logs_skip_index: merged.logs_skip_index.unwrap_or(LogsSkipIndex::Idle),
        };
        config.validate()?;
        Ok(config)
    }

    /// Defaults only (as if nothing were configured), for tests and tools.
    pub fn defaults() -> Config {
        Config::resolve(Layer::default(), Layer::default(), None).expect("defaults are valid")
    }

    fn validate(&self) -> Result<()> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account_id {:?} must be exactly 12 digits", self.account_id);
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) | (None, Some(_)) => {
                bail!("set both OPSLOOP_ACCESS_KEY_ID and OPSLOOP_SECRET_ACCESS_KEY, or neither")
            }
            (Some(id), Some(secret)) => {
                if id.len() < 3 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    bail!("access_key_id must be 3-128 ASCII letters and digits");
                }
                if secret.is_empty() || secret.chars().any(char::is_whitespace) {
                    bail!("secret_access_key must be non-empty and contain no whitespace");
                }
            }
            (None, None) => {}
        }
        if !(1..=64).contains(&self.worker_threads) {
            bail!(
                "worker_threads must be between 1 and 64, got {}",
                self.worker_threads
            );
        }
        if self.max_body_bytes < 1024 {
            bail!(
                "max_body_bytes must be at least 1024, got {}",
                self.max_body_bytes
            );
        }
        if self.log.trim().is_empty() {
            bail!("log filter must not be empty");
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("public_url {url:?} must start with http:// or https://");
            }
        }
        if !(self.contacts_minute_seconds > 0.0 && self.contacts_minute_seconds <= 3600.0) {
            bail!(
                "contacts_minute_seconds must be greater than 0 and at most 3600, got {}",
                self.contacts_minute_seconds
            );
        }
        Ok(())
    }

    /// The base URL subscribers use to reach this server: `public_url`, else derived from `listen`.
    pub fn public_base_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        match self.listen_addrs() {
            Ok(addrs) => crate::credentials::endpoint_url(addrs[0]),
            Err(_) => format!("http://{}", self.listen),
        }
    }

    /// The socket addresses `listen` names (resolving a host name such as `localhost`).
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = self
            .listen
            .to_socket_addrs()
            .with_context(|| format!("listen address {:?} is not host:port", self.listen))?
            .collect();
        if addrs.is_empty() {
            bail!("listen address {:?} resolves to no address", self.listen);
        }
        Ok(addrs)
    }

    /// Refuse settings that are unsafe together: `any-key` auth on a non-loopback address.
    pub fn check_safety(&self) -> Result<()> {
        if self.auth == AuthSetting::AnyKey {
            let addrs = self.listen_addrs()?;
            if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                bail!(
                    "refusing --auth any-key on non-loopback address {open}: any-key accepts requests \
                     without checking signatures, so it may only listen on 127.0.0.1, ::1 or localhost"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Layer {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layer::from_env(&|k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::defaults();
        assert_eq!(c.listen, "127.0.0.1:4566");
        assert_eq!(c.data_dir, PathBuf::from("./opsloop-data"));
        assert_eq!(c.account_id, "000000000000");
        assert_eq!(c.auth, AuthSetting::Sigv4);
        assert!(!c.enable_reset);
        assert!(!c.ephemeral);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.worker_threads, 2);
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let file: Layer = toml::from_str(
            "listen = \"127.0.0.1:1111\"\naccount_id = \"111111111111\"\nlog = \"debug\"\nworker_threads = 3",
        )
        .unwrap();
        let env = env(&[
            ("OPSLOOP_LISTEN", "127.0.0.1:2222"),
            ("OPSLOOP_ACCOUNT_ID", "222222222222"),
        ]);
        let flags = Layer {
            listen: Some("127.0.0.1:3333".into()),
            ..Layer::default()
        };
        let c = Config::resolve(flags, env, Some(file)).unwrap();
        assert_eq!(c.listen, "127.0.0.1:3333", "flag wins");
        assert_eq!(c.account_id, "222222222222", "env beats file");
        assert_eq!(c.log, "debug", "file beats default");
        assert_eq!(c.worker_threads, 3);
        assert_eq!(c.max_body_bytes, 1024 * 1024, "default when nobody sets it");
    }

    #[test]
    fn env_values_are_parsed_and_checked() {
        let e = env(&[
            ("OPSLOOP_AUTH", "any-key"),
            ("OPSLOOP_ENABLE_RESET", "yes"),
            ("OPSLOOP_LOG_FORMAT", "JSON"),
            ("OPSLOOP_EPHEMERAL", "0"),
            ("OPSLOOP_DATA_DIR", ""),
            ("OPSLOOP_LOGS_SKIP_INDEX", "on"),
        ]);
        assert_eq!(e.logs_skip_index, Some(LogsSkipIndex::Checkpoint));
        assert_eq!(
            Config::resolve(Layer::default(), Layer::default(), None)
                .unwrap()
                .logs_skip_index,
            LogsSkipIndex::Idle,
            "indexed when idle by default"
        );
        for (v, want) in [
            ("off", LogsSkipIndex::Off),
            ("false", LogsSkipIndex::Off),
            ("Idle", LogsSkipIndex::Idle),
            ("checkpoint", LogsSkipIndex::Checkpoint),
        ] {
            let l = Layer::from_env(&|k| (k == "OPSLOOP_LOGS_SKIP_INDEX").then(|| v.to_string()));
            assert_eq!(l.unwrap().logs_skip_index, Some(want), "{v}");
        }
        let bad = Layer::from_env(&|k| (k == "OPSLOOP_LOGS_SKIP_INDEX").then(|| "soon".into()));
        let msg = format!("{:#}", bad.unwrap_err());
        assert!(
            msg.contains("OPSLOOP_LOGS_SKIP_INDEX") && msg.contains("checkpoint"),
            "{msg}"
        );
        let file: Layer = toml::from_str("logs_skip_index = \"off\"").unwrap();
        assert_eq!(file.logs_skip_index, Some(LogsSkipIndex::Off));
        let file: Layer = toml::from_str("logs_skip_index = true").unwrap();
        assert_eq!(file.logs_skip_index, Some(LogsSkipIndex::Checkpoint));
        assert!(toml::from_str::<Layer>("logs_skip_index = \"soon\"").is_err());
        assert_eq!(e.auth, Some(AuthSetting::AnyKey));
        assert_eq!(e.enable_reset, Some(true));
        assert_eq!(e.log_format, Some(LogFormat::Json));
        assert_eq!(e.ephemeral, Some(false));
        assert_eq!(e.data_dir, None, "empty counts as unset");
        let bad = Layer::from_env(&|k| (k == "OPSLOOP_ENABLE_RESET").then(|| "maybe".to_string()));
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("OPSLOOP_ENABLE_RESET"));
        let bad = Layer::from_env(&|k| (k == "OPSLOOP_AUTH").then(|| "none".to_string()));
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("sigv4") && msg.contains("any-key"), "{msg}");
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opsloop.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:1\"\n").unwrap();
        let err = format!("{:#}", Layer::from_file(&path).unwrap_err());
        assert!(err.contains("listn"), "{err}");
        std::fs::write(&path, "auth = \"any-key\"\nenable_reset = true\n").unwrap();
        let layer = Layer::from_file(&path).unwrap();
        assert_eq!(layer.auth, Some(AuthSetting::AnyKey));
        assert_eq!(layer.enable_reset, Some(true));
    }

    #[test]
    fn ephemeral_enables_reset_unless_disabled() {
        let eph = Layer {
            ephemeral: Some(true),
            ..Layer::default()
        };
        assert!(
            Config::resolve(eph.clone(), Layer::default(), None)
                .unwrap()
                .enable_reset
        );
        let off = Layer {
            enable_reset: Some(false),
            ..Layer::default()
        };
        assert!(!Config::resolve(eph, off, None).unwrap().enable_reset);
    }

    #[test]
    fn sns_settings_and_public_url() {
        let c = Config::defaults();
        assert_eq!(c.sns_email_from, "no-reply@opsloop.local");
        assert_eq!(c.public_base_url(), "http://127.0.0.1:4566");
        let e = env(&[
            ("OPSLOOP_LISTEN", "0.0.0.0:9999"),
            ("OPSLOOP_SNS_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("OPSLOOP_SNS_CA_FILE", "/etc/ca.pem"),
        ]);
        let c = Config::resolve(Layer::default(), e, None).unwrap();
        assert_eq!(c.public_base_url(), "http://127.0.0.1:9999");
        assert_eq!(c.sns_smtp_url.as_deref(), Some("smtp://127.0.0.1:2525"));
        assert_eq!(c.sns_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let flags = Layer {
            public_url: Some("https://ops.example.com/".into()),
            ..Layer::default()
        };
        let c = Config::resolve(flags, Layer::default(), None).unwrap();
        assert_eq!(c.public_base_url(), "https://ops.example.com");
        let bad = Layer {
            public_url: Some("ops.example.com".into()),
            ..Layer::default()
        };
        assert!(Config::resolve(bad, Layer::default(), None).is_err());
    }

    #[test]
    fn contacts_settings_default_to_sns_and_are_checked() {
        let c = Config::defaults();
        assert_eq!(c.contacts_smtp_url, None);
        assert_eq!(c.contacts_minute_seconds, 60.0);
        let e = env(&[
            ("OPSLOOP_SNS_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("OPSLOOP_SNS_EMAIL_FROM", "sns@example.com"),
            (
                "OPSLOOP_CONTACTS_SMS_GATEWAY_URL",
                "http://127.0.0.1:9000/sms",
            ),
            ("OPSLOOP_CONTACTS_MINUTE_SECONDS", "0.5"),
        ]);
        let c = Config::resolve(Layer::default(), e, None).unwrap();
        assert_eq!(
            c.contacts_smtp_url.as_deref(),
            Some("smtp://127.0.0.1:2525")
        );
        assert_eq!(c.contacts_email_from, "sns@example.com");
        assert_eq!(
            c.contacts_sms_gateway_url.as_deref(),
            Some("http://127.0.0.1:9000/sms")
        );
        assert_eq!(c.contacts_minute_seconds, 0.5);
        let own = env(&[
            ("OPSLOOP_SNS_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("OPSLOOP_CONTACTS_SMTP_URL", "smtp://127.0.0.1:2626"),
        ]);
        let c = Config::resolve(Layer::default(), own, None).unwrap();
        assert_eq!(
            c.contacts_smtp_url.as_deref(),
            Some("smtp://127.0.0.1:2626")
        );
        let zero = Layer {
            contacts_minute_seconds: Some(0.0),
            ..Layer::default()
        };
        assert!(Config::resolve(zero, Layer::default(), None).is_err());
        assert!(Layer::from_env(&|k| {
            (k == "OPSLOOP_CONTACTS_MINUTE_SECONDS").then(|| "fast".to_string())
        })
        .is_err());
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = |l: Layer| Config::resolve(l, Layer::default(), None).is_err();
        assert!(bad(Layer {
            account_id: Some("123".into()),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            access_key_id: Some("AKIAONLYID".into()),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            worker_threads: Some(0),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            max_body_bytes: Some(10),
            ..Layer::default()
        }));
        assert!(!bad(Layer {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("secret".into()),
            ..Layer::default()
        }));
    }

    #[test]
    fn any_key_only_on_loopback() {
        let mut c = Config::defaults();
        c.auth = AuthSetting::AnyKey;
        for ok in [
            "127.0.0.1:4566",
            "[::1]:4566",
            "localhost:4566",
            "127.0.0.2:1",
        ] {
            c.listen = ok.into();
            assert!(c.check_safety().is_ok(), "{ok}");
        }
        for refused in ["0.0.0.0:4566", "[::]:4566", "192.0.2.1:4566"] {
            c.listen = refused.into();
            let err = c.check_safety().unwrap_err().to_string();
            assert!(err.contains("any-key") && err.contains("loopback"), "{err}");
        }
        c.auth = AuthSetting::Sigv4;
        c.listen = "0.0.0.0:4566".into();
        assert!(c.check_safety().is_ok());
    }

    #[test]
    fn readme_documents_every_key() {
        let readme = include_str!("../../../README.md");
        for (key, env) in KEYS {
            assert!(
                readme.contains(&format!("`{key}`")),
                "README.md lacks config key `{key}`"
            );
            assert!(
                readme.contains(&format!("`{env}`")),
                "README.md lacks env var `{env}`"
            );
        }
        assert!(readme.contains(&format!("`{CONFIG_ENV}`")));
    }
}
