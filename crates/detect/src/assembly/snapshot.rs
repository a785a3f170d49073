//! The buffered traces taken for a checkpoint without copying them, and
//! encoded elsewhere. [`TraceBuffer::snapshot`] takes a reference to each
//! buffered trace's spans with their origins (the buffer holds them in an
//! `Arc` per trace), which is quick; the snapshot is `Send` and serialises
//! exactly as [`SavedTraces`] (the same fields in the same order, so
//! postcard writes the same bytes and [`TraceBuffer::restore`] reads
//! either), so the encoding can run on another thread while detection goes
//! on. A span with an origin, of a trace buffered less than
//! [`NAMED_MAX_AGE`], is written as its origin: the encoding reads neither
//! the span nor its resource, only the trace's list of spans and origins.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{Error as _, SerializeSeq, SerializeStruct, Serializer};
use tracewarden_model::{Resource, Scope, Span, SpanRecord, TraceId};

use super::origin::{NAMED_MAX_AGE, Origin};
use super::{Buffered, SavedSpan, SavedTrace, SavedTraces, TraceBuffer, nanos};

/// The buffered traces at one moment; the default is an empty buffer's.
#[derive(Clone, Debug)]
pub struct TracesSnapshot {
    /// In the order they started arriving.
    traces: Vec<SnapshotTrace>,
    /// The lowest LSN the last encoding named (`u64::MAX`: none), for
    /// [`TracesSnapshot::lowest_named_lsn`].
    lowest_named: Cell<u64>,
}

impl Default for TracesSnapshot {
    fn default() -> Self {
        TracesSnapshot {
            traces: Vec::new(),
            lowest_named: Cell::new(u64::MAX),
        }
    }
}

#[derive(Clone, Debug)]
struct SnapshotTrace {
    trace_id: TraceId,
    first_arrival: u64,
    last_arrival: u64,
    root_arrival: Option<u64>,
    late: bool,
    /// Whether spans with an origin are named rather than copied.
    named: bool,
    spans: Arc<Buffered>,
}

impl SnapshotTrace {
    /// Each span with its origin when it is named, `None` when it is
    /// copied.
    fn names(&self) -> impl Iterator<Item = (&SpanRecord, Option<Origin>)> + '_ {
        let named = self.named;
        self.spans
            .records
            .iter()
            .zip(&self.spans.origins)
            .map(move |(record, origin)| (record, origin.filter(|_| named)))
    }

    /// The spans copied, not named.
    fn copied(&self) -> impl Iterator<Item = &SpanRecord> + '_ {
        self.names()
            .filter_map(|(record, name)| name.is_none().then_some(record))
    }
}

impl TraceBuffer {
    /// The buffered traces, shared with the buffer: a trace that gains a
    /// span, or is handed over, while a snapshot is alive is copied out of
    /// it instead of changed or moved.
    pub fn snapshot(&self) -> TracesSnapshot {
        let mut pending: Vec<_> = self.traces.iter().collect();
        pending.sort_unstable_by_key(|(_, p)| p.generation);
        let named_since = self.now.saturating_sub(nanos(NAMED_MAX_AGE));
        TracesSnapshot {
            traces: pending
                .into_iter()
                .map(|(id, p)| SnapshotTrace {
                    trace_id: *id,
                    first_arrival: p.first_arrival,
                    last_arrival: p.last_arrival,
                    root_arrival: p.root_arrival,
                    late: p.late,
                    named: p.first_arrival >= named_since,
                    spans: p.spans.clone(),
                })
                .collect(),
            ..TracesSnapshot::default()
        }
    }
}

impl TracesSnapshot {
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Spans held, copied or named.
    pub fn spans(&self) -> usize {
        self.traces.iter().map(|t| t.spans.len()).sum()
    }

    /// The lowest WAL record (LSN) the last encoding named, if it named
    /// any: the caller keeps the WAL from there while the checkpoint is
    /// the one a restart would read.
    pub fn lowest_named_lsn(&self) -> Option<u64> {
        Some(self.lowest_named.get()).filter(|&lsn| lsn != u64::MAX)
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
                    trace_id: t.trace_id,
                    first_arrival: t.first_arrival,
                    last_arrival: t.last_arrival,
                    root_arrival: t.root_arrival,
                    late: t.late,
                    spans: t
                        .names()
                        .map(|(record, name)| match name {
                            Some(origin) => SavedSpan::Named(origin),
                            None => {
                                let (resource, scope) =
                                    indices.next().copied().unwrap_or((u32::MAX, u32::MAX));
                                SavedSpan::Copied(
                                    resource,
                                    scope,
                                    Box::new(Span::clone(&record.span)),
                                )
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Resources and scopes stored once each (one per exporting service and
/// batch), and the indices of every copied span's, trace after trace.
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
            indices: Vec::new(),
        };
        let mut resources: HashMap<*const Resource, u32> = HashMap::new();
        let mut scopes: HashMap<*const Scope, u32> = HashMap::new();
        for record in snapshot.traces.iter().flat_map(SnapshotTrace::copied) {
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
        self.lowest_named.set(u64::MAX);
        let mut out = serializer.serialize_struct("SavedTraces", 3)?;
        out.serialize_field("resources", &shared.resources)?;
        out.serialize_field("scopes", &shared.scopes)?;
        out.serialize_field(
            "traces",
            &Traces {
                traces: &self.traces,
                indices: &shared.indices,
                lowest_named: &self.lowest_named,
            },
        )?;
        out.end()
    }
}

/// The `traces` field: each as a `SavedTrace`.
struct Traces<'a> {
    traces: &'a [SnapshotTrace],
    indices: &'a [(u32, u32)],
    lowest_named: &'a Cell<u64>,
}

impl Serialize for Traces<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.traces.len()))?;
        let mut first = 0;
        for trace in self.traces {
            let copied = trace.names().filter(|(_, name)| name.is_none()).count();
            let end = first + copied;
            seq.serialize_element(&Trace {
                trace,
                indices: self.indices.get(first..end).unwrap_or(&[]),
                lowest_named: self.lowest_named,
            })?;
            first = end;
        }
        seq.end()
    }
}

