//! Evaluation over a hand-built trace: every operator, intrinsic, scope,
//! nil, type mismatches, the structural operators and the pipeline stages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MS, matched, run, sample_trace, span};
use tracewarden_model::{SpanKind, SpanRecord};
use tracewarden_traceql::{Static, TraceView, parse};

fn check(cases: &[(&str, &[usize])]) {
    let trace = sample_trace();
    for (query, expected) in cases {
        assert_eq!(matched(query, &trace), expected.to_vec(), "query: {query}");
    }
}

#[test]
fn empty_and_constant_filters() {
    check(&[
        ("{}", &[0, 1, 2, 3, 4, 5]),
        ("{ true }", &[0, 1, 2, 3, 4, 5]),
        ("{ false }", &[]),
        ("{ 1 = 1 }", &[0, 1, 2, 3, 4, 5]),
        ("{ 1 = 2 }", &[]),
    ]);
}

#[test]
fn span_intrinsics() {
    check(&[
        (r#"{ name = "auth" }"#, &[1]),
        (r#"{ span:name = "auth" }"#, &[1]),
        ("{ status = error }", &[2, 3]),
        ("{ span:status != error }", &[0, 1, 4, 5]),
        ("{ status = unset }", &[0, 1, 4, 5]),
        ("{ status = ok }", &[]),
        (r#"{ statusMessage = "timeout" }"#, &[2]),
        (r#"{ span:statusMessage = "" }"#, &[0, 1, 3, 4, 5]),
        ("{ kind = client }", &[1, 2, 4]),
        ("{ span:kind = server }", &[0, 3]),
        ("{ kind = internal }", &[5]),
        (
            "{ kind = producer || kind = consumer || kind = unspecified }",
            &[],
        ),
        ("{ duration > 40ms }", &[0, 2]),
        ("{ span:duration <= 1ms }", &[4]),
        ("{ duration = 0.05s }", &[2]),
        ("{ duration >= 10000us && duration < 11ms }", &[1, 5]),
        (r#"{ span:id = "0000000000000003" }"#, &[3]),
        (r#"{ span:parentID = "0000000000000003" }"#, &[4]),
        ("{ span:parentID = nil }", &[0]),
    ]);
}

#[test]
fn trace_intrinsics() {
    check(&[
        (r#"{ rootName = "GET /api" && kind = client }"#, &[1, 2, 4]),
        (r#"{ trace:rootName = "nope" }"#, &[]),
        (
            r#"{ rootServiceName = "frontend" && name = "retry" }"#,
            &[5],
        ),
        (r#"{ trace:rootService = "auth" }"#, &[]),
        ("{ traceDuration = 100ms && kind = server }", &[0, 3]),
        ("{ trace:duration > 100ms }", &[]),
        (
            r#"{ trace:id = "abababababababababababababababab" && kind = internal }"#,
            &[5],
        ),
    ]);
}

#[test]
fn event_link_and_instrumentation_fields() {
    check(&[
        (r#"{ event:name = "exception" }"#, &[3]),
        (r#"{ event.exception.type = "InvalidToken" }"#, &[3]),
        ("{ event:timeSinceStart = 4ms }", &[3]),
        ("{ event:name = nil }", &[0, 1, 2, 4, 5]),
        (
            r#"{ link:traceID = "11111111111111111111111111111111" }"#,
            &[5],
        ),
        (r#"{ link:spanID = "2222222222222222" }"#, &[5]),
        (r#"{ link.link.kind = "follows" }"#, &[5]),
        (r#"{ instrumentation:name = "auth-lib" }"#, &[3]),
        (r#"{ instrumentation:version = "1.2.0" }"#, &[0, 1, 2, 4, 5]),
        (
            r#"{ instrumentation.scope.team = "identity" }"#,
            &[0, 1, 2, 3, 4, 5],
        ),
    ]);
}

#[test]
fn attribute_scopes() {
    check(&[
        ("{ span.http.response.status_code >= 400 }", &[3]),
        ("{ .http.response.status_code = 200 }", &[0]),
        (r#"{ resource.service.name = "auth" }"#, &[3, 4]),
        // Unscoped falls back to the resource.
        (r#"{ .service.name = "auth" }"#, &[3, 4]),
        // Scoped does not.
        (r#"{ span.service.name = "auth" }"#, &[]),
        (r#"{ resource.http.request.method = "GET" }"#, &[]),
        (r#"{ span."http.request.method" = "GET" }"#, &[0]),
    ]);
}

#[test]
fn comparison_operators_and_types() {
    check(&[
        (r#"{ name =~ "GET" }"#, &[]), // anchored: must match the whole name
        (r#"{ name =~ ".*GET.*" }"#, &[0, 4]),
        (r#"{ name !~ ".*GET.*" }"#, &[1, 2, 3, 5]),
        (r#"{ resource.service.name =~ "front.*" }"#, &[0, 1, 2, 5]),
        (r#"{ span:id =~ "0+[34]" }"#, &[3, 4]),
        (r#"{ name > "r" }"#, &[4, 5]),
        // byte order: "GET /api", "POST /verify" < "auth"
        (r#"{ name <= "auth" }"#, &[0, 1, 3]),
        // int and float compare numerically
        ("{ span.ratio < 1 }", &[5]),
        ("{ span.ratio = 0.5 }", &[5]),
        ("{ span.http.response.status_code = 401.0 }", &[3]),
        ("{ span.http.response.status_code > -1 }", &[0, 3]),
        // mismatched types are false, `!=` included
        (r#"{ span.http.response.status_code = "401" }"#, &[]),
        (r#"{ span.http.response.status_code != "401" }"#, &[]),
        ("{ span.db.system = 1 }", &[]),
        ("{ span.db.system > 1s }", &[]),
        // booleans
        ("{ span.cache.hit = true }", &[3]),
        ("{ span.cache.hit != false }", &[3]),
        ("{ span.cache.hit }", &[3]),
        // arrays: one element suffices
        (r#"{ span.user.roles = "admin" }"#, &[3]),
        (r#"{ span.user.roles =~ "us.*" }"#, &[3]),
        (r#"{ span.user.roles != "admin" }"#, &[]),
    ]);
}

#[test]
fn nil_and_missing_attributes() {
    check(&[
        ("{ span.db.system = nil }", &[0, 1, 3, 5]),
        ("{ span.db.system != nil }", &[2, 4]),
        ("{ span.missing > 1 }", &[]),
        ("{ span.missing != 1 }", &[]),
        (r#"{ span.missing !~ "x" }"#, &[]),
        ("{ !(span.missing = 1) }", &[0, 1, 2, 3, 4, 5]),
    ]);
}

#[test]
fn boolean_operators() {
    check(&[
        (
            r#"{ kind = client && (span.db.system = "redis" || span.peer.service = "auth") }"#,
            &[1, 4],
        ),
        ("{ !(kind = client) }", &[0, 3, 5]),
        ("{ !span.cache.hit }", &[0, 1, 2, 4, 5]),
        ("{ !!(kind = internal) }", &[5]),
        // && binds tighter than ||
        (
            r#"{ name = "auth" || name = "retry" && kind = server }"#,
            &[1],
        ),
        (
            r#"{ (name = "auth" || name = "retry") && kind = internal }"#,
            &[5],
        ),
    ]);
}

#[test]
fn structural_operators() {
    check(&[
        (r#"{ name = "GET /api" } > { kind = client }"#, &[1, 2]),
        (r#"{ name = "GET /api" } >> { kind = client }"#, &[1, 2, 4]),
        ("{ kind = client } < { }", &[0, 3]),
        (r#"{ span.db.system = "redis" } << { }"#, &[0, 1, 3]),
        (r#"{ name = "auth" } ~ { }"#, &[2]),
        ("{ kind = client } ~ { kind = client }", &[1, 2]),
        ("{ kind = server } ~ { kind = server }", &[]),
        // negated: the rhs spans for which the relation does not hold
        (r#"{ name = "GET /api" } !> { kind = client }"#, &[4]),
        (r#"{ name = "GET /api" } !>> { }"#, &[0]),
        ("{ kind = client } !< { }", &[1, 2, 4, 5]),
        (r#"{ span.db.system = "redis" } !<< { }"#, &[2, 4, 5]),
        (r#"{ name = "auth" } !~ { }"#, &[0, 1, 3, 4, 5]),
        // union forms: both sides of the relation
        (r#"{ name = "GET /api" } &> { kind = client }"#, &[0, 1, 2]),
        (
            r#"{ name = "GET /api" } &>> { span.db.system = "redis" }"#,
            &[0, 4],
        ),
        (r#"{ span.db.system = "redis" } &< { }"#, &[3, 4]),
        (
            r#"{ span.db.system = "redis" } &<< { name = "GET /api" }"#,
            &[0, 4],
        ),
        (r#"{ name = "auth" } &~ { name = "db query" }"#, &[1, 2]),
        // chains are left-associative
        (r#"{ name = "GET /api" } > { } > { kind = server }"#, &[3]),
        (r#"{ name = "GET /api" } > ({ } > { kind = server })"#, &[]),
    ]);
}

#[test]
fn spanset_and_or() {
    check(&[
        (r#"{ name = "auth" } && { name = "retry" }"#, &[1, 5]),
        (r#"{ name = "auth" } && { name = "nope" }"#, &[]),
        (r#"{ name = "auth" } || { name = "nope" }"#, &[1]),
        (r#"{ name = "auth" } || { name = "retry" }"#, &[1, 5]),
        // && binds tighter than ||
        (
            r#"{ name = "nope" } && { name = "auth" } || { name = "retry" }"#,
            &[5],
        ),
        (
            r#"{ name = "nope" } && ({ name = "auth" } || { name = "retry" })"#,
            &[],
        ),
        // structural binds tighter than &&
        (
            r#"{ name = "retry" } && { name = "GET /api" } > { name = "auth" }"#,
            &[1, 5],
        ),
    ]);
}

fn one(query: &str) -> tracewarden_traceql::SpanSet {
    let trace = sample_trace();
    let sets = parse(query).unwrap().evaluate(&TraceView::new(&trace));
    assert_eq!(sets.len(), 1, "{query}: {sets:?}");
    sets.into_iter().next().unwrap()
}

#[test]
fn scalar_filters() {
    let set = one("{ kind = client } | count() = 3");
    assert_eq!(set.spans, vec![1, 2, 4]);
    assert_eq!(set.aggregates, vec![("count()".to_owned(), Static::Int(3))]);
    assert!(run("{ kind = client } | count() > 3", &sample_trace()).is_empty());

    let set = one("{ kind = client } | avg(duration) > 20ms");
    assert_eq!(
        set.aggregates,
        vec![("avg(duration)".to_owned(), Static::Duration(61 * MS / 3))]
    );
    assert!(run("{ kind = client } | avg(duration) > 21ms", &sample_trace()).is_empty());

    assert_eq!(one("{ } | max(duration) = 100ms").spans.len(), 6);
    assert_eq!(one("{ } | min(duration) = 1ms").spans.len(), 6);
    assert_eq!(
        one("{ } | sum(duration) >= 179ms").aggregates,
        vec![("sum(duration)".to_owned(), Static::Duration(179 * MS))]
    );
    assert_eq!(
        one("{ } | sum(span.http.response.status_code) = 601").aggregates,
        vec![(
            "sum(span.http.response.status_code)".to_owned(),
            Static::Int(601)
        )]
    );
    assert_eq!(
        one("{ } | avg(span.http.response.status_code) = 300.5").aggregates,
        vec![(
            "avg(span.http.response.status_code)".to_owned(),
            Static::Float(300.5)
        )]
    );
    // No numeric value at all: nil, so only `= nil` holds.
    assert!(run("{ } | max(span.db.system) > 0", &sample_trace()).is_empty());
    assert_eq!(one("{ } | max(span.missing) = nil").spans.len(), 6);
    // Two scalar filters keep both aggregates.
    let set = one("{ } | count() > 1 | max(duration) < 1s");
    assert_eq!(set.aggregates.len(), 2);
}

#[test]
fn by_groups_spans() {
    let trace = sample_trace();
    let sets = parse("{ } | by(resource.service.name)")
        .unwrap()
        .evaluate(&TraceView::new(&trace));
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].spans, vec![0, 1, 2, 5]);
    assert_eq!(
        sets[0].by,
        vec![(
            "resource.service.name".to_owned(),
            Static::Str("frontend".into())
        )]
    );
    assert_eq!(sets[1].spans, vec![3, 4]);

    // Spans without the field form a nil group.
    let sets = parse("{ } | by(span.db.system)")
        .unwrap()
        .evaluate(&TraceView::new(&trace));
    let groups: Vec<_> = sets
        .iter()
        .map(|s| (s.by[0].1.clone(), s.spans.clone()))
        .collect();
    assert_eq!(
        groups,
        vec![
            (Static::Nil, vec![0, 1, 3, 5]),
            (Static::Str("postgresql".into()), vec![2]),
            (Static::Str("redis".into()), vec![4]),
        ]
    );

    // Stages after by act per group.
    assert_eq!(
        run("{ } | by(resource.service.name) | count() > 2", &trace),
        vec![vec![0, 1, 2, 5]]
    );
    assert_eq!(
        run(
            "{ } | by(resource.service.name) | { kind = server }",
            &trace
        ),
        vec![vec![0], vec![3]]
    );
    // Two fields.
    assert_eq!(
        run("{ } | by(resource.service.name, kind)", &trace).len(),
        5
    );
}

#[test]
fn coalesce_merges() {
    let trace = sample_trace();
    let sets = parse("{ } | by(resource.service.name) | coalesce()")
        .unwrap()
        .evaluate(&TraceView::new(&trace));
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].spans, vec![0, 1, 2, 3, 4, 5]);
    assert!(sets[0].by.is_empty());
}

#[test]
fn select_reports_values() {
    let set = one("{ status = error } | select(span.http.response.status_code, name, span:id)");
    assert_eq!(set.spans, vec![2, 3]);
    assert_eq!(
        set.selected,
        vec![
            (
                2,
                vec![
                    ("span.http.response.status_code".to_owned(), Static::Nil),
                    ("name".to_owned(), Static::Str("db query".into())),
                    ("span:id".to_owned(), Static::Str("0000000000000002".into())),
                ]
            ),
            (
                3,
                vec![
                    (
                        "span.http.response.status_code".to_owned(),
                        Static::Int(401)
                    ),
                    ("name".to_owned(), Static::Str("POST /verify".into())),
                    ("span:id".to_owned(), Static::Str("0000000000000003".into())),
                ]
            ),
        ]
    );
}

#[test]
fn pipeline_filters_and_parenthesised_pipelines() {
    check(&[
        ("{ } | { kind = client }", &[1, 2, 4]),
        ("{ kind = client } | { duration > 5ms }", &[1, 2]),
        (
            r#"({ kind = client } | count() > 2) && { name = "retry" }"#,
            &[1, 2, 4, 5],
        ),
        (
            r#"({ kind = client } | count() > 3) && { name = "retry" }"#,
            &[],
        ),
        (r#"{ } | ({ name = "GET /api" } > { })"#, &[1, 2]),
    ]);
}

/// A parent chain that loops (hostile data) must not hang the structural
/// operators.
#[test]
fn cyclic_parents_terminate() {
    let a = span(1, Some(2), "a", SpanKind::Server, "x", 0, 1);
    let b = span(2, Some(1), "b", SpanKind::Server, "x", 0, 1);
    let c = span(3, Some(3), "c", SpanKind::Server, "x", 0, 1);
    let trace: Vec<SpanRecord> = vec![a, b, c];
    for op in [">", ">>", "<", "<<", "~", "!>>", "!<<", "&>>", "&<<"] {
        let q = format!(r#"{{ name = "a" }} {op} {{ }}"#);
        let _ = run(&q, &trace);
    }
    // In the loop a -> b -> a, a is its own ancestor; the walk still ends.
    assert_eq!(matched(r#"{ name = "a" } >> { }"#, &trace), vec![0, 1]);
    // c is its own parent: not its own child.
    assert_eq!(
        matched(r#"{ name = "c" } > { }"#, &trace),
        Vec::<usize>::new()
    );
}

#[test]
fn subset_views_treat_missing_parents_as_absent() {
    let trace = sample_trace();
    let subset = vec![trace[3].clone(), trace[4].clone()];
    assert_eq!(
        matched(r#"{ name = "auth" } > { }"#, &subset),
        Vec::<usize>::new()
    );
    assert_eq!(matched(r#"{ kind = server } > { }"#, &subset), vec![1]);
    // The root is not in the view: rootName is nil.
    assert_eq!(matched("{ rootName = nil }", &subset), vec![0, 1]);
}
