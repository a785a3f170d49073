use std::path::Path;
use std::sync::Arc;

use tracewarden_model::{AnyValue, KeyValue, LogEntry, Span, SpanId, StatusCode};

use super::*;
use crate::rule::parse_rule;

const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

fn rule(text: &str) -> Rule {
    parse_rule(text, Path::new("t.yaml")).unwrap()
}

fn span(t_secs: u64, trace: u8, attrs: &[(&str, AnyValue)]) -> SpanRecord {
    let mut span = Span::new(
        TraceId::from_bytes([trace; 16]),
        SpanId::from_bytes([trace | 1; 8]),
        "POST /login",
    );
    span.start_time_unix_nano = BASE + t_secs * SEC;
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000;
    for (k, v) in attrs {
        span.attributes.push(KeyValue::new(*k, v.clone()));
    }
    SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    }
}

fn login(t_secs: u64, trace: u8, address: &str, user: &str, status: i64) -> SpanRecord {
    span(
        t_secs,
        trace,
        &[
            ("http.route", AnyValue::from("/login")),
            ("client.address", AnyValue::from(address)),
            ("enduser.id", AnyValue::from(user)),
            ("http.response.status_code", AnyValue::Int(status)),
        ],
    )
}

const THRESHOLD: &str = "id: burst\ntitle: Burst\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 3\n";

#[test]
fn threshold_counts_per_key_and_fires_once() {
    let mut engine = Engine::new(vec![rule(THRESHOLD)]);
    let spans = vec![
        login(0, 1, "10.0.0.1", "a", 401),
        login(1, 2, "10.0.0.2", "a", 401),
        login(2, 3, "10.0.0.1", "a", 200),
        login(3, 4, "10.0.0.1", "a", 401),
        login(4, 5, "10.0.0.2", "a", 401),
        login(5, 6, "10.0.0.1", "a", 401),
        login(6, 7, "10.0.0.1", "a", 401),
        login(7, 8, "10.0.0.1", "a", 401),
    ];
    let detections = engine.process(&spans, BASE + 10 * SEC);
    assert_eq!(detections.len(), 1);
    let d = &detections[0];
    assert_eq!(&*d.rule_id, "burst");
    assert_eq!(d.kind, "threshold");
    assert_eq!(d.severity, Severity::High);
    assert_eq!(
        d.key,
        vec![("span.client.address".to_string(), "10.0.0.1".to_string())]
    );
    assert_eq!(d.count, 3);
    assert_eq!(d.first_seen_unix_nano, BASE);
    assert_eq!(d.last_seen_unix_nano, BASE + 5 * SEC);
    assert_eq!(
        d.trace_ids,
        vec![
            TraceId::from_bytes([6; 16]),
            TraceId::from_bytes([4; 16]),
            TraceId::from_bytes([1; 16])
        ]
    );
    // After the window drains, a new burst fires again (across batches).
    let later = vec![
        login(200, 9, "10.0.0.1", "a", 401),
        login(201, 10, "10.0.0.1", "a", 401),
        login(202, 11, "10.0.0.1", "a", 401),
    ];
    let detections = engine.process(&later, BASE + 202 * SEC);
    assert_eq!(detections.len(), 1);
    let stats = engine.stats();
    assert_eq!(stats.spans, 11);
    assert_eq!(stats.detections, 2);
    assert_eq!(stats.rules[0].matched_spans, 10);
    // Both keys went idle for a window and were swept; 10.0.0.1 came back.
    assert_eq!(stats.rules[0].expired_keys, 2);
    assert_eq!(stats.rules[0].keys, 1);
}

#[test]
fn distinct_counts_users_per_address() {
    let text = "id: stuffing\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\ndistinct: span.enduser.id\nwindow: 10m\ncount: 3\n";
    let mut engine = Engine::new(vec![rule(text)]);
    let spans = vec![
        login(0, 1, "10.0.0.1", "alice", 401),
        login(1, 2, "10.0.0.1", "alice", 401),
        login(2, 3, "10.0.0.1", "alice", 401),
        login(3, 4, "10.0.0.1", "bob", 401),
        login(4, 5, "10.0.0.1", "bob", 401),
    ];
    assert!(engine.process(&spans, BASE).is_empty(), "two users only");
    let detections = engine.process(&[login(5, 6, "10.0.0.1", "carol", 401)], BASE);
    assert_eq!(detections.len(), 1);
    assert_eq!(detections[0].count, 3);
    // A span without the distinct field is counted as missing, not as a value.
    let detections = engine.process(
        &[span(
            6,
            7,
            &[
                ("client.address", AnyValue::from("10.0.0.1")),
                ("http.response.status_code", AnyValue::Int(401)),
            ],
        )],
        BASE,
    );
    assert!(detections.is_empty());
    assert_eq!(engine.stats().rules[0].missing_key, 1);
}

#[test]
fn sequence_failures_then_success() {
    let text = "id: brute-then-success\ntitle: t\nseverity: critical\nkind: sequence\ngroup_by: [span.client.address]\nwindow: 5m\nsteps:\n  - condition: '{ span.http.response.status_code = 401 }'\n    count: 3\n  - condition: '{ span.http.response.status_code = 200 }'\n";
    let mut engine = Engine::new(vec![rule(text)]);
    let spans = vec![
        login(0, 1, "10.0.0.1", "a", 401),
        login(1, 2, "10.0.0.1", "a", 401),
        login(2, 3, "10.0.0.2", "a", 200),
        login(3, 4, "10.0.0.1", "a", 401),
        login(4, 5, "10.0.0.1", "a", 200),
        login(5, 6, "10.0.0.1", "a", 200),
    ];
    let detections = engine.process(&spans, BASE + 5 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].key[0].1, "10.0.0.1");
    assert_eq!(detections[0].count, 4);
    assert_eq!(detections[0].first_seen_unix_nano, BASE);
    assert_eq!(detections[0].last_seen_unix_nano, BASE + 4 * SEC);
}

#[test]
fn match_rules_fire_per_span_and_disabled_rules_never() {
    let text = "id: scanner\ntitle: Scanner\nseverity: medium\nkind: match\ncondition: '{ span.user_agent.original =~ \"(?i).*sqlmap.*\" }'\n";
    let disabled =
        "id: off\ntitle: t\nseverity: low\nenabled: false\nkind: match\ncondition: '{ }'\n";
    let mut engine = Engine::new(vec![rule(text), rule(disabled)]);
    assert_eq!(engine.rules().count(), 1);
    let spans = vec![
        span(
            0,
            1,
            &[("user_agent.original", AnyValue::from("sqlmap/1.7"))],
        ),
        span(
            1,
            2,
            &[("user_agent.original", AnyValue::from("Mozilla/5.0"))],
        ),
        span(
            2,
            3,
            &[("user_agent.original", AnyValue::from("SQLMap/1.8"))],
        ),
    ];
    let detections = engine.process(&spans, BASE);
    assert_eq!(detections.len(), 2);
    assert_eq!(detections[0].trace_ids, vec![TraceId::from_bytes([1; 16])]);
    assert!(detections[0].key.is_empty());
}

