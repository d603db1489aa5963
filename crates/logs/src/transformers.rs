//! Log transformers: Put/Get/DeleteTransformer per log group, TestTransformer, and the pipeline
//! applied at ingestion.
//!
//! PutLogEvents runs the group's transformer over each accepted event before it is stored, so
//! GetLogEvents, FilterLogEvents, metric filters, subscription filters and Insights all see the
//! transformed event (a JSON object), as AWS describes. An event the pipeline cannot transform (for
//! example parseJSON over text that is not JSON) is stored unchanged.
//!
//! Processors applied: the parsers `parseJSON`, `parseKeyValue` and `csv` (the first processor must
//! be one of them, as in AWS), and the mutators `addKeys` (values may be the metadata keys
//! `@logGroupName`, `@logGroupStream`, `@accountId`, `@regionName`), `deleteKeys`, `renameKeys`,
//! `copyValue`, `moveKeys`, `lowerCaseString`, `upperCaseString`, `trimString`, `splitString`,
//! `substituteString` and `typeConverter`. Keys use dot notation for nested fields. Other
//! processors (grok, dateTimeConverter, listToMap, the vended-log parsers and parseToOCSF) are
//! refused with InvalidParameterException naming them, so a stored transformer is always one
//! that runs.
//!
//! Keys: table `logs.transformers`, `{account}/{region}/{group}`.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::error::{self, req_str, store_err};
use crate::groups::{group_key, load_group, name_from_identifier};
use crate::records;

const TABLE: &str = "logs.transformers";
const PARSERS: &[&str] = &["parseJSON", "parseKeyValue", "csv"];
const MUTATORS: &[&str] = &[
    "addKeys",
    "deleteKeys",
    "renameKeys",
    "copyValue",
    "moveKeys",
    "lowerCaseString",
    "upperCaseString",
    "trimString",
    "splitString",
    "substituteString",
    "typeConverter",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    config: Value,
    created: i64,
    modified: i64,
}

/// Metadata an ingest-time pipeline may copy into events.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub group: String,
    pub stream: String,
    pub account: String,
    pub region: String,
}

/// A validated transformer configuration.
#[derive(Debug, Clone)]
pub struct Pipeline {
    steps: Vec<(String, Value)>,
}

impl Pipeline {
    /// Validate a `transformerConfig` list.
    pub fn parse(config: &Value) -> Result<Pipeline, ApiError> {
        let list = config
            .as_array()
            .ok_or_else(|| error::invalid("transformerConfig must be a list of processors."))?;
        if list.is_empty() || list.len() > 20 {
            return Err(error::invalid(
                "transformerConfig must hold 1 to 20 processors.",
            ));
        }
        let mut steps = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let obj = p.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                error::invalid(format!(
                    "transformerConfig[{i}] must set exactly one processor."
                ))
            })?;
            let (kind, args) = obj.iter().next().expect("one member");
            if !PARSERS.contains(&kind.as_str()) && !MUTATORS.contains(&kind.as_str()) {
                return Err(error::invalid(format!(
                    "Processor {kind} is not supported by this opsloop release; supported: {}, {}.",
                    PARSERS.join(", "),
                    MUTATORS.join(", ")
                )));
            }
            if i == 0 && !PARSERS.contains(&kind.as_str()) {
                return Err(error::invalid(format!(
                    "The first processor must be a parser ({}), not {kind}.",
                    PARSERS.join(", ")
                )));
            }
            if kind == "csv" && opt(args, "delimiter").is_some_and(|d| d.chars().count() != 1) {
                return Err(error::invalid("csv delimiter must be one character."));
            }
            steps.push((kind.clone(), args.clone()));
        }
        Ok(Pipeline { steps })
    }

    /// Transform one message; `None` when a step does not apply (the event stays as it was).
    pub fn apply(&self, msg: &str, meta: &Meta) -> Option<String> {
        let mut doc = Value::Object(Map::new());
        for (kind, args) in &self.steps {
            step(kind, args, msg, &mut doc, meta)?;
        }
        Some(doc.to_string())
    }
}

