//! The API router without a socket: trace lookups, errors, probes.
#![allow(clippy::unwrap_used)] // test helpers: a failure should panic with the value

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tracewarden_ingest::BatchSink;
use tracewarden_model::{
    AnyValue, Batch, KeyValue, LogRecord, Resource, ResourceLogs, ResourceSpans, Scope, ScopeLogs,
    ScopeSpans, Span, SpanId, SpanKind, TraceId,
};
use tracewarden_server::Pipeline;
use tracewarden_server::api::{ApiState, router};
use tracewarden_store::{Store, StoreOptions, WalOptions};

const TRACE: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];

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

fn batch() -> Batch {
    let trace_id = TraceId::from_bytes(TRACE);
    let resource = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", AnyValue::from("gateway"))],
        ..Resource::default()
    });
    let scope = Arc::new(Scope {
        name: "test".into(),
        ..Scope::default()
    });
    let mut root = Span::new(trace_id, SpanId::from_bytes([1; 8]), "GET /login");
    root.kind = SpanKind::Server;
    root.start_time_unix_nano = 2_000;
    root.end_time_unix_nano = 5_000;
    root.attributes
        .push(KeyValue::new("http.status_code", AnyValue::Int(401)));
    let mut child = Span::new(trace_id, SpanId::from_bytes([2; 8]), "SELECT users");
    child.parent_span_id = Some(root.span_id);
    child.kind = SpanKind::Client;
    child.start_time_unix_nano = 1_000; // earlier start: the API orders by start time
    child.end_time_unix_nano = 1_500;
    let log = LogRecord {
        time_unix_nano: 3_000,
        severity_number: 13,
        severity_text: "WARN".into(),
        body: AnyValue::from("invalid token"),
        trace_id: Some(trace_id),
        span_id: Some(root.span_id),
        ..LogRecord::default()
    };
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                scope: scope.clone(),
                spans: vec![root, child],
            }],
        }],
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs {
                scope,
                log_records: vec![log],
            }],
        }],
    }
}

#[tokio::test]
async fn trace_round_trip_through_pipeline_and_api() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Pipeline::new());
    let app = router(ApiState::new(pipeline.clone()));

    // Before the WAL replay is done: not ready, receivers get "unavailable".
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(pipeline.submit(batch()).await.is_err());

    let (store, _report) = Store::open(StoreOptions {
        wal: WalOptions::default(),
        ..StoreOptions::new(dir.path().to_path_buf())
    })
    .unwrap();
    pipeline.set_store(Arc::new(store));
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);

    pipeline.submit(batch()).await.unwrap();
    let (status, body) = get(&app, "/api/v1/traces/5B8EFFF798038103D269B633813FC60C").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(body["spanCount"], 2);
    assert_eq!(body["incomplete"], false);
    let spans = body["spans"].as_array().unwrap();
    assert_eq!(
        spans[0]["name"], "SELECT users",
        "spans are ordered by start time"
    );
    assert_eq!(spans[0]["parentSpanId"], "0101010101010101");
    assert_eq!(spans[0]["kind"], "client");
    let root = &spans[1];
    assert_eq!(root["serviceName"], "gateway");
    assert_eq!(root["resource"]["attributes"]["service.name"], "gateway");
    assert_eq!(root["scope"]["name"], "test");
    assert_eq!(root["startTimeUnixNano"], "2000");
    assert_eq!(root["durationNanos"], "3000");
    // Normalised by the pipeline, original kept.
    assert_eq!(root["attributes"]["http.response.status_code"], 401);
    assert_eq!(root["originalAttributes"]["http.status_code"], 401);
    assert!(root["attributes"].get("http.status_code").is_none());
    let logs = body["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["body"], "invalid token");
    assert_eq!(logs[0]["spanId"], "0101010101010101");
    assert_eq!(logs[0]["severityText"], "WARN");
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Pipeline::new());
    let app = router(ApiState::new(pipeline.clone()));
    let (status, body) = get(&app, "/api/v1/traces/5b8efff798038103d269b633813fc60c").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    let (store, _) = Store::open(StoreOptions {
        wal: WalOptions::default(),
        ..StoreOptions::new(dir.path().to_path_buf())
    })
    .unwrap();
    pipeline.set_store(Arc::new(store));
    let (status, body) = get(&app, "/api/v1/traces/00000000000000000000000000000001").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{body}"
    );

    // Shorter ids are Zipkin's 64-bit ones, left-padded (as Tempo does).
    let (status, body) = get(&app, "/api/v1/traces/d269b633813fc60c").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("0000000000000000d269b633813fc60c"),
        "{body}"
    );

    for bad in [
        "5b8efff798038103d269b633813fc60c00",
        "zz8efff798038103d269b633813fc60c",
        "00000000000000000000000000000000",
    ] {
        let (status, body) = get(&app, &format!("/api/v1/traces/{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("trace id"),
            "{bad}: {body}"
        );
    }
    let (status, body) = get(&app, "/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/nothing")
    );
}

