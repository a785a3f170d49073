//! Spans, their events, links and status.

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};
use crate::value::{AnyValue, KeyValue, Str, find_attribute};

/// OpenTelemetry's span kind. Values are OTLP's enum numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SpanKind {
    #[default]
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    /// Every kind, in OTLP order (`ALL[k as usize]` is the kind numbered `k`).
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// The kind's bit in a set of kinds held as a `u8`: bit `k` for the
    /// kind numbered `k`.
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The kind for an OTLP enum number; `None` for a number OTLP does not define.
    pub fn from_i32(n: i32) -> Option<SpanKind> {
        Some(match n {
            0 => SpanKind::Unspecified,
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// The TraceQL name (`server`, `client`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// A span's status code. Values are OTLP's enum numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum StatusCode {
    #[default]
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    pub fn from_i32(n: i32) -> Option<StatusCode> {
        Some(match n {
            0 => StatusCode::Unset,
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => return None,
        })
    }

    /// The TraceQL name (`unset`, `ok`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "unset",
            StatusCode::Ok => "ok",
            StatusCode::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    pub code: StatusCode,
    pub message: Str,
}

/// A timed event inside a span (an exception, a log-like annotation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Event {
    pub time_unix_nano: u64,
    pub name: Str,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A link from a span to a span of another (or the same) trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: Str,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// One unit of work of a trace.
///
/// `attributes` hold current semantic-convention names after
/// [`crate::normalise`]; the legacy attributes it replaced are kept, as
/// received, in `original_attributes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    pub trace_state: Str,
    pub flags: u32,
    pub name: Str,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub original_attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status: Status,
}

impl Span {
    /// A span with ids and a name; everything else empty.
    pub fn new(trace_id: TraceId, span_id: SpanId, name: impl Into<Str>) -> Span {
        Span {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: Str::default(),
            flags: 0,
            name: name.into(),
            kind: SpanKind::Unspecified,
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            attributes: Vec::new(),
            original_attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Status::default(),
        }
    }

    pub fn attribute(&self, key: &str) -> Option<&AnyValue> {
        find_attribute(&self.attributes, key)
    }

    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    /// Whether the span is a root (no parent).
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}
