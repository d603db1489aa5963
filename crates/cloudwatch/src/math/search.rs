//! `SEARCH()` search expressions (user guide, "CloudWatch search expression syntax").
//!
//! ```text
//! query   := [schema [","]] [term]          (at least one of the two)
//! schema  := "{" name ("," name)* "}"       (namespace first, then dimension names; a name with
//!                                           spaces or special characters is double-quoted)
//! term    := and ("OR" and)*
//! and     := unary (["AND"] unary)*         (juxtaposition is an implicit AND)
//! unary   := "NOT" unary | "(" term ")" | match
//! match   := [property "="] (word | "exact")
//! ```
//!
//! Operators are case sensitive (`and` is a search word). A double-quoted value is an exact,
//! case-sensitive match of the whole name; `\"`, `\\`, `\(` and `\)` are escapes inside it. A bare word
//! is a partial match on tokens (see [`partial_match`]). `MetricName=` and `Namespace=` restrict a
//! match to the metric name or namespace; any other property name restricts it to the value of that
//! dimension. Without a property a match may hit the metric name, the namespace, a dimension name or
//! a dimension value. A schema restricts results to its namespace and to metrics whose dimension names
//! are exactly the listed set (`{AWS/EC2}` alone selects the metrics without dimensions, the guide's
//! "single line showing the aggregation ... for all instances").

use super::{MathError, MetricIdentity, SearchQuery, MAX_NESTING};

/// The maximum length of a search query ("The maximum search expression query size is 1024
/// characters").
pub const MAX_SEARCH_LEN: usize = 1024;

/// The `{Namespace, DimensionName, ...}` part of a search query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSchema {
    pub namespace: String,
    pub dimensions: Vec<String>,
}

/// What a property designator restricts a match to.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchProperty {
    MetricName,
    Namespace,
    /// The value of the dimension with this name.
    Dimension(String),
}

/// The search-term part of a search query.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchTerm {
    /// One term: exact (double-quoted) or partial (bare word), optionally restricted to a property.
    Match {
        property: Option<SearchProperty>,
        value: String,
        exact: bool,
    },
    And(Vec<SearchTerm>),
    Or(Vec<SearchTerm>),
    Not(Box<SearchTerm>),
}

fn search_error(detail: impl std::fmt::Display) -> MathError {
    MathError::new(format!("Invalid search expression: {detail}"))
}

#[derive(Debug, Clone, PartialEq)]
enum STok {
    Word(String),
    Quoted(String),
    Eq,
    LParen,
    RParen,
    And,
    Or,
    Not,
}

/// Parse a search query (the first argument of `SEARCH`).
pub fn parse_search(text: &str) -> Result<SearchQuery, MathError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_SEARCH_LEN {
        return Err(search_error(format!(
            "the query is longer than {MAX_SEARCH_LEN} characters"
        )));
    }
    let mut i = skip_ws(&chars, 0);
    let mut schema = None;
    if chars.get(i) == Some(&'{') {
        let (s, next) = parse_schema(&chars, i + 1)?;
        schema = Some(s);
        i = skip_ws(&chars, next);
        if chars.get(i) == Some(&',') {
            i += 1;
        }
    }
    let tokens = lex_term(&chars, i)?;
    let term = if tokens.is_empty() {
        None
    } else {
        let mut p = TermParser {
            tokens,
            at: 0,
            depth: 0,
        };
        let t = p.parse_or()?;
        if let Some(extra) = p.tokens.get(p.at) {
            return Err(search_error(format!("unexpected {}", describe(extra))));
        }
        Some(t)
    };
    if schema.is_none() && term.is_none() {
        return Err(search_error(
            "a search must contain a metric schema, a search term, or both",
        ));
    }
    Ok(SearchQuery {
        text: text.to_string(),
        schema,
        term,
    })
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// Read a double-quoted string whose opening quote is at `i - 1`; returns the text and the index after
/// the closing quote. A backslash escapes the next character.
fn read_quoted(chars: &[char], mut i: usize) -> Result<(String, usize), MathError> {
    let mut out = String::new();
    while let Some(&c) = chars.get(i) {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let escaped = chars
                    .get(i + 1)
                    .ok_or_else(|| search_error("a backslash ends the query"))?;
                out.push(*escaped);
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(search_error("unterminated double-quoted string"))
}

/// Parse the schema after its `{`; returns the schema and the index after `}`.
fn parse_schema(chars: &[char], mut i: usize) -> Result<(SearchSchema, usize), MathError> {
    let mut names = Vec::new();
    loop {
        i = skip_ws(chars, i);
        let name = match chars.get(i) {
            Some('"') => {
                let (s, next) = read_quoted(chars, i + 1)?;
                i = next;
                s
            }
            Some(_) => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| !c.is_whitespace() && !matches!(c, ',' | '}' | '{' | '"'))
                {
                    i += 1;
                }
                chars[start..i].iter().collect()
            }
            None => return Err(search_error("the metric schema is missing its closing '}'")),
        };
        if name.is_empty() {
            return Err(search_error("the metric schema contains an empty name"));
        }
        names.push(name);
        i = skip_ws(chars, i);
        match chars.get(i) {
            Some(',') => i += 1,
            Some('}') => {
                i += 1;
                break;
            }
            Some(c) => {
                return Err(search_error(format!(
                    "unexpected '{c}' in the metric schema"
                )))
            }
            None => return Err(search_error("the metric schema is missing its closing '}'")),
        }
    }
    let namespace = names.remove(0);
    Ok((
        SearchSchema {
            namespace,
            dimensions: names,
        },
        i,
    ))
}

