//! The per-field index of the compiled matcher: a trie node (`TNode`) holds, for the rules whose
//! *trigger* clause is on that field, hash maps for exact values, prefixes, suffixes, case-folded
//! values and wildcard affixes, a sorted list of exact numbers and a range list — so a leaf value
//! finds the triggers it satisfies by lookup, whatever the number of rules. `Entry` is one indexed
//! condition; `entry_holds` tests one directly (for a rule's other clauses, checked only once its
//! trigger fired). String keys of up to 16 bytes are held inline (`StrMap`), and a node keeps a
//! bitmask of its children's name lengths, so most event member names are ruled out unread.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::num::{near, NumLit};
use crate::pattern::Cond;
use crate::value::{fold_cow, Lit, Range, Scalar, Wildcard, FIVE_BILLION};

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
    fn write_u8(&mut self, b: u8) {
        self.write_u64(b as u64);
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

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Up to eight bytes as one word (little-endian, zero-padded), read without a byte loop.
#[inline(always)]
fn pack(s: &[u8]) -> u64 {
    let n = s.len();
    debug_assert!(n <= 8);
    if n >= 4 {
        // Two overlapping four-byte reads: the shared bytes are the same on both sides.
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]) as u64;
        lo | hi << (8 * (n - 4))
    } else if n >= 2 {
        let lo = u16::from_le_bytes([s[0], s[1]]) as u64;
        let hi = u16::from_le_bytes([s[n - 2], s[n - 1]]) as u64;
        lo | hi << (8 * (n - 2))
    } else if n == 1 {
        s[0] as u64
    } else {
        0
    }
}

/// Up to sixteen bytes as (length, first eight, next eight), each word as `pack` makes it.
#[inline(always)]
fn key16(s: &[u8]) -> (u8, u64, u64) {
    debug_assert!(s.len() <= 16);
    if s.len() <= 8 {
        (s.len() as u8, pack(s), 0)
    } else {
        (s.len() as u8, pack(&s[..8]), pack(&s[8..]))
    }
}

/// A map keyed by strings: those of up to sixteen bytes by (length, bytes) held inline — two
/// words to hash and compare, no key allocation to follow on a lookup — longer ones by their
/// bytes.
pub(crate) struct StrMap<V> {
    short: FxMap<(u8, u64, u64), V>,
    long: FxMap<Box<[u8]>, V>,
}

impl<V> Default for StrMap<V> {
    fn default() -> Self {
        StrMap {
            short: FxMap::default(),
            long: FxMap::default(),
        }
    }
}

impl<V: Default> StrMap<V> {
    #[inline(always)]
    pub fn get(&self, s: &str) -> Option<&V> {
        self.get_bytes(s.as_bytes())
    }

    /// Lookup by the key's bytes (a key is valid UTF-8, so equal bytes are an equal string).
    #[inline(always)]
    pub fn get_bytes(&self, s: &[u8]) -> Option<&V> {
        if s.len() <= 16 {
            if self.short.is_empty() {
                return None;
            }
            self.short.get(&key16(s))
        } else {
            if self.long.is_empty() {
                return None;
            }
            self.long.get(s)
        }
    }

    pub fn get_mut(&mut self, s: &str) -> Option<&mut V> {
        let s = s.as_bytes();
        if s.len() <= 16 {
            self.short.get_mut(&key16(s))
        } else {
            self.long.get_mut(s)
        }
    }

    pub fn entry(&mut self, s: &str) -> &mut V {
        let s = s.as_bytes();
        if s.len() <= 16 {
            self.short.entry(key16(s)).or_default()
        } else {
            self.long.entry(s.into()).or_default()
        }
    }

