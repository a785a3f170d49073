//! Every OTLP/JSON fixture (the opentelemetry-proto examples and Jaeger's
//! storage-integration traces, see fixtures/SOURCES.txt) decodes, and what
//! it decodes to matches the document read independently with
//! `serde_json::Value`, record by record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tracewarden_ingest::Limits;
use tracewarden_ingest::otlp::json::{decode_logs, decode_traces};
use tracewarden_model::{AnyValue, KeyValue, LogRecord, Span, SpanKind, StatusCode};

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(dir: &str, file: &str) -> Vec<u8> {
    let path = fixture_dir(dir).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// `doc[outer][*][middle][*][inner][*]`, flattened: the records of a request.
fn records<'a>(doc: &'a Value, outer: &str, middle: &str, inner: &str) -> Vec<&'a Value> {
    let list = |v: &'a Value, key: &str| v.get(key).and_then(Value::as_array).into_iter().flatten();
    list(doc, outer)
        .flat_map(|r| list(r, middle))
        .flat_map(|s| list(s, inner))
        .collect()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn u64_field(v: &Value, key: &str) -> u64 {
    match v.get(key) {
        Some(Value::String(s)) => s.parse().unwrap(),
        Some(Value::Number(n)) => n.as_u64().unwrap(),
        _ => 0,
    }
}

fn len_field(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

/// The expected value of an OTLP/JSON `AnyValue`, read independently.
fn expected_value(v: &Value) -> AnyValue {
    if let Some(s) = v.get("stringValue") {
        return AnyValue::from(s.as_str().unwrap());
    }
    if let Some(b) = v.get("boolValue") {
        return AnyValue::Bool(b.as_bool().unwrap());
    }
    if let Some(i) = v.get("intValue") {
        return AnyValue::Int(match i {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_i64().unwrap(),
        });
    }
    if let Some(d) = v.get("doubleValue") {
        return AnyValue::Double(d.as_f64().unwrap());
    }
    if let Some(b) = v.get("bytesValue") {
        // The fixtures hold only this one blob: 12345 as a big-endian u32.
        assert_eq!(b.as_str(), Some("AAAwOQ=="));
        return AnyValue::Bytes(12345u32.to_be_bytes().to_vec());
    }
    if let Some(a) = v.get("arrayValue") {
        return AnyValue::Array(
            a["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(expected_value)
                .collect(),
        );
    }
    if let Some(kv) = v.get("kvlistValue") {
        return AnyValue::KvList(expected_attributes(&kv["values"]));
    }
    AnyValue::Empty
}

fn expected_attributes(list: &Value) -> Vec<KeyValue> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| KeyValue::new(str_field(kv, "key"), expected_value(&kv["value"])))
        .collect()
}

#[track_caller]
fn assert_span_matches(span: &Span, expected: &Value, file: &str) {
    let context = format!("{file}: span {}", str_field(expected, "spanId"));
    assert_eq!(
        span.trace_id.to_hex(),
        str_field(expected, "traceId").to_lowercase(),
        "{context}"
    );
    assert_eq!(
        span.span_id.to_hex(),
        str_field(expected, "spanId").to_lowercase(),
        "{context}"
    );
    let parent = str_field(expected, "parentSpanId").to_lowercase();
    assert_eq!(
        span.parent_span_id
            .map(|id| id.to_hex())
            .unwrap_or_default(),
        parent,
        "{context}"
    );
    assert_eq!(span.name, str_field(expected, "name"), "{context}");
    assert_eq!(span.kind as u64, u64_field(expected, "kind"), "{context}");
    assert_eq!(
        span.start_time_unix_nano,
        u64_field(expected, "startTimeUnixNano"),
        "{context}"
    );
    assert_eq!(
        span.end_time_unix_nano,
        u64_field(expected, "endTimeUnixNano"),
        "{context}"
    );
    assert_eq!(
        span.attributes,
        expected_attributes(&expected["attributes"]),
        "{context}"
    );
    assert_eq!(
        span.events.len(),
        len_field(expected, "events"),
        "{context}"
    );
    for (event, expected) in span
        .events
        .iter()
        .zip(expected["events"].as_array().into_iter().flatten())
    {
        assert_eq!(
            event.time_unix_nano,
            u64_field(expected, "timeUnixNano"),
            "{context}"
        );
        assert_eq!(
            event.attributes,
            expected_attributes(&expected["attributes"]),
            "{context}"
        );
    }
    assert_eq!(span.links.len(), len_field(expected, "links"), "{context}");
    for (link, expected) in span
        .links
        .iter()
        .zip(expected["links"].as_array().into_iter().flatten())
    {
        assert_eq!(
            link.trace_id.to_hex(),
            str_field(expected, "traceId").to_lowercase(),
            "{context}"
        );
        assert_eq!(
            link.span_id.to_hex(),
            str_field(expected, "spanId").to_lowercase(),
            "{context}"
        );
        assert_eq!(
            link.attributes,
            expected_attributes(&expected["attributes"]),
            "{context}"
        );
    }
    assert_eq!(
        span.status.code as u64,
        expected.get("status").map_or(0, |s| u64_field(s, "code")),
        "{context}"
    );
}

