//! The timed run: one worker per connection, each sending the next
//! pre-encoded batch as soon as the previous one is answered, until the
//! deadline. Workers count locally and are merged once at the end, so the
//! hot loop shares nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::task::JoinSet;

use super::args::{Protocol, Target};
use super::grpc::GrpcExporter;
use super::http::HttpExporter;
use super::workload::{Workload, request_key};

/// Wait after a throttled request whose answer gave no hint.
const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_millis(100);
/// Wait after a failed request, so a dead server is not spun on.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);
/// Distinct error messages kept; the rest are counted together.
const MAX_DISTINCT_ERRORS: usize = 8;
const OTHER_ERRORS: &str = "(other errors)";

/// What an exporter sends: OTLP's trace or log export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    /// The gRPC method's path.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// The OTLP/HTTP path: the target's for traces; for logs, its
    /// `/v1/traces` ending replaced by `/v1/logs` (the OTLP exporter's
    /// per-signal paths under one base endpoint), else `/v1/logs`.
    pub fn http_path(self, traces: &PathAndQuery) -> PathAndQuery {
        match self {
            Signal::Traces => traces.clone(),
            Signal::Logs => {
                let base = traces.path().strip_suffix("/v1/traces").unwrap_or("");
                PathAndQuery::try_from(format!("{base}/v1/logs"))
                    .unwrap_or(PathAndQuery::from_static("/v1/logs"))
            }
        }
    }

    /// The spans or log records the server rejected, from an export response.
    pub fn rejected(self, response: Bytes) -> Result<u64, String> {
        let rejected = match self {
            Signal::Traces => ExportTraceServiceResponse::decode(response)
                .map(|r| r.partial_success.map_or(0, |p| p.rejected_spans)),
            Signal::Logs => ExportLogsServiceResponse::decode(response)
                .map(|r| r.partial_success.map_or(0, |p| p.rejected_log_records)),
        };
        rejected
            .map(|n| n.max(0) as u64)
            .map_err(|error| format!("response: {error}"))
    }
}

/// What became of one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Durably acknowledged; the server may have rejected some spans or log
    /// records (partial success).
    Accepted { rejected_spans: u64 },
    /// HTTP 429, or gRPC `RESOURCE_EXHAUSTED` with a `RetryInfo`.
    Throttled { retry_after: Option<Duration> },
    /// Anything else: a transport error, another status, a bad response.
    Failed(String),
}

impl Outcome {
    pub fn failed(reason: impl Into<String>) -> Outcome {
        Outcome::Failed(reason.into())
    }
}

/// A connection to the server under test, of either protocol.
pub enum Exporter {
    Grpc(GrpcExporter),
    Http(HttpExporter),
}

impl Exporter {
    pub async fn connect(target: &Target, gzip: bool) -> anyhow::Result<Exporter> {
        Exporter::connect_for(target, gzip, Signal::Traces).await
    }

    /// A connection for `signal`'s exports.
    pub async fn connect_for(
        target: &Target,
        gzip: bool,
        signal: Signal,
    ) -> anyhow::Result<Exporter> {
        let exporter = match target.protocol {
            Protocol::Grpc => Exporter::Grpc(GrpcExporter::connect(target, gzip, signal).await?),
            Protocol::Http => Exporter::Http(HttpExporter::connect(target, gzip, signal).await?),
        };
        Ok(exporter)
    }

    pub async fn export(&mut self, body: Bytes) -> Outcome {
        match self {
            Exporter::Grpc(exporter) => exporter.export(body).await,
            Exporter::Http(exporter) => exporter.export(body).await,
        }
    }
}

