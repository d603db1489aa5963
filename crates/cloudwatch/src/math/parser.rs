//! Recursive-descent parser for metric math expressions.
//!
//! Grammar (loosest first):
//!
//! ```text
//! or      := and (("OR" | "||") and)*
//! and     := cmp (("AND" | "&&") cmp)*
//! cmp     := add (("==" | "!=" | "<=" | ">=" | "<" | ">") add)*
//! add     := mul (("+" | "-") mul)*
//! mul     := unary (("*" | "/") unary)*
//! unary   := "-" unary | power
//! power   := primary ("^" (primary | "-" unary))*
//! primary := number | id | FUNC "(" args ")" | "(" or ")" | "[" or ("," or)* "]"
//! ```
//!
//! String literals and bare keywords (`REPEAT`, `DESC`, ...) are only accepted as direct function
//! arguments, where the function table allows them. Every nested construct counts toward
//! [`MAX_NESTING`], so hostile input gets an error rather than a stack overflow.

use super::ast::{ArgStyle, BinOp, Func, Node};
use super::lexer::{syntax_error, tokenize, Tok, Token};
use super::search::parse_search;
use super::{MathError, MAX_NESTING};

/// Keywords FILL accepts as its second argument.
const FILL_KEYWORDS: [&str; 2] = ["REPEAT", "LINEAR"];
/// Keywords SORT accepts as its sort criterion.
pub(crate) const SORT_FUNCTIONS: [&str; 5] = ["AVG", "MIN", "MAX", "SUM", "STDDEV"];
/// Keywords SORT accepts as its order.
const SORT_ORDERS: [&str; 2] = ["ASC", "DESC"];

