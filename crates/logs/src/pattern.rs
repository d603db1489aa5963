//! Filter-pattern syntax of FilterLogEvents, metric filters and subscription filters: terms,
//! quoted phrases, `-` exclusions and `?` alternatives on unstructured text, `%regex%`, JSON
//! selectors (`{ $.a.b = "x" && $.n > 5 || $.c IS NULL }`, wildcards, array indexes, `NOT EXISTS`,
//! `IS TRUE|FALSE`) and space-delimited patterns (`[ip, user, ..., status=4*, size>100]`).
//!
//! The parser is hand-written over chars and never panics; syntax errors become
//! `InvalidParameterException` with the offending position. Matching also yields the extracted
//! values (`$.a.b` / `$size`) that metric filters publish.

use std::collections::HashMap;

use memchr::memmem;
use opsloop_core::ApiError;
use regex::Regex;
use serde_json::Value;

use crate::error;

/// A compiled filter pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// The empty pattern: every event matches.
    All,
    Terms {
        all: Vec<Term>,
        any: Vec<Term>,
        none: Vec<Term>,
    },
    Json(JExpr),
    Space(Vec<SField>),
}

#[derive(Debug, Clone)]
pub enum Term {
    Lit(String),
    Re(Regex),
}

impl Term {
    fn matches(&self, msg: &[u8]) -> bool {
        match self {
            Term::Lit(s) => memmem::find(msg, s.as_bytes()).is_some(),
            Term::Re(r) => std::str::from_utf8(msg).is_ok_and(|m| r.is_match(m)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub enum Val {
    Num(f64),
    /// A string; `*` is a wildcard.
    Str(String),
    Re(Regex),
}

#[derive(Debug, Clone)]
pub enum JExpr {
    Or(Box<JExpr>, Box<JExpr>),
    And(Box<JExpr>, Box<JExpr>),
    Cmp {
        path: Vec<Seg>,
        name: String,
        op: Op,
        val: Val,
    },
    IsNull(Vec<Seg>),
    NotExists(Vec<Seg>),
    IsBool(Vec<Seg>, bool),
}

/// One field of a space-delimited pattern.
#[derive(Debug, Clone)]
pub enum SField {
    Ellipsis,
    Named { name: String, cond: Option<SCond> },
}

#[derive(Debug, Clone)]
pub enum SCond {
    Or(Box<SCond>, Box<SCond>),
    And(Box<SCond>, Box<SCond>),
    Cmp { field: String, op: Op, val: Val },
}

/// Values a match extracted, by the names metric filters use (`$.a.b`, `$size`).
pub type Extracted = HashMap<String, Value>;

fn perr(msg: impl std::fmt::Display, pos: usize) -> ApiError {
    error::invalid(format!("Invalid filter pattern at position {pos}: {msg}"))
}

impl Pattern {
    /// Compile `src`.
    pub fn parse(src: &str) -> Result<Pattern, ApiError> {
        if src.chars().count() > 1024 {
            return Err(error::invalid(
                "Filter pattern must be at most 1024 characters.",
            ));
        }
        let chars: Vec<char> = src.chars().collect();
        let mut p = Parser { c: chars, i: 0 };
        p.ws();
        if p.at_end() {
            return Ok(Pattern::All);
        }
        let out = match p.peek() {
            Some('{') => {
                p.i += 1;
                let e = p.jexpr()?;
                p.ws();
                p.expect('}')?;
                Pattern::Json(e)
            }
            Some('[') => {
                p.i += 1;
                Pattern::Space(p.space_fields()?)
            }
            _ => return p.terms(),
        };
        p.ws();
        if !p.at_end() {
            return Err(perr("unexpected trailing input", p.i));
        }
        Ok(out)
    }

    /// A literal every matching message contains (the longest plain term), for block-wide search.
    pub fn required_literal(&self) -> Option<&str> {
        match self {
            Pattern::Terms { all, .. } => all
                .iter()
                .filter_map(|t| match t {
                    Term::Lit(s) if !s.is_empty() => Some(s.as_str()),
                    _ => None,
                })
                .max_by_key(|s| s.len()),
            _ => None,
        }
    }

    /// Whether `msg` matches.
    pub fn matches(&self, msg: &[u8]) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms { all, any, none } => {
                all.iter().all(|t| t.matches(msg))
                    && !none.iter().any(|t| t.matches(msg))
                    && (any.is_empty() || any.iter().any(|t| t.matches(msg)))
            }
            _ => self.extract(&String::from_utf8_lossy(msg)).is_some(),
        }
    }

    /// `Some(extracted values)` when `msg` matches.
    pub fn extract(&self, msg: &str) -> Option<Extracted> {
        match self {
            Pattern::All | Pattern::Terms { .. } => self.matches(msg.as_bytes()).then(HashMap::new),
            Pattern::Json(e) => {
                let doc: Value = serde_json::from_str(msg.trim()).ok()?;
                let mut out = HashMap::new();
                eval_json(e, &doc, &mut out).then_some(out)
            }
            Pattern::Space(fields) => {
                let words = split_words(msg);
                let mut bound = HashMap::new();
                if !bind(fields, &words, &mut bound) {
                    return None;
                }
                for f in fields {
                    if let SField::Named { cond: Some(c), .. } = f {
                        if !eval_scond(c, &bound) {
                            return None;
                        }
                    }
                }
                Some(
                    bound
                        .into_iter()
                        .map(|(k, v)| (format!("${k}"), word_value(&v)))
                        .collect(),
                )
            }
        }
    }
}

fn word_value(w: &str) -> Value {
    match w.parse::<f64>() {
        Ok(n) if n.is_finite() => {
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
        }
        _ => Value::String(w.to_string()),
    }
}

/// Split a message into space-delimited words; `"..."` and `[...]` are one word each (without the
/// delimiters).
pub fn split_words(msg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = msg.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let close = match c {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        let mut w = String::new();
        if let Some(close) = close {
            it.next();
            for ch in it.by_ref() {
                if ch == close {
                    break;
                }
                w.push(ch);
            }
        } else {
            while let Some(&ch) = it.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                it.next();
            }
        }
        out.push(w);
    }
    out
}

fn bind(fields: &[SField], words: &[String], out: &mut HashMap<String, String>) -> bool {
    match fields.split_first() {
        None => words.is_empty(),
        Some((SField::Ellipsis, rest)) => (0..=words.len()).any(|skip| {
            let mut trial = out.clone();
            if bind(rest, &words[skip..], &mut trial) {
                *out = trial;
                true
            } else {
                false
            }
        }),
        Some((SField::Named { name, .. }, rest)) => match words.split_first() {
            None => false,
            Some((w, more)) => {
                out.insert(name.clone(), w.clone());
                bind(rest, more, out)
            }
        },
    }
}

fn eval_scond(c: &SCond, bound: &HashMap<String, String>) -> bool {
    match c {
        SCond::Or(a, b) => eval_scond(a, bound) || eval_scond(b, bound),
        SCond::And(a, b) => eval_scond(a, bound) && eval_scond(b, bound),
        SCond::Cmp { field, op, val } => bound
            .get(field)
            .is_some_and(|w| compare(&Value::String(w.clone()), *op, val)),
    }
}

/// Glob match with `*` wildcards.
pub fn glob(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

fn compare(v: &Value, op: Op, val: &Val) -> bool {
    let as_num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match val {
        Val::Num(n) => match as_num(v) {
            Some(x) => match op {
                Op::Eq => x == *n,
                Op::Ne => x != *n,
                Op::Lt => x < *n,
                Op::Le => x <= *n,
                Op::Gt => x > *n,
                Op::Ge => x >= *n,
            },
            None => false,
        },
        Val::Str(s) => {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return false,
            };
            match op {
                Op::Eq => glob(s, &text),
                Op::Ne => !glob(s, &text),
                _ => false,
            }
        }
        Val::Re(r) => {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                _ => return false,
            };
            match op {
                Op::Eq => r.is_match(&text),
                Op::Ne => !r.is_match(&text),
                _ => false,
            }
        }
    }
}

