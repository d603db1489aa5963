//! Systems Manager behind the AWS `ssm` API (awsJson 1.1): Parameter Store (`params`), OpsCenter
//! (`opsitems`), SSM documents with Amazon-owned built-ins (`documents`), hybrid activations and the
//! managed-node inventory (`activations`), and resource tags (`tags`).
//!
//! Architecture: the wire layer decodes requests into protocol-neutral documents and calls [`Ssm`]
//! through [`opsloop_core::Service`]; [`Ssm::handle`] is a thin dispatch by operation name to the
//! modules, each of which owns its control-store tables (`ssm.*`, keys start `<account>/<region>/`).
//! Writes that touch several rows go through one `ControlStore::batch`. SecureString values are
//! sealed with AES-256-GCM under a key kept in `<data_dir>/ssm/parameter.key` (0600). Run Command,
//! the agent and Automation are later modules on top of these (see the crate's README.md).

pub mod activations;
pub mod automation;
pub mod bus;
pub mod commands;
mod common;
pub mod documents;
pub mod error;
pub mod opsitems;
pub mod params;
mod tags;

use std::path::Path;
use std::sync::Arc;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::ControlStore;
use parking_lot::Mutex;

pub use crate::common::Scope;
use crate::params::crypto::Sealer;

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/ssm-2014-11-06.json");

