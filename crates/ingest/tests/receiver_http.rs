//! The OTLP/HTTP and Zipkin routers, driven without a socket
//! (`tower::ServiceExt::oneshot`), against a recording sink.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod receiver_support;

use std::time::Duration;

use axum::body::Body;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use receiver_support::{
    Answer, RecordingSink, google_rpc, gzip, gzip_bomb, json_log_request, json_trace_request,
    log_request, span, spans, state, trace_request, zipkin_spans,
};
use tower::ServiceExt;
use tracewarden_ingest::Limits;
use tracewarden_ingest::receiver::http::{otlp_router, zipkin_router};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The `google.rpc.Status` of a protobuf error response.
    fn status_proto(&self) -> google_rpc::Status {
        assert_eq!(
            self.content_type.as_deref(),
            Some(PROTOBUF),
            "{}",
            self.text()
        );
        google_rpc::Status::decode(&self.body[..]).unwrap()
    }
}

async fn read_reply(response: Response<Body>) -> Reply {
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_string())
    };
    let content_type = header(CONTENT_TYPE);
    let retry_after = header(RETRY_AFTER);
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        retry_after,
        body,
    }
}

fn post(
    path: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(Method::POST).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    if let Some(encoding) = encoding {
        builder = builder.header(CONTENT_ENCODING, encoding);
    }
    builder.body(body.into()).unwrap()
}

async fn send_otlp(
    sink: &std::sync::Arc<RecordingSink>,
    limits: Limits,
    request: Request<Body>,
) -> Reply {
    let (state, _) = state(sink, limits);
    read_reply(otlp_router(state).oneshot(request).await.unwrap()).await
}

async fn send_zipkin(sink: &std::sync::Arc<RecordingSink>, request: Request<Body>) -> Reply {
    let (state, _) = state(sink, Limits::default());
    read_reply(zipkin_router(state).oneshot(request).await.unwrap()).await
}

#[tokio::test]
async fn protobuf_traces_are_accepted() {
    let sink = RecordingSink::new();
    let body = trace_request(spans(&["POST /login", "SELECT users"])).encode_to_vec();
    let (state, stats) = state(&sink, Limits::default());
    let response = otlp_router(state)
        .oneshot(post("/v1/traces", Some(PROTOBUF), None, body))
        .await
        .unwrap();
    let reply = read_reply(response).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.content_type.as_deref(), Some(PROTOBUF));
    let response = ExportTraceServiceResponse::decode(&reply.body[..]).unwrap();
    assert_eq!(
        response.partial_success, None,
        "full success leaves partial_success unset"
    );
    assert_eq!(sink.span_names(), ["POST /login", "SELECT users"]);
    let batch = &sink.batches()[0];
    let (resource, _, first) = batch.spans().next().unwrap();
    assert_eq!(resource.service_name(), "auth");
    assert_eq!(first.trace_id.to_bytes(), receiver_support::TRACE_ID);

    let snapshot = stats.snapshot();
    assert_eq!(snapshot.requests.otlp_http, 1);
    assert_eq!(snapshot.spans_accepted, 2);
    assert_eq!(snapshot.failed_requests.total(), 0);
}

#[tokio::test]
async fn json_traces_are_accepted_and_answered_in_json() {
    let sink = RecordingSink::new();
    let body = json_trace_request(&[("GET /", true), ("GET /health", true)]);
    // Parameters of the content type are ignored.
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post(
            "/v1/traces",
            Some("application/json; charset=utf-8"),
            None,
            body,
        ),
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.content_type.as_deref(), Some(JSON));
    assert_eq!(reply.json(), serde_json::json!({}));
    assert_eq!(sink.span_names(), ["GET /", "GET /health"]);
}

#[tokio::test]
async fn protobuf_and_json_logs_are_accepted() {
    let sink = RecordingSink::new();
    let body = log_request(&["user alice logged in", "user bob failed to log in"]).encode_to_vec();
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/logs", Some(PROTOBUF), None, body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        ExportLogsServiceResponse::decode(&reply.body[..])
            .unwrap()
            .partial_success,
        None
    );

    let body = json_log_request(&["password reset requested"]);
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/logs", Some(JSON), None, body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), serde_json::json!({}));

    assert_eq!(
        sink.log_bodies(),
        [
            "user alice logged in",
            "user bob failed to log in",
            "password reset requested"
        ]
    );
    assert!(sink.span_names().is_empty());
}