/// Counts of a run (or of one worker's share).
#[derive(Debug, Default)]
pub struct Tally {
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub requests_throttled: u64,
    pub spans_accepted: u64,
    pub spans_rejected: u64,
    /// Request bodies of acknowledged requests, as sent.
    pub body_bytes: u64,
    /// Protobuf bytes of acknowledged requests, before compression.
    pub protobuf_bytes: u64,
    /// Latency of each acknowledged request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// With a pace: requests sent after their scheduled time had passed by
    /// more than a tenth of the interval (the server, or the client, could
    /// not keep the rate).
    pub late_requests: u64,
    /// Failure messages and how often each was seen.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    fn note_error(&mut self, reason: String) {
        self.note_errors(reason, 1);
    }

    fn note_errors(&mut self, reason: String, count: u64) {
        let key = if self.errors.len() < MAX_DISTINCT_ERRORS || self.errors.contains_key(&reason) {
            reason
        } else {
            OTHER_ERRORS.to_string()
        };
        *self.errors.entry(key).or_default() += count;
    }

    fn merge(&mut self, other: Tally) {
        self.requests_ok += other.requests_ok;
        self.requests_failed += other.requests_failed;
        self.requests_throttled += other.requests_throttled;
        self.spans_accepted += other.spans_accepted;
        self.spans_rejected += other.spans_rejected;
        self.body_bytes += other.body_bytes;
        self.protobuf_bytes += other.protobuf_bytes;
        self.latencies_us.extend(other.latencies_us);
        self.late_requests += other.late_requests;
        for (reason, count) in other.errors {
            self.note_errors(reason, count);
        }
    }
}

/// The result of a timed run.
#[derive(Debug)]
pub struct Run {
    pub tally: Tally,
    /// From the start to the answer of the last request (which may come
    /// after the deadline: requests in flight then are waited for and counted).
    pub elapsed: Duration,
}

/// When each worker sends: as fast as answered, or on a fixed schedule.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    deadline: Instant,
    /// The first request's time and the interval between requests.
    paced: Option<(Instant, Duration)>,
}

/// Drives every exporter for `duration`, all starting together; with a
/// `pace`, each sends one request per `pace`, the connections' schedules
/// staggered evenly across it.
pub async fn drive(
    exporters: Vec<Exporter>,
    workload: Arc<Workload>,
    seed: u64,
    duration: Duration,
    pace: Option<Duration>,
) -> anyhow::Result<Run> {
    let start = Instant::now();
    let deadline = start + duration;
    let connections = u32::try_from(exporters.len()).unwrap_or(u32::MAX).max(1);
    let mut workers = JoinSet::new();
    for (index, exporter) in exporters.into_iter().enumerate() {
        let paced = pace.map(|interval| {
            let offset = interval / connections * u32::try_from(index).unwrap_or(0);
            (start + offset, interval)
        });
        workers.spawn(worker(
            index as u64,
            exporter,
            workload.clone(),
            seed,
            Schedule { deadline, paced },
        ));
    }
    let mut tally = Tally::default();
    let mut finished = start;
    while let Some(joined) = workers.join_next().await {
        let (share, done) = joined.context("a load generator worker failed")?;
        tally.merge(share);
        finished = finished.max(done);
    }
    Ok(Run {
        tally,
        elapsed: finished.duration_since(start),
    })
}

