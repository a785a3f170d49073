//! Window durations: `500ms`, `30s`, `5m`, `1h`, `1d`, and sums such as `1h30m`.

use std::time::Duration;

/// Longest window accepted: state per key is kept this long, so an
/// unbounded window would be unbounded memory.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Writes a duration in the largest unit that divides it (`90s` is `90s`,
/// `120s` is `2m`), so that [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, scale) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis != 0 && millis.is_multiple_of(scale) {
            return format!("{}{unit}", millis / scale);
        }
    }
    format!("{millis}ms")
}

/// Parses a duration written as one or more `<integer><unit>` parts, units
/// `ms`, `s`, `m`, `h`, `d`. A bare number is refused: `window: 300` could
/// be seconds or milliseconds, and a rule should not leave that to guessing.
pub fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty");
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number followed by a unit (ms, s, m, h, d), e.g. 5m");
        }
        let (number, after) = rest.split_at(digits);
        let value: u128 = number.parse().map_err(|_| "number too large")?;
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "" => return Err("missing unit (ms, s, m, h, d), e.g. 5m"),
            _ => return Err("unknown unit (expected ms, s, m, h, d)"),
        };
        total = value
            .checked_mul(nanos_per_unit)
            .and_then(|n| total.checked_add(n))
            .ok_or("number too large")?;
        rest = after;
    }
    if total == 0 {
        return Err("must be greater than zero");
    }
    if total > MAX_WINDOW.as_nanos() {
        return Err("longer than the 7d maximum");
    }
    let nanos = u64::try_from(total).map_err(|_| "number too large")?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 30s "), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn formats_back() {
        for (d, text) in [
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(86_400), "1d"),
            (Duration::from_secs(5400), "90m"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "300",
            "5",
            "m",
            "5x",
            "0s",
            "8d",
            "99999999999999999999999999999999999h",
            "5 m",
            "-5m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
