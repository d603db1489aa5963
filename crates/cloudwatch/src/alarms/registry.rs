//! The in-memory view of every alarm, loaded once from the control store and kept in step with it:
//! alarms by (account, region, name), single-metric and metric-math alarms indexed by the metrics
//! they watch (so a PutMetricData finds the alarms to evaluate in O(alarms on that metric)), and
//! composite alarms indexed by their children and suppressors.
//!
//! Locking discipline: an [`Entry`]'s mutex is never taken while the registry lock is held — the
//! registry hands out `Arc<Entry>` clones and releases its lock first. Code holding an entry may
//! take the registry lock (entry → registry), never the reverse.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use opsloop_tsdb::SeriesKey;
use parking_lot::Mutex;

use super::model::{AlarmKind, StoredAlarm};
use super::rule::{self, Rule};
use crate::fetch::MetricId;
use crate::stats::{Extended, Statistic};
use crate::token::fnv1a;

/// Identity of an alarm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmKey {
    pub account: String,
    pub region: String,
    pub name: String,
}

impl AlarmKey {
    pub fn new(account: &str, region: &str, name: &str) -> Self {
        AlarmKey {
            account: account.to_string(),
            region: region.to_string(),
            name: name.to_string(),
        }
    }

    pub fn sibling(&self, name: &str) -> AlarmKey {
        AlarmKey::new(&self.account, &self.region, name)
    }

    pub fn arn(&self) -> String {
        super::model::alarm_arn(&self.account, &self.region, &self.name)
    }
}

/// Hash of a metric identity within an account and region (dimensions sorted by name).
pub fn metric_hash(
    account: &str,
    region: &str,
    namespace: &str,
    metric_name: &str,
    dims: &[(String, String)],
) -> u64 {
    let mut bytes = Vec::with_capacity(64 + dims.len() * 32);
    for part in [account, region, namespace, metric_name] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0xff);
    }
    for (n, v) in dims {
        bytes.extend_from_slice(n.as_bytes());
        bytes.push(0xfe);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0xff);
    }
    fnv1a(&bytes)
}

/// What the engine derives from an alarm's configuration.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// The watched metric of a single-metric alarm.
    pub metric: Option<MetricId>,
    pub statistic: Option<Statistic>,
    /// The percentile (0–100) of a `pNN` extended statistic.
    pub percentile: Option<f64>,
    /// Hashes of every metric the alarm reads.
    pub watched: Vec<u64>,
    /// The rule of a composite alarm.
    pub rule: Option<Rule>,
    /// Children and suppressor of a composite alarm, by name.
    pub children: BTreeSet<String>,
    pub suppressor: Option<String>,
}

impl Compiled {
    /// Derive from a stored (already validated) alarm.
    pub fn of(stored: &StoredAlarm) -> Compiled {
        let (account, region) = (&stored.account, &stored.region);
        match &stored.config.kind {
            AlarmKind::Metric(m) => {
                let mut c = Compiled::default();
                if let (Some(ns), Some(name)) = (&m.namespace, &m.metric_name) {
                    let id = MetricId::new(ns.clone(), name.clone(), m.dimensions.clone());
                    c.watched
                        .push(metric_hash(account, region, ns, name, &id.dimensions));
                    c.metric = Some(id);
                    c.statistic = m
                        .statistic
                        .as_deref()
                        .or(m.extended_statistic.as_deref())
                        .and_then(Statistic::parse);
                    if let Some(Statistic::Extended(Extended::Percentile(p))) = c.statistic {
                        c.percentile = Some(p);
                    }
                }
                for q in m.metrics.iter().flatten() {
                    let Some(metric) = q.get("MetricStat").and_then(|s| s.get("Metric")) else {
                        continue;
                    };
                    let text = |k: &str| metric.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let dims = crate::doc::dimensions_of(metric.get("Dimensions"));
                    let id =
                        MetricId::new(text("Namespace").into(), text("MetricName").into(), dims);
                    c.watched.push(metric_hash(
                        account,
                        region,
                        &id.namespace,
                        &id.metric_name,
                        &id.dimensions,
                    ));
                }
                c
            }
            AlarmKind::Composite(comp) => {
                let mut c = Compiled::default();
                if let Ok(parsed) = rule::parse(&comp.alarm_rule) {
                    for r in parsed.references() {
                        if let Some(name) = rule::resolve_ref(r, account, region) {
                            c.children.insert(name.to_string());
                        }
                    }
                    c.rule = Some(parsed);
                }
                c.suppressor = comp
                    .actions_suppressor
                    .as_deref()
                    .and_then(|s| rule::resolve_ref(s, account, region))
                    .map(str::to_string);
                c
            }
        }
    }

    /// Every alarm this one depends on (children and suppressor).
    pub fn dependencies(&self) -> impl Iterator<Item = &String> {
        self.children.iter().chain(self.suppressor.iter())
    }
}

/// Series of a single-metric alarm's metric, learnt from the store and from arriving writes.
#[derive(Debug, Default)]
pub struct SeriesCache {
    /// The watched metric and unit filter (a copy, so writers need not lock the alarm).
    pub metric: Option<MetricId>,
    pub unit: Option<String>,
    /// `None` until resolved from the store.
    pub keys: Option<Vec<SeriesKey>>,
}

impl SeriesCache {
    /// A cache for `stored`'s metric, not yet resolved.
    pub fn for_alarm(stored: &StoredAlarm, compiled: &Compiled) -> SeriesCache {
        SeriesCache {
            metric: compiled.metric.clone(),
            unit: stored.config.metric().and_then(|m| m.unit.clone()),
            keys: None,
        }
    }

