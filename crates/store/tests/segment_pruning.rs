//! Lookups read only what can hold the answer: a trace by id reads a small
//! fraction of a 20-row-group segment (row-group statistics, bloom filter,
//! page index), an absent id almost nothing, and scans prune by bloom
//! filters and statistics yet return exactly the spans a full scan finds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod segment_support;

use std::sync::Arc;

use segment_support::*;
use tracewarden_model::{AnyValue, Event, KeyValue, Span, SpanId, TraceId};
use tracewarden_store::{
    DedicatedColumn, Segment, SegmentWriteOptions, SpanFilter, SpanRecord, write_segment,
};

const ROW_GROUP_ROWS: usize = 2_000;
const SPANS: usize = 20 * ROW_GROUP_ROWS;

/// A segment of 20 row groups of realistic spans, and the spans in file order.
fn segment(dir: &std::path::Path) -> (Segment, Vec<SpanRecord>) {
    let spans = Workload::new(5).spans(SPANS);
    let expected = expected_spans(&spans);
    let options = SegmentWriteOptions {
        row_group_rows: ROW_GROUP_ROWS,
        ..SegmentWriteOptions::default()
    };
    write_segment(dir, 1, &spans.iter().collect::<Vec<_>>(), &[], &options).unwrap();
    (Segment::open(dir, 1).unwrap(), expected)
}

/// Runs `f` and returns what it returned and the bytes it read.
fn reading<T>(segment: &Segment, f: impl FnOnce() -> T) -> (T, u64) {
    let before = segment.bytes_read();
    let out = f();
    (out, segment.bytes_read() - before)
}

#[test]
fn a_trace_lookup_reads_a_small_fraction_of_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, expected) = segment(dir.path());
    let size = segment.bytes();
    eprintln!("20 row groups: {size} bytes");
    let (all, read_all) = reading(&segment, || segment.read_all().unwrap());
    assert_eq!(all.0.len(), SPANS);
    // Reading everything reads (nearly) the whole file.
    assert!(read_all > size / 2, "read_all read {read_all} of {size}");

    let mut worst = 0;
    for i in [0, 1, SPANS / 3, SPANS / 2, SPANS - 1] {
        let id = expected[i].span.trace_id;
        let (trace, read) = reading(&segment, || segment.trace(id).unwrap());
        let want: Vec<&SpanRecord> = expected.iter().filter(|s| s.span.trace_id == id).collect();
        assert_eq!(trace.0.iter().collect::<Vec<_>>(), want);
        worst = worst.max(read);
    }
    eprintln!("20 row groups: a lookup read at most {worst} bytes");
    // One row group of twenty (the trace id column twice: for the row
    // filter, then with the others), the bloom filters it consulted, and
    // the pages of the resources file holding the trace's resources.
    // (Before resources were stored once the bound was 10: the segment was
    // 6% larger, a lookup read 1% more bytes.)
    assert!(
        worst * 8 < size,
        "a lookup read {worst} bytes of a {size}-byte segment"
    );

    // An id within the segment's id range but absent: the bloom filter (or
    // the page index) rules it out; at most the filters are read.
    let mut absent = expected[SPANS / 2].span.trace_id.to_bytes();
    absent[15] ^= 1;
    let (trace, read) = reading(&segment, || {
        segment.trace(TraceId::from_bytes(absent)).unwrap()
    });
    assert!(trace.0.is_empty());
    assert!(read * 50 < size, "an absent id read {read} bytes of {size}");
    // An id outside every row group's range reads nothing at all.
    let (_, read) = reading(&segment, || {
        segment.trace(TraceId::from_bytes([0xff; 16])).unwrap()
    });
    assert_eq!(read, 0);
}

#[test]
fn within_a_row_group_a_trace_lookup_reads_only_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let spans = Workload::new(6).spans(40_000);
    let expected = expected_spans(&spans);
    // One row group: only the page index can narrow the read.
    write_segment(
        dir.path(),
        2,
        &spans.iter().collect::<Vec<_>>(),
        &[],
        &SegmentWriteOptions::default(),
    )
    .unwrap();
    let segment = Segment::open(dir.path(), 2).unwrap();
    let size = segment.bytes();
    let mut worst = 0;
    for i in [0, 20_000, 39_999] {
        let id = expected[i].span.trace_id;
        let (trace, read) = reading(&segment, || segment.trace(id).unwrap());
        assert_eq!(trace.0[0].span.trace_id, id);
        worst = worst.max(read);
    }
    eprintln!("one row group: a lookup read {worst} of {size} bytes");
    assert!(
        worst * 4 < size,
        "a lookup read {worst} bytes of a {size}-byte row group"
    );
}

