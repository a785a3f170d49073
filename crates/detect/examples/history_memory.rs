//! Memory of the history rule kinds per key, measured with a counting
//! allocator: a new_terms rule over 100k users (one, then three terms
//! each) and a baseline rule over 100k client addresses.
//!
//! `cargo run --release -p tracewarden-detect --example history_memory`
//!
//! Counted are the bytes the engine asks the allocator for and keeps
//! (allocations minus frees), not the allocator's own overhead per block.

// The counting allocator (support/counting.rs) is an `unsafe impl` that
// only forwards to the system allocator.
#![allow(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::parse_rule;
use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanKind, SpanRecord, TraceId};

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const KEYS: u64 = 100_000;
const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

fn span(n: u64, t: u64, attributes: Vec<KeyValue>) -> SpanRecord {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let mut span = Span::new(TraceId::from_bytes(id), SpanId::from_bytes([1; 8]), "GET /");
    span.kind = SpanKind::Server;
    span.start_time_unix_nano = t;
    span.attributes = attributes;
    SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    }
}

/// Bytes the engine holds after processing `batches` (built before the
/// measurement starts, dropped after).
fn grow(engine: &mut Engine, batches: &[Vec<SpanRecord>]) -> isize {
    let before = counting::live();
    for batch in batches {
        let detections = engine.process(
            batch,
            batch.last().map_or(BASE, |s| s.span.start_time_unix_nano),
        );
        drop(detections);
    }
    counting::live() - before
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rule = parse_rule(
        "id: n\ntitle: t\nseverity: low\nkind: new_terms\ncondition: '{ }'\ngroup_by: [span.enduser.id]\nfields: [span.user_agent.original]\nlearning: 1d\n",
        Path::new("n.yaml"),
    )
    .map_err(|e| format!("{e:?}"))?;
    let mut engine = Engine::new(vec![rule]);
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
    ];
    let round = |agent: &str, round: u64| -> Vec<Vec<SpanRecord>> {
        (0..KEYS)
            .map(|u| {
                span(
                    u,
                    BASE + round * KEYS + u,
                    vec![
                        KeyValue::new("enduser.id", format!("user{u:06}").as_str()),
                        KeyValue::new("user_agent.original", agent),
                    ],
                )
            })
            .collect::<Vec<_>>()
            .chunks(10_000)
            .map(<[SpanRecord]>::to_vec)
            .collect()
    };
    let first = round(agents[0], 0);
    let one = grow(&mut engine, &first);
    drop(first);
    let more: Vec<Vec<SpanRecord>> = round(agents[1], 1)
        .into_iter()
        .chain(round(agents[2], 2))
        .collect();
    let three = one + grow(&mut engine, &more);
    drop(more);
    let keys = engine.stats().rules[0].keys;
    println!("new_terms: {keys} keys (enduser.id `user000000`..., 10 bytes)");
    println!(
        "  1 term a key:  {one} bytes, {:.1} bytes per key",
        one as f64 / keys as f64
    );
    println!(
        "  3 terms a key: {three} bytes, {:.1} bytes per key",
        three as f64 / keys as f64
    );

    let rule = parse_rule(
        "id: b\ntitle: t\nseverity: low\nkind: baseline\ncondition: '{ }'\ngroup_by: [span.client.address]\ninterval: 10s\ndistinct:\n  field: span.http.route\n  min: 20\n",
        Path::new("b.yaml"),
    )
    .map_err(|e| format!("{e:?}"))?;
    let mut engine = Engine::new(vec![rule]);
    let batches: Vec<Vec<SpanRecord>> = (0..KEYS)
        .map(|a| {
            span(
                a,
                BASE + a,
                vec![
                    KeyValue::new(
                        "client.address",
                        format!("10.{}.{}.{}", a >> 16, a >> 8 & 255, a & 255).as_str(),
                    ),
                    KeyValue::new("http.route", "/products/{id}"),
                    KeyValue::new("http.response.status_code", AnyValue::Int(200)),
                ],
            )
        })
        .collect::<Vec<_>>()
        .chunks(10_000)
        .map(<[SpanRecord]>::to_vec)
        .collect();
    let bytes = grow(&mut engine, &batches);
    let keys = engine.stats().rules[0].keys;
    println!("baseline: {keys} keys (client.address, 8-12 bytes), one span each");
    println!(
        "  {bytes} bytes, {:.1} bytes per key",
        bytes as f64 / keys as f64
    );
    Ok(())
}
