//! How fast does an OTLP protobuf export request decode? tracewarden's
//! decoder (straight into the model's batch) against prost decoding into
//! opentelemetry-proto's structs, on the same realistic request: 1000 HTTP
//! server spans with 12 attributes each, from one service.
//!
//! `cargo bench -p tracewarden-ingest --bench decode_proto`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use tracewarden_ingest::Limits;
use tracewarden_ingest::otlp::proto::decode_traces;

const SPANS: usize = 1000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::StringValue(s.into())
}

/// A seeded xorshift, so every run decodes the same bytes.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

fn http_server_span(rng: &mut Rng, i: usize) -> Span {
    let routes = [
        "/api/v1/users/{id}",
        "/api/v1/orders",
        "/login",
        "/api/v1/search",
        "/static/{file}",
    ];
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "curl/8.5.0",
        "python-requests/2.31.0",
    ];
    let route = rng.pick(&routes);
    let method = rng.pick(&methods);
    let path = route
        .replace("{id}", &(rng.next_u64() % 100_000).to_string())
        .replace("{file}", "app.js");
    let status = [200, 200, 200, 201, 204, 302, 400, 401, 404, 500][(rng.next_u64() % 10) as usize];
    let start = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    trace_id[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (rng.next_u64() | 1).to_le_bytes().to_vec(),
        trace_state: String::new(),
        parent_span_id: (rng.next_u64() | 1).to_le_bytes().to_vec(),
        flags: 0x301,
        name: format!("{method} {route}"),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + rng.next_u64() % 50_000_000,
        attributes: vec![
            kv("http.request.method", text(method)),
            kv("url.path", text(path)),
            kv(
                "url.query",
                text(format!(
                    "page={}&sort=desc&q=term{}",
                    rng.next_u64() % 50,
                    rng.next_u64() % 1000
                )),
            ),
            kv("http.route", text(route)),
            kv("http.response.status_code", Value::IntValue(status)),
            kv(
                "client.address",
                text(format!("203.0.113.{}", rng.next_u64() % 255)),
            ),
            kv("user_agent.original", text(rng.pick(&agents))),
            kv(
                "enduser.id",
                text(format!("user-{}", rng.next_u64() % 5000)),
            ),
            kv("server.address", text("shop.example.com")),
            kv(
                "network.peer.address",
                text(format!(
                    "10.0.{}.{}",
                    rng.next_u64() % 4,
                    rng.next_u64() % 255
                )),
            ),
            kv(
                "session.id",
                text(format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())),
            ),
            kv("service.peer.name", text("frontend")),
        ],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        status: Some(Status {
            message: String::new(),
            code: if status >= 500 { 2 } else { 0 },
        }),
    }
}

fn request() -> ExportTraceServiceRequest {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("shop-api")),
                    kv("service.version", text("2.14.1")),
                    kv("deployment.environment.name", text("production")),
                    kv("host.name", text("shop-api-7d9f8b6c5-x2k4q")),
                    kv("telemetry.sdk.language", text("java")),
                ],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.tomcat-10.0".into(),
                    version: "2.10.0-alpha".into(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                spans: (0..SPANS).map(|i| http_server_span(&mut rng, i)).collect(),
                schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn decode(c: &mut Criterion) {
    let body = request().encode_to_vec();
    let limits = Limits::default();
    // Both decoders must agree on what they read before they are timed.
    let decoded =
        decode_traces(&body, &limits).unwrap_or_else(|e| panic!("decoding the bench request: {e}"));
    assert_eq!(decoded.batch.span_count(), SPANS);
    assert_eq!(decoded.rejected_spans, 0);
    eprintln!(
        "request: {} spans, {} bytes ({} bytes per span)",
        SPANS,
        body.len(),
        body.len() / SPANS
    );

    let mut group = c.benchmark_group("decode_proto");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("tracewarden", |b| {
        b.iter(|| decode_traces(black_box(&body), &limits))
    });
    group.bench_function("prost", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&body[..])))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
