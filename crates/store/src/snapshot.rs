//! A consistent view of the store for a query.
//!
//! A query reads in several steps (scan for candidate spans, then fetch the
//! whole traces); a flush between two steps moves spans from the frozen tier
//! into a segment. A [`Snapshot`] holds the tiers as they were when it was
//! taken, so every step sees each span exactly once, and the files it reads
//! stay open even if compaction or retention removes them meanwhile.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use tracewarden_model::{LogEntry, SpanRecord, Trace, TraceId};

use crate::Result;
use crate::hot::HotTier;
use crate::lifecycle::span_matches;
use crate::lifecycle::{TierState, TraceLookup};
use crate::segment::{Segment, SpanFilter, SpanProjection};

/// The store's tiers at one instant. Cheap to take (a few `Arc` clones).
#[derive(Clone)]
pub struct Snapshot {
    state: TierState,
}

impl Snapshot {
    pub(crate) fn new(state: TierState) -> Snapshot {
        Snapshot { state }
    }

    /// The parts a scan visits, newest data first: the hot tier, the tier
    /// being flushed, then the segments from the newest to the oldest. Each
    /// can be scanned on its own (and on its own thread).
    pub fn units(&self) -> Vec<ScanUnit> {
        let memory = self
            .state
            .memory()
            .map(|tier| ScanUnit(Unit::Memory(Arc::clone(tier))));
        let segments = self
            .state
            .segments
            .iter()
            .rev()
            .map(|segment| ScanUnit(Unit::Segment(Arc::clone(segment))));
        memory.chain(segments).collect()
    }

    /// The whole trace as this snapshot holds it (see [`crate::Store::trace`]).
    pub fn trace(&self, trace_id: TraceId) -> Option<Trace> {
        self.state.trace(trace_id)
    }

    /// [`Snapshot::trace`], naming the segments that could not be read.
    pub fn trace_checked(&self, trace_id: TraceId) -> TraceLookup {
        self.state.trace_checked(trace_id)
    }
}

/// One independently scannable part of a [`Snapshot`].
#[derive(Clone)]
pub struct ScanUnit(Unit);

#[derive(Clone)]
enum Unit {
    /// An in-memory tier (hot, or frozen while it is flushed).
    Memory(Arc<HotTier>),
    /// A Parquet segment.
    Segment(Arc<Segment>),
}

impl ScanUnit {
    /// The segment id, `None` for an in-memory tier.
    pub fn segment_id(&self) -> Option<u64> {
        match &self.0 {
            Unit::Memory(_) => None,
            Unit::Segment(segment) => Some(segment.id()),
        }
    }

    /// Spans held.
    pub fn span_count(&self) -> u64 {
        match &self.0 {
            Unit::Memory(tier) => tier.counts().spans,
            Unit::Segment(segment) => segment.span_count(),
        }
    }

    /// Whether spans starting in `[start, end)` (unix nanoseconds) may be
    /// here: segments know their time range, memory tiers may hold anything.
    pub fn may_overlap(&self, start_unix_nano: u64, end_unix_nano: u64) -> bool {
        match &self.0 {
            Unit::Memory(_) => true,
            Unit::Segment(segment) => {
                let (min, max) = segment.time_range_unix_nano();
                segment.span_count() > 0 && min < end_unix_nano && max >= start_unix_nano
            }
        }
    }

    /// Whether spans of the trace may be here: exact for memory tiers; for
    /// segments `false` is certain (statistics and bloom filters rule it
    /// out) and `true` is not.
    pub fn may_contain_trace(&self, trace_id: TraceId) -> Result<bool> {
        match &self.0 {
            Unit::Memory(tier) => Ok(tier.contains_trace(trace_id)),
            Unit::Segment(segment) => segment.may_contain_trace(trace_id),
        }
    }

    /// The log records of any of `traces` held here (in no promised
    /// order): one read of a segment's logs file for all of them.
    pub fn logs_of_traces(&self, traces: &Arc<HashSet<TraceId>>) -> Result<Vec<LogEntry>> {
        match &self.0 {
            Unit::Memory(tier) => Ok(traces
                .iter()
                .filter_map(|id| tier.trace(*id))
                .flat_map(|trace| trace.logs)
                .collect()),
            Unit::Segment(segment) => segment.logs_of_traces(traces),
        }
    }

    /// Calls `visit` with each span matching `filter` (in no promised
    /// order), until it breaks; returns whether it did. Spans read from a
    /// segment come owned, those of a memory tier borrowed: `into_owned`
    /// copies only the latter. Segments prune by
    /// statistics, page indexes and bloom filters first.
    pub fn for_each_span(
        &self,
        filter: &SpanFilter,
        visit: &mut dyn FnMut(Cow<'_, SpanRecord>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        self.for_each_span_projected(filter, SpanProjection::ALL, visit)
    }

    /// [`ScanUnit::for_each_span`] decoding only what `projection` asks
    /// for from segments (memory tiers hand over whole spans).
    pub fn for_each_span_projected(
        &self,
        filter: &SpanFilter,
        projection: SpanProjection,
        visit: &mut dyn FnMut(Cow<'_, SpanRecord>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        match &self.0 {
            Unit::Memory(tier) => {
                let mut left = filter.limit.unwrap_or(usize::MAX);
                Ok(tier.for_each_span(&mut |span| {
                    if left == 0 {
                        return ControlFlow::Break(());
                    }
                    if span_matches(filter, span) {
                        left -= 1;
                        visit(Cow::Borrowed(span))?;
                    }
                    ControlFlow::Continue(())
                }))
            }
            Unit::Segment(segment) => segment.for_each_span_projected(filter, projection, visit),
        }
    }
}
