//! A segment gives back exactly what was written: every field of spans,
//! events, links, log records (bodies of every value kind), resources and
//! scopes, in the documented order; resources and scopes are shared again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod segment_support;

use std::collections::HashSet;
use std::sync::Arc;

use segment_support::*;
use tracewarden_model::{
    AnyValue, Event, KeyValue, Link, LogRecord, Resource, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};
use tracewarden_store::segment::{logs_file_name, resources_file_name, spans_file_name};
use tracewarden_store::{
    LogEntry, Segment, SegmentWriteOptions, SpanRecord, StoreError, write_segment,
};

fn options(row_group_rows: usize) -> SegmentWriteOptions {
    SegmentWriteOptions {
        row_group_rows,
        ..SegmentWriteOptions::default()
    }
}

/// Every value kind, nested.
fn every_value() -> Vec<KeyValue> {
    vec![
        KeyValue::new("empty", AnyValue::Empty),
        KeyValue::new("str", "text with ünïcode and \"quotes\"\n"),
        KeyValue::new("bool", true),
        KeyValue::new("int", AnyValue::Int(-42)),
        KeyValue::new("double", AnyValue::Double(0.1)),
        KeyValue::new("bytes", AnyValue::Bytes(vec![0, 1, 254, 255])),
        KeyValue::new(
            "array",
            AnyValue::Array(vec![
                AnyValue::Int(1),
                AnyValue::from("two"),
                AnyValue::Double(-1e-300),
                AnyValue::Bytes(vec![]),
                AnyValue::Empty,
            ]),
        ),
        KeyValue::new(
            "kvlist",
            AnyValue::KvList(vec![
                KeyValue::new("nested", AnyValue::Array(vec![AnyValue::Bool(false)])),
                KeyValue::new("deeper", AnyValue::KvList(vec![KeyValue::new("x", "y")])),
            ]),
        ),
    ]
}

/// A span and a log record with every field set.
fn full_records() -> (SpanRecord, LogEntry) {
    let resource = Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("host.cpus", AnyValue::Int(8)),
        ],
        original_attributes: vec![KeyValue::new("service", "checkout")],
        dropped_attributes_count: 3,
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    });
    let scope = Arc::new(Scope {
        name: "checkout-lib".into(),
        version: "1.2.3".into(),
        attributes: vec![KeyValue::new("scope.attr", AnyValue::Bytes(vec![9]))],
        dropped_attributes_count: 4,
        schema_url: "https://example.com/scope-schema".into(),
    });
    let mut attributes = every_value();
    attributes.extend([
        KeyValue::new("url.path", "/checkout"),
        KeyValue::new("client.address", "203.0.113.9"),
        KeyValue::new("http.response.status_code", AnyValue::Int(503)),
        // Wrong type for its column: stays in the generic list.
        KeyValue::new("enduser.id", AnyValue::Int(7)),
    ]);
    let span = Span {
        trace_id: trace_id(77),
        span_id: SpanId::from_bytes([1; 8]),
        parent_span_id: Some(SpanId::from_bytes([2; 8])),
        trace_state: "vendor=value".into(),
        flags: 0x301,
        name: "POST /checkout".into(),
        kind: SpanKind::Consumer,
        start_time_unix_nano: 1_700_000_000_000_000_001,
        end_time_unix_nano: 1_700_000_000_900_000_002,
        attributes,
        original_attributes: vec![KeyValue::new("http.status_code", AnyValue::Int(503))],
        dropped_attributes_count: 5,
        events: vec![
            Event {
                time_unix_nano: 1_700_000_000_100_000_000,
                name: "exception".into(),
                attributes: vec![KeyValue::new("exception.type", "java.io.IOException")],
                dropped_attributes_count: 6,
            },
            Event::default(),
        ],
        dropped_events_count: 7,
        links: vec![Link {
            trace_id: trace_id(78),
            span_id: SpanId::from_bytes([3; 8]),
            trace_state: "other=1".into(),
            attributes: every_value(),
            dropped_attributes_count: 8,
            flags: 1,
        }],
        dropped_links_count: 9,
        status: Status {
            code: StatusCode::Error,
            message: "payment declined".into(),
        },
    };
    let log = LogRecord {
        time_unix_nano: 1_700_000_000_200_000_000,
        observed_time_unix_nano: 1_700_000_000_300_000_000,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: AnyValue::KvList(every_value()),
        attributes: every_value(),
        original_attributes: vec![KeyValue::new("level", "error")],
        dropped_attributes_count: 10,
        flags: 1,
        trace_id: Some(trace_id(77)),
        span_id: Some(SpanId::from_bytes([1; 8])),
        event_name: "payment.failed".into(),
    };
    (
        SpanRecord {
            resource: Arc::clone(&resource),
            scope: Arc::clone(&scope),
            span: span.into(),
        },
        LogEntry {
            resource,
            scope,
            record: log,
        },
    )
}

