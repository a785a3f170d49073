//! The payload API in process: the `enabled` switch, a body over the limit
//! sent without a length (streamed), redaction by the pipeline's redactor,
//! and the headers that keep a browser from running a stored body.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracewarden_redact::{RedactionConfig, Redactor};
use tracewarden_server::Pipeline;
use tracewarden_server::api::{ApiState, router};
use tracewarden_server::payloads::{Payloads, PayloadsConfig};

const TARGET: &str = "/api/v1/payloads?traceId=0af7651916cd43dd8448eb211c80319c&spanId=b7ad6b7169203331&kind=response";

fn app(dir: &std::path::Path, config: PayloadsConfig) -> axum::Router {
    let pipeline = Arc::new(Pipeline::new());
    pipeline.set_redactor(Arc::new(
        Redactor::new(&RedactionConfig::default(), None).unwrap(),
    ));
    pipeline.set_payloads(Arc::new(Payloads::open(&config, dir, None).unwrap()));
    router(ApiState::new(pipeline))
}

async fn send(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn post(body: Body, content_type: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(TARGET)
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn disabled_refuses_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let config = PayloadsConfig {
        enabled: false,
        ..PayloadsConfig::default()
    };
    let app = app(dir.path(), config);
    let (status, _, body) = send(&app, post(Body::from("hi"), "text/plain")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("enabled = false"), "{body}");
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_refused_and_a_text_body_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = PayloadsConfig {
        max_bytes: 1000,
        max_total_bytes: 150,
        ..PayloadsConfig::default()
    };
    let app = app(dir.path(), config);
    // Chunks with no Content-Length: the limit holds while reading.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..5).map(|_| Ok(Bytes::from(vec![b'a'; 300]))).collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    let (status, _, body) = send(&app, post(streamed, "text/plain")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("1000 bytes"), "{body}");

    let text = "HTTP/1.1 200 OK\nSet-Cookie: session=abc\n\naccess_token=s3cr3t-value&user=ann <script>x</script>";
    let (status, _, body) = send(&app, post(Body::from(text), "text/html")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reference: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reference["kind"], "response");
    assert_eq!(reference["contentType"], "text/html; charset=utf-8");
    let href = reference["href"].as_str().unwrap();
    let (status, headers, stored) = send(
        &app,
        Request::builder().uri(href).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!stored.contains("s3cr3t-value"), "{stored}");
    assert!(stored.contains("user=ann <script>x</script>"), "{stored}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
}
