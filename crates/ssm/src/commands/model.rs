//! Run Command rows and shapes: the `Command` (one SendCommand) and its `Invocation`s (one per
//! target node), their control-store tables, the status roll-up from invocations to the command
//! (as AWS aggregates it), output capping, and the `Command` / `CommandInvocation` /
//! `GetCommandInvocation` response documents.

use opsloop_core::Value;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `ssm.commands`: key `<account>/<region>/<command-id>`.
pub const COMMANDS: &str = "ssm.commands";
/// `ssm.invocations`: key `<account>/<region>/<command-id>/<instance-id>`.
pub const INVOCATIONS: &str = "ssm.invocations";
/// `ssm.node_keys`: key = the node's access key id (global), row [`NodeKey`].
pub const NODE_KEYS: &str = "ssm.node_keys";

/// Characters of output GetCommandInvocation returns (AWS: the first 24,000).
pub const GET_OUTPUT_CAP: usize = 24_000;
/// Characters of output ListCommandInvocations `Details` returns per plugin (AWS: 2,500).
pub const LIST_OUTPUT_CAP: usize = 2_500;

/// One SendCommand.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Command {
    pub id: String,
    pub document_name: String,
    pub document_version: String,
    pub comment: String,
    /// Parameters as sent (name → values).
    pub parameters: serde_json::Map<String, Value>,
    pub instance_ids: Vec<String>,
    pub targets: Vec<Value>,
    pub requested: f64,
    /// Delivery timeout (TimeoutSeconds): a node must pick the command up before this.
    pub timeout_seconds: i64,
    pub expires_after: f64,
    pub max_concurrency: String,
    pub max_errors: String,
    pub status: String,
    pub status_details: String,
    #[serde(default)]
    pub cloudwatch: Option<Value>,
    #[serde(default)]
    pub notification: Option<Value>,
    #[serde(default)]
    pub service_role: Option<String>,
    /// The resolved plugins (`{name, action, runCommand, workingDirectory, timeoutSeconds}`) the
    /// agent runs.
    pub plugins: Vec<Value>,
}

/// One command on one node.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Invocation {
    pub command_id: String,
    pub instance_id: String,
    pub instance_name: String,
    pub document_name: String,
    pub document_version: String,
    pub comment: String,
    pub requested: f64,
    pub status: String,
    pub status_details: String,
    pub response_code: i64,
    pub plugin_name: String,
    /// First [`GET_OUTPUT_CAP`] characters of stdout / stderr.
    pub stdout: String,
    pub stderr: String,
    pub started: Option<f64>,
    pub ended: Option<f64>,
    /// CancelCommand asked while the node runs it; the node's next reply learns it.
    pub cancel_requested: bool,
    /// Each step's result as the node reported it with the final reply (empty before, and for
    /// invocations that never ran).
    #[serde(default)]
    pub plugins: Vec<PluginResult>,
}

/// One plugin (step) of an invocation as the node ran it.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PluginResult {
    pub name: String,
    pub status: String,
    pub status_details: String,
    pub response_code: i64,
    /// First [`GET_OUTPUT_CAP`] characters of the step's stdout / stderr.
    pub stdout: String,
    pub stderr: String,
    pub started: Option<f64>,
    pub ended: Option<f64>,
}

impl PluginResult {
    /// Parse one `PluginResults` entry of a final SendReply (status normalised to the
    /// CommandPluginStatus values; output capped).
    pub fn from_reply(v: &Value) -> PluginResult {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let status = match v.get("Status").and_then(Value::as_str).unwrap_or("Failed") {
            s @ ("Success" | "Failed" | "TimedOut" | "Cancelled") => s.to_string(),
            _ => "Failed".to_string(),
        };
        let details = match text("StatusDetails") {
            d if d.is_empty() => status.clone(),
            d => d,
        };
        PluginResult {
            name: text("Name"),
            status,
            status_details: details,
            response_code: v.get("ResponseCode").and_then(Value::as_i64).unwrap_or(-1),
            stdout: cap(&text("StandardOutput"), GET_OUTPUT_CAP),
            stderr: cap(&text("StandardError"), GET_OUTPUT_CAP),
            started: v.get("StartDateTime").and_then(Value::as_f64),
            ended: v.get("EndDateTime").and_then(Value::as_f64),
        }
    }
}

/// The plugin names of a command, in order.
pub fn plugin_names(c: &Command) -> Vec<String> {
    c.plugins
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// A node's own credentials (issued at registration).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeKey {
    pub secret: String,
    pub account: String,
    pub region: String,
    pub instance_id: String,
}

