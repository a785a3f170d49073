//! Rule engine throughput: `Engine::process` with every built-in rule
//! (rules/ at the repository root) over realistic HTTP server spans.
//!
//! `CARGO_TARGET_DIR=/work/target-rules cargo bench -p tracewarden-detect --bench rules`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::load_dir;
use tracewarden_model::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, SpanRecord, TraceId,
};

const BATCH: usize = 10_000;
const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

/// A mix seen at an online shop's edge: mostly product and cart traffic
/// from many addresses, some failed logins, a few forbidden requests and a
/// scanner. One span per 100 µs (10k spans/s of event time).
fn spans() -> Vec<SpanRecord> {
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", "shop-frontend")],
        ..Resource::default()
    });
    let scope = Arc::new(Scope::default());
    (0..BATCH as u64)
        .map(|n| {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&n.to_be_bytes());
            let mut span = Span::new(
                TraceId::from_bytes(id),
                SpanId::from_bytes([1; 8]),
                "GET /products/{id}",
            );
            span.kind = SpanKind::Server;
            span.start_time_unix_nano = BASE + n * 100_000;
            span.end_time_unix_nano = span.start_time_unix_nano + 3_000_000;
            let address = format!("198.51.{}.{}", (n / 7) % 200, (n * 13) % 250);
            let (route, status, user, agent) = match n % 100 {
                0..=69 => (
                    "/products/{id}",
                    200,
                    None,
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0",
                ),
                70..=84 => (
                    "/cart",
                    200,
                    Some("user-42"),
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Safari/604.1",
                ),
                85..=92 => ("/api/login", 401, Some("alice"), "python-requests/2.32"),
                93..=95 => ("/api/login", 200, Some("bob"), "Mozilla/5.0 Firefox/128.0"),
                96..=98 => (
                    "/admin/users/{id}",
                    403,
                    Some("mallory"),
                    "Mozilla/5.0 Firefox/128.0",
                ),
                _ => ("/", 404, None, "sqlmap/1.7.2#stable (https://sqlmap.org)"),
            };
            span.name = format!("GET {route}").into();
            span.attributes = vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", route),
                KeyValue::new("http.response.status_code", AnyValue::Int(status)),
                KeyValue::new("client.address", address.as_str()),
                KeyValue::new("user_agent.original", agent),
                KeyValue::new("server.address", "shop.example.com"),
            ];
            if let Some(user) = user {
                span.attributes.push(KeyValue::new("enduser.id", user));
            }
            SpanRecord {
                resource: resource.clone(),
                scope: scope.clone(),
                span,
            }
        })
        .collect()
}

fn engine(c: &mut Criterion) {
    let rules = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
        .expect("built-in rules load");
    let rule_count = rules.len();
    let template = spans();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut engine = Engine::new(rules);
    let shift = std::cell::Cell::new(0u64);
    group.bench_function(
        format!("process_{rule_count}_builtin_rules_10k_spans"),
        |b| {
            b.iter_batched(
                || {
                    // Each batch one second of event time after the previous, so
                    // windows slide as in production instead of replaying.
                    shift.set(shift.get() + SEC);
                    let mut batch = template.clone();
                    for record in &mut batch {
                        record.span.start_time_unix_nano += shift.get();
                        record.span.end_time_unix_nano += shift.get();
                    }
                    batch
                },
                |batch| black_box(engine.process(&batch, BASE + shift.get() + SEC)),
                BatchSize::LargeInput,
            );
        },
    );
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
