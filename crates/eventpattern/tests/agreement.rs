//! Property-style agreement: over patterns and events generated from a fixed-seed RNG, the compiled
//! `Matcher` (from a `serde_json::Value` and from raw bytes) finds exactly the rules whose
//! `Pattern::matches` says yes — also after rules are removed and replaced.

use opsloop_eventpattern::{parse, Matcher, Pattern};
use serde_json::{json, Value};

/// xorshift64*: small, deterministic, ours.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}

const NAMES: &[&str] = &["a", "b", "c", "d"];
const STRS: &[&str] = &[
    "x",
    "xy",
    "Xy",
    "yx",
    "xyz",
    "10.0.0.1",
    "10.0.0.200",
    "ü",
    "Ü",
    "",
    "a*b",
    "2001:db8::1",
];
const NUMS: &[&str] = &[
    "0",
    "1",
    "1.5",
    "300",
    "3e2",
    "-2",
    "5000000001",
    "0.000001",
];

fn gen_scalar(r: &mut Rng) -> Value {
    match r.below(6) {
        0 | 1 => json!(r.pick(STRS)),
        2 | 3 => serde_json::from_str(r.pick(NUMS)).unwrap(),
        4 => json!(r.chance(50)),
        _ => Value::Null,
    }
}

fn gen_event(r: &mut Rng, depth: usize) -> Value {
    gen_event_with(r, depth, true)
}

/// An event; without `obj_arrays` no array holds an object (the matcher's counted fast path).
fn gen_event_with(r: &mut Rng, depth: usize, obj_arrays: bool) -> Value {
    let mut m = serde_json::Map::new();
    for name in NAMES {
        if r.chance(40) {
            continue;
        }
        let v = match r.below(if depth < 2 { 6 } else { 3 }) {
            0 | 1 => gen_scalar(r),
            2 => Value::Array((0..r.below(4)).map(|_| gen_scalar(r)).collect()),
            3 | 4 => gen_event_with(r, depth + 1, obj_arrays),
            _ if !obj_arrays => gen_event_with(r, depth + 1, obj_arrays),
            _ => Value::Array(
                (0..r.below(3))
                    .map(|_| gen_event_with(r, depth + 1, obj_arrays))
                    .collect(),
            ),
        };
        m.insert(name.to_string(), v);
    }
    Value::Object(m)
}