/// Is an invocation status final?
pub fn terminal(status: &str) -> bool {
    matches!(
        status,
        "Success" | "Failed" | "TimedOut" | "Cancelled" | "Undeliverable" | "Terminated"
    )
}

/// Append `chunk` to `buf` keeping at most `cap` characters.
pub fn append_capped(buf: &mut String, chunk: &str, cap: usize) {
    let have = buf.chars().count();
    if have >= cap {
        return;
    }
    buf.extend(chunk.chars().take(cap - have));
}

/// The first `cap` characters of `s`.
pub fn cap(s: &str, cap: usize) -> String {
    s.chars().take(cap).collect()
}

/// How many invocations may run at once: `MaxConcurrency` as a number, or a percentage of
/// `targets` (rounded up, at least 1).
pub fn concurrency_limit(max_concurrency: &str, targets: usize) -> usize {
    match max_concurrency.strip_suffix('%') {
        Some(p) => {
            let p: usize = p.parse().unwrap_or(100);
            (targets * p).div_ceil(100).max(1)
        }
        None => max_concurrency.parse::<usize>().unwrap_or(50).max(1),
    }
}

/// How many errors a command tolerates: `MaxErrors` as a number, or a percentage of `targets`
/// (rounded down: 10% of 50 tolerates 5, the sixth error stops the command).
pub fn error_limit(max_errors: &str, targets: usize) -> usize {
    match max_errors.strip_suffix('%') {
        Some(p) => targets * p.parse::<usize>().unwrap_or(0) / 100,
        None => max_errors.parse::<usize>().unwrap_or(0),
    }
}

/// Does this invocation count against MaxErrors (AWS: Failed and Execution Timed Out do;
/// Delivery Timed Out, Undeliverable and Cancelled do not)?
pub fn is_error(i: &Invocation) -> bool {
    i.status == "Failed" || (i.status == "TimedOut" && i.status_details == "ExecutionTimedOut")
}

/// Counts of a command's invocations: (completed, errors, delivery timed out).
pub fn counts(invs: &[Invocation]) -> (usize, usize, usize) {
    let completed = invs.iter().filter(|i| terminal(&i.status)).count();
    let errors = invs.iter().filter(|i| is_error(i)).count();
    let dto = invs
        .iter()
        .filter(|i| i.status_details == "DeliveryTimedOut")
        .count();
    (completed, errors, dto)
}

/// The command's (Status, StatusDetails) from its invocations and its MaxErrors: Failed (or
/// TimedOut when every error is an execution timeout) once errors exceed MaxErrors, Cancelled
/// when the user cancelled, TimedOut/DeliveryTimedOut when nothing was delivered, and
/// Success/Incomplete when some invocations did not succeed without exceeding MaxErrors.
pub fn roll_up(invs: &[Invocation], max_errors: &str) -> (String, String) {
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    if invs.is_empty() {
        return pair("Success", "Success");
    }
    if invs.iter().all(|i| i.status == "Pending") {
        return pair("Pending", "Pending");
    }
    if invs.iter().any(|i| !terminal(&i.status)) {
        return pair("InProgress", "InProgress");
    }
    if invs.iter().all(|i| i.status == "Success") {
        return pair("Success", "Success");
    }
    let errors: Vec<&Invocation> = invs.iter().filter(|i| is_error(i)).collect();
    if errors.len() > error_limit(max_errors, invs.len()) {
        return if errors.iter().all(|i| i.status == "TimedOut") {
            pair("TimedOut", "ExecutionTimedOut")
        } else {
            pair("Failed", "Failed")
        };
    }
    if invs.iter().any(|i| i.status == "Cancelled") {
        return pair("Cancelled", "Cancelled");
    }
    if invs.iter().any(|i| i.status == "Success") || !errors.is_empty() {
        return pair("Success", "Incomplete");
    }
    if invs.iter().any(|i| i.status_details == "DeliveryTimedOut") {
        return pair("TimedOut", "DeliveryTimedOut");
    }
    pair("Failed", "Undeliverable")
}

