use opsloop_core::ValidationFailure;
use serde_json::json;

use super::*;

const SINK: &str = include_str!("../../tests/fixtures/sink-model.json");
const CLOUDWATCH: &str = include_str!("../../../../models/cloudwatch-2010-08-01.json");

fn sink() -> Model {
    Model::parse(SINK).expect("sink model")
}

fn echo(body: &str) -> Result<Value, DecodeError> {
    let m = sink();
    let op = m.operation("Echo").expect("Echo");
    decode(&m, op, body.as_bytes())
}

fn invalid(path: &str) -> impl Fn(&DecodeError) -> bool + '_ {
    move |e| matches!(e, DecodeError::Invalid(ValidationFailure::Invalid { path: p, .. }) if p == path)
}

#[test]
fn decodes_every_type() {
    let doc = echo(
        r#"{"Name":"n","Count":7,"Big":9007199254740993,"Ratio":2.5,"Small":1,"Flag":true,
            "When":1767323045,"Data":"aGk=","Color":"red","Matrix":[[1.0,2.0],[],[3.5]],
            "Tags":{"a":{"Id":"x","At":"2026-01-02T03:04:05.5Z"}},"Items":[{"Id":"i1"}],
            "Flat":["f1","f2"],"renamed":"r","Nested":{"Inner":{"Inner":{"Leaf":"deep"}}},
            "Doc":{"any":[1,{"thing":null}]}}"#,
    )
    .expect("decodes");
    assert_eq!(
        doc,
        json!({"Name":"n","Count":7,"Big":9007199254740993i64,"Ratio":2.5,"Small":1,"Flag":true,
            "When":1767323045,"Data":"aGk=","Color":"red","Matrix":[[1.0,2.0],[],[3.5]],
            "Tags":{"a":{"Id":"x","At":1767323045.5}},"Items":[{"Id":"i1"}],
            "Flat":["f1","f2"],"Renamed":"r","Nested":{"Inner":{"Inner":{"Leaf":"deep"}}},
            "Doc":{"any":[1,{"thing":null}]}})
    );
}

