//! Every Zipkin v2 fixture (Zipkin's UI test data, including real
//! SmartThings traces, and its benchmark spans; see fixtures/SOURCES.txt)
//! decodes, and matches the document read independently with
//! `serde_json::Value`, span by span and service by service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tracewarden_ingest::zipkin::{
    NETWORK_LOCAL_ADDRESS, NETWORK_LOCAL_PORT, UNKNOWN_SERVICE, ZIPKIN_SHARED, decode_spans,
};
use tracewarden_ingest::{Decoded, Limits};
use tracewarden_model::{AnyValue, Span, SpanKind, StatusCode};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zipkin-v2")
}

/// The body of a fixture as a `POST /api/v2/spans` would carry it. Two
/// files (Zipkin's benchmark spans) hold one span object, read by Zipkin's
/// `decodeOne`; the API takes a list, so they are sent as a list of one.
fn body(file: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture_dir().join(file)).unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    if doc.is_object() {
        [b"[".as_slice(), &bytes, b"]"].concat()
    } else {
        bytes
    }
}

fn decode(file: &str) -> Decoded {
    let decoded =
        decode_spans(&body(file), &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        (decoded.rejected_spans, decoded.warnings),
        (0, 0),
        "{file}: {:?}",
        decoded.messages()
    );
    decoded
}

fn files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    files
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn padded(hex: &str, len: usize) -> String {
    format!("{hex:0>len$}").to_lowercase()
}

fn service_of(span: &Value) -> &str {
    span.get("localEndpoint")
        .and_then(|e| text(e, "serviceName"))
        .unwrap_or(UNKNOWN_SERVICE)
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attribute(key).and_then(AnyValue::as_str)
}

