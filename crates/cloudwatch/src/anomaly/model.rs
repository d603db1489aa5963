//! The anomaly detection model behind `ANOMALY_DETECTION_BAND(m, k)`.
//!
//! CloudWatch does not publish its algorithm; this is opsloop's, documented here so that its bands
//! are explainable. It is trained on the metric's statistic at the band's period over the 14 days
//! before the end of the requested window (the "past two weeks" the CloudWatch guide says models
//! train on), minus `Configuration.ExcludedTimeRanges`. All estimators are robust (medians), so a few
//! anomalies inside the training data barely move the band.
//!
//! 1. **Trend** — the median of each UTC day's values; a Theil–Sen line through those daily medians
//!    (the median of all pairwise slopes, then the median intercept). One day of data gives a flat
//!    trend at the overall median.
//! 2. **Daily seasonality** — the median residual (value − trend) per hour of day, evaluated with
//!    linear interpolation between hour midpoints, so smooth daily cycles are followed within the
//!    hour. Hours with fewer than 3 training values contribute 0.
//! 3. **Weekly seasonality** — the median of the remaining residual per day of week (weekday /
//!    weekend effects). Days with fewer than 3 values contribute 0.
//! 4. **Spread** — σ = 1.4826 × MAD of the final residuals (the MAD-based estimate of a standard
//!    deviation), floored at max(1e-9, 0.1% of the median absolute value) so a perfectly flat metric
//!    still has a band.
//!
//! The band at time t is `prediction(t) ± k·σ` (k defaults to 2, "standard deviations" as in the
//! guide). Fewer than [`MIN_POINTS`] training values give no model: the band is absent and
//! anomaly-detection alarms treat those periods as missing data.

/// Fewest training values that make a model.
pub const MIN_POINTS: usize = 12;
/// Training window length.
pub const TRAINING_MS: i64 = 14 * DAY_MS;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const MAD_SCALE: f64 = 1.4826;
const MIN_BUCKET: usize = 3;

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Trend value at `origin_ms` and slope per millisecond.
    intercept: f64,
    slope: f64,
    origin_ms: i64,
    hour: [f64; 24],
    weekday: [f64; 7],
    center: f64,
    /// Robust standard deviation of the residuals.
    pub spread: f64,
    /// Training values used.
    pub points: usize,
}

/// Median of a slice (sorts it); `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn hour_of_day(ts_ms: i64) -> usize {
    (ts_ms.rem_euclid(DAY_MS) / HOUR_MS) as usize
}

/// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
fn day_of_week(ts_ms: i64) -> usize {
    (ts_ms.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize
}

/// Per-bucket medians of `values` keyed by `bucket`; buckets with too few values are 0.
fn profile<const N: usize>(items: impl Iterator<Item = (usize, f64)>) -> [f64; N] {
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); N];
    for (b, v) in items {
        if let Some(bucket) = buckets.get_mut(b) {
            bucket.push(v);
        }
    }
    let mut out = [0.0; N];
    for (slot, bucket) in out.iter_mut().zip(buckets.iter_mut()) {
        if bucket.len() >= MIN_BUCKET {
            *slot = median(bucket).unwrap_or(0.0);
        }
    }
    out
}

impl Model {
    /// Fit a model to `(timestamp ms, value)` training points, skipping non-finite values and the
    /// `excluded` half-open ranges. `None` with fewer than [`MIN_POINTS`] usable values.
    pub fn fit(points: &[(i64, f64)], excluded: &[(i64, i64)]) -> Option<Model> {
        let data: Vec<(i64, f64)> = points
            .iter()
            .copied()
            .filter(|(t, v)| v.is_finite() && !excluded.iter().any(|(s, e)| *t >= *s && *t < *e))
            .collect();
        if data.len() < MIN_POINTS {
            return None;
        }
        let origin_ms = data.iter().map(|p| p.0).min().unwrap_or(0);

        // 1. Trend through daily medians.
        let mut days: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
        for (t, v) in &data {
            days.entry(t.div_euclid(DAY_MS)).or_default().push(*v);
        }
        let daily: Vec<(f64, f64)> = days
            .into_iter()
            .filter_map(|(day, mut vs)| {
                let mid = (day * DAY_MS + DAY_MS / 2 - origin_ms) as f64;
                median(&mut vs).map(|m| (mid, m))
            })
            .collect();
        let mut slopes = Vec::new();
        for i in 0..daily.len() {
            for j in i + 1..daily.len() {
                let dx = daily[j].0 - daily[i].0;
                if dx != 0.0 {
                    slopes.push((daily[j].1 - daily[i].1) / dx);
                }
            }
        }
        let slope = median(&mut slopes).unwrap_or(0.0);
        let mut intercepts: Vec<f64> = daily.iter().map(|(x, y)| y - slope * x).collect();
        let intercept = median(&mut intercepts).unwrap_or(0.0);
        let trend = |t: i64| intercept + slope * (t - origin_ms) as f64;

        // 2. Hour-of-day profile of the detrended values.
        let residual: Vec<(i64, f64)> = data.iter().map(|(t, v)| (*t, v - trend(*t))).collect();
        let hour: [f64; 24] = profile(residual.iter().map(|(t, r)| (hour_of_day(*t), *r)));
        let mut model = Model {
            intercept,
            slope,
            origin_ms,
            hour,
            weekday: [0.0; 7],
            center: 0.0,
            spread: 0.0,
            points: data.len(),
        };

        // 3. Day-of-week profile of what the daily cycle leaves.
        model.weekday = profile(
            residual
                .iter()
                .map(|(t, r)| (day_of_week(*t), r - model.daily(*t))),
        );

        // 4. Robust spread of the final residuals.
        let mut errors: Vec<f64> = data.iter().map(|(t, v)| v - model.predict(*t)).collect();
        let center = median(&mut errors).unwrap_or(0.0);
        let mut deviations: Vec<f64> = errors.iter().map(|e| (e - center).abs()).collect();
        let mad = median(&mut deviations).unwrap_or(0.0);
        let mut magnitudes: Vec<f64> = data.iter().map(|(_, v)| v.abs()).collect();
        let floor = (median(&mut magnitudes).unwrap_or(0.0) * 1e-3).max(1e-9);
        model.center = center;
        model.spread = (MAD_SCALE * mad).max(floor);
        Some(model)
    }