#[test]
fn drops_unknown_members_and_nulls() {
    let doc = echo(r#"{"Name":"n","Bogus":{"x":1},"Count":null,"Renamed":"wrong key","Items":[{"Id":"a","Extra":1}]}"#).expect("decodes");
    assert_eq!(doc, json!({"Name":"n","Items":[{"Id":"a"}]}));
}

#[test]
fn timestamps_accept_numbers_and_strings() {
    for (input, secs) in [
        ("1767323045", json!(1767323045)),
        ("1767323045.25", json!(1767323045.25)),
        ("\"2026-01-02T03:04:05Z\"", json!(1767323045)),
        ("\"Fri, 02 Jan 2026 03:04:05 GMT\"", json!(1767323045)),
    ] {
        let doc = echo(&format!(r#"{{"Name":"n","When":{input}}}"#)).expect(input);
        assert_eq!(doc["When"], secs, "{input}");
    }
    assert!(echo(r#"{"Name":"n","When":"last tuesday"}"#).is_err_and(|e| invalid("When")(&e)));
    assert!(echo(r#"{"Name":"n","When":true}"#).is_err_and(|e| invalid("When")(&e)));
    assert!(echo(r#"{"Name":"n","When":1e300}"#).is_err_and(|e| invalid("When")(&e)));
}

#[test]
fn type_mismatches_report_paths() {
    let cases = [
        (r#"{"Name":5}"#, "Name"),
        (r#"{"Name":"n","Count":"7"}"#, "Count"),
        (r#"{"Name":"n","Count":2147483648}"#, "Count"),
        (r#"{"Name":"n","Count":1.5}"#, "Count"),
        (r#"{"Name":"n","Big":1e30}"#, "Big"),
        (r#"{"Name":"n","Ratio":"fast"}"#, "Ratio"),
        (r#"{"Name":"n","Flag":"true"}"#, "Flag"),
        (r#"{"Name":"n","Data":"!!!"}"#, "Data"),
        (r#"{"Name":"n","Items":{"Id":"x"}}"#, "Items"),
        (
            r#"{"Name":"n","Items":[{"Id":"ok"},{"Id":3}]}"#,
            "Items.member.2.Id",
        ),
        (r#"{"Name":"n","Items":[null]}"#, "Items.member.1"),
        (
            r#"{"Name":"n","Matrix":[[1.0],["x"]]}"#,
            "Matrix.member.2.member.1",
        ),
        (r#"{"Name":"n","Tags":{"k":{"Id":[]}}}"#, "Tags.k.Id"),
        (
            r#"{"Name":"n","Nested":{"Inner":{"Leaf":false}}}"#,
            "Nested.Inner.Leaf",
        ),
    ];
    for (body, path) in cases {
        let err = echo(body).expect_err(body);
        assert!(invalid(path)(&err), "{body}: {err:?}");
    }
}

#[test]
fn non_finite_floats_travel_as_strings() {
    let doc = echo(r#"{"Name":"n","Ratio":"NaN","Small":"-Infinity","Matrix":[["Infinity"]]}"#)
        .expect("decodes");
    assert_eq!(doc["Ratio"], "NaN");
    assert_eq!(doc["Small"], "-Infinity");
    assert_eq!(doc["Matrix"][0][0], "Infinity");
    let m = sink();
    let out = encode_output(&m, m.operation("Echo").expect("Echo"), &doc);
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["Ratio"], "NaN");
}

#[test]
fn malformed_bodies() {
    for body in [
        "{",
        "[]",
        "null",
        "\"str\"",
        "{\"Name\":}",
        "{} {}",
        "\u{0}",
    ] {
        assert!(
            matches!(echo(body), Err(DecodeError::Malformed(_))),
            "{body:?}"
        );
    }
    // Deep nesting fails cleanly instead of overflowing the stack.
    let deep = format!(
        "{{\"Name\":\"n\",\"Doc\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(echo(&deep), Err(DecodeError::Malformed(_))));
    // Empty bodies are an empty input.
    assert_eq!(echo(""), Ok(json!({})));
    assert_eq!(echo("  \n"), Ok(json!({})));
}

#[test]
fn operations_without_input_ignore_the_body() {
    let m = sink();
    let op = m.operation("Ping").expect("Ping");
    assert_eq!(decode(&m, op, b"{\"x\":1}"), Ok(json!({})));
    assert_eq!(encode_output(&m, op, &json!({"x": 1})), b"{}");
}

#[test]
fn encode_round_trips() {
    let m = sink();
    let op = m.operation("Echo").expect("Echo");
    let doc = json!({"Name":"n \"q\" \u{1}","Count":7,"Big":-5,"Ratio":2.5,"Flag":false,"When":1767323045.5,"Data":"aGk=",
        "Matrix":[[1.0],[2.0,3.0]],"Tags":{"k":{"Id":"x","At":0}},"Items":[{"Id":"a"}],"Flat":["x"],
        "Renamed":"r","Nested":{"Inner":{"Leaf":"l"}},"Doc":{"free":["form",1]}});
    let bytes = encode_output(&m, op, &doc);
    let wire: Value = serde_json::from_slice(&bytes).expect("valid json");
    assert_eq!(wire["renamed"], "r", "locationName used on the wire");
    assert!(wire.get("Renamed").is_none());
    assert_eq!(decode(&m, op, &bytes), Ok(doc));
}

#[test]
fn encode_drops_unknown_and_nulls_marks_mismatches_null() {
    let m = sink();
    let op = m.operation("Echo").expect("Echo");
    let doc =
        json!({"Name":"n","Secret":"internal","Count":null,"Flag":"yes","Items":[{"Id":"a"},7]});
    let wire: Value = serde_json::from_slice(&encode_output(&m, op, &doc)).expect("valid json");
    assert_eq!(
        wire,
        json!({"Name":"n","Flag":null,"Items":[{"Id":"a"},null]})
    );
}

#[test]
fn timestamp_format_trait_is_honoured_on_output() {
    let json_model = r#"{"metadata":{"protocol":"json","endpointPrefix":"x","targetPrefix":"X"},
      "operations":{"Op":{"name":"Op","output":{"shape":"Out"}}},
      "shapes":{"Out":{"type":"structure","members":{"Iso":{"shape":"T","timestampFormat":"iso8601"},"Plain":{"shape":"T"}}},
        "T":{"type":"timestamp"}}}"#;
    let m = Model::parse(json_model).expect("model");
    let op = m.operation("Op").expect("Op");
    let out = encode_output(&m, op, &json!({"Iso": 1767323045, "Plain": 1767323045}));
    assert_eq!(
        std::str::from_utf8(&out).expect("utf8"),
        r#"{"Iso":"2026-01-02T03:04:05.000Z","Plain":1767323045}"#
    );
}

#[test]
fn cloudwatch_put_metric_data() {
    let m = Model::parse(CLOUDWATCH).expect("model");
    let op = m.operation("PutMetricData").expect("op");
    let body = br#"{"Namespace":"A","MetricData":[{"MetricName":"m","Values":[1.5,2],"Counts":[1,1],"Timestamp":1767323045}]}"#;
    let doc = decode(&m, op, body).expect("decodes");
    assert_eq!(
        doc,
        json!({"Namespace":"A","MetricData":[{"MetricName":"m","Values":[1.5,2],"Counts":[1,1],"Timestamp":1767323045}]})
    );
}
