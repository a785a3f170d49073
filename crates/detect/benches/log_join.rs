//! The cost of joining log records to their span (`join:`): 10,000
//! "access denied" records, each in its own request's server span, which
//! alone carries `client.address`; a threshold rule keyed on the caller.
//! The `child_` cases log each record in a child span of the handler (an
//! internal span carrying nothing joined): the record climbs to the handler.
//!
//! `cargo bench -p tracewarden-detect --bench log_join -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::parse_rule;
use tracewarden_model::{
    AnyValue, KeyValue, LogEntry, LogRecord, Resource, Scope, Span, SpanId, SpanKind, SpanRecord,
    TraceId,
};

const N: u64 = 10_000;
const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

const RULE: &str = "id: denied-by-caller\ntitle: Refusals per caller\nseverity: medium\nsource: logs\nkind: threshold\ncondition: '{ span.client.address != nil && span.log.body =~ \"(?i).*(access denied|forbidden).*\" }'\njoin: [span.client.address]\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 10\n";

fn ids(n: u64) -> (TraceId, SpanId) {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    (
        TraceId::from_bytes(id),
        SpanId::from_bytes((n + 1).to_be_bytes()),
    )
}

fn address(n: u64) -> String {
    format!("198.51.{}.{}", (n / 7) % 200, (n * 13) % 250)
}

/// The records; with `own_address` they carry the caller themselves.
fn records(own_address: bool) -> Vec<LogEntry> {
    records_n(N, own_address)
}

fn records_n(count: u64, own_address: bool) -> Vec<LogEntry> {
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", "billing")],
        ..Resource::default()
    });
    let scope = Arc::new(Scope::default());
    (0..count)
        .map(|n| {
            let (trace, span) = ids(n);
            let mut attributes = vec![KeyValue::new("code.function", "check_tenant")];
            if own_address {
                attributes.push(KeyValue::new("client.address", address(n).as_str()));
            }
            LogEntry {
                resource: Arc::clone(&resource),
                scope: Arc::clone(&scope),
                record: LogRecord {
                    time_unix_nano: BASE + n * 100_000,
                    observed_time_unix_nano: 0,
                    severity_number: 13,
                    severity_text: "WARN".into(),
                    body: AnyValue::from(
                        format!("Access denied: invoice {n} belongs to another tenant").as_str(),
                    ),
                    attributes,
                    original_attributes: Vec::new(),
                    dropped_attributes_count: 0,
                    flags: 0,
                    trace_id: Some(trace),
                    span_id: Some(span),
                    event_name: Default::default(),
                },
            }
        })
        .collect()
}

/// The server spans the records were logged in (ten HTTP attributes).
fn spans() -> Vec<SpanRecord> {
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", "billing")],
        ..Resource::default()
    });
    let scope = Arc::new(Scope::default());
    (0..N)
        .map(|n| {
            let (trace, id) = ids(n);
            let mut span = Span::new(trace, id, "GET /invoices/{id}");
            span.kind = SpanKind::Server;
            span.start_time_unix_nano = BASE + n * 100_000;
            span.end_time_unix_nano = span.start_time_unix_nano + 3_000_000;
            span.attributes = vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/invoices/{id}"),
                KeyValue::new("url.path", format!("/invoices/{n}").as_str()),
                KeyValue::new("http.response.status_code", AnyValue::Int(403)),
                KeyValue::new("server.address", "billing.internal"),
                KeyValue::new("network.protocol.version", "1.1"),
                KeyValue::new(
                    "user_agent.original",
                    "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                ),
                KeyValue::new("enduser.id", "user-42"),
                KeyValue::new("url.scheme", "https"),
                KeyValue::new("client.address", address(n).as_str()),
            ];
            SpanRecord {
                resource: Arc::clone(&resource),
                scope: Arc::clone(&scope),
                span: span.into(),
            }
        })
        .collect()
}

/// The id of the child span under request `n`'s handler.
fn child_id(n: u64) -> SpanId {
    SpanId::from_bytes((n + 1 + (1 << 40)).to_be_bytes())
}

/// Each handler span preceded by a child span under it (exported first:
/// it ends first), which carries no joined attribute.
fn spans_with_children() -> Vec<SpanRecord> {
    let mut out = Vec::with_capacity(2 * N as usize);
    for (n, handler) in (0..N).zip(spans()) {
        let mut child = Span::new(handler.span.trace_id, child_id(n), "check tenant");
        child.kind = SpanKind::Internal;
        child.parent_span_id = Some(handler.span.span_id);
        child.start_time_unix_nano = handler.span.start_time_unix_nano + 1_000_000;
        child.end_time_unix_nano = child.start_time_unix_nano + 1_000_000;
        child.attributes = vec![KeyValue::new("code.function.name", "check_tenant")];
        out.push(SpanRecord {
            resource: Arc::clone(&handler.resource),
            scope: Arc::clone(&handler.scope),
            span: child.into(),
        });
        out.push(handler);
    }
    out
}

