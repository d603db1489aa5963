//! Durable SNS state in the control store: the record types (topics, subscriptions, confirmation
//! tokens, published messages and the delivery outbox) and typed get/put/scan helpers over the
//! `sns.*` tables. Every record is one JSON document.

use std::collections::BTreeMap;

use opsloop_store::{ControlStore, WriteOp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::InternalError;

pub const TOPICS: &str = "sns.topics";
pub const SUBSCRIPTIONS: &str = "sns.subscriptions";
pub const TOKENS: &str = "sns.tokens";
pub const MESSAGES: &str = "sns.messages";
pub const OUTBOX: &str = "sns.outbox";
pub const DEDUP: &str = "sns.dedup";
pub const META: &str = "sns.meta";

/// A topic. `attributes` holds the settable attributes as strings, exactly as SNS returns them
/// (including the generated `Policy`); computed ones (counts, ARN, owner) are added when read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Topic {
    pub arn: String,
    pub name: String,
    pub account: String,
    pub region: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub subscriptions_deleted: u64,
    pub created_ms: i64,
    /// Next FIFO sequence number.
    #[serde(default)]
    pub next_sequence: u64,
}

impl Topic {
    pub fn is_fifo(&self) -> bool {
        self.attributes
            .get("FifoTopic")
            .is_some_and(|v| v == "true")
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// A subscription of one endpoint to one topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    pub owner: String,
    pub protocol: String,
    pub endpoint: String,
    pub confirmed: bool,
    #[serde(default)]
    pub confirmation_authenticated: bool,
    /// Settable attributes (RawMessageDelivery, FilterPolicy, FilterPolicyScope, DeliveryPolicy, ...).
    pub attributes: BTreeMap<String, String>,
    pub created_ms: i64,
    /// The principal that subscribed (an IAM-style ARN).
    #[serde(default)]
    pub principal: String,
}

impl Subscription {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn raw(&self) -> bool {
        self.attr("RawMessageDelivery")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A confirmation token handed out with a SubscriptionConfirmation (or UnsubscribeConfirmation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    pub topic_arn: String,
    pub subscription_arn: String,
    pub expires_ms: i64,
    /// For an UnsubscribeConfirmation token: the deleted subscription, to restore on confirmation.
    #[serde(default)]
    pub restore: Option<Subscription>,
}

/// One message attribute as published (value as the string SNS delivers: base64 for Binary).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageAttribute {
    pub data_type: String,
    pub value: String,
}

/// A published message, kept until every delivery of it is finished.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredMessage {
    pub id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    /// The default message text.
    pub message: String,
    /// Per-protocol texts for `MessageStructure=json` (keys other than `default`).
    #[serde(default)]
    pub per_protocol: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub timestamp_ms: i64,
    pub signature_version: String,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub dedup_id: Option<String>,
    #[serde(default)]
    pub sequence: Option<String>,
}

impl StoredMessage {
    /// The text for `protocol` (`MessageStructure=json` overrides, else the default).
    pub fn text_for(&self, protocol: &str) -> &str {
        self.per_protocol
            .get(protocol)
            .map(String::as_str)
            .unwrap_or(&self.message)
    }
}

/// What a delivery carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum DeliveryKind {
    Notification {
        message_id: String,
    },
    SubscriptionConfirmation {
        message_id: String,
        token: String,
        timestamp_ms: i64,
    },
    UnsubscribeConfirmation {
        message_id: String,
        token: String,
        timestamp_ms: i64,
    },
}

impl DeliveryKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            DeliveryKind::Notification { .. } => "Notification",
            DeliveryKind::SubscriptionConfirmation { .. } => "SubscriptionConfirmation",
            DeliveryKind::UnsubscribeConfirmation { .. } => "UnsubscribeConfirmation",
        }
    }

    pub fn message_id(&self) -> &str {
        match self {
            DeliveryKind::Notification { message_id }
            | DeliveryKind::SubscriptionConfirmation { message_id, .. }
            | DeliveryKind::UnsubscribeConfirmation { message_id, .. } => message_id,
        }
    }

    /// The shared message row this delivery needs, if any.
    pub fn shared_message(&self) -> Option<&str> {
        match self {
            DeliveryKind::Notification { message_id } => Some(message_id),
            _ => None,
        }
    }
}

