//! The whole built-in pack over a fixed stream of HTTP server spans shaped
//! like the load generator's (`tracewarden bench ingest`: 11 span and 9
//! resource attributes), on one core: the detection thread's cost per span
//! with windows as full as in a steady stream, reproducibly (the same spans
//! and event times in every run, unlike a criterion bench whose state grows
//! with the number of iterations it chooses).
//!
//! `cargo run --release -p tracewarden-detect --example pack_throughput`
//! prints, per round, the time per span over 200 batches of 1,000 spans
//! after 60 batches of warm-up (one batch per 100 ms of event time).
//!
//! With `PACK_MIX=1`, two spans in three are the server's own calls instead:
//! an HTTP client span to another service and an internal database span, as
//! in traces of real services (where server spans are the minority).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracewarden_detect::engine::Engine;
use tracewarden_detect::inject::cache_counts;
use tracewarden_detect::rule::load_dir;
use tracewarden_model::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, SpanRecord, TraceId,
};

const BATCH: u64 = 1_000;
const WARM_UP: u64 = 60;
const MEASURED: u64 = 200;
const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

fn resource(service: &str) -> Arc<Resource> {
    let attributes = [
        ("service.name", service),
        ("service.version", "2.4.1"),
        ("service.namespace", "weather"),
        ("deployment.environment.name", "production"),
        ("host.name", "node-7"),
        ("host.arch", "amd64"),
        ("os.type", "linux"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", "rust"),
    ];
    Arc::new(Resource {
        attributes: attributes
            .iter()
            .map(|(k, v)| KeyValue::new(*k, *v))
            .collect(),
        ..Resource::default()
    })
}

/// A span the server opens while handling request `n`: an HTTP call to the
/// location service (client) or a database query (internal).
fn call(n: u64, start: u64, resource: &Arc<Resource>, scope: &Arc<Scope>) -> SpanRecord {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&(n - n % 3).to_be_bytes());
    let city = ["Berlin", "Paris", "Lisbon", "Oslo"][(n % 4) as usize];
    let mut span = Span::new(
        TraceId::from_bytes(id),
        SpanId::from_bytes([(n % 3) as u8 + 1; 8]),
        "call",
    );
    span.parent_span_id = Some(SpanId::from_bytes([1; 8]));
    span.start_time_unix_nano = start;
    span.end_time_unix_nano = start + 1_000_000;
    if n % 3 == 1 {
        span.kind = SpanKind::Client;
        span.name = "GET".into();
        span.attributes = vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new(
                "url.full",
                format!("http://location.internal:8080/v1/cities/{city}").as_str(),
            ),
            KeyValue::new("server.address", "location.internal"),
            KeyValue::new("server.port", AnyValue::Int(8080)),
            KeyValue::new("http.response.status_code", AnyValue::Int(200)),
        ];
    } else {
        span.kind = SpanKind::Internal;
        span.name = "SELECT cities".into();
        span.attributes = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.operation.name", "SELECT"),
            KeyValue::new("db.collection.name", "cities"),
            KeyValue::new(
                "db.query.text",
                "SELECT lat, lon FROM cities WHERE name = $1",
            ),
            KeyValue::new("server.address", "db.internal"),
        ];
    }
    SpanRecord {
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
        span: span.into(),
    }
}

fn batch(number: u64, resources: &[Arc<Resource>], scope: &Arc<Scope>) -> Vec<SpanRecord> {
    let cities = [
        "Berlin", "Paris", "Lisbon", "Oslo", "Rome", "Vienna", "Madrid", "Prague",
    ];
    let mix = std::env::var_os("PACK_MIX").is_some_and(|v| v == "1");
    (0..BATCH)
        .map(|i| {
            let n = number * BATCH + i;
            if mix && !n.is_multiple_of(3) {
                let start = BASE + number * SEC / 10 + i * 100_000;
                return call(n, start, &resources[(n % 3) as usize], scope);
            }
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&n.to_be_bytes());
            let (route, path, query, status, agent) = match n % 100 {
                0..=79 => {
                    let city = cities[(n % 8) as usize];
                    (
                        "/api/v1/weather/{city}",
                        format!("/api/v1/weather/{city}"),
                        format!("units=metric&lang=en&days={}", n % 7),
                        200,
                        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                    )
                }
                80..=89 => (
                    "/api/v1/login",
                    "/api/v1/login".to_string(),
                    String::new(),
                    if n.is_multiple_of(3) { 401 } else { 200 },
                    "WeatherApp/3.2 (iPhone; iOS 18.1)",
                ),
                90..=97 => (
                    "/api/v1/locations/{city}",
                    "/api/v1/locations/Unknown".to_string(),
                    "q=unknown".to_string(),
                    404,
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
                ),
                _ => (
                    "/api/v1/weather/{city}",
                    "/api/v1/weather/Berlin".to_string(),
                    "units=metric' OR '1'='1".to_string(),
                    500,
                    "sqlmap/1.8.11#stable (https://sqlmap.org)",
                ),
            };
            let mut span = Span::new(
                TraceId::from_bytes(id),
                SpanId::from_bytes([1; 8]),
                format!("GET {route}"),
            );
            span.kind = SpanKind::Server;
            span.start_time_unix_nano = BASE + number * SEC / 10 + i * 100_000;
            span.end_time_unix_nano = span.start_time_unix_nano + 2_000_000;
            span.attributes = vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", path.as_str()),
                KeyValue::new("url.query", query.as_str()),
                KeyValue::new("url.scheme", "https"),
                KeyValue::new("http.response.status_code", AnyValue::Int(status)),
                KeyValue::new("client.address", format!("203.0.113.{}", n % 200).as_str()),
                KeyValue::new("user_agent.original", agent),
                KeyValue::new("enduser.id", format!("user{}", n % 500).as_str()),
                KeyValue::new("session.id", format!("s-{}", n % 700).as_str()),
                KeyValue::new("server.address", "api.weather.example"),
            ];
            SpanRecord {
                resource: Arc::clone(&resources[(n % 3) as usize]),
                scope: Arc::clone(scope),
                span: span.into(),
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))?;
    let resources: Vec<_> = ["gateway", "weather", "location"].map(resource).to_vec();
    let scope = Arc::new(Scope::default());
    let batches: Vec<Vec<SpanRecord>> = (0..WARM_UP + MEASURED)
        .map(|b| batch(b, &resources, &scope))
        .collect();
    println!(
        "{} rules; {MEASURED} batches of {BATCH} spans after {WARM_UP} of warm-up",
        rules.len()
    );
    for round in 1..=3 {
        let mut engine = Engine::new(rules.clone());
        let mut detections = 0;
        let mut started = Instant::now();
        for (b, spans) in batches.iter().enumerate() {
            if b as u64 == WARM_UP {
                started = Instant::now();
            }
            let now = BASE + (b as u64 + 1) * SEC / 10;
            detections += engine.process(spans, now).len();
        }
        let per_span = started.elapsed().as_secs_f64() * 1e6 / (MEASURED * BATCH) as f64;
        let (hits, misses) = cache_counts();
        println!(
            "round {round}: {per_span:.2} µs per span ({detections} detections; injection verdicts so far: {hits} remembered, {misses} scanned)"
        );
    }
    Ok(())
}
