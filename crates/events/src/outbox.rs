//! The durable outbox of accepted events and its group-committing writer.
//!
//! PutEvents (and schedule firings, bus-to-bus forwarding, replays) hand an [`Record`] — the
//! accepted events and, for each, the rules it matched — to the [`Writer`]. One writer thread takes
//! everything queued while the previous commit ran and writes it in ONE control-store batch (one
//! SQLite transaction, one fsync), then answers every waiting caller and hands the committed
//! records to the dispatcher. Many concurrent PutEvents calls therefore share one fsync. Deleting
//! delivered records and writing retry rows go through the same thread and batches.
//!
//! Writes nobody waits for ([`Writer::write_later`]: deleting delivered records and finished retry
//! rows) do not get a commit of their own: they ride along with the next commit someone waits for,
//! or are written after at most [`DEFER`] (or once [`DEFER_MAX_OPS`] have gathered, or at stop).
//! Losing them in a crash only means delivering those events again (at least once).
//!
//! Layout: `events.outbox` key `<13-digit ms><10-digit sequence>` → JSON [`Record`]; the key sorts
//! by acceptance time and is unique (the sequence restarts with the process, the milliseconds move on).

use std::sync::mpsc;
use std::sync::Arc;

use opsloop_store::{ControlStore, WriteOp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::event::{push_json_str, Event};
use crate::util::{now_ms, T_OUTBOX};

/// Most messages folded into one commit.
const MAX_GROUP: usize = 4096;
/// Longest a write nobody waits for is held back for a commit to ride along with.
pub const DEFER: std::time::Duration = std::time::Duration::from_millis(100);
/// Most held-back writes before they are written anyway.
pub const DEFER_MAX_OPS: usize = 4096;

/// One accepted event and the rules (of its bus) it matched. The names are shared (`Arc`) by the
/// items of one call and by the deliveries made from them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub account: Arc<str>,
    pub region: Arc<str>,
    pub bus: Arc<str>,
    #[serde(with = "crate::event::shared")]
    pub event: Arc<Event>,
    pub rules: Vec<String>,
}

/// Events accepted together (one PutEvents call, one schedule firing, ...).
///
/// Stored (see [`Record::encode`]) with the account, region and bus written once at the top when
/// every item shares them (the usual case), or in each item otherwise; both forms decode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "RawRecord")]
pub struct Record {
    pub accepted_ms: i64,
    pub items: Vec<Item>,
}

/// A stored record as read: names at the top, in each item, or both (an item's own win).
#[derive(Deserialize)]
struct RawRecord {
    accepted_ms: i64,
    #[serde(default)]
    account: Option<Arc<str>>,
    #[serde(default)]
    region: Option<Arc<str>>,
    #[serde(default)]
    bus: Option<Arc<str>>,
    items: Vec<RawItem>,
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    account: Option<Arc<str>>,
    #[serde(default)]
    region: Option<Arc<str>>,
    #[serde(default)]
    bus: Option<Arc<str>>,
    #[serde(with = "crate::event::shared")]
    event: Arc<Event>,
    rules: Vec<String>,
}

impl TryFrom<RawRecord> for Record {
    type Error = String;

