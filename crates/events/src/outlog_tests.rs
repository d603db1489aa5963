//! Unit tests of the outbox log (`outlog.rs`).

use super::*;

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn put(log: &mut OutLog, keys: &[&str]) {
    for k in keys {
        log.push_record(k, |out| {
            out.extend_from_slice(format!("rec-{k}").as_bytes())
        });
    }
    log.flush(true).unwrap();
}

fn keys(replayed: &[Replayed]) -> Vec<&str> {
    replayed.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn written_records_come_back_until_settled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let (mut log, got) = OutLog::open(&dir).unwrap();
    assert!(got.is_empty());
    assert!(!dir.exists(), "nothing is created before the first write");
    put(&mut log, &["a", "b"]);
    put(&mut log, &["c"]);
    assert!(log.settle("b"));
    assert!(!log.settle("b"), "settled once");
    assert!(!log.settle("zz"), "not a record of the log");
    // the tombstone rides along with the next group
    put(&mut log, &["d"]);
    assert_eq!(log.unsettled(), 3);
    drop(log);
    let (mut log, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["a", "c", "d"], "in write order");
    assert_eq!(got[1].1, b"rec-c");
    // a tombstone written alone (no fsync asked) is read back too
    assert!(log.settle("a"));
    log.flush(false).unwrap();
    drop(log);
    let (_, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["c", "d"]);
}

#[test]
fn a_torn_tail_is_cut_and_the_rest_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let (mut log, _) = OutLog::open(&dir).unwrap();
    put(&mut log, &["k1", "k2"]);
    drop(log);
    let seg = dir.join(&files(&dir)[0]);
    let good = std::fs::metadata(&seg).unwrap().len();
    // a crash in the middle of writing the next group: a whole frame and a torn one
    let mut tail = Vec::new();
    let first = push_frame(&mut tail, RECORD, |o| {
        push_key(o, "k3");
        o.extend_from_slice(b"whole");
    });
    let whole = tail.len();
    let second = push_frame(&mut tail, RECORD, |o| {
        push_key(o, "k4");
        o.extend_from_slice(&[7u8; 300]);
    });
    seal(&mut tail, &[first, second], 1);
    tail.truncate(whole + 40);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &tail).unwrap();
    drop(f);
    let (mut log, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["k1", "k2", "k3"]);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        good + whole as u64,
        "the torn frame is cut off"
    );
    // writing goes on in a new segment; both read back
    put(&mut log, &["k5"]);
    drop(log);
    assert_eq!(files(&dir).len(), 2);
    let (_, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["k1", "k2", "k3", "k5"]);
}

#[test]
fn a_corrupt_frame_ends_its_segment_not_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let (mut log, _) = OutLog::open_with(&dir, 1, 0).unwrap();
    put(&mut log, &["a", "b"]);
    put(&mut log, &["c"]);
    drop(log);
    let names = files(&dir);
    assert_eq!(names.len(), 2);
    // flip a byte in the second record of the first segment
    let first = dir.join(&names[0]);
    let mut data = std::fs::read(&first).unwrap();
    let last = data.len() - 2;
    data[last] ^= 0xff;
    std::fs::write(&first, &data).unwrap();
    let (_, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["a", "c"]);
    // garbage where the magic should be: the file is left alone and ignored
    std::fs::write(dir.join(segment_name(99)), b"something else entirely").unwrap();
    // a segment created just before a crash, before any byte of it was written
    std::fs::write(dir.join(segment_name(50)), b"").unwrap();
    let (mut log, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["a", "c"]);
    put(&mut log, &["d"]);
    assert!(
        files(&dir).contains(&segment_name(100)),
        "numbering goes on after the highest name"
    );
}

