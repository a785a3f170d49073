//! Data for the segment tests and benchmarks: realistic HTTP server spans
//! (the weather application of `tracewarden bench`'s workload), random
//! spans and log records exercising every field, and the attribute order a
//! segment gives back, computed independently of the writer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracewarden_model::{
    AnyValue, Event, KeyValue, Link, LogRecord, Resource, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};
use tracewarden_store::{DedicatedColumn, LogEntry, SpanRecord};

// ------------------------------------------------------------ realistic

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
const INTERNAL_AGENT: &str = "reqwest/0.12.9";

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

pub struct Visitor {
    pub address: String,
    user_agent: &'static str,
    pub user: Option<String>,
    session: String,
}

struct Exchange<'a> {
    service: usize,
    method: &'static str,
    path: String,
    query: String,
    route: Option<&'static str>,
    status: i64,
    visitor: &'a Visitor,
    caller: Option<usize>,
    start_ns: u64,
    duration_ns: u64,
}

/// Realistic HTTP server spans, as `tracewarden bench` sends them: three
/// services with nine resource attributes each, traces of one to three
/// server spans with ten to twelve attributes from pools of visitors,
/// cities and scanner probes.
pub struct Workload {
    rng: StdRng,
    pub visitors: Vec<Visitor>,
    scanners: Vec<Visitor>,
    resources: Vec<Arc<Resource>>,
    scopes: Vec<Arc<Scope>>,
    /// Start of the next trace: advances 20-200 µs per trace.
    clock_ns: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pick<T: Copy, const N: usize>(rng: &mut StdRng, items: &[T; N]) -> T {
    items[rng.random_range(0..N)]
}

impl Workload {
    pub const START_NS: u64 = 1_764_000_000_000_000_000;

    pub fn new(seed: u64) -> Workload {
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
        let resources = SERVICES
            .iter()
            .map(|s| {
                Arc::new(Resource {
                    attributes: vec![
                        KeyValue::new("service.name", s.name),
                        KeyValue::new("service.namespace", "weather-app"),
                        KeyValue::new("service.version", s.version),
                        KeyValue::new("service.instance.id", s.host),
                        KeyValue::new("host.name", s.host),
                        KeyValue::new("deployment.environment.name", "production"),
                        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
                        KeyValue::new("telemetry.sdk.language", "rust"),
                        KeyValue::new("telemetry.sdk.version", "0.31.0"),
                    ],
                    original_attributes: Vec::new(),
                    dropped_attributes_count: 0,
                    schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
                })
            })
            .collect();
        let scopes = SERVICES
            .iter()
            .map(|s| {
                Arc::new(Scope {
                    name: s.scope.into(),
                    version: s.scope_version.into(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                    schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
                })
            })
            .collect();
        Workload {
            rng,
            visitors,
            scanners,
            resources,
            scopes,
            clock_ns: Self::START_NS,
        }
    }

    /// The next `n` spans (the last trace may be cut short).
    pub fn spans(&mut self, n: usize) -> Vec<SpanRecord> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            self.clock_ns += self.rng.random_range(20_000..200_000);
            let trace_id = TraceId::from_bytes(self.rng.random());
            let visitor = self.rng.random_range(0..self.visitors.len());
            let scanner = self.rng.random_range(0..self.scanners.len());
            let exchanges = {
                let Workload {
                    rng,
                    visitors,
                    scanners,
                    clock_ns,
                    ..
                } = self;
                trace(rng, &visitors[visitor], &scanners[scanner], *clock_ns)
                    .into_iter()
                    .map(|e| self::owned(e))
                    .collect::<Vec<_>>()
            };
            let mut parent = None;
            for exchange in exchanges {
                if out.len() == n {
                    break;
                }
                let span_id = SpanId::from_bytes(self.rng.random());
                let service = exchange.service;
                let span = server_span(trace_id, span_id, parent, exchange);
                parent = Some(span_id);
                out.push(SpanRecord {
                    resource: Arc::clone(&self.resources[service]),
                    scope: Arc::clone(&self.scopes[service]),
                    span: span.into(),
                });
            }
        }
        out
    }
}

/// An exchange with its visitor's fields copied, so the generator's
/// borrows end.
struct OwnedExchange {
    service: usize,
    method: &'static str,
    path: String,
    query: String,
    route: Option<&'static str>,
    status: i64,
    address: String,
    user_agent: &'static str,
    user: Option<String>,
    session: String,
    caller: Option<usize>,
    start_ns: u64,
    duration_ns: u64,
}

