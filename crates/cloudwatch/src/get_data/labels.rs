//! Labels of GetMetricData results, including dynamic labels (user guide, "Use dynamic labels"):
//! `${LABEL}`, `${PROP('...')}` (`Dim.<name>`, `MetricName`, `Namespace`, `Period`, `Stat`,
//! `AccountId`, `Region`), and the statistics of the returned series: `${AVG}`, `${MIN}`, `${MAX}`,
//! `${SUM}`, `${FIRST}`, `${LAST}`, `${DATAPOINT_COUNT}`, `${FIRST_LAST_RANGE}`, `${MIN_MAX_RANGE}`,
//! the timestamps `${FIRST_TIME}`, `${LAST_TIME}`, `${MIN_TIME}`, `${MAX_TIME}` (rendered in
//! `LabelOptions.Timezone`), their `_RELATIVE` forms (time since then), and
//! `${FIRST_LAST_TIME_RANGE}`, `${MIN_MAX_TIME_RANGE}`.
//!
//! Rendering choices (the API reference does not fix them): numbers are rounded for display (two
//! decimals, or three significant digits below 1); times are ISO 8601 with the offset
//! (`2024-03-05T14:30:00+01:30`); durations read like `1d 2h 3m 4s`. Unknown placeholders are kept
//! verbatim. Statistics of an empty series render as the empty string.

/// Properties of the metric behind a result, for `${PROP('...')}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelProps {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub period: i64,
    pub stat: String,
    pub account: String,
    pub region: String,
}

/// Parse `LabelOptions.Timezone`: `+HHMM` or `-HHMM`, as minutes east of UTC.
pub fn parse_timezone(tz: &str) -> Option<i32> {
    let (sign, digits) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
}

/// What a label is rendered from.
pub struct LabelInput<'a> {
    /// The label CloudWatch would use without a `Label` (`${LABEL}`).
    pub default_label: &'a str,
    pub props: Option<&'a LabelProps>,
    /// Ascending timestamps (ms) and their values.
    pub timestamps: &'a [i64],
    pub values: &'a [f64],
    pub tz_minutes: i32,
    pub now_ms: i64,
}

