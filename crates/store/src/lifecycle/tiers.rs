//! Where data is while the store runs, and reads across it.
//!
//! Three tiers, swapped under one `RwLock` so a reader always sees each span
//! in exactly one of them:
//!
//! - the **hot** tier, which appends go into;
//! - at most one **frozen** tier: a former hot tier being written into a
//!   segment, immutable and still served;
//! - the published **segments**.
//!
//! Appliers hold the read lock while they apply a batch, so once
//! [`Tiers::freeze`] holds the write lock no apply is half done in the tier
//! it freezes. Publishing a flushed segment adds it and drops the frozen
//! tier in one write-locked step; a compaction swaps the segments it merged
//! for the merged one the same way. Readers take the read lock only to clone
//! the `Arc`s, then read without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use tracewarden_model::{Records, TraceId};

use super::filter::span_matches;
use crate::hot::{HotCounts, HotTier, LogEntry, SpanRecord, Trace};
use crate::segment::{Segment, SpanFilter};
use crate::wal::Lsn;

/// A trace lookup, with the segments that could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceLookup {
    /// `None` when no readable tier holds a span or log record of the trace.
    pub trace: Option<Trace>,
    /// Segments that failed to read: the trace may miss what they hold.
    pub unreadable: Vec<UnreadableSegment>,
}

/// A segment a read could not use, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct UnreadableSegment {
    pub segment: u64,
    pub error: String,
}

/// The tiers as one reader sees them.
#[derive(Clone)]
pub(crate) struct TierState {
    pub hot: Arc<HotTier>,
    pub frozen: Option<Arc<HotTier>>,
    /// Published segments, by id.
    pub segments: Arc<[Arc<Segment>]>,
}

impl TierState {
    /// The trace across every tier of this state: spans ordered by start
    /// time (then span id), logs by time. A segment that fails to read is
    /// logged and left out, so one damaged file does not hide the rest.
    pub fn trace(&self, trace_id: TraceId) -> Option<Trace> {
        self.trace_checked(trace_id).trace
    }

    /// [`TierState::trace`], also naming the segments that could not be
    /// read (the trace may then miss spans).
    pub fn trace_checked(&self, trace_id: TraceId) -> TraceLookup {
        let mut spans = Vec::new();
        let mut logs = Vec::new();
        let mut unreadable = Vec::new();
        for tier in self.memory() {
            if let Some(trace) = tier.trace(trace_id) {
                spans.extend(trace.spans);
                logs.extend(trace.logs);
            }
        }
        for segment in self.segments.iter() {
            match segment.trace(trace_id) {
                Ok((segment_spans, segment_logs)) => {
                    spans.extend(segment_spans);
                    logs.extend(segment_logs);
                }
                Err(error) => {
                    tracing::error!(
                        segment = segment.id(),
                        %trace_id,
                        %error,
                        "failed to read a trace from a segment; the trace is incomplete"
                    );
                    unreadable.push(UnreadableSegment {
                        segment: segment.id(),
                        error: error.to_string(),
                    });
                }
            }
        }
        if spans.is_empty() && logs.is_empty() {
            return TraceLookup {
                trace: None,
                unreadable,
            };
        }
        sort_spans(&mut spans);
        logs.sort_by_key(|l| l.record.effective_time_unix_nano());
        TraceLookup {
            trace: Some(Trace {
                trace_id,
                spans,
                logs,
            }),
            unreadable,
        }
    }

    /// The in-memory tiers, hot first.
    pub fn memory(&self) -> impl Iterator<Item = &Arc<HotTier>> {
        std::iter::once(&self.hot).chain(self.frozen.as_ref())
    }
}

pub(crate) struct Tiers {
    state: RwLock<TierState>,
    /// Spans and log records in the in-memory tiers, for the memory bound
    /// appends check without taking the lock.
    memory_rows: AtomicU64,
    /// Wakes the appends waiting for memory when a publish frees the frozen
    /// tier's rows (see [`crate::Store::append`]).
    pub(crate) freed: tokio::sync::Notify,
}

impl Tiers {
    pub fn new(hot: HotTier, segments: Vec<Arc<Segment>>) -> Tiers {
        let counts = hot.counts();
        Tiers {
            memory_rows: AtomicU64::new(counts.spans.saturating_add(counts.logs)),
            freed: tokio::sync::Notify::new(),
            state: RwLock::new(TierState {
                hot: Arc::new(hot),
                frozen: None,
                segments: segments.into(),
            }),
        }
    }

