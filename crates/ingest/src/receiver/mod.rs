//! Receivers: the OTLP/gRPC service, and the HTTP routes for OTLP/HTTP and Zipkin.
//!
//! Every receiver does the same four steps (`decode_body`, then `export`):
//! read the body under [`Limits::max_body_bytes`], decompress it under
//! [`Limits::max_decompressed_bytes`], decode it into a [`Decoded`], and hand
//! the valid records to the [`BatchSink`], answering only once the sink says
//! they are durable. What differs is the wire: [`http`] speaks HTTP status
//! codes and `google.rpc.Status` bodies, [`grpc`] speaks gRPC status codes
//! with `google.rpc.RetryInfo` details ([`rpc`] holds those messages).
//!
//! Errors are mapped once, here, into a [`ReceiveError`]; its
//! [`RejectReason`] gives both the HTTP status and the gRPC code:
//!
//! | reason | HTTP | gRPC | retry |
//! | --- | --- | --- | --- |
//! | malformed body, every record invalid | 400 | `INVALID_ARGUMENT` | no |
//! | body over a limit | 413 | `RESOURCE_EXHAUSTED` (no `RetryInfo`) | no |
//! | unsupported content type or encoding | 415 | `UNIMPLEMENTED` | no |
//! | sink overloaded | 429 + `Retry-After` | `RESOURCE_EXHAUSTED` + `RetryInfo` | yes |
//! | sink not ready | 503 + `Retry-After` | `UNAVAILABLE` + `RetryInfo` | yes |
//! | server failure | 500 | `INTERNAL` | no |

pub mod grpc;
pub mod http;
pub mod rpc;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::compression::decompress;
use crate::stats::RejectReason;
use crate::{BatchSink, DecodeError, Decoded, IngestStats, Limits, SinkError};

/// What the receivers share: where batches go, the limits, the counters.
/// Cheap to clone (two `Arc`s and a few integers).
#[derive(Clone)]
pub struct ReceiverState {
    pub sink: Arc<dyn BatchSink>,
    pub limits: Limits,
    pub stats: Arc<IngestStats>,
    inflight: Arc<AtomicUsize>,
}

impl ReceiverState {
    pub fn new(sink: Arc<dyn BatchSink>, limits: Limits, stats: Arc<IngestStats>) -> ReceiverState {
        ReceiverState {
            sink,
            limits,
            stats,
            inflight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Admits a request body of `bytes` into decoding, or refuses it as
    /// overloaded when the bodies already being decoded and made durable
    /// reach [`Limits::max_inflight_bytes`]. Decoding can multiply a body's
    /// size in memory, so without this bound many concurrent large requests
    /// could exhaust memory before the WAL queue ever pushes back. A lone
    /// request is always admitted, however large (its size is capped by the
    /// body limits), so an oversized limit cannot wedge the receiver.
    pub(crate) fn admit(&self, bytes: usize) -> Result<InflightPermit, ReceiveError> {
        let limit = self.limits.max_inflight_bytes;
        let admitted = self
            .inflight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used == 0 || used.saturating_add(bytes) <= limit)
                    .then(|| used.saturating_add(bytes))
            })
            .is_ok();
        if !admitted {
            return Err(ReceiveError::Sink(SinkError::Overloaded {
                retry_after: INFLIGHT_RETRY_AFTER,
            }));
        }
        Ok(InflightPermit {
            inflight: self.inflight.clone(),
            bytes,
        })
    }

    /// Bytes of request bodies admitted and not yet answered.
    pub fn inflight_bytes(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }
}

