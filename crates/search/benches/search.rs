//! Search benchmark: a store of realistic HTTP spans (the weather
//! application of `tracewarden bench`), then TraceQL queries and trace-id
//! lookups timed over it.
//!
//! Run: `cargo bench -p tracewarden-search --bench search`
//! (`TW_BENCH_SPANS=10000000` for the 10M-span figures; `TW_BENCH_DIR=DIR`
//! keeps the store in DIR and reuses it on the next run).
//!
//! Not criterion: building the store takes minutes, and what matters is the
//! latency of each query (median and worst of several runs) on one store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../store/tests/segment_support/mod.rs"]
mod segment_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use segment_support::Workload;
use tracewarden_model::{Batch, ResourceSpans, ScopeSpans, Span, SpanRecord, TraceId};
use tracewarden_search::{SearchRequest, search};
use tracewarden_store::{Store, StoreOptions, WalOptions};

const BATCH: usize = 10_000;
const FLUSH_EVERY: usize = 500_000;

fn batch(records: Vec<SpanRecord>) -> Batch {
    let mut batch = Batch::default();
    for record in records {
        let same = batch.resource_spans.last().is_some_and(|rs| {
            Arc::ptr_eq(&rs.resource, &record.resource)
                && rs
                    .scope_spans
                    .last()
                    .is_some_and(|ss| Arc::ptr_eq(&ss.scope, &record.scope))
        });
        if !same {
            batch.resource_spans.push(ResourceSpans {
                resource: Arc::clone(&record.resource),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::clone(&record.scope),
                    spans: Vec::new(),
                }],
            });
        }
        if let Some(ss) = batch
            .resource_spans
            .last_mut()
            .and_then(|rs| rs.scope_spans.last_mut())
        {
            ss.spans.push(Span::clone(&record.span));
        }
    }
    batch
}

fn open(dir: &std::path::Path) -> Store {
    let options = StoreOptions {
        wal: WalOptions {
            fsync: false,
            ..WalOptions::default()
        },
        lifecycle_thread: false,
        ..StoreOptions::new(dir)
    };
    Store::open(options).unwrap().0
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}  (n={})",
        at(0.5),
        at(0.99),
        at(1.0),
        times.len()
    )
}

fn main() {
    let spans: usize = std::env::var("TW_BENCH_SPANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let kept = std::env::var_os("TW_BENCH_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let mut workload = Workload::new(7);
    let sample_address = workload.visitors[0].address.clone();

    let store = open(&dir);
    let mut trace_ids: Vec<TraceId> = Vec::new();
    let have = store.stats().segment_spans as usize;
    if have < spans {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let mut written = 0;
        while written < spans {
            let records = workload.spans(BATCH.min(spans - written));
            written += records.len();
            if trace_ids.len() < 100_000 {
                trace_ids.extend(records.iter().map(|r| r.span.trace_id));
            }
            runtime.block_on(store.append(batch(records))).unwrap();
            if written % FLUSH_EVERY == 0 {
                store.flush().unwrap();
            }
        }
        store.flush().unwrap();
        eprintln!(
            "built a store of {written} spans in {:.1?} ({} segments, {:.1} B/span)",
            started.elapsed(),
            store.segment_ids().len(),
            store.stats().segment_bytes as f64 / written as f64
        );
    } else {
        // Same seed: the same spans, so the same trace ids and addresses.
        let mut again = Workload::new(7);
        while trace_ids.len() < 100_000 {
            trace_ids.extend(again.spans(BATCH).iter().map(|r| r.span.trace_id));
        }
        eprintln!("reusing the store of {have} spans in {}", dir.display());
    }
    trace_ids.sort_unstable();
    trace_ids.dedup();

    let day = 86_400 * 1_000_000_000;
    let start = Workload::START_NS;
    let queries = [
        // Exact match on a dedicated column with a bloom filter: one
        // visitor's requests (about 1 in 200 traces).
        format!(r#"{{ span.client.address = "{sample_address}" }}"#),
        // A value nobody has: every row group pruned by its bloom filter.
        r#"{ span.enduser.id = "nobody@example.org" }"#.to_string(),
        // Status code (dedicated column, statistics only) and a route.
        r#"{ span.http.response.status_code = 500 && span.http.route = "/api/v1/forecast" }"#
            .to_string(),
        // A regex: no pushdown, every span checked.
        r#"{ span.user_agent.original =~ "sqlmap.*" }"#.to_string(),
        // Structural, frequent: a gateway span whose child is a location span.
        r#"{ resource.service.name = "gateway" } > { resource.service.name = "location" }"#
            .to_string(),
        // Structural, never true: scans and evaluates candidates up to the bound.
        r#"{ resource.service.name = "location" } > { resource.service.name = "weather" }"#
            .to_string(),
    ];
    // TW_BENCH_QUERY=N runs only the N-th query (for profiling).
    let only: Option<usize> = std::env::var("TW_BENCH_QUERY")
        .ok()
        .and_then(|s| s.parse().ok());
    for (i, text) in queries.iter().enumerate() {
        if only.is_some_and(|n| n != i) {
            continue;
        }
        let query = tracewarden_traceql::parse(text).unwrap();
        let request = SearchRequest::new(query, start, start + day).unwrap();
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let began = Instant::now();
            let result = search(&store, &request).unwrap();
            times.push(began.elapsed());
            last = Some(result);
        }
        let last = last.unwrap();
        eprintln!("{text}");
        eprintln!(
            "    {}  traces {}  inspected spans {} traces {}{}",
            summary(times),
            last.traces.len(),
            last.metrics.inspected_spans,
            last.metrics.inspected_traces,
            last.metrics
                .partial
                .as_deref()
                .map(|p| format!("  PARTIAL: {p}"))
                .unwrap_or_default()
        );
    }

    // Every span of one actor (issue 3's actor lookup): the store's own
    // filtered scan, no limit.
    if only.is_none() {
        let filter = tracewarden_store::SpanFilter {
            start_unix_nano: Some(start),
            end_unix_nano: Some(start + day),
            equals: vec![(
                tracewarden_store::DedicatedColumn::ClientAddress,
                sample_address.clone(),
            )],
            ..Default::default()
        };
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let began = Instant::now();
            found = store.find_spans(&filter).unwrap().len();
            times.push(began.elapsed());
        }
        eprintln!(
            "all spans of client.address = {sample_address} ({found} spans)\n    {}",
            summary(times)
        );
    }

    // Trace by id, as Tempo's /api/traces/{id} does it.
    let mut times = Vec::new();
    let step = (trace_ids.len() / 500).max(1);
    for id in trace_ids.iter().step_by(step) {
        let began = Instant::now();
        let trace = store.trace(*id);
        times.push(began.elapsed());
        assert!(trace.is_some());
    }
    eprintln!("trace by id\n    {}", summary(times));
    drop(store);
    if kept.is_none() {
        drop(temp);
    }
}
