//! The SNS filter-policy language (also EventBridge's event-pattern language, which this module is
//! written to serve once moved into a shared crate): a JSON object whose keys name fields and whose
//! values are lists of rules — exact strings, numbers, booleans and null; `prefix`, `suffix`,
//! `equals-ignore-case`, `anything-but` (values, prefix or suffix), `numeric` ranges, `exists`,
//! `cidr` — nested objects for nested fields, and `$or` for alternatives.
//!
//! API: [`Pattern::compile`] validates a policy (with [`Limits`]) into an immutable [`Pattern`];
//! [`Pattern::matches`] evaluates it against a JSON document. A document is any `serde_json::Value`:
//! for SNS message bodies the parsed body, for message attributes the object built by
//! [`attributes_document`]. The module depends only on `serde_json` and has no SNS types in its API.

mod eval;
mod parse;

use std::net::IpAddr;

use serde_json::{Map, Value};

/// Why a policy was rejected (SNS prefixes it with `Invalid parameter: FilterPolicy: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

/// Constraints on a policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most leaf keys (keys whose value is a rule list).
    pub max_keys: usize,
    /// Most combinations: per object, the product of the rule counts of its keys (alternatives of
    /// an `$or` add up).
    pub max_combinations: u64,
    /// Largest policy text in bytes.
    pub max_bytes: usize,
    /// Whether nested objects are allowed (SNS: only for the `MessageBody` scope).
    pub allow_nesting: bool,
    /// Numeric values (in rules) must lie within `-bound..=bound`.
    pub numeric_bound: f64,
}

impl Limits {
    /// SNS's limits for a scope: 5 keys, 150 combinations, 256 KB, ±10⁹.
    pub fn sns(allow_nesting: bool) -> Self {
        Limits {
            max_keys: 5,
            max_combinations: 150,
            max_bytes: 256 * 1024,
            allow_nesting,
            numeric_bound: 1e9,
        }
    }
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    root: Object,
}

/// An object pattern: every field must match, and in each `$or` group some alternative must.
#[derive(Debug, Clone, PartialEq, Default)]
struct Object {
    fields: Vec<(String, Node)>,
    ors: Vec<Vec<Object>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Nested(Object),
    Rules(Vec<Rule>),
}

/// A literal in a rule. Numbers are kept at SNS's precision: five decimal places, as an integer
/// count of 10⁻⁵ units.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Exact(Literal),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Literal>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    Numeric(Vec<(Cmp, i64)>),
    Exists(bool),
    Cidr { net: IpAddr, prefix: u8 },
}

impl Pattern {
    /// Validate and compile `text`.
    pub fn compile(text: &str, limits: &Limits) -> Result<Pattern, PatternError> {
        parse::compile(text, limits)
    }

    /// Whether `doc` matches. A document that is not an object matches only patterns that need no
    /// field present.
    pub fn matches(&self, doc: &Value) -> bool {
        eval::object_matches(&self.root, Some(doc))
    }
}

/// The scaled integer form of a number, if it is within `bound`.
fn scaled(v: f64, bound: f64) -> Option<i64> {
    if !v.is_finite() || v.abs() > bound {
        return None;
    }
    Some((v * 1e5).round() as i64)
}

/// A document for attribute-scope matching built from `(name, data type, value)` triples:
/// `String` → a string, `Number` → a number (or nothing when not numeric), `String.Array` → the
/// array's elements, `Binary` → nothing (binary attributes never match). Custom type suffixes
/// (`String.x`, `Number.y`) are treated as their base type.
pub fn attributes_document<'a>(
    attrs: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Value {
    let mut map = Map::new();
    for (name, data_type, value) in attrs {
        let base = data_type.split('.').next().unwrap_or("");
        let v = if data_type == "String.Array" {
            match serde_json::from_str::<Value>(value) {
                Ok(Value::Array(items)) => Value::Array(items),
                _ => continue,
            }
        } else if base == "String" {
            Value::String(value.to_string())
        } else if base == "Number" {
            match value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Value::Number(n),
                None => continue,
            }
        } else {
            continue;
        };
        map.insert(name.to_string(), v);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests;
