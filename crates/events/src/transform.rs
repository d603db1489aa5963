//! What a target receives: the whole event, a constant `Input`, the part of the event an
//! `InputPath` selects, or an `InputTransformer` rendering (`InputPathsMap` variables and the
//! reserved `<aws.events.*>` variables substituted into `InputTemplate`).
//!
//! Substitution follows EventBridge: a variable inside a JSON string literal of the template is
//! replaced by the value's text (strings without their quotes, other values as escaped JSON); a
//! variable outside string literals is replaced by the value's JSON (strings quoted). A path the
//! event does not have gives an empty string inside quotes and `null` outside.

use opsloop_core::Value;

use crate::event::Event;
use crate::util::iso_millis;

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Parse the JSONPath subset EventBridge paths use: `$`, `.name`, `['name']`, `["name"]`, `[n]`.
pub fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| "a JSONPath must start with $".to_string())?;
    let b = rest.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                if j == start {
                    return Err("empty member name".into());
                }
                out.push(Seg::Key(rest[start..j].to_string()));
                i = j;
            }
            b'[' => {
                let close = rest[i..]
                    .find(']')
                    .map(|k| i + k)
                    .ok_or_else(|| "unclosed [".to_string())?;
                let inner = &rest[i + 1..close];
                if let Ok(n) = inner.parse::<usize>() {
                    out.push(Seg::Index(n));
                } else if inner.len() >= 2
                    && ((inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"')))
                {
                    out.push(Seg::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    return Err(format!("unsupported selector [{inner}]"));
                }
                i = close + 1;
            }
            _ => return Err("expected . or [ after $".into()),
        }
    }
    Ok(out)
}

/// The value at `path` in `v`.
pub fn select<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Key(k) => cur.get(k.as_str()),
        Seg::Index(n) => cur.get(*n),
    })
}

/// Check an `InputTransformer` document.
pub fn validate_transformer(tr: &Value) -> Result<(), String> {
    let template = tr
        .get("InputTemplate")
        .and_then(Value::as_str)
        .unwrap_or("");
    if template.len() > 8192 {
        return Err("InputTemplate is longer than 8192 characters.".into());
    }
    if let Some(map) = tr.get("InputPathsMap").and_then(Value::as_object) {
        if map.len() > 100 {
            return Err("InputPathsMap has more than 100 entries.".into());
        }
        for (k, v) in map {
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "InputPathsMap key {k} is not valid (letters, digits, _ and - only)."
                ));
            }
            if k.starts_with("aws.") {
                return Err(format!("InputPathsMap key {k} is reserved."));
            }
            let p = v.as_str().unwrap_or("");
            parse_path(p)
                .map_err(|e| format!("InputPathsMap path {p} for {k} is not valid: {e}"))?;
        }
    }
    Ok(())
}

/// What is delivered to the rule's target for `event`.
pub struct Context<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_ms: i64,
}

/// The input of `target` (a `Target` document) for `event`: the event's text unchanged when the
/// target has no `Input`, `InputPath` or `InputTransformer` (the event is not decoded then).
pub fn render(target: &Value, event: &Event, cx: &Context<'_>) -> String {
    if let Some(input) = target.get("Input").and_then(Value::as_str) {
        return input.to_string();
    }
    if let Some(p) = target.get("InputPath").and_then(Value::as_str) {
        let v = parse_path(p)
            .ok()
            .and_then(|p| select(event.value(), &p).cloned());
        return v.unwrap_or(Value::Null).to_string();
    }
    if let Some(tr) = target.get("InputTransformer") {
        return apply_transformer(tr, event.value(), cx);
    }
    event.text().to_string()
}

fn variable(name: &str, tr: &Value, event: &Value, cx: &Context<'_>) -> Option<Option<Value>> {
    match name {
        "aws.events.rule-arn" => Some(Some(cx.rule_arn.into())),
        "aws.events.rule-name" => Some(Some(cx.rule_name.into())),
        "aws.events.event.ingestion-time" => Some(Some(iso_millis(cx.ingestion_ms).into())),
        "aws.events.event" | "aws.events.event.json" => Some(Some(event.clone())),
        _ => {
            let path = tr.get("InputPathsMap")?.get(name)?.as_str()?;
            let p = parse_path(path).ok()?;
            Some(select(event, &p).cloned())
        }
    }
}

