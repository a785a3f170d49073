//! Does the whole built-in pack stay within bounded memory when 1M distinct
//! actors show up? Feeds server spans from 1,000,000 distinct client
//! addresses, each with its own user, session and bearer token, through
//! `Engine::process` (a failed login, a page read and a 403 per actor, so
//! every per-key rule kind holds state for it) and prints, after each
//! 100,000 actors, the bytes the engine holds (a counting allocator:
//! allocations minus frees, without the allocator's per-block overhead),
//! the keys held and the keys evicted.
//!
//! `cargo run --release -p tracewarden-detect --example pack_memory [ACTORS]`
//!
//! The engine's default `max_keys_per_rule` (100,000) bounds each
//! threshold, sequence, new_terms and baseline rule; the figures show the
//! plateau once the caps are reached.

// The counting allocator (support/counting.rs) is an `unsafe impl` that
// only forwards to the system allocator.
#![allow(unsafe_code)]

use std::sync::Arc;

use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::builtin_rules;
use tracewarden_model::{
    AnyValue, KeyValue, Resource, Span, SpanId, SpanKind, SpanRecord, TraceId, credential,
};

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;
/// Actors per batch handed to the engine.
const BATCH_ACTORS: u64 = 2_000;
/// Spans per actor: a failed login, a product page, a forbidden admin page.
const SPANS_PER_ACTOR: u64 = 3;

/// The three spans of actor `a`, actors 100 µs apart (1M actors in 100 s:
/// every window of a minute or more still holds them all, so the caps, not
/// window expiry, are what bound the state).
fn actor_spans(a: u64, resource: &Arc<Resource>, out: &mut Vec<SpanRecord>) {
    let address = format!("10.{}.{}.{}", a >> 16, (a >> 8) & 255, a & 255);
    let user = format!("user-{a:07}");
    let session = format!("sess-{a:x}");
    let authorization = format!("Bearer tok-{a:016x}-{:016x}", a.wrapping_mul(0x9e37_79b9));
    let requests: [(&str, &str, &str, i64); SPANS_PER_ACTOR as usize] = [
        ("POST", "/api/login", "/api/login", 401),
        ("GET", "/api/products/{id}", "/api/products/42", 200),
        ("GET", "/admin/users", "/admin/users", 403),
    ];
    for (i, (method, route, path, status)) in requests.into_iter().enumerate() {
        let n = a * SPANS_PER_ACTOR + i as u64;
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&n.to_be_bytes());
        let mut span = Span::new(
            TraceId::from_bytes(id),
            SpanId::from_bytes((n | 1).to_be_bytes()),
            format!("{method} {route}"),
        );
        span.kind = SpanKind::Server;
        span.start_time_unix_nano = BASE + a * 100_000 + i as u64 * 1000;
        span.end_time_unix_nano = span.start_time_unix_nano + 5_000_000;
        span.attributes = vec![
            KeyValue::new("client.address", address.as_str()),
            KeyValue::new("enduser.id", user.as_str()),
            KeyValue::new("session.id", session.as_str()),
            KeyValue::new(
                "user_agent.original",
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            ),
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new("url.path", path),
            KeyValue::new("http.response.status_code", AnyValue::Int(status)),
            KeyValue::new(
                "user.roles",
                AnyValue::Array(vec![AnyValue::from("viewer")]),
            ),
            KeyValue::new("http.request.header.authorization", authorization.as_str()),
        ];
        credential::stamp(&mut span.attributes);
        out.push(SpanRecord {
            resource: Arc::clone(resource),
            scope: Arc::default(),
            span: span.into(),
        });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let actors: u64 = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 1_000_000,
    };
    let rules = builtin_rules().map_err(|e| format!("{e}"))?;
    let active = rules.iter().filter(|r| r.inactive.is_none()).count();
    let mut engine = Engine::new(rules);
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", "shop-frontend")],
        ..Resource::default()
    });
    println!(
        "the built-in pack: {active} active rules; {actors} actors, {SPANS_PER_ACTOR} spans each"
    );
    println!("actors     engine bytes   bytes/actor  keys held  keys evicted  detections");
    let before = counting::live();
    let mut detections = 0usize;
    let mut a = 0;
    while a < actors {
        let end = (a + BATCH_ACTORS).min(actors);
        let mut batch = Vec::with_capacity(((end - a) * SPANS_PER_ACTOR) as usize);
        for actor in a..end {
            actor_spans(actor, &resource, &mut batch);
        }
        let now = batch.last().map_or(BASE, |s| s.span.start_time_unix_nano);
        detections += engine.process(&batch, now).len();
        // Dropped before measuring: only what the engine keeps counts.
        drop(batch);
        a = end;
        if a % 100_000 == 0 || a == actors {
            let bytes = counting::live() - before;
            let stats = engine.stats();
            let keys: u64 = stats.rules.iter().map(|r| r.keys as u64).sum();
            println!(
                "{a:>9}  {bytes:>13}  {:>11.1}  {keys:>9}  {:>12}  {detections:>10}",
                bytes as f64 / a as f64,
                stats.evicted_keys(),
            );
        }
    }
    Ok(())
}
