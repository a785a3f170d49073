//! Detection end to end: spans sent over OTLP/HTTP to the real server on its
//! defaults (the built-in rule pack embedded in the binary) raise
//! detections on `GET /api/v1/detections` while benign traffic raises none;
//! and the `rules` command tests and lints rule files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, binary, get, now_nanos, post};
use http::StatusCode;
use serde_json::{Value, json};

/// One gateway server span per request: (route, status, client address, user agent).
fn export(requests: &[(&str, i64, &str, &str)], first_trace: u32) -> String {
    let now = now_nanos();
    let spans: Vec<Value> = requests
        .iter()
        .enumerate()
        .map(|(i, (route, status, address, agent))| {
            let n = first_trace + i as u32;
            let start = now - 5_000_000_000 + u64::from(n) * 1_000;
            json!({
                "traceId": format!("{n:032x}"), "spanId": format!("{n:016x}"),
                "name": format!("POST {route}"), "kind": 2,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 2_000_000).to_string(),
                "attributes": [
                    {"key": "http.route", "value": {"stringValue": route}},
                    {"key": "http.response.status_code", "value": {"intValue": status.to_string()}},
                    {"key": "client.address", "value": {"stringValue": address}},
                    {"key": "user_agent.original", "value": {"stringValue": agent}},
                ],
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }]})
    .to_string()
}

async fn detections(server: &TestServer) -> Value {
    let answer = get(&server.api_url("/api/v1/detections?limit=100")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn attacks_raise_detections_and_benign_traffic_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let url = server.otlp_http_url("/v1/traces");

    // Benign: logins that mostly succeed, from many addresses.
    let benign: Vec<(&str, i64, String, &str)> = (0..60)
        .map(|i| {
            (
                "/api/login",
                if i % 7 == 0 { 401 } else { 200 },
                format!("203.0.113.{i}"),
                browser,
            )
        })
        .collect();
    let benign: Vec<(&str, i64, &str, &str)> = benign
        .iter()
        .map(|(r, s, a, u)| (*r, *s, a.as_str(), *u))
        .collect();
    let answer = post(&url, "application/json", export(&benign, 1)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // Detection runs behind ingest: give it the time to catch up, then
    // nothing must have fired.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = detections(&server).await;
        if body["stats"]["spans"].as_u64() == Some(60) {
            assert_eq!(body["detections"], json!([]), "{body:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "detection did not see the spans: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Attacks: a brute force from one address, and a scanner.
    let mut attack: Vec<(&str, i64, &str, &str)> = (0..12)
        .map(|_| ("/api/login", 401, "198.51.100.9", browser))
        .collect();
    attack.push((
        "/api/search",
        200,
        "192.0.2.66",
        "sqlmap/1.8.11#stable (https://sqlmap.org)",
    ));
    let answer = post(&url, "application/json", export(&attack, 1000)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = detections(&server).await;
        let rules: Vec<&str> = body["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["ruleId"].as_str())
            .collect();
        if rules.contains(&"brute-force-login") && rules.contains(&"scanner-user-agent") {
            break body;
        }
        assert!(Instant::now() < deadline, "no detections: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let brute = body["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ruleId"] == "brute-force-login")
        .unwrap();
    assert_eq!(brute["severity"], "high");
    assert_eq!(
        brute["key"]["span.client.address"], "198.51.100.9",
        "{brute:#}"
    );
    assert_eq!(brute["count"], 10);
    // Its evidence opens as traces.
    let trace_id = brute["traceIds"][0].as_str().unwrap();
    let trace = get(&server.api_url(&format!("/api/v1/traces/{trace_id}"))).await;
    assert_eq!(trace.status, StatusCode::OK);
    // One detection per crossing, not one per span.
    let count = body["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["ruleId"] == "brute-force-login")
        .count();
    assert_eq!(count, 1, "{body:#}");

    // An injection payload in the query string: detected with its evidence.
    let start = now_nanos() - 1_000_000_000;
    let injection = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", 5000), "spanId": format!("{:016x}", 5000),
            "name": "GET /api/products", "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string(),
            "attributes": [
                {"key": "http.route", "value": {"stringValue": "/api/products"}},
                {"key": "url.query", "value": {"stringValue": "id=1' UNION SELECT username, password FROM users--"}},
                {"key": "client.address", "value": {"stringValue": "192.0.2.77"}},
            ],
        }]}],
    }]});
    let answer = post(&url, "application/json", injection.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let sqli = loop {
        let body = detections(&server).await;
        if let Some(found) = body["detections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ruleId"] == "sql-injection")
        {
            break found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no sql-injection detection: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        sqli["evidence"].as_str().unwrap().contains("url.query"),
        "{sqli:#}"
    );

    let rules = get(&server.api_url("/api/v1/rules")).await.json();
    let listed = rules["rules"].as_array().unwrap();
    assert!(listed.len() >= 11, "{rules:#}");
    let brute = listed
        .iter()
        .find(|r| r["id"] == "brute-force-login")
        .unwrap();
    assert_eq!(brute["detections"], 1, "{rules:#}");
    assert!(brute["matchedSpans"].as_u64().unwrap() >= 12, "{rules:#}");
}

#[test]
fn rules_test_and_lint_commands() {
    let repo_rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
    let test = Command::new(binary())
        .args(["rules", "test", repo_rules])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{out}");
    assert!(out.contains("0 failed"), "{out}");
    let lint = Command::new(binary())
        .args(["rules", "lint"])
        .output()
        .unwrap();
    assert!(lint.status.success());
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(out.contains("built-in pack"), "{out}");
    assert!(
        out.contains("inactive: the site leaves site.allowed_countries empty"),
        "{out}"
    );

    // Site facts from a config file: geo-policy runs, and bad facts stop.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("tracewarden.toml");
    std::fs::write(
        &config,
        "[detection.site]\nallowed_countries = [\"DE\"]\nentry_services = [\"api-gateway\"]\n",
    )
    .unwrap();
    let lint = Command::new(binary())
        .args(["rules", "lint", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(lint.status.success(), "{out}");
    assert!(!out.contains("allowed_countries"), "{out}");
    assert!(out.contains("trusted_origins"), "{out}");
    let test = Command::new(binary())
        .args(["rules", "test", repo_rules, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{out}");
    assert!(out.contains("(1 inactive with this site)"), "{out}");
    std::fs::write(
        &config,
        "[detection.site]\nallowed_countries = [\"germany\"]\n",
    )
    .unwrap();
    let lint = Command::new(binary())
        .args(["rules", "lint", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!lint.status.success());
    assert!(
        String::from_utf8_lossy(&lint.stderr).contains("`germany` is not an ISO 3166-1"),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    // A broken rule: the file, line and column of each mistake, exit 1.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: bad-rule\ntitle: t\nseverity: urgent\nkind: match\ncondition: '{ span.x = }'\nextra: 1\n",
    )
    .unwrap();
    let lint = Command::new(binary())
        .args(["rules", "lint"])
        .arg(dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(!lint.status.success(), "{out}");
    assert!(out.contains("bad.yaml:3:"), "{out}");
    assert!(out.contains("bad.yaml:6:"), "{out}");
    let test = Command::new(binary())
        .args(["rules", "test"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!test.status.success());
}
