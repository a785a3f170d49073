//! Zipkin v2 JSON decoding of arbitrary bytes: never a panic, a hang or a
//! stack overflow, and what is accepted keeps the model's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracewarden_ingest::Limits;
use tracewarden_ingest::decoded::MAX_MESSAGES;
use tracewarden_ingest::zipkin::decode_spans;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(decoded) = decode_spans(data, &limits) {
        assert!(decoded.messages().len() <= MAX_MESSAGES);
        for (resource, _, span) in decoded.batch.spans() {
            // Every span lands under a named service.
            assert!(!resource.service_name().is_empty());
            assert!(!span.trace_id.is_zero() && !span.span_id.is_zero());
            assert_ne!(span.parent_span_id, Some(span.span_id));
            assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
            assert!(span.attributes.len() <= limits.max_attributes_per_record);
        }
    }
});
