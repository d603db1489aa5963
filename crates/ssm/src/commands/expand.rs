//! From a command document and SendCommand's parameters to the plugins an agent runs.
//!
//! Everything that needs the server's state is done here, before dispatch, so the agent only ever
//! sees plain shell steps:
//!
//! - `{{ssm:NAME}}` / `{{ssm:NAME:VERSION-OR-LABEL}}` references in parameter values and in the
//!   document's step inputs are replaced by the Parameter Store value (String and StringList
//!   only, as Run Command allows; a SecureString or a missing parameter is `InvalidParameters`).
//!   The command keeps the parameters as sent, references and all.
//! - parameters are checked against the document (`resolve_parameters`) and substituted
//!   (`substitute`).
//! - `aws:runDocument` steps with `documentType: SSMDocument` are expanded in place: the named
//!   document (a built-in or one of the caller's, `name` or `name:version`) is resolved with the
//!   step's `documentParameters`, and its steps become plugins named `<step>.<nested step>`
//!   (nesting depth at most [`MAX_DEPTH`]). `LocalPath` is refused.
//! - each step's `precondition` travels with its plugins (`preconditions`, all of which must
//!   hold, the outer step's first): the agent evaluates them against its own platform and reports
//!   a step whose precondition is false as skipped.

use opsloop_core::{ApiError, Value};
use serde_json::json;

use crate::common::s;
use crate::documents;
use crate::error::err;
use crate::{Inner, Scope};

const DEFAULT_EXECUTION_TIMEOUT_S: i64 = 3600;
/// How deep `aws:runDocument` may nest.
pub const MAX_DEPTH: usize = 3;

fn invalid_params(msg: impl Into<String>) -> ApiError {
    err("InvalidParameters", msg)
}

