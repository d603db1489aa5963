//! Topic operations: CreateTopic (idempotent by name, attributes and tags), DeleteTopic, ListTopics,
//! GetTopicAttributes / SetTopicAttributes (with attribute validation, the generated default
//! `Policy`, `EffectiveDeliveryPolicy` and subscription counts), AddPermission / RemovePermission
//! (statements in the topic's policy).

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use serde_json::{json, Map};

use crate::arn::{self, TopicArn};
use crate::delivery::policy;
use crate::doc::{self, str_field};
use crate::error::{self, InternalError};
use crate::state::{self, State, Topic};
use crate::tags;
use crate::Inner;

const PAGE: usize = 100;

const FIFO_NAME_MESSAGE: &str = "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.";

/// Actions AddPermission accepts.
const ACTIONS: &[&str] = &[
    "AddPermission",
    "ConfirmSubscription",
    "CreatePlatformEndpoint",
    "DeleteTopic",
    "GetTopicAttributes",
    "ListSubscriptionsByTopic",
    "Publish",
    "Receive",
    "RemovePermission",
    "SetTopicAttributes",
    "Subscribe",
];

/// Attributes that only CreateTopic sets.
const CREATE_ONLY: &[&str] = &["FifoTopic"];

/// Attributes that are stored as given (feedback settings and the like).
const STORED_AS_IS: &[&str] = &[
    "KmsMasterKeyId",
    "ArchivePolicy",
    "FifoThroughputScope",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
];

/// The policy SNS generates for a new topic.
pub fn default_policy(arn: &TopicArn) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes",
                "SNS:SetTopicAttributes",
                "SNS:AddPermission",
                "SNS:RemovePermission",
                "SNS:DeleteTopic",
                "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic",
                "SNS:Publish"
            ],
            "Resource": arn.to_string(),
            "Condition": {"StringEquals": {"AWS:SourceOwner": arn.account}}
        }]
    })
    .to_string()
}

fn is_bool(v: &str) -> bool {
    v == "true" || v == "false"
}

/// Validate one attribute for a topic (`fifo`: whether it is a FIFO topic). Returns the value to
/// store (empty: remove), or the reason it is invalid.
fn check_attribute(name: &str, value: &str, fifo: bool) -> Result<String, String> {
    match name {
        "DisplayName" => {
            if value.chars().count() > 100 {
                Err("DisplayName: must be at most 100 characters".into())
            } else {
                Ok(value.into())
            }
        }
        "Policy" | "DataProtectionPolicy" => {
            if value.is_empty() {
                return Ok(String::new());
            }
            match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(_)) => Ok(value.into()),
                _ => Err(format!(
                    "{name}: Policy Error: the policy is not a JSON object"
                )),
            }
        }
        "DeliveryPolicy" => {
            if value.is_empty() {
                return Ok(String::new());
            }
            policy::parse_topic(value).map(|_| value.into())
        }
        "SignatureVersion" => match value {
            "1" | "2" => Ok(value.into()),
            _ => Err(format!(
                "SignatureVersion: Invalid value [{value}]. Should be 1 or 2."
            )),
        },
        "TracingConfig" => match value {
            "PassThrough" | "Active" => Ok(value.into()),
            _ => Err(format!(
                "TracingConfig: Invalid value [{value}]. Should be PassThrough or Active."
            )),
        },
        "FifoTopic" if is_bool(value) => Ok(value.into()),
        "FifoTopic" => Err(format!(
            "FifoTopic: Invalid value [{value}]. Must be true or false."
        )),
        "ContentBasedDeduplication" => {
            if !fifo {
                Err("ContentBasedDeduplication: Content-based deduplication can only be set for FIFO topics".into())
            } else if !is_bool(value) {
                Err(format!(
                    "ContentBasedDeduplication: Invalid value [{value}]. Must be true or false."
                ))
            } else {
                Ok(value.into())
            }
        }
        n if STORED_AS_IS.contains(&n) => Ok(value.into()),
        _ => Err(format!("Unknown attribute {name}")),
    }
}

fn set_attr(attrs: &mut BTreeMap<String, String>, name: &str, value: String) {
    if value.is_empty() && name != "DisplayName" {
        attrs.remove(name);
    } else {
        attrs.insert(name.to_string(), value);
    }
}

