//! Semantic-convention normalisation: a table of cases (input attributes and
//! span kind -> attributes and originals), the rules around it (current
//! wins, idempotence, nothing lost), Zipkin's `error` tag, log records,
//! resources and batches.

use std::sync::Arc;

use tracewarden_model::{
    AnyValue, Batch, KeyValue, LogRecord, Resource, ResourceLogs, ResourceSpans, Scope, ScopeLogs,
    ScopeSpans, Span, SpanId, SpanKind, StatusCode, TraceId, normalise,
};

use SpanKind::{Client, Consumer, Internal, Producer, Server, Unspecified};

fn s(text: &str) -> AnyValue {
    AnyValue::from(text)
}

fn i(n: i64) -> AnyValue {
    AnyValue::Int(n)
}

fn strings(items: &[&str]) -> AnyValue {
    AnyValue::Array(items.iter().map(|item| s(item)).collect())
}

fn kvs(pairs: &[(&str, AnyValue)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue::new(*k, v.clone()))
        .collect()
}

fn span_with(kind: SpanKind, attributes: &[(&str, AnyValue)]) -> Span {
    let mut span = Span::new(
        TraceId::from_bytes([7; 16]),
        SpanId::from_bytes([9; 8]),
        "op",
    );
    span.kind = kind;
    span.attributes = kvs(attributes);
    span
}

