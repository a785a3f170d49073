//! `tracewarden query` end to end: spans sent over OTLP/HTTP to a real
//! server, found with TraceQL through the server, then directly in the data
//! directory once the server is stopped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::{TestServer, binary, now_nanos, post};
use http::StatusCode;
use serde_json::{Value, json};

/// OTLP/JSON: trace `n` is a gateway span (answering `status` to `address`)
/// with a child in the location service.
fn export(traces: &[(u8, i64, &str)]) -> String {
    let now = now_nanos();
    let mut gateway = Vec::new();
    let mut location = Vec::new();
    for (n, status, address) in traces {
        let trace_id = format!("{n:02x}").repeat(16);
        let start = now - 60_000_000_000 + u64::from(*n) * 1_000_000;
        gateway.push(json!({
            "traceId": trace_id, "spanId": format!("{n:02x}01020304050607"),
            "name": "GET /weather", "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 9_000_000).to_string(),
            "attributes": [
                {"key": "http.response.status_code", "value": {"intValue": status.to_string()}},
                {"key": "client.address", "value": {"stringValue": address}},
            ],
        }));
        location.push(json!({
            "traceId": trace_id, "spanId": format!("{n:02x}11121314151617"),
            "parentSpanId": format!("{n:02x}01020304050607"),
            "name": "GET /location", "kind": 2,
            "startTimeUnixNano": (start + 1_000_000).to_string(),
            "endTimeUnixNano": (start + 5_000_000).to_string(),
        }));
    }
    let service = |name: &str, spans: Vec<Value>| {
        json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
            "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
        })
    };
    json!({"resourceSpans": [service("gateway", gateway), service("location", location)]})
        .to_string()
}

fn query(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("query")
        .args(args)
        .output()
        .unwrap()
}

fn trace_ids(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut ids: Vec<String> = body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn query_a_server_then_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let body = export(&[
        (1, 401, "198.51.100.9"),
        (2, 401, "198.51.100.9"),
        (3, 200, "203.0.113.7"),
    ]);
    let response = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());

    let api = server.api_url("");
    let failed = "{ span.http.response.status_code = 401 }";
    let structural = r#"{ resource.service.name = "gateway" && span.client.address = "203.0.113.7" } > { resource.service.name = "location" }"#;
    let expected_failed = vec!["01".repeat(16), "02".repeat(16)];

    let output = query(&["--server", &api, "--format", "json", failed]);
    assert_eq!(trace_ids(&output), expected_failed);
    let output = query(&["--server", &api, "--format", "json", structural]);
    assert_eq!(trace_ids(&output), vec!["03".repeat(16)]);

    // The table names each trace, its root and the matched spans.
    let output = query(&["--server", &api, failed]);
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains(&"01".repeat(16)), "{table}");
    assert!(table.contains("gateway"), "{table}");
    assert!(table.contains("2 traces"), "{table}");

    // A bad query fails with the parser's message.
    let output = query(&["--server", &api, "{ span.x = }"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("TraceQL"),
        "{stderr}"
    );

    // The data directory is locked while the server runs.
    let data_dir = dir.path().to_str().unwrap();
    let output = query(&["--data-dir", data_dir, failed]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use"), "{stderr}");

    assert!(server.terminate().success());
    let output = query(&["--data-dir", data_dir, "--format", "json", failed]);
    assert_eq!(trace_ids(&output), expected_failed);
    let output = query(&[
        "--data-dir",
        data_dir,
        "--since",
        "1s",
        "--format",
        "json",
        failed,
    ]);
    assert_eq!(
        trace_ids(&output),
        Vec::<String>::new(),
        "older than the range"
    );

    // No server listening: a clear error.
    let output = query(&["--server", &api, failed]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach tracewarden"), "{stderr}");
}
