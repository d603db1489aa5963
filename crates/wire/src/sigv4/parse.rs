//! Parsing SigV4 authorization out of a request without verifying it: the `Authorization` header
//! (`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`), the presigned query
//! parameters (`X-Amz-Algorithm`, `X-Amz-Credential`, ...), the credential scope and the request
//! timestamp. Every failure is a [`SigV4Error`] carrying AWS's wording where AWS's is known.

use std::borrow::Cow;

use http::header::{AUTHORIZATION, CONTENT_TYPE, DATE};

use super::clock::{self, Stamp};
use super::{SigV4Error, ALGORITHM, MAX_PRESIGNED_EXPIRES};

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header value, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    /// `AWS4-HMAC-SHA256`.
    pub algorithm: &'a str,
    /// `AKID/YYYYMMDD/region/service/aws4_request` (see [`parse_credential`]).
    pub credential: &'a str,
    /// `host;x-amz-date;...`.
    pub signed_headers: &'a str,
    /// Lowercase hex HMAC-SHA256.
    pub signature: &'a str,
}

/// The five slash-separated elements of a credential, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD` (unchecked here).
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// `aws4_request` in a valid credential (unchecked here).
    pub terminator: &'a str,
}

/// Parse an `Authorization` header value. Checks its shape only: the algorithm, that every
/// parameter is a `key=value` pair, and that `Credential`, `SignedHeaders` and `Signature` are present.
pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, SigV4Error> {
    parse_authorization_with(value, true)
}

/// [`parse_authorization`], also naming a missing date header in the error as AWS does.
pub(crate) fn parse_authorization_with(
    value: &str,
    has_date: bool,
) -> Result<AuthorizationHeader<'_>, SigV4Error> {
    let trimmed = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (algorithm, rest) = match trimmed.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, ""),
    };
    if !algorithm.starts_with("AWS4-") {
        // Not SigV4 at all (`Bearer ...`, SigV2 `AWS AKID:sig`, ...): AWS names every missing part.
        return Err(incomplete_header(value, [true, true, true], has_date));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for piece in rest.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
        if piece.is_empty() {
            continue;
        }
        let Some((key, val)) = piece.split_once('=') else {
            return Err(SigV4Error::Incomplete(format!(
                "'{piece}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() && !val.is_empty() {
            *slot = Some(val);
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) if has_date => {
            if algorithm != ALGORITHM {
                return Err(unsupported_algorithm(algorithm));
            }
            Ok(AuthorizationHeader {
                algorithm,
                credential,
                signed_headers,
                signature,
            })
        }
        (c, h, s) => Err(incomplete_header(
            value,
            [c.is_none(), s.is_none(), h.is_none()],
            has_date,
        )),
    }
}

fn unsupported_algorithm(algorithm: &str) -> SigV4Error {
    SigV4Error::Incomplete(format!(
        "Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now). "
    ))
}

/// `missing` = [Credential, Signature, SignedHeaders], AWS's order.
fn incomplete_header(value: &str, missing: [bool; 3], has_date: bool) -> SigV4Error {
    let mut msg = String::with_capacity(200 + value.len());
    for (name, absent) in ["Credential", "Signature", "SignedHeaders"]
        .iter()
        .zip(missing)
    {
        if absent {
            msg.push_str("Authorization header requires '");
            msg.push_str(name);
            msg.push_str("' parameter. ");
        }
    }
    if !has_date {
        msg.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    msg.push_str("Authorization=");
    msg.push_str(value);
    SigV4Error::Incomplete(msg)
}

/// Split a credential (`AKID/YYYYMMDD/region/service/aws4_request`) into its five elements. Trailing
/// slashes are ignored; anything but five elements is an error. The elements are not checked.
pub fn parse_credential(value: &str) -> Result<CredentialScope<'_>, SigV4Error> {
    let trimmed = value.trim_end_matches('/');
    let mut it = trimmed.split('/');
    match (it.next(), it.next(), it.next(), it.next(), it.next(), it.next()) {
        (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) => {
            Ok(CredentialScope { access_key_id, date, region, service, terminator })
        }
        _ => Err(SigV4Error::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{value}'"
        ))),
    }
}

/// Which form the authorization came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Header,
    Presigned { expires: i64 },
}

/// A request's SigV4 authorization, parsed and checked for shape and internal consistency (scope
/// terminator and date, `host` signed), but not against a clock, a key or the body.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub form: Form,
    pub credential: Cow<'a, str>,
    pub signed_headers: Cow<'a, str>,
    pub signature: Cow<'a, str>,
    pub stamp: Stamp,
}

