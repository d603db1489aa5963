//! The compiled many-rule matcher. All rules' field paths are merged into one trie; the event is
//! walked only along that trie (raw JSON bytes are scanned with every other member skipped
//! undecoded). Every field condition (*clause*) of a rule is indexed at its field's trie node — in
//! hash maps for exact values, prefixes, suffixes, case-folded values and wildcard affixes, a
//! range list for numbers — so a leaf value finds the clauses it satisfies by lookup, whatever the
//! number of rules. One clause per rule, the one with the emptiest buckets, is its *trigger*. After
//! the scan the hit clauses are stamped in per-thread scratch (no allocation per event) and each
//! woken trigger decides its rule: a one-field rule matches at once; a rule of plain fields
//! (no `$or`, no `exists: false`) matches when all its clauses were stamped, as long as the event
//! is *regular* (no object inside an array, no repeated name, at mentioned paths — there AWS's
//! per-element consistency could tell otherwise); the rest are confirmed by the reference
//! evaluator (`eval`) over a pruned copy of the event that holds only the fields some rule
//! mentions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::eval;
use crate::pattern::{Child, Cond, Node};
use crate::scan::{PView, Scan};
use crate::value::{fold_cow, Lit, Range, Scalar, Wildcard};
use crate::Pattern;

/// A small fast hasher (FxHash's multiply-rotate) for the index maps; keys are not adversarial
/// enough to need SipHash's defences (rule authors own their buses).
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// A rule under an affix, with the wildcard to test on a hit (when the affix came from one).
type AffixRule = (u32, Option<Box<Wildcard>>);

/// Rules indexed by string prefixes (or suffixes): the map plus the distinct key lengths. An entry
/// may carry the whole wildcard the affix came from, tested on a hit.
#[derive(Default)]
struct Affix {
    map: FxMap<Box<str>, Vec<AffixRule>>,
    lens: Vec<usize>,
}

impl Affix {
    fn add(&mut self, s: &str, rule: u32, check: Option<&Wildcard>) {
        self.map
            .entry(s.into())
            .or_default()
            .push((rule, check.map(|w| Box::new(w.clone()))));
        if !self.lens.contains(&s.len()) {
            self.lens.push(s.len());
        }
    }
    fn remove(&mut self, s: &str, rule: u32) {
        if let Some(v) = self.map.get_mut(s) {
            v.retain(|(r, _)| *r != rule);
            if v.is_empty() {
                self.map.remove(s);
                if !self.map.keys().any(|k| k.len() == s.len()) {
                    self.lens.retain(|&l| l != s.len());
                }
            }
        }
    }
    #[inline]
    fn hits(&self, s: &str, suffix: bool, out: &mut Vec<u32>) {
        for &l in &self.lens {
            let part = if suffix {
                s.len().checked_sub(l).and_then(|at| s.get(at..))
            } else {
                s.get(..l)
            };
            if let Some(rules) = part.and_then(|p| self.map.get(p)) {
                for (r, check) in rules {
                    if check.as_ref().is_none_or(|w| w.matches(s)) {
                        out.push(*r);
                    }
                }
            }
        }
    }
}

/// One field path of the trie, with the anchors of the rules indexed there.
#[derive(Default)]
struct TNode {
    /// Field name → child node: a list while short, also a map once long.
    children: Vec<(Box<[u8]>, u32)>,
    /// (length, first eight bytes) of each name in `children`, compared before the bytes.
    child_sigs: Vec<(usize, u64)>,
    child_map: FxMap<Box<[u8]>, u32>,
    exact_str: FxMap<Box<str>, Vec<u32>>,
    exact_num: FxMap<u64, Vec<u32>>,
    /// true, false, null
    exact_word: [Vec<u32>; 3],
    prefix: Affix,
    suffix: Affix,
    prefix_ic: Affix,
    suffix_ic: Affix,
    eq_ic: FxMap<Box<str>, Vec<u32>>,
    numeric: Vec<(Range, u32)>,
    /// Rules whose conditions here are tested one by one (anything-but, cidr, IP literals, ...).
    direct: Vec<(u32, Vec<Cond>)>,
    /// This node's position among its parent's children (for the early-exit bitmask).
    slot: u32,
    anchors: usize,
    folded: usize,
}

