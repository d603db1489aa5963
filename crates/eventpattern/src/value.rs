//! Values and the single-value tests of the pattern language: literals, AWS's numeric rules (six
//! decimal places, -5e9..5e9), numeric ranges, wildcards, IP addresses and CIDR blocks, and case
//! folding for `equals-ignore-case`.

use crate::json::J;
use crate::pattern::Cond;

/// A literal in a pattern's value array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

/// One leaf value of an event, as the tests see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Null,
}

/// Largest magnitude AWS compares numerically.
pub(crate) const FIVE_BILLION: f64 = 5.0e9;

/// Case folding for `equals-ignore-case` (Unicode lower case of both sides).
pub(crate) fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// `fold`, borrowing when the text is already folded (plain lower-case ASCII).
pub(crate) fn fold_cow(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|c| c.is_ascii() && !c.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(fold(s))
    }
}

/// The double nearest a JSON number's text.
pub(crate) fn num_f64(text: &str) -> f64 {
    text.parse::<f64>().unwrap_or(f64::NAN)
}

/// Why a number is not comparable in AWS's sense.
#[derive(Debug, PartialEq, Eq)]
enum DecErr {
    TooPrecise,
    OutOfRange,
}

/// The number times 10^6, exactly, if it has at most six decimal places and lies within ±5e9.
fn scaled_micros(text: &str) -> Result<i128, DecErr> {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mant, exp) = match rest.find(['e', 'E']) {
        Some(p) => (
            &rest[..p],
            rest[p + 1..].parse::<i64>().unwrap_or_else(|_| {
                if rest[p + 1..].starts_with('-') {
                    i64::MIN / 4
                } else {
                    i64::MAX / 4
                }
            }),
        ),
        None => (rest, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut scale: i64 = frac.len() as i64 - exp.clamp(-(1 << 40), 1 << 40);
    let trimmed = digits.trim_start_matches('0').to_string();
    digits = trimmed;
    while digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    if digits.is_empty() {
        return Ok(0);
    }
    if scale > 6 {
        return Err(DecErr::TooPrecise);
    }
    let zeros = 6 - scale; // >= 0
    if digits.len() as i64 + zeros > 19 {
        return Err(DecErr::OutOfRange);
    }
    let mut v: i128 = digits.parse::<i128>().map_err(|_| DecErr::OutOfRange)?;
    for _ in 0..zeros {
        v *= 10;
    }
    if v > 5_000_000_000_000_000 {
        return Err(DecErr::OutOfRange);
    }
    Ok(if neg { -v } else { v })
}

/// A pattern number that must be comparable (numeric ranges, numeric `anything-but`).
pub(crate) fn comparable(text: &str) -> Result<f64, String> {
    match scaled_micros(text) {
        Ok(v) => Ok(v as f64 / 1e6),
        Err(DecErr::TooPrecise) => {
            Err(format!("Only values upto 6 decimals are supported: {text}"))
        }
        Err(DecErr::OutOfRange) => {
            Err("Value must be between -5000000000 and 5000000000, inclusive".into())
        }
    }
}

/// A numeric range; bounds are (value, inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub lo: Option<(f64, bool)>,
    pub hi: Option<(f64, bool)>,
}

fn text_of(j: Option<&J>) -> String {
    match j {
        None => "]".into(),
        Some(J::Str(s)) => s.clone(),
        Some(J::Num(t)) => t.clone(),
        Some(J::Bool(b)) => b.to_string(),
        Some(J::Null) => "null".into(),
        Some(J::Arr(_)) => "[".into(),
        Some(J::Obj(_)) => "{".into(),
    }
}

fn num_at(items: &[J], i: usize, op: &str) -> Result<f64, String> {
    match items.get(i) {
        Some(J::Num(t)) => comparable(t),
        _ => Err(format!(
            "Value of {} must be numeric",
            if op == "=" { "equals" } else { op }
        )),
    }
}

impl Range {
    /// Parse the array of a `numeric` expression.
    pub fn parse(items: &[J]) -> Result<Range, String> {
        let op = match items.first() {
            Some(J::Str(s)) => s.as_str(),
            other => {
                return Err(format!(
                    "Invalid member in numeric match: {}",
                    text_of(other)
                ))
            }
        };
        let too_many = || Err("Too many elements in numeric expression".to_string());
        match op {
            "=" => {
                let v = num_at(items, 1, op)?;
                if items.len() > 2 {
                    return too_many();
                }
                Ok(Range {
                    lo: Some((v, true)),
                    hi: Some((v, true)),
                })
            }
            "<" | "<=" => {
                let v = num_at(items, 1, op)?;
                if items.len() > 2 {
                    return too_many();
                }
                Ok(Range {
                    lo: None,
                    hi: Some((v, op == "<=")),
                })
            }
            ">" | ">=" => {
                let lo = num_at(items, 1, op)?;
                let lo = Some((lo, op == ">="));
                if items.len() == 2 {
                    return Ok(Range { lo, hi: None });
                }
                let op2 = match items.get(2) {
                    Some(J::Str(s)) => s.as_str(),
                    other => return Err(format!("Bad value in numeric range: {}", text_of(other))),
                };
                if op2 != "<" && op2 != "<=" {
                    return Err(format!("Bad numeric range operator: {op2}"));
                }
                let hi = num_at(items, 3, op2)?;
                if items.len() > 4 {
                    return Err("Too many terms in numeric range expression".into());
                }
                let (l, h) = (lo.map(|b| b.0).unwrap_or(0.0), hi);
                if l >= h {
                    return Err("Bottom must be less than top".into());
                }
                Ok(Range {
                    lo,
                    hi: Some((hi, op2 == "<=")),
                })
            }
            other => Err(format!("Unrecognized numeric range operator: {other}")),
        }
    }

