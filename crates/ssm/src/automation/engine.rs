//! The executor: a background scanner picks executions whose `ssm.automation_active` row is due and
//! runs each in its own task, one step after another, until it finishes or has to wait (sleep, poll,
//! approval, pause, child execution, command). Every step transition is one atomic batch (execution
//! row + active index + status-change events), so a restart carries on from the last transition:
//! waiting steps keep their timers and signals; a step whose action was running when the server
//! died is run again (an attempt of the same step execution — the action's work may repeat).
//! Step controls live here: onFailure (Abort / Continue / step:NAME), onCancel, maxAttempts,
//! timeoutSeconds, isCritical, isEnd, nextStep, outputs and `aws:loop` iterations.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use opsloop_core::Value;
use serde_json::json;

use super::actions::{self, Outcome};
use super::model::{self, Active, Execution, LoopFrame, StepRun};
use super::vars;
use crate::common::{get_row, now, random_hex};
use crate::error::InternalError;
use crate::{Inner, Ssm};

/// Cancellation of a running execution's current action.
#[derive(Default)]
pub struct Cancel {
    pub flag: AtomicBool,
    pub notify: tokio::sync::Notify,
}

/// Scan period when nothing wakes the scanner.
const SCAN: Duration = Duration::from_millis(200);

/// The scanner loop (started by `automation::start`).
pub async fn scanner(ssm: Weak<Ssm>) {
    loop {
        let Some(s) = ssm.upgrade() else { return };
        let wake = s.automation().wake.clone();
        if s.automation().stopping.load(Ordering::SeqCst) {
            return;
        }
        let due = due_keys(s.inner());
        for key in due {
            let cancel = {
                let mut running = s.automation().running.lock();
                if running.contains_key(&key) {
                    continue;
                }
                let c = Arc::new(Cancel::default());
                running.insert(key.clone(), c.clone());
                c
            };
            let s2 = s.clone();
            tokio::spawn(async move {
                let k = key.clone();
                if let Err(e) = run(&s2, &key, &cancel).await {
                    tracing::error!(execution = %k, error = %e, "automation executor failed");
                }
                s2.automation().running.lock().remove(&k);
            });
        }
        drop(s);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(SCAN) => {}
        }
    }
}

fn due_keys(inner: &Inner) -> Vec<String> {
    let t = now();
    let rows = match crate::common::scan_rows::<Value>(&*inner.store, model::ACTIVE, "") {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "automation active scan failed");
            return Vec::new();
        }
    };
    rows.into_iter()
        .filter(|(_, v)| v.get("due").and_then(Value::as_f64).is_some_and(|d| d <= t))
        .map(|(k, _)| k)
        .collect()
}

fn load_key(inner: &Inner, key: &str) -> Result<Option<Execution>, InternalError> {
    get_row(&*inner.store, model::TABLE, key)
}

/// Read-modify-write of execution `key` under the module lock; `f` returns the events to queue.
pub fn update<T>(
    inner: &Inner,
    key: &str,
    f: impl FnOnce(&mut Execution) -> (T, Vec<opsloop_store::WriteOp>),
) -> Result<Option<T>, opsloop_core::ApiError> {
    let _g = inner.lock.lock();
    let Some(mut ex) = load_key(inner, key)? else {
        return Ok(None);
    };
    let (out, events) = f(&mut ex);
    inner.commit(model::save_ops(&ex, events))?;
    Ok(Some(out))
}

/// Where a step is defined: the step, the list holding it and the `aws:loop` owning that list.
pub fn find_step(content: &Value, name: &str) -> Option<(Value, Vec<Value>, Option<String>)> {
    fn walk(
        list: &[Value],
        owner: Option<&str>,
        name: &str,
    ) -> Option<(Value, Vec<Value>, Option<String>)> {
        for s in list {
            if s.get("name").and_then(Value::as_str) == Some(name) {
                return Some((s.clone(), list.to_vec(), owner.map(str::to_string)));
            }
            if let Some(inner) = s.pointer("/inputs/Steps").and_then(Value::as_array) {
                let me = s.get("name").and_then(Value::as_str);
                if let Some(found) = walk(inner, me, name) {
                    return Some(found);
                }
            }
        }
        None
    }
    walk(content.get("mainSteps")?.as_array()?, None, name)
}

