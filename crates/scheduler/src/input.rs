//! Turning a `CreateSchedule`/`UpdateSchedule` input into a [`ScheduleRecord`], with the checks the
//! model cannot express (the expression, the time zone, the flexible window, the dates, the
//! target's ARN and input) and Scheduler's defaults; and planning a schedule's next fire.

use opsloop_core::{ApiError, Value};
use opsloop_schedule::{is_valid_time_zone, parse_scheduler_expression, Expression};
use rand::Rng;

use crate::model::{validation, ScheduleRecord, DEFAULT_GROUP};
use crate::target::{self, TargetKind};

/// How far in the past a `StartDate` may lie (AWS allows five minutes of clock skew).
const START_DATE_SLACK_MS: i64 = 5 * 60_000;

pub(crate) fn str_of<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

fn date_of(input: &Value, member: &str) -> Option<f64> {
    input.get(member).and_then(Value::as_f64)
}

/// The group a request names (`default` when it names none).
pub(crate) fn group_of(input: &Value) -> String {
    str_of(input, "GroupName")
        .unwrap_or(DEFAULT_GROUP)
        .to_string()
}

/// Validate a create/update input for `account`/`region` at `now` into a record (timer fields
/// planned; `created` is `now` — an update carries the old one over).
pub(crate) fn schedule_from(
    input: &Value,
    account: &str,
    region: &str,
    now: i64,
) -> Result<ScheduleRecord, ApiError> {
    let name = str_of(input, "Name").unwrap_or_default().to_string();
    let expression = str_of(input, "ScheduleExpression")
        .unwrap_or_default()
        .to_string();
    let parsed = parse_scheduler_expression(&expression).map_err(|e| validation(e.0))?;
    let timezone = str_of(input, "ScheduleExpressionTimezone").map(str::to_string);
    if let Some(tz) = &timezone {
        if !is_valid_time_zone(tz) {
            return Err(validation(format!("Invalid time zone {tz}.")));
        }
    }
    let flexible = input
        .get("FlexibleTimeWindow")
        .cloned()
        .unwrap_or(Value::Null);
    check_window(&flexible)?;
    let start_date = date_of(input, "StartDate");
    let end_date = date_of(input, "EndDate");
    check_dates(start_date, end_date, now)?;
    let target = input.get("Target").cloned().unwrap_or(Value::Null);
    check_target(&target)?;
    let anchor_ms = match (&parsed, start_date) {
        (Expression::At { .. }, _) => i64::MIN,
        (_, Some(start)) => (start * 1000.0) as i64,
        (_, None) => now,
    };
    let mut rec = ScheduleRecord {
        account: account.to_string(),
        region: region.to_string(),
        group: group_of(input),
        name,
        expression,
        timezone,
        description: str_of(input, "Description").map(str::to_string),
        start_date,
        end_date,
        state: str_of(input, "State").unwrap_or("ENABLED").to_string(),
        flexible,
        action_after_completion: str_of(input, "ActionAfterCompletion").map(str::to_string),
        kms_key_arn: str_of(input, "KmsKeyArn").map(str::to_string),
        target,
        client_token: str_of(input, "ClientToken").map(str::to_string),
        created: crate::model::secs(now),
        modified: crate::model::secs(now),
        anchor_ms,
        next_ms: None,
        due_ms: None,
    };
    plan_next(&mut rec, now.saturating_sub(1));
    Ok(rec)
}

fn check_window(window: &Value) -> Result<(), ApiError> {
    let mode = window.get("Mode").and_then(Value::as_str).unwrap_or("OFF");
    let max = window.get("MaximumWindowInMinutes");
    match (mode, max) {
        ("FLEXIBLE", None) => Err(validation(
            "MaximumWindowInMinutes is required when FlexibleTimeWindow Mode is FLEXIBLE.",
        )),
        ("OFF", Some(_)) => Err(validation(
            "MaximumWindowInMinutes must not be set when FlexibleTimeWindow Mode is OFF.",
        )),
        _ => Ok(()),
    }
}

