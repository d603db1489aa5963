//! Fuzz corpora of the `math_parse` target as regression tests: every seed under
//! `fuzz/seeds/math_parse/` and every stored input under `tests/fixtures/fuzz/math_parse/` (minimized
//! fuzzer findings `crash-*`/`timeout-*`/`oom-*`, hand-made `hostile-*` inputs) runs through the
//! harness the fuzz target uses (`fuzz/src/math.rs`, included below).

#[path = "../../../fuzz/src/math.rs"]
mod harness;

use std::fs;
use std::path::Path;

use opsloop_cloudwatch::math;

/// `(file name, text)` of every file in a directory relative to this crate, sorted; empty when the
/// directory does not exist.
fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 file name")
                .to_string();
            let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (name, data)
        })
        .collect();
    out.sort();
    out
}

fn seeds(prefix: &str) -> Vec<(String, String)> {
    let out: Vec<(String, String)> = files("../../fuzz/seeds/math_parse")
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, d)| (n, String::from_utf8(d).expect("utf-8 seed")))
        .collect();
    assert!(!out.is_empty(), "no {prefix}* seeds");
    out
}

fn stored(name: &str) -> String {
    let (_, data) = files("tests/fixtures/fuzz/math_parse")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no stored input {name}"));
    String::from_utf8(data).expect("utf-8 input")
}

#[test]
fn math_parse_expression_seeds_parse_and_evaluate() {
    for (name, text) in seeds("expr.") {
        let out = harness::math_input(text.as_bytes()).expect("utf-8");
        let expr = out
            .parse
            .unwrap_or_else(|e| panic!("{name} `{text}` does not parse: {e}"));
        // The harness environment has no anomaly detection model; everything else evaluates
        // (to a scalar for the aggregating expressions, which `eval_result` then refuses).
        if !text.contains("ANOMALY_DETECTION_BAND") {
            math::eval(&expr, &harness::Env)
                .unwrap_or_else(|e| panic!("{name} `{text}` does not evaluate: {e}"));
        }
    }
}

#[test]
fn math_parse_search_seeds_parse_and_match() {
    let ec2 = harness::searchable();
    for (name, text) in seeds("search.") {
        let out = harness::math_input(text.as_bytes()).expect("utf-8");
        let q = out
            .search
            .unwrap_or_else(|e| panic!("{name} `{text}` does not parse: {e}"));
        // The EC2 metric (AWS/EC2, CPUUtilization, {InstanceId}) matches the queries naming it,
        // but not `{AWS/EC2} ...`: a schema lists the exact dimension names, here none.
        let expect_match = [
            "{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"",
            "Namespace=\"AWS/EC2\" InstanceId=i-0123456789abcdef0",
            "\"CPUUtilization\"",
        ]
        .contains(&text.as_str());
        assert_eq!(q.matches(&ec2), expect_match, "{name} `{text}`");
    }
}

#[test]
fn math_parse_stored_inputs_do_not_panic() {
    let stored = files("tests/fixtures/fuzz/math_parse");
    assert!(!stored.is_empty());
    for (name, data) in stored {
        assert!(harness::math_input(&data).is_some(), "{name}: not utf-8");
    }
}

#[test]
fn math_parse_rejects_nesting_beyond_the_cap() {
    let out = harness::math_input(stored("hostile-nesting_60").as_bytes()).expect("utf-8");
    assert!(out.parse.is_err(), "60 parentheses parsed");
    let ten = format!("{}m1{}", "(".repeat(10), ")".repeat(10));
    assert!(harness::math_input(ten.as_bytes())
        .expect("utf-8")
        .parse
        .is_ok());
    let unary = format!("{}m1", "-".repeat(20_000));
    assert!(harness::math_input(unary.as_bytes())
        .expect("utf-8")
        .parse
        .is_err());
}

#[test]
fn math_parse_out_of_range_arguments_are_evaluation_errors() {
    // SORT limit -1 / 1e300, SLICE bounds 1e20 / -5, TIME_SERIES(1e308), FILL(m1, 1e308), m1 ^ 1e308.
    for name in ["hostile-sort_limits", "hostile-huge_numbers"] {
        let out = harness::math_input(stored(name).as_bytes()).expect("utf-8");
        assert!(out.parse.is_ok(), "{name}: {:?}", out.parse);
        assert!(matches!(out.eval, Some(Err(_))), "{name}: {:?}", out.eval);
    }
}

#[test]
fn math_parse_long_flat_expressions_return() {
    // Left-deep operator chains and huge argument lists are not nesting; they must still come back
    // (no stack overflow in parse, eval or drop).
    let chain = vec!["m1"; 20_000].join(" + ");
    let out = harness::math_input(chain.as_bytes()).expect("utf-8");
    assert!(
        matches!(out.eval, Some(Ok(_))),
        "{:?}",
        out.eval.map(|r| r.map(|_| ()))
    );
    let args = format!("MAX({})", vec!["m1"; 20_000].join(","));
    assert!(harness::math_input(args.as_bytes())
        .expect("utf-8")
        .parse
        .is_err());
    let ors = vec!["a"; 20_000].join(" OR ");
    let out = harness::math_input(ors.as_bytes()).expect("utf-8");
    assert!(out.search.is_err(), "over-long search query accepted");
}
