//! Fuzz target `event_pattern`: parse arbitrary bytes as an EventBridge event pattern; when they
//! parse, match the pattern against a few events and require the compiled `Matcher` (from a
//! `serde_json::Value` and from raw bytes) to agree with `Pattern::matches`.
#![no_main]

use opsloop_eventpattern::{parse, Matcher};

const EVENTS: &[&str] = &[
    r#"{"source": "aws.ec2", "detail-type": "x", "detail": {"state": "stopped", "n": 5, "f": 1.5, "b": true, "z": null, "ip": "10.0.0.7", "tags": ["a", "B", "ü"], "o": {"k": "v"}, "e": []}}"#,
    r#"{"a": [{"b": 1, "c": "x"}, {"b": 2, "c": "y"}], "d": [[1, 2], [3, "4"]], "s": "Hello World", "u": "ΣΊΣΥΦΟΣ"}"#,
    r#"{"a": "x", "b": "xy", "c": 300, "d": -2.5e1, "x": {"y": {"z": ["a*b", "2001:db8::1", ""]}}}"#,
    r#"{}"#,
    r#"{"a": {"b": {"c": [null, false, 0, "0"]}}, "source": ["aws.s3", "aws.ec2"]}"#,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = parse(text) else {
        return;
    };
    let mut m = Matcher::new();
    m.add(0u8, &p);
    m.add(1u8, &parse(r#"{"detail": {"state": ["stopped"]}}"#).unwrap());
    for ev in EVENTS {
        let v: serde_json::Value = serde_json::from_str(ev).unwrap();
        let want = p.matches(&v);
        let got = m.matches(&v).contains(&0);
        assert_eq!(got, want, "Matcher::matches disagrees on {ev} for {text}");
        let raw = m.matches_json(ev.as_bytes()).contains(&0);
        assert_eq!(raw, want, "Matcher::matches_json disagrees on {ev} for {text}");
    }
});
