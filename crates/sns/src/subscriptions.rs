//! Subscription operations: Subscribe (protocol and endpoint checks, attributes, the pending state
//! and the SubscriptionConfirmation it sends), ConfirmSubscription (tokens valid for three days),
//! Unsubscribe (with an UnsubscribeConfirmation for HTTP/S endpoints), ListSubscriptions,
//! ListSubscriptionsByTopic, GetSubscriptionAttributes and SetSubscriptionAttributes.

use std::collections::BTreeMap;

use opsloop_core::{ApiError, RequestContext, Value};
use rand::RngCore;
use serde_json::{json, Map};

use crate::arn::{self, SubscriptionArn, TopicArn};
use crate::delivery::{self, policy};
use crate::doc::{self, str_field};
use crate::error::{self, FILTER_POLICY_LIMIT};
use crate::filter::{Limits, Pattern};
use crate::state::{self, DeliveryKind, State, Subscription, TokenRecord, Topic};
use crate::topics;
use crate::Inner;

const PAGE: usize = 100;
/// How long a confirmation token stays valid.
pub const TOKEN_TTL_MS: i64 = 3 * 24 * 3600 * 1000;
/// Subscriptions with a filter policy per topic.
pub const MAX_FILTER_POLICIES_PER_TOPIC: usize = 200;
/// What Subscribe answers for an unconfirmed subscription.
pub const PENDING_ARN: &str = "pending confirmation";
/// What the list operations show for an unconfirmed subscription.
pub const PENDING_LIST_ARN: &str = "PendingConfirmation";

/// Protocols this release delivers to.
pub const PROTOCOLS: &[&str] = &["http", "https", "email", "email-json", "slack", "teams"];
/// SNS protocols this release knows but does not deliver to.
const UNSUPPORTED: &[&str] = &["sqs", "lambda", "sms", "application", "firehose"];

const SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

/// Chat webhooks cannot answer a confirmation, so their subscriptions start confirmed.
pub fn auto_confirmed(protocol: &str) -> bool {
    matches!(protocol, "slack" | "teams")
}

fn is_webhook(protocol: &str) -> bool {
    matches!(protocol, "http" | "https" | "slack" | "teams")
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

fn check_endpoint(protocol: &str, endpoint: &str) -> Result<(), ApiError> {
    if endpoint.is_empty() {
        return Err(error::invalid("Endpoint"));
    }
    let url_ok = |scheme: &str| {
        endpoint.strip_prefix(scheme).is_some_and(|rest| {
            !rest.is_empty()
                && endpoint
                    .parse::<http::Uri>()
                    .is_ok_and(|u| u.host().is_some())
        })
    };
    let ok = match protocol {
        "http" => url_ok("http://"),
        "https" => url_ok("https://"),
        "slack" | "teams" => url_ok("https://") || url_ok("http://"),
        _ => valid_email(endpoint),
    };
    if ok {
        Ok(())
    } else if protocol.starts_with("email") {
        Err(error::invalid("Email address"))
    } else {
        Err(error::invalid("Endpoint must match the specified protocol"))
    }
}

/// Validate subscription attribute `name` = `value` for `protocol`, given the other attributes
/// (for the filter-policy scope). Returns the reason on failure.
fn check_attribute(
    name: &str,
    value: &str,
    protocol: &str,
    attrs: &BTreeMap<String, String>,
) -> Result<(), String> {
    match name {
        "RawMessageDelivery" => {
            if value != "true" && value != "false" {
                return Err(format!("RawMessageDelivery: Invalid value [{value}]. Must be true or false."));
            }
            if value == "true" && !matches!(protocol, "http" | "https") {
                return Err(format!("Delivery protocol [{protocol}] does not support raw message delivery."));
            }
            Ok(())
        }
        "DeliveryPolicy" => {
            if value.is_empty() {
                return Ok(());
            }
            if !is_webhook(protocol) {
                return Err("DeliveryPolicy: Delivery policy can only be set for HTTP(S) subscriptions".into());
            }
            policy::parse_subscription(value).map(|_| ())
        }
        "FilterPolicyScope" => match value {
            "MessageAttributes" | "MessageBody" => {
                if let Some(fp) = attrs.get("FilterPolicy").filter(|p| !p.is_empty()) {
                    compile_filter(fp, value).map(|_| ())
                } else {
                    Ok(())
                }
            }
            _ => Err(format!("FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or MessageAttributes")),
        },
        "FilterPolicy" => {
            if value.is_empty() {
                return Ok(());
            }
            let scope = attrs.get("FilterPolicyScope").map(String::as_str).unwrap_or("MessageAttributes");
            compile_filter(value, scope).map(|_| ())
        }
        "RedrivePolicy" => {
            if value.is_empty() {
                return Ok(());
            }
            match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(m)) if m.get("deadLetterTargetArn").is_some_and(Value::is_string) => Ok(()),
                _ => Err("RedrivePolicy: redrive policy must be a JSON object with a deadLetterTargetArn".into()),
            }
        }
        "SubscriptionRoleArn" | "ReplayPolicy" => Ok(()),
        _ => Err(format!("Unknown attribute {name}")),
    }
}

