//! Block decisions end to end, with a real nginx (Debian package) on
//! loopback in front of a tiny upstream: nginx asks tracewarden's
//! `auth_request` endpoint about every request. A blocked client (by hand,
//! then by a rule fed brute-force spans over OTLP) gets 403 from nginx with
//! the reason; others reach the upstream. Also `tracewarden block`.
//!
//! Skipped without nginx, unless `TW_REQUIRE_NGINX` is set (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Http, TestServer, binary, get, now_nanos, post};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RULE: &str = "id: test-brute-force
title: Brute-force login (test)
severity: high
kind: threshold
condition: '{ span.http.response.status_code = 401 }'
group_by: [span.client.address]
window: 5m
count: 5
block: { actor: span.client.address, for: 1h }
";

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// nginx, or `None` to skip (panics when `TW_REQUIRE_NGINX` is set).
fn require_nginx() -> Option<PathBuf> {
    let found = nginx_binary();
    if found.is_none() {
        assert!(
            std::env::var_os("TW_REQUIRE_NGINX").is_none(),
            "TW_REQUIRE_NGINX is set but nginx is not installed (apt-get install nginx)"
        );
        eprintln!("skipping: nginx is not installed");
    }
    found
}

/// A port free now on loopback (nginx binds it itself a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tiny HTTP/1.1 upstream: answers every request 200 `upstream ok`.
async fn upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nupstream ok")
                    .await;
            });
        }
    });
    port
}

/// nginx run as the current user, in the foreground, with every path
/// under `dir`. Killed on drop.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(binary: &Path, dir: &Path, api: std::net::SocketAddr, upstream: u16) -> Nginx {
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_tracewarden;
            auth_request_set $tw_reason $upstream_http_x_tracewarden_reason;
            add_header X-Tracewarden-Reason $tw_reason always;
            proxy_pass http://127.0.0.1:{upstream};
        }}
        location = /_tracewarden {{
            internal;
            proxy_pass http://{api}/api/v1/decision/nginx;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/app", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Waits until nginx answers (anything) on its port.
    async fn wait(&mut self) {
        let deadline = Instant::now() + common::STARTUP_TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status})\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not start\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Failed logins from `address`, one span each, as OTLP/JSON.
fn failed_logins(address: &str, n: u32) -> String {
    let now = now_nanos();
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            let start = now - 5_000_000_000 + u64::from(i) * 1_000_000;
            json!({
                "traceId": format!("{:032x}", 0xb10c_0000 + i), "spanId": format!("{:016x}", i + 1),
                "name": "POST /login", "kind": 2,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string(),
                "attributes": [
                    {"key": "http.route", "value": {"stringValue": "/login"}},
                    {"key": "http.response.status_code", "value": {"intValue": "401"}},
                    {"key": "client.address", "value": {"stringValue": address}},
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

async fn start_server(dir: &Path) -> TestServer {
    let (server, _) = common::serve_with_rules(
        dir,
        "builtin_rules = false\n",
        &[("test-brute-force.yaml", RULE)],
        "[blocks]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .await;
    server
}

/// A request through nginx as if from `client` (the hop a load balancer in
/// front of nginx wrote into X-Forwarded-For).
async fn through_nginx(http: &Http, nginx: &Nginx, client: &str) -> common::Response {
    http.send(
        Method::GET,
        &nginx.url(),
        &[("x-forwarded-for", client)],
        bytes::Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn nginx_denies_blocked_clients_by_hand_and_by_rule() {
    let Some(nginx_bin) = require_nginx() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let upstream = upstream().await;
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let mut nginx = Nginx::start(&nginx_bin, &nginx_dir, server.addrs.api, upstream);
    nginx.wait().await;
    let http = Http::new();

    // Nobody blocked: through to the upstream.
    let answer = through_nginx(&http, &nginx, "203.0.113.9").await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}\n{}",
        answer.text(),
        nginx.log()
    );
    assert_eq!(answer.text(), "upstream ok");

    // An analyst blocks a range.
    let block = json!({"kind": "address", "value": "203.0.113.0/24", "duration": "1h",
                       "reason": "scanning", "by": "alice"});
    let answer = post(
        &server.api_url("/api/v1/blocks"),
        "application/json",
        block.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let answer = through_nginx(&http, &nginx, "203.0.113.9").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", nginx.log());
    let reason = answer.header("x-tracewarden-reason").unwrap_or_default();
    assert!(
        reason.starts_with("address 203.0.113.0/24 blocked by alice until ")
            && reason.ends_with(": scanning"),
        "{reason}"
    );
    // Others pass.
    let answer = through_nginx(&http, &nginx, "198.51.100.20").await;
    assert_eq!(answer.status, StatusCode::OK);

    // A rule blocks the brute-forcing address on its own.
    let attacker = "198.51.100.66";
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        "application/json",
        failed_logins(attacker, 6),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let decision = get(&server.api_url(&format!("/api/v1/decision?address={attacker}")))
            .await
            .json();
        if decision["decision"] == "deny" {
            assert_eq!(
                decision["block"]["by"], "rule:test-brute-force",
                "{decision}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rule did not block: {decision}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = through_nginx(&http, &nginx, attacker).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer
            .header("x-tracewarden-reason")
            .unwrap_or_default()
            .contains("blocked by rule:test-brute-force"),
        "{:?}",
        answer.headers
    );
    assert_eq!(
        through_nginx(&http, &nginx, "198.51.100.67").await.status,
        StatusCode::OK
    );

    // The list for other gateways, and the history.
    let text = get(&server.api_url("/api/v1/blocks.txt")).await.text();
    assert_eq!(text, format!("{attacker}\n203.0.113.0/24\n"));

    // Unblock: through again.
    let answer = Http::new()
        .send(
            Method::DELETE,
            &server.api_url(&format!(
                "/api/v1/blocks/address/{attacker}?by=bob&reason=tested"
            )),
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        through_nginx(&http, &nginx, attacker).await.status,
        StatusCode::OK
    );
    let history = get(&server.api_url("/api/v1/blocks/history")).await.json();
    let actions: Vec<String> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap(),
                e["value"].as_str().unwrap(),
                e["by"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            "block 203.0.113.0/24 alice".to_string(),
            format!("block {attacker} rule:test-brute-force"),
            format!("unblock {attacker} bob"),
        ]
    );
}

#[tokio::test]
async fn block_command_adds_lists_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let api = format!("http://{}", server.addrs.api);
    let run = |args: &[&str]| {
        let out = Command::new(binary())
            .arg("block")
            .args(args)
            .args(["--server", &api])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "add", "user", "mallory", "--for", "2h", "--reason", "abuse", "--by", "carol",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("added user mallory until "), "{out}");
    let (ok, out, err) = run(&[
        "add",
        "token",
        "Bearer very-secret",
        "--reason",
        "leaked",
        "--by",
        "carol",
    ]);
    assert!(ok, "{err}");
    assert!(!out.contains("very-secret"), "{out}");
    let (ok, out, _) = run(&["list"]);
    assert!(ok);
    assert!(
        out.contains("mallory") && out.contains("sha256:") && out.contains("(until removed)"),
        "{out}"
    );
    let (ok, _, err) = run(&["add", "address", "10.0.0.1/8", "--reason", "x"]);
    assert!(!ok);
    assert!(err.contains("network address"), "{err}");
    let (ok, out, err) = run(&[
        "remove", "user", "mallory", "--reason", "resolved", "--by", "carol",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "removed user mallory");
    let (ok, _, err) = run(&["remove", "user", "mallory", "--reason", "again"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, out, _) = run(&["history"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 3, "{out}");
}
