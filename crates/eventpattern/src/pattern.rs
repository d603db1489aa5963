//! The pattern language: turning pattern JSON into a validated tree of field conditions, with the
//! reasons AWS gives (`Event pattern is not valid. Reason: ...`) for every way a pattern can be
//! wrong. The vocabulary (`Cond`) is shared by the single-pattern evaluator (`eval`) and the
//! compiled matcher (`matcher`).

use crate::json::{self, J};
use crate::value::{self, Ip, Lit, Wildcard};

/// The prefix of every validation message, as AWS words it.
pub const INVALID_PREFIX: &str = "Event pattern is not valid. Reason: ";

/// Largest pattern accepted, in bytes (the `EventPattern` member's length limit).
pub const MAX_PATTERN_BYTES: usize = 4096;

/// Most `$or` branches a pattern may expand to (the flattened alternatives of all `$or`s).
pub const MAX_OR_COMBINATIONS: usize = 1000;

/// Most wildcard characters (`*`) one pattern may use across its `wildcard` conditions.
pub const MAX_WILDCARD_COMPLEXITY: usize = 100;

/// An object level of a pattern: every field must hold, and one branch of each `$or` group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub fields: Vec<(String, Child)>,
    pub ors: Vec<Vec<Node>>,
}

/// What a field of a pattern asks for.
#[derive(Debug, Clone)]
pub(crate) enum Child {
    Obj(Node),
    /// Conditions on the field's value(s); any one may hold.
    Leaf(Vec<Cond>),
}

/// One matcher in a field's array.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Exact(Lit),
    /// A string that is an IP address literal: equal text, or the same address.
    ExactIp(String, Ip),
    Prefix(String),
    PrefixIc(String),
    Suffix(String),
    SuffixIc(String),
    EqIc(String),
    Wildcard(Wildcard),
    /// `anything-but` a set of strings and/or numbers (numbers compared numerically).
    AnythingBut(Vec<String>, Vec<f64>),
    AnythingButIc(Vec<String>),
    AnythingButPrefix(Vec<String>),
    AnythingButSuffix(Vec<String>),
    AnythingButWildcard(Vec<Wildcard>),
    Numeric(value::Range),
    Exists(bool),
    Cidr(value::CidrRange),
}

fn invalid<T>(reason: impl AsRef<str>) -> Result<T, String> {
    Err(reason.as_ref().to_string())
}