fn lex_term(chars: &[char], mut i: usize) -> Result<Vec<STok>, MathError> {
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push(STok::LParen);
                i += 1;
            }
            ')' => {
                out.push(STok::RParen);
                i += 1;
            }
            '=' => {
                out.push(STok::Eq);
                i += 1;
            }
            '"' => {
                let (s, next) = read_quoted(chars, i + 1)?;
                out.push(STok::Quoted(s));
                i = next;
            }
            '{' | '}' => {
                return Err(search_error(
                    "the metric schema {...} must come first in the query",
                ))
            }
            _ => {
                let start = i;
                while chars.get(i).is_some_and(|c| {
                    !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | '=' | '{' | '}')
                }) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "AND" => STok::And,
                    "OR" => STok::Or,
                    "NOT" => STok::Not,
                    _ => STok::Word(word),
                });
            }
        }
    }
    Ok(out)
}

fn describe(t: &STok) -> String {
    match t {
        STok::Word(w) => format!("'{w}'"),
        STok::Quoted(q) => format!("\"{q}\""),
        STok::Eq => "'='".into(),
        STok::LParen => "'('".into(),
        STok::RParen => "')'".into(),
        STok::And => "'AND'".into(),
        STok::Or => "'OR'".into(),
        STok::Not => "'NOT'".into(),
    }
}

struct TermParser {
    tokens: Vec<STok>,
    at: usize,
    depth: usize,
}

