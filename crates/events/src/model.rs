//! The stored records of the core — event buses and rules (with their targets and tags) — and the
//! in-memory registry built from them: per bus its rules and one compiled [`Matcher`] over the
//! patterns of its enabled rules, so PutEvents matches an event against all rules at once.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use opsloop_core::Value;
use opsloop_eventpattern::{Matcher, Pattern};
use opsloop_store::ControlStore;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::util::{self, bus_key, rule_key, DEFAULT_BUS, T_BUS, T_RULE};

/// An event bus as stored (`events.bus`, key `account|region|name`). The default bus is stored
/// only once something about it (policy, tags, description) is set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredBus {
    pub account: String,
    pub region: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Epoch seconds.
    #[serde(default)]
    pub created: f64,
    #[serde(default)]
    pub modified: f64,
    /// The resource policy document (`{"Version":..,"Statement":[..]}`), if any.
    #[serde(default)]
    pub policy: Option<Value>,
    #[serde(default)]
    pub dead_letter: Option<Value>,
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub log_config: Option<Value>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl StoredBus {
    pub fn implicit_default(account: &str, region: &str) -> StoredBus {
        StoredBus {
            account: account.to_string(),
            region: region.to_string(),
            name: DEFAULT_BUS.to_string(),
            description: None,
            created: 0.0,
            modified: 0.0,
            policy: None,
            dead_letter: None,
            kms_key: None,
            log_config: None,
            tags: Vec::new(),
        }
    }

    pub fn arn(&self) -> String {
        util::bus_arn(&self.account, &self.region, &self.name)
    }

    pub fn key(&self) -> String {
        bus_key(&self.account, &self.region, &self.name)
    }
}

/// A rule as stored (`events.rule`, key `account|region|bus|name`), its targets included.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredRule {
    pub account: String,
    pub region: String,
    pub bus: String,
    pub name: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Service principal that manages the rule (only opsloop's own services set it).
    #[serde(default)]
    pub managed_by: Option<String>,
    /// When the rule was created (ms): the anchor of `rate()` schedules.
    #[serde(default)]
    pub created_ms: i64,
    /// When the schedule was last set (ms): rate() schedules count from it.
    #[serde(default)]
    pub schedule_anchor_ms: i64,
    /// The targets as given to PutTargets (documents of the model's `Target` shape), shared with
    /// the deliveries made to them.
    #[serde(default)]
    pub targets: Vec<Arc<crate::targets::Target>>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The rule's lock-free metric counters, looked up on first use (not stored).
    #[serde(skip)]
    pub counters: RuleCountersCell,
}

/// A rule's metric counters, set on first use; not part of what the rule is (two rules equal in
/// everything else are equal).
#[derive(Debug, Clone, Default)]
pub struct RuleCountersCell(OnceLock<Arc<crate::metrics::RuleCounters>>);

impl RuleCountersCell {
    /// The counters, from `metrics` the first time.
    pub fn get(
        &self,
        metrics: &crate::metrics::Metrics,
        rule: &StoredRule,
    ) -> &Arc<crate::metrics::RuleCounters> {
        self.0.get_or_init(|| {
            metrics.rule_counters(&rule.account, &rule.region, &rule.bus, &rule.name)
        })
    }
}

impl PartialEq for RuleCountersCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl StoredRule {
    pub fn arn(&self) -> String {
        util::rule_arn(&self.account, &self.region, &self.bus, &self.name)
    }

    pub fn key(&self) -> String {
        rule_key(&self.account, &self.region, &self.bus, &self.name)
    }

    pub fn enabled(&self) -> bool {
        self.state != "DISABLED"
    }

    /// The `Rule` / `DescribeRule` document.
    pub fn doc(&self) -> Value {
        let mut d = serde_json::Map::new();
        d.insert("Name".into(), self.name.clone().into());
        d.insert("Arn".into(), self.arn().into());
        if let Some(p) = &self.pattern {
            d.insert("EventPattern".into(), p.clone().into());
        }
        if let Some(s) = &self.schedule {
            d.insert("ScheduleExpression".into(), s.clone().into());
        }
        d.insert("State".into(), self.state.clone().into());
        if let Some(x) = &self.description {
            d.insert("Description".into(), x.clone().into());
        }
        if let Some(x) = &self.role_arn {
            d.insert("RoleArn".into(), x.clone().into());
        }
        if let Some(x) = &self.managed_by {
            d.insert("ManagedBy".into(), x.clone().into());
        }
        d.insert("EventBusName".into(), self.bus.clone().into());
        Value::Object(d)
    }
}

/// One bus in memory.
#[derive(Default)]
pub struct BusState {
    /// `None` for a default bus that was never stored.
    pub bus: Option<StoredBus>,
    /// By name. A hash map: delivery looks a rule up for every matched event; listings sort.
    pub rules: HashMap<String, Arc<StoredRule>>,
    /// Patterns of the enabled pattern rules, by rule name (shared with the events that match).
    pub matcher: Matcher<Arc<str>>,
}

impl BusState {
    /// (Re)index `rule` in the matcher (enabled pattern rules only).
    fn index(&mut self, rule: &StoredRule) {
        let name: Arc<str> = rule.name.as_str().into();
        self.matcher.remove(&name);
        if !rule.enabled() {
            return;
        }
        if let Some(p) = &rule.pattern {
            match opsloop_eventpattern::parse(p) {
                Ok(pat) => self.matcher.add(name, &pat),
                Err(e) => {
                    tracing::warn!(rule = %rule.name, error = %e, "stored event pattern no longer parses")
                }
            }
        }
    }
}

