//! Wiring: from a [`Config`] to a running stack — data directory (locked against a second server),
//! key pair, control-plane store (`state.db`), metric store (`metrics/`), the services (CloudWatch,
//! CloudWatch Logs with its event store in `logs/`, SNS), the [`Directory`] they call each other
//! through, and the wire [`Gateway`] that serves them.
//! [`build`] does only cheap work (open files, parse models) so the server is healthy within
//! milliseconds of starting; [`App::start`] then starts the services' background work (alarm
//! evaluation, log retention, SNS delivery) on the running tokio runtime.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use opsloop_cloudwatch::CloudWatch;
use opsloop_contacts::{Contacts, ContactsConfig};
use opsloop_core::{
    ApiError, BoxFuture, Directory, Health, RequestContext, Service, ValidationFailure, Value,
};
use opsloop_events::Events;
use opsloop_incidents::Incidents;
use opsloop_logs::Logs;
use opsloop_scheduler::Scheduler;
use opsloop_sns::{SmtpConfig, Sns, SnsConfig};
use opsloop_ssm::Ssm;
use opsloop_store::{ControlStore, SqliteStore};
use opsloop_tsdb::MetricStore;
use opsloop_wire::{AuthMode, Credentials, Gateway, GatewayConfig};

use crate::config::{AuthSetting, Config, LogsSkipIndex};
use crate::credentials::{self, Origin, SingleKey, WithNodeKeys};
use opsloop_logs::storage::SkipIndex;

/// SQLite file of the control-plane store, inside the data directory.
pub const STATE_DB: &str = "state.db";
/// Directory of the metric store, inside the data directory.
pub const METRICS_DIR: &str = "metrics";
/// Lock file that keeps two servers off one data directory.
pub const LOCK_FILE: &str = ".lock";

/// The whole server stack, minus the listener.
pub struct App {
    config: Config,
    data_dir: PathBuf,
    gateway: Gateway,
    directory: Arc<Directory>,
    services: Services,
    metrics: Arc<dyn MetricStore>,
    control: Arc<dyn ControlStore>,
    credentials: Option<(Credentials, Origin)>,
    started: Instant,
    _lock: File,
    /// The temporary data directory of an `--ephemeral` server; removed when the app is dropped
    /// (declared last so the stores above are dropped first).
    ephemeral: Option<tempfile::TempDir>,
}

/// Build the stack described by `config`.
pub fn build(config: Config) -> Result<App> {
    let started = Instant::now();
    let ephemeral = if config.ephemeral {
        let dir = tempfile::Builder::new()
            .prefix("opsloop-ephemeral-")
            .tempdir()
            .context("cannot create the ephemeral data directory")?;
        Some(dir)
    } else {
        None
    };
    let data_dir = match &ephemeral {
        Some(dir) => dir.path().to_path_buf(),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("cannot create data directory {}", config.data_dir.display())
            })?;
            config.data_dir.clone()
        }
    };
    let lock = lock_data_dir(&data_dir)?;

    let need_keys = config.auth == AuthSetting::Sigv4;
    let credentials = credentials::resolve(&config, &data_dir, need_keys)?;

    let control: Arc<dyn ControlStore> = Arc::new(
        SqliteStore::open(&data_dir.join(STATE_DB))
            .with_context(|| format!("cannot open {}", data_dir.join(STATE_DB).display()))?,
    );
    let metrics = open_metrics(&data_dir.join(METRICS_DIR))?;

    let gateway_config = GatewayConfig {
        auth: match config.auth {
            AuthSetting::Sigv4 => AuthMode::SigV4,
            AuthSetting::AnyKey => AuthMode::AnyKey,
        },
        default_account: config.account_id.clone(),
        max_body_bytes: config.max_body_bytes,
        ..GatewayConfig::default()
    };
    let key_store = SingleKey::new(credentials.as_ref().map(|(c, _)| c.clone()));
    let node_store = control.clone();
    let key_store = WithNodeKeys::new(
        key_store,
        Box::new(move |id: &str| opsloop_ssm::commands::lookup_key(&*node_store, id)),
    );
    let mut gateway = Gateway::new(gateway_config, Arc::new(key_store));
    // Services find each other here (an alarm action publishing to SNS) once all are registered.
    let directory = Directory::new();
    let services = Services::open(&config, &data_dir, &metrics, &control, &directory)?;
    for service in services.all() {
        gateway
            .register(service)
            .context("cannot register service")?;
    }
    // The managed-node agent protocol (models/opsloop-agent.json), served by the SSM crate.
    gateway
        .register(Arc::new(opsloop_ssm::commands::AgentService::new(
            &services.ssm,
        )))
        .context("cannot register the agent service")?;
    for (service_id, service) in gateway.services() {
        directory.insert(&service_id, Arc::new(WeakService::new(&service)));
    }

    tracing::info!(
        data_dir = %data_dir.display(),
        ephemeral = config.ephemeral,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "stores opened"
    );
    Ok(App {
        config,
        data_dir,
        gateway,
        directory,
        services,
        metrics,
        control,
        credentials,
        started,
        _lock: lock,
        ephemeral,
    })
}

