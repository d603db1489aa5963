//! The `Opsloop Agent` service (models/opsloop-agent.json, awsJson 1.1, target prefix
//! `OpsloopAgent`, signing name `opsloop-agent`) that `opsloop agent` speaks:
//!
//! - `RegisterManagedInstance`: signed with the activation id as access key id and the hex SHA-256
//!   of the activation code as secret (the server keeps only that hash, so it can verify the
//!   signature); the body carries the code too, checked by `activations::register`. Issues the
//!   node's own key pair (`ssm.node_keys`).
//! - `UpdateInstanceInformation` (heartbeat), `GetMessages` (long poll, up to 20 s, woken by a
//!   per-node `Notify`), `SendReply` (output chunks, final status; answers `Cancel` when the user
//!   cancelled): signed with the node's key; a node may only name itself.
//!
//! [`lookup_key`] is what the server's credential store calls for keys it does not know.

use std::sync::{Arc, Weak};
use std::time::Duration;

use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, Value};
use opsloop_store::{ControlStore, WriteOp};
use serde_json::json;

use super::model::{
    append_capped, terminal, Invocation, NodeKey, PluginResult, GET_OUTPUT_CAP, INVOCATIONS,
    NODE_KEYS,
};
use super::{
    apply, finish_with_async, group, load_command, load_invocations, view_row, view_rows, PENDING,
    RUNNING,
};
use crate::activations::{self, ManagedInstance, INSTANCES};
use crate::common::{get_row, i, now, s, scan_rows, to_bytes};
use crate::error::err;
use crate::{Scope, Ssm};

/// The agent protocol model.
pub const MODEL_JSON: &str = include_str!("../../../../models/opsloop-agent.json");
/// Longest GetMessages wait.
const MAX_WAIT_S: i64 = 20;

/// The agent-protocol service; holds the SSM service weakly (the server owns it).
pub struct AgentService {
    ssm: Weak<Ssm>,
}

impl AgentService {
    pub fn new(ssm: &Arc<Ssm>) -> AgentService {
        AgentService {
            ssm: Arc::downgrade(ssm),
        }
    }

    async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let ssm = self.ssm.upgrade().ok_or_else(|| {
            ApiError::with_status("ServiceUnavailable", 503, "The server is stopping.")
        })?;
        let scope = Scope::of(ctx);
        let result = match ctx.operation.as_str() {
            "RegisterManagedInstance" => register(&ssm, ctx, &scope, &input),
            "UpdateInstanceInformation" => heartbeat(&ssm, ctx, &scope, &input),
            "GetMessages" => get_messages(&ssm, ctx, &scope, &input).await,
            "SendReply" => send_reply(&ssm, ctx, &scope, &input).await,
            op => Err(ApiError::with_status(
                "NotImplemented",
                501,
                format!("Operation {op} is not implemented."),
            )),
        };
        if let Err(e) = &result {
            tracing::debug!(operation = %ctx.operation, kind = %e.kind, message = %e.message, "agent request failed");
        }
        result
    }
}

