//! The OTLP protobuf decoder against prost: requests built with
//! opentelemetry-proto's types and encoded by prost must decode to what a
//! straightforward conversion of prost's own decoding gives, field by field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as PbAnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue as PbKeyValue,
    KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{
    LogRecord as PbLogRecord, ResourceLogs as PbResourceLogs, ScopeLogs,
};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::span::{Event as PbEvent, Link as PbLink};
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans as PbResourceSpans, ScopeSpans, Span as PbSpan, Status as PbStatus,
};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use tracewarden_ingest::otlp::proto::{decode_logs, decode_traces};
use tracewarden_ingest::{Decoded, Limits};
use tracewarden_model::{
    AnyValue, Batch, Event, KeyValue, Link, LogRecord, Resource, ResourceLogs, ResourceSpans,
    Scope, ScopeLogs as ModelScopeLogs, ScopeSpans as ModelScopeSpans, Span, SpanId, SpanKind,
    Status, StatusCode, Str, TraceId,
};

// ---------------------------------------------------------------------------
// The reference: prost's decoding, converted by the simplest code that
// follows the decoder's documented rules.
// ---------------------------------------------------------------------------

fn ref_value(value: &PbAnyValue) -> AnyValue {
    match &value.value {
        None => AnyValue::Empty,
        Some(Value::StringValue(s)) => AnyValue::Str(Str::from(s.as_str())),
        Some(Value::BoolValue(b)) => AnyValue::Bool(*b),
        Some(Value::IntValue(i)) => AnyValue::Int(*i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(*d),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b.clone()),
        Some(Value::ArrayValue(a)) => AnyValue::Array(a.values.iter().map(ref_value).collect()),
        Some(Value::KvlistValue(kvs)) => AnyValue::KvList(ref_attributes(&kvs.values)),
        Some(Value::StringValueStrindex(_)) => AnyValue::Empty,
    }
}

fn ref_attributes(kvs: &[PbKeyValue]) -> Vec<KeyValue> {
    kvs.iter()
        .map(|kv| KeyValue {
            key: Str::from(kv.key.as_str()),
            value: kv.value.as_ref().map(ref_value).unwrap_or_default(),
        })
        .collect()
}

fn ref_resource(
    resource: Option<&PbResource>,
    schema_url: &str,
    limits: &Limits,
    sink: &mut Decoded,
) -> Resource {
    let mut out = Resource {
        schema_url: schema_url.into(),
        ..Resource::default()
    };
    if let Some(r) = resource {
        out.attributes = ref_attributes(&r.attributes);
        out.dropped_attributes_count = r.dropped_attributes_count;
    }
    limits.apply_to_resource(&mut out, sink);
    out
}

fn ref_scope(
    scope: Option<&InstrumentationScope>,
    schema_url: &str,
    limits: &Limits,
    sink: &mut Decoded,
) -> Scope {
    let mut out = Scope {
        schema_url: schema_url.into(),
        ..Scope::default()
    };
    if let Some(s) = scope {
        out.name = s.name.as_str().into();
        out.version = s.version.as_str().into();
        out.attributes = ref_attributes(&s.attributes);
        out.dropped_attributes_count = s.dropped_attributes_count;
    }
    limits.apply_to_scope(&mut out, sink);
    out
}

fn ref_parent(bytes: &[u8]) -> Result<Option<SpanId>, ()> {
    if bytes.is_empty() || bytes == [0; 8] {
        return Ok(None);
    }
    SpanId::from_slice(bytes).map(Some).map_err(drop)
}

fn ref_span(span: &PbSpan, limits: &Limits, sink: &mut Decoded) -> Option<Span> {
    let trace_id = TraceId::from_slice(&span.trace_id).ok()?;
    let span_id = SpanId::from_slice(&span.span_id).ok()?;
    let parent_span_id = ref_parent(&span.parent_span_id).ok()?;
    let mut dropped_links_count = span.dropped_links_count;
    let mut links = Vec::new();
    for link in &span.links {
        match (
            TraceId::from_slice(&link.trace_id),
            SpanId::from_slice(&link.span_id),
        ) {
            (Ok(trace_id), Ok(span_id)) => links.push(Link {
                trace_id,
                span_id,
                trace_state: link.trace_state.as_str().into(),
                attributes: ref_attributes(&link.attributes),
                dropped_attributes_count: link.dropped_attributes_count,
                flags: link.flags,
            }),
            _ => dropped_links_count += 1,
        }
    }
    let status = span.status.clone().unwrap_or_default();
    let mut out = Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state.as_str().into(),
        flags: span.flags,
        name: span.name.as_str().into(),
        kind: SpanKind::from_i32(span.kind).unwrap_or(SpanKind::Unspecified),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: ref_attributes(&span.attributes),
        original_attributes: Vec::new(),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|e| Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.as_str().into(),
                attributes: ref_attributes(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count,
        status: Status {
            code: StatusCode::from_i32(status.code).unwrap_or(StatusCode::Unset),
            message: status.message.as_str().into(),
        },
    };
    limits.apply_to_span(&mut out, sink).ok()?;
    Some(out)
}

