//! CloudWatch metrics service logic behind the AWS `monitoring` API: PutMetricData,
//! GetMetricStatistics, GetMetricData (with metric math), ListMetrics and resource tags. Every
//! other operation of the model answers `NotImplemented` (HTTP 501) until its feature lands.
//!
//! Architecture: the wire layer decodes each protocol into the protocol-neutral document and calls
//! [`CloudWatch`] through [`opsloop_core::Service`]; datapoints go to an [`opsloop_tsdb::MetricStore`],
//! control-plane state (tags) to an [`opsloop_store::ControlStore`]. Reads run on the blocking pool,
//! since aggregation is CPU-bound.

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

use opsloop_core::{ApiError, BoxFuture, RequestContext, Service, ValidationFailure, Value};
use opsloop_store::ControlStore;
use opsloop_tsdb::MetricStore;
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
        CloudWatch {
            metrics,
            control,
            registry: Arc::new(NoResources),
        }
    }

    /// Use `registry` to decide whether taggable resources exist.
    pub fn with_registry(mut self, registry: Arc<dyn ResourceRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let now_ms = received_ms(ctx);
        match ctx.operation.as_str() {
            "PutMetricData" => {
                let batch = put::parse(ctx, input, now_ms)?;
                tracing::debug!(
                    series = batch.writes.len(),
                    datapoints = batch.datapoints,
                    "put metric data"
                );
                self.metrics
                    .write(batch.writes)
                    .await
                    .map_err(InternalError::from)?;
                Ok(json!({}))
            }
            "GetMetricStatistics" => {
                let (store, ctx) = (self.metrics.clone(), ctx.clone());
                blocking(move || get_stats::get_metric_statistics(&*store, &ctx, input, now_ms))
                    .await
            }
            "GetMetricData" => {
                let (store, ctx) = (self.metrics.clone(), ctx.clone());
                blocking(move || get_data::get_metric_data(&*store, &ctx, input, now_ms)).await
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