fn check_dates(start: Option<f64>, end: Option<f64>, now: i64) -> Result<(), ApiError> {
    if let Some(start) = start {
        if ((start * 1000.0) as i64) < now - START_DATE_SLACK_MS {
            return Err(validation(
                "The StartDate you specify cannot be earlier than 5 minutes prior to the current time.",
            ));
        }
    }
    if let Some(end) = end {
        if ((end * 1000.0) as i64) <= now {
            return Err(validation(
                "The EndDate you specify cannot be earlier than the current time.",
            ));
        }
        if start.is_some_and(|s| end <= s) {
            return Err(validation("The StartDate must come before the EndDate."));
        }
    }
    Ok(())
}

fn check_target(target: &Value) -> Result<(), ApiError> {
    let arn = str_of(target, "Arn").unwrap_or_default();
    let input = str_of(target, "Input");
    let kind =
        target::kind_of(arn).ok_or_else(|| validation(format!("Invalid target ARN {arn}.")))?;
    let json_input = |must_be_object: bool| -> Result<(), ApiError> {
        let Some(text) = input else { return Ok(()) };
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() || !must_be_object => Ok(()),
            _ => Err(validation(format!(
                "Invalid RequestJson provided for target {arn}: Input must be valid JSON."
            ))),
        }
    };
    match kind {
        // Universal targets take the API's request document: a JSON object.
        TargetKind::Universal { .. } => json_input(true),
        TargetKind::EventBus { .. } => {
            if target.get("EventBridgeParameters").is_none() {
                return Err(validation(
                    "EventBridgeParameters are required for an EventBridge event bus target.",
                ));
            }
            json_input(false)
        }
        _ => Ok(()),
    }
}

/// The first occurrence of `rec` strictly after `after_ms` (inside its StartDate/EndDate for
/// recurring schedules), or `None`.
pub(crate) fn next_occurrence(rec: &ScheduleRecord, after_ms: i64) -> Option<i64> {
    let expr = parse_scheduler_expression(&rec.expression).ok()?;
    let tz = rec.timezone.as_deref().unwrap_or("UTC");
    let t = expr.next_after(rec.anchor_ms, after_ms, tz).ok()??;
    if !expr.is_one_time() && rec.end_date.is_some_and(|end| t >= (end * 1000.0) as i64) {
        return None;
    }
    Some(t)
}

