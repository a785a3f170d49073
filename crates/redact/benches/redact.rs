//! What does redaction with the built-in rules cost on the ingest path?
//!
//! One OTLP protobuf request of 1000 HTTP server spans (14 attributes each,
//! as a Java agent records them, with captured request headers; 1 span in
//! 10 carries `Authorization: Bearer <JWT>`, 1 in 50 a password in its
//! query string, 1 in 100 an exception event with a card number), taken
//! through what ingest does to it in memory before the WAL: decode and
//! normalise, without and with redaction, in one run. The real path also
//! encodes, writes and fsyncs the WAL and fills the hot tier, so the share
//! measured here is an upper bound.
//!
//! `cargo bench -p tracewarden-redact --bench redact`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use tracewarden_ingest::Limits;
use tracewarden_ingest::otlp::proto::decode_traces;
use tracewarden_model::normalise;
use tracewarden_redact::{RedactionConfig, Redactor};

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

fn header(value: impl Into<String>) -> Value {
    Value::ArrayValue(ArrayValue {
        values: vec![AnyValue {
            value: Some(text(value)),
        }],
    })
}

/// A seeded xorshift, so every run works on the same bytes.
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

/// A version 4 UUID from two random words.
fn uuid(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
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
    let query = if i % 50 == 7 {
        format!("user=u{}&password=pw{}&next=/", i, rng.next_u64())
    } else {
        format!(
            "page={}&sort=desc&q=term{}",
            rng.next_u64() % 50,
            rng.next_u64() % 1000
        )
    };
    let mut attributes = vec![
        kv("http.request.method", text(method)),
        kv("url.path", text(path)),
        kv("url.query", text(query)),
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
        kv(
            "http.request.header.content-type",
            header("application/json"),
        ),
        kv(
            "http.request.header.x-request-id",
            header(uuid(rng.next_u64(), rng.next_u64())),
        ),
    ];
    if i % 10 == 3 {
        attributes.push(kv(
            "http.request.header.authorization",
            header(format!(
                "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLXtpfSJ9.{:016x}",
                rng.next_u64()
            )),
        ));
    }
    let events = if i % 100 == 42 {
        vec![span::Event {
            time_unix_nano: start + 10,
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", text("PaymentDeclined")),
                kv(
                    "exception.message",
                    text("card 4111 1111 1111 1111 declined by issuer"),
                ),
            ],
            dropped_attributes_count: 0,
        }]
    } else {
        vec![]
    };
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
        attributes,
        dropped_attributes_count: 0,
        events,
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

fn ingest(c: &mut Criterion) {
    let body = request().encode_to_vec();
    let limits = Limits::default();
    let redactor = Redactor::new(&RedactionConfig::default(), None)
        .unwrap_or_else(|e| panic!("the default rules: {e}"));
    // What the defaults do to this request, checked before it is timed.
    let mut batch = decode_traces(&body, &limits)
        .unwrap_or_else(|e| panic!("decoding the bench request: {e}"))
        .batch;
    assert_eq!(batch.span_count(), SPANS);
    normalise::batch(&mut batch);
    redactor.batch(&mut batch);
    let redacted: u64 = redactor.counts().iter().map(|(_, n)| n).sum();
    assert_eq!(redacted, 100 + 20 + 10, "{:?}", redactor.counts());

    interleaved_ratio(&body, &limits, &redactor);

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("decode_normalise", |b| {
        b.iter(|| {
            let mut batch = decode_traces(black_box(&body), &limits)
                .map(|d| d.batch)
                .unwrap_or_default();
            normalise::batch(&mut batch);
            batch
        })
    });
    group.bench_function("decode_normalise_redact", |b| {
        b.iter(|| {
            let mut batch = decode_traces(black_box(&body), &limits)
                .map(|d| d.batch)
                .unwrap_or_default();
            normalise::batch(&mut batch);
            redactor.batch(&mut batch);
            batch
        })
    });
    group.finish();

    let mut decoded = decode_traces(&body, &limits)
        .map(|d| d.batch)
        .unwrap_or_default();
    normalise::batch(&mut decoded);
    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("default_rules", |b| {
        b.iter_batched(
            || decoded.clone(),
            |mut batch| {
                redactor.batch(&mut batch);
                batch
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The ratio of the two ingest variants, robust to a shared machine: the
/// variants alternate within each round (the order swapping every round),
/// and the median of the per-round ratios is printed. Criterion times them
/// one after the other, so a burst of other work can land on one only.
fn interleaved_ratio(body: &[u8], limits: &Limits, redactor: &Redactor) {
    const ROUNDS: usize = 301;
    let run = |redact: bool| {
        let start = std::time::Instant::now();
        let mut batch = decode_traces(black_box(body), limits)
            .map(|d| d.batch)
            .unwrap_or_default();
        normalise::batch(&mut batch);
        if redact {
            redactor.batch(&mut batch);
        }
        let elapsed = start.elapsed();
        drop(black_box(batch));
        elapsed.as_secs_f64()
    };
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut plain = Vec::with_capacity(ROUNDS);
    let mut redacted = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = run(false);
            (a, run(true))
        } else {
            let b = run(true);
            (run(false), b)
        };
        ratios.push(b / a);
        plain.push(a);
        redacted.push(b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut plain), median(&mut redacted));
    eprintln!(
        "interleaved, {ROUNDS} rounds: decode+normalise {:.0}k spans/s, with redaction {:.0}k spans/s, \
         median per-round ratio {:.3} (redaction +{:.1}%)",
        SPANS as f64 / a / 1e3,
        SPANS as f64 / b / 1e3,
        median(&mut ratios),
        (median(&mut ratios) - 1.0) * 100.0
    );
}

criterion_group!(benches, ingest);
criterion_main!(benches);
