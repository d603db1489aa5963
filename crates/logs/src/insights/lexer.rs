//! Tokens of the Logs Insights query language. A `/` starts a regular expression literal unless it
//! follows an operand (then it divides) — except right after `parse <field>`, where the pattern
//! always follows. Numbers glued to a unit (`5m`, `1h`, `100ms`, `2hrs`) are durations. `#` starts
//! a comment that runs to the end of the line.

use crate::error::malformed_query;
use opsloop_core::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Num(f64),
    /// Milliseconds.
    Duration(i64),
    Str(String),
    Regex(String),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Op(&'static str),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "{s}"),
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Duration(ms) => write!(f, "{ms}ms"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Regex(s) => write!(f, "/{s}/"),
            Tok::Pipe => write!(f, "|"),
            Tok::Comma => write!(f, ","),
            Tok::LParen => write!(f, "("),
            Tok::RParen => write!(f, ")"),
            Tok::LBracket => write!(f, "["),
            Tok::RBracket => write!(f, "]"),
            Tok::Op(o) => write!(f, "{o}"),
        }
    }
}

/// A token and its 1-based character position.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub tok: Tok,
    pub pos: usize,
    /// 0-based character index just past the token.
    pub end: usize,
}

pub fn error_at(pos: usize, found: &str, detail: &str) -> ApiError {
    malformed_query(format!(
        "unexpected symbol found {found} at line 1 and position {pos}: {detail}"
    ))
}

fn duration_unit(unit: &str) -> Option<i64> {
    Some(match unit {
        // Units of more than one character also take a plural `s` (`hrs`, `mins`).
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        "mo" | "mos" | "mon" | "mons" | "month" | "months" => 30 * 86_400_000,
        "q" | "qtr" | "qtrs" | "quarter" | "quarters" => 91 * 86_400_000,
        "y" | "yr" | "yrs" | "year" | "years" => 365 * 86_400_000,
        _ => return None,
    })
}

/// Words after which a `/` starts a regular expression.
const KEYWORDS: [&str; 12] = [
    "like", "and", "or", "not", "in", "filter", "fields", "display", "stats", "sort", "by", "as",
];

