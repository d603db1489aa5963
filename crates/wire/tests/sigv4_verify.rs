//! SigV4 verification behaviour: every error kind with AWS's wording, clock-skew and expiry
//! boundaries, scope checks, and sign → verify round trips over varied requests. (Agreement with
//! botocore is tested against its vectors in `sigv4_vectors.rs`.)

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opsloop_wire::sigv4::{self, SigV4Error};
use opsloop_wire::Credentials;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2026-01-02T03:04:05Z.
const T: u64 = 1_767_323_045;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn lookup(akid: &str) -> Option<Credentials> {
    (akid == AKID).then(|| Credentials {
        access_key_id: AKID.to_string(),
        secret_access_key: SECRET.to_string(),
        account_id: "123456789012".to_string(),
    })
}

fn verify_at(req: &http::Request<Bytes>, now: u64) -> Result<sigv4::Scope, SigV4Error> {
    let (parts, body) = clone(req).into_parts();
    sigv4::verify(&parts, &body, &lookup, at(now)).map(|(scope, creds)| {
        assert_eq!(creds.access_key_id, AKID);
        scope
    })
}

fn clone(req: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut b = http::Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone());
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    b.body(req.body().clone()).unwrap()
}

fn base(method: &str, uri: &str, body: &[u8]) -> http::Request<Bytes> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost:4566")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "GraniteServiceVersion20100801.ListMetrics")
        .body(Bytes::copy_from_slice(body))
        .unwrap()
}

fn signed(method: &str, uri: &str, body: &[u8]) -> http::Request<Bytes> {
    let mut req = base(method, uri, body);
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    req
}

fn with_auth(auth: &str) -> http::Request<Bytes> {
    let mut req = signed("POST", "/", b"{}");
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    req
}

