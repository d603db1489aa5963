//! Known-answer tests for SigV4 against vectors computed by botocore 1.43.11
//! (`tests/fixtures/sigv4/generate.py` → `vectors.json`): requests signed by botocore's own signers
//! and captured from real boto3 clients must verify, our canonical request and string to sign must be
//! botocore's byte for byte, our signer must reproduce botocore's `Authorization` header / presigned
//! URL exactly, and any tampering must be caught.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use opsloop_wire::sigv4::{self, SigV4Error};
use opsloop_wire::Credentials;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Fixture {
    generator: String,
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    service: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    now: u64,
    presigned: bool,
    expires: Option<u32>,
    method: String,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body_b64: String,
    canonical_request: String,
    string_to_sign: String,
    signature: String,
    authorization: Option<String>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/sigv4/vectors.json");
    serde_json::from_str(text).expect("vectors.json parses")
}

/// Header text to wire bytes: Python's http.client sends `str` header values Latin-1 encoded.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("vector header fits latin-1"))
        .collect()
}

fn body(v: &Vector) -> Bytes {
    Bytes::from(
        base64::engine::general_purpose::STANDARD
            .decode(&v.body_b64)
            .expect("base64 body"),
    )
}

fn request(v: &Vector, skip: &dyn Fn(&str) -> bool) -> http::Request<Bytes> {
    let mut b = http::Request::builder()
        .method(v.method.as_str())
        .uri(v.path_and_query.as_str());
    for (name, value) in &v.headers {
        if !skip(name) {
            b = b.header(
                name.as_str(),
                http::HeaderValue::from_bytes(&latin1(value)).expect("header value"),
            );
        }
    }
    b.body(body(v)).expect("request builds")
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn lookup_for(v: &Vector) -> impl Fn(&str) -> Option<Credentials> + '_ {
    move |akid: &str| {
        (akid == v.access_key_id).then(|| Credentials {
            access_key_id: v.access_key_id.clone(),
            secret_access_key: v.secret_access_key.clone(),
            account_id: "123456789012".to_string(),
        })
    }
}

fn verify(v: &Vector, req: http::Request<Bytes>) -> Result<sigv4::Scope, SigV4Error> {
    let (parts, body) = req.into_parts();
    sigv4::verify(&parts, &body, &lookup_for(v), at(v.now)).map(|(scope, _)| scope)
}

#[test]
fn sigv4_vectors_cover_the_cases() {
    let f = fixture();
    assert!(f.generator.starts_with("botocore "), "{}", f.generator);
    let names: Vec<&str> = f.vectors.iter().map(|v| v.name.as_str()).collect();
    for want in [
        "get_root",
        "post_json_target",
        "query_special_chars",
        "unicode_path_double_encoded",
        "headers_extra_spaces",
        "security_token",
        "unsigned_payload_header",
        "date_header_instead_of_x_amz_date",
        "presigned_sts",
        "presigned_s3",
        "client_cloudwatch_put_metric_data",
        "client_presign_s3_get_object",
    ] {
        assert!(names.contains(&want), "missing vector {want}");
    }
}

#[test]
fn sigv4_vectors_canonical_request_matches_botocore() {
    for v in fixture().vectors {
        let (parts, body) = request(&v, &|_| false).into_parts();
        let e = sigv4::explain(&parts, &body).unwrap_or_else(|err| panic!("{}: {err}", v.name));
        assert_eq!(
            e.canonical_request, v.canonical_request,
            "{}: canonical request",
            v.name
        );
        assert_eq!(
            e.string_to_sign, v.string_to_sign,
            "{}: string to sign",
            v.name
        );
    }
}

#[test]
fn sigv4_vectors_verify() {
    for v in fixture().vectors {
        let scope =
            verify(&v, request(&v, &|_| false)).unwrap_or_else(|err| panic!("{}: {err:?}", v.name));
        assert_eq!(scope.access_key_id, v.access_key_id, "{}", v.name);
        assert_eq!(scope.region, v.region, "{}", v.name);
        assert_eq!(scope.service, v.service, "{}", v.name);
        assert_eq!(scope.date, "20260102", "{}", v.name);
        let (parts, _) = request(&v, &|_| false).into_parts();
        let parsed = sigv4::parse_scope(&parts)
            .expect("has auth")
            .expect("well formed");
        assert_eq!(parsed, scope, "{}", v.name);
    }
}

