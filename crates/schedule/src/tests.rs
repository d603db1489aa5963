//! Tests of the public API: parsing in both dialects with AWS's messages, and next-fire times in
//! UTC and across daylight-saving transitions.

use super::*;

/// `YYYY-MM-DDTHH:MM:SSZ` → epoch ms.
fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn iso(t: i64) -> String {
    jiff::Timestamp::from_millisecond(t).unwrap().to_string()
}

/// The next `n` fire times after `after` (UTC), as ISO strings.
fn fires(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    let e = parse_scheduler_expression(expr).unwrap();
    let mut t = ms(after);
    let mut out = Vec::new();
    for _ in 0..n {
        match e.next_after(0, t, tz).unwrap() {
            Some(next) => {
                out.push(iso(next));
                t = next;
            }
            None => break,
        }
    }
    out
}

#[test]
fn rule_dialect_accepts_and_rejects_like_putrule() {
    for good in [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "cron(0 9 * * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
    ] {
        assert!(parse_rule_expression(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(-1 minutes)",
        "rate(1.5 hours)",
        "rate(5 seconds)",
        "rate(5 weeks)",
        "rate(5minutes)",
        "rate( 5 minutes)",
        "rate(5 minutes )",
        "rate(5 Minutes)",
        "rate 5 minutes",
        "rate(5 minutes",
        "Rate(5 minutes)",
        "rate(99999999999999999999 days)",
        "at(2030-01-01T00:00:00)",
        "cron(0 9 * * * *)",
        "cron(* * * * *)",
        "cron()",
        "0 9 * * ? *",
    ] {
        assert_eq!(
            parse_rule_expression(bad),
            Err(ExpressionError(
                "Parameter ScheduleExpression is not valid.".into()
            )),
            "{bad:?}"
        );
    }
}

#[test]
fn scheduler_dialect_adds_at_and_names_the_expression() {
    assert_eq!(
        parse_scheduler_expression("at(2030-01-02T03:04:05)"),
        Ok(Expression::At {
            local_seconds: ms("2030-01-02T03:04:05Z") / 1000
        })
    );
    assert_eq!(
        parse_scheduler_expression("rate(2 hours)"),
        Ok(Expression::Rate { seconds: 7_200 })
    );
    assert!(matches!(
        parse_scheduler_expression("cron(0 9 * * ? *)"),
        Ok(Expression::Cron(_))
    ));
    assert!(parse_scheduler_expression("at(2030-01-02T03:04:05)")
        .unwrap()
        .is_one_time());
    for bad in [
        "at(2030-01-02 03:04:05)",
        "at(2030-01-02T03:04)",
        "at(2030-02-30T00:00:00)",
        "at(2029-02-29T00:00:00)",
        "at(2030-13-01T00:00:00)",
        "at(2030-01-01T24:00:00)",
        "at(2030-01-01T00:60:00)",
        "at(2030-01-01T00:00:60)",
        "at(2030-01-01T00:00:00Z)",
        "at(+030-01-01T00:00:00)",
        "at(1969-12-31T23:59:59)",
        "rate(1 minutes)",
        "cron(0 9 ? * ? *)",
    ] {
        assert_eq!(
            parse_scheduler_expression(bad),
            Err(ExpressionError(format!(
                "Invalid Schedule Expression {bad}"
            ))),
            "{bad:?}"
        );
    }
    assert!(parse_scheduler_expression("at(2028-02-29T00:00:00)").is_ok());
}

#[test]
fn time_zones() {
    assert!(is_valid_time_zone("UTC"));
    assert!(is_valid_time_zone("America/New_York"));
    assert!(is_valid_time_zone("Europe/London"));
    assert!(is_valid_time_zone("Asia/Kolkata"));
    assert!(is_valid_time_zone("Etc/GMT+5"));
    // Backward-compatible links are IANA names too.
    for link in ["US/Eastern", "Asia/Calcutta", "GMT", "Etc/UTC"] {
        assert!(is_valid_time_zone(link), "{link}");
    }
    for bad in [
        "",
        "utc",
        "america/new_york",
        "Mars/Olympus",
        "/etc/passwd",
        "../UTC",
        "EST5EDT/x",
    ] {
        assert!(!is_valid_time_zone(bad), "{bad:?}");
    }
    let e = parse_rule_expression("rate(1 minute)").unwrap();
    assert_eq!(
        e.next_after(0, 0, "Nowhere/City"),
        Err(ExpressionError("Invalid time zone Nowhere/City.".into()))
    );
}

#[test]
fn rates_count_from_the_anchor_and_never_drift() {
    let e = parse_rule_expression("rate(5 minutes)").unwrap();
    let anchor = ms("2026-01-01T00:00:07Z");
    // Before or at anchor - 1: the anchor itself is the first fire.
    assert_eq!(
        e.next_after(anchor, anchor - 10_000, "UTC").unwrap(),
        Some(anchor)
    );
    assert_eq!(
        e.next_after(anchor, anchor, "UTC").unwrap(),
        Some(anchor + 300_000)
    );
    assert_eq!(
        e.next_after(anchor, anchor + 299_999, "UTC").unwrap(),
        Some(anchor + 300_000)
    );
    assert_eq!(
        e.next_after(anchor, anchor + 300_000, "UTC").unwrap(),
        Some(anchor + 600_000)
    );
    // A thousand periods later, still on the anchor's grid.
    let late = anchor + 1_000 * 300_000 + 123;
    assert_eq!(
        e.next_after(anchor, late, "UTC").unwrap(),
        Some(anchor + 1_001 * 300_000)
    );
    // A day is 24 hours even across a DST change.
    let d = parse_scheduler_expression("rate(1 day)").unwrap();
    let a = ms("2024-03-09T12:00:00Z");
    assert_eq!(
        d.next_after(a, a, "America/New_York").unwrap(),
        Some(ms("2024-03-10T12:00:00Z"))
    );
    // Beyond year 2199 nothing fires.
    assert_eq!(
        e.next_after(0, ms("2199-12-31T23:58:00Z"), "UTC").unwrap(),
        None
    );
}

#[test]
fn cron_in_utc() {
    assert_eq!(
        fires("cron(0 9 * * ? *)", "UTC", "2026-11-21T09:00:00Z", 3),
        [
            "2026-11-22T09:00:00Z",
            "2026-11-23T09:00:00Z",
            "2026-11-24T09:00:00Z"
        ]
    );
    // Strictly after: a fire time equal to `after` is not returned again.
    assert_eq!(
        fires("cron(0 9 * * ? *)", "UTC", "2026-11-21T08:59:59.999Z", 1),
        ["2026-11-21T09:00:00Z"]
    );
    assert_eq!(
        fires("cron(0/15 * * * ? *)", "UTC", "2026-11-21T23:50:00Z", 3),
        [
            "2026-11-22T00:00:00Z",
            "2026-11-22T00:15:00Z",
            "2026-11-22T00:30:00Z"
        ]
    );
    // Weekdays at 18:00: Friday 2026-11-20 → Monday 23rd.
    assert_eq!(
        fires("cron(0 18 ? * MON-FRI *)", "UTC", "2026-11-20T18:00:00Z", 2),
        ["2026-11-23T18:00:00Z", "2026-11-24T18:00:00Z"]
    );
    // Leap day only: every four years (2100 is not a leap year).
    assert_eq!(
        fires("cron(0 0 29 2 ? *)", "UTC", "2096-03-01T00:00:00Z", 2),
        ["2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z"]
    );
    // Last day of the month through a year end and a leap February.
    assert_eq!(
        fires("cron(30 23 L * ? *)", "UTC", "2023-12-01T00:00:00Z", 3),
        [
            "2023-12-31T23:30:00Z",
            "2024-01-31T23:30:00Z",
            "2024-02-29T23:30:00Z"
        ]
    );
    // A year list ends the schedule.
    assert_eq!(
        fires(
            "cron(0 0 1 1 ? 2027,2029)",
            "UTC",
            "2026-06-01T00:00:00Z",
            5
        ),
        ["2027-01-01T00:00:00Z", "2029-01-01T00:00:00Z"]
    );
    // Never: February 30th.
    assert!(fires("cron(0 0 30 2 ? *)", "UTC", "2026-01-01T00:00:00Z", 1).is_empty());
    // The last possible fire, then none.
    assert_eq!(
        fires("cron(59 23 31 12 ? 2199)", "UTC", "2199-01-01T00:00:00Z", 2),
        ["2199-12-31T23:59:00Z"]
    );
    // Before 1970: the search starts at 1970.
    assert_eq!(
        fires("cron(0 0 1 1 ? *)", "UTC", "1960-06-01T00:00:00Z", 1),
        ["1970-01-01T00:00:00Z"]
    );
}

#[test]
fn cron_respects_the_anchor() {
    let e = parse_rule_expression("cron(0 * * * ? *)").unwrap();
    let anchor = ms("2026-01-01T10:00:00Z");
    assert_eq!(e.next_after(anchor, 0, "UTC").unwrap(), Some(anchor));
    assert_eq!(
        e.next_after(anchor + 1, 0, "UTC").unwrap(),
        Some(ms("2026-01-01T11:00:00Z"))
    );
}

#[test]
fn cron_in_a_time_zone() {
    // 09:00 in New York is 14:00Z in winter and 13:00Z in summer.
    assert_eq!(
        fires(
            "cron(0 9 * * ? *)",
            "America/New_York",
            "2024-03-08T15:00:00Z",
            3
        ),
        [
            "2024-03-09T14:00:00Z",
            "2024-03-10T13:00:00Z",
            "2024-03-11T13:00:00Z"
        ]
    );
    // India has a half-hour offset and no DST.
    assert_eq!(
        fires(
            "cron(0 9 * * ? *)",
            "Asia/Kolkata",
            "2024-01-01T00:00:00Z",
            1
        ),
        ["2024-01-01T03:30:00Z"]
    );
}

#[test]
fn dst_gap_skips_and_fold_fires_once() {
    // 2024-03-10 02:00 EST → 03:00 EDT: 02:30 does not exist that day and is skipped.
    assert_eq!(
        fires(
            "cron(30 2 * * ? *)",
            "America/New_York",
            "2024-03-09T12:00:00Z",
            3
        ),
        [
            "2024-03-11T06:30:00Z",
            "2024-03-12T06:30:00Z",
            "2024-03-13T06:30:00Z"
        ]
    );
    // Every 30 minutes across the gap: 01:30 EST then 03:00 EDT.
    assert_eq!(
        fires(
            "cron(0/30 * * * ? *)",
            "America/New_York",
            "2024-03-10T06:00:00Z",
            3
        ),
        [
            "2024-03-10T06:30:00Z",
            "2024-03-10T07:00:00Z",
            "2024-03-10T07:30:00Z"
        ]
    );
    // 2024-11-03 02:00 EDT → 01:00 EST: 01:30 happens twice and fires once, at the first (EDT).
    assert_eq!(
        fires(
            "cron(30 1 * * ? *)",
            "America/New_York",
            "2024-11-02T12:00:00Z",
            2
        ),
        ["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"]
    );
    // Every 30 minutes through the fold: the repeated hour is not run again.
    assert_eq!(
        fires(
            "cron(0/30 * * * ? *)",
            "America/New_York",
            "2024-11-03T04:45:00Z",
            5
        ),
        [
            "2024-11-03T05:00:00Z", // 01:00 EDT
            "2024-11-03T05:30:00Z", // 01:30 EDT
            "2024-11-03T07:00:00Z", // 02:00 EST (01:00 and 01:30 EST skipped)
            "2024-11-03T07:30:00Z",
            "2024-11-03T08:00:00Z",
        ]
    );
    // Asked from inside the second pass of the fold, the next fire is after the fold.
    assert_eq!(
        fires(
            "cron(* * * * ? *)",
            "America/New_York",
            "2024-11-03T06:30:00Z",
            1
        ),
        ["2024-11-03T07:00:00Z"]
    );
    // Europe/London: 2024-03-31 01:00 GMT → 02:00 BST.
    assert_eq!(
        fires(
            "cron(30 1 * * ? *)",
            "Europe/London",
            "2024-03-30T12:00:00Z",
            2
        ),
        ["2024-04-01T00:30:00Z", "2024-04-02T00:30:00Z"]
    );
    // Samoa skipped 2011-12-30 entirely: a daily noon fire jumps from the 29th to the 31st.
    assert_eq!(
        fires(
            "cron(0 12 * * ? *)",
            "Pacific/Apia",
            "2011-12-29T00:00:00Z",
            2
        ),
        ["2011-12-29T22:00:00Z", "2011-12-30T22:00:00Z"]
    );
}

#[test]
fn at_fires_once_in_its_zone() {
    let e = parse_scheduler_expression("at(2030-06-01T12:00:00)").unwrap();
    let t = ms("2030-06-01T12:00:00Z");
    assert_eq!(e.next_after(0, 0, "UTC").unwrap(), Some(t));
    assert_eq!(e.next_after(0, t - 1, "UTC").unwrap(), Some(t));
    assert_eq!(e.next_after(0, t, "UTC").unwrap(), None);
    assert_eq!(
        e.next_after(0, 0, "America/Los_Angeles").unwrap(),
        Some(ms("2030-06-01T19:00:00Z"))
    );
    // Not before the anchor.
    assert_eq!(e.next_after(t + 1, 0, "UTC").unwrap(), None);
    // In a gap: read with the offset before it (02:30 EST = 07:30Z = 03:30 EDT).
    let gap = parse_scheduler_expression("at(2024-03-10T02:30:00)").unwrap();
    assert_eq!(
        gap.next_after(0, 0, "America/New_York").unwrap(),
        Some(ms("2024-03-10T07:30:00Z"))
    );
    // In a fold: the first occurrence.
    let fold = parse_scheduler_expression("at(2024-11-03T01:30:00)").unwrap();
    assert_eq!(
        fold.next_after(0, 0, "America/New_York").unwrap(),
        Some(ms("2024-11-03T05:30:00Z"))
    );
}

#[test]
fn extreme_instants_do_not_panic() {
    for expr in [
        "rate(1 minute)",
        "cron(* * * * ? *)",
        "cron(0 0 ? * 6L *)",
        "at(2199-12-31T23:59:59)",
    ] {
        let e = parse_scheduler_expression(expr).unwrap();
        for tz in ["UTC", "America/New_York", "Pacific/Apia"] {
            for (anchor, after) in [
                (i64::MIN, i64::MIN),
                (i64::MAX, i64::MAX),
                (0, i64::MAX),
                (i64::MIN, 0),
                (i64::MAX, 0),
            ] {
                let _ = e.next_after(anchor, after, tz);
            }
        }
    }
}

#[test]
fn iso_formatting() {
    assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        iso8601_utc(ms("2024-02-29T23:59:59Z") + 999),
        "2024-02-29T23:59:59Z"
    );
    assert_eq!(iso8601_utc(-1), "1969-12-31T23:59:59Z");
}
