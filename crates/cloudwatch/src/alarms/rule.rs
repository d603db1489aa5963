//! The `AlarmRule` language of composite alarms (API reference, `PutCompositeAlarm`):
//!
//! ```text
//! rule    := or
//! or      := and ("OR" and)*
//! and     := not ("AND" not)*
//! not     := "NOT" not | primary
//! primary := "(" rule ")" | "TRUE" | "FALSE" | state "(" alarm ")"
//! state   := "ALARM" | "OK" | "INSUFFICIENT_DATA"
//! alarm   := "quoted name or ARN" | bare name or ARN (up to the closing parenthesis)
//! ```
//!
//! Keywords are uppercase. Quoted names may escape `"` and `\` with a backslash. Limits: at most
//! 100 distinct child alarms and 500 elements (child alarms, `TRUE`/`FALSE` and parentheses), as
//! the API reference states; nesting is capped so hostile input cannot exhaust the stack.

use super::model::StateValue;

/// Most distinct alarms one rule may reference.
pub const MAX_CHILDREN: usize = 100;
/// Most elements (alarm references, TRUE/FALSE, parentheses) in one rule.
pub const MAX_ELEMENTS: usize = 500;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 100;

/// A parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Const(bool),
    /// `ALARM(x)`, `OK(x)`, `INSUFFICIENT_DATA(x)`; the reference is the name or ARN as written.
    State(StateValue, String),
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

