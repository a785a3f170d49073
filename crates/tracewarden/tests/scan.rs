//! `tracewarden scan`: the rule pack over exported files, without a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Command;

use serde_json::Value;

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn scan(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let output = Command::new(common::binary())
        .arg("scan")
        .args(args)
        .output()
        .expect("run tracewarden scan");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_export_with_attacks_raises_their_detections_and_a_benign_one_none() {
    let dir = tempfile::tempdir().unwrap();
    // A JSON-lines export (as the Collector's file exporter writes it): a
    // brute force spread over two requests, a line that is not OTLP, then a
    // scanner; gzipped, as exports often are.
    let brute: Vec<(&str, i64, &str, &str)> = (0..6)
        .map(|_| ("/api/login", 401, "198.51.100.9", BROWSER))
        .collect();
    let lines = [
        common::gateway_export(&brute, 1),
        "{\"resourceSpans\": 7}".to_string(),
        common::gateway_export(&brute, 100),
        common::gateway_export(
            &[(
                "/api/search",
                200,
                "192.0.2.66",
                "sqlmap/1.8.11#stable (https://sqlmap.org)",
            )],
            200,
        ),
    ]
    .join("\n");
    let attacks = dir.path().join("attacks.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&attacks).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(lines.as_bytes()).unwrap();
    gz.finish().unwrap();

    let (ok, stdout, stderr) = scan(&[attacks.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert!(ok, "{stderr}");
    let detections: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let brute = detections
        .iter()
        .find(|d| d["ruleId"] == "brute-force-login")
        .unwrap_or_else(|| panic!("no brute force in {stdout}\n{stderr}"));
    assert_eq!(
        brute["key"]["span.client.address"], "198.51.100.9",
        "{brute}"
    );
    assert!(!brute["traceIds"].as_array().unwrap().is_empty(), "{brute}");
    let scanner = detections
        .iter()
        .find(|d| d["ruleId"] == "scanner-user-agent")
        .unwrap_or_else(|| panic!("no scanner in {stdout}"));
    assert_eq!(scanner["traceIds"][0], format!("{:032x}", 200), "{scanner}");
    // The bad line is named and skipped; the lines after it were scanned.
    assert!(stderr.contains("attacks.jsonl.gz: skipped"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("13 spans"), "{stderr}");
    assert!(stderr.contains("1 requests skipped"), "{stderr}");

    // The same traffic without the attacks: nothing.
    let benign: Vec<(&str, i64, String, &str)> = (0..40)
        .map(|i| {
            let status = if i % 7 == 0 { 401 } else { 200 };
            ("/api/login", status, format!("203.0.113.{i}"), BROWSER)
        })
        .collect();
    let benign: Vec<(&str, i64, &str, &str)> = benign
        .iter()
        .map(|(r, s, a, u)| (*r, *s, a.as_str(), *u))
        .collect();
    let quiet = dir.path().join("benign.json");
    std::fs::write(&quiet, common::gateway_export(&benign, 1)).unwrap();
    let (ok, stdout, stderr) = scan(&[quiet.as_os_str()]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "", "{stderr}");
    assert!(stderr.contains("40 spans"), "{stderr}");
    assert!(stderr.contains("0 detections"), "{stderr}");
}

/// Real traces written by others (Zipkin's, among them SmartThings' OAuth
/// flow with its 401s and user e-mails; Jaeger's storage fixtures; the
/// OTLP examples) hold no attack: the whole pack stays silent on them.
#[test]
fn the_fixture_exports_of_others_scan_quiet_and_a_missing_file_is_an_error() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ingest/tests/fixtures");
    let mut files = Vec::new();
    for dir in ["zipkin-v2", "jaeger-otlp-json", "otlp-json"] {
        let before = files.len();
        files.extend(
            std::fs::read_dir(fixtures.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json")),
        );
        assert!(files.len() > before, "{dir}");
    }
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|p| p.as_os_str()).collect();
    let (ok, stdout, stderr) = scan(&args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("0 requests skipped"), "{stderr}");
    assert!(stderr.contains("0 rejected records"), "{stderr}");
    let spans: usize = stderr
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(spans > 1000, "{stderr}");
    assert!(stderr.contains("; 0 detections"), "{stderr}");
    assert_eq!(stdout, "", "{stderr}");

    let (ok, _, stderr) = scan(&["/nonexistent/export.json".as_ref()]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot open /nonexistent/export.json"),
        "{stderr}"
    );
}

/// Three refusals per caller, the caller taken from the span the record
/// was logged in (`join`).
const JOIN_RULE: &str = "id: denied-by-caller\ntitle: Refusals per caller\nseverity: medium\nsource: logs\nkind: threshold\ncondition: '{ span.client.address != nil && span.log.body =~ \"(?i).*denied.*\" }'\njoin: [span.client.address]\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 3\n";

/// An export of traces and one of logs, scanned traces first (as the
/// documentation's example): each record still joins the span it was
/// logged in, and the detection names the span's caller.
#[test]
fn log_records_join_spans_scanned_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("denied-by-caller.yaml"), JOIN_RULE).unwrap();
    let config = dir.path().join("tracewarden.toml");
    std::fs::write(
        &config,
        format!(
            "[detection]\nbuiltin_rules = false\nrules_dir = {:?}\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let start: u64 = 1_767_225_600_000_000_000;
    let ids = |i: u64| {
        (
            format!("{:032x}", 0x5100 + i),
            format!("{:016x}", 0x5100 + i),
        )
    };
    let spans: Vec<Value> = (0..3u64)
        .map(|i| {
            let (trace, span) = ids(i);
            serde_json::json!({
                "traceId": trace, "spanId": span, "name": "GET /invoices/{id}", "kind": 2,
                "startTimeUnixNano": (start + i * 1_000_000).to_string(),
                "endTimeUnixNano": (start + i * 1_000_000 + 500_000).to_string(),
                "attributes": [
                    {"key": "client.address", "value": {"stringValue": "203.0.113.77"}},
                ],
            })
        })
        .collect();
    let traces = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeSpans": [{"spans": spans}],
    }]});
    let records: Vec<Value> = (0..3u64)
        .map(|i| {
            let (trace, span) = ids(i);
            serde_json::json!({
                "timeUnixNano": (start + i * 1_000_000 + 100_000).to_string(),
                "severityNumber": 13, "severityText": "WARN",
                "body": {"stringValue": format!("Access denied to invoice {i}")},
                "traceId": trace, "spanId": span,
            })
        })
        .collect();
    let logs = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}],
    }]});
    let traces_file = dir.path().join("traces.json");
    let logs_file = dir.path().join("logs.json");
    std::fs::write(&traces_file, traces.to_string()).unwrap();
    std::fs::write(&logs_file, logs.to_string()).unwrap();
    for files in [[&traces_file, &logs_file], [&logs_file, &traces_file]] {
        let (ok, stdout, stderr) = scan(&[
            files[0].as_os_str(),
            files[1].as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ]);
        assert!(ok, "{stderr}");
        let detections: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(detections.len(), 1, "{files:?}: {stdout}\n{stderr}");
        let d = &detections[0];
        assert_eq!(d["ruleId"], "denied-by-caller", "{d}");
        assert_eq!(d["key"]["span.client.address"], "203.0.113.77", "{d}");
        assert_eq!(d["count"], 3, "{d}");
        assert_eq!(d["traceIds"][0], ids(2).0, "{d}");
    }
}
