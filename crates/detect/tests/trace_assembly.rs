//! Whole-trace detection through the engine's assembly buffer: spans of
//! many traces shuffled across batches and flush calls, limits that push
//! traces out early (counted, evaluated partial), and topology rules that
//! learn their graph.

use std::path::Path;
use std::sync::Arc;

use tracewarden_detect::assembly::AssemblyConfig;
use tracewarden_detect::engine::{Detection, Engine, EngineConfig};
use tracewarden_detect::rule::{Rule, Site, parse_rule_for};
use tracewarden_model::rng::Rng;
use tracewarden_model::{KeyValue, Resource, Span, SpanId, SpanKind, SpanRecord, TraceId};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const BASE: u64 = 1_767_225_600 * SEC;

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", service)],
        ..Resource::default()
    })
}

struct TraceBuilder {
    trace: TraceId,
    start: u64,
    spans: Vec<SpanRecord>,
}

impl TraceBuilder {
    fn new(n: u32, start: u64) -> TraceBuilder {
        let mut id = [0u8; 16];
        id[12..].copy_from_slice(&n.to_be_bytes());
        id[0] = 0x5a;
        TraceBuilder {
            trace: TraceId::from_bytes(id),
            start,
            spans: Vec::new(),
        }
    }

    /// Adds span `id` (1-based within the trace) of `service`.
    fn span(
        mut self,
        id: u8,
        parent: Option<u8>,
        service: &str,
        kind: SpanKind,
        name: &str,
    ) -> Self {
        let mut span = Span::new(
            self.trace,
            SpanId::from_bytes([0, 0, 0, 0, 0, 0, 0, id]),
            name,
        );
        span.parent_span_id = parent.map(|p| SpanId::from_bytes([0, 0, 0, 0, 0, 0, 0, p]));
        span.kind = kind;
        span.start_time_unix_nano = self.start + u64::from(id) * MS;
        span.end_time_unix_nano = span.start_time_unix_nano + 5 * MS;
        self.spans.push(SpanRecord {
            resource: resource(service),
            scope: Arc::default(),
            span: span.into(),
        });
        self
    }
}

/// gateway -> weather -> location: the allowed path.
fn allowed(n: u32, start: u64) -> Vec<SpanRecord> {
    TraceBuilder::new(n, start)
        .span(1, None, "api-gateway", SpanKind::Server, "GET /weather")
        .span(2, Some(1), "api-gateway", SpanKind::Client, "GET weather")
        .span(3, Some(2), "weather", SpanKind::Server, "GET /forecast")
        .span(4, Some(3), "weather", SpanKind::Client, "GET location")
        .span(5, Some(4), "location", SpanKind::Server, "GET /position")
        .spans
}

/// gateway -> location: location may only be called by weather.
fn wrong_caller(n: u32, start: u64) -> Vec<SpanRecord> {
    TraceBuilder::new(n, start)
        .span(1, None, "api-gateway", SpanKind::Server, "GET /location")
        .span(2, Some(1), "api-gateway", SpanKind::Client, "GET location")
        .span(3, Some(2), "location", SpanKind::Server, "GET /position")
        .spans
}

fn site() -> Site {
    Site {
        entry_services: vec!["api-gateway".into()],
        allowed_edges: vec![
            "api-gateway -> weather".into(),
            "weather -> location".into(),
        ],
        ..Site::default()
    }
}

fn rule(text: &str, site: &Site) -> Rule {
    parse_rule_for(text, Path::new("inline.yaml"), site).unwrap_or_else(|e| panic!("{e:?}"))
}

const WRONG_CALLER: &str = "id: wrong-caller\ntitle: t\nseverity: high\nkind: topology\ndetect: [wrong_caller, no_parent, spoofed_context]\n";
const STRUCTURAL: &str = "id: gateway-to-location\ntitle: t\nseverity: low\nkind: match\ncondition: '{ resource.service.name = \"api-gateway\" } > { resource.service.name = \"location\" }'\n";

fn by_rule<'a>(detections: &'a [Detection], id: &str) -> Vec<&'a Detection> {
    detections.iter().filter(|d| &*d.rule_id == id).collect()
}