fn owned(e: Exchange<'_>) -> OwnedExchange {
    OwnedExchange {
        service: e.service,
        method: e.method,
        path: e.path,
        query: e.query,
        route: e.route,
        status: e.status,
        address: e.visitor.address.clone(),
        user_agent: e.visitor.user_agent,
        user: e.visitor.user.clone(),
        session: e.visitor.session.clone(),
        caller: e.caller,
        start_ns: e.start_ns,
        duration_ns: e.duration_ns,
    }
}

fn trace<'v>(
    rng: &mut StdRng,
    visitor: &'v Visitor,
    scanner: &'v Visitor,
    start_ns: u64,
) -> Vec<Exchange<'v>> {
    let roll = rng.random_range(0..100);
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
        80..92 => vec![edge(
            "POST",
            "/api/v1/login".to_string(),
            "redirect=%2Fdashboard".to_string(),
            Some("/api/v1/login"),
            if rng.random_bool(0.25) { 401 } else { 200 },
            visitor,
            rng.random_range(20_000_000..80_000_000),
        )],
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

fn server_span(
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
    e: OwnedExchange,
) -> Span {
    let own = &SERVICES[e.service];
    let (client_address, user_agent, peer_name) = match e.caller {
        Some(caller) => (
            SERVICES[caller].pod_address.to_string(),
            INTERNAL_AGENT,
            SERVICES[caller].name,
        ),
        None => (e.address.clone(), e.user_agent, "web"),
    };
    let mut attributes = Vec::with_capacity(12);
    attributes.push(KeyValue::new("http.request.method", e.method));
    attributes.push(KeyValue::new("url.path", e.path.as_str()));
    attributes.push(KeyValue::new("url.query", e.query.as_str()));
    if let Some(route) = e.route {
        attributes.push(KeyValue::new("http.route", route));
    }
    attributes.push(KeyValue::new(
        "http.response.status_code",
        AnyValue::Int(e.status),
    ));
    attributes.push(KeyValue::new("client.address", client_address.as_str()));
    attributes.push(KeyValue::new("user_agent.original", user_agent));
    if let Some(user) = &e.user {
        attributes.push(KeyValue::new("enduser.id", user.as_str()));
    }
    attributes.push(KeyValue::new("session.id", e.session.as_str()));
    attributes.push(KeyValue::new("server.address", own.server_address));
    attributes.push(KeyValue::new(
        "network.peer.address",
        client_address.as_str(),
    ));
    attributes.push(KeyValue::new("service.peer.name", peer_name));
    let mut span = Span::new(
        trace_id,
        span_id,
        match e.route {
            Some(route) => format!("{} {route}", e.method),
            None => e.method.to_string(),
        },
    );
    span.parent_span_id = parent;
    span.flags = if e.caller.is_some() { 0x301 } else { 0x101 };
    span.kind = SpanKind::Server;
    span.start_time_unix_nano = e.start_ns;
    span.end_time_unix_nano = e.start_ns + e.duration_ns;
    span.attributes = attributes;
    if e.status >= 500 {
        span.status = Status {
            code: StatusCode::Error,
            message: "".into(),
        };
    }
    span
}

// ------------------------------------------------------------ random

/// Random spans and log records in which every field varies: nested
/// values of every kind, events, links, dropped counts, dedicated keys with
/// the wrong type or repeated, resources and scopes from a small pool (so
/// sharing shows), times past `i64::MAX`.
pub struct Random {
    pub rng: StdRng,
    resources: Vec<Arc<Resource>>,
    scopes: Vec<Arc<Scope>>,
}

const KEYS: [&str; 12] = [
    "client.address",
    "enduser.id",
    "session.id",
    "http.route",
    "http.response.status_code",
    "url.query",
    "user_agent.original",
    "custom.key",
    "db.query.text",
    "",
    "ключ",
    "k",
];

impl Random {
    pub fn new(seed: u64) -> Random {
        let mut rng = StdRng::seed_from_u64(seed);
        let resources = (0..4)
            .map(|i| {
                let mut attributes = random_attributes(&mut rng, 4);
                if i != 3 {
                    attributes.insert(
                        0,
                        KeyValue::new("service.name", format!("svc-{i}").as_str()),
                    );
                }
                Arc::new(Resource {
                    attributes,
                    original_attributes: random_attributes(&mut rng, 2),
                    dropped_attributes_count: rng.random_range(0..3),
                    schema_url: random_string(&mut rng).into(),
                })
            })
            .collect();
        let scopes = (0..3)
            .map(|_| {
                Arc::new(Scope {
                    name: random_string(&mut rng).into(),
                    version: random_string(&mut rng).into(),
                    attributes: random_attributes(&mut rng, 2),
                    dropped_attributes_count: rng.random_range(0..3),
                    schema_url: random_string(&mut rng).into(),
                })
            })
            .collect();
        Random {
            rng,
            resources,
            scopes,
        }
    }

