//! On-call rotation arithmetic: parsing `RecurrenceSettings`, generating hand-off instants in the
//! rotation's IANA time zone, cutting shifts by shift coverage and overrides, and who is on call at
//! an instant. Pure functions over plain data; the API handlers live in `rotations`.

use std::collections::HashMap;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use opsloop_core::{ApiError, Value};

use crate::util::invalid;

/// Most shifts one query computes (protects the server from enormous ranges).
pub const MAX_SHIFTS: usize = 10_000;
/// Most local days walked from the rotation start (about 30 years).
const MAX_DAYS: i64 = 11_000;

/// A hand-off time of day.
type Hm = (i8, i8);

/// A parsed `RecurrenceSettings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrence {
    pub daily: Vec<Hm>,
    pub weekly: Vec<(Weekday, Hm)>,
    pub monthly: Vec<(i8, Hm)>,
    pub on_calls: usize,
    pub multiplier: usize,
    pub coverage: HashMap<Weekday, Vec<(Hm, Hm)>>,
}

/// One computed shift.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub start: i64,
    pub end: i64,
    pub contacts: Vec<String>,
    /// Set for an overridden shift: who was on call before the override.
    pub overridden: Option<Vec<String>>,
}

/// An override: `[start, end)` is covered by `members` instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub start: i64,
    pub end: i64,
    pub members: Vec<String>,
}

pub fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "MON" => Weekday::Monday,
        "TUE" => Weekday::Tuesday,
        "WED" => Weekday::Wednesday,
        "THU" => Weekday::Thursday,
        "FRI" => Weekday::Friday,
        "SAT" => Weekday::Saturday,
        "SUN" => Weekday::Sunday,
        _ => return None,
    })
}

pub fn time_zone(id: &str) -> Result<TimeZone, ApiError> {
    TimeZone::get(id).map_err(|_| invalid("TimeZoneId", format!("{id:?} is not an IANA time zone")))
}

fn hm(v: &Value, field: &str) -> Result<Hm, ApiError> {
    let h = v.get("HourOfDay").and_then(Value::as_i64);
    let m = v.get("MinuteOfHour").and_then(Value::as_i64);
    match (h, m) {
        (Some(h @ 0..=23), Some(m @ 0..=59)) => Ok((h as i8, m as i8)),
        _ => Err(invalid(
            field,
            "HourOfDay must be 0-23 and MinuteOfHour 0-59",
        )),
    }
}

impl Recurrence {
    /// Parse and check a `RecurrenceSettings` document.
    pub fn parse(v: &Value) -> Result<Recurrence, ApiError> {
        let list = |k: &str| {
            v.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let mut daily = Vec::new();
        for d in list("DailySettings") {
            daily.push(hm(&d, "Recurrence.DailySettings")?);
        }
        let mut weekly = Vec::new();
        for w in list("WeeklySettings") {
            let day = w
                .get("DayOfWeek")
                .and_then(Value::as_str)
                .and_then(weekday)
                .ok_or_else(|| invalid("Recurrence.WeeklySettings.DayOfWeek", "must be MON-SUN"))?;
            let t = w.get("HandOffTime").unwrap_or(&Value::Null);
            weekly.push((day, hm(t, "Recurrence.WeeklySettings.HandOffTime")?));
        }
        let mut monthly = Vec::new();
        for m in list("MonthlySettings") {
            let day = m.get("DayOfMonth").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=31).contains(&day) {
                return Err(invalid(
                    "Recurrence.MonthlySettings.DayOfMonth",
                    "must be 1-31",
                ));
            }
            let t = m.get("HandOffTime").unwrap_or(&Value::Null);
            monthly.push((day as i8, hm(t, "Recurrence.MonthlySettings.HandOffTime")?));
        }
        let kinds = [!daily.is_empty(), !weekly.is_empty(), !monthly.is_empty()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(invalid(
                "Recurrence",
                "exactly one of DailySettings, WeeklySettings or MonthlySettings must be set",
            ));
        }
        let on_calls = v
            .get("NumberOfOnCalls")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if on_calls < 1 {
            return Err(invalid("Recurrence.NumberOfOnCalls", "must be at least 1"));
        }
        let multiplier = v
            .get("RecurrenceMultiplier")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if !(1..=100).contains(&multiplier) {
            return Err(invalid("Recurrence.RecurrenceMultiplier", "must be 1-100"));
        }
        let mut coverage = HashMap::new();
        if let Some(map) = v.get("ShiftCoverages").and_then(Value::as_object) {
            for (day, times) in map {
                let wd = weekday(day).ok_or_else(|| {
                    invalid("Recurrence.ShiftCoverages", format!("{day:?} is not a day"))
                })?;
                let mut windows = Vec::new();
                for t in times.as_array().cloned().unwrap_or_default() {
                    let f = "Recurrence.ShiftCoverages.CoverageTime";
                    let start = hm(t.get("Start").unwrap_or(&Value::Null), f)?;
                    let end = hm(t.get("End").unwrap_or(&Value::Null), f)?;
                    windows.push((start, end));
                }
                coverage.insert(wd, windows);
            }
        }
        Ok(Recurrence {
            daily,
            weekly,
            monthly,
            on_calls: on_calls as usize,
            multiplier: multiplier as usize,
            coverage,
        })
    }

