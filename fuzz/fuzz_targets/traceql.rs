//! TraceQL parsing of arbitrary text (the `q` of the search endpoints):
//! never a panic, a hang or a stack overflow; what parses prints a
//! canonical form that parses back to the same form, and evaluates on a
//! small trace without panicking.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tracewarden_model::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, SpanRecord, TraceId,
};
use tracewarden_traceql::{TraceView, parse};

fn trace() -> &'static [SpanRecord] {
    static TRACE: OnceLock<Vec<SpanRecord>> = OnceLock::new();
    TRACE.get_or_init(|| {
        let resource = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "gateway")],
            ..Resource::default()
        });
        let trace_id = TraceId::from_bytes([7; 16]);
        (1..=4u8)
            .map(|i| {
                let mut span = Span::new(trace_id, SpanId::from_bytes([i; 8]), "GET /login");
                span.parent_span_id = (i > 1).then(|| SpanId::from_bytes([i / 2; 8]));
                span.kind = SpanKind::Server;
                span.start_time_unix_nano = u64::from(i) * 1_000;
                span.end_time_unix_nano = u64::from(i) * 3_000;
                span.attributes = vec![
                    KeyValue::new("http.response.status_code", AnyValue::Int(401)),
                    KeyValue::new("client.address", "203.0.113.7"),
                ];
                SpanRecord::new(Arc::clone(&resource), Arc::new(Scope::default()), span)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = parse(text) else {
        return;
    };
    let printed = query.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
    assert_eq!(again.to_string(), printed);
    let spans = trace();
    for span in spans {
        let _ = query.matches_span(span);
    }
    let _ = query.required_conditions();
    let _ = query.evaluate(&TraceView::new(spans));
});