/// One pending delivery of one message to one endpoint: a row of the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub subscription_arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub kind: DeliveryKind,
    pub raw: bool,
    /// Signature version of the topic when the delivery was created ("1" or "2").
    pub signature_version: String,
    /// The effective retry policy, resolved when the delivery was created.
    pub policy: crate::delivery::policy::RetryPolicy,
    /// `Content-Type` for HTTP/S deliveries.
    pub content_type: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_ms: i64,
    pub due_ms: i64,
}

/// Typed access to the tables.
pub struct State<'a> {
    pub store: &'a dyn ControlStore,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (string keys, no non-finite floats).
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InternalError> {
    Ok(serde_json::from_slice(bytes)?)
}

pub fn put_op<T: Serialize>(table: &str, key: &str, value: &T) -> WriteOp {
    WriteOp::Put {
        table: table.into(),
        key: key.into(),
        value: encode(value),
    }
}

pub fn delete_op(table: &str, key: &str) -> WriteOp {
    WriteOp::Delete {
        table: table.into(),
        key: key.into(),
    }
}

impl<'a> State<'a> {
    pub fn new(store: &'a dyn ControlStore) -> Self {
        State { store }
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<T>, InternalError> {
        match self.store.get(table, key)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(
        &self,
        table: &str,
        key: &str,
        value: &T,
    ) -> Result<(), InternalError> {
        Ok(self.store.put(table, key, &encode(value))?)
    }

    /// Every row under `prefix` (in pages, so a large table is not read in one statement).
    pub fn scan_all<T: DeserializeOwned>(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, InternalError> {
        const PAGE: usize = 500;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self.store.scan(table, prefix, after.as_deref(), PAGE)?;
            let n = rows.len();
            for (k, v) in rows {
                let value = decode(&v)?;
                after = Some(k.clone());
                out.push((k, value));
            }
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    /// Up to `limit` rows under `prefix` after `after`.
    pub fn scan_page<T: DeserializeOwned>(
        &self,
        table: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>, InternalError> {
        self.store
            .scan(table, prefix, after, limit)?
            .into_iter()
            .map(|(k, v)| Ok((k, decode(&v)?)))
            .collect()
    }

    pub fn topic(&self, arn: &crate::arn::TopicArn) -> Result<Option<Topic>, InternalError> {
        self.get(TOPICS, &arn.key())
    }

    pub fn subscription(
        &self,
        arn: &crate::arn::SubscriptionArn,
    ) -> Result<Option<Subscription>, InternalError> {
        self.get(SUBSCRIPTIONS, &arn.key())
    }

    /// Subscriptions of one topic, in key order.
    pub fn topic_subscriptions(
        &self,
        topic: &crate::arn::TopicArn,
    ) -> Result<Vec<Subscription>, InternalError> {
        Ok(self
            .scan_all::<Subscription>(SUBSCRIPTIONS, &format!("{}/", topic.key()))?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_store::SqliteStore;

    #[test]
    fn scan_all_pages_through_large_tables() {
        let store = SqliteStore::memory().unwrap();
        for i in 0..1234 {
            store.put("t", &format!("p/{i:05}"), b"1").unwrap();
        }
        store.put("t", "q/0", b"1").unwrap();
        let rows: Vec<(String, u32)> = State::new(&store).scan_all("t", "p/").unwrap();
        assert_eq!(rows.len(), 1234);
        assert_eq!(rows[1233].0, "p/01233");
    }

    #[test]
    fn corrupt_rows_are_internal_errors() {
        let store = SqliteStore::memory().unwrap();
        store.put(TOPICS, "k", b"not json").unwrap();
        let r: Result<Option<Topic>, _> = State::new(&store).get(TOPICS, "k");
        assert!(matches!(r, Err(InternalError::Corrupt(_))));
    }

    #[test]
    fn message_text_per_protocol() {
        let mut m = StoredMessage {
            id: "1".into(),
            topic_arn: "t".into(),
            subject: None,
            message: "default".into(),
            per_protocol: BTreeMap::new(),
            attributes: BTreeMap::new(),
            timestamp_ms: 0,
            signature_version: "1".into(),
            group_id: None,
            dedup_id: None,
            sequence: None,
        };
        m.per_protocol.insert("email".into(), "for email".into());
        assert_eq!(m.text_for("email"), "for email");
        assert_eq!(m.text_for("http"), "default");
    }
}