    pub fn remove(&mut self, s: &str) {
        let s = s.as_bytes();
        if s.len() <= 16 {
            self.short.remove(&key16(s));
        } else {
            self.long.remove(s);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    /// Whether some key is `n` bytes long.
    pub fn has_len(&self, n: usize) -> bool {
        if n <= 16 {
            self.short.keys().any(|k| k.0 as usize == n)
        } else {
            self.long.keys().any(|k| k.len() == n)
        }
    }
}

/// A rule under an affix, with the wildcard to test on a hit (when the affix came from one).
type AffixRule = (u32, Option<Box<Wildcard>>);

/// Rules indexed by string prefixes (or suffixes): the map plus the distinct key lengths. An entry
/// may carry the whole wildcard the affix came from, tested on a hit.
#[derive(Default)]
pub(crate) struct Affix {
    map: StrMap<Vec<AffixRule>>,
    lens: Vec<usize>,
}

impl Affix {
    fn add(&mut self, s: &str, rule: u32, check: Option<&Wildcard>) {
        self.map
            .entry(s)
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
                if !self.map.has_len(s.len()) {
                    self.lens.retain(|&l| l != s.len());
                }
            }
        }
    }
    fn bucket(&self, s: &str) -> usize {
        self.map.get(s).map_or(0, Vec::len)
    }
    #[inline]
    fn hits(&self, s: &str, suffix: bool, out: &mut Vec<u32>) {
        for &l in &self.lens {
            // A byte range equal to a key (valid UTF-8) is whole characters.
            let b = s.as_bytes();
            let part = if suffix {
                b.len().checked_sub(l).map(|at| &b[at..])
            } else {
                b.get(..l)
            };
            if let Some(rules) = part.and_then(|p| self.map.get_bytes(p)) {
                for (r, check) in rules {
                    if check.as_ref().is_none_or(|w| w.matches(s)) {
                        out.push(*r);
                    }
                }
            }
        }
    }
}

/// A field name's length and first eight bytes, for quick comparison.
#[inline]
pub(crate) fn sig(name: &[u8]) -> (usize, u64) {
    let mut w = 0u64;
    for (i, &c) in name.iter().take(8).enumerate() {
        w |= (c as u64) << (8 * i);
    }
    (name.len(), w)
}

/// Whether two names of the same length (more than eight bytes) agree after their first eight.
#[inline(always)]
fn tail_eq(a: &[u8], b: &[u8]) -> bool {
    match (a.get(8..), b.get(8..)) {
        (Some(x), Some(y)) if x.len() <= 8 && y.len() == x.len() => pack(x) == pack(y),
        (x, y) => x == y,
    }
}

/// Up to this many children a node's names are searched in a list, not hashed.
pub(crate) const SHORT_CHILDREN: usize = 12;

/// One field path of the trie, with the triggers of the rules indexed there.
#[derive(Default)]
pub(crate) struct TNode {
    /// Field name → child node: a list while short, also a map once long.
    pub children: Vec<(Box<[u8]>, u32)>,
    /// (length, first eight bytes) of each name in `children`, compared before the bytes.
    pub child_sigs: Vec<(usize, u64)>,
    /// Bit `n` (63 for 63 and longer) set when some child's name is `n` bytes long: most names
    /// in an event are ruled out by their length alone.
    pub name_lens: u64,
    pub child_map: FxMap<Box<[u8]>, u32>,
    exact_str: StrMap<Vec<u32>>,
    exact_num: FxMap<u64, Vec<u32>>,
    /// The distinct keys of `exact_num`, sorted, to rule a number out by its approximation.
    num_sorted: Vec<f64>,
    /// true, false, null
    exact_word: [Vec<u32>; 3],
    prefix: Affix,
    suffix: Affix,
    prefix_ic: Affix,
    suffix_ic: Affix,
    eq_ic: StrMap<Vec<u32>>,
    numeric: Vec<(Range, u32)>,
    /// Rules whose conditions here are tested one by one (anything-but, cidr, IP literals, ...).
    direct: Vec<(u32, Vec<Cond>)>,
    /// This node's position among its parent's children (for the early-exit bitmask).
    pub slot: u32,
    pub anchors: usize,
    folded: usize,
    /// Non-trigger clauses of counted rules at this field: the scan records its values.
    pub checks: usize,
}

