//! The Automation actions. Each takes the step's resolved inputs and its saved action state and
//! returns an [`Outcome`]: done (a payload the step's output selectors read), failed, or waiting
//! (sleep end, poll interval, approval, pause, child execution, command). Waiting actions keep what
//! they need in the step's `state`, which is saved, so they carry on after a restart.
//! opsloop's own services are reached through `Directory::invoke`; other AWS services, and
//! `aws:executeScript`, go through the system `python3` (see `script`).

use std::collections::BTreeMap;
use std::sync::Arc;

use opsloop_core::Value;
use serde_json::json;

use super::engine::Cancel;
use super::model::Execution;
use super::{script, vars};
use crate::common::now;
use crate::Ssm;

/// How an action ended (or paused).
pub enum Outcome {
    Done {
        payload: Value,
        response: Option<String>,
        extra: BTreeMap<String, Vec<String>>,
        goto: Option<String>,
    },
    Fail {
        message: String,
        kind: String,
    },
    /// Keep the step active; check again at `wake_at` (None: when signalled).
    Wait {
        wake_at: Option<f64>,
        status: &'static str,
        state: Value,
    },
    Cancelled,
}

impl Outcome {
    pub fn fail(message: impl Into<String>) -> Outcome {
        Outcome::fail_kind("Verification", message)
    }
    pub fn fail_kind(kind: &str, message: impl Into<String>) -> Outcome {
        Outcome::Fail {
            message: message.into(),
            kind: kind.into(),
        }
    }
    fn done(payload: Value) -> Outcome {
        Outcome::Done {
            payload,
            response: None,
            extra: BTreeMap::new(),
            goto: None,
        }
    }
}

/// What an action runs with.
pub struct Ctx<'a> {
    pub ssm: Arc<Ssm>,
    pub ex: &'a Execution,
    pub run: usize,
    pub step: &'a Value,
    pub state: Value,
    pub cancel: Arc<Cancel>,
}

/// Poll interval of waiting actions.
const POLL_S: f64 = 0.5;

/// opsloop serviceIds by the names runbooks use (boto3 client names and endpoint prefixes).
pub fn service_id(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "ssm" => "SSM",
        "sns" => "SNS",
        "cloudwatch" | "monitoring" => "CloudWatch",
        "logs" | "cloudwatchlogs" => "CloudWatch Logs",
        "events" | "eventbridge" => "EventBridge",
        "scheduler" => "Scheduler",
        "ssm-contacts" => "SSM Contacts",
        "ssm-incidents" => "SSM Incidents",
        "xray" => "XRay",
        _ => return None,
    })
}

/// `describe_instances` → `DescribeInstances`.
fn pascal(api: &str) -> String {
    if !api.contains('_') {
        let mut c = api.chars();
        return match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => String::new(),
        };
    }
    api.split('_')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Run one action.
pub async fn run(ctx: &Ctx<'_>, inputs: Value) -> Outcome {
    let action = ctx.ex.steps[ctx.run].action.clone();
    match action.as_str() {
        "aws:sleep" => sleep(ctx, &inputs),
        "aws:pause" => pause(ctx),
        "aws:approve" => approve(ctx, &inputs).await,
        "aws:branch" => branch(ctx, &inputs),
        "aws:executeScript" => script::execute_script(ctx, &inputs).await,
        "aws:executeAwsApi" => match call_api(ctx, &inputs).await {
            Ok(v) => Outcome::done(v),
            Err(m) => Outcome::fail(m),
        },
        "aws:assertAwsResourceProperty" | "aws:waitForAwsResourceProperty" => {
            let wait = action == "aws:waitForAwsResourceProperty";
            match call_api(ctx, &inputs).await {
                Ok(v) => {
                    let sel = vars::as_text(inputs.get("PropertySelector").unwrap_or(&Value::Null));
                    let desired: Vec<String> = inputs
                        .get("DesiredValues")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(vars::as_text).collect())
                        .unwrap_or_default();
                    let got = vars::select(&v, &sel);
                    let ok = match &got {
                        Some(Value::Array(items)) => {
                            !items.is_empty()
                                && items.iter().all(|i| desired.contains(&vars::as_text(i)))
                        }
                        Some(x) => desired.contains(&vars::as_text(x)),
                        None => false,
                    };
                    let shown = got
                        .map(|g| vars::as_text(&g))
                        .unwrap_or_else(|| "null".into());
                    if ok {
                        Outcome::done(v)
                    } else if wait {
                        Outcome::Wait {
                            wake_at: Some(now() + POLL_S * 2.0),
                            status: "InProgress",
                            state: ctx.state.clone(),
                        }
                    } else {
                        Outcome::fail(format!(
                            "The property {sel} has value {shown}, which is not one of the desired values {desired:?}."
                        ))
                    }
                }
                Err(m) => Outcome::fail(m),
            }
        }
        "aws:executeAutomation" => execute_automation(ctx, &inputs),
        "aws:runCommand" => run_command(ctx, &inputs).await,
        other => Outcome::fail(format!(
            "Action {other} is not supported by this opsloop release."
        )),
    }
}