    fn resource(&mut self) -> Arc<Resource> {
        let i = self.rng.random_range(0..self.resources.len());
        Arc::clone(&self.resources[i])
    }

    fn scope(&mut self) -> Arc<Scope> {
        let i = self.rng.random_range(0..self.scopes.len());
        Arc::clone(&self.scopes[i])
    }

    fn time(&mut self) -> u64 {
        match self.rng.random_range(0..20) {
            0 => 0,
            1 => u64::MAX - self.rng.random_range(0..1000),
            _ => 1_700_000_000_000_000_000 + self.rng.random_range(0..1_000_000_000_000),
        }
    }

    /// `n` spans over `traces` trace ids.
    pub fn spans(&mut self, n: usize, traces: u64) -> Vec<SpanRecord> {
        (0..n)
            .map(|_| {
                let trace = self.rng.random_range(1..=traces);
                let span = self.span(trace_id(trace));
                SpanRecord {
                    resource: self.resource(),
                    scope: self.scope(),
                    span: span.into(),
                }
            })
            .collect()
    }

    pub fn span(&mut self, trace_id: TraceId) -> Span {
        let rng = &mut self.rng;
        let mut span = Span::new(
            trace_id,
            SpanId::from_bytes(rng.random()),
            random_string(rng),
        );
        span.parent_span_id = rng
            .random_bool(0.6)
            .then(|| SpanId::from_bytes(rng.random()));
        span.trace_state = if rng.random_bool(0.2) {
            "vendor=1,other=x".into()
        } else {
            "".into()
        };
        span.flags = rng.random();
        span.kind = SpanKind::from_i32(rng.random_range(0..6)).unwrap();
        let start = self.time();
        let rng = &mut self.rng;
        span.start_time_unix_nano = start;
        span.end_time_unix_nano = if rng.random_bool(0.05) {
            start.wrapping_sub(5)
        } else {
            start.wrapping_add(rng.random_range(0..10_000_000))
        };
        span.attributes = random_attributes(rng, 14);
        span.original_attributes = random_attributes(rng, 2);
        span.dropped_attributes_count = rng.random_range(0..4);
        span.events = (0..rng.random_range(0..3))
            .map(|_| Event {
                time_unix_nano: rng.random(),
                name: random_string(rng).into(),
                attributes: random_attributes(rng, 3),
                dropped_attributes_count: rng.random_range(0..3),
            })
            .collect();
        span.dropped_events_count = rng.random_range(0..3);
        span.links = (0..rng.random_range(0..3))
            .map(|_| Link {
                trace_id: TraceId::from_bytes(rng.random()),
                span_id: SpanId::from_bytes(rng.random()),
                trace_state: random_string(rng).into(),
                attributes: random_attributes(rng, 3),
                dropped_attributes_count: rng.random_range(0..3),
                flags: rng.random(),
            })
            .collect();
        span.dropped_links_count = rng.random_range(0..3);
        span.status = Status {
            code: StatusCode::from_i32(rng.random_range(0..3)).unwrap(),
            message: random_string(rng).into(),
        };
        span
    }

    /// `n` log records, a third without a trace id, the others over `traces`.
    pub fn logs(&mut self, n: usize, traces: u64) -> Vec<LogEntry> {
        (0..n)
            .map(|_| {
                let time = self.time();
                let observed = self.time();
                let rng = &mut self.rng;
                let traced = rng.random_bool(0.66);
                let record = LogRecord {
                    time_unix_nano: time,
                    observed_time_unix_nano: observed,
                    severity_number: rng.random_range(0..25),
                    severity_text: random_string(rng).into(),
                    body: random_value(rng, 3),
                    attributes: random_attributes(rng, 5),
                    original_attributes: random_attributes(rng, 2),
                    dropped_attributes_count: rng.random_range(0..3),
                    flags: rng.random(),
                    trace_id: traced.then(|| trace_id(rng.random_range(1..=traces))),
                    span_id: rng
                        .random_bool(0.5)
                        .then(|| SpanId::from_bytes(rng.random())),
                    event_name: random_string(rng).into(),
                };
                LogEntry {
                    resource: self.resource(),
                    scope: self.scope(),
                    record,
                }
            })
            .collect()
    }
}

