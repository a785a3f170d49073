//! The geo-weather system of the source article, instrumented: an API
//! gateway (the only entry service), a weather service, a location service
//! that only the weather service may call, and a third-party partner that
//! receives usage data from the weather service. Clients are a web site and
//! a mobile app.
//!
//! ```text
//!  web site ─┐                   ┌─> weather ──> location   (only weather may call it)
//!            ├─> api-gateway ────┤      └──> weather-partner (third party: client spans only)
//!  mobile ───┘   (login, settings)
//! ```
//!
//! Each flow writes the spans the services' HTTP instrumentation records
//! (current semantic conventions): a server span per service, a client span
//! in the caller with the callee's server span as its child, `client.address`
//! at the gateway as taken from `X-Forwarded-For`, `user_agent.original`,
//! `enduser.id` and `user.roles` once authenticated, and log records that
//! carry the trace and span ids.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span, status};
use rand::Rng;
use rand::rngs::StdRng;

use super::otlp::{
    FLAGS_LOCAL_PARENT, FLAGS_REMOTE_PARENT, Telemetry, int, log_record, string, strings,
};

pub const GATEWAY: &str = "api-gateway";
pub const WEATHER: &str = "weather";
pub const LOCATION: &str = "location";
/// The partner as the weather service names it (`peer.service`) and reaches it.
pub const PARTNER: &str = "weather-partner";
pub const PARTNER_HOST: &str = "api.weather-partner.example";
/// The public host of the gateway, and the web site's origin.
const PUBLIC_HOST: &str = "api.weather.example";
pub const WEB_ORIGIN: &str = "https://weather.example";
/// The load balancer in front of the gateway (the socket peer it sees).
const LOAD_BALANCER: &str = "10.0.0.2";

/// The role the location service requires (the article: users may query
/// weather by city, not by location, unless they have it).
pub const LOCATION_ROLE: &str = "location_reader";

/// Countries the demo's users come from; the site allows these.
pub const ALLOWED_COUNTRIES: [&str; 6] = ["UA", "PL", "DE", "FR", "NL", "CZ"];

pub const CITIES: [&str; 10] = [
    "Kyiv",
    "Lviv",
    "Warszawa",
    "Krak%C3%B3w",
    "Berlin",
    "M%C3%BCnchen",
    "Paris",
    "Lyon",
    "Amsterdam",
    "Praha",
];

const FIRST_NAMES: [&str; 12] = [
    "olena", "taras", "anna", "piotr", "lena", "jonas", "marie", "louis", "sanne", "daan", "jana",
    "tomas",
];

pub const BROWSERS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

const APPS: [&str; 2] = [
    "WeatherApp/3.4.1 (Android 14; Pixel 8) okhttp/4.12.0",
    "WeatherApp/3.4.1 (iPhone; iOS 18.1; Scale/3.00)",
];

/// Who sends a request: the address the gateway sees in `X-Forwarded-For`,
/// the user agent, the country the CDN reports, and the user once logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visitor {
    pub address: String,
    pub user_agent: String,
    pub country: &'static str,
    /// The web site (sends `Origin`), not the mobile app.
    pub web: bool,
    pub user: Option<User>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub roles: Vec<&'static str>,
    /// The ids of the user's saved places.
    pub places: [u32; 3],
}

impl User {
    pub fn can_locate(&self) -> bool {
        self.roles.contains(&LOCATION_ROLE)
    }
}

/// The benign users: each with an address, a device and saved places of
/// its own, so no one of them comes near a rule's threshold.
pub fn users(count: usize) -> Vec<Visitor> {
    (0..count)
        .map(|i| {
            let web = i % 5 < 3;
            let user_agent = if web {
                BROWSERS[i % BROWSERS.len()]
            } else {
                APPS[i % APPS.len()]
            };
            let mut roles = vec!["user"];
            if i % 3 == 0 {
                roles.push(LOCATION_ROLE);
            }
            let first = (i * 3) as u32;
            Visitor {
                address: user_address(i),
                user_agent: user_agent.to_string(),
                country: ALLOWED_COUNTRIES[i % ALLOWED_COUNTRIES.len()],
                web,
                user: Some(User {
                    id: user_name(i),
                    roles,
                    places: [1000 + first, 1001 + first, 1002 + first],
                }),
            }
        })
        .collect()
}

