//! Timestamp conversions between the document form (seconds since the epoch, fractional allowed) and
//! the wire forms: ISO-8601 (`2026-01-02T03:04:05.000Z`), HTTP dates (`Fri, 02 Jan 2026 03:04:05
//! GMT`) and epoch-seconds strings. Hand-written so parsing is lenient where AWS is, fast, and never
//! panics on hostile input.

use serde_json::{Number, Value};

use crate::model::TimestampFormat;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A tiny cursor over ASCII digits and separators.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn seconds_of(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<f64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) as f64)
}

/// Parse ISO-8601 / RFC 3339: `YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|±HH[:]MM]`; no offset means UTC.
pub fn parse_iso8601(s: &str) -> Option<f64> {
    let mut c = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let y = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let mo = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2)?;
    let (mut h, mut mi, mut sec, mut frac) = (0, 0, 0, 0.0);
    if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
        h = c.digits(2)?;
        if !c.eat(b':') {
            return None;
        }
        mi = c.digits(2)?;
        if c.eat(b':') {
            sec = c.digits(2)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.i;
                let mut scale = 0.1;
                while let Some(ch) = c.peek().filter(u8::is_ascii_digit) {
                    frac += f64::from(ch - b'0') * scale;
                    scale /= 10.0;
                    c.i += 1;
                }
                if c.i == start {
                    return None;
                }
            }
        }
    }
    let mut offset = 0i64;
    if c.eat(b'Z') || c.eat(b'z') {
    } else if let Some(sign @ (b'+' | b'-')) = c.peek() {
        c.i += 1;
        let oh = c.digits(2)?;
        c.eat(b':');
        let om = c.digits(2)?;
        if oh > 23 || om > 59 {
            return None;
        }
        offset = i64::from(oh * 3600 + om * 60) * if sign == b'+' { 1 } else { -1 };
    }
    if !c.done() {
        return None;
    }
    Some(seconds_of(i64::from(y), mo, d, h, mi, sec)? - offset as f64 + frac)
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parse an HTTP date (IMF-fixdate, `Fri, 02 Jan 2026 03:04:05 GMT`; the weekday is not checked).
pub fn parse_http_date(s: &str) -> Option<f64> {
    let s = s.trim();
    let rest = s.split_once(", ").map_or(s, |(_, r)| r);
    let mut parts = rest.split_ascii_whitespace();
    let d: u32 = parts.next()?.parse().ok()?;
    let mon = parts.next()?;
    let mo = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(mon))? as u32 + 1;
    let y: i64 = parts.next()?.parse().ok()?;
    let mut c = Cursor {
        b: parts.next()?.as_bytes(),
        i: 0,
    };
    let h = c.digits(2)?;
    let mi = c.eat(b':').then(|| c.digits(2)).flatten()?;
    let sec = c.eat(b':').then(|| c.digits(2)).flatten()?;
    if !c.done()
        || !matches!(parts.next(), Some("GMT") | Some("UTC") | None)
        || parts.next().is_some()
    {
        return None;
    }
    if !(0..=9999).contains(&y) {
        return None;
    }
    seconds_of(y, mo, d, h, mi, sec)
}

