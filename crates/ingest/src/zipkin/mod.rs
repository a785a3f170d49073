//! Zipkin v2 JSON decoding: the body of `POST /api/v2/spans`, a JSON array
//! of spans as in Zipkin's `zipkin2-api.yaml`.
//!
//! # Mapping onto the OpenTelemetry model
//!
//! It follows the OpenTelemetry Collector's Zipkin receiver, with current
//! semantic-convention names where the Collector still writes legacy ones.
//!
//! | Zipkin | tracewarden |
//! | --- | --- |
//! | `localEndpoint.serviceName` | one resource per distinct name, attribute `service.name`; missing or empty: `unknown_service`. Spans keep their order within a service. |
//! | `traceId` (16 or 32 hex digits) | trace id; 64-bit ids are left-padded with zeroes to 128 bits |
//! | `id`, `parentId` | span id, parent span id (all zeroes, or equal to `id`, mean none) |
//! | `name` | name, as sent (Zipkin lower-cases names; nothing is changed here) |
//! | `kind` `CLIENT` `SERVER` `PRODUCER` `CONSUMER` | span kind; missing: unspecified (Zipkin local spans and in-flight spans have none) |
//! | `timestamp`, `duration` (microseconds) | start time, and end = start + duration, in nanoseconds; missing: 0 |
//! | `annotations[{timestamp, value}]` | events: time, name |
//! | `tags` | attributes, string values as sent (the pipeline's normaliser maps `http.status_code` and friends later) |
//! | tag `error` | status error, message the tag's value; the tag is kept |
//! | tags `otel.status_code`, `otel.status_description` | status code and message (the OpenTelemetry Zipkin exporter's encoding); removed from the attributes |
//! | tags `otel.scope.name`, `otel.scope.version` (or `otel.library.*`) | the instrumentation scope; removed from the attributes |
//! | `localEndpoint.ipv4` / `ipv6` | attribute `network.local.address` (ipv4 when both are sent) |
//! | `localEndpoint.port` | attribute `network.local.port` |
//! | `remoteEndpoint.serviceName` | attribute `service.peer.name` (the current name of `peer.service`) |
//! | `remoteEndpoint.ipv4` / `ipv6` | attribute `network.peer.address` (ipv4 when both are sent) |
//! | `remoteEndpoint.port` | attribute `network.peer.port` |
//! | on `CLIENT` spans, remote address and port | also `server.address`, `server.port` |
//! | on `SERVER` spans, remote address | also `client.address` |
//! | `shared: true` | attribute `zipkin.shared = true` (a server span sharing its id with the client's) |
//! | `debug: true` | attribute `zipkin.debug = true` (sampling was forced) |
//!
//! Endpoint attributes come before the tags, so that the attribute limit
//! drops tags rather than the addresses detection rules key on; an endpoint
//! attribute is not added when a tag of the same name is present (the
//! instrumentation said it more precisely). Port 0 means unknown and is
//! skipped.
//!
//! # Errors
//!
//! A body that is not JSON, or not an array of objects, fails the request
//! with [`DecodeError::Malformed`]. A span with a missing or bad id, a time
//! that is not a non-negative integer, or a tag that is an object or array
//! is rejected alone; the rest are kept. An unknown `kind` keeps the span,
//! as unspecified, with a warning. Tags that are numbers or booleans are
//! kept as their text.

mod wire;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use tracewarden_model::{
    AnyValue, Event, IdError, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId,
    SpanKind, Status, StatusCode, Str, TraceId, semconv,
};
use wire::{RawEndpoint, RawSpan, RawTags};

use crate::otlp::json::{Scalar, excerpt, list_from_slice};
use crate::{DecodeError, Decoded, Limits};

const FORMAT: &str = "Zipkin v2 JSON";

