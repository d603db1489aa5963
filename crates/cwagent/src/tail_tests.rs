//! Tailer tests: rotation by rename, truncation, restart from the position file, multi-line
//! events, timestamps, batch limits and group/stream creation, against the recording sink.

use std::io::Write;
use std::sync::atomic::Ordering;

use super::*;
use crate::config::AgentConfig;
use crate::tests::MockSink;

fn config(dir: &Path, extra: &str) -> Vec<LogFileConfig> {
    let cfg = format!(
        r#"{{"logs": {{"logs_collected": {{"files": {{"collect_list": [{{"file_path": "{}/app.log*", "log_group_name": "grp", "log_stream_name": "{{instance_id}}"{extra}}}]}}}}}}}}"#,
        dir.display()
    );
    AgentConfig::parse(&cfg).unwrap().logs
}

fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

fn expect(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn rotation_truncation_and_restart_lose_and_duplicate_nothing() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let state = d.path().join("state");
    let cfg = config(&logs, "");
    let sink = MockSink::default();
    let log = logs.join("app.log");
    append(&log, &lines("a", 0..5));
    append(&log, "partial-no-newline");

    let mut t = Tailer::new(&cfg, "mi-1", &state).unwrap();
    assert_eq!(t.poll(&sink).await.unwrap(), 5);
    assert_eq!(sink.messages("grp", "mi-1"), expect("a", 0..5));
    assert_eq!(sink.groups.lock().unwrap().as_slice(), ["grp"]);

    // The partial line completes; then rotation by rename with lines written to both files.
    append(&log, "-done\n");
    append(&log, &lines("b", 0..3));
    fs::rename(&log, logs.join("app.log.1")).unwrap();
    append(&logs.join("app.log.1"), &lines("late", 0..2));
    append(&log, &lines("c", 0..4));
    t.poll(&sink).await.unwrap();
    let mut want = expect("a", 0..5);
    want.push("partial-no-newline-done".into());
    let got = sink.messages("grp", "mi-1");
    for l in want
        .iter()
        .chain(&expect("b", 0..3))
        .chain(&expect("late", 0..2))
        .chain(&expect("c", 0..4))
    {
        assert_eq!(got.iter().filter(|g| *g == l).count(), 1, "{l} in {got:?}");
    }
    assert_eq!(got.len(), 15);

    // Truncation (copytruncate style): the file restarts at 0.
    fs::write(&log, "").unwrap();
    t.poll(&sink).await.unwrap();
    append(&log, &lines("t", 0..2));
    t.poll(&sink).await.unwrap();
    assert_eq!(sink.messages("grp", "mi-1")[15..], expect("t", 0..2));

    // The server goes down; lines written meanwhile wait in the file.
    sink.down.store(true, Ordering::SeqCst);
    append(&log, &lines("d", 0..3));
    assert!(t.poll(&sink).await.unwrap_err().retryable);
    drop(t);

    // Restart: a new tailer resumes from the saved positions.
    sink.down.store(false, Ordering::SeqCst);
    append(&log, &lines("e", 0..2));
    let mut t = Tailer::new(&cfg, "mi-1", &state).unwrap();
    t.poll(&sink).await.unwrap();
    let got = sink.messages("grp", "mi-1");
    assert_eq!(
        got[17..],
        [expect("d", 0..3), expect("e", 0..2)].concat(),
        "{got:?}"
    );
    assert_eq!(got.len(), 22);
    // Nothing more to send.
    assert_eq!(t.poll(&sink).await.unwrap(), 0);
    drop(t);
    let mut t = Tailer::new(&cfg, "mi-1", &state).unwrap();
    assert_eq!(t.poll(&sink).await.unwrap(), 0);
    assert_eq!(sink.messages("grp", "mi-1").len(), 22);
}

#[tokio::test]
async fn rotated_file_outside_the_glob_is_drained() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "");
    let sink = MockSink::default();
    let log = d.path().join("app.log");
    append(&log, &lines("x", 0..2));
    let mut t = Tailer::new(&cfg, "i", &d.path().join("s")).unwrap();
    t.poll(&sink).await.unwrap();
    append(&log, "y0\ntail-without-newline");
    fs::rename(&log, d.path().join("old-app")).unwrap();
    append(&log, "z0\n");
    t.poll(&sink).await.unwrap();
    let mut got = sink.messages("grp", "i");
    got.sort();
    assert_eq!(got, ["tail-without-newline", "x0", "x1", "y0", "z0"]);
}

#[tokio::test]
async fn multi_line_events_and_timestamps() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(
        d.path(),
        r#", "timestamp_format": "%Y-%m-%d %H:%M:%S", "multi_line_start_pattern": "{timestamp_format}""#,
    );
    let sink = MockSink::default();
    let log = d.path().join("app.log");
    let now_s = now_ms() / 1000;
    let fmt = |secs: i64| {
        // A UTC civil time for `secs`, formatted as the config says.
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (mut y, mut doy) = (1970i64, days);
        loop {
            let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            };
            if doy < len {
                break;
            }
            doy -= len;
            y += 1;
        }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let ml = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut m = 0;
        while doy >= ml[m] {
            doy -= ml[m];
            m += 1;
        }
        format!(
            "{y:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            m + 1,
            doy + 1,
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    };
    let t1 = fmt(now_s - 10);
    let t2 = fmt(now_s - 20);
    append(
        &log,
        &format!("{t1} ERROR boom\n  at a()\n  at b()\n{t2} INFO next\n"),
    );
    let mut t = Tailer::new(&cfg, "i", &d.path().join("s")).unwrap();
    // The last event may still grow: held back until the file stops growing.
    t.poll(&sink).await.unwrap();
    assert_eq!(
        sink.messages("grp", "i"),
        [format!("{t1} ERROR boom\n  at a()\n  at b()")]
    );
    t.poll(&sink).await.unwrap();
    assert_eq!(sink.messages("grp", "i").len(), 2);
    assert_eq!(sink.messages("grp", "i")[1], format!("{t2} INFO next"));
}

#[test]
fn batches_respect_putlogevents_limits() {
    let ev = |ts: i64, len: usize| Event {
        timestamp: ts,
        message: "x".repeat(len),
        end: 0,
    };
    let many: Vec<Event> = (0..10_050).map(|i| ev(i, 1)).collect();
    assert_eq!(batch_len(&many), MAX_BATCH_EVENTS);
    let big: Vec<Event> = (0..10).map(|i| ev(i, 200_000)).collect();
    let n = batch_len(&big);
    assert_eq!(n, 5);
    assert!(n * (200_000 + EVENT_OVERHEAD) <= MAX_BATCH_BYTES);
    let span = vec![
        ev(0, 1),
        ev(MAX_BATCH_SPAN_MS, 1),
        ev(MAX_BATCH_SPAN_MS + 1, 1),
    ];
    assert_eq!(batch_len(&span), 2);
    assert_eq!(truncate_utf8("héllo".into(), 2), "h");
}

#[test]
fn stream_name_templates() {
    let s = stream_name("{instance_id}/{hostname}", "mi-9");
    assert!(s.starts_with("mi-9/") && s.len() > 5, "{s}");
}
