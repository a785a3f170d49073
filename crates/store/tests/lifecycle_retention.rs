//! Compaction and retention: what is merged or dropped, in which order,
//! what is recorded, and that dropped data never comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lifecycle_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{realistic_batch, trace_id};
use lifecycle_support::*;
use tracewarden_store::{
    CompactionOptions, LifecycleOptions, RetentionOptions, Store, StoreOptions, load_manifests,
};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Appends trace `n` with its spans starting at `start` (ns since the epoch).
async fn append_at(store: &Store, acked: &mut Acked, n: u64, start: u64) {
    let mut batch = realistic_batch(n, SPANS_PER_BATCH);
    let spans = &mut batch.resource_spans[0].scope_spans[0].spans;
    for (i, span) in spans.iter_mut().enumerate() {
        span.start_time_unix_nano = start + i as u64;
        span.end_time_unix_nano = start + i as u64 + 1_000;
    }
    let ids = spans.iter().map(|s| s.span_id).collect();
    store.append(batch).await.unwrap();
    acked.0.insert(trace_id(n), ids);
}

fn with_lifecycle(dir: &std::path::Path, lifecycle: LifecycleOptions) -> StoreOptions {
    StoreOptions {
        lifecycle,
        ..manual(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segments_are_merged_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let options = with_lifecycle(
        dir.path(),
        LifecycleOptions {
            compaction: CompactionOptions {
                enabled: true,
                below_spans: 25,
                max_spans: 60,
            },
            ..LifecycleOptions::default()
        },
    );
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    // Segments 1..=5 with 20, 30, 20, 20, 20 spans: 2 is not small.
    for (round, traces) in [(0u64, 2u64), (1, 3), (2, 2), (3, 2), (4, 2)] {
        acked
            .append_range(&store, round * 10..round * 10 + traces)
            .await;
        store.flush().unwrap();
    }
    // The oldest small ones that fit in 60 spans: 1, 3, 4.
    assert_eq!(store.compact().unwrap(), Some(6));
    assert_eq!(store.segment_ids(), [2, 5, 6]);
    let manifests = load_manifests(&segments_dir(dir.path())).unwrap();
    let ids: Vec<u64> = manifests.iter().map(|(m, _)| m.segment_id).collect();
    assert_eq!(ids, [2, 5, 6]);
    let merged = &manifests[2].0;
    let replaced: Vec<u64> = merged.replaces.iter().map(|r| r.segment_id).collect();
    assert_eq!(replaced, [1, 3, 4]);
    assert_eq!(merged.spans, 60);
    for old in [1, 3, 4] {
        assert!(!has_file(dir.path(), &spans_name(old)), "segment {old}");
    }
    assert_eq!(store.stats().compactions, 1);
    assert_exactly_once(&store, &acked);
    assert_verifies(dir.path());

    // 5 and 6 are small (6 has 60 rows, over below_spans): nothing to merge.
    assert_eq!(store.compact().unwrap(), None);
    drop(store);
    let (store, report) = Store::open(options).unwrap();
    assert_eq!(report.records, 0);
    assert_eq!(store.segment_ids(), [2, 5, 6]);
    assert_exactly_once(&store, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_drops_old_segments_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = with_lifecycle(
        dir.path(),
        LifecycleOptions {
            retention: RetentionOptions {
                max_age: Some(Duration::from_secs(30 * 24 * 3600)),
                max_total_bytes: None,
            },
            ..LifecycleOptions::default()
        },
    );
    let (store, _) = Store::open(options.clone()).unwrap();
    let mut acked = Acked::default();
    let day = 24 * 3600 * 1_000_000_000u64;
    append_at(&store, &mut acked, 1, now_nanos() - 40 * day).await;
    store.flush().unwrap();
    append_at(&store, &mut acked, 2, now_nanos() - 10 * day).await;
    store.flush().unwrap();
    // A future timestamp does not keep a segment forever: its age counts
    // from when it was written at the latest.
    append_at(&store, &mut acked, 3, now_nanos() + 365 * day).await;
    store.flush().unwrap();
    append_at(&store, &mut acked, 4, now_nanos()).await; // keeps 3 out of the WAL
    store.flush().unwrap();

    assert_eq!(store.enforce_retention().unwrap(), [1]);
    assert_eq!(store.segment_ids(), [2, 3, 4]);
    assert_eq!(store.stats().dropped_segments, 1);
    assert_absent(&store, [trace_id(1)]);
    let kept = acked.without([trace_id(1)]);
    assert_exactly_once(&store, &kept);
    let log = std::fs::read_to_string(segments_dir(dir.path()).join("retention.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    assert!(log.contains("\"segment_id\":1"), "{log}");
    assert!(log.contains("max_age"), "{log}");
    assert!(!has_file(dir.path(), &manifest_name(1)));
    assert_verifies(dir.path());
    assert!(store.enforce_retention().unwrap().is_empty());
    drop(store);

    // Dropped data never comes back through the WAL.
    let (store, report) = Store::open(options).unwrap();
    assert_eq!(report.records, 0);
    assert_absent(&store, [trace_id(1)]);
    assert_exactly_once(&store, &kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_total_bytes_drops_the_oldest_first_once_the_wal_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let mut acked = Acked::default();
    let minute = 60 * 1_000_000_000u64;
    // Written newest data first: age, not id, decides.
    for (n, minutes_ago) in [(1u64, 20u64), (2, 30), (3, 10)] {
        append_at(&store, &mut acked, n, now_nanos() - minutes_ago * minute).await;
        store.flush().unwrap();
    }
    let one = store.stats().segment_bytes / 3;
    drop(store);

    let options = with_lifecycle(
        dir.path(),
        LifecycleOptions {
            retention: RetentionOptions {
                max_age: None,
                max_total_bytes: Some(one + one / 2),
            },
            ..LifecycleOptions::default()
        },
    );
    let (store, _) = Store::open(options.clone()).unwrap();
    // Oldest data: segment 2 (30 min), then 1 (20 min); 3 is the newest.
    assert_eq!(store.enforce_retention().unwrap(), [2, 1]);
    assert_eq!(store.segment_ids(), [3]);
    let log = std::fs::read_to_string(segments_dir(dir.path()).join("retention.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    assert!(log.contains("max_total_bytes"), "{log}");
    assert_exactly_once(&store, &acked.without([trace_id(2), trace_id(1)]));
    assert_verifies(dir.path());
    drop(store);

    // A segment whose WAL records are still in the WAL waits: replay
    // would bring them back.
    let dir = tempfile::tempdir().unwrap();
    let options = with_lifecycle(
        dir.path(),
        LifecycleOptions {
            retention: RetentionOptions {
                max_age: None,
                max_total_bytes: Some(1),
            },
            ..LifecycleOptions::default()
        },
    );
    let (store, _) = Store::open(options).unwrap();
    let mut acked = Acked::default();
    acked.append(&store, 1).await;
    store.flush().unwrap();
    assert!(
        store.enforce_retention().unwrap().is_empty(),
        "LSN 1 is in the newest WAL file"
    );
    acked.append(&store, 2).await;
    store.flush().unwrap();
    assert_eq!(store.enforce_retention().unwrap(), [1]);
    assert_eq!(store.segment_ids(), [2]);
    drop(store);
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    assert_absent(&store, [trace_id(1)]);
    assert_exactly_once(&store, &acked.without([trace_id(1)]));
    assert_verifies(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_limits_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(manual(dir.path())).unwrap();
    let mut acked = Acked::default();
    for n in 0..3 {
        append_at(&store, &mut acked, n, 1).await; // 1970
        store.flush().unwrap();
    }
    assert!(store.enforce_retention().unwrap().is_empty());
    assert_eq!(store.segment_ids(), [1, 2, 3]);
    assert_exactly_once(&store, &acked);
}
