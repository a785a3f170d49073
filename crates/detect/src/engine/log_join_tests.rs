//! Log records joined to their span (`join:`; logs.rs, crate::log_join).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracewarden_model::{
    AnyValue, KeyValue, LogEntry, LogRecord, Span, SpanId, SpanRecord, TraceId,
};

use super::{Engine, EngineConfig};
use crate::log_join::LogJoinConfig;
use crate::rule::parse_rule;

const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

/// Three refusals per caller address in 5 min, the address taken from the
/// record or, failing that, from its span.
const RULE: &str = "id: denied-by-caller\ntitle: Refusals per caller\nseverity: medium\nsource: logs\nkind: threshold\ncondition: '{ span.client.address != nil && span.log.body =~ \"(?i).*denied.*\" }'\njoin: [span.client.address]\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 3\n";

fn engine(max_pending: usize, max_spans: usize) -> Engine {
    let rule = parse_rule(RULE, Path::new("t.yaml")).expect("rule");
    Engine::with_config(
        vec![rule],
        EngineConfig {
            log_join: LogJoinConfig {
                wait: Duration::from_secs(5),
                max_pending,
                max_spans,
            },
            ..EngineConfig::default()
        },
    )
}

/// A refusal logged in span `n` of trace `n`, optionally carrying the
/// address itself.
fn refusal(n: u8, address: Option<&str>) -> LogEntry {
    let mut attributes = Vec::new();
    if let Some(address) = address {
        attributes.push(KeyValue::new("client.address", address));
    }
    LogEntry {
        resource: Arc::default(),
        scope: Arc::default(),
        record: LogRecord {
            time_unix_nano: BASE + u64::from(n) * SEC,
            observed_time_unix_nano: 0,
            severity_number: 13,
            severity_text: "WARN".into(),
            body: AnyValue::from("Access denied"),
            attributes,
            original_attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: Some(TraceId::from_bytes([n; 16])),
            span_id: Some(SpanId::from_bytes([n; 8])),
            event_name: Default::default(),
        },
    }
}

/// The server span `n` the refusal was logged in, which knows the caller.
fn server_span(n: u8, address: &str) -> SpanRecord {
    let mut span = Span::new(
        TraceId::from_bytes([n; 16]),
        SpanId::from_bytes([n; 8]),
        "GET /invoices/{id}",
    );
    span.start_time_unix_nano = BASE + u64::from(n) * SEC;
    span.end_time_unix_nano = span.start_time_unix_nano + SEC / 10;
    span.attributes
        .push(KeyValue::new("client.address", address));
    SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    }
}

fn actor(d: &super::Detection) -> Vec<(String, String)> {
    d.key.clone()
}

fn caller(address: &str) -> Vec<(String, String)> {
    vec![("span.client.address".to_string(), address.to_string())]
}

#[test]
fn a_record_before_its_span_waits_and_is_keyed_on_the_span_caller() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    let logs: Vec<LogEntry> = (1..=3).map(|n| refusal(n, None)).collect();
    assert!(engine.process_logs(&logs, now).is_empty(), "they wait");
    let stats = engine.stats();
    assert_eq!(stats.log_join.held_records, 3);
    assert_eq!(stats.log_join.pending_records, 3);
    assert_eq!(engine.next_flush_due(), Some(now + 5 * SEC));
    let spans: Vec<SpanRecord> = (1..=3).map(|n| server_span(n, "203.0.113.5")).collect();
    let detections = engine.process(&spans, now + SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(actor(&detections[0]), caller("203.0.113.5"));
    assert_eq!(detections[0].count, 3);
    // The evidence cites the traces the records belong to.
    assert_eq!(detections[0].trace_ids[0], TraceId::from_bytes([3; 16]));
    let stats = engine.stats();
    assert_eq!(stats.log_join.joined_records, 3);
    assert_eq!(stats.log_join.pending_records, 0);
    assert_eq!(stats.rules[0].evaluated, 3, "each record evaluated once");
    assert_eq!(engine.next_flush_due(), None);
}

#[test]
fn a_record_after_its_span_joins_at_once() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    let spans: Vec<SpanRecord> = (1..=3).map(|n| server_span(n, "198.51.100.7")).collect();
    // Until a record has needed a join, spans are not indexed (a
    // deployment without such logs pays nothing per span).
    assert!(engine.process(&spans, now).is_empty());
    assert_eq!(engine.stats().log_join.index_spans, 0);
    assert!(engine.process_logs(&[refusal(9, None)], now).is_empty());
    assert!(engine.process(&spans, now).is_empty());
    assert_eq!(engine.stats().log_join.index_spans, 3);
    let logs: Vec<LogEntry> = (1..=3).map(|n| refusal(n, None)).collect();
    let detections = engine.process_logs(&logs, now + SEC);
    assert_eq!(detections.len(), 1);
    assert_eq!(actor(&detections[0]), caller("198.51.100.7"));
    let stats = engine.stats().log_join;
    assert_eq!((stats.held_records, stats.joined_records), (1, 3));
}