/// The reference batch and its count of rejected spans.
fn reference_traces(body: &[u8], limits: &Limits) -> (Batch, u64) {
    let request = ExportTraceServiceRequest::decode(body).expect("prost decodes the request");
    let mut sink = Decoded::default();
    let mut rejected = 0;
    let mut batch = Batch::default();
    for rs in &request.resource_spans {
        let resource = ref_resource(rs.resource.as_ref(), &rs.schema_url, limits, &mut sink);
        let mut scope_spans = Vec::new();
        for ss in &rs.scope_spans {
            let mut spans = Vec::new();
            for span in &ss.spans {
                match ref_span(span, limits, &mut sink) {
                    Some(span) => spans.push(span),
                    None => rejected += 1,
                }
            }
            let scope = ref_scope(ss.scope.as_ref(), &ss.schema_url, limits, &mut sink);
            scope_spans.push(ModelScopeSpans {
                scope: Arc::new(scope),
                spans,
            });
        }
        batch.resource_spans.push(ResourceSpans {
            resource: Arc::new(resource),
            scope_spans,
        });
    }
    (batch, rejected)
}

fn ref_optional_id<T>(
    bytes: &[u8],
    len: usize,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, ()> {
    if bytes.is_empty() || (bytes.len() == len && bytes.iter().all(|b| *b == 0)) {
        return Ok(None);
    }
    parse(bytes).map(Some).ok_or(())
}

fn ref_log(log: &PbLogRecord, limits: &Limits, sink: &mut Decoded) -> Option<LogRecord> {
    let trace_id = ref_optional_id(&log.trace_id, 16, |b| TraceId::from_slice(b).ok()).ok()?;
    let span_id = ref_optional_id(&log.span_id, 8, |b| SpanId::from_slice(b).ok()).ok()?;
    let mut out = LogRecord {
        time_unix_nano: log.time_unix_nano,
        observed_time_unix_nano: log.observed_time_unix_nano,
        severity_number: log.severity_number,
        severity_text: log.severity_text.as_str().into(),
        body: log.body.as_ref().map(ref_value).unwrap_or_default(),
        attributes: ref_attributes(&log.attributes),
        original_attributes: Vec::new(),
        dropped_attributes_count: log.dropped_attributes_count,
        flags: log.flags,
        trace_id,
        span_id,
        event_name: log.event_name.as_str().into(),
    };
    limits.apply_to_log(&mut out, sink).ok()?;
    if !(0..=24).contains(&out.severity_number) {
        out.severity_number = 0;
    }
    Some(out)
}

fn reference_logs(body: &[u8], limits: &Limits) -> (Batch, u64) {
    let request = ExportLogsServiceRequest::decode(body).expect("prost decodes the request");
    let mut sink = Decoded::default();
    let mut rejected = 0;
    let mut batch = Batch::default();
    for rl in &request.resource_logs {
        let resource = ref_resource(rl.resource.as_ref(), &rl.schema_url, limits, &mut sink);
        let mut scope_logs = Vec::new();
        for sl in &rl.scope_logs {
            let mut log_records = Vec::new();
            for log in &sl.log_records {
                match ref_log(log, limits, &mut sink) {
                    Some(log) => log_records.push(log),
                    None => rejected += 1,
                }
            }
            let scope = ref_scope(sl.scope.as_ref(), &sl.schema_url, limits, &mut sink);
            scope_logs.push(ModelScopeLogs {
                scope: Arc::new(scope),
                log_records,
            });
        }
        batch.resource_logs.push(ResourceLogs {
            resource: Arc::new(resource),
            scope_logs,
        });
    }
    (batch, rejected)
}

/// Compares two batches record by record, so a failure names the first
/// record that differs instead of printing two whole batches.
#[track_caller]
fn assert_same_batch(ours: &Batch, reference: &Batch, context: &str) {
    assert_eq!(
        ours.resource_spans.len(),
        reference.resource_spans.len(),
        "{context}: resource spans"
    );
    for (i, (a, b)) in ours
        .resource_spans
        .iter()
        .zip(&reference.resource_spans)
        .enumerate()
    {
        assert_eq!(a.resource, b.resource, "{context}: resource {i}");
        assert_eq!(
            a.scope_spans.len(),
            b.scope_spans.len(),
            "{context}: resource {i} scope spans"
        );
        for (j, (x, y)) in a.scope_spans.iter().zip(&b.scope_spans).enumerate() {
            assert_eq!(x.scope, y.scope, "{context}: resource {i} scope {j}");
            assert_eq!(
                x.spans.len(),
                y.spans.len(),
                "{context}: resource {i} scope {j} span count"
            );
            for (k, (s, t)) in x.spans.iter().zip(&y.spans).enumerate() {
                assert_eq!(s, t, "{context}: resource {i} scope {j} span {k}");
            }
        }
    }
    assert_eq!(
        ours.resource_logs.len(),
        reference.resource_logs.len(),
        "{context}: resource logs"
    );
    for (i, (a, b)) in ours
        .resource_logs
        .iter()
        .zip(&reference.resource_logs)
        .enumerate()
    {
        assert_eq!(a.resource, b.resource, "{context}: resource {i}");
        assert_eq!(
            a.scope_logs.len(),
            b.scope_logs.len(),
            "{context}: resource {i} scope logs"
        );
        for (j, (x, y)) in a.scope_logs.iter().zip(&b.scope_logs).enumerate() {
            assert_eq!(x.scope, y.scope, "{context}: resource {i} scope {j}");
            assert_eq!(
                x.log_records.len(),
                y.log_records.len(),
                "{context}: resource {i} scope {j} log count"
            );
            for (k, (s, t)) in x.log_records.iter().zip(&y.log_records).enumerate() {
                assert_eq!(s, t, "{context}: resource {i} scope {j} log {k}");
            }
        }
    }
}

#[track_caller]
fn check_traces(body: &[u8], limits: &Limits, context: &str) -> Decoded {
    let decoded = decode_traces(body, limits).unwrap_or_else(|e| panic!("{context}: {e}"));
    let (reference, rejected) = reference_traces(body, limits);
    assert_same_batch(&decoded.batch, &reference, context);
    assert_eq!(
        decoded.rejected_spans,
        rejected,
        "{context}: rejected spans ({:?})",
        decoded.messages()
    );
    decoded
}

#[track_caller]
fn check_logs(body: &[u8], limits: &Limits, context: &str) -> Decoded {
    let decoded = decode_logs(body, limits).unwrap_or_else(|e| panic!("{context}: {e}"));
    let (reference, rejected) = reference_logs(body, limits);
    assert_same_batch(&decoded.batch, &reference, context);
    assert_eq!(
        decoded.rejected_logs,
        rejected,
        "{context}: rejected logs ({:?})",
        decoded.messages()
    );
    decoded
}

// ---------------------------------------------------------------------------
// Hand-written requests using every field.
// ---------------------------------------------------------------------------

fn kv(key: &str, value: Value) -> PbKeyValue {
    PbKeyValue {
        key: key.into(),
        value: Some(PbAnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn s(text: &str) -> Value {
    Value::StringValue(text.into())
}

/// One attribute of every `AnyValue` member, nested ones included.
fn every_value() -> Vec<PbKeyValue> {
    vec![
        kv("str", s("GET")),
        kv(
            "long.str.value.over.twenty.four.bytes",
            s("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"),
        ),
        kv("unicode", s("zürich — 東京 🚀")),
        kv("empty.str", s("")),
        kv("bool", Value::BoolValue(true)),
        kv("int", Value::IntValue(-9_007_199_254_740_993)),
        kv("int.max", Value::IntValue(i64::MAX)),
        kv("double", Value::DoubleValue(-0.125)),
        kv("bytes", Value::BytesValue(vec![0, 1, 0xfe, 0xff])),
        kv(
            "array",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    PbAnyValue {
                        value: Some(s("a")),
                    },
                    PbAnyValue {
                        value: Some(Value::IntValue(2)),
                    },
                    PbAnyValue { value: None },
                    PbAnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![PbAnyValue {
                                value: Some(Value::BoolValue(false)),
                            }],
                        })),
                    },
                ],
            }),
        ),
        kv(
            "kvlist",
            Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", s("x")),
                    kv(
                        "nested",
                        Value::KvlistValue(KeyValueList {
                            values: vec![kv("deepest", Value::DoubleValue(1e300))],
                        }),
                    ),
                ],
            }),
        ),
        PbKeyValue {
            key: "no.value".into(),
            value: None,
            key_strindex: 0,
        },
        PbKeyValue {
            key: "empty.value".into(),
            value: Some(PbAnyValue { value: None }),
            key_strindex: 0,
        },
        kv("http.response.status_code", Value::IntValue(200)),
    ]
}

