//! National identifiers: the US Social Security number, written
//! `AAA-GG-SSSS` (hyphens or spaces). Nine bare digits are not taken for an
//! SSN: too many ids and amounts look like that (attribute names such as
//! `ssn` catch those).

/// The end of an SSN starting at `i`.
pub(super) fn us_ssn(text: &[u8], i: usize) -> Option<usize> {
    let d = |k: usize| {
        text.get(i + k)
            .filter(|b| b.is_ascii_digit())
            .map(|b| u32::from(b - b'0'))
    };
    let separator = *text.get(i + 3)?;
    if !matches!(separator, b'-' | b' ') || text.get(i + 6) != Some(&separator) {
        return None;
    }
    let area = d(0)? * 100 + d(1)? * 10 + d(2)?;
    let group = d(4)? * 10 + d(5)?;
    let serial = d(7)? * 1000 + d(8)? * 100 + d(9)? * 10 + d(10)?;
    let end = i + 11;
    if !super::ends_token(text, end) || !valid(area, group, serial) {
        return None;
    }
    Some(end)
}

/// The Social Security Administration never issues area 000, 666 or
/// 900-999, group 00 or serial 0000; 078-05-1120 (printed in wallets sold
/// in 1938) and 219-09-9999 (an advertisement) were voided.
fn valid(area: u32, group: u32, serial: u32) -> bool {
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssn(text: &str) -> bool {
        us_ssn(text.as_bytes(), 0).is_some()
    }

    #[test]
    fn valid_and_never_issued() {
        assert!(ssn("123-45-6789"));
        assert!(ssn("536 22 1234"));
        for text in [
            "000-12-3456",
            "666-12-3456",
            "950-12-3456",
            "123-00-4567",
            "123-45-0000",
            "078-05-1120",
            "219-09-9999",
            "123-45 6789",
            "123-45-67890",
            "123-456-789",
            "12-345-6789",
        ] {
            assert!(!ssn(text), "{text}");
        }
    }
}
