//! EventBridge event patterns (SKELETON — the eventpattern helper replaces the bodies; the public
//! signatures below are what `opsloop-events` compiles against and must stay).

use std::hash::Hash;

/// A pattern that failed validation. The message is what AWS puts in
/// `InvalidEventPatternException` (e.g. `Event pattern is not valid. Reason: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

/// One parsed, validated event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    _private: (),
}

/// Parse and validate `pattern` (JSON text) as EventBridge does.
pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
    let _ = pattern;
    Err(PatternError("not yet implemented".into()))
}

impl Pattern {
    /// Does `event` (a full EventBridge event: source, detail-type, detail, ...) match?
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        let _ = event;
        false
    }
}

/// Many patterns compiled into one matcher; `K` identifies a rule.
pub struct Matcher<K> {
    rules: Vec<(K, Pattern)>,
}

impl<K: Clone + Eq + Hash> Default for Matcher<K> {
    fn default() -> Self {
        Matcher { rules: Vec::new() }
    }
}

impl<K: Clone + Eq + Hash> Matcher<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the pattern of rule `key`.
    pub fn add(&mut self, key: K, pattern: &Pattern) {
        self.remove(&key);
        self.rules.push((key, pattern.clone()));
    }

    /// Remove rule `key`; false if it was not present.
    pub fn remove(&mut self, key: &K) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(k, _)| k != key);
        before != self.rules.len()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules whose patterns match `event`, each once, in no particular order.
    pub fn matches(&self, event: &serde_json::Value) -> Vec<K> {
        self.rules
            .iter()
            .filter(|(_, p)| p.matches(event))
            .map(|(k, _)| k.clone())
            .collect()
    }
}
