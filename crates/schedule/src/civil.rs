//! Proleptic Gregorian calendar arithmetic on plain integers: days since the epoch, month lengths,
//! weekdays, and splitting wall-clock seconds into fields. The cron search runs on these instead of
//! a date library's checked types, so it never fails and never allocates.

/// Is `year` a leap year?
pub(crate) fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1–12) of `year`.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to `year-month-day` (negative before it).
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day of week of `year-month-day` as AWS's cron numbers it: 1 = Sunday … 7 = Saturday.
pub(crate) fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday (5 in this numbering).
    (days_from_civil(year, month, day) + 4).rem_euclid(7) as u32 + 1
}

/// Wall-clock seconds since the epoch → (year, month, day, hour, minute, second).
pub(crate) fn split(local: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, secs / 3_600, secs / 60 % 60, secs % 60)
}

/// (year, month, day, hour, minute) → wall-clock seconds since the epoch.
pub(crate) fn join(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
    days_from_civil(year, month, day) * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        let mut expected = (1900i64, 1u32, 1u32);
        for days in start..end {
            let got = civil_from_days(days);
            assert_eq!(got, expected, "day {days}");
            assert_eq!(days_from_civil(got.0 as i32, got.1, got.2), days);
            // advance `expected` by one day
            let (y, m, d) = expected;
            expected = if d < days_in_month(y as i32, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(is_leap(2024) && is_leap(2000) && is_leap(2400));
        assert!(!is_leap(1900) && !is_leap(2100) && !is_leap(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2023, 4), 30);
        assert_eq!(days_in_month(2023, 12), 31);
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(1970, 1, 1), 5); // Thursday
        assert_eq!(weekday(2024, 2, 29), 5); // Thursday
        assert_eq!(weekday(2026, 11, 21), 7); // Saturday
        assert_eq!(weekday(2026, 11, 22), 1); // Sunday
        assert_eq!(weekday(1969, 12, 31), 4); // Wednesday
    }

    #[test]
    fn split_and_join() {
        let t = join(2024, 2, 29, 23, 59) + 7;
        assert_eq!(split(t), (2024, 2, 29, 23, 59, 7));
        assert_eq!(split(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(join(1970, 1, 1, 0, 0), 0);
    }
}