#[track_caller]
fn assert_log_matches(log: &LogRecord, expected: &Value, file: &str) {
    assert_eq!(
        log.time_unix_nano,
        u64_field(expected, "timeUnixNano"),
        "{file}"
    );
    assert_eq!(
        log.observed_time_unix_nano,
        u64_field(expected, "observedTimeUnixNano"),
        "{file}"
    );
    assert_eq!(
        log.severity_number as u64,
        u64_field(expected, "severityNumber"),
        "{file}"
    );
    assert_eq!(
        log.severity_text,
        str_field(expected, "severityText"),
        "{file}"
    );
    assert_eq!(log.event_name, str_field(expected, "eventName"), "{file}");
    assert_eq!(
        log.trace_id.map(|id| id.to_hex()).unwrap_or_default(),
        str_field(expected, "traceId").to_lowercase()
    );
    assert_eq!(
        log.span_id.map(|id| id.to_hex()).unwrap_or_default(),
        str_field(expected, "spanId").to_lowercase()
    );
    assert_eq!(
        log.body,
        expected.get("body").map_or(AnyValue::Empty, expected_value),
        "{file}"
    );
    assert_eq!(
        log.attributes,
        expected_attributes(&expected["attributes"]),
        "{file}"
    );
}

/// Decodes every trace fixture of `dir` and compares it with the document.
/// Returns how many files held spans.
fn check_trace_fixtures(dir: &str) -> usize {
    let mut with_spans = 0;
    for path in json_files(dir) {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let expected = records(&doc, "resourceSpans", "scopeSpans", "spans");
        if expected.is_empty() {
            continue;
        }
        with_spans += 1;
        let decoded =
            decode_traces(&body, &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            decoded.rejected_spans,
            0,
            "{file}: {:?}",
            decoded.messages()
        );
        assert_eq!(decoded.warnings, 0, "{file}: {:?}", decoded.messages());
        assert_eq!(decoded.batch.span_count(), expected.len(), "{file}");
        assert_eq!(
            decoded.batch.resource_spans.len(),
            len_field(&doc, "resourceSpans"),
            "{file}"
        );
        for ((resource, _, span), expected) in decoded.batch.spans().zip(&expected) {
            assert_span_matches(span, expected, &file);
            assert!(
                !resource.service_name().is_empty(),
                "{file}: every fixture names its service"
            );
        }
        for (rs, expected) in decoded
            .batch
            .resource_spans
            .iter()
            .zip(doc["resourceSpans"].as_array().unwrap())
        {
            assert_eq!(
                rs.resource.attributes,
                expected_attributes(&expected["resource"]["attributes"]),
                "{file}"
            );
            assert_eq!(
                rs.resource.schema_url,
                str_field(expected, "schemaUrl"),
                "{file}"
            );
            for (ss, expected) in rs
                .scope_spans
                .iter()
                .zip(expected["scopeSpans"].as_array().unwrap())
            {
                assert_eq!(
                    ss.scope.name,
                    str_field(&expected["scope"], "name"),
                    "{file}"
                );
                assert_eq!(
                    ss.scope.version,
                    str_field(&expected["scope"], "version"),
                    "{file}"
                );
                assert_eq!(
                    ss.scope.attributes,
                    expected_attributes(&expected["scope"]["attributes"]),
                    "{file}"
                );
            }
        }
        // A traces body holds no logs.
        assert_eq!(
            decode_logs(&body, &Limits::default())
                .unwrap()
                .batch
                .log_count(),
            0,
            "{file}"
        );
    }
    with_spans
}

