//! The Automation engine: executions of schemaVersion 0.3 runbooks. This module answers the six
//! Automation operations; `model` holds the durable rows and wire shapes, `vars` parameters,
//! variables, selectors and branch operators, `engine` the background executor and step controls,
//! `actions` and `script` the actions. See the crate README ("Automation") for the design.

pub mod actions;
pub mod engine;
pub mod model;
pub mod script;
#[cfg(test)]
mod tests;
pub mod vars;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use parking_lot::Mutex;
use serde_json::json;

use crate::common::{get_row, max_results, now, page, s, scan_rows, tag_list, to_bytes};
use crate::error::{err, validation};
use crate::{documents, Scope, Ssm};
use model::{Execution, ACTIVE, TABLE, TOKENS};

/// The operations this module answers (lib.rs dispatches them here).
pub const OPERATIONS: &[&str] = &[
    "StartAutomationExecution",
    "StopAutomationExecution",
    "GetAutomationExecution",
    "DescribeAutomationExecutions",
    "DescribeAutomationStepExecutions",
    "SendAutomationSignal",
];

/// In-memory state of this module: the executions being advanced right now (with their
/// cancellation handles), the scanner's wake-up and its task.
#[derive(Default)]
pub struct State {
    pub(crate) running: Mutex<HashMap<String, Arc<engine::Cancel>>>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
    pub(crate) stopping: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Answer one of [`OPERATIONS`].
pub async fn handle(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: Value,
) -> Result<Value, ApiError> {
    let result = match ctx.operation.as_str() {
        "StartAutomationExecution" => start_execution(ssm, scope, &input, None, &scope.principal)
            .map(|id| json!({"AutomationExecutionId": id})),
        "StopAutomationExecution" => stop(ssm, scope, &input),
        "GetAutomationExecution" => {
            let id = s(&input, "AutomationExecutionId").unwrap_or("");
            model::load(ssm.inner(), scope, id)
                .map(|ex| json!({"AutomationExecution": model::execution_doc(&ex)}))
        }
        "DescribeAutomationExecutions" => describe(ssm, scope, &input),
        "DescribeAutomationStepExecutions" => describe_steps(ssm, scope, &input),
        "SendAutomationSignal" => signal(ssm, ctx, scope, &input),
        op => Err(ApiError::with_status(
            "NotImplemented",
            501,
            format!("Operation {op} is not implemented."),
        )),
    };
    if let Err(e) = &result {
        tracing::debug!(operation = %ctx.operation, kind = %e.kind, message = %e.message, "automation request failed");
    }
    result
}

/// Start the scanner (called from `Ssm::start`); executions left active by a previous run are
/// picked up by its first scan.
pub fn start(ssm: &Arc<Ssm>) -> Result<(), String> {
    let task = tokio::spawn(engine::scanner(Arc::downgrade(ssm)));
    ssm.automation().tasks.lock().push(task);
    Ok(())
}

/// Stop the scanner; running actions are abandoned unsaved (they run again after a restart).
pub fn shutdown(ssm: &Ssm) {
    let st = ssm.automation();
    st.stopping.store(true, Ordering::SeqCst);
    for (_, c) in st.running.lock().iter() {
        c.flag.store(true, Ordering::SeqCst);
    }
    for t in st.tasks.lock().drain(..) {
        t.abort();
    }
}

fn parameters_of(input: &Value) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let mut out = BTreeMap::new();
    if let Some(m) = input.get("Parameters").and_then(Value::as_object) {
        for (k, v) in m {
            let list = match v {
                Value::Array(items) => items.iter().map(vars::as_text).collect(),
                other => vec![vars::as_text(other)],
            };
            out.insert(k.clone(), list);
        }
    }
    Ok(out)
}

