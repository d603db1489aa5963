//! The compiled many-rule matcher. All rules' field paths are merged into one trie; the event is
//! walked only along that trie (raw JSON bytes are scanned with every other member skipped
//! undecoded). Each rule is indexed by one field condition (*clause*), its *trigger*: the one
//! whose index buckets (see `index`) were emptiest when it was added, so a common value wakes few
//! rules whatever their number. A woken rule is decided at once: a one-field rule matches; a rule
//! of plain fields (no `$or`, no `exists: false`) matches when each of its other clauses holds for
//! some value the scan recorded at that clause's field (only fields with such clauses are
//! recorded, as offsets into the event, in per-thread scratch — nothing is allocated per event
//! but the result), as long as the event is *regular* (no object inside an array, no repeated
//! name, at mentioned paths — there AWS's per-element consistency could tell otherwise); the rest
//! are confirmed by the reference evaluator (`eval`) over a pruned copy of the event that holds
//! only the fields some rule mentions. Equal check clauses of different rules (same field, same
//! conditions) share an id, so each is decided at most once per event.

use std::collections::HashMap;
use std::hash::Hash;

use crate::eval;
use crate::index::{anchor_entries, entry_holds, sig, Entry, TNode, SHORT_CHILDREN};
use crate::json::Reader;
use crate::num::NumLit;
use crate::pattern::{Child, Node};
use crate::scan::{PView, Scan};
use crate::value::Scalar;
use crate::Pattern;

/// A leaf a rule needs: its trie node and (when indexable) its anchor score and entries.
type Leaf = (u32, Option<(u8, Vec<Entry>)>);
/// How a rule whose trigger clause was hit is decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One field on a plain object chain: the trigger hit is a match, whatever the event's shape.
    Sufficient,
    /// Every field is an indexed clause: a match when all of its clauses were hit, unless the
    /// event is irregular (objects inside arrays, repeated names), then by the reference evaluator.
    Counted,
    /// `$or`, `exists: false`, ...: only the trigger is indexed, the evaluator decides.
    Eval,
}

struct Rule<K> {
    key: K,
    root: Node,
    /// (trie node, entries) of each clause: the first is the indexed trigger, the others (of a
    /// `Counted` rule) are checked against the recorded values when the trigger fires.
    clauses: Vec<(u32, Vec<Entry>)>,
    /// The shared id of each clause after the first (equal clauses of different rules share
    /// one, so an event decides each only once).
    check_ids: Vec<u32>,
    mode: Mode,
}

/// What kind of leaf a recorded value is (its bytes are re-read on demand).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string without escapes: its content is the recorded byte range.
    Plain,
    /// A string with escapes, decoded again from its opening quote.
    Str,
    Num,
    True,
    False,
    Null,
}

/// A leaf value the scan recorded at a field with check clauses: (trie node, start, end, kind).
pub(crate) type Rec = (u32, u32, u32, Kind);

/// Per-thread scratch reused across events: rule stamps (a rule was woken for this event when its
/// stamp equals `epoch`), the trigger hits, the recorded values and the rules needing the
/// evaluator.
struct Scratch {
    epoch: u32,
    rule: Vec<u32>,
    /// Per shared check clause: (epoch it was decided in, its verdict).
    memo: Vec<(u32, bool)>,
    cands: Vec<u32>,
    recs: Vec<Rec>,
    eval: Vec<u32>,
}

impl Scratch {
    const fn new() -> Self {
        Scratch {
            epoch: 0,
            rule: Vec::new(),
            memo: Vec::new(),
            cands: Vec::new(),
            recs: Vec::new(),
            eval: Vec::new(),
        }
    }