    fn try_from(raw: RawRecord) -> Result<Record, String> {
        let pick = |own: Option<Arc<str>>, top: &Option<Arc<str>>, what: &str| {
            own.or_else(|| top.clone())
                .ok_or_else(|| format!("outbox record item without {what}"))
        };
        let items = raw
            .items
            .into_iter()
            .map(|i| {
                Ok(Item {
                    account: pick(i.account, &raw.account, "account")?,
                    region: pick(i.region, &raw.region, "region")?,
                    bus: pick(i.bus, &raw.bus, "bus")?,
                    event: i.event,
                    rules: i.rules,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Record {
            accepted_ms: raw.accepted_ms,
            items,
        })
    }
}

impl Record {
    /// The stored row: the record as JSON, each event's text written as it is (not re-encoded),
    /// the names once at the top when every item has the same.
    pub fn encode(&self) -> Vec<u8> {
        let shared = self.items.split_first().and_then(|(first, rest)| {
            rest.iter()
                .all(|i| {
                    i.account == first.account && i.region == first.region && i.bus == first.bus
                })
                .then_some(first)
        });
        let names = |i: &Item| i.account.len() + i.region.len() + i.bus.len() + 40;
        let size: usize = self
            .items
            .iter()
            .map(|i| {
                i.event.text().len()
                    + 24
                    + i.rules.iter().map(|r| r.len() + 3).sum::<usize>()
                    + if shared.is_some() { 0 } else { names(i) }
            })
            .sum();
        let mut out = Vec::with_capacity(size + 32 + shared.map_or(0, names));
        out.extend_from_slice(b"{\"accepted_ms\":");
        out.extend_from_slice(self.accepted_ms.to_string().as_bytes());
        let push_names = |out: &mut Vec<u8>, i: &Item| {
            out.extend_from_slice(b"\"account\":");
            push_json_str(out, &i.account);
            out.extend_from_slice(b",\"region\":");
            push_json_str(out, &i.region);
            out.extend_from_slice(b",\"bus\":");
            push_json_str(out, &i.bus);
            out.push(b',');
        };
        out.push(b',');
        if let Some(first) = shared {
            push_names(&mut out, first);
        }
        out.extend_from_slice(b"\"items\":[");
        for (n, i) in self.items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.push(b'{');
            if shared.is_none() {
                push_names(&mut out, i);
            }
            out.extend_from_slice(b"\"event\":");
            out.extend_from_slice(i.event.text().as_bytes());
            out.extend_from_slice(b",\"rules\":[");
            for (k, r) in i.rules.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                push_json_str(&mut out, r);
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// A committed record on its way to the dispatcher.
pub type Committed = (String, Arc<Record>);

enum Msg {
    Commit {
        record: Option<Arc<Record>>,
        ops: Vec<WriteOp>,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    },
    Stop,
}

/// Handle of the writer thread.
pub struct Writer {
    tx: parking_lot::Mutex<mpsc::Sender<Msg>>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    /// Start the writer thread over `control`; committed records go to `dispatch`.
    pub fn spawn(
        control: Arc<dyn ControlStore>,
        dispatch: tmpsc::UnboundedSender<Committed>,
    ) -> Result<Writer, String> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("events-outbox".into())
            .spawn(move || run(control, rx, dispatch))
            .map_err(|e| e.to_string())?;
        Ok(Writer {
            tx: parking_lot::Mutex::new(tx),
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    fn send(&self, msg: Msg) -> Result<(), String> {
        self.tx
            .lock()
            .send(msg)
            .map_err(|_| "the outbox writer has stopped".to_string())
    }

    /// Durably write `record` (if any) and `ops` in one transaction; resolves once committed.
    pub async fn commit(
        &self,
        record: Option<Arc<Record>>,
        ops: Vec<WriteOp>,
    ) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Commit {
            record,
            ops,
            reply: Some(reply),
        })?;
        rx.await
            .map_err(|_| "the outbox writer has stopped".to_string())?
    }

    /// Write `ops` with a later batch, without waiting (deletes of finished work; see the module
    /// documentation for how long they may be held back).
    pub fn write_later(&self, ops: Vec<WriteOp>) {
        if !ops.is_empty() {
            let _ = self.send(Msg::Commit {
                record: None,
                ops,
                reply: None,
            });
        }
    }

    /// Write what is held back and stop the thread (waits for it).
    pub fn stop(&self) {
        let _ = self.send(Msg::Stop);
        if let Some(t) = self.thread.lock().take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn run(
    control: Arc<dyn ControlStore>,
    rx: mpsc::Receiver<Msg>,
    dispatch: tmpsc::UnboundedSender<Committed>,
) {
    let mut seq: u64 = 0;
    // Writes nobody waits for, held back for the next commit (oldest first).
    let mut deferred: Vec<WriteOp> = Vec::new();
    loop {
        let first = if deferred.is_empty() {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(DEFER) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    write_deferred(control.as_ref(), &mut deferred);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            }
        };
        let Some(first) = first else {
            write_deferred(control.as_ref(), &mut deferred);
            return;
        };
        let mut msgs = vec![first];
        while msgs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut ops = std::mem::take(&mut deferred);
        let mut records = Vec::new();
        let mut replies = Vec::new();
        let mut stop = false;
        let ms = now_ms();
        for m in msgs {
            match m {
                Msg::Stop => stop = true,
                Msg::Commit {
                    record,
                    ops: extra,
                    reply,
                } => {
                    if let Some(r) = record {
                        seq += 1;
                        let key = format!("{ms:013}{seq:010}");
                        ops.push(WriteOp::Put {
                            table: T_OUTBOX.into(),
                            key: key.clone(),
                            value: r.encode(),
                        });
                        records.push((key, r));
                    }
                    ops.extend(extra);
                    replies.extend(reply);
                }
            }
        }
        // Nobody waits for this group: hold it back for a commit someone waits for.
        if records.is_empty() && replies.is_empty() && !stop && ops.len() < DEFER_MAX_OPS {
            deferred = ops;
            continue;
        }
        let result = if ops.is_empty() {
            Ok(())
        } else {
            control.batch(ops).map_err(|e| e.to_string())
        };
        match &result {
            Ok(()) => {
                for r in records {
                    let _ = dispatch.send(r);
                }
            }
            Err(e) => tracing::error!(error = %e, "events outbox commit failed"),
        }
        for r in replies {
            let _ = r.send(result.clone());
        }
        if stop {
            return;
        }
    }
}

/// Write the held-back writes now (a failure only leaves work to be done again after a restart).
fn write_deferred(control: &dyn ControlStore, deferred: &mut Vec<WriteOp>) {
    if deferred.is_empty() {
        return;
    }
    if let Err(e) = control.batch(std::mem::take(deferred)) {
        tracing::error!(error = %e, "events outbox: cannot write finished work");
    }
}

/// Every stored record, oldest first (to resume after a restart).
pub fn load(control: &dyn ControlStore) -> Result<Vec<Committed>, String> {
    crate::model::scan_all(control, T_OUTBOX)?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_slice::<Record>(&v)
                .map(|r| (k, Arc::new(r)))
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_store::SqliteStore;

    #[test]
    fn rows_decode_to_the_record() {
        let ev = Event::from_text(r#"{"id":"e\"1","detail":{"n":2.50}}"#.into());
        let rec = Record {
            accepted_ms: 1_795_296_820_123,
            items: vec![
                Item {
                    account: "111122223333".into(),
                    region: "us-east-1".into(),
                    bus: "b\"us".into(),
                    event: Arc::new(ev),
                    rules: vec!["r1".into(), "r\\2".into()],
                },
                Item {
                    account: "a".into(),
                    region: "r".into(),
                    bus: "default".into(),
                    event: Arc::new(Event::from_text("{}".into())),
                    rules: vec![],
                },
            ],
        };
        let row = rec.encode();
        let back: Record = serde_json::from_slice(&row).unwrap();
        assert_eq!(back, rec);
        assert_eq!(
            serde_json::to_vec(&back).unwrap().len() + 1,
            row.len(),
            "2.50 kept as written"
        );
    }

    #[test]
    fn names_shared_by_every_item_are_stored_once() {
        let names = |b: &str| -> (Arc<str>, Arc<str>, Arc<str>) {
            ("111122223333".into(), "us-east-1".into(), b.into())
        };
        let (a, r, b) = names("orders");
        let item = |n: u32| Item {
            account: a.clone(),
            region: r.clone(),
            bus: b.clone(),
            event: Arc::new(Event::from_text(format!(r#"{{"id":"{n}","detail":{{}}}}"#))),
            rules: vec![format!("rule-{n}")],
        };
        let rec = Record {
            accepted_ms: 7,
            items: (0..3).map(item).collect(),
        };
        let row = rec.encode();
        let text = String::from_utf8(row.clone()).unwrap();
        assert_eq!(text.matches("111122223333").count(), 1, "{text}");
        assert_eq!(text.matches("\"orders\"").count(), 1, "{text}");
        let back: Record = serde_json::from_slice(&row).unwrap();
        assert_eq!(back, rec);
        assert!(
            Arc::ptr_eq(&back.items[0].bus, &back.items[2].bus),
            "decoded items share the names"
        );
        // the per-item form (rows written before, or items on different buses) still decodes,
        // and an item's own names win over the top ones
        let full = serde_json::to_vec(&rec).unwrap();
        assert_eq!(serde_json::from_slice::<Record>(&full).unwrap(), rec);
        assert!(row.len() < full.len());
        let mixed = r#"{"accepted_ms":1,"account":"a","region":"r","bus":"b","items":[{"event":{},"rules":[]},{"bus":"c","event":{},"rules":["x"]}]}"#;
        let m: Record = serde_json::from_str(mixed).unwrap();
        assert_eq!((&*m.items[0].bus, &*m.items[1].bus), ("b", "c"));
        assert_eq!(&*m.items[1].account, "a");
        let missing =
            r#"{"accepted_ms":1,"items":[{"account":"a","region":"r","event":{},"rules":[]}]}"#;
        let err = serde_json::from_str::<Record>(missing).unwrap_err();
        assert!(err.to_string().contains("without bus"), "{err}");
        // an empty record
        let empty = Record {
            accepted_ms: 3,
            items: vec![],
        };
        assert_eq!(
            serde_json::from_slice::<Record>(&empty.encode()).unwrap(),
            empty
        );
    }

    #[tokio::test]
    async fn commits_are_durable_and_dispatched_in_order() {
        let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
        let (tx, mut rx) = tmpsc::unbounded_channel();
        let w = Arc::new(Writer::spawn(store.clone(), tx).unwrap());
        let rec = |n: i64| Record {
            accepted_ms: n,
            items: vec![],
        };
        let mut handles = Vec::new();
        for i in 0..50 {
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                w.commit(Some(Arc::new(rec(i))), vec![]).await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let stored = load(store.as_ref()).unwrap();
        assert_eq!(stored.len(), 50);
        let mut got = Vec::new();
        for _ in 0..50 {
            got.push(rx.recv().await.unwrap());
        }
        assert_eq!(got, stored, "dispatched what was stored, in key order");
        w.write_later(vec![WriteOp::Delete {
            table: T_OUTBOX.into(),
            key: got[0].0.clone(),
        }]);
        w.commit(None, vec![]).await.unwrap();
        assert_eq!(load(store.as_ref()).unwrap().len(), 49);
        w.stop();
    }

    #[tokio::test]
    async fn writes_nobody_waits_for_are_held_back_then_written() {
        let store: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
        let (tx, _rx) = tmpsc::unbounded_channel();
        let w = Writer::spawn(store.clone(), tx).unwrap();
        for i in 0..3 {
            w.commit(
                Some(Arc::new(Record {
                    accepted_ms: i,
                    items: vec![],
                })),
                vec![],
            )
            .await
            .unwrap();
        }
        let keys: Vec<String> = load(store.as_ref())
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let delete = |k: &String| {
            vec![WriteOp::Delete {
                table: T_OUTBOX.into(),
                key: k.clone(),
            }]
        };
        // alone: written once DEFER has passed
        w.write_later(delete(&keys[0]));
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while load(store.as_ref()).unwrap().len() != 2 {
            assert!(std::time::Instant::now() < end, "held back for good");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // with a commit someone waits for: written by it
        w.write_later(delete(&keys[1]));
        w.commit(None, vec![]).await.unwrap();
        assert_eq!(load(store.as_ref()).unwrap().len(), 1);
        // at stop: written before the thread ends
        w.write_later(delete(&keys[2]));
        w.stop();
        assert_eq!(load(store.as_ref()).unwrap().len(), 0);
    }
}
