//! Writes the seed corpus of the `checkpoint` fuzz target: checkpoint bodies
//! (without the magic and the checksum, which the target adds) of the whole
//! pack after 1, 5 and 10 minutes of event time of mixed traffic, so they
//! hold threshold windows, sequences, new terms, baselines, learned
//! topology, traces buffered for assembly and log records waiting for their
//! span. Run it again when the checkpoint format changes:
//!
//! `cargo run --release -p tracewarden-detect --example checkpoint_seeds -- fuzz/corpus/checkpoint`

use std::path::PathBuf;
use std::sync::Arc;

use tracewarden_detect::engine::Engine;
use tracewarden_detect::rule::{Site, builtin_rules_for};
use tracewarden_model::{
    AnyValue, KeyValue, LogEntry, LogRecord, Resource, Scope, Span, SpanId, SpanKind, SpanRecord,
    TraceId,
};

const SEC: u64 = 1_000_000_000;
/// The fuzz target's traffic comes 10 minutes after this.
const BASE: u64 = 1_767_225_600 * SEC;
/// Magic before the body, CRC-32C after it (`engine/checkpoint.rs`).
const FRAMING: (usize, usize) = (8, 4);

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", service)],
        ..Resource::default()
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: checkpoint_seeds DIR")?,
    );
    let site = Site {
        entry_services: vec!["gateway".into()],
        allowed_edges: vec!["gateway -> weather".into()],
        ..Site::default()
    };
    let mut engine = Engine::new(builtin_rules_for(&site)?);
    let scope = Arc::new(Scope::default());
    let (gateway, weather) = (resource("gateway"), resource("weather"));
    let agents = [
        "Mozilla/5.0 Firefox/133.0",
        "curl/8.5.0",
        "sqlmap/1.8",
        "python-requests/2.31",
    ];
    let mut n: u64 = 0;
    for step in 0..60u64 {
        let at = BASE + step * 10 * SEC;
        let mut spans = Vec::new();
        let mut logs = Vec::new();
        for i in 0..12u64 {
            n += 1;
            let status = match i % 6 {
                0 | 1 => 401,
                2 => 403,
                3 => 500,
                _ => 200,
            };
            let route = if i % 3 == 0 {
                "/api/v1/login"
            } else {
                "/api/v1/weather/{city}"
            };
            let trace = TraceId::from_bytes((u128::from(n) + 7).to_be_bytes());
            let entry = SpanId::from_bytes((n * 2 + 1).to_be_bytes());
            let mut span = Span::new(trace, entry, "GET /api");
            span.kind = SpanKind::Server;
            span.start_time_unix_nano = at + i * 1000;
            span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000;
            span.attributes = vec![
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", format!("/api/v1/weather/c{}", i % 7).as_str()),
                KeyValue::new(
                    "url.query",
                    if i % 5 == 0 {
                        "q=1' OR '1'='1"
                    } else {
                        "units=metric"
                    },
                ),
                KeyValue::new(
                    "http.request.method",
                    if i % 4 == 0 { "POST" } else { "GET" },
                ),
                KeyValue::new("http.response.status_code", AnyValue::Int(status)),
                KeyValue::new("client.address", format!("203.0.113.{}", i % 5).as_str()),
                KeyValue::new("enduser.id", format!("user{}", (i + step) % 4).as_str()),
                KeyValue::new("user_agent.original", agents[((i + step) % 4) as usize]),
                KeyValue::new("session.id", format!("s-{}", i % 3).as_str()),
            ];
            spans.push(SpanRecord {
                resource: Arc::clone(&gateway),
                scope: Arc::clone(&scope),
                span: span.into(),
            });
            // Every other request calls the second service, half of those
            // with no parent (a topology violation).
            if i % 2 == 0 {
                let mut child = Span::new(
                    trace,
                    SpanId::from_bytes((n * 2 + 2).to_be_bytes()),
                    "UPDATE",
                );
                child.kind = SpanKind::Server;
                child.parent_span_id = (i % 4 == 0).then_some(entry);
                child.start_time_unix_nano = at + i * 1000 + 10;
                child.end_time_unix_nano = child.start_time_unix_nano + 100;
                child.attributes = vec![
                    KeyValue::new("http.route", "/weather"),
                    KeyValue::new("db.operation.name", "UPDATE"),
                    KeyValue::new("db.collection.name", format!("t{}", i % 3).as_str()),
                ];
                spans.push(SpanRecord {
                    resource: Arc::clone(&weather),
                    scope: Arc::clone(&scope),
                    span: child.into(),
                });
            }
            // A record logged in a span that came, and one whose span never
            // comes (it waits in the join).
            let logged_in = if i % 2 == 0 {
                entry
            } else {
                SpanId::from_bytes(((n + 1) << 40).to_be_bytes())
            };
            logs.push(LogEntry {
                resource: Arc::clone(&weather),
                scope: Arc::clone(&scope),
                record: LogRecord {
                    time_unix_nano: at,
                    body: AnyValue::Str("access denied".into()),
                    trace_id: Some(trace),
                    span_id: Some(logged_in),
                    ..LogRecord::default()
                },
            });
        }
        // As the server feeds it: each batch a WAL record, so the buffered
        // spans are named by it in the checkpoint.
        engine.process_record(spans, at, step + 1);
        engine.process_logs(&logs, at);
        if step % 3 == 0 {
            engine.flush(at);
        }
        if [5, 30, 59].contains(&step) {
            let bytes = engine.checkpoint()?;
            let body = bytes
                .get(FRAMING.0..bytes.len() - FRAMING.1)
                .ok_or("checkpoint shorter than its framing")?;
            let path = out.join(format!("seed-step{step}"));
            std::fs::write(&path, body)?;
            println!("{}: {} bytes", path.display(), body.len());
        }
    }
    Ok(())
}
