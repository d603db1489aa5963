//! The outbox dispatcher: each recorded fire is delivered to its target through the
//! [`opsloop_core::Directory`], retried per the target's `RetryPolicy`, then dead-lettered.
//!
//! - Retries: a throttled or failed (5xx) call is retried with exponential backoff (1 s doubling
//!   to at most 60 s, jittered) while fewer than `MaximumRetryAttempts` retries (default 185) have
//!   been made and the first attempt is younger than `MaximumEventAgeInSeconds` (default 86,400).
//!   A rejected call (4xx), a target opsloop does not serve, or an invalid input is not retried.
//! - Dead letters: AWS sends them to an SQS queue (`DeadLetterConfig.Arn`). opsloop serves no SQS,
//!   so it keeps them in the control store (`scheduler_dead`, keyed by that queue ARN) with the
//!   attributes AWS sets on the SQS message, and logs each one at WARN. A fire whose target has no
//!   dead-letter config is dropped with the same WARN line.
//!
//! Each retry is durable: the outbox row is rewritten with the attempt count and next instant
//! before the next attempt, so a restart resumes the schedule of retries rather than starting over.
//! Delivery is at least once: a crash between a successful call and the outbox delete repeats the
//! call after restart.

use std::sync::Arc;
use std::time::Duration;

use opsloop_core::Value;
use opsloop_store::StoreError;
use rand::Rng;
use serde_json::json;
use tokio::sync::{watch, Semaphore};

use crate::model::{decode, del, encode, now_ms, put, time_of_key, Delivery, DEAD, OUTBOX};
use crate::target::{self, check_answer, retryable};
use crate::Inner;

const BATCH: usize = 64;
const CONCURRENCY: usize = 32;
const MAX_SLEEP_MS: i64 = 5_000;
const DEFAULT_MAX_RETRIES: u32 = 185;
const DEFAULT_MAX_AGE_S: i64 = 86_400;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Delivered,
    Failed {
        code: String,
        message: String,
        retry: bool,
    },
}

/// Ready outbox rows (key, delivery) and the instant the next one becomes ready.
pub(crate) type Ready = (Vec<(String, Delivery)>, Option<i64>);

/// Outbox rows ready at `now` and not being attempted, plus the next instant one becomes ready.
pub(crate) fn ready(inner: &Inner, now: i64) -> Result<Ready, StoreError> {
    let busy = inner.in_flight.lock().clone();
    let rows = inner.store.scan(OUTBOX, "", None, BATCH + busy.len())?;
    let mut out = Vec::new();
    for (key, value) in rows {
        let at = time_of_key(&key).unwrap_or(0);
        if at > now {
            return Ok((out, Some(at)));
        }
        match decode::<Delivery>(&value) {
            Some(d) if busy.contains(&d.id) => {}
            Some(d) => out.push((key, d)),
            None => {
                inner.store.delete(OUTBOX, &key)?;
            }
        }
        if out.len() >= BATCH {
            break;
        }
    }
    Ok((out, None))
}

/// Make one attempt at `d`.
pub(crate) async fn attempt(inner: &Inner, d: &Delivery) -> Outcome {
    let call = match target::call_for(d) {
        Ok(call) => call,
        Err(e) => return failed("InvalidTarget", &e.0, false),
    };
    if inner.directory.get(&call.service_id).is_none() {
        let message = format!("{} is not served by this opsloop process", call.service_id);
        return failed("ServiceUnavailable", &message, false);
    }
    let answer = inner
        .directory
        .invoke(
            &call.service_id,
            &d.account,
            &call.region,
            &call.operation,
            call.input.clone(),
        )
        .await;
    match answer.and_then(|a| check_answer(&call, &a)) {
        Ok(()) => Outcome::Delivered,
        Err(e) => failed(&e.kind, &e.message, retryable(&e)),
    }
}

fn failed(code: &str, message: &str, retry: bool) -> Outcome {
    Outcome::Failed {
        code: code.to_string(),
        message: message.to_string(),
        retry,
    }
}

