//! Counters of what the receivers accepted and rejected, by reason.
//!
//! Receivers count once per request, never per record: a request's span and
//! log counts are added with one atomic operation each, after the request
//! is answered (vector's rule: no per-event metrics in hot loops). The
//! counters are relaxed atomics: they are statistics, not synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The wire protocol (and encoding) a request came in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP over gRPC.
    OtlpGrpc,
    /// OTLP over HTTP, protobuf or JSON.
    OtlpHttp,
    /// Zipkin v2 JSON over HTTP.
    Zipkin,
}

impl Protocol {
    const ALL: [Protocol; 3] = [Protocol::OtlpGrpc, Protocol::OtlpHttp, Protocol::Zipkin];
    const COUNT: usize = Protocol::ALL.len();
}

/// Why a request, or some records of it, were not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The body could not be decoded (HTTP 400, gRPC `INVALID_ARGUMENT`).
    Malformed,
    /// The body, or what it decompressed to, was over a limit (HTTP 413).
    TooLarge,
    /// A content type or content encoding the receiver does not speak (HTTP 415).
    UnsupportedMediaType,
    /// The sink had too much in flight (HTTP 429, gRPC `RESOURCE_EXHAUSTED`).
    Overloaded,
    /// The sink was not ready (HTTP 503, gRPC `UNAVAILABLE`).
    Unavailable,
    /// The server failed (HTTP 500, gRPC `INTERNAL`).
    Internal,
    /// A record was invalid on its own (a trace id of the wrong length, say)
    /// and was dropped while the rest of its request was kept.
    InvalidRecord,
}

impl RejectReason {
    const ALL: [RejectReason; 7] = [
        RejectReason::Malformed,
        RejectReason::TooLarge,
        RejectReason::UnsupportedMediaType,
        RejectReason::Overloaded,
        RejectReason::Unavailable,
        RejectReason::Internal,
        RejectReason::InvalidRecord,
    ];
    const COUNT: usize = RejectReason::ALL.len();

    /// The snake_case name used in the snapshot and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnsupportedMediaType => "unsupported_media_type",
            RejectReason::Overloaded => "overloaded",
            RejectReason::Unavailable => "unavailable",
            RejectReason::Internal => "internal",
            RejectReason::InvalidRecord => "invalid_record",
        }
    }
}

/// Live counters, shared by every receiver (`Arc<IngestStats>`).
#[derive(Debug, Default)]
pub struct IngestStats {
    requests: [AtomicU64; Protocol::COUNT],
    failed_requests: [AtomicU64; RejectReason::COUNT],
    spans_accepted: AtomicU64,
    logs_accepted: AtomicU64,
    spans_rejected: [AtomicU64; RejectReason::COUNT],
    logs_rejected: [AtomicU64; RejectReason::COUNT],
}

impl IngestStats {
    pub fn new() -> IngestStats {
        IngestStats::default()
    }

    /// Counts one request received over `protocol`, whatever its outcome.
    pub fn record_request(&self, protocol: Protocol) {
        // The discriminant indexes an array sized by the enum: in bounds by construction.
        add(&self.requests[protocol as usize], 1);
    }

    /// Counts the records of one request that the sink made durable.
    pub fn record_accepted(&self, spans: u64, logs: u64) {
        add(&self.spans_accepted, spans);
        add(&self.logs_accepted, logs);
    }

    /// Counts records of one request that were not accepted, and why.
    pub fn record_rejected(&self, reason: RejectReason, spans: u64, logs: u64) {
        add(&self.spans_rejected[reason as usize], spans);
        add(&self.logs_rejected[reason as usize], logs);
    }

    /// Counts a request that was answered with an error.
    pub fn record_failed_request(&self, reason: RejectReason) {
        add(&self.failed_requests[reason as usize], 1);
    }

