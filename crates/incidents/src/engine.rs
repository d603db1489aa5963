//! The response engine: durable jobs (start a runbook, engage a contact, post to chat), run by the
//! background loop when due, and the watch over open incidents (runbook status, related alarm
//! states, auto-resolve). Each step's outcome — the job's removal, timeline events, the record and
//! any follow-up chat posts — is written in one batch, so a restart neither loses nor repeats a
//! step; peer calls carry the job id as their idempotency token where the peer takes one.
//!
//! **Chat and notification posts are at least once.** SNS `Publish` takes no idempotency token
//! for standard topics, so a post is repeated only if the process dies after SNS accepted it and
//! before the job's removal commits (one control-store commit wide); a failed publication is
//! tried up to `PUBLISH_ATTEMPTS` (5) times with backoff, then dropped with a warning. SNS's own
//! delivery to a webhook is at least once as well.
//!
//! **The watch polls.** Alarm states, runbook statuses and page receipts of open incidents are
//! read from their services (`DescribeAlarms`, `GetAutomationExecution`, `ListPagesByEngagement`)
//! once per watch pass (every second, see `lib.rs`), so a change reaches the timeline, the chat
//! and auto-resolve within about a second; the cost is a few peer calls per open incident per
//! second.

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::plans::get_plan;
use crate::records::{set_status, Record};
use crate::timeline::event_op;
use crate::util::{del, now, put, seq, uuid, Db, T_JOB, T_RECORD};
use crate::Inner;

/// What a job does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum JobKind {
    /// Start the response plan's `actions[index]` runbook.
    Automation { index: usize },
    /// Engage a contact (after the plan's engagement delay).
    Engage { contact: String, delay_minutes: f64 },
    /// Publish a readable update to an SNS topic (chat channel or notification target).
    Publish {
        topic: String,
        subject: String,
        message: String,
        attempt: u32,
    },
}

/// A durable job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub record: String,
    pub account: String,
    pub region: String,
    pub kind: JobKind,
}

/// Attempts at one SNS publication before it is given up.
const PUBLISH_ATTEMPTS: u32 = 5;

fn job_key(due: f64) -> String {
    format!("{:016}|{}", (due.max(0.0) * 1000.0) as u64, seq())
}

/// The write of a new job for `rec`, due at `due` (epoch seconds).
pub fn job_op(rec: &Record, due: f64, kind: JobKind) -> WriteOp {
    let job = Job {
        id: uuid(),
        record: rec.arn.clone(),
        account: rec.account.clone(),
        region: rec.region.clone(),
        kind,
    };
    put(T_JOB, &job_key(due), &job)
}

/// Chat posts of an update (`what`: opened, runbook, engaged, resolved …) to the chat channel's
/// topics, and to the notification targets for `opened` / `resolved`.
pub fn announce(rec: &Record, t: f64, what: &str, text: &str) -> Vec<WriteOp> {
    let mut topics = rec.chat_topics();
    if what == "opened" || what == "resolved" {
        topics.extend(
            rec.notification_targets
                .iter()
                .filter_map(|n| n["snsTopicArn"].as_str().map(str::to_string)),
        );
    }
    topics.dedup();
    let subject: String = format!("[Incident {what}] {}", rec.title)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let message = format!(
        "{text}\nIncident: {}\nStatus: {} · Impact: {}",
        rec.arn, rec.status, rec.impact
    );
    topics
        .into_iter()
        .map(|topic| {
            job_op(
                rec,
                t,
                JobKind::Publish {
                    topic,
                    subject: subject.clone(),
                    message: message.clone(),
                    attempt: 0,
                },
            )
        })
        .collect()
}

fn db(i: &Inner) -> Db<'_> {
    Db(&*i.control)
}

/// When the next job is due (epoch seconds).
pub fn next_due(i: &Inner) -> Option<f64> {
    let rows = i.control.scan(T_JOB, "", None, 1).ok()?;
    let (k, _) = rows.first()?;
    k.split('|')
        .next()?
        .parse::<u64>()
        .ok()
        .map(|ms| ms as f64 / 1000.0)
}

/// Run every due job; returns how many ran.
pub async fn run_due(i: &Inner) -> Result<usize, ApiError> {
    let t = now();
    let due: Vec<(String, Job)> = db(i)
        .scan::<Job>(T_JOB, "")?
        .into_iter()
        .take_while(|(k, _)| {
            k.split('|')
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .is_some_and(|ms| ms as f64 / 1000.0 <= t)
        })
        .collect();
    let n = due.len();
    for (key, job) in due {
        if i.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        run_job(i, &key, job).await?;
    }
    Ok(n)
}

