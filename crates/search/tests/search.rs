//! Searches over a real store: some traces in a Parquet segment, some in
//! the hot tier, one split across both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tracewarden_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    StatusCode, TraceId,
};
use tracewarden_search::{SearchRequest, SearchResult, search};
use tracewarden_store::{Store, StoreOptions};

const SECOND: u64 = 1_000_000_000;
/// 2026-11-23T17:00:00Z.
const T0: u64 = 1_795_453_200 * SECOND;

fn trace_id(n: u8) -> TraceId {
    TraceId::from_bytes([n; 16])
}

struct SpanSpec {
    trace: u8,
    id: u8,
    parent: Option<u8>,
    service: &'static str,
    name: &'static str,
    start: u64,
    millis: u64,
    attributes: Vec<KeyValue>,
    error: bool,
}

fn span(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    service: &'static str,
    name: &'static str,
) -> SpanSpec {
    SpanSpec {
        trace,
        id,
        parent,
        service,
        name,
        start: T0 + u64::from(trace) * SECOND + u64::from(id) * 1_000_000,
        millis: 5,
        attributes: Vec::new(),
        error: false,
    }
}

impl SpanSpec {
    fn attr(mut self, key: &str, value: impl Into<AnyValue>) -> SpanSpec {
        self.attributes.push(KeyValue::new(key, value.into()));
        self
    }
}

fn batch(specs: Vec<SpanSpec>) -> Batch {
    let scope = Arc::new(Scope {
        name: "test".into(),
        ..Scope::default()
    });
    let mut batch = Batch::default();
    for spec in specs {
        let mut span = Span::new(
            trace_id(spec.trace),
            SpanId::from_bytes([spec.trace, spec.id, 0, 0, 0, 0, 0, 1]),
            spec.name,
        );
        span.parent_span_id = spec
            .parent
            .map(|p| SpanId::from_bytes([spec.trace, p, 0, 0, 0, 0, 0, 1]));
        span.kind = SpanKind::Server;
        span.start_time_unix_nano = spec.start;
        span.end_time_unix_nano = spec.start + spec.millis * 1_000_000;
        span.attributes = spec.attributes;
        if spec.error {
            span.status.code = StatusCode::Error;
        }
        batch.resource_spans.push(ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", spec.service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Arc::clone(&scope),
                spans: vec![span],
            }],
        });
    }
    batch
}

/// A store holding the geo-weather traces: trace 1 crosses
/// gateway → weather → location and is split between a segment and the hot
/// tier; traces 2-4 are failed logins from one address; trace 5 calls the
/// location service directly; trace 6 is a slow failure.
fn store(dir: &std::path::Path) -> Store {
    let mut options = StoreOptions::new(dir);
    options.lifecycle_thread = false;
    let (store, _) = Store::open(options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let login = |trace: u8| {
            span(trace, 1, None, "gateway", "POST /login")
                .attr("http.response.status_code", 401i64)
                .attr("client.address", "198.51.100.9")
                .attr("enduser.id", "alice")
        };
        store
            .append(batch(vec![
                span(1, 1, None, "gateway", "GET /weather")
                    .attr("client.address", "203.0.113.7")
                    .attr("http.response.status_code", 200i64),
                span(1, 2, Some(1), "weather", "GET /forecast"),
                login(2),
                login(3),
            ]))
            .await
            .unwrap();
        store.flush().unwrap();
        store
            .append(batch(vec![
                span(1, 3, Some(2), "location", "GET /location"),
                login(4),
                span(5, 1, None, "location", "GET /location")
                    .attr("client.address", "198.51.100.9"),
                SpanSpec {
                    millis: 2_500,
                    error: true,
                    ..span(6, 1, None, "gateway", "GET /report")
                },
            ]))
            .await
            .unwrap();
    });
    assert_eq!(store.segment_ids().len(), 1);
    store
}

fn run(store: &Store, query: &str, limit: usize) -> SearchResult {
    run_with(store, query, limit, 3)
}

/// With `early_passes` 0 a whole-trace query reads every unit whole.
fn run_with(store: &Store, query: &str, limit: usize, early_passes: usize) -> SearchResult {
    let query = tracewarden_traceql::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut request = SearchRequest::new(query, T0, T0 + 3600 * SECOND)
        .unwrap()
        .with_limit(limit)
        .unwrap();
    request.early_passes = early_passes;
    search(store, &request).unwrap()
}