/// Check `supplied` (name → list of strings) against the document's `parameters` block and return
/// the effective values (defaults filled in), each as a JSON string or list.
pub fn resolve_parameters(
    declared: &Value,
    supplied: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let empty = serde_json::Map::new();
    let declared = declared.as_object().unwrap_or(&empty);
    for name in supplied.keys() {
        if !declared.contains_key(name) {
            return Err(invalid_params(format!(
                "Parameter \"{name}\" is not defined in the document."
            )));
        }
    }
    let text_of = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| x.to_string())
    };
    let mut out = serde_json::Map::new();
    for (name, spec) in declared {
        let ty = spec.get("type").and_then(Value::as_str).unwrap_or("String");
        let values: Vec<String> = match supplied.get(name) {
            Some(Value::Array(a)) => a.iter().map(text_of).collect(),
            Some(Value::Null) => vec![],
            Some(other) => vec![text_of(other)],
            None => match spec.get("default") {
                Some(Value::Array(a)) => a.iter().map(text_of).collect(),
                Some(Value::String(d)) => vec![d.clone()],
                Some(other) => vec![other.to_string()],
                None => {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" is required but was not provided."
                    )))
                }
            },
        };
        if let Some(allowed) = spec.get("allowedValues").and_then(Value::as_array) {
            for v in &values {
                if !allowed.iter().any(|a| a.as_str() == Some(v.as_str())) {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" has a value \"{v}\" that is not one of its allowedValues."
                    )));
                }
            }
        }
        if let Some(pattern) = spec.get("allowedPattern").and_then(Value::as_str) {
            let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| {
                invalid_params(format!(
                    "Parameter \"{name}\" has an invalid allowedPattern."
                ))
            })?;
            for v in &values {
                if supplied.contains_key(name) && !re.is_match(v) {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" value \"{v}\" does not match its allowedPattern {pattern}."
                    )));
                }
            }
        }
        let value = match ty {
            "StringList" | "MapList" => {
                if let Some(min) = spec.get("minItems").and_then(Value::as_u64) {
                    if (values.len() as u64) < min {
                        return Err(invalid_params(format!(
                            "Parameter \"{name}\" needs at least {min} item(s)."
                        )));
                    }
                }
                json!(values)
            }
            _ => {
                if values.len() > 1 {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" is of type {ty} and takes a single value."
                    )));
                }
                json!(values.into_iter().next().unwrap_or_default())
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Replace `{{ name }}` references in `v` by parameter values: a string that is exactly one
/// reference becomes the value itself (a list stays a list); references inside text are replaced
/// by the value's text (list items joined by newlines).
pub fn substitute(v: &Value, params: &serde_json::Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                if !inner.contains("{{") {
                    if let Some(val) = params.get(inner.trim()) {
                        return val.clone();
                    }
                }
            }
            let mut out = s.clone();
            for (name, val) in params {
                let text = match val {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                for pat in [format!("{{{{ {name} }}}}"), format!("{{{{{name}}}}}")] {
                    out = out.replace(&pat, &text);
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, params)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, params)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Looks up a Parameter Store reference (`NAME` or `NAME:SELECTOR`): its value as text (a
/// StringList as its comma-separated text).
pub type ParamLookup<'a> = &'a dyn Fn(&str) -> Result<String, ApiError>;

/// Replace every `{{ssm:...}}` reference inside the strings of `v`.
pub fn resolve_ssm_refs(v: &Value, lookup: ParamLookup) -> Result<Value, ApiError> {
    Ok(match v {
        Value::String(text) => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(open) = rest.find("{{") {
                let Some(close) = rest[open..].find("}}") else {
                    break;
                };
                let inner = rest[open + 2..open + close].trim();
                out.push_str(&rest[..open]);
                match inner.strip_prefix("ssm:") {
                    Some(name) => out.push_str(&lookup(name.trim())?),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &rest[open + close + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve_ssm_refs(x, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), resolve_ssm_refs(x, lookup)?)))
                .collect::<Result<_, ApiError>>()?,
        ),
        other => other.clone(),
    })
}

/// The Parameter Store lookup Run Command uses: String and StringList parameters of `scope`.
pub fn param_lookup<'a>(
    inner: &'a Inner,
    scope: &'a Scope,
) -> impl Fn(&str) -> Result<String, ApiError> + 'a {
    move |reference: &str| {
        let (name, selector) = match reference.rsplit_once(':') {
            Some((n, sel)) if !n.is_empty() && !sel.contains('/') => (n, Some(sel)),
            _ => (reference, None),
        };
        let p = crate::params::lookup(inner, scope, name)?.ok_or_else(|| {
            invalid_params(format!(
                "The parameter {name} referenced as {{{{ssm:{reference}}}}} does not exist."
            ))
        })?;
        let v = crate::params::select(&p, selector)?;
        if v.ptype == "SecureString" {
            return Err(invalid_params(format!(
                "The parameter {name} is a SecureString; Run Command parameters can reference String and StringList parameters only."
            )));
        }
        crate::params::read_value(inner, &p.name, v, false)
    }
}

/// Where nested documents come from: name (possibly `name:version`) → parsed content.
pub type DocLookup<'a> = &'a dyn Fn(&str) -> Result<Value, ApiError>;

/// The document lookup `aws:runDocument` uses: a Command document of `scope` (or a built-in).
pub fn doc_lookup<'a>(
    inner: &'a Inner,
    scope: &'a Scope,
) -> impl Fn(&str) -> Result<Value, ApiError> + 'a {
    move |path: &str| {
        let (name, version) = match path.rsplit_once(':') {
            Some((n, v)) if !path.starts_with("arn:") && v.chars().all(|c| c.is_ascii_digit()) => {
                (n, Some(v))
            }
            _ => (path, None),
        };
        let doc = documents::find(inner, scope, name)?.ok_or_else(|| {
            err(
                "InvalidDocument",
                format!("aws:runDocument: document {name} does not exist."),
            )
        })?;
        if doc.doc_type != "Command" {
            return Err(err(
                "InvalidDocument",
                format!(
                    "aws:runDocument: document {name} is of type {} and not a Command document.",
                    doc.doc_type
                ),
            ));
        }
        let v = documents::pick(&doc, version, None)?;
        documents::parse_content(&v.content, &v.format)
    }
}

