//! Email (SMTP) and chat (Slack, Teams) delivery against loopback sinks, driving the service
//! directly: confirmation mails with a working SubscribeURL, notification mails, email-json, and
//! auto-confirmed chat webhooks that render CloudWatch alarms.

mod common;

use common::{verify_signature, Harness, Receiver, SmtpSink};
use opsloop_sns::SmtpConfig;
use serde_json::json;

fn smtp(h: &mut opsloop_sns::SnsConfig, port: u16) {
    h.smtp = Some(
        SmtpConfig::from_url(&format!("smtp://127.0.0.1:{port}"), "sns@opsloop.test").unwrap(),
    );
}

fn url_in(text: &str, marker: &str) -> String {
    text.split_whitespace()
        .find(|w| w.contains(marker))
        .unwrap_or_else(|| panic!("no {marker} in {text}"))
        .to_string()
}

#[tokio::test]
async fn email_confirmation_and_notifications() {
    let sink = SmtpSink::start().await;
    let h = Harness::new(|c| smtp(c, sink.port));
    h.sns.start().unwrap();
    let topic = h.create_topic("mail").await;
    h.ok(
        "SetTopicAttributes",
        json!({"TopicArn": topic, "AttributeName": "DisplayName", "AttributeValue": "Ops Alerts"}),
    )
    .await;
    let v = h
        .ok(
            "Subscribe",
            json!({"TopicArn": topic, "Protocol": "email", "Endpoint": "oncall@example.com"}),
        )
        .await;
    assert_eq!(v["SubscriptionArn"], "pending confirmation");

    let mails = sink.wait_count(1).await;
    assert_eq!(mails[0].to, ["oncall@example.com"]);
    assert_eq!(mails[0].from, "sns@opsloop.test");
    assert_eq!(
        mails[0].header("Subject").unwrap(),
        "AWS Notification - Subscription Confirmation"
    );
    let body = mails[0].body();
    assert!(body.contains(&topic));
    let confirm = url_in(&body, "/_opsloop/sns/confirm?");
    assert_eq!(h.visit(&confirm).await.status, 200);

    h.ok(
        "Publish",
        json!({"TopicArn": topic, "Subject": "Disk full", "Message": "volume /data is at 99%"}),
    )
    .await;
    let mails = sink.wait_count(2).await;
    let m = &mails[1];
    assert_eq!(m.header("Subject").unwrap(), "Disk full");
    assert_eq!(
        m.header("From").unwrap(),
        "\"Ops Alerts\" <sns@opsloop.test>"
    );
    let body = m.body();
    assert!(body.starts_with("volume /data is at 99%"));
    let unsubscribe = url_in(&body, "/_opsloop/sns/unsubscribe?");
    assert_eq!(h.visit(&unsubscribe).await.status, 200);
    let subs = h
        .ok("ListSubscriptionsByTopic", json!({"TopicArn": topic}))
        .await;
    assert_eq!(subs["Subscriptions"].as_array().unwrap().len(), 0);
    h.drained().await;
}

#[tokio::test]
async fn email_json_carries_the_signed_document() {
    let sink = SmtpSink::start().await;
    let h = Harness::new(|c| smtp(c, sink.port));
    h.sns.start().unwrap();
    let topic = h.create_topic("mailjson").await;
    h.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "email-json", "Endpoint": "robot@example.com"}),
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&sink.wait_count(1).await[0].body()).unwrap();
    assert_eq!(doc["Type"], "SubscriptionConfirmation");
    verify_signature(&doc, &h.config.key_dir);
    h.ok(
        "ConfirmSubscription",
        json!({"TopicArn": topic, "Token": doc["Token"]}),
    )
    .await;
    h.ok(
        "Publish",
        json!({"TopicArn": topic, "MessageStructure": "json",
               "Message": json!({"default": "plain", "email-json": "for robots"}).to_string()}),
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&sink.wait_count(2).await[1].body()).unwrap();
    assert_eq!(doc["Type"], "Notification");
    assert_eq!(doc["Message"], "for robots");
    verify_signature(&doc, &h.config.key_dir);
}

#[tokio::test]
async fn email_without_smtp_waits_and_the_api_still_works() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let topic = h.create_topic("nosmtp").await;
    h.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "email", "Endpoint": "a@example.com"}),
    )
    .await;
    // The confirmation is kept for retry (email policy: hours), not lost.
    common::wait_for(|| {
        h.store
            .scan("sns.outbox", "", None, 10)
            .map(|r| r.len() == 1)
            .unwrap_or(false)
    })
    .await;
    let row: opsloop_sns::state::Delivery =
        serde_json::from_slice(&h.store.scan("sns.outbox", "", None, 10).unwrap()[0].1).unwrap();
    common::wait_for(|| {
        h.store
            .get("sns.outbox", &row.id)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<opsloop_sns::state::Delivery>(&b).ok())
            .is_some_and(|d| d.attempts >= 1)
    })
    .await;
}

