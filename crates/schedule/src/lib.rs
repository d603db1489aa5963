//! Schedule expressions as EventBridge rules and EventBridge Scheduler accept them: `rate()`,
//! AWS's six-field `cron()` and Scheduler's one-time `at()`, with exact next-fire computation in
//! an IANA time zone.
//!
//! - [`parse_rule_expression`] accepts what `PutRule`'s `ScheduleExpression` accepts (`rate()`,
//!   `cron()`; always evaluated in UTC) and fails with AWS's `Parameter ScheduleExpression is not
//!   valid.`
//! - [`parse_scheduler_expression`] accepts what Scheduler's `CreateSchedule` accepts (`at()`,
//!   `rate()`, `cron()`) and fails with `Invalid Schedule Expression <text>`
//! - [`Expression::next_after`] gives the first fire time strictly after an instant. Fire times are
//!   computed from the expression alone (never from "now + period"), so a loop that always asks
//!   for the fire after the previous one never drifts.
//!
//! Time zones follow EventBridge Scheduler's documented daylight-saving rules: a cron time that
//! falls in a spring-forward gap does not fire that day, and a cron time that occurs twice in a
//! fall-back fold fires once (at its first occurrence). Rates are absolute durations (`rate(1
//! day)` is 24 hours, whatever the clock does). An `at()` time inside a gap fires as if read with the
//! offset before the gap (02:30 on a 02:00→03:00 night fires at 03:30), inside a fold at its first
//! occurrence.

mod civil;
mod cron;
#[cfg(test)]
mod tests;

pub use cron::Cron;

use jiff::tz::{AmbiguousOffset, TimeZone};

/// The message `PutRule` gives for any invalid `ScheduleExpression`.
pub const RULE_MESSAGE: &str = "Parameter ScheduleExpression is not valid.";

/// An expression that failed validation; the message is AWS's (e.g.
/// `Parameter ScheduleExpression is not valid.`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpressionError(pub String);

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    /// `rate(value unit)`, as a period in seconds.
    Rate { seconds: u64 },
    /// `cron(min hour dom month dow year)`.
    Cron(Cron),
    /// `at(yyyy-mm-ddThh:mm:ss)` — a local date-time in the schedule's time zone, as seconds of
    /// that wall clock since the epoch.
    At { local_seconds: i64 },
}

/// Which dialect is parsing: the two services accept different forms and word their errors
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Rule,
    Scheduler,
}

/// Parse a `ScheduleExpression` of an EventBridge rule (`rate()` or `cron()`, UTC).
pub fn parse_rule_expression(text: &str) -> Result<Expression, ExpressionError> {
    parse(text, Dialect::Rule).ok_or_else(|| ExpressionError(RULE_MESSAGE.into()))
}

/// Parse a `ScheduleExpression` of EventBridge Scheduler (`at()`, `rate()` or `cron()`).
pub fn parse_scheduler_expression(text: &str) -> Result<Expression, ExpressionError> {
    parse(text, Dialect::Scheduler)
        .ok_or_else(|| ExpressionError(format!("Invalid Schedule Expression {text}")))
}

fn parse(text: &str, dialect: Dialect) -> Option<Expression> {
    if let Some(inner) = strip_call(text, "rate") {
        return parse_rate(inner).map(|seconds| Expression::Rate { seconds });
    }
    if let Some(inner) = strip_call(text, "cron") {
        return Cron::parse(text, inner).map(Expression::Cron);
    }
    if dialect == Dialect::Scheduler {
        if let Some(inner) = strip_call(text, "at") {
            return parse_at(inner).map(|local_seconds| Expression::At { local_seconds });
        }
    }
    None
}

/// `name(` … `)` → the text between the parentheses.
fn strip_call<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// The largest rate value per unit: the period in milliseconds must fit an `i64` with room to
/// add it to any timestamp this crate handles (year 2199 and earlier).
const MAX_RATE_SECONDS: u64 = 100 * 365 * 86_400;

/// `value unit` → seconds. AWS's rules: a positive integer; `minute`/`hour`/`day` when the value is
/// 1, `minutes`/`hours`/`days` when it is larger.
fn parse_rate(inner: &str) -> Option<u64> {
    let mut parts = inner.split(' ');
    let value = parts.next()?;
    let unit = parts.next()?;
    if parts.next().is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = value.parse().ok()?;
    if value == 0 {
        return None;
    }
    let (singular, per) = match unit {
        "minute" => (true, 60),
        "minutes" => (false, 60),
        "hour" => (true, 3_600),
        "hours" => (false, 3_600),
        "day" => (true, 86_400),
        "days" => (false, 86_400),
        _ => return None,
    };
    if singular != (value == 1) {
        return None;
    }
    let seconds = value.checked_mul(per)?;
    (seconds <= MAX_RATE_SECONDS).then_some(seconds)
}

/// `yyyy-mm-ddThh:mm:ss` → seconds of that wall clock since the epoch.
fn parse_at(inner: &str) -> Option<i64> {
    let b = inner.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = &inner[range];
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=2199).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > i64::from(civil::days_in_month(year as i32, month as u32)) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = civil::days_from_civil(year as i32, month as u32, day as u32);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

