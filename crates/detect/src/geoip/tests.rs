//! Tests over tiny databases written here to the MaxMind DB format
//! specification (binary search tree of 24-bit records, a 16-byte
//! separator, the data section, then `\xAB\xCD\xEFMaxMind.com` and the
//! metadata map), so no database file needs to ship.

use std::net::IpAddr;
use std::path::Path;

use super::{CountryCode, GeoIpError, Lookup};

/// A value of the MaxMind DB data section.
enum Value<'a> {
    Str(&'a str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'a str, Value<'a>)>),
    Array(Vec<Value<'a>>),
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    assert!(size < 29, "sizes up to 28 are enough here");
    // `size < 29` fits the low five bits.
    let size = size as u8;
    if kind <= 7 {
        out.push((kind << 5) | size);
    } else {
        // Extended types: type 0 in the control byte, then `kind - 7`.
        out.push(size);
        out.push(kind - 7);
    }
}

fn encode(out: &mut Vec<u8>, value: &Value<'_>) {
    let uint = |out: &mut Vec<u8>, kind: u8, v: u64, width: usize| {
        let bytes = &v.to_be_bytes()[8 - width..];
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(out, kind, width - skip);
        out.extend_from_slice(&bytes[skip..]);
    };
    match value {
        Value::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(v) => uint(out, 5, u64::from(*v), 2),
        Value::U32(v) => uint(out, 6, u64::from(*v), 4),
        Value::U64(v) => uint(out, 9, *v, 8),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(out, &Value::Str(k));
                encode(out, v);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(out, item);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// Writes a database of `networks` (address, prefix length, record).
fn database(
    ip_version: u16,
    database_type: &str,
    networks: &[(IpAddr, usize, Value<'_>)],
) -> Vec<u8> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty; 2]];
    for (address, prefix, record) in networks {
        let offset = data.len();
        encode(&mut data, record);
        let (bytes, prefix): (Vec<u8>, usize) = match (address, ip_version) {
            (IpAddr::V4(v4), 4) => (v4.octets().to_vec(), *prefix),
            // IPv4 networks of an IPv6 tree live under ::/96.
            (IpAddr::V4(v4), _) => (v4.to_ipv6_compatible().octets().to_vec(), prefix + 96),
            (IpAddr::V6(v6), _) => (v6.octets().to_vec(), *prefix),
        };
        let bit = |i: usize| usize::from((bytes[i / 8] >> (7 - i % 8)) & 1);
        let mut node = 0;
        for i in 0..prefix - 1 {
            node = match nodes[node][bit(i)] {
                Rec::Node(next) => next,
                _ => {
                    nodes.push([Rec::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][bit(i)] = Rec::Node(next);
                    next
                }
            };
        }
        nodes[node][bit(prefix - 1)] = Rec::Data(offset);
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for pair in &nodes {
        for rec in pair {
            let value = match *rec {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(offset) => count + 16 + offset,
            };
            out.extend_from_slice(&u32::try_from(value).unwrap().to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    encode(
        &mut out,
        &Value::Map(vec![
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_767_225_600)),
            ("database_type", Value::Str(database_type)),
            (
                "description",
                Value::Map(vec![("en", Value::Str("tracewarden test"))]),
            ),
            ("ip_version", Value::U16(ip_version)),
            ("languages", Value::Array(vec![Value::Str("en")])),
            ("node_count", Value::U32(u32::try_from(count).unwrap())),
            ("record_size", Value::U16(24)),
        ]),
    );
    out
}

fn country<'a>(iso: &'a str, name: &'a str) -> Value<'a> {
    Value::Map(vec![
        ("continent", Value::Map(vec![("code", Value::Str("EU"))])),
        (
            "country",
            Value::Map(vec![
                ("geoname_id", Value::U32(2_921_044)),
                ("iso_code", Value::Str(iso)),
                ("names", Value::Map(vec![("en", Value::Str(name))])),
            ]),
        ),
        (
            "registered_country",
            Value::Map(vec![("iso_code", Value::Str(iso))]),
        ),
    ])
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn networks() -> Vec<(IpAddr, usize, Value<'static>)> {
    vec![
        (ip("81.2.69.0"), 24, country("GB", "United Kingdom")),
        (ip("89.160.20.0"), 28, country("SE", "Sweden")),
        // Anycast: only the registered country.
        (
            ip("1.1.1.0"),
            24,
            Value::Map(vec![(
                "registered_country",
                Value::Map(vec![("iso_code", Value::Str("AU"))]),
            )]),
        ),
        // A record without any country.
        (
            ip("192.0.2.0"),
            24,
            Value::Map(vec![(
                "continent",
                Value::Map(vec![("code", Value::Str("EU"))]),
            )]),
        ),
    ]
}

fn lookup(ip_version: u16, extra: Vec<(IpAddr, usize, Value<'static>)>) -> Lookup {
    let mut all = networks();
    all.extend(extra);
    Lookup::from_bytes(
        database(ip_version, "GeoLite2-Country", &all),
        Path::new("test.mmdb"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn code(geo: &Lookup, address: &str) -> Option<String> {
    geo.country_of(address).unwrap().map(|c| c.to_string())
}

#[test]
fn looks_up_countries_in_an_ipv4_database() {
    let geo = lookup(4, Vec::new());
    assert_eq!(geo.database_type(), "GeoLite2-Country");
    assert_eq!(code(&geo, "81.2.69.160").as_deref(), Some("GB"));
    assert_eq!(code(&geo, "81.2.69.0").as_deref(), Some("GB"));
    assert_eq!(code(&geo, "89.160.20.15").as_deref(), Some("SE"));
    // Just outside the /28.
    assert_eq!(code(&geo, "89.160.20.16"), None);
    assert_eq!(code(&geo, "81.2.70.1"), None);
    assert_eq!(code(&geo, "1.1.1.1").as_deref(), Some("AU"));
    assert_eq!(code(&geo, "192.0.2.1"), None);
    assert_eq!(code(&geo, "10.0.0.1"), None);
    // Not an IP address: not looked up.
    assert_eq!(code(&geo, "client.example.com"), None);
    assert_eq!(code(&geo, "/run/app.sock"), None);
    // IPv6 in an IPv4-only database: unknown, not an error.
    assert_eq!(code(&geo, "2001:db8::1"), None);
    // The IPv4 client of a dual-stack socket.
    assert_eq!(code(&geo, "::ffff:81.2.69.160").as_deref(), Some("GB"));
}

#[test]
fn looks_up_ipv4_and_ipv6_in_an_ipv6_database() {
    let geo = lookup(6, vec![(ip("2001:db8:100::"), 40, country("JP", "Japan"))]);
    assert_eq!(code(&geo, "81.2.69.160").as_deref(), Some("GB"));
    assert_eq!(code(&geo, "2001:db8:100:1::7").as_deref(), Some("JP"));
    assert_eq!(code(&geo, "[2001:db8:100::1]").as_deref(), Some("JP"));
    assert_eq!(code(&geo, "2001:db8:200::1"), None);
    assert_eq!(
        geo.country(ip("89.160.20.1")).unwrap(),
        CountryCode::new("SE")
    );
}

#[test]
fn refuses_files_that_are_not_country_databases() {
    let missing = Lookup::open(Path::new("/nonexistent/GeoLite2-Country.mmdb")).unwrap_err();
    assert!(matches!(missing, GeoIpError::Open { .. }), "{missing}");
    assert!(
        missing
            .to_string()
            .contains("/nonexistent/GeoLite2-Country.mmdb")
    );

    let garbage = Lookup::from_bytes(b"not a database".to_vec(), Path::new("x.mmdb")).unwrap_err();
    assert!(matches!(garbage, GeoIpError::Open { .. }), "{garbage}");

    let asn = Lookup::from_bytes(
        database(4, "GeoLite2-ASN", &networks()),
        Path::new("asn.mmdb"),
    )
    .unwrap_err();
    assert!(
        matches!(&asn, GeoIpError::NotCountryDatabase { database_type, .. } if database_type == "GeoLite2-ASN"),
        "{asn}"
    );
}

#[test]
fn opens_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoIP2-City.mmdb");
    std::fs::write(&path, database(6, "GeoIP2-City", &networks())).unwrap();
    let geo = Lookup::open(&path).unwrap();
    assert_eq!(code(&geo, "81.2.69.160").as_deref(), Some("GB"));
}

#[test]
fn country_codes_are_two_capitals() {
    assert_eq!(
        CountryCode::new("DE").map(|c| c.to_string()).as_deref(),
        Some("DE")
    );
    for bad in ["de", "DEU", "D", "", "D1", "ÄÖ"] {
        assert_eq!(CountryCode::new(bad), None, "{bad}");
    }
}

#[test]
fn enriches_spans_from_client_address() {
    use std::sync::Arc;
    use tracewarden_model::{KeyValue, Span, SpanId, SpanRecord, TraceId};
    let geo = lookup(4, Vec::new());
    let record = |attrs: &[(&str, &str)]| {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([1; 8]),
            "GET /",
        );
        for (k, v) in attrs {
            span.attributes.push(KeyValue::new(*k, *v));
        }
        SpanRecord {
            resource: Arc::default(),
            scope: Arc::default(),
            span: span.into(),
        }
    };
    let country = |r: &SpanRecord| {
        r.span
            .attributes
            .iter()
            .filter(|kv| kv.key == super::COUNTRY_ATTRIBUTE)
            .map(|kv| kv.value.as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let mut gb = record(&[("client.address", "81.2.69.160")]);
    assert!(geo.enrich(&mut gb));
    assert_eq!(country(&gb), vec!["GB"]);
    // Already set by the collector: kept, not doubled.
    let mut set = record(&[
        ("client.address", "81.2.69.160"),
        ("geo.country.iso_code", "FR"),
    ]);
    assert!(!geo.enrich(&mut set));
    assert_eq!(country(&set), vec!["FR"]);
    // Unknown or missing addresses: nothing added.
    for attrs in [
        &[("client.address", "10.0.0.1")][..],
        &[][..],
        &[("client.address", "host.example")][..],
    ] {
        let mut r = record(attrs);
        assert!(!geo.enrich(&mut r));
        assert!(country(&r).is_empty());
    }
}
