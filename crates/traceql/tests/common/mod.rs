//! Builders for hand-made traces shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tracewarden_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, SpanRecord,
    StatusCode, Str, TraceId,
};
use tracewarden_traceql::{TraceView, parse};

pub const MS: u64 = 1_000_000;
pub const T0: u64 = 1_700_000_000_000_000_000;

pub fn trace_id() -> TraceId {
    TraceId::from_bytes([0xab; 16])
}

pub fn span_id(n: u8) -> SpanId {
    SpanId::from_bytes([0, 0, 0, 0, 0, 0, 0, n])
}

pub fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", service),
            KeyValue::new("deployment.environment", "prod"),
        ],
        ..Resource::default()
    })
}

pub fn scope(name: &str, version: &str) -> Arc<Scope> {
    Arc::new(Scope {
        name: Str::from(name),
        version: Str::from(version),
        attributes: vec![KeyValue::new("scope.team", "identity")],
        ..Scope::default()
    })
}

/// A span record: id `n`, parent `parent`, times in ms after T0.
pub fn span(
    n: u8,
    parent: Option<u8>,
    name: &str,
    kind: SpanKind,
    service: &str,
    start_ms: u64,
    end_ms: u64,
) -> SpanRecord {
    let mut span = Span::new(trace_id(), span_id(n), name);
    span.parent_span_id = parent.map(span_id);
    span.kind = kind;
    span.start_time_unix_nano = T0 + start_ms * MS;
    span.end_time_unix_nano = T0 + end_ms * MS;
    SpanRecord {
        resource: resource(service),
        scope: scope("io.opentelemetry.http", "1.2.0"),
        span: span.into(),
    }
}

pub fn with_attr(mut record: SpanRecord, key: &str, value: impl Into<AnyValue>) -> SpanRecord {
    record.span_mut().attributes.push(KeyValue::new(key, value));
    record
}

/// The trace most evaluation tests use:
///
/// ```text
/// 0 GET /api (server, frontend, 0-100ms, http.request.method=GET, http.response.status_code=200)
/// ├── 1 auth (client, frontend, 10-20ms, peer.service=auth)
/// │   └── 3 POST /verify (server, auth, 11-19ms, status 401, error, roles=[admin,user], event exception)
/// │       └── 4 redis GET (client, auth, 12-13ms, db.system=redis)
/// └── 2 db query (client, frontend, 20-70ms, db.system=postgresql, error "timeout")
///     └── 5 retry (internal, frontend, 30-40ms, a link, ratio=0.5)
/// ```
pub fn sample_trace() -> Vec<SpanRecord> {
    let root = with_attr(
        with_attr(
            span(0, None, "GET /api", SpanKind::Server, "frontend", 0, 100),
            "http.request.method",
            "GET",
        ),
        "http.response.status_code",
        200i64,
    );
    let auth = with_attr(
        span(1, Some(0), "auth", SpanKind::Client, "frontend", 10, 20),
        "peer.service",
        "auth",
    );
    let mut db = with_attr(
        span(2, Some(0), "db query", SpanKind::Client, "frontend", 20, 70),
        "db.system",
        "postgresql",
    );
    db.span_mut().status.code = StatusCode::Error;
    db.span_mut().status.message = Str::from("timeout");
    let mut verify = with_attr(
        span(3, Some(1), "POST /verify", SpanKind::Server, "auth", 11, 19),
        "http.response.status_code",
        401i64,
    );
    verify.span_mut().status.code = StatusCode::Error;
    verify.span_mut().attributes.push(KeyValue {
        key: Str::from("user.roles"),
        value: AnyValue::Array(vec![AnyValue::from("admin"), AnyValue::from("user")]),
    });
    verify
        .span_mut()
        .attributes
        .push(KeyValue::new("cache.hit", true));
    verify.span_mut().events.push(Event {
        time_unix_nano: T0 + 15 * MS,
        name: Str::from("exception"),
        attributes: vec![KeyValue::new("exception.type", "InvalidToken")],
        dropped_attributes_count: 0,
    });
    verify.scope = scope("auth-lib", "0.9");
    let redis = with_attr(
        span(4, Some(3), "redis GET", SpanKind::Client, "auth", 12, 13),
        "db.system",
        "redis",
    );
    let mut retry = with_attr(
        span(5, Some(2), "retry", SpanKind::Internal, "frontend", 30, 40),
        "ratio",
        AnyValue::Double(0.5),
    );
    retry.span_mut().links.push(Link {
        trace_id: TraceId::from_bytes([0x11; 16]),
        span_id: SpanId::from_bytes([0x22; 8]),
        trace_state: Str::default(),
        attributes: vec![KeyValue::new("link.kind", "follows")],
        dropped_attributes_count: 0,
        flags: 0,
    });
    vec![root, auth, db, verify, redis, retry]
}

/// The spans of each spanset `query` yields over `spans`.
pub fn run(query: &str, spans: &[SpanRecord]) -> Vec<Vec<usize>> {
    let query = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    query
        .evaluate(&TraceView::new(spans))
        .into_iter()
        .map(|s| s.spans)
        .collect()
}

/// The spans of the single spanset `query` yields (empty when none).
pub fn matched(query: &str, spans: &[SpanRecord]) -> Vec<usize> {
    let sets = run(query, spans);
    assert!(
        sets.len() <= 1,
        "{query}: expected one spanset, got {sets:?}"
    );
    sets.into_iter().next().unwrap_or_default()
}