fn opt<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn entries(args: &Value) -> impl Iterator<Item = &Value> {
    args.get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn keys(args: &Value) -> impl Iterator<Item = &str> {
    args.get("withKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

fn take(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (p.split('.').try_fold(&mut *doc, |v, k| v.get_mut(k))?, l),
        None => (doc, path),
    };
    parent.as_object_mut()?.remove(last)
}

/// Set `path` (creating objects on the way); refuses to overwrite unless `overwrite`.
fn set(doc: &mut Value, path: &str, value: Value, overwrite: bool) {
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for k in &parts[..parts.len() - 1] {
        if !cur.get(*k).is_some_and(Value::is_object) {
            let Some(obj) = cur.as_object_mut() else {
                return;
            };
            obj.insert(k.to_string(), Value::Object(Map::new()));
        }
        cur = cur.get_mut(*k).expect("just inserted");
    }
    if let Some(obj) = cur.as_object_mut() {
        let last = parts[parts.len() - 1];
        if overwrite || !obj.contains_key(last) {
            obj.insert(last.to_string(), value);
        }
    }
}

/// The text a parser reads: the message itself, or a string field of the document.
fn source_text(args: &Value, msg: &str, doc: &Value) -> Option<String> {
    match opt(args, "source") {
        None | Some("@message") => Some(msg.to_string()),
        Some(p) => get(doc, p).and_then(Value::as_str).map(str::to_string),
    }
}

fn put_parsed(doc: &mut Value, args: &Value, parsed: Map<String, Value>, overwrite: bool) {
    match opt(args, "destination") {
        Some(d) => set(doc, d, Value::Object(parsed), true),
        None => {
            for (k, v) in parsed {
                set(doc, &k, v, overwrite || doc.get(&k).is_none());
            }
        }
    }
}

fn split_csv(line: &str, delim: char, quote: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            if quoted && chars.peek() == Some(&quote) {
                cur.push(quote);
                chars.next();
            } else {
                quoted = !quoted;
            }
        } else if c == delim && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn step(kind: &str, args: &Value, msg: &str, doc: &mut Value, meta: &Meta) -> Option<()> {
    match kind {
        "parseJSON" => {
            let text = source_text(args, msg, doc)?;
            let Value::Object(parsed) = serde_json::from_str::<Value>(text.trim()).ok()? else {
                return None;
            };
            put_parsed(doc, args, parsed, true);
        }
        "parseKeyValue" => {
            let text = source_text(args, msg, doc)?;
            let fd = opt(args, "fieldDelimiter").unwrap_or("&");
            let kd = opt(args, "keyValueDelimiter").unwrap_or("=");
            let prefix = opt(args, "keyPrefix").unwrap_or("");
            let mut parsed = Map::new();
            for field in text.split(fd).filter(|f| !f.is_empty()) {
                match field.split_once(kd) {
                    Some((k, v)) => {
                        parsed.insert(format!("{prefix}{}", k.trim()), json!(v));
                    }
                    None => {
                        if let Some(nm) = opt(args, "nonMatchValue") {
                            parsed.insert(format!("{prefix}{}", field.trim()), json!(nm));
                        }
                    }
                }
            }
            put_parsed(doc, args, parsed, flag(args, "overwriteIfExists"));
        }
        "csv" => {
            let text = source_text(args, msg, doc)?;
            let delim = opt(args, "delimiter")
                .and_then(|d| d.chars().next())
                .unwrap_or(',');
            let quote = opt(args, "quoteCharacter")
                .and_then(|d| d.chars().next())
                .unwrap_or('"');
            let values = split_csv(&text, delim, quote);
            let columns: Vec<String> = match args.get("columns").and_then(Value::as_array) {
                Some(c) => c
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                None => (1..=values.len()).map(|i| format!("column_{i}")).collect(),
            };
            let parsed: Map<String, Value> = columns
                .into_iter()
                .zip(values)
                .map(|(c, v)| (c, Value::String(v)))
                .collect();
            put_parsed(doc, args, parsed, true);
        }
        "addKeys" => {
            for e in entries(args) {
                let (Some(k), Some(v)) = (opt(e, "key"), opt(e, "value")) else {
                    continue;
                };
                let value = match v {
                    "@logGroupName" => meta.group.clone(),
                    "@logGroupStream" => meta.stream.clone(),
                    "@accountId" => meta.account.clone(),
                    "@regionName" => meta.region.clone(),
                    other => other.to_string(),
                };
                set(doc, k, json!(value), flag(e, "overwriteIfExists"));
            }
        }
        "deleteKeys" => {
            for k in keys(args) {
                take(doc, k);
            }
        }
        "renameKeys" | "moveKeys" => {
            for e in entries(args) {
                let (from, to) = if kind == "renameKeys" {
                    (opt(e, "key"), opt(e, "renameTo"))
                } else {
                    (opt(e, "source"), opt(e, "target"))
                };
                let (Some(from), Some(to)) = (from, to) else {
                    continue;
                };
                let overwrite = flag(e, "overwriteIfExists");
                if get(doc, to).is_some() && !overwrite {
                    continue;
                }
                if let Some(v) = take(doc, from) {
                    set(doc, to, v, overwrite);
                }
            }
        }
        "copyValue" => {
            for e in entries(args) {
                let (Some(from), Some(to)) = (opt(e, "source"), opt(e, "target")) else {
                    continue;
                };
                if let Some(v) = get(doc, from).cloned() {
                    set(doc, to, v, flag(e, "overwriteIfExists"));
                }
            }
        }
        "lowerCaseString" | "upperCaseString" | "trimString" => {
            for k in keys(args) {
                if let Some(s) = get(doc, k).and_then(Value::as_str) {
                    let t = match kind {
                        "lowerCaseString" => s.to_lowercase(),
                        "upperCaseString" => s.to_uppercase(),
                        _ => s.trim().to_string(),
                    };
                    set(doc, k, json!(t), true);
                }
            }
        }
        "splitString" => {
            for e in entries(args) {
                let (Some(src), Some(d)) = (opt(e, "source"), opt(e, "delimiter")) else {
                    continue;
                };
                if let Some(s) = get(doc, src).and_then(Value::as_str) {
                    let parts: Vec<Value> = s.split(d).map(|p| json!(p)).collect();
                    set(doc, src, Value::Array(parts), true);
                }
            }
        }
        "substituteString" => {
            for e in entries(args) {
                let (Some(src), Some(from), Some(to)) =
                    (opt(e, "source"), opt(e, "from"), opt(e, "to"))
                else {
                    continue;
                };
                let Ok(re) = regex::RegexBuilder::new(from).size_limit(1 << 20).build() else {
                    continue;
                };
                if let Some(s) = get(doc, src).and_then(Value::as_str) {
                    let out = re.replace_all(s, to).into_owned();
                    set(doc, src, json!(out), true);
                }
            }
        }
        "typeConverter" => {
            for e in entries(args) {
                let (Some(k), Some(t)) = (opt(e, "key"), opt(e, "type")) else {
                    continue;
                };
                let Some(v) = get(doc, k).cloned() else {
                    continue;
                };
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                let converted = match t {
                    "integer" => text.trim().parse::<i64>().ok().map(|n| json!(n)),
                    "double" => text.trim().parse::<f64>().ok().map(|n| json!(n)),
                    "boolean" => match text.trim().to_ascii_lowercase().as_str() {
                        "true" => Some(json!(true)),
                        "false" => Some(json!(false)),
                        _ => None,
                    },
                    _ => Some(json!(text)),
                };
                if let Some(c) = converted {
                    set(doc, k, c, true);
                }
            }
        }
        _ => return None,
    }
    Some(())
}

/// The transformer of `group`, if it has one.
pub fn pipeline_of(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
) -> Result<Option<Pipeline>, ApiError> {
    match records::get::<Stored>(store, TABLE, &group_key(ctx, group))? {
        Some(s) => Ok(Some(Pipeline::parse(&s.config)?)),
        None => Ok(None),
    }
}

pub fn handle(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    if ctx.operation == "TestTransformer" {
        let pipeline = Pipeline::parse(input.get("transformerConfig").unwrap_or(&Value::Null))?;
        let messages = error::str_list(input, "logEventMessages");
        if messages.is_empty() || messages.len() > 100 {
            return Err(error::invalid(
                "logEventMessages must hold 1 to 100 messages.",
            ));
        }
        let meta = Meta {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            ..Meta::default()
        };
        let out: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let t = pipeline.apply(m, &meta).unwrap_or_else(|| m.clone());
                json!({"eventNumber": i + 1, "eventMessage": m, "transformedEventMessage": t})
            })
            .collect();
        return Ok(json!({ "transformedLogs": out }));
    }
    let ident = req_str(input, "logGroupIdentifier")?;
    let g = load_group(store, ctx, &name_from_identifier(ident))?;
    let key = group_key(ctx, &g.name);
    match ctx.operation.as_str() {
        "PutTransformer" => {
            let config = input.get("transformerConfig").cloned().unwrap_or_default();
            Pipeline::parse(&config)?;
            let created = records::get::<Stored>(store, TABLE, &key)?.map_or(now_ms, |s| s.created);
            records::put(
                store,
                TABLE,
                &key,
                &Stored {
                    config,
                    created,
                    modified: now_ms,
                },
            )?;
            Ok(json!({}))
        }
        "GetTransformer" => {
            let s: Stored = records::get(store, TABLE, &key)?
                .ok_or_else(|| error::not_found("The specified log group has no transformer."))?;
            Ok(json!({
                "logGroupIdentifier": ident, "transformerConfig": s.config,
                "creationTime": s.created, "lastModifiedTime": s.modified,
            }))
        }
        "DeleteTransformer" => {
            if !store.delete(TABLE, &key).map_err(store_err)? {
                return Err(error::not_found(
                    "The specified log group has no transformer.",
                ));
            }
            Ok(json!({}))
        }
        other => Err(crate::not_implemented(other)),
    }
}

