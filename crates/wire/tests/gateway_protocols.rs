//! The gateway against requests exactly as botocore serializes them (captured fixtures), for each of
//! CloudWatch's three protocols, and the shape of the responses it sends back.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn botocore_requests_decode_to_the_call_parameters() {
    let names = fixture_names();
    assert!(names.len() >= 18, "fixtures missing: {names:?}");
    for name in names {
        let fake = Fake::empty(CLOUDWATCH);
        let g = gateway([fake.clone()]);
        let f = fixture(&name);
        let resp = g.handle(f.request).await;
        assert_eq!(
            resp.status(),
            200,
            "{name}: {}",
            String::from_utf8_lossy(resp.body())
        );
        assert!(
            header(&resp, "x-amzn-requestid").is_some_and(|id| id.len() == 36),
            "{name}"
        );
        let (ctx, input) = fake
            .last()
            .unwrap_or_else(|| panic!("{name}: service not called"));
        assert_eq!(ctx.operation, f.operation, "{name}");
        assert_eq!(
            ctx.region, "us-east-1",
            "{name}: region from the credential scope"
        );
        assert_eq!(ctx.access_key_id.as_deref(), Some("AKIDEXAMPLE"), "{name}");
        assert_eq!(ctx.account_id, "000000000000", "{name}");
        assert!(
            same(&input, &f.expected),
            "{name} ({}):\n got      {input}\n expected {}",
            f.protocol,
            f.expected
        );
        let content_type = header(&resp, "content-type");
        match f.protocol.as_str() {
            "json" => assert_eq!(content_type, Some("application/x-amz-json-1.0")),
            "query" => assert_eq!(content_type, Some("text/xml")),
            _ => assert_eq!(header(&resp, "smithy-protocol"), Some("rpc-v2-cbor")),
        }
    }
}

#[tokio::test]
async fn big_requests_arrive_gzipped_and_decode() {
    for proto in ["json", "query", "smithy-rpc-v2-cbor"] {
        let f = fixture(&format!("{proto}-put_metric_data_big.json"));
        assert_eq!(
            f.request
                .headers()
                .get("content-encoding")
                .map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "{proto}"
        );
        let fake = Fake::empty(CLOUDWATCH);
        let resp = gateway([fake.clone()]).handle(f.request).await;
        assert_eq!(resp.status(), 200, "{proto}");
        let (_, input) = fake.last().expect("called");
        assert_eq!(
            input["MetricData"].as_array().map(Vec::len),
            Some(120),
            "{proto}"
        );
        assert_eq!(
            input["MetricData"][119]["Values"].as_array().map(Vec::len),
            Some(40),
            "{proto}"
        );
    }
}

fn metric_data_output() -> serde_json::Value {
    json!({
        "MetricDataResults": [{
            "Id": "m1", "Label": "Latency <ms>", "StatusCode": "Complete",
            "Timestamps": [1767323045, 1767323105.5], "Values": [1.5, 2.0]
        }],
        "Messages": [],
        "NotAModelMember": "dropped"
    })
}

#[tokio::test]
async fn get_metric_data_response_in_each_protocol() {
    let fake = Fake::new(CLOUDWATCH, |_, _| Ok(metric_data_output()));
    let g = gateway([fake]);

    let resp = g.handle(fixture("json-get_metric_data.json").request).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
    assert_eq!(
        v,
        json!({"MetricDataResults":[{"Id":"m1","Label":"Latency <ms>","StatusCode":"Complete",
            "Timestamps":[1767323045,1767323105.5],"Values":[1.5,2.0]}],"Messages":[]})
    );

    let resp = g
        .handle(fixture("smithy-rpc-v2-cbor-get_metric_data.json").request)
        .await;
    assert_eq!(header(&resp, "content-type"), Some("application/cbor"));
    let c: ciborium::Value = ciborium::from_reader(&resp.body()[..]).expect("cbor");
    let results = c
        .as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_text() == Some("MetricDataResults"))
        })
        .map(|(_, v)| v.clone());
    let first = results
        .and_then(|r| r.as_array().and_then(|a| a.first().cloned()))
        .expect("one result");
    let ts = first
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("Timestamps")))
        .map(|(_, v)| v.clone());
    assert_eq!(
        ts,
        Some(ciborium::Value::Array(vec![
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_767_323_045.into()))),
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Float(1_767_323_105.5))),
        ]))
    );

    let resp = g
        .handle(fixture("query-get_metric_data.json").request)
        .await;
    let xml = body_str(&resp);
    let rid = header(&resp, "x-amzn-requestid").expect("request id");
    assert!(xml.starts_with("<?xml"), "{xml}");
    for part in [
        r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult>"#,
        "<MetricDataResults><member><Id>m1</Id><Label>Latency &lt;ms&gt;</Label><StatusCode>Complete</StatusCode>",
        "<Timestamps><member>2026-01-02T03:04:05.000Z</member><member>2026-01-02T03:05:05.500Z</member></Timestamps>",
        "<Values><member>1.5</member><member>2.0</member></Values>",
        "<Messages></Messages>",
        &format!("</GetMetricDataResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></GetMetricDataResponse>"),
    ] {
        assert!(xml.contains(part), "missing {part} in {xml}");
    }
    assert!(!xml.contains("NotAModelMember"));
}

#[tokio::test]
async fn operations_without_output() {
    let g = gateway([Fake::empty(CLOUDWATCH)]);
    let resp = g.handle(fixture("json-put_metric_data.json").request).await;
    assert_eq!(resp.body().as_ref(), b"{}");
    let resp = g
        .handle(fixture("smithy-rpc-v2-cbor-put_metric_data.json").request)
        .await;
    assert_eq!(
        (resp.status().as_u16(), resp.body().len()),
        (200, 0),
        "no body for a unit output"
    );
    assert_eq!(header(&resp, "content-type"), None);
    let resp = g
        .handle(fixture("query-put_metric_data.json").request)
        .await;
    let xml = body_str(&resp);
    assert!(xml.contains(r#"<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>"#), "{xml}");
}

#[tokio::test]
async fn query_over_get() {
    let fake = Fake::empty(CLOUDWATCH);
    let g = gateway([fake.clone()]);
    let req = http::Request::builder()
        .method("GET")
        .uri("http://localhost/?Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FEC2&Dimensions.member.1.Name=InstanceId")
        .body(bytes::Bytes::new())
        .expect("request");
    let resp = g.handle(req).await;
    assert_eq!(resp.status(), 200, "{}", body_str(&resp));
    let (ctx, input) = fake.last().expect("called");
    assert_eq!(ctx.operation, "ListMetrics");
    assert_eq!(
        input,
        json!({"Namespace":"AWS/EC2","Dimensions":[{"Name":"InstanceId"}]})
    );
}
