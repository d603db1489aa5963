//! Run Command and the managed-node side of the agent protocol.
//!
//! - `send`: the user API (SendCommand, ListCommands, ListCommandInvocations,
//!   GetCommandInvocation, CancelCommand); [`send_command`] and [`get_command_invocation`] are the
//!   plain functions Automation's `aws:runCommand` calls.
//! - `agent`: the `Opsloop Agent` service (models/opsloop-agent.json) the `opsloop agent` process
//!   speaks: RegisterManagedInstance, UpdateInstanceInformation (heartbeat), GetMessages (long
//!   poll), SendReply (output chunks and the final result), and the node-key lookup the gateway's
//!   credential store uses.
//! - `model`: rows, status roll-up and response shapes.
//! - `group`: group commit; concurrent nodes' status changes share one transaction.
//!
//! Every status change goes through [`apply`], decided under `Inner::lock`: one change holds the
//! command, the changed invocations, index rows and the EventBridge events ("EC2 Command
//! Status-change Notification", "EC2 Command Invocation Status-change Notification") for the
//! crate's outbox. It is queued to the group commit, and the caller answers only after the group
//! holding it is committed. SNS notifications are published after the commit. A background
//! sweeper ends invocations whose delivery timeout (TimeoutSeconds) or execution deadline passed.

pub mod agent;
pub mod expand;
pub mod group;
pub mod model;
pub mod send;
pub mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use parking_lot::Mutex;
use serde_json::json;

pub use agent::{lookup_key, AgentService};
use model::{roll_up, Command, Invocation, COMMANDS, INVOCATIONS};
pub use send::{get_command_invocation, send_command};

use crate::common::{get_row, now, scan_rows, to_bytes};
use crate::error::InternalError;
use crate::{bus, Scope, Ssm};

/// `ssm.cmd_pending`: key `<account>/<region>/<instance>/<command>`, value the delivery deadline.
pub const PENDING: &str = "ssm.cmd_pending";
/// `ssm.cmd_running`: key `<account>/<region>/<command>/<instance>`, value the execution deadline.
pub const RUNNING: &str = "ssm.cmd_running";
/// Extra seconds past a delivered command's own timeouts before the server declares it timed out
/// (the agent normally reports ExecutionTimedOut itself first).
const EXECUTION_GRACE_S: f64 = 30.0;
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The operations this module answers (lib.rs dispatches them here).
pub const OPERATIONS: &[&str] = &[
    "SendCommand",
    "ListCommands",
    "ListCommandInvocations",
    "GetCommandInvocation",
    "CancelCommand",
];

/// In-memory state: one wake-up per node for GetMessages long polls, and the sweeper task.
#[derive(Default)]
pub struct State {
    waiters: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// The newest long poll of each node: a new GetMessages supersedes an older one still
    /// waiting, which answers empty at once (its agent was killed or lost the connection; a
    /// message handed to it would be lost).
    polls: Mutex<HashMap<String, u64>>,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when the server is stopping: long polls answer at once so the HTTP drain is quick.
    stopping: std::sync::atomic::AtomicBool,
    stop: tokio::sync::Notify,
    /// Seconds of silence after which the sweeper marks a node ConnectionLost (0: the default,
    /// `activations::CONNECTION_LOST_AFTER_S`; set by the test-only environment variable
    /// [`LOST_AFTER_ENV`]).
    lost_after_s: Mutex<f64>,
    /// Group commit of status changes (see [`group`]).
    group: Arc<group::Group>,
}

/// Test-only knob: seconds without a heartbeat before a node shows ConnectionLost.
pub const LOST_AFTER_ENV: &str = "OPSLOOP_TEST_SSM_CONNECTION_LOST_AFTER_S";

impl State {
    /// The group-commit queue every Run Command change goes through.
    pub fn group(&self) -> &group::Group {
        &self.group
    }

    /// The wake-up of node `instance_id`.
    pub fn waiter(&self, instance_id: &str) -> Arc<tokio::sync::Notify> {
        self.waiters
            .lock()
            .entry(instance_id.to_string())
            .or_default()
            .clone()
    }

    /// Register a new long poll of `instance_id`, superseding (and waking) any older one; returns
    /// its generation for [`State::is_current_poll`].
    pub fn begin_poll(&self, instance_id: &str) -> u64 {
        let generation = {
            let mut polls = self.polls.lock();
            let g = polls.entry(instance_id.to_string()).or_default();
            *g += 1;
            *g
        };
        self.waiter(instance_id).notify_waiters();
        generation
    }

