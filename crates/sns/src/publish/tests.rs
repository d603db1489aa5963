//! Unit tests of message validation: subject, attributes, MessageStructure, sizes and FIFO rules.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn topic(fifo: bool, cbd: bool) -> Topic {
    let mut attributes = BTreeMap::new();
    if fifo {
        attributes.insert("FifoTopic".to_string(), "true".to_string());
        attributes.insert("ContentBasedDeduplication".to_string(), cbd.to_string());
    }
    Topic {
        arn: "arn:aws:sns:us-east-1:000000000000:t".into(),
        name: "t".into(),
        account: "000000000000".into(),
        region: "us-east-1".into(),
        attributes,
        tags: Vec::new(),
        subscriptions_deleted: 0,
        created_ms: 0,
        next_sequence: 1,
    }
}

fn err(entry: serde_json::Value, t: &Topic) -> String {
    prepare(&entry, t).unwrap_err().message
}

#[test]
fn message_and_subject_rules() {
    let t = topic(false, false);
    assert_eq!(
        err(json!({"Message": ""}), &t),
        "Invalid parameter: Empty message"
    );
    assert_eq!(
        err(json!({"Message": "m", "Subject": "a\nb"}), &t),
        "Invalid parameter: Subject"
    );
    assert_eq!(
        err(json!({"Message": "m", "Subject": "x".repeat(101)}), &t),
        "Invalid parameter: Subject"
    );
    assert!(prepare(&json!({"Message": "m", "Subject": "x".repeat(100)}), &t).is_ok());
    assert_eq!(
        err(json!({"Message": "x".repeat(MAX_MESSAGE_BYTES + 1)}), &t),
        "Invalid parameter: Message too long"
    );
    assert!(prepare(&json!({"Message": "x".repeat(MAX_MESSAGE_BYTES)}), &t).is_ok());
    // Attributes count towards the limit.
    let attrs = json!({"a": {"DataType": "String", "StringValue": "v"}});
    assert_eq!(
        err(
            json!({"Message": "x".repeat(MAX_MESSAGE_BYTES - 2), "MessageAttributes": attrs}),
            &t
        ),
        "Invalid parameter: Message too long"
    );
}

#[test]
fn message_structure_json() {
    let t = topic(false, false);
    let p = prepare(
        &json!({"Message": r#"{"default": "d", "email": "e"}"#, "MessageStructure": "json"}),
        &t,
    )
    .unwrap();
    assert_eq!(p.message, "d");
    assert_eq!(p.per_protocol.get("email").map(String::as_str), Some("e"));
    assert_eq!(
        err(
            json!({"Message": r#"{"email": "e"}"#, "MessageStructure": "json"}),
            &t
        ),
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    );
    assert_eq!(
        err(
            json!({"Message": "not json", "MessageStructure": "json"}),
            &t
        ),
        "Invalid parameter: Message Structure - JSON message body failed to parse"
    );
    assert_eq!(
        err(json!({"Message": "m", "MessageStructure": "xml"}), &t),
        "Invalid parameter: MessageStructure"
    );
}

#[test]
fn attribute_rules() {
    let t = topic(false, false);
    let with =
        |attrs: serde_json::Value| err(json!({"Message": "m", "MessageAttributes": attrs}), &t);
    assert!(
        with(json!({"n": {"DataType": "Number", "StringValue": "abc"}}))
            .contains("Could not cast message attribute 'n' value to number.")
    );
    assert!(
        with(json!({"s": {"DataType": "Strin", "StringValue": "x"}}))
            .contains("invalid message attribute type")
    );
    assert!(
        with(json!({"s": {"DataType": "String", "StringValue": ""}}))
            .contains("must contain non-empty message attribute value")
    );
    assert!(with(json!({"b": {"DataType": "Binary"}})).contains("must use field 'Binary'"));
    assert!(
        with(json!({"a b": {"DataType": "String", "StringValue": "x"}}))
            .contains("Invalid non-alphanumeric character '#x20'")
    );
    assert!(
        with(json!({"AWS.x": {"DataType": "String", "StringValue": "x"}}))
            .contains("reserved prefix")
    );
    assert!(
        with(json!({"arr": {"DataType": "String.Array", "StringValue": "[[1]]"}}))
            .contains("String.Array")
    );
    let many: serde_json::Map<String, serde_json::Value> = (0..11)
        .map(|i| {
            (
                format!("a{i}"),
                json!({"DataType": "String", "StringValue": "v"}),
            )
        })
        .collect();
    assert!(with(serde_json::Value::Object(many)).contains("exceeds the allowed maximum [10]"));
    let ok = prepare(
        &json!({"Message": "m", "MessageAttributes": {
            "s": {"DataType": "String.custom", "StringValue": "x"},
            "n": {"DataType": "Number", "StringValue": "1.5e3"},
            "b": {"DataType": "Binary", "BinaryValue": "AAEC"},
            "arr": {"DataType": "String.Array", "StringValue": "[\"a\", 1, true, null]"}}}),
        &t,
    )
    .unwrap();
    assert_eq!(ok.attributes.len(), 4);
    assert_eq!(ok.attributes["b"].value, "AAEC");
}

#[test]
fn fifo_rules() {
    let fifo = topic(true, false);
    assert_eq!(
        err(json!({"Message": "m"}), &fifo),
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    );
    assert!(err(json!({"Message": "m", "MessageGroupId": "g"}), &fifo)
        .contains("ContentBasedDeduplication"));
    assert!(prepare(
        &json!({"Message": "m", "MessageGroupId": "g", "MessageDeduplicationId": "d"}),
        &fifo
    )
    .is_ok());
    let cbd = topic(true, true);
    let p = prepare(&json!({"Message": "m", "MessageGroupId": "g"}), &cbd).unwrap();
    assert_eq!(p.dedup_id.as_deref().map(str::len), Some(64));
    let standard = topic(false, false);
    assert!(err(
        json!({"Message": "m", "MessageDeduplicationId": "d"}),
        &standard
    )
    .contains("not valid for this topic type"));
    assert!(prepare(&json!({"Message": "m", "MessageGroupId": "g"}), &standard).is_ok());
}

#[test]
fn targets() {
    assert!(target(&json!({"PhoneNumber": "+15555550100"}))
        .unwrap_err()
        .message
        .contains("SMS"));
    assert!(target(&json!({})).is_err());
    assert!(target(&json!({"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "TargetArn": "arn:aws:sns:us-east-1:000000000000:t"})).is_err());
    assert_eq!(
        target(&json!({"TargetArn": "arn:aws:sns:us-east-1:000000000000:t"}))
            .unwrap()
            .name,
        "t"
    );
    assert!(
        target(&json!({"TargetArn": "arn:aws:sns:us-east-1:000000000000:endpoint/GCM/app/1"}))
            .is_err()
    );
}