pub fn user_name(i: usize) -> String {
    let name = FIRST_NAMES[i % FIRST_NAMES.len()];
    match i / FIRST_NAMES.len() {
        0 => name.to_string(),
        n => format!("{name}{n}"),
    }
}

/// A public-looking address per user, distinct for millions of users.
fn user_address(i: usize) -> String {
    format!(
        "46.{}.{}.{}",
        10 + (i / 62_500) % 200,
        (i / 250) % 250 + 1,
        i % 250 + 1
    )
}

/// An HTTP request as the gateway's instrumentation sees it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    /// The matched route template; `None` when no route matched (404).
    pub route: Option<&'static str>,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// Captured request headers (lower-case names), beyond the user agent.
    pub headers: Vec<(&'static str, String)>,
}

impl Request {
    pub fn get(route: &'static str, path: impl Into<String>, query: Option<String>) -> Request {
        Request {
            method: "GET",
            route: Some(route),
            path: path.into(),
            query,
            status: 200,
            headers: Vec::new(),
        }
    }
}

/// Where a server span's parent is.
#[derive(Clone, Copy, Debug)]
pub enum Parent {
    /// A root span: the request came from outside with no trace context.
    None,
    /// A span in another process (the caller's client span, or a context
    /// an outside caller sent in `traceparent`).
    Remote([u8; 8]),
}

/// Writes the telemetry of whole requests into a [`Telemetry`]. Ids come
/// from the simulator's seeded generator, so a seed gives the same spans.
pub struct Writer<'a> {
    pub out: &'a mut Telemetry,
    pub rng: &'a mut StdRng,
}

/// A millisecond in nanoseconds.
const MS: u64 = 1_000_000;

