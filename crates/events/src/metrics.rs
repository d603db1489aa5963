//! `AWS/Events` metrics: counters kept in memory (per rule — dimension `RuleName`, plus
//! `EventBusName` on custom buses — and account-wide without dimensions) and published every
//! [`FLUSH_EVERY`] through `Directory::invoke("CloudWatch", .., "PutMetricData", ..)` as sums.
//! Metrics: MatchedEvents, TriggeredRules, Invocations, FailedInvocations, InvocationAttempts,
//! SuccessfulInvocationAttempts, RetryInvocationAttempts, DeadLetterInvocations,
//! InvocationsFailedToBeSentToDlq.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{Directory, Value};
use parking_lot::Mutex;
use serde_json::json;

use crate::util::DEFAULT_BUS;

/// How often counters are published.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// The metrics counted, in the order their counters are kept.
const METRICS: [&str; 9] = [
    "MatchedEvents",
    "TriggeredRules",
    "Invocations",
    "FailedInvocations",
    "InvocationAttempts",
    "SuccessfulInvocationAttempts",
    "RetryInvocationAttempts",
    "DeadLetterInvocations",
    "InvocationsFailedToBeSentToDlq",
];

/// Counters of one (account, region, bus, rule) — bus and rule empty for the account-wide
/// aggregate — by position in [`METRICS`]; `None` for a metric never counted.
type Counters = [Option<f64>; METRICS.len()];

/// Key separator (no account, region, bus or rule name contains it).
const SEP: char = '\u{1f}';

/// FxHash (rustc's hasher): the keys are our own, so a fast non-keyed hash is fine here, and
/// counting happens several times per delivered event.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<String, Counters, std::hash::BuildHasherDefault<FxHasher>>;

/// Positions in [`METRICS`] of the counts made once per matched event and per delivered first
/// attempt (the hot path).
const MATCHED: usize = 0;
const TRIGGERED: usize = 1;
const INVOCATIONS: usize = 2;
const ATTEMPTS: usize = 4;
const SUCCESSFUL: usize = 5;
const RETRY_ATTEMPTS: usize = 6;

/// The counters of one rule, counted without a lock or a key: the hot path (an event matched and
/// triggered the rule, a first attempt delivered) counts here; everything else goes through the
/// keyed map. Both are summed when drained.
///
/// Each slot holds `2 × count`, plus 1 once counted with a zero (a metric counted only with
/// zeros is still published, with the value 0, as the keyed map does).
#[derive(Default)]
pub struct RuleCounters {
    slots: [AtomicU64; METRICS.len()],
}

impl RuleCounters {
    fn add(&self, slot: usize, n: u64) {
        let s = &self.slots[slot];
        if n > 0 {
            s.fetch_add(n << 1, Ordering::Relaxed);
        } else if s.load(Ordering::Relaxed) == 0 {
            s.fetch_or(1, Ordering::Relaxed);
        }
    }

    /// An event matched the rule, which still existed (MatchedEvents and TriggeredRules).
    pub fn matched_and_triggered(&self) {
        self.add(MATCHED, 1);
        self.add(TRIGGERED, 1);
    }

    /// A first attempt to one of the rule's targets succeeded (InvocationAttempts,
    /// RetryInvocationAttempts 0, SuccessfulInvocationAttempts, Invocations).
    pub fn first_attempt_delivered(&self) {
        self.add(ATTEMPTS, 1);
        self.add(RETRY_ATTEMPTS, 0);
        self.add(SUCCESSFUL, 1);
        self.add(INVOCATIONS, 1);
    }

    /// Take the counts (zeroing them).
    fn take(&self) -> Counters {
        let mut c = [None; METRICS.len()];
        for (out, s) in c.iter_mut().zip(&self.slots) {
            let v = s.swap(0, Ordering::Relaxed);
            if v != 0 {
                *out = Some((v >> 1) as f64);
            }
        }
        c
    }
}

/// Counters are compared by identity (the same rule's), not by their changing counts.
impl PartialEq for RuleCounters {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl std::fmt::Debug for RuleCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleCounters")
    }
}

#[derive(Default)]
pub struct Metrics {
    counts: Mutex<Map>,
    /// Each rule's lock-free counters, by the key the keyed map uses for the rule. An entry
    /// outlives its rule until drained and no longer shared (a delivery in flight may still
    /// count into it).
    rules: Mutex<HashMap<String, Arc<RuleCounters>, std::hash::BuildHasherDefault<FxHasher>>>,
}

