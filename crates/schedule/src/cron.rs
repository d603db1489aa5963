//! AWS's six-field cron: `cron(minutes hours day-of-month month day-of-week year)`.
//!
//! Fields and their forms, as EventBridge documents them:
//!
//! | field        | values               | forms                                    |
//! |--------------|----------------------|------------------------------------------|
//! | minutes      | 0–59                 | `, - * /`                                |
//! | hours        | 0–23                 | `, - * /`                                |
//! | day-of-month | 1–31                 | `, - * /`, `?`, `L`, `L-n`, `nW`, `LW`   |
//! | month        | 1–12 or JAN–DEC      | `, - * /`                                |
//! | day-of-week  | 1–7 or SUN–SAT       | `, - * /`, `?`, `L`, `nL`, `n#k`         |
//! | year         | 1970–2199            | `, - * /`                                |
//!
//! Exactly one of day-of-month and day-of-week is `?`. A range whose start is after its end wraps
//! (`FRI-MON`, `22-2`), except in years. `L`, `W` and `#` forms stand alone in their field.
//!
//! [`Cron::next_after`] searches wall-clock minutes field by field (year, month, day, hour,
//! minute), so it skips whole months and years that cannot match and always ends by year 2199.

use crate::civil;
use crate::{AtPolicy, Zone};

/// A set of small integers (0–255) as a bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bits([u64; 4]);

impl Bits {
    fn set(&mut self, i: u32) {
        self.0[(i / 64) as usize] |= 1 << (i % 64);
    }
    fn has(&self, i: u32) -> bool {
        i < 256 && self.0[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
}

/// What the day-of-month field selects.
#[derive(Debug, Clone, PartialEq)]
enum DaySpec {
    /// `?`: day-of-week decides.
    Any,
    /// Days 1–31 (a day a month lacks never matches).
    Days(Bits),
    /// `L` (offset 0) or `L-n`: the last day of the month, or `n` days before it.
    Last(u32),
    /// `nW`: the weekday (Monday–Friday) nearest day `n`, within the same month.
    NearestWeekday(u32),
    /// `LW`: the last weekday of the month.
    LastWeekday,
}

/// What the day-of-week field selects (1 = Sunday … 7 = Saturday).
#[derive(Debug, Clone, PartialEq)]
enum WeekSpec {
    /// `?`: day-of-month decides.
    Any,
    /// Days of the week.
    Days(Bits),
    /// `nL` (`L` alone is Saturday): the last such weekday of the month.
    Last(u32),
    /// `n#k`: the k-th such weekday of the month (k 1–5).
    Nth { weekday: u32, n: u32 },
}

/// A parsed six-field cron expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    /// The expression as given, `cron(...)` included.
    pub source: String,
    fields: Box<Fields>,
}

/// The six fields, parsed (boxed: they are large next to the other expression kinds).
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    minutes: Bits,
    hours: Bits,
    dom: DaySpec,
    months: Bits,
    dow: WeekSpec,
    /// Years as offsets from 1970.
    years: Bits,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2199;

/// One field's value range, names and whether ranges may wrap.
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    wraps: bool,
}

const MINUTE: Field = Field {
    min: 0,
    max: 59,
    names: &[],
    wraps: true,
};
const HOUR: Field = Field {
    min: 0,
    max: 23,
    names: &[],
    wraps: true,
};
const DOM: Field = Field {
    min: 1,
    max: 31,
    names: &[],
    wraps: true,
};
const MONTH: Field = Field {
    min: 1,
    max: 12,
    names: &MONTHS,
    wraps: true,
};
const DOW: Field = Field {
    min: 1,
    max: 7,
    names: &WEEKDAYS,
    wraps: true,
};
const YEAR: Field = Field {
    min: FIRST_YEAR,
    max: LAST_YEAR,
    names: &[],
    wraps: false,
};

