//! Zipkin v2 JSON decoding, case by case: what fails the request, what
//! rejects one span, and the mapping of each field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracewarden_ingest::zipkin::{ZIPKIN_DEBUG, ZIPKIN_SHARED, decode_spans};
use tracewarden_ingest::{DecodeError, Decoded, Limits};
use tracewarden_model::{AnyValue, Span, SpanKind, StatusCode};

const TRACE: &str = "1e223ff1f80f1c69";
const ID: &str = "bf396325699c84bf";

fn good() -> String {
    format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","name":"good","localEndpoint":{{"serviceName":"svc"}}}}"#
    )
}

#[track_caller]
fn decode(body: &str) -> Decoded {
    decode_spans(body.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[track_caller]
fn accepted(span_json: &str) -> (Decoded, Span) {
    let decoded = decode(&format!("[{span_json}]"));
    assert_eq!(
        decoded.rejected_spans,
        0,
        "{span_json}: {:?}",
        decoded.messages()
    );
    let span = decoded
        .batch
        .spans()
        .next()
        .map(|(_, _, s)| s.clone())
        .unwrap();
    (decoded, span)
}

#[test]
fn malformed_bodies_fail_the_request_with_a_position() {
    let valid = format!("[{}]", good());
    let cases: &[(&str, &str, &str)] = &[
        ("empty body", "", "EOF while parsing"),
        ("invalid JSON", "[{traceId: 1}]", "key must be a string"),
        (
            "truncated JSON",
            &valid[..valid.len() - 5],
            "EOF while parsing",
        ),
        (
            "object at the top level",
            &good(),
            "invalid type: map, expected an array of JSON objects",
        ),
        (
            "string at the top level",
            r#""spans""#,
            "invalid type: string",
        ),
        ("null at the top level", "null", "invalid type: null"),
        ("a span that is a number", "[5]", "invalid type: integer"),
        (
            "a span that is an array",
            r#"[["1e223ff1f80f1c69"]]"#,
            "expected a JSON object",
        ),
        ("a null span", "[null]", "invalid type: null"),
        (
            "tags an array",
            r#"[{"traceId":"1","id":"1","tags":[]}]"#,
            "invalid type: sequence",
        ),
        (
            "localEndpoint a string",
            r#"[{"localEndpoint":"svc"}]"#,
            "invalid type: string",
        ),
        (
            "annotations an object",
            r#"[{"annotations":{}}]"#,
            "invalid type: map",
        ),
        ("trailing characters", "[] []", "trailing characters"),
    ];
    for (name, body, expected) in cases {
        match decode_spans(body.as_bytes(), &Limits::default()) {
            Err(DecodeError::Malformed { format, message }) => {
                assert_eq!(format, "Zipkin v2 JSON", "{name}");
                assert!(message.contains(expected), "{name}: {message}");
                assert!(
                    message.contains("line") && message.contains("column"),
                    "{name}: {message}"
                );
            }
            other => panic!("{name}: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn an_empty_array_is_an_empty_batch() {
    let decoded = decode("[]");
    assert!(decoded.batch.is_empty());
    assert_eq!((decoded.rejected_spans, decoded.warnings), (0, 0));
    assert!(decode(" [ ] ").batch.is_empty());
}

#[test]
fn bad_spans_are_rejected_alone() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "trace id too long",
            format!(r#"{{"traceId":"0{}{TRACE}","id":"{ID}"}}"#, TRACE),
            "traceId: trace id must be 32 hex digits, got 33 characters",
        ),
        (
            "span id too long",
            format!(r#"{{"traceId":"{TRACE}","id":"0{ID}"}}"#),
            "id: span id must be 16 hex digits, got 17 characters",
        ),
        (
            "empty trace id",
            format!(r#"{{"traceId":"","id":"{ID}"}}"#),
            "traceId: trace id must be 32 hex digits, got 0 characters",
        ),
        (
            "non-hex trace id",
            format!(r#"{{"traceId":"1e223ff1f80f1c6x","id":"{ID}"}}"#),
            "traceId: trace id is not hex",
        ),
        (
            "non-hex span id",
            format!(r#"{{"traceId":"{TRACE}","id":"bf39-325699c84bf"}}"#),
            "id: span id is not hex",
        ),
        (
            "zero trace id",
            format!(r#"{{"traceId":"0000000000000000","id":"{ID}"}}"#),
            "traceId: trace id is all zeroes",
        ),
        (
            "missing id",
            format!(r#"{{"traceId":"{TRACE}"}}"#),
            "id is missing",
        ),
        (
            "numeric trace id",
            format!(r#"{{"traceId":12345,"id":"{ID}"}}"#),
            "traceId must be a hex string, not a number",
        ),
        (
            "bad parent id",
            format!(r#"{{"traceId":"{TRACE}","id":"{ID}","parentId":"not-hex"}}"#),
            "parentId: span id is not hex",
        ),
        (
            "parent id too long",
            format!(r#"{{"traceId":"{TRACE}","id":"{ID}","parentId":"00{ID}"}}"#),
            "parentId: span id must be 16 hex digits",
        ),
        (
            "negative timestamp",
            format!(r#"{{"traceId":"{TRACE}","id":"{ID}","timestamp":-5}}"#),
            "timestamp must be an unsigned integer",
        ),
        (
            "timestamp text",
            format!(r#"{{"traceId":"{TRACE}","id":"{ID}","timestamp":"yesterday"}}"#),
            "timestamp must be an unsigned integer, not `yesterday`",
        ),
        (
            "duration overflow",
            format!(
                r#"{{"traceId":"{TRACE}","id":"{ID}","timestamp":1,"duration":18446744073709551}}"#
            ),
            "timestamp + duration is out of range",
        ),
        (
            "name a number",
            format!(r#"{{"traceId":"{TRACE}","id":"{ID}","name":5}}"#),
            "name must be a string, not a number",
        ),
        (
            "tag an object",
            format!(r#"{{"traceId":"{TRACE}","id":"{ID}","tags":{{"http.path":{{"a":1}}}}}}"#),
            "tag `http.path` must be a string, not an object",
        ),
        (
            "annotation value a number",
            format!(
                r#"{{"traceId":"{TRACE}","id":"{ID}","annotations":[{{"timestamp":1,"value":7}}]}}"#
            ),
            "annotation value must be a string",
        ),
    ];
    for (name, bad, expected) in cases {
        let decoded = decode(&format!("[{},{bad},{}]", good(), good()));
        assert_eq!(
            decoded.rejected_spans,
            1,
            "{name}: {:?}",
            decoded.messages()
        );
        assert_eq!(decoded.batch.span_count(), 2, "{name}");
        assert!(
            decoded.batch.spans().all(|(_, _, s)| s.name == "good"),
            "{name}"
        );
        assert_eq!(decoded.messages().len(), 1, "{name}");
        assert!(
            decoded.messages()[0].contains(expected),
            "{name}: {:?}",
            decoded.messages()
        );
    }
}

#[test]
fn short_ids_are_left_padded() {
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","parentId":"0000000000000001"}}"#
    ));
    assert_eq!(span.trace_id.to_hex(), format!("0000000000000000{TRACE}"));
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "0000000000000001");
    // Zipkin also pads ids sent without their leading zeroes.
    let (_, span) = accepted(r#"{"traceId":"abc","id":"1f","parentId":"2"}"#);
    assert_eq!(span.trace_id.to_hex(), "00000000000000000000000000000abc");
    assert_eq!(span.span_id.to_hex(), "000000000000001f");
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "0000000000000002");
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"5AAB74DBB904746BB33447BAAE403ED6","id":"{}"}}"#,
        ID.to_uppercase()
    ));
    assert_eq!(span.trace_id.to_hex(), "5aab74dbb904746bb33447baae403ed6");
    assert_eq!(span.span_id.to_hex(), ID);
}

#[test]
fn null_fields_mean_absent() {
    let (decoded, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","parentId":null,"name":null,"kind":null,"timestamp":null,
           "duration":null,"debug":null,"shared":null,"localEndpoint":null,"remoteEndpoint":null,
           "annotations":null,"tags":null}}"#
    ));
    assert!(span.is_root());
    assert_eq!(
        (span.name.as_str(), span.kind, span.start_time_unix_nano),
        ("", SpanKind::Unspecified, 0)
    );
    assert!(span.attributes.is_empty() && span.events.is_empty());
    assert_eq!(
        decoded.batch.resource_spans[0].resource.service_name(),
        "unknown_service"
    );

    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","localEndpoint":{{"serviceName":null,"ipv4":null,"ipv6":null,"port":null}},
           "tags":{{"a":null,"b":"kept"}}}}"#
    ));
    assert_eq!(
        span.attributes,
        vec![tracewarden_model::KeyValue::new("b", "kept")]
    );
}

#[test]
fn times_are_microseconds() {
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","timestamp":1472470996199000,"duration":207000,
           "annotations":[{{"timestamp":1472470996238000,"value":"ws"}},{{"timestamp":"1472470996403000","value":"wr"}}]}}"#
    ));
    assert_eq!(span.start_time_unix_nano, 1_472_470_996_199_000_000);
    assert_eq!(span.end_time_unix_nano, 1_472_470_996_406_000_000);
    let events: Vec<(u64, &str)> = span
        .events
        .iter()
        .map(|e| (e.time_unix_nano, e.name.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (1_472_470_996_238_000_000, "ws"),
            (1_472_470_996_403_000_000, "wr")
        ]
    );
    // A float timestamp (some tracers send one) loses only its sub-microsecond fraction.
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","timestamp":1472470996199000.7,"duration":2.5}}"#
    ));
    assert_eq!(
        (span.start_time_unix_nano, span.duration_nanos()),
        (1_472_470_996_199_000_000, 2_000)
    );
}

