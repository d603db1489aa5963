//! A small JSON reader of our own, for two jobs serde_json cannot do for us: parsing pattern text
//! while keeping each number's literal text (AWS's numeric rules are about decimal digits, not
//! doubles) and byte offsets for error messages, and reading the members of raw event bytes that
//! rules mention (see `scan`).

use std::borrow::Cow;

use crate::bits::{Cursor, QUOTES};

/// A parsed pattern document. Objects keep member order; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    Str(String),
    Num(String),
    Bool(bool),
    Null,
}

/// A syntax error: what went wrong and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub msg: String,
    pub at: usize,
}

/// A string's raw bytes (quotes included), whether it has escapes, and its content's signature.
pub(crate) type RawKey<'a> = (&'a [u8], bool, (usize, u64));

/// Nesting deeper than this is refused (patterns and events alike), so recursion stays bounded.
pub(crate) const MAX_DEPTH: usize = 256;

/// A cursor over JSON bytes.
pub(crate) struct Reader<'a> {
    pub b: &'a [u8],
    pub i: usize,
    /// Where the quotes and backslashes of `b` are, a block at a time.
    pub q: Cursor<QUOTES>,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader {
            b,
            i: 0,
            q: Cursor::new(),
        }
    }

    /// The index of the first `"` or `\\` at or after `j`.
    #[inline(always)]
    pub fn special(&mut self, j: usize) -> Option<usize> {
        self.q.next(self.b, j)
    }

    /// The index after the string whose opening quote is at `i` (unvalidated).
    #[inline(always)]
    pub fn skip_str(&mut self, i: usize) -> Option<usize> {
        let mut j = i + 1;
        loop {
            let k = self.special(j)?;
            if self.b[k] == b'"' {
                return Some(k + 1);
            }
            j = k + 2;
        }
    }

    pub fn err<T>(&self, msg: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            msg: msg.into(),
            at: self.i,
        })
    }

    #[inline(always)]
    pub fn ws(&mut self) {
        // Every JSON whitespace byte is <= b' ', and few other bytes are: one compare per byte
        // in the usual case.
        while let Some(&c) = self.b.get(self.i) {
            if c <= b' ' && (c == b' ' || c == b'\n' || c == b'\r' || c == b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline(always)]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    pub fn expect(&mut self, c: u8) -> Result<(), SyntaxError> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            return Ok(());
        }
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("expected '{}'", c as char))
        }
    }

    /// After the whole document: only whitespace may follow.
    pub fn end(&mut self) -> Result<(), SyntaxError> {
        if self.peek().is_some() {
            return self.err("Unexpected content after the end of the JSON document");
        }
        Ok(())
    }

    /// A string starting at the opening quote; borrowed when it has no escapes.
    pub fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.expect(b'"')?;
        let start = self.i;
        let b = self.b;
        // Fast path: find the closing quote with no backslash before it.
        let mut j = start;
        while j < b.len() {
            match b[j] {
                b'"' => {
                    let s = std::str::from_utf8(&b[start..j]).map_err(|_| SyntaxError {
                        msg: "Invalid UTF-8 in string".into(),
                        at: start,
                    })?;
                    if s.bytes().any(|c| c < 0x20) {
                        return self.err("Illegal unquoted control character in string");
                    }
                    self.i = j + 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                _ => j += 1,
            }
        }
        // Slow path with escapes.
        let mut out: Vec<u8> = b[start..j].to_vec();
        self.i = j;
        loop {
            let Some(&c) = b.get(self.i) else {
                return self.err("Unexpected end of input in a string");
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = b.get(self.i) else {
                        return self.err("Unexpected end of input in a string");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if b.get(self.i) == Some(&b'\\') && b.get(self.i + 1) == Some(&b'u')
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return self.err("Invalid surrogate pair in string");
                                    }
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    return self.err("Unpaired surrogate in string");
                                }
                            } else if (0xDC00..0xE000).contains(&cp) {
                                return self.err("Unpaired surrogate in string");
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return self.err("Unrecognized character escape in string"),
                    }
                }
                c if c < 0x20 => return self.err("Illegal unquoted control character in string"),
                c => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| SyntaxError {
                msg: "Invalid UTF-8 in string".into(),
                at: start,
            })
    }

    /// A string's raw bytes, quotes included, unvalidated; and whether it has escapes.
    #[inline(always)]
    pub fn raw_string(&mut self) -> Result<(&'a [u8], bool), SyntaxError> {
        let b = self.b;
        let start = self.i;
        let mut j = start + 1;
        let mut escaped = false;
        while let Some(k) = self.special(j) {
            if b[k] == b'"' {
                self.i = k + 1;
                return Ok((&b[start..k + 1], escaped));
            }
            escaped = true;
            j = k + 2;
        }
        self.i = b.len();
        self.err("Unexpected end of input in a string")
    }

    /// Like `raw_string`, also giving the (length, first eight bytes) signature of the unescaped
    /// content (meaningful only when there are no escapes), computed in the same pass.
    #[inline(always)]
    pub fn raw_string_sig(&mut self) -> Result<RawKey<'a>, SyntaxError> {
        let b = self.b;
        let start = self.i;
        if let Some(k) = self.special(start + 1) {
            if b[k] == b'"' {
                // No escapes: the signature is the first (up to) eight bytes, read at once.
                let len = k - start - 1;
                let w = if start + 9 <= b.len() {
                    let full = u64::from_le_bytes(b[start + 1..start + 9].try_into().unwrap());
                    if len >= 8 {
                        full
                    } else {
                        full & ((1u64 << (8 * len)) - 1)
                    }
                } else {
                    let mut w = 0u64;
                    for (i, &c) in b[start + 1..k].iter().take(8).enumerate() {
                        w |= (c as u64) << (8 * i);
                    }
                    w
                };
                self.i = k + 1;
                return Ok((&b[start..k + 1], false, (len, w)));
            }
        }
        let mut j = start + 1;
        let mut escaped = false;
        let mut w = 0u64;
        while let Some(&c) = b.get(j) {
            if c == b'"' {
                self.i = j + 1;
                return Ok((&b[start..j + 1], escaped, (j - start - 1, w)));
            }
            if c == b'\\' {
                escaped = true;
                j += 1;
            } else if j - start - 1 < 8 {
                w |= (c as u64) << (8 * (j - start - 1));
            }
            j += 1;
        }
        self.i = b.len();
        self.err("Unexpected end of input in a string")
    }

    /// A string value read leniently (control characters let through), borrowed when it has no
    /// escapes: for event values, which AWS has validated before any rule sees them.
    #[inline]
    pub fn lenient_string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        let at = self.i;
        let (raw, escaped) = self.raw_string()?;
        if escaped {
            self.i = at;
            return self.string();
        }
        std::str::from_utf8(&raw[1..raw.len() - 1])
            .map(Cow::Borrowed)
            .map_err(|_| SyntaxError {
                msg: "Invalid UTF-8 in string".into(),
                at,
            })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let Some(h) = self.b.get(self.i..self.i + 4) else {
            return self.err("Unexpected end of input in a \\u escape");
        };
        let mut v = 0u32;
        for &c in h {
            let d = (c as char).to_digit(16);
            match d {
                Some(d) => v = v * 16 + d,
                None => return self.err("Invalid \\u escape in string"),
            }
        }
        self.i += 4;
        Ok(v)
    }

    /// A number's literal text (validated against JSON's grammar).
    pub fn number(&mut self) -> Result<&'a str, SyntaxError> {
        self.ws();
        let b = self.b;
        let start = self.i;
        let mut j = start;
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(c) if c.is_ascii_digit() => {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            _ => {
                self.i = j;
                return self.err("Invalid number");
            }
        }
        if b.get(j) == Some(&b'.') {
            j += 1;
            if !b.get(j).is_some_and(u8::is_ascii_digit) {
                self.i = j;
                return self.err("Invalid number: decimal point must be followed by a digit");
            }
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        if matches!(b.get(j), Some(b'e') | Some(b'E')) {
            j += 1;
            if matches!(b.get(j), Some(b'+') | Some(b'-')) {
                j += 1;
            }
            if !b.get(j).is_some_and(u8::is_ascii_digit) {
                self.i = j;
                return self.err("Invalid number: exponent must have digits");
            }
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        self.i = j;
        // All ASCII by construction.
        Ok(std::str::from_utf8(&b[start..j]).unwrap_or("0"))
    }

    /// A literal `true`, `false` or `null`.
    pub fn word(&mut self) -> Result<J, SyntaxError> {
        self.ws();
        let rest = &self.b[self.i..];
        for (w, v) in [
            (&b"true"[..], J::Bool(true)),
            (b"false", J::Bool(false)),
            (b"null", J::Null),
        ] {
            if rest.starts_with(w) {
                self.i += w.len();
                return Ok(v);
            }
        }
        self.err("Unrecognized token: was expecting a JSON value")
    }

    /// A whole value as a `J` tree.
    pub fn value(&mut self, depth: usize) -> Result<J, SyntaxError> {
        if depth > MAX_DEPTH {
            return self.err("JSON nesting too deep");
        }
        match self.peek() {
            None => self.err("Unexpected end-of-input: expected a JSON value"),
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(J::Obj(members));
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return self.err(
                            "Unexpected character: was expecting double-quote to start field name",
                        );
                    }
                    let k = self.string()?.into_owned();
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    members.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(J::Obj(members));
                        }
                        None => {
                            return self
                                .err("Unexpected end-of-input: expected close marker for OBJECT")
                        }
                        _ => return self.err(
                            "Unexpected character: was expecting comma to separate Object entries",
                        ),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(J::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(J::Arr(items));
                        }
                        None => {
                            return self
                                .err("Unexpected end-of-input: expected close marker for ARRAY")
                        }
                        _ => return self.err(
                            "Unexpected character: was expecting comma to separate Array entries",
                        ),
                    }
                }
            }
            Some(b'"') => Ok(J::Str(self.string()?.into_owned())),
            Some(b'-') | Some(b'0'..=b'9') => Ok(J::Num(self.number()?.to_string())),
            Some(_) => self.word(),
        }
    }
}

/// Parse a whole document into a `J` tree.
pub(crate) fn parse_doc(text: &[u8]) -> Result<J, SyntaxError> {
    let mut r = Reader::new(text);
    let v = r.value(0)?;
    r.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_keeps_number_text() {
        let j = parse_doc(br#"{"a":[1,2.50,-3e2,"x\u00e9\ud83d\ude00",true,null]}"#).unwrap();
        let J::Obj(m) = j else { panic!() };
        let J::Arr(items) = &m[0].1 else { panic!() };
        assert_eq!(items[1], J::Num("2.50".into()));
        assert_eq!(items[2], J::Num("-3e2".into()));
        assert_eq!(items[3], J::Str("xé😀".into()));
    }

    #[test]
    fn rejects_bad_json() {
        for bad in [
            &b"{"[..],
            b"{\"a\":}",
            b"[1,]",
            b"01",
            b"1.",
            b"\"\\x\"",
            b"{} x",
            b"\"\\ud800\"",
        ] {
            assert!(parse_doc(bad).is_err(), "{:?}", std::str::from_utf8(bad));
        }
    }
}
