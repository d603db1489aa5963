//! The command line: `opsloop server` runs the server, `opsloop credentials` prints the key pair of a
//! data directory as an `aws configure` snippet, `opsloop logs tail|query` read CloudWatch Logs of a
//! running server over HTTP (JSON 1.1, SigV4-signed like the AWS SDKs; see [`HttpLogs`]). Flags
//! map onto configuration [`Layer`]s; see [`crate::config`] for the precedence
//! (flag > env > file > default).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::{AuthSetting, Config, Layer, LogFormat, CONFIG_ENV};

#[derive(Debug, Parser)]
#[command(
    name = "opsloop",
    version,
    about = "AWS operations APIs (CloudWatch, ...) implemented for real, in one binary."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (AWS wire APIs on one endpoint).
    Server(ServerArgs),
    /// Print the key pair clients sign with, as `aws configure` commands.
    Credentials(CredentialsArgs),
    /// Read CloudWatch Logs of a running server: `tail` events, run an Insights `query`.
    Logs(LogsArgs),
    /// Run the managed-node agent: register once through an SSM hybrid activation, then heartbeat
    /// and run Run Command work sent to this node (a systemd-friendly foreground process).
    Agent(AgentArgs),
}

/// `opsloop agent ...`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The server's endpoint URL (http://host:port).
    #[arg(long, env = "OPSLOOP_AGENT_ENDPOINT")]
    pub endpoint: String,
    /// Activation id from CreateActivation (first start only).
    #[arg(long, env = "OPSLOOP_AGENT_ACTIVATION_ID")]
    pub activation_id: Option<String>,
    /// Activation code from CreateActivation (first start only).
    #[arg(long, env = "OPSLOOP_AGENT_ACTIVATION_CODE")]
    pub activation_code: Option<String>,
    /// Region the activation belongs to.
    #[arg(long, env = "OPSLOOP_AGENT_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Directory for the registration (node id and key pair, 0600) and undelivered results.
    #[arg(long, env = "OPSLOOP_AGENT_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Seconds between heartbeats.
    #[arg(long, env = "OPSLOOP_AGENT_HEARTBEAT_SECONDS", default_value_t = 30)]
    pub heartbeat_seconds: u64,
    /// CloudWatch agent JSON configuration: collect host metrics (CWAgent namespace, InstanceId =
    /// the node id) and tail log files into log groups, with the node's own key.
    #[arg(long, env = "OPSLOOP_AGENT_MONITORING_CONFIG")]
    pub monitoring_config: Option<PathBuf>,
}

/// `opsloop logs ...`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: LogsCommand,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Print a log group's events (`<time> <stream> <message>`), optionally following new ones.
    Tail(TailArgs),
    /// Run a Logs Insights query and print its results as a table.
    Query(QueryArgs),
}

