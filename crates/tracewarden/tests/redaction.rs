//! The redaction proof (issue 8): secrets planted in spans, span events,
//! log bodies and log attributes, sent over OTLP/HTTP and Zipkin, are in
//! clear in no file of the data directory (after SIGKILL, when the WAL holds
//! them, and after a clean stop, when segments do) and in no record read
//! back through the API; the parts around them are intact, and a hashed user
//! id still joins across spans. With redaction off the same scan finds every
//! secret, so the scan can fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::{Http, TestServer, now_nanos, port_zero_args};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const TRACE_ID: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e701";
const ZIPKIN_TRACE_ID: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e702";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqd3RTRUNSRVQifQ.jwtSIGsecret123";

/// Each planted secret, as it must never be found in clear.
const SECRETS: &[&str] = &[
    "bearerSECRET000111",
    "eyJzdWIiOiJqd3RTRUNSRVQifQ",
    "pwSECRET4242",
    "4111111111111111",
    "AKIAREDACTTEST0EXAMP",
    "cookieSECRET777",
    "evtSECRET555",
    "logBodySECRET333",
    "logAttrSECRET222",
    "user-7781",
    "zipSECRET111",
];

fn string(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn spans_request(now: u64) -> Value {
    let span = |n: u64, attributes: Vec<Value>, events: Vec<Value>| {
        json!({
            "traceId": TRACE_ID, "spanId": format!("{n:016x}"),
            "name": "POST /login", "kind": 2,
            "startTimeUnixNano": (now + n).to_string(), "endTimeUnixNano": (now + n + 1000).to_string(),
            "attributes": attributes, "events": events,
        })
    };
    let spans = vec![
        span(
            1,
            vec![
                string("url.query", "user=ann&password=pwSECRET4242&next=/home"),
                string("app.note", "called upstream with Bearer bearerSECRET000111"),
                string("app.session", JWT),
                string("app.payment", "charge card 4111111111111111 ok"),
                string("app.credentials_hint", "key id AKIAREDACTTEST0EXAMP"),
                json!({"key": "http.request.header.cookie",
                       "value": {"arrayValue": {"values": [{"stringValue": "session=cookieSECRET777"}]}}}),
                string("enduser.id", "user-7781"),
                string("http.request.method", "POST"),
            ],
            vec![json!({
                "timeUnixNano": (now + 10).to_string(), "name": "login failed",
                "attributes": [string("exception.message", "upstream refused api_key=evtSECRET555")],
            })],
        ),
        span(
            2,
            vec![
                string("enduser.id", "user-7781"),
                string("http.request.method", "GET"),
            ],
            vec![],
        ),
        span(3, vec![string("enduser.id", "user-9902")], vec![]),
    ];
    json!({"resourceSpans": [{
        "resource": {"attributes": [string("service.name", "shop")]},
        "scopeSpans": [{"spans": spans}],
    }]})
}

fn logs_request(now: u64) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [string("service.name", "shop")]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": now.to_string(), "traceId": TRACE_ID, "spanId": format!("{:016x}", 1),
            "severityNumber": 9,
            "body": {"stringValue": "reset link sent to ann with token=logBodySECRET333 (valid 1h)"},
            "attributes": [string("db.password", "logAttrSECRET222"), string("app.step", "reset")],
        }]}],
    }]})
}

fn zipkin_request(now: u64) -> Value {
    json!([{
        "traceId": ZIPKIN_TRACE_ID, "id": "00000000000000a1", "name": "get", "kind": "SERVER",
        "timestamp": now / 1000, "duration": 1000,
        "localEndpoint": {"serviceName": "legacy"},
        "tags": {"http.url": "https://legacy.example/cb?password=zipSECRET111&a=1"},
    }])
}

