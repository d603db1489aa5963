//! The Logs Insights query AST and its recursive-descent parser: commands `fields`, `display`,
//! `filter`, `stats ... by`, `sort`, `limit`, `parse` (glob or named-group regex) and `dedup`;
//! expressions with `or`/`and`/`not`, comparisons, `like`/`=~`, `in [...]`, arithmetic and function
//! calls. Errors are `MalformedQueryException`s naming the position and the token found.

use opsloop_core::ApiError;
use regex::Regex;

use super::lexer::{error_at, lex, Spanned, Tok};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Field(String),
    Num(f64),
    Str(String),
    Regex(Box<Regex>),
    Duration(i64),
    List(Vec<Expr>),
    Star,
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `e like pat` / `e =~ pat` (`negate` for `not like`).
    Like(Box<Expr>, Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    /// Function name lower-cased.
    Call(String, Vec<Expr>),
}

/// An expression and the name its output column gets.
#[derive(Debug, Clone)]
pub struct Named {
    pub expr: Expr,
    pub name: String,
}

#[derive(Debug, Clone)]
pub enum ParseKind {
    /// Literal parts between `*`s and the names the captures get.
    Glob(Vec<String>, Vec<String>),
    Regex(Box<Regex>),
}

#[derive(Debug, Clone)]
pub enum Command {
    Fields(Vec<Named>),
    Display(Vec<Named>),
    Filter(Expr),
    Stats { aggs: Vec<Named>, by: Vec<Named> },
    Sort(Vec<(Expr, bool)>),
    Limit(usize),
    Parse { source: Expr, kind: ParseKind },
    Dedup(Vec<String>),
}

pub const AGGREGATES: [&str; 14] = [
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "percentile",
    "stddev",
    "earliest",
    "latest",
    "sortsfirst",
    "sortslast",
    "median",
];

pub fn is_aggregate(name: &str) -> bool {
    AGGREGATES.contains(&name)
}

struct Parser<'a> {
    toks: Vec<Spanned>,
    i: usize,
    src: &'a [char],
    /// Current nesting of expressions (bounded so evaluation cannot exhaust the stack).
    depth: usize,
    /// Operator and call nodes built so far (bounded for the same reason).
    nodes: usize,
}

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 1000;

/// Parse a query. Errors name the line and the position in that line (both 1-based).
pub fn parse(src: &str) -> Result<Vec<Command>, ApiError> {
    parse_flat(src).map_err(|mut e| {
        if src.contains('\n') {
            e.message = relocate(&e.message, src);
        }
        e
    })
}