    /// Is `generation` still the newest long poll of `instance_id`?
    pub fn is_current_poll(&self, instance_id: &str, generation: u64) -> bool {
        self.polls.lock().get(instance_id).copied() == Some(generation)
    }

    /// Wake node `instance_id`'s long poll (a permit is kept when nobody waits).
    pub fn wake(&self, instance_id: &str) {
        self.waiter(instance_id).notify_one();
    }

    /// Is the server stopping?
    pub fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// End every long poll now and answer later ones at once.
    pub fn begin_stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.stop.notify_waiters();
    }

    /// Resolves when [`State::begin_stop`] is called after this was created.
    pub fn stopped(&self) -> tokio::sync::futures::Notified<'_> {
        self.stop.notified()
    }
}

/// Answer one of [`OPERATIONS`].
pub async fn handle(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: Value,
) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "SendCommand" => {
            send::queue_send_command(ssm, scope, &input)?
                .wait_async(ssm)
                .await
        }
        "ListCommands" => send::list_commands(ssm, scope, &input),
        "ListCommandInvocations" => send::list_command_invocations(ssm, scope, &input),
        "GetCommandInvocation" => send::get_command_invocation(ssm, scope, &input),
        "CancelCommand" => {
            send::queue_cancel_command(ssm, scope, &input)?
                .wait_async(ssm)
                .await
        }
        op => Err(ApiError::with_status(
            "NotImplemented",
            501,
            format!("Operation {op} is not implemented by this opsloop release."),
        )),
    }
}

/// Start the timeout sweeper (called from `Ssm::start`).
pub fn start(ssm: &Arc<Ssm>) -> Result<(), String> {
    if let Some(v) = std::env::var(LOST_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        tracing::warn!(seconds = v, "test knob {LOST_AFTER_ENV} in effect");
        *ssm.commands().lost_after_s.lock() = v;
    }
    ssm.commands()
        .group
        .start(ssm.inner().store.clone(), ssm.inner().wake.clone());
    let weak = Arc::downgrade(ssm);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        let mut statuses = status::StatusPublisher::default();
        loop {
            tick.tick().await;
            let Some(ssm) = weak.upgrade() else { return };
            let dir = ssm.inner().directory.clone();
            let swept = tokio::task::spawn_blocking(move || {
                let t = now();
                sweep(&ssm, t)?;
                let nodes = scan_rows::<crate::activations::ManagedInstance>(
                    &*ssm.inner().store,
                    crate::activations::INSTANCES,
                    "",
                )?;
                Ok::<_, ApiError>((nodes, t))
            })
            .await;
            match swept {
                Ok(Ok((nodes, t))) => {
                    for (account, region, input) in statuses.due(&nodes, t) {
                        let dir = dir.clone();
                        tokio::spawn(async move {
                            if let Err(e) = dir
                                .invoke("CloudWatch", &account, &region, "PutMetricData", input)
                                .await
                            {
                                tracing::warn!(error = %e.message, "status-check metric not published");
                            }
                        });
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e.message, "run command timeout sweep failed");
                }
                Err(_) => {}
            }
        }
    });
    *ssm.commands().sweeper.lock() = Some(task);
    // The server drains in-flight requests before it shuts services down; GetMessages long polls
    // (up to 20 s) would hold that drain, so they end as soon as a stop signal arrives.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let weak = Arc::downgrade(ssm);
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if let Some(ssm) = weak.upgrade() {
                    ssm.commands().begin_stop();
                }
            });
        }
    }
    Ok(())
}

/// Stop the sweeper (called from `Ssm::shutdown`).
pub fn shutdown(ssm: &Ssm) {
    ssm.commands().begin_stop();
    ssm.commands().group.stop();
    if let Some(t) = ssm.commands().sweeper.lock().take() {
        t.abort();
    }
}

/// A row of the Run Command tables as deciders see it (queued, not yet committed changes
/// included; see [`group`]).
pub fn view_row<T: serde::de::DeserializeOwned>(
    ssm: &Ssm,
    table: &str,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let bytes = ssm
        .commands()
        .group
        .get(&*ssm.inner().store, table, key)
        .map_err(InternalError::from)?;
    match bytes {
        Some(b) => Ok(Some(
            serde_json::from_slice(&b).map_err(InternalError::from)?,
        )),
        None => Ok(None),
    }
}

