//! The opsloop managed-node agent behind `opsloop agent`.
//!
//! On first start it registers through an SSM hybrid activation (`RegisterManagedInstance` of the
//! `Opsloop Agent` protocol, signed with the activation id and the SHA-256 of the code) and keeps
//! the node id and the node's own key pair in the state directory ([`state`]); later starts reuse
//! them. Then it runs until told to stop:
//!
//! - a heartbeat (`UpdateInstanceInformation`: platform, agent version, IP, hostname) every
//!   [`Options::heartbeat`];
//! - a long poll (`GetMessages`, 20 s) for commands; each command runs in its own task
//!   ([`runner`]) while a reporter sends its output in chunks (`SendReply`) every
//!   [`Options::chunk_interval`] and learns of cancellations from the answers;
//! - a deliverer that sends finished results (kept in `results/` until acknowledged) with
//!   `Final: true`, so each result reaches the server exactly once even across server restarts,
//!   network loss or an agent restart.
//!
//! - with [`Options::monitoring`] (a CloudWatch agent JSON config), the monitoring agent
//!   (`opsloop_cwagent::run`): host metrics in `CWAgent` with the node id as `InstanceId`, log files
//!   tailed into log groups, published with the node's key (which the server lets do exactly
//!   PutMetricData and the Logs write calls in the node's account); its positions live in
//!   `<state_dir>/cwagent`.
//!
//! Network errors back off exponentially (1 s doubling to 30 s) and never end the agent.

pub mod client;
pub mod runner;
pub mod state;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use client::{AgentClient, Key};
use state::{PendingResult, Registration, StateDir};

/// Version reported in heartbeats.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
const POLL_WAIT_S: u64 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Agent errors.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("state directory: {0}")]
    State(String),
    #[error("network: {0}")]
    Network(String),
    #[error("{kind}: {message}")]
    Api { kind: String, message: String },
}

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: String,
    pub region: String,
    pub state_dir: PathBuf,
    pub activation_id: Option<String>,
    pub activation_code: Option<String>,
    pub heartbeat: Duration,
    pub chunk_interval: Duration,
    /// The CloudWatch agent configuration (JSON text) to run the monitoring agent with.
    pub monitoring: Option<String>,
}

impl Options {
    pub fn new(endpoint: &str, region: &str, state_dir: PathBuf) -> Options {
        Options {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            state_dir,
            activation_id: None,
            activation_code: None,
            heartbeat: Duration::from_secs(30),
            chunk_interval: Duration::from_secs(1),
            monitoring: None,
        }
    }
}

/// What the node reports about itself.
pub fn node_info(endpoint_authority: &str) -> Value {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        os.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    // The local address used to reach the server (no packet is sent by a UDP connect).
    let ip = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(endpoint_authority)?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    json!({
        "PlatformType": if cfg!(target_os = "macos") { "MacOS" } else { "Linux" },
        "PlatformName": field("NAME"),
        "PlatformVersion": field("VERSION_ID"),
        "AgentVersion": AGENT_VERSION,
        "IPAddress": ip,
        "ComputerName": hostname,
    })
}

fn backoff(d: &mut Duration) -> Duration {
    let now = *d;
    *d = (*d * 2).min(MAX_BACKOFF);
    now
}

