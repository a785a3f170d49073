//! The kill -9 proof: what the server acknowledged survives SIGKILL.
//!
//! Concurrent senders post OTLP/HTTP protobuf batches while the server is
//! killed with SIGKILL after a random (seeded) delay; it is restarted on the
//! same data directory, and every trace whose batch was answered 200 must be
//! readable with all its spans, exactly once. Requests in flight at the kill
//! may or may not have landed: they are not checked. Data accumulates over
//! the cycles, so the last check also proves that replay survives replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Http, SplitMix64, TestServer, hex};
use http::{Method, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message as _;

const SEED: u64 = 0x7472_6163_6577_6172; // "tracewar"
const CYCLES: usize = 20;
const SENDERS: usize = 4;
const TRACES_PER_BATCH: u64 = 2;
const SPANS_PER_TRACE: u64 = 3;
/// Traces re-read after each restart (the full check is at the end).
const SAMPLE_PER_CYCLE: usize = 16;
/// Concurrent readers for the final check.
const READERS: usize = 8;

/// A trace the server acknowledged: its id and its spans' ids.
#[derive(Clone, Debug)]
struct Acked {
    trace_id: String,
    span_ids: BTreeSet<String>,
    cycle: usize,
}

/// Trace `n` (from the shared counter): the counter in the high half makes
/// it unique, the seeded hash in the low half makes it look like an id.
fn trace_id(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&SplitMix64::new(SEED ^ n).next_u64().to_be_bytes());
    id
}

