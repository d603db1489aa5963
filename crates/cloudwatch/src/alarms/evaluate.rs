//! The alarm decision: from the datapoints of an alarm's evaluation range to a new state, as the
//! CloudWatch user guide specifies it ("Alarm evaluation", "Configuring how CloudWatch alarms treat
//! missing data", "Avoiding premature transitions to alarm state").
//!
//! The evaluation range holds `EvaluationPeriods + 2` periods (the guide's examples: 3 evaluation
//! periods, a range of 5), oldest first. Then, with N = `EvaluationPeriods`, M = `DatapointsToAlarm`:
//!
//! 1. If the range holds at least N real datapoints, the N most recent real datapoints are
//!    evaluated; the missing-data setting is not consulted. ALARM if at least M breach, else OK.
//! 2. Otherwise every real datapoint in the range is evaluated and the shortfall (N − real) is
//!    filled per `TreatMissingData` — "CloudWatch uses missing data points only as few times as
//!    possible":
//!    * `breaching`: fills breach; ALARM if breaching real + fills ≥ M, else OK.
//!    * `notBreaching`: fills do not breach; ALARM if breaching real ≥ M, else OK.
//!    * `missing` / `ignore`: with no real datapoint, `missing` goes to INSUFFICIENT_DATA and
//!      `ignore` keeps the current state. With real datapoints: ALARM if at least M breach; OK if any
//!      real datapoint does not breach; otherwise (only breaching datapoints, fewer than M) the
//!      premature-alarm rule applies: when the oldest breaching datapoint is at least M periods old
//!      (counting the newest period of the range as 1) the alarm goes to ALARM under `missing`
//!      (retains its state under `ignore`); when it is younger, the data cannot decide yet, and
//!      `missing` goes to INSUFFICIENT_DATA while `ignore` retains the state.
//!
//! This reproduces both tables of the guide (3 of 3 and 2 of 3, range 5) row by row — see the tests.
//!
//! Percentiles with low sample counts: with `EvaluateLowSampleCountPercentile` = `ignore`, "the
//! alarm state does not change during periods with too few data points"; here, if any evaluated
//! real datapoint has too few samples the state is retained.

use super::model::{StateValue, TreatMissing};

/// One period of the evaluation range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Start of the period, ms since the epoch.
    pub start_ms: i64,
    /// The datapoint, if the period has one that can be compared.
    pub point: Option<Point>,
}

/// A real datapoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub value: f64,
    /// `SampleCount` of the period (single-metric alarms).
    pub sample_count: Option<f64>,
    /// The anomaly band `(lower, upper)` of the period (band alarms).
    pub band: Option<(f64, f64)>,
    pub breaching: bool,
    /// Too few samples for a statistically significant percentile.
    pub low_sample: bool,
}

/// N, M and the missing-data settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub evaluation_periods: usize,
    pub datapoints_to_alarm: usize,
    pub treat_missing: TreatMissing,
    pub ignore_low_samples: bool,
}

/// What the evaluation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Set(StateValue),
    /// Keep the current state (`ignore`, or low-sample percentiles).
    Retain,
}

/// How the verdict was reached (it shapes the `StateReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// N real datapoints decided.
    Datapoints,
    /// Fewer than N real datapoints; the shortfall was filled per `TreatMissingData`.
    Filled,
    /// Fewer than N real datapoints and the real ones decided on their own (`missing` / `ignore`).
    Partial,
    /// The premature-alarm rule.
    Premature,
    /// No real datapoint in the range.
    NoData,
    /// Only breaching datapoints, too few and too recent to decide.
    Undetermined,
    /// A percentile with too few samples under `ignore`.
    LowSample,
}

/// The decision and what it was based on.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub basis: Basis,
    /// Indices (into the slots) of the real datapoints evaluated, newest first.
    pub evaluated: Vec<usize>,
    /// Missing datapoints filled per `TreatMissingData`.
    pub filled: usize,
    /// Breaching datapoints among the evaluated ones, fills included.
    pub breaching: usize,
    /// Missing periods in the range.
    pub missing: usize,
}

