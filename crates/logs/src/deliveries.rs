//! Vended-log deliveries as stored configuration: delivery sources (PutDeliverySource …),
//! delivery destinations with their policies (PutDeliveryDestination …), deliveries linking the
//! two (CreateDelivery, GetDelivery, DescribeDeliveries, UpdateDeliveryConfiguration,
//! DeleteDelivery) and DescribeConfigurationTemplates.
//!
//! These records describe where AWS services' vended logs should go; opsloop runs none of those
//! services, so nothing produces vended logs here: the records are kept, checked for consistency
//! (a delivery needs an existing source and destination; a source or destination in use cannot be
//! deleted; one delivery per source and destination) and described, as AWS does. There are no
//! configuration templates (no vended-log sources exist), so DescribeConfigurationTemplates answers
//! an empty list.
//!
//! Keys: `{account}/{region}/{name or id}` in tables `logs.dsources`, `logs.ddests`, `logs.deliveries`.

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{opt_str, req_str, store_err};
use crate::records::{self, key};

const SOURCES: &str = "logs.dsources";
const DESTS: &str = "logs.ddests";
const DELIVERIES: &str = "logs.deliveries";

fn conflict(msg: impl Into<String>) -> ApiError {
    ApiError::new("ConflictException", msg)
}

fn validation(msg: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", msg)
}

fn missing(what: &str, name: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("{what} {name} does not exist."),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Source {
    name: String,
    arn: String,
    resource_arns: Vec<String>,
    service: String,
    log_type: String,
    configuration: Option<Value>,
    tags: BTreeMap<String, String>,
}

fn source_json(s: &Source) -> Value {
    let mut v = json!({
        "name": s.name, "arn": s.arn, "resourceArns": s.resource_arns, "service": s.service,
        "logType": s.log_type, "tags": s.tags,
    });
    if let Some(c) = &s.configuration {
        v["deliverySourceConfiguration"] = c.clone();
    }
    v
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dest {
    name: String,
    arn: String,
    kind: String,
    output_format: Option<String>,
    resource_arn: String,
    policy: Option<String>,
    tags: BTreeMap<String, String>,
}

fn dest_json(d: &Dest) -> Value {
    let mut v = json!({
        "name": d.name, "arn": d.arn, "deliveryDestinationType": d.kind,
        "deliveryDestinationConfiguration": {"destinationResourceArn": d.resource_arn},
        "tags": d.tags,
    });
    if let Some(f) = &d.output_format {
        v["outputFormat"] = json!(f);
    }
    v
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    id: String,
    arn: String,
    source: String,
    destination_arn: String,
    destination_kind: String,
    record_fields: Option<Value>,
    field_delimiter: Option<String>,
    s3: Option<Value>,
    tags: BTreeMap<String, String>,
}

fn delivery_json(d: &Delivery) -> Value {
    let mut v = json!({
        "id": d.id, "arn": d.arn, "deliverySourceName": d.source,
        "deliveryDestinationArn": d.destination_arn, "deliveryDestinationType": d.destination_kind,
        "tags": d.tags,
    });
    if let Some(f) = &d.record_fields {
        v["recordFields"] = f.clone();
    }
    if let Some(f) = &d.field_delimiter {
        v["fieldDelimiter"] = json!(f);
    }
    if let Some(s) = &d.s3 {
        v["s3DeliveryConfiguration"] = s.clone();
    }
    v
}

fn arn_service(arn: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2].is_empty() {
        return Err(validation(format!("resourceArn {arn} is not a valid ARN.")));
    }
    Ok(parts[2].to_string())
}

/// Kind of a delivery destination from its resource ARN.
fn dest_kind(arn: &str) -> Result<&'static str, ApiError> {
    match arn_service(arn)?.as_str() {
        "s3" => Ok("S3"),
        "logs" => Ok("CWL"),
        "firehose" => Ok("FH"),
        "xray" => Ok("XRAY"),
        other => Err(validation(format!(
            "destinationResourceArn must be an S3 bucket, log group, Firehose stream or X-Ray ARN, not a(n) {other} ARN."
        ))),
    }
}

