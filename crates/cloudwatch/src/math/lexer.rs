//! Tokens of a metric math expression.
//!
//! Identifiers (query Ids) "can include numbers, letters, an underscore, and must start with a
//! lowercase letter"; function names are written in uppercase, so a word that starts with an uppercase
//! letter is a function name or keyword (`AND`, `OR`, `REPEAT`, `ASC`, ...). Numbers take an optional
//! fraction and exponent (`1e-36`). Strings are single- or double-quoted and taken verbatim (no escape
//! processing: a `SEARCH` query's own backslash escapes must reach the search parser untouched).
//! Positions are 1-based character positions.

use super::MathError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Number(f64),
    /// A word starting with a lowercase letter: a query Id.
    Ident(String),
    /// A word starting with an uppercase letter: function name or keyword.
    Word(String),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    EqEq,
    NotEq,
    Le,
    Ge,
    Lt,
    Gt,
    And,
    Or,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Number(n) => format!("number {n}"),
            Tok::Ident(s) => format!("identifier '{s}'"),
            Tok::Word(s) => format!("'{s}'"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Caret => "'^'".into(),
            Tok::EqEq => "'=='".into(),
            Tok::NotEq => "'!='".into(),
            Tok::Le => "'<='".into(),
            Tok::Ge => "'>='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Gt => "'>'".into(),
            Tok::And => "'AND'".into(),
            Tok::Or => "'OR'".into(),
            Tok::Eof => "end of expression".into(),
        }
    }
}

/// A token and the 1-based character position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

pub(crate) fn syntax_error(pos: usize, detail: impl std::fmt::Display) -> MathError {
    MathError::new(format!("Syntax error at position {pos}: {detail}"))
}

/// Split an expression into tokens; the last token is always `Eof`.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, MathError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = |next: char| chars.get(i + 1) == Some(&next);
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '^' => (Tok::Caret, 1),
            '=' if two('=') => (Tok::EqEq, 2),
            '!' if two('=') => (Tok::NotEq, 2),
            '<' if two('=') => (Tok::Le, 2),
            '>' if two('=') => (Tok::Ge, 2),
            '<' => (Tok::Lt, 1),
            '>' => (Tok::Gt, 1),
            '&' if two('&') => (Tok::And, 2),
            '|' if two('|') => (Tok::Or, 2),
            '\'' | '"' | '\u{201C}' => {
                let close = if c == '\u{201C}' { '\u{201D}' } else { c };
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&ch| ch == close)
                    .map(|off| start + off)
                    .ok_or_else(|| syntax_error(pos, "unterminated string literal"))?;
                let text: String = chars[start..end].iter().collect();
                (Tok::Str(text), end + 1 - i)
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let len = number_len(&chars[i..]);
                let text: String = chars[i..i + len].iter().collect();
                if chars
                    .get(i + len)
                    .is_some_and(|&n| n.is_alphanumeric() || n == '_' || n == '.')
                {
                    return Err(syntax_error(
                        pos,
                        format!("invalid number '{}'", word_run(&chars[i..])),
                    ));
                }
                let value: f64 = text
                    .parse()
                    .map_err(|_| syntax_error(pos, format!("invalid number '{text}'")))?;
                if !value.is_finite() {
                    return Err(syntax_error(
                        pos,
                        format!("number '{text}' is out of range"),
                    ));
                }
                (Tok::Number(value), len)
            }
            c if c.is_ascii_alphabetic() => {
                let len = chars[i..]
                    .iter()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || **ch == '_')
                    .count();
                let word: String = chars[i..i + len].iter().collect();
                if chars.get(i + len).is_some_and(|n| n.is_alphanumeric()) {
                    return Err(syntax_error(
                        pos + len,
                        format!("unexpected character '{}'", chars[i + len]),
                    ));
                }
                let tok = if c.is_ascii_lowercase() {
                    Tok::Ident(word)
                } else if word == "AND" {
                    Tok::And
                } else if word == "OR" {
                    Tok::Or
                } else {
                    Tok::Word(word)
                };
                (tok, len)
            }
            '_' => {
                return Err(syntax_error(
                    pos,
                    "an Id must start with a lowercase letter, not '_'",
                ))
            }
            other => return Err(syntax_error(pos, format!("unexpected character '{other}'"))),
        };
        out.push(Token { tok, pos });
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len() + 1,
    });
    Ok(out)
}

/// Length of the numeric literal at the start of `chars`: digits, optional `.digits`, optional
/// exponent (only taken when digits follow the `e` and optional sign).
fn number_len(chars: &[char]) -> usize {
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut n = digits(0);
    if chars.get(n) == Some(&'.') {
        n += 1 + digits(n + 1);
    }
    if matches!(chars.get(n), Some('e') | Some('E')) {
        let mut m = n + 1;
        if matches!(chars.get(m), Some('+') | Some('-')) {
            m += 1;
        }
        let exp_digits = digits(m);
        if exp_digits > 0 {
            n = m + exp_digits;
        }
    }
    n
}

/// The run of word-ish characters at the start of `chars`, for error messages.
fn word_run(chars: &[char]) -> String {
    chars
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '.')
        .take(40)
        .collect()
}
