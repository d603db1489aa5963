//! Schedule rules: a rule with a `ScheduleExpression` (`rate()` / `cron()`, UTC, default bus only)
//! puts a `Scheduled Event` (`source` `aws.events`, `resources` = the rule's ARN, `detail` `{}`,
//! `time` = the scheduled fire time) to its targets at every fire time.
//!
//! Exactness: fire times come from `Expression::next_after(anchor, last_fired)` — `anchor` is when the
//! schedule was set (rates count from it), `last_fired` the previous scheduled time, never the
//! clock — so they never drift. The fire time is stored (`events.sched`, key = the rule's key) in the
//! same atomic batch as the outbox record of its event, so a restart neither repeats nor loses a
//! firing. Fire times missed by more than [`CATCH_UP`] while the server was down are skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opsloop_store::WriteOp;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{watch, Notify};

use crate::outbox::{Item, Record};
use crate::put::new_event_id;
use crate::util::{iso_seconds, now_ms, T_SCHED};
use crate::Events;

/// A fire time this late (server down) is skipped rather than fired.
pub const CATCH_UP: i64 = 5 * 60_000;

/// Scheduler state: the last fire time of each schedule rule.
#[derive(Default)]
pub struct SchedState {
    last: Mutex<HashMap<String, i64>>,
    notify: Notify,
    loaded: Mutex<bool>,
}

impl SchedState {
    pub fn changed(&self) {
        self.notify.notify_one();
    }

    pub fn clear(&self) {
        self.last.lock().clear();
        self.notify.notify_one();
    }
}

/// The next fire time of a rule after its last one (or its anchor), or None.
fn next_fire(expr: &str, anchor: i64, last: Option<i64>, now: i64) -> Option<i64> {
    let e = opsloop_schedule::parse_rule_expression(expr).ok()?;
    let after = last.filter(|l| *l >= anchor).unwrap_or(anchor);
    let next = e.next_after(anchor, after, "UTC").ok()??;
    if next < now - CATCH_UP {
        return e.next_after(anchor, now - 1, "UTC").ok()?;
    }
    Some(next)
}

/// Fire schedule rules until `stop`.
pub async fn run(events: Arc<Events>, mut stop: watch::Receiver<bool>) {
    load(&events);
    loop {
        let now = now_ms();
        let mut earliest: Option<i64> = None;
        for rule in events.registry.schedule_rules() {
            let Some(expr) = rule.schedule.as_deref() else {
                continue;
            };
            let key = rule.key();
            let last = events.sched.last.lock().get(&key).copied();
            let Some(at) = next_fire(expr, rule.schedule_anchor_ms, last, now) else {
                continue;
            };
            if at > now {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
                continue;
            }
            let event = json!({
                "version": "0",
                "id": new_event_id(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": rule.account,
                "time": iso_seconds(at),
                "region": rule.region,
                "resources": [rule.arn()],
                "detail": {},
            });
            let record = Record {
                accepted_ms: now,
                items: vec![Item {
                    account: rule.account.as_str().into(),
                    region: rule.region.as_str().into(),
                    bus: rule.bus.as_str().into(),
                    event: Arc::new(crate::event::Event::from_value(event)),
                    rules: vec![rule.name.as_str().into()],
                }],
            };
            let op = WriteOp::Put {
                table: T_SCHED.into(),
                key: key.clone(),
                value: at.to_string().into_bytes(),
            };
            match events.outbox.commit(Some(Arc::new(record)), vec![op]).await {
                Ok(()) => {
                    tracing::debug!(rule = %rule.name, at, "schedule rule fired");
                    events.sched.last.lock().insert(key, at);
                    earliest = Some(now);
                }
                Err(e) => {
                    tracing::error!(rule = %rule.name, error = %e, "cannot fire a schedule rule");
                    earliest = Some(now + 1000);
                }
            }
        }
        let wait = earliest
            .map(|e| (e - now_ms()).clamp(0, 60_000))
            .unwrap_or(60_000) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = events.sched.notify.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

fn load(events: &Events) {
    let mut loaded = events.sched.loaded.lock();
    if *loaded {
        return;
    }
    match crate::model::scan_all(events.control.as_ref(), T_SCHED) {
        Ok(rows) => {
            let mut last = events.sched.last.lock();
            for (k, v) in rows {
                if let Some(ms) = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    last.insert(k, ms);
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot load schedule rule state"),
    }
    *loaded = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_fires_from_the_anchor_without_drift() {
        let anchor = 1_000_000;
        let first =
            next_fire("rate(1 minute)", anchor, None, anchor).expect("rate(1 minute) fires");
        assert_eq!(first, anchor + 60_000);
        // Fired late (the clock is 5 s past the fire time): the next is still on the grid.
        assert_eq!(
            next_fire("rate(1 minute)", anchor, Some(first), first + 5_000),
            Some(anchor + 120_000)
        );
        // After a long outage, missed firings are skipped, the grid kept.
        let now = anchor + 3_600_000 + 30_000;
        assert_eq!(
            next_fire("rate(1 minute)", anchor, Some(first), now),
            Some(anchor + 3_660_000)
        );
    }
}
