//! `opentelemetry.proto.trace.v1` and `collector.trace.v1`: resource spans,
//! scope spans, spans, events, links and status.

use tracewarden_model::{
    Event, Link, ResourceSpans, ScopeSpans, Span, SpanId, SpanKind, Status, StatusCode, Str,
    TraceId,
};

use super::common::{attribute, resource_group, scope_group};
use super::wire::{Reader, WireResult};
use super::{Ctx, Scratch};

/// The smallest span that can be valid: a 16-byte trace id and an 8-byte
/// span id with their keys and lengths. Bounds how many spans a message's
/// length can announce when sizing the span vector.
const MIN_SPAN_BYTES: usize = 28;

/// `ExportTraceServiceRequest`: 1 resource_spans.
pub(super) fn export_request(body: &[u8], ctx: &mut Ctx<'_>) -> WireResult<()> {
    let mut r = Reader::new(body, "ExportTraceServiceRequest");
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => {
                let message = r.message(wire_type, "resource_spans", "ResourceSpans")?;
                let resource_spans = resource_spans(message, ctx)?;
                ctx.decoded.batch.resource_spans.push(resource_spans);
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(())
}

/// `ResourceSpans`: 1 resource, 2 scope_spans, 3 schema_url.
fn resource_spans(r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<ResourceSpans> {
    let (resource, scope_spans) =
        resource_group(r, ctx, ("scope_spans", "ScopeSpans"), scope_spans_message)?;
    Ok(ResourceSpans {
        resource,
        scope_spans,
    })
}

/// `ScopeSpans`: 1 scope, 2 spans, 3 schema_url.
fn scope_spans_message(r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<ScopeSpans> {
    let (scope, spans) = scope_group(r, ctx, ("spans", "Span"), MIN_SPAN_BYTES, span)?;
    Ok(ScopeSpans { scope, spans })
}

/// `Span`. `None` when the span was rejected (and counted).
fn span(mut r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<Option<Span>> {
    ctx.begin();
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut parent_span_id: &[u8] = &[];
    let mut trace_state = Str::default();
    let mut flags = 0;
    let mut name = Str::default();
    let mut kind = 0i32;
    let mut start_time_unix_nano = 0;
    let mut end_time_unix_nano = 0;
    let mut dropped_attributes_count = 0;
    let mut events = Vec::new();
    let mut dropped_events_count = 0;
    let mut links = Vec::new();
    let mut dropped_links_count = 0;
    let mut status_code = 0i32;
    let mut status_message = Str::default();
    // Dropped here rather than sent as dropped by the sender: added to the
    // sender's counts once all fields are read, since those may come last.
    let mut skipped_attributes = 0u32;
    let mut skipped_events = 0u32;
    let mut skipped_links = 0u32;
    let mut bad_links = 0u32;

    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => trace_id = r.bytes(wire_type, "trace_id")?,
            2 => span_id = r.bytes(wire_type, "span_id")?,
            3 => trace_state = ctx.string(&mut r, wire_type, "trace_state")?,
            4 => parent_span_id = r.bytes(wire_type, "parent_span_id")?,
            5 => name = ctx.string(&mut r, wire_type, "name")?,
            // Enums are int32 on the wire: the low 32 bits of the varint.
            6 => kind = r.varint(wire_type, "kind")? as i32,
            7 => start_time_unix_nano = r.fixed64(wire_type, "start_time_unix_nano")?,
            8 => end_time_unix_nano = r.fixed64(wire_type, "end_time_unix_nano")?,
            9 => attribute(
                &mut r,
                wire_type,
                "attributes",
                ctx,
                Scratch::Record,
                &mut skipped_attributes,
            )?,
            10 => {
                dropped_attributes_count = r.varint(wire_type, "dropped_attributes_count")? as u32
            }
            11 => {
                let message = r.message(wire_type, "events", "Event")?;
                if events.len() < ctx.limits.max_events_per_span {
                    events.push(event(message, ctx)?);
                } else {
                    skipped_events = skipped_events.saturating_add(1);
                }
            }
            12 => dropped_events_count = r.varint(wire_type, "dropped_events_count")? as u32,
            13 => {
                let message = r.message(wire_type, "links", "Link")?;
                if links.len() < ctx.limits.max_links_per_span {
                    match link(message, ctx)? {
                        Some(link) => links.push(link),
                        None => bad_links = bad_links.saturating_add(1),
                    }
                } else {
                    skipped_links = skipped_links.saturating_add(1);
                }
            }
            14 => dropped_links_count = r.varint(wire_type, "dropped_links_count")? as u32,
            15 => {
                let message = r.message(wire_type, "status", "Status")?;
                status_into(message, ctx, &mut status_code, &mut status_message)?;
            }
            16 => flags = r.fixed32(wire_type, "flags")?,
            _ => r.skip(field, wire_type)?,
        }
    }
    // Taken even when the span is rejected: the scratch must be empty for the next one.
    let attributes = ctx.take_attributes(Scratch::Record);

    if let Some(why) = ctx.record_problem("span") {
        ctx.decoded.reject_span(why);
        return Ok(None);
    }
    let ids = TraceId::from_slice(trace_id)
        .map_err(|e| format!("span rejected: {e}"))
        .and_then(|t| {
            SpanId::from_slice(span_id)
                .map(|s| (t, s))
                .map_err(|e| format!("span rejected: {e}"))
        })
        .and_then(|ids| parent_id(parent_span_id).map(|p| (ids, p)));
    let ((trace_id, span_id), parent_span_id) = match ids {
        Ok(ids) => ids,
        Err(why) => {
            ctx.decoded.reject_span(why);
            return Ok(None);
        }
    };

    ctx.attributes_over_cap(&mut dropped_attributes_count, skipped_attributes);
    if skipped_events > 0 {
        dropped_events_count = dropped_events_count.saturating_add(skipped_events);
        ctx.decoded.warn(format!(
            "events over the limit of {} per span dropped",
            ctx.limits.max_events_per_span
        ));
    }
    if skipped_links > 0 {
        ctx.decoded.warn(format!(
            "links over the limit of {} per span dropped",
            ctx.limits.max_links_per_span
        ));
    }
    dropped_links_count = dropped_links_count
        .saturating_add(skipped_links)
        .saturating_add(bad_links);

    let mut span = Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state,
        flags,
        name,
        kind: SpanKind::from_i32(kind).unwrap_or_default(),
        start_time_unix_nano,
        end_time_unix_nano,
        attributes,
        original_attributes: Vec::new(),
        dropped_attributes_count,
        events,
        dropped_events_count,
        links,
        dropped_links_count,
        status: Status {
            code: StatusCode::from_i32(status_code).unwrap_or_default(),
            message: status_message,
        },
    };
    if let Err(why) = ctx.limits.apply_to_span(&mut span, &mut ctx.decoded) {
        ctx.decoded.reject_span(format!("span rejected: {why}"));
        return Ok(None);
    }
    if SpanKind::from_i32(kind).is_none() {
        ctx.decoded.warn(format!(
            "span kind {kind} is not defined by OTLP, stored as unspecified"
        ));
    }
    if StatusCode::from_i32(status_code).is_none() {
        ctx.decoded.warn(format!(
            "status code {status_code} is not defined by OTLP, stored as unset"
        ));
    }
    Ok(Some(span))
}

/// A parent span id: empty for a root span. All zeroes also means root: some
/// converters (from Jaeger or Zipkin) write a zero id instead of none.
fn parent_id(bytes: &[u8]) -> Result<Option<SpanId>, String> {
    if bytes.iter().all(|b| *b == 0) && (bytes.is_empty() || bytes.len() == SpanId::LEN) {
        return Ok(None);
    }
    SpanId::from_slice(bytes)
        .map(Some)
        .map_err(|e| format!("span rejected: parent {e}"))
}

/// `Span.Event`: 1 time_unix_nano, 2 name, 3 attributes, 4 dropped_attributes_count.
fn event(mut r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<Event> {
    let mut event = Event::default();
    let mut skipped = 0;
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => event.time_unix_nano = r.fixed64(wire_type, "time_unix_nano")?,
            2 => event.name = ctx.string(&mut r, wire_type, "name")?,
            3 => attribute(
                &mut r,
                wire_type,
                "attributes",
                ctx,
                Scratch::Nested,
                &mut skipped,
            )?,
            4 => {
                event.dropped_attributes_count =
                    r.varint(wire_type, "dropped_attributes_count")? as u32
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    event.attributes = ctx.take_attributes(Scratch::Nested);
    ctx.attributes_over_cap(&mut event.dropped_attributes_count, skipped);
    Ok(event)
}

/// `Span.Link`: 1 trace_id, 2 span_id, 3 trace_state, 4 attributes,
/// 5 dropped_attributes_count, 6 flags. `None` when an id is invalid: the
/// link is dropped with a warning (the span is kept).
fn link(mut r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<Option<Link>> {
    // A problem inside a link that is dropped anyway must not reject the span.
    let span_problem = ctx.problem.take();
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut trace_state = Str::default();
    let mut dropped_attributes_count = 0;
    let mut flags = 0;
    let mut skipped = 0;
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => trace_id = r.bytes(wire_type, "trace_id")?,
            2 => span_id = r.bytes(wire_type, "span_id")?,
            3 => trace_state = ctx.string(&mut r, wire_type, "trace_state")?,
            4 => attribute(
                &mut r,
                wire_type,
                "attributes",
                ctx,
                Scratch::Nested,
                &mut skipped,
            )?,
            5 => dropped_attributes_count = r.varint(wire_type, "dropped_attributes_count")? as u32,
            6 => flags = r.fixed32(wire_type, "flags")?,
            _ => r.skip(field, wire_type)?,
        }
    }
    let attributes = ctx.take_attributes(Scratch::Nested);
    let ids =
        TraceId::from_slice(trace_id).and_then(|t| SpanId::from_slice(span_id).map(|s| (t, s)));
    let (trace_id, span_id) = match ids {
        Ok(ids) => {
            ctx.problem = span_problem.or(ctx.problem);
            ids
        }
        Err(e) => {
            ctx.problem = span_problem;
            ctx.decoded.warn(format!("link dropped: {e}"));
            return Ok(None);
        }
    };
    ctx.attributes_over_cap(&mut dropped_attributes_count, skipped);
    Ok(Some(Link {
        trace_id,
        span_id,
        trace_state,
        attributes,
        dropped_attributes_count,
        flags,
    }))
}

/// Merges a `Status` message: 2 message, 3 code; 1 (deprecated_code) is skipped.
fn status_into(
    mut r: Reader<'_>,
    ctx: &mut Ctx<'_>,
    code: &mut i32,
    message: &mut Str,
) -> WireResult<()> {
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            2 => *message = ctx.string(&mut r, wire_type, "message")?,
            3 => *code = r.varint(wire_type, "code")? as i32,
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(())
}