pub fn handle(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "PutDeliverySource" => {
            let name = req_str(input, "name")?;
            let resource = req_str(input, "resourceArn")?;
            let service = arn_service(resource)?;
            let log_type = req_str(input, "logType")?;
            let existing: Option<Source> = records::get(store, SOURCES, &key(ctx, name))?;
            if let Some(e) = &existing {
                if e.log_type != log_type {
                    return Err(conflict(format!(
                        "Delivery source {name} already exists with log type {}.",
                        e.log_type
                    )));
                }
            }
            let s = Source {
                name: name.to_string(),
                arn: records::arn(ctx, "delivery-source", name),
                resource_arns: vec![resource.to_string()],
                service,
                log_type: log_type.to_string(),
                configuration: input.get("deliverySourceConfiguration").cloned(),
                tags: records::tags(input, "tags")?,
            };
            records::put(store, SOURCES, &key(ctx, name), &s)?;
            Ok(json!({"deliverySource": source_json(&s)}))
        }
        "GetDeliverySource" => {
            let name = req_str(input, "name")?;
            let s: Source = records::get(store, SOURCES, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery source", name))?;
            Ok(json!({"deliverySource": source_json(&s)}))
        }
        "DescribeDeliverySources" => {
            let limit = records::limit(input, 50, 50)?;
            let (list, token) =
                records::page::<Source>(store, SOURCES, &key(ctx, ""), input, limit, &|_| true)?;
            paged("deliverySources", list.iter().map(source_json), token)
        }
        "DeleteDeliverySource" => {
            let name = req_str(input, "name")?;
            records::get::<Source>(store, SOURCES, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery source", name))?;
            let used = records::all::<Delivery>(store, DELIVERIES, &key(ctx, ""))?
                .into_iter()
                .any(|d| d.source == name);
            if used {
                return Err(conflict(format!(
                    "Delivery source {name} is used by a delivery; delete the delivery first."
                )));
            }
            store.delete(SOURCES, &key(ctx, name)).map_err(store_err)?;
            Ok(json!({}))
        }
        "PutDeliveryDestination" => {
            let name = req_str(input, "name")?;
            let resource = input
                .get("deliveryDestinationConfiguration")
                .and_then(|c| opt_str(c, "destinationResourceArn"))
                .ok_or_else(|| {
                    validation(
                        "deliveryDestinationConfiguration.destinationResourceArn is required.",
                    )
                })?;
            let kind = dest_kind(resource)?;
            if let Some(t) = opt_str(input, "deliveryDestinationType") {
                if t != kind {
                    return Err(validation(format!(
                        "deliveryDestinationType {t} does not match destinationResourceArn (a {kind} resource)."
                    )));
                }
            }
            let existing: Option<Dest> = records::get(store, DESTS, &key(ctx, name))?;
            let d = Dest {
                name: name.to_string(),
                arn: records::arn(ctx, "delivery-destination", name),
                kind: kind.to_string(),
                output_format: opt_str(input, "outputFormat").map(str::to_string),
                resource_arn: resource.to_string(),
                policy: existing.and_then(|e| e.policy),
                tags: records::tags(input, "tags")?,
            };
            records::put(store, DESTS, &key(ctx, name), &d)?;
            Ok(json!({"deliveryDestination": dest_json(&d)}))
        }
        "GetDeliveryDestination" => {
            let name = req_str(input, "name")?;
            let d: Dest = records::get(store, DESTS, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery destination", name))?;
            Ok(json!({"deliveryDestination": dest_json(&d)}))
        }
        "DescribeDeliveryDestinations" => {
            let limit = records::limit(input, 50, 50)?;
            let (list, token) =
                records::page::<Dest>(store, DESTS, &key(ctx, ""), input, limit, &|_| true)?;
            paged("deliveryDestinations", list.iter().map(dest_json), token)
        }
        "DeleteDeliveryDestination" => {
            let name = req_str(input, "name")?;
            let d: Dest = records::get(store, DESTS, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery destination", name))?;
            let used = records::all::<Delivery>(store, DELIVERIES, &key(ctx, ""))?
                .into_iter()
                .any(|x| x.destination_arn == d.arn);
            if used {
                return Err(conflict(format!(
                    "Delivery destination {name} is used by a delivery; delete the delivery first."
                )));
            }
            store.delete(DESTS, &key(ctx, name)).map_err(store_err)?;
            Ok(json!({}))
        }
        "PutDeliveryDestinationPolicy" => {
            let name = req_str(input, "deliveryDestinationName")?;
            let policy = req_str(input, "deliveryDestinationPolicy")?;
            if serde_json::from_str::<Value>(policy).map_or(true, |v| !v.is_object()) {
                return Err(validation(
                    "deliveryDestinationPolicy must be a JSON policy document.",
                ));
            }
            let mut d: Dest = records::get(store, DESTS, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery destination", name))?;
            d.policy = Some(policy.to_string());
            records::put(store, DESTS, &key(ctx, name), &d)?;
            Ok(json!({"policy": {"deliveryDestinationPolicy": policy}}))
        }
        "GetDeliveryDestinationPolicy" => {
            let name = req_str(input, "deliveryDestinationName")?;
            let d: Dest = records::get(store, DESTS, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery destination", name))?;
            Ok(match d.policy {
                Some(p) => json!({"policy": {"deliveryDestinationPolicy": p}}),
                None => json!({"policy": {}}),
            })
        }
        "DeleteDeliveryDestinationPolicy" => {
            let name = req_str(input, "deliveryDestinationName")?;
            let mut d: Dest = records::get(store, DESTS, &key(ctx, name))?
                .ok_or_else(|| missing("Delivery destination", name))?;
            if d.policy.take().is_none() {
                return Err(missing("Policy of delivery destination", name));
            }
            records::put(store, DESTS, &key(ctx, name), &d)?;
            Ok(json!({}))
        }
        "CreateDelivery" => create_delivery(store, ctx, input),
        "GetDelivery" => {
            let id = req_str(input, "id")?;
            let d: Delivery = records::get(store, DELIVERIES, &key(ctx, id))?
                .ok_or_else(|| missing("Delivery", id))?;
            Ok(json!({"delivery": delivery_json(&d)}))
        }
        "DescribeDeliveries" => {
            let limit = records::limit(input, 50, 50)?;
            let (list, token) =
                records::page::<Delivery>(store, DELIVERIES, &key(ctx, ""), input, limit, &|_| {
                    true
                })?;
            paged("deliveries", list.iter().map(delivery_json), token)
        }
        "UpdateDeliveryConfiguration" => {
            let id = req_str(input, "id")?;
            let mut d: Delivery = records::get(store, DELIVERIES, &key(ctx, id))?
                .ok_or_else(|| missing("Delivery", id))?;
            if let Some(f) = input.get("recordFields") {
                d.record_fields = Some(f.clone());
            }
            if let Some(f) = opt_str(input, "fieldDelimiter") {
                d.field_delimiter = Some(f.to_string());
            }
            if let Some(s) = input.get("s3DeliveryConfiguration") {
                if d.destination_kind != "S3" {
                    return Err(validation(
                        "s3DeliveryConfiguration applies only to deliveries to S3.",
                    ));
                }
                d.s3 = Some(s.clone());
            }
            records::put(store, DELIVERIES, &key(ctx, id), &d)?;
            Ok(json!({}))
        }
        "DeleteDelivery" => {
            let id = req_str(input, "id")?;
            if !store.delete(DELIVERIES, &key(ctx, id)).map_err(store_err)? {
                return Err(missing("Delivery", id));
            }
            Ok(json!({}))
        }
        "DescribeConfigurationTemplates" => {
            records::limit(input, 50, 50)?;
            Ok(json!({"configurationTemplates": []}))
        }
        other => Err(crate::not_implemented(other)),
    }
}

fn create_delivery(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let source = req_str(input, "deliverySourceName")?;
    let dest_arn = req_str(input, "deliveryDestinationArn")?;
    records::get::<Source>(store, SOURCES, &key(ctx, source))?
        .ok_or_else(|| missing("Delivery source", source))?;
    let dest_name = dest_arn
        .split_once(":delivery-destination:")
        .map(|(_, n)| n)
        .ok_or_else(|| validation(format!("{dest_arn} is not a delivery destination ARN.")))?;
    let dest: Dest = records::get::<Dest>(store, DESTS, &key(ctx, dest_name))?
        .filter(|d| d.arn == dest_arn)
        .ok_or_else(|| missing("Delivery destination", dest_arn))?;
    let existing = records::all::<Delivery>(store, DELIVERIES, &key(ctx, ""))?;
    if existing
        .iter()
        .any(|d| d.source == source && d.destination_arn == dest_arn)
    {
        return Err(conflict(format!(
            "A delivery from {source} to {dest_arn} already exists."
        )));
    }
    if input.get("s3DeliveryConfiguration").is_some() && dest.kind != "S3" {
        return Err(validation(
            "s3DeliveryConfiguration applies only to deliveries to S3.",
        ));
    }
    let id: String = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let d = Delivery {
        arn: records::arn(ctx, "delivery", &id),
        id: id.clone(),
        source: source.to_string(),
        destination_arn: dest_arn.to_string(),
        destination_kind: dest.kind,
        record_fields: input.get("recordFields").cloned(),
        field_delimiter: opt_str(input, "fieldDelimiter").map(str::to_string),
        s3: input.get("s3DeliveryConfiguration").cloned(),
        tags: records::tags(input, "tags")?,
    };
    records::put(store, DELIVERIES, &key(ctx, &id), &d)?;
    Ok(json!({"delivery": delivery_json(&d)}))
}

fn paged(
    member: &str,
    items: impl Iterator<Item = Value>,
    token: Option<String>,
) -> Result<Value, ApiError> {
    let mut out = json!({ member: items.collect::<Vec<_>>() });
    if let Some(t) = token {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}