/// The records, each logged in its request's child span.
fn records_in_children() -> Vec<LogEntry> {
    let mut records = records(false);
    for (n, record) in (0..N).zip(&mut records) {
        record.record.span_id = Some(child_id(n));
    }
    records
}

/// An engine with the rule, with or without `join`. With it, one record
/// of another request has already needed a join, so spans are indexed (as
/// in a deployment that sends such logs).
fn engine(join: bool) -> Engine {
    let text = if join {
        RULE.to_string()
    } else {
        RULE.replace("join: [span.client.address]\n", "")
    };
    let mut engine = Engine::new(vec![parse_rule(&text, Path::new("r.yaml")).unwrap()]);
    if join {
        let mut first = records_n(1, false).swap_remove(0);
        first.record.trace_id = Some(TraceId::from_bytes([0xff; 16]));
        engine.process_logs(&[first], BASE);
    }
    engine
}

/// [`engine`] with `join` where one record has also climbed from a child
/// span to its handler, so children are indexed as links too (as in a
/// deployment whose records name child spans).
fn engine_climbing() -> Engine {
    let mut engine = engine(true);
    let mut first = records_n(1, false).swap_remove(0);
    first.record.trace_id = Some(TraceId::from_bytes([0xfe; 16]));
    first.record.span_id = Some(child_id(N + 5));
    engine.process_logs(&[first], BASE);
    let mut trace = spans_with_children()
        .into_iter()
        .take(2)
        .collect::<Vec<_>>();
    for span in &mut trace {
        span.span_mut().trace_id = TraceId::from_bytes([0xfe; 16]);
    }
    trace[0].span_mut().span_id = child_id(N + 5);
    engine.process_owned(trace, BASE);
    assert_eq!(engine.stats().log_join.ancestor_joined_records, 1);
    engine
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_join");
    group.throughput(Throughput::Elements(N));
    let now = BASE + 2 * SEC;
    let (own, bare, spans) = (records(true), records(false), spans());
    group.bench_function("baseline_records_carry_the_address", |b| {
        b.iter_batched(
            || engine(false),
            |mut e| black_box(e.process_logs(&own, now)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("records_wait_then_spans_join", |b| {
        b.iter_batched(
            || (engine(true), spans.clone()),
            |(mut e, spans)| {
                let mut d = e.process_logs(&bare, now);
                d.extend(e.process_owned(spans, now + SEC));
                black_box(d)
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("spans_indexed_then_records_join", |b| {
        b.iter_batched(
            || (engine(true), spans.clone()),
            |(mut e, spans)| {
                let mut d = e.process_owned(spans, now);
                d.extend(e.process_logs(&bare, now + SEC));
                black_box(d)
            },
            BatchSize::LargeInput,
        );
    });
    let (in_children, with_children) = (records_in_children(), spans_with_children());
    group.bench_function("child_records_wait_then_spans_join", |b| {
        b.iter_batched(
            || (engine_climbing(), with_children.clone()),
            |(mut e, spans)| {
                let mut d = e.process_logs(&in_children, now);
                d.extend(e.process_owned(spans, now + SEC));
                black_box(d)
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("child_spans_indexed_then_records_join", |b| {
        b.iter_batched(
            || (engine_climbing(), with_children.clone()),
            |(mut e, spans)| {
                let mut d = e.process_owned(spans, now);
                d.extend(e.process_logs(&in_children, now + SEC));
                black_box(d)
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("child_spans_alone_join_rule_no_climb_yet", |b| {
        b.iter_batched(
            || (engine(true), with_children.clone()),
            |(mut e, spans)| black_box(e.process_owned(spans, now)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("child_spans_alone_join_rule", |b| {
        b.iter_batched(
            || (engine_climbing(), with_children.clone()),
            |(mut e, spans)| black_box(e.process_owned(spans, now)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("spans_alone_no_join_rule", |b| {
        b.iter_batched(
            || (engine(false), spans.clone()),
            |(mut e, spans)| black_box(e.process_owned(spans, now)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("spans_alone_join_rule_no_record_yet", |b| {
        let rule = parse_rule(RULE, Path::new("r.yaml")).unwrap();
        b.iter_batched(
            || (Engine::new(vec![rule.clone()]), spans.clone()),
            |(mut e, spans)| black_box(e.process_owned(spans, now)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("spans_alone_join_rule", |b| {
        b.iter_batched(
            || (engine(true), spans.clone()),
            |(mut e, spans)| black_box(e.process_owned(spans, now)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
