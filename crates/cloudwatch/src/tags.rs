//! TagResource, UntagResource and ListTagsForResource.
//!
//! CloudWatch tags alarms (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`), Contributor
//! Insights rules (`...:insight-rule/<name>`) and metric streams (`...:metric-stream/<name>`). Tags
//! live in the control store, keyed by ARN. Whether a resource exists is asked of a
//! [`ResourceRegistry`]: the alarms, insight-rules and metric-streams features plug theirs in; until
//! then nothing exists and every tag call answers `ResourceNotFoundException`, as CloudWatch does
//! for a resource that does not exist.
//!
//! Limits (tagging API conventions): at most 50 tags per resource; keys 1–128 and values 0–256
//! characters of letters, digits, whitespace and `_ . : / = + - @`; keys must not start with the
//! reserved `aws:` prefix.

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::Deserialize;
use serde_json::json;

use crate::error::{self, InternalError};

/// Control-store table holding tag sets.
pub const TAGS_TABLE: &str = "cloudwatch.tags";
/// Most tags on one resource.
pub const MAX_TAGS: usize = 50;

/// The kinds of CloudWatch resources that carry tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Alarm,
    InsightRule,
    MetricStream,
}

/// A parsed CloudWatch resource ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub kind: ResourceKind,
    pub name: String,
}

impl ResourceArn {
    /// Parse `arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`,
    /// `...:insight-rule/<name>` or `...:metric-stream/<name>`.
    pub fn parse(arn: &str) -> Option<ResourceArn> {
        let mut parts = arn.splitn(6, ':');
        let (prefix, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if prefix != "arn" || !partition.starts_with("aws") || service != "cloudwatch" {
            return None;
        }
        if region.is_empty() || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (kind, name) = if let Some(name) = resource.strip_prefix("alarm:") {
            (ResourceKind::Alarm, name)
        } else if let Some(name) = resource.strip_prefix("insight-rule/") {
            (ResourceKind::InsightRule, name)
        } else if let Some(name) = resource.strip_prefix("metric-stream/") {
            (ResourceKind::MetricStream, name)
        } else {
            return None;
        };
        if name.is_empty() || name.len() > 255 {
            return None;
        }
        Some(ResourceArn {
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            kind,
            name: name.to_string(),
        })
    }
}

/// Tells whether a taggable resource exists (for the caller's account and region).
pub trait ResourceRegistry: Send + Sync + 'static {
    fn exists(&self, arn: &ResourceArn) -> Result<bool, InternalError>;
}

/// The registry while no taggable resource type is implemented: nothing exists.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoResources;