async fn send_all(server: &TestServer) {
    let http = Http::new();
    let now = now_nanos();
    for (url, body) in [
        (server.otlp_http_url("/v1/traces"), spans_request(now)),
        (server.otlp_http_url("/v1/logs"), logs_request(now)),
        (server.zipkin_url("/api/v2/spans"), zipkin_request(now)),
    ] {
        let answer = http
            .send(
                Method::POST,
                &url,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await;
        assert!(
            answer.status == StatusCode::OK || answer.status == StatusCode::ACCEPTED,
            "{url}: {} {}",
            answer.status,
            answer.text()
        );
    }
}

fn write_config(dir: &Path, redaction: &str) -> PathBuf {
    let path = dir.join("tracewarden.toml");
    std::fs::write(&path, format!("[redaction]\n{redaction}")).unwrap();
    path
}

/// Hashing the user id, on top of the built-in rules.
const HASH_USER_ID: &str = "enabled = true\n[[redaction.rules]]\nname = \"user-id\"\nkeys = [\"enduser.id\"]\naction = \"hash\"\n";

async fn start(data_dir: &Path, config: &Path) -> TestServer {
    let mut args: Vec<OsString> = vec!["--config".into(), config.as_os_str().to_owned()];
    args.extend(port_zero_args(data_dir));
    let server = TestServer::spawn(&args, data_dir)
        .await
        .unwrap_or_else(|failure| panic!("tracewarden did not start: {failure:?}"));
    server.wait_ready().await;
    server
}

/// Which of `needles` some file under `dir` holds in clear, with the file.
fn found_in_files(dir: &Path, needles: &[&str]) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for file in common::files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in needles {
            let needle = needle.as_bytes();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push((String::from_utf8_lossy(needle).into_owned(), file.clone()));
            }
        }
    }
    found
}

/// Both traces through the API, as one JSON text, and the first one parsed.
async fn read_back(server: &TestServer) -> (String, Value) {
    let trace = common::get_trace(server, TRACE_ID).await;
    let zipkin = common::get_trace(server, ZIPKIN_TRACE_ID).await;
    assert_eq!(trace["spanCount"], 3, "{trace}");
    assert_eq!(trace["logCount"], 1, "{trace}");
    assert_eq!(zipkin["spanCount"], 1, "{zipkin}");
    (format!("{trace}\n{zipkin}"), trace)
}

fn span_attribute<'a>(trace: &'a Value, span: usize, key: &str) -> &'a Value {
    &trace["spans"][span]["attributes"][key]
}

/// No secret in what the API serves; what surrounds them is intact.
fn check_redacted(text: &str, trace: &Value) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} served in clear:\n{text}");
    }
    assert_eq!(
        span_attribute(trace, 0, "url.query"),
        "user=ann&password=[REDACTED]&next=/home",
        "{trace}"
    );
    assert_eq!(
        span_attribute(trace, 0, "app.note"),
        "called upstream with Bearer [REDACTED]"
    );
    assert_eq!(span_attribute(trace, 0, "app.session"), "[REDACTED]");
    assert_eq!(
        span_attribute(trace, 0, "app.payment"),
        "charge card [REDACTED]1111 ok"
    );
    assert_eq!(
        span_attribute(trace, 0, "http.request.header.cookie"),
        &json!(["[REDACTED]"])
    );
    assert_eq!(span_attribute(trace, 0, "http.request.method"), "POST");
    assert_eq!(
        trace["spans"][0]["events"][0]["attributes"]["exception.message"],
        "upstream refused api_key=[REDACTED]"
    );
    // The same user hashes to the same value in two spans, another user not.
    let user = span_attribute(trace, 0, "enduser.id").as_str().unwrap();
    assert!(user.starts_with("hmac:") && user.len() == 5 + 64, "{user}");
    assert_eq!(span_attribute(trace, 1, "enduser.id"), user);
    assert_ne!(span_attribute(trace, 2, "enduser.id"), user);
    let log = &trace["logs"][0];
    assert_eq!(
        log["body"],
        "reset link sent to ann with token=[REDACTED] (valid 1h)"
    );
    assert_eq!(log["attributes"]["db.password"], "[REDACTED]");
    assert_eq!(log["attributes"]["app.step"], "reset");
    assert!(
        text.contains("https://legacy.example/cb?password=[REDACTED]&a=1"),
        "{text}"
    );
}

