//! OTLP/HTTP and Zipkin HTTP receivers.
//!
//! [`otlp_router`] serves `POST /v1/traces` and `POST /v1/logs` as the OTLP
//! specification defines them: the `Content-Type` picks the decoder
//! (`application/x-protobuf` or `application/json`, parameters ignored), the
//! answer is an `Export*ServiceResponse` in the same content type, with a
//! partial success when some records were rejected, and every error is a
//! `google.rpc.Status` in that content type too.
//!
//! [`zipkin_router`] serves `POST /api/v2/spans` as Zipkin's API does:
//! `202 Accepted` with an empty body, errors as plain text.
//!
//! Bodies are read through [`Limited`], so a client can never make the
//! receiver buffer more than [`Limits::max_body_bytes`](crate::Limits).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;

use super::{
    Accepted, DecodeFn, ReceiveError, ReceiverState, Signal, decode_body, export, retry_after_secs,
    rpc, to_i64,
};
use crate::stats::Protocol;
use crate::{DecodeError, otlp, zipkin};

/// The state of the HTTP routes: the receivers' shared [`ReceiverState`].
pub type HttpReceiverState = ReceiverState;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The OTLP/HTTP routes: `POST /v1/traces` and `POST /v1/logs`.
pub fn otlp_router(state: HttpReceiverState) -> Router {
    Router::new()
        .route("/v1/traces", post(otlp_traces))
        .route("/v1/logs", post(otlp_logs))
        .with_state(state)
}

/// The Zipkin route: `POST /api/v2/spans` (Zipkin v2 JSON).
pub fn zipkin_router(state: HttpReceiverState) -> Router {
    Router::new()
        .route("/api/v2/spans", post(zipkin_spans))
        .with_state(state)
}

async fn otlp_traces(State(state): State<ReceiverState>, request: Request) -> Response {
    otlp_export(&state, Signal::Traces, request).await
}

async fn otlp_logs(State(state): State<ReceiverState>, request: Request) -> Response {
    otlp_export(&state, Signal::Logs, request).await
}

/// The two OTLP/HTTP body encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Result<Encoding, ReceiveError> {
        match media_type(headers) {
            Some(t) if t.eq_ignore_ascii_case(PROTOBUF) => Ok(Encoding::Protobuf),
            Some(t) if t.eq_ignore_ascii_case(JSON) => Ok(Encoding::Json),
            other => Err(unsupported_media_type(
                other,
                "application/x-protobuf, application/json",
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }

    fn decoder(self, signal: Signal) -> DecodeFn {
        match (self, signal) {
            (Encoding::Protobuf, Signal::Traces) => otlp::proto::decode_traces,
            (Encoding::Protobuf, Signal::Logs) => otlp::proto::decode_logs,
            (Encoding::Json, Signal::Traces) => otlp::json::decode_traces,
            (Encoding::Json, Signal::Logs) => otlp::json::decode_logs,
        }
    }
}

async fn otlp_export(state: &ReceiverState, signal: Signal, request: Request) -> Response {
    state.stats.record_request(Protocol::OtlpHttp);
    let (parts, body) = request.into_parts();
    let encoding = match Encoding::from_headers(&parts.headers) {
        Ok(encoding) => encoding,
        // No encoding to answer in: the spec's Status body needs one, so
        // the list of supported types goes back as text.
        Err(error) => return text_error(state, &error),
    };
    match receive(state, &parts.headers, body, encoding.decoder(signal)).await {
        Ok(accepted) => otlp_success(encoding, signal, &accepted),
        Err(error) => {
            state.stats.record_failed_request(error.reason());
            otlp_error(encoding, &error)
        }
    }
}

/// Reads, decompresses and decodes the body, and hands the records to the sink.
async fn receive(
    state: &ReceiverState,
    headers: &HeaderMap,
    body: Body,
    decode: DecodeFn,
) -> Result<Accepted, ReceiveError> {
    let body = read_body(headers, body, state.limits.max_body_bytes).await?;
    let content_encoding = content_encoding(headers)?;
    let _permit = state.admit(body.len())?;
    let decoded = decode_body(body, content_encoding, &state.limits, decode).await?;
    export(state, decoded).await
}

/// `200 OK` with the `Export*ServiceResponse`; `partial_success` only when
/// something was rejected or there is a warning (the spec asks to leave it
/// unset on full success).
fn otlp_success(encoding: Encoding, signal: Signal, accepted: &Accepted) -> Response {
    let partial = accepted.is_partial(signal);
    let rejected = to_i64(accepted.rejected(signal));
    let error_message = accepted.error_message.clone();
    let body = match encoding {
        Encoding::Protobuf => match signal {
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message,
                }),
            }
            .encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message,
                }),
            }
            .encode_to_vec(),
        },
        Encoding::Json => {
            let value = if partial {
                let key = match signal {
                    Signal::Traces => "rejectedSpans",
                    Signal::Logs => "rejectedLogRecords",
                };
                // proto3 JSON writes int64 as a string.
                serde_json::json!({ "partialSuccess": { key: rejected.to_string(), "errorMessage": error_message } })
            } else {
                serde_json::json!({})
            };
            value.to_string().into_bytes()
        }
    };
    (
        StatusCode::OK,
        [(CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// An error as OTLP/HTTP wants it: the status code, and a `google.rpc.Status`
/// in the request's encoding.
fn otlp_error(encoding: Encoding, error: &ReceiveError) -> Response {
    let status = rpc::Status::new(error.grpc_code(), error.client_message());
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": status.code, "message": status.message })
            .to_string()
            .into_bytes(),
    };
    error_response(error, encoding.content_type(), body)
}

/// An error as plain text: Zipkin's way, and OTLP's when the content type
/// is unknown.
fn text_error(state: &ReceiverState, error: &ReceiveError) -> Response {
    state.stats.record_failed_request(error.reason());
    error_response(error, TEXT, error.client_message().into_bytes())
}

fn error_response(error: &ReceiveError, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = (error.http_status(), [(CONTENT_TYPE, content_type)], body).into_response();
    if let Some(delay) = error.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(delay)));
    }
    response
}

