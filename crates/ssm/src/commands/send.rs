//! The user side of Run Command: SendCommand (document and version, parameters validated against
//! the document and substituted into its `aws:runShellScript` steps, targets by InstanceIds /
//! `tag:KEY` / `tag-key`), ListCommands, ListCommandInvocations, GetCommandInvocation and
//! CancelCommand. A command, its invocations, the per-node pending rows and the Pending events are
//! written in one batch; nodes waiting in GetMessages are woken afterwards.

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde_json::json;

use super::model::{
    command_doc, get_invocation_doc, invocation_doc, terminal, Command, Invocation, COMMANDS,
    INVOCATIONS,
};
use super::{apply, load_command, load_invocations, PENDING};
use crate::activations::{ManagedInstance, INSTANCES};
use crate::common::{arr, get_row, i, max_results, now, page, s, scan_rows, strings, to_bytes};
use crate::documents;
use crate::error::{err, validation};
use crate::{Scope, Ssm};

const DEFAULT_TIMEOUT_S: i64 = 3600;
const DEFAULT_EXECUTION_TIMEOUT_S: i64 = 3600;

fn invalid_params(msg: impl Into<String>) -> ApiError {
    err("InvalidParameters", msg)
}

/// Check `supplied` (name → list of strings) against the document's `parameters` block and return
/// the effective values (defaults filled in), each as a JSON string or list.
pub fn resolve_parameters(
    declared: &Value,
    supplied: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let empty = serde_json::Map::new();
    let declared = declared.as_object().unwrap_or(&empty);
    for name in supplied.keys() {
        if !declared.contains_key(name) {
            return Err(invalid_params(format!(
                "Parameter \"{name}\" is not defined in the document."
            )));
        }
    }
    let mut out = serde_json::Map::new();
    for (name, spec) in declared {
        let ty = spec.get("type").and_then(Value::as_str).unwrap_or("String");
        let values: Vec<String> = match supplied.get(name) {
            Some(v) => v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None => match spec.get("default") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect(),
                Some(Value::String(d)) => vec![d.clone()],
                Some(other) => vec![other.to_string()],
                None => {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" is required but was not provided."
                    )))
                }
            },
        };
        if let Some(allowed) = spec.get("allowedValues").and_then(Value::as_array) {
            for v in &values {
                if !allowed.iter().any(|a| a.as_str() == Some(v.as_str())) {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" has a value \"{v}\" that is not one of its allowedValues."
                    )));
                }
            }
        }
        if let Some(pattern) = spec.get("allowedPattern").and_then(Value::as_str) {
            let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| {
                invalid_params(format!(
                    "Parameter \"{name}\" has an invalid allowedPattern."
                ))
            })?;
            for v in &values {
                if supplied.contains_key(name) && !re.is_match(v) {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" value \"{v}\" does not match its allowedPattern {pattern}."
                    )));
                }
            }
        }
        let value = match ty {
            "StringList" | "MapList" => {
                if let Some(min) = spec.get("minItems").and_then(Value::as_u64) {
                    if (values.len() as u64) < min {
                        return Err(invalid_params(format!(
                            "Parameter \"{name}\" needs at least {min} item(s)."
                        )));
                    }
                }
                json!(values)
            }
            _ => {
                if values.len() > 1 {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" is of type {ty} and takes a single value."
                    )));
                }
                json!(values.into_iter().next().unwrap_or_default())
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Replace `{{ name }}` references in `v` by parameter values: a string that is exactly one
/// reference becomes the value itself (a list stays a list); references inside text are replaced
/// by the value's text (list items joined by newlines).
pub fn substitute(v: &Value, params: &serde_json::Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                if !inner.contains("{{") {
                    if let Some(val) = params.get(inner.trim()) {
                        return val.clone();
                    }
                }
            }
            let mut out = s.clone();
            for (name, val) in params {
                let text = match val {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                for pat in [format!("{{{{ {name} }}}}"), format!("{{{{{name}}}}}")] {
                    out = out.replace(&pat, &text);
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, params)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, params)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The plugins of a schema 2.x command document after substitution.
pub fn plugins(
    content: &Value,
    params: &serde_json::Map<String, Value>,
) -> Result<Vec<Value>, ApiError> {
    let steps = content
        .get("mainSteps")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            err(
                "InvalidDocument",
                "Run Command needs a schema 2.x command document with mainSteps.",
            )
        })?;
    let mut out = Vec::new();
    for step in steps {
        let inputs = substitute(step.get("inputs").unwrap_or(&Value::Null), params);
        let run = match inputs.get("runCommand") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => vec![json!(s)],
            _ => vec![],
        };
        let timeout = match inputs.get("timeoutSeconds") {
            Some(Value::String(s)) if !s.is_empty() => s
                .parse::<i64>()
                .map_err(|_| invalid_params(format!("timeoutSeconds \"{s}\" is not a number.")))?,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(DEFAULT_EXECUTION_TIMEOUT_S),
            _ => DEFAULT_EXECUTION_TIMEOUT_S,
        };
        out.push(json!({
            "name": step.get("name").cloned().unwrap_or(json!("step")),
            "action": step.get("action").cloned().unwrap_or(json!("")),
            "runCommand": run,
            "workingDirectory": inputs.get("workingDirectory").cloned().unwrap_or(json!("")),
            "timeoutSeconds": timeout.max(1),
        }));
    }
    Ok(out)
}

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

