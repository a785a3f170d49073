//! API keys, roles, the audit log, rate limits and the start-up refusal,
//! end to end: the real binary, keys made with `tracewarden keys create`,
//! requests over real sockets, spans from the official OpenTelemetry SDK.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Http, Response, STARTUP_TIMEOUT, TestServer, binary, port_zero_args};
use http::{Method, StatusCode};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{
    Protocol, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

fn run(args: &[&str], data_dir: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("TRACEWARDEN_API_KEY")
        .output()
        .unwrap()
}

async fn call(method: Method, url: &str, key: Option<&str>) -> Response {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    Http::new().send(method, url, &headers, Bytes::new()).await
}

async fn get(server: &TestServer, path: &str, key: Option<&str>) -> Response {
    call(Method::GET, &server.api_url(path), key).await
}

/// The audit entries (newest first) once `ready` holds for them; the log
/// is written after the responses, by a writer thread.
async fn audit_until(
    server: &TestServer,
    admin: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let response = get(server, "/api/v1/audit?limit=1000", Some(admin)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let entries = response.json()["entries"].as_array().unwrap().clone();
        if ready(&entries) {
            return entries;
        }
        assert!(Instant::now() < deadline, "audit entries: {entries:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(entries: &'a [Value], path: &str, status: u16) -> Option<&'a Value> {
    entries
        .iter()
        .find(|e| e["path"] == path && e["status"] == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_and_every_decision_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let admin = common::create_key(dir.path(), "root", "admin");
    let analyst = common::create_key(dir.path(), "alice", "analyst");
    let viewer = common::create_key(dir.path(), "victor", "viewer");
    let ingest = common::create_key(dir.path(), "gateway", "ingest");
    let mut server = TestServer::start_with_config(dir.path(), "").await;
    let search = "/api/v1/search?q=%7B%7D";

    // No key: 401 with a JSON message and a Bearer challenge.
    let response = get(&server, search, None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"tracewarden\"")
    );
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API key"),
        "{}",
        response.text()
    );
    assert_eq!(
        get(&server, search, Some("twk_unknown")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Probes stay open.
    assert_eq!(get(&server, "/healthz", None).await.status, StatusCode::OK);
    assert_eq!(get(&server, "/readyz", None).await.status, StatusCode::OK);

    // (path, method, key, expected status)
    let cases = [
        (search, Method::GET, &viewer, StatusCode::FORBIDDEN),
        (search, Method::GET, &ingest, StatusCode::FORBIDDEN),
        (search, Method::GET, &analyst, StatusCode::OK),
        (search, Method::GET, &admin, StatusCode::OK),
        ("/api/v1/alerts", Method::GET, &viewer, StatusCode::OK),
        (
            "/api/v1/alerts",
            Method::GET,
            &ingest,
            StatusCode::FORBIDDEN,
        ),
        ("/metrics", Method::GET, &viewer, StatusCode::OK),
        (
            "/api/v1/rules/reload",
            Method::POST,
            &analyst,
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/audit",
            Method::GET,
            &analyst,
            StatusCode::FORBIDDEN,
        ),
        ("/api/v1/keys", Method::GET, &viewer, StatusCode::FORBIDDEN),
        // A gateway decides with an ingest key.
        (
            "/api/v1/decision?address=192.0.2.1",
            Method::GET,
            &ingest,
            StatusCode::OK,
        ),
    ];
    for (path, method, key, want) in cases {
        let response = call(method.clone(), &server.api_url(path), Some(key)).await;
        assert_eq!(
            response.status,
            want,
            "{method} {path}: {}",
            response.text()
        );
        if want == StatusCode::FORBIDDEN {
            let message = response.json()["error"]["message"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(message.contains("role"), "{message}");
        }
    }
    // The keys list shows no secrets.
    let keys = get(&server, "/api/v1/keys", Some(&admin)).await;
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.json()["keys"].as_array().unwrap().len(), 4);
    assert!(!keys.text().contains(&admin[4..]), "{}", keys.text());

    // A secret in a query string never reaches the log.
    let leaky = "/api/v1/decision?address=192.0.2.1&authorization=Bearer%20twk_leakedsecret";
    assert_eq!(
        get(&server, leaky, None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let entries = audit_until(&server, &admin, |entries| {
        entries
            .iter()
            .any(|e| e["path"] == "/api/v1/decision" && e["status"] == 401)
            && entries
                .iter()
                .filter(|e| e["path"] == "/api/v1/search")
                .count()
                >= 6
    })
    .await;
    let unauthenticated = entries
        .iter()
        .find(|e| e["path"] == "/api/v1/search" && e["status"] == 401 && e["keyName"] == "-")
        .expect("an audit entry for the request without a key");
    assert_eq!(unauthenticated["decision"], "denied");
    assert!(
        unauthenticated["reason"]
            .as_str()
            .unwrap()
            .contains("API key")
    );
    let forbidden = entries
        .iter()
        .find(|e| e["path"] == "/api/v1/search" && e["keyName"] == "victor")
        .expect("an audit entry for the viewer's search");
    assert_eq!(
        (
            &forbidden["status"],
            &forbidden["decision"],
            &forbidden["role"]
        ),
        (
            &Value::from(403),
            &Value::from("denied"),
            &Value::from("viewer")
        )
    );
    let allowed = entries
        .iter()
        .find(|e| e["path"] == "/api/v1/search" && e["keyName"] == "alice")
        .expect("an audit entry for the analyst's search");
    assert_eq!(allowed["status"], 200);
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["query"], "q=%7B%7D");
    assert_eq!(allowed["results"], 0, "{allowed:#}");
    assert!(
        allowed["client"].as_str().unwrap().starts_with("127."),
        "{allowed:#}"
    );
    let keys_entry = find(&entries, "/api/v1/keys", 200).expect("keys listing audited");
    assert_eq!(keys_entry["results"], 4);
    let leaked = find(&entries, "/api/v1/decision", 401).unwrap();
    assert_eq!(
        leaked["query"], "address=192.0.2.1&authorization=[redacted]",
        "{leaked:#}"
    );
    // An allowed gateway decision is not audited (every proxied request asks).
    assert!(find(&entries, "/api/v1/decision", 200).is_none());
    // Probes are not audited.
    assert!(entries.iter().all(|e| e["path"] != "/healthz"));

    // No raw key anywhere on disk or in the log.
    let mut secrets: Vec<&str> = [&admin, &analyst, &viewer, &ingest]
        .iter()
        .map(|k| &k[4..])
        .collect();
    secrets.push("leakedsecret");
    // Stopped first: a running server renames and removes its files (WAL,
    // temporary files) while they are listed; stopped, everything it wrote
    // is at rest, segments written at close included.
    assert!(server.terminate().success(), "{}", server.stderr());
    let stderr = server.stderr();
    for secret in &secrets {
        assert!(!stderr.contains(secret), "a key in the server log");
    }
    for path in common::files_under(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in &secrets {
            assert!(!text.contains(secret), "a key in {}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_while_the_server_runs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let alice = common::create_key(dir.path(), "alice", "analyst");
    let server = TestServer::start_with_config(dir.path(), "").await;
    assert_eq!(
        get(&server, "/api/v1/search?q=%7B%7D", Some(&alice))
            .await
            .status,
        StatusCode::OK
    );
    // A key made after the start works without a restart.
    let bob = common::create_key(dir.path(), "bob", "viewer");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while get(&server, "/api/v1/alerts", Some(&bob)).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "the new key was never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let output = run(&["keys", "revoke", "alice"], dir.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = run(&["keys", "list"], dir.path());
    let listed = String::from_utf8(listed.stdout).unwrap();
    let alice_row = listed.lines().find(|l| l.contains("alice")).unwrap();
    assert!(
        !alice_row.trim_end().ends_with('-'),
        "not shown revoked: {listed}"
    );

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let response = loop {
        let response = get(&server, "/api/v1/search?q=%7B%7D", Some(&alice)).await;
        if response.status != StatusCode::OK {
            break response;
        }
        assert!(
            Instant::now() < deadline,
            "the revoked key is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        response.text()
    );
    assert!(response.text().contains("revoked"), "{}", response.text());
    assert_eq!(
        get(&server, "/api/v1/alerts", Some(&bob)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_exhausting_its_budget_does_not_starve_another() {
    let dir = tempfile::tempdir().unwrap();
    let runaway = common::create_key(dir.path(), "runaway", "analyst");
    let calm = common::create_key(dir.path(), "calm", "analyst");
    // A refill of one request per 1000 s: the budget is the burst.
    let server = TestServer::start_with_config(
        dir.path(),
        "[auth.rate_limit]\nrequests_per_second = 0.001\nburst = 3\n",
    )
    .await;
    let search = "/api/v1/search?q=%7B%7D";
    for _ in 0..3 {
        assert_eq!(
            get(&server, search, Some(&runaway)).await.status,
            StatusCode::OK
        );
    }
    let refused = get(&server, search, Some(&runaway)).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text()
    );
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limit")
    );
    // The other key still has its whole budget.
    assert_eq!(
        get(&server, search, Some(&calm)).await.status,
        StatusCode::OK
    );
    // Probes are not limited.
    assert_eq!(get(&server, "/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_a_public_address_is_refused_unless_the_operator_opts_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = port_zero_args(dir.path());
    let api = args.iter().position(|a| a == "--api").unwrap();
    args[api + 1] = "0.0.0.0:0".into();
    // Plain text on a public address is refused on its own account, named
    // in the same message; this test is about keys, so it opts out of TLS.
    let failure = match TestServer::spawn(&args, dir.path()).await {
        Ok(_) => panic!("started on 0.0.0.0 without keys and without TLS"),
        Err(failure) => failure,
    };
    assert!(failure.stderr.contains("without TLS"), "{}", failure.stderr);
    assert!(
        failure.stderr.contains("--insecure-no-tls"),
        "{}",
        failure.stderr
    );
    args.push("--insecure-no-tls".into());
    let failure = match TestServer::spawn(&args, dir.path()).await {
        Ok(_) => panic!("started on 0.0.0.0 without keys"),
        Err(failure) => failure,
    };
    assert!(!failure.status.unwrap().success());
    assert!(
        failure.stderr.contains("refusing to start"),
        "{}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains("tracewarden keys create"),
        "{}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains("--insecure-no-auth"),
        "{}",
        failure.stderr
    );
    assert!(
        !failure.stderr.contains("without TLS"),
        "{}",
        failure.stderr
    );

    // The explicit opt-out starts, and says so.
    let mut opted: Vec<OsString> = args.clone();
    opted.push("--insecure-no-auth".into());
    let server = TestServer::spawn(&opted, dir.path()).await.unwrap();
    server.wait_ready().await;
    assert!(
        server.stderr().contains("AUTH IS OFF"),
        "{}",
        server.stderr()
    );
    drop(server);

    // With a key it starts, and the key is required.
    let admin = common::create_key(dir.path(), "admin", "admin");
    let server = TestServer::spawn(&args, dir.path()).await.unwrap();
    server.wait_ready().await;
    let url = format!("http://127.0.0.1:{}/api/v1/alerts", server.addrs.api.port());
    assert_eq!(
        call(Method::GET, &url, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(Method::GET, &url, Some(&admin)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_the_key_from_the_environment_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let analyst = common::create_key(dir.path(), "alice", "analyst");
    let server = TestServer::start_with_config(dir.path(), "").await;
    let url = server.api_url("");
    let query = |key_env: Option<&str>, flag: Option<&str>| {
        let mut command = Command::new(binary());
        command
            .args(["query", "--server", &url, "{ }"])
            .env_remove("TRACEWARDEN_API_KEY");
        if let Some(key) = key_env {
            command.env("TRACEWARDEN_API_KEY", key);
        }
        if let Some(key) = flag {
            command.args(["--api-key", key]);
        }
        command.output().unwrap()
    };
    let without = query(None, None);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("401"));
    assert!(query(Some(&analyst), None).status.success());
    assert!(query(None, Some(&analyst)).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_an_edited_deleted_or_reordered_audit_entry() {
    let dir = tempfile::tempdir().unwrap();
    // No key on loopback: auth off, requests audited as anonymous.
    let mut server = TestServer::start_with_config(dir.path(), "").await;
    for path in [
        "/api/v1/alerts",
        "/api/v1/rules",
        "/api/v1/detections",
        "/metrics",
    ] {
        assert_eq!(get(&server, path, None).await.status, StatusCode::OK);
    }
    assert!(server.terminate().success());
    let log = dir.path().join("audit/audit.log");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert_eq!(lines.len(), 4, "{original}");
    assert!(
        lines[0].contains("\"keyName\":\"anonymous\""),
        "{}",
        lines[0]
    );

    let verify = || {
        Command::new(binary())
            .args(["verify", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let intact = verify();
    let text = String::from_utf8_lossy(&intact.stdout).into_owned();
    assert!(intact.status.success(), "{text}");
    assert!(text.contains("audit log: OK: 4 entries"), "{text}");

    let edited = lines[1].replace("/api/v1/rules", "/api/v1/rulez");
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "edited",
            vec![lines[0], &edited, lines[2], lines[3]],
            "line 2 (entry 2)",
        ),
        (
            "deleted",
            vec![lines[0], lines[2], lines[3]],
            "line 2 (entry 2)",
        ),
        (
            "reordered",
            vec![lines[0], lines[2], lines[1], lines[3]],
            "line 2 (entry 2)",
        ),
        ("cut", vec![lines[0], lines[1], lines[2]], "were deleted"),
    ];
    for (name, tampered, expected) in cases {
        std::fs::write(&log, tampered.join("\n") + "\n").unwrap();
        let output = verify();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(!output.status.success(), "{name}: {text}");
        assert!(text.contains("FAIL: audit log: "), "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
    }
    std::fs::write(&log, &original).unwrap();
    assert!(verify().status.success());
}

/// A server rotating its audit log at 64 KiB keeping two files: the chain
/// runs across the files, the API reads back through them, and `verify`
/// says from which entry the history is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_rotates_and_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with_config(
        dir.path(),
        "[auth.audit]\nmax_bytes = 65536\nkeep_files = 2\n",
    )
    .await;
    // About 300 bytes an entry: 1,000 requests fill several files.
    for n in 0..1000 {
        let path = format!("/api/v1/alerts?limit={}", 1 + n % 50);
        assert_eq!(get(&server, &path, None).await.status, StatusCode::OK);
    }
    // The reads themselves are audited too: wait for the writer.
    let deadline = Instant::now() + Duration::from_secs(20);
    let entries = loop {
        let response = get(&server, "/api/v1/audit?limit=10000", None).await;
        let entries = response.json()["entries"].as_array().unwrap().clone();
        if entries.len() >= 300 {
            break entries;
        }
        assert!(Instant::now() < deadline, "{} entries", entries.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Newest first, consecutive across the files kept.
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    assert!(*seqs.last().unwrap() > 1, "old files were removed");
    assert!(server.terminate().success(), "{}", server.stderr());
    let rotated: Vec<String> = std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("audit-"))
        .collect();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    let output = Command::new(binary())
        .args(["verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    assert!(text.contains("audit log: OK: "), "{text}");
    assert!(text.contains("kept from entry"), "{text}");
}

fn tracer(exporter: opentelemetry_otlp::SpanExporter) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build()
}

/// Sends one span named `name`; returns its trace id.
async fn send_span(provider: SdkTracerProvider, name: &'static str) -> String {
    tokio::task::spawn_blocking(move || {
        let tracer = provider.tracer("auth-e2e");
        let span = tracer.start(name);
        let cx = opentelemetry::Context::current_with_span(span);
        let id = cx.span().span_context().trace_id().to_string();
        cx.span().end();
        let _ = provider.force_flush();
        let _ = provider.shutdown();
        id
    })
    .await
    .unwrap()
}

async fn refused(server: &TestServer, admin: &str, listener: &str, reason: &str) -> u64 {
    let metrics = get(server, "/metrics", Some(admin)).await.text();
    let line = format!(
        "tracewarden_auth_refused_requests_total{{listener=\"{listener}\",reason=\"{reason}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in {metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_exports_carry_the_key_over_grpc_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let admin = common::create_key(dir.path(), "admin", "admin");
    let ingest = common::create_key(dir.path(), "exporter", "ingest");
    let viewer = common::create_key(dir.path(), "viewer", "viewer");
    let server = TestServer::start_with_config(dir.path(), "").await;
    let bearer = |key: &str| format!("Bearer {key}");

    let grpc = |key: Option<&str>| {
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Some(key) = key {
            metadata.insert("authorization", bearer(key).parse().unwrap());
        }
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(server.grpc_url())
            .with_metadata(metadata)
            .with_timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let http = |key: Option<&str>| {
        let headers: HashMap<String, String> = key
            .map(|k| HashMap::from([("Authorization".to_string(), bearer(k))]))
            .unwrap_or_default();
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(server.otlp_http_url("/v1/traces"))
            .with_headers(headers)
            .with_timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };

    // With the key: stored, and readable with an admin key.
    let over_grpc = send_span(tracer(grpc(Some(&ingest))), "keyed-grpc").await;
    let over_http = send_span(tracer(http(Some(&ingest))), "keyed-http").await;
    for id in [&over_grpc, &over_http] {
        let trace = get(&server, &format!("/api/v1/traces/{id}"), Some(&admin)).await;
        assert_eq!(trace.status, StatusCode::OK, "{id}: {}", trace.text());
    }

    // Without a key, or with a key that may not ingest: refused, counted.
    let lost = [
        send_span(tracer(grpc(None)), "anonymous-grpc").await,
        send_span(tracer(http(None)), "anonymous-http").await,
        send_span(tracer(grpc(Some(&viewer))), "viewer-grpc").await,
        send_span(tracer(http(Some(&viewer))), "viewer-http").await,
    ];
    assert!(refused(&server, &admin, "otlp_grpc", "unauthenticated").await >= 1);
    assert!(refused(&server, &admin, "otlp_http", "unauthenticated").await >= 1);
    assert!(refused(&server, &admin, "otlp_grpc", "forbidden").await >= 1);
    assert!(refused(&server, &admin, "otlp_http", "forbidden").await >= 1);
    for id in lost {
        let trace = get(&server, &format!("/api/v1/traces/{id}"), Some(&admin)).await;
        assert_eq!(
            trace.status,
            StatusCode::NOT_FOUND,
            "{id}: {}",
            trace.text()
        );
    }
}

/// Polls `path` with `key` until `found` picks something out of it.
async fn poll(
    server: &TestServer,
    path: &str,
    key: &str,
    found: impl Fn(&Value) -> Option<Value>,
) -> Value {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let body = get(server, path, Some(key)).await.json();
        if let Some(value) = found(&body) {
            return value;
        }
        assert!(Instant::now() < deadline, "{path}: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_what_fired_but_not_on_whom() {
    let dir = tempfile::tempdir().unwrap();
    let admin = common::create_key(dir.path(), "root", "admin");
    let viewer = common::create_key(dir.path(), "victor", "viewer");
    let ingest = common::create_key(dir.path(), "exporter", "ingest");
    let server = TestServer::start_with_config(dir.path(), "").await;
    let start_nanos = common::now_nanos() - 1_000_000_000;
    let attacker = "192.0.2.77";
    let injection = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", 5000), "spanId": format!("{:016x}", 5000),
            "name": "GET /api/products", "kind": 2,
            "startTimeUnixNano": start_nanos.to_string(),
            "endTimeUnixNano": (start_nanos + 1_000_000).to_string(),
            "attributes": [
                {"key": "http.route", "value": {"stringValue": "/api/products"}},
                {"key": "url.query", "value": {"stringValue": "id=1' UNION SELECT username, password FROM users--"}},
                {"key": "client.address", "value": {"stringValue": attacker}},
            ],
        }]}],
    }]});
    let bearer = format!("Bearer {ingest}");
    let sent = Http::new()
        .send(
            Method::POST,
            &server.otlp_http_url("/v1/traces"),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            injection.to_string(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());

    let sqli = |body: &Value| {
        body["detections"]
            .as_array()?
            .iter()
            .find(|d| d["ruleId"] == "sql-injection")
            .cloned()
    };
    let full = poll(&server, "/api/v1/detections", &admin, sqli).await;
    assert!(full.to_string().contains(attacker), "{full:#}");
    let masked = poll(&server, "/api/v1/detections", &viewer, sqli).await;
    assert!(!masked.to_string().contains(attacker), "{masked:#}");
    assert_eq!(masked["evidence"], "[masked]", "{masked:#}");
    assert!(
        masked["key"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == "[masked]")
    );

    let alert = |body: &Value| {
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["ruleId"] == "sql-injection")
            .cloned()
    };
    let full = poll(&server, "/api/v1/alerts", &admin, alert).await;
    assert!(full.to_string().contains(attacker), "{full:#}");
    let masked = poll(&server, "/api/v1/alerts", &viewer, alert).await;
    assert!(!masked.to_string().contains(attacker), "{masked:#}");
    let fingerprint = masked["fingerprint"].as_str().unwrap().to_string();
    let shown = get(
        &server,
        &format!("/api/v1/alerts/{fingerprint}"),
        Some(&viewer),
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(!shown.text().contains(attacker), "{}", shown.text());

    // An acknowledgement is recorded under the key's name, not the body's.
    let bearer = format!("Bearer {admin}");
    let acked = Http::new()
        .send(
            Method::POST,
            &server.api_url(&format!("/api/v1/alerts/{fingerprint}/ack")),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            r#"{"by": "somebody-else", "comment": "192.0.2.77 is our pentester"}"#,
        )
        .await;
    assert_eq!(acked.status, StatusCode::OK, "{}", acked.text());
    assert_eq!(
        acked.json()["acknowledged"]["by"],
        "root",
        "{}",
        acked.text()
    );
    // A silence on the actor, with a comment naming it.
    let silenced = Http::new()
        .send(
            Method::POST,
            &server.api_url("/api/v1/silences"),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            serde_json::json!({
                "matchers": [
                    {"name": "alertname", "value": "sql-injection"},
                    {"name": "client_address", "value": attacker},
                ],
                "duration": "1h",
                "comment": format!("{attacker} is our pentester"),
            })
            .to_string(),
        )
        .await;
    assert_eq!(silenced.status, StatusCode::OK, "{}", silenced.text());
    // Neither the acknowledgement's comment, nor the silence's matchers and
    // comment, nor an actor filter tell the viewer who it was.
    for path in [
        format!("/api/v1/alerts/{fingerprint}"),
        "/api/v1/alerts".to_string(),
        "/api/v1/silences".to_string(),
    ] {
        let answer = get(&server, &path, Some(&viewer)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(
            !answer.text().contains(attacker),
            "{path}: {}",
            answer.text()
        );
    }
    let silences = get(&server, "/api/v1/silences", Some(&viewer)).await.json();
    assert_eq!(
        silences["silences"][0]["matchers"][0]["value"], "sql-injection",
        "{silences:#}"
    );
    let guess = get(
        &server,
        &format!("/api/v1/alerts?actor={attacker}"),
        Some(&viewer),
    )
    .await;
    assert_eq!(guess.status, StatusCode::FORBIDDEN, "{}", guess.text());
    let full = get(&server, "/api/v1/silences", Some(&admin)).await;
    assert!(full.text().contains(attacker), "{}", full.text());
}

/// A raw OTLP/gRPC export (an empty request) and the status it gets.
async fn grpc_status(server: &TestServer, key: Option<&str>) -> String {
    use http_body_util::{BodyExt as _, Full};
    use tower::ServiceExt as _;
    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The gRPC frame of an empty message: no compression, length 0.
    let frame = Bytes::from_static(&[0, 0, 0, 0, 0]);
    let mut request = http::Request::new(tonic::body::Body::new(Full::new(frame)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() =
        http::Uri::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    let headers = request.headers_mut();
    headers.insert("content-type", "application/grpc".parse().unwrap());
    headers.insert("te", "trailers".parse().unwrap());
    if let Some(key) = key {
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    let response = channel.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    if let Some(status) = parts.headers.get("grpc-status") {
        return status.to_str().unwrap().to_string();
    }
    let collected = body.collect().await.unwrap();
    collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|s| s.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refusals_are_unauthenticated_or_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = common::create_key(dir.path(), "exporter", "ingest");
    let analyst = common::create_key(dir.path(), "alice", "analyst");
    let server = TestServer::start_with_config(dir.path(), "").await;
    // 0 OK, 16 UNAUTHENTICATED, 7 PERMISSION_DENIED.
    assert_eq!(grpc_status(&server, Some(&ingest)).await, "0");
    assert_eq!(grpc_status(&server, None).await, "16");
    assert_eq!(grpc_status(&server, Some("twk_nope")).await, "16");
    assert_eq!(grpc_status(&server, Some(&analyst)).await, "7");
}
