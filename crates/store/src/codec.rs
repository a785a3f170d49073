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
//! Postcard reads the body; [`write`] writes it by hand, the same bytes at a
//! third of the cost (docs/BENCHMARKS.md), and a test compares the two on
//! batches holding every variant, so a model change that postcard would
//! encode differently fails there too.
//!
//! Decoding the payload of a record that passed its checksum is the read
//! path; see [`crate::wal`] for the framing around it.

mod write;

use tracewarden_model::{AnyValue, Batch, KeyValue};

/// The codec version written by this build, and the only one it reads.
pub const CODEC_VERSION: u8 = 1;

/// Deepest nesting of arrays and key-value lists accepted in a value.
///
/// Postcard decodes recursively with no depth limit of its own, so a batch
/// nested deeper than this could overflow the stack of whoever replays the
/// WAL. Receivers cap depth far lower (ingest's `Limits::max_value_depth`);
/// this is the store's own guard, so it never writes what it cannot read.
/// Reading, the model's deserialization refuses values nested deeper than
/// [`tracewarden_model::MAX_DESERIALIZE_DEPTH`] (128), so a record damaged
/// or made by hand under a valid checksum is an error, not a stack overflow.
pub const MAX_VALUE_DEPTH: usize = 64;

/// Why a batch could not be encoded or a payload decoded.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum CodecError {
    #[error("empty WAL payload (no codec version byte)")]
    Empty,
    #[error("unknown codec version {0}")]
    UnknownVersion(u8),
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
    let start = out.len();
    out.push(CODEC_VERSION);
    write::batch(batch, out).inspect_err(|_| out.truncate(start))
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

/// An upper guess at the encoded size from one cheap pass over the records,
/// so a batch is encoded without reallocating. A flat 512 bytes per span
/// fell 2 bytes short on the load generator's spans, so every WAL buffer
/// doubled and was copied (seen as memcpy in the profile, docs/BENCHMARKS.md).
pub(crate) fn estimated_len(batch: &Batch) -> usize {
    fn value(v: &AnyValue) -> usize {
        match v {
            AnyValue::Str(s) => s.len() + 4,
            AnyValue::Bytes(b) => b.len() + 4,
            AnyValue::Array(items) => 4 + items.iter().map(value).sum::<usize>(),
            AnyValue::KvList(kvs) => 4 + attributes(kvs),
            _ => 10,
        }
    }
    fn attributes(list: &[KeyValue]) -> usize {
        list.iter()
            .map(|kv| kv.key.len() + 4 + value(&kv.value))
            .sum()
    }
    let spans: usize = batch
        .spans()
        .map(|(_, _, s)| {
            96 + s.name.len()
                + s.trace_state.len()
                + s.status.message.len()
                + attributes(&s.attributes)
                + attributes(&s.original_attributes)
                + s.events
                    .iter()
                    .map(|e| 24 + e.name.len() + attributes(&e.attributes))
                    .sum::<usize>()
                + s.links
                    .iter()
                    .map(|l| 48 + attributes(&l.attributes))
                    .sum::<usize>()
        })
        .sum();
    let logs: usize = batch
        .logs()
        .map(|(_, _, l)| {
            96 + l.severity_text.len()
                + l.event_name.len()
                + attributes(&l.attributes)
                + attributes(&l.original_attributes)
                + value(&l.body)
        })
        .sum();
    let resources: usize = batch
        .resource_spans
        .iter()
        .map(|rs| 64 + attributes(&rs.resource.attributes) + rs.scope_spans.len() * 64)
        .chain(
            batch
                .resource_logs
                .iter()
                .map(|rl| 64 + attributes(&rl.resource.attributes) + rl.scope_logs.len() * 64),
        )
        .sum();
    let total = 256 + spans + logs + resources;
    total + total / 8
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
    fn the_size_estimate_covers_the_encoding() {
        let mut span = Span::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([8; 8]),
            "GET /api/weather",
        );
        span.parent_span_id = Some(SpanId::from_bytes([9; 8]));
        span.start_time_unix_nano = u64::MAX / 3;
        span.end_time_unix_nano = u64::MAX / 2;
        for (key, value) in [
            ("http.request.method", AnyValue::from("GET")),
            ("url.path", AnyValue::from("/api/weather/kyiv")),
            ("url.query", AnyValue::from("units=metric&lang=en&days=3")),
            ("http.route", AnyValue::from("/api/weather/{city}")),
            ("http.response.status_code", AnyValue::Int(200)),
            (
                "client.address",
                AnyValue::from("2001:db8:85a3::8a2e:370:7334"),
            ),
            (
                "user_agent.original",
                AnyValue::from(
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
                ),
            ),
            ("enduser.id", AnyValue::from("user-1234@example.com")),
            (
                "session.id",
                AnyValue::from("3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"),
            ),
            ("server.address", AnyValue::from("weather.internal")),
            ("network.peer.address", AnyValue::from("10.0.3.17")),
            ("service.peer.name", AnyValue::from("location")),
            (
                "nested",
                AnyValue::Array(vec![AnyValue::Double(1.5), AnyValue::from("x")]),
            ),
        ] {
            span.attributes.push(KeyValue::new(key, value));
        }
        let mut batch = one_span_batch(AnyValue::Bool(true));
        batch.resource_spans[0].scope_spans[0].spans = vec![span; 100];
        let log = tracewarden_model::LogRecord {
            body: AnyValue::from("invalid bearer token for user-1234@example.com"),
            ..Default::default()
        };
        batch.resource_logs = vec![tracewarden_model::ResourceLogs {
            resource: Arc::default(),
            scope_logs: vec![tracewarden_model::ScopeLogs {
                scope: Arc::default(),
                log_records: vec![log; 10],
            }],
        }];
        let encoded = encode(&batch).unwrap();
        let estimate = estimated_len(&batch);
        assert!(
            encoded.len() <= estimate,
            "encoded {} > estimated {estimate}",
            encoded.len()
        );
        assert!(
            estimate <= encoded.len() * 2,
            "estimate {estimate} wastes more than the encoding {}",
            encoded.len()
        );
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

    /// A payload nested deeper than anything the store writes, made by
    /// hand (or damaged) under a valid checksum: an error, not a stack
    /// overflow, and the next payload on the thread decodes as before.
    #[test]
    fn decoding_a_value_nested_past_the_model_limit_is_an_error() {
        use tracewarden_model::MAX_DESERIALIZE_DEPTH;
        // Past the store's own check on writing, as a record made by hand.
        let payload_of = |batch: &Batch| {
            let mut payload = vec![CODEC_VERSION];
            payload.extend(postcard::to_allocvec(batch).unwrap());
            payload
        };
        // Deeper than the store writes, within what the model reads.
        let deep = one_span_batch(nested(MAX_DESERIALIZE_DEPTH));
        assert_eq!(decode(&payload_of(&deep)).unwrap(), deep);
        // One more level is refused.
        let deeper = one_span_batch(nested(MAX_DESERIALIZE_DEPTH + 1));
        assert!(matches!(
            decode(&payload_of(&deeper)),
            Err(CodecError::Decode(_))
        ));
        // A million levels: `Array` (variant 6) of one element, down to
        // `Empty` (variant 0). Built from bytes, since a value this deep
        // could not even be dropped on a test thread's stack.
        let mut bytes = [6u8, 1].repeat(1_000_000);
        bytes.push(0);
        assert!(postcard::from_bytes::<AnyValue>(&bytes).is_err());
        // The depth counted for the failed decodes was released.
        assert_eq!(decode(&payload_of(&deep)).unwrap(), deep);
    }
}
