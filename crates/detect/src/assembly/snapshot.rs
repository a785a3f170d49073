//! The buffered traces taken for a checkpoint without copying them, and
//! encoded elsewhere. [`TraceBuffer::snapshot`] takes a reference to each
//! buffered trace's spans (the buffer holds them in an `Arc` per trace),
//! which is quick; the
//! snapshot is `Send` and serialises exactly as [`SavedTraces`] (the same
//! fields in the same order, so postcard writes the same bytes and
//! [`TraceBuffer::restore`] reads either), so the encoding, most of a large
//! checkpoint's cost, can run on another thread while detection goes on.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use tracewarden_model::{Resource, Scope, Span, SpanRecord};

use super::{SavedTrace, SavedTraces, TraceBuffer};

/// The buffered traces at one moment; the default is an empty buffer's.
#[derive(Clone, Debug, Default)]
pub struct TracesSnapshot {
    /// In the order they started arriving.
    traces: Vec<SnapshotTrace>,
}

#[derive(Clone, Debug)]
struct SnapshotTrace {
    first_arrival: u64,
    last_arrival: u64,
    root_arrival: Option<u64>,
    late: bool,
    spans: Arc<Vec<SpanRecord>>,
}

impl TraceBuffer {
    /// The buffered traces, shared with the buffer: a trace that gains a
    /// span, or is handed over, while a snapshot is alive is copied out of
    /// it instead of changed or moved.
    pub fn snapshot(&self) -> TracesSnapshot {
        let mut pending: Vec<_> = self.traces.values().collect();
        pending.sort_unstable_by_key(|p| p.generation);
        TracesSnapshot {
            traces: pending
                .into_iter()
                .map(|p| SnapshotTrace {
                    first_arrival: p.first_arrival,
                    last_arrival: p.last_arrival,
                    root_arrival: p.root_arrival,
                    late: p.late,
                    spans: p.spans.clone(),
                })
                .collect(),
        }
    }
}

impl TracesSnapshot {
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Spans held.
    pub fn spans(&self) -> usize {
        self.traces.iter().map(|t| t.spans.len()).sum()
    }

    /// The same traces as owned [`SavedTraces`].
    pub fn to_saved(&self) -> SavedTraces {
        let shared = Shared::of(self);
        let mut indices = shared.indices.iter();
        SavedTraces {
            resources: shared.resources.into_iter().cloned().collect(),
            scopes: shared.scopes.into_iter().cloned().collect(),
            traces: self
                .traces
                .iter()
                .map(|t| SavedTrace {
                    first_arrival: t.first_arrival,
                    last_arrival: t.last_arrival,
                    root_arrival: t.root_arrival,
                    late: t.late,
                    spans: t
                        .spans
                        .iter()
                        .zip(indices.by_ref())
                        .map(|(record, &(resource, scope))| {
                            (resource, scope, Span::clone(&record.span))
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Resources and scopes stored once each (one per exporting service and
/// batch), and the indices of every span's, trace after trace.
struct Shared<'a> {
    resources: Vec<&'a Resource>,
    scopes: Vec<&'a Scope>,
    indices: Vec<(u32, u32)>,
}

impl<'a> Shared<'a> {
    fn of(snapshot: &'a TracesSnapshot) -> Shared<'a> {
        let mut shared = Shared {
            resources: Vec::new(),
            scopes: Vec::new(),
            indices: Vec::with_capacity(snapshot.spans()),
        };
        let mut resources: HashMap<*const Resource, u32> = HashMap::new();
        let mut scopes: HashMap<*const Scope, u32> = HashMap::new();
        for record in snapshot.traces.iter().flat_map(|t| t.spans.iter()) {
            let resource = *resources
                .entry(Arc::as_ptr(&record.resource))
                .or_insert_with(|| {
                    shared.resources.push(&record.resource);
                    u32::try_from(shared.resources.len() - 1).unwrap_or(u32::MAX)
                });
            let scope = *scopes.entry(Arc::as_ptr(&record.scope)).or_insert_with(|| {
                shared.scopes.push(&record.scope);
                u32::try_from(shared.scopes.len() - 1).unwrap_or(u32::MAX)
            });
            shared.indices.push((resource, scope));
        }
        shared
    }
}

impl Serialize for TracesSnapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shared = Shared::of(self);
        let mut out = serializer.serialize_struct("SavedTraces", 3)?;
        out.serialize_field("resources", &shared.resources)?;
        out.serialize_field("scopes", &shared.scopes)?;
        out.serialize_field(
            "traces",
            &Traces {
                traces: &self.traces,
                indices: &shared.indices,
            },
        )?;
        out.end()
    }
}

/// The `traces` field: each as a `SavedTrace`.
struct Traces<'a> {
    traces: &'a [SnapshotTrace],
    indices: &'a [(u32, u32)],
}

impl Serialize for Traces<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.traces.len()))?;
        let mut first = 0;
        for trace in self.traces {
            let end = first + trace.spans.len();
            seq.serialize_element(&Trace {
                trace,
                indices: self.indices.get(first..end).unwrap_or(&[]),
            })?;
            first = end;
        }
        seq.end()
    }
}

struct Trace<'a> {
    trace: &'a SnapshotTrace,
    indices: &'a [(u32, u32)],
}

