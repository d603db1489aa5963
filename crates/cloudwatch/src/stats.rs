//! CloudWatch statistics: parsing statistic names and computing each statistic from one period's
//! [`Bucket`], as defined in the user guide ("CloudWatch statistics definitions").
//!
//! Semantics chosen where the documentation leaves room (all deterministic, table-tested below):
//!
//! * **Percentiles** (`pNN`) use the nearest-rank rule on the weighted distribution: the smallest
//!   value whose cumulative weight reaches `NN%` of the total. The result is always a published
//!   value ("95 percent of the data is lower than this value"); `p0` is the minimum, `p100` the
//!   maximum. No interpolation: CloudWatch documents none.
//! * **Percentage boundaries** (`tm90`, `TM(10%:90%)`, `IQM`, `WM`, `TC`, `TS`) trim whole data
//!   points by rank and never more than asked: with `N` data points, the lowest `floor(lo% * N)` and
//!   the highest `N - ceil(hi% * N)` are trimmed. So `tm99` keeps exactly the points up to `p99`,
//!   matching the guide's "p99 is the maximum of the remaining 99%, tm99 is the average".
//!   Fractional `Counts` weights are trimmed proportionally.
//! * **Value boundaries** (`TM(150:1000)`, `PR(:300)`, ...) exclude the lower and include the upper
//!   boundary, as the guide's note says.
//! * **Winsorized mean** replaces trimmed points by the lowest/highest kept value (percentages) or by
//!   the boundary value itself (values), then averages over all points.
//! * The percentile family needs raw values ([`Bucket::values`]) and is unavailable when any value
//!   is negative ("Percentile statistics are not available for metrics when any of the metric values
//!   are negative numbers"); such statistics yield `None` and the datapoint omits them.

use opsloop_tsdb::Bucket;

/// Boundaries of a trimmed-family statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bounds {
    /// Percentages (0–100) of the data points, by rank. `None` is an open end.
    Percent { lo: Option<f64>, hi: Option<f64> },
    /// Values: lower exclusive, upper inclusive. `None` is an open end.
    Value { lo: Option<f64>, hi: Option<f64> },
}

/// A statistic that needs the distribution of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extended {
    Percentile(f64),
    TrimmedMean(Bounds),
    WinsorizedMean(Bounds),
    TrimmedCount(Bounds),
    TrimmedSum(Bounds),
    /// `PR(lo:hi)`: percentage of data points with `lo < value <= hi`.
    PercentileRank {
        lo: Option<f64>,
        hi: Option<f64>,
    },
}

/// Any statistic CloudWatch accepts in `Stat`, `Statistics` or `ExtendedStatistics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    Extended(Extended),
}

impl Statistic {
    /// A standard statistic name or an extended statistic.
    pub fn parse(s: &str) -> Option<Statistic> {
        parse_standard(s).or_else(|| parse_extended(s).map(Statistic::Extended))
    }

    /// Whether computing this statistic needs [`Bucket::values`].
    pub fn needs_values(&self) -> bool {
        matches!(self, Statistic::Extended(_))
    }

    /// The statistic of one period, or `None` when it cannot be computed for it.
    pub fn compute(&self, b: &Bucket) -> Option<f64> {
        match self {
            Statistic::SampleCount => Some(b.count),
            Statistic::Average => (b.count > 0.0).then(|| b.sum / b.count),
            Statistic::Sum => Some(b.sum),
            Statistic::Minimum => Some(b.min),
            Statistic::Maximum => Some(b.max),
            Statistic::Extended(e) => e.compute(b),
        }
    }
}

/// `SampleCount`, `Average`, `Sum`, `Minimum` or `Maximum`.
pub fn parse_standard(s: &str) -> Option<Statistic> {
    Some(match s {
        "SampleCount" => Statistic::SampleCount,
        "Average" => Statistic::Average,
        "Sum" => Statistic::Sum,
        "Minimum" => Statistic::Minimum,
        "Maximum" => Statistic::Maximum,
        _ => return None,
    })
}