/// The plugins of a schema 2.x command document: parameters resolved and substituted,
/// `{{ssm:}}` references resolved, `aws:runDocument` steps expanded.
pub fn plugins(
    content: &Value,
    supplied: &serde_json::Map<String, Value>,
    params_lookup: ParamLookup,
    docs: DocLookup,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    expand(content, supplied, params_lookup, docs, "", &[], 0, &mut out)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn expand(
    content: &Value,
    supplied: &serde_json::Map<String, Value>,
    params_lookup: ParamLookup,
    docs: DocLookup,
    prefix: &str,
    outer_pre: &[Value],
    depth: usize,
    out: &mut Vec<Value>,
) -> Result<(), ApiError> {
    let supplied = match resolve_ssm_refs(&Value::Object(supplied.clone()), params_lookup)? {
        Value::Object(m) => m,
        _ => unreachable!("an object stays an object"),
    };
    let params = resolve_parameters(content.get("parameters").unwrap_or(&Value::Null), &supplied)?;
    let steps = content
        .get("mainSteps")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            err(
                "InvalidDocument",
                "Run Command needs a schema 2.x command document with mainSteps.",
            )
        })?;
    for step in steps {
        let name = format!(
            "{prefix}{}",
            step.get("name").and_then(Value::as_str).unwrap_or("step")
        );
        let action = step.get("action").and_then(Value::as_str).unwrap_or("");
        let inputs = substitute(step.get("inputs").unwrap_or(&Value::Null), &params);
        let inputs = resolve_ssm_refs(&inputs, params_lookup)?;
        let mut pre = outer_pre.to_vec();
        if let Some(p) = step.get("precondition") {
            pre.push(p.clone());
        }
        if action == "aws:runDocument" {
            if s(&inputs, "documentType") != Some("SSMDocument") {
                return Err(err(
                    "InvalidDocument",
                    format!("Step {name}: aws:runDocument supports documentType SSMDocument only (LocalPath is not available on opsloop nodes)."),
                ));
            }
            if depth + 1 >= MAX_DEPTH {
                return Err(err(
                    "InvalidDocument",
                    format!("Step {name}: aws:runDocument nests deeper than {MAX_DEPTH} levels."),
                ));
            }
            let path = s(&inputs, "documentPath").unwrap_or("");
            let nested = docs(path)?;
            let nested_params = match inputs.get("documentParameters") {
                Some(Value::Object(m)) => m.clone(),
                Some(Value::String(t)) if !t.trim().is_empty() => {
                    match serde_json::from_str::<Value>(t) {
                        Ok(Value::Object(m)) => m,
                        _ => {
                            return Err(invalid_params(format!(
                                "Step {name}: documentParameters is not a JSON object."
                            )))
                        }
                    }
                }
                _ => serde_json::Map::new(),
            };
            expand(
                &nested,
                &nested_params,
                params_lookup,
                docs,
                &format!("{name}."),
                &pre,
                depth + 1,
                out,
            )?;
            continue;
        }
        // A list item that was a StringList reference became a list: its lines take its place.
        let run: Vec<Value> = match inputs.get("runCommand") {
            Some(Value::Array(a)) => a
                .iter()
                .flat_map(|x| match x {
                    Value::Array(inner) => inner.clone(),
                    other => vec![other.clone()],
                })
                .collect(),
            Some(Value::String(s)) => vec![json!(s)],
            _ => vec![],
        };
        let timeout = match inputs.get("timeoutSeconds") {
            Some(Value::String(s)) if !s.is_empty() => s
                .parse::<i64>()
                .map_err(|_| invalid_params(format!("timeoutSeconds \"{s}\" is not a number.")))?,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(DEFAULT_EXECUTION_TIMEOUT_S),
            _ => DEFAULT_EXECUTION_TIMEOUT_S,
        };
        let mut plugin = json!({
            "name": name,
            "action": action,
            "runCommand": run,
            "workingDirectory": inputs.get("workingDirectory").cloned().unwrap_or(json!("")),
            "timeoutSeconds": timeout.max(1),
        });
        if !pre.is_empty() {
            plugin["preconditions"] = json!(pre);
        }
        out.push(plugin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_params(name: &str) -> Result<String, ApiError> {
        Err(invalid_params(format!("no parameter {name}")))
    }

    fn no_docs(name: &str) -> Result<Value, ApiError> {
        Err(err("InvalidDocument", format!("no document {name}")))
    }

    #[test]
    fn parameters_are_checked_and_defaulted() {
        let declared = json!({
            "commands": {"type": "StringList", "minItems": 1},
            "executionTimeout": {"type": "String", "default": "3600", "allowedPattern": "[0-9]+"},
            "mode": {"type": "String", "default": "a", "allowedValues": ["a", "b"]},
        });
        let sup = |v: Value| v.as_object().unwrap().clone();
        let p = resolve_parameters(&declared, &sup(json!({"commands": ["echo hi"]}))).unwrap();
        assert_eq!(p["commands"], json!(["echo hi"]));
        assert_eq!(p["executionTimeout"], json!("3600"));
        let p =
            resolve_parameters(&declared, &sup(json!({"commands": "one", "mode": "b"}))).unwrap();
        assert_eq!(
            (p["commands"].clone(), p["mode"].clone()),
            (json!(["one"]), json!("b"))
        );
        let e = resolve_parameters(&declared, &sup(json!({}))).unwrap_err();
        assert_eq!(e.kind, "InvalidParameters");
        assert!(e.message.contains("commands"));
        let e = resolve_parameters(&declared, &sup(json!({"commands": ["x"], "nope": ["1"]})))
            .unwrap_err();
        assert!(e.message.contains("nope"));
        let e = resolve_parameters(&declared, &sup(json!({"commands": ["x"], "mode": ["c"]})))
            .unwrap_err();
        assert!(e.message.contains("allowedValues"));
        let e = resolve_parameters(
            &declared,
            &sup(json!({"commands": ["x"], "executionTimeout": ["x1"]})),
        )
        .unwrap_err();
        assert!(e.message.contains("allowedPattern"));
        let e = resolve_parameters(
            &declared,
            &sup(json!({"commands": ["x"], "mode": ["a", "b"]})),
        )
        .unwrap_err();
        assert!(e.message.contains("single value"));
    }

    #[test]
    fn substitution_keeps_lists_and_fills_text() {
        let p = json!({"commands": ["a", "b"], "dir": "/tmp"});
        let p = p.as_object().unwrap();
        assert_eq!(substitute(&json!("{{ commands }}"), p), json!(["a", "b"]));
        assert_eq!(
            substitute(&json!("cd {{dir}} && x"), p),
            json!("cd /tmp && x")
        );
        let content = json!({"parameters": {"commands": {"type": "StringList"}, "dir": {"type": "String"}},
            "mainSteps": [{"action": "aws:runShellScript", "name": "run",
            "inputs": {"runCommand": "{{ commands }}", "workingDirectory": "{{ dir }}", "timeoutSeconds": "5"}}]});
        let pl = plugins(&content, p, &no_params, &no_docs).unwrap();
        assert_eq!(pl[0]["runCommand"], json!(["a", "b"]));
        assert_eq!(pl[0]["timeoutSeconds"], json!(5));
        assert_eq!(pl[0]["workingDirectory"], json!("/tmp"));
        assert!(pl[0].get("preconditions").is_none());
    }

    #[test]
    fn ssm_references_resolve_in_parameters_and_steps() {
        let lookup = |name: &str| -> Result<String, ApiError> {
            match name {
                "/app/greeting" => Ok("hello".into()),
                "/app/greeting:1" => Ok("first".into()),
                other => Err(invalid_params(format!(
                    "The parameter {other} does not exist."
                ))),
            }
        };
        let content = json!({"parameters": {"commands": {"type": "StringList"}},
            "mainSteps": [{"action": "aws:runShellScript", "name": "run",
            "inputs": {"runCommand": ["{{ commands }}", "echo {{ssm:/app/greeting:1}}"]}}]});
        let sup = json!({"commands": ["echo {{ssm:/app/greeting}} world"]});
        let pl = plugins(&content, sup.as_object().unwrap(), &lookup, &no_docs).unwrap();
        assert_eq!(
            pl[0]["runCommand"],
            json!(["echo hello world", "echo first"])
        );
        let bad = json!({"commands": ["{{ ssm:/missing }}"]});
        let e = plugins(&content, bad.as_object().unwrap(), &lookup, &no_docs).unwrap_err();
        assert_eq!(e.kind, "InvalidParameters");
        assert!(e.message.contains("/missing"));
        // Other references are left for the parameter substitution.
        assert_eq!(
            resolve_ssm_refs(&json!("{{ x }} {{ssm:/app/greeting}}"), &lookup).unwrap(),
            json!("{{ x }} hello")
        );
    }

    #[test]
    fn run_document_expands_nested_steps_with_preconditions() {
        let inner = json!({"schemaVersion": "2.2",
            "parameters": {"who": {"type": "String", "default": "nobody"}},
            "mainSteps": [
                {"action": "aws:runShellScript", "name": "greet", "inputs": {"runCommand": ["echo hi {{ who }}"]}},
                {"action": "aws:runShellScript", "name": "win", "precondition": {"StringEquals": ["platformType", "Windows"]},
                 "inputs": {"runCommand": ["echo never"]}}]});
        let docs = |name: &str| -> Result<Value, ApiError> {
            match name {
                "Inner" | "Inner:2" => Ok(inner.clone()),
                "Loop" => Ok(
                    json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "again",
                    "inputs": {"documentType": "SSMDocument", "documentPath": "Loop"}}]}),
                ),
                other => Err(err("InvalidDocument", format!("no {other}"))),
            }
        };
        let outer = json!({"schemaVersion": "2.2", "parameters": {"name": {"type": "String"}},
            "mainSteps": [
                {"action": "aws:runDocument", "name": "nested", "precondition": {"StringEquals": ["platformType", "Linux"]},
                 "inputs": {"documentType": "SSMDocument", "documentPath": "Inner:2",
                            "documentParameters": "{\"who\": \"{{ name }}\"}"}},
                {"action": "aws:runShellScript", "name": "after", "inputs": {"runCommand": ["echo after"]}}]});
        let sup = json!({"name": ["ops"]});
        let pl = plugins(&outer, sup.as_object().unwrap(), &no_params, &docs).unwrap();
        let names: Vec<&str> = pl.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["nested.greet", "nested.win", "after"]);
        assert_eq!(pl[0]["runCommand"], json!(["echo hi ops"]));
        assert_eq!(pl[0]["preconditions"].as_array().unwrap().len(), 1);
        assert_eq!(pl[1]["preconditions"].as_array().unwrap().len(), 2);
        let looped = json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "go",
            "inputs": {"documentType": "SSMDocument", "documentPath": "Loop"}}]});
        let e = plugins(&looped, &serde_json::Map::new(), &no_params, &docs).unwrap_err();
        assert!(e.message.contains("nests deeper"), "{}", e.message);
        let local = json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "go",
            "inputs": {"documentType": "LocalPath", "documentPath": "/tmp/x.json"}}]});
        let e = plugins(&local, &serde_json::Map::new(), &no_params, &docs).unwrap_err();
        assert_eq!(e.kind, "InvalidDocument");
        let missing = json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "go",
            "inputs": {"documentType": "SSMDocument", "documentPath": "Nope"}}]});
        assert!(plugins(&missing, &serde_json::Map::new(), &no_params, &docs).is_err());
    }
}
