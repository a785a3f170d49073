//! The Tempo-compatible API through the router: trace by id (JSON and
//! protobuf, v1 and v2), tags and tag values, probes, and errors. Data goes in
//! as an OTLP protobuf request, through tracewarden-ingest's decoder and the
//! pipeline (normalisation, WAL), like a real export.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure should panic with the value

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, TracesData, span,
};
use prost::Message as _;
use serde_json::{Value, json};
use tower::ServiceExt;
use tracewarden_ingest::{BatchSink, Limits};
use tracewarden_server::Pipeline;
use tracewarden_server::api::{ApiState, router};
use tracewarden_store::{Store, StoreOptions, WalOptions};

const TRACE: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const TRACE_HEX: &str = "5b8efff798038103d269b633813fc60c";
/// A trace id with 64 significant bits, as older tracers send.
const SHORT_TRACE: [u8; 16] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0d,
];
/// 2023-11-14T22:13:20Z, in seconds; every span starts in the minute after.
const T: u64 = 1_700_000_000;
const RANGE: &str = "start=1699999990&end=1700000100";

struct Response {
    status: StatusCode,
    content_type: String,
    body: Bytes,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get_with(app: &axum::Router, uri: &str, accept: Option<&str>) -> Response {
    let mut request = Request::builder().uri(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Response {
        status,
        content_type,
        body,
    }
}

async fn get(app: &axum::Router, uri: &str) -> Response {
    get_with(app, uri, None).await
}

fn string(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn nanos(seconds_after_t: u64, extra: u64) -> u64 {
    (T + seconds_after_t) * 1_000_000_000 + extra
}

/// Two services, three scopes, spans using every OTLP span field and every
/// kind of attribute value. Attribute names are current semantic
/// conventions, so normalisation leaves them as they are and what comes back
/// must equal what was sent.
fn sent() -> TracesData {
    let root = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![1; 8],
        trace_state: "vendor=1".into(),
        flags: 0x101,
        name: "POST /login".into(),
        kind: 2,
        start_time_unix_nano: nanos(1, 0),
        end_time_unix_nano: nanos(1, 250_000_000),
        attributes: vec![
            string("http.request.method", "POST"),
            kv("http.response.status_code", any_value::Value::IntValue(401)),
            kv("app.ratio", any_value::Value::DoubleValue(0.75)),
            kv("app.cached", any_value::Value::BoolValue(false)),
            kv(
                "app.token",
                any_value::Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef]),
            ),
            kv(
                "app.roles",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::StringValue("admin".into())),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(7)),
                        },
                    ],
                }),
            ),
            kv(
                "app.user",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![
                        string("name", "alice"),
                        kv("id", any_value::Value::IntValue(42)),
                    ],
                }),
            ),
            KeyValue {
                key: "app.unset".into(),
                value: Some(AnyValue { value: None }),
                ..KeyValue::default()
            },
        ],
        dropped_attributes_count: 3,
        events: vec![span::Event {
            time_unix_nano: nanos(1, 100),
            name: "exception".into(),
            attributes: vec![string("exception.type", "AuthError")],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 2,
        links: vec![span::Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: "other=2".into(),
            attributes: vec![string("link.kind", "follows")],
            dropped_attributes_count: 4,
            flags: 0x100,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "invalid token".into(),
            code: 2,
        }),
        ..Span::default()
    };
    let handler = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![2; 8],
        parent_span_id: vec![1; 8],
        name: "check password".into(),
        kind: 1,
        start_time_unix_nano: nanos(1, 10),
        end_time_unix_nano: nanos(1, 20),
        status: Some(Status::default()),
        ..Span::default()
    };
    let query = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![3; 8],
        parent_span_id: vec![2; 8],
        name: "SELECT users".into(),
        kind: 3,
        start_time_unix_nano: nanos(1, 30),
        end_time_unix_nano: nanos(1, 40),
        attributes: vec![string("db.system.name", "postgresql")],
        status: Some(Status {
            message: String::new(),
            code: 1,
        }),
        ..Span::default()
    };
    let db_side = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![4; 8],
        parent_span_id: vec![3; 8],
        name: "query".into(),
        kind: 2,
        start_time_unix_nano: nanos(1, 35),
        end_time_unix_nano: nanos(1, 38),
        status: Some(Status::default()),
        ..Span::default()
    };
    TracesData {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        string("service.name", "gateway"),
                        string("deployment.environment.name", "prod"),
                    ],
                    dropped_attributes_count: 1,
                    ..Resource::default()
                }),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "http-server".into(),
                            version: "1.4.0".into(),
                            attributes: vec![string("scope.team", "identity")],
                            dropped_attributes_count: 0,
                        }),
                        spans: vec![root, handler],
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    },
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "sql-client".into(),
                            ..InstrumentationScope::default()
                        }),
                        spans: vec![query],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
            },
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "users-db")],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "db-server".into(),
                        ..InstrumentationScope::default()
                    }),
                    spans: vec![db_side],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