fn trace_id(n: u8) -> Vec<u8> {
    let mut id = vec![0x4b; 16];
    id[15] = n;
    id
}

fn span_id(n: u8) -> Vec<u8> {
    let mut id = vec![0x5c; 8];
    id[7] = n;
    id
}

fn full_span() -> PbSpan {
    PbSpan {
        trace_id: trace_id(1),
        span_id: span_id(2),
        trace_state: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        parent_span_id: span_id(1),
        flags: 0x301,
        name: "GET /api/users/{id}".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_123_456_789,
        end_time_unix_nano: 1_700_000_000_223_456_789,
        attributes: every_value(),
        dropped_attributes_count: 3,
        events: vec![
            PbEvent {
                time_unix_nano: 1_700_000_000_150_000_000,
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", s("java.lang.IllegalStateException")),
                    kv(
                        "exception.stacktrace",
                        s("at com.example.Foo.bar(Foo.java:42)\n\tat ..."),
                    ),
                ],
                dropped_attributes_count: 1,
            },
            PbEvent {
                time_unix_nano: 0,
                name: String::new(),
                attributes: vec![],
                dropped_attributes_count: 0,
            },
        ],
        dropped_events_count: 4,
        links: vec![PbLink {
            trace_id: trace_id(9),
            span_id: span_id(9),
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", s("follows_from"))],
            dropped_attributes_count: 2,
            flags: 0x101,
        }],
        dropped_links_count: 5,
        status: Some(PbStatus {
            message: "upstream timed out".into(),
            code: 2,
        }),
    }
}