impl Parsed<'_> {
    /// The credential's elements (already validated to be five).
    pub fn scope(&self) -> CredentialScope<'_> {
        let mut it = self.credential.trim_end_matches('/').split('/');
        CredentialScope {
            access_key_id: it.next().unwrap_or(""),
            date: it.next().unwrap_or(""),
            region: it.next().unwrap_or(""),
            service: it.next().unwrap_or(""),
            terminator: it.next().unwrap_or(""),
        }
    }

    pub fn presigned(&self) -> bool {
        matches!(self.form, Form::Presigned { .. })
    }
}

fn date_format_error(got: &str) -> SigV4Error {
    SigV4Error::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{got}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// Checks shared by both forms once the credential, signed headers and timestamp are known.
fn check_scope(credential: &str, signed_headers: &str, stamp: &Stamp) -> Result<(), SigV4Error> {
    let scope = parse_credential(credential)?;
    let mut problems = Vec::new();
    if scope.region.is_empty() {
        problems.push(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            scope.region
        ));
    }
    if scope.terminator != "aws4_request" {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            scope.terminator
        ));
    }
    if scope.date != stamp.date() {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            scope.date,
            stamp.date(),
            stamp.as_str()
        ));
    }
    if !problems.is_empty() {
        return Err(SigV4Error::Mismatch(problems.join(" ")));
    }
    if !signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(SigV4Error::Mismatch(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ));
    }
    Ok(())
}

/// Parse whichever authorization the request carries: the `Authorization` header, else presigned
/// query parameters. `None` when it carries neither.
pub(crate) fn parse_request(
    parts: &http::request::Parts,
) -> Option<Result<Parsed<'_>, SigV4Error>> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        return Some(parse_header_form(parts, value));
    }
    let query = parts.uri.query().unwrap_or("");
    if query_pairs(query).any(|(k, _)| {
        matches!(
            k,
            "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature"
        )
    }) {
        return Some(parse_presigned(query));
    }
    None
}

fn parse_header_form<'a>(
    parts: &'a http::request::Parts,
    value: &'a http::HeaderValue,
) -> Result<Parsed<'a>, SigV4Error> {
    let amz_date = parts.headers.get("x-amz-date");
    let date = parts.headers.get(DATE);
    let has_date = amz_date.is_some() || date.is_some();
    let Ok(value) = value.to_str() else {
        return Err(incomplete_header(
            &String::from_utf8_lossy(value.as_bytes()),
            [true, true, true],
            has_date,
        ));
    };
    let auth = parse_authorization_with(value, has_date)?;
    let stamp = match (amz_date, date) {
        (Some(v), _) => v.to_str().ok().and_then(clock::parse_basic),
        (None, Some(v)) => v.to_str().ok().and_then(clock::parse_http_date),
        (None, None) => None,
    };
    let Some(stamp) = stamp else {
        let got = amz_date
            .or(date)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(date_format_error(&got));
    };
    check_scope(auth.credential, auth.signed_headers, &stamp)?;
    Ok(Parsed {
        form: Form::Header,
        credential: Cow::Borrowed(auth.credential),
        signed_headers: Cow::Borrowed(auth.signed_headers),
        signature: Cow::Borrowed(auth.signature),
        stamp,
    })
}

/// Raw `(name, value)` pairs of a query string, empty pieces skipped.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn decode(v: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(v).decode_utf8_lossy()
}

const PRESIGNED_REQUIRED: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";

fn parse_presigned(query: &str) -> Result<Parsed<'_>, SigV4Error> {
    let (mut algorithm, mut credential, mut date, mut expires, mut signed_headers, mut signature) =
        (None, None, None, None, None, None);
    for (name, value) in query_pairs(query) {
        let slot = match name {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-Date" => &mut date,
            "X-Amz-Expires" => &mut expires,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(decode(value));
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    )
    else {
        return Err(SigV4Error::Incomplete(PRESIGNED_REQUIRED.to_string()));
    };
    if algorithm != ALGORITHM {
        return Err(unsupported_algorithm(&algorithm));
    }
    let stamp = clock::parse_basic(&date).ok_or_else(|| date_format_error(&date))?;
    let expires = parse_expires(&expires)?;
    check_scope(&credential, &signed_headers, &stamp)?;
    Ok(Parsed {
        form: Form::Presigned { expires },
        credential,
        signed_headers,
        signature,
        stamp,
    })
}

fn parse_expires(v: &str) -> Result<i64, SigV4Error> {
    let Ok(n) = v.parse::<i64>() else {
        return Err(SigV4Error::Incomplete(
            "X-Amz-Expires should be a number".to_string(),
        ));
    };
    if n < 0 {
        return Err(SigV4Error::Incomplete(
            "X-Amz-Expires must be non-negative".to_string(),
        ));
    }
    if n == 0 {
        return Err(SigV4Error::Incomplete(
            "X-Amz-Expires must be at least 1 second".to_string(),
        ));
    }
    if n > MAX_PRESIGNED_EXPIRES {
        return Err(SigV4Error::Incomplete(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"
                .to_string(),
        ));
    }
    Ok(n)
}

