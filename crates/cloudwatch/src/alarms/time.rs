//! The timestamp renderings CloudWatch alarms use in their JSON payloads and texts, all in UTC:
//!
//! * `2019-10-02T17:04:40.985+0000` — `queryDate`, `startDate`, `evaluatedDatapoints[].timestamp`,
//!   history and notification timestamps (`AlarmConfigurationUpdatedTimestamp`, `StateChangeTime`);
//! * `02/10/19 16:59:00` — datapoint times inside a `StateReason` (`dd/MM/yy HH:mm:ss`);
//! * `Friday 04 August, 2023 12:54:46 UTC` — the child transition time in a composite alarm's
//!   `StateReason`;
//! * `2019-10-02T17:04:40Z` — the `time` of an EventBridge event.
//!
//! The shapes are those of the samples in the CloudWatch user guide ("Alarm events and
//! EventBridge", "Composite alarms").

/// Civil date and time of a millisecond timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    /// 0 = Monday ... 6 = Sunday.
    pub weekday: u32,
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Break a millisecond timestamp into its UTC civil parts.
pub fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (in_day / 3_600_000) as u32,
        minute: (in_day / 60_000 % 60) as u32,
        second: (in_day / 1000 % 60) as u32,
        millis: (in_day % 1000) as u32,
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        weekday: (days + 3).rem_euclid(7) as u32,
    }
}

/// `2019-10-02T17:04:40.985+0000`.
pub fn iso_millis(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// `2019-10-02T17:04:40Z`.
pub fn iso_seconds(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `02/10/19 16:59:00`.
pub fn reason_time(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:02}/{:02}/{:02} {:02}:{:02}:{:02}",
        c.day,
        c.month,
        c.year.rem_euclid(100),
        c.hour,
        c.minute,
        c.second
    )
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `Friday 04 August, 2023 12:54:46 UTC`.
pub fn long_time(ms: i64) -> String {
    let c = civil(ms);
    let weekday = WEEKDAYS.get(c.weekday as usize).copied().unwrap_or("");
    let month = MONTHS
        .get(c.month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("");
    format!(
        "{weekday} {:02} {month}, {:04} {:02}:{:02}:{:02} UTC",
        c.day, c.year, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2019-10-02T17:04:40.985Z
    const T: i64 = 1_570_035_880_985;

    #[test]
    fn renders_the_documented_shapes() {
        assert_eq!(iso_millis(T), "2019-10-02T17:04:40.985+0000");
        assert_eq!(iso_seconds(T), "2019-10-02T17:04:40Z");
        assert_eq!(reason_time(T), "02/10/19 17:04:40");
        assert_eq!(long_time(T), "Wednesday 02 October, 2019 17:04:40 UTC");
    }

    #[test]
    fn epoch_and_leap_days() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(civil(0).weekday, 3);
        // 2024-02-29T12:00:00Z
        let leap = 1_709_208_000_000;
        assert_eq!(iso_seconds(leap), "2024-02-29T12:00:00Z");
        assert_eq!(long_time(leap), "Thursday 29 February, 2024 12:00:00 UTC");
        assert_eq!(iso_seconds(-1000), "1969-12-31T23:59:59Z");
    }
}
