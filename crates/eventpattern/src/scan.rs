//! The matcher's event scanner: walks raw event bytes along the rule trie, reporting each leaf
//! value at a mentioned field to the anchor index, skipping every other member without decoding
//! it, and stopping as soon as the last mentioned member of the event has been read. On request it
//! also builds a pruned copy of the event (only mentioned fields) for confirming rules with the
//! reference evaluator.

use std::borrow::Cow;
use std::hash::Hash;

use crate::bits::{Cursor, STRUCTURE};
use crate::eval::View;
use crate::index::TNode;
use crate::json::{Reader, SyntaxError, J, MAX_DEPTH};
use crate::matcher::{Kind, Matcher, Rec};
use crate::num::NumLit;
use crate::value::Scalar;

/// A node of the pruned event copy.
pub(crate) enum PNode<'a> {
    /// (start, len) into `members`.
    Obj(u32, u32),
    /// (start, len) into `items`.
    Arr(u32, u32),
    Str(Cow<'a, str>),
    Num(f64),
    Bool(bool),
    Null,
}

/// The pruned copy of an event: nodes in arenas.
#[derive(Default)]
pub(crate) struct Pruned<'a> {
    nodes: Vec<PNode<'a>>,
    members: Vec<(Cow<'a, str>, u32)>,
    items: Vec<u32>,
}

