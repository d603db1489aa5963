//! CloudWatch service logic behind the AWS `monitoring` API: metrics (PutMetricData,
//! GetMetricStatistics, GetMetricData with metric math, ListMetrics), alarms (metric, metric-math,
//! anomaly-detection and composite alarms with their history, actions and events), anomaly
//! detectors and resource tags. Every other operation of the model answers `NotImplemented`
//! (HTTP 501) until its feature lands.
//!
//! Architecture: the wire layer decodes each protocol into the protocol-neutral document and calls
//! [`CloudWatch`] through [`opsloop_core::Service`]; datapoints go to an [`opsloop_tsdb::MetricStore`],
//! control-plane state (alarms, history, the action outbox, detectors, tags) to an
//! [`opsloop_store::ControlStore`]. Reads run on the blocking pool, since aggregation is CPU-bound.
//! Alarm actions reach other services through an [`opsloop_core::Directory`].
//!
//! Embedding: `CloudWatch::new(metrics, control)`, then optionally `.with_directory(dir)` (alarm
//! actions and events) and `.with_clock(clock)` (tests); call [`CloudWatch::start`] inside the
//! tokio runtime to run the alarm engine's background tasks (with the system clock it also starts
//! by itself on the first request), and [`CloudWatch::reload`] after the stores were wiped.

pub mod alarms;
pub mod anomaly;
mod doc;
pub mod error;
pub mod fetch;
pub mod get_data;
pub mod get_stats;
pub mod list;
pub mod math;
pub mod put;
pub mod stats;
pub mod tags;
pub mod token;
pub mod window;

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use alarms::{AlarmResources, Alarms};
use anomaly::Models;
use opsloop_core::{
    ApiError, BoxFuture, Directory, RequestContext, Service, ValidationFailure, Value,
};
use opsloop_store::ControlStore;
use opsloop_tsdb::{Clock, MetricStore};
use serde_json::json;

pub use error::InternalError;
pub use tags::{NoResources, ResourceArn, ResourceKind, ResourceRegistry};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/cloudwatch-2010-08-01.json");

/// The CloudWatch service.
pub struct CloudWatch {
    metrics: Arc<dyn MetricStore>,
    control: Arc<dyn ControlStore>,
    registry: Arc<dyn ResourceRegistry>,
    alarms: Arc<Alarms>,
    models: Arc<Models>,
    /// Start the alarm engine on the first request (true unless a test clock was installed).
    autostart: bool,
}

/// Milliseconds since the epoch at which the request was received.
fn received_ms(ctx: &RequestContext) -> i64 {
    ctx.received_at
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Run CPU-bound work off the async executor when there is one.
async fn blocking<F>(f: F) -> Result<Value, ApiError>
where
    F: FnOnce() -> Result<Value, ApiError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(InternalError::from)?,
        Err(_) => f(),
    }
}

impl CloudWatch {
    /// A service over the given stores. No taggable resources exist until a registry is plugged in
    /// with [`CloudWatch::with_registry`].
    pub fn new(metrics: Arc<dyn MetricStore>, control: Arc<dyn ControlStore>) -> Self {
        let models = Arc::new(Models::new(control.clone()));
        let alarms = Arc::new(Alarms::new(
            metrics.clone(),
            control.clone(),
            models.clone(),
        ));
        let registry = Arc::new(AlarmResources {
            alarms: alarms.clone(),
            others: Arc::new(NoResources),
        });
        CloudWatch {
            metrics,
            control,
            registry,
            alarms,
            models,
            autostart: true,
        }
    }

    /// Use `registry` to decide whether taggable resources other than alarms exist (alarms are
    /// always answered by the alarms feature).
    pub fn with_registry(mut self, registry: Arc<dyn ResourceRegistry>) -> Self {
        self.registry = Arc::new(AlarmResources {
            alarms: self.alarms.clone(),
            others: registry,
        });
        self
    }

    /// Deliver alarm actions (SNS, SSM, Incident Manager) and state-change events (EventBridge)
    /// through `directory`.
    pub fn with_directory(self, directory: Arc<Directory>) -> Self {
        self.alarms.set_directory(directory);
        self
    }