#[test]
fn late_spans_are_dropped_and_counted() {
    let mut engine = Engine::new(vec![rule(THRESHOLD)]);
    engine.process(&[login(1000, 1, "10.0.0.9", "a", 401)], BASE + 1000 * SEC);
    // 100 s older than the watermark, window 1 m: late.
    let late: Vec<SpanRecord> = (0..5)
        .map(|i| login(900 + i, 2, "10.0.0.1", "a", 401))
        .collect();
    assert!(engine.process(&late, BASE + 1000 * SEC).is_empty());
    assert_eq!(engine.stats().late_spans(), 5);
    // Out of order but within the window: counted.
    let in_window = vec![
        login(990, 3, "10.0.0.9", "a", 401),
        login(980, 4, "10.0.0.9", "a", 401),
    ];
    assert_eq!(engine.process(&in_window, BASE + 1000 * SEC).len(), 1);
}

#[test]
fn future_spans_are_clamped_so_they_cannot_make_others_late() {
    let mut engine = Engine::new(vec![rule(THRESHOLD)]);
    let now = BASE + 100 * SEC;
    // A span dated a year ahead.
    let future = login(365 * 86_400, 1, "10.0.0.1", "a", 401);
    engine.process(&[future], now);
    assert_eq!(engine.stats().rules[0].future_spans, 1);
    let spans: Vec<SpanRecord> = (0..3)
        .map(|i| login(100 + i, 2, "10.0.0.2", "a", 401))
        .collect();
    assert_eq!(engine.process(&spans, now + 3 * SEC).len(), 1);
    assert_eq!(engine.stats().late_spans(), 0);
}

#[test]
fn keys_are_capped_with_counted_evictions() {
    let config = EngineConfig {
        max_keys_per_rule: 64,
        ..EngineConfig::default()
    };
    let mut engine = Engine::with_config(vec![rule(THRESHOLD)], config);
    let spans: Vec<SpanRecord> = (0..1000u64)
        .map(|i| {
            login(
                i / 100,
                1,
                &format!("10.0.{}.{}", i / 256, i % 256),
                "a",
                401,
            )
        })
        .collect();
    assert!(engine.process(&spans, BASE + 10 * SEC).is_empty());
    let stats = engine.stats();
    assert!(stats.rules[0].keys <= 64, "{stats:?}");
    assert_eq!(stats.evicted_keys() + stats.rules[0].keys as u64, 1000);
}

#[test]
fn spans_lacking_a_group_by_field_are_counted() {
    let mut engine = Engine::new(vec![rule(THRESHOLD)]);
    let spans: Vec<SpanRecord> = (0..5)
        .map(|i| span(i, 1, &[("http.response.status_code", AnyValue::Int(401))]))
        .collect();
    assert!(engine.process(&spans, BASE).is_empty());
    assert_eq!(engine.stats().rules[0].missing_key, 5);
}

#[test]
fn whole_trace_rules_run_on_traces_only() {
    let text = "id: error-chain\ntitle: t\nseverity: low\nkind: match\ncondition: '{ status = error } | count() > 1'\n";
    let mut engine = Engine::new(vec![rule(text)]);
    let mut a = span(0, 1, &[]);
    a.span_mut().status.code = StatusCode::Error;
    let mut b = span(1, 1, &[]);
    b.span_mut().status.code = StatusCode::Error;
    b.span_mut().span_id = SpanId::from_bytes([9; 8]);
    let trace = vec![a.clone(), b];
    assert!(engine.process(&trace, BASE).is_empty());
    assert_eq!(engine.stats().trace_rules, 1);
    let detections = engine.process_trace(&trace);
    assert_eq!(detections.len(), 1);
    assert_eq!(detections[0].count, 2);
    assert!(engine.process_trace(&[a]).is_empty());
    assert!(engine.process_trace(&[]).is_empty());
}

#[test]
fn group_by_values_with_separators_round_trip() {
    let text = "id: multi\ntitle: t\nseverity: low\nkind: threshold\ncondition: '{ }'\ngroup_by: [span.a, span.b]\nwindow: 1m\ncount: 1\n";
    let mut engine = Engine::new(vec![rule(text)]);
    let s = span(
        0,
        1,
        &[("a", AnyValue::from("1:x")), ("b", AnyValue::Int(7))],
    );
    let detections = engine.process(&[s], BASE);
    assert_eq!(
        detections[0].key,
        vec![
            ("span.a".to_string(), "1:x".to_string()),
            ("span.b".to_string(), "7".to_string())
        ]
    );
}

fn request(t_secs: u64, trace: u8, kind: tracewarden_model::SpanKind, query: &str) -> SpanRecord {
    let mut record = span(
        t_secs,
        trace,
        &[
            ("url.query", AnyValue::from(query)),
            ("client.address", AnyValue::from("203.0.113.50")),
        ],
    );
    record.span_mut().kind = kind;
    record
}

#[test]
fn payload_match_rules_fire_on_server_spans_with_a_payload_and_give_evidence() {
    use tracewarden_model::SpanKind;
    let mut engine = Engine::new(vec![rule(
        "id: sqli\ntitle: SQLi\nseverity: high\nkind: match\ncondition: '{ kind = server }'\npayload:\n  detect: [sql_injection]\n  fields: [url.query]\n",
    )]);
    let spans = vec![
        request(0, 1, SpanKind::Server, "id=1+UnIoN/**/SeLecT/**/1,2,3--"),
        request(1, 2, SpanKind::Server, "q=O%27Brien"),
        // The condition does not hold: the detector is not asked.
        request(2, 3, SpanKind::Client, "id=1+UnIoN/**/SeLecT/**/1,2,3--"),
        span(3, 4, &[("client.address", AnyValue::from("203.0.113.50"))]),
    ];
    let detections = engine.process(&spans, BASE + 10 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].trace_ids, vec![TraceId::from_bytes([1; 16])]);
    assert_eq!(
        detections[0].evidence.as_deref(),
        Some("sql_injection in url.query: union select")
    );
    let stats = engine.stats();
    assert_eq!(stats.rules[0].matched_spans, 1);
}

#[test]
fn payload_threshold_rules_count_only_spans_with_a_payload() {
    use tracewarden_model::SpanKind;
    let mut engine = Engine::new(vec![rule(
        "id: xss-burst\ntitle: XSS burst\nseverity: high\nkind: threshold\ncondition: '{ kind = server }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 2\npayload:\n  detect: [xss]\n  fields: [url.query]\n",
    )]);
    let spans = vec![
        request(0, 1, SpanKind::Server, "q=%3Cbody%20onload%3Dalert(1)%3E"),
        request(1, 2, SpanKind::Server, "q=rock+%26+roll"),
        request(2, 3, SpanKind::Server, "q=%3C3+cats"),
        request(3, 4, SpanKind::Server, "x=<script+>alert(1);</script>"),
    ];
    let detections = engine.process(&spans, BASE + 10 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].count, 2);
    assert_eq!(detections[0].first_seen_unix_nano, BASE);
    assert_eq!(detections[0].last_seen_unix_nano, BASE + 3 * SEC);
    let evidence = detections[0].evidence.as_deref().unwrap_or_default();
    assert!(evidence.starts_with("xss in url.query: "), "{evidence}");
    // Rules without a payload section carry no evidence.
    let mut engine = Engine::new(vec![rule(THRESHOLD)]);
    let spans: Vec<SpanRecord> = (0..3)
        .map(|i| login(i, i as u8 + 1, "10.0.0.1", "a", 401))
        .collect();
    let detections = engine.process(&spans, BASE + 10 * SEC);
    assert_eq!(detections.len(), 1);
    assert_eq!(detections[0].evidence, None);
}

