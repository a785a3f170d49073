//! TraceQL costs: parsing, the per-span filter (detection's hot path) and a
//! structural query over a 200-span trace.
//!
//! `CARGO_TARGET_DIR=/work/target-traceql cargo bench -p tracewarden-traceql --bench traceql`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tracewarden_model::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, SpanRecord, StatusCode, Str,
    TraceId,
};
use tracewarden_traceql::{TraceView, parse};

/// A server span as an HTTP instrumentation reports it.
fn http_span(
    n: u32,
    parent: Option<u32>,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
) -> SpanRecord {
    let id = |n: u32| {
        let mut bytes = [0u8; 8];
        bytes[4..].copy_from_slice(&(n + 1).to_be_bytes());
        SpanId::from_bytes(bytes)
    };
    let mut span = Span::new(TraceId::from_bytes([7; 16]), id(n), "POST /api/v1/login");
    span.parent_span_id = parent.map(id);
    span.kind = if n.is_multiple_of(2) {
        SpanKind::Server
    } else {
        SpanKind::Client
    };
    span.start_time_unix_nano = 1_700_000_000_000_000_000 + u64::from(n) * 1_000;
    span.end_time_unix_nano = span.start_time_unix_nano + 12_000_000;
    span.status.code = if n.is_multiple_of(7) {
        StatusCode::Error
    } else {
        StatusCode::Unset
    };
    let attrs: [(&str, AnyValue); 10] = [
        ("http.request.method", "POST".into()),
        ("url.path", "/api/v1/login".into()),
        ("url.scheme", "https".into()),
        ("server.address", "api.example.com".into()),
        ("server.port", 443i64.into()),
        ("client.address", "203.0.113.7".into()),
        (
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".into(),
        ),
        ("http.route", "/api/v1/login".into()),
        ("network.protocol.version", "1.1".into()),
        (
            "http.response.status_code",
            AnyValue::Int(if n.is_multiple_of(5) { 401 } else { 200 }),
        ),
    ];
    span.attributes = attrs
        .into_iter()
        .map(|(k, v)| KeyValue {
            key: Str::from(k),
            value: v,
        })
        .collect();
    SpanRecord {
        resource: resource.clone(),
        scope: scope.clone(),
        span: span.into(),
    }
}

fn shared() -> (Arc<Resource>, Arc<Scope>) {
    let resource = Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", "auth-api"),
            KeyValue::new("service.version", "2.4.1"),
            KeyValue::new("deployment.environment", "prod"),
            KeyValue::new("host.name", "auth-api-7d9f-abcde"),
        ],
        ..Resource::default()
    });
    let scope = Arc::new(Scope {
        name: Str::from("io.opentelemetry.http"),
        version: Str::from("1.30.0"),
        ..Scope::default()
    });
    (resource, scope)
}

fn bench_parse(c: &mut Criterion) {
    let text = r#"{ resource.service.name = "auth-api" && span.http.route =~ "/api/v1/(login|token)" && span.http.response.status_code >= 400 } >> { kind = client && status = error } | by(resource.service.name) | count() > 3"#;
    c.bench_function("parse/structural+pipeline", |b| {
        b.iter(|| parse(black_box(text)).unwrap())
    });
}

fn bench_matches_span(c: &mut Criterion) {
    let (resource, scope) = shared();
    let span = http_span(5, Some(0), &resource, &scope);
    let cases = [
        ("equality", r#"{ span.http.route = "/api/v1/login" }"#),
        (
            "regex",
            r#"{ span.user_agent.original =~ ".*(curl|python-requests|sqlmap).*" }"#,
        ),
        (
            "3-conditions",
            r#"{ resource.service.name = "auth-api" && span.http.request.method = "POST" && span.http.response.status_code = 401 }"#,
        ),
    ];
    for (name, text) in cases {
        let query = parse(text).unwrap();
        c.bench_function(&format!("matches_span/{name}"), |b| {
            b.iter(|| query.matches_span(black_box(&span)))
        });
    }
}

fn bench_evaluate(c: &mut Criterion) {
    let (resource, scope) = shared();
    // A 200-span tree: each span's parent is (i - 1) / 3, so depth ~5.
    let spans: Vec<SpanRecord> = (0..200u32)
        .map(|i| http_span(i, (i > 0).then(|| (i - 1) / 3), &resource, &scope))
        .collect();
    let query = parse(
        r#"{ kind = server && span.http.response.status_code = 401 } >> { kind = client && status = error }"#,
    )
    .unwrap();
    assert!(!query.evaluate(&TraceView::new(&spans)).is_empty());
    c.bench_function("evaluate/descendant-200-spans", |b| {
        b.iter(|| {
            let view = TraceView::new(black_box(&spans));
            query.evaluate(&view)
        })
    });
}

criterion_group!(benches, bench_parse, bench_matches_span, bench_evaluate);
criterion_main!(benches);