    /// The hour-of-day component at `t`, interpolated between hour midpoints.
    fn daily(&self, t: i64) -> f64 {
        let in_day = t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64 - 0.5;
        let lo = in_day.floor();
        let frac = in_day - lo;
        let a = self.hour[(lo as i64).rem_euclid(24) as usize];
        let b = self.hour[((lo as i64) + 1).rem_euclid(24) as usize];
        a + (b - a) * frac
    }

    /// The expected value at `t`.
    pub fn predict(&self, t: i64) -> f64 {
        self.intercept
            + self.slope * (t - self.origin_ms) as f64
            + self.daily(t)
            + self.weekday[day_of_week(t)]
            + self.center
    }

    /// The band `(lower, upper)` at `t` with width `k` standard deviations.
    pub fn band(&self, t: i64, k: f64) -> (f64, f64) {
        let p = self.predict(t);
        let w = k.abs() * self.spread;
        (p - w, p + w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in [-1, 1).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    // 2024-01-01T00:00:00Z, a Monday.
    const START: i64 = 1_704_067_200_000;
    const STEP: i64 = 5 * 60_000;

    /// The normal shape: slow growth, a daily cycle, quieter weekends.
    fn normal(t: i64) -> f64 {
        let hours = (t - START) as f64 / HOUR_MS as f64;
        let hod = t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
        let weekend = if day_of_week(t) >= 5 { -25.0 } else { 0.0 };
        200.0 + 0.05 * hours + 40.0 * (std::f64::consts::TAU * hod / 24.0).sin() + weekend
    }

    #[test]
    fn anomalies_fall_outside_the_band_and_normal_points_inside() {
        let mut rng = Lcg(7);
        let n = (TRAINING_MS / STEP) as usize;
        let mut points: Vec<(i64, f64)> = (0..n)
            .map(|i| {
                let t = START + i as i64 * STEP;
                (t, normal(t) + 4.0 * rng.next())
            })
            .collect();
        // Inject anomalies (spikes and dips) at scattered times, including weekends and nights.
        let anomalies: Vec<usize> = (0..20).map(|i| 150 + i * 197).collect();
        for (j, &i) in anomalies.iter().enumerate() {
            points[i].1 += if j % 2 == 0 { 60.0 } else { -60.0 };
        }
        let model = Model::fit(&points, &[]).expect("enough data");
        for (i, (t, v)) in points.iter().enumerate() {
            let (lo, hi) = model.band(*t, 3.0);
            let inside = *v >= lo && *v <= hi;
            if anomalies.contains(&i) {
                assert!(!inside, "anomaly at {i} ({v}) inside [{lo}, {hi}]");
            } else {
                assert!(inside, "normal point at {i} ({v}) outside [{lo}, {hi}]");
            }
        }
        // The band forecasts too: the next day's normal shape is inside, a spike is not.
        let t = START + TRAINING_MS + 13 * HOUR_MS;
        let (lo, hi) = model.band(t, 3.0);
        assert!(normal(t) > lo && normal(t) < hi);
        assert!(normal(t) + 60.0 > hi);
    }

    #[test]
    fn narrower_k_gives_a_narrower_band() {
        let points: Vec<(i64, f64)> = (0..500)
            .map(|i| (START + i * STEP, 10.0 + (i % 7) as f64))
            .collect();
        let m = Model::fit(&points, &[]).unwrap();
        let (a, b) = m.band(START, 1.0);
        let (c, d) = m.band(START, 4.0);
        assert!(c < a && d > b);
        assert!(((d - c) / (b - a) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn too_little_data_gives_no_model_and_exclusions_apply() {
        let few: Vec<(i64, f64)> = (0..MIN_POINTS as i64 - 1)
            .map(|i| (START + i * STEP, 1.0))
            .collect();
        assert!(Model::fit(&few, &[]).is_none());
        let mut points: Vec<(i64, f64)> = (0..100).map(|i| (START + i * STEP, 5.0)).collect();
        // A deployment window of wild values, excluded from training.
        for p in points.iter_mut().skip(40).take(20) {
            p.1 = 1e6;
        }
        let excluded = [(START + 40 * STEP, START + 60 * STEP)];
        let m = Model::fit(&points, &excluded).unwrap();
        assert_eq!(m.points, 80);
        let (lo, hi) = m.band(START + 50 * STEP, 2.0);
        assert!(lo < 5.0 && hi > 5.0 && hi < 6.0, "[{lo}, {hi}]");
    }

    #[test]
    fn flat_metrics_still_have_a_band() {
        let points: Vec<(i64, f64)> = (0..100).map(|i| (START + i * STEP, 0.0)).collect();
        let m = Model::fit(&points, &[]).unwrap();
        let (lo, hi) = m.band(START, 2.0);
        assert!(lo < 0.0 && hi > 0.0);
        assert!(
            1.0 > hi,
            "a non-zero value on an all-zero metric is anomalous"
        );
    }
}