/// The service name of spans whose local endpoint names none, as the
/// OpenTelemetry SDKs and Collector use.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Attribute keys this mapping writes that `semconv` does not (yet) list.
pub const NETWORK_LOCAL_ADDRESS: &str = "network.local.address";
pub const NETWORK_LOCAL_PORT: &str = "network.local.port";
pub const ZIPKIN_SHARED: &str = "zipkin.shared";
pub const ZIPKIN_DEBUG: &str = "zipkin.debug";

/// Tags the OpenTelemetry Zipkin exporter writes to carry what Zipkin has
/// no field for; they become status and scope, not attributes.
const OTEL_STATUS_CODE: &str = "otel.status_code";
const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";
const OTEL_SCOPE_NAME: &str = "otel.scope.name";
const OTEL_SCOPE_VERSION: &str = "otel.scope.version";
const OTEL_LIBRARY_NAME: &str = "otel.library.name";
const OTEL_LIBRARY_VERSION: &str = "otel.library.version";

/// Decodes a Zipkin v2 JSON list of spans.
pub fn decode_spans(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let raw_spans: Vec<RawSpan<'_>> =
        list_from_slice(body).map_err(|e| DecodeError::malformed(FORMAT, e.to_string()))?;
    let mut decoded = Decoded::default();
    let mut services: Vec<ServiceSpans<'_>> = Vec::new();
    let mut by_name: HashMap<Cow<'_, str>, usize> = HashMap::new();
    for raw in raw_spans {
        let converted = span(raw, &mut decoded).and_then(|mut converted| {
            limits.apply_to_span(&mut converted.span, &mut decoded)?;
            Ok(converted)
        });
        let converted = match converted {
            Ok(converted) => converted,
            Err(why) => {
                decoded.reject_span(why);
                continue;
            }
        };
        let index = match by_name.get(converted.service.as_ref()) {
            Some(&index) => index,
            None => {
                services.push(ServiceSpans {
                    name: converted.service.clone(),
                    scopes: Vec::new(),
                });
                by_name.insert(converted.service, services.len() - 1);
                services.len() - 1
            }
        };
        if let Some(service) = services.get_mut(index) {
            service.push(converted.scope, converted.span);
        }
    }
    for service in services {
        let mut resource = Resource {
            attributes: vec![KeyValue::new(
                semconv::SERVICE_NAME,
                AnyValue::Str(Str::from(service.name.as_ref())),
            )],
            ..Resource::default()
        };
        limits.apply_to_resource(&mut resource, &mut decoded);
        let scope_spans = service
            .scopes
            .into_iter()
            .map(|(scope, spans)| {
                let mut scope = Scope {
                    name: scope.name,
                    version: scope.version,
                    ..Scope::default()
                };
                limits.apply_to_scope(&mut scope, &mut decoded);
                ScopeSpans {
                    scope: Arc::new(scope),
                    spans,
                }
            })
            .collect();
        decoded.batch.resource_spans.push(ResourceSpans {
            resource: Arc::new(resource),
            scope_spans,
        });
    }
    Ok(decoded)
}

/// The spans of one service, by instrumentation scope.
struct ServiceSpans<'a> {
    name: Cow<'a, str>,
    scopes: Vec<(ScopeKey, Vec<Span>)>,
}

