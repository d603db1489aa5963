//! The firing loop: every schedule whose due instant has come is fired once.
//!
//! A fire is one atomic control-store batch: the delivery row goes into the outbox, the schedule's
//! due-index row is removed, and the schedule is moved to its next occurrence (or, with
//! `ActionAfterCompletion: DELETE` and no occurrence left, deleted). So a restart never repeats a
//! fire (its due row is gone) and never loses one (before the batch, the due row is still there).
//!
//! Next occurrences are computed from the expression and the previous occurrence, never from
//! "now + period", so schedules do not drift however late the loop wakes. After a stop, each
//! schedule whose occurrences were missed fires **once**, for the earliest missed occurrence (with
//! that occurrence as its scheduled time), and then continues with the first occurrence after
//! the restart: a server down for an hour does not deliver sixty `rate(1 minute)` fires.

use std::sync::Arc;
use std::time::Duration;

use opsloop_store::StoreError;
use tokio::sync::watch;

use crate::input::{next_occurrence, plan_next};
use crate::model::{
    decode, encode, now_ms, put, remove_schedule, save_schedule, time_of_key, Delivery,
    ScheduleRecord, DUE, OUTBOX, SCHEDULES,
};
use crate::Inner;

/// A fire is "late" (the server was down, or stalled) when the following occurrence is already
/// this far behind the clock (plus the schedule's flexible window).
const CATCH_UP_MS: i64 = 60_000;
/// Due rows read per scan.
const BATCH: usize = 256;
/// Longest sleep between scans when nothing is due sooner (API changes wake the loop anyway).
const MAX_SLEEP_MS: i64 = 5_000;

/// What one pass did.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pass {
    pub fired: usize,
    /// The earliest due instant still ahead.
    pub next_due: Option<i64>,
}

/// Fire everything due at or before `now`.
pub(crate) fn fire_due(inner: &Inner, now: i64) -> Result<Pass, StoreError> {
    let mut pass = Pass::default();
    loop {
        let rows = inner.store.scan(DUE, "", None, BATCH)?;
        let full = rows.len() == BATCH;
        for (key, _) in rows {
            let due = time_of_key(&key).unwrap_or(0);
            if due > now {
                pass.next_due = Some(due);
                return Ok(pass);
            }
            if fire_one(inner, &key, due, now)? {
                pass.fired += 1;
            }
        }
        if !full {
            // Rows fired above were moved to later keys: the head is the next due instant.
            let head = inner.store.scan(DUE, "", None, 1)?;
            pass.next_due = head.first().and_then(|(k, _)| time_of_key(k));
            return Ok(pass);
        }
    }
}

/// Fire the schedule behind due row `index_key`; `false` if the row was stale (and is removed).
fn fire_one(inner: &Inner, index_key: &str, due: i64, now: i64) -> Result<bool, StoreError> {
    let _write = inner.write.lock();
    let schedule_key = index_key.get(17..).unwrap_or_default();
    let rec: Option<ScheduleRecord> = inner
        .store
        .get(SCHEDULES, schedule_key)?
        .and_then(|b| decode(&b));
    let Some(rec) = rec.filter(|r| r.due_ms == Some(due)) else {
        inner.store.delete(DUE, index_key)?;
        return Ok(false);
    };
    let scheduled = rec.next_ms.unwrap_or(due);
    let delivery = Delivery {
        id: uuid::Uuid::new_v4().to_string(),
        account: rec.account.clone(),
        region: rec.region.clone(),
        schedule_arn: rec.arn(),
        scheduled_ms: scheduled,
        target: rec.target.clone(),
        attempts: 0,
        first_attempt_ms: now,
        next_attempt_ms: now,
    };
    let late_after = now - CATCH_UP_MS - rec.window_ms().unwrap_or(0);
    let after = match next_occurrence(&rec, scheduled) {
        Some(following) if following < late_after => now,
        _ => scheduled,
    };
    let mut next = rec.clone();
    plan_next(&mut next, after);
    let mut ops = vec![put(OUTBOX, delivery.outbox_key(), encode(&delivery))];
    let completed = next.next_ms.is_none();
    let delete = completed && rec.action_after_completion.as_deref() == Some("DELETE");
    if delete {
        ops.extend(remove_schedule(&rec));
    } else {
        ops.extend(save_schedule(Some(&rec), &next));
    }
    inner.store.batch(ops)?;
    tracing::info!(
        schedule = %delivery.schedule_arn,
        scheduled_ms = scheduled,
        lateness_ms = now - scheduled,
        execution_id = %delivery.id,
        next_ms = ?next.next_ms,
        deleted = delete,
        "schedule fired"
    );
    Ok(true)
}

/// The loop: fire what is due, sleep until the next due instant (or an API change, or stop).
pub(crate) async fn run(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let now = now_ms();
        let worker = inner.clone();
        let pass = tokio::task::spawn_blocking(move || fire_due(&worker, now)).await;
        let wait_ms = match pass {
            Ok(Ok(pass)) => {
                if pass.fired > 0 {
                    inner.outbox_wake.notify_one();
                }
                pass.next_due
                    .map_or(MAX_SLEEP_MS, |due| due - now_ms())
                    .clamp(0, MAX_SLEEP_MS)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scheduler timer pass failed");
                1_000
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduler timer task failed");
                1_000
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = inner.timer_wake.notified() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