impl TermParser {
    fn peek(&self) -> Option<&STok> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<STok> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn enter(&mut self) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(search_error(format!(
                "the query is nested too deeply (at most {MAX_NESTING} levels)"
            )));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<SearchTerm, MathError> {
        let mut items = vec![self.parse_and()?];
        while self.peek() == Some(&STok::Or) {
            self.at += 1;
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            SearchTerm::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<SearchTerm, MathError> {
        let mut items = vec![self.parse_unary()?];
        loop {
            match self.peek() {
                Some(STok::And) => {
                    self.at += 1;
                    items.push(self.parse_unary()?);
                }
                Some(STok::Word(_) | STok::Quoted(_) | STok::Not | STok::LParen) => {
                    items.push(self.parse_unary()?)
                }
                _ => break,
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            SearchTerm::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<SearchTerm, MathError> {
        match self.next() {
            Some(STok::Not) => {
                self.enter()?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(SearchTerm::Not(Box::new(inner)))
            }
            Some(STok::LParen) => {
                self.enter()?;
                if self.peek() == Some(&STok::RParen) {
                    return Err(search_error("empty parentheses"));
                }
                let inner = self.parse_or()?;
                match self.next() {
                    Some(STok::RParen) => {}
                    Some(other) => {
                        return Err(search_error(format!(
                            "expected ')', found {}",
                            describe(&other)
                        )))
                    }
                    None => return Err(search_error("missing ')'")),
                }
                self.depth -= 1;
                Ok(inner)
            }
            Some(STok::Word(w)) => self.finish_match(w, false),
            Some(STok::Quoted(q)) => self.finish_match(q, true),
            Some(other) => Err(search_error(format!("unexpected {}", describe(&other)))),
            None => Err(search_error(
                "the query ends where a search term is expected",
            )),
        }
    }

    /// A word or quoted string was read; it is a property name if `=` follows.
    fn finish_match(&mut self, first: String, first_exact: bool) -> Result<SearchTerm, MathError> {
        if self.peek() != Some(&STok::Eq) {
            return Ok(SearchTerm::Match {
                property: None,
                value: first,
                exact: first_exact,
            });
        }
        self.at += 1;
        let property = match first.as_str() {
            "MetricName" => SearchProperty::MetricName,
            "Namespace" => SearchProperty::Namespace,
            "" => return Err(search_error("empty property name")),
            _ => SearchProperty::Dimension(first),
        };
        match self.next() {
            Some(STok::Word(w)) => Ok(SearchTerm::Match {
                property: Some(property),
                value: w,
                exact: false,
            }),
            Some(STok::Quoted(q)) => Ok(SearchTerm::Match {
                property: Some(property),
                value: q,
                exact: true,
            }),
            Some(other) => Err(search_error(format!(
                "expected a value after '=', found {}",
                describe(&other)
            ))),
            None => Err(search_error("expected a value after '='")),
        }
    }
}

pub(crate) fn matches(query: &SearchQuery, metric: &MetricIdentity) -> bool {
    if let Some(schema) = &query.schema {
        if schema.namespace != metric.namespace {
            return false;
        }
        let mut want: Vec<&str> = schema.dimensions.iter().map(String::as_str).collect();
        let mut have: Vec<&str> = metric.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        want.sort_unstable();
        want.dedup();
        have.sort_unstable();
        have.dedup();
        if want != have {
            return false;
        }
    }
    query.term.as_ref().is_none_or(|t| term_matches(t, metric))
}

fn term_matches(term: &SearchTerm, m: &MetricIdentity) -> bool {
    match term {
        SearchTerm::And(items) => items.iter().all(|t| term_matches(t, m)),
        SearchTerm::Or(items) => items.iter().any(|t| term_matches(t, m)),
        SearchTerm::Not(inner) => !term_matches(inner, m),
        SearchTerm::Match {
            property,
            value,
            exact,
        } => {
            let hit = |target: &str| {
                if *exact {
                    target == value
                } else {
                    partial_match(value, target)
                }
            };
            match property {
                None => {
                    hit(&m.metric_name)
                        || hit(&m.namespace)
                        || m.dimensions.iter().any(|(n, v)| hit(n) || hit(v))
                }
                Some(SearchProperty::MetricName) => hit(&m.metric_name),
                Some(SearchProperty::Namespace) => hit(&m.namespace),
                Some(SearchProperty::Dimension(name)) => {
                    m.dimensions.iter().any(|(n, v)| n == name && hit(v))
                }
            }
        }
    }
}

/// Split a run of alphanumeric characters into tokens: a new token starts at a change between digits
/// and letters, at a lowercase-to-uppercase step (`customCount`), and at the last capital of a
/// capital run followed by a lowercase letter (`SDBFailure` -> `SDB`, `Failure`).
fn word_parts(seg: &[char]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..seg.len() {
        let (prev, cur) = (seg[i - 1], seg[i]);
        let boundary = prev.is_numeric() != cur.is_numeric()
            || (cur.is_uppercase() && prev.is_lowercase())
            || (cur.is_uppercase()
                && prev.is_uppercase()
                && seg.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            parts.push(seg[start..i].iter().collect());
            start = i;
        }
    }
    if start < seg.len() {
        parts.push(seg[start..].iter().collect());
    }
    parts
}

/// The alphanumeric segments of a string (non-alphanumeric characters are delimiters), each split
/// into its tokens, original case kept.
fn segments(s: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .split(|c| !c.is_alphanumeric())
        .filter(|seg| !seg.is_empty())
        .map(word_parts)
        .collect()
}

/// The whole-name token: every alphanumeric character, lowercased (`Project2-trial333` ->
/// `project2trial333`).
fn full_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Partial match of a bare search word against a name, per "Tokenization" and "Partial matches":
///
/// * the word matches if its lowercased alphanumerics equal the name's whole-name token;
/// * otherwise the word is tokenized like the name, and its tokens must equal consecutive tokens of
///   the name. A delimiter-separated piece of the word that is a single token matches case
///   insensitively (`count`, `COUNT`; `network/errors` finds `Network-Errors-2`); a piece that splits
///   into several tokens is a composite and matches case sensitively (`CustomCount` and `Count1` find
///   `CustomCount1`, `customcount`, `count1` and `couNT` do not).
pub(crate) fn partial_match(word: &str, name: &str) -> bool {
    let whole = full_token(word);
    if whole.is_empty() {
        return false;
    }
    if whole == full_token(name) {
        return true;
    }
    let pattern: Vec<(String, bool)> = segments(word)
        .into_iter()
        .flat_map(|parts| {
            let composite = parts.len() > 1;
            parts.into_iter().map(move |p| (p, composite))
        })
        .collect();
    let tokens: Vec<String> = segments(name).into_iter().flatten().collect();
    if pattern.is_empty() || pattern.len() > tokens.len() {
        return false;
    }
    tokens.windows(pattern.len()).any(|window| {
        window
            .iter()
            .zip(&pattern)
            .all(|(tok, (pat, case_sensitive))| {
                if *case_sensitive {
                    tok == pat
                } else {
                    tok.to_lowercase() == pat.to_lowercase()
                }
            })
    })
}