async fn zipkin_spans(State(state): State<ReceiverState>, request: Request) -> Response {
    state.stats.record_request(Protocol::Zipkin);
    let (parts, body) = request.into_parts();
    let media_type = media_type(&parts.headers);
    match media_type {
        None => {}
        Some(t) if t.eq_ignore_ascii_case(JSON) => {}
        Some(t) if t.eq_ignore_ascii_case(PROTOBUF) => {
            let error = ReceiveError::UnsupportedMediaType(
                "Zipkin proto3 (application/x-protobuf) is not supported: only Zipkin v2 JSON \
                 (application/json) is"
                    .to_string(),
            );
            return text_error(&state, &error);
        }
        other => return text_error(&state, &unsupported_media_type(other, "application/json")),
    }
    match receive(&state, &parts.headers, body, zipkin::decode_spans).await {
        // Zipkin has no partial success: rejected spans were counted and
        // logged by `export`, and the sender gets its usual 202.
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(error) => text_error(&state, &error),
    }
}

/// The media type of `Content-Type`, without parameters (`; charset=...`).
/// `Some("")` for a header that is not text.
fn media_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(CONTENT_TYPE)?;
    let text = value.to_str().unwrap_or("");
    Some(text.split(';').next().unwrap_or("").trim())
}

fn unsupported_media_type(media_type: Option<&str>, supported: &str) -> ReceiveError {
    ReceiveError::UnsupportedMediaType(match media_type {
        None => format!("missing content type; supported: {supported}"),
        // Keep what is echoed back short: the header came from the client.
        Some(t) => format!(
            "unsupported content type `{}`; supported: {supported}",
            t.chars().take(64).collect::<String>()
        ),
    })
}

fn content_encoding(headers: &HeaderMap) -> Result<Option<&str>, ReceiveError> {
    match headers.get(CONTENT_ENCODING) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| DecodeError::UnsupportedEncoding("(not ASCII)".to_string()).into()),
    }
}

/// Reads the whole body, refusing it (413) as soon as it is known to be over
/// `limit`: from `Content-Length` before reading anything, or while reading
/// a body that did not announce its length (chunked, or a lying header).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ReceiveError> {
    let too_large = || {
        ReceiveError::Decode(DecodeError::TooLarge {
            what: "request body",
            limit,
        })
    };
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err(ReceiveError::BodyRead(error.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[test]
    fn content_types_ignore_parameters_and_case() {
        let cases = [
            ("application/x-protobuf", Some(Encoding::Protobuf)),
            ("application/json", Some(Encoding::Json)),
            ("application/json; charset=utf-8", Some(Encoding::Json)),
            ("Application/JSON ;charset=UTF-8", Some(Encoding::Json)),
            (
                "application/x-protobuf; proto=opentelemetry",
                Some(Encoding::Protobuf),
            ),
            ("text/plain", None),
            ("application/protobuf+json", None),
            ("", None),
        ];
        for (content_type, expected) in cases {
            let got = Encoding::from_headers(&headers(content_type)).ok();
            assert_eq!(got, expected, "{content_type:?}");
        }
    }

    #[test]
    fn unsupported_type_message_lists_the_supported_ones() {
        let error = Encoding::from_headers(&headers("text/xml")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`text/xml`"), "{message}");
        assert!(
            message.contains("application/x-protobuf, application/json"),
            "{message}"
        );
        let error = Encoding::from_headers(&HeaderMap::new()).unwrap_err();
        assert!(
            error.to_string().starts_with("missing content type"),
            "{error}"
        );
    }
}
