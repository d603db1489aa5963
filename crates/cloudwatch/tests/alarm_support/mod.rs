//! Test support for the alarm tests: a service over the in-memory metric store double with a
//! hand-driven clock, fake peer services in a [`Directory`] that record what they receive, and
//! helpers to publish datapoints, evaluate and deliver without any sleeping.

#![allow(dead_code, unused_imports)]

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use opsloop_cloudwatch::CloudWatch;
use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::{ControlStore, SqliteStore};
use opsloop_tsdb::MetricStore;
use parking_lot::Mutex;
use serde_json::json;

#[path = "../common/mod.rs"]
pub mod common;

pub use common::{expect_err, wall_ms, MemStore, ACCOUNT, REGION};

/// A peer service that records every call and answers with `answer` (or fails when `failing`).
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<(String, Value)>>,
    pub failing: AtomicBool,
}

impl Recorder {
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().clone()
    }
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
        self.calls.lock().push((ctx.operation.clone(), input));
        let failing = self.failing.load(Ordering::Relaxed);
        Box::pin(async move {
            if failing {
                Err(ApiError::new("NotFound", "Topic does not exist"))
            } else {
                Ok(json!({"MessageId": "00000000-0000-0000-0000-000000000001"}))
            }
        })
    }
}

/// A service, its stores, a clock and recording peers (SNS and EventBridge; no SSM).
pub struct Harness {
    pub svc: CloudWatch,
    pub store: Arc<MemStore>,
    pub control: Arc<dyn ControlStore>,
    pub clock: Arc<AtomicI64>,
    pub directory: Arc<Directory>,
    pub sns: Arc<Recorder>,
    pub events: Arc<Recorder>,
}

/// A minute boundary shortly before the wall clock (so published timestamps are accepted).
pub fn base_time() -> i64 {
    let now = wall_ms();
    now - now.rem_euclid(3_600_000) - 3_600_000
}

impl Harness {
    pub fn new() -> Harness {
        let control: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
        Harness::over(
            Arc::new(MemStore::default()),
            control,
            Arc::new(AtomicI64::new(base_time())),
        )
    }

    /// A service over existing stores and clock (a "restart").
    pub fn over(
        store: Arc<MemStore>,
        control: Arc<dyn ControlStore>,
        clock: Arc<AtomicI64>,
    ) -> Harness {
        let directory = Directory::new();
        let sns = Arc::new(Recorder::default());
        let events = Arc::new(Recorder::default());
        directory.insert("SNS", sns.clone());
        directory.insert("EventBridge", events.clone());
        let c = clock.clone();
        let svc = CloudWatch::new(store.clone() as Arc<dyn MetricStore>, control.clone())
            .with_directory(directory.clone())
            .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
        Harness {
            svc,
            store,
            control,
            clock,
            directory,
            sns,
            events,
        }
    }

    /// The same stores and clock behind a new service instance.
    pub fn restart(&self) -> Harness {
        Harness::over(self.store.clone(), self.control.clone(), self.clock.clone())
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn set_time(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    pub async fn call(&self, op: &str, input: Value) -> Result<Value, ApiError> {
        self.svc
            .call(&RequestContext::internal(ACCOUNT, REGION, op), input)
            .await
    }

    pub async fn ok(&self, op: &str, input: Value) -> Value {
        match self.call(op, input).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {}: {}", e.kind, e.message),
        }
    }

    /// Publish one datapoint of `metric` in namespace `NS` (no dimensions) at `ts_ms`.
    pub async fn put(&self, metric: &str, value: f64, ts_ms: i64) {
        self.put_with(metric, &[], value, ts_ms, "None").await;
    }

    pub async fn put_with(
        &self,
        metric: &str,
        dims: &[(&str, &str)],
        value: f64,
        ts_ms: i64,
        unit: &str,
    ) {
        let dims: Vec<Value> = dims
            .iter()
            .map(|(n, v)| json!({"Name": n, "Value": v}))
            .collect();
        self.ok(
            "PutMetricData",
            json!({"Namespace": "NS", "MetricData": [{
                "MetricName": metric, "Dimensions": dims, "Value": value,
                "Timestamp": ts_ms as f64 / 1000.0, "Unit": unit, "StorageResolution": 1}]}),
        )
        .await;
    }

    /// Run the queued (arrival-triggered) evaluations, then deliver the outbox.
    pub async fn settle(&self) -> usize {
        let n = self.svc.alarms().run_pending().await;
        self.svc.alarms().dispatch().await;
        n
    }

    /// One clock tick at the current time, then deliver the outbox.
    pub async fn tick(&self) -> usize {
        let n = self.svc.alarms().tick_at(self.now());
        self.svc.alarms().dispatch().await;
        n
    }

    pub async fn describe(&self, name: &str) -> Value {
        let out = self
            .ok(
                "DescribeAlarms",
                json!({"AlarmNames": [name], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}),
            )
            .await;
        out["MetricAlarms"]
            .as_array()
            .into_iter()
            .chain(out["CompositeAlarms"].as_array())
            .flatten()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("alarm {name} not found"))
    }

    pub async fn state(&self, name: &str) -> String {
        self.describe(name).await["StateValue"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn history(&self, name: &str, item_type: Option<&str>) -> Vec<Value> {
        let mut input =
            json!({"AlarmName": name, "ScanBy": "TimestampAscending", "MaxRecords": 100});
        if let Some(t) = item_type {
            input["HistoryItemType"] = json!(t);
        }
        self.ok("DescribeAlarmHistory", input).await["AlarmHistoryItems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A single-metric alarm on `NS`/`metric` with the given extra fields.
    pub async fn alarm(&self, name: &str, metric: &str, extra: Value) {
        let mut input = json!({
            "AlarmName": name, "Namespace": "NS", "MetricName": metric, "Statistic": "Maximum",
            "Period": 60, "EvaluationPeriods": 1, "Threshold": 10.0,
            "ComparisonOperator": "GreaterThanThreshold",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            if v.is_null() {
                input.as_object_mut().unwrap().remove(k);
            } else {
                input[k] = v.clone();
            }
        }
        self.ok("PutMetricAlarm", input).await;
    }
}

/// `arn:aws:sns:us-east-1:123456789012:<topic>`.
pub fn topic(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
}

pub fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
}