    /// A copy of every counter, for the API and logs. Counters are read one
    /// by one, so a snapshot taken during traffic may mix two instants.
    pub fn snapshot(&self) -> IngestStatsSnapshot {
        let requests = |p: Protocol| read(&self.requests[p as usize]);
        IngestStatsSnapshot {
            requests: RequestCounts {
                otlp_grpc: requests(Protocol::OtlpGrpc),
                otlp_http: requests(Protocol::OtlpHttp),
                zipkin: requests(Protocol::Zipkin),
            },
            failed_requests: ReasonCounts::read(&self.failed_requests),
            spans_accepted: read(&self.spans_accepted),
            logs_accepted: read(&self.logs_accepted),
            spans_rejected: ReasonCounts::read(&self.spans_rejected),
            logs_rejected: ReasonCounts::read(&self.logs_rejected),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A point-in-time copy of [`IngestStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestStatsSnapshot {
    /// Requests received, by protocol.
    pub requests: RequestCounts,
    /// Requests answered with an error, by reason. `invalid_record` counts
    /// requests in which every record was invalid.
    pub failed_requests: ReasonCounts,
    pub spans_accepted: u64,
    pub logs_accepted: u64,
    /// Spans not accepted, by reason. Only records that were decoded can be
    /// counted: a request that failed to decode (`malformed`, `too_large`,
    /// `unsupported_media_type`) shows in `failed_requests` alone.
    pub spans_rejected: ReasonCounts,
    /// Log records not accepted, by reason (as for spans).
    pub logs_rejected: ReasonCounts,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub otlp_grpc: u64,
    pub otlp_http: u64,
    pub zipkin: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.otlp_grpc + self.otlp_http + self.zipkin
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReasonCounts {
    pub malformed: u64,
    pub too_large: u64,
    pub unsupported_media_type: u64,
    pub overloaded: u64,
    pub unavailable: u64,
    pub internal: u64,
    pub invalid_record: u64,
}

impl ReasonCounts {
    fn read(counters: &[AtomicU64; RejectReason::COUNT]) -> ReasonCounts {
        let get = |r: RejectReason| read(&counters[r as usize]);
        ReasonCounts {
            malformed: get(RejectReason::Malformed),
            too_large: get(RejectReason::TooLarge),
            unsupported_media_type: get(RejectReason::UnsupportedMediaType),
            overloaded: get(RejectReason::Overloaded),
            unavailable: get(RejectReason::Unavailable),
            internal: get(RejectReason::Internal),
            invalid_record: get(RejectReason::InvalidRecord),
        }
    }

    /// The count for one reason.
    pub fn get(&self, reason: RejectReason) -> u64 {
        match reason {
            RejectReason::Malformed => self.malformed,
            RejectReason::TooLarge => self.too_large,
            RejectReason::UnsupportedMediaType => self.unsupported_media_type,
            RejectReason::Overloaded => self.overloaded,
            RejectReason::Unavailable => self.unavailable,
            RejectReason::Internal => self.internal,
            RejectReason::InvalidRecord => self.invalid_record,
        }
    }

    pub fn total(&self) -> u64 {
        RejectReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter() {
        let stats = IngestStats::new();
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            let n = i as u64 + 1;
            stats.record_rejected(*reason, n, 10 * n);
            stats.record_failed_request(*reason);
        }
        let snap = stats.snapshot();
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            let n = i as u64 + 1;
            assert_eq!(snap.spans_rejected.get(*reason), n, "{}", reason.as_str());
            assert_eq!(
                snap.logs_rejected.get(*reason),
                10 * n,
                "{}",
                reason.as_str()
            );
            assert_eq!(snap.failed_requests.get(*reason), 1, "{}", reason.as_str());
        }
        assert_eq!(snap.spans_rejected.total(), 28);
    }

    #[test]
    fn requests_are_counted_by_protocol() {
        let stats = IngestStats::new();
        for (i, protocol) in Protocol::ALL.iter().enumerate() {
            for _ in 0..=i {
                stats.record_request(*protocol);
            }
        }
        stats.record_accepted(5, 7);
        stats.record_accepted(1, 0);
        let snap = stats.snapshot();
        assert_eq!(
            snap.requests,
            RequestCounts {
                otlp_grpc: 1,
                otlp_http: 2,
                zipkin: 3
            }
        );
        assert_eq!(snap.requests.total(), 6);
        assert_eq!((snap.spans_accepted, snap.logs_accepted), (6, 7));
    }

    #[test]
    fn snapshot_serialises_with_reason_names() {
        let stats = IngestStats::new();
        stats.record_rejected(RejectReason::UnsupportedMediaType, 0, 0);
        stats.record_failed_request(RejectReason::UnsupportedMediaType);
        let json = serde_json::to_value(stats.snapshot()).unwrap();
        assert_eq!(json["failed_requests"]["unsupported_media_type"], 1);
        assert_eq!(json["spans_rejected"]["invalid_record"], 0);
        assert_eq!(json["requests"]["otlp_http"], 0);
        // The names in the JSON are the ones `as_str` gives.
        for reason in RejectReason::ALL {
            assert!(
                json["failed_requests"].get(reason.as_str()).is_some(),
                "{}",
                reason.as_str()
            );
        }
    }
}