fn policy(d: &Delivery) -> (u32, i64) {
    let p = d.target.get("RetryPolicy");
    let retries = p
        .and_then(|p| p.get("MaximumRetryAttempts"))
        .and_then(Value::as_u64)
        .map_or(DEFAULT_MAX_RETRIES, |n| n as u32);
    let age = p
        .and_then(|p| p.get("MaximumEventAgeInSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_MAX_AGE_S);
    (retries, age * 1000)
}

/// Backoff before retry number `retry` (1-based): 1 s doubling, at most 60 s, 50–100 % jitter.
fn backoff_ms(retry: u32) -> i64 {
    let full = 1_000i64 << retry.saturating_sub(1).min(6);
    let full = full.min(60_000);
    rand::thread_rng().gen_range(full / 2..=full)
}

/// Record how the attempt at `d` (outbox row `key`) ended, at `now`.
pub(crate) fn settle(
    inner: &Inner,
    key: &str,
    d: &Delivery,
    outcome: &Outcome,
    now: i64,
) -> Result<(), StoreError> {
    let (code, message, retry) = match outcome {
        Outcome::Delivered => {
            inner.store.delete(OUTBOX, key)?;
            tracing::debug!(schedule = %d.schedule_arn, execution_id = %d.id, attempts = d.attempts + 1, "schedule target invoked");
            return Ok(());
        }
        Outcome::Failed {
            code,
            message,
            retry,
        } => (code, message, *retry),
    };
    let (max_retries, max_age_ms) = policy(d);
    let next_attempt = now + backoff_ms(d.attempts + 1);
    let young = next_attempt - d.first_attempt_ms < max_age_ms;
    if retry && d.attempts < max_retries && young {
        let mut again = d.clone();
        again.attempts += 1;
        again.next_attempt_ms = next_attempt;
        let ops = vec![
            del(OUTBOX, key.to_string()),
            put(OUTBOX, again.outbox_key(), encode(&again)),
        ];
        inner.store.batch(ops)?;
        tracing::info!(schedule = %d.schedule_arn, execution_id = %d.id, attempt = again.attempts, error = %message, "schedule target failed, will retry");
        return Ok(());
    }
    let condition = if retry && d.attempts < max_retries {
        "MaximumEventAgeInSeconds"
    } else {
        "MaximumRetryAttempts"
    };
    let mut ops = vec![del(OUTBOX, key.to_string())];
    let dlq = d
        .target
        .get("DeadLetterConfig")
        .and_then(|c| c.get("Arn"))
        .and_then(Value::as_str);
    if let Some(dlq) = dlq {
        let letter = json!({
            "Body": target::input_text(d),
            "Attributes": {
                "ERROR_CODE": code,
                "ERROR_MESSAGE": message,
                "EXHAUSTED_RETRY_CONDITION": condition,
                "RETRY_ATTEMPTS": d.attempts,
                "SCHEDULE_ARN": d.schedule_arn,
                "TARGET_ARN": d.target.get("Arn").cloned().unwrap_or(Value::Null),
                "EXECUTION_ID": d.id,
                "SCHEDULED_TIME": opsloop_schedule::iso8601_utc(d.scheduled_ms),
            },
            "DeadLetteredAt": now as f64 / 1000.0,
        });
        ops.push(put(DEAD, format!("{dlq}/{}", d.id), encode(&letter)));
    }
    inner.store.batch(ops)?;
    tracing::warn!(
        schedule = %d.schedule_arn,
        execution_id = %d.id,
        attempts = d.attempts + 1,
        error_code = %code,
        error = %message,
        dead_letter_queue = dlq.unwrap_or("none"),
        "schedule target delivery abandoned"
    );
    Ok(())
}

/// The dispatcher loop.
pub(crate) async fn run(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        if *stop.borrow() {
            return;
        }
        let now = now_ms();
        let worker = inner.clone();
        let found = tokio::task::spawn_blocking(move || ready(&worker, now)).await;
        let (batch, next) = match found {
            Ok(Ok(found)) => found,
            other => {
                tracing::error!(result = ?other.err().map(|e| e.to_string()), "scheduler outbox scan failed");
                (Vec::new(), Some(now + 1_000))
            }
        };
        let full = batch.len() >= BATCH;
        for (key, d) in batch {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            inner.in_flight.lock().insert(d.id.clone());
            let inner = inner.clone();
            tokio::spawn(async move {
                let outcome = attempt(&inner, &d).await;
                let worker = inner.clone();
                let id = d.id.clone();
                let settled = tokio::task::spawn_blocking(move || {
                    settle(&worker, &key, &d, &outcome, now_ms())
                })
                .await;
                if let Ok(Err(e)) = settled {
                    tracing::error!(error = %e, execution_id = %id, "scheduler outbox update failed");
                }
                inner.in_flight.lock().remove(&id);
                inner.outbox_wake.notify_one();
                drop(permit);
            });
        }
        let wait_ms = if full {
            0
        } else {
            next.map_or(MAX_SLEEP_MS, |t| t - now_ms())
                .clamp(0, MAX_SLEEP_MS)
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = inner.outbox_wake.notified() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The dead letters kept for queue `dlq_arn` (for tests and diagnostics).
#[cfg(test)]
pub(crate) fn dead_letters(inner: &Inner, dlq_arn: &str) -> Vec<Value> {
    inner
        .store
        .scan(DEAD, &format!("{dlq_arn}/"), None, 1000)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, v)| decode(&v))
        .collect()
}
