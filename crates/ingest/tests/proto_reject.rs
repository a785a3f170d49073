//! What the OTLP protobuf decoder rejects, and how: a bad record alone (the
//! rest of the batch kept, the reason counted), or the whole request when
//! its framing is broken.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as PbAnyValue, InstrumentationScope, KeyValue as PbKeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as PbLogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::span::{Event as PbEvent, Link as PbLink};
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as PbSpan, Status as PbStatus,
};
use prost::Message;
use tracewarden_ingest::otlp::proto::{decode_logs, decode_traces};
use tracewarden_ingest::{DecodeError, Decoded, Limits};
use tracewarden_model::{AnyValue, SpanKind, StatusCode};

fn kv(key: &str, value: Value) -> PbKeyValue {
    PbKeyValue {
        key: key.into(),
        value: Some(PbAnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn good_span(name: &str) -> PbSpan {
    PbSpan {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        name: name.into(),
        kind: 2,
        attributes: vec![kv("http.request.method", Value::StringValue("GET".into()))],
        ..PbSpan::default()
    }
}

fn traces(spans: Vec<PbSpan>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(PbResource {
                attributes: vec![kv("service.name", Value::StringValue("api".into()))],
                ..PbResource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "scope".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

fn good_log(body: &str) -> PbLogRecord {
    PbLogRecord {
        severity_number: 9,
        body: Some(PbAnyValue {
            value: Some(Value::StringValue(body.into())),
        }),
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        ..PbLogRecord::default()
    }
}

fn logs(records: Vec<PbLogRecord>) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

fn span_names(decoded: &Decoded) -> Vec<&str> {
    decoded
        .batch
        .spans()
        .map(|(_, _, s)| s.name.as_str())
        .collect()
}

#[track_caller]
fn assert_message(decoded: &Decoded, expected: &str) {
    assert!(
        decoded.messages().iter().any(|m| m == expected),
        "no message `{expected}` in {:?}",
        decoded.messages()
    );
}

#[track_caller]
fn malformed(result: Result<Decoded, DecodeError>) -> String {
    match result {
        Err(e @ DecodeError::Malformed { .. }) => e.to_string(),
        Err(e) => panic!("expected a malformed error, got {e}"),
        Ok(d) => panic!(
            "expected a malformed error, decoded {} spans {} logs",
            d.batch.span_count(),
            d.batch.log_count()
        ),
    }
}

/// Replaces the only occurrence of `from` in `bytes` with `to` (same length):
/// how the tests put bytes prost would refuse to encode (invalid UTF-8) into
/// an otherwise valid request.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = (0..=bytes.len() - from.len())
        .filter(|&i| &bytes[i..i + from.len()] == from)
        .collect();
    assert_eq!(at.len(), 1, "marker {from:?} must occur once");
    bytes[at[0]..at[0] + to.len()].copy_from_slice(to);
}

#[test]
fn empty_body_is_a_valid_empty_request() {
    for decoded in [
        decode_traces(&[], &Limits::default()).unwrap(),
        decode_logs(&[], &Limits::default()).unwrap(),
    ] {
        assert!(decoded.batch.is_empty());
        assert_eq!(
            (
                decoded.rejected_spans,
                decoded.rejected_logs,
                decoded.warnings
            ),
            (0, 0, 0)
        );
        assert_eq!(decoded.error_message(), "");
    }
}

#[test]
fn bad_ids_reject_only_their_span() {
    type Spoil = fn(&mut PbSpan);
    let cases: &[(Spoil, &str)] = &[
        (
            |s| s.trace_id = vec![1; 15],
            "span rejected: trace id must be 16 bytes, got 15",
        ),
        (
            |s| s.trace_id = vec![],
            "span rejected: trace id must be 16 bytes, got 0",
        ),
        (
            |s| s.trace_id = vec![0; 16],
            "span rejected: trace id is all zeroes, which OpenTelemetry defines as invalid",
        ),
        (
            |s| s.span_id = vec![1; 9],
            "span rejected: span id must be 8 bytes, got 9",
        ),
        (
            |s| s.span_id = vec![0; 8],
            "span rejected: span id is all zeroes, which OpenTelemetry defines as invalid",
        ),
        (
            |s| s.parent_span_id = vec![1; 4],
            "span rejected: parent span id must be 8 bytes, got 4",
        ),
    ];
    for (spoil, message) in cases {
        let mut bad = good_span("bad");
        spoil(&mut bad);
        let decoded = decode_traces(
            &traces(vec![good_span("first"), bad, good_span("last")]),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(span_names(&decoded), ["first", "last"], "{message}");
        assert_eq!(decoded.rejected_spans, 1, "{message}");
        assert_message(&decoded, message);
        assert!(
            decoded.error_message().starts_with("1 span(s) rejected; "),
            "{}",
            decoded.error_message()
        );
    }
}

#[test]
fn empty_or_zero_parent_means_root() {
    for parent in [vec![], vec![0; 8]] {
        let span = PbSpan {
            parent_span_id: parent.clone(),
            ..good_span("root")
        };
        let decoded = decode_traces(&traces(vec![span]), &Limits::default()).unwrap();
        let (_, _, span) = decoded.batch.spans().next().unwrap();
        assert!(span.is_root(), "parent {parent:?}");
    }
}

#[test]
fn a_bad_link_is_dropped_and_counted_not_the_span() {
    let good_link = PbLink {
        trace_id: vec![2; 16],
        span_id: vec![3; 8],
        ..PbLink::default()
    };
    let span = PbSpan {
        links: vec![
            PbLink {
                trace_id: vec![2; 3],
                ..good_link.clone()
            },
            good_link.clone(),
            PbLink {
                span_id: vec![0; 8],
                ..good_link.clone()
            },
        ],
        dropped_links_count: 1,
        ..good_span("linked")
    };
    let decoded = decode_traces(&traces(vec![span]), &Limits::default()).unwrap();
    let (_, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.links[0].span_id.to_hex(), "0303030303030303");
    assert_eq!(span.dropped_links_count, 3);
    assert_eq!(decoded.rejected_spans, 0);
    assert_eq!(decoded.warnings, 2);
    assert_message(&decoded, "link dropped: trace id must be 16 bytes, got 3");
    assert_message(
        &decoded,
        "link dropped: span id is all zeroes, which OpenTelemetry defines as invalid",
    );
}

#[test]
fn unknown_enum_values_are_kept_as_unspecified() {
    let span = PbSpan {
        kind: 9,
        status: Some(PbStatus {
            code: 7,
            message: "m".into(),
        }),
        ..good_span("odd")
    };
    let negative = PbSpan {
        kind: -1,
        ..good_span("negative")
    };
    let decoded = decode_traces(&traces(vec![span, negative]), &Limits::default()).unwrap();
    let spans: Vec<_> = decoded.batch.spans().map(|(_, _, s)| s).collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].kind, SpanKind::Unspecified);
    assert_eq!(spans[0].status.code, StatusCode::Unset);
    assert_eq!(spans[0].status.message, "m");
    assert_eq!(spans[1].kind, SpanKind::Unspecified);
    assert_eq!(decoded.warnings, 3);
    assert_message(
        &decoded,
        "span kind 9 is not defined by OTLP, stored as unspecified",
    );
    assert_message(
        &decoded,
        "status code 7 is not defined by OTLP, stored as unset",
    );
    assert_message(
        &decoded,
        "span kind -1 is not defined by OTLP, stored as unspecified",
    );
}

#[test]
fn severity_outside_the_enum_is_clamped_with_a_warning() {
    let records = vec![
        PbLogRecord {
            severity_number: 30,
            ..good_log("high")
        },
        PbLogRecord {
            severity_number: -2,
            ..good_log("negative")
        },
        PbLogRecord {
            severity_number: 24,
            ..good_log("fatal4")
        },
    ];
    let decoded = decode_logs(&logs(records), &Limits::default()).unwrap();
    let severities: Vec<i32> = decoded
        .batch
        .logs()
        .map(|(_, _, l)| l.severity_number)
        .collect();
    assert_eq!(severities, [0, 0, 24]);
    assert_eq!(decoded.warnings, 2);
    assert_message(
        &decoded,
        "severity number 30 is outside 0..=24, stored as 0 (unspecified)",
    );
}

#[test]
fn log_ids_are_optional_but_checked_when_present() {
    let records = vec![
        PbLogRecord {
            trace_id: vec![],
            span_id: vec![],
            ..good_log("none")
        },
        PbLogRecord {
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            ..good_log("zeroes")
        },
        PbLogRecord {
            trace_id: vec![1; 8],
            ..good_log("short trace id")
        },
        PbLogRecord {
            span_id: vec![1; 16],
            ..good_log("long span id")
        },
        good_log("both"),
    ];
    let decoded = decode_logs(&logs(records), &Limits::default()).unwrap();
    let kept: Vec<_> = decoded
        .batch
        .logs()
        .map(|(_, _, l)| (l.body.to_text(), l.trace_id.is_some(), l.span_id.is_some()))
        .collect();
    assert_eq!(
        kept,
        [
            ("none".to_string(), false, false),
            ("zeroes".to_string(), false, false),
            ("both".to_string(), true, true)
        ]
    );
    assert_eq!(decoded.rejected_logs, 2);
    assert_message(
        &decoded,
        "log record rejected: trace id must be 16 bytes, got 8",
    );
    assert_message(
        &decoded,
        "log record rejected: span id must be 8 bytes, got 16",
    );
}

#[test]
fn invalid_utf8_rejects_the_record_that_holds_it() {
    let spans = vec![
        good_span("first"),
        good_span("NAME-MARK"),
        PbSpan {
            events: vec![PbEvent {
                name: "e".into(),
                attributes: vec![kv("k", Value::StringValue("EVENT-MARK".into()))],
                ..PbEvent::default()
            }],
            ..good_span("event")
        },
        PbSpan {
            attributes: vec![kv("KEY-MARK", Value::BoolValue(true))],
            ..good_span("key")
        },
        good_span("last"),
    ];
    let mut body = traces(spans);
    patch(&mut body, b"NAME-MARK", b"NAME-\xff\xfeRK");
    patch(&mut body, b"EVENT-MARK", b"EVENT\xc3\x28ARK");
    patch(&mut body, b"KEY-MARK", b"\xedKEY-MAR");
    let decoded = decode_traces(&body, &Limits::default()).unwrap();
    assert_eq!(span_names(&decoded), ["first", "last"]);
    assert_eq!(decoded.rejected_spans, 3);
    let messages = decoded.messages().join("\n");
    assert!(
        messages.contains("span rejected: Span.name at byte "),
        "{messages}"
    );
    assert!(
        messages.contains("span rejected: AnyValue.string_value at byte "),
        "{messages}"
    );
    assert!(
        messages.contains("span rejected: KeyValue.key at byte "),
        "{messages}"
    );
    assert!(messages.contains("is not valid UTF-8"), "{messages}");

    let mut body = logs(vec![good_log("ok"), good_log("BODY-MARK")]);
    patch(&mut body, b"BODY-MARK", b"BODY\x80MARK");
    let decoded = decode_logs(&body, &Limits::default()).unwrap();
    assert_eq!(decoded.batch.log_count(), 1);
    assert_eq!(decoded.rejected_logs, 1);
}

#[test]
fn invalid_utf8_outside_a_record_fails_the_request() {
    let mut body = traces(vec![good_span("s")]);
    patch(&mut body, b"service.name", b"service\xffname");
    let message = malformed(decode_traces(&body, &Limits::default()));
    assert!(
        message.starts_with("malformed OTLP protobuf: KeyValue.key at byte "),
        "{message}"
    );
    assert!(message.ends_with("string is not valid UTF-8"), "{message}");

    let mut body = traces(vec![good_span("s")]);
    patch(&mut body, b"scope", b"sc\xffpe");
    let message = malformed(decode_traces(&body, &Limits::default()));
    assert!(
        message.contains("InstrumentationScope.name at byte"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// Deep nesting, built by hand: prost itself refuses more than 100 levels.
// ---------------------------------------------------------------------------

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    let mut out = Vec::new();
    varint(value, &mut out);
    out.len()
}

/// An `AnyValue` of `levels` nested arrays (or key-value lists) around an
/// int. Written outside-in in one pass from lengths computed inside-out, so
/// 100 000 levels take a few megabytes and milliseconds, not a quadratic copy.
fn deep_value(levels: usize, kvlist: bool) -> Vec<u8> {
    let innermost: &[u8] = &[0x18, 0x2a]; // int_value: 42
    // Per level: AnyValue { array_value | kvlist_value: Container { values: X } },
    // where X is the next AnyValue (array) or KeyValue { value: next } (kvlist).
    let mut inner_len = innermost.len() as u64;
    let mut headers = Vec::with_capacity(levels);
    for _ in 0..levels {
        let element = if kvlist {
            1 + varint_len(inner_len) as u64 + inner_len
        } else {
            inner_len
        };
        let container = 1 + varint_len(element) as u64 + element;
        headers.push((inner_len, element, container));
        inner_len = 1 + varint_len(container) as u64 + container;
    }
    let mut out = Vec::with_capacity(inner_len as usize);
    for &(inner, element, container) in headers.iter().rev() {
        out.push(if kvlist { 0x32 } else { 0x2a });
        varint(container, &mut out);
        out.push(0x0a); // values
        varint(element, &mut out);
        if kvlist {
            out.push(0x12); // KeyValue.value
            varint(inner, &mut out);
        }
    }
    out.extend_from_slice(innermost);
    assert_eq!(out.len() as u64, inner_len);
    out
}

fn len_field(field: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A KeyValue message `key` = the raw AnyValue bytes.
fn raw_attribute(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    len_field(1, key.as_bytes(), &mut out);
    len_field(2, value, &mut out);
    out
}

/// A traces request: resource attributes and two spans, the first with
/// `span_attribute` appended raw as its attribute.
fn traces_with_raw(resource_attribute: Option<&[u8]>, span_attribute: Option<&[u8]>) -> Vec<u8> {
    let mut spans = Vec::new();
    let mut first = good_span("deep").encode_to_vec();
    if let Some(attribute) = span_attribute {
        len_field(9, attribute, &mut first);
    }
    len_field(2, &first, &mut spans);
    len_field(2, &good_span("shallow").encode_to_vec(), &mut spans);
    let mut resource = Vec::new();
    if let Some(attribute) = resource_attribute {
        len_field(1, attribute, &mut resource);
    }
    let mut resource_spans = Vec::new();
    len_field(1, &resource, &mut resource_spans);
    len_field(2, &spans, &mut resource_spans);
    let mut body = Vec::new();
    len_field(1, &resource_spans, &mut body);
    body
}

#[test]
fn a_hundred_thousand_levels_of_nesting_reject_the_span_without_recursing() {
    for kvlist in [false, true] {
        let deep = raw_attribute("deep", &deep_value(100_000, kvlist));
        let decoded =
            decode_traces(&traces_with_raw(None, Some(&deep)), &Limits::default()).unwrap();
        assert_eq!(span_names(&decoded), ["shallow"], "kvlist {kvlist}");
        assert_eq!(decoded.rejected_spans, 1);
        assert_message(
            &decoded,
            "span rejected: value nested deeper than the limit of 16 levels",
        );
    }
}

#[test]
fn nesting_up_to_the_limit_is_kept_and_one_past_it_rejected() {
    let limits = Limits {
        max_value_depth: 3,
        ..Limits::default()
    };
    for levels in 0..=6 {
        let deep = raw_attribute("deep", &deep_value(levels, levels % 2 == 1));
        let decoded = decode_traces(&traces_with_raw(None, Some(&deep)), &limits).unwrap();
        if levels <= 3 {
            assert_eq!(span_names(&decoded), ["deep", "shallow"], "{levels} levels");
            let (_, _, span) = decoded.batch.spans().next().unwrap();
            assert_eq!(span.attribute("deep").map(AnyValue::depth), Some(levels));
        } else {
            assert_eq!(span_names(&decoded), ["shallow"], "{levels} levels");
            assert_message(
                &decoded,
                "span rejected: value nested deeper than the limit of 3 levels",
            );
        }
    }
}

#[test]
fn deep_nesting_in_a_resource_is_cut_and_kept_as_text() {
    let deep = raw_attribute("deep", &deep_value(100_000, false));
    let decoded = decode_traces(&traces_with_raw(Some(&deep), None), &Limits::default()).unwrap();
    assert_eq!(span_names(&decoded), ["deep", "shallow"]);
    let resource = &decoded.batch.resource_spans[0].resource;
    let text = resource
        .attribute("deep")
        .and_then(AnyValue::as_str)
        .expect("deep value turned into text");
    assert!(text.starts_with("[[[["), "{text}");
    assert_message(
        &decoded,
        "resource attribute nested deeper than the limit of 16 levels cut",
    );
}

#[test]
fn deep_nesting_in_a_log_body_rejects_the_log_record() {
    let mut record = Vec::new();
    len_field(5, &deep_value(100_000, true), &mut record);
    let mut scope_logs = Vec::new();
    len_field(2, &record, &mut scope_logs);
    len_field(2, &good_log("fine").encode_to_vec(), &mut scope_logs);
    let mut resource_logs = Vec::new();
    len_field(2, &scope_logs, &mut resource_logs);
    let mut body = Vec::new();
    len_field(1, &resource_logs, &mut body);
    let decoded = decode_logs(&body, &Limits::default()).unwrap();
    assert_eq!(decoded.batch.log_count(), 1);
    assert_eq!(decoded.rejected_logs, 1);
    assert_message(
        &decoded,
        "log record rejected: value nested deeper than the limit of 16 levels",
    );
}

// ---------------------------------------------------------------------------
// Framing errors fail the request.
// ---------------------------------------------------------------------------

#[test]
fn garbage_is_malformed() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"\xff\xff\xff",
            "ExportTraceServiceRequest key at byte 0: message ends inside a field",
        ),
        (
            b"{\"resourceSpans\":[]}",
            "ExportTraceServiceRequest field 15 at byte 0: deprecated group wire type 3",
        ),
        (
            b"\x0a",
            "ExportTraceServiceRequest.resource_spans at byte 1: message ends inside a field",
        ),
        (
            b"\x0a\x02\x12",
            "ExportTraceServiceRequest.resource_spans at byte 1: length 2 is larger than the 1 bytes left",
        ),
        (
            b"\x08\x01",
            "ExportTraceServiceRequest.resource_spans at byte 1: expected wire type length-delimited, got varint",
        ),
        (
            b"\x00",
            "ExportTraceServiceRequest key at byte 0: field number 0 is not allowed",
        ),
        (
            b"\x0a\x01\x0e",
            "ResourceSpans field 1 at byte 2: invalid wire type 6",
        ),
        (
            b"\x0a\x01\x0f",
            "ResourceSpans field 1 at byte 2: invalid wire type 7",
        ),
        (
            b"\x0a\x01\x0c",
            "ResourceSpans field 1 at byte 2: deprecated group wire type 4",
        ),
    ];
    for (body, expected) in cases {
        let message = malformed(decode_traces(body, &Limits::default()));
        assert!(
            message.contains(expected),
            "{body:02x?}: `{message}` lacks `{expected}`"
        );
    }
}

#[test]
fn errors_deep_inside_name_the_inner_message_and_field() {
    // Span.name sent as a varint.
    let mut span = good_span("x").encode_to_vec();
    span.extend_from_slice(&[0x28, 0x01]);
    let mut body = Vec::new();
    let mut scope_spans = Vec::new();
    len_field(2, &span, &mut scope_spans);
    let mut resource_spans = Vec::new();
    len_field(2, &scope_spans, &mut resource_spans);
    len_field(1, &resource_spans, &mut body);
    let message = malformed(decode_traces(&body, &Limits::default()));
    assert!(message.contains("Span.name at byte "), "{message}");
    assert!(
        message.ends_with("expected wire type length-delimited, got varint"),
        "{message}"
    );

    // A group start inside an event.
    let mut event = Vec::new();
    event.extend_from_slice(&[0x13]);
    let mut span = good_span("x").encode_to_vec();
    len_field(11, &event, &mut span);
    let mut scope_spans = Vec::new();
    len_field(2, &span, &mut scope_spans);
    let mut resource_spans = Vec::new();
    len_field(2, &scope_spans, &mut resource_spans);
    let mut body = Vec::new();
    len_field(1, &resource_spans, &mut body);
    let message = malformed(decode_traces(&body, &Limits::default()));
    assert!(message.contains("Event field 2 at byte "), "{message}");
}

#[test]
fn truncation_at_every_offset_never_panics() {
    let spans = (0..5)
        .map(|i| PbSpan {
            events: vec![PbEvent {
                name: "e".into(),
                attributes: vec![kv("k", Value::IntValue(i))],
                ..PbEvent::default()
            }],
            status: Some(PbStatus {
                code: 2,
                message: "boom".into(),
            }),
            start_time_unix_nano: 1,
            flags: 1,
            ..good_span(&format!("span-{i}"))
        })
        .collect();
    let body = traces(spans);
    let full = decode_traces(&body, &Limits::default()).unwrap();
    assert_eq!(full.batch.span_count(), 5);
    let mut partial = 0;
    for cut in 0..body.len() {
        match decode_traces(&body[..cut], &Limits::default()) {
            Ok(decoded) => {
                // Only a cut at the end of a top-level field parses, and it holds nothing extra.
                assert!(decoded.batch.span_count() <= 5, "cut at {cut}");
                partial += 1;
            }
            Err(DecodeError::Malformed { .. }) => {}
            Err(e) => panic!("cut at {cut}: unexpected error {e}"),
        }
    }
    // Only the empty prefix is a whole message: the request has one top-level field.
    assert_eq!(partial, 1);
}

#[test]
fn limits_are_applied_while_decoding() {
    let span = PbSpan {
        attributes: (0..200)
            .map(|i| kv(&format!("k{i}"), Value::IntValue(i)))
            .collect(),
        dropped_attributes_count: 5,
        events: (0..10).map(|_| PbEvent::default()).collect(),
        links: (0..10)
            .map(|_| PbLink {
                trace_id: vec![1; 16],
                span_id: vec![1; 8],
                ..PbLink::default()
            })
            .collect(),
        ..good_span("big")
    };
    let limits = Limits {
        max_attributes_per_record: 128,
        max_events_per_span: 4,
        max_links_per_span: 3,
        ..Limits::default()
    };
    let decoded = decode_traces(&traces(vec![span]), &limits).unwrap();
    let (_, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(span.attributes.len(), 128);
    assert_eq!(span.attributes[127].key, "k127");
    assert_eq!(span.dropped_attributes_count, 5 + 72);
    assert_eq!((span.events.len(), span.dropped_events_count), (4, 6));
    assert_eq!((span.links.len(), span.dropped_links_count), (3, 7));
    assert_message(
        &decoded,
        "attributes over the limit of 128 per record dropped",
    );
    assert_message(&decoded, "events over the limit of 4 per span dropped");
    assert_message(&decoded, "links over the limit of 3 per span dropped");
}

#[test]
fn long_values_are_truncated_by_the_limits() {
    let span = PbSpan {
        attributes: vec![kv("url.query", Value::StringValue("q=".repeat(100)))],
        ..good_span("long")
    };
    // 12 bytes: the resource's `service.name` key just fits.
    let limits = Limits {
        max_attribute_value_bytes: 12,
        ..Limits::default()
    };
    let decoded = decode_traces(&traces(vec![span]), &limits).unwrap();
    let (_, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(
        span.attribute("url.query").and_then(AnyValue::as_str),
        Some("q=q=q=q=q=q=")
    );
    assert_eq!(decoded.warnings, 1);
}
