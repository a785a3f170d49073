//! WAL benchmarks: how fast a realistic batch encodes, and how many spans per
//! second `Store::append` makes durable with fsync on, with one or several
//! concurrent appenders sharing group commits.
//!
//! Run: `cargo bench -p tracewarden-store --bench wal`
//! (quick look: add `-- --warm-up-time 1 --measurement-time 3`).
//!
//! The batch is MEASURED.md's realistic request: 1000 HTTP server spans with
//! twelve attributes, in one resource and scope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_store::{Store, StoreOptions, WalOptions, codec, wal};

const SPANS: u64 = 1000;

fn encode(c: &mut Criterion) {
    let batch = common::realistic_batch(1, SPANS);
    let payload = codec::encode(&batch).unwrap();
    eprintln!(
        "encoded 1000-span batch: {} bytes, {:.0} bytes/span",
        payload.len(),
        payload.len() as f64 / SPANS as f64
    );

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(SPANS));
    group.bench_function("encode_1000_spans", |b| {
        b.iter(|| codec::encode(black_box(&batch)).unwrap())
    });
    // The baseline in the same run: the same body through postcard's serde
    // serializer, which wrote it before `codec::write`.
    group.bench_function("postcard_1000_spans", |b| {
        b.iter(|| postcard::to_allocvec(black_box(&batch)).unwrap())
    });
    group.bench_function("encode_and_crc32c_1000_spans", |b| {
        b.iter(|| crc32c::crc32c(&codec::encode(black_box(&batch)).unwrap()))
    });
    group.bench_function("decode_1000_spans", |b| {
        b.iter(|| codec::decode(black_box(&payload)).unwrap())
    });
    group.finish();

    // Sealing a record: the crc of salt and LSN combined with the payload's
    // (computed when the batch was encoded), on the WAL writer thread. The
    // baseline in the same run: the `crc32c` crate's combine, used before.
    let mut group = c.benchmark_group("record_crc");
    let crc = crc32c::crc32c(&payload);
    group.bench_function("combine", |b| {
        b.iter(|| wal::crc::combine(black_box(7), black_box(crc), black_box(payload.len())))
    });
    group.bench_function("crc32c_crate_combine", |b| {
        b.iter(|| crc32c::crc32c_combine(black_box(7), black_box(crc), black_box(payload.len())))
    });
    group.finish();
}

/// Appends `rounds` batches from each of `appenders` concurrent tasks to a
/// fresh store and returns the time the appends took. A fresh store per
/// measurement keeps the hot tier (all in memory) from growing across the run.
fn timed_appends(
    runtime: &tokio::runtime::Runtime,
    options: &WalOptions,
    appenders: u64,
    rounds: u64,
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(StoreOptions {
        wal: options.clone(),
        ..StoreOptions::new(dir.path().to_owned())
    })
    .unwrap();
    let store = Arc::new(store);
    // Batches are built before the clock starts: cloning 1000 spans is not the WAL's cost.
    let batches: Vec<Vec<_>> = (0..appenders)
        .map(|a| {
            (0..rounds)
                .map(|r| common::realistic_batch((a * rounds + r) * SPANS, SPANS))
                .collect()
        })
        .collect();
    let start = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|batches| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for batch in batches {
                        store.append(batch).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    let stats = store.stats();
    eprintln!(
        "  {} appenders x {rounds} rounds: {} appends, {} fsyncs",
        appenders, stats.appends, stats.fsyncs
    );
    elapsed
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    for (name, fsync) in [("fsync", true), ("no_fsync_unsafe", false)] {
        let options = WalOptions {
            fsync,
            ..WalOptions::default()
        };
        let appender_counts: &[u64] = if fsync { &[1, 4, 16] } else { &[4] };
        for &appenders in appender_counts {
            group.throughput(Throughput::Elements(SPANS * appenders));
            group.bench_with_input(
                BenchmarkId::new(name, format!("{appenders}_appenders")),
                &appenders,
                |b, &n| b.iter_custom(|rounds| timed_appends(&runtime, &options, n, rounds)),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, encode, append);
criterion_main!(benches);
