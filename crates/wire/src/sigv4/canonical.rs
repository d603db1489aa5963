//! The SigV4 canonical request and string to sign, written into a [`Sink`] so that verification can
//! stream them straight into SHA-256 / HMAC without building strings, while tests and diagnostics
//! write the same bytes into a buffer.
//!
//! What is canonicalized, and how, follows AWS's specification as botocore implements it:
//! * URI: for S3 the path exactly as sent; for every other service the path with dot segments and
//!   empty segments removed, then percent-encoded again (so `%20` becomes `%2520`), `/` kept.
//! * query: every `name=value` pair decoded and re-encoded with only `A-Z a-z 0-9 - _ . ~` left
//!   bare (uppercase hex), a bare name becoming `name=`, sorted by name then value. For a query that
//!   was sent canonically encoded (as every AWS SDK does) this is the query itself.
//! * headers: the signed header names in the order given, each with its values trimmed,
//!   internal whitespace runs collapsed to one space, and repeated values joined with `,`.

use std::borrow::Cow;

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::HmacSha256;

/// Something the canonical request can be written into.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

impl Sink for HmacSha256 {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        Mac::update(self, bytes);
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// RFC 3986 unreserved characters: never percent-encoded.
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encode every byte that is not unreserved (nor `/` when `keep_slash`), uppercase hex.
pub(crate) fn encode_into<S: Sink>(sink: &mut S, bytes: &[u8], keep_slash: bool) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            continue;
        }
        if start < i {
            sink.put(&bytes[start..i]);
        }
        sink.put(&[
            b'%',
            HEX_UPPER[usize::from(b >> 4)],
            HEX_UPPER[usize::from(b & 0x0f)],
        ]);
        start = i + 1;
    }
    if start < bytes.len() {
        sink.put(&bytes[start..]);
    }
}

/// Percent-encode into a new string (unreserved characters only left bare).
pub(crate) fn encode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 8);
    encode_into(&mut out, s.as_bytes(), false);
    // Only ASCII is ever written.
    String::from_utf8(out).unwrap_or_default()
}

/// Whether a path needs no dot-segment or empty-segment removal: it starts with `/` and no segment
/// is empty (except a trailing one), `.` or `..`.
fn path_is_normal(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || seg == "." || seg == ".." {
            return false;
        }
    }
    true
}

/// The canonical URI.
pub(crate) fn write_path<S: Sink>(sink: &mut S, raw: &str, s3: bool) {
    if raw.is_empty() {
        sink.put(b"/");
        return;
    }
    if s3 {
        sink.put(raw.as_bytes());
        return;
    }
    if path_is_normal(raw) {
        encode_into(sink, raw.as_bytes(), true);
        return;
    }
    // RFC 3986 remove_dot_segments, also dropping empty segments, as botocore does.
    let mut out: Vec<&str> = Vec::new();
    for seg in raw.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(seg),
        }
    }
    if raw.starts_with('/') {
        sink.put(b"/");
    }
    for (i, seg) in out.iter().enumerate() {
        if i > 0 {
            sink.put(b"/");
        }
        encode_into(sink, seg.as_bytes(), true);
    }
    if raw.ends_with('/') && !out.is_empty() {
        sink.put(b"/");
    }
}

fn upper_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether a query component is already in canonical form (decoding and re-encoding is the identity).
fn is_canonical_component(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_unreserved(c) {
            i += 1;
            continue;
        }
        if c != b'%' || i + 2 >= b.len() {
            return false;
        }
        match (upper_hex_value(b[i + 1]), upper_hex_value(b[i + 2])) {
            (Some(hi), Some(lo)) if !is_unreserved(hi << 4 | lo) => i += 3,
            _ => return false,
        }
    }
    true
}

/// One query name or value in canonical form.
pub(crate) fn canonical_component(raw: &str) -> Cow<'_, str> {
    if is_canonical_component(raw.as_bytes()) {
        return Cow::Borrowed(raw);
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode(raw.as_bytes()).collect();
    let mut out = Vec::with_capacity(decoded.len() * 3);
    encode_into(&mut out, &decoded, false);
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// The canonical query string. `exclude_signature` drops `X-Amz-Signature` (presigned form).
pub(crate) fn write_query<S: Sink>(sink: &mut S, raw: &str, exclude_signature: bool) {
    if raw.is_empty() {
        return;
    }
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(8);
    for piece in raw.split('&') {
        if piece.is_empty() {
            continue;
        }
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let name = canonical_component(name);
        if exclude_signature && name == "X-Amz-Signature" {
            continue;
        }
        pairs.push((name, canonical_component(value)));
    }
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        sink.put(name.as_bytes());
        sink.put(b"=");
        sink.put(value.as_bytes());
    }
}