/// Where the server is and how to sign for it.
#[derive(Debug, Default, Clone, Args)]
pub struct ClientArgs {
    /// Server endpoint [default: http://127.0.0.1:4566]
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4566")]
    pub endpoint_url: String,
    /// Region to sign for [env: AWS_REGION, AWS_DEFAULT_REGION] [default: us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Data directory whose credentials.json to sign with when AWS_ACCESS_KEY_ID /
    /// AWS_SECRET_ACCESS_KEY and OPSLOOP_ACCESS_KEY_ID / OPSLOOP_SECRET_ACCESS_KEY are unset
    /// [env: OPSLOOP_DATA_DIR] [default: ./opsloop-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file [env: OPSLOOP_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `opsloop logs tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Log group name.
    pub group: String,
    /// Keep printing new events until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Start: an age (30s, 10m, 2h, 7d, 1w), epoch seconds/milliseconds or RFC 3339.
    #[arg(long, value_name = "TIME", default_value = "10m")]
    pub since: String,
    /// Only events matching this filter pattern.
    #[arg(long, value_name = "PATTERN")]
    pub filter_pattern: Option<String>,
    /// Only streams whose name starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub log_stream_name_prefix: Option<String>,
    /// Milliseconds between polls with --follow.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `opsloop logs query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Log group name (more with --group).
    pub group: String,
    /// The Logs Insights query.
    pub query: String,
    /// More log groups to query.
    #[arg(long = "group", value_name = "GROUP")]
    pub more_groups: Vec<String>,
    /// Start of the window (same forms as tail --since).
    #[arg(long, value_name = "TIME", default_value = "1h")]
    pub start: String,
    /// End of the window [default: now].
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Most rows returned (1..=10000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Give up (and stop the query) after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `opsloop server`. Each overrides its `OPSLOOP_*` variable and config-file key.
#[derive(Debug, Default, Args)]
pub struct ServerArgs {
    /// Address to listen on, host:port [env: OPSLOOP_LISTEN] [default: 127.0.0.1:4566]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for durable state [env: OPSLOOP_DATA_DIR] [default: ./opsloop-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file [env: OPSLOOP_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format [env: OPSLOOP_LOG_FORMAT] [default: text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Keep state in a temporary directory removed at exit (implies --enable-reset) [env: OPSLOOP_EPHEMERAL]
    #[arg(long)]
    pub ephemeral: bool,
    /// How requests authenticate [env: OPSLOOP_AUTH] [default: sigv4]
    #[arg(long, value_enum, value_name = "MODE")]
    pub auth: Option<AuthSetting>,
    /// Serve POST /_opsloop/reset, which deletes all state [env: OPSLOOP_ENABLE_RESET]
    #[arg(long)]
    pub enable_reset: bool,
}

/// Flags of `opsloop credentials`.
#[derive(Debug, Default, Args)]
pub struct CredentialsArgs {
    /// Data directory whose key pair to show [env: OPSLOOP_DATA_DIR] [default: ./opsloop-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file [env: OPSLOOP_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ServerArgs {
    fn layer(&self) -> Layer {
        Layer {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            ephemeral: self.ephemeral.then_some(true),
            auth: self.auth,
            enable_reset: self.enable_reset.then_some(true),
            log_format: self.log_format,
            ..Layer::default()
        }
    }
}

/// Resolve the configuration from flags, the process environment and the config file.
pub fn load_config(flags: Layer, config_flag: Option<PathBuf>) -> Result<Config> {
    let env = Layer::from_env(&|name| std::env::var(name).ok())?;
    let file_path = config_flag.or_else(|| {
        std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let file = file_path.as_deref().map(Layer::from_file).transpose()?;
    Config::resolve(flags, env, file)
}

/// Parse the command line and run it.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            let config = load_config(args.layer(), args.config.clone())?;
            server(config)
        }
        Command::Credentials(args) => {
            let flags = Layer {
                data_dir: args.data_dir.clone(),
                ..Layer::default()
            };
            credentials(load_config(flags, args.config.clone())?)
        }
        Command::Logs(args) => logs(args),
        Command::Agent(args) => agent(args),
    }
}

/// `opsloop agent`.
fn agent(args: AgentArgs) -> Result<()> {
    crate::logging::init(&Config::defaults())?;
    let mut opts = opsloop_agent::Options::new(&args.endpoint, &args.region, args.state_dir);
    opts.activation_id = args.activation_id;
    opts.activation_code = args.activation_code;
    opts.heartbeat = std::time::Duration::from_secs(args.heartbeat_seconds.max(1));
    if let Some(path) = &args.monitoring_config {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the monitoring configuration {}",
                path.display()
            )
        })?;
        opts.monitoring = Some(text);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let signal = crate::serve::shutdown_signal()?;
        opsloop_agent::run(opts, signal)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// `opsloop logs tail|query`.
fn logs(args: LogsArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let time = |t: &str| opsloop_logs::cli::parse_time(t, now_ms).map_err(anyhow::Error::msg);
    match args.command {
        LogsCommand::Tail(a) => {
            let client = HttpLogs::new(&a.client)?;
            let opts = opsloop_logs::cli::TailOptions {
                group: a.group.clone(),
                since_ms: time(&a.since)?,
                filter_pattern: a.filter_pattern.clone(),
                stream_prefix: a.log_stream_name_prefix.clone(),
                follow: a.follow,
                poll_interval: std::time::Duration::from_millis(a.poll_ms.max(1)),
            };
            let mut out = std::io::stdout();
            runtime
                .block_on(opsloop_logs::cli::tail_with(
                    &client,
                    &opts,
                    &mut out,
                    &|| false,
                ))
                .map_err(api_error)?;
            Ok(())
        }
        LogsCommand::Query(a) => {
            let client = HttpLogs::new(&a.client)?;
            let start_s = time(&a.start)?.div_euclid(1000);
            let end_s = match &a.end {
                Some(e) => time(e)?.div_euclid(1000),
                None => now_ms.div_euclid(1000),
            };
            let mut groups = vec![a.group.clone()];
            groups.extend(a.more_groups.iter().cloned());
            let table = runtime
                .block_on(opsloop_logs::cli::query_with(
                    &client,
                    &groups,
                    &a.query,
                    start_s,
                    end_s,
                    a.limit,
                    std::time::Duration::from_secs(a.timeout),
                ))
                .map_err(api_error)?;
            print!("{}", opsloop_logs::cli::render_table(&table));
            if table.status != "Complete" {
                bail!("the query ended {}", table.status);
            }
            Ok(())
        }
    }
}

fn api_error(e: opsloop_core::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.kind, e.message)
}

