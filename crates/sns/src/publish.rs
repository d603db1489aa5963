//! Publish and PublishBatch: target resolution (TopicArn / TargetArn; SMS and mobile push are not
//! supported), message, subject, `MessageStructure=json` and message-attribute validation, the
//! 256 KiB size limit, FIFO rules (group id, deduplication within five minutes, sequence numbers),
//! filter policies, and the durable fan-out: the message and one outbox row per matching confirmed
//! subscription are written in one atomic batch before the call returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use opsloop_core::{ApiError, RequestContext, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::arn::TopicArn;
use crate::cache::CachedTopic;
use crate::delivery;
use crate::doc::{self, str_field};
use crate::error::{
    self, BATCH_EMPTY, BATCH_IDS_NOT_DISTINCT, BATCH_INVALID_ID, BATCH_TOO_LONG, BATCH_TOO_MANY,
};
use crate::filter;
use crate::state::{self, DeliveryKind, MessageAttribute, State, StoredMessage, Topic};
use crate::Inner;

/// Largest message, attributes included.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
pub const MAX_ATTRIBUTES: usize = 10;
pub const MAX_BATCH: usize = 10;
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A validated message, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prepared {
    subject: Option<String>,
    message: String,
    per_protocol: BTreeMap<String, String>,
    attributes: BTreeMap<String, MessageAttribute>,
    group_id: Option<String>,
    dedup_id: Option<String>,
    size: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct DedupRecord {
    message_id: String,
    sequence: String,
    expires_ms: i64,
}

fn check_subject(subject: &str) -> Result<(), ApiError> {
    let ok = !subject.is_empty()
        && subject.chars().count() <= 100
        && subject.chars().all(|c| !c.is_control())
        && subject
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c.is_ascii_punctuation());
    if ok {
        Ok(())
    } else {
        Err(error::invalid("Subject"))
    }
}

fn attr_error(reason: String) -> ApiError {
    error::invalid_reason("MessageAttributes", reason)
}

fn check_attribute_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 256 {
        return Err(attr_error(format!(
            "Message attribute name '{name}' must be between 1 and 256 characters long."
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(attr_error(format!(
            "Invalid non-alphanumeric character '#x{:X}' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
            u32::from(c)
        )));
    }
    let lower = name.to_ascii_lowercase();
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(attr_error(format!("Message attribute name '{name}' must not start or end with a period or contain two periods in a row.")));
    }
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err(attr_error(format!(
            "Message attribute name '{name}' uses a reserved prefix."
        )));
    }
    Ok(())
}

