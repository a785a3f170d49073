//! Segment benchmarks on realistic HTTP server spans (the weather
//! application of `tracewarden bench`: three services with nine resource
//! attributes, ten to twelve span attributes from pools):
//!
//! - `segment/write_200k`: spans per second `write_segment` turns into
//!   durable Parquet files (sort, encode, zstd, fsync);
//! - `segment/trace_by_id_1m`: one trace by id in a segment of 1M spans;
//! - `segment/scan_client_address_1m`: every span of one client.address
//!   in that segment; `segment/scan_enduser_1h_1m` the same for an
//!   enduser.id within a time window.
//!
//! Setup also prints the bytes per span on disk at 1M spans, and p50/p99
//! trace lookup latency over 2000 lookups of distinct traces.
//!
//! Run: `cargo bench -p tracewarden-store --bench segment`
//! (quick look: add `-- --warm-up-time 1 --measurement-time 3`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The tracewarden binary allocates with mimalloc; so does this benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/segment_support/mod.rs"]
mod segment_support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use segment_support::Workload;
use tracewarden_model::TraceId;
use tracewarden_store::{DedicatedColumn, Segment, SegmentWriteOptions, SpanFilter, write_segment};

const SEGMENT_SPANS: usize = 1_000_000;
const WRITE_SPANS: usize = 200_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn segment(c: &mut Criterion) {
    let options = SegmentWriteOptions::default();
    let mut group = c.benchmark_group("segment");
    group.sample_size(10);

    // Write throughput.
    let spans = Workload::new(1).spans(WRITE_SPANS);
    let span_refs: Vec<_> = spans.iter().collect();
    group.throughput(Throughput::Elements(WRITE_SPANS as u64));
    group.bench_function("write_200k", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                write_segment(dir.path(), 1, &span_refs, &[], &options).unwrap();
                dir
            },
            criterion::BatchSize::PerIteration,
        )
    });
    drop(span_refs);
    drop(spans);

    // A segment of 1M spans: size on disk, lookups, scans.
    let dir = tempfile::tempdir().unwrap();
    let mut workload = Workload::new(2);
    let spans = workload.spans(SEGMENT_SPANS);
    let step = SEGMENT_SPANS / 2000;
    let trace_ids: Vec<TraceId> = spans
        .iter()
        .step_by(step)
        .map(|s| s.span.trace_id)
        .collect();
    let client = workload.visitors[7].address.clone();
    let user = workload.visitors[11].user.clone().unwrap();
    let started = Instant::now();
    let written = write_segment(
        dir.path(),
        1,
        &spans.iter().collect::<Vec<_>>(),
        &[],
        &options,
    )
    .unwrap();
    let elapsed = started.elapsed();
    let bytes = written.files.iter().map(|f| f.bytes).sum::<u64>();
    eprintln!(
        "1M-span segment: {bytes} bytes, {:.1} B/span; written in {:.2} s ({:.0} spans/s)",
        bytes as f64 / SEGMENT_SPANS as f64,
        elapsed.as_secs_f64(),
        SEGMENT_SPANS as f64 / elapsed.as_secs_f64(),
    );

    let segment = Segment::open(dir.path(), 1).unwrap();
    let mut latencies: Vec<Duration> = trace_ids
        .iter()
        .map(|id| {
            let started = Instant::now();
            let (spans, _) = segment.trace(*id).unwrap();
            assert!(!spans.is_empty());
            started.elapsed()
        })
        .collect();
    latencies.sort();
    let before = segment.bytes_read();
    segment.trace(trace_ids[0]).unwrap();
    eprintln!(
        "trace by id over {} traces: p50 {:?}, p99 {:?}, max {:?}; {} bytes read per lookup of a {}-byte segment",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        segment.bytes_read() - before,
        segment.bytes(),
    );

    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("trace_by_id_1m", |b| {
        b.iter(|| {
            next = (next + 1) % trace_ids.len();
            black_box(segment.trace(trace_ids[next]).unwrap())
        })
    });

    let by_client = SpanFilter {
        equals: vec![(DedicatedColumn::ClientAddress, client)],
        ..SpanFilter::default()
    };
    let found = segment.scan_spans(&by_client).unwrap().len();
    let before = segment.bytes_read();
    segment.scan_spans(&by_client).unwrap();
    eprintln!(
        "scan by client.address: {found} spans, {} bytes read",
        segment.bytes_read() - before
    );
    group.bench_function("scan_client_address_1m", |b| {
        b.iter(|| black_box(segment.scan_spans(&by_client).unwrap()))
    });

    let (min, max) = segment.time_range_unix_nano();
    let by_user = SpanFilter {
        start_unix_nano: Some(min + (max - min) / 4),
        end_unix_nano: Some(min + (max - min) / 2),
        equals: vec![(DedicatedColumn::EnduserId, user)],
        ..SpanFilter::default()
    };
    let found = segment.scan_spans(&by_user).unwrap().len();
    eprintln!("scan by enduser.id in a quarter of the time range: {found} spans");
    group.bench_function("scan_enduser_window_1m", |b| {
        b.iter(|| black_box(segment.scan_spans(&by_user).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, segment);
criterion_main!(benches);