#[test]
fn a_record_whose_span_never_comes_is_evaluated_alone_when_the_wait_ends() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    let logs: Vec<LogEntry> = (1..=3).map(|n| refusal(n, None)).collect();
    assert!(engine.process_logs(&logs, now).is_empty());
    assert!(engine.flush(now + 4 * SEC).is_empty(), "still waiting");
    assert_eq!(engine.stats().log_join.pending_records, 3);
    // Alone, the records have no address: the rule's condition fails.
    assert!(engine.flush(now + 5 * SEC).is_empty());
    let stats = engine.stats();
    assert_eq!(stats.log_join.expired_records, 3);
    assert_eq!(stats.log_join.pending_records, 0);
    assert_eq!(stats.rules[0].evaluated, 3);
    assert_eq!(stats.rules[0].matched_spans, 0);
    // A span arriving after the wait joins nothing.
    let spans: Vec<SpanRecord> = (1..=3).map(|n| server_span(n, "203.0.113.5")).collect();
    assert!(engine.process(&spans, now + 6 * SEC).is_empty());
    assert_eq!(engine.stats().rules[0].evaluated, 3);
}

#[test]
fn a_record_carrying_the_field_needs_no_wait_and_its_own_value_wins() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    // The spans say otherwise: the record's own address wins.
    engine.process_logs(&[refusal(9, None)], now);
    let spans: Vec<SpanRecord> = (1..=3).map(|n| server_span(n, "192.0.2.1")).collect();
    engine.process(&spans, now);
    assert_eq!(engine.stats().log_join.index_spans, 3);
    let logs: Vec<LogEntry> = (1..=3).map(|n| refusal(n, Some("203.0.113.9"))).collect();
    let detections = engine.process_logs(&logs, now);
    assert_eq!(detections.len(), 1);
    assert_eq!(actor(&detections[0]), caller("203.0.113.9"));
    let stats = engine.stats().log_join;
    assert_eq!((stats.held_records, stats.joined_records), (1, 0));
    // Without a span id there is nothing to wait for either.
    let mut alone = engine_without_ids();
    assert!(alone.0.process_logs(&alone.1, now).is_empty());
    assert_eq!(alone.0.stats().log_join.held_records, 0);
    assert_eq!(alone.0.stats().rules[0].evaluated, 3);
}

fn engine_without_ids() -> (Engine, Vec<LogEntry>) {
    let logs = (1..=3)
        .map(|n| {
            let mut entry = refusal(n, None);
            entry.record.trace_id = None;
            entry.record.span_id = None;
            entry
        })
        .collect();
    (engine(100, 100), logs)
}

#[test]
fn the_caps_evict_the_oldest_and_count_it() {
    // One record may wait: the second pushes the first out, evaluated alone.
    let mut engine = engine(1, 2);
    let now = BASE + 10 * SEC;
    engine.process_logs(&[refusal(1, None), refusal(2, None)], now);
    let stats = engine.stats();
    assert_eq!(stats.log_join.evicted_records, 1);
    assert_eq!(stats.log_join.pending_records, 1);
    assert_eq!(stats.rules[0].evaluated, 1, "the evicted record ran alone");
    // Two spans may be indexed: the third pushes the first out.
    let spans: Vec<SpanRecord> = (3..=5).map(|n| server_span(n, "203.0.113.5")).collect();
    engine.process(&spans, now);
    let stats = engine.stats().log_join;
    assert_eq!(
        (stats.indexed_spans, stats.evicted_spans, stats.index_spans),
        (3, 1, 2)
    );
    // Span 3 was forgotten: its record waits; span 4's joins at once.
    engine.process_logs(&[refusal(3, None), refusal(4, None)], now);
    let stats = engine.stats().log_join;
    assert_eq!(stats.joined_records, 1);
    // A drain evaluates what still waits, alone.
    engine.drain();
    let stats = engine.stats().log_join;
    assert_eq!(stats.pending_records, 0);
    assert_eq!(stats.drained_records + stats.evicted_records, 3);
}

#[test]
fn rules_without_join_never_wait() {
    let plain = RULE.replace("join: [span.client.address]\n", "");
    let rule = parse_rule(&plain, Path::new("t.yaml")).expect("rule");
    let mut engine = Engine::new(vec![rule]);
    let logs: Vec<LogEntry> = (1..=3).map(|n| refusal(n, None)).collect();
    engine.process_logs(&logs, BASE + 10 * SEC);
    let stats = engine.stats();
    assert_eq!(stats.log_join, Default::default());
    assert_eq!(stats.rules[0].evaluated, 3);
    assert_eq!(stats.rules[0].missing_key, 0);
    assert_eq!(engine.next_flush_due(), None);
}

#[test]
fn waiting_records_and_indexed_spans_survive_a_checkpoint() {
    let mut before = engine(100, 100);
    let now = BASE + 10 * SEC;
    // Records 1 and 2 wait; span 3 came first and is indexed.
    before.process_logs(&[refusal(1, None), refusal(2, None)], now);
    before.process(&[server_span(3, "203.0.113.5")], now);
    let bytes = before.checkpoint().expect("checkpoint");

    let mut after = engine(100, 100);
    let summary = after.restore(&bytes).expect("restore");
    assert_eq!(summary.held_logs, 2);
    let stats = after.stats().log_join;
    assert_eq!((stats.pending_records, stats.index_spans), (2, 1));
    assert_eq!(
        after.next_flush_due(),
        Some(now + 5 * SEC),
        "the same deadline"
    );
    // Record 3 joins the restored index; spans 1 and 2 release the others.
    assert!(
        after
            .process_logs(&[refusal(3, None)], now + SEC)
            .is_empty()
    );
    let spans: Vec<SpanRecord> = (1..=2).map(|n| server_span(n, "203.0.113.5")).collect();
    let detections = after.process(&spans, now + SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(actor(&detections[0]), caller("203.0.113.5"));
    assert_eq!(detections[0].count, 3);
}