/// One anchor entry: how a rule is indexed at its anchor field.
#[derive(Debug, Clone)]
enum Entry {
    Str(String),
    Num(f64),
    Word(usize),
    Prefix(String, Option<Wildcard>),
    Suffix(String, Option<Wildcard>),
    PrefixIc(String),
    SuffixIc(String),
    EqIc(String),
    Numeric(Range),
    Direct(Vec<Cond>),
}

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
    /// (trie node, clause id, index entries) of every indexed clause; the first is the trigger.
    clauses: Vec<(u32, u32, Vec<Entry>)>,
    mode: Mode,
}

/// Per-thread scratch reused across events: clause and rule stamps (an entry is "set" for this
/// event when it equals `epoch`), the hit list and the rules needing the evaluator.
#[derive(Default)]
struct Scratch {
    epoch: u32,
    clause: Vec<u32>,
    rule: Vec<u32>,
    cands: Vec<u32>,
    eval: Vec<u32>,
}

impl Scratch {
    fn begin(&mut self, clauses: usize, rules: usize) {
        if self.epoch == u32::MAX {
            self.clause.iter_mut().for_each(|x| *x = 0);
            self.rule.iter_mut().for_each(|x| *x = 0);
            self.epoch = 0;
        }
        self.epoch += 1;
        if self.clause.len() < clauses {
            self.clause.resize(clauses, 0);
        }
        if self.rule.len() < rules {
            self.rule.resize(rules, 0);
        }
        self.cands.clear();
        self.eval.clear();
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Many patterns compiled into one matcher; `K` identifies a rule.
pub struct Matcher<K> {
    rules: Vec<Option<Rule<K>>>,
    free: Vec<u32>,
    by_key: HashMap<K, u32>,
    trie: Vec<TNode>,
    unanchored: Vec<u32>,
    /// Clause id → (rule, is the rule's trigger).
    clause_of: Vec<(u32, bool)>,
    free_clauses: Vec<u32>,
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
            clause_of: Vec::new(),
            free_clauses: Vec::new(),
            confirm: 0,
        }
    }
}

/// A field name's length and first eight bytes, for quick comparison.
#[inline]
fn sig(name: &[u8]) -> (usize, u64) {
    let mut w = 0u64;
    for (i, &c) in name.iter().take(8).enumerate() {
        w |= (c as u64) << (8 * i);
    }
    (name.len(), w)
}

/// Up to this many children a node's names are searched in a list, not hashed.
const SHORT_CHILDREN: usize = 12;