/// StartAutomationExecution (also used by `aws:executeAutomation` with `parent`).
pub fn start_execution(
    ssm: &Ssm,
    scope: &Scope,
    input: &Value,
    parent: Option<String>,
    executed_by: &str,
) -> Result<String, ApiError> {
    let inner = ssm.inner();
    let name = s(input, "DocumentName").unwrap_or("");
    let mode = s(input, "Mode").unwrap_or("Auto");
    if mode != "Auto" {
        return Err(validation(format!(
            "Mode {mode} is not supported by opsloop; use Auto."
        )));
    }
    for k in [
        "Targets",
        "TargetMaps",
        "TargetLocations",
        "TargetParameterName",
        "TargetLocationsURL",
    ] {
        if input
            .get(k)
            .is_some_and(|v| !v.is_null() && v != &json!([]))
        {
            return Err(validation(format!(
                "{k} (rate-controlled automation) is not supported by opsloop."
            )));
        }
    }
    let not_found = || {
        err(
            "AutomationDefinitionNotFoundException",
            format!("Automation definition {name} not found."),
        )
    };
    let doc = documents::find(inner, scope, name)?.ok_or_else(not_found)?;
    if doc.doc_type != "Automation" {
        return Err(not_found());
    }
    let version = documents::pick(&doc, s(input, "DocumentVersion"), None).map_err(|_| {
        err(
            "AutomationDefinitionVersionNotFoundException",
            format!(
                "Automation definition {name} version {} not found.",
                s(input, "DocumentVersion").unwrap_or("")
            ),
        )
    })?;
    let content = documents::parse_content(&version.content, &version.format)?;
    let given = parameters_of(input)?;
    let (wire, values) = vars::check_parameters(&content, &given)?;
    let token = s(input, "ClientToken").map(|t| scope.key(t));
    let _g = inner.lock.lock();
    if let Some(t) = &token {
        if let Some(existing) = get_row::<Value>(&*inner.store, TOKENS, t)? {
            if existing.get("document").and_then(Value::as_str) == Some(doc.name.as_str()) {
                return Ok(existing
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string());
            }
            return Err(err(
                "IdempotentParameterMismatch",
                "The ClientToken was used with different parameters.",
            ));
        }
    }
    let id = engine::new_id();
    let t = now();
    let mut vars_map: BTreeMap<String, Value> = values.into_iter().collect();
    for (k, v) in vars::builtins(&id, &doc.name, &scope.account, &scope.region, t) {
        vars_map.insert(k, v);
    }
    let first = content
        .pointer("/mainSteps/0/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let ex = Execution {
        id: id.clone(),
        account: scope.account.clone(),
        region: scope.region.clone(),
        document_name: doc.name.clone(),
        document_version: version.version.to_string(),
        content,
        mode: mode.to_string(),
        executed_by: executed_by.to_string(),
        status: "Pending".into(),
        start: t,
        end: None,
        failure_message: None,
        parameters: wire,
        vars: vars_map,
        steps: Vec::new(),
        next: first,
        active: None,
        loops: Vec::new(),
        critical_failed: false,
        cancel: None,
        parent,
        tags: tag_list(input, "Tags"),
        outputs: BTreeMap::new(),
    };
    let mut extra = vec![model::execution_event(&ex)];
    if let Some(t) = token {
        extra.push(WriteOp::Put {
            table: TOKENS.into(),
            key: t,
            value: to_bytes(&json!({"id": id, "document": doc.name})),
        });
    }
    inner.commit(model::save_ops(&ex, extra))?;
    ssm.automation().wake.notify_one();
    tracing::info!(execution = %id, document = %doc.name, "automation started");
    Ok(id)
}

fn stop(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let inner = ssm.inner();
    let id = s(input, "AutomationExecutionId").unwrap_or("");
    let kind = s(input, "Type").unwrap_or("Cancel").to_string();
    let key = scope.key(id);
    let r = engine::update(inner, &key, |ex| {
        if ex.is_terminal() || ex.cancel.is_some() {
            return (
                Err(err(
                    "InvalidAutomationStatusUpdateException",
                    format!(
                        "Automation execution {id} is {} and cannot be stopped.",
                        ex.status
                    ),
                )),
                Vec::new(),
            );
        }
        ex.cancel = Some(kind.clone());
        let mut ops = Vec::new();
        if kind == "Cancel" {
            ex.status = "Cancelling".into();
            ops.push(model::execution_event(ex));
        }
        if let Some(a) = ex.active.as_mut() {
            a.wake_at = Some(0.0);
        }
        (Ok(()), ops)
    })?;
    match r {
        None => return Err(model::not_found(id)),
        Some(Err(e)) => return Err(e),
        Some(Ok(())) => {}
    }
    if let Some(c) = ssm.automation().running.lock().get(&key) {
        c.notify.notify_one();
    }
    ssm.automation().wake.notify_one();
    Ok(json!({}))
}