/// Write a header value trimmed, with whitespace runs collapsed to one space.
///
/// Values are bytes on the wire. A value that is ASCII or valid UTF-8 is used as is (what the Go, Java
/// and JavaScript SDKs sign). Anything else is read as Latin-1 and written as UTF-8: Python's
/// `http.client` sends `str` header values Latin-1 encoded while botocore signs their UTF-8 form, and
/// Python's `str.split()` then also counts U+0085 and U+00A0 as whitespace.
pub(crate) fn write_header_value<S: Sink>(sink: &mut S, value: &[u8]) {
    let latin1 = !value.is_ascii() && std::str::from_utf8(value).is_err();
    let is_space = |b: &u8| {
        matches!(*b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
            || (latin1 && matches!(*b, 0x85 | 0xa0))
    };
    let mut first = true;
    for word in value.split(is_space).filter(|w| !w.is_empty()) {
        if !first {
            sink.put(b" ");
        }
        first = false;
        if latin1 {
            for &b in word {
                if b < 0x80 {
                    sink.put(&[b]);
                } else {
                    sink.put(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]);
                }
            }
        } else {
            sink.put(word);
        }
    }
}

/// Everything the canonical request is made of.
pub(crate) struct Canonical<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Leave `X-Amz-Signature` out of the query (presigned form).
    pub exclude_signature: bool,
    /// S3 rules for the URI (no normalization, no second encoding).
    pub s3: bool,
    pub headers: &'a http::HeaderMap,
    /// Used for a signed `host` when the request has no `Host` header (HTTP/2 `:authority`).
    pub authority: Option<&'a str>,
    /// The `SignedHeaders` list, exactly as the client sent it.
    pub signed_headers: &'a str,
    /// The hashed payload (hex) or `UNSIGNED-PAYLOAD`.
    pub payload: &'a [u8],
}

/// Write the canonical request.
pub(crate) fn write_canonical_request<S: Sink>(sink: &mut S, c: &Canonical<'_>) {
    if c.method.bytes().any(|b| b.is_ascii_lowercase()) {
        sink.put(c.method.to_ascii_uppercase().as_bytes());
    } else {
        sink.put(c.method.as_bytes());
    }
    sink.put(b"\n");
    write_path(sink, c.path, c.s3);
    sink.put(b"\n");
    write_query(sink, c.query, c.exclude_signature);
    sink.put(b"\n");
    for name in c.signed_headers.split(';') {
        if name.is_empty() {
            continue;
        }
        sink.put(name.as_bytes());
        sink.put(b":");
        let mut any = false;
        for value in c.headers.get_all(name) {
            if any {
                sink.put(b",");
            }
            write_header_value(sink, value.as_bytes());
            any = true;
        }
        if !any && name.eq_ignore_ascii_case("host") {
            if let Some(authority) = c.authority {
                write_header_value(sink, authority.as_bytes());
            }
        }
        sink.put(b"\n");
    }
    sink.put(b"\n");
    sink.put(c.signed_headers.as_bytes());
    sink.put(b"\n");
    sink.put(c.payload);
}

