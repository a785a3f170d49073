//! Detection checkpoints from arbitrary bodies. The server reads its
//! checkpoint at start-up; the checksum catches a torn or damaged file, not
//! a body this build misreads (written by a build with a bug, or edited by
//! hand). Any body under a valid checksum must give an error or an engine
//! that keeps running: never a panic, a hang or a runaway allocation, in
//! the restore or in the spans, log records, flushes and checkpoint after
//! it. The corpus holds real checkpoints of the whole pack (windows, keys,
//! sequences, new terms, baselines, learned topology, buffered traces and
//! records waiting for their span), so mutations reach the rules' state.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tracewarden_detect::engine::{Engine, EngineConfig};
use tracewarden_detect::rule::{Rule, Site, builtin_rules_for};
use tracewarden_model::{
    AnyValue, KeyValue, LogEntry, LogRecord, Resource, Scope, Span, SpanId, SpanKind, SpanRecord,
    TraceId,
};

/// `engine/checkpoint.rs`: the magic before the body, its CRC-32C after.
const MAGIC: &[u8] = b"TWDETCK1";
const SEC: u64 = 1_000_000_000;
/// The corpus's checkpoints were taken at about this time.
const NOW: u64 = 1_767_225_600 * SEC + 600 * SEC;

/// The pack, with the site facts that turn on its topology rules.
fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let site = Site {
            entry_services: vec!["gateway".into()],
            allowed_edges: vec!["gateway -> weather".into()],
            ..Site::default()
        };
        match builtin_rules_for(&site) {
            Ok(rules) => rules,
            Err(errors) => panic!("the pack does not load: {errors}"),
        }
    })
}

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", service)],
        ..Resource::default()
    })
}

/// A few spans every kind of rule reads: a failed login, a trace across two
/// services, an injection probe; and a log record naming one of them.
fn traffic(at: u64) -> (Vec<SpanRecord>, Vec<LogEntry>) {
    let scope = Arc::new(Scope::default());
    let span =
        |trace: u8, id: u8, parent: Option<u8>, service: &str, attributes: &[(&str, AnyValue)]| {
            let mut span = Span::new(
                TraceId::from_bytes([trace; 16]),
                SpanId::from_bytes([id; 8]),
                "GET /api",
            );
            span.parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
            span.kind = SpanKind::Server;
            span.start_time_unix_nano = at;
            span.end_time_unix_nano = at + 1_000_000;
            span.attributes = attributes
                .iter()
                .map(|(k, v)| KeyValue::new(*k, v.clone()))
                .collect();
            SpanRecord {
                resource: resource(service),
                scope: Arc::clone(&scope),
                span: span.into(),
            }
        };
    let text = |s: &str| AnyValue::Str(s.into());
    let spans = vec![
        span(
            1,
            1,
            None,
            "gateway",
            &[
                ("http.route", text("/api/v1/login")),
                ("url.path", text("/api/v1/login")),
                ("http.request.method", text("POST")),
                ("http.response.status_code", AnyValue::Int(401)),
                ("client.address", text("203.0.113.9")),
                ("enduser.id", text("alice")),
                ("user_agent.original", text("curl/8.5.0")),
                ("session.id", text("s-1")),
            ],
        ),
        span(
            2,
            2,
            None,
            "gateway",
            &[
                ("http.route", text("/api/v1/weather/{city}")),
                ("url.path", text("/api/v1/weather/Berlin")),
                ("url.query", text("q=1' OR '1'='1")),
                ("http.response.status_code", AnyValue::Int(200)),
                ("client.address", text("203.0.113.9")),
                ("enduser.id", text("alice")),
            ],
        ),
        span(
            2,
            3,
            Some(2),
            "weather",
            &[
                ("http.route", text("/weather")),
                ("http.response.status_code", AnyValue::Int(200)),
            ],
        ),
    ];
    let record = LogRecord {
        time_unix_nano: at,
        body: text("access denied for alice"),
        trace_id: Some(TraceId::from_bytes([2; 16])),
        span_id: Some(SpanId::from_bytes([3; 8])),
        ..LogRecord::default()
    };
    let logs = vec![LogEntry {
        resource: resource("weather"),
        scope,
        record,
    }];
    (spans, logs)
}

fuzz_target!(|body: &[u8]| {
    let mut bytes = Vec::with_capacity(MAGIC.len() + body.len() + 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    let mut engine = Engine::with_config(rules().to_vec(), EngineConfig::default());
    if engine.restore(&bytes).is_err() {
        return;
    }
    // The spans it names come back from records that may not hold them
    // (another trace, fewer spans): counted missing, never trusted.
    let (spans, _) = traffic(NOW);
    for lsn in engine.wanted_lsns().into_iter().take(64) {
        engine.refill(lsn, &spans);
    }
    engine.refilled();
    for round in 0..3 {
        let at = NOW + round * 10 * SEC;
        let (spans, logs) = traffic(at);
        engine.process_record(spans, at, round + 1);
        engine.process_logs(&logs, at);
        engine.flush(at + 30 * SEC);
    }
    let _ = engine.stats();
    let _ = engine.checkpoint();
});
