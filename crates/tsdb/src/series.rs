//! The series index: interning of [`SeriesKey`]s to dense `u32` ids, and per-series metadata
//! (high-resolution flag, newest timestamp, wall-clock time of the last write) kept in atomics so
//! writers update it under a read lock.
//!
//! Keys are kept in their encoded form (one allocation per series; the same bytes go to the WAL
//! and the snapshot), hashed with a per-process SipHash key and compared bytewise; filters read
//! them through a zero-copy view, and a [`SeriesKey`] is only built for results.
//!
//! It is persisted two ways: every new series is logged in the WAL (a definition record) before
//! any record that uses its id, and checkpoints write a full snapshot `series-<gen>.idx` named by
//! the manifest:
//! `"OLTSSER1"` | n u32 | n × (sid varint | flags u8 | last_ts zigzag | last_write zigzag | key) |
//! crc32. Replaying WAL records over a newer snapshot is harmless: definitions must agree and the
//! metadata only moves forward (max).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use crate::bits::{put_ivarint, put_string, put_uvarint, Cursor, Truncated};
use crate::head::IdHasher;
use crate::{SeriesFilter, SeriesInfo, SeriesKey, TsdbError};

const MAGIC: &[u8; 8] = b"OLTSSER1";

/// One series' identity and metadata.
#[derive(Debug)]
pub(crate) struct SeriesMeta {
    pub sid: u32,
    /// The key, encoded by [`encode_key`] and validated by [`KeyView::parse`].
    enc: Box<[u8]>,
    pub hr: AtomicBool,
    pub last_ts: AtomicI64,
    pub last_write: AtomicI64,
    /// Whether its definition has been queued to the WAL.
    pub logged: AtomicBool,
}

impl SeriesMeta {
    pub(crate) fn note_write(&self, hr: bool, max_ts: i64, wall_ms: i64) {
        if hr && !self.hr.load(Ordering::Relaxed) {
            self.hr.store(true, Ordering::Relaxed);
        }
        // Plain loads first: the common case (nothing to raise) costs no read-modify-write.
        if self.last_ts.load(Ordering::Relaxed) < max_ts {
            self.last_ts.fetch_max(max_ts, Ordering::Relaxed);
        }
        if self.last_write.load(Ordering::Relaxed) < wall_ms {
            self.last_write.fetch_max(wall_ms, Ordering::Relaxed);
        }
    }

    /// The encoded key (as written to the WAL and snapshots).
    pub(crate) fn key_bytes(&self) -> &[u8] {
        &self.enc
    }