/// A syntax error, with a message for the caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    elements: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while self
            .src
            .as_bytes()
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// Consume `word` if it is the next whole word.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with(word)
            && !rest
                .as_bytes()
                .get(word.len())
                .is_some_and(|&b| is_word_byte(b))
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn symbol(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.src.as_bytes().get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str) -> RuleError {
        RuleError(format!(
            "Error in alarm rule at position {}: {what}.",
            self.pos + 1
        ))
    }

    fn count_element(&mut self) -> Result<(), RuleError> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(RuleError(format!(
                "The alarm rule has more than {MAX_ELEMENTS} elements."
            )));
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Rule, RuleError> {
        let mut items = vec![self.and(depth)?];
        while self.keyword("OR") {
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Rule::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Rule, RuleError> {
        let mut items = vec![self.not(depth)?];
        while self.keyword("AND") {
            items.push(self.not(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Rule::And(items)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Rule, RuleError> {
        if depth > MAX_DEPTH {
            return Err(self.error("the rule is nested too deeply"));
        }
        if self.keyword("NOT") {
            return Ok(Rule::Not(Box::new(self.not(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Rule, RuleError> {
        if self.symbol(b'(') {
            self.count_element()?;
            let inner = self.or(depth + 1)?;
            if !self.symbol(b')') {
                return Err(self.error("expected ')'"));
            }
            return Ok(inner);
        }
        if self.keyword("TRUE") {
            self.count_element()?;
            return Ok(Rule::Const(true));
        }
        if self.keyword("FALSE") {
            self.count_element()?;
            return Ok(Rule::Const(false));
        }
        for state in [
            StateValue::Alarm,
            StateValue::Ok,
            StateValue::InsufficientData,
        ] {
            if self.keyword(state.as_str()) {
                if !self.symbol(b'(') {
                    return Err(self.error(&format!("expected '(' after {}", state.as_str())));
                }
                self.count_element()?;
                let name = self.alarm_ref()?;
                if !self.symbol(b')') {
                    return Err(self.error("expected ')'"));
                }
                return Ok(Rule::State(state, name));
            }
        }
        if self.rest().trim().is_empty() {
            Err(self.error("unexpected end of rule"))
        } else {
            Err(self.error(
                "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '('",
            ))
        }
    }

    fn alarm_ref(&mut self) -> Result<String, RuleError> {
        self.skip_ws();
        let bytes = self.src.as_bytes();
        if bytes.get(self.pos) == Some(&b'"') {
            self.pos += 1;
            let mut out = String::new();
            let mut chars = self.rest().char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos += i + 1;
                        return non_empty(out).ok_or_else(|| self.error("empty alarm name"));
                    }
                    '\\' => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => break,
                    },
                    c => out.push(c),
                }
            }
            return Err(self.error("unterminated quoted alarm name"));
        }
        let rest = self.rest();
        let end = rest.find(')').unwrap_or(rest.len());
        let name = rest[..end].trim().to_string();
        self.pos += end;
        non_empty(name).ok_or_else(|| self.error("expected an alarm name"))
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Parse a rule.
pub fn parse(src: &str) -> Result<Rule, RuleError> {
    let mut p = Parser {
        src,
        pos: 0,
        elements: 0,
    };
    let rule = p.or(0)?;
    p.skip_ws();
    if p.pos < src.len() {
        return Err(p.error("unexpected text after the end of the rule"));
    }
    Ok(rule)
}

impl Rule {
    /// Every alarm reference, in order of appearance (duplicates kept).
    pub fn references(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Rule::Const(_) => {}
            Rule::State(_, name) => out.push(name),
            Rule::Not(inner) => inner.collect(out),
            Rule::And(items) | Rule::Or(items) => items.iter().for_each(|r| r.collect(out)),
        }
    }

    /// Evaluate with the current states of the referenced alarms (by reference as written). An
    /// unknown alarm satisfies no state function.
    pub fn eval(&self, state_of: &dyn Fn(&str) -> Option<StateValue>) -> bool {
        match self {
            Rule::Const(b) => *b,
            Rule::State(want, name) => state_of(name) == Some(*want),
            Rule::Not(inner) => !inner.eval(state_of),
            Rule::And(items) => items.iter().all(|r| r.eval(state_of)),
            Rule::Or(items) => items.iter().any(|r| r.eval(state_of)),
        }
    }

    /// The references whose state function is true now (the alarms that "trigger" the rule).
    pub fn satisfied<'a>(&'a self, state_of: &dyn Fn(&str) -> Option<StateValue>) -> Vec<&'a str> {
        let mut seen = std::collections::HashSet::new();
        self.references()
            .into_iter()
            .filter(|name| seen.insert(*name))
            .filter(|name| {
                let mut hit = false;
                self.visit_states(&mut |state, n| {
                    if n == *name && state_of(n) == Some(state) {
                        hit = true;
                    }
                });
                hit
            })
            .collect()
    }

    fn visit_states<'a>(&'a self, f: &mut dyn FnMut(StateValue, &'a str)) {
        match self {
            Rule::Const(_) => {}
            Rule::State(s, n) => f(*s, n),
            Rule::Not(inner) => inner.visit_states(f),
            Rule::And(items) | Rule::Or(items) => items.iter().for_each(|r| r.visit_states(f)),
        }
    }
}

/// The alarm name a rule reference designates in `account`/`region`: a name as is, or the name of a
/// CloudWatch alarm ARN of that account and region (`None` for an ARN elsewhere).
pub fn resolve_ref<'a>(reference: &'a str, account: &str, region: &str) -> Option<&'a str> {
    if !reference.starts_with("arn:") {
        return Some(reference);
    }
    let mut parts = reference.splitn(7, ':');
    let _arn = parts.next()?;
    let _partition = parts.next()?;
    let service = parts.next()?;
    let r = parts.next()?;
    let a = parts.next()?;
    let kind = parts.next()?;
    let name = parts.next()?;
    (service == "cloudwatch" && r == region && a == account && kind == "alarm" && !name.is_empty())
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(name: &str) -> Option<StateValue> {
        match name {
            "cpu" => Some(StateValue::Alarm),
            "disk" => Some(StateValue::Ok),
            "deploy" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }

    #[test]
    fn parses_and_evaluates_the_documented_examples() {
        for (rule, want) in [
            ("ALARM(cpu) AND ALARM(disk)", false),
            ("ALARM(cpu) AND NOT ALARM(deploy)", true),
            ("(ALARM(cpu) OR ALARM(disk)) AND OK(disk)", true),
            ("TRUE", true),
            ("FALSE", false),
            ("NOT FALSE AND INSUFFICIENT_DATA(\"deploy\")", true),
            ("ALARM(\"cpu\") OR FALSE", true),
            ("OK( disk )", true),
            ("ALARM(unknown)", false),
            ("NOT NOT ALARM(cpu)", true),
        ] {
            let parsed = parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
            assert_eq!(parsed.eval(&states), want, "{rule}");
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        // TRUE OR FALSE AND FALSE == TRUE OR (FALSE AND FALSE)
        assert!(parse("TRUE OR FALSE AND FALSE").unwrap().eval(&states));
        assert!(!parse("(TRUE OR FALSE) AND FALSE").unwrap().eval(&states));
        assert!(!parse("NOT TRUE OR FALSE").unwrap().eval(&states));
    }

    #[test]
    fn references_quoted_names_and_arns() {
        let r = parse(
            "ALARM(\"a \\\"quoted\\\" name\") OR OK(arn:aws:cloudwatch:us-east-1:123456789012:alarm:x:y)",
        )
        .unwrap();
        let refs = r.references();
        assert_eq!(refs[0], "a \"quoted\" name");
        assert_eq!(
            resolve_ref(refs[1], "123456789012", "us-east-1"),
            Some("x:y")
        );
        assert_eq!(resolve_ref(refs[1], "123456789012", "eu-west-1"), None);
        assert_eq!(resolve_ref("plain", "1", "r"), Some("plain"));
    }

    #[test]
    fn rejects_malformed_rules() {
        for bad in [
            "",
            "ALARM",
            "ALARM()",
            "ALARM(x",
            "ALARM(x) AND",
            "alarm(x)",
            "ALARM(x) ALARM(y)",
            "(TRUE",
            "TRUE)",
            "ALARM(\"unterminated)",
            "MAYBE(x)",
            "TRUEISH",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn limits_elements_and_depth() {
        let many = vec!["TRUE"; MAX_ELEMENTS + 1].join(" OR ");
        assert!(parse(&many).unwrap_err().0.contains("500 elements"));
        let ok = vec!["TRUE"; MAX_ELEMENTS].join(" OR ");
        assert!(parse(&ok).is_ok());
        let deep = format!("{}TRUE", "NOT ".repeat(10_000));
        assert!(parse(&deep).is_err());
        let parens = format!("{}TRUE{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&parens).is_err());
    }

    #[test]
    fn satisfied_lists_the_triggering_references() {
        let r = parse("ALARM(cpu) OR ALARM(disk) OR OK(disk)").unwrap();
        assert_eq!(r.satisfied(&states), vec!["cpu", "disk"]);
    }
}