fn sleep(ctx: &Ctx<'_>, inputs: &Value) -> Outcome {
    let until = match ctx.state.get("until").and_then(Value::as_f64) {
        Some(u) => u,
        None => {
            let start = ctx.ex.steps[ctx.run].start.unwrap_or_else(now);
            if let Some(d) = inputs.get("Duration").and_then(Value::as_str) {
                match vars::parse_duration(d) {
                    Some(s) => start + s,
                    None => {
                        return Outcome::fail(format!(
                            "Duration {d} is not a valid ISO-8601 duration."
                        ))
                    }
                }
            } else if let Some(ts) = inputs.get("Timestamp").and_then(Value::as_str) {
                match vars::parse_timestamp(ts) {
                    Some(t) => t,
                    None => {
                        return Outcome::fail(format!(
                            "Timestamp {ts} is not a valid ISO-8601 timestamp."
                        ))
                    }
                }
            } else {
                return Outcome::fail("aws:sleep needs Duration or Timestamp.");
            }
        }
    };
    if now() >= until {
        return Outcome::done(json!({}));
    }
    Outcome::Wait {
        wake_at: Some(until),
        status: "InProgress",
        state: json!({"until": until}),
    }
}

fn pause(ctx: &Ctx<'_>) -> Outcome {
    if ctx.state.get("resumed").and_then(Value::as_bool) == Some(true) {
        return Outcome::done(json!({}));
    }
    Outcome::Wait {
        wake_at: None,
        status: "Waiting",
        state: ctx.state.clone(),
    }
}

async fn approve(ctx: &Ctx<'_>, inputs: &Value) -> Outcome {
    let mut state = ctx.state.clone();
    if !state.is_object() {
        state = json!({});
    }
    if let Some(r) = state
        .get("rejected")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    {
        let who = r.first().map(vars::as_text).unwrap_or_default();
        return Outcome::fail(format!("Step was rejected by {who}."));
    }
    let min = inputs
        .get("MinRequiredApprovals")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1) as usize;
    let approved: Vec<Value> = state
        .get("approved")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if approved.len() >= min {
        let decisions: Vec<Value> = approved
            .iter()
            .map(|a| json!({"Approver": a, "Decision": "Approved"}))
            .collect();
        return Outcome::Done {
            payload: json!({"ApprovalStatus": "Approved", "ApproverDecisions": decisions}),
            response: Some("Approved".into()),
            extra: BTreeMap::from([
                ("ApprovalStatus".to_string(), vec!["Approved".to_string()]),
                (
                    "ApproverDecisions".to_string(),
                    decisions.iter().map(|d| d.to_string()).collect(),
                ),
            ]),
            goto: None,
        };
    }
    if state.get("notified").is_none() {
        state["notified"] = json!(true);
        if let Some(topic) = inputs.get("NotificationArn").and_then(Value::as_str) {
            let ex = ctx.ex;
            let message = inputs.get("Message").map(vars::as_text).unwrap_or_default();
            let body = json!({
                "AutomationExecutionId": ex.id,
                "DocumentName": ex.document_name,
                "StepName": ex.steps[ctx.run].name,
                "Message": message,
                "Approvers": inputs.get("Approvers"),
                "MinRequiredApprovals": min,
            });
            let r = ctx
                .ssm
                .inner()
                .directory
                .invoke(
                    "SNS",
                    &ex.account,
                    &ex.region,
                    "Publish",
                    json!({"TopicArn": topic, "Subject": format!("Automation approval: {}", ex.document_name), "Message": body.to_string()}),
                )
                .await;
            if let Err(e) = r {
                return Outcome::fail(format!("Could not notify {topic}: {}", e.message));
            }
        }
    }
    Outcome::Wait {
        wake_at: None,
        status: "Waiting",
        state,
    }
}

