//! The store's contract: appends are readable at once and after a reopen,
//! group commit shares fsyncs, overload is refused without queueing, and a
//! failed write or fsync is never acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::*;
use tracewarden_model::{AnyValue, Batch, KeyValue};
use tracewarden_store::{Store, StoreError, StoreOptions, WalOptions};

/// Polls a future once, without a runtime's help.
fn poll_once<F: std::future::Future>(future: F) -> Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls `condition` until it holds; panics (naming `what`) after a generous
/// bound so a broken store fails the test instead of hanging it.
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn append_sharing_hands_back_the_spans_the_hot_tier_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions::new(dir.path())).unwrap();
    let batch = realistic_batch(1, 25);
    let (lsn, mut records) = store.append_sharing(batch.clone()).await.unwrap();
    assert_eq!(lsn, 1);
    // In the batch's order, each span once, with its resource and scope.
    let original: Vec<_> = batch.spans().map(|(_, _, s)| s.clone()).collect();
    let returned: Vec<_> = records.spans.iter().map(|r| (*r.span).clone()).collect();
    assert_eq!(returned, original);
    assert_eq!(records.logs.len(), batch.log_count());
    // Shared, not copied: the same allocation as the hot tier's.
    let trace3 = store.trace(trace_id(3)).unwrap();
    let held = records
        .spans
        .iter()
        .find(|r| r.span.span_id == trace3.spans[0].span.span_id)
        .unwrap();
    assert!(Arc::ptr_eq(&held.span, &trace3.spans[0].span));
    // A change on the caller's side copies that span: the store keeps what
    // was written.
    let index = records
        .spans
        .iter()
        .position(|r| Arc::ptr_eq(&r.span, &trace3.spans[0].span))
        .unwrap();
    records.spans[index]
        .span_mut()
        .attributes
        .push(KeyValue::new("geo.country.iso_code", "NL"));
    let again = store.trace(trace_id(3)).unwrap();
    assert_eq!(again.spans[0].span, trace3.spans[0].span);
    assert!(
        again.spans[0]
            .span
            .attributes
            .iter()
            .all(|kv| kv.key != "geo.country.iso_code")
    );
}