pub fn lex(src: &str) -> Result<Vec<Spanned>, ApiError> {
    let c: Vec<char> = src.chars().collect();
    let mut out: Vec<Spanned> = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let pos = i + 1;
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch == '#' {
            // A comment runs to the end of the line.
            while c.get(i).is_some_and(|&d| d != '\n') {
                i += 1;
            }
            continue;
        }
        let prev_operand = match out.last().map(|s| &s.tok) {
            Some(Tok::Ident(k)) => !KEYWORDS.iter().any(|w| k.eq_ignore_ascii_case(w)),
            Some(Tok::Num(_) | Tok::Str(_) | Tok::RParen | Tok::RBracket | Tok::Duration(_)) => {
                true
            }
            _ => false,
        };
        let after_parse_field = out.len() >= 2
            && matches!(&out[out.len() - 2].tok, Tok::Ident(k) if k.eq_ignore_ascii_case("parse"))
            && matches!(out[out.len() - 1].tok, Tok::Ident(_));
        let tok = match ch {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '[' => {
                i += 1;
                Tok::LBracket
            }
            ']' => {
                i += 1;
                Tok::RBracket
            }
            '"' | '\'' => {
                let quote = ch;
                i += 1;
                let mut s = String::new();
                loop {
                    match c.get(i) {
                        None => return Err(error_at(pos, "end of query", "unterminated string")),
                        Some('\\') => {
                            match c.get(i + 1) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&o) => s.push(o),
                                None => {}
                            }
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&o) => {
                            s.push(o);
                            i += 1;
                        }
                    }
                }
                Tok::Str(s)
            }
            '`' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match c.get(i) {
                        None => return Err(error_at(pos, "end of query", "unterminated `field`")),
                        Some('`') => {
                            i += 1;
                            break;
                        }
                        Some(&o) => {
                            s.push(o);
                            i += 1;
                        }
                    }
                }
                Tok::Ident(s)
            }
            '/' if !prev_operand || after_parse_field => {
                i += 1;
                let mut s = String::new();
                loop {
                    match c.get(i) {
                        None => {
                            return Err(error_at(
                                pos,
                                "end of query",
                                "unterminated regular expression",
                            ))
                        }
                        Some('\\') if c.get(i + 1) == Some(&'/') => {
                            s.push('/');
                            i += 2;
                        }
                        Some('\\') => {
                            s.push('\\');
                            if let Some(&n) = c.get(i + 1) {
                                s.push(n);
                            }
                            i += 2;
                        }
                        Some('/') => {
                            i += 1;
                            break;
                        }
                        Some(&o) => {
                            s.push(o);
                            i += 1;
                        }
                    }
                }
                Tok::Regex(s)
            }
            '0'..='9' | '.' if ch != '.' || c.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let start = i;
                while c.get(i).is_some_and(|d| d.is_ascii_digit() || *d == '.') {
                    i += 1;
                }
                if matches!(c.get(i), Some('e' | 'E'))
                    && c.get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '-' || *d == '+')
                {
                    i += 2;
                    while c.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
                let text: String = c[start..i].iter().collect();
                let n: f64 = text
                    .parse()
                    .map_err(|_| error_at(pos, &text, "invalid number"))?;
                let ustart = i;
                while c.get(i).is_some_and(|d| d.is_ascii_alphabetic()) {
                    i += 1;
                }
                if i > ustart {
                    let unit: String = c[ustart..i].iter().collect();
                    let ms = duration_unit(&unit).ok_or_else(|| {
                        error_at(pos, &format!("{text}{unit}"), "invalid time unit")
                    })?;
                    Tok::Duration((n * ms as f64) as i64)
                } else {
                    Tok::Num(n)
                }
            }
            c0 if c0.is_alphabetic() || c0 == '_' || c0 == '@' || c0 == '$' => {
                let start = i;
                while c
                    .get(i)
                    .is_some_and(|d| d.is_alphanumeric() || matches!(d, '_' | '@' | '.' | '$'))
                {
                    i += 1;
                }
                Tok::Ident(c[start..i].iter().collect())
            }
            _ => {
                let two: String = c[i..(i + 2).min(c.len())].iter().collect();
                let op: &'static str = match two.as_str() {
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "=~" => "=~",
                    "==" => "=",
                    _ => match ch {
                        '=' => "=",
                        '<' => "<",
                        '>' => ">",
                        '+' => "+",
                        '-' => "-",
                        '*' => "*",
                        '/' => "/",
                        '%' => "%",
                        '^' => "^",
                        '!' => "!",
                        _ => return Err(error_at(pos, &ch.to_string(), "unrecognized character")),
                    },
                };
                i += if ["!=", "<=", ">=", "=~", "=="].contains(&two.as_str()) {
                    2
                } else {
                    1
                };
                Tok::Op(op)
            }
        };
        out.push(Spanned { tok, pos, end: i });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_versus_division_and_durations() {
        let t: Vec<Tok> =
            lex("filter @message like /ERR\\/OR/ | stats count(*) by bin(5m) | fields a / 2")
                .unwrap()
                .into_iter()
                .map(|s| s.tok)
                .collect();
        assert!(t.contains(&Tok::Regex("ERR/OR".into())));
        assert!(t.contains(&Tok::Duration(300_000)));
        assert!(t.contains(&Tok::Op("/")));
        let p: Vec<Tok> = lex("parse @message /user=(?<user>\\S+)/")
            .unwrap()
            .into_iter()
            .map(|s| s.tok)
            .collect();
        assert_eq!(p[2], Tok::Regex("user=(?<user>\\S+)".into()));
    }

    #[test]
    fn errors_carry_positions() {
        let e = lex("fields a | filter b = \"open").unwrap_err();
        assert_eq!(e.kind, "MalformedQueryException");
        assert!(e.message.contains("position 23"), "{}", e.message);
        assert!(lex("fields 5parsecs")
            .unwrap_err()
            .message
            .contains("time unit"));
        let t: Vec<Tok> = lex("# top\nfields a # trailing 'quote\n| limit 2hrs")
            .unwrap()
            .into_iter()
            .map(|s| s.tok)
            .collect();
        assert_eq!(
            t,
            [
                Tok::Ident("fields".into()),
                Tok::Ident("a".into()),
                Tok::Pipe,
                Tok::Ident("limit".into()),
                Tok::Duration(7_200_000)
            ]
        );
        assert_eq!(
            lex("bin(1qtr)").unwrap()[2].tok,
            Tok::Duration(91 * 86_400_000)
        );
        assert_eq!(lex("bin(30msec)").unwrap()[2].tok, Tok::Duration(30));
        assert!(lex("fields a ; b")
            .unwrap_err()
            .message
            .contains("position 10"));
    }
}
