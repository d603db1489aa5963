//! The background worker of the ext module: steps running replays and deletes archived events past
//! their retention. It holds no reference to the service (services must not keep themselves alive):
//! each round it invokes the internal `OpsloopExtTick` operation of "EventBridge" through the
//! `Directory`, which hands [`tick`] the live service, and it ends when the service is gone. It is
//! started on first use of any ext entry point (or by `ext::start`), woken at once by StartReplay
//! and CancelReplay, and otherwise runs every 30 seconds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, Value};
use serde_json::json;

use super::common::now_ms;
use super::{archives, replays, TICK_OPERATION};
use crate::Events;

/// The serviceId EventBridge is registered under in the directory.
const SERVICE_ID: &str = "EventBridge";
/// Idle period between rounds.
const IDLE: Duration = Duration::from_secs(30);
/// Retention sweeps at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Most archived events deleted per round.
const SWEEP_BUDGET: usize = 5_000;

pub(crate) fn ensure_started(events: &Events) {
    let shared = &events.ext.shared;
    if shared.worker_started.load(Ordering::Relaxed)
        || shared.worker_started.swap(true, Ordering::SeqCst)
    {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        shared.worker_started.store(false, Ordering::SeqCst);
        return;
    };
    let directory = Arc::clone(&events.directory);
    let shared = Arc::clone(shared);
    runtime.spawn(async move {
        tracing::debug!("events ext worker started");
        loop {
            let round = directory
                .invoke(
                    SERVICE_ID,
                    "000000000000",
                    "us-east-1",
                    TICK_OPERATION,
                    json!({}),
                )
                .await;
            let more = match round {
                Ok(v) => v.get("More").and_then(Value::as_bool).unwrap_or(false),
                Err(e) if e.kind == "ServiceUnavailable" => {
                    tracing::debug!("events ext worker stops: service gone");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "events ext worker round failed");
                    false
                }
            };
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(IDLE) => {}
            }
        }
    });
}

/// One round: the retention sweep when due, then one batch of each active replay.
pub(crate) async fn tick(events: &Events) -> Result<Value, ApiError> {
    let shared = &*events.ext.shared;
    let due = {
        let mut last = shared.last_sweep.lock();
        let due = last.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    };
    let mut more = false;
    if due {
        let deleted = archives::sweep(shared, &*events.control, now_ms(), SWEEP_BUDGET)?;
        if deleted > 0 {
            tracing::info!(deleted, "archived events past retention deleted");
        }
        if deleted >= SWEEP_BUDGET {
            *shared.last_sweep.lock() = None;
            more = true;
        }
    }
    more |= replays::step_all(events).await?;
    Ok(json!({"More": more}))
}
