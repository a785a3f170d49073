//! Encryption at rest: with a key file, WAL files and segments hold no
//! plaintext, read back only with the key, and a missing or wrong key is a
//! clear error that leaves every file as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use tracewarden_model::{AnyValue, Batch, KeyValue};
use tracewarden_store::segment::{logs_file_name, resources_file_name, spans_file_name};
use tracewarden_store::{
    EncryptionKey, Segment, SegmentWriteOptions, Store, StoreError, StoreOptions,
    generate_key_file, write_segment_with_key,
};

/// Distinctive attribute values searched for in the raw files.
const SPAN_CANARY: &str = "canary-span-attribute-5f1e9c";
const USER_CANARY: &str = "canary-user-41d7@example.com";
const LOG_CANARY: &str = "canary-log-body-b3a8e2";

fn options(dir: &Path, key: Option<&Path>) -> StoreOptions {
    let mut options = StoreOptions::new(dir);
    options.wal = no_fsync();
    options.lifecycle_thread = false;
    options.lifecycle.encryption_key_file = key.map(Path::to_path_buf);
    options
}

/// Traces `first..first + 3`: spans carrying the canaries, and a log record.
fn batch(first: u64) -> Batch {
    let mut batch = realistic_batch(first, 30);
    for rs in &mut batch.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.attributes
                    .push(KeyValue::new("app.note", AnyValue::from(SPAN_CANARY)));
                span.attributes
                    .push(KeyValue::new("enduser.id", AnyValue::from(USER_CANARY)));
            }
        }
    }
    let mut logs = small_batch(first).resource_logs;
    for rl in &mut logs {
        for sl in &mut rl.scope_logs {
            for log in &mut sl.log_records {
                log.body = AnyValue::from(LOG_CANARY);
            }
        }
    }
    batch.resource_logs = logs;
    batch
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts no WAL or segment file under `dir` holds a canary in clear.
fn assert_no_plaintext(dir: &Path) {
    let files = snapshot(dir);
    let data: Vec<_> = files
        .iter()
        .filter(|(path, _)| {
            let name = path.to_string_lossy();
            name.ends_with(".log") || name.ends_with(".parquet")
        })
        .collect();
    assert!(!data.is_empty());
    for (path, bytes) in data {
        for canary in [SPAN_CANARY, USER_CANARY, LOG_CANARY, "api-gateway"] {
            assert!(
                !contains(bytes, canary),
                "`{canary}` in clear in {}",
                path.display()
            );
        }
    }
}

/// Asserts traces `traces` are complete, with their canaries.
fn assert_traces(store: &Store, traces: impl IntoIterator<Item = u64>) {
    for trace in traces {
        let found = store
            .trace(trace_id(trace))
            .unwrap_or_else(|| panic!("trace {trace}"));
        assert_eq!(found.spans.len(), 10, "trace {trace}");
        let span = &found.spans[0].span;
        assert!(
            span.attributes
                .iter()
                .any(|kv| kv.value == AnyValue::from(SPAN_CANARY)),
            "trace {trace}"
        );
    }
}

struct Keys {
    _dir: tempfile::TempDir,
    right: PathBuf,
    wrong: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let right = dir.path().join("store.key");
    let wrong = dir.path().join("other.key");
    generate_key_file(&right).unwrap();
    generate_key_file(&wrong).unwrap();
    Keys {
        _dir: dir,
        right,
        wrong,
    }
}

