//! Records as JSON over any [`ControlStore`]: typed reads, whole-prefix scans that page through
//! the store, and the write operations that encode a record. Services keep their own error
//! mapping; this module only knows the store and JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ControlStore, StoreError, WriteOp};

/// Rows read per store call by [`Typed::scan`].
const SCAN_PAGE: usize = 500;

/// A typed read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("undecodable stored record: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Typed access to a control store.
#[derive(Clone, Copy)]
pub struct Typed<'a>(pub &'a dyn ControlStore);

impl Typed<'_> {
    /// The record at `table`/`key`, decoded.
    pub fn get<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<T>, TypedError> {
        match self.0.get(table, key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every record of `table` whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, TypedError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self.0.scan(table, prefix, after.as_deref(), SCAN_PAGE)?;
            let done = rows.len() < SCAN_PAGE;
            for (key, bytes) in rows {
                let record = serde_json::from_slice(&bytes)?;
                after = Some(key.clone());
                out.push((key, record));
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// Apply `ops` atomically; an empty list touches nothing.
    pub fn batch(&self, ops: Vec<WriteOp>) -> Result<(), TypedError> {
        if ops.is_empty() {
            return Ok(());
        }
        Ok(self.0.batch(ops)?)
    }
}

/// The write that stores `value` as JSON at `table`/`key`.
pub fn put<T: Serialize>(table: &str, key: &str, value: &T) -> WriteOp {
    WriteOp::Put {
        table: table.to_string(),
        key: key.to_string(),
        value: serde_json::to_vec(value).unwrap_or_default(),
    }
}

/// The write that deletes `table`/`key`.
pub fn del(table: &str, key: &str) -> WriteOp {
    WriteOp::Delete {
        table: table.to_string(),
        key: key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[test]
    fn scan_pages_through_more_rows_than_one_store_call_returns() {
        let store = SqliteStore::memory().unwrap();
        let db = Typed(&store);
        let ops = (0..SCAN_PAGE + 7)
            .map(|i| put("t", &format!("a/{i:05}"), &i))
            .chain([put("t", "b/0", &0usize)])
            .collect();
        db.batch(ops).unwrap();
        let rows: Vec<(String, usize)> = db.scan("t", "a/").unwrap();
        assert_eq!(rows.len(), SCAN_PAGE + 7);
        assert!(rows.iter().enumerate().all(|(i, (_, v))| *v == i));
        assert_eq!(db.get::<usize>("t", "b/0").unwrap(), Some(0));
        db.batch(vec![del("t", "b/0")]).unwrap();
        assert_eq!(db.get::<usize>("t", "b/0").unwrap(), None);
        store.put("t", "bad", b"not json").unwrap();
        assert!(matches!(
            db.get::<usize>("t", "bad"),
            Err(TypedError::Decode(_))
        ));
    }
}