/// Render `InputTemplate` of transformer `tr` for `event`.
pub fn apply_transformer(tr: &Value, event: &Value, cx: &Context<'_>) -> String {
    let template = tr
        .get("InputTemplate")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = String::with_capacity(template.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(end) = rest.find('>') {
                let name = &rest[1..end];
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                if ok {
                    if let Some(val) = variable(name, tr, event, cx) {
                        push_value(&mut out, val.as_ref(), in_string);
                        rest = &rest[end + 1..];
                        escaped = false;
                        continue;
                    }
                }
            }
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn push_value(out: &mut String, v: Option<&Value>, in_string: bool) {
    match (v, in_string) {
        (None | Some(Value::Null), true) => {}
        (None, false) => out.push_str("null"),
        (Some(Value::String(s)), true) => {
            let q = Value::String(s.clone()).to_string();
            out.push_str(&q[1..q.len() - 1]);
        }
        (Some(v), true) => {
            let q = Value::String(v.to_string()).to_string();
            out.push_str(&q[1..q.len() - 1]);
        }
        (Some(v), false) => out.push_str(&v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "version": "0", "id": "e1", "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "account": "111122223333", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-1"],
            "detail": {"instance-id": "i-1", "state": "stopped", "n": 3, "tags": {"a": "b\"c"}}
        })
    }

    fn cx() -> Context<'static> {
        Context {
            rule_arn: "arn:aws:events:us-east-1:111122223333:rule/r",
            rule_name: "r",
            ingestion_ms: 1000,
        }
    }

    #[test]
    fn paths() {
        let p = parse_path("$.detail['instance-id']").unwrap();
        assert_eq!(select(&event(), &p), Some(&json!("i-1")));
        assert_eq!(
            select(&event(), &parse_path("$.resources[0]").unwrap()),
            Some(&json!("arn:aws:ec2:us-east-1:111122223333:instance/i-1"))
        );
        assert_eq!(select(&event(), &parse_path("$").unwrap()), Some(&event()));
        assert!(parse_path("detail").is_err());
        assert!(parse_path("$.").is_err());
        assert!(parse_path("$[x]").is_err());
    }

    #[test]
    fn inputs() {
        let e = Event::from_value(event());
        assert_eq!(
            render(&json!({"Input": "{\"k\":1}"}), &e, &cx()),
            "{\"k\":1}"
        );
        assert_eq!(
            render(&json!({"InputPath": "$.detail.state"}), &e, &cx()),
            "\"stopped\""
        );
        assert_eq!(
            render(&json!({"InputPath": "$.detail.nope"}), &e, &cx()),
            "null"
        );
        assert_eq!(render(&json!({}), &e, &cx()), event().to_string());
    }

    #[test]
    fn transformer_quoting() {
        let tr = json!({
            "InputPathsMap": {"instance": "$.detail.instance-id", "state": "$.detail.state", "n": "$.detail.n", "tags": "$.detail.tags", "missing": "$.detail.x"},
            "InputTemplate": "{\"text\": \"<instance> is <state> (<n>)\", \"state\": <state>, \"n\": <n>, \"tags\": <tags>, \"t\": \"<tags>\", \"m\": <missing>, \"ms\": \"<missing>\", \"lit\": \"a<b>c\"}"
        });
        let out = apply_transformer(&tr, &event(), &cx());
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(v["text"], "i-1 is stopped (3)");
        assert_eq!(v["state"], "stopped");
        assert_eq!(v["n"], 3);
        assert_eq!(v["tags"], json!({"a": "b\"c"}));
        assert_eq!(v["t"], "{\"a\":\"b\\\"c\"}");
        assert_eq!(v["m"], Value::Null);
        assert_eq!(v["ms"], "");
        assert_eq!(v["lit"], "a<b>c");
    }

    #[test]
    fn reserved_variables() {
        let tr = json!({"InputTemplate": "{\"rule\": \"<aws.events.rule-name>\", \"arn\": <aws.events.rule-arn>, \"at\": \"<aws.events.event.ingestion-time>\", \"e\": <aws.events.event>, \"j\": \"<aws.events.event.json>\"}"});
        let v: Value = serde_json::from_str(&apply_transformer(&tr, &event(), &cx())).unwrap();
        assert_eq!(v["rule"], "r");
        assert_eq!(v["arn"], "arn:aws:events:us-east-1:111122223333:rule/r");
        assert_eq!(v["at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["e"], event());
        assert_eq!(
            serde_json::from_str::<Value>(v["j"].as_str().unwrap()).unwrap(),
            event()
        );
    }

    #[test]
    fn plain_string_template() {
        let tr = json!({"InputPathsMap": {"i": "$.detail.instance-id"}, "InputTemplate": "\"instance <i> changed\""});
        assert_eq!(
            apply_transformer(&tr, &event(), &cx()),
            "\"instance i-1 changed\""
        );
    }

    #[test]
    fn transformer_validation() {
        assert!(validate_transformer(
            &json!({"InputTemplate": "x", "InputPathsMap": {"aws.x": "$"}})
        )
        .is_err());
        assert!(validate_transformer(
            &json!({"InputTemplate": "x", "InputPathsMap": {"a b": "$"}})
        )
        .is_err());
        assert!(validate_transformer(
            &json!({"InputTemplate": "x", "InputPathsMap": {"a": "detail"}})
        )
        .is_err());
        assert!(validate_transformer(
            &json!({"InputTemplate": "x", "InputPathsMap": {"a": "$.detail"}})
        )
        .is_ok());
    }
}