    /// Applies a durable WAL record to the hot tier; returns the hot tier's
    /// counts after it, for the flush trigger.
    pub fn apply(&self, lsn: Lsn, records: Records) -> HotCounts {
        let rows = (records.spans.len() + records.logs.len()) as u64;
        let state = self.state.read();
        state.hot.apply(lsn, records);
        self.memory_rows.fetch_add(rows, Ordering::Relaxed);
        state.hot.counts()
    }

    /// Spans and log records in the in-memory tiers.
    pub fn memory_rows(&self) -> u64 {
        self.memory_rows.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> TierState {
        self.state.read().clone()
    }

    /// The frozen tier: the one already frozen (a flush that failed and is
    /// retried), or the hot tier swapped for a new one. `None` when there is
    /// nothing to flush.
    pub fn freeze(&self) -> Option<Arc<HotTier>> {
        let mut state = self.state.write();
        if let Some(frozen) = &state.frozen {
            return Some(Arc::clone(frozen));
        }
        if state.hot.is_empty() {
            return None;
        }
        let frozen = std::mem::replace(&mut state.hot, Arc::new(HotTier::new()));
        state.frozen = Some(Arc::clone(&frozen));
        Some(frozen)
    }

    /// Publishes `segment` in place of the segments `replaced`, and removes
    /// the frozen tier when the segment holds it: one step for readers. The
    /// frozen tier is returned, so that freeing it (a tenth of a second for a
    /// full one) happens outside the lock appends and reads wait on.
    #[must_use = "drop the frozen tier outside the lock"]
    pub fn publish(
        &self,
        segment: Option<Arc<Segment>>,
        replaced: &[u64],
        unfreeze: bool,
    ) -> Option<Arc<HotTier>> {
        let mut state = self.state.write();
        let mut segments: Vec<Arc<Segment>> = state
            .segments
            .iter()
            .filter(|s| !replaced.contains(&s.id()))
            .cloned()
            .collect();
        if let Some(segment) = segment {
            segments.push(segment);
        }
        segments.sort_by_key(|s| s.id());
        state.segments = segments.into();
        let unfrozen = if unfreeze { state.frozen.take() } else { None };
        if let Some(frozen) = &unfrozen {
            let counts = frozen.counts();
            self.memory_rows
                .fetch_sub(counts.spans.saturating_add(counts.logs), Ordering::Relaxed);
            self.freed.notify_waiters();
        }
        unfrozen
    }

    /// Counts summed over the in-memory tiers.
    pub fn memory_counts(&self) -> HotCounts {
        let state = self.snapshot();
        let mut total = HotCounts::default();
        for tier in state.memory() {
            let counts = tier.counts();
            total.spans += counts.spans;
            total.logs += counts.logs;
            total.traces += counts.traces;
        }
        total
    }

    /// The trace across every tier: spans ordered by start time (then span
    /// id), logs by time. A segment that fails to read is logged and left
    /// out, so one damaged file does not hide the rest of the trace.
    pub fn trace(&self, trace_id: TraceId) -> Option<Trace> {
        self.snapshot().trace(trace_id)
    }

    /// Spans matching `filter` in every tier, ordered by start time (then
    /// trace and span id). With a limit, at most that many: the earliest of
    /// those each tier found first, not necessarily the earliest overall.
    pub fn find_spans(&self, filter: &SpanFilter) -> crate::Result<Vec<SpanRecord>> {
        let state = self.snapshot();
        let mut spans = Vec::new();
        for tier in state.memory() {
            spans.extend(tier.scan_spans(&|span| span_matches(filter, span), filter.limit));
        }
        for segment in state.segments.iter() {
            spans.extend(segment.scan_spans(filter)?);
        }
        sort_spans(&mut spans);
        if let Some(limit) = filter.limit {
            spans.truncate(limit);
        }
        Ok(spans)
    }

    /// Ids of the traces in the in-memory tiers, each once.
    pub fn memory_trace_ids(&self) -> Vec<TraceId> {
        let state = self.snapshot();
        let mut ids: Vec<TraceId> = state.memory().flat_map(|t| t.trace_ids()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Untraced log records of the in-memory tiers, by time.
    pub fn memory_untraced_logs(&self) -> Vec<LogEntry> {
        let state = self.snapshot();
        let mut logs: Vec<LogEntry> = state.memory().flat_map(|t| t.untraced_logs()).collect();
        logs.sort_by_key(|l| l.record.effective_time_unix_nano());
        logs
    }
}

fn sort_spans(spans: &mut [SpanRecord]) {
    spans.sort_by_key(|s| (s.span.start_time_unix_nano, s.span.trace_id, s.span.span_id));
}
