//! OTLP/JSON decoding, case by case: what fails the request, what rejects
//! one record, and the variants of the mapping that must be accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracewarden_ingest::otlp::json::{decode_logs, decode_traces};
use tracewarden_ingest::{DecodeError, Decoded, Limits};
use tracewarden_model::{AnyValue, KeyValue, Span, SpanKind, StatusCode};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const SPAN: &str = "eee19b7ec3c1b174";

fn good_span() -> String {
    format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","name":"good"}}"#)
}

fn traces_body(spans: &[String]) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

fn logs_body(records: &[String]) -> String {
    format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

#[track_caller]
fn decode(body: &str) -> Decoded {
    decode_traces(body.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// Decodes one span that must be accepted.
#[track_caller]
fn accepted(span_json: &str) -> Span {
    let decoded = decode(&traces_body(&[span_json.to_string()]));
    assert_eq!(
        decoded.rejected_spans,
        0,
        "{span_json}: {:?}",
        decoded.messages()
    );
    decoded
        .batch
        .spans()
        .next()
        .map(|(_, _, s)| s.clone())
        .unwrap()
}

#[test]
fn malformed_documents_fail_the_request_with_a_position() {
    let valid = traces_body(&[good_span()]);
    let truncated = &valid[..valid.len() / 2];
    let cases: &[(&str, &str, &str)] = &[
        ("empty body", "", "EOF while parsing"),
        (
            "invalid JSON",
            "{resourceSpans: []}",
            "key must be a string",
        ),
        ("truncated JSON", truncated, "EOF while parsing"),
        (
            "array at the top level",
            "[]",
            "invalid type: sequence, expected a JSON object",
        ),
        (
            "span given as an array",
            &traces_body(&[format!(r#"["{TRACE}","{SPAN}"]"#)]),
            "expected a JSON object",
        ),
        (
            "null span",
            &traces_body(&["null".to_string()]),
            "invalid type: null, expected a JSON object",
        ),
        (
            "resource given as an array",
            r#"{"resourceSpans":[{"resource":[[]]}]}"#,
            "expected a JSON object",
        ),
        (
            "string at the top level",
            r#""resourceSpans""#,
            "invalid type: string",
        ),
        ("null at the top level", "null", "invalid type: null"),
        (
            "resourceSpans not an array",
            r#"{"resourceSpans":{}}"#,
            "invalid type: map, expected an array of JSON objects",
        ),
        (
            "scopeSpans a string",
            r#"{"resourceSpans":[{"scopeSpans":"x"}]}"#,
            "invalid type: string",
        ),
        (
            "span a number",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[5]}]}]}"#,
            "invalid type: integer",
        ),
        (
            "attributes an object",
            &traces_body(&[format!(r#"{{"traceId":"{TRACE}","attributes":{{}}}}"#)]),
            "invalid type: map",
        ),
        ("trailing characters", "{} {}", "trailing characters"),
        (
            "duplicate key",
            &traces_body(&[format!(r#"{{"traceId":"{TRACE}","trace_id":"{TRACE}"}}"#)]),
            "duplicate field",
        ),
    ];
    for (name, body, expected) in cases {
        match decode_traces(body.as_bytes(), &Limits::default()) {
            Err(DecodeError::Malformed { format, message }) => {
                assert_eq!(format, "OTLP/JSON", "{name}");
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
fn malformed_json_reports_the_line_and_column() {
    let body = "{\n  \"resourceSpans\": [\n    {\"scopeSpans\": [}\n  ]\n}";
    let err = decode_traces(body.as_bytes(), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("line 3 column 21"), "{err}");
}

#[test]
fn bad_records_are_rejected_alone() {
    let deep = {
        let mut value = r#"{"intValue":1}"#.to_string();
        for _ in 0..20 {
            value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
        }
        value
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "trace id too short",
            format!(r#"{{"traceId":"{}","spanId":"{SPAN}"}}"#, &TRACE[2..]),
            "traceId: trace id must be 32 hex digits, got 30 characters",
        ),
        (
            "span id too long",
            format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}00"}}"#),
            "spanId: span id must be 16 hex digits, got 18 characters",
        ),
        (
            "base64 trace id",
            format!(r#"{{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"{SPAN}"}}"#),
            "traceId: trace id must be 32 hex digits, got 24",
        ),
        (
            "non-hex trace id",
            format!(r#"{{"traceId":"zz8efff798038103d269b633813fc60c","spanId":"{SPAN}"}}"#),
            "traceId: trace id is not hex",
        ),
        (
            "non-hex span id",
            format!(r#"{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b17g"}}"#),
            "spanId: span id is not hex",
        ),
        (
            "zero trace id",
            format!(r#"{{"traceId":"00000000000000000000000000000000","spanId":"{SPAN}"}}"#),
            "traceId: trace id is all zeroes",
        ),
        (
            "zero span id",
            format!(r#"{{"traceId":"{TRACE}","spanId":"0000000000000000"}}"#),
            "spanId: span id is all zeroes",
        ),
        (
            "empty trace id",
            format!(r#"{{"traceId":"","spanId":"{SPAN}"}}"#),
            "got 0 characters",
        ),
        (
            "missing span id",
            format!(r#"{{"traceId":"{TRACE}"}}"#),
            "spanId is missing",
        ),
        (
            "null trace id",
            format!(r#"{{"traceId":null,"spanId":"{SPAN}"}}"#),
            "traceId is missing",
        ),
        (
            "numeric trace id",
            format!(r#"{{"traceId":7,"spanId":"{SPAN}"}}"#),
            "traceId must be a hex string, not a number",
        ),
        (
            "bad parent id length",
            format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","parentSpanId":"abc"}}"#),
            "parentSpanId: span id must be 16 hex digits",
        ),
        (
            "non-hex parent id",
            format!(
                r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","parentSpanId":"xxxxxxxxxxxxxxxx"}}"#
            ),
            "parentSpanId: span id is not hex",
        ),
        (
            "time not a number",
            format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","startTimeUnixNano":"soon"}}"#),
            "startTimeUnixNano must be an unsigned integer, not `soon`",
        ),
        (
            "negative time",
            format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","endTimeUnixNano":-1}}"#),
            "endTimeUnixNano must be an unsigned integer",
        ),
        (
            "name a number",
            format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","name":5}}"#),
            "span name must be a string, not a number",
        ),
        (
            "intValue not an integer",
            format!(
                r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"k","value":{{"intValue":"1.5"}}}}]}}"#
            ),
            "attribute `k`: intValue must be an integer",
        ),
        (
            "bytesValue not base64",
            format!(
                r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"b","value":{{"bytesValue":"%%"}}}}]}}"#
            ),
            "bytesValue is not base64",
        ),
        (
            "dropped count over u32",
            format!(
                r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","droppedAttributesCount":4294967296}}"#
            ),
            "droppedAttributesCount is out of the uint32 range",
        ),
        (
            "value nested past the limit",
            format!(
                r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"deep","value":{deep}}}]}}"#
            ),
            "value nested deeper than the limit of 16 levels",
        ),
        (
            "bad event attribute",
            format!(
                r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","events":[{{"attributes":[{{"key":"e","value":{{"boolValue":1}}}}]}}]}}"#
            ),
            "event attribute `e`: boolValue must be a boolean",
        ),
    ];
    for (name, bad, expected) in cases {
        let decoded = decode(&traces_body(&[good_span(), bad, good_span()]));
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
        assert!(
            decoded.error_message().starts_with("1 span(s) rejected; "),
            "{name}"
        );
    }
}

#[test]
fn a_batch_with_every_span_rejected_is_empty_but_not_an_error() {
    let bad = format!(r#"{{"traceId":"{TRACE}","spanId":"00"}}"#);
    let decoded = decode(&traces_body(&[bad.clone(), bad]));
    assert_eq!(decoded.rejected_spans, 2);
    assert!(decoded.batch.is_empty());
    assert!(
        decoded.batch.resource_spans.is_empty(),
        "no empty resource groups are kept"
    );
    // Same problem twice: one message, exact count.
    assert_eq!(decoded.messages().len(), 1);
}

#[test]
fn null_means_the_default_for_any_field() {
    let span = accepted(&format!(
        r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","parentSpanId":null,"name":null,"kind":null,
           "traceState":null,"flags":null,"startTimeUnixNano":null,"endTimeUnixNano":null,
           "attributes":null,"droppedAttributesCount":null,"events":null,"links":null,"status":null}}"#
    ));
    assert_eq!(
        (span.name.as_str(), span.kind, span.start_time_unix_nano),
        ("", SpanKind::Unspecified, 0)
    );
    assert!(span.parent_span_id.is_none() && span.attributes.is_empty() && span.events.is_empty());

    let span = accepted(&format!(
        r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","status":{{"code":null,"message":null}},
           "attributes":[{{"key":"k","value":null}},{{"key":"s","value":{{"stringValue":null}}}}],
           "events":[{{"name":null,"timeUnixNano":null,"attributes":null}}],
           "links":[{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":null,"traceState":null}}]}}"#
    ));
    assert_eq!(span.status.code, StatusCode::Unset);
    assert_eq!(
        span.attributes,
        vec![
            KeyValue::new("k", AnyValue::Empty),
            KeyValue::new("s", AnyValue::Empty)
        ]
    );
    assert_eq!(span.events[0].name, "");
    assert_eq!(span.links[0].span_id.to_hex(), SPAN);

    for body in [
        r#"{"resourceSpans":null}"#,
        r#"{"resourceSpans":[{"resource":null,"scopeSpans":null,"schemaUrl":null}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"scope":null,"spans":null}]}]}"#,
    ] {
        assert!(decode(body).batch.is_empty(), "{body}");
    }

    let decoded = decode_traces(
        format!(
            r#"{{"resourceSpans":[{{"resource":null,"scopeSpans":[{{"scope":null,"spans":[{}]}}]}}]}}"#,
            good_span()
        )
        .as_bytes(),
        &Limits::default(),
    )
    .unwrap();
    let (resource, scope, _) = decoded.batch.spans().next().unwrap();
    assert!(resource.attributes.is_empty() && scope.name.is_empty());
}

#[test]
fn snake_case_keys_are_read_like_camel_case() {
    let body = format!(
        r#"{{"resource_spans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"string_value":"snake"}}}}],
             "dropped_attributes_count":2}},"schema_url":"https://example.com/s",
           "scope_spans":[{{"scope":{{"name":"lib","dropped_attributes_count":1}},"schema_url":"u",
             "spans":[{{"trace_id":"{TRACE}","span_id":"{SPAN}","parent_span_id":"eee19b7ec3c1b173",
               "trace_state":"k=v","start_time_unix_nano":"10","end_time_unix_nano":20,
               "attributes":[{{"key":"n","value":{{"int_value":"7"}}}},{{"key":"d","value":{{"double_value":0.5}}}},
                 {{"key":"a","value":{{"array_value":{{"values":[{{"bool_value":true}}]}}}}}},
                 {{"key":"m","value":{{"kvlist_value":{{"values":[{{"key":"x","value":{{"bytes_value":"AQI="}}}}]}}}}}}],
               "dropped_attributes_count":3,"dropped_events_count":4,"dropped_links_count":5,
               "events":[{{"time_unix_nano":"15","name":"e","dropped_attributes_count":1}}],
               "links":[{{"trace_id":"{TRACE}","span_id":"eee19b7ec3c1b173","trace_state":"a=b"}}]}}]}}]}}]}}"#
    );
    let decoded = decode(&body);
    assert_eq!(
        (decoded.rejected_spans, decoded.warnings),
        (0, 0),
        "{:?}",
        decoded.messages()
    );
    let (resource, scope, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), "snake");
    assert_eq!(resource.dropped_attributes_count, 2);
    assert_eq!(resource.schema_url, "https://example.com/s");
    assert_eq!(
        (
            scope.name.as_str(),
            scope.dropped_attributes_count,
            scope.schema_url.as_str()
        ),
        ("lib", 1, "u")
    );
    assert_eq!(span.trace_id.to_hex(), TRACE);
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "eee19b7ec3c1b173");
    assert_eq!(span.trace_state, "k=v");
    assert_eq!(
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (10, 20)
    );
    assert_eq!(
        span.attributes,
        vec![
            KeyValue::new("n", AnyValue::Int(7)),
            KeyValue::new("d", AnyValue::Double(0.5)),
            KeyValue::new("a", AnyValue::Array(vec![AnyValue::Bool(true)])),
            KeyValue::new(
                "m",
                AnyValue::KvList(vec![KeyValue::new("x", AnyValue::Bytes(vec![1, 2]))])
            ),
        ]
    );
    assert_eq!(
        (
            span.dropped_attributes_count,
            span.dropped_events_count,
            span.dropped_links_count
        ),
        (3, 4, 5)
    );
    assert_eq!(
        (span.events[0].time_unix_nano, span.events[0].name.as_str()),
        (15, "e")
    );
    assert_eq!(span.links[0].trace_state, "a=b");

    let logs = format!(
        r#"{{"resource_logs":[{{"scope_logs":[{{"log_records":[{{"time_unix_nano":"5","observed_time_unix_nano":6,
           "severity_number":17,"severity_text":"ERROR","trace_id":"{TRACE}","span_id":"{SPAN}","event_name":"x",
           "body":{{"string_value":"hi"}}}}]}}]}}]}}"#
    );
    let decoded = decode_logs(logs.as_bytes(), &Limits::default()).unwrap();
    let (_, _, log) = decoded.batch.logs().next().unwrap();
    assert_eq!(
        (
            log.time_unix_nano,
            log.observed_time_unix_nano,
            log.severity_number
        ),
        (5, 6, 17)
    );
    assert_eq!(
        (log.severity_text.as_str(), log.event_name.as_str()),
        ("ERROR", "x")
    );
    assert_eq!(log.span_id.unwrap().to_hex(), SPAN);
    assert_eq!(log.body, AnyValue::from("hi"));
}