#[tokio::test]
async fn encrypted_store_round_trips_through_wal_and_segments_without_plaintext() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    store.append(batch(1)).await.unwrap();
    store.append(batch(10)).await.unwrap();
    drop(store);

    // Replayed from the encrypted WAL.
    let (store, report) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    assert_eq!((report.records, report.corrupt_records), (2, 0));
    assert_traces(&store, [1, 2, 3, 10, 11, 12]);
    let trace = store.trace(trace_id(1)).unwrap();
    assert_eq!(trace.logs.len(), 1);
    assert_eq!(trace.logs[0].record.body, AnyValue::from(LOG_CANARY));
    assert_no_plaintext(dir.path());
    let wal = wal_files(dir.path());
    for file in &wal {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(&bytes[..5], b"TWWAL");
        assert_eq!(
            u16::from_le_bytes([bytes[5], bytes[6]]),
            2,
            "{}",
            file.display()
        );
    }

    // Into a segment, then read from it after a reopen.
    store.append(batch(20)).await.unwrap();
    assert!(store.flush().unwrap().is_some());
    drop(store);
    let (store, report) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    assert_eq!(report.records, 0);
    assert_traces(&store, [1, 2, 3, 10, 11, 12, 20, 21, 22]);
    let segments = dir.path().join("segments");
    let id = store.segment_ids()[0];
    assert!(
        Segment::open_with_key(
            &segments,
            id,
            Some(std::sync::Arc::new(
                EncryptionKey::from_file(&keys.right).unwrap()
            ))
        )
        .unwrap()
        .is_encrypted()
    );
    // Filtered scans work on encrypted segments too.
    let found = store
        .find_spans(&tracewarden_store::SpanFilter {
            equals: vec![(
                tracewarden_store::DedicatedColumn::EnduserId,
                USER_CANARY.to_string(),
            )],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 90);
    assert_no_plaintext(dir.path());
}

#[tokio::test]
async fn missing_or_wrong_key_is_a_clear_error_and_changes_nothing() {
    let keys = keys();
    let right_id = EncryptionKey::from_file(&keys.right)
        .unwrap()
        .id()
        .to_string();
    let wrong_id = EncryptionKey::from_file(&keys.wrong)
        .unwrap()
        .id()
        .to_string();
    // Two stores: one with its data only in the WAL, one only in a segment.
    for flushed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
        store.append(batch(1)).await.unwrap();
        store.append(batch(10)).await.unwrap();
        if flushed {
            store.close();
        }
        drop(store);
        let before = snapshot(dir.path());

        let error = Store::open(options(dir.path(), None)).unwrap_err();
        let message = error.to_string();
        match &error {
            StoreError::KeyRequired { key_id, .. } => assert_eq!(key_id, &right_id),
            other => panic!("flushed {flushed}: {other}"),
        }
        assert!(
            message.contains("no encryption key is configured"),
            "{message}"
        );

        let error = Store::open(options(dir.path(), Some(&keys.wrong))).unwrap_err();
        let message = error.to_string();
        match &error {
            StoreError::WrongKey {
                path,
                file_key_id,
                configured_key_id,
            } => {
                assert_eq!(file_key_id, &right_id);
                assert_eq!(configured_key_id, &wrong_id);
                assert!(path.starts_with(dir.path()), "{}", path.display());
            }
            other => panic!("flushed {flushed}: {other}"),
        }
        assert!(
            message.contains(&right_id) && message.contains(&wrong_id),
            "{message}"
        );

        // Nothing was cut, skipped, quarantined or rewritten.
        let after = snapshot(dir.path());
        let changed: Vec<_> = after
            .iter()
            .filter(|(path, bytes)| before.get(*path) != Some(bytes))
            .map(|(path, _)| path.clone())
            .collect();
        // The lock file a failed open may leave is not data.
        assert!(
            changed
                .iter()
                .all(|p| !p.to_string_lossy().ends_with(".log")
                    && !p.to_string_lossy().ends_with(".parquet")
                    && !p.to_string_lossy().contains("quarantine")),
            "flushed {flushed}: changed {changed:?}"
        );
        for path in before.keys() {
            assert!(after.contains_key(path), "{} removed", path.display());
        }

        // The right key still reads everything.
        let (store, report) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
        assert_eq!(report.corrupt_records, 0);
        assert_eq!(store.stats().quarantined_segments, 0);
        assert_traces(&store, [1, 2, 3, 10, 11, 12]);
    }
}

/// Flips one byte of the payload of the middle record of the (only) WAL
/// file; with `fix_crc`, recomputes the record's crc as a forger would.
fn tamper_middle_record(file: &Path, fix_crc: bool) {
    let mut bytes = std::fs::read(file).unwrap();
    let ranges = encrypted_record_ranges(&bytes);
    assert_eq!(ranges.len(), 3);
    let record = ranges[1].clone();
    let payload = record.start + RECORD_HEADER_LEN..record.end;
    bytes[payload.start + 7] ^= 0x01;
    if fix_crc {
        let lsn = &bytes[record.start + 8..record.start + 16];
        let crc = record_crc(&bytes, lsn, &bytes[payload.clone()]);
        bytes[record.start + 4..record.start + 8].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(file, bytes).unwrap();
}

/// Record ranges of an encrypted WAL file (a 44-byte header).
fn encrypted_record_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut offset = 44;
    while offset + RECORD_HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        ranges.push(offset..offset + RECORD_HEADER_LEN + len);
        offset += RECORD_HEADER_LEN + len;
    }
    assert_eq!(offset, bytes.len());
    ranges
}