    fn begin(&mut self, rules: usize, checks: usize) {
        if self.epoch == u32::MAX {
            self.rule.iter_mut().for_each(|x| *x = 0);
            self.memo.iter_mut().for_each(|x| x.0 = 0);
            self.epoch = 0;
        }
        self.epoch += 1;
        if self.rule.len() < rules {
            self.rule.resize(rules, 0);
        }
        if self.memo.len() < checks {
            self.memo.resize(checks, (0, false));
        }
        self.cands.clear();
        self.recs.clear();
        self.eval.clear();
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Scratch::new()) };
}

/// Many patterns compiled into one matcher; `K` identifies a rule.
pub struct Matcher<K> {
    rules: Vec<Option<Rule<K>>>,
    free: Vec<u32>,
    by_key: HashMap<K, u32>,
    pub(crate) trie: Vec<TNode>,
    unanchored: Vec<u32>,
    /// Check clauses by (trie node, entries as text) → shared id, with each id's rule count and
    /// the ids free for reuse.
    check_ids: HashMap<(u32, String), u32>,
    check_refs: Vec<u32>,
    check_free: Vec<u32>,
    /// Rules always decided by the evaluator (so matching keeps a pruned copy of the event).
    confirm: usize,
}

impl<K: Clone + Eq + Hash> Default for Matcher<K> {
    fn default() -> Self {
        Matcher {
            rules: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            trie: vec![TNode::default()],
            unanchored: Vec::new(),
            check_ids: HashMap::new(),
            check_refs: Vec::new(),
            check_free: Vec::new(),
            confirm: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> Matcher<K> {
    pub fn new() -> Self {
        Self::default()
    }

    fn child(&mut self, at: u32, name: &str) -> u32 {
        if let Some(c) = self.child_of(at, name.as_bytes()) {
            return c;
        }
        let id = self.trie.len() as u32;
        let slot = self.trie[at as usize].children.len() as u32;
        let mut node = TNode::default();
        node.slot = slot;
        self.trie.push(node);
        let t = &mut self.trie[at as usize];
        t.children.push((name.as_bytes().into(), id));
        t.child_sigs.push(sig(name.as_bytes()));
        t.name_lens |= 1u64 << name.len().min(63);
        if t.children.len() > SHORT_CHILDREN {
            if t.child_map.is_empty() {
                t.child_map = t.children.iter().cloned().collect();
            } else {
                t.child_map.insert(name.as_bytes().into(), id);
            }
        }
        id
    }
    /// Put every field path of `node` into the trie (under `at`).
    fn intern(&mut self, node: &Node, at: u32) {
        for (name, child) in &node.fields {
            let c = self.child(at, name);
            if let Child::Obj(n) = child {
                self.intern(n, c);
            }
        }
        for group in &node.ors {
            for alt in group {
                self.intern(alt, at);
            }
        }
    }

    /// The leaves every match needs (those not under an `$or`), with their trie nodes and index
    /// entries (None for a leaf that cannot be indexed); `plain` turns false on any `$or`.
    fn leaves(&mut self, node: &Node, at: u32, out: &mut Vec<Leaf>, plain: &mut bool) {
        if !node.ors.is_empty() {
            *plain = false;
        }
        for (name, child) in &node.fields {
            let c = self.child(at, name);
            match child {
                Child::Obj(n) => self.leaves(n, c, out, plain),
                Child::Leaf(conds) => out.push((c, anchor_entries(conds))),
            }
        }
    }

    /// Add (or replace) the pattern of rule `key`.
    pub fn add(&mut self, key: K, pattern: &Pattern) {
        self.remove(&key);
        let root = pattern.root.clone();
        self.intern(&root, 0);
        let mut leaves = Vec::new();
        let mut plain = true;
        self.leaves(&root, 0, &mut leaves, &mut plain);
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.rules.push(None);
                (self.rules.len() - 1) as u32
            }
        };
        // The trigger: the indexable leaf whose buckets are emptiest.
        let mut best: Option<((usize, u8), usize)> = None;
        for (i, (at, e)) in leaves.iter().enumerate() {
            if let Some((score, entries)) = e {
                let t = &self.trie[*at as usize];
                let cost: usize = entries.iter().map(|e| t.cost(e)).sum();
                if best.as_ref().is_none_or(|b| (cost, *score) < b.0) {
                    best = Some(((cost, *score), i));
                }
            }
        }
        let single_chain = {
            let mut n = &root;
            loop {
                if n.fields.len() != 1 || !n.ors.is_empty() {
                    break false;
                }
                match &n.fields[0].1 {
                    Child::Obj(inner) => n = inner,
                    Child::Leaf(_) => break true,
                }
            }
        };
        let countable = plain && leaves.iter().all(|(_, e)| e.is_some());
        let mut clauses = Vec::new();
        let mut check_ids = Vec::new();
        let mode = match best {
            None => {
                self.unanchored.push(idx);
                Mode::Eval
            }
            Some((_, b)) => {
                let order: Vec<usize> = if countable {
                    std::iter::once(b)
                        .chain((0..leaves.len()).filter(|&i| i != b))
                        .collect()
                } else {
                    vec![b]
                };
                for (n, i) in order.into_iter().enumerate() {
                    let (at, e) = &mut leaves[i];
                    let (_, entries) = e.take().expect("indexable leaf");
                    let t = &mut self.trie[*at as usize];
                    if n == 0 {
                        t.index(&entries, idx);
                    } else {
                        t.checks += 1;
                        let key = (*at, format!("{entries:?}"));
                        let id = match self.check_ids.get(&key) {
                            Some(&id) => id,
                            None => {
                                let id = match self.check_free.pop() {
                                    Some(id) => id,
                                    None => {
                                        self.check_refs.push(0);
                                        (self.check_refs.len() - 1) as u32
                                    }
                                };
                                self.check_ids.insert(key, id);
                                id
                            }
                        };
                        self.check_refs[id as usize] += 1;
                        check_ids.push(id);
                    }
                    clauses.push((*at, entries));
                }
                if single_chain {
                    Mode::Sufficient
                } else if countable {
                    Mode::Counted
                } else {
                    Mode::Eval
                }
            }
        };
        if mode == Mode::Eval {
            self.confirm += 1;
        }
        self.by_key.insert(key.clone(), idx);
        self.rules[idx as usize] = Some(Rule {
            key,
            root,
            clauses,
            check_ids,
            mode,
        });
    }

    /// Remove rule `key`; false if it was not present.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(idx) = self.by_key.remove(key) else {
            return false;
        };
        let Some(rule) = self.rules[idx as usize].take() else {
            return false;
        };
        if rule.mode == Mode::Eval {
            self.confirm -= 1;
        }
        if rule.clauses.is_empty() {
            self.unanchored.retain(|&r| r != idx);
        }
        for (n, (at, entries)) in rule.clauses.iter().enumerate() {
            let t = &mut self.trie[*at as usize];
            if n == 0 {
                t.unindex(entries, idx);
            } else {
                t.checks -= 1;
                let id = rule.check_ids[n - 1];
                self.check_refs[id as usize] -= 1;
                if self.check_refs[id as usize] == 0 {
                    self.check_ids.remove(&(*at, format!("{entries:?}")));
                    self.check_free.push(id);
                }
            }
        }
        self.free.push(idx);
        true
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Collect trigger hits walking a `serde_json::Value` along the trie, and the values at fields
    /// with check clauses; `irregular` turns true at an object inside an array where some rule
    /// looks for fields.
    fn walk<'v>(
        &self,
        v: &'v serde_json::Value,
        t: u32,
        in_array: bool,
        out: &mut Vec<u32>,
        vals: &mut Vec<(u32, Scalar<'v>)>,
        irregular: &mut bool,
    ) {
        use serde_json::Value as V;
        let s = match v {
            V::Object(m) => {
                let node = &self.trie[t as usize];
                if node.children.is_empty() {
                    return;
                }
                *irregular |= in_array;
                if node.children.len() < m.len() {
                    for (name, c) in &node.children {
                        let name = std::str::from_utf8(name).unwrap_or_default();
                        if let Some(child) = m.get(name) {
                            self.walk(child, *c, false, out, vals, irregular);
                        }
                    }
                } else {
                    for (name, child) in m {
                        if let Some(c) = self.child_of(t, name.as_bytes()) {
                            self.walk(child, c, false, out, vals, irregular);
                        }
                    }
                }
                return;
            }
            V::Array(items) => {
                for e in items {
                    self.walk(e, t, true, out, vals, irregular);
                }
                return;
            }
            V::String(s) => Scalar::Str(s),
            V::Number(n) => Scalar::Num(n.as_f64().unwrap_or(f64::NAN)),
            V::Bool(b) => Scalar::Bool(*b),
            V::Null => Scalar::Null,
        };
        let node = &self.trie[t as usize];
        node.hits(s, out);
        if node.checks > 0 {
            vals.push((t, s));
        }
    }