/// The step after `name` in its list; at the end of a loop body, the loop itself (next iteration).
pub fn natural_next(content: &Value, name: &str) -> Option<String> {
    let (_, list, owner) = find_step(content, name)?;
    let pos = list
        .iter()
        .position(|s| s.get("name").and_then(Value::as_str) == Some(name))?;
    match list.get(pos + 1) {
        Some(s) => s.get("name").and_then(Value::as_str).map(str::to_string),
        None => owner,
    }
}

fn new_run(step: &Value, parent: Option<(String, u64, Option<Value>)>) -> StepRun {
    let g = |k: &str| step.get(k);
    let action = g("action")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let default_timeout = None;
    StepRun {
        id: uuid::Uuid::new_v4().to_string(),
        name: g("name").and_then(Value::as_str).unwrap_or("").to_string(),
        status: "InProgress".into(),
        start: Some(now()),
        attempt: 1,
        max_attempts: g("maxAttempts").and_then(Value::as_u64).unwrap_or(1).max(1) as u32,
        on_failure: g("onFailure")
            .and_then(Value::as_str)
            .unwrap_or("Abort")
            .to_string(),
        on_cancel: g("onCancel").and_then(Value::as_str).map(str::to_string),
        timeout: g("timeoutSeconds")
            .and_then(Value::as_u64)
            .or(default_timeout),
        is_critical: g("isCritical").and_then(Value::as_bool).unwrap_or(true),
        is_end: g("isEnd").and_then(Value::as_bool).unwrap_or(false),
        next_step: g("nextStep").and_then(Value::as_str).map(str::to_string),
        parent,
        action,
        state: json!({}),
        ..StepRun::default()
    }
}

/// End the execution with `status`; loops still open take the same end.
fn finish(
    ex: &mut Execution,
    status: &str,
    message: Option<String>,
) -> Vec<opsloop_store::WriteOp> {
    let t = now();
    let mut events = Vec::new();
    for frame in std::mem::take(&mut ex.loops) {
        if let Some(s) = ex.steps.get_mut(frame.run) {
            if s.end.is_none() {
                s.status = if status == "Success" {
                    "Success"
                } else {
                    status
                }
                .to_string();
                s.end = Some(t);
                events.push(frame.run);
            }
        }
    }
    ex.status = status.into();
    ex.end = Some(t);
    ex.failure_message = message;
    ex.active = None;
    ex.next = None;
    let content = ex.content.clone();
    let mut outputs = BTreeMap::new();
    for o in content
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = o.as_str() {
            if let Some(v) = ex.vars.get(name) {
                outputs.insert(name.to_string(), vars::wire_output(v));
            }
        }
    }
    ex.outputs = outputs;
    let mut ops: Vec<_> = events
        .into_iter()
        .map(|r| model::step_event(ex, r))
        .collect();
    ops.push(model::execution_event(ex));
    ops
}

fn set_status(ex: &mut Execution, status: &str, ops: &mut Vec<opsloop_store::WriteOp>) {
    if ex.status != status {
        ex.status = status.into();
        ops.push(model::execution_event(ex));
    }
}

/// What the runner does next, decided under the lock (short-lived; never stored).
#[allow(clippy::large_enum_variant)]
enum Plan {
    Stop,
    Act {
        run: usize,
        step: Value,
        inputs: Value,
        state: Value,
    },
}

