//! Values in a runbook: validating StartAutomationExecution parameters against the document's
//! `parameters` block (types String, StringList, Integer, Boolean, MapList, StringMap;
//! allowedValues, allowedPattern, defaults), the built-in variables (`automation:EXECUTION_ID`,
//! `global:REGION`, `global:DATE_TIME`, …), `{{ ref }}` substitution in step inputs (a string that
//! is exactly one reference takes the referenced value with its type), output selectors (`$.A.B[0]`)
//! with their Type conversion, and `aws:branch` choices (every operator, And/Or/Not).

use std::collections::BTreeMap;

use opsloop_core::{ApiError, Value};
use serde_json::json;

use crate::error::err;

fn invalid_params(msg: impl Into<String>) -> ApiError {
    err("InvalidAutomationExecutionParametersException", msg)
}

/// Convert the strings a caller passed for `name` to the declared type.
fn typed(name: &str, ptype: &str, raw: &[String]) -> Result<Value, ApiError> {
    let one = || -> Result<&String, ApiError> {
        match raw {
            [v] => Ok(v),
            _ => Err(invalid_params(format!(
                "Parameter \"{name}\" of type {ptype} must have exactly one value."
            ))),
        }
    };
    let bad = |v: &str| {
        invalid_params(format!(
            "Parameter \"{name}\" has value \"{v}\" that is not a valid {ptype}."
        ))
    };
    Ok(match ptype {
        "String" | "" => json!(one()?),
        "StringList" => json!(raw),
        "Integer" => {
            let v = one()?;
            json!(v.trim().parse::<i64>().map_err(|_| bad(v))?)
        }
        "Boolean" => {
            let v = one()?;
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => return Err(bad(v)),
            }
        }
        "StringMap" => {
            let v = one()?;
            let parsed: Value = serde_json::from_str(v).map_err(|_| bad(v))?;
            if !parsed.is_object() {
                return Err(bad(v));
            }
            parsed
        }
        "MapList" => {
            let mut out = Vec::new();
            for v in raw {
                let parsed: Value = serde_json::from_str(v).map_err(|_| bad(v))?;
                match parsed {
                    Value::Array(items) if items.iter().all(Value::is_object) => out.extend(items),
                    Value::Object(_) => out.push(parsed),
                    _ => return Err(bad(v)),
                }
            }
            Value::Array(out)
        }
        other => {
            return Err(invalid_params(format!(
                "Parameter \"{name}\" has unsupported type {other}."
            )))
        }
    })
}

/// A default value of the document as the wire's list of strings.
fn default_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(as_text).collect(),
        other => vec![as_text(other)],
    }
}

/// Text of a value: strings as-is, everything else as JSON.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Check `given` against the document's parameters; returns (wire map, typed values).
#[allow(clippy::type_complexity)]
pub fn check_parameters(
    content: &Value,
    given: &BTreeMap<String, Vec<String>>,
) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Value>), ApiError> {
    let declared = content
        .get("parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in given.keys() {
        if !declared.contains_key(k) {
            return Err(invalid_params(format!(
                "Parameter \"{k}\" is not defined in the document."
            )));
        }
    }
    let mut wire = BTreeMap::new();
    let mut values = BTreeMap::new();
    for (name, spec) in &declared {
        let ptype = spec.get("type").and_then(Value::as_str).unwrap_or("String");
        let raw: Vec<String> = match given.get(name) {
            Some(v) => v.clone(),
            None => match spec.get("default") {
                Some(d) => {
                    // Defaults keep their declared JSON type.
                    let v = if ptype == "MapList" || ptype == "StringMap" {
                        d.clone()
                    } else {
                        typed(name, ptype, &default_strings(d)).unwrap_or_else(|_| d.clone())
                    };
                    wire.insert(name.clone(), default_strings(d));
                    values.insert(name.clone(), v);
                    continue;
                }
                None => {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" is required but was not provided."
                    )))
                }
            },
        };
        let v = typed(name, ptype, &raw)?;
        let scalars: Vec<String> = match &v {
            Value::Array(items) => items.iter().map(as_text).collect(),
            other => vec![as_text(other)],
        };
        if let Some(allowed) = spec.get("allowedValues").and_then(Value::as_array) {
            let allowed: Vec<String> = allowed.iter().map(as_text).collect();
            for s in &scalars {
                if !allowed.contains(s) {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" has value \"{s}\" not in {{{}}}.",
                        allowed.join(", ")
                    )));
                }
            }
        }
        if let Some(pattern) = spec.get("allowedPattern").and_then(Value::as_str) {
            let re = regex::Regex::new(pattern).map_err(|_| {
                invalid_params(format!(
                    "Parameter \"{name}\" has an allowedPattern that is not valid."
                ))
            })?;
            for s in &scalars {
                if !re.is_match(s) {
                    return Err(invalid_params(format!(
                        "Parameter \"{name}\" has value \"{s}\" not matching pattern {pattern}."
                    )));
                }
            }
        }
        wire.insert(name.clone(), raw);
        values.insert(name.clone(), v);
    }
    Ok((wire, values))
}

