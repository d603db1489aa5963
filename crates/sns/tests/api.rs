//! The control plane through the Service interface (no delivery needed): topic idempotency and
//! attributes, paging, subscription attributes, token expiry, topic deletion, tags, PublishBatch
//! and FIFO deduplication.

mod common;

use common::Harness;
use opsloop_sns::state::TokenRecord;
use serde_json::json;

#[tokio::test]
async fn create_topic_is_idempotent_and_checks_attributes() {
    let h = Harness::new(|_| {});
    let a = h
        .ok(
            "CreateTopic",
            json!({"Name": "t", "Attributes": {"DisplayName": "D"}}),
        )
        .await;
    let b = h
        .ok(
            "CreateTopic",
            json!({"Name": "t", "Attributes": {"DisplayName": "D"}}),
        )
        .await;
    assert_eq!(a, b);
    assert_eq!(h.ok("CreateTopic", json!({"Name": "t"})).await, a);
    let e = h
        .call(
            "CreateTopic",
            json!({"Name": "t", "Attributes": {"DisplayName": "E"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
    );
    let e = h
        .call("CreateTopic", json!({"Name": "bad name"}))
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: Topic Name");
    let e = h
        .call("CreateTopic", json!({"Name": "x.fifo"}))
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: Topic Name");
    let e = h
        .call(
            "CreateTopic",
            json!({"Name": "t2", "Attributes": {"Colour": "red"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, "InvalidParameterException");
    let attrs = h
        .ok("GetTopicAttributes", json!({"TopicArn": a["TopicArn"]}))
        .await["Attributes"]
        .clone();
    assert_eq!(attrs["DisplayName"], "D");
    assert_eq!(attrs["Owner"], common::ACCOUNT);
    assert!(attrs.get("FifoTopic").is_none());
    // DeleteTopic of a topic that does not exist succeeds, as in SNS.
    h.ok(
        "DeleteTopic",
        json!({"TopicArn": "arn:aws:sns:us-east-1:000000000000:never"}),
    )
    .await;
}

#[tokio::test]
async fn list_topics_and_subscriptions_page_by_100() {
    let h = Harness::new(|_| {});
    for i in 0..250 {
        h.create_topic(&format!("topic-{i:03}")).await;
    }
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut input = json!({});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let page = h.ok("ListTopics", input).await;
        let topics = page["Topics"].as_array().unwrap().clone();
        pages.push(topics.len());
        all.extend(topics);
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, [100, 100, 50]);
    assert_eq!(all.len(), 250);
    let e = h
        .call("ListTopics", json!({"NextToken": "garbage!"}))
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: NextToken");
    // Another region sees none of them.
    let ctx = opsloop_core::RequestContext::internal(common::ACCOUNT, "eu-west-1", "ListTopics");
    let other = opsloop_core::Service::call(&*h.sns, &ctx, json!({}))
        .await
        .unwrap();
    assert_eq!(other["Topics"].as_array().unwrap().len(), 0);

    let topic = h.create_topic("subs").await;
    for i in 0..120 {
        h.ok("Subscribe", json!({"TopicArn": topic, "Protocol": "slack", "Endpoint": format!("https://hooks.example.com/{i}")}))
            .await;
    }
    let first = h
        .ok("ListSubscriptionsByTopic", json!({"TopicArn": topic}))
        .await;
    assert_eq!(first["Subscriptions"].as_array().unwrap().len(), 100);
    let second = h
        .ok(
            "ListSubscriptionsByTopic",
            json!({"TopicArn": topic, "NextToken": first["NextToken"]}),
        )
        .await;
    assert_eq!(second["Subscriptions"].as_array().unwrap().len(), 20);
    assert!(second.get("NextToken").is_none());
    let everything = h.ok("ListSubscriptions", json!({})).await;
    assert_eq!(everything["Subscriptions"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn subscription_attributes_and_deletion_with_the_topic() {
    let h = Harness::new(|_| {});
    let topic = h.create_topic("attrs").await;
    let sub = h
        .ok("Subscribe", json!({"TopicArn": topic, "Protocol": "http", "Endpoint": "http://127.0.0.1:9/x", "ReturnSubscriptionArn": true}))
        .await["SubscriptionArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sub.starts_with(&topic));
    // Subscribing again returns the same (pending) subscription.
    let again = h
        .ok("Subscribe", json!({"TopicArn": topic, "Protocol": "http", "Endpoint": "http://127.0.0.1:9/x", "ReturnSubscriptionArn": true}))
        .await;
    assert_eq!(again["SubscriptionArn"], sub.as_str());
    let set = |name: &str, value: &str| json!({"SubscriptionArn": sub, "AttributeName": name, "AttributeValue": value});
    h.ok(
        "SetSubscriptionAttributes",
        set("RawMessageDelivery", "true"),
    )
    .await;
    h.ok(
        "SetSubscriptionAttributes",
        set("FilterPolicy", r#"{"k": ["v"]}"#),
    )
    .await;
    h.ok(
        "SetSubscriptionAttributes",
        set(
            "DeliveryPolicy",
            r#"{"healthyRetryPolicy":{"numRetries":7}}"#,
        ),
    )
    .await;
    let a = h
        .ok("GetSubscriptionAttributes", json!({"SubscriptionArn": sub}))
        .await["Attributes"]
        .clone();
    assert_eq!(a["RawMessageDelivery"], "true");
    assert_eq!(a["FilterPolicyScope"], "MessageAttributes");
    assert_eq!(a["PendingConfirmation"], "true");
    assert!(a["EffectiveDeliveryPolicy"]
        .as_str()
        .unwrap()
        .contains("\"numRetries\":7"));
    let e = h
        .call(
            "SetSubscriptionAttributes",
            set("FilterPolicyScope", "MessageBody"),
        )
        .await;
    assert!(e.is_ok(), "a flat policy is valid in both scopes");
    let e = h
        .call(
            "SetSubscriptionAttributes",
            set("FilterPolicy", r#"{"a": {"b": ["c"]}}"#),
        )
        .await;
    assert!(
        e.is_ok(),
        "nested policies are valid for the MessageBody scope"
    );
    let e = h
        .call(
            "SetSubscriptionAttributes",
            set("FilterPolicyScope", "MessageAttributes"),
        )
        .await
        .unwrap_err();
    assert!(
        e.message.contains("does not support nested filter policy"),
        "{}",
        e.message
    );
    let e = h
        .call("SetSubscriptionAttributes", set("Protocol", "https"))
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: AttributeName");
    let e = h
        .call(
            "GetSubscriptionAttributes",
            json!({"SubscriptionArn": "pending confirmation"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: SubscriptionArn");

    h.ok("DeleteTopic", json!({"TopicArn": topic})).await;
    let e = h
        .call("GetSubscriptionAttributes", json!({"SubscriptionArn": sub}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "NotFoundException");
}

#[tokio::test]
async fn expired_or_foreign_tokens_do_not_confirm() {
    let h = Harness::new(|_| {});
    let topic = h.create_topic("tokens").await;
    let other = h.create_topic("other").await;
    let sub = h
        .ok("Subscribe", json!({"TopicArn": topic, "Protocol": "http", "Endpoint": "http://127.0.0.1:9/x", "ReturnSubscriptionArn": true}))
        .await["SubscriptionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let (token, record): (String, TokenRecord) = {
        let rows = h.store.scan("sns.tokens", "", None, 10).unwrap();
        assert_eq!(rows.len(), 1);
        (
            rows[0].0.clone(),
            serde_json::from_slice(&rows[0].1).unwrap(),
        )
    };
    assert_eq!(record.subscription_arn, sub);
    let e = h
        .call(
            "ConfirmSubscription",
            json!({"TopicArn": other, "Token": token}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: Token");
    let mut expired = record.clone();
    expired.expires_ms = 1;
    h.store
        .put("sns.tokens", &token, &serde_json::to_vec(&expired).unwrap())
        .unwrap();
    let e = h
        .call(
            "ConfirmSubscription",
            json!({"TopicArn": topic, "Token": token}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.message, "Invalid parameter: Token");
    // Within three days it works.
    assert!(record.expires_ms - opsloop_sns_now() > 3 * 24 * 3600 * 1000 - 60_000);
    h.store
        .put("sns.tokens", &token, &serde_json::to_vec(&record).unwrap())
        .unwrap();
    let ok = h
        .ok(
            "ConfirmSubscription",
            json!({"TopicArn": topic, "Token": token}),
        )
        .await;
    assert_eq!(ok["SubscriptionArn"], sub.as_str());
}

fn opsloop_sns_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn tags_and_limits() {
    let h = Harness::new(|_| {});
    let topic = h.create_topic("tagged").await;
    let tags: Vec<_> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    h.ok("TagResource", json!({"ResourceArn": topic, "Tags": tags}))
        .await;
    let e = h
        .call(
            "TagResource",
            json!({"ResourceArn": topic, "Tags": [{"Key": "one-more", "Value": "v"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, "TagLimitExceededException");
    // Overwriting an existing key is not an addition.
    h.ok(
        "TagResource",
        json!({"ResourceArn": topic, "Tags": [{"Key": "k0", "Value": "new"}]}),
    )
    .await;
    let listed = h
        .ok("ListTagsForResource", json!({"ResourceArn": topic}))
        .await;
    assert_eq!(listed["Tags"][0], json!({"Key": "k0", "Value": "new"}));
    let e = h
        .call(
            "TagResource",
            json!({"ResourceArn": "arn:aws:sns:us-east-1:000000000000:nope", "Tags": []}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn fifo_deduplication_and_batch_sequence_numbers() {
    let h = Harness::new(|_| {});
    let topic = h
        .ok(
            "CreateTopic",
            json!({"Name": "f.fifo", "Attributes": {"FifoTopic": "true"}}),
        )
        .await["TopicArn"]
        .as_str()
        .unwrap()
        .to_string();
    let entries = json!([
        {"Id": "a", "Message": "1", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
        {"Id": "b", "Message": "2", "MessageGroupId": "g", "MessageDeduplicationId": "d2"},
        {"Id": "c", "Message": "3", "MessageGroupId": "g"},
    ]);
    let out = h
        .ok(
            "PublishBatch",
            json!({"TopicArn": topic, "PublishBatchRequestEntries": entries}),
        )
        .await;
    let ok = out["Successful"].as_array().unwrap();
    assert_eq!(ok.len(), 2);
    let seq = |i: usize| {
        ok[i]["SequenceNumber"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    assert!(seq(1) > seq(0));
    assert_eq!(out["Failed"][0]["Id"], "c");
    // The same deduplication id within five minutes answers with the first message.
    let again = h.ok("Publish", json!({"TopicArn": topic, "Message": "other", "MessageGroupId": "g", "MessageDeduplicationId": "d1"})).await;
    assert_eq!(again["MessageId"], ok[0]["MessageId"]);
    let e = h
        .call(
            "Subscribe",
            json!({"TopicArn": topic, "Protocol": "https", "Endpoint": "https://example.com/"}),
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("FIFO topics"), "{}", e.message);
}
