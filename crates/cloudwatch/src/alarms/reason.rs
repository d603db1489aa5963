//! `StateReason` texts and `StateReasonData` documents of evaluated alarms, in the shapes of the
//! samples in the CloudWatch user guide ("Alarm events and EventBridge"):
//!
//! ```text
//! Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] was
//!   greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).
//! Thresholds Crossed: 1 out of the last 1 datapoints [0.0 (03/10/19 15:58:00)] was less than the
//!   lower thresholds [0.02] or greater than the upper thresholds [0.30] (minimum 1 datapoint for
//!   OK -> ALARM transition).
//! Insufficient Data: 5 datapoints were unknown.
//! {"version":"1.0","queryDate":"2019-10-02T17:04:40.985+0000","startDate":"2019-10-02T16:59:00.000+0000",
//!  "statistic":"Average","period":300,"recentDatapoints":[99.5],"threshold":50.0,
//!  "evaluatedDatapoints":[{"timestamp":"2019-10-02T16:59:00.000+0000","sampleCount":5.0,"value":99.5}]}
//! ```
//!
//! Datapoints are listed newest first in the text and in `evaluatedDatapoints`, oldest first in
//! `recentDatapoints`. For transitions to OK the text lists the datapoints that do not breach and
//! the minimum is the number of non-breaching datapoints that forces OK (N − M + 1). When missing
//! datapoints were filled, the text adds `and 2 missing datapoints were treated as [Breaching]`
//! (`[NonBreaching]` for `notBreaching`). Texts are kept within `StateReason`'s 1023 characters and
//! documents within `StateReasonData`'s 4000 by listing fewer datapoints.

use serde_json::{json, Map, Value};

use super::evaluate::{Basis, Outcome, Slot};
use super::model::{Comparison, MetricAlarmConfig, StateValue, TreatMissing};
use super::time::{iso_millis, reason_time};
use crate::doc::{f64_value, java_double};

/// Longest `StateReason`.
pub const MAX_REASON: usize = 1023;
/// Longest `StateReasonData`.
pub const MAX_REASON_DATA: usize = 4000;

/// What a reason is built from.
pub struct ReasonInput<'a> {
    pub config: &'a MetricAlarmConfig,
    pub slots: &'a [Slot],
    pub outcome: &'a Outcome,
    pub old: StateValue,
    pub new: StateValue,
    pub query_ms: i64,
    pub period_s: i64,
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn verb(n: usize) -> &'static str {
    if n == 1 {
        "was"
    } else {
        "were"
    }
}

fn static_phrase(op: Comparison, negated: bool) -> &'static str {
    match (op, negated) {
        (Comparison::GreaterOrEqual, false) => "greater than or equal to",
        (Comparison::GreaterOrEqual, true) => "not greater than or equal to",
        (Comparison::Greater, false) => "greater than",
        (Comparison::Greater, true) => "not greater than",
        (Comparison::Less, false) => "less than",
        (Comparison::Less, true) => "not less than",
        (Comparison::LessOrEqual, false) => "less than or equal to",
        (Comparison::LessOrEqual, true) => "not less than or equal to",
        (_, false) => "outside",
        (_, true) => "not outside",
    }
}

fn list(items: &[String], limit: usize) -> String {
    if items.len() <= limit {
        items.join(", ")
    } else {
        let mut out = items[..limit].join(", ");
        out.push_str(", ...");
        out
    }
}

/// The `StateReason` text.
pub fn reason_text(input: &ReasonInput<'_>) -> String {
    let mut limit = usize::MAX;
    loop {
        let text = reason_with_limit(input, limit);
        if text.chars().count() <= MAX_REASON || limit == 0 {
            return text.chars().take(MAX_REASON).collect();
        }
        limit = limit.min(input.slots.len()) / 2;
    }
}

