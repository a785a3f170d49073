//! `GET /api/v1/search` and Tempo's `GET /api/search` through the router,
//! over a store fed by the pipeline (normalisation included).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tracewarden_ingest::BatchSink;
use tracewarden_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    TraceId,
};
use tracewarden_server::Pipeline;
use tracewarden_server::api::{ApiState, router};
use tracewarden_store::{Store, StoreOptions};

/// 2026-11-23T17:00:00Z in Unix seconds.
const T0: u64 = 1_795_453_200;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Trace `n`: a gateway root span `POST /login` answered `status`, from
/// `address`, calling the auth service.
fn login(n: u8, status: i64, address: &str) -> Batch {
    let trace_id = TraceId::from_bytes([n; 16]);
    let start = (T0 + u64::from(n)) * 1_000_000_000;
    let mut root = Span::new(
        trace_id,
        SpanId::from_bytes([n, 1, 0, 0, 0, 0, 0, 0]),
        "POST /login",
    );
    root.kind = SpanKind::Server;
    root.start_time_unix_nano = start;
    root.end_time_unix_nano = start + 30_000_000;
    // Old convention: the pipeline renames it to http.response.status_code.
    root.attributes
        .push(KeyValue::new("http.status_code", AnyValue::Int(status)));
    root.attributes
        .push(KeyValue::new("client.address", address));
    let mut child = Span::new(
        trace_id,
        SpanId::from_bytes([n, 2, 0, 0, 0, 0, 0, 0]),
        "check password",
    );
    child.parent_span_id = Some(root.span_id);
    child.start_time_unix_nano = start + 1_000_000;
    child.end_time_unix_nano = start + 20_000_000;
    let resource = |service: &str| {
        Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", service)],
            ..Resource::default()
        })
    };
    let scope = Arc::new(Scope::default());
    Batch {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("gateway"),
                scope_spans: vec![ScopeSpans {
                    scope: scope.clone(),
                    spans: vec![root],
                }],
            },
            ResourceSpans {
                resource: resource("auth"),
                scope_spans: vec![ScopeSpans {
                    scope,
                    spans: vec![child],
                }],
            },
        ],
        resource_logs: Vec::new(),
    }
}

async fn app(dir: &std::path::Path) -> axum::Router {
    let pipeline = Arc::new(Pipeline::new());
    let (store, _) = Store::open(StoreOptions::new(dir)).unwrap();
    pipeline.set_store(Arc::new(store));
    for (n, status, address) in [
        (1, 401, "198.51.100.9"),
        (2, 401, "198.51.100.9"),
        (3, 200, "203.0.113.7"),
    ] {
        pipeline.submit(login(n, status, address)).await.unwrap();
    }
    router(ApiState::new(pipeline))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn native_search_returns_matching_spans_with_all_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let q = encode("{ span.http.response.status_code = 401 } | by(span.client.address)");
    let (status, body) = get(
        &app,
        &format!("/api/v1/search?q={q}&start={T0}&end={}", T0 + 60),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let traces = body["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    // Newest first.
    assert_eq!(traces[0]["traceId"], "02020202020202020202020202020202");
    assert_eq!(traces[1]["traceId"], "01010101010101010101010101010101");
    let trace = &traces[0];
    assert_eq!(trace["rootServiceName"], "gateway");
    assert_eq!(trace["rootSpanName"], "POST /login");
    assert_eq!(trace["spanCount"], 2);
    assert_eq!(trace["durationNanos"], "30000000");
    assert_eq!(
        trace["startTimeUnixNano"],
        ((T0 + 2) * 1_000_000_000).to_string()
    );
    let set = &trace["spanSets"][0];
    assert_eq!(set["matched"], 1);
    let by: Vec<&Value> = set["attributes"].as_object().unwrap().values().collect();
    assert_eq!(by, [&Value::from("198.51.100.9")]);
    let span = &set["spans"][0];
    assert_eq!(span["name"], "POST /login");
    assert_eq!(span["attributes"]["http.response.status_code"], 401);
    assert_eq!(span["originalAttributes"]["http.status_code"], 401);
    assert_eq!(span["resource"]["attributes"]["service.name"], "gateway");
    assert!(body["metrics"]["inspectedSpans"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn tempo_search_has_tempos_shape() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let q = encode(r#"{ resource.service.name = "auth" } | select(span:duration)"#);
    let (status, body) = get(
        &app,
        &format!("/api/search?q={q}&start={T0}&end={}&spss=1", T0 + 60),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let traces = body["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 3);
    let trace = &traces[0];
    assert_eq!(trace["traceID"], "03030303030303030303030303030303");
    assert_eq!(trace["rootServiceName"], "gateway");
    assert_eq!(trace["rootTraceName"], "POST /login");
    assert_eq!(
        trace["startTimeUnixNano"],
        ((T0 + 3) * 1_000_000_000).to_string()
    );
    assert_eq!(trace["durationMs"], 30);
    assert_eq!(trace["serviceStats"]["gateway"]["spanCount"], 1);
    assert_eq!(trace["serviceStats"]["auth"]["spanCount"], 1);
    let set = &trace["spanSets"][0];
    assert_eq!(set, &trace["spanSet"]);
    assert_eq!(set["matched"], 1);
    let span = &set["spans"][0];
    assert_eq!(span["spanID"], "0302000000000000");
    assert_eq!(span["name"], "check password");
    assert_eq!(span["durationNanos"], "19000000");
    let attributes = span["attributes"].as_array().unwrap();
    assert!(attributes.contains(&serde_json::json!(
        {"key": "service.name", "value": {"stringValue": "auth"}}
    )));
    assert!(body["metrics"]["inspectedTraces"].is_u64());
}

#[tokio::test]
async fn tempo_tags_search_and_duration_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let tags = encode("client.address=198.51.100.9 http.response.status_code=401");
    let (status, body) = get(&app, &format!("/api/search?tags={tags}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["traces"].as_array().unwrap().len(), 2);
    let (_, body) = get(&app, "/api/search?minDuration=1s").await;
    assert_eq!(body["traces"].as_array().unwrap().len(), 0);
    let (_, body) = get(&app, "/api/search?maxDuration=1s&limit=2").await;
    assert_eq!(body["traces"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_requests_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    for (uri, expected) in [
        (
            format!("/api/v1/search?q={}", encode("{ span.a = }")),
            "invalid TraceQL",
        ),
        (format!("/api/search?q={}", encode("{ } | rate()")), "rate"),
        ("/api/v1/search?limit=0".to_string(), "limit"),
        ("/api/v1/search?start=soon".to_string(), "not a time"),
        ("/api/search?minDuration=quick".to_string(), "quick"),
        ("/api/search?tags=novalue".to_string(), "logfmt"),
    ] {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{uri}: {message}");
    }
}
