//! The workload: realistic OTLP trace batches, encoded (and gzipped) once,
//! before the timed run.
//!
//! A batch is an `ExportTraceServiceRequest` of HTTP server spans from three
//! services of a small weather application: `gateway` (the public edge),
//! `weather` and `location`. A trace is one of four flows: a forecast
//! (gateway -> weather -> location), a location lookup (gateway -> location),
//! a login (gateway only; some 401s), or a scanner probing the gateway (404,
//! 403, a SQL injection attempt that ends in a 500). Each span carries the
//! dozen attributes an HTTP server instrumentation records, which makes
//! about 600 bytes of protobuf per span, as in real exports.
//!
//! With `calls`, each call between services also has the caller's client
//! span (between the caller's server span and the callee's), and the
//! location service's database query its client span, as HTTP and
//! database instrumentations record them: real traces are mostly such
//! spans, and most detection rules look only at server spans.
//!
//! Per request, [`Template::body`] XORs every trace id of the batch with a
//! per-request key, in a copy of the encoded body: the server never sees the
//! same trace twice, yet the client does no encoding. Gzipped bodies cannot be
//! rewritten without compressing again, so with `--gzip` the `--batches`
//! distinct batches are sent as they are, in turn.

use std::collections::HashSet;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to build the workload.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadSpec {
    pub batch_spans: usize,
    pub batches: usize,
    pub gzip: bool,
    pub seed: u64,
    pub framing: Framing,
    /// Client spans for calls between services and database queries too.
    pub calls: bool,
}

/// What precedes the encoded request on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// OTLP/HTTP: the body is the message.
    Bare,
    /// OTLP/gRPC: the gRPC length prefix (compressed flag, big-endian length).
    GrpcLengthPrefixed,
}

/// The pre-encoded request bodies, and what they hold.
#[derive(Debug)]
pub struct Workload {
    pub templates: Vec<Template>,
    /// Spans in all templates.
    pub spans: u64,
    /// Protobuf bytes of all templates, before compression and framing.
    pub protobuf_bytes: u64,
    /// Bytes of all request bodies, as sent.
    pub body_bytes: u64,
}

/// One request body, ready to send.
#[derive(Debug)]
pub struct Template {
    body: Bytes,
    /// Where each span's 16 trace-id bytes sit in `body` (empty when gzipped).
    trace_id_offsets: Vec<usize>,
    pub spans: u64,
    /// Bytes of the encoded request before compression and framing.
    pub protobuf_len: u64,
}

/// Why the workload could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    #[error("failed to gzip a batch")]
    Gzip(#[source] std::io::Error),
    #[error("a batch of {bytes} bytes exceeds the gRPC length prefix")]
    TooLarge { bytes: usize },
    #[error("found {found} trace ids in a batch of {spans} spans")]
    TraceIds { found: usize, spans: usize },
}

impl Workload {
    pub fn build(spec: WorkloadSpec) -> Result<Workload, WorkloadError> {
        let mut generator = Generator::new(spec.seed, spec.calls);
        let mut workload = Workload {
            templates: Vec::with_capacity(spec.batches),
            spans: 0,
            protobuf_bytes: 0,
            body_bytes: 0,
        };
        for _ in 0..spec.batches {
            let (request, spans) = generator.batch(spec.batch_spans);
            let template = Template::encode(&request, spans, spec.gzip, spec.framing)?;
            workload.spans += template.spans;
            workload.protobuf_bytes += template.protobuf_len;
            workload.body_bytes += template.body.len() as u64;
            workload.templates.push(template);
        }
        Ok(workload)
    }

    pub fn protobuf_bytes_per_span(&self) -> f64 {
        ratio(self.protobuf_bytes, self.spans)
    }