fn signal(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let inner = ssm.inner();
    let id = s(input, "AutomationExecutionId").unwrap_or("");
    let kind = s(input, "SignalType").unwrap_or("");
    let key = scope.key(id);
    let ex = model::load(inner, scope, id)?;
    let bad = |m: String| err("InvalidAutomationSignalException", m);
    if ex.is_terminal() {
        return Err(bad(format!(
            "Automation execution {id} is {} and takes no signals.",
            ex.status
        )));
    }
    let Some(cur) = ex.current().cloned() else {
        return Err(bad(format!(
            "Automation execution {id} has no step waiting for a signal."
        )));
    };
    let waiting = cur.state.get("waiting").is_some();
    let who = scope.principal.clone();
    let ok_action = match kind {
        "Approve" | "Reject" => cur.action == "aws:approve",
        "Resume" => cur.action == "aws:pause",
        _ => {
            return Err(bad(format!(
                "Signal {kind} is only valid in Interactive mode, which opsloop does not run."
            )))
        }
    };
    if !ok_action || !waiting {
        return Err(bad(format!(
            "Signal {kind} is not valid for the current step {} ({}).",
            cur.name, cur.action
        )));
    }
    if cur.action == "aws:approve" {
        let (step, _, _) = engine::find_step(&ex.content, &cur.name).unwrap_or_default();
        let approvers = engine::resolve(
            inner,
            &ex,
            step.pointer("/inputs/Approvers").unwrap_or(&json!([])),
        )
        .unwrap_or(json!([]));
        let list: Vec<String> = match approvers {
            Value::Array(a) => a.iter().map(vars::as_text).collect(),
            other => vec![vars::as_text(&other)],
        };
        let key_id = ctx.access_key_id.clone().unwrap_or_default();
        let allowed = list.is_empty()
            || list.iter().any(|a| {
                a == &who
                    || a == &scope.account
                    || (!key_id.is_empty() && a == &key_id)
                    || (who.ends_with(":root")
                        && a.starts_with("arn:")
                        && a.contains(&format!(":{}:", scope.account)))
            });
        if !allowed {
            return Err(bad(format!(
                "{who} is not an approver of step {}.",
                cur.name
            )));
        }
    }
    let run = ex.active.as_ref().map(|a| a.run).unwrap_or(0);
    let kind_s = kind.to_string();
    engine::update(inner, &key, |ex| {
        if ex.active.as_ref().map(|a| a.run) != Some(run) {
            return ((), Vec::new());
        }
        let st = &mut ex.steps[run].state;
        match kind_s.as_str() {
            "Resume" => st["resumed"] = json!(true),
            "Approve" | "Reject" => {
                let field = if kind_s == "Approve" {
                    "approved"
                } else {
                    "rejected"
                };
                let mut list = st
                    .get(field)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !list.iter().any(|x| x.as_str() == Some(who.as_str())) || field == "rejected" {
                    list.push(json!(who));
                }
                st[field] = Value::Array(list);
            }
            _ => {}
        }
        if let Some(a) = ex.active.as_mut() {
            a.wake_at = Some(0.0);
        }
        ((), Vec::new())
    })?
    .ok_or_else(|| model::not_found(id))?;
    ssm.automation().wake.notify_one();
    Ok(json!({}))
}

fn filter_values(f: &Value) -> Vec<String> {
    f.get("Values")
        .and_then(Value::as_array)
        .map(|v| v.iter().map(vars::as_text).collect())
        .unwrap_or_default()
}

fn time_value(v: &str) -> Result<f64, ApiError> {
    vars::parse_timestamp(v)
        .or_else(|| v.parse::<f64>().ok())
        .ok_or_else(|| {
            err(
                "InvalidFilterValue",
                format!("The filter value {v} is not a valid time."),
            )
        })
}

