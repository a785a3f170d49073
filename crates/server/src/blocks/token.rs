//! Token fingerprints: blocks name a bearer token by a SHA-256 prefix,
//! never by the token, so the blocklist, its history and the API can be
//! read without handing out credentials. The fingerprint is the one ingest
//! stamps on spans (`tracewarden_model::credential`), so a rule's token, a
//! block and a timeline name the same thing.

pub use tracewarden_model::credential::{fingerprint, is_fingerprint};

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
    fn blocks_fingerprint_as_ingest_stamps() {
        // The same function as `tracewarden_model::credential` (tested
        // there): a block and a stamped span name a token alike.
        assert_eq!(
            fingerprint("Bearer abc"),
            tracewarden_model::credential::fingerprint("abc")
        );
        assert!(is_fingerprint(&fingerprint("x")));
    }

    #[test]
    fn cut_values_are_recognised() {
        assert!(is_cut(&format!("{}...#{:016x}", "a".repeat(200), 42)));
        assert!(!is_cut("Bearer abc"));
    }
}
