//! The compiled many-rule matcher. All rules' field paths are merged into one trie; the event is
//! walked only along that trie (raw JSON bytes are scanned with every other member skipped
//! undecoded). Each rule is indexed under one *anchor* — a field every match needs, whose
//! conditions are exact values, prefixes, suffixes, case-folded values, wildcard affixes or numeric
//! ranges — in hash maps (and a range list) at that field's trie node, so a leaf value finds its
//! candidate rules by lookup, whatever the number of rules. Rules that need no more than their
//! anchor (one field, conditions that the index decides exactly) match on the lookup alone; the
//! rest, and the few rules with no usable anchor, are confirmed by the reference evaluator (`eval`)
//! over a pruned copy of the event that holds only the fields some rule mentions.

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

struct Rule<K> {
    key: K,
    root: Node,
    anchor: Option<(u32, Vec<Entry>)>,
    /// An anchor hit is a match (no confirmation needed).
    sufficient: bool,
}

/// Many patterns compiled into one matcher; `K` identifies a rule.
pub struct Matcher<K> {
    rules: Vec<Option<Rule<K>>>,
    free: Vec<u32>,
    by_key: HashMap<K, u32>,
    trie: Vec<TNode>,
    unanchored: Vec<u32>,
    /// Rules that need confirmation (so matching must keep a pruned copy of the event).
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

    /// The best anchor among the fields every match needs (those not under an `$or`).
    fn choose_anchor(
        &mut self,
        node: &Node,
        at: u32,
        best: &mut Option<((usize, u8), u32, Vec<Entry>)>,
    ) {
        for (name, child) in &node.fields {
            let c = self.child(at, name);
            match child {
                Child::Obj(n) => self.choose_anchor(n, c, best),
                Child::Leaf(conds) => {
                    if let Some((score, entries)) = anchor_entries(conds) {
                        let t = &self.trie[c as usize];
                        let cost: usize = entries.iter().map(|e| Self::entry_cost(t, e)).sum();
                        if best.as_ref().is_none_or(|b| (cost, score) < b.0) {
                            *best = Some(((cost, score), c, entries));
                        }
                    }
                }
            }
        }
    }

