//! End-to-end delivery over loopback HTTP/S, driving the service directly: the confirmation flow
//! through the public SubscribeURL, signed notifications (versions 1 and 2), raw delivery, filter
//! policies, retries by delivery policy, permanent failures, unsubscribe confirmations and links,
//! HTTPS with an extra CA, durability across a restart, and in-process publishing via Directory
//! (Publish and the internal OpsloopPublishMessages).

mod common;

use std::sync::Arc;

use common::{verify_signature, wait_for, Harness, Receiver, ACCOUNT, REGION};
use opsloop_core::{Directory, Service};
use serde_json::json;

/// Subscribe `endpoint` over `protocol`, confirm through the SubscribeURL it received; returns the
/// subscription ARN.
async fn subscribe_confirmed(
    h: &Harness,
    topic: &str,
    protocol: &str,
    rx: &Receiver,
    attrs: serde_json::Value,
) -> String {
    let v = h
        .ok("Subscribe", json!({"TopicArn": topic, "Protocol": protocol, "Endpoint": rx.url, "Attributes": attrs}))
        .await;
    assert_eq!(v["SubscriptionArn"], "pending confirmation");
    let confirmation = rx.wait_type("SubscriptionConfirmation").await;
    let doc = confirmation.json();
    let resp = h.visit(doc["SubscribeURL"].as_str().unwrap()).await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let body = String::from_utf8(resp.body).unwrap();
    let arn = body
        .split("<SubscriptionArn>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(arn.starts_with(topic), "{arn}");
    arn
}

#[tokio::test]
async fn confirmation_flow_and_signed_notifications() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let rx = Receiver::http().await;
    let topic = h.create_topic("orders").await;

    let v = h
        .ok(
            "Subscribe",
            json!({"TopicArn": topic, "Protocol": "http", "Endpoint": rx.url}),
        )
        .await;
    assert_eq!(v["SubscriptionArn"], "pending confirmation");
    let subs = h
        .ok("ListSubscriptionsByTopic", json!({"TopicArn": topic}))
        .await;
    assert_eq!(
        subs["Subscriptions"][0]["SubscriptionArn"],
        "PendingConfirmation"
    );

    let c = rx.wait_type("SubscriptionConfirmation").await;
    assert_eq!(c.header("content-type"), "text/plain; charset=UTF-8");
    assert_eq!(c.header("x-amz-sns-topic-arn"), topic);
    assert_eq!(
        c.header("user-agent"),
        "Amazon Simple Notification Service Agent"
    );
    let doc = c.json();
    assert_eq!(doc["Type"], "SubscriptionConfirmation");
    assert_eq!(doc["TopicArn"], topic.as_str());
    assert_eq!(doc["SignatureVersion"], "1");
    assert_eq!(
        c.header("x-amz-sns-message-id"),
        doc["MessageId"].as_str().unwrap()
    );
    verify_signature(&doc, &h.config.key_dir);
    let token = doc["Token"].as_str().unwrap();
    assert!(doc["SubscribeURL"].as_str().unwrap().contains(token));

    // ConfirmSubscription with the token (what SDK users do) confirms it too.
    let confirmed = h
        .ok(
            "ConfirmSubscription",
            json!({"TopicArn": topic, "Token": token}),
        )
        .await;
    let sub_arn = confirmed["SubscriptionArn"].as_str().unwrap().to_string();
    let attrs = h
        .ok(
            "GetSubscriptionAttributes",
            json!({"SubscriptionArn": sub_arn}),
        )
        .await;
    assert_eq!(attrs["Attributes"]["PendingConfirmation"], "false");
    assert_eq!(attrs["Attributes"]["ConfirmationWasAuthenticated"], "false");
    assert!(attrs["Attributes"]["EffectiveDeliveryPolicy"]
        .as_str()
        .unwrap()
        .contains("\"numRetries\":3"));
    let topic_attrs = h.ok("GetTopicAttributes", json!({"TopicArn": topic})).await;
    assert_eq!(topic_attrs["Attributes"]["SubscriptionsConfirmed"], "1");
    assert_eq!(topic_attrs["Attributes"]["SubscriptionsPending"], "0");

    let published = h
        .ok(
            "Publish",
            json!({"TopicArn": topic, "Subject": "Order placed", "Message": "line1\nline2 \"quoted\" ü",
                   "MessageAttributes": {"store": {"DataType": "String", "StringValue": "example_corp"},
                                         "price": {"DataType": "Number", "StringValue": "210.75"}}}),
        )
        .await;
    let message_id = published["MessageId"].as_str().unwrap();
    let n = rx.wait_type("Notification").await;
    assert_eq!(n.header("x-amz-sns-message-id"), message_id);
    assert_eq!(n.header("x-amz-sns-subscription-arn"), sub_arn);
    let doc = n.json();
    assert_eq!(doc["Message"], "line1\nline2 \"quoted\" ü");
    assert_eq!(doc["Subject"], "Order placed");
    assert_eq!(
        doc["MessageAttributes"]["price"],
        json!({"Type": "Number", "Value": "210.75"})
    );
    assert!(doc["Timestamp"].as_str().unwrap().ends_with('Z'));
    verify_signature(&doc, &h.config.key_dir);
    // The SigningCertURL serves the certificate.
    let cert = h.visit(doc["SigningCertURL"].as_str().unwrap()).await;
    assert_eq!(cert.status, 200);
    assert!(String::from_utf8(cert.body)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    // Field order follows SNS's documents.
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "Type",
            "MessageId",
            "TopicArn",
            "Subject",
            "Message",
            "Timestamp",
            "SignatureVersion",
            "Signature",
            "SigningCertURL",
            "UnsubscribeURL",
            "MessageAttributes"
        ]
    );

    // Signature version 2 on the topic: SHA256withRSA.
    h.ok(
        "SetTopicAttributes",
        json!({"TopicArn": topic, "AttributeName": "SignatureVersion", "AttributeValue": "2"}),
    )
    .await;
    h.ok("Publish", json!({"TopicArn": topic, "Message": "v2"}))
        .await;
    let all = rx.wait_count(3).await;
    let v2 = all
        .iter()
        .map(|r| r.json())
        .find(|d| d["Message"] == "v2")
        .unwrap();
    assert_eq!(v2["SignatureVersion"], "2");
    assert!(v2.get("Subject").is_none());
    verify_signature(&v2, &h.config.key_dir);
    h.drained().await;
}