fn describe(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let rows: Vec<(String, Execution)> = scan_rows(&*ssm.inner().store, TABLE, &scope.prefix())?;
    let mut items: Vec<Execution> = rows.into_iter().map(|(_, e)| e).collect();
    for f in crate::common::arr(input, "Filters") {
        let key = s(f, "Key").unwrap_or("");
        let values = filter_values(f);
        if values.is_empty() {
            return Err(err(
                "InvalidFilterValue",
                format!("The filter {key} needs at least one value."),
            ));
        }
        match key {
            "ExecutionStatus" => {
                for v in &values {
                    if ![
                        "Pending",
                        "InProgress",
                        "Waiting",
                        "Success",
                        "TimedOut",
                        "Cancelling",
                        "Cancelled",
                        "Failed",
                    ]
                    .contains(&v.as_str())
                    {
                        return Err(err(
                            "InvalidFilterValue",
                            format!("{v} is not a valid ExecutionStatus."),
                        ));
                    }
                }
            }
            "StartTimeBefore" | "StartTimeAfter" => {
                for v in &values {
                    time_value(v)?;
                }
            }
            _ => {}
        }
        items.retain(|e| {
            values.iter().any(|v| match key {
                "DocumentNamePrefix" => e.document_name.starts_with(v.as_str()),
                "ExecutionStatus" => &e.status == v,
                "ExecutionId" => &e.id == v,
                "ParentExecutionId" => e.parent.as_deref() == Some(v.as_str()),
                "CurrentAction" => e.current().is_some_and(|s| &s.action == v),
                "StartTimeBefore" => time_value(v).is_ok_and(|t| e.start < t),
                "StartTimeAfter" => time_value(v).is_ok_and(|t| e.start > t),
                "AutomationType" => v == "Local",
                "TagKey" => e.tags.iter().any(|(k, _)| k == v),
                _ => false,
            })
        });
    }
    items.sort_by(|a, b| b.start.total_cmp(&a.start).then(a.id.cmp(&b.id)));
    let (page_items, next) = page(items, s(input, "NextToken"), max_results(input, 50), |e| {
        e.id.clone()
    })?;
    let mut out = json!({"AutomationExecutionMetadataList": page_items.iter().map(model::metadata_doc).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn describe_steps(ssm: &Ssm, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "AutomationExecutionId").unwrap_or("");
    let ex = model::load(ssm.inner(), scope, id)?;
    let mut steps = ex.steps.clone();
    for f in crate::common::arr(input, "Filters") {
        let key = s(f, "Key").unwrap_or("");
        let values = filter_values(f);
        if values.is_empty() {
            return Err(err(
                "InvalidFilterValue",
                format!("The filter {key} needs at least one value."),
            ));
        }
        if key.starts_with("StartTime") {
            for v in &values {
                time_value(v)?;
            }
        }
        steps.retain(|st| {
            values.iter().any(|v| match key {
                "StepExecutionStatus" => &st.status == v,
                "StepExecutionId" => &st.id == v,
                "StepName" => &st.name == v,
                "Action" => &st.action == v,
                "StartTimeBefore" => time_value(v).is_ok_and(|t| st.start.unwrap_or(0.0) < t),
                "StartTimeAfter" => time_value(v).is_ok_and(|t| st.start.unwrap_or(0.0) > t),
                "ParentStepExecutionId" => st.parent.as_ref().is_some_and(|p| &p.0 == v),
                "ParentStepIteration" => st.parent.as_ref().is_some_and(|p| &p.1.to_string() == v),
                "ParentStepIteratorValue" => st
                    .parent
                    .as_ref()
                    .and_then(|p| p.2.as_ref())
                    .is_some_and(|x| &vars::as_text(x) == v),
                _ => false,
            })
        });
    }
    if crate::common::b(input, "ReverseOrder") {
        steps.reverse();
    }
    let (page_items, next) = page(steps, s(input, "NextToken"), max_results(input, 50), |s| {
        s.id.clone()
    })?;
    let mut out =
        json!({"StepExecutions": page_items.iter().map(model::step_doc).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// Rows in `ACTIVE` (for tests and diagnostics).
pub fn active_count(ssm: &Ssm) -> usize {
    ssm.inner()
        .store
        .scan(ACTIVE, "", None, 10_000)
        .map(|r| r.len())
        .unwrap_or(0)
}
