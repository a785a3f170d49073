//! Flushing the hot tier into segments: what reads see before, during and
//! after, the WAL trim, the triggers, graceful shutdown, retries, and
//! searches across every tier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lifecycle_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{realistic_batch, small_batch, trace_id};
use lifecycle_support::*;
use tracewarden_model::{AnyValue, KeyValue};
use tracewarden_store::{
    DedicatedColumn, FailPoint, LifecycleOptions, SpanFilter, Store, StoreOptions, WalOptions,
    verify,
};

/// Polls `condition` (bounded, so a broken store fails instead of hanging).
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_moves_the_hot_tier_into_a_segment_and_trims_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..8).await;
    let before: Vec<_> = (0..8).map(|n| store.trace(trace_id(n)).unwrap()).collect();
    assert_eq!(store.stats().wal_files, 8);

    assert_eq!(store.flush().unwrap(), Some(1));
    let stats = store.stats();
    assert_eq!((stats.spans, stats.logs, stats.traces), (0, 0, 0));
    assert_eq!((stats.segments, stats.segment_spans), (1, acked.spans()));
    assert_eq!((stats.flushes, stats.flush_failures), (1, 0));
    assert!(stats.segment_bytes > 0);
    // Every WAL file but the newest held only flushed records.
    assert_eq!((stats.wal_files, stats.trimmed_wal_files), (1, 7));
    assert_eq!(common::wal_files(dir.path()).len(), 1);
    assert_exactly_once(&store, &acked);
    // Same spans, same order, same values (attributes may be reordered).
    for (n, old) in before.iter().enumerate() {
        let new = store.trace(trace_id(n as u64)).unwrap();
        assert_eq!(new.spans.len(), old.spans.len());
        for (a, b) in new.spans.iter().zip(&old.spans) {
            assert_eq!(a.span.span_id, b.span.span_id);
            assert_eq!(a.span.name, b.span.name);
            assert_eq!(a.span.start_time_unix_nano, b.span.start_time_unix_nano);
            let mut attributes = a.span.attributes.clone();
            let mut expected = b.span.attributes.clone();
            attributes.sort_by(|x, y| x.key.cmp(&y.key));
            expected.sort_by(|x, y| x.key.cmp(&y.key));
            assert_eq!(attributes, expected);
            assert_eq!(*a.resource, *b.resource);
        }
    }
    assert_eq!(store.flush().unwrap(), None, "nothing left to flush");
    assert_verifies(dir.path());
    drop(store);

    let (store, report) = Store::open(manual(dir.path())).unwrap();
    assert_eq!(
        report.records + report.skipped_records,
        1,
        "only the newest WAL file is left"
    );
    assert_eq!(report.records, 0);
    assert_eq!(store.stats().segments, 1);
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_span_the_hot_tier_and_several_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    // Trace 7 gets spans in three flushes and in the hot tier.
    let mut expected = 0;
    for round in 0..4u64 {
        let mut batch = realistic_batch(7, 10);
        let spans = &mut batch.resource_spans[0].scope_spans[0].spans;
        for (i, span) in spans.iter_mut().enumerate() {
            span.span_id = common::span_id(round * 100 + i as u64);
            span.start_time_unix_nano = 1_000 + (3 - round) * 100 + i as u64;
        }
        expected += 10;
        store.append(batch).await.unwrap();
        if round < 3 {
            store.flush().unwrap();
        }
    }
    store.append(small_batch(7)).await.unwrap(); // one more span and a log
    expected += 1;
    assert_eq!(store.segment_ids(), [1, 2, 3]);
    let trace = store.trace(trace_id(7)).unwrap();
    assert_eq!(trace.spans.len(), expected);
    let starts: Vec<u64> = trace
        .spans
        .iter()
        .map(|s| s.span.start_time_unix_nano)
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "ordered by start time across tiers");
    assert_eq!(trace.logs.len(), 1);
    assert!(store.trace(trace_id(8)).is_none());
}