/// The value a `$.a.b[0]` reference names in a JSON document, if any.
pub fn resolve_ref(doc: &Value, reference: &str) -> Option<Value> {
    let mut p = Parser {
        c: reference.chars().collect(),
        i: 0,
    };
    let (path, _) = p.selector().ok()?;
    if !p.at_end() {
        return None;
    }
    lookup(doc, &path).cloned()
}

/// Values at `path` (an array index past the end yields nothing).
fn lookup<'a>(doc: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = doc;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur.get(k.as_str())?,
            Seg::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

fn eval_json(e: &JExpr, doc: &Value, out: &mut Extracted) -> bool {
    match e {
        JExpr::Or(a, b) => eval_json(a, doc, out) || eval_json(b, doc, out),
        JExpr::And(a, b) => eval_json(a, doc, out) && eval_json(b, doc, out),
        JExpr::Cmp {
            path,
            name,
            op,
            val,
        } => match lookup(doc, path) {
            Some(v) if compare(v, *op, val) => {
                out.insert(name.clone(), v.clone());
                true
            }
            _ => false,
        },
        JExpr::IsNull(path) => matches!(lookup(doc, path), Some(Value::Null)),
        JExpr::NotExists(path) => lookup(doc, path).is_none(),
        JExpr::IsBool(path, b) => lookup(doc, path) == Some(&Value::Bool(*b)),
    }
}

