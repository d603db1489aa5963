//! Topic tags: TagResource, UntagResource, ListTagsForResource, and the tag rules CreateTopic shares
//! (at most 50 tags per topic, keys 1–128 characters, values at most 256, no `aws:` keys).

use opsloop_core::{ApiError, RequestContext, Value};
use serde_json::json;

use crate::arn::TopicArn;
use crate::doc::{self, str_field};
use crate::error::{self, TAG_LIMIT};
use crate::state::{self, State, Topic};
use crate::Inner;

pub const MAX_TAGS: usize = 50;

/// Check tags to add to a topic that has `existing` tags already (overlaps not counted twice by
/// callers that pass the merged count).
pub(crate) fn check_tags(tags: &[(String, String)], existing: usize) -> Result<(), ApiError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(error::invalid_reason(
                "Tags",
                "Tag keys must be between 1 and 128 characters long",
            ));
        }
        if v.chars().count() > 256 {
            return Err(error::invalid_reason(
                "Tags",
                "Tag values must be at most 256 characters long",
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(error::invalid_reason(
                "Tags",
                "Tag keys must not start with 'aws:'",
            ));
        }
    }
    if existing + tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            TAG_LIMIT,
            "Could not complete request: tag quota of per resource exceeded",
        ));
    }
    Ok(())
}

fn load(sns: &Inner, input: &Value) -> Result<(TopicArn, Topic), ApiError> {
    let text = str_field(input, "ResourceArn").unwrap_or("");
    let arn = TopicArn::parse(text).ok_or_else(error::resource_not_found)?;
    let topic = State::new(&*sns.store)
        .topic(&arn)?
        .ok_or_else(error::resource_not_found)?;
    Ok((arn, topic))
}

pub(crate) fn tag_resource(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let tags = doc::tag_list(&input, "Tags")?;
    let _guard = sns.lock.lock();
    let (arn, mut topic) = load(sns, &input)?;
    let new_keys = tags
        .iter()
        .filter(|(k, _)| !topic.tags.iter().any(|(ek, _)| ek == k))
        .count();
    check_tags(&tags[..0], topic.tags.len() + new_keys)?;
    check_tags(&tags, 0)?;
    for (k, v) in tags {
        match topic.tags.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => topic.tags.push((k, v)),
        }
    }
    State::new(&*sns.store).put(state::TOPICS, &arn.key(), &topic)?;
    Ok(json!({}))
}

pub(crate) fn untag_resource(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let keys = doc::string_list(&input, "TagKeys");
    let _guard = sns.lock.lock();
    let (arn, mut topic) = load(sns, &input)?;
    topic.tags.retain(|(k, _)| !keys.contains(k));
    State::new(&*sns.store).put(state::TOPICS, &arn.key(), &topic)?;
    Ok(json!({}))
}

pub(crate) fn list_tags(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let (_, topic) = load(sns, &input)?;
    let tags: Vec<Value> = topic
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "Tags": tags }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        let t = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_tags(&t("k", "v"), 0).is_ok());
        assert!(check_tags(&t("", "v"), 0).is_err());
        assert!(check_tags(&t("aws:x", "v"), 0).is_err());
        assert!(check_tags(&t(&"k".repeat(129), "v"), 0).is_err());
        assert!(check_tags(&t("k", &"v".repeat(257)), 0).is_err());
        assert_eq!(check_tags(&t("k", "v"), 50).unwrap_err().kind, TAG_LIMIT);
    }
}