/// The label of one result: the query's `Label` with placeholders replaced, or the default.
pub fn render(template: Option<&str>, input: &LabelInput<'_>) -> String {
    let Some(template) = template else {
        return input.default_label.to_string();
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match placeholder(name, input) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("${");
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn placeholder(name: &str, input: &LabelInput<'_>) -> Option<String> {
    if name == "LABEL" {
        return Some(input.default_label.to_string());
    }
    if let Some(prop) = name.strip_prefix("PROP(").and_then(|p| p.strip_suffix(')')) {
        let prop = prop.trim_matches(|c| c == '\'' || c == '"');
        return Some(property(prop, input.props));
    }
    let (ts, vals) = (input.timestamps, input.values);
    let n = vals.len();
    let empty = n == 0;
    let first = || vals.first().copied();
    let last = || vals.last().copied();
    let argmin = || (0..n).min_by(|&a, &b| vals[a].total_cmp(&vals[b]));
    let argmax = || (0..n).max_by(|&a, &b| vals[a].total_cmp(&vals[b]));
    let num = |v: Option<f64>| v.map(format_number).unwrap_or_default();
    let time = |i: Option<usize>| {
        i.map(|i| format_time(ts[i], input.tz_minutes))
            .unwrap_or_default()
    };
    let ago = |i: Option<usize>| {
        i.map(|i| format_duration(input.now_ms - ts[i]))
            .unwrap_or_default()
    };
    let first_i = (!empty).then_some(0);
    let last_i = n.checked_sub(1);
    Some(match name {
        "AVG" => num((!empty).then(|| vals.iter().sum::<f64>() / n as f64)),
        "SUM" => num((!empty).then(|| vals.iter().sum::<f64>())),
        "MIN" => num(argmin().map(|i| vals[i])),
        "MAX" => num(argmax().map(|i| vals[i])),
        "FIRST" => num(first()),
        "LAST" => num(last()),
        "DATAPOINT_COUNT" => n.to_string(),
        "FIRST_LAST_RANGE" => num(first().zip(last()).map(|(a, b)| (b - a).abs())),
        "MIN_MAX_RANGE" => num(argmin().zip(argmax()).map(|(a, b)| vals[b] - vals[a])),
        "FIRST_TIME" => time(first_i),
        "LAST_TIME" => time(last_i),
        "MIN_TIME" => time(argmin()),
        "MAX_TIME" => time(argmax()),
        "FIRST_TIME_RELATIVE" => ago(first_i),
        "LAST_TIME_RELATIVE" => ago(last_i),
        "MIN_TIME_RELATIVE" => ago(argmin()),
        "MAX_TIME_RELATIVE" => ago(argmax()),
        "FIRST_LAST_TIME_RANGE" => first_i
            .zip(last_i)
            .map(|(a, b)| format_duration(ts[b] - ts[a]))
            .unwrap_or_default(),
        "MIN_MAX_TIME_RANGE" => argmin()
            .zip(argmax())
            .map(|(a, b)| format_duration((ts[b] - ts[a]).abs()))
            .unwrap_or_default(),
        _ => return None,
    })
}

fn property(prop: &str, props: Option<&LabelProps>) -> String {
    let Some(p) = props else {
        return String::new();
    };
    if let Some(dim) = prop.strip_prefix("Dim.") {
        return p
            .dimensions
            .iter()
            .find(|(n, _)| n == dim)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
    }
    match prop {
        "MetricName" => p.metric_name.clone(),
        "Namespace" => p.namespace.clone(),
        "Period" => p.period.to_string(),
        "Stat" => p.stat.clone(),
        "AccountId" => p.account.clone(),
        "Region" => p.region.clone(),
        _ => String::new(),
    }
}

/// A number rounded for display.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return crate::doc::java_double(v);
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let decimals = if v.abs() >= 1.0 {
        2
    } else {
        (2 - v.abs().log10().floor() as i64).clamp(2, 17) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM` in the given offset.
pub fn format_time(ms: i64, tz_minutes: i32) -> String {
    let secs = ms.div_euclid(1000) + i64::from(tz_minutes) * 60;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    let sign = if tz_minutes < 0 { '-' } else { '+' };
    let off = tz_minutes.unsigned_abs();
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        off / 60,
        off % 60
    )
}

/// A duration like `1d 2h 3m 4s` (zero parts omitted; `0s` when empty).
pub fn format_duration(ms: i64) -> String {
    let mut secs = ms.unsigned_abs() / 1000;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(ts: &'a [i64], vals: &'a [f64], props: Option<&'a LabelProps>) -> LabelInput<'a> {
        LabelInput {
            default_label: "CPU",
            props,
            timestamps: ts,
            values: vals,
            tz_minutes: 0,
            now_ms: 600_000,
        }
    }

    #[test]
    fn static_and_default_labels() {
        let i = input(&[], &[], None);
        assert_eq!(render(None, &i), "CPU");
        assert_eq!(render(Some("plain"), &i), "plain");
        assert_eq!(render(Some("[${LABEL}]"), &i), "[CPU]");
    }

    #[test]
    fn statistics_of_the_series() {
        let ts = [0, 60_000, 120_000, 180_000];
        let vals = [4.0, 1.0, 9.0, 2.0];
        let i = input(&ts, &vals, None);
        assert_eq!(
            render(
                Some("${AVG}|${MIN}|${MAX}|${SUM}|${FIRST}|${LAST}|${DATAPOINT_COUNT}"),
                &i
            ),
            "4|1|9|16|4|2|4"
        );
        assert_eq!(
            render(Some("${FIRST_LAST_RANGE} ${MIN_MAX_RANGE}"), &i),
            "2 8"
        );
        assert_eq!(render(Some("${MIN_TIME}"), &i), "1970-01-01T00:01:00+00:00");
        assert_eq!(render(Some("${FIRST_LAST_TIME_RANGE}"), &i), "3m");
        assert_eq!(render(Some("${LAST_TIME_RELATIVE}"), &i), "7m");
        assert_eq!(render(Some("${AVG}"), &input(&[], &[], None)), "");
    }

    #[test]
    fn properties() {
        let p = LabelProps {
            namespace: "App".into(),
            metric_name: "Latency".into(),
            dimensions: vec![("Host".into(), "h1".into())],
            period: 300,
            stat: "p99".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        let i = input(&[], &[], Some(&p));
        assert_eq!(
            render(Some("${PROP('Dim.Host')} ${PROP('MetricName')} ${PROP('Namespace')} ${PROP('Period')} ${PROP('Stat')} ${PROP('Region')} ${PROP('AccountId')}"), &i),
            "h1 Latency App 300 p99 eu-west-1 123456789012"
        );
        assert_eq!(render(Some("${PROP('Dim.Missing')}x"), &i), "x");
    }

    #[test]
    fn unknown_placeholders_stay() {
        let i = input(&[], &[], None);
        assert_eq!(render(Some("a ${NOPE} b ${"), &i), "a ${NOPE} b ${");
    }

    #[test]
    fn timezones() {
        assert_eq!(parse_timezone("+0130"), Some(90));
        assert_eq!(parse_timezone("-0800"), Some(-480));
        assert_eq!(parse_timezone("+0000"), Some(0));
        for bad in ["", "0130", "+130", "+2400", "+0160", "+01:30", "UTC"] {
            assert_eq!(parse_timezone(bad), None, "{bad}");
        }
        assert_eq!(format_time(0, 90), "1970-01-01T01:30:00+01:30");
        assert_eq!(format_time(0, -480), "1969-12-31T16:00:00-08:00");
        // 2024-02-29T12:00:00Z, a leap day.
        assert_eq!(
            format_time(1_709_208_000_000, 0),
            "2024-02-29T12:00:00+00:00"
        );
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(10.0 / 3.0), "3.33");
        assert_eq!(format_number(0.001234), "0.00123");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_duration(90_061_000), "1d 1h 1m 1s");
        assert_eq!(format_duration(0), "0s");
    }
}
