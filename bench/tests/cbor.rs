//! The client's CBOR against two independent references: request bodies byte-for-byte equal to
//! what botocore's RPC v2 CBOR serializer produces for the same input (vectors generated with
//! botocore, see the comments), and the decoder against values ciborium encodes.

use opsloop_bench::awsclient::{cbor, decode_statistics, PutMetricData, StatsQuery};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn put_metric_data_matches_botocore() {
    // botocore: PutMetricData(Namespace='NS', MetricData=[{MetricName='M',
    //   Dimensions=[{Name='Host', Value='h1'}], Timestamp=2024-01-01T00:00:00Z,
    //   Values=[1.5, 2.0], Counts=[1.0, 3.0]}])
    let want = hex(concat!(
        "a2694e616d657370616365624e536a4d65747269634461746181a56a4d65747269634e616d65614d6a44696d656e",
        "73696f6e7381a2644e616d6564486f73746556616c75656268316954696d657374616d70c11a659200806656616c",
        "75657382fb3ff8000000000000fb400000000000000066436f756e747382fb3ff0000000000000fb400800000000",
        "0000",
    ));
    let mut b = PutMetricData::new("NS", 1, 64);
    b.datum(
        "M",
        &[("Host", "h1")],
        1_704_067_200,
        &[1.5, 2.0],
        Some(&[1.0, 3.0]),
    );
    assert_eq!(b.finish(), want);
}

#[test]
fn get_metric_statistics_matches_botocore() {
    // botocore: GetMetricStatistics(Namespace='NS', MetricName='M', Dimensions=[{Name='Host',
    //   Value='h1'}], StartTime=2024-01-01, EndTime=2024-01-02, Period=60,
    //   Statistics=['Sum', 'SampleCount'], ExtendedStatistics=['p99'])
    let want = hex(concat!(
        "a8694e616d657370616365624e536a4d65747269634e616d65614d6a44696d656e73696f6e7381a2644e616d6564",
        "486f73746556616c756562683169537461727454696d65c11a6592008067456e6454696d65c11a65935200665065",
        "72696f64183c6a53746174697374696373826353756d6b53616d706c65436f756e7472457874656e646564537461",
        "746973746963738163703939"
    ));
    let q = StatsQuery {
        namespace: "NS",
        metric_name: "M",
        dimensions: &[("Host", "h1")],
        start_s: 1_704_067_200,
        end_s: 1_704_153_600,
        period_s: 60,
        statistics: &["Sum", "SampleCount"],
        extended_statistics: &["p99"],
    };
    assert_eq!(q.encode(), want);
}

#[test]
fn decoder_reads_what_ciborium_writes() {
    use ciborium::value::Value as C;
    let v = C::Map(vec![
        (C::Text("a".into()), C::Integer((-1_000_000i64).into())),
        (
            C::Text("b".into()),
            C::Array(vec![
                C::Float(1.25),
                C::Bool(true),
                C::Null,
                C::Integer(300.into()),
            ]),
        ),
        (
            C::Text("t".into()),
            C::Tag(1, Box::new(C::Float(1_700_000_000.5))),
        ),
        (C::Text("bytes".into()), C::Bytes(vec![0xde, 0xad])),
        (C::Text("s".into()), C::Text("héllo".into())),
    ]);
    let mut buf = Vec::new();
    ciborium::into_writer(&v, &mut buf).unwrap();
    let got = cbor::decode(&buf).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"a": -1_000_000, "b": [1.25, true, null, 300], "t": 1_700_000_000.5, "bytes": "dead", "s": "héllo"})
    );
}

#[test]
fn decoder_handles_indefinite_lengths_and_half_floats() {
    // {_ "x": [_ 1.5 (half), -2], "y": (_ "ab" "c")}
    let buf = hex("bf61789ff93e0021ff61797f6261626163ffff");
    let got = cbor::decode(&buf).unwrap();
    assert_eq!(got, serde_json::json!({"x": [1.5, -2], "y": "abc"}));
}

#[test]
fn decoder_rejects_truncated_and_trailing_input() {
    assert!(cbor::decode(&hex("a2616101")).is_err());
    assert!(cbor::decode(&hex("0101")).is_err());
    assert!(cbor::decode(&hex("9b00000000ffffffff")).is_err());
}

#[test]
fn statistics_answer_parses() {
    let mut e = cbor::Enc::default();
    e.map(2);
    e.text("Label");
    e.text("M");
    e.text("Datapoints");
    e.array(1);
    e.map(4);
    e.text("Timestamp");
    e.timestamp(1_704_067_200);
    e.text("SampleCount");
    e.f64(12.0);
    e.text("Unit");
    e.text("None");
    e.text("ExtendedStatistics");
    e.map(1);
    e.text("p99");
    e.f64(9.5);
    let dps = decode_statistics(&e.buf).unwrap();
    assert_eq!(dps.len(), 1);
    assert_eq!(dps[0].timestamp_s, 1_704_067_200.0);
    assert_eq!(dps[0].sample_count, Some(12.0));
    assert_eq!(dps[0].extended, vec![("p99".to_string(), 9.5)]);
    assert_eq!(dps[0].sum, None);
}