/// Advance execution `key` until it ends or waits.
pub async fn run(
    ssm: &Arc<Ssm>,
    key: &str,
    cancel: &Arc<Cancel>,
) -> Result<(), opsloop_core::ApiError> {
    let inner = ssm.inner();
    // Each update both records the previous outcome and starts the next step: one batch per step.
    let mut plan = update(inner, key, |ex| {
        let mut ops = Vec::new();
        let plan = decide(inner, ex, &mut ops);
        ((plan, ex.clone()), ops)
    })?;
    loop {
        if ssm.automation().stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some((
            Plan::Act {
                run,
                step,
                inputs,
                state,
            },
            ex,
        )) = plan
        else {
            return Ok(());
        };
        if run == usize::MAX {
            plan = update(inner, key, |ex| {
                let mut ops = Vec::new();
                let plan = decide(inner, ex, &mut ops);
                ((plan, ex.clone()), ops)
            })?;
            continue;
        }
        let timeout = ex.steps[run].timeout;
        let started = ex.steps[run].start.unwrap_or_else(now);
        let ctx = actions::Ctx {
            ssm: ssm.clone(),
            ex: &ex,
            run,
            step: &step,
            state,
            cancel: cancel.clone(),
        };
        let fut = actions::run(&ctx, inputs);
        let outcome = tokio::select! {
            o = async {
                match timeout {
                    Some(t) => {
                        let left = (started + t as f64 - now()).max(0.0);
                        match tokio::time::timeout(Duration::from_secs_f64(left), fut).await {
                            Ok(o) => o,
                            Err(_) => Outcome::fail_kind("TimedOut", format!("Step timed out after {t} seconds.")),
                        }
                    }
                    None => fut.await,
                }
            } => o,
            _ = cancel.notify.notified() => Outcome::Cancelled,
        };
        if ssm.automation().stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        plan = update(inner, key, |ex| {
            let mut ops = Vec::new();
            let plan = if apply(ex, run, outcome, &mut ops) {
                decide(inner, ex, &mut ops)
            } else {
                Plan::Stop
            };
            ((plan, ex.clone()), ops)
        })?;
    }
}