/// A second trace with a 64-bit id and a legacy attribute name.
fn legacy() -> TracesData {
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", "legacy-app")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope::default()),
                spans: vec![Span {
                    trace_id: SHORT_TRACE.to_vec(),
                    span_id: vec![5; 8],
                    name: "GET /health".into(),
                    kind: 2,
                    start_time_unix_nano: nanos(2, 0),
                    end_time_unix_nano: nanos(2, 5),
                    attributes: vec![kv("http.status_code", any_value::Value::IntValue(200))],
                    ..Span::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Sends OTLP protobuf through the ingest decoder and the pipeline.
async fn ingest(pipeline: &Pipeline, data: &TracesData) {
    // `TracesData` and `ExportTraceServiceRequest` are the same message on the wire.
    let decoded =
        tracewarden_ingest::otlp::proto::decode_traces(&data.encode_to_vec(), &Limits::default())
            .unwrap();
    assert_eq!(decoded.rejected_spans, 0, "{:?}", decoded.messages());
    pipeline.submit(decoded.batch).await.unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    pipeline: Arc<Pipeline>,
    store: Arc<Store>,
    app: axum::Router,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Pipeline::new());
    let app = router(ApiState::new(pipeline.clone()));
    let (store, _report) = Store::open(StoreOptions {
        wal: WalOptions::default(),
        ..StoreOptions::new(dir.path().to_path_buf())
    })
    .unwrap();
    let store = Arc::new(store);
    pipeline.set_store(store.clone());
    ingest(&pipeline, &sent()).await;
    ingest(&pipeline, &legacy()).await;
    Fixture {
        _dir: dir,
        pipeline,
        store,
        app,
    }
}

fn attribute<'a>(attributes: &'a Value, key: &str) -> &'a Value {
    attributes
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
        .unwrap_or_else(|| panic!("no attribute {key} in {attributes}"))
}