/// Compile a filter policy for a scope; the error is SNS's `FilterPolicy: <reason>`.
pub fn compile_filter(text: &str, scope: &str) -> Result<Pattern, String> {
    Pattern::compile(text, &Limits::sns(scope == "MessageBody"))
        .map_err(|e| format!("FilterPolicy: {e}"))
}

fn new_token() -> String {
    let mut bytes = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn filter_policy_count(subs: &[Subscription], except: &str) -> usize {
    subs.iter()
        .filter(|s| s.arn != except && s.attr("FilterPolicy").is_some_and(|p| !p.is_empty()))
        .count()
}

pub(crate) fn subscribe(
    sns: &Inner,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let protocol = str_field(&input, "Protocol").unwrap_or("").to_string();
    let endpoint = str_field(&input, "Endpoint")
        .unwrap_or("")
        .trim()
        .to_string();
    let requested = doc::string_map(&input, "Attributes")?;
    let return_arn = doc::bool_field(&input, "ReturnSubscriptionArn").unwrap_or(false);
    let (topic_arn, topic) = topics::load(sns, &input, "TopicArn")?;

    if UNSUPPORTED.contains(&protocol.as_str()) {
        return Err(error::invalid_reason(
            "Protocol",
            format!("{protocol} subscriptions are not supported by this opsloop release; supported protocols: {}", PROTOCOLS.join(", ")),
        ));
    }
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return Err(error::invalid(format!("Invalid protocol type: {protocol}")));
    }
    if topic.is_fifo() {
        return Err(error::invalid_reason(
            "Protocol",
            "FIFO topics deliver only to Amazon SQS queues, which this opsloop release does not support",
        ));
    }
    check_endpoint(&protocol, &endpoint)?;
    for (k, v) in &requested {
        check_attribute(k, v, &protocol, &requested)
            .map_err(|r| error::invalid_reason("Attributes", r))?;
    }

    let _guard = sns.lock.lock();
    let st = State::new(&*sns.store);
    let subs = st.topic_subscriptions(&topic_arn)?;
    let now = doc::now_ms();
    if let Some(existing) = subs
        .iter()
        .find(|s| s.protocol == protocol && s.endpoint == endpoint)
    {
        let differs = requested
            .iter()
            .any(|(k, v)| existing.attr(k).unwrap_or("") != v);
        if differs {
            return Err(error::invalid_reason(
                "Attributes",
                "Subscription already exists with different attributes",
            ));
        }
        if !existing.confirmed {
            send_confirmation(sns, &topic, existing, now)?;
        }
        let arn = if existing.confirmed || return_arn {
            existing.arn.clone()
        } else {
            PENDING_ARN.to_string()
        };
        return Ok(json!({ "SubscriptionArn": arn }));
    }
    if requested.get("FilterPolicy").is_some_and(|p| !p.is_empty())
        && filter_policy_count(&subs, "") >= MAX_FILTER_POLICIES_PER_TOPIC
    {
        return Err(ApiError::new(
            FILTER_POLICY_LIMIT,
            "Filter policy limit exceeded",
        ));
    }

    let sub_arn = SubscriptionArn {
        topic: topic_arn.clone(),
        id: uuid::Uuid::new_v4().to_string(),
    };
    let mut attributes = BTreeMap::new();
    for (k, v) in requested {
        if !v.is_empty() {
            attributes.insert(k, v);
        }
    }
    let confirmed = auto_confirmed(&protocol);
    let sub = Subscription {
        arn: sub_arn.to_string(),
        topic_arn: topic.arn.clone(),
        owner: ctx.account_id.clone(),
        protocol,
        endpoint,
        confirmed,
        confirmation_authenticated: false,
        attributes,
        created_ms: now,
        principal: format!("arn:aws:iam::{}:root", ctx.account_id),
    };
    if confirmed {
        st.put(state::SUBSCRIPTIONS, &sub_arn.key(), &sub)?;
    } else {
        st.put(state::SUBSCRIPTIONS, &sub_arn.key(), &sub)?;
        send_confirmation(sns, &topic, &sub, now)?;
    }
    tracing::info!(subscription = %sub.arn, protocol = %sub.protocol, confirmed, "subscription created");
    let arn = if confirmed || return_arn {
        sub.arn
    } else {
        PENDING_ARN.to_string()
    };
    Ok(json!({ "SubscriptionArn": arn }))
}