/// Validate the `MessageAttributes` map; returns the attributes and their size in bytes.
fn parse_attributes(
    input: &Value,
) -> Result<(BTreeMap<String, MessageAttribute>, usize), ApiError> {
    let mut out = BTreeMap::new();
    let mut size = 0;
    let Some(Value::Object(map)) = input.get("MessageAttributes") else {
        return Ok((out, 0));
    };
    if map.len() > MAX_ATTRIBUTES {
        return Err(attr_error(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].",
            map.len()
        )));
    }
    for (name, v) in map {
        check_attribute_name(name)?;
        let data_type = str_field(v, "DataType").unwrap_or("");
        let string_value = str_field(v, "StringValue");
        let binary_value = str_field(v, "BinaryValue");
        let base = data_type.split('.').next().unwrap_or("");
        if data_type.len() > 256 || !matches!(base, "String" | "Number" | "Binary") {
            return Err(attr_error(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        let value = match base {
            "Binary" => {
                let b64 = binary_value.ok_or_else(|| {
                    attr_error(format!("The message attribute '{name}' with type 'Binary' must use field 'Binary'."))
                })?;
                if base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .is_err()
                {
                    return Err(attr_error(format!(
                        "The message attribute '{name}' has an invalid binary value."
                    )));
                }
                b64.to_string()
            }
            _ => {
                let s = string_value.ok_or_else(|| {
                    attr_error(format!("The message attribute '{name}' with type '{base}' must use field 'String'."))
                })?;
                if s.is_empty() {
                    return Err(attr_error(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{base}'."
                    )));
                }
                if base == "Number"
                    && !s
                        .trim()
                        .parse::<f64>()
                        .is_ok_and(|n| n.is_finite() && n.abs() <= 1e300)
                {
                    return Err(attr_error(format!(
                        "Could not cast message attribute '{name}' value to number."
                    )));
                }
                if data_type == "String.Array" {
                    let ok = matches!(serde_json::from_str::<Value>(s), Ok(Value::Array(items))
                        if items.iter().all(|i| !i.is_array() && !i.is_object()));
                    if !ok {
                        return Err(attr_error(format!(
                            "The message attribute '{name}' with type 'String.Array' must be a JSON array of strings, numbers, true, false or null."
                        )));
                    }
                }
                s.to_string()
            }
        };
        size += name.len() + data_type.len() + value.len();
        out.insert(
            name.clone(),
            MessageAttribute {
                data_type: data_type.to_string(),
                value,
            },
        );
    }
    Ok((out, size))
}

/// Validate one message (a Publish request or a PublishBatch entry) for `topic`.
pub(crate) fn prepare(entry: &Value, topic: &Topic) -> Result<Prepared, ApiError> {
    let message = str_field(entry, "Message").unwrap_or("");
    if message.is_empty() {
        return Err(error::invalid("Empty message"));
    }
    let subject = match str_field(entry, "Subject") {
        Some(s) => {
            check_subject(s)?;
            Some(s.to_string())
        }
        None => None,
    };
    let (attributes, attr_bytes) = parse_attributes(entry)?;
    let size = message.len() + attr_bytes;
    if size > MAX_MESSAGE_BYTES {
        return Err(error::invalid("Message too long"));
    }
    let mut per_protocol = BTreeMap::new();
    let default = match str_field(entry, "MessageStructure") {
        None => message.to_string(),
        Some("json") => {
            let Ok(Value::Object(map)) = serde_json::from_str::<Value>(message) else {
                return Err(error::invalid(
                    "Message Structure - JSON message body failed to parse",
                ));
            };
            let mut default = None;
            for (k, v) in map {
                let Value::String(text) = v else {
                    return Err(error::invalid(
                        "Message Structure - JSON message body failed to parse",
                    ));
                };
                if k == "default" {
                    default = Some(text);
                } else {
                    per_protocol.insert(k, text);
                }
            }
            default.ok_or_else(|| {
                error::invalid("Message Structure - No default entry in JSON message body")
            })?
        }
        Some(_) => return Err(error::invalid("MessageStructure")),
    };
    let group_id = str_field(entry, "MessageGroupId").map(str::to_string);
    let mut dedup_id = str_field(entry, "MessageDeduplicationId").map(str::to_string);
    for (param, v) in [
        ("MessageGroupId", &group_id),
        ("MessageDeduplicationId", &dedup_id),
    ] {
        if let Some(v) = v {
            if v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_graphic()) {
                return Err(error::invalid_reason(param, format!("{param} can only contain alphanumeric characters and punctuation, and be 1 to 128 characters long")));
            }
        }
    }
    if topic.is_fifo() {
        if group_id.is_none() {
            return Err(error::invalid(
                "The MessageGroupId parameter is required for FIFO topics",
            ));
        }
        if dedup_id.is_none() {
            if topic.attr("ContentBasedDeduplication") == Some("true") {
                dedup_id = Some(hex::encode(Sha256::digest(message.as_bytes())));
            } else {
                return Err(error::invalid(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
        }
    } else if dedup_id.is_some() {
        return Err(error::invalid_reason(
            "MessageDeduplicationId",
            "The request includes MessageDeduplicationId parameter that is not valid for this topic type",
        ));
    }
    Ok(Prepared {
        subject,
        message: default,
        per_protocol,
        attributes,
        group_id,
        dedup_id,
        size,
    })
}

/// Resolve the topic a Publish names.
fn target(input: &Value) -> Result<TopicArn, ApiError> {
    if str_field(input, "PhoneNumber").is_some() {
        return Err(error::invalid_reason(
            "PhoneNumber",
            "SMS delivery is not supported by this opsloop release",
        ));
    }
    let (text, param) = match (str_field(input, "TopicArn"), str_field(input, "TargetArn")) {
        (Some(_), Some(_)) => {
            return Err(error::invalid_reason(
                "TopicArn or TargetArn",
                "Only one of TopicArn or TargetArn may be specified",
            ))
        }
        (Some(t), None) => (t, "TopicArn"),
        (None, Some(t)) => (t, "TargetArn"),
        (None, None) => {
            return Err(error::invalid_reason(
                "TopicArn or TargetArn",
                "no value for required parameter",
            ))
        }
    };
    if param == "TargetArn" && text.contains(":endpoint/") {
        return Err(error::invalid_reason(
            "TargetArn",
            "mobile push endpoints are not supported by this opsloop release",
        ));
    }
    TopicArn::parse_param(text, param)
}

/// The outcome of storing one message.
struct Published {
    message_id: String,
    sequence: Option<String>,
}

/// Store `prepared` messages of one topic with their deliveries, atomically, then queue them.
fn store_messages(
    sns: &Inner,
    topic_arn: &TopicArn,
    batch: Vec<Prepared>,
) -> Result<Vec<Published>, ApiError> {
    let st = State::new(&*sns.store);
    let now = doc::now_ms();
    // FIFO bookkeeping (sequence numbers, deduplication) needs the topic row to be stable.
    let guard = if topic_arn.is_fifo() {
        Some(sns.lock.lock())
    } else {
        None
    };
    // FIFO topics are read from the store under the lock (their sequence counter changes on
    // every publish); standard topics come from the in-memory cache.
    let cached = if guard.is_some() {
        match st.topic(topic_arn)? {
            Some(topic) => Arc::new(CachedTopic {
                subscriptions: st
                    .topic_subscriptions(topic_arn)?
                    .into_iter()
                    .filter(|s| s.confirmed)
                    .collect(),
                topic,
            }),
            None => return Err(error::topic_not_found()),
        }
    } else {
        sns.topics
            .topic(&*sns.store, topic_arn)?
            .ok_or_else(error::topic_not_found)?
    };
    let subs = &cached.subscriptions;
    // Only FIFO publishing changes the topic (its sequence counter): copy it only then.
    let mut topic = std::borrow::Cow::Borrowed(&cached.topic);
    let signature_version = topic.attr("SignatureVersion").unwrap_or("1").to_string();
    let mut ops = Vec::new();
    let mut queued = Vec::new();
    let mut out = Vec::with_capacity(batch.len());
    let mut topic_changed = false;
    for p in batch {
        let mut sequence = None;
        if let (true, Some(dedup)) = (topic.is_fifo(), &p.dedup_id) {
            let key = format!("{}/{}", topic_arn.key(), dedup);
            if let Some(prev) = st
                .get::<DedupRecord>(state::DEDUP, &key)?
                .filter(|r| r.expires_ms > now)
            {
                out.push(Published {
                    message_id: prev.message_id,
                    sequence: Some(prev.sequence),
                });
                continue;
            }
            let seq = format!(
                "{:020}",
                10_000_000_000_000_000_000u128 + u128::from(topic.next_sequence)
            );
            topic.to_mut().next_sequence += 1;
            topic_changed = true;
            sequence = Some(seq.clone());
            let id = doc::new_uuid();
            ops.push(state::put_op(
                state::DEDUP,
                &key,
                &DedupRecord {
                    message_id: id.clone(),
                    sequence: seq,
                    expires_ms: now + DEDUP_WINDOW_MS,
                },
            ));
            out.push(Published {
                message_id: id,
                sequence: sequence.clone(),
            });
        } else {
            out.push(Published {
                message_id: doc::new_uuid(),
                sequence: None,
            });
        }
        let message_id = out.last().map(|p| p.message_id.clone()).unwrap_or_default();
        let message = StoredMessage {
            id: message_id.clone(),
            topic_arn: topic.arn.clone(),
            subject: p.subject,
            message: p.message,
            per_protocol: p.per_protocol,
            attributes: p.attributes,
            timestamp_ms: now,
            signature_version: signature_version.clone(),
            group_id: p.group_id,
            dedup_id: p.dedup_id,
            sequence,
        };
        let mut deliveries = 0usize;
        for sub in subs {
            if !sns.filter_accepts(sub, &message) {
                continue;
            }
            let kind = DeliveryKind::Notification {
                message_id: message_id.clone(),
            };
            let d = delivery::make_delivery(&topic, sub, kind, now);
            ops.push(state::put_op(state::OUTBOX, &d.id, &d));
            queued.push((d.id, d.due_ms, message_id.clone()));
            deliveries += 1;
        }
        if deliveries > 0 {
            ops.push(state::put_op(state::MESSAGES, &message_id, &message));
        }
        tracing::debug!(topic = %topic.arn, message_id = %message_id, deliveries, "message published");
    }
    if topic_changed {
        ops.push(state::put_op(state::TOPICS, &topic_arn.key(), &*topic));
    }
    if !ops.is_empty() {
        sns.store.batch(ops).map_err(error::store)?;
    }
    drop(guard);
    sns.schedule.enqueue_many(
        queued
            .iter()
            .map(|(id, due, m)| (id.as_str(), *due, Some(m.as_str()))),
    );
    Ok(out)
}

pub(crate) fn publish(sns: &Inner, _ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
    let arn = target(&input)?;
    let cached = sns
        .topics
        .topic(&*sns.store, &arn)?
        .ok_or_else(error::topic_not_found)?;
    let prepared = prepare(&input, &cached.topic)?;
    let published = store_messages(sns, &arn, vec![prepared])?;
    let Some(p) = published.into_iter().next() else {
        return Err(ApiError::internal());
    };
    let mut out = json!({ "MessageId": p.message_id });
    if let Some(seq) = p.sequence {
        out["SequenceNumber"] = Value::String(seq);
    }
    Ok(out)
}

/// The in-process publish of plain messages: not an operation of the SNS model, so the wire layer
/// never routes a request to it; other services reach it through `Directory::invoke`.
pub const PUBLISH_MESSAGES: &str = "OpsloopPublishMessages";

/// `OpsloopPublishMessages` — `{"TopicArn": arn, "Messages": [text, ...]}`: plain messages (no
/// subject, attributes or message structure) to one standard topic. Each message is checked as
/// Publish checks a request with only `Message` set (non-empty, at most 256 KiB) and stored and fanned
/// out to the topic's subscriptions (filter policies applied) exactly as Publish does, with its own
/// message id. Answers `{"Published": n, "Failed": [{"Index", "Code", "Message", "SenderFault"}]}`
/// (`Index` into `Messages`); topic errors (not found, FIFO) fail the whole call.
pub(crate) fn publish_messages(
    sns: &Inner,
    _ctx: &RequestContext,
    mut input: Value,
) -> Result<Value, ApiError> {
    let arn = TopicArn::parse_param(str_field(&input, "TopicArn").unwrap_or(""), "TopicArn")?;
    let messages = match input.get_mut("Messages").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let cached = sns
        .topics
        .topic(&*sns.store, &arn)?
        .ok_or_else(error::topic_not_found)?;
    if cached.topic.is_fifo() || arn.is_fifo() {
        return Err(error::invalid_reason(
            "TopicArn",
            "FIFO topics need a MessageGroupId: use Publish or PublishBatch",
        ));
    }
    // No confirmed subscription: publishing stores and sends nothing, so only the checks remain
    // (no message ids, no stored messages: nobody sees them).
    let nobody = cached.subscriptions.is_empty();
    let mut prepared = Vec::with_capacity(if nobody { 0 } else { messages.len() });
    let mut accepted = 0usize;
    let mut failed = Vec::new();
    for (i, m) in messages.into_iter().enumerate() {
        let refused = match m {
            Value::String(message) if message.is_empty() => error::invalid("Empty message"),
            Value::String(message) if message.len() > MAX_MESSAGE_BYTES => {
                error::invalid("Message too long")
            }
            Value::String(_) if nobody => {
                accepted += 1;
                continue;
            }
            Value::String(message) => {
                prepared.push(Prepared {
                    subject: None,
                    size: message.len(),
                    message,
                    per_protocol: BTreeMap::new(),
                    attributes: BTreeMap::new(),
                    group_id: None,
                    dedup_id: None,
                });
                continue;
            }
            _ => error::invalid("Message"),
        };
        failed.push(json!({
            "Index": i,
            "Code": refused.kind.strip_suffix("Exception").unwrap_or(&refused.kind),
            "Message": refused.message,
            "SenderFault": true,
        }));
    }
    let published = if prepared.is_empty() {
        accepted
    } else {
        store_messages(sns, &arn, prepared)?.len()
    };
    Ok(json!({ "Published": published, "Failed": failed }))
}

/// May `OpsloopPublishMessages` run on the caller's thread? Yes when the topic is cached, standard
/// and has no confirmed subscription: then publishing writes nothing to the store.
pub(crate) fn publishes_nothing_durable(sns: &Inner, input: &Value) -> bool {
    let Some(arn) =
        str_field(input, "TopicArn").and_then(|a| TopicArn::parse_param(a, "TopicArn").ok())
    else {
        return false;
    };
    matches!(sns.topics.peek(&arn), Some(Some(t)) if t.subscriptions.is_empty() && !t.topic.is_fifo() && !arn.is_fifo())
}

fn valid_batch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn publish_batch(
    sns: &Inner,
    _ctx: &RequestContext,
    mut input: Value,
) -> Result<Value, ApiError> {
    let arn = TopicArn::parse_param(str_field(&input, "TopicArn").unwrap_or(""), "TopicArn")?;
    let entries = match input.get_mut("PublishBatchRequestEntries").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    if entries.is_empty() {
        return Err(ApiError::new(
            BATCH_EMPTY,
            "The batch request doesn't contain any entries.",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(ApiError::new(
            BATCH_TOO_MANY,
            "The batch request contains more entries than permissible.",
        ));
    }
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| str_field(e, "Id").unwrap_or(""))
        .collect();
    if ids.iter().any(|id| !valid_batch_id(id)) {
        return Err(ApiError::new(
            BATCH_INVALID_ID,
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
        ));
    }
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        return Err(ApiError::new(
            BATCH_IDS_NOT_DISTINCT,
            "Two or more batch entries in the request have the same Id.",
        ));
    }
    let total: usize = entries
        .iter()
        .map(|e| {
            str_field(e, "Message").map_or(0, str::len) + parse_attributes(e).map_or(0, |(_, n)| n)
        })
        .sum();
    if total > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            BATCH_TOO_LONG,
            "The length of all the messages put together is more than the limit.",
        ));
    }
    let cached = sns
        .topics
        .topic(&*sns.store, &arn)?
        .ok_or_else(error::topic_not_found)?;
    let topic = &cached.topic;
    let mut ok_ids = Vec::new();
    let mut prepared = Vec::new();
    let mut failed = Vec::new();
    for (entry, id) in entries.iter().zip(&ids) {
        match prepare(entry, topic) {
            Ok(p) => {
                ok_ids.push(id.to_string());
                prepared.push(p);
            }
            Err(e) => failed.push(json!({
                "Id": id,
                "Code": e.kind.strip_suffix("Exception").unwrap_or(&e.kind),
                "Message": e.message,
                "SenderFault": true,
            })),
        }
    }
    let published = if prepared.is_empty() {
        Vec::new()
    } else {
        store_messages(sns, &arn, prepared)?
    };
    let successful: Vec<Value> = ok_ids
        .into_iter()
        .zip(published)
        .map(|(id, p)| {
            let mut v = json!({ "Id": id, "MessageId": p.message_id });
            if let Some(seq) = p.sequence {
                v["SequenceNumber"] = Value::String(seq);
            }
            v
        })
        .collect();
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

/// The document a subscription's filter policy is evaluated against.
pub(crate) fn filter_document(
    message: &StoredMessage,
    protocol: &str,
    body_scope: bool,
) -> Option<Value> {
    if body_scope {
        serde_json::from_str(message.text_for(protocol)).ok()
    } else {
        Some(filter::attributes_document(message.attributes.iter().map(
            |(k, a)| (k.as_str(), a.data_type.as_str(), a.value.as_str()),
        )))
    }
}

#[cfg(test)]
mod tests;