    /// Add (or replace) the pattern of rule `key`.
    pub fn add(&mut self, key: K, pattern: &Pattern) {
        self.remove(&key);
        let root = pattern.root.clone();
        self.intern(&root, 0);
        let mut best = None;
        self.choose_anchor(&root, 0, &mut best);
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.rules.push(None);
                (self.rules.len() - 1) as u32
            }
        };
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
        let (anchor, sufficient) = match best {
            Some((_, at, entries)) => {
                let t = &mut self.trie[at as usize];
                for e in &entries {
                    match e {
                        Entry::Str(s) => {
                            t.exact_str.entry(s.as_str().into()).or_default().push(idx)
                        }
                        Entry::Num(x) => t.exact_num.entry(num_key(*x)).or_default().push(idx),
                        Entry::Word(w) => t.exact_word[*w].push(idx),
                        Entry::Prefix(s, w) => t.prefix.add(s, idx, w.as_ref()),
                        Entry::Suffix(s, w) => t.suffix.add(s, idx, w.as_ref()),
                        Entry::PrefixIc(s) => t.prefix_ic.add(s, idx, None),
                        Entry::SuffixIc(s) => t.suffix_ic.add(s, idx, None),
                        Entry::EqIc(s) => t.eq_ic.entry(s.as_str().into()).or_default().push(idx),
                        Entry::Numeric(r) => t.numeric.push((*r, idx)),
                        Entry::Direct(conds) => t.direct.push((idx, conds.clone())),
                    }
                    if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                        t.folded += 1;
                    }
                    t.anchors += 1;
                }
                (Some((at, entries)), single_chain)
            }
            None => {
                self.unanchored.push(idx);
                (None, false)
            }
        };
        if !sufficient {
            self.confirm += 1;
        }
        self.by_key.insert(key.clone(), idx);
        self.rules[idx as usize] = Some(Rule {
            key,
            root,
            anchor,
            sufficient,
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
        if !rule.sufficient {
            self.confirm -= 1;
        }
        match rule.anchor {
            Some((at, entries)) => {
                let t = &mut self.trie[at as usize];
                fn drop_from<Q: Hash + Eq + ?Sized, B: std::borrow::Borrow<Q> + Hash + Eq>(
                    m: &mut FxMap<B, Vec<u32>>,
                    k: &Q,
                    idx: u32,
                ) {
                    if let Some(v) = m.get_mut(k) {
                        v.retain(|&r| r != idx);
                        if v.is_empty() {
                            m.remove(k);
                        }
                    }
                }
                for e in &entries {
                    match e {
                        Entry::Str(s) => drop_from(&mut t.exact_str, s.as_str(), idx),
                        Entry::Num(x) => drop_from(&mut t.exact_num, &num_key(*x), idx),
                        Entry::Word(w) => t.exact_word[*w].retain(|&r| r != idx),
                        Entry::Prefix(s, _) => t.prefix.remove(s, idx),
                        Entry::Suffix(s, _) => t.suffix.remove(s, idx),
                        Entry::PrefixIc(s) => t.prefix_ic.remove(s, idx),
                        Entry::SuffixIc(s) => t.suffix_ic.remove(s, idx),
                        Entry::EqIc(s) => drop_from(&mut t.eq_ic, s.as_str(), idx),
                        Entry::Numeric(_) => t.numeric.retain(|&(_, r)| r != idx),
                        Entry::Direct(_) => t.direct.retain(|(r, _)| *r != idx),
                    }
                    if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                        t.folded -= 1;
                    }
                    t.anchors -= 1;
                }
            }
            None => self.unanchored.retain(|&r| r != idx),
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

    /// Collect anchor hits walking a `serde_json::Value` along the trie.
    fn walk(&self, v: &serde_json::Value, t: u32, out: &mut Vec<u32>) {
        use serde_json::Value as V;
        match v {
            V::Object(m) => {
                let node = &self.trie[t as usize];
                if node.children.is_empty() {
                    return;
                }
                if node.children.len() < m.len() {
                    for (name, c) in &node.children {
                        let name = std::str::from_utf8(name).unwrap_or_default();
                        if let Some(child) = m.get(name) {
                            self.walk(child, *c, out);
                        }
                    }
                } else {
                    for (name, child) in m {
                        if let Some(c) = self.child_of(t, name.as_bytes()) {
                            self.walk(child, c, out);
                        }
                    }
                }
            }
            V::Array(items) => items.iter().for_each(|e| self.walk(e, t, out)),
            V::String(s) => self.hits(t, Scalar::Str(s), out),
            V::Number(n) => self.hits(t, Scalar::Num(n.as_f64().unwrap_or(f64::NAN)), out),
            V::Bool(b) => self.hits(t, Scalar::Bool(*b), out),
            V::Null => self.hits(t, Scalar::Null, out),
        }
    }

    fn finish_with(&self, mut cands: Vec<u32>, confirm: &mut dyn FnMut(&Node) -> bool) -> Vec<K> {
        if cands.is_empty() && self.unanchored.is_empty() {
            return Vec::new();
        }
        cands.extend_from_slice(&self.unanchored);
        cands.sort_unstable();
        cands.dedup();
        let mut out = Vec::with_capacity(cands.len());
        for idx in cands {
            let Some(rule) = &self.rules[idx as usize] else {
                continue;
            };
            if rule.sufficient || confirm(&rule.root) {
                out.push(rule.key.clone());
            }
        }
        out
    }

    /// The rules whose patterns match `event`, each once, in no particular order.
    pub fn matches(&self, event: &serde_json::Value) -> Vec<K> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut cands = Vec::new();
        self.walk(event, 0, &mut cands);
        self.finish_with(cands, &mut |node| eval::node_matches(node, Some(event)))
    }

    /// The rules matching the event given as JSON text (none if it is not valid JSON up to the
    /// last member any rule mentions; what follows that member is skipped unread). Faster than
    /// parsing the event first: only members some rule mentions are decoded.
    pub fn matches_json(&self, event: &[u8]) -> Vec<K> {
        if self.is_empty() {
            return Vec::new();
        }
        // Keep the pruned copy in the same pass when some rule may need confirming (a second
        // scan costs more than the copy of the few mentioned fields).
        let mut first = Scan::new(self, self.confirm > 0, true);
        let Some(root) = first.run(event) else {
            return Vec::new();
        };
        let cands = std::mem::take(&mut first.cands);
        let mut pruned = first.build.then(|| (first.into_pruned(), root));
        self.finish_with(cands, &mut |node| {
            let (p, root) = pruned.get_or_insert_with(|| {
                let mut again = Scan::new(self, true, false);
                let root = again.run(event).unwrap_or(u32::MAX);
                (again.into_pruned(), root)
            });
            eval::node_matches(node, Some(PView { p, i: *root }))
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
