//! Group commit for Run Command status changes.
//!
//! Every change to the Run Command tables (commands, invocations, pending and running indexes and
//! the status-change events of the outbox) is decided under `Inner::lock` as before, but instead
//! of a synchronous commit under that lock it is queued here ([`Group::enqueue`]) and the lock is
//! released. One writer thread takes everything queued, writes it with one
//! `ControlStore::batch` (one fsync), and then completes every [`Ticket`] of the group. A caller
//! answers its client only after its ticket completed, so an acknowledged change is durable.
//!
//! Until its group is committed a queued change is visible to the deciders through [`Group::get`]
//! and [`Group::scan`] (store rows overlaid with the queued writes, in queue order), so the next
//! decision under the lock sees it: decide-and-write stays atomic with respect to other
//! deciders. If a group's commit fails, that group and everything queued after it (which may
//! have been decided on top of it) fail together and the overlay empties: the store is again the
//! truth and no caller was told success.
//!
//! Before the writer is started (unit tests) and after it stopped, [`Group::enqueue`] commits at
//! once, as before.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::ApiError;
use opsloop_store::{ControlStore, StoreError, WriteOp};
use parking_lot::{Condvar, Mutex};

use crate::bus;
use crate::Inner;

/// Work run by the caller after its change is committed (SNS notifications).
pub type After = Box<dyn FnOnce() + Send>;

/// The queue of changes waiting for the writer, which is also the deciders' overlay.
#[derive(Default)]
pub struct Group {
    queue: Mutex<Queue>,
    more: Condvar,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    started: bool,
    stop: bool,
}

struct Entry {
    ops: Vec<WriteOp>,
    slot: Arc<Slot>,
}

/// Where the writer leaves a change's outcome.
#[derive(Default)]
struct Slot {
    done: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

impl Slot {
    fn complete(&self, r: Result<(), String>) {
        *self.done.lock() = Some(r);
        self.cv.notify_all();
        self.notify.notify_one();
    }
}

/// A queued change: wait for it before answering the client.
pub struct Ticket {
    slot: Arc<Slot>,
    after: Option<After>,
}

fn failed(message: String) -> ApiError {
    tracing::error!(error = %message, "run command change not committed");
    ApiError::internal()
}

impl Ticket {
    /// A ticket already completed with `r`.
    fn completed(r: Result<(), ApiError>) -> Ticket {
        let slot = Arc::new(Slot::default());
        slot.complete(r.map_err(|e| e.message));
        Ticket { slot, after: None }
    }

    /// A ticket for no change.
    pub fn done() -> Ticket {
        Ticket::completed(Ok(()))
    }

    /// Run `f` once the change is committed (not when it failed).
    pub fn then(mut self, f: After) -> Ticket {
        self.after = Some(f);
        self
    }

    fn finish(self, r: Result<(), String>) -> Result<(), ApiError> {
        r.map_err(failed)?;
        if let Some(f) = self.after {
            f();
        }
        Ok(())
    }

    /// Block the calling thread until the change is committed.
    pub fn wait(self) -> Result<(), ApiError> {
        let r = {
            let mut done = self.slot.done.lock();
            while done.is_none() {
                self.slot.cv.wait(&mut done);
            }
            done.clone().unwrap_or(Ok(()))
        };
        self.finish(r)
    }

    /// Wait (asynchronously) until the change is committed.
    pub async fn wait_async(self) -> Result<(), ApiError> {
        let slot = self.slot.clone();
        loop {
            let notified = slot.notify.notified();
            if let Some(r) = slot.done.lock().clone() {
                return self.finish(r);
            }
            notified.await;
        }
    }
}

/// Wait for all of `tickets`; the first failure is returned (after all were waited for).
pub async fn wait_all(tickets: Vec<Ticket>) -> Result<(), ApiError> {
    let mut first = Ok(());
    for t in tickets {
        let r = t.wait_async().await;
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// The value of `key` in `table` after `ops`, when they touch it.
fn overlaid<'a>(
    ops: impl DoubleEndedIterator<Item = &'a WriteOp>,
    table: &str,
    key: &str,
) -> Option<Option<&'a [u8]>> {
    for op in ops.rev() {
        match op {
            WriteOp::Put {
                table: t,
                key: k,
                value,
            }
            | WriteOp::Insert {
                table: t,
                key: k,
                value,
            } if t == table && k == key => {
                return Some(Some(value.as_slice()));
            }
            WriteOp::Delete { table: t, key: k } if t == table && k == key => return Some(None),
            _ => {}
        }
    }
    None
}

impl Group {
    /// Queue `ops` (the caller holds `Inner::lock`); committed at once when no writer runs.
    pub fn enqueue(&self, inner: &Inner, ops: Vec<WriteOp>) -> Ticket {
        {
            let mut q = self.queue.lock();
            if q.started && !q.stop {
                let slot = Arc::new(Slot::default());
                q.entries.push_back(Entry {
                    ops,
                    slot: slot.clone(),
                });
                self.more.notify_one();
                return Ticket { slot, after: None };
            }
        }
        Ticket::completed(inner.commit(ops))
    }

