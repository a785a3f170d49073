//! Crash safety of the lifecycle: a failure injected at each step of flush,
//! compaction and retention, then the store dropped as by a crash and
//! reopened. Every acknowledged span must be readable exactly once (counted
//! by span id) and `verify` must pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lifecycle_support;

use common::trace_id;
use lifecycle_support::*;
use tracewarden_store::{FailPoint, RetentionOptions, Store, StoreError, StoreOptions};

fn options(dir: &std::path::Path, injector: &Injector, point: FailPoint) -> StoreOptions {
    StoreOptions {
        fail_points: Some(injector.hook(point)),
        ..manual(dir)
    }
}

#[track_caller]
fn assert_injected<T: std::fmt::Debug>(result: Result<T, StoreError>, point: FailPoint) {
    match result {
        Err(StoreError::Injected { point: at }) => assert_eq!(at, point),
        other => panic!("expected an injected failure at {point}, got {other:?}"),
    }
}

/// Reopens without failure injection and checks the store is whole, and
/// that it goes on working (flush, compaction) and still verifies.
async fn reopen_and_check(dir: &std::path::Path, acked: &mut Acked) -> Store {
    let (store, _) = Store::open(manual(dir)).unwrap();
    assert_exactly_once(&store, acked);
    assert_verifies(dir);
    acked.append_range(&store, 900..903).await;
    store.flush().unwrap();
    store.compact().unwrap();
    assert_exactly_once(&store, acked);
    assert_verifies(dir);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_segment_files_before_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let injector = Injector::default();
    let point = FailPoint::FlushSegmentWritten;
    let (store, _) = Store::open(options(dir.path(), &injector, point)).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..5).await;
    assert_eq!(store.flush().unwrap(), Some(1));
    acked.append_range(&store, 5..10).await;

    injector.arm();
    assert_injected(store.flush(), point);
    // A retry stops at the same point; reads still see everything once.
    assert_injected(store.flush(), point);
    assert_eq!(injector.fired.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_exactly_once(&store, &acked);
    assert!(has_file(dir.path(), &spans_name(2)));
    assert!(!has_file(dir.path(), &manifest_name(2)));
    drop(store);

    // The files without a manifest are removed; the WAL replays their data.
    let store = reopen_and_check(dir.path(), &mut acked).await;
    drop(store);
    let (_, report) = Store::open(manual(dir.path())).unwrap();
    assert_eq!(report.records, 0, "everything is in segments now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_manifest_before_wal_trim() {
    let dir = tempfile::tempdir().unwrap();
    let injector = Injector::default();
    let point = FailPoint::FlushManifestWritten;
    let (store, _) = Store::open(options(dir.path(), &injector, point)).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..5).await;
    let wal_files_before = store.stats().wal_files;
    assert_eq!(wal_files_before, 5);

    injector.arm();
    assert_injected(store.flush(), point);
    assert!(has_file(dir.path(), &manifest_name(1)));
    assert_eq!(store.stats().wal_files, wal_files_before, "not trimmed");
    assert_eq!(store.stats().segments, 1);
    assert_exactly_once(&store, &acked);
    drop(store);

    // Replay skips the records the manifest covers: no duplicates.
    let (store, report) = Store::open(manual(dir.path())).unwrap();
    assert_eq!((report.records, report.skipped_records), (0, 5));
    assert_exactly_once(&store, &acked);
    drop(store);
    let store = reopen_and_check(dir.path(), &mut acked).await;
    // The next flush trimmed what the first one could not.
    assert_eq!(store.stats().wal_files, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let injector = Injector::default();
    let point = FailPoint::CompactionManifestWritten;
    let (store, _) = Store::open(options(dir.path(), &injector, point)).unwrap();
    let mut acked = Acked::default();
    for round in 0..3 {
        acked.append_range(&store, round * 10..round * 10 + 3).await;
        assert_eq!(store.flush().unwrap(), Some(round + 1));
    }
    acked.append_range(&store, 100..102).await; // still in the hot tier

    injector.arm();
    assert_injected(store.compact(), point);
    // The merged segment is durable, the old ones are still there.
    assert!(has_file(dir.path(), &manifest_name(4)));
    for old in 1..=3 {
        assert!(has_file(dir.path(), &spans_name(old)), "segment {old}");
    }
    assert_eq!(store.segment_ids(), [1, 2, 3], "not published yet");
    assert_exactly_once(&store, &acked);
    drop(store);

    let (store, _) = Store::open(manual(dir.path())).unwrap();
    assert_eq!(store.segment_ids(), [4]);
    for old in 1..=3 {
        assert!(!has_file(dir.path(), &spans_name(old)), "segment {old}");
        assert!(!has_file(dir.path(), &manifest_name(old)), "segment {old}");
    }
    drop(store);
    reopen_and_check(dir.path(), &mut acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_retention() {
    let dir = tempfile::tempdir().unwrap();
    let injector = Injector::default();
    let point = FailPoint::RetentionDropRecorded;
    let (store, _) = Store::open(options(dir.path(), &injector, point)).unwrap();
    let mut acked = Acked::default();
    for round in 0..3 {
        acked.append_range(&store, round * 10..round * 10 + 3).await;
        store.flush().unwrap();
    }
    drop(store);

    // Keep only what fits in two segments: the oldest goes.
    let bytes = store_segment_bytes(dir.path());
    let limit = bytes - 1;
    let with_retention = |fail: bool| {
        let mut options = if fail {
            options(dir.path(), &injector, point)
        } else {
            manual(dir.path())
        };
        options.lifecycle.retention = RetentionOptions {
            max_age: None,
            max_total_bytes: Some(limit),
        };
        options
    };
    let (store, _) = Store::open(with_retention(true)).unwrap();
    injector.arm();
    assert_injected(store.enforce_retention(), point);
    let log = std::fs::read_to_string(segments_dir(dir.path()).join("retention.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("max_total_bytes"), "{log}");
    assert!(has_file(dir.path(), &spans_name(1)), "not deleted yet");
    drop(store);

    // The recorded drop is finished at open.
    let (store, _) = Store::open(with_retention(false)).unwrap();
    assert_eq!(store.segment_ids(), [2, 3]);
    assert!(!has_file(dir.path(), &spans_name(1)));
    assert!(!has_file(dir.path(), &manifest_name(1)));
    let dropped: Vec<_> = (0..3).map(trace_id).collect();
    assert_absent(&store, dropped.clone());
    let mut kept = acked.without(dropped);
    assert_exactly_once(&store, &kept);
    drop(store);
    reopen_and_check(dir.path(), &mut kept).await;
}

/// Total bytes of the segments of a closed store.
fn store_segment_bytes(dir: &std::path::Path) -> u64 {
    let (store, _) = Store::open(manual(dir)).unwrap();
    store.stats().segment_bytes
}
