//! What a `distinct` count past the exact bound costs: a flood of 200,000
//! distinct client addresses on 10 routes (20,000 each) through a threshold
//! rule counting 15,000 distinct addresses per route (estimated: a sketch
//! per route),
//! against the same spans through a rule counting 1,000 (exact), alternated.
//! Prints time per span, the bytes each engine holds (counting allocator)
//! and what fired.
//!
//! `cargo run --release -p tracewarden-detect --example distinct_sketch`

// The counting allocator (support/counting.rs) is an `unsafe impl` that
// only forwards to the system allocator.
#![allow(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::parse_rule;
use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanKind, SpanRecord, TraceId};

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const SPANS: u64 = 1_000_000;
const ADDRESSES: u64 = 200_000;
const ROUTES: u64 = 10;
const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

fn spans() -> Vec<Vec<SpanRecord>> {
    let routes: Vec<String> = (0..ROUTES).map(|r| format!("/api/r{r}")).collect();
    (0..SPANS)
        .map(|n| {
            let a = (n * 7919) % ADDRESSES;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&n.to_be_bytes());
            let mut span = Span::new(TraceId::from_bytes(id), SpanId::from_bytes([1; 8]), "GET");
            span.kind = SpanKind::Server;
            // 100k spans/s of event time: the 1 min window holds them all.
            span.start_time_unix_nano = BASE + n * 10_000;
            span.attributes = vec![
                KeyValue::new("http.route", routes[(n % ROUTES) as usize].as_str()),
                KeyValue::new(
                    "client.address",
                    AnyValue::from(
                        format!("10.{}.{}.{}", a >> 16, (a >> 8) & 255, a & 255).as_str(),
                    ),
                ),
            ];
            SpanRecord {
                resource: Arc::default(),
                scope: Arc::default(),
                span: span.into(),
            }
        })
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(<[SpanRecord]>::to_vec)
        .collect()
}

fn rule(count: u64) -> Result<tracewarden_detect::rule::Rule, String> {
    parse_rule(
        &format!(
            "id: flood\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{{ span.http.route != nil }}'\ngroup_by: [span.http.route]\nwindow: 1m\ncount: {count}\ndistinct: span.client.address\n"
        ),
        Path::new("flood.yaml"),
    )
    .map_err(|e| format!("{e:?}"))
}

/// Seconds, bytes held and detections of one pass over `batches`.
fn run(count: u64, batches: &[Vec<SpanRecord>]) -> Result<(f64, isize, Vec<u64>), String> {
    let before = counting::live();
    let mut engine = Engine::new(vec![rule(count)?]);
    let start = Instant::now();
    let mut fired = Vec::new();
    for batch in batches {
        let now = batch.last().map_or(BASE, |s| s.span.start_time_unix_nano);
        fired.extend(engine.process(batch, now).into_iter().map(|d| d.count));
    }
    let seconds = start.elapsed().as_secs_f64();
    let held = counting::live() - before;
    drop(engine);
    Ok((seconds, held, fired))
}

fn main() -> Result<(), String> {
    let batches = spans();
    println!(
        "{SPANS} spans, {ADDRESSES} addresses over {ROUTES} routes (each route sees {} distinct)",
        ADDRESSES / ROUTES.min(ADDRESSES)
    );
    for round in 1..=3 {
        for count in [1_000u64, 15_000] {
            let (seconds, held, fired) = run(count, &batches)?;
            println!(
                "round {round}: count {count:>6} ({}): {:.3} µs per span, {:.1} KiB held, {} detections, counts {:?}",
                if count > 1000 { "estimated" } else { "exact" },
                seconds * 1e6 / SPANS as f64,
                held as f64 / 1024.0,
                fired.len(),
                fired.iter().take(3).collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