fn full_traces_request() -> ExportTraceServiceRequest {
    let root = PbSpan {
        trace_id: trace_id(1),
        span_id: span_id(1),
        name: "root".into(),
        kind: 1,
        ..PbSpan::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            PbResourceSpans {
                resource: Some(PbResource {
                    attributes: vec![
                        kv("service.name", s("checkout")),
                        kv("deployment.environment.name", s("prod")),
                        kv(
                            "host.tags",
                            Value::ArrayValue(ArrayValue {
                                values: vec![PbAnyValue {
                                    value: Some(s("eu")),
                                }],
                            }),
                        ),
                    ],
                    dropped_attributes_count: 7,
                    entity_refs: vec![EntityRef {
                        schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
                        r#type: "service".into(),
                        id_keys: vec!["service.name".into()],
                        description_keys: vec![],
                    }],
                }),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "io.opentelemetry.tomcat-10.0".into(),
                            version: "2.10.0-alpha".into(),
                            attributes: vec![kv("scope.attr", Value::IntValue(1))],
                            dropped_attributes_count: 6,
                        }),
                        spans: vec![full_span(), root],
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    },
                    ScopeSpans {
                        scope: None,
                        spans: vec![],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
            },
            PbResourceSpans {
                resource: None,
                scope_spans: vec![],
                schema_url: String::new(),
            },
        ],
    }
}