#[test]
fn int64_fields_are_read_as_strings_or_numbers() {
    let cases = [
        (r#""1544712660000000000""#, 1_544_712_660_000_000_000u64),
        ("1544712660000000000", 1_544_712_660_000_000_000),
        (r#""18446744073709551615""#, u64::MAX),
        ("1.5e9", 1_500_000_000),
        ("0", 0),
    ];
    for (json, expected) in cases {
        let span = accepted(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","startTimeUnixNano":{json}}}"#
        ));
        assert_eq!(span.start_time_unix_nano, expected, "{json}");
    }
    let ints = [
        (r#""10""#, 10i64),
        ("10", 10),
        (r#""-10""#, -10),
        ("-9223372036854775808", i64::MIN),
    ];
    for (json, expected) in ints {
        let span = accepted(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"i","value":{{"intValue":{json}}}}}]}}"#
        ));
        assert_eq!(span.attributes[0].value, AnyValue::Int(expected), "{json}");
    }
}

#[test]
fn doubles_accept_nan_and_infinities() {
    type Check = fn(f64) -> bool;
    let cases: [(&str, Check); 6] = [
        (r#""NaN""#, f64::is_nan),
        (r#""Infinity""#, |d| d == f64::INFINITY),
        (r#""-Infinity""#, |d| d == f64::NEG_INFINITY),
        (r#""2.5""#, |d| d == 2.5),
        ("2.5", |d| d == 2.5),
        ("3", |d| d == 3.0),
    ];
    for (json, check) in cases {
        let span = accepted(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"d","value":{{"doubleValue":{json}}}}}]}}"#
        ));
        let AnyValue::Double(d) = span.attributes[0].value else {
            panic!("{json}: {:?}", span.attributes)
        };
        assert!(check(d), "{json}: {d}");
    }
}

