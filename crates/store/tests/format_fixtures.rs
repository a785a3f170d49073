//! WAL files and segments of every format version ever written must stay
//! readable (STYLE.md §5: keep a WAL of every format). `tests/fixtures/wal-v1` was
//! written by format version 1 with codec version 1; if this test fails after
//! a change to the model's types, the codec needs a new version and a
//! decoder for version 1 kept alongside (see `src/codec.rs`).
//!
//! The fixture was written by running this test with
//! `TRACEWARDEN_WRITE_FIXTURES=1` while the directory did not exist; it is
//! never rewritten. A new format version gets its own directory and test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod segment_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use tracewarden_model::Batch;
use tracewarden_store::segment::{logs_file_name, spans_file_name};
use tracewarden_store::{LogEntry, Segment, SpanRecord, Store, StoreOptions, WalOptions, codec};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal-v1")
}

fn expected_batches() -> Vec<Batch> {
    vec![full_batch(), realistic_batch(1, 20)]
}

fn write_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions {
        wal: WalOptions::default(),
        ..StoreOptions::new(dir.path().to_owned())
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for batch in expected_batches() {
        rt.block_on(store.append(batch)).unwrap();
    }
    drop(store);
    fs::create_dir_all(fixture_dir()).unwrap();
    for file in wal_files(dir.path()) {
        fs::copy(&file, fixture_dir().join(file.file_name().unwrap())).unwrap();
    }
}

#[test]
fn reads_the_committed_version_1_wal() {
    if std::env::var_os("TRACEWARDEN_WRITE_FIXTURES").is_some() && !fixture_dir().exists() {
        write_fixture();
    }
    let name = "wal-00000000000000000001.log";
    let bytes = fs::read(fixture_dir().join(name)).expect("the committed version 1 WAL fixture");
    assert_eq!(&bytes[..7], b"TWWAL\x01\x00", "magic and format version 1");

    // The payloads, decoded on their own, are exactly the batches written.
    let decoded: Vec<Batch> = record_ranges(&bytes)
        .iter()
        .map(|r| codec::decode(&bytes[r.start + RECORD_HEADER_LEN..r.end]).unwrap())
        .collect();
    assert_eq!(decoded, expected_batches());

    // And the whole read path (header, salt, checksums, replay) takes the file.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("wal")).unwrap();
    fs::write(dir.path().join("wal").join(name), &bytes).unwrap();
    let (store, report) = open(dir.path(), no_fsync());
    assert_eq!(
        (report.records, report.spans, report.logs, report.last_lsn),
        (2, 21, 1, 2)
    );
    assert_eq!((report.corrupt_records, report.torn_tail_bytes), (0, 0));
    let full = full_batch();
    let trace = store.trace(trace_id(77)).unwrap();
    assert_eq!(
        *trace.spans[0].span,
        full.resource_spans[0].scope_spans[0].spans[0]
    );
    assert_eq!(*trace.spans[0].resource, *full.resource_spans[0].resource);
    assert_eq!(
        trace.logs[0].record,
        full.resource_logs[0].scope_logs[0].log_records[0]
    );
    assert_eq!(store.trace(trace_id(2)).unwrap().spans.len(), 10);
}

// ------------------------------------------------------------ segments v1

/// `tests/fixtures/segment-v1`: the `segments/` directory of a store that
/// flushed [`segment_batches`] with segment format version 1 (every row
/// carried its resource and scope). Written once, like the WAL fixture.
fn segment_fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segment-v1")
}

/// Three resources (two by value equal), spans and logs with and without a
/// trace.
fn segment_batches() -> Vec<Batch> {
    vec![full_batch(), realistic_batch(1, 20), small_batch(500)]
}

fn manual_store(dir: &Path) -> Store {
    let (store, _) = Store::open(StoreOptions {
        lifecycle_thread: false,
        ..StoreOptions::new(dir.to_owned())
    })
    .unwrap();
    store
}

