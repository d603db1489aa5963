//! Anomaly detector resources: `PutAnomalyDetector`, `DescribeAnomalyDetectors`,
//! `DeleteAnomalyDetector`.
//!
//! A detector is either a single-metric detector (namespace, metric name, dimensions, statistic —
//! given at the top level, the legacy form, or in `SingleMetricAnomalyDetector`) or a metric-math
//! detector (`MetricMathAnomalyDetector.MetricDataQueries`, exactly one with `ReturnData` true).
//! Detectors live in the control store keyed by account, region and a fingerprint of their
//! identity; putting the same identity again replaces its configuration. `StateValue` is derived
//! from the training data available now: `PENDING_TRAINING` with none, `TRAINED_INSUFFICIENT_DATA`
//! with too little for a model, `TRAINED` otherwise (metric-math detectors report `TRAINED` once
//! created; their bands are not served yet). `MetricTimezone` is stored and reported; training uses
//! UTC hours and days.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use opsloop_tsdb::MetricStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use super::{training_points, Models};
use crate::doc::{as_f64, dimensions_value, secs_to_ms};
use crate::error::{self, InternalError};
use crate::fetch::MetricId;
use crate::stats::Statistic;
use crate::token;

/// Control-store table of detectors.
pub const TABLE: &str = "cloudwatch.anomaly_detectors";
/// Most excluded time ranges in one configuration.
pub const MAX_EXCLUDED_RANGES: usize = 10;
/// Most detectors in one DescribeAnomalyDetectors page.
pub const MAX_RESULTS: usize = 100;

/// A stored detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detector {
    pub metric: Option<MetricId>,
    pub stat: Option<String>,
    /// As given, for metric-math detectors.
    pub queries: Option<Vec<Value>>,
    /// `Configuration`, as given.
    pub configuration: Option<Value>,
    /// `MetricCharacteristics`, as given.
    pub characteristics: Option<Value>,
}