/// Rows of a Run Command table under `prefix`, queued changes included, in key order.
pub fn view_rows<T: serde::de::DeserializeOwned>(
    ssm: &Ssm,
    table: &str,
    prefix: &str,
) -> Result<Vec<(String, T)>, ApiError> {
    let rows = ssm
        .commands()
        .group
        .scan(&*ssm.inner().store, table, prefix)
        .map_err(InternalError::from)?;
    rows.into_iter()
        .map(|(k, v)| Ok((k, serde_json::from_slice(&v).map_err(InternalError::from)?)))
        .collect()
}

/// A command row.
pub fn load_command(ssm: &Ssm, scope: &Scope, id: &str) -> Result<Option<Command>, ApiError> {
    view_row(ssm, COMMANDS, &scope.key(id))
}

/// A command's invocations, in instance-id order.
pub fn load_invocations(ssm: &Ssm, scope: &Scope, id: &str) -> Result<Vec<Invocation>, ApiError> {
    Ok(
        view_rows::<Invocation>(ssm, INVOCATIONS, &format!("{}/", scope.key(id)))?
            .into_iter()
            .map(|(_, i)| i)
            .collect(),
    )
}

fn instance_arn(scope: &Scope, id: &str) -> String {
    if id.starts_with("mi-") {
        format!(
            "arn:aws:ssm:{}:{}:managed-instance/{id}",
            scope.region, scope.account
        )
    } else {
        format!(
            "arn:aws:ec2:{}:{}:instance/{id}",
            scope.region, scope.account
        )
    }
}

fn iso(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos((t * 1e9) as i128)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Persist a change: `invs` is the command's full invocation list after the change, `changed` the
/// instance ids whose invocation changed. Recomputes the command status and queues command,
/// changed invocations, `extra` index rows and the status-change events as one change of the
/// group commit. The caller holds `Inner::lock`, releases it and then waits for the returned
/// ticket before it answers (SNS notifications are published when the ticket completes).
#[must_use = "wait for the ticket before answering"]
pub fn apply(
    ssm: &Ssm,
    scope: &Scope,
    cmd: &mut Command,
    invs: &[Invocation],
    changed: &[String],
    extra: Vec<WriteOp>,
) -> group::Ticket {
    let (status, details) = roll_up(invs, &cmd.max_errors);
    let command_changed = status != cmd.status || details != cmd.status_details;
    cmd.status = status;
    cmd.status_details = details;
    let mut ops = extra;
    ops.push(WriteOp::Put {
        table: COMMANDS.into(),
        key: scope.key(&cmd.id),
        value: to_bytes(&*cmd),
    });
    let mut notices = Vec::new();
    for inv in invs.iter().filter(|i| changed.contains(&i.instance_id)) {
        ops.push(WriteOp::Put {
            table: INVOCATIONS.into(),
            key: scope.key(&format!("{}/{}", cmd.id, inv.instance_id)),
            value: to_bytes(inv),
        });
        ops.push(bus::op(
            scope,
            "EC2 Command Invocation Status-change Notification",
            vec![instance_arn(scope, &inv.instance_id)],
            json!({
                "command-id": cmd.id,
                "document-name": cmd.document_name,
                "instance-id": inv.instance_id,
                "requested-date-time": iso(cmd.requested),
                "status": inv.status,
            }),
        ));
        notices.push((
            "Invocation",
            inv.status.clone(),
            Some(inv.instance_id.clone()),
        ));
    }
    if command_changed {
        ops.push(bus::op(
            scope,
            "EC2 Command Status-change Notification",
            cmd.instance_ids
                .iter()
                .map(|i| instance_arn(scope, i))
                .collect(),
            json!({
                "command-id": cmd.id,
                "document-name": cmd.document_name,
                "expire-after": iso(cmd.expires_after),
                "parameters": Value::Object(cmd.parameters.clone()),
                "requested-date-time": iso(cmd.requested),
                "status": cmd.status,
            }),
        ));
        notices.push(("Command", cmd.status.clone(), None));
    }
    let ticket = ssm.commands().group.enqueue(ssm.inner(), ops);
    if cmd.notification.is_none() || notices.is_empty() {
        return ticket;
    }
    let dir = ssm.inner().directory.clone();
    let (scope, cmd) = (scope.clone(), cmd.clone());
    ticket.then(Box::new(move || notify_sns(&dir, &scope, &cmd, &notices)))
}

/// Publish the NotificationConfig messages of a change (after it is committed; best effort).
fn notify_sns(
    dir: &Arc<opsloop_core::Directory>,
    scope: &Scope,
    cmd: &Command,
    notices: &[(&str, String, Option<String>)],
) {
    let Some(cfg) = &cmd.notification else { return };
    let Some(arn) = cfg.get("NotificationArn").and_then(Value::as_str) else {
        return;
    };
    let kind = cfg
        .get("NotificationType")
        .and_then(Value::as_str)
        .unwrap_or("Command");
    let events: Vec<&str> = cfg
        .get("NotificationEvents")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["All"]);
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for (what, status, instance) in notices {
        if *what != kind || !(events.contains(&"All") || events.contains(&status.as_str())) {
            continue;
        }
        let mut msg = json!({
            "commandId": cmd.id,
            "documentName": cmd.document_name,
            "requestedDateTime": iso(cmd.requested),
            "expiresAfter": iso(cmd.expires_after),
            "eventTime": iso(now()),
            "status": status,
        });
        if let Some(i) = instance {
            msg["instanceId"] = json!(i);
        } else {
            msg["instanceIds"] = json!(cmd.instance_ids);
        }
        let input = json!({"TopicArn": arn, "Message": msg.to_string(),
            "Subject": format!("Run Command {what} {status}")});
        let dir = dir.clone();
        let (account, region) = (scope.account.clone(), scope.region.clone());
        rt.spawn(async move {
            if let Err(e) = dir.invoke("SNS", &account, &region, "Publish", input).await {
                tracing::warn!(error = %e.message, "run command notification not published");
            }
        });
    }
}

