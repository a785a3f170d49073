//! Payment card numbers (PANs): 13 to 19 digits, bare or grouped by single
//! spaces or hyphens as printed on cards, with a valid Luhn check digit
//! and an issuer identification number (IIN) of a known scheme for that
//! length.

/// Most digits of a PAN (ISO/IEC 7812).
const MAX_DIGITS: usize = 19;

/// The end of a card number starting at `i` (a digit at a token start).
pub(super) fn at(text: &[u8], i: usize) -> Option<usize> {
    let mut digits = [0u8; MAX_DIGITS];
    let mut count = 0usize;
    let mut groups = [0u8; 8];
    let mut group_count = 0usize;
    let mut current = 0u8;
    let mut separator: Option<u8> = None;
    let mut j = i;
    loop {
        match text.get(j) {
            Some(&b) if b.is_ascii_digit() => {
                // A longer digit run is not a card (an id, a timestamp).
                *digits.get_mut(count)? = b - b'0';
                count += 1;
                current += 1;
                j += 1;
            }
            Some(&b @ (b' ' | b'-'))
                if current > 0
                    && separator.is_none_or(|s| s == b)
                    && text.get(j + 1).is_some_and(u8::is_ascii_digit) =>
            {
                separator = Some(b);
                *groups.get_mut(group_count)? = current;
                group_count += 1;
                current = 0;
                j += 1;
            }
            _ => break,
        }
    }
    *groups.get_mut(group_count)? = current;
    group_count += 1;
    if !(13..=MAX_DIGITS).contains(&count) || !super::ends_token(text, j) {
        return None;
    }
    let digits = digits.get(..count)?;
    if separator.is_some() && !printed_grouping(groups.get(..group_count)?) {
        return None;
    }
    (known_iin(digits) && luhn(digits)).then_some(j)
}

/// Groupings printed on cards: fours (the last group shorter for 13, 17,
/// 18 or 19 digits), 4-6-5 (American Express), 4-6-4 (Diners Club).
fn printed_grouping(groups: &[u8]) -> bool {
    match groups {
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => {
            init.len() >= 3 && init.iter().all(|&g| g == 4) && (1..=4).contains(last)
        }
        [] => false,
    }
}

/// Whether the number starts with the IIN of a scheme issuing that
/// length. Prefix 1 (airline UATP) and 0 are left out: they collide with
/// epoch timestamps and zero-padded ids.
fn known_iin(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |n: usize| {
        d.iter()
            .take(n)
            .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
    };
    let (p2, p3, p4, p6) = (prefix(2), prefix(3), prefix(4), prefix(6));
    let long = (16..=19).contains(&len);
    match d.first() {
        // Visa.
        Some(4) => matches!(len, 13 | 16 | 19),
        // Mastercard 51-55 and 2221-2720; Mir 2200-2204; Maestro 50, 56-58.
        Some(5) => match p2 {
            51..=55 => len == 16,
            50 | 56..=58 => (13..=19).contains(&len),
            _ => false,
        },
        Some(2) => (2221..=2720).contains(&p4) && len == 16 || (2200..=2204).contains(&p4) && long,
        // American Express 34, 37; Diners Club 300-305, 3095, 36, 38-39; JCB 3528-3589.
        Some(3) => match p2 {
            34 | 37 => len == 15,
            36 | 38 | 39 => (14..=19).contains(&len),
            30 => ((300..=305).contains(&p3) || p4 == 3095) && (14..=19).contains(&len),
            35 => (3528..=3589).contains(&p4) && long,
            _ => false,
        },
        // Discover 6011, 644-649, 65; UnionPay 62; RuPay 60; Maestro 63, 67.
        Some(6) => {
            (p4 == 6011 || (644..=649).contains(&p3) || matches!(p2, 60 | 62 | 65)) && long
                || matches!(p2, 63 | 67) && (13..=19).contains(&len)
                || (622_126..=622_925).contains(&p6) && long
        }
        _ => false,
    }
}

/// The Luhn (mod 10) check over all digits, check digit last.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(text: &str) -> bool {
        at(text.as_bytes(), 0).is_some_and(|end| end == text.len())
    }

    #[test]
    fn test_numbers_of_each_scheme() {
        for pan in [
            "4111111111111111",
            "4012888888881881",
            "4222222222222",
            "5555555555554444",
            "5105105105105100",
            "2223003122003222",
            "378282246310005",
            "371449635398431",
            "6011111111111117",
            "6011000990139424",
            "3530111333300000",
            "3566002020360505",
            "30569309025904",
            "36227206271667",
            "6200000000000005",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "3782 822463 10005",
        ] {
            assert!(card(pan), "{pan}");
        }
    }

    #[test]
    fn look_alikes() {
        for text in [
            "4111111111111112",       // Luhn
            "1767225600000000000",    // epoch nanoseconds
            "1234567812345670",       // valid Luhn, prefix 1
            "0000000000000000",       // zero padding
            "9111111111111111",       // no scheme
            "41111111111111111111",   // 20 digits
            "4111 1111-1111 1111",    // mixed separators
            "4111 111 111 111 111 1", // not a printed grouping
            "3782822463100050",       // Amex prefix, wrong length
            "411111111111",           // 12 digits
        ] {
            assert!(!card(text), "{text}");
        }
    }
}