fn incomplete(req: &http::Request<Bytes>) -> String {
    match verify_at(req, T) {
        Err(e @ SigV4Error::Incomplete(_)) => {
            assert_eq!(e.code(), ("IncompleteSignature", 400));
            e.to_string()
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
}

fn mismatch(req: &http::Request<Bytes>) -> String {
    match verify_at(req, T) {
        Err(e @ SigV4Error::Mismatch(_)) => {
            assert_eq!(e.code(), ("SignatureDoesNotMatch", 403));
            e.to_string()
        }
        other => panic!("expected Mismatch, got {other:?}"),
    }
}

#[test]
fn sigv4_signed_request_verifies() {
    let req = signed("POST", "/", br#"{"Namespace":"AWS/EC2"}"#);
    let scope = verify_at(&req, T).unwrap();
    assert_eq!(
        scope,
        sigv4::Scope {
            access_key_id: AKID.into(),
            date: "20260102".into(),
            region: "us-east-1".into(),
            service: "monitoring".into()
        }
    );
}

#[test]
fn sigv4_missing_authentication() {
    let req = base("POST", "/", b"{}");
    let err = verify_at(&req, T).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::Missing("Missing Authentication Token".into())
    );
    assert_eq!(err.code(), ("MissingAuthenticationToken", 403));
    let (parts, _) = clone(&req).into_parts();
    assert_eq!(sigv4::parse_scope(&parts), None);

    // awsQuery services word it differently: a form body...
    let mut form = base("POST", "/", b"Action=ListMetrics&Version=2010-08-01");
    form.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    assert_eq!(
        verify_at(&form, T),
        Err(SigV4Error::Missing(
            "Request is missing Authentication Token".into()
        ))
    );
    // ...or an Action in the query string.
    let get = base("GET", "/?Action=ListMetrics&Version=2010-08-01", b"");
    assert_eq!(
        verify_at(&get, T),
        Err(SigV4Error::Missing(
            "Request is missing Authentication Token".into()
        ))
    );
    // Unrelated X-Amz-* query parameters do not make a presigned request.
    let get = base("GET", "/?X-Amz-Date=20260102T030405Z", b"");
    assert!(matches!(verify_at(&get, T), Err(SigV4Error::Missing(_))));
}

#[test]
fn sigv4_incomplete_authorization_header() {
    let msg = incomplete(&with_auth(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/monitoring/aws4_request",
    ));
    assert_eq!(
        msg,
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/monitoring/aws4_request"
    );
    let msg = incomplete(&with_auth("Bearer eyJhbGciOi"));
    assert_eq!(
        msg,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer eyJhbGciOi"
    );
    let msg = incomplete(&with_auth("AWS4-HMAC-SHA256 Credential=AKID /20260102/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=00"));
    assert!(msg.starts_with("'/20260102/us-east-1/monitoring/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=AKID /20260102"), "{msg}");
    let msg = incomplete(&with_auth("AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/20260102/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=00"));
    assert_eq!(
        msg,
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "
    );
    let msg = incomplete(&with_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=00"));
    assert_eq!(
        msg,
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/us-east-1/monitoring/aws4_request'"
    );
    // Header value that is not visible ASCII.
    let mut req = signed("POST", "/", b"{}");
    req.headers_mut().insert(
        "authorization",
        http::HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xe9").unwrap(),
    );
    assert!(incomplete(&req).starts_with("Authorization header requires 'Credential' parameter."));
}

#[test]
fn sigv4_incomplete_dates() {
    let mut req = signed("POST", "/", b"{}");
    req.headers_mut().remove("x-amz-date");
    let auth = req.headers()["authorization"].to_str().unwrap().to_string();
    assert_eq!(
        incomplete(&req),
        format!("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={auth}")
    );
    for bad in [
        "201",
        "2026-01-02T03:04:05Z",
        "20260102T030405",
        "20261302T030405Z",
    ] {
        let mut req = signed("POST", "/", b"{}");
        req.headers_mut().insert("x-amz-date", bad.parse().unwrap());
        assert_eq!(
            incomplete(&req),
            format!("Date must be in ISO-8601 'basic format'. Got '{bad}'. See http://en.wikipedia.org/wiki/ISO_8601")
        );
    }
    // Only a Date header, unparseable.
    let mut req = signed("POST", "/", b"{}");
    req.headers_mut().remove("x-amz-date");
    req.headers_mut()
        .insert("date", "yesterday".parse().unwrap());
    assert!(
        incomplete(&req).starts_with("Date must be in ISO-8601 'basic format'. Got 'yesterday'.")
    );
}

#[test]
fn sigv4_scope_problems_are_mismatch() {
    let sig = "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00";
    let msg = mismatch(&with_auth(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/monitoring/aws4_request, {sig}"
    )));
    assert_eq!(
        msg,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260101' != '20260102', from '20260102T030405Z'."
    );
    let msg = mismatch(&with_auth(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102//monitoring/aws5_request, {sig}"
    )));
    assert_eq!(
        msg,
        "Credential should be scoped to a valid region, not ''. Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
    );
    let msg = mismatch(&with_auth(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/monitoring/aws4_request, SignedHeaders=x-amz-date, Signature=00",
    ));
    assert_eq!(
        msg,
        "'Host' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn sigv4_unknown_key() {
    let mut req = base("POST", "/", b"{}");
    sigv4::sign(
        &mut req,
        "AKIDUNKNOWN",
        SECRET,
        "us-east-1",
        "monitoring",
        at(T),
    );
    let err = verify_at(&req, T).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::UnknownKey("The security token included in the request is invalid.".into())
    );
    assert_eq!(err.code(), ("InvalidClientTokenId", 403));
}

#[test]
fn sigv4_wrong_secret_and_tampering_are_mismatch() {
    let want = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    let mut req = base("POST", "/", b"{}");
    sigv4::sign(
        &mut req,
        AKID,
        "not-the-secret",
        "us-east-1",
        "monitoring",
        at(T),
    );
    assert_eq!(mismatch(&req), want);

    let good = signed("POST", "/path?a=1&b=2", br#"{"a":1}"#);
    assert!(verify_at(&good, T).is_ok());

    let mut req = clone(&good);
    *req.body_mut() = Bytes::from_static(br#"{"a":2}"#);
    assert_eq!(mismatch(&req), want);

    let mut req = clone(&good);
    req.headers_mut().insert(
        "x-amz-target",
        "GraniteServiceVersion20100801.PutMetricData"
            .parse()
            .unwrap(),
    );
    assert_eq!(mismatch(&req), want);

    for uri in [
        "/path?a=1&b=3",
        "/path?a=1",
        "/path?a=1&b=2&c=",
        "/path2?a=1&b=2",
    ] {
        let mut req = clone(&good);
        *req.uri_mut() = uri.parse().unwrap();
        assert_eq!(mismatch(&req), want, "{uri}");
    }
    // Query parameter order does not matter (the canonical query is sorted).
    let mut req = clone(&good);
    *req.uri_mut() = "/path?b=2&a=1".parse().unwrap();
    assert!(verify_at(&req, T).is_ok());

    // A region or service other than the one signed for.
    for (from, to) in [("/us-east-1/", "/us-west-2/"), ("/monitoring/", "/logs/")] {
        let mut req = clone(&good);
        let auth = req.headers()["authorization"]
            .to_str()
            .unwrap()
            .replace(from, to);
        req.headers_mut()
            .insert("authorization", auth.parse().unwrap());
        assert_eq!(mismatch(&req), want);
    }
    // Signature that is not hex, or of the wrong length.
    for sig in ["zz", "", "0"] {
        let mut req = clone(&good);
        let auth = req.headers()["authorization"].to_str().unwrap().to_string();
        let (head, _) = auth.rsplit_once("Signature=").unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("{head}Signature={sig}").parse().unwrap(),
        );
        if sig.is_empty() {
            incomplete(&req);
        } else {
            assert_eq!(mismatch(&req), want);
        }
    }
}

#[test]
fn sigv4_content_sha256_header() {
    let body = br#"{"k":"v"}"#;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));

    // A hash matching the body, signed: verifies.
    let mut req = base("POST", "/", body);
    req.headers_mut()
        .insert("x-amz-content-sha256", hash.parse().unwrap());
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert!(verify_at(&req, T).is_ok());
    // Uppercase hex is the same hash.
    let mut up = base("POST", "/", body);
    up.headers_mut()
        .insert("x-amz-content-sha256", hash.to_uppercase().parse().unwrap());
    sigv4::sign(&mut up, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert!(verify_at(&up, T).is_ok());

    // Body changed: the header no longer matches.
    let mut tampered = clone(&req);
    *tampered.body_mut() = Bytes::from_static(b"{}");
    assert_eq!(
        mismatch(&tampered),
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    );

    // UNSIGNED-PAYLOAD: the body is not covered.
    let mut req = base("POST", "/", body);
    req.headers_mut()
        .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    let mut other_body = clone(&req);
    *other_body.body_mut() = Bytes::from_static(b"anything");
    assert!(verify_at(&other_body, T).is_ok());
    // Removing the header makes the signature cover the body hash instead: mismatch.
    let mut removed = clone(&req);
    removed.headers_mut().remove("x-amz-content-sha256");
    mismatch(&removed);

    // Anything else is refused.
    let mut req = base("POST", "/", body);
    req.headers_mut().insert(
        "x-amz-content-sha256",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".parse().unwrap(),
    );
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert_eq!(
        incomplete(&req),
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, or a valid sha256 value."
    );
}

#[test]
fn sigv4_clock_skew_boundaries() {
    let req = signed("POST", "/", b"{}");
    assert!(verify_at(&req, T + 900).is_ok());
    assert!(verify_at(&req, T - 900).is_ok());
    let err = verify_at(&req, T + 901).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::Expired(
            "Signature expired: 20260102T030405Z is now earlier than 20260102T030406Z (20260102T031906Z - 15 min.)".into()
        )
    );
    assert_eq!(err.code(), ("RequestExpired", 400));
    assert_eq!(
        verify_at(&req, T - 901),
        Err(SigV4Error::Expired(
            "Signature not yet current: 20260102T030405Z is still later than 20260102T030404Z (20260102T024904Z + 15 min.)"
                .into()
        ))
    );
    // Sub-second server time rounds down.
    let (parts, body) = clone(&req).into_parts();
    assert!(sigv4::verify(
        &parts,
        &body,
        &lookup,
        at(T + 900) + Duration::from_millis(999)
    )
    .is_ok());
    // Far away.
    assert!(matches!(
        verify_at(&req, T + 86_400 * 365),
        Err(SigV4Error::Expired(_))
    ));
    assert!(matches!(verify_at(&req, 0), Err(SigV4Error::Expired(_))));
    // Absurd server clocks are an error, not an overflow.
    let (parts, body) = clone(&req).into_parts();
    let extremes = [
        UNIX_EPOCH.checked_add(Duration::from_secs(i64::MAX as u64)),
        UNIX_EPOCH.checked_sub(Duration::from_secs(i64::MAX as u64)),
    ];
    for now in extremes.into_iter().flatten() {
        assert!(matches!(
            sigv4::verify(&parts, &body, &lookup, now),
            Err(SigV4Error::Expired(_))
        ));
    }
}

#[test]
fn sigv4_date_header_instead_of_x_amz_date() {
    let mut req = base("GET", "/?Action=ListMetrics", b"");
    req.headers_mut()
        .insert("date", "placeholder".parse().unwrap());
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert_eq!(req.headers()["date"], "Fri, 02 Jan 2026 03:04:05 -0000");
    assert!(req.headers().get("x-amz-date").is_none());
    assert!(verify_at(&req, T).is_ok());
    assert!(matches!(
        verify_at(&req, T + 901),
        Err(SigV4Error::Expired(_))
    ));
    // X-Amz-Date takes precedence over Date; a different one breaks the signature's scope.
    let mut both = clone(&req);
    both.headers_mut()
        .insert("x-amz-date", "20260102T030406Z".parse().unwrap());
    mismatch(&both);
}

#[test]
fn sigv4_parse_scope_without_verifying() {
    let req = signed("POST", "/", b"{}");
    let (parts, _) = clone(&req).into_parts();
    let scope = sigv4::parse_scope(&parts).unwrap().unwrap();
    assert_eq!(scope.service, "monitoring");
    assert_eq!(scope.access_key_id, AKID);
    // Bad signature, expired, unknown key: parse_scope does not care.
    let mut other = base("POST", "/", b"{}");
    sigv4::sign(
        &mut other,
        "SOMEONE",
        "x",
        "eu-west-3",
        "logs",
        at(T - 86_400),
    );
    let (parts, _) = other.into_parts();
    assert_eq!(
        sigv4::parse_scope(&parts),
        Some(Ok(sigv4::Scope {
            access_key_id: "SOMEONE".into(),
            date: "20260101".into(),
            region: "eu-west-3".into(),
            service: "logs".into()
        }))
    );
    // Malformed: an error.
    let (parts, _) = with_auth("AWS4-HMAC-SHA256 Credential=x").into_parts();
    assert!(matches!(
        sigv4::parse_scope(&parts),
        Some(Err(SigV4Error::Incomplete(_)))
    ));
}

fn presigned(uri: &str, expires: u32, service: &str, token: Option<&str>) -> http::Request<Bytes> {
    let mut req = http::Request::builder()
        .method("GET")
        .uri(uri)
        .header("host", "localhost:4566")
        .body(Bytes::new())
        .unwrap();
    sigv4::presign(
        &mut req,
        AKID,
        SECRET,
        token,
        "us-east-1",
        service,
        at(T),
        expires,
    );
    req
}

#[test]
fn sigv4_presigned_round_trip_and_expiry() {
    for service in ["monitoring", "s3"] {
        for token in [None, Some("tok/en+=")] {
            let req = presigned("/bucket/key?Action=ListMetrics&x=a%20b", 60, service, token);
            let q = req.uri().query().unwrap();
            assert!(q.starts_with("Action=ListMetrics&x=a%20b&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-east-1%2F"), "{q}");
            assert_eq!(
                token.is_some(),
                q.contains("X-Amz-Security-Token=tok%2Fen%2B%3D")
            );
            assert!(verify_at(&req, T).is_ok(), "{service}");
            assert!(verify_at(&req, T + 60).is_ok());
            assert_eq!(
                verify_at(&req, T + 61),
                Err(SigV4Error::Expired("Request has expired".into()))
            );
            assert!(verify_at(&req, T - 900).is_ok());
            assert!(
                matches!(verify_at(&req, T - 901), Err(SigV4Error::Expired(m)) if m.starts_with("Signature not yet current"))
            );
            // Tampered query.
            let mut t = clone(&req);
            *t.uri_mut() = format!("{}?{}", req.uri().path(), q.replace("x=a%20b", "x=a%20c"))
                .parse()
                .unwrap();
            mismatch(&t);
        }
    }
    // A week is the longest.
    let req = presigned("/", 604_800, "monitoring", None);
    assert!(verify_at(&req, T + 604_800).is_ok());
}

#[test]
fn sigv4_presigned_parameter_errors() {
    let req = presigned("/?Action=ListMetrics", 60, "monitoring", None);
    let q = req.uri().query().unwrap().to_string();
    let with_query = |q: &str| {
        let mut r = clone(&req);
        *r.uri_mut() = format!("/?{q}").parse().unwrap();
        r
    };
    let required = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
    for drop in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|p| !p.starts_with(&format!("{drop}=")))
            .collect();
        assert_eq!(incomplete(&with_query(&kept.join("&"))), required, "{drop}");
    }
    let set = |name: &str, value: &str| {
        let parts: Vec<String> = q
            .split('&')
            .map(|p| {
                if p.starts_with(&format!("{name}=")) {
                    format!("{name}={value}")
                } else {
                    p.to_string()
                }
            })
            .collect();
        with_query(&parts.join("&"))
    };
    assert_eq!(incomplete(&set("X-Amz-Expires", "604801")), "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds");
    assert_eq!(
        incomplete(&set("X-Amz-Expires", "-5")),
        "X-Amz-Expires must be non-negative"
    );
    assert_eq!(
        incomplete(&set("X-Amz-Expires", "0")),
        "X-Amz-Expires must be at least 1 second"
    );
    assert_eq!(
        incomplete(&set("X-Amz-Expires", "soon")),
        "X-Amz-Expires should be a number"
    );
    assert_eq!(
        incomplete(&set("X-Amz-Algorithm", "AWS4-HMAC-SHA1")),
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). "
    );
    assert!(incomplete(&set("X-Amz-Date", "2026"))
        .starts_with("Date must be in ISO-8601 'basic format'. Got '2026'."));
    assert_eq!(
        mismatch(&set("X-Amz-SignedHeaders", "x-amz-date")),
        "'Host' must be a 'SignedHeader' in the AWS Authorization."
    );
    assert!(mismatch(&set("X-Amz-Date", "20260103T000000Z"))
        .starts_with("Date in Credential scope does not match"));
    // The Authorization header wins over presigned parameters.
    let mut both = clone(&req);
    both.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
    );
    assert!(incomplete(&both).contains("Authorization=AWS4-HMAC-SHA256 Credential=x"));
}

