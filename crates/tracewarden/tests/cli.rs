//! The command line: a config file, its errors, listener clashes, and a
//! clean stop on SIGTERM that keeps what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Addrs, TestServer, binary, get, get_trace, port_zero_args, post};
use http::StatusCode;
use serde_json::json;

/// Runs `tracewarden ARGS` to its exit (killed after 30 s: a server that
/// should have refused to start must not hang the test).
fn run_to_exit(args: &[OsString]) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`tracewarden {args:?}` still running after 30 s\n--- stderr\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status, stdout, stderr)
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Free ports, found by binding port 0 and letting go.
fn free_addrs() -> Addrs {
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addr = |i: usize| listeners[i].local_addr().unwrap();
    Addrs {
        otlp_grpc: addr(0),
        otlp_http: addr(1),
        zipkin: addr(2),
        api: addr(3),
    }
}

fn span_request(trace_id: &str, spans: usize) -> String {
    let start = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let spans: Vec<_> = (0..spans)
        .map(|i| {
            json!({
                "traceId": trace_id,
                "spanId": format!("{:016x}", i + 1),
                "name": format!("span {i}"),
                "kind": 2,
                "startTimeUnixNano": (start + i as u64).to_string(),
                "endTimeUnixNano": (start + 1_000_000).to_string(),
            })
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cli-test"}}]},
            "scopeSpans": [{"scope": {"name": "cli"}, "spans": spans}]
        }]
    })
    .to_string()
}

#[test]
fn version_and_help() {
    let (status, stdout, _) = run_to_exit(&os(&["--version"]));
    assert!(status.success());
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    let (status, stdout, _) = run_to_exit(&os(&["serve", "--help"]));
    assert!(status.success());
    for flag in [
        "--config",
        "--data-dir",
        "--otlp-grpc",
        "--otlp-http",
        "--zipkin",
        "--api",
    ] {
        assert!(
            stdout.contains(flag),
            "serve --help does not mention {flag}:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_sets_ports_data_dir_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("from-config");
    let want = free_addrs();
    let config = dir.path().join("tracewarden.toml");
    // TOML literal strings: no escaping of the path.
    std::fs::write(
        &config,
        format!(
            "data_dir = '{}'\n\n[listen]\notlp_grpc = '{}'\notlp_http = '{}'\nzipkin = '{}'\napi = '{}'\n\n\
             [limits]\nmax_body_bytes = 65536\n",
            data_dir.display(),
            want.otlp_grpc,
            want.otlp_http,
            want.zipkin,
            want.api
        ),
    )
    .unwrap();

    let args = vec![OsString::from("--config"), config.clone().into_os_string()];
    let server = TestServer::spawn(&args, &data_dir)
        .await
        .unwrap_or_else(|failure| {
            panic!("did not start with {}: {failure:?}", config.display());
        });
    assert_eq!(
        server.addrs, want,
        "the listeners are not where the file put them"
    );
    server.wait_ready().await;

    let trace_id = "11223344556677889900aabbccddeeff";
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        span_request(trace_id, 3),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(get_trace(&server, trace_id).await["spanCount"], 3);
    // The file's data_dir is where the WAL went.
    let entries = std::fs::read_dir(&data_dir).map(|d| d.count()).unwrap_or(0);
    assert!(
        entries > 0,
        "nothing written under the configured data_dir {}",
        data_dir.display()
    );
    // The file's limits apply: 64 KiB bodies at most.
    let big =
        span_request("99887766554433221100ffeeddccbbaa", 1).replace("span 0", &"x".repeat(70_000));
    let answer = post(&server.otlp_http_url("/v1/traces"), "application/json", big).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text()
    );
}

#[test]
fn a_bad_config_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown-key.toml",
            "[listen]\napii = \"127.0.0.1:1\"\n",
            "apii",
        ),
        (
            "unknown-section.toml",
            "[lisen]\napi = \"127.0.0.1:1\"\n",
            "lisen",
        ),
        (
            "wrong-type.toml",
            "[limits]\nmax_body_bytes = \"big\"\n",
            "max_body_bytes",
        ),
        ("bad-address.toml", "[listen]\napi = \"nonsense\"\n", "api"),
        ("syntax.toml", "data_dir = \n", "data_dir"),
    ];
    for (name, text, key) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut args = os(&["serve", "--config"]);
        args.push(path.clone().into_os_string());
        // Should it wrongly start, it must not clash with anything.
        args.extend(port_zero_args(&dir.path().join("data")));
        let (status, _, stderr) = run_to_exit(&args);
        assert!(!status.success(), "{name}: started despite a bad config");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: the error does not name the file:\n{stderr}"
        );
        assert!(
            stderr.contains(key),
            "{name}: the error does not name `{key}`:\n{stderr}"
        );
    }

    let missing = dir.path().join("no-such-file.toml");
    let mut args = os(&["serve", "--config"]);
    args.push(missing.clone().into_os_string());
    let (status, _, stderr) = run_to_exit(&args);
    assert!(!status.success());
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

#[test]
fn a_port_in_use_names_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    for (flag, listener) in [
        ("--otlp-grpc", "gRPC"),
        ("--otlp-http", "OTLP/HTTP"),
        ("--zipkin", "Zipkin"),
        ("--api", "API"),
    ] {
        let mut args = os(&["serve", "--data-dir"]);
        args.push(dir.path().join("data").into_os_string());
        for other in ["--otlp-grpc", "--otlp-http", "--zipkin", "--api"] {
            let listen = if other == flag {
                addr.to_string()
            } else {
                "127.0.0.1:0".to_string()
            };
            args.extend(os(&[other, &listen]));
        }
        let (status, _, stderr) = run_to_exit(&args);
        assert!(!status.success(), "{flag}: started on a port in use");
        assert!(
            stderr.contains(listener),
            "{flag}: the error does not name the {listener} listener:\n{stderr}"
        );
        assert!(
            stderr.contains(&addr.to_string()),
            "{flag}: the error does not name {addr}:\n{stderr}"
        );
        assert!(
            stderr.to_lowercase().contains("in use"),
            "{flag}: the cause is not shown:\n{stderr}"
        );
    }
    drop(taken);
}

async fn send_and_stop(data_dir: &Path, trace_id: &str) {
    let mut server = TestServer::start(data_dir).await;
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        span_request(trace_id, 4),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let status = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM should stop cleanly\n--- stderr\n{}",
        server.stderr()
    );
    assert!(
        server
            .stdout()
            .iter()
            .any(|line| line.contains("tracewarden stopped")),
        "no stop message on stdout: {:?}",
        server.stdout()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    send_and_stop(dir.path(), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf").await;
    send_and_stop(dir.path(), "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf").await;

    let server = TestServer::start(dir.path()).await;
    for trace_id in [
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
    ] {
        let trace = get_trace(&server, trace_id).await;
        assert_eq!(trace["spanCount"], 4, "{trace:#}");
    }
    let health = get(&server.api_url("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
}
