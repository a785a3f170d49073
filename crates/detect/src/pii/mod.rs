//! Personal data in attribute values: e-mail addresses, payment card
//! numbers, phone numbers, national identifiers (US SSN) and IBANs, found
//! inside longer values (`url.query`, request bodies, headers) as well as
//! alone.
//!
//! One pass over the bytes of a value; each detector starts only at the
//! bytes that can begin its pattern (`@` for e-mail, `+` or a digit at a
//! token boundary for numbers, two letters and two digits for an IBAN) and
//! checks what the format guarantees: Luhn and an issuer prefix for cards,
//! mod-97 and the country's length for IBANs, the Social Security
//! Administration's never-issued ranges for SSNs, the grouping of national
//! phone formats. No regular expression runs per value, and nothing is
//! allocated unless the value is percent-encoded or something is found.
//!
//! Neighbours that must not match: order and trace ids, timestamps (epoch
//! seconds, milli- and nanoseconds, ISO dates), versions, IP addresses,
//! UUIDs and decimal numbers (`tests` has the table).
//!
//! ```
//! use tracewarden_detect::pii::{self, PiiKind, PiiKinds};
//!
//! let found = pii::find("to=jane.doe%40example.com&amount=12", PiiKinds::ALL).unwrap();
//! assert_eq!(found.kind, PiiKind::Email);
//! assert_eq!(found.masked, "****.com");
//! assert!(pii::find("order=4111111111111112&ts=1767225600000", PiiKinds::ALL).is_none());
//! ```

mod card;
mod email;
mod iban;
mod names;
mod national_id;
mod phone;

use std::borrow::Cow;
use std::fmt;

pub use names::{DEFAULT_ATTRIBUTE_NAMES, NameMatcher};

/// Bytes of a value that are scanned: personal data sits in request
/// fields, and a hostile megabyte body must cost bounded time.
pub const MAX_SCAN_BYTES: usize = 64 * 1024;

/// A kind of personal data a value detector finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    Email,
    PaymentCard,
    Phone,
    /// A national identifier: the US Social Security number.
    NationalId,
    Iban,
}

impl PiiKind {
    pub const ALL: [PiiKind; 5] = [
        PiiKind::Email,
        PiiKind::PaymentCard,
        PiiKind::Phone,
        PiiKind::NationalId,
        PiiKind::Iban,
    ];

