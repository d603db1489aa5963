//! ListMetrics: the metrics (namespace, name, dimension set) stored for the caller, filtered by
//! namespace, name and dimension filters (a filter without a value matches any value; a metric may
//! have more dimensions than filtered on). Like CloudWatch, only metrics that reported data in the
//! past two weeks are listed, or in the past three hours with `RecentlyActive=PT3H`. A metric published with several units is listed once. Results come 500
//! per page, ordered by namespace, name and dimensions, with an opaque `NextToken`.

use std::collections::BTreeSet;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_tsdb::{MetricStore, SeriesFilter};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::doc::dimensions_value;
use crate::error::{self, InternalError};
use crate::fetch::MetricId;
use crate::token;
use crate::window::{DAY_MS, HOUR_MS};

/// Metrics per ListMetrics page.
pub const PAGE_SIZE: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionFilter {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListMetricsInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Vec<DimensionFilter>,
    next_token: Option<String>,
    recently_active: Option<String>,
    include_linked_accounts: Option<bool>,
    owning_account: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The last metric of the previous page.
    after: MetricId,
    /// Fingerprint of the filters the token was issued for.
    filter: u64,
}

/// ListMetrics.
pub fn list_metrics(
    store: &dyn MetricStore,
    ctx: &RequestContext,
    input: Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let mut filter_doc = input.clone();
    if let Some(m) = filter_doc.as_object_mut() {
        m.remove("NextToken");
    }
    let filter_print = token::fingerprint(&filter_doc);
    let req: ListMetricsInput = serde_json::from_value(input)
        .map_err(|e| error::invalid_value(format!("The request is malformed: {e}")))?;

    let after = match &req.next_token {
        None => None,
        Some(t) => match token::decode::<Cursor>(t) {
            Some(c) if c.filter == filter_print => Some(c.after),
            _ => {
                return Err(error::invalid_value(error::bad_value_message(
                    t,
                    "NextToken",
                )))
            }
        },
    };
    for (i, d) in req.dimensions.iter().enumerate() {
        if req.dimensions[..i].iter().any(|o| o.name == d.name) {
            return Err(error::invalid_value(format!(
                "The dimension name {} is specified more than once in Dimensions.",
                d.name
            )));
        }
    }
    let linked = req.include_linked_accounts.unwrap_or(false);
    let mut page: Vec<MetricId> = Vec::new();
    let mut more = false;
    if req
        .owning_account
        .as_deref()
        .is_none_or(|a| a == ctx.account_id)
    {
        let filter = SeriesFilter {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            namespace: req.namespace.clone(),
            metric_name: req.metric_name.clone(),
            dimensions: req
                .dimensions
                .into_iter()
                .map(|d| (d.name, d.value))
                .collect(),
            // CloudWatch lists only metrics that reported data in the past two weeks.
            written_since_ms: Some(if req.recently_active.is_some() {
                now_ms - 3 * HOUR_MS
            } else {
                now_ms - 14 * DAY_MS
            }),
        };
        let series = store.list_series(&filter).map_err(InternalError::from)?;
        let ids: BTreeSet<MetricId> = series
            .into_iter()
            .map(|s| MetricId::new(s.key.namespace, s.key.metric_name, s.key.dimensions))
            .collect();
        let mut rest = ids
            .into_iter()
            .filter(|id| after.as_ref().is_none_or(|a| id > a));
        page.extend(rest.by_ref().take(PAGE_SIZE));
        more = rest.next().is_some();
    }

    let mut out = Map::new();
    let metrics: Vec<Value> = page
        .iter()
        .map(|id| {
            json!({
                "Namespace": id.namespace,
                "MetricName": id.metric_name,
                "Dimensions": dimensions_value(&id.dimensions),
            })
        })
        .collect();
    if linked {
        out.insert(
            "OwningAccounts".into(),
            json!(vec![ctx.account_id.clone(); metrics.len()]),
        );
    }
    out.insert("Metrics".into(), Value::Array(metrics));
    if more {
        if let Some(last) = page.last() {
            out.insert(
                "NextToken".into(),
                Value::String(token::encode(&Cursor {
                    after: last.clone(),
                    filter: filter_print,
                })),
            );
        }
    }
    Ok(Value::Object(out))
}