fn sorted(list: &[KeyValue]) -> Vec<(String, AnyValue)> {
    let mut pairs: Vec<(String, AnyValue)> = list
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

struct Case {
    name: &'static str,
    kind: SpanKind,
    input: Vec<(&'static str, AnyValue)>,
    /// The attributes after normalisation, in any order.
    attributes: Vec<(&'static str, AnyValue)>,
    /// The original attributes, in the order received.
    originals: Vec<(&'static str, AnyValue)>,
}

/// Normalises the case's span and compares; the message names the case and
/// its input.
#[track_caller]
fn check(case: &Case) {
    let mut span = span_with(case.kind, &case.input);
    normalise::span(&mut span);
    let context = format!(
        "case `{}` ({:?} span, input {:?})",
        case.name, case.kind, case.input
    );
    assert_eq!(
        sorted(&span.attributes),
        sorted(&kvs(&case.attributes)),
        "attributes of {context}"
    );
    assert_eq!(
        span.original_attributes,
        kvs(&case.originals),
        "original attributes of {context}"
    );
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "current names are left alone",
            kind: Server,
            input: vec![
                ("http.request.method", s("GET")),
                ("url.path", s("/")),
                ("http.response.status_code", i(200)),
                ("client.address", s("203.0.113.7")),
                ("server.port", i(443)),
                ("exception.type", s("java.io.IOException")),
                ("thread.id", i(17)),
                ("rpc.grpc.status_code", i(0)),
                ("db.system", s("postgresql")),
            ],
            attributes: vec![
                ("http.request.method", s("GET")),
                ("url.path", s("/")),
                ("http.response.status_code", i(200)),
                ("client.address", s("203.0.113.7")),
                ("server.port", i(443)),
                ("exception.type", s("java.io.IOException")),
                ("thread.id", i(17)),
                ("rpc.grpc.status_code", i(0)),
                ("db.system", s("postgresql")),
            ],
            originals: vec![],
        },
        Case {
            name: "status code as an integer",
            kind: Server,
            input: vec![("http.status_code", i(401))],
            attributes: vec![("http.response.status_code", i(401))],
            originals: vec![("http.status_code", i(401))],
        },
        Case {
            name: "Zipkin status code as a string",
            kind: Server,
            input: vec![("http.status_code", s("401"))],
            attributes: vec![("http.response.status_code", i(401))],
            originals: vec![("http.status_code", s("401"))],
        },
        Case {
            name: "a status code that is no number is moved but not mapped",
            kind: Server,
            input: vec![("http.status_code", s("four-oh-one"))],
            attributes: vec![],
            originals: vec![("http.status_code", s("four-oh-one"))],
        },
        Case {
            name: "the current key wins",
            kind: Server,
            input: vec![
                ("http.status_code", i(500)),
                ("http.response.status_code", i(200)),
            ],
            attributes: vec![("http.response.status_code", i(200))],
            originals: vec![("http.status_code", i(500))],
        },
        Case {
            name: "a known method",
            kind: Client,
            input: vec![("http.method", s("POST"))],
            attributes: vec![("http.request.method", s("POST"))],
            originals: vec![("http.method", s("POST"))],
        },
        Case {
            name: "a known method in lower case is canonicalised",
            kind: Server,
            input: vec![("http.method", s("get"))],
            attributes: vec![
                ("http.request.method", s("GET")),
                ("http.request.method_original", s("get")),
            ],
            originals: vec![("http.method", s("get"))],
        },
        Case {
            name: "an unknown method becomes _OTHER",
            kind: Server,
            input: vec![("http.method", s("PROPFIND"))],
            attributes: vec![
                ("http.request.method", s("_OTHER")),
                ("http.request.method_original", s("PROPFIND")),
            ],
            originals: vec![("http.method", s("PROPFIND"))],
        },
        Case {
            name: "http.target splits at the first question mark",
            kind: Server,
            input: vec![("http.target", s("/login?next=/admin?x=1"))],
            attributes: vec![
                ("url.path", s("/login")),
                ("url.query", s("next=/admin?x=1")),
            ],
            originals: vec![("http.target", s("/login?next=/admin?x=1"))],
        },
        Case {
            name: "http.target without a query",
            kind: Server,
            input: vec![("http.target", s("/health"))],
            attributes: vec![("url.path", s("/health"))],
            originals: vec![("http.target", s("/health"))],
        },
        Case {
            name: "http.url gives url.full and its parts, credentials redacted",
            kind: Client,
            input: vec![(
                "http.url",
                s("HTTPS://bob:hunter2@api.example.com:8443/v1/users?id=7#top"),
            )],
            attributes: vec![
                (
                    "url.full",
                    s("HTTPS://REDACTED:REDACTED@api.example.com:8443/v1/users?id=7#top"),
                ),
                ("url.scheme", s("https")),
                ("server.address", s("api.example.com")),
                ("server.port", i(8443)),
                ("url.path", s("/v1/users")),
                ("url.query", s("id=7")),
                ("url.fragment", s("top")),
            ],
            originals: vec![(
                "http.url",
                s("HTTPS://bob:hunter2@api.example.com:8443/v1/users?id=7#top"),
            )],
        },
        Case {
            name: "http.url without a port gets the scheme's default",
            kind: Client,
            input: vec![("http.url", s("https://example.com"))],
            attributes: vec![
                ("url.full", s("https://example.com")),
                ("url.scheme", s("https")),
                ("server.address", s("example.com")),
                ("server.port", i(443)),
            ],
            originals: vec![("http.url", s("https://example.com"))],
        },
        Case {
            name: "http.url that is garbage is kept as url.full only",
            kind: Client,
            input: vec![("http.url", s("::::not a url::::"))],
            attributes: vec![("url.full", s("::::not a url::::"))],
            originals: vec![("http.url", s("::::not a url::::"))],
        },
        Case {
            name: "parts already present win over the URL's",
            kind: Client,
            input: vec![
                ("url.path", s("/kept")),
                ("server.address", s("other.example.com")),
                ("http.url", s("http://example.com:8080/ignored")),
            ],
            attributes: vec![
                ("url.path", s("/kept")),
                ("server.address", s("other.example.com")),
                ("url.full", s("http://example.com:8080/ignored")),
                ("url.scheme", s("http")),
            ],
            originals: vec![("http.url", s("http://example.com:8080/ignored"))],
        },
        Case {
            name: "http.target outranks http.url for the path",
            kind: Server,
            input: vec![
                ("http.url", s("http://example.com/from-url?a")),
                ("http.target", s("/from-target?b")),
            ],
            attributes: vec![
                ("url.full", s("http://example.com/from-url?a")),
                ("url.scheme", s("http")),
                ("server.address", s("example.com")),
                ("server.port", i(80)),
                ("url.path", s("/from-target")),
                ("url.query", s("b")),
            ],
            originals: vec![
                ("http.url", s("http://example.com/from-url?a")),
                ("http.target", s("/from-target?b")),
            ],
        },
        Case {
            name: "user agent",
            kind: Server,
            input: vec![("http.user_agent", s("curl/8.5.0"))],
            attributes: vec![("user_agent.original", s("curl/8.5.0"))],
            originals: vec![("http.user_agent", s("curl/8.5.0"))],
        },
        Case {
            name: "server span: the socket peer is the client",
            kind: Server,
            input: vec![
                ("net.peer.ip", s("198.51.100.4")),
                ("net.peer.port", i(51_234)),
            ],
            attributes: vec![
                ("network.peer.address", s("198.51.100.4")),
                ("network.peer.port", i(51_234)),
                ("client.address", s("198.51.100.4")),
                ("client.port", i(51_234)),
            ],
            originals: vec![
                ("net.peer.ip", s("198.51.100.4")),
                ("net.peer.port", i(51_234)),
            ],
        },
        Case {
            name: "server span: an IPv4-mapped IPv6 client.address (Node.js on a dual-stack socket) is written as IPv4",
            kind: Server,
            input: vec![("client.address", s("::ffff:203.0.113.5"))],
            attributes: vec![("client.address", s("203.0.113.5"))],
            originals: vec![("client.address", s("::ffff:203.0.113.5"))],
        },
        Case {
            name: "server span: an IPv4-mapped socket peer gives an IPv4 client.address",
            kind: Server,
            input: vec![
                ("network.peer.address", s("::FFFF:203.0.113.5")),
                ("network.peer.port", i(51_234)),
            ],
            attributes: vec![
                ("network.peer.address", s("::FFFF:203.0.113.5")),
                ("network.peer.port", i(51_234)),
                ("client.address", s("203.0.113.5")),
                ("client.port", i(51_234)),
            ],
            originals: vec![],
        },
        Case {
            name: "server span: an IPv4-mapped X-Forwarded-For entry gives an IPv4 client.address",
            kind: Server,
            input: vec![(
                "http.request.header.x-forwarded-for",
                s("::ffff:203.0.113.5, 10.0.0.1"),
            )],
            attributes: vec![
                (
                    "http.request.header.x-forwarded-for",
                    s("::ffff:203.0.113.5, 10.0.0.1"),
                ),
                ("client.address", s("203.0.113.5")),
            ],
            originals: vec![],
        },
        Case {
            name: "server span: other IPv6 client addresses stay as they are",
            kind: Server,
            input: vec![("client.address", s("2001:db8::ffff:1"))],
            attributes: vec![("client.address", s("2001:db8::ffff:1"))],
            originals: vec![],
        },
        Case {
            name: "server span: http.client_ip outranks the socket peer, first entry of the list",
            kind: Server,
            input: vec![
                ("http.client_ip", s(" 203.0.113.7, 10.0.0.1")),
                ("net.sock.peer.addr", s("10.0.0.1")),
                ("net.sock.peer.port", s("4711")),
            ],
            attributes: vec![
                ("client.address", s("203.0.113.7")),
                ("network.peer.address", s("10.0.0.1")),
                ("network.peer.port", i(4711)),
            ],
            originals: vec![
                ("http.client_ip", s(" 203.0.113.7, 10.0.0.1")),
                ("net.sock.peer.addr", s("10.0.0.1")),
                ("net.sock.peer.port", s("4711")),
            ],
        },
        Case {
            name: "server span: net.peer.name is the last resort for client.address",
            kind: Server,
            input: vec![("net.peer.name", s("client.example.net"))],
            attributes: vec![("client.address", s("client.example.net"))],
            originals: vec![("net.peer.name", s("client.example.net"))],
        },
        Case {
            name: "server span: the local host is the server",
            kind: Server,
            input: vec![
                ("net.host.name", s("shop.example.com")),
                ("net.host.port", s("8443")),
            ],
            attributes: vec![
                ("server.address", s("shop.example.com")),
                ("server.port", i(8443)),
            ],
            originals: vec![
                ("net.host.name", s("shop.example.com")),
                ("net.host.port", s("8443")),
            ],
        },
        Case {
            name: "client span: the peer is the server",
            kind: Client,
            input: vec![
                ("net.peer.name", s("db.internal")),
                ("net.peer.port", i(5432)),
                ("net.sock.peer.addr", s("10.1.2.3")),
                ("net.sock.peer.port", i(5432)),
                ("net.host.name", s("worker-7")),
            ],
            attributes: vec![
                ("server.address", s("db.internal")),
                ("server.port", i(5432)),
                ("network.peer.address", s("10.1.2.3")),
                ("network.peer.port", i(5432)),
                ("net.host.name", s("worker-7")),
            ],
            originals: vec![
                ("net.peer.name", s("db.internal")),
                ("net.peer.port", i(5432)),
                ("net.sock.peer.addr", s("10.1.2.3")),
                ("net.sock.peer.port", i(5432)),
            ],
        },
        Case {
            name: "producer span: the broker is the server",
            kind: Producer,
            input: vec![
                ("net.peer.name", s("kafka-1")),
                ("net.peer.port", i(9092)),
                ("messaging.destination", s("orders")),
            ],
            attributes: vec![
                ("server.address", s("kafka-1")),
                ("server.port", i(9092)),
                ("messaging.destination.name", s("orders")),
            ],
            originals: vec![
                ("net.peer.name", s("kafka-1")),
                ("net.peer.port", i(9092)),
                ("messaging.destination", s("orders")),
            ],
        },
        Case {
            name: "consumer span: the broker is the server",
            kind: Consumer,
            input: vec![
                ("net.peer.name", s("rabbit")),
                ("net.transport", s("ip_tcp")),
            ],
            attributes: vec![
                ("server.address", s("rabbit")),
                ("network.transport", s("tcp")),
            ],
            originals: vec![
                ("net.peer.name", s("rabbit")),
                ("net.transport", s("ip_tcp")),
            ],
        },
        Case {
            name: "internal span: kind-dependent names stay, socket names map",
            kind: Internal,
            input: vec![
                ("net.peer.name", s("peer")),
                ("net.peer.ip", s("10.0.0.9")),
                ("net.peer.port", i(80)),
            ],
            attributes: vec![
                ("net.peer.name", s("peer")),
                ("network.peer.address", s("10.0.0.9")),
                ("network.peer.port", i(80)),
            ],
            originals: vec![("net.peer.ip", s("10.0.0.9")), ("net.peer.port", i(80))],
        },
        Case {
            name: "unspecified kind: net.host.* stays",
            kind: Unspecified,
            input: vec![("net.host.name", s("h")), ("net.host.port", i(1))],
            attributes: vec![("net.host.name", s("h")), ("net.host.port", i(1))],
            originals: vec![],
        },
        Case {
            name: "enduser.role becomes a string array",
            kind: Server,
            input: vec![("enduser.role", s("admin, auditor,"))],
            attributes: vec![("user.roles", strings(&["admin", "auditor"]))],
            originals: vec![("enduser.role", s("admin, auditor,"))],
        },
        Case {
            name: "peer.service",
            kind: Client,
            input: vec![("peer.service", s("payments"))],
            attributes: vec![("service.peer.name", s("payments"))],
            originals: vec![("peer.service", s("payments"))],
        },
        Case {
            name: "Zipkin HTTP tags",
            kind: Server,
            input: vec![
                ("http.path", s("/oauth/token")),
                ("http.method", s("POST")),
                ("http.status_code", s("401")),
            ],
            attributes: vec![
                ("url.path", s("/oauth/token")),
                ("http.request.method", s("POST")),
                ("http.response.status_code", i(401)),
            ],
            originals: vec![
                ("http.path", s("/oauth/token")),
                ("http.method", s("POST")),
                ("http.status_code", s("401")),
            ],
        },
        Case {
            name: "database names",
            kind: Client,
            input: vec![
                ("db.system", s("mysql")),
                ("db.statement", s("SELECT * FROM users WHERE id = ?")),
                ("db.operation", s("SELECT")),
                ("db.name", s("shop")),
                ("db.sql.table", s("users")),
            ],
            attributes: vec![
                ("db.system", s("mysql")),
                ("db.query.text", s("SELECT * FROM users WHERE id = ?")),
                ("db.operation.name", s("SELECT")),
                ("db.namespace", s("shop")),
                ("db.collection.name", s("users")),
            ],
            originals: vec![
                ("db.statement", s("SELECT * FROM users WHERE id = ?")),
                ("db.operation", s("SELECT")),
                ("db.name", s("shop")),
                ("db.sql.table", s("users")),
            ],
        },
        Case {
            name: "redis database index becomes a string namespace",
            kind: Client,
            input: vec![("db.redis.database_index", i(3))],
            attributes: vec![("db.namespace", s("3"))],
            originals: vec![("db.redis.database_index", i(3))],
        },
        Case {
            name: "older HTTP attributes",
            kind: Server,
            input: vec![
                ("http.scheme", s("HTTPS")),
                ("http.host", s("[2001:db8::1]:8443")),
                ("http.flavor", s("2.0")),
                ("http.request_content_length", s("512")),
                ("http.response_content_length", i(2048)),
                ("http.server_name", s("ignored.example.com")),
            ],
            attributes: vec![
                ("url.scheme", s("https")),
                ("server.address", s("2001:db8::1")),
                ("server.port", i(8443)),
                ("network.protocol.version", s("2")),
                ("http.request.body.size", i(512)),
                ("http.response.body.size", i(2048)),
            ],
            originals: vec![
                ("http.scheme", s("HTTPS")),
                ("http.host", s("[2001:db8::1]:8443")),
                ("http.flavor", s("2.0")),
                ("http.request_content_length", s("512")),
                ("http.response_content_length", i(2048)),
                ("http.server_name", s("ignored.example.com")),
            ],
        },
        Case {
            name: "http.server_name when nothing better names the server",
            kind: Server,
            input: vec![("http.server_name", s("vhost.example.com"))],
            attributes: vec![("server.address", s("vhost.example.com"))],
            originals: vec![("http.server_name", s("vhost.example.com"))],
        },
        Case {
            name: "X-Forwarded-For gives client.address on a server span",
            kind: Server,
            input: vec![
                (
                    "http.request.header.x-forwarded-for",
                    s(" 203.0.113.7 , 10.0.0.1"),
                ),
                ("network.peer.address", s("10.0.0.1")),
                ("network.peer.port", i(40_000)),
            ],
            attributes: vec![
                (
                    "http.request.header.x-forwarded-for",
                    s(" 203.0.113.7 , 10.0.0.1"),
                ),
                ("network.peer.address", s("10.0.0.1")),
                ("network.peer.port", i(40_000)),
                ("client.address", s("203.0.113.7")),
            ],
            originals: vec![],
        },
        Case {
            name: "X-Real-IP as a string array",
            kind: Server,
            input: vec![("http.request.header.x-real-ip", strings(&["192.0.2.44"]))],
            attributes: vec![
                ("http.request.header.x-real-ip", strings(&["192.0.2.44"])),
                ("client.address", s("192.0.2.44")),
            ],
            originals: vec![],
        },
        Case {
            name: "X-Forwarded-For that is no address is not used",
            kind: Server,
            input: vec![("http.request.header.x-forwarded-for", s("' OR 1=1 --"))],
            attributes: vec![("http.request.header.x-forwarded-for", s("' OR 1=1 --"))],
            originals: vec![],
        },
        Case {
            name: "X-Forwarded-For is not used on client spans",
            kind: Client,
            input: vec![("http.request.header.x-forwarded-for", s("203.0.113.7"))],
            attributes: vec![("http.request.header.x-forwarded-for", s("203.0.113.7"))],
            originals: vec![],
        },
        Case {
            name: "client.address already present wins over X-Forwarded-For",
            kind: Server,
            input: vec![
                ("client.address", s("198.51.100.1")),
                ("http.request.header.x-forwarded-for", s("203.0.113.7")),
            ],
            attributes: vec![
                ("client.address", s("198.51.100.1")),
                ("http.request.header.x-forwarded-for", s("203.0.113.7")),
            ],
            originals: vec![],
        },
        Case {
            name: "X-Forwarded-For outranks the legacy socket peer",
            kind: Server,
            input: vec![
                ("net.sock.peer.addr", s("10.0.0.1")),
                ("http.request.header.x-forwarded-for", s("203.0.113.9")),
            ],
            attributes: vec![
                ("network.peer.address", s("10.0.0.1")),
                ("http.request.header.x-forwarded-for", s("203.0.113.9")),
                ("client.address", s("203.0.113.9")),
            ],
            originals: vec![("net.sock.peer.addr", s("10.0.0.1"))],
        },
        Case {
            name: "pre-v1.23 header name with underscores",
            kind: Server,
            input: vec![(
                "http.request.header.x_forwarded_for",
                strings(&["203.0.113.8"]),
            )],
            attributes: vec![
                (
                    "http.request.header.x-forwarded-for",
                    strings(&["203.0.113.8"]),
                ),
                ("client.address", s("203.0.113.8")),
            ],
            originals: vec![(
                "http.request.header.x_forwarded_for",
                strings(&["203.0.113.8"]),
            )],
        },
        Case {
            name: "a current port sent as a string becomes an integer",
            kind: Client,
            input: vec![
                ("server.port", s("8080")),
                ("http.response.status_code", s("503")),
            ],
            attributes: vec![
                ("server.port", i(8080)),
                ("http.response.status_code", i(503)),
            ],
            originals: vec![
                ("server.port", s("8080")),
                ("http.response.status_code", s("503")),
            ],
        },
        Case {
            name: "a port out of range is not converted",
            kind: Client,
            input: vec![("server.port", s("70000")), ("net.peer.port", i(-1))],
            attributes: vec![("server.port", s("70000"))],
            originals: vec![("net.peer.port", i(-1))],
        },
        Case {
            name: "duplicate legacy keys: the first received wins",
            kind: Server,
            input: vec![("http.status_code", i(404)), ("http.status_code", i(500))],
            attributes: vec![("http.response.status_code", i(404))],
            originals: vec![("http.status_code", i(404)), ("http.status_code", i(500))],
        },
        Case {
            name: "instrumentation library and network protocol",
            kind: Server,
            input: vec![
                ("otel.library.name", s("io.opentelemetry.tomcat-10.0")),
                ("otel.library.version", s("1.32.0")),
                ("net.protocol.name", s("HTTP")),
                ("net.protocol.version", s("1.1")),
                ("net.sock.host.addr", s("10.0.0.5")),
                ("net.sock.host.port", i(8080)),
                ("http.resend_count", i(2)),
            ],
            attributes: vec![
                ("otel.scope.name", s("io.opentelemetry.tomcat-10.0")),
                ("otel.scope.version", s("1.32.0")),
                ("network.protocol.name", s("http")),
                ("network.protocol.version", s("1.1")),
                ("network.local.address", s("10.0.0.5")),
                ("network.local.port", i(8080)),
                ("http.request.resend_count", i(2)),
            ],
            originals: vec![
                ("otel.library.name", s("io.opentelemetry.tomcat-10.0")),
                ("otel.library.version", s("1.32.0")),
                ("net.protocol.name", s("HTTP")),
                ("net.protocol.version", s("1.1")),
                ("net.sock.host.addr", s("10.0.0.5")),
                ("net.sock.host.port", i(8080)),
                ("http.resend_count", i(2)),
            ],
        },
    ]
}

#[test]
fn mapping_table() {
    for case in cases() {
        check(&case);
    }
}

#[test]
fn normalising_twice_is_normalising_once() {
    for case in cases() {
        let mut once = span_with(case.kind, &case.input);
        normalise::span(&mut once);
        let mut twice = once.clone();
        normalise::span(&mut twice);
        assert_eq!(twice, once, "case `{}`", case.name);
    }
}

fn zipkin_error_span(tag: AnyValue, status: StatusCode, message: &str) -> Span {
    let mut span = span_with(Server, &[("error", tag)]);
    span.status.code = status;
    span.status.message = message.into();
    normalise::span(&mut span);
    span
}

#[test]
fn zipkin_error_tag_sets_an_unset_status() {
    let span = zipkin_error_span(s("connection reset"), StatusCode::Unset, "");
    assert_eq!(
        (span.status.code, span.status.message.as_str()),
        (StatusCode::Error, "connection reset")
    );
    assert!(span.attributes.is_empty());
    assert_eq!(
        span.original_attributes,
        kvs(&[("error", s("connection reset"))])
    );

    let span = zipkin_error_span(s("true"), StatusCode::Unset, "");
    assert_eq!(
        (span.status.code, span.status.message.as_str()),
        (StatusCode::Error, "")
    );
    let span = zipkin_error_span(AnyValue::Bool(true), StatusCode::Unset, "");
    assert_eq!(span.status.code, StatusCode::Error);
    let span = zipkin_error_span(s(""), StatusCode::Unset, "");
    assert_eq!(
        span.status.code,
        StatusCode::Error,
        "Zipkin: the tag's presence is the error"
    );
}

#[test]
fn zipkin_error_tag_keeps_a_set_status() {
    // The Zipkin decoder already set the status from the tag.
    let span = zipkin_error_span(s("timeout"), StatusCode::Error, "timeout");
    assert_eq!(
        (span.status.code, span.status.message.as_str()),
        (StatusCode::Error, "timeout")
    );
    assert_eq!(span.original_attributes, kvs(&[("error", s("timeout"))]));
    // An explicit OK from the sender is not overridden.
    let span = zipkin_error_span(s("boom"), StatusCode::Ok, "");
    assert_eq!(span.status.code, StatusCode::Ok);
}

#[test]
fn opentracing_error_false_is_no_error() {
    for tag in [AnyValue::Bool(false), s("false"), s(" FALSE ")] {
        let span = zipkin_error_span(tag.clone(), StatusCode::Unset, "");
        assert_eq!(span.status.code, StatusCode::Unset, "tag {tag:?}");
        assert_eq!(span.original_attributes, kvs(&[("error", tag)]));
    }
}

#[test]
fn log_records_have_no_span_kind() {
    let mut record = LogRecord {
        attributes: kvs(&[
            ("http.status_code", s("500")),
            ("net.peer.ip", s("198.51.100.4")),
            ("net.peer.name", s("client.example.net")),
            ("net.host.name", s("web-1")),
            ("http.request.header.x-forwarded-for", s("203.0.113.7")),
            ("error", s("an application's own field")),
        ]),
        ..LogRecord::default()
    };
    normalise::log(&mut record);
    assert_eq!(
        sorted(&record.attributes),
        sorted(&kvs(&[
            ("http.response.status_code", i(500)),
            ("network.peer.address", s("198.51.100.4")),
            ("net.peer.name", s("client.example.net")),
            ("net.host.name", s("web-1")),
            ("http.request.header.x-forwarded-for", s("203.0.113.7")),
            ("error", s("an application's own field")),
        ]))
    );
    assert_eq!(
        record.original_attributes,
        kvs(&[
            ("http.status_code", s("500")),
            ("net.peer.ip", s("198.51.100.4"))
        ])
    );
}

#[test]
fn resource_attributes() {
    let mut resource = Resource {
        attributes: kvs(&[
            ("service.name", s("shop")),
            ("deployment.environment", s("production")),
            ("telemetry.auto.version", s("1.32.0")),
        ]),
        ..Resource::default()
    };
    normalise::resource(&mut resource);
    assert_eq!(
        sorted(&resource.attributes),
        sorted(&kvs(&[
            ("service.name", s("shop")),
            ("deployment.environment.name", s("production")),
            ("telemetry.distro.version", s("1.32.0")),
        ]))
    );
    assert_eq!(
        resource.original_attributes,
        kvs(&[
            ("deployment.environment", s("production")),
            ("telemetry.auto.version", s("1.32.0"))
        ])
    );
}

fn resource(attributes: &[(&str, AnyValue)]) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: kvs(attributes),
        ..Resource::default()
    })
}