impl Serialize for Trace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.trace;
        let mut out = serializer.serialize_struct("SavedTrace", 5)?;
        out.serialize_field("first_arrival", &t.first_arrival)?;
        out.serialize_field("last_arrival", &t.last_arrival)?;
        out.serialize_field("root_arrival", &t.root_arrival)?;
        out.serialize_field("late", &t.late)?;
        out.serialize_field("spans", &Spans(self))?;
        out.end()
    }
}

/// A trace's `spans` field: (resource index, scope index, span) each.
struct Spans<'t, 'a>(&'t Trace<'a>);

impl Serialize for Spans<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let trace = self.0;
        let mut seq = serializer.serialize_seq(Some(trace.trace.spans.len()))?;
        for (record, (resource, scope)) in trace.trace.spans.iter().zip(trace.indices) {
            seq.serialize_element(&(resource, scope, &record.span))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AssembledTrace, AssemblyConfig};
    use super::*;
    use tracewarden_model::{KeyValue, Span, SpanId, TraceId};

    fn record(trace: u8, span: u8, parent: Option<u8>, resource: &Arc<Resource>) -> SpanRecord {
        let mut s = Span::new(
            TraceId::from_bytes([trace; 16]),
            SpanId::from_bytes([span; 8]),
            format!("span {span}"),
        );
        s.parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
        s.attributes.push(KeyValue::new("http.route", "/api/{id}"));
        SpanRecord {
            resource: Arc::clone(resource),
            scope: Arc::new(Scope::default()),
            span: s.into(),
        }
    }

    #[test]
    fn a_snapshot_encodes_as_the_saved_traces_and_leaves_the_buffer_whole() {
        let mut buffer = TraceBuffer::new(AssemblyConfig::default());
        let mut out: Vec<AssembledTrace> = Vec::new();
        let shop = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "shop")],
            ..Resource::default()
        });
        let cart = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "cart")],
            ..Resource::default()
        });
        let sec = 1_000_000_000;
        for (trace, span, parent, resource, at) in [
            (3, 2, Some(1), &shop, 0),
            (1, 5, Some(4), &cart, sec),
            (3, 1, None, &shop, 2 * sec),
            (2, 9, None, &cart, 3 * sec),
            (1, 4, None, &shop, 4 * sec),
        ] {
            buffer.push(record(trace, span, parent, resource), at, &mut out);
        }
        assert!(out.is_empty());
        let snapshot = buffer.snapshot();
        assert_eq!(snapshot.spans(), 5);
        let shared = postcard::to_allocvec(&snapshot).expect("encode the snapshot");
        let copied = postcard::to_allocvec(&buffer.saved()).expect("encode the copy");
        assert_eq!(shared, copied);
        let decoded: SavedTraces = postcard::from_bytes(&shared).expect("decode");
        assert_eq!(decoded, buffer.saved());

        // A span arriving while the snapshot lives goes into a copy of its
        // trace; traces handed over then are copied out of it; the snapshot
        // still encodes what it took.
        buffer.push(record(3, 7, Some(1), &shop), 5 * sec, &mut out);
        assert_eq!(buffer.saved().spans(), 6);
        assert_eq!(postcard::to_allocvec(&snapshot).expect("encode"), copied);
        buffer.complete(11 * sec, &mut out);
        assert_eq!(out.iter().map(|t| t.spans.len()).sum::<usize>(), 6);
        assert_eq!(out[0].spans[0].span.name, "span 2");
        assert_eq!(postcard::to_allocvec(&snapshot).expect("encode"), copied);
        drop(snapshot);

        let empty = TraceBuffer::new(AssemblyConfig::default());
        assert!(empty.snapshot().is_empty());
        assert_eq!(
            postcard::to_allocvec(&TracesSnapshot::default()).expect("encode"),
            postcard::to_allocvec(&empty.saved()).expect("encode")
        );
    }
}