    /// Whether a series belongs to the watched metric and unit.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.metric.as_ref().is_some_and(|m| {
            m.namespace == key.namespace
                && m.metric_name == key.metric_name
                && m.dimensions == key.dimensions
        }) && self.unit.as_ref().is_none_or(|u| *u == key.unit)
    }
}

/// Mutable part of an alarm.
#[derive(Debug)]
pub struct Inner {
    pub stored: StoredAlarm,
    pub compiled: Compiled,
    /// Set when the alarm is deleted; holders of a stale `Arc<Entry>` then do nothing.
    pub deleted: bool,
}

/// One alarm in memory.
#[derive(Debug)]
pub struct Entry {
    pub key: AlarmKey,
    pub inner: Mutex<Inner>,
    pub series: Mutex<SeriesCache>,
}

impl Entry {
    pub fn new(stored: StoredAlarm) -> Arc<Entry> {
        let key = AlarmKey::new(&stored.account, &stored.region, &stored.config.name);
        let compiled = Compiled::of(&stored);
        let series = SeriesCache::for_alarm(&stored, &compiled);
        Arc::new(Entry {
            key,
            inner: Mutex::new(Inner {
                stored,
                compiled,
                deleted: false,
            }),
            series: Mutex::new(series),
        })
    }
}

/// The index.
#[derive(Debug, Default)]
pub struct Registry {
    alarms: BTreeMap<AlarmKey, Arc<Entry>>,
    by_metric: HashMap<u64, Vec<AlarmKey>>,
    /// Child or suppressor → composite alarms depending on it.
    parents: HashMap<AlarmKey, BTreeSet<AlarmKey>>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.alarms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }

    pub fn get(&self, key: &AlarmKey) -> Option<Arc<Entry>> {
        self.alarms.get(key).cloned()
    }

    /// Add an alarm with its derived data (or replace one), indexing `compiled`.
    pub fn insert(&mut self, entry: Arc<Entry>, compiled: &Compiled) {
        let key = entry.key.clone();
        self.index(&key, compiled);
        self.alarms.insert(key, entry);
    }

    /// Re-index an alarm whose configuration changed from `old` to `new`.
    pub fn reindex(&mut self, key: &AlarmKey, old: &Compiled, new: &Compiled) {
        self.unindex(key, old);
        self.index(key, new);
    }

    /// Remove an alarm and its index entries.
    pub fn remove(&mut self, key: &AlarmKey, compiled: &Compiled) -> Option<Arc<Entry>> {
        self.unindex(key, compiled);
        self.alarms.remove(key)
    }

    fn index(&mut self, key: &AlarmKey, c: &Compiled) {
        for h in &c.watched {
            let list = self.by_metric.entry(*h).or_default();
            if !list.contains(key) {
                list.push(key.clone());
            }
        }
        for dep in c.dependencies() {
            self.parents
                .entry(key.sibling(dep))
                .or_default()
                .insert(key.clone());
        }
    }

    fn unindex(&mut self, key: &AlarmKey, c: &Compiled) {
        for h in &c.watched {
            if let Some(list) = self.by_metric.get_mut(h) {
                list.retain(|k| k != key);
                if list.is_empty() {
                    self.by_metric.remove(h);
                }
            }
        }
        for dep in c.dependencies() {
            let dep_key = key.sibling(dep);
            if let Some(set) = self.parents.get_mut(&dep_key) {
                set.remove(key);
                if set.is_empty() {
                    self.parents.remove(&dep_key);
                }
            }
        }
    }

    /// Alarms reading the metric with this hash.
    pub fn watching(&self, hash: u64) -> Vec<Arc<Entry>> {
        self.by_metric
            .get(&hash)
            .map(|keys| keys.iter().filter_map(|k| self.get(k)).collect())
            .unwrap_or_default()
    }

    /// Whether any alarm reads metrics at all.
    pub fn watches_any(&self) -> bool {
        !self.by_metric.is_empty()
    }

    /// Composite alarms that reference `key` (in their rule or as suppressor).
    pub fn parents_of(&self, key: &AlarmKey) -> Vec<AlarmKey> {
        self.parents
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Alarms of one account and region, by name.
    pub fn in_region(&self, account: &str, region: &str) -> Vec<Arc<Entry>> {
        let start = AlarmKey::new(account, region, "");
        self.alarms
            .range(start..)
            .take_while(|(k, _)| k.account == account && k.region == region)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every alarm.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.alarms.values().cloned().collect()
    }

    /// Whether `from` can reach `target` through composite dependencies (children / suppressors),
    /// given `edges(name)` for the alarms of one account and region.
    pub fn reaches(from: &str, target: &str, edges: &dyn Fn(&str) -> Vec<String>) -> bool {
        let mut stack = vec![from.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == target {
                return true;
            }
            if seen.insert(n.clone()) {
                stack.extend(edges(&n));
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_hash_separates_fields() {
        let a = metric_hash("1", "r", "ns", "ab", &[]);
        let b = metric_hash("1", "r", "nsa", "b", &[]);
        assert_ne!(a, b);
        let d1 = vec![("a".to_string(), "bc".to_string())];
        let d2 = vec![("ab".to_string(), "c".to_string())];
        assert_ne!(
            metric_hash("1", "r", "n", "m", &d1),
            metric_hash("1", "r", "n", "m", &d2)
        );
    }

    #[test]
    fn reachability_follows_edges() {
        let edges = |n: &str| -> Vec<String> {
            match n {
                "a" => vec!["b".into()],
                "b" => vec!["c".into(), "a".into()],
                _ => vec![],
            }
        };
        assert!(Registry::reaches("a", "c", &edges));
        assert!(!Registry::reaches("c", "a", &edges));
    }
}
