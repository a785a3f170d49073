//! Where receivers hand decoded batches: the pipeline behind them.

use std::time::Duration;

use futures::future::BoxFuture;
use tracewarden_model::Batch;

/// Why a sink did not take a batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Too much is in flight: the sender should retry after the hint
    /// (HTTP 429 with `Retry-After`, gRPC `RESOURCE_EXHAUSTED` with `RetryInfo`).
    #[error("server is overloaded, retry after {retry_after:?}")]
    Overloaded { retry_after: Duration },
    /// Not ready (WAL replay still running, or shutting down): HTTP 503, gRPC `UNAVAILABLE`.
    #[error("server is not ready: {0}")]
    Unavailable(String),
    /// A failure of the server itself (the WAL could not be written): HTTP 500, gRPC `INTERNAL`.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Takes decoded batches and resolves once each is durable.
///
/// Implementations normalise, redact and write the batch to the WAL; the
/// future resolves `Ok` only after the WAL is fsynced, so a receiver that
/// answers success after `submit` never acknowledges what a crash could lose.
pub trait BatchSink: Send + Sync + 'static {
    fn submit(&self, batch: Batch) -> BoxFuture<'static, Result<(), SinkError>>;
}
