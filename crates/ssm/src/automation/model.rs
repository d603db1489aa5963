//! The durable state of Automation: one `Execution` row per execution (`ssm.automation`, key
//! `<account>/<region>/<execution id>`) holding the runbook content it runs, its resolved variables,
//! every step execution and where it is; the `ssm.automation_active` index (the executions the
//! background executor still has to advance, with the time they are next due); the wire shapes of
//! `AutomationExecution`, `AutomationExecutionMetadata` and `StepExecution`; and the EventBridge
//! status-change events written to the crate's outbox in the same batch as the change.

use std::collections::BTreeMap;

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bus;
use crate::common::{get_row, now, to_bytes, Scope};
use crate::error::err;
use crate::Inner;

pub const TABLE: &str = "ssm.automation";
pub const ACTIVE: &str = "ssm.automation_active";
pub const TOKENS: &str = "ssm.automation_tokens";

/// Execution statuses after which nothing more happens.
pub const TERMINAL: &[&str] = &["Success", "Failed", "Cancelled", "TimedOut", "Rejected"];

/// One loop the cursor is inside: the `aws:loop` step, its step-execution index and iteration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoopFrame {
    pub step: String,
    pub run: usize,
    pub iteration: u64,
    #[serde(default)]
    pub items: Option<Vec<Value>>,
}

/// A step that is running or waiting; `run` indexes `Execution::steps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Active {
    pub run: usize,
    /// Due time of the next check: 0 for a step that runs now (a restart runs it again), the
    /// sleep end or poll time, or None while it waits for a signal (approve, pause).
    #[serde(default)]
    pub wake_at: Option<f64>,
}

/// One step execution.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StepRun {
    pub id: String,
    pub name: String,
    pub action: String,
    pub status: String,
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub failure_message: Option<String>,
    #[serde(default)]
    pub failure_type: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub attempt: u32,
    pub max_attempts: u32,
    pub on_failure: String,
    #[serde(default)]
    pub on_cancel: Option<String>,
    #[serde(default)]
    pub timeout: Option<u64>,
    pub is_critical: bool,
    pub is_end: bool,
    #[serde(default)]
    pub next_step: Option<String>,
    #[serde(default)]
    pub valid_next: Vec<String>,
    /// Loop context of an inner step: (loop step-execution id, iteration, iterator value).
    #[serde(default)]
    pub parent: Option<(String, u64, Option<Value>)>,
    /// Action state kept across polls and restarts (approvals, child ids, resumed flag…).
    #[serde(default)]
    pub state: Value,
}

/// One automation execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub account: String,
    pub region: String,
    pub document_name: String,
    pub document_version: String,
    pub content: Value,
    pub mode: String,
    pub executed_by: String,
    pub status: String,
    pub start: f64,
    #[serde(default)]
    pub end: Option<f64>,
    #[serde(default)]
    pub failure_message: Option<String>,
    /// The parameters as the caller gave them plus defaults (the wire's map of lists).
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Typed values of parameters, step outputs (`Step.Name`) and built-ins.
    pub vars: BTreeMap<String, Value>,
    pub steps: Vec<StepRun>,
    /// The next step to start (None with no `active`: the runbook is over).
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub active: Option<Active>,
    #[serde(default)]
    pub loops: Vec<LoopFrame>,
    #[serde(default)]
    pub critical_failed: bool,
    #[serde(default)]
    pub cancel: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<String>>,
}

impl Execution {
    pub fn scope(&self) -> Scope {
        Scope::new(&self.account, &self.region)
    }
    pub fn key(&self) -> String {
        self.scope().key(&self.id)
    }
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status.as_str())
    }
    pub fn current(&self) -> Option<&StepRun> {
        self.active.as_ref().and_then(|a| self.steps.get(a.run))
    }
}

/// The execution row `id` of `scope`.
pub fn load(inner: &Inner, scope: &Scope, id: &str) -> Result<Execution, ApiError> {
    get_row(&*inner.store, TABLE, &scope.key(id))?.ok_or_else(|| not_found(id))
}

pub fn not_found(id: &str) -> ApiError {
    err(
        "AutomationExecutionNotFoundException",
        format!("Automation Execution {id} not found"),
    )
}

/// The writes persisting `ex` (row, active index and `events`).
pub fn save_ops(ex: &Execution, events: Vec<WriteOp>) -> Vec<WriteOp> {
    let mut ops = vec![WriteOp::Put {
        table: TABLE.into(),
        key: ex.key(),
        value: to_bytes(ex),
    }];
    if ex.is_terminal() {
        ops.push(WriteOp::Delete {
            table: ACTIVE.into(),
            key: ex.key(),
        });
    } else {
        let due = match &ex.active {
            Some(a) => a.wake_at,
            None => Some(0.0),
        };
        ops.push(WriteOp::Put {
            table: ACTIVE.into(),
            key: ex.key(),
            value: to_bytes(&json!({ "due": due })),
        });
    }
    ops.extend(events);
    ops
}

fn duration_ms(start: Option<f64>, end: Option<f64>) -> f64 {
    match (start, end) {
        (Some(s), Some(e)) => ((e - s) * 1000.0).max(0.0).round(),
        _ => 0.0,
    }
}

fn iso(t: Option<f64>) -> Value {
    match t {
        Some(t) => {
            let dt = time::OffsetDateTime::from_unix_timestamp_nanos((t * 1e9) as i128)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            json!(dt
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default())
        }
        None => Value::Null,
    }
}