/// A trace id that encodes `n`.
pub fn trace_id(n: u64) -> TraceId {
    let mut bytes = [0x5A; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    TraceId::from_bytes(bytes)
}

pub fn random_string(rng: &mut StdRng) -> String {
    const PARTS: [&str; 8] = [
        "",
        "a",
        "GET /x",
        "ünïcödé",
        "😀",
        "quote\"",
        "\\",
        "line\nbreak",
    ];
    (0..rng.random_range(0..4))
        .map(|_| PARTS[rng.random_range(0..PARTS.len())])
        .collect()
}

fn random_attributes(rng: &mut StdRng, max: usize) -> Vec<KeyValue> {
    (0..rng.random_range(0..=max))
        .map(|_| KeyValue {
            key: KEYS[rng.random_range(0..KEYS.len())].into(),
            value: random_value(rng, 2),
        })
        .collect()
}

/// Any value; `depth` bounds the nesting of arrays and key-value lists.
/// Doubles are never NaN, which equals nothing (a test compares NaN by bits).
pub fn random_value(rng: &mut StdRng, depth: usize) -> AnyValue {
    let kinds = if depth == 0 { 6 } else { 8 };
    match rng.random_range(0..kinds) {
        0 => AnyValue::Empty,
        1 => AnyValue::Str(random_string(rng).into()),
        2 => AnyValue::Bool(rng.random()),
        3 => AnyValue::Int(match rng.random_range(0..4) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => rng.random_range(100..600),
            _ => rng.random(),
        }),
        4 => AnyValue::Double(match rng.random_range(0..5) {
            0 => f64::INFINITY,
            1 => -0.0,
            2 => f64::MIN_POSITIVE / 3.0,
            _ => rng.random::<f64>() * 1e300 - 5e299,
        }),
        5 => AnyValue::Bytes((0..rng.random_range(0..9)).map(|_| rng.random()).collect()),
        6 => AnyValue::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => AnyValue::KvList(random_attributes_depth(rng, depth - 1)),
    }
}

fn random_attributes_depth(rng: &mut StdRng, depth: usize) -> Vec<KeyValue> {
    (0..rng.random_range(0..4))
        .map(|_| KeyValue {
            key: KEYS[rng.random_range(0..KEYS.len())].into(),
            value: random_value(rng, depth),
        })
        .collect()
}

// ------------------------------------------------------------ expectations

/// The span as a segment gives it back: the first attribute of each
/// dedicated key with the column's type (string; integer for the status
/// code) first, in [`DedicatedColumn::ALL`] order, then the rest in order.
pub fn canonical(span: &Span) -> Span {
    let mut lifted: Vec<Option<KeyValue>> = vec![None; DedicatedColumn::ALL.len()];
    let mut rest = Vec::new();
    for kv in &span.attributes {
        let position = DedicatedColumn::ALL
            .iter()
            .position(|c| c.attribute_key() == kv.key);
        let fits = |i: usize| match (&kv.value, DedicatedColumn::ALL[i]) {
            (AnyValue::Int(_), DedicatedColumn::HttpResponseStatusCode) => true,
            (AnyValue::Str(_), c) => c != DedicatedColumn::HttpResponseStatusCode,
            _ => false,
        };
        match position {
            Some(i) if lifted[i].is_none() && fits(i) => lifted[i] = Some(kv.clone()),
            _ => rest.push(kv.clone()),
        }
    }
    let mut span = span.clone();
    span.attributes = lifted.into_iter().flatten().chain(rest).collect();
    span
}

/// Spans ordered as a segment holds them: by trace id, start, span id
/// (stable, so equal keys keep their order), attributes in segment order.
pub fn expected_spans(spans: &[SpanRecord]) -> Vec<SpanRecord> {
    let mut out: Vec<SpanRecord> = spans
        .iter()
        .map(|s| SpanRecord {
            resource: Arc::clone(&s.resource),
            scope: Arc::clone(&s.scope),
            span: canonical(&s.span).into(),
        })
        .collect();
    out.sort_by_key(|s| (s.span.trace_id, s.span.start_time_unix_nano, s.span.span_id));
    out
}

/// Log records ordered as a segment holds them: with a trace id first, by
/// (trace id, time), then the others by time (stable).
pub fn expected_logs(logs: &[LogEntry]) -> Vec<LogEntry> {
    let mut out = logs.to_vec();
    out.sort_by_key(|l| {
        (
            l.record.trace_id.is_none(),
            l.record.trace_id,
            l.record.effective_time_unix_nano(),
        )
    });
    out
}
