//! Table test over real traces (tests/fixtures, see SOURCES.txt): OTLP/JSON
//! from Jaeger's and opentelemetry-proto's test data, and a real SmartThings
//! trace in Zipkin v2 JSON with its structure, services and 401s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tracewarden_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, SpanRecord,
    StatusCode, Str, TraceId,
};
use tracewarden_traceql::{Static, TraceView, parse};

fn read(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// OTLP/JSON int64s come as strings or numbers.
fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn any_value(v: &Value) -> AnyValue {
    if let Some(s) = v.get("stringValue") {
        AnyValue::Str(Str::from(text(s)))
    } else if let Some(b) = v.get("boolValue") {
        AnyValue::Bool(b.as_bool().unwrap_or(false))
    } else if let Some(i) = v.get("intValue") {
        AnyValue::Int(
            i.as_i64()
                .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0),
        )
    } else if let Some(d) = v.get("doubleValue") {
        AnyValue::Double(d.as_f64().unwrap_or(0.0))
    } else if let Some(b) = v.get("bytesValue") {
        // Kept as the base64 text's bytes: only presence matters here.
        AnyValue::Bytes(text(b).as_bytes().to_vec())
    } else if let Some(a) = v.get("arrayValue") {
        AnyValue::Array(
            a["values"]
                .as_array()
                .map(|vs| vs.iter().map(any_value).collect())
                .unwrap_or_default(),
        )
    } else {
        AnyValue::Empty
    }
}

