//! In-memory cache of each topic with its confirmed subscriptions, so `Publish` does not read and
//! decode the topic row and scan the subscriptions table in SQLite on every call.
//!
//! The service reaches the control store only through [`CachingStore`], which forwards every call
//! and drops the whole cache after any write that touches `sns.topics` or `sns.subscriptions`
//! (and after `wipe`). A generation counter, bumped on every invalidation, keeps a lookup that
//! raced with a write from inserting what it read before the write: an entry is only stored when
//! no invalidation happened between the start of its read and its insertion.

use std::collections::HashMap;
use std::sync::Arc;

use opsloop_store::{ControlStore, StoreError, WriteOp};
use parking_lot::Mutex;

use crate::arn::TopicArn;
use crate::error::InternalError;
use crate::state::{State, Subscription, Topic, SUBSCRIPTIONS, TOPICS};

/// Entries beyond this drop the whole cache (a cheap bound; refilled on demand).
const MAX_ENTRIES: usize = 10_000;

/// A topic as `Publish` needs it.
#[derive(Debug)]
pub(crate) struct CachedTopic {
    pub topic: Topic,
    /// Confirmed subscriptions, in key order.
    pub subscriptions: Vec<Subscription>,
}

#[derive(Default)]
struct Entries {
    generation: u64,
    /// `None`: the topic does not exist.
    map: HashMap<String, Option<Arc<CachedTopic>>>,
}

/// Topics by key; see the module comment for the invalidation rule.
#[derive(Default)]
pub(crate) struct TopicCache {
    entries: Mutex<Entries>,
}

impl TopicCache {
    /// Forget everything (after a write to topics or subscriptions, or a wipe).
    pub fn invalidate(&self) {
        let mut e = self.entries.lock();
        e.generation = e.generation.wrapping_add(1);
        e.map.clear();
    }

    /// What memory holds for `arn`, without reading the store: `None` when nothing is cached,
    /// `Some(None)` for a topic known not to exist.
    pub fn peek(&self, arn: &TopicArn) -> Option<Option<Arc<CachedTopic>>> {
        self.entries.lock().map.get(&arn.key()).cloned()
    }

    /// The topic `arn` with its confirmed subscriptions, from memory or read from `store`.
    pub fn topic(
        &self,
        store: &dyn ControlStore,
        arn: &TopicArn,
    ) -> Result<Option<Arc<CachedTopic>>, InternalError> {
        let key = arn.key();
        let generation = {
            let e = self.entries.lock();
            if let Some(hit) = e.map.get(&key) {
                return Ok(hit.clone());
            }
            e.generation
        };
        let st = State::new(store);
        let loaded = match st.topic(arn)? {
            Some(topic) => Some(Arc::new(CachedTopic {
                topic,
                subscriptions: st
                    .topic_subscriptions(arn)?
                    .into_iter()
                    .filter(|s| s.confirmed)
                    .collect(),
            })),
            None => None,
        };
        let mut e = self.entries.lock();
        if e.generation == generation {
            if e.map.len() >= MAX_ENTRIES {
                e.map.clear();
            }
            e.map.insert(key, loaded.clone());
        }
        Ok(loaded)
    }
}

/// A [`ControlStore`] that forwards to another and invalidates a [`TopicCache`] on relevant writes.
pub(crate) struct CachingStore {
    inner: Arc<dyn ControlStore>,
    cache: Arc<TopicCache>,
}

impl CachingStore {
    pub fn new(inner: Arc<dyn ControlStore>, cache: Arc<TopicCache>) -> Self {
        CachingStore { inner, cache }
    }

    fn after_write(&self, table: &str) {
        if table == TOPICS || table == SUBSCRIPTIONS {
            self.cache.invalidate();
        }
    }
}

fn op_table(op: &WriteOp) -> &str {
    match op {
        WriteOp::Put { table, .. }
        | WriteOp::Delete { table, .. }
        | WriteOp::Insert { table, .. } => table,
    }
}

impl ControlStore for CachingStore {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let r = self.inner.put(table, key, value);
        self.after_write(table);
        r
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        let r = self.inner.delete(table, key);
        self.after_write(table);
        r
    }

    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan(table, prefix, start_after, limit)
    }

    fn batch(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let touches = ops
            .iter()
            .any(|op| matches!(op_table(op), TOPICS | SUBSCRIPTIONS));
        let r = self.inner.batch(ops);
        if touches {
            self.cache.invalidate();
        }
        r
    }

    fn wipe(&self) -> Result<(), StoreError> {
        let r = self.inner.wipe();
        self.cache.invalidate();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{encode, put_op};
    use opsloop_store::SqliteStore;
    use std::collections::BTreeMap;

    fn topic(arn: &str) -> Topic {
        Topic {
            arn: arn.into(),
            name: "t".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            attributes: BTreeMap::new(),
            tags: Vec::new(),
            subscriptions_deleted: 0,
            created_ms: 0,
            next_sequence: 0,
        }
    }

    #[test]
    fn writes_to_topics_invalidate_and_other_tables_do_not() {
        let cache = Arc::new(TopicCache::default());
        let raw: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
        let store = CachingStore::new(raw.clone(), cache.clone());
        let arn_text = "arn:aws:sns:us-east-1:123456789012:t";
        let arn = TopicArn::parse_param(arn_text, "TopicArn").unwrap();
        assert!(cache.topic(&store, &arn).unwrap().is_none());
        // A write that bypasses the wrapper is not seen: the miss is cached.
        raw.put(TOPICS, &arn.key(), &encode(&topic(arn_text)))
            .unwrap();
        assert!(cache.topic(&store, &arn).unwrap().is_none());
        // A write through the wrapper is.
        store
            .put(TOPICS, &arn.key(), &encode(&topic(arn_text)))
            .unwrap();
        let hit = cache.topic(&store, &arn).unwrap().unwrap();
        assert_eq!(hit.topic.arn, arn_text);
        store.put("sns.messages", "m", b"{}").unwrap();
        assert!(Arc::ptr_eq(
            &hit,
            &cache.topic(&store, &arn).unwrap().unwrap()
        ));
        store
            .batch(vec![crate::state::delete_op(TOPICS, &arn.key())])
            .unwrap();
        assert!(cache.topic(&store, &arn).unwrap().is_none());
        store
            .batch(vec![put_op(TOPICS, &arn.key(), &topic(arn_text))])
            .unwrap();
        assert!(cache.topic(&store, &arn).unwrap().is_some());
        store.wipe().unwrap();
        assert!(cache.topic(&store, &arn).unwrap().is_none());
    }
}
