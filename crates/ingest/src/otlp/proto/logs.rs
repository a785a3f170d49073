//! `opentelemetry.proto.logs.v1` and `collector.logs.v1`: resource logs,
//! scope logs and log records.

use tracewarden_model::{IdError, LogRecord, ResourceLogs, ScopeLogs, SpanId, TraceId};

use super::common::{any_value_into, attribute, resource_group, scope_group};
use super::wire::{Reader, WireResult};
use super::{Ctx, Scratch};

/// The smallest log record worth reserving room for (a timestamp, a
/// severity and a short body), bounding what a message's length can make
/// the decoder reserve.
const MIN_LOG_BYTES: usize = 16;

/// `SeverityNumber` runs from 0 (unspecified) to 24 (FATAL4).
const MAX_SEVERITY_NUMBER: i32 = 24;

/// `ExportLogsServiceRequest`: 1 resource_logs.
pub(super) fn export_request(body: &[u8], ctx: &mut Ctx<'_>) -> WireResult<()> {
    let mut r = Reader::new(body, "ExportLogsServiceRequest");
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => {
                let message = r.message(wire_type, "resource_logs", "ResourceLogs")?;
                let resource_logs = resource_logs(message, ctx)?;
                ctx.decoded.batch.resource_logs.push(resource_logs);
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(())
}

/// `ResourceLogs`: 1 resource, 2 scope_logs, 3 schema_url.
fn resource_logs(r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<ResourceLogs> {
    let (resource, scope_logs) =
        resource_group(r, ctx, ("scope_logs", "ScopeLogs"), scope_logs_message)?;
    Ok(ResourceLogs {
        resource,
        scope_logs,
    })
}

/// `ScopeLogs`: 1 scope, 2 log_records, 3 schema_url.
fn scope_logs_message(r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<ScopeLogs> {
    let (scope, log_records) = scope_group(
        r,
        ctx,
        ("log_records", "LogRecord"),
        MIN_LOG_BYTES,
        log_record,
    )?;
    Ok(ScopeLogs { scope, log_records })
}

/// `LogRecord`: 1 time_unix_nano, 2 severity_number, 3 severity_text, 5 body,
/// 6 attributes, 7 dropped_attributes_count, 8 flags, 9 trace_id, 10 span_id,
/// 11 observed_time_unix_nano, 12 event_name. `None` when the record was
/// rejected (and counted).
fn log_record(mut r: Reader<'_>, ctx: &mut Ctx<'_>) -> WireResult<Option<LogRecord>> {
    ctx.begin();
    let mut log = LogRecord::default();
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut skipped = 0;
    while let Some((field, wire_type)) = r.next_field()? {
        match field {
            1 => log.time_unix_nano = r.fixed64(wire_type, "time_unix_nano")?,
            2 => log.severity_number = r.varint(wire_type, "severity_number")? as i32,
            3 => log.severity_text = ctx.string(&mut r, wire_type, "severity_text")?,
            5 => {
                let message = r.message(wire_type, "body", "AnyValue")?;
                any_value_into(message, ctx, &mut log.body, ctx.value_levels)?;
            }
            6 => attribute(
                &mut r,
                wire_type,
                "attributes",
                ctx,
                Scratch::Record,
                &mut skipped,
            )?,
            7 => {
                log.dropped_attributes_count =
                    r.varint(wire_type, "dropped_attributes_count")? as u32
            }
            8 => log.flags = r.fixed32(wire_type, "flags")?,
            9 => trace_id = r.bytes(wire_type, "trace_id")?,
            10 => span_id = r.bytes(wire_type, "span_id")?,
            11 => log.observed_time_unix_nano = r.fixed64(wire_type, "observed_time_unix_nano")?,
            12 => log.event_name = ctx.string(&mut r, wire_type, "event_name")?,
            _ => r.skip(field, wire_type)?,
        }
    }
    log.attributes = ctx.take_attributes(Scratch::Record);

    if let Some(why) = ctx.record_problem("log record") {
        ctx.decoded.reject_log(why);
        return Ok(None);
    }
    let ids = optional_id(trace_id, TraceId::LEN, TraceId::from_slice)
        .and_then(|t| optional_id(span_id, SpanId::LEN, SpanId::from_slice).map(|s| (t, s)));
    match ids {
        Ok((trace_id, span_id)) => {
            log.trace_id = trace_id;
            log.span_id = span_id;
        }
        Err(e) => {
            ctx.decoded.reject_log(format!("log record rejected: {e}"));
            return Ok(None);
        }
    }
    ctx.attributes_over_cap(&mut log.dropped_attributes_count, skipped);
    if let Err(why) = ctx.limits.apply_to_log(&mut log, &mut ctx.decoded) {
        ctx.decoded
            .reject_log(format!("log record rejected: {why}"));
        return Ok(None);
    }
    if !(0..=MAX_SEVERITY_NUMBER).contains(&log.severity_number) {
        ctx.decoded.warn(format!(
            "severity number {} is outside 0..={MAX_SEVERITY_NUMBER}, stored as 0 (unspecified)",
            log.severity_number
        ));
        log.severity_number = 0;
    }
    Ok(Some(log))
}

/// A log record's trace or span id, which is optional: empty, or all zeroes
/// of the right length (what some SDKs send outside a trace), mean none.
fn optional_id<T>(
    bytes: &[u8],
    len: usize,
    parse: fn(&[u8]) -> Result<T, IdError>,
) -> Result<Option<T>, IdError> {
    if bytes.is_empty() || (bytes.len() == len && bytes.iter().all(|b| *b == 0)) {
        return Ok(None);
    }
    parse(bytes).map(Some)
}
