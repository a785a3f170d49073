//! OTLP/JSON decoding: the "JSON Protobuf Encoding" of the OTLP specification.
//!
//! The request body is parsed by serde_json into borrowed wire structs
//! (`wire`), then converted record by record into a
//! [`tracewarden_model::Batch`]. What the mapping allows, and this decoder
//! therefore reads:
//!
//! - keys in lowerCamelCase, and the proto field names (snake_case), which
//!   protobuf JSON parsers must also accept; unknown keys are skipped;
//! - `null` for any field, meaning the field's default;
//! - trace and span ids as hex (either case), not base64 as in the generic
//!   protobuf mapping;
//! - 64-bit integers (times, `intValue`) as decimal strings or numbers;
//! - enums as numbers or as their names (`"SPAN_KIND_SERVER"`);
//! - doubles as numbers or strings, including `"NaN"`, `"Infinity"` and
//!   `"-Infinity"`; `bytesValue` as base64.
//!
//! Errors come at two levels. Bytes that are not JSON, or JSON of the wrong
//! shape (`resourceSpans` not an array, say), fail the request with
//! [`DecodeError::Malformed`] carrying serde_json's line and column. A bad
//! record (an id of the wrong length or not hex, an all-zero id, a time that
//! is not an integer, a bad attribute value) is rejected alone and counted in
//! [`Decoded`]; the rest of the batch is kept. An enum number OTLP does not
//! define keeps its record, read as unspecified, with a warning.
//!
//! Nesting is bounded twice: serde_json stops at 128 levels (no stack
//! overflow), and [`Limits::max_value_depth`] rejects records with deeply
//! nested values. Records are not normalised here; the pipeline does that.

mod scalar;
mod shape;
mod value;
mod wire;

use std::sync::Arc;

use tracewarden_model::{
    Event, IdError, Link, LogRecord, Resource, ResourceLogs, ResourceSpans, Scope, ScopeLogs,
    ScopeSpans, Span, SpanId, SpanKind, Status, StatusCode, Str, TraceId,
};

pub(crate) use scalar::{Scalar, excerpt};
use shape::object_from_slice;
pub(crate) use shape::{list, list_from_slice, object};
use wire::{
    LogsRequest, RawEvent, RawLink, RawLogRecord, RawResource, RawScope, RawSpan, RawStatus,
    TracesRequest,
};

use crate::{DecodeError, Decoded, Limits};

const FORMAT: &str = "OTLP/JSON";

const SPAN_KIND_NAMES: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

const STATUS_CODE_NAMES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

