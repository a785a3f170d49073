//! A fixed-size latency histogram: buckets growing by a quarter (about
//! ±12% resolution) from 10 µs to over an hour, so recording is one
//! atomic increment and quantiles are cheap to read while it records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: usize = 90;
/// Upper bound of bucket 0.
const FIRST_MICROS: f64 = 10.0;
const GROWTH: f64 = 1.25;

#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    /// Of every value recorded, for Prometheus's `_sum`.
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

/// The buckets exposed to Prometheus: bucket upper bounds near 1, 5, 10,
/// 25, 50, 100, 250 and 500 ms, 1, 2.5, 5, 10, 30 and 60 s (exact bounds
/// of the histogram's own buckets, so the counts are exact).
const EXPOSED: [usize; 14] = [21, 28, 31, 35, 38, 41, 45, 48, 52, 56, 59, 62, 67, 70];

/// A histogram as Prometheus reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposed {
    /// (upper bound in seconds, values at or below it).
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

fn upper_micros(bucket: usize) -> f64 {
    FIRST_MICROS * GROWTH.powi(i32::try_from(bucket).unwrap_or(i32::MAX))
}

impl Histogram {
    pub fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_secs_f64() * 1e6;
        let bucket = if micros <= FIRST_MICROS {
            0
        } else {
            // Smallest bucket whose upper bound holds the value.
            let b = ((micros / FIRST_MICROS).ln() / GROWTH.ln()).ceil();
            if b.is_finite() && b >= 0.0 {
                (b as usize).min(BUCKETS - 1)
            } else {
                BUCKETS - 1
            }
        };
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Cumulative counts at the exposed bounds, the count and the sum.
    pub fn exposed(&self) -> Exposed {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let buckets = EXPOSED
            .iter()
            .map(|&last| {
                let bound = upper_micros(last) / 1e6;
                (bound, counts.iter().take(last + 1).sum())
            })
            .collect();
        Exposed {
            buckets,
            count: counts.iter().sum(),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); `None`
    /// before anything was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_secs_f64(upper_micros(bucket) / 1e6));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_a_bucket() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.99), None);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 100);
        let p50 = h.quantile(0.5).unwrap().as_secs_f64() * 1e3;
        let p99 = h.quantile(0.99).unwrap().as_secs_f64() * 1e3;
        assert!((50.0..=63.0).contains(&p50), "{p50}");
        assert!((99.0..=124.0).contains(&p99), "{p99}");
        // Out of range values land in the edge buckets.
        h.record(Duration::from_nanos(1));
        h.record(Duration::from_secs(100_000));
        assert!(h.quantile(1.0).unwrap() > Duration::from_secs(900));
    }

    #[test]
    fn exposed_buckets_are_cumulative_at_round_bounds() {
        let h = Histogram::default();
        for ms in [1, 3, 7, 7, 40, 900, 2_000, 120_000] {
            h.record(Duration::from_millis(ms));
        }
        let e = h.exposed();
        assert_eq!(e.count, 8);
        assert!((e.sum_seconds - 122.958).abs() < 1e-9, "{}", e.sum_seconds);
        let bounds: Vec<f64> = e.buckets.iter().map(|b| b.0).collect();
        let round = [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ];
        for (bound, target) in bounds.iter().zip(round) {
            // Within the histogram's resolution of the round figure.
            assert!((bound / target - 1.0).abs() < 0.125, "{bound} for {target}");
        }
        let counts: Vec<u64> = e.buckets.iter().map(|b| b.1).collect();
        assert_eq!(counts, [1, 2, 4, 4, 5, 5, 5, 5, 6, 7, 7, 7, 7, 7]);
    }
}
