//! What an endpoint receives: the signed SNS JSON documents (Notification, SubscriptionConfirmation,
//! UnsubscribeConfirmation) for HTTP/S and `email-json`, the plain-text mails for `email`, the
//! headers of an HTTP/S delivery, and the public URLs messages carry (SubscribeURL,
//! UnsubscribeURL, SigningCertURL).

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::doc::iso_millis;
use crate::signing::{string_to_sign, Signer, SigningError};
use crate::state::{Delivery, DeliveryKind, StoredMessage};

use super::smtp::Email;

/// Path prefix of the routes [`crate::Sns::handle_public`] answers.
pub const PUBLIC_PREFIX: &str = "/_opsloop/sns/";

/// Public URLs of this server.
pub struct Urls<'a> {
    pub base: &'a str,
    pub secret: &'a [u8],
}

impl Urls<'_> {
    fn base(&self) -> &str {
        self.base.trim_end_matches('/')
    }

    pub fn subscribe(&self, topic_arn: &str, token: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "ConfirmSubscription")
            .append_pair("TopicArn", topic_arn)
            .append_pair("Token", token)
            .finish();
        format!("{}{PUBLIC_PREFIX}confirm?{query}", self.base())
    }

    pub fn unsubscribe(&self, subscription_arn: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "Unsubscribe")
            .append_pair("SubscriptionArn", subscription_arn)
            .append_pair(
                "Signature",
                &unsubscribe_signature(self.secret, subscription_arn),
            )
            .finish();
        format!("{}{PUBLIC_PREFIX}unsubscribe?{query}", self.base())
    }

    pub fn cert(&self, signer: &Signer) -> String {
        format!("{}{PUBLIC_PREFIX}{}", self.base(), signer.cert_name())
    }
}

/// The keyed hash that makes an UnsubscribeURL unguessable from the subscription ARN alone.
pub fn unsubscribe_signature(secret: &[u8], subscription_arn: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(subscription_arn.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn text_for<'a>(d: &Delivery, msg: &'a StoredMessage) -> &'a str {
    msg.text_for(&d.protocol)
}

/// The signed JSON document of a delivery, as HTTP/S and `email-json` endpoints receive it.
pub fn sns_json(
    d: &Delivery,
    msg: Option<&StoredMessage>,
    urls: &Urls<'_>,
    signer: &Signer,
) -> Result<String, SigningError> {
    let mut doc = Map::new();
    let s = |v: &str| Value::String(v.to_string());
    let kind = d.kind.type_name();
    doc.insert("Type".into(), s(kind));
    doc.insert("MessageId".into(), s(d.kind.message_id()));
    match (&d.kind, msg) {
        (DeliveryKind::Notification { .. }, Some(m)) => {
            doc.insert("TopicArn".into(), s(&d.topic_arn));
            if let Some(subject) = &m.subject {
                doc.insert("Subject".into(), s(subject));
            }
            doc.insert("Message".into(), s(text_for(d, m)));
            doc.insert("Timestamp".into(), s(&iso_millis(m.timestamp_ms)));
        }
        (
            DeliveryKind::SubscriptionConfirmation {
                token,
                timestamp_ms,
                ..
            },
            _,
        ) => {
            doc.insert("Token".into(), s(token));
            doc.insert("TopicArn".into(), s(&d.topic_arn));
            doc.insert(
                "Message".into(),
                s(&format!(
                    "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                    d.topic_arn
                )),
            );
            doc.insert(
                "SubscribeURL".into(),
                s(&urls.subscribe(&d.topic_arn, token)),
            );
            doc.insert("Timestamp".into(), s(&iso_millis(*timestamp_ms)));
        }
        (
            DeliveryKind::UnsubscribeConfirmation {
                token,
                timestamp_ms,
                ..
            },
            _,
        ) => {
            doc.insert("Token".into(), s(token));
            doc.insert("TopicArn".into(), s(&d.topic_arn));
            doc.insert(
                "Message".into(),
                s(&format!(
                    "You have chosen to deactivate subscription {}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
                    d.subscription_arn
                )),
            );
            doc.insert(
                "SubscribeURL".into(),
                s(&urls.subscribe(&d.topic_arn, token)),
            );
            doc.insert("Timestamp".into(), s(&iso_millis(*timestamp_ms)));
        }
        (DeliveryKind::Notification { .. }, None) => {
            return Err(SigningError::Cert(
                "notification without its message".into(),
            ));
        }
    }
    let version = if d.signature_version == "2" { "2" } else { "1" };
    let to_sign = string_to_sign(kind, |name| doc.get(name).and_then(Value::as_str));
    let signature = signer.sign(version, &to_sign)?;
    doc.insert("SignatureVersion".into(), s(version));
    doc.insert("Signature".into(), Value::String(signature));
    doc.insert("SigningCertURL".into(), s(&urls.cert(signer)));
    if let (DeliveryKind::Notification { .. }, Some(m)) = (&d.kind, msg) {
        doc.insert(
            "UnsubscribeURL".into(),
            s(&urls.unsubscribe(&d.subscription_arn)),
        );
        if !m.attributes.is_empty() {
            let attrs: Map<String, Value> = m
                .attributes
                .iter()
                .map(|(k, a)| {
                    (
                        k.clone(),
                        serde_json::json!({"Type": a.data_type, "Value": a.value}),
                    )
                })
                .collect();
            doc.insert("MessageAttributes".into(), Value::Object(attrs));
        }
    }
    Ok(Value::Object(doc).to_string())
}