#[test]
fn every_trace_field_decodes_like_prost() {
    let body = full_traces_request().encode_to_vec();
    let decoded = check_traces(&body, &Limits::default(), "full request");
    assert_eq!(decoded.rejected_spans, 0);
    assert_eq!(decoded.warnings, 0, "{:?}", decoded.messages());

    // The reference could share a mistake with the decoder: pin the fields down.
    let batch = &decoded.batch;
    assert_eq!(batch.span_count(), 2);
    let rs = &batch.resource_spans[0];
    assert_eq!(rs.resource.service_name(), "checkout");
    assert_eq!(rs.resource.dropped_attributes_count, 7);
    assert_eq!(
        rs.resource.schema_url,
        "https://opentelemetry.io/schemas/1.27.0"
    );
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.name, "io.opentelemetry.tomcat-10.0");
    assert_eq!(ss.scope.version, "2.10.0-alpha");
    assert_eq!(
        ss.scope.attributes,
        vec![KeyValue::new("scope.attr", AnyValue::Int(1))]
    );
    assert_eq!(ss.scope.dropped_attributes_count, 6);
    assert_eq!(
        ss.scope.schema_url,
        "https://opentelemetry.io/schemas/1.26.0"
    );
    let span = &ss.spans[0];
    assert_eq!(span.trace_id.to_hex(), "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b01");
    assert_eq!(span.span_id.to_hex(), "5c5c5c5c5c5c5c02");
    assert_eq!(
        span.parent_span_id.map(|p| p.to_hex()).as_deref(),
        Some("5c5c5c5c5c5c5c01")
    );
    assert_eq!(span.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_eq!(span.flags, 0x301);
    assert_eq!(span.name, "GET /api/users/{id}");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.duration_nanos(), 100_000_000);
    assert_eq!(span.attributes.len(), every_value().len());
    assert_eq!(
        span.attribute("int"),
        Some(&AnyValue::Int(-9_007_199_254_740_993))
    );
    assert_eq!(span.attribute("double"), Some(&AnyValue::Double(-0.125)));
    assert_eq!(
        span.attribute("bytes"),
        Some(&AnyValue::Bytes(vec![0, 1, 0xfe, 0xff]))
    );
    assert_eq!(
        span.attribute("unicode").and_then(AnyValue::as_str),
        Some("zürich — 東京 🚀")
    );
    assert_eq!(span.attribute("no.value"), Some(&AnyValue::Empty));
    assert_eq!(span.attribute("array").map(AnyValue::depth), Some(2));
    assert_eq!(span.attribute("kvlist").map(AnyValue::depth), Some(2));
    assert_eq!(
        span.attribute("http.response.status_code"),
        Some(&AnyValue::Int(200))
    );
    assert_eq!(span.dropped_attributes_count, 3);
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.events[0].name, "exception");
    assert_eq!(span.events[0].time_unix_nano, 1_700_000_000_150_000_000);
    assert_eq!(span.events[0].dropped_attributes_count, 1);
    assert_eq!(span.dropped_events_count, 4);
    assert_eq!(
        span.links[0].trace_id.to_hex(),
        "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b09"
    );
    assert_eq!(span.links[0].flags, 0x101);
    assert_eq!(span.links[0].dropped_attributes_count, 2);
    assert_eq!(span.links[0].trace_state, "k=v");
    assert_eq!(span.dropped_links_count, 5);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "upstream timed out");
    let root = &ss.spans[1];
    assert!(root.is_root());
    assert_eq!(root.kind, SpanKind::Internal);
    assert!(rs.scope_spans[1].spans.is_empty());
    assert_eq!(*batch.resource_spans[1].resource, Resource::default());
}

#[test]
fn resource_and_scope_are_shared_by_their_spans() {
    let body = full_traces_request().encode_to_vec();
    let decoded = decode_traces(&body, &Limits::default()).unwrap();
    let spans: Vec<_> = decoded.batch.spans().collect();
    assert_eq!(spans.len(), 2);
    assert!(Arc::ptr_eq(spans[0].0, spans[1].0));
    assert!(Arc::ptr_eq(spans[0].1, spans[1].1));
}

fn full_logs_request() -> ExportLogsServiceRequest {
    let full = PbLogRecord {
        time_unix_nano: 1_700_000_000_000_000_001,
        observed_time_unix_nano: 1_700_000_000_000_000_002,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(PbAnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("msg", s("login failed for user alice")),
                    kv("attempt", Value::IntValue(3)),
                ],
            })),
        }),
        attributes: every_value(),
        dropped_attributes_count: 2,
        flags: 1,
        trace_id: trace_id(3),
        span_id: span_id(3),
        event_name: "auth.login.failed".into(),
    };
    let bare = PbLogRecord {
        body: Some(PbAnyValue {
            value: Some(s("plain text line")),
        }),
        trace_id: vec![0; 16],
        span_id: vec![0; 8],
        ..PbLogRecord::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![PbResourceLogs {
            resource: Some(PbResource {
                attributes: vec![kv("service.name", s("auth"))],
                dropped_attributes_count: 1,
                entity_refs: vec![],
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "auth-logger".into(),
                    version: "1".into(),
                    attributes: vec![kv("a", Value::BoolValue(true))],
                    dropped_attributes_count: 9,
                }),
                log_records: vec![full, bare],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
        }],
    }
}