/// A CloudWatch Logs client over one keep-alive HTTP/1.1 connection: JSON 1.1 requests
/// (`X-Amz-Target: Logs_20140328.<Op>`) signed with SigV4 for the `logs` service, as the AWS SDKs
/// send them. Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
/// `AWS_SESSION_TOKEN`), else the configured `OPSLOOP_ACCESS_KEY_ID` / `OPSLOOP_SECRET_ACCESS_KEY`,
/// else the server's `credentials.json` in the data directory.
pub struct HttpLogs {
    authority: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    conn: tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<HttpBody>>>,
}

type HttpBody = http_body_util::Full<bytes::Bytes>;

impl HttpLogs {
    /// The endpoint and region of `args`, without credentials.
    fn endpoint_only(args: &ClientArgs) -> Result<HttpLogs> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let uri: http::Uri = args
            .endpoint_url
            .parse()
            .with_context(|| format!("--endpoint-url {:?} is not a URL", args.endpoint_url))?;
        if uri.scheme_str() != Some("http") {
            bail!(
                "--endpoint-url {:?}: only http:// endpoints are supported",
                args.endpoint_url
            );
        }
        let authority = uri
            .authority()
            .context("--endpoint-url has no host")?
            .as_str()
            .to_string();
        let region = args
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        Ok(HttpLogs {
            authority,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
            region,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// A client for `args`, with credentials found as described on [`HttpLogs`].
    pub fn new(args: &ClientArgs) -> Result<HttpLogs> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let base = Self::endpoint_only(args)?;
        let (access_key_id, secret_access_key, session_token) =
            match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (id, secret, env("AWS_SESSION_TOKEN")),
                _ => {
                    let flags = Layer {
                        data_dir: args.data_dir.clone(),
                        ..Layer::default()
                    };
                    let config = load_config(flags, args.config.clone())?;
                    match (&config.access_key_id, &config.secret_access_key) {
                        (Some(id), Some(secret)) => (id.clone(), secret.clone(), None),
                        _ => match crate::credentials::load(&config.data_dir)? {
                            Some((id, secret)) => (id, secret, None),
                            None => bail!(
                                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                                 or pass the server's --data-dir (no key pair in {})",
                                config.data_dir.display()
                            ),
                        },
                    }
                }
            };
        Ok(HttpLogs {
            access_key_id,
            secret_access_key,
            session_token,
            ..base
        })
    }