/// Parse seconds since the epoch written as a decimal number.
pub fn parse_epoch(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parse a timestamp string, trying `preferred` first and then every other format.
pub fn parse_any(s: &str, preferred: TimestampFormat) -> Option<f64> {
    let first = match preferred {
        TimestampFormat::Iso8601 => parse_iso8601(s),
        TimestampFormat::EpochSeconds => parse_epoch(s),
        TimestampFormat::HttpDate => parse_http_date(s),
    };
    first
        .or_else(|| parse_iso8601(s))
        .or_else(|| parse_epoch(s))
        .or_else(|| parse_http_date(s))
}

/// Largest magnitude of epoch seconds handled (year 9999).
const MAX_SECONDS: f64 = 253_402_300_799.0;

/// Whether `secs` is a representable timestamp.
pub fn in_range(secs: f64) -> bool {
    secs.is_finite() && secs.abs() <= MAX_SECONDS
}

/// A document number for epoch seconds: an integer when whole, else a float.
pub fn seconds_value(secs: f64) -> Option<Value> {
    if !in_range(secs) {
        return None;
    }
    if secs.fract() == 0.0 {
        Some(Value::Number(Number::from(secs as i64)))
    } else {
        Number::from_f64(secs).map(Value::Number)
    }
}

/// Split epoch seconds into whole days, seconds of the day and milliseconds (rounded).
fn split(secs: f64) -> (i64, u32, u32) {
    let secs = if in_range(secs) { secs } else { 0.0 };
    let total_ms = (secs * 1000.0).round() as i64;
    let ms = total_ms.rem_euclid(1000) as u32;
    let whole = total_ms.div_euclid(1000);
    (
        whole.div_euclid(86_400),
        whole.rem_euclid(86_400) as u32,
        ms,
    )
}

/// `2026-01-02T03:04:05.000Z` (milliseconds always present).
pub fn format_iso8601(secs: f64) -> String {
    let (days, sod, ms) = split(secs);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// `Fri, 02 Jan 2026 03:04:05 GMT` (whole seconds).
pub fn format_http_date(secs: f64) -> String {
    let (days, sod, _) = split(secs.floor());
    let (y, m, d) = civil_from_days(days);
    let wd = WEEKDAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[(m - 1) as usize % 12];
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Epoch seconds as a decimal string (`1767323045` or `1767323045.5`).
pub fn format_epoch(secs: f64) -> String {
    match seconds_value(secs) {
        Some(v) => v.to_string(),
        None => "0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 1_767_323_045.0; // 2026-01-02T03:04:05Z, a Friday

    #[test]
    fn iso8601_variants() {
        assert_eq!(parse_iso8601("2026-01-02T03:04:05Z"), Some(T));
        assert_eq!(parse_iso8601("2026-01-02T03:04:05.250Z"), Some(T + 0.25));
        assert_eq!(
            parse_iso8601("2026-01-02T03:04:05.123456Z").map(|v| (v * 1e6).round()),
            Some((T + 0.123456) * 1e6)
        );
        assert_eq!(parse_iso8601("2026-01-02T05:04:05+02:00"), Some(T));
        assert_eq!(parse_iso8601("2026-01-02T01:04:05-0200"), Some(T));
        assert_eq!(parse_iso8601("2026-01-02 03:04:05"), Some(T));
        assert_eq!(parse_iso8601("2026-01-02T03:04Z"), Some(T - 5.0));
        assert_eq!(
            parse_iso8601("2026-01-02"),
            Some(T - 3.0 * 3600.0 - 4.0 * 60.0 - 5.0)
        );
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_iso8601("1969-12-31T23:59:59Z"), Some(-1.0));
        assert_eq!(parse_iso8601("2024-02-29T00:00:00Z"), Some(1_709_164_800.0));
    }

    #[test]
    fn iso8601_rejects_garbage() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29T00:00:00Z",
            "2026-01-02T24:00:00Z",
            "2026-01-02T03:04:05.Z",
            "2026-01-02T03:04:05Zjunk",
            "2026-01-02T03",
            "٢٠٢٦-01-02",
            "20260102T030405Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Fri, 02 Jan 2026 03:04:05 GMT"), Some(T));
        assert_eq!(format_http_date(T), "Fri, 02 Jan 2026 03:04:05 GMT");
        assert_eq!(format_http_date(0.0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(parse_http_date("Fri, 32 Jan 2026 03:04:05 GMT"), None);
        assert_eq!(parse_http_date("Fri, 02 Foo 2026 03:04:05 GMT"), None);
        assert_eq!(parse_http_date("nonsense"), None);
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_iso8601(T), "2026-01-02T03:04:05.000Z");
        assert_eq!(format_iso8601(T + 0.5), "2026-01-02T03:04:05.500Z");
        assert_eq!(format_iso8601(-1.5), "1969-12-31T23:59:58.500Z");
        assert_eq!(format_epoch(T), "1767323045");
        assert_eq!(format_epoch(T + 0.5), "1767323045.5");
        for secs in [0.0, T, 951_782_400.0, 4_102_444_800.0, -86_400.0 * 365.0] {
            assert_eq!(parse_iso8601(&format_iso8601(secs)), Some(secs));
            assert_eq!(parse_http_date(&format_http_date(secs)), Some(secs));
        }
    }

    #[test]
    fn parse_any_falls_back() {
        assert_eq!(parse_any("1767323045", TimestampFormat::Iso8601), Some(T));
        assert_eq!(
            parse_any("2026-01-02T03:04:05Z", TimestampFormat::HttpDate),
            Some(T)
        );
        assert_eq!(
            parse_any(
                "Fri, 02 Jan 2026 03:04:05 GMT",
                TimestampFormat::EpochSeconds
            ),
            Some(T)
        );
        assert_eq!(parse_any("yesterday", TimestampFormat::Iso8601), None);
        assert_eq!(seconds_value(T), Some(Value::from(1_767_323_045i64)));
        assert_eq!(seconds_value(f64::NAN), None);
        assert_eq!(seconds_value(1e300), None);
    }
}