    pub fn body_bytes_per_span(&self) -> f64 {
        ratio(self.body_bytes, self.spans)
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

impl Template {
    fn encode(
        request: &ExportTraceServiceRequest,
        spans: usize,
        gzip: bool,
        framing: Framing,
    ) -> Result<Template, WorkloadError> {
        let protobuf = request.encode_to_vec();
        let protobuf_len = protobuf.len() as u64;
        let payload = if gzip {
            let mut encoder = GzEncoder::new(
                Vec::with_capacity(protobuf.len() / 4),
                Compression::default(),
            );
            encoder.write_all(&protobuf).map_err(WorkloadError::Gzip)?;
            encoder.finish().map_err(WorkloadError::Gzip)?
        } else {
            protobuf
        };
        let prefix: Vec<u8> = match framing {
            Framing::Bare => Vec::new(),
            Framing::GrpcLengthPrefixed => {
                let len = u32::try_from(payload.len()).map_err(|_| WorkloadError::TooLarge {
                    bytes: payload.len(),
                })?;
                let mut prefix = vec![u8::from(gzip)];
                prefix.extend_from_slice(&len.to_be_bytes());
                prefix
            }
        };
        let trace_id_offsets = if gzip {
            Vec::new()
        } else {
            let trace_ids: HashSet<&[u8]> = request
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|span| span.trace_id.as_slice())
                .collect();
            let offsets: Vec<usize> = trace_id_field_offsets(&payload, &trace_ids)
                .into_iter()
                .map(|offset| offset + prefix.len())
                .collect();
            if offsets.len() != spans {
                return Err(WorkloadError::TraceIds {
                    found: offsets.len(),
                    spans,
                });
            }
            offsets
        };
        let mut body = prefix;
        body.extend_from_slice(&payload);
        Ok(Template {
            body: Bytes::from(body),
            trace_id_offsets,
            spans: spans as u64,
            protobuf_len,
        })
    }

    /// The body of one request: every trace id XORed with `key`, so each
    /// request carries new traces (the parent/child links within a trace
    /// hold, as they are span ids). Gzipped bodies are returned as they are.
    pub fn body(&self, key: &[u8; 16]) -> Bytes {
        if self.trace_id_offsets.is_empty() {
            return self.body.clone();
        }
        let mut body = BytesMut::from(&self.body[..]);
        for &offset in &self.trace_id_offsets {
            // The offsets were found in this very body, so they are in range.
            if let Some(trace_id) = body.get_mut(offset..offset + 16) {
                for (byte, k) in trace_id.iter_mut().zip(key) {
                    *byte ^= k;
                }
            }
        }
        body.freeze()
    }
}

/// Offsets of the values of `Span.trace_id` fields (field 1, length 16: the
/// bytes 0x0A 0x10 then the id) whose id is one of `trace_ids`. Checking the
/// id against the batch's own makes a false match as unlikely as guessing a
/// random 128-bit id, and the caller checks that one is found per span.
fn trace_id_field_offsets(encoded: &[u8], trace_ids: &HashSet<&[u8]>) -> Vec<usize> {
    const TAG_AND_LEN: [u8; 2] = [0x0A, 0x10];
    let mut offsets = Vec::new();
    let mut at = 0;
    while let Some(window) = encoded.get(at..at + 18) {
        if window[..2] == TAG_AND_LEN && trace_ids.contains(&window[2..]) {
            offsets.push(at + 2);
            at += 18;
        } else {
            at += 1;
        }
    }
    offsets
}

/// A per-request key: distinct for every (worker, sequence) pair of a run,
/// and random-looking, so rewritten trace ids stay uniformly distributed.
pub fn request_key(seed: u64, worker: u64, sequence: u64) -> [u8; 16] {
    let stream = splitmix64(seed ^ splitmix64(worker.wrapping_add(0x5851_F42D_4C95_7F2D)));
    // splitmix64 is a bijection, so distinct sequences give distinct halves.
    let low = splitmix64(stream ^ sequence);
    let high = splitmix64(low ^ stream);
    let mut key = [0; 16];
    key[..8].copy_from_slice(&low.to_le_bytes());
    key[8..].copy_from_slice(&high.to_le_bytes());
    key
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A service of the simulated application and what its resource says.
struct Service {
    name: &'static str,
    version: &'static str,
    host: &'static str,
    server_address: &'static str,
    pod_address: &'static str,
    scope: &'static str,
    scope_version: &'static str,
}

const GATEWAY: usize = 0;
const WEATHER: usize = 1;
const LOCATION: usize = 2;

const SERVICES: [Service; 3] = [
    Service {
        name: "gateway",
        version: "2.14.1",
        host: "gateway-7d9f8b6c5-x2k4p",
        server_address: "api.weather.example.com",
        pod_address: "10.42.0.17",
        scope: "opentelemetry-instrumentation-axum",
        scope_version: "0.8.2",
    },
    Service {
        name: "weather",
        version: "1.9.0",
        host: "weather-5c6d7f8b9-q8r2t",
        server_address: "weather.default.svc.cluster.local",
        pod_address: "10.42.1.23",
        scope: "io.opentelemetry.tomcat-10.0",
        scope_version: "2.10.0-alpha",
    },
    Service {
        name: "location",
        version: "0.31.4",
        host: "location-6b7c8d9e1-m3n5v",
        server_address: "location.default.svc.cluster.local",
        pod_address: "10.42.2.31",
        scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        scope_version: "0.58.0",
    },
];

const CITIES: [&str; 12] = [
    "berlin", "paris", "tokyo", "lagos", "lima", "oslo", "austin", "pune", "seoul", "quito",
    "cairo", "perth",
];

const BROWSER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
];
const SCANNER_AGENT: &str = "sqlmap/1.8.11#stable (https://sqlmap.org)";
/// The user agent of the services' own HTTP clients, on internal calls.
const INTERNAL_AGENT: &str = "reqwest/0.12.9";

/// Paths a scanner probes, and what the gateway answers.
const PROBES: [(&str, &str, i64); 4] = [
    ("/.env", "", 404),
    ("/wp-login.php", "", 404),
    ("/admin/config.php", "debug=1", 403),
    (
        "/api/v1/forecast",
        "city=berlin%27%20OR%201%3D1--&days=3",
        500,
    ),
];

/// A browser (or a scanner) and what identifies it.
struct Visitor {
    address: String,
    user_agent: &'static str,
    /// `None` for anonymous scanners.
    user: Option<String>,
    session: String,
}

/// One span before encoding: which service emits it, and the HTTP exchange.
struct Exchange<'a> {
    service: usize,
    method: &'static str,
    path: String,
    query: String,
    route: Option<&'static str>,
    status: i64,
    visitor: &'a Visitor,
    /// Who called: `None` for the edge, else the calling service.
    caller: Option<usize>,
    start_ns: u64,
    duration_ns: u64,
}

