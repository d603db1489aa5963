//! Timestamps for SigV4: the ISO 8601 basic form (`20260102T030405Z`) used by `X-Amz-Date` and the
//! string to sign, the HTTP `Date` header forms (RFC 7231 IMF-fixdate and RFC 2822 with a numeric zone,
//! which botocore sends), and conversions to and from seconds since the Unix epoch. No allocation.

use std::time::{SystemTime, UNIX_EPOCH};

/// A signing instant: seconds since the epoch and its `YYYYMMDDTHHMMSSZ` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub secs: i64,
    pub basic: [u8; 16],
}

impl Stamp {
    pub fn from_secs(secs: i64) -> Stamp {
        Stamp {
            secs,
            basic: format_basic(secs),
        }
    }

    /// The `YYYYMMDDTHHMMSSZ` text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, 'T' and 'Z' are ever written.
        std::str::from_utf8(&self.basic).unwrap_or("")
    }

    /// The `YYYYMMDD` part.
    pub fn date(&self) -> &str {
        self.as_str().get(..8).unwrap_or("")
    }
}

/// Whole seconds since the epoch (negative before 1970), rounded down.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -whole - 1
            } else {
                -whole
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

fn split_secs(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// `YYYYMMDDTHHMMSSZ`. Years outside 0..=9999 are clamped (they never pass the skew check anyway).
pub(crate) fn format_basic(secs: i64) -> [u8; 16] {
    let (y, m, d, hh, mm, ss) = split_secs(secs);
    let y = y.clamp(0, 9999) as u32;
    let mut out = *b"00000000T000000Z";
    put2(&mut out[0..2], y / 100);
    put2(&mut out[2..4], y % 100);
    put2(&mut out[4..6], m);
    put2(&mut out[6..8], d);
    put2(&mut out[9..11], hh);
    put2(&mut out[11..13], mm);
    put2(&mut out[13..15], ss);
    out
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The `Date` header value botocore writes (`email.utils.formatdate`): `Fri, 02 Jan 2026 03:04:05 -0000`.
pub(crate) fn format_rfc2822(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = split_secs(secs);
    let weekday = WEEKDAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!("{weekday}, {d:02} {month} {y:04} {hh:02}:{mm:02}:{ss:02} -0000")
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')),
    )
}

fn to_secs(y: i64, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 59
    {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + i64::from(hh * 3600 + mm * 60 + ss))
}

/// Parse `YYYYMMDDTHHMMSSZ` strictly.
pub(crate) fn parse_basic(s: &str) -> Option<Stamp> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let secs = to_secs(
        i64::from(digits(&b[0..4])?),
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[9..11])?,
        digits(&b[11..13])?,
        digits(&b[13..15])?,
    )?;
    let mut basic = [0u8; 16];
    basic.copy_from_slice(b);
    Some(Stamp { secs, basic })
}

