//! OTLP/gRPC receiver.
//!
//! `TraceService/Export` and `LogsService/Export`, served without decoding
//! the request into prost's OTLP structs: [`OtlpCodec`] hands the service
//! the message's raw bytes, which [`crate::otlp::proto`] decodes straight
//! into a batch. The services are written as tonic's generated server code
//! is (a tower `Service` matching the method path, then
//! [`tonic::server::Grpc::unary`]), with that codec in place of prost's.
//!
//! Run them with [`otlp_grpc_routes`]:
//!
//! ```no_run
//! # async fn run(state: tracewarden_ingest::receiver::ReceiverState) -> Result<(), tonic::transport::Error> {
//! use tracewarden_ingest::receiver::grpc::otlp_grpc_routes;
//! tonic::transport::Server::builder()
//!     .add_routes(otlp_grpc_routes(state))
//!     .serve("127.0.0.1:4317".parse().unwrap())
//!     .await
//! # }
//! ```
//!
//! tonic enforces [`Limits::max_decompressed_bytes`] on each message, both
//! as sent and after gzip decompression; an oversized message is refused
//! with `RESOURCE_EXHAUSTED` and no `RetryInfo`, which OTLP clients do not retry.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError};
use tonic::server::{NamedService, UnaryService};

use super::{
    ReceiveError, ReceiverState, Signal, decode_body, export, retry_after_secs, rpc, to_i64,
};
use crate::stats::{Protocol, RejectReason};
use crate::{DecodeError, Decoded, Limits, otlp};

/// The state of the gRPC services: the receivers' shared [`ReceiverState`].
pub type GrpcReceiverState = ReceiverState;

/// The routes for both services, ready for `tonic::transport::Server::add_routes`.
pub fn otlp_grpc_routes(state: ReceiverState) -> tonic::service::Routes {
    tonic::service::Routes::new(TraceService::new(state.clone()))
        .add_service(LogsService::new(state))
}

/// What differs between the OTLP export services.
pub trait OtlpSignal: Send + Sync + 'static {
    /// The fully qualified gRPC service name.
    const SERVICE_NAME: &'static str;
    /// The HTTP/2 path of the service's `Export` method.
    const EXPORT_PATH: &'static str;
    const SIGNAL: Signal;
    type Response: Message + Default + Send + 'static;
    fn decode(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError>;
    /// The response, with a partial success when `partial` is set.
    fn response(partial: bool, rejected: i64, error_message: String) -> Self::Response;
}

/// `opentelemetry.proto.collector.trace.v1.TraceService`.
#[derive(Debug)]
pub enum Traces {}

/// `opentelemetry.proto.collector.logs.v1.LogsService`.
#[derive(Debug)]
pub enum Logs {}

impl OtlpSignal for Traces {
    const SERVICE_NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const SIGNAL: Signal = Signal::Traces;
    type Response = ExportTraceServiceResponse;

    fn decode(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
        otlp::proto::decode_traces(body, limits)
    }

    fn response(partial: bool, rejected: i64, error_message: String) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: partial.then_some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message,
            }),
        }
    }
}

impl OtlpSignal for Logs {
    const SERVICE_NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const SIGNAL: Signal = Signal::Logs;
    type Response = ExportLogsServiceResponse;

    fn decode(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
        otlp::proto::decode_logs(body, limits)
    }

    fn response(partial: bool, rejected: i64, error_message: String) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: partial.then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }
    }
}

/// A codec that yields each request message as raw bytes (no copy: the frame
/// is split off tonic's buffer) and encodes responses of type `M` with prost.
#[derive(Debug)]
pub struct OtlpCodec<M>(PhantomData<fn() -> M>);

impl<M> Default for OtlpCodec<M> {
    fn default() -> Self {
        OtlpCodec(PhantomData)
    }
}

impl<M: Message + Send + 'static> Codec for OtlpCodec<M> {
    type Encode = M;
    type Decode = Bytes;
    type Encoder = ProstEncoder<M>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> ProstEncoder<M> {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Encodes a prost message into tonic's buffer.
#[derive(Debug)]
pub struct ProstEncoder<M>(PhantomData<fn(M)>);

impl<M: Message> Encoder for ProstEncoder<M> {
    type Item = M;
    type Error = tonic::Status;

    fn encode(&mut self, item: M, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.encode(dst).map_err(|error| {
            tonic::Status::internal(format!("failed to encode the response: {error}"))
        })
    }
}

/// Hands over the message bytes as they are.
#[derive(Debug)]
pub struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One OTLP export service (see [`TraceService`] and [`LogsService`]).
pub struct OtlpService<S> {
    state: ReceiverState,
    signal: PhantomData<fn() -> S>,
}

/// `TraceService`: `Export` of `ExportTraceServiceRequest`.
pub type TraceService = OtlpService<Traces>;
/// `LogsService`: `Export` of `ExportLogsServiceRequest`.
pub type LogsService = OtlpService<Logs>;

impl<S: OtlpSignal> OtlpService<S> {
    pub fn new(state: ReceiverState) -> Self {
        OtlpService {
            state,
            signal: PhantomData,
        }
    }
}

impl<S> Clone for OtlpService<S> {
    fn clone(&self) -> Self {
        OtlpService {
            state: self.state.clone(),
            signal: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for OtlpService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpService")
            .field("state", &self.state)
            .finish()
    }
}

impl<S: OtlpSignal> NamedService for OtlpService<S> {
    const NAME: &'static str = S::SERVICE_NAME;
}

impl<S, B> Service<http::Request<B>> for OtlpService<S>
where
    S: OtlpSignal,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != S::EXPORT_PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let state = self.state.clone();
        Box::pin(async move {
            state.stats.record_request(Protocol::OtlpGrpc);
            let reached = Arc::new(AtomicBool::new(false));
            let export = Export::<S> {
                state: state.clone(),
                reached: Arc::clone(&reached),
                signal: PhantomData,
            };
            let mut grpc = tonic::server::Grpc::new(OtlpCodec::<S::Response>::default())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(state.limits.max_decompressed_bytes);
            let mut response = grpc.unary(export, request).await;
            if !reached.load(Ordering::Acquire) {
                refused_before_export(&state, &mut response);
            }
            Ok(response)
        })
    }
}