fn prefix(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

/// The store key of a single-metric detector.
pub fn metric_key(account: &str, region: &str, metric: &MetricId, stat: &str) -> String {
    let identity = json!([
        "single",
        metric.namespace,
        metric.metric_name,
        metric.dimensions,
        stat
    ]);
    format!(
        "{}{:016x}",
        prefix(account, region),
        token::fingerprint(&identity)
    )
}

fn math_key(account: &str, region: &str, queries: &[Value]) -> String {
    let identity = json!(["math", queries]);
    format!(
        "{}{:016x}",
        prefix(account, region),
        token::fingerprint(&identity)
    )
}

/// Excluded training ranges `[start, end)` (ms) of the detector for `metric`/`stat`, if any.
pub fn excluded_ranges(
    control: &dyn ControlStore,
    account: &str,
    region: &str,
    metric: &MetricId,
    stat: &str,
) -> Result<Vec<(i64, i64)>, InternalError> {
    let Some(bytes) = control.get(TABLE, &metric_key(account, region, metric, stat))? else {
        return Ok(Vec::new());
    };
    let detector: Detector = serde_json::from_slice(&bytes)
        .map_err(|e| InternalError::Corrupt(format!("anomaly detector: {e}")))?;
    Ok(ranges(detector.configuration.as_ref()))
}

fn ranges(configuration: Option<&Value>) -> Vec<(i64, i64)> {
    configuration
        .and_then(|c| c.get("ExcludedTimeRanges"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|r| {
                    let s = as_f64(r.get("StartTime")?)?;
                    let e = as_f64(r.get("EndTime")?)?;
                    Some((secs_to_ms(s), secs_to_ms(e)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The detector identity named by a Put/Delete input.
enum Identity {
    Metric(MetricId, String),
    Math(Vec<Value>),
}

fn identity(input: &Value) -> Result<Identity, ApiError> {
    let legacy = ["Namespace", "MetricName", "Dimensions", "Stat"]
        .iter()
        .any(|k| input.get(*k).is_some_and(|v| !v.is_null()));
    let single = input
        .get("SingleMetricAnomalyDetector")
        .filter(|v| !v.is_null());
    let math = input
        .get("MetricMathAnomalyDetector")
        .filter(|v| !v.is_null());
    let forms = usize::from(legacy) + usize::from(single.is_some()) + usize::from(math.is_some());
    if forms > 1 {
        return Err(error::combination(
            "Only one of the parameters SingleMetricAnomalyDetector, MetricMathAnomalyDetector, or Namespace, MetricName, Dimensions and Stat can be specified.",
        ));
    }
    if let Some(math) = math {
        let queries = math
            .get("MetricDataQueries")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if queries.is_empty() {
            return Err(error::missing(
                "MetricMathAnomalyDetector.MetricDataQueries",
            ));
        }
        let returning = queries
            .iter()
            .filter(|q| q.get("ReturnData").and_then(Value::as_bool).unwrap_or(true))
            .count();
        if returning != 1 {
            return Err(error::invalid_value(
                "Exactly one element of the MetricDataQueries list must return data.",
            ));
        }
        return Ok(Identity::Math(queries));
    }
    let src = single.unwrap_or(input);
    let at = |f: &str| {
        if single.is_some() {
            format!("SingleMetricAnomalyDetector.{f}")
        } else {
            f.to_string()
        }
    };
    let text = |f: &str| src.get(f).and_then(Value::as_str).map(str::to_string);
    let namespace = text("Namespace").ok_or_else(|| error::missing(&at("Namespace")))?;
    let name = text("MetricName").ok_or_else(|| error::missing(&at("MetricName")))?;
    let stat = text("Stat").ok_or_else(|| error::missing(&at("Stat")))?;
    if Statistic::parse(&stat).is_none() {
        return Err(error::invalid_value(error::bad_value_message(
            &stat,
            &at("Stat"),
        )));
    }
    Ok(Identity::Metric(
        MetricId::new(
            namespace,
            name,
            crate::doc::dimensions_of(src.get("Dimensions")),
        ),
        stat,
    ))
}

fn key_of(ctx: &RequestContext, id: &Identity) -> String {
    match id {
        Identity::Metric(m, stat) => metric_key(&ctx.account_id, &ctx.region, m, stat),
        Identity::Math(q) => math_key(&ctx.account_id, &ctx.region, q),
    }
}

/// Store `detector` under `key` unless a detector already exists there (alarms create detectors
/// implicitly this way).
pub fn ensure(
    control: &dyn ControlStore,
    account: &str,
    region: &str,
    metric: &MetricId,
    stat: &str,
) -> Result<(), InternalError> {
    let key = metric_key(account, region, metric, stat);
    if control.get(TABLE, &key)?.is_none() {
        let d = Detector {
            metric: Some(metric.clone()),
            stat: Some(stat.to_string()),
            queries: None,
            configuration: None,
            characteristics: None,
        };
        let bytes = serde_json::to_vec(&d).map_err(|e| InternalError::Corrupt(e.to_string()))?;
        control.put(TABLE, &key, &bytes)?;
    }
    Ok(())
}

/// PutAnomalyDetector.
pub fn put(
    control: &dyn ControlStore,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let id = identity(&input)?;
    let configuration = input.get("Configuration").filter(|v| !v.is_null()).cloned();
    if let Some(cfg) = &configuration {
        let list = cfg.get("ExcludedTimeRanges").and_then(Value::as_array);
        if list.is_some_and(|l| l.len() > MAX_EXCLUDED_RANGES) {
            return Err(error::invalid_value(format!(
                "The parameter Configuration.ExcludedTimeRanges must not contain more than {MAX_EXCLUDED_RANGES} ranges."
            )));
        }
        for (i, r) in list.into_iter().flatten().enumerate() {
            let s = r.get("StartTime").and_then(as_f64);
            let e = r.get("EndTime").and_then(as_f64);
            match (s, e) {
                (Some(s), Some(e)) if s < e => {}
                _ => {
                    return Err(error::invalid_value(format!(
                        "The parameter Configuration.ExcludedTimeRanges.member.{}.StartTime must be before EndTime.",
                        i + 1
                    )))
                }
            }
        }
    }
    let detector = match &id {
        Identity::Metric(m, stat) => Detector {
            metric: Some(m.clone()),
            stat: Some(stat.clone()),
            queries: None,
            configuration,
            characteristics: input
                .get("MetricCharacteristics")
                .filter(|v| !v.is_null())
                .cloned(),
        },
        Identity::Math(q) => Detector {
            metric: None,
            stat: None,
            queries: Some(q.clone()),
            configuration,
            characteristics: input
                .get("MetricCharacteristics")
                .filter(|v| !v.is_null())
                .cloned(),
        },
    };
    let bytes = serde_json::to_vec(&detector).map_err(|e| InternalError::Corrupt(e.to_string()))?;
    control
        .put(TABLE, &key_of(ctx, &id), &bytes)
        .map_err(InternalError::from)?;
    Ok(json!({}))
}

/// DeleteAnomalyDetector.
pub fn delete(
    control: &dyn ControlStore,
    models: &Models,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let id = identity(&input)?;
    if !control
        .delete(TABLE, &key_of(ctx, &id))
        .map_err(InternalError::from)?
    {
        return Err(ApiError::new(
            error::NOT_FOUND,
            "The anomaly detection model does not exist.",
        ));
    }
    models.clear();
    Ok(json!({}))
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    after: String,
    request: u64,
}

/// DescribeAnomalyDetectors.
pub fn describe(
    control: &dyn ControlStore,
    store: &dyn MetricStore,
    ctx: &RequestContext,
    input: Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let mut print = input.clone();
    if let Some(m) = print.as_object_mut() {
        m.remove("NextToken");
    }
    let request = token::fingerprint(&print);
    let after = match input.get("NextToken").and_then(Value::as_str) {
        None => None,
        Some(t) => Some(
            token::decode::<Cursor>(t)
                .filter(|c| c.request == request)
                .ok_or_else(|| {
                    ApiError::new(error::INVALID_NEXT_TOKEN, "The NextToken is invalid.")
                })?
                .after,
        ),
    };
    let max = match input.get("MaxResults").and_then(Value::as_i64) {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(error::invalid_value(error::bad_value_message(
                &n.to_string(),
                "MaxResults",
            )))
        }
    };
    let types: Vec<&str> = input
        .get("AnomalyDetectorTypes")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .filter(|l: &Vec<&str>| !l.is_empty())
        .unwrap_or_else(|| vec!["SINGLE_METRIC"]);
    let namespace = input.get("Namespace").and_then(Value::as_str);
    let name = input.get("MetricName").and_then(Value::as_str);
    let dims = crate::doc::dimensions_of(input.get("Dimensions"));
    if (namespace.is_some() || name.is_some() || !dims.is_empty()) && types.contains(&"METRIC_MATH")
    {
        return Err(error::combination(
            "The parameters Namespace, MetricName and Dimensions cannot be combined with the METRIC_MATH detector type.",
        ));
    }
    let rows = control
        .scan(
            TABLE,
            &prefix(&ctx.account_id, &ctx.region),
            after.as_deref(),
            usize::MAX,
        )
        .map_err(InternalError::from)?;
    let mut out = Vec::new();
    let mut next = None;
    for (key, bytes) in rows {
        let d: Detector = serde_json::from_slice(&bytes)
            .map_err(|e| InternalError::Corrupt(format!("anomaly detector: {e}")))?;
        let keep = match &d.metric {
            Some(m) => {
                types.contains(&"SINGLE_METRIC")
                    && namespace.is_none_or(|n| n == m.namespace)
                    && name.is_none_or(|n| n == m.metric_name)
                    && dims.iter().all(|d| m.dimensions.contains(d))
            }
            None => types.contains(&"METRIC_MATH"),
        };
        if !keep {
            continue;
        }
        if out.len() == max {
            next = Some(token::encode(&Cursor {
                after: last_key(&out),
                request,
            }));
            break;
        }
        out.push((key, render(&d, store, ctx, now_ms)?));
    }
    let mut doc = Map::new();
    doc.insert(
        "AnomalyDetectors".into(),
        Value::Array(out.into_iter().map(|(_, v)| v).collect()),
    );
    if let Some(t) = next {
        doc.insert("NextToken".into(), json!(t));
    }
    Ok(Value::Object(doc))
}

fn last_key(items: &[(String, Value)]) -> String {
    items.last().map(|(k, _)| k.clone()).unwrap_or_default()
}

fn render(
    d: &Detector,
    store: &dyn MetricStore,
    ctx: &RequestContext,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let mut doc = Map::new();
    let state = match (&d.metric, &d.stat) {
        (Some(m), Some(stat)) => {
            doc.insert("Namespace".into(), json!(m.namespace));
            doc.insert("MetricName".into(), json!(m.metric_name));
            doc.insert("Dimensions".into(), dimensions_value(&m.dimensions));
            doc.insert("Stat".into(), json!(stat));
            doc.insert(
                "SingleMetricAnomalyDetector".into(),
                json!({
                    "AccountId": ctx.account_id,
                    "Namespace": m.namespace,
                    "MetricName": m.metric_name,
                    "Dimensions": dimensions_value(&m.dimensions),
                    "Stat": stat,
                }),
            );
            let points = training_points(store, &ctx.account_id, &ctx.region, m, stat, 60, now_ms)?;
            if points.is_empty() {
                "PENDING_TRAINING"
            } else if points.len() < super::model::MIN_POINTS {
                "TRAINED_INSUFFICIENT_DATA"
            } else {
                "TRAINED"
            }
        }
        _ => {
            doc.insert(
                "MetricMathAnomalyDetector".into(),
                json!({ "MetricDataQueries": d.queries.clone().unwrap_or_default() }),
            );
            "TRAINED"
        }
    };
    if let Some(c) = &d.configuration {
        doc.insert("Configuration".into(), c.clone());
    }
    if let Some(c) = &d.characteristics {
        doc.insert("MetricCharacteristics".into(), c.clone());
    }
    doc.insert("StateValue".into(), json!(state));
    Ok(Value::Object(doc))
}