#[test]
fn batch_copies_a_shared_resource_only_when_it_changes() {
    let current = resource(&[
        ("service.name", s("a")),
        ("deployment.environment.name", s("prod")),
    ]);
    let legacy = resource(&[
        ("service.name", s("b")),
        ("deployment.environment", s("prod")),
    ]);
    let scope = Arc::new(Scope {
        attributes: kvs(&[("http.method", s("scope attributes are left alone"))]),
        ..Scope::default()
    });
    let mut batch = Batch {
        resource_spans: vec![
            ResourceSpans {
                resource: Arc::clone(&current),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::clone(&scope),
                    spans: vec![span_with(Server, &[("http.status_code", i(200))])],
                }],
            },
            ResourceSpans {
                resource: Arc::clone(&legacy),
                scope_spans: vec![],
            },
        ],
        resource_logs: vec![ResourceLogs {
            resource: Arc::clone(&current),
            scope_logs: vec![ScopeLogs {
                scope: Arc::clone(&scope),
                log_records: vec![LogRecord {
                    attributes: kvs(&[("http.method", s("GET"))]),
                    ..LogRecord::default()
                }],
            }],
        }],
    };
    normalise::batch(&mut batch);

    let spans = &batch.resource_spans;
    assert!(
        Arc::ptr_eq(&spans[0].resource, &current),
        "an unchanged resource is not copied"
    );
    assert!(Arc::ptr_eq(&batch.resource_logs[0].resource, &current));
    assert!(Arc::ptr_eq(&spans[0].scope_spans[0].scope, &scope));
    assert!(
        !Arc::ptr_eq(&spans[1].resource, &legacy),
        "a changed shared resource is copied"
    );
    assert_eq!(
        spans[1].resource.attribute("deployment.environment.name"),
        Some(&s("prod"))
    );
    assert_eq!(
        legacy.attribute("deployment.environment"),
        Some(&s("prod")),
        "the other holders keep theirs"
    );
    assert_eq!(
        spans[0].scope_spans[0].spans[0].attribute("http.response.status_code"),
        Some(&i(200))
    );
    let record = &batch.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attribute("http.request.method"), Some(&s("GET")));
}

