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

/// Counts of a command's invocations: (completed, errors, delivery timed out).
pub fn counts(invs: &[Invocation]) -> (usize, usize, usize) {
    let completed = invs.iter().filter(|i| terminal(&i.status)).count();
    let errors = invs
        .iter()
        .filter(|i| {
            terminal(&i.status) && i.status != "Success" && i.status_details != "DeliveryTimedOut"
        })
        .count();
    let dto = invs
        .iter()
        .filter(|i| i.status_details == "DeliveryTimedOut")
        .count();
    (completed, errors, dto)
}

/// The command's (Status, StatusDetails) from its invocations.
pub fn roll_up(invs: &[Invocation]) -> (String, String) {
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
    let all = |s: &str| invs.iter().all(|i| i.status == s);
    let any_details = |d: &str| invs.iter().any(|i| i.status_details == d);
    if all("Success") {
        pair("Success", "Success")
    } else if invs.iter().any(|i| i.status == "Cancelled") {
        pair("Cancelled", "Cancelled")
    } else if invs.iter().any(|i| i.status == "Failed") {
        pair("Failed", "Failed")
    } else if any_details("ExecutionTimedOut") {
        pair("TimedOut", "ExecutionTimedOut")
    } else if any_details("DeliveryTimedOut") {
        if invs.iter().any(|i| i.status == "Success") {
            pair("Success", "Incomplete")
        } else {
            pair("TimedOut", "DeliveryTimedOut")
        }
    } else {
        pair("Failed", "Failed")
    }
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
        let mut p = json!({
            "Name": i.plugin_name,
            "Status": i.status,
            "StatusDetails": i.status_details,
            "ResponseCode": i.response_code,
            "Output": cap(&format!("{}{}", i.stdout, i.stderr), LIST_OUTPUT_CAP),
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
        });
        if let Some(t) = i.started {
            p["ResponseStartDateTime"] = json!(t);
        }
        if let Some(t) = i.ended {
            p["ResponseFinishDateTime"] = json!(t);
        }
        d["CommandPlugins"] = json!([p]);
    }
    d
}

/// The GetCommandInvocation result.
pub fn get_invocation_doc(c: &Command, i: &Invocation) -> Value {
    let mut d = json!({
        "CommandId": i.command_id,
        "InstanceId": i.instance_id,
        "Comment": i.comment,
        "DocumentName": i.document_name,
        "DocumentVersion": i.document_version,
        "PluginName": i.plugin_name,
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
    fn roll_up_follows_the_invocations() {
        assert_eq!(roll_up(&[inv("Pending", "Pending")]).0, "Pending");
        assert_eq!(
            roll_up(&[inv("Success", "Success"), inv("InProgress", "InProgress")]).0,
            "InProgress"
        );
        assert_eq!(
            roll_up(&[inv("Success", "Success"), inv("Success", "Success")]).0,
            "Success"
        );
        assert_eq!(
            roll_up(&[inv("Success", "Success"), inv("Failed", "Failed")]).0,
            "Failed"
        );
        assert_eq!(
            roll_up(&[inv("TimedOut", "ExecutionTimedOut")]),
            ("TimedOut".into(), "ExecutionTimedOut".into())
        );
        assert_eq!(
            roll_up(&[
                inv("Success", "Success"),
                inv("TimedOut", "DeliveryTimedOut")
            ]),
            ("Success".into(), "Incomplete".into())
        );
        assert_eq!(roll_up(&[inv("Cancelled", "Cancelled")]).0, "Cancelled");
        assert_eq!(concurrency_limit("1", 10), 1);
        assert_eq!(concurrency_limit("25%", 10), 3);
        assert_eq!(concurrency_limit("10%", 1), 1);
        let (done, errs, dto) = counts(&[
            inv("Success", "Success"),
            inv("Failed", "Failed"),
            inv("TimedOut", "DeliveryTimedOut"),
            inv("InProgress", "InProgress"),
        ]);
        assert_eq!((done, errs, dto), (3, 1, 1));
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