struct Generator {
    rng: StdRng,
    /// Client spans for calls and database queries too.
    calls: bool,
    visitors: Vec<Visitor>,
    scanners: Vec<Visitor>,
    /// Start of the next trace; advances a little per trace, as a live feed would.
    clock_ns: u64,
}

impl Generator {
    fn new(seed: u64, calls: bool) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let visitors = (0..200)
            .map(|i| Visitor {
                address: if i % 8 == 0 {
                    format!(
                        "2001:db8:{:x}::{:x}",
                        rng.random_range(1..0xffff_u32),
                        rng.random_range(1..0xffff_u32)
                    )
                } else {
                    format!(
                        "{}.{}",
                        ["203.0.113", "198.51.100", "192.0.2"][i % 3],
                        rng.random_range(1..255_u32)
                    )
                },
                user_agent: pick(&mut rng, &BROWSER_AGENTS),
                user: Some(format!(
                    "user{:05}@example.com",
                    rng.random_range(0..100_000_u32)
                )),
                session: hex(&rng.random::<[u8; 16]>()),
            })
            .collect();
        let scanners = (0..3)
            .map(|_| Visitor {
                address: format!("185.220.101.{}", rng.random_range(1..255_u32)),
                user_agent: SCANNER_AGENT,
                user: None,
                session: hex(&rng.random::<[u8; 16]>()),
            })
            .collect();
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Generator {
            rng,
            calls,
            visitors,
            scanners,
            clock_ns: now_ns,
        }
    }

    /// A request of exactly `spans` spans, grouped by service; the last trace
    /// may be cut short, as happens at a real batch boundary.
    fn batch(&mut self, spans: usize) -> (ExportTraceServiceRequest, usize) {
        let Generator {
            rng,
            calls,
            visitors,
            scanners,
            clock_ns,
        } = self;
        let mut by_service: [Vec<Span>; 3] = Default::default();
        let mut count = 0;
        while count < spans {
            *clock_ns += rng.random_range(20_000..200_000);
            let trace_id: [u8; 16] = rng.random();
            // The exchanges are chained: each span is the child of the one before.
            let mut parent_span_id = Vec::new();
            for exchange in trace(rng, visitors, scanners, *clock_ns) {
                if count == spans {
                    break;
                }
                let service = exchange.service;
                // (service, span) in the order they are sent.
                let mut emitted = Vec::with_capacity(3);
                // The caller's client span comes between its server span
                // and the callee's.
                if let Some(caller) = exchange.caller.filter(|_| *calls) {
                    let span = client_span(rng, &trace_id, parent_span_id.clone(), &exchange);
                    parent_span_id = span.span_id.clone();
                    emitted.push((caller, span));
                }
                // Made before the server span, which takes the exchange.
                let query = (*calls && service == LOCATION).then(|| {
                    database_span(rng, &trace_id, exchange.start_ns, exchange.duration_ns)
                });
                let span = server_span(rng, &trace_id, parent_span_id, exchange);
                parent_span_id = span.span_id.clone();
                emitted.push((service, span));
                if let Some(mut query) = query {
                    query.parent_span_id = parent_span_id.clone();
                    emitted.push((service, query));
                }
                for (service, span) in emitted {
                    if count == spans {
                        break;
                    }
                    if let Some(list) = by_service.get_mut(service) {
                        list.push(span);
                        count += 1;
                    }
                }
            }
        }
        let resource_spans = SERVICES
            .iter()
            .zip(by_service)
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: resource_attributes(service),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: service.scope.to_string(),
                        version: service.scope_version.to_string(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: "https://opentelemetry.io/schemas/1.27.0".to_string(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.27.0".to_string(),
            })
            .collect();
        (ExportTraceServiceRequest { resource_spans }, count)
    }
}

