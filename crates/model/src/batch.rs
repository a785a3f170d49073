//! A batch of spans and log records in OTLP's hierarchy: resource -> scope -> records.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::log::LogRecord;
use crate::span::Span;
use crate::value::{AnyValue, KeyValue, Str, find_attribute};

/// The entity producing telemetry (a service instance, a host).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
    pub original_attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub schema_url: Str,
}

impl Resource {
    pub fn attribute(&self, key: &str) -> Option<&AnyValue> {
        find_attribute(&self.attributes, key)
    }

    /// `service.name`, or "" when the resource names no service.
    pub fn service_name(&self) -> &str {
        self.attribute(crate::semconv::SERVICE_NAME)
            .and_then(AnyValue::as_str)
            .unwrap_or("")
    }
}

/// The instrumentation scope (library) that produced the records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Scope {
    pub name: Str,
    pub version: Str,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub schema_url: Str,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ScopeSpans {
    pub scope: Arc<Scope>,
    pub spans: Vec<Span>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceSpans {
    pub resource: Arc<Resource>,
    pub scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ScopeLogs {
    pub scope: Arc<Scope>,
    pub log_records: Vec<LogRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceLogs {
    pub resource: Arc<Resource>,
    pub scope_logs: Vec<ScopeLogs>,
}

/// What one export request carried, after decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Batch {
    pub resource_spans: Vec<ResourceSpans>,
    pub resource_logs: Vec<ResourceLogs>,
}

impl Batch {
    pub fn span_count(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    pub fn log_count(&self) -> usize {
        self.resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.span_count() == 0 && self.log_count() == 0
    }

    /// Every span with its resource and scope.
    pub fn spans(&self) -> impl Iterator<Item = (&Arc<Resource>, &Arc<Scope>, &Span)> {
        self.resource_spans.iter().flat_map(|rs| {
            rs.scope_spans
                .iter()
                .flat_map(move |ss| ss.spans.iter().map(move |s| (&rs.resource, &ss.scope, s)))
        })
    }

    /// Every log record with its resource and scope.
    pub fn logs(&self) -> impl Iterator<Item = (&Arc<Resource>, &Arc<Scope>, &LogRecord)> {
        self.resource_logs.iter().flat_map(|rl| {
            rl.scope_logs.iter().flat_map(move |sl| {
                sl.log_records
                    .iter()
                    .map(move |l| (&rl.resource, &sl.scope, l))
            })
        })
    }
}
