//! Segments end to end: a server with a small flush threshold writes Parquet
//! segments while it ingests, flushes the rest on SIGTERM, serves every
//! span after a restart (from segments, exactly once), and
//! `tracewarden verify` accepts the data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Http, TestServer, hex, port_zero_args};
use http::{Method, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

const BATCHES: u64 = 30;
const TRACES_PER_BATCH: u64 = 10;
const SPANS_PER_TRACE: u64 = 10;

fn trace_id(n: u64) -> [u8; 16] {
    let mut id = [0x5e; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

fn span_id(trace: u64, i: u64) -> [u8; 8] {
    ((trace << 8) | (i + 1)).to_be_bytes()
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// Batch `b`: traces `b * TRACES_PER_BATCH ..`, ten spans each.
fn batch(b: u64) -> Vec<u8> {
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let mut spans = Vec::new();
    for n in b * TRACES_PER_BATCH..(b + 1) * TRACES_PER_BATCH {
        for i in 0..SPANS_PER_TRACE {
            spans.push(Span {
                trace_id: trace_id(n).to_vec(),
                span_id: span_id(n, i).to_vec(),
                name: format!("GET /orders/{i}"),
                kind: 2,
                start_time_unix_nano: now + i * 1_000,
                end_time_unix_nano: now + i * 1_000 + 500_000,
                attributes: vec![
                    string_attribute("http.request.method", "GET"),
                    string_attribute("client.address", &format!("192.0.2.{}", n % 200)),
                ],
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", "orders")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn segment_files(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("segments")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".spans.parquet"))
        .collect();
    names.sort();
    names
}

async fn start(data_dir: &Path, config: &Path) -> TestServer {
    let mut args: Vec<OsString> = vec!["--config".into(), config.as_os_str().to_owned()];
    args.extend(port_zero_args(data_dir));
    let server = TestServer::spawn(&args, data_dir)
        .await
        .unwrap_or_else(|failure| panic!("tracewarden did not start: {failure:?}"));
    server.wait_ready().await;
    server
}

/// Sends every batch, retrying on 429 after the hint as an OTLP exporter
/// does (bounded, so a wedged server still fails the test).
async fn send_all(server: &TestServer) {
    let http = Http::new();
    let url = server.otlp_http_url("/v1/traces");
    for b in 0..BATCHES {
        // Memory holds twice flush_spans before the store pushes back with
        // 429 until a flush catches up.
        let mut attempts = 0;
        let response = loop {
            let response = http
                .send(
                    Method::POST,
                    &url,
                    &[("content-type", "application/x-protobuf")],
                    batch(b),
                )
                .await;
            if response.status != StatusCode::TOO_MANY_REQUESTS || attempts == 60 {
                break response;
            }
            attempts += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(
            response.status,
            StatusCode::OK,
            "batch {b}: {}",
            response.text()
        );
    }
}

/// Waits until the lifecycle thread has written a segment.
async fn wait_for_segment(server: &TestServer, data_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while segment_files(data_dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no segment written\n--- stderr\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every trace has exactly its spans, each once.
async fn check_all(server: &TestServer) {
    let http = Http::new();
    for n in 0..BATCHES * TRACES_PER_BATCH {
        let url = server.api_url(&format!("/api/v1/traces/{}", hex(&trace_id(n))));
        let response = http.send(Method::GET, &url, &[], bytes::Bytes::new()).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "trace {n}: {}\n--- stderr\n{}",
            response.text(),
            server.stderr()
        );
        let trace = response.json();
        let got: Vec<String> = trace["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["spanId"].as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> =
            (0..SPANS_PER_TRACE).map(|i| hex(&span_id(n, i))).collect();
        let unique: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(got.len(), unique.len(), "trace {n}: a span twice: {got:?}");
        assert_eq!(unique, expected, "trace {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_written_flushed_on_sigterm_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("tracewarden.toml");
    std::fs::write(&config, "[store]\nflush_spans = 1000\n").unwrap();

    let mut server = start(&data_dir, &config).await;
    send_all(&server).await;
    // 3000 spans against a threshold of 1000: the lifecycle thread flushes.
    wait_for_segment(&server, &data_dir).await;
    check_all(&server).await;

    let status = server.terminate();
    assert!(status.success(), "exit {status}\n{}", server.stderr());
    let written = segment_files(&data_dir);
    assert!(!written.is_empty());
    drop(server);

    // After the shutdown flush the WAL holds nothing a segment does not.
    let mut server = start(&data_dir, &config).await;
    let log = server.stderr();
    assert!(
        log.contains(" records=0 "),
        "replayed records after a graceful stop:\n{log}"
    );
    check_all(&server).await;
    server.terminate();

    let verify = Command::new(common::binary())
        .arg("verify")
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "tracewarden verify failed ({}):\n{}\n{}",
        verify.status,
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn encryption_at_rest_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let key = dir.path().join("store.key");
    let generate = Command::new(common::binary())
        .args(["encryption-key", "generate", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(generate.status.success(), "{generate:?}");
    let config = dir.path().join("tracewarden.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nflush_spans = 1000\nencryption_key_file = {:?}\n",
            key.to_str().unwrap()
        ),
    )
    .unwrap();

    let mut server = start(&data_dir, &config).await;
    send_all(&server).await;
    wait_for_segment(&server, &data_dir).await;
    check_all(&server).await;
    // A brute force from 192.0.2.250: its detection and alert name the
    // address, in the detection checkpoint and the alert state.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans: Vec<serde_json::Value> = (0..12u64)
        .map(|i| {
            let start = now - 2_000_000_000 + i * 1_000;
            serde_json::json!({
                "traceId": format!("{:032x}", 90_000 + i), "spanId": format!("{:016x}", 90_000 + i),
                "name": "POST /login", "kind": 2,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000).to_string(),
                "attributes": [
                    {"key": "http.route", "value": {"stringValue": "/login"}},
                    {"key": "http.response.status_code", "value": {"intValue": "401"}},
                    {"key": "client.address", "value": {"stringValue": "192.0.2.250"}},
                ],
            })
        })
        .collect();
    let body = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]});
    let answer = Http::new()
        .send(
            Method::POST,
            &server.otlp_http_url("/v1/traces"),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = common::get(&server.api_url("/api/v1/alerts")).await.text();
        if alerts.contains("192.0.2.250") {
            break;
        }
        assert!(Instant::now() < deadline, "no alert: {alerts}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().success(), "{}", server.stderr());
    drop(server);
    assert!(
        data_dir.join("detection").join("checkpoint").exists()
            && data_dir.join("alerts").join("alerts-state.json").exists(),
        "{:?}",
        common::files_under(&data_dir)
    );

    // Neither the WAL, the segments, the detection checkpoint nor the alert
    // state hold a value in clear.
    let files = common::files_under(&data_dir);
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".spans.parquet"))
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in [&b"GET /orders/"[..], b"192.0.2.", b"orders"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?} in clear",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }

    // With the key everything comes back; verify needs no key.
    let mut server = start(&data_dir, &config).await;
    check_all(&server).await;
    server.terminate();
    drop(server);
    let verify = Command::new(common::binary())
        .arg("verify")
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    // Without the key the server refuses to start, and says why.
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "[store]\nflush_spans = 1000\n").unwrap();
    let mut args: Vec<OsString> = vec!["--config".into(), plain.as_os_str().to_owned()];
    args.extend(port_zero_args(&data_dir));
    match TestServer::spawn(&args, &data_dir).await {
        Ok(mut server) => {
            let exit = server.wait_exit(Duration::from_secs(30));
            assert!(
                exit.is_some_and(|status| !status.success()),
                "started without the key\n{}",
                server.stderr()
            );
            assert!(server.stderr().contains("key"), "{}", server.stderr());
        }
        Err(failure) => {
            assert!(failure.stderr.contains("key"), "{failure:?}");
        }
    }
}
