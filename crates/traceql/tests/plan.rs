//! required_conditions, needs_whole_trace and matches_span: what storage and
//! detection rely on before (or instead of) whole-trace evaluation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sample_trace;
use tracewarden_traceql::{TraceView, parse};

fn conditions(query: &str) -> Vec<Vec<String>> {
    parse(query)
        .unwrap()
        .required_conditions()
        .iter()
        .map(|c| c.iter().map(ToString::to_string).collect())
        .collect()
}

#[test]
fn required_conditions_come_from_filters_that_must_match() {
    let s = |v: &[&[&str]]| -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|x| (*x).to_owned()).collect())
            .collect()
    };
    assert_eq!(conditions("{ }"), s(&[]));
    assert_eq!(conditions("{ true }"), s(&[]));
    assert_eq!(
        conditions(r#"{ span.a = 1 && name =~ "x.*" }"#),
        s(&[&["span.a = 1", r#"name =~ "x.*""#]])
    );
    // Only top-level && parts of a filter.
    assert_eq!(
        conditions("{ span.a = 1 && (span.b = 2 || span.c = 3) && !(span.d = 4) }"),
        s(&[&["span.a = 1"]])
    );
    assert_eq!(conditions("{ span.a = 1 || span.b = 2 }"), s(&[]));
    // Either side may match alone.
    assert_eq!(conditions("{ span.a = 1 } || { span.b = 2 }"), s(&[]));
    // Both sides must match.
    assert_eq!(
        conditions("{ span.a = 1 } && { span.b = 2 }"),
        s(&[&["span.a = 1"], &["span.b = 2"]])
    );
    assert_eq!(
        conditions("{ span.a = 1 } >> { span.b = 2 }"),
        s(&[&["span.a = 1"], &["span.b = 2"]])
    );
    assert_eq!(
        conditions("{ span.a = 1 } &~ { span.b = 2 }"),
        s(&[&["span.a = 1"], &["span.b = 2"]])
    );
    // Negated relations: the lhs may match nothing.
    assert_eq!(
        conditions("{ span.a = 1 } !> { span.b = 2 }"),
        s(&[&["span.b = 2"]])
    );
    assert_eq!(
        conditions("{ span.a = 1 } !~ { span.b = 2 }"),
        s(&[&["span.b = 2"]])
    );
    // Pipeline filter stages and parenthesised pipelines count.
    assert_eq!(
        conditions("{ span.a = 1 } | count() > 2 | { span.b = 2 }"),
        s(&[&["span.a = 1"], &["span.b = 2"]])
    );
    assert_eq!(
        conditions("({ span.a = 1 } | count() > 2) && { }"),
        s(&[&["span.a = 1"]])
    );
    // Trace-level intrinsics are left out.
    assert_eq!(
        conditions(r#"{ rootName = "x" && kind = server }"#),
        s(&[&["kind = server"]])
    );
    assert_eq!(conditions(r#"{ rootName = "x" }"#), s(&[]));
    // nil conditions are kept for a store that knows absence.
    assert_eq!(conditions("{ span.a = nil }"), s(&[&["span.a = nil"]]));
}

#[test]
fn needs_whole_trace() {
    let cases = [
        ("{ }", false),
        ("{ span.a = 1 }", false),
        ("{ span.a = 1 } | count() > 2", false),
        (
            "{ span.a = 1 } | avg(duration) > 1s | by(name) | select(span.b) | coalesce()",
            false,
        ),
        ("{ span.a = 1 } | { span.b = 2 }", false),
        (r#"{ trace:id = "ab" }"#, false),
        (r#"{ rootName = "x" }"#, true),
        (r#"{ trace:rootService = "x" }"#, true),
        ("{ traceDuration > 1s }", true),
        ("{ span.a = 1 } | by(rootServiceName)", true),
        ("{ span.a = 1 } | max(traceDuration) > 1s", true),
        ("{ span.a = 1 } | { rootName = \"x\" }", true),
        ("{ span.a = 1 } && { span.b = 2 }", true),
        ("{ span.a = 1 } || { span.b = 2 }", true),
        ("{ span.a = 1 } > { span.b = 2 }", true),
        ("{ } | ({ span.a = 1 } > { })", true),
        ("({ span.a = 1 } | count() > 1)", true),
    ];
    for (query, expected) in cases {
        assert_eq!(
            parse(query).unwrap().needs_whole_trace(),
            expected,
            "{query}"
        );
    }
}

#[test]
fn matches_span_decides_the_first_filter() {
    let trace = sample_trace();
    let q = parse("{ kind = client && duration > 5ms } | count() > 1").unwrap();
    let hits: Vec<usize> = (0..trace.len())
        .filter(|&i| q.matches_span(&trace[i]))
        .collect();
    assert_eq!(hits, vec![1, 2]);
}

/// For queries that do not need the whole trace, evaluating over the spans
/// matches_span accepts gives the same spansets as over the whole trace.
#[test]
fn candidate_spans_suffice_when_whole_trace_is_not_needed() {
    let trace = sample_trace();
    for query in [
        "{ kind = client }",
        "{ kind = client } | count() > 2",
        "{ } | by(resource.service.name) | count() > 1",
        "{ status = error } | select(name) | coalesce()",
        "{ kind != internal } | { duration > 5ms } | avg(duration) > 10ms",
    ] {
        let q = parse(query).unwrap();
        assert!(!q.needs_whole_trace());
        let whole = q.evaluate(&TraceView::new(&trace));
        let candidates: Vec<_> = trace
            .iter()
            .filter(|s| q.matches_span(s))
            .cloned()
            .collect();
        let index: Vec<usize> = (0..trace.len())
            .filter(|&i| q.matches_span(&trace[i]))
            .collect();
        let partial = q.evaluate(&TraceView::new(&candidates));
        assert_eq!(whole.len(), partial.len(), "{query}");
        for (w, p) in whole.iter().zip(&partial) {
            let mapped: Vec<usize> = p.spans.iter().map(|&i| index[i]).collect();
            assert_eq!(w.spans, mapped, "{query}");
            assert_eq!(w.by, p.by, "{query}");
            assert_eq!(w.aggregates, p.aggregates, "{query}");
        }
    }
}

#[test]
fn matches_span_on_whole_trace_queries_is_a_superset_prefilter() {
    let trace = sample_trace();
    for query in [
        r#"{ name = "GET /api" } > { kind = client }"#,
        r#"{ rootName = "GET /api" && kind = client }"#,
        r#"{ !(rootName = "nope") && kind = server }"#,
        r#"{ span.db.system = "redis" } << { }"#,
        r#"{ name = "x" } || { status = error }"#,
    ] {
        let q = parse(query).unwrap();
        assert!(q.needs_whole_trace());
        for set in q.evaluate(&TraceView::new(&trace)) {
            for i in set.spans {
                assert!(q.matches_span(&trace[i]), "{query}: span {i} rejected");
            }
        }
    }
    // Spans that pass no leaf filter are rejected.
    let q = parse(r#"{ name = "GET /api" } > { kind = client }"#).unwrap();
    assert!(!q.matches_span(&trace[5])); // internal, not the root
    let q = parse(r#"{ rootName = "x" && kind = server }"#).unwrap();
    assert!(!q.matches_span(&trace[1])); // a client: false whatever the root
    assert!(q.matches_span(&trace[0]));
}

#[test]
fn fields_lists_every_field_read_once() {
    let query = tracewarden_traceql::parse(
        r#"{ span.a = 1 && (resource.service.name = "x" || !span.a) } >> { event.e =~ "z.*" } | avg(duration) > 1s | by(.b) | select(link:traceID, span.a)"#,
    )
    .unwrap();
    let fields: Vec<String> = query.fields().iter().map(ToString::to_string).collect();
    assert_eq!(
        fields,
        [
            "span.a",
            "resource.service.name",
            "event.e",
            "duration",
            ".b",
            "link:traceID"
        ]
    );
    assert!(
        tracewarden_traceql::parse("{ }")
            .unwrap()
            .fields()
            .is_empty()
    );
}

/// span_kinds: every kind a span can match with is in the mask, and the
/// mask is exact when the filter pins the kind with `=`/`!=` under `&&`
/// and `||`.
#[test]
fn span_kinds_hold_every_kind_a_span_can_match_with() {
    use std::sync::Arc;
    use tracewarden_model::{KeyValue, Span, SpanId, SpanKind, SpanRecord, TraceId};

    let span_of = |kind: SpanKind| {
        let mut span = Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            "op",
        );
        span.kind = kind;
        span.attributes.push(KeyValue::new("a", 1i64));
        SpanRecord::new(Arc::default(), Arc::default(), span)
    };
    let bit = SpanKind::bit;
    let all = 0b11_1111u8;
    // (query, exact mask or None when the mask only has to cover).
    let cases: &[(&str, Option<u8>)] = &[
        (
            "{ kind = server && span.a = 1 }",
            Some(bit(SpanKind::Server)),
        ),
        (
            "{ kind = server || kind = client }",
            Some(bit(SpanKind::Server) | bit(SpanKind::Client)),
        ),
        ("{ kind != internal }", Some(all & !bit(SpanKind::Internal))),
        (
            "{ span.a = 1 && (kind = producer || kind = consumer) }",
            Some(bit(SpanKind::Producer) | bit(SpanKind::Consumer)),
        ),
        ("{ kind = server && kind = client }", Some(0)),
        ("{ false }", Some(0)),
        ("{ span.a = 1 }", Some(all)),
        ("{ kind = server || span.a = 1 }", Some(all)),
        // Read conservatively: every kind.
        ("{ !(kind = server) }", None),
        ("{ kind = server } >> { kind = client }", None),
    ];
    for (query, exact) in cases {
        let q = parse(query).unwrap();
        let mask = q.span_kinds();
        let matched = SpanKind::ALL
            .iter()
            .filter(|&&k| q.matches_span(&span_of(k)))
            .fold(0u8, |m, &k| m | bit(k));
        assert_eq!(
            matched & !mask,
            0,
            "{query}: a kind matched outside the mask"
        );
        match exact {
            Some(expected) => {
                assert_eq!(mask, *expected, "{query}");
                assert_eq!(matched, *expected, "{query}");
            }
            None => assert_eq!(mask, all, "{query}"),
        }
    }
}