#[track_caller]
fn assert_span_matches(span: &Span, expected: &Value, context: &str) {
    let id = padded(text(expected, "id").unwrap(), 16);
    let context = format!("{context}: span {id}");
    assert_eq!(
        span.trace_id.to_hex(),
        padded(text(expected, "traceId").unwrap(), 32),
        "{context}"
    );
    assert_eq!(span.span_id.to_hex(), id, "{context}");
    let parent = text(expected, "parentId")
        .map(|p| padded(p, 16))
        .filter(|p| *p != id);
    assert_eq!(span.parent_span_id.map(|p| p.to_hex()), parent, "{context}");
    assert_eq!(span.name, text(expected, "name").unwrap_or(""), "{context}");
    let kind = match text(expected, "kind") {
        Some("CLIENT") => SpanKind::Client,
        Some("SERVER") => SpanKind::Server,
        Some("PRODUCER") => SpanKind::Producer,
        Some("CONSUMER") => SpanKind::Consumer,
        None => SpanKind::Unspecified,
        Some(other) => panic!("{context}: kind {other}"),
    };
    assert_eq!(span.kind, kind, "{context}");
    let timestamp = expected
        .get("timestamp")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let duration = expected
        .get("duration")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    assert_eq!(span.start_time_unix_nano, timestamp * 1000, "{context}");
    assert_eq!(span.duration_nanos(), duration * 1000, "{context}");

    let annotations = expected
        .get("annotations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(span.events.len(), annotations.len(), "{context}");
    for (event, annotation) in span.events.iter().zip(&annotations) {
        assert_eq!(
            event.time_unix_nano,
            annotation["timestamp"].as_u64().unwrap() * 1000,
            "{context}"
        );
        assert_eq!(
            event.name,
            annotation["value"].as_str().unwrap(),
            "{context}"
        );
    }

    // Every tag, as sent; then the attributes the endpoints add.
    let tags = expected
        .get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in &tags {
        assert_eq!(attr(span, key), value.as_str(), "{context}: tag {key}");
    }
    let error = tags.get("error").and_then(Value::as_str);
    assert_eq!(
        span.status.code == StatusCode::Error,
        error.is_some(),
        "{context}"
    );
    assert_eq!(span.status.message, error.unwrap_or(""), "{context}");

    let address = |endpoint: &str| {
        expected
            .get(endpoint)
            .and_then(|e| text(e, "ipv4").or_else(|| text(e, "ipv6")))
    };
    let port = |endpoint: &str| {
        expected
            .get(endpoint)
            .and_then(|e| e.get("port"))
            .and_then(Value::as_i64)
    };
    assert_eq!(
        attr(span, NETWORK_LOCAL_ADDRESS),
        address("localEndpoint"),
        "{context}"
    );
    assert_eq!(
        span.attribute(NETWORK_LOCAL_PORT)
            .and_then(AnyValue::as_i64),
        port("localEndpoint"),
        "{context}"
    );
    assert_eq!(
        attr(span, "network.peer.address"),
        address("remoteEndpoint"),
        "{context}"
    );
    assert_eq!(
        span.attribute("network.peer.port")
            .and_then(AnyValue::as_i64),
        port("remoteEndpoint"),
        "{context}"
    );
    let peer_service = expected
        .get("remoteEndpoint")
        .and_then(|e| text(e, "serviceName"));
    assert_eq!(attr(span, "service.peer.name"), peer_service, "{context}");
    let client_address = if kind == SpanKind::Server {
        address("remoteEndpoint")
    } else {
        None
    };
    assert_eq!(attr(span, "client.address"), client_address, "{context}");
    let server_address = if kind == SpanKind::Client {
        address("remoteEndpoint")
    } else {
        None
    };
    assert_eq!(attr(span, "server.address"), server_address, "{context}");
    let shared = expected
        .get("shared")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    assert_eq!(
        span.attribute(ZIPKIN_SHARED) == Some(&AnyValue::Bool(true)),
        shared,
        "{context}"
    );

    let endpoint_attributes = [
        address("localEndpoint").is_some(),
        port("localEndpoint").is_some(),
        address("remoteEndpoint").is_some(),
        port("remoteEndpoint").is_some(),
        peer_service.is_some(),
        client_address.is_some(),
        server_address.is_some(),
        kind == SpanKind::Client && port("remoteEndpoint").is_some(),
        shared,
    ];
    let added = endpoint_attributes.iter().filter(|b| **b).count();
    assert_eq!(
        span.attributes.len(),
        tags.len() + added,
        "{context}: no other attributes"
    );
}

#[test]
fn every_zipkin_fixture_decodes_as_the_document_says() {
    let files = files();
    assert_eq!(files.len(), 12);
    for file in &files {
        let doc: Value = serde_json::from_slice(&body(file)).unwrap();
        let expected = doc.as_array().unwrap();
        let decoded = decode(file);
        assert_eq!(decoded.batch.span_count(), expected.len(), "{file}");

        // One resource per service, in order of first appearance, each
        // holding that service's spans in the order sent.
        let mut services: Vec<(&str, Vec<&Value>)> = Vec::new();
        for span in expected {
            let service = service_of(span);
            match services.iter_mut().find(|(name, _)| *name == service) {
                Some((_, spans)) => spans.push(span),
                None => services.push((service, vec![span])),
            }
        }
        assert_eq!(decoded.batch.resource_spans.len(), services.len(), "{file}");
        for (rs, (service, spans)) in decoded.batch.resource_spans.iter().zip(&services) {
            assert_eq!(rs.resource.service_name(), *service, "{file}");
            assert_eq!(
                rs.scope_spans.len(),
                1,
                "{file}: no fixture carries otel.scope tags"
            );
            assert_eq!(
                rs.scope_spans[0].spans.len(),
                spans.len(),
                "{file}: {service}"
            );
            for (span, expected) in rs.scope_spans[0].spans.iter().zip(spans) {
                assert_span_matches(span, expected, &format!("{file}: {service}"));
            }
        }
    }
}

fn spans_of<'a>(decoded: &'a Decoded, service: &str) -> Vec<&'a Span> {
    decoded
        .batch
        .spans()
        .filter(|(r, _, _)| r.service_name() == service)
        .map(|(_, _, s)| s)
        .collect()
}