/// Parse and validate pattern text into its root node. The error is the reason only (without the
/// `INVALID_PREFIX`).
pub(crate) fn parse_root(text: &str) -> Result<Node, String> {
    if text.len() > MAX_PATTERN_BYTES {
        return invalid(format!(
            "Event pattern is too long: {} bytes, the maximum is {MAX_PATTERN_BYTES}",
            text.len()
        ));
    }
    let doc = json::parse_doc(text.as_bytes()).map_err(|e| {
        let (line, col) = line_col(text, e.at);
        format!(
            "{} at [Source: (String)\"{text}\"; line: {line}, column: {col}]",
            e.msg
        )
    })?;
    let J::Obj(members) = doc else {
        return invalid("Filter is not an object");
    };
    let mut wildcards = 0usize;
    let node = object(&members, false, &mut wildcards)?;
    if combinations(&node) > MAX_OR_COMBINATIONS {
        return invalid(format!(
            "The $or combinations of the pattern exceed the limit of {MAX_OR_COMBINATIONS}"
        ));
    }
    if wildcards > MAX_WILDCARD_COMPLEXITY {
        return invalid("Rule is too complex - try using fewer wildcard characters or fewer repeated character sequences after a wildcard character");
    }
    Ok(node)
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = before.len()
        - before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// How many plain (`$or`-free) rules the node expands to.
fn combinations(node: &Node) -> usize {
    let mut n: usize = 1;
    for (_, c) in &node.fields {
        if let Child::Obj(o) = c {
            n = n.saturating_mul(combinations(o));
        }
    }
    for group in &node.ors {
        let sum = group
            .iter()
            .map(combinations)
            .fold(0usize, usize::saturating_add);
        n = n.saturating_mul(sum);
    }
    n
}

fn object(members: &[(String, J)], in_or: bool, wild: &mut usize) -> Result<Node, String> {
    if members.is_empty() {
        return invalid("Empty objects are not allowed");
    }
    let mut node = Node::default();
    for (name, v) in members {
        if name == "$or" {
            let J::Arr(items) = v else {
                return invalid("It must be an Array followed with $or.");
            };
            let mut group = Vec::with_capacity(items.len());
            for item in items {
                let J::Obj(m) = item else {
                    return invalid("Only JSON object is allowed in array of $or relationship.");
                };
                group.push(object(m, true, wild)?);
            }
            if group.len() < 2 {
                return invalid("There must have at least 2 Objects in $or relationship.");
            }
            node.ors.push(group);
            continue;
        }
        if in_or && is_reserved_in_or(name) {
            return invalid(format!(
                "{name} is Ruler reserved fieldName which cannot be used inside $or."
            ));
        }
        let child = match v {
            J::Obj(m) => Child::Obj(object(m, in_or, wild)?),
            J::Arr(items) => Child::Leaf(leaf(items, wild)?),
            _ => return invalid(format!("\"{name}\" must be an object or an array")),
        };
        // A repeated field name overrides the earlier one, as AWS's compiler does.
        if let Some(slot) = node.fields.iter_mut().find(|(k, _)| k == name) {
            slot.1 = child;
        } else {
            node.fields.push((name.clone(), child));
        }
    }
    Ok(node)
}

fn is_reserved_in_or(name: &str) -> bool {
    matches!(
        name,
        "anything-but"
            | "numeric"
            | "prefix"
            | "suffix"
            | "exists"
            | "cidr"
            | "equals-ignore-case"
            | "wildcard"
    )
}

fn leaf(items: &[J], wild: &mut usize) -> Result<Vec<Cond>, String> {
    if items.is_empty() {
        return invalid("Empty arrays are not allowed");
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            J::Obj(m) => out.push(expression(m, wild)?),
            J::Str(s) => match value::parse_ip(s) {
                Some(ip) => out.push(Cond::ExactIp(s.clone(), ip)),
                None => out.push(Cond::Exact(Lit::Str(s.clone()))),
            },
            J::Num(t) => out.push(Cond::Exact(Lit::Num(value::num_f64(t)))),
            J::Bool(b) => out.push(Cond::Exact(Lit::Bool(*b))),
            J::Null => out.push(Cond::Exact(Lit::Null)),
            J::Arr(_) => {
                return invalid("Match value must be String, number, true, false, or null")
            }
        }
    }
    Ok(out)
}

fn single(m: &[(String, J)]) -> Result<(&str, &J), String> {
    match m {
        [] => invalid("Match expression name not found"),
        [(k, v)] => Ok((k.as_str(), v)),
        _ => invalid("Only one key allowed in match expression"),
    }
}

fn string_of<'a>(v: &'a J, what: &str) -> Result<&'a str, String> {
    match v {
        J::Str(s) => Ok(s),
        _ => invalid(format!("{what} match pattern must be a string")),
    }
}

