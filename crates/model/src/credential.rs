//! Credential fingerprints: a bearer token named by a SHA-256 prefix,
//! never by the token.
//!
//! Redaction masks `Authorization` headers before anything is stored, so
//! nothing stored could be matched to a token afterwards. Ingest therefore
//! stamps each span (and log record) that carries an `Authorization` value
//! with the credential's fingerprint, [`TOKEN_FINGERPRINT`], *before*
//! redaction: per-token rules, token blocks and token timelines key on it.
//! It is the fingerprint blocks and gateways use (`sha256:` and 32 hex
//! digits of the SHA-256 of the credential after its scheme), so an alert's
//! token, a block and a timeline name the same thing.
//!
//! Not stamped: `Basic` credentials (the SHA-256 of `user:password` is a
//! password hash anyone could attack with a dictionary) and the
//! challenge-response schemes (`Digest`, `Negotiate`, `NTLM`: the value
//! changes with every request, so it names nothing). A fingerprint a sender
//! put on its own spans is removed: only ingest says which token was used.

use sha2::{Digest, Sha256};

use crate::{AnyValue, KeyValue, Str};

/// The attribute ingest stamps with the credential's fingerprint.
pub const TOKEN_FINGERPRINT: &str = "tracewarden.token.fingerprint";

/// Where a credential is read from, in order: the HTTP request header and
/// the gRPC request metadata, as OpenTelemetry names captured ones.
pub const SOURCES: [&str; 2] = [
    "http.request.header.authorization",
    "rpc.grpc.request.metadata.authorization",
];

/// Bytes of the SHA-256 kept (128 bits: no accidental collisions).
const FINGERPRINT_BYTES: usize = 16;

/// What starts a fingerprint.
pub const PREFIX: &str = "sha256:";

/// Schemes whose credential is not fingerprinted (see the module's note).
const UNSTAMPED_SCHEMES: [&str; 4] = ["basic", "digest", "negotiate", "ntlm"];

/// Scheme names that, standing alone, are a header without a credential.
const BARE_SCHEMES: [&str; 6] = ["bearer", "basic", "digest", "negotiate", "ntlm", "token"];

/// The credential of an `Authorization` value: what follows the scheme
/// (`Bearer abc` -> `abc`), or the whole value when it has no scheme.
pub fn credential(authorization: &str) -> &str {
    split(authorization).1
}

