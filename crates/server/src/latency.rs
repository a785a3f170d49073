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
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
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
}