/// Open the metric store in `dir`.
fn open_metrics(dir: &Path) -> Result<Arc<dyn MetricStore>> {
    let tsdb = opsloop_tsdb::Tsdb::open(dir, opsloop_tsdb::TsdbOptions::default())
        .with_context(|| format!("cannot open metric store {}", dir.display()))?;
    Ok(tsdb)
}

/// The services this binary serves, concretely typed for their lifecycle hooks.
struct Services {
    cloudwatch: Arc<CloudWatch>,
    logs: Arc<Logs>,
    sns: Arc<Sns>,
    events: Arc<Events>,
    scheduler: Arc<Scheduler>,
    ssm: Arc<Ssm>,
    incidents: Arc<Incidents>,
    contacts: Arc<Contacts>,
}

impl Services {
    fn open(
        config: &Config,
        data_dir: &Path,
        metrics: &Arc<dyn MetricStore>,
        control: &Arc<dyn ControlStore>,
        directory: &Arc<Directory>,
    ) -> Result<Services> {
        let cloudwatch =
            CloudWatch::new(metrics.clone(), control.clone()).with_directory(directory.clone());
        let mut sns_config = SnsConfig::new(config.public_base_url(), data_dir);
        if let Some(url) = &config.sns_smtp_url {
            let smtp = SmtpConfig::from_url(url, &config.sns_email_from)
                .map_err(|e| anyhow!("invalid sns_smtp_url {url:?}: {e}"))?;
            sns_config.smtp = Some(smtp);
        }
        sns_config.extra_ca_file = config.sns_ca_file.clone();
        let sns = Sns::new(control.clone(), sns_config).context("cannot open the SNS state")?;
        let log_options = opsloop_logs::storage::StoreOptions {
            skip_index: match config.logs_skip_index {
                LogsSkipIndex::Off => SkipIndex::Off,
                LogsSkipIndex::Idle => SkipIndex::Idle,
                LogsSkipIndex::Checkpoint => SkipIndex::Checkpoint,
            },
            ..Default::default()
        };
        let logs = Logs::open_with(data_dir, control.clone(), log_options)
            .map_err(|e| anyhow!("cannot open the log store in {}: {e}", data_dir.display()))?
            .with_directory(directory.clone());
        let events = Events::open(data_dir, control.clone(), directory.clone())
            .map_err(|e| anyhow!("cannot open EventBridge: {e}"))?;
        let scheduler = Scheduler::open(data_dir, control.clone(), directory.clone())
            .map_err(|e| anyhow!("cannot open EventBridge Scheduler: {e}"))?;
        let ssm = Ssm::open(data_dir, control.clone(), directory.clone())
            .map_err(|e| anyhow!("cannot open Systems Manager: {e}"))?;
        let incidents = Incidents::open(data_dir, control.clone(), directory.clone())
            .map_err(|e| anyhow!("cannot open Incident Manager: {e}"))?;
        let contacts_config = ContactsConfig {
            smtp_url: config.contacts_smtp_url.clone(),
            email_from: config.contacts_email_from.clone(),
            sms_gateway_url: config.contacts_sms_gateway_url.clone(),
            voice_gateway_url: config.contacts_voice_gateway_url.clone(),
            minute_seconds: config.contacts_minute_seconds,
        };
        let contacts = Contacts::open(
            data_dir,
            control.clone(),
            directory.clone(),
            contacts_config,
        )
        .map_err(|e| anyhow!("cannot open Incident Manager contacts: {e}"))?;
        Ok(Services {
            cloudwatch: Arc::new(cloudwatch),
            logs: Arc::new(logs),
            sns: Arc::new(sns),
            events: Arc::new(events),
            scheduler: Arc::new(scheduler),
            ssm: Arc::new(ssm),
            incidents: Arc::new(incidents),
            contacts: Arc::new(contacts),
        })
    }

    fn all(&self) -> Vec<Arc<dyn Service>> {
        vec![
            self.cloudwatch.clone(),
            self.logs.clone(),
            self.sns.clone(),
            self.events.clone(),
            self.scheduler.clone(),
            self.ssm.clone(),
            self.incidents.clone(),
            self.contacts.clone(),
        ]
    }
}