const ALARM: &str = r#"{"AlarmName":"HighCPU","AlarmDescription":null,"AWSAccountId":"000000000000",
  "NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 1 datapoint [95.0] was greater than the threshold (80.0).",
  "StateChangeTime":"2024-05-01T12:00:00.000+0000","Region":"US East (N. Virginia)","OldStateValue":"OK",
  "Trigger":{"MetricName":"CPUUtilization","Namespace":"AWS/EC2","Statistic":"AVERAGE","Period":300,
  "EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":80.0,
  "Dimensions":[{"value":"i-0abc","name":"InstanceId"}]}}"#;

#[tokio::test]
async fn chat_webhooks_are_confirmed_at_once_and_render_alarms() {
    let h = Harness::new(|_| {});
    h.sns.start().unwrap();
    let (slack, teams) = (Receiver::http().await, Receiver::http().await);
    let topic = h.create_topic("chat").await;
    let s = h
        .ok(
            "Subscribe",
            json!({"TopicArn": topic, "Protocol": "slack", "Endpoint": slack.url}),
        )
        .await;
    assert!(
        s["SubscriptionArn"].as_str().unwrap().starts_with(&topic),
        "chat subscriptions need no confirmation"
    );
    h.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "teams", "Endpoint": teams.url}),
    )
    .await;
    h.ok(
        "Publish",
        json!({"TopicArn": topic, "Subject": "ALARM: \"HighCPU\"", "Message": ALARM}),
    )
    .await;

    let post = slack.wait_count(1).await[0].clone();
    assert_eq!(post.header("content-type"), "application/json");
    let v = post.json();
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("ALARM: \"HighCPU\" in US East (N. Virginia)"));
    assert_eq!(v["attachments"][0]["color"], "#d13212");
    assert!(v["attachments"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Threshold Crossed"));
    let fields = v["attachments"][0]["fields"].as_array().unwrap();
    assert!(fields
        .iter()
        .any(|f| f["title"] == "Metric"
            && f["value"] == "AWS/EC2 CPUUtilization (InstanceId=i-0abc)"));

    let card = teams.wait_count(1).await[0].json();
    assert_eq!(card["type"], "message");
    let content = &card["attachments"][0]["content"];
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(content["body"][0]["color"], "Attention");
    assert!(content["body"][0]["text"]
        .as_str()
        .unwrap()
        .contains("HighCPU"));

    // Plain messages become plain posts.
    h.ok(
        "Publish",
        json!({"TopicArn": topic, "Message": "deploy finished"}),
    )
    .await;
    let v = slack.wait_count(2).await[1].json();
    assert_eq!(v["attachments"][0]["text"], "deploy finished");
    h.drained().await;
}

#[tokio::test]
async fn starttls_is_used_when_offered_and_required() {
    let sink = SmtpSink::with_starttls().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, sink.ca_pem.as_ref().unwrap()).unwrap();
    let port = sink.port;
    let h = Harness::new(|c| {
        c.smtp = Some(
            SmtpConfig::from_url(
                &format!("smtp+starttls://127.0.0.1:{port}"),
                "sns@opsloop.test",
            )
            .unwrap(),
        );
        c.extra_ca_file = Some(ca_file.clone());
    });
    h.sns.start().unwrap();
    let topic = h.create_topic("tlsmail").await;
    h.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "email", "Endpoint": "sec@example.com"}),
    )
    .await;
    let mail = sink.wait_count(1).await[0].clone();
    assert!(
        mail.tls,
        "the mail went over the STARTTLS-secured connection"
    );
    assert!(mail.body().contains("/_opsloop/sns/confirm?"));

    // A server without STARTTLS is not used when STARTTLS is required (the mail waits for retry).
    let plain = SmtpSink::start().await;
    let port = plain.port;
    let h2 = Harness::new(|c| {
        c.smtp = Some(
            SmtpConfig::from_url(
                &format!("smtp+starttls://127.0.0.1:{port}"),
                "sns@opsloop.test",
            )
            .unwrap(),
        );
    });
    h2.sns.start().unwrap();
    let topic = h2.create_topic("needtls").await;
    h2.ok(
        "Subscribe",
        json!({"TopicArn": topic, "Protocol": "email", "Endpoint": "sec@example.com"}),
    )
    .await;
    common::wait_for(|| {
        h2.store
            .scan("sns.outbox", "", None, 10)
            .ok()
            .and_then(|rows| {
                rows.first().and_then(|(_, b)| {
                    serde_json::from_slice::<opsloop_sns::state::Delivery>(b).ok()
                })
            })
            .is_some_and(|d| d.attempts >= 1)
    })
    .await;
    assert!(plain.mails().is_empty());
}
