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
        span,
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
    // A scanner, twice.
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
        ("scanner-user-agent", 2),
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
        let address = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
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
        // Every prefix, and every single-byte replacement with a YAML or
        // TraceQL metacharacter: parsing must return, never panic.
        let boundaries: Vec<usize> = (0..text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &cut in boundaries.iter().step_by(2) {
            let _ = parse_rule(&text[..cut], &path);
        }
        for &at in boundaries.iter().step_by(11) {
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