#[test]
fn kinds_map_and_unknown_kinds_warn() {
    for (kind, expected) in [
        (r#""CLIENT""#, SpanKind::Client),
        (r#""SERVER""#, SpanKind::Server),
        (r#""PRODUCER""#, SpanKind::Producer),
        (r#""CONSUMER""#, SpanKind::Consumer),
        (r#""server""#, SpanKind::Server),
    ] {
        let (decoded, span) = accepted(&format!(
            r#"{{"traceId":"{TRACE}","id":"{ID}","kind":{kind}}}"#
        ));
        assert_eq!((span.kind, decoded.warnings), (expected, 0), "{kind}");
    }
    for (kind, message) in [
        (
            r#""LOCAL""#,
            "span kind `LOCAL` is not a Zipkin kind; read as unspecified",
        ),
        ("2", "span kind 2 is not a Zipkin kind; read as unspecified"),
    ] {
        let (decoded, span) = accepted(&format!(
            r#"{{"traceId":"{TRACE}","id":"{ID}","kind":{kind}}}"#
        ));
        assert_eq!(span.kind, SpanKind::Unspecified);
        assert_eq!(decoded.messages(), [message]);
    }
}

#[test]
fn error_tag_sets_the_status_and_is_kept() {
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","tags":{{"http.status_code":"401","error":"401"}}}}"#
    ));
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "401");
    assert_eq!(span.attribute("error"), Some(&AnyValue::from("401")));
    assert_eq!(
        span.attribute("http.status_code"),
        Some(&AnyValue::from("401")),
        "not converted here"
    );
    // An empty error tag still marks the span failed.
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","tags":{{"error":""}}}}"#
    ));
    assert_eq!(
        (span.status.code, span.status.message.as_str()),
        (StatusCode::Error, "")
    );
}

