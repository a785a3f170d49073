//! What the receiver tests share: a sink that records batches (or refuses
//! them as told), and OTLP and Zipkin request bodies built with
//! opentelemetry-proto's own types, so the receivers are tested against
//! what a real SDK sends.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tracewarden_ingest::receiver::ReceiverState;
use tracewarden_ingest::{BatchSink, IngestStats, Limits, SinkError};
use tracewarden_model::Batch;

/// How the recording sink answers.
#[derive(Clone, Debug)]
pub enum Answer {
    Accept,
    Overloaded(Duration),
    Unavailable,
    Internal,
}

/// A sink that keeps what it accepted, or refuses as its [`Answer`] says.
#[derive(Debug)]
pub struct RecordingSink {
    answer: Mutex<Answer>,
    batches: Mutex<Vec<Batch>>,
    submits: Mutex<usize>,
}

impl RecordingSink {
    pub fn new() -> Arc<RecordingSink> {
        RecordingSink::answering(Answer::Accept)
    }

    pub fn answering(answer: Answer) -> Arc<RecordingSink> {
        Arc::new(RecordingSink {
            answer: Mutex::new(answer),
            batches: Mutex::default(),
            submits: Mutex::default(),
        })
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }

    /// How many times `submit` was called, accepted or not.
    pub fn submits(&self) -> usize {
        *self.submits.lock().unwrap()
    }

    pub fn span_names(&self) -> Vec<String> {
        let batches = self.batches.lock().unwrap();
        batches
            .iter()
            .flat_map(|b| b.spans().map(|(_, _, s)| s.name.to_string()))
            .collect()
    }

    pub fn log_bodies(&self) -> Vec<String> {
        let batches = self.batches.lock().unwrap();
        batches
            .iter()
            .flat_map(|b| b.logs().map(|(_, _, l)| l.body.to_text()))
            .collect()
    }
}

impl BatchSink for RecordingSink {
    fn submit(&self, batch: Batch) -> BoxFuture<'static, Result<(), SinkError>> {
        *self.submits.lock().unwrap() += 1;
        let answer = self.answer.lock().unwrap().clone();
        let result = match answer {
            Answer::Accept => {
                self.batches.lock().unwrap().push(batch);
                Ok(())
            }
            Answer::Overloaded(retry_after) => Err(SinkError::Overloaded { retry_after }),
            Answer::Unavailable => Err(SinkError::Unavailable(
                "the write-ahead log is being replayed".into(),
            )),
            Answer::Internal => Err(SinkError::Internal("the batch could not be written".into())),
        };
        futures::future::ready(result).boxed()
    }
}

pub fn state(sink: &Arc<RecordingSink>, limits: Limits) -> (ReceiverState, Arc<IngestStats>) {
    let stats = Arc::new(IngestStats::new());
    let sink: Arc<dyn BatchSink> = sink.clone();
    (ReceiverState::new(sink, limits, stats.clone()), stats)
}

pub const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![string_attribute("service.name", service)],
        ..Default::default()
    })
}

/// A server span named `name`, with span id `[index + 1; 8]`.
pub fn span(name: &str, index: u8) -> Span {
    Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![index + 1; 8],
        name: name.to_string(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: vec![
            string_attribute("http.request.method", "POST"),
            string_attribute("url.path", "/login"),
        ],
        ..Default::default()
    }
}

pub fn trace_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("auth"),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `names.len()` valid spans.
pub fn spans(names: &[&str]) -> Vec<Span> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| span(name, i as u8))
        .collect()
}

pub fn log_request(bodies: &[&str]) -> ExportLogsServiceRequest {
    let log_records = bodies
        .iter()
        .map(|body| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body.to_string())),
            }),
            trace_id: TRACE_ID.to_vec(),
            span_id: vec![1; 8],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("auth"),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An OTLP/JSON trace request, ids in hex as OTLP/JSON wants; a `None`
/// trace id gives a span whose trace id is one byte short.
pub fn json_trace_request(spans: &[(&str, bool)]) -> String {
    let spans: Vec<serde_json::Value> = spans
        .iter()
        .enumerate()
        .map(|(i, (name, valid))| {
            let trace_id = if *valid {
                "5B8EFFF798038103D269B633813FC60C"
            } else {
                "5B8EFFF798038103D269B633813FC6"
            };
            serde_json::json!({
                "traceId": trace_id,
                "spanId": format!("{:016x}", i + 1),
                "name": name,
                "kind": 2,
                "startTimeUnixNano": "1700000000000000000",
                "endTimeUnixNano": "1700000000250000000",
                "attributes": [{ "key": "url.path", "value": { "stringValue": "/login" } }]
            })
        })
        .collect();
    serde_json::json!({
        "resourceSpans": [{
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "auth" } }] },
            "scopeSpans": [{ "scope": { "name": "test" }, "spans": spans }]
        }]
    })
    .to_string()
}

pub fn json_log_request(bodies: &[&str]) -> String {
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .map(|body| {
            serde_json::json!({
                "timeUnixNano": "1700000000000000000",
                "severityNumber": 9,
                "severityText": "INFO",
                "body": { "stringValue": body }
            })
        })
        .collect();
    serde_json::json!({
        "resourceLogs": [{
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "auth" } }] },
            "scopeLogs": [{ "scope": { "name": "test" }, "logRecords": records }]
        }]
    })
    .to_string()
}

/// A Zipkin v2 JSON list; spans with `valid == false` have a trace id
/// that is not hex.
pub fn zipkin_spans(spans: &[(&str, bool)]) -> String {
    let spans: Vec<serde_json::Value> = spans
        .iter()
        .enumerate()
        .map(|(i, (name, valid))| {
            let trace_id = if *valid {
                "5af7183fb1d4cf5f"
            } else {
                "not-a-trace-id!!"
            };
            serde_json::json!({
                "traceId": trace_id,
                "id": format!("{:016x}", i + 1),
                "name": name,
                "kind": "SERVER",
                "timestamp": 1_556_604_172_355_737_u64,
                "duration": 1431,
                "localEndpoint": { "serviceName": "backend", "ipv4": "192.168.99.1", "port": 9000 },
                "remoteEndpoint": { "ipv4": "172.19.0.2", "port": 58648 },
                "tags": { "http.method": "GET", "http.path": "/api" }
            })
        })
        .collect();
    serde_json::Value::Array(spans).to_string()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A gzip stream that inflates to `mib` MiB of zeroes, about 1 KiB per MiB,
/// built without ever holding the zeroes: one MiB deflated with a full
/// flush (byte-aligned, self-contained) and repeated, CRCs combined.
pub fn gzip_bomb(mib: u32) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut block = Vec::with_capacity(64 << 10);
    let mut compress = Compress::new(Compression::best(), false);
    compress
        .compress_vec(&zeros, &mut block, FlushCompress::Full)
        .unwrap();
    assert_eq!(compress.total_in(), zeros.len() as u64);
    let mut last = Vec::with_capacity(16);
    Compress::new(Compression::best(), false)
        .compress_vec(&[], &mut last, FlushCompress::Finish)
        .unwrap();
    let mut one = Crc::new();
    one.update(&zeros);
    let mut crc = Crc::new();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..mib {
        out.extend_from_slice(&block);
        crc.combine(&one);
    }
    out.extend_from_slice(&last);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    out
}

/// `google.rpc.Status` and `RetryInfo`, declared here from the .proto field
/// numbers rather than taken from the crate, so the tests check the wire.
pub mod google_rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<Duration>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}
