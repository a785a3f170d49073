//! TLS and mutual TLS on the real binary: certificates from `tracewarden
//! certs dev`, a rustls client, curl, the official OpenTelemetry SDK over
//! gRPC, and the failures (plain HTTP, no client certificate, a bad key, a
//! silent client).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Response, STARTUP_TIMEOUT, TestServer, binary, hex, now_nanos, port_zero_args};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The files `tracewarden certs dev` writes.
struct DevCerts {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server: PathBuf,
    server_key: PathBuf,
    client: PathBuf,
    client_key: PathBuf,
}

fn dev_certs() -> DevCerts {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args(["certs", "dev", "--out"])
        .arg(dir.path())
        .output()
        .expect("run tracewarden certs dev");
    assert!(
        out.status.success(),
        "certs dev failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[tls]") && stdout.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"));
    let file = |name: &str| dir.path().join(name);
    DevCerts {
        ca: file("ca.pem"),
        server: file("server.pem"),
        server_key: file("server-key.pem"),
        client: file("client.pem"),
        client_key: file("client-key.pem"),
        _dir: dir,
    }
}

/// A rustls client trusting the dev CA, with the dev client certificate
/// when `with_client_cert`.
fn client_config(certs: &DevCerts, with_client_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&certs.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = if with_client_cert {
        let chain = CertificateDer::pem_file_iter(&certs.client)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&certs.client_key).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// One HTTPS request on a new connection (HTTP/2 when ALPN chose it);
/// `Err` on any transport or TLS failure.
async fn https(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: Method,
    path: &str,
    body: &str,
) -> Result<Response, String> {
    let exchange = async {
        let stream = tls_connect(addr, config).await.map_err(|e| e.to_string())?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let request = Request::builder()
            .method(method)
            .uri(format!("https://localhost:{}{path}", addr.port()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let io = TokioIo::new(stream);
        let response = if h2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
            tokio::spawn(connection);
            sender.send_request(request).await
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("{e:?}"))?;
            tokio::spawn(connection);
            sender.send_request(request).await
        }
        .map_err(|e| format!("{e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(common::REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {addr}{path}"))?
}

/// Starts `tracewarden serve` with `config` (TOML, appended after the
/// port-0 listeners) and waits until `/readyz` answers over TLS.
async fn start(dir: &Path, config: &str, certs: &DevCerts) -> TestServer {
    let file = dir.join("tracewarden.toml");
    std::fs::write(&file, config).unwrap();
    let data = dir.join("data");
    let mut args: Vec<OsString> = vec!["--config".into(), file.into()];
    args.extend(port_zero_args(&data));
    let server = TestServer::spawn(&args, &data)
        .await
        .unwrap_or_else(|f| panic!("did not start: {}\n{}", f.stdout, f.stderr));
    assert!(
        server.stdout().iter().any(|l| l.contains("TLS only")),
        "{:?}",
        server.stdout()
    );
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let ready = https(
            server.addrs.api,
            client_config(certs, true),
            Method::GET,
            "/readyz",
            "",
        )
        .await;
        if matches!(&ready, Ok(r) if r.status == StatusCode::OK) {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "not ready over TLS: {ready:?}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn tls_section(certs: &DevCerts, extra: &str) -> String {
    format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n{extra}",
        certs.server.display().to_string(),
        certs.server_key.display().to_string()
    )
}

/// An OTLP/JSON request with one server span named `name`; its trace id.
fn otlp_json(name: &str, seed: u8) -> (String, String) {
    let trace_id = hex(&[seed; 16]);
    let start = now_nanos();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tls-test"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id, "spanId": hex(&[seed; 8]), "name": name, "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string(),
        }]}],
    }]});
    (trace_id, body.to_string())
}