async fn run_job(i: &Inner, key: &str, job: Job) -> Result<(), ApiError> {
    let d = &i.directory;
    match &job.kind {
        JobKind::Publish {
            topic,
            subject,
            message,
            attempt,
        } => {
            let r = d
                .invoke(
                    "SNS",
                    &job.account,
                    &job.region,
                    "Publish",
                    json!({"TopicArn": topic, "Subject": subject, "Message": message}),
                )
                .await;
            let mut ops = vec![del(T_JOB, key)];
            if let Err(e) = r {
                if attempt + 1 < PUBLISH_ATTEMPTS {
                    tracing::warn!(topic = %topic, error = %e, "incidents: publish failed, retrying");
                    let retry = Job {
                        kind: JobKind::Publish {
                            topic: topic.clone(),
                            subject: subject.clone(),
                            message: message.clone(),
                            attempt: attempt + 1,
                        },
                        ..job.clone()
                    };
                    ops.push(put(
                        T_JOB,
                        &job_key(now() + 2f64.powi(*attempt as i32)),
                        &retry,
                    ));
                } else {
                    tracing::warn!(topic = %topic, error = %e, "incidents: publish given up");
                }
            }
            db(i).batch(ops)
        }
        JobKind::Automation { index } => {
            let rec = db(i).get::<Record>(T_RECORD, &job.record)?;
            let Some(rec) = rec else {
                return db(i).batch(vec![del(T_JOB, key)]);
            };
            let plan = get_plan(i, &rec.account, &rec.plan_arn).ok();
            let action = plan
                .as_ref()
                .and_then(|p| p.doc["actions"].get(*index))
                .map(|a| a["ssmAutomation"].clone());
            let (doc_name, result) = match action {
                None => (
                    "(unknown)".to_string(),
                    Err(ApiError::new(
                        "ResourceNotFoundException",
                        "the response plan or its action no longer exists",
                    )),
                ),
                Some(a) => {
                    let name = a["documentName"].as_str().unwrap_or_default().to_string();
                    let input = automation_input(i, &rec, &a, &job.id)?;
                    (
                        name,
                        d.invoke(
                            "SSM",
                            &rec.account,
                            &rec.region,
                            "StartAutomationExecution",
                            input,
                        )
                        .await,
                    )
                }
            };
            let _g = i.lock.lock();
            let Some(mut rec) = db(i).get::<Record>(T_RECORD, &job.record)? else {
                return db(i).batch(vec![del(T_JOB, key)]);
            };
            let t = now();
            let mut ops = vec![del(T_JOB, key)];
            match result.map(|o| o["AutomationExecutionId"].as_str().map(str::to_string)) {
                Ok(Some(id)) => {
                    let exec_arn = format!(
                        "arn:aws:ssm:{}:{}:automation-execution/{id}",
                        rec.region, rec.account
                    );
                    rec.automations.insert(id.clone(), "Pending".into());
                    rec.automation_executions.push(exec_arn.clone());
                    let msg = format!("Runbook {doc_name} started (execution {id})");
                    ops.push(event_op(
                        &rec.arn,
                        "SSM Automation Execution",
                        t,
                        json!({"message": msg, "status": "Pending"}).to_string(),
                        vec![json!({"resource": exec_arn})],
                    ));
                    ops.extend(announce(&rec, t, "runbook", &msg));
                }
                other => {
                    let why = match other {
                        Err(e) => e.message,
                        _ => "no execution id was returned".into(),
                    };
                    rec.runbook_failed = true;
                    let msg = format!("Runbook {doc_name} could not be started: {why}");
                    ops.push(event_op(
                        &rec.arn,
                        "SSM Automation Execution",
                        t,
                        json!({"message": msg, "status": "Failed"}).to_string(),
                        vec![],
                    ));
                    ops.extend(announce(&rec, t, "runbook", &msg));
                }
            }
            ops.push(put(T_RECORD, &rec.arn, &rec));
            db(i).batch(ops)
        }
        JobKind::Engage {
            contact,
            delay_minutes,
        } => {
            let rec = db(i).get::<Record>(T_RECORD, &job.record)?;
            let Some(rec) = rec else {
                return db(i).batch(vec![del(T_JOB, key)]);
            };
            let t = now();
            if rec.status != "OPEN" {
                let _g = i.lock.lock();
                let msg = format!("Engagement of {contact} skipped: the incident was resolved within {delay_minutes} minute(s)");
                return db(i).batch(vec![
                    del(T_JOB, key),
                    event_op(
                        &rec.arn,
                        "SSM Contacts Page",
                        t,
                        json!({"message": msg}).to_string(),
                        vec![json!({"resource": contact})],
                    ),
                ]);
            }
            let body = format!(
                "{}\nImpact: {}\n{}\nIncident: {}",
                rec.title,
                rec.impact,
                rec.summary.clone().unwrap_or_default(),
                rec.arn
            );
            let r = d.invoke("SSM Contacts", &rec.account, &rec.region, "StartEngagement", json!({
                "ContactId": contact, "Sender": "Incident Manager", "Subject": rec.title, "Content": body,
                "PublicSubject": rec.title, "PublicContent": format!("Incident: {}", rec.title),
                "IncidentId": rec.arn, "IdempotencyToken": job.id,
            })).await;
            let _g = i.lock.lock();
            let mut ops = vec![del(T_JOB, key)];
            let mut rec = db(i).get::<Record>(T_RECORD, &job.record)?.unwrap_or(rec);
            match r {
                Ok(o) => {
                    let eng = o["EngagementArn"].as_str().unwrap_or_default().to_string();
                    if !eng.is_empty() {
                        rec.engagements.insert(eng.clone(), false);
                        ops.push(put(T_RECORD, &rec.arn, &rec));
                    }
                    let msg = format!("Engaged {contact}");
                    ops.push(event_op(
                        &rec.arn,
                        "SSM Contacts Page",
                        t,
                        json!({"message": msg, "engagementArn": eng}).to_string(),
                        vec![json!({"resource": contact})],
                    ));
                    ops.extend(announce(&rec, t, "engaged", &msg));
                }
                Err(e) => {
                    let msg = format!("Engagement of {contact} failed: {}", e.message);
                    ops.push(event_op(
                        &rec.arn,
                        "SSM Contacts Page",
                        t,
                        json!({"message": msg}).to_string(),
                        vec![json!({"resource": contact})],
                    ));
                }
            }
            db(i).batch(ops)
        }
    }
}