fn reason_with_limit(input: &ReasonInput<'_>, limit: usize) -> String {
    let cfg = input.config;
    let o = input.outcome;
    let n = cfg.evaluation_periods.max(1) as usize;
    let m = cfg.datapoints_to_alarm().clamp(1, n as i64) as usize;
    let treated = match cfg.treat_missing() {
        TreatMissing::Breaching => "Breaching",
        _ => "NonBreaching",
    };
    match (input.new, o.basis) {
        (StateValue::InsufficientData, _) => {
            let unknown = o.missing.max(1);
            return format!(
                "Insufficient Data: {} {} unknown.",
                plural(unknown, "datapoint"),
                verb(unknown)
            );
        }
        (_, Basis::NoData) => {
            return format!(
                "Threshold Crossed: no datapoints were received for {} and {} {} treated as [{treated}].",
                plural(n, "period"),
                plural(o.filled, "missing datapoint"),
                verb(o.filled),
            );
        }
        _ => {}
    }
    let to_alarm = input.new == StateValue::Alarm;
    let chosen: Vec<usize> = o
        .evaluated
        .iter()
        .copied()
        .filter(|&i| {
            input.slots[i]
                .point
                .is_some_and(|p| p.breaching == to_alarm)
        })
        .collect();
    let describe = |i: usize| -> Option<String> {
        let p = input.slots[i].point?;
        Some(format!(
            "{} ({})",
            java_double(p.value),
            reason_time(input.slots[i].start_ms)
        ))
    };
    let points: Vec<String> = chosen.iter().filter_map(|&i| describe(i)).collect();
    let k = points.len();
    let out_of = if o.basis == Basis::Datapoints {
        n
    } else {
        o.evaluated.len()
    };
    let op = cfg.comparison();
    let negated = !to_alarm;
    let predicate = if op.is_band() {
        let bands: Vec<(f64, f64)> = chosen
            .iter()
            .filter_map(|&i| input.slots[i].point.and_then(|p| p.band))
            .collect();
        let lower = list(
            &bands.iter().map(|b| java_double(b.0)).collect::<Vec<_>>(),
            limit,
        );
        let upper = list(
            &bands.iter().map(|b| java_double(b.1)).collect::<Vec<_>>(),
            limit,
        );
        let not = if negated { "not " } else { "" };
        match op {
            Comparison::BelowBand => format!("{not}less than the lower thresholds [{lower}]"),
            Comparison::AboveBand => format!("{not}greater than the upper thresholds [{upper}]"),
            _ => format!(
                "{not}less than the lower thresholds [{lower}] or {not}greater than the upper thresholds [{upper}]"
            ),
        }
    } else {
        format!(
            "{} the threshold ({})",
            static_phrase(op, negated),
            java_double(cfg.threshold.unwrap_or(0.0))
        )
    };
    let head = if op.is_band() {
        "Thresholds Crossed"
    } else {
        "Threshold Crossed"
    };
    let filled = if o.filled > 0 {
        format!(
            ", and {} {} treated as [{treated}]",
            plural(o.filled, "missing datapoint"),
            verb(o.filled)
        )
    } else {
        String::new()
    };
    let minimum = if to_alarm { m } else { n - m + 1 };
    let counted = if k == 0 {
        format!("none of the last {out_of} datapoints was")
    } else {
        format!(
            "{k} out of the last {out_of} datapoints [{}] {}",
            list(&points, limit),
            verb(k)
        )
    };
    format!(
        "{head}: {counted} {predicate}{filled} (minimum {} for {} -> {} transition).",
        plural(minimum, "datapoint"),
        input.old.as_str(),
        input.new.as_str()
    )
}

/// The `StateReasonData` document (as a JSON string).
pub fn reason_data(input: &ReasonInput<'_>) -> String {
    let mut keep = input.slots.len();
    loop {
        let doc = reason_data_with(input, keep).to_string();
        if doc.len() <= MAX_REASON_DATA || keep == 0 {
            return doc;
        }
        keep /= 2;
    }
}