fn write_segment_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let store = manual_store(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for batch in segment_batches() {
        rt.block_on(store.append(batch)).unwrap();
    }
    assert_eq!(store.flush().unwrap(), Some(1));
    store.close();
    drop(store);
    fs::create_dir_all(segment_fixture_dir()).unwrap();
    for entry in fs::read_dir(dir.path().join("segments")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, segment_fixture_dir().join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// The spans and log records of `batches`, in segment order.
fn records(batches: &[Batch]) -> (Vec<SpanRecord>, Vec<LogEntry>) {
    let mut spans = Vec::new();
    let mut logs = Vec::new();
    for batch in batches {
        for rs in &batch.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    spans.push(SpanRecord::new(
                        Arc::clone(&rs.resource),
                        Arc::clone(&ss.scope),
                        span.clone(),
                    ));
                }
            }
        }
        for rl in &batch.resource_logs {
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    logs.push(LogEntry {
                        resource: Arc::clone(&rl.resource),
                        scope: Arc::clone(&sl.scope),
                        record: record.clone(),
                    });
                }
            }
        }
    }
    (
        segment_support::expected_spans(&spans),
        segment_support::expected_logs(&logs),
    )
}

#[test]
fn reads_the_committed_version_1_segment() {
    if std::env::var_os("TRACEWARDEN_WRITE_FIXTURES").is_some() && !segment_fixture_dir().exists() {
        write_segment_fixture();
    }
    let mut names: Vec<String> = fs::read_dir(segment_fixture_dir())
        .expect("the committed version 1 segment fixture")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // Version 1: no resources file; each row held its resource.
    assert_eq!(
        names,
        [
            logs_file_name(1),
            "00000000000000000001.manifest.json".to_string(),
            spans_file_name(1),
            "chain.head".to_string(),
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let segments = dir.path().join("segments");
    fs::create_dir(&segments).unwrap();
    for name in &names {
        fs::copy(segment_fixture_dir().join(name), segments.join(name)).unwrap();
    }

    // The segment reads back exactly what was written.
    let segment = Segment::open(&segments, 1).unwrap();
    assert_eq!(segment.format_version(), 1);
    let (spans, logs) = segment.read_all().unwrap();
    let (expected_spans, expected_logs) = records(&segment_batches());
    assert_eq!((spans.len(), logs.len()), (22, 2));
    assert_eq!(spans, expected_spans);
    assert_eq!(logs, expected_logs);
    drop(segment);

    // A store serves it, verifies it, and writes version 2 beside it;
    // compaction rewrites both as one version 2 segment.
    let store = manual_store(dir.path());
    assert_eq!(store.segment_ids(), [1]);
    let report = store.verify_integrity().unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report:?}");
    let full = full_batch();
    let trace = store.trace(trace_id(77)).unwrap();
    assert_eq!(*trace.spans[0].resource, *full.resource_spans[0].resource);
    assert_eq!(*trace.logs[0].resource, *full.resource_logs[0].resource);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(store.append(realistic_batch(900, 10))).unwrap();
    let second = store.flush().unwrap().unwrap();
    assert_eq!(
        Segment::open(&segments, second).unwrap().format_version(),
        2
    );
    let merged = store.compact().unwrap().expect("two small segments merge");
    assert_eq!(store.segment_ids(), [merged]);
    let segment = Segment::open(&segments, merged).unwrap();
    assert_eq!(segment.format_version(), 2);
    let (spans, logs) = segment.read_all().unwrap();
    let mut all = segment_batches();
    all.push(realistic_batch(900, 10));
    let (expected_spans, expected_logs) = records(&all);
    assert_eq!(spans, expected_spans);
    assert_eq!(logs, expected_logs);
    // (Findings name the two compacted segments: information, not failure.)
    let report = store.verify_integrity().unwrap();
    assert!(report.ok && report.files_checked == 3, "{report:?}");
    assert!(!segments.join(spans_file_name(1)).exists());
}
