//! Per-key rate limits on the query API: a token bucket per key (per
//! client address when auth is off), so one runaway client spends its own
//! budget, not the others'.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The `[auth.rate_limit]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second each key (or address) may make on average; 0
    /// turns the limit off.
    pub requests_per_second: f64,
    /// Requests a key may make at once after a pause.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests_per_second: 20.0,
            burst: 100,
        }
    }
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.requests_per_second.is_finite() || self.requests_per_second < 0.0 {
            return Err("[auth.rate_limit] requests_per_second must be 0 (off) or more".into());
        }
        if self.requests_per_second > 0.0 && self.burst == 0 {
            return Err("[auth.rate_limit] burst must be at least 1".into());
        }
        Ok(())
    }
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// None when the configuration turns the limit off.
    pub fn new(config: &RateLimitConfig) -> Option<RateLimiter> {
        (config.requests_per_second > 0.0).then(|| RateLimiter {
            rate: config.requests_per_second,
            burst: f64::from(config.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes a token from `who`'s bucket, or says how long until one is there.
    pub fn check(&self, who: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(who) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
        }
        let bucket = buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bucket_per_client() {
        let limiter = RateLimiter::new(&RateLimitConfig {
            requests_per_second: 2.0,
            burst: 3,
        })
        .unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check("a", t0).unwrap();
        }
        let wait = limiter.check("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another client is untouched.
        limiter.check("b", t0).unwrap();
        // Half a second later one token is back, not two.
        let later = t0 + Duration::from_millis(500);
        limiter.check("a", later).unwrap();
        assert!(limiter.check("a", later).is_err());
    }

    #[test]
    fn off_and_invalid() {
        let off = RateLimitConfig {
            requests_per_second: 0.0,
            burst: 0,
        };
        assert!(RateLimiter::new(&off).is_none());
        off.validate().unwrap();
        for bad in [-1.0, f64::NAN] {
            let config = RateLimitConfig {
                requests_per_second: bad,
                burst: 1,
            };
            assert!(config.validate().is_err(), "{bad}");
        }
    }
}