    /// Hand-off times on local date `d`.
    fn handoffs_on(&self, d: Date) -> Vec<Hm> {
        let mut out: Vec<Hm> = self.daily.clone();
        out.extend(
            self.weekly
                .iter()
                .filter(|(w, _)| *w == d.weekday())
                .map(|(_, t)| *t),
        );
        let last = d.days_in_month();
        out.extend(
            self.monthly
                .iter()
                .filter(|(day, _)| *day == d.day() || (*day > last && d.day() == last))
                .map(|(_, t)| *t),
        );
        out.sort();
        out.dedup();
        out
    }
}

fn instant(tz: &TimeZone, d: Date, (h, m): Hm) -> Option<i64> {
    d.at(h, m, 0, 0)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp().as_second())
}

fn local_date(tz: &TimeZone, t: i64) -> Option<Date> {
    Timestamp::from_second(t)
        .ok()
        .map(|ts| ts.to_zoned(tz.clone()).date())
}

/// Regular shifts (before coverage and overrides) that overlap `[from, to)`.
fn regular_shifts(
    members: &[String],
    rec: &Recurrence,
    tz: &TimeZone,
    rotation_start: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Shift>, ApiError> {
    if members.is_empty() || to <= rotation_start {
        return Ok(Vec::new());
    }
    let mut day =
        local_date(tz, rotation_start).ok_or_else(|| invalid("StartTime", "out of range"))?;
    let mut boundaries = 0usize;
    let mut shift_index = 0usize;
    let mut shift_start = rotation_start;
    let mut out = Vec::new();
    let who = |k: usize| -> Vec<String> {
        let n = rec.on_calls.min(members.len());
        (0..n)
            .map(|i| members[(k * rec.on_calls + i) % members.len()].clone())
            .collect()
    };
    for _ in 0..MAX_DAYS {
        for t in rec.handoffs_on(day) {
            let Some(at) = instant(tz, day, t) else {
                continue;
            };
            if at <= rotation_start {
                continue;
            }
            boundaries += 1;
            if !boundaries.is_multiple_of(rec.multiplier) {
                continue;
            }
            if at > from {
                out.push(Shift {
                    start: shift_start,
                    end: at,
                    contacts: who(shift_index),
                    overridden: None,
                });
                if out.len() > MAX_SHIFTS {
                    return Err(invalid("EndTime", "the time range holds too many shifts"));
                }
            }
            shift_index += 1;
            shift_start = at;
            if at >= to {
                return Ok(out);
            }
        }
        day = match day.tomorrow() {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    Ok(out)
}

/// Cut `shift` to the covered windows of each local day it spans.
fn apply_coverage(shift: &Shift, rec: &Recurrence, tz: &TimeZone) -> Vec<Shift> {
    if rec.coverage.is_empty() {
        return vec![shift.clone()];
    }
    let mut out = Vec::new();
    let Some(mut day) = local_date(tz, shift.start) else {
        return out;
    };
    let Some(last) = local_date(tz, shift.end) else {
        return out;
    };
    loop {
        for &(start, end) in rec
            .coverage
            .get(&day.weekday())
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let Some(a) = instant(tz, day, start) else {
                continue;
            };
            let b = if end <= start {
                day.tomorrow().ok().and_then(|d| instant(tz, d, end))
            } else {
                instant(tz, day, end)
            };
            let Some(b) = b else { continue };
            let (s, e) = (a.max(shift.start), b.min(shift.end));
            if s < e {
                out.push(Shift {
                    start: s,
                    end: e,
                    ..shift.clone()
                });
            }
        }
        if day >= last {
            break;
        }
        day = match day.tomorrow() {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    out
}

/// Split `shift` by overrides: covered parts become OVERRIDDEN shifts.
fn apply_overrides(shift: Shift, overrides: &[Override]) -> Vec<Shift> {
    let mut pieces = vec![shift];
    for o in overrides {
        let mut next = Vec::new();
        for p in pieces {
            if p.overridden.is_some() || o.end <= p.start || o.start >= p.end {
                next.push(p);
                continue;
            }
            if p.start < o.start {
                next.push(Shift {
                    end: o.start,
                    ..p.clone()
                });
            }
            next.push(Shift {
                start: p.start.max(o.start),
                end: p.end.min(o.end),
                contacts: o.members.clone(),
                overridden: Some(p.contacts.clone()),
            });
            if o.end < p.end {
                next.push(Shift {
                    start: o.end,
                    ..p.clone()
                });
            }
        }
        pieces = next;
    }
    pieces
}

/// Every shift overlapping `[from, to)`, in time order.
pub fn shifts(
    members: &[String],
    rec: &Recurrence,
    tz: &TimeZone,
    rotation_start: i64,
    overrides: &[Override],
    from: i64,
    to: i64,
) -> Result<Vec<Shift>, ApiError> {
    let mut out = Vec::new();
    for shift in regular_shifts(members, rec, tz, rotation_start, from, to)? {
        for covered in apply_coverage(&shift, rec, tz) {
            out.extend(
                apply_overrides(covered, overrides)
                    .into_iter()
                    .filter(|s| s.end > from && s.start < to),
            );
        }
    }
    out.sort_by_key(|s| s.start);
    Ok(out)
}

/// Who is on call at `at` (empty outside coverage or before the rotation starts).
pub fn on_call(
    members: &[String],
    rec: &Recurrence,
    tz: &TimeZone,
    rotation_start: i64,
    overrides: &[Override],
    at: i64,
) -> Result<Vec<String>, ApiError> {
    Ok(
        shifts(members, rec, tz, rotation_start, overrides, at, at + 1)?
            .into_iter()
            .find(|s| s.start <= at && at < s.end)
            .map(|s| s.contacts)
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn daily_handoffs_follow_the_time_zone_across_dst() {
        let rec = Recurrence::parse(&json!({
            "NumberOfOnCalls": 1, "RecurrenceMultiplier": 1,
            "DailySettings": [{"HourOfDay": 9, "MinuteOfHour": 0}]
        }))
        .unwrap();
        let tz = time_zone("America/New_York").unwrap();
        let start = ts("2026-03-06T14:00:00Z"); // 09:00 EST
        let m = names(&["a", "b", "c"]);
        let s = shifts(&m, &rec, &tz, start, &[], start, ts("2026-03-10T00:00:00Z")).unwrap();
        assert_eq!(s[0].start, start);
        assert_eq!(s[0].contacts, names(&["a"]));
        assert_eq!(s[1].contacts, names(&["b"]));
        assert_eq!(s[2].contacts, names(&["c"]));
        assert_eq!(s[3].contacts, names(&["a"]));
        // DST starts 2026-03-08: 09:00 local is 14:00Z before and 13:00Z after.
        assert_eq!(s[1].start, ts("2026-03-07T14:00:00Z"));
        assert_eq!(s[2].start, ts("2026-03-08T13:00:00Z"));
        assert_eq!(
            on_call(&m, &rec, &tz, start, &[], ts("2026-03-08T12:59:00Z")).unwrap(),
            names(&["b"])
        );
    }

    #[test]
    fn weekly_multiplier_two_on_calls_and_overrides() {
        let rec = Recurrence::parse(&json!({
            "NumberOfOnCalls": 2, "RecurrenceMultiplier": 2,
            "WeeklySettings": [{"DayOfWeek": "MON", "HandOffTime": {"HourOfDay": 0, "MinuteOfHour": 0}}]
        }))
        .unwrap();
        let tz = time_zone("UTC").unwrap();
        let start = ts("2026-01-05T00:00:00Z"); // a Monday
        let m = names(&["a", "b", "c"]);
        let s = shifts(&m, &rec, &tz, start, &[], start, ts("2026-02-01T00:00:00Z")).unwrap();
        assert_eq!(s[0].end, ts("2026-01-19T00:00:00Z"), "two weeks per shift");
        assert_eq!(s[0].contacts, names(&["a", "b"]));
        assert_eq!(s[1].contacts, names(&["c", "a"]));
        let o = Override {
            start: ts("2026-01-06T00:00:00Z"),
            end: ts("2026-01-07T00:00:00Z"),
            members: names(&["z"]),
        };
        let s = shifts(
            &m,
            &rec,
            &tz,
            start,
            &[o],
            start,
            ts("2026-01-10T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].contacts, names(&["z"]));
        assert_eq!(s[1].overridden, Some(names(&["a", "b"])));
    }

    #[test]
    fn coverage_limits_shifts_and_bad_settings_are_refused() {
        let rec = Recurrence::parse(&json!({
            "NumberOfOnCalls": 1, "RecurrenceMultiplier": 1,
            "DailySettings": [{"HourOfDay": 0, "MinuteOfHour": 0}],
            "ShiftCoverages": {"MON": [{"Start": {"HourOfDay": 9, "MinuteOfHour": 0}, "End": {"HourOfDay": 17, "MinuteOfHour": 0}}]}
        }))
        .unwrap();
        let tz = time_zone("Europe/Paris").unwrap();
        let start = ts("2026-01-04T23:00:00Z"); // Monday 00:00 in Paris
        let m = names(&["a", "b"]);
        let s = shifts(&m, &rec, &tz, start, &[], start, ts("2026-01-11T23:00:00Z")).unwrap();
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(
            (s[0].start, s[0].end),
            (ts("2026-01-05T08:00:00Z"), ts("2026-01-05T16:00:00Z"))
        );
        assert!(
            on_call(&m, &rec, &tz, start, &[], ts("2026-01-06T10:00:00Z"))
                .unwrap()
                .is_empty()
        );

        assert!(
            Recurrence::parse(&json!({"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1})).is_err()
        );
        assert!(time_zone("Mars/Olympus").is_err());
    }
}
