//! OTLP's "JSON Protobuf Encoding" of [`TracesData`], as the OpenTelemetry
//! protocol specification defines it (and as `tracewarden-ingest`'s OTLP/JSON
//! decoder reads it):
//!
//! - keys in lowerCamelCase (`resourceSpans`, `startTimeUnixNano`);
//! - trace and span ids as lowercase hex, not base64;
//! - 64-bit integers (`intValue`, times) as decimal strings, 32-bit ones
//!   (counts, flags) as numbers;
//! - enums (`kind`, `status.code`) as integers;
//! - `bytesValue` as base64; non-finite doubles as `"NaN"`, `"Infinity"`,
//!   `"-Infinity"`;
//! - fields holding their default value omitted, except the span's ids,
//!   name, kind and times, which every reader expects.
//!
//! Tempo itself renders this JSON with gogo's jsonpb, which writes ids as
//! base64 and enums as names; protojson readers accept both, and Grafana
//! asks for protobuf anyway. docs/TEMPO_API.md lists the differences.

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData, span};
use serde_json::{Map, Value, json};

/// The `resourceSpans` list of `data`.
pub fn resource_spans(data: &TracesData) -> Value {
    Value::Array(
        data.resource_spans
            .iter()
            .map(resource_spans_json)
            .collect(),
    )
}

/// `TracesData` as OTLP/JSON: `{"resourceSpans": [...]}`.
pub fn traces_data(data: &TracesData) -> Value {
    json!({ "resourceSpans": resource_spans(data) })
}

fn resource_spans_json(rs: &ResourceSpans) -> Value {
    let mut out = Map::new();
    if let Some(resource) = &rs.resource {
        out.insert("resource".into(), resource_json(resource));
    }
    out.insert(
        "scopeSpans".into(),
        Value::Array(rs.scope_spans.iter().map(scope_spans_json).collect()),
    );
    put_str(&mut out, "schemaUrl", &rs.schema_url);
    Value::Object(out)
}

fn resource_json(resource: &Resource) -> Value {
    let mut out = Map::new();
    out.insert("attributes".into(), key_values(&resource.attributes));
    put_u32(
        &mut out,
        "droppedAttributesCount",
        resource.dropped_attributes_count,
    );
    Value::Object(out)
}

fn scope_spans_json(ss: &ScopeSpans) -> Value {
    let mut out = Map::new();
    if let Some(scope) = &ss.scope {
        out.insert("scope".into(), scope_json(scope));
    }
    out.insert(
        "spans".into(),
        Value::Array(ss.spans.iter().map(span_json).collect()),
    );
    put_str(&mut out, "schemaUrl", &ss.schema_url);
    Value::Object(out)
}

fn scope_json(scope: &InstrumentationScope) -> Value {
    let mut out = Map::new();
    put_str(&mut out, "name", &scope.name);
    put_str(&mut out, "version", &scope.version);
    if !scope.attributes.is_empty() {
        out.insert("attributes".into(), key_values(&scope.attributes));
    }
    put_u32(
        &mut out,
        "droppedAttributesCount",
        scope.dropped_attributes_count,
    );
    Value::Object(out)
}