#[inline]
fn num_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// How good an anchor a leaf's conditions make (lower is better) and its entries; None when the
/// leaf cannot be indexed (`exists: false` matches absent fields, which no lookup can find). Every
/// entry decides its condition exactly.
fn anchor_entries(conds: &[Cond]) -> Option<(u8, Vec<Entry>)> {
    let mut score = 0u8;
    let mut out = Vec::with_capacity(conds.len());
    let mut direct = Vec::new();
    for c in conds {
        let (s, e) = match c {
            Cond::Exact(Lit::Str(s)) => (0, Entry::Str(s.clone())),
            Cond::Exact(Lit::Num(x)) => (0, Entry::Num(*x)),
            Cond::Exact(Lit::Bool(true)) => (0, Entry::Word(0)),
            Cond::Exact(Lit::Bool(false)) => (0, Entry::Word(1)),
            Cond::Exact(Lit::Null) => (0, Entry::Word(2)),
            Cond::EqIc(s) => (1, Entry::EqIc(s.clone())),
            Cond::Prefix(s) => (1, Entry::Prefix(s.clone(), None)),
            Cond::Suffix(s) => (1, Entry::Suffix(s.clone(), None)),
            Cond::PrefixIc(s) => (1, Entry::PrefixIc(s.clone())),
            Cond::SuffixIc(s) => (1, Entry::SuffixIc(s.clone())),
            Cond::Wildcard(w) => {
                let (first, last) = (&w.parts[0], &w.parts[w.parts.len() - 1]);
                if w.parts.len() == 1 {
                    (0, Entry::Str(first.clone()))
                } else if !first.is_empty() {
                    (2, Entry::Prefix(first.clone(), Some(w.clone())))
                } else if !last.is_empty() {
                    (2, Entry::Suffix(last.clone(), Some(w.clone())))
                } else {
                    direct.push(c.clone());
                    continue;
                }
            }
            Cond::Numeric(r) => (3, Entry::Numeric(*r)),
            Cond::Exists(false) => return None,
            _ => {
                direct.push(c.clone());
                continue;
            }
        };
        score = score.max(s);
        out.push(e);
    }
    if !direct.is_empty() {
        score = 4;
        out.push(Entry::Direct(direct));
    }
    Some((score, out))
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
        self.trie.push(TNode {
            slot,
            ..TNode::default()
        });
        let t = &mut self.trie[at as usize];
        t.children.push((name.as_bytes().into(), id));
        t.child_sigs.push(sig(name.as_bytes()));
        if t.children.len() > SHORT_CHILDREN {
            if t.child_map.is_empty() {
                t.child_map = t.children.iter().cloned().collect();
            } else {
                t.child_map.insert(name.as_bytes().into(), id);
            }
        }
        id
    }

    /// The expected work an anchor entry adds at node `t`: the rules already sharing its bucket
    /// (all of which a hit there wakes), plus a little for kinds that hit more often.
    fn entry_cost(t: &TNode, e: &Entry) -> usize {
        match e {
            Entry::Str(s) => t.exact_str.get(s.as_str()).map_or(0, Vec::len) + 1,
            Entry::Num(x) => t.exact_num.get(&num_key(*x)).map_or(0, Vec::len) + 1,
            Entry::Word(w) => t.exact_word[*w].len() + 4,
            Entry::EqIc(s) => t.eq_ic.get(s.as_str()).map_or(0, Vec::len) + 2,
            Entry::Prefix(s, _) => {
                t.prefix.map.get(s.as_str()).map_or(0, Vec::len) + 2 + t.prefix.lens.len()
            }
            Entry::Suffix(s, _) => {
                t.suffix.map.get(s.as_str()).map_or(0, Vec::len) + 2 + t.suffix.lens.len()
            }
            Entry::PrefixIc(s) => {
                t.prefix_ic.map.get(s.as_str()).map_or(0, Vec::len) + 3 + t.prefix_ic.lens.len()
            }
            Entry::SuffixIc(s) => {
                t.suffix_ic.map.get(s.as_str()).map_or(0, Vec::len) + 3 + t.suffix_ic.lens.len()
            }
            Entry::Numeric(_) => t.numeric.len() + 16,
            Entry::Direct(_) => t.direct.len() + 32,
        }
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

    fn new_clause(&mut self, rule: u32, trigger: bool) -> u32 {
        match self.free_clauses.pop() {
            Some(c) => {
                self.clause_of[c as usize] = (rule, trigger);
                c
            }
            None => {
                self.clause_of.push((rule, trigger));
                (self.clause_of.len() - 1) as u32
            }
        }
    }

    /// Index clause `id` at trie node `at` under `entries`.
    fn index(&mut self, at: u32, entries: &[Entry], id: u32) {
        let t = &mut self.trie[at as usize];
        for e in entries {
            match e {
                Entry::Str(s) => t.exact_str.entry(s.as_str().into()).or_default().push(id),
                Entry::Num(x) => t.exact_num.entry(num_key(*x)).or_default().push(id),
                Entry::Word(w) => t.exact_word[*w].push(id),
                Entry::Prefix(s, w) => t.prefix.add(s, id, w.as_ref()),
                Entry::Suffix(s, w) => t.suffix.add(s, id, w.as_ref()),
                Entry::PrefixIc(s) => t.prefix_ic.add(s, id, None),
                Entry::SuffixIc(s) => t.suffix_ic.add(s, id, None),
                Entry::EqIc(s) => t.eq_ic.entry(s.as_str().into()).or_default().push(id),
                Entry::Numeric(r) => t.numeric.push((*r, id)),
                Entry::Direct(conds) => t.direct.push((id, conds.clone())),
            }
            if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                t.folded += 1;
            }
            t.anchors += 1;
        }
    }

    fn unindex(&mut self, at: u32, entries: &[Entry], id: u32) {
        let t = &mut self.trie[at as usize];
        fn drop_from<Q: Hash + Eq + ?Sized, B: std::borrow::Borrow<Q> + Hash + Eq>(
            m: &mut FxMap<B, Vec<u32>>,
            k: &Q,
            id: u32,
        ) {
            if let Some(v) = m.get_mut(k) {
                v.retain(|&r| r != id);
                if v.is_empty() {
                    m.remove(k);
                }
            }
        }
        for e in entries {
            match e {
                Entry::Str(s) => drop_from(&mut t.exact_str, s.as_str(), id),
                Entry::Num(x) => drop_from(&mut t.exact_num, &num_key(*x), id),
                Entry::Word(w) => t.exact_word[*w].retain(|&r| r != id),
                Entry::Prefix(s, _) => t.prefix.remove(s, id),
                Entry::Suffix(s, _) => t.suffix.remove(s, id),
                Entry::PrefixIc(s) => t.prefix_ic.remove(s, id),
                Entry::SuffixIc(s) => t.suffix_ic.remove(s, id),
                Entry::EqIc(s) => drop_from(&mut t.eq_ic, s.as_str(), id),
                Entry::Numeric(_) => t.numeric.retain(|&(_, r)| r != id),
                Entry::Direct(_) => t.direct.retain(|(r, _)| *r != id),
            }
            if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                t.folded -= 1;
            }
            t.anchors -= 1;
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
                let cost: usize = entries.iter().map(|e| Self::entry_cost(t, e)).sum();
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
                    let id = self.new_clause(idx, n == 0);
                    self.index(*at, &entries, id);
                    clauses.push((*at, id, entries));
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
        for (at, id, entries) in &rule.clauses {
            self.unindex(*at, entries, *id);
            self.free_clauses.push(*id);
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

    /// Rules whose anchor a leaf value at trie node `t` hits.
    #[inline]
    pub(crate) fn hits(&self, t: u32, v: Scalar<'_>, out: &mut Vec<u32>) {
        let n = &self.trie[t as usize];
        if n.anchors == 0 {
            return;
        }
        match v {
            Scalar::Str(s) => {
                if !n.exact_str.is_empty() {
                    if let Some(r) = n.exact_str.get(s) {
                        out.extend_from_slice(r);
                    }
                }
                if !n.prefix.lens.is_empty() {
                    n.prefix.hits(s, false, out);
                }
                if !n.suffix.lens.is_empty() {
                    n.suffix.hits(s, true, out);
                }
                if n.folded > 0 {
                    let f = fold_cow(s);
                    if let Some(r) = n.eq_ic.get(&*f) {
                        out.extend_from_slice(r);
                    }
                    n.prefix_ic.hits(&f, false, out);
                    n.suffix_ic.hits(&f, true, out);
                }
            }
            Scalar::Num(x) => {
                if !n.exact_num.is_empty() {
                    if let Some(r) = n.exact_num.get(&num_key(x)) {
                        out.extend_from_slice(r);
                    }
                }
                for (range, r) in &n.numeric {
                    if range.contains(x) {
                        out.push(*r);
                    }
                }
            }
            Scalar::Bool(b) => out.extend_from_slice(&n.exact_word[if b { 0 } else { 1 }]),
            Scalar::Null => out.extend_from_slice(&n.exact_word[2]),
        }
        for (r, conds) in &n.direct {
            if conds
                .iter()
                .any(|c| matches!(c, Cond::Exists(true)) || c.test(v))
            {
                out.push(*r);
            }
        }
    }

    /// Collect clause hits walking a `serde_json::Value` along the trie; `irregular` turns true
    /// at an object inside an array where some rule looks for fields.
    fn walk(
        &self,
        v: &serde_json::Value,
        t: u32,
        in_array: bool,
        out: &mut Vec<u32>,
        irregular: &mut bool,
    ) {
        use serde_json::Value as V;
        match v {
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
                            self.walk(child, *c, false, out, irregular);
                        }
                    }
                } else {
                    for (name, child) in m {
                        if let Some(c) = self.child_of(t, name.as_bytes()) {
                            self.walk(child, c, false, out, irregular);
                        }
                    }
                }
            }
            V::Array(items) => items
                .iter()
                .for_each(|e| self.walk(e, t, true, out, irregular)),
            V::String(s) => self.hits(t, Scalar::Str(s), out),
            V::Number(n) => self.hits(t, Scalar::Num(n.as_f64().unwrap_or(f64::NAN)), out),
            V::Bool(b) => self.hits(t, Scalar::Bool(*b), out),
            V::Null => self.hits(t, Scalar::Null, out),
        }
    }

    /// Decide the rules from this event's clause hits (`sc.cands`): a trigger hit wakes its rule,
    /// which matches outright (`Sufficient`), when all its clauses were hit (`Counted`, on a
    /// regular event), or as `confirm` (the reference evaluator) says.
    fn decide(
        &self,
        sc: &mut Scratch,
        irregular: bool,
        confirm: &mut dyn FnMut(&Node) -> bool,
    ) -> Vec<K> {
        let Scratch {
            epoch,
            clause,
            rule: stamp,
            cands,
            eval,
        } = sc;
        let epoch = *epoch;
        for &c in cands.iter() {
            clause[c as usize] = epoch;
        }
        let mut out = Vec::new();
        for &c in cands.iter() {
            let (r, trigger) = self.clause_of[c as usize];
            if !trigger || stamp[r as usize] == epoch {
                continue;
            }
            stamp[r as usize] = epoch;
            let Some(rule) = &self.rules[r as usize] else {
                continue;
            };
            match rule.mode {
                Mode::Sufficient => out.push(rule.key.clone()),
                Mode::Counted => {
                    if rule.clauses[1..]
                        .iter()
                        .all(|(_, id, _)| clause[*id as usize] == epoch)
                    {
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
        SCRATCH.with(|cell| {
            let mut guard = cell.try_borrow_mut().ok();
            let mut local = Scratch::default();
            let sc = match guard.as_deref_mut() {
                Some(s) => s,
                None => &mut local,
            };
            sc.begin(self.clause_of.len(), self.rules.len());
            f(sc)
        })
    }

    /// The rules whose patterns match `event`, each once, in no particular order.
    pub fn matches(&self, event: &serde_json::Value) -> Vec<K> {
        if self.is_empty() {
            return Vec::new();
        }
        self.with_scratch(|sc| {
            let mut irregular = false;
            self.walk(event, 0, false, &mut sc.cands, &mut irregular);
            self.decide(sc, irregular, &mut |node| {
                eval::node_matches(node, Some(event))
            })
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
            let root = first.run(event);
            sc.cands = std::mem::take(&mut first.cands);
            let Some(root) = root else {
                return Vec::new();
            };
            let irregular = first.irregular;
            let mut pruned = first.build.then(|| (first.into_pruned(), root));
            self.decide(sc, irregular, &mut |node| {
                let (p, root) = pruned.get_or_insert_with(|| {
                    let mut again = Scan::new(self, true, false);
                    let root = again.run(event).unwrap_or(u32::MAX);
                    (again.into_pruned(), root)
                });
                eval::node_matches(node, Some(PView { p, i: *root }))
            })
        })
    }

    #[inline]
    pub(crate) fn child_of(&self, t: u32, name: &[u8]) -> Option<u32> {
        self.child_by_sig(t, sig(name), name)
    }

    /// `child_of` with the name's `sig` already computed.
    #[inline]
    pub(crate) fn child_by_sig(&self, t: u32, want: (usize, u64), name: &[u8]) -> Option<u32> {
        let n = &self.trie[t as usize];
        if n.children.len() > SHORT_CHILDREN {
            return n.child_map.get(name).copied();
        }
        for (i, s) in n.child_sigs.iter().enumerate() {
            if *s == want && (name.len() <= 8 || n.children[i].0[8..].iter().eq(name[8..].iter())) {
                return Some(n.children[i].1);
            }
        }
        None
    }

    pub(crate) fn child_count(&self, t: u32) -> usize {
        self.trie[t as usize].children.len()
    }

    pub(crate) fn slot_of(&self, t: u32) -> u32 {
        self.trie[t as usize].slot
    }
}