/// The exchanges of one trace starting at `start_ns`, parents before children.
fn trace<'v>(
    rng: &mut StdRng,
    visitors: &'v [Visitor],
    scanners: &'v [Visitor],
    start_ns: u64,
) -> Vec<Exchange<'v>> {
    let roll = rng.random_range(0..100);
    let visitor = visitors.get(rng.random_range(0..visitors.len().max(1)));
    let scanner = scanners.get(rng.random_range(0..scanners.len().max(1)));
    let (Some(visitor), Some(scanner)) = (visitor, scanner) else {
        return Vec::new();
    };
    let city = pick(rng, &CITIES);
    let edge =
        |method, path: String, query: String, route, status, visitor, duration_ns| Exchange {
            service: GATEWAY,
            method,
            path,
            query,
            route,
            status,
            visitor,
            caller: None,
            start_ns,
            duration_ns,
        };
    match roll {
        // A forecast: gateway -> weather -> location. A weather failure
        // (2%) surfaces as a 500 at the gateway too.
        0..50 => {
            let days = rng.random_range(1..8);
            let location_ns = rng.random_range(1_000_000..6_000_000);
            let weather_ns = location_ns + rng.random_range(2_000_000..15_000_000);
            let gateway_ns = weather_ns + rng.random_range(500_000..3_000_000);
            let status = if rng.random_bool(0.02) { 500 } else { 200 };
            vec![
                edge(
                    "GET",
                    "/api/v1/forecast".to_string(),
                    format!("city={city}&days={days}"),
                    Some("/api/v1/forecast"),
                    status,
                    visitor,
                    gateway_ns,
                ),
                Exchange {
                    service: WEATHER,
                    method: "GET",
                    path: "/v1/forecast".to_string(),
                    query: format!("city={city}&days={days}&units=metric"),
                    route: Some("/v1/forecast"),
                    status,
                    visitor,
                    caller: Some(GATEWAY),
                    start_ns: start_ns + 200_000,
                    duration_ns: weather_ns,
                },
                Exchange {
                    service: LOCATION,
                    method: "GET",
                    path: format!("/v1/locations/{city}"),
                    query: "fields=lat,lon,tz".to_string(),
                    route: Some("/v1/locations/{city}"),
                    status: 200,
                    visitor,
                    caller: Some(WEATHER),
                    start_ns: start_ns + 400_000,
                    duration_ns: location_ns,
                },
            ]
        }
        // A location lookup: gateway -> location; unknown cities are 404s.
        50..80 => {
            let location_ns = rng.random_range(1_000_000..6_000_000);
            let status = if rng.random_bool(0.05) { 404 } else { 200 };
            vec![
                edge(
                    "GET",
                    format!("/api/v1/locations/{city}"),
                    "lang=en".to_string(),
                    Some("/api/v1/locations/{city}"),
                    status,
                    visitor,
                    location_ns + rng.random_range(500_000..3_000_000),
                ),
                Exchange {
                    service: LOCATION,
                    method: "GET",
                    path: format!("/v1/locations/{city}"),
                    query: "fields=lat,lon,tz,name".to_string(),
                    route: Some("/v1/locations/{city}"),
                    status,
                    visitor,
                    caller: Some(GATEWAY),
                    start_ns: start_ns + 200_000,
                    duration_ns: location_ns,
                },
            ]
        }
        // A login at the gateway, slow because of password hashing; a
        // quarter fail.
        80..92 => vec![edge(
            "POST",
            "/api/v1/login".to_string(),
            "redirect=%2Fdashboard".to_string(),
            Some("/api/v1/login"),
            if rng.random_bool(0.25) { 401 } else { 200 },
            visitor,
            rng.random_range(20_000_000..80_000_000),
        )],
        // A scanner probe.
        _ => {
            let (path, query, status) = pick(rng, &PROBES);
            let route = (status != 404).then_some(path);
            vec![edge(
                "GET",
                path.to_string(),
                query.to_string(),
                route,
                status,
                scanner,
                rng.random_range(200_000..1_000_000),
            )]
        }
    }
}