fn span_json(s: &Span) -> Value {
    let mut out = Map::new();
    out.insert("traceId".into(), Value::String(hex(&s.trace_id)));
    out.insert("spanId".into(), Value::String(hex(&s.span_id)));
    put_str(&mut out, "traceState", &s.trace_state);
    if !s.parent_span_id.is_empty() {
        out.insert("parentSpanId".into(), Value::String(hex(&s.parent_span_id)));
    }
    put_u32(&mut out, "flags", s.flags);
    out.insert("name".into(), Value::String(s.name.clone()));
    out.insert("kind".into(), Value::from(s.kind));
    out.insert(
        "startTimeUnixNano".into(),
        Value::String(s.start_time_unix_nano.to_string()),
    );
    out.insert(
        "endTimeUnixNano".into(),
        Value::String(s.end_time_unix_nano.to_string()),
    );
    if !s.attributes.is_empty() {
        out.insert("attributes".into(), key_values(&s.attributes));
    }
    put_u32(
        &mut out,
        "droppedAttributesCount",
        s.dropped_attributes_count,
    );
    if !s.events.is_empty() {
        out.insert(
            "events".into(),
            Value::Array(s.events.iter().map(event_json).collect()),
        );
    }
    put_u32(&mut out, "droppedEventsCount", s.dropped_events_count);
    if !s.links.is_empty() {
        out.insert(
            "links".into(),
            Value::Array(s.links.iter().map(link_json).collect()),
        );
    }
    put_u32(&mut out, "droppedLinksCount", s.dropped_links_count);
    let mut status = Map::new();
    if let Some(st) = &s.status {
        put_str(&mut status, "message", &st.message);
        if st.code != 0 {
            status.insert("code".into(), Value::from(st.code));
        }
    }
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

fn event_json(e: &span::Event) -> Value {
    let mut out = Map::new();
    out.insert(
        "timeUnixNano".into(),
        Value::String(e.time_unix_nano.to_string()),
    );
    out.insert("name".into(), Value::String(e.name.clone()));
    if !e.attributes.is_empty() {
        out.insert("attributes".into(), key_values(&e.attributes));
    }
    put_u32(
        &mut out,
        "droppedAttributesCount",
        e.dropped_attributes_count,
    );
    Value::Object(out)
}

fn link_json(l: &span::Link) -> Value {
    let mut out = Map::new();
    out.insert("traceId".into(), Value::String(hex(&l.trace_id)));
    out.insert("spanId".into(), Value::String(hex(&l.span_id)));
    put_str(&mut out, "traceState", &l.trace_state);
    if !l.attributes.is_empty() {
        out.insert("attributes".into(), key_values(&l.attributes));
    }
    put_u32(
        &mut out,
        "droppedAttributesCount",
        l.dropped_attributes_count,
    );
    put_u32(&mut out, "flags", l.flags);
    Value::Object(out)
}

fn key_values(list: &[KeyValue]) -> Value {
    Value::Array(
        list.iter()
            .map(|kv| {
                json!({
                    "key": kv.key,
                    "value": kv.value.as_ref().map(any_value).unwrap_or_else(|| json!({})),
                })
            })
            .collect(),
    )
}

/// One `AnyValue`. An unset value is `{}`. Nesting is bounded by the ingest
/// limits on value depth, so the recursion is too.
pub fn any_value(v: &AnyValue) -> Value {
    let Some(value) = &v.value else {
        return json!({});
    };
    match value {
        any_value::Value::StringValue(s) => json!({ "stringValue": s }),
        any_value::Value::BoolValue(b) => json!({ "boolValue": b }),
        any_value::Value::IntValue(i) => json!({ "intValue": i.to_string() }),
        any_value::Value::DoubleValue(d) => json!({ "doubleValue": double(*d) }),
        any_value::Value::BytesValue(b) => {
            json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(b) })
        }
        any_value::Value::ArrayValue(a) => json!({
            "arrayValue": { "values": a.values.iter().map(any_value).collect::<Vec<_>>() }
        }),
        any_value::Value::KvlistValue(kvs) => json!({
            "kvlistValue": { "values": key_values(&kvs.values) }
        }),
        // An index into a profiles string table: meaningless for spans, and
        // never built by `otlp_proto`. Read as an empty value.
        any_value::Value::StringValueStrindex(_) => json!({}),
    }
}

/// A double as proto3 JSON writes it: a number, or one of the three strings
/// for the values JSON numbers cannot hold.
fn double(d: f64) -> Value {
    match serde_json::Number::from_f64(d) {
        Some(n) => Value::Number(n),
        None if d.is_nan() => Value::String("NaN".into()),
        None if d > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn put_str(out: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        out.insert(key.into(), Value::String(value.into()));
    }
}

fn put_u32(out: &mut Map<String, Value>, key: &str, value: u32) {
    if value != 0 {
        out.insert(key.into(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::trace::v1::Status;

    fn value(v: any_value::Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn any_values_follow_the_json_mapping() {
        assert_eq!(
            any_value(&value(any_value::Value::IntValue(-9_007_199_254_740_993))),
            json!({ "intValue": "-9007199254740993" }),
            "int64 as a string keeps precision JavaScript would lose"
        );
        assert_eq!(
            any_value(&value(any_value::Value::BytesValue(vec![0xde, 0xad, 0xbe]))),
            json!({ "bytesValue": "3q2+" })
        );
        assert_eq!(
            any_value(&value(any_value::Value::DoubleValue(f64::NEG_INFINITY))),
            json!({ "doubleValue": "-Infinity" })
        );
        assert_eq!(
            any_value(&value(any_value::Value::DoubleValue(f64::NAN))),
            json!({ "doubleValue": "NaN" })
        );
        assert_eq!(
            any_value(&value(any_value::Value::DoubleValue(0.25))),
            json!({ "doubleValue": 0.25 })
        );
        assert_eq!(any_value(&AnyValue { value: None }), json!({}));
        let nested = value(any_value::Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "list".into(),
                value: Some(value(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value(any_value::Value::BoolValue(true))],
                }))),
                ..KeyValue::default()
            }],
        }));
        assert_eq!(
            any_value(&nested),
            json!({ "kvlistValue": { "values": [
                { "key": "list", "value": { "arrayValue": { "values": [ { "boolValue": true } ] } } }
            ] } })
        );
    }

    #[test]
    fn span_ids_are_hex_enums_are_numbers_and_defaults_are_omitted() {
        let s = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            name: "GET /".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_001,
            end_time_unix_nano: 1_700_000_000_000_000_002,
            status: Some(Status {
                message: String::new(),
                code: 2,
            }),
            ..Span::default()
        };
        let out = span_json(&s);
        assert_eq!(out["traceId"], "abababababababababababababababab");
        assert_eq!(out["spanId"], "0101010101010101");
        assert_eq!(out["kind"], 2);
        assert_eq!(out["startTimeUnixNano"], "1700000000000000001");
        assert_eq!(out["status"], json!({ "code": 2 }));
        for absent in ["parentSpanId", "traceState", "flags", "attributes", "links"] {
            assert!(
                out.get(absent).is_none(),
                "{absent} should be omitted: {out}"
            );
        }
    }
}