#[test]
fn shared_and_debug_flags_become_attributes() {
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","shared":true,"debug":true}}"#
    ));
    assert_eq!(span.attribute(ZIPKIN_SHARED), Some(&AnyValue::Bool(true)));
    assert_eq!(span.attribute(ZIPKIN_DEBUG), Some(&AnyValue::Bool(true)));
    let (_, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","shared":false}}"#
    ));
    assert_eq!(span.attribute(ZIPKIN_SHARED), None);
    let (decoded, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","shared":"yes"}}"#
    ));
    assert_eq!(span.attribute(ZIPKIN_SHARED), None);
    assert_eq!(
        decoded.messages(),
        ["shared must be a boolean, not a string"]
    );
}

#[test]
fn spans_are_grouped_by_local_service_in_order_of_appearance() {
    let span = |id: &str, service: &str| {
        format!(
            r#"{{"traceId":"{TRACE}","id":"{id}","localEndpoint":{{"serviceName":"{service}"}}}}"#
        )
    };
    let body = format!(
        "[{},{},{},{},{}]",
        span("0000000000000001", "frontend"),
        span("0000000000000002", "backend"),
        span("0000000000000003", "frontend"),
        r#"{"traceId":"1","id":"4"}"#,
        span("0000000000000005", "backend"),
    );
    let decoded = decode(&body);
    let groups: Vec<(&str, Vec<String>)> = decoded
        .batch
        .resource_spans
        .iter()
        .map(|rs| {
            assert_eq!(rs.scope_spans.len(), 1);
            (
                rs.resource.service_name(),
                rs.scope_spans[0]
                    .spans
                    .iter()
                    .map(|s| s.span_id.to_hex()[15..].to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("frontend", vec!["1".to_string(), "3".to_string()]),
            ("backend", vec!["2".to_string(), "5".to_string()]),
            ("unknown_service", vec!["4".to_string()]),
        ]
    );
}

#[test]
fn endpoint_oddities_warn_and_are_skipped() {
    let (decoded, span) = accepted(&format!(
        r#"{{"traceId":"{TRACE}","id":"{ID}","kind":"SERVER","localEndpoint":{{"serviceName":"svc","port":0}},
           "remoteEndpoint":{{"ipv4":7,"ipv6":"::1","port":70000}}}}"#
    ));
    assert_eq!(
        span.attribute("network.local.port"),
        None,
        "port 0 means unknown"
    );
    assert_eq!(
        span.attribute("client.address"),
        Some(&AnyValue::from("::1"))
    );
    assert_eq!(span.attribute("network.peer.port"), None);
    assert_eq!(decoded.warnings, 2);
    assert_eq!(
        decoded.messages(),
        [
            "remoteEndpoint.ipv4 must be a string, not a number",
            "remoteEndpoint.port 70000 is not a TCP or UDP port"
        ]
    );
}

#[test]
fn limits_apply_to_zipkin_spans() {
    let limits = Limits {
        max_attributes_per_record: 2,
        max_attribute_value_bytes: 5,
        ..Limits::default()
    };
    let body = format!(
        r#"[{{"traceId":"{TRACE}","id":"{ID}","kind":"SERVER","remoteEndpoint":{{"ipv4":"10.0.0.1"}},
            "tags":{{"a":"1","b":"2","c":"3"}}}}]"#
    );
    let decoded = decode_spans(body.as_bytes(), &limits).unwrap();
    let (_, _, span) = decoded.batch.spans().next().unwrap();
    // Endpoint attributes come first, so the cap drops tags, not addresses.
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["netwo", "clien"],
        "keys are truncated to the value limit too"
    );
    assert_eq!(span.attributes[1].value, AnyValue::from("10.0."));
    assert_eq!(span.dropped_attributes_count, 3);
}
