//! E-mail addresses: `local@domain.tld`, found from the `@` outwards.

/// Bytes of the local part (RFC 5322 atoms without the rare symbols that
/// also delimit query strings and JSON: `=`, `&`, `"`, `'`).
fn local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// The byte range of an address whose `@` is at `at`.
pub(super) fn at(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > 0 && text.get(start - 1).copied().is_some_and(local_byte) {
        start -= 1;
    }
    // A local part does not start with a dot (`name=.x@y.z` holds `x@y.z`).
    while start < at && text.get(start) == Some(&b'.') {
        start += 1;
    }
    let local = text.get(start..at)?;
    if local.is_empty() || local.len() > 64 || local.ends_with(b".") {
        return None;
    }
    if local.windows(2).any(|w| w == b"..") {
        return None;
    }
    let mut end = at + 1;
    while text.get(end).copied().is_some_and(domain_byte) {
        end += 1;
    }
    // The end of a sentence or a list is not part of the domain.
    while end > at + 1 && matches!(text.get(end - 1), Some(b'.' | b'-')) {
        end -= 1;
    }
    let domain = text.get(at + 1..end)?;
    if domain.len() > 253 || !valid_domain(domain) {
        return None;
    }
    Some((start, end))
}

/// At least two labels of 1 to 63 letters, digits and inner hyphens, the
/// last (the top-level domain) 2 to 24 letters: `pkg@1.2.3` and
/// `user@localhost` are not addresses.
fn valid_domain(domain: &[u8]) -> bool {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > 63 || label.starts_with(b"-") || label.ends_with(b"-")
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && (2..=24).contains(&last.len()) && last.iter().all(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Option<&str> {
        let i = text.find('@')?;
        at(text.as_bytes(), i).and_then(|(s, e)| text.get(s..e))
    }

    #[test]
    fn addresses_and_their_bounds() {
        assert_eq!(address("a@b.io"), Some("a@b.io"));
        assert_eq!(
            address("email=jo.e+x@mail.example.org&y=1"),
            Some("jo.e+x@mail.example.org")
        );
        assert_eq!(address("write to .jo@example.com."), Some("jo@example.com"));
        assert_eq!(address("\"jo@example.com\""), Some("jo@example.com"));
        for benign in [
            "@scope/pkg",
            "pkg@1.2.3",
            "user@localhost",
            "a..b@example.com",
            "a@-x.com",
            "a@x.c0m",
            "a@.com",
        ] {
            assert_eq!(address(benign), None, "{benign}");
        }
    }
}