#[test]
fn scans_prune_by_bloom_filter_and_return_exactly_the_matches() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, expected) = segment(dir.path());
    let size = segment.bytes();

    // A client address that exists: exactly its spans, in file order.
    let client = expected
        .iter()
        .find_map(|s| {
            s.span
                .attribute("client.address")
                .and_then(AnyValue::as_str)
        })
        .unwrap()
        .to_string();
    let filter = SpanFilter {
        equals: vec![(DedicatedColumn::ClientAddress, client.clone())],
        ..SpanFilter::default()
    };
    let found = segment.scan_spans(&filter).unwrap();
    let want: Vec<SpanRecord> = expected
        .iter()
        .filter(|s| {
            s.span
                .attribute("client.address")
                .and_then(AnyValue::as_str)
                == Some(&client)
        })
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(found, want);

    // An address no span has: the bloom filters rule out every row group.
    let filter = SpanFilter {
        equals: vec![(DedicatedColumn::ClientAddress, "192.0.2.255".to_string())],
        ..SpanFilter::default()
    };
    let (found, read) = reading(&segment, || segment.scan_spans(&filter).unwrap());
    assert!(found.is_empty());
    assert!(
        read * 20 < size,
        "a scan for an absent address read {read} of {size}"
    );

    // Several conditions at once, and a limit.
    let (min, max) = segment.time_range_unix_nano();
    let middle = min + (max - min) / 2;
    let filter = SpanFilter {
        start_unix_nano: Some(min + (max - min) / 4),
        end_unix_nano: Some(middle),
        service_name: Some("gateway".to_string()),
        equals: vec![
            (DedicatedColumn::HttpResponseStatusCode, "200".to_string()),
            (DedicatedColumn::HttpRequestMethod, "GET".to_string()),
        ],
        trace_ids: None,
        attribute_equals: Vec::new(),
        limit: None,
    };
    let found = segment.scan_spans(&filter).unwrap();
    let want: Vec<SpanRecord> = expected
        .iter()
        .filter(|s| {
            let span = &s.span;
            span.start_time_unix_nano >= min + (max - min) / 4
                && span.start_time_unix_nano < middle
                && s.resource.service_name() == "gateway"
                && span.attribute("http.response.status_code") == Some(&AnyValue::Int(200))
                && span.attribute("http.request.method") == Some(&AnyValue::from("GET"))
        })
        .cloned()
        .collect();
    assert!(want.len() > 100, "{} spans", want.len());
    assert_eq!(found, want);
    let limited = segment
        .scan_spans(&SpanFilter {
            limit: Some(7),
            ..filter.clone()
        })
        .unwrap();
    assert_eq!(limited, want[..7]);

    // A status code that is not a number matches nothing; an empty window neither.
    let nothing = SpanFilter {
        equals: vec![(DedicatedColumn::HttpResponseStatusCode, "ok".to_string())],
        ..SpanFilter::default()
    };
    assert!(segment.scan_spans(&nothing).unwrap().is_empty());
    let empty_window = SpanFilter {
        start_unix_nano: Some(middle),
        end_unix_nano: Some(middle),
        ..SpanFilter::default()
    };
    assert!(segment.scan_spans(&empty_window).unwrap().is_empty());

    // A set of trace ids: exactly their spans (row groups outside the ids'
    // range are not read).
    let mut ids: Vec<_> = expected.iter().map(|s| s.span.trace_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let wanted: std::collections::HashSet<_> = ids.iter().step_by(97).copied().collect();
    let filter = SpanFilter {
        trace_ids: Some(std::sync::Arc::new(wanted.clone())),
        ..SpanFilter::default()
    };
    let found = segment.scan_spans(&filter).unwrap();
    let want: Vec<SpanRecord> = expected
        .iter()
        .filter(|s| wanted.contains(&s.span.trace_id))
        .cloned()
        .collect();
    assert!(want.len() > 10, "{} spans", want.len());
    assert_eq!(found, want);
    let first_two: std::collections::HashSet<_> = ids.iter().take(2).copied().collect();
    let (found, read) = reading(&segment, || {
        segment
            .scan_spans(&SpanFilter {
                trace_ids: Some(std::sync::Arc::new(first_two.clone())),
                ..SpanFilter::default()
            })
            .unwrap()
    });
    assert!(found.iter().all(|s| first_two.contains(&s.span.trace_id)) && !found.is_empty());
    assert!(read * 5 < size, "two traces read {read} of {size}");
    let none = SpanFilter {
        trace_ids: Some(std::sync::Arc::new(std::collections::HashSet::new())),
        ..SpanFilter::default()
    };
    assert!(segment.scan_spans(&none).unwrap().is_empty());

    // No condition: everything, limit applied.
    let all = segment
        .scan_spans(&SpanFilter {
            limit: Some(SPANS + 10),
            ..SpanFilter::default()
        })
        .unwrap();
    assert_eq!(all, expected);
}