#[test]
fn enums_are_read_as_numbers_or_names() {
    let cases = [
        (
            r#""SPAN_KIND_CLIENT""#,
            r#""STATUS_CODE_ERROR""#,
            SpanKind::Client,
            StatusCode::Error,
        ),
        ("2", "1", SpanKind::Server, StatusCode::Ok),
        (
            r#""SPAN_KIND_CONSUMER""#,
            "0",
            SpanKind::Consumer,
            StatusCode::Unset,
        ),
        (r#""4""#, r#""2""#, SpanKind::Producer, StatusCode::Error),
    ];
    for (kind, code, expected_kind, expected_code) in cases {
        let span = accepted(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","kind":{kind},"status":{{"code":{code},"message":"m"}}}}"#
        ));
        assert_eq!(
            (span.kind, span.status.code),
            (expected_kind, expected_code),
            "{kind} {code}"
        );
        assert_eq!(span.status.message, "m");
    }
    let logs = logs_body(&[
        r#"{"severityNumber":"SEVERITY_NUMBER_WARN"}"#.into(),
        r#"{"severityNumber":"21"}"#.into(),
    ]);
    let decoded = decode_logs(logs.as_bytes(), &Limits::default()).unwrap();
    let severities: Vec<i32> = decoded
        .batch
        .logs()
        .map(|(_, _, l)| l.severity_number)
        .collect();
    assert_eq!(severities, [13, 21]);
}