/// "EC2 Automation Execution Status-change Notification" for `ex`'s current status.
pub fn execution_event(ex: &Execution) -> WriteOp {
    let end = ex.end.or(Some(now()));
    bus::op(
        &ex.scope(),
        "EC2 Automation Execution Status-change Notification",
        vec![automation_arn(ex)],
        json!({
            "ExecutionId": ex.id,
            "Definition": ex.document_name,
            "DefinitionVersion": ex.document_version.parse::<f64>().unwrap_or(1.0),
            "Status": ex.status,
            "StartTime": iso(Some(ex.start)),
            "EndTime": iso(ex.end),
            "Time": duration_ms(Some(ex.start), end),
            "ExecutedBy": ex.executed_by,
        }),
    )
}

/// "EC2 Automation Step Status-change Notification" for step `run` of `ex`.
pub fn step_event(ex: &Execution, run: usize) -> WriteOp {
    let s = &ex.steps[run];
    bus::op(
        &ex.scope(),
        "EC2 Automation Step Status-change Notification",
        vec![automation_arn(ex)],
        json!({
            "ExecutionId": ex.id,
            "Definition": ex.document_name,
            "DefinitionVersion": ex.document_version.parse::<f64>().unwrap_or(1.0),
            "Status": s.status,
            "StartTime": iso(s.start),
            "EndTime": iso(s.end),
            "Time": duration_ms(s.start, s.end.or(Some(now()))),
            "StepName": s.name,
            "Action": s.action,
        }),
    )
}

fn automation_arn(ex: &Execution) -> String {
    format!(
        "arn:aws:ssm:{}:{}:automation-execution/{}",
        ex.region, ex.account, ex.id
    )
}

/// The `StepExecution` shape.
pub fn step_doc(s: &StepRun) -> Value {
    let mut d = json!({
        "StepName": s.name,
        "Action": s.action,
        "StepExecutionId": s.id,
        "StepStatus": s.status,
        "Inputs": s.inputs,
        "Outputs": s.outputs,
        "MaxAttempts": s.max_attempts,
        "OnFailure": s.on_failure,
        "IsCritical": s.is_critical,
        "IsEnd": s.is_end,
        "ValidNextSteps": s.valid_next,
    });
    let o = d.as_object_mut().expect("object");
    if let Some(t) = s.start {
        o.insert("ExecutionStartTime".into(), json!(t));
    }
    if let Some(t) = s.end {
        o.insert("ExecutionEndTime".into(), json!(t));
    }
    if let Some(t) = s.timeout {
        o.insert("TimeoutSeconds".into(), json!(t));
    }
    if let Some(n) = &s.next_step {
        o.insert("NextStep".into(), json!(n));
    }
    if let Some(r) = &s.response {
        o.insert("Response".into(), json!(r));
    }
    if let Some(m) = &s.failure_message {
        o.insert("FailureMessage".into(), json!(m));
        o.insert(
            "FailureDetails".into(),
            json!({
                "FailureStage": "Execution",
                "FailureType": s.failure_type.clone().unwrap_or_else(|| "Verification".into()),
                "Details": {"ExceptionMessage": [m]},
            }),
        );
    }
    if let Some((parent, iteration, value)) = &s.parent {
        let mut p = json!({"ParentStepExecutionId": parent, "Iteration": iteration});
        if let Some(v) = value {
            p["IteratorValue"] = json!(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        o.insert("ParentStepDetails".into(), p);
    }
    d
}

fn common_doc(ex: &Execution) -> Value {
    let mut d = json!({
        "AutomationExecutionId": ex.id,
        "DocumentName": ex.document_name,
        "DocumentVersion": ex.document_version,
        "AutomationExecutionStatus": ex.status,
        "ExecutionStartTime": ex.start,
        "ExecutedBy": ex.executed_by,
        "Mode": ex.mode,
        "Outputs": ex.outputs,
        "Targets": [],
        "ResolvedTargets": {"ParameterValues": [], "Truncated": false},
    });
    let o = d.as_object_mut().expect("object");
    if let Some(t) = ex.end {
        o.insert("ExecutionEndTime".into(), json!(t));
    }
    if let Some(m) = &ex.failure_message {
        o.insert("FailureMessage".into(), json!(m));
    }
    if let Some(p) = &ex.parent {
        o.insert("ParentAutomationExecutionId".into(), json!(p));
    }
    if let Some(s) = ex.current() {
        o.insert("CurrentStepName".into(), json!(s.name));
        o.insert("CurrentAction".into(), json!(s.action));
    }
    d
}

/// The `AutomationExecution` shape (GetAutomationExecution).
pub fn execution_doc(ex: &Execution) -> Value {
    let mut d = common_doc(ex);
    let count = |st: &str| ex.steps.iter().filter(|s| s.status == st).count();
    let o = d.as_object_mut().expect("object");
    o.insert("Parameters".into(), json!(ex.parameters));
    o.insert(
        "StepExecutions".into(),
        Value::Array(ex.steps.iter().map(step_doc).collect()),
    );
    o.insert("StepExecutionsTruncated".into(), json!(false));
    o.insert(
        "ProgressCounters".into(),
        json!({
            "TotalSteps": ex.steps.len(),
            "SuccessSteps": count("Success"),
            "FailedSteps": count("Failed"),
            "CancelledSteps": count("Cancelled"),
            "TimedOutSteps": count("TimedOut"),
        }),
    );
    d
}

/// The `AutomationExecutionMetadata` shape (DescribeAutomationExecutions).
pub fn metadata_doc(ex: &Execution) -> Value {
    let mut d = common_doc(ex);
    d["AutomationType"] = json!("Local");
    d
}