/// StartAutomationExecution input for one `ssmAutomation` action.
fn automation_input(i: &Inner, rec: &Record, a: &Value, token: &str) -> Result<Value, ApiError> {
    let mut params = a["parameters"].as_object().cloned().unwrap_or_default();
    for (name, dynamic) in a["dynamicParameters"].as_object().into_iter().flatten() {
        let vals: Vec<Value> = match dynamic["variable"].as_str() {
            Some("INCIDENT_RECORD_ARN") => vec![json!(rec.arn)],
            Some("INVOLVED_RESOURCES") => Db(&*i.control)
                .scan::<Value>(crate::util::T_ITEM, &format!("{}|", rec.arn))?
                .into_iter()
                .filter(|(_, it)| it["identifier"]["type"] == "INVOLVED_RESOURCE")
                .filter_map(|(_, it)| it["identifier"]["value"]["arn"].as_str().map(|s| json!(s)))
                .collect(),
            _ => continue,
        };
        params.insert(name.clone(), Value::Array(vals));
    }
    let mut input =
        json!({"DocumentName": a["documentName"], "Parameters": params, "ClientToken": token});
    if let Some(v) = a["documentVersion"].as_str() {
        input["DocumentVersion"] = json!(v);
    }
    Ok(input)
}

/// Terminal automation statuses.
fn finished(status: &str) -> bool {
    matches!(
        status,
        "Success"
            | "Failed"
            | "Cancelled"
            | "TimedOut"
            | "CompletedWithSuccess"
            | "CompletedWithFailure"
            | "Rejected"
            | "Exited"
    )
}

fn alarm_name(arn: &str) -> Option<&str> {
    arn.split_once(":alarm:").map(|(_, n)| n)
}