#[test]
fn every_jaeger_fixture_decodes_as_the_document_says() {
    assert_eq!(
        check_trace_fixtures("jaeger-otlp-json"),
        json_files("jaeger-otlp-json").len()
    );
}

#[test]
fn every_opentelemetry_proto_example_decodes_as_the_document_says() {
    // trace.json holds spans; logs.json and events.json hold log records.
    assert_eq!(check_trace_fixtures("otlp-json"), 1);
    let mut logs_files = 0;
    for path in json_files("otlp-json") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let expected = records(&doc, "resourceLogs", "scopeLogs", "logRecords");
        if expected.is_empty() {
            continue;
        }
        logs_files += 1;
        let decoded =
            decode_logs(&body, &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            (decoded.rejected_logs, decoded.warnings),
            (0, 0),
            "{file}: {:?}",
            decoded.messages()
        );
        assert_eq!(decoded.batch.log_count(), expected.len(), "{file}");
        for ((_, _, log), expected) in decoded.batch.logs().zip(&expected) {
            assert_log_matches(log, expected, &file);
        }
    }
    assert_eq!(logs_files, 2);
}

#[test]
fn canonical_trace_example_spot_checks() {
    let decoded = decode_traces(&read("otlp-json", "trace.json"), &Limits::default()).unwrap();
    let (resource, scope, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), "my.service");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("my.library", "1.0.0")
    );
    assert_eq!(
        scope.attributes,
        vec![KeyValue::new("my.scope.attribute", "some scope attribute")]
    );
    // Upper-case hex in the file, lower-case in the model.
    assert_eq!(span.trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
    assert_eq!(span.span_id.to_hex(), "eee19b7ec3c1b174");
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "eee19b7ec3c1b173");
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.duration_nanos(), 1_000_000_000);
    assert_eq!(
        span.attribute("my.span.attr"),
        Some(&AnyValue::from("some value"))
    );
    assert_eq!(span.status.code, StatusCode::Unset);
}

