//! Log anomaly detectors as stored configuration: CreateLogAnomalyDetector, GetLogAnomalyDetector,
//! ListLogAnomalyDetectors, UpdateLogAnomalyDetector, DeleteLogAnomalyDetector, and ListAnomalies /
//! UpdateAnomaly.
//!
//! opsloop does not train log-pattern models: detectors are kept and described (status
//! `INITIALIZING`, as a new AWS detector that has not yet seen enough data), and no anomaly is ever
//! found, so ListAnomalies answers an empty list and UpdateAnomaly a ResourceNotFoundException for
//! any anomaly or pattern id.
//!
//! Keys: table `logs.detectors`, `{account}/{region}/{detector id}`.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_bool, opt_i64, opt_str, req_str, store_err};
use crate::records::{self, key};

const TABLE: &str = "logs.detectors";
const MAX_DETECTORS: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Detector {
    id: String,
    arn: String,
    name: Option<String>,
    groups: Vec<String>,
    frequency: Option<String>,
    pattern: Option<String>,
    visibility_days: Option<i64>,
    kms_key_id: Option<String>,
    enabled: bool,
    created: i64,
    modified: i64,
}

fn detector_json(d: &Detector) -> Value {
    let mut v = json!({
        "anomalyDetectorArn": d.arn, "logGroupArnList": d.groups,
        "anomalyDetectorStatus": if d.enabled { "INITIALIZING" } else { "PAUSED" },
        "creationTimeStamp": d.created, "lastModifiedTimeStamp": d.modified,
    });
    for (k, val) in [
        ("detectorName", &d.name),
        ("evaluationFrequency", &d.frequency),
        ("filterPattern", &d.pattern),
        ("kmsKeyId", &d.kms_key_id),
    ] {
        if let Some(x) = val {
            v[k] = json!(x);
        }
    }
    if let Some(days) = d.visibility_days {
        v["anomalyVisibilityTime"] = json!(days);
    }
    v
}

fn id_of(ctx: &RequestContext, arn: &str) -> Result<String, ApiError> {
    let prefix = records::arn(ctx, "anomaly-detector", "");
    arn.strip_prefix(&prefix)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| error::not_found(format!("Anomaly detector {arn} does not exist.")))
}

fn load(store: &dyn ControlStore, ctx: &RequestContext, arn: &str) -> Result<Detector, ApiError> {
    let id = id_of(ctx, arn)?;
    records::get(store, TABLE, &key(ctx, &id))?
        .ok_or_else(|| error::not_found(format!("Anomaly detector {arn} does not exist.")))
}

fn visibility(input: &Value) -> Result<Option<i64>, ApiError> {
    match opt_i64(input, "anomalyVisibilityTime") {
        Some(d) if !(7..=90).contains(&d) => Err(error::invalid(
            "anomalyVisibilityTime must be between 7 and 90 days.",
        )),
        other => Ok(other),
    }
}

fn pattern(input: &Value) -> Result<Option<String>, ApiError> {
    match opt_str(input, "filterPattern") {
        Some(p) => {
            crate::pattern::Pattern::parse(p)?;
            Ok(Some(p.to_string()))
        }
        None => Ok(None),
    }
}

pub fn handle(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "CreateLogAnomalyDetector" => {
            let groups = error::str_list(input, "logGroupArnList");
            if groups.len() != 1 {
                return Err(error::invalid(
                    "logGroupArnList must name exactly one log group.",
                ));
            }
            for g in &groups {
                let name = crate::groups::group_from_arn(ctx, g)?;
                crate::groups::load_group(store, ctx, &name)?;
            }
            if records::all::<Detector>(store, TABLE, &key(ctx, ""))?.len() >= MAX_DETECTORS {
                return Err(error::limit_exceeded(
                    "An account can have at most 500 anomaly detectors.",
                ));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let d = Detector {
                arn: records::arn(ctx, "anomaly-detector", &id),
                id: id.clone(),
                name: opt_str(input, "detectorName").map(str::to_string),
                groups,
                frequency: opt_str(input, "evaluationFrequency").map(str::to_string),
                pattern: pattern(input)?,
                visibility_days: visibility(input)?,
                kms_key_id: opt_str(input, "kmsKeyId").map(str::to_string),
                enabled: true,
                created: now_ms,
                modified: now_ms,
            };
            records::put(store, TABLE, &key(ctx, &id), &d)?;
            Ok(json!({"anomalyDetectorArn": d.arn}))
        }
        "GetLogAnomalyDetector" => {
            let d = load(store, ctx, req_str(input, "anomalyDetectorArn")?)?;
            let mut v = detector_json(&d);
            if let Some(o) = v.as_object_mut() {
                o.remove("anomalyDetectorArn");
            }
            Ok(v)
        }
        "ListLogAnomalyDetectors" => {
            let limit = records::limit(input, 50, 50)?;
            let group = opt_str(input, "filterLogGroupArn").map(str::to_string);
            let (list, token) =
                records::page::<Detector>(store, TABLE, &key(ctx, ""), input, limit, &|d| {
                    group.as_ref().is_none_or(|g| d.groups.contains(g))
                })?;
            let mut out =
                json!({"anomalyDetectors": list.iter().map(detector_json).collect::<Vec<_>>()});
            if let Some(t) = token {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        }
        "UpdateLogAnomalyDetector" => {
            let mut d = load(store, ctx, req_str(input, "anomalyDetectorArn")?)?;
            d.enabled =
                opt_bool(input, "enabled").ok_or_else(|| error::invalid("enabled is required."))?;
            if let Some(f) = opt_str(input, "evaluationFrequency") {
                d.frequency = Some(f.to_string());
            }
            if let Some(p) = pattern(input)? {
                d.pattern = Some(p);
            }
            if let Some(v) = visibility(input)? {
                d.visibility_days = Some(v);
            }
            d.modified = now_ms;
            records::put(store, TABLE, &key(ctx, &d.id), &d)?;
            Ok(json!({}))
        }
        "DeleteLogAnomalyDetector" => {
            let d = load(store, ctx, req_str(input, "anomalyDetectorArn")?)?;
            store.delete(TABLE, &key(ctx, &d.id)).map_err(store_err)?;
            Ok(json!({}))
        }
        "ListAnomalies" => {
            records::limit(input, 50, 50)?;
            if let Some(arn) = opt_str(input, "anomalyDetectorArn") {
                load(store, ctx, arn)?;
            }
            Ok(json!({"anomalies": []}))
        }
        "UpdateAnomaly" => {
            load(store, ctx, req_str(input, "anomalyDetectorArn")?)?;
            let (a, p) = (opt_str(input, "anomalyId"), opt_str(input, "patternId"));
            if a.is_none() && p.is_none() {
                return Err(error::invalid("Either anomalyId or patternId is required."));
            }
            Err(error::not_found(format!(
                "Anomaly or pattern {} does not exist: this detector has found no anomalies.",
                a.or(p).unwrap_or_default()
            )))
        }
        other => Err(crate::not_implemented(other)),
    }
}