/// Look at every open incident with alarms or running runbooks: record alarm state changes and
/// runbook results, and auto-resolve when the plan opted in and everything is healthy.
pub async fn watch(i: &Inner) -> Result<(), ApiError> {
    let open: Vec<Record> = db(i)
        .scan::<Record>(T_RECORD, "")?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| {
            r.status == "OPEN"
                && (!r.alarms.is_empty()
                    || r.automations.values().any(|s| !finished(s))
                    || r.engagements.values().any(|acked| !acked))
        })
        .collect();
    for rec in open {
        // Query peers without the lock.
        let mut alarm_states: Vec<(String, String)> = Vec::new();
        let names: Vec<&str> = rec.alarms.keys().filter_map(|a| alarm_name(a)).collect();
        if !names.is_empty() {
            if let Ok(out) = i
                .directory
                .invoke(
                    "CloudWatch",
                    &rec.account,
                    &rec.region,
                    "DescribeAlarms",
                    json!({"AlarmNames": names}),
                )
                .await
            {
                for a in out["MetricAlarms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(out["CompositeAlarms"].as_array().into_iter().flatten())
                {
                    if let (Some(arn), Some(st)) =
                        (a["AlarmArn"].as_str(), a["StateValue"].as_str())
                    {
                        alarm_states.push((arn.to_string(), st.to_string()));
                    }
                }
            }
        }
        let mut runs: Vec<(String, String)> = Vec::new();
        for (id, st) in rec.automations.iter().filter(|(_, s)| !finished(s)) {
            if let Ok(out) = i
                .directory
                .invoke(
                    "SSM",
                    &rec.account,
                    &rec.region,
                    "GetAutomationExecution",
                    json!({"AutomationExecutionId": id}),
                )
                .await
            {
                if let Some(s) = out["AutomationExecution"]["AutomationExecutionStatus"].as_str() {
                    if s != st {
                        runs.push((id.clone(), s.to_string()));
                    }
                }
            }
        }
        let mut acks: Vec<(String, String)> = Vec::new();
        for eng in rec
            .engagements
            .iter()
            .filter(|(_, acked)| !**acked)
            .map(|(e, _)| e)
        {
            if let Ok(out) = i
                .directory
                .invoke(
                    "SSM Contacts",
                    &rec.account,
                    &rec.region,
                    "ListPagesByEngagement",
                    json!({"EngagementId": eng}),
                )
                .await
            {
                let read = out["Pages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| !p["ReadTime"].is_null());
                if let Some(p) = read {
                    acks.push((
                        eng.clone(),
                        p["ContactArn"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        let _g = i.lock.lock();
        let Some(mut rec) = db(i).get::<Record>(T_RECORD, &rec.arn)? else {
            continue;
        };
        if rec.status != "OPEN" {
            continue;
        }
        let t = now();
        let mut ops = Vec::new();
        for (arn, st) in alarm_states {
            if let Some(prev) = rec.alarms.get(&arn).cloned() {
                if prev != st {
                    let msg = format!(
                        "Alarm {} changed from {prev} to {st}",
                        alarm_name(&arn).unwrap_or(&arn)
                    );
                    ops.push(event_op(
                        &rec.arn,
                        "Cloudwatch Alarm",
                        t,
                        json!({"message": msg}).to_string(),
                        vec![json!({"resource": arn})],
                    ));
                    rec.alarms.insert(arn, st);
                }
            }
        }
        for (id, st) in runs {
            rec.automations.insert(id.clone(), st.clone());
            if finished(&st) {
                if st != "Success" && st != "CompletedWithSuccess" {
                    rec.runbook_failed = true;
                }
                let msg = format!("Runbook execution {id} finished: {st}");
                ops.push(event_op(&rec.arn, "SSM Automation Execution", t,
                    json!({"message": msg, "status": st}).to_string(),
                    vec![json!({"resource": format!("arn:aws:ssm:{}:{}:automation-execution/{id}", rec.region, rec.account)})]));
                ops.extend(announce(&rec, t, "runbook", &msg));
            }
        }
        for (eng, contact) in acks {
            if rec.engagements.get(&eng) == Some(&false) {
                rec.engagements.insert(eng.clone(), true);
                let msg = format!("Page acknowledged by {contact}");
                ops.push(event_op(
                    &rec.arn,
                    "SSM Contacts Page",
                    t,
                    json!({"message": msg, "engagementArn": eng}).to_string(),
                    vec![json!({"resource": contact})],
                ));
                ops.extend(announce(&rec, t, "acknowledged", &msg));
            }
        }
        if ready_to_resolve(&rec) {
            set_status(&mut rec, "RESOLVED", t,
                "Auto-resolved by opsloop: every alarm of the incident is OK and no runbook is running or failed.", &mut ops);
            tracing::info!(incident = %rec.arn, "incidents: auto-resolved");
        }
        if !ops.is_empty() {
            rec.modified = t;
            ops.push(put(T_RECORD, &rec.arn, &rec));
            db(i).batch(ops)?;
        }
    }
    Ok(())
}

/// Auto-resolve condition: opted in, has alarms, all OK, no runbook running or failed.
pub fn ready_to_resolve(rec: &Record) -> bool {
    rec.auto_resolve
        && rec.status == "OPEN"
        && !rec.alarms.is_empty()
        && rec.alarms.values().all(|s| s == "OK")
        && !rec.runbook_failed
        && rec.automations.values().all(|s| finished(s))
}