#[test]
fn segments_are_removed_oldest_first_once_settled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    // tiny segments: every group starts a new one
    let (mut log, _) = OutLog::open_with(&dir, 1, 0).unwrap();
    put(&mut log, &["a"]);
    put(&mut log, &["b"]);
    put(&mut log, &["c"]);
    assert_eq!(files(&dir).len(), 3);
    // settling the middle one removes nothing: its tombstone (in a fourth segment) must
    // not outlive record a's segment
    assert!(log.settle("b"));
    log.flush(false).unwrap();
    assert_eq!(files(&dir).len(), 4);
    drop(log);
    let (mut log, got) = OutLog::open_with(&dir, 1, 0).unwrap();
    assert_eq!(keys(&got), ["a", "c"]);
    assert!(log.settle("a"));
    // a's and b's segments go; c's is kept (c is unsettled), and with it the tombstones after
    log.flush(false).unwrap();
    assert_eq!(
        files(&dir),
        [segment_name(3), segment_name(4), segment_name(5)]
    );
    drop(log);
    let (mut log, got) = OutLog::open_with(&dir, 1, 0).unwrap();
    assert_eq!(keys(&got), ["c"]);
    assert!(log.settle("c"));
    log.flush(true).unwrap();
    // only the open segment (holding c's tombstone) stays
    assert_eq!(files(&dir), [segment_name(6)]);
    drop(log);
    let (log, got) = OutLog::open_with(&dir, 1, 0).unwrap();
    assert!(got.is_empty());
    assert_eq!(
        log.segments(),
        0,
        "an all-settled log leaves no segment at open"
    );
    assert!(files(&dir).is_empty());
}

#[test]
fn settled_segments_are_written_over_and_their_old_frames_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    // three 18-byte record frames fill a 60-byte segment; one spare kept
    let (mut log, _) = OutLog::open_with(&dir, 60, 1).unwrap();
    put(&mut log, &["a1", "a2", "a3"]);
    put(&mut log, &["b1", "b2", "b3"]);
    assert_eq!(files(&dir), [segment_name(1), segment_name(2)]);
    for k in ["a1", "a2", "a3"] {
        assert!(log.settle(k));
    }
    assert_eq!(log.spares(), 1, "segment 1 is kept to be written over");
    assert_eq!(files(&dir), [spare_name(1), segment_name(2)]);
    // the tombstones start segment 3: segment 1 renamed, its first 18 bytes written over by a
    // tombstone frame of exactly one record frame's size, so a2's and a3's old frames follow
    // on a frame boundary
    log.flush(false).unwrap();
    assert_eq!(log.spares(), 0);
    assert_eq!(files(&dir), [segment_name(2), segment_name(3)]);
    let seg3 = dir.join(segment_name(3));
    assert_eq!(
        std::fs::metadata(&seg3).unwrap().len(),
        62,
        "the old file, written over"
    );
    drop(log);
    let (_, got) = OutLog::open_with(&dir, 60, 1).unwrap();
    assert_eq!(
        keys(&got),
        ["b1", "b2", "b3"],
        "a2 and a3 (checksummed as segment 1) are not read back from segment 3"
    );
    assert_eq!(
        std::fs::metadata(&seg3).unwrap().len(),
        26,
        "the old frames are cut off"
    );
}

#[test]
fn big_groups_and_wipe() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let (mut log, _) = OutLog::open_with(&dir, 64 << 10, SPARES).unwrap();
    let body = vec![b'x'; 2900];
    let mut inodes = std::collections::HashSet::new();
    for g in 0..40u64 {
        for i in 0..32 {
            log.push_record(&format!("{g:04}{i:04}"), |o| o.extend_from_slice(&body));
        }
        assert_eq!(log.group_len(), 32);
        log.flush(true).unwrap();
        inodes.insert(
            std::fs::metadata(dir.join(segment_name(g + 1)))
                .unwrap()
                .ino(),
        );
        // deliver the previous group
        if g > 0 {
            for i in 0..32 {
                assert!(log.settle(&format!("{:04}{i:04}", g - 1)));
            }
        }
    }
    assert_eq!(log.unsettled(), 32);
    assert_eq!(
        log.spares(),
        1,
        "one retired per group, one taken per group"
    );
    assert_eq!(files(&dir), [spare_name(39), segment_name(40)]);
    assert!(
        inodes.len() <= 3,
        "40 segments written over the same few files: {inodes:?}"
    );
    drop(log);
    let (mut log, got) = OutLog::open(&dir).unwrap();
    assert_eq!(got.len(), 32);
    assert!(got.iter().all(|(k, b)| k.starts_with("0039") && *b == body));
    log.wipe().unwrap();
    assert!(files(&dir).is_empty());
    put(&mut log, &["after"]);
    drop(log);
    let (_, got) = OutLog::open(&dir).unwrap();
    assert_eq!(keys(&got), ["after"]);
}