#[test]
fn sigv4_vectors_wrong_secret_is_mismatch() {
    for v in fixture().vectors {
        let (parts, body) = request(&v, &|_| false).into_parts();
        let lookup = |akid: &str| {
            Some(Credentials {
                access_key_id: akid.to_string(),
                secret_access_key: format!("{}x", v.secret_access_key),
                account_id: "123456789012".to_string(),
            })
        };
        let err = sigv4::verify(&parts, &body, &lookup, at(v.now)).expect_err(&v.name);
        assert_eq!(
            err,
            SigV4Error::Mismatch(sigv4::MISMATCH_MESSAGE.to_string()),
            "{}",
            v.name
        );
    }
}

#[test]
fn sigv4_vectors_unknown_key() {
    for v in fixture().vectors {
        let (parts, body) = request(&v, &|_| false).into_parts();
        let err = sigv4::verify(&parts, &body, &|_| None, at(v.now)).expect_err(&v.name);
        assert_eq!(
            err,
            SigV4Error::UnknownKey(sigv4::UNKNOWN_KEY_MESSAGE.to_string()),
            "{}",
            v.name
        );
        assert_eq!(err.code(), ("InvalidClientTokenId", 403));
    }
}

fn mismatch(v: &Vector, req: http::Request<Bytes>, what: &str) {
    match verify(v, req) {
        Err(SigV4Error::Mismatch(_)) => {}
        other => panic!("{}: tampered {what} gave {other:?}", v.name),
    }
}

#[test]
fn sigv4_vectors_tampered_signature() {
    for v in fixture().vectors {
        let mut req = request(&v, &|_| false);
        let flip = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            b[10] = if b[10] == b'0' { b'1' } else { b'0' };
            String::from_utf8(b).unwrap()
        };
        if v.presigned {
            let pq = v.path_and_query.replace(&v.signature, &flip(&v.signature));
            *req.uri_mut() = pq.parse().unwrap();
        } else {
            let auth = v
                .authorization
                .as_ref()
                .unwrap()
                .replace(&v.signature, &flip(&v.signature));
            req.headers_mut()
                .insert("authorization", auth.parse().unwrap());
        }
        mismatch(&v, req, "signature");
    }
}

#[test]
fn sigv4_vectors_tampered_body() {
    for v in fixture().vectors {
        let unsigned = v.canonical_request.ends_with("\nUNSIGNED-PAYLOAD");
        let mut req = request(&v, &|_| false);
        let mut tampered = req.body().to_vec();
        tampered.push(b' ');
        *req.body_mut() = Bytes::from(tampered);
        if unsigned {
            // The body is not part of the signature: still verifies.
            assert!(verify(&v, req).is_ok(), "{}", v.name);
        } else {
            mismatch(&v, req, "body");
        }
    }
}

#[test]
fn sigv4_vectors_tampered_query() {
    for v in fixture().vectors {
        let mut req = request(&v, &|_| false);
        let pq = if v.path_and_query.contains('?') {
            format!("{}&extra=1", v.path_and_query)
        } else {
            format!("{}?extra=1", v.path_and_query)
        };
        *req.uri_mut() = pq.parse().unwrap();
        mismatch(&v, req, "query");
    }
}

#[test]
fn sigv4_vectors_tampered_path_and_method() {
    for v in fixture().vectors {
        let mut req = request(&v, &|_| false);
        let (path, query) = v
            .path_and_query
            .split_once('?')
            .map_or((v.path_and_query.as_str(), None), |(p, q)| (p, Some(q)));
        let pq = match query {
            Some(q) => format!("{path}x?{q}"),
            None => format!("{path}x"),
        };
        *req.uri_mut() = pq.parse().unwrap();
        mismatch(&v, req, "path");

        let mut req = request(&v, &|_| false);
        *req.method_mut() = if v.method == "PUT" {
            http::Method::POST
        } else {
            http::Method::PUT
        };
        mismatch(&v, req, "method");
    }
}

