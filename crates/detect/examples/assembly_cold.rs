//! Trace assembly on cold memory: 5M spans pushed into a million buffered
//! traces (five rounds over them, so every push finds its trace gone
//! cold), then all handed over at once. Prints nanoseconds per span for
//! both. `record` notes each span's WAL record (`TraceBuffer::push_from`,
//! as the server does); without it, spans carry no origin.
//!
//! `cargo run --release -p tracewarden-detect --example assembly_cold -- record`

use std::sync::Arc;
use std::time::Instant;

use tracewarden_detect::assembly::{AssemblyConfig, Origin, TraceBuffer};
use tracewarden_model::{Resource, Scope, Span, SpanId, SpanRecord, TraceId};

const TRACES: u64 = 1_000_000;
const ROUNDS: u64 = 5;
const BATCH: u64 = 1_000;

fn main() {
    let record = std::env::args().nth(1).as_deref() == Some("record");
    let resource = Arc::new(Resource::default());
    let scope = Arc::new(Scope::default());
    let mut spans = Vec::with_capacity((TRACES * ROUNDS) as usize);
    for round in 0..ROUNDS {
        for trace in 0..TRACES {
            // Spread over the id space, as random ids are.
            let mut id = [1u8; 16];
            id[..8].copy_from_slice(&trace.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            let span_id = SpanId::from_bytes((round * TRACES + trace + 1).to_le_bytes());
            let span = Span::new(TraceId::from_bytes(id), span_id, "op");
            spans.push(SpanRecord::new(
                Arc::clone(&resource),
                Arc::clone(&scope),
                span,
            ));
        }
    }
    let config = AssemblyConfig {
        max_traces: 2 * TRACES as usize,
        max_spans: 2 * (TRACES * ROUNDS) as usize,
        ..AssemblyConfig::default()
    };
    let mut buffer = TraceBuffer::new(config);
    let mut out = Vec::new();
    let count = spans.len() as f64;
    let started = Instant::now();
    for (i, span) in (0u64..).zip(spans) {
        let origin = if record {
            Origin::new(i / BATCH + 1, (i % BATCH) as usize)
        } else {
            None
        };
        buffer.push_from(span, origin, 0, &mut out);
    }
    let pushed = started.elapsed();
    let started = Instant::now();
    buffer.complete(u64::MAX / 2, &mut out);
    let handed: usize = out.iter().map(|t| t.spans.len()).sum();
    drop(out);
    let completed = started.elapsed();
    println!(
        "{}: push {:.1} ns per span, hand over and drop {:.1} ns per span ({handed} spans)",
        if record { "with origins" } else { "without" },
        pushed.as_nanos() as f64 / count,
        completed.as_nanos() as f64 / count,
    );
}