fn span_id(trace: u64, index: u64) -> [u8; 8] {
    ((trace << 8) | (index + 1)).to_be_bytes()
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// One batch of [`TRACES_PER_BATCH`] traces of [`SPANS_PER_TRACE`] spans
/// (a server span and its children), with the ids it carries.
fn batch(sender: usize, first_trace: u64, cycle: usize) -> (Vec<u8>, Vec<Acked>) {
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let mut spans = Vec::new();
    let mut acked = Vec::new();
    for n in first_trace..first_trace + TRACES_PER_BATCH {
        let trace = trace_id(n);
        let mut span_ids = BTreeSet::new();
        for i in 0..SPANS_PER_TRACE {
            let id = span_id(n, i);
            span_ids.insert(hex(&id));
            spans.push(Span {
                trace_id: trace.to_vec(),
                span_id: id.to_vec(),
                parent_span_id: if i == 0 {
                    Vec::new()
                } else {
                    span_id(n, 0).to_vec()
                },
                name: if i == 0 {
                    "GET /items".to_string()
                } else {
                    format!("SELECT items {i}")
                },
                kind: if i == 0 {
                    span::SpanKind::Server
                } else {
                    span::SpanKind::Client
                } as i32,
                start_time_unix_nano: now + i * 1000,
                end_time_unix_nano: now + 1_000_000,
                attributes: vec![
                    string_attribute("http.request.method", "GET"),
                    int_attribute("http.response.status_code", 200),
                    string_attribute("client.address", "198.51.100.23"),
                    int_attribute("durability.trace", i64::try_from(n).unwrap()),
                ],
                ..Default::default()
            });
        }
        acked.push(Acked {
            trace_id: hex(&trace),
            span_ids,
            cycle,
        });
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute(
                    "service.name",
                    &format!("sender-{sender}"),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "durability".to_string(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request.encode_to_vec(), acked)
}

/// Posts batches until told to stop or the server goes away; returns the
/// traces of every batch answered 200.
async fn sender(
    sender: usize,
    url: String,
    counter: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    cycle: usize,
) -> Vec<Acked> {
    let http = Http::new();
    let mut acked = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let first = counter.fetch_add(TRACES_PER_BATCH, Ordering::Relaxed);
        let (body, traces) = batch(sender, first, cycle);
        match http
            .try_send(
                Method::POST,
                &url,
                &[("content-type", "application/x-protobuf")],
                body,
            )
            .await
        {
            Ok(response) if response.status == StatusCode::OK => acked.extend(traces),
            // Overloaded or not ready: not acknowledged, try again shortly.
            Ok(response)
                if response.status == StatusCode::TOO_MANY_REQUESTS
                    || response.status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(response) => panic!("unexpected answer {}: {}", response.status, response.text()),
            // The server was killed: whatever was in flight is unknown.
            Err(_) => break,
        }
    }
    acked
}

/// Reads each trace back; returns a description of every one that is
/// missing or wrong.
async fn check(server: &TestServer, traces: &[Acked]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    for chunk in traces.chunks(traces.len().div_ceil(READERS).max(1)) {
        let chunk = chunk.to_vec();
        let base = server.api_url("/api/v1/traces/");
        readers.spawn(async move {
            let http = Http::new();
            let mut problems = Vec::new();
            for acked in chunk {
                let url = format!("{base}{}", acked.trace_id);
                let response = http.send(Method::GET, &url, &[], bytes::Bytes::new()).await;
                if response.status != StatusCode::OK {
                    problems.push(format!(
                        "trace {} (acknowledged in cycle {}): {} {}",
                        acked.trace_id,
                        acked.cycle,
                        response.status,
                        response.text()
                    ));
                    continue;
                }
                let trace = response.json();
                let got: Vec<String> = trace["spans"]
                    .as_array()
                    .map(|spans| spans.iter().filter_map(|s| s["spanId"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let unique: BTreeSet<String> = got.iter().cloned().collect();
                if trace["spanCount"] != SPANS_PER_TRACE || got.len() != unique.len() || unique != acked.span_ids {
                    problems.push(format!(
                        "trace {} (acknowledged in cycle {}): expected spans {:?}, got {:?} (spanCount {})",
                        acked.trace_id, acked.cycle, acked.span_ids, got, trace["spanCount"]
                    ));
                }
            }
            problems
        });
    }
    while let Some(result) = readers.join_next().await {
        problems.extend(result.unwrap());
    }
    problems
}

fn report(problems: &[String], server: &TestServer, when: &str) {
    assert!(
        problems.is_empty(),
        "{when}: {} acknowledged trace(s) lost or damaged after SIGKILL; first ones:\n{}\n--- server stderr\n{}",
        problems.len(),
        problems
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(SEED);
    let counter = Arc::new(AtomicU64::new(1));
    let mut acked: Vec<Acked> = Vec::new();

    for cycle in 0..CYCLES {
        let mut server = TestServer::start(dir.path()).await;

        // A sample of what earlier cycles acknowledged: the newest (written
        // just before the last kill, the likeliest to be torn) and a few
        // spread over the older ones.
        let mut sample: Vec<Acked> = acked
            .iter()
            .rev()
            .take(SAMPLE_PER_CYCLE / 2)
            .cloned()
            .collect();
        for _ in 0..SAMPLE_PER_CYCLE / 2 {
            if !acked.is_empty() {
                let i = usize::try_from(rng.next_u64() % acked.len() as u64).unwrap();
                sample.push(acked[i].clone());
            }
        }
        report(
            &check(&server, &sample).await,
            &server,
            &format!("after restart {cycle}"),
        );

        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = tokio::task::JoinSet::new();
        for s in 0..SENDERS {
            senders.spawn(sender(
                s,
                server.otlp_http_url("/v1/traces"),
                counter.clone(),
                stop.clone(),
                cycle,
            ));
        }
        let delay = rng.range(50, 400);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        let before = acked.len();
        while let Some(result) = senders.join_next().await {
            acked.extend(result.unwrap());
        }
        eprintln!(
            "cycle {cycle}: SIGKILL after {delay} ms, {} trace(s) acknowledged",
            acked.len() - before
        );
    }

    let server = TestServer::start(dir.path()).await;
    assert!(
        acked.len() >= CYCLES,
        "too few acknowledged traces ({}) for the test to mean anything\n{}",
        acked.len(),
        server.stderr()
    );
    let problems = check(&server, &acked).await;
    report(&problems, &server, "final check");
    eprintln!(
        "{} acknowledged trace(s) all present after {CYCLES} SIGKILLs",
        acked.len()
    );
}