#[tokio::test]
async fn tampered_wal_records_are_detected() {
    let keys = keys();
    for fix_crc in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
        for first in [1, 10, 20] {
            store.append(batch(first)).await.unwrap();
        }
        drop(store);
        let wal = wal_files(dir.path());
        assert_eq!(wal.len(), 1);
        tamper_middle_record(&wal[0], fix_crc);
        let tampered = std::fs::read(&wal[0]).unwrap();

        let opened = Store::open(options(dir.path(), Some(&keys.right)));
        if fix_crc {
            // The crc holds: only authentication can tell, and it does.
            let error = opened.unwrap_err();
            match &error {
                StoreError::Decrypt { path, offset, .. } => {
                    assert_eq!(path, &wal[0]);
                    assert_eq!(*offset, encrypted_record_ranges(&tampered)[1].start as u64);
                }
                other => panic!("{other}"),
            }
            assert!(
                error.to_string().contains("fails authentication"),
                "{error}"
            );
            assert_eq!(std::fs::read(&wal[0]).unwrap(), tampered, "nothing cut");
        } else {
            // A bad crc in the middle: damage, reported and skipped.
            let (store, report) = opened.unwrap();
            assert_eq!((report.records, report.corrupt_records), (2, 1));
            assert_traces(&store, [1, 20]);
            assert!(store.trace(trace_id(10)).is_none());
        }
    }
}

#[tokio::test]
async fn torn_tail_of_an_encrypted_wal_is_cut_and_the_next_file_continues() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    for first in [1, 10, 20] {
        store.append(batch(first)).await.unwrap();
    }
    drop(store);
    let wal = wal_files(dir.path());
    let len = std::fs::metadata(&wal[0]).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal[0])
        .unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);

    let (store, report) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    assert_eq!(report.records, 2);
    assert!(report.torn_tail_bytes > 0);
    // LSN 3 is written again, in a new file with a new key (never twice
    // under one key: the nonce is the LSN).
    assert_eq!(store.append(batch(30)).await.unwrap(), 3);
    drop(store);
    assert_eq!(wal_files(dir.path()).len(), 2);
    let (store, report) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    assert_eq!((report.records, report.corrupt_records), (3, 0));
    assert_traces(&store, [1, 10, 30]);
}

#[test]
fn tampered_segment_files_are_detected() {
    let key = std::sync::Arc::new(EncryptionKey::from_bytes(&[7; 32]));
    let spans = segment_spans();
    let refs: Vec<_> = spans.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentWriteOptions {
        row_group_rows: 200,
        ..SegmentWriteOptions::default()
    };
    write_segment_with_key(dir.path(), 1, &refs, &[], &options, Some(&key)).unwrap();
    let path = dir.path().join(spans_file_name(1));
    let pristine = std::fs::read(&path).unwrap();
    assert!(!contains(&pristine, "api-gateway"));
    let resources_path = dir.path().join(resources_file_name(1));
    let resources = std::fs::read(&resources_path).unwrap();
    assert!(!contains(&resources, "api-gateway"));
    let segment = Segment::open_with_key(dir.path(), 1, Some(key.clone())).unwrap();
    assert_eq!(segment.read_all().unwrap().0.len(), spans.len());
    // Without the key: a clear error, not garbage.
    assert!(matches!(
        Segment::open(dir.path(), 1).unwrap_err(),
        StoreError::KeyRequired { .. }
    ));

    // A byte of a page (early in the file), of the footer (near the end).
    // (The first column chunk, trace_id, starts after the 4-byte magic.)
    for (at, when) in [(100, "read"), (pristine.len() - 40, "open")] {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x04;
        std::fs::write(&path, &bytes).unwrap();
        let error = match Segment::open_with_key(dir.path(), 1, Some(key.clone())) {
            Ok(segment) => {
                assert_eq!(when, "read", "opened with a damaged footer (byte {at})");
                segment.read_all().unwrap_err()
            }
            Err(error) => error,
        };
        match &error {
            StoreError::Decrypt { path: named, .. } => assert_eq!(named, &path),
            other => panic!("byte {at}: {other}"),
        }
    }
    std::fs::write(&path, &pristine).unwrap();
    // A byte of the resources file's first page: the spans read, then
    // their resources do not.
    let mut bytes = resources.clone();
    bytes[20] ^= 0x04;
    std::fs::write(&resources_path, &bytes).unwrap();
    let segment = Segment::open_with_key(dir.path(), 1, Some(key.clone())).unwrap();
    match segment.read_all().unwrap_err() {
        StoreError::Decrypt { path: named, .. } => assert_eq!(named, resources_path),
        other => panic!("{other}"),
    }
    std::fs::write(&resources_path, &resources).unwrap();
    // Renamed to another segment: the AAD binds the file to its id.
    std::fs::copy(&path, dir.path().join(spans_file_name(2))).unwrap();
    for name in [logs_file_name, resources_file_name] {
        std::fs::copy(dir.path().join(name(1)), dir.path().join(name(2))).unwrap();
    }
    assert!(matches!(
        Segment::open_with_key(dir.path(), 2, Some(key)).unwrap_err(),
        StoreError::Decrypt { .. }
    ));
}