async fn worker(
    index: u64,
    mut exporter: Exporter,
    workload: Arc<Workload>,
    seed: u64,
    schedule: Schedule,
) -> (Tally, Instant) {
    let deadline = schedule.deadline;
    let mut tally = Tally::default();
    let templates = &workload.templates;
    // Workers start at different batches so they do not send in lockstep.
    let mut next = usize::try_from(index).unwrap_or(0) % templates.len().max(1);
    let mut sequence = 0;
    while Instant::now() < deadline {
        if let Some((first, interval)) = schedule.paced {
            let due = u32::try_from(sequence)
                .ok()
                .and_then(|n| interval.checked_mul(n))
                .and_then(|since| first.checked_add(since))
                .unwrap_or(deadline);
            let now = Instant::now();
            if due >= deadline {
                break;
            }
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else if now.duration_since(due) > interval / 10 {
                tally.late_requests += 1;
            }
        }
        let Some(template) = templates.get(next) else {
            break;
        };
        next = (next + 1) % templates.len();
        let body = template.body(&request_key(seed, index, sequence));
        sequence += 1;
        let body_len = body.len() as u64;
        let sent_at = Instant::now();
        let outcome = exporter.export(body).await;
        let latency = sent_at.elapsed();
        match outcome {
            Outcome::Accepted { rejected_spans } => {
                let rejected = rejected_spans.min(template.spans);
                tally.requests_ok += 1;
                tally.spans_accepted += template.spans - rejected;
                tally.spans_rejected += rejected;
                tally.body_bytes += body_len;
                tally.protobuf_bytes += template.protobuf_len;
                tally
                    .latencies_us
                    .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
            }
            Outcome::Throttled { retry_after } => {
                tally.requests_throttled += 1;
                // Back off as an OTLP exporter would, but not past the deadline.
                pause(retry_after.unwrap_or(DEFAULT_THROTTLE_PAUSE), deadline).await;
            }
            Outcome::Failed(reason) => {
                tally.requests_failed += 1;
                tally.note_error(reason);
                pause(FAILURE_PAUSE, deadline).await;
            }
        }
    }
    (tally, Instant::now())
}

async fn pause(wait: Duration, deadline: Instant) {
    let until = Instant::now()
        .checked_add(wait)
        .map_or(deadline, |until| until.min(deadline));
    tokio::time::sleep_until(until.into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_have_their_paths_and_partial_success() {
        let traces = PathAndQuery::from_static("/otlp/v1/traces");
        assert_eq!(Signal::Traces.http_path(&traces), traces);
        assert_eq!(Signal::Logs.http_path(&traces).as_str(), "/otlp/v1/logs");
        let custom = PathAndQuery::from_static("/ingest");
        assert_eq!(Signal::Logs.http_path(&custom).as_str(), "/v1/logs");
        assert!(Signal::Logs.grpc_path().ends_with("LogsService/Export"));
        let response = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess {
                    rejected_log_records: 4,
                    error_message: "too deep".to_string(),
                },
            ),
        };
        let encoded = Bytes::from(response.encode_to_vec());
        assert_eq!(Signal::Logs.rejected(encoded), Ok(4));
        assert_eq!(Signal::Logs.rejected(Bytes::new()), Ok(0));
        assert!(
            Signal::Traces
                .rejected(Bytes::from_static(b"\xff\xff"))
                .is_err()
        );
    }

    #[test]
    fn errors_are_counted_by_message_up_to_a_bound() {
        let mut tally = Tally::default();
        for i in 0..20 {
            tally.note_error(format!("error {}", i % 10));
        }
        assert_eq!(tally.errors.len(), MAX_DISTINCT_ERRORS + 1);
        assert_eq!(tally.errors.get("error 0"), Some(&2));
        // "error 8" and "error 9" came after the bound, twice each.
        assert_eq!(tally.errors.get(OTHER_ERRORS), Some(&4));
        assert_eq!(tally.errors.values().sum::<u64>(), 20);
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_error_bound() {
        let mut total = Tally::default();
        for worker in 0..3 {
            let mut share = Tally {
                requests_ok: 2,
                spans_accepted: 2000,
                latencies_us: vec![10, 20],
                ..Tally::default()
            };
            for i in 0..5 {
                share.note_error(format!("worker {worker} error {i}"));
                share.note_error(format!("worker {worker} error {i}"));
            }
            total.merge(share);
        }
        assert_eq!(total.requests_ok, 6);
        assert_eq!(total.spans_accepted, 6000);
        assert_eq!(total.latencies_us.len(), 6);
        assert_eq!(total.errors.len(), MAX_DISTINCT_ERRORS + 1);
        assert_eq!(total.errors.values().sum::<u64>(), 30);
        assert_eq!(total.errors.get("worker 0 error 0"), Some(&2));
    }
}
