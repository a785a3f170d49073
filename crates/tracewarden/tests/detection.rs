//! Detection end to end: spans sent over OTLP/HTTP to the real server on its
//! defaults (the built-in rule pack embedded in the binary) raise
//! detections on `GET /api/v1/detections` while benign traffic raises none;
//! and the `rules` command tests and lints rule files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, binary, get, metrics, now_nanos, post, sample};
use http::StatusCode;
use serde_json::{Value, json};

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
    let answer = post(&url, "application/json", common::gateway_export(&benign, 1)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // Detection runs behind ingest: give it the time to catch up, then
    // nothing must have fired.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = detections(&server).await;
        if body["stats"]["spans"].as_u64() == Some(60) {
            assert_eq!(body["detections"], json!([]), "{body:#}");
            // The delay from acknowledgement to the rules having run.
            let p99 = body["stats"]["latencyP99Ms"].as_f64().unwrap();
            assert!(p99 > 0.0 && p99 < 60_000.0, "{body:#}");
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
    let answer = post(
        &url,
        "application/json",
        common::gateway_export(&attack, 1000),
    )
    .await;
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

#[tokio::test]
async fn log_records_raise_detections_of_log_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let now = now_nanos();
    // Twelve refusals for one user, logged by the application with the ids
    // of the request's trace, and benign records around them.
    let mut records: Vec<Value> = (0..12u64)
        .map(|i| {
            json!({
                "timeUnixNano": (now - 4_000_000_000 + i * 1_000_000).to_string(),
                "severityNumber": 13, "severityText": "WARN",
                "body": {"stringValue": format!("Access denied: invoice {i} belongs to another tenant")},
                "attributes": [{"key": "enduser.id", "value": {"stringValue": "mallory"}}],
                "traceId": format!("{:032x}", 7000 + i), "spanId": format!("{:016x}", 7000 + i),
            })
        })
        .collect();
    records.extend((0..20u64).map(|i| {
        json!({
            "timeUnixNano": (now - 3_000_000_000 + i).to_string(),
            "severityNumber": 9, "body": {"stringValue": format!("invoice {i} rendered")},
            "attributes": [{"key": "enduser.id", "value": {"stringValue": "alice"}}],
        })
    }));
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}],
    }]});
    let answer = post(
        &server.otlp_http_url("/v1/logs"),
        "application/json",
        body.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = detections(&server).await;
        if body["stats"]["logs"].as_u64() == Some(32) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "detection did not see the logs: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let found: Vec<&Value> = body["detections"].as_array().unwrap().iter().collect();
    assert_eq!(found.len(), 1, "{body:#}");
    assert_eq!(found[0]["ruleId"], "access-denied-logs");
    assert_eq!(found[0]["key"]["span.enduser.id"], "mallory");
    assert_eq!(found[0]["count"], 10);
    // The evidence names the traces the records belong to.
    assert_eq!(
        found[0]["traceIds"][0],
        format!("{:032x}", 7009),
        "{body:#}"
    );

    let rules = get(&server.api_url("/api/v1/rules")).await.json();
    let listed = rules["rules"].as_array().unwrap();
    let rule = listed
        .iter()
        .find(|r| r["id"] == "access-denied-logs")
        .unwrap();
    assert_eq!(rule["source"], "logs");
    assert_eq!(rule["join"], json!(["enduser.id"]));
    assert_eq!(rule["active"], true);
    assert_eq!(rule["matchedSpans"], 12, "{rule:#}");
    // Its other counters: every record evaluated, none late or evicted.
    let counters = &rule["counters"];
    assert!(counters["evaluated"].as_u64() >= Some(12), "{rule:#}");
    assert_eq!(counters["lateSpans"], 0, "{rule:#}");
    assert_eq!(counters["evictedKeys"], 0, "{rule:#}");
    assert!(counters["keys"].as_u64() >= Some(1), "{rule:#}");
}

const RELOAD_RULE: &str = "id: failed-logins\ntitle: Failed logins\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 5\n";

async fn rule_ids(server: &TestServer) -> (Vec<String>, Value) {
    let body = get(&server.api_url("/api/v1/rules")).await.json();
    let ids = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    (ids, body)
}