impl ServiceSpans<'_> {
    fn push(&mut self, scope: ScopeKey, span: Span) {
        // Few scopes per service (usually one): a linear search is fastest.
        match self.scopes.iter_mut().find(|(key, _)| *key == scope) {
            Some((_, spans)) => spans.push(span),
            None => self.scopes.push((scope, vec![span])),
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct ScopeKey {
    name: Str,
    version: Str,
}

/// A converted span with what groups it.
struct Converted<'a> {
    service: Cow<'a, str>,
    scope: ScopeKey,
    span: Span,
}

/// Converts one span; `Err` is why it is rejected.
fn span<'a>(raw: RawSpan<'a>, decoded: &mut Decoded) -> Result<Converted<'a>, String> {
    let trace_id = required_id(&raw.trace_id, "traceId", TraceId::from_hex_padded)?;
    let span_id = required_id(&raw.id, "id", SpanId::from_hex_padded)?;
    let mut span = Span::new(trace_id, span_id, Str::from(raw.name.string("name")?));
    span.parent_span_id = parent_id(&raw.parent_id, span_id)?;
    span.kind = kind(&raw.kind, decoded);

    let start_micros = micros(&raw.timestamp, "timestamp")?;
    let duration_micros = micros(&raw.duration, "duration")?;
    span.start_time_unix_nano = nanos(start_micros, "timestamp")?;
    span.end_time_unix_nano = span
        .start_time_unix_nano
        .checked_add(nanos(duration_micros, "duration")?)
        .ok_or_else(|| "timestamp + duration is out of range".to_string())?;

    span.events = raw
        .annotations
        .iter()
        .map(|annotation| {
            Ok(Event {
                time_unix_nano: nanos(
                    micros(&annotation.timestamp, "annotation timestamp")?,
                    "annotation timestamp",
                )?,
                name: Str::from(annotation.value.string("annotation value")?),
                ..Event::default()
            })
        })
        .collect::<Result<_, String>>()?;

    let service = local_service_name(raw.local_endpoint.as_ref(), decoded);
    let tags = Tags::read(raw.tags)?;
    span.attributes = Vec::with_capacity(tags.attributes.len() + 8);
    endpoint_attributes(
        raw.local_endpoint.as_ref(),
        raw.remote_endpoint.as_ref(),
        span.kind,
        &tags,
        &mut span.attributes,
        decoded,
    );
    if raw
        .shared
        .boolean("shared")
        .unwrap_or_else(|why| warn_false(why, decoded))
    {
        span.attributes.push(KeyValue::new(ZIPKIN_SHARED, true));
    }
    if raw
        .debug
        .boolean("debug")
        .unwrap_or_else(|why| warn_false(why, decoded))
    {
        span.attributes.push(KeyValue::new(ZIPKIN_DEBUG, true));
    }
    span.status = tags.status;
    span.attributes.extend(tags.attributes);
    Ok(Converted {
        service,
        scope: tags.scope,
        span,
    })
}

fn warn_false(why: String, decoded: &mut Decoded) -> bool {
    decoded.warn(why);
    false
}

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

/// Zipkin reads an all-zero parent id, or one equal to the span's own id,
/// as no parent; so does the OpenTelemetry Collector.
fn parent_id(raw: &Scalar<'_>, span_id: SpanId) -> Result<Option<SpanId>, String> {
    match raw {
        Scalar::Null => Ok(None),
        Scalar::Str(text) if text.is_empty() => Ok(None),
        Scalar::Str(text) => match SpanId::from_hex_padded(text) {
            Ok(id) if id == span_id => Ok(None),
            Ok(id) => Ok(Some(id)),
            Err(IdError::Zero { .. }) => Ok(None),
            Err(e) => Err(format!("parentId: {e}")),
        },
        other => Err(format!(
            "parentId must be a hex string, not {}",
            other.type_name()
        )),
    }
}

fn kind(raw: &Scalar<'_>, decoded: &mut Decoded) -> SpanKind {
    let known = match raw {
        Scalar::Null => return SpanKind::Unspecified,
        Scalar::Str(text) => match text.to_ascii_uppercase().as_str() {
            "CLIENT" => Some(SpanKind::Client),
            "SERVER" => Some(SpanKind::Server),
            "PRODUCER" => Some(SpanKind::Producer),
            "CONSUMER" => Some(SpanKind::Consumer),
            _ => None,
        },
        _ => None,
    };
    known.unwrap_or_else(|| {
        decoded.warn(format!(
            "span kind {} is not a Zipkin kind; read as unspecified",
            raw.describe()
        ));
        SpanKind::Unspecified
    })
}

/// Epoch microseconds or a duration in microseconds. Some tracers send a
/// float; its fraction (below a microsecond) is dropped.
fn micros(raw: &Scalar<'_>, field: &str) -> Result<u64, String> {
    match raw {
        Scalar::Float(f) if f.is_finite() && *f >= 0.0 && *f < 18_446_744_073_709_551_616.0 => {
            Ok(*f as u64)
        }
        other => other.uint64(field),
    }
}