/// Fixes up and counts a request tonic refused before the export ran:
/// a message over the size limit, a corrupt compressed message, an unknown
/// `grpc-encoding`. tonic answers an oversized frame with `OUT_OF_RANGE`,
/// which OTLP clients retry forever; OTLP says `RESOURCE_EXHAUSTED` (no
/// `RetryInfo`: not retryable). And a message that fails to decompress is
/// the client's fault, not `INTERNAL`.
fn refused_before_export(state: &ReceiverState, response: &mut http::Response<tonic::body::Body>) {
    let Some(code) = response
        .headers()
        .get(tonic::Status::GRPC_STATUS)
        .map(|v| Code::from_bytes(v.as_bytes()))
    else {
        return;
    };
    let (reason, code) = match code {
        Code::Ok => return,
        Code::OutOfRange | Code::ResourceExhausted => {
            (RejectReason::TooLarge, Code::ResourceExhausted)
        }
        Code::Unimplemented => (RejectReason::UnsupportedMediaType, Code::Unimplemented),
        Code::Internal => (RejectReason::Malformed, Code::InvalidArgument),
        other => (RejectReason::Malformed, other),
    };
    response
        .headers_mut()
        .insert(tonic::Status::GRPC_STATUS, (code as i32).into());
    state.stats.record_failed_request(reason);
}

/// The answer for a path no service here has.
fn unimplemented() -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(
        tonic::Status::GRPC_STATUS,
        (Code::Unimplemented as i32).into(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        tonic::metadata::GRPC_CONTENT_TYPE,
    );
    response
}

/// The `Export` method of one service.
struct Export<S> {
    state: ReceiverState,
    /// Set once tonic has decoded the frame and called the method.
    reached: Arc<AtomicBool>,
    signal: PhantomData<fn() -> S>,
}

impl<S: OtlpSignal> UnaryService<Bytes> for Export<S> {
    type Response = S::Response;
    type Future = BoxFuture<tonic::Response<S::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        self.reached.store(true, Ordering::Release);
        let state = self.state.clone();
        Box::pin(async move {
            let body = request.into_inner();
            let result = async {
                let _permit = state.admit(body.len())?;
                let decoded = decode_body(body, None, &state.limits, S::decode).await?;
                export(&state, decoded).await
            }
            .await;
            match result {
                Ok(accepted) => {
                    let partial = accepted.is_partial(S::SIGNAL);
                    let rejected = to_i64(accepted.rejected(S::SIGNAL));
                    Ok(tonic::Response::new(S::response(
                        partial,
                        rejected,
                        accepted.error_message,
                    )))
                }
                Err(error) => {
                    state.stats.record_failed_request(error.reason());
                    Err(status(&error))
                }
            }
        })
    }
}

/// The gRPC status for an error; a retryable one carries a
/// `google.rpc.RetryInfo` in `grpc-status-details-bin`, which is what
/// makes OTLP clients retry `RESOURCE_EXHAUSTED` (after that delay).
pub fn status(error: &ReceiveError) -> tonic::Status {
    let code = error.grpc_code();
    let message = error.client_message();
    match error.retry_after() {
        Some(delay) => {
            // Whole seconds, as over HTTP, so both protocols give the same hint.
            let delay = std::time::Duration::from_secs(retry_after_secs(delay));
            let details = rpc::Status::new(code, message.clone())
                .with_retry_delay(delay)
                .encode_to_vec();
            tonic::Status::with_details(code, message, Bytes::from(details))
        }
        None => tonic::Status::new(code, message),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::SinkError;

    #[test]
    fn overload_carries_retry_info() {
        let error = ReceiveError::Sink(SinkError::Overloaded {
            retry_after: Duration::from_millis(1200),
        });
        let status = status(&error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = rpc::Status::decode(status.details()).unwrap();
        assert_eq!(details.code, Code::ResourceExhausted as i32);
        assert_eq!(details.retry_delay(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn permanent_errors_carry_no_retry_info() {
        let error = ReceiveError::Decode(DecodeError::TooLarge {
            what: "message",
            limit: 10,
        });
        let status = status(&error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.details().is_empty());
    }
}
