//! Instants as RFC 3339 text: unix nanoseconds inside, `2026-11-23T17:00:00Z`
//! for people and on the wire. Proleptic Gregorian calendar, UTC.

/// Parses an RFC 3339 timestamp (`2026-11-23T17:00:00Z`,
/// `2026-11-23T18:00:00.5+01:00`) into unix nanoseconds; `None` when it is
/// not one or lies before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u64> {
        let part = text.get(from..from + len)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let sep = |at: usize, expected: &[u8]| bytes.get(at).is_some_and(|b| expected.contains(b));
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let hour = digits(11, 2)?;
    let minute = digits(14, 2)?;
    let second = digits(17, 2)?;
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut fraction_nanos = 0u64;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let fraction = text.get(start..at)?;
        if fraction.is_empty() {
            return None;
        }
        let kept = &fraction[..fraction.len().min(9)];
        fraction_nanos = kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32);
    }
    let offset_seconds: i64 = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() && sep(at + 3, b":") => {
            let hours = digits(at + 1, 2)? as i64;
            let minutes = digits(at + 4, 2)? as i64;
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    seconds
        .checked_mul(1_000_000_000)?
        .checked_add(fraction_nanos)
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds,
/// `2026-11-23T17:00:00.123Z`: what [`parse_rfc3339`] reads back.
pub fn format_rfc3339(unix_nano: u64) -> String {
    let seconds = (unix_nano / 1_000_000_000) as i64;
    let millis = (unix_nano / 1_000_000) % 1000;
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm; the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
    fn parses_what_it_formats() {
        for t in [0, 951_825_600_000_000_000, 1_795_453_200_123_000_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-23T18:00:00.5+01:00"),
            Some(1_795_453_200_500_000_000)
        );
        for bad in ["2026-11-23", "2026-11-23T17:00:00", "1969-12-31T23:59:59Z"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