    /// Use `clock` (ms since the epoch) for alarm evaluation and timestamps. The background engine
    /// then only runs when [`CloudWatch::start`] is called; tests drive it through [`CloudWatch::alarms`].
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.alarms.set_clock(clock);
        self.autostart = false;
        self
    }

    /// Start the alarm engine's background tasks (arrival-triggered evaluation, the 10-second
    /// evaluation clock, the action dispatcher) on the current tokio runtime. Idempotent.
    pub fn start(&self) {
        Alarms::start(&self.alarms);
    }

    /// Drop in-memory alarm state and reload it from the stores (call after wiping them).
    pub fn reload(&self) -> Result<(), InternalError> {
        self.alarms.reload()
    }

    /// The alarms feature, for driving evaluation and delivery by hand.
    pub fn alarms(&self) -> &Arc<Alarms> {
        &self.alarms
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let now_ms = received_ms(ctx);
        if self.autostart && !self.alarms.is_started() {
            self.start();
        }
        if Alarms::handles(&ctx.operation) {
            return self.alarms.handle(ctx, input).await;
        }
        match ctx.operation.as_str() {
            "PutMetricData" => {
                let batch = put::parse(ctx, input, now_ms)?;
                tracing::debug!(
                    series = batch.writes.len(),
                    datapoints = batch.datapoints,
                    "put metric data"
                );
                let watchers = self.alarms.watchers(&batch.writes);
                self.metrics
                    .write(batch.writes)
                    .await
                    .map_err(InternalError::from)?;
                if !watchers.is_empty() {
                    self.alarms.queue(watchers);
                }
                Ok(json!({}))
            }
            "GetMetricStatistics" => {
                let (store, ctx) = (self.metrics.clone(), ctx.clone());
                blocking(move || get_stats::get_metric_statistics(&*store, &ctx, input, now_ms))
                    .await
            }
            "GetMetricData" => {
                let (store, ctx, models) = (self.metrics.clone(), ctx.clone(), self.models.clone());
                blocking(move || {
                    get_data::get_metric_data_with(&*store, &ctx, input, now_ms, &models)
                })
                .await
            }
            "PutAnomalyDetector" => {
                let result = anomaly::detectors::put(&*self.control, ctx, input);
                self.models.clear();
                result
            }
            "DeleteAnomalyDetector" => {
                anomaly::detectors::delete(&*self.control, &self.models, ctx, input)
            }
            "DescribeAnomalyDetectors" => {
                let (store, control, ctx) =
                    (self.metrics.clone(), self.control.clone(), ctx.clone());
                blocking(move || {
                    anomaly::detectors::describe(&*control, &*store, &ctx, input, now_ms)
                })
                .await
            }
            "ListMetrics" => {
                let (store, ctx) = (self.metrics.clone(), ctx.clone());
                blocking(move || list::list_metrics(&*store, &ctx, input, now_ms)).await
            }
            "TagResource" => tags::tag_resource(&*self.control, &*self.registry, ctx, input),
            "UntagResource" => tags::untag_resource(&*self.control, &*self.registry, ctx, input),
            "ListTagsForResource" => tags::list_tags(&*self.control, &*self.registry, ctx, input),
            other => Err(not_implemented(other)),
        }
    }
}

/// The answer to an operation this release does not implement.
pub fn not_implemented(operation: &str) -> ApiError {
    ApiError::with_status(
        "NotImplemented",
        501,
        format!("Operation {operation} is not implemented by this opsloop release."),
    )
}

impl Service for CloudWatch {
    fn model_json(&self) -> &'static str {
        MODEL_JSON
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(self.handle(ctx, input))
    }

    fn validation_error(&self, failure: &ValidationFailure) -> ApiError {
        match failure {
            ValidationFailure::Missing { path } => error::missing(path),
            ValidationFailure::Invalid { path, reason } => {
                error::invalid_value(format!("The parameter {path} is invalid: {reason}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_the_cloudwatch_model() {
        let model: Value = serde_json::from_str(MODEL_JSON).unwrap();
        assert_eq!(model["metadata"]["serviceId"], "CloudWatch");
    }

    #[test]
    fn not_implemented_is_a_501() {
        let e = not_implemented("PutDashboard");
        assert_eq!(e.status, Some(501));
        assert!(e.message.contains("PutDashboard"));
    }
}