#[tokio::test]
async fn append_then_trace_round_trip_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!(report.records, 0);

    let batch = realistic_batch(1, 25); // traces 1, 2 (10 spans each) and 3 (5 spans)
    let lsn = store.append(batch.clone()).await.unwrap();
    assert_eq!(lsn, 1);
    let lsn = store.append(small_batch(2)).await.unwrap();
    assert_eq!(lsn, 2);

    let check = |store: &Store| {
        let trace = store.trace(trace_id(2)).expect("trace 2");
        assert_eq!(trace.trace_id, trace_id(2));
        assert_eq!(trace.spans.len(), 11);
        let starts: Vec<u64> = trace
            .spans
            .iter()
            .map(|s| s.span.start_time_unix_nano)
            .collect();
        let mut sorted = starts.clone();
        sorted.sort();
        assert_eq!(starts, sorted, "spans ordered by start time");
        assert_eq!(trace.logs.len(), 1);
        assert_eq!(trace.logs[0].record.body, AnyValue::from("login attempt"));
        let original: Vec<_> = batch
            .spans()
            .filter(|(_, _, s)| s.trace_id == trace_id(3))
            .map(|(_, _, s)| s)
            .collect();
        let trace3 = store.trace(trace_id(3)).unwrap();
        let stored: Vec<_> = trace3.spans.iter().map(|s| &*s.span).collect();
        assert_eq!(stored, original);
        // The spans of one resource share it rather than copying it.
        assert!(Arc::ptr_eq(
            &trace3.spans[0].resource,
            &trace3.spans[4].resource
        ));
        assert!(Arc::ptr_eq(&trace3.spans[0].scope, &trace3.spans[4].scope));
        assert_eq!(trace3.spans[0].resource.service_name(), "api-gateway");
        assert_eq!(trace3.spans[0].scope.name, "io.opentelemetry.tomcat-10.0");
        assert!(store.trace(trace_id(99)).is_none());

        let stats = store.stats();
        assert_eq!((stats.spans, stats.logs, stats.traces), (26, 1, 3));
        assert_eq!(stats.last_lsn, 2);
    };
    check(&store);
    let stats = store.stats();
    assert_eq!(stats.appends, 2);
    assert_eq!(
        stats.fsyncs, 3,
        "the new file's header, then one per append"
    );
    assert_eq!(
        stats.wal_fsync.count, stats.fsyncs,
        "every fsync of a WAL file is timed"
    );
    assert_eq!(
        stats.wal_fsync.cumulative.len(),
        tracewarden_store::FSYNC_BUCKETS.len()
    );
    assert_eq!(stats.wal_files, 1);
    assert_eq!(
        stats.wal_bytes,
        std::fs::metadata(&wal_files(dir.path())[0]).unwrap().len()
    );
    // Dropped without close(): no flush into a segment, so the reopen
    // replays these records from the WAL.
    drop(store);

    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!(
        (report.records, report.spans, report.logs, report.last_lsn),
        (2, 26, 1, 2)
    );
    assert_eq!((report.torn_tail_bytes, report.corrupt_records), (0, 0));
    check(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_fsyncs() {
    const APPENDS: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(FaultyDirectory::new(dir.path().join("wal")));
    let faults = Arc::clone(&directory.faults);
    let (store, _) = Store::open_in(directory, WalOptions::default()).unwrap();
    let store = Arc::new(store);
    let fsyncs_at_open = store.stats().fsyncs;

    // Stall the disk so appends pile up behind the first group's fsync,
    // which makes the grouping certain rather than likely.
    let hold = faults.hold_syncs();
    let tasks: Vec<_> = (0..APPENDS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append(small_batch(i)).await })
        })
        .collect();
    wait_for("every append to queue behind the stalled fsync", || {
        store.stats().pending_appends == APPENDS && faults.blocked_syncs.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(
        store.stats().appends,
        0,
        "nothing acknowledged before its fsync"
    );
    drop(hold);

    let mut lsns = BTreeSet::new();
    for task in tasks {
        lsns.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(
        lsns,
        (1..=APPENDS).collect(),
        "every append got its own LSN"
    );
    let stats = store.stats();
    let fsyncs = stats.fsyncs - fsyncs_at_open;
    assert_eq!(stats.appends, APPENDS);
    assert!(fsyncs < APPENDS, "{fsyncs} fsyncs for {APPENDS} appends");
    assert!(
        fsyncs <= 2,
        "the stalled group and one group of the rest, got {fsyncs}"
    );
    assert_eq!((stats.pending_appends, stats.pending_bytes), (0, 0));
    for i in 0..APPENDS {
        assert!(
            store.trace(trace_id(i)).is_some(),
            "trace {i} in the hot tier"
        );
    }
    // Dropped without close(): no flush into a segment, so the reopen
    // replays these records from the WAL.
    drop(store);

    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!(report.records, APPENDS);
    for i in 0..APPENDS {
        assert!(store.trace(trace_id(i)).is_some(), "trace {i} after reopen");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_batch_of_many_writers_survives_reopen() {
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions::new(dir.path())).unwrap();
    let store = Arc::new(store);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..PER_WRITER {
                    let trace = w * 1_000 + i;
                    let lsn = store.append(small_batch(trace)).await.unwrap();
                    acknowledged.push((trace, lsn));
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    let stats = store.stats();
    assert_eq!(stats.appends, WRITERS * PER_WRITER);
    assert!(stats.fsyncs <= stats.appends + 1);
    // Dropped without close(): no flush into a segment, so the reopen
    // replays these records from the WAL.
    drop(store);

    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!(report.records, WRITERS * PER_WRITER);
    assert_eq!(report.last_lsn, WRITERS * PER_WRITER);
    for (trace, lsn) in acknowledged {
        let found = store
            .trace(trace_id(trace))
            .unwrap_or_else(|| panic!("trace {trace} (lsn {lsn}) lost"));
        assert_eq!(found.spans.len(), 1);
        assert_eq!(found.logs.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_when_the_writer_is_held_busy() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(FaultyDirectory::new(dir.path().join("wal")));
    let faults = Arc::clone(&directory.faults);
    let options = WalOptions {
        max_pending_bytes: 64,
        ..WalOptions::default()
    };
    let (store, _) = Store::open_in(directory, options).unwrap();
    let store = Arc::new(store);

    let hold = faults.hold_syncs();
    let first = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.append(small_batch(1)).await }
    });
    wait_for("the first append to reach the stalled fsync", || {
        faults.blocked_syncs.load(Ordering::SeqCst) == 1
    })
    .await;
    let queued_bytes = store.stats().pending_bytes;
    assert!(
        queued_bytes > 64,
        "a lone batch over the limit is still taken"
    );

    // Refused at once: the first poll answers, nothing waits for the writer.
    match poll_once(store.append(small_batch(2))) {
        Poll::Ready(Err(StoreError::Overloaded { retry_after })) => {
            assert!(retry_after > Duration::ZERO)
        }
        Poll::Ready(other) => panic!("expected Overloaded, got {other:?}"),
        Poll::Pending => panic!("the append was queued instead of refused"),
    }
    assert_eq!(
        store.stats().pending_bytes,
        queued_bytes,
        "the refused batch was not queued"
    );
    assert!(store.trace(trace_id(2)).is_none());

    drop(hold);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    // With the writer free again, appends are taken.
    assert_eq!(store.append(small_batch(2)).await.unwrap(), 2);
    assert!(store.trace(trace_id(2)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_fsync_is_never_acknowledged_and_fails_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(FaultyDirectory::new(dir.path().join("wal")));
    let faults = Arc::clone(&directory.faults);
    let (store, _) = Store::open_in(directory, WalOptions::default()).unwrap();
    let store = Arc::new(store);
    assert_eq!(store.append(small_batch(0)).await.unwrap(), 1);

    // Several appends waiting on the failing fsync: none may see Ok.
    let hold = faults.hold_syncs();
    faults.fail_sync.store(true, Ordering::SeqCst);
    let tasks: Vec<_> = (1..=10)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append(small_batch(i)).await })
        })
        .collect();
    wait_for("the appends to queue", || {
        store.stats().pending_appends == 10
    })
    .await;
    drop(hold);
    for task in tasks {
        match task.await.unwrap() {
            Err(StoreError::Io { op, .. }) => assert_eq!(op, "fsync WAL file"),
            Err(StoreError::Failed { .. }) => {}
            other => panic!("an append under a failed fsync returned {other:?}"),
        }
    }
    for i in 1..=10 {
        assert!(
            store.trace(trace_id(i)).is_none(),
            "unacknowledged trace {i} visible"
        );
    }

    // The failure sticks, even though the disk "recovered": no retry of fsync.
    faults.fail_sync.store(false, Ordering::SeqCst);
    assert!(matches!(
        store.append(small_batch(11)).await,
        Err(StoreError::Failed { .. })
    ));
    let stats = store.stats();
    assert_eq!((stats.appends, stats.last_lsn), (1, 1));
    assert_eq!((stats.pending_appends, stats.pending_bytes), (0, 0));
    // Dropped without close(): no flush into a segment, so the reopen
    // replays these records from the WAL.
    drop(store);

    // A reopen replays what reached the file: at least the acknowledged record.
    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert!(report.records >= 1);
    assert!(store.trace(trace_id(0)).is_some());
}

#[tokio::test]
async fn failed_write_is_never_acknowledged_and_the_torn_record_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(FaultyDirectory::new(dir.path().join("wal")));
    let faults = Arc::clone(&directory.faults);
    let (store, _) = Store::open_in(directory, WalOptions::default()).unwrap();
    assert_eq!(store.append(small_batch(0)).await.unwrap(), 1);

    faults.fail_write.store(true, Ordering::SeqCst);
    match store.append(small_batch(1)).await {
        Err(StoreError::Io { op, .. }) => assert_eq!(op, "write WAL file"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(matches!(
        store.append(small_batch(2)).await,
        Err(StoreError::Failed { .. })
    ));
    // Dropped without close(): no flush into a segment, so the reopen
    // replays these records from the WAL.
    drop(store);

    // Half a record reached the file: replay cuts it as a torn tail.
    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!(report.records, 1);
    assert!(report.torn_tail_bytes > 0);
    assert!(store.trace(trace_id(1)).is_none());
    // LSNs continue after the last good record.
    assert_eq!(store.append(small_batch(3)).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_append_still_reaches_the_hot_tier_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(FaultyDirectory::new(dir.path().join("wal")));
    let faults = Arc::clone(&directory.faults);
    let (store, _) = Store::open_in(directory, WalOptions::default()).unwrap();
    let hold = faults.hold_syncs();
    // The caller gives up (a client disconnected) while the record waits
    // for its fsync: the record is durable anyway, so it must be readable.
    assert!(poll_once(store.append(small_batch(1))).is_pending());
    drop(hold);
    wait_for("the record to reach the hot tier", || {
        store.trace(trace_id(1)).is_some()
    })
    .await;
    assert_eq!(store.stats().appends, 1);
}

#[tokio::test]
async fn close_drains_what_was_queued_and_refuses_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions::new(dir.path())).unwrap();
    store.append(small_batch(1)).await.unwrap();
    store.close();
    store.close(); // idempotent
    assert!(matches!(
        store.append(small_batch(2)).await,
        Err(StoreError::Closed)
    ));
    drop(store);
    // close() flushed the record into a segment: replay skips it.
    let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!((report.records, report.skipped_records), (0, 1));
    assert!(store.trace(trace_id(1)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_before_close_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(FaultyDirectory::new(dir.path().join("wal")));
    let faults = Arc::clone(&directory.faults);
    let (store, _) = Store::open_in(directory, WalOptions::default()).unwrap();
    let store = Arc::new(store);
    let hold = faults.hold_syncs();
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append(small_batch(i)).await })
        })
        .collect();
    wait_for("the appends to queue", || {
        store.stats().pending_appends == 5
    })
    .await;
    let closer = std::thread::spawn({
        let store = Arc::clone(&store);
        move || store.close()
    });
    drop(hold);
    closer.join().unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.stats().appends, 5);
}

