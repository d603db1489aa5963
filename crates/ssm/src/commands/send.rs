//! The user side of Run Command: SendCommand (document and version, parameters and steps expanded
//! by `expand`, targets by InstanceIds / `tag:KEY` / `tag-key`, MaxConcurrency / MaxErrors
//! checked), ListCommands, ListCommandInvocations, GetCommandInvocation and CancelCommand. A command, its invocations, the per-node pending rows and the Pending events are
//! written in one batch; nodes waiting in GetMessages are woken afterwards.

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde_json::json;

use super::model::{
    command_doc, get_invocation_doc, invocation_doc, plugin_names, terminal, Command, Invocation,
    COMMANDS, INVOCATIONS,
};
use super::{apply, expand, group, load_command, load_invocations, PENDING};
use crate::activations::{ManagedInstance, INSTANCES};
use crate::common::{arr, get_row, i, max_results, now, page, s, scan_rows, strings, to_bytes};
use crate::documents;
use crate::error::{err, validation};
use crate::{Scope, Ssm};

const DEFAULT_TIMEOUT_S: i64 = 3600;

fn nodes(ssm: &Ssm, scope: &Scope) -> Result<Vec<ManagedInstance>, ApiError> {
    Ok(
        scan_rows::<ManagedInstance>(&*ssm.inner().store, INSTANCES, &scope.prefix())?
            .into_iter()
            .map(|(_, m)| m)
            .collect(),
    )
}

/// The nodes a request targets: (instance id, name) pairs, plus ids that do not exist
/// (Undeliverable when named through Targets).
fn resolve_targets(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Resolved, ApiError> {
    let ids = strings(input, "InstanceIds");
    let targets = arr(input, "Targets");
    if ids.is_empty() == targets.is_empty() {
        return Err(validation(
            "Exactly one of InstanceIds or Targets must be specified.",
        ));
    }
    let fleet = nodes(ssm, scope)?;
    let name_of = |id: &str| -> Option<String> {
        fleet
            .iter()
            .find(|m| m.instance_id == id)
            .map(|m| m.name.clone().unwrap_or_default())
    };
    let mut hits: Vec<(String, String)> = Vec::new();
    let mut missing = Vec::new();
    let push = |id: &str, name: String, hits: &mut Vec<(String, String)>| {
        if !hits.iter().any(|(h, _)| h == id) {
            hits.push((id.to_string(), name));
        }
    };
    if !ids.is_empty() {
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            if !seen.insert(id) {
                return Err(err(
                    "DuplicateInstanceId",
                    format!("Instance {id} is listed twice."),
                ));
            }
            match name_of(id) {
                Some(n) => push(id, n, &mut hits),
                None => {
                    return Err(err(
                        "InvalidInstanceId",
                        format!("Instance {id} is not a registered managed node of this account and region."),
                    ))
                }
            }
        }
        return Ok((hits, missing));
    }
    if targets.len() > 5 {
        return Err(validation("Targets can hold at most 5 targets."));
    }
    for t in targets {
        let key = s(t, "Key").unwrap_or("");
        let values = strings(t, "Values");
        if values.is_empty() {
            return Err(validation(format!(
                "Target {key} needs at least one value."
            )));
        }
        if key == "InstanceIds" {
            for id in &values {
                match name_of(id) {
                    Some(n) => push(id, n, &mut hits),
                    None if !missing.contains(id) => missing.push(id.clone()),
                    None => {}
                }
            }
            continue;
        }
        let tag_key = key.strip_prefix("tag:");
        if tag_key.is_none() && key != "tag-key" {
            return Err(err(
                "InvalidTarget",
                format!("Target key {key} is not supported: use InstanceIds, tag:KEY or tag-key."),
            ));
        }
        for m in &fleet {
            let tags = crate::tags::get(ssm.inner(), scope, "ManagedInstance", &m.instance_id)?;
            let ok = match tag_key {
                Some(k) => tags.iter().any(|(tk, tv)| tk == k && values.contains(tv)),
                None => tags.iter().any(|(tk, _)| values.contains(tk)),
            };
            if ok {
                push(
                    &m.instance_id,
                    m.name.clone().unwrap_or_default(),
                    &mut hits,
                );
            }
        }
    }
    Ok((hits, missing))
}

/// Targeted nodes as (instance id, name), and named ids that are not registered.
type Resolved = (Vec<(String, String)>, Vec<String>);