/// Whether a request without authorization looks like an awsQuery call (form body or `Action=`
/// query), whose services word the missing-token error differently.
pub(crate) fn looks_like_query_protocol(parts: &http::request::Parts) -> bool {
    let form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    form || query_pairs(parts.uri.query().unwrap_or("")).any(|(k, _)| k == "Action")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4_parse_authorization_botocore_form() {
        let v = "AWS4-HMAC-SHA256 Credential=AKID/20260102/us-east-1/monitoring/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc123";
        let a = parse_authorization(v).unwrap();
        assert_eq!(a.algorithm, "AWS4-HMAC-SHA256");
        assert_eq!(
            a.credential,
            "AKID/20260102/us-east-1/monitoring/aws4_request"
        );
        assert_eq!(a.signed_headers, "host;x-amz-date");
        assert_eq!(a.signature, "abc123");
    }

    #[test]
    fn sigv4_parse_authorization_separators_and_order() {
        // Commas without spaces, spaces without commas, any order, unknown keys ignored.
        for v in [
            "AWS4-HMAC-SHA256 Credential=A/d/r/s/aws4_request,SignedHeaders=host,Signature=ff",
            "AWS4-HMAC-SHA256 Signature=ff Credential=A/d/r/s/aws4_request SignedHeaders=host",
            "  AWS4-HMAC-SHA256\tSignedHeaders=host, , Extra=1,Signature=ff, Credential=A/d/r/s/aws4_request  ",
        ] {
            let a = parse_authorization(v).unwrap();
            assert_eq!((a.credential, a.signed_headers, a.signature), ("A/d/r/s/aws4_request", "host", "ff"), "{v}");
        }
    }

    #[test]
    fn sigv4_parse_authorization_missing_parts() {
        let v = "AWS4-HMAC-SHA256 Credential=A/d/r/s/aws4_request";
        assert_eq!(
            parse_authorization(v),
            Err(SigV4Error::Incomplete(format!(
                "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization={v}"
            )))
        );
        assert_eq!(
            parse_authorization_with("Bearer abc", false),
            Err(SigV4Error::Incomplete(
                "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
                 Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either \
                 a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc"
                    .to_string()
            ))
        );
        // An empty value counts as missing.
        assert!(matches!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=ff"),
            Err(SigV4Error::Incomplete(m)) if m.starts_with("Authorization header requires 'Credential' parameter. Authorization=")
        ));
    }

    #[test]
    fn sigv4_parse_authorization_missing_equal_sign() {
        let v = "AWS4-HMAC-SHA256 Credential= AKID/20260102/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=ff";
        assert_eq!(
            parse_authorization(v),
            Err(SigV4Error::Incomplete(format!(
                "'AKID/20260102/us-east-1/logs/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{v}'."
            )))
        );
    }

    #[test]
    fn sigv4_parse_authorization_unsupported_algorithm() {
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA25 Credential=A/d/r/s/aws4_request, SignedHeaders=host, Signature=ff"
            ),
            Err(SigV4Error::Incomplete(
                "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). "
                    .to_string()
            ))
        );
    }

    #[test]
    fn sigv4_parse_authorization_never_panics_on_odd_input() {
        for v in [
            "",
            " ",
            "AWS4-",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 ,,,",
            "AWS4-HMAC-SHA256 ===",
            "é AWS4",
            "AWS4-é x=é",
        ] {
            let _ = parse_authorization(v);
        }
        assert!(parse_authorization("AWS4-HMAC-SHA256 = , Credential=a").is_err());
    }

    #[test]
    fn sigv4_parse_credential() {
        let c = parse_credential("AKID/20260102/eu-west-1/monitoring/aws4_request").unwrap();
        assert_eq!(
            (c.access_key_id, c.date, c.region, c.service, c.terminator),
            (
                "AKID",
                "20260102",
                "eu-west-1",
                "monitoring",
                "aws4_request"
            )
        );
        assert!(parse_credential("AKID/20260102/eu-west-1/monitoring/aws4_request/").is_ok());
        assert_eq!(
            parse_credential("a/b/c/d"),
            Err(SigV4Error::Incomplete(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c/d'"
                    .to_string()
            ))
        );
        assert!(parse_credential("a/b/c/d/e/f").is_err());
    }

    #[test]
    fn sigv4_parse_expires_bounds() {
        assert_eq!(parse_expires("1"), Ok(1));
        assert_eq!(parse_expires("604800"), Ok(604_800));
        for bad in [
            "0",
            "-1",
            "604801",
            "",
            "1.5",
            "ten",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse_expires(bad), Err(SigV4Error::Incomplete(_))),
                "{bad}"
            );
        }
    }
}
