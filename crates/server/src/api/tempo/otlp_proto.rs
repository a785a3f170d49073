//! Stored span records back into OTLP's hierarchy, as opentelemetry-proto's
//! prost types: the protobuf answer of the trace-by-id endpoints, and the
//! input of the OTLP/JSON rendering ([`super::otlp_json`]).
//!
//! The store keeps each span with the `Arc` of the resource and scope it came
//! with. Spans are grouped back under one `ResourceSpans` per distinct
//! resource and one `ScopeSpans` per distinct scope inside it. "Distinct" is
//! by value, not by pointer: a trace assembled from several batches (or read
//! back from segments) holds equal resources in different `Arc`s, and one
//! service should appear once. Groups keep the order in which they first
//! appear, and spans keep the store's order (by start time).

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue as ProtoAnyValue, ArrayValue, InstrumentationScope, KeyValue as ProtoKeyValue,
    KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans as ProtoResourceSpans, ScopeSpans as ProtoScopeSpans, Span as ProtoSpan,
    Status as ProtoStatus, TracesData, span,
};
use tracewarden_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanRecord};

/// Tempo's `tempopb.TraceByIDResponse`, the protobuf body of
/// `/api/v2/traces/{id}`: `Trace trace = 1; TraceByIDMetrics metrics = 2;
/// PartialStatus status = 3; string message = 4`. Tempo's `Trace` message is
/// `repeated ResourceSpans resourceSpans = 1`, the same wire shape as OTLP's
/// `TracesData`, so it is modelled as `TracesData`. `metrics` is not sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub trace: Option<TracesData>,
    /// `PartialStatus`: 0 `COMPLETE`, 1 `PARTIAL`.
    #[prost(int32, tag = "3")]
    pub status: i32,
    #[prost(string, tag = "4")]
    pub message: String,
}

/// The spans as OTLP `TracesData`: resource -> scope -> spans.
pub fn traces_data(records: &[SpanRecord]) -> TracesData {
    let mut resources = Grouper::<Resource>::default();
    // Per resource group: the scope grouper and the spans of each scope group.
    let mut scopes: Vec<(Grouper<Scope>, Vec<Vec<&Span>>)> = Vec::new();
    for record in records {
        let r = resources.group_of(&record.resource);
        if r == scopes.len() {
            scopes.push((Grouper::default(), Vec::new()));
        }
        let Some((scope_grouper, spans)) = scopes.get_mut(r) else {
            continue; // unreachable: group ids are dense and pushed above
        };
        let s = scope_grouper.group_of(&record.scope);
        if s == spans.len() {
            spans.push(Vec::new());
        }
        if let Some(group) = spans.get_mut(s) {
            group.push(&record.span);
        }
    }
    let resource_spans = resources
        .firsts
        .iter()
        .zip(scopes)
        .map(|(resource, (scope_grouper, spans))| ProtoResourceSpans {
            resource: Some(resource_proto(resource)),
            scope_spans: scope_grouper
                .firsts
                .iter()
                .zip(spans)
                .map(|(scope, spans)| ProtoScopeSpans {
                    scope: Some(scope_proto(scope)),
                    spans: spans.into_iter().map(span_proto).collect(),
                    schema_url: scope.schema_url.to_string(),
                })
                .collect(),
            schema_url: resource.schema_url.to_string(),
        })
        .collect();
    TracesData { resource_spans }
}

/// Assigns dense group ids to `Arc`s by value. Each distinct `Arc` is looked
/// at once (by address); its value is then keyed by its serde_json encoding,
/// because resources hold `f64` attribute values and so are neither `Eq`
/// nor `Hash`. Linear in the number of records.
struct Grouper<T> {
    by_address: HashMap<*const T, usize>,
    by_value: HashMap<String, usize>,
    /// The first `Arc` of each group, by group id.
    firsts: Vec<Arc<T>>,
}

impl<T> Default for Grouper<T> {
    fn default() -> Self {
        Grouper {
            by_address: HashMap::new(),
            by_value: HashMap::new(),
            firsts: Vec::new(),
        }
    }
}

impl<T: serde::Serialize> Grouper<T> {
    fn group_of(&mut self, item: &Arc<T>) -> usize {
        let address = Arc::as_ptr(item);
        if let Some(&id) = self.by_address.get(&address) {
            return id;
        }
        let next = self.firsts.len();
        let id = match serde_json::to_string(&**item) {
            Ok(key) => *self.by_value.entry(key).or_insert(next),
            // Cannot happen for these types; a value that could not be keyed
            // gets a group of its own, which is still a correct answer.
            Err(_) => next,
        };
        if id == next {
            self.firsts.push(Arc::clone(item));
        }
        // The address stays valid as a key: `firsts` or the caller's records
        // hold the `Arc` for as long as the grouper lives.
        self.by_address.insert(address, id);
        id
    }
}