type BoundsCtor = fn(Bounds) -> Extended;

/// The lowercase single-number forms and the uppercase range forms of the trimmed family.
const TRIMMED_FAMILY: [(&str, &str, BoundsCtor); 4] = [
    ("tm", "TM", Extended::TrimmedMean),
    ("wm", "WM", Extended::WinsorizedMean),
    ("tc", "TC", Extended::TrimmedCount),
    ("ts", "TS", Extended::TrimmedSum),
];

/// An extended statistic: `pNN.NN`, `tmNN`/`TM(a:b)`, `wmNN`/`WM(a:b)`, `tcNN`/`TC(a:b)`,
/// `tsNN`/`TS(a:b)`, `PR(a:b)` or `IQM`.
pub fn parse_extended(s: &str) -> Option<Extended> {
    if s == "IQM" {
        return Some(Extended::TrimmedMean(Bounds::Percent {
            lo: Some(25.0),
            hi: Some(75.0),
        }));
    }
    if let Some(rest) = s.strip_prefix('p') {
        return percent(rest).map(Extended::Percentile);
    }
    for (lower, upper, ctor) in TRIMMED_FAMILY {
        if let Some(rest) = s.strip_prefix(lower) {
            return percent(rest).map(|hi| {
                ctor(Bounds::Percent {
                    lo: None,
                    hi: Some(hi),
                })
            });
        }
        if let Some(rest) = s.strip_prefix(upper) {
            return parse_bounds(parenthesized(rest)?).map(ctor);
        }
    }
    if let Some(rest) = s.strip_prefix("PR") {
        return match parse_bounds(parenthesized(rest)?)? {
            Bounds::Value { lo, hi } => Some(Extended::PercentileRank { lo, hi }),
            Bounds::Percent { .. } => None,
        };
    }
    None
}

fn parenthesized(s: &str) -> Option<&str> {
    s.strip_prefix('(')?.strip_suffix(')')
}

/// Digits with an optional fraction of at most 10 digits; an optional leading minus when `signed`.
fn number(s: &str, signed: bool) -> Option<f64> {
    let body = if signed {
        s.strip_prefix('-').unwrap_or(s)
    } else {
        s
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f) || f.len() > 10) {
        return None;
    }
    s.parse().ok()
}

fn percent(s: &str) -> Option<f64> {
    number(s, false).filter(|p| (0.0..=100.0).contains(p))
}

/// `a:b` where each side is empty, `N%` or `N`; both sides of one kind; at least one side.
fn parse_bounds(inner: &str) -> Option<Bounds> {
    let (lo, hi) = inner.split_once(':')?;
    let side = |t: &str| -> Option<Option<(f64, bool)>> {
        if t.is_empty() {
            Some(None)
        } else if let Some(p) = t.strip_suffix('%') {
            percent(p).map(|v| Some((v, true)))
        } else {
            number(t, true).map(|v| Some((v, false)))
        }
    };
    let (lo, hi) = (side(lo)?, side(hi)?);
    let is_percent = match (lo, hi) {
        (None, None) => return None,
        (Some((_, a)), Some((_, b))) if a != b => return None,
        (Some((_, p)), _) | (_, Some((_, p))) => p,
    };
    let (lo, hi) = (lo.map(|x| x.0), hi.map(|x| x.0));
    if let (Some(a), Some(b)) = (lo, hi) {
        if a >= b {
            return None;
        }
    }
    Some(if is_percent {
        Bounds::Percent { lo, hi }
    } else {
        Bounds::Value { lo, hi }
    })
}

