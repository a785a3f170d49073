//! OTLP protobuf decoding straight from the request bytes.
//!
//! [`decode_traces`] reads an `ExportTraceServiceRequest` and [`decode_logs`]
//! an `ExportLogsServiceRequest` into a [`tracewarden_model::Batch`], walking
//! the protobuf wire format by hand (module `wire`) instead of building prost's
//! owned OTLP structs first: strings are validated in place and copied once,
//! into [`Str`]s that hold short keys and values inline, and each resource
//! and scope is put into an `Arc` once for all its records.
//!
//! Field numbers are those of opentelemetry-proto 1.x (`common/v1`,
//! `resource/v1`, `trace/v1`, `logs/v1`). Fields the model has no place for
//! (resource entity refs, the profiles-only `*_strindex` fields, the
//! deprecated status code) are skipped like any unknown field, and every
//! protobuf rule a conforming decoder follows holds here too: the last value
//! of a repeated scalar wins, a repeated embedded message is merged.
//!
//! What fails the whole request ([`DecodeError::Malformed`], naming message,
//! field and byte offset): broken framing (a truncated field, a varint over
//! 10 bytes, a length past the end, wire types 3, 4, 6 and 7, a known field
//! with the wrong wire type), and invalid UTF-8 where no record can be
//! blamed (a resource or scope). What rejects only one record, counted in
//! [`Decoded`]: invalid UTF-8 inside it, a bad trace or span id, a value
//! nested deeper than [`Limits::max_value_depth`], and whatever
//! [`Limits::apply_to_span`] / [`Limits::apply_to_log`] refuse. Unknown enum
//! values are kept as unspecified with a warning.
//!
//! Speed: nearly every encoder writes an attribute as key then value, with
//! one-byte lengths; that layout is recognised directly (falling back to the
//! general field walk for anything else), attributes are collected in a
//! reused scratch vector and moved out at their exact size, and the span
//! vector is sized by a first pass over the keys. See
//! `benches/decode_proto.rs` for the comparison with prost.
//!
//! Memory is bounded by the input: nested values are parsed at most
//! `max_value_depth + 1` levels deep (deeper data is skipped by its length,
//! never recursed into), and attributes, events and links over their caps are
//! skipped without being decoded.

mod common;
mod logs;
mod traces;
mod wire;

use tracewarden_model::{KeyValue, Str};

use crate::{DecodeError, Decoded, Limits};
use wire::{FieldRef, Reader, WireError, WireErrorKind, WireResult, WireType};

/// The `format` of the [`DecodeError`]s this module returns.
const FORMAT: &str = "OTLP protobuf";

/// Hard cap on how deep values are parsed whatever the configured limit, so a
/// configuration with a huge `max_value_depth` cannot make hostile input
/// exhaust the stack (two stack frames per level).
const MAX_VALUE_LEVELS: usize = 128;

/// Decodes an `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
///
/// An empty body is a valid request with no spans.
pub fn decode_traces(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let mut ctx = Ctx::new(limits);
    traces::export_request(body, &mut ctx).map_err(into_decode_error)?;
    Ok(ctx.decoded)
}

/// Decodes an `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
///
/// An empty body is a valid request with no log records.
pub fn decode_logs(body: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let mut ctx = Ctx::new(limits);
    logs::export_request(body, &mut ctx).map_err(into_decode_error)?;
    Ok(ctx.decoded)
}

fn into_decode_error(error: Box<WireError>) -> DecodeError {
    DecodeError::malformed(FORMAT, error.to_string())
}

/// Why the record being decoded must be rejected, found while its fields
/// were read (the first problem wins).
#[derive(Clone, Copy, Debug)]
enum Problem {
    InvalidUtf8 {
        message: &'static str,
        field: &'static str,
        offset: usize,
    },
    /// A value nested deeper than the parser follows.
    TooDeep,
}

/// Which scratch vector collects attributes: records (span, log record) and
/// resources and scopes use one, the events and links inside a span the
/// other, because a span's attributes and its events interleave on the wire.
#[derive(Clone, Copy)]
enum Scratch {
    Record,
    Nested,
}

/// State of one decode call.
struct Ctx<'l> {
    limits: &'l Limits,
    decoded: Decoded,
    /// How many array / key-value-list levels a value may open.
    value_levels: usize,
    problem: Option<Problem>,
    /// Attributes are collected here and then moved into a vector of the
    /// exact size, so a record costs one allocation for its attributes
    /// instead of the 3 or 4 reallocations of pushing into a new vector.
    record_attributes: Vec<KeyValue>,
    nested_attributes: Vec<KeyValue>,
}

impl<'l> Ctx<'l> {
    fn new(limits: &'l Limits) -> Self {
        let cap = limits.max_attributes_per_record.min(256);
        Ctx {
            limits,
            decoded: Decoded::default(),
            value_levels: limits
                .max_value_depth
                .saturating_add(1)
                .min(MAX_VALUE_LEVELS),
            problem: None,
            record_attributes: Vec::with_capacity(cap),
            nested_attributes: Vec::with_capacity(cap.min(32)),
        }
    }

