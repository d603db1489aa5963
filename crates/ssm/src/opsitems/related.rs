//! Resources related to OpsItems: AssociateOpsItemRelatedItem, DisassociateOpsItemRelatedItem and
//! ListOpsItemRelatedItems (filters on ResourceType, AssociationId and ResourceUri). Associations
//! are kept in their OpsItem's row.

use opsloop_core::{ApiError, Value};
use serde_json::json;

use super::query::all_items;
use super::{item_op, load_required, OpsItem, Related};
use crate::common::{arr, max_results, now, page, s, strings, Scope};
use crate::error::{err, InternalError};
use crate::Inner;

const RESOURCE_TYPES: &[&str] = &[
    "AWS::SSMIncidents::IncidentRecord",
    "AWS::SSM::Document",
    "AWS::SSM::Automation",
];
const ASSOCIATION_TYPES: &[&str] = &["IsParentOf", "RelatesTo"];

/// AssociateOpsItemRelatedItem.
pub fn associate(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "OpsItemId").unwrap_or("");
    let rtype = s(input, "ResourceType").unwrap_or("");
    let atype = s(input, "AssociationType").unwrap_or("");
    let uri = s(input, "ResourceUri").unwrap_or("");
    if !RESOURCE_TYPES.contains(&rtype) {
        return Err(err(
            "OpsItemInvalidParameterException",
            format!(
                "The ResourceType {rtype} is not valid. Valid types: {}.",
                RESOURCE_TYPES.join(", ")
            ),
        ));
    }
    if !ASSOCIATION_TYPES.contains(&atype) {
        return Err(err(
            "OpsItemInvalidParameterException",
            format!(
                "The AssociationType {atype} is not valid. Valid types: IsParentOf, RelatesTo."
            ),
        ));
    }
    let _guard = inner.lock.lock();
    let mut item = load_required(inner, scope, id)?;
    if item.related.iter().any(|r| r.resource_uri == uri) {
        return Err(err(
            "OpsItemRelatedItemAlreadyExistsException",
            format!(
                "The association between the OpsItem {id} and the resource {uri} already exists."
            ),
        ));
    }
    if item.related.len() >= 100 {
        return Err(err(
            "OpsItemLimitExceededException",
            "An OpsItem can have at most 100 related items.",
        ));
    }
    let assoc = uuid::Uuid::new_v4().to_string();
    item.related.push(Related {
        association_id: assoc.clone(),
        resource_type: rtype.into(),
        association_type: atype.into(),
        resource_uri: uri.into(),
        created_by: scope.principal.clone(),
        created: now(),
    });
    inner
        .store
        .batch(vec![item_op(scope, &item)])
        .map_err(InternalError::from)?;
    Ok(json!({ "AssociationId": assoc }))
}

/// DisassociateOpsItemRelatedItem.
pub fn disassociate(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "OpsItemId").unwrap_or("");
    let assoc = s(input, "AssociationId").unwrap_or("");
    let _guard = inner.lock.lock();
    let mut item = load_required(inner, scope, id)?;
    let before = item.related.len();
    item.related.retain(|r| r.association_id != assoc);
    if item.related.len() == before {
        return Err(err(
            "OpsItemRelatedItemAssociationNotFoundException",
            format!("The association {assoc} was not found for the OpsItem {id}."),
        ));
    }
    inner
        .store
        .batch(vec![item_op(scope, &item)])
        .map_err(InternalError::from)?;
    Ok(json!({}))
}

fn summary(o: &OpsItem, r: &Related) -> Value {
    json!({
        "OpsItemId": o.id,
        "AssociationId": r.association_id,
        "ResourceType": r.resource_type,
        "AssociationType": r.association_type,
        "ResourceUri": r.resource_uri,
        "CreatedBy": { "Arn": r.created_by },
        "CreatedTime": r.created,
        "LastModifiedBy": { "Arn": r.created_by },
        "LastModifiedTime": r.created,
    })
}

/// ListOpsItemRelatedItems.
pub fn list(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let items = match s(input, "OpsItemId") {
        Some(id) => vec![load_required(inner, scope, id)?],
        None => all_items(inner, scope)?,
    };
    let filters: Vec<(String, Vec<String>)> = arr(input, "Filters")
        .iter()
        .map(|f| (s(f, "Key").unwrap_or("").to_string(), strings(f, "Values")))
        .collect();
    let mut out = Vec::new();
    for o in &items {
        for r in &o.related {
            let ok = filters.iter().all(|(k, vals)| {
                let have = match k.as_str() {
                    "ResourceType" => &r.resource_type,
                    "AssociationId" => &r.association_id,
                    "ResourceUri" => &r.resource_uri,
                    _ => return false,
                };
                vals.iter().any(|v| v == have)
            });
            if ok {
                out.push(summary(o, r));
            }
        }
    }
    let (out, next) = page(
        out,
        s(input, "NextToken"),
        max_results(input, 50),
        |v: &Value| s(v, "AssociationId").unwrap_or("").to_string(),
    )?;
    let mut doc = json!({ "Summaries": out });
    if let Some(t) = next {
        doc["NextToken"] = json!(t);
    }
    Ok(doc)
}