fn nanos(micros: u64, field: &str) -> Result<u64, String> {
    micros
        .checked_mul(1000)
        .ok_or_else(|| format!("{field} is out of range"))
}

fn local_service_name<'a>(
    endpoint: Option<&RawEndpoint<'a>>,
    decoded: &mut Decoded,
) -> Cow<'a, str> {
    let name = endpoint.map(|e| e.service_name.clone()).unwrap_or_default();
    match name.into_string("localEndpoint.serviceName") {
        Ok(name) if !name.is_empty() => name,
        Ok(_) => Cow::Borrowed(UNKNOWN_SERVICE),
        Err(why) => {
            decoded.warn(why);
            Cow::Borrowed(UNKNOWN_SERVICE)
        }
    }
}

/// The tags of a span, with the OpenTelemetry exporter's status and scope
/// tags taken out.
struct Tags {
    attributes: Vec<KeyValue>,
    status: Status,
    scope: ScopeKey,
}

impl Tags {
    fn read(raw: RawTags<'_>) -> Result<Tags, String> {
        let mut tags = Tags {
            attributes: Vec::with_capacity(raw.0.len()),
            status: Status::default(),
            scope: ScopeKey::default(),
        };
        let mut otel_code = None;
        let mut otel_description = None;
        let mut error = None;
        for (key, value) in raw.0 {
            let text: Str = match value {
                // A null tag carries nothing.
                Scalar::Null => continue,
                Scalar::Str(s) => Str::from(s.as_ref()),
                Scalar::Bool(b) => Str::from(if b { "true" } else { "false" }),
                Scalar::Int(n) => Str::from(n.to_string()),
                Scalar::UInt(n) => Str::from(n.to_string()),
                Scalar::Float(f) => Str::from(f.to_string()),
                other => {
                    return Err(format!(
                        "tag `{}` must be a string, not {}",
                        excerpt(&key),
                        other.type_name()
                    ));
                }
            };
            match key.as_ref() {
                OTEL_STATUS_CODE => otel_code = Some(text),
                OTEL_STATUS_DESCRIPTION => otel_description = Some(text),
                OTEL_SCOPE_NAME => tags.scope.name = text,
                OTEL_SCOPE_VERSION => tags.scope.version = text,
                // The older names yield to the current ones when both are sent.
                OTEL_LIBRARY_NAME if tags.scope.name.is_empty() => tags.scope.name = text,
                OTEL_LIBRARY_VERSION if tags.scope.version.is_empty() => tags.scope.version = text,
                OTEL_LIBRARY_NAME | OTEL_LIBRARY_VERSION => {}
                _ => {
                    if key == semconv::ZIPKIN_ERROR {
                        error = Some(text.clone());
                    }
                    tags.attributes.push(KeyValue {
                        key: Str::from(key.as_ref()),
                        value: AnyValue::Str(text),
                    });
                }
            }
        }
        if let Some(code) = otel_code {
            tags.status.code = match code.as_str() {
                "ERROR" | "STATUS_CODE_ERROR" => StatusCode::Error,
                "OK" | "STATUS_CODE_OK" => StatusCode::Ok,
                _ => StatusCode::Unset,
            };
            tags.status.message = otel_description.unwrap_or_default();
        }
        // Zipkin's convention: the presence of `error` marks a failed span,
        // its value says why (for the SmartThings traces, the HTTP status).
        if let Some(message) = error {
            tags.status = Status {
                code: StatusCode::Error,
                message,
            };
        }
        Ok(tags)
    }

    fn has(&self, key: &str) -> bool {
        self.attributes.iter().any(|kv| kv.key == key)
    }
}

