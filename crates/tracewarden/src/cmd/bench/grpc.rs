//! The OTLP/gRPC client: `TraceService/Export` over one HTTP/2 connection
//! (a tonic [`Channel`]), sending bodies that are already gRPC messages.
//!
//! tonic's generated client would encode every request, and its codec would
//! gzip every request again; on a machine the server shares, that client
//! work would be measured as server slowness. So the workload carries the
//! length-prefixed message (compressed once, flag set), and this module only
//! adds the headers and reads the status: the wire is exactly what
//! `TraceServiceClient::export` sends.

use std::time::Duration;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{Buf, Bytes};
use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue, TE};
use http::uri::PathAndQuery;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use prost::Message;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;
use tracewarden_ingest::receiver::rpc;

use super::args::Target;
use super::driver::{Outcome, Signal};

/// Enough for any response this client expects; a larger one is an error.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// One connection to an OTLP/gRPC receiver.
pub struct GrpcExporter {
    channel: Channel,
    gzip: bool,
    /// `authorization: Bearer <key>` metadata from `--api-key`.
    authorization: Option<HeaderValue>,
    signal: Signal,
}

impl GrpcExporter {
    pub async fn connect(
        target: &Target,
        gzip: bool,
        signal: Signal,
    ) -> anyhow::Result<GrpcExporter> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(target.authority.clone())
            .path_and_query("/")
            .build()?;
        // One `connect` is one HTTP/2 connection; the worker keeps one
        // request in flight on it, as an OTLP exporter does.
        let channel = Endpoint::from(uri).tcp_nodelay(true).connect().await?;
        Ok(GrpcExporter {
            channel,
            gzip,
            authorization: crate::cmd::client::authorization()?,
            signal,
        })
    }

    /// Sends one length-prefixed `ExportTraceServiceRequest` (or
    /// `ExportLogsServiceRequest`, for logs).
    pub async fn export(&mut self, message: Bytes) -> Outcome {
        let mut request = Request::new(tonic::body::Body::new(Full::new(message)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from(PathAndQuery::from_static(self.signal.grpc_path()));
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        if self.gzip {
            headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
        }
        if let Some(value) = &self.authorization {
            headers.insert(http::header::AUTHORIZATION, value.clone());
        }
        let response = match self.channel.clone().oneshot(request).await {
            Ok(response) => response,
            Err(error) => return Outcome::failed(format!("transport: {error}")),
        };
        if !response.status().is_success() {
            return Outcome::failed(format!("HTTP status {} on a gRPC call", response.status()));
        }
        // A "trailers-only" answer (every error) carries the status in the headers.
        let (parts, body) = response.into_parts();
        if let Some(status) = CallStatus::from_headers(&parts.headers) {
            return status_outcome(self.signal, &status, &Bytes::new());
        }
        let collected = match body.collect().await {
            Ok(collected) => collected,
            Err(error) => return Outcome::failed(format!("response body: {error}")),
        };
        let status = collected.trailers().and_then(CallStatus::from_headers);
        let message = collected.to_bytes();
        match status {
            Some(status) => status_outcome(self.signal, &status, &message),
            None => Outcome::failed("response without grpc-status".to_string()),
        }
    }
}

/// The status of a call, from its trailers (or trailers-only headers).
/// Parsed here rather than with `tonic::Status::from_header_map`, which
/// panics on a malformed `grpc-status-details-bin`.
#[derive(Debug)]
struct CallStatus {
    code: Code,
    message: String,
    /// A serialised `google.rpc.Status`; empty when absent or not base64.
    details: Vec<u8>,
}

impl CallStatus {
    fn from_headers(headers: &HeaderMap) -> Option<CallStatus> {
        let code = Code::from_bytes(headers.get("grpc-status")?.as_bytes());
        // Percent-encoded on the wire; shown as it is, for a diagnostic.
        let message = headers
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        // gRPC allows the base64 with or without padding.
        let base64 = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let details = headers
            .get("grpc-status-details-bin")
            .and_then(|v| base64.decode(v.as_bytes()).ok())
            .unwrap_or_default();
        Some(CallStatus {
            code,
            message: message.unwrap_or_default(),
            details,
        })
    }
}

fn status_outcome(signal: Signal, status: &CallStatus, message: &Bytes) -> Outcome {
    match status.code {
        Code::Ok => match unframe(message).and_then(|m| signal.rejected(m)) {
            Ok(rejected_spans) => Outcome::Accepted { rejected_spans },
            Err(reason) => Outcome::failed(reason),
        },
        // Overload is RESOURCE_EXHAUSTED with a RetryInfo; without one it
        // means "over a limit, do not retry" (see the receiver's table).
        Code::ResourceExhausted => match retry_delay(status) {
            Some(retry_after) => Outcome::Throttled {
                retry_after: Some(retry_after),
            },
            None => Outcome::failed(format!(
                "RESOURCE_EXHAUSTED without RetryInfo: {}",
                status.message
            )),
        },
        code => Outcome::failed(format!("gRPC {code:?}: {}", status.message)),
    }
}

/// The response message without its gRPC frame; an empty message is an empty response.
fn unframe(message: &Bytes) -> Result<Bytes, String> {
    if message.is_empty() {
        return Ok(Bytes::new());
    }
    let mut framed = message.clone();
    if framed.len() < 5 {
        return Err(format!("truncated gRPC message of {} bytes", framed.len()));
    }
    let compressed = framed.get_u8();
    let len = framed.get_u32() as usize;
    if compressed != 0 {
        // This client advertises no grpc-accept-encoding, so the server must not compress.
        return Err("compressed gRPC response that was not asked for".to_string());
    }
    if len > MAX_RESPONSE_BYTES || len > framed.len() {
        return Err(format!(
            "gRPC message length {len} with {} bytes left",
            framed.len()
        ));
    }
    Ok(framed.slice(..len))
}

fn retry_delay(status: &CallStatus) -> Option<Duration> {
    rpc::Status::decode(status.details.as_slice())
        .ok()?
        .retry_delay()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };

    fn status_outcome(status: &CallStatus, message: &Bytes) -> Outcome {
        super::status_outcome(Signal::Traces, status, message)
    }

    fn status(code: Code, details: Vec<u8>) -> CallStatus {
        CallStatus {
            code,
            message: String::new(),
            details,
        }
    }

    fn framed(message: &impl Message) -> Bytes {
        let encoded = message.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        framed.extend_from_slice(&encoded);
        Bytes::from(framed)
    }

    #[test]
    fn ok_counts_the_spans_the_server_rejected() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 7,
                error_message: "bad ids".to_string(),
            }),
        };
        let outcome = status_outcome(&status(Code::Ok, Vec::new()), &framed(&response));
        assert_eq!(outcome, Outcome::Accepted { rejected_spans: 7 });
        assert_eq!(
            status_outcome(&status(Code::Ok, Vec::new()), &Bytes::new()),
            Outcome::Accepted { rejected_spans: 0 }
        );
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_throttling() {
        let details = rpc::Status::new(Code::ResourceExhausted, "busy")
            .with_retry_delay(Duration::from_millis(250));
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        // Unpadded, as gRPC implementations may send it.
        let encoded =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(details.encode_to_vec());
        headers.insert(
            "grpc-status-details-bin",
            HeaderValue::try_from(encoded).unwrap(),
        );
        let parsed = CallStatus::from_headers(&headers).unwrap();
        assert_eq!(
            status_outcome(&parsed, &Bytes::new()),
            Outcome::Throttled {
                retry_after: Some(Duration::from_millis(250))
            }
        );
    }

    #[test]
    fn malformed_status_details_do_not_panic() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        headers.insert(
            "grpc-status-details-bin",
            HeaderValue::from_static("%%% not base64"),
        );
        let parsed = CallStatus::from_headers(&headers).unwrap();
        assert!(matches!(
            status_outcome(&parsed, &Bytes::new()),
            Outcome::Failed(_)
        ));
        assert!(CallStatus::from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn other_statuses_and_bad_messages_are_failures() {
        let too_large = status(Code::ResourceExhausted, Vec::new());
        assert!(matches!(
            status_outcome(&too_large, &Bytes::new()),
            Outcome::Failed(_)
        ));
        let unavailable = status(Code::Unavailable, Vec::new());
        assert!(matches!(
            status_outcome(&unavailable, &Bytes::new()),
            Outcome::Failed(_)
        ));
        let truncated = Bytes::from_static(&[0, 0, 0, 0, 9, 1]);
        assert!(matches!(
            status_outcome(&status(Code::Ok, Vec::new()), &truncated),
            Outcome::Failed(_)
        ));
        let compressed = Bytes::from_static(&[1, 0, 0, 0, 0]);
        assert!(matches!(
            status_outcome(&status(Code::Ok, Vec::new()), &compressed),
            Outcome::Failed(_)
        ));
    }
}
