//! The durable outbox of accepted events and its group-committing writer.
//!
//! PutEvents (and schedule firings, bus-to-bus forwarding, replays) hand an [`Record`] — the
//! accepted events and, for each, the rules it matched — to the [`Writer`]. One writer thread takes
//! everything queued while the previous commit ran and writes it at once, then answers every
//! waiting caller and hands the committed records to the dispatcher, so many concurrent PutEvents
//! calls share one fsync. A record alone goes to the outbox log ([`crate::outlog`]: one `write` and
//! one `fdatasync` for the whole group); a record that comes with control-store writes (a schedule
//! firing and its new fire time) goes with them into one control-store batch, so both or neither
//! happen; other control-store writes (retry rows) go into that batch too.
//!
//! Writes nobody waits for ([`Writer::write_later`]: deleting delivered records and finished retry
//! rows) do not get a commit of their own: they ride along with the next commit someone waits for,
//! or are written after at most [`DEFER`] (or once [`DEFER_MAX_OPS`] have gathered, or at stop).
//! Deleting a record of the log appends a tombstone; deleting any other is a control-store delete.
//! Losing them in a crash only means delivering those events again (at least once).
//!
//! Keys: `<13-digit ms><10-digit sequence>`, in the log and in the control store's
//! `events.outbox` table alike → JSON [`Record`]; the key sorts by acceptance time and is unique
//! (the sequence restarts with the process, the milliseconds move on). At start the dispatcher
//! takes the log's unsettled records and the table's rows (including rows written by versions
//! before the log, which are delivered and deleted there), oldest first.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use opsloop_store::{ControlStore, WriteOp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::event::{push_json_str, Event};
use crate::outlog::{OutLog, Replayed};
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
    /// The names of the rules the event matched (shared with the bus's matcher).
    pub rules: Vec<Arc<str>>,
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
    rules: Vec<Arc<str>>,
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
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// [`Record::encode`], appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
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
        out.reserve(size + 32 + shared.map_or(0, names));
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
            push_names(out, first);
        }
        out.extend_from_slice(b"\"items\":[");
        for (n, i) in self.items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.push(b'{');
            if shared.is_none() {
                push_names(out, i);
            }
            out.extend_from_slice(b"\"event\":");
            out.extend_from_slice(i.event.text().as_bytes());
            out.extend_from_slice(b",\"rules\":[");
            for (k, r) in i.rules.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                push_json_str(out, r);
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
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
    Wipe(mpsc::Sender<Result<(), String>>),
    Stop,
}

/// Handle of the writer thread.
pub struct Writer {
    tx: parking_lot::Mutex<mpsc::Sender<Msg>>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Unsettled records read back from the outbox log at open, until [`Writer::load`] takes them.
    replayed: parking_lot::Mutex<Vec<Replayed>>,
}

impl Writer {
    /// Open the outbox log in `log_dir` and start the writer thread over it and `control`;
    /// committed records go to `dispatch`.
    pub fn spawn(
        control: Arc<dyn ControlStore>,
        log_dir: &Path,
        dispatch: tmpsc::UnboundedSender<Committed>,
    ) -> Result<Writer, String> {
        let (log, replayed) = OutLog::open(log_dir).map_err(|e| {
            format!(
                "cannot open the events outbox log in {}: {e}",
                log_dir.display()
            )
        })?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("events-outbox".into())
            .spawn(move || run(control, log, rx, dispatch))
            .map_err(|e| e.to_string())?;
        Ok(Writer {
            tx: parking_lot::Mutex::new(tx),
            thread: parking_lot::Mutex::new(Some(thread)),
            replayed: parking_lot::Mutex::new(replayed),
        })
    }

    fn send(&self, msg: Msg) -> Result<(), String> {
        self.tx
            .lock()
            .send(msg)
            .map_err(|_| "the outbox writer has stopped".to_string())
    }

    /// Durably write `record` (if any) and `ops`; resolves once committed. A record alone goes to
    /// the outbox log; a record with `ops` goes with them into one control-store batch (atomic).
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
    /// documentation for how long they may be held back). Deleting an outbox record of the log
    /// settles it there (a tombstone); any other write goes to the control store.
    pub fn write_later(&self, ops: Vec<WriteOp>) {
        if !ops.is_empty() {
            let _ = self.send(Msg::Commit {
                record: None,
                ops,
                reply: None,
            });
        }
    }

    /// Every stored record not yet settled, oldest first: those of the `events.outbox` table
    /// (records written together with other control-store writes, and rows left by versions
    /// before the outbox log) and, the first time, those read back from the outbox log.
    pub fn load(&self, control: &dyn ControlStore) -> Result<Vec<Committed>, String> {
        let mut out = load(control)?;
        let replayed = std::mem::take(&mut *self.replayed.lock());
        let mut unreadable = Vec::new();
        for (key, bytes) in replayed {
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(r) => out.push((key, Arc::new(r))),
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "unreadable events outbox record dropped");
                    unreadable.push(WriteOp::Delete {
                        table: T_OUTBOX.into(),
                        key,
                    });
                }
            }
        }
        self.write_later(unreadable);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Forget every record of the outbox log (the control store was wiped). Blocking.
    pub fn wipe(&self) -> Result<(), String> {
        self.replayed.lock().clear();
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Wipe(tx))?;
        rx.recv()
            .map_err(|_| "the outbox writer has stopped".to_string())?
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