fn ids(result: &SearchResult) -> Vec<u8> {
    let mut ids: Vec<u8> = result
        .traces
        .iter()
        .map(|t| t.trace_id.to_bytes()[0])
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn queries_find_the_expected_traces() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let cases: &[(&str, &[u8])] = &[
        ("{ span.http.response.status_code = 401 }", &[2, 3, 4]),
        (".http.response.status_code = 401", &[]),
        ("{ .http.response.status_code = 401 }", &[2, 3, 4]),
        (r#"{ span.client.address = "198.51.100.9" }"#, &[2, 3, 4, 5]),
        (
            r#"{ resource.service.name = "gateway" } >> { resource.service.name = "location" }"#,
            &[1],
        ),
        (
            r#"{ resource.service.name = "gateway" } > { resource.service.name = "location" }"#,
            &[],
        ),
        (
            r#"{ resource.service.name = "weather" } > { resource.service.name = "location" }"#,
            &[1],
        ),
        (r#"{ rootServiceName = "location" }"#, &[5]),
        ("{ duration > 1s }", &[6]),
        ("{ status = error }", &[6]),
        ("{ traceDuration > 1s }", &[6]),
        (r#"{ span.enduser.id = "alice" } | count() > 1"#, &[]),
        (r#"{ span.enduser.id = "alice" } | count() = 1"#, &[2, 3, 4]),
        (
            r#"{ name =~ "GET /.*" && resource.service.name != "gateway" }"#,
            &[1, 5],
        ),
        ("{ }", &[1, 2, 3, 4, 5, 6]),
    ];
    for (query, expected) in cases {
        if query.starts_with('.') {
            assert!(tracewarden_traceql::parse(query).is_err(), "{query}");
            continue;
        }
        let result = run(&store, query, 20);
        assert_eq!(ids(&result), *expected, "{query}");
        // Smaller limits stop scans early and rescan when candidates fail:
        // always that many of the expected traces.
        for limit in 1..=3 {
            let found = ids(&run(&store, query, limit));
            assert_eq!(
                found.len(),
                limit.min(expected.len()),
                "{query} limit {limit}"
            );
            assert!(
                found.iter().all(|id| expected.contains(id)),
                "{query} limit {limit}: {found:?}"
            );
        }
    }
}

#[test]
fn candidates_that_fail_do_not_hide_later_matches() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    // Traces 1 and 4 are candidates (one side matches) but only trace 5
    // has both: whatever order the hot tier hands them over in, the first
    // pass stops early and a rescan must find 5.
    let query =
        r#"{ resource.service.name = "location" } && { span.client.address = "198.51.100.9" }"#;
    for limit in 1..=3 {
        assert_eq!(ids(&run(&store, query, limit)), [5], "limit {limit}");
    }
    let query = r#"{ span.client.address = "198.51.100.9" } | count() = 1 | { resource.service.name = "location" }"#;
    for limit in 1..=3 {
        assert_eq!(ids(&run(&store, query, limit)), [5], "limit {limit}");
    }
}

#[test]
fn a_trace_split_between_segment_and_hot_tier_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let result = run(&store, r#"{ resource.service.name = "location" }"#, 20);
    let trace = result
        .traces
        .iter()
        .find(|t| t.trace_id == trace_id(1))
        .expect("trace 1 matches");
    assert_eq!(trace.span_count, 3);
    assert_eq!(trace.root_service_name.as_deref(), Some("gateway"));
    assert_eq!(trace.root_span_name.as_deref(), Some("GET /weather"));
    assert_eq!(trace.spansets.len(), 1);
    assert_eq!(trace.spansets[0].matched, 1);
    assert_eq!(trace.spansets[0].spans[0].record.span.name, "GET /location");
    let stats: Vec<&str> = trace
        .service_stats
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(stats, ["gateway", "location", "weather"]);
}

#[test]
fn limit_returns_the_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let result = run(&store, "{ span.http.response.status_code = 401 }", 1);
    // Trace 4 is in the hot tier, scanned first, and starts last.
    assert_eq!(ids(&result), [4]);
    let all = run(&store, "{ span.http.response.status_code = 401 }", 20);
    let order: Vec<u8> = all
        .traces
        .iter()
        .map(|t| t.trace_id.to_bytes()[0])
        .collect();
    assert_eq!(order, [4, 3, 2], "newest first");
}

#[test]
fn the_time_range_bounds_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let query = tracewarden_traceql::parse("{ }").unwrap();
    // Traces start at T0 + n seconds: [T0 + 2s, T0 + 4s) holds traces 2 and 3.
    let request = SearchRequest::new(query, T0 + 2 * SECOND, T0 + 4 * SECOND).unwrap();
    let result = search(&store, &request).unwrap();
    assert_eq!(ids(&result), [2, 3]);
    assert!(SearchRequest::new(tracewarden_traceql::parse("{}").unwrap(), 5, 5).is_err());
}

#[test]
fn by_and_aggregates_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let result = run(
        &store,
        "{ span.http.response.status_code = 401 } | by(span.client.address)",
        20,
    );
    assert_eq!(ids(&result), [2, 3, 4]);
    for trace in &result.traces {
        let set = &trace.spansets[0];
        assert!(
            set.attributes
                .iter()
                .any(|(_, v)| *v == tracewarden_traceql::Static::Str("198.51.100.9".into())),
            "{:?}",
            set.attributes
        );
    }
}

