//! Shared helpers for the end-to-end tests: start the real `tracewarden`
//! binary on port 0 everywhere, read the bound addresses from its stdout,
//! wait for `/readyz`, talk HTTP to it, and kill it on drop.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]
// A test helper panics with a message instead of returning errors: a failed
// start or request is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Generous: a loaded 2-core machine runs several debug test binaries at once.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of the binary under test, built by cargo for this test run.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tracewarden")
}

/// The four addresses printed by `tracewarden serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub zipkin: SocketAddr,
    pub api: SocketAddr,
}

/// Reads the listener addresses from the lines `serve` prints at start-up;
/// `None` until all four were seen.
pub fn parse_addrs(lines: &[String]) -> Option<Addrs> {
    let find = |label: &str| -> Option<SocketAddr> {
        lines.iter().find_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != label {
                return None;
            }
            let addr = words.next()?;
            let addr = addr.strip_prefix("http://").unwrap_or(addr);
            addr.strip_prefix("https://").unwrap_or(addr).parse().ok()
        })
    };
    Some(Addrs {
        otlp_grpc: find("otlp-grpc")?,
        otlp_http: find("otlp-http")?,
        zipkin: find("zipkin")?,
        api: find("api")?,
    })
}

/// A running `tracewarden serve`. Killed (SIGKILL) and reaped on drop.
pub struct TestServer {
    child: Child,
    pub addrs: Addrs,
    pub data_dir: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    /// Set by the stdout reader at end of file (the process has exited).
    stdout_closed: Arc<AtomicBool>,
    stderr_path: PathBuf,
    /// Keeps the stderr file's directory alive for the server's lifetime.
    _logs: tempfile::TempDir,
}

/// Why a server did not come up: its exit status (if it exited) and what it printed.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl TestServer {
    /// Starts a server on `data_dir` with port 0 on every listener and waits
    /// until it is ready (WAL replayed).
    pub async fn start(data_dir: &Path) -> TestServer {
        let args = port_zero_args(data_dir);
        let server = TestServer::spawn(&args, data_dir)
            .await
            .unwrap_or_else(|failure| {
                panic!(
                    "tracewarden did not start (status {:?})\n--- stdout\n{}\n--- stderr\n{}",
                    failure.status, failure.stdout, failure.stderr
                )
            });
        server.wait_ready().await;
        server
    }

    /// [`TestServer::start`] with a config file of `toml` (written into
    /// `data_dir`).
    pub async fn start_with_config(data_dir: &Path, toml: &str) -> TestServer {
        let config = data_dir.join("tracewarden.toml");
        std::fs::write(&config, toml).unwrap();
        let mut args = port_zero_args(data_dir);
        args.push("--config".into());
        args.push(config.into_os_string());
        let server = TestServer::spawn(&args, data_dir)
            .await
            .unwrap_or_else(|f| panic!("start failed: {}\n{}", f.stdout, f.stderr));
        server.wait_ready().await;
        server
    }

    /// Runs `tracewarden serve ARGS` and waits for the listening lines on
    /// stdout; fails if the process exits first. Does not wait for readiness.
    pub async fn spawn(args: &[OsString], data_dir: &Path) -> Result<TestServer, StartFailure> {
        let logs = tempfile::tempdir().expect("temp dir for the server's stderr");
        let stderr_path = logs.path().join("stderr.log");
        let stderr = File::create(&stderr_path).expect("create the stderr file");
        let mut child = Command::new(binary())
            .arg("serve")
            .args(args)
            .env("TRACEWARDEN_LOG", "info")
            // Plain text in the captured log, for failure messages.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn the tracewarden binary");

        // Stdout is read to its end by a thread: the server prints again when
        // it stops, and a closed pipe would make that print fail.
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stdout_closed = Arc::new(AtomicBool::new(false));
        let pipe = child.stdout.take().expect("piped stdout");
        let (sink, closed) = (stdout.clone(), stdout_closed.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
            closed.store(true, Ordering::Release);
        });

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addrs = loop {
            if let Some(addrs) = parse_addrs(&stdout.lock().unwrap()) {
                break addrs;
            }
            if let Some(status) = child.try_wait().expect("poll the child") {
                wait_closed(&stdout_closed);
                return Err(StartFailure {
                    status: Some(status),
                    stdout: stdout.lock().unwrap().join("\n"),
                    stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure {
                    status: None,
                    stdout: stdout.lock().unwrap().join("\n"),
                    stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        Ok(TestServer {
            child,
            addrs,
            data_dir: data_dir.to_path_buf(),
            stdout,
            stdout_closed,
            stderr_path,
            _logs: logs,
        })
    }

    /// Polls `GET /readyz` until it answers 200 (at most [`STARTUP_TIMEOUT`]).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = self.api_url("/readyz");
        loop {
            if let Ok(response) = try_request(Method::GET, &url, &[], Bytes::new()).await
                && response.status == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tracewarden not ready after {STARTUP_TIMEOUT:?}\n--- stderr\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.api)
    }

    pub fn otlp_http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.otlp_http)
    }

    pub fn zipkin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.zipkin)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.addrs.otlp_grpc)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stderr so far (its log).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL (what `Child::kill` sends on unix) and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (through `kill(1)`: the workspace forbids `unsafe`, so
    /// no direct libc call) and waits up to 30 s for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed: {status}");
        self.wait_exit(STARTUP_TIMEOUT)
            .unwrap_or_else(|| panic!("tracewarden did not exit after SIGTERM\n{}", self.stderr()))
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                wait_closed(&self.stdout_closed);
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits (bounded) until the stdout reader has read everything the exited
/// process printed.
fn wait_closed(closed: &AtomicBool) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while !closed.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `--data-dir DIR` and port 0 on every listener.
pub fn port_zero_args(data_dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--data-dir".into(), data_dir.as_os_str().to_owned()];
    for flag in ["--otlp-grpc", "--otlp-http", "--zipkin", "--api"] {
        args.push(flag.into());
        args.push("127.0.0.1:0".into());
    }
    args
}

/// An HTTP response, body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A pooling HTTP/1.1 client; one per task keeps connections reused.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request; `Err` on a transport failure or after [`REQUEST_TIMEOUT`].
    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, String> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body.into()))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer from {url} within {REQUEST_TIMEOUT:?}"))?
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        self.try_send(method, url, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }
}

