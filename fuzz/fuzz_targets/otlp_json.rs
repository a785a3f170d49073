//! OTLP/JSON decoding of arbitrary bytes: never a panic, a hang or a stack
//! overflow, and what is accepted keeps the model's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracewarden_ingest::decoded::MAX_MESSAGES;
use tracewarden_ingest::otlp::json::{decode_logs, decode_traces};
use tracewarden_ingest::{Decoded, Limits};

fn check(decoded: &Decoded, limits: &Limits) {
    assert!(decoded.messages().len() <= MAX_MESSAGES);
    for (_, _, span) in decoded.batch.spans() {
        assert!(!span.trace_id.is_zero() && !span.span_id.is_zero());
        assert!(span.attributes.len() <= limits.max_attributes_per_record);
        assert!(span.events.len() <= limits.max_events_per_span);
        assert!(span.links.len() <= limits.max_links_per_span);
        assert!(
            span.attributes
                .iter()
                .all(|kv| kv.value.depth() <= limits.max_value_depth)
        );
    }
    for (_, _, log) in decoded.batch.logs() {
        assert!((0..=24).contains(&log.severity_number));
        assert!(log.body.depth() <= limits.max_value_depth);
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(decoded) = decode_traces(data, &limits) {
        check(&decoded, &limits);
    }
    if let Ok(decoded) = decode_logs(data, &limits) {
        check(&decoded, &limits);
    }
});