/// Decide the state from the slots of the evaluation range (oldest first).
pub fn decide(slots: &[Slot], rules: &Rules) -> Outcome {
    let n = rules.evaluation_periods.max(1);
    let m = rules.datapoints_to_alarm.clamp(1, n);
    let real: Vec<usize> = (0..slots.len())
        .rev()
        .filter(|&i| slots[i].point.is_some())
        .collect();
    let missing = slots.len() - real.len();
    let breaches = |idx: &[usize]| {
        idx.iter()
            .filter(|&&i| slots[i].point.is_some_and(|p| p.breaching))
            .count()
    };
    let outcome = |verdict, basis, evaluated: Vec<usize>, filled, breaching| Outcome {
        verdict,
        basis,
        evaluated,
        filled,
        breaching,
        missing,
    };
    let pick = |b: usize, m: usize| {
        if b >= m {
            StateValue::Alarm
        } else {
            StateValue::Ok
        }
    };

    if real.len() >= n {
        let evaluated: Vec<usize> = real[..n].to_vec();
        if rules.ignore_low_samples && low_sample(slots, &evaluated) {
            return outcome(Verdict::Retain, Basis::LowSample, evaluated, 0, 0);
        }
        let b = breaches(&evaluated);
        return outcome(Verdict::Set(pick(b, m)), Basis::Datapoints, evaluated, 0, b);
    }

    let fill = n - real.len();
    if rules.ignore_low_samples && low_sample(slots, &real) {
        return outcome(Verdict::Retain, Basis::LowSample, real, 0, 0);
    }
    let b = breaches(&real);
    match rules.treat_missing {
        TreatMissing::Breaching => {
            let basis = if real.is_empty() {
                Basis::NoData
            } else {
                Basis::Filled
            };
            outcome(Verdict::Set(pick(b + fill, m)), basis, real, fill, b + fill)
        }
        TreatMissing::NotBreaching => {
            let basis = if real.is_empty() {
                Basis::NoData
            } else {
                Basis::Filled
            };
            outcome(Verdict::Set(pick(b, m)), basis, real, fill, b)
        }
        TreatMissing::Missing | TreatMissing::Ignore => {
            let ignore = rules.treat_missing == TreatMissing::Ignore;
            let undecided = if ignore {
                Verdict::Retain
            } else {
                Verdict::Set(StateValue::InsufficientData)
            };
            if real.is_empty() {
                return outcome(undecided, Basis::NoData, real, 0, 0);
            }
            if b >= m {
                return outcome(Verdict::Set(StateValue::Alarm), Basis::Partial, real, 0, b);
            }
            if real.len() > b {
                return outcome(Verdict::Set(StateValue::Ok), Basis::Partial, real, 0, b);
            }
            // Only breaching datapoints, fewer than M: the premature-alarm rule.
            let oldest = real.last().copied().unwrap_or(0);
            let age = slots.len() - oldest;
            if age >= m {
                let verdict = if ignore {
                    Verdict::Retain
                } else {
                    Verdict::Set(StateValue::Alarm)
                };
                outcome(verdict, Basis::Premature, real, 0, b)
            } else {
                outcome(undecided, Basis::Undetermined, real, 0, b)
            }
        }
    }
}

fn low_sample(slots: &[Slot], idx: &[usize]) -> bool {
    idx.iter()
        .any(|&i| slots[i].point.is_some_and(|p| p.low_sample))
}