fn log_entry(t_secs: u64, body: &str, user: Option<&str>, trace: Option<u8>) -> LogEntry {
    let mut attributes = Vec::new();
    if let Some(user) = user {
        attributes.push(KeyValue::new("enduser.id", user));
    }
    LogEntry {
        resource: Arc::new(tracewarden_model::Resource {
            attributes: vec![KeyValue::new("service.name", "docs")],
            ..Default::default()
        }),
        scope: Arc::default(),
        record: tracewarden_model::LogRecord {
            time_unix_nano: BASE + t_secs * SEC,
            observed_time_unix_nano: 0,
            severity_number: 13,
            severity_text: "WARN".into(),
            body: AnyValue::from(body),
            attributes,
            original_attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: trace.map(|t| TraceId::from_bytes([t; 16])),
            span_id: trace.map(|t| SpanId::from_bytes([t; 8])),
            event_name: Default::default(),
        },
    }
}

const LOG_RULE: &str = r#"
id: denied
title: t
severity: low
source: logs
kind: threshold
condition: '{ span.log.body =~ "(?i).*access denied.*" && span.log.severity_number >= 13 && resource.service.name = "docs" }'
group_by: [span.enduser.id]
window: 1m
count: 3
"#;

#[test]
fn log_rules_read_log_records_and_span_rules_do_not() {
    let span_rule = rule(
        "id: s\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.log.body != nil || span.enduser.id != nil }'\n",
    );
    let mut engine = Engine::new(vec![rule(LOG_RULE), span_rule]);
    let logs: Vec<LogEntry> = (0..4)
        .map(|i| {
            log_entry(
                i,
                "Access denied to /doc/7",
                Some("mallory"),
                Some(i as u8 + 1),
            )
        })
        .chain([
            log_entry(5, "access granted", Some("mallory"), None),
            log_entry(6, "Access denied", None, None),
        ])
        .collect();
    let detections = engine.process_logs(&logs, BASE + 10 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    let d = &detections[0];
    assert_eq!(d.rule_id.as_ref(), "denied");
    assert_eq!(
        d.key,
        vec![("span.enduser.id".to_string(), "mallory".to_string())]
    );
    assert_eq!(d.count, 3);
    // The detection links to the traces the records belong to.
    assert_eq!(d.trace_ids[0], TraceId::from_bytes([3; 16]));
    let stats = engine.stats();
    assert_eq!(stats.logs, 6);
    assert_eq!(stats.rules[0].missing_key, 1, "the record without a user");
    // The span rule saw no log record, and the log rule sees no span.
    assert_eq!(stats.rules[1].matched_spans, 0);
    let spans = [span(20, 9, &[("enduser.id", AnyValue::from("mallory"))])];
    assert_eq!(engine.process(&spans, BASE + 30 * SEC).len(), 1);
    assert_eq!(
        engine.stats().rules[0].matched_spans,
        5,
        "four denials and the one without a user"
    );
}

#[test]
fn source_must_be_spans_or_logs() {
    let text = LOG_RULE.replace("source: logs", "source: traces");
    let errors = crate::rule::parse_rule(&text, Path::new("t.yaml")).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("`traces` is neither `spans` nor `logs`"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_sweep_keeps_the_hits_an_admitted_late_span_counts_with() {
    // B at 65 s sweeps the keys idle for a window; A at 30 s is still
    // admitted (within a window of the watermark) and must find A's hits
    // at 0 and 5 s, as in time order.
    let mut engine = Engine::new(vec![rule(THRESHOLD)]);
    let spans = vec![
        login(0, 1, "10.0.0.1", "a", 401),
        login(5, 2, "10.0.0.1", "a", 401),
        login(65, 3, "10.0.0.2", "a", 401),
        login(30, 4, "10.0.0.1", "a", 401),
    ];
    let detections = engine.process(&spans, BASE + 65 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].count, 3);
}

#[test]
fn a_span_without_a_start_time_counts_at_now() {
    // Suppressed per address: three spans of one address with start 0
    // fire once, as with a real start time.
    let suppressed = "id: s\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.http.response.status_code = 401 }'\nsuppress:\n  by: [span.client.address]\n  for: 10m\n";
    let mut engine = Engine::new(vec![rule(suppressed)]);
    let spans: Vec<SpanRecord> = (0..3u8)
        .map(|i| {
            let mut s = login(0, i + 1, "10.0.0.1", "a", 401);
            s.span_mut().start_time_unix_nano = 0;
            s
        })
        .collect();
    assert_eq!(engine.process(&spans, BASE).len(), 1);

    // A first span with start 0 does not end a new_terms rule's learning
    // in 1970: an hour from now, it is still learning.
    let mut engine = Engine::new(vec![rule(NEW_AGENT)]);
    let mut zero = span(0, 1, &[]);
    zero.span_mut().start_time_unix_nano = 0;
    assert!(engine.process(&[zero], BASE).is_empty());
    let spans = vec![
        agent(1, 2, "alice", "Firefox/128", 200),
        agent(2, 3, "alice", "curl/8.1", 200),
    ];
    assert!(
        engine.process(&spans, BASE + 2 * SEC).is_empty(),
        "still learning"
    );
}

#[test]
fn reload_keeps_the_windows_of_unchanged_rules() {
    let brute = "id: brute\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 4\n";
    let other = "id: other\ntitle: t\nseverity: low\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 4\n";
    let gone = "id: gone\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.x = 1 }'\n";
    let mut engine = Engine::new(vec![rule(brute), rule(other), rule(gone)]);
    let failures: Vec<SpanRecord> = (0..3u8)
        .map(|i| login(u64::from(i), i + 1, "198.51.100.1", "u", 401))
        .collect();
    assert!(engine.process(&failures, BASE + 10 * SEC).is_empty());

    // `other` changes its count: it starts afresh; `brute` carries on,
    // reworded, with another severity, a comment and other quoting.
    let changed = other.replace("count: 4", "count: 2");
    let reworded = brute
        .replace(
            "title: t",
            "title: Brute force\ndescription: reworded # why",
        )
        .replace("severity: high", "severity: critical")
        .replace("window: 1m", "window: '1m'");
    let added = "id: added\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.y = 1 }'\n";
    let summary = engine.reload(vec![rule(&reworded), rule(&changed), rule(added)]);
    assert_eq!(summary.kept, vec!["brute"]);
    assert_eq!(summary.changed, vec!["other"]);
    assert_eq!(summary.added, vec!["added"]);
    assert_eq!(summary.removed, vec!["gone"]);
    assert_eq!(
        engine.stats().rules[0].matched_spans,
        3,
        "counters carry on"
    );

    let detections = engine.process(&[login(4, 9, "198.51.100.1", "u", 401)], BASE + 10 * SEC);
    let fired: Vec<&str> = detections.iter().map(|d| d.rule_id.as_ref()).collect();
    // The fourth failure crosses brute's threshold (three before the reload);
    // `other` has seen one failure since, below its new count of two.
    assert_eq!(fired, vec!["brute"], "{detections:?}");
}

const NEW_AGENT: &str = "id: new-agent\ntitle: New agent\nseverity: low\nkind: new_terms\ncondition: '{ span.http.response.status_code = 200 }'\ngroup_by: [span.enduser.id]\nfields: [span.user_agent.original]\nlearning: 1h\nmax_terms_per_key: 2\n";

fn agent(t_secs: u64, trace: u8, user: &str, agent: &str, status: i64) -> SpanRecord {
    span(
        t_secs,
        trace,
        &[
            ("enduser.id", AnyValue::from(user)),
            ("user_agent.original", AnyValue::from(agent)),
            ("http.response.status_code", AnyValue::Int(status)),
        ],
    )
}

#[test]
fn new_terms_fire_after_learning_with_evidence_across_batches() {
    let mut engine = Engine::new(vec![rule(NEW_AGENT)]);
    // Learning starts at the first span the rule sees, matching or not.
    let learning = vec![
        span(0, 1, &[]),
        agent(60, 2, "alice", "Firefox/128", 200),
        agent(3599, 3, "alice", "Chrome/126", 200),
    ];
    assert!(engine.process(&learning, BASE + 3600 * SEC).is_empty());
    let after = vec![
        agent(3600, 4, "alice", "Firefox/128", 200),
        // A failed request is not a term (the condition does not hold).
        agent(3601, 5, "alice", "sqlmap/1.7", 401),
        agent(3602, 6, "alice", "curl/8.1", 200),
        agent(3603, 7, "alice", "curl/8.1", 200),
        // A new user's first agent is learnt; a span without one is counted.
        agent(3604, 8, "bob", "Safari/17", 200),
        span(
            3605,
            9,
            &[
                ("enduser.id", AnyValue::from("bob")),
                ("http.response.status_code", AnyValue::Int(200)),
            ],
        ),
    ];
    let detections = engine.process(&after, BASE + 3605 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    let d = &detections[0];
    assert_eq!(d.kind, "new_terms");
    assert_eq!(
        d.key,
        vec![("span.enduser.id".to_string(), "alice".to_string())]
    );
    assert_eq!(d.count, 1);
    assert_eq!(d.first_seen_unix_nano, BASE + 3602 * SEC);
    assert_eq!(d.trace_ids, vec![TraceId::from_bytes([6; 16])]);
    assert_eq!(
        d.evidence.as_deref(),
        Some(r#"new span.user_agent.original for span.enduser.id=alice: "curl/8.1""#)
    );
    let stats = &engine.stats().rules[0];
    assert_eq!(stats.keys, 2);
    assert_eq!(stats.missing_key, 1);
    // alice had two agents (the cap) when curl came: one was forgotten.
    assert_eq!(stats.evicted_terms, 1);
    assert_eq!(stats.late_spans + stats.expired_keys, 0);
}

#[test]
fn new_terms_keys_are_capped_and_evicted_keys_relearn() {
    let config = EngineConfig {
        max_keys_per_rule: 32,
        ..EngineConfig::default()
    };
    let mut engine = Engine::with_config(vec![rule(NEW_AGENT)], config);
    let spans: Vec<SpanRecord> = (0..500u64)
        .map(|i| agent(4000 + i, 1, &format!("user{i}"), "Firefox/128", 200))
        .collect();
    // Learning ended long before (first span at 0): new keys learn silently.
    engine.process(&[span(0, 1, &[])], BASE);
    assert!(engine.process(&spans, BASE + 5000 * SEC).is_empty());
    let stats = &engine.stats().rules[0];
    assert!(stats.keys <= 32);
    assert_eq!(stats.keys as u64 + stats.evicted_keys, 500);
}

const BURST: &str = "id: burst\ntitle: Burst\nseverity: high\nkind: baseline\ncondition: '{ kind = server }'\ngroup_by: [span.http.route]\ninterval: 10s\nlearning: 10\nmin_count: 50\ndistinct:\n  field: span.client.address\n  min: 20\n";

fn hit(t_millis: u64, n: u64, route: &str, address: &str) -> SpanRecord {
    let mut record = span(
        0,
        (n % 250) as u8 + 1,
        &[
            ("http.route", AnyValue::from(route)),
            ("client.address", AnyValue::from(address)),
        ],
    );
    record.span_mut().kind = tracewarden_model::SpanKind::Server;
    record.span_mut().start_time_unix_nano = BASE + t_millis * 1_000_000;
    record
}

#[test]
fn baseline_fires_once_on_a_flood_from_many_addresses() {
    let mut engine = Engine::new(vec![rule(BURST)]);
    let mut spans = Vec::new();
    // 200 s of 2 requests a second on /search from 5 addresses, and a
    // quiet /login that goes idle after 30 s.
    for i in 0..400u64 {
        spans.push(hit(i * 500, i, "/search", &format!("10.0.0.{}", i % 5)));
        if i < 60 {
            spans.push(hit(i * 500 + 1, i, "/login", "10.0.0.1"));
        }
    }
    // A flood on /search from 100 addresses: 300 requests in 3 s.
    for i in 0..300u64 {
        spans.push(hit(
            201_000 + i * 10,
            i,
            "/search",
            &format!("198.51.100.{}", i % 100),
        ));
    }
    // After two empty buckets (re-armed), 100 requests from one address
    // (a client retrying): the distinct gate keeps it quiet.
    for i in 0..100u64 {
        spans.push(hit(235_000 + i * 10, i, "/search", "203.0.113.9"));
    }
    let detections = engine.process(&spans, BASE + 236 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    let d = &detections[0];
    assert_eq!(d.kind, "baseline");
    assert_eq!(
        d.key,
        vec![("span.http.route".to_string(), "/search".to_string())]
    );
    // Baseline 20 a bucket (sd floor sqrt(20)): min_count decides.
    assert_eq!(d.count, 50);
    assert!(d.first_seen_unix_nano >= BASE + 200 * SEC);
    assert!(!d.trace_ids.is_empty() && d.trace_ids.len() <= 10);
    let evidence = d.evidence.as_deref().unwrap_or_default();
    assert!(
        evidence.starts_with("50 spans in a 10s bucket (baseline mean ")
            && evidence.ends_with(", 50 distinct span.client.address"),
        "{evidence}"
    );
    let stats = &engine.stats().rules[0];
    assert_eq!(stats.late_spans, 0);
    assert_eq!(stats.keys, 2);
}

#[test]
fn baseline_counts_late_spans_and_expires_idle_keys() {
    let mut engine = Engine::new(vec![rule(BURST)]);
    let spans: Vec<SpanRecord> = (0..50u64)
        .map(|i| hit(i * 1000, i, "/a", "10.0.0.1"))
        .collect();
    engine.process(&spans, BASE + 50 * SEC);
    // Two buckets older than the key's newest span: late.
    engine.process(&[hit(25_000, 1, "/a", "10.0.0.1")], BASE + 50 * SEC);
    assert_eq!(engine.stats().rules[0].late_spans, 1);
    // One bucket late still counts.
    engine.process(&[hit(39_000, 1, "/a", "10.0.0.1")], BASE + 50 * SEC);
    assert_eq!(engine.stats().rules[0].late_spans, 1);
    // Idle for longer than learning + 2 buckets: the key is dropped.
    engine.process(&[hit(500_000, 1, "/b", "10.0.0.1")], BASE + 500 * SEC);
    let stats = &engine.stats().rules[0];
    assert_eq!((stats.expired_keys, stats.keys), (1, 1));
}

#[test]
fn log_records_without_a_trace_id_add_no_trace_id_to_the_evidence() {
    // A record logged outside any request carries no trace id: its view
    // has the zero id, which names no trace and must not be cited.
    let matcher = "id: m\ntitle: t\nseverity: low\nsource: logs\nkind: match\ncondition: '{ span.log.body =~ \"(?i).*access denied.*\" }'\n";
    let mut engine = Engine::new(vec![rule(matcher), rule(LOG_RULE)]);
    let logs = vec![
        log_entry(0, "Access denied", Some("mallory"), None),
        log_entry(1, "Access denied", Some("mallory"), Some(7)),
        log_entry(2, "Access denied", Some("mallory"), None),
    ];
    let detections = engine.process_logs(&logs, BASE + 10 * SEC);
    let zero = TraceId::from_bytes([0; 16]);
    let of = |id: &str| -> Vec<&Detection> {
        detections
            .iter()
            .filter(|d| d.rule_id.as_ref() == id)
            .collect()
    };
    let matches = of("m");
    assert_eq!(matches.len(), 3, "{detections:?}");
    assert!(matches[0].trace_ids.is_empty(), "{:?}", matches[0]);
    assert_eq!(matches[1].trace_ids, vec![TraceId::from_bytes([7; 16])]);
    let threshold = of("denied");
    assert_eq!(threshold.len(), 1, "{detections:?}");
    assert_eq!(threshold[0].count, 3);
    assert_eq!(
        threshold[0].trace_ids,
        vec![TraceId::from_bytes([7; 16])],
        "{:?}",
        threshold[0].trace_ids
    );
    assert!(detections.iter().all(|d| !d.trace_ids.contains(&zero)));
}

#[test]
fn a_data_flow_span_without_a_start_time_is_seen_at_now() {
    // As for every span rule: a span with no start time (0) is taken at
    // `now`, not reported as seen in 1970.
    let flow = "id: d\ntitle: t\nseverity: high\nkind: data_flow\nallowed: [api-gateway]\n";
    let mut engine = Engine::new(vec![rule(flow)]);
    let mut out = span(
        0,
        1,
        &[
            ("server.address", AnyValue::from("analytics.internal")),
            ("user.email", AnyValue::from("jane@example.com")),
        ],
    );
    out.span_mut().kind = tracewarden_model::SpanKind::Client;
    out.span_mut().start_time_unix_nano = 0;
    let detections = engine.process(&[out], BASE + 5 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].first_seen_unix_nano, BASE + 5 * SEC);
    assert_eq!(detections[0].last_seen_unix_nano, BASE + 5 * SEC);
}

#[test]
fn a_whole_trace_condition_on_log_records_is_refused() {
    // Log records are never assembled into traces: such a rule would run
    // on the spans' traces instead, the records never seen.
    let text = "id: m\ntitle: t\nseverity: low\nsource: logs\nkind: match\ncondition: '{ span.log.body =~ \".*denied.*\" } >> { span.enduser.id != nil }'\n";
    let errors = match crate::rule::parse_rule(text, Path::new("t.yaml")) {
        Ok(rule) => panic!("accepted: {}", rule.id),
        Err(errors) => errors,
    };
    assert!(
        errors[0]
            .to_string()
            .contains("log records are not assembled into traces"),
        "{}",
        errors[0]
    );
}

#[test]
fn whole_trace_detections_take_a_span_without_a_start_time_at_the_watermark() {
    // A trace rule's evidence is seen when its spans started; a span with
    // no start time (0) is not reported as seen in 1970 (an alert's first
    // seen would stay there), but at the newest start time seen.
    let topology = "id: topo\ntitle: t\nseverity: high\nkind: topology\ndetect: [wrong_caller]\nallowed_edges: ['gw -> weather']\n";
    let nested = "id: nested\ntitle: t\nseverity: high\nkind: match\ncondition: '{ name = \"GET /\" } >> { span.http.response.status_code = 401 }'\n";
    let mut engine = Engine::new(vec![rule(topology), rule(nested)]);
    engine.process(&[login(100, 9, "10.0.0.1", "a", 200)], BASE + 100 * SEC);
    let service = |name: &str| {
        Arc::new(tracewarden_model::Resource {
            attributes: vec![KeyValue::new("service.name", name)],
            ..Default::default()
        })
    };
    let mut caller = span(50, 1, &[]);
    caller.span_mut().name = "GET /".into();
    caller.resource = service("gw");
    caller.span_mut().kind = tracewarden_model::SpanKind::Client;
    let mut callee = span(0, 1, &[("http.response.status_code", AnyValue::Int(401))]);
    callee.resource = service("billing");
    callee.span_mut().kind = tracewarden_model::SpanKind::Server;
    callee.span_mut().span_id = SpanId::from_bytes([2; 8]);
    callee.span_mut().parent_span_id = Some(caller.span.span_id);
    callee.span_mut().start_time_unix_nano = 0;
    let detections = engine.process_trace(&[caller, callee]);
    assert_eq!(detections.len(), 2, "{detections:?}");
    for d in &detections {
        assert!(
            d.first_seen_unix_nano >= BASE && d.first_seen_unix_nano <= d.last_seen_unix_nano,
            "{d:?}"
        );
        assert_eq!(d.last_seen_unix_nano, BASE + 100 * SEC, "{d:?}");
    }
}

/// The rules of one engine share each span's remembered lookups and
/// verdicts (`tracewarden_model::memo`): the whole pack in one engine must
/// detect exactly what each rule detects in an engine of its own, over
/// every span of the pack's fixtures as one stream.
#[test]
fn rules_sharing_a_span_memo_detect_what_each_detects_alone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let rules: Vec<Rule> = crate::rule::load_dir(&dir)
        .unwrap()
        .into_iter()
        .filter(|r| r.source == Source::Spans)
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut spans = Vec::new();
    for path in &files {
        let file = crate::rule::fixture::read_fixture(path).unwrap();
        let mut total = 0;
        for (i, case) in file.cases.iter().enumerate() {
            spans.extend(crate::rule::fixture::expand_spans(i, &case.spans, &mut total).unwrap());
        }
    }
    let now = spans
        .iter()
        .map(|s| s.span.start_time_unix_nano)
        .max()
        .unwrap();
    let run = |rules: Vec<Rule>| -> Vec<String> {
        let mut engine = Engine::new(rules);
        let mut detections = engine.process_owned(spans.clone(), now);
        detections.extend(engine.drain());
        detections.iter().map(|d| format!("{d:?}")).collect()
    };
    let mut together = run(rules.clone());
    let mut alone: Vec<String> = rules.iter().flat_map(|r| run(vec![r.clone()])).collect();
    together.sort();
    alone.sort();
    assert!(together.len() >= 10, "{} detections", together.len());
    assert_eq!(together, alone);
}

/// The evidence of the first detection of `rule_text` over `spans`.
fn first_evidence(rule_text: &str, spans: &[SpanRecord], now: u64) -> Option<String> {
    let mut engine = Engine::new(vec![rule(rule_text)]);
    let detections = engine.process(spans, now);
    detections.into_iter().next().and_then(|d| d.evidence)
}

#[test]
fn evidence_fields_name_the_span_that_fires() {
    use tracewarden_model::SpanKind;
    // A match rule: its own span.
    let scanner = "id: scanner\ntitle: t\nseverity: medium\nkind: match\ncondition: '{ span.user_agent.original =~ \"(?i).*sqlmap.*\" }'\nevidence: [span.user_agent.original, span.client.address, span.url.path]\n";
    assert_eq!(
        first_evidence(
            scanner,
            &[span(
                0,
                1,
                &[
                    (
                        "user_agent.original",
                        AnyValue::from("sqlmap/1.8 (https://sqlmap.org)"),
                    ),
                    ("client.address", AnyValue::from("203.0.113.9")),
                ],
            )],
            BASE
        )
        .as_deref(),
        Some(
            r#"span.user_agent.original="sqlmap/1.8 (https://sqlmap.org)" span.client.address=203.0.113.9 span.url.path=nil"#
        )
    );

    // A count threshold: the span that reached the count, not the first.
    let counted = format!("{THRESHOLD}evidence: [span.enduser.id]\n");
    assert_eq!(
        first_evidence(
            &counted,
            &[
                login(0, 1, "10.0.0.1", "alice", 401),
                login(1, 2, "10.0.0.1", "bob", 401),
                login(2, 3, "10.0.0.1", "carol", 401),
            ],
            BASE + 10 * SEC
        )
        .as_deref(),
        Some("span.enduser.id=carol")
    );

    // After the payload found, and after the distinct values counted.
    let payload = "id: sqli\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ kind = server }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 1\npayload:\n  detect: [sql_injection]\n  fields: [url.query]\nevidence: [span.url.query]\n";
    assert_eq!(
        first_evidence(
            payload,
            &[request(0, 1, SpanKind::Server, "id=1 UNION SELECT 1,2")],
            BASE + 10 * SEC
        )
        .as_deref(),
        Some(r#"sql_injection in url.query: union select; span.url.query="id=1 UNION SELECT 1,2""#)
    );
    let distinct = "id: stuffing\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 2\ndistinct: span.enduser.id\nevidence: [span.http.route]\n";
    assert_eq!(
        first_evidence(
            distinct,
            &[
                login(0, 1, "10.0.0.1", "alice", 401),
                login(1, 2, "10.0.0.1", "bob", 401),
            ],
            BASE + 10 * SEC
        )
        .as_deref(),
        Some("2 distinct span.enduser.id: bob, alice; span.http.route=/login")
    );

    // A sequence: the span of the last step (the login that succeeded).
    let sequence = "id: then-success\ntitle: t\nseverity: critical\nkind: sequence\ngroup_by: [span.client.address]\nwindow: 5m\nsteps:\n  - condition: '{ span.http.response.status_code = 401 }'\n    count: 2\n  - condition: '{ span.http.response.status_code = 200 }'\nevidence: [span.enduser.id, span.http.response.status_code]\n";
    assert_eq!(
        first_evidence(
            sequence,
            &[
                login(0, 1, "10.0.0.1", "alice", 401),
                login(1, 2, "10.0.0.1", "bob", 401),
                login(2, 3, "10.0.0.1", "bob", 200),
            ],
            BASE + 10 * SEC
        )
        .as_deref(),
        Some("span.enduser.id=bob span.http.response.status_code=200")
    );

    // A new term: the span that carried it, after the term.
    let new_agent =
        format!("{NEW_AGENT}evidence: [span.http.response.status_code, span.client.address]\n");
    let mut engine = Engine::new(vec![rule(&new_agent)]);
    engine.process(
        &[agent(0, 1, "alice", "Firefox/128", 200)],
        BASE + 3600 * SEC,
    );
    let detections = engine.process(
        &[agent(3601, 2, "alice", "curl/8.1", 200)],
        BASE + 3601 * SEC,
    );
    assert_eq!(
        detections[0].evidence.as_deref(),
        Some(
            r#"new span.user_agent.original for span.enduser.id=alice: "curl/8.1"; span.http.response.status_code=200 span.client.address=nil"#
        )
    );

    // A baseline: the span that made the bucket a burst (the 50th of the
    // flood), after the rates.
    let burst = format!("{BURST}evidence: [span.client.address]\n");
    let mut engine = Engine::new(vec![rule(&burst)]);
    let mut spans: Vec<SpanRecord> = (0..400u64)
        .map(|i| hit(i * 500, i, "/search", &format!("10.0.0.{}", i % 5)))
        .collect();
    spans.extend((0..300u64).map(|i| {
        hit(
            201_000 + i * 10,
            i,
            "/search",
            &format!("198.51.100.{}", i % 100),
        )
    }));
    let detections = engine.process(&spans, BASE + 236 * SEC);
    let evidence = detections[0].evidence.as_deref().unwrap_or_default();
    assert!(
        evidence.starts_with("50 spans in a 10s bucket")
            && evidence
                .ends_with("50 distinct span.client.address; span.client.address=198.51.100.49"),
        "{evidence}"
    );

    // A log record: its span-shaped view.
    let logs_rule = format!("{LOG_RULE}evidence: [span.log.body, resource.service.name]\n");
    let mut engine = Engine::new(vec![rule(&logs_rule)]);
    let logs: Vec<LogEntry> = (0..3)
        .map(|i| log_entry(i, "Access denied to /doc/7", Some("mallory"), None))
        .collect();
    let detections = engine.process_logs(&logs, BASE + 10 * SEC);
    assert_eq!(
        detections[0].evidence.as_deref(),
        Some(r#"span.log.body="Access denied to /doc/7" resource.service.name=docs"#)
    );
}

/// `rules` with the exception files `files` (their YAML) applied, as a
/// rules directory holding them would apply them; ids no rule of `rules`
/// has are left alone.
fn excepted_rules(mut rules: Vec<Rule>, files: &[&str]) -> Vec<Rule> {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("e{i}.yaml")), text).unwrap();
    }
    let site = crate::rule::Site::default();
    let (_, exceptions) = crate::rule::load_dir_parts_for(dir.path(), &site).unwrap();
    assert_eq!(exceptions.len(), files.len());
    assert!(crate::rule::apply_exceptions(&mut rules, &exceptions, |_| true).is_empty());
    rules
}

#[test]
fn exceptions_leave_their_spans_out_of_a_rule_and_count_them() {
    let pentest = "id: pentest-box\ntitle: Our pentest box\nexception:\n  rules: ['*']\n  condition: '{ span.client.address = \"10.0.0.9\" }'\n";
    let sequence = "id: then-success\ntitle: t\nseverity: critical\nkind: sequence\ngroup_by: [span.enduser.id]\nwindow: 5m\nsteps:\n  - condition: '{ span.http.response.status_code = 401 }'\n    count: 2\n  - condition: '{ span.http.response.status_code = 200 }'\n";
    let scanner = "id: scanner\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.user_agent.original != nil }'\n";
    let rules = vec![rule(THRESHOLD), rule(sequence), rule(scanner)];
    let mut engine = Engine::new(excepted_rules(rules, &[pentest]));
    let mut spans: Vec<SpanRecord> = (0..4)
        .map(|i| login(i, i as u8 + 1, "10.0.0.9", "alice", 401))
        .collect();
    // The pentest box's success does not complete alice's sequence either.
    spans.push(login(5, 9, "10.0.0.9", "alice", 200));
    spans.push(span(
        6,
        10,
        &[
            ("client.address", AnyValue::from("10.0.0.9")),
            ("user_agent.original", AnyValue::from("sqlmap/1.8")),
        ],
    ));
    assert_eq!(engine.process(&spans, BASE + 10 * SEC), vec![]);
    let stats = engine.stats();
    let excepted: Vec<(&str, u64, u64)> = stats
        .rules
        .iter()
        .map(|r| (r.rule_id.as_str(), r.excepted, r.matched_spans))
        .collect();
    assert_eq!(
        excepted,
        [("burst", 4, 0), ("then-success", 5, 0), ("scanner", 1, 0)]
    );
    // Anyone else is counted as before.
    let others: Vec<SpanRecord> = (0..3)
        .map(|i| login(20 + i, 20 + i as u8, "10.0.0.1", "bob", 401))
        .collect();
    let detections = engine.process(&others, BASE + 30 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].key[0].1, "10.0.0.1");
}

/// The checkpoint's encoding, pinned. Checkpoints are postcard (not
/// self-describing): a field added to `RuleStats` or to a rule's state
/// shifts every byte after it, so a restart would misread the previous
/// process's checkpoint unless `checkpoint::VERSION` is bumped (an older
/// version is refused, and the engine starts empty). When this fails, bump
/// the version, then update the bytes here.
#[test]
fn the_checkpoint_encoding_is_pinned_to_its_version() {
    let sequence = "id: then-success\ntitle: t\nseverity: critical\nkind: sequence\ngroup_by: [span.client.address]\nwindow: 5m\nsteps:\n  - condition: '{ span.http.response.status_code = 401 }'\n  - condition: '{ span.http.response.status_code = 200 }'\n";
    let mut engine = Engine::new(vec![rule(THRESHOLD), rule(sequence)]);
    let spans = [
        login(0, 1, "10.0.0.1", "alice", 401),
        login(1, 2, "10.0.0.1", "alice", 401),
    ];
    assert!(engine.process(&spans, BASE + 10 * SEC).is_empty());
    let bytes = engine.checkpoint().unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    const PINNED: &str = concat!(
        "5457444554434b31058094d3cca2ca9cc31802000002056275727374bec4e7d9d7f3d0c1a0010562",
        "75727374020200000000000000000003010a383a31302e302e302e31028094d3cca2ca9cc3180280",
        "80e8ef9eca9cc318010101010101010101010101010101018094d3cca2ca9cc31802020202020202",
        "020202020202020202000000a08d060280e0a2f4ddcd9cc3180c7468656e2d73756363657373ed88",
        "bce2c6c6fed56a0c7468656e2d73756363657373020200000000000000000004010a383a31302e30",
        "2e302e31028094d3cca2ca9cc31802028080e8ef9eca9cc318010101010101010101010101010101",
        "018094d3cca2ca9cc3180202020202020202020202020202020200a08d060280e08d86dadb9cc318",
        "571ece94"
    );
    assert_eq!(hex, PINNED, "{} bytes", bytes.len());
}

/// Past the exact bound a `distinct` count is estimated: 6,000 addresses
/// on one route reach a count of 5,000, 4,000 do not, and the evidence
/// says the count is an estimate.
#[test]
fn distinct_counts_past_the_exact_bound_are_estimated() {
    let flood = "id: flood\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ span.http.route != nil }'\ngroup_by: [span.http.route]\nwindow: 1m\ncount: 5000\ndistinct: span.client.address\n";
    let address = |i: u32| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
    let requests = |route: &str, n: u32| -> Vec<SpanRecord> {
        (0..n)
            .map(|i| {
                let mut record = span(
                    u64::from(i) / 200,
                    (i % 250) as u8,
                    &[
                        ("http.route", AnyValue::from(route)),
                        ("client.address", AnyValue::from(address(i).as_str())),
                    ],
                );
                record.span_mut().start_time_unix_nano = BASE + u64::from(i) * 5_000_000;
                record
            })
            .collect()
    };
    let mut engine = Engine::new(vec![rule(flood)]);
    let mut spans = requests("/api/search", 6000);
    spans.extend(requests("/api/items", 4000));
    let detections = engine.process(&spans, BASE + 40 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    let d = &detections[0];
    assert_eq!(d.key[0].1, "/api/search");
    // It fires at the span whose estimate first reaches 5,000: within a few
    // percent of the 5,000th address.
    assert!((4500..=5500).contains(&d.count), "{}", d.count);
    let evidence = d.evidence.as_deref().unwrap_or_default();
    assert!(
        evidence.starts_with(&format!("about {} distinct span.client.address: ", d.count)),
        "{evidence}"
    );
    assert!(evidence.ends_with(" more"), "{evidence}");
    assert_eq!(d.trace_ids.len(), 10);

    // The same addresses again a window later: counted anew from zero (the
    // sketch left with the window), so below the count nothing fires.
    let later: Vec<SpanRecord> = requests("/api/search", 3000)
        .into_iter()
        .map(|mut r| {
            r.span_mut().start_time_unix_nano += 300 * SEC;
            r
        })
        .collect();
    assert!(engine.process(&later, BASE + 400 * SEC).is_empty());
}

/// An exception with `expires` leaves out spans that start before it, and
/// counts those that start from then on (event time).
#[test]
fn an_expired_exception_no_longer_leaves_spans_out() {
    // BASE is 2026-01-01T00:00:00Z; the exception ends 10 s later.
    let window = "id: pentest-window\ntitle: t\nexpires: 2026-01-01T00:00:10Z\nexception:\n  rules: [burst]\n  condition: '{ span.client.address = \"10.0.0.9\" }'\n";
    let mut engine = Engine::new(excepted_rules(vec![rule(THRESHOLD)], &[window]));
    // Three failures inside the window of the exception: left out.
    let before: Vec<SpanRecord> = (0..3)
        .map(|i| login(i, i as u8 + 1, "10.0.0.9", "alice", 401))
        .collect();
    assert!(engine.process(&before, BASE + 20 * SEC).is_empty());
    assert_eq!(engine.stats().rules[0].excepted, 3);
    // Three more from 10 s on: counted, and they fire.
    let after: Vec<SpanRecord> = (10..13)
        .map(|i| login(i, i as u8 + 1, "10.0.0.9", "alice", 401))
        .collect();
    let detections = engine.process(&after, BASE + 20 * SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].first_seen_unix_nano, BASE + 10 * SEC);
    assert_eq!(engine.stats().rules[0].excepted, 3);
}

/// A whole-trace match names its `evidence:` fields from the spans its
/// query returned (each from the first that has it), and an exception
/// leaves out a trace one of whose spans satisfies it, until it expires.
#[test]
fn whole_trace_matches_name_evidence_fields_and_honour_exceptions() {
    let nested = "id: admin-delete\ntitle: t\nseverity: high\nkind: match\ncondition: '{ span.http.route = \"/admin\" } >> { span.db.operation.name = \"DELETE\" }'\nevidence: [span.db.query.text, span.db.collection.name, span.enduser.id]\n";
    // Pentest traffic until 20 s after BASE.
    let expires = tracewarden_model::time::format_rfc3339(BASE + 20 * SEC);
    let pentest = format!(
        "id: pentest-box\ntitle: t\nexpires: {expires}\nexception:\n  rules: [admin-delete]\n  condition: '{{ span.client.address = \"10.0.0.9\" }}'\n"
    );
    let mut engine = Engine::new(excepted_rules(vec![rule(nested)], &[&pentest]));
    // An admin request from `address` at `t` deleting twice: the first
    // statement names no collection.
    let trace = |t: u64, n: u8, address: &str| -> Vec<SpanRecord> {
        let mut admin = span(
            t,
            n,
            &[
                ("http.route", AnyValue::from("/admin")),
                ("client.address", AnyValue::from(address)),
                ("enduser.id", AnyValue::from("mallory")),
            ],
        );
        admin.span_mut().span_id = SpanId::from_bytes([1; 8]);
        let delete = |id: u8, attrs: &[(&str, AnyValue)]| {
            let mut db = span(t, n, attrs);
            db.span_mut().span_id = SpanId::from_bytes([id; 8]);
            db.span_mut().parent_span_id = Some(SpanId::from_bytes([1; 8]));
            db
        };
        vec![
            admin,
            delete(
                2,
                &[
                    ("db.operation.name", AnyValue::from("DELETE")),
                    ("db.query.text", AnyValue::from("DELETE FROM audit_log")),
                ],
            ),
            delete(
                3,
                &[
                    ("db.operation.name", AnyValue::from("DELETE")),
                    ("db.collection.name", AnyValue::from("users")),
                ],
            ),
        ]
    };
    let detections = engine.process_trace(&trace(1, 1, "198.51.100.4"));
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].count, 2);
    assert_eq!(
        detections[0].evidence.as_deref(),
        Some(
            "span.db.query.text=\"DELETE FROM audit_log\" span.db.collection.name=users span.enduser.id=nil"
        ),
        "the user is on the admin span, which the query does not return"
    );
    // The pentest box's trace is left out, and counted.
    assert!(engine.process_trace(&trace(2, 2, "10.0.0.9")).is_empty());
    let stats = engine.stats();
    assert_eq!(
        (stats.rules[0].excepted, stats.rules[0].matched_spans),
        (1, 2)
    );
    // After the exception expired, the same traffic counts again.
    assert_eq!(engine.process_trace(&trace(30, 3, "10.0.0.9")).len(), 1);
    assert_eq!(engine.stats().rules[0].excepted, 1);
}