impl Field {
    /// A single value: a number in range or (case-insensitively) one of the field's names.
    fn value(&self, text: &str) -> Option<u32> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Some(self.min + i as u32);
        }
        if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u32 = text.parse().ok()?;
        (self.min..=self.max).contains(&v).then_some(v)
    }

    /// A comma-separated list of `*`, `v`, `a-b`, each optionally `/step`. Values are stored as
    /// offsets from `min` when `offset` is set (years), else as themselves.
    fn set(&self, text: &str, offset: bool) -> Option<Bits> {
        let mut bits = Bits::default();
        let span = self.max - self.min + 1;
        for token in text.split(',') {
            let (range, step) = match token.split_once('/') {
                Some((r, s)) => {
                    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let step: u32 = s.parse().ok()?;
                    if step == 0 || step > span {
                        return None;
                    }
                    (r, Some(step))
                }
                None => (token, None),
            };
            let (start, end) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let v = self.value(range)?;
                // `a/n` runs from a to the end of the field.
                (v, if step.is_some() { self.max } else { v })
            };
            if start > end && !self.wraps {
                return None;
            }
            // Walk from start to end (wrapping past max back to min) taking every step-th value.
            let count = if start <= end {
                end - start + 1
            } else {
                span - (start - end) + 1
            };
            let step = step.unwrap_or(1);
            let mut i = 0;
            while i < count {
                let v = self.min + (start - self.min + i) % span;
                bits.set(if offset { v - self.min } else { v });
                i += step;
            }
        }
        Some(bits)
    }
}

impl Cron {
    /// Parse the text inside `cron(...)`; `source` is the whole expression.
    pub(crate) fn parse(source: &str, inner: &str) -> Option<Cron> {
        let fields: Vec<&str> = inner.split(' ').collect();
        let [minutes, hours, dom, month, dow, year] = fields.as_slice() else {
            return None;
        };
        let dom = parse_dom(dom)?;
        let dow = parse_dow(dow)?;
        // Exactly one of the two day fields is `?`.
        if (dom == DaySpec::Any) == (dow == WeekSpec::Any) {
            return None;
        }
        let fields = Fields {
            minutes: MINUTE.set(minutes, false)?,
            hours: HOUR.set(hours, false)?,
            dom,
            months: MONTH.set(month, false)?,
            dow,
            years: YEAR.set(year, true)?,
        };
        Some(Cron {
            source: source.to_string(),
            fields: Box::new(fields),
        })
    }

    /// The days of `month` in `year` that both day fields select, as bits 1–31.
    fn days_of(&self, year: i32, month: u32) -> u32 {
        let dim = civil::days_in_month(year, month);
        let all = ((1u64 << (dim + 1)) - 2) as u32; // bits 1..=dim
        let one = |d: u32| if (1..=dim).contains(&d) { 1u32 << d } else { 0 };
        let first = civil::weekday(year, month, 1);
        let weekday_of = |d: u32| (first - 1 + d - 1) % 7 + 1;
        let by_dom = match &self.fields.dom {
            DaySpec::Any => all,
            DaySpec::Days(bits) => (1..=dim)
                .filter(|&d| bits.has(d))
                .fold(0, |acc, d| acc | 1 << d),
            DaySpec::Last(offset) => dim.checked_sub(*offset).map_or(0, one),
            DaySpec::NearestWeekday(n) => {
                let n = *n;
                if n > dim {
                    0
                } else {
                    one(match weekday_of(n) {
                        7 if n == 1 => 3,       // Saturday the 1st → Monday the 3rd
                        7 => n - 1,             // Saturday → Friday
                        1 if n == dim => n - 2, // Sunday the last → Friday
                        1 => n + 1,             // Sunday → Monday
                        _ => n,
                    })
                }
            }
            DaySpec::LastWeekday => one(match weekday_of(dim) {
                7 => dim - 1,
                1 => dim - 2,
                _ => dim,
            }),
        };
        let by_dow = match &self.fields.dow {
            WeekSpec::Any => all,
            WeekSpec::Days(bits) => (1..=dim)
                .filter(|&d| bits.has(weekday_of(d)))
                .fold(0, |acc, d| acc | 1 << d),
            WeekSpec::Last(w) => one(dim - (weekday_of(dim) + 7 - w) % 7),
            WeekSpec::Nth { weekday, n } => one(1 + (weekday + 7 - first) % 7 + 7 * (n - 1)),
        };
        by_dom & by_dow
    }