    /// The row `key` of `table` as the deciders see it: the newest queued write, else the store.
    pub fn get(
        &self,
        store: &dyn ControlStore,
        table: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let q = self.queue.lock();
        let ops = q.entries.iter().flat_map(|e| e.ops.iter());
        if let Some(v) = overlaid(ops, table, key) {
            return Ok(v.map(<[u8]>::to_vec));
        }
        // Read under the queue lock: the writer drops committed entries only after this read.
        store.get(table, key)
    }

    /// The rows of `table` under `prefix` as the deciders see them, in key order.
    pub fn scan(
        &self,
        store: &dyn ControlStore,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let q = self.queue.lock();
        let mut rows = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.scan(table, prefix, after.as_deref(), 1000)?;
            let n = page.len();
            for (k, v) in page {
                after = Some(k.clone());
                rows.insert(k, v);
            }
            if n < 1000 {
                break;
            }
        }
        for op in q.entries.iter().flat_map(|e| e.ops.iter()) {
            match op {
                WriteOp::Put {
                    table: t,
                    key,
                    value,
                }
                | WriteOp::Insert {
                    table: t,
                    key,
                    value,
                } if t == table && key.starts_with(prefix) => {
                    rows.insert(key.clone(), value.clone());
                }
                WriteOp::Delete { table: t, key } if t == table && key.starts_with(prefix) => {
                    rows.remove(key);
                }
                _ => {}
            }
        }
        Ok(rows.into_iter().collect())
    }

