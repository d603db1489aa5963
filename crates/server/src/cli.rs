//! The command line: `opsloop server` runs the server, `opsloop credentials` prints the key pair of a
//! data directory as an `aws configure` snippet. Flags map onto configuration [`Layer`]s; see
//! [`crate::config`] for the precedence (flag > env > file > default).

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