/// Decide the next action of `ex`: start the next step, poll the active one, or stop.
fn decide(inner: &Inner, ex: &mut Execution, ops: &mut Vec<opsloop_store::WriteOp>) -> Plan {
    if ex.is_terminal() {
        return Plan::Stop;
    }
    if let Some(kind) = ex.cancel.clone() {
        if ex.status != "Cancelling"
            || ex.active.is_some()
                && ex
                    .current()
                    .is_some_and(|s| s.state.get("cancel_target").is_none())
        {
            // Cancel the current step; follow its onCancel step:NAME once.
            let mut goto = None;
            if let Some(a) = ex.active.take() {
                let s = &mut ex.steps[a.run];
                if s.end.is_none() {
                    s.status = "Cancelled".into();
                    s.end = Some(now());
                    if kind == "Cancel" {
                        goto = s
                            .on_cancel
                            .as_deref()
                            .and_then(|c| c.strip_prefix("step:"))
                            .map(str::to_string);
                    }
                    ops.push(model::step_event(ex, a.run));
                }
            }
            if let Some(target) = goto {
                ex.next = Some(target);
                ex.loops.clear();
                set_status(ex, "Cancelling", ops);
            } else {
                let st = if kind == "Complete" && !ex.critical_failed {
                    "Success"
                } else {
                    "Cancelled"
                };
                ops.extend(finish(ex, st, None));
                return Plan::Stop;
            }
        } else if ex.active.is_none() && ex.next.is_none() {
            ops.extend(finish(ex, "Cancelled", None));
            return Plan::Stop;
        }
    }
    if ex.active.is_none() {
        let Some(name) = ex.next.take() else {
            let (st, msg) = if ex.cancel.is_some() {
                ("Cancelled", None)
            } else if ex.critical_failed {
                ("Failed", ex.failure_message.clone())
            } else {
                ("Success", None)
            };
            ops.extend(finish(ex, st, msg));
            return Plan::Stop;
        };
        let Some((step, _, _)) = find_step(&ex.content, &name) else {
            ops.extend(finish(
                ex,
                "Failed",
                Some(format!("Step {name} does not exist.")),
            ));
            return Plan::Stop;
        };
        let action = step.get("action").and_then(Value::as_str).unwrap_or("");
        // Back at a loop that is running: next iteration (or the end of the loop).
        if action == "aws:loop" && ex.loops.last().is_some_and(|f| f.step == name) {
            return loop_continue(inner, ex, &step, ops);
        }
        let parent = ex.loops.last().map(|f| {
            let v = f
                .items
                .as_ref()
                .and_then(|i| i.get(f.iteration as usize).cloned());
            (ex.steps[f.run].id.clone(), f.iteration + 1, v)
        });
        ex.steps.push(new_run(&step, parent));
        let run = ex.steps.len() - 1;
        ex.active = Some(Active {
            run,
            wake_at: Some(0.0),
        });
        set_status(ex, "InProgress", ops);
        ops.push(model::step_event(ex, run));
        if action == "aws:loop" {
            let items = match step.pointer("/inputs/Iterators") {
                Some(it) => match resolve(inner, ex, it) {
                    Ok(Value::Array(items)) => Some(items),
                    Ok(other) => Some(vec![other]),
                    Err(m) => return fail_now(ex, run, m, ops),
                },
                None => None,
            };
            ex.loops.push(LoopFrame {
                step: name.clone(),
                run,
                iteration: 0,
                items,
            });
            ex.active = None;
            return start_iteration(ex, &step, ops);
        }
    }
    let a = ex.active.clone().expect("active step");
    if a.wake_at.is_some_and(|w| w > now()) {
        return Plan::Stop;
    }
    let s = ex.steps[a.run].clone();
    let Some((step, _, _)) = find_step(&ex.content, &s.name) else {
        return Plan::Stop;
    };
    if let Some(t) = s.timeout {
        if now() > s.start.unwrap_or(0.0) + t as f64 && s.state.get("waiting").is_some() {
            apply(
                ex,
                a.run,
                Outcome::fail_kind("TimedOut", format!("Step timed out after {t} seconds.")),
                ops,
            );
            return Plan::Stop;
        }
    }
    let raw_inputs = step.get("inputs").cloned().unwrap_or(json!({}));
    let inputs = if s.action == "aws:branch" {
        // Branch choices resolve lazily (a variable may be unset on an unused path).
        raw_inputs
    } else {
        match resolve(inner, ex, &raw_inputs) {
            Ok(v) => v,
            Err(m) => return fail_now(ex, a.run, m, ops),
        }
    };
    if ex.steps[a.run].inputs.is_empty() {
        if let Some(o) = inputs.as_object() {
            ex.steps[a.run].inputs = o
                .iter()
                .filter(|(k, _)| k.as_str() != "Steps")
                .map(|(k, v)| (k.clone(), vars::as_text(v)))
                .collect();
        }
    }
    Plan::Act {
        run: a.run,
        step,
        inputs,
        state: s.state.clone(),
    }
}

fn fail_now(
    ex: &mut Execution,
    run: usize,
    msg: String,
    ops: &mut Vec<opsloop_store::WriteOp>,
) -> Plan {
    ex.steps[run].max_attempts = 1;
    if apply(ex, run, Outcome::fail(msg), ops) {
        // The runner loops again and picks the next step.
        return Plan::Stop.or_continue();
    }
    Plan::Stop
}

/// Resolve `{{ }}` references with the execution's variables and Parameter Store.
pub fn resolve(inner: &Inner, ex: &Execution, v: &Value) -> Result<Value, String> {
    let scope = ex.scope();
    let ssm = |name: &str| -> Result<String, String> {
        let (n, sel) = match name.rsplit_once(':') {
            Some((n, s)) if !n.is_empty() && !s.contains('/') => (n, Some(s)),
            _ => (name, None),
        };
        let p = crate::params::lookup(inner, &scope, n)
            .map_err(|e| e.message)?
            .ok_or_else(|| format!("Parameter {n} not found."))?;
        let v = crate::params::select(&p, sel).map_err(|e| e.message)?;
        crate::params::read_value(inner, &p.name, v, true).map_err(|e| e.message)
    };
    vars::resolve(v, &ex.vars, &ssm)
}