/// Write the string to sign, given the hex SHA-256 of the canonical request.
pub(crate) fn write_string_to_sign<S: Sink>(
    sink: &mut S,
    timestamp: &str,
    date: &str,
    region: &str,
    service: &str,
    canonical_hash_hex: &[u8],
) {
    sink.put(b"AWS4-HMAC-SHA256\n");
    sink.put(timestamp.as_bytes());
    sink.put(b"\n");
    sink.put(date.as_bytes());
    sink.put(b"/");
    sink.put(region.as_bytes());
    sink.put(b"/");
    sink.put(service.as_bytes());
    sink.put(b"/aws4_request\n");
    sink.put(canonical_hash_hex);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str, s3: bool) -> String {
        let mut out = Vec::new();
        write_path(&mut out, raw, s3);
        String::from_utf8(out).unwrap()
    }

    fn query(raw: &str, exclude: bool) -> String {
        let mut out = Vec::new();
        write_query(&mut out, raw, exclude);
        String::from_utf8(out).unwrap()
    }

    fn header(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header_value(&mut out, raw);
        out
    }

    // Path and `encode` expectations were computed with botocore 1.43.11
    // (SigV4Auth._normalize_url_path, and quote(s, safe='-_.~') as botocore's percent_encode uses).
    // Query expectations apply AWS's documented rule (decode, re-encode all but unreserved characters,
    // sort by name then value); for canonically encoded input they equal botocore's
    // _canonical_query_string_url, which sorts the query as sent.
    #[test]
    fn sigv4_canonical_path_non_s3() {
        assert_eq!(path("/", false), "/");
        assert_eq!(path("", false), "/");
        assert_eq!(path("/a/b/", false), "/a/b/");
        assert_eq!(path("/a/./b/../c//d/", false), "/a/c/d/");
        assert_eq!(path("/../../x/..", false), "/");
        assert_eq!(path("//", false), "/");
        assert_eq!(path("/a%20b/%7E~", false), "/a%2520b/%257E~");
        assert_eq!(path("/x y*$!", false), "/x%20y%2A%24%21");
        assert_eq!(path("/a/%2E%2E/b", false), "/a/%252E%252E/b");
    }

    #[test]
    fn sigv4_canonical_path_s3_is_raw() {
        assert_eq!(path("/b/a%20b/./c//d", true), "/b/a%20b/./c//d");
        assert_eq!(path("", true), "/");
    }

    #[test]
    fn sigv4_canonical_query() {
        assert_eq!(query("", false), "");
        assert_eq!(query("b=2&a=1", false), "a=1&b=2");
        assert_eq!(query("a=2&a=10&a=1", false), "a=1&a=10&a=2");
        assert_eq!(query("flag&x=", false), "flag=&x=");
        assert_eq!(query("A=1&a=2&B=3", false), "A=1&B=3&a=2");
        assert_eq!(query("k=a%2fb", false), "k=a%2Fb");
        assert_eq!(query("k=%41%7e", false), "k=A~");
        assert_eq!(query("k=a b*", false), "k=a%20b%2A");
        assert_eq!(query("k=a+b", false), "k=a%2Bb");
        assert_eq!(query("k=100%", false), "k=100%25");
        assert_eq!(query("k=%zz", false), "k=%25zz");
        assert_eq!(query("a=b=c", false), "a=b%3Dc");
        assert_eq!(query("x=1&&y=2&", false), "x=1&y=2");
        assert_eq!(query("X-Amz-Signature=abc&a=1", true), "a=1");
        assert_eq!(
            query("X-Amz-Signature=abc&a=1", false),
            "X-Amz-Signature=abc&a=1"
        );
        assert_eq!(query("k=%C3%BC", false), "k=%C3%BC");
    }

    #[test]
    fn sigv4_canonical_header_values() {
        assert_eq!(header(b"  a   b    c  "), b"a b c");
        assert_eq!(header(b"one\t\ttwo"), b"one two");
        assert_eq!(header(b""), b"");
        assert_eq!(header(b"   "), b"");
        // Latin-1 bytes as http.client sends them: 'caf\xe9\xa0 \xa0x' -> 'café x'.
        assert_eq!(header(b"caf\xe9\xa0 \xa0x"), "café x".as_bytes());
        // Valid UTF-8 is kept as is; U+00A0 (C2 A0) is not collapsed.
        assert_eq!(header("café\u{a0}x".as_bytes()), "café\u{a0}x".as_bytes());
    }

    #[test]
    fn sigv4_canonical_encode() {
        assert_eq!(
            encode("AKID/20260102/us-east-1/s3/aws4_request"),
            "AKID%2F20260102%2Fus-east-1%2Fs3%2Faws4_request"
        );
        assert_eq!(encode("host;x-amz-date"), "host%3Bx-amz-date");
        assert_eq!(encode("a+b=/ü~"), "a%2Bb%3D%2F%C3%BC~");
    }
}