/// Parse an HTTP `Date` header: `[Day,] DD Mon YYYY HH:MM:SS ZONE`, ZONE being `GMT`, `UT`, `UTC`, `Z`
/// or `±HHMM`.
pub(crate) fn parse_http_date(s: &str) -> Option<Stamp> {
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((weekday, rest))
            if weekday.len() == 3 && weekday.bytes().all(|c| c.is_ascii_alphabetic()) =>
        {
            rest
        }
        Some(_) => return None,
        None => s,
    };
    let mut it = s.split_ascii_whitespace();
    let day = it.next()?;
    let month = it.next()?;
    let year = it.next()?;
    let time = it.next()?;
    let zone = it.next()?;
    if it.next().is_some() || day.len() > 2 || year.len() != 4 {
        return None;
    }
    let d = digits(day.as_bytes())?;
    let m = MONTHS.iter().position(|n| n.eq_ignore_ascii_case(month))? as u32 + 1;
    let y = i64::from(digits(year.as_bytes())?);
    let t = time.as_bytes();
    if t.len() != 8 || t[2] != b':' || t[5] != b':' {
        return None;
    }
    let secs = to_secs(
        y,
        m,
        d,
        digits(&t[0..2])?,
        digits(&t[3..5])?,
        digits(&t[6..8])?,
    )?;
    let offset = match zone {
        "GMT" | "UT" | "UTC" | "Z" => 0,
        _ => {
            let z = zone.as_bytes();
            if z.len() != 5 {
                return None;
            }
            let sign = match z[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hh = digits(&z[1..3])?;
            let mm = digits(&z[3..5])?;
            if mm > 59 {
                return None;
            }
            sign * i64::from(hh * 3600 + mm * 60)
        }
    };
    Some(Stamp::from_secs(secs - offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4_clock_basic_round_trip() {
        for secs in [
            0i64,
            1_767_323_045,
            951_782_400,
            4_102_444_799,
            1_709_164_800,
        ] {
            let stamp = Stamp::from_secs(secs);
            assert_eq!(
                parse_basic(stamp.as_str()),
                Some(stamp),
                "{}",
                stamp.as_str()
            );
        }
        // 2026-01-02T03:04:05Z, as botocore's frozen clock in the vectors.
        assert_eq!(Stamp::from_secs(1_767_323_045).as_str(), "20260102T030405Z");
        // Leap day 2000 and 2024.
        assert_eq!(
            parse_basic("20000229T000000Z").map(|s| s.secs),
            Some(951_782_400)
        );
        assert_eq!(
            parse_basic("20240229T120000Z").map(|s| s.secs),
            Some(1_709_208_000)
        );
    }

    #[test]
    fn sigv4_clock_basic_rejects_malformed() {
        for bad in [
            "",
            "201",
            "20260102T030405",
            "20260102 030405Z",
            "2026-01-02T03:04:05Z",
            "20261302T030405Z",
            "20260230T030405Z",
            "20250229T000000Z",
            "20260102T240000Z",
            "20260102T236000Z",
            "20260102T030460Z",
            "2026010+T030405Z",
            "20260102T030405z",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn sigv4_clock_http_dates() {
        let want = Some(1_767_323_045);
        assert_eq!(
            parse_http_date("Fri, 02 Jan 2026 03:04:05 -0000").map(|s| s.secs),
            want
        );
        assert_eq!(
            parse_http_date("Fri, 02 Jan 2026 03:04:05 GMT").map(|s| s.secs),
            want
        );
        assert_eq!(
            parse_http_date("2 Jan 2026 03:04:05 +0000").map(|s| s.secs),
            want
        );
        assert_eq!(
            parse_http_date("Fri, 02 Jan 2026 05:04:05 +0200").map(|s| s.secs),
            want
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 2026 22:04:05 -0500").map(|s| s.secs),
            want
        );
        for bad in [
            "",
            "Fri, 02 Jan 2026",
            "Fri, 02 Foo 2026 03:04:05 GMT",
            "Fri, 32 Jan 2026 03:04:05 GMT",
            "Fri, 02 Jan 2026 03:04:05 EST",
            "Friday, 02 Jan 2026 03:04:05 GMT",
            "Fri, 02 Jan 2026 03:04:05 GMT x",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn sigv4_clock_rfc2822_matches_formatdate() {
        // email.utils.formatdate(1767323045) == 'Fri, 02 Jan 2026 03:04:05 -0000'
        assert_eq!(
            format_rfc2822(1_767_323_045),
            "Fri, 02 Jan 2026 03:04:05 -0000"
        );
        assert_eq!(format_rfc2822(0), "Thu, 01 Jan 1970 00:00:00 -0000");
        assert_eq!(
            parse_http_date(&format_rfc2822(951_782_400)).map(|s| s.secs),
            Some(951_782_400)
        );
    }

    #[test]
    fn sigv4_clock_unix_secs_before_epoch() {
        let t = UNIX_EPOCH - std::time::Duration::from_millis(1500);
        assert_eq!(unix_secs(t), -2);
        assert_eq!(
            unix_secs(UNIX_EPOCH + std::time::Duration::from_millis(1500)),
            1
        );
    }
}