/// The index after the value starting at `i` (no whitespace before it). Lenient: brackets are
/// counted, not checked; a value nobody reads need not be validated. Containers are crossed from
/// one quote, backslash or bracket to the next, 64 bytes classified at a time.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => Reader::new(b).skip_str(i),
        b'{' | b'[' => {
            let mut c = Cursor::<STRUCTURE>::new();
            let mut depth = 0usize;
            let mut j = i;
            loop {
                let k = c.next(b, j)?;
                match b[k] {
                    b'"' => {
                        // To the closing quote, stepping over escapes.
                        let mut s = k + 1;
                        j = loop {
                            let e = c.next(b, s)?;
                            match b[e] {
                                b'"' => break e + 1,
                                b'\\' => s = e + 2,
                                _ => s = e + 1,
                            }
                        };
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(k + 1);
                        }
                    }
                    _ => {}
                }
                j = k + 1;
            }
        }
        _ => {
            let start = i;
            let mut i = i;
            while let Some(&c) = b.get(i) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

/// Where `skip_members` stopped.
enum Member {
    /// A member the node has a child for: (child, its name's opening quote, the value's
    /// position after the colon and at most one space).
    Child(u32, usize, usize),
    /// The object's end: the position after its `}`.
    End(usize),
    /// Something to read in full (an escaped name, unusual whitespace, an error): the member's
    /// start.
    Other(usize),
}

/// Pass over the members of an object from `i` (a member's start) whose names `node` has no
/// child for, in the common layout (`"name": value, `), with the value skipped unread.
#[inline(never)]
fn skip_members(r: &mut Reader<'_>, node: &TNode, mut i: usize) -> Member {
    let b = r.b;
    let mut q = r.q;
    let out = loop {
        if b.get(i) != Some(&b'"') {
            break Member::Other(i);
        }
        let Some(k) = q.next(b, i + 1) else {
            break Member::Other(i);
        };
        if b[k] != b'"' {
            break Member::Other(i);
        }
        let len = k - i - 1;
        let child = if node.name_lens & (1u64 << len.min(63)) == 0 {
            None
        } else {
            let Some(head) = b.get(i + 1..i + 9) else {
                break Member::Other(i);
            };
            let mut h = [0u8; 8];
            h.copy_from_slice(head);
            let full = u64::from_le_bytes(h);
            let w = if len >= 8 {
                full
            } else {
                full & ((1u64 << (8 * len)) - 1)
            };
            node.child_by_sig((len, w), &b[i + 1..k])
        };
        let mut j = k + 1;
        if b.get(j) != Some(&b':') {
            break Member::Other(i);
        }
        j += 1;
        if b.get(j) == Some(&b' ') {
            j += 1;
        }
        if let Some(c) = child {
            break Member::Child(c, i, j);
        }
        match b.get(j) {
            Some(b'"') => match q.next(b, j + 1) {
                Some(e) if b[e] == b'"' => j = e + 1,
                _ => break Member::Other(i),
            },
            Some(&c) if c > b' ' => match skip_value(b, j) {
                Some(e) => j = e,
                None => break Member::Other(i),
            },
            _ => break Member::Other(i),
        }
        match b.get(j) {
            Some(b',') => {
                j += 1;
                if b.get(j) == Some(&b' ') {
                    j += 1;
                }
            }
            Some(b'}') => break Member::End(j + 1),
            _ => break Member::Other(i),
        }
        i = j;
    };
    r.q = q;
    out
}

/// One scan of one event.
pub(crate) struct Scan<'m, 'a, K> {
    m: &'m Matcher<K>,
    pub build: bool,
    report: bool,
    p: Pruned<'a>,
    scratch_m: Vec<(Cow<'a, str>, u32)>,
    scratch_i: Vec<u32>,
    pub cands: Vec<u32>,
    /// Values at fields with check clauses (see `Matcher::decide`).
    pub recs: Vec<Rec>,
    /// An object inside an array, or a name repeated, where some rule looks for fields: the
    /// clause counts cannot tell which element or occurrence each hit came from.
    pub irregular: bool,
}

impl<'m, 'a, K: Clone + Eq + Hash> Scan<'m, 'a, K> {
    /// `build`: keep a pruned copy; `report`: feed leaf values to the anchor index.
    pub fn new(m: &'m Matcher<K>, build: bool, report: bool) -> Self {
        Scan {
            m,
            build,
            report,
            p: if build {
                Pruned {
                    nodes: Vec::with_capacity(64),
                    members: Vec::with_capacity(16),
                    items: Vec::with_capacity(64),
                }
            } else {
                Pruned::default()
            },
            scratch_m: Vec::new(),
            scratch_i: Vec::new(),
            cands: Vec::new(),
            recs: Vec::new(),
            irregular: false,
        }
    }

    /// Scan a whole event; the pruned root (u32::MAX when not building), or None if malformed.
    pub fn run(&mut self, event: &'a [u8]) -> Option<u32> {
        let mut r = Reader::new(event);
        let (root, done) = self.value(&mut r, 0, 0, true, false).ok()?;
        if !done {
            r.end().ok()?;
        }
        Some(root)
    }

    pub fn into_pruned(self) -> Pruned<'a> {
        self.p
    }

    fn push(&mut self, n: PNode<'a>) -> u32 {
        if !self.build {
            return u32::MAX;
        }
        self.p.nodes.push(n);
        (self.p.nodes.len() - 1) as u32
    }

    /// Feed a leaf value at node `t` (starting at byte `at`) to the trigger index, and record it
    /// when the field has check clauses.
    #[inline]
    fn report(&mut self, t: u32, v: Scalar<'_>, at: usize, end: usize, kind: Kind) {
        if self.report {
            let node = &self.m.trie[t as usize];
            node.hits(v, &mut self.cands);
            if node.checks > 0 {
                self.recs.push((t, at as u32, end as u32, kind));
            }
        }
    }

    /// Scan one value at trie node `t`. `may_stop`: once this value's mentioned members have all
    /// been read, nothing after it in the event matters. Returns (pruned node, stopped early).
    fn value(
        &mut self,
        r: &mut Reader<'a>,
        t: u32,
        depth: usize,
        may_stop: bool,
        in_array: bool,
    ) -> Result<(u32, bool), SyntaxError> {
        if depth > MAX_DEPTH {
            return r.err("JSON nesting too deep");
        }
        match r.peek() {
            Some(b'{') => {
                r.i += 1;
                let wanted = self.m.trie[t as usize].children.len();
                if in_array && wanted > 0 {
                    self.irregular = true;
                }
                let mark = self.scratch_m.len();
                let mut seen = 0u64;
                let mut count = 0usize;
                let mut stopped = false;
                let m = self.m;
                let node = &m.trie[t as usize];
                let b = r.b;
                if r.peek() == Some(b'}') {
                    r.i += 1;
                } else {
                    // The position is kept in a local between members and written back to `r`
                    // only around the rarer paths (escapes, whitespace beyond one space, a
                    // mentioned member's value).
                    let mut i = r.i;
                    loop {
                        // Members no rule mentions are passed over in a tight loop; it stops at a
                        // mentioned name, the end, or anything unusual (read below in full).
                        let (child, key_start) = match skip_members(r, node, i) {
                            Member::End(e) => {
                                r.i = e;
                                break;
                            }
                            Member::Child(c, key_start, at) => {
                                i = at;
                                (Some(c), key_start)
                            }
                            Member::Other(at) => {
                                i = at;
                                if b.get(i) != Some(&b'"') {
                                    r.i = i;
                                    if r.peek() != Some(b'"') {
                                        return r.err("expected a field name");
                                    }
                                    i = r.i;
                                }
                                let Some(k) = r.special(i + 1) else {
                                    r.i = b.len();
                                    return r.err("Unexpected end of input in a string");
                                };
                                let key_start = i;
                                let child = if b[k] == b'"' {
                                    // No escapes: compare (length, first eight bytes), then the rest.
                                    let len = k - i - 1;
                                    let w = match b.get(i + 1..i + 9) {
                                        Some(head) => {
                                            let mut h = [0u8; 8];
                                            h.copy_from_slice(head);
                                            let full = u64::from_le_bytes(h);
                                            if len >= 8 {
                                                full
                                            } else {
                                                full & ((1u64 << (8 * len)) - 1)
                                            }
                                        }
                                        None => b[i + 1..k]
                                            .iter()
                                            .take(8)
                                            .enumerate()
                                            .fold(0u64, |w, (n, &c)| w | (c as u64) << (8 * n)),
                                    };
                                    i = k + 1;
                                    node.child_by_sig((len, w), &b[key_start + 1..k])
                                } else {
                                    r.i = i;
                                    let (raw, _, _) = r.raw_string_sig()?;
                                    i = r.i;
                                    let key = Reader::new(raw).string()?;
                                    node.child_by_name(key.as_bytes())
                                };
                                // The colon, and the usual single space after it.
                                if b.get(i) == Some(&b':') {
                                    i += 1;
                                } else {
                                    r.i = i;
                                    r.expect(b':')?;
                                    i = r.i;
                                }
                                if b.get(i) == Some(&b' ') {
                                    i += 1;
                                }
                                (child, key_start)
                            }
                        };
                        if b.get(i).is_some_and(|&c| c <= b' ') {
                            r.i = i;
                            r.ws();
                            i = r.i;
                        }
                        match child {
                            Some(c) => {
                                let slot = m.trie[c as usize].slot;
                                if slot < 64 && seen & (1 << slot) == 0 {
                                    seen |= 1 << slot;
                                    count += 1;
                                } else {
                                    self.irregular = true;
                                }
                                let last = may_stop && wanted <= 64 && count == wanted;
                                // A string without escapes is reported here, without a call.
                                let plain = if self.build || b.get(i) != Some(&b'"') {
                                    None
                                } else {
                                    r.special(i + 1).filter(|&k| b[k] == b'"')
                                };
                                let (idx, done) = if let Some(k) = plain {
                                    let Ok(v) = std::str::from_utf8(&b[i + 1..k]) else {
                                        r.i = i + 1;
                                        return r.err("Invalid UTF-8 in string");
                                    };
                                    self.report(c, Scalar::Str(v), i + 1, k, Kind::Plain);
                                    i = k + 1;
                                    (u32::MAX, false)
                                } else {
                                    r.i = i;
                                    let res = self.value(r, c, depth + 1, last, false)?;
                                    i = r.i;
                                    res
                                };
                                if self.build {
                                    let key = Reader::new(&b[key_start..]).lenient_string()?;
                                    self.scratch_m.push((key, idx));
                                }
                                if done || last {
                                    r.i = i;
                                    stopped = true;
                                    break;
                                }
                            }
                            None => {
                                // Most skipped values are strings: straight to the closing quote.
                                let end = if b.get(i) == Some(&b'"') {
                                    r.skip_str(i)
                                } else {
                                    skip_value(b, i)
                                };
                                match end {
                                    Some(end) => i = end,
                                    None => {
                                        r.i = i;
                                        return r.err("malformed value");
                                    }
                                }
                            }
                        }
                        match b.get(i) {
                            Some(b',') => {
                                i += 1;
                                if b.get(i) == Some(&b' ') {
                                    i += 1;
                                }
                            }
                            Some(b'}') => {
                                r.i = i + 1;
                                break;
                            }
                            _ => {
                                r.i = i;
                                match r.peek() {
                                    Some(b',') => {
                                        r.i += 1;
                                        r.ws();
                                        i = r.i;
                                    }
                                    Some(b'}') => {
                                        r.i += 1;
                                        break;
                                    }
                                    _ => return r.err("expected ',' or '}'"),
                                }
                            }
                        }
                    }
                }
                if !self.build {
                    return Ok((u32::MAX, stopped));
                }
                let start = self.p.members.len() as u32;
                self.p.members.extend(self.scratch_m.drain(mark..));
                let len = self.p.members.len() as u32 - start;
                Ok((self.push(PNode::Obj(start, len)), stopped))
            }
            Some(b'[') => {
                r.i += 1;
                let mark = self.scratch_i.len();
                if r.peek() == Some(b']') {
                    r.i += 1;
                } else {
                    loop {
                        let (idx, _) = self.value(r, t, depth + 1, false, true)?;
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
                    return Ok((u32::MAX, false));
                }
                let start = self.p.items.len() as u32;
                self.p.items.extend(self.scratch_i.drain(mark..));
                let len = self.p.items.len() as u32 - start;
                Ok((self.push(PNode::Arr(start, len)), false))
            }
            Some(b'"') => {
                let at = r.i;
                let s = r.lenient_string()?;
                match s {
                    Cow::Borrowed(b) => {
                        self.report(t, Scalar::Str(b), at + 1, at + 1 + b.len(), Kind::Plain)
                    }
                    Cow::Owned(_) => self.report(t, Scalar::Str(&s), at, r.i, Kind::Str),
                }
                if !self.build {
                    return Ok((u32::MAX, false));
                }
                Ok((self.push(PNode::Str(s)), false))
            }
            Some(b'-' | b'0'..=b'9') => {
                let n = NumLit::read(r)?;
                if self.build {
                    let x = n.exact(r.b);
                    self.report(t, Scalar::Num(x), n.start, n.end, Kind::Num);
                    return Ok((self.push(PNode::Num(x)), false));
                }
                if self.report {
                    let node = &self.m.trie[t as usize];
                    if node.wants_num() {
                        node.num_hits(&n, r.b, &mut self.cands);
                    }
                    if node.checks > 0 {
                        self.recs.push((t, n.start as u32, n.end as u32, Kind::Num));
                    }
                }
                Ok((u32::MAX, false))
            }
            Some(_) => {
                let at = r.i;
                let (s, n, k) = match r.word()? {
                    J::Bool(true) => (Scalar::Bool(true), PNode::Bool(true), Kind::True),
                    J::Bool(false) => (Scalar::Bool(false), PNode::Bool(false), Kind::False),
                    _ => (Scalar::Null, PNode::Null, Kind::Null),
                };
                self.report(t, s, at, r.i, k);
                Ok((self.push(n), false))
            }
            None => r.err("Unexpected end of input"),
        }
    }
}

/// A view of the pruned event for the reference evaluator.
#[derive(Clone, Copy)]
pub(crate) struct PView<'p, 'a> {
    pub p: &'p Pruned<'a>,
    pub i: u32,
}

impl<'p, 'a> PView<'p, 'a> {
    fn node(self) -> Option<&'p PNode<'a>> {
        self.p.nodes.get(self.i as usize)
    }
}

impl View for PView<'_, '_> {
    fn get(self, key: &str) -> Option<Self> {
        match self.node()? {
            PNode::Obj(start, len) => self.p.members[*start as usize..(*start + *len) as usize]
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|&(_, i)| PView { p: self.p, i }),
            _ => None,
        }
    }
    fn is_object(self) -> bool {
        matches!(self.node(), Some(PNode::Obj(..)))
    }
    fn for_each_element(self, f: &mut dyn FnMut(Self) -> bool) -> Option<bool> {
        match self.node()? {
            PNode::Arr(start, len) => Some(
                self.p.items[*start as usize..(*start + *len) as usize]
                    .iter()
                    .any(|&i| f(PView { p: self.p, i })),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_values() {
        let b = br#"{"a":[1,{"b":"\"}]"}],"c":2} x"#;
        assert_eq!(skip_value(b, 0), Some(b.len() - 2));
        assert_eq!(skip_value(b"123,", 0), Some(3));
        assert_eq!(skip_value(br#""ab\\"x"#, 0), Some(6));
        assert_eq!(skip_value(b"[1,2", 0), None);
        assert_eq!(skip_value(b",", 0), None);
        // Long containers, brackets and escaped quotes inside strings, across 64-byte blocks.
        let mut long = String::from("[");
        for i in 0..40 {
            long.push_str(&format!(r#"[{i}.5, "x\\\"]{{", {{"k": "}}\\"}}], "#));
        }
        long.push_str("{}]");
        let doc = format!("{long} tail");
        assert_eq!(skip_value(doc.as_bytes(), 0), Some(long.len()));
        assert_eq!(skip_value(&doc.as_bytes()[..long.len() - 1], 0), None);
    }
}
