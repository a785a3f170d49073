//! Timestamps: unix nanoseconds inside, RFC 3339 on the wire.

use std::fmt::Write as _;
use std::time::Duration;

/// Go's zero `time.Time`, which Alertmanager's webhook payloads carry as the
/// `endsAt` of a firing alert.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Formats unix nanoseconds as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-01-01T00:00:00.000Z`.
pub fn format_rfc3339(unix_nano: u64) -> String {
    let secs = unix_nano / 1_000_000_000;
    let millis = (unix_nano % 1_000_000_000) / 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    out
}

/// Year, month (1-12) and day (1-31) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `at + duration` in unix nanoseconds, saturating.
pub fn add(at: u64, duration: Duration) -> u64 {
    at.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_767_225_600_000_000_000, "2026-01-01T00:00:00.000Z"),
            (951_782_400_123_456_789, "2000-02-29T00:00:00.123Z"),
            (4_107_542_399_999_000_000, "2100-02-28T23:59:59.999Z"),
            (1_709_164_800_000_000_000, "2024-02-29T00:00:00.000Z"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_rfc3339(nanos), text, "{nanos}");
        }
    }

    #[test]
    fn add_saturates() {
        assert_eq!(add(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(add(1, Duration::from_nanos(2)), 3);
    }
}