#[tokio::test]
async fn plain_store_migrates_to_encryption_and_compaction_encrypts_old_segments() {
    let keys = keys();
    let key = std::sync::Arc::new(EncryptionKey::from_file(&keys.right).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let segments = dir.path().join("segments");

    // A plain store: one segment, and a record only in the WAL.
    let (store, _) = Store::open(options(dir.path(), None)).unwrap();
    store.append(batch(1)).await.unwrap();
    let plain_id = store.flush().unwrap().unwrap();
    store.append(batch(10)).await.unwrap();
    drop(store);
    assert!(contains(
        &std::fs::read(segments.join(spans_file_name(plain_id))).unwrap(),
        SPAN_CANARY
    ));

    // Opened with a key: the plain WAL replays, the plain segment reads.
    let (store, report) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    assert_eq!(report.records, 1);
    assert_traces(&store, [1, 10]);
    store.append(batch(20)).await.unwrap();
    let newest = wal_files(dir.path()).pop().unwrap();
    assert_eq!(
        std::fs::read(&newest).unwrap()[5],
        2,
        "new records are encrypted"
    );
    let encrypted_id = store.flush().unwrap().unwrap();
    assert!(
        Segment::open_with_key(&segments, encrypted_id, Some(key.clone()))
            .unwrap()
            .is_encrypted()
    );
    assert!(
        !Segment::open_with_key(&segments, plain_id, Some(key.clone()))
            .unwrap()
            .is_encrypted()
    );

    // Compaction rewrites both, encrypted.
    let merged = store.compact().unwrap().expect("two small segments");
    assert_eq!(store.segment_ids(), [merged]);
    assert!(
        Segment::open_with_key(&segments, merged, Some(key))
            .unwrap()
            .is_encrypted()
    );
    assert_traces(&store, [1, 2, 10, 20, 22]);
    store.close();
    drop(store);
    assert_no_plaintext(dir.path());

    let (store, _) = Store::open(options(dir.path(), Some(&keys.right))).unwrap();
    assert_traces(&store, [1, 2, 10, 20, 22]);
    drop(store);
    assert!(matches!(
        Store::open(options(dir.path(), None)).unwrap_err(),
        StoreError::KeyRequired { .. }
    ));
}

/// Spans (with resources and scopes) of four batches, as the hot tier holds them.
fn segment_spans() -> Vec<tracewarden_store::SpanRecord> {
    {
        let store_dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (store, _) = Store::open(options(store_dir.path(), None)).unwrap();
        for first in [1, 10, 20, 30] {
            runtime.block_on(store.append(batch(first))).unwrap();
        }
        let mut spans = Vec::new();
        for trace in [1, 2, 3, 10, 11, 12, 20, 21, 22, 30, 31, 32] {
            spans.extend(store.trace(trace_id(trace)).unwrap().spans);
        }
        spans
    }
}