/// Record a new token and queue a SubscriptionConfirmation to `sub`.
fn send_confirmation(
    sns: &Inner,
    topic: &Topic,
    sub: &Subscription,
    now: i64,
) -> Result<(), ApiError> {
    let token = new_token();
    let record = TokenRecord {
        topic_arn: topic.arn.clone(),
        subscription_arn: sub.arn.clone(),
        expires_ms: now + TOKEN_TTL_MS,
        restore: None,
    };
    let kind = DeliveryKind::SubscriptionConfirmation {
        message_id: uuid::Uuid::new_v4().to_string(),
        token: token.clone(),
        timestamp_ms: now,
    };
    let delivery = delivery::make_delivery(topic, sub, kind, now);
    sns.store
        .batch(vec![
            state::put_op(state::TOKENS, &token, &record),
            state::put_op(state::OUTBOX, &delivery.id, &delivery),
        ])
        .map_err(error::store)?;
    sns.schedule.enqueue(&delivery.id, delivery.due_ms, None);
    Ok(())
}

/// Confirm with `token` for `topic_arn`. `authenticated`: the caller signed the request and asked
/// for AuthenticateOnUnsubscribe. Shared by ConfirmSubscription and the public SubscribeURL.
pub(crate) fn confirm(
    sns: &Inner,
    topic_arn: &TopicArn,
    token: &str,
    authenticated: bool,
) -> Result<String, ApiError> {
    let _guard = sns.lock.lock();
    let st = State::new(&*sns.store);
    let topic = st.topic(topic_arn)?.ok_or_else(error::topic_not_found)?;
    let record: TokenRecord = st
        .get(state::TOKENS, token)?
        .filter(|r: &TokenRecord| r.topic_arn == topic.arn && r.expires_ms > doc::now_ms())
        .ok_or_else(|| error::invalid("Token"))?;
    let sub_arn =
        SubscriptionArn::parse(&record.subscription_arn).ok_or_else(|| error::invalid("Token"))?;
    let mut sub = match st.subscription(&sub_arn)? {
        Some(s) => s,
        None => match record.restore.clone() {
            Some(s) => s,
            None => return Err(error::invalid("Token")),
        },
    };
    let newly = !sub.confirmed;
    sub.confirmed = true;
    if authenticated {
        sub.confirmation_authenticated = true;
    }
    st.put(state::SUBSCRIPTIONS, &sub_arn.key(), &sub)?;
    if newly {
        tracing::info!(subscription = %sub.arn, authenticated, "subscription confirmed");
    }
    Ok(sub.arn)
}

pub(crate) fn confirm_subscription(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let topic_arn = TopicArn::parse_param(str_field(&input, "TopicArn").unwrap_or(""), "TopicArn")?;
    let token = str_field(&input, "Token").unwrap_or("");
    let authenticated = doc::bool_field(&input, "AuthenticateOnUnsubscribe").unwrap_or(false);
    let arn = confirm(sns, &topic_arn, token, authenticated)?;
    Ok(json!({ "SubscriptionArn": arn }))
}

/// Remove a subscription; HTTP/S endpoints get an UnsubscribeConfirmation whose token restores it.
pub(crate) fn unsubscribe_arn(
    sns: &Inner,
    arn: &SubscriptionArn,
    via_public_url: bool,
) -> Result<(), ApiError> {
    let _guard = sns.lock.lock();
    let st = State::new(&*sns.store);
    let sub = st
        .subscription(arn)?
        .ok_or_else(error::subscription_not_found)?;
    if via_public_url && sub.confirmation_authenticated {
        return Err(ApiError::new(
            error::AUTHORIZATION,
            "This subscription was confirmed with AuthenticateOnUnsubscribe; unsubscribe with a signed Unsubscribe request",
        ));
    }
    let now = doc::now_ms();
    let mut ops = vec![state::delete_op(state::SUBSCRIPTIONS, &arn.key())];
    let mut queued = None;
    if let Some(mut topic) = st.topic(&arn.topic)? {
        topic.subscriptions_deleted += 1;
        ops.push(state::put_op(state::TOPICS, &arn.topic.key(), &topic));
        if matches!(sub.protocol.as_str(), "http" | "https") && sub.confirmed {
            let token = new_token();
            let record = TokenRecord {
                topic_arn: topic.arn.clone(),
                subscription_arn: sub.arn.clone(),
                expires_ms: now + TOKEN_TTL_MS,
                restore: Some(sub.clone()),
            };
            let kind = DeliveryKind::UnsubscribeConfirmation {
                message_id: uuid::Uuid::new_v4().to_string(),
                token: token.clone(),
                timestamp_ms: now,
            };
            let delivery = delivery::make_delivery(&topic, &sub, kind, now);
            ops.push(state::put_op(state::TOKENS, &token, &record));
            ops.push(state::put_op(state::OUTBOX, &delivery.id, &delivery));
            queued = Some((delivery.id, delivery.due_ms));
        }
    }
    sns.store.batch(ops).map_err(error::store)?;
    if let Some((id, due)) = queued {
        sns.schedule.enqueue(&id, due, None);
    }
    tracing::info!(subscription = %sub.arn, "subscription deleted");
    Ok(())
}

