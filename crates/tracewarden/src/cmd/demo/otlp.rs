//! The telemetry of one tick of the simulated system, as the services'
//! OpenTelemetry SDKs would export it: spans and log records grouped by
//! service (one resource each), encoded as OTLP export requests.

use std::collections::BTreeMap;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::cmd::bench::args::Protocol;

/// OTLP span flags: the SDK knows whether the parent is remote (0x100),
/// and it is (0x200).
pub const FLAGS_LOCAL_PARENT: u32 = 0x100;
pub const FLAGS_REMOTE_PARENT: u32 = 0x300;

/// What the services exported during one tick.
#[derive(Debug, Default)]
pub struct Telemetry {
    spans: BTreeMap<&'static str, Vec<Span>>,
    logs: BTreeMap<&'static str, Vec<LogRecord>>,
    /// Server spans at the entry service: requests from the outside.
    pub requests: u64,
}

impl Telemetry {
    pub fn span(&mut self, service: &'static str, span: Span) {
        self.spans.entry(service).or_default().push(span);
    }

    pub fn log(&mut self, service: &'static str, record: LogRecord) {
        self.logs.entry(service).or_default().push(record);
    }

    pub fn span_count(&self) -> u64 {
        self.spans.values().map(|v| v.len() as u64).sum()
    }

    pub fn log_count(&self) -> u64 {
        self.logs.values().map(|v| v.len() as u64).sum()
    }

    /// Every span, in service order (for tests).
    #[cfg(test)]
    pub fn spans(&self) -> impl Iterator<Item = (&'static str, &Span)> {
        self.spans
            .iter()
            .flat_map(|(service, spans)| spans.iter().map(move |s| (*service, s)))
    }

    /// Every log record, in service order (for tests).
    #[cfg(test)]
    pub fn logs(&self) -> impl Iterator<Item = (&'static str, &LogRecord)> {
        self.logs
            .iter()
            .flat_map(|(service, logs)| logs.iter().map(move |l| (*service, l)))
    }

    pub fn traces_request(&self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: self
                .spans
                .iter()
                .map(|(service, spans)| ResourceSpans {
                    resource: Some(resource(service)),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope()),
                        spans: spans.clone(),
                        schema_url: String::new(),
                    }],
                    schema_url: SCHEMA_URL.to_string(),
                })
                .collect(),
        }
    }

    pub fn logs_request(&self) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: self
                .logs
                .iter()
                .map(|(service, logs)| ResourceLogs {
                    resource: Some(resource(service)),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(scope()),
                        log_records: logs.clone(),
                        schema_url: String::new(),
                    }],
                    schema_url: SCHEMA_URL.to_string(),
                })
                .collect(),
        }
    }
}

const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.34.0";

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            string("service.name", service),
            string("service.namespace", "geo-weather"),
            string("service.version", "1.4.2"),
            string("deployment.environment.name", "demo"),
            string("telemetry.sdk.name", "opentelemetry"),
            string("telemetry.sdk.language", "java"),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "io.opentelemetry.tomcat-10.0".to_string(),
        version: "2.10.0".to_string(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

/// The request body for `protocol`: a gRPC message carries its length prefix.
pub fn body(message: &impl Message, protocol: Protocol) -> Bytes {
    let encoded = message.encode_to_vec();
    match protocol {
        Protocol::Http => Bytes::from(encoded),
        Protocol::Grpc => {
            let len = u32::try_from(encoded.len()).unwrap_or(u32::MAX);
            let mut framed = Vec::with_capacity(encoded.len() + 5);
            framed.push(0);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&encoded);
            Bytes::from(framed)
        }
    }
}

/// A log record tied to a span, as an SDK's log bridge writes it.
pub fn log_record(
    at: u64,
    severity: SeverityNumber,
    body: String,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    attributes: Vec<KeyValue>,
) -> LogRecord {
    LogRecord {
        time_unix_nano: at,
        observed_time_unix_nano: at,
        severity_number: severity as i32,
        severity_text: match severity {
            SeverityNumber::Warn => "WARN",
            SeverityNumber::Error => "ERROR",
            _ => "INFO",
        }
        .to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        attributes,
        dropped_attributes_count: 0,
        flags: 1,
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        event_name: String::new(),
    }
}

pub fn string(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

pub fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

/// A string array, as the conventions type `user.roles` and captured headers.
pub fn strings<'a>(key: &str, values: impl IntoIterator<Item = &'a str>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: values
                    .into_iter()
                    .map(|v| AnyValue {
                        value: Some(any_value::Value::StringValue(v.to_string())),
                    })
                    .collect(),
            })),
        }),
    }
}
