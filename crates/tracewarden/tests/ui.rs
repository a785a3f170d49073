//! The web UI end to end: its pure logic under node's test runner; the
//! shell and its assets as served (headers, caching, compression, public
//! with keys on); then the UI itself in
//! Debian's chromium driven by playwright-core (`tests/ui/e2e.mjs`) against
//! the real server holding fixture data: alerts from a brute force and a
//! scanner, a trace with markup in its attributes and its payload, a
//! 5,000-span trace over five services.
//!
//! The browser tests skip with a message when chromium, node or
//! `tests/ui/node_modules` is missing, unless `TW_REQUIRE_CHROMIUM=1` (CI
//! sets it after `apt-get install chromium` and `npm ci`). Screenshots are
//! saved in `target/ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Http, Response, TestServer, gateway_export, now_nanos};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// The address of the brute force (and the actor the UI follows).
const ATTACKER: &str = "198.51.100.9";
/// The trace whose span carries markup.
const XSS_TRACE: u32 = 0x7777;
/// The 5,000-span trace.
const BIG_TRACE: u32 = 0xb16;
const BIG_SPANS: usize = 5_000;
/// A bearer token used too often, and the first of its traces' ids.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzY3JhcGVyIn0.dWktdGVzdC1zaWduYXR1cmU";
const TOKEN_TRACES: u64 = 0x70_0000;
/// The browser script's whole run, at most.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

async fn send(server: &TestServer, path: &str, key: Option<&str>, body: String) -> Response {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    Http::new()
        .send(Method::POST, &server.otlp_http_url(path), &headers, body)
        .await
}

