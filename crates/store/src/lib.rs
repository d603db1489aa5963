//! Control-plane state: small documents (definitions, configuration, tags) in named tables, behind the
//! [`ControlStore`] trait. [`SqliteStore`] is the embedded implementation; the trait is shaped so a
//! PostgreSQL implementation can follow (string keys, byte values, ordered scans, atomic batches).
//!
//! Architecture invariant: every successful write is durable when the call returns (SQLite WAL mode
//! with `synchronous=FULL`).

pub mod typed;

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("compare-and-set failed for {table}/{key}")]
    Conflict { table: String, key: String },
}

/// One write in an atomic [`ControlStore::batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        table: String,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: String,
        key: String,
    },
    /// Put only if no row exists; the whole batch fails with [`StoreError::Conflict`] otherwise.
    Insert {
        table: String,
        key: String,
        value: Vec<u8>,
    },
}

/// Ordered key/value tables for control-plane state.
pub trait ControlStore: Send + Sync + 'static {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Returns whether a row was removed.
    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError>;
    /// Rows of `table` whose key starts with `prefix` and sorts after `start_after`, ascending,
    /// at most `limit`.
    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Apply all ops atomically.
    fn batch(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// Remove all rows of all tables.
    fn wipe(&self) -> Result<(), StoreError>;
}

/// [`ControlStore`] on one SQLite database file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory store, for tests.
    pub fn memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                tbl TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (tbl, key)
            ) WITHOUT ROWID;",
        )?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }
}

/// The smallest string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(next) = char::from_u32(c as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The writes of one batch, inside its transaction.
fn apply(conn: &Connection, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    for op in ops {
        match op {
            WriteOp::Put { table, key, value } => {
                conn.prepare_cached(
                    "INSERT INTO kv (tbl, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![table, key, value])?;
            }
            WriteOp::Delete { table, key } => {
                conn.prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND key = ?2")?
                    .execute(params![table, key])?;
            }
            WriteOp::Insert { table, key, value } => {
                let n = conn
                    .prepare_cached(
                        "INSERT INTO kv (tbl, key, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![table, key, value])?;
                if n == 0 {
                    return Err(StoreError::Conflict { table, key });
                }
            }
        }
    }
    Ok(())
}

impl ControlStore for SqliteStore {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT value FROM kv WHERE tbl = ?1 AND key = ?2")?;
        Ok(stmt
            .query_row(params![table, key], |r| r.get(0))
            .optional()?)
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO kv (tbl, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
        )?;
        stmt.execute(params![table, key, value])?;
        Ok(())
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND key = ?2")?;
        Ok(stmt.execute(params![table, key])? > 0)
    }

    fn scan(
        &self,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let conn = self.conn.lock();
        let lower = match start_after {
            Some(after) if after >= prefix => after.to_string(),
            _ => String::new(),
        };
        let upper = prefix_end(prefix);
        let mut stmt = conn.prepare_cached(
            "SELECT key, value FROM kv
             WHERE tbl = ?1 AND key >= ?2 AND key > ?3 AND (?4 IS NULL OR key < ?4)
             ORDER BY key LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                table,
                prefix,
                lower,
                upper,
                limit.min(i64::MAX as usize) as i64
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn batch(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        // BEGIN and COMMIT as cached statements (a transaction object prepares both anew on
        // every batch); anything that fails rolls the whole batch back.
        conn.prepare_cached("BEGIN")?.execute([])?;
        let result = apply(&conn, ops).and_then(|()| {
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(())
        });
        if result.is_err() && !conn.is_autocommit() {
            // Nothing better to do if even this fails: the next BEGIN reports it.
            let _ = conn.execute_batch("ROLLBACK");
        }
        result
    }

    fn wipe(&self) -> Result<(), StoreError> {
        self.conn.lock().execute("DELETE FROM kv", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SqliteStore {
        SqliteStore::memory().unwrap()
    }

    #[test]
    fn put_get_delete_roundtrip() {
        let s = store();
        assert_eq!(s.get("t", "a").unwrap(), None);
        s.put("t", "a", b"1").unwrap();
        s.put("t", "a", b"2").unwrap();
        assert_eq!(s.get("t", "a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get("other", "a").unwrap(), None);
        assert!(s.delete("t", "a").unwrap());
        assert!(!s.delete("t", "a").unwrap());
    }

    #[test]
    fn scan_respects_prefix_cursor_and_limit() {
        let s = store();
        for k in ["a/1", "a/2", "a/3", "ab", "b/1"] {
            s.put("t", k, k.as_bytes()).unwrap();
        }
        let keys = |v: Vec<(String, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(s.scan("t", "a/", None, 10).unwrap()),
            ["a/1", "a/2", "a/3"]
        );
        assert_eq!(keys(s.scan("t", "a/", Some("a/1"), 1).unwrap()), ["a/2"]);
        assert_eq!(keys(s.scan("t", "", None, 10).unwrap()).len(), 5);
    }

    #[test]
    fn batch_is_atomic() {
        let s = store();
        s.put("t", "x", b"old").unwrap();
        let err = s
            .batch(vec![
                WriteOp::Put {
                    table: "t".into(),
                    key: "y".into(),
                    value: b"new".to_vec(),
                },
                WriteOp::Insert {
                    table: "t".into(),
                    key: "x".into(),
                    value: b"dup".to_vec(),
                },
            ])
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }));
        assert_eq!(
            s.get("t", "y").unwrap(),
            None,
            "failed batch must change nothing"
        );
        assert_eq!(s.get("t", "x").unwrap(), Some(b"old".to_vec()));
        // the failed batch left no transaction open: the next batch commits on its own
        s.batch(vec![WriteOp::Put {
            table: "t".into(),
            key: "z".into(),
            value: b"after".to_vec(),
        }])
        .unwrap();
        assert!(s.conn.lock().is_autocommit());
        assert_eq!(s.get("t", "z").unwrap(), Some(b"after".to_vec()));
    }

    #[test]
    fn batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        for i in 0..3 {
            s.batch(vec![
                WriteOp::Put {
                    table: "t".into(),
                    key: format!("k{i}"),
                    value: b"v".to_vec(),
                },
                WriteOp::Delete {
                    table: "t".into(),
                    key: "k0".into(),
                },
            ])
            .unwrap();
        }
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        let keys: Vec<String> = s
            .scan("t", "", None, 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["k1", "k2"]);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        SqliteStore::open(&path)
            .unwrap()
            .put("t", "k", b"v")
            .unwrap();
        assert_eq!(
            SqliteStore::open(&path).unwrap().get("t", "k").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
