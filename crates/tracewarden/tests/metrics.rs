//! `GET /metrics` of the real server after some traffic, checked by
//! Prometheus' own `promtool check metrics` (Debian package prometheus).
//!
//! Skipped without promtool, unless `TW_REQUIRE_PROMTOOL` is set (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, get, now_nanos, post, sample};
use http::StatusCode;
use serde_json::json;

fn promtool() -> Option<&'static str> {
    let found = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("TW_REQUIRE_PROMTOOL").is_none(),
            "TW_REQUIRE_PROMTOOL is set but promtool is not installed (apt-get install prometheus)"
        );
        eprintln!("skipping: promtool is not installed");
    }
    found
}

/// The value of the sample written exactly `series` (name and labels).
#[tokio::test]
async fn metrics_pass_promtool_and_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let now = now_nanos();
    let spans: Vec<_> = (0..12u64)
        .map(|i| {
            json!({
                "traceId": format!("{:032x}", i + 1), "spanId": format!("{:016x}", i + 1),
                "name": "POST /login", "kind": 2,
                "startTimeUnixNano": (now - 1_000_000_000 + i).to_string(),
                "endTimeUnixNano": (now - 900_000_000 + i).to_string(),
                "attributes": [
                    {"key": "http.route", "value": {"stringValue": "/api/login"}},
                    {"key": "http.response.status_code", "value": {"intValue": "401"}},
                    {"key": "client.address", "value": {"stringValue": "198.51.100.9"}},
                ],
            })
        })
        .collect();
    let body = json!({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]});
    let url = server.otlp_http_url("/v1/traces");
    assert_eq!(
        post(&url, "application/json", body.to_string())
            .await
            .status,
        StatusCode::OK
    );
    // One malformed request, counted by reason.
    assert_eq!(
        post(&url, "application/json", "{").await.status,
        StatusCode::BAD_REQUEST
    );
    let block = json!({"kind": "user", "value": "mallory", "reason": "r\"x", "by": "a"});
    let answer = post(
        &server.api_url("/api/v1/blocks"),
        "application/json",
        block.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);

    // Detection runs behind ingest: wait for the built-in brute-force rule.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let answer = get(&server.api_url("/metrics")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = answer.text();
        // The detection, the alert made of it, and the batch counted (the
        // detection thread lists a batch's detections before it counts
        // the batch, so the count can trail them by a moment).
        if sample(
            &text,
            "tracewarden_rule_detections_total{rule=\"brute-force-login\"}",
        ) >= Some(1.0)
            && sample(
                &text,
                "tracewarden_alerts{state=\"firing\",severity=\"high\"}",
            ) >= Some(1.0)
            && sample(&text, "tracewarden_detection_spans_total") >= Some(12.0)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no detection or count yet:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (series, value) in [
        ("tracewarden_ingest_accepted_total{signal=\"spans\"}", 12.0),
        (
            "tracewarden_ingest_failed_requests_total{reason=\"malformed\"}",
            1.0,
        ),
        (
            "tracewarden_ingest_requests_total{protocol=\"otlp_http\"}",
            2.0,
        ),
        (
            "tracewarden_rule_matched_total{rule=\"brute-force-login\"}",
            12.0,
        ),
        ("tracewarden_detection_spans_total", 12.0),
        // Every span rule evaluates every span.
        (
            "tracewarden_rule_evaluations_total{rule=\"brute-force-login\"}",
            12.0,
        ),
        // One address, no evictions; its key is held.
        (
            "tracewarden_rule_evicted_keys_total{rule=\"brute-force-login\"}",
            0.0,
        ),
        ("tracewarden_rule_keys{rule=\"brute-force-login\"}", 1.0),
        ("tracewarden_blocks_active{kind=\"user\"}", 1.0),
        ("tracewarden_block_changes_total{action=\"block\"}", 1.0),
        ("tracewarden_wal_appends_total", 1.0),
        ("tracewarden_wal_last_lsn", 1.0),
        (
            "tracewarden_alert_notifications_failed_total{receiver=\"default\",kind=\"file\"}",
            0.0,
        ),
        ("tracewarden_silences_active", 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    // Detection keeps a checkpoint, so it holds the WAL: from 0 before its
    // first checkpoint, from the record after the one it covers after it.
    let hold = sample(&text, "tracewarden_detection_wal_hold_lsn").unwrap();
    assert!(hold == 0.0 || hold == 2.0, "{text}");
    let fsyncs = sample(&text, "tracewarden_wal_fsyncs_total").unwrap();
    assert_eq!(
        sample(&text, "tracewarden_wal_fsync_duration_seconds_count"),
        Some(fsyncs)
    );
    assert_eq!(
        sample(
            &text,
            "tracewarden_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(fsyncs)
    );

    // Every batch detected on is in the detection latency histogram; no
    // trace was assembled (no site facts), so the trace delay is empty.
    let batches = sample(&text, "tracewarden_detection_batches_total").unwrap();
    assert!(batches >= 1.0, "{text}");
    for series in [
        "tracewarden_detection_latency_seconds_count",
        "tracewarden_detection_latency_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert_eq!(sample(&text, series), Some(batches), "{series}\n{text}");
    }
    let sum = sample(&text, "tracewarden_detection_latency_seconds_sum").unwrap();
    assert!(sum > 0.0 && sum < 60.0 * batches, "{text}");
    assert_eq!(
        sample(&text, "tracewarden_detection_trace_delay_seconds_count"),
        Some(0.0)
    );

    let Some(promtool) = promtool() else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