fn expression(m: &[(String, J)], wild: &mut usize) -> Result<Cond, String> {
    let (op, v) = single(m)?;
    match op {
        "prefix" | "suffix" => {
            let is_prefix = op == "prefix";
            if let J::Obj(inner) = v {
                let (iop, iv) = match inner.as_slice() {
                    [] => {
                        return invalid(if is_prefix {
                            "Prefix expression name not found"
                        } else {
                            "Suffix expression name not found"
                        })
                    }
                    [(k, v)] => (k.as_str(), v),
                    _ => return invalid("Only one key allowed in match expression"),
                };
                if iop != "equals-ignore-case" {
                    return invalid(format!(
                        "Unsupported {} pattern: {iop}",
                        if is_prefix { "prefix" } else { "suffix" }
                    ));
                }
                let s = string_of(iv, "equals-ignore-case")?;
                let low = value::fold(s);
                return Ok(if is_prefix {
                    Cond::PrefixIc(low)
                } else {
                    Cond::SuffixIc(low)
                });
            }
            let s = string_of(v, op)?.to_string();
            Ok(if is_prefix {
                Cond::Prefix(s)
            } else {
                Cond::Suffix(s)
            })
        }
        "equals-ignore-case" => Ok(Cond::EqIc(value::fold(string_of(v, op)?))),
        "wildcard" => {
            let s = string_of(v, op)?;
            let w = Wildcard::parse(s)?;
            *wild += w.stars();
            Ok(Cond::Wildcard(w))
        }
        "exists" => match v {
            J::Bool(b) => Ok(Cond::Exists(*b)),
            _ => invalid("exists match pattern must be either true or false."),
        },
        "cidr" => {
            // AWS's compiler words a non-string CIDR like this (sic).
            let s = string_of(v, "prefix")?;
            Ok(Cond::Cidr(value::CidrRange::parse(s)?))
        }
        "numeric" => {
            let J::Arr(items) = v else {
                return invalid("Value of numeric must be an array.");
            };
            Ok(Cond::Numeric(value::Range::parse(items)?))
        }
        "anything-but" => anything_but(v, wild),
        other => invalid(format!("Unrecognized match type {other}")),
    }
}

fn anything_but(v: &J, wild: &mut usize) -> Result<Cond, String> {
    match v {
        J::Obj(inner) => {
            let (op, iv) = match inner.as_slice() {
                [] => return invalid("Anything-But expression name not found"),
                [(k, v)] => (k.as_str(), v),
                _ => return invalid("Only one key allowed in match expression"),
            };
            if !matches!(op, "equals-ignore-case" | "prefix" | "suffix" | "wildcard") {
                return invalid(format!("Unsupported anything-but pattern: {op}"));
            }
            let items: Vec<&J> = match iv {
                J::Arr(a) => a.iter().collect(),
                J::Str(_) | J::Num(_) => vec![iv],
                _ => {
                    return invalid(
                        "Value of anything-but must be an array or single string/number value.",
                    )
                }
            };
            let mut strs = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    J::Str(s) => {
                        if (op == "prefix" || op == "suffix") && s.is_empty() {
                            return invalid("Null prefix/suffix not allowed");
                        }
                        strs.push(s.clone());
                    }
                    _ => {
                        return invalid(match op {
                            "equals-ignore-case" => "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
                            "wildcard" => "wildcard match pattern must be a string",
                            _ => "prefix/suffix match pattern must be a string",
                        })
                    }
                }
            }
            // AWS accepts an empty set here; it then excludes nothing.
            Ok(match op {
                "equals-ignore-case" => {
                    Cond::AnythingButIc(strs.iter().map(|s| value::fold(s)).collect())
                }
                "prefix" => Cond::AnythingButPrefix(strs),
                "suffix" => Cond::AnythingButSuffix(strs),
                _ => {
                    let mut ws = Vec::with_capacity(strs.len());
                    for s in &strs {
                        let w = Wildcard::parse(s)?;
                        *wild += w.stars();
                        ws.push(w);
                    }
                    Cond::AnythingButWildcard(ws)
                }
            })
        }
        J::Str(s) => Ok(Cond::AnythingBut(vec![s.clone()], Vec::new())),
        J::Num(t) => Ok(Cond::AnythingBut(Vec::new(), vec![value::comparable(t)?])),
        J::Arr(items) => {
            let (mut strs, mut nums) = (Vec::new(), Vec::new());
            for it in items {
                match it {
                    J::Str(s) => strs.push(s.clone()),
                    J::Num(t) => nums.push(value::comparable(t)?),
                    _ => {
                        return invalid(
                            "Inside anything but list, start|null|boolean is not supported.",
                        )
                    }
                }
            }
            if strs.is_empty() == nums.is_empty() {
                return invalid("Inside anything but list, either all values are number or string, mixed type is not supported");
            }
            Ok(Cond::AnythingBut(strs, nums))
        }
        J::Bool(_) | J::Null => {
            invalid("Value of anything-but must be an array or single string/number value.")
        }
    }
}