    /// Decide the rules from this event's trigger hits (`sc.cands`): a woken rule matches outright
    /// (`Sufficient`), when `check` says each of its other clauses holds for some value at its
    /// field (`Counted`, on a regular event), or as `confirm` (the reference evaluator) says.
    fn decide(
        &self,
        sc: &mut Scratch,
        irregular: bool,
        check: &mut dyn FnMut(u32, &[Entry]) -> bool,
        confirm: &mut dyn FnMut(&Node) -> bool,
    ) -> Vec<K> {
        let Scratch {
            epoch,
            rule: stamp,
            memo,
            cands,
            eval,
            ..
        } = sc;
        let epoch = *epoch;
        let mut out = Vec::new();
        for &r in cands.iter() {
            if stamp[r as usize] == epoch {
                continue;
            }
            stamp[r as usize] = epoch;
            let Some(rule) = &self.rules[r as usize] else {
                continue;
            };
            match rule.mode {
                Mode::Sufficient => out.push(rule.key.clone()),
                Mode::Counted => {
                    let holds =
                        rule.clauses[1..]
                            .iter()
                            .zip(&rule.check_ids)
                            .all(|((at, e), &id)| {
                                let m = &mut memo[id as usize];
                                if m.0 != epoch {
                                    *m = (epoch, check(*at, e));
                                }
                                m.1
                            });
                    if holds {
                        if irregular {
                            eval.push(r);
                        } else {
                            out.push(rule.key.clone());
                        }
                    }
                }
                Mode::Eval => eval.push(r),
            }
        }
        eval.extend_from_slice(&self.unanchored);
        for &r in eval.iter() {
            if let Some(rule) = &self.rules[r as usize] {
                if confirm(&rule.root) {
                    out.push(rule.key.clone());
                }
            }
        }
        out
    }

