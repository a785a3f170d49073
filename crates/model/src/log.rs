//! Log records, joined to traces by their trace and span ids.

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};
use crate::value::{AnyValue, KeyValue, Str, find_attribute};

/// One log record, as OpenTelemetry's `LogRecord`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct LogRecord {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    /// OTLP's `SeverityNumber`, 0 (unspecified) to 24 (FATAL4).
    pub severity_number: i32,
    pub severity_text: Str,
    pub body: AnyValue,
    pub attributes: Vec<KeyValue>,
    pub original_attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub event_name: Str,
}

impl LogRecord {
    pub fn attribute(&self, key: &str) -> Option<&AnyValue> {
        find_attribute(&self.attributes, key)
    }

    /// The time used to order records: the event time, or when the
    /// collector observed it if the source gave none.
    pub fn effective_time_unix_nano(&self) -> u64 {
        if self.time_unix_nano != 0 {
            self.time_unix_nano
        } else {
            self.observed_time_unix_nano
        }
    }
}
