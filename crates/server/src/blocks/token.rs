//! Token fingerprints: blocks name a bearer token by a SHA-256 prefix,
//! never by the token, so the blocklist, its history and the API can be
//! read without handing out credentials.

use sha2::{Digest, Sha256};

/// Bytes of the SHA-256 kept (128 bits: no accidental collisions).
const FINGERPRINT_BYTES: usize = 16;
pub const PREFIX: &str = "sha256:";

/// The credential of an `Authorization` value: what follows the scheme
/// (`Bearer abc` -> `abc`), or the whole value when it has no scheme.
pub fn credential(authorization: &str) -> &str {
    let value = authorization.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if is_scheme(scheme) && !rest.trim().is_empty() => rest.trim(),
        _ => value,
    }
}

fn is_scheme(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `sha256:` and 32 hex digits of the credential of `authorization`.
pub fn fingerprint(authorization: &str) -> String {
    let digest = Sha256::digest(credential(authorization).as_bytes());
    let mut out = String::with_capacity(PREFIX.len() + 2 * FINGERPRINT_BYTES);
    out.push_str(PREFIX);
    for byte in digest.iter().take(FINGERPRINT_BYTES) {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    out
}

/// Whether `text` is already a fingerprint (`sha256:` and 32 lowercase hex).
pub fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 2 * FINGERPRINT_BYTES
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether a detection key value was cut by the engine (values over 256
/// bytes keep a prefix and `...#` and a 64-bit hash): its fingerprint would
/// not be the token's.
pub fn is_cut(value: &str) -> bool {
    // `...#` and 16 hex digits.
    const TAIL: usize = 4 + 16;
    value.len() > TAIL
        && value.get(value.len() - TAIL..).is_some_and(|tail| {
            tail.strip_prefix("...#")
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_not_part_of_the_token() {
        assert_eq!(credential("Bearer abc.def"), "abc.def");
        assert_eq!(credential("  bearer   abc  "), "abc");
        assert_eq!(credential("abc"), "abc");
        assert_eq!(fingerprint("Bearer abc"), fingerprint("abc"));
        // SHA-256("abc") starts ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(
            fingerprint("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223"
        );
        assert!(is_fingerprint(&fingerprint("x")));
        assert!(!is_fingerprint("sha256:BA7816BF8F01CFEA414140DE5DAE2223"));
        assert!(!is_fingerprint("abc"));
    }

    #[test]
    fn cut_values_are_recognised() {
        assert!(is_cut(&format!("{}...#{:016x}", "a".repeat(200), 42)));
        assert!(!is_cut("Bearer abc"));
    }
}
