//! Durations and instants as users type them: `90s`, `1h30m`, `1700000000`,
//! `2026-11-23T17:00:00Z`.

pub use tracewarden_model::time::format_rfc3339 as format_time;

/// Nanoseconds in each unit a duration may use.
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

/// Parses a duration such as `250ms`, `1.5s`, `1h30m` or `7d` into
/// nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is empty".into());
    }
    let mut rest = text;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(format!(
                "`{text}` is not a duration (expected e.g. 90s, 15m, 1h30m)"
            ));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let Some((_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ns, us, ms, s, m, h or d)"
            ));
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}`: `{number}` is not a number"))?;
        let nanos = value * *scale as f64;
        if !nanos.is_finite() || nanos >= u64::MAX as f64 {
            return Err(format!("`{text}` is too long a duration"));
        }
        total = total
            .checked_add(nanos as u64)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        rest = next;
    }
    Ok(total)
}

/// Parses an instant: Unix seconds (`1700000000`, `1700000000.5`) or an
/// RFC 3339 timestamp (`2026-11-23T17:00:00Z`, `...+01:00`), into Unix
/// nanoseconds.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        // Whole and fractional seconds apart: f64 would lose nanoseconds.
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let bad = || format!("`{text}` is not a number of seconds");
        if whole.is_empty() || fraction.contains('.') {
            return Err(bad());
        }
        let seconds: u64 = whole.parse().map_err(|_| bad())?;
        let kept = &fraction[..fraction.len().min(9)];
        let nanos = if kept.is_empty() {
            0
        } else {
            kept.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - kept.len() as u32)
        };
        return seconds
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(|| format!("`{text}` is out of range"));
    }
    tracewarden_model::time::parse_rfc3339(text).ok_or_else(|| {
        format!(
            "`{text}` is not a time (expected Unix seconds or RFC 3339, e.g. 2026-11-23T17:00:00Z)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000_000_000));
        assert_eq!(parse_duration("10µs"), Ok(10_000));
        for bad in ["", "10", "s", "10x", "1..5s", "99999999999d", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1700000000.25"), Ok(1_700_000_000_250_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        // `date -u -d 2026-11-23T17:00:00Z +%s` = 1795453200
        assert_eq!(
            parse_time("2026-11-23T17:00:00Z"),
            Ok(1_795_453_200_000_000_000)
        );
        assert_eq!(
            parse_time("2026-11-23T18:00:00.5+01:00"),
            Ok(1_795_453_200_500_000_000)
        );
        assert_eq!(
            parse_time("2000-02-29T12:00:00Z"),
            Ok(951_825_600_000_000_000)
        );
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time(1_795_453_200_123_000_000),
            "2026-11-23T17:00:00.123Z"
        );
        assert_eq!(
            format_time(951_825_600_000_000_000),
            "2000-02-29T12:00:00.000Z"
        );
        for t in [0, 951_825_600_000_000_000, 1_795_453_200_123_000_000] {
            assert_eq!(parse_time(&format_time(t)), Ok(t));
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-23",
            "2026-11-23T17:00:00",
            "2026-11-23T17:00:00+0100",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