/// State shared by the modules: the store, the read-modify-write lock, the parameter sealer and
/// the directory of peer services.
pub struct Inner {
    pub store: Arc<dyn ControlStore>,
    /// Serialises control-plane read-modify-write operations.
    pub lock: Mutex<()>,
    pub sealer: Sealer,
    pub directory: Arc<Directory>,
    /// Wakes the event dispatcher after a write that queued events.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Inner {
    /// Apply `ops` atomically; when they queue events, wake the dispatcher.
    pub fn commit(&self, ops: Vec<opsloop_store::WriteOp>) -> Result<(), ApiError> {
        let queues = ops.iter().any(
            |op| matches!(op, opsloop_store::WriteOp::Put { table, .. } if table == bus::TABLE),
        );
        self.store
            .batch(ops)
            .map_err(crate::error::InternalError::from)?;
        if queues {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// The SSM service.
pub struct Ssm {
    inner: Inner,
    /// In-memory state of Run Command and the agent protocol (`commands`).
    commands: commands::State,
    /// In-memory state of the Automation engine (`automation`).
    automation: automation::State,
    /// Background tasks (expired-parameter sweeper, event dispatcher) started by `start`.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// How often expired parameters are swept.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl Ssm {
    /// Open the service over the control store; `data_dir` is the server's data directory (for any
    /// files of its own, under a subdirectory); peers are reached through `directory`. Cheap: the
    /// server must be healthy within milliseconds.
    pub fn open(
        data_dir: &Path,
        control: Arc<dyn ControlStore>,
        directory: Arc<Directory>,
    ) -> Result<Ssm, String> {
        let sealer = Sealer::open(&data_dir.join("ssm")).map_err(|e| e.to_string())?;
        Ok(Ssm {
            inner: Inner {
                store: control,
                lock: Mutex::new(()),
                sealer,
                directory,
                wake: Arc::new(tokio::sync::Notify::new()),
            },
            tasks: Mutex::new(Vec::new()),
            commands: commands::State::default(),
            automation: automation::State::default(),
        })
    }

    /// Shared state of the modules.
    pub fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Run Command / agent state.
    pub fn commands(&self) -> &commands::State {
        &self.commands
    }

    /// Automation engine state.
    pub fn automation(&self) -> &automation::State {
        &self.automation
    }

    /// Start background work on the current tokio runtime. Called once.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        let store = self.inner.store.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                let store = store.clone();
                let swept = tokio::task::spawn_blocking(move || {
                    params::policies::sweep(&*store, common::now())
                })
                .await;
                if let Ok(Err(e)) = swept {
                    tracing::warn!(error = %e, "parameter expiry sweep failed");
                }
            }
        });
        let dispatcher = tokio::spawn(bus::run(
            self.inner.store.clone(),
            self.inner.directory.clone(),
            self.inner.wake.clone(),
        ));
        self.tasks.lock().extend([task, dispatcher]);
        commands::start(self)?;
        automation::start(self)?;
        Ok(())
    }

    /// The control store was wiped: drop in-memory state derived from it (none is kept).
    pub fn reset(&self) {}

    /// Stop background work (blocking; called once at shutdown).
    pub fn shutdown(&self) {
        commands::shutdown(self);
        automation::shutdown(self);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let scope = Scope::of(ctx);
        let inner = &self.inner;
        let op = ctx.operation.as_str();
        if commands::OPERATIONS.contains(&op) {
            return commands::handle(self, ctx, &scope, input).await;
        }
        if automation::OPERATIONS.contains(&op) {
            return automation::handle(self, ctx, &scope, input).await;
        }
        let result = match op {
            "PutParameter" => params::put_parameter(inner, &scope, &input),
            "GetParameter" => params::get_parameter(inner, &scope, &input),
            "GetParameters" => params::get_parameters(inner, &scope, &input),
            "GetParametersByPath" => params::query::get_parameters_by_path(inner, &scope, &input),
            "DescribeParameters" => params::query::describe_parameters(inner, &scope, &input),
            "DeleteParameter" => params::delete_parameter(inner, &scope, &input),
            "DeleteParameters" => params::delete_parameters(inner, &scope, &input),
            "GetParameterHistory" => params::get_parameter_history(inner, &scope, &input),
            "LabelParameterVersion" => params::label_parameter_version(inner, &scope, &input),
            "UnlabelParameterVersion" => params::unlabel_parameter_version(inner, &scope, &input),
            "AddTagsToResource" => tags::add_tags(inner, &scope, &input),
            "RemoveTagsFromResource" => tags::remove_tags(inner, &scope, &input),
            "ListTagsForResource" => tags::list_tags(inner, &scope, &input),
            "CreateOpsItem" => opsitems::create_ops_item(inner, &scope, &input),
            "GetOpsItem" => opsitems::get_ops_item(inner, &scope, &input),
            "UpdateOpsItem" => opsitems::update_ops_item(inner, &scope, &input),
            "DeleteOpsItem" => opsitems::delete_ops_item(inner, &scope, &input),
            "DescribeOpsItems" => opsitems::query::describe_ops_items(inner, &scope, &input),
            "AssociateOpsItemRelatedItem" => opsitems::related::associate(inner, &scope, &input),
            "DisassociateOpsItemRelatedItem" => {
                opsitems::related::disassociate(inner, &scope, &input)
            }
            "ListOpsItemRelatedItems" => opsitems::related::list(inner, &scope, &input),
            "ListOpsItemEvents" => opsitems::query::list_ops_item_events(inner, &scope, &input),
            "CreateDocument" => documents::create_document(inner, &scope, &input),
            "UpdateDocument" => documents::update_document(inner, &scope, &input),
            "UpdateDocumentDefaultVersion" => {
                documents::update_document_default_version(inner, &scope, &input)
            }
            "GetDocument" => documents::get_document(inner, &scope, &input),
            "DescribeDocument" => documents::describe_document(inner, &scope, &input),
            "ListDocuments" => documents::list::list_documents(inner, &scope, &input),
            "ListDocumentVersions" => {
                documents::list::list_document_versions(inner, &scope, &input)
            }
            "DeleteDocument" => documents::delete_document(inner, &scope, &input),
            "DescribeDocumentPermission" => {
                documents::list::describe_document_permission(inner, &scope, &input)
            }
            "ModifyDocumentPermission" => {
                documents::list::modify_document_permission(inner, &scope, &input)
            }
            "CreateActivation" => activations::create_activation(inner, &scope, &input),
            "DescribeActivations" => activations::describe_activations(inner, &scope, &input),
            "DeleteActivation" => activations::delete_activation(inner, &scope, &input),
            "DescribeInstanceInformation" => {
                activations::describe_instance_information(inner, &scope, &input)
            }
            _ => Err(ApiError::with_status(
                "NotImplemented",
                501,
                format!("Operation {op} is not implemented by this opsloop release."),
            )),
        };
        if let Err(e) = &result {
            tracing::debug!(operation = op, kind = %e.kind, message = %e.message, "ssm request failed");
        }
        result
    }
}

impl Service for Ssm {
    fn model_json(&self) -> &'static str {
        MODEL_JSON
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(self.handle(ctx, input))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A service state over an in-memory store, for unit tests.
    use super::*;

    pub fn inner() -> Inner {
        Inner {
            store: Arc::new(opsloop_store::SqliteStore::memory().expect("memory store")),
            lock: Mutex::new(()),
            sealer: Sealer::ephemeral(),
            directory: Directory::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn scope() -> Scope {
        Scope::new("123456789012", "us-east-1")
    }
}