/// How long a sender refused by the in-flight budget is asked to wait.
pub const INFLIGHT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A body's share of the in-flight budget, returned when dropped.
#[derive(Debug)]
pub(crate) struct InflightPermit {
    inflight: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for InflightPermit {
    fn drop(&mut self) {
        self.inflight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl fmt::Debug for ReceiverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverState")
            .field("limits", &self.limits)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Which signal an export request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

/// A decoder's signature, as every decoder in this crate has it.
pub type DecodeFn = fn(&[u8], &Limits) -> Result<Decoded, DecodeError>;

/// How long a sender is told to wait when the sink is not ready (WAL replay
/// or shutdown); the sink gives no hint of its own for that case.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why a request was not accepted. The one place where failures become
/// a [`RejectReason`], and from it an HTTP status and a gRPC code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The body could not be decoded, was too large, or was compressed
    /// with an encoding the receiver does not speak.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A content type the receiver does not speak; the message lists the
    /// supported ones.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Every record of the request was invalid, so nothing was accepted:
    /// a permanent failure (HTTP 400), not a partial success.
    #[error("every record of the request was rejected: {0}")]
    AllRejected(String),
    /// The client's body stream failed before its end.
    #[error("failed to read the request body: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The receiver itself failed (a decoding task panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReceiveError {
    pub fn reason(&self) -> RejectReason {
        match self {
            ReceiveError::Decode(DecodeError::TooLarge { .. }) => RejectReason::TooLarge,
            ReceiveError::Decode(DecodeError::UnsupportedEncoding(_)) => {
                RejectReason::UnsupportedMediaType
            }
            ReceiveError::Decode(_) | ReceiveError::BodyRead(_) => RejectReason::Malformed,
            ReceiveError::UnsupportedMediaType(_) => RejectReason::UnsupportedMediaType,
            ReceiveError::AllRejected(_) => RejectReason::InvalidRecord,
            ReceiveError::Sink(SinkError::Overloaded { .. }) => RejectReason::Overloaded,
            ReceiveError::Sink(SinkError::Unavailable(_)) => RejectReason::Unavailable,
            ReceiveError::Sink(_) | ReceiveError::Internal(_) => RejectReason::Internal,
        }
    }

    /// How long the sender should wait before retrying; `None` when it
    /// must not retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReceiveError::Sink(SinkError::Overloaded { retry_after }) => Some(*retry_after),
            ReceiveError::Sink(SinkError::Unavailable(_)) => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> ::http::StatusCode {
        use ::http::StatusCode;
        match self.reason() {
            RejectReason::Malformed | RejectReason::InvalidRecord => StatusCode::BAD_REQUEST,
            RejectReason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectReason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RejectReason::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            RejectReason::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC code for this error. A body over the limit is
    /// `RESOURCE_EXHAUSTED` without `RetryInfo`, which OTLP clients treat as
    /// permanent (what gRPC servers answer for an oversized message);
    /// overload is the same code with `RetryInfo`, which they retry.
    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self.reason() {
            RejectReason::Malformed | RejectReason::InvalidRecord => Code::InvalidArgument,
            RejectReason::TooLarge | RejectReason::Overloaded => Code::ResourceExhausted,
            RejectReason::UnsupportedMediaType => Code::Unimplemented,
            RejectReason::Unavailable => Code::Unavailable,
            RejectReason::Internal => Code::Internal,
        }
    }

    /// The message for the sender. A failure of the receiver itself is
    /// logged here, once, and the sender gets a generic text.
    pub fn client_message(&self) -> String {
        match self {
            ReceiveError::Internal(detail) => {
                tracing::error!(error = %detail, "receiver failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        }
    }
}

/// `Retry-After` in whole seconds: rounded up, and at least 1, because
/// `Retry-After: 0` would invite the sender to hammer an overloaded server.
pub fn retry_after_secs(delay: Duration) -> u64 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.max(1)
}

/// What a successful export tells the sender: records rejected on their
/// own (an OTLP partial success) and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub rejected_spans: u64,
    pub rejected_logs: u64,
    /// [`Decoded::error_message`]: rejections and corrections, or empty.
    pub error_message: String,
}

impl Accepted {
    pub(crate) fn rejected(&self, signal: Signal) -> u64 {
        match signal {
            Signal::Traces => self.rejected_spans,
            Signal::Logs => self.rejected_logs,
        }
    }

    /// Whether OTLP's `partial_success` must be set: something was
    /// rejected, or there is a warning to pass on.
    pub(crate) fn is_partial(&self, signal: Signal) -> bool {
        self.rejected(signal) > 0 || !self.error_message.is_empty()
    }
}

/// Bodies up to this size (after decompression, estimated) are decoded on
/// the async worker; larger ones on the blocking pool, because decoding
/// runs at a few hundred MB/s and a worker should not be held for more than
/// a fraction of a millisecond.
const INLINE_DECODE_MAX_BYTES: usize = 64 * 1024;

/// How much a compressed body is assumed to grow when choosing where to decode it.
const COMPRESSED_GROWTH_ESTIMATE: usize = 8;

/// Decompresses (as `content_encoding` says) and decodes `body` with `decode`.
pub(crate) async fn decode_body(
    body: Bytes,
    content_encoding: Option<&str>,
    limits: &Limits,
    decode: DecodeFn,
) -> Result<Decoded, ReceiveError> {
    let compressed = content_encoding.map(str::trim).is_some_and(|e| {
        !e.is_empty() && !e.eq_ignore_ascii_case("identity") && !e.eq_ignore_ascii_case("none")
    });
    let expected = if compressed {
        body.len().saturating_mul(COMPRESSED_GROWTH_ESTIMATE)
    } else {
        body.len()
    };
    if expected <= INLINE_DECODE_MAX_BYTES {
        let body = decompress(body, content_encoding, limits)?;
        return Ok(decode(&body, limits)?);
    }
    let content_encoding = content_encoding.map(str::to_owned);
    let limits = limits.clone();
    let task = tokio::task::spawn_blocking(move || {
        let body = decompress(body, content_encoding.as_deref(), &limits)?;
        decode(&body, &limits)
    });
    match task.await {
        Ok(decoded) => Ok(decoded?),
        Err(join_error) => Err(ReceiveError::Internal(format!(
            "decoding task failed: {join_error}"
        ))),
    }
}

/// Hands the valid records of `decoded` to the sink and counts the outcome.
///
/// An empty request is a success without touching the sink (OTLP: "the
/// server SHOULD respond with success"). A request whose records were all
/// invalid is [`ReceiveError::AllRejected`]: nothing of it can ever be
/// accepted, so it is bad data, not a partial success.
pub(crate) async fn export(
    state: &ReceiverState,
    decoded: Decoded,
) -> Result<Accepted, ReceiveError> {
    let stats = &state.stats;
    stats.record_rejected(
        RejectReason::InvalidRecord,
        decoded.rejected_spans,
        decoded.rejected_logs,
    );
    let accepted = Accepted {
        rejected_spans: decoded.rejected_spans,
        rejected_logs: decoded.rejected_logs,
        error_message: decoded.error_message(),
    };
    if accepted.rejected_spans > 0 || accepted.rejected_logs > 0 {
        tracing::debug!(
            rejected_spans = accepted.rejected_spans,
            rejected_logs = accepted.rejected_logs,
            message = %accepted.error_message,
            "records rejected"
        );
    }
    let spans = count(decoded.batch.span_count());
    let logs = count(decoded.batch.log_count());
    if spans == 0 && logs == 0 {
        if accepted.rejected_spans > 0 || accepted.rejected_logs > 0 {
            return Err(ReceiveError::AllRejected(accepted.error_message));
        }
        return Ok(accepted);
    }
    match state.sink.submit(decoded.batch).await {
        Ok(()) => {
            stats.record_accepted(spans, logs);
            Ok(accepted)
        }
        Err(error) => {
            let error = ReceiveError::Sink(error);
            stats.record_rejected(error.reason(), spans, logs);
            Err(error)
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Saturating conversion for OTLP's `int64` rejected counts.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let cases = [
            (0, 1),
            (1, 1),
            (999, 1),
            (1000, 1),
            (1001, 2),
            (2500, 3),
            (30_000, 30),
        ];
        for (millis, secs) in cases {
            assert_eq!(
                retry_after_secs(Duration::from_millis(millis)),
                secs,
                "{millis} ms"
            );
        }
    }

    #[test]
    fn each_error_maps_to_one_reason_status_and_code() {
        use ::http::StatusCode;
        use tonic::Code;
        let cases: Vec<(ReceiveError, RejectReason, StatusCode, Code, bool)> = vec![
            (
                DecodeError::malformed("protobuf", "bad tag").into(),
                RejectReason::Malformed,
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                false,
            ),
            (
                DecodeError::TooLarge {
                    what: "request body",
                    limit: 1,
                }
                .into(),
                RejectReason::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::ResourceExhausted,
                false,
            ),
            (
                DecodeError::UnsupportedEncoding("br".into()).into(),
                RejectReason::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::Unimplemented,
                false,
            ),
            (
                ReceiveError::AllRejected("bad ids".into()),
                RejectReason::InvalidRecord,
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                false,
            ),
            (
                SinkError::Overloaded {
                    retry_after: Duration::from_millis(1500),
                }
                .into(),
                RejectReason::Overloaded,
                StatusCode::TOO_MANY_REQUESTS,
                Code::ResourceExhausted,
                true,
            ),
            (
                SinkError::Unavailable("replaying".into()).into(),
                RejectReason::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                true,
            ),
            (
                SinkError::Internal("disk".into()).into(),
                RejectReason::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                false,
            ),
        ];
        for (error, reason, status, code, retry) in cases {
            assert_eq!(error.reason(), reason, "{error}");
            assert_eq!(error.http_status(), status, "{error}");
            assert_eq!(error.grpc_code(), code, "{error}");
            assert_eq!(error.retry_after().is_some(), retry, "{error}");
        }
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let error = ReceiveError::Internal("task panicked at src/otlp/proto.rs:12".into());
        assert_eq!(error.client_message(), "internal error");
        let error = ReceiveError::from(DecodeError::malformed(
            "json",
            "expected `[` at line 1 column 1",
        ));
        assert!(
            error.client_message().contains("line 1 column 1"),
            "{}",
            error.client_message()
        );
    }

    #[test]
    fn inflight_budget_refuses_beyond_the_limit_and_returns_on_drop() {
        struct NoSink;
        impl BatchSink for NoSink {
            fn submit(
                &self,
                _batch: tracewarden_model::Batch,
            ) -> futures::future::BoxFuture<'static, Result<(), SinkError>> {
                Box::pin(async { Ok(()) })
            }
        }
        let limits = Limits {
            max_inflight_bytes: 100,
            ..Limits::default()
        };
        let state = ReceiverState::new(Arc::new(NoSink), limits, Arc::new(IngestStats::default()));
        // A lone request is admitted even when larger than the budget.
        let big = state.admit(500).unwrap();
        let refused = state.admit(1).unwrap_err();
        assert_eq!(refused.http_status(), ::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after(), Some(INFLIGHT_RETRY_AFTER));
        drop(big);
        assert_eq!(state.inflight_bytes(), 0);
        let a = state.admit(60).unwrap();
        let b = state.admit(40).unwrap();
        assert!(state.admit(1).is_err(), "60 + 40 fill the budget of 100");
        drop(a);
        let c = state.admit(50).unwrap();
        assert_eq!(state.inflight_bytes(), 90);
        drop((b, c));
        assert_eq!(state.inflight_bytes(), 0);
    }
}