#[tokio::test]
async fn trace_by_id_json_has_tempos_shape() {
    let f = fixture().await;
    let response = get(&f.app, &format!("/api/traces/{}", TRACE_HEX.to_uppercase())).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.content_type, "application/json");
    let body = response.json();
    // Tempo's v1 answer: {"batches": [ResourceSpans]}, each with resource
    // attributes, scopeSpans with the scope and spans.
    let batches = body["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2, "one batch per service: {body}");
    let gateway = &batches[0];
    assert_eq!(
        attribute(&gateway["resource"]["attributes"], "service.name"),
        &json!({ "stringValue": "gateway" })
    );
    assert_eq!(gateway["resource"]["droppedAttributesCount"], 1);
    assert_eq!(
        gateway["schemaUrl"],
        "https://opentelemetry.io/schemas/1.27.0"
    );
    let scopes = gateway["scopeSpans"].as_array().unwrap();
    assert_eq!(scopes.len(), 2);
    assert_eq!(scopes[0]["scope"]["name"], "http-server");
    assert_eq!(scopes[0]["scope"]["version"], "1.4.0");
    assert_eq!(
        attribute(&scopes[0]["scope"]["attributes"], "scope.team"),
        &json!({ "stringValue": "identity" })
    );
    assert_eq!(
        scopes[0]["schemaUrl"],
        "https://opentelemetry.io/schemas/1.26.0"
    );
    assert_eq!(scopes[1]["scope"]["name"], "sql-client");

    let root = &scopes[0]["spans"][0];
    assert_eq!(root["traceId"], TRACE_HEX);
    assert_eq!(root["spanId"], "0101010101010101");
    assert!(
        root.get("parentSpanId").is_none(),
        "a root has no parent: {root}"
    );
    assert_eq!(root["traceState"], "vendor=1");
    assert_eq!(root["flags"], 0x101);
    assert_eq!(root["name"], "POST /login");
    assert_eq!(root["kind"], 2, "SPAN_KIND_SERVER as an integer");
    assert_eq!(root["startTimeUnixNano"], nanos(1, 0).to_string());
    assert_eq!(root["endTimeUnixNano"], nanos(1, 250_000_000).to_string());
    let attributes = &root["attributes"];
    assert_eq!(
        attribute(attributes, "http.request.method"),
        &json!({ "stringValue": "POST" })
    );
    assert_eq!(
        attribute(attributes, "http.response.status_code"),
        &json!({ "intValue": "401" })
    );
    assert_eq!(
        attribute(attributes, "app.ratio"),
        &json!({ "doubleValue": 0.75 })
    );
    assert_eq!(
        attribute(attributes, "app.cached"),
        &json!({ "boolValue": false })
    );
    assert_eq!(
        attribute(attributes, "app.token"),
        &json!({ "bytesValue": "3q2+7w==" })
    );
    assert_eq!(
        attribute(attributes, "app.roles"),
        &json!({ "arrayValue": { "values": [ { "stringValue": "admin" }, { "intValue": "7" } ] } })
    );
    assert_eq!(
        attribute(attributes, "app.user"),
        &json!({ "kvlistValue": { "values": [
            { "key": "name", "value": { "stringValue": "alice" } },
            { "key": "id", "value": { "intValue": "42" } }
        ] } })
    );
    assert_eq!(attribute(attributes, "app.unset"), &json!({}));
    assert_eq!(root["droppedAttributesCount"], 3);
    assert_eq!(
        root["events"],
        json!([{
            "timeUnixNano": nanos(1, 100).to_string(),
            "name": "exception",
            "attributes": [ { "key": "exception.type", "value": { "stringValue": "AuthError" } } ],
            "droppedAttributesCount": 1
        }])
    );
    assert_eq!(root["droppedEventsCount"], 2);
    assert_eq!(
        root["links"],
        json!([{
            "traceId": "09090909090909090909090909090909",
            "spanId": "0808080808080808",
            "traceState": "other=2",
            "attributes": [ { "key": "link.kind", "value": { "stringValue": "follows" } } ],
            "droppedAttributesCount": 4,
            "flags": 0x100
        }])
    );
    assert_eq!(root["droppedLinksCount"], 5);
    assert_eq!(
        root["status"],
        json!({ "code": 2, "message": "invalid token" })
    );

    let handler = &scopes[0]["spans"][1];
    assert_eq!(handler["parentSpanId"], "0101010101010101");
    assert_eq!(handler["kind"], 1);
    assert_eq!(handler["status"], json!({}), "an unset status is empty");
    assert_eq!(batches[1]["scopeSpans"][0]["spans"][0]["name"], "query");

    // v2: the same trace inside {"trace": {"resourceSpans": ...}}.
    let v2 = get(&f.app, &format!("/api/v2/traces/{TRACE_HEX}")).await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.text());
    let v2 = v2.json();
    assert_eq!(v2["trace"]["resourceSpans"], body["batches"]);
    assert!(
        v2.get("status").is_none(),
        "COMPLETE is proto3's default: {v2}"
    );
}

#[tokio::test]
async fn trace_by_id_protobuf_equals_what_was_sent() {
    let f = fixture().await;
    let response = get_with(
        &f.app,
        &format!("/api/traces/{TRACE_HEX}?start=1699999000&end=1700001000"),
        Some("application/protobuf"),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.content_type, "application/protobuf");
    let received = TracesData::decode(response.body.as_ref()).unwrap();
    assert_eq!(received, sent());

    /// Tempo's `TraceByIDResponse`, written independently of the server's.
    #[derive(Clone, PartialEq, prost::Message)]
    struct TraceByIdResponse {
        #[prost(message, optional, tag = "1")]
        trace: Option<TracesData>,
        #[prost(int32, tag = "3")]
        status: i32,
        #[prost(string, tag = "4")]
        message: String,
    }
    let v2 = get_with(
        &f.app,
        &format!("/api/v2/traces/{TRACE_HEX}"),
        Some("application/protobuf"),
    )
    .await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.text());
    let v2 = TraceByIdResponse::decode(v2.body.as_ref()).unwrap();
    assert_eq!(v2.trace, Some(sent()));
    assert_eq!(v2.status, 0, "COMPLETE");
}

