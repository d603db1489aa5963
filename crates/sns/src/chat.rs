//! Chat webhooks: the `slack` and `teams` subscription protocols turn a message into a readable
//! post. CloudWatch alarm notifications (JSON with `AlarmName` and `NewStateValue`) become a
//! state-coloured summary with reason, metric and threshold; EventBridge events (JSON with
//! `source`, `detail-type` and `detail`) a summary of the event; anything else the subject and
//! text. Slack receives `{"text", "attachments"}` (incoming-webhook format); Teams an Adaptive Card
//! in a `message` envelope (Workflows and connector webhooks).

use serde_json::{json, Value};

/// A message summarised for chat.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub title: String,
    pub text: String,
    pub facts: Vec<(String, String)>,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Alarm,
    Ok,
    Warning,
    Info,
}

impl Severity {
    fn slack_color(self) -> &'static str {
        match self {
            Severity::Alarm => "#d13212",
            Severity::Ok => "#1d8102",
            Severity::Warning => "#ff9900",
            Severity::Info => "#439fe0",
        }
    }

    fn teams_color(self) -> &'static str {
        match self {
            Severity::Alarm => "Attention",
            Severity::Ok => "Good",
            Severity::Warning => "Warning",
            Severity::Info => "Accent",
        }
    }

    fn emoji(self) -> &'static str {
        match self {
            Severity::Alarm => ":red_circle:",
            Severity::Ok => ":large_green_circle:",
            Severity::Warning => ":large_orange_circle:",
            Severity::Info => ":information_source:",
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn alarm_post(v: &Value) -> Option<Post> {
    let name = str_of(v, "AlarmName")?;
    let state = str_of(v, "NewStateValue")?;
    let severity = match state {
        "ALARM" => Severity::Alarm,
        "OK" => Severity::Ok,
        _ => Severity::Warning,
    };
    let region = str_of(v, "Region").unwrap_or("");
    let title = if region.is_empty() {
        format!("{state}: \"{name}\"")
    } else {
        format!("{state}: \"{name}\" in {region}")
    };
    let mut facts = Vec::new();
    match str_of(v, "OldStateValue") {
        Some(old) => facts.push(("State".to_string(), format!("{old} → {state}"))),
        None => facts.push(("State".to_string(), state.to_string())),
    }
    if let Some(desc) = str_of(v, "AlarmDescription") {
        facts.push(("Description".into(), desc.to_string()));
    }
    if let Some(trigger) = v.get("Trigger") {
        let metric = match (str_of(trigger, "Namespace"), str_of(trigger, "MetricName")) {
            (Some(ns), Some(m)) => Some(format!("{ns} {m}")),
            (None, Some(m)) => Some(m.to_string()),
            _ => None,
        };
        if let Some(m) = metric {
            let dims: Vec<String> = trigger
                .get("Dimensions")
                .and_then(Value::as_array)
                .map(|ds| {
                    ds.iter()
                        .filter_map(|d| {
                            Some(format!(
                                "{}={}",
                                str_of(d, "name").or(str_of(d, "Name"))?,
                                str_of(d, "value").or(str_of(d, "Value"))?
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let text = if dims.is_empty() {
                m
            } else {
                format!("{m} ({})", dims.join(", "))
            };
            facts.push(("Metric".into(), text));
        }
        if let (Some(op), Some(threshold)) = (
            str_of(trigger, "ComparisonOperator"),
            trigger.get("Threshold").and_then(scalar_text),
        ) {
            let stat = str_of(trigger, "Statistic")
                .or(str_of(trigger, "ExtendedStatistic"))
                .unwrap_or("");
            let period = trigger
                .get("Period")
                .and_then(scalar_text)
                .map(|p| format!(" over {p} s"))
                .unwrap_or_default();
            facts.push((
                "Threshold".into(),
                format!("{stat} {op} {threshold}{period}")
                    .trim()
                    .to_string(),
            ));
        }
    }
    if let Some(account) = v.get("AWSAccountId").and_then(scalar_text) {
        facts.push(("Account".into(), account));
    }
    if let Some(time) = str_of(v, "StateChangeTime") {
        facts.push(("Time".into(), time.to_string()));
    }
    let text = str_of(v, "NewStateReason").unwrap_or("").to_string();
    Some(Post {
        title,
        text,
        facts,
        severity,
    })
}

fn event_post(v: &Value) -> Option<Post> {
    let source = str_of(v, "source")?;
    let detail_type = str_of(v, "detail-type")?;
    let detail = v.get("detail")?;
    // A CloudWatch alarm state change delivered through EventBridge.
    let state = detail.pointer("/state/value").and_then(Value::as_str);
    let severity = match state {
        Some("ALARM") => Severity::Alarm,
        Some("OK") => Severity::Ok,
        Some(_) => Severity::Warning,
        None => Severity::Info,
    };
    let mut title = format!("{detail_type} ({source})");
    if let (Some(name), Some(state)) = (detail.get("alarmName").and_then(Value::as_str), state) {
        title = format!("{state}: \"{name}\" — {detail_type}");
    }
    let text = detail
        .pointer("/state/reason")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_default();
    let mut facts = Vec::new();
    for key in ["account", "region", "time"] {
        if let Some(s) = v.get(key).and_then(scalar_text) {
            facts.push((key[..1].to_uppercase() + &key[1..], s));
        }
    }
    if let Some(Value::Array(res)) = v.get("resources") {
        let list: Vec<String> = res.iter().filter_map(scalar_text).collect();
        if !list.is_empty() {
            facts.push(("Resources".into(), list.join(", ")));
        }
    }
    if let Value::Object(map) = detail {
        for (k, val) in map.iter().filter(|(k, _)| k.as_str() != "state").take(8) {
            if let Some(s) = scalar_text(val) {
                facts.push((k.clone(), s));
            }
        }
    }
    Some(Post {
        title,
        text,
        facts,
        severity,
    })
}

/// Summarise a message (its text and subject) for chat.
pub fn summarise(subject: Option<&str>, message: &str, topic_arn: &str) -> Post {
    if let Ok(v) = serde_json::from_str::<Value>(message) {
        if let Some(p) = alarm_post(&v).or_else(|| event_post(&v)) {
            return p;
        }
    }
    let topic = topic_arn.rsplit(':').next().unwrap_or(topic_arn);
    Post {
        title: subject
            .map(str::to_string)
            .unwrap_or_else(|| format!("Notification from {topic}")),
        text: message.to_string(),
        facts: Vec::new(),
        severity: Severity::Info,
    }
}

/// Slack incoming-webhook payload.
pub fn slack_payload(post: &Post, topic_arn: &str) -> Value {
    let fields: Vec<Value> = post
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": v.chars().count() <= 40}))
        .collect();
    json!({
        "text": format!("{} {}", post.severity.emoji(), post.title),
        "attachments": [{
            "color": post.severity.slack_color(),
            "title": post.title,
            "text": post.text,
            "fields": fields,
            "footer": format!("opsloop SNS · {topic_arn}"),
        }]
    })
}

/// Teams payload: an Adaptive Card in a `message` envelope.
pub fn teams_payload(post: &Post, topic_arn: &str) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
        "color": post.severity.teams_color(), "text": post.title,
    })];
    if !post.text.is_empty() {
        body.push(json!({"type": "TextBlock", "wrap": true, "text": post.text}));
    }
    if !post.facts.is_empty() {
        let facts: Vec<Value> = post
            .facts
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    body.push(json!({"type": "TextBlock", "wrap": true, "isSubtle": true, "size": "Small", "text": format!("opsloop SNS · {topic_arn}")}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALARM: &str = r#"{"AlarmName":"HighCPU","AlarmDescription":"cpu too high","AWSAccountId":"000000000000",
        "NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 1 datapoint [91.0] was greater than the threshold (80.0).",
        "StateChangeTime":"2024-01-01T00:00:00.000+0000","Region":"US East (N. Virginia)","OldStateValue":"OK",
        "Trigger":{"MetricName":"CPUUtilization","Namespace":"AWS/EC2","Statistic":"AVERAGE","Period":60,
        "Dimensions":[{"value":"i-1","name":"InstanceId"}],"ComparisonOperator":"GreaterThanThreshold","Threshold":80.0}}"#;

    #[test]
    fn alarms_become_coloured_summaries() {
        let p = summarise(
            Some("ALARM: \"HighCPU\""),
            ALARM,
            "arn:aws:sns:us-east-1:000000000000:alerts",
        );
        assert_eq!(p.severity, Severity::Alarm);
        assert_eq!(p.title, "ALARM: \"HighCPU\" in US East (N. Virginia)");
        assert!(p.text.starts_with("Threshold Crossed"));
        let facts: std::collections::HashMap<_, _> = p.facts.iter().cloned().collect();
        assert_eq!(facts["State"], "OK → ALARM");
        assert_eq!(facts["Metric"], "AWS/EC2 CPUUtilization (InstanceId=i-1)");
        assert_eq!(
            facts["Threshold"],
            "AVERAGE GreaterThanThreshold 80.0 over 60 s"
        );
        let slack = slack_payload(&p, "arn:t");
        assert_eq!(slack["attachments"][0]["color"], "#d13212");
        assert!(slack["text"].as_str().unwrap().contains("HighCPU"));
        let teams = teams_payload(&p, "arn:t");
        assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
        assert_eq!(
            teams["attachments"][0]["content"]["body"][0]["color"],
            "Attention"
        );
        let ok = ALARM.replace("\"NewStateValue\":\"ALARM\"", "\"NewStateValue\":\"OK\"");
        assert_eq!(summarise(None, &ok, "t").severity, Severity::Ok);
    }

    #[test]
    fn eventbridge_events_are_summarised() {
        let ev = r#"{"version":"0","id":"1","detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch",
            "account":"000000000000","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":["arn:alarm"],
            "detail":{"alarmName":"HighCPU","state":{"value":"ALARM","reason":"crossed"},"previousState":{"value":"OK"}}}"#;
        let p = summarise(None, ev, "t");
        assert_eq!(p.severity, Severity::Alarm);
        assert_eq!(
            p.title,
            "ALARM: \"HighCPU\" — CloudWatch Alarm State Change"
        );
        assert_eq!(p.text, "crossed");
        assert!(p
            .facts
            .iter()
            .any(|(k, v)| k == "Region" && v == "us-east-1"));
    }

    #[test]
    fn plain_text_keeps_subject_and_message() {
        let p = summarise(
            Some("Deploy"),
            "version 2 is live",
            "arn:aws:sns:us-east-1:000000000000:deploys",
        );
        assert_eq!(
            (p.title.as_str(), p.text.as_str(), p.severity),
            ("Deploy", "version 2 is live", Severity::Info)
        );
        assert_eq!(
            summarise(None, "x", "arn:aws:sns:us-east-1:000000000000:deploys").title,
            "Notification from deploys"
        );
        // JSON that is neither an alarm nor an event is shown as text.
        assert_eq!(summarise(None, r#"{"a":1}"#, "t").text, r#"{"a":1}"#);
    }
}