/// Topology findings are left out when an exception holds for their server
/// span (a health probe calling an internal service directly), data flows
/// when it holds for the span the data leaves by or the span carrying it;
/// both counted, and the excepted probe teaches a learning rule nothing.
#[test]
fn topology_and_data_flow_findings_honour_exceptions() {
    use tracewarden_model::SpanKind;
    let probes = "id: probes\ntitle: t\nexception:\n  rules: [graph]\n  condition: '{ span.user_agent.original =~ \"kube-probe/.*\" }'\n";
    let synthetic = "id: synthetic\ntitle: t\nexception:\n  rules: [flows]\n  condition: '{ span.enduser.id = \"synthetic-test\" }'\n";
    let exceptions = [probes, synthetic];
    let graph = "id: graph\ntitle: t\nseverity: high\nkind: topology\ndetect: [no_parent]\nentry_services: [gateway, billing]\n";
    let flows = "id: flows\ntitle: t\nseverity: high\nkind: data_flow\nthird_parties: ['(.*\\.)?partner\\.example']\n";
    let rules = excepted_rules(vec![rule(graph), rule(flows)], &exceptions);
    let mut engine = Engine::new(rules);
    let service = |name: &str| {
        Arc::new(tracewarden_model::Resource {
            attributes: vec![KeyValue::new("service.name", name)],
            ..Default::default()
        })
    };
    let at =
        |n: u8, id: u8, parent: Option<u8>, name: &str, kind: SpanKind, attrs: &[(&str, &str)]| {
            let attrs: Vec<(&str, AnyValue)> = attrs
                .iter()
                .map(|(k, v)| (*k, AnyValue::from(*v)))
                .collect();
            let mut record = span(1, n, &attrs);
            record.resource = service(name);
            record.span_mut().kind = kind;
            record.span_mut().span_id = SpanId::from_bytes([id; 8]);
            record.span_mut().parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
            record
        };
    // Inventory, an internal service, reached with no parent span: by the
    // kubelet's probe (excepted), then by curl (a finding).
    let probe = [at(
        1,
        1,
        None,
        "inventory",
        SpanKind::Server,
        &[("user_agent.original", "kube-probe/1.31")],
    )];
    assert!(engine.process_trace(&probe).is_empty());
    let curl = [at(
        2,
        1,
        None,
        "inventory",
        SpanKind::Server,
        &[("user_agent.original", "curl/8.5.0")],
    )];
    assert_eq!(engine.process_trace(&curl).len(), 1);
    // Billing sends a customer's e-mail to the partner, on the call itself
    // (checked span by span) and from the handler above it (checked on the
    // trace); the synthetic test user's requests are left out, real ones
    // are not.
    let flow = |n: u8, user: &str| {
        vec![
            at(
                n,
                1,
                None,
                "billing",
                SpanKind::Server,
                &[("user.email", "jane@example.com"), ("enduser.id", user)],
            ),
            at(
                n,
                2,
                Some(1),
                "billing",
                SpanKind::Client,
                &[
                    ("server.address", "api.partner.example"),
                    ("enduser.id", user),
                ],
            ),
        ]
    };
    let direct = |n: u8, user: &str| {
        vec![at(
            n,
            1,
            None,
            "billing",
            SpanKind::Client,
            &[
                ("server.address", "api.partner.example"),
                ("user.email", "jane@example.com"),
                ("enduser.id", user),
            ],
        )]
    };
    assert!(
        engine
            .process(&direct(3, "synthetic-test"), BASE + 10 * SEC)
            .is_empty()
    );
    let d = engine.process_trace(&flow(4, "synthetic-test"));
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        engine.process(&direct(5, "u-1001"), BASE + 10 * SEC).len(),
        1
    );
    assert_eq!(engine.process_trace(&flow(6, "u-1001")).len(), 1);
    let stats = engine.stats();
    let counts: Vec<(&str, u64, u64)> = stats
        .rules
        .iter()
        .map(|r| (r.rule_id.as_str(), r.excepted, r.detections))
        .collect();
    assert_eq!(counts, [("graph", 1, 1), ("flows", 2, 2)]);

    // A learning rule does not learn the probed service as an entry.
    let learner =
        "id: graph\ntitle: t\nseverity: high\nkind: topology\ndetect: [no_parent]\nlearn: 1h\n";
    let mut engine = Engine::new(excepted_rules(vec![rule(learner)], &exceptions));
    assert!(engine.process_trace(&probe).is_empty(), "learning");
    let mut later = curl.clone();
    later[0].span_mut().start_time_unix_nano = BASE + 7200 * SEC;
    assert_eq!(
        engine.process_trace(&later).len(),
        1,
        "inventory was not learnt"
    );
}