/// Which store a waiting caller's writes went to (neither: it waits for everything before it).
struct Waiter {
    reply: oneshot::Sender<Result<(), String>>,
    log: bool,
    control: bool,
}

fn run(
    control: Arc<dyn ControlStore>,
    mut log: OutLog,
    rx: mpsc::Receiver<Msg>,
    dispatch: tmpsc::UnboundedSender<Committed>,
) {
    let mut seq: u64 = 0;
    // Control-store writes nobody waits for, held back for the next commit (oldest first);
    // tombstones wait in `log` the same way.
    let mut deferred: Vec<WriteOp> = Vec::new();
    loop {
        let held = !deferred.is_empty() || log.tombstones() > 0;
        let first = if !held {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(DEFER) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    write_held(control.as_ref(), &mut log, &mut deferred, false);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            }
        };
        let Some(first) = first else {
            write_held(control.as_ref(), &mut log, &mut deferred, true);
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
        // Records of this group: in the log, and in the control-store batch.
        let mut logged: Vec<Committed> = Vec::new();
        let mut stored: Vec<Committed> = Vec::new();
        let mut waiters: Vec<Waiter> = Vec::new();
        let mut stop = false;
        let ms = now_ms();
        for m in msgs {
            match m {
                Msg::Stop => stop = true,
                Msg::Wipe(reply) => {
                    logged.clear();
                    let _ = reply.send(log.wipe().map_err(|e| e.to_string()));
                }
                Msg::Commit {
                    record,
                    ops: extra,
                    reply,
                } => {
                    let before = ops.len();
                    for op in extra {
                        match op {
                            WriteOp::Delete { table, key }
                                if table == T_OUTBOX && log.settle(&key) => {}
                            op => ops.push(op),
                        }
                    }
                    let mut in_log = false;
                    if let Some(r) = record {
                        seq += 1;
                        let key = record_key(ms, seq);
                        if ops.len() == before {
                            log.push_record(&key, |out| r.encode_into(out));
                            logged.push((key, r));
                            in_log = true;
                        } else {
                            ops.push(WriteOp::Put {
                                table: T_OUTBOX.into(),
                                key: key.clone(),
                                value: r.encode(),
                            });
                            stored.push((key, r));
                        }
                    }
                    if let Some(reply) = reply {
                        waiters.push(Waiter {
                            reply,
                            log: in_log,
                            control: ops.len() > before,
                        });
                    }
                }
            }
        }
        // Nobody waits for this group: hold it back for a commit someone waits for.
        if waiters.is_empty() && !stop && ops.len() + log.tombstones() < DEFER_MAX_OPS {
            deferred = ops;
            continue;
        }
        let log_result = log
            .flush(stop)
            .map_err(|e| format!("cannot write the events outbox log: {e}"));
        let control_result = if ops.is_empty() {
            Ok(())
        } else {
            control.batch(ops).map_err(|e| e.to_string())
        };
        for (what, r) in [("log", &log_result), ("control store", &control_result)] {
            if let Err(e) = r {
                tracing::error!(error = %e, store = what, "events outbox commit failed");
            }
        }
        let mut committed = Vec::new();
        if log_result.is_ok() {
            committed = logged;
        }
        if control_result.is_ok() && !stored.is_empty() {
            committed.extend(stored);
            committed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        for r in committed {
            let _ = dispatch.send(r);
        }
        for w in waiters {
            let result = match (w.log, w.control) {
                (true, _) => log_result.clone(),
                (false, true) => control_result.clone(),
                (false, false) => log_result.clone().and(control_result.clone()),
            };
            let _ = w.reply.send(result);
        }
        if stop {
            return;
        }
    }
}

/// `<13-digit ms><10-digit sequence>` (written without `format!`: one per record).
fn record_key(ms: i64, seq: u64) -> String {
    if !(0..10_000_000_000_000).contains(&ms) || seq >= 10_000_000_000 {
        return format!("{ms:013}{seq:010}");
    }
    let mut b = [b'0'; 23];
    let (mut m, mut q) = (ms as u64, seq);
    for d in b[..13].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    for d in b[13..].iter_mut().rev() {
        *d = b'0' + (q % 10) as u8;
        q /= 10;
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Write what is held back now: tombstones (synced when `sync`) and control-store writes (a
/// failure only leaves work to be done again after a restart).
fn write_held(
    control: &dyn ControlStore,
    log: &mut OutLog,
    deferred: &mut Vec<WriteOp>,
    sync: bool,
) {
    if let Err(e) = log.flush(sync) {
        tracing::error!(error = %e, "events outbox: cannot write tombstones");
    }
    if deferred.is_empty() {
        return;
    }
    if let Err(e) = control.batch(std::mem::take(deferred)) {
        tracing::error!(error = %e, "events outbox: cannot write finished work");
    }
}

/// Every row of the control store's `events.outbox` table, oldest first.
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
#[path = "outbox_tests.rs"]
mod tests;
