//! `tracewarden bench store`: builds a large data directory fast, without
//! the network, for the investigation and compliance benchmarks: realistic
//! traces appended straight into the store (WAL, hot tier) and flushed into
//! segments as a server would.
//!
//! What it writes (docs/BENCHMARKS.md repeats it for the benchmarks that
//! read it): traces of a small web shop spread evenly over `--days` (30)
//! days ending at `--end` (default now, to the minute), in time order;
//! four spans per trace:
//!
//! - `api-gateway` SERVER root span: `client.address` (one of
//!   [`ADDRESSES`] addresses in 198.18.0.0/15), `user_agent.original`,
//!   `http.request.method`, `http.route`, `url.path`,
//!   `http.response.status_code`, `session.id` (per address and day) and,
//!   for 70% of requests, `enduser.id` (`user-N`, one of [`USERS`], tied to
//!   the address) with the user's bearer token as ingest stores it: the
//!   `Authorization` header masked by redaction and
//!   `tracewarden.token.fingerprint` stamped before it;
//! - `api-gateway` CLIENT span to the route's backend (`server.address`);
//! - the backend's SERVER span (`auth`, `users`, `orders`, `payments`,
//!   `catalog`, `weather`) with `enduser.id` and, on routes touching
//!   personal data, `app.data.classification` (`personal` or `pii`) and
//!   `user.email`;
//! - a fourth span under it: on half the traces of the routes reading a
//!   table, and on all of `payments`, a `postgresql` CLIENT span
//!   (`db.system`, `db.operation.name`, `db.collection.name`, the
//!   classification); on `weather` a call to a third party
//!   (`api.openweathermap.org`: `server.address`, `peer.service`); else an
//!   INTERNAL `render` span. `payments` also names its third party
//!   (`peer.service = api.stripe.com`) on its server span.
//!
//! Log records: a WARN record on the gateway span for every 4xx/5xx
//! answer, an INFO record on 5% of the others, each with the trace and
//! span ids.
//!
//! The actor under investigation, `--actor` (203.0.113.7), makes
//! `--actor-requests` (10,000) requests spread over the last 24 hours of
//! the period: mostly failed logins (401) as `mallory` and a few other
//! user names, some successful, then personal-data reads, all with one
//! bearer token (`actor-token`, its fingerprint in `token`). The directory
//! gets `bench-store.json` with the parameters and the period, which
//! `scripts/bench-investigate` reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use tracewarden_model::{
    AnyValue, Batch, KeyValue, LogRecord, Resource, ResourceLogs, ResourceSpans, Scope, ScopeLogs,
    ScopeSpans, Span, SpanId, SpanKind, TraceId, credential, semconv,
};
use tracewarden_store::{Store, StoreOptions};

/// Distinct client addresses of the ordinary traffic.
pub const ADDRESSES: u64 = 50_000;
/// Distinct users of the ordinary traffic.
pub const USERS: u64 = 20_000;
/// The bearer token of the investigated actor.
const ACTOR_TOKEN: &str = "actor-token";
/// Spans per trace (see the module's description).
const SPANS_PER_TRACE: u64 = 4;
/// Traces per appended batch.
const TRACES_PER_BATCH: u64 = 2_000;
const DAY_NANOS: u64 = 86_400 * 1_000_000_000;

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Spans to write (whole traces of four spans).
    #[arg(long, default_value_t = 10_000_000)]
    pub spans: u64,
    /// The data directory to create (must not exist or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Requests of the investigated actor, in the last 24 h of the period.
    #[arg(long, default_value_t = 10_000)]
    pub actor_requests: u64,
    /// The investigated actor's client address.
    #[arg(long, default_value = "203.0.113.7")]
    pub actor: String,
    /// Days the traffic spans.
    #[arg(long, default_value_t = 30)]
    pub days: u64,
    /// End of the period, Unix seconds (default: now, to the minute).
    #[arg(long)]
    pub end: Option<u64>,
    /// Spans and log records per segment (a flush each time).
    #[arg(long, default_value_t = 1_000_000)]
    pub segment_spans: u64,
    /// Seed of the pseudo-random choices (same seed, same data).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// A route of the shop: who serves it and what data it touches.
struct Route {
    method: &'static str,
    route: &'static str,
    /// The path, `{}` replaced by a number.
    path: &'static str,
    service: usize,
    classification: Option<&'static str>,
    /// A third party the backend calls, if any.
    third_party: Option<&'static str>,
    /// The table a database call reads, if any.
    table: Option<&'static str>,
}