const SEVERITY_NUMBER_NAMES: [&str; 25] = [
    "SEVERITY_NUMBER_UNSPECIFIED",
    "SEVERITY_NUMBER_TRACE",
    "SEVERITY_NUMBER_TRACE2",
    "SEVERITY_NUMBER_TRACE3",
    "SEVERITY_NUMBER_TRACE4",
    "SEVERITY_NUMBER_DEBUG",
    "SEVERITY_NUMBER_DEBUG2",
    "SEVERITY_NUMBER_DEBUG3",
    "SEVERITY_NUMBER_DEBUG4",
    "SEVERITY_NUMBER_INFO",
    "SEVERITY_NUMBER_INFO2",
    "SEVERITY_NUMBER_INFO3",
    "SEVERITY_NUMBER_INFO4",
    "SEVERITY_NUMBER_WARN",
    "SEVERITY_NUMBER_WARN2",
    "SEVERITY_NUMBER_WARN3",
    "SEVERITY_NUMBER_WARN4",
    "SEVERITY_NUMBER_ERROR",
    "SEVERITY_NUMBER_ERROR2",
    "SEVERITY_NUMBER_ERROR3",
    "SEVERITY_NUMBER_ERROR4",
    "SEVERITY_NUMBER_FATAL",
    "SEVERITY_NUMBER_FATAL2",
    "SEVERITY_NUMBER_FATAL3",
    "SEVERITY_NUMBER_FATAL4",
];

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (the body of
/// `POST /v1/traces` with `Content-Type: application/json`).
pub fn decode_traces(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let request: TracesRequest<'_> =
        object_from_slice(body).map_err(|e| DecodeError::malformed(FORMAT, e.to_string()))?;
    let mut decoded = Decoded::default();
    for raw_resource_spans in request.resource_spans {
        let resource = resource(
            raw_resource_spans.resource,
            raw_resource_spans.schema_url,
            limits,
            &mut decoded,
        );
        let mut scope_spans = Vec::with_capacity(raw_resource_spans.scope_spans.len());
        for raw_scope_spans in raw_resource_spans.scope_spans {
            let scope = scope(
                raw_scope_spans.scope,
                raw_scope_spans.schema_url,
                limits,
                &mut decoded,
            );
            let mut spans = Vec::with_capacity(raw_scope_spans.spans.len());
            for raw in raw_scope_spans.spans {
                let checked = span(raw, &mut decoded).and_then(|mut span| {
                    limits.apply_to_span(&mut span, &mut decoded)?;
                    Ok(span)
                });
                match checked {
                    Ok(span) => spans.push(span),
                    Err(why) => decoded.reject_span(why),
                }
            }
            // A scope left without spans (all rejected, or none sent) carries nothing.
            if !spans.is_empty() {
                scope_spans.push(ScopeSpans {
                    scope: Arc::clone(&scope),
                    spans,
                });
            }
        }
        if !scope_spans.is_empty() {
            decoded.batch.resource_spans.push(ResourceSpans {
                resource,
                scope_spans,
            });
        }
    }
    Ok(decoded)
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest` (the body of
/// `POST /v1/logs` with `Content-Type: application/json`).
pub fn decode_logs(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let request: LogsRequest<'_> =
        object_from_slice(body).map_err(|e| DecodeError::malformed(FORMAT, e.to_string()))?;
    let mut decoded = Decoded::default();
    for raw_resource_logs in request.resource_logs {
        let resource = resource(
            raw_resource_logs.resource,
            raw_resource_logs.schema_url,
            limits,
            &mut decoded,
        );
        let mut scope_logs = Vec::with_capacity(raw_resource_logs.scope_logs.len());
        for raw_scope_logs in raw_resource_logs.scope_logs {
            let scope = scope(
                raw_scope_logs.scope,
                raw_scope_logs.schema_url,
                limits,
                &mut decoded,
            );
            let mut log_records = Vec::with_capacity(raw_scope_logs.log_records.len());
            for raw in raw_scope_logs.log_records {
                let checked = log_record(raw, &mut decoded).and_then(|mut log| {
                    limits.apply_to_log(&mut log, &mut decoded)?;
                    Ok(log)
                });
                match checked {
                    Ok(log) => log_records.push(log),
                    Err(why) => decoded.reject_log(why),
                }
            }
            if !log_records.is_empty() {
                scope_logs.push(ScopeLogs {
                    scope: Arc::clone(&scope),
                    log_records,
                });
            }
        }
        if !scope_logs.is_empty() {
            decoded.batch.resource_logs.push(ResourceLogs {
                resource,
                scope_logs,
            });
        }
    }
    Ok(decoded)
}

/// A resource is never rejected (its records would all be lost): a bad
/// field is read as its default, with a warning.
fn resource(
    raw: Option<RawResource<'_>>,
    schema_url: Scalar<'_>,
    limits: &Limits,
    decoded: &mut Decoded,
) -> Arc<Resource> {
    let raw = raw.unwrap_or_default();
    let mut resource = Resource {
        schema_url: lenient_string(&schema_url, "resource schemaUrl", decoded),
        dropped_attributes_count: lenient_u32(
            &raw.dropped_attributes_count,
            "resource droppedAttributesCount",
            decoded,
        ),
        ..Resource::default()
    };
    resource.attributes =
        raw.attributes
            .into_lenient("resource", &mut resource.dropped_attributes_count, decoded);
    limits.apply_to_resource(&mut resource, decoded);
    Arc::new(resource)
}

/// The instrumentation scope, with the schema URL of its `ScopeSpans` or
/// `ScopeLogs`; as lenient as [`resource`].
fn scope(
    raw: Option<RawScope<'_>>,
    schema_url: Scalar<'_>,
    limits: &Limits,
    decoded: &mut Decoded,
) -> Arc<Scope> {
    let raw = raw.unwrap_or_default();
    let mut scope = Scope {
        name: lenient_string(&raw.name, "scope name", decoded),
        version: lenient_string(&raw.version, "scope version", decoded),
        schema_url: lenient_string(&schema_url, "scope schemaUrl", decoded),
        dropped_attributes_count: lenient_u32(
            &raw.dropped_attributes_count,
            "scope droppedAttributesCount",
            decoded,
        ),
        ..Scope::default()
    };
    scope.attributes =
        raw.attributes
            .into_lenient("scope", &mut scope.dropped_attributes_count, decoded);
    limits.apply_to_scope(&mut scope, decoded);
    Arc::new(scope)
}

fn lenient_string(raw: &Scalar<'_>, field: &str, decoded: &mut Decoded) -> Str {
    raw.string(field).map(Str::from).unwrap_or_else(|why| {
        decoded.warn(why);
        Str::default()
    })
}

fn lenient_u32(raw: &Scalar<'_>, field: &str, decoded: &mut Decoded) -> u32 {
    raw.uint32(field).unwrap_or_else(|why| {
        decoded.warn(why);
        0
    })
}

/// Converts one span; `Err` is why it is rejected.
fn span(raw: RawSpan<'_>, decoded: &mut Decoded) -> Result<Span, String> {
    let trace_id = required_id(&raw.trace_id, "traceId", TraceId::from_hex)?;
    let span_id = required_id(&raw.span_id, "spanId", SpanId::from_hex)?;
    let mut span = Span::new(trace_id, span_id, Str::from(raw.name.string("span name")?));
    span.parent_span_id = optional_id(&raw.parent_span_id, "parentSpanId", SpanId::from_hex)?;
    span.trace_state = Str::from(raw.trace_state.string("traceState")?);
    span.flags = raw.flags.uint32("span flags")?;
    span.kind = match raw
        .kind
        .enumeration(&SPAN_KIND_NAMES)
        .and_then(SpanKind::from_i32)
    {
        Some(kind) => kind,
        None => {
            decoded.warn(format!(
                "span kind {} is not an OTLP SpanKind; read as unspecified",
                raw.kind.describe()
            ));
            SpanKind::Unspecified
        }
    };
    span.start_time_unix_nano = raw.start_time_unix_nano.uint64("startTimeUnixNano")?;
    span.end_time_unix_nano = raw.end_time_unix_nano.uint64("endTimeUnixNano")?;
    span.attributes = raw.attributes.into_record()?;
    span.dropped_attributes_count = raw
        .dropped_attributes_count
        .uint32("droppedAttributesCount")?;
    span.events = raw
        .events
        .into_iter()
        .map(event)
        .collect::<Result<_, _>>()?;
    span.dropped_events_count = raw.dropped_events_count.uint32("droppedEventsCount")?;
    span.dropped_links_count = raw.dropped_links_count.uint32("droppedLinksCount")?;
    // A bad link is dropped and counted, the span kept: the link only points
    // elsewhere, and the protobuf decoder does the same.
    span.links = Vec::with_capacity(raw.links.len());
    for raw_link in raw.links {
        match link(raw_link) {
            Ok(link) => span.links.push(link),
            Err(why) => {
                span.dropped_links_count = span.dropped_links_count.saturating_add(1);
                decoded.warn(format!("link dropped: {why}"));
            }
        }
    }
    if let Some(status) = raw.status {
        span.status = self::status(status, decoded)?;
    }
    Ok(span)
}

fn event(raw: RawEvent<'_>) -> Result<Event, String> {
    Ok(Event {
        time_unix_nano: raw.time_unix_nano.uint64("event timeUnixNano")?,
        name: Str::from(raw.name.string("event name")?),
        attributes: raw
            .attributes
            .into_record()
            .map_err(|why| format!("event {why}"))?,
        dropped_attributes_count: raw
            .dropped_attributes_count
            .uint32("event droppedAttributesCount")?,
    })
}

/// A link; an invalid span context is an error, and the caller drops the link.
fn link(raw: RawLink<'_>) -> Result<Link, String> {
    Ok(Link {
        trace_id: required_id(&raw.trace_id, "link traceId", TraceId::from_hex)?,
        span_id: required_id(&raw.span_id, "link spanId", SpanId::from_hex)?,
        trace_state: Str::from(raw.trace_state.string("link traceState")?),
        attributes: raw
            .attributes
            .into_record()
            .map_err(|why| format!("link {why}"))?,
        dropped_attributes_count: raw
            .dropped_attributes_count
            .uint32("link droppedAttributesCount")?,
        flags: raw.flags.uint32("link flags")?,
    })
}

fn status(raw: RawStatus<'_>, decoded: &mut Decoded) -> Result<Status, String> {
    let code = match raw
        .code
        .enumeration(&STATUS_CODE_NAMES)
        .and_then(StatusCode::from_i32)
    {
        Some(code) => code,
        None => {
            decoded.warn(format!(
                "status code {} is not an OTLP StatusCode; read as unset",
                raw.code.describe()
            ));
            StatusCode::Unset
        }
    };
    Ok(Status {
        code,
        message: Str::from(raw.message.string("status message")?),
    })
}

/// Converts one log record; `Err` is why it is rejected.
fn log_record(raw: RawLogRecord<'_>, decoded: &mut Decoded) -> Result<LogRecord, String> {
    let severity_number = match raw.severity_number.enumeration(&SEVERITY_NUMBER_NAMES) {
        Some(n) if (0..=24).contains(&n) => n,
        _ => {
            decoded.warn(format!(
                "severity number {} is not an OTLP SeverityNumber; read as unspecified",
                raw.severity_number.describe()
            ));
            0
        }
    };
    Ok(LogRecord {
        time_unix_nano: raw.time_unix_nano.uint64("timeUnixNano")?,
        observed_time_unix_nano: raw.observed_time_unix_nano.uint64("observedTimeUnixNano")?,
        severity_number,
        severity_text: Str::from(raw.severity_text.string("severityText")?),
        body: match raw.body {
            Some(body) => body.0.map_err(|why| format!("log body: {why}"))?,
            None => tracewarden_model::AnyValue::Empty,
        },
        attributes: raw.attributes.into_record()?,
        original_attributes: Vec::new(),
        dropped_attributes_count: raw
            .dropped_attributes_count
            .uint32("droppedAttributesCount")?,
        flags: raw.flags.uint32("log flags")?,
        // A log record need not belong to a trace: "" means none.
        trace_id: optional_id(&raw.trace_id, "traceId", TraceId::from_hex)?,
        span_id: optional_id(&raw.span_id, "spanId", SpanId::from_hex)?,
        event_name: Str::from(raw.event_name.string("eventName")?),
    })
}

/// An id that must be present and valid (a span's own trace and span id).
fn required_id<T>(
    raw: &Scalar<'_>,
    field: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, String> {
    match raw {
        Scalar::Str(text) => parse(text).map_err(|e| format!("{field}: {e}")),
        Scalar::Null => Err(format!("{field} is missing")),
        other => Err(format!(
            "{field} must be a hex string, not {}",
            other.type_name()
        )),
    }
}

/// An id that may be absent: missing, `""` and all zeroes mean none (the
/// OpenTelemetry Collector treats an all-zero id as empty too).
fn optional_id<T>(
    raw: &Scalar<'_>,
    field: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<Option<T>, String> {
    match raw {
        Scalar::Null => Ok(None),
        Scalar::Str(text) if text.is_empty() => Ok(None),
        Scalar::Str(text) => match parse(text) {
            Ok(id) => Ok(Some(id)),
            Err(IdError::Zero { .. }) => Ok(None),
            Err(e) => Err(format!("{field}: {e}")),
        },
        other => Err(format!(
            "{field} must be a hex string, not {}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracewarden_model::AnyValue;

    use super::*;

    const TRACE: &str = "5b8efff798038103d269b633813fc60c";

    fn traces(json: &str) -> Decoded {
        decode_traces(json.as_bytes(), &Limits::default()).unwrap()
    }

    fn one_span(span_json: &str) -> Decoded {
        traces(&format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span_json}]}}]}}]}}"#
        ))
    }

    #[test]
    fn minimal_span_decodes_with_defaults() {
        let decoded = one_span(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b174"}}"#
        ));
        let span = &decoded.batch.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.to_hex(), TRACE);
        assert_eq!(span.name, "");
        assert_eq!(span.kind, SpanKind::Unspecified);
        assert_eq!(span.parent_span_id, None);
        assert_eq!(decoded.rejected_spans, 0);
    }

    #[test]
    fn zero_parent_id_means_root() {
        let decoded = one_span(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b174","parentSpanId":"0000000000000000"}}"#
        ));
        assert!(decoded.batch.resource_spans[0].scope_spans[0].spans[0].is_root());
    }

    #[test]
    fn missing_ids_reject_the_span() {
        let decoded = one_span(r#"{"spanId":"eee19b7ec3c1b174"}"#);
        assert_eq!(decoded.rejected_spans, 1);
        assert_eq!(decoded.messages(), ["traceId is missing"]);
        assert!(decoded.batch.resource_spans.is_empty());
    }

    #[test]
    fn bad_link_is_dropped_and_the_span_kept() {
        let decoded = one_span(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b174","links":[{{"traceId":"{TRACE}","spanId":"xyz"}},{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b173"}}]}}"#
        ));
        assert_eq!(decoded.rejected_spans, 0);
        assert_eq!(decoded.warnings, 1);
        assert!(
            decoded.messages()[0].starts_with("link dropped: link spanId:"),
            "{:?}",
            decoded.messages()
        );
        let span = &decoded.batch.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.links.len(), 1);
        assert_eq!(span.dropped_links_count, 1);
    }

    #[test]
    fn limits_are_applied_to_spans() {
        let limits = Limits {
            max_attributes_per_record: 1,
            ..Limits::default()
        };
        let json = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b174",
            "attributes":[{{"key":"a","value":{{"intValue":1}}}},{{"key":"b","value":{{"intValue":2}}}}]}}]}}]}}]}}"#
        );
        let decoded = decode_traces(json.as_bytes(), &limits).unwrap();
        let span = &decoded.batch.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.attributes,
            vec![tracewarden_model::KeyValue::new("a", AnyValue::Int(1))]
        );
        assert_eq!(span.dropped_attributes_count, 1);
        assert_eq!(decoded.warnings, 1);
    }

    #[test]
    fn scope_and_resource_share_one_arc_per_group() {
        let span = format!(r#"{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b174"}}"#);
        let decoded = traces(&format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},
            "schemaUrl":"https://opentelemetry.io/schemas/1.4.0",
            "scopeSpans":[{{"scope":{{"name":"lib"}},"schemaUrl":"s","spans":[{span},{span}]}}]}}]}}"#
        ));
        let rs = &decoded.batch.resource_spans[0];
        assert_eq!(rs.resource.service_name(), "svc");
        assert_eq!(
            rs.resource.schema_url,
            "https://opentelemetry.io/schemas/1.4.0"
        );
        assert_eq!(rs.scope_spans[0].scope.name, "lib");
        assert_eq!(rs.scope_spans[0].scope.schema_url, "s");
        assert_eq!(rs.scope_spans[0].spans.len(), 2);
    }

    #[test]
    fn bad_resource_fields_warn_instead_of_rejecting() {
        let decoded = traces(&format!(
            r#"{{"resourceSpans":[{{"resource":{{"droppedAttributesCount":"many"}},"schemaUrl":5,
            "scopeSpans":[{{"scope":{{"name":7}},"spans":[{{"traceId":"{TRACE}","spanId":"eee19b7ec3c1b174"}}]}}]}}]}}"#
        ));
        assert_eq!(decoded.batch.span_count(), 1);
        assert_eq!(decoded.warnings, 3);
        assert_eq!(
            decoded.batch.resource_spans[0].scope_spans[0].scope.name,
            ""
        );
    }
}