/// End invocation `instance` of command `id` with a final status (no-op when already final).
/// Returns whether it changed.
pub fn finish(
    ssm: &Ssm,
    scope: &Scope,
    id: &str,
    instance: &str,
    status: &str,
    details: &str,
    code: i64,
) -> Result<bool, ApiError> {
    finish_with(ssm, scope, id, instance, status, details, code, Vec::new())
}

/// [`finish`] with the node's per-step results.
#[allow(clippy::too_many_arguments)]
pub fn finish_with(
    ssm: &Ssm,
    scope: &Scope,
    id: &str,
    instance: &str,
    status: &str,
    details: &str,
    code: i64,
    steps: Vec<model::PluginResult>,
) -> Result<bool, ApiError> {
    match decide_finish(ssm, scope, id, instance, status, details, code, steps)? {
        Some(f) => {
            let Finished { ticket, pending } = f;
            ticket.wait()?;
            wake_all(ssm, &pending);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// [`finish_with`] for async callers: the task, not the thread, waits for the group commit.
#[allow(clippy::too_many_arguments)]
pub async fn finish_with_async(
    ssm: &Ssm,
    scope: &Scope,
    id: &str,
    instance: &str,
    status: &str,
    details: &str,
    code: i64,
    steps: Vec<model::PluginResult>,
) -> Result<bool, ApiError> {
    match decide_finish(ssm, scope, id, instance, status, details, code, steps)? {
        Some(f) => {
            let Finished { ticket, pending } = f;
            ticket.wait_async().await?;
            wake_all(ssm, &pending);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// A final status decided and queued: wait for `ticket`, then wake the `pending` targets.
struct Finished {
    ticket: group::Ticket,
    pending: Vec<String>,
}

/// A slot is free under MaxConcurrency: let waiting targets fetch their copy.
fn wake_all(ssm: &Ssm, pending: &[String]) {
    for other in pending {
        ssm.commands().wake(other);
    }
}

/// Decide a final status under the lock and queue it (None: nothing changes).
#[allow(clippy::too_many_arguments)]
fn decide_finish(
    ssm: &Ssm,
    scope: &Scope,
    id: &str,
    instance: &str,
    status: &str,
    details: &str,
    code: i64,
    steps: Vec<model::PluginResult>,
) -> Result<Option<Finished>, ApiError> {
    let _guard = ssm.inner().lock.lock();
    let Some(mut cmd) = load_command(ssm, scope, id)? else {
        return Ok(None);
    };
    let mut invs = load_invocations(ssm, scope, id)?;
    let Some(inv) = invs.iter_mut().find(|i| i.instance_id == instance) else {
        return Ok(None);
    };
    if model::terminal(&inv.status) {
        return Ok(None);
    }
    inv.status = status.into();
    inv.status_details = details.into();
    inv.response_code = code;
    if !steps.is_empty() {
        inv.plugins = steps;
    }
    let t = now();
    inv.ended = Some(t);
    let mut extra = vec![
        WriteOp::Delete {
            table: PENDING.into(),
            key: scope.key(&format!("{instance}/{id}")),
        },
        WriteOp::Delete {
            table: RUNNING.into(),
            key: scope.key(&format!("{id}/{instance}")),
        },
    ];
    let mut changed = vec![instance.to_string()];
    // MaxErrors: once errors exceed it, targets not yet sent the command never get it.
    let errors = invs.iter().filter(|i| model::is_error(i)).count();
    if errors > model::error_limit(&cmd.max_errors, invs.len()) {
        for other in invs.iter_mut().filter(|i| i.status == "Pending") {
            other.status = "Cancelled".into();
            other.status_details = "Cancelled".into();
            other.ended = Some(t);
            extra.push(WriteOp::Delete {
                table: PENDING.into(),
                key: scope.key(&format!("{}/{id}", other.instance_id)),
            });
            changed.push(other.instance_id.clone());
        }
        if changed.len() > 1 {
            tracing::info!(command = %id, errors, max_errors = %cmd.max_errors, cancelled = changed.len() - 1,
                "MaxErrors exceeded: remaining targets are not sent the command");
        }
    }
    let ticket = apply(ssm, scope, &mut cmd, &invs, &changed, extra);
    let pending = invs
        .iter()
        .filter(|i| i.status == "Pending")
        .map(|i| i.instance_id.clone())
        .collect();
    Ok(Some(Finished { ticket, pending }))
}

/// Split `<account>/<region>/<a>/<b>`.
fn split_key(key: &str) -> Option<(Scope, &str, &str)> {
    let mut it = key.splitn(4, '/');
    let (acct, region, a, b) = (it.next()?, it.next()?, it.next()?, it.next()?);
    Some((Scope::new(acct, region), a, b))
}

/// Mark nodes silent for longer than the lost-after time ConnectionLost (their next heartbeat
/// makes them Online again).
fn mark_lost(ssm: &Ssm, t: f64) -> Result<(), ApiError> {
    let configured = *ssm.commands().lost_after_s.lock();
    let after = if configured > 0.0 {
        configured
    } else {
        crate::activations::CONNECTION_LOST_AFTER_S
    };
    let inner = ssm.inner();
    let nodes = scan_rows::<crate::activations::ManagedInstance>(
        &*inner.store,
        crate::activations::INSTANCES,
        "",
    )?;
    for (key, _) in nodes
        .into_iter()
        .filter(|(_, m)| m.ping_status == "Online" && t - m.last_ping > after)
    {
        let _guard = inner.lock.lock();
        let row: Option<crate::activations::ManagedInstance> =
            get_row(&*inner.store, crate::activations::INSTANCES, &key)?;
        if let Some(mut m) = row.filter(|m| m.ping_status == "Online" && t - m.last_ping > after) {
            m.ping_status = "ConnectionLost".into();
            inner.commit(vec![WriteOp::Put {
                table: crate::activations::INSTANCES.into(),
                key,
                value: to_bytes(&m),
            }])?;
        }
    }
    Ok(())
}

/// End what passed its delivery timeout or execution deadline at `t`; mark silent nodes
/// ConnectionLost.
pub fn sweep(ssm: &Ssm, t: f64) -> Result<(), ApiError> {
    mark_lost(ssm, t)?;
    let store = &*ssm.inner().store;
    for (key, deadline) in scan_rows::<f64>(store, PENDING, "")? {
        if deadline <= t {
            if let Some((scope, inst, cmd)) = split_key(&key) {
                finish(ssm, &scope, cmd, inst, "TimedOut", "DeliveryTimedOut", -1)?;
            }
        }
    }
    for (key, deadline) in scan_rows::<f64>(store, RUNNING, "")? {
        if deadline + EXECUTION_GRACE_S <= t {
            if let Some((scope, cmd, inst)) = split_key(&key) {
                finish(ssm, &scope, cmd, inst, "TimedOut", "ExecutionTimedOut", -1)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