#[test]
fn pushdown_prunes_what_the_store_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let narrow = run(&store, r#"{ span.enduser.id = "alice" }"#, 20);
    let broad = run(&store, r#"{ .enduser.id = "alice" }"#, 20);
    assert_eq!(ids(&narrow), ids(&broad));
    assert!(
        narrow.metrics.inspected_spans < broad.metrics.inspected_spans,
        "{:?} vs {:?}",
        narrow.metrics,
        broad.metrics
    );
    assert_eq!(narrow.metrics.inspected_spans, 3);
}

/// 400 traces: gateway → (weather →) location; every third calls location
/// directly; every seventh has its gateway span arrive after a flush.
fn many_traces(dir: &std::path::Path) -> Store {
    let mut options = StoreOptions::new(dir);
    options.lifecycle_thread = false;
    let (store, _) = Store::open(options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = |trace: u16, id: u8, parent: Option<u8>, service: &'static str| {
        let mut s = span(0, id, parent, service, "op");
        s.start = T0 + u64::from(trace) * 1_000_000 + u64::from(id);
        (trace, s)
    };
    let mut first = Vec::new();
    let mut late = Vec::new();
    for trace in 0..400u16 {
        // The root (the left side of the queries) arrives late for every
        // seventh trace: evaluating the segment's spans alone would miss it.
        let (t, root) = spec(trace, 1, None, "gateway");
        let root = (
            t,
            root.attr("client.address", format!("10.0.0.{}", trace % 5).as_str()),
        );
        if trace % 7 == 0 {
            late.push(root)
        } else {
            first.push(root)
        }
        let region = if trace % 2 == 0 { "eu" } else { "us" };
        if trace % 3 == 0 {
            let (t, s) = spec(trace, 2, Some(1), "location");
            first.push((t, s.attr("app.region", region)));
        } else {
            first.push(spec(trace, 3, Some(1), "weather"));
            let (t, s) = spec(trace, 2, Some(3), "location");
            first.push((t, s.attr("app.region", region)));
        }
    }
    let to_batch = |specs: Vec<(u16, SpanSpec)>| {
        let mut b = batch(Vec::new());
        for (trace, spec) in specs {
            let mut one = batch(vec![spec]);
            for rs in &mut one.resource_spans {
                for ss in &mut rs.scope_spans {
                    for s in &mut ss.spans {
                        let mut id = [0u8; 16];
                        id[..2].copy_from_slice(&trace.to_be_bytes());
                        id[15] = 1;
                        s.trace_id = TraceId::from_bytes(id);
                    }
                }
            }
            b.resource_spans.extend(one.resource_spans);
        }
        b
    };
    runtime.block_on(async {
        store.append(to_batch(first)).await.unwrap();
        store.flush().unwrap();
        store.append(to_batch(late)).await.unwrap();
    });
    store
}

fn trace_numbers(result: &SearchResult) -> Vec<u16> {
    let mut n: Vec<u16> = result
        .traces
        .iter()
        .map(|t| u16::from_be_bytes([t.trace_id.to_bytes()[0], t.trace_id.to_bytes()[1]]))
        .collect();
    n.sort_unstable();
    n
}

#[test]
fn bulk_evaluation_of_many_candidates_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = many_traces(dir.path());
    let direct = run(
        &store,
        r#"{ resource.service.name = "gateway" } > { resource.service.name = "location" }"#,
        1000,
    );
    let expected: Vec<u16> = (0..400).filter(|t| t % 3 == 0).collect();
    assert_eq!(trace_numbers(&direct), expected);
    // Read in bulk; only traces another unit may also hold were assembled
    // from every unit (the 58 split ones, plus bloom-filter false
    // positives).
    assert!(
        direct.metrics.assembled_traces >= 58,
        "{:?}",
        direct.metrics
    );
    assert!(
        direct.metrics.assembled_traces < 200,
        "{:?}",
        direct.metrics
    );
    // Bulk reads leave the generic attribute column out unless the query
    // reads it; the spans returned are whole all the same.
    for found in &direct.traces {
        let span = &found.spansets[0].spans[0].record.span;
        assert!(span.attribute("app.region").is_some(), "{span:?}");
    }
    let eu = run(
        &store,
        r#"{ resource.service.name = "gateway" } > { resource.service.name = "location" && span.app.region = "eu" }"#,
        1000,
    );
    let expected: Vec<u16> = (0..400).filter(|t| t % 6 == 0).collect();
    assert_eq!(trace_numbers(&eu), expected);

    // A dedicated column read by a structural query in bulk.
    let from = run(
        &store,
        r#"{ resource.service.name = "gateway" && span.client.address = "10.0.0.0" } > { resource.service.name = "location" }"#,
        1000,
    );
    let expected: Vec<u16> = (0..400).filter(|t| t % 15 == 0).collect();
    assert_eq!(trace_numbers(&from), expected);
    let from = run(
        &store,
        r#"{ resource.service.name = "location" } < { .client.address =~ "10[.]0[.]0[.][12]" }"#,
        1000,
    );
    let expected: Vec<u16> = (0..400)
        .filter(|t| t % 3 == 0 && matches!(t % 5, 1 | 2))
        .collect();
    assert_eq!(trace_numbers(&from), expected);

    // Small limits: early passes, then units read whole (in parallel),
    // then assembly; always that many of the expected traces, each once.
    for (limit, early_passes) in [1, 5, 50, 133, 134, 200]
        .into_iter()
        .flat_map(|limit| [(limit, 3), (limit, 0)])
    {
        let some = run_with(
            &store,
            r#"{ resource.service.name = "gateway" } > { resource.service.name = "location" }"#,
            limit,
            early_passes,
        );
        let found = trace_numbers(&some);
        assert_eq!(found.len(), limit.min(134), "limit {limit}");
        assert!(found.iter().all(|t| t % 3 == 0), "limit {limit}: {found:?}");
        let mut unique = found.clone();
        unique.dedup();
        assert_eq!(unique, found, "limit {limit}");
    }

    // Every unit read whole, in parallel: the same answers.
    for (query, expected) in [
        (
            r#"{ resource.service.name = "gateway" } > { resource.service.name = "location" }"#,
            (0..400).filter(|t| t % 3 == 0).collect::<Vec<u16>>(),
        ),
        (
            r#"{ resource.service.name = "location" } > { resource.service.name = "weather" }"#,
            Vec::new(),
        ),
        (
            r#"{ resource.service.name = "gateway" } >> { resource.service.name = "location" } && { resource.service.name = "weather" }"#,
            (0..400).filter(|t| t % 3 != 0).collect(),
        ),
    ] {
        let whole = run_with(&store, query, 1000, 0);
        assert_eq!(trace_numbers(&whole), expected, "{query}");
    }

    let never = run(
        &store,
        r#"{ resource.service.name = "location" } > { resource.service.name = "weather" }"#,
        1000,
    );
    assert!(never.traces.is_empty());
    // The candidates are the traces with a span the right side could
    // return (a weather span): every one evaluated, none matched.
    assert_eq!(never.metrics.inspected_traces, 266, "{:?}", never.metrics);

    let via_weather = run(
        &store,
        r#"{ resource.service.name = "gateway" } >> { resource.service.name = "location" } && { resource.service.name = "weather" }"#,
        1000,
    );
    let expected: Vec<u16> = (0..400).filter(|t| t % 3 != 0).collect();
    assert_eq!(trace_numbers(&via_weather), expected);
}

#[test]
fn a_damaged_segment_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let spans_file = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".spans.parquet"))
        .unwrap();
    // Its footer was read at open; its pages are gone now.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&spans_file)
        .unwrap()
        .set_len(64)
        .unwrap();
    for query in [
        "{ }",
        r#"{ span.http.response.status_code = 401 } && { resource.service.name = "gateway" }"#,
    ]
    .into_iter()
    .flat_map(|q| [(q, 0), (q, 3)])
    {
        let (query, early_passes) = query;
        let result = run_with(&store, query, 20, early_passes);
        // Traces 2 and 3 lived only in the segment; 1 keeps its hot span.
        let found = ids(&result);
        assert!(
            found.contains(&4) && !found.contains(&2),
            "{query}: {found:?}"
        );
        assert_eq!(
            result.metrics.unreadable.len(),
            1,
            "{query}: {:?}",
            result.metrics
        );
        assert!(result.metrics.unreadable[0].starts_with("segment 1: "));
    }
}