/// The `Command` shape.
pub fn command_doc(c: &Command, invs: &[Invocation]) -> Value {
    let (completed, errors, dto) = counts(invs);
    let mut d = json!({
        "CommandId": c.id,
        "DocumentName": c.document_name,
        "DocumentVersion": c.document_version,
        "Comment": c.comment,
        "ExpiresAfter": c.expires_after,
        "Parameters": Value::Object(c.parameters.clone()),
        "InstanceIds": c.instance_ids,
        "Targets": c.targets,
        "RequestedDateTime": c.requested,
        "Status": c.status,
        "StatusDetails": c.status_details,
        "MaxConcurrency": c.max_concurrency,
        "MaxErrors": c.max_errors,
        "TargetCount": invs.len(),
        "CompletedCount": completed,
        "ErrorCount": errors,
        "DeliveryTimedOutCount": dto,
        "TimeoutSeconds": c.timeout_seconds,
    });
    if let Some(cw) = &c.cloudwatch {
        d["CloudWatchOutputConfig"] = cw.clone();
    }
    if let Some(n) = &c.notification {
        d["NotificationConfig"] = n.clone();
    }
    if let Some(r) = &c.service_role {
        d["ServiceRole"] = json!(r);
    }
    d
}

/// The `CommandInvocation` shape (ListCommandInvocations), with `CommandPlugins` when `details`.
pub fn invocation_doc(c: &Command, i: &Invocation, details: bool) -> Value {
    let mut d = json!({
        "CommandId": i.command_id,
        "InstanceId": i.instance_id,
        "InstanceName": i.instance_name,
        "Comment": i.comment,
        "DocumentName": i.document_name,
        "DocumentVersion": i.document_version,
        "RequestedDateTime": i.requested,
        "Status": i.status,
        "StatusDetails": i.status_details,
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
    });
    if let Some(cw) = &c.cloudwatch {
        d["CloudWatchOutputConfig"] = cw.clone();
    }
    if let Some(n) = &c.notification {
        d["NotificationConfig"] = n.clone();
    }
    if details {
        d["CommandPlugins"] = json!(command_plugins(c, i));
    }
    d
}

/// The `CommandPlugin` list of an invocation: the node's per-step results once it reported
/// them; before that (or when it never ran) one entry per step carrying the invocation's status,
/// the output so far on the step the node last named.
pub fn command_plugins(c: &Command, i: &Invocation) -> Vec<Value> {
    let plugin = |name: &str,
                  status: &str,
                  details: &str,
                  code: i64,
                  out: String,
                  started: Option<f64>,
                  ended: Option<f64>| {
        let mut p = json!({
            "Name": name,
            "Status": status,
            "StatusDetails": details,
            "ResponseCode": code,
            "Output": cap(&out, LIST_OUTPUT_CAP),
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
        });
        if let Some(t) = started {
            p["ResponseStartDateTime"] = json!(t);
        }
        if let Some(t) = ended {
            p["ResponseFinishDateTime"] = json!(t);
        }
        p
    };
    if !i.plugins.is_empty() {
        return i
            .plugins
            .iter()
            .map(|r| {
                plugin(
                    &r.name,
                    &r.status,
                    &r.status_details,
                    r.response_code,
                    format!("{}{}", r.stdout, r.stderr),
                    r.started,
                    r.ended,
                )
            })
            .collect();
    }
    let mut names = plugin_names(c);
    if names.is_empty() {
        names.push(i.plugin_name.clone());
    }
    let holder = if names.contains(&i.plugin_name) {
        i.plugin_name.clone()
    } else {
        names[0].clone()
    };
    names
        .iter()
        .map(|n| {
            let out = if *n == holder {
                format!("{}{}", i.stdout, i.stderr)
            } else {
                String::new()
            };
            plugin(
                n,
                &i.status,
                &i.status_details,
                i.response_code,
                out,
                i.started,
                i.ended,
            )
        })
        .collect()
}

/// The GetCommandInvocation result; with `plugin`, that step's own status and output when the
/// node reported per-step results.
pub fn get_invocation_doc(c: &Command, i: &Invocation, plugin: Option<&str>) -> Value {
    let step = plugin.and_then(|p| i.plugins.iter().find(|r| r.name == p));
    if let Some(r) = step {
        let mut d = json!({
            "CommandId": i.command_id,
            "InstanceId": i.instance_id,
            "Comment": i.comment,
            "DocumentName": i.document_name,
            "DocumentVersion": i.document_version,
            "PluginName": r.name,
            "ResponseCode": r.response_code,
            "Status": r.status,
            "StatusDetails": r.status_details,
            "StandardOutputContent": r.stdout,
            "StandardErrorContent": r.stderr,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": c.cloudwatch.clone().unwrap_or_else(|| json!({
                "CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false})),
        });
        if let Some(t) = r.started {
            d["ExecutionStartDateTime"] = json!(rfc3339(t));
            d["ExecutionElapsedTime"] = json!(elapsed(r.ended.unwrap_or(t) - t));
        }
        if let Some(t) = r.ended {
            d["ExecutionEndDateTime"] = json!(rfc3339(t));
        }
        return d;
    }
    let mut d = json!({
        "CommandId": i.command_id,
        "InstanceId": i.instance_id,
        "Comment": i.comment,
        "DocumentName": i.document_name,
        "DocumentVersion": i.document_version,
        "PluginName": plugin.unwrap_or(&i.plugin_name),
        "ResponseCode": i.response_code,
        "Status": i.status,
        "StatusDetails": i.status_details,
        "StandardOutputContent": cap(&i.stdout, GET_OUTPUT_CAP),
        "StandardErrorContent": cap(&i.stderr, GET_OUTPUT_CAP),
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": c.cloudwatch.clone().unwrap_or_else(|| json!({
            "CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false})),
    });
    if let Some(t) = i.started {
        d["ExecutionStartDateTime"] = json!(rfc3339(t));
        d["ExecutionElapsedTime"] = json!(elapsed(i.ended.unwrap_or_else(crate::common::now) - t));
    }
    if let Some(t) = i.ended {
        d["ExecutionEndDateTime"] = json!(rfc3339(t));
    }
    d
}