const SERVICES: [&str; 8] = [
    "api-gateway",
    "auth",
    "users",
    "orders",
    "payments",
    "catalog",
    "weather",
    "postgresql",
];
const GATEWAY: usize = 0;
const DATABASE: usize = 7;

const ROUTES: [Route; 8] = [
    Route {
        method: "POST",
        route: "/login",
        path: "/login",
        service: 1,
        classification: None,
        third_party: None,
        table: Some("credentials"),
    },
    Route {
        method: "GET",
        route: "/api/users/{id}",
        path: "/api/users/{}",
        service: 2,
        classification: Some("personal"),
        third_party: None,
        table: Some("users"),
    },
    Route {
        method: "GET",
        route: "/api/profile",
        path: "/api/profile",
        service: 2,
        classification: Some("personal"),
        third_party: None,
        table: Some("users"),
    },
    Route {
        method: "GET",
        route: "/api/orders",
        path: "/api/orders",
        service: 3,
        classification: Some("personal"),
        third_party: None,
        table: Some("orders"),
    },
    Route {
        method: "POST",
        route: "/api/payments",
        path: "/api/payments",
        service: 4,
        classification: Some("pii"),
        third_party: Some("api.stripe.com"),
        table: Some("payments"),
    },
    Route {
        method: "GET",
        route: "/api/catalog/{id}",
        path: "/api/catalog/{}",
        service: 5,
        classification: None,
        third_party: None,
        table: Some("products"),
    },
    Route {
        method: "GET",
        route: "/api/catalog",
        path: "/api/catalog",
        service: 5,
        classification: None,
        third_party: None,
        table: None,
    },
    Route {
        method: "GET",
        route: "/api/weather",
        path: "/api/weather",
        service: 6,
        classification: None,
        third_party: Some("api.openweathermap.org"),
        table: None,
    },
];

const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "okhttp/4.12.0",
];

/// splitmix64: fast, and the same seed gives the same store.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One trace's client: who sends it.
struct Client {
    address: String,
    user: Option<String>,
    /// The bearer token sent (users only).
    token: Option<String>,
    session: String,
    agent: &'static str,
}

/// Spans and logs waiting for the next append, by service.
#[derive(Default)]
struct Pending {
    spans: HashMap<usize, Vec<Span>>,
    logs: HashMap<usize, Vec<LogRecord>>,
    span_count: u64,
    log_count: u64,
}

pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    if args.spans == 0 || args.days == 0 || args.segment_spans == 0 {
        bail!("--spans, --days and --segment-spans must be at least 1");
    }
    if args.data_dir.exists()
        && std::fs::read_dir(&args.data_dir)
            .with_context(|| format!("reading {}", args.data_dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: give a new directory (the generator writes a store from scratch)",
            args.data_dir.display()
        );
    }
    let end_seconds = match args.end {
        Some(end) => end,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the clock is before 1970")?
                .as_secs();
            now - now % 60
        }
    };
    let end = end_seconds * 1_000_000_000;
    let period = args.days * DAY_NANOS;
    let start = end
        .checked_sub(period)
        .context("--end is too early for --days")?;
    let traces = (args.spans / SPANS_PER_TRACE).max(1);
    let last_day_start = end - DAY_NANOS;
    // Traces of the last day, and every how many of them is the actor's.
    let last_day_traces = traces * DAY_NANOS / period;
    let actor_every = (last_day_traces / args.actor_requests.max(1)).max(1);

    let mut options = StoreOptions::new(&args.data_dir);
    options.lifecycle_thread = false;
    options.lifecycle.flush_spans = args.segment_spans;
    let (store, _) = Store::open(options).context("opening the store")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resources: Vec<Arc<Resource>> = SERVICES.iter().map(|s| resource(s)).collect();
    let scope = Arc::new(Scope {
        name: "tracewarden-bench".into(),
        ..Scope::default()
    });

    let began = Instant::now();
    let mut rng = Rng(args.seed);
    let mut pending = Pending::default();
    let mut in_memory = 0u64;
    let (mut spans, mut logs, mut actor_done) = (0u64, 0u64, 0u64);
    let mut reported = 0u64;
    for i in 0..traces {
        let time = start + (u128::from(i) * u128::from(period) / u128::from(traces)) as u64;
        let is_actor = time >= last_day_start
            && actor_done < args.actor_requests
            && (i % actor_every == 0 || traces - i <= args.actor_requests - actor_done);
        let trace_id = TraceId::from_bytes(id16(&mut rng));
        if is_actor {
            actor_trace(
                &mut rng,
                &mut pending,
                trace_id,
                time,
                &args.actor,
                actor_done,
            );
            actor_done += 1;
        } else {
            let client = ordinary_client(&mut rng, time);
            let route = &ROUTES[rng.below(ROUTES.len() as u64) as usize];
            let status = ordinary_status(&mut rng, route);
            shop_trace(
                &mut rng,
                &mut pending,
                trace_id,
                time,
                &client,
                route,
                status,
            );
        }
        if (i + 1) % TRACES_PER_BATCH == 0 || i + 1 == traces {
            let (batch_spans, batch_logs) = (pending.span_count, pending.log_count);
            let batch = take_batch(&mut pending, &resources, &scope);
            runtime
                .block_on(store.append(batch))
                .context("appending to the store")?;
            spans += batch_spans;
            logs += batch_logs;
            in_memory += batch_spans + batch_logs;
            if in_memory >= args.segment_spans {
                store.flush().context("flushing a segment")?;
                in_memory = 0;
            }
            if spans - reported >= 1_000_000 {
                reported = spans;
                eprintln!(
                    "{spans} spans written ({:.0} s)",
                    began.elapsed().as_secs_f64()
                );
            }
        }
    }
    store.close();
    let stats = store.stats();
    let seconds = began.elapsed().as_secs_f64();
    let description = json!({
        "spans": spans,
        "traces": traces,
        "logs": logs,
        "segments": stats.segments,
        "segmentBytes": stats.segment_bytes,
        "startUnixSeconds": start / 1_000_000_000,
        "endUnixSeconds": end_seconds,
        "days": args.days,
        "actor": {"kind": "client.address", "value": args.actor, "requests": actor_done},
        "token": credential::fingerprint(ACTOR_TOKEN),
        "addresses": ADDRESSES,
        "users": USERS,
        "services": SERVICES,
        "seed": args.seed,
        "seconds": seconds,
    });
    std::fs::write(
        args.data_dir.join("bench-store.json"),
        serde_json::to_vec_pretty(&description)?,
    )
    .context("writing bench-store.json")?;
    println!("{}", serde_json::to_string_pretty(&description)?);
    Ok(())
}

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new(semconv::SERVICE_NAME, service),
            KeyValue::new("deployment.environment.name", "bench"),
        ],
        ..Resource::default()
    })
}

