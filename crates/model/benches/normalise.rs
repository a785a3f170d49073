//! How fast is normalisation on the ingest path? 1000 HTTP server spans with
//! current names (the common case: one pass over the keys, no allocation)
//! and 1000 with legacy names (everything rewritten); and the credential
//! stamp that follows it on spans without and with an `Authorization`
//! header (a JWT-sized bearer token: one SHA-256 per span).
//!
//! `cargo bench -p tracewarden-model --bench normalise`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    TraceId, credential, normalise,
};

const SPANS: usize = 1000;

fn span(i: usize, attributes: Vec<KeyValue>) -> Span {
    let n = i as u64 + 1;
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&n.to_be_bytes());
    let mut span = Span::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(n.to_be_bytes()),
        "GET /api/orders/{id}",
    );
    span.kind = SpanKind::Server;
    span.attributes = attributes;
    span
}

/// What a current OpenTelemetry HTTP server instrumentation records.
fn current(i: usize) -> Span {
    span(
        i,
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.scheme", "https"),
            KeyValue::new("url.path", format!("/api/orders/{i}").as_str()),
            KeyValue::new("url.query", "expand=items"),
            KeyValue::new("http.route", "/api/orders/{id}"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("server.address", "shop.example.com"),
            KeyValue::new("server.port", 443),
            KeyValue::new("client.address", format!("203.0.113.{}", i % 250).as_str()),
            KeyValue::new("network.peer.address", "10.0.0.12"),
            KeyValue::new("network.protocol.version", "1.1"),
            KeyValue::new(
                "user_agent.original",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            ),
        ],
    )
}

/// The same request as an instrumentation of semantic conventions v1.20 or
/// older records it.
fn legacy(i: usize) -> Span {
    span(
        i,
        vec![
            KeyValue::new("http.method", "GET"),
            KeyValue::new("http.scheme", "https"),
            KeyValue::new(
                "http.target",
                format!("/api/orders/{i}?expand=items").as_str(),
            ),
            KeyValue::new("http.route", "/api/orders/{id}"),
            KeyValue::new("http.status_code", 200),
            KeyValue::new("net.host.name", "shop.example.com"),
            KeyValue::new("net.host.port", 443),
            KeyValue::new("http.client_ip", format!("203.0.113.{}", i % 250).as_str()),
            KeyValue::new("net.sock.peer.addr", "10.0.0.12"),
            KeyValue::new("net.sock.peer.port", 50_432),
            KeyValue::new("http.flavor", "1.1"),
            KeyValue::new(
                "http.user_agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            ),
        ],
    )
}

fn batch(make: fn(usize) -> Span) -> Batch {
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", AnyValue::from("shop"))],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Arc::new(Scope::default()),
                spans: (0..SPANS).map(make).collect(),
            }],
        }],
        resource_logs: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalise");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, make) in [
        ("current_names", current as fn(usize) -> Span),
        ("legacy_names", legacy),
    ] {
        let input = batch(make);
        // The clone is setup, outside the measured time.
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || input.clone(),
                |batch| normalise::batch(black_box(batch)),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("credential_stamp");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, make) in [
        ("no_header", current as fn(usize) -> Span),
        ("bearer_jwt", with_bearer),
    ] {
        let input = batch(make);
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || input.clone(),
                |batch| credential::stamp_batch(black_box(batch)),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// A current span with a captured `Authorization` header (a 180-byte JWT).
fn with_bearer(i: usize) -> Span {
    let mut span = current(i);
    let token = format!(
        "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLXtpfSIsImlhdCI6MTcwMDAwMDAwMH0.{:0>64}",
        i % 500
    );
    span.attributes.push(KeyValue::new(
        "http.request.header.authorization",
        AnyValue::Array(vec![AnyValue::from(token.as_str())]),
    ));
    span
}

criterion_group!(benches, bench);
criterion_main!(benches);