#[test]
fn every_log_field_decodes_like_prost() {
    let body = full_logs_request().encode_to_vec();
    let decoded = check_logs(&body, &Limits::default(), "full logs request");
    assert_eq!(decoded.rejected_logs, 0);
    assert_eq!(decoded.warnings, 0, "{:?}", decoded.messages());
    let rl = &decoded.batch.resource_logs[0];
    assert_eq!(rl.resource.service_name(), "auth");
    assert_eq!(
        rl.resource.schema_url,
        "https://opentelemetry.io/schemas/1.27.0"
    );
    let sl = &rl.scope_logs[0];
    assert_eq!(sl.scope.name, "auth-logger");
    assert_eq!(sl.scope.dropped_attributes_count, 9);
    let log = &sl.log_records[0];
    assert_eq!(log.time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(log.observed_time_unix_nano, 1_700_000_000_000_000_002);
    assert_eq!(log.severity_number, 17);
    assert_eq!(log.severity_text, "ERROR");
    assert_eq!(log.body.depth(), 1);
    assert_eq!(log.attributes.len(), every_value().len());
    assert_eq!(log.dropped_attributes_count, 2);
    assert_eq!(log.flags, 1);
    assert_eq!(
        log.trace_id.map(|t| t.to_hex()).as_deref(),
        Some("4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b03")
    );
    assert_eq!(
        log.span_id.map(|s| s.to_hex()).as_deref(),
        Some("5c5c5c5c5c5c5c03")
    );
    assert_eq!(log.event_name, "auth.login.failed");
    let bare = &sl.log_records[1];
    assert_eq!(bare.body, AnyValue::from("plain text line"));
    assert_eq!((bare.trace_id, bare.span_id), (None, None));
}

#[test]
fn a_traces_body_is_not_a_logs_body() {
    let body = full_traces_request().encode_to_vec();
    assert!(decode_logs(&body, &Limits::default()).is_err());
}

// ---------------------------------------------------------------------------
// Protobuf merge rules: what prost does with repeated fields, we do too.
// ---------------------------------------------------------------------------

fn len_field(field: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

#[test]
fn a_message_sent_twice_is_merged_as_protobuf_says() {
    // Span A then span B in one Span field: scalars of B win where B sets
    // them, repeated fields are concatenated, status and values merge.
    let a = full_span();
    let b = PbSpan {
        trace_id: trace_id(7),
        span_id: vec![],
        name: "renamed".into(),
        kind: 3,
        attributes: vec![kv("str", Value::IntValue(1)), kv("second", s("b"))],
        events: vec![PbEvent {
            name: "later".into(),
            ..PbEvent::default()
        }],
        status: Some(PbStatus {
            message: String::new(),
            code: 1,
        }),
        flags: 0,
        ..PbSpan::default()
    };
    let mut span_bytes = a.encode_to_vec();
    span_bytes.extend(b.encode_to_vec());
    // A resource sent twice, and a scope: attributes concatenate.
    let resource_a = PbResource {
        attributes: vec![kv("service.name", s("one"))],
        ..PbResource::default()
    };
    let resource_b = PbResource {
        attributes: vec![kv("host.name", s("two"))],
        dropped_attributes_count: 4,
        ..PbResource::default()
    };
    let scope = InstrumentationScope {
        name: "s".into(),
        ..InstrumentationScope::default()
    };
    let mut scope_spans = len_field(1, &scope.encode_to_vec());
    scope_spans.extend(len_field(2, &span_bytes));
    scope_spans.extend(len_field(
        1,
        &InstrumentationScope {
            version: "v2".into(),
            ..InstrumentationScope::default()
        }
        .encode_to_vec(),
    ));
    let mut resource_spans = len_field(1, &resource_a.encode_to_vec());
    resource_spans.extend(len_field(2, &scope_spans));
    resource_spans.extend(len_field(1, &resource_b.encode_to_vec()));
    let body = len_field(1, &resource_spans);

    let decoded = check_traces(&body, &Limits::default(), "merged messages");
    let (resource, scope, span) = decoded.batch.spans().next().unwrap();
    assert_eq!(resource.attributes.len(), 2);
    assert_eq!(resource.dropped_attributes_count, 4);
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("s", "v2"));
    assert_eq!(span.name, "renamed");
    assert_eq!(span.trace_id.to_hex(), "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b07");
    assert_eq!(
        span.span_id.to_hex(),
        "5c5c5c5c5c5c5c02",
        "an empty bytes field is not encoded, so A's id stays"
    );
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.flags, 0x301);
    assert_eq!(span.attributes.len(), every_value().len() + 2);
    assert_eq!(span.events.len(), 3);
    assert_eq!(span.status.code, StatusCode::Ok);
    assert_eq!(span.status.message, "upstream timed out");
}

// ---------------------------------------------------------------------------
// Randomized requests.
// ---------------------------------------------------------------------------

struct Gen {
    rng: StdRng,
}