#[tokio::test]
async fn no_secret_reaches_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), HASH_USER_ID);

    let mut server = start(&data_dir, &config).await;
    let log = server.stderr();
    assert!(
        log.contains("redaction on") && log.contains("user-id,auth_headers,secret_keys"),
        "{log}"
    );
    send_all(&server).await;
    let (text, trace) = read_back(&server).await;
    check_redacted(&text, &trace);
    let metrics = common::get(&server.api_url("/metrics")).await.text();
    for rule in ["secret_params", "payment_card", "auth_headers", "user-id"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("tracewarden_redactions_total{{rule=\"{rule}\"}}")))
            .unwrap_or_else(|| panic!("no counter for {rule}:\n{metrics}"));
        assert!(!line.ends_with(" 0"), "{line}");
    }

    // Killed: everything is in the WAL only, which is not compressed, so a
    // byte scan sees what the records hold (the untouched parts do show).
    server.kill();
    drop(server);
    assert_eq!(found_in_files(&data_dir, SECRETS), vec![]);
    assert!(
        !found_in_files(&data_dir, &["next=/home", "reset link sent"]).is_empty(),
        "the WAL should hold the non-secret text in clear: the scan proves nothing otherwise"
    );
    let key = data_dir.join("redaction.key");
    assert!(key.exists(), "{:?}", common::files_under(&data_dir));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Replayed from the WAL, then flushed into segments by a clean stop.
    let mut server = start(&data_dir, &config).await;
    let (text, trace) = read_back(&server).await;
    check_redacted(&text, &trace);
    assert!(server.terminate().success(), "{}", server.stderr());
    drop(server);
    assert!(
        common::files_under(&data_dir)
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".spans.parquet")),
        "{:?}",
        common::files_under(&data_dir)
    );
    assert_eq!(found_in_files(&data_dir, SECRETS), vec![]);

    // Read from the segments (compressed: the byte scan alone proves little
    // there, so every record is read back), with the same key the hash joins.
    let mut server = start(&data_dir, &config).await;
    let (text, trace) = read_back(&server).await;
    check_redacted(&text, &trace);
    server.terminate();
}

#[tokio::test]
async fn with_redaction_off_the_scan_finds_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), "enabled = false\n");
    let mut server = start(&data_dir, &config).await;
    assert!(
        server.stderr().contains("redaction off"),
        "{}",
        server.stderr()
    );
    send_all(&server).await;
    let (text, _) = read_back(&server).await;
    for secret in SECRETS {
        assert!(text.contains(secret), "{secret} not served:\n{text}");
    }
    server.kill();
    drop(server);
    let found: Vec<String> = found_in_files(&data_dir, SECRETS)
        .into_iter()
        .map(|(secret, _)| secret)
        .collect();
    for secret in SECRETS {
        assert!(found.iter().any(|f| f == secret), "{secret} not in the WAL");
    }
    assert!(!data_dir.join("redaction.key").exists());
}

#[tokio::test]
async fn a_bad_rule_stops_the_start_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    for (rule, expected) in [
        (
            "name = \"bad-regex\"\nkey_regex = \"(unclosed\"\naction = \"mask\"\n",
            "redaction rule `bad-regex`: invalid key pattern",
        ),
        (
            "name = \"bad-action\"\nkeys = [\"a\"]\naction = \"shred\"\n",
            "redaction rule `bad-action`: unknown action `shred`",
        ),
        (
            "name = \"bad-detector\"\ndetector = \"ssn\"\naction = \"mask\"\n",
            "redaction rule `bad-detector`: unknown detector `ssn`",
        ),
    ] {
        let config = write_config(dir.path(), &format!("[[redaction.rules]]\n{rule}"));
        let mut args: Vec<OsString> = vec!["--config".into(), config.as_os_str().to_owned()];
        args.extend(port_zero_args(&data_dir));
        match TestServer::spawn(&args, &data_dir).await {
            Ok(mut server) => {
                let exit = server.wait_exit(common::STARTUP_TIMEOUT);
                assert!(
                    exit.is_some_and(|status| !status.success()),
                    "started with {rule}"
                );
                assert!(server.stderr().contains(expected), "{}", server.stderr());
            }
            Err(failure) => assert!(failure.stderr.contains(expected), "{failure:?}"),
        }
    }
}
