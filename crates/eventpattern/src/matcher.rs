//! The compiled many-rule matcher. All rules' field paths are merged into one trie; the event is
//! walked only along that trie (raw JSON bytes are scanned with every other member skipped
//! undecoded). Each rule is indexed under one *anchor* — a field every match needs, whose
//! conditions are exact values, prefixes, suffixes, case-folded values, wildcard affixes or numeric
//! ranges — in hash maps (and a range list) at that field's trie node, so a leaf value finds its
//! candidate rules by lookup, whatever the number of rules. Rules that need no more than their
//! anchor (one field, conditions that the index decides exactly) match on the lookup alone; the
//! rest, and the few rules with no usable anchor, are confirmed by the reference evaluator (`eval`)
//! over a pruned copy of the event that holds only the fields some rule mentions.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::eval::{self, View};
use crate::json::{Reader, SyntaxError, MAX_DEPTH};
use crate::pattern::{Child, Cond, Node};
use crate::value::{fold, Lit, Range, Scalar};
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

/// Rules indexed by string prefixes (or suffixes): the map plus the distinct key lengths.
#[derive(Default)]
struct Affix {
    map: FxMap<Box<str>, Vec<u32>>,
    lens: Vec<usize>,
}

impl Affix {
    fn add(&mut self, s: &str, rule: u32) {
        self.map.entry(s.into()).or_default().push(rule);
        if !self.lens.contains(&s.len()) {
            self.lens.push(s.len());
        }
    }
    fn remove(&mut self, s: &str, rule: u32) {
        if let Some(v) = self.map.get_mut(s) {
            v.retain(|&r| r != rule);
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
                out.extend_from_slice(rules);
            }
        }
    }
}

/// One field path of the trie, with the anchors of the rules indexed there.
#[derive(Default)]
struct TNode {
    children: FxMap<Box<str>, u32>,
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
    anchors: usize,
    folded: usize,
}

/// One anchor entry: how a rule is indexed at its anchor field.
#[derive(Debug, Clone)]
enum Entry {
    Str(String),
    Num(f64),
    Word(usize),
    Prefix(String),
    Suffix(String),
    PrefixIc(String),
    SuffixIc(String),
    EqIc(String),
    Numeric(Range),
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

#[inline]
fn num_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// How good an anchor a leaf's conditions make (lower is better), and its entries; None when
/// some condition cannot be indexed. The flag says whether the index decides the leaf exactly.
fn anchor_entries(conds: &[Cond]) -> Option<(u8, Vec<Entry>, bool)> {
    let mut score = 0u8;
    let mut exact = true;
    let mut out = Vec::with_capacity(conds.len());
    for c in conds {
        let (s, e) = match c {
            Cond::Exact(Lit::Str(s)) => (0, Entry::Str(s.clone())),
            Cond::Exact(Lit::Num(x)) => (0, Entry::Num(*x)),
            Cond::Exact(Lit::Bool(true)) => (0, Entry::Word(0)),
            Cond::Exact(Lit::Bool(false)) => (0, Entry::Word(1)),
            Cond::Exact(Lit::Null) => (0, Entry::Word(2)),
            Cond::EqIc(s) => (1, Entry::EqIc(s.clone())),
            Cond::Prefix(s) => (1, Entry::Prefix(s.clone())),
            Cond::Suffix(s) => (1, Entry::Suffix(s.clone())),
            Cond::PrefixIc(s) => (1, Entry::PrefixIc(s.clone())),
            Cond::SuffixIc(s) => (1, Entry::SuffixIc(s.clone())),
            Cond::Wildcard(w) => {
                exact &= w.parts.len() == 1;
                let (first, last) = (&w.parts[0], &w.parts[w.parts.len() - 1]);
                if w.parts.len() == 1 {
                    (0, Entry::Str(first.clone()))
                } else if !first.is_empty() {
                    (2, Entry::Prefix(first.clone()))
                } else if !last.is_empty() {
                    (2, Entry::Suffix(last.clone()))
                } else {
                    return None;
                }
            }
            Cond::Numeric(r) => (3, Entry::Numeric(*r)),
            _ => return None,
        };
        score = score.max(s);
        out.push(e);
    }
    Some((score, out, exact))
}

impl<K: Clone + Eq + Hash> Matcher<K> {
    pub fn new() -> Self {
        Self::default()
    }