    fn scratch(&mut self, which: Scratch) -> &mut Vec<KeyValue> {
        match which {
            Scratch::Record => &mut self.record_attributes,
            Scratch::Nested => &mut self.nested_attributes,
        }
    }

    /// Moves the collected attributes out, into a vector of their exact size
    /// (one allocation and one `memcpy`).
    fn take_attributes(&mut self, which: Scratch) -> Vec<KeyValue> {
        let scratch = self.scratch(which);
        let mut attributes = Vec::with_capacity(scratch.len());
        attributes.append(scratch);
        attributes
    }

    fn note_problem(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }

    /// Reads a string field. Invalid UTF-8 is noted as a problem of the
    /// record being decoded (which will be rejected) and read as "".
    #[inline]
    fn string(
        &mut self,
        r: &mut Reader<'_>,
        wire_type: WireType,
        field: &'static str,
    ) -> WireResult<Str> {
        let offset = r.offset();
        let bytes = r.bytes(wire_type, field)?;
        match wire::utf8(bytes) {
            Some(text) => Ok(Str::from(text)),
            None => {
                self.note_problem(Problem::InvalidUtf8 {
                    message: r.message_name(),
                    field,
                    offset,
                });
                Ok(Str::default())
            }
        }
    }

    /// Reads a string field outside any record: invalid UTF-8 fails the request.
    fn strict_string(
        r: &mut Reader<'_>,
        wire_type: WireType,
        field: &'static str,
    ) -> WireResult<Str> {
        let offset = r.offset();
        let bytes = r.bytes(wire_type, field)?;
        match wire::utf8(bytes) {
            Some(text) => Ok(Str::from(text)),
            None => Err(r.error(FieldRef::Named(field), offset, WireErrorKind::InvalidUtf8)),
        }
    }

    /// Clears the problem slot before a record (or resource, or scope) is read.
    fn begin(&mut self) {
        self.problem = None;
    }

    /// Why the record just read must be rejected, if it must.
    fn record_problem(&mut self, what: &str) -> Option<String> {
        self.problem.take().map(|problem| match problem {
            Problem::InvalidUtf8 {
                message,
                field,
                offset,
            } => {
                format!("{what} rejected: {message}.{field} at byte {offset} is not valid UTF-8")
            }
            Problem::TooDeep => format!(
                "{what} rejected: value nested deeper than the limit of {} levels",
                self.limits.max_value_depth
            ),
        })
    }

    /// Settles the problem found in a resource or scope, where no record can
    /// be blamed: invalid UTF-8 fails the request; an over-deep value, cut
    /// where the parser stopped, is kept for the limits to turn into text.
    fn container_problem(&mut self, what: &str) -> WireResult<()> {
        match self.problem.take() {
            None => Ok(()),
            Some(Problem::InvalidUtf8 {
                message,
                field,
                offset,
            }) => Err(Box::new(WireError {
                message,
                field: FieldRef::Named(field),
                offset,
                kind: WireErrorKind::InvalidUtf8,
            })),
            Some(Problem::TooDeep) => {
                self.decoded.warn(format!(
                    "{what} attribute nested deeper than the limit of {} levels cut",
                    self.limits.max_value_depth
                ));
                Ok(())
            }
        }
    }

    /// Counts attributes skipped over the cap into `dropped`, with the same
    /// warning as [`Limits::apply_to_attributes`].
    fn attributes_over_cap(&mut self, dropped: &mut u32, skipped: u32) {
        if skipped > 0 {
            *dropped = dropped.saturating_add(skipped);
            self.decoded.warn(format!(
                "attributes over the limit of {} per record dropped",
                self.limits.max_attributes_per_record
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_an_empty_batch() {
        let decoded = decode_traces(&[], &Limits::default()).unwrap();
        assert!(decoded.batch.is_empty());
        assert_eq!(decoded.rejected_spans, 0);
        let decoded = decode_logs(&[], &Limits::default()).unwrap();
        assert!(decoded.batch.is_empty());
    }

    #[test]
    fn framing_errors_name_the_format_message_and_field() {
        // ExportTraceServiceRequest { resource_spans: <length 5, 1 byte left> }
        let err = decode_traces(&[0x0a, 0x05, 0x00], &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed OTLP protobuf: ExportTraceServiceRequest.resource_spans at byte 1: \
             length 5 is larger than the 1 bytes left"
        );
        let err = decode_logs(&[0x0b], &Limits::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("ExportLogsServiceRequest field 1 at byte 0: deprecated group"),
            "{err}"
        );
    }

    #[test]
    fn the_value_depth_cap_holds_for_any_configuration() {
        let limits = Limits {
            max_value_depth: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(Ctx::new(&limits).value_levels, MAX_VALUE_LEVELS);
        let limits = Limits {
            max_value_depth: 3,
            ..Limits::default()
        };
        assert_eq!(Ctx::new(&limits).value_levels, 4);
    }
}