/// Encodes an exchange as the server span of its service.
fn server_span(
    rng: &mut StdRng,
    trace_id: &[u8; 16],
    parent_span_id: Vec<u8>,
    exchange: Exchange<'_>,
) -> Span {
    let span_id = rng.random::<[u8; 8]>().to_vec();
    let Exchange {
        service,
        method,
        path,
        query,
        route,
        status,
        visitor,
        caller,
        start_ns,
        duration_ns,
    } = exchange;
    let own = SERVICES.get(service);
    let caller_service = caller.and_then(|c| SERVICES.get(c));
    let (client_address, user_agent, peer_name) = match caller_service {
        Some(caller) => (caller.pod_address.to_string(), INTERNAL_AGENT, caller.name),
        None => (visitor.address.clone(), visitor.user_agent, "web"),
    };
    let mut attributes = Vec::with_capacity(12);
    attributes.push(string("http.request.method", method));
    attributes.push(string("url.path", path.clone()));
    attributes.push(string("url.query", query));
    if let Some(route) = route {
        attributes.push(string("http.route", route));
    }
    attributes.push(int("http.response.status_code", status));
    attributes.push(string("client.address", client_address.clone()));
    attributes.push(string("user_agent.original", user_agent));
    if let Some(user) = &visitor.user {
        attributes.push(string("enduser.id", user.clone()));
    }
    attributes.push(string("session.id", visitor.session.clone()));
    attributes.push(string(
        "server.address",
        own.map_or("", |s| s.server_address),
    ));
    attributes.push(string("network.peer.address", client_address));
    attributes.push(string("service.peer.name", peer_name));
    Span {
        trace_id: trace_id.to_vec(),
        span_id,
        parent_span_id,
        // W3C sampled, plus "has is_remote" and, below the edge, "is remote".
        flags: if caller.is_some() { 0x301 } else { 0x101 },
        name: match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        },
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + duration_ns,
        attributes,
        // Server spans mark only 5xx as errors (semantic conventions).
        status: (status >= 500).then(|| Status {
            code: status::StatusCode::Error as i32,
            message: String::new(),
        }),
        ..Default::default()
    }
}

