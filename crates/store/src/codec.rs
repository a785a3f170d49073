//! The payload codec of WAL records: a [`Batch`] to bytes and back.
//!
//! # Format
//!
//! ```text
//! payload = version: u8 | body
//! version 1: body = postcard encoding of the model's serde derive of `Batch`
//! ```
//!
//! Postcard is compact (varints, no field names) and fast, but it is not
//! self-describing: the bytes follow the field order of the model's structs.
//! Any change to the shape of `Batch`, `Span`, `LogRecord`, `AnyValue` or
//! their parts changes the encoding, so it must come with a new codec version
//! and a decoder kept for every older version still found in WAL files. The
//! test `tests/format_fixtures.rs` reads a committed WAL file of version 1 and
//! fails when the model drifts from it.
//!
//! Decoding the payload of a record that passed its checksum is the read
//! path; see [`crate::wal`] for the framing around it.

use tracewarden_model::{AnyValue, Batch, KeyValue};

/// The codec version written by this build, and the only one it reads.
pub const CODEC_VERSION: u8 = 1;

/// Deepest nesting of arrays and key-value lists accepted in a value.
///
/// Postcard decodes recursively with no depth limit of its own, so a batch
/// nested deeper than this could overflow the stack of whoever replays the
/// WAL. Receivers cap depth far lower (ingest's `Limits::max_value_depth`);
/// this is the store's own guard, so it never writes what it cannot read.
pub const MAX_VALUE_DEPTH: usize = 64;

/// Why a batch could not be encoded or a payload decoded.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum CodecError {
    #[error("empty WAL payload (no codec version byte)")]
    Empty,
    #[error("unknown codec version {0}")]
    UnknownVersion(u8),
    #[error("failed to encode batch: {0}")]
    Encode(#[source] postcard::Error),
    #[error("failed to decode batch: {0}")]
    Decode(#[source] postcard::Error),
    #[error("{0} trailing bytes after the batch")]
    TrailingBytes(usize),
    #[error("attribute value nested deeper than the limit of {limit}")]
    TooDeep { limit: usize },
}

/// Encodes `batch` as a payload of the current codec version.
pub fn encode(batch: &Batch) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(estimated_len(batch));
    encode_into(batch, &mut out)?;
    Ok(out)
}

/// Appends the payload of `batch` to `out` (which may already hold a record
/// header, so the WAL frames a record without copying the payload).
pub fn encode_into(batch: &Batch, out: &mut Vec<u8>) -> Result<(), CodecError> {
    check_depth(batch)?;
    out.push(CODEC_VERSION);
    let taken = std::mem::take(out);
    *out = postcard::serialize_with_flavor(batch, ExtendVec(taken)).map_err(CodecError::Encode)?;
    Ok(())
}

/// Decodes a payload written by [`encode`], choosing the decoder by its version byte.
pub fn decode(payload: &[u8]) -> Result<Batch, CodecError> {
    let (&version, body) = payload.split_first().ok_or(CodecError::Empty)?;
    match version {
        1 => {
            let (batch, rest) =
                postcard::take_from_bytes::<Batch>(body).map_err(CodecError::Decode)?;
            if !rest.is_empty() {
                return Err(CodecError::TrailingBytes(rest.len()));
            }
            Ok(batch)
        }
        other => Err(CodecError::UnknownVersion(other)),
    }
}

/// A first guess at the encoded size, so a typical batch is encoded without
/// reallocating: postcard takes about 500 bytes for an HTTP server span with
/// a dozen attributes (`benches/wal.rs` prints it).
pub(crate) fn estimated_len(batch: &Batch) -> usize {
    256 + batch.span_count().saturating_mul(512) + batch.log_count().saturating_mul(256)
}

/// A postcard output that appends to an existing `Vec` (std's `StdVec`
/// flavor always starts from an empty one).
struct ExtendVec(Vec<u8>);

