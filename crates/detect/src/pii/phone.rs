//! Phone numbers: international (E.164, `+` and 9 to 15 digits, grouped or
//! not) and the national formats that grouping makes unambiguous: North
//! American `(415) 555-2671` / `415-555-2671` / `415.555.2671`, and
//! trunk-prefix numbers of 10 or 11 digits in groups (`020 7946 0958`,
//! `01 23 45 67 89`, `030 12345678`). Bare national digit strings are not
//! taken for phone numbers: ids and amounts look the same.

fn digit(text: &[u8], i: usize) -> Option<u8> {
    text.get(i).filter(|b| b.is_ascii_digit()).map(|b| b - b'0')
}

/// The end of an international number whose `+` is at `i`.
pub(super) fn international(text: &[u8], i: usize) -> Option<usize> {
    if !matches!(digit(text, i + 1), Some(1..=9)) {
        return None;
    }
    let mut j = i + 1;
    let (mut count, mut current, mut groups) = (0usize, 0usize, 0usize);
    loop {
        match text.get(j) {
            Some(b) if b.is_ascii_digit() => {
                count += 1;
                current += 1;
                j += 1;
                if count > 15 {
                    return None;
                }
            }
            Some(b' ' | b'-' | b'.' | b'(' | b')') => {
                // One or two separator characters (`) `, ` (`) between digits.
                let run = text
                    .get(j..)?
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
                    .count();
                if run > 2 || digit(text, j + run).is_none() {
                    break;
                }
                // One digit may follow the country code (`+33 6 12 34 56
                // 78`, `+44 (0)20 ...`); more groups of one digit are not
                // how numbers are written (`+1 2 3 4 5 6 7 8 9`).
                if groups > 1 && current < 2 {
                    return None;
                }
                groups += 1;
                current = 0;
                j += run;
            }
            _ => break,
        }
    }
    if (groups > 0 && current < 2) || !(9..=15).contains(&count) || !super::ends_token(text, j) {
        return None;
    }
    Some(j)
}

/// The end of a national number starting at `i` (a digit or `(`).
pub(super) fn national(text: &[u8], i: usize) -> Option<usize> {
    north_american(text, i).or_else(|| trunk_prefixed(text, i))
}

fn three(text: &[u8], i: usize) -> Option<[u8; 3]> {
    Some([digit(text, i)?, digit(text, i + 1)?, digit(text, i + 2)?])
}

/// NANP: area code and exchange start with 2-9, written with parentheses
/// or one consistent separator.
fn north_american(text: &[u8], i: usize) -> Option<usize> {
    let (area, mut j, first_separator) = if text.get(i) == Some(&b'(') {
        let area = three(text, i + 1)?;
        if text.get(i + 4) != Some(&b')') {
            return None;
        }
        let j = if text.get(i + 5) == Some(&b' ') {
            i + 6
        } else {
            i + 5
        };
        (area, j, None)
    } else {
        let area = three(text, i)?;
        let separator = *text.get(i + 3)?;
        if !matches!(separator, b'-' | b'.' | b' ') {
            return None;
        }
        (area, i + 4, Some(separator))
    };
    let exchange = three(text, j)?;
    let separator = *text.get(j + 3)?;
    if !matches!(separator, b'-' | b'.' | b' ') || first_separator.is_some_and(|s| s != separator) {
        return None;
    }
    j += 4;
    for k in 0..4 {
        digit(text, j + k)?;
    }
    j += 4;
    let valid = area[0] >= 2 && exchange[0] >= 2;
    (valid && super::ends_token(text, j)).then_some(j)
}

/// A trunk prefix `0` then a non-zero digit, 10 or 11 digits in groups of
/// at least two separated by one consistent space or hyphen.
fn trunk_prefixed(text: &[u8], i: usize) -> Option<usize> {
    if digit(text, i) != Some(0) || !matches!(digit(text, i + 1), Some(1..=9)) {
        return None;
    }
    let mut j = i;
    let (mut count, mut current, mut groups) = (0usize, 0usize, 0usize);
    let mut separator: Option<u8> = None;
    loop {
        match text.get(j) {
            Some(b) if b.is_ascii_digit() => {
                count += 1;
                current += 1;
                j += 1;
            }
            Some(&b @ (b' ' | b'-'))
                if separator.is_none_or(|s| s == b) && digit(text, j + 1).is_some() =>
            {
                if current < 2 {
                    return None;
                }
                separator = Some(b);
                groups += 1;
                current = 0;
                j += 1;
            }
            _ => break,
        }
    }
    let ok = groups > 0 && current >= 2 && (10..=11).contains(&count);
    (ok && super::ends_token(text, j)).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(f: fn(&[u8], usize) -> Option<usize>, text: &str) -> bool {
        f(text.as_bytes(), 0) == Some(text.len())
    }

    #[test]
    fn formats() {
        for text in [
            "+14155552671",
            "+1 415 555 2671",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
            "+49.30.1234567",
            "+33612345678",
            "+33 6 12 34 56 78",
            "+44 (0)20 7946 0958",
        ] {
            assert!(whole(international, text), "{text}");
        }
        for text in [
            "(415) 555-2671",
            "(415)555-2671",
            "415-555-2671",
            "415.555.2671",
            "415 555 2671",
            "020 7946 0958",
            "07700 900123",
            "01 23 45 67 89",
            "030-12345678",
        ] {
            assert!(whole(national, text), "{text}");
        }
    }

    #[test]
    fn look_alikes() {
        for text in [
            "+1234567",
            "+0123456789",
            "+1 2 3 4 5 6 7 8 9",
            "+1234567890123456",
        ] {
            assert!(!whole(international, text), "{text}");
        }
        for text in [
            "115-555-2671",
            "415-155-2671",
            "415-555.2671",
            "4155552671",
            "01-01-2026",
            "0612345678",
            "10.20.30.40",
            "2026-05-06",
            "00 12 34 56 78",
            "415-555-26711",
        ] {
            assert!(national(text.as_bytes(), 0).is_none(), "{text}");
        }
    }
}