impl Writer<'_> {
    fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        self.rng.fill(&mut id[..]);
        id[0] |= 1; // never all zeros
        id
    }

    fn span_id(&mut self) -> [u8; 8] {
        let mut id = [0u8; 8];
        self.rng.fill(&mut id[..]);
        id[0] |= 1;
        id
    }

    /// The gateway's server span for `request` from `visitor`, then `then`
    /// (the calls it makes downstream) inside it. Returns the trace id.
    pub fn gateway(
        &mut self,
        at: u64,
        visitor: &Visitor,
        request: &Request,
        parent: Parent,
        trace_id: Option<[u8; 16]>,
        then: impl FnOnce(&mut Self, Hop) -> u64,
    ) -> [u8; 16] {
        let trace_id = trace_id.unwrap_or_else(|| self.trace_id());
        let span_id = self.span_id();
        let hop = Hop {
            trace_id,
            parent: span_id,
            at: at + MS,
            user: visitor.user.clone(),
        };
        let inner = then(self, hop);
        let end = at + inner.max(MS) + 2 * MS;
        let mut attributes = http_server_attributes(request, PUBLIC_HOST, 443);
        attributes.push(string("url.scheme", "https"));
        attributes.push(string("client.address", visitor.address.clone()));
        attributes.push(strings(
            "http.request.header.x-forwarded-for",
            [visitor.address.as_str()],
        ));
        attributes.push(string("network.peer.address", LOAD_BALANCER));
        attributes.push(string("user_agent.original", visitor.user_agent.clone()));
        // The CDN in front reports the client's country (CF-IPCountry);
        // the gateway records it under the conventions' name.
        attributes.push(string("geo.country.iso_code", visitor.country));
        for (name, value) in &request.headers {
            attributes.push(strings(
                &format!("http.request.header.{name}"),
                [value.as_str()],
            ));
        }
        if let Some(user) = &visitor.user {
            attributes.push(string("enduser.id", user.id.clone()));
            attributes.push(strings("user.roles", user.roles.iter().copied()));
        }
        let span = server_span(trace_id, span_id, parent, request, attributes, at, end);
        self.out.span(GATEWAY, span);
        self.out.requests += 1;
        trace_id
    }

    /// An internal service's server span, called from a span of the
    /// system or reached directly. Returns its duration and span id.
    pub fn service(
        &mut self,
        service: &'static str,
        caller: Caller<'_>,
        request: &Request,
        port: i64,
        then: impl FnOnce(&mut Self, Hop) -> u64,
    ) -> (u64, [u8; 8]) {
        let (trace_id, parent, at, user) = match caller {
            Caller::Span(hop) => (
                hop.trace_id,
                Parent::Remote(hop.parent),
                hop.at,
                hop.user.clone(),
            ),
            Caller::Direct { at, .. } => (self.trace_id(), Parent::None, at, None),
        };
        let span_id = self.span_id();
        let inner = then(
            self,
            Hop {
                trace_id,
                parent: span_id,
                at: at + MS,
                user: user.clone(),
            },
        );
        let duration = inner.max(MS) + 3 * MS;
        let host = format!("{service}.svc.cluster.local");
        let mut attributes = http_server_attributes(request, &host, port);
        attributes.push(string("url.scheme", "http"));
        if let Some(user) = &user {
            // The article's location service records who asked and their roles.
            attributes.push(string("enduser.id", user.id.clone()));
            attributes.push(strings("user.roles", user.roles.iter().copied()));
        }
        if let Caller::Direct {
            address,
            user_agent,
            ..
        } = caller
        {
            // Calls within the system leave the peer out (the gateway's
            // address would pass for a client); a direct caller is named.
            attributes.push(string("network.peer.address", address));
            attributes.push(string("user_agent.original", user_agent));
        }
        let span = server_span(
            trace_id,
            span_id,
            parent,
            request,
            attributes,
            at,
            at + duration,
        );
        self.out.span(service, span);
        (duration, span_id)
    }

    /// A client span of `caller` calling `callee` (a service of the system,
    /// or the partner), with `serve` writing the callee's side. Returns the
    /// client span's duration.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &mut self,
        caller: &'static str,
        hop: &Hop,
        peer: &'static str,
        host: &str,
        port: i64,
        request: &Request,
        serve: impl FnOnce(&mut Self, Hop) -> u64,
    ) -> u64 {
        let span_id = self.span_id();
        let inner = serve(
            self,
            Hop {
                trace_id: hop.trace_id,
                parent: span_id,
                at: hop.at + MS,
                user: hop.user.clone(),
            },
        );
        let duration = inner.max(MS) + 2 * MS;
        let query = request
            .query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let scheme = if port == 443 { "https" } else { "http" };
        let mut attributes = vec![
            string("http.request.method", request.method),
            string(
                "url.full",
                format!("{scheme}://{host}:{port}{}{query}", request.path),
            ),
            string("server.address", host),
            int("server.port", port),
            string("peer.service", peer),
            int("http.response.status_code", i64::from(request.status)),
        ];
        if request.status >= 400 {
            attributes.push(string("error.type", request.status.to_string()));
        }
        self.out.span(
            caller,
            Span {
                trace_id: hop.trace_id.to_vec(),
                span_id: span_id.to_vec(),
                trace_state: String::new(),
                parent_span_id: hop.parent.to_vec(),
                flags: FLAGS_LOCAL_PARENT,
                name: request.method.to_string(),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: hop.at,
                end_time_unix_nano: hop.at + duration,
                attributes,
                dropped_attributes_count: 0,
                events: Vec::new(),
                dropped_events_count: 0,
                links: Vec::new(),
                dropped_links_count: 0,
                status: Some(span_status(request.status, true)),
            },
        );
        duration
    }

    /// A log record of `service` within the span `hop.parent`.
    pub fn log(
        &mut self,
        service: &'static str,
        hop: &Hop,
        severity: SeverityNumber,
        body: String,
        attributes: Vec<KeyValue>,
    ) {
        self.out.log(
            service,
            log_record(hop.at, severity, body, hop.trace_id, hop.parent, attributes),
        );
    }
}

/// Who calls an internal service.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'a> {
    /// A client span of the system.
    Span(&'a Hop),
    /// Someone inside the network, straight to the service's port, with
    /// no trace context.
    Direct {
        at: u64,
        address: &'a str,
        user_agent: &'a str,
    },
}

/// The context a call passes down: the trace, the calling span, the time
/// and the authenticated user (the gateway forwards the identity).
#[derive(Clone, Debug)]
pub struct Hop {
    pub trace_id: [u8; 16],
    /// The span the next span is a child of.
    pub parent: [u8; 8],
    pub at: u64,
    pub user: Option<User>,
}

