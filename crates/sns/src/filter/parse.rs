//! Compiling a policy text into a [`Pattern`]: JSON parsing, rule syntax, and the limits (keys,
//! combinations, size, nesting, numeric range). Error texts follow SNS's `FilterPolicy` messages.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{scaled, Cmp, Limits, Literal, Node, Object, Pattern, PatternError, Rule};

fn err(s: impl Into<String>) -> PatternError {
    PatternError(s.into())
}

pub(super) fn compile(text: &str, limits: &Limits) -> Result<Pattern, PatternError> {
    if text.len() > limits.max_bytes {
        return Err(err("Filter policy is too big"));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| err(format!("failed to parse JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(err("Filter policy must be a JSON object"));
    };
    let root = object(&map, limits, 0)?;
    let keys = key_count(&root);
    if keys > limits.max_keys {
        return Err(err(format!(
            "Filter policy can not have more than {} keys",
            limits.max_keys
        )));
    }
    if combinations(&root) > limits.max_combinations {
        return Err(err("Filter policy is too complex"));
    }
    Ok(Pattern { root })
}

/// Nesting beyond this depth is refused outright (keeps evaluation recursion bounded).
const MAX_DEPTH: usize = 64;

fn object(map: &Map<String, Value>, limits: &Limits, depth: usize) -> Result<Object, PatternError> {
    if depth > MAX_DEPTH {
        return Err(err("Filter policy is nested too deeply"));
    }
    let mut out = Object::default();
    for (key, value) in map {
        if key == "$or" {
            let Value::Array(alts) = value else {
                return Err(err("Value of $or must be an array of objects"));
            };
            if alts.len() < 2 {
                return Err(err("Value of $or must be an array of at least 2 objects"));
            }
            let mut group = Vec::with_capacity(alts.len());
            for alt in alts {
                let Value::Object(m) = alt else {
                    return Err(err("Value of $or must be an array of objects"));
                };
                group.push(object(m, limits, depth + 1)?);
            }
            out.ors.push(group);
            continue;
        }
        let node = match value {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(err("Empty arrays are not allowed"));
                }
                Node::Rules(
                    items
                        .iter()
                        .map(|v| rule(v, limits))
                        .collect::<Result<_, _>>()?,
                )
            }
            Value::Object(m) => {
                if !limits.allow_nesting {
                    return Err(err("Filter policy scope MessageAttributes does not support nested filter policy"));
                }
                Node::Nested(object(m, limits, depth + 1)?)
            }
            _ => return Err(err(format!("\"{key}\" must be an object or an array"))),
        };
        out.fields.push((key.clone(), node));
    }
    Ok(out)
}

fn number(v: &Value, limits: &Limits, what: &str) -> Result<i64, PatternError> {
    let f = v
        .as_f64()
        .ok_or_else(|| err(format!("Value of {what} must be numeric")))?;
    scaled(f, limits.numeric_bound).ok_or_else(|| {
        err(format!(
            "Numeric values must be between -{b:.1E} and {b:.1E}, inclusive",
            b = limits.numeric_bound
        ))
    })
}

fn literal(v: &Value, limits: &Limits) -> Result<Literal, PatternError> {
    match v {
        Value::String(s) => Ok(Literal::Str(s.clone())),
        Value::Number(_) => Ok(Literal::Num(number(v, limits, "match value")?)),
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        Value::Null => Ok(Literal::Null),
        _ => Err(err(
            "Match value must be String, number, true, false, or null",
        )),
    }
}

fn string_arg<'a>(v: &'a Value, name: &str) -> Result<&'a str, PatternError> {
    v.as_str()
        .ok_or_else(|| err(format!("{name} match pattern must be a string")))
}

fn rule(v: &Value, limits: &Limits) -> Result<Rule, PatternError> {
    let Value::Object(m) = v else {
        return literal(v, limits).map(Rule::Exact);
    };
    let mut entries = m.iter();
    let (Some((kind, arg)), None) = (entries.next(), entries.next()) else {
        return Err(err("Match expression must have exactly one key"));
    };
    match kind.as_str() {
        "prefix" => Ok(Rule::Prefix(string_arg(arg, "prefix")?.to_string())),
        "suffix" => Ok(Rule::Suffix(string_arg(arg, "suffix")?.to_string())),
        "equals-ignore-case" => Ok(Rule::EqualsIgnoreCase(
            string_arg(arg, "equals-ignore-case")?.to_string(),
        )),
        "exists" => match arg {
            Value::Bool(b) => Ok(Rule::Exists(*b)),
            _ => Err(err("exists match pattern must be either true or false.")),
        },
        "anything-but" => anything_but(arg, limits),
        "numeric" => numeric(arg, limits),
        "cidr" => cidr(string_arg(arg, "cidr")?),
        other => Err(err(format!("Unrecognized match type {other}"))),
    }
}

