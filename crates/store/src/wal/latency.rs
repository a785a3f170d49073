//! How long WAL fsyncs take: a fixed-bucket histogram of atomics, updated
//! once per fsync (one per group commit, not per append).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the buckets, in seconds (Prometheus `le`), from 100µs
/// (a drive cache) to 2.5s (a stalled disk).
pub const FSYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Debug, Default)]
pub(crate) struct FsyncLatency {
    /// Per bucket (not cumulative); the last counts those over every bound.
    buckets: [AtomicU64; FSYNC_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl FsyncLatency {
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let at = FSYNC_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(FSYNC_BUCKETS.len());
        if let Some(bucket) = self.buckets.get(at) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> FsyncHistogram {
        let mut cumulative = Vec::with_capacity(FSYNC_BUCKETS.len());
        let mut total = 0;
        for bucket in &self.buckets[..FSYNC_BUCKETS.len()] {
            total += bucket.load(Ordering::Relaxed);
            cumulative.push(total);
        }
        total += self.buckets[FSYNC_BUCKETS.len()].load(Ordering::Relaxed);
        FsyncHistogram {
            cumulative,
            count: total,
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
        }
    }
}

/// WAL fsync durations: cumulative counts per bound of [`FSYNC_BUCKETS`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FsyncHistogram {
    /// `cumulative[i]`: fsyncs that took at most `FSYNC_BUCKETS[i]` seconds.
    pub cumulative: Vec<u64>,
    /// Every fsync measured.
    pub count: u64,
    pub sum_nanos: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let latency = FsyncLatency::default();
        latency.record(Duration::from_micros(50));
        latency.record(Duration::from_millis(3));
        latency.record(Duration::from_secs(3));
        let h = latency.snapshot();
        assert_eq!(h.count, 3);
        assert_eq!(h.cumulative[0], 1);
        assert_eq!(h.cumulative[4], 1, "2.5ms bound");
        assert_eq!(h.cumulative[5], 2, "5ms bound");
        assert_eq!(h.cumulative[11], 2, "the 3s one is over every bound");
        assert_eq!(h.sum_nanos, 3_003_050_000);
    }
}
