//! Value conversions to the types the current conventions define.

use compact_str::ToCompactString;

use crate::value::{AnyValue, Str};

/// An integer from an integer, a string holding one (Zipkin tags and some
/// SDKs send numbers as strings) or a double without a fractional part.
pub(super) fn to_int(value: &AnyValue) -> Option<i64> {
    match value {
        AnyValue::Int(i) => Some(*i),
        AnyValue::Str(s) => s.trim().parse().ok(),
        // 2^53: past it a double no longer holds every integer exactly.
        AnyValue::Double(d) if d.fract() == 0.0 && d.abs() <= 9_007_199_254_740_992.0 => {
            Some(*d as i64)
        }
        _ => None,
    }
}

/// A TCP/UDP port (0 to 65535), converted as [`to_int`].
pub(super) fn to_port(value: &AnyValue) -> Option<i64> {
    to_int(value).filter(|port| (0..=65_535).contains(port))
}

/// A string from a string or the text of a scalar; `None` for values the
/// current (string) attribute cannot hold: empty, bytes, arrays, maps.
pub(super) fn to_text(value: &AnyValue) -> Option<Str> {
    match value {
        AnyValue::Str(s) => Some(s.clone()),
        AnyValue::Int(i) => Some(i.to_compact_string()),
        AnyValue::Bool(b) => Some(b.to_compact_string()),
        AnyValue::Double(d) => Some(d.to_compact_string()),
        AnyValue::Empty | AnyValue::Bytes(_) | AnyValue::Array(_) | AnyValue::KvList(_) => None,
    }
}

/// `user.roles` is a string array; the legacy `enduser.role` was one string,
/// which instrumentations filled with a comma-separated list.
pub(super) fn roles(value: &AnyValue) -> Option<AnyValue> {
    match value {
        AnyValue::Str(s) => {
            let roles: Vec<AnyValue> = s
                .split(',')
                .map(str::trim)
                .filter(|role| !role.is_empty())
                .map(AnyValue::from)
                .collect();
            (!roles.is_empty()).then_some(AnyValue::Array(roles))
        }
        AnyValue::Array(items) if items.iter().all(|item| matches!(item, AnyValue::Str(_))) => {
            Some(value.clone())
        }
        other => to_text(other).map(|role| AnyValue::Array(vec![AnyValue::Str(role)])),
    }
}

/// The methods the conventions call "known": RFC 9110's and PATCH (RFC 5789).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// `http.request.method` and, when it differs from what was received,
/// `http.request.method_original`. Unknown methods become `_OTHER` as the
/// conventions require; a known method in another case is canonicalised
/// (`get` -> `GET`), so a rule on `GET` also sees a client that sent `get`,
/// and the original keeps what it sent.
pub(super) fn method(raw: &str) -> (Str, Option<Str>) {
    if let Some(known) = KNOWN_METHODS.iter().find(|m| **m == raw) {
        return (Str::const_new(known), None);
    }
    let canonical = KNOWN_METHODS.iter().find(|m| m.eq_ignore_ascii_case(raw));
    let method = canonical.map_or(Str::const_new("_OTHER"), |m| Str::const_new(m));
    (method, Some(Str::from(raw)))
}

/// `network.protocol.version` from `http.flavor` or `net.protocol.version`:
/// the conventions fixed "2.0" to "2" and "3.0" to "3"; some senders also
/// prefix "HTTP/".
pub(super) fn protocol_version(raw: &str) -> Str {
    let version = raw.trim();
    let version = match version.get(..5) {
        Some(prefix) if prefix.eq_ignore_ascii_case("HTTP/") => version.get(5..).unwrap_or(""),
        _ => version,
    };
    match version {
        "2.0" => Str::const_new("2"),
        "3.0" => Str::const_new("3"),
        other => Str::from(other),
    }
}

/// `network.transport` from `net.transport`: `ip_tcp` and `ip_udp` became
/// `tcp` and `udp`; `pipe`, `unix` and the rest kept their names.
pub(super) fn transport(raw: &str) -> Str {
    match raw {
        "ip_tcp" => Str::const_new("tcp"),
        "ip_udp" => Str::const_new("udp"),
        other => Str::from(other),
    }
}

/// Lowercase ASCII, without allocating when the text already is.
pub(super) fn lowercase(text: &str) -> Str {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Str::from(text.to_ascii_lowercase())
    } else {
        Str::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_from_strings_and_whole_doubles() {
        assert_eq!(to_int(&AnyValue::from("401")), Some(401));
        assert_eq!(to_int(&AnyValue::from(" 200 ")), Some(200));
        assert_eq!(to_int(&AnyValue::Double(404.0)), Some(404));
        assert_eq!(to_int(&AnyValue::Double(404.5)), None);
        assert_eq!(to_int(&AnyValue::Double(f64::NAN)), None);
        assert_eq!(to_int(&AnyValue::Double(f64::INFINITY)), None);
        assert_eq!(to_int(&AnyValue::Double(1e300)), None);
        assert_eq!(to_int(&AnyValue::from("4o1")), None);
        assert_eq!(to_int(&AnyValue::from("99999999999999999999999")), None);
        assert_eq!(to_int(&AnyValue::Bool(true)), None);
    }

    #[test]
    fn ports_are_in_range() {
        assert_eq!(to_port(&AnyValue::from("8080")), Some(8080));
        assert_eq!(to_port(&AnyValue::Int(65_536)), None);
        assert_eq!(to_port(&AnyValue::Int(-1)), None);
    }

    #[test]
    fn roles_split_on_commas() {
        let expected = AnyValue::Array(vec!["admin".into(), "auditor".into()]);
        assert_eq!(
            roles(&AnyValue::from(" admin, auditor ,,")),
            Some(expected.clone())
        );
        assert_eq!(roles(&expected), Some(expected));
        assert_eq!(roles(&AnyValue::from(" , ")), None);
        assert_eq!(
            roles(&AnyValue::Int(7)),
            Some(AnyValue::Array(vec!["7".into()]))
        );
    }

    #[test]
    fn methods_follow_the_conventions() {
        assert_eq!(method("GET"), (Str::from("GET"), None));
        assert_eq!(method("get"), (Str::from("GET"), Some(Str::from("get"))));
        assert_eq!(
            method("PROPFIND"),
            (Str::from("_OTHER"), Some(Str::from("PROPFIND")))
        );
        assert_eq!(method(""), (Str::from("_OTHER"), Some(Str::from(""))));
    }

    #[test]
    fn protocol_versions_are_fixed() {
        assert_eq!(protocol_version("1.1"), "1.1");
        assert_eq!(protocol_version("2.0"), "2");
        assert_eq!(protocol_version("HTTP/3.0"), "3");
        assert_eq!(protocol_version("http/1.0"), "1.0");
        assert_eq!(protocol_version("é"), "é");
    }
}