/// `global:DATE_TIME` style formatting of epoch seconds.
pub fn builtins(
    id: &str,
    document: &str,
    account: &str,
    region: &str,
    t: f64,
) -> Vec<(String, Value)> {
    let dt = time::OffsetDateTime::from_unix_timestamp(t as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (dt.year(), dt.month() as u8, dt.day());
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    vec![
        ("automation:EXECUTION_ID".into(), json!(id)),
        ("automation:DOCUMENT_NAME".into(), json!(document)),
        ("global:ACCOUNT_ID".into(), json!(account)),
        ("global:REGION".into(), json!(region)),
        ("global:AWS_PARTITION".into(), json!("aws")),
        ("global:AWS_URL_SUFFIX".into(), json!("amazonaws.com")),
        (
            "global:DATE_TIME".into(),
            json!(format!("{y:04}-{mo:02}-{d:02}_{h:02}.{mi:02}.{s:02}")),
        ),
        (
            "global:DATE".into(),
            json!(format!("{y:04}-{mo:02}-{d:02}")),
        ),
        (
            "global:DATE_TIME_ISO8601".into(),
            json!(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")),
        ),
    ]
}

/// Resolve one reference name: a variable, or `ssm:/param` through `ssm`.
pub type SsmLookup<'a> = &'a dyn Fn(&str) -> Result<String, String>;

fn lookup(name: &str, vars: &BTreeMap<String, Value>, ssm: SsmLookup) -> Result<Value, String> {
    let name = name.trim();
    if let Some(p) = name.strip_prefix("ssm:") {
        return ssm(p).map(Value::String);
    }
    if let Some(v) = vars.get(name) {
        return Ok(v.clone());
    }
    if name == "global:DATE_TIME" || name.starts_with("automation:") || name.starts_with("global:")
    {
        return Err(format!("Unknown built-in variable {name}."));
    }
    Err(format!("Variable {{{{ {name} }}}} has no value yet."))
}

/// Substitute `{{ ref }}` in every string of `v`.
pub fn resolve(v: &Value, vars: &BTreeMap<String, Value>, ssm: SsmLookup) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => resolve_str(s, vars, ssm)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|x| resolve(x, vars, ssm))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), resolve(x, vars, ssm)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn resolve_str(s: &str, vars: &BTreeMap<String, Value>, ssm: SsmLookup) -> Result<Value, String> {
    let trimmed = s.trim();
    if trimmed.starts_with("{{") && trimmed.ends_with("}}") && trimmed[2..].find("{{").is_none() {
        return lookup(&trimmed[2..trimmed.len() - 2], vars, ssm);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let v = lookup(&rest[open + 2..open + close], vars, ssm)?;
        out.push_str(&as_text(&v));
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

/// Evaluate a selector `$.A.B[0]` (also `$.A[*].B`) against `doc`.
pub fn select(doc: &Value, selector: &str) -> Option<Value> {
    let path = selector.trim().strip_prefix('$').unwrap_or(selector.trim());
    let mut cur = vec![doc.clone()];
    let mut many = false;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                cur = cur.iter().filter_map(|v| v.get(&key).cloned()).collect();
            }
            '[' => {
                let mut idx = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    idx.push(n);
                }
                if idx == "*" {
                    many = true;
                    cur = cur
                        .iter()
                        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                        .collect();
                } else {
                    let i: usize = idx.trim_matches(['\'', '"']).parse().ok()?;
                    cur = cur.iter().filter_map(|v| v.get(i).cloned()).collect();
                }
            }
            _ => return None,
        }
    }
    if many {
        Some(Value::Array(cur))
    } else {
        cur.into_iter().next()
    }
}