#[tokio::test]
async fn gzip_bodies_are_inflated() {
    let sink = RecordingSink::new();
    let body = gzip(&trace_request(spans(&["compressed"])).encode_to_vec());
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/traces", Some(PROTOBUF), Some("gzip"), body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(sink.span_names(), ["compressed"]);

    let body = gzip(json_log_request(&["compressed log"]).as_bytes());
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/logs", Some(JSON), Some("gzip"), body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(sink.log_bodies(), ["compressed log"]);
}

#[tokio::test]
async fn large_bodies_are_decoded_off_the_async_workers() {
    // Over the inline-decoding threshold, so decoding goes through
    // `spawn_blocking`; the outcome must be the same.
    let names: Vec<String> = (0..2000).map(|i| format!("span {i}")).collect();
    let spans: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| span(name, (i % 250) as u8))
        .collect();
    let body = trace_request(spans).encode_to_vec();
    assert!(body.len() > 64 * 1024, "{} bytes", body.len());
    let sink = RecordingSink::new();
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/traces", Some(PROTOBUF), None, body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(sink.span_names().len(), 2000);

    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/traces", Some(PROTOBUF), Some("gzip"), gzip(&body)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(sink.span_names().len(), 4000);
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415_listing_the_supported_types() {
    let body = trace_request(spans(&["x"])).encode_to_vec();
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let sink = RecordingSink::new();
        let (state, stats) = state(&sink, Limits::default());
        let request = post("/v1/traces", content_type, None, body.clone());
        let reply = read_reply(otlp_router(state).oneshot(request).await.unwrap()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let message = reply.text();
        assert!(
            message.contains("application/x-protobuf, application/json"),
            "{content_type:?}: {message}"
        );
        assert_eq!(sink.submits(), 0);
        assert_eq!(stats.snapshot().failed_requests.unsupported_media_type, 1);
    }
}

#[tokio::test]
async fn unsupported_content_encoding_is_415() {
    let sink = RecordingSink::new();
    let body = trace_request(spans(&["x"])).encode_to_vec();
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/traces", Some(PROTOBUF), Some("br"), body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let status = reply.status_proto();
    assert!(status.message.contains("`br`"), "{}", status.message);
    assert_eq!(sink.submits(), 0);
}

#[tokio::test]
async fn a_gzip_bomb_is_413() {
    let sink = RecordingSink::new();
    // 1 GiB of zeroes in about 1 MiB of gzip: under the body limit, far
    // over the decompressed limit.
    let bomb = gzip_bomb(1024);
    let limits = Limits {
        max_decompressed_bytes: 4 << 20,
        ..Limits::default()
    };
    assert!(bomb.len() < limits.max_body_bytes);
    let (state, stats) = state(&sink, limits);
    let request = post("/v1/traces", Some(PROTOBUF), Some("gzip"), bomb);
    let reply = read_reply(otlp_router(state).oneshot(request).await.unwrap()).await;

    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    let status = reply.status_proto();
    assert!(
        status.message.contains("decompressed body"),
        "{}",
        status.message
    );
    assert_eq!(sink.submits(), 0);
    assert_eq!(stats.snapshot().failed_requests.too_large, 1);
}

