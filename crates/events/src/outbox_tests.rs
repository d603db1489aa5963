//! Unit tests of outbox records and the writer (`outbox.rs`).

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
        rules: vec![format!("rule-{n}").into()],
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

#[test]
fn record_keys_are_fixed_width_digits() {
    for (ms, seq) in [
        (0i64, 0u64),
        (1_795_296_820_123, 42),
        (9_999_999_999_999, 9_999_999_999),
        (10_000_000_000_000, 1),
        (5, 10_000_000_000),
    ] {
        assert_eq!(record_key(ms, seq), format!("{ms:013}{seq:010}"));
    }
}

fn rec(n: i64) -> Arc<Record> {
    Arc::new(Record {
        accepted_ms: n,
        items: vec![],
    })
}

fn delete(k: &str) -> Vec<WriteOp> {
    vec![WriteOp::Delete {
        table: T_OUTBOX.into(),
        key: k.to_string(),
    }]
}

/// A writer over a fresh memory store and a log in a temporary directory.
struct Env {
    dir: tempfile::TempDir,
    store: Arc<dyn ControlStore>,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            store: Arc::new(SqliteStore::memory().unwrap()),
        }
    }
    fn spawn(&self) -> (Writer, tmpsc::UnboundedReceiver<Committed>) {
        let (tx, rx) = tmpsc::unbounded_channel();
        let w = Writer::spawn(self.store.clone(), &self.dir.path().join("outbox"), tx).unwrap();
        (w, rx)
    }
    /// What a restarted writer would resume (read without touching the files).
    fn unsettled(&self) -> Vec<Committed> {
        let mut all = load(self.store.as_ref()).unwrap();
        for (k, v) in OutLog::peek(&self.dir.path().join("outbox")).unwrap() {
            all.push((k, Arc::new(serde_json::from_slice(&v).unwrap())));
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[tokio::test]
async fn commits_are_durable_and_dispatched_in_order() {
    let env = Env::new();
    let (w, mut rx) = env.spawn();
    let w = Arc::new(w);
    let mut handles = Vec::new();
    for i in 0..50 {
        let w = w.clone();
        handles.push(tokio::spawn(
            async move { w.commit(Some(rec(i)), vec![]).await },
        ));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..50 {
        got.push(rx.recv().await.unwrap());
    }
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, sorted, "dispatched in key order");
    assert!(
        load(env.store.as_ref()).unwrap().is_empty(),
        "records alone go to the log"
    );
    assert_eq!(env.unsettled(), got, "what was dispatched is stored");
    w.write_later(delete(&got[0].0));
    w.commit(None, vec![]).await.unwrap();
    assert_eq!(env.unsettled().len(), 49);
    w.stop();
    assert_eq!(env.unsettled(), got[1..], "kept over a stop");
}

#[tokio::test]
async fn writes_nobody_waits_for_are_held_back_then_written() {
    let env = Env::new();
    let (w, _rx) = env.spawn();
    for i in 0..3 {
        w.commit(Some(rec(i)), vec![]).await.unwrap();
    }
    let keys: Vec<String> = env.unsettled().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 3);
    // alone: written once DEFER has passed
    w.write_later(delete(&keys[0]));
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while env.unsettled().len() != 2 {
        assert!(std::time::Instant::now() < end, "held back for good");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // with a commit someone waits for: written by it
    w.write_later(delete(&keys[1]));
    w.commit(None, vec![]).await.unwrap();
    assert_eq!(env.unsettled().len(), 1);
    // at stop: written before the thread ends
    w.write_later(delete(&keys[2]));
    w.stop();
    assert!(env.unsettled().is_empty());
}

#[tokio::test]
async fn a_record_with_control_store_writes_is_committed_with_them() {
    let env = Env::new();
    let (w, mut rx) = env.spawn();
    let put = |k: &str| WriteOp::Put {
        table: "events.sched".into(),
        key: k.into(),
        value: b"1".to_vec(),
    };
    w.commit(Some(rec(1)), vec![put("a")]).await.unwrap();
    w.commit(Some(rec(2)), vec![]).await.unwrap();
    let rows = load(env.store.as_ref()).unwrap();
    assert_eq!(rows.len(), 1, "in the control store, with its write");
    assert_eq!(rows[0].1.accepted_ms, 1);
    assert!(env.store.get("events.sched", "a").unwrap().is_some());
    let (first, second) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
    assert!(first.0 < second.0);
    let both = env.unsettled();
    assert_eq!(both, [first.clone(), second.clone()]);
    // settling each removes it from where it is
    w.write_later(delete(&first.0));
    w.write_later(delete(&second.0));
    w.commit(None, vec![]).await.unwrap();
    assert!(load(env.store.as_ref()).unwrap().is_empty());
    assert!(env.unsettled().is_empty());
    w.stop();
}

#[tokio::test]
async fn rows_of_the_old_table_are_resumed_and_deleted_there() {
    let env = Env::new();
    // rows an earlier version left in the control store's outbox table
    let old = Record {
        accepted_ms: 5,
        items: vec![Item {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            bus: "default".into(),
            event: Arc::new(Event::from_text(r#"{"id":"old"}"#.into())),
            rules: vec!["r".into()],
        }],
    };
    let full = serde_json::to_vec(&old).unwrap();
    env.store
        .put(T_OUTBOX, "00000000000050000000001", &full)
        .unwrap();
    let (w, _rx) = env.spawn();
    w.commit(Some(rec(9)), vec![]).await.unwrap();
    w.stop();
    // the restarted writer resumes both
    let (w, _rx) = env.spawn();
    let all = w.load(env.store.as_ref()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, "00000000000050000000001", "oldest first");
    assert_eq!(*all[0].1, old);
    w.write_later(delete(&all[0].0));
    w.commit(None, vec![]).await.unwrap();
    assert!(load(env.store.as_ref()).unwrap().is_empty(), "drained");
    assert_eq!(env.unsettled(), all[1..]);
    w.stop();
}

#[tokio::test]
async fn acknowledged_records_survive_a_crash_and_a_torn_tail() {
    let env = Env::new();
    let (w, _rx) = env.spawn();
    let mut keys = Vec::new();
    for i in 0..20 {
        w.commit(Some(rec(i)), vec![]).await.unwrap();
    }
    for (k, _) in env.unsettled() {
        keys.push(k);
    }
    // The "crash": the writer is never stopped, and a group was being written when the power
    // went: half a frame at the end.
    std::mem::forget(w);
    let dir = env.dir.path().join("outbox");
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3, 4, 1, 23, b'0']).unwrap();
    drop(f);
    let (w2, _rx2) = env.spawn();
    let back: Vec<String> = w2
        .load(env.store.as_ref())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        back, keys,
        "every acknowledged record, the torn frame ignored"
    );
    // a second load answers only the table's rows
    assert!(w2.load(env.store.as_ref()).unwrap().is_empty());
    w2.stop();
}

#[tokio::test]
async fn wipe_forgets_the_log() {
    let env = Env::new();
    let (w, _rx) = env.spawn();
    w.commit(Some(rec(1)), vec![]).await.unwrap();
    w.wipe().unwrap();
    assert!(env.unsettled().is_empty());
    w.commit(Some(rec(2)), vec![]).await.unwrap();
    let left = env.unsettled();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1.accepted_ms, 2);
    w.stop();
}