#[test]
fn sigv4_host_from_authority_when_no_host_header() {
    // HTTP/2 requests carry the host as :authority (the URI), not a Host header.
    let req = signed("POST", "/", b"{}");
    let mut h2 = clone(&req);
    h2.headers_mut().remove("host");
    *h2.uri_mut() = "http://localhost:4566/".parse().unwrap();
    assert!(verify_at(&h2, T).is_ok());
    *h2.uri_mut() = "http://localhost:4567/".parse().unwrap();
    mismatch(&h2);

    // The signer fills host from the URI, dropping the scheme's default port.
    let mut req = http::Request::builder()
        .method("GET")
        .uri("https://monitoring.us-east-1.amazonaws.com:443/")
        .body(Bytes::new())
        .unwrap();
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert_eq!(req.headers()["host"], "monitoring.us-east-1.amazonaws.com");
    assert!(verify_at(&req, T).is_ok());
    let mut req = http::Request::builder()
        .method("GET")
        .uri("http://LocalHost:8080/")
        .body(Bytes::new())
        .unwrap();
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert_eq!(req.headers()["host"], "localhost:8080");
}

#[test]
fn sigv4_repeated_header_values() {
    let mut req = base("POST", "/", b"{}");
    req.headers_mut()
        .append("x-multi", "  first  value ".parse().unwrap());
    req.headers_mut()
        .append("x-multi", "second".parse().unwrap());
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    assert!(req.headers()["authorization"]
        .to_str()
        .unwrap()
        .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-multi,"));
    let (parts, body) = clone(&req).into_parts();
    let e = sigv4::explain(&parts, &body).unwrap();
    assert!(
        e.canonical_request
            .contains("\nx-multi:first value,second\n"),
        "{}",
        e.canonical_request
    );
    assert!(verify_at(&req, T).is_ok());
    // Order of repeated values matters.
    let mut swapped = clone(&req);
    swapped.headers_mut().remove("x-multi");
    swapped
        .headers_mut()
        .append("x-multi", "second".parse().unwrap());
    swapped
        .headers_mut()
        .append("x-multi", "first value".parse().unwrap());
    mismatch(&swapped);
    // Whitespace differences are canonicalized away.
    let mut spaced = clone(&req);
    spaced.headers_mut().remove("x-multi");
    spaced
        .headers_mut()
        .append("x-multi", "first \t value".parse().unwrap());
    spaced
        .headers_mut()
        .append("x-multi", " second".parse().unwrap());
    assert!(verify_at(&spaced, T).is_ok());
}

#[test]
fn sigv4_signer_skips_unsignable_headers() {
    let mut req = base("POST", "/", b"{}");
    for (k, v) in [
        ("user-agent", "ua"),
        ("expect", "100-continue"),
        ("x-amzn-trace-id", "Root=1"),
        ("connection", "keep-alive"),
    ] {
        req.headers_mut().insert(k, v.parse().unwrap());
    }
    sigv4::sign(&mut req, AKID, SECRET, "us-east-1", "monitoring", at(T));
    let auth = req.headers()["authorization"].to_str().unwrap().to_string();
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target,"),
        "{auth}"
    );
    // Those may change in transit.
    req.headers_mut()
        .insert("user-agent", "proxy".parse().unwrap());
    req.headers_mut().remove("connection");
    assert!(verify_at(&req, T).is_ok());
}