fn concurrency_value(v: Option<&str>, default: &str, what: &str) -> Result<String, ApiError> {
    let v = v.unwrap_or(default);
    let ok = match v.strip_suffix('%') {
        Some(p) => p.parse::<u32>().map(|n| n <= 100).unwrap_or(false),
        None => v.parse::<u32>().is_ok(),
    };
    if !ok {
        return Err(validation(format!(
            "{what} {v} is not a number or a percentage."
        )));
    }
    Ok(v.to_string())
}

/// A change decided and queued for the group commit: answer `answer` once `ticket` completed,
/// then wake `wake` (the nodes with a new pending invocation).
pub struct Queued {
    answer: Value,
    ticket: group::Ticket,
    wake: Vec<String>,
}

impl Queued {
    fn woken(answer: Value, wake: &[String], ssm: &Ssm) -> Value {
        for id in wake {
            ssm.commands().wake(id);
        }
        answer
    }

    /// Block the thread until committed.
    pub fn wait(self, ssm: &Ssm) -> Result<Value, ApiError> {
        self.ticket.wait()?;
        Ok(Queued::woken(self.answer, &self.wake, ssm))
    }

    /// Wait in the task (the HTTP handlers: a blocked runtime thread would hold other requests).
    pub async fn wait_async(self, ssm: &Ssm) -> Result<Value, ApiError> {
        self.ticket.wait_async().await?;
        Ok(Queued::woken(self.answer, &self.wake, ssm))
    }
}

/// SendCommand (also the entry point for Automation's `aws:runCommand`).
pub fn send_command(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    queue_send_command(ssm, scope, input)?.wait(ssm)
}

/// SendCommand decided and queued.
pub fn queue_send_command(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Queued, ApiError> {
    let inner = ssm.inner();
    let name = s(input, "DocumentName").unwrap_or("");
    let doc = documents::find(inner, scope, name)?.ok_or_else(|| {
        err(
            "InvalidDocument",
            format!("Document {name} does not exist."),
        )
    })?;
    if doc.doc_type != "Command" {
        return Err(err(
            "InvalidDocument",
            format!(
                "Document {name} is of type {} and can't be sent as a command.",
                doc.doc_type
            ),
        ));
    }
    let version = documents::pick(&doc, s(input, "DocumentVersion"), None)?;
    let content = documents::parse_content(&version.content, &version.format)?;
    let supplied = input
        .get("Parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let plugins = expand::plugins(
        &content,
        &supplied,
        &expand::param_lookup(inner, scope),
        &expand::doc_lookup(inner, scope),
    )?;
    let (hits, missing) = resolve_targets(ssm, scope, input)?;
    let timeout = i(input, "TimeoutSeconds").unwrap_or(DEFAULT_TIMEOUT_S);
    if !(30..=2_592_000).contains(&timeout) {
        return Err(validation("TimeoutSeconds must be between 30 and 2592000."));
    }
    let max_concurrency = concurrency_value(s(input, "MaxConcurrency"), "50", "MaxConcurrency")?;
    let max_errors = concurrency_value(s(input, "MaxErrors"), "0", "MaxErrors")?;
    let mut cloudwatch = input.get("CloudWatchOutputConfig").cloned();
    if let Some(cw) = cloudwatch.as_mut() {
        if cw.get("CloudWatchOutputEnabled").and_then(Value::as_bool) == Some(true)
            && s(cw, "CloudWatchLogGroupName").unwrap_or("").is_empty()
        {
            cw["CloudWatchLogGroupName"] = json!(format!("/aws/ssm/{}", doc.name));
        }
    }
    if let Some(n) = input.get("NotificationConfig") {
        if let Some(arn) = s(n, "NotificationArn") {
            if !arn.starts_with("arn:") || !arn.contains(":sns:") {
                return Err(err(
                    "InvalidNotificationConfig",
                    format!("NotificationArn {arn} is not an SNS topic ARN."),
                ));
            }
        }
    }
    let t = now();
    let exec_total: i64 = plugins
        .iter()
        .map(|p| p["timeoutSeconds"].as_i64().unwrap_or(0))
        .sum();
    let plugin_name = plugins
        .first()
        .and_then(|p| p["name"].as_str())
        .unwrap_or("")
        .to_string();
    let mut cmd = Command {
        id: uuid::Uuid::new_v4().to_string(),
        document_name: doc.name.clone(),
        document_version: version.version.to_string(),
        comment: s(input, "Comment").unwrap_or("").to_string(),
        parameters: supplied,
        instance_ids: hits
            .iter()
            .map(|(id, _)| id.clone())
            .chain(missing.iter().cloned())
            .collect(),
        targets: arr(input, "Targets").to_vec(),
        requested: t,
        timeout_seconds: timeout,
        expires_after: t + (timeout + exec_total) as f64,
        max_concurrency,
        max_errors,
        status: String::new(),
        status_details: String::new(),
        cloudwatch,
        notification: input.get("NotificationConfig").cloned(),
        service_role: s(input, "ServiceRoleArn").map(str::to_string),
        plugins,
    };
    let mut invs = Vec::new();
    let mut ops = Vec::new();
    for (id, iname) in &hits {
        invs.push(new_invocation(&cmd, id, iname, &plugin_name, "Pending", t));
        ops.push(WriteOp::Put {
            table: PENDING.into(),
            key: scope.key(&format!("{id}/{}", cmd.id)),
            value: to_bytes(&(t + timeout as f64)),
        });
    }
    for id in &missing {
        let mut inv = new_invocation(&cmd, id, "", &plugin_name, "Undeliverable", t);
        inv.ended = Some(t);
        inv.response_code = -1;
        invs.push(inv);
    }
    let changed: Vec<String> = invs.iter().map(|i| i.instance_id.clone()).collect();
    let guard = inner.lock.lock();
    let ticket = apply(ssm, scope, &mut cmd, &invs, &changed, ops);
    drop(guard);
    Ok(Queued {
        answer: json!({ "Command": command_doc(&cmd, &invs) }),
        ticket,
        wake: hits.into_iter().map(|(id, _)| id).collect(),
    })
}

fn new_invocation(
    cmd: &Command,
    id: &str,
    name: &str,
    plugin: &str,
    status: &str,
    t: f64,
) -> Invocation {
    Invocation {
        command_id: cmd.id.clone(),
        instance_id: id.to_string(),
        instance_name: name.to_string(),
        document_name: cmd.document_name.clone(),
        document_version: cmd.document_version.clone(),
        comment: cmd.comment.clone(),
        requested: t,
        status: status.into(),
        status_details: status.into(),
        response_code: -1,
        plugin_name: plugin.to_string(),
        ..Default::default()
    }
}

fn command_required(ssm: &Ssm, scope: &Scope, id: &str) -> Result<Command, ApiError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(err(
            "InvalidCommandId",
            format!("Command ID {id} is not valid."),
        ));
    }
    load_command(ssm, scope, id)?
        .ok_or_else(|| err("InvalidCommandId", format!("Command {id} does not exist.")))
}

