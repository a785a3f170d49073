//! International Bank Account Numbers: a country code, two check digits
//! and the national account number, bare or in groups of four, of the
//! country's registered length with a valid ISO 7064 mod-97 check.

/// Longest IBAN (Saint Lucia, 32; the standard allows 34).
const MAX_LEN: usize = 34;

/// Registered IBAN lengths (SWIFT IBAN registry).
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// The end of an IBAN starting at `i` (a letter at a token start).
pub(super) fn at(text: &[u8], i: usize) -> Option<usize> {
    let country = [
        text.get(i)?.to_ascii_uppercase(),
        text.get(i + 1)?.to_ascii_uppercase(),
    ];
    if !country[1].is_ascii_alphabetic()
        || !text.get(i + 2)?.is_ascii_digit()
        || !text.get(i + 3)?.is_ascii_digit()
    {
        return None;
    }
    let len = LENGTHS
        .iter()
        .find(|(c, _)| **c == country)
        .map(|(_, l)| *l)?;
    let mut chars = [0u8; MAX_LEN];
    let mut count = 0;
    // Characters since the last space (or the start).
    let mut run = 0;
    let mut j = i;
    while count < len {
        match *text.get(j)? {
            b if b.is_ascii_alphanumeric() => {
                *chars.get_mut(count)? = b.to_ascii_uppercase();
                count += 1;
                run += 1;
                j += 1;
            }
            // The printed form: a space after each group of four.
            b' ' if run == 4 && text.get(j + 1).is_some_and(u8::is_ascii_alphanumeric) => {
                run = 0;
                j += 1;
            }
            _ => return None,
        }
    }
    let chars = chars.get(..len)?;
    (super::ends_token(text, j) && mod97(chars) == 1).then_some(j)
}

/// The IBAN check: the first four characters moved to the end, letters as
/// 10..35, the number taken mod 97 (digit by digit, never overflowing).
fn mod97(chars: &[u8]) -> u32 {
    let (head, rest) = chars.split_at(4.min(chars.len()));
    rest.iter().chain(head).fold(0u32, |rem, &c| match c {
        b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
        b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
        _ => rem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iban(text: &str) -> bool {
        at(text.as_bytes(), 0) == Some(text.len())
    }

    #[test]
    fn registry_examples() {
        for text in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "CH9300762011623852957",
            "NO9386011117947",
            "de89370400440532013000",
        ] {
            assert!(iban(text), "{text}");
        }
    }

    #[test]
    fn look_alikes() {
        for text in [
            "DE89370400440532013001",
            "DE8937040044053201300",
            "DE893704004405320130000",
            "XX89370400440532013000",
            "DE89 37040044 0532013000",
            "AB12CD34",
        ] {
            assert!(at(text.as_bytes(), 0).is_none(), "{text}");
        }
    }
}