/// A rule whose condition pins the span kind passes spans of other kinds by
/// without evaluating it (`Compiled::span_kinds`), and still counts them as
/// evaluated; a sequence allows the kinds of all its steps.
#[test]
fn rules_pinned_to_a_kind_pass_other_kinds_by_and_count_them() {
    use tracewarden_model::SpanKind;
    let pinned = "id: pinned\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ kind = server && span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 2\n";
    let steps = "id: steps\ntitle: t\nseverity: high\nkind: sequence\ngroup_by: [span.client.address]\nwindow: 1m\nsteps:\n  - condition: '{ kind = client && span.http.response.status_code = 401 }'\n  - condition: '{ kind = consumer && span.http.response.status_code = 200 }'\n";
    let mut engine = Engine::new(vec![rule(pinned), rule(steps)]);
    let of_kind = |t: u64, trace: u8, kind: SpanKind, status: i64| {
        let mut record = login(t, trace, "10.0.0.9", "a", status);
        record.span_mut().kind = kind;
        record
    };
    let spans = vec![
        of_kind(0, 1, SpanKind::Client, 401),
        of_kind(1, 2, SpanKind::Client, 401),
        of_kind(2, 3, SpanKind::Internal, 401),
        of_kind(3, 4, SpanKind::Consumer, 200),
        of_kind(4, 5, SpanKind::Server, 401),
        of_kind(5, 6, SpanKind::Server, 401),
    ];
    let detections = engine.process(&spans, BASE + 10 * SEC);
    let fired: Vec<&str> = detections.iter().map(|d| &*d.rule_id).collect();
    assert_eq!(fired, ["steps", "pinned"]);
    let pinned_count = detections
        .iter()
        .find(|d| &*d.rule_id == "pinned")
        .map(|d| d.count);
    assert_eq!(pinned_count, Some(2), "only the two server spans counted");
    let stats = engine.stats();
    for rule in &stats.rules {
        assert_eq!(rule.evaluated, 6, "{}", rule.rule_id);
    }
    assert_eq!(stats.rules[0].matched_spans, 2);
}