fn parse_sub_arn(input: &Value) -> Result<SubscriptionArn, ApiError> {
    let text = str_field(input, "SubscriptionArn").unwrap_or("");
    SubscriptionArn::parse(text).ok_or_else(|| error::invalid("SubscriptionArn"))
}

pub(crate) fn unsubscribe(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let arn = parse_sub_arn(&input)?;
    unsubscribe_arn(sns, &arn, false)?;
    Ok(json!({}))
}

fn list_entry(s: &Subscription) -> Value {
    json!({
        "SubscriptionArn": if s.confirmed { s.arn.as_str() } else { PENDING_LIST_ARN },
        "Owner": s.owner,
        "Protocol": s.protocol,
        "Endpoint": s.endpoint,
        "TopicArn": s.topic_arn,
    })
}

fn list_page(sns: &Inner, prefix: &str, input: &Value) -> Result<Value, ApiError> {
    let after = match str_field(input, "NextToken") {
        Some(t) if !t.is_empty() => Some(doc::decode_token(t, prefix)?),
        _ => None,
    };
    let rows: Vec<(String, Subscription)> = State::new(&*sns.store).scan_page(
        state::SUBSCRIPTIONS,
        prefix,
        after.as_deref(),
        PAGE + 1,
    )?;
    let more = rows.len() > PAGE;
    let page = &rows[..rows.len().min(PAGE)];
    let mut out =
        json!({ "Subscriptions": page.iter().map(|(_, s)| list_entry(s)).collect::<Vec<_>>() });
    if more {
        if let Some((last, _)) = page.last() {
            out["NextToken"] = Value::String(doc::encode_token(last));
        }
    }
    Ok(out)
}

pub(crate) fn list_subscriptions(
    sns: &Inner,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    list_page(
        sns,
        &arn::region_prefix(&ctx.account_id, &ctx.region),
        &input,
    )
}

pub(crate) fn list_subscriptions_by_topic(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let (arn, _) = topics::load(sns, &input, "TopicArn")?;
    list_page(sns, &format!("{}/", arn.key()), &input)
}

pub(crate) fn get_subscription_attributes(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let arn = parse_sub_arn(&input)?;
    let st = State::new(&*sns.store);
    let sub = st
        .subscription(&arn)?
        .ok_or_else(error::subscription_not_found)?;
    let mut attrs = Map::new();
    for (k, v) in &sub.attributes {
        attrs.insert(k.clone(), Value::String(v.clone()));
    }
    let s = |v: &str| Value::String(v.to_string());
    attrs.insert("SubscriptionArn".into(), s(&sub.arn));
    attrs.insert("TopicArn".into(), s(&sub.topic_arn));
    attrs.insert("Owner".into(), s(&sub.owner));
    attrs.insert("Protocol".into(), s(&sub.protocol));
    attrs.insert("Endpoint".into(), s(&sub.endpoint));
    attrs.insert(
        "ConfirmationWasAuthenticated".into(),
        s(if sub.confirmation_authenticated {
            "true"
        } else {
            "false"
        }),
    );
    attrs.insert(
        "PendingConfirmation".into(),
        s(if sub.confirmed { "false" } else { "true" }),
    );
    attrs.insert(
        "RawMessageDelivery".into(),
        s(if sub.raw() { "true" } else { "false" }),
    );
    attrs.insert("SubscriptionPrincipal".into(), s(&sub.principal));
    if sub.attr("FilterPolicy").is_some() && !attrs.contains_key("FilterPolicyScope") {
        attrs.insert("FilterPolicyScope".into(), s("MessageAttributes"));
    }
    if is_webhook(&sub.protocol) {
        let topic = st.topic(&arn.topic)?;
        let tp = topic
            .as_ref()
            .and_then(|t| t.attr("DeliveryPolicy"))
            .and_then(|p| policy::parse_topic(p).ok());
        let sp = sub
            .attr("DeliveryPolicy")
            .and_then(|p| policy::parse_subscription(p).ok());
        attrs.insert(
            "EffectiveDeliveryPolicy".into(),
            s(&policy::subscription_effective_json(
                tp.as_ref(),
                sp.as_ref(),
            )),
        );
    }
    Ok(json!({ "Attributes": attrs }))
}

