//! EventBridge event patterns: `parse` validates a pattern as AWS does (the error text is what
//! `InvalidEventPatternException` carries), `Pattern::matches` judges one event, and `Matcher`
//! compiles many rules into one index so that matching an event costs little more with 10,000
//! rules than with one.
//!
//! Modules: `json` (our JSON reader: pattern text with number literals, and event bytes scanned
//! with unused members skipped), `pattern` (the language and its validation), `value` (single-value
//! tests: numbers, ranges, wildcards, CIDR, case folding), `eval` (the reference semantics of one
//! pattern), `matcher` (the compiled many-rule matcher), `index` (its per-field trigger index),
//! `num` (event numbers read in one pass, compared by approximation where that is safe), `scan`
//! (its byte scanner and pruned event copy), `bits` (64-byte quote and bracket masks the scanner
//! finds string ends and skips containers with).

mod bits;
mod eval;
mod index;
mod json;
mod matcher;
mod num;
mod pattern;
mod scan;
mod value;

pub use matcher::Matcher;
pub use pattern::{MAX_OR_COMBINATIONS, MAX_PATTERN_BYTES, MAX_WILDCARD_COMPLEXITY};

/// A pattern that failed validation. The message is what AWS puts in
/// `InvalidEventPatternException` (e.g. `Event pattern is not valid. Reason: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

impl PatternError {
    /// The reason alone, without the `Event pattern is not valid. Reason: ` prefix.
    pub fn reason(&self) -> &str {
        self.0
            .strip_prefix(pattern::INVALID_PREFIX)
            .unwrap_or(&self.0)
    }
}

/// One parsed, validated event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub(crate) root: pattern::Node,
}

/// Parse and validate `pattern` (JSON text) as EventBridge does.
pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
    match pattern::parse_root(pattern) {
        Ok(root) => Ok(Pattern { root }),
        Err(reason) => Err(PatternError(format!("{}{reason}", pattern::INVALID_PREFIX))),
    }
}

impl Pattern {
    /// Does `event` (a full EventBridge event: source, detail-type, detail, ...) match?
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        eval::node_matches(&self.root, Some(event))
    }

    /// Does the event given as JSON text match? False when the text is not valid JSON.
    pub fn matches_json(&self, event: &[u8]) -> bool {
        let mut m = Matcher::new();
        m.add((), self);
        !m.matches_json(event).is_empty()
    }
}