pub(crate) fn create_topic(
    sns: &Inner,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let name = str_field(&input, "Name").unwrap_or("");
    let requested = doc::string_map(&input, "Attributes")?;
    let tags = doc::tag_list(&input, "Tags")?;
    let fifo = match requested.get("FifoTopic").map(String::as_str) {
        Some("true") => true,
        Some("false") | None => false,
        Some(other) => {
            return Err(error::invalid_reason(
                "Attributes",
                format!("FifoTopic: Invalid value [{other}]. Must be true or false."),
            ))
        }
    };
    if fifo {
        if !name.ends_with(".fifo") || !arn::valid_topic_name(name) {
            return Err(error::invalid(FIFO_NAME_MESSAGE));
        }
    } else if name.ends_with(".fifo") || !arn::valid_topic_name(name) {
        return Err(error::invalid("Topic Name"));
    }
    let topic_arn = TopicArn::new(&ctx.region, &ctx.account_id, name);
    let mut attrs = BTreeMap::new();
    for (k, v) in &requested {
        let value =
            check_attribute(k, v, fifo).map_err(|r| error::invalid_reason("Attributes", r))?;
        set_attr(&mut attrs, k, value);
    }
    if let Some(dpp) = str_field(&input, "DataProtectionPolicy") {
        let value = check_attribute("DataProtectionPolicy", dpp, fifo)
            .map_err(|r| error::invalid_reason("DataProtectionPolicy", r))?;
        set_attr(&mut attrs, "DataProtectionPolicy", value);
    }
    tags::check_tags(&tags, 0)?;

    let _guard = sns.lock.lock();
    let st = State::new(&*sns.store);
    if let Some(existing) = st.topic(&topic_arn)? {
        let differs = requested.iter().any(|(k, v)| {
            existing.attributes.get(k).map(String::as_str).unwrap_or("") != v.as_str()
                && !(k == "FifoTopic" && v == "false" && !existing.is_fifo())
        });
        if differs {
            return Err(error::invalid_reason(
                "Attributes",
                "Topic already exists with different attributes",
            ));
        }
        if !tags.is_empty() && !tags.iter().all(|t| existing.tags.contains(t)) {
            return Err(error::invalid_reason(
                "Tags",
                "Topic already exists with different tags",
            ));
        }
        return Ok(json!({ "TopicArn": existing.arn }));
    }
    if !attrs.contains_key("Policy") {
        attrs.insert("Policy".into(), default_policy(&topic_arn));
    }
    attrs.entry("DisplayName".into()).or_default();
    if fifo {
        attrs.insert("FifoTopic".into(), "true".into());
        attrs
            .entry("ContentBasedDeduplication".into())
            .or_insert_with(|| "false".into());
    } else {
        attrs.remove("FifoTopic");
    }
    let mut unique_tags: Vec<(String, String)> = Vec::new();
    for (k, v) in tags {
        match unique_tags.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => unique_tags.push((k, v)),
        }
    }
    let topic = Topic {
        arn: topic_arn.to_string(),
        name: name.to_string(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        attributes: attrs,
        tags: unique_tags,
        subscriptions_deleted: 0,
        created_ms: doc::now_ms(),
        next_sequence: 1,
    };
    st.put(state::TOPICS, &topic_arn.key(), &topic)?;
    tracing::info!(topic = %topic.arn, fifo, "topic created");
    Ok(json!({ "TopicArn": topic.arn }))
}

/// The topic named by the `TopicArn` member, or NotFound.
pub(crate) fn load(sns: &Inner, input: &Value, param: &str) -> Result<(TopicArn, Topic), ApiError> {
    let arn = TopicArn::parse_param(str_field(input, param).unwrap_or(""), param)?;
    let topic = State::new(&*sns.store)
        .topic(&arn)?
        .ok_or_else(error::topic_not_found)?;
    Ok((arn, topic))
}

pub(crate) fn delete_topic(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let arn = TopicArn::parse_param(str_field(&input, "TopicArn").unwrap_or(""), "TopicArn")?;
    let _guard = sns.lock.lock();
    let st = State::new(&*sns.store);
    if st.topic(&arn)?.is_none() {
        return Ok(json!({}));
    }
    let mut ops = vec![state::delete_op(state::TOPICS, &arn.key())];
    for (key, _) in
        st.scan_all::<state::Subscription>(state::SUBSCRIPTIONS, &format!("{}/", arn.key()))?
    {
        ops.push(state::delete_op(state::SUBSCRIPTIONS, &key));
    }
    sns.store.batch(ops).map_err(error::store)?;
    tracing::info!(topic = %arn, "topic deleted");
    Ok(json!({}))
}