#[tokio::test]
async fn rule_files_reload_on_change_without_losing_windows() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rules) = common::serve_with_rules(
        dir.path(),
        "builtin_rules = false\nreload_interval = \"200ms\"\n",
        &[("failed-logins.yaml", RELOAD_RULE)],
        "",
    )
    .await;
    let url = server.otlp_http_url("/v1/traces");
    let agent = "test";

    // Three failures: below the count of five.
    let three: Vec<(&str, i64, &str, &str)> = (0..3)
        .map(|_| ("/api/login", 401, "198.51.100.4", agent))
        .collect();
    assert_eq!(
        post(&url, "application/json", common::gateway_export(&three, 1))
            .await
            .status,
        StatusCode::OK
    );

    // A second rule file appears: picked up without a restart.
    std::fs::write(
        rules.join("scanner.yaml"),
        "id: scanner\ntitle: Scanner\nseverity: low\nkind: match\ncondition: '{ span.user_agent.original =~ \"(?i)sqlmap.*\" }'\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (ids, body) = rule_ids(&server).await;
        if ids.contains(&"scanner".to_string()) {
            break body;
        }
        assert!(Instant::now() < deadline, "not reloaded: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        body["reload"]["lastSummary"]["kept"],
        json!(["failed-logins"]),
        "{body:#}"
    );
    assert_eq!(
        body["reload"]["lastSummary"]["added"],
        json!(["scanner"]),
        "{body:#}"
    );

    // Two more failures: the window kept the first three, so it fires now.
    let two: Vec<(&str, i64, &str, &str)> = (0..2)
        .map(|_| ("/api/login", 401, "198.51.100.4", agent))
        .collect();
    assert_eq!(
        post(&url, "application/json", common::gateway_export(&two, 100))
            .await
            .status,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = detections(&server).await;
        if let Some(d) = body["detections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ruleId"] == "failed-logins")
        {
            assert_eq!(d["count"], 5, "{d:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no detection after the reload: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken file: the reload is refused with its error and the rules
    // that ran keep running.
    std::fs::write(
        rules.join("broken.yaml"),
        "id: broken\ntitle: b\nseverity: urgent\nkind: match\ncondition: '{ }'\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (_, body) = rule_ids(&server).await;
        let failed = body["reload"]["failures"].as_u64().unwrap_or(0) >= 1;
        let error = body["reload"]["lastError"].as_str().unwrap_or("");
        if failed && error.contains("unknown severity") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the broken file was not noticed: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = body["reload"]["lastError"].as_str().unwrap();
    assert!(
        error.contains("broken.yaml:3:11: unknown severity `urgent`"),
        "{error}"
    );
    let (ids, _) = rule_ids(&server).await;
    assert_eq!(ids, vec!["failed-logins", "scanner"]);
    // The API reload answers 422 with the same errors.
    let answer = post(
        &server.api_url("/api/v1/rules/reload"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text()
    );
    assert!(
        answer.text().contains("unknown severity"),
        "{}",
        answer.text()
    );
    // `tracewarden rules reload` says the same, and fails.
    let reload = |base: String| async move {
        tokio::task::spawn_blocking(move || {
            Command::new(binary())
                .args(["rules", "reload", "--server", &base])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let out = reload(server.api_url("")).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.yaml:3:11: unknown severity"),
        "{stderr}"
    );
    // Fixed: the API reload applies it at once, and so does the command.
    std::fs::remove_file(rules.join("broken.yaml")).unwrap();
    let answer = post(
        &server.api_url("/api/v1/rules/reload"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["kept"], json!(["failed-logins", "scanner"]));
    let out = reload(server.api_url("")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("reloaded: 2 kept"), "{stdout}");
}

/// Files of `data_dir/segments` whose name contains `part`.
fn segment_files_with(data_dir: &std::path::Path, part: &str) -> Vec<String> {
    std::fs::read_dir(data_dir.join("segments"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.contains(part))
                .collect()
        })
        .unwrap_or_default()
}

async fn rule_matched(server: &TestServer, id: &str) -> u64 {
    let (_, body) = rule_ids(server).await;
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["matchedSpans"].as_u64())
        .unwrap()
}

/// After kill -9 the detection state comes back from its checkpoint and the
/// WAL replay adds only what the checkpoint lacks: a brute force in progress
/// is neither forgotten nor counted twice.
#[tokio::test]
async fn detection_state_survives_kill_9_without_counting_twice() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("failed-logins.yaml"), RELOAD_RULE).unwrap();
    let config = dir.path().join("tracewarden.toml");
    // Three spans make a segment: the first three failures then live only in
    // a segment (not replayed from the WAL) and in the checkpoint.
    std::fs::write(
        &config,
        format!(
            "[store]\nflush_spans = 3\n[detection]\nbuiltin_rules = false\nrules_dir = {:?}\ncheckpoint_interval = \"100ms\"\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut args = common::port_zero_args(&data);
    args.push("--config".into());
    args.push(config.into_os_string());
    let mut server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    let url = server.otlp_http_url("/v1/traces");
    let failure =
        |n: u32| common::gateway_export(&[("/api/login", 401, "198.51.100.8", "test")], n);

    let three: Vec<(&str, i64, &str, &str)> = (0..3)
        .map(|_| ("/api/login", 401, "198.51.100.8", "test"))
        .collect();
    assert_eq!(
        post(&url, "application/json", common::gateway_export(&three, 1))
            .await
            .status,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = detections(&server).await["stats"].clone();
        let flushed = !segment_files_with(&data, "manifest").is_empty();
        if flushed && stats["spans"] == 3 && stats["checkpoints"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no segment or checkpoint: {stats:#} {:?}\n{}",
            segment_files_with(&data, ""),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fourth failure, acknowledged and checkpointed: the WAL replay must
    // not feed it again (that would make five and fire).
    let before = detections(&server).await["stats"]["checkpoints"]
        .as_u64()
        .unwrap();
    assert_eq!(
        post(&url, "application/json", failure(10)).await.status,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = detections(&server).await["stats"].clone();
        if stats["spans"] == 4 && stats["checkpoints"].as_u64().unwrap_or(0) > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of the fourth: {stats:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another address, acknowledged just before the kill: whether or not a
    // checkpoint holds it, it counts once after the restart.
    let other = common::gateway_export(&[("/api/login", 401, "192.0.2.200", "test")], 30);
    assert_eq!(
        post(&url, "application/json", other).await.status,
        StatusCode::OK
    );
    server.kill();
    drop(server);

    let server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rule_matched(&server, "failed-logins").await < 5 {
        assert!(
            Instant::now() < deadline,
            "state not restored: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rule_matched(&server, "failed-logins").await,
        5,
        "{}",
        server.stderr()
    );
    assert_eq!(detections(&server).await["detections"], json!([]));

    // The fifth failure completes the burst: one detection, of five.
    assert_eq!(
        post(
            &server.otlp_http_url("/v1/traces"),
            "application/json",
            failure(20)
        )
        .await
        .status,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = detections(&server).await;
        let found = body["detections"].as_array().unwrap();
        if !found.is_empty() {
            assert_eq!(found.len(), 1, "{body:#}");
            assert_eq!(found[0]["count"], 5, "{body:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the burst was forgotten: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rule_matched(&server, "failed-logins").await, 6);
}

/// One span of the geo-weather example: (trace, span, parent, service, kind, name).
fn graph_span(
    trace: u32,
    span: u32,
    parent: Option<u32>,
    service: &str,
    kind: u8,
    start: u64,
) -> Value {
    let mut v = json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{trace:032x}"), "spanId": format!("{span:016x}"),
            "name": "GET /api/v1/locations/{city}", "kind": kind,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string(),
            "attributes": [{"key": "http.route", "value": {"stringValue": "/api/v1/locations/{city}"}}],
        }]}],
    });
    if let Some(parent) = parent {
        v["scopeSpans"][0]["spans"][0]["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    v
}

/// Whole-trace rules run on traces the server assembles: the location
/// service called straight from the gateway (not through weather) raises
/// topology-wrong-caller once the trace is idle; the allowed path does not.
#[tokio::test]
async fn topology_rules_run_on_assembled_traces() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tracewarden.toml");
    std::fs::write(
        &config,
        "[detection]\ntrace_idle = \"200ms\"\n[detection.site]\nentry_services = [\"api-gateway\"]\nallowed_edges = [\"api-gateway -> weather\", \"weather -> location\"]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut args = common::port_zero_args(&data);
    args.push("--config".into());
    args.push(config.into_os_string());
    let server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    let url = server.otlp_http_url("/v1/traces");
    let t = now_nanos() - 2_000_000_000;
    // Trace 1: gateway -> weather -> location (allowed). Trace 2: gateway
    // -> location (not allowed). Spans arrive in separate requests, children
    // first, as SDKs export them when they end.
    let send = |spans: Vec<Value>| {
        let url = url.clone();
        async move {
            let body = json!({"resourceSpans": spans}).to_string();
            let answer = post(&url, "application/json", body).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        }
    };
    send(vec![
        graph_span(1, 3, Some(2), "location", 2, t + 20),
        graph_span(2, 12, Some(11), "location", 2, t + 20),
    ])
    .await;
    send(vec![
        graph_span(1, 2, Some(1), "weather", 2, t + 10),
        graph_span(1, 1, None, "api-gateway", 2, t),
        graph_span(2, 11, Some(10), "api-gateway", 3, t + 10),
        graph_span(2, 10, None, "api-gateway", 2, t),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let body = detections(&server).await;
        if body["stats"]["assembly"]["completeTraces"].as_u64() == Some(2) {
            break body;
        }
        assert!(Instant::now() < deadline, "traces not assembled: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let found: Vec<&Value> = body["detections"].as_array().unwrap().iter().collect();
    assert_eq!(found.len(), 1, "{body:#}");
    assert_eq!(found[0]["ruleId"], "topology-wrong-caller");
    assert_eq!(found[0]["traceIds"][0], format!("{:032x}", 2));
    let evidence = found[0]["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("api-gateway") && evidence.contains("location"),
        "{evidence}"
    );
    assert_eq!(body["stats"]["assembly"]["partialTraces"], 0, "{body:#}");
    // The same counts in the metrics an operator alerts on.
    let text = metrics(&server).await;
    for (series, value) in [
        ("tracewarden_assembly_complete_traces_total", 2.0),
        ("tracewarden_assembly_buffered_traces", 0.0),
        (
            "tracewarden_assembly_partial_traces_total{reason=\"max_traces\"}",
            0.0,
        ),
        (
            "tracewarden_assembly_partial_traces_total{reason=\"trace_max_wait\"}",
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    // How long after its idle time each trace was evaluated.
    let trace_p50 = body["stats"]["traceDelayP50Ms"].as_f64().unwrap();
    let trace_p99 = body["stats"]["traceDelayP99Ms"].as_f64().unwrap();
    assert!(
        (0.0..15_000.0).contains(&trace_p50) && trace_p99 >= trace_p50,
        "{body:#}"
    );
}

#[tokio::test]
async fn a_geoip_database_that_cannot_be_read_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::write(&bogus, b"not a MaxMind database").unwrap();
    let config = dir.path().join("tracewarden.toml");
    std::fs::write(
        &config,
        format!(
            "[detection]\ngeoip_database = {:?}\n",
            bogus.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut args = common::port_zero_args(&data);
    args.push("--config".into());
    args.push(config.into_os_string());
    let failure = match TestServer::spawn(&args, &data).await {
        Ok(_) => panic!("started with an unreadable GeoIP database"),
        Err(failure) => failure,
    };
    assert!(
        failure.stderr.contains("GeoIP database")
            && failure.stderr.contains("GeoLite2-Country.mmdb"),
        "{}",
        failure.stderr
    );
}

/// `tracewarden rules ARGS [PATH]`, run to its end.
fn rules_cli(args: &[&str], path: Option<&std::path::Path>) -> std::process::Output {
    let mut command = Command::new(binary());
    command.arg("rules").args(args);
    if let Some(path) = path {
        command.arg(path);
    }
    command.output().unwrap()
}

#[test]
fn rules_test_and_lint_commands() {
    let repo_rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
    let test = rules_cli(&["test", repo_rules], None);
    let out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{out}");
    assert!(out.contains("0 failed"), "{out}");
    let lint = rules_cli(&["lint"], None);
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
    let lint = rules_cli(&["lint", "--config"], Some(&config));
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(lint.status.success(), "{out}");
    assert!(!out.contains("allowed_countries"), "{out}");
    assert!(out.contains("trusted_origins"), "{out}");
    let test = rules_cli(&["test", repo_rules, "--config"], Some(&config));
    let out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{out}");
    // Still off: CSRF (trusted_origins), wrong caller (allowed_edges), PII (third_parties).
    assert!(out.contains("(3 inactive with this site)"), "{out}");
    std::fs::write(
        &config,
        "[detection.site]\nallowed_countries = [\"germany\"]\n",
    )
    .unwrap();
    let lint = rules_cli(&["lint", "--config"], Some(&config));
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
    let lint = rules_cli(&["lint"], Some(dir.path()));
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(!lint.status.success(), "{out}");
    assert!(out.contains("bad.yaml:3:"), "{out}");
    assert!(out.contains("bad.yaml:6:"), "{out}");
    // One file alone, and a directory that is not there.
    let lint = rules_cli(&["lint"], Some(&dir.path().join("bad.yaml")));
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(!lint.status.success(), "{out}");
    assert!(out.contains("bad.yaml:3:"), "{out}");
    let lint = rules_cli(&["lint"], Some(&dir.path().join("missing")));
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(!lint.status.success(), "{out}");
    assert!(
        out.contains("missing: cannot read the file: not a directory of rule files"),
        "{out}"
    );
    assert!(out.contains(": 1 error\n"), "{out}");
    let test = rules_cli(&["test"], Some(dir.path()));
    assert!(!test.status.success());

    // With --config and no DIR, lint checks what that server runs: the
    // built-in pack and its rules_dir (whose rule replaces a built-in one).
    let own = tempfile::tempdir().unwrap();
    std::fs::write(
        own.path().join("mine.yaml"),
        "id: my-rule\ntitle: Mine\nseverity: low\nkind: match\ncondition: '{ span.x = 1 }'\n",
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[detection]\nrules_dir = {:?}\n",
            own.path().display().to_string()
        ),
    )
    .unwrap();
    let lint = rules_cli(&["lint", "--config"], Some(&config));
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(lint.status.success(), "{out}");
    assert!(out.contains("my-rule"), "{out}");
    assert!(out.contains("brute-force-login"), "{out}");
    assert!(out.contains("the built-in pack and "), "{out}");

    // An exception file beside it: shown under the built-in rule it names,
    // with its end, and counted apart from the rules.
    std::fs::write(
        own.path().join("pentest.yaml"),
        "id: pentest\ntitle: t\nexpires: 2020-01-01T00:00:00Z\nexception:\n  rules: [brute-force-login]\n  condition: '{ span.client.address = \"10.0.0.9\" }'\n",
    )
    .unwrap();
    let lint = rules_cli(&["lint", "--config"], Some(&config));
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(lint.status.success(), "{out}");
    assert!(
        out.contains("except: pentest (expired 2020-01-01T00:00:00.000Z)"),
        "{out}"
    );
    assert!(out.contains("off), 1 exception, no errors"), "{out}");

    // A directory without rule files tests nothing: a failure, not a pass.
    let empty = tempfile::tempdir().unwrap();
    let test = rules_cli(&["test"], Some(empty.path()));
    assert!(!test.status.success());
    assert!(
        String::from_utf8_lossy(&test.stderr).contains("no rule files"),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
}

/// Output piped into a reader that is gone (`... | head`): the command
/// ends quietly, not with a panic about printing to stdout.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(binary())
        .args(["rules", "lint"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the command has printed anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.code() == Some(141),
        "{:?}: {stderr}",
        out.status
    );
}

const JOIN_RULE: &str = "id: denied-by-caller\ntitle: Refusals per caller\nseverity: medium\nsource: logs\nkind: threshold\ncondition: '{ span.client.address != nil && span.log.body =~ \"(?i).*denied.*\" }'\njoin: [span.client.address]\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 3\n";

/// Trace and span id of request `i` of the join tests.
fn join_ids(i: u64) -> (String, String) {
    (
        format!("{:032x}", 0x5100 + i),
        format!("{:016x}", 0x5100 + i),
    )
}

/// Three refusals logged by the billing service, one per request.
fn refusal_logs(now: u64) -> Value {
    let records: Vec<Value> = (0..3u64)
        .map(|i| {
            let (trace, span) = join_ids(i);
            json!({
                "timeUnixNano": (now + i * 1_000_000).to_string(),
                "severityNumber": 13, "severityText": "WARN",
                "body": {"stringValue": format!("Access denied to invoice {i}")},
                "traceId": trace, "spanId": span,
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}],
    }]})
}

/// The handler spans of those requests, which know the caller.
fn handler_spans(now: u64) -> Value {
    let spans: Vec<Value> = (0..3u64)
        .map(|i| {
            let (trace, span) = join_ids(i);
            json!({
                "traceId": trace, "spanId": span, "name": "GET /invoices/{id}", "kind": 2,
                "startTimeUnixNano": (now + i * 1_000_000).to_string(),
                "endTimeUnixNano": (now + i * 1_000_000 + 500_000).to_string(),
                "attributes": [
                    {"key": "client.address", "value": {"stringValue": "203.0.113.77"}},
                    {"key": "http.route", "value": {"stringValue": "/invoices/{id}"}},
                ],
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeSpans": [{"spans": spans}],
    }]})
}

/// A fresh server whose rule set is the join rule, with a long wait.
async fn join_server(dir: &std::path::Path) -> TestServer {
    let rules = dir.join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("denied-by-caller.yaml"), JOIN_RULE).unwrap();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    // A long wait: the test's two requests may be far apart on a slow machine.
    TestServer::start_with_config(
        &data,
        &format!(
            "[detection]\nbuiltin_rules = false\nrules_dir = {:?}\nlog_join_wait = \"60s\"\n",
            rules.display().to_string()
        ),
    )
    .await
}

/// Posts an OTLP/JSON export to `path` and expects it accepted.
async fn post_json(server: &TestServer, path: &str, body: &Value) {
    let answer = post(
        &server.otlp_http_url(path),
        "application/json",
        body.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

/// The detections once the join rule has fired and three records joined.
/// The counters are published when the detection thread is idle, possibly
/// after the detection: waits for both.
async fn three_joined(server: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = detections(server).await;
        if !body["detections"].as_array().unwrap().is_empty()
            && body["stats"]["logJoin"]["joinedRecords"].as_u64() == Some(3)
        {
            return body;
        }
        assert!(Instant::now() < deadline, "no joined detection: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A log rule with `join:` keys on the caller's address that only the
/// server span carries: the records, exported first, wait for their spans
/// and the detection's actor is the span's `client.address`; a record
/// logged in a child span of the handler climbs to it.
#[tokio::test]
async fn log_records_wait_for_their_span_and_key_on_its_caller() {
    let dir = tempfile::tempdir().unwrap();
    let server = join_server(dir.path()).await;
    let now = now_nanos() - 2_000_000_000;
    // The first refusal is logged in a child span of the handler (its
    // database call), which does not know the caller.
    let child = format!("{:016x}", 0x6100);
    let mut logs = refusal_logs(now);
    logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["spanId"] = json!(child);
    post_json(&server, "/v1/logs", &logs).await;
    // The records wait: no span has told who the caller is yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = detections(&server).await;
        if body["stats"]["logJoin"]["pendingRecords"].as_u64() == Some(3) {
            assert_eq!(body["detections"].as_array().unwrap().len(), 0);
            break;
        }
        assert!(Instant::now() < deadline, "records not held: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut traces = handler_spans(now);
    let (trace, handler) = join_ids(0);
    // The child ends, and is exported, before its handler.
    let Some(spans) = traces["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array_mut() else {
        unreachable!("handler_spans holds a span list");
    };
    spans.insert(
        0,
        json!({
            "traceId": trace, "spanId": child, "parentSpanId": handler,
            "name": "SELECT invoices", "kind": 3,
            "startTimeUnixNano": (now + 100_000).to_string(),
            "endTimeUnixNano": (now + 200_000).to_string(),
            "attributes": [{"key": "db.system.name", "value": {"stringValue": "postgresql"}}],
        }),
    );
    post_json(&server, "/v1/traces", &traces).await;
    let body = three_joined(&server).await;
    let found = body["detections"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body:#}");
    assert_eq!(found[0]["ruleId"], "denied-by-caller");
    assert_eq!(found[0]["key"]["span.client.address"], "203.0.113.77");
    assert_eq!(found[0]["count"], 3);
    // The evidence opens the request that logged the refusal.
    assert_eq!(found[0]["traceIds"][0], join_ids(2).0, "{body:#}");
    let join = &body["stats"]["logJoin"];
    assert_eq!(join["joinedRecords"], 3, "{body:#}");
    assert_eq!(join["ancestorJoinedRecords"], 1, "{body:#}");
    assert_eq!(join["pendingRecords"], 0, "{body:#}");
    let text = metrics(&server).await;
    for (series, value) in [
        ("tracewarden_log_join_joined_records_total", 3.0),
        ("tracewarden_log_join_ancestor_joined_records_total", 1.0),
        ("tracewarden_log_join_pending_records", 0.0),
        (
            "tracewarden_log_join_unjoined_records_total{reason=\"expired\"}",
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
}

/// Right after a start no record has needed a join yet, so nothing is
/// indexed; records exported after their spans in the first minute still
/// join them at once (the engine kept the spans), instead of waiting for
/// spans that already passed and being evaluated alone after the wait.
#[tokio::test]
async fn right_after_a_start_records_join_spans_that_came_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = join_server(dir.path()).await;
    let now = now_nanos() - 2_000_000_000;
    post_json(&server, "/v1/traces", &handler_spans(now)).await;
    // The spans have been through detection before the records come.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&metrics(&server).await, "tracewarden_detection_spans_total") != Some(3.0) {
        assert!(Instant::now() < deadline, "spans not detected on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    post_json(&server, "/v1/logs", &refusal_logs(now)).await;
    let body = three_joined(&server).await;
    let found = body["detections"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body:#}");
    assert_eq!(found[0]["key"]["span.client.address"], "203.0.113.77");
    let join = &body["stats"]["logJoin"];
    assert_eq!(join["heldRecords"], 0, "none waited: {body:#}");
    assert_eq!(join["indexSpans"], 3, "{body:#}");
}

const NESTED_RULE: &str = "id: nested-failure\ntitle: A failed login under a page request\nseverity: high\nkind: match\ncondition: '{ name = \"GET /\" } >> { span.http.response.status_code = 401 }'\n";

/// A trace waiting for its idle time when the server is killed is in the
/// detection checkpoint: after the restart the whole-trace rule runs on it,
/// and span rules do not count its spans again.
#[tokio::test]
async fn a_trace_waiting_for_assembly_survives_kill_9() {
    trace_waiting_for_assembly_survives_kill_9(false).await;
}

/// The same when the trace's spans were flushed into a segment before the
/// kill: the checkpoint names them by their WAL record, and the replay
/// hands that record back although a segment holds it.
#[tokio::test]
async fn a_trace_waiting_for_assembly_survives_kill_9_after_a_flush() {
    trace_waiting_for_assembly_survives_kill_9(true).await;
}

async fn trace_waiting_for_assembly_survives_kill_9(flushed: bool) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("failed-logins.yaml"), RELOAD_RULE).unwrap();
    std::fs::write(rules.join("nested-failure.yaml"), NESTED_RULE).unwrap();
    let config = dir.path().join("tracewarden.toml");
    let write_config = |idle: &str| {
        std::fs::write(
            &config,
            format!(
                "{}[detection]\nbuiltin_rules = false\nrules_dir = {:?}\ncheckpoint_interval = \"100ms\"\ntrace_idle = \"{idle}\"\n",
                if flushed { "[store]\nflush_spans = 2\n" } else { "" },
                rules.display().to_string()
            ),
        )
        .unwrap();
    };
    // Before the crash the trace cannot complete: it is still waiting.
    write_config("1h");
    let data = dir.path().join("data");
    let mut args = common::port_zero_args(&data);
    args.push("--config".into());
    args.push(config.clone().into_os_string());
    let mut server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    let t = now_nanos() - 1_000_000_000;
    let span = |id: u32, parent: Option<u32>, name: &str, status: i64| {
        let mut v = json!({
            "traceId": format!("{:032x}", 0xabc), "spanId": format!("{id:016x}"),
            "name": name, "kind": 2,
            "startTimeUnixNano": t.to_string(), "endTimeUnixNano": (t + 1_000_000).to_string(),
            "attributes": [
                {"key": "http.response.status_code", "value": {"intValue": status.to_string()}},
                {"key": "client.address", "value": {"stringValue": "198.51.100.9"}},
            ],
        });
        if let Some(parent) = parent {
            v["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        v
    };
    let before = detections(&server).await["stats"]["checkpoints"]
        .as_u64()
        .unwrap();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": [span(2, Some(1), "POST /login", 401), span(1, None, "GET /", 200)]}],
    }]});
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        body.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // Wait for a checkpoint taken after the batch: only the batch makes
    // the state change, so any checkpoint after `before` holds the trace.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = detections(&server).await["stats"].clone();
        if stats["spans"] == 2
            && stats["assembly"]["bufferedSpans"] == 2
            && stats["checkpoints"].as_u64().unwrap() > before
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spans not buffered and checkpointed: {stats:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(detections(&server).await["detections"], json!([]));
    if flushed {
        let deadline = Instant::now() + Duration::from_secs(30);
        while segment_files_with(&data, "manifest").is_empty() {
            assert!(Instant::now() < deadline, "the batch was not flushed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server.kill();
    drop(server);

    // After the restart the idle time is short: the restored trace completes.
    write_config("200ms");
    let server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = detections(&server).await;
        if !body["detections"].as_array().unwrap().is_empty() {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the waiting trace was lost: {body:#}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let found = body["detections"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body:#}");
    assert_eq!(found[0]["ruleId"], "nested-failure");
    assert_eq!(found[0]["traceIds"][0], format!("{:032x}", 0xabc));
    // Not replayed: the span rule counted the failure once, before the kill.
    assert_eq!(body["stats"]["replayedBatches"], 0, "{body:#}");
    assert_eq!(rule_matched(&server, "failed-logins").await, 1);
    // Both spans came back from the WAL record the checkpoint named.
    let assembly = &body["stats"]["assembly"];
    assert_eq!(assembly["missingRestoredSpans"], 0, "{body:#}");
    assert_eq!(assembly["completeTraces"], 1, "{body:#}");
}

/// An exception in `rules_dir` tunes a built-in rule without copying it:
/// the pentest box's failed logins are left out of brute-force-login (and
/// counted), anyone else's still fire; a typo in the rule ids refuses the
/// reload with its position.
#[tokio::test]
async fn an_exception_file_leaves_its_spans_out_of_a_built_in_rule() {
    const EXCEPTION: &str = "id: pentest-box\ntitle: Our pentest box\nexception:\n  rules: [brute-force-login, scanner-user-agent]\n  condition: '{ span.client.address = \"198.51.100.66\" }'\n";
    let dir = tempfile::tempdir().unwrap();
    let (server, rules) = common::serve_with_rules(
        dir.path(),
        "reload_interval = \"200ms\"\n",
        &[("pentest-box.yaml", EXCEPTION)],
        "",
    )
    .await;

    let failures = |address: &'static str| -> Vec<(&'static str, i64, &'static str, &'static str)> {
        (0..12)
            .map(|_| ("/api/login", 401, address, "Mozilla/5.0"))
            .collect()
    };
    let mut requests = failures("198.51.100.66");
    requests.extend(failures("203.0.113.77"));
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        common::gateway_export(&requests, 1),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let deadline = Instant::now() + Duration::from_secs(10);
    let rule = loop {
        let (_, body) = rule_ids(&server).await;
        let rule = body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "brute-force-login")
            .cloned()
            .unwrap();
        if rule["detections"] == 1 && rule["counters"]["excepted"] == 12 {
            break rule;
        }
        assert!(Instant::now() < deadline, "not detected yet: {rule:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rule["exceptions"], json!(["pentest-box"]), "{rule:#}");
    assert_eq!(rule["matchedSpans"], 12, "{rule:#}");
    let body = detections(&server).await;
    let actors: Vec<&Value> = body["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["ruleId"] == "brute-force-login")
        .map(|d| &d["key"])
        .collect();
    assert_eq!(actors.len(), 1, "{body:#}");
    assert!(actors[0].to_string().contains("203.0.113.77"), "{body:#}");

    // A typo in the rule ids: the reload is refused, with the position.
    std::fs::write(
        rules.join("pentest-box.yaml"),
        EXCEPTION.replace("[brute-force-login,", "[brute-force-logon,"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = rule_ids(&server).await;
        let error = body["reload"]["lastError"].as_str().unwrap_or("");
        if error.contains("pentest-box.yaml:4:11: invalid `exception.rules`: no rule has the id `brute-force-logon`") {
            break;
        }
        assert!(Instant::now() < deadline, "typo not reported: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
