//! Lifecycle benchmark: how many spans per second `Store::flush` moves from
//! the hot tier into a published segment, everything included (freeze, sort,
//! encode, zstd, fsync, manifest, publish, WAL trim). Compare with
//! `segment/write_200k` (the write alone) to see the lifecycle's own cost.
//!
//! Run: `cargo bench -p tracewarden-store --bench lifecycle`
//! (quick look: add `-- --warm-up-time 1 --measurement-time 3`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_store::{Store, StoreOptions, WalOptions};

const BATCHES: u64 = 200;
const SPANS_PER_BATCH: u64 = 1000;

/// Fills a fresh store with 200k spans (not timed), then times one flush.
fn timed_flush(runtime: &tokio::runtime::Runtime) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        wal: WalOptions {
            // The appends are not what is measured.
            fsync: false,
            ..WalOptions::default()
        },
        lifecycle_thread: false,
        ..StoreOptions::new(dir.path())
    };
    let (store, _) = Store::open(options).unwrap();
    runtime.block_on(async {
        for b in 0..BATCHES {
            let batch = common::realistic_batch(b * SPANS_PER_BATCH, SPANS_PER_BATCH);
            store.append(batch).await.unwrap();
        }
    });
    let start = Instant::now();
    store.flush().unwrap().expect("a segment");
    let elapsed = start.elapsed();
    let stats = store.stats();
    assert_eq!(stats.segment_spans, BATCHES * SPANS_PER_BATCH);
    eprintln!(
        "  flushed {} spans into {} bytes ({:.1} B/span) in {:?}",
        stats.segment_spans,
        stats.segment_bytes,
        stats.segment_bytes as f64 / stats.segment_spans as f64,
        elapsed
    );
    elapsed
}

fn flush(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("lifecycle");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCHES * SPANS_PER_BATCH));
    group.bench_function("flush_200k", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| timed_flush(&runtime)).sum())
    });
    group.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);
