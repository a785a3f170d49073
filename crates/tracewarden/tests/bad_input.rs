//! Hostile and broken input against the running binary over real sockets:
//! every answer is the documented status with a message, bad records are
//! rejected alone, and the server keeps serving afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Http, TestServer, get, get_trace, json_u64, now_nanos, post};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// One OTLP/JSON span (kind SERVER unless overridden by the caller).
fn json_span(trace_id: &str, span_id: &str, name: &str) -> Value {
    let start = now_nanos();
    json!({
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + 1_000_000).to_string(),
        "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}]
    })
}

/// An OTLP/JSON trace export request around `spans`.
fn json_request(spans: Vec<Value>) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
            "scopeSpans": [{"scope": {"name": "bad-input"}, "spans": spans}]
        }]
    })
}

/// An OTLP protobuf trace export request with one span.
fn proto_request(trace_id: [u8; 16], span_id: [u8; 8], kind: i32) -> ExportTraceServiceRequest {
    let start = now_nanos();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.to_vec(),
                    name: "proto span".to_string(),
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + 1_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The partial-success counters of an OTLP/JSON answer (int64 fields may
/// come as strings in proto3 JSON; an absent field means zero).
fn rejected_spans(answer: &Value) -> u64 {
    answer
        .get("partialSuccess")
        .and_then(|p| p.get("rejectedSpans"))
        .and_then(json_u64)
        .unwrap_or(0)
}

/// The server is alive, healthy, and still takes and serves a normal batch.
async fn assert_still_serving(server: &mut TestServer, trace_id: &str) {
    assert!(
        server.is_running(),
        "tracewarden exited\n--- stderr\n{}",
        server.stderr()
    );
    let health = get(&server.api_url("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text());
    let body = json_request(vec![json_span(
        trace_id,
        "00f067aa0ba902b7",
        "after the storm",
    )])
    .to_string();
    let answer = post(&server.otlp_http_url("/v1/traces"), JSON, body).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "a normal request failed afterwards: {}",
        answer.text()
    );
    let trace = get_trace(server, trace_id).await;
    assert_eq!(trace["spanCount"], 1);
    assert_eq!(trace["spans"][0]["name"], "after the storm");
}

/// A 4xx answer carries a message a person can act on.
fn assert_client_error(response: &common::Response, status: StatusCode, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    assert!(
        !response.body.is_empty(),
        "{what}: {status} without a message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_bodies_are_400_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let traces = server.otlp_http_url("/v1/traces");
    let logs = server.otlp_http_url("/v1/logs");

    // A varint that never ends.
    let garbage = Bytes::from_static(&[0xff; 16]);
    assert_client_error(
        &post(&traces, PROTOBUF, garbage.clone()).await,
        StatusCode::BAD_REQUEST,
        "garbage spans",
    );
    assert_client_error(
        &post(&logs, PROTOBUF, garbage).await,
        StatusCode::BAD_REQUEST,
        "garbage logs",
    );

    // A valid request cut in half: its one top-level field is longer than what is left.
    let whole = proto_request([7; 16], [7; 8], 2).encode_to_vec();
    let truncated = Bytes::copy_from_slice(&whole[..whole.len() / 2]);
    assert_client_error(
        &post(&traces, PROTOBUF, truncated).await,
        StatusCode::BAD_REQUEST,
        "truncated protobuf",
    );

    for (what, body) in [
        ("unterminated JSON", r#"{"resourceSpans": ["#),
        ("not JSON at all", "resourceSpans = 1"),
        ("wrong JSON shape", r#"{"resourceSpans": 42}"#),
    ] {
        assert_client_error(
            &post(&traces, JSON, body).await,
            StatusCode::BAD_REQUEST,
            what,
        );
    }
    let zipkin = server.zipkin_url("/api/v2/spans");
    assert_client_error(
        &post(&zipkin, JSON, r#"[{"traceId": "#).await,
        StatusCode::BAD_REQUEST,
        "zipkin garbage",
    );

    assert_still_serving(&mut server, "4bf92f3577b34da6a3ce929d0e0e4736").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_trace_id_rejects_only_its_span() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let good = "5b8efff798038103d269b633813fc60c";
    let body = json_request(vec![
        json_span(good, "eee19b7ec3c1b174", "first"),
        // 8 bytes: a Zipkin-sized id is not a valid OTLP trace id.
        json_span("0102030405060708", "eee19b7ec3c1b175", "short trace id"),
        json_span(good, "eee19b7ec3c1b176", "second"),
    ]);
    let answer = post(&server.otlp_http_url("/v1/traces"), JSON, body.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(rejected_spans(&answer), 1, "{answer:#}");
    let message = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("trace id"),
        "the partial success should say why: {answer:#}"
    );

    let trace = get_trace(&server, good).await;
    assert_eq!(trace["spanCount"], 2, "{trace:#}");
    let mut names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["first", "second"]);

    assert_still_serving(&mut server, "6e0c63257de34c92bf9efcd03927272e").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_span_kind_is_kept_as_unspecified() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;

    let json_trace = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let mut span = json_span(json_trace, "1112131415161718", "kind 42 over JSON");
    span["kind"] = json!(42);
    let answer = post(
        &server.otlp_http_url("/v1/traces"),
        JSON,
        json_request(vec![span]).to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(rejected_spans(&answer.json()), 0, "{}", answer.text());
    let trace = get_trace(&server, json_trace).await;
    assert_eq!(trace["spans"][0]["kind"], "unspecified", "{trace:#}");

    let proto_trace = [0x42; 16];
    let body = proto_request(proto_trace, [0x43; 8], 42).encode_to_vec();
    let answer = post(&server.otlp_http_url("/v1/traces"), PROTOBUF, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let trace = get_trace(&server, &common::hex(&proto_trace)).await;
    assert_eq!(trace["spans"][0]["kind"], "unspecified", "{trace:#}");

    assert_still_serving(&mut server, "0af7651916cd43dd8448eb211c80319c").await;
}

/// Writes a request head and then `total` body bytes (declared with
/// Content-Length, or chunked) while reading the answer at the same time, so
/// an early 413 is seen even though the body is never sent in full.
/// Returns the status line's code.
async fn post_huge(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    total: usize,
    chunked: bool,
) -> u16 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {total}")
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
    );
    let write = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        // The content does not matter: the size is what must be refused.
        let chunk = vec![0x0a_u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            if chunked {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
            }
            writer.write_all(&chunk).await?;
            if chunked {
                writer.write_all(b"\r\n").await?;
            }
            sent += chunk.len();
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("no answer to a 100 MB body within 60 s");
    write.abort();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in the answer: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_body_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    const HUNDRED_MB: usize = 100 * 1024 * 1024;
    let status = post_huge(
        server.addrs.otlp_http,
        "/v1/traces",
        PROTOBUF,
        HUNDRED_MB,
        false,
    )
    .await;
    assert_eq!(status, 413, "declared 100 MB body\n{}", server.stderr());
    let status = post_huge(server.addrs.otlp_http, "/v1/traces", JSON, HUNDRED_MB, true).await;
    assert_eq!(status, 413, "chunked 100 MB body\n{}", server.stderr());
    let status = post_huge(server.addrs.zipkin, "/api/v2/spans", JSON, HUNDRED_MB, true).await;
    assert_eq!(
        status,
        413,
        "chunked 100 MB Zipkin body\n{}",
        server.stderr()
    );
    assert_still_serving(&mut server, "8a3c60f7d188f8fa79d48a391a778fa6").await;
}

/// Writes Huffman codes and header bits in deflate's bit order.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bit: u32,
}

impl BitWriter {
    /// A value, least significant bit first (block headers).
    fn bits(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.push((value >> i) & 1);
        }
    }

    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, length: u32) {
        for i in (0..length).rev() {
            self.push((code >> i) & 1);
        }
    }

    fn push(&mut self, bit: u32) {
        if self.bit == 0 {
            self.bytes.push(0);
        }
        if let Some(last) = self.bytes.last_mut() {
            *last |= u8::try_from(bit << self.bit).unwrap();
        }
        self.bit = (self.bit + 1) % 8;
    }

    /// A literal byte under deflate's fixed Huffman code.
    fn literal(&mut self, byte: u8) {
        let byte = u32::from(byte);
        if byte < 144 {
            self.code(0x30 + byte, 8)
        } else {
            self.code(0x190 + byte - 144, 9)
        }
    }
}

/// A gzip member that inflates to `prefix` followed by `zeros` zero bytes,
/// built directly (one fixed-Huffman block of length-258, distance-1
/// copies) so a 256 MiB bomb costs milliseconds to make, not a debug-build
/// compression of 256 MiB.
fn gzip_bomb(prefix: &[u8], zeros: usize) -> Vec<u8> {
    assert!(zeros > 0);
    let mut deflate = BitWriter::default();
    deflate.bits(1, 1); // BFINAL
    deflate.bits(1, 2); // BTYPE = fixed Huffman
    for byte in prefix {
        deflate.literal(*byte);
    }
    deflate.literal(0);
    let mut left = zeros - 1;
    while left >= 258 {
        deflate.code(0b1100_0101, 8); // length code 285: 258 bytes
        deflate.code(0, 5); // distance code 0: distance 1
        left -= 258;
    }
    for _ in 0..left {
        deflate.literal(0);
    }
    deflate.code(0, 7); // end of block

    // CRC-32 of the output: of the prefix, then of a MiB of zeros combined
    // as many times as needed.
    let mut crc = flate2::Crc::new();
    crc.update(prefix);
    let mib = vec![0u8; 1 << 20];
    let mut whole = flate2::Crc::new();
    whole.update(&mib);
    for _ in 0..zeros / mib.len() {
        crc.combine(&whole);
    }
    crc.update(&mib[..zeros % mib.len()]);

    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gzip.extend_from_slice(&deflate.bytes);
    gzip.extend_from_slice(&crc.sum().to_le_bytes());
    let size = u32::try_from((prefix.len() + zeros) % (1 << 32)).unwrap();
    gzip.extend_from_slice(&size.to_le_bytes());
    gzip
}

/// An OTLP request holding one unknown length-delimited field (number 15)
/// of `len` bytes: valid protobuf whatever its size, so only the size limit
/// can reject it.
fn unknown_field_prefix(len: usize) -> Vec<u8> {
    let mut prefix = vec![(15 << 3) | 2];
    let mut n = len;
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap();
        n >>= 7;
        if n == 0 {
            prefix.push(byte);
            break;
        }
        prefix.push(byte | 0x80);
    }
    prefix
}

#[test]
fn the_gzip_bomb_helper_makes_valid_gzip() {
    let zeros = 300_001;
    let prefix = unknown_field_prefix(zeros);
    let bomb = gzip_bomb(&prefix, zeros);
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&bomb[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated.len(), prefix.len() + zeros);
    assert_eq!(&inflated[..prefix.len()], &prefix[..]);
    assert!(inflated[prefix.len()..].iter().all(|b| *b == 0));
    // And it is a bomb: over 100 to 1 (fixed Huffman codes cap it near 158).
    assert!(
        bomb.len() * 100 < inflated.len(),
        "{} -> {}",
        bomb.len(),
        inflated.len()
    );
    // Valid protobuf: an empty request with an unknown field.
    ExportTraceServiceRequest::decode(&inflated[..]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    // 256 MiB inflated (4x the default 64 MiB limit) from ~2 MiB on the
    // wire (under the 20 MiB body limit).
    let zeros = 256 << 20;
    let bomb = gzip_bomb(&unknown_field_prefix(zeros), zeros);
    assert!(bomb.len() < 20 << 20);
    let answer = Http::new()
        .send(
            Method::POST,
            &server.otlp_http_url("/v1/traces"),
            &[("content-type", PROTOBUF), ("content-encoding", "gzip")],
            bomb,
        )
        .await;
    assert_client_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "gzip bomb");
    assert_still_serving(&mut server, "d4cda95b652f4a1592b449d5929fda1b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let body = json_request(vec![json_span(
        "c0ffee00c0ffee00c0ffee00c0ffee00",
        "0123456789abcdef",
        "x",
    )])
    .to_string();
    for content_type in ["text/plain", "application/xml"] {
        let answer = post(
            &server.otlp_http_url("/v1/traces"),
            content_type,
            body.clone(),
        )
        .await;
        assert_client_error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, content_type);
        let answer = post(
            &server.otlp_http_url("/v1/logs"),
            content_type,
            body.clone(),
        )
        .await;
        assert_client_error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, content_type);
    }
    // Nothing of the refused request was stored.
    let missing = get(&server.api_url("/api/v1/traces/c0ffee00c0ffee00c0ffee00c0ffee00")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());
    assert_still_serving(&mut server, "3a9d2b8e7c6f5e4d3c2b1a0f9e8d7c6b").await;
}