/// Reads a trace back through the API over TLS (polling briefly: the
/// receiver acknowledged it, the read path may lag a scheduling tick).
async fn read_trace(
    server: &TestServer,
    config: Arc<rustls::ClientConfig>,
    trace_id: &str,
) -> String {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let path = format!("/api/v1/traces/{trace_id}");
        let response = https(server.addrs.api, config.clone(), Method::GET, &path, "")
            .await
            .unwrap();
        if response.status == StatusCode::OK {
            return response.text();
        }
        assert!(Instant::now() < deadline, "{path}: {}", response.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(server: &TestServer, config: Arc<rustls::ClientConfig>, sample: &str) -> f64 {
    let metrics = https(server.addrs.api, config, Method::GET, "/metrics", "")
        .await
        .unwrap()
        .text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{sample}` in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_api_and_otlp_http_with_a_rustls_client_and_plain_http_is_refused() {
    let certs = dev_certs();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &tls_section(&certs, ""), &certs).await;
    let client = client_config(&certs, false);

    // ALPN: HTTP/2 is offered and chosen on the API and the receivers.
    for addr in [
        server.addrs.api,
        server.addrs.otlp_http,
        server.addrs.otlp_grpc,
    ] {
        let stream = tls_connect(addr, client.clone()).await.unwrap();
        assert_eq!(
            stream.get_ref().1.alpn_protocol(),
            Some(&b"h2"[..]),
            "{addr}"
        );
    }
    let (trace_id, body) = otlp_json("GET /over-tls", 0x51);
    let response = https(
        server.addrs.otlp_http,
        client.clone(),
        Method::POST,
        "/v1/traces",
        &body,
    )
    .await
    .unwrap();
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(
        read_trace(&server, client.clone(), &trace_id)
            .await
            .contains("GET /over-tls")
    );
    // The audit log knows who read it over TLS too (the client address
    // comes through the TLS listener's connect info).
    let audit = dir.path().join("data").join("audit").join("audit.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let entry = text
            .lines()
            .find(|l| l.contains(&format!("/api/v1/traces/{trace_id}")));
        if let Some(entry) = entry {
            assert!(entry.contains("\"client\":\"127.0.0.1\""), "{entry}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit entry for the read over TLS: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Plain HTTP to a TLS port gets no HTTP answer, and the listener keeps serving.
    for url in [
        server.api_url("/healthz"),
        server.otlp_http_url("/v1/traces"),
        server.zipkin_url("/api/v2/spans"),
    ] {
        let plain = common::try_request(Method::GET, &url, &[], Bytes::new()).await;
        assert!(plain.is_err(), "{url} answered plain HTTP: {plain:?}");
    }
    let response = https(
        server.addrs.api,
        client.clone(),
        Method::GET,
        "/healthz",
        "",
    )
    .await
    .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    // A client that does not trust the CA is refused by its own check.
    let stranger = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    assert!(
        tls_connect(server.addrs.api, Arc::new(stranger))
            .await
            .is_err()
    );
    let failed = |listener: &str| {
        format!("tracewarden_tls_handshakes_total{{listener=\"{listener}\",result=\"failed\"}}")
    };
    assert!(metric(&server, client.clone(), &failed("api")).await >= 1.0);
    assert!(metric(&server, client.clone(), &failed("otlp_http")).await >= 1.0);
    assert!(metric(&server, client.clone(), &failed("zipkin")).await >= 1.0);

    // The CLI client over https, trusting the CA from the environment.
    let api = format!("https://localhost:{}", server.addrs.api.port());
    let cli = |env_ca: bool| {
        let mut command = Command::new(binary());
        command.args(["query", "--server", &api, "{ name = \"GET /over-tls\" }"]);
        if env_ca {
            command.env("TRACEWARDEN_CA_CERT", &certs.ca);
        } else {
            command.env_remove("TRACEWARDEN_CA_CERT");
        }
        command.output().unwrap()
    };
    let out = cli(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&trace_id));
    let out = cli(false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS handshake"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_cacert() {
    let Ok(version) = Command::new("curl").arg("--version").output() else {
        assert!(
            std::env::var_os("TW_REQUIRE_CURL").is_none(),
            "TW_REQUIRE_CURL is set but curl is not installed"
        );
        eprintln!("skipped: curl is not installed");
        return;
    };
    assert!(version.status.success());
    let certs = dev_certs();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &tls_section(&certs, ""), &certs).await;
    let (trace_id, body) = otlp_json("POST /by-curl", 0x52);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--cacert"])
            .arg(&certs.ca)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let otlp = format!(
        "https://localhost:{}/v1/traces",
        server.addrs.otlp_http.port()
    );
    let (ok, _, err) = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        "--fail",
        &otlp,
    ]);
    assert!(ok, "{err}");
    let trace = format!(
        "https://localhost:{}/api/v1/traces/{trace_id}",
        server.addrs.api.port()
    );
    let (ok, out, err) = curl(&["--fail", &trace]);
    assert!(ok, "{err}");
    assert!(out.contains("POST /by-curl"), "{out}");
    // HTTP/2 through ALPN when curl offers it.
    let healthz = format!("https://127.0.0.1:{}/healthz", server.addrs.api.port());
    let (ok, out, err) = curl(&["-o", "/dev/null", "-w", "%{http_version}", &healthz]);
    assert!(ok, "{err}");
    assert!(out == "2" || out == "1.1", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_required_refuses_a_client_without_a_certificate() {
    let certs = dev_certs();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "client_ca = {:?}\nclient_auth = \"required\"\nhandshake_timeout = \"1s\"\n",
        certs.ca.display().to_string()
    );
    let server = start(dir.path(), &tls_section(&certs, &extra), &certs).await;
    let (trace_id, body) = otlp_json("POST /mtls", 0x53);
    for addr in [server.addrs.otlp_http, server.addrs.zipkin] {
        let refused = https(
            addr,
            client_config(&certs, false),
            Method::POST,
            "/v1/traces",
            &body,
        )
        .await;
        assert!(
            refused.is_err(),
            "{addr} served a client without a certificate: {refused:?}"
        );
    }
    let accepted = https(
        server.addrs.otlp_http,
        client_config(&certs, true),
        Method::POST,
        "/v1/traces",
        &body,
    )
    .await
    .unwrap();
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    // The API does not ask for one (`api_client_auth` defaults to "none").
    let text = read_trace(&server, client_config(&certs, false), &trace_id).await;
    assert!(text.contains("POST /mtls"));

    // The official SDK over gRPC: refused without a certificate, accepted with it.
    let refused = sdk_export(
        server.addrs.otlp_grpc,
        client_config(&certs, false),
        "grpc-no-cert",
    )
    .await;
    assert!(
        refused.is_err(),
        "gRPC export without a client certificate succeeded"
    );
    let trace_id = sdk_export(
        server.addrs.otlp_grpc,
        client_config(&certs, true),
        "grpc-mtls",
    )
    .await
    .unwrap();
    let text = read_trace(&server, client_config(&certs, false), &trace_id).await;
    assert!(text.contains("grpc-mtls"), "{text}");

    // A client that never starts its handshake is closed after `handshake_timeout`.
    let mut silent = TcpStream::connect(server.addrs.otlp_http).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(STARTUP_TIMEOUT, silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection was not closed: {read:?}"
    );
    let sample = |result: &str| {
        format!("tracewarden_tls_handshakes_total{{listener=\"otlp_http\",result=\"{result}\"}}")
    };
    let client = client_config(&certs, false);
    assert!(metric(&server, client.clone(), &sample("timeout")).await >= 1.0);
    assert!(metric(&server, client, &sample("failed")).await >= 1.0);
}

/// Exports one span named `name` with the official OpenTelemetry SDK over
/// OTLP/gRPC; the TLS is done by a connector of ours (the SDK's own TLS
/// features would build tonic a second time with rustls) on a tonic
/// channel handed to the SDK. The trace id, or the export error.
async fn sdk_export(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &'static str,
) -> Result<String, String> {
    use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
    let connector = tower::service_fn(move |_: http::Uri| {
        let config = config.clone();
        async move { tls_connect(addr, config).await.map(TokioIo::new) }
    });
    // `http://`: tonic refuses `https://` without its TLS features; the
    // connector above does the TLS.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://localhost:{}", addr.port()))
            .unwrap()
            .connect_with_connector_lazy(connector);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .with_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name("tls-sdk")
                .build(),
        )
        .with_span_processor(
            opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                exporter,
                opentelemetry_sdk::runtime::Tokio,
            )
            .build(),
        )
        .build();
    let mut span = provider.tracer("tls-e2e").start(name);
    let trace_id = span.span_context().trace_id().to_string();
    span.end();
    let flushed = provider.force_flush().map_err(|e| e.to_string());
    let _ = provider.shutdown();
    flushed.map(|()| trace_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_grpc_with_tls() {
    let certs = dev_certs();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &tls_section(&certs, ""), &certs).await;
    let trace_id = sdk_export(
        server.addrs.otlp_grpc,
        client_config(&certs, false),
        "grpc-tls",
    )
    .await
    .unwrap();
    let text = read_trace(&server, client_config(&certs, false), &trace_id).await;
    assert!(
        text.contains("grpc-tls") && text.contains("tls-sdk"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_do_not_block_other_handshakes() {
    let certs = dev_certs();
    let dir = tempfile::tempdir().unwrap();
    // An hour: a listener that handshook in turn would serve nobody after a
    // silent client for that long, far past the request timeout below.
    let config = tls_section(&certs, "handshake_timeout = \"1h\"\n");
    let server = start(dir.path(), &config, &certs).await;
    // Connections that never send a ClientHello, on every listener.
    let mut silent = Vec::new();
    for addr in [
        server.addrs.api,
        server.addrs.otlp_http,
        server.addrs.otlp_grpc,
    ] {
        for _ in 0..8 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
    }
    let client = client_config(&certs, false);
    for addr in [
        server.addrs.api,
        server.addrs.otlp_http,
        server.addrs.zipkin,
    ] {
        let response = https(addr, client.clone(), Method::GET, "/healthz", "").await;
        assert!(response.is_ok(), "{addr}: {response:?}");
    }
    let (_, body) = otlp_json("while others are silent", 0x54);
    let response = https(
        server.addrs.otlp_http,
        client.clone(),
        Method::POST,
        "/v1/traces",
        &body,
    )
    .await
    .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    let trace_id = sdk_export(server.addrs.otlp_grpc, client, "grpc-beside-silent")
        .await
        .unwrap();
    assert!(!trace_id.is_empty());
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_stops_the_start_naming_the_file() {
    let certs = dev_certs();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage-key.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let missing = dir.path().join("missing-key.pem");
    for (key, expected) in [
        (&certs.client_key, "does not match the certificate"),
        (&garbage, "no private key found"),
        (&missing, "failed to read private key"),
    ] {
        let data = dir.path().join("data");
        let mut args = port_zero_args(&data);
        args.extend(["--tls-cert".into(), certs.server.clone().into_os_string()]);
        args.extend(["--tls-key".into(), key.clone().into_os_string()]);
        let failure = match TestServer::spawn(&args, &data).await {
            Ok(_) => panic!("started with the key {key:?}"),
            Err(failure) => failure,
        };
        assert!(
            failure.status.is_some_and(|s| !s.success()),
            "{:?}",
            failure.status
        );
        assert!(
            failure.stderr.contains(&key.display().to_string())
                && failure.stderr.contains(expected),
            "{key:?}: {}",
            failure.stderr
        );
    }
}

/// Polls `https GET /readyz` with `config` until it is answered (`true`) or
/// refused at the handshake (`false`) as `want` says, within 15 s.
async fn until_handshake(server: &TestServer, config: Arc<rustls::ClientConfig>, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answered = https(server.addrs.api, config.clone(), Method::GET, "/readyz", "")
            .await
            .is_ok();
        if answered == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "handshake still {} after 15 s\n{}",
            if want { "refused" } else { "accepted" },
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Certificates rotated on disk (as cert-manager or an ACME client does)
/// are served to new connections without a restart; files that do not
/// load keep the running certificate and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificates_are_served_without_a_restart() {
    let (old, new) = (dev_certs(), dev_certs());
    let dir = tempfile::tempdir().unwrap();
    let live_cert = dir.path().join("tls.crt");
    let live_key = dir.path().join("tls.key");
    std::fs::copy(&old.server, &live_cert).unwrap();
    std::fs::copy(&old.server_key, &live_key).unwrap();
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nreload_interval = \"100ms\"\n",
        live_cert.display().to_string(),
        live_key.display().to_string()
    );
    let server = start(dir.path(), &config, &old).await;
    let (trusts_old, trusts_new) = (client_config(&old, false), client_config(&new, false));
    assert!(
        https(
            server.addrs.api,
            trusts_new.clone(),
            Method::GET,
            "/readyz",
            ""
        )
        .await
        .is_err(),
        "the new CA is not trusted yet"
    );

    // A half-written certificate does not load: the old one stays in use.
    std::fs::write(&live_cert, b"-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while metric(
        &server,
        trusts_old.clone(),
        "tracewarden_tls_reloads_total{result=\"failed\"}",
    )
    .await
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the bad file was not noticed\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_handshake(&server, trusts_old.clone(), true).await;
    assert!(
        server.stderr().contains("do not load"),
        "{}",
        server.stderr()
    );

    // The new pair, key first then certificate: new connections get it.
    std::fs::copy(&new.server_key, &live_key).unwrap();
    std::fs::copy(&new.server, &live_cert).unwrap();
    until_handshake(&server, trusts_new.clone(), true).await;
    until_handshake(&server, trusts_old.clone(), false).await;
    assert!(
        metric(
            &server,
            trusts_new.clone(),
            "tracewarden_tls_reloads_total{result=\"ok\"}"
        )
        .await
            >= 1.0
    );
    // The server kept running: it ingests over the new certificate.
    let (trace_id, body) = otlp_json("after-rotation", 0x5c);
    let answer = https(
        server.addrs.otlp_http,
        trusts_new.clone(),
        Method::POST,
        "/v1/traces",
        &body,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(
        read_trace(&server, trusts_new, &trace_id)
            .await
            .contains("after-rotation")
    );
}