fn id16(rng: &mut Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&rng.next().to_be_bytes());
    id[8..].copy_from_slice(&rng.next().to_be_bytes());
    id
}

fn span_id(rng: &mut Rng) -> SpanId {
    SpanId::from_bytes(rng.next().to_be_bytes())
}

fn ordinary_client(rng: &mut Rng, time: u64) -> Client {
    let n = rng.below(ADDRESSES);
    let address = format!("198.{}.{}.{}", 18 + (n >> 16), (n >> 8) & 255, n & 255);
    // Users stay behind the same few addresses.
    let user = rng.chance(70).then(|| format!("user-{}", n % USERS));
    let token = user.as_ref().map(|u| format!("tok-{u}"));
    Client {
        token,
        session: format!("s-{n:x}-{}", time / DAY_NANOS),
        address,
        user,
        agent: AGENTS[(n % AGENTS.len() as u64) as usize],
    }
}

fn ordinary_status(rng: &mut Rng, route: &Route) -> i64 {
    match (route.route, rng.below(100)) {
        ("/login", 0..=11) => 401,
        (_, 0) => 500,
        (_, 1..=2) => 404,
        (_, 3) => 403,
        ("/api/payments", _) => 201,
        _ => 200,
    }
}

/// The actor's `n`th request: failed logins under several names, some
/// successes, then reads of personal data.
fn actor_trace(
    rng: &mut Rng,
    pending: &mut Pending,
    trace_id: TraceId,
    time: u64,
    actor: &str,
    n: u64,
) {
    const NAMES: [&str; 4] = ["mallory", "alice", "bob", "admin"];
    let user = NAMES[(n % NAMES.len() as u64) as usize];
    let client = Client {
        address: actor.to_string(),
        user: Some(user.to_string()),
        token: Some(ACTOR_TOKEN.to_string()),
        session: format!("s-actor-{}", n / 500),
        agent: "python-requests/2.32.3",
    };
    let (route, status) = match n % 10 {
        0..=6 => (&ROUTES[0], 401),
        7 => (&ROUTES[0], 200),
        8 => (&ROUTES[1], 200),
        _ => (&ROUTES[3], 200),
    };
    shop_trace(rng, pending, trace_id, time, &client, route, status);
}