#[tokio::test]
async fn an_oversized_body_is_413_whether_or_not_its_length_is_announced() {
    let limits = Limits {
        max_body_bytes: 1000,
        ..Limits::default()
    };
    let body = json_trace_request(&[("a", true); 20]);
    assert!(body.len() > 1000);

    // Announced by Content-Length: refused before reading.
    let sink = RecordingSink::new();
    let mut request = post("/v1/traces", Some(JSON), None, body.clone());
    request
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, body.len().into());
    let reply = send_otlp(&sink, limits.clone(), request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.content_type.as_deref(), Some(JSON));
    let error = reply.json();
    assert!(
        error["message"].as_str().unwrap().contains("request body"),
        "{error}"
    );

    // Streamed in chunks with no length: refused while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    let reply = send_otlp(
        &sink,
        limits.clone(),
        post("/v1/traces", Some(JSON), None, streamed),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(sink.submits(), 0);

    // Just under the limit is fine.
    let small = json_trace_request(&[("a", true)]);
    assert!(small.len() <= 1000);
    let reply = send_otlp(&sink, limits, post("/v1/traces", Some(JSON), None, small)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn garbage_is_400_with_a_status_in_the_request_encoding() {
    let sink = RecordingSink::new();
    let (state, stats) = state(&sink, Limits::default());
    let router = otlp_router(state);

    // A protobuf field with wire type 7, which does not exist.
    let request = post("/v1/traces", Some(PROTOBUF), None, vec![0x0f, 0x01, 0x02]);
    let reply = read_reply(router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let status = reply.status_proto();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(status.message.contains("malformed"), "{}", status.message);

    let request = post("/v1/logs", Some(JSON), None, "{\"resourceLogs\": [");
    let reply = read_reply(router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.content_type.as_deref(), Some(JSON));
    let error = reply.json();
    assert_eq!(error["code"], 3);
    assert!(!error["message"].as_str().unwrap().is_empty(), "{error}");

    // A corrupt gzip stream is bad data too.
    let request = post(
        "/v1/traces",
        Some(PROTOBUF),
        Some("gzip"),
        b"\x1f\x8b\x08\x00garbage".to_vec(),
    );
    let reply = read_reply(router.oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.status_proto().message.contains("gzip"));

    assert_eq!(sink.submits(), 0);
    assert_eq!(stats.snapshot().failed_requests.malformed, 3);
}

#[tokio::test]
async fn spans_with_bad_ids_give_a_partial_success() {
    let sink = RecordingSink::new();
    let mut request_spans = spans(&["kept 1", "bad trace id", "kept 2", "bad span id"]);
    request_spans[1].trace_id.truncate(15);
    request_spans[3].span_id = vec![0; 8];
    let body = trace_request(request_spans).encode_to_vec();
    let (state, stats) = state(&sink, Limits::default());
    let reply = read_reply(
        otlp_router(state)
            .oneshot(post("/v1/traces", Some(PROTOBUF), None, body))
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let partial = ExportTraceServiceResponse::decode(&reply.body[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("2 span(s) rejected"),
        "{}",
        partial.error_message
    );
    assert_eq!(sink.span_names(), ["kept 1", "kept 2"]);
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.spans_accepted, 2);
    assert_eq!(snapshot.spans_rejected.invalid_record, 2);
    assert_eq!(snapshot.failed_requests.total(), 0);
}

#[tokio::test]
async fn json_partial_success_writes_int64_as_a_string() {
    let sink = RecordingSink::new();
    let body = json_trace_request(&[("kept", true), ("short trace id", false)]);
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/traces", Some(JSON), None, body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "1", "{json}");
    assert!(
        !json["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{json}"
    );
    assert_eq!(sink.span_names(), ["kept"]);
}

#[tokio::test]
async fn a_request_with_only_invalid_spans_is_400() {
    let sink = RecordingSink::new();
    let body = json_trace_request(&[("bad 1", false), ("bad 2", false)]);
    let (state, stats) = state(&sink, Limits::default());
    let reply = read_reply(
        otlp_router(state)
            .oneshot(post("/v1/traces", Some(JSON), None, body))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = reply.json();
    assert!(
        error["message"].as_str().unwrap().contains("every record"),
        "{error}"
    );
    assert_eq!(sink.submits(), 0);
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.failed_requests.invalid_record, 1);
    assert_eq!(snapshot.spans_rejected.invalid_record, 2);
}

#[tokio::test]
async fn an_empty_request_succeeds_without_reaching_the_sink() {
    let sink = RecordingSink::new();
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/traces", Some(PROTOBUF), None, Vec::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        ExportTraceServiceResponse::decode(&reply.body[..])
            .unwrap()
            .partial_success,
        None
    );
    let reply = send_otlp(
        &sink,
        Limits::default(),
        post("/v1/logs", Some(JSON), None, "{}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(sink.submits(), 0);
}

#[tokio::test]
async fn sink_refusals_map_to_429_503_and_500() {
    let cases = [
        (
            Answer::Overloaded(Duration::from_millis(1500)),
            StatusCode::TOO_MANY_REQUESTS,
            Some("2"),
        ),
        (
            Answer::Overloaded(Duration::ZERO),
            StatusCode::TOO_MANY_REQUESTS,
            Some("1"),
        ),
        (
            Answer::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("5"),
        ),
        (Answer::Internal, StatusCode::INTERNAL_SERVER_ERROR, None),
    ];
    for (answer, expected, retry_after) in cases {
        let sink = RecordingSink::answering(answer.clone());
        let body = trace_request(spans(&["a", "b", "c"])).encode_to_vec();
        let (state, stats) = state(&sink, Limits::default());
        let reply = read_reply(
            otlp_router(state)
                .oneshot(post("/v1/traces", Some(PROTOBUF), None, body))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, expected, "{answer:?}");
        assert_eq!(reply.retry_after.as_deref(), retry_after, "{answer:?}");
        assert!(!reply.status_proto().message.is_empty(), "{answer:?}");
        assert_eq!(sink.submits(), 1, "{answer:?}");

        let snapshot = stats.snapshot();
        assert_eq!(snapshot.spans_accepted, 0, "{answer:?}");
        assert_eq!(snapshot.spans_rejected.total(), 3, "{answer:?}");
        assert_eq!(snapshot.failed_requests.total(), 1, "{answer:?}");
    }
}

#[tokio::test]
async fn only_post_is_routed() {
    let sink = RecordingSink::new();
    let (state, _) = state(&sink, Limits::default());
    let request = Request::builder()
        .method(Method::GET)
        .uri("/v1/traces")
        .body(Body::empty())
        .unwrap();
    let response = otlp_router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let request = post("/v1/metrics", Some(PROTOBUF), None, Vec::new());
    let response = otlp_router(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn zipkin_json_is_202_with_an_empty_body() {
    for content_type in [
        Some("application/json"),
        Some("application/json; charset=UTF-8"),
        None,
    ] {
        let sink = RecordingSink::new();
        let body = zipkin_spans(&[("get /api", true), ("select", true)]);
        let (state, stats) = state(&sink, Limits::default());
        let request = post("/api/v2/spans", content_type, None, body);
        let reply = read_reply(zipkin_router(state).oneshot(request).await.unwrap()).await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{content_type:?}: {}",
            reply.text()
        );
        assert!(reply.body.is_empty());
        assert_eq!(
            sink.span_names(),
            ["get /api", "select"],
            "{content_type:?}"
        );
        let batches = sink.batches();
        let (resource, _, _) = batches[0].spans().next().unwrap();
        assert_eq!(resource.service_name(), "backend");
        assert_eq!(stats.snapshot().requests.zipkin, 1);
    }
}

#[tokio::test]
async fn zipkin_gzip_is_inflated() {
    let sink = RecordingSink::new();
    let body = gzip(zipkin_spans(&[("gzipped", true)]).as_bytes());
    let reply = send_zipkin(&sink, post("/api/v2/spans", Some(JSON), Some("gzip"), body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    assert_eq!(sink.span_names(), ["gzipped"]);
}

#[tokio::test]
async fn zipkin_proto3_is_415_saying_only_json_is_supported() {
    let sink = RecordingSink::new();
    let reply = send_zipkin(
        &sink,
        post("/api/v2/spans", Some(PROTOBUF), None, vec![0x0a, 0x00]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply.text().contains("only Zipkin v2 JSON"),
        "{}",
        reply.text()
    );

    let reply = send_zipkin(
        &sink,
        post(
            "/api/v2/spans",
            Some("application/thrift"),
            None,
            vec![0x0a],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply.text().contains("application/json"),
        "{}",
        reply.text()
    );
    assert_eq!(sink.submits(), 0);
}

#[tokio::test]
async fn zipkin_partial_rejection_is_still_202_and_counted() {
    let sink = RecordingSink::new();
    let body = zipkin_spans(&[("kept", true), ("bad", false), ("kept too", true)]);
    let (state, stats) = state(&sink, Limits::default());
    let reply = read_reply(
        zipkin_router(state)
            .oneshot(post("/api/v2/spans", Some(JSON), None, body))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    assert_eq!(sink.span_names(), ["kept", "kept too"]);
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.spans_accepted, 2);
    assert_eq!(snapshot.spans_rejected.invalid_record, 1);
}

#[tokio::test]
async fn zipkin_errors_are_plain_text() {
    let cases = [
        (
            "not JSON",
            "[{\"traceId\":".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not a list",
            "{\"traceId\":\"5af7183fb1d4cf5f\"}".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "all invalid",
            zipkin_spans(&[("bad", false), ("bad too", false)]),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (name, body, expected) in cases {
        let sink = RecordingSink::new();
        let reply = send_zipkin(&sink, post("/api/v2/spans", Some(JSON), None, body)).await;
        assert_eq!(reply.status, expected, "{name}");
        assert!(
            reply
                .content_type
                .as_deref()
                .unwrap()
                .starts_with("text/plain"),
            "{name}"
        );
        assert!(!reply.body.is_empty(), "{name}");
        assert_eq!(sink.submits(), 0, "{name}");
    }

    let sink = RecordingSink::answering(Answer::Overloaded(Duration::from_secs(3)));
    let reply = send_zipkin(
        &sink,
        post(
            "/api/v2/spans",
            Some(JSON),
            None,
            zipkin_spans(&[("a", true)]),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.retry_after.as_deref(), Some("3"));
}