#[tokio::test]
async fn a_trace_with_an_unreadable_segment_is_marked_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Pipeline::new());
    let app = router(ApiState::new(pipeline.clone()));
    let (store, _) = Store::open(StoreOptions {
        lifecycle_thread: false,
        ..StoreOptions::new(dir.path().to_path_buf())
    })
    .unwrap();
    let store = Arc::new(store);
    pipeline.set_store(Arc::clone(&store));
    pipeline.submit(batch()).await.unwrap();
    store.flush().unwrap();
    // A later span of the same trace stays in memory.
    let mut late = batch();
    late.resource_logs.clear();
    late.resource_spans[0].scope_spans[0].spans.truncate(1);
    late.resource_spans[0].scope_spans[0].spans[0].span_id = SpanId::from_bytes([9; 8]);
    pipeline.submit(late).await.unwrap();
    // The segment's data pages are gone (its footer was read at open).
    let segments = dir.path().join("segments");
    let spans_file = std::fs::read_dir(&segments)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".spans.parquet"))
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&spans_file)
        .unwrap()
        .set_len(64)
        .unwrap();

    let (status, body) = get(&app, "/api/v1/traces/5b8efff798038103d269b633813fc60c").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["incomplete"], true, "{body}");
    assert_eq!(body["spanCount"], 1, "{body}");
    let problems = body["unreadableSegments"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    assert!(
        problems[0].as_str().unwrap().starts_with("segment 1: "),
        "{body}"
    );
}

/// A client that goes away while its batch is being written: the batch is
/// stored (the append is not cancelled), so detection must see it too.
#[tokio::test]
async fn a_cancelled_request_still_reaches_detection() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(Pipeline::new());
    let (store, _report) = Store::open(StoreOptions {
        wal: WalOptions::default(),
        ..StoreOptions::new(dir.path().to_path_buf())
    })
    .unwrap();
    pipeline.set_store(Arc::new(store));
    let detector = tracewarden_server::detection::Detector::start_with(
        Vec::new(),
        tracewarden_server::config::DetectionConfig::default(),
        None,
        None,
    )
    .unwrap();
    pipeline.set_detector(Arc::new(detector));
    // Polled once (the WAL has the batch queued, not yet written), then
    // dropped, as hyper drops the future of a request whose client left.
    let mut submit = pipeline.submit(batch());
    let pending = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(submit.as_mut(), cx).is_pending())
    })
    .await;
    assert!(pending);
    drop(submit);
    let detector = pipeline.detector().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while detector.stats().batches == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stored batch never reached detection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(detector.stats().spans, 2);
    assert_eq!(pipeline.store().unwrap().stats().spans, 2);
}

/// A checkpoint that cannot be read: detection starts empty, says why in
/// its stats, and keeps the bad file aside instead of overwriting it.
#[test]
fn a_checkpoint_that_cannot_be_restored_is_kept_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("detection");
    std::fs::create_dir_all(&checkpoints).unwrap();
    std::fs::write(checkpoints.join("checkpoint"), b"not a checkpoint").unwrap();
    let detector = tracewarden_server::detection::Detector::start_with(
        Vec::new(),
        tracewarden_server::config::DetectionConfig::default(),
        Some(dir.path()),
        None,
    )
    .unwrap();
    let error = detector.stats().checkpoint_restore_error;
    assert!(
        error.as_deref().is_some_and(|e| e.contains("bad magic")),
        "{error:?}"
    );
    let kept: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("checkpoint.bad-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read(checkpoints.join(&kept[0])).unwrap(),
        b"not a checkpoint"
    );
    // A clean start has nothing to report.
    let clean = tempfile::tempdir().unwrap();
    let detector = tracewarden_server::detection::Detector::start_with(
        Vec::new(),
        tracewarden_server::config::DetectionConfig::default(),
        Some(clean.path()),
        None,
    )
    .unwrap();
    assert_eq!(detector.stats().checkpoint_restore_error, None);
}