/// Delete a group's transformer along with the group.
pub fn delete_op(ctx: &RequestContext, group: &str) -> opsloop_store::WriteOp {
    opsloop_store::WriteOp::Delete {
        table: TABLE.into(),
        key: group_key(ctx, group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_parses_and_mutates() {
        let p = Pipeline::parse(&json!([
            {"parseJSON": {}},
            {"addKeys": {"entries": [{"key": "meta.group", "value": "@logGroupName"}]}},
            {"renameKeys": {"entries": [{"key": "lvl", "renameTo": "level"}]}},
            {"upperCaseString": {"withKeys": ["level"]}},
            {"typeConverter": {"entries": [{"key": "ms", "type": "integer"}]}},
            {"deleteKeys": {"withKeys": ["secret"]}}
        ]))
        .unwrap();
        let meta = Meta {
            group: "/app".into(),
            ..Meta::default()
        };
        let out: Value = serde_json::from_str(
            &p.apply(r#"{"lvl":"warn","ms":"12","secret":"x"}"#, &meta)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"level": "WARN", "ms": 12, "meta": {"group": "/app"}})
        );
        assert!(p.apply("not json", &meta).is_none());
    }

    #[test]
    fn key_value_and_csv_parsers() {
        let kv = Pipeline::parse(
            &json!([{"parseKeyValue": {"fieldDelimiter": " ", "destination": "kv"}}]),
        )
        .unwrap();
        let out: Value =
            serde_json::from_str(&kv.apply("a=1 b=two", &Meta::default()).unwrap()).unwrap();
        assert_eq!(out, json!({"kv": {"a": "1", "b": "two"}}));
        let csv = Pipeline::parse(&json!([{"csv": {"columns": ["ip", "msg"]}}])).unwrap();
        let out: Value = serde_json::from_str(
            &csv.apply(r#"1.2.3.4,"hello, world""#, &Meta::default())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out, json!({"ip": "1.2.3.4", "msg": "hello, world"}));
    }

    #[test]
    fn unsupported_and_misordered_processors_are_refused() {
        let e = Pipeline::parse(&json!([{"grok": {"match": "%{WORD}"}}])).unwrap_err();
        assert!(e.message.contains("not supported"), "{}", e.message);
        let e = Pipeline::parse(&json!([{"deleteKeys": {"withKeys": ["a"]}}])).unwrap_err();
        assert!(e.message.contains("first processor"), "{}", e.message);
    }
}