#[allow(clippy::too_many_arguments)]
fn shop_trace(
    rng: &mut Rng,
    pending: &mut Pending,
    trace_id: TraceId,
    time: u64,
    client: &Client,
    route: &Route,
    status: i64,
) {
    let duration = 2_000_000 + rng.below(40_000_000);
    let path = route.path.replace("{}", &rng.below(100_000).to_string());
    let root_id = span_id(rng);
    let mut root = Span::new(
        trace_id,
        root_id,
        format!("{} {}", route.method, route.route),
    );
    root.kind = SpanKind::Server;
    root.start_time_unix_nano = time;
    root.end_time_unix_nano = time + duration;
    let mut attributes = vec![
        KeyValue::new(semconv::CLIENT_ADDRESS, client.address.as_str()),
        KeyValue::new(semconv::USER_AGENT_ORIGINAL, client.agent),
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, route.method),
        KeyValue::new(semconv::HTTP_ROUTE, route.route),
        KeyValue::new(semconv::URL_PATH, path.as_str()),
        KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, AnyValue::Int(status)),
        KeyValue::new(semconv::SESSION_ID, client.session.as_str()),
    ];
    if let Some(user) = &client.user {
        attributes.push(KeyValue::new(semconv::ENDUSER_ID, user.as_str()));
    }
    if let Some(token) = &client.token {
        // What ingest stores: the fingerprint, then the header redacted.
        attributes.push(KeyValue::new(
            "http.request.header.authorization",
            AnyValue::Str(format!("Bearer {token}").into()),
        ));
        credential::stamp(&mut attributes);
        if let Some(header) = attributes
            .iter_mut()
            .find(|kv| kv.key == "http.request.header.authorization")
        {
            header.value = AnyValue::from("[REDACTED]");
        }
    }
    root.attributes = attributes;
    push(pending, GATEWAY, root);

    let backend = SERVICES[route.service];
    let call_id = span_id(rng);
    let mut call = Span::new(
        trace_id,
        call_id,
        format!("{} {}", route.method, route.route),
    );
    call.parent_span_id = Some(root_id);
    call.kind = SpanKind::Client;
    call.start_time_unix_nano = time + 200_000;
    call.end_time_unix_nano = time + duration - 200_000;
    call.attributes = vec![
        KeyValue::new(semconv::SERVER_ADDRESS, backend),
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, route.method),
        KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, AnyValue::Int(status)),
    ];
    push(pending, GATEWAY, call);

    let served_id = span_id(rng);
    let mut served = Span::new(
        trace_id,
        served_id,
        format!("{} {}", route.method, route.route),
    );
    served.parent_span_id = Some(call_id);
    served.kind = SpanKind::Server;
    served.start_time_unix_nano = time + 400_000;
    served.end_time_unix_nano = time + duration - 400_000;
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, route.method),
        KeyValue::new(semconv::HTTP_ROUTE, route.route),
        KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, AnyValue::Int(status)),
    ];
    if let Some(user) = &client.user {
        attributes.push(KeyValue::new(semconv::ENDUSER_ID, user.as_str()));
        if let Some(class) = route.classification
            && status < 400
        {
            attributes.push(KeyValue::new("app.data.classification", class));
            attributes.push(KeyValue::new(
                "user.email",
                format!("{user}@example.com").as_str(),
            ));
        }
    }
    if let Some(host) = route.third_party {
        attributes.push(KeyValue::new("peer.service", host));
    }
    served.attributes = attributes;
    push(pending, route.service, served);

    // A fourth span: the database call on half the data routes' traces,
    // else the third party's call, else the backend's own work.
    let child_start = time + 600_000;
    let child_end = time + duration / 2;
    let mut child = Span::new(trace_id, span_id(rng), "render");
    child.parent_span_id = Some(served_id);
    child.kind = SpanKind::Internal;
    child.start_time_unix_nano = child_start;
    child.end_time_unix_nano = child_end;
    match (route.table, route.third_party) {
        (Some(table), third_party) if third_party.is_some() || rng.chance(50) => {
            child.name = format!("SELECT {table}").into();
            child.kind = SpanKind::Client;
            child.attributes = vec![
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("db.operation.name", "SELECT"),
                KeyValue::new("db.collection.name", table),
                KeyValue::new(semconv::SERVER_ADDRESS, SERVICES[DATABASE]),
            ];
            if let Some(class) = route.classification {
                child
                    .attributes
                    .push(KeyValue::new("app.data.classification", class));
            }
        }
        (_, Some(host)) => {
            child.name = format!("POST https://{host}").into();
            child.kind = SpanKind::Client;
            child.attributes = vec![
                KeyValue::new(semconv::SERVER_ADDRESS, host),
                KeyValue::new("peer.service", host),
                KeyValue::new(semconv::HTTP_REQUEST_METHOD, "POST"),
            ];
        }
        _ => {}
    }
    push(pending, route.service, child);

    if status >= 400 || rng.chance(5) {
        let (severity, number, body) = if status >= 400 {
            (
                "WARN",
                13,
                match (route.route, &client.user) {
                    ("/login", Some(user)) => format!("login failed for {user}: bad credentials"),
                    _ => format!("{} {} answered {status}", route.method, path),
                },
            )
        } else {
            ("INFO", 9, format!("{} {} served", route.method, path))
        };
        let log = LogRecord {
            time_unix_nano: time + duration,
            observed_time_unix_nano: time + duration,
            severity_number: number,
            severity_text: severity.into(),
            body: AnyValue::from(body.as_str()),
            trace_id: Some(trace_id),
            span_id: Some(root_id),
            ..LogRecord::default()
        };
        pending.logs.entry(GATEWAY).or_default().push(log);
        pending.log_count += 1;
    }
}