const WORDS: &[&str] = &[
    "",
    "GET",
    "/api/v1/users/42",
    "id=1 OR 1=1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "10.0.0.1",
    "ünïcödé",
    "exactly-24-bytes-long-xx",
    "exactly-25-bytes-long-xxx",
    "🚀🚀🚀🚀🚀🚀🚀",
];

const KEYS: &[&str] = &[
    "http.request.method",
    "url.path",
    "url.query",
    "http.response.status_code",
    "user_agent.original",
    "client.address",
    "enduser.id",
    "a",
    "a.custom.attribute.key.longer.than.the.inline.size",
];

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn word(&mut self) -> String {
        WORDS[self.below(WORDS.len())].to_string()
    }

    /// An id: usually valid, sometimes empty, short, long or all zeroes.
    fn id(&mut self, len: usize) -> Vec<u8> {
        match self.below(20) {
            0 => vec![],
            1 => vec![0; len],
            2 => vec![7; len - 1],
            3 => vec![7; len + 1],
            _ => (0..len).map(|_| self.rng.random::<u8>() | 1).collect(),
        }
    }

    fn value(&mut self, depth: usize) -> PbAnyValue {
        let kinds = if depth == 0 { 8 } else { 10 };
        let value = match self.below(kinds) {
            0 => None,
            1 | 2 => Some(Value::StringValue(self.word())),
            3 => Some(Value::BoolValue(self.chance(0.5))),
            4 => Some(Value::IntValue(self.rng.random::<i64>() >> self.below(64))),
            5 => Some(Value::DoubleValue(
                [0.0, -1.5, 1e-300, f64::MAX, f64::INFINITY][self.below(5)],
            )),
            6 => Some(Value::BytesValue(
                (0..self.below(40)).map(|_| self.rng.random()).collect(),
            )),
            7 => Some(Value::StringValueStrindex(self.below(5) as i32)),
            8 => Some(Value::ArrayValue(ArrayValue {
                values: (0..self.below(4)).map(|_| self.value(depth - 1)).collect(),
            })),
            _ => Some(Value::KvlistValue(KeyValueList {
                values: self.attributes(3, depth - 1),
            })),
        };
        PbAnyValue { value }
    }

    fn attributes(&mut self, max: usize, depth: usize) -> Vec<PbKeyValue> {
        (0..self.below(max + 1))
            .map(|_| PbKeyValue {
                key: KEYS[self.below(KEYS.len())].into(),
                value: if self.chance(0.05) {
                    None
                } else {
                    Some(self.value(depth))
                },
                key_strindex: 0,
            })
            .collect()
    }

    fn resource(&mut self) -> Option<PbResource> {
        self.chance(0.8).then(|| PbResource {
            attributes: self.attributes(6, 2),
            dropped_attributes_count: self.below(3) as u32,
            entity_refs: vec![],
        })
    }

    fn scope(&mut self) -> Option<InstrumentationScope> {
        self.chance(0.8).then(|| InstrumentationScope {
            name: self.word(),
            version: self.word(),
            attributes: self.attributes(4, 2),
            dropped_attributes_count: self.below(3) as u32,
        })
    }

    fn span(&mut self) -> PbSpan {
        PbSpan {
            trace_id: self.id(16),
            span_id: self.id(8),
            trace_state: self.word(),
            parent_span_id: if self.chance(0.3) { vec![] } else { self.id(8) },
            flags: self.rng.random::<u32>() >> self.below(32),
            name: self.word(),
            kind: self.below(8) as i32 - 1,
            start_time_unix_nano: self.rng.random(),
            end_time_unix_nano: self.rng.random(),
            attributes: self.attributes(14, 5),
            dropped_attributes_count: self.below(3) as u32,
            events: (0..self.below(4))
                .map(|_| PbEvent {
                    time_unix_nano: self.rng.random(),
                    name: self.word(),
                    attributes: self.attributes(4, 2),
                    dropped_attributes_count: self.below(2) as u32,
                })
                .collect(),
            dropped_events_count: self.below(3) as u32,
            links: (0..self.below(4))
                .map(|_| PbLink {
                    trace_id: self.id(16),
                    span_id: self.id(8),
                    trace_state: self.word(),
                    attributes: self.attributes(3, 1),
                    dropped_attributes_count: self.below(2) as u32,
                    flags: self.rng.random(),
                })
                .collect(),
            dropped_links_count: self.below(3) as u32,
            status: self.chance(0.7).then(|| PbStatus {
                message: self.word(),
                code: self.below(5) as i32 - 1,
            }),
        }
    }

    fn log(&mut self) -> PbLogRecord {
        PbLogRecord {
            time_unix_nano: self.rng.random(),
            observed_time_unix_nano: self.rng.random(),
            severity_number: self.below(28) as i32 - 1,
            severity_text: self.word(),
            body: self.chance(0.9).then(|| self.value(4)),
            attributes: self.attributes(10, 4),
            dropped_attributes_count: self.below(3) as u32,
            flags: self.rng.random(),
            trace_id: if self.chance(0.4) {
                vec![]
            } else {
                self.id(16)
            },
            span_id: if self.chance(0.4) { vec![] } else { self.id(8) },
            event_name: self.word(),
        }
    }

    /// Limits small enough that the caps and truncation are exercised.
    fn limits(&mut self) -> Limits {
        Limits {
            max_attributes_per_record: [1, 3, 8, 128][self.below(4)],
            max_attribute_value_bytes: [5, 24, 64 * 1024][self.below(3)],
            max_events_per_span: [0, 1, 2, 128][self.below(4)],
            max_links_per_span: [0, 1, 2, 128][self.below(4)],
            max_value_depth: 1 + self.below(4),
            ..Limits::default()
        }
    }

    fn traces_request(&mut self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: (0..self.below(4))
                .map(|_| PbResourceSpans {
                    resource: self.resource(),
                    scope_spans: (0..self.below(4))
                        .map(|_| ScopeSpans {
                            scope: self.scope(),
                            spans: (0..self.below(9)).map(|_| self.span()).collect(),
                            schema_url: self.word(),
                        })
                        .collect(),
                    schema_url: self.word(),
                })
                .collect(),
        }
    }

    fn logs_request(&mut self) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: (0..self.below(4))
                .map(|_| PbResourceLogs {
                    resource: self.resource(),
                    scope_logs: (0..self.below(4))
                        .map(|_| ScopeLogs {
                            scope: self.scope(),
                            log_records: (0..self.below(9)).map(|_| self.log()).collect(),
                            schema_url: self.word(),
                        })
                        .collect(),
                    schema_url: self.word(),
                })
                .collect(),
        }
    }
}