#[test]
fn every_field_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (span, log) = full_records();
    let written = write_segment(
        dir.path(),
        7,
        &[&span],
        &[&log],
        &SegmentWriteOptions::default(),
    )
    .unwrap();
    assert_eq!((written.id, written.spans, written.logs), (7, 1, 1));
    assert_eq!(written.min_time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(written.max_time_unix_nano, 1_700_000_000_900_000_002);
    let names: Vec<&str> = written.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            spans_file_name(7),
            logs_file_name(7),
            resources_file_name(7)
        ]
    );
    for file in &written.files {
        let bytes = std::fs::read(dir.path().join(&file.name)).unwrap();
        assert_eq!(file.bytes, bytes.len() as u64);
        use sha2::Digest;
        assert_eq!(file.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&bytes)));
    }
    // Only the final files remain.
    let mut entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            logs_file_name(7),
            resources_file_name(7),
            spans_file_name(7)
        ]
    );

    let segment = Segment::open(dir.path(), 7).unwrap();
    assert_eq!(segment.id(), 7);
    assert_eq!((segment.span_count(), segment.log_count()), (1, 1));
    assert_eq!(
        segment.time_range_unix_nano(),
        (written.min_time_unix_nano, written.max_time_unix_nano)
    );
    let (spans, logs) = segment.read_all().unwrap();
    assert_eq!(spans, expected_spans(std::slice::from_ref(&span)));
    assert_eq!(logs, vec![log.clone()]);

    // The documented attribute order: dedicated columns first, in column order.
    let keys: Vec<&str> = spans[0]
        .span
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(
        keys[..4],
        [
            "client.address",
            "url.path",
            "http.response.status_code",
            "empty"
        ]
    );
    assert_eq!(keys.last(), Some(&"enduser.id"));

    let (spans, logs) = segment.trace(trace_id(77)).unwrap();
    assert_eq!(spans, expected_spans(&[span]));
    assert_eq!(logs, vec![log]);
}

#[test]
fn random_spans_and_logs_round_trip_in_segment_order() {
    for seed in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(seed);
        let spans = random.spans(1_500, 300);
        let logs = random.logs(700, 300);
        // Small row groups: values and lists cross row-group and batch edges.
        write_segment(
            dir.path(),
            seed + 1,
            &spans.iter().collect::<Vec<_>>(),
            &logs.iter().collect::<Vec<_>>(),
            &options(97),
        )
        .unwrap();
        let segment = Segment::open(dir.path(), seed + 1).unwrap();
        let (read_spans, read_logs) = segment.read_all().unwrap();
        let expected = expected_spans(&spans);
        assert_eq!(read_spans.len(), expected.len());
        for (i, (read, expected)) in read_spans.iter().zip(&expected).enumerate() {
            assert_eq!(read, expected, "seed {seed}, span {i}");
        }
        assert_eq!(read_logs, expected_logs(&logs), "seed {seed}");

        // Each trace reads back whole, and only it.
        for n in [1, 2, 150, 300] {
            let id = trace_id(n);
            let (trace_spans, trace_logs) = segment.trace(id).unwrap();
            let want: Vec<&SpanRecord> =
                expected.iter().filter(|s| s.span.trace_id == id).collect();
            assert_eq!(trace_spans.iter().collect::<Vec<_>>(), want, "trace {n}");
            let want_logs: Vec<LogEntry> = expected_logs(&logs)
                .into_iter()
                .filter(|l| l.record.trace_id == Some(id))
                .collect();
            assert_eq!(trace_logs, want_logs, "trace {n}");
        }
        let (none, no_logs) = segment.trace(trace_id(10_000)).unwrap();
        assert!(none.is_empty() && no_logs.is_empty());
    }
}

