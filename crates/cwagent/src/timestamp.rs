//! Log-line timestamps: the CloudWatch agent's `timestamp_format` (strftime-style directives
//! `%Y %y %m %b %B %d %H %I %p %M %S %f %z`, with optional `-` no-padding flag) turned into a
//! regular expression that finds the timestamp anywhere in a line, and parsed to epoch
//! milliseconds. Times without a `%z` offset are taken as UTC (opsloop carries no time-zone
//! database).

use regex::Regex;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The regex source for `format`, with named groups per directive.
pub fn format_regex(format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        if chars.peek() == Some(&'-') {
            chars.next();
        }
        let Some(d) = chars.next() else {
            out.push('%');
            break;
        };
        out.push_str(match d {
            'Y' => r"(?P<Y>\d{4})",
            'y' => r"(?P<y>\d{2})",
            'm' => r"(?P<m>\d{1,2})",
            'b' | 'B' => r"(?P<b>[A-Za-z]{3})[A-Za-z]*",
            'd' => r"(?P<d>\s?\d{1,2})",
            'H' => r"(?P<H>\d{1,2})",
            'I' => r"(?P<I>\d{1,2})",
            'p' => r"(?P<p>[AaPp][Mm])",
            'M' => r"(?P<M>\d{1,2})",
            'S' => r"(?P<S>\d{1,2})",
            'f' => r"(?P<f>\d{1,9})",
            'z' => r"(?P<z>Z|[+-]\d{2}:?\d{2})",
            'Z' => r"[A-Za-z]{1,5}",
            'a' | 'A' => r"[A-Za-z]{3,9}",
            '%' => "%",
            _ => ".*?",
        });
    }
    out
}

/// A compiled `timestamp_format`.
#[derive(Debug, Clone)]
pub struct TimestampParser {
    re: Regex,
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The current year (for formats without `%Y`/`%y`, like syslog's `%b %d %H:%M:%S`).
fn current_year() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Invert days_from_civil by search over a small range.
    let days = secs / 86_400;
    let mut y = 1970 + days / 366;
    while days_from_civil(y + 1, 1, 1) <= days {
        y += 1;
    }
    y
}

impl TimestampParser {
    pub fn new(format: &str) -> Result<TimestampParser, regex::Error> {
        Ok(TimestampParser {
            re: Regex::new(&format_regex(format))?,
        })
    }

    /// Epoch milliseconds of the first timestamp in `line`, if any.
    pub fn parse(&self, line: &str) -> Option<i64> {
        let c = self.re.captures(line)?;
        let num = |n: &str| {
            c.name(n)
                .and_then(|m| m.as_str().trim().parse::<i64>().ok())
        };
        let year = num("Y")
            .or_else(|| num("y").map(|y| 2000 + y))
            .unwrap_or_else(current_year);
        let month = match num("m") {
            Some(m) => m,
            None => match c.name("b") {
                Some(b) => {
                    let b = b.as_str().to_ascii_lowercase();
                    MONTHS.iter().position(|m| *m == b)? as i64 + 1
                }
                None => 1,
            },
        };
        let day = num("d").unwrap_or(1);
        let mut hour = num("H").or_else(|| num("I")).unwrap_or(0);
        if let Some(p) = c.name("p") {
            let pm = p.as_str().eq_ignore_ascii_case("pm");
            hour %= 12;
            if pm {
                hour += 12;
            }
        }
        let minute = num("M").unwrap_or(0);
        let second = num("S").unwrap_or(0);
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let millis = c
            .name("f")
            .map(|f| {
                let s = f.as_str();
                let mut ms = 0i64;
                for (i, ch) in s.chars().take(3).enumerate() {
                    ms += (ch as i64 - '0' as i64) * [100, 10, 1][i];
                }
                ms
            })
            .unwrap_or(0);
        let offset = match c.name("z").map(|z| z.as_str()) {
            None | Some("Z") => 0,
            Some(z) => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let digits: String = z.chars().filter(|c| c.is_ascii_digit()).collect();
                let h: i64 = digits[..2].parse().ok()?;
                let m: i64 = digits[2..].parse().ok()?;
                sign * (h * 3600 + m * 60)
            }
        };
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
            - offset;
        Some(secs * 1000 + millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_formats() {
        let p = TimestampParser::new("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            p.parse("2024-03-01 12:00:05 INFO started"),
            Some(1_709_294_405_000)
        );
        assert_eq!(p.parse("no timestamp here"), None);
        let p = TimestampParser::new("%Y-%m-%dT%H:%M:%S.%f%z").unwrap();
        assert_eq!(
            p.parse("[2024-03-01T21:00:05.250+09:00] x"),
            Some(1_709_294_405_250)
        );
        let p = TimestampParser::new("%d/%b/%Y:%H:%M:%S %z").unwrap();
        assert_eq!(
            p.parse("127.0.0.1 - - [01/Mar/2024:12:00:05 +0000] \"GET /\""),
            Some(1_709_294_405_000)
        );
        let p = TimestampParser::new("%I:%M:%S %p %Y-%m-%d").unwrap();
        assert_eq!(p.parse("12:00:05 PM 2024-03-01"), Some(1_709_294_405_000));
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert!(current_year() >= 2024);
    }
}