/// Adds the attributes read from the endpoints (see the module docs).
fn endpoint_attributes(
    local: Option<&RawEndpoint<'_>>,
    remote: Option<&RawEndpoint<'_>>,
    kind: SpanKind,
    tags: &Tags,
    out: &mut Vec<KeyValue>,
    decoded: &mut Decoded,
) {
    let mut add = |key: &'static str, value: AnyValue| {
        if !tags.has(key) {
            out.push(KeyValue {
                key: Str::from(key),
                value,
            });
        }
    };
    if let Some(local) = local {
        if let Some(address) = address(local, "localEndpoint", decoded) {
            add(NETWORK_LOCAL_ADDRESS, AnyValue::Str(Str::from(address)));
        }
        if let Some(port) = port(local, "localEndpoint", decoded) {
            add(NETWORK_LOCAL_PORT, AnyValue::Int(port));
        }
    }
    if let Some(remote) = remote {
        match remote.service_name.string("remoteEndpoint.serviceName") {
            Ok("") => {}
            Ok(name) => add(semconv::SERVICE_PEER_NAME, AnyValue::Str(Str::from(name))),
            Err(why) => decoded.warn(why),
        }
        let address = address(remote, "remoteEndpoint", decoded);
        let port = port(remote, "remoteEndpoint", decoded);
        if let Some(address) = address {
            add(
                semconv::NETWORK_PEER_ADDRESS,
                AnyValue::Str(Str::from(address)),
            );
        }
        if let Some(port) = port {
            add(semconv::NETWORK_PEER_PORT, AnyValue::Int(port));
        }
        match kind {
            SpanKind::Client => {
                if let Some(address) = address {
                    add(semconv::SERVER_ADDRESS, AnyValue::Str(Str::from(address)));
                }
                if let Some(port) = port {
                    add(semconv::SERVER_PORT, AnyValue::Int(port));
                }
            }
            SpanKind::Server => {
                if let Some(address) = address {
                    add(semconv::CLIENT_ADDRESS, AnyValue::Str(Str::from(address)));
                }
            }
            _ => {}
        }
    }
}

/// The endpoint's IP address, ipv4 first; a non-string is warned about and skipped.
fn address<'e>(
    endpoint: &'e RawEndpoint<'_>,
    which: &str,
    decoded: &mut Decoded,
) -> Option<&'e str> {
    for (raw, field) in [(&endpoint.ipv4, "ipv4"), (&endpoint.ipv6, "ipv6")] {
        match raw.string(field) {
            Ok("") => {}
            Ok(address) => return Some(address),
            Err(why) => decoded.warn(format!("{which}.{why}")),
        }
    }
    None
}