    fn view(&self) -> Option<KeyView<'_>> {
        KeyView::parse(&self.enc).ok().map(|v| v.0)
    }

    pub(crate) fn key(&self) -> SeriesKey {
        match self.view() {
            Some(v) => v.to_key(),
            // Unreachable: keys are validated when the meta is created.
            None => SeriesKey {
                account: String::new(),
                region: String::new(),
                namespace: String::new(),
                metric_name: String::new(),
                dimensions: Vec::new(),
                unit: String::new(),
            },
        }
    }

    fn info(&self) -> SeriesInfo {
        SeriesInfo {
            key: self.key(),
            high_resolution: self.hr.load(Ordering::Relaxed),
            last_ts_ms: self.last_ts.load(Ordering::Relaxed),
            last_write_ms: self.last_write.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn encode_key(buf: &mut Vec<u8>, k: &SeriesKey) {
    for s in [&k.account, &k.region, &k.namespace, &k.metric_name, &k.unit] {
        put_string(buf, s);
    }
    put_uvarint(buf, k.dimensions.len() as u64);
    for (n, v) in &k.dimensions {
        put_string(buf, n);
        put_string(buf, v);
    }
}

/// A borrowed view of an encoded key.
pub(crate) struct KeyView<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub namespace: &'a str,
    pub metric_name: &'a str,
    pub unit: &'a str,
    n_dims: usize,
    dims: &'a [u8],
}

impl<'a> KeyView<'a> {
    /// Parses (and validates) an encoded key at the start of `b`; returns it and its length.
    pub(crate) fn parse(b: &'a [u8]) -> Result<(KeyView<'a>, usize), Truncated> {
        let mut c = Cursor::new(b);
        let account = c.str_ref()?;
        let region = c.str_ref()?;
        let namespace = c.str_ref()?;
        let metric_name = c.str_ref()?;
        let unit = c.str_ref()?;
        let n_dims = usize::try_from(c.uvarint()?).map_err(|_| Truncated)?;
        if n_dims > b.len() {
            return Err(Truncated);
        }
        let start = c.pos;
        for _ in 0..2 * n_dims {
            c.str_ref()?;
        }
        let view = KeyView {
            account,
            region,
            namespace,
            metric_name,
            unit,
            n_dims,
            dims: &b[start..c.pos],
        };
        Ok((view, c.pos))
    }

    pub(crate) fn dims(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut c = Cursor::new(self.dims);
        (0..self.n_dims).map_while(move |_| Some((c.str_ref().ok()?, c.str_ref().ok()?)))
    }

    pub(crate) fn to_key(&self) -> SeriesKey {
        SeriesKey {
            account: self.account.to_string(),
            region: self.region.to_string(),
            namespace: self.namespace.to_string(),
            metric_name: self.metric_name.to_string(),
            dimensions: self
                .dims()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            unit: self.unit.to_string(),
        }
    }
}

thread_local! {
    static KEY_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Key → id map plus per-id metadata.
#[derive(Default)]
pub(crate) struct SeriesIndex {
    metas: Vec<Option<Arc<SeriesMeta>>>,
    by_hash: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    hash_state: RandomState,
    /// Ids whose key hash collides with an earlier key's (rare).
    collisions: Vec<(u64, u32)>,
    live: usize,
    /// Bumped by every wipe, so an id resolved before a wipe is never used after it.
    pub epoch: u64,
}

impl SeriesIndex {
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// High-resolution flag per id (false for unknown ids).
    pub(crate) fn hr_flags(&self) -> Vec<bool> {
        self.metas
            .iter()
            .map(|m| m.as_ref().is_some_and(|m| m.hr.load(Ordering::Relaxed)))
            .collect()
    }

    pub(crate) fn get(&self, sid: u32) -> Option<&Arc<SeriesMeta>> {
        self.metas.get(sid as usize).and_then(|m| m.as_ref())
    }

    fn hash(&self, enc: &[u8]) -> u64 {
        let mut h = self.hash_state.build_hasher();
        h.write(enc);
        h.finish()
    }

    /// Runs `f` with `key` encoded in a reused thread-local buffer.
    fn with_encoded<R>(key: &SeriesKey, f: impl FnOnce(&[u8]) -> R) -> R {
        KEY_BUF.with(|b| {
            let mut b = b.borrow_mut();
            b.clear();
            encode_key(&mut b, key);
            f(&b)
        })
    }

    pub(crate) fn lookup(&self, key: &SeriesKey) -> Option<&Arc<SeriesMeta>> {
        Self::with_encoded(key, |enc| self.lookup_enc(self.hash(enc), enc))
    }

    fn lookup_enc(&self, h: u64, enc: &[u8]) -> Option<&Arc<SeriesMeta>> {
        let sid = *self.by_hash.get(&h)?;
        let m = self.get(sid)?;
        if *m.enc == *enc {
            return Some(m);
        }
        self.collisions
            .iter()
            .filter(|c| c.0 == h)
            .filter_map(|c| self.get(c.1))
            .find(|m| *m.enc == *enc)
    }

    /// Returns the existing series or creates one (definition not yet logged).
    pub(crate) fn intern(&mut self, key: &SeriesKey) -> Arc<SeriesMeta> {
        Self::with_encoded(key, |enc| {
            let h = self.hash(enc);
            if let Some(m) = self.lookup_enc(h, enc) {
                return m.clone();
            }
            let sid = self.metas.len() as u32;
            self.insert_at(h, sid, enc.into(), false, i64::MIN, i64::MIN, false)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_at(
        &mut self,
        h: u64,
        sid: u32,
        enc: Box<[u8]>,
        hr: bool,
        last_ts: i64,
        last_write: i64,
        logged: bool,
    ) -> Arc<SeriesMeta> {
        let m = Arc::new(SeriesMeta {
            sid,
            enc,
            hr: AtomicBool::new(hr),
            last_ts: AtomicI64::new(last_ts),
            last_write: AtomicI64::new(last_write),
            logged: AtomicBool::new(logged),
        });
        if self.metas.len() <= sid as usize {
            self.metas.resize(sid as usize + 1, None);
        }
        self.metas[sid as usize] = Some(m.clone());
        self.live += 1;
        match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((h, sid)),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(sid);
            }
        }
        m
    }

    /// Registers a logged definition (WAL replay, snapshot load) given the encoded key. An id
    /// already holding the same key is fine; a different key, or a malformed one, is corruption.
    pub(crate) fn define(
        &mut self,
        sid: u32,
        enc: &[u8],
        hr: bool,
        last_ts: i64,
        last_write: i64,
    ) -> Result<Arc<SeriesMeta>, TsdbError> {
        match KeyView::parse(enc) {
            Ok((_, n)) if n == enc.len() => {}
            _ => {
                return Err(TsdbError::Corrupt(format!(
                    "malformed key for series id {sid}"
                )))
            }
        }
        self.define_valid(sid, enc, hr, last_ts, last_write)
    }

    /// [`SeriesIndex::define`] for a key already validated by [`KeyView::parse`].
    fn define_valid(
        &mut self,
        sid: u32,
        enc: &[u8],
        hr: bool,
        last_ts: i64,
        last_write: i64,
    ) -> Result<Arc<SeriesMeta>, TsdbError> {
        // Ids are dense; definitions may arrive slightly out of order, never far ahead.
        if sid == u32::MAX || sid as usize > self.metas.len() + (1 << 24) {
            return Err(TsdbError::Corrupt(format!("series id {sid} out of range")));
        }
        if let Some(m) = self.get(sid) {
            if *m.enc != *enc {
                return Err(TsdbError::Corrupt(format!(
                    "series id {sid} defined twice with different keys"
                )));
            }
            let m = m.clone();
            m.note_write(hr, last_ts, last_write);
            return Ok(m);
        }
        let h = self.hash(enc);
        if self.lookup_enc(h, enc).is_some() {
            return Err(TsdbError::Corrupt(format!(
                "series key defined under two ids (second: {sid})"
            )));
        }
        Ok(self.insert_at(h, sid, enc.into(), hr, last_ts, last_write, true))
    }

    /// Series matching `f`, sorted by key.
    pub(crate) fn list(&self, f: &SeriesFilter) -> Vec<SeriesInfo> {
        let mut out: Vec<SeriesInfo> = self
            .metas
            .iter()
            .flatten()
            .filter(|m| {
                let Some(k) = m.view() else { return false };
                k.account == f.account
                    && k.region == f.region
                    && f.namespace.as_ref().is_none_or(|n| n == k.namespace)
                    && f.metric_name.as_ref().is_none_or(|n| n == k.metric_name)
                    && f.dimensions.iter().all(|(name, val)| {
                        k.dims()
                            .any(|(n, v)| n == name && val.as_ref().is_none_or(|want| want == v))
                    })
                    && f.written_since_ms
                        .is_none_or(|t| m.last_write.load(Ordering::Relaxed) >= t)
            })
            .map(|m| m.info())
            .collect();
        out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        out
    }

    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + self.live * 96);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&(self.live as u32).to_le_bytes());
        for m in self.metas.iter().flatten() {
            put_uvarint(&mut b, m.sid as u64);
            b.push(m.hr.load(Ordering::Relaxed) as u8);
            put_ivarint(&mut b, m.last_ts.load(Ordering::Relaxed));
            put_ivarint(&mut b, m.last_write.load(Ordering::Relaxed));
            b.extend_from_slice(&m.enc);
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode_snapshot(b: &[u8]) -> Result<SeriesIndex, TsdbError> {
        let bad = |w: &str| TsdbError::Corrupt(format!("series snapshot: {w}"));
        if b.len() < 16 {
            return Err(bad("too short"));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        let mut c4 = [0u8; 4];
        c4.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(c4) {
            return Err(bad("checksum mismatch"));
        }
        let mut c = Cursor::new(body);
        if c.bytes(8)? != MAGIC {
            return Err(bad("bad magic"));
        }
        let n = c.u32le()?;
        let mut idx = SeriesIndex::default();
        let n_hint = (n as usize).min(body.len() / 8);
        idx.metas.reserve(n_hint);
        idx.by_hash.reserve(n_hint);
        for _ in 0..n {
            let sid = c.u32v()?;
            let hr = c.u8()? != 0;
            let last_ts = c.ivarint()?;
            let last_write = c.ivarint()?;
            let (_, len) = KeyView::parse(&c.data[c.pos..])?;
            let enc = c.bytes(len)?;
            idx.define_valid(sid, enc, hr, last_ts, last_write)?;
        }
        if !c.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(idx)
    }

    pub(crate) fn file_name(gen: u64) -> String {
        format!("series-{gen:016x}.idx")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str, dims: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            namespace: ns.into(),
            metric_name: name.into(),
            dimensions: dims
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            unit: "None".into(),
        }
    }

    #[test]
    fn intern_is_stable_and_snapshot_roundtrips() {
        let mut idx = SeriesIndex::default();
        let a = idx.intern(&key("ns", "a", &[]));
        let b = idx.intern(&key("ns", "b", &[("h", "1")]));
        assert_eq!(idx.intern(&key("ns", "a", &[])).sid, a.sid);
        assert_ne!(a.sid, b.sid);
        b.note_write(true, 500, 42);
        let snap = idx.encode_snapshot();
        let back = SeriesIndex::decode_snapshot(&snap).unwrap();
        assert_eq!(back.len(), 2);
        let bb = back.lookup(&key("ns", "b", &[("h", "1")])).unwrap();
        assert_eq!(bb.sid, b.sid);
        assert!(bb.hr.load(Ordering::Relaxed));
        assert_eq!(bb.last_write.load(Ordering::Relaxed), 42);
        let mut bad = snap.clone();
        bad[10] ^= 1;
        assert!(SeriesIndex::decode_snapshot(&bad).is_err());
    }

    #[test]
    fn define_rejects_conflicts_and_tolerates_repeats() {
        let enc = |k: &SeriesKey| {
            let mut b = Vec::new();
            encode_key(&mut b, k);
            b
        };
        let mut idx = SeriesIndex::default();
        idx.define(5, &enc(&key("n", "x", &[])), false, 1, 1)
            .unwrap();
        idx.define(5, &enc(&key("n", "x", &[])), true, 9, 2)
            .unwrap();
        assert!(idx.get(5).unwrap().hr.load(Ordering::Relaxed));
        assert!(idx
            .define(5, &enc(&key("n", "y", &[])), false, 1, 1)
            .is_err());
        assert!(idx
            .define(6, &enc(&key("n", "x", &[])), false, 1, 1)
            .is_err());
        let mut bad = enc(&key("n", "w", &[("a", "b")]));
        bad.pop();
        assert!(idx.define(7, &bad, false, 1, 1).is_err());
        assert_eq!(idx.get(5).unwrap().key(), key("n", "x", &[]));
        // New ids continue after the highest defined one.
        assert_eq!(idx.intern(&key("n", "z", &[])).sid, 6);
    }

    #[test]
    fn list_filters() {
        let mut idx = SeriesIndex::default();
        idx.intern(&key("A", "m1", &[("k", "1")]))
            .note_write(false, 0, 100);
        idx.intern(&key("A", "m2", &[("k", "2"), ("z", "0")]))
            .note_write(false, 0, 200);
        idx.intern(&key("B", "m1", &[])).note_write(false, 0, 300);
        let base = SeriesFilter {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            ..Default::default()
        };
        assert_eq!(idx.list(&base).len(), 3);
        let f = SeriesFilter {
            namespace: Some("A".into()),
            ..base.clone()
        };
        assert_eq!(idx.list(&f).len(), 2);
        let f = SeriesFilter {
            dimensions: vec![("k".into(), None)],
            ..base.clone()
        };
        assert_eq!(idx.list(&f).len(), 2);
        let f = SeriesFilter {
            dimensions: vec![("k".into(), Some("2".into()))],
            ..base.clone()
        };
        assert_eq!(idx.list(&f)[0].key.metric_name, "m2");
        let f = SeriesFilter {
            written_since_ms: Some(200),
            ..base.clone()
        };
        assert_eq!(idx.list(&f).len(), 2);
        let f = SeriesFilter {
            region: "eu-west-1".into(),
            ..base
        };
        assert!(idx.list(&f).is_empty());
    }
}
