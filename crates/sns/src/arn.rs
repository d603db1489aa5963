//! SNS resource names: topic ARNs (`arn:aws:sns:<region>:<account>:<name>`), subscription ARNs
//! (`<topic arn>:<uuid>`), topic-name rules, and the store keys derived from them
//! (`<account>/<region>/<topic>[/<subscription id>]`), which sort so that one prefix scan lists a
//! region's topics or one topic's subscriptions.

use crate::error;
use opsloop_core::ApiError;

/// A parsed topic ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicArn {
    pub region: String,
    pub account: String,
    pub name: String,
}

impl TopicArn {
    pub fn new(region: &str, account: &str, name: &str) -> Self {
        TopicArn {
            region: region.into(),
            account: account.into(),
            name: name.into(),
        }
    }

    /// Parse `arn:<partition>:sns:<region>:<account>:<name>`; `None` when it is not one.
    pub fn parse(arn: &str) -> Option<Self> {
        let mut parts = arn.split(':');
        let (
            Some("arn"),
            Some(partition),
            Some("sns"),
            Some(region),
            Some(account),
            Some(name),
            None,
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return None;
        };
        if partition.is_empty()
            || region.is_empty()
            || !valid_account(account)
            || !valid_topic_name(name)
        {
            return None;
        }
        Some(TopicArn::new(region, account, name))
    }

    /// Parse a topic ARN named by parameter `param`, failing with SNS's wording.
    pub fn parse_param(arn: &str, param: &str) -> Result<Self, ApiError> {
        TopicArn::parse(arn).ok_or_else(|| error::invalid(param))
    }

    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }

    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.name)
    }
}

impl std::fmt::Display for TopicArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arn:aws:sns:{}:{}:{}",
            self.region, self.account, self.name
        )
    }
}

/// A parsed subscription ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionArn {
    pub topic: TopicArn,
    pub id: String,
}

impl SubscriptionArn {
    pub fn parse(arn: &str) -> Option<Self> {
        let (topic, id) = arn.rsplit_once(':')?;
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            return None;
        }
        Some(SubscriptionArn {
            topic: TopicArn::parse(topic)?,
            id: id.to_string(),
        })
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.topic.key(), self.id)
    }
}

impl std::fmt::Display for SubscriptionArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.topic, self.id)
    }
}

/// Prefix of every topic key of one account and region.
pub fn region_prefix(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

fn valid_account(account: &str) -> bool {
    !account.is_empty() && account.len() <= 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// 1–256 characters of letters, digits, hyphens and underscores, optionally ending in `.fifo`.
pub fn valid_topic_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 256
        && !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arn_round_trip() {
        let arn = TopicArn::parse("arn:aws:sns:us-east-1:123456789012:orders").unwrap();
        assert_eq!(arn.name, "orders");
        assert_eq!(arn.to_string(), "arn:aws:sns:us-east-1:123456789012:orders");
        assert_eq!(arn.key(), "123456789012/us-east-1/orders");
        assert!(!arn.is_fifo());
        assert!(TopicArn::parse("arn:aws:sns:us-east-1:123456789012:o.fifo")
            .unwrap()
            .is_fifo());
    }

    #[test]
    fn bad_topic_arns_are_rejected() {
        for bad in [
            "",
            "orders",
            "arn:aws:sqs:us-east-1:123456789012:orders",
            "arn:aws:sns:us-east-1:12345678901x:orders",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:a/b",
            "arn:aws:sns:us-east-1:123456789012:orders:extra",
        ] {
            assert!(TopicArn::parse(bad).is_none(), "{bad}");
        }
        let e = TopicArn::parse_param("nope", "TopicArn").unwrap_err();
        assert!(e.message.starts_with("Invalid parameter: TopicArn"));
    }

    #[test]
    fn subscription_arn_round_trip() {
        let s = "arn:aws:sns:eu-west-1:000000000000:t:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55";
        let arn = SubscriptionArn::parse(s).unwrap();
        assert_eq!(arn.topic.name, "t");
        assert_eq!(arn.to_string(), s);
        assert_eq!(
            arn.key(),
            "000000000000/eu-west-1/t/2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
        );
        assert!(SubscriptionArn::parse("arn:aws:sns:eu-west-1:000000000000:t").is_none());
        assert!(SubscriptionArn::parse("pending confirmation").is_none());
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic_name("a-b_C9"));
        assert!(valid_topic_name("x.fifo"));
        assert!(!valid_topic_name(".fifo"));
        assert!(!valid_topic_name("a.b"));
        assert!(!valid_topic_name(&"a".repeat(257)));
        assert!(valid_topic_name(&"a".repeat(256)));
    }
}