struct Parser {
    c: Vec<char>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.c.len()
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }
    fn expect(&mut self, ch: char) -> Result<(), ApiError> {
        if self.peek() == Some(ch) {
            self.i += 1;
            Ok(())
        } else {
            Err(perr(format!("expected '{ch}'"), self.i))
        }
    }
    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        let ok =
            self.c.len() >= self.i + n && self.c[self.i..self.i + n].iter().copied().eq(s.chars());
        if ok {
            self.i += n;
        }
        ok
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let n = w.chars().count();
        let ok = self.c.len() >= self.i + n
            && self.c[self.i..self.i + n]
                .iter()
                .zip(w.chars())
                .all(|(a, b)| a.eq_ignore_ascii_case(&b))
            && !self
                .c
                .get(self.i + n)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_');
        if ok {
            self.i += n;
        }
        ok
    }

    fn quoted(&mut self) -> Result<String, ApiError> {
        let start = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(perr("unterminated quoted string", start)),
                Some('\\') => {
                    self.i += 1;
                    if let Some(c) = self.peek() {
                        s.push(c);
                        self.i += 1;
                    }
                }
                Some('"') => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn regex(&mut self) -> Result<Regex, ApiError> {
        let start = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(perr("unterminated %regex%", start)),
                Some('\\') if self.c.get(self.i + 1) == Some(&'%') => {
                    s.push('%');
                    self.i += 2;
                }
                Some('%') => {
                    self.i += 1;
                    break;
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
        if s.is_empty() {
            return Err(perr("empty regular expression", start));
        }
        regex::RegexBuilder::new(&s)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| perr(format!("invalid regular expression: {e}"), start))
    }

    fn terms(&mut self) -> Result<Pattern, ApiError> {
        let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            self.ws();
            let Some(c) = self.peek() else { break };
            let bucket = match c {
                '-' => {
                    self.i += 1;
                    &mut none
                }
                '?' => {
                    self.i += 1;
                    &mut any
                }
                _ => &mut all,
            };
            let term = match self.peek() {
                Some('"') => Term::Lit(self.quoted()?),
                Some('%') => Term::Re(self.regex()?),
                _ => {
                    let mut s = String::new();
                    while let Some(c) = self.peek().filter(|c| !c.is_whitespace()) {
                        s.push(c);
                        self.i += 1;
                    }
                    if s.is_empty() {
                        return Err(perr("expected a term", self.i));
                    }
                    Term::Lit(s)
                }
            };
            bucket.push(term);
        }
        Ok(Pattern::Terms { all, any, none })
    }

    fn op(&mut self) -> Option<Op> {
        self.ws();
        for (s, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(s) {
                return Some(op);
            }
        }
        None
    }

    /// A comparison value: number, quoted string, %regex% or bare word (wildcards allowed).
    fn value(&mut self) -> Result<Val, ApiError> {
        self.ws();
        match self.peek() {
            Some('"') => Ok(Val::Str(self.quoted()?)),
            Some('%') => Ok(Val::Re(self.regex()?)),
            _ => {
                let start = self.i;
                let mut s = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || "()&|,]}".contains(c) {
                        break;
                    }
                    s.push(c);
                    self.i += 1;
                }
                if s.is_empty() {
                    return Err(perr("expected a value", start));
                }
                Ok(match s.parse::<f64>() {
                    Ok(n) if n.is_finite() && !s.contains('*') => Val::Num(n),
                    _ => Val::Str(s),
                })
            }
        }
    }

    fn selector(&mut self) -> Result<(Vec<Seg>, String), ApiError> {
        self.ws();
        let start = self.i;
        if !self.eat("$") {
            return Err(perr("expected a selector starting with '$.'", self.i));
        }
        let mut path = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.i += 1;
                    let mut k = String::new();
                    while let Some(c) = self.peek() {
                        if c.is_alphanumeric() || c == '_' || c == '-' || c == '@' || c == ':' {
                            k.push(c);
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    if k.is_empty() {
                        return Err(perr("expected a field name after '.'", self.i));
                    }
                    path.push(Seg::Key(k));
                }
                Some('[') => {
                    self.i += 1;
                    let mut n = String::new();
                    while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                        n.push(c);
                        self.i += 1;
                    }
                    let idx = n
                        .parse::<usize>()
                        .map_err(|_| perr("expected an array index", self.i))?;
                    self.expect(']')?;
                    path.push(Seg::Index(idx));
                }
                _ => break,
            }
        }
        if path.is_empty() {
            return Err(perr("a selector needs at least one field", start));
        }
        let name: String = self.c[start..self.i].iter().collect();
        Ok((path, name))
    }

    fn jexpr(&mut self) -> Result<JExpr, ApiError> {
        let mut left = self.jand()?;
        loop {
            self.ws();
            if self.eat("||") {
                left = JExpr::Or(Box::new(left), Box::new(self.jand()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn jand(&mut self) -> Result<JExpr, ApiError> {
        let mut left = self.jatom()?;
        loop {
            self.ws();
            if self.eat("&&") {
                left = JExpr::And(Box::new(left), Box::new(self.jatom()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn jatom(&mut self) -> Result<JExpr, ApiError> {
        self.ws();
        if self.c.len() > 4096 || self.i > 4096 {
            return Err(perr("pattern too complex", self.i));
        }
        if self.peek() == Some('(') {
            self.i += 1;
            let e = self.jexpr()?;
            self.ws();
            self.expect(')')?;
            return Ok(e);
        }
        let (path, name) = self.selector()?;
        self.ws();
        if self.eat_word("IS") {
            self.ws();
            if self.eat_word("NULL") {
                return Ok(JExpr::IsNull(path));
            }
            if self.eat_word("TRUE") {
                return Ok(JExpr::IsBool(path, true));
            }
            if self.eat_word("FALSE") {
                return Ok(JExpr::IsBool(path, false));
            }
            return Err(perr("expected NULL, TRUE or FALSE after IS", self.i));
        }
        if self.eat_word("NOT") {
            self.ws();
            if self.eat_word("EXISTS") {
                return Ok(JExpr::NotExists(path));
            }
            return Err(perr("expected EXISTS after NOT", self.i));
        }
        let at = self.i;
        let op = self
            .op()
            .ok_or_else(|| perr("expected a comparison operator", at))?;
        let val = self.value()?;
        if matches!(val, Val::Str(_) | Val::Re(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return Err(perr("strings can only be compared with = or !=", at));
        }
        Ok(JExpr::Cmp {
            path,
            name,
            op,
            val,
        })
    }

    fn space_fields(&mut self) -> Result<Vec<SField>, ApiError> {
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat("]") {
                break;
            }
            if self.eat("...") {
                out.push(SField::Ellipsis);
            } else {
                let name = self.ident()?;
                self.ws();
                let cond = if matches!(self.peek(), Some('=' | '!' | '<' | '>')) {
                    Some(self.scond_tail(name.clone())?)
                } else {
                    None
                };
                out.push(SField::Named { name, cond });
            }
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                break;
            }
            return Err(perr("expected ',' or ']'", self.i));
        }
        if out.is_empty() {
            return Err(perr(
                "a space-delimited pattern needs at least one field",
                self.i,
            ));
        }
        Ok(out)
    }

    fn ident(&mut self) -> Result<String, ApiError> {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            s.push(c);
            self.i += 1;
        }
        if s.is_empty() {
            return Err(perr("expected a field name", self.i));
        }
        Ok(s)
    }

    /// `op value` for `field`, then any `&& other op value` / `|| ...` chain.
    fn scond_tail(&mut self, field: String) -> Result<SCond, ApiError> {
        let at = self.i;
        let op = self
            .op()
            .ok_or_else(|| perr("expected a comparison operator", at))?;
        let val = self.value()?;
        let mut left = SCond::Cmp { field, op, val };
        loop {
            self.ws();
            let and = if self.eat("&&") {
                true
            } else if self.eat("||") {
                false
            } else {
                return Ok(left);
            };
            self.ws();
            let f = self.ident()?;
            let right = self.scond_tail_single(f)?;
            left = if and {
                SCond::And(Box::new(left), Box::new(right))
            } else {
                SCond::Or(Box::new(left), Box::new(right))
            };
        }
    }

    fn scond_tail_single(&mut self, field: String) -> Result<SCond, ApiError> {
        let at = self.i;
        let op = self
            .op()
            .ok_or_else(|| perr("expected a comparison operator", at))?;
        let val = self.value()?;
        Ok(SCond::Cmp { field, op, val })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        Pattern::parse(p).unwrap().matches(msg.as_bytes())
    }

    #[test]
    fn terms_phrases_exclusions_alternatives() {
        assert!(m("", "anything"));
        assert!(m("ERROR", "[ERROR] disk full"));
        assert!(!m("ERROR", "error lowercase"));
        assert!(m("ERROR disk", "ERROR: disk full"));
        assert!(!m("ERROR memory", "ERROR: disk full"));
        assert!(m("\"disk full\"", "ERROR: disk full"));
        assert!(!m("\"full disk\"", "ERROR: disk full"));
        assert!(m("ERROR -timeout", "ERROR disk"));
        assert!(!m("ERROR -timeout", "ERROR timeout"));
        assert!(m("?ERROR ?WARN", "WARN low"));
        assert!(!m("?ERROR ?WARN", "INFO ok"));
        assert!(m("%ERR(OR)? [0-9]+%", "ERR 42"));
        assert!(!m("%^ERR%", "an ERR"));
    }

    #[test]
    fn json_selectors() {
        let msg = r#"{"a":{"b":"xyz"},"n":7,"arr":[{"v":1},{"v":2}],"nul":null,"t":true}"#;
        assert!(m(r#"{ $.a.b = "xyz" }"#, msg));
        assert!(m("{ $.a.b = xy* }", msg));
        assert!(!m("{ $.a.b = abc }", msg));
        assert!(m("{ $.n > 5 && $.n <= 7 }", msg));
        assert!(!m("{ $.n > 7 }", msg));
        assert!(m("{ $.n > 100 || $.arr[1].v = 2 }", msg));
        assert!(m("{ ($.n = 1 || $.n = 7) && $.t IS TRUE }", msg));
        assert!(m("{ $.nul IS NULL }", msg));
        assert!(!m("{ $.a IS NULL }", msg));
        assert!(m("{ $.missing NOT EXISTS }", msg));
        assert!(!m("{ $.n NOT EXISTS }", msg));
        assert!(m("{ $.a.b != abc }", msg));
        assert!(m("{ $.a.b = %^x.z$% }", msg));
        assert!(!m("{ $.n = 7 }", "not json"));
        let ex = Pattern::parse("{ $.n > 1 }").unwrap().extract(msg).unwrap();
        assert_eq!(ex.get("$.n"), Some(&serde_json::json!(7)));
    }

    #[test]
    fn space_delimited() {
        let line =
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        assert!(m(
            "[ip, id, user, timestamp, request, status_code = 4*, bytes]",
            line
        ));
        assert!(!m(
            "[ip, id, user, timestamp, request, status_code = 5*, bytes]",
            line
        ));
        assert!(m("[..., status=404, size > 1000]", line));
        assert!(!m("[..., status=404, size > 2000]", line));
        assert!(m("[ip=127.0.0.1, ...]", line));
        assert!(!m("[a, b]", line));
        assert!(m("[ip, ..., status = 500 || status = 404, size]", line));
        let ex = Pattern::parse("[..., status, size]")
            .unwrap()
            .extract(line)
            .unwrap();
        assert_eq!(ex.get("$size"), Some(&serde_json::json!(1534.0)));
        assert_eq!(ex.get("$status"), Some(&serde_json::json!(404.0)));
    }

    #[test]
    fn errors_name_the_position() {
        for bad in [
            "{ $.a = }",
            "{ $.a ",
            "{ a = 1 }",
            "[a, b",
            "[]",
            "\"open",
            "%%",
            "{ $.a > \"x\" }",
            "{ $.a IS MAYBE }",
            "{ $.a[x] = 1 }",
            "%(%",
        ] {
            let e = Pattern::parse(bad).unwrap_err();
            assert_eq!(e.kind, "InvalidParameterException", "{bad}");
            assert!(
                e.message.contains("position") || e.message.contains("regular"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn glob_wildcards() {
        assert!(glob("a*c", "abbc"));
        assert!(glob("*", ""));
        assert!(glob("*html*", "/index.html"));
        assert!(!glob("a*c", "ab"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet = [
            "{", "}", "[", "]", "$", ".", "a", "=", "\"", "%", "(", ")", "&&", "||", " ", "*", "1",
            "...", ",", "IS", "NOT", "é", "\\", "<", "-", "?",
        ];
        let mut seed = 12345u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 12) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            if let Ok(p) = Pattern::parse(&s) {
                let _ = p.matches(b"{\"a\": 1} x y");
            }
        }
    }
}
