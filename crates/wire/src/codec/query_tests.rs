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
    decode(&m, m.operation("Echo").expect("Echo"), body.as_bytes())
}

fn invalid_at(err: &DecodeError) -> Option<&str> {
    match err {
        DecodeError::Invalid(ValidationFailure::Invalid { path, .. }) => Some(path),
        _ => None,
    }
}

#[test]
fn parses_and_decodes_form_components() {
    let p = parse_form(b"Action=Echo&a=1+2&b=%26%3D%2B&empty=&novalue&&c=%C3%A9").expect("parses");
    let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    assert_eq!(
        pairs,
        vec![
            ("Action", "Echo"),
            ("a", "1 2"),
            ("b", "&=+"),
            ("empty", ""),
            ("novalue", ""),
            ("c", "é")
        ]
    );
    assert_eq!(param(&p, "Action"), Some("Echo"));
    assert!(matches!(
        parse_form(b"a=%FF"),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        parse_form(b"a=\xff"),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn decodes_every_type() {
    let body = "Action=Echo&Version=2020-01-01&Name=n&Count=7&Big=-9007199254740993&Ratio=2.5&Small=1&Flag=true\
        &When=2026-01-02T03%3A04%3A05.500Z&Data=aGk%3D&Color=red\
        &Matrix.member.1.member.1=1.0&Matrix.member.1.member.2=2&Matrix.member.2=&Matrix.member.3.member.1=NaN\
        &Tags.entry.1.key=a&Tags.entry.1.value.Id=x&Tags.entry.1.value.At=2026-01-02T03%3A04%3A05Z\
        &Items.member.1.Id=i1&Items.member.2.Id=i2&Entry.1=f1&Entry.2=f2\
        &renamed=r&Nested.Inner.Inner.Leaf=deep";
    // Flattened list keys use the member's locationName in place of the member name.
    let doc = echo(body).expect("decodes");
    assert_eq!(
        doc,
        json!({"Name":"n","Count":7,"Big":-9007199254740993i64,"Ratio":2.5,"Small":1.0,"Flag":true,
            "When":1767323045.5,"Data":"aGk=","Color":"red","Matrix":[[1.0,2.0],[],["NaN"]],
            "Tags":{"a":{"Id":"x","At":1767323045}},"Items":[{"Id":"i1"},{"Id":"i2"}],
            "Flat":["f1","f2"],"Renamed":"r","Nested":{"Inner":{"Inner":{"Leaf":"deep"}}}})
    );
}

#[test]
fn flattened_list_key_is_the_member_location_name() {
    // FlatList's member has locationName Entry, so the flattened key is `Entry.N`.
    let doc = echo("Name=n&Entry.1=a&Entry.2=b").expect("decodes");
    assert_eq!(doc, json!({"Name":"n","Flat":["a","b"]}));
}

#[test]
fn out_of_order_and_sparse_indexes_are_sorted() {
    let doc = echo("Name=n&Items.member.3.Id=c&Items.member.1.Id=a&Items.member.2.Id=b&Items.member.1.At=0&Items.member.10.Id=z")
        .expect("decodes");
    assert_eq!(
        doc["Items"],
        json!([{"Id":"a","At":0},{"Id":"b"},{"Id":"c"},{"Id":"z"}])
    );
}

#[test]
fn empty_lists_and_unknown_keys() {
    let doc = echo("Name=n&Items=&Bogus.member.1=x&Items2=1&Nested.Unknown=1").expect("decodes");
    assert_eq!(doc, json!({"Name":"n","Items":[]}));
}

#[test]
fn type_errors_carry_query_paths() {
    for (body, path) in [
        ("Count=seven", "Count"),
        ("Count=2147483648", "Count"),
        ("Count=1.5", "Count"),
        ("Flag=yes", "Flag"),
        ("Ratio=fast", "Ratio"),
        ("When=tuesday", "When"),
        ("Data=!!", "Data"),
        ("Items.member.2.At=never", "Items.member.2.At"),
        ("Items.member.x.Id=a", "Items.member.x"),
        ("Items.member.0.Id=a", "Items.member.0"),
        ("Items=notempty", "Items"),
        ("Nested=x", "Nested"),
        ("Matrix.member.1.member.1=z", "Matrix.member.1.member.1"),
    ] {
        let err = echo(body).expect_err(body);
        assert_eq!(invalid_at(&err), Some(path), "{body}: {err:?}");
    }
    let err = echo("Tags.entry.1.value.Id=x").expect_err("no key");
    assert_eq!(invalid_at(&err), Some("Tags.entry.1"));
}

#[test]
fn cloudwatch_put_metric_data_as_botocore_sends_it() {
    let m = Model::parse(CLOUDWATCH).expect("model");
    let op = m.operation("PutMetricData").expect("op");
    let body = "Action=PutMetricData&Version=2010-08-01&Namespace=App%2FWeb&MetricData.member.1.MetricName=Latency\
        &MetricData.member.1.Dimensions.member.1.Name=Host&MetricData.member.1.Dimensions.member.1.Value=a+%26+b\
        &MetricData.member.1.Timestamp=2026-01-02T03%3A04%3A05Z&MetricData.member.1.Value=12.5\
        &MetricData.member.1.Values.member.1=1.0&MetricData.member.1.StorageResolution=1&StrictEntityValidation=false";
    let doc = decode(&m, op, body.as_bytes()).expect("decodes");
    assert_eq!(
        doc,
        json!({"Namespace":"App/Web","MetricData":[{"MetricName":"Latency","Dimensions":[{"Name":"Host","Value":"a & b"}],
            "Timestamp":1767323045,"Value":12.5,"Values":[1.0],"StorageResolution":1}],"StrictEntityValidation":false})
    );
}

#[test]
fn many_pairs_decode_in_order() {
    let m = Model::parse(CLOUDWATCH).expect("model");
    let op = m.operation("PutMetricData").expect("op");
    let mut body = String::from("Action=PutMetricData&Namespace=N");
    for i in 1..=200 {
        body.push_str(&format!("&MetricData.member.{i}.MetricName=m{i}"));
        for j in 1..=50 {
            body.push_str(&format!("&MetricData.member.{i}.Values.member.{j}={j}.5"));
        }
    }
    let doc = decode(&m, op, body.as_bytes()).expect("decodes");
    let data = doc["MetricData"].as_array().expect("array");
    assert_eq!(data.len(), 200);
    assert_eq!(data[199]["MetricName"], "m200");
    assert_eq!(data[199]["Values"].as_array().map(Vec::len), Some(50));
    assert_eq!(data[0]["Values"][49], 50.5);
}

#[test]
fn xml_output_uses_wrapper_members_and_iso_timestamps() {
    let m = sink();
    let op = m.operation("Echo").expect("Echo");
    let doc = json!({"Name":"<n&>","Count":7,"Flag":true,"When":1767323045.5,"Ratio":"Infinity","Matrix":[[1.5],[]],
        "Tags":{"k":{"Id":"x"}},"Items":[{"Id":"a"},{"Id":"b"}],"Flat":["f1","f2"],"Renamed":"r","Secret":"s","Data":"aGk="});
    let xml = encode_output(&m, op, &doc, "req-1");
    let expected = [
        r#"<EchoResponse xmlns="http://sink.example/doc/2020-01-01/"><EchoResult>"#,
        "<Name>&lt;n&amp;&gt;</Name>",
        "<Count>7</Count>",
        "<Flag>true</Flag>",
        "<When>2026-01-02T03:04:05.500Z</When>",
        "<Ratio>Infinity</Ratio>",
        "<Matrix><member><member>1.5</member></member><member></member></Matrix>",
        "<Tags><entry><key>k</key><value><Id>x</Id></value></entry></Tags>",
        "<Items><member><Id>a</Id></member><member><Id>b</Id></member></Items>",
        "<Entry>f1</Entry><Entry>f2</Entry>",
        "<renamed>r</renamed>",
        "<Data>aGk=</Data>",
        "</EchoResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></EchoResponse>",
    ];
    for part in expected {
        assert!(xml.contains(part), "missing {part} in {xml}");
    }
    assert!(!xml.contains("Secret"));
}

#[test]
fn xml_output_without_output_shape() {
    let m = sink();
    let xml = encode_output(&m, m.operation("Ping").expect("Ping"), &json!({}), "r");
    assert!(xml.ends_with(
        r#"<PingResponse xmlns="http://sink.example/doc/2020-01-01/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PingResponse>"#
    ));
}

#[test]
fn deeply_nested_keys_are_refused_without_recursing() {
    let deep = format!("Name=n&Nested{}.Leaf=x", ".Inner".repeat(200_000));
    assert!(matches!(echo(&deep), Err(DecodeError::Malformed(_))));
    let ok = format!("Name=n&Nested{}.Leaf=x", ".Inner".repeat(100));
    let doc = echo(&ok).expect("100 levels decode");
    let mut v = &doc["Nested"];
    for _ in 0..100 {
        v = &v["Inner"];
    }
    assert_eq!(v["Leaf"], "x");
}