fn port(endpoint: &RawEndpoint<'_>, which: &str, decoded: &mut Decoded) -> Option<i64> {
    match endpoint.port.uint64("port") {
        Ok(0) => None,
        Ok(port) if port <= u64::from(u16::MAX) => i64::try_from(port).ok(),
        Ok(port) => {
            decoded.warn(format!("{which}.port {port} is not a TCP or UDP port"));
            None
        }
        Err(why) => {
            decoded.warn(format!("{which}.{why}"));
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Decoded {
        decode_spans(json.as_bytes(), &Limits::default()).unwrap()
    }

    fn only_span(decoded: &Decoded) -> &Span {
        assert_eq!(decoded.batch.span_count(), 1, "{:?}", decoded.messages());
        &decoded.batch.resource_spans[0].scope_spans[0].spans[0]
    }

    #[test]
    fn server_span_maps_endpoints() {
        let decoded = decode(
            r#"[{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","kind":"SERVER","name":"get",
                "localEndpoint":{"serviceName":"servicea","ipv4":"127.0.0.1","port":8080},
                "remoteEndpoint":{"serviceName":"edge","ipv4":"52.0.0.9","port":51436}}]"#,
        );
        let span = only_span(&decoded);
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(
            span.attribute(NETWORK_LOCAL_ADDRESS),
            Some(&AnyValue::from("127.0.0.1"))
        );
        assert_eq!(
            span.attribute(NETWORK_LOCAL_PORT),
            Some(&AnyValue::Int(8080))
        );
        assert_eq!(
            span.attribute("service.peer.name"),
            Some(&AnyValue::from("edge"))
        );
        assert_eq!(
            span.attribute("network.peer.address"),
            Some(&AnyValue::from("52.0.0.9"))
        );
        assert_eq!(
            span.attribute("network.peer.port"),
            Some(&AnyValue::Int(51436))
        );
        assert_eq!(
            span.attribute("client.address"),
            Some(&AnyValue::from("52.0.0.9"))
        );
        assert_eq!(span.attribute("server.address"), None);
    }

    #[test]
    fn client_span_gets_server_address_and_port() {
        let decoded = decode(
            r#"[{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","kind":"CLIENT",
                "remoteEndpoint":{"ipv6":"2001:db8::1","port":443}}]"#,
        );
        let span = only_span(&decoded);
        assert_eq!(
            span.attribute("server.address"),
            Some(&AnyValue::from("2001:db8::1"))
        );
        assert_eq!(span.attribute("server.port"), Some(&AnyValue::Int(443)));
        assert_eq!(span.attribute("client.address"), None);
        assert_eq!(
            decoded.batch.resource_spans[0].resource.service_name(),
            UNKNOWN_SERVICE
        );
    }

    #[test]
    fn a_tag_wins_over_the_endpoint_attribute_of_the_same_name() {
        let decoded = decode(
            r#"[{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","kind":"SERVER",
                "remoteEndpoint":{"ipv4":"10.0.0.1"},"tags":{"client.address":"203.0.113.7"}}]"#,
        );
        let span = only_span(&decoded);
        let client: Vec<_> = span
            .attributes
            .iter()
            .filter(|kv| kv.key == "client.address")
            .collect();
        assert_eq!(client.len(), 1);
        assert_eq!(client[0].value, AnyValue::from("203.0.113.7"));
    }

    #[test]
    fn otel_exporter_tags_become_status_and_scope() {
        let decoded = decode(
            r#"[{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf",
                "tags":{"otel.status_code":"ERROR","otel.status_description":"boom",
                        "otel.scope.name":"io.opentelemetry.okhttp","otel.scope.version":"1.2","k":"v"}}]"#,
        );
        let span = only_span(&decoded);
        assert_eq!(
            span.status,
            Status {
                code: StatusCode::Error,
                message: "boom".into()
            }
        );
        assert_eq!(span.attributes, vec![KeyValue::new("k", "v")]);
        let scope = &decoded.batch.resource_spans[0].scope_spans[0].scope;
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("io.opentelemetry.okhttp", "1.2")
        );
    }

    #[test]
    fn parent_equal_to_id_or_zero_means_root() {
        for parent in ["bf396325699c84bf", "0000000000000000", ""] {
            let decoded = decode(&format!(
                r#"[{{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","parentId":"{parent}"}}]"#
            ));
            assert!(only_span(&decoded).is_root(), "parentId {parent:?}");
        }
    }

    #[test]
    fn scalar_tags_are_kept_as_text_and_compound_tags_reject() {
        let decoded = decode(
            r#"[{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","tags":{"n":401,"b":true,"f":1.5,"z":null}},
                {"traceId":"1e223ff1f80f1c69","id":"bf396325699c84be","tags":{"o":{"a":1}}}]"#,
        );
        let span = only_span(&decoded);
        assert_eq!(
            span.attributes,
            vec![
                KeyValue::new("n", "401"),
                KeyValue::new("b", "true"),
                KeyValue::new("f", "1.5")
            ]
        );
        assert_eq!(decoded.rejected_spans, 1);
        assert_eq!(
            decoded.messages(),
            ["tag `o` must be a string, not an object"]
        );
    }

    #[test]
    fn times_out_of_range_reject_the_span() {
        let decoded = decode(
            r#"[{"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","timestamp":18446744073709552}]"#,
        );
        assert_eq!(decoded.rejected_spans, 1);
        assert_eq!(decoded.messages(), ["timestamp is out of range"]);
    }
}