#[test]
fn readers_never_see_a_span_twice_or_miss_one_while_flushing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let store = Arc::new(store);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut acked = Acked::default();
    runtime.block_on(acked.append_range(&store, 0..20));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|reader| {
            let (store, done, acked) = (Arc::clone(&store), Arc::clone(&done), acked.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads < 50 {
                    let n = (reads * 7 + reader) % 20;
                    let trace = store.trace(trace_id(n)).expect("trace readable");
                    let ids: std::collections::BTreeSet<_> =
                        trace.spans.iter().map(|s| s.span.span_id).collect();
                    assert_eq!(trace.spans.len(), 10, "trace {n}");
                    assert_eq!(&ids, &acked.0[&trace_id(n)], "trace {n}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 0..5 {
        runtime.block_on(acked.append_range(&store, 100 + round * 3..103 + round * 3));
        store.flush().unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() >= 50);
    }
    assert_eq!(store.stats().segments, 5);
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_spans_searches_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..3).await;
    store.flush().unwrap();
    acked.append_range(&store, 3..6).await; // hot tier
    // realistic spans n of a trace have client.address 203.0.113.n.
    let filter = SpanFilter {
        equals: vec![(DedicatedColumn::ClientAddress, "203.0.113.4".into())],
        ..SpanFilter::default()
    };
    let found = store.find_spans(&filter).unwrap();
    let traces: Vec<_> = found.iter().map(|s| s.span.trace_id).collect();
    assert_eq!(traces, (0..6).map(trace_id).collect::<Vec<_>>());
    for span in &found {
        assert_eq!(
            span.span.attribute("client.address"),
            Some(&AnyValue::from("203.0.113.4"))
        );
    }
    // Status 404 is span 4 of each trace; the time range keeps traces 1..=4.
    let first = realistic_batch(1, 1)
        .spans()
        .next()
        .unwrap()
        .2
        .start_time_unix_nano;
    let after = realistic_batch(5, 1)
        .spans()
        .next()
        .unwrap()
        .2
        .start_time_unix_nano;
    let filter = SpanFilter {
        start_unix_nano: Some(first),
        end_unix_nano: Some(after),
        service_name: Some("api-gateway".into()),
        equals: vec![(DedicatedColumn::HttpResponseStatusCode, "404".into())],
        trace_ids: None,
        attribute_equals: Vec::new(),
        limit: None,
    };
    let found = store.find_spans(&filter).unwrap();
    let traces: Vec<_> = found.iter().map(|s| s.span.trace_id).collect();
    assert_eq!(traces, (1..5).map(trace_id).collect::<Vec<_>>());
    let limited = store
        .find_spans(&SpanFilter {
            limit: Some(2),
            ..filter.clone()
        })
        .unwrap();
    assert_eq!(limited.len(), 2);
    let none = store
        .find_spans(&SpanFilter {
            service_name: Some("billing".into()),
            ..filter
        })
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_thread_flushes_by_size_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let by_size = StoreOptions {
        lifecycle_thread: true,
        lifecycle: LifecycleOptions {
            flush_spans: 50,
            ..LifecycleOptions::default()
        },
        ..manual(dir.path())
    };
    let (store, _) = Store::open(by_size).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..4).await;
    assert_eq!(store.stats().segments, 0, "40 spans: under the threshold");
    acked.append_range(&store, 4..6).await;
    wait_for("a flush by size", || store.stats().segments == 1).await;
    assert_exactly_once(&store, &acked);
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let by_age = StoreOptions {
        lifecycle_thread: true,
        lifecycle: LifecycleOptions {
            flush_age: Duration::from_millis(200),
            ..LifecycleOptions::default()
        },
        ..manual(dir.path())
    };
    let (store, _) = Store::open(by_age).unwrap();
    let mut acked = Acked::default();
    acked.append(&store, 1).await;
    wait_for("a flush by age", || store.stats().segments == 1).await;
    assert_exactly_once(&store, &acked);
    assert_eq!(store.stats().spans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_and_drop_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        wal: WalOptions::default(),
        ..manual(dir.path())
    };
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..3).await;
    drop(store);
    let (store, report) = Store::open(options.clone()).unwrap();
    assert_eq!((report.records, store.stats().segments), (3, 0));
    store.close();
    assert_eq!(store.stats().segments, 1);
    assert!(has_file(dir.path(), &spans_name(1)));
    drop(store);
    let (store, report) = Store::open(options).unwrap();
    // One WAL file, never trimmed (the newest), all of it skipped.
    assert_eq!((report.records, report.skipped_records), (0, 3));
    assert_exactly_once(&store, &acked);
    assert_verifies(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_is_retried_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let injector = Injector::default();
    for point in [
        FailPoint::FlushSegmentWritten,
        FailPoint::FlushManifestWritten,
    ] {
        let (store, _) = Store::open(StoreOptions {
            fail_points: Some(injector.hook(point)),
            ..manual(dir.path())
        })
        .unwrap();
        let mut acked = Acked::default();
        let first = store.segment_ids().len() as u64 * 100;
        acked.append_range(&store, first..first + 4).await;
        injector.arm();
        assert!(store.flush().is_err(), "{point}");
        assert_eq!(store.stats().flush_failures, 1);
        // Appends go on while the flush is stuck.
        acked.append_range(&store, first + 50..first + 52).await;
        assert_exactly_once(&store, &acked);
        injector.disarm();
        assert!(store.flush().unwrap().is_some(), "{point}");
        let state = store.stats();
        assert_eq!((state.spans, state.logs), (0, 0), "{point}: all flushed");
        assert_exactly_once(&store, &acked);
        assert_verifies(dir.path());
        drop(store);
        let (store, report) = Store::open(manual(dir.path())).unwrap();
        assert_eq!(report.records, 0, "{point}");
        assert_exactly_once(&store, &acked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_are_signed_with_the_configured_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("manifest.key");
    tracewarden_store::integrity::generate_signing_key(&key_path).unwrap();
    let options = StoreOptions {
        lifecycle: LifecycleOptions {
            signing_key_file: Some(key_path.clone()),
            ..LifecycleOptions::default()
        },
        ..manual(dir.path())
    };
    let (store, _) = Store::open(options).unwrap();
    let mut acked = Acked::default();
    acked.append_range(&store, 0..2).await;
    store.flush().unwrap();
    drop(store);
    let manifest =
        std::fs::read_to_string(segments_dir(dir.path()).join(manifest_name(1))).unwrap();
    assert!(manifest.contains("\"signature\""), "{manifest}");
    let public = tracewarden_store::integrity::load_signing_key(&key_path)
        .unwrap()
        .verifying_key();
    let report = verify(dir.path(), Some(&public)).unwrap();
    assert!(report.ok, "{:?}", report.findings);

    let missing = StoreOptions {
        lifecycle: LifecycleOptions {
            signing_key_file: Some(dir.path().join("nope.key")),
            ..LifecycleOptions::default()
        },
        ..manual(dir.path())
    };
    let error = Store::open(missing).unwrap_err().to_string();
    assert!(error.contains("nope.key"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraced_logs_and_empty_batches_are_flushed_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let mut batch = small_batch(1);
    batch.resource_spans.clear();
    for scope_logs in &mut batch.resource_logs[0].scope_logs {
        for log in &mut scope_logs.log_records {
            log.trace_id = None;
            log.attributes.push(KeyValue::new("event.name", "login"));
        }
    }
    store.append(batch).await.unwrap();
    store
        .append(tracewarden_model::Batch::default())
        .await
        .unwrap();
    store.append(small_batch(2)).await.unwrap();
    assert_eq!(store.logs_without_trace().len(), 1);
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!((stats.segment_logs, stats.segment_spans), (2, 1));
    assert_eq!(stats.wal_files, 1, "the empty batch's file was trimmed too");
    assert!(store.trace(trace_id(2)).is_some());
}

/// A store whose memory holds `MEMORY_LIMIT_FLUSHES` x 10 rows, full, with
/// nothing flushing it (no lifecycle thread); appends wait `memory_wait`.
async fn full_store(dir: &std::path::Path, memory_wait: Duration) -> (Arc<Store>, Acked) {
    let options = StoreOptions {
        lifecycle: LifecycleOptions {
            flush_spans: 10,
            memory_wait,
            ..LifecycleOptions::default()
        },
        ..manual(dir)
    };
    let (store, _) = Store::open(options).unwrap();
    let mut acked = Acked::default();
    // Each batch is 10 rows.
    acked
        .append_range(&store, 0..tracewarden_store::MEMORY_LIMIT_FLUSHES)
        .await;
    (Arc::new(store), acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_refused_while_flushes_are_behind() {
    let dir = tempfile::tempdir().unwrap();
    let wait = Duration::from_millis(50);
    let (store, mut acked) = full_store(dir.path(), wait).await;
    let full = tracewarden_store::MEMORY_LIMIT_FLUSHES;
    let started = tokio::time::Instant::now();
    match store.append(realistic_batch(full, 10)).await {
        Err(tracewarden_store::StoreError::Overloaded { retry_after }) => {
            assert_eq!(retry_after, tracewarden_store::OVERLOAD_RETRY_AFTER)
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
    assert!(
        started.elapsed() >= wait,
        "refused before its wait was over"
    );
    let stats = store.stats();
    assert_eq!(
        stats.appends, full,
        "the refused batch never reached the WAL"
    );
    assert_eq!(stats.memory_waits, 1);
    store.flush().unwrap();
    acked.append(&store, full).await;
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_memory_wait_appends_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = full_store(dir.path(), Duration::ZERO).await;
    let full = tracewarden_store::MEMORY_LIMIT_FLUSHES;
    let refused = store.append(realistic_batch(full, 10)).await;
    assert!(
        matches!(
            refused,
            Err(tracewarden_store::StoreError::Overloaded { .. })
        ),
        "{refused:?}"
    );
    assert_eq!(store.stats().memory_waits, 0);
}

/// Starts appending batch `MEMORY_LIMIT_FLUSHES` to a full store, and
/// returns once the append waits for memory.
async fn append_waiting_for_memory(
    store: &Arc<Store>,
) -> tokio::task::JoinHandle<tracewarden_store::Result<u64>> {
    let full = tracewarden_store::MEMORY_LIMIT_FLUSHES;
    let waiting = tokio::spawn({
        let store = Arc::clone(store);
        async move { store.append(realistic_batch(full, 10)).await }
    });
    wait_for("the append to wait for memory", || {
        store.stats().memory_waits == 1
    })
    .await;
    waiting
}

/// An append that finds memory full goes through as soon as a flush frees
/// it, instead of sending its sender away for the whole retry hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waiting_for_memory_goes_through_when_a_flush_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    // Far longer than the test: only the flush can end the wait in time.
    let (store, mut acked) = full_store(dir.path(), Duration::from_secs(600)).await;
    let full = tracewarden_store::MEMORY_LIMIT_FLUSHES;
    let waiting = append_waiting_for_memory(&store).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "memory is still full");
    assert_eq!(store.stats().appends, full);

    let flushed = tokio::task::spawn_blocking({
        let store = Arc::clone(&store);
        move || store.flush()
    });
    // Some(1), or Some(2) when the freed append landed in time for a
    // second round of the same flush.
    assert!(flushed.await.unwrap().unwrap().is_some());
    let lsn = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the flush ended the wait")
        .unwrap()
        .unwrap();
    assert!(lsn > 0);
    let ids = realistic_batch(full, 10)
        .spans()
        .map(|(_, _, s)| s.span_id)
        .collect();
    acked.0.insert(trace_id(full), ids);
    assert_eq!(store.stats().appends, full + 1);
    assert_exactly_once(&store, &acked);
}

/// Closing the store answers an append waiting for memory at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_answers_an_append_waiting_for_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = full_store(dir.path(), Duration::from_secs(600)).await;
    let waiting = append_waiting_for_memory(&store).await;
    tokio::task::spawn_blocking({
        let store = Arc::clone(&store);
        move || store.close()
    })
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("closing ended the wait")
        .unwrap();
    assert!(
        matches!(answer, Err(tracewarden_store::StoreError::Closed)),
        "{answer:?}"
    );
}

/// `ScanUnit::logs_of_traces` finds the log records of a set of traces in
/// every tier with one read per segment, and nothing of other traces.
#[tokio::test]
async fn logs_of_many_traces_come_from_every_tier_in_one_read_each() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    for trace in 1..=20u64 {
        store.append(small_batch(trace)).await.unwrap();
        if trace % 10 == 0 {
            store.flush().unwrap();
        }
    }
    // Two segments (traces 1-10, 11-20), then the hot tier (21-22).
    store.append(small_batch(21)).await.unwrap();
    store.append(small_batch(22)).await.unwrap();
    let wanted: std::collections::HashSet<_> =
        [2u64, 9, 15, 22, 99].into_iter().map(trace_id).collect();
    let wanted = Arc::new(wanted);
    let mut found: Vec<u64> = Vec::new();
    let snapshot = store.snapshot();
    let units = snapshot.units();
    assert_eq!(units.len(), 3);
    for unit in units {
        for entry in unit.logs_of_traces(&wanted).unwrap() {
            let id = entry.record.trace_id.unwrap();
            let n = (1..=22).find(|&n| trace_id(n) == id).unwrap();
            assert_eq!(entry.record.body, AnyValue::from("login attempt"));
            found.push(n);
        }
    }
    found.sort_unstable();
    assert_eq!(found, vec![2, 9, 15, 22]);
    let none = Arc::new(std::collections::HashSet::new());
    for unit in store.snapshot().units() {
        assert!(unit.logs_of_traces(&none).unwrap().is_empty());
    }
}