    fn child(&mut self, at: u32, name: &str) -> u32 {
        if let Some(&c) = self.trie[at as usize].children.get(name) {
            return c;
        }
        let id = self.trie.len() as u32;
        self.trie.push(TNode::default());
        self.trie[at as usize].children.insert(name.into(), id);
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

    /// The best anchor among the fields every match needs (those not under an `$or`).
    fn choose_anchor(
        &mut self,
        node: &Node,
        at: u32,
        best: &mut Option<(u8, u32, Vec<Entry>, bool)>,
    ) {
        for (name, child) in &node.fields {
            let c = self.child(at, name);
            match child {
                Child::Obj(n) => self.choose_anchor(n, c, best),
                Child::Leaf(conds) => {
                    if let Some((score, entries, exact)) = anchor_entries(conds) {
                        if best.as_ref().is_none_or(|b| score < b.0) {
                            *best = Some((score, c, entries, exact));
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
            Some((_, at, entries, exact)) => {
                let t = &mut self.trie[at as usize];
                for e in &entries {
                    match e {
                        Entry::Str(s) => {
                            t.exact_str.entry(s.as_str().into()).or_default().push(idx)
                        }
                        Entry::Num(x) => t.exact_num.entry(num_key(*x)).or_default().push(idx),
                        Entry::Word(w) => t.exact_word[*w].push(idx),
                        Entry::Prefix(s) => t.prefix.add(s, idx),
                        Entry::Suffix(s) => t.suffix.add(s, idx),
                        Entry::PrefixIc(s) => t.prefix_ic.add(s, idx),
                        Entry::SuffixIc(s) => t.suffix_ic.add(s, idx),
                        Entry::EqIc(s) => t.eq_ic.entry(s.as_str().into()).or_default().push(idx),
                        Entry::Numeric(r) => t.numeric.push((*r, idx)),
                    }
                    if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                        t.folded += 1;
                    }
                    t.anchors += 1;
                }
                (Some((at, entries)), exact && single_chain)
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
                        Entry::Prefix(s) => t.prefix.remove(s, idx),
                        Entry::Suffix(s) => t.suffix.remove(s, idx),
                        Entry::PrefixIc(s) => t.prefix_ic.remove(s, idx),
                        Entry::SuffixIc(s) => t.suffix_ic.remove(s, idx),
                        Entry::EqIc(s) => drop_from(&mut t.eq_ic, s.as_str(), idx),
                        Entry::Numeric(_) => t.numeric.retain(|&(_, r)| r != idx),
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
    fn hits(&self, t: u32, v: Scalar<'_>, out: &mut Vec<u32>) {
        let n = &self.trie[t as usize];
        if n.anchors == 0 {
            return;
        }
        match v {
            Scalar::Str(s) => {
                if let Some(r) = n.exact_str.get(s) {
                    out.extend_from_slice(r);
                }
                n.prefix.hits(s, false, out);
                n.suffix.hits(s, true, out);
                if n.folded > 0 {
                    let f = fold(s);
                    if let Some(r) = n.eq_ic.get(f.as_str()) {
                        out.extend_from_slice(r);
                    }
                    n.prefix_ic.hits(&f, false, out);
                    n.suffix_ic.hits(&f, true, out);
                }
            }
            Scalar::Num(x) => {
                if let Some(r) = n.exact_num.get(&num_key(x)) {
                    out.extend_from_slice(r);
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
                    for (name, &c) in &node.children {
                        if let Some(child) = m.get(&**name) {
                            self.walk(child, c, out);
                        }
                    }
                } else {
                    for (name, child) in m {
                        if let Some(&c) = node.children.get(name.as_str()) {
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

    fn finish<V: View>(&self, mut cands: Vec<u32>, event: V) -> Vec<K> {
        cands.extend_from_slice(&self.unanchored);
        cands.sort_unstable();
        cands.dedup();
        let mut out = Vec::with_capacity(cands.len());
        for idx in cands {
            let Some(rule) = &self.rules[idx as usize] else {
                continue;
            };
            if rule.sufficient || eval::node_matches(&rule.root, Some(event)) {
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
        self.finish(cands, event)
    }

    /// The rules matching the event given as JSON text (none if it is not valid JSON). Faster than
    /// parsing the event first: only members some rule mentions are decoded.
    pub fn matches_json(&self, event: &[u8]) -> Vec<K> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut scan = Scan {
            m: self,
            build: self.confirm > 0,
            nodes: Vec::new(),
            members: Vec::new(),
            items: Vec::new(),
            scratch_m: Vec::new(),
            scratch_i: Vec::new(),
            cands: Vec::new(),
        };
        let mut r = Reader::new(event);
        let root = match scan
            .value(&mut r, Some(0), 0)
            .and_then(|root| r.end().map(|_| root))
        {
            Ok(root) => root,
            Err(_) => return Vec::new(),
        };
        let cands = std::mem::take(&mut scan.cands);
        if scan.build {
            let view = PView { s: &scan, i: root };
            self.finish(cands, view)
        } else {
            // Every rule is decided by its anchor: the event itself is never consulted.
            let dummy = PView {
                s: &scan,
                i: u32::MAX,
            };
            self.finish(cands, dummy)
        }
    }
}

/// A node of the pruned event copy built while scanning bytes.
enum PNode<'a> {
    Obj(u32, u32),
    Arr(u32, u32),
    Str(Cow<'a, str>),
    Num(f64),
    Bool(bool),
    Null,
}

struct Scan<'m, 'a, K> {
    m: &'m Matcher<K>,
    build: bool,
    nodes: Vec<PNode<'a>>,
    members: Vec<(Cow<'a, str>, u32)>,
    items: Vec<u32>,
    scratch_m: Vec<(Cow<'a, str>, u32)>,
    scratch_i: Vec<u32>,
    cands: Vec<u32>,
}

impl<'m, 'a, K: Clone + Eq + Hash> Scan<'m, 'a, K> {
    fn push(&mut self, n: PNode<'a>) -> u32 {
        if !self.build {
            return u32::MAX;
        }
        self.nodes.push(n);
        (self.nodes.len() - 1) as u32
    }

    /// Scan one value at trie node `t` (None: no rule looks here, so skip it).
    fn value(
        &mut self,
        r: &mut Reader<'a>,
        t: Option<u32>,
        depth: usize,
    ) -> Result<u32, SyntaxError> {
        let Some(t) = t else {
            r.skip(depth)?;
            return Ok(u32::MAX);
        };
        if depth > MAX_DEPTH {
            return r.err("JSON nesting too deep");
        }
        match r.peek() {
            Some(b'{') => {
                r.i += 1;
                let m = self.m;
                let children = &m.trie[t as usize].children;
                let mark = self.scratch_m.len();
                if r.peek() == Some(b'}') {
                    r.i += 1;
                } else {
                    loop {
                        if r.peek() != Some(b'"') {
                            return r.err("expected a field name");
                        }
                        let key = r.string()?;
                        r.expect(b':')?;
                        let c = if children.is_empty() {
                            None
                        } else {
                            children.get(&*key).copied()
                        };
                        let idx = self.value(r, c, depth + 1)?;
                        if c.is_some() && self.build {
                            self.scratch_m.push((key, idx));
                        }
                        match r.peek() {
                            Some(b',') => r.i += 1,
                            Some(b'}') => {
                                r.i += 1;
                                break;
                            }
                            _ => return r.err("expected ',' or '}'"),
                        }
                    }
                }
                if !self.build {
                    return Ok(u32::MAX);
                }
                let start = self.members.len() as u32;
                self.members.extend(self.scratch_m.drain(mark..));
                let len = self.members.len() as u32 - start;
                Ok(self.push(PNode::Obj(start, len)))
            }
            Some(b'[') => {
                r.i += 1;
                let mark = self.scratch_i.len();
                if r.peek() == Some(b']') {
                    r.i += 1;
                } else {
                    loop {
                        let idx = self.value(r, Some(t), depth + 1)?;
                        if self.build {
                            self.scratch_i.push(idx);
                        }
                        match r.peek() {
                            Some(b',') => r.i += 1,
                            Some(b']') => {
                                r.i += 1;
                                break;
                            }
                            _ => return r.err("expected ',' or ']'"),
                        }
                    }
                }
                if !self.build {
                    return Ok(u32::MAX);
                }
                let start = self.items.len() as u32;
                self.items.extend(self.scratch_i.drain(mark..));
                let len = self.items.len() as u32 - start;
                Ok(self.push(PNode::Arr(start, len)))
            }
            Some(b'"') => {
                let s = r.string()?;
                self.m.hits(t, Scalar::Str(&s), &mut self.cands);
                Ok(self.push(PNode::Str(s)))
            }
            Some(b'-' | b'0'..=b'9') => {
                let x = r.number()?.parse::<f64>().unwrap_or(f64::NAN);
                self.m.hits(t, Scalar::Num(x), &mut self.cands);
                Ok(self.push(PNode::Num(x)))
            }
            Some(_) => {
                let s = match r.word()? {
                    crate::json::J::Bool(b) => Scalar::Bool(b),
                    _ => Scalar::Null,
                };
                self.m.hits(t, s, &mut self.cands);
                Ok(self.push(match s {
                    Scalar::Bool(b) => PNode::Bool(b),
                    _ => PNode::Null,
                }))
            }
            None => r.err("Unexpected end of input"),
        }
    }
}

/// A view of the pruned event for the reference evaluator.
struct PView<'s, 'm, 'a, K> {
    s: &'s Scan<'m, 'a, K>,
    i: u32,
}

impl<K> Clone for PView<'_, '_, '_, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for PView<'_, '_, '_, K> {}

impl<K> PView<'_, '_, '_, K> {
    fn node(&self) -> Option<&PNode<'_>> {
        self.s.nodes.get(self.i as usize)
    }
}

impl<K> View for PView<'_, '_, '_, K> {
    fn get(self, key: &str) -> Option<Self> {
        match self.node()? {
            PNode::Obj(start, len) => self.s.members[*start as usize..(*start + *len) as usize]
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|&(_, i)| PView { s: self.s, i }),
            _ => None,
        }
    }
    fn is_object(self) -> bool {
        matches!(self.node(), Some(PNode::Obj(..)))
    }
    fn for_each_element(self, f: &mut dyn FnMut(Self) -> bool) -> Option<bool> {
        match self.node()? {
            PNode::Arr(start, len) => Some(
                self.s.items[*start as usize..(*start + *len) as usize]
                    .iter()
                    .any(|&i| f(PView { s: self.s, i })),
            ),
            _ => None,
        }
    }
    fn with_scalar(self, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        match self.node() {
            Some(PNode::Str(s)) => f(Scalar::Str(s)),
            Some(PNode::Num(x)) => f(Scalar::Num(*x)),
            Some(PNode::Bool(b)) => f(Scalar::Bool(*b)),
            Some(PNode::Null) => f(Scalar::Null),
            _ => false,
        }
    }
}
