//! Event numbers read straight from JSON bytes in one pass: the grammar is checked while the
//! leading decimal digits are gathered into an integer, which gives a cheap *approximate* value.
//! Comparisons against a pattern's bounds use the approximation whenever it is clearly on one side
//! (the usual case: a coordinate is rarely within 1e-14 of a range bound) and only otherwise pay
//! for the exact, correctly rounded double — which is what `str::parse::<f64>` gives and what the
//! reference evaluator compares.

use crate::json::{Reader, SyntaxError};

/// Exact powers of ten as doubles (10^22 is the largest that is exact).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Significant digits kept in the integer mantissa (10^19 < 2^64).
const MAX_DIGITS: u32 = 19;

/// How far apart (relative) an approximation and a bound must be for the approximation to decide.
/// The approximation is within about 3.4e-16 (relative) of the true value, and so is the exact
/// double; 1e-14 leaves a wide margin.
const MARGIN: f64 = 1e-14;

/// A number literal of an event: its byte span and its decimal decomposition
/// `(-1)^neg × mant × 10^exp10` (digits past the 19th dropped, noted in `dropped`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumLit {
    pub start: usize,
    pub end: usize,
    mant: u64,
    exp10: i32,
    neg: bool,
    dropped: bool,
}

impl NumLit {
    /// Read a number at the reader's position (after any whitespace), checking JSON's grammar.
    #[inline]
    pub fn read(r: &mut Reader<'_>) -> Result<NumLit, SyntaxError> {
        let b = r.b;
        let start = r.i;
        let mut j = start;
        let neg = b.get(j) == Some(&b'-');
        if neg {
            j += 1;
        }
        let mut mant = 0u64;
        let mut nd = 0u32;
        let mut exp10 = 0i32;
        let mut dropped = false;
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(c) if c.is_ascii_digit() => {
                while let Some(&c) = b.get(j) {
                    if !c.is_ascii_digit() {
                        break;
                    }
                    if nd < MAX_DIGITS {
                        mant = mant * 10 + (c - b'0') as u64;
                        nd += 1;
                    } else {
                        exp10 = exp10.saturating_add(1);
                        dropped |= c != b'0';
                    }
                    j += 1;
                }
            }
            _ => {
                r.i = j;
                return r.err("Invalid number");
            }
        }
        if b.get(j) == Some(&b'.') {
            j += 1;
            if !b.get(j).is_some_and(u8::is_ascii_digit) {
                r.i = j;
                return r.err("Invalid number: decimal point must be followed by a digit");
            }
            while let Some(&c) = b.get(j) {
                if !c.is_ascii_digit() {
                    break;
                }
                if nd < MAX_DIGITS {
                    if mant != 0 || c != b'0' {
                        mant = mant * 10 + (c - b'0') as u64;
                        nd += 1;
                    }
                    exp10 = exp10.saturating_sub(1);
                } else {
                    dropped |= c != b'0';
                }
                j += 1;
            }
        }
        if matches!(b.get(j), Some(b'e') | Some(b'E')) {
            j += 1;
            let eneg = match b.get(j) {
                Some(b'-') => {
                    j += 1;
                    true
                }
                Some(b'+') => {
                    j += 1;
                    false
                }
                _ => false,
            };
            if !b.get(j).is_some_and(u8::is_ascii_digit) {
                r.i = j;
                return r.err("Invalid number: exponent must have digits");
            }
            let mut e = 0i32;
            while let Some(&c) = b.get(j) {
                if !c.is_ascii_digit() {
                    break;
                }
                e = (e * 10 + (c - b'0') as i32).min(1_000_000);
                j += 1;
            }
            exp10 = exp10.saturating_add(if eneg { -e } else { e });
        }
        r.i = j;
        Ok(NumLit {
            start,
            end: j,
            mant,
            exp10,
            neg,
            dropped,
        })
    }

    /// A value within about 3.4e-16 (relative) of the number, or None when the exponent is too
    /// large for the quick computation (then only `exact` will do).
    #[inline]
    pub fn approx(&self) -> Option<f64> {
        let m = self.mant as f64;
        let v = if self.mant == 0 || self.exp10 == 0 {
            m
        } else if (1..=22).contains(&self.exp10) {
            m * POW10[self.exp10 as usize]
        } else if (-22..0).contains(&self.exp10) {
            m / POW10[(-self.exp10) as usize]
        } else {
            return None;
        };
        Some(if self.neg { -v } else { v })
    }

    /// The double nearest the number (as `str::parse::<f64>` gives it); `b` is the event's bytes.
    #[inline]
    pub fn exact(&self, b: &[u8]) -> f64 {
        // Clinger's fast path: an exactly representable mantissa times or over an exactly
        // representable power of ten rounds once, correctly.
        if !self.dropped && self.mant <= 1 << 53 && (-22..=22).contains(&self.exp10) {
            if let Some(v) = self.approx() {
                return v;
            }
        }
        std::str::from_utf8(&b[self.start..self.end])
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    }
}

/// Whether an approximate value `a` is too close to `bound` to be compared with it safely.
#[inline]
pub(crate) fn near(a: f64, bound: f64) -> bool {
    (a - bound).abs() <= a.abs().max(bound.abs()) * MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(t: &str) -> NumLit {
        let mut r = Reader::new(t.as_bytes());
        let n = NumLit::read(&mut r).unwrap();
        assert_eq!(r.i, t.len(), "{t}");
        n
    }

    #[test]
    fn exact_is_the_correctly_rounded_double() {
        for t in [
            "0",
            "-0",
            "1",
            "-122.39581469442653",
            "37.80780792169409",
            "37.8",
            "0.000001",
            "1.4999999999999999",
            "1.5000000000000001",
            "299.99999999999997",
            "9007199254740993",
            "12345678901234567890123",
            "123456789012345678901234567890e-10",
            "0.1",
            "1e22",
            "1e23",
            "1e-7",
            "4.9e-324",
            "1e400",
            "-2.5e1",
            "5000000000.000001",
            "0.00000000000000000000000000000000012345",
        ] {
            let n = lit(t);
            let want: f64 = t.parse().unwrap();
            let got = n.exact(t.as_bytes());
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{t}: {got} vs {want}"
            );
            assert_eq!(got.is_sign_negative(), want.is_sign_negative(), "{t}");
            if let Some(a) = n.approx() {
                assert!(
                    (a - want).abs() <= want.abs() * 4e-16,
                    "{t}: approx {a} vs {want}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_numbers() {
        for t in ["-", "01x", "1.", "1e", "1e+", "-.5", "."] {
            let mut r = Reader::new(t.as_bytes());
            let ok = NumLit::read(&mut r).is_ok_and(|_| r.i == t.len());
            assert!(!ok, "{t}");
        }
    }

    #[test]
    fn near_is_symmetric_and_tight() {
        assert!(near(1.5, 1.5));
        assert!(near(1.5, 1.4999999999999998));
        assert!(!near(1.5, 1.4999999));
        assert!(near(0.0, 0.0));
        assert!(!near(1e-300, 0.0));
        assert!(!near(-122.36, -122.3601));
    }
}