/// The caller's client span of an exchange between services: what an HTTP
/// client instrumentation records, wrapping the callee's server span.
fn client_span(
    rng: &mut StdRng,
    trace_id: &[u8; 16],
    parent_span_id: Vec<u8>,
    exchange: &Exchange<'_>,
) -> Span {
    let callee = SERVICES.get(exchange.service);
    let host = callee.map_or("", |s| s.server_address);
    let attributes = vec![
        string("http.request.method", exchange.method),
        string(
            "url.full",
            format!("http://{host}:8080{}?{}", exchange.path, exchange.query),
        ),
        string("server.address", host),
        int("server.port", 8080),
        int("http.response.status_code", exchange.status),
        string("network.peer.address", callee.map_or("", |s| s.pod_address)),
    ];
    Span {
        trace_id: trace_id.to_vec(),
        span_id: rng.random::<[u8; 8]>().to_vec(),
        parent_span_id,
        flags: 0x101,
        name: exchange.method.to_string(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: exchange.start_ns.saturating_sub(100_000),
        end_time_unix_nano: exchange.start_ns + exchange.duration_ns + 100_000,
        attributes,
        // Client spans mark 4xx and 5xx as errors (semantic conventions).
        status: (exchange.status >= 400).then(|| Status {
            code: status::StatusCode::Error as i32,
            message: String::new(),
        }),
        ..Default::default()
    }
}

/// The location service's database query, as a database client
/// instrumentation records it.
fn database_span(rng: &mut StdRng, trace_id: &[u8; 16], start_ns: u64, duration_ns: u64) -> Span {
    let attributes = vec![
        string("db.system.name", "postgresql"),
        string("db.namespace", "locations"),
        string("db.operation.name", "SELECT"),
        string("db.collection.name", "cities"),
        string(
            "db.query.text",
            "SELECT lat, lon, tz, name FROM cities WHERE slug = $1",
        ),
        string("server.address", "postgres.default.svc.cluster.local"),
        int("server.port", 5432),
    ];
    Span {
        trace_id: trace_id.to_vec(),
        span_id: rng.random::<[u8; 8]>().to_vec(),
        parent_span_id: Vec::new(),
        flags: 0x101,
        name: "SELECT cities".to_string(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start_ns + 100_000,
        end_time_unix_nano: start_ns + 100_000 + duration_ns / 2,
        attributes,
        ..Default::default()
    }
}

fn resource_attributes(service: &Service) -> Vec<KeyValue> {
    vec![
        string("service.name", service.name),
        string("service.namespace", "weather-app"),
        string("service.version", service.version),
        string("service.instance.id", service.host),
        string("host.name", service.host),
        string("deployment.environment.name", "production"),
        string("telemetry.sdk.name", "opentelemetry"),
        string("telemetry.sdk.language", "rust"),
        string("telemetry.sdk.version", "0.31.0"),
    ]
}

fn string(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn pick<T: Copy, const N: usize>(rng: &mut StdRng, items: &[T; N]) -> T {
    const { assert!(N > 0) };
    items[rng.random_range(0..N)]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    fn spec(batch_spans: usize, gzip: bool, framing: Framing) -> WorkloadSpec {
        WorkloadSpec {
            batch_spans,
            batches: 2,
            gzip,
            seed: 7,
            framing,
            calls: false,
        }
    }

    fn decode(body: &[u8]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(body).unwrap()
    }

    fn spans(request: &ExportTraceServiceRequest) -> Vec<&Span> {
        request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .collect()
    }

    #[test]
    fn batches_look_like_real_http_server_exports() {
        let workload = Workload::build(spec(1000, false, Framing::Bare)).unwrap();
        assert_eq!(workload.templates.len(), 2);
        assert_eq!(workload.spans, 2000);
        let per_span = workload.protobuf_bytes_per_span();
        assert!((500.0..700.0).contains(&per_span), "{per_span} B/span");

        let request = decode(&workload.templates[0].body);
        let services: Vec<String> = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.resource.as_ref().unwrap().attributes)
            .filter(|kv| kv.key == "service.name")
            .map(|kv| format!("{:?}", kv.value.as_ref().unwrap().value))
            .collect();
        assert_eq!(services.len(), 3, "{services:?}");

        let spans = spans(&request);
        assert_eq!(spans.len(), 1000);
        let mut statuses: HashMap<i64, usize> = HashMap::new();
        for span in &spans {
            assert!(
                (10..=12).contains(&span.attributes.len()),
                "{} attributes",
                span.attributes.len()
            );
            assert_eq!(span.kind, span::SpanKind::Server as i32);
            assert_eq!(span.trace_id.len(), 16);
            assert_eq!(span.span_id.len(), 8);
            assert!(span.end_time_unix_nano > span.start_time_unix_nano);
            let status = span
                .attributes
                .iter()
                .find(|kv| kv.key == "http.response.status_code")
                .unwrap();
            if let Some(any_value::Value::IntValue(code)) = status.value.as_ref().unwrap().value {
                *statuses.entry(code).or_default() += 1;
            }
        }
        // Mostly 200s, and every error status of the flows shows up.
        assert!(statuses[&200] > 700, "{statuses:?}");
        for code in [401, 403, 404, 500] {
            assert!(statuses.contains_key(&code), "no {code} in {statuses:?}");
        }
        // Children point at a span of their trace in the batch (the last trace may be cut).
        let ids: HashMap<&[u8], &[u8]> = spans
            .iter()
            .map(|s| (s.span_id.as_slice(), s.trace_id.as_slice()))
            .collect();
        let children: Vec<&&Span> = spans
            .iter()
            .filter(|s| !s.parent_span_id.is_empty())
            .collect();
        assert!(children.len() > 300, "{} children", children.len());
        for child in children {
            assert_eq!(
                ids.get(child.parent_span_id.as_slice()),
                Some(&child.trace_id.as_slice())
            );
        }
    }

    /// With calls, each call between services is a client span of the
    /// caller between the two server spans, and each location lookup has a
    /// database query below it.
    #[test]
    fn with_calls_client_spans_sit_between_the_services() {
        let workload = Workload::build(WorkloadSpec {
            calls: true,
            ..spec(2000, false, Framing::Bare)
        })
        .unwrap();
        let request = decode(&workload.templates[0].body);
        let spans = spans(&request);
        assert_eq!(spans.len(), 2000);
        let by_id: HashMap<&[u8], &&Span> =
            spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
        let attribute = |span: &Span, key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        let (mut clients, mut queries, mut called) = (0, 0, 0);
        for span in &spans {
            let parent = by_id.get(span.parent_span_id.as_slice());
            if span.kind == span::SpanKind::Client as i32 {
                clients += 1;
                if attribute(span, "db.system.name").is_some() {
                    queries += 1;
                    assert_eq!(parent.map(|p| p.kind), Some(span::SpanKind::Server as i32));
                } else {
                    assert!(attribute(span, "url.full").is_some());
                }
                continue;
            }
            assert_eq!(span.kind, span::SpanKind::Server as i32);
            // A server span below the edge is the child of its caller's client span.
            if span.flags & 0x200 != 0
                && let Some(parent) = parent
            {
                called += 1;
                assert_eq!(parent.kind, span::SpanKind::Client as i32);
                assert_eq!(parent.trace_id, span.trace_id);
                assert_eq!(
                    attribute(parent, "server.address"),
                    attribute(span, "server.address")
                );
            }
        }
        let share = f64::from(clients) / spans.len() as f64;
        assert!(
            (0.40..0.55).contains(&share),
            "{share} of the spans are client spans"
        );
        assert!(
            queries > 100 && called > 300,
            "{queries} queries, {called} calls"
        );
        // Without calls: server spans only (the other test), and the same
        // traces otherwise.
        let plain = Workload::build(spec(2000, false, Framing::Bare)).unwrap();
        assert!(plain.spans == workload.spans);
    }

    #[test]
    fn each_request_carries_new_trace_ids_and_intact_traces() {
        let workload = Workload::build(spec(300, false, Framing::Bare)).unwrap();
        let template = &workload.templates[1];
        let original = decode(&template.body);
        let first = decode(&template.body(&request_key(7, 0, 0)));
        let second = decode(&template.body(&request_key(7, 0, 1)));
        let (original, first, second) = (spans(&original), spans(&first), spans(&second));
        let key = request_key(7, 0, 0);
        for ((o, a), b) in original.iter().zip(&first).zip(&second) {
            let expected: Vec<u8> = o
                .trace_id
                .iter()
                .zip(key)
                .map(|(byte, k)| byte ^ k)
                .collect();
            assert_eq!(a.trace_id, expected);
            assert_ne!(a.trace_id, b.trace_id);
            // Only the trace ids change.
            assert_eq!(
                (&a.span_id, &a.parent_span_id, &a.attributes),
                (&o.span_id, &o.parent_span_id, &o.attributes)
            );
        }
        // Spans that shared a trace still do.
        let distinct = |spans: &[&Span]| {
            spans
                .iter()
                .map(|s| s.trace_id.clone())
                .collect::<HashSet<_>>()
                .len()
        };
        assert_eq!(distinct(&original), distinct(&first));
    }

    #[test]
    fn grpc_bodies_are_length_prefixed_and_gzip_bodies_decompress() {
        let plain = Workload::build(spec(200, false, Framing::GrpcLengthPrefixed)).unwrap();
        let body = plain.templates[0].body(&request_key(1, 2, 3));
        assert_eq!(body[0], 0, "uncompressed flag");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, body.len() - 5);
        assert_eq!(spans(&decode(&body[5..])).len(), 200);

        let gzipped = Workload::build(spec(200, true, Framing::GrpcLengthPrefixed)).unwrap();
        let body = gzipped.templates[0].body(&request_key(1, 2, 3));
        assert_eq!(body[0], 1, "compressed flag");
        let mut protobuf = Vec::new();
        GzDecoder::new(&body[5..])
            .read_to_end(&mut protobuf)
            .unwrap();
        assert_eq!(protobuf.len() as u64, gzipped.templates[0].protobuf_len);
        assert_eq!(spans(&decode(&protobuf)).len(), 200);
        assert!(
            gzipped.body_bytes < gzipped.protobuf_bytes / 2,
            "gzip should shrink OTLP a lot"
        );
    }

    #[test]
    fn the_same_seed_builds_the_same_spans() {
        let a = Workload::build(spec(50, false, Framing::Bare)).unwrap();
        let b = Workload::build(spec(50, false, Framing::Bare)).unwrap();
        // Timestamps follow the clock; everything else follows the seed.
        let strip = |body: &Bytes| {
            let mut request = decode(body);
            for span in request
                .resource_spans
                .iter_mut()
                .flat_map(|rs| &mut rs.scope_spans)
                .flat_map(|ss| &mut ss.spans)
            {
                span.start_time_unix_nano = 0;
                span.end_time_unix_nano = 0;
            }
            request
        };
        assert_eq!(strip(&a.templates[0].body), strip(&b.templates[0].body));
        assert_ne!(strip(&a.templates[0].body), strip(&a.templates[1].body));
    }

    #[test]
    fn request_keys_do_not_repeat_across_workers_and_requests() {
        let mut seen = HashSet::new();
        for worker in 0..16 {
            for sequence in 0..5000 {
                assert!(
                    seen.insert(request_key(42, worker, sequence)),
                    "worker {worker} request {sequence}"
                );
            }
        }
    }
}