#[test]
fn unknown_enum_values_keep_the_record_with_a_warning() {
    let cases = [
        ("9", "0", "span kind 9 is not an OTLP SpanKind"),
        (
            r#""SPAN_KIND_SIDEWAYS""#,
            "0",
            "span kind `SPAN_KIND_SIDEWAYS` is not an OTLP SpanKind",
        ),
        ("-1", "0", "span kind -1"),
        ("true", "0", "span kind a boolean"),
        ("1", "7", "status code 7 is not an OTLP StatusCode"),
        (
            "1",
            r#""STATUS_CODE_MAYBE""#,
            "status code `STATUS_CODE_MAYBE`",
        ),
    ];
    for (kind, code, expected) in cases {
        let decoded = decode(&traces_body(&[format!(
            r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","kind":{kind},"status":{{"code":{code}}}}}"#
        )]));
        assert_eq!(
            (decoded.rejected_spans, decoded.warnings),
            (0, 1),
            "{kind} {code}"
        );
        assert!(
            decoded.messages()[0].contains(expected),
            "{:?}",
            decoded.messages()
        );
        let (_, _, span) = decoded.batch.spans().next().unwrap();
        assert!(
            matches!(span.kind, SpanKind::Unspecified | SpanKind::Internal),
            "{kind}"
        );
        assert!(matches!(span.status.code, StatusCode::Unset), "{code}");
    }
    let logs = logs_body(&[r#"{"severityNumber":99,"body":{"stringValue":"kept"}}"#.into()]);
    let decoded = decode_logs(logs.as_bytes(), &Limits::default()).unwrap();
    let (_, _, log) = decoded.batch.logs().next().unwrap();
    assert_eq!(
        (log.severity_number, &log.body),
        (0, &AnyValue::from("kept"))
    );
    assert_eq!(
        decoded.messages(),
        ["severity number 99 is not an OTLP SeverityNumber; read as unspecified"]
    );
}

#[test]
fn hex_ids_are_read_in_either_case() {
    let span = accepted(&format!(
        r#"{{"traceId":"{}","spanId":"EEE19B7EC3C1B174","parentSpanId":"eEe19b7ec3c1b173"}}"#,
        TRACE.to_uppercase()
    ));
    assert_eq!(span.trace_id.to_hex(), TRACE);
    assert_eq!(span.span_id.to_hex(), SPAN);
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "eee19b7ec3c1b173");
}

#[test]
fn unknown_keys_are_skipped_at_every_level() {
    let body = format!(
        r#"{{"futureField":{{"deep":[1,{{"x":null}}]}},"resourceSpans":[{{"entityRefs":[{{"type":"host"}}],
           "resource":{{"attributes":[],"newThing":1}},"scopeSpans":[{{"scope":{{"name":"s","extra":[]}},
           "spans":[{{"traceId":"{TRACE}","spanId":"{SPAN}","name":"n","unknown":"?",
             "status":{{"code":2,"deprecatedCode":1}},"attributes":[{{"key":"k","value":{{"stringValue":"v","x":1}}}}]}}]}}]}}]}}"#
    );
    let decoded = decode(&body);
    let (_, scope, span) = decoded.batch.spans().next().unwrap();
    assert_eq!((scope.name.as_str(), span.name.as_str()), ("s", "n"));
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.attributes, vec![KeyValue::new("k", "v")]);
}

