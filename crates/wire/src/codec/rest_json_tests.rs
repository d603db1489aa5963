use opsloop_core::ValidationFailure;
use serde_json::json;

use super::*;

const THINGS: &str = include_str!("../../tests/fixtures/things-model.json");

fn things() -> Model {
    Model::parse(THINGS).expect("things model")
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request").into_parts().0
}

fn route(m: &Model, method: &str, uri: &str) -> Option<String> {
    let routes = Routes::build(m).expect("routes");
    let p = parts(method, uri, &[]);
    let params = query::parse_form(p.uri.query().unwrap_or("").as_bytes()).expect("query");
    routes
        .find(method, p.uri.path(), &params)
        .map(|i| m.operations()[i].name.clone())
}

#[test]
fn templates_parse() {
    let t = Template::parse("/files/{Key+}?download&x-id=Get").expect("parses");
    assert_eq!(t.conflict_key("get"), "GET/files/{+}?download=&x-id=Get");
    assert!(Template::parse("/a/{B}{C}").is_err());
    assert!(Template::parse("/{A+}/{B+}").is_err());
}

#[test]
fn routes_prefer_literals_and_match_greedy_labels() {
    let m = things();
    assert_eq!(
        route(&m, "GET", "/things/special").as_deref(),
        Some("GetSpecial")
    );
    assert_eq!(route(&m, "GET", "/things/abc").as_deref(), Some("GetThing"));
    assert_eq!(route(&m, "GET", "/things").as_deref(), Some("ListThings"));
    assert_eq!(route(&m, "GET", "/things/").as_deref(), Some("ListThings"));
    assert_eq!(route(&m, "PUT", "/things/abc").as_deref(), Some("PutThing"));
    assert_eq!(
        route(&m, "POST", "/things/abc/update").as_deref(),
        Some("UpdateThing")
    );
    assert_eq!(
        route(&m, "GET", "/files/a/b/c.txt?download").as_deref(),
        Some("GetFile")
    );
    assert_eq!(
        route(&m, "GET", "/files/a/b/c.txt"),
        None,
        "literal query part required"
    );
    assert_eq!(route(&m, "DELETE", "/things/abc"), None);
    assert_eq!(route(&m, "GET", "/nothing/here"), None);
}