/// Register once (or load the stored registration).
pub async fn register_or_load(
    opts: &Options,
    state: &StateDir,
    client: &AgentClient,
) -> Result<Registration, AgentError> {
    if let Some(r) = state.registration()? {
        return Ok(r);
    }
    let (Some(id), Some(code)) = (&opts.activation_id, &opts.activation_code) else {
        return Err(AgentError::Config(format!(
            "{} holds no registration: pass --activation-id and --activation-code",
            state.root().display()
        )));
    };
    use sha2::Digest;
    let key = Key {
        access_key_id: id.clone(),
        secret: hex::encode(sha2::Sha256::digest(code.as_bytes())),
    };
    let mut input = node_info(&client.authority());
    input["ActivationId"] = json!(id);
    input["ActivationCode"] = json!(code);
    let mut delay = Duration::from_secs(1);
    let out = loop {
        match client
            .call(
                &key,
                "RegisterManagedInstance",
                &input,
                Duration::from_secs(30),
            )
            .await
        {
            Ok(v) => break v,
            Err(AgentError::Network(e)) => {
                tracing::warn!(error = %e, "registration failed; retrying");
                tokio::time::sleep(backoff(&mut delay)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let s = |k: &str| out.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let r = Registration {
        instance_id: s("InstanceId"),
        region: opts.region.clone(),
        endpoint: opts.endpoint.clone(),
        access_key_id: s("AccessKeyId"),
        secret_access_key: s("SecretAccessKey"),
        name: s("Name"),
    };
    state.save_registration(&r)?;
    tracing::info!(instance = %r.instance_id, "registered");
    Ok(r)
}

/// A running agent's shared parts.
struct Agent {
    client: AgentClient,
    key: Key,
    instance_id: String,
    state: StateDir,
    results: Notify,
    chunk_interval: Duration,
}

impl Agent {
    async fn call(&self, op: &str, input: Value, timeout: Duration) -> Result<Value, AgentError> {
        self.client.call(&self.key, op, &input, timeout).await
    }

    async fn heartbeat(&self, status: &str) -> Result<(), AgentError> {
        let mut input = node_info(&self.client.authority());
        input["InstanceId"] = json!(self.instance_id);
        input["AgentStatus"] = json!(status);
        self.call("UpdateInstanceInformation", input, Duration::from_secs(10))
            .await
            .map(|_| ())
    }

    /// Send every kept result; drop those the server acknowledged.
    async fn deliver_results(&self) -> Result<(), AgentError> {
        for r in self.state.pending_results()? {
            let input = json!({
                "InstanceId": self.instance_id,
                "CommandId": r.command_id,
                "PluginName": r.plugin_name,
                "StandardOutput": r.stdout,
                "StandardError": r.stderr,
                "Final": true,
                "Status": r.status,
                "StatusDetails": r.status_details,
                "ResponseCode": r.response_code,
                "PluginResults": r.plugins.iter().map(|p| json!({
                    "Name": p.name,
                    "Status": p.status,
                    "StatusDetails": p.status_details,
                    "ResponseCode": p.response_code,
                    "StandardOutput": p.stdout,
                    "StandardError": p.stderr,
                    "StartDateTime": p.started,
                    "EndDateTime": p.ended,
                })).collect::<Vec<_>>(),
            });
            match self.call("SendReply", input, Duration::from_secs(30)).await {
                Ok(_) => self.state.drop_result(&r.command_id)?,
                Err(AgentError::Api { kind, message }) if kind == "InvalidCommandId" => {
                    tracing::warn!(command = %r.command_id, %message, "server does not know the command; result dropped");
                    self.state.drop_result(&r.command_id)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Run one delivered command, reporting output as it comes.
    async fn execute(self: Arc<Self>, msg: Value) {
        let payload: Value = msg
            .get("Payload")
            .and_then(Value::as_str)
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        let command_id = payload["CommandId"].as_str().unwrap_or("").to_string();
        let plugins = payload["Plugins"].as_array().cloned().unwrap_or_default();
        let plugin_name = plugins
            .first()
            .and_then(|p| p["name"].as_str())
            .unwrap_or("")
            .to_string();
        tracing::info!(command = %command_id, "command received");
        let out = Arc::new(runner::Buffer::default());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut run = tokio::spawn(runner::run_plugins(
            plugins,
            self.state.work_dir(&command_id),
            out.clone(),
            cancel_rx,
        ));
        let mut tick = tokio::time::interval(self.chunk_interval);
        tick.tick().await;
        let (outcome, steps) = loop {
            tokio::select! {
                done = &mut run => break done.unwrap_or((runner::Outcome {
                    plugin_name: plugin_name.clone(), status: "Failed", details: "Failed", code: -1 }, vec![])),
                _ = tick.tick() => {
                    let (o, e) = out.take();
                    let input = json!({"InstanceId": self.instance_id, "CommandId": command_id,
                        "PluginName": plugin_name, "StandardOutput": o, "StandardError": e});
                    match self.call("SendReply", input, Duration::from_secs(10)).await {
                        Ok(r) => if r.get("Cancel").and_then(Value::as_bool) == Some(true) {
                            let _ = cancel_tx.send(true);
                        },
                        Err(err) => {
                            tracing::debug!(error = %err, "output chunk not delivered; kept");
                            out.unshift(o, e);
                        }
                    }
                }
            }
        };
        let (o, e) = out.take();
        let result = PendingResult {
            command_id: command_id.clone(),
            plugin_name: outcome.plugin_name,
            status: outcome.status.to_string(),
            status_details: outcome.details.to_string(),
            response_code: outcome.code,
            stdout: o,
            stderr: e,
            plugins: steps
                .into_iter()
                .map(|s| state::StepResult {
                    name: s.name,
                    status: s.status.to_string(),
                    status_details: s.details.to_string(),
                    response_code: s.code,
                    stdout: s.stdout,
                    stderr: s.stderr,
                    started: s.started,
                    ended: s.ended,
                })
                .collect(),
        };
        if let Err(e) = self.state.save_result(&result) {
            tracing::error!(error = %e, command = %command_id, "cannot keep the result");
        }
        tracing::info!(command = %command_id, status = %result.status, code = result.response_code, "command finished");
        self.results.notify_one();
    }
}

/// Register if needed, then run until `shutdown` resolves.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let monitoring = match &opts.monitoring {
        Some(text) => {
            let config = opsloop_cwagent::AgentConfig::parse(text)
                .map_err(|e| AgentError::Config(format!("monitoring configuration: {e}")))?;
            for w in &config.warnings {
                tracing::warn!(warning = %w, "monitoring configuration");
            }
            Some(config)
        }
        None => None,
    };
    let state = StateDir::open(&opts.state_dir)?;
    let client = AgentClient::new(&opts.endpoint, &opts.region)?;
    let reg = register_or_load(&opts, &state, &client).await?;
    let agent = Arc::new(Agent {
        client,
        key: Key {
            access_key_id: reg.access_key_id.clone(),
            secret: reg.secret_access_key.clone(),
        },
        instance_id: reg.instance_id.clone(),
        state,
        results: Notify::new(),
        chunk_interval: opts.chunk_interval,
    });
    tracing::info!(instance = %reg.instance_id, endpoint = %opts.endpoint, "agent running");

    let hb = {
        let a = agent.clone();
        let every = opts.heartbeat;
        tokio::spawn(async move {
            loop {
                if let Err(e) = a.heartbeat("Active").await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let deliverer = {
        let a = agent.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            loop {
                match a.deliver_results().await {
                    Ok(()) => {
                        delay = Duration::from_secs(1);
                        let _ = tokio::time::timeout(Duration::from_secs(5), a.results.notified())
                            .await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "results not delivered; retrying");
                        tokio::time::sleep(backoff(&mut delay)).await;
                    }
                }
            }
        })
    };
    let poller = {
        let a = agent.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            loop {
                let input = json!({"InstanceId": a.instance_id, "WaitSeconds": POLL_WAIT_S});
                match a
                    .call("GetMessages", input, Duration::from_secs(POLL_WAIT_S + 10))
                    .await
                {
                    Ok(v) => {
                        delay = Duration::from_secs(1);
                        for m in v
                            .get("Messages")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                        {
                            tokio::spawn(a.clone().execute(m));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "polling for commands failed; retrying");
                        tokio::time::sleep(backoff(&mut delay)).await;
                    }
                }
            }
        })
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let monitor = match monitoring {
        Some(config) => {
            let sink = opsloop_cwagent::HttpSink::new(opsloop_cwagent::HttpSinkConfig {
                endpoint: opts.endpoint.clone(),
                region: reg.region.clone(),
                access_key_id: reg.access_key_id.clone(),
                secret_access_key: reg.secret_access_key.clone(),
                session_token: None,
                timeout: Duration::from_secs(10),
            })
            .map_err(|e| AgentError::Config(format!("monitoring sink: {e}")))?;
            let dir = opts.state_dir.join("cwagent");
            let id = reg.instance_id.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = opsloop_cwagent::run(config, Arc::new(sink), id, dir, stop_rx).await
                {
                    tracing::error!(error = %e, "monitoring agent stopped");
                }
            }))
        }
        None => None,
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    if let Some(m) = monitor {
        let _ = tokio::time::timeout(Duration::from_secs(3), m).await;
    }
    poller.abort();
    hb.abort();
    // Best effort: tell the server this node stops (it shows ConnectionLost at once).
    let _ = tokio::time::timeout(Duration::from_secs(2), agent.heartbeat("Stopping")).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), agent.deliver_results()).await;
    deliverer.abort();
    Ok(())
}