/// A [`Directory`] entry that does not keep its service alive. Services hold the directory, so
/// strong entries would form a cycle that keeps every service — and the stores they hold — alive
/// after shutdown; with weak entries the stores are dropped (and SQLite closed cleanly) at exit.
struct WeakService {
    service: Weak<dyn Service>,
    model: &'static str,
}

impl WeakService {
    fn new(service: &Arc<dyn Service>) -> Self {
        WeakService {
            service: Arc::downgrade(service),
            model: service.model_json(),
        }
    }

    fn stopped() -> ApiError {
        ApiError::with_status("ServiceUnavailable", 503, "the service has stopped")
    }
}

impl Service for WeakService {
    fn model_json(&self) -> &'static str {
        self.model
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        let service = self.service.upgrade();
        Box::pin(async move {
            match service {
                Some(service) => service.call(ctx, input).await,
                None => Err(Self::stopped()),
            }
        })
    }

    fn validation_error(&self, failure: &ValidationFailure) -> ApiError {
        match self.service.upgrade() {
            Some(service) => service.validation_error(failure),
            None => Self::stopped(),
        }
    }

    fn health(&self) -> Health {
        match self.service.upgrade() {
            Some(service) => service.health(),
            None => Health {
                ready: false,
                detail: Some("stopped".to_string()),
            },
        }
    }
}

/// Take an exclusive lock on `<dir>/.lock`, held for the life of the app.
fn lock_data_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "data directory {} is in use by another opsloop server (lock {} is held)",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

impl App {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data directory in use (the temporary one with `--ephemeral`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The services of this process by serviceId, for in-process calls between them.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The key pair clients sign with, and where it came from (`None` in any-key mode without keys).
    pub fn credentials(&self) -> Option<&(Credentials, Origin)> {
        self.credentials.as_ref()
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral.is_some()
    }

    /// Seconds since [`build`] started.
    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Start the services' background work (alarm evaluation, log retention, SNS delivery). Call
    /// once, inside the tokio runtime, before serving.
    pub fn start(&self) -> Result<()> {
        self.services.cloudwatch.start();
        self.services.logs.start();
        self.services
            .sns
            .start()
            .context("cannot start SNS delivery")?;
        self.services
            .events
            .start()
            .map_err(|e| anyhow!("cannot start EventBridge delivery: {e}"))?;
        self.services
            .scheduler
            .start()
            .map_err(|e| anyhow!("cannot start EventBridge Scheduler: {e}"))?;
        self.services
            .ssm
            .start()
            .map_err(|e| anyhow!("cannot start Systems Manager: {e}"))?;
        self.services
            .incidents
            .start()
            .map_err(|e| anyhow!("cannot start Incident Manager: {e}"))?;
        self.services
            .contacts
            .start()
            .map_err(|e| anyhow!("cannot start Incident Manager contacts: {e}"))?;
        Ok(())
    }

    /// Answer one of SNS's public links (`/_opsloop/sns/...`: confirm, unsubscribe, signing cert).
    pub async fn sns_public(
        &self,
        method: &str,
        path: &str,
        query: &str,
    ) -> opsloop_sns::PublicResponse {
        self.services.sns.handle_public(method, path, query).await
    }

    /// Delete all state: every metric, log event and control-plane row, then drop what the
    /// services hold in memory about it.
    pub async fn reset(self: &Arc<Self>) -> Result<()> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            app.metrics.wipe().context("cannot wipe the metric store")?;
            app.control
                .wipe()
                .context("cannot wipe the control-plane store")?;
            Ok(())
        })
        .await
        .context("reset task failed")??;
        self.services
            .logs
            .reset()
            .await
            .map_err(|e| anyhow!("cannot wipe the log store: {e}"))?;
        self.services.sns.reset();
        self.services.events.reset();
        self.services.scheduler.reset();
        self.services.ssm.reset();
        self.services.incidents.reset();
        self.services.contacts.reset();
        let cloudwatch = self.services.cloudwatch.clone();
        tokio::task::spawn_blocking(move || cloudwatch.reload())
            .await
            .context("reset task failed")?
            .map_err(|e| anyhow!("cannot reload alarms after the reset: {e}"))?;
        Ok(())
    }

    /// Stop background work, then flush and close the stores (metrics, log events). Blocking.
    /// Later requests that write fail; call once serving has stopped.
    pub fn close(&self) -> Result<()> {
        self.services.sns.shutdown();
        self.services.events.shutdown();
        self.services.scheduler.shutdown();
        self.services.ssm.shutdown();
        self.services.incidents.shutdown();
        self.services.contacts.shutdown();
        self.services.logs.close();
        self.metrics
            .close()
            .context("cannot close the metric store")?;
        Ok(())
    }
}