#[test]
fn empty_requests_decode_to_empty_batches() {
    for body in [
        "{}",
        r#"{"resourceSpans":[]}"#,
        r#"{"resourceSpans":[{}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{}]}]}"#,
    ] {
        let decoded = decode(body);
        assert!(decoded.batch.is_empty(), "{body}");
        assert_eq!((decoded.rejected_spans, decoded.warnings), (0, 0), "{body}");
    }
}

#[test]
fn log_ids_may_be_empty_but_not_bad() {
    let records = [
        r#"{"traceId":"","spanId":"","body":{"stringValue":"no trace"}}"#.to_string(),
        format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","body":{{"stringValue":"in trace"}}}}"#),
        r#"{"traceId":"00000000000000000000000000000000","body":{"stringValue":"zero"}}"#
            .to_string(),
        r#"{"traceId":"abc","body":{"stringValue":"bad"}}"#.to_string(),
        format!(r#"{{"traceId":"{TRACE}","spanId":"nothex!!nothex!!"}}"#),
        r#"{"body":{"intValue":"NaN"}}"#.to_string(),
    ];
    let decoded = decode_logs(logs_body(&records).as_bytes(), &Limits::default()).unwrap();
    assert_eq!(decoded.rejected_logs, 3, "{:?}", decoded.messages());
    assert_eq!(decoded.rejected_spans, 0);
    let kept: Vec<(Option<String>, AnyValue)> = decoded
        .batch
        .logs()
        .map(|(_, _, l)| (l.trace_id.map(|t| t.to_hex()), l.body.clone()))
        .collect();
    assert_eq!(
        kept,
        [
            (None, AnyValue::from("no trace")),
            (Some(TRACE.to_string()), AnyValue::from("in trace")),
            (None, AnyValue::from("zero")),
        ]
    );
    let messages = decoded.messages().join("\n");
    assert!(
        messages.contains("traceId: trace id must be 32 hex digits, got 3 characters"),
        "{messages}"
    );
    assert!(
        messages.contains("spanId: span id is not hex"),
        "{messages}"
    );
    assert!(
        messages.contains("log body: intValue must be an integer, not `NaN`"),
        "{messages}"
    );
}

#[test]
fn nesting_past_serde_json_recursion_limit_is_malformed_not_a_crash() {
    let mut value = r#"{"intValue":1}"#.to_string();
    for _ in 0..200 {
        value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
    }
    let body = traces_body(&[format!(
        r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"deep","value":{value}}}]}}"#
    )]);
    let err = decode_traces(body.as_bytes(), &Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );

    // Unknown keys are skipped by serde_json without recursion, so even
    // very deep ones cannot overflow the stack; they are simply ignored.
    let body = format!(r#"{{"x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    assert!(decode(&body).batch.is_empty());
    // A deep value where a scalar is expected is skipped the same way after
    // its first level, and rejects its span.
    let body = traces_body(&[format!(
        r#"{{"traceId":{}{},"spanId":"{SPAN}"}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    )]);
    let decoded = decode(&body);
    assert_eq!(
        decoded.messages(),
        ["traceId must be a hex string, not an array"]
    );
}

#[test]
fn just_under_the_recursion_limit_decodes_and_limits_reject_the_span() {
    // 38 array levels: 3 JSON levels each, plus the 9 levels around a
    // span's attribute, stays under serde_json's 128.
    let mut value = r#"{"intValue":1}"#.to_string();
    for _ in 0..38 {
        value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
    }
    let body = traces_body(&[
        good_span(),
        format!(
            r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"deep","value":{value}}}]}}"#
        ),
    ]);
    let decoded = decode(&body);
    assert_eq!(decoded.rejected_spans, 1);
    assert_eq!(decoded.batch.span_count(), 1);

    let generous = Limits {
        max_value_depth: 64,
        ..Limits::default()
    };
    let decoded = decode_traces(body.as_bytes(), &generous).unwrap();
    let (_, _, deep) = decoded.batch.spans().nth(1).unwrap();
    assert_eq!(deep.attributes[0].value.depth(), 38);
}