#[test]
fn an_unchanged_span_keeps_its_allocation() {
    let mut span = span_with(
        Server,
        &[
            ("http.request.method", s("GET")),
            ("client.address", s("203.0.113.7")),
        ],
    );
    let before = span.attributes.as_ptr();
    let capacity = span.attributes.capacity();
    normalise::span(&mut span);
    assert_eq!(
        (span.attributes.as_ptr(), span.attributes.capacity()),
        (before, capacity)
    );
    assert_eq!(span.original_attributes.capacity(), 0);
}

#[test]
fn a_server_span_with_unusable_headers_keeps_its_allocation() {
    // The hot path sends it to the rewrite (no `client.address`, a header to
    // derive it from), which finds nothing to change.
    let mut span = span_with(
        Server,
        &[("http.request.header.x-forwarded-for", s("unknown"))],
    );
    span.attributes.shrink_to_fit();
    let before = (span.attributes.as_ptr(), span.attributes.capacity());
    normalise::span(&mut span);
    assert_eq!(
        (span.attributes.as_ptr(), span.attributes.capacity()),
        before
    );
    assert_eq!(
        span.attributes,
        kvs(&[("http.request.header.x-forwarded-for", s("unknown"))])
    );
    assert_eq!(span.original_attributes.capacity(), 0);
}