    /// Run `f` with this thread's scratch (a fresh one if it is already in use), begun for a new
    /// event.
    fn with_scratch<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut sc) => {
                sc.begin(self.rules.len(), self.check_refs.len());
                f(&mut sc)
            }
            Err(_) => {
                let mut sc = Scratch::new();
                sc.begin(self.rules.len(), self.check_refs.len());
                f(&mut sc)
            }
        })
    }

    /// The rules whose patterns match `event`, each once, in no particular order.
    pub fn matches(&self, event: &serde_json::Value) -> Vec<K> {
        if self.is_empty() {
            return Vec::new();
        }
        self.with_scratch(|sc| {
            let mut irregular = false;
            let mut vals = Vec::new();
            self.walk(event, 0, false, &mut sc.cands, &mut vals, &mut irregular);
            self.decide(
                sc,
                irregular,
                &mut |at, entries| {
                    vals.iter()
                        .any(|&(t, v)| t == at && entries.iter().any(|e| entry_holds(e, v)))
                },
                &mut |node| eval::node_matches(node, Some(event)),
            )
        })
    }

    /// The rules matching the event given as JSON text (none if it is not valid JSON up to the
    /// last member any rule mentions; what follows that member is skipped unread). Faster than
    /// parsing the event first: only members some rule mentions are decoded.
    pub fn matches_json(&self, event: &[u8]) -> Vec<K> {
        if self.is_empty() {
            return Vec::new();
        }
        self.with_scratch(|sc| {
            // Keep the pruned copy in the same pass when some rule is always confirmed (a second
            // scan costs more than the copy of the few mentioned fields).
            let mut first = Scan::new(self, self.confirm > 0, true);
            first.cands = std::mem::take(&mut sc.cands);
            first.recs = std::mem::take(&mut sc.recs);
            let root = first.run(event);
            sc.cands = std::mem::take(&mut first.cands);
            let recs = std::mem::take(&mut first.recs);
            let Some(root) = root else {
                sc.recs = recs;
                return Vec::new();
            };
            let irregular = first.irregular;
            let mut pruned = first.build.then(|| (first.into_pruned(), root));
            let out = self.decide(
                sc,
                irregular,
                &mut |at, entries| {
                    recs.iter().any(|&(t, start, end, kind)| {
                        t == at && rec_holds(event, start, end, kind, entries)
                    })
                },
                &mut |node| {
                    let (p, root) = pruned.get_or_insert_with(|| {
                        let mut again = Scan::new(self, true, false);
                        let root = again.run(event).unwrap_or(u32::MAX);
                        (again.into_pruned(), root)
                    });
                    eval::node_matches(node, Some(PView { p, i: *root }))
                },
            );
            sc.recs = recs;
            out
        })
    }

    #[inline]
    pub(crate) fn child_of(&self, t: u32, name: &[u8]) -> Option<u32> {
        self.child_by_sig(t, sig(name), name)
    }

    /// `child_of` with the name's `sig` already computed.
    #[inline(always)]
    pub(crate) fn child_by_sig(&self, t: u32, want: (usize, u64), name: &[u8]) -> Option<u32> {
        self.trie.get(t as usize)?.child_by_sig(want, name)
    }
}

