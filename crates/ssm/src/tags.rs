//! Resource tags (AddTagsToResource, RemoveTagsFromResource, ListTagsForResource) for parameters,
//! documents, OpsItems and managed nodes. Tags live in table `ssm.tags`, one row per resource (key
//! `<account>/<region>/<ResourceType>/<id>`), written in the same batch as the resource on create
//! and deleted with it.

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde_json::json;

use crate::common::{get_row, put_row, s, strings, tag_list, tags_value, to_bytes, Scope};
use crate::error::{err, validation};
use crate::Inner;

pub const TABLE: &str = "ssm.tags";
const MAX_TAGS: usize = 50;

fn key(scope: &Scope, rtype: &str, id: &str) -> String {
    scope.key(&format!("{rtype}/{id}"))
}

/// The write that stores `tags` for a resource.
pub fn put_op(scope: &Scope, rtype: &str, id: &str, tags: &[(String, String)]) -> WriteOp {
    WriteOp::Put {
        table: TABLE.into(),
        key: key(scope, rtype, id),
        value: to_bytes(&tags.to_vec()),
    }
}

/// The write that drops a resource's tags.
pub fn delete_op(scope: &Scope, rtype: &str, id: &str) -> WriteOp {
    WriteOp::Delete {
        table: TABLE.into(),
        key: key(scope, rtype, id),
    }
}

/// A resource's tags, in the order they were added.
pub fn get(
    inner: &Inner,
    scope: &Scope,
    rtype: &str,
    id: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    Ok(get_row(&*inner.store, TABLE, &key(scope, rtype, id))?.unwrap_or_default())
}

/// Check tags given on a create or AddTagsToResource.
pub fn validate_tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(err(
            "TooManyTagsError",
            format!("The Tags list can hold at most {MAX_TAGS} tags."),
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(validation(format!(
                "Tag key {k:?} or its value is not valid: keys are 1-128 characters, values at most 256."
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(validation(format!(
                "Tag key {k} is not valid: keys starting with aws: are reserved for AWS use."
            )));
        }
    }
    Ok(())
}

/// The canonical id of an existing resource, or InvalidResourceId / InvalidResourceType.
fn resolve(inner: &Inner, scope: &Scope, rtype: &str, id: &str) -> Result<String, ApiError> {
    let found = match rtype {
        "Parameter" => crate::params::exists(inner, scope, id)?,
        "Document" => crate::documents::owned_name(inner, scope, id)?,
        "OpsItem" => crate::opsitems::exists(inner, scope, id)?,
        "ManagedInstance" => crate::activations::instance_exists(inner, scope, id)?,
        other => {
            return Err(err(
                "InvalidResourceType",
                format!("The resource type {other} is not supported for tagging by this opsloop release; supported: Parameter, Document, OpsItem, ManagedInstance."),
            ))
        }
    };
    found.ok_or_else(|| {
        err(
            "InvalidResourceId",
            format!("The resource ID {id} is not valid. Verify the ID and try again."),
        )
    })
}

/// AddTagsToResource: add or overwrite tags.
pub fn add_tags(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let rtype = s(input, "ResourceType").unwrap_or("");
    let new = tag_list(input, "Tags");
    validate_tags(&new)?;
    let _guard = inner.lock.lock();
    let id = resolve(inner, scope, rtype, s(input, "ResourceId").unwrap_or(""))?;
    let mut tags = get(inner, scope, rtype, &id)?;
    for (k, v) in new {
        match tags.iter_mut().find(|(tk, _)| *tk == k) {
            Some(t) => t.1 = v,
            None => tags.push((k, v)),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(err(
            "TooManyTagsError",
            format!("The resource {id} would have more than {MAX_TAGS} tags."),
        ));
    }
    put_row(&*inner.store, TABLE, &key(scope, rtype, &id), &tags)?;
    Ok(json!({}))
}

/// RemoveTagsFromResource.
pub fn remove_tags(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let rtype = s(input, "ResourceType").unwrap_or("");
    let keys = strings(input, "TagKeys");
    let _guard = inner.lock.lock();
    let id = resolve(inner, scope, rtype, s(input, "ResourceId").unwrap_or(""))?;
    let mut tags = get(inner, scope, rtype, &id)?;
    tags.retain(|(k, _)| !keys.contains(k));
    put_row(&*inner.store, TABLE, &key(scope, rtype, &id), &tags)?;
    Ok(json!({}))
}

/// ListTagsForResource.
pub fn list_tags(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let rtype = s(input, "ResourceType").unwrap_or("");
    let id = resolve(inner, scope, rtype, s(input, "ResourceId").unwrap_or(""))?;
    let tags = get(inner, scope, rtype, &id)?;
    Ok(json!({ "TagList": tags_value(&tags) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        assert!(validate_tags(&[("env".into(), "prod".into())]).is_ok());
        assert!(validate_tags(&[("aws:x".into(), "y".into())]).is_err());
        assert!(validate_tags(&[(String::new(), "y".into())]).is_err());
        let many: Vec<(String, String)> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(validate_tags(&many).unwrap_err().kind, "TooManyTagsError");
    }
}