fn reason_data_with(input: &ReasonInput<'_>, keep: usize) -> Value {
    let cfg = input.config;
    let o = input.outcome;
    let mut doc = Map::new();
    doc.insert("version".into(), json!("1.0"));
    doc.insert("queryDate".into(), json!(iso_millis(input.query_ms)));
    // Evaluated periods, newest first: the chosen real datapoints when N of them decided, else
    // every period of the range.
    let shown: Vec<usize> = if o.basis == Basis::Datapoints {
        o.evaluated.clone()
    } else {
        (0..input.slots.len()).rev().collect()
    };
    let shown = &shown[..shown.len().min(keep)];
    if let Some(&oldest) = o.evaluated.iter().rev().find(|i| shown.contains(i)) {
        doc.insert(
            "startDate".into(),
            json!(iso_millis(input.slots[oldest].start_ms)),
        );
    }
    if let Some(unit) = &cfg.unit {
        doc.insert("unit".into(), json!(unit));
    }
    if let Some(stat) = &cfg.statistic {
        doc.insert("statistic".into(), json!(stat));
    }
    if let Some(ext) = &cfg.extended_statistic {
        doc.insert("extendedStatistic".into(), json!(ext));
    }
    doc.insert("period".into(), json!(input.period_s));
    let recent: Vec<usize> = o
        .evaluated
        .iter()
        .rev()
        .copied()
        .filter(|i| shown.contains(i))
        .collect();
    let values = |f: &dyn Fn(&super::evaluate::Point) -> Option<f64>| -> Value {
        Value::Array(
            recent
                .iter()
                .filter_map(|&i| input.slots[i].point.as_ref().and_then(f))
                .map(f64_value)
                .collect(),
        )
    };
    doc.insert("recentDatapoints".into(), values(&|p| Some(p.value)));
    if cfg.comparison().is_band() {
        doc.insert(
            "recentLowerThresholds".into(),
            values(&|p| p.band.map(|b| b.0)),
        );
        doc.insert(
            "recentUpperThresholds".into(),
            values(&|p| p.band.map(|b| b.1)),
        );
    } else if let Some(t) = cfg.threshold {
        doc.insert("threshold".into(), f64_value(t));
    }
    let evaluated: Vec<Value> = shown
        .iter()
        .map(|&i| {
            let slot = &input.slots[i];
            let mut item = Map::new();
            item.insert("timestamp".into(), json!(iso_millis(slot.start_ms)));
            if let Some(p) = &slot.point {
                if let Some(c) = p.sample_count {
                    item.insert("sampleCount".into(), f64_value(c));
                }
                item.insert("value".into(), f64_value(p.value));
            }
            Value::Object(item)
        })
        .collect();
    doc.insert("evaluatedDatapoints".into(), Value::Array(evaluated));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::super::evaluate::{decide, Point, Rules};
    use super::*;

    fn config(op: &str, n: i64, m: i64, treat: &str) -> MetricAlarmConfig {
        MetricAlarmConfig {
            namespace: Some("AWS/EC2".into()),
            metric_name: Some("CPUUtilization".into()),
            dimensions: vec![],
            statistic: Some("Average".into()),
            extended_statistic: None,
            period: Some(300),
            unit: None,
            evaluation_periods: n,
            datapoints_to_alarm: Some(m),
            threshold: Some(50.0),
            threshold_metric_id: None,
            comparison_operator: op.into(),
            treat_missing_data: Some(treat.into()),
            evaluate_low_sample_count_percentile: None,
            metrics: None,
        }
    }

    // 2019-10-02T16:49:00Z, then every 5 minutes.
    const T0: i64 = 1_570_034_940_000;

    fn slots(values: &[Option<f64>], threshold: f64) -> Vec<Slot> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Slot {
                start_ms: T0 + i as i64 * 300_000,
                point: v.map(|value| Point {
                    value,
                    sample_count: Some(5.0),
                    band: None,
                    breaching: value > threshold,
                    low_sample: false,
                }),
            })
            .collect()
    }

    fn build(cfg: &MetricAlarmConfig, s: &[Slot], old: StateValue) -> (String, Value) {
        let rules = Rules {
            evaluation_periods: cfg.evaluation_periods as usize,
            datapoints_to_alarm: cfg.datapoints_to_alarm() as usize,
            treat_missing: cfg.treat_missing(),
            ignore_low_samples: false,
        };
        let outcome = decide(s, &rules);
        let new = match outcome.verdict {
            super::super::evaluate::Verdict::Set(v) => v,
            super::super::evaluate::Verdict::Retain => old,
        };
        let input = ReasonInput {
            config: cfg,
            slots: s,
            outcome: &outcome,
            old,
            new,
            query_ms: T0 + 5 * 300_000 + 40_985,
            period_s: 300,
        };
        let data: Value = serde_json::from_str(&reason_data(&input)).unwrap();
        (reason_text(&input), data)
    }

    #[test]
    fn single_datapoint_reason_matches_the_guide_sample() {
        let cfg = config("GreaterThanThreshold", 1, 1, "missing");
        let s = slots(&[None, None, Some(99.50160229693434)], 50.0);
        let (text, data) = build(&cfg, &s, StateValue::Ok);
        assert_eq!(
            text,
            "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] \
             was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition)."
        );
        assert_eq!(data["version"], "1.0");
        assert_eq!(data["startDate"], "2019-10-02T16:59:00.000+0000");
        assert_eq!(data["statistic"], "Average");
        assert_eq!(data["period"], 300);
        assert_eq!(data["recentDatapoints"], json!([99.50160229693434]));
        assert_eq!(data["threshold"], json!(50.0));
        assert_eq!(
            data["evaluatedDatapoints"],
            json!([{"timestamp": "2019-10-02T16:59:00.000+0000", "sampleCount": 5.0, "value": 99.50160229693434}])
        );
    }

    #[test]
    fn m_of_n_reasons_list_newest_first_and_state_the_minimum() {
        let cfg = config("GreaterThanThreshold", 3, 2, "missing");
        let s = slots(
            &[Some(1.0), Some(1.0), Some(60.0), Some(1.0), Some(70.0)],
            50.0,
        );
        let (text, data) = build(&cfg, &s, StateValue::Ok);
        assert_eq!(
            text,
            "Threshold Crossed: 2 out of the last 3 datapoints [70.0 (02/10/19 17:09:00), 60.0 (02/10/19 16:59:00)] \
             were greater than the threshold (50.0) (minimum 2 datapoints for OK -> ALARM transition)."
        );
        assert_eq!(data["recentDatapoints"], json!([60.0, 1.0, 70.0]));
        let s = slots(
            &[Some(1.0), Some(1.0), Some(60.0), Some(1.0), Some(2.0)],
            50.0,
        );
        let (text, _) = build(&cfg, &s, StateValue::Alarm);
        assert!(
            text.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [2.0 (02/10/19 17:09:00), 1.0 (02/10/19 17:04:00)] were not greater than the threshold (50.0)"),
            "{text}"
        );
        assert!(
            text.ends_with("(minimum 2 datapoints for ALARM -> OK transition)."),
            "{text}"
        );
    }

    #[test]
    fn missing_data_reasons() {
        let cfg = config("GreaterThanThreshold", 3, 3, "missing");
        let s = slots(&[None; 5], 50.0);
        let (text, data) = build(&cfg, &s, StateValue::Ok);
        assert_eq!(text, "Insufficient Data: 5 datapoints were unknown.");
        assert_eq!(data["recentDatapoints"], json!([]));
        assert_eq!(data["evaluatedDatapoints"].as_array().unwrap().len(), 5);
        assert!(data.get("startDate").is_none());

        let cfg = config("GreaterThanThreshold", 3, 3, "breaching");
        let (text, _) = build(&cfg, &s, StateValue::Ok);
        assert_eq!(
            text,
            "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were treated as [Breaching]."
        );
        let s = slots(&[Some(1.0), None, None, None, None], 50.0);
        let cfg = config("GreaterThanThreshold", 3, 2, "breaching");
        let (text, _) = build(&cfg, &s, StateValue::Ok);
        assert_eq!(
            text,
            "Threshold Crossed: none of the last 1 datapoints was greater than the threshold (50.0), and 2 missing \
             datapoints were treated as [Breaching] (minimum 2 datapoints for OK -> ALARM transition)."
        );
    }

    #[test]
    fn long_reasons_are_bounded() {
        let cfg = config("GreaterThanThreshold", 1000, 1000, "missing");
        let s = slots(&vec![Some(1e300); 1002], 50.0);
        let (text, _) = build(&cfg, &s, StateValue::Ok);
        assert!(text.chars().count() <= MAX_REASON);
        assert!(text.contains(", ...]"), "{text}");
        let input_len = {
            let rules = Rules {
                evaluation_periods: 1000,
                datapoints_to_alarm: 1000,
                treat_missing: TreatMissing::Missing,
                ignore_low_samples: false,
            };
            let outcome = decide(&s, &rules);
            reason_data(&ReasonInput {
                config: &cfg,
                slots: &s,
                outcome: &outcome,
                old: StateValue::Ok,
                new: StateValue::Alarm,
                query_ms: T0,
                period_s: 300,
            })
            .len()
        };
        assert!(input_len <= MAX_REASON_DATA);
    }
}
