//! Log records joined to their span (`join:`; logs.rs, crate::log_join).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracewarden_model::{
    AnyValue, KeyValue, LogEntry, LogRecord, Span, SpanId, SpanKind, SpanRecord, TraceId,
};

use super::{Engine, EngineConfig};
use crate::log_join::LogJoinConfig;
use crate::rule::parse_rule;

const SEC: u64 = 1_000_000_000;
const BASE: u64 = 1_767_225_600 * SEC;

/// Three refusals per caller address in 5 min, the address taken from the
/// record or, failing that, from its span.
const RULE: &str = "id: denied-by-caller\ntitle: Refusals per caller\nseverity: medium\nsource: logs\nkind: threshold\ncondition: '{ span.client.address != nil && span.log.body =~ \"(?i).*denied.*\" }'\njoin: [span.client.address]\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 3\n";

/// An engine that indexes spans only once a record has needed a join (no
/// window after the start), as after its window has passed.
fn engine(max_pending: usize, max_spans: usize) -> Engine {
    engine_eager(max_pending, max_spans, Duration::ZERO)
}

fn engine_eager(max_pending: usize, max_spans: usize, eager: Duration) -> Engine {
    let rule = parse_rule(RULE, Path::new("t.yaml")).expect("rule");
    Engine::with_config(
        vec![rule],
        EngineConfig {
            log_join: LogJoinConfig {
                wait: Duration::from_secs(5),
                max_pending,
                max_spans,
                eager,
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

/// A span of trace `n` with id `id`, child of `parent`, carrying nothing
/// the rule joins (a database call, a manual span of the handler).
fn child_span(n: u8, id: u8, parent: u8, kind: SpanKind) -> SpanRecord {
    let mut span = Span::new(
        TraceId::from_bytes([n; 16]),
        SpanId::from_bytes([id; 8]),
        "SELECT invoices",
    );
    span.kind = kind;
    span.parent_span_id = Some(SpanId::from_bytes([parent; 8]));
    span.start_time_unix_nano = BASE + u64::from(n) * SEC;
    span.end_time_unix_nano = span.start_time_unix_nano + SEC / 100;
    SpanRecord {
        resource: Arc::default(),
        scope: Arc::default(),
        span: span.into(),
    }
}

/// The refusal of trace `n`, logged in span `id`.
fn refusal_in(n: u8, id: u8) -> LogEntry {
    let mut entry = refusal(n, None);
    entry.record.span_id = Some(SpanId::from_bytes([id; 8]));
    entry
}

/// Trace `n`: the handler's server span `n` (the caller's address) and
/// two levels below it, internal span `n + 100` and client span `n + 150`.
fn handler_and_children(n: u8, address: &str) -> Vec<SpanRecord> {
    // Children end first, so come first.
    vec![
        child_span(n, n + 150, n + 100, SpanKind::Client),
        child_span(n, n + 100, n, SpanKind::Internal),
        server_span(n, address),
    ]
}

#[test]
fn a_record_logged_in_a_child_span_climbs_to_the_handler() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    // Two records in the client span two levels down, one in the internal
    // span: all wait.
    let logs = [refusal_in(1, 151), refusal_in(2, 102), refusal_in(3, 153)];
    assert!(engine.process_logs(&logs, now).is_empty());
    // The children arrive first: the records climb and wait for the
    // handler's span, which comes in a later batch.
    let mut children = Vec::new();
    let mut handlers = Vec::new();
    for n in 1..=3 {
        let mut trace = handler_and_children(n, "203.0.113.5");
        handlers.push(trace.pop().expect("handler"));
        children.extend(trace);
    }
    assert!(engine.process(&children, now + SEC).is_empty());
    let stats = engine.stats().log_join;
    assert_eq!(stats.pending_records, 3, "waiting for the handlers");
    assert_eq!(stats.joined_records, 0);
    let detections = engine.process(&handlers, now + SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(actor(&detections[0]), caller("203.0.113.5"));
    assert_eq!(detections[0].count, 3);
    let stats = engine.stats();
    assert_eq!(stats.log_join.joined_records, 3);
    assert_eq!(stats.log_join.ancestor_joined_records, 3);
    assert_eq!(stats.log_join.pending_records, 0);
    assert_eq!(stats.rules[0].evaluated, 3, "each record evaluated once");

    // A whole trace in one batch, children first, joins within the batch.
    let mut engine = self::engine(100, 100);
    assert!(engine.process_logs(&[refusal_in(4, 154)], now).is_empty());
    engine.process(&handler_and_children(4, "198.51.100.4"), now);
    let stats = engine.stats().log_join;
    assert_eq!(
        (stats.pending_records, stats.ancestor_joined_records),
        (0, 1)
    );
}

#[test]
fn a_record_after_its_spans_climbs_through_the_index() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    // A record has needed a join, but none has climbed yet: only the
    // handlers, which carry the address, are indexed.
    engine.process_logs(&[refusal(9, None)], now);
    engine.process(&handler_and_children(1, "198.51.100.7"), now);
    assert_eq!(engine.stats().log_join.index_spans, 1);
    // Once a record has climbed (its child span came before its handler),
    // children are indexed as links to their parent.
    engine.process_logs(&[refusal_in(8, 158)], now);
    engine.process(&handler_and_children(8, "192.0.2.8"), now);
    for n in 2..=4 {
        engine.process(&handler_and_children(n, "198.51.100.7"), now);
    }
    let stats = engine.stats().log_join;
    assert_eq!(stats.index_spans, 1 + 3 + 9);
    assert_eq!(stats.ancestor_joined_records, 1);
    let logs = [refusal_in(2, 152), refusal_in(3, 103), refusal_in(4, 154)];
    let detections = engine.process_logs(&logs, now + SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(actor(&detections[0]), caller("198.51.100.7"));
    let stats = engine.stats().log_join;
    assert_eq!(
        (stats.joined_records, stats.ancestor_joined_records),
        (4, 4)
    );
    assert_eq!(
        stats.held_records, 4,
        "record 9, and record 8 at each of its three spans"
    );
}

/// The climb stays in the process the record was logged in: a downstream
/// service's entry span, or a span continuing a remote context, does not
/// lend the record its caller's attributes.
#[test]
fn the_climb_stops_where_the_service_was_entered() {
    let now = BASE + 10 * SEC;
    for (kind, flags) in [
        (SpanKind::Server, 0),
        (SpanKind::Consumer, 0),
        (SpanKind::Internal, 0x100 | 0x200),
    ] {
        let mut engine = engine(100, 100);
        let logs: Vec<LogEntry> = (1..=3).map(|n| refusal_in(n, n + 200)).collect();
        engine.process_logs(&logs, now);
        let mut spans = Vec::new();
        for n in 1..=3 {
            // The caller's server span n knows the address; its client span
            // n + 100 calls the downstream span n + 200 the record is in.
            let mut downstream = child_span(n, n + 200, n + 100, kind);
            downstream.span_mut().flags = flags;
            spans.push(downstream);
            spans.push(child_span(n, n + 100, n, SpanKind::Client));
            spans.push(server_span(n, "203.0.113.5"));
        }
        let detections = engine.process(&spans, now);
        assert!(detections.is_empty(), "{kind:?} {flags:#x}: {detections:?}");
        let stats = engine.stats();
        assert_eq!(stats.log_join.ancestor_joined_records, 0);
        assert_eq!(stats.log_join.pending_records, 0, "evaluated without it");
        assert_eq!(stats.rules[0].evaluated, 3);
    }
}

#[test]
fn a_climbing_record_survives_a_checkpoint() {
    let mut before = engine(100, 100);
    let now = BASE + 10 * SEC;
    before.process_logs(&[refusal_in(1, 151), refusal_in(2, 152)], now);
    let trace = |n| handler_and_children(n, "203.0.113.5");
    // Record 1 climbed to its internal span and waits for the handler;
    // trace 3's children are indexed as links.
    before.process(&trace(1)[..2], now);
    before.process(&trace(3)[..2], now);
    let bytes = before.checkpoint().expect("checkpoint");

    let mut after = engine(100, 100);
    assert_eq!(after.restore(&bytes).expect("restore").held_logs, 2);
    // Handler 1 releases record 1, trace 2 whole releases record 2, and
    // handler 3 is indexed; record 3 then climbs through trace 3's
    // restored links to it.
    let mut spans = vec![trace(1)[2].clone()];
    spans.extend(trace(2));
    spans.push(trace(3)[2].clone());
    let detections = after.process(&spans, now + SEC);
    assert!(detections.is_empty(), "two so far: {detections:?}");
    let detections = after.process_logs(&[refusal_in(3, 153)], now + SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(detections[0].count, 3);
    assert_eq!(after.stats().log_join.ancestor_joined_records, 3);
}

/// Right after a start, no record has needed a join yet, so nothing says
/// whether spans are worth indexing. For `eager` after the first batch
/// they are kept (shared, not copied), and the first record that needs a
/// join indexes those of the last `wait` (handlers, and children as
/// links): records exported after their spans in those first seconds join
/// at once, instead of waiting for spans that already passed and being
/// evaluated alone. Spans are kept until then, however late it comes.
#[test]
fn after_a_start_records_join_spans_that_came_before_any_record_needed_one() {
    let now = BASE + 10 * SEC;
    let mut engine = engine_eager(100, 100, Duration::from_secs(60));
    for n in 1..=3 {
        engine.process(&handler_and_children(n, "198.51.100.7"), now);
    }
    assert_eq!(engine.stats().log_join.index_spans, 0, "kept, not indexed");
    let logs = [refusal_in(1, 151), refusal_in(2, 102), refusal_in(3, 3)];
    let detections = engine.process_logs(&logs, now + SEC);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(actor(&detections[0]), caller("198.51.100.7"));
    let stats = engine.stats().log_join;
    assert_eq!((stats.held_records, stats.joined_records), (0, 3));
    assert_eq!(stats.ancestor_joined_records, 2);
    assert_eq!(stats.index_spans, 9, "handlers and links");

    // When the first record needs a join, only the spans of the last
    // `wait` are indexed: trace 1 came 31 s before, trace 2 1 s before.
    let mut late = engine_eager(100, 100, Duration::from_secs(60));
    late.process(&handler_and_children(1, "198.51.100.7"), now);
    late.process(&handler_and_children(2, "198.51.100.7"), now + 30 * SEC);
    late.process_logs(&[refusal_in(1, 1)], now + 31 * SEC);
    let stats = late.stats().log_join;
    assert_eq!((stats.held_records, stats.joined_records), (1, 0));
    assert_eq!(stats.index_spans, 3, "trace 2");

    // After the window too, spans are kept until a record first needs a
    // join, whenever it comes: it joins the spans of the last `wait` at
    // once. Only links depend on the window: after it, while no record has
    // climbed, a span lacking the attribute is not indexed as one.
    let mut quiet = engine_eager(100, 100, Duration::from_secs(60));
    quiet.process(&handler_and_children(1, "198.51.100.7"), now);
    quiet.process(&handler_and_children(2, "198.51.100.7"), now + 600 * SEC);
    let detections = quiet.process_logs(&[refusal_in(2, 102)], now + 601 * SEC);
    assert_eq!(detections.len(), 0, "one record of three");
    let stats = quiet.stats().log_join;
    assert_eq!((stats.held_records, stats.joined_records), (0, 1));
    assert_eq!(stats.ancestor_joined_records, 1, "from its internal span");
    assert_eq!(stats.index_spans, 3, "trace 2, as links too");
    quiet.process(&handler_and_children(3, "198.51.100.7"), now + 602 * SEC);
    assert_eq!(
        quiet.stats().log_join.index_spans,
        6,
        "a record climbed: links from now on"
    );
    let mut plain = engine_eager(100, 100, Duration::from_secs(60));
    plain.process(&handler_and_children(1, "198.51.100.7"), now);
    plain.process(&handler_and_children(2, "198.51.100.7"), now + 600 * SEC);
    plain.process_logs(&[refusal_in(2, 2)], now + 601 * SEC);
    assert_eq!(plain.stats().log_join.joined_records, 1);
    plain.process(&handler_and_children(3, "198.51.100.7"), now + 602 * SEC);
    assert_eq!(
        plain.stats().log_join.index_spans,
        4,
        "no record climbed: the handler alone"
    );
}

/// A checkpoint taken when nothing waits and the index is empty still
/// says how far the join had come: after the restart, spans are indexed
/// (as links too) from the first one, so records arriving after their
/// spans join at once instead of waiting for spans that already passed.
#[test]
fn a_checkpoint_holding_nothing_keeps_the_join_indexing() {
    let mut before = engine(100, 100);
    let now = BASE + 10 * SEC;
    // Record 8 waits, climbs from its client span to the handler and joins.
    before.process_logs(&[refusal_in(8, 158)], now);
    before.process(&handler_and_children(8, "192.0.2.8"), now);
    assert_eq!(before.stats().log_join.ancestor_joined_records, 1);
    // The index ages out: nothing is held or indexed any more.
    before.flush(now + 6 * SEC);
    before.process(&[], now + 6 * SEC);
    let stats = before.stats().log_join;
    assert_eq!((stats.pending_records, stats.index_spans), (0, 0));
    let bytes = before.checkpoint().expect("checkpoint");

    let mut after = engine(100, 100);
    assert_eq!(after.restore(&bytes).expect("restore").held_logs, 0);
    let later = now + 10 * SEC;
    for n in 2..=4 {
        after.process(&handler_and_children(n, "198.51.100.7"), later);
    }
    assert_eq!(after.stats().log_join.index_spans, 9, "handlers and links");
    let logs = [refusal_in(2, 152), refusal_in(3, 103), refusal_in(4, 154)];
    let detections = after.process_logs(&logs, later);
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_eq!(actor(&detections[0]), caller("198.51.100.7"));
    let stats = after.stats().log_join;
    assert_eq!((stats.pending_records, stats.held_records), (0, 0));
    assert_eq!(stats.ancestor_joined_records, 3);
}

/// A checkpoint of a build that did not save how far the join had come
/// (the pinned bytes of `checkpoint::VERSION` 4 before it did, with
/// the version and CRC of 5, whose changes it holds nothing of) restores
/// as before: what it holds says that records needed a join and climbed.
#[test]
fn a_checkpoint_without_the_join_progress_still_restores() {
    let bytes: Vec<u8> = (0..EARLIER.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&EARLIER[i..i + 2], 16).expect("hex"))
        .collect();
    let mut after = engine(100, 100);
    assert_eq!(after.restore(&bytes).expect("restore").held_logs, 1);
    let now = BASE + 11 * SEC;
    // The handler releases the held record; trace 2's children are indexed
    // as links, so its record climbs at once.
    let mut spans = vec![handler_and_children(1, "203.0.113.5")[2].clone()];
    spans.extend(handler_and_children(2, "203.0.113.5"));
    after.process(&spans, now);
    after.process_logs(&[refusal_in(2, 152)], now);
    let stats = after.stats().log_join;
    assert_eq!(
        (stats.pending_records, stats.ancestor_joined_records),
        (0, 2)
    );
}

/// The bytes `the_join_buffers_encoding_is_pinned_to_the_checkpoint_version`
/// pinned before the join's progress followed the buffers.
const EARLIER: &str = concat!(
    "5457444554434b31058094d3cca2ca9cc318020100011064656e6965642d62792d63616c6c6572b1",
    "f197edd3eb92d4141064656e6965642d62792d63616c6c657200000000000000000000000300a08d",
    "06000000000001000000000100000000000180acafe0d6ca9cc31801010101010101010101010101",
    "010101010101010101010100008094d3cca2ca9cc318001a045741524e010d416363657373206465",
    "6e6965640000000001010101010101010101010101010101010197979797979797970000020280c8",
    "9790c4ca9cc318010101010101010101010101010101019797979797979797000165656565656565",
    "6580c89790c4ca9cc318010101010101010101010101010101016565656565656565000101010101",
    "0101010171fc5616",
);

/// The join's part of the checkpoint, pinned like the rule state
/// (`the_checkpoint_encoding_is_pinned_to_its_version`): a record climbing
/// to its handler and two spans indexed as links, then the join's progress.
/// When this fails, bump `checkpoint::VERSION` (or, for a section added at
/// the end, which earlier builds ignore, keep the old bytes as a checkpoint
/// the new build must still read, as `EARLIER` is), then update the bytes
/// here.
#[test]
fn the_join_buffers_encoding_is_pinned_to_the_checkpoint_version() {
    let mut engine = engine(100, 100);
    let now = BASE + 10 * SEC;
    engine.process_logs(&[refusal_in(1, 151)], now);
    engine.process(&handler_and_children(1, "203.0.113.5")[..2], now);
    let bytes = engine.checkpoint().expect("checkpoint");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // The earlier bytes without their CRC, then the join's progress (a
    // record needed a join, and one climbed), then the new CRC.
    let body = &EARLIER[..EARLIER.len() - 8];
    let progress = "0101";
    let crc = "a5967e02";
    let pinned = format!("{body}{progress}{crc}");
    assert_eq!(hex, pinned, "{} bytes", bytes.len());
}