fn push(pending: &mut Pending, service: usize, span: Span) {
    pending.spans.entry(service).or_default().push(span);
    pending.span_count += 1;
}

fn take_batch(pending: &mut Pending, resources: &[Arc<Resource>], scope: &Arc<Scope>) -> Batch {
    let resource_spans = pending
        .spans
        .drain()
        .filter_map(|(service, spans)| {
            Some(ResourceSpans {
                resource: Arc::clone(resources.get(service)?),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::clone(scope),
                    spans,
                }],
            })
        })
        .collect();
    let resource_logs = pending
        .logs
        .drain()
        .filter_map(|(service, log_records)| {
            Some(ResourceLogs {
                resource: Arc::clone(resources.get(service)?),
                scope_logs: vec![ScopeLogs {
                    scope: Arc::clone(scope),
                    log_records,
                }],
            })
        })
        .collect();
    pending.span_count = 0;
    pending.log_count = 0;
    Batch {
        resource_spans,
        resource_logs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(spans: u64, actor_requests: u64) -> (tempfile::TempDir, serde_json::Value) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("store");
        run(StoreArgs {
            spans,
            data_dir: data.clone(),
            actor_requests,
            actor: "203.0.113.7".to_string(),
            days: 30,
            end: Some(1_733_340_000),
            segment_spans: 20_000,
            seed: 7,
        })
        .expect("generate");
        let text = std::fs::read(data.join("bench-store.json")).expect("description");
        (dir, serde_json::from_slice(&text).expect("json"))
    }

    #[test]
    fn the_store_holds_what_the_description_says() {
        let (dir, description) = build(40_000, 200);
        assert_eq!(description["actor"]["requests"], 200);
        assert_eq!(description["startUnixSeconds"], 1_733_340_000 - 30 * 86_400);
        let spans = description["spans"].as_u64().expect("spans");
        assert_eq!(spans, 40_000);
        let (store, _) = Store::open(StoreOptions::new(dir.path().join("store"))).expect("open");
        let stats = store.stats();
        assert_eq!(stats.segment_spans, spans);
        assert!(stats.segments >= 2, "{stats:?}");
        // The actor's requests are all in the last day, on gateway roots.
        let actor = store
            .find_spans(&tracewarden_store::segment::SpanFilter {
                equals: vec![(
                    tracewarden_store::segment::DedicatedColumn::ClientAddress,
                    "203.0.113.7".to_string(),
                )],
                ..Default::default()
            })
            .expect("scan");
        assert_eq!(actor.len(), 200);
        let last_day = (1_733_340_000 - 86_400) * 1_000_000_000;
        assert!(actor.iter().all(|r| r.span.start_time_unix_nano >= last_day
            && r.span.parent_span_id.is_none()
            && r.resource.service_name() == "api-gateway"));
        // Each carries the actor's token fingerprint, the header masked.
        let token = description["token"].as_str().expect("token");
        assert_eq!(token, credential::fingerprint("Bearer actor-token"));
        assert!(actor.iter().all(|r| {
            r.span.attribute(credential::TOKEN_FINGERPRINT) == Some(&AnyValue::from(token))
                && r.span.attribute("http.request.header.authorization")
                    == Some(&AnyValue::from("[REDACTED]"))
        }));
        store.close();
    }

    #[test]
    fn a_non_empty_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x"), b"x").expect("write");
        let error = run(StoreArgs {
            spans: 10,
            data_dir: dir.path().to_path_buf(),
            actor_requests: 1,
            actor: "203.0.113.7".to_string(),
            days: 1,
            end: Some(1_733_340_000),
            segment_spans: 10,
            seed: 1,
        })
        .unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }
}
