//! The OTLP/JSON request shapes, borrowing strings from the request body.
//!
//! Keys are lowerCamelCase with the proto field names (snake_case) as
//! aliases, as the protobuf JSON mapping requires of parsers. Every field is
//! `default`, so a missing field and `null` both mean the proto3 default;
//! unknown keys are skipped. Fields that can make a single record invalid
//! are [`Scalar`]s, checked during conversion.

use serde::Deserialize;

use super::scalar::Scalar;
use super::shape::{list, object};
use super::value::{Attributes, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct TracesRequest<'a> {
    #[serde(borrow, alias = "resource_spans", deserialize_with = "list")]
    pub resource_spans: Vec<RawResourceSpans<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LogsRequest<'a> {
    #[serde(borrow, alias = "resource_logs", deserialize_with = "list")]
    pub resource_logs: Vec<RawResourceLogs<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawResource<'a> {
    pub attributes: Attributes,
    #[serde(borrow, alias = "dropped_attributes_count")]
    pub dropped_attributes_count: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawScope<'a> {
    #[serde(borrow)]
    pub name: Scalar<'a>,
    #[serde(borrow)]
    pub version: Scalar<'a>,
    pub attributes: Attributes,
    #[serde(borrow, alias = "dropped_attributes_count")]
    pub dropped_attributes_count: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawResourceSpans<'a> {
    #[serde(borrow, deserialize_with = "object")]
    pub resource: Option<RawResource<'a>>,
    #[serde(borrow, alias = "scope_spans", deserialize_with = "list")]
    pub scope_spans: Vec<RawScopeSpans<'a>>,
    #[serde(borrow, alias = "schema_url")]
    pub schema_url: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawScopeSpans<'a> {
    #[serde(borrow, deserialize_with = "object")]
    pub scope: Option<RawScope<'a>>,
    #[serde(borrow, deserialize_with = "list")]
    pub spans: Vec<RawSpan<'a>>,
    #[serde(borrow, alias = "schema_url")]
    pub schema_url: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawSpan<'a> {
    #[serde(borrow, alias = "trace_id")]
    pub trace_id: Scalar<'a>,
    #[serde(borrow, alias = "span_id")]
    pub span_id: Scalar<'a>,
    #[serde(borrow, alias = "trace_state")]
    pub trace_state: Scalar<'a>,
    #[serde(borrow, alias = "parent_span_id")]
    pub parent_span_id: Scalar<'a>,
    #[serde(borrow)]
    pub flags: Scalar<'a>,
    #[serde(borrow)]
    pub name: Scalar<'a>,
    #[serde(borrow)]
    pub kind: Scalar<'a>,
    #[serde(borrow, alias = "start_time_unix_nano")]
    pub start_time_unix_nano: Scalar<'a>,
    #[serde(borrow, alias = "end_time_unix_nano")]
    pub end_time_unix_nano: Scalar<'a>,
    pub attributes: Attributes,
    #[serde(borrow, alias = "dropped_attributes_count")]
    pub dropped_attributes_count: Scalar<'a>,
    #[serde(borrow, deserialize_with = "list")]
    pub events: Vec<RawEvent<'a>>,
    #[serde(borrow, alias = "dropped_events_count")]
    pub dropped_events_count: Scalar<'a>,
    #[serde(borrow, deserialize_with = "list")]
    pub links: Vec<RawLink<'a>>,
    #[serde(borrow, alias = "dropped_links_count")]
    pub dropped_links_count: Scalar<'a>,
    #[serde(borrow, deserialize_with = "object")]
    pub status: Option<RawStatus<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawEvent<'a> {
    #[serde(borrow, alias = "time_unix_nano")]
    pub time_unix_nano: Scalar<'a>,
    #[serde(borrow)]
    pub name: Scalar<'a>,
    pub attributes: Attributes,
    #[serde(borrow, alias = "dropped_attributes_count")]
    pub dropped_attributes_count: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawLink<'a> {
    #[serde(borrow, alias = "trace_id")]
    pub trace_id: Scalar<'a>,
    #[serde(borrow, alias = "span_id")]
    pub span_id: Scalar<'a>,
    #[serde(borrow, alias = "trace_state")]
    pub trace_state: Scalar<'a>,
    pub attributes: Attributes,
    #[serde(borrow, alias = "dropped_attributes_count")]
    pub dropped_attributes_count: Scalar<'a>,
    #[serde(borrow)]
    pub flags: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawStatus<'a> {
    #[serde(borrow)]
    pub message: Scalar<'a>,
    #[serde(borrow)]
    pub code: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawResourceLogs<'a> {
    #[serde(borrow, deserialize_with = "object")]
    pub resource: Option<RawResource<'a>>,
    #[serde(borrow, alias = "scope_logs", deserialize_with = "list")]
    pub scope_logs: Vec<RawScopeLogs<'a>>,
    #[serde(borrow, alias = "schema_url")]
    pub schema_url: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawScopeLogs<'a> {
    #[serde(borrow, deserialize_with = "object")]
    pub scope: Option<RawScope<'a>>,
    #[serde(borrow, alias = "log_records", deserialize_with = "list")]
    pub log_records: Vec<RawLogRecord<'a>>,
    #[serde(borrow, alias = "schema_url")]
    pub schema_url: Scalar<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawLogRecord<'a> {
    #[serde(borrow, alias = "time_unix_nano")]
    pub time_unix_nano: Scalar<'a>,
    #[serde(borrow, alias = "observed_time_unix_nano")]
    pub observed_time_unix_nano: Scalar<'a>,
    #[serde(borrow, alias = "severity_number")]
    pub severity_number: Scalar<'a>,
    #[serde(borrow, alias = "severity_text")]
    pub severity_text: Scalar<'a>,
    pub body: Option<Value>,
    pub attributes: Attributes,
    #[serde(borrow, alias = "dropped_attributes_count")]
    pub dropped_attributes_count: Scalar<'a>,
    #[serde(borrow)]
    pub flags: Scalar<'a>,
    #[serde(borrow, alias = "trace_id")]
    pub trace_id: Scalar<'a>,
    #[serde(borrow, alias = "span_id")]
    pub span_id: Scalar<'a>,
    #[serde(borrow, alias = "event_name")]
    pub event_name: Scalar<'a>,
}