/// Does the value recorded at bytes `start..end` of `event` satisfy one of `entries`?
fn rec_holds(event: &[u8], start: u32, end: u32, kind: Kind, entries: &[Entry]) -> bool {
    let mut r = Reader::new(event);
    r.i = start as usize;
    let owned;
    let v = match kind {
        Kind::Plain => {
            // Exact strings compare as bytes; the rest need the text (valid UTF-8: the scan
            // checked it).
            let Some(bytes) = event.get(start as usize..end as usize) else {
                return false;
            };
            // Plain ASCII needs no decoding for the common string tests: folding ASCII is
            // `to_ascii_lowercase`, and a pattern's folded text is compared byte by byte.
            let ascii = bytes.is_ascii();
            let folded_eq = |a: &[u8], p: &[u8]| {
                a.len() == p.len() && a.iter().zip(p).all(|(x, y)| x.to_ascii_lowercase() == *y)
            };
            let mut rest = false;
            for e in entries {
                let hit = match e {
                    Entry::Str(p) => p.as_bytes() == bytes,
                    Entry::Prefix(p, None) => bytes.starts_with(p.as_bytes()),
                    Entry::Suffix(p, None) => bytes.ends_with(p.as_bytes()),
                    Entry::EqIc(p) if ascii => folded_eq(bytes, p.as_bytes()),
                    Entry::PrefixIc(p) if ascii => bytes
                        .get(..p.len())
                        .is_some_and(|a| folded_eq(a, p.as_bytes())),
                    Entry::SuffixIc(p) if ascii => bytes
                        .len()
                        .checked_sub(p.len())
                        .is_some_and(|at| folded_eq(&bytes[at..], p.as_bytes())),
                    _ => {
                        rest = true;
                        false
                    }
                };
                if hit {
                    return true;
                }
            }
            if !rest {
                return false;
            }
            match std::str::from_utf8(bytes) {
                Ok(s) => Scalar::Str(s),
                Err(_) => return false,
            }
        }
        Kind::Str => match r.lenient_string() {
            Ok(s) => {
                owned = s;
                Scalar::Str(&owned)
            }
            Err(_) => return false,
        },
        Kind::Num => match NumLit::read(&mut r) {
            Ok(n) => Scalar::Num(n.exact(event)),
            Err(_) => return false,
        },
        Kind::True => Scalar::Bool(true),
        Kind::False => Scalar::Bool(false),
        Kind::Null => Scalar::Null,
    };
    entries.iter().any(|e| entry_holds(e, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// The trigger hits of the last event matched on this thread.
    fn woken() -> usize {
        SCRATCH.with(|c| c.borrow().cands.len())
    }

    #[test]
    fn a_common_value_wakes_only_the_rules_it_can_decide() {
        let mut m = Matcher::new();
        for i in 0..1000 {
            let p = format!(r#"{{"s": ["common"], "n": ["v{i}"], "o": ["E"]}}"#);
            m.add(i, &parse(&p).unwrap());
        }
        assert_eq!(
            m.matches_json(br#"{"s": "common", "n": "v7", "o": "E"}"#),
            vec![7]
        );
        assert!(woken() <= 2, "woke {}", woken());
        assert!(m
            .matches_json(br#"{"s": "common", "n": "v7", "o": "O"}"#)
            .is_empty());
        let v = serde_json::json!({"s": "common", "n": "v999", "o": "E"});
        assert_eq!(m.matches(&v), vec![999]);
        assert!(woken() <= 2, "woke {}", woken());
        // Removing rules leaves the others' triggers and checks intact.
        for i in 0..999 {
            assert!(m.remove(&i));
        }
        assert_eq!(m.matches(&v), vec![999]);
        assert_eq!(
            m.matches_json(br#"{"o": "E", "n": "v999", "s": "common"}"#),
            vec![999]
        );
        assert!(m.trie.iter().map(|t| t.checks).sum::<usize>() == 2);
    }

    #[test]
    fn equal_check_clauses_are_shared_and_survive_removal() {
        let mut m = Matcher::new();
        let pat = |i: usize| {
            let p = format!(
                r#"{{"lot": [{{"equals-ignore-case": "a{}"}}], "side": ["E"]}}"#,
                i % 5
            );
            parse(&p).unwrap()
        };
        for i in 0..50 {
            m.add(i, &pat(i));
        }
        // Ten distinct clauses at most (five lots, one side), however the triggers fell.
        assert!(m.check_ids.len() <= 6, "{}", m.check_ids.len());
        let want: Vec<usize> = (0..50).filter(|i| i % 5 == 3).collect();
        for _ in 0..2 {
            let mut got = m.matches_json(br#"{"lot": "A3", "side": "E"}"#);
            got.sort_unstable();
            assert_eq!(got, want);
            let mut got = m.matches(&serde_json::json!({"lot": "a3", "side": "E"}));
            got.sort_unstable();
            assert_eq!(got, want);
            assert!(m.matches_json(br#"{"lot": "A3", "side": "O"}"#).is_empty());
        }
        let ids = m.check_refs.len();
        for i in 1..50 {
            assert!(m.remove(&i));
        }
        assert_eq!(
            m.check_refs.iter().map(|&n| n as usize).sum::<usize>(),
            m.rules[0].as_ref().map_or(0, |r| r.check_ids.len())
        );
        for i in 1..50 {
            m.add(i, &pat(i));
        }
        assert_eq!(m.check_refs.len(), ids, "ids are reused");
        let mut got = m.matches_json(br#"{"side": "E", "lot": "a3"}"#);
        got.sort_unstable();
        assert_eq!(got, want);
    }
}