fn http_server_attributes(request: &Request, host: &str, port: i64) -> Vec<KeyValue> {
    let mut attributes = vec![
        string("http.request.method", request.method),
        string("url.path", request.path.clone()),
        int("http.response.status_code", i64::from(request.status)),
        string("server.address", host),
        int("server.port", port),
        string("network.protocol.version", "1.1"),
    ];
    if let Some(route) = request.route {
        attributes.push(string("http.route", route));
    }
    if let Some(query) = &request.query {
        attributes.push(string("url.query", query.clone()));
    }
    if request.status >= 500 {
        attributes.push(string("error.type", request.status.to_string()));
    }
    attributes
}

fn server_span(
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Parent,
    request: &Request,
    attributes: Vec<KeyValue>,
    start: u64,
    end: u64,
) -> Span {
    let (parent_span_id, flags) = match parent {
        Parent::None => (Vec::new(), FLAGS_LOCAL_PARENT),
        Parent::Remote(id) => (id.to_vec(), FLAGS_REMOTE_PARENT),
    };
    let name = match request.route {
        Some(route) => format!("{} {route}", request.method),
        None => request.method.to_string(),
    };
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        trace_state: String::new(),
        parent_span_id,
        flags,
        name,
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(span_status(request.status, false)),
    }
}

/// Server spans are errors on 5xx only, client spans on any 4xx or 5xx
/// (the conventions' rule).
fn span_status(code: u16, client: bool) -> Status {
    let error = code >= 500 || (client && code >= 400);
    Status {
        message: String::new(),
        code: if error {
            status::StatusCode::Error as i32
        } else {
            status::StatusCode::Unset as i32
        },
    }
}