#[test]
fn sigv4_vectors_tampered_signed_header() {
    let mut checked = 0;
    for v in fixture().vectors {
        let signed_line = v
            .canonical_request
            .lines()
            .rev()
            .nth(1)
            .unwrap()
            .to_string();
        let signed: Vec<&str> = signed_line.split(';').collect();
        // Change the value of every signed header but the date (its own checks run first).
        for name in signed
            .iter()
            .filter(|n| !matches!(**n, "x-amz-date" | "date"))
        {
            let mut req = request(&v, &|_| false);
            let old = req
                .headers()
                .get(*name)
                .map(|h| h.as_bytes().to_vec())
                .unwrap_or_default();
            let mut new = old.clone();
            new.extend_from_slice(b"1");
            req.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(&new).unwrap(),
            );
            if *name == "x-amz-content-sha256" {
                // Not a valid hash any more.
                assert!(verify(&v, req).is_err(), "{}: {name}", v.name);
            } else {
                mismatch(&v, req, name);
            }
            checked += 1;
        }
        // Adding an unsigned header changes nothing.
        let mut req = request(&v, &|_| false);
        req.headers_mut()
            .insert("x-not-signed", "anything".parse().unwrap());
        assert!(verify(&v, req).is_ok(), "{}", v.name);
    }
    assert!(checked > 30, "{checked}");
}

#[test]
fn sigv4_vectors_signer_reproduces_botocore_authorization() {
    let mut checked = 0;
    for v in fixture().vectors.iter().filter(|v| !v.presigned) {
        let signed_line = v
            .canonical_request
            .lines()
            .rev()
            .nth(1)
            .unwrap()
            .to_string();
        let signed: Vec<&str> = signed_line.split(';').collect();
        // Present only the headers botocore had when it signed (boto3 adds a few afterwards), without
        // the signature, the date and the token: the signer adds those.
        let skip = |name: &str| {
            let lower = name.to_ascii_lowercase();
            !signed.contains(&lower.as_str())
                || matches!(lower.as_str(), "x-amz-date" | "x-amz-security-token")
        };
        let mut req = request(v, &skip);
        if signed.contains(&"date") {
            req.headers_mut()
                .insert("date", "placeholder".parse().unwrap());
        }
        sigv4::sign_with_token(
            &mut req,
            &v.access_key_id,
            &v.secret_access_key,
            v.session_token.as_deref(),
            &v.region,
            &v.service,
            at(v.now),
        );
        let got = req
            .headers()
            .get("authorization")
            .map(|h| h.to_str().unwrap().to_string());
        assert_eq!(got.as_deref(), v.authorization.as_deref(), "{}", v.name);
        // And it verifies.
        assert!(verify(v, req).is_ok(), "{}", v.name);
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn sigv4_vectors_presigner_reproduces_botocore_url() {
    let mut checked = 0;
    for v in fixture().vectors.iter().filter(|v| v.presigned) {
        let (path, query) = v.path_and_query.split_once('?').unwrap();
        let own: Vec<&str> = query
            .split('&')
            .filter(|p| !p.starts_with("X-Amz-"))
            .collect();
        let original = if own.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", own.join("&"))
        };
        let mut req = request(v, &|_| false);
        *req.uri_mut() = original.parse().unwrap();
        sigv4::presign(
            &mut req,
            &v.access_key_id,
            &v.secret_access_key,
            v.session_token.as_deref(),
            &v.region,
            &v.service,
            at(v.now),
            v.expires.unwrap(),
        );
        assert_eq!(
            req.uri().path_and_query().unwrap().as_str(),
            v.path_and_query,
            "{}",
            v.name
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

#[test]
fn sigv4_vectors_presigned_expiry() {
    for v in fixture().vectors.iter().filter(|v| v.presigned) {
        let expires = u64::from(v.expires.unwrap());
        let (parts, body) = request(v, &|_| false).into_parts();
        let lookup = lookup_for(v);
        assert!(
            sigv4::verify(&parts, &body, &lookup, at(v.now + expires)).is_ok(),
            "{}",
            v.name
        );
        assert_eq!(
            sigv4::verify(&parts, &body, &lookup, at(v.now + expires + 1)).map(|_| ()),
            Err(SigV4Error::Expired(
                sigv4::PRESIGNED_EXPIRED_MESSAGE.to_string()
            )),
            "{}",
            v.name
        );
        // Presigned URLs are not bound by the 15-minute window after their date...
        if expires > 1000 {
            assert!(
                sigv4::verify(&parts, &body, &lookup, at(v.now + 1000)).is_ok(),
                "{}",
                v.name
            );
        }
        // ...but one dated more than 15 minutes ahead is not yet valid.
        assert!(
            matches!(
                sigv4::verify(&parts, &body, &lookup, at(v.now - 901)),
                Err(SigV4Error::Expired(m)) if m.starts_with("Signature not yet current: 20260102T030405Z is still later than")
            ),
            "{}",
            v.name
        );
    }
}
