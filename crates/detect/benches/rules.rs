//! Rule engine throughput: `Engine::process` with every built-in rule
//! (rules/ at the repository root) over realistic HTTP server spans, and
//! the history kinds alone at high key cardinality: a new_terms rule over
//! 100k users, a baseline rule over ~10k client addresses.
//!
//! `CARGO_TARGET_DIR=/work/target-rules cargo bench -p tracewarden-detect --bench rules`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::{RuleKind, load_dir, parse_rule};
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
                span: span.into(),
            }
        })
        .collect()
}

fn engine(c: &mut Criterion) {
    let rules = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
        .expect("built-in rules load");
    // The same pack without the history kinds, to price them.
    let windowed: Vec<_> = rules
        .iter()
        .filter(|r| !matches!(r.kind, RuleKind::NewTerms(_) | RuleKind::Baseline(_)))
        .cloned()
        .collect();
    let template = vec![spans()];
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    for rules in [rules, windowed] {
        let name = format!("process_{}_builtin_rules_10k_spans", rules.len());
        let mut engine = Engine::new(rules);
        bench_sliding(&mut group, &name, &mut engine, &template);
    }
    group.finish();
}

/// 10k spans of 100k users, each with one of three agents (so keys hold
/// up to three terms), as in a busy single sign-on front end.
fn user_spans(batch: u64) -> Vec<SpanRecord> {
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
    ];
    (0..BATCH as u64)
        .map(|i| {
            let n = batch * BATCH as u64 + i;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&n.to_be_bytes());
            let mut span = Span::new(
                TraceId::from_bytes(id),
                SpanId::from_bytes([1; 8]),
                "GET /account",
            );
            span.kind = SpanKind::Server;
            span.start_time_unix_nano = BASE + i * 100_000;
            span.attributes = vec![
                KeyValue::new("http.route", "/account"),
                KeyValue::new("http.response.status_code", AnyValue::Int(200)),
                KeyValue::new("enduser.id", format!("user{}", n % 100_000).as_str()),
                KeyValue::new("user_agent.original", agents[(n / 100_000 % 3) as usize]),
            ];
            SpanRecord {
                resource: Arc::default(),
                scope: Arc::default(),
                span: span.into(),
            }
        })
        .collect()
}

/// Benches `engine.process` on the templates in turn, each batch one
/// second of event time after the previous, so windows slide as in
/// production instead of replaying.
fn bench_sliding(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    engine: &mut Engine,
    templates: &[Vec<SpanRecord>],
) {
    let shift = std::cell::Cell::new(0u64);
    let next = std::cell::Cell::new(0usize);
    group.bench_function(name, |b| {
        b.iter_batched(
            || {
                shift.set(shift.get() + SEC);
                next.set((next.get() + 1) % templates.len());
                let mut batch = templates[next.get()].clone();
                for record in &mut batch {
                    record.span_mut().start_time_unix_nano += shift.get();
                    record.span_mut().end_time_unix_nano += shift.get();
                }
                batch
            },
            |batch| black_box(engine.process(&batch, BASE + shift.get() + SEC)),
            BatchSize::LargeInput,
        );
    });
}

fn history_kinds(c: &mut Criterion) {
    let mut group = c.benchmark_group("history_kinds");
    group.throughput(Throughput::Elements(BATCH as u64));

    let new_terms = parse_rule(
        "id: n\ntitle: t\nseverity: low\nkind: new_terms\ncondition: '{ span.http.response.status_code < 400 }'\ngroup_by: [span.enduser.id]\nfields: [span.user_agent.original]\nlearning: 1s\n",
        Path::new("bench.yaml"),
    )
    .expect("rule parses");
    let mut engine = Engine::new(vec![new_terms]);
    // 30 batches: 300k spans, 100k users, three agents each.
    let templates: Vec<Vec<SpanRecord>> = (0..30).map(user_spans).collect();
    for batch in &templates {
        engine.process(batch, BASE);
    }
    bench_sliding(
        &mut group,
        "new_terms_100k_users_10k_spans",
        &mut engine,
        &templates,
    );

    let baseline = parse_rule(
        "id: b\ntitle: t\nseverity: low\nkind: baseline\ncondition: '{ kind = server }'\ngroup_by: [span.client.address]\ninterval: 1s\nlearning: 30\nmin_count: 20\ndistinct:\n  field: span.http.route\n  min: 3\n",
        Path::new("bench.yaml"),
    )
    .expect("rule parses");
    let mut engine = Engine::new(vec![baseline]);
    bench_sliding(
        &mut group,
        "baseline_per_address_10k_spans",
        &mut engine,
        &[spans()],
    );
    group.finish();
}

criterion_group!(benches, engine, history_kinds);
criterion_main!(benches);