    /// The first matching wall-clock minute at or after `from` (wall-clock seconds, a whole
    /// minute), or `None` if none comes by the end of year 2199.
    fn next_local(&self, from: i64) -> Option<i64> {
        let (y0, mo0, d0, h0, mi0, _) = civil::split(from);
        let (y0, mo0, d0, h0, mi0) = if y0 < i64::from(FIRST_YEAR) {
            (i64::from(FIRST_YEAR), 1, 1, 0, 0)
        } else {
            (y0, mo0, d0, h0, mi0)
        };
        if y0 > i64::from(LAST_YEAR) {
            return None;
        }
        let y0 = y0 as u32;
        for y in y0..=LAST_YEAR {
            if !self.fields.years.has(y - FIRST_YEAR) {
                continue;
            }
            let first_y = y == y0;
            for mo in (if first_y { mo0 } else { 1 })..=12 {
                if !self.fields.months.has(mo) {
                    continue;
                }
                let first_m = first_y && mo == mo0;
                let days = self.days_of(y as i32, mo);
                for d in (if first_m { d0 } else { 1 })..=31 {
                    if days & (1 << d) == 0 {
                        continue;
                    }
                    let first_d = first_m && d == d0;
                    for h in (if first_d { h0 } else { 0 })..24 {
                        if !self.fields.hours.has(h) {
                            continue;
                        }
                        let first_h = first_d && h == h0;
                        for mi in (if first_h { mi0 } else { 0 })..60 {
                            if self.fields.minutes.has(mi) {
                                return Some(civil::join(y as i32, mo, d, h, mi));
                            }
                        }
                    }
                }
            }
        }
        None
    }

    /// The first fire instant (epoch ms) strictly after `after_ms`, evaluating the fields in
    /// `zone`'s wall clock: a time in a spring-forward gap does not fire, a time repeated by a
    /// fall-back fold fires at its first occurrence only.
    pub(crate) fn next_after(&self, after_ms: i64, zone: &Zone) -> Option<i64> {
        let after_s = after_ms.div_euclid(1000);
        // Wall-clock minute after the one holding `after`.
        let local = zone.local_of(after_s)?;
        let mut from = local.div_euclid(60) * 60 + 60;
        // Each rejected candidate lies in a gap or a fold (at most a day of minutes each), so
        // this bound is never reached by real zones; it only keeps the loop finite.
        for _ in 0..100_000 {
            let candidate = self.next_local(from)?;
            if let Some(t) = zone.instant_of(candidate, AtPolicy::SkipGap) {
                let t_ms = t.checked_mul(1000)?;
                if t_ms > after_ms {
                    return Some(t_ms);
                }
            }
            from = candidate + 60;
        }
        None
    }
}

fn parse_dom(text: &str) -> Option<DaySpec> {
    Some(match text {
        "?" => DaySpec::Any,
        "L" => DaySpec::Last(0),
        "LW" => DaySpec::LastWeekday,
        _ => {
            if let Some(n) = text.strip_prefix("L-") {
                let n = DOM.value(n)?;
                if n > 30 {
                    return None;
                }
                DaySpec::Last(n)
            } else if let Some(n) = text.strip_suffix('W') {
                DaySpec::NearestWeekday(DOM.value(n)?)
            } else {
                DaySpec::Days(DOM.set(text, false)?)
            }
        }
    })
}

