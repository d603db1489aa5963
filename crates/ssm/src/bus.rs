//! Events Systems Manager sends to EventBridge, as AWS shapes them (source `aws.ssm`; today
//! "Parameter Store Change" for Create / Update / Delete / LabelParameterVersion). A change and its
//! event are written in one batch to the durable outbox `ssm.outbox` (key: enqueue time in
//! microseconds, zero-padded and made strictly increasing, so rows drain in the order they were
//! queued); [`run`] — started by
//! `Ssm::start` — delivers them through the `Directory` (`EventBridge` `PutEvents`) and deletes each
//! delivered row, so an event survives a restart and is delivered once it can be. Later modules
//! (Automation status changes, Run Command notifications) append to the same outbox with [`op`].

use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{Directory, Value};
use opsloop_store::{ControlStore, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use crate::common::{now, to_bytes, Scope};

pub const TABLE: &str = "ssm.outbox";
const BATCH: usize = 100;
/// Attempts before an undeliverable event is dropped (logged).
const MAX_ATTEMPTS: u32 = 20;
const IDLE_POLL: Duration = Duration::from_secs(1);

/// One event waiting for delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutEvent {
    pub account: String,
    pub region: String,
    pub detail_type: String,
    pub resources: Vec<String>,
    pub detail: Value,
    pub time: f64,
    #[serde(default)]
    pub attempts: u32,
}

/// The outbox write of one event (append it to the batch of the change it reports).
pub fn op(scope: &Scope, detail_type: &str, resources: Vec<String>, detail: Value) -> WriteOp {
    let t = now();
    let ev = OutEvent {
        account: scope.account.clone(),
        region: scope.region.clone(),
        detail_type: detail_type.to_string(),
        resources,
        detail,
        time: t,
        attempts: 0,
    };
    WriteOp::Put {
        table: TABLE.into(),
        key: format!("{:020}", next_sequence(t)),
        value: to_bytes(&ev),
    }
}

/// The outbox key of the next event: microseconds since the epoch, made strictly increasing within
/// the process (two events in the same microsecond — or a clock step backwards — still sort in the
/// order they were queued), so the dispatcher sends events in the order they happened.
fn next_sequence(now_seconds: f64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now_us = (now_seconds * 1e6) as u64;
    let previous = LAST
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(now_us.max(last + 1))
        })
        .unwrap_or(0);
    now_us.max(previous + 1)
}

/// The PutEvents input of an event.
pub fn put_events_input(ev: &OutEvent) -> Value {
    json!({
        "Entries": [{
            "Source": "aws.ssm",
            "DetailType": ev.detail_type,
            "Resources": ev.resources,
            "Time": ev.time,
            "Detail": ev.detail.to_string(),
        }]
    })
}

/// Deliver what the outbox holds; returns whether every row was dealt with (false: back off).
pub async fn drain(store: &Arc<dyn ControlStore>, directory: &Directory) -> bool {
    let rows = match store.scan(TABLE, "", None, BATCH) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "ssm outbox scan failed");
            return false;
        }
    };
    for (key, bytes) in rows {
        let Ok(mut ev) = serde_json::from_slice::<OutEvent>(&bytes) else {
            tracing::error!(key = %key, "corrupt ssm outbox row dropped");
            let _ = store.delete(TABLE, &key);
            continue;
        };
        let result = directory
            .invoke(
                "EventBridge",
                &ev.account,
                &ev.region,
                "PutEvents",
                put_events_input(&ev),
            )
            .await;
        match result {
            Ok(out)
                if out
                    .get("FailedEntryCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    > 0 =>
            {
                tracing::warn!(detail_type = %ev.detail_type, answer = %out, "eventbridge rejected an ssm event; dropped");
                let _ = store.delete(TABLE, &key);
            }
            Ok(_) => {
                if let Err(e) = store.delete(TABLE, &key) {
                    tracing::warn!(error = %e, "ssm outbox delete failed");
                    return false;
                }
            }
            Err(e) => {
                ev.attempts += 1;
                if ev.attempts >= MAX_ATTEMPTS {
                    tracing::warn!(detail_type = %ev.detail_type, error = %e, "ssm event undeliverable; dropped");
                    let _ = store.delete(TABLE, &key);
                } else {
                    tracing::debug!(error = %e, attempts = ev.attempts, "ssm event delivery failed; will retry");
                    let _ = store.put(TABLE, &key, &to_bytes(&ev));
                    return false;
                }
            }
        }
    }
    true
}

/// The dispatcher: drain when woken (after a write) or every second, backing off while
/// deliveries fail.
pub async fn run(store: Arc<dyn ControlStore>, directory: Arc<Directory>, wake: Arc<Notify>) {
    let mut backoff = IDLE_POLL;
    loop {
        if drain(&store, &directory).await {
            backoff = IDLE_POLL;
        } else {
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_core::{ApiError, BoxFuture, RequestContext, Service};
    use parking_lot::Mutex;

    /// An EventBridge stand-in recording what it is sent; fails while `fail` is set.
    struct Recorder {
        seen: Mutex<Vec<(String, Value)>>,
        fail: Mutex<bool>,
    }

    impl Service for Recorder {
        fn model_json(&self) -> &'static str {
            "{}"
        }
        fn call<'a>(
            &'a self,
            ctx: &'a RequestContext,
            input: Value,
        ) -> BoxFuture<'a, Result<Value, ApiError>> {
            Box::pin(async move {
                if *self.fail.lock() {
                    return Err(ApiError::with_status("ServiceUnavailable", 503, "down"));
                }
                self.seen.lock().push((ctx.account_id.clone(), input));
                Ok(json!({"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}))
            })
        }
    }

    #[tokio::test]
    async fn events_wait_for_delivery_and_are_sent_once_in_order() {
        let store: Arc<dyn ControlStore> = Arc::new(opsloop_store::SqliteStore::memory().unwrap());
        let directory = Directory::new();
        let rec = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            fail: Mutex::new(true),
        });
        directory.insert("EventBridge", rec.clone());
        let scope = Scope::new("123456789012", "us-east-1");
        store
            .batch(vec![
                op(
                    &scope,
                    "Parameter Store Change",
                    vec!["a".into()],
                    json!({"n": 1}),
                ),
                op(
                    &scope,
                    "Parameter Store Change",
                    vec!["b".into()],
                    json!({"n": 2}),
                ),
            ])
            .unwrap();
        assert!(!drain(&store, &directory).await);
        assert_eq!(store.scan(TABLE, "", None, 10).unwrap().len(), 2);
        *rec.fail.lock() = false;
        assert!(drain(&store, &directory).await);
        assert!(store.scan(TABLE, "", None, 10).unwrap().is_empty());
        let seen = rec.seen.lock().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "123456789012");
        let entry = &seen[0].1["Entries"][0];
        assert_eq!(entry["Source"], "aws.ssm");
        assert_eq!(entry["Resources"], json!(["a"]));
        assert_eq!(entry["Detail"], "{\"n\":1}");
        assert!(drain(&store, &directory).await);
        assert_eq!(rec.seen.lock().len(), 2);
    }
}
