use ciborium::Value as C;
use opsloop_core::ValidationFailure;
use serde_json::json;

use super::*;

const SINK: &str = include_str!("../../tests/fixtures/sink-model.json");

fn sink() -> Model {
    Model::parse(SINK).expect("sink model")
}

fn to_bytes(v: &C) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("cbor encodes");
    out
}

fn text(s: &str) -> C {
    C::Text(s.to_string())
}

fn map(entries: Vec<(&str, C)>) -> C {
    C::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

fn echo(bytes: &[u8]) -> Result<Value, DecodeError> {
    let m = sink();
    decode(&m, m.operation("Echo").expect("Echo"), bytes)
}

#[test]
fn decodes_every_type() {
    let input = map(vec![
        ("Name", text("n")),
        ("Count", C::Integer(7.into())),
        ("Big", C::Integer((-9_007_199_254_740_993i64).into())),
        ("Ratio", C::Float(2.5)),
        ("Small", C::Integer(3.into())),
        ("Flag", C::Bool(true)),
        (
            "When",
            C::Tag(1, Box::new(C::Integer(1_767_323_045.into()))),
        ),
        ("Data", C::Bytes(b"hi".to_vec())),
        (
            "Matrix",
            C::Array(vec![C::Array(vec![C::Float(1.0)]), C::Array(vec![])]),
        ),
        (
            "Tags",
            map(vec![(
                "k",
                map(vec![
                    ("Id", text("x")),
                    ("At", C::Tag(1, Box::new(C::Float(1.5)))),
                ]),
            )]),
        ),
        ("Items", C::Array(vec![map(vec![("Id", text("i"))])])),
        ("Flat", C::Array(vec![text("f")])),
        ("Renamed", text("r")),
        (
            "Nested",
            map(vec![("Inner", map(vec![("Leaf", text("deep"))]))]),
        ),
        (
            "Doc",
            map(vec![(
                "free",
                C::Array(vec![C::Integer(1.into()), C::Null, C::Bytes(vec![0xff])]),
            )]),
        ),
        ("Unknown", map(vec![("x", C::Array(vec![C::Null]))])),
        ("Count2", C::Null),
    ]);
    let doc = echo(&to_bytes(&input)).expect("decodes");
    assert_eq!(
        doc,
        json!({"Name":"n","Count":7,"Big":-9_007_199_254_740_993i64,"Ratio":2.5,"Small":3,"Flag":true,"When":1767323045,
            "Data":"aGk=","Matrix":[[1.0],[]],"Tags":{"k":{"Id":"x","At":1.5}},"Items":[{"Id":"i"}],"Flat":["f"],
            "Renamed":"r","Nested":{"Inner":{"Leaf":"deep"}},"Doc":{"free":[1,null,"/w=="]}})
    );
}

#[test]
fn accepts_indefinite_lengths_and_half_floats() {
    // {_ "Name": (_ "a", "b"), "Matrix": [_ [_ half 1.5, half -inf]], "Data": (_ h'01', h'02') }
    let mut b = vec![0xbf];
    b.extend([0x64]);
    b.extend(b"Name");
    b.extend([0x7f, 0x61, b'a', 0x61, b'b', 0xff]);
    b.extend([0x66]);
    b.extend(b"Matrix");
    b.extend([0x9f, 0x9f, 0xf9, 0x3e, 0x00, 0xf9, 0xfc, 0x00, 0xff, 0xff]);
    b.extend([0x64]);
    b.extend(b"Data");
    b.extend([0x5f, 0x41, 0x01, 0x41, 0x02, 0xff]);
    b.push(0xff);
    assert_eq!(
        echo(&b),
        Ok(json!({"Name":"ab","Matrix":[[1.5,"-Infinity"]],"Data":"AQI="}))
    );
}

#[test]
fn empty_body_is_empty_input() {
    assert_eq!(echo(b""), Ok(json!({})));
}

#[test]
fn type_mismatches_report_paths() {
    let cases = vec![
        (map(vec![("Name", C::Integer(1.into()))]), "Name"),
        (
            map(vec![("Count", C::Integer(2_147_483_648i64.into()))]),
            "Count",
        ),
        (map(vec![("Count", C::Float(1.5))]), "Count"),
        (map(vec![("Flag", text("true"))]), "Flag"),
        (map(vec![("Data", text("aGk="))]), "Data"),
        (map(vec![("When", text("2026-01-01"))]), "When"),
        (
            map(vec![(
                "Items",
                C::Array(vec![map(vec![("Id", C::Bool(true))])]),
            )]),
            "Items.member.1.Id",
        ),
        (
            map(vec![("Items", C::Array(vec![C::Null]))]),
            "Items.member.1",
        ),
        (
            map(vec![(
                "Matrix",
                C::Array(vec![C::Array(vec![C::Float(1.0), text("x")])]),
            )]),
            "Matrix.member.1.member.2",
        ),
        (
            map(vec![("Tags", map(vec![("k", C::Integer(1.into()))]))]),
            "Tags.k",
        ),
    ];
    for (input, path) in cases {
        let err = echo(&to_bytes(&input)).expect_err(path);
        assert!(
            matches!(&err, DecodeError::Invalid(ValidationFailure::Invalid { path: p, .. }) if p == path),
            "{path}: {err:?}"
        );
    }
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    let huge_len = [
        0xa1, 0x64, b'N', b'a', b'm', b'e', 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    let huge_array = [
        0xa1, 0x65, b'I', b't', b'e', b'm', b's', 0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff,
    ];
    let cases: Vec<&[u8]> = vec![
        &[0x01],                         // not a map
        &[0xa1],                         // truncated map
        &[0xa1, 0x01, 0x01],             // non-text key
        &[0xa0, 0x00],                   // trailing bytes
        &[0xa1, 0x64, b'N', b'a', b'm'], // truncated key
        &huge_len,
        &huge_array,
        &[0xa1, 0x64, b'N', b'a', b'm', b'e', 0x62, 0xff, 0xfe], // invalid UTF-8
        &[0xa1, 0x64, b'N', b'a', b'm', b'e', 0x1c],             // reserved additional info
        &[0xbf, 0xff, 0xff],                                     // stray break
        &[0xff],
    ];
    for bytes in cases {
        assert!(
            matches!(echo(bytes), Err(DecodeError::Malformed(_))),
            "{bytes:02x?} -> {:?}",
            echo(bytes)
        );
    }
    // Deep nesting inside an unknown member and inside a document.
    for member in [&b"Zzz"[..], &b"Doc"[..]] {
        let mut deep = vec![0xa1, 0x60 | member.len() as u8];
        deep.extend(member);
        deep.extend(std::iter::repeat_n(0x81, 100_000));
        deep.push(0x00);
        assert!(matches!(echo(&deep), Err(DecodeError::Malformed(_))));
    }
}

#[test]
fn encode_round_trips_and_uses_native_types() {
    let m = sink();
    let op = m.operation("Echo").expect("Echo");
    let doc = json!({"Name":"n","Count":-7,"Big":1i64 << 40,"Ratio":2.5,"Small":0.5,"Flag":false,"When":1767323045,
        "Data":"aGk=","Matrix":[[1.0],[2.0,"NaN"]],"Tags":{"k":{"Id":"x","At":1.25}},"Items":[{"Id":"a"}],"Flat":["x"],
        "Renamed":"r","Nested":{"Inner":{"Leaf":"l"}},"Doc":{"any":[1,"two",null]}});
    let bytes = encode_output(&m, op, &doc);
    assert_eq!(decode(&m, op, &bytes), Ok(doc));

    // Check native encodings with an independent decoder.
    let v: C = ciborium::from_reader(&bytes[..]).expect("valid cbor");
    let get = |k: &str| {
        v.as_map()
            .and_then(|m| m.iter().find(|(a, _)| a.as_text() == Some(k)))
            .map(|(_, b)| b.clone())
    };
    assert_eq!(
        get("When"),
        Some(C::Tag(1, Box::new(C::Integer(1_767_323_045.into()))))
    );
    assert_eq!(get("Data"), Some(C::Bytes(b"hi".to_vec())));
    assert_eq!(get("Ratio"), Some(C::Float(2.5)));
    assert_eq!(get("Renamed"), Some(text("r")), "CBOR uses member names");
}

#[test]
fn encode_skips_unknown_members_and_nulls() {
    let m = sink();
    let op = m.operation("Echo").expect("Echo");
    let bytes = encode_output(
        &m,
        op,
        &json!({"Name":"n","Secret":1,"Count":null,"Flag":"not a bool"}),
    );
    let v: C = ciborium::from_reader(&bytes[..]).expect("valid cbor");
    assert_eq!(v, map(vec![("Name", text("n")), ("Flag", C::Null)]));
    assert!(encode_output(&m, m.operation("Ping").expect("Ping"), &json!({})).is_empty());
}

#[test]
fn text_map_for_errors() {
    let bytes = encode_text_map(&[("__type", "X"), ("message", "m")]);
    let v: C = ciborium::from_reader(&bytes[..]).expect("valid cbor");
    assert_eq!(v, map(vec![("__type", text("X")), ("message", text("m"))]));
}

#[test]
fn half_floats_widen_exactly() {
    assert_eq!(half_to_f64(0x3c00), 1.0);
    assert_eq!(half_to_f64(0xc000), -2.0);
    assert_eq!(half_to_f64(0x7bff), 65504.0);
    assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
    assert_eq!(half_to_f64(0x8000), 0.0);
    assert!(half_to_f64(0x8000).is_sign_negative());
    assert_eq!(half_to_f64(0x7c00), f64::INFINITY);
    assert!(half_to_f64(0x7e00).is_nan());
    // Every finite half value matches the textbook formula.
    for h in 0u16..=0xffff {
        let (sign, exp, mant) = (
            if h & 0x8000 != 0 { -1.0 } else { 1.0 },
            i32::from((h >> 10) & 0x1f),
            f64::from(h & 0x3ff),
        );
        let expected = match exp {
            0 => sign * mant * 2f64.powi(-24),
            31 => continue,
            e => sign * (1.0 + mant / 1024.0) * 2f64.powi(e - 15),
        };
        assert_eq!(half_to_f64(h), expected, "{h:04x}");
    }
}

#[test]
fn number_lists_take_every_encoding() {
    // {"Matrix": [[0, 23, uint8 200, half 1.5, single 2.5, double 3.25, double NaN, -1,
    //   tag 1 (7), uint16 1000, null]]}
    let mut b = vec![0xa1, 0x66];
    b.extend(b"Matrix");
    b.extend([0x81, 0x8b, 0x00, 0x17, 0x18, 200, 0xf9, 0x3e, 0x00]);
    b.push(0xfa);
    b.extend(2.5f32.to_be_bytes());
    b.push(0xfb);
    b.extend(3.25f64.to_be_bytes());
    b.push(0xfb);
    b.extend(f64::NAN.to_be_bytes());
    b.extend([0x20, 0xc1, 0x07, 0x19, 0x03, 0xe8, 0xf6]);
    let err = echo(&b).expect_err("null member");
    assert!(
        matches!(&err, DecodeError::Invalid(ValidationFailure::Invalid { path: p, .. }) if p == "Matrix.member.1.member.11"),
        "{err:?}"
    );
    // The same without the trailing null.
    let n = b.len();
    b[9] = 0x8a;
    b.truncate(n - 1);
    assert_eq!(
        echo(&b),
        Ok(json!({"Matrix": [[0, 23, 200, 1.5, 2.5, 3.25, "NaN", -1, 7, 1000]]}))
    );
    // Truncated inside a double: malformed, not a panic.
    let mut short = vec![0xa1, 0x66];
    short.extend(b"Matrix");
    short.extend([0x81, 0x81, 0xfb, 0x40]);
    assert!(matches!(echo(&short), Err(DecodeError::Malformed(_))));
}