fn attributes(v: &Value) -> Vec<KeyValue> {
    v.as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| KeyValue {
                    key: Str::from(text(&kv["key"])),
                    value: any_value(&kv["value"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// resourceSpans -> scopeSpans -> spans, into SpanRecords.
fn load_otlp(name: &str) -> Vec<SpanRecord> {
    let doc = read(name);
    let mut out = Vec::new();
    for rs in doc["resourceSpans"].as_array().unwrap() {
        let resource = Arc::new(Resource {
            attributes: attributes(&rs["resource"]["attributes"]),
            ..Resource::default()
        });
        for ss in rs["scopeSpans"].as_array().unwrap() {
            let scope = Arc::new(Scope {
                name: Str::from(text(&ss["scope"]["name"])),
                version: Str::from(text(&ss["scope"]["version"])),
                attributes: attributes(&ss["scope"]["attributes"]),
                ..Scope::default()
            });
            for s in ss["spans"].as_array().unwrap() {
                let mut span = Span::new(
                    TraceId::from_hex(text(&s["traceId"])).unwrap(),
                    SpanId::from_hex(text(&s["spanId"])).unwrap(),
                    text(&s["name"]),
                );
                let parent = text(&s["parentSpanId"]);
                span.parent_span_id =
                    (!parent.is_empty()).then(|| SpanId::from_hex(parent).unwrap());
                span.kind = SpanKind::from_i32(number(&s["kind"]) as i32).unwrap();
                span.start_time_unix_nano = number(&s["startTimeUnixNano"]);
                span.end_time_unix_nano = number(&s["endTimeUnixNano"]);
                span.attributes = attributes(&s["attributes"]);
                span.status.code =
                    StatusCode::from_i32(number(&s["status"]["code"]) as i32).unwrap();
                span.status.message = Str::from(text(&s["status"]["message"]));
                for e in s["events"].as_array().into_iter().flatten() {
                    span.events.push(Event {
                        time_unix_nano: number(&e["timeUnixNano"]),
                        name: Str::from(text(&e["name"])),
                        attributes: attributes(&e["attributes"]),
                        dropped_attributes_count: 0,
                    });
                }
                for l in s["links"].as_array().into_iter().flatten() {
                    span.links.push(Link {
                        trace_id: TraceId::from_hex(text(&l["traceId"])).unwrap(),
                        span_id: SpanId::from_hex(text(&l["spanId"])).unwrap(),
                        trace_state: Str::default(),
                        attributes: attributes(&l["attributes"]),
                        dropped_attributes_count: 0,
                        flags: 0,
                    });
                }
                out.push(SpanRecord {
                    resource: resource.clone(),
                    scope: scope.clone(),
                    span: span.into(),
                });
            }
        }
    }
    out
}

/// A Zipkin v2 JSON span array, minimally: ids, name, kind, times
/// (microseconds), local service as the resource, tags as string attributes.
fn load_zipkin(name: &str) -> Vec<SpanRecord> {
    let doc = read(name);
    doc.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut span = Span::new(
                TraceId::from_hex_padded(text(&s["traceId"])).unwrap(),
                SpanId::from_hex(text(&s["id"])).unwrap(),
                text(&s["name"]),
            );
            span.parent_span_id = s["parentId"].as_str().map(|p| SpanId::from_hex(p).unwrap());
            span.kind = match text(&s["kind"]) {
                "SERVER" => SpanKind::Server,
                "CLIENT" => SpanKind::Client,
                "PRODUCER" => SpanKind::Producer,
                "CONSUMER" => SpanKind::Consumer,
                _ => SpanKind::Unspecified,
            };
            span.start_time_unix_nano = number(&s["timestamp"]) * 1_000;
            span.end_time_unix_nano = span.start_time_unix_nano + number(&s["duration"]) * 1_000;
            if let Some(tags) = s["tags"].as_object() {
                for (k, v) in tags {
                    span.attributes.push(KeyValue::new(k.as_str(), text(v)));
                }
            }
            let service = text(&s["localEndpoint"]["serviceName"]);
            SpanRecord {
                resource: Arc::new(Resource {
                    attributes: vec![KeyValue::new("service.name", service)],
                    ..Resource::default()
                }),
                scope: Arc::new(Scope::default()),
                span: span.into(),
            }
        })
        .collect()
}

/// Each query with the span indices of each spanset it must yield.
fn table(spans: &[SpanRecord], cases: &[(&str, &[&[usize]])]) {
    let view = TraceView::new(spans);
    for (query, expected) in cases {
        let q = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let got: Vec<Vec<usize>> = q.evaluate(&view).into_iter().map(|s| s.spans).collect();
        let expected: Vec<Vec<usize>> = expected.iter().map(|s| s.to_vec()).collect();
        assert_eq!(got, expected, "query: {query}");
        // Pre-filters never reject a span of a result.
        for set in &got {
            for &i in set {
                assert!(
                    q.matches_span(&spans[i]),
                    "{query}: matches_span rejected {i}"
                );
            }
        }
    }
}

#[test]
fn jaeger_example_trace() {
    let spans = load_otlp("example_trace.json");
    assert_eq!(spans.len(), 5);
    table(
        &spans,
        &[
            (r#"{ name = "example-operation-1" }"#, &[&[1, 2]]),
            ("{ kind = server }", &[&[3]]),
            ("{ kind = client }", &[&[4]]),
            ("{ kind = unspecified }", &[&[0, 1, 2]]),
            ("{ } | by(resource.service.name)", &[&[0], &[1], &[2, 3, 4]]),
            (
                r#"{ resource.service.name = "example-service-1" } | count() = 3"#,
                &[&[2, 3, 4]],
            ),
            ("{ duration = 100us }", &[&[0, 1, 2, 3, 4]]),
            // Events without a name have the empty name, not none.
            ("{ event:name = nil }", &[]),
            (r#"{ event:name = "" } | count() = 5"#, &[&[0, 1, 2, 3, 4]]),
            (
                "{ event:timeSinceStart = 0ns } | count() = 5",
                &[&[0, 1, 2, 3, 4]],
            ),
            // Every span is a root: no parent/child relations.
            ("{ } > { }", &[]),
            ("{ } !> { }", &[&[0, 1, 2, 3, 4]]),
        ],
    );
}

#[test]
fn jaeger_links_scopes_and_tags() {
    let links = load_otlp("link_attributes_trace.json");
    table(
        &links,
        &[
            ("{ link.sameplacelinkattribute2 = 123 }", &[&[0]]),
            ("{ link.sameplacelinkattribute3 > 72 }", &[&[0]]),
            ("{ link.sameplacelinkattribute4 = true }", &[&[0]]),
            (r#"{ link.opentracing.ref_type = "follows_from" }"#, &[&[0]]),
            (
                r#"{ link:traceID = "000000000000000000000000000000ff" }"#,
                &[&[0]],
            ),
            (r#"{ link:spanID = "0000000000000002" }"#, &[&[0]]),
            (r#"{ link:spanID = "0000000000000003" }"#, &[]),
            ("{ link.linkblob != nil }", &[&[0]]),
            (r#"{ link.linkblob = "AAAwOQ==" }"#, &[]),
        ],
    );

    let scoped = load_otlp("scope_attributes_trace.json");
    table(
        &scoped,
        &[
            (
                r#"{ instrumentation:name = "testing-library" && instrumentation:version = "1.1.1" }"#,
                &[&[0]],
            ),
            (
                "{ instrumentation.sameplacescopeattribute2 = 123 }",
                &[&[0]],
            ),
            (
                "{ instrumentation.sameplacescopeattribute3 = 72.5 }",
                &[&[0]],
            ),
            // Scope attributes are not span attributes.
            ("{ span.sameplacescopeattribute2 = 123 }", &[]),
        ],
    );

    let tags = load_otlp("span_tags_trace.json");
    table(
        &tags,
        &[
            (
                r#"{ span.sameplacetag1 = "sameplacevalue" && span.sameplacetag2 = 123 && span.sameplacetag3 = 72.5 && span.sameplacetag4 = true }"#,
                &[&[0]],
            ),
            (r#"{ span.sameplacetag2 = "123" }"#, &[]),
            (
                "{ span.sameplacetag3 >= 72 && span.sameplacetag3 < 73 }",
                &[&[0]],
            ),
            ("{ span.blob != nil }", &[&[0]]),
            ("{ duration = 7us }", &[&[0]]),
        ],
    );

    let multi = load_otlp("multi_spot_tags_trace.json");
    table(
        &multi,
        &[
            // Unscoped falls back to the resource attribute.
            (r#"{ .sameplacetag1 = "sameplacevalue" }"#, &[&[0]]),
            (r#"{ span.sameplacetag1 = "sameplacevalue" }"#, &[]),
            (
                r#"{ resource.sameplacetag1 = "sameplacevalue" && .sameplacetag3 = 72.5 }"#,
                &[&[0]],
            ),
        ],
    );

    let proto = load_otlp("otlp-proto-example-trace.json");
    table(
        &proto,
        &[
            (
                r#"{ span:id = "eee19b7ec3c1b174" && kind = server }"#,
                &[&[0]],
            ),
            (r#"{ span:parentID = "EEE19B7EC3C1B173" }"#, &[&[0]]),
            // Its parent is not in the file: there is no root.
            ("{ rootName = nil && traceDuration = 1s }", &[&[0]]),
            (
                r#"{ span.my.span.attr = "some value" && resource.service.name = "my.service" }"#,
                &[&[0]],
            ),
            (
                r#"{ instrumentation.my.scope.attribute =~ "some .*" }"#,
                &[&[0]],
            ),
        ],
    );
}

#[test]
fn smartthings_oauth_trace() {
    let spans = load_zipkin("smartthings-oauth-authorization.json");
    assert_eq!(spans.len(), 175);
    let ancestors_of_401: &[usize] = &[161, 162, 167, 168, 169, 171, 172, 174];
    table(
        &spans,
        &[
            (r#"{ span.http.status_code = "401" }"#, &[&[159, 160]]),
            // Zipkin tags are strings: an integer never equals them.
            ("{ span.http.status_code = 401 }", &[]),
            (
                r#"{ kind = server && resource.service.name = "stlogin" } >> { span.http.status_code = "401" }"#,
                &[&[159, 160]],
            ),
            (
                r#"{ span.http.status_code = "401" } << { }"#,
                &[ancestors_of_401],
            ),
            (
                r#"{ rootServiceName = "datamgmt" && rootName = "get /oauth/authorize" && span.http.status_code = "401" }"#,
                &[&[159, 160]],
            ),
            (
                r#"{ span.user.email = "joe@example.com" } | by(resource.service.name)"#,
                &[&[29, 59, 73, 87, 101, 115, 130]],
            ),
            (
                r#"{ span.cassandra.query =~ "(?s).*INSERT INTO auth\\.oauth_access_token .*" }"#,
                &[&[0]],
            ),
        ],
    );

    let view = TraceView::new(&spans);
    let count = |query: &str| -> Vec<(String, Static)> {
        let sets = parse(query).unwrap().evaluate(&view);
        assert_eq!(sets.len(), 1, "{query}");
        sets[0].aggregates.clone()
    };
    assert_eq!(
        count(r#"{ resource.service.name = "auth" } | count() > 50"#),
        vec![("count()".to_owned(), Static::Int(73))]
    );
    assert_eq!(
        count(r#"{ resource.service.name = "auth" && kind = server } | count() = 22"#),
        vec![("count()".to_owned(), Static::Int(22))]
    );
    assert_eq!(
        count(
            r#"{ kind = server && resource.service.name = "datamgmt" } > { resource.service.name = "auth" } | count() = 20"#
        ),
        vec![("count()".to_owned(), Static::Int(20))]
    );
    assert_eq!(
        count("{ } | max(duration) = 902201us"),
        vec![("max(duration)".to_owned(), Static::Duration(902_201_000))]
    );
    // The root and the 401 are in different services: the trace matches
    // a query for a datamgmt root with an auth failure below it.
    let q = parse(
        r#"{ rootServiceName = "datamgmt" } && { resource.service.name = "auth" && span.http.status_code = "401" }"#,
    )
    .unwrap();
    assert!(q.needs_whole_trace());
    assert_eq!(q.evaluate(&view).len(), 1);
}
