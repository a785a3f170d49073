//! Whole-trace detection throughput: spans through the trace-assembly
//! buffer (`Engine::process_owned`, then `flush`) with topology rules, and
//! with topology and data-flow rules, over traces of the api-gateway /
//! weather / location example (5 to 7 spans each, with HTTP attributes),
//! arriving in batches of 1,000 spans in which spans of many traces mix.
//!
//! `CARGO_TARGET_DIR=/work/targets/graph cargo bench -p tracewarden-detect --bench assembly`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::{Rule, Site, load_file_for};
use tracewarden_model::{KeyValue, Resource, Scope, Span, SpanId, SpanKind, SpanRecord, TraceId};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const BASE: u64 = 1_767_225_600 * SEC;
const TRACES: u32 = 2_000;
const BATCH: usize = 1_000;

fn site() -> Site {
    Site {
        entry_services: vec!["api-gateway".into()],
        allowed_edges: vec![
            "api-gateway -> weather".into(),
            "weather -> location".into(),
        ],
        third_parties: vec![r"(.*\.)?weather-partner\.example".into()],
        ..Site::default()
    }
}

fn pack(ids: &[&str]) -> Vec<Rule> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    ids.iter()
        .map(|id| load_file_for(&dir.join(format!("{id}.yaml")), &site()).unwrap())
        .collect()
}

/// Traces of 5 spans (gateway -> weather -> location), every tenth with a
/// call to the partner (7 spans), every fiftieth gateway -> location.
/// Spans of 100 consecutive traces are interleaved (reversed order per
/// trace, so roots come last, as exporters send them).
fn spans() -> Vec<SpanRecord> {
    let scope = Arc::new(Scope::default());
    let resource = |service: &str| {
        Arc::new(Resource {
            attributes: vec![
                KeyValue::new("service.name", service),
                KeyValue::new("deployment.environment.name", "production"),
            ],
            ..Resource::default()
        })
    };
    let (gateway, weather, location) = (
        resource("api-gateway"),
        resource("weather"),
        resource("location"),
    );
    let mut out = Vec::new();
    for n in 0..TRACES {
        let mut id = [0u8; 16];
        id[12..].copy_from_slice(&n.to_be_bytes());
        id[0] = 0x42;
        let trace = TraceId::from_bytes(id);
        let start = BASE + u64::from(n) * MS;
        let mut add = |sid: u8,
                       parent: Option<u8>,
                       res: &Arc<Resource>,
                       kind: SpanKind,
                       name: &str,
                       attrs: Vec<KeyValue>| {
            let mut span = Span::new(trace, SpanId::from_bytes([1, 2, 3, 4, 5, 6, 7, sid]), name);
            span.parent_span_id = parent.map(|p| SpanId::from_bytes([1, 2, 3, 4, 5, 6, 7, p]));
            span.kind = kind;
            span.start_time_unix_nano = start + u64::from(sid) * MS;
            span.end_time_unix_nano = span.start_time_unix_nano + 3 * MS;
            span.attributes = attrs;
            out.push(SpanRecord {
                resource: res.clone(),
                scope: scope.clone(),
                span: span.into(),
            });
        };
        let http = |route: &str, extra: &[(&str, &str)]| {
            let mut attrs = vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", route),
                KeyValue::new("http.response.status_code", 200i64),
            ];
            attrs.extend(extra.iter().map(|(k, v)| KeyValue::new(*k, *v)));
            attrs
        };
        add(
            1,
            None,
            &gateway,
            SpanKind::Server,
            "GET /weather",
            http(
                "/weather",
                &[
                    ("client.address", "198.51.100.7"),
                    ("user_agent.original", "Mozilla/5.0 Firefox/128.0"),
                    ("url.query", "city=Lyon&units=metric"),
                ],
            ),
        );
        if n % 50 == 0 {
            add(
                2,
                Some(1),
                &gateway,
                SpanKind::Client,
                "GET location",
                http("/position", &[("server.address", "location")]),
            );
            add(
                3,
                Some(2),
                &location,
                SpanKind::Server,
                "GET /position",
                http("/position", &[]),
            );
        } else {
            add(
                2,
                Some(1),
                &gateway,
                SpanKind::Client,
                "GET weather",
                http("/forecast", &[("server.address", "weather")]),
            );
            add(
                3,
                Some(2),
                &weather,
                SpanKind::Server,
                "GET /forecast",
                http("/forecast", &[("enduser.id", "user-42")]),
            );
            add(
                4,
                Some(3),
                &weather,
                SpanKind::Client,
                "GET location",
                http("/position", &[("server.address", "location")]),
            );
            add(
                5,
                Some(4),
                &location,
                SpanKind::Server,
                "GET /position",
                http("/position", &[]),
            );
            if n % 10 == 0 {
                add(
                    6,
                    Some(3),
                    &weather,
                    SpanKind::Internal,
                    "render",
                    Vec::new(),
                );
                add(
                    7,
                    Some(3),
                    &weather,
                    SpanKind::Client,
                    "GET partner",
                    http(
                        "/v1/forecast",
                        &[
                            ("server.address", "api.weather-partner.example"),
                            (
                                "url.full",
                                "https://api.weather-partner.example/v1/forecast?city=Lyon&request_id=123e4567-e89b-12d3-a456-426614174000",
                            ),
                        ],
                    ),
                );
            }
        }
    }
    // Interleave: within each group of 100 traces, take spans round-robin
    // from the end of each trace.
    let mut by_trace: Vec<Vec<SpanRecord>> = Vec::new();
    for span in out {
        match by_trace.last_mut() {
            Some(t) if t[0].span.trace_id == span.span.trace_id => t.push(span),
            _ => by_trace.push(vec![span]),
        }
    }
    let mut mixed = Vec::new();
    for group in by_trace.chunks_mut(100) {
        while group.iter().any(|t| !t.is_empty()) {
            for t in group.iter_mut() {
                if let Some(span) = t.pop() {
                    mixed.push(span);
                }
            }
        }
    }
    mixed
}