impl postcard::ser_flavors::Flavor for ExtendVec {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

fn check_depth(batch: &Batch) -> Result<(), CodecError> {
    let too_deep = || CodecError::TooDeep {
        limit: MAX_VALUE_DEPTH,
    };
    for rs in &batch.resource_spans {
        check_attributes(&rs.resource.attributes)?;
        check_attributes(&rs.resource.original_attributes)?;
        for ss in &rs.scope_spans {
            check_attributes(&ss.scope.attributes)?;
            for span in &ss.spans {
                check_attributes(&span.attributes)?;
                check_attributes(&span.original_attributes)?;
                for event in &span.events {
                    check_attributes(&event.attributes)?;
                }
                for link in &span.links {
                    check_attributes(&link.attributes)?;
                }
            }
        }
    }
    for rl in &batch.resource_logs {
        check_attributes(&rl.resource.attributes)?;
        check_attributes(&rl.resource.original_attributes)?;
        for sl in &rl.scope_logs {
            check_attributes(&sl.scope.attributes)?;
            for record in &sl.log_records {
                if deeper_than(&record.body, MAX_VALUE_DEPTH) {
                    return Err(too_deep());
                }
                check_attributes(&record.attributes)?;
                check_attributes(&record.original_attributes)?;
            }
        }
    }
    Ok(())
}

fn check_attributes(attributes: &[KeyValue]) -> Result<(), CodecError> {
    if attributes
        .iter()
        .any(|kv| deeper_than(&kv.value, MAX_VALUE_DEPTH))
    {
        return Err(CodecError::TooDeep {
            limit: MAX_VALUE_DEPTH,
        });
    }
    Ok(())
}

/// Whether `value` nests deeper than `limit`. Unlike `AnyValue::depth`, the
/// recursion stops at the limit, so a hostile value cannot overflow the stack here.
fn deeper_than(value: &AnyValue, limit: usize) -> bool {
    match value {
        AnyValue::Array(items) => limit == 0 || items.iter().any(|v| deeper_than(v, limit - 1)),
        AnyValue::KvList(kvs) => {
            limit == 0 || kvs.iter().any(|kv| deeper_than(&kv.value, limit - 1))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{ResourceSpans, ScopeSpans, Span, SpanId, TraceId};

    use super::*;

    fn one_span_batch(value: AnyValue) -> Batch {
        let mut span = Span::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([8; 8]),
            "GET /",
        );
        span.attributes.push(KeyValue::new("deep", value));
        Batch {
            resource_spans: vec![ResourceSpans {
                resource: Arc::default(),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::default(),
                    spans: vec![span],
                }],
            }],
            resource_logs: Vec::new(),
        }
    }

    fn nested(depth: usize) -> AnyValue {
        let mut value = AnyValue::Int(1);
        for _ in 0..depth {
            value = AnyValue::Array(vec![value]);
        }
        value
    }

    #[test]
    fn payload_starts_with_the_codec_version() {
        let payload = encode(&one_span_batch(AnyValue::Int(1))).unwrap();
        assert_eq!(payload[0], CODEC_VERSION);
        assert_eq!(decode(&payload).unwrap(), one_span_batch(AnyValue::Int(1)));
    }

    #[test]
    fn encode_into_keeps_what_the_buffer_held() {
        let batch = one_span_batch(AnyValue::from("x"));
        let mut out = vec![0xAA; 16];
        encode_into(&batch, &mut out).unwrap();
        assert_eq!(&out[..16], &[0xAA; 16]);
        assert_eq!(decode(&out[16..]).unwrap(), batch);
    }

    #[test]
    fn rejects_unknown_versions_empty_and_trailing_bytes() {
        assert!(matches!(decode(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode(&[2, 0, 0]),
            Err(CodecError::UnknownVersion(2))
        ));
        let mut payload = encode(&Batch::default()).unwrap();
        payload.push(0);
        assert!(matches!(
            decode(&payload),
            Err(CodecError::TrailingBytes(1))
        ));
        assert!(matches!(decode(&[1, 0xFF]), Err(CodecError::Decode(_))));
    }

    #[test]
    fn refuses_to_encode_values_nested_past_the_limit() {
        assert!(encode(&one_span_batch(nested(MAX_VALUE_DEPTH))).is_ok());
        assert!(matches!(
            encode(&one_span_batch(nested(MAX_VALUE_DEPTH + 1))),
            Err(CodecError::TooDeep { .. })
        ));
    }

    #[test]
    fn depth_check_agrees_with_the_model() {
        for depth in 0..8 {
            let value = nested(depth);
            assert_eq!(value.depth(), depth);
            assert!(!deeper_than(&value, depth), "depth {depth}");
            if depth > 0 {
                assert!(deeper_than(&value, depth - 1), "depth {depth}");
            }
        }
    }
}