pub(crate) fn list_topics(
    sns: &Inner,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let prefix = arn::region_prefix(&ctx.account_id, &ctx.region);
    let after = match str_field(&input, "NextToken") {
        Some(t) if !t.is_empty() => Some(doc::decode_token(t, &prefix)?),
        _ => None,
    };
    let rows: Vec<(String, Topic)> =
        State::new(&*sns.store).scan_page(state::TOPICS, &prefix, after.as_deref(), PAGE + 1)?;
    let more = rows.len() > PAGE;
    let page = &rows[..rows.len().min(PAGE)];
    let topics: Vec<Value> = page
        .iter()
        .map(|(_, t)| json!({ "TopicArn": t.arn }))
        .collect();
    let mut out = json!({ "Topics": topics });
    if more {
        if let Some((last, _)) = page.last() {
            out["NextToken"] = Value::String(doc::encode_token(last));
        }
    }
    Ok(out)
}

pub(crate) fn get_topic_attributes(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let (arn, topic) = load(sns, &input, "TopicArn")?;
    let subs = State::new(&*sns.store).topic_subscriptions(&arn)?;
    let confirmed = subs.iter().filter(|s| s.confirmed).count();
    let mut attrs = Map::new();
    for (k, v) in &topic.attributes {
        attrs.insert(k.clone(), Value::String(v.clone()));
    }
    let delivery = topic
        .attr("DeliveryPolicy")
        .and_then(|p| policy::parse_topic(p).ok());
    attrs.insert("Owner".into(), Value::String(topic.account.clone()));
    attrs.insert("TopicArn".into(), Value::String(topic.arn.clone()));
    attrs.insert(
        "SubscriptionsConfirmed".into(),
        Value::String(confirmed.to_string()),
    );
    attrs.insert(
        "SubscriptionsPending".into(),
        Value::String((subs.len() - confirmed).to_string()),
    );
    attrs.insert(
        "SubscriptionsDeleted".into(),
        Value::String(topic.subscriptions_deleted.to_string()),
    );
    attrs.insert(
        "EffectiveDeliveryPolicy".into(),
        Value::String(policy::topic_effective_json(delivery.as_ref())),
    );
    Ok(json!({ "Attributes": attrs }))
}

pub(crate) fn set_topic_attributes(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let name = str_field(&input, "AttributeName").unwrap_or("").to_string();
    let value = str_field(&input, "AttributeValue")
        .unwrap_or("")
        .to_string();
    let _guard = sns.lock.lock();
    let (arn, mut topic) = load(sns, &input, "TopicArn")?;
    if CREATE_ONLY.contains(&name.as_str()) {
        return Err(error::invalid("AttributeName"));
    }
    let stored = check_attribute(&name, &value, topic.is_fifo()).map_err(|r| {
        if r.starts_with("Unknown attribute") {
            error::invalid("AttributeName")
        } else {
            error::invalid(r)
        }
    })?;
    let stored = if name == "Policy" && stored.is_empty() {
        default_policy(&arn)
    } else {
        stored
    };
    set_attr(&mut topic.attributes, &name, stored);
    State::new(&*sns.store).put(state::TOPICS, &arn.key(), &topic)?;
    Ok(json!({}))
}