struct Trace<'a> {
    trace: &'a SnapshotTrace,
    indices: &'a [(u32, u32)],
    lowest_named: &'a Cell<u64>,
}

impl Serialize for Trace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.trace;
        let mut out = serializer.serialize_struct("SavedTrace", 6)?;
        out.serialize_field("trace_id", &t.trace_id)?;
        out.serialize_field("first_arrival", &t.first_arrival)?;
        out.serialize_field("last_arrival", &t.last_arrival)?;
        out.serialize_field("root_arrival", &t.root_arrival)?;
        out.serialize_field("late", &t.late)?;
        out.serialize_field("spans", &Spans(self))?;
        out.end()
    }
}

/// A [`SavedSpan`] written from the shared span.
#[derive(Serialize)]
#[serde(rename = "SavedSpan")]
enum SpanRef<'a> {
    Copied(u32, u32, &'a Span),
    Named(Origin),
}

/// A trace's `spans` field: each copied (resource index, scope index,
/// span) or named (its origin).
struct Spans<'t, 'a>(&'t Trace<'a>);

impl Serialize for Spans<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let trace = self.0;
        let mut seq = serializer.serialize_seq(Some(trace.trace.spans.len()))?;
        // Only the spans without an origin are read.
        let mut indices = trace.indices.iter();
        let mut lowest = trace.lowest_named.get();
        for (record, name) in trace.trace.names() {
            match name {
                Some(origin) => {
                    lowest = lowest.min(origin.lsn.get());
                    seq.serialize_element(&SpanRef::Named(origin))?;
                }
                None => {
                    let Some((resource, scope)) = indices.next() else {
                        // `Shared::of` indexed every copied span.
                        return Err(S::Error::custom("a copied span without its resource"));
                    };
                    seq.serialize_element(&SpanRef::Copied(*resource, *scope, &record.span))?;
                }
            }
        }
        trace.lowest_named.set(lowest);
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

    /// Spans with an origin are named, unless their trace is older than
    /// `NAMED_MAX_AGE`; the shared snapshot writes the copy's bytes, and
    /// tells the lowest record it named.
    #[test]
    fn a_snapshot_names_young_traces_spans_and_copies_old_ones() {
        let mut buffer = TraceBuffer::new(AssemblyConfig {
            idle: std::time::Duration::from_secs(3600),
            ..AssemblyConfig::default()
        });
        let mut out: Vec<AssembledTrace> = Vec::new();
        let shop = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "shop")],
            ..Resource::default()
        });
        let sec = 1_000_000_000;
        let age = nanos(NAMED_MAX_AGE);
        // Trace 1 started long ago: copied whole. Trace 2 is young: its
        // spans with an origin are named, the other copied.
        buffer.push_from(record(1, 1, None, &shop), Origin::new(4, 0), sec, &mut out);
        buffer.push_from(
            record(2, 2, None, &shop),
            Origin::new(12, 3),
            age + 2 * sec,
            &mut out,
        );
        buffer.push(record(2, 3, Some(2), &shop), age + 2 * sec, &mut out);
        buffer.push_from(
            record(1, 4, Some(1), &shop),
            Origin::new(11, 0),
            age + 2 * sec,
            &mut out,
        );
        buffer.push_from(
            record(2, 5, Some(2), &shop),
            Origin::new(13, 0),
            age + 3 * sec,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(TracesSnapshot::default().lowest_named_lsn(), None);
        let snapshot = buffer.snapshot();
        assert_eq!(snapshot.lowest_named_lsn(), None, "not encoded yet");
        let shared = postcard::to_allocvec(&snapshot).expect("encode the snapshot");
        assert_eq!(snapshot.lowest_named_lsn(), Some(12));
        let saved = buffer.saved();
        assert_eq!(
            shared,
            postcard::to_allocvec(&saved).expect("encode the copy")
        );
        let kinds: Vec<Vec<bool>> = saved
            .traces
            .iter()
            .map(|t| {
                t.spans
                    .iter()
                    .map(|s| matches!(s, SavedSpan::Named(_)))
                    .collect()
            })
            .collect();
        assert_eq!(kinds, vec![vec![false, false], vec![true, false, true]]);
        assert_eq!(saved.resources.len(), 1);

        // Restored, the copied spans are back at once, the named ones
        // after their records.
        let mut restored = TraceBuffer::new(AssemblyConfig::default());
        restored.restore(postcard::from_bytes(&shared).expect("decode"), &mut out);
        assert_eq!(restored.wanted_lsns(), vec![12, 13]);
        assert_eq!(restored.stats().buffered_spans, 3);
    }
}