fn anything_but(arg: &Value, limits: &Limits) -> Result<Rule, PatternError> {
    match arg {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(err("Empty arrays are not allowed"));
            }
            let lits = items
                .iter()
                .map(|v| match v {
                    Value::String(_) | Value::Number(_) => literal(v, limits),
                    _ => Err(err(
                        "Inside anything but list, start|null|boolean is not supported.",
                    )),
                })
                .collect::<Result<_, _>>()?;
            Ok(Rule::AnythingBut(lits))
        }
        Value::String(_) | Value::Number(_) => Ok(Rule::AnythingBut(vec![literal(arg, limits)?])),
        Value::Object(m) => {
            let mut entries = m.iter();
            match (entries.next(), entries.next()) {
                (Some((k, v)), None) if k == "prefix" => Ok(Rule::AnythingButPrefix(
                    string_arg(v, "prefix")?.to_string(),
                )),
                (Some((k, v)), None) if k == "suffix" => Ok(Rule::AnythingButSuffix(
                    string_arg(v, "suffix")?.to_string(),
                )),
                (Some((k, _)), None) => Err(err(format!("Unsupported anything-but pattern: {k}"))),
                _ => Err(err(
                    "Value of anything-but must be an array or single string/number value.",
                )),
            }
        }
        _ => Err(err(
            "Value of anything-but must be an array or single string/number value.",
        )),
    }
}

fn numeric(arg: &Value, limits: &Limits) -> Result<Rule, PatternError> {
    let Value::Array(items) = arg else {
        return Err(err("Value of numeric must be an array."));
    };
    if items.is_empty() {
        return Err(err("Empty arrays are not allowed"));
    }
    if items.len() > 4 {
        return Err(err("Too many elements in numeric expression"));
    }
    let mut out: Vec<(Cmp, i64)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let op_text = items[i]
            .as_str()
            .ok_or_else(|| err(format!("Invalid member in numeric match: {}", items[i])))?;
        let op = match op_text {
            "=" => Cmp::Eq,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            other => return Err(err(format!("Unrecognized numeric range operator: {other}"))),
        };
        let value = items
            .get(i + 1)
            .ok_or_else(|| err(format!("Value of {op_text} must be numeric")))?;
        let n = number(value, limits, op_text)?;
        match (out.first(), op) {
            (None, _) => {}
            (Some(_), Cmp::Eq) | (Some((Cmp::Eq, _)), _) => {
                return Err(err("Too many elements in numeric expression"))
            }
            (Some((Cmp::Gt | Cmp::Ge, lo)), Cmp::Lt | Cmp::Le) => {
                if *lo >= n {
                    return Err(err("Bottom must be less than top"));
                }
            }
            _ => return Err(err(format!("Bad numeric range operator: {op_text}"))),
        }
        out.push((op, n));
        i += 2;
    }
    Ok(Rule::Numeric(out))
}

fn cidr(text: &str) -> Result<Rule, PatternError> {
    let (addr, bits) = text
        .split_once('/')
        .ok_or_else(|| err("Malformed CIDR, one '/' required"))?;
    let net: IpAddr = addr
        .parse()
        .map_err(|_| err(format!("Nonstandard IP address: {addr}")))?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
        err(format!(
            "Malformed CIDR, mask bits must be an integer between 0 and {max}"
        ))
    })?;
    Ok(Rule::Cidr { net, prefix })
}

fn key_count(o: &Object) -> usize {
    o.fields
        .iter()
        .map(|(_, n)| match n {
            Node::Rules(_) => 1,
            Node::Nested(inner) => key_count(inner),
        })
        .sum::<usize>()
        + o.ors.iter().flatten().map(key_count).sum::<usize>()
}

fn combinations(o: &Object) -> u64 {
    let fields = o.fields.iter().fold(1u64, |acc, (_, n)| {
        let c = match n {
            Node::Rules(rules) => rules.len() as u64,
            Node::Nested(inner) => combinations(inner),
        };
        acc.saturating_mul(c)
    });
    o.ors.iter().fold(fields, |acc, group| {
        acc.saturating_mul(
            group
                .iter()
                .map(combinations)
                .fold(0u64, u64::saturating_add),
        )
    })
}