fn gen_cond(r: &mut Rng) -> String {
    let q = |x: &str| serde_json::to_string(x).unwrap();
    match r.below(16) {
        0 | 1 => q(r.pick(STRS)),
        2 => r.pick(NUMS).to_string(),
        3 => r.pick(&["true", "false", "null"]).to_string(),
        4 => format!(
            r#"{{"prefix": {}}}"#,
            q(r.pick(&["x", "X", "1", "10.0.", "ü", ""]))
        ),
        5 => format!(r#"{{"suffix": {}}}"#, q(r.pick(&["y", "z", "x", "1"]))),
        6 => format!(
            r#"{{"equals-ignore-case": {}}}"#,
            q(r.pick(&["xy", "XY", "ü", "Ü"]))
        ),
        7 => format!(
            r#"{{"prefix": {{"equals-ignore-case": {}}}}}"#,
            q(r.pick(&["X", "ü", "1"]))
        ),
        8 => format!(
            r#"{{"wildcard": {}}}"#,
            q(r.pick(&["x*", "*y", "x*z", "*", "1*.*", "a\\*b"]))
        ),
        9 => format!(
            r#"{{"anything-but": {}}}"#,
            r.pick(&[r#"["x", "xy"]"#, "1", r#""x""#, "[300, 0]"])
        ),
        10 => format!(
            r#"{{"anything-but": {{"prefix": {}}}}}"#,
            q(r.pick(&["x", "1"]))
        ),
        11 => format!(
            r#"{{"numeric": {}}}"#,
            r.pick(&[
                r#"[">", 0]"#,
                r#"["<=", 1.5]"#,
                r#"["=", 300]"#,
                r#"[">=", -2, "<", 1]"#
            ])
        ),
        12 => format!(r#"{{"exists": {}}}"#, r.chance(50)),
        13 => format!(
            r#"{{"cidr": {}}}"#,
            q(r.pick(&["10.0.0.0/24", "10.0.0.128/25", "2001:db8::/32"]))
        ),
        14 => format!(
            r#"{{"anything-but": {{"equals-ignore-case": {}}}}}"#,
            q(r.pick(&["XY", "x"]))
        ),
        _ => format!(
            r#"{{"suffix": {{"equals-ignore-case": {}}}}}"#,
            q(r.pick(&["Y", "Ü"]))
        ),
    }
}

fn gen_object(r: &mut Rng, depth: usize) -> String {
    let mut fields = Vec::new();
    let n = 1 + r.below(3);
    for _ in 0..n {
        let name = r.pick(NAMES);
        let body = if depth < 2 && r.chance(30) {
            gen_object(r, depth + 1)
        } else {
            let conds: Vec<String> = (0..1 + r.below(3)).map(|_| gen_cond(r)).collect();
            format!("[{}]", conds.join(", "))
        };
        fields.push(format!("\"{name}\": {body}"));
    }
    if r.chance(15) {
        fields.push(format!(
            r#""$or": [{}, {}]"#,
            gen_object(r, depth + 1),
            gen_object(r, depth + 1)
        ));
    }
    format!("{{{}}}", fields.join(", "))
}

fn check(m: &Matcher<usize>, rules: &[Option<Pattern>], events: &[Value]) {
    for ev in events {
        let want: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.matches(ev)))
            .map(|(i, _)| i)
            .collect();
        let mut got = m.matches(ev);
        got.sort_unstable();
        assert_eq!(got, want, "Matcher::matches on {ev}");
        for text in layouts(ev) {
            let mut raw = m.matches_json(text.as_bytes());
            raw.sort_unstable();
            assert_eq!(raw, want, "Matcher::matches_json on {text}");
        }
    }
}

/// The event as raw text in several layouts the scanner must read alike: compact, with a space
/// after each `,` and `:` (as Python writes JSON), pretty-printed, and — for an object — led by
/// a long member no pattern names (escapes, brackets in strings, a nested array), so the members
/// after it fall across the scanner's 64-byte blocks.
fn layouts(ev: &Value) -> Vec<String> {
    fn spaced(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push_str(": ");
                    spaced(x, out);
                }
                out.push('}');
            }
            Value::Array(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    spaced(x, out);
                }
                out.push(']');
            }
            _ => out.push_str(&v.to_string()),
        }
    }
    let mut out = vec![ev.to_string(), serde_json::to_string_pretty(ev).unwrap()];
    let mut s = String::new();
    spaced(ev, &mut s);
    out.push(s);
    if let Value::Object(m) = ev {
        let mut padded = serde_json::Map::new();
        padded.insert(
            "_pad".into(),
            json!([
                "a quote \" and a backslash \\ and brackets ] } [ { in a string",
                {"k": [1.5, -2e3, true, null, "}]"]},
                "x".repeat(70)
            ]),
        );
        padded.insert("_s".into(), json!("y".repeat(61)));
        for (k, v) in m {
            padded.insert(k.clone(), v.clone());
        }
        let padded = Value::Object(padded);
        out.push(padded.to_string());
        let mut s = String::new();
        spaced(&padded, &mut s);
        out.push(s);
    }
    out
}

#[test]
fn matcher_agrees_with_pattern_matches() {
    let mut r = Rng(0x5eed_cafe_f00d_1234);
    let mut texts = Vec::new();
    let mut rules: Vec<Option<Pattern>> = Vec::new();
    while rules.len() < 400 {
        let t = gen_object(&mut r, 0);
        if let Ok(p) = parse(&t) {
            texts.push(t);
            rules.push(Some(p));
        }
    }
    let mut events: Vec<Value> = (0..400).map(|_| gen_event(&mut r, 0)).collect();
    // Events with no object inside an array, where multi-field rules are decided by clause counts.
    events.extend((0..400).map(|_| gen_event_with(&mut r, 0, false)));
    let mut m = Matcher::new();
    for (i, p) in rules.iter().enumerate() {
        m.add(i, p.as_ref().unwrap());
    }
    // The generated cases must exercise both outcomes plenty.
    let hits: usize = events.iter().map(|e| m.matches(e).len()).sum();
    assert!(hits > 4_000 && hits < 800 * 400 / 2, "hits {hits}");
    check(&m, &rules, &events);

    // Remove every third rule and replace every fifth with another pattern.
    for i in (0..rules.len()).step_by(3) {
        assert!(m.remove(&i));
        assert!(!m.remove(&i));
        rules[i] = None;
    }
    for i in (1..rules.len()).step_by(5) {
        let p = loop {
            if let Ok(p) = parse(&gen_object(&mut r, 0)) {
                break p;
            }
        };
        m.add(i, &p);
        rules[i] = Some(p);
    }
    assert_eq!(m.len(), rules.iter().filter(|p| p.is_some()).count());
    check(&m, &rules, &events);
}

