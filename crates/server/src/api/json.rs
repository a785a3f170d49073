//! The JSON form of spans, log records and their context in API responses.
//!
//! Attributes are JSON objects (`{"http.request.method": "GET"}`), ids are
//! lowercase hex, and times are Unix nanoseconds as strings, as in OTLP/JSON,
//! because JavaScript numbers lose precision past 2^53.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use tracewarden_model::{AnyValue, Event, KeyValue, Link, LogRecord, Resource, Scope, Span};

/// An attribute list as a JSON object. A repeated key keeps its first value,
/// as `Span::attribute` does.
pub fn attributes(list: &[KeyValue]) -> Map<String, Value> {
    let mut map = Map::with_capacity(list.len());
    for kv in list {
        if !map.contains_key(kv.key.as_str()) {
            map.insert(kv.key.to_string(), value(&kv.value));
        }
    }
    map
}

/// One attribute value as JSON. 64-bit integers stay numbers: they are exact
/// for any client that parses big integers, and status codes and ports read naturally.
pub fn value(v: &AnyValue) -> Value {
    match v {
        AnyValue::Empty => Value::Null,
        AnyValue::Str(s) => Value::String(s.to_string()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        AnyValue::Bytes(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        AnyValue::Array(items) => Value::Array(items.iter().map(value).collect()),
        AnyValue::KvList(kvs) => Value::Object(attributes(kvs)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceJson {
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub original_attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_attributes_count: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub schema_url: String,
}

impl From<&Resource> for ResourceJson {
    fn from(r: &Resource) -> Self {
        ResourceJson {
            attributes: attributes(&r.attributes),
            original_attributes: attributes(&r.original_attributes),
            dropped_attributes_count: r.dropped_attributes_count,
            schema_url: r.schema_url.to_string(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeJson {
    pub name: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

impl From<&Scope> for ScopeJson {
    fn from(s: &Scope) -> Self {
        ScopeJson {
            name: s.name.to_string(),
            version: s.version.to_string(),
            attributes: attributes(&s.attributes),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    pub time_unix_nano: String,
    pub name: String,
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_attributes_count: u32,
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        EventJson {
            time_unix_nano: e.time_unix_nano.to_string(),
            name: e.name.to_string(),
            attributes: attributes(&e.attributes),
            dropped_attributes_count: e.dropped_attributes_count,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkJson {
    pub trace_id: String,
    pub span_id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub trace_state: String,
    pub attributes: Map<String, Value>,
}

impl From<&Link> for LinkJson {
    fn from(l: &Link) -> Self {
        LinkJson {
            trace_id: l.trace_id.to_hex(),
            span_id: l.span_id.to_hex(),
            trace_state: l.trace_state.to_string(),
            attributes: attributes(&l.attributes),
        }
    }
}

#[derive(Serialize)]
pub struct StatusJson {
    pub code: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanJson {
    pub trace_id: String,
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: &'static str,
    pub service_name: String,
    pub start_time_unix_nano: String,
    pub end_time_unix_nano: String,
    pub duration_nanos: String,
    pub status: StatusJson,
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub original_attributes: Map<String, Value>,
    pub events: Vec<EventJson>,
    pub links: Vec<LinkJson>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub trace_state: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub flags: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<&'static str, u32>,
    pub resource: ResourceJson,
    pub scope: ScopeJson,
}

impl SpanJson {
    pub fn new(resource: &Resource, scope: &Scope, s: &Span) -> SpanJson {
        let mut dropped = BTreeMap::new();
        for (what, n) in [
            ("attributes", s.dropped_attributes_count),
            ("events", s.dropped_events_count),
            ("links", s.dropped_links_count),
        ] {
            if n > 0 {
                dropped.insert(what, n);
            }
        }
        SpanJson {
            trace_id: s.trace_id.to_hex(),
            span_id: s.span_id.to_hex(),
            parent_span_id: s.parent_span_id.map(|p| p.to_hex()),
            name: s.name.to_string(),
            kind: s.kind.as_str(),
            service_name: resource.service_name().to_string(),
            start_time_unix_nano: s.start_time_unix_nano.to_string(),
            end_time_unix_nano: s.end_time_unix_nano.to_string(),
            duration_nanos: s.duration_nanos().to_string(),
            status: StatusJson {
                code: s.status.code.as_str(),
                message: s.status.message.to_string(),
            },
            attributes: attributes(&s.attributes),
            original_attributes: attributes(&s.original_attributes),
            events: s.events.iter().map(EventJson::from).collect(),
            links: s.links.iter().map(LinkJson::from).collect(),
            trace_state: s.trace_state.to_string(),
            flags: s.flags,
            dropped,
            resource: ResourceJson::from(resource),
            scope: ScopeJson::from(scope),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogJson {
    pub time_unix_nano: String,
    pub observed_time_unix_nano: String,
    pub severity_number: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub severity_text: String,
    pub body: Value,
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub original_attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub event_name: String,
    pub service_name: String,
    pub resource: ResourceJson,
    pub scope: ScopeJson,
}

impl LogJson {
    pub fn new(resource: &Resource, scope: &Scope, l: &LogRecord) -> LogJson {
        LogJson {
            time_unix_nano: l.time_unix_nano.to_string(),
            observed_time_unix_nano: l.observed_time_unix_nano.to_string(),
            severity_number: l.severity_number,
            severity_text: l.severity_text.to_string(),
            body: value(&l.body),
            attributes: attributes(&l.attributes),
            original_attributes: attributes(&l.original_attributes),
            trace_id: l.trace_id.map(|t| t.to_hex()),
            span_id: l.span_id.map(|s| s.to_hex()),
            event_name: l.event_name.to_string(),
            service_name: resource.service_name().to_string(),
            resource: ResourceJson::from(resource),
            scope: ScopeJson::from(scope),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
