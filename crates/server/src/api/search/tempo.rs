//! Grafana Tempo's search response (`GET /api/search`), so Grafana's Tempo
//! data source can search tracewarden:
//!
//! ```json
//! {"traces": [{"traceID": "..", "rootServiceName": "..", "rootTraceName": "..",
//!   "startTimeUnixNano": "..", "durationMs": 6,
//!   "spanSet": {"spans": [{"spanID": "..", "name": "..", "startTimeUnixNano": "..",
//!     "durationNanos": "..", "attributes": [{"key": "service.name",
//!     "value": {"stringValue": ".."}}]}], "matched": 3},
//!   "spanSets": [...], "serviceStats": {"api": {"spanCount": 3, "errorCount": 1}}}],
//!  "metrics": {"inspectedTraces": 1, "inspectedBytes": "0", ...}}
//! ```
//!
//! 64-bit numbers are strings, as Tempo writes them (protobuf's JSON
//! mapping). Each listed span carries `service.name` and the attributes the
//! query names in its conditions or `select(...)`, as Tempo does.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tracewarden_model::{AnyValue, SpanRecord, semconv};
use tracewarden_search::{MatchedSpanSet, SearchRequest, SearchResult, TraceMatch};
use tracewarden_traceql::{AttributeScope, Field, Static};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub traces: Vec<TraceJson>,
    pub metrics: MetricsJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceJson {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_trace_name: Option<String>,
    pub start_time_unix_nano: String,
    pub duration_ms: u64,
    /// The first spanset (older Grafana versions read only this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_set: Option<SpanSetJson>,
    pub span_sets: Vec<SpanSetJson>,
    pub service_stats: BTreeMap<String, ServiceStatsJson>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanSetJson {
    pub spans: Vec<SpanJson>,
    pub matched: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Value>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanJson {
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub name: String,
    pub start_time_unix_nano: String,
    pub duration_nanos: String,
    pub attributes: Vec<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatsJson {
    pub span_count: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub error_count: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsJson {
    pub inspected_traces: u64,
    pub inspected_spans: String,
    pub inspected_bytes: String,
    pub completed_jobs: u64,
    pub total_jobs: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The attributes listed with each matched span: `service.name` and those
/// the query's necessary conditions name.
pub fn shown_fields(request: &SearchRequest) -> Vec<(AttributeScope, String)> {
    let mut fields = vec![(AttributeScope::Resource, semconv::SERVICE_NAME.to_string())];
    for condition in request.query.required_conditions().into_iter().flatten() {
        if let Field::Attribute { scope, name } = condition.field
            && !fields.iter().any(|(s, n)| *s == scope && *n == *name)
        {
            fields.push((scope, name.to_string()));
        }
    }
    fields
}

impl SearchResponse {
    pub fn new(result: &SearchResult, fields: &[(AttributeScope, String)]) -> SearchResponse {
        let total_units = result.metrics.scanned_units + result.metrics.skipped_units;
        SearchResponse {
            traces: result.traces.iter().map(|t| trace(t, fields)).collect(),
            metrics: MetricsJson {
                inspected_traces: result.metrics.inspected_traces,
                inspected_spans: result.metrics.inspected_spans.to_string(),
                inspected_bytes: "0".to_string(),
                completed_jobs: total_units,
                total_jobs: total_units,
            },
        }
    }
}

fn trace(found: &TraceMatch, fields: &[(AttributeScope, String)]) -> TraceJson {
    let span_sets: Vec<SpanSetJson> = found
        .spansets
        .iter()
        .map(|set| spanset(set, fields))
        .collect();
    TraceJson {
        trace_id: found.trace_id.to_hex(),
        root_service_name: found.root_service_name.clone(),
        root_trace_name: found.root_span_name.clone(),
        start_time_unix_nano: found.start_unix_nano.to_string(),
        duration_ms: found.duration_nanos / 1_000_000,
        span_set: span_sets.first().cloned(),
        span_sets,
        service_stats: found
            .service_stats
            .iter()
            .map(|(service, stats)| {
                (
                    service.clone(),
                    ServiceStatsJson {
                        span_count: stats.span_count,
                        error_count: stats.error_count,
                    },
                )
            })
            .collect(),
    }
}

fn spanset(set: &MatchedSpanSet, fields: &[(AttributeScope, String)]) -> SpanSetJson {
    SpanSetJson {
        matched: set.matched,
        attributes: set
            .attributes
            .iter()
            .filter_map(|(key, value)| key_value(key, static_value(value)?))
            .collect(),
        spans: set
            .spans
            .iter()
            .map(|matched| {
                let record = &matched.record;
                let mut attributes: Vec<Value> = fields
                    .iter()
                    .filter_map(|(scope, name)| {
                        key_value(name, any_value(lookup(record, *scope, name)?)?)
                    })
                    .collect();
                attributes.extend(
                    matched
                        .selected
                        .iter()
                        .filter_map(|(key, value)| key_value(key, static_value(value)?)),
                );
                SpanJson {
                    span_id: record.span.span_id.to_hex(),
                    name: record.span.name.to_string(),
                    start_time_unix_nano: record.span.start_time_unix_nano.to_string(),
                    duration_nanos: record.span.duration_nanos().to_string(),
                    attributes,
                }
            })
            .collect(),
    }
}

fn lookup<'a>(record: &'a SpanRecord, scope: AttributeScope, name: &str) -> Option<&'a AnyValue> {
    match scope {
        AttributeScope::Span => record.span.attribute(name),
        AttributeScope::Resource => record.resource.attribute(name),
        AttributeScope::Unscoped => record
            .span
            .attribute(name)
            .or_else(|| record.resource.attribute(name)),
        _ => None,
    }
}

fn key_value(key: &str, value: Value) -> Option<Value> {
    Some(json!({ "key": key, "value": value }))
}

/// An attribute value in OTLP/JSON form (`{"stringValue": ".."}`,
/// `{"intValue": "42"}`...); arrays and maps are left out of the summary.
fn any_value(value: &AnyValue) -> Option<Value> {
    Some(match value {
        AnyValue::Str(s) => json!({ "stringValue": s.as_str() }),
        AnyValue::Int(i) => json!({ "intValue": i.to_string() }),
        AnyValue::Double(d) => json!({ "doubleValue": d }),
        AnyValue::Bool(b) => json!({ "boolValue": b }),
        _ => return None,
    })
}

fn static_value(value: &Static) -> Option<Value> {
    Some(match value {
        Static::Nil => return None,
        Static::Bool(b) => json!({ "boolValue": b }),
        Static::Int(i) => json!({ "intValue": i.to_string() }),
        Static::Float(f) => json!({ "doubleValue": f }),
        Static::Str(s) => json!({ "stringValue": s }),
        Static::Duration(nanos) => json!({ "intValue": nanos.to_string() }),
        Static::Status(status) => json!({ "stringValue": status.as_str() }),
        Static::Kind(kind) => json!({ "stringValue": kind.as_str() }),
    })
}