/// Convert a selected value to an output Type.
pub fn convert(v: Value, ty: &str) -> Result<Value, String> {
    let fail = |v: &Value| format!("Output value {v} cannot be converted to {ty}.");
    Ok(match ty {
        "String" => Value::String(as_text(&v)),
        "Integer" => match &v {
            Value::Number(n) if n.is_i64() => v,
            Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) as i64),
            Value::String(s) => json!(s.trim().parse::<i64>().map_err(|_| fail(&v))?),
            _ => return Err(fail(&v)),
        },
        "Boolean" => match &v {
            Value::Bool(_) => v,
            Value::String(s) if s.eq_ignore_ascii_case("true") => json!(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => json!(false),
            _ => return Err(fail(&v)),
        },
        "StringList" => match &v {
            Value::Array(items) => json!(items.iter().map(as_text).collect::<Vec<_>>()),
            other => json!([as_text(other)]),
        },
        "StringMap" => match &v {
            Value::Object(_) => v,
            _ => return Err(fail(&v)),
        },
        "MapList" => match &v {
            Value::Array(items) if items.iter().all(Value::is_object) => v,
            _ => return Err(fail(&v)),
        },
        _ => v,
    })
}

/// The wire form (list of strings) of a typed output.
pub fn wire_output(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().map(as_text).collect()
        }
        other => vec![as_text(other)],
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Evaluate one branch choice (already resolved: `Variable` holds the value).
pub fn choice_matches(choice: &Value) -> Result<bool, String> {
    if let Some(items) = choice.get("And").and_then(Value::as_array) {
        for c in items {
            if !choice_matches(c)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(items) = choice.get("Or").and_then(Value::as_array) {
        for c in items {
            if choice_matches(c)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(inner) = choice.get("Not") {
        return Ok(!choice_matches(inner)?);
    }
    let var = choice.get("Variable").cloned().unwrap_or(Value::Null);
    let obj = choice.as_object().ok_or("A choice must be an object.")?;
    for (op, want) in obj {
        if op == "Variable" || op == "NextStep" {
            continue;
        }
        let text = as_text(&var);
        let wtext = as_text(want);
        let num = || -> Result<(f64, f64), String> {
            Ok((
                number(&var)
                    .ok_or_else(|| format!("{op}: variable value {text} is not a number."))?,
                number(want).ok_or_else(|| format!("{op}: {wtext} is not a number."))?,
            ))
        };
        return Ok(match op.as_str() {
            "StringEquals" => text == wtext,
            "EqualsIgnoreCase" => text.to_lowercase() == wtext.to_lowercase(),
            "StartsWith" => text.starts_with(&wtext),
            "EndsWith" => text.ends_with(&wtext),
            "Contains" => match &var {
                Value::Array(items) => items.iter().any(|x| as_text(x) == wtext),
                _ => text.contains(&wtext),
            },
            "NumericEquals" => {
                let (a, b) = num()?;
                a == b
            }
            "NumericGreater" => {
                let (a, b) = num()?;
                a > b
            }
            "NumericLesser" => {
                let (a, b) = num()?;
                a < b
            }
            "NumericGreaterOrEquals" => {
                let (a, b) = num()?;
                a >= b
            }
            "NumericLesserOrEquals" => {
                let (a, b) = num()?;
                a <= b
            }
            "BooleanEquals" => {
                let b = match &var {
                    Value::Bool(b) => *b,
                    Value::String(s) => s.eq_ignore_ascii_case("true"),
                    _ => return Err(format!("BooleanEquals: {text} is not a boolean.")),
                };
                Some(b)
                    == want
                        .as_bool()
                        .or_else(|| Some(wtext.eq_ignore_ascii_case("true")))
            }
            other => return Err(format!("Unsupported branch operator {other}.")),
        });
    }
    Err("A choice needs an operator.".into())
}

/// Parse an ISO-8601 duration (`PT10M`, `P1DT2H`, `PT0.5S`) into seconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0.0;
    let mut parse = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, mult) = units.iter().find(|(u, _)| *u == c)?;
                total += num.parse::<f64>().ok()? * mult;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    parse(
        date,
        &[
            ('Y', 365.0 * 86400.0),
            ('M', 30.0 * 86400.0),
            ('W', 7.0 * 86400.0),
            ('D', 86400.0),
        ],
    )?;
    parse(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    if date.is_empty() && time.is_empty() {
        return None;
    }
    Some(total)
}

/// Parse an ISO-8601 UTC timestamp (`2026-01-01T00:00:00Z`) into epoch seconds.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let dt = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(dt.unix_timestamp_nanos() as f64 / 1e9)
}