#[test]
fn smartthings_oauth_trace_services_and_the_401s() {
    let decoded = decode("smartthings-oauth-authorization.json");
    assert_eq!(decoded.batch.span_count(), 175);
    let services: Vec<(&str, usize)> = decoded
        .batch
        .resource_spans
        .iter()
        .map(|rs| (rs.resource.service_name(), rs.scope_spans[0].spans.len()))
        .collect();
    let mut sorted = services.clone();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    assert_eq!(
        sorted,
        [
            ("auth", 73),
            ("datamgmt", 65),
            ("stlogin", 17),
            ("pusher", 11),
            ("account", 5),
            ("bouncer", 2),
            ("dove", 1),
            ("paperboy", 1)
        ]
    );
    // One trace, its 64-bit id padded to 128 bits.
    assert!(
        decoded
            .batch
            .spans()
            .all(|(_, _, s)| s.trace_id.to_hex() == "00000000000000008ce82b2e9ed820ba")
    );

    let failed: Vec<&Span> = decoded
        .batch
        .spans()
        .map(|(_, _, s)| s)
        .filter(|s| s.status.code == StatusCode::Error)
        .collect();
    assert_eq!(failed.len(), 2);
    for span in &failed {
        assert_eq!(span.span_id.to_hex(), "c47bff7f7964b321");
        assert_eq!(span.status.message, "401");
        assert_eq!(
            attr(span, "http.status_code"),
            Some("401"),
            "kept as the string Zipkin sent"
        );
        assert_eq!(attr(span, "error"), Some("401"), "the error tag is kept");
        assert_eq!(attr(span, "http.path"), Some("/sso/authenticate"));
    }

    // The server side, in `auth`: the caller's address is the client address.
    let server = spans_of(&decoded, "auth")
        .into_iter()
        .find(|s| s.status.code == StatusCode::Error)
        .unwrap();
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.name, "post /sso/authenticate");
    assert_eq!(server.parent_span_id.unwrap().to_hex(), "be232464081e613d");
    assert_eq!(server.start_time_unix_nano, 1_543_334_661_606_025_000);
    assert_eq!(server.duration_nanos(), 3_041_000);
    assert_eq!(attr(server, "client.address"), Some("52.0.0.9"));
    assert_eq!(attr(server, "network.peer.address"), Some("52.0.0.9"));
    assert_eq!(
        server.attribute("network.peer.port"),
        Some(&AnyValue::Int(51436))
    );
    assert_eq!(attr(server, NETWORK_LOCAL_ADDRESS), Some("10.0.0.63"));
    assert_eq!(
        server.attribute(NETWORK_LOCAL_PORT),
        Some(&AnyValue::Int(8180))
    );
    assert_eq!(server.attribute(ZIPKIN_SHARED), Some(&AnyValue::Bool(true)));

    // The client side, in `stlogin`.
    let client = spans_of(&decoded, "stlogin")
        .into_iter()
        .find(|s| s.status.code == StatusCode::Error)
        .unwrap();
    assert_eq!(
        (client.kind, client.name.as_str()),
        (SpanKind::Client, "post")
    );
    assert_eq!(attr(client, "http.method"), Some("POST"));
    assert_eq!(
        attr(client, "server.address"),
        None,
        "no remote endpoint was recorded"
    );

    // The user e-mail tags a PII rule will look for.
    let with_email: Vec<&Span> = decoded
        .batch
        .spans()
        .map(|(_, _, s)| s)
        .filter(|s| attr(s, "user.email") == Some("joe@example.com"))
        .collect();
    assert_eq!(with_email.len(), 7);
    assert_eq!(attr(with_email[0], "user.uuid"), Some("567xyz"));
}

#[test]
fn smartthings_mobile_install_trace() {
    let decoded = decode("smartthings-mobile-web-install.json");
    assert_eq!(decoded.batch.span_count(), 1041);
    assert_eq!(decoded.batch.resource_spans.len(), 16);
    assert_eq!(spans_of(&decoded, "platformapi").len(), 335);
    assert_eq!(spans_of(&decoded, "bookie").len(), 198);
    // The first span has neither kind, timestamp nor duration.
    let first = &decoded.batch.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        decoded.batch.resource_spans[0].resource.service_name(),
        "platformapi"
    );
    assert_eq!(
        (first.span_id.to_hex().as_str(), first.kind),
        ("a0dc23f22c4fee3f", SpanKind::Unspecified)
    );
    assert_eq!(
        (first.start_time_unix_nano, first.end_time_unix_nano),
        (0, 0)
    );

    let not_found: Vec<&Span> = decoded
        .batch
        .spans()
        .map(|(_, _, s)| s)
        .filter(|s| s.status.code == StatusCode::Error)
        .collect();
    assert_eq!(not_found.len(), 2);
    assert!(
        not_found
            .iter()
            .all(|s| s.status.message == "404" && attr(s, "http.status_code") == Some("404"))
    );
    let alice = spans_of(&decoded, "alice");
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].kind, SpanKind::Server);
    assert_eq!(attr(alice[0], "client.address"), Some("10.6.157.182"));
    assert_eq!(attr(alice[0], NETWORK_LOCAL_ADDRESS), Some("10.6.31.193"));
    let email = decoded
        .batch
        .spans()
        .filter(|(_, _, s)| attr(s, "user.email") == Some("fake@example.com"))
        .count();
    assert_eq!(email, 1);
}