impl Service for AgentService {
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

fn denied(msg: impl Into<String>) -> ApiError {
    ApiError::with_status("AccessDeniedException", 400, msg)
}

/// The credentials of an agent access key: a node key (secret, and the node's account; what the
/// key may call is restricted by the server's credential store), or an activation id (secret = hex SHA-256 of its code, account of the activation)
/// for registration.
pub fn lookup_key(store: &dyn ControlStore, access_key_id: &str) -> Option<(String, String)> {
    if let Ok(Some(k)) = get_row::<NodeKey>(store, NODE_KEYS, access_key_id) {
        // A node key acts in the node's real account; the server's credential store marks it a
        // restricted principal (agent protocol plus metric and log publishing only).
        return Some((k.secret, k.account));
    }
    uuid::Uuid::parse_str(access_key_id).ok()?;
    let rows = scan_rows::<activations::Activation>(store, activations::TABLE, "").ok()?;
    rows.into_iter()
        .find(|(k, a)| a.id == access_key_id && k.ends_with(access_key_id))
        .map(|(k, a)| {
            (
                a.code_hash,
                k.split('/').next().unwrap_or_default().to_string(),
            )
        })
}

/// The node the caller's key belongs to, which must be `instance_id`: the node's real scope
/// (its key's account and region as registered, see [`lookup_key`]).
fn authorize(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    instance_id: &str,
) -> Result<Scope, ApiError> {
    let key = ctx.access_key_id.as_deref().unwrap_or("");
    let node: Option<NodeKey> = get_row(&*ssm.inner().store, NODE_KEYS, key)?;
    match node {
        Some(n) if n.instance_id == instance_id && n.region == scope.region => {
            Ok(Scope::new(&n.account, &n.region))
        }
        _ => Err(denied(format!(
            "The credentials used are not those of managed node {instance_id} in {}.",
            scope.region
        ))),
    }
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

fn node_info(input: &Value) -> activations::NodeInfo {
    let f = |k: &str| s(input, k).unwrap_or("").to_string();
    activations::NodeInfo {
        platform_type: f("PlatformType"),
        platform_name: f("PlatformName"),
        platform_version: f("PlatformVersion"),
        agent_version: f("AgentVersion"),
        ip_address: f("IPAddress"),
        computer_name: f("ComputerName"),
    }
}

/// RegisterManagedInstance.
fn register(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let activation = s(input, "ActivationId").unwrap_or("");
    if ctx.access_key_id.as_deref() != Some(activation) {
        return Err(denied(
            "Registration must be signed with the activation id as access key id.",
        ));
    }
    let code = s(input, "ActivationCode").unwrap_or("");
    let m = activations::register(ssm.inner(), scope, activation, code, node_info(input))?;
    let access_key_id = format!(
        "AKMI{}",
        random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    );
    let secret = random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
    );
    let key = NodeKey {
        secret: secret.clone(),
        account: scope.account.clone(),
        region: scope.region.clone(),
        instance_id: m.instance_id.clone(),
    };
    ssm.inner().commit(vec![WriteOp::Put {
        table: NODE_KEYS.into(),
        key: access_key_id.clone(),
        value: to_bytes(&key),
    }])?;
    Ok(json!({
        "InstanceId": m.instance_id,
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret,
        "Name": m.name.unwrap_or_default(),
    }))
}

/// UpdateInstanceInformation: the heartbeat.
fn heartbeat(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let id = s(input, "InstanceId").unwrap_or("");
    let scope = &authorize(ssm, ctx, scope, id)?;
    let inner = ssm.inner();
    let _guard = inner.lock.lock();
    let mut m: ManagedInstance =
        get_row(&*inner.store, INSTANCES, &scope.key(id))?.ok_or_else(|| {
            err(
                "InvalidInstanceId",
                format!("Instance {id} is not registered."),
            )
        })?;
    let info = node_info(input);
    let keep = |new: String, old: &mut String| {
        if !new.is_empty() {
            *old = new;
        }
    };
    keep(info.platform_type, &mut m.platform_type);
    keep(info.platform_name, &mut m.platform_name);
    keep(info.platform_version, &mut m.platform_version);
    keep(info.agent_version, &mut m.agent_version);
    keep(info.ip_address, &mut m.ip_address);
    keep(info.computer_name, &mut m.computer_name);
    m.last_ping = now();
    m.ping_status = match s(input, "AgentStatus") {
        Some("Stopping") | Some("Stopped") => "ConnectionLost".into(),
        _ => "Online".into(),
    };
    inner.commit(vec![WriteOp::Put {
        table: INSTANCES.into(),
        key: scope.key(id),
        value: to_bytes(&m),
    }])?;
    Ok(json!({}))
}

/// Deliver the node's pending invocations (each becomes InProgress); answered once the changes
/// are committed.
async fn take_pending(ssm: &Ssm, scope: &Scope, instance: &str) -> Result<Vec<Value>, ApiError> {
    let (out, tickets) = decide_pending(ssm, scope, instance)?;
    group::wait_all(tickets).await?;
    Ok(out)
}

/// Mark the node's deliverable pending invocations InProgress (queued changes, see [`group`]).
fn decide_pending(
    ssm: &Ssm,
    scope: &Scope,
    instance: &str,
) -> Result<(Vec<Value>, Vec<group::Ticket>), ApiError> {
    let inner = ssm.inner();
    let prefix = format!("{}/", scope.key(instance));
    let rows = view_rows::<f64>(ssm, PENDING, &prefix)?;
    let mut out = Vec::new();
    let mut tickets = Vec::new();
    for (key, deadline) in rows {
        let cmd_id = key.rsplit('/').next().unwrap_or_default().to_string();
        let _guard = inner.lock.lock();
        let Some(mut cmd) = load_command(ssm, scope, &cmd_id)? else {
            continue;
        };
        let mut invs = load_invocations(ssm, scope, &cmd_id)?;
        let Some(inv) = invs.iter_mut().find(|i| i.instance_id == instance) else {
            continue;
        };
        let t = now();
        if inv.status != "Pending" || deadline <= t {
            continue;
        }
        // MaxConcurrency: at most that many (or that share of the targets) running at once.
        let running = invs
            .iter()
            .filter(|i| matches!(i.status.as_str(), "InProgress" | "Cancelling"))
            .count();
        if running >= super::model::concurrency_limit(&cmd.max_concurrency, invs.len()) {
            continue;
        }
        let Some(inv) = invs.iter_mut().find(|i| i.instance_id == instance) else {
            continue;
        };
        inv.status = "InProgress".into();
        inv.status_details = "InProgress".into();
        inv.started = Some(t);
        let exec: i64 = cmd
            .plugins
            .iter()
            .map(|p| p["timeoutSeconds"].as_i64().unwrap_or(0))
            .sum();
        let extra = vec![
            WriteOp::Delete {
                table: PENDING.into(),
                key: key.clone(),
            },
            WriteOp::Put {
                table: RUNNING.into(),
                key: scope.key(&format!("{cmd_id}/{instance}")),
                value: to_bytes(&(t + exec as f64)),
            },
        ];
        tickets.push(apply(
            ssm,
            scope,
            &mut cmd,
            &invs,
            &[instance.to_string()],
            extra,
        ));
        let payload = json!({
            "CommandId": cmd.id,
            "DocumentName": cmd.document_name,
            "Plugins": cmd.plugins,
            "Parameters": Value::Object(cmd.parameters.clone()),
        });
        out.push(json!({"CommandId": cmd.id, "Payload": payload.to_string()}));
    }
    Ok((out, tickets))
}

/// GetMessages: pending work for the node, waiting up to WaitSeconds (≤ 20) for some.
async fn get_messages(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let id = s(input, "InstanceId").unwrap_or("").to_string();
    let scope = &authorize(ssm, ctx, scope, &id)?;
    let wait = i(input, "WaitSeconds")
        .unwrap_or(MAX_WAIT_S)
        .clamp(0, MAX_WAIT_S);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
    let waiter = ssm.commands().waiter(&id);
    let generation = ssm.commands().begin_poll(&id);
    let stopped = ssm.commands().stopped();
    tokio::pin!(stopped);
    loop {
        let notified = waiter.notified();
        if !ssm.commands().is_current_poll(&id, generation) {
            return Ok(json!({ "Messages": [] }));
        }
        let msgs = take_pending(ssm, scope, &id).await?;
        if !msgs.is_empty() || tokio::time::Instant::now() >= deadline || ssm.commands().stopping()
        {
            return Ok(json!({ "Messages": msgs }));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(json!({ "Messages": take_pending(ssm, scope, &id).await? }));
            }
            _ = &mut stopped => return Ok(json!({ "Messages": [] })),
            _ = notified => {}
        }
    }
}

