//! The GetMetricStatistics benchmark: one series loaded through PutMetricData with `points`
//! datapoints spread evenly over 24 hours (one datum per second carrying that second's values), then
//! the whole day queried at 60-second periods, repeatedly, on one keep-alive connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};

use crate::awsclient::{
    cbor_request, error_summary, Creds, CwClient, HttpConn, PutMetricData, StatsQuery,
};
use crate::{percentile, unix_secs, Rng};

pub const NAMESPACE: &str = "Bench/Query";
pub const METRIC: &str = "Latency";
pub const DIMENSIONS: [(&str, &str); 1] = [("Service", "checkout")];
pub const DAY_S: i64 = 86_400;
pub const STATISTICS: [&str; 5] = ["Average", "Sum", "SampleCount", "Minimum", "Maximum"];
pub const EXTENDED: [&str; 1] = ["p99"];

/// Values for second `s` of the day: `points` spread as evenly as integers allow.
fn values_in_second(points: u64, s: i64) -> usize {
    let s = s as u64;
    ((s + 1) * points / DAY_S as u64 - s * points / DAY_S as u64) as usize
}

/// The day that was loaded: `[start_s, start_s + DAY_S)`, minute-aligned.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub start_s: i64,
    pub points: u64,
    pub elapsed: Duration,
}

/// Load the series over `connections` connections, 1000 datums (seconds) per request.
pub async fn load(
    addr: SocketAddr,
    creds: &Creds,
    points: u64,
    connections: usize,
) -> Result<Loaded> {
    ensure!(
        points / DAY_S as u64 <= 150,
        "at most 150 values per second (one datum) are accepted"
    );
    // The day ends a few minutes before now, inside CloudWatch's accepted timestamp window.
    let start_s = (unix_secs() - DAY_S - 300) / 60 * 60;
    let chunks: Vec<(i64, i64)> = (0..DAY_S)
        .step_by(1000)
        .map(|a| (a, (a + 1000).min(DAY_S)))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mine: Vec<(i64, i64)> = chunks
            .iter()
            .copied()
            .skip(c)
            .step_by(connections)
            .collect();
        let creds = creds.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = HttpConn::connect(addr).await?;
            let mut rng = Rng::new(42 + c as u64);
            let mut values = Vec::with_capacity(150);
            for (a, b) in mine {
                let mut body =
                    PutMetricData::new(NAMESPACE, (b - a) as usize, (b - a) as usize * 400);
                for s in a..b {
                    values.clear();
                    values.extend((0..values_in_second(points, s)).map(|_| rng.value()));
                    body.datum(METRIC, &DIMENSIONS, start_s + s, &values, None);
                }
                let req = cbor_request(&conn.host, &creds, "PutMetricData", body.finish())?;
                let (status, resp) = conn.send(req).await?;
                if status != 200 {
                    bail!("PutMetricData answered {}", error_summary(status, &resp));
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(Loaded {
        start_s,
        points,
        elapsed: started.elapsed(),
    })
}

/// The whole-day query, plain statistics or `p99`.
pub fn day_query(start_s: i64, percentile: bool) -> StatsQuery<'static> {
    StatsQuery {
        namespace: NAMESPACE,
        metric_name: METRIC,
        dimensions: &DIMENSIONS,
        start_s,
        end_s: start_s + DAY_S,
        period_s: 60,
        statistics: if percentile { &[] } else { &STATISTICS },
        extended_statistics: if percentile { &EXTENDED } else { &[] },
    }
}

/// Check the loaded day reads back complete: 1440 periods whose SampleCounts add up to `points`.
pub async fn verify(addr: SocketAddr, creds: &Creds, loaded: &Loaded) -> Result<()> {
    let mut c = CwClient::connect(addr, creds.clone()).await?;
    let dps = c
        .get_metric_statistics(&day_query(loaded.start_s, false))
        .await?;
    let total: f64 = dps.iter().filter_map(|d| d.sample_count).sum();
    ensure!(
        dps.len() == 1440,
        "expected 1440 datapoints, got {}",
        dps.len()
    );
    ensure!(
        total == loaded.points as f64,
        "SampleCount adds up to {total}, expected {}",
        loaded.points
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// Run the day query `n` times after `warmup` untimed runs; every answer must have 1440 datapoints.
pub async fn measure(
    addr: SocketAddr,
    creds: &Creds,
    start_s: i64,
    percentile_query: bool,
    warmup: usize,
    n: usize,
) -> Result<Latency> {
    let mut c = CwClient::connect(addr, creds.clone()).await?;
    let q = day_query(start_s, percentile_query);
    let mut lat = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t = Instant::now();
        let dps = c.get_metric_statistics(&q).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            dps.len() == 1440,
            "expected 1440 datapoints, got {}",
            dps.len()
        );
        if percentile_query {
            ensure!(
                dps.iter()
                    .all(|d| d.extended.iter().any(|(k, _)| k == "p99")),
                "a datapoint lacks p99"
            );
        }
        if i >= warmup {
            lat.push(ms);
        }
    }
    let mean_ms = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    lat.sort_by(f64::total_cmp);
    Ok(Latency {
        n,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        mean_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_points_over_the_day() {
        for points in [1_000_000u64, 86_400, 123_457] {
            let total: usize = (0..DAY_S).map(|s| values_in_second(points, s)).sum();
            assert_eq!(total as u64, points);
            let max = (0..DAY_S)
                .map(|s| values_in_second(points, s))
                .max()
                .unwrap();
            assert!(max as u64 <= points.div_ceil(DAY_S as u64));
        }
    }
}
