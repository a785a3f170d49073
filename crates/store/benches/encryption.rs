//! The cost of encryption at rest, each case with and without a key:
//!
//! - `encryption/write_200k/{plain,encrypted}`: `write_segment` of 200k
//!   realistic spans (encrypted: Parquet modular encryption, no bloom filters);
//! - `encryption/trace_by_id_1m/{plain,encrypted}`: one trace by id in a
//!   1M-span segment;
//! - `encryption/absent_trace_1m/{plain,encrypted}`: a trace id the segment
//!   does not hold (the plain file's bloom filter answers it; the encrypted
//!   one, which has none, reads one `trace_id` page).
//!
//! Run: `cargo bench -p tracewarden-store --bench encryption`
//! (quick look: add `-- --warm-up-time 1 --measurement-time 3`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The tracewarden binary allocates with mimalloc; so does this benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/segment_support/mod.rs"]
mod segment_support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use segment_support::Workload;
use tracewarden_model::TraceId;
use tracewarden_store::{EncryptionKey, Segment, SegmentWriteOptions, write_segment_with_key};

const SEGMENT_SPANS: usize = 1_000_000;
const WRITE_SPANS: usize = 200_000;

fn encryption(c: &mut Criterion) {
    let options = SegmentWriteOptions::default();
    let key = Arc::new(EncryptionKey::from_bytes(&[0x5a; 32]));
    let cases: [(&str, Option<Arc<EncryptionKey>>); 2] =
        [("plain", None), ("encrypted", Some(key))];
    let mut group = c.benchmark_group("encryption");
    group.sample_size(10);

    let spans = Workload::new(1).spans(WRITE_SPANS);
    let span_refs: Vec<_> = spans.iter().collect();
    group.throughput(Throughput::Elements(WRITE_SPANS as u64));
    for (name, key) in &cases {
        group.bench_function(format!("write_200k/{name}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    write_segment_with_key(
                        dir.path(),
                        1,
                        &span_refs,
                        &[],
                        &options,
                        key.as_deref(),
                    )
                    .unwrap();
                    dir
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    drop(span_refs);
    drop(spans);

    let spans = Workload::new(2).spans(SEGMENT_SPANS);
    let refs: Vec<_> = spans.iter().collect();
    let trace_ids: Vec<TraceId> = spans
        .iter()
        .step_by(SEGMENT_SPANS / 2000)
        .map(|s| s.span.trace_id)
        .collect();
    let absent = TraceId::from_bytes([0x42; 16]);
    assert!(spans.iter().all(|s| s.span.trace_id != absent));
    group.throughput(Throughput::Elements(1));
    for (name, key) in &cases {
        let dir = tempfile::tempdir().unwrap();
        let written =
            write_segment_with_key(dir.path(), 1, &refs, &[], &options, key.as_deref()).unwrap();
        let segment = Segment::open_with_key(dir.path(), 1, key.clone()).unwrap();
        let before = segment.bytes_read();
        segment.trace(trace_ids[0]).unwrap();
        let per_lookup = segment.bytes_read() - before;
        let before = segment.bytes_read();
        segment.trace(absent).unwrap();
        eprintln!(
            "{name}: {} bytes on disk; {per_lookup} bytes read per trace lookup, {} per absent id",
            written.files.iter().map(|f| f.bytes).sum::<u64>(),
            segment.bytes_read() - before,
        );
        let mut next = 0;
        group.bench_function(format!("trace_by_id_1m/{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % trace_ids.len();
                black_box(segment.trace(trace_ids[next]).unwrap())
            })
        });
        group.bench_function(format!("absent_trace_1m/{name}"), |b| {
            b.iter(|| black_box(segment.trace(absent).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, encryption);
criterion_main!(benches);
