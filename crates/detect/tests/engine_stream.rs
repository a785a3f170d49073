//! The engine with the whole built-in pack over a stream of batches, and
//! the loader over damaged rule files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracewarden_detect::engine::{Engine, EngineConfig};
use tracewarden_detect::rule::{load_dir, parse_rule, rule_files};
use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanKind, SpanRecord, TraceId};

const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn request(
    n: u64,
    t: u64,
    address: &str,
    route: &str,
    status: i64,
    user: Option<&str>,
    agent: &str,
) -> SpanRecord {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let mut span = Span::new(TraceId::from_bytes(id), SpanId::from_bytes([1; 8]), route);
    span.kind = SpanKind::Server;
    span.start_time_unix_nano = t;
    span.end_time_unix_nano = t + 1_000_000;
    span.attributes = vec![
        KeyValue::new("http.route", route),
        KeyValue::new("http.response.status_code", AnyValue::Int(status)),
        KeyValue::new("client.address", address),
        KeyValue::new("user_agent.original", agent),
    ];
    if let Some(user) = user {
        span.attributes.push(KeyValue::new("enduser.id", user));
    }
    SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    }
}

#[test]
fn a_mixed_stream_raises_each_attack_once() {
    let mut engine = Engine::new(load_dir(&pack_dir()).unwrap_or_else(|e| panic!("{e}")));
    let mut spans = Vec::new();
    let mut n = 0u64;
    let mut push =
        |t: u64, address: &str, route: &str, status: i64, user: Option<&str>, agent: &str| {
            n += 1;
            spans.push(request(n, BASE + t, address, route, status, user, agent));
        };
    // Background: 2000 ordinary requests from 500 addresses over 200 s.
    for i in 0..2000u64 {
        push(
            i * SEC / 10,
            &format!("198.51.100.{}", i % 500 / 2),
            "/products/{id}",
            200,
            None,
            "Mozilla/5.0",
        );
    }
    // An attacker guesses alice's password 12 times, then gets in.
    for i in 0..12u64 {
        push(
            10 * SEC + i * 2 * SEC,
            "203.0.113.66",
            "/api/login",
            401,
            Some("alice"),
            "python-requests/2.32",
        );
    }
    push(
        40 * SEC,
        "203.0.113.66",
        "/api/login",
        200,
        Some("alice"),
        "python-requests/2.32",
    );
    // A scanner, twice from one address: one detection (suppressed per
    // address for 10 minutes).
    push(50 * SEC, "203.0.113.77", "/", 404, None, "sqlmap/1.7");
    push(51 * SEC, "203.0.113.77", "/", 404, None, "sqlmap/1.7");
    spans.sort_by_key(|s| s.span.start_time_unix_nano);

    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for batch in spans.chunks(256) {
        let now = batch.last().map_or(BASE, |s| s.span.start_time_unix_nano);
        for d in engine.process(batch, now) {
            *by_rule.entry(d.rule_id.to_string()).or_default() += 1;
            if &*d.rule_id == "brute-force-then-success" {
                assert_eq!(d.key[0].1, "203.0.113.66");
                assert!(d.trace_ids.len() <= 10 && !d.trace_ids.is_empty());
            }
        }
    }
    let expected: BTreeMap<String, usize> = [
        ("brute-force-login", 1),
        ("brute-force-then-success", 1),
        ("scanner-user-agent", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_rule, expected);
    let stats = engine.stats();
    assert_eq!(stats.spans, 2015);
    assert_eq!(stats.late_spans(), 0);
    assert_eq!(stats.evicted_keys(), 0);
}

#[test]
fn two_hundred_thousand_actors_stay_within_the_key_cap() {
    let rules = load_dir(&pack_dir()).unwrap_or_else(|e| panic!("{e}"));
    let config = EngineConfig {
        max_keys_per_rule: 2_000,
        ..EngineConfig::default()
    };
    let mut engine = Engine::with_config(rules, config);
    let mut batch = Vec::with_capacity(10_000);
    for n in 0..200_000u64 {
        let address = format!("11.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
        batch.push(request(
            n,
            BASE + n * 1_000,
            &address,
            "/api/login",
            401,
            Some("alice"),
            "Mozilla/5.0",
        ));
        if batch.len() == 10_000 {
            engine.process(&batch, BASE + n * 1_000);
            batch.clear();
        }
    }
    let stats = engine.stats();
    for rule in &stats.rules {
        assert!(rule.keys <= 2_000, "{rule:?}");
    }
    let rate = stats
        .rules
        .iter()
        .find(|r| r.rule_id == "excessive-request-rate")
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(
        rate.keys as u64 + rate.evicted_keys + rate.expired_keys,
        200_000
    );
    assert!(rate.evicted_keys > 0);
}

#[test]
fn damaged_rule_files_give_errors_not_panics() {
    for path in rule_files(&pack_dir()).unwrap_or_else(|e| panic!("{e}")) {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(parse_rule(&text, &path).is_ok());
        // Prefixes, and single-byte replacements with a YAML or TraceQL
        // metacharacter, at strides that keep the test under a few seconds
        // in release and a minute in a loaded debug build as the pack grows
        // (the `rule` fuzz target explores the rest): parsing must return,
        // never panic.
        let boundaries: Vec<usize> = (0..text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &cut in boundaries.iter().step_by(5) {
            let _ = parse_rule(&text[..cut], &path);
        }
        for &at in boundaries.iter().step_by(23) {
            for c in [
                '{', '}', '"', '\'', ':', '-', '|', '\n', '[', '&', '*', '!', '#',
            ] {
                let mut rest = text[at..].chars();
                rest.next();
                let damaged = format!("{}{c}{}", &text[..at], rest.as_str());
                let _ = parse_rule(&damaged, &path);
            }
        }
    }
}

fn with_resource(mut record: SpanRecord, service: &str) -> SpanRecord {
    record.resource = Arc::new(tracewarden_model::Resource {
        attributes: vec![KeyValue::new("service.name", service)],
        ..tracewarden_model::Resource::default()
    });
    record
}

fn write(n: u64, t: u64, service: &str, table: &str, operation: &str) -> SpanRecord {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let mut span = Span::new(
        TraceId::from_bytes(id),
        SpanId::from_bytes([2; 8]),
        operation,
    );
    span.kind = SpanKind::Client;
    span.start_time_unix_nano = t;
    span.end_time_unix_nano = t + 1_000_000;
    span.attributes = vec![
        KeyValue::new("db.system", "postgresql"),
        KeyValue::new("db.operation.name", operation),
        KeyValue::new("db.collection.name", table),
    ];
    with_resource(
        SpanRecord {
            resource: Arc::default(),
            scope: Arc::default(),
            span: span.into(),
        },
        service,
    )
}

/// A week and a bit of traffic in hourly batches: the history rules learn
/// for seven days, then a stolen session, a new table written and an HTTP
/// flood each fire once, and nothing else does.
#[test]
fn a_week_of_history_then_new_terms_and_a_flood() {
    let mut engine = Engine::new(load_dir(&pack_dir()).unwrap_or_else(|e| panic!("{e}")));
    const HOUR: u64 = 3600 * SEC;
    let mut n = 0u64;
    let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let agents = ["Mozilla/5.0 Firefox/128.0", "Mozilla/5.0 Safari/17.5"];
    for hour in 0..(8 * 24u64) {
        let start = BASE + hour * HOUR;
        let mut batch = Vec::new();
        // Each hour: 50 users browse with their own agent, the orders
        // service writes its tables, and /products sees 1 request a second
        // for 10 minutes from 40 addresses.
        for user in 0..50u64 {
            n += 1;
            let name = format!("user{user}");
            batch.push(request(
                n,
                start + user * SEC,
                "198.51.100.7",
                "/account",
                200,
                Some(&name),
                agents[(user % 2) as usize],
            ));
        }
        for (i, table) in ["orders", "order_items"].iter().enumerate() {
            n += 1;
            batch.push(write(
                n,
                start + (60 + i as u64) * SEC,
                "orders",
                table,
                "INSERT",
            ));
        }
        for s in 0..600u64 {
            n += 1;
            batch.push(request(
                n,
                start + 120 * SEC + s * SEC,
                &format!("198.51.100.{}", s % 40),
                "/products/{id}",
                200,
                None,
                agents[0],
            ));
        }
        if hour == 7 * 24 + 1 {
            // user7 (Safari) appears with curl; a 2000-request flood from
            // 500 addresses on /products in 5 s (8 minutes into its active
            // period: /products idles 50 minutes an hour, longer than its
            // 5-minute learning, so it relearns every hour); orders writes
            // `users`.
            n += 1;
            batch.push(request(
                n,
                start + 2 * SEC,
                "203.0.113.50",
                "/account",
                200,
                Some("user7"),
                "curl/8.4.0",
            ));
            for s in 0..2000u64 {
                n += 1;
                batch.push(request(
                    n,
                    start + 600 * SEC + s * 2_500_000,
                    &format!("2001:db8::{:x}", s % 500),
                    "/products/{id}",
                    200,
                    None,
                    "Go-http-client/1.1",
                ));
            }
            n += 1;
            batch.push(write(n, start + 700 * SEC, "orders", "users", "UPDATE"));
        }
        batch.sort_by_key(|s| s.span.start_time_unix_nano);
        let now = batch.last().map_or(start, |s| s.span.start_time_unix_nano);
        for d in engine.process(&batch, now) {
            by_rule
                .entry(d.rule_id.to_string())
                .or_default()
                .push(d.evidence.unwrap_or_default());
        }
    }
    let rules: Vec<&str> = by_rule.keys().map(String::as_str).collect();
    assert_eq!(
        rules,
        vec![
            "ddos-burst",
            "new-user-agent-for-user",
            "unexpected-data-modification"
        ],
        "{by_rule:#?}"
    );
    assert_eq!(
        by_rule["new-user-agent-for-user"],
        vec![
            r#"new span.user_agent.original for span.enduser.id=user7: "curl/8.4.0"; span.client.address=203.0.113.50 span.http.route=/account"#
        ]
    );
    assert_eq!(
        by_rule["unexpected-data-modification"],
        vec![r#"new span.db.collection.name for resource.service.name=orders: "users""#]
    );
    assert_eq!(by_rule["ddos-burst"].len(), 1, "{by_rule:#?}");
    assert!(
        by_rule["ddos-burst"][0].ends_with("+ distinct span.client.address"),
        "{by_rule:#?}"
    );
    let stats = engine.stats();
    assert_eq!(stats.late_spans(), 0);
    let terms: u64 = stats.rules.iter().map(|r| r.evicted_terms).sum();
    assert_eq!(terms, 0);
}
