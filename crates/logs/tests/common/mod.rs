//! Shared helpers of the integration tests: a service over a temporary data directory with a
//! settable clock, and a one-line operation call.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, Value};
use opsloop_logs::Logs;
use opsloop_store::{ControlStore, SqliteStore};
use serde_json::json;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// 2026-11-21 19:00:00 UTC.
pub const T0: i64 = 1_795_287_600_000;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub control: Arc<dyn ControlStore>,
    pub clock: Arc<AtomicI64>,
    pub logs: Arc<Logs>,
}

pub fn open(dir: &Path, control: Arc<dyn ControlStore>, clock: Arc<AtomicI64>) -> Logs {
    let c = clock.clone();
    Logs::open(dir, control)
        .unwrap()
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)))
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let control: Arc<dyn ControlStore> =
            Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let clock = Arc::new(AtomicI64::new(T0));
        let logs = Arc::new(open(dir.path(), control.clone(), clock.clone()));
        Env {
            dir,
            control,
            clock,
            logs,
        }
    }

    /// An environment whose service calls peers through `directory`.
    pub fn with_directory(directory: Arc<opsloop_core::Directory>) -> Env {
        let mut env = Env::new();
        env.logs.close();
        let c = env.clock.clone();
        env.logs = Arc::new(
            Logs::open(env.dir.path(), env.control.clone())
                .unwrap()
                .with_clock(Arc::new(move || c.load(Ordering::SeqCst)))
                .with_directory(directory),
        );
        env
    }

    /// Drop the service without a clean close (as a crash would) and open a new one over the same
    /// directory and control store, calling peers through `directory`.
    pub fn crash_and_reopen(&mut self, directory: Arc<opsloop_core::Directory>) {
        self.logs.store().abandon();
        let c = self.clock.clone();
        self.logs = Arc::new(
            Logs::open(self.dir.path(), self.control.clone())
                .unwrap()
                .with_clock(Arc::new(move || c.load(Ordering::SeqCst)))
                .with_directory(directory),
        );
    }

    /// Close the service and open a new one over the same directory.
    pub fn reopen(&mut self) {
        self.logs.close();
        self.logs = Arc::new(open(
            self.dir.path(),
            self.control.clone(),
            self.clock.clone(),
        ));
    }

    pub fn set_now(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    pub async fn call(&self, op: &str, input: Value) -> Result<Value, ApiError> {
        let ctx = RequestContext::internal(ACCOUNT, REGION, op);
        self.logs.handle(&ctx, input).await
    }

    pub async fn ok(&self, op: &str, input: Value) -> Value {
        match self.call(op, input.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{op} {input} failed: {e}"),
        }
    }

    pub async fn err(&self, op: &str, input: Value) -> ApiError {
        match self.call(op, input.clone()).await {
            Ok(v) => panic!("{op} {input} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    /// Create a group and a stream.
    pub async fn stream(&self, group: &str, stream: &str) {
        let _ = self
            .call("CreateLogGroup", serde_json::json!({"logGroupName": group}))
            .await;
        self.ok(
            "CreateLogStream",
            serde_json::json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await;
    }

    /// Put `(timestamp, message)` events.
    pub async fn put(&self, group: &str, stream: &str, events: &[(i64, String)]) -> Value {
        let list: Vec<Value> = events
            .iter()
            .map(|(t, m)| serde_json::json!({"timestamp": t, "message": m}))
            .collect();
        self.ok(
            "PutLogEvents",
            serde_json::json!({"logGroupName": group, "logStreamName": stream, "logEvents": list}),
        )
        .await
    }
}

/// Messages of an events list.
pub fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

/// An EventBridge stand-in recording PutEvents entries; fails while `failing` is set.
#[derive(Default)]
pub struct Recorder {
    pub entries: parking_lot::Mutex<Vec<Value>>,
    pub failing: std::sync::atomic::AtomicBool,
}

impl Service for Recorder {
    fn model_json(&self) -> &'static str {
        r#"{"metadata":{"serviceId":"EventBridge"},"operations":{},"shapes":{}}"#
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            assert_eq!(ctx.operation, "PutEvents");
            if self.failing.load(Ordering::SeqCst) {
                return Err(ApiError::with_status("InternalException", 500, "down"));
            }
            let entries = input["Entries"].as_array().unwrap().clone();
            let n = entries.len();
            self.entries.lock().extend(entries);
            Ok(
                json!({"FailedEntryCount": 0, "Entries": (0..n).map(|i| json!({"EventId": i.to_string()})).collect::<Vec<_>>()}),
            )
        })
    }
}

impl Recorder {
    pub fn payloads(&self) -> Vec<Value> {
        self.entries
            .lock()
            .iter()
            .map(|e| serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap())
            .collect()
    }

    pub fn data_messages(&self) -> Vec<Value> {
        self.payloads()
            .into_iter()
            .filter(|p| p["messageType"] == "DATA_MESSAGE")
            .collect()
    }
}

impl Recorder {
    /// An environment whose EventBridge peer is a fresh recorder.
    pub fn env() -> (Env, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let dir = opsloop_core::Directory::new();
        dir.insert("EventBridge", rec.clone());
        (Env::with_directory(dir), rec)
    }
}