/// The keyed counters of one account, region and bus, locked; one key buffer reused.
struct Keyed<'a> {
    map: &'a mut Map,
    key: String,
    /// Length of `account SEP region SEP`.
    base: usize,
    bus: &'a str,
}

impl Keyed<'_> {
    /// Count `items` for `rule` of the bus.
    fn rule(&mut self, rule: &str, items: &[(&'static str, f64)]) {
        self.key.push_str(self.bus);
        self.key.push(SEP);
        self.key.push_str(rule);
        bump(self.map, &self.key, items);
        self.key.truncate(self.base);
    }

    /// Count `items` account-wide (no bus, no rule).
    fn account_wide(&mut self, items: &[(&'static str, f64)]) {
        self.key.push(SEP);
        bump(self.map, &self.key, items);
        self.key.truncate(self.base);
    }
}

fn rule_map_key(account: &str, region: &str, bus: &str, rule: &str) -> String {
    let mut key = String::with_capacity(account.len() + region.len() + bus.len() + rule.len() + 3);
    for (i, part) in [account, region, bus, rule].into_iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.push_str(part);
    }
    key
}

fn slot(metric: &str) -> Option<usize> {
    METRICS.iter().position(|m| *m == metric)
}

fn bump(map: &mut Map, key: &str, items: &[(&'static str, f64)]) {
    let c = match map.get_mut(key) {
        Some(c) => c,
        None => map.entry(key.to_string()).or_insert([None; METRICS.len()]),
    };
    for (m, n) in items {
        match slot(m) {
            Some(i) => *c[i].get_or_insert(0.0) += n,
            None => tracing::error!(metric = m, "not an AWS/Events metric opsloop counts"),
        }
    }
}

impl Metrics {
    /// The lock-free counters of a rule (the same ones for as long as anything holds them, so a
    /// rule replaced by PutRule keeps counting into them).
    pub fn rule_counters(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        rule: &str,
    ) -> Arc<RuleCounters> {
        self.rules
            .lock()
            .entry(rule_map_key(account, region, bus, rule))
            .or_default()
            .clone()
    }

    /// Count `n` for `metric` of `rule` (and in the account-wide aggregate).
    pub fn add(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        rule: Option<&str>,
        metric: &'static str,
        n: f64,
    ) {
        self.add_all(account, region, bus, rule, &[(metric, n)]);
    }

    /// Count several metrics of `rule` at once (one lock, one key).
    pub fn add_all(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        rule: Option<&str>,
        items: &[(&'static str, f64)],
    ) {
        self.add_bulk(account, region, bus, rule, items, 1);
    }

    /// Count `items` once for each of `rules` (a rule named twice counts twice) and
    /// `aggregate_times` times in the account-wide aggregate: one lock and one aggregate lookup
    /// for many events or deliveries of one bus.
    pub fn add_bulk<'r>(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        rules: impl IntoIterator<Item = &'r str>,
        items: &[(&'static str, f64)],
        aggregate_times: usize,
    ) {
        self.keyed(account, region, bus, |k| {
            for r in rules {
                k.rule(r, items);
            }
            if aggregate_times > 0 {
                let mut scaled = [("", 0.0); METRICS.len()];
                let n = items.len().min(METRICS.len());
                for (slot, (m, v)) in scaled.iter_mut().zip(items) {
                    *slot = (*m, *v * aggregate_times as f64);
                }
                k.account_wide(&scaled[..n]);
            }
        });
    }

    /// `events` events of `bus` matched rules. Those that still exist (`triggered` matches) were
    /// counted in their [`RuleCounters`]; `gone` are the rules that no longer exist, counted here
    /// (MatchedEvents only: a deleted rule triggers nothing). The account-wide aggregate counts
    /// `events` MatchedEvents and `triggered` TriggeredRules. One lock for all.
    pub fn add_matched_rest<'r>(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        gone: impl IntoIterator<Item = &'r str>,
        events: usize,
        triggered: usize,
    ) {
        if events == 0 {
            return;
        }
        self.keyed(account, region, bus, |k| {
            for r in gone {
                k.rule(r, &[("MatchedEvents", 1.0)]);
            }
            let all = [
                ("MatchedEvents", events as f64),
                ("TriggeredRules", triggered as f64),
            ];
            k.account_wide(if triggered > 0 { &all } else { &all[..1] });
        });
    }

    /// Run `f` with the keyed counters of `bus` locked.
    fn keyed(&self, account: &str, region: &str, bus: &str, f: impl FnOnce(&mut Keyed<'_>)) {
        let mut key = String::with_capacity(account.len() + region.len() + bus.len() + 40);
        key.push_str(account);
        key.push(SEP);
        key.push_str(region);
        key.push(SEP);
        let base = key.len();
        let mut map = self.counts.lock();
        f(&mut Keyed {
            map: &mut map,
            key,
            base,
            bus,
        });
    }

    /// An event of `bus` matched `rules` (none: nothing is counted).
    pub fn matched(&self, account: &str, region: &str, bus: &str, rules: &[String]) {
        if rules.is_empty() {
            return;
        }
        let names = rules.iter().map(String::as_str);
        self.add_bulk(account, region, bus, names, &[("MatchedEvents", 1.0)], 1);
    }

    /// Take the counters: PutMetricData inputs by (account, region).
    pub fn drain(&self, timestamp_s: f64) -> Vec<(String, String, Value)> {
        let mut counts = std::mem::take(&mut *self.counts.lock());
        self.rules.lock().retain(|key, rc| {
            let taken = rc.take();
            if taken.iter().any(Option::is_some) {
                let c = counts.entry(key.clone()).or_insert([None; METRICS.len()]);
                for (sum, v) in c.iter_mut().zip(taken) {
                    if let Some(v) = v {
                        *sum.get_or_insert(0.0) += v;
                    }
                }
            }
            // Kept while a rule or a delivery still holds it.
            Arc::strong_count(rc) > 1
        });
        let mut by: HashMap<(String, String), Vec<Value>> = HashMap::new();
        for (key, counters) in counts {
            let mut parts = key.split(SEP);
            let account = parts.next().unwrap_or_default().to_string();
            let region = parts.next().unwrap_or_default().to_string();
            let bus = parts.next().unwrap_or_default();
            let rule = parts.next().unwrap_or_default();
            let mut dims = Vec::new();
            if !rule.is_empty() {
                if bus != DEFAULT_BUS {
                    dims.push(json!({"Name": "EventBusName", "Value": bus}));
                }
                dims.push(json!({"Name": "RuleName", "Value": rule}));
            }
            let out = by.entry((account, region)).or_default();
            for (metric, v) in METRICS
                .iter()
                .zip(counters)
                .filter_map(|(m, v)| Some((m, v?)))
            {
                out.push(json!({
                    "MetricName": metric,
                    "Dimensions": dims.clone(),
                    "Value": v,
                    "Unit": "Count",
                    "Timestamp": timestamp_s,
                }));
            }
        }
        let mut out = Vec::new();
        for ((account, region), data) in by {
            for chunk in data.chunks(1000) {
                out.push((
                    account.clone(),
                    region.clone(),
                    json!({"Namespace": "AWS/Events", "MetricData": chunk}),
                ));
            }
        }
        out
    }

    pub fn clear(&self) {
        self.counts.lock().clear();
        self.rules.lock().clear();
    }
}

/// Publish the counters every [`FLUSH_EVERY`] until `stop`.
pub async fn run(
    metrics: Arc<Metrics>,
    directory: Arc<Directory>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => {}
            _ = stop.changed() => return,
        }
        let now = crate::util::now_ms() as f64 / 1000.0;
        for (account, region, input) in metrics.drain(now) {
            if let Err(e) = directory
                .invoke("CloudWatch", &account, &region, "PutMetricData", input)
                .await
            {
                if !warned {
                    tracing::warn!(error = %e, "cannot publish AWS/Events metrics");
                    warned = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_sums_with_dimensions() {
        let m = Metrics::default();
        m.matched("1", "r", "default", &["a".into(), "b".into()]);
        m.matched("1", "r", "default", &["a".into()]);
        m.add("1", "r", "custom", Some("c"), "Invocations", 1.0);
        m.matched("1", "r", "default", &[]);
        let out = m.drain(100.0);
        assert_eq!(out.len(), 1);
        let data = out[0].2["MetricData"].as_array().unwrap().clone();
        let find = |name: &str, dims: Value| {
            data.iter()
                .find(|d| d["MetricName"] == name && d["Dimensions"] == dims)
                .map(|d| d["Value"].as_f64().unwrap())
        };
        assert_eq!(
            find("MatchedEvents", json!([{"Name": "RuleName", "Value": "a"}])),
            Some(2.0)
        );
        assert_eq!(find("MatchedEvents", json!([])), Some(2.0));
        assert_eq!(
            find(
                "Invocations",
                json!([{"Name": "EventBusName", "Value": "custom"}, {"Name": "RuleName", "Value": "c"}])
            ),
            Some(1.0)
        );
        assert!(m.drain(100.0).is_empty());
    }

    #[test]
    fn bulk_counts_equal_single_counts() {
        let items = [
            ("InvocationAttempts", 1.0),
            ("RetryInvocationAttempts", 0.0),
        ];
        let single = Metrics::default();
        for r in ["a", "b", "a"] {
            single.add_all("1", "r", "default", Some(r), &items);
        }
        single.matched("1", "r", "default", &["a".into(), "b".into()]);
        single.matched("1", "r", "default", &["a".into()]);
        let bulk = Metrics::default();
        bulk.add_bulk("1", "r", "default", ["a", "b", "a"], &items, 3);
        bulk.add_bulk(
            "1",
            "r",
            "default",
            ["a", "b", "a"],
            &[("MatchedEvents", 1.0)],
            2,
        );
        bulk.add_bulk("1", "r", "default", [], &[("MatchedEvents", 1.0)], 0);
        assert_eq!(sorted_data(&bulk), sorted_data(&single));
    }

    /// The drained MetricData entries as sorted JSON strings.
    fn sorted_data(m: &Metrics) -> Vec<String> {
        let mut v: Vec<String> = m.drain(1.0)[0].2["MetricData"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rule_counters_drain_as_keyed_counts_do() {
        const DELIVERED: [(&str, f64); 4] = [
            ("InvocationAttempts", 1.0),
            ("RetryInvocationAttempts", 0.0),
            ("SuccessfulInvocationAttempts", 1.0),
            ("Invocations", 1.0),
        ];
        let retry = [
            ("InvocationAttempts", 1.0),
            ("RetryInvocationAttempts", 1.0),
        ];
        // two events matched rule a (twice) and a deleted rule; two first attempts delivered; one
        // retry of a
        let keyed = Metrics::default();
        keyed.matched("1", "r", "default", &["a".into(), "gone".into()]);
        keyed.matched("1", "r", "default", &["a".into()]);
        keyed.add_bulk(
            "1",
            "r",
            "default",
            ["a", "a"],
            &[("TriggeredRules", 1.0)],
            2,
        );
        keyed.add_bulk("1", "r", "default", ["a", "a"], &DELIVERED, 2);
        keyed.add_all("1", "r", "default", Some("a"), &retry);
        let split = Metrics::default();
        let a = split.rule_counters("1", "r", "default", "a");
        assert!(Arc::ptr_eq(
            &a,
            &split.rule_counters("1", "r", "default", "a")
        ));
        a.matched_and_triggered();
        a.matched_and_triggered();
        split.add_matched_rest("1", "r", "default", ["gone"], 2, 2);
        a.first_attempt_delivered();
        a.first_attempt_delivered();
        split.add_bulk("1", "r", "default", [], &DELIVERED, 2);
        split.add_all("1", "r", "default", Some("a"), &retry);
        assert_eq!(sorted_data(&split), sorted_data(&keyed));
        // drained counters start again from nothing; an entry nothing else holds is dropped
        assert!(split.drain(1.0).is_empty());
        assert_eq!(split.rules.lock().len(), 1, "kept while the rule holds it");
        drop(a);
        assert!(split.drain(1.0).is_empty());
        assert!(split.rules.lock().is_empty());
    }

    #[test]
    fn hot_path_slots_name_their_metrics() {
        for (slot, name) in [
            (MATCHED, "MatchedEvents"),
            (TRIGGERED, "TriggeredRules"),
            (INVOCATIONS, "Invocations"),
            (ATTEMPTS, "InvocationAttempts"),
            (SUCCESSFUL, "SuccessfulInvocationAttempts"),
            (RETRY_ATTEMPTS, "RetryInvocationAttempts"),
        ] {
            assert_eq!(METRICS[slot], name);
            assert_eq!(super::slot(name), Some(slot));
        }
    }

    #[test]
    fn a_match_of_deleted_rules_only_counts_no_triggered_rules() {
        // nothing triggered: no TriggeredRules value at all (not a zero)
        let none = Metrics::default();
        none.add_matched_rest("1", "r", "default", ["gone"], 1, 0);
        let out = sorted_data(&none);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|d| d.contains("MatchedEvents")), "{out:?}");
    }
}