fn decode_req(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Value, DecodeError> {
    let m = things();
    let p = parts(method, uri, headers);
    let params = query::parse_form(p.uri.query().unwrap_or("").as_bytes()).expect("query");
    let routes = Routes::build(&m).expect("routes");
    let idx = routes.find(method, p.uri.path(), &params).expect("route");
    decode(&m, &m.operations()[idx], &p, body.as_bytes())
}

#[test]
fn decodes_uri_query_and_header_bindings() {
    let ctx = encode_base64(br#"{"trace":[1,2]}"#);
    let doc = decode_req(
        "GET",
        "/things/a%20b%2Fc?verbose=true&tag=x&tag=y%2Cz",
        &[
            ("X-Since", "Fri, 02 Jan 2026 03:04:05 GMT"),
            ("X-Labels", r#"one, "two, three",four"#),
            ("X-Context", &ctx),
        ],
        "",
    )
    .expect("decodes");
    assert_eq!(
        doc,
        json!({"ThingId":"a b/c","Verbose":true,"Tags":["x","y,z"],"Since":1767323045,
            "Labels":["one","two, three","four"],"Context":{"trace":[1,2]}})
    );
}

#[test]
fn greedy_labels_keep_slashes() {
    assert_eq!(
        decode_req("GET", "/files/dir/sub/f%20g.txt?download", &[], ""),
        Ok(json!({"Key":"dir/sub/f g.txt"}))
    );
}

#[test]
fn querystring_maps_collect_unbound_parameters() {
    let doc = decode_req("GET", "/things?maxResults=5&color=red&size=L", &[], "").expect("decodes");
    assert_eq!(
        doc,
        json!({"MaxResults":5,"Filters":{"color":"red","size":"L"}})
    );
}

#[test]
fn payload_structures_and_prefixed_headers() {
    let doc = decode_req(
        "PUT",
        "/things/t1",
        &[
            ("X-Token", "tok"),
            ("x-meta-owner", "me"),
            ("X-Meta-Team", "ops"),
        ],
        r#"{"Name":"thing","Size":3,"At":"2026-01-02T03:04:05Z","Junk":1}"#,
    )
    .expect("decodes");
    assert_eq!(
        doc,
        json!({"ThingId":"t1","Body":{"Name":"thing","Size":3,"At":1767323045},"Token":"tok","Meta":{"owner":"me","team":"ops"}})
    );
}

#[test]
fn body_members_merge_with_bound_members() {
    let doc = decode_req(
        "POST",
        "/things/t1/update?when=2026-01-02T03%3A04%3A05Z",
        &[],
        r#"{"Name":"n","Size":2,"ThingId":"ignored"}"#,
    )
    .expect("decodes");
    assert_eq!(
        doc,
        json!({"ThingId":"t1","Name":"n","Size":2,"When":1767323045})
    );
}

#[test]
fn bad_values_are_validation_failures() {
    let check = |method: &str, uri: &str, headers: &[(&str, &str)], body: &str, path: &str| {
        let err = decode_req(method, uri, headers, body).expect_err(uri);
        assert!(
            matches!(&err, DecodeError::Invalid(ValidationFailure::Invalid { path: p, .. }) if p == path),
            "{uri}: {err:?}"
        );
    };
    check("GET", "/things/a?verbose=maybe", &[], "", "Verbose");
    check("GET", "/things/a", &[("X-Since", "soon")], "", "Since");
    check(
        "GET",
        "/things/a",
        &[("X-Context", "not base64 json")],
        "",
        "Context",
    );
    check("GET", "/things?maxResults=lots", &[], "", "MaxResults");
    check("POST", "/things/t/update", &[], r#"{"Size":"big"}"#, "Size");
    check("PUT", "/things/t", &[], r#"{"Size":"big"}"#, "Body.Size");
    assert!(matches!(
        decode_req("POST", "/things/t/update", &[], "{nope"),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn encodes_headers_status_and_body() {
    let m = things();
    let op = m.operation("GetThing").expect("op");
    let r = encode_output(
        &m,
        op,
        &json!({"ThingId":"t","Created":1767323045.5,"ETag":"\"abc\"","Modified":1767323045,"Meta":{"owner":"me"},"Junk":1}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, Some("application/json"));
    let h = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.to_str().ok())
    };
    assert_eq!(h("etag"), Some("\"abc\""));
    assert_eq!(h("last-modified"), Some("Fri, 02 Jan 2026 03:04:05 GMT"));
    assert_eq!(h("x-meta-owner"), Some("me"));
    let body: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(body, json!({"ThingId":"t","Created":1767323045.5}));
}

#[test]
fn response_code_status_member_and_blob_payload() {
    let m = things();
    let r = encode_output(
        &m,
        m.operation("PutThing").expect("op"),
        &json!({"ThingId":"t"}),
    );
    assert_eq!(r.status, 201);
    let r = encode_output(
        &m,
        m.operation("PutThing").expect("op"),
        &json!({"ThingId":"t","Status":202}),
    );
    assert_eq!(r.status, 202);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).ok(),
        Some(json!({"ThingId":"t"}))
    );

    let r = encode_output(
        &m,
        m.operation("GetFile").expect("op"),
        &json!({"Body":"aGk="}),
    );
    assert_eq!(
        (r.body.as_slice(), r.content_type),
        (&b"hi"[..], Some("application/octet-stream"))
    );
    let r = encode_output(
        &m,
        m.operation("GetFile").expect("op"),
        &json!({"Body":"aGk=","Type":"text/plain"}),
    );
    assert_eq!(
        r.content_type, None,
        "the modelled Content-Type header wins"
    );
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/plain"));
}

#[test]
fn parses_real_rest_json_models() {
    // The repository's own copies of the models (models/, docs stripped): always present.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
    for (svc, version) in [("xray", "2016-04-12"), ("ssm-incidents", "2018-05-10")] {
        let path = format!("{dir}/{svc}-{version}.json");
        let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let m = Model::parse(&json).expect(svc);
        assert_eq!(m.metadata.protocol, Some(crate::model::Protocol::RestJson));
        assert!(m.operations().len() > 20, "{svc}");
        let routes = Routes::build(&m).expect("routes");
        for op in m.operations() {
            // Every operation's own template, filled with dummy labels, routes back to an operation
            // with the same method.
            let uri = op.http.request_uri.replace('+', "").replace(['{', '}'], "");
            let p = parts(&op.http.method, &uri, &[]);
            let params = query::parse_form(p.uri.query().unwrap_or("").as_bytes()).expect("query");
            let found = routes.find(&op.http.method, p.uri.path(), &params);
            assert!(found.is_some(), "{svc} {} {}", op.name, op.http.request_uri);
        }
    }
}
