//! Timestamps: unix nanoseconds inside, RFC 3339 on the wire.

use std::time::Duration;

/// Go's zero `time.Time`, which Alertmanager's webhook payloads carry as the
/// `endsAt` of a firing alert.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub use tracewarden_model::time::format_rfc3339;

/// `at + duration` in unix nanoseconds, saturating.
pub fn add(at: u64, duration: Duration) -> u64 {
    at.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_saturates() {
        assert_eq!(add(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(add(1, Duration::from_nanos(2)), 3);
    }
}
