//! The native search response: matching traces, each spanset's matched
//! spans with all their attributes, resource and scope.

use serde::Serialize;
use serde_json::{Map, Value};
use tracewarden_search::{MatchedSpanSet, SearchMetrics, SearchResult, TraceMatch};
use tracewarden_traceql::Static;

use crate::api::json::SpanJson;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub traces: Vec<TraceJson>,
    pub metrics: MetricsJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceJson {
    pub trace_id: String,
    pub root_service_name: Option<String>,
    pub root_span_name: Option<String>,
    /// Unix nanoseconds, as a string (exact in JavaScript).
    pub start_time_unix_nano: String,
    pub duration_nanos: String,
    pub span_count: usize,
    pub span_sets: Vec<SpanSetJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanSetJson {
    pub matched: usize,
    /// `by()` values and aggregates.
    pub attributes: Map<String, Value>,
    pub spans: Vec<MatchedSpanJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchedSpanJson {
    #[serde(flatten)]
    pub span: SpanJson,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub selected: Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsJson {
    pub inspected_spans: u64,
    pub inspected_traces: u64,
    pub scanned_units: u64,
    pub skipped_units: u64,
    /// Present when the search stopped early for a reason other than the
    /// limit: the result may miss matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// Segments that could not be read (the search went on without them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

impl SearchResponse {
    pub fn new(result: &SearchResult) -> SearchResponse {
        SearchResponse {
            traces: result.traces.iter().map(trace).collect(),
            metrics: metrics(&result.metrics),
        }
    }
}

fn trace(found: &TraceMatch) -> TraceJson {
    TraceJson {
        trace_id: found.trace_id.to_hex(),
        root_service_name: found.root_service_name.clone(),
        root_span_name: found.root_span_name.clone(),
        start_time_unix_nano: found.start_unix_nano.to_string(),
        duration_nanos: found.duration_nanos.to_string(),
        span_count: found.span_count,
        span_sets: found.spansets.iter().map(spanset).collect(),
    }
}

fn spanset(set: &MatchedSpanSet) -> SpanSetJson {
    SpanSetJson {
        matched: set.matched,
        attributes: statics(&set.attributes),
        spans: set
            .spans
            .iter()
            .map(|m| MatchedSpanJson {
                span: SpanJson::new(&m.record.resource, &m.record.scope, &m.record.span),
                selected: statics(&m.selected),
            })
            .collect(),
    }
}

fn metrics(m: &SearchMetrics) -> MetricsJson {
    MetricsJson {
        inspected_spans: m.inspected_spans,
        inspected_traces: m.inspected_traces,
        scanned_units: m.scanned_units,
        skipped_units: m.skipped_units,
        partial: m.partial.clone(),
        unreadable: m.unreadable.clone(),
    }
}

fn statics(values: &[(String, Static)]) -> Map<String, Value> {
    values
        .iter()
        .map(|(name, value)| (name.clone(), static_json(value)))
        .collect()
}

/// A TraceQL value as JSON: durations as nanoseconds (numbers), status and
/// kind by name.
pub fn static_json(value: &Static) -> Value {
    match value {
        Static::Nil => Value::Null,
        Static::Bool(b) => Value::Bool(*b),
        Static::Int(i) => Value::from(*i),
        Static::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Static::Str(s) => Value::String(s.clone()),
        Static::Duration(nanos) => Value::from(*nanos),
        Static::Status(status) => Value::String(status.as_str().to_string()),
        Static::Kind(kind) => Value::String(kind.as_str().to_string()),
    }
}