#[test]
fn zipkin_benchmark_spans_keep_128_bit_ids_ipv6_and_unicode() {
    let decoded = decode("zipkin2-client.json");
    let (resource, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), "frontend");
    assert_eq!(span.trace_id.to_hex(), "4d1e00c0db9010db86154a4ba6e91385");
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "86154a4ba6e91385");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(attr(span, NETWORK_LOCAL_ADDRESS), Some("2001:db8::c001"));
    assert_eq!(attr(span, "service.peer.name"), Some("backend"));
    assert_eq!(attr(span, "server.address"), Some("192.168.99.101"));
    assert_eq!(span.attribute("server.port"), Some(&AnyValue::Int(9000)));
    let events: Vec<(u64, &str)> = span
        .events
        .iter()
        .map(|e| (e.time_unix_nano, e.name.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (1_472_470_996_238_000_000, "foo"),
            (1_472_470_996_403_000_000, "bar")
        ]
    );
    assert_eq!(attr(span, "clnt/finagle.version"), Some("6.45.0"));

    let decoded = decode("zipkin2-chinese.json");
    let (resource, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), "订单维护服务");
    assert_eq!(span.name, "个人信息查询");
    assert_eq!(attr(span, "service.peer.name"), Some("个人信息服务"));
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "此用户没有操作权限");
    assert_eq!(attr(span, "http.status_code"), Some("403"));
}

#[test]
fn envoy_span_without_a_service_name() {
    let decoded = decode("envoy.json");
    let (resource, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), UNKNOWN_SERVICE);
    assert_eq!(span.trace_id.to_hex(), "0000000000000000978883983d506fa5");
    assert!(span.is_root());
    assert_eq!(
        attr(span, "user_agent").map(|ua| ua.starts_with("Mozilla/5.0 (Macintosh")),
        Some(true)
    );
    assert_eq!(attr(span, "http.url"), Some("http://www.google.com/"));
    assert_eq!(span.attribute(ZIPKIN_SHARED), Some(&AnyValue::Bool(true)));
}

#[test]
fn skew_fixture_splits_the_shared_span_by_service() {
    let decoded = decode("skew.json");
    let sides: Vec<(&str, SpanKind)> = decoded
        .batch
        .spans()
        .filter(|(_, _, s)| s.span_id.to_hex() == "74280ae0c10d8062")
        .map(|(r, _, s)| (r.service_name(), s.kind))
        .collect();
    assert_eq!(
        sides,
        [
            ("serviceb", SpanKind::Server),
            ("servicea", SpanKind::Client)
        ]
    );
}

#[test]
fn messaging_fixture_kinds_and_peer_services() {
    let decoded = decode("messaging.json");
    let kinds: Vec<(&str, SpanKind, Option<&str>)> = decoded
        .batch
        .spans()
        .map(|(r, _, s)| (r.service_name(), s.kind, attr(s, "service.peer.name")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("backend", SpanKind::Consumer, Some("rabbitmq")),
            ("backend", SpanKind::Unspecified, None),
            ("frontend", SpanKind::Producer, Some("rabbitmq")),
            ("frontend", SpanKind::Server, None),
        ]
    );
    let (_, _, server) = decoded.batch.spans().nth(3).unwrap();
    assert_eq!(attr(server, "client.address"), Some("::1"));
    assert_eq!(
        server.attribute("network.peer.port"),
        Some(&AnyValue::Int(54602))
    );
    // An empty tag value is a value.
    let (_, _, consumer) = decoded.batch.spans().next().unwrap();
    assert_eq!(
        consumer.attribute("rabbit.exchange"),
        Some(&AnyValue::from(""))
    );
}