/// One request on a fresh client.
pub async fn try_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Response, String> {
    Http::new().try_send(method, url, headers, body).await
}

pub async fn get(url: &str) -> Response {
    Http::new().send(Method::GET, url, &[], Bytes::new()).await
}

pub async fn post(url: &str, content_type: &str, body: impl Into<Bytes>) -> Response {
    Http::new()
        .send(Method::POST, url, &[("content-type", content_type)], body)
        .await
}

/// `GET /api/v1/traces/{id}` as JSON; panics unless it answers 200.
pub async fn get_trace(server: &TestServer, trace_id: &str) -> serde_json::Value {
    let response = get(&server.api_url(&format!("/api/v1/traces/{trace_id}"))).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "GET trace {trace_id}: {}\n--- server stderr\n{}",
        response.text(),
        server.stderr()
    );
    response.json()
}

/// Lowercase hex of bytes (ids as the API shows them).
/// One gateway server span per request: (route, status, client address, user agent).
pub fn gateway_export(requests: &[(&str, i64, &str, &str)], first_trace: u32) -> String {
    let now = now_nanos();
    let spans: Vec<serde_json::Value> = requests
        .iter()
        .enumerate()
        .map(|(i, (route, status, address, agent))| {
            let n = first_trace + i as u32;
            let start = now - 5_000_000_000 + u64::from(n) * 1_000;
            serde_json::json!({
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
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }]})
    .to_string()
}

/// Every file under `dir`, recursively (the data-directory scans).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SplitMix64: a tiny seeded generator, so every run makes the same ids
/// and the same kill delays.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `low..high` for test delays.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }
}

/// The value of a JSON field that OTLP/JSON may encode as a number or, for
/// 64-bit integers, as a string.
pub fn json_u64(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Now, in Unix nanoseconds (for spans sent "now").
pub fn now_nanos() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// `tracewarden keys create --role ROLE --name NAME` on `data_dir`: the key
/// is the only thing on stdout.
pub fn create_key(data_dir: &Path, name: &str, role: &str) -> String {
    let output = Command::new(binary())
        .args(["keys", "create", "--role", role, "--name", name])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("TRACEWARDEN_API_KEY")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("twk_") && key.len() > 40, "{key}");
    key
}

/// A server whose config is `[detection]` with `detection` and `rules_dir`
/// (a fresh `rules/` under `dir`, holding `files` as (name, text)), then
/// `more` (other sections), ready; and the rules directory.
pub async fn serve_with_rules(
    dir: &Path,
    detection: &str,
    files: &[(&str, &str)],
    more: &str,
) -> (TestServer, PathBuf) {
    let rules = dir.join("rules");
    std::fs::create_dir(&rules).unwrap();
    for (name, text) in files {
        std::fs::write(rules.join(name), text).unwrap();
    }
    let config = dir.join("tracewarden.toml");
    std::fs::write(
        &config,
        format!(
            "[detection]\n{detection}rules_dir = {:?}\n{more}",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let mut args = port_zero_args(&data);
    args.push("--config".into());
    args.push(config.into_os_string());
    let server = TestServer::spawn(&args, &data).await.unwrap();
    server.wait_ready().await;
    (server, rules)
}

/// The value of `series` (a metric name with its labels, as exposed) in a
/// Prometheus text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The server's `/metrics` exposition.
pub async fn metrics(server: &TestServer) -> String {
    let answer = get(&server.api_url("/metrics")).await;
    assert_eq!(answer.status, http::StatusCode::OK);
    answer.text()
}