    #[inline]
    pub fn contains(&self, x: f64) -> bool {
        if !(-FIVE_BILLION..=FIVE_BILLION).contains(&x) {
            return false;
        }
        if let Some((lo, inc)) = self.lo {
            if x < lo || (!inc && x == lo) {
                return false;
            }
        }
        if let Some((hi, inc)) = self.hi {
            if x > hi || (!inc && x == hi) {
                return false;
            }
        }
        true
    }
}

/// A `wildcard` value: literal pieces between unescaped `*`s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wildcard {
    /// `parts.len() - 1` stars; the first part is a prefix, the last a suffix.
    pub parts: Vec<String>,
}

impl Wildcard {
    pub fn parse(text: &str) -> Result<Wildcard, String> {
        let b = text.as_bytes();
        let mut parts = vec![Vec::new()];
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'*' => {
                    if b.get(i + 1) == Some(&b'*') {
                        // AWS counts positions in the quoted value, hence the + 1.
                        return Err(format!("Consecutive wildcard characters at pos {}", i + 1));
                    }
                    parts.push(Vec::new());
                }
                b'\\' => match b.get(i + 1) {
                    Some(&c @ (b'*' | b'\\')) => {
                        if let Some(p) = parts.last_mut() {
                            p.push(c);
                        }
                        i += 1;
                    }
                    _ => return Err(format!("Invalid escape character at pos {}", i + 1)),
                },
                c => {
                    if let Some(p) = parts.last_mut() {
                        p.push(c);
                    }
                }
            }
            i += 1;
        }
        let parts = parts
            .into_iter()
            .map(|p| String::from_utf8(p).unwrap_or_default())
            .collect();
        Ok(Wildcard { parts })
    }

    pub fn stars(&self) -> usize {
        self.parts.len() - 1
    }

    pub fn matches(&self, s: &str) -> bool {
        let p = &self.parts;
        if p.len() == 1 {
            return s == p[0];
        }
        let (first, last) = (&p[0], &p[p.len() - 1]);
        if s.len() < first.len() + last.len()
            || !s.starts_with(first.as_str())
            || !s.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &s.as_bytes()[first.len()..s.len() - last.len()];
        for mid in &p[1..p.len() - 1] {
            match find(rest, mid.as_bytes()) {
                Some(at) => rest = &rest[at + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An IP address: (is IPv6, the address as a number).
pub(crate) type Ip = (bool, u128);

pub(crate) fn parse_ip(s: &str) -> Option<Ip> {
    if let Ok(a) = s.parse::<std::net::Ipv4Addr>() {
        return Some((false, u32::from(a) as u128));
    }
    if s.contains(':') {
        if let Ok(a) = s.parse::<std::net::Ipv6Addr>() {
            return Some((true, u128::from(a)));
        }
    }
    None
}

/// A `cidr` block: addresses from the given one up to the top of its block, as AWS computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CidrRange {
    pub v6: bool,
    pub lo: u128,
    pub hi: u128,
}

impl CidrRange {
    pub fn parse(s: &str) -> Result<CidrRange, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 2 {
            return Err("Malformed CIDR, one '/' required".into());
        }
        let bits: i64 = parts[1]
            .parse()
            .map_err(|_| "Malformed CIDR, mask bits must be an integer".to_string())?;
        if bits < 0 {
            return Err("Malformed CIDR, mask bits must not be negative".into());
        }
        let Some((v6, ip)) = parse_ip(parts[0]) else {
            return Err(format!("Nonstandard IP address: {}", parts[0]));
        };
        let width = if v6 { 128 } else { 32 };
        if !v6 && bits > 31 {
            return Err("IPv4 mask bits must be < 32".into());
        }
        if v6 && bits > 127 {
            return Err("IPv6 mask bits must be < 128".into());
        }
        let host_bits = width - bits as u32;
        let host_mask: u128 = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        Ok(CidrRange {
            v6,
            lo: ip,
            hi: ip | host_mask,
        })
    }

    pub fn contains(&self, s: &str) -> bool {
        matches!(parse_ip(s), Some((v6, a)) if v6 == self.v6 && a >= self.lo && a <= self.hi)
    }
}

impl Cond {
    /// Does one present leaf value satisfy this condition? (`exists` is decided by the caller.)
    pub(crate) fn test(&self, v: Scalar<'_>) -> bool {
        match (self, v) {
            (Cond::Exact(Lit::Str(p)), Scalar::Str(s)) => p == s,
            (Cond::Exact(Lit::Num(p)), Scalar::Num(x)) => *p == x,
            (Cond::Exact(Lit::Bool(p)), Scalar::Bool(b)) => *p == b,
            (Cond::Exact(Lit::Null), Scalar::Null) => true,
            (Cond::Exact(_), _) => false,
            (Cond::ExactIp(t, ip), Scalar::Str(s)) => t == s || parse_ip(s) == Some(*ip),
            (Cond::Prefix(p), Scalar::Str(s)) => s.starts_with(p.as_str()),
            (Cond::Suffix(p), Scalar::Str(s)) => s.ends_with(p.as_str()),
            (Cond::PrefixIc(p), Scalar::Str(s)) => fold(s).starts_with(p.as_str()),
            (Cond::SuffixIc(p), Scalar::Str(s)) => fold(s).ends_with(p.as_str()),
            (Cond::EqIc(p), Scalar::Str(s)) => *p == fold(s),
            (Cond::Wildcard(w), Scalar::Str(s)) => w.matches(s),
            (Cond::Cidr(c), Scalar::Str(s)) => c.contains(s),
            (Cond::AnythingBut(strs, _), Scalar::Str(s)) => !strs.iter().any(|p| p == s),
            (Cond::AnythingBut(_, nums), Scalar::Num(x)) => !nums.contains(&x),
            (Cond::AnythingButIc(strs), Scalar::Str(s)) => {
                let f = fold(s);
                !strs.contains(&f)
            }
            (Cond::AnythingButPrefix(ps), Scalar::Str(s)) => {
                !ps.iter().any(|p| s.starts_with(p.as_str()))
            }
            (Cond::AnythingButSuffix(ps), Scalar::Str(s)) => {
                !ps.iter().any(|p| s.ends_with(p.as_str()))
            }
            (Cond::AnythingButWildcard(ws), Scalar::Str(s)) => !ws.iter().any(|w| w.matches(s)),
            (
                Cond::AnythingBut(..)
                | Cond::AnythingButIc(_)
                | Cond::AnythingButPrefix(_)
                | Cond::AnythingButSuffix(_)
                | Cond::AnythingButWildcard(_),
                _,
            ) => true,
            (Cond::Numeric(r), Scalar::Num(x)) => r.contains(x),
            (Cond::Exists(_), _) => false,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_decimals_and_five_billion() {
        assert_eq!(comparable("3.0e2").unwrap(), 300.0);
        assert_eq!(comparable("1.1234560").unwrap(), 1.123456);
        assert!(comparable("1.1234567")
            .unwrap_err()
            .starts_with("Only values upto 6 decimals"));
        assert_eq!(comparable("5e9").unwrap(), 5e9);
        assert_eq!(comparable("-5000000000").unwrap(), -5e9);
        assert!(comparable("5000000000.000001")
            .unwrap_err()
            .starts_with("Value must be between"));
        assert!(comparable("1e999999999999").is_err());
        assert_eq!(comparable("0e99999999999999").unwrap(), 0.0);
        assert_eq!(comparable("12345e-6").unwrap(), 0.012345);
    }

    #[test]
    fn wildcards() {
        let w = Wildcard::parse("a*b*c").unwrap();
        assert!(w.matches("abc") && w.matches("axxbyyc") && !w.matches("ac") && !w.matches("abcx"));
        assert!(Wildcard::parse("*").unwrap().matches(""));
        let w = Wildcard::parse(r"a\*b").unwrap();
        assert!(w.matches("a*b") && !w.matches("axb"));
        assert_eq!(
            Wildcard::parse("a**").unwrap_err(),
            "Consecutive wildcard characters at pos 2"
        );
        assert_eq!(
            Wildcard::parse(r"a\b").unwrap_err(),
            "Invalid escape character at pos 2"
        );
        assert!(!Wildcard::parse("ab*ba").unwrap().matches("aba"));
    }

    #[test]
    fn cidrs() {
        let c = CidrRange::parse("10.0.0.0/24").unwrap();
        assert!(c.contains("10.0.0.255") && !c.contains("10.0.1.0") && !c.contains("::1"));
        let c = CidrRange::parse("2001:db8::/32").unwrap();
        assert!(c.contains("2001:db8:ffff::1") && !c.contains("2001:db9::"));
        assert_eq!(
            CidrRange::parse("10.0.0.0/32").unwrap_err(),
            "IPv4 mask bits must be < 32"
        );
        assert_eq!(
            CidrRange::parse("10.0.0.0").unwrap_err(),
            "Malformed CIDR, one '/' required"
        );
        assert_eq!(
            CidrRange::parse("foo/8").unwrap_err(),
            "Nonstandard IP address: foo"
        );
    }
}