fn policy_document(topic: &Topic, arn: &TopicArn) -> Result<Map<String, Value>, InternalError> {
    let text = topic
        .attr("Policy")
        .map(str::to_string)
        .unwrap_or_else(|| default_policy(arn));
    match serde_json::from_str::<Value>(&text)? {
        Value::Object(m) => Ok(m),
        _ => Err(InternalError::Corrupt(
            "topic policy is not an object".into(),
        )),
    }
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 255
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn add_permission(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let label = str_field(&input, "Label").unwrap_or("").to_string();
    let accounts = doc::string_list(&input, "AWSAccountId");
    let actions = doc::string_list(&input, "ActionName");
    if !valid_label(&label) {
        return Err(error::invalid("Label"));
    }
    if accounts.is_empty() {
        return Err(error::invalid("AWSAccountId"));
    }
    if actions.is_empty() {
        return Err(error::invalid("ActionName"));
    }
    if let Some(bad) = actions.iter().find(|a| !ACTIONS.contains(&a.as_str())) {
        return Err(error::invalid(format!(
            "Policy statement action out of service scope! ({bad})"
        )));
    }
    let _guard = sns.lock.lock();
    let (arn, mut topic) = load(sns, &input, "TopicArn")?;
    let mut policy = policy_document(&topic, &arn)?;
    let statements = policy
        .entry("Statement")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !statements.is_array() {
        *statements = Value::Array(Vec::new());
    }
    let Some(list) = statements.as_array_mut() else {
        return Err(ApiError::internal());
    };
    if list
        .iter()
        .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label.as_str()))
    {
        return Err(error::invalid("Statement already exists"));
    }
    let principals: Vec<Value> = accounts
        .iter()
        .map(|a| {
            let p = if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
                format!("arn:aws:iam::{a}:root")
            } else {
                a.clone()
            };
            Value::String(p)
        })
        .collect();
    let acts: Vec<Value> = actions
        .iter()
        .map(|a| Value::String(format!("SNS:{a}")))
        .collect();
    let one_or_many = |mut v: Vec<Value>| {
        if v.len() == 1 {
            v.remove(0)
        } else {
            Value::Array(v)
        }
    };
    list.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_many(principals)},
        "Action": one_or_many(acts),
        "Resource": arn.to_string(),
    }));
    topic
        .attributes
        .insert("Policy".into(), Value::Object(policy).to_string());
    State::new(&*sns.store).put(state::TOPICS, &arn.key(), &topic)?;
    Ok(json!({}))
}

pub(crate) fn remove_permission(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let label = str_field(&input, "Label").unwrap_or("").to_string();
    let _guard = sns.lock.lock();
    let (arn, mut topic) = load(sns, &input, "TopicArn")?;
    let mut policy = policy_document(&topic, &arn)?;
    if let Some(Value::Array(list)) = policy.get_mut("Statement") {
        list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label.as_str()));
    }
    topic
        .attributes
        .insert("Policy".into(), Value::Object(policy).to_string());
    State::new(&*sns.store).put(state::TOPICS, &arn.key(), &topic)?;
    Ok(json!({}))
}

pub(crate) fn get_data_protection_policy(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let (_, topic) = load(sns, &input, "ResourceArn")?;
    Ok(json!({ "DataProtectionPolicy": topic.attr("DataProtectionPolicy").unwrap_or("") }))
}

pub(crate) fn put_data_protection_policy(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let value = str_field(&input, "DataProtectionPolicy")
        .unwrap_or("")
        .to_string();
    let _guard = sns.lock.lock();
    let (arn, mut topic) = load(sns, &input, "ResourceArn")?;
    let stored =
        check_attribute("DataProtectionPolicy", &value, topic.is_fifo()).map_err(error::invalid)?;
    set_attr(&mut topic.attributes, "DataProtectionPolicy", stored);
    State::new(&*sns.store).put(state::TOPICS, &arn.key(), &topic)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_names_the_topic_and_owner() {
        let arn = TopicArn::new("us-east-1", "123456789012", "t");
        let p: Value = serde_json::from_str(&default_policy(&arn)).unwrap();
        assert_eq!(
            p["Statement"][0]["Resource"],
            "arn:aws:sns:us-east-1:123456789012:t"
        );
        assert_eq!(
            p["Statement"][0]["Condition"]["StringEquals"]["AWS:SourceOwner"],
            "123456789012"
        );
        assert_eq!(p["Statement"][0]["Action"].as_array().unwrap().len(), 8);
    }

    #[test]
    fn attribute_checks() {
        assert!(check_attribute("SignatureVersion", "2", false).is_ok());
        assert!(check_attribute("SignatureVersion", "3", false).is_err());
        assert!(check_attribute("ContentBasedDeduplication", "true", false).is_err());
        assert!(check_attribute("ContentBasedDeduplication", "true", true).is_ok());
        assert!(check_attribute("Policy", "[]", false).is_err());
        assert!(check_attribute(
            "DeliveryPolicy",
            r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":-1}}}"#,
            false
        )
        .is_err());
        assert!(check_attribute("Bogus", "x", false)
            .unwrap_err()
            .starts_with("Unknown attribute"));
        assert!(check_attribute("DisplayName", &"x".repeat(101), false).is_err());
    }
}