#[test]
fn columns_empty_in_a_row_group_are_skipped_and_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    // Row group 0 (trace ids 1..): spans with events; row group 1: none.
    let record = |trace: u64, n: u8, event: bool| {
        let mut span = Span::new(trace_id(trace), SpanId::from_bytes([n + 1; 8]), "op");
        span.attributes
            .push(KeyValue::new("client.address", "198.51.100.9"));
        if event {
            span.events.push(Event {
                time_unix_nano: 5,
                name: "exception".into(),
                attributes: vec![KeyValue::new(
                    "exception.stacktrace",
                    "at main\n".repeat(50).as_str(),
                )],
                dropped_attributes_count: 0,
            });
        }
        SpanRecord {
            resource: Arc::default(),
            scope: Arc::default(),
            span: span.into(),
        }
    };
    let spans: Vec<SpanRecord> = (0..100u64)
        .map(|i| record(1 + i, i as u8, i < 50))
        .collect();
    let options = SegmentWriteOptions {
        row_group_rows: 50,
        ..SegmentWriteOptions::default()
    };
    write_segment(
        dir.path(),
        3,
        &spans.iter().collect::<Vec<_>>(),
        &[],
        &options,
    )
    .unwrap();
    let segment = Segment::open(dir.path(), 3).unwrap();

    let (with_events, read_with) = reading(&segment, || segment.trace(trace_id(10)).unwrap());
    assert_eq!(with_events.0, expected_spans(&spans[9..10]));
    let (without, read_without) = reading(&segment, || segment.trace(trace_id(60)).unwrap());
    assert_eq!(without.0, expected_spans(&spans[59..60]));
    // The second row group's lookup leaves the events columns out.
    assert!(read_without < read_with, "{read_without} >= {read_with}");
    // A read over both row groups reads the events of the first.
    assert_eq!(segment.read_all().unwrap().0, expected_spans(&spans));
}

#[test]
fn scans_by_a_generic_attribute_return_exactly_its_spans() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, expected) = segment(dir.path());
    let dedicated: Vec<&str> = DedicatedColumn::ALL
        .iter()
        .map(|c| c.attribute_key())
        .collect();
    // A generic string attribute some spans have: the most frequent value
    // of the first such key, so both outcomes occur in every row group.
    let (key, value) = expected
        .iter()
        .flat_map(|s| s.span.attributes.iter())
        .find_map(|kv| {
            let text = kv.value.as_str()?;
            (!dedicated.contains(&kv.key.as_str())).then(|| (kv.key.to_string(), text.to_string()))
        })
        .expect("a generic string attribute");
    let has = |s: &SpanRecord, key: &str, value: &str| {
        s.span.attribute(key).and_then(AnyValue::as_str) == Some(value)
    };
    let filter = SpanFilter {
        attribute_equals: vec![(key.clone(), value.clone())],
        ..SpanFilter::default()
    };
    let want: Vec<SpanRecord> = expected
        .iter()
        .filter(|s| has(s, &key, &value))
        .cloned()
        .collect();
    assert!(
        !want.is_empty() && want.len() < expected.len(),
        "{key}={value}: {}",
        want.len()
    );
    assert_eq!(segment.scan_spans(&filter).unwrap(), want, "{key}={value}");

    // With a time range and a dedicated column; and a dedicated key given
    // as an attribute reads its column.
    let (min, max) = segment.time_range_unix_nano();
    let middle = min + (max - min) / 2;
    let filter = SpanFilter {
        end_unix_nano: Some(middle),
        attribute_equals: vec![
            (key.clone(), value.clone()),
            ("http.request.method".to_string(), "GET".to_string()),
        ],
        ..SpanFilter::default()
    };
    let want: Vec<SpanRecord> = expected
        .iter()
        .filter(|s| {
            s.span.start_time_unix_nano < middle
                && has(s, &key, &value)
                && has(s, "http.request.method", "GET")
        })
        .cloned()
        .collect();
    assert_eq!(segment.scan_spans(&filter).unwrap(), want);

    // A value no span has, and a key no span has: nothing.
    for (k, v) in [
        (key.as_str(), "no such value"),
        ("no.such.key", value.as_str()),
    ] {
        let filter = SpanFilter {
            attribute_equals: vec![(k.to_string(), v.to_string())],
            ..SpanFilter::default()
        };
        assert!(segment.scan_spans(&filter).unwrap().is_empty(), "{k}={v}");
    }
}