    /// A client for `endpoint_url` signing with the given key pair.
    pub fn with_keys(
        endpoint_url: &str,
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
    ) -> Result<HttpLogs> {
        let args = ClientArgs {
            endpoint_url: endpoint_url.to_string(),
            region: Some(region.to_string()),
            ..ClientArgs::default()
        };
        Ok(HttpLogs {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: None,
            ..Self::endpoint_only(&args)?
        })
    }

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<HttpBody>> {
        let addr = if self.authority.contains(':') && !self.authority.ends_with(']') {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .with_context(|| format!("cannot connect to {addr}: is `opsloop server` running?"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(&self, op: &str, body: &bytes::Bytes) -> Result<http::Request<bytes::Bytes>> {
        let mut req = http::Request::post("/")
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Logs_20140328.{op}"))
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body.clone())?;
        opsloop_wire::sigv4::sign_with_token(
            &mut req,
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.as_deref(),
            &self.region,
            "logs",
            std::time::SystemTime::now(),
        );
        Ok(req)
    }

    /// Send `op`; a broken keep-alive connection is replaced once.
    async fn send(&self, op: &str, input: &serde_json::Value) -> Result<(u16, bytes::Bytes)> {
        use http_body_util::BodyExt;
        let body = bytes::Bytes::from(serde_json::to_vec(input)?);
        let mut conn = self.conn.lock().await;
        for attempt in 0..2 {
            if conn.is_none() {
                *conn = Some(self.connect().await?);
            }
            let Some(sender) = conn.as_mut() else {
                continue;
            };
            let sent = async {
                sender.ready().await?;
                let resp = sender
                    .send_request(self.request(op, &body)?.map(HttpBody::new))
                    .await?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok::<_, anyhow::Error>((status, bytes))
            }
            .await;
            match sent {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 => {
                    tracing::debug!(error = %e, "reconnecting");
                    *conn = None;
                }
                Err(e) => return Err(e),
            }
        }
        bail!("no connection to {}", self.authority)
    }
}

impl opsloop_logs::cli::LogsClient for HttpLogs {
    fn call(
        &self,
        op: &str,
        input: serde_json::Value,
    ) -> impl std::future::Future<Output = Result<serde_json::Value, opsloop_core::ApiError>> + Send
    {
        let op = op.to_string();
        async move {
            let (status, body) = self.send(&op, &input).await.map_err(|e| {
                opsloop_core::ApiError::with_status("ConnectionError", 599, format!("{e:#}"))
            })?;
            let doc: serde_json::Value = if body.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&body).map_err(|_| {
                    opsloop_core::ApiError::with_status(
                        "InvalidResponse",
                        status,
                        format!(
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        ),
                    )
                })?
            };
            if status == 200 {
                return Ok(doc);
            }
            let kind = doc["__type"].as_str().unwrap_or("UnknownError");
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            let message = doc["message"]
                .as_str()
                .or_else(|| doc["Message"].as_str())
                .unwrap_or_default();
            Err(opsloop_core::ApiError::with_status(kind, status, message))
        }
    }
}

/// `opsloop server`.
pub fn server(config: Config) -> Result<()> {
    config.check_safety()?;
    crate::logging::init(&config)?;
    if config.ephemeral
        && config.data_dir.as_path() != std::path::Path::new(crate::config::DEFAULT_DATA_DIR)
    {
        tracing::warn!(data_dir = %config.data_dir.display(), "data_dir is ignored with ephemeral");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .max_blocking_threads(64)
        .thread_name("opsloop")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let signal = crate::serve::shutdown_signal()?;
        let app = crate::app::build(config)?;
        crate::serve::run(app, signal).await
    })?;
    // Requests that outlived the drain may still sit on blocking threads; don't wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// `opsloop credentials`.
fn credentials(config: Config) -> Result<()> {
    let (id, secret) = match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => (id.clone(), secret.clone()),
        _ => match crate::credentials::load(&config.data_dir)? {
            Some(pair) => pair,
            None => bail!(
                "no key pair in {} yet: start `opsloop server` once to generate one, or set \
                 OPSLOOP_ACCESS_KEY_ID and OPSLOOP_SECRET_ACCESS_KEY",
                config.data_dir.display()
            ),
        },
    };
    let creds = opsloop_wire::Credentials {
        access_key_id: id,
        secret_access_key: secret,
        account_id: config.account_id.clone(),
    };
    let endpoint = match config.listen_addrs() {
        Ok(addrs) => crate::credentials::endpoint_url(addrs[0]),
        Err(_) => format!("http://{}", config.listen),
    };
    print!(
        "{}",
        crate::credentials::configure_snippet(&creds, &endpoint)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn server_flags_parse() {
        let cli = Cli::try_parse_from([
            "opsloop",
            "server",
            "--listen",
            "127.0.0.1:9",
            "--data-dir",
            "/tmp/x",
            "--log-format",
            "json",
            "--auth",
            "any-key",
            "--ephemeral",
            "--enable-reset",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        let layer = args.layer();
        assert_eq!(layer.listen.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(layer.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(layer.log_format, Some(LogFormat::Json));
        assert_eq!(layer.auth, Some(AuthSetting::AnyKey));
        assert_eq!(layer.ephemeral, Some(true));
        assert_eq!(layer.enable_reset, Some(true));
        assert!(Cli::try_parse_from(["opsloop", "server", "--auth", "none"]).is_err());
    }

    #[test]
    fn logs_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "opsloop",
            "logs",
            "tail",
            "g1",
            "--follow",
            "--since",
            "5m",
            "--filter-pattern",
            "ERROR",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ])
        .unwrap();
        let Command::Logs(LogsArgs {
            command: LogsCommand::Tail(t),
        }) = cli.command
        else {
            panic!("not logs tail")
        };
        assert_eq!(
            (t.group.as_str(), t.follow, t.since.as_str()),
            ("g1", true, "5m")
        );
        assert_eq!(t.filter_pattern.as_deref(), Some("ERROR"));
        assert_eq!(t.client.endpoint_url, "http://127.0.0.1:9");
        let cli = Cli::try_parse_from([
            "opsloop",
            "logs",
            "query",
            "g1",
            "stats count()",
            "--group",
            "g2",
            "--start",
            "2h",
        ])
        .unwrap();
        let Command::Logs(LogsArgs {
            command: LogsCommand::Query(q),
        }) = cli.command
        else {
            panic!("not logs query")
        };
        assert_eq!(
            (q.group.as_str(), q.query.as_str()),
            ("g1", "stats count()")
        );
        assert_eq!(q.more_groups, vec!["g2".to_string()]);
        assert_eq!(q.client.endpoint_url, "http://127.0.0.1:4566");
        let bad = ClientArgs {
            endpoint_url: "https://x:1".into(),
            ..ClientArgs::default()
        };
        assert!(HttpLogs::new(&bad).is_err());
    }

    #[test]
    fn absent_bool_flags_leave_env_in_charge() {
        let cli = Cli::try_parse_from(["opsloop", "server"]).unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        let layer = args.layer();
        assert_eq!(layer.ephemeral, None);
        assert_eq!(layer.enable_reset, None);
    }
}