const DEPTH: usize = 10_000;

/// Deep nesting must not crash the server: the request fails as a whole
/// (400) or the deep span alone is rejected and its sibling kept.
async fn check_deep_answer(server: &TestServer, answer: common::Response, sibling_trace: &str) {
    match answer.status {
        StatusCode::BAD_REQUEST => assert!(!answer.body.is_empty(), "400 without a message"),
        StatusCode::OK => {
            let rejected = if answer
                .header("content-type")
                .is_some_and(|t| t.contains("json"))
            {
                rejected_spans(&answer.json())
            } else {
                ExportTraceServiceResponse::decode(answer.body.clone())
                    .unwrap()
                    .partial_success
                    .map_or(0, |p| p.rejected_spans)
                    .try_into()
                    .unwrap()
            };
            assert_eq!(rejected, 1, "{}", answer.text());
            let trace = get_trace(server, sibling_trace).await;
            assert_eq!(trace["spanCount"], 1, "{trace:#}");
        }
        other => panic!(
            "deeply nested value: {other} {}\n{}",
            answer.text(),
            server.stderr()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_nested_10000_levels_deep_does_not_crash_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;

    // OTLP/JSON: {"arrayValue":{"values":[ ... {"intValue":"1"} ... ]}}.
    let open = r#"{"arrayValue":{"values":["#.repeat(DEPTH);
    let close = "]}}".repeat(DEPTH);
    let deep = format!(r#"{{"key":"deep","value":{open}{{"intValue":"1"}}{close}}}"#);
    let sibling = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let mut deep_span = json_span(
        "1f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "0a0b0c0d0e0f1011",
        "deep",
    );
    deep_span["attributes"] = Value::Array(Vec::new());
    let body = json_request(vec![
        deep_span,
        json_span(sibling, "0a0b0c0d0e0f1012", "sibling"),
    ])
    .to_string();
    // Splice the deep attribute in as text: serde_json's own recursion limit
    // would refuse to build it as a `Value`.
    let body = body.replacen(
        r#""attributes":[]"#,
        &format!(r#""attributes":[{deep}]"#),
        1,
    );
    assert!(body.len() > DEPTH * 20);
    let answer = post(&server.otlp_http_url("/v1/traces"), JSON, body).await;
    check_deep_answer(&server, answer, sibling).await;

    // OTLP protobuf: the same nesting, as AnyValue { array_value: ArrayValue { values: [..] } }.
    let sibling = [0x5e; 16];
    let body = deep_proto_request([0x5d; 16], sibling);
    let answer = post(&server.otlp_http_url("/v1/traces"), PROTOBUF, body).await;
    check_deep_answer(&server, answer, &common::hex(&sibling)).await;

    assert_still_serving(&mut server, "2b3c4d5e6f708192a3b4c5d6e7f80910").await;
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap();
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited field.
fn field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    varint(usize::try_from((number << 3) | 2).unwrap(), &mut out);
    varint(payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

/// A trace export request with a span whose one attribute is nested
/// [`DEPTH`] levels deep, and a normal sibling span in another trace. Built
/// by hand: prost's own encoder and decoder recurse and stop at 100 levels.
fn deep_proto_request(deep_trace: [u8; 16], sibling_trace: [u8; 16]) -> Vec<u8> {
    // AnyValue { int_value: 1 } (field 3, varint).
    let innermost = vec![3 << 3, 1];
    // Nesting has no closing bytes in protobuf: compute each level's length
    // from the inside out, then write the headers from the outside in.
    let mut any_lengths = vec![innermost.len()];
    let mut headers: Vec<Vec<u8>> = Vec::with_capacity(DEPTH);
    for _ in 0..DEPTH {
        let inner = *any_lengths.last().unwrap();
        // ArrayValue { values (1): inner AnyValue }
        let mut array_head = vec![1 << 3 | 2];
        varint(inner, &mut array_head);
        let array_len = array_head.len() + inner;
        // AnyValue { array_value (5): ArrayValue }
        let mut any_head = vec![5 << 3 | 2];
        varint(array_len, &mut any_head);
        any_lengths.push(any_head.len() + array_len);
        any_head.extend_from_slice(&array_head);
        headers.push(any_head);
    }
    let mut deep_value = Vec::with_capacity(*any_lengths.last().unwrap());
    for head in headers.iter().rev() {
        deep_value.extend_from_slice(head);
    }
    deep_value.extend_from_slice(&innermost);
    assert_eq!(deep_value.len(), *any_lengths.last().unwrap());

    // KeyValue { key (1), value (2) }
    let mut key_value = field(1, b"deep");
    key_value.extend(field(2, &deep_value));
    let start = now_nanos();
    let mut deep_span = field(1, &deep_trace); // trace_id
    deep_span.extend(field(2, &[0x5d; 8])); // span_id
    deep_span.extend(field(5, b"deep")); // name
    deep_span.extend([7 << 3 | 1]); // start_time_unix_nano (fixed64)
    deep_span.extend(start.to_le_bytes());
    deep_span.extend([8 << 3 | 1]); // end_time_unix_nano
    deep_span.extend((start + 1000).to_le_bytes());
    deep_span.extend(field(9, &key_value)); // attributes
    let sibling = Span {
        trace_id: sibling_trace.to_vec(),
        span_id: vec![0x5e; 8],
        name: "sibling".to_string(),
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1000,
        ..Default::default()
    }
    .encode_to_vec();
    // ScopeSpans { spans (2) }, ResourceSpans { scope_spans (2) }, request { resource_spans (1) }.
    let mut scope_spans = field(2, &deep_span);
    scope_spans.extend(field(2, &sibling));
    let resource_spans = field(2, &scope_spans);
    field(1, &resource_spans)
}

#[test]
fn the_deep_protobuf_helper_is_well_formed_up_to_prost_s_limit() {
    // prost refuses the nesting (its recursion limit is 100): the framing is
    // right, only the depth is refused.
    let body = deep_proto_request([1; 16], [2; 16]);
    let err = ExportTraceServiceRequest::decode(&body[..]).unwrap_err();
    assert!(err.to_string().contains("recursion"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_garbage_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    for (path, message) in [
        (
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            &[0xff_u8; 16][..],
        ),
        (
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            &[0x0a, 0x7f, 0x01][..],
        ),
    ] {
        // A gRPC frame: uncompressed flag, big-endian length, the message.
        let mut frame = vec![0u8];
        frame.extend(u32::try_from(message.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(message);
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", server.grpc_url()))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from(frame)))
            .unwrap();
        let exchange = async {
            let response = client.request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let collected = body.collect().await.unwrap();
            (parts, collected.trailers().cloned())
        };
        let (parts, trailers) = tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .unwrap();
        // A trailers-only answer puts grpc-status in the headers.
        let status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| parts.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let message = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| parts.headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            status.as_deref(),
            Some("3"),
            "{path}: want INVALID_ARGUMENT; {parts:?} {trailers:?}"
        );
        assert!(
            !message.is_empty(),
            "{path}: INVALID_ARGUMENT without a message"
        );
    }
    assert_still_serving(&mut server, "7d6c5b4a39281706f5e4d3c2b1a09f8e").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_bad_and_unknown_ids_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    // A 16-digit id is Zipkin's 64-bit form (left-padded, as Tempo reads
    // it): unknown, not malformed.
    let answer = get(&server.api_url("/api/v1/traces/0123456789abcdef")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    for bad in [
        "xyz",
        "0123456789abcdef0123456789abcdef00",
        "0123456789abcdef0123456789abcdeg",
        "00000000000000000000000000000000",
    ] {
        let answer = get(&server.api_url(&format!("/api/v1/traces/{bad}"))).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            answer.text()
        );
        let error = answer.json();
        assert_eq!(error["error"]["code"], 400, "{error:#}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{error:#}"
        );
    }
    let answer = get(&server.api_url("/api/v1/traces/fedcba9876543210fedcba9876543210")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    let error = answer.json();
    assert_eq!(error["error"]["code"], 404, "{error:#}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("fedcba9876543210fedcba9876543210"))
    );
    assert_still_serving(&mut server, "e1e2e3e4e5e6e7e8e9eaebecedeeeff0").await;
}
