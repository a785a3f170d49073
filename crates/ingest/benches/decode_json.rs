//! How fast do the JSON decoders turn a realistic request into a batch?
//!
//! One request of 1000 HTTP server spans, each with the 12 attributes a
//! typical HTTP server instrumentation records, encoded once as OTLP/JSON
//! (the way the OpenTelemetry JS and Collector exporters write it: hex ids,
//! 64-bit times as strings) and once as the equivalent Zipkin v2 JSON.
//! The data is generated from a fixed seed, so runs are comparable.
//!
//! `cargo bench -p tracewarden-ingest --bench decode_json`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tracewarden_ingest::Limits;
use tracewarden_ingest::otlp::json::decode_traces;
use tracewarden_ingest::zipkin::decode_spans;

const SPANS: usize = 1000;

/// splitmix64: a fixed, dependency-free sequence of pseudo-random numbers.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// One HTTP server span, as the fields both encodings are built from.
struct HttpSpan {
    trace_id: String,
    span_id: String,
    parent_id: String,
    name: String,
    start_micros: u64,
    duration_micros: u64,
    status: u16,
    /// The 12 attributes, with their string form for Zipkin tags.
    attributes: Vec<(&'static str, Value)>,
    client_ip: String,
    client_port: u16,
}

fn http_spans() -> Vec<HttpSpan> {
    let mut seq = Seq(42);
    let routes = [
        "/api/login",
        "/api/orders/{id}",
        "/api/cart",
        "/api/search",
        "/api/users/{id}/profile",
    ];
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "curl/8.5.0",
        "python-requests/2.32.3",
    ];
    (0..SPANS)
        .map(|i| {
            let route = seq.pick(&routes);
            let method = seq.pick(&methods);
            let status: u16 = match seq.next() % 20 {
                0 => 500,
                1 | 2 => 401,
                3 => 404,
                _ => 200,
            };
            let path = route.replace("{id}", &(seq.next() % 100_000).to_string());
            let client_ip = format!("203.0.{}.{}", seq.next() % 256, seq.next() % 256);
            let client_port = 1024 + (seq.next() % 60_000) as u16;
            let user = format!("user-{}", seq.next() % 5000);
            let attributes = vec![
                ("http.request.method", json!(method)),
                ("http.route", json!(route)),
                ("url.path", json!(path)),
                ("url.scheme", json!("https")),
                (
                    "url.query",
                    json!(format!("page={}&sort=desc", seq.next() % 10)),
                ),
                ("http.response.status_code", json!(status)),
                ("server.address", json!("shop.example.com")),
                ("server.port", json!(443)),
                ("client.address", json!(client_ip)),
                ("user_agent.original", json!(seq.pick(&agents))),
                ("network.protocol.version", json!("1.1")),
                ("enduser.id", json!(user)),
            ];
            HttpSpan {
                trace_id: format!("{:016x}{:016x}", seq.next(), seq.next()),
                span_id: format!("{:016x}", seq.next() | 1),
                parent_id: format!("{:016x}", seq.next() | 1),
                name: format!("{method} {route}"),
                start_micros: 1_732_000_000_000_000 + i as u64 * 1_000,
                duration_micros: 500 + seq.next() % 50_000,
                status,
                attributes,
                client_ip,
                client_port,
            }
        })
        .collect()
}

fn otlp_value(value: &Value) -> Value {
    match value {
        Value::String(s) => json!({ "stringValue": s }),
        // Int64 as a string, as the protobuf JSON mapping writes it.
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        other => panic!("unexpected attribute value {other}"),
    }
}

fn otlp_json(spans: &[HttpSpan]) -> Vec<u8> {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "parentSpanId": s.parent_id,
                "name": s.name,
                "kind": 2,
                "startTimeUnixNano": (s.start_micros * 1000).to_string(),
                "endTimeUnixNano": ((s.start_micros + s.duration_micros) * 1000).to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| json!({ "key": k, "value": otlp_value(v) })).collect::<Vec<_>>(),
                "status": if s.status >= 500 { json!({ "code": 2 }) } else { json!({}) },
            })
        })
        .collect();
    let request = json!({
        "resourceSpans": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": "shop-api" } },
                { "key": "service.version", "value": { "stringValue": "2.14.1" } },
                { "key": "deployment.environment.name", "value": { "stringValue": "production" } },
                { "key": "host.name", "value": { "stringValue": "shop-api-7d9f8b6c5-x2k4q" } },
            ]},
            "scopeSpans": [{
                "scope": { "name": "@opentelemetry/instrumentation-http", "version": "0.52.1" },
                "spans": spans,
            }],
        }],
    });
    serde_json::to_vec(&request).unwrap()
}

fn zipkin_json(spans: &[HttpSpan]) -> Vec<u8> {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut tags = serde_json::Map::new();
            for (key, value) in &s.attributes {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                tags.insert((*key).to_string(), Value::String(text));
            }
            if s.status >= 500 {
                tags.insert("error".to_string(), Value::String(s.status.to_string()));
            }
            json!({
                "traceId": s.trace_id,
                "id": s.span_id,
                "parentId": s.parent_id,
                "kind": "SERVER",
                "name": s.name.to_lowercase(),
                "timestamp": s.start_micros,
                "duration": s.duration_micros,
                "localEndpoint": { "serviceName": "shop-api", "ipv4": "10.0.3.17", "port": 8080 },
                "remoteEndpoint": { "ipv4": s.client_ip, "port": s.client_port },
                "tags": tags,
            })
        })
        .collect();
    serde_json::to_vec(&spans).unwrap()
}

fn decode_json(c: &mut Criterion) {
    let spans = http_spans();
    let otlp = otlp_json(&spans);
    let zipkin = zipkin_json(&spans);
    let limits = Limits::default();
    // Check once that the bench measures what it claims.
    assert_eq!(
        decode_traces(&otlp, &limits).unwrap().batch.span_count(),
        SPANS
    );
    assert_eq!(
        decode_spans(&zipkin, &limits).unwrap().batch.span_count(),
        SPANS
    );
    eprintln!(
        "request sizes: OTLP/JSON {} B ({} B/span), Zipkin {} B ({} B/span)",
        otlp.len(),
        otlp.len() / SPANS,
        zipkin.len(),
        zipkin.len() / SPANS
    );

    let mut group = c.benchmark_group("decode_json");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("otlp_json/1000_http_server_spans", |b| {
        b.iter(|| decode_traces(black_box(&otlp), &limits).unwrap())
    });
    group.bench_function("zipkin_json/1000_http_server_spans", |b| {
        b.iter(|| decode_spans(black_box(&zipkin), &limits).unwrap())
    });
    // The floor for any serde_json-based decoder: parse and skip everything.
    group.bench_function("serde_json_skip/otlp_json", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&otlp)).unwrap())
    });
    group.bench_function("serde_json_skip/zipkin_json", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&zipkin)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decode_json);
criterion_main!(benches);