#[tokio::test]
async fn lsns_continue_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let (store, report) = Store::open(StoreOptions::new(dir.path())).unwrap();
        assert_eq!(report.last_lsn, round * 3);
        assert_eq!(report.records, round * 3);
        for i in 1..=3 {
            assert_eq!(
                store.append(small_batch(round * 10 + i)).await.unwrap(),
                round * 3 + i
            );
        }
        assert_eq!(store.stats().last_lsn, round * 3 + 3);
    }
    // Nothing was ever rotated: every round continued the same file.
    assert_eq!(wal_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn rotates_across_files_and_replays_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_bytes: 8 * 1024,
        ..no_fsync()
    };
    let (store, _) = open(dir.path(), options.clone());
    for i in 0..40 {
        assert_eq!(
            store.append(realistic_batch(i * 100, 5)).await.unwrap(),
            i + 1
        );
    }
    let stats = store.stats();
    // Dropped without close(): no flush into a segment, so the reopen
    // replays these records from the WAL.
    drop(store);

    let files = wal_files(dir.path());
    assert!(files.len() >= 5, "{} files", files.len());
    assert_eq!(stats.wal_files, files.len() as u64);
    let on_disk: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(stats.wal_bytes, on_disk);
    let mut expected_lsn = 1;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let ranges = record_ranges(&bytes);
        assert!(!ranges.is_empty());
        // A file is named for its first record, and records continue across files.
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("wal-{expected_lsn:020}.log"));
        for range in &ranges {
            assert_eq!(record_lsn(&bytes, range), expected_lsn);
            expected_lsn += 1;
        }
        assert!(
            bytes.len() as u64 <= options.segment_bytes,
            "{name} is {} bytes",
            bytes.len()
        );
    }
    assert_eq!(expected_lsn, 41);

    let (store, report) = open(dir.path(), options);
    assert_eq!(
        (report.files, report.records, report.spans),
        (files.len() as u64, 40, 200)
    );
    for i in 0..40 {
        assert_eq!(
            store.trace(trace_id(i * 100)).unwrap().spans.len(),
            5,
            "trace {}",
            i * 100
        );
    }
    assert_eq!(store.append(small_batch(1)).await.unwrap(), 41);
}