async fn api(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Response {
    Http::new()
        .send(Method::GET, &server.api_url(path), headers, Bytes::new())
        .await
}

fn span(trace: u32, n: usize, parent: Option<usize>, start: u64, service_attr: &str) -> Value {
    let mut span = json!({
        "traceId": format!("{trace:032x}"), "spanId": format!("{:016x}", n + 1),
        // Server spans: each call from one service to the next is an edge
        // of the service graph.
        "name": format!("{service_attr} op {}", n % 17), "kind": 2,
        "startTimeUnixNano": (start + n as u64 * 20_000).to_string(),
        "endTimeUnixNano": (start + n as u64 * 20_000 + 1_000_000 + (n as u64 % 7) * 300_000).to_string(),
        "attributes": [{"key": "work.item", "value": {"intValue": n.to_string()}}],
    });
    if let Some(p) = parent {
        span["parentSpanId"] = json!(format!("{:016x}", p + 1));
    }
    if n % 97 == 5 {
        span["status"] = json!({"code": 2, "message": "boom"});
    }
    span
}

/// Fixture traffic: benign logins, a brute force from [`ATTACKER`], a
/// scanner, a span with markup in its attributes, and a 5,000-span trace
/// over five services (a 4-ary call tree) with log records at its spans.
async fn send_fixtures(server: &TestServer, key: Option<&str>) {
    let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let mut requests: Vec<(&str, i64, &str, &str)> = (0..12)
        .map(|_| ("/api/login", 401, ATTACKER, browser))
        .collect();
    requests.push(("/api/login", 200, "203.0.113.5", browser));
    requests.push((
        "/api/search",
        200,
        "192.0.2.66",
        "sqlmap/1.8.11#stable (https://sqlmap.org)",
    ));
    let answer = send(server, "/v1/traces", key, gateway_export(&requests, 1000)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let start = now_nanos() - 60_000_000_000;
    let markup = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{XSS_TRACE:032x}"), "spanId": format!("{XSS_TRACE:016x}"),
            "name": "<script>window.__pwned = 2</script>", "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 3_000_000).to_string(),
            "attributes": [
                {"key": "http.route", "value": {"stringValue": "/api/profile"}},
                {"key": "user_agent.original", "value": {"stringValue": "<img src=x onerror=\"window.__pwned = 1\">"}},
                {"key": "client.address", "value": {"stringValue": "192.0.2.99"}},
            ],
        }]}],
    }]});
    let answer = send(server, "/v1/traces", key, markup.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    // A 4-ary call tree; each level of it one service further from the
    // gateway (the deepest levels all in the ledger).
    let services = ["gateway", "orders", "inventory", "payments", "ledger"];
    let parent = |n: usize| n.checked_sub(1).map(|p| p / 4);
    let mut depth = vec![0usize; BIG_SPANS];
    for n in 1..BIG_SPANS {
        depth[n] = depth[(n - 1) / 4] + 1;
    }
    let mut resource_spans = Vec::new();
    for (s, service) in services.iter().enumerate() {
        let spans: Vec<Value> = (0..BIG_SPANS)
            .filter(|&n| depth[n].min(services.len() - 1) == s)
            .map(|n| span(BIG_TRACE, n, parent(n), start, service))
            .collect();
        resource_spans.push(json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "fixture"}, "spans": spans}],
        }));
    }
    let big = json!({ "resourceSpans": resource_spans });
    let answer = send(server, "/v1/traces", key, big.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let records: Vec<Value> = (0..50usize)
        .map(|i| {
            let n = i * 97;
            json!({
                "timeUnixNano": (start + n as u64 * 20_000 + 500_000).to_string(),
                "severityNumber": 13, "severityText": "WARN",
                "body": {"stringValue": format!("work item {n} retried")},
                "traceId": format!("{BIG_TRACE:032x}"), "spanId": format!("{:016x}", n + 1),
            })
        })
        .collect();
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}],
    }]});
    let answer = send(server, "/v1/logs", key, logs.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    // 650 requests in 65 s carrying one bearer token (the per-token rate
    // rule fires; its alert names the token by fingerprint only).
    let spans: Vec<Value> = (0..650u64)
        .map(|n| {
            let at = start + n * 100_000_000;
            json!({
                "traceId": format!("{:032x}", TOKEN_TRACES + n), "spanId": format!("{:016x}", TOKEN_TRACES + n),
                "name": "GET /api/products/{id}", "kind": 2,
                "startTimeUnixNano": at.to_string(), "endTimeUnixNano": (at + 2_000_000).to_string(),
                "attributes": [
                    {"key": "client.address", "value": {"stringValue": "198.51.100.140"}},
                    {"key": "http.request.method", "value": {"stringValue": "GET"}},
                    {"key": "http.route", "value": {"stringValue": "/api/products/{id}"}},
                    {"key": "url.path", "value": {"stringValue": format!("/api/products/{n}")}},
                    {"key": "http.response.status_code", "value": {"intValue": "200"}},
                    {"key": "http.request.header.authorization",
                     "value": {"arrayValue": {"values": [{"stringValue": format!("Bearer {TOKEN}")}]}}},
                ],
            })
        })
        .collect();
    let tokened = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "catalog"}}]},
        "scopeSpans": [{"spans": spans}],
    }]});
    let answer = send(server, "/v1/traces", key, tokened.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

/// Posts a request body (with markup in it) for the markup trace's span.
async fn send_payload(server: &TestServer, key: Option<&str>) {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    let url = server.api_url(&format!(
        "/api/v1/payloads?traceId={XSS_TRACE:032x}&spanId={XSS_TRACE:016x}&kind=request"
    ));
    let body = r#"{"comment": "<img src=x onerror=\"window.__pwned = 3\">"}"#;
    let answer = Http::new()
        .send(Method::POST, &url, &headers, body.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
}

/// Waits until the brute force and the scanner have raised alerts and the
/// big trace is readable whole.
async fn wait_for_fixtures(server: &TestServer, headers: &[(&str, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = api(server, "/api/v1/alerts", headers).await.json();
        let rules: Vec<&str> = alerts["alerts"]
            .as_array()
            .map(|a| a.iter().filter_map(|a| a["ruleId"].as_str()).collect())
            .unwrap_or_default();
        let trace = api(server, &format!("/api/v1/traces/{BIG_TRACE:032x}"), headers).await;
        let whole = trace.status == StatusCode::OK
            && trace.json()["spanCount"].as_u64() == Some(BIG_SPANS as u64);
        if whole
            && rules.contains(&"brute-force-login")
            && rules.contains(&"scanner-user-agent")
            && rules.contains(&"excessive-request-rate-token")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fixtures not ready: alerts {rules:?}, big trace {}",
            trace.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("ui-screenshots")
}

/// The browser and the driver, or why they are missing.
fn browser() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("TW_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!(
            "{} not found (apt-get install chromium)",
            chromium.display()
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node not found".into());
    }
    if !script_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Err(format!(
            "playwright-core not installed (cd {} && npm ci)",
            script_dir().display()
        ));
    }
    Ok(chromium)
}

/// The browser, or `None` after saying why the test is skipped; panics
/// instead when `TW_REQUIRE_CHROMIUM=1`.
fn browser_or_skip() -> Option<PathBuf> {
    match browser() {
        Ok(path) => Some(path),
        Err(why) if std::env::var("TW_REQUIRE_CHROMIUM").as_deref() == Ok("1") => {
            panic!("TW_REQUIRE_CHROMIUM=1 but {why}")
        }
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            None
        }
    }
}

/// Runs `e2e.mjs` for `scenario`; panics with its output unless it passes.
fn run_script(chromium: &Path, server: &TestServer, scenario: &str, fixture: &Value) {
    let dir = screenshots();
    let mut child = Command::new("node")
        .arg("e2e.mjs")
        .current_dir(script_dir())
        .env("TW_URL", server.api_url(""))
        .env("TW_SCENARIO", scenario)
        .env("TW_FIXTURE", fixture.to_string())
        .env("TW_SCREENSHOTS", &dir)
        .env("TW_CHROMIUM", chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // Read the pipes on threads so a chatty browser cannot block on them.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    println!("{stdout}");
    println!("screenshots in {}", dir.display());
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test `{scenario}` failed ({status:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server\n{}",
        server.stderr()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// The UI's pure logic (span order, graph layers, time formats) under
/// node's test runner (`tests/ui/units.test.mjs`); needs node only.
#[test]
fn ui_logic_in_node() {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("TW_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "TW_REQUIRE_CHROMIUM=1 but node is not installed"
        );
        eprintln!("skipping the UI's unit tests: node not found");
        return;
    }
    let output = Command::new("node")
        .args(["--test", "units.test.mjs"])
        .current_dir(script_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("# fail 0"), "{text}");
}

#[tokio::test]
async fn shell_and_assets_are_served_with_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;

    let shell = api(&server, "/", &[]).await;
    assert_eq!(shell.status, StatusCode::OK);
    assert_eq!(
        shell.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = shell.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(shell.header("x-content-type-options"), Some("nosniff"));
    assert!(
        shell
            .text()
            .contains("<script type=\"module\" src=\"/ui/app.js\">")
    );

    // Revalidation answers 304 with the same tag.
    let etag = shell.header("etag").unwrap().to_string();
    let again = api(&server, "/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    // Scripts: their type, gzip when accepted (and what it unpacks to).
    let plain = api(&server, "/ui/app.js", &[]).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(
        plain.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(plain.header("content-encoding"), None);
    let zipped = api(&server, "/ui/app.js", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.body.len() < plain.body.len());
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain.body);
    assert_eq!(
        api(&server, "/ui/style.css", &[])
            .await
            .header("content-type"),
        Some("text/css; charset=utf-8")
    );

    // Unknown assets are a JSON 404; the shell has one URL only.
    for path in ["/ui/nope.js", "/ui/index.html", "/ui/../Cargo.toml"] {
        let missing = api(&server, path, &[]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
    }

    // Without keys, the page may do everything.
    let me = api(&server, "/api/v1/whoami", &[]).await.json();
    assert_eq!(me, json!({"role": "admin", "key": null, "auth": false}));

    // A TraceQL syntax error says where it is.
    let bad = api(&server, "/api/v1/search?q=%7B%20span.a%20%3D%20%7D", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let error = &bad.json()["error"];
    assert_eq!(
        error["position"],
        json!({"offset": 11, "line": 1, "column": 12}),
        "{error}"
    );
}

#[tokio::test]
async fn with_keys_the_page_is_public_and_whoami_tells_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = common::create_key(dir.path(), "viewer", "viewer");
    let server = TestServer::start(dir.path()).await;
    // The page and its assets need no key; the API does.
    assert_eq!(api(&server, "/", &[]).await.status, StatusCode::OK);
    assert_eq!(api(&server, "/ui/api.js", &[]).await.status, StatusCode::OK);
    let refused = api(&server, "/api/v1/whoami", &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {viewer}");
    let me = api(&server, "/api/v1/whoami", &[("authorization", &bearer)])
        .await
        .json();
    assert_eq!(me, json!({"role": "viewer", "key": "viewer", "auth": true}));
}

#[tokio::test]
async fn the_ui_in_chromium_without_keys() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // An exception file beside the built-in pack: the rules page shows it
    // under the rule it names.
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("ui-exception.yaml"),
        "id: ui-exception\ntitle: t\nexception:\n  rules: [brute-force-login]\n  condition: '{ span.client.address = \"192.0.2.250\" }'\n",
    )
    .unwrap();
    let config = format!(
        "[detection]\nrules_dir = {:?}\n",
        rules.path().display().to_string()
    );
    let server = TestServer::start_with_config(dir.path(), &config).await;
    send_fixtures(&server, None).await;
    send_payload(&server, None).await;
    wait_for_fixtures(&server, &[]).await;
    let fixture = json!({
        "attacker": ATTACKER,
        "tokenFingerprint": tracewarden_model::credential::fingerprint(TOKEN),
        "xssTraceId": format!("{XSS_TRACE:032x}"),
        "bigTraceId": format!("{BIG_TRACE:032x}"),
    });
    // The server is another process: blocking this runtime is harmless.
    run_script(&chromium, &server, "open", &fixture);
}

#[tokio::test]
async fn the_ui_in_chromium_with_keys() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let viewer = common::create_key(dir.path(), "viewer", "viewer");
    let admin = common::create_key(dir.path(), "admin", "admin");
    let server = TestServer::start(dir.path()).await;
    send_fixtures(&server, Some(&admin)).await;
    let bearer = format!("Bearer {admin}");
    wait_for_fixtures(&server, &[("authorization", &bearer)]).await;
    let fixture = json!({
        "attacker": ATTACKER,
        "bigTraceId": format!("{BIG_TRACE:032x}"),
        "viewerKey": viewer,
        "adminKey": admin,
    });
    run_script(&chromium, &server, "keys", &fixture);
}