impl Expression {
    /// The first fire time strictly after `after_ms` (epoch milliseconds), or `None` if the
    /// expression never fires again. `anchor_ms` is when the schedule started (rates count from
    /// it; nothing fires before it); `time_zone` is an IANA name (`"UTC"` for rules).
    pub fn next_after(
        &self,
        anchor_ms: i64,
        after_ms: i64,
        time_zone: &str,
    ) -> Result<Option<i64>, ExpressionError> {
        let zone = Zone::get(time_zone)
            .ok_or_else(|| ExpressionError(format!("Invalid time zone {time_zone}.")))?;
        // Nothing fires before the anchor: "after anchor - 1 ms" admits a fire at the anchor.
        let after = after_ms.max(anchor_ms.saturating_sub(1));
        Ok(match self {
            Expression::Rate { seconds } => rate_next(anchor_ms, after, *seconds),
            Expression::Cron(cron) => cron.next_after(after, &zone),
            Expression::At { local_seconds } => {
                let at = zone.instant_of(*local_seconds, AtPolicy::Compatible);
                at.and_then(|s| s.checked_mul(1000)).filter(|&t| t > after)
            }
        })
    }

    /// Does this expression fire at most once (`at()`)?
    pub fn is_one_time(&self) -> bool {
        matches!(self, Expression::At { .. })
    }
}

/// Latest instant this crate computes fire times for: the end of year 2199 (AWS's cron year range).
const LAST_MS: i64 = 7_258_118_400_000; // 2200-01-01T00:00:00Z

fn rate_next(anchor_ms: i64, after_ms: i64, seconds: u64) -> Option<i64> {
    let period = i128::from(seconds) * 1000;
    let (anchor, after) = (i128::from(anchor_ms), i128::from(after_ms));
    let next = if after < anchor {
        anchor
    } else {
        anchor + ((after - anchor) / period + 1) * period
    };
    i64::try_from(next).ok().filter(|&t| t < LAST_MS)
}

/// Is `name` a time zone this build knows (IANA name)?
pub fn is_valid_time_zone(name: &str) -> bool {
    Zone::get(name).is_some()
}

/// How a wall-clock time that a time-zone transition skips or repeats maps to an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtPolicy {
    /// Cron: a skipped time does not exist (`None`); a repeated one is its first occurrence.
    SkipGap,
    /// `at()`: a skipped time is the end of the gap; a repeated one is its first occurrence.
    Compatible,
}

/// A time zone, with UTC handled without a database lookup.
pub(crate) enum Zone {
    Utc,
    Tz(TimeZone),
}

impl Zone {
    pub(crate) fn get(name: &str) -> Option<Zone> {
        if name == "UTC" {
            return Some(Zone::Utc);
        }
        // Only names as IANA spells them (jiff's lookup also takes other casings, and paths).
        if name.is_empty() || name.len() > 64 || name.starts_with('/') || name.contains("..") {
            return None;
        }
        let tz = TimeZone::get(name).ok()?;
        (tz.iana_name() == Some(name)).then_some(Zone::Tz(tz))
    }

    /// Wall-clock seconds (since the epoch, as if UTC) at instant `seconds`.
    pub(crate) fn local_of(&self, seconds: i64) -> Option<i64> {
        match self {
            Zone::Utc => Some(seconds),
            Zone::Tz(tz) => {
                let ts = jiff::Timestamp::from_second(seconds).ok()?;
                Some(seconds + i64::from(tz.to_offset(ts).seconds()))
            }
        }
    }

    /// The instant (epoch seconds) of wall-clock time `local` under `policy`.
    pub(crate) fn instant_of(&self, local: i64, policy: AtPolicy) -> Option<i64> {
        let tz = match self {
            Zone::Utc => return Some(local),
            Zone::Tz(tz) => tz,
        };
        let (y, mo, d, h, mi, s) = civil::split(local);
        let dt = jiff::civil::DateTime::new(
            i16::try_from(y).ok()?,
            mo as i8,
            d as i8,
            h as i8,
            mi as i8,
            s as i8,
            0,
        )
        .ok()?;
        match tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => Some(local - i64::from(offset.seconds())),
            AmbiguousOffset::Fold { before, .. } => Some(local - i64::from(before.seconds())),
            AmbiguousOffset::Gap { before, .. } => match policy {
                AtPolicy::SkipGap => None,
                // As RFC 5545 and Temporal's "compatible": the wall-clock time read with the
                // offset in force before the gap, i.e. pushed forward by the gap's length.
                AtPolicy::Compatible => Some(local - i64::from(before.seconds())),
            },
        }
    }
}

/// `ms` (epoch milliseconds) as ISO 8601 in UTC with second precision, e.g.
/// `2026-11-21T09:00:00Z` — the form of Scheduler's `<aws.scheduler.scheduled-time>`.
pub fn iso8601_utc(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil::split(ms.div_euclid(1000));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}
