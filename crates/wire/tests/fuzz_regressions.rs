//! Fuzz corpora as regression tests: every seed under `fuzz/seeds/<target>/` and every minimized
//! fuzzer finding under `tests/fixtures/fuzz/<target>/` runs through the same harness the fuzz
//! targets use (`fuzz/src/wire.rs`, included below), so `cargo test` keeps them from coming back.
//!
//! Seeds are realistic inputs (botocore-captured requests, botocore-signed SigV4 vectors and valid
//! hand-written CloudWatch inputs, see `fuzz/seeds/generate.py`), so beyond "does not panic" they
//! must decode, validate and verify.

#[path = "../../../fuzz/src/wire.rs"]
mod harness;

use std::fs;
use std::path::{Path, PathBuf};

use harness::BodyProtocol;
use opsloop_wire::codec::DecodeError;
use opsloop_wire::sigv4::{self, SigV4Error};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `(file name, contents)` of every file in `dir`, sorted; empty when `dir` does not exist.
fn files(dir: PathBuf) -> Vec<(String, Vec<u8>)> {
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

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = manifest_dir().join("../../fuzz/seeds").join(target);
    let out = files(dir.clone());
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// Stored inputs of a target: minimized fuzzer findings and hand-made hostile inputs.
fn stored(target: &str) -> Vec<(String, Vec<u8>)> {
    files(manifest_dir().join("tests/fixtures/fuzz").join(target))
}

fn finding(target: &str, name: &str) -> Vec<u8> {
    let path = manifest_dir()
        .join("tests/fixtures/fuzz")
        .join(target)
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every seed of a body target names its operation (`<Operation>.<what>`), which the selector byte
/// must pick, and decodes and validates.
fn body_seeds_decode_and_validate(protocol: BodyProtocol) {
    let seeds = seeds(protocol.target());
    for (name, data) in &seeds {
        let expected_op = name.split('.').next().expect("operation prefix");
        assert_eq!(
            harness::selector_of(expected_op),
            Some(data[0]),
            "{name}: selector byte"
        );
        let d = harness::decode_body(protocol, data).expect("non-empty seed");
        assert_eq!(d.operation, expected_op, "{name}");
        let doc = d
            .result
            .unwrap_or_else(|e| panic!("{} seed {name} does not decode: {e:?}", protocol.target()));
        assert!(doc.is_object(), "{name}: {doc}");
        assert_eq!(d.validation, Some(Ok(())), "{name}: validation");
    }
    for op in ["PutMetricData", "GetMetricData"] {
        assert!(
            seeds.iter().any(|(n, _)| n.starts_with(&format!("{op}."))),
            "{} seeds cover {op}",
            protocol.target()
        );
    }
}

/// Replay every stored input of a body target (fuzzer findings and hand-made hostile inputs): the
/// harness call returning is the "does not panic" assertion; each must also get a decode result.
fn body_stored_inputs_do_not_panic(protocol: BodyProtocol) {
    let stored = stored(protocol.target());
    assert!(
        !stored.is_empty(),
        "no stored inputs for {}",
        protocol.target()
    );
    for (name, data) in &stored {
        assert!(
            harness::decode_body(protocol, data).is_some(),
            "{name}: empty stored input"
        );
    }
}

#[test]
fn json_decode_seeds_decode_and_validate() {
    body_seeds_decode_and_validate(BodyProtocol::Json);
}

#[test]
fn cbor_decode_seeds_decode_and_validate() {
    body_seeds_decode_and_validate(BodyProtocol::Cbor);
}

#[test]
fn query_decode_seeds_decode_and_validate() {
    body_seeds_decode_and_validate(BodyProtocol::Query);
}

#[test]
fn json_decode_stored_inputs_do_not_panic() {
    body_stored_inputs_do_not_panic(BodyProtocol::Json);
}

#[test]
fn cbor_decode_stored_inputs_do_not_panic() {
    body_stored_inputs_do_not_panic(BodyProtocol::Cbor);
}

#[test]
fn query_decode_stored_inputs_do_not_panic() {
    body_stored_inputs_do_not_panic(BodyProtocol::Query);
}

#[test]
fn body_selector_wraps_over_every_operation() {
    let names = harness::operation_names();
    let n = names.len();
    assert!(n > 1 && n < 256, "{n} operations");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "selector order is by name");
    for b in 0..=u8::MAX {
        assert_eq!(
            harness::operation_for(b).name,
            names[usize::from(b) % n],
            "selector {b}"
        );
    }
    assert_eq!(
        harness::decode_body(BodyProtocol::Json, b"").map(|_| ()),
        None
    );
}

#[test]
fn body_harness_reports_malformed_bodies() {
    let op = harness::selector_of("PutMetricData").expect("PutMetricData selector");
    let json = harness::decode_body(BodyProtocol::Json, &[op, b'[']).expect("decoded");
    assert!(
        matches!(json.result, Err(DecodeError::Malformed(_))),
        "{json:?}"
    );
    let cbor = harness::decode_body(BodyProtocol::Cbor, &[op, 0x81, 0x01]).expect("decoded");
    assert!(
        matches!(cbor.result, Err(DecodeError::Malformed(_))),
        "{cbor:?}"
    );
    let query =
        harness::decode_body(BodyProtocol::Query, &[op, b'a', b'=', 0xff]).expect("decoded");
    assert!(
        matches!(query.result, Err(DecodeError::Malformed(_))),
        "{query:?}"
    );
}

#[test]
fn sigv4_parse_vector_seeds_verify() {
    let seeds = seeds("sigv4_parse");
    let vectors: Vec<_> = seeds
        .iter()
        .filter(|(n, _)| n.starts_with("vector."))
        .collect();
    assert!(vectors.len() >= 20, "{} vector seeds", vectors.len());
    for (name, data) in vectors {
        let out = harness::sigv4_input(data);
        let scope = out
            .verify
            .unwrap_or_else(|e| panic!("{name} does not verify: {e:?}"));
        assert_eq!(scope.access_key_id, harness::ACCESS_KEY_ID, "{name}");
        assert_eq!(
            out.scope,
            Some(Ok(scope)),
            "{name}: parse_scope agrees with verify"
        );
    }
}

#[test]
fn sigv4_parse_capture_seeds_parse_but_were_signed_with_another_secret() {
    let seeds = seeds("sigv4_parse");
    let captures: Vec<_> = seeds
        .iter()
        .filter(|(n, _)| n.starts_with("capture."))
        .collect();
    assert!(!captures.is_empty());
    for (name, data) in captures {
        let out = harness::sigv4_input(data);
        let scope = match out.scope {
            Some(Ok(scope)) => scope,
            other => panic!("{name}: parse_scope {other:?}"),
        };
        assert_eq!(scope.access_key_id, "AKIDEXAMPLE", "{name}");
        assert_eq!(scope.service, "monitoring", "{name}");
        // botocore signed these with the secret "secret", not the harness's.
        assert!(
            matches!(out.verify, Err(SigV4Error::Mismatch(_))),
            "{name}: {:?}",
            out.verify
        );
    }
}

#[test]
fn sigv4_parse_authorization_string_seeds_parse() {
    let seeds = seeds("sigv4_parse");
    let strings: Vec<_> = seeds
        .iter()
        .filter(|(n, _)| n.starts_with("string."))
        .collect();
    assert!(!strings.is_empty());
    for (name, data) in strings {
        let text = std::str::from_utf8(data).expect("utf-8 seed");
        let auth = sigv4::parse_authorization(text)
            .unwrap_or_else(|e| panic!("{name}: parse_authorization {e:?}"));
        let cred = sigv4::parse_credential(auth.credential)
            .unwrap_or_else(|e| panic!("{name}: parse_credential {e:?}"));
        assert_eq!(cred.terminator, "aws4_request", "{name}");
        // Harness run too: a bare header value is a request line, not a request; no panic.
        let out = harness::sigv4_input(data);
        assert!(
            matches!(out.verify, Err(SigV4Error::Missing(_))),
            "{name}: {:?}",
            out.verify
        );
    }
}

#[test]
fn sigv4_parse_stored_inputs_do_not_panic() {
    let stored = stored("sigv4_parse");
    assert!(!stored.is_empty());
    for (_, data) in stored {
        let _ = harness::sigv4_input(&data);
    }
}

#[test]
fn sigv4_harness_clock_follows_the_request_stamp() {
    use std::time::{Duration, UNIX_EPOCH};
    assert_eq!(
        harness::clock_for(b"X-Amz-Date: 20260102T030405Z"),
        UNIX_EPOCH + Duration::from_secs(1_767_323_045)
    );
    assert_eq!(
        harness::clock_for(b"20000229T235959Z"),
        UNIX_EPOCH + Duration::from_secs(951_868_799)
    );
    assert_eq!(
        harness::clock_for(b"no stamp"),
        UNIX_EPOCH + Duration::from_secs(harness::DEFAULT_NOW)
    );
}

// Hand-made hostile inputs (stored as `hostile-*`; fuzzer findings would be `crash-*`/`timeout-*`/
// `oom-*`): each must be refused with a decode error of the right kind, quickly and without
// allocating what a length prefix claims.

fn decode_finding(protocol: BodyProtocol, name: &str) -> harness::Decoded {
    harness::decode_body(protocol, &finding(protocol.target(), name)).expect("non-empty input")
}

#[test]
fn cbor_length_prefixes_beyond_the_body_are_malformed() {
    // 2^64-1 element array for MetricData, 2^64-1 pair top-level map, ~2^64 byte string, 2^20
    // element Values list: all claim more than the body holds.
    for name in [
        "hostile-huge_array",
        "hostile-huge_map",
        "hostile-huge_str",
        "hostile-values_big",
    ] {
        let d = decode_finding(BodyProtocol::Cbor, name);
        assert!(
            matches!(d.result, Err(DecodeError::Malformed(_))),
            "{name}: {d:?}"
        );
    }
}

#[test]
fn json_out_of_range_numbers_and_timestamps_are_rejected() {
    let d = decode_finding(BodyProtocol::Json, "hostile-bignum");
    assert!(matches!(d.result, Err(DecodeError::Malformed(_))), "{d:?}");
    // Year 99999 ISO-8601 / HTTP-date strings, f64::MAX and -9.2e18 epoch seconds.
    for name in ["hostile-ts", "hostile-ts2"] {
        let d = decode_finding(BodyProtocol::Json, name);
        match d.result {
            Err(DecodeError::Invalid(opsloop_core::ValidationFailure::Invalid {
                path, ..
            })) => {
                assert_eq!(path, "StartTime", "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn query_overflowing_list_index_and_timestamp_are_invalid() {
    for (name, at) in [
        (
            "hostile-huge_index",
            "MetricData.member.99999999999999999999",
        ),
        ("hostile-ts", "StartTime"),
    ] {
        let d = decode_finding(BodyProtocol::Query, name);
        match d.result {
            Err(DecodeError::Invalid(opsloop_core::ValidationFailure::Invalid {
                path, ..
            })) => {
                assert_eq!(path, at, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

fn cbor_text(k: &str) -> Vec<u8> {
    let mut v = vec![0x60 | u8::try_from(k.len()).expect("short key")];
    v.extend_from_slice(k.as_bytes());
    v
}

#[test]
fn deeply_nested_bodies_return_without_overflowing_the_stack() {
    let op = harness::selector_of("PutMetricData").expect("PutMetricData selector");
    let deep = 100_000;
    let decode = |p, body: Vec<u8>| {
        let mut data = vec![op];
        data.extend(body);
        harness::decode_body(p, &data).expect("decoded").result
    };

    // An unknown member holding 100k nested definite / indefinite arrays.
    for opener in [0x81u8, 0x9f] {
        let mut b = vec![0xa1];
        b.extend(cbor_text("Zzz"));
        b.extend(std::iter::repeat_n(opener, deep));
        b.push(0);
        let r = decode(BodyProtocol::Cbor, b);
        assert!(
            matches!(r, Err(DecodeError::Malformed(_))),
            "{opener:#x}: {r:?}"
        );
    }
    // A known list member nested instead of holding structures.
    let mut b = vec![0xa1];
    b.extend(cbor_text("MetricData"));
    b.extend(std::iter::repeat_n(0x81, deep));
    b.push(0);
    let r = decode(BodyProtocol::Cbor, b);
    assert!(matches!(r, Err(DecodeError::Invalid(_))), "{r:?}");
    // 100k tags (epoch-time tag 1) around the top-level map: skipped, the map decodes.
    let mut b = vec![0xc1; deep];
    b.push(0xa0);
    assert_eq!(decode(BodyProtocol::Cbor, b), Ok(serde_json::json!({})));

    let mut b = b"{\"Zzz\":".to_vec();
    b.extend(std::iter::repeat_n(b'[', deep));
    let r = decode(BodyProtocol::Json, b);
    assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");

    // 20k nested `Dimensions.member.1.` segments: the decoder bounds key nesting and refuses the
    // name as malformed instead of walking it.
    let mut b = b"MetricData.member.1.".to_vec();
    for _ in 0..20_000 {
        b.extend(b"Dimensions.member.1.");
    }
    b.extend(b"Name=x");
    let r = decode(BodyProtocol::Query, b);
    assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
    // A few levels of the same nesting stay within the bound: below the first level they name
    // nothing, so they are dropped.
    let mut b = b"MetricData.member.1.".to_vec();
    for _ in 0..3 {
        b.extend(b"Dimensions.member.1.");
    }
    b.extend(b"Name=x");
    assert_eq!(
        decode(BodyProtocol::Query, b),
        Ok(serde_json::json!({"MetricData": [{"Dimensions": [{}]}]}))
    );
}

#[test]
fn sigv4_hostile_dates_expiries_and_non_ascii_authorization_are_incomplete() {
    for name in [
        "hostile-date_extreme",
        "hostile-date_hdr",
        "hostile-presigned_big",
        "hostile-presigned_neg",
        "hostile-unicode_cred",
    ] {
        let out = harness::sigv4_input(&finding("sigv4_parse", name));
        assert!(
            matches!(out.scope, Some(Err(SigV4Error::Incomplete(_)))),
            "{name}: {:?}",
            out.scope
        );
        assert!(
            matches!(out.verify, Err(SigV4Error::Incomplete(_))),
            "{name}: {:?}",
            out.verify
        );
    }
}
