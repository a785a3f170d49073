//! Attribute names that say their value is personal data (`user.email`,
//! `customer.phone_number`, `payment.cardNumber`, `x-user-email`).
//!
//! Names are compared word by word: a key is split into words at `.`, `_`,
//! `-` and lower-to-upper case changes, and an entry matches when its words
//! appear in a row, case-insensitively. So `email` matches
//! `enduser.email_address` and `userEmail`, never `emailer`, and `phone`
//! never matches `iphone`.

/// The default names (words joined by `_`).
pub const DEFAULT_ATTRIBUTE_NAMES: &[&str] = &[
    "email",
    "e_mail",
    "email_address",
    "phone",
    "phone_number",
    "telephone",
    "msisdn",
    "ssn",
    "social_security_number",
    "national_id",
    "tax_id",
    "passport_number",
    "card_number",
    "credit_card",
    "cc_number",
    "iban",
    "bank_account",
    "account_number",
    "date_of_birth",
    "birth_date",
    "birthdate",
    "dob",
    "full_name",
    "street_address",
    "home_address",
];

/// Most words of a key compared; keys with more are compared on their
/// first words (attribute keys have a handful).
const MAX_KEY_WORDS: usize = 32;

/// Compiled attribute-name entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameMatcher {
    /// Each entry's words, lowercase.
    entries: Vec<(String, Vec<String>)>,
}

impl NameMatcher {
    /// Entries as written (`date_of_birth`, `cardNumber`, `x-user-email`).
    pub fn new<S: AsRef<str>>(entries: &[S]) -> NameMatcher {
        NameMatcher {
            entries: entries
                .iter()
                .map(|e| {
                    let e = e.as_ref();
                    let words = words(e).map(str::to_ascii_lowercase).collect();
                    (e.to_string(), words)
                })
                .filter(|(_, words): &(String, Vec<String>)| !words.is_empty())
                .collect(),
        }
    }

    pub fn defaults() -> NameMatcher {
        NameMatcher::new(DEFAULT_ATTRIBUTE_NAMES)
    }

    /// The entry (as written) that `key` matches. Allocates nothing.
    pub fn matches(&self, key: &str) -> Option<&str> {
        let mut key_words = [""; MAX_KEY_WORDS];
        let mut n = 0;
        for (slot, word) in key_words.iter_mut().zip(words(key)) {
            *slot = word;
            n += 1;
        }
        let key_words = key_words.get(..n).unwrap_or(&[]);
        self.entries
            .iter()
            .find(|(_, entry)| {
                key_words.windows(entry.len()).any(|window| {
                    window
                        .iter()
                        .zip(entry)
                        .all(|(k, e)| k.eq_ignore_ascii_case(e))
                })
            })
            .map(|(text, _)| text.as_str())
    }
}

/// The words of an attribute key: split at `.`, `_`, `-`, spaces and
/// lower-to-upper case changes (`cardNumber` = `card`, `Number`).
fn words(key: &str) -> impl Iterator<Item = &str> {
    let bytes = key.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i <= bytes.len() {
            let at = i;
            i += 1;
            let boundary = match bytes.get(at) {
                None => true,
                Some(b'.' | b'_' | b'-' | b' ') => true,
                Some(b) if b.is_ascii_uppercase() => {
                    at > start && bytes.get(at - 1).is_some_and(u8::is_ascii_lowercase)
                }
                Some(_) => false,
            };
            if !boundary {
                continue;
            }
            let word = key.get(start..at).unwrap_or("");
            // A case change starts the next word at the capital letter; a
            // separator is skipped.
            start = if bytes.get(at).is_some_and(u8::is_ascii_uppercase) {
                at
            } else {
                at + 1
            };
            if !word.is_empty() {
                return Some(word);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_by_word() {
        let m = NameMatcher::defaults();
        for (key, entry) in [
            ("user.email", Some("email")),
            ("enduser.email_address", Some("email")),
            ("userEmail", Some("email")),
            ("http.request.header.x-user-email", Some("email")),
            ("payment.cardNumber", Some("card_number")),
            ("customer.date_of_birth", Some("date_of_birth")),
            ("app.user.DOB", Some("dob")),
            ("emailer.queue", None),
            ("device.iphone", None),
            ("server.address", None),
            ("http.request.method", None),
            ("", None),
        ] {
            assert_eq!(m.matches(key), entry, "{key}");
        }
        let custom = NameMatcher::new(&["x-loyalty-id"]);
        assert_eq!(custom.matches("app.x_loyalty_id"), Some("x-loyalty-id"));
        assert_eq!(
            words("aB.c__d").collect::<Vec<_>>(),
            vec!["a", "B", "c", "d"]
        );
    }
}