#[test]
fn invalid_json_events_match_nothing() {
    let mut m = Matcher::new();
    m.add(1, &parse(r#"{"a": [{"exists": false}]}"#).unwrap());
    assert_eq!(m.matches_json(b"{}"), vec![1]);
    // Malformed before the last mentioned member (what follows it is not read).
    for bad in [
        &b"{"[..],
        b"",
        b"{\"b\":1,}",
        b"{} {}",
        b"[1",
        b"{\"b\": [1}",
        b"{\"a\" 1}",
    ] {
        assert!(m.matches_json(bad).is_empty());
    }
}

/// Numbers in raw event text that lie within a rounding error of a pattern's bounds or exact
/// values: `matches_json` (which compares by approximation where that is safe) must agree with
/// `Pattern::matches` on the correctly rounded double of the same text.
#[test]
fn numbers_near_bounds_agree_with_the_exact_double() {
    let patterns = [
        r#"{"a": [{"numeric": ["<", 1.5]}]}"#,
        r#"{"a": [{"numeric": ["<=", 1.5]}]}"#,
        r#"{"a": [{"numeric": [">", 1.5]}]}"#,
        r#"{"a": [{"numeric": [">", -122.3601, "<=", -122.36]}]}"#,
        r#"{"a": [{"numeric": [">=", 37.8099]}]}"#,
        r#"{"a": [{"numeric": ["=", 300]}]}"#,
        r#"{"a": [{"numeric": [">", 0]}]}"#,
        r#"{"a": [{"numeric": [">=", -5000000000]}]}"#,
        r#"{"a": [{"numeric": ["<=", 5000000000]}]}"#,
        r#"{"a": [1.5]}"#,
        r#"{"a": [300]}"#,
        r#"{"a": [0]}"#,
        r#"{"a": [37.80780792169409]}"#,
        r#"{"a": [{"anything-but": [300]}]}"#,
        r#"{"a": [300], "b": ["x"]}"#,
        r#"{"b": ["x"], "a": [{"numeric": ["<", 1.5]}]}"#,
    ];
    let texts = [
        "1.5",
        "1.4999999999999999",
        "1.49999999999999",
        "1.5000000000000001",
        "1.5000000000000002",
        "0.15e1",
        "15e-1",
        "-122.36",
        "-122.36000000000001",
        "-122.35999999999999",
        "-122.3601",
        "-122.36010000000001",
        "37.8099",
        "37.80989999999999",
        "37.809899999999999",
        "37.80780792169409",
        "37.807807921694090000001",
        "300",
        "300.0",
        "3e2",
        "299.99999999999997",
        "300.00000000000006",
        "2999999999999999999999e-19",
        "0",
        "-0",
        "0.0",
        "1e-320",
        "5000000000",
        "5000000000.000001",
        "5000000000.0000000001",
        "-5000000000.0000000001",
        "123456789012345678901234567890",
    ];
    let mut m = Matcher::new();
    let rules: Vec<Pattern> = patterns.iter().map(|p| parse(p).unwrap()).collect();
    for (i, p) in rules.iter().enumerate() {
        m.add(i, p);
    }
    let mut hits = 0;
    for t in texts {
        let x: f64 = t.parse().unwrap();
        for b in [false, true] {
            let raw = if b {
                format!(r#"{{"b": "x", "a": {t}}}"#)
            } else {
                format!(r#"{{"a": [2, {t}]}}"#)
            };
            let value = if b {
                json!({"b": "x", "a": x})
            } else {
                json!({"a": [2, x]})
            };
            let want: Vec<usize> = rules
                .iter()
                .enumerate()
                .filter(|(_, p)| x.is_finite() && p.matches(&value))
                .map(|(i, _)| i)
                .collect();
            let mut got = m.matches_json(raw.as_bytes());
            got.sort_unstable();
            assert_eq!(got, want, "matches_json on {raw}");
            hits += got.len();
        }
    }
    assert!(hits > 100, "hits {hits}");
}