#[test]
fn log_bodies_of_every_value_kind_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut bodies: Vec<AnyValue> = every_value().into_iter().map(|kv| kv.value).collect();
    bodies.push(AnyValue::KvList(every_value()));
    bodies.push(AnyValue::Double(f64::NEG_INFINITY));
    bodies.push(AnyValue::Str("".into()));
    bodies.push(AnyValue::Array(vec![AnyValue::Array(vec![
        AnyValue::Array(vec![]),
    ])]));
    let logs: Vec<LogEntry> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| LogEntry {
            resource: Arc::default(),
            scope: Arc::default(),
            record: LogRecord {
                time_unix_nano: i as u64,
                body: body.clone(),
                ..LogRecord::default()
            },
        })
        .collect();
    write_segment(
        dir.path(),
        1,
        &[],
        &logs.iter().collect::<Vec<_>>(),
        &options(4),
    )
    .unwrap();
    let (spans, read) = Segment::open(dir.path(), 1).unwrap().read_all().unwrap();
    assert!(spans.is_empty());
    assert_eq!(read, logs);
}

#[test]
fn nan_and_negative_zero_keep_their_bits() {
    let dir = tempfile::tempdir().unwrap();
    let mut span = Span::new(trace_id(1), SpanId::from_bytes([1; 8]), "s");
    let nan = f64::from_bits(0x7ff8_0000_0000_0001);
    span.attributes = vec![
        KeyValue::new("nan", AnyValue::Double(nan)),
        KeyValue::new("negzero", AnyValue::Double(-0.0)),
        KeyValue::new(
            "nested",
            AnyValue::Array(vec![AnyValue::Double(f64::NAN), AnyValue::Double(-0.0)]),
        ),
    ];
    let record = SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    };
    write_segment(dir.path(), 1, &[&record], &[], &options(10)).unwrap();
    let (spans, _) = Segment::open(dir.path(), 1).unwrap().read_all().unwrap();
    let attributes = &spans[0].span.attributes;
    let AnyValue::Double(d) = attributes[0].value else {
        panic!("{attributes:?}")
    };
    assert_eq!(d.to_bits(), nan.to_bits());
    let AnyValue::Double(z) = attributes[1].value else {
        panic!()
    };
    assert_eq!(z.to_bits(), (-0.0f64).to_bits());
    let AnyValue::Array(items) = &attributes[2].value else {
        panic!()
    };
    assert!(matches!(items[0], AnyValue::Double(d) if d.is_nan()));
    assert!(matches!(items[1], AnyValue::Double(d) if d.to_bits() == (-0.0f64).to_bits()));
}

#[test]
fn equal_resources_and_scopes_share_one_arc_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut workload = Workload::new(3);
    let mut spans = workload.spans(5_000);
    // As if each span came in an export of its own: equal resources in
    // separate `Arc`s.
    for span in spans.iter_mut().step_by(2) {
        span.resource = Arc::new((*span.resource).clone());
        span.scope = Arc::new((*span.scope).clone());
    }
    write_segment(
        dir.path(),
        1,
        &spans.iter().collect::<Vec<_>>(),
        &[],
        &options(1_000),
    )
    .unwrap();
    // Stored once each, whatever their `Arc`: a row per service.
    let file = std::fs::File::open(dir.path().join(resources_file_name(1))).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let metadata = parquet::file::reader::FileReader::metadata(&reader);
    assert_eq!(metadata.file_metadata().num_rows(), 3);
    // So few are stored plain: a lookup reads them without a zstd context.
    let attributes = metadata.row_group(0).column(1);
    assert_eq!(
        attributes.compression(),
        parquet::basic::Compression::UNCOMPRESSED
    );
    let (spans, _) = Segment::open(dir.path(), 1).unwrap().read_all().unwrap();
    assert_eq!(spans.len(), 5_000);
    let resources: HashSet<*const Resource> =
        spans.iter().map(|s| Arc::as_ptr(&s.resource)).collect();
    let scopes: HashSet<*const Scope> = spans.iter().map(|s| Arc::as_ptr(&s.scope)).collect();
    // Three services; at most one copy per batch of 8192 rows read.
    assert_eq!(resources.len(), 3, "one Arc per distinct resource");
    assert_eq!(scopes.len(), 3);
    let shared = spans
        .windows(2)
        .filter(|w| w[0].resource == w[1].resource)
        .all(|w| Arc::ptr_eq(&w[0].resource, &w[1].resource));
    assert!(shared);
}

