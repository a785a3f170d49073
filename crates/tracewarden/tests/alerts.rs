//! Alerts end to end: failed logins sent over OTLP/HTTP to the real server
//! raise a brute-force-login alert, served by `/api/v1/alerts` with its
//! actor and evidence, delivered to a webhook (Alertmanager's webhook v4
//! payload) and to a real Prometheus Alertmanager; silences mute it,
//! acknowledgements and silences survive a restart, and the `alerts` and
//! `silence` commands drive it all.
//!
//! The Alertmanager part needs `/usr/bin/prometheus-alertmanager` (or
//! `TW_ALERTMANAGER_BIN`); without it that part is skipped with a message,
//! unless `TW_REQUIRE_ALERTMANAGER` is set (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post as route_post;
use bytes::Bytes;
use common::{Http, TestServer, binary, get, now_nanos, port_zero_args, post};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);
const ATTACKER: &str = "203.0.113.7";
const OTHER: &str = "198.51.100.9";

/// Polls `check` until it returns `Some`, or fails with `what`.
async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Twelve failed logins per address, one server span each (the built-in
/// brute-force-login rule fires at ten within five minutes).
fn failed_logins(addresses: &[&str], first_trace: u32) -> String {
    let now = now_nanos();
    let mut spans = Vec::new();
    for (a, address) in addresses.iter().enumerate() {
        for i in 0..12u32 {
            let n = first_trace + a as u32 * 100 + i;
            let start = now - 5_000_000_000 + u64::from(n) * 1_000;
            spans.push(json!({
                "traceId": format!("{n:032x}"), "spanId": format!("{n:016x}"),
                "name": "POST /api/login", "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 2_000_000).to_string(),
                "attributes": [
                    {"key": "http.route", "value": {"stringValue": "/api/login"}},
                    {"key": "http.response.status_code", "value": {"intValue": "401"}},
                    {"key": "client.address", "value": {"stringValue": address}},
                ],
            }));
        }
    }
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }]})
    .to_string()
}

async fn send_logins(server: &TestServer, addresses: &[&str], first_trace: u32) {
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        failed_logins(addresses, first_trace),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

/// Webhook payloads received, in order.
type Received = Arc<Mutex<Vec<Value>>>;

async fn hook(State(received): State<Received>, body: Bytes) -> StatusCode {
    match serde_json::from_slice(&body) {
        Ok(json) => {
            received.lock().unwrap().push(json);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// A local webhook receiver; its URL and what it received.
async fn webhook() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    let app = Router::new()
        .route("/hook", route_post(hook))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), received)
}

/// The alerts of every payload received for an address.
fn received_for(received: &Received, address: &str) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["client_address"] == address)
        .collect()
}

/// A Prometheus Alertmanager on a free port, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn alertmanager(dir: &Path) -> Option<Alertmanager> {
    const DEFAULT_BIN: &str = "/usr/bin/prometheus-alertmanager";
    let bin = std::env::var_os("TW_ALERTMANAGER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
    if !bin.is_file() {
        assert!(
            std::env::var_os("TW_REQUIRE_ALERTMANAGER").is_none(),
            "TW_REQUIRE_ALERTMANAGER is set but {} is missing",
            bin.display()
        );
        eprintln!("Alertmanager part skipped: {} not found", bin.display());
        return None;
    }
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
        .spawn()
        .unwrap();
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let ready = format!("{}/-/ready", am.url);
    wait_for("Alertmanager to be ready", async || {
        let answer = common::try_request(Method::GET, &ready, &[], Bytes::new()).await;
        answer.ok().filter(|r| r.status == StatusCode::OK)
    })
    .await;
    Some(am)
}

/// `serve` on port 0 everywhere with `config` as its file.
async fn start(data_dir: &Path, config: &Path) -> TestServer {
    let mut args = port_zero_args(data_dir);
    args.push(OsString::from("--config"));
    args.push(config.as_os_str().to_owned());
    let server = TestServer::spawn(&args, data_dir)
        .await
        .unwrap_or_else(|f| panic!("did not start: {f:?}"));
    server.wait_ready().await;
    server
}

