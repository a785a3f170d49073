//! Log records seen through rules: a rule with `source: logs` evaluates its
//! TraceQL condition on a span-shaped view of each log record, so one
//! language serves both.
//!
//! The view of a record (see docs/DETECTION.md, "Rules on log records"):
//! - `span.<key>` (and `.<key>`): the record's attributes, plus
//!   `log.body` (the body as sent: a string for text logs),
//!   `log.severity_text`, `log.severity_number` and `log.event_name` when
//!   set;
//! - `resource.<key>`: the resource the record came with;
//! - `name`: the event name (empty for most records);
//! - `trace:id` and `span:id`: the ids the record carries (zero when none),
//!   so a detection links to the trace the record belongs to;
//! - the start time is the record's time (or its observed time).
//!
//! Keys (`group_by`) come from the record and its resource: a log rule
//! keys on what the log carries.

use tracewarden_model::{AnyValue, KeyValue, LogEntry, SpanId, SpanRecord, TraceId};

/// Writes the view of `entry` into `view`, reusing its buffers: the
/// attribute vector keeps its capacity across records.
pub(crate) fn view_into(entry: &LogEntry, view: &mut SpanRecord) {
    let record = &entry.record;
    view.resource = std::sync::Arc::clone(&entry.resource);
    view.scope = std::sync::Arc::clone(&entry.scope);
    let span = &mut view.span;
    span.trace_id = record.trace_id.unwrap_or(TraceId::from_bytes([0; 16]));
    span.span_id = record.span_id.unwrap_or(SpanId::from_bytes([0; 8]));
    span.parent_span_id = None;
    span.name = record.event_name.clone();
    let time = record.effective_time_unix_nano();
    span.start_time_unix_nano = time;
    span.end_time_unix_nano = time;
    span.flags = record.flags;
    span.attributes.clear();
    span.attributes.extend(record.attributes.iter().cloned());
    if !matches!(record.body, AnyValue::Empty) {
        span.attributes
            .push(KeyValue::new("log.body", record.body.clone()));
    }
    if !record.severity_text.is_empty() {
        span.attributes.push(KeyValue::new(
            "log.severity_text",
            AnyValue::Str(record.severity_text.clone()),
        ));
    }
    if record.severity_number != 0 {
        span.attributes.push(KeyValue::new(
            "log.severity_number",
            AnyValue::Int(i64::from(record.severity_number)),
        ));
    }
    if !record.event_name.is_empty() {
        span.attributes.push(KeyValue::new(
            "log.event_name",
            AnyValue::Str(record.event_name.clone()),
        ));
    }
}

/// An empty view to reuse.
pub(crate) fn empty_view() -> SpanRecord {
    SpanRecord {
        resource: std::sync::Arc::default(),
        scope: std::sync::Arc::default(),
        span: tracewarden_model::Span::new(
            TraceId::from_bytes([0; 16]),
            SpanId::from_bytes([0; 8]),
            "",
        ),
    }
}
