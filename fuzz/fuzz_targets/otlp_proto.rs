//! OTLP protobuf decoding of arbitrary bytes: never a panic, a hang or a
//! stack overflow, and what is accepted keeps the model's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracewarden_ingest::decoded::MAX_MESSAGES;
use tracewarden_ingest::otlp::proto::{decode_logs, decode_traces};
use tracewarden_ingest::{Decoded, Limits};

fn check(decoded: &Decoded, limits: &Limits, input_len: usize) {
    assert!(decoded.messages().len() <= MAX_MESSAGES);
    // Every record, kept or rejected, takes at least a key and a length byte.
    let records = decoded.batch.span_count() + decoded.batch.log_count();
    let rejected = decoded.rejected_spans + decoded.rejected_logs;
    assert!(records as u64 + rejected <= input_len as u64 / 2);
    for (_, _, span) in decoded.batch.spans() {
        assert!(!span.trace_id.is_zero() && !span.span_id.is_zero());
        assert!(span.parent_span_id.is_none_or(|p| !p.is_zero()));
        assert!(span.attributes.len() <= limits.max_attributes_per_record);
        assert!(span.events.len() <= limits.max_events_per_span);
        assert!(span.links.len() <= limits.max_links_per_span);
        assert!(
            span.attributes
                .iter()
                .all(|kv| kv.value.depth() <= limits.max_value_depth)
        );
        assert!(
            span.events
                .iter()
                .all(|e| e.attributes.len() <= limits.max_attributes_per_record)
        );
        assert!(
            span.links
                .iter()
                .all(|l| !l.trace_id.is_zero() && !l.span_id.is_zero())
        );
    }
    for (_, _, log) in decoded.batch.logs() {
        assert!((0..=24).contains(&log.severity_number));
        assert!(log.body.depth() <= limits.max_value_depth);
        assert!(log.attributes.len() <= limits.max_attributes_per_record);
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(decoded) = decode_traces(data, &limits) {
        check(&decoded, &limits, data.len());
    }
    if let Ok(decoded) = decode_logs(data, &limits) {
        check(&decoded, &limits, data.len());
    }
});