/// How a bench feeds the engine its batches.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    /// `Engine::process`: each span cloned into the buffer.
    Borrowed,
    /// `Engine::process_owned`: moved.
    Owned,
    /// `Engine::process_record`: moved, each noted with its WAL record.
    Record,
}

fn run(c: &mut Criterion, name: &str, ids: &[&str], feed: Feed) {
    let template = spans();
    let mut group = c.benchmark_group("assembly");
    group.throughput(Throughput::Elements(template.len() as u64));
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter_batched(
            || (Engine::new(pack(ids)), template.clone()),
            |(mut engine, spans)| {
                let mut detections = 0;
                let mut now = BASE;
                let mut rest = spans;
                let mut lsn = 0;
                while !rest.is_empty() {
                    let tail = rest.split_off(BATCH.min(rest.len()));
                    lsn += 1;
                    detections += match feed {
                        // The borrowed API clones each span into the buffer.
                        Feed::Borrowed => engine.process(&rest, now).len(),
                        Feed::Owned => engine.process_owned(rest, now).len(),
                        Feed::Record => engine.process_record(rest, now, lsn).len(),
                    };
                    now += 100 * MS;
                    detections += engine.flush(now).len();
                    rest = tail;
                }
                detections += engine.flush(now + 10 * SEC).len();
                assert!(detections > 0);
                black_box(detections)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn assembly(c: &mut Criterion) {
    run(
        c,
        "process_clone_topology_3_rules",
        &[
            "topology-wrong-caller",
            "topology-internal-no-parent",
            "topology-spoofed-context",
        ],
        Feed::Borrowed,
    );
    run(
        c,
        "topology_3_rules",
        &[
            "topology-wrong-caller",
            "topology-internal-no-parent",
            "topology-spoofed-context",
        ],
        Feed::Owned,
    );
    run(
        c,
        "topology_3_rules_records",
        &[
            "topology-wrong-caller",
            "topology-internal-no-parent",
            "topology-spoofed-context",
        ],
        Feed::Record,
    );
    run(
        c,
        "topology_and_data_flow_4_rules",
        &[
            "topology-wrong-caller",
            "topology-internal-no-parent",
            "topology-spoofed-context",
            "pii-to-third-party",
        ],
        Feed::Owned,
    );
}

/// The detection checkpoint with every span of `spans()` (10,240, about
/// 2,000 traces) buffered for assembly: `Engine::checkpoint` (which now
/// writes the buffered traces), the part of it the detection thread pays
/// (`Engine::take_checkpoint`; the server encodes on a writer thread) and
/// `Engine::restore` of its bytes; then the same with the spans fed as WAL
/// records (`Engine::process_record`), named rather than copied, and their
/// restore with the refill from those records.
fn checkpoint(c: &mut Criterion) {
    let ids = [
        "topology-wrong-caller",
        "topology-internal-no-parent",
        "topology-spoofed-context",
    ];
    let mut engine = Engine::new(pack(&ids));
    let buffered = spans();
    let count = buffered.len() as u64;
    let records: Vec<Vec<SpanRecord>> = buffered.chunks(BATCH).map(<[_]>::to_vec).collect();
    engine.process_owned(buffered, BASE);
    let bytes = engine.checkpoint().unwrap();
    let empty = Engine::new(pack(&ids)).checkpoint().unwrap();
    eprintln!(
        "checkpoint: {} bytes with {count} buffered spans, {} bytes without ({} bytes per span)",
        bytes.len(),
        empty.len(),
        (bytes.len() - empty.len()) as u64 / count
    );
    let mut group = c.benchmark_group("assembly");
    group.throughput(Throughput::Elements(count));
    group.sample_size(20);
    group.bench_function("checkpoint_10k_buffered_spans", |b| {
        b.iter(|| black_box(engine.checkpoint().unwrap()));
    });
    group.bench_function("take_checkpoint_10k_buffered_spans", |b| {
        b.iter(|| black_box(engine.take_checkpoint().unwrap()));
    });
    group.bench_function("restore_10k_buffered_spans", |b| {
        b.iter_batched(
            || Engine::new(pack(&ids)),
            |mut fresh| black_box(fresh.restore(&bytes).unwrap()),
            BatchSize::LargeInput,
        );
    });

    // The same spans fed as the server feeds them, one WAL record per
    // batch: the checkpoint names them instead of copying them, and a
    // restore takes them back from the records.
    let mut named = Engine::new(pack(&ids));
    for (lsn, record) in (1..).zip(&records) {
        named.process_record(record.clone(), BASE, lsn);
    }
    let named_bytes = named.checkpoint().unwrap();
    eprintln!(
        "checkpoint: {} bytes with {count} buffered spans named ({} bytes per span)",
        named_bytes.len(),
        (named_bytes.len() - empty.len()) as u64 / count
    );
    group.bench_function("checkpoint_10k_named_spans", |b| {
        b.iter(|| black_box(named.checkpoint().unwrap()));
    });
    group.bench_function("restore_refill_10k_named_spans", |b| {
        b.iter_batched(
            || Engine::new(pack(&ids)),
            |mut fresh| {
                fresh.restore(&named_bytes).unwrap();
                for (lsn, record) in (1..).zip(&records) {
                    fresh.refill(lsn, record);
                }
                fresh.refilled();
                black_box(fresh)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, assembly, checkpoint);
criterion_main!(benches);