/// All buses and rules of this process, by bus key.
#[derive(Default)]
pub struct Registry {
    pub buses: RwLock<HashMap<String, BusState>>,
}

impl Registry {
    /// Load everything from the control store.
    pub fn load(control: &dyn ControlStore) -> Result<Registry, String> {
        let reg = Registry::default();
        {
            let mut map = reg.buses.write();
            for (_, v) in scan_all(control, T_BUS)? {
                let bus: StoredBus = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                let key = bus.key();
                map.entry(key).or_default().bus = Some(bus);
            }
            for (_, v) in scan_all(control, T_RULE)? {
                let rule: StoredRule = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                let st = map
                    .entry(bus_key(&rule.account, &rule.region, &rule.bus))
                    .or_default();
                st.index(&rule);
                st.rules.insert(rule.name.clone(), Arc::new(rule));
            }
        }
        Ok(reg)
    }

    pub fn clear(&self) {
        self.buses.write().clear();
    }

    /// The bus, if it exists (the default bus always does).
    pub fn bus(&self, account: &str, region: &str, name: &str) -> Option<StoredBus> {
        let map = self.buses.read();
        match map
            .get(&bus_key(account, region, name))
            .and_then(|b| b.bus.clone())
        {
            Some(b) => Some(b),
            None if name == DEFAULT_BUS => Some(StoredBus::implicit_default(account, region)),
            None => None,
        }
    }

    pub fn put_bus(&self, bus: StoredBus) {
        let key = bus.key();
        self.buses.write().entry(key).or_default().bus = Some(bus);
    }

    /// Remove a bus and its rules from memory.
    pub fn remove_bus(&self, account: &str, region: &str, name: &str) {
        self.buses.write().remove(&bus_key(account, region, name));
    }

    pub fn rule(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
    ) -> Option<Arc<StoredRule>> {
        self.buses
            .read()
            .get(&bus_key(account, region, bus))
            .and_then(|b| b.rules.get(name).cloned())
    }

    /// Rules of a bus, sorted by name.
    pub fn rules(&self, account: &str, region: &str, bus: &str) -> Vec<Arc<StoredRule>> {
        self.buses
            .read()
            .get(&bus_key(account, region, bus))
            .map(|b| {
                let mut v: Vec<Arc<StoredRule>> = b.rules.values().cloned().collect();
                v.sort_unstable_by(|x, y| x.name.cmp(&y.name));
                v
            })
            .unwrap_or_default()
    }

    pub fn rule_count(&self, account: &str, region: &str, bus: &str) -> usize {
        self.buses
            .read()
            .get(&bus_key(account, region, bus))
            .map(|b| b.rules.len())
            .unwrap_or(0)
    }

    pub fn put_rule(&self, rule: StoredRule) {
        let mut map = self.buses.write();
        let st = map
            .entry(bus_key(&rule.account, &rule.region, &rule.bus))
            .or_default();
        st.index(&rule);
        st.rules.insert(rule.name.clone(), Arc::new(rule));
    }

    pub fn remove_rule(&self, account: &str, region: &str, bus: &str, name: &str) {
        if let Some(st) = self.buses.write().get_mut(&bus_key(account, region, bus)) {
            st.matcher.remove(&Arc::from(name));
            st.rules.remove(name);
        }
    }

    /// Names of the enabled rules of bus whose patterns match `event`.
    pub fn matching(&self, account: &str, region: &str, bus: &str, event: &Value) -> Vec<Arc<str>> {
        match self.buses.read().get(&bus_key(account, region, bus)) {
            Some(st) if !st.matcher.is_empty() => st.matcher.matches(event),
            _ => Vec::new(),
        }
    }

    /// [`Registry::matching`] for an event given as JSON text.
    pub fn matching_json(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        event: &[u8],
    ) -> Vec<Arc<str>> {
        match self.buses.read().get(&bus_key(account, region, bus)) {
            Some(st) if !st.matcher.is_empty() => st.matcher.matches_json(event),
            _ => Vec::new(),
        }
    }

    /// All enabled schedule rules.
    pub fn schedule_rules(&self) -> Vec<Arc<StoredRule>> {
        self.buses
            .read()
            .values()
            .flat_map(|b| b.rules.values())
            .filter(|r| r.schedule.is_some() && r.enabled())
            .cloned()
            .collect()
    }

    /// Custom buses (and stored default buses) of an account/region, sorted by name.
    pub fn bus_list(&self, account: &str, region: &str) -> Vec<StoredBus> {
        let mut out: Vec<StoredBus> = self
            .buses
            .read()
            .values()
            .filter_map(|b| b.bus.clone())
            .filter(|b| b.account == account && b.region == region)
            .collect();
        if !out.iter().any(|b| b.name == DEFAULT_BUS) {
            out.push(StoredBus::implicit_default(account, region));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Every row of `table`.
pub fn scan_all(control: &dyn ControlStore, table: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = control
            .scan(table, "", after.as_deref(), 1000)
            .map_err(|e| e.to_string())?;
        let n = rows.len();
        after = rows.last().map(|(k, _)| k.clone());
        out.extend(rows);
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// Parse a pattern, answering AWS's `InvalidEventPatternException`.
pub fn parse_pattern(text: &str) -> Result<Pattern, opsloop_core::ApiError> {
    opsloop_eventpattern::parse(text)
        .map_err(|e| opsloop_core::ApiError::new("InvalidEventPatternException", e.0))
}