pub(crate) fn set_subscription_attributes(
    sns: &Inner,
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let arn = parse_sub_arn(&input)?;
    let name = str_field(&input, "AttributeName").unwrap_or("").to_string();
    let value = str_field(&input, "AttributeValue")
        .unwrap_or("")
        .to_string();
    if !SETTABLE.contains(&name.as_str()) {
        return Err(error::invalid("AttributeName"));
    }
    let _guard = sns.lock.lock();
    let st = State::new(&*sns.store);
    let mut sub = st
        .subscription(&arn)?
        .ok_or_else(error::subscription_not_found)?;
    check_attribute(&name, &value, &sub.protocol, &sub.attributes).map_err(error::invalid)?;
    if name == "FilterPolicy" && !value.is_empty() && sub.attr("FilterPolicy").is_none() {
        let subs = st.topic_subscriptions(&arn.topic)?;
        if filter_policy_count(&subs, &sub.arn) >= MAX_FILTER_POLICIES_PER_TOPIC {
            return Err(ApiError::new(
                FILTER_POLICY_LIMIT,
                "Filter policy limit exceeded",
            ));
        }
    }
    if value.is_empty() {
        sub.attributes.remove(&name);
        if name == "FilterPolicy" {
            sub.attributes.remove("FilterPolicyScope");
        }
    } else {
        sub.attributes.insert(name, value);
    }
    st.put(state::SUBSCRIPTIONS, &arn.key(), &sub)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_match_protocols() {
        assert!(check_endpoint("http", "http://127.0.0.1:8080/hook").is_ok());
        assert!(check_endpoint("http", "https://example.com/").is_err());
        assert!(check_endpoint("https", "https://example.com/x").is_ok());
        assert!(check_endpoint("https", "https://").is_err());
        assert!(check_endpoint("email", "ops@example.com").is_ok());
        assert_eq!(
            check_endpoint("email", "not-an-address")
                .unwrap_err()
                .message,
            "Invalid parameter: Email address"
        );
        assert!(check_endpoint("email-json", "a b@example.com").is_err());
        assert!(check_endpoint("slack", "https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(check_endpoint("teams", "ftp://x").is_err());
        assert_eq!(
            check_endpoint("http", "").unwrap_err().message,
            "Invalid parameter: Endpoint"
        );
    }

    #[test]
    fn attribute_rules() {
        let none = BTreeMap::new();
        assert!(check_attribute("RawMessageDelivery", "true", "https", &none).is_ok());
        assert!(check_attribute("RawMessageDelivery", "true", "email", &none).is_err());
        assert!(check_attribute("RawMessageDelivery", "yes", "http", &none).is_err());
        assert!(check_attribute(
            "DeliveryPolicy",
            r#"{"healthyRetryPolicy":{"numRetries":1}}"#,
            "email",
            &none
        )
        .is_err());
        assert!(check_attribute("FilterPolicy", r#"{"a":{"b":["c"]}}"#, "http", &none).is_err());
        let body: BTreeMap<String, String> =
            [("FilterPolicyScope".to_string(), "MessageBody".to_string())].into();
        assert!(check_attribute("FilterPolicy", r#"{"a":{"b":["c"]}}"#, "http", &body).is_ok());
        let nested: BTreeMap<String, String> = [(
            "FilterPolicy".to_string(),
            r#"{"a":{"b":["c"]}}"#.to_string(),
        )]
        .into();
        assert!(
            check_attribute("FilterPolicyScope", "MessageAttributes", "http", &nested).is_err()
        );
        assert!(check_attribute("FilterPolicyScope", "Everything", "http", &none).is_err());
        assert!(check_attribute(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq"}"#,
            "http",
            &none
        )
        .is_ok());
        assert!(check_attribute("Nope", "x", "http", &none).is_err());
    }

    #[test]
    fn tokens_are_long_and_unique() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 128);
        assert_ne!(a, b);
    }
}