/// AWS's StringDateTime (`2026-11-21T22:00:00.123Z`).
fn rfc3339(t: f64) -> String {
    let ns = (t * 1e9) as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(ns)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// `PT0.123S` as AWS writes ExecutionElapsedTime.
fn elapsed(s: f64) -> String {
    format!("PT{:.3}S", s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(status: &str, details: &str) -> Invocation {
        Invocation {
            status: status.into(),
            status_details: details.into(),
            ..Default::default()
        }
    }

    #[test]
    fn roll_up_follows_the_invocations_and_max_errors() {
        let r = |invs: &[Invocation], me: &str| roll_up(invs, me);
        assert_eq!(r(&[inv("Pending", "Pending")], "0").0, "Pending");
        assert_eq!(
            r(
                &[inv("Success", "Success"), inv("InProgress", "InProgress")],
                "0"
            )
            .0,
            "InProgress"
        );
        assert_eq!(
            r(&[inv("Success", "Success"), inv("Success", "Success")], "0").0,
            "Success"
        );
        let one_failed = [inv("Success", "Success"), inv("Failed", "Failed")];
        assert_eq!(r(&one_failed, "0").0, "Failed");
        assert_eq!(r(&one_failed, "1"), ("Success".into(), "Incomplete".into()));
        assert_eq!(
            r(&one_failed, "50%"),
            ("Success".into(), "Incomplete".into())
        );
        assert_eq!(r(&one_failed, "49%").0, "Failed");
        assert_eq!(
            r(&[inv("TimedOut", "ExecutionTimedOut")], "0"),
            ("TimedOut".into(), "ExecutionTimedOut".into())
        );
        assert_eq!(
            r(
                &[
                    inv("Success", "Success"),
                    inv("TimedOut", "DeliveryTimedOut")
                ],
                "0"
            ),
            ("Success".into(), "Incomplete".into())
        );
        assert_eq!(
            r(&[inv("TimedOut", "DeliveryTimedOut")], "0"),
            ("TimedOut".into(), "DeliveryTimedOut".into())
        );
        assert_eq!(r(&[inv("Cancelled", "Cancelled")], "0").0, "Cancelled");
        // Errors past MaxErrors win over the invocations it cancelled.
        assert_eq!(
            r(
                &[inv("Failed", "Failed"), inv("Cancelled", "Cancelled")],
                "0"
            ),
            ("Failed".into(), "Failed".into())
        );
        assert_eq!(concurrency_limit("1", 10), 1);
        assert_eq!(concurrency_limit("25%", 10), 3);
        assert_eq!(concurrency_limit("10%", 1), 1);
        assert_eq!(error_limit("10%", 50), 5);
        assert_eq!(error_limit("3", 50), 3);
        assert_eq!(error_limit("0", 5), 0);
        let (done, errs, dto) = counts(&[
            inv("Success", "Success"),
            inv("Failed", "Failed"),
            inv("TimedOut", "DeliveryTimedOut"),
            inv("Cancelled", "Cancelled"),
            inv("InProgress", "InProgress"),
        ]);
        assert_eq!((done, errs, dto), (4, 1, 1));
    }

    #[test]
    fn output_is_capped_in_characters() {
        let mut b = String::new();
        append_capped(&mut b, "héllo", 3);
        assert_eq!(b, "hél");
        append_capped(&mut b, "more", 3);
        assert_eq!(b, "hél");
        assert_eq!(cap("abcdef", 4), "abcd");
        assert_eq!(elapsed(1.5), "PT1.500S");
        assert_eq!(rfc3339(0.5), "1970-01-01T00:00:00.500Z");
    }
}