pub(crate) fn parse_expression(input: &str) -> Result<Node, MathError> {
    if input.trim().is_empty() {
        return Err(MathError::new("The expression is empty"));
    }
    let head: String = input.trim_start().chars().take(7).collect();
    if head.to_ascii_uppercase().starts_with("SELECT")
        && head.chars().nth(6).is_none_or(char::is_whitespace)
    {
        return Err(MathError::new(
            "Metrics Insights queries (SELECT ...) are not supported by this CloudWatch implementation",
        ));
    }
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let node = p.parse_or()?;
    let end = p.peek();
    if end.tok != Tok::Eof {
        return Err(syntax_error(
            end.pos,
            format!("unexpected {}", end.tok.describe()),
        ));
    }
    Ok(node)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `tokenize` always ends with Eof and `bump` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.at += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, context: &str) -> Result<Token, MathError> {
        let t = self.bump();
        if t.tok == want {
            Ok(t)
        } else {
            Err(syntax_error(
                t.pos,
                format!(
                    "expected {} {context}, found {}",
                    want.describe(),
                    t.tok.describe()
                ),
            ))
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(syntax_error(
                pos,
                format!("the expression is nested too deeply (at most {MAX_NESTING} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A left-associative chain of operators of one precedence level.
    fn chain(
        &mut self,
        op_of: fn(&Tok) -> Option<BinOp>,
        next: fn(&mut Self) -> Result<Node, MathError>,
    ) -> Result<Node, MathError> {
        let first = next(self)?;
        let mut rest = Vec::new();
        while let Some(op) = op_of(&self.peek().tok) {
            self.bump();
            rest.push((op, next(self)?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Chain {
                first: Box::new(first),
                rest,
            }
        })
    }

    fn parse_or(&mut self) -> Result<Node, MathError> {
        self.chain(|t| (*t == Tok::Or).then_some(BinOp::Or), Self::parse_and)
    }

    fn parse_and(&mut self) -> Result<Node, MathError> {
        self.chain(|t| (*t == Tok::And).then_some(BinOp::And), Self::parse_cmp)
    }

    fn parse_cmp(&mut self) -> Result<Node, MathError> {
        self.chain(
            |t| match t {
                Tok::EqEq => Some(BinOp::Eq),
                Tok::NotEq => Some(BinOp::Ne),
                Tok::Lt => Some(BinOp::Lt),
                Tok::Le => Some(BinOp::Le),
                Tok::Gt => Some(BinOp::Gt),
                Tok::Ge => Some(BinOp::Ge),
                _ => None,
            },
            Self::parse_add,
        )
    }

    fn parse_add(&mut self) -> Result<Node, MathError> {
        self.chain(
            |t| match t {
                Tok::Plus => Some(BinOp::Add),
                Tok::Minus => Some(BinOp::Sub),
                _ => None,
            },
            Self::parse_mul,
        )
    }

    fn parse_mul(&mut self) -> Result<Node, MathError> {
        self.chain(
            |t| match t {
                Tok::Star => Some(BinOp::Mul),
                Tok::Slash => Some(BinOp::Div),
                _ => None,
            },
            Self::parse_unary,
        )
    }

    fn parse_unary(&mut self) -> Result<Node, MathError> {
        if self.peek().tok == Tok::Minus {
            let t = self.bump();
            self.enter(t.pos)?;
            let inner = self.parse_unary()?;
            self.leave();
            return Ok(Node::Neg(Box::new(inner)));
        }
        self.parse_power()
    }

    fn parse_power(&mut self) -> Result<Node, MathError> {
        let base = self.parse_primary()?;
        if self.peek().tok != Tok::Caret {
            return Ok(base);
        }
        let mut operands = vec![base];
        while self.peek().tok == Tok::Caret {
            self.bump();
            let operand = if self.peek().tok == Tok::Minus {
                self.parse_unary()?
            } else {
                self.parse_primary()?
            };
            operands.push(operand);
        }
        Ok(Node::Pow(operands))
    }

    fn parse_primary(&mut self) -> Result<Node, MathError> {
        let t = self.bump();
        match t.tok {
            Tok::Number(n) => Ok(Node::Number(n)),
            Tok::Ident(name) => {
                if self.peek().tok == Tok::LParen {
                    return Err(syntax_error(
                        t.pos,
                        format!(
                            "unknown function '{name}' (function names are written in uppercase)"
                        ),
                    ));
                }
                Ok(Node::Id { name, pos: t.pos })
            }
            Tok::Word(name) => {
                if self.peek().tok != Tok::LParen {
                    return Err(syntax_error(
                        t.pos,
                        format!("unexpected '{name}' (Ids must start with a lowercase letter)"),
                    ));
                }
                let func = Func::from_name(&name)
                    .ok_or_else(|| syntax_error(t.pos, format!("unknown function '{name}'")))?;
                self.parse_call(func, t.pos)
            }
            Tok::LParen => {
                self.enter(t.pos)?;
                let inner = self.parse_or()?;
                self.expect(Tok::RParen, "to close '('")?;
                self.leave();
                Ok(inner)
            }
            Tok::LBracket => {
                self.enter(t.pos)?;
                if self.peek().tok == Tok::RBracket {
                    return Err(syntax_error(
                        self.peek().pos,
                        "an array must contain at least one element",
                    ));
                }
                let mut items = vec![self.parse_or()?];
                while self.peek().tok == Tok::Comma {
                    self.bump();
                    items.push(self.parse_or()?);
                }
                self.expect(Tok::RBracket, "to close '['")?;
                self.leave();
                Ok(Node::Array(items))
            }
            Tok::Str(s) => Err(syntax_error(
                t.pos,
                format!("a string ('{s}') is only allowed as a function argument"),
            )),
            other => Err(syntax_error(
                t.pos,
                format!("unexpected {}", other.describe()),
            )),
        }
    }

    /// Parse `( args )` after a function name at `pos`.
    fn parse_call(&mut self, func: Func, pos: usize) -> Result<Node, MathError> {
        self.expect(Tok::LParen, &format!("after {}", func.name()))?;
        self.enter(pos)?;
        let style = func.arg_style();
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.parse_arg(func, style, args.len())?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.expect(
            Tok::RParen,
            &format!("to close the arguments of {}", func.name()),
        )?;
        self.leave();
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(syntax_error(
                pos,
                format!(
                    "{} takes {want} argument(s), {} given",
                    func.name(),
                    args.len()
                ),
            ));
        }
        if func == Func::Search {
            return build_search(args, pos);
        }
        Ok(Node::Call { func, args, pos })
    }

    /// One argument: a string or keyword where the function allows it (and it stands alone),
    /// otherwise an expression.
    fn parse_arg(&mut self, func: Func, style: ArgStyle, index: usize) -> Result<Node, MathError> {
        let standalone = matches!(self.peek_at(1), Tok::Comma | Tok::RParen);
        let t = self.peek().clone();
        match (&t.tok, standalone) {
            (Tok::Str(s), true) => {
                let allowed = match style {
                    ArgStyle::Metrics | ArgStyle::Any => true,
                    ArgStyle::Search => index < 2,
                    _ => false,
                };
                if !allowed {
                    return Err(syntax_error(
                        t.pos,
                        format!(
                            "argument {} of {} cannot be a string",
                            index + 1,
                            func.name()
                        ),
                    ));
                }
                self.bump();
                Ok(Node::Str(s.clone()))
            }
            (Tok::Word(w), true) => {
                let allowed: &[&str] = match (style, index) {
                    (ArgStyle::Fill, 1) => &FILL_KEYWORDS,
                    (ArgStyle::Sort, 1) => &SORT_FUNCTIONS,
                    (ArgStyle::Sort, 2) => &SORT_ORDERS,
                    (ArgStyle::Any, _) => &[],
                    _ => {
                        return Err(syntax_error(
                            t.pos,
                            format!("unexpected '{w}' (Ids must start with a lowercase letter)"),
                        ))
                    }
                };
                if style != ArgStyle::Any && !allowed.contains(&w.as_str()) {
                    return Err(syntax_error(
                        t.pos,
                        format!(
                            "argument {} of {} must be one of {}, found '{w}'",
                            index + 1,
                            func.name(),
                            allowed.join(", ")
                        ),
                    ));
                }
                self.bump();
                Ok(Node::Keyword {
                    name: w.clone(),
                    pos: t.pos,
                })
            }
            _ => {
                let required_word = match (style, index) {
                    (ArgStyle::Sort, 1) => Some("a sort function (AVG, MIN, MAX, SUM or STDDEV)"),
                    (ArgStyle::Sort, 2) => Some("a sort order (ASC or DESC)"),
                    (ArgStyle::Search, 0) => Some("a quoted search expression"),
                    (ArgStyle::Search, 1) => Some("a quoted statistic"),
                    (ArgStyle::Metrics, 0) => Some("a quoted string"),
                    _ => None,
                };
                if let Some(what) = required_word {
                    return Err(syntax_error(
                        t.pos,
                        format!("argument {} of {} must be {what}", index + 1, func.name()),
                    ));
                }
                self.parse_or()
            }
        }
    }
}

/// Turn the parsed arguments of `SEARCH` into a [`Node::Search`], parsing the query text.
fn build_search(args: Vec<Node>, pos: usize) -> Result<Node, MathError> {
    let mut it = args.into_iter();
    let (Some(Node::Str(text)), Some(Node::Str(stat))) = (it.next(), it.next()) else {
        return Err(syntax_error(
            pos,
            "SEARCH takes a quoted search expression and a quoted statistic",
        ));
    };
    let query = parse_search(&text)?;
    if stat.trim().is_empty() {
        return Err(syntax_error(pos, "the statistic of SEARCH is empty"));
    }
    let period = it.next().map(Box::new);
    Ok(Node::Search {
        query,
        stat: stat.trim().to_string(),
        period,
        pos,
    })
}