#[test]
fn shuffled_batches_across_flushes_give_each_trace_once() {
    let site = site();
    let mut engine = Engine::new(vec![rule(WRONG_CALLER, &site), rule(STRUCTURAL, &site)]);
    assert!(engine.needs_traces());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Each span arrives at its trace's time plus up to 1.5 s of jitter
    // (services export on their own schedules), so the spans of a trace
    // land in different batches, out of order, mixed with other traces.
    let mut arrivals: Vec<(u64, SpanRecord)> = Vec::new();
    let mut bad = Vec::new();
    for n in 0..300u32 {
        let start = BASE + u64::from(n) * 40 * MS;
        let trace = if n % 25 == 7 {
            let trace = wrong_caller(n, start);
            bad.push(trace[0].span.trace_id);
            trace
        } else {
            allowed(n, start)
        };
        for span in trace {
            arrivals.push((start + rng.below(1_500) as u64 * MS, span));
        }
    }
    let total = arrivals.len() as u64;
    rng.shuffle(&mut arrivals);
    arrivals.sort_by_key(|(at, _)| *at);
    // A batch per 100 ms of arrival time, a flush after each: traces
    // complete (5 s idle) while later ones are still arriving.
    let mut detections = Vec::new();
    let mut now = BASE;
    let mut rest = arrivals.as_slice();
    let mut flushes_with_results = 0;
    while !rest.is_empty() {
        now += 100 * MS;
        let take = rest.iter().take_while(|(at, _)| *at < now).count();
        let (batch, after) = rest.split_at(take);
        rest = after;
        let mut batch: Vec<SpanRecord> = batch.iter().map(|(_, s)| s.clone()).collect();
        rng.shuffle(&mut batch);
        detections.extend(engine.process(&batch, now));
        let flushed = engine.flush(now);
        flushes_with_results += usize::from(!flushed.is_empty());
        detections.extend(flushed);
    }
    assert!(
        engine.next_flush_due().is_some(),
        "the last traces are still buffered"
    );
    detections.extend(engine.flush(now + 10 * SEC));
    assert!(engine.drain().is_empty(), "flush handed everything over");
    assert!(
        flushes_with_results > 1,
        "traces complete while others arrive"
    );

    let wrong = by_rule(&detections, "wrong-caller");
    assert_eq!(wrong.len(), bad.len(), "{wrong:#?}");
    for d in &wrong {
        assert_eq!(d.kind, "topology");
        assert_eq!(
            d.key,
            vec![
                ("caller".to_string(), "api-gateway".to_string()),
                ("callee".to_string(), "location".to_string())
            ]
        );
        assert!(bad.contains(&d.trace_ids[0]));
        assert!(!d.evidence.as_deref().unwrap_or("").contains("partial"));
    }
    // The structural TraceQL rule runs on the same assembled traces.
    let structural = by_rule(&detections, "gateway-to-location");
    assert_eq!(structural.len(), bad.len());
    // `A > B` yields the B spans: the location server span.
    assert!(structural.iter().all(|d| d.kind == "match" && d.count == 1));

    let stats = engine.stats();
    assert_eq!(stats.trace_rules, 2);
    assert_eq!(stats.assembly.spans, total);
    assert_eq!(stats.assembly.complete_traces, 300);
    assert_eq!(stats.assembly.partial_traces, 0);
    assert_eq!(
        (
            stats.assembly.buffered_traces,
            stats.assembly.buffered_spans
        ),
        (0, 0)
    );
}

#[test]
fn limits_push_traces_out_counted_and_evaluated_partial() {
    let site = site();
    let config = EngineConfig {
        assembly: AssemblyConfig {
            max_traces: 8,
            ..AssemblyConfig::default()
        },
        ..EngineConfig::default()
    };
    let mut engine = Engine::with_config(vec![rule(WRONG_CALLER, &site)], config);
    // 40 wrong-caller traces in one batch: the buffer holds 8, so 32 are
    // pushed out while the batch is processed and evaluated as they are.
    let spans: Vec<SpanRecord> = (0..40u32).flat_map(|n| wrong_caller(n, BASE)).collect();
    let mut detections = engine.process(&spans, BASE);
    let pushed_out = detections.len();
    detections.extend(engine.drain());
    let stats = engine.stats().assembly;
    assert_eq!(stats.evicted_trace_limit, 32);
    assert_eq!(stats.partial_traces, 32);
    assert_eq!(stats.complete_traces, 8);
    assert_eq!(
        pushed_out, 32,
        "detections of pushed-out traces come with process"
    );
    // Each trace was whole when pushed out, so nothing was lost: one
    // detection per trace, the partial ones saying so.
    assert_eq!(detections.len(), 40);
    let partial = detections
        .iter()
        .filter(|d| {
            d.evidence
                .as_deref()
                .is_some_and(|e| e.ends_with("[partial trace: evicted: trace limit]"))
        })
        .count();
    assert_eq!(partial, 32);
}