fn check_instance_id(id: &str) -> Result<(), ApiError> {
    if id.starts_with("mi-") || id.starts_with("i-") {
        Ok(())
    } else {
        Err(err(
            "InvalidInstanceId",
            format!("Instance ID {id} is not valid."),
        ))
    }
}

/// Filters of ListCommands / ListCommandInvocations: (key, value).
fn filters(input: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for f in arr(input, "Filters") {
        let k = s(f, "key").unwrap_or("").to_string();
        let v = s(f, "value").unwrap_or("").to_string();
        if matches!(k.as_str(), "InvokedAfter" | "InvokedBefore")
            && time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .is_err()
        {
            return Err(err(
                "InvalidFilter",
                format!("The {k} filter value {v} is not an ISO-8601 date and time."),
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn filter_ok(fs: &[(String, String)], status: &str, doc: &str, requested: f64) -> bool {
    fs.iter().all(|(k, v)| {
        let at = || {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map(|d| d.unix_timestamp() as f64)
                .unwrap_or(0.0)
        };
        match k.as_str() {
            "Status" => status == v,
            "DocumentName" => doc == v,
            "InvokedAfter" => requested >= at(),
            "InvokedBefore" => requested <= at(),
            "ExecutionStage" => match v.as_str() {
                "Executing" => !terminal(status),
                "Complete" => terminal(status),
                _ => false,
            },
            _ => false,
        }
    })
}

/// ListCommands (newest first).
pub fn list_commands(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let fs = filters(input)?;
    let mut cmds: Vec<Command> = match s(input, "CommandId") {
        Some(id) => vec![command_required(ssm, scope, id)?],
        None => scan_rows::<Command>(&*ssm.inner().store, COMMANDS, &scope.prefix())?
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
    };
    if let Some(iid) = s(input, "InstanceId") {
        check_instance_id(iid)?;
        cmds.retain(|c| c.instance_ids.iter().any(|x| x == iid));
    }
    cmds.retain(|c| filter_ok(&fs, &c.status, &c.document_name, c.requested));
    cmds.sort_by(|a, b| b.requested.total_cmp(&a.requested));
    let (cmds, next) = page(cmds, s(input, "NextToken"), max_results(input, 50), |c| {
        c.id.clone()
    })?;
    let mut docs = Vec::new();
    for c in &cmds {
        docs.push(command_doc(c, &load_invocations(ssm, scope, &c.id)?));
    }
    let mut out = json!({ "Commands": docs });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// ListCommandInvocations.
pub fn list_command_invocations(
    ssm: &Ssm,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let fs = filters(input)?;
    let details = input
        .get("Details")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let cmds: Vec<Command> = match s(input, "CommandId") {
        Some(id) => vec![command_required(ssm, scope, id)?],
        None => scan_rows::<Command>(&*ssm.inner().store, COMMANDS, &scope.prefix())?
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
    };
    let iid = s(input, "InstanceId");
    if let Some(iid) = iid {
        check_instance_id(iid)?;
    }
    let mut rows: Vec<(Command, Invocation)> = Vec::new();
    for c in cmds {
        for inv in load_invocations(ssm, scope, &c.id)? {
            if iid.is_some_and(|x| x != inv.instance_id) {
                continue;
            }
            if filter_ok(&fs, &inv.status, &inv.document_name, inv.requested) {
                rows.push((c.clone(), inv));
            }
        }
    }
    rows.sort_by(|a, b| b.1.requested.total_cmp(&a.1.requested));
    let (rows, next) = page(
        rows,
        s(input, "NextToken"),
        max_results(input, 50),
        |(c, i)| format!("{}/{}", c.id, i.instance_id),
    )?;
    let docs: Vec<Value> = rows
        .iter()
        .map(|(c, i)| invocation_doc(c, i, details))
        .collect();
    let mut out = json!({ "CommandInvocations": docs });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// GetCommandInvocation (also the entry point for Automation's `aws:runCommand`).
pub fn get_command_invocation(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "CommandId").unwrap_or("");
    let iid = s(input, "InstanceId").unwrap_or("");
    check_instance_id(iid)?;
    let c = command_required(ssm, scope, id)?;
    let inv: Invocation = get_row(&*ssm.inner().store, INVOCATIONS, &scope.key(&format!("{id}/{iid}")))?
        .ok_or_else(|| {
            err(
                "InvocationDoesNotExist",
                "The command ID and instance ID you specified did not match any invocations. Verify the command ID and the instance ID and try again.",
            )
        })?;
    let plugin = s(input, "PluginName");
    if let Some(p) = plugin {
        if p != inv.plugin_name && !plugin_names(&c).iter().any(|n| n == p) {
            return Err(err(
                "InvalidPluginName",
                format!("Plugin {p} is not part of this command."),
            ));
        }
    }
    Ok(get_invocation_doc(&c, &inv, plugin))
}

/// CancelCommand: Pending invocations end Cancelled at once; running ones become Cancelling and
/// the node kills the process when its next reply learns of it.
pub fn cancel_command(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    queue_cancel_command(ssm, scope, input)?.wait(ssm)
}

/// CancelCommand decided and queued.
pub fn queue_cancel_command(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Queued, ApiError> {
    let id = s(input, "CommandId").unwrap_or("");
    let only = strings(input, "InstanceIds");
    for x in &only {
        check_instance_id(x)?;
    }
    let inner = ssm.inner();
    let guard = inner.lock.lock();
    let mut cmd = command_required(ssm, scope, id)?;
    let mut invs = load_invocations(ssm, scope, id)?;
    let t = now();
    let mut changed = Vec::new();
    let mut ops = Vec::new();
    for inv in invs.iter_mut() {
        if !only.is_empty() && !only.contains(&inv.instance_id) {
            continue;
        }
        match inv.status.as_str() {
            "Pending" => {
                inv.status = "Cancelled".into();
                inv.status_details = "Cancelled".into();
                inv.ended = Some(t);
                ops.push(WriteOp::Delete {
                    table: PENDING.into(),
                    key: scope.key(&format!("{}/{}", inv.instance_id, inv.command_id)),
                });
                changed.push(inv.instance_id.clone());
            }
            "InProgress" => {
                inv.status = "Cancelling".into();
                inv.status_details = "Cancelling".into();
                inv.cancel_requested = true;
                changed.push(inv.instance_id.clone());
            }
            _ => {}
        }
    }
    let ticket = apply(ssm, scope, &mut cmd, &invs, &changed, ops);
    drop(guard);
    Ok(Queued {
        answer: json!({}),
        ticket,
        wake: Vec::new(),
    })
}