fn start_iteration(
    ex: &mut Execution,
    step: &Value,
    ops: &mut Vec<opsloop_store::WriteOp>,
) -> Plan {
    let frame = ex.loops.last().expect("loop frame").clone();
    let name = frame.step.clone();
    let max = step
        .pointer("/inputs/MaxIterations")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .min(100);
    let more = match &frame.items {
        Some(items) => (frame.iteration as usize) < items.len() && frame.iteration < max,
        None => frame.iteration < max,
    };
    if !more {
        return end_loop(ex, step, ops);
    }
    ex.vars.insert(
        format!("{name}.CurrentIteration"),
        json!(frame.iteration + 1),
    );
    if let Some(v) = frame
        .items
        .as_ref()
        .and_then(|i| i.get(frame.iteration as usize))
    {
        ex.vars
            .insert(format!("{name}.CurrentIteratorValue"), v.clone());
    }
    let first = step
        .pointer("/inputs/Steps/0/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    ex.next = first;
    ex.active = None;
    Plan::Stop.or_continue()
}

impl Plan {
    /// A plan that makes the runner loop again at once (the transition is saved first).
    fn or_continue(self) -> Plan {
        Plan::Act {
            run: usize::MAX,
            step: Value::Null,
            inputs: Value::Null,
            state: Value::Null,
        }
    }
}

fn loop_continue(
    inner: &Inner,
    ex: &mut Execution,
    step: &Value,
    ops: &mut Vec<opsloop_store::WriteOp>,
) -> Plan {
    if let Some(cond) = step.pointer("/inputs/LoopCondition") {
        let keep = match resolve(inner, ex, cond).and_then(|c| vars::choice_matches(&c)) {
            Ok(b) => b,
            Err(m) => {
                let run = ex.loops.last().map(|f| f.run).unwrap_or(0);
                ex.loops.pop();
                return fail_now(ex, run, m, ops);
            }
        };
        if !keep {
            return end_loop(ex, step, ops);
        }
    }
    if let Some(f) = ex.loops.last_mut() {
        f.iteration += 1;
    }
    start_iteration(ex, step, ops)
}

fn end_loop(ex: &mut Execution, step: &Value, ops: &mut Vec<opsloop_store::WriteOp>) -> Plan {
    let frame = ex.loops.pop().expect("loop frame");
    let name = frame.step.clone();
    let run = frame.run;
    let mut outputs = BTreeMap::new();
    outputs.insert(
        "CurrentIteration".to_string(),
        vec![frame.iteration.to_string()],
    );
    ex.vars
        .insert(format!("{name}.CurrentIteration"), json!(frame.iteration));
    if let Some(v) = ex.vars.get(&format!("{name}.CurrentIteratorValue")) {
        outputs.insert("CurrentIteratorValue".to_string(), vars::wire_output(v));
    }
    let s = &mut ex.steps[run];
    s.status = "Success".into();
    s.end = Some(now());
    s.outputs = outputs;
    ops.push(model::step_event(ex, run));
    let s = &ex.steps[run];
    ex.next = if s.is_end {
        None
    } else {
        s.next_step
            .clone()
            .or_else(|| natural_next(&ex.content, &name))
    };
    let _ = step;
    Plan::Stop.or_continue()
}

/// Apply an action's outcome to step `run`; true when the runner should go on at once.
pub fn apply(
    ex: &mut Execution,
    run: usize,
    outcome: Outcome,
    ops: &mut Vec<opsloop_store::WriteOp>,
) -> bool {
    if run == usize::MAX {
        return true;
    }
    if ex.is_terminal() || ex.active.as_ref().map(|a| a.run) != Some(run) {
        return ex.cancel.is_some() && !ex.is_terminal();
    }
    let t = now();
    match outcome {
        Outcome::Wait {
            wake_at,
            status,
            state,
        } => {
            let s = &mut ex.steps[run];
            s.state = state;
            s.state["waiting"] = json!(true);
            let changed = s.status != status;
            s.status = status.to_string();
            if changed {
                ops.push(model::step_event(ex, run));
            }
            let exec_status = if status == "Waiting" {
                "Waiting"
            } else {
                "InProgress"
            };
            set_status(ex, exec_status, ops);
            ex.active = Some(Active {
                run,
                wake_at: Some(wake_at.unwrap_or(f64::MAX)),
            });
            if wake_at.is_none() {
                ex.active.as_mut().expect("active").wake_at = None;
            }
            false
        }
        // Cancelled by StopAutomationExecution (decide() records it), or a stale wake-up: go on.
        Outcome::Cancelled => true,
        Outcome::Done {
            payload,
            response,
            extra,
            goto,
        } => {
            let content = ex.content.clone();
            let name = ex.steps[run].name.clone();
            let (step, _, _) = find_step(&content, &name).unwrap_or_default();
            let mut outputs = extra;
            for o in step
                .get("outputs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(oname), Some(sel)) = (
                    o.get("Name").and_then(Value::as_str),
                    o.get("Selector").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let ty = o.get("Type").and_then(Value::as_str).unwrap_or("String");
                let Some(v) = vars::select(&payload, sel) else {
                    continue;
                };
                match vars::convert(v, ty) {
                    Ok(v) => {
                        outputs.insert(oname.to_string(), vars::wire_output(&v));
                        ex.vars.insert(format!("{name}.{oname}"), v);
                    }
                    Err(m) => {
                        return apply(ex, run, Outcome::fail(m), ops);
                    }
                }
            }
            for (k, v) in &outputs {
                ex.vars
                    .entry(format!("{name}.{k}"))
                    .or_insert_with(|| match v.as_slice() {
                        [one] => json!(one),
                        many => json!(many),
                    });
            }
            let s = &mut ex.steps[run];
            s.status = "Success".into();
            s.end = Some(t);
            s.outputs = outputs;
            s.response = response;
            if let Value::Object(st) = &mut s.state {
                st.remove("waiting");
            }
            ops.push(model::step_event(ex, run));
            let s = &ex.steps[run];
            ex.active = None;
            ex.next = if s.is_end {
                ex.loops.clear();
                None
            } else {
                goto.or_else(|| s.next_step.clone())
                    .or_else(|| natural_next(&content, &name))
            };
            if ex.cancel.is_none() {
                set_status(ex, "InProgress", ops);
            }
            true
        }
        Outcome::Fail { message, kind } => {
            let s = &mut ex.steps[run];
            if s.attempt < s.max_attempts && kind != "TimedOut" {
                s.attempt += 1;
                s.state = json!({});
                ex.active = Some(Active {
                    run,
                    wake_at: Some(0.0),
                });
                return true;
            }
            let status = if kind == "TimedOut" {
                "TimedOut"
            } else {
                "Failed"
            };
            s.status = status.into();
            s.end = Some(t);
            s.failure_type = Some(if kind == "TimedOut" {
                "Timeout".into()
            } else {
                "Verification".into()
            });
            s.failure_message = Some(message.clone());
            let (name, on_failure, critical, is_end) = (
                s.name.clone(),
                s.on_failure.clone(),
                s.is_critical,
                s.is_end,
            );
            ops.push(model::step_event(ex, run));
            ex.active = None;
            let msg = format!(
                "Step fails when it is Executing. {message}. Please refer to Automation Service Troubleshooting Guide for more diagnosis details."
            );
            if critical {
                ex.critical_failed = true;
                ex.failure_message = Some(msg.clone());
            }
            match on_failure.as_str() {
                "Continue" if !is_end => {
                    ex.next = natural_next(&ex.content, &name);
                    true
                }
                f if f.starts_with("step:") && !is_end => {
                    ex.next = Some(f["step:".len()..].to_string());
                    true
                }
                "Continue" => {
                    ex.next = None;
                    true
                }
                _ => {
                    let st = if status == "TimedOut" {
                        "TimedOut"
                    } else {
                        "Failed"
                    };
                    ops.extend(finish(ex, st, Some(msg)));
                    false
                }
            }
        }
    }
}

/// An execution id as AWS makes them (36 characters).
pub fn new_id() -> String {
    let _ = random_hex;
    uuid::Uuid::new_v4().to_string()
}