/// A small deterministic generator (no external crates): xorshift64*.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
// `u64::is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn sigv4_round_trip_varied_requests() {
    let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"];
    let paths = [
        "/",
        "/a/b/c",
        "/a/./b/../c//d/",
        "/caf%C3%A9/%E2%9C%93",
        "/with%20space/and+plus",
        "/bucket/key%2Fwith%2Fslashes",
        "/x*y$z!'()",
        "/~user/.hidden/",
        "/..",
    ];
    let queries = [
        "",
        "a=1",
        "b=2&a=1&a=0",
        "Action=PutMetricData&Version=2010-08-01&MetricData.member.1.MetricName=m%201",
        "flag&empty=&x=%2F%2B%3D",
        "q=a+b&r=%7e&s=%41",
        "k=%C3%BC&K=upper&_=under",
        "list-type=2&prefix=a%2Fb&max-keys=10",
    ];
    let services = ["monitoring", "logs", "s3", "execute-api", "sts"];
    let regions = ["us-east-1", "eu-central-1", "ap-southeast-2", "local"];
    let extra_headers: [&[(&str, &str)]; 4] = [
        &[],
        &[("x-custom", "  padded   value  ")],
        &[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("x-amz-target", "Svc.Op"),
        ],
        &[
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-b", "two\twords"),
            ("accept", "*/*"),
        ],
    ];
    let mut big = vec![0u8; 1 << 20];
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for b in big.iter_mut() {
        *b = g.next() as u8;
    }
    let bodies: [&[u8]; 5] = [
        b"",
        b"{}",
        b"Action=ListMetrics&Version=2010-08-01",
        &[0, 159, 146, 150, 255],
        &big,
    ];

    let mut g = Gen(42);
    for i in 0..300 {
        let method = *g.pick(&methods);
        let path = *g.pick(&paths);
        let query = *g.pick(&queries);
        let service = *g.pick(&services);
        let region = *g.pick(&regions);
        let headers = *g.pick(&extra_headers);
        let body = *g.pick(&bodies[..if i % 25 == 0 { 5 } else { 4 }]);
        let token = if g.next() % 3 == 0 {
            Some("FwoGZXIvYXdzEExample/+=")
        } else {
            None
        };
        let use_date = g.next() % 5 == 0;
        let uri = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let ctx = format!(
            "#{i} {method} {uri} {service} {region} token={} date={use_date} body={}",
            token.is_some(),
            body.len()
        );

        let mut b = http::Request::builder()
            .method(method)
            .uri(uri.as_str())
            .header("host", "svc.example.com:8443");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if use_date {
            b = b.header("date", "x");
        }
        let mut req = b.body(Bytes::copy_from_slice(body)).unwrap();
        if g.next() % 2 == 0 {
            sigv4::sign_with_token(&mut req, AKID, SECRET, token, region, service, at(T));
            assert!(req.headers().contains_key("authorization"), "{ctx}");
        } else {
            sigv4::presign(&mut req, AKID, SECRET, token, region, service, at(T), 300);
            assert!(
                req.uri().query().unwrap().contains("X-Amz-Signature="),
                "{ctx}"
            );
        }
        let scope = verify_at(&req, T + 30).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
        assert_eq!(
            (scope.region.as_str(), scope.service.as_str()),
            (region, service),
            "{ctx}"
        );

        // Any change to the signed method or URI breaks it.
        let mut t = clone(&req);
        *t.method_mut() = if method == "GET" {
            http::Method::POST
        } else {
            http::Method::GET
        };
        assert!(
            matches!(verify_at(&t, T + 30), Err(SigV4Error::Mismatch(_))),
            "{ctx}: method"
        );
        let mut t = clone(&req);
        let pq = req.uri().path_and_query().unwrap().as_str();
        let changed = match pq.split_once('?') {
            Some((p, q)) => format!("{p}?zz=1&{q}"),
            None => format!("{pq}?zz=1"),
        };
        *t.uri_mut() = changed.parse().unwrap();
        assert!(
            matches!(verify_at(&t, T + 30), Err(SigV4Error::Mismatch(_))),
            "{ctx}: query"
        );
    }
}