#[test]
fn a_split_trace_does_not_pass_for_spoofed_context() {
    let site = site();
    let config = EngineConfig {
        assembly: AssemblyConfig {
            max_spans_per_trace: 2,
            ..AssemblyConfig::default()
        },
        ..EngineConfig::default()
    };
    // Without span flags, and with the remote flag modern SDKs set on a
    // server span whose parent came over the network (0x300).
    for flags in [0, 0x300] {
        let mut engine = Engine::with_config(vec![rule(WRONG_CALLER, &site)], config.clone());
        // A CDN edge (entry-less, client span) calls the gateway: after two
        // spans the trace is handed over, and the gateway's server span
        // arrives in a fragment without its parent.
        let mut trace = TraceBuilder::new(1, BASE)
            .span(1, None, "cdn", SpanKind::Client, "GET origin")
            .span(2, Some(1), "cdn", SpanKind::Internal, "cache miss")
            .span(3, Some(2), "api-gateway", SpanKind::Server, "GET /weather")
            .spans;
        trace[2].span_mut().flags = flags;
        let mut detections = engine.process(&trace, BASE);
        detections.extend(engine.drain());
        let stats = engine.stats().assembly;
        assert_eq!((stats.split_traces, stats.late_fragments), (1, 1));
        // The gateway's parent is missing only because of the split.
        assert!(
            detections
                .iter()
                .all(|d| d.key != vec![("service".to_string(), "api-gateway".to_string())]),
            "flags {flags:#x}: {detections:#?}"
        );
    }

    // The same gateway span with its parent really absent, in a complete
    // trace: context from outside.
    let mut engine = Engine::new(vec![rule(WRONG_CALLER, &site)]);
    let trace = TraceBuilder::new(2, BASE)
        .span(3, Some(2), "api-gateway", SpanKind::Server, "GET /weather")
        .spans;
    let mut detections = engine.process(&trace, BASE);
    detections.extend(engine.flush(BASE + 5 * SEC));
    assert_eq!(detections.len(), 1, "{detections:#?}");
    assert!(
        detections[0]
            .evidence
            .as_deref()
            .unwrap_or("")
            .starts_with("spoofed_context: entry service api-gateway")
    );
}

#[test]
fn learned_topology_fires_on_new_edges_and_entries_once() {
    let empty = Site::default();
    let text = "id: learned\ntitle: t\nseverity: high\nkind: topology\ndetect: [wrong_caller, no_parent]\nlearn: 1h\n";
    let learned = rule(text, &empty);
    assert!(learned.inactive.is_none());
    let mut engine = Engine::new(vec![learned]);
    let mut detections = Vec::new();
    // An hour of ordinary traffic (event time), evaluated trace by trace.
    for n in 0..60u32 {
        let start = BASE + u64::from(n) * 60 * SEC;
        detections.extend(engine.process(&allowed(n, start), start));
        detections.extend(engine.flush(start + 6 * SEC));
    }
    assert!(
        detections.is_empty(),
        "nothing fires while learning: {detections:#?}"
    );
    // Then: the gateway calls location (new edge), twice; location is hit
    // directly (a new parentless service), twice; the usual path once more.
    let after = BASE + 3_700 * SEC;
    let mut traces = vec![
        wrong_caller(100, after),
        wrong_caller(101, after + SEC),
        allowed(102, after + 2 * SEC),
    ];
    for n in 103..105u32 {
        traces.push(
            TraceBuilder::new(n, after + u64::from(n) * SEC)
                .span(1, None, "location", SpanKind::Server, "GET /position")
                .spans,
        );
    }
    for trace in &traces {
        detections.extend(engine.process(trace, after));
    }
    detections.extend(engine.drain());
    let found: Vec<(String, String)> = detections
        .iter()
        .map(|d| {
            let evidence = d.evidence.clone().unwrap_or_default();
            let check = evidence.split(':').next().unwrap_or("").to_string();
            let key: Vec<&str> = d.key.iter().map(|(_, v)| v.as_str()).collect();
            (check, key.join(" -> "))
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "wrong_caller".to_string(),
                "api-gateway -> location".to_string()
            ),
            ("no_parent".to_string(), "location".to_string()),
        ]
    );
}

#[test]
fn no_trace_rules_no_buffering() {
    let text =
        "id: errors\ntitle: t\nseverity: low\nkind: match\ncondition: '{ status = error }'\n";
    let mut engine = Engine::new(vec![rule(text, &Site::default())]);
    assert!(!engine.needs_traces());
    engine.process(&allowed(1, BASE), BASE);
    assert!(engine.flush(BASE + 10 * SEC).is_empty());
    assert_eq!(engine.stats().assembly.spans, 0);
    assert_eq!(engine.next_flush_due(), None);
}

#[test]
fn flushed_traces_note_how_late_after_their_completion_they_ran() {
    let site = site();
    let mut engine = Engine::new(vec![rule(WRONG_CALLER, &site)]);
    // Trace 1's spans arrive at BASE and BASE + 1 s (root last): complete
    // at BASE + 6 s (5 s idle by default). Trace 2's at BASE + 2 s.
    let one = allowed(1, BASE);
    let (root, children) = one.split_at(1);
    engine.process(children, BASE);
    engine.process(root, BASE + SEC);
    engine.process(&allowed(2, BASE), BASE + 2 * SEC);
    // At BASE + 6.5 s only trace 1 is complete, half a second late.
    engine.flush(BASE + 6 * SEC + SEC / 2);
    assert_eq!(
        engine.take_trace_delays().collect::<Vec<_>>(),
        vec![SEC / 2]
    );
    assert_eq!(engine.take_trace_delays().count(), 0, "taken once");
    // Drained traces (shutdown, the end of a scan) are not timed.
    engine.drain();
    assert_eq!(engine.take_trace_delays().count(), 0);
    engine.process(&allowed(3, BASE), BASE + 10 * SEC);
    engine.flush(BASE + 15 * SEC);
    assert_eq!(engine.take_trace_delays().collect::<Vec<_>>(), vec![0]);
}