impl ResourceRegistry for NoResources {
    fn exists(&self, _arn: &ResourceArn) -> Result<bool, InternalError> {
        Ok(false)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    tags: Vec<TagInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
}

fn decode<T: for<'de> Deserialize<'de>>(input: Value, required: &str) -> Result<T, ApiError> {
    serde_json::from_value(input).map_err(|_| error::missing(required))
}

fn tag_text_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// A resolved resource the caller may tag.
fn resolve(
    registry: &dyn ResourceRegistry,
    ctx: &RequestContext,
    arn: &str,
) -> Result<ResourceArn, ApiError> {
    let Some(parsed) = ResourceArn::parse(arn) else {
        return Err(error::invalid_value(error::bad_value_message(
            arn,
            "ResourceARN",
        )));
    };
    let visible = parsed.account == ctx.account_id && parsed.region == ctx.region;
    if !visible || !registry.exists(&parsed)? {
        return Err(ApiError::new(
            error::NOT_FOUND,
            format!("The resource {arn} does not exist."),
        ));
    }
    Ok(parsed)
}

fn load(control: &dyn ControlStore, arn: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match control.get(TAGS_TABLE, arn).map_err(InternalError::from)? {
        None => Ok(BTreeMap::new()),
        Some(bytes) => Ok(serde_json::from_slice(&bytes)
            .map_err(|e| InternalError::Corrupt(format!("tags of {arn}: {e}")))?),
    }
}

fn save(
    control: &dyn ControlStore,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if tags.is_empty() {
        control
            .delete(TAGS_TABLE, arn)
            .map_err(InternalError::from)?;
    } else {
        let bytes = serde_json::to_vec(tags).map_err(|e| InternalError::Corrupt(e.to_string()))?;
        control
            .put(TAGS_TABLE, arn, &bytes)
            .map_err(InternalError::from)?;
    }
    Ok(())
}

/// TagResource: add or overwrite tags.
pub fn tag_resource(
    control: &dyn ControlStore,
    registry: &dyn ResourceRegistry,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let req: TagResourceInput = decode(input, "Tags")?;
    let pairs: Vec<(String, String)> = req
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    validate(&pairs)?;
    resolve(registry, ctx, &req.resource_arn)?;
    let mut tags = load(control, &req.resource_arn)?;
    for tag in req.tags {
        tags.insert(tag.key, tag.value);
    }
    if tags.len() > MAX_TAGS {
        return Err(error::invalid_value(format!(
            "The resource {} would have more than {MAX_TAGS} tags.",
            req.resource_arn
        )));
    }
    save(control, &req.resource_arn, &tags)?;
    Ok(json!({}))
}

/// Check tags against the tagging rules (`Tags.member.N.Key` / `.Value` in messages).
pub fn validate(tags: &[(String, String)]) -> Result<(), ApiError> {
    for (i, (key, value)) in tags.iter().enumerate() {
        let at = |f: &str| format!("Tags.member.{}.{f}", i + 1);
        if key.is_empty() || key.chars().count() > 128 || !tag_text_ok(key) {
            return Err(error::invalid_value(error::bad_value_message(
                key,
                &at("Key"),
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(error::invalid_value(format!(
                "The parameter {} must not begin with the reserved prefix aws:.",
                at("Key")
            )));
        }
        if value.chars().count() > 256 || !tag_text_ok(value) {
            return Err(error::invalid_value(error::bad_value_message(
                value,
                &at("Value"),
            )));
        }
    }
    let distinct: std::collections::BTreeSet<&String> = tags.iter().map(|(k, _)| k).collect();
    if distinct.len() > MAX_TAGS {
        return Err(error::invalid_value(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(())
}

/// The write that gives a new resource its initial tags (for features creating resources in one
/// atomic batch); `None` when there are none.
pub fn initial_tags_op(
    arn: &str,
    tags: &[(String, String)],
) -> Result<Option<opsloop_store::WriteOp>, InternalError> {
    if tags.is_empty() {
        return Ok(None);
    }
    let map: BTreeMap<&String, &String> = tags.iter().map(|(k, v)| (k, v)).collect();
    let value = serde_json::to_vec(&map).map_err(|e| InternalError::Corrupt(e.to_string()))?;
    Ok(Some(opsloop_store::WriteOp::Put {
        table: TAGS_TABLE.into(),
        key: arn.to_string(),
        value,
    }))
}

/// The write that drops every tag of a deleted resource.
pub fn purge_op(arn: &str) -> opsloop_store::WriteOp {
    opsloop_store::WriteOp::Delete {
        table: TAGS_TABLE.into(),
        key: arn.to_string(),
    }
}

/// UntagResource: remove tags by key (absent keys are ignored).
pub fn untag_resource(
    control: &dyn ControlStore,
    registry: &dyn ResourceRegistry,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let req: UntagResourceInput = decode(input, "TagKeys")?;
    resolve(registry, ctx, &req.resource_arn)?;
    let mut tags = load(control, &req.resource_arn)?;
    for key in &req.tag_keys {
        tags.remove(key);
    }
    save(control, &req.resource_arn, &tags)?;
    Ok(json!({}))
}

/// ListTagsForResource.
pub fn list_tags(
    control: &dyn ControlStore,
    registry: &dyn ResourceRegistry,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let req: ListTagsInput = decode(input, "ResourceARN")?;
    resolve(registry, ctx, &req.resource_arn)?;
    let tags = load(control, &req.resource_arn)?;
    let list: Vec<Value> = tags
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "Tags": list }))
}

/// Drop every tag of a resource (for features deleting their resources).
pub fn purge(control: &dyn ControlStore, arn: &str) -> Result<(), InternalError> {
    control.delete(TAGS_TABLE, arn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_taggable_arns() {
        let a =
            ResourceArn::parse("arn:aws:cloudwatch:us-east-1:123456789012:alarm:my:alarm").unwrap();
        assert_eq!(a.kind, ResourceKind::Alarm);
        assert_eq!(a.name, "my:alarm");
        assert_eq!(a.account, "123456789012");
        let r = ResourceArn::parse("arn:aws:cloudwatch:eu-west-1:123456789012:insight-rule/r1")
            .unwrap();
        assert_eq!(
            (r.kind, r.name.as_str(), r.region.as_str()),
            (ResourceKind::InsightRule, "r1", "eu-west-1")
        );
        let s = ResourceArn::parse("arn:aws-cn:cloudwatch:cn-north-1:123456789012:metric-stream/s")
            .unwrap();
        assert_eq!(s.kind, ResourceKind::MetricStream);
    }

    #[test]
    fn rejects_other_arns() {
        for arn in [
            "",
            "arn:aws:sns:us-east-1:123456789012:alarm:x",
            "arn:aws:cloudwatch:us-east-1:12345:alarm:x",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:",
            "arn:aws:cloudwatch:us-east-1:123456789012:dashboard/x",
            "arn:aws:cloudwatch::123456789012:alarm:x",
            "nope:aws:cloudwatch:us-east-1:123456789012:alarm:x",
        ] {
            assert!(ResourceArn::parse(arn).is_none(), "{arn}");
        }
    }

    #[test]
    fn tag_characters() {
        assert!(tag_text_ok("team/a_b.c:d=e+f-g@h i"));
        assert!(tag_text_ok("équipe"));
        assert!(!tag_text_ok("a*b"));
        assert!(!tag_text_ok("a#b"));
    }
}