/// Prints (does not assert) verify timings. Run with `cargo test --release -p opsloop-wire --test
/// sigv4_verify sigv4_timing -- --nocapture` for meaningful numbers.
#[test]
fn sigv4_timing_report() {
    let body = vec![b'x'; 1 << 20];
    let mut unsigned = base("POST", "/", &body);
    unsigned
        .headers_mut()
        .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
    sigv4::sign(
        &mut unsigned,
        AKID,
        SECRET,
        "us-east-1",
        "monitoring",
        at(T),
    );
    let hashed = signed("POST", "/", &body);
    let small = signed(
        "POST",
        "/",
        br#"{"Namespace":"AWS/EC2","MetricName":"CPUUtilization"}"#,
    );

    let time = |req: &http::Request<Bytes>, n: u32| {
        let (parts, body) = clone(req).into_parts();
        let start = Instant::now();
        for _ in 0..n {
            assert!(sigv4::verify(&parts, &body, &lookup, at(T)).is_ok());
        }
        start.elapsed() / n
    };
    let sha = {
        let start = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(<sha2::Sha256 as sha2::Digest>::digest(
                std::hint::black_box(&body),
            ));
        }
        start.elapsed() / 20
    };
    let verify_unsigned_1mb = time(&unsigned, 2000);
    let verify_small = time(&small, 2000);
    let verify_hashed_1mb = time(&hashed, 20);
    println!(
        "sigv4 timing ({}): verify 1 MiB body w/o body hash {verify_unsigned_1mb:?}; verify small body {verify_small:?}; \
         verify 1 MiB body incl. hash {verify_hashed_1mb:?}; sha256(1 MiB) alone {sha:?}",
        if cfg!(debug_assertions) { "debug build" } else { "release build" }
    );
}