/// One indexed condition of a clause (a clause holds when any of its entries does).
#[derive(Debug, Clone)]
pub(crate) enum Entry {
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
pub(crate) fn anchor_entries(conds: &[Cond]) -> Option<(u8, Vec<Entry>)> {
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

/// Does one leaf value satisfy the entry? (The same judgement the index makes by lookup.)
pub(crate) fn entry_holds(e: &Entry, v: Scalar<'_>) -> bool {
    match (e, v) {
        (Entry::Str(p), Scalar::Str(s)) => p == s,
        (Entry::Num(p), Scalar::Num(x)) => *p == x,
        (Entry::Word(0), Scalar::Bool(true)) => true,
        (Entry::Word(1), Scalar::Bool(false)) => true,
        (Entry::Word(2), Scalar::Null) => true,
        (Entry::Prefix(p, w), Scalar::Str(s)) => {
            s.starts_with(p.as_str()) && w.as_ref().is_none_or(|w| w.matches(s))
        }
        (Entry::Suffix(p, w), Scalar::Str(s)) => {
            s.ends_with(p.as_str()) && w.as_ref().is_none_or(|w| w.matches(s))
        }
        (Entry::PrefixIc(p), Scalar::Str(s)) => fold_cow(s).starts_with(p.as_str()),
        (Entry::SuffixIc(p), Scalar::Str(s)) => fold_cow(s).ends_with(p.as_str()),
        (Entry::EqIc(p), Scalar::Str(s)) => *p == *fold_cow(s),
        (Entry::Numeric(r), Scalar::Num(x)) => r.contains(x),
        (Entry::Direct(conds), v) => conds
            .iter()
            .any(|c| matches!(c, Cond::Exists(true)) || c.test(v)),
        _ => false,
    }
}

/// Whether a range decides the approximate value `a` the same way it decides the exact one (no
/// bound within the margin of `a`); then its verdict.
#[inline]
fn range_decides(r: &Range, a: f64) -> Option<bool> {
    let close = |b: Option<(f64, bool)>| b.is_some_and(|(b, _)| near(a, b));
    if close(r.lo) || close(r.hi) || near(a, FIVE_BILLION) || near(a, -FIVE_BILLION) {
        return None;
    }
    Some(r.contains(a))
}

impl TNode {
    /// The child named `name`, whose `sig` is `want`.
    #[inline(always)]
    pub fn child_by_sig(&self, want: (usize, u64), name: &[u8]) -> Option<u32> {
        if self.children.len() > SHORT_CHILDREN {
            return self.child_map.get(name).copied();
        }
        for (s, (full, c)) in self.child_sigs.iter().zip(&self.children) {
            if *s == want && (want.0 <= 8 || tail_eq(full, name)) {
                return Some(*c);
            }
        }
        None
    }

    /// The child named `name`.
    #[inline]
    pub fn child_by_name(&self, name: &[u8]) -> Option<u32> {
        self.child_by_sig(sig(name), name)
    }

    /// The expected work an anchor entry adds here: the rules already sharing its bucket (all of
    /// which a hit there wakes), plus a little for kinds that hit more often.
    pub fn cost(&self, e: &Entry) -> usize {
        match e {
            Entry::Str(s) => self.exact_str.get(s.as_str()).map_or(0, Vec::len) + 1,
            Entry::Num(x) => self.exact_num.get(&num_key(*x)).map_or(0, Vec::len) + 1,
            Entry::Word(w) => self.exact_word[*w].len() + 4,
            Entry::EqIc(s) => self.eq_ic.get(s.as_str()).map_or(0, Vec::len) + 2,
            Entry::Prefix(s, _) => self.prefix.bucket(s) + 2 + self.prefix.lens.len(),
            Entry::Suffix(s, _) => self.suffix.bucket(s) + 2 + self.suffix.lens.len(),
            Entry::PrefixIc(s) => self.prefix_ic.bucket(s) + 3 + self.prefix_ic.lens.len(),
            Entry::SuffixIc(s) => self.suffix_ic.bucket(s) + 3 + self.suffix_ic.lens.len(),
            Entry::Numeric(_) => self.numeric.len() + 16,
            Entry::Direct(_) => self.direct.len() + 32,
        }
    }

    /// Index trigger `id` here under `entries`.
    pub fn index(&mut self, entries: &[Entry], id: u32) {
        for e in entries {
            match e {
                Entry::Str(s) => self.exact_str.entry(s).push(id),
                Entry::Num(x) => {
                    self.exact_num.entry(num_key(*x)).or_default().push(id);
                    if !self.num_sorted.contains(x) {
                        self.num_sorted.push(*x);
                        self.num_sorted.sort_by(f64::total_cmp);
                    }
                }
                Entry::Word(w) => self.exact_word[*w].push(id),
                Entry::Prefix(s, w) => self.prefix.add(s, id, w.as_ref()),
                Entry::Suffix(s, w) => self.suffix.add(s, id, w.as_ref()),
                Entry::PrefixIc(s) => self.prefix_ic.add(s, id, None),
                Entry::SuffixIc(s) => self.suffix_ic.add(s, id, None),
                Entry::EqIc(s) => self.eq_ic.entry(s).push(id),
                Entry::Numeric(r) => self.numeric.push((*r, id)),
                Entry::Direct(conds) => self.direct.push((id, conds.clone())),
            }
            if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                self.folded += 1;
            }
            self.anchors += 1;
        }
    }

    pub fn unindex(&mut self, entries: &[Entry], id: u32) {
        fn drop_from<Q, B>(m: &mut FxMap<B, Vec<u32>>, k: &Q, id: u32) -> bool
        where
            Q: std::hash::Hash + Eq + ?Sized,
            B: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        {
            if let Some(v) = m.get_mut(k) {
                v.retain(|&r| r != id);
                if v.is_empty() {
                    m.remove(k);
                    return true;
                }
            }
            false
        }
        fn drop_str(m: &mut StrMap<Vec<u32>>, k: &str, id: u32) {
            if let Some(v) = m.get_mut(k) {
                v.retain(|&r| r != id);
                if v.is_empty() {
                    m.remove(k);
                }
            }
        }
        for e in entries {
            match e {
                Entry::Str(s) => {
                    drop_str(&mut self.exact_str, s, id);
                }
                Entry::Num(x) => {
                    if drop_from(&mut self.exact_num, &num_key(*x), id) {
                        self.num_sorted.retain(|k| k != x);
                    }
                }
                Entry::Word(w) => self.exact_word[*w].retain(|&r| r != id),
                Entry::Prefix(s, _) => self.prefix.remove(s, id),
                Entry::Suffix(s, _) => self.suffix.remove(s, id),
                Entry::PrefixIc(s) => self.prefix_ic.remove(s, id),
                Entry::SuffixIc(s) => self.suffix_ic.remove(s, id),
                Entry::EqIc(s) => {
                    drop_str(&mut self.eq_ic, s, id);
                }
                Entry::Numeric(_) => self.numeric.retain(|&(_, r)| r != id),
                Entry::Direct(_) => self.direct.retain(|(r, _)| *r != id),
            }
            if matches!(e, Entry::PrefixIc(_) | Entry::SuffixIc(_) | Entry::EqIc(_)) {
                self.folded -= 1;
            }
            self.anchors -= 1;
        }
    }

    /// Whether any trigger here can be hit by a number.
    #[inline]
    pub fn wants_num(&self) -> bool {
        self.anchors > 0
            && !(self.exact_num.is_empty() && self.numeric.is_empty() && self.direct.is_empty())
    }

    /// The triggers a leaf value hits.
    #[inline]
    pub fn hits(&self, v: Scalar<'_>, out: &mut Vec<u32>) {
        if self.anchors == 0 {
            return;
        }
        match v {
            Scalar::Str(s) => {
                if !self.exact_str.is_empty() {
                    if let Some(r) = self.exact_str.get(s) {
                        out.extend_from_slice(r);
                    }
                }
                if !self.prefix.lens.is_empty() {
                    self.prefix.hits(s, false, out);
                }
                if !self.suffix.lens.is_empty() {
                    self.suffix.hits(s, true, out);
                }
                if self.folded > 0 {
                    let f = fold_cow(s);
                    if let Some(r) = self.eq_ic.get(&f) {
                        out.extend_from_slice(r);
                    }
                    self.prefix_ic.hits(&f, false, out);
                    self.suffix_ic.hits(&f, true, out);
                }
            }
            Scalar::Num(x) => {
                if !self.exact_num.is_empty() {
                    if let Some(r) = self.exact_num.get(&num_key(x)) {
                        out.extend_from_slice(r);
                    }
                }
                for (range, r) in &self.numeric {
                    if range.contains(x) {
                        out.push(*r);
                    }
                }
            }
            Scalar::Bool(b) => out.extend_from_slice(&self.exact_word[if b { 0 } else { 1 }]),
            Scalar::Null => out.extend_from_slice(&self.exact_word[2]),
        }
        self.direct_hits(v, out);
    }

    #[inline]
    fn direct_hits(&self, v: Scalar<'_>, out: &mut Vec<u32>) {
        for (r, conds) in &self.direct {
            if conds
                .iter()
                .any(|c| matches!(c, Cond::Exists(true)) || c.test(v))
            {
                out.push(*r);
            }
        }
    }

    /// The triggers a number read from event bytes `b` hits: decided on its approximation where
    /// that is safe, the exact double computed only when some bound or key is close to it.
    #[inline]
    pub fn num_hits(&self, n: &NumLit, b: &[u8], out: &mut Vec<u32>) {
        let approx = n.approx();
        let mut exact = None;
        let get = |exact: &mut Option<f64>| *exact.get_or_insert_with(|| n.exact(b));
        if !self.exact_num.is_empty() {
            let close = match approx {
                None => true,
                Some(a) => {
                    let i = self.num_sorted.partition_point(|&k| k < a);
                    (i > 0 && near(a, self.num_sorted[i - 1]))
                        || self.num_sorted.get(i).is_some_and(|&k| near(a, k))
                }
            };
            if close {
                if let Some(r) = self.exact_num.get(&num_key(get(&mut exact))) {
                    out.extend_from_slice(r);
                }
            }
        }
        for (range, r) in &self.numeric {
            let hit = match approx.and_then(|a| range_decides(range, a)) {
                Some(h) => h,
                None => range.contains(get(&mut exact)),
            };
            if hit {
                out.push(*r);
            }
        }
        if !self.direct.is_empty() {
            let x = get(&mut exact);
            self.direct_hits(Scalar::Num(x), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_are_told_apart() {
        let keys = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdef",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "a\0",
            "\0a",
            "ab\0\0",
            "é",
            "éé",
            "abcdefg\0",
            "xbcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghijklmnopq",
            "abcdefgh\0",
        ];
        for k in keys {
            let mut w = [0u8; 8];
            let n = k.len().min(8);
            w[..n].copy_from_slice(&k.as_bytes()[..n]);
            if k.len() <= 8 {
                assert_eq!(pack(k.as_bytes()), u64::from_le_bytes(w), "{k:?}");
            }
        }
        let mut m: StrMap<Vec<u32>> = StrMap::default();
        for (i, k) in keys.iter().enumerate() {
            m.entry(k).push(i as u32);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.get(k), Some(&vec![i as u32]), "{k:?}");
            assert_eq!(m.get_bytes(k.as_bytes()), Some(&vec![i as u32]));
        }
        assert!(m.get("abcdefgz").is_none() && m.get("b").is_none());
        assert!(m.get("abcdefghijklmnoz").is_none() && m.get("abcdefghijklmnopz").is_none());
        assert!(m.has_len(9) && !m.has_len(10) && m.has_len(17));
        m.remove("abcdefghi");
        m.remove("abcdefgh\0");
        assert!(!m.has_len(9) && m.get("abcdefghi").is_none());
        m.remove("abcdefghijklmnopq");
        assert!(!m.has_len(17));
        for (a, b, same) in [
            ("abcdefghi", "abcdefghj", false),
            ("abcdefghijklmnop", "abcdefghijklmnop", true),
            ("abcdefghijklmnopqr", "abcdefghijklmnopqs", false),
        ] {
            assert_eq!(tail_eq(a.as_bytes(), b.as_bytes()), same);
        }
    }
}
