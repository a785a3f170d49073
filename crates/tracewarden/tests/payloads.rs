//! The payload store and the trace view end to end: a gateway posts the
//! body of a span of an ingested trace with an `ingest` key; the trace view
//! links it, an analyst reads it back redacted (and as an attachment a
//! browser will not render), a viewer is refused, bad bodies get 4xx, a
//! `kill -9` after the 201 keeps it; and the trace view of a trace that
//! raised an alert shows its span tree and the alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Http, Response, TestServer, files_under, get, now_nanos};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz";

async fn send(
    method: Method,
    url: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Response {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    Http::new().send(method, url, &headers, body).await
}

async fn read(server: &TestServer, path: &str, key: &str) -> Response {
    send(
        Method::GET,
        &server.api_url(path),
        Some(key),
        None,
        Bytes::new(),
    )
    .await
}

async fn post_payload(
    server: &TestServer,
    query: &str,
    key: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response {
    let url = server.api_url(&format!("/api/v1/payloads?{query}"));
    send(Method::POST, &url, Some(key), Some(content_type), body).await
}

fn error_message(response: &Response) -> String {
    response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_stored_redacted_read_by_analysts_only_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let analyst = common::create_key(dir.path(), "alice", "analyst");
    let viewer = common::create_key(dir.path(), "victor", "viewer");
    let ingest = common::create_key(dir.path(), "gateway", "ingest");
    let config = "[payloads]\nmax_bytes = 4096\n";
    let mut server = TestServer::start_with_config(dir.path(), config).await;

    // The trace the body belongs to, sent as a gateway sends it.
    let export = common::gateway_export(&[("/api/login", 200, "203.0.113.5", "curl/8.5")], 77);
    let answer = send(
        Method::POST,
        &server.otlp_http_url("/v1/traces"),
        Some(&ingest),
        Some("application/json"),
        export,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let trace_id = format!("{:032x}", 77);
    let span_id = format!("{:016x}", 77);

    let body = json!({
        "user": "ann",
        "password": "hunter2",
        "headers": {"authorization": format!("Bearer {JWT}")},
        "note": "<script>alert(1)</script>",
    })
    .to_string();
    let target = format!("traceId={trace_id}&spanId={span_id}&kind=request");
    let created = post_payload(&server, &target, &ingest, "application/json", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let reference = created.json();
    let id = reference["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(reference["traceId"], trace_id.as_str());
    assert_eq!(reference["spanId"], span_id.as_str());
    assert_eq!(reference["kind"], "request");
    assert_eq!(reference["truncated"], false);
    assert_eq!(reference["redactions"], 2, "{reference:#}");

    // Refusals, each with a JSON message, none stored.
    // (key, query, content type, body, status, in the message)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, StatusCode, &'a str);
    let cases: [Case; 7] = [
        (
            "viewer",
            &target,
            "application/json",
            b"{}".to_vec(),
            StatusCode::FORBIDDEN,
            "",
        ),
        (
            "ingest",
            &target,
            "application/json",
            vec![b'a'; 5000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "4096 bytes",
        ),
        (
            "ingest",
            &target,
            "image/png",
            b"\x89PNG".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "binary",
        ),
        (
            "ingest",
            &format!("traceId={trace_id}&spanId={span_id}&kind=body"),
            "text/plain",
            b"x".to_vec(),
            StatusCode::BAD_REQUEST,
            "kind",
        ),
        (
            "ingest",
            &format!("traceId=zz&spanId={span_id}&kind=request"),
            "text/plain",
            b"x".to_vec(),
            StatusCode::BAD_REQUEST,
            "traceId",
        ),
        (
            "ingest",
            &format!("traceId={trace_id}&kind=request"),
            "text/plain",
            b"x".to_vec(),
            StatusCode::BAD_REQUEST,
            "spanId",
        ),
        (
            "ingest",
            &format!("{target}&truncated=maybe"),
            "text/plain",
            b"x".to_vec(),
            StatusCode::BAD_REQUEST,
            "truncated",
        ),
    ];
    for (who, query, content_type, bytes, status, message) in cases {
        let key = if who == "viewer" { &viewer } else { &ingest };
        let answer = post_payload(&server, query, key, content_type, bytes).await;
        assert_eq!(answer.status, status, "{query}: {}", answer.text());
        assert!(
            error_message(&answer).contains(message),
            "{}",
            answer.text()
        );
    }
    // The analyst reads; it cannot post (ingest is its own role).
    let answer = post_payload(&server, &target, &analyst, "text/plain", "x").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    // The trace view links the payload.
    let view = read(&server, &format!("/api/v1/traces/{trace_id}"), &analyst).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text());
    let view = view.json();
    assert_eq!(view["payloads"].as_array().unwrap().len(), 1, "{view:#}");
    assert_eq!(view["payloads"][0]["id"], id.as_str());
    assert_eq!(view["payloads"][0]["spanId"], span_id.as_str());
    assert_eq!(view["tree"], json!([{"spanId": span_id, "children": []}]));
    let list = read(
        &server,
        &format!("/api/v1/payloads?traceId={trace_id}"),
        &analyst,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()["payloads"][0]["id"], id.as_str());

    // Read back redacted, as an attachment that is never sniffed or run.
    let check_body = |answer: &Response| {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(
            answer.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert!(
            answer
                .header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment")),
            "{:?}",
            answer.headers
        );
        let stored: Value = answer.json();
        assert_eq!(stored["user"], "ann");
        assert_eq!(stored["password"], "[REDACTED]");
        assert_eq!(stored["headers"]["authorization"], "Bearer [REDACTED]");
        assert_eq!(stored["note"], "<script>alert(1)</script>");
    };
    let path = format!("/api/v1/payloads/{id}");
    check_body(&read(&server, &path, &analyst).await);
    for forbidden in [
        path.as_str(),
        &format!("/api/v1/payloads?traceId={trace_id}"),
    ] {
        let answer = read(&server, forbidden, &viewer).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{forbidden}");
    }
    for (bad, status) in [
        (
            "/api/v1/payloads/..%2F..%2Fkeys.json",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/payloads/00000000000000000000000000000000",
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/payloads", StatusCode::BAD_REQUEST),
        ("/api/v1/payloads?traceId=nothex", StatusCode::BAD_REQUEST),
    ] {
        let answer = read(&server, bad, &analyst).await;
        assert_eq!(answer.status, status, "{bad}: {}", answer.text());
    }
    // Counted.
    let metrics = read(&server, "/metrics", &viewer).await.text();
    for line in [
        "tracewarden_payloads_stored_total 1\n",
        "tracewarden_payloads_rejected_total{reason=\"too_large\"} 1\n",
        "tracewarden_payloads_rejected_total{reason=\"unsupported_type\"} 1\n",
        "tracewarden_payloads_rejected_total{reason=\"bad_request\"} 4\n",
        "tracewarden_payloads 1\n",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    // The secrets never reached the disk.
    for file in files_under(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [&b"hunter2"[..], JWT.as_bytes()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} holds a secret",
                file.display()
            );
        }
    }

    // kill -9 right after the 201: the payload was durable.
    let created = post_payload(
        &server,
        &target.replace("request", "response"),
        &ingest,
        "text/plain",
        "ok",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let second = created.json()["id"].as_str().unwrap().to_string();
    server.kill();
    let server = TestServer::start_with_config(dir.path(), config).await;
    check_body(&read(&server, &path, &analyst).await);
    let answer = read(&server, &format!("/api/v1/payloads/{second}"), &analyst).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "ok");
    assert_eq!(answer.header("x-payload-kind"), Some("response"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_view_shows_the_span_tree_and_the_alerts_citing_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let trace_id = format!("{:032x}", 4242);
    let start = now_nanos() - 1_000_000_000;
    let span = |id: u64, parent: Option<u64>, offset: u64, attributes: Value| {
        let mut span = json!({
            "traceId": trace_id, "spanId": format!("{id:016x}"),
            "name": format!("span {id}"), "kind": 2,
            "startTimeUnixNano": (start + offset).to_string(),
            "endTimeUnixNano": (start + offset + 1_000_000).to_string(),
            "attributes": attributes,
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        span
    };
    // A scanner at the gateway (the root), two calls under it, one under
    // the first, and a span whose parent never arrived.
    let spans = vec![
        span(
            1,
            None,
            0,
            json!([
                {"key": "http.route", "value": {"stringValue": "/api/search"}},
                {"key": "http.response.status_code", "value": {"intValue": "200"}},
                {"key": "client.address", "value": {"stringValue": "192.0.2.66"}},
                {"key": "user_agent.original", "value": {"stringValue": "sqlmap/1.8.11#stable (https://sqlmap.org)"}},
            ]),
        ),
        span(3, Some(1), 30, json!([])),
        span(2, Some(1), 20, json!([])),
        span(4, Some(2), 25, json!([])),
        span(9, Some(0xdead), 40, json!([])),
    ];
    let export = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"spans": spans}],
    }]});
    let answer = common::post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        export.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        let view = common::get_trace(&server, &trace_id).await;
        if view["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "no alert cites the trace: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = |n: u64| format!("{n:016x}");
    assert_eq!(
        view["tree"],
        json!([
            {"spanId": id(1), "children": [
                {"spanId": id(2), "children": [{"spanId": id(4), "children": []}]},
                {"spanId": id(3), "children": []},
            ]},
            {"spanId": id(9), "orphan": true, "parentSpanId": id(0xdead), "children": []},
        ]),
        "{:#}",
        view["tree"]
    );
    let alert = &view["alerts"][0];
    assert_eq!(alert["ruleId"], "scanner-user-agent", "{alert:#}");
    assert_eq!(alert["state"], "firing");
    assert!(!alert["title"].as_str().unwrap().is_empty());
    // The alert's own page cites the trace back.
    let detail = get(&server.api_url(alert["href"].as_str().unwrap())).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.json()["evidence"]["traceIds"]
            .as_array()
            .unwrap()
            .contains(&json!(trace_id))
    );
    assert_eq!(view["payloads"], json!([]));
    // The existing fields are still there.
    assert_eq!(view["spanCount"], 5);
    // Tempo's trace endpoint keeps its own shape.
    let tempo = get(&server.api_url(&format!("/api/traces/{trace_id}"))).await;
    assert_eq!(tempo.status, StatusCode::OK);
    let tempo = tempo.json();
    assert!(
        tempo.get("tree").is_none() && tempo.get("alerts").is_none(),
        "{tempo:#}"
    );
}