#[test]
fn canonical_logs_example_spot_checks() {
    let decoded = decode_logs(&read("otlp-json", "logs.json"), &Limits::default()).unwrap();
    let (resource, _, log) = decoded.batch.logs().next().unwrap();
    assert_eq!(resource.service_name(), "my.service");
    assert_eq!(log.severity_number, 10);
    assert_eq!(log.severity_text, "Information");
    assert_eq!(log.body, AnyValue::from("Example log record"));
    assert_eq!(
        log.trace_id.unwrap().to_hex(),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(log.attribute("int.attribute"), Some(&AnyValue::Int(10)));
    assert_eq!(
        log.attribute("double.attribute"),
        Some(&AnyValue::Double(637.704))
    );
    assert_eq!(
        log.attribute("boolean.attribute"),
        Some(&AnyValue::Bool(true))
    );
    assert_eq!(
        log.attribute("array.attribute"),
        Some(&AnyValue::Array(vec![
            AnyValue::from("many"),
            AnyValue::from("values")
        ]))
    );
    assert_eq!(
        log.attribute("map.attribute"),
        Some(&AnyValue::KvList(vec![KeyValue::new(
            "some.map.key",
            "some value"
        )]))
    );

    let decoded = decode_logs(&read("otlp-json", "events.json"), &Limits::default()).unwrap();
    let (_, _, event) = decoded.batch.logs().next().unwrap();
    assert_eq!(event.event_name, "browser.page_view");
    assert_eq!(event.trace_id, None);
    let AnyValue::KvList(body) = &event.body else {
        panic!("body is {:?}", event.body)
    };
    assert_eq!(body[0], KeyValue::new("type", AnyValue::Int(0)));
    assert_eq!(
        body[3],
        KeyValue::new("title", "Free Online GUID Generator")
    );
}

#[test]
fn jaeger_links_scope_attributes_and_kinds_spot_checks() {
    let decoded = decode_traces(
        &read("jaeger-otlp-json", "link_attributes_trace.json"),
        &Limits::default(),
    )
    .unwrap();
    let (_, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(span.links.len(), 3);
    let link = &span.links[0];
    assert_eq!(link.trace_id.to_hex(), "000000000000000000000000000000ff");
    assert_eq!(link.span_id.to_hex(), "00000000000000ff");
    assert_eq!(
        link.attributes[0],
        KeyValue::new("opentracing.ref_type", "child_of")
    );
    assert_eq!(
        link.attributes[2],
        KeyValue::new("sameplacelinkattribute2", AnyValue::Int(123))
    );
    assert_eq!(
        link.attributes[4],
        KeyValue::new("sameplacelinkattribute3", AnyValue::Double(72.5))
    );
    assert_eq!(
        link.attributes[5],
        KeyValue::new("linkblob", AnyValue::Bytes(vec![0, 0, 0x30, 0x39]))
    );
    assert_eq!(
        span.links[2].attributes,
        vec![KeyValue::new("opentracing.ref_type", "follows_from")]
    );
    assert_eq!(span.duration_nanos(), 2_000);

    let decoded = decode_traces(
        &read("jaeger-otlp-json", "scope_attributes_trace.json"),
        &Limits::default(),
    )
    .unwrap();
    let (resource, scope, _) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), "query24-service");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("testing-library", "1.1.1")
    );
    assert_eq!(scope.attributes.len(), 5);
    assert_eq!(
        scope.attributes[4],
        KeyValue::new("scopeblob", AnyValue::Bytes(vec![0, 0, 0x30, 0x39]))
    );

    let decoded = decode_traces(
        &read("jaeger-otlp-json", "example_trace.json"),
        &Limits::default(),
    )
    .unwrap();
    let services: Vec<&str> = decoded
        .batch
        .resource_spans
        .iter()
        .map(|rs| rs.resource.service_name())
        .collect();
    assert_eq!(
        services,
        [
            "example-service-2",
            "example-service-3",
            "example-service-1"
        ]
    );
    let kinds: Vec<(String, SpanKind)> = decoded
        .batch
        .spans()
        .map(|(_, _, s)| (s.span_id.to_hex(), s.kind))
        .collect();
    assert_eq!(kinds[3], ("0000000000000006".to_string(), SpanKind::Server));
    assert_eq!(kinds[4], ("0000000000000007".to_string(), SpanKind::Client));
    assert!(decoded.batch.spans().all(|(_, _, s)| s.events.len() == 2));

    // telemetrygen output: legacy attribute names arrive untouched (the
    // pipeline normalises them, not the decoder).
    let decoded = decode_traces(
        &read("jaeger-otlp-json", "otlp2jaeger-in.json"),
        &Limits::default(),
    )
    .unwrap();
    let (resource, scope, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(
        resource.schema_url,
        "https://opentelemetry.io/schemas/1.4.0"
    );
    assert_eq!(scope.name, "telemetrygen");
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "909541b92cf05311");
    assert_eq!(
        span.attribute("net.peer.ip"),
        Some(&AnyValue::from("1.2.3.4"))
    );
    assert_eq!(
        span.attribute("peer.service"),
        Some(&AnyValue::from("telemetrygen-client"))
    );
    assert_eq!(span.duration_nanos(), 123_000);
    // The file holds the same span twice; both are kept (deduplication is not the decoder's job).
    assert_eq!(decoded.batch.span_count(), 2);
}

#[test]
fn jaeger_event_attributes_spot_check() {
    let decoded = decode_traces(
        &read("jaeger-otlp-json", "log_tags_trace.json"),
        &Limits::default(),
    )
    .unwrap();
    let (_, _, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(span.events[0].time_unix_nano, 1_485_449_191_639_875_000);
    assert_eq!(
        span.events[0].attributes[1],
        KeyValue::new("sameplacetag2", AnyValue::Int(123))
    );
    assert_eq!(
        span.events[0].attributes[2],
        KeyValue::new("sameplacetag4", AnyValue::Bool(true))
    );
    assert!(span.events[1].attributes.is_empty());
}