#[tokio::test]
async fn otlp_json_round_trips_through_the_ingest_decoder() {
    let f = fixture().await;
    let stored = f
        .store
        .trace(tracewarden_model::TraceId::from_bytes(TRACE))
        .unwrap();
    for (uri, pointer) in [
        (format!("/api/traces/{TRACE_HEX}"), "/batches"),
        (
            format!("/api/v2/traces/{TRACE_HEX}"),
            "/trace/resourceSpans",
        ),
    ] {
        let body = get(&f.app, &uri).await.json();
        let request = json!({ "resourceSpans": body.pointer(pointer).unwrap() });
        let decoded = tracewarden_ingest::otlp::json::decode_traces(
            request.to_string().as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(decoded.rejected_spans, 0, "{:?}", decoded.messages());
        assert_eq!(decoded.warnings, 0, "{:?}", decoded.messages());
        let mut decoded: Vec<_> = decoded.batch.spans().collect();
        assert_eq!(decoded.len(), stored.spans.len());
        decoded.sort_by_key(|(_, _, s)| (s.start_time_unix_nano, s.span_id));
        for ((resource, scope, span), record) in decoded.iter().zip(&stored.spans) {
            assert_eq!(***resource, *record.resource);
            assert_eq!(***scope, *record.scope);
            assert_eq!(*span, &*record.span, "{uri}");
        }
    }
}

#[tokio::test]
async fn legacy_names_come_back_normalised_and_short_ids_are_padded() {
    let f = fixture().await;
    // Tempo reads ids shorter than 32 digits as left-padded with zeroes.
    let response = get(&f.app, "/api/traces/d269b633813fc60d").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let span = &response.json()["batches"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "0000000000000000d269b633813fc60d");
    assert_eq!(
        attribute(&span["attributes"], "http.response.status_code"),
        &json!({ "intValue": "200" })
    );
    let keys: Vec<&str> = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|kv| kv["key"].as_str())
        .collect();
    assert!(!keys.contains(&"http.status_code"), "{keys:?}");
}