#[test]
fn limits_apply_to_resources_scopes_and_logs() {
    let limits = Limits {
        max_attribute_value_bytes: 12,
        max_attributes_per_record: 1,
        ..Limits::default()
    };
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout-service"}}}},
             {{"key":"extra","value":{{"intValue":1}}}}]}},
           "scopeSpans":[{{"scope":{{"attributes":[{{"key":"a","value":{{"stringValue":"abcdefghijklmnop"}}}}]}},"spans":[{}]}}]}}]}}"#,
        good_span()
    );
    let decoded = decode_traces(body.as_bytes(), &limits).unwrap();
    let (resource, scope, _) = decoded.batch.spans().next().unwrap();
    assert_eq!(
        resource.attributes,
        vec![KeyValue::new("service.name", "checkout-ser")]
    );
    assert_eq!(resource.dropped_attributes_count, 1);
    assert_eq!(scope.attributes, vec![KeyValue::new("a", "abcdefghijkl")]);

    let logs = logs_body(&[r#"{"body":{"stringValue":"a long body, longer than 12"}}"#.into()]);
    let decoded = decode_logs(logs.as_bytes(), &limits).unwrap();
    assert_eq!(
        decoded.batch.logs().next().unwrap().2.body,
        AnyValue::from("a long body,")
    );
    assert_eq!(decoded.warnings, 1);
}

#[test]
fn strings_with_escapes_decode() {
    let span = accepted(&format!(
        r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","name":"GET /a\"b\u00e9\n","attributes":[{{"key":"k\\1","value":{{"stringValue":"\ud83d\ude00"}}}}]}}"#
    ));
    assert_eq!(span.name, "GET /a\"bé\n");
    assert_eq!(span.attributes, vec![KeyValue::new("k\\1", "😀")]);
}

#[test]
fn a_bad_link_is_dropped_and_its_span_kept() {
    let bad_link = format!(
        r#"{{"traceId":"{TRACE}","spanId":"{SPAN}","name":"good","links":[{{"traceId":"ab","spanId":"{SPAN}"}}]}}"#
    );
    let decoded = decode(&traces_body(&[good_span(), bad_link, good_span()]));
    assert_eq!(decoded.rejected_spans, 0, "{:?}", decoded.messages());
    assert_eq!(decoded.batch.span_count(), 3);
    assert!(
        decoded.messages()[0].contains("link traceId: trace id must be 32 hex digits"),
        "{:?}",
        decoded.messages()
    );
    let dropped: u32 = decoded
        .batch
        .spans()
        .map(|(_, _, s)| s.dropped_links_count)
        .sum();
    assert_eq!(dropped, 1);
}