/// Whether a percentile statistic computed from `samples` values is "statistically significant"
/// (user guide, "Percentile-based alarms and low data samples"): for a percentile p in [0.5, 1) at
/// least 10/(1−p) samples, for p in (0, 0.5) at least 10/p. `p0` and `p100` are always significant.
pub fn enough_samples(percentile: f64, samples: f64) -> bool {
    let p = percentile / 100.0;
    if p <= 0.0 || p >= 1.0 {
        return true;
    }
    let needed = if p >= 0.5 { 10.0 / (1.0 - p) } else { 10.0 / p };
    samples >= needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateValue::{Alarm, InsufficientData, Ok};

    /// Slots from the guide's notation: `0` not breaching, `X` breaching, `-` missing; the most
    /// recent datapoint is on the right.
    fn slots(pattern: &str) -> Vec<Slot> {
        pattern
            .split_whitespace()
            .enumerate()
            .map(|(i, c)| Slot {
                start_ms: i as i64 * 300_000,
                point: match c {
                    "-" => None,
                    x => Some(Point {
                        value: if x == "X" { 10.0 } else { 0.0 },
                        sample_count: Some(1.0),
                        band: None,
                        breaching: x == "X",
                        low_sample: false,
                    }),
                },
            })
            .collect()
    }

    fn rules(n: usize, m: usize, treat: TreatMissing) -> Rules {
        Rules {
            evaluation_periods: n,
            datapoints_to_alarm: m,
            treat_missing: treat,
            ignore_low_samples: false,
        }
    }

    /// `None` = "Retain current state".
    type Row = (&'static str, [Option<StateValue>; 4]);

    fn check(n: usize, m: usize, table: &[Row]) {
        let modes = [
            TreatMissing::Missing,
            TreatMissing::Ignore,
            TreatMissing::Breaching,
            TreatMissing::NotBreaching,
        ];
        for (pattern, expected) in table {
            for (mode, want) in modes.iter().zip(expected) {
                let got = decide(&slots(pattern), &rules(n, m, *mode)).verdict;
                let want = match want {
                    Some(s) => Verdict::Set(*s),
                    None => Verdict::Retain,
                };
                assert_eq!(got, want, "{m} of {n}, data `{pattern}`, {mode:?}");
            }
        }
    }

    #[test]
    fn guide_table_three_of_three() {
        // "How alarm state is evaluated when data is missing", first table (columns MISSING,
        // IGNORE, BREACHING, NOT BREACHING).
        check(
            3,
            3,
            &[
                ("0 - X - X", [Some(Ok), Some(Ok), Some(Ok), Some(Ok)]),
                ("0 - - - -", [Some(Ok), Some(Ok), Some(Ok), Some(Ok)]),
                (
                    "- - - - -",
                    [Some(InsufficientData), None, Some(Alarm), Some(Ok)],
                ),
                (
                    "0 X X - X",
                    [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
                ),
                ("- - X - -", [Some(Alarm), None, Some(Alarm), Some(Ok)]),
                // The earlier edition of the table, and the premature-alarm section: a breach that
                // is too recent does not alarm yet; one at least M periods old does.
                (
                    "- - - - X",
                    [Some(InsufficientData), None, Some(Alarm), Some(Ok)],
                ),
                ("X - - - -", [Some(Alarm), None, Some(Alarm), Some(Ok)]),
            ],
        );
    }

    #[test]
    fn guide_table_two_of_three() {
        check(
            3,
            2,
            &[
                (
                    "0 - X - X",
                    [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
                ),
                (
                    "0 0 X 0 X",
                    [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
                ),
                ("0 - X - -", [Some(Ok), Some(Ok), Some(Alarm), Some(Ok)]),
                ("- - - - 0", [Some(Ok), Some(Ok), Some(Alarm), Some(Ok)]),
                ("- - - X -", [Some(Alarm), None, Some(Alarm), Some(Ok)]),
                (
                    "- - - - X",
                    [Some(InsufficientData), None, Some(Alarm), Some(Ok)],
                ),
            ],
        );
    }

    #[test]
    fn premature_transition_examples() {
        // "- - - - X" and "- - - X -" with M = 3 do not alarm; "- - X - -" does.
        let r = rules(3, 3, TreatMissing::Missing);
        assert_eq!(decide(&slots("- - - - X"), &r).basis, Basis::Undetermined);
        assert_eq!(decide(&slots("- - - X -"), &r).basis, Basis::Undetermined);
        let o = decide(&slots("- - X - -"), &r);
        assert_eq!(
            (o.verdict, o.basis),
            (Verdict::Set(Alarm), Basis::Premature)
        );
    }

    #[test]
    fn m_of_n_counts_only_the_most_recent_n_real_points() {
        // Breaching points need not be consecutive; only the last N real points count.
        let r = rules(5, 4, TreatMissing::Missing);
        let o = decide(&slots("0 0 X X 0 X X"), &r);
        assert_eq!(o.verdict, Verdict::Set(Alarm));
        assert_eq!(o.evaluated, vec![6, 5, 4, 3, 2]);
        assert_eq!(o.breaching, 4);
        assert_eq!(
            decide(&slots("0 0 X 0 0 X X"), &r).verdict,
            Verdict::Set(Ok)
        );
        // Real points further back fill in for missing recent ones.
        let o = decide(&slots("X X - X X X -"), &r);
        assert_eq!(o.basis, Basis::Datapoints);
        assert_eq!(o.verdict, Verdict::Set(Alarm));
    }

    #[test]
    fn fills_are_used_as_few_times_as_possible() {
        let o = decide(&slots("0 - X - -"), &rules(3, 3, TreatMissing::Breaching));
        assert_eq!(o.filled, 1);
        assert_eq!(o.breaching, 2);
        assert_eq!(o.verdict, Verdict::Set(Ok));
        assert_eq!(o.evaluated, vec![2, 0]);
    }

    #[test]
    fn low_sample_percentiles_retain_state_when_ignored() {
        let mut s = slots("X X X");
        if let Some(p) = s[2].point.as_mut() {
            p.low_sample = true;
        }
        let mut r = rules(1, 1, TreatMissing::Missing);
        r.ignore_low_samples = true;
        assert_eq!(decide(&s, &r).verdict, Verdict::Retain);
        r.ignore_low_samples = false;
        assert_eq!(decide(&s, &r).verdict, Verdict::Set(Alarm));
    }

    #[test]
    fn sample_significance_follows_the_guide() {
        assert!(!enough_samples(99.0, 999.0));
        assert!(enough_samples(99.0, 1000.0));
        assert!(!enough_samples(50.0, 19.0));
        assert!(enough_samples(50.0, 20.0));
        assert!(!enough_samples(10.0, 99.0));
        assert!(enough_samples(10.0, 100.0));
        assert!(enough_samples(100.0, 1.0));
    }
}