    /// The name rule files use (`email`, `payment_card`, `phone`,
    /// `national_id`, `iban`).
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::PaymentCard => "payment_card",
            PiiKind::Phone => "phone",
            PiiKind::NationalId => "national_id",
            PiiKind::Iban => "iban",
        }
    }

    pub fn from_name(name: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`PiiKind`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PiiKinds(u8);

impl PiiKinds {
    pub const ALL: PiiKinds = PiiKinds(0b1_1111);
    pub const NONE: PiiKinds = PiiKinds(0);

    pub fn with(self, kind: PiiKind) -> PiiKinds {
        PiiKinds(self.0 | kind.bit())
    }

    pub fn contains(self, kind: PiiKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<PiiKind> for PiiKinds {
    fn from_iter<I: IntoIterator<Item = PiiKind>>(iter: I) -> PiiKinds {
        iter.into_iter().fold(PiiKinds::NONE, PiiKinds::with)
    }
}

/// Personal data found in a value: its kind and a masked form that is safe
/// to put in an alert (never the value itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: PiiKind,
    /// `****` and the last four characters of what was found.
    pub masked: String,
}

/// The first personal data of `kinds` in `value` (percent-decoded first
/// when it holds `%`). Scans the first [`MAX_SCAN_BYTES`].
pub fn find(value: &str, kinds: PiiKinds) -> Option<Found> {
    if kinds.is_empty() || value.is_empty() {
        return None;
    }
    let value = truncate(value);
    let text = percent_decode(value);
    let (kind, start, end) = scan(text.as_bytes(), kinds)?;
    let found = text.get(start..end)?;
    Some(Found {
        kind,
        masked: mask(found),
    })
}

/// The first personal data of `kinds` in an integer value (a card or phone
/// number stored as a number), without allocating unless found.
pub fn find_in_int(value: i64, kinds: PiiKinds) -> Option<Found> {
    let mut buf = [0u8; 20];
    let digits = format_u64(value.unsigned_abs(), &mut buf);
    let (kind, start, end) = scan(digits, kinds)?;
    let found = std::str::from_utf8(digits.get(start..end)?).ok()?;
    Some(Found {
        kind,
        masked: mask(found),
    })
}

/// `****` followed by the last four characters of `text` (only `****` when
/// it is that short): enough for an analyst to match a card or mailbox
/// against a report, not enough to use it.
pub fn mask(text: &str) -> String {
    let count = text.chars().count();
    let mut out = String::from("****");
    if count > 4 {
        out.extend(text.chars().skip(count - 4));
    }
    out
}

/// The kind and byte range of the first personal data in `text`.
pub fn scan(text: &[u8], kinds: PiiKinds) -> Option<(PiiKind, usize, usize)> {
    for (i, &b) in text.iter().enumerate() {
        let found = match b {
            b'@' if kinds.contains(PiiKind::Email) => {
                email::at(text, i).map(|(s, e)| (PiiKind::Email, s, e))
            }
            b'+' if kinds.contains(PiiKind::Phone) && starts_token(text, i) => {
                phone::international(text, i).map(|e| (PiiKind::Phone, i, e))
            }
            b'0'..=b'9' | b'(' if starts_token(text, i) => number_at(text, i, kinds),
            b'A'..=b'Z' | b'a'..=b'z' if kinds.contains(PiiKind::Iban) && starts_token(text, i) => {
                iban::at(text, i).map(|e| (PiiKind::Iban, i, e))
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Card, SSN or national phone number starting at `i` (a digit or `(`).
fn number_at(text: &[u8], i: usize, kinds: PiiKinds) -> Option<(PiiKind, usize, usize)> {
    // A group inside a longer run of digit groups (`... 0044 0532 0130 01`,
    // an account number) does not start a number of its own.
    if i >= 2
        && matches!(text.get(i - 1), Some(b' ' | b'-'))
        && text.get(i - 2).is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    if text.get(i) != Some(&b'(') {
        if kinds.contains(PiiKind::PaymentCard)
            && let Some(end) = card::at(text, i)
        {
            return Some((PiiKind::PaymentCard, i, end));
        }
        if kinds.contains(PiiKind::NationalId)
            && let Some(end) = national_id::us_ssn(text, i)
        {
            return Some((PiiKind::NationalId, i, end));
        }
    }
    if kinds.contains(PiiKind::Phone)
        && let Some(end) = phone::national(text, i)
    {
        return Some((PiiKind::Phone, i, end));
    }
    None
}

/// Whether a token may start at `i`: the previous byte is not part of a
/// word, an identifier (`ORD-4111...`, `v1.2`) or a decimal number.
fn starts_token(text: &[u8], i: usize) -> bool {
    match i.checked_sub(1).and_then(|p| text.get(p)) {
        None => true,
        Some(&p) => !(p.is_ascii_alphanumeric() || matches!(p, b'_' | b'.' | b'-' | b'+')),
    }
}

/// Whether a token may end at `end` (exclusive): the next byte does not
/// continue a word, and no separator follows that leads into more of the
/// token (`4111...1111.5`, `2026-01-01-7`, `v1.2-rc`, `4111...1111,50`). A
/// comma before a word ends it: comma-separated `key=value` lists
/// (`pan=4111...,exp=12/28`).
fn ends_token(text: &[u8], end: usize) -> bool {
    match text.get(end) {
        None => true,
        Some(&b) if b.is_ascii_alphanumeric() || b == b'_' => false,
        Some(b'.' | b'-') => !text.get(end + 1).is_some_and(u8::is_ascii_alphanumeric),
        Some(b',') => !text.get(end + 1).is_some_and(u8::is_ascii_digit),
        Some(_) => true,
    }
}

/// Decimal digits of `n` into the end of `buf`.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

fn truncate(value: &str) -> &str {
    if value.len() <= MAX_SCAN_BYTES {
        return value;
    }
    let mut end = MAX_SCAN_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or("")
}

/// `%XX` sequences decoded (a mailbox in a query string is `a%40b.c`);
/// borrowed when there are none. Invalid sequences stay as they are.
fn percent_decode(value: &str) -> Cow<'_, str> {
    if !value.as_bytes().contains(&b'%') {
        return Cow::Borrowed(value);
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| hex(*c)),
                bytes.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn kind_of(value: &str) -> Option<PiiKind> {
        find(value, PiiKinds::ALL).map(|f| f.kind)
    }

    #[test]
    fn positives_in_context() {
        let cases: &[(&str, PiiKind, &str)] = &[
            ("jane.doe@example.com", PiiKind::Email, "****.com"),
            (
                "to=jane%2Bnews%40example.co.uk&x=1",
                PiiKind::Email,
                "****o.uk",
            ),
            (
                r#"{"card":"4111 1111 1111 1111"}"#,
                PiiKind::PaymentCard,
                "****1111",
            ),
            ("pan=5555-5555-5555-4444", PiiKind::PaymentCard, "****4444"),
            (
                "/cards/378282246310005/charge",
                PiiKind::PaymentCard,
                "****0005",
            ),
            ("call +1 (415) 555-2671 now", PiiKind::Phone, "****2671"),
            ("phone=%2B4930123456789", PiiKind::Phone, "****6789"),
            ("ssn: 123-45-6789", PiiKind::NationalId, "****6789"),
            // Comma-separated key=value lists.
            (
                "pan=4111111111111111,exp=12/28",
                PiiKind::PaymentCard,
                "****1111",
            ),
            (
                "user=jane,phone=+14155552671,plan=pro",
                PiiKind::Phone,
                "****2671",
            ),
            (
                "user=jane,ssn=123-45-6789,plan=pro",
                PiiKind::NationalId,
                "****6789",
            ),
            ("tel=415-555-2671,name=x", PiiKind::Phone, "****2671"),
            (
                "iban=DE89 3704 0044 0532 0130 00",
                PiiKind::Iban,
                "****0 00",
            ),
            ("GB82WEST12345698765432", PiiKind::Iban, "****5432"),
        ];
        for (value, kind, masked) in cases {
            let found = find(value, PiiKinds::ALL);
            assert_eq!(
                found,
                Some(Found {
                    kind: *kind,
                    masked: (*masked).to_string()
                }),
                "{value}"
            );
        }
    }

    #[test]
    fn benign_neighbours_stay_silent() {
        for value in [
            "order_id=4111111111111112",
            "ORD-4111111111111111",
            "ts=1767225600000",
            "1767225600000000000",
            "2026-01-01T12:30:45.123456789Z",
            "version=10.4.1.2026",
            "build 4.0.1-rc.2+build.4155552671",
            "123e4567-e89b-12d3-a456-426614174000",
            "12345678-1234-1234-1234-123456789012",
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
            "amount=0.4111111111111111",
            "10.20.30.40",
            "git describe v2.44.0-12-g1234567",
            "user@localhost",
            "lodash@4.17.21",
            "price 4111111111111111.50",
            "000-12-3456",
            "666-12-3456",
            "901-12-3456",
            "123-00-4567",
            "DE89 3704 0044 0532 0130 01",
            "ABCD12345678",
            "q=iphone+15+pro",
            "released 2024-05-06, build 20240506",
            // A comma before digits continues a number.
            "amount 4111111111111111,50",
            "1,234,567",
            "ids=4155552671,4155552672",
        ] {
            assert_eq!(kind_of(value), None, "{value}");
        }
    }

    #[test]
    fn kinds_restrict_the_scan() {
        let only_cards = PiiKinds::NONE.with(PiiKind::PaymentCard);
        assert!(find("jane@example.com", only_cards).is_none());
        assert!(find("4111111111111111", only_cards).is_some());
        assert!(find("4111111111111111", PiiKinds::NONE).is_none());
    }

    #[test]
    fn integers_and_masks() {
        assert_eq!(
            find_in_int(4_111_111_111_111_111, PiiKinds::ALL).map(|f| f.masked),
            Some("****1111".to_string())
        );
        assert!(find_in_int(1_767_225_600_000, PiiKinds::ALL).is_none());
        assert_eq!(mask("abc"), "****");
        assert_eq!(mask("Zürich-1234"), "****1234");
    }

    #[test]
    fn long_values_are_scanned_on_their_prefix() {
        let mut value = "x".repeat(MAX_SCAN_BYTES);
        value.push_str(" jane@example.com");
        assert!(find(&value, PiiKinds::ALL).is_none());
        assert!(find(&value[MAX_SCAN_BYTES - 10..], PiiKinds::ALL).is_some());
    }
}