/// Every span with a resource of its own (a sender that puts a request id
/// in the resource): the resources file is as long as the spans file and
/// spans several row groups, and reads still find each span's own.
#[test]
fn a_resource_per_span_round_trips_across_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut spans = Workload::new(4).spans(3_000);
    for (i, span) in spans.iter_mut().enumerate() {
        let mut resource = (*span.resource).clone();
        resource
            .attributes
            .push(KeyValue::new("request.id", AnyValue::Int(i as i64)));
        span.resource = Arc::new(resource);
    }
    let logs = Random::new(4).logs(500, 50);
    write_segment(
        dir.path(),
        1,
        &spans.iter().collect::<Vec<_>>(),
        &logs.iter().collect::<Vec<_>>(),
        &options(700),
    )
    .unwrap();
    let file = std::fs::File::open(dir.path().join(resources_file_name(1))).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let metadata = parquet::file::reader::FileReader::metadata(&reader);
    assert!(
        metadata.num_row_groups() >= 5,
        "{}",
        metadata.num_row_groups()
    );
    assert!(metadata.file_metadata().num_rows() > 3_000);
    // So many are compressed.
    assert!(matches!(
        metadata.row_group(0).column(1).compression(),
        parquet::basic::Compression::ZSTD(_)
    ));

    let segment = Segment::open(dir.path(), 1).unwrap();
    let expected = expected_spans(&spans);
    let (read_spans, read_logs) = segment.read_all().unwrap();
    assert_eq!(read_spans, expected);
    assert_eq!(read_logs, expected_logs(&logs));
    for probe in [&expected[0], &expected[1_777], &expected[2_999]] {
        let (trace, _) = segment.trace(probe.span.trace_id).unwrap();
        let want: Vec<&SpanRecord> = expected
            .iter()
            .filter(|s| s.span.trace_id == probe.span.trace_id)
            .collect();
        assert_eq!(trace.iter().collect::<Vec<_>>(), want);
    }
}

#[test]
fn empty_segments_and_traces_without_spans_work() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_segment(dir.path(), 5, &[], &[], &SegmentWriteOptions::default()).unwrap();
    assert_eq!((written.spans, written.logs), (0, 0));
    assert_eq!(
        (written.min_time_unix_nano, written.max_time_unix_nano),
        (0, 0)
    );
    let segment = Segment::open(dir.path(), 5).unwrap();
    assert_eq!(segment.read_all().unwrap(), (Vec::new(), Vec::new()));
    assert_eq!(
        segment.trace(trace_id(1)).unwrap(),
        (Vec::new(), Vec::new())
    );
    assert!(segment.scan_spans(&Default::default()).unwrap().is_empty());
}

#[test]
fn invalid_options_and_too_deep_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        SegmentWriteOptions {
            row_group_rows: 0,
            ..SegmentWriteOptions::default()
        },
        SegmentWriteOptions {
            zstd_level: 99,
            ..SegmentWriteOptions::default()
        },
        SegmentWriteOptions {
            bloom_fpp: 1.0,
            ..SegmentWriteOptions::default()
        },
    ] {
        let error = write_segment(dir.path(), 1, &[], &[], &bad).unwrap_err();
        assert!(matches!(error, StoreError::Segment { .. }), "{error}");
    }

    let mut value = AnyValue::Int(1);
    for _ in 0..200 {
        value = AnyValue::Array(vec![value]);
    }
    let mut span = Span::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([1; 8]),
        "s",
    );
    span.attributes.push(KeyValue::new("deep", value));
    let record = SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    };
    let error = write_segment(
        dir.path(),
        2,
        &[&record],
        &[],
        &SegmentWriteOptions::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("nested deeper"), "{error}");
    // Nothing is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_segment_is_readable_from_many_threads_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut workload = Workload::new(9);
    let spans = workload.spans(20_000);
    let ids: Vec<TraceId> = spans.iter().step_by(997).map(|s| s.span.trace_id).collect();
    let expected = expected_spans(&spans);
    write_segment(
        dir.path(),
        1,
        &spans.iter().collect::<Vec<_>>(),
        &[],
        &options(2_000),
    )
    .unwrap();
    let segment = Segment::open(dir.path(), 1).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (segment, ids, expected) = (&segment, &ids, &expected);
            scope.spawn(move || {
                for id in ids.iter().skip(t) {
                    let (spans, _) = segment.trace(*id).unwrap();
                    let want: Vec<SpanRecord> = expected
                        .iter()
                        .filter(|s| s.span.trace_id == *id)
                        .cloned()
                        .collect();
                    assert_eq!(spans, want);
                }
            });
        }
    });
}