/// Set `rec`'s next occurrence after `after_ms` and its delivery instant: the occurrence itself,
/// or a uniformly random point inside a flexible window that opens at it. Disabled schedules have
/// neither.
pub(crate) fn plan_next(rec: &mut ScheduleRecord, after_ms: i64) {
    if rec.state != "ENABLED" {
        rec.next_ms = None;
        rec.due_ms = None;
        return;
    }
    rec.next_ms = next_occurrence(rec, after_ms);
    rec.due_ms = rec.next_ms.map(|t| match rec.window_ms() {
        Some(window) if window > 0 => t + rand::thread_rng().gen_range(0..window),
        _ => t,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn base() -> Value {
        json!({
            "Name": "s1",
            "ScheduleExpression": "rate(5 minutes)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": "arn:aws:sns:us-east-1:123456789012:t", "RoleArn": "arn:aws:iam::123456789012:role/r"}
        })
    }

    fn with(member: &str, value: Value) -> Value {
        let mut v = base();
        v[member] = value;
        v
    }

    fn err(input: Value) -> String {
        schedule_from(&input, "123456789012", "us-east-1", NOW)
            .unwrap_err()
            .message
    }

    #[test]
    fn defaults_and_first_fire() {
        let rec = schedule_from(&base(), "123456789012", "us-east-1", NOW).unwrap();
        assert_eq!(rec.group, "default");
        assert_eq!(rec.state, "ENABLED");
        // A rate without StartDate starts now.
        assert_eq!(rec.next_ms, Some(NOW));
        assert_eq!(rec.due_ms, Some(NOW));
        let start = (NOW + 3_600_000) as f64 / 1000.0;
        let rec = schedule_from(&with("StartDate", json!(start)), "1", "r", NOW).unwrap();
        assert_eq!(rec.next_ms, Some(NOW + 3_600_000));
        let off = schedule_from(&with("State", json!("DISABLED")), "1", "r", NOW).unwrap();
        assert_eq!((off.next_ms, off.due_ms), (None, None));
    }

    #[test]
    fn flexible_window_delays_inside_the_window() {
        let input = with(
            "FlexibleTimeWindow",
            json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10}),
        );
        for _ in 0..50 {
            let rec = schedule_from(&input, "1", "r", NOW).unwrap();
            let (next, due) = (rec.next_ms.unwrap(), rec.due_ms.unwrap());
            assert!(due >= next && due < next + 600_000, "{next} {due}");
        }
    }

    #[test]
    fn at_and_cron_in_a_zone() {
        let mut input = with("ScheduleExpression", json!("at(2027-01-15T09:30:00)"));
        input["ScheduleExpressionTimezone"] = json!("Europe/Paris");
        let rec = schedule_from(&input, "1", "r", NOW).unwrap();
        assert_eq!(rec.next_ms, Some(1_800_001_800_000)); // 2027-01-15T08:30:00Z
                                                          // An at() already past never fires.
        let past = with("ScheduleExpression", json!("at(2020-01-01T00:00:00)"));
        assert_eq!(schedule_from(&past, "1", "r", NOW).unwrap().next_ms, None);
        // EndDate bounds recurring schedules.
        let mut cron = with("ScheduleExpression", json!("cron(0 12 * * ? *)"));
        cron["EndDate"] = json!((NOW / 1000 + 60) as f64);
        assert_eq!(schedule_from(&cron, "1", "r", NOW).unwrap().next_ms, None);
    }

    #[test]
    fn validation_messages() {
        assert_eq!(
            err(with("ScheduleExpression", json!("rate(1 minutes)"))),
            "Invalid Schedule Expression rate(1 minutes)"
        );
        assert_eq!(
            err(with("ScheduleExpressionTimezone", json!("Mars/Base"))),
            "Invalid time zone Mars/Base."
        );
        assert!(err(with("FlexibleTimeWindow", json!({"Mode": "FLEXIBLE"})))
            .contains("MaximumWindowInMinutes"));
        assert!(err(with(
            "FlexibleTimeWindow",
            json!({"Mode": "OFF", "MaximumWindowInMinutes": 5})
        ))
        .contains("MaximumWindowInMinutes"));
        assert!(err(with("StartDate", json!((NOW / 1000 - 3600) as f64))).contains("StartDate"));
        assert!(err(with("EndDate", json!((NOW / 1000 - 1) as f64))).contains("EndDate"));
        let mut both = with("StartDate", json!((NOW / 1000 + 100) as f64));
        both["EndDate"] = json!((NOW / 1000 + 50) as f64);
        assert!(err(both).contains("before the EndDate"));
        let bad_target = json!({"Arn": "not-an-arn", "RoleArn": "arn:aws:iam::1:role/r"});
        assert_eq!(
            err(with("Target", bad_target)),
            "Invalid target ARN not-an-arn."
        );
        let universal = json!({"Arn": "arn:aws:scheduler:::aws-sdk:sns:publish", "RoleArn": "r", "Input": "not json"});
        assert!(err(with("Target", universal)).contains("Input must be valid JSON"));
        let bus = json!({"Arn": "arn:aws:events:us-east-1:1:event-bus/default", "RoleArn": "r"});
        assert!(err(with("Target", bus)).contains("EventBridgeParameters"));
    }
}