/// Turn the "line 1 and position N" (N counting every character) of a message into the real line
/// and position of character N in `src`.
fn relocate(message: &str, src: &str) -> String {
    const AT: &str = "at line 1 and position ";
    let Some(i) = message.find(AT) else {
        return message.to_string();
    };
    let rest = &message[i + AT.len()..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let Ok(pos) = rest[..digits].parse::<usize>() else {
        return message.to_string();
    };
    let (mut line, mut col) = (1, 0);
    for ch in src.chars().take(pos.saturating_sub(1)) {
        if ch == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
    }
    format!(
        "{}at line {line} and position {}{}",
        &message[..i],
        col + 1,
        &rest[digits..]
    )
}

fn parse_flat(src: &str) -> Result<Vec<Command>, ApiError> {
    if src.trim().is_empty() {
        return Err(error_at(1, "end of query", "the query is empty"));
    }
    if src.chars().count() > 10_000 {
        return Err(crate::error::malformed_query(
            "The query string is longer than 10000 characters.",
        ));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut p = Parser {
        depth: 0,
        nodes: 0,
        toks: lex(src)?,
        i: 0,
        src: &chars,
    };
    let mut out = Vec::new();
    loop {
        out.push(p.command()?);
        match p.peek() {
            None => break,
            Some(Tok::Pipe) => {
                p.i += 1;
            }
            Some(_) => return Err(p.unexpected("expected '|' or the end of the query")),
        }
    }
    check_plan(&out)?;
    Ok(out)
}

/// Rules on the order of commands: at most two `stats`, the second reading only what the first
/// produced (its `by` and aggregate names, `@timestamp` when it grouped by `bin()`, and what
/// commands in between define); `sort`, `limit` and `dedup` only after the last `stats`.
fn check_plan(cmds: &[Command]) -> Result<(), ApiError> {
    let stats: Vec<usize> = cmds
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, Command::Stats { .. }))
        .map(|(i, _)| i)
        .collect();
    if stats.len() > 2 {
        return Err(crate::error::malformed_query(
            "a query can have at most two stats commands",
        ));
    }
    if let Some(&last) = stats.last() {
        if let Some(c) = cmds[..last]
            .iter()
            .find(|c| matches!(c, Command::Sort(_) | Command::Limit(_) | Command::Dedup(_)))
        {
            let name = match c {
                Command::Sort(_) => "sort",
                Command::Limit(_) => "limit",
                _ => "dedup",
            };
            return Err(crate::error::malformed_query(format!(
                "{name} must come after the last stats command"
            )));
        }
    }
    if let [first, second] = stats[..] {
        let mut available: Vec<String> = Vec::new();
        for c in &cmds[first..second] {
            match c {
                Command::Stats { aggs, by } => {
                    available.extend(aggs.iter().chain(by).map(|n| n.name.clone()));
                    if by
                        .iter()
                        .any(|n| matches!(&n.expr, Expr::Call(f, _) if f == "bin"))
                    {
                        available.push("@timestamp".into());
                    }
                }
                Command::Fields(l) | Command::Display(l) => {
                    available.extend(l.iter().map(|n| n.name.clone()))
                }
                Command::Parse {
                    kind: ParseKind::Glob(_, names),
                    ..
                } => available.extend(names.iter().cloned()),
                Command::Parse {
                    kind: ParseKind::Regex(re),
                    ..
                } => available.extend(re.capture_names().flatten().map(str::to_string)),
                _ => {}
            }
        }
        if let Command::Stats { aggs, by } = &cmds[second] {
            let mut used = Vec::new();
            for n in aggs.iter().chain(by) {
                field_refs(&n.expr, &mut used);
            }
            if let Some(missing) = used.iter().find(|f| !available.contains(f)) {
                return Err(crate::error::malformed_query(format!(
                    "the second stats command can only use fields produced by the first; '{missing}' is not one of them{}",
                    if missing == "@timestamp" {
                        " (group the first stats by bin() to carry @timestamp)"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Field names an expression reads (`bin(p)` reads `@timestamp`).
pub fn field_refs(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Field(f) => out.push(f.clone()),
        Expr::Not(a) | Expr::Neg(a) => field_refs(a, out),
        Expr::Bin(_, a, b) | Expr::Like(a, b, _) => {
            field_refs(a, out);
            field_refs(b, out);
        }
        Expr::In(a, items, _) => {
            field_refs(a, out);
            items.iter().for_each(|i| field_refs(i, out));
        }
        Expr::Call(name, args) => {
            if name == "bin" && args.len() == 1 {
                out.push("@timestamp".into());
            }
            args.iter().for_each(|a| field_refs(a, out));
        }
        Expr::List(items) => items.iter().for_each(|i| field_refs(i, out)),
        _ => {}
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|s| &s.tok)
    }

    fn unexpected(&self, detail: &str) -> ApiError {
        match self.toks.get(self.i) {
            Some(s) => error_at(s.pos, &s.tok.to_string(), detail),
            None => error_at(self.src.len() + 1, "end of query", detail),
        }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ApiError> {
        if self.peek() == Some(&t) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, ApiError> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn text(&self, from: usize, to: usize) -> String {
        let (Some(a), Some(b)) = (
            self.toks.get(from),
            to.checked_sub(1).and_then(|t| self.toks.get(t)),
        ) else {
            return String::new();
        };
        let (start, end) = (a.pos - 1, b.end.min(self.src.len()));
        if start >= end {
            return String::new();
        }
        self.src[start..end].iter().collect()
    }

    fn command(&mut self) -> Result<Command, ApiError> {
        let name = match self.peek() {
            Some(Tok::Ident(s)) => s.to_ascii_lowercase(),
            _ => return Err(self.unexpected(
                "expected a command (fields, filter, stats, sort, limit, parse, display, dedup)",
            )),
        };
        self.i += 1;
        Ok(match name.as_str() {
            "fields" => Command::Fields(self.named_list()?),
            "display" => Command::Display(self.named_list()?),
            "filter" => Command::Filter(self.expr()?),
            "stats" => {
                let aggs = self.named_list()?;
                for a in &aggs {
                    if !contains_aggregate(&a.expr) {
                        return Err(crate::error::malformed_query(format!(
                            "stats expression '{}' uses no aggregate function",
                            a.name
                        )));
                    }
                }
                let by = if self.keyword("by") {
                    self.named_list()?
                } else {
                    Vec::new()
                };
                Command::Stats { aggs, by }
            }
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let e = self.expr()?;
                    let desc = if self.keyword("desc") {
                        true
                    } else {
                        self.keyword("asc");
                        false
                    };
                    keys.push((e, desc));
                    if self.peek() == Some(&Tok::Comma) {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Command::Sort(keys)
            }
            "limit" => match self.peek() {
                Some(Tok::Num(n)) if *n >= 1.0 && n.fract() == 0.0 => {
                    let n = *n as usize;
                    self.i += 1;
                    Command::Limit(n.min(10_000))
                }
                _ => return Err(self.unexpected("limit needs a positive whole number")),
            },
            "parse" => {
                let source = self.primary()?;
                match self.peek().cloned() {
                    Some(Tok::Regex(r)) => {
                        let at = self.toks[self.i].pos;
                        self.i += 1;
                        let re = regex::RegexBuilder::new(&r)
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| {
                                error_at(
                                    at,
                                    &format!("/{r}/"),
                                    &format!("invalid regular expression: {e}"),
                                )
                            })?;
                        if re.capture_names().flatten().next().is_none() {
                            return Err(error_at(
                                at,
                                &format!("/{r}/"),
                                "the regular expression has no named capture groups",
                            ));
                        }
                        Command::Parse {
                            source,
                            kind: ParseKind::Regex(Box::new(re)),
                        }
                    }
                    Some(Tok::Str(glob)) => {
                        self.i += 1;
                        if !self.keyword("as") {
                            return Err(self.unexpected("expected 'as' after the parse pattern"));
                        }
                        let mut names = vec![self.ident("expected a field name")?];
                        while self.peek() == Some(&Tok::Comma) {
                            self.i += 1;
                            names.push(self.ident("expected a field name")?);
                        }
                        let parts: Vec<String> = glob.split('*').map(str::to_string).collect();
                        if parts.len() - 1 != names.len() {
                            return Err(crate::error::malformed_query(format!(
                                "the parse pattern has {} wildcards but {} field names",
                                parts.len() - 1,
                                names.len()
                            )));
                        }
                        Command::Parse {
                            source,
                            kind: ParseKind::Glob(parts, names),
                        }
                    }
                    _ => return Err(self.unexpected("expected a quoted glob pattern or a /regex/")),
                }
            }
            "dedup" => {
                let mut names = vec![self.ident("expected a field name")?];
                while self.peek() == Some(&Tok::Comma) {
                    self.i += 1;
                    names.push(self.ident("expected a field name")?);
                }
                Command::Dedup(names)
            }
            _ => {
                self.i -= 1;
                return Err(self.unexpected("expected a command (fields, filter, stats, sort, limit, parse, display, dedup)"));
            }
        })
    }

    fn named_list(&mut self) -> Result<Vec<Named>, ApiError> {
        let mut out = Vec::new();
        loop {
            let start = self.i;
            let expr = self.expr()?;
            let end = self.i;
            let name = if self.keyword("as") {
                self.ident("expected an alias after 'as'")?
            } else {
                match &expr {
                    Expr::Field(f) => f.clone(),
                    _ => self.text(start, end),
                }
            };
            out.push(Named { expr, name });
            if self.peek() == Some(&Tok::Comma) {
                self.i += 1;
            } else {
                return Ok(out);
            }
        }
    }

    fn enter(&mut self) -> Result<(), ApiError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.unexpected("the expression is nested too deeply"));
        }
        Ok(())
    }

    fn node(&mut self) -> Result<(), ApiError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.unexpected("the query is too complex"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ApiError> {
        self.enter()?;
        let mut left = self.and()?;
        while self.keyword("or") {
            self.node()?;
            left = Expr::Bin(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ApiError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.node()?;
            left = Expr::Bin(BinOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ApiError> {
        let bang = self.peek() == Some(&Tok::Op("!"));
        if bang || self.keyword("not") {
            if bang {
                self.i += 1;
            }
            self.enter()?;
            self.node()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ApiError> {
        let left = self.additive()?;
        let negate = matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("not"))
            && matches!(self.toks.get(self.i + 1).map(|s| &s.tok), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("like") || s.eq_ignore_ascii_case("in"));
        if negate {
            self.i += 1;
        }
        if self.keyword("like")
            || (!negate && self.peek() == Some(&Tok::Op("=~")) && {
                self.i += 1;
                true
            })
        {
            let pat = self.additive()?;
            return Ok(Expr::Like(Box::new(left), Box::new(pat), negate));
        }
        if self.keyword("in") {
            self.expect(Tok::LBracket, "expected '[' after in")?;
            let mut items = Vec::new();
            if self.peek() != Some(&Tok::RBracket) {
                loop {
                    items.push(self.additive()?);
                    if self.peek() == Some(&Tok::Comma) {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
            }
            self.expect(Tok::RBracket, "expected ']'")?;
            return Ok(Expr::In(Box::new(left), items, negate));
        }
        let op = match self.peek() {
            Some(Tok::Op("=")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            _ => return Ok(left),
        };
        self.i += 1;
        self.node()?;
        let right = self.additive()?;
        Ok(Expr::Bin(op, Box::new(left), Box::new(right)))
    }

    fn additive(&mut self) -> Result<Expr, ApiError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(left),
            };
            self.i += 1;
            self.node()?;
            left = Expr::Bin(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ApiError> {
        let mut left = self.power()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                Some(Tok::Op("%")) => BinOp::Mod,
                _ => return Ok(left),
            };
            self.i += 1;
            self.node()?;
            left = Expr::Bin(op, Box::new(left), Box::new(self.power()?));
        }
    }

    fn power(&mut self) -> Result<Expr, ApiError> {
        let base = self.unary()?;
        if self.peek() == Some(&Tok::Op("^")) {
            self.i += 1;
            self.enter()?;
            self.node()?;
            let exponent = self.power()?;
            self.depth -= 1;
            return Ok(Expr::Bin(BinOp::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, ApiError> {
        if self.peek() == Some(&Tok::Op("-")) {
            self.i += 1;
            self.enter()?;
            self.node()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ApiError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected("expected an expression"));
        };
        self.i += 1;
        Ok(match tok {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(s),
            Tok::Duration(ms) => Expr::Duration(ms),
            Tok::Regex(r) => {
                let at = self.toks[self.i - 1].pos;
                let re = regex::RegexBuilder::new(&r)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        error_at(
                            at,
                            &format!("/{r}/"),
                            &format!("invalid regular expression: {e}"),
                        )
                    })?;
                Expr::Regex(Box::new(re))
            }
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(Tok::RParen, "expected ')'")?;
                e
            }
            Tok::Ident(name) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.i += 1;
                    let mut args = Vec::new();
                    if self.peek() == Some(&Tok::Op("*"))
                        && self.toks.get(self.i + 1).map(|s| &s.tok) == Some(&Tok::RParen)
                    {
                        self.i += 1;
                        args.push(Expr::Star);
                    } else if self.peek() != Some(&Tok::RParen) {
                        loop {
                            args.push(self.expr()?);
                            if self.peek() == Some(&Tok::Comma) {
                                self.i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect(Tok::RParen, "expected ')' to close the function call")?;
                    let lname = name.to_ascii_lowercase();
                    if !super::eval::is_function(&lname) && !is_aggregate(&lname) {
                        return Err(error_at(
                            self.toks[self.i - 1].pos,
                            &name,
                            "unknown function",
                        ));
                    }
                    Expr::Call(lname, args)
                } else {
                    match name.to_ascii_lowercase().as_str() {
                        "true" => Expr::Num(1.0),
                        "false" => Expr::Num(0.0),
                        _ => Expr::Field(name),
                    }
                }
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                if self.peek() != Some(&Tok::RBracket) {
                    loop {
                        items.push(self.additive()?);
                        if self.peek() == Some(&Tok::Comma) {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RBracket, "expected ']'")?;
                Expr::List(items)
            }
            _ => {
                self.i -= 1;
                return Err(self.unexpected("expected an expression"));
            }
        })
    }
}

pub fn contains_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call(name, args) => is_aggregate(name) || args.iter().any(contains_aggregate),
        Expr::Not(a) | Expr::Neg(a) => contains_aggregate(a),
        Expr::Bin(_, a, b) | Expr::Like(a, b, _) => contains_aggregate(a) || contains_aggregate(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_reference_queries() {
        let q = parse("fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100").unwrap();
        assert_eq!(q.len(), 4);
        assert!(matches!(&q[3], Command::Limit(100)));
        let q = parse("fields @timestamp, @duration | stats avg(@duration), max(@duration), min(@duration) by bin(5m)").unwrap();
        match &q[1] {
            Command::Stats { aggs, by } => {
                assert_eq!(aggs[0].name, "avg(@duration)");
                assert_eq!(by[0].name, "bin(5m)");
            }
            other => panic!("{other:?}"),
        }
        let q = parse("fields @message | parse @message /user=(?<user>\\S+)/ | stats count(*) by user | sort count desc").unwrap();
        assert!(matches!(
            &q[1],
            Command::Parse {
                kind: ParseKind::Regex(_),
                ..
            }
        ));
        match &q[2] {
            Command::Stats { aggs, by } => {
                assert_eq!(aggs[0].name, "count(*)");
                assert_eq!(by[0].name, "user");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn precedence_and_aliases() {
        let q = parse("filter a = 1 or b = 2 and not c > 3 | fields x + y * 2 as z").unwrap();
        match &q[0] {
            Command::Filter(Expr::Bin(BinOp::Or, _, r)) => {
                assert!(matches!(**r, Expr::Bin(BinOp::And, _, _)))
            }
            other => panic!("{other:?}"),
        }
        match &q[1] {
            Command::Fields(f) => {
                assert_eq!(f[0].name, "z");
                assert!(
                    matches!(&f[0].expr, Expr::Bin(BinOp::Add, _, r) if matches!(**r, Expr::Bin(BinOp::Mul, _, _)))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("filter x not in [1, 2] and y not like 'a'").is_ok());
        assert!(parse("parse @message '* - *' as a, b").is_ok());
    }

    #[test]
    fn errors_name_position_and_token() {
        let cases = [
            ("fields @a | filter", "end of query"),
            ("fields @a || limit 2", "position 12"),
            ("stats count(*) by", "end of query"),
            ("limit -1", "limit"),
            ("frobnicate x", "frobnicate"),
            ("stats strlen(x)", "no aggregate"),
            ("filter nosuch(x)", "unknown function"),
            ("parse @message '* *' as a", "wildcards"),
            ("parse @message /(a)/", "named capture"),
            ("filter x like /(/", "regular expression"),
            ("", "empty"),
            (
                "stats count(*) as a | stats sum(a) | stats count(*)",
                "at most two stats",
            ),
            ("sort @timestamp | stats count(*)", "after the last stats"),
            (
                "stats count(*) as n by x | limit 3 | stats sum(n)",
                "limit must come after the last stats",
            ),
            (
                "stats count(*) as n by x | stats sum(y)",
                "'y' is not one of them",
            ),
            (
                "stats count(*) as n by x | stats sum(n) by bin(1h)",
                "group the first stats by bin()",
            ),
        ];
        for (q, needle) in cases {
            let e = parse(q).unwrap_err();
            assert_eq!(e.kind, "MalformedQueryException", "{q}");
            assert!(e.message.contains(needle), "{q}: {}", e.message);
        }
    }

    #[test]
    fn multi_line_errors_name_line_and_position() {
        let e = parse("fields @message\n# note\n| filter x ==\n| limit 5").unwrap_err();
        assert!(
            e.message.contains("found | at line 4 and position 1"),
            "{}",
            e.message
        );
        let e = parse("fields a\n| frob").unwrap_err();
        assert!(
            e.message.contains("frob at line 2 and position 3"),
            "{}",
            e.message
        );
        assert!(
            parse("stats count(*) as n by x\n| stats sum(n) as total\n| sort total desc").is_ok()
        );
    }

    #[test]
    fn deep_or_long_expressions_are_refused_not_overflowed() {
        let deep = format!("filter {}1{}", "(".repeat(3000), ")".repeat(3000));
        assert!(parse(&deep)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
        let nots = format!("filter {}x", "not ".repeat(2400));
        assert!(parse(&nots)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
        let long = format!("filter x{}", " + x".repeat(2000));
        assert!(parse(&long).unwrap_err().message.contains("too complex"));
        assert!(parse(&format!("filter x{}", " + x".repeat(100))).is_ok());
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let parts = [
            "fields", "filter", "stats", "count(*)", "by", "bin(5m)", "|", "@message", "like",
            "/x/", "(", ")", "[", "]", ",", "=", "'s", "\"", "1", "-", "not", "in", "sort", "desc",
            "parse", "as", "/", "*", "é",
        ];
        let mut seed = 99u64;
        for _ in 0..20_000 {
            let mut q = String::new();
            for _ in 0..(seed % 10) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                q.push_str(parts[(seed >> 33) as usize % parts.len()]);
                q.push(' ');
            }
            let _ = parse(&q);
        }
    }
}
