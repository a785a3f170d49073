//! A span or log record together with the resource and scope it came with:
//! the unit the store keeps and query and detection read.

use std::sync::Arc;

use crate::{LogRecord, Resource, Scope, Span, TraceId};

/// A span with the resource and scope it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub span: Span,
}

/// A log record with the resource and scope it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub record: LogRecord,
}

/// Everything held for one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub trace_id: TraceId,
    /// Ordered by start time (then span id, so the order is stable).
    pub spans: Vec<SpanRecord>,
    /// Log records carrying this trace id, ordered by time
    /// ([`LogRecord::effective_time_unix_nano`]).
    pub logs: Vec<LogEntry>,
}
