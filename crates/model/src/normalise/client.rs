//! `client.address` from forwarding headers, for server spans that lack it.
//!
//! The conventions define `client.address` on a server span as the
//! original client when a proxy says who that is (`X-Forwarded-For`,
//! `Forwarded`), else the socket peer. A security engine groups by this
//! address (brute force, credential stuffing), so a server span whose SDK
//! recorded the headers but not `client.address` gets it derived here.
//!
//! These headers are set by whoever sent the request: the first entry is
//! only as trustworthy as the proxies in front of the service. Values are
//! accepted only when they parse as an IP address, so a forged header can
//! name a wrong address but not put arbitrary text into `client.address`.

use std::net::IpAddr;

use crate::semconv::{
    HTTP_REQUEST_HEADER_FORWARDED, HTTP_REQUEST_HEADER_X_FORWARDED_FOR,
    HTTP_REQUEST_HEADER_X_REAL_IP,
};
use crate::value::{AnyValue, KeyValue, find_attribute};

/// The client address named by the forwarding headers among `attributes`,
/// in order of preference: `X-Forwarded-For` (its first entry), `Forwarded`
/// (the `for=` of its first element), `X-Real-IP`.
pub(super) fn from_headers(attributes: &[KeyValue]) -> Option<&str> {
    let header = |key| find_attribute(attributes, key).and_then(first_value);
    header(HTTP_REQUEST_HEADER_X_FORWARDED_FOR)
        .and_then(first_list_entry)
        .and_then(ip_address)
        .or_else(|| {
            header(HTTP_REQUEST_HEADER_FORWARDED)
                .and_then(forwarded_for)
                .and_then(ip_address)
        })
        .or_else(|| header(HTTP_REQUEST_HEADER_X_REAL_IP).and_then(ip_address))
}

/// An IPv4-mapped IPv6 address (`::ffff:203.0.113.5`, what a dual-stack
/// socket reports for an IPv4 peer, e.g. in Node.js) as the IPv4 address
/// it maps; `None` for anything else. One client then has one address
/// whichever service saw it, for grouping, distinct counts and blocks.
pub(super) fn unmapped_ipv4(address: &str) -> Option<std::net::Ipv4Addr> {
    // Cheap test first: the hot path calls this for every client.address.
    if address.len() < 9
        || !address
            .as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"ffff"))
    {
        return None;
    }
    address
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .and_then(|v6| v6.to_ipv4_mapped())
}

/// The first entry of a comma-separated address list (`X-Forwarded-For`,
/// the legacy `http.client_ip`), trimmed; empty entries are skipped.
pub(super) fn first_list_entry(list: &str) -> Option<&str> {
    list.split(',')
        .map(str::trim)
        .find(|entry| !entry.is_empty())
}

/// Headers are string arrays in the conventions (one element per header
/// line), but many SDKs record one string.
fn first_value(value: &AnyValue) -> Option<&str> {
    match value {
        AnyValue::Str(s) => Some(s),
        AnyValue::Array(items) => items.first().and_then(AnyValue::as_str),
        _ => None,
    }
}

/// RFC 7239: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`.
fn forwarded_for(header: &str) -> Option<&str> {
    let first = header.split(',').next()?;
    first.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The address, without brackets or port, when it is an IP address.
fn ip_address(entry: &str) -> Option<&str> {
    let entry = entry.trim();
    let address = if let Some(rest) = entry.strip_prefix('[') {
        rest.split_once(']')
            .map_or(rest, |(address, _port)| address)
    } else if entry.matches(':').count() == 1 {
        // IPv4 with a port, as some load balancers write it.
        entry
            .split_once(':')
            .map_or(entry, |(address, _port)| address)
    } else {
        entry
    };
    address.parse::<IpAddr>().is_ok().then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, AnyValue)]) -> Vec<KeyValue> {
        pairs
            .iter()
            .map(|(k, v)| KeyValue::new(*k, v.clone()))
            .collect()
    }

    #[test]
    fn x_forwarded_for_first_entry() {
        let attrs = headers(&[(
            HTTP_REQUEST_HEADER_X_FORWARDED_FOR,
            " 203.0.113.7 , 10.0.0.1".into(),
        )]);
        assert_eq!(from_headers(&attrs), Some("203.0.113.7"));
        let attrs = headers(&[(
            HTTP_REQUEST_HEADER_X_FORWARDED_FOR,
            AnyValue::Array(vec![
                "198.51.100.2:5123, 10.0.0.1".into(),
                "10.0.0.2".into(),
            ]),
        )]);
        assert_eq!(from_headers(&attrs), Some("198.51.100.2"));
        let attrs = headers(&[(
            HTTP_REQUEST_HEADER_X_FORWARDED_FOR,
            "[2001:db8::7]:443".into(),
        )]);
        assert_eq!(from_headers(&attrs), Some("2001:db8::7"));
    }

    #[test]
    fn garbage_falls_through_to_the_next_header() {
        let attrs = headers(&[
            (
                HTTP_REQUEST_HEADER_X_FORWARDED_FOR,
                "<script>, 203.0.113.7".into(),
            ),
            (HTTP_REQUEST_HEADER_X_REAL_IP, "192.0.2.9".into()),
        ]);
        assert_eq!(from_headers(&attrs), Some("192.0.2.9"));
        let attrs = headers(&[(HTTP_REQUEST_HEADER_X_REAL_IP, "unknown".into())]);
        assert_eq!(from_headers(&attrs), None);
        let attrs = headers(&[(HTTP_REQUEST_HEADER_X_FORWARDED_FOR, AnyValue::Int(7))]);
        assert_eq!(from_headers(&attrs), None);
    }

    #[test]
    fn forwarded_header() {
        let attrs = headers(&[(
            HTTP_REQUEST_HEADER_FORWARDED,
            "For=\"[2001:db8:cafe::17]:4711\";proto=https, for=192.0.2.43".into(),
        )]);
        assert_eq!(from_headers(&attrs), Some("2001:db8:cafe::17"));
        let attrs = headers(&[(
            HTTP_REQUEST_HEADER_FORWARDED,
            "proto=http;for=192.0.2.60".into(),
        )]);
        assert_eq!(from_headers(&attrs), Some("192.0.2.60"));
        let attrs = headers(&[(HTTP_REQUEST_HEADER_FORWARDED, "for=_hidden".into())]);
        assert_eq!(from_headers(&attrs), None);
    }

    #[test]
    fn list_entries() {
        assert_eq!(first_list_entry(" , 1.2.3.4, 5.6.7.8"), Some("1.2.3.4"));
        assert_eq!(first_list_entry(""), None);
    }
}