fn resource_proto(resource: &Resource) -> ProtoResource {
    ProtoResource {
        attributes: key_values(&resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        ..ProtoResource::default()
    }
}

fn scope_proto(scope: &Scope) -> InstrumentationScope {
    InstrumentationScope {
        name: scope.name.to_string(),
        version: scope.version.to_string(),
        attributes: key_values(&scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
    }
}

fn span_proto(s: &Span) -> ProtoSpan {
    ProtoSpan {
        trace_id: s.trace_id.as_bytes().to_vec(),
        span_id: s.span_id.as_bytes().to_vec(),
        trace_state: s.trace_state.to_string(),
        parent_span_id: s
            .parent_span_id
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_default(),
        flags: s.flags,
        name: s.name.to_string(),
        kind: s.kind as i32,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        // Current semantic-convention names; the renamed originals stay out,
        // so each fact appears once.
        attributes: key_values(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s.events.iter().map(event_proto).collect(),
        dropped_events_count: s.dropped_events_count,
        links: s.links.iter().map(link_proto).collect(),
        dropped_links_count: s.dropped_links_count,
        status: Some(ProtoStatus {
            message: s.status.message.to_string(),
            code: s.status.code as i32,
        }),
    }
}

fn event_proto(e: &Event) -> span::Event {
    span::Event {
        time_unix_nano: e.time_unix_nano,
        name: e.name.to_string(),
        attributes: key_values(&e.attributes),
        dropped_attributes_count: e.dropped_attributes_count,
    }
}

fn link_proto(l: &Link) -> span::Link {
    span::Link {
        trace_id: l.trace_id.as_bytes().to_vec(),
        span_id: l.span_id.as_bytes().to_vec(),
        trace_state: l.trace_state.to_string(),
        attributes: key_values(&l.attributes),
        dropped_attributes_count: l.dropped_attributes_count,
        flags: l.flags,
    }
}

fn key_values(list: &[KeyValue]) -> Vec<ProtoKeyValue> {
    list.iter()
        .map(|kv| ProtoKeyValue {
            key: kv.key.to_string(),
            value: Some(any_value_proto(&kv.value)),
            ..ProtoKeyValue::default()
        })
        .collect()
}

/// One value. Nesting is bounded by the ingest limits (`max_value_depth`),
/// so the recursion is too.
fn any_value_proto(v: &AnyValue) -> ProtoAnyValue {
    let value = match v {
        AnyValue::Empty => None,
        AnyValue::Str(s) => Some(any_value::Value::StringValue(s.to_string())),
        AnyValue::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        AnyValue::Int(i) => Some(any_value::Value::IntValue(*i)),
        AnyValue::Double(d) => Some(any_value::Value::DoubleValue(*d)),
        AnyValue::Bytes(b) => Some(any_value::Value::BytesValue(b.clone())),
        AnyValue::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(any_value_proto).collect(),
        })),
        AnyValue::KvList(kvs) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: key_values(kvs),
        })),
    };
    ProtoAnyValue { value }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tracewarden_model::{SpanId, TraceId};

    fn record(resource: &Arc<Resource>, scope: &Arc<Scope>, id: u8) -> SpanRecord {
        SpanRecord {
            resource: Arc::clone(resource),
            scope: Arc::clone(scope),
            span: Span::new(
                TraceId::from_bytes([7; 16]),
                SpanId::from_bytes([id; 8]),
                format!("span {id}"),
            )
            .into(),
        }
    }

    fn service(name: &str) -> Arc<Resource> {
        Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", AnyValue::from(name))],
            ..Resource::default()
        })
    }

    #[test]
    fn equal_resources_in_different_arcs_are_one_group() {
        let scope = Arc::new(Scope {
            name: "lib".into(),
            ..Scope::default()
        });
        let other_scope = Arc::new(Scope {
            name: "other".into(),
            ..Scope::default()
        });
        // Two Arcs with the same value, one different, interleaved.
        let records = vec![
            record(&service("a"), &scope, 1),
            record(&service("b"), &scope, 2),
            record(&service("a"), &other_scope, 3),
            record(&service("a"), &scope, 4),
        ];
        let data = traces_data(&records);
        assert_eq!(data.resource_spans.len(), 2);
        let a = &data.resource_spans[0];
        assert_eq!(a.scope_spans.len(), 2, "two scopes under service a");
        let names = |ss: &ProtoScopeSpans| -> Vec<String> {
            ss.spans.iter().map(|s| s.name.clone()).collect()
        };
        assert_eq!(names(&a.scope_spans[0]), ["span 1", "span 4"]);
        assert_eq!(a.scope_spans[0].scope.as_ref().unwrap().name, "lib");
        assert_eq!(names(&a.scope_spans[1]), ["span 3"]);
        assert_eq!(names(&data.resource_spans[1].scope_spans[0]), ["span 2"]);
    }

    #[test]
    fn values_of_every_kind_are_kept() {
        let value = AnyValue::KvList(vec![
            KeyValue::new("s", AnyValue::from("x")),
            KeyValue::new(
                "arr",
                AnyValue::Array(vec![AnyValue::Int(-1), AnyValue::Double(0.5)]),
            ),
            KeyValue::new("b", AnyValue::Bytes(vec![0, 255])),
            KeyValue::new("e", AnyValue::Empty),
        ]);
        let proto = any_value_proto(&value);
        let Some(any_value::Value::KvlistValue(list)) = proto.value else {
            panic!("not a kvlist: {proto:?}");
        };
        assert_eq!(list.values.len(), 4);
        assert_eq!(
            list.values[2].value.as_ref().unwrap().value,
            Some(any_value::Value::BytesValue(vec![0, 255]))
        );
        assert_eq!(list.values[3].value.as_ref().unwrap().value, None);
    }

    #[test]
    fn root_span_has_empty_parent_id() {
        let scope = Arc::new(Scope::default());
        let mut child = record(&service("a"), &scope, 2);
        child.span_mut().parent_span_id = Some(SpanId::from_bytes([1; 8]));
        let data = traces_data(&[record(&service("a"), &scope, 1), child]);
        let spans = &data.resource_spans[0].scope_spans[0].spans;
        assert!(spans[0].parent_span_id.is_empty());
        assert_eq!(spans[1].parent_span_id, vec![1; 8]);
    }
}
