//! The official OpenTelemetry Rust SDK exports to the real `tracewarden`
//! binary (OTLP over gRPC and over HTTP/protobuf, spans and log records), and
//! a Zipkin v2 client posts JSON; each trace is then read back through the
//! API and checked field by field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestServer, get_trace, post};
use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags,
    TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{
    Compression, Protocol, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
use opentelemetry_sdk::logs::{LogExporter, SdkLoggerProvider};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use serde_json::{Value, json};

const SERVICE: &str = "checkout-api";
const TRACE_SCOPE: &str = "tracewarden-e2e";
const LOG_SCOPE: &str = "tracewarden-e2e-logs";
const SCOPE_VERSION: &str = "1.2.3";
/// The remote span the server span links to.
const LINKED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const LINKED_SPAN: &str = "b7ad6b7169203331";

/// What the SDK was made to send, for the checks.
struct Sent {
    trace_id: String,
    server_span: String,
    client_span: String,
    /// Start of the server span, Unix nanoseconds; every other time is an offset from it.
    t0: u64,
}

fn ms(n: u64) -> u64 {
    n * 1_000_000
}

fn at(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name(SERVICE)
        .with_attribute(KeyValue::new("deployment.environment.name", "e2e"))
        .build()
}

fn scope(name: &'static str) -> InstrumentationScope {
    InstrumentationScope::builder(name)
        .with_version(SCOPE_VERSION)
        .build()
}

/// Builds the providers on the async-runtime batch processors (export runs on
/// this test's tokio runtime, as an instrumented tokio service would do).
fn providers(
    spans: impl SpanExporter + 'static,
    logs: impl LogExporter + 'static,
) -> (SdkTracerProvider, SdkLoggerProvider) {
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_span_processor(BatchSpanProcessor::builder(spans, Tokio).build())
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_log_processor(BatchLogProcessor::builder(logs, Tokio).build())
        .build();
    (tracer_provider, logger_provider)
}

/// A failed login as an instrumented service reports it: a server span with
/// legacy and current HTTP attributes, an event, a link and an error status;
/// a child client span; and three log records emitted inside the spans, in
/// an order that is not their time order.
fn record_failed_login(
    tracer_provider: &SdkTracerProvider,
    logger_provider: &SdkLoggerProvider,
) -> Sent {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let t0 = u64::try_from(now.as_nanos()).unwrap();
    let tracer = tracer_provider.tracer_with_scope(scope(TRACE_SCOPE));
    let logger = logger_provider.logger_with_scope(scope(LOG_SCOPE));
    let emit = |time: u64, severity: Severity, text: &'static str, body: &'static str| {
        let mut record = logger.create_log_record();
        record.set_timestamp(at(time));
        record.set_observed_timestamp(at(time));
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_body(LogValue::from(body));
        record.add_attribute("enduser.id", "alice");
        logger.emit(record);
    };

    let linked = SpanContext::new(
        TraceId::from_hex(LINKED_TRACE).unwrap(),
        SpanId::from_hex(LINKED_SPAN).unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut server = tracer
        .span_builder("POST /login")
        .with_kind(SpanKind::Server)
        .with_start_time(at(t0))
        .with_attributes(vec![
            KeyValue::new("http.status_code", 401_i64),
            KeyValue::new("http.method", "POST"),
            KeyValue::new("http.route", "/login"),
            KeyValue::new("client.address", "203.0.113.7"),
            KeyValue::new("user_agent.original", "curl/8.5.0"),
            KeyValue::new("enduser.id", "alice"),
        ])
        .with_links(vec![Link::new(
            linked,
            vec![KeyValue::new("link.reason", "retry-of")],
            0,
        )])
        .start(&tracer);
    server.add_event_with_timestamp(
        "auth.failure",
        at(t0 + ms(1)),
        vec![KeyValue::new("reason", "bad password")],
    );
    server.set_status(Status::error("invalid credentials"));
    let server_cx = Context::current_with_span(server);

    let client = tracer
        .span_builder("SELECT users")
        .with_kind(SpanKind::Client)
        .with_start_time(at(t0 + ms(1)))
        .with_attributes(vec![
            KeyValue::new("server.address", "users-db.internal"),
            KeyValue::new("server.port", 5432_i64),
        ])
        .start_with_context(&tracer, &server_cx);
    let client_cx = server_cx.with_span(client);

    {
        let _active = server_cx.clone().attach();
        emit(t0 + ms(4), Severity::Warn, "WARN", "login failed for alice");
        emit(
            t0 + ms(1) / 2,
            Severity::Info,
            "INFO",
            "login attempt for alice",
        );
    }
    {
        let _active = client_cx.clone().attach();
        emit(t0 + ms(2), Severity::Debug, "DEBUG", "user row not found");
    }

    let sent = Sent {
        trace_id: server_cx.span().span_context().trace_id().to_string(),
        server_span: server_cx.span().span_context().span_id().to_string(),
        client_span: client_cx.span().span_context().span_id().to_string(),
        t0,
    };
    client_cx.span().end_with_timestamp(at(t0 + ms(3)));
    server_cx.span().end_with_timestamp(at(t0 + ms(5)));
    sent
}

/// Flushes and shuts both providers down off the async workers: the SDK
/// blocks the calling thread until the export on the runtime has answered.
async fn flush(tracer_provider: SdkTracerProvider, logger_provider: SdkLoggerProvider) {
    tokio::task::spawn_blocking(move || {
        tracer_provider
            .force_flush()
            .expect("span export (force_flush) failed");
        logger_provider
            .force_flush()
            .expect("log export (force_flush) failed");
        tracer_provider
            .shutdown()
            .expect("tracer provider shutdown failed");
        logger_provider
            .shutdown()
            .expect("logger provider shutdown failed");
    })
    .await
    .unwrap();
}

fn string(n: u64) -> Value {
    Value::String(n.to_string())
}

/// Checks the trace read back from the API against what the SDK sent.
fn check_failed_login(trace: &Value, sent: &Sent) {
    let t0 = sent.t0;
    assert_eq!(trace["traceId"], sent.trace_id.as_str());
    assert_eq!(trace["spanCount"], 2, "{trace:#}");
    assert_eq!(trace["logCount"], 3, "{trace:#}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);

    // Spans come by start time: the server span first.
    let server = &spans[0];
    assert_eq!(server["traceId"], sent.trace_id.as_str());
    assert_eq!(server["spanId"], sent.server_span.as_str());
    assert!(
        server.get("parentSpanId").is_none_or(Value::is_null),
        "root has a parent: {server:#}"
    );
    assert_eq!(server["name"], "POST /login");
    assert_eq!(server["kind"], "server");
    assert_eq!(server["serviceName"], SERVICE);
    assert_eq!(server["startTimeUnixNano"], string(t0));
    assert_eq!(server["endTimeUnixNano"], string(t0 + ms(5)));
    assert_eq!(server["durationNanos"], string(ms(5)));
    assert_eq!(server["status"]["code"], "error");
    assert_eq!(server["status"]["message"], "invalid credentials");

    // Legacy names are normalised; current names pass through unchanged.
    let attributes = server["attributes"].as_object().unwrap();
    assert_eq!(
        attributes.get("http.response.status_code"),
        Some(&json!(401)),
        "{attributes:#?}"
    );
    assert_eq!(
        attributes.get("http.request.method"),
        Some(&json!("POST")),
        "{attributes:#?}"
    );
    assert_eq!(attributes.get("http.route"), Some(&json!("/login")));
    assert_eq!(
        attributes.get("client.address"),
        Some(&json!("203.0.113.7"))
    );
    assert_eq!(
        attributes.get("user_agent.original"),
        Some(&json!("curl/8.5.0"))
    );
    assert_eq!(attributes.get("enduser.id"), Some(&json!("alice")));
    assert!(
        !attributes.contains_key("http.status_code"),
        "legacy name left in attributes: {attributes:#?}"
    );
    assert!(
        !attributes.contains_key("http.method"),
        "legacy name left in attributes: {attributes:#?}"
    );
    // The originals are kept as received.
    let originals = server["originalAttributes"]
        .as_object()
        .expect("originalAttributes on the server span");
    assert_eq!(
        originals.get("http.status_code"),
        Some(&json!(401)),
        "{originals:#?}"
    );
    assert_eq!(
        originals.get("http.method"),
        Some(&json!("POST")),
        "{originals:#?}"
    );
    assert!(
        !originals.contains_key("client.address"),
        "a current name is not an original: {originals:#?}"
    );

    assert_eq!(
        server["events"],
        json!([{
            "timeUnixNano": (t0 + ms(1)).to_string(),
            "name": "auth.failure",
            "attributes": {"reason": "bad password"},
        }])
    );
    let links = server["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:#?}");
    assert_eq!(links[0]["traceId"], LINKED_TRACE);
    assert_eq!(links[0]["spanId"], LINKED_SPAN);
    assert_eq!(links[0]["attributes"], json!({"link.reason": "retry-of"}));

    let resource = &server["resource"]["attributes"];
    assert_eq!(resource["service.name"], SERVICE);
    assert_eq!(resource["deployment.environment.name"], "e2e");
    assert_eq!(server["scope"]["name"], TRACE_SCOPE);
    assert_eq!(server["scope"]["version"], SCOPE_VERSION);

    let client = &spans[1];
    assert_eq!(client["traceId"], sent.trace_id.as_str());
    assert_eq!(client["spanId"], sent.client_span.as_str());
    assert_eq!(client["parentSpanId"], sent.server_span.as_str());
    assert_eq!(client["name"], "SELECT users");
    assert_eq!(client["kind"], "client");
    assert_eq!(client["serviceName"], SERVICE);
    assert_eq!(client["startTimeUnixNano"], string(t0 + ms(1)));
    assert_eq!(client["endTimeUnixNano"], string(t0 + ms(3)));
    assert_eq!(client["durationNanos"], string(ms(2)));
    assert_eq!(client["status"]["code"], "unset");
    assert_eq!(client["attributes"]["server.address"], "users-db.internal");
    assert_eq!(client["attributes"]["server.port"], 5432);
    assert_eq!(client["events"], json!([]));
    assert_eq!(client["links"], json!([]));

    // Log records by time, each joined to the span that was active.
    let logs = trace["logs"].as_array().unwrap();
    let expected = [
        (
            t0 + ms(1) / 2,
            9,
            "INFO",
            "login attempt for alice",
            &sent.server_span,
        ),
        (
            t0 + ms(2),
            5,
            "DEBUG",
            "user row not found",
            &sent.client_span,
        ),
        (
            t0 + ms(4),
            13,
            "WARN",
            "login failed for alice",
            &sent.server_span,
        ),
    ];
    assert_eq!(logs.len(), expected.len(), "{logs:#?}");
    for (log, (time, severity, text, body, span_id)) in logs.iter().zip(expected) {
        assert_eq!(log["timeUnixNano"], string(time), "{log:#}");
        assert_eq!(log["severityNumber"], severity, "{log:#}");
        assert_eq!(log["severityText"], text, "{log:#}");
        assert_eq!(log["body"], body, "{log:#}");
        assert_eq!(log["traceId"], sent.trace_id.as_str(), "{log:#}");
        assert_eq!(log["spanId"], span_id.as_str(), "{log:#}");
        assert_eq!(log["attributes"]["enduser.id"], "alice", "{log:#}");
        assert_eq!(log["serviceName"], SERVICE, "{log:#}");
        assert_eq!(
            log["resource"]["attributes"]["service.name"], SERVICE,
            "{log:#}"
        );
        assert_eq!(log["scope"]["name"], LOG_SCOPE, "{log:#}");
        assert_eq!(log["scope"]["version"], SCOPE_VERSION, "{log:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_spans_and_logs_over_grpc_with_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(server.grpc_url())
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(server.grpc_url())
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (tracer_provider, logger_provider) = providers(spans, logs);
    let sent = record_failed_login(&tracer_provider, &logger_provider);
    flush(tracer_provider, logger_provider).await;

    let trace = get_trace(&server, &sent.trace_id).await;
    check_failed_login(&trace, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_spans_and_logs_over_http_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    // Spans uncompressed, logs gzip: both encodings of the HTTP receiver.
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(server.otlp_http_url("/v1/traces"))
        .with_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(server.otlp_http_url("/v1/logs"))
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (tracer_provider, logger_provider) = providers(spans, logs);
    let sent = record_failed_login(&tracer_provider, &logger_provider);
    flush(tracer_provider, logger_provider).await;

    let trace = get_trace(&server, &sent.trace_id).await;
    check_failed_login(&trace, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_v2_json_round_trip_is_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let trace_id = "5af7183fb1d4cf5f6b221d5bc9e6496c";
    // Zipkin times are microseconds.
    let start_micros: u64 = 1_780_000_000_123_456;
    let body = json!([
        {
            "traceId": trace_id,
            "id": "6b221d5bc9e6496c",
            "name": "post /login",
            "kind": "SERVER",
            "timestamp": start_micros,
            "duration": 5000,
            "localEndpoint": {"serviceName": "frontend", "ipv4": "192.168.99.1", "port": 8080},
            "remoteEndpoint": {"ipv4": "203.0.113.9", "port": 52000},
            "tags": {"http.status_code": "401", "http.method": "POST", "http.path": "/login"}
        },
        {
            "traceId": trace_id,
            "parentId": "6b221d5bc9e6496c",
            "id": "7c332e6cdaf75a7d",
            "name": "get /users",
            "kind": "CLIENT",
            "timestamp": start_micros + 1000,
            "duration": 2000,
            "localEndpoint": {"serviceName": "frontend"},
            "tags": {"http.method": "GET", "http.path": "/users/alice"}
        }
    ]);
    let response = post(
        &server.zipkin_url("/api/v2/spans"),
        "application/json",
        body.to_string(),
    )
    .await;
    assert!(
        response.status.is_success(),
        "zipkin POST: {} {}",
        response.status,
        response.text()
    );

    let trace = get_trace(&server, trace_id).await;
    assert_eq!(trace["spanCount"], 2, "{trace:#}");
    let spans = trace["spans"].as_array().unwrap();
    let server_span = &spans[0];
    assert_eq!(server_span["spanId"], "6b221d5bc9e6496c");
    assert!(server_span.get("parentSpanId").is_none_or(Value::is_null));
    assert_eq!(server_span["name"], "post /login");
    assert_eq!(server_span["kind"], "server");
    assert_eq!(server_span["serviceName"], "frontend");
    assert_eq!(
        server_span["resource"]["attributes"]["service.name"],
        "frontend"
    );
    assert_eq!(
        server_span["startTimeUnixNano"],
        string(start_micros * 1000)
    );
    assert_eq!(
        server_span["endTimeUnixNano"],
        string((start_micros + 5000) * 1000)
    );
    let attributes = &server_span["attributes"];
    // A Zipkin tag is a string; the normalised status code is a number.
    assert_eq!(
        attributes["http.response.status_code"],
        json!(401),
        "{attributes:#}"
    );
    assert_eq!(attributes["http.request.method"], "POST", "{attributes:#}");
    assert_eq!(attributes["url.path"], "/login", "{attributes:#}");
    let originals = &server_span["originalAttributes"];
    assert_eq!(originals["http.status_code"], "401", "{originals:#}");
    assert_eq!(originals["http.path"], "/login", "{originals:#}");

    let client_span = &spans[1];
    assert_eq!(client_span["spanId"], "7c332e6cdaf75a7d");
    assert_eq!(client_span["parentSpanId"], "6b221d5bc9e6496c");
    assert_eq!(client_span["kind"], "client");
    assert_eq!(client_span["attributes"]["url.path"], "/users/alice");
    assert_eq!(client_span["attributes"]["http.request.method"], "GET");
}