fn branch(ctx: &Ctx<'_>, inputs: &Value) -> Outcome {
    let choices = inputs
        .get("Choices")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let inner = ctx.ssm.inner();
    for c in &choices {
        let resolved = match super::engine::resolve(inner, ctx.ex, c) {
            Ok(v) => v,
            Err(m) => return Outcome::fail(m),
        };
        match vars::choice_matches(&resolved) {
            Ok(true) => {
                let next = vars::as_text(c.get("NextStep").unwrap_or(&Value::Null));
                return Outcome::Done {
                    payload: json!({}),
                    response: Some(format!("Branch to {next}")),
                    extra: BTreeMap::new(),
                    goto: Some(next),
                };
            }
            Ok(false) => {}
            Err(m) => return Outcome::fail(m),
        }
    }
    match inputs.get("Default").and_then(Value::as_str) {
        Some(d) => Outcome::Done {
            payload: json!({}),
            response: Some(format!("Default branch to {d}")),
            extra: BTreeMap::new(),
            goto: Some(d.to_string()),
        },
        None => Outcome::fail("No branch choice matched and the step has no Default."),
    }
}

/// Call `Service`/`Api` with the other inputs as the request.
async fn call_api(ctx: &Ctx<'_>, inputs: &Value) -> Result<Value, String> {
    let service = inputs.get("Service").and_then(Value::as_str).unwrap_or("");
    let api = inputs.get("Api").and_then(Value::as_str).unwrap_or("");
    let mut params = inputs.as_object().cloned().unwrap_or_default();
    for k in ["Service", "Api", "PropertySelector", "DesiredValues"] {
        params.remove(k);
    }
    let ex = ctx.ex;
    match service_id(service) {
        Some(id) => ctx
            .ssm
            .inner()
            .directory
            .invoke(
                id,
                &ex.account,
                &ex.region,
                &pascal(api),
                Value::Object(params),
            )
            .await
            .map_err(|e| format!("{} ({}): {}", e.kind, api, e.message)),
        None => {
            script::boto3_call(
                service,
                api,
                &Value::Object(params),
                &ex.region,
                &ctx.cancel,
            )
            .await
        }
    }
}

fn execute_automation(ctx: &Ctx<'_>, inputs: &Value) -> Outcome {
    let inner = ctx.ssm.inner();
    let ex = ctx.ex;
    let child = match ctx.state.get("child").and_then(Value::as_str) {
        Some(c) => c.to_string(),
        None => {
            let mut req = json!({
                "DocumentName": inputs.get("DocumentName"),
                "ClientToken": ex.steps[ctx.run].id,
            });
            if let Some(v) = inputs.get("DocumentVersion") {
                req["DocumentVersion"] = v.clone();
            }
            if let Some(Value::Object(p)) = inputs.get("RuntimeParameters") {
                let mut params = serde_json::Map::new();
                for (k, v) in p {
                    params.insert(k.clone(), json!(vars::wire_output(v)));
                }
                req["Parameters"] = Value::Object(params);
            }
            match super::start_execution(
                &ctx.ssm,
                &ex.scope(),
                &req,
                Some(ex.id.clone()),
                &ex.executed_by,
            ) {
                Ok(id) => {
                    return Outcome::Wait {
                        wake_at: Some(now() + POLL_S),
                        status: "InProgress",
                        state: json!({"child": id}),
                    }
                }
                Err(e) => return Outcome::fail(format!("{}: {}", e.kind, e.message)),
            }
        }
    };
    let Ok(c) = super::model::load(inner, &ex.scope(), &child) else {
        return Outcome::fail(format!("Child execution {child} disappeared."));
    };
    if !c.is_terminal() {
        return Outcome::Wait {
            wake_at: Some(now() + POLL_S),
            status: "InProgress",
            state: ctx.state.clone(),
        };
    }
    let mut extra = BTreeMap::from([
        ("ExecutionId".to_string(), vec![child.clone()]),
        ("Status".to_string(), vec![c.status.clone()]),
    ]);
    let output = serde_json::to_string(&c.outputs).unwrap_or_default();
    extra.insert("Output".to_string(), vec![output]);
    if c.status == "Success" {
        Outcome::Done {
            payload: json!({"ExecutionId": child, "Status": c.status, "Output": c.outputs}),
            response: None,
            extra,
            goto: None,
        }
    } else {
        Outcome::fail(format!(
            "Child automation {child} ended with status {}.",
            c.status
        ))
    }
}

