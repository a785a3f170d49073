//! WAL files of every format version ever written must stay readable
//! (STYLE.md §5: keep a WAL of every format). `tests/fixtures/wal-v1` was
//! written by format version 1 with codec version 1; if this test fails after
//! a change to the model's types, the codec needs a new version and a
//! decoder for version 1 kept alongside (see `src/codec.rs`).
//!
//! The fixture was written by running this test with
//! `TRACEWARDEN_WRITE_FIXTURES=1` while the directory did not exist; it is
//! never rewritten. A new format version gets its own directory and test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use tracewarden_model::Batch;
use tracewarden_store::{Store, StoreOptions, WalOptions, codec};

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