fn parse_dow(text: &str) -> Option<WeekSpec> {
    Some(match text {
        "?" => WeekSpec::Any,
        "L" => WeekSpec::Last(7),
        _ => {
            if let Some((w, n)) = text.split_once('#') {
                let n = match n {
                    "1" => 1,
                    "2" => 2,
                    "3" => 3,
                    "4" => 4,
                    "5" => 5,
                    _ => return None,
                };
                WeekSpec::Nth {
                    weekday: DOW.value(w)?,
                    n,
                }
            } else if let Some(w) = text.strip_suffix('L') {
                WeekSpec::Last(DOW.value(w)?)
            } else {
                WeekSpec::Days(DOW.set(text, false)?)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(inner: &str) -> Option<Cron> {
        Cron::parse(&format!("cron({inner})"), inner)
    }

    fn members(bits: Bits, max: u32) -> Vec<u32> {
        (0..=max).filter(|&i| bits.has(i)).collect()
    }

    #[test]
    fn field_forms() {
        assert_eq!(members(MINUTE.set("*", false).unwrap(), 59).len(), 60);
        assert_eq!(
            members(MINUTE.set("0/15", false).unwrap(), 59),
            [0, 15, 30, 45]
        );
        assert_eq!(members(MINUTE.set("*/20", false).unwrap(), 59), [0, 20, 40]);
        assert_eq!(members(MINUTE.set("5-10/2", false).unwrap(), 59), [5, 7, 9]);
        assert_eq!(
            members(MINUTE.set("1,3,59", false).unwrap(), 59),
            [1, 3, 59]
        );
        assert_eq!(
            members(HOUR.set("22-2", false).unwrap(), 23),
            [0, 1, 2, 22, 23]
        );
        assert_eq!(members(HOUR.set("22-2/2", false).unwrap(), 23), [0, 2, 22]);
        assert_eq!(
            members(MONTH.set("JAN,mar,Dec", false).unwrap(), 12),
            [1, 3, 12]
        );
        assert_eq!(
            members(MONTH.set("NOV-FEB", false).unwrap(), 12),
            [1, 2, 11, 12]
        );
        assert_eq!(
            members(DOW.set("MON-FRI", false).unwrap(), 7),
            [2, 3, 4, 5, 6]
        );
        assert_eq!(members(DOW.set("FRI-MON", false).unwrap(), 7), [1, 2, 6, 7]);
        assert_eq!(
            members(YEAR.set("2024-2026", true).unwrap(), 255),
            [54, 55, 56]
        );
        assert_eq!(members(YEAR.set("2190/5", true).unwrap(), 255), [220, 225]);
        assert_eq!(members(MINUTE.set("7/60", false).unwrap(), 59), [7]);
    }

    #[test]
    fn field_errors() {
        for bad in [
            "60", "-1", "", "1,", ",1", "1-", "-5", "*/0", "*/61", "a", "1/x", "1-2-3", "**", "1/",
            "00005",
        ] {
            assert!(MINUTE.set(bad, false).is_none(), "{bad:?}");
        }
        assert!(HOUR.set("24", false).is_none());
        assert!(DOM.set("0", false).is_none());
        assert!(DOM.set("32", false).is_none());
        assert!(MONTH.set("13", false).is_none());
        assert!(MONTH.set("JANUARY", false).is_none());
        assert!(DOW.set("0", false).is_none());
        assert!(DOW.set("8", false).is_none());
        assert!(YEAR.set("1969", true).is_none());
        assert!(YEAR.set("2200", true).is_none());
        assert!(YEAR.set("2030-2020", true).is_none(), "years never wrap");
    }

    #[test]
    fn whole_expressions() {
        assert!(cron("0 9 * * ? *").is_some());
        assert!(cron("0/5 8-17 ? * MON-FRI *").is_some());
        assert!(cron("0 12 L * ? *").is_some());
        assert!(cron("0 12 L-3 * ? *").is_some());
        assert!(cron("0 12 15W * ? *").is_some());
        assert!(cron("0 12 LW * ? *").is_some());
        assert!(cron("0 12 ? * 6L *").is_some());
        assert!(cron("0 12 ? * FRIL *").is_some());
        assert!(cron("0 12 ? * L *").is_some());
        assert!(cron("0 12 ? * 3#2 *").is_some());
        assert!(cron("0 12 ? * TUE#5 2024-2030").is_some());
        assert!(cron("15 10 ? * 6L 2019-2022").is_some());
        // Degenerate ranges and wide steps AWS accepts.
        assert!(cron("0-15/1 8-8 ? * 2,3,4,5,6,7 *").is_some());
        assert!(cron("30-30 13-13 ? * 2,4,6 *").is_some());
        assert!(cron("1-31/30 1-1 ? * 1,7 *").is_some());
        for bad in [
            "0 9 * * * *",   // neither day field is ?
            "0 9 ? * ? *",   // both are
            "0 9 1 * MON *", // both set
            "0 9 * * ?",     // five fields
            "0 9 * * ? * *", // seven
            "0  9 * * ? *",  // empty field
            "0 9 ? * 3#6 *", // no sixth week
            "0 9 ? * 3#0 *",
            "0 9 ? * 8#1 *",
            "0 9 L-31 * ? *",
            "0 9 32W * ? *",
            "0 9 W * ? *",
            "0 9 1W,2 * ? *",
            "0 9 ? * 1,L *",
            "0 9 ? * 1#1,2 *",
            "0 9 ?,1 * ? *",
        ] {
            assert!(cron(bad).is_none(), "{bad:?}");
        }
    }

    fn days(c: &str, y: i32, m: u32) -> Vec<u32> {
        let bits = cron(c).unwrap().days_of(y, m);
        (1..=31).filter(|d| bits & (1 << d) != 0).collect()
    }

    #[test]
    fn last_and_weekday_forms_at_month_ends() {
        assert_eq!(days("0 0 L * ? *", 2024, 2), [29]);
        assert_eq!(days("0 0 L * ? *", 2023, 2), [28]);
        assert_eq!(days("0 0 L * ? *", 2100, 2), [28]);
        assert_eq!(days("0 0 L * ? *", 2000, 2), [29]);
        assert_eq!(days("0 0 L * ? *", 2024, 4), [30]);
        assert_eq!(days("0 0 L-2 * ? *", 2024, 3), [29]);
        assert_eq!(days("0 0 L-30 * ? *", 2024, 3), [1]);
        assert!(days("0 0 L-30 * ? *", 2024, 2).is_empty());
        assert_eq!(days("0 0 31 * ? *", 2024, 3), [31]);
        assert!(days("0 0 31 * ? *", 2024, 4).is_empty());
        assert!(days("0 0 30 * ? *", 2024, 2).is_empty());
        assert_eq!(days("0 0 29 * ? *", 2024, 2), [29]);
        assert!(days("0 0 29 * ? *", 2023, 2).is_empty());
        // 2024-06-01 is a Saturday: 1W is Monday the 3rd, never May 31.
        assert_eq!(days("0 0 1W * ? *", 2024, 6), [3]);
        // 2024-06-15 Saturday → Friday 14; 2024-06-16 Sunday → Monday 17.
        assert_eq!(days("0 0 15W * ? *", 2024, 6), [14]);
        assert_eq!(days("0 0 16W * ? *", 2024, 6), [17]);
        assert_eq!(days("0 0 12W * ? *", 2024, 6), [12]);
        // 2024-03-31 is a Sunday: 31W is Friday the 29th (no jumping into April).
        assert_eq!(days("0 0 31W * ? *", 2024, 3), [29]);
        assert!(days("0 0 31W * ? *", 2024, 4).is_empty());
        // LW: 2024-03-31 Sunday → 29; 2024-08-31 Saturday → 30; 2024-10-31 Thursday → 31.
        assert_eq!(days("0 0 LW * ? *", 2024, 3), [29]);
        assert_eq!(days("0 0 LW * ? *", 2024, 8), [30]);
        assert_eq!(days("0 0 LW * ? *", 2024, 10), [31]);
        // Last Friday: 2024-02 → 23, 2024-05 → 31 (the 31st is itself a Friday).
        assert_eq!(days("0 0 ? * 6L *", 2024, 2), [23]);
        assert_eq!(days("0 0 ? * 6L *", 2024, 5), [31]);
        assert_eq!(days("0 0 ? * L *", 2024, 8), [31]); // Saturday the 31st
                                                        // Second Tuesday 2024-10 → 8; fifth Thursday 2024-02 (29th) exists, 2023-02 does not.
        assert_eq!(days("0 0 ? * 3#2 *", 2024, 10), [8]);
        assert_eq!(days("0 0 ? * THU#5 *", 2024, 2), [29]);
        assert!(days("0 0 ? * THU#5 *", 2023, 2).is_empty());
        assert_eq!(days("0 0 ? * 1#1 *", 2024, 9), [1]); // Sunday the 1st
        assert_eq!(days("0 0 ? * MON-FRI *", 2024, 6).len(), 20);
        assert_eq!(
            days("0 0 ? * SAT,SUN *", 2024, 6),
            [1, 2, 8, 9, 15, 16, 22, 23, 29, 30]
        );
        assert_eq!(days("0 0 1-31/10 * ? *", 2024, 2), [1, 11, 21]);
    }
}