async fn run_command(ctx: &Ctx<'_>, inputs: &Value) -> Outcome {
    let ex = ctx.ex;
    let dir = &ctx.ssm.inner().directory;
    let command = match ctx.state.get("command").and_then(Value::as_str) {
        Some(c) => c.to_string(),
        None => {
            let mut req = inputs.clone();
            if let Some(Value::Object(p)) = inputs.get("Parameters") {
                let mut params = serde_json::Map::new();
                for (k, v) in p {
                    params.insert(k.clone(), json!(vars::wire_output(v)));
                }
                req["Parameters"] = Value::Object(params);
            }
            match dir
                .invoke("SSM", &ex.account, &ex.region, "SendCommand", req)
                .await
            {
                Ok(out) => match out.pointer("/Command/CommandId").and_then(Value::as_str) {
                    Some(id) => id.to_string(),
                    None => return Outcome::fail("SendCommand returned no CommandId."),
                },
                Err(e) => {
                    return Outcome::fail(format!("SendCommand failed: {}: {}", e.kind, e.message))
                }
            }
        }
    };
    let state = json!({"command": command});
    let listed = dir
        .invoke(
            "SSM",
            &ex.account,
            &ex.region,
            "ListCommands",
            json!({"CommandId": command}),
        )
        .await;
    let status = match listed {
        Ok(v) => v
            .pointer("/Commands/0/Status")
            .and_then(Value::as_str)
            .unwrap_or("Pending")
            .to_string(),
        Err(e) => return Outcome::fail(format!("ListCommands failed: {}: {}", e.kind, e.message)),
    };
    match status.as_str() {
        "Success" => {
            let mut extra = BTreeMap::from([
                ("CommandId".to_string(), vec![command.clone()]),
                ("Status".to_string(), vec![status.clone()]),
            ]);
            let mut payload = json!({"CommandId": command, "Status": status});
            if let Ok(inv) = dir
                .invoke(
                    "SSM",
                    &ex.account,
                    &ex.region,
                    "ListCommandInvocations",
                    json!({"CommandId": command, "Details": true}),
                )
                .await
            {
                // Output: every step's output on the first target, in order; ResponseCode: the
                // last step's.
                let plugins = inv
                    .pointer("/CommandInvocations/0/CommandPlugins")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !plugins.is_empty() {
                    let out: String = plugins
                        .iter()
                        .filter_map(|p| p.get("Output").and_then(Value::as_str))
                        .collect();
                    extra.insert("Output".to_string(), vec![out.clone()]);
                    payload["Output"] = json!(out);
                    if let Some(code) = plugins
                        .last()
                        .and_then(|p| p.get("ResponseCode"))
                        .and_then(Value::as_i64)
                    {
                        extra.insert("ResponseCode".to_string(), vec![code.to_string()]);
                        payload["ResponseCode"] = json!(code);
                    }
                }
            }
            Outcome::Done {
                payload,
                response: None,
                extra,
                goto: None,
            }
        }
        "Failed" | "Cancelled" | "TimedOut" | "Cancelling" => {
            Outcome::fail(format!("Command {command} ended with status {status}."))
        }
        _ => Outcome::Wait {
            wake_at: Some(now() + POLL_S * 2.0),
            status: "InProgress",
            state,
        },
    }
}