/// SendCommand (also the entry point for Automation's `aws:runCommand`).
pub fn send_command(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
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
    let params = resolve_parameters(content.get("parameters").unwrap_or(&Value::Null), &supplied)?;
    let plugins = plugins(&content, &params)?;
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
    let _guard = inner.lock.lock();
    apply(ssm, scope, &mut cmd, &invs, &changed, ops)?;
    drop(_guard);
    for (id, _) in &hits {
        ssm.commands().wake(id);
    }
    Ok(json!({ "Command": command_doc(&cmd, &invs) }))
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
    if let Some(p) = s(input, "PluginName") {
        if p != inv.plugin_name {
            return Err(err(
                "InvalidPluginName",
                format!("Plugin {p} is not part of this command."),
            ));
        }
    }
    Ok(get_invocation_doc(&c, &inv))
}

/// CancelCommand: Pending invocations end Cancelled at once; running ones become Cancelling and
/// the node kills the process when its next reply learns of it.
pub fn cancel_command(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "CommandId").unwrap_or("");
    let only = strings(input, "InstanceIds");
    for x in &only {
        check_instance_id(x)?;
    }
    let inner = ssm.inner();
    let _guard = inner.lock.lock();
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
    apply(ssm, scope, &mut cmd, &invs, &changed, ops)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_defaulted() {
        let declared = json!({
            "commands": {"type": "StringList", "minItems": 1},
            "executionTimeout": {"type": "String", "default": "3600", "allowedPattern": "[0-9]+"},
            "mode": {"type": "String", "default": "a", "allowedValues": ["a", "b"]},
        });
        let sup = |v: Value| v.as_object().unwrap().clone();
        let p = resolve_parameters(&declared, &sup(json!({"commands": ["echo hi"]}))).unwrap();
        assert_eq!(p["commands"], json!(["echo hi"]));
        assert_eq!(p["executionTimeout"], json!("3600"));
        let e = resolve_parameters(&declared, &sup(json!({}))).unwrap_err();
        assert_eq!(e.kind, "InvalidParameters");
        assert!(e.message.contains("commands"));
        let e = resolve_parameters(&declared, &sup(json!({"commands": ["x"], "nope": ["1"]})))
            .unwrap_err();
        assert!(e.message.contains("nope"));
        let e = resolve_parameters(&declared, &sup(json!({"commands": ["x"], "mode": ["c"]})))
            .unwrap_err();
        assert!(e.message.contains("allowedValues"));
        let e = resolve_parameters(
            &declared,
            &sup(json!({"commands": ["x"], "executionTimeout": ["x1"]})),
        )
        .unwrap_err();
        assert!(e.message.contains("allowedPattern"));
        let e = resolve_parameters(
            &declared,
            &sup(json!({"commands": ["x"], "mode": ["a", "b"]})),
        )
        .unwrap_err();
        assert!(e.message.contains("single value"));
    }

    #[test]
    fn substitution_keeps_lists_and_fills_text() {
        let p = json!({"commands": ["a", "b"], "dir": "/tmp"});
        let p = p.as_object().unwrap();
        assert_eq!(substitute(&json!("{{ commands }}"), p), json!(["a", "b"]));
        assert_eq!(
            substitute(&json!("cd {{dir}} && x"), p),
            json!("cd /tmp && x")
        );
        let content = json!({"mainSteps": [{"action": "aws:runShellScript", "name": "run",
            "inputs": {"runCommand": "{{ commands }}", "workingDirectory": "{{ dir }}", "timeoutSeconds": "5"}}]});
        let pl = plugins(&content, p).unwrap();
        assert_eq!(pl[0]["runCommand"], json!(["a", "b"]));
        assert_eq!(pl[0]["timeoutSeconds"], json!(5));
        assert_eq!(pl[0]["workingDirectory"], json!("/tmp"));
    }
}
