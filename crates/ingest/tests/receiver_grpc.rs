//! The OTLP/gRPC services over a real loopback socket, called with
//! opentelemetry-proto's generated clients (and a raw client for bytes no
//! SDK would send).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod receiver_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BufMut;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use receiver_support::{
    Answer, RecordingSink, google_rpc, log_request, spans, state, trace_request,
};
use tonic::Code;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tracewarden_ingest::receiver::grpc::otlp_grpc_routes;
use tracewarden_ingest::{IngestStats, Limits};

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Serves the OTLP routes on 127.0.0.1 (a free port) and connects a channel.
async fn serve(sink: &Arc<RecordingSink>, limits: Limits) -> (Channel, Arc<IngestStats>) {
    let (state, stats) = state(sink, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let routes = otlp_grpc_routes(state);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, stats)
}

/// Sends `body` as the message bytes, as is, and reads the response with prost.
async fn export_raw(
    channel: Channel,
    path: &'static str,
    body: Vec<u8>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawClientCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// A client codec that sends raw bytes and decodes a trace export response.
struct RawClientCodec;

impl Codec for RawClientCodec {
    type Encode = Vec<u8>;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// The `RetryInfo` delay in a status's `grpc-status-details-bin`.
fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    let details = google_rpc::Status::decode(status.details()).unwrap();
    assert_eq!(details.code, status.code() as i32);
    let any = details
        .details
        .iter()
        .find(|a| a.type_url == "type.googleapis.com/google.rpc.RetryInfo")?;
    let delay = google_rpc::RetryInfo::decode(&any.value[..])
        .unwrap()
        .retry_delay
        .unwrap();
    Some(Duration::new(delay.seconds as u64, delay.nanos as u32))
}

#[tokio::test]
async fn trace_export_reaches_the_sink() {
    let sink = RecordingSink::new();
    let (channel, stats) = serve(&sink, Limits::default()).await;
    let mut client = TraceServiceClient::new(channel);
    let response = client
        .export(trace_request(spans(&["POST /login", "SELECT users"])))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(response.partial_success, None);
    assert_eq!(sink.span_names(), ["POST /login", "SELECT users"]);
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.requests.otlp_grpc, 1);
    assert_eq!(snapshot.spans_accepted, 2);
}

#[tokio::test]
async fn gzip_compressed_logs_are_accepted() {
    let sink = RecordingSink::new();
    let (channel, stats) = serve(&sink, Limits::default()).await;
    let mut client = LogsServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip);
    let response = client
        .export(log_request(&["login failed for admin", "login ok"]))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(response.partial_success, None);
    assert_eq!(sink.log_bodies(), ["login failed for admin", "login ok"]);
    assert_eq!(stats.snapshot().logs_accepted, 2);
}

#[tokio::test]
async fn bad_ids_give_a_partial_success() {
    let sink = RecordingSink::new();
    let (channel, _) = serve(&sink, Limits::default()).await;
    let mut request_spans = spans(&["kept", "bad"]);
    request_spans[1].span_id = vec![1, 2, 3];
    let response = TraceServiceClient::new(channel)
        .export(trace_request(request_spans))
        .await
        .unwrap()
        .into_inner();

    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("1 span(s) rejected"),
        "{}",
        partial.error_message
    );
    assert_eq!(sink.span_names(), ["kept"]);
}

#[tokio::test]
async fn garbage_is_invalid_argument() {
    let sink = RecordingSink::new();
    let (channel, stats) = serve(&sink, Limits::default()).await;
    // Field 1 says 100 bytes follow; there are 2.
    let status = export_raw(channel, TRACE_EXPORT, vec![0x0a, 100, 1, 2])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("malformed"),
        "{}",
        status.message()
    );
    assert_eq!(sink.submits(), 0);
    assert_eq!(stats.snapshot().failed_requests.malformed, 1);
}

#[tokio::test]
async fn a_well_formed_request_through_the_raw_client_is_accepted() {
    // The raw client is a fair test of the server only if it can succeed.
    let sink = RecordingSink::new();
    let (channel, _) = serve(&sink, Limits::default()).await;
    let body = trace_request(spans(&["raw"])).encode_to_vec();
    let response = export_raw(channel, TRACE_EXPORT, body).await.unwrap();
    assert_eq!(response.partial_success, None);
    assert_eq!(sink.span_names(), ["raw"]);
}

#[tokio::test]
async fn overload_is_resource_exhausted_with_retry_info() {
    let sink = RecordingSink::answering(Answer::Overloaded(Duration::from_millis(2500)));
    let (channel, stats) = serve(&sink, Limits::default()).await;
    let status = TraceServiceClient::new(channel)
        .export(trace_request(spans(&["a"])))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(retry_delay(&status), Some(Duration::from_secs(3)));
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.failed_requests.overloaded, 1);
    assert_eq!(snapshot.spans_rejected.overloaded, 1);
}

#[tokio::test]
async fn not_ready_is_unavailable_and_failure_is_internal() {
    let sink = RecordingSink::answering(Answer::Unavailable);
    let (channel, _) = serve(&sink, Limits::default()).await;
    let status = TraceServiceClient::new(channel)
        .export(trace_request(spans(&["a"])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(retry_delay(&status), Some(Duration::from_secs(5)));

    let sink = RecordingSink::answering(Answer::Internal);
    let (channel, _) = serve(&sink, Limits::default()).await;
    let status = LogsServiceClient::new(channel)
        .export(log_request(&["x"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.details().is_empty());
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted_without_retry_info() {
    let limits = Limits {
        max_decompressed_bytes: 4096,
        ..Limits::default()
    };
    let mut big = spans(&["big"]);
    big[0].attributes.push(KeyValue {
        key: "http.request.body".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("a".repeat(100_000))),
        }),
        ..Default::default()
    });
    let request = trace_request(big);

    // As sent: the frame header announces more than the limit.
    let sink = RecordingSink::new();
    let (channel, stats) = serve(&sink, limits.clone()).await;
    let status = TraceServiceClient::new(channel)
        .export(request.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.details().is_empty(), "no RetryInfo: not retryable");
    assert_eq!(stats.snapshot().failed_requests.too_large, 1);

    // Compressed: small on the wire, over the limit once inflated.
    let (channel, stats) = serve(&sink, limits).await;
    let mut client = TraceServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip);
    let status = client.export(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.details().is_empty());
    assert_eq!(stats.snapshot().failed_requests.too_large, 1);
    assert_eq!(sink.submits(), 0);
}

#[tokio::test]
async fn unknown_methods_are_unimplemented() {
    let sink = RecordingSink::new();
    let (channel, _) = serve(&sink, Limits::default()).await;
    let status = export_raw(
        channel.clone(),
        "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = export_raw(
        channel,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test]
async fn an_empty_export_succeeds_without_reaching_the_sink() {
    let sink = RecordingSink::new();
    let (channel, _) = serve(&sink, Limits::default()).await;
    let response = export_raw(channel, TRACE_EXPORT, Vec::new()).await.unwrap();
    assert_eq!(response.partial_success, None);
    assert_eq!(sink.submits(), 0);
}
