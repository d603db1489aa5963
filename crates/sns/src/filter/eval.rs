//! Evaluating a compiled pattern against a JSON document. A field's values are the leaf values at
//! its path: a scalar, or the elements of an array (arrays flatten, objects inside arrays are
//! searched by nested patterns). A field matches when any of its rules matches any of its values;
//! `exists` and `anything-but` look at the values as a whole.

use std::net::IpAddr;

use serde_json::Value;

use super::{scaled, Cmp, Literal, Node, Object, Rule};

/// Depth beyond which document arrays are not flattened further.
const MAX_FLATTEN: usize = 32;

pub(super) fn object_matches(pattern: &Object, doc: Option<&Value>) -> bool {
    let map = doc.and_then(Value::as_object);
    let fields_ok = pattern.fields.iter().all(|(key, node)| {
        let value = map.and_then(|m| m.get(key));
        match node {
            Node::Rules(rules) => {
                let mut leaves = Vec::new();
                if let Some(v) = value {
                    collect_leaves(v, &mut leaves, 0);
                }
                rules_match(rules, &leaves)
            }
            Node::Nested(inner) => match value {
                Some(Value::Array(items)) => {
                    let objects: Vec<&Value> = items.iter().filter(|v| v.is_object()).collect();
                    if objects.is_empty() {
                        object_matches(inner, None)
                    } else {
                        objects.into_iter().any(|o| object_matches(inner, Some(o)))
                    }
                }
                Some(v @ Value::Object(_)) => object_matches(inner, Some(v)),
                _ => object_matches(inner, None),
            },
        }
    });
    fields_ok
        && pattern
            .ors
            .iter()
            .all(|group| group.iter().any(|alt| object_matches(alt, doc)))
}

fn collect_leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    match v {
        Value::Array(items) if depth < MAX_FLATTEN => {
            for item in items {
                collect_leaves(item, out, depth + 1);
            }
        }
        Value::Array(_) | Value::Object(_) => {}
        scalar => out.push(scalar),
    }
}

fn rules_match(rules: &[Rule], values: &[&Value]) -> bool {
    rules.iter().any(|rule| match rule {
        Rule::Exists(want) => *want != values.is_empty(),
        _ => values.iter().any(|v| value_matches(rule, v)),
    })
}

fn number_of(v: &Value) -> Option<i64> {
    v.as_f64().and_then(|f| scaled(f, f64::MAX))
}

fn literal_matches(lit: &Literal, v: &Value) -> bool {
    match (lit, v) {
        (Literal::Str(s), Value::String(t)) => s == t,
        (Literal::Num(n), Value::Number(_)) => number_of(v) == Some(*n),
        (Literal::Bool(b), Value::Bool(c)) => b == c,
        (Literal::Null, Value::Null) => true,
        _ => false,
    }
}

fn value_matches(rule: &Rule, v: &Value) -> bool {
    match rule {
        Rule::Exact(lit) => literal_matches(lit, v),
        Rule::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Rule::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Rule::EqualsIgnoreCase(p) => v
            .as_str()
            .is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
        Rule::AnythingBut(lits) => !v.is_null() && !lits.iter().any(|l| literal_matches(l, v)),
        Rule::AnythingButPrefix(p) => v.as_str().is_some_and(|s| !s.starts_with(p.as_str())),
        Rule::AnythingButSuffix(p) => v.as_str().is_some_and(|s| !s.ends_with(p.as_str())),
        Rule::Numeric(conds) => match (v, number_of(v)) {
            (Value::Number(_), Some(x)) => conds.iter().all(|(cmp, n)| match cmp {
                Cmp::Eq => x == *n,
                Cmp::Lt => x < *n,
                Cmp::Le => x <= *n,
                Cmp::Gt => x > *n,
                Cmp::Ge => x >= *n,
            }),
            _ => false,
        },
        Rule::Exists(_) => false,
        Rule::Cidr { net, prefix } => v
            .as_str()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .is_some_and(|ip| in_network(ip, *net, *prefix)),
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}