/// The usable distribution of a bucket: present, non-empty, without negative values.
fn distribution(b: &Bucket) -> Option<Vec<(f64, f64)>> {
    let values = b.values.as_deref()?;
    if values.iter().any(|&(v, _)| v < 0.0 || v.is_nan()) {
        return None;
    }
    let kept: Vec<(f64, f64)> = values
        .iter()
        .copied()
        .filter(|&(_, w)| w > 0.0 && w.is_finite())
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn total(d: &[(f64, f64)]) -> f64 {
    d.iter().map(|&(_, w)| w).sum()
}

fn eps(total: f64) -> f64 {
    1e-9 * total.max(1.0)
}

/// Nearest-rank percentile of a sorted weighted distribution.
fn percentile(d: &[(f64, f64)], p: f64) -> Option<f64> {
    let first = d.first()?.0;
    let w = total(d);
    let target = p / 100.0 * w - eps(w);
    if p <= 0.0 {
        return Some(first);
    }
    let mut cum = 0.0;
    for &(v, wt) in d {
        cum += wt;
        if cum >= target {
            return Some(v);
        }
    }
    d.last().map(|&(v, _)| v)
}

/// Rank positions `(L, H]` kept by percentage boundaries.
fn rank_window(w: f64, lo: Option<f64>, hi: Option<f64>) -> (f64, f64) {
    let e = eps(w);
    let l = lo
        .map_or(0.0, |p| (p / 100.0 * w + e).floor())
        .clamp(0.0, w);
    let h = hi.map_or(w, |p| (p / 100.0 * w - e).ceil()).clamp(0.0, w);
    (l, h)
}

/// `(kept weight, kept weighted sum)` for the boundaries.
fn trimmed(d: &[(f64, f64)], bounds: Bounds) -> (f64, f64) {
    match bounds {
        Bounds::Percent { lo, hi } => {
            let (l, h) = rank_window(total(d), lo, hi);
            let (mut count, mut sum, mut c0) = (0.0, 0.0, 0.0);
            for &(v, w) in d {
                let c1 = c0 + w;
                let overlap = (c1.min(h) - c0.max(l)).max(0.0);
                count += overlap;
                sum += v * overlap;
                c0 = c1;
            }
            (count, sum)
        }
        Bounds::Value { lo, hi } => d
            .iter()
            .filter(|&&(v, _)| lo.is_none_or(|a| v > a) && hi.is_none_or(|b| v <= b))
            .fold((0.0, 0.0), |(c, s), &(v, w)| (c + w, s + v * w)),
    }
}

fn winsorized(d: &[(f64, f64)], bounds: Bounds) -> Option<f64> {
    let w = total(d);
    match bounds {
        Bounds::Percent { lo, hi } => {
            let (l, h) = rank_window(w, lo, hi);
            if h <= l {
                return None;
            }
            let (_, kept_sum) = trimmed(d, bounds);
            let e = eps(w);
            let mut c = 0.0;
            let (mut v_lo, mut v_hi) = (None, None);
            for &(v, wt) in d {
                c += wt;
                if v_lo.is_none() && c > l + e {
                    v_lo = Some(v);
                }
                if v_hi.is_none() && c >= h - e {
                    v_hi = Some(v);
                }
            }
            let (v_lo, v_hi) = (v_lo?, v_hi?);
            Some((kept_sum + l * v_lo + (w - h) * v_hi) / w)
        }
        Bounds::Value { lo, hi } => {
            let clamp = |v: f64| {
                let v = lo.map_or(v, |a| v.max(a));
                hi.map_or(v, |b| v.min(b))
            };
            Some(d.iter().map(|&(v, wt)| clamp(v) * wt).sum::<f64>() / w)
        }
    }
}

impl Extended {
    /// The statistic of one period, or `None` when the bucket cannot provide it.
    pub fn compute(&self, b: &Bucket) -> Option<f64> {
        let d = distribution(b)?;
        match *self {
            Extended::Percentile(p) => percentile(&d, p),
            Extended::TrimmedMean(bounds) => {
                let (count, sum) = trimmed(&d, bounds);
                (count > 0.0).then(|| sum / count)
            }
            Extended::TrimmedCount(bounds) => Some(trimmed(&d, bounds).0),
            Extended::TrimmedSum(bounds) => Some(trimmed(&d, bounds).1),
            Extended::WinsorizedMean(bounds) => winsorized(&d, bounds),
            Extended::PercentileRank { lo, hi } => {
                let (count, _) = trimmed(&d, Bounds::Value { lo, hi });
                Some(100.0 * count / total(&d))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(values: &[f64]) -> Bucket {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Bucket {
            start_ms: 0,
            count: values.len() as f64,
            sum: values.iter().sum(),
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
            values: Some(sorted.into_iter().map(|v| (v, 1.0)).collect()),
        }
    }

    fn weighted(pairs: &[(f64, f64)]) -> Bucket {
        let count = pairs.iter().map(|p| p.1).sum();
        Bucket {
            start_ms: 0,
            count,
            sum: pairs.iter().map(|p| p.0 * p.1).sum(),
            min: pairs[0].0,
            max: pairs[pairs.len() - 1].0,
            values: Some(pairs.to_vec()),
        }
    }

    fn stat(name: &str, b: &Bucket) -> Option<f64> {
        Statistic::parse(name)
            .unwrap_or_else(|| panic!("{name} should parse"))
            .compute(b)
    }

    fn one_to(n: usize) -> Bucket {
        bucket(&(1..=n).map(|i| i as f64).collect::<Vec<_>>())
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn standard_statistics() {
        let b = bucket(&[2.0, 4.0, 9.0]);
        for (name, want) in [
            ("SampleCount", 3.0),
            ("Sum", 15.0),
            ("Average", 5.0),
            ("Minimum", 2.0),
            ("Maximum", 9.0),
        ] {
            assert_eq!(stat(name, &b), Some(want), "{name}");
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let b = one_to(10);
        // (statistic, hand-computed value): rank = ceil(p/100 * 10).
        let table = [
            ("p0", 1.0),
            ("p10", 1.0),
            ("p10.01", 2.0),
            ("p50", 5.0),
            ("p90", 9.0),
            ("p95", 10.0),
            ("p99.9", 10.0),
            ("p100", 10.0),
        ];
        for (name, want) in table {
            assert_eq!(stat(name, &b), Some(want), "{name}");
        }
    }

    #[test]
    fn percentiles_honour_counts() {
        // 10 occurs 3 times, 20 once: p75 is rank 3 -> 10, p76 is rank 4 -> 20.
        let b = weighted(&[(10.0, 3.0), (20.0, 1.0)]);
        assert_eq!(stat("p75", &b), Some(10.0));
        assert_eq!(stat("p76", &b), Some(20.0));
    }

    #[test]
    fn trimmed_family_by_percentage() {
        let b = one_to(10);
        let table = [
            ("tm90", 5.0),        // 1..9
            ("TM(:90%)", 5.0),    // same as tm90
            ("TM(10%:90%)", 5.5), // 2..9
            ("TM(10%:)", 6.0),    // 2..10
            ("tc90", 9.0),
            ("TC(10%:90%)", 8.0),
            ("ts90", 45.0),
            ("TS(80%:)", 19.0), // 9 + 10
            ("tm100", 5.5),
            ("tm95", 5.5),    // ceil(9.5) = 10 points kept: never trims more than asked
            ("TM(5%:)", 5.5), // floor(0.5) = 0 points trimmed
        ];
        for (name, want) in table {
            assert!(close(stat(name, &b), want), "{name}: {:?}", stat(name, &b));
        }
    }

    #[test]
    fn interquartile_mean_is_tm_25_75() {
        let b = one_to(8);
        // Ranks 3..=6 are kept: (3+4+5+6)/4.
        assert!(close(stat("IQM", &b), 4.5));
        assert_eq!(stat("IQM", &b), stat("TM(25%:75%)", &b));
    }

    #[test]
    fn trimmed_family_by_value_excludes_lower_includes_upper() {
        let b = bucket(&[100.0, 150.0, 200.0, 1000.0, 1500.0]);
        assert!(close(stat("TM(150:1000)", &b), 600.0)); // 200 and 1000
        assert!(close(stat("TC(150:1000)", &b), 2.0));
        assert!(close(stat("TS(150:1000)", &b), 1200.0));
        assert!(close(stat("TC(:150)", &b), 2.0));
        assert!(close(stat("TC(1000:)", &b), 1.0));
    }

    #[test]
    fn trimmed_mean_of_nothing_is_absent() {
        let b = bucket(&[1.0, 2.0]);
        assert_eq!(stat("TM(5:6)", &b), None);
        assert_eq!(stat("TC(5:6)", &b), Some(0.0));
    }

    #[test]
    fn winsorized_mean() {
        let b = one_to(10);
        // 1 -> 2 and 10 -> 9: (2+2+3+...+9+9)/10.
        assert!(close(stat("WM(10%:90%)", &b), 5.5));
        // wm90: 10 -> 9: (45 + 9)/10.
        assert!(close(stat("wm90", &b), 5.4));
        let v = bucket(&[1.0, 5.0, 10.0]);
        // Clamped to the boundaries: 2, 5, 8.
        assert!(close(stat("WM(2:8)", &v), 5.0));
    }

    #[test]
    fn percentile_rank() {
        let b = bucket(&[100.0, 200.0, 300.0, 400.0]);
        assert!(close(stat("PR(:300)", &b), 75.0));
        assert!(close(stat("PR(100:300)", &b), 50.0));
        assert!(close(stat("PR(400:)", &b), 0.0));
    }

    #[test]
    fn fractional_counts_trim_proportionally() {
        // Total weight 2: tm50 keeps rank positions (0, 1]: the halves of 4 and 6.
        let b = weighted(&[(4.0, 0.5), (6.0, 0.5), (10.0, 1.0)]);
        assert!(close(stat("tm50", &b), 5.0));
        assert!(close(stat("tc50", &b), 1.0));
    }

    #[test]
    fn percentile_family_needs_non_negative_raw_values() {
        let mut b = bucket(&[-1.0, 2.0]);
        assert_eq!(stat("p50", &b), None);
        assert_eq!(stat("Sum", &b), Some(1.0));
        b = bucket(&[1.0, 2.0]);
        b.values = None;
        assert_eq!(stat("tm90", &b), None);
        assert_eq!(stat("Maximum", &b), Some(2.0));
    }

    #[test]
    fn parses_valid_names() {
        for name in [
            "p0",
            "p99",
            "p99.99",
            "p100",
            "p12.3456789012",
            "tm99",
            "tm0.5",
            "wm98",
            "tc90",
            "ts10",
            "TM(2%:98%)",
            "TM(:95%)",
            "TM(10%:)",
            "TM(150:1000)",
            "WM(10%:90%)",
            "TC(0.005:0.030)",
            "TS(80%:)",
            "PR(:300)",
            "PR(100:2000)",
            "PR(-5:5)",
            "IQM",
        ] {
            assert!(parse_extended(name).is_some(), "{name} should parse");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for name in [
            "",
            "p",
            "p101",
            "p-1",
            "P99",
            "p9x",
            "p1.12345678901",
            "tm",
            "TM99",
            "tm(10%:90%)",
            "TM(90%:10%)",
            "TM(10%:500)",
            "TM(:)",
            "TM(5)",
            "TM(10%:90%",
            "PR(10%:20%)",
            "PR()",
            "iqm",
            "Average",
            "p 50",
            "tm101",
            "TC(5:5)",
        ] {
            assert!(parse_extended(name).is_none(), "{name:?} should not parse");
        }
        assert!(Statistic::parse("Average").is_some());
        assert!(Statistic::parse("average").is_none());
    }
}
