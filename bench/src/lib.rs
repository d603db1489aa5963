//! opsloop benchmarks: load generators for opsloop's CloudWatch API (RPC v2 CBOR, SigV4) and for
//! Prometheus remote write, a GetMetricStatistics latency benchmark, and startup/footprint
//! measurements, and an alarms benchmark (breach-to-ALARM and breach-to-SNS-delivery latency). The `opsloop-bench` binary drives them; BENCHMARKS.md records the results.

pub mod alarms;
pub mod awsclient;
pub mod ingest;
pub mod procs;
pub mod promwrite;
pub mod query;

/// Nearest-rank percentile of an ascending slice (`q` in 0..=1); 0 for an empty slice.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A small, fast, deterministic generator (SplitMix64) for sample values.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A value with two decimals in [0, 1000), like a latency or utilisation reading.
    pub fn value(&mut self) -> f64 {
        (self.next_u64() % 100_000) as f64 / 100.0
    }
}

/// Seconds since the epoch.
pub fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the epoch.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn values_are_varied_and_bounded() {
        let mut r = Rng::new(1);
        let vals: Vec<f64> = (0..1000).map(|_| r.value()).collect();
        assert!(vals.iter().all(|v| (0.0..1000.0).contains(v)));
        let distinct: std::collections::BTreeSet<u64> = vals.iter().map(|v| v.to_bits()).collect();
        assert!(distinct.len() > 900);
    }
}