/// The scheme (empty when none) and the credential.
fn split(authorization: &str) -> (&str, &str) {
    let value = authorization.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if is_scheme(scheme) && !rest.trim().is_empty() => {
            (scheme, rest.trim())
        }
        _ => ("", value),
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

/// The fingerprint to stamp for an `Authorization` value, or `None` when
/// it is empty or of a scheme that is not fingerprinted.
pub fn stamp_value(authorization: &str) -> Option<String> {
    let (scheme, credential) = split(authorization);
    let named = |list: &[&str], word: &str| list.iter().any(|s| s.eq_ignore_ascii_case(word));
    if credential.is_empty()
        || named(&UNSTAMPED_SCHEMES, scheme)
        || (scheme.is_empty() && named(&BARE_SCHEMES, credential))
    {
        return None;
    }
    Some(fingerprint(authorization))
}

/// Stamps `attributes` with the fingerprint of the first credential of
/// [`SOURCES`] it carries (a string, or the first non-empty element of a
/// captured header's string array), after removing any fingerprint already
/// there. Allocates only when there is something to stamp or remove.
pub fn stamp(attributes: &mut Vec<KeyValue>) {
    let mut found: Option<(usize, &str)> = None;
    let mut forged = false;
    for kv in attributes.iter() {
        let key = kv.key.as_str();
        if key == TOKEN_FINGERPRINT {
            forged = true;
        } else if let Some(rank) = SOURCES.iter().position(|s| *s == key)
            && found.is_none_or(|(r, _)| rank < r)
            && let Some(text) = header_text(&kv.value)
        {
            found = Some((rank, text));
        }
    }
    let stamp = found.and_then(|(_, text)| stamp_value(text));
    if forged {
        attributes.retain(|kv| kv.key.as_str() != TOKEN_FINGERPRINT);
    }
    if let Some(stamp) = stamp {
        // A static key: no allocation for the name.
        attributes.push(KeyValue {
            key: Str::const_new(TOKEN_FINGERPRINT),
            value: AnyValue::Str(stamp.into()),
        });
    }
}

/// A header value: a string, or the first non-empty string of an array
/// (OpenTelemetry records captured headers as `string[]`).
fn header_text(value: &AnyValue) -> Option<&str> {
    match value {
        AnyValue::Str(text) => Some(text.as_str()).filter(|t| !t.trim().is_empty()),
        AnyValue::Array(items) => items.iter().find_map(header_text),
        _ => None,
    }
}

/// Stamps every span and log record of a batch (see [`stamp`]).
pub fn stamp_batch(batch: &mut crate::Batch) {
    for resource_spans in &mut batch.resource_spans {
        for scope_spans in &mut resource_spans.scope_spans {
            for span in &mut scope_spans.spans {
                stamp(&mut span.attributes);
            }
        }
    }
    for resource_logs in &mut batch.resource_logs {
        for scope_logs in &mut resource_logs.scope_logs {
            for record in &mut scope_logs.log_records {
                stamp(&mut record.attributes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue::new(key, AnyValue::Str(value.into()))
    }

    fn stamped(attributes: &[KeyValue]) -> Vec<String> {
        attributes
            .iter()
            .filter(|kv| kv.key.as_str() == TOKEN_FINGERPRINT)
            .filter_map(|kv| kv.value.as_str().map(str::to_string))
            .collect()
    }

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
    fn a_bearer_header_is_stamped_with_the_fingerprint_blocks_use() {
        let mut attributes = vec![
            kv("http.request.method", "GET"),
            KeyValue::new(
                "http.request.header.authorization",
                AnyValue::Array(vec![AnyValue::Str("Bearer abc".into())]),
            ),
        ];
        stamp(&mut attributes);
        assert_eq!(
            stamped(&attributes),
            ["sha256:ba7816bf8f01cfea414140de5dae2223"]
        );
        // A plain string and gRPC metadata are read too.
        let mut grpc = vec![kv("rpc.grpc.request.metadata.authorization", "Bearer abc")];
        stamp(&mut grpc);
        assert_eq!(stamped(&grpc), stamped(&attributes));
    }

    #[test]
    fn the_http_header_wins_over_grpc_metadata_whatever_the_order() {
        let mut attributes = vec![
            kv("rpc.grpc.request.metadata.authorization", "Bearer grpc"),
            kv("http.request.header.authorization", "Bearer http"),
        ];
        stamp(&mut attributes);
        assert_eq!(stamped(&attributes), [fingerprint("http")]);
    }

    #[test]
    fn passwords_and_challenge_responses_are_not_stamped() {
        for value in [
            "Basic YWxpY2U6aHVudGVyMg==",
            "basic YWxpY2U6aHVudGVyMg==",
            "Digest username=\"a\", response=\"b\"",
            "Negotiate YIIB",
            "NTLM TlRMTVNT",
            "",
            "   ",
            "Bearer",
            "bearer  ",
        ] {
            let mut attributes = vec![kv("http.request.header.authorization", value)];
            stamp(&mut attributes);
            assert!(stamped(&attributes).is_empty(), "{value:?}");
        }
        // A credential without a scheme is one.
        let mut attributes = vec![kv("http.request.header.authorization", "k3y")];
        stamp(&mut attributes);
        assert_eq!(stamped(&attributes), [fingerprint("k3y")]);
    }

    #[test]
    fn a_forged_fingerprint_is_removed_and_replaced() {
        let victim = fingerprint("victim");
        let mut attributes = vec![kv(TOKEN_FINGERPRINT, &victim), kv("a", "b")];
        stamp(&mut attributes);
        assert!(stamped(&attributes).is_empty());
        assert_eq!(attributes.len(), 1);
        let mut attributes = vec![
            kv(TOKEN_FINGERPRINT, &victim),
            kv("http.request.header.authorization", "Bearer mine"),
            kv(TOKEN_FINGERPRINT, &victim),
        ];
        stamp(&mut attributes);
        assert_eq!(stamped(&attributes), [fingerprint("mine")]);
    }

    #[test]
    fn spans_without_credentials_are_left_alone() {
        let mut attributes = vec![kv("http.request.method", "GET"), kv("url.path", "/")];
        let before = attributes.clone();
        stamp(&mut attributes);
        assert_eq!(attributes, before);
    }
}