#[tokio::test]
async fn a_record_larger_than_a_segment_gets_a_file_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_bytes: 1024,
        ..no_fsync()
    };
    let (store, _) = open(dir.path(), options.clone());
    store.append(small_batch(1)).await.unwrap();
    store.append(realistic_batch(10, 20)).await.unwrap();
    store.append(small_batch(2)).await.unwrap();
    drop(store);
    assert_eq!(wal_files(dir.path()).len(), 3);
    let (store, report) = open(dir.path(), options);
    assert_eq!(report.records, 3);
    assert_eq!(store.trace(trace_id(11)).unwrap().spans.len(), 10);
}

#[tokio::test]
async fn batches_the_codec_refuses_are_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions::new(dir.path())).unwrap();
    let mut deep = AnyValue::Int(0);
    for _ in 0..100 {
        deep = AnyValue::Array(vec![deep]);
    }
    let mut batch: Batch = small_batch(1);
    batch.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(KeyValue::new("deep", deep));
    assert!(matches!(
        store.append(batch).await,
        Err(StoreError::Codec(_))
    ));
    assert_eq!(store.stats().appends, 0);
    assert!(store.trace(trace_id(1)).is_none());
    // The store is still healthy.
    assert_eq!(store.append(small_batch(2)).await.unwrap(), 1);
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        wal: WalOptions {
            segment_bytes: 10,
            ..WalOptions::default()
        },
        ..StoreOptions::new(dir.path())
    };
    assert!(matches!(
        Store::open(options),
        Err(StoreError::InvalidOptions(_))
    ));
}

#[test]
fn wal_options_deserialize_with_defaults_and_reject_unknown_keys() {
    let options: WalOptions = serde_json::from_str(r#"{"fsync": false}"#).unwrap();
    assert_eq!(
        options,
        WalOptions {
            fsync: false,
            ..WalOptions::default()
        }
    );
    assert!(serde_json::from_str::<WalOptions>(r#"{"fsnyc": false}"#).is_err());
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn append_works_without_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions::new(dir.path())).unwrap();
    let lsn = futures_lite_block_on(store.append(small_batch(5)));
    assert_eq!(lsn.unwrap(), 1);
    assert!(store.trace(trace_id(5)).is_some());
}

/// A minimal executor: polls on the current thread, parking between wakes.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::Wake;
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}