#[test]
fn random_trace_requests_decode_like_prost() {
    let mut totals = (0, 0);
    for seed in 0..400 {
        let mut g = Gen::new(seed);
        let limits = g.limits();
        let body = g.traces_request().encode_to_vec();
        let decoded = check_traces(&body, &limits, &format!("seed {seed}, {limits:?}"));
        totals.0 += decoded.batch.span_count();
        totals.1 += decoded.rejected_spans;
    }
    // The generator must exercise both paths, or the comparison proves little.
    assert!(
        totals.0 > 1000 && totals.1 > 300,
        "kept {}, rejected {}",
        totals.0,
        totals.1
    );
}

#[test]
fn random_log_requests_decode_like_prost() {
    let mut totals = (0, 0);
    for seed in 0..400 {
        let mut g = Gen::new(seed ^ 0x5eed);
        let limits = g.limits();
        let body = g.logs_request().encode_to_vec();
        let decoded = check_logs(&body, &limits, &format!("seed {seed}, {limits:?}"));
        totals.0 += decoded.batch.log_count();
        totals.1 += decoded.rejected_logs;
    }
    assert!(
        totals.0 > 1000 && totals.1 > 100,
        "kept {}, rejected {}",
        totals.0,
        totals.1
    );
}

#[test]
fn random_requests_survive_truncation_and_bit_flips() {
    for seed in 0..40 {
        let mut g = Gen::new(seed + 10_000);
        let limits = Limits::default();
        let traces = g.traces_request().encode_to_vec();
        let logs = g.logs_request().encode_to_vec();
        // About 500 cuts per request, so the test stays linear in its size;
        // proto_reject.rs cuts a smaller request at every byte.
        for cut in (0..traces.len()).step_by(traces.len() / 500 + 1) {
            // Either a framing error or a valid (shorter) request; never a panic.
            let _ = decode_traces(&traces[..cut], &limits);
        }
        for cut in (0..logs.len()).step_by(logs.len() / 500 + 1) {
            let _ = decode_logs(&logs[..cut], &limits);
        }
        for _ in 0..100 {
            let mut flipped = traces.clone();
            if flipped.is_empty() {
                break;
            }
            let at = g.below(flipped.len());
            flipped[at] ^= 1 << g.below(8);
            if let Ok(decoded) = decode_traces(&flipped, &limits) {
                // Every span announced is either kept or rejected, never more.
                assert!(
                    decoded.batch.span_count() as u64 + decoded.rejected_spans
                        <= flipped.len() as u64 / 2
                );
            }
        }
    }
}