    /// Start the writer thread (from `commands::start`).
    pub fn start(self: &Arc<Self>, store: Arc<dyn ControlStore>, wake: Arc<tokio::sync::Notify>) {
        {
            let mut q = self.queue.lock();
            if q.started {
                return;
            }
            q.started = true;
            q.stop = false;
        }
        let group = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ssm-group-commit".into())
            .spawn(move || group.run(&*store, &wake));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "run command group-commit writer not started; committing directly");
            self.queue.lock().started = false;
        }
    }

    /// Stop the writer once the queue is empty; later changes commit at once.
    pub fn stop(&self) {
        self.queue.lock().stop = true;
        self.more.notify_all();
    }

    fn run(&self, store: &dyn ControlStore, wake: &tokio::sync::Notify) {
        loop {
            let (batch, n) = {
                let mut q = self.queue.lock();
                while q.entries.is_empty() {
                    if q.stop {
                        q.started = false;
                        return;
                    }
                    self.more.wait_for(&mut q, Duration::from_secs(1));
                }
                let n = q.entries.len();
                let batch: Vec<WriteOp> = q
                    .entries
                    .iter()
                    .flat_map(|e| e.ops.iter().cloned())
                    .collect();
                (batch, n)
            };
            let queues = batch
                .iter()
                .any(|op| matches!(op, WriteOp::Put { table, .. } if table == bus::TABLE));
            let size = batch.len();
            let r = store.batch(batch).map_err(|e| e.to_string());
            let done: Vec<Entry> = {
                let mut q = self.queue.lock();
                if r.is_ok() {
                    q.entries.drain(..n).collect()
                } else {
                    // Later entries may rest on the failed ones: fail them too.
                    q.entries.drain(..).collect()
                }
            };
            match &r {
                Ok(()) => {
                    tracing::trace!(changes = n, ops = size, "run command group committed");
                    if queues {
                        wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, changes = done.len(), "run command group commit failed");
                }
            }
            for e in done {
                e.slot.complete(r.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn put(table: &str, key: &str, v: &str) -> WriteOp {
        WriteOp::Put {
            table: table.into(),
            key: key.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    fn started(inner: &Inner) -> Arc<Group> {
        let g = Arc::new(Group::default());
        g.start(inner.store.clone(), inner.wake.clone());
        g
    }

    #[test]
    fn without_writer_enqueue_commits_at_once() {
        let inner = testing::inner();
        let g = Group::default();
        g.enqueue(&inner, vec![put("t", "a", "1")]).wait().unwrap();
        assert_eq!(inner.store.get("t", "a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn queued_changes_are_seen_by_deciders_and_committed_together() {
        let inner = testing::inner();
        let g = started(&inner);
        let tickets: Vec<Ticket> = {
            let t1 = g.enqueue(&inner, vec![put("t", "p/a", "1"), put("t", "p/b", "1")]);
            let t2 = g.enqueue(
                &inner,
                vec![
                    put("t", "p/a", "2"),
                    WriteOp::Delete {
                        table: "t".into(),
                        key: "p/b".into(),
                    },
                ],
            );
            // Whether or not the writer committed already, deciders see the newest state.
            assert_eq!(
                g.get(&*inner.store, "t", "p/a").unwrap(),
                Some(b"2".to_vec())
            );
            assert_eq!(g.get(&*inner.store, "t", "p/b").unwrap(), None);
            let rows = g.scan(&*inner.store, "t", "p/").unwrap();
            assert_eq!(rows, vec![("p/a".to_string(), b"2".to_vec())]);
            vec![t1, t2]
        };
        for t in tickets {
            t.wait().unwrap();
        }
        assert_eq!(inner.store.get("t", "p/a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(inner.store.get("t", "p/b").unwrap(), None);
        assert!(g.queue.lock().entries.is_empty());
        g.stop();
    }

    #[test]
    fn concurrent_changes_share_commits_and_all_are_durable_when_acknowledged() {
        let inner = Arc::new(testing::inner());
        let g = started(&inner);
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let (inner, g) = (inner.clone(), g.clone());
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let key = format!("k/{n}/{i}");
                        g.enqueue(&inner, vec![put("t", &key, "x")]).wait().unwrap();
                        // Acknowledged: in the store itself, not only in the overlay.
                        assert_eq!(inner.store.get("t", &key).unwrap(), Some(b"x".to_vec()));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(inner.store.scan("t", "k/", None, 1000).unwrap().len(), 400);
        g.stop();
    }

    #[test]
    fn a_failed_group_fails_its_callers_and_empties_the_overlay() {
        let inner = testing::inner();
        inner.store.put("t", "taken", b"old").unwrap();
        let g = started(&inner);
        // An Insert on an existing row makes the whole batch fail.
        let bad = g.enqueue(
            &inner,
            vec![
                put("t", "p/new", "1"),
                WriteOp::Insert {
                    table: "t".into(),
                    key: "taken".into(),
                    value: b"new".to_vec(),
                },
            ],
        );
        assert!(bad.wait().is_err());
        assert_eq!(inner.store.get("t", "p/new").unwrap(), None);
        assert_eq!(g.get(&*inner.store, "t", "p/new").unwrap(), None);
        assert!(g.queue.lock().entries.is_empty());
        // The writer goes on.
        g.enqueue(&inner, vec![put("t", "p/after", "1")])
            .wait()
            .unwrap();
        assert_eq!(
            inner.store.get("t", "p/after").unwrap(),
            Some(b"1".to_vec())
        );
        g.stop();
    }

    #[tokio::test]
    async fn async_waiters_run_their_after_work_only_on_success() {
        let inner = testing::inner();
        let g = started(&inner);
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        g.enqueue(&inner, vec![put("t", "a", "1")])
            .then(Box::new(move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            }))
            .wait_async()
            .await
            .unwrap();
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        g.stop();
        // Stopped: later changes commit at once.
        g.enqueue(&inner, vec![put("t", "b", "1")]).wait().unwrap();
        assert_eq!(inner.store.get("t", "b").unwrap(), Some(b"1".to_vec()));
    }
}