#[tokio::test]
async fn tags_and_tag_values() {
    let f = fixture().await;
    let names = get(&f.app, &format!("/api/search/tags?{RANGE}")).await;
    assert_eq!(names.status, StatusCode::OK, "{}", names.text());
    let names = names.json();
    let tag_names: Vec<&str> = names["tagNames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "app.roles",
        "db.system.name",
        "deployment.environment.name",
        "http.response.status_code",
        "service.name",
    ] {
        assert!(tag_names.contains(&expected), "{expected} in {tag_names:?}");
    }
    assert!(
        !tag_names.contains(&"http.status_code"),
        "only current names"
    );
    assert!(
        !tag_names.contains(&"name"),
        "no intrinsics by default in v1"
    );
    let mut sorted = tag_names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(tag_names, sorted, "sorted and distinct");

    let v2 = get(&f.app, &format!("/api/v2/search/tags?{RANGE}"))
        .await
        .json();
    let scopes = v2["scopes"].as_array().unwrap();
    let scope_names: Vec<&str> = scopes.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        scope_names,
        [
            "span",
            "resource",
            "intrinsic",
            "event",
            "link",
            "instrumentation"
        ]
    );
    assert_eq!(
        scopes[1]["tags"],
        json!(["deployment.environment.name", "service.name"])
    );
    assert_eq!(scopes[3]["tags"], json!(["exception.type"]));
    assert_eq!(scopes[4]["tags"], json!(["link.kind"]));
    assert_eq!(scopes[5]["tags"], json!(["scope.team"]));
    let only = get(
        &f.app,
        &format!("/api/v2/search/tags?scope=resource&limit=1&{RANGE}"),
    )
    .await
    .json();
    assert_eq!(
        only,
        json!({ "scopes": [ { "name": "resource", "tags": ["service.name"] } ] })
    );

    let services = get(
        &f.app,
        &format!("/api/search/tag/service.name/values?{RANGE}"),
    )
    .await
    .json();
    assert_eq!(
        services,
        json!({ "tagValues": ["gateway", "legacy-app", "users-db"] })
    );
    let typed = get(
        &f.app,
        &format!("/api/v2/search/tag/span.http.response.status_code/values?{RANGE}"),
    )
    .await
    .json();
    assert_eq!(
        typed,
        json!({ "tagValues": [ { "type": "int", "value": "200" }, { "type": "int", "value": "401" } ] })
    );
    let resource = get(
        &f.app,
        &format!("/api/v2/search/tag/resource.service.name/values?q=%7B%7D&{RANGE}"),
    )
    .await
    .json();
    assert_eq!(
        resource["tagValues"][0],
        json!({ "type": "string", "value": "gateway" })
    );
    // Grafana sends the query being edited as `q`: only spans passing it
    // count, so the values offered narrow down.
    let narrowed = get(
        &f.app,
        &format!(
            "/api/v2/search/tag/span.http.response.status_code/values?q=%7B%20resource.service.name%20%3D%20%22gateway%22%20%26%26%20span.http.response.status_code%20%3E%20300%20%7D&{RANGE}"
        ),
    )
    .await
    .json();
    assert_eq!(
        narrowed,
        json!({ "tagValues": [ { "type": "int", "value": "401" } ] })
    );
    let bad = get(
        &f.app,
        &format!("/api/v2/search/tag/name/values?q=%7B%20.a%20%3D%20%7D&{RANGE}"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let status = get(&f.app, &format!("/api/v2/search/tag/status/values?{RANGE}"))
        .await
        .json();
    assert_eq!(
        status,
        json!({ "tagValues": [
            { "type": "keyword", "value": "error" },
            { "type": "keyword", "value": "ok" },
            { "type": "keyword", "value": "unset" }
        ] })
    );
    let names = get(&f.app, &format!("/api/v2/search/tag/name/values?{RANGE}"))
        .await
        .json();
    assert_eq!(names["tagValues"].as_array().unwrap().len(), 5);
    let roots = get(
        &f.app,
        &format!("/api/v2/search/tag/rootServiceName/values?{RANGE}"),
    )
    .await
    .json();
    assert_eq!(
        roots,
        json!({ "tagValues": [
            { "type": "string", "value": "gateway" },
            { "type": "string", "value": "legacy-app" }
        ] })
    );

    // A range without the data: nothing.
    let empty = get(
        &f.app,
        "/api/search/tag/service.name/values?start=1600000000&end=1600000100",
    )
    .await
    .json();
    assert_eq!(empty, json!({ "tagValues": [] }));
    // The default range is the last hour, and these spans are from 2023.
    let empty = get(&f.app, "/api/v2/search/tag/resource.service.name/values")
        .await
        .json();
    assert_eq!(empty, json!({ "tagValues": [] }));
}

#[tokio::test]
async fn bad_requests_are_plain_text() {
    let f = fixture().await;
    for (uri, status, needle) in [
        (
            "/api/traces/zz8efff798038103d269b633813fc60c",
            400,
            "hex characters",
        ),
        (
            "/api/v2/traces/5b8efff798038103d269b633813fc60c00",
            400,
            "128 bits",
        ),
        ("/api/traces/00000000000000000000000000000000", 400, "zero"),
        (
            "/api/traces/00000000000000000000000000000001",
            404,
            "not found",
        ),
        (
            "/api/v2/traces/00000000000000000000000000000001",
            404,
            "not found",
        ),
        (
            &format!("/api/traces/{TRACE_HEX}?start=10&end=5"),
            400,
            "start",
        ),
        ("/api/search/tags?scope=spans", 400, "invalid scope"),
        ("/api/v2/search/tags?scope=nope", 400, "invalid scope"),
        ("/api/v2/search/tag/http.route/values", 400, "tagName"),
        ("/api/search/tags?limit=many", 400, "limit"),
        ("/api/search/tags?start=yesterday", 400, "start"),
    ] {
        let response = get(&f.app, uri).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{uri}: {}",
            response.text()
        );
        assert!(
            response.content_type.starts_with("text/plain"),
            "{uri}: {}",
            response.content_type
        );
        assert!(
            response.text().contains(needle),
            "{uri}: {}",
            response.text()
        );
    }
    // The protobuf client gets the same plain-text 404.
    let response = get_with(
        &f.app,
        "/api/v2/traces/00000000000000000000000000000001",
        Some("application/protobuf"),
    )
    .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.content_type.starts_with("text/plain"));
    drop(f.pipeline);
}

#[tokio::test]
async fn probes_and_buildinfo() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Pipeline::new());
    let app = router(ApiState::new(pipeline.clone()));

    let echo = get(&app, "/api/echo").await;
    assert_eq!(echo.status, StatusCode::OK);
    assert_eq!(echo.text(), "echo");
    assert!(echo.content_type.starts_with("text/plain"));

    // Before the WAL replay is done: not ready, and the data endpoints say so.
    let ready = get(&app, "/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().contains("not ready"), "{}", ready.text());
    for uri in [
        &format!("/api/traces/{TRACE_HEX}"),
        "/api/search/tags",
        "/api/v2/search/tag/name/values",
    ] {
        assert_eq!(
            get(&app, uri).await.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{uri}"
        );
    }

    let (store, _) = Store::open(StoreOptions {
        wal: WalOptions::default(),
        ..StoreOptions::new(dir.path().to_path_buf())
    })
    .unwrap();
    pipeline.set_store(Arc::new(store));
    let ready = get(&app, "/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.text(), "ready");

    let info = get(&app, "/api/status/buildinfo").await;
    assert_eq!(info.status, StatusCode::OK);
    let info = info.json();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    for field in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(info[field].is_string(), "{field} in {info}");
    }
}
