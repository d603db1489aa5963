//! The compiled many-rule matcher (first cut: every rule judged in turn).

use std::hash::Hash;

use crate::Pattern;

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

    /// The rules matching the event given as JSON text (none if it is not valid JSON).
    pub fn matches_json(&self, event: &[u8]) -> Vec<K> {
        match serde_json::from_slice::<serde_json::Value>(event) {
            Ok(v) => self.matches(&v),
            Err(_) => Vec::new(),
        }
    }
}