/// Headers of an HTTP/S delivery.
pub fn http_headers(d: &Delivery) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("x-amz-sns-message-type", d.kind.type_name().to_string()),
        ("x-amz-sns-message-id", d.kind.message_id().to_string()),
        ("x-amz-sns-topic-arn", d.topic_arn.clone()),
    ];
    if !matches!(d.kind, DeliveryKind::SubscriptionConfirmation { .. }) {
        headers.push(("x-amz-sns-subscription-arn", d.subscription_arn.clone()));
    }
    if d.raw {
        headers.push(("x-amz-sns-rawdelivery", "true".to_string()));
    }
    headers.push(("content-type", d.content_type.clone()));
    headers.push(("user-agent", super::http::USER_AGENT.to_string()));
    headers
}

/// The mail for an `email` or `email-json` delivery. `json` is the signed document, for
/// `email-json`; `display_name` is the topic's DisplayName.
pub fn email(
    d: &Delivery,
    msg: Option<&StoredMessage>,
    urls: &Urls<'_>,
    display_name: &str,
    json: Option<String>,
) -> Email {
    let from_name = if display_name.is_empty() {
        "AWS Notifications"
    } else {
        display_name
    }
    .to_string();
    let (subject, body) = match (&d.kind, msg) {
        (DeliveryKind::Notification { .. }, Some(m)) => {
            let subject = m
                .subject
                .clone()
                .unwrap_or_else(|| "AWS Notification Message".to_string());
            let body = match json {
                Some(j) => j,
                None => format!(
                    "{}\n\n--\nTo stop receiving notifications from this topic, open this link to unsubscribe:\n{}\n",
                    text_for(d, m),
                    urls.unsubscribe(&d.subscription_arn)
                ),
            };
            (subject, body)
        }
        (DeliveryKind::SubscriptionConfirmation { token, .. }, _) => {
            let body = match json {
                Some(j) => j,
                None => format!(
                    "You have chosen to subscribe to the topic:\n{}\n\nTo confirm this subscription, open the link below (if you did not ask for it, ignore this mail):\n{}\n",
                    d.topic_arn,
                    urls.subscribe(&d.topic_arn, token)
                ),
            };
            (
                "AWS Notification - Subscription Confirmation".to_string(),
                body,
            )
        }
        (DeliveryKind::UnsubscribeConfirmation { token, .. }, _) => {
            let body = json.unwrap_or_else(|| {
                format!(
                    "Subscription {} was removed.\nTo restore it, open this link:\n{}\n",
                    d.subscription_arn,
                    urls.subscribe(&d.topic_arn, token)
                )
            });
            (
                "AWS Notification - Unsubscribe Confirmation".to_string(),
                body,
            )
        }
        (DeliveryKind::Notification { .. }, None) => {
            ("AWS Notification Message".to_string(), String::new())
        }
    };
    Email {
        to: d.endpoint.clone(),
        from_name,
        subject,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_escaped_and_keyed() {
        let urls = Urls {
            base: "http://127.0.0.1:4566/",
            secret: b"k",
        };
        let u = urls.subscribe("arn:aws:sns:us-east-1:000000000000:t", "abc");
        assert_eq!(
            u,
            "http://127.0.0.1:4566/_opsloop/sns/confirm?Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At&Token=abc"
        );
        let a = urls.unsubscribe("arn:aws:sns:us-east-1:000000000000:t:1");
        assert!(a.contains(&unsubscribe_signature(
            b"k",
            "arn:aws:sns:us-east-1:000000000000:t:1"
        )));
        assert_ne!(
            unsubscribe_signature(b"k", "a"),
            unsubscribe_signature(b"other", "a")
        );
    }
}