/// Append one output chunk to the command's CloudWatch Logs stream (creating group and stream on
/// first use). Best effort: a failure is logged, the command goes on.
async fn to_logs(ssm: &Ssm, scope: &Scope, group: &str, stream: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    let dir = &ssm.inner().directory;
    let put = json!({
        "logGroupName": group,
        "logStreamName": stream,
        "logEvents": [{"timestamp": (now() * 1000.0) as i64, "message": text}],
    });
    let call = |op: &'static str, input: Value| {
        dir.invoke("CloudWatch Logs", &scope.account, &scope.region, op, input)
    };
    if call("PutLogEvents", put.clone()).await.is_ok() {
        return;
    }
    let _ = call("CreateLogGroup", json!({"logGroupName": group})).await;
    let _ = call(
        "CreateLogStream",
        json!({"logGroupName": group, "logStreamName": stream}),
    )
    .await;
    if let Err(e) = call("PutLogEvents", put).await {
        tracing::warn!(group, stream, error = %e.message, "run command output not written to Logs");
    }
}

/// SendReply: an output chunk and, when `Final`, the invocation's result. Idempotent for a final
/// reply already recorded (the agent re-sends until acknowledged).
async fn send_reply(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let id = s(input, "InstanceId").unwrap_or("").to_string();
    let scope = &authorize(ssm, ctx, scope, &id)?;
    let cmd_id = s(input, "CommandId").unwrap_or("").to_string();
    let out = s(input, "StandardOutput").unwrap_or("").to_string();
    let errs = s(input, "StandardError").unwrap_or("").to_string();
    let is_final = input.get("Final").and_then(Value::as_bool).unwrap_or(false);
    let inv_key = scope.key(&format!("{cmd_id}/{id}"));
    let (cmd, cancel, chunk) = {
        let inner = ssm.inner();
        let _guard = inner.lock.lock();
        let cmd = load_command(ssm, scope, &cmd_id)?.ok_or_else(|| {
            err(
                "InvalidCommandId",
                format!("Command {cmd_id} does not exist."),
            )
        })?;
        let mut inv: Invocation = view_row(ssm, INVOCATIONS, &inv_key)?.ok_or_else(|| {
            err(
                "InvalidCommandId",
                format!("Command {cmd_id} was not sent to {id}."),
            )
        })?;
        if terminal(&inv.status) {
            return Ok(json!({"Cancel": false}));
        }
        append_capped(&mut inv.stdout, &out, GET_OUTPUT_CAP);
        append_capped(&mut inv.stderr, &errs, GET_OUTPUT_CAP);
        if let Some(p) = s(input, "PluginName") {
            inv.plugin_name = p.to_string();
        }
        let cancel = inv.cancel_requested;
        let chunk = (!out.is_empty() || !errs.is_empty()).then(|| {
            ssm.commands().group().enqueue(
                inner,
                vec![WriteOp::Put {
                    table: INVOCATIONS.into(),
                    key: inv_key.clone(),
                    value: to_bytes(&inv),
                }],
            )
        });
        (cmd, cancel, chunk)
    };
    if let Some(chunk) = chunk {
        chunk.wait_async().await?;
    }
    if let Some(cw) = &cmd.cloudwatch {
        if cw.get("CloudWatchOutputEnabled").and_then(Value::as_bool) == Some(true) {
            let group = s(cw, "CloudWatchLogGroupName").unwrap_or("").to_string();
            let plugin = s(input, "PluginName").unwrap_or("aws:runShellScript");
            let base = format!("{cmd_id}/{id}/{plugin}");
            to_logs(ssm, scope, &group, &format!("{base}/stdout"), &out).await;
            to_logs(ssm, scope, &group, &format!("{base}/stderr"), &errs).await;
        }
    }
    if is_final {
        let status = s(input, "Status").unwrap_or("Failed");
        let status = match status {
            "Success" | "Failed" | "TimedOut" | "Cancelled" => status,
            _ => "Failed",
        };
        let details = s(input, "StatusDetails").unwrap_or(status);
        let code = i(input, "ResponseCode").unwrap_or(-1);
        let steps: Vec<PluginResult> = input
            .get("PluginResults")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(PluginResult::from_reply).collect())
            .unwrap_or_default();
        finish_with_async(ssm, scope, &cmd_id, &id, status, details, code, steps).await?;
    }
    Ok(json!({ "Cancel": cancel }))
}