/// The flows of the system: what one request makes each service record.
impl Writer<'_> {
    /// `GET /api/v1/weather?city=` -> weather `/forecast`; one forecast in
    /// `partner_every` reports usage to the partner with `partner_query`.
    pub fn forecast(
        &mut self,
        at: u64,
        visitor: &Visitor,
        city: &str,
        partner_query: Option<String>,
    ) -> [u8; 16] {
        let query = format!("city={city}&units=metric");
        let request = Request::get("/api/v1/weather", "/api/v1/weather", Some(query.clone()));
        self.forecast_with(at, visitor, &request, Parent::None, None, partner_query)
    }

    /// A forecast request as given (its parent and trace id may come from
    /// outside, when the gateway continues a caller's trace context).
    pub fn forecast_with(
        &mut self,
        at: u64,
        visitor: &Visitor,
        request: &Request,
        parent: Parent,
        trace_id: Option<[u8; 16]>,
        partner_query: Option<String>,
    ) -> [u8; 16] {
        let internal = Request::get("/forecast", "/forecast", request.query.clone());
        self.gateway(at, visitor, request, parent, trace_id, |w, hop| {
            let host = format!("{WEATHER}.svc.cluster.local");
            w.call(GATEWAY, &hop, WEATHER, &host, 8080, &internal, |w, hop| {
                w.service(WEATHER, Caller::Span(&hop), &internal, 8080, |w, hop| {
                    match partner_query {
                        Some(query) => {
                            let usage = Request {
                                method: "POST",
                                route: None,
                                path: "/v1/usage".to_string(),
                                query: Some(query),
                                status: 202,
                                headers: Vec::new(),
                            };
                            // The partner is outside: only our client span exists.
                            w.call(WEATHER, &hop, PARTNER, PARTNER_HOST, 443, &usage, |_, _| {
                                40 * MS
                            })
                        }
                        None => 0,
                    }
                })
                .0
            })
        })
    }

    /// `GET /api/v1/weather/here?lat=&lon=` -> weather -> location, which
    /// answers 403 (and logs "access denied") to users without the role.
    pub fn forecast_here(&mut self, at: u64, visitor: &Visitor, lat: f64, lon: f64) -> [u8; 16] {
        let allowed = visitor.user.as_ref().is_some_and(User::can_locate);
        let status = if allowed { 200 } else { 403 };
        let query = format!("lat={lat:.3}&lon={lon:.3}");
        let mut request = Request::get(
            "/api/v1/weather/here",
            "/api/v1/weather/here",
            Some(query.clone()),
        );
        request.status = status;
        let mut by_position = Request::get(
            "/forecast/by-position",
            "/forecast/by-position",
            Some(query.clone()),
        );
        by_position.status = status;
        let mut resolve = Request::get(
            "/v1/positions/resolve",
            "/v1/positions/resolve",
            Some(query),
        );
        resolve.status = status;
        self.gateway(at, visitor, &request, Parent::None, None, |w, hop| {
            let host = format!("{WEATHER}.svc.cluster.local");
            w.call(
                GATEWAY,
                &hop,
                WEATHER,
                &host,
                8080,
                &by_position,
                |w, hop| {
                    w.service(WEATHER, Caller::Span(&hop), &by_position, 8080, |w, hop| {
                        let host = format!("{LOCATION}.svc.cluster.local");
                        w.call(WEATHER, &hop, LOCATION, &host, 8081, &resolve, |w, hop| {
                            w.location(Caller::Span(&hop), &resolve)
                        })
                    })
                    .0
                },
            )
        })
    }

    /// The location service's server span, and its log when it refuses
    /// (403: the user lacks the role).
    pub fn location(&mut self, caller: Caller<'_>, request: &Request) -> u64 {
        let (duration, span_id) = self.service(LOCATION, caller, request, 8081, |_, _| 4 * MS);
        if request.status == 403
            && let Caller::Span(hop) = caller
        {
            let user = hop.user.as_ref().map_or("anonymous", |u| u.id.as_str());
            let within = Hop {
                parent: span_id,
                at: hop.at + MS,
                ..hop.clone()
            };
            self.log(
                LOCATION,
                &within,
                SeverityNumber::Warn,
                format!("access denied for user {user}: role {LOCATION_ROLE} required"),
                vec![string("enduser.id", user)],
            );
        }
        duration
    }

    /// `POST /api/v1/login`, answered by the gateway's auth module.
    pub fn login(&mut self, at: u64, visitor: &Visitor, user: &str, ok: bool) -> [u8; 16] {
        let request = Request {
            method: "POST",
            route: Some("/api/v1/login"),
            path: "/api/v1/login".to_string(),
            query: None,
            status: if ok { 200 } else { 401 },
            headers: Vec::new(),
        };
        // The attempted user name is recorded on failures too (credential
        // stuffing is many names from one address).
        let attempt = Visitor {
            user: Some(User {
                id: user.to_string(),
                roles: Vec::new(),
                places: [0; 3],
            }),
            ..visitor.clone()
        };
        let address = visitor.address.clone();
        self.gateway(at, &attempt, &request, Parent::None, None, |w, hop| {
            let (severity, body) = if ok {
                (SeverityNumber::Info, format!("user {user} logged in"))
            } else {
                (
                    SeverityNumber::Warn,
                    format!("login failed: invalid password for user {user}"),
                )
            };
            w.log(
                GATEWAY,
                &hop,
                severity,
                body,
                vec![
                    string("enduser.id", user),
                    string("client.address", address),
                ],
            );
            5 * MS
        })
    }

    /// `GET /api/v1/places/{id}` -> weather `/places?id=` (a saved place).
    pub fn place(&mut self, at: u64, visitor: &Visitor, id: u32, status: u16) -> [u8; 16] {
        let mut request = Request::get("/api/v1/places/{id}", format!("/api/v1/places/{id}"), None);
        request.status = status;
        let mut internal = Request::get("/places", "/places", Some(format!("id={id}")));
        internal.status = status;
        self.gateway(at, visitor, &request, Parent::None, None, |w, hop| {
            let host = format!("{WEATHER}.svc.cluster.local");
            w.call(GATEWAY, &hop, WEATHER, &host, 8080, &internal, |w, hop| {
                w.service(WEATHER, Caller::Span(&hop), &internal, 8080, |_, _| 0)
                    .0
            })
        })
    }

    /// `POST /api/v1/settings` (units, favourite city), handled by the gateway.
    pub fn settings(
        &mut self,
        at: u64,
        visitor: &Visitor,
        headers: Vec<(&'static str, String)>,
    ) -> [u8; 16] {
        let request = Request {
            method: "POST",
            route: Some("/api/v1/settings"),
            path: "/api/v1/settings".to_string(),
            query: None,
            status: 200,
            headers,
        };
        self.gateway(at, visitor, &request, Parent::None, None, |_, _| 3 * MS)
    }

    /// A request the gateway answers itself without calling anything: a
    /// 404, or a 400 from its request validation.
    pub fn rejected(&mut self, at: u64, visitor: &Visitor, request: &Request) -> [u8; 16] {
        self.gateway(at, visitor, request, Parent::None, None, |_, _| MS)
    }
}