#[tokio::test]
async fn raw_delivery_and_filter_policies() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let (raw_rx, filtered_rx, body_rx) = (
        Receiver::http().await,
        Receiver::http().await,
        Receiver::http().await,
    );
    let topic = h.create_topic("filtered").await;
    subscribe_confirmed(
        &h,
        &topic,
        "http",
        &raw_rx,
        json!({"RawMessageDelivery": "true"}),
    )
    .await;
    subscribe_confirmed(
        &h,
        &topic,
        "http",
        &filtered_rx,
        json!({"FilterPolicy": r#"{"store": ["example_corp"], "price": [{"numeric": [">=", 100]}]}"#}),
    )
    .await;
    subscribe_confirmed(
        &h,
        &topic,
        "http",
        &body_rx,
        json!({"FilterPolicy": r#"{"order": {"kind": [{"prefix": "big"}]}}"#, "FilterPolicyScope": "MessageBody"}),
    )
    .await;

    let attrs = |store: &str, price: &str| json!({"store": {"DataType": "String", "StringValue": store}, "price": {"DataType": "Number", "StringValue": price}});
    h.ok("Publish", json!({"TopicArn": topic, "Message": "cheap", "MessageAttributes": attrs("example_corp", "5")})).await;
    h.ok("Publish", json!({"TopicArn": topic, "Message": "other store", "MessageAttributes": attrs("other", "500")})).await;
    h.ok("Publish", json!({"TopicArn": topic, "Message": "match", "MessageAttributes": attrs("example_corp", "100")})).await;
    h.ok(
        "Publish",
        json!({"TopicArn": topic, "Message": r#"{"order": {"kind": "bigbox"}}"#}),
    )
    .await;
    h.ok(
        "Publish",
        json!({"TopicArn": topic, "Message": r#"{"order": {"kind": "small"}}"#}),
    )
    .await;
    raw_rx.wait_count(6).await; // confirmation + 5 raw messages
    filtered_rx.wait_count(2).await;
    body_rx.wait_count(2).await;
    h.drained().await;

    let raw: Vec<_> = raw_rx
        .received()
        .into_iter()
        .filter(|r| r.header("x-amz-sns-message-type") == "Notification")
        .collect();
    assert_eq!(raw.len(), 5);
    assert!(raw
        .iter()
        .all(|r| r.header("x-amz-sns-rawdelivery") == "true"));
    assert!(
        raw.iter().any(|r| r.body == "cheap"),
        "raw bodies are the message itself"
    );
    let filtered: Vec<_> = filtered_rx
        .received()
        .into_iter()
        .filter(|r| r.header("x-amz-sns-message-type") == "Notification")
        .collect();
    assert_eq!(filtered.len(), 1, "only the matching message");
    assert_eq!(filtered[0].json()["Message"], "match");
    let body: Vec<_> = body_rx
        .received()
        .into_iter()
        .filter(|r| r.header("x-amz-sns-message-type") == "Notification")
        .collect();
    assert_eq!(body.len(), 1);
    assert_eq!(
        body[0].json()["Message"],
        r#"{"order": {"kind": "bigbox"}}"#
    );
}

#[tokio::test]
async fn retries_follow_the_delivery_policy_and_4xx_is_permanent() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let rx = Receiver::http().await;
    let topic = h.create_topic("retries").await;
    let policy = r#"{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":1,"numRetries":3,"numNoDelayRetries":1}}"#;
    subscribe_confirmed(&h, &topic, "http", &rx, json!({"DeliveryPolicy": policy})).await;

    rx.script(&[500, 503]);
    let started = std::time::Instant::now();
    let id = h
        .ok("Publish", json!({"TopicArn": topic, "Message": "retry me"}))
        .await["MessageId"]
        .as_str()
        .unwrap()
        .to_string();
    let all = rx.wait_count(4).await;
    let attempts: Vec<_> = all
        .iter()
        .filter(|r| r.header("x-amz-sns-message-id") == id)
        .collect();
    assert_eq!(
        attempts.len(),
        3,
        "initial attempt, an immediate retry, then a retry after the minimum delay"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the second retry waits minDelayTarget"
    );
    h.drained().await;
    assert_eq!(rx.received().len(), 4, "no attempt after success");

    // A 404 is a permanent failure: one attempt, then the delivery is gone.
    rx.script(&[404]);
    let id = h
        .ok("Publish", json!({"TopicArn": topic, "Message": "gone"}))
        .await["MessageId"]
        .as_str()
        .unwrap()
        .to_string();
    rx.wait_count(5).await;
    h.drained().await;
    assert_eq!(
        rx.received()
            .iter()
            .filter(|r| r.header("x-amz-sns-message-id") == id)
            .count(),
        1
    );
}

#[tokio::test]
async fn retries_are_exhausted_then_the_message_is_dropped() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let rx = Receiver::http().await;
    let topic = h.create_topic("exhaust").await;
    let policy = r#"{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":1,"numRetries":2,"numNoDelayRetries":2}}"#;
    subscribe_confirmed(&h, &topic, "http", &rx, json!({"DeliveryPolicy": policy})).await;
    rx.script(&[500, 500, 500, 500]);
    h.ok("Publish", json!({"TopicArn": topic, "Message": "doomed"}))
        .await;
    rx.wait_count(4).await;
    h.drained().await;
    assert_eq!(rx.received().len(), 4, "confirmation plus 1 + 2 attempts");
}

#[tokio::test]
async fn unsubscribe_confirmation_links_and_authenticated_unsubscribe() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let rx = Receiver::http().await;
    let topic = h.create_topic("unsub").await;
    let sub = subscribe_confirmed(&h, &topic, "http", &rx, json!({})).await;
    h.ok("Publish", json!({"TopicArn": topic, "Message": "hello"}))
        .await;
    let n = rx.wait_type("Notification").await.json();
    let unsubscribe_url = n["UnsubscribeURL"].as_str().unwrap().to_string();

    // A tampered link is refused.
    let bad = h
        .visit(&unsubscribe_url.replace("Signature=", "Signature=00"))
        .await;
    assert_eq!(bad.status, 403);
    // The real link unsubscribes, and the endpoint gets an UnsubscribeConfirmation.
    let ok = h.visit(&unsubscribe_url).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let u = rx.wait_type("UnsubscribeConfirmation").await;
    let doc = u.json();
    verify_signature(&doc, &h.config.key_dir);
    assert_eq!(u.header("x-amz-sns-subscription-arn"), sub);
    let e = h
        .call("GetSubscriptionAttributes", json!({"SubscriptionArn": sub}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "NotFoundException");
    let attrs = h.ok("GetTopicAttributes", json!({"TopicArn": topic})).await;
    assert_eq!(attrs["Attributes"]["SubscriptionsDeleted"], "1");

    // The UnsubscribeConfirmation's SubscribeURL restores the subscription.
    assert_eq!(
        h.visit(doc["SubscribeURL"].as_str().unwrap()).await.status,
        200
    );
    h.ok("GetSubscriptionAttributes", json!({"SubscriptionArn": sub}))
        .await;

    // Confirmed with AuthenticateOnUnsubscribe: links no longer unsubscribe, the API does.
    let rx2 = Receiver::http().await;
    h.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "http", "Endpoint": rx2.url}),
    )
    .await;
    let token = rx2.wait_type("SubscriptionConfirmation").await.json()["Token"]
        .as_str()
        .unwrap()
        .to_string();
    let sub2 = h
        .ok(
            "ConfirmSubscription",
            json!({"TopicArn": topic, "Token": token, "AuthenticateOnUnsubscribe": "true"}),
        )
        .await["SubscriptionArn"]
        .as_str()
        .unwrap()
        .to_string();
    h.ok("Publish", json!({"TopicArn": topic, "Message": "second"}))
        .await;
    let link = rx2.wait_type("Notification").await.json()["UnsubscribeURL"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(h.visit(&link).await.status, 403);
    h.ok("Unsubscribe", json!({"SubscriptionArn": sub2})).await;
    assert!(h
        .call(
            "GetSubscriptionAttributes",
            json!({"SubscriptionArn": sub2})
        )
        .await
        .is_err());
    h.drained().await;
}

#[tokio::test]
async fn https_endpoints_with_an_extra_ca() {
    let rx = Receiver::https().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, rx.ca_pem.as_ref().unwrap()).unwrap();
    let h = Harness::new(|c| c.extra_ca_file = Some(ca_file.clone()));
    h.sns.start().unwrap();
    let topic = h.create_topic("secure").await;
    subscribe_confirmed(&h, &topic, "https", &rx, json!({})).await;
    h.ok("Publish", json!({"TopicArn": topic, "Message": "over tls"}))
        .await;
    assert_eq!(
        rx.wait_type("Notification").await.json()["Message"],
        "over tls"
    );

    // Without the CA the certificate is not trusted: the confirmation never arrives (retried).
    let untrusted = Receiver::https().await;
    h.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "https", "Endpoint": untrusted.url,
               "Attributes": {"DeliveryPolicy": r#"{"healthyRetryPolicy":{"numRetries":0}}"#}}),
    )
    .await;
    h.drained().await;
    assert!(untrusted.received().is_empty());
}

#[tokio::test]
async fn deliveries_survive_a_restart() {
    let rx = Receiver::http().await;
    let mut h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let topic = h.create_topic("durable").await;
    subscribe_confirmed(&h, &topic, "http", &rx, json!({})).await;
    h.drained().await;
    // Stop delivering, publish (durably recorded), then "restart" on the same store.
    h.sns.shutdown();
    h.restart();
    let id = h
        .ok(
            "Publish",
            json!({"TopicArn": topic, "Message": "after restart"}),
        )
        .await["MessageId"]
        .as_str()
        .unwrap()
        .to_string();
    h.restart();
    assert_eq!(
        rx.received()
            .iter()
            .filter(|r| r.header("x-amz-sns-message-id") == id)
            .count(),
        0
    );
    h.sns.start().unwrap();
    let n = rx.wait_type("Notification").await;
    assert_eq!(n.header("x-amz-sns-message-id"), id);
    h.drained().await;
    wait_for(|| {
        h.store
            .scan("sns.messages", "", None, 10)
            .map(|r| r.is_empty())
            .unwrap_or(false)
    })
    .await;
    assert!(h.store.scan("sns.outbox", "", None, 10).unwrap().is_empty());
}

#[tokio::test]
async fn other_services_publish_through_the_directory() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let rx = Receiver::http().await;
    let topic = h.create_topic("alarms").await;
    subscribe_confirmed(&h, &topic, "http", &rx, json!({})).await;
    let directory = Directory::new();
    directory.insert("SNS", h.sns.clone() as Arc<dyn Service>);
    let out = directory
        .invoke("SNS", ACCOUNT, REGION, "Publish", json!({"TopicArn": topic, "Subject": "ALARM: \"cpu\" in US East (N. Virginia)", "Message": "{\"AlarmName\":\"cpu\"}"}))
        .await
        .unwrap();
    assert!(out["MessageId"].is_string());
    let n = rx.wait_type("Notification").await.json();
    assert_eq!(n["Subject"], "ALARM: \"cpu\" in US East (N. Virginia)");
}

#[tokio::test]
async fn messages_without_deliveries_are_removed_on_start() {
    let h = Harness::new(|_| {});
    let orphan = json!({"id": "orphan", "topic_arn": "arn:aws:sns:us-east-1:000000000000:t", "subject": null,
                        "message": "m", "timestamp_ms": 1, "signature_version": "1"});
    h.store
        .put("sns.messages", "orphan", orphan.to_string().as_bytes())
        .unwrap();
    h.sns.start().unwrap();
    wait_for(|| {
        h.store
            .get("sns.messages", "orphan")
            .map(|v| v.is_none())
            .unwrap_or(false)
    })
    .await;
}

/// Many deliveries of one message finishing while others are still being queued must not lose
/// the message (its row lives until the last delivery is done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_to_many_subscriptions_delivers_every_copy() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let rx = Receiver::http().await;
    let topic = h.create_topic("fanout").await;
    for i in 0..12 {
        let endpoint = format!("{}?n={i}", rx.url);
        h.ok(
            "Subscribe",
            json!({"TopicArn": topic, "Protocol": "slack", "Endpoint": endpoint}),
        )
        .await;
    }
    for m in 0..5 {
        h.ok(
            "Publish",
            json!({"TopicArn": topic, "Message": format!("m{m}")}),
        )
        .await;
    }
    rx.wait_count(60).await;
    h.drained().await;
    assert_eq!(rx.received().len(), 60);
    // Each message row goes with its last delivery.
    wait_for(|| {
        h.store
            .scan("sns.messages", "", None, 10)
            .map(|r| r.is_empty())
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test]
async fn internal_publish_messages_fans_out_like_publish() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let (all_rx, body_rx) = (Receiver::http().await, Receiver::http().await);
    let topic = h.create_topic("bulk").await;
    let quiet = h.create_topic("quiet").await;
    subscribe_confirmed(&h, &topic, "http", &all_rx, json!({})).await;
    subscribe_confirmed(
        &h,
        &topic,
        "http",
        &body_rx,
        json!({"FilterPolicy": r#"{"kind": ["big"]}"#, "FilterPolicyScope": "MessageBody"}),
    )
    .await;
    let directory = Directory::new();
    directory.insert("SNS", h.sns.clone() as Arc<dyn Service>);
    let call = |input: serde_json::Value| {
        directory.invoke("SNS", ACCOUNT, REGION, "OpsloopPublishMessages", input)
    };
    let too_long = "x".repeat(256 * 1024 + 1);
    let out = call(json!({"TopicArn": topic, "Messages": [r#"{"kind":"big"}"#, "", r#"{"kind":"small"}"#, too_long]}))
        .await
        .unwrap();
    assert_eq!(out["Published"], 2);
    let failed = out["Failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["Index"], 1);
    assert_eq!(failed[0]["Code"], "InvalidParameter");
    assert_eq!(failed[0]["Message"], "Invalid parameter: Empty message");
    assert_eq!(failed[0]["SenderFault"], true);
    assert_eq!(failed[1]["Index"], 3);
    let all = all_rx.wait_count(3).await; // confirmation + 2 notifications
    let mut got: Vec<String> = all
        .iter()
        .filter(|r| r.header("x-amz-sns-message-type") == "Notification")
        .map(|r| r.json()["Message"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, [r#"{"kind":"big"}"#, r#"{"kind":"small"}"#]);
    let ids: Vec<String> = all
        .iter()
        .filter(|r| r.header("x-amz-sns-message-type") == "Notification")
        .map(|r| r.json()["MessageId"].as_str().unwrap().to_string())
        .collect();
    assert_ne!(ids[0], ids[1], "each message has its own id");
    let body = body_rx.wait_count(2).await;
    assert_eq!(body[1].json()["Message"], r#"{"kind":"big"}"#);
    h.drained().await;
    assert_eq!(
        body_rx
            .received()
            .iter()
            .filter(|r| r.header("x-amz-sns-message-type") == "Notification")
            .count(),
        1,
        "the filter policy applies"
    );

    // A topic without subscriptions: accepted, nothing stored; twice (the second from the cache).
    for _ in 0..2 {
        let out = call(json!({"TopicArn": quiet, "Messages": ["a", "b"]}))
            .await
            .unwrap();
        assert_eq!(out["Published"], 2);
        assert_eq!(out["Failed"], json!([]));
    }
    // ... and checked as a topic with subscriptions checks them.
    let out =
        call(json!({"TopicArn": quiet, "Messages": ["", "a", "x".repeat(256 * 1024 + 1), 5]}))
            .await
            .unwrap();
    assert_eq!(out["Published"], 1);
    let failed: Vec<_> = out["Failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["Index"].as_u64().unwrap(), f["Code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (0, "InvalidParameter"),
            (2, "InvalidParameter"),
            (3, "InvalidParameter")
        ]
    );
    let e = call(json!({"TopicArn": format!("{quiet}-missing"), "Messages": ["a"]}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "NotFoundException");
    let fifo = h
        .ok(
            "CreateTopic",
            json!({"Name": "bulk.fifo", "Attributes": {"FifoTopic": "true"}}),
        )
        .await["TopicArn"]
        .as_str()
        .unwrap()
        .to_string();
    let e = call(json!({"TopicArn": fifo, "Messages": ["a"]}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "InvalidParameterException");
}
