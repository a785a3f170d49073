//! Property-style tests of normalisation over many generated attribute lists
//! (a seeded generator: the same cases on every run): no attribute is ever
//! lost, normalising twice is normalising once, no legacy name that maps on
//! every kind is left, and hostile values never panic.

use tracewarden_model::rng::Rng;
use tracewarden_model::{
    AnyValue, KeyValue, LogRecord, Span, SpanId, SpanKind, TraceId, normalise,
};

/// Legacy names that map whatever the span kind.
const ALWAYS_MAPPED: &[&str] = &[
    "http.status_code",
    "http.method",
    "http.target",
    "http.url",
    "http.scheme",
    "http.host",
    "http.server_name",
    "http.flavor",
    "http.user_agent",
    "http.client_ip",
    "http.request_content_length",
    "http.response_content_length",
    "http.resend_count",
    "http.request.header.x_forwarded_for",
    "http.request.header.x_real_ip",
    "net.peer.ip",
    "net.peer.port",
    "net.sock.peer.addr",
    "net.sock.peer.port",
    "net.host.ip",
    "net.sock.host.addr",
    "net.sock.host.port",
    "net.transport",
    "net.protocol.name",
    "net.protocol.version",
    "enduser.role",
    "peer.service",
    "db.statement",
    "db.operation",
    "db.name",
    "db.redis.database_index",
    "db.sql.table",
    "db.cassandra.table",
    "db.mongodb.collection",
    "db.cosmosdb.container",
    "messaging.destination",
    "otel.library.name",
    "otel.library.version",
    "deployment.environment",
    "telemetry.auto.version",
    "http.path",
];

const KIND_DEPENDENT: &[&str] = &["net.peer.name", "net.host.name", "net.host.port", "error"];

const CURRENT: &[&str] = &[
    "http.request.method",
    "http.response.status_code",
    "url.full",
    "url.path",
    "url.query",
    "url.scheme",
    "server.address",
    "server.port",
    "client.address",
    "client.port",
    "network.peer.address",
    "network.peer.port",
    "network.local.port",
    "user_agent.original",
    "user.roles",
    "http.request.header.x-forwarded-for",
    "http.request.header.x-real-ip",
    "http.request.header.forwarded",
    "http.route",
    "db.system",
    "custom.key",
    "",
    "é",
];

fn value(rng: &mut Rng) -> AnyValue {
    const TEXT: &[&str] = &[
        "401",
        " 200 ",
        "-1",
        "65536",
        "8080",
        "99999999999999999999",
        "GET",
        "get",
        "PROPFIND",
        "",
        "https://u:p@example.com:8443/a/b?c=d#e",
        "http://[::1",
        "//h/p",
        "/p?q",
        "?",
        "#",
        "://",
        "[",
        "]:",
        "203.0.113.7, 10.0.0.1",
        " , ",
        "[2001:db8::1]:443",
        "for=\"[::1]:1\";proto=http",
        "admin, ops",
        "ip_tcp",
        "2.0",
        "HTTP/",
        "false",
        "true",
        "é@ü:1/ß?ä#ö",
        "\u{0}\u{7f}",
        "x:y:z",
    ];
    match rng.below(10) {
        0 => AnyValue::Int(*rng.pick(&[0, 1, 80, 401, 65_535, 65_536, -1, i64::MAX, i64::MIN])),
        1 => AnyValue::Double(*rng.pick(&[401.0, 0.5, f64::NAN, f64::INFINITY, -0.0, 1e300])),
        2 => AnyValue::Bool(rng.below(2) == 0),
        3 => AnyValue::Empty,
        4 => AnyValue::Bytes(vec![0xff, 0x00]),
        5 => AnyValue::Array(vec![value(rng), AnyValue::from(*rng.pick(TEXT))]),
        6 => AnyValue::KvList(vec![KeyValue::new("k", AnyValue::Int(1))]),
        _ => AnyValue::from(*rng.pick(TEXT)),
    }
}

fn attributes(rng: &mut Rng) -> Vec<KeyValue> {
    (0..rng.below(14))
        .map(|_| {
            let key = match rng.below(3) {
                0 => *rng.pick(ALWAYS_MAPPED),
                1 => *rng.pick(KIND_DEPENDENT),
                _ => *rng.pick(CURRENT),
            };
            KeyValue::new(key, value(rng))
        })
        .collect()
}

/// Attributes compared by their debug form, so NaN equals NaN.
fn text(kv: &KeyValue) -> String {
    format!("{kv:?}")
}

/// Every input attribute is, with its value, in `attributes` or `originals`
/// (as many times as it was received).
#[track_caller]
fn assert_nothing_lost(
    input: &[KeyValue],
    attributes: &[KeyValue],
    originals: &[KeyValue],
    context: &str,
) {
    let mut kept: Vec<String> = attributes.iter().chain(originals).map(text).collect();
    for kv in input {
        let wanted = text(kv);
        let Some(at) = kept.iter().position(|k| *k == wanted) else {
            panic!("{wanted} lost; {context}; attributes {attributes:?}; originals {originals:?}");
        };
        kept.swap_remove(at);
    }
}

#[test]
fn spans_lose_nothing_and_normalise_once() {
    let mut rng = Rng(0x005e_ed0f_7ace);
    for case in 0..20_000 {
        let input = attributes(&mut rng);
        let kind = *rng.pick(&SpanKind::ALL);
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "generated",
        );
        span.kind = kind;
        span.attributes = input.clone();
        normalise::span(&mut span);
        let context = format!("case {case}, {kind:?} span, input {input:?}");

        assert_nothing_lost(
            &input,
            &span.attributes,
            &span.original_attributes,
            &context,
        );
        for kv in &span.attributes {
            assert!(
                !ALWAYS_MAPPED.contains(&kv.key.as_str()),
                "{} left; {context}",
                kv.key
            );
        }
        let mut again = span.clone();
        normalise::span(&mut again);
        assert_eq!(
            format!("{again:?}"),
            format!("{span:?}"),
            "not idempotent; {context}"
        );
    }
}

#[test]
fn log_records_lose_nothing_and_normalise_once() {
    let mut rng = Rng(0x0106_5eed);
    for case in 0..5_000 {
        let input = attributes(&mut rng);
        let mut record = LogRecord {
            attributes: input.clone(),
            ..LogRecord::default()
        };
        normalise::log(&mut record);
        let context = format!("case {case}, input {input:?}");
        assert_nothing_lost(
            &input,
            &record.attributes,
            &record.original_attributes,
            &context,
        );
        let mut again = record.clone();
        normalise::log(&mut again);
        assert_eq!(
            format!("{again:?}"),
            format!("{record:?}"),
            "not idempotent; {context}"
        );
    }
}