async fn alerts(server: &TestServer, query: &str) -> Value {
    let answer = get(&server.api_url(&format!("/api/v1/alerts{query}"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
    answer.json()
}

async fn alert_for(server: &TestServer, address: &str) -> Value {
    wait_for(&format!("the alert for {address}"), async || {
        let body = alerts(server, &format!("?actor={address}")).await;
        body["alerts"].as_array().unwrap().first().cloned()
    })
    .await
}

/// Runs the CLI; its stdout, or a failure with both streams.
fn cli(args: &[&str]) -> String {
    let output = Command::new(binary()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tracewarden {args:?}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brute_force_alert_reaches_the_api_a_webhook_and_alertmanager_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook_url, received) = webhook().await;
    let am = alertmanager(dir.path()).await;
    // Both receivers take every alert: Alertmanager through a child route
    // that continues, the webhook through the next.
    let mut config = format!(
        r#"
[alerts.route]
receiver = "hook"
group_by = ["alertname", "client_address"]
group_wait = "0s"
group_interval = "1s"
[[alerts.route.routes]]
matchers = ['severity=~"high|critical"']
receiver = "{am_receiver}"
continue = true
[[alerts.route.routes]]
receiver = "hook"
[[alerts.receivers]]
name = "hook"
backoff_initial = "50ms"
backoff_max = "200ms"
[alerts.receivers.webhook]
url = "{hook_url}"
[[alerts.receivers]]
name = "none"
"#,
        am_receiver = if am.is_some() { "am" } else { "none" }
    );
    if let Some(am) = &am {
        config.push_str(&format!(
            "[[alerts.receivers]]\nname = \"am\"\nbackoff_initial = \"50ms\"\n[alerts.receivers.alertmanager]\nurl = \"{}\"\n",
            am.url
        ));
    }
    let config_path = dir.path().join("tracewarden.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut server = start(&data, &config_path).await;

    // No alert yet; bad requests are refused with a message.
    assert_eq!(alerts(&server, "").await["alerts"], json!([]));
    let http = Http::new();
    for (path, status) in [
        ("/api/v1/alerts?state=open", StatusCode::BAD_REQUEST),
        ("/api/v1/alerts?severity=urgent", StatusCode::BAD_REQUEST),
        ("/api/v1/alerts/not-hex", StatusCode::BAD_REQUEST),
        ("/api/v1/alerts/00000000000000ff", StatusCode::NOT_FOUND),
    ] {
        let answer = get(&server.api_url(path)).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert!(answer.json()["error"]["message"].is_string(), "{path}");
    }

    send_logins(&server, &[ATTACKER], 1).await;
    let alert = alert_for(&server, ATTACKER).await;
    let fingerprint = alert["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(alert["status"], "firing", "{alert:#}");
    assert_eq!(alert["ruleId"], "brute-force-login");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["actor"], json!({"client_address": ATTACKER}));
    assert_eq!(alert["labels"]["rule_kind"], "threshold");
    assert_eq!(alert["title"], "Brute-force login from one address");
    assert_eq!(alert["annotations"]["tags"], "T1110,T1110.001");
    assert!(
        alert["annotations"]["response"]
            .as_str()
            .unwrap()
            .contains("rate-limit")
    );
    assert_eq!(alert["evidence"]["count"], 10);
    // The rule's `evidence:` fields, read from the tenth failure (these
    // spans carry no user or user agent).
    const EVIDENCE: &str =
        "span.enduser.id=nil span.http.route=/api/login span.user_agent.original=nil";
    assert_eq!(alert["annotations"]["evidence"], EVIDENCE, "{alert:#}");

    // Filters.
    for (query, expected) in [
        (
            "?state=firing&severity=high,critical&rule=brute-force-login",
            1,
        ),
        ("?state=resolved", 0),
        ("?severity=critical", 0),
        ("?rule=sql-injection", 0),
        (&format!("?actor=client_address={ATTACKER}") as &str, 1),
        (&format!("?actor=span.client.address={ATTACKER}"), 1),
        ("?actor=client_address=192.0.2.1", 0),
        ("?since=1h", 1),
        ("?limit=1", 1),
    ] {
        let body = alerts(&server, query).await;
        assert_eq!(
            body["alerts"].as_array().unwrap().len(),
            expected,
            "{query}"
        );
    }

    // The evidence opens as traces.
    let detail = get(&server.api_url(&format!("/api/v1/alerts/{fingerprint}"))).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text());
    let detail = detail.json();
    let traces = detail["traces"].as_array().unwrap();
    assert!(!traces.is_empty(), "{detail:#}");
    for trace in traces {
        let href = trace["href"].as_str().unwrap();
        assert_eq!(
            href,
            format!("/api/v1/traces/{}", trace["traceId"].as_str().unwrap())
        );
        let opened = get(&server.api_url(href)).await;
        assert_eq!(opened.status, StatusCode::OK, "{href}: {}", opened.text());
        assert_eq!(
            opened.json()["spans"][0]["attributes"]["client.address"],
            ATTACKER
        );
    }
    assert_eq!(detail["silencedBy"], json!([]));
    assert_eq!(detail["inhibited"], false);

    // The webhook gets Alertmanager's webhook v4 payload.
    let payload = wait_for("the webhook notification", async || {
        let all = received.lock().unwrap().clone();
        all.into_iter()
            .find(|p| p["alerts"][0]["labels"]["client_address"] == ATTACKER)
    })
    .await;
    assert_eq!(payload["version"], "4", "{payload:#}");
    assert_eq!(payload["status"], "firing");
    assert_eq!(payload["receiver"], "hook");
    assert_eq!(
        payload["externalURL"],
        format!("http://{}", server.addrs.api),
        "the external URL defaults to the API's address"
    );
    let sent = &payload["alerts"][0];
    assert_eq!(sent["fingerprint"], fingerprint.as_str());
    assert_eq!(sent["labels"]["alertname"], "brute-force-login");
    assert_eq!(sent["endsAt"], "0001-01-01T00:00:00Z");
    let generator = sent["generatorURL"].as_str().unwrap();
    let trace_link = generator
        .strip_prefix(&format!("http://{}", server.addrs.api))
        .unwrap();
    assert_eq!(
        get(&server.api_url(trace_link)).await.status,
        StatusCode::OK
    );

    // Alertmanager gets it through its receiver, with the same fingerprint.
    if let Some(am) = &am {
        let url = format!("{}/api/v2/alerts", am.url);
        let found = wait_for("the alert in Alertmanager", async || {
            let answer = get(&url).await;
            let list = answer.json();
            list.as_array()?
                .iter()
                .find(|a| a["labels"]["client_address"] == ATTACKER)
                .cloned()
        })
        .await;
        assert_eq!(found["fingerprint"], fingerprint.as_str(), "{found:#}");
        assert_eq!(found["labels"]["alertname"], "brute-force-login");
        assert_eq!(found["annotations"]["evidence"], EVIDENCE, "{found:#}");
        assert_eq!(found["status"]["state"], "active");
    }

    // Acknowledgement.
    let ack_url = server.api_url(&format!("/api/v1/alerts/{fingerprint}/ack"));
    let json_type = [("content-type", "application/json")];
    let answer = http
        .send(Method::POST, &ack_url, &json_type, r#"{"comment": "x"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(answer.text().contains("by"), "{}", answer.text());
    let answer = http
        .send(Method::POST, &ack_url, &json_type, "not json")
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let unknown = server.api_url("/api/v1/alerts/00000000000000ff/ack");
    let answer = http
        .send(Method::POST, &unknown, &json_type, r#"{"by": "ana"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    let answer = http
        .send(
            Method::POST,
            &ack_url,
            &json_type,
            r#"{"by": "ana", "comment": "blocked at the edge"}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["acknowledged"]["by"], "ana");

    // A restart keeps the alert and its acknowledgement.
    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.stderr());
    assert!(data.join("alerts").join("alerts-state.json").is_file());
    let server = start(&data, &config_path).await;
    let body = alerts(&server, "").await;
    let after = &body["alerts"][0];
    assert_eq!(after["fingerprint"], fingerprint.as_str(), "{body:#}");
    assert_eq!(after["status"], "firing");
    assert_eq!(after["acknowledged"]["by"], "ana");
    assert_eq!(after["acknowledged"]["comment"], "blocked at the edge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mute_the_webhook_until_expired_and_the_cli_drives_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook_url, received) = webhook().await;
    // One group for the rule: a notification lists every unmuted alert.
    let config = format!(
        r#"
[alerts.route]
receiver = "hook"
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1s"
[[alerts.receivers]]
name = "hook"
[alerts.receivers.webhook]
url = "{hook_url}"
"#
    );
    let config_path = dir.path().join("tracewarden.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut server = start(&data, &config_path).await;
    let api = format!("http://{}", server.addrs.api);

    // Bad silences are refused; unknown ids are 404.
    let http = Http::new();
    let silences_url = server.api_url("/api/v1/silences");
    let json_type = [("content-type", "application/json")];
    for body in [
        r#"{"matchers": [], "duration": "1h", "createdBy": "ana", "comment": "c"}"#,
        r#"{"matchers": [{"name": "client_address", "value": "x"}], "createdBy": "ana", "comment": "c"}"#,
        r#"{"matchers": [{"name": "client_address", "value": "x"}], "duration": "1h", "createdBy": "ana", "comment": ""}"#,
    ] {
        let answer = http
            .send(Method::POST, &silences_url, &json_type, body)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.text()
        );
    }
    let answer = http
        .send(
            Method::DELETE,
            &server.api_url("/api/v1/silences/nope"),
            &[],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());

    let id = cli(&[
        "silence",
        "add",
        "--server",
        &api,
        "--matcher",
        &format!("client_address={ATTACKER}"),
        "--duration",
        "2h",
        "--comment",
        "authorised pen test",
        "--by",
        "ana",
    ])
    .trim()
    .to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let listed = cli(&["silence", "list", "--server", &api]);
    assert!(
        listed.contains(&id) && listed.contains("active"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("client_address=\"{ATTACKER}\"")),
        "{listed}"
    );

    // Both addresses brute-force in one batch: one notification, without
    // the silenced one.
    send_logins(&server, &[ATTACKER, OTHER], 1).await;
    let first = wait_for("the notification for the other address", async || {
        let all = received.lock().unwrap().clone();
        all.into_iter().find(|p| {
            p["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["labels"]["client_address"] == OTHER)
        })
    })
    .await;
    assert_eq!(first["alerts"].as_array().unwrap().len(), 1, "{first:#}");
    assert!(received_for(&received, ATTACKER).is_empty());
    let silenced = alert_for(&server, ATTACKER).await;
    let fingerprint = silenced["fingerprint"].as_str().unwrap().to_string();
    let detail = get(&server.api_url(&format!("/api/v1/alerts/{fingerprint}"))).await;
    assert_eq!(detail.json()["silencedBy"], json!([id]));

    // The CLI: the table, JSON, one alert, an acknowledgement.
    let table = cli(&["alerts", "--server", &api, "--state", "firing"]);
    assert!(table.contains(&fingerprint), "{table}");
    assert!(
        table.contains(&format!("client_address={OTHER}")),
        "{table}"
    );
    assert!(table.contains("2 of 2 alerts"), "{table}");
    let table = cli(&[
        "alerts",
        "--server",
        &api,
        "--severity",
        "high",
        "--rule",
        "brute-force-login",
        "--actor",
        OTHER,
    ]);
    assert!(table.contains("1 of 1 alerts"), "{table}");
    let listed: Value =
        serde_json::from_str(&cli(&["alerts", "--server", &api, "--json"])).unwrap();
    assert_eq!(listed["total"], 2);
    let shown = cli(&["alerts", "show", &fingerprint, "--server", &api]);
    assert!(shown.contains(&format!("silenced by   {id}")), "{shown}");
    assert!(shown.contains(&format!("{api}/api/v1/traces/")), "{shown}");
    let acked = cli(&[
        "alerts",
        "ack",
        &fingerprint,
        "--by",
        "bob",
        "--server",
        &api,
    ]);
    assert!(acked.contains("by bob"), "{acked}");
    let failed = Command::new(binary())
        .args(["alerts", "show", "00000000000000ff", "--server", &api])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );

    // Expired, the silence mutes no more: the next check of the group
    // announces the alert.
    let expired = cli(&["silence", "expire", &id, "--server", &api]);
    assert!(expired.contains(&id), "{expired}");
    wait_for("the notification for the unsilenced address", async || {
        (!received_for(&received, ATTACKER).is_empty()).then_some(())
    })
    .await;

    // The silence's history and the acknowledgement survive a restart.
    let status = server.terminate();
    assert!(status.success(), "{status}");
    let server = start(&data, &config_path).await;
    let api = format!("http://{}", server.addrs.api);
    let listed = cli(&["silence", "list", "--server", &api, "--json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed:#}");
    assert_eq!(listed["silences"][0]["status"]["state"], "expired");
    let body = alerts(&server, &format!("?actor={ATTACKER}")).await;
    assert_eq!(body["alerts"][0]["acknowledged"]["by"], "bob", "{body:#}");
}
