//! Trace assembly: spans arrive in batches, in any order, each service
//! exporting on its own schedule; whole-trace rules need every span of a
//! trace. [`TraceBuffer`] holds spans per trace id until the trace is
//! complete, then hands the trace over once.
//!
//! # When a trace is complete
//!
//! Time is the `now` the caller passes (unix nanoseconds, the arrival
//! clock); the buffer reads no clock of its own and never lets `now` go
//! backwards. A trace is complete at [`TraceBuffer::complete`] when
//!
//! - no span of it arrived for [`AssemblyConfig::idle`], or
//! - its root span (no parent span id) arrived `idle` ago, even if other
//!   spans are still trickling in (the root ends last, so its arrival
//!   says the request is over), or
//! - it has been buffered for [`AssemblyConfig::max_wait`] (a trace that
//!   never goes quiet); it is then marked partial ([`Partial::MaxWait`]).
//!
//! # Limits
//!
//! Memory is bounded by three caps. Nothing is dropped silently: a trace
//! pushed out by a cap is handed over as it is, marked [`Partial`], and
//! counted in [`AssemblyStats`].
//!
//! - [`AssemblyConfig::max_traces`]: a new trace in a full buffer first
//!   pushes out the trace nearest its deadline ([`Partial::TraceLimit`]);
//! - [`AssemblyConfig::max_spans`]: the same when the buffered spans of all
//!   traces exceed it ([`Partial::SpanLimit`]);
//! - [`AssemblyConfig::max_spans_per_trace`]: a trace reaching it is handed
//!   over at once ([`Partial::TraceSpanLimit`]).
//!
//! Spans of a trace that was already handed over (late spans, or the rest
//! of a split trace) start a new fragment, handed over marked
//! [`Partial::LateSpans`]; the ids of the last
//! [`AssemblyConfig::remember_completed`] traces are kept to tell.
//!
//! # Across restarts
//!
//! [`TraceBuffer::saved`] gives the buffered traces with their arrival
//! times for the engine's checkpoint, and [`TraceBuffer::restore`] buffers
//! them again: a trace waiting for its idle time at a crash is evaluated
//! after the restart.
//!
//! A span pushed with its [`Origin`] (the WAL record it came in, and its
//! place there) is saved as that origin, not copied: a checkpoint of a
//! million buffered spans is then a few bytes a span, and writing it reads
//! no span gone cold. After [`TraceBuffer::restore`] those spans are
//! awaited: the caller replays the WAL records [`TraceBuffer::wanted_lsns`]
//! names into [`TraceBuffer::refill`], then calls
//! [`TraceBuffer::refilled`]. A trace completes only once its named spans
//! are back (or the replay is over), and no checkpoint can be taken before
//! the replay is over (the awaited spans are in no trace yet). Spans of
//! traces buffered longer than [`NAMED_MAX_AGE`] are copied all the same,
//! so that what a checkpoint names stays near the WAL's head, and the WAL
//! the caller must keep for it stays short.
//!
//! # Memory per buffered span
//!
//! A buffered span is a [`SpanRecord`]: 24 bytes in its trace's `Vec` (three
//! `Arc`s), 16 for its [`Origin`] in another, and the span itself, shared with the store's hot tier until that
//! is flushed: 264 bytes with its reference counts on x86-64, plus what it
//! owns on the heap: 56 bytes per attribute (key and value; strings up to 24
//! bytes are inline), events and links, strings longer than 24 bytes, and
//! its share of the resource and scope (shared with the batch). An HTTP
//! server span with ten attributes holds about 0.9 KiB, so the default
//! `max_spans` of 500,000 bounds the buffer near 450 MiB once the hot tier
//! has let go of its spans. Per trace add about 100 bytes (map entry,
//! deadline, remembered id).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracewarden_model::{Resource, Scope, Span, SpanRecord, TraceId};

mod deadlines;
mod origin;
mod snapshot;
use deadlines::Deadlines;
pub use origin::{NAMED_MAX_AGE, Origin};
pub use snapshot::TracesSnapshot;

/// Limits and timing of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssemblyConfig {
    /// A trace with no new span for this long is complete (default 5 s).
    pub idle: Duration,
    /// A trace buffered this long is handed over, partial (default 5 min).
    pub max_wait: Duration,
    /// Traces buffered at once (default 100,000).
    pub max_traces: usize,
    /// Spans of one trace (default 10,000).
    pub max_spans_per_trace: usize,
    /// Spans of all traces (default 500,000).
    pub max_spans: usize,
    /// Ids of handed-over traces remembered to recognise late spans
    /// (default 100,000; about 50 bytes each).
    pub remember_completed: usize,
}

impl Default for AssemblyConfig {
    fn default() -> Self {
        AssemblyConfig {
            idle: Duration::from_secs(5),
            max_wait: Duration::from_secs(300),
            max_traces: 100_000,
            max_spans_per_trace: 10_000,
            max_spans: 500_000,
            remember_completed: 100_000,
        }
    }
}

/// Why a trace was handed over before it was known to be complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Partial {
    /// Pushed out by a new trace in a full buffer (`max_traces`).
    TraceLimit,
    /// Pushed out when the buffer held `max_spans` spans.
    SpanLimit,
    /// Reached `max_spans_per_trace`; later spans form a new fragment.
    TraceSpanLimit,
    /// Still receiving spans after `max_wait`.
    MaxWait,
    /// Spans that arrived after their trace was handed over.
    LateSpans,
}

impl Partial {
    pub fn as_str(self) -> &'static str {
        match self {
            Partial::TraceLimit => "evicted: trace limit",
            Partial::SpanLimit => "evicted: span limit",
            Partial::TraceSpanLimit => "split: spans per trace limit",
            Partial::MaxWait => "max wait reached",
            Partial::LateSpans => "late spans of an evaluated trace",
        }
    }
}

impl fmt::Display for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trace handed over by the buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct AssembledTrace {
    pub trace_id: TraceId,
    /// Its spans, in arrival order.
    pub spans: Vec<SpanRecord>,
    /// `None`: complete as far as the buffer can tell.
    pub partial: Option<Partial>,
    /// When the buffer took it as complete: its idle (or longest-wait)
    /// deadline; for a trace pushed out by a limit or drained, that moment.
    /// In the clock of [`TraceBuffer::push`]'s `now`.
    pub due: u64,
}

/// Counters of the buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssemblyStats {
    /// Spans received.
    pub spans: u64,
    /// Traces held now.
    pub buffered_traces: usize,
    /// Spans held now.
    pub buffered_spans: usize,
    /// Traces handed over complete (idle, root and idle, drain).
    pub complete_traces: u64,
    /// Traces handed over partial: the sum of the five counters below.
    pub partial_traces: u64,
    /// Pushed out by `max_traces`.
    pub evicted_trace_limit: u64,
    /// Pushed out by `max_spans`.
    pub evicted_span_limit: u64,
    /// Split at `max_spans_per_trace`.
    pub split_traces: u64,
    /// Handed over at `max_wait`.
    pub max_wait_traces: u64,
    /// Fragments of late spans.
    pub late_fragments: u64,
    /// Spans a restored checkpoint named by their WAL record that the
    /// replay did not bring back (the record gone or damaged); their
    /// traces are evaluated without them.
    pub missing_restored_spans: u64,
}

/// A trace's buffered spans and where each came from, when known (a
/// checkpoint names such a span instead of copying it). Both vectors
/// behind one `Arc`: a span pushed onto a trace gone cold misses on one
/// reference count, not two, and the spans are handed over without a copy.
/// Measured (`examples/assembly_cold.rs`, docs/BENCHMARKS.md): the other
/// layouts tried cost as much or more, an `Arc` each at the push, span and
/// origin side by side in one vector at the hand-over (a copy per trace).
#[derive(Clone, Debug, Default)]
struct Buffered {
    records: Vec<SpanRecord>,
    origins: Vec<Option<Origin>>,
}

impl Buffered {
    fn one(record: SpanRecord, origin: Option<Origin>) -> Buffered {
        Buffered {
            records: vec![record],
            origins: vec![origin],
        }
    }

    fn push(&mut self, record: SpanRecord, origin: Option<Origin>) {
        self.records.push(record);
        self.origins.push(origin);
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

struct Pending {
    /// Shared so a checkpoint can take them without copying
    /// ([`TraceBuffer::snapshot`]); copied on write only when a span
    /// arrives while a checkpoint being written holds them.
    spans: Arc<Buffered>,
    first_arrival: u64,
    last_arrival: u64,
    root_arrival: Option<u64>,
    /// Tells this buffering of the trace id from earlier ones in the
    /// deadline queue.
    generation: u64,
    /// The trace id was handed over before.
    late: bool,
    /// Spans a restored checkpoint named that have not come back yet
    /// ([`TraceBuffer::refill`]): the trace does not complete before they
    /// do (or the replay ends).
    awaiting: u32,
}

/// The traces a buffer holds, as a checkpoint keeps them
/// ([`TraceBuffer::saved`], [`TraceBuffer::restore`]): each trace's spans
/// and arrival times, resources and scopes stored once each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedTraces {
    resources: Vec<Resource>,
    scopes: Vec<Scope>,
    /// In the order they started arriving.
    traces: Vec<SavedTrace>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedTrace {
    trace_id: TraceId,
    first_arrival: u64,
    last_arrival: u64,
    root_arrival: Option<u64>,
    late: bool,
    spans: Vec<SavedSpan>,
}

/// A buffered span in a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum SavedSpan {
    /// (resource index, scope index, span).
    Copied(u32, u32, Box<Span>),
    /// Where the WAL holds it.
    Named(Origin),
}

impl SavedTraces {
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Spans saved, copied or named.
    pub fn spans(&self) -> usize {
        self.traces.iter().map(|t| t.spans.len()).sum()
    }
}

/// Spans buffered per trace until their trace is complete. See the module
/// documentation for completion, limits and memory.
pub struct TraceBuffer {
    config: AssemblyConfig,
    /// Keyed by ids senders choose, so hashed with a per-buffer random key
    /// (aHash: a third of SipHash's cost on 16-byte ids).
    traces: HashMap<TraceId, Pending, ahash::RandomState>,
    /// (deadline, generation, trace): at most one live entry per buffered
    /// trace, possibly earlier than its real deadline (deadlines only move
    /// later, so an entry is re-queued when it comes up early). Entries of
    /// traces already handed over are skipped.
    deadlines: Deadlines,
    recent: VecDeque<TraceId>,
    recent_set: HashSet<TraceId, ahash::RandomState>,
    buffered_spans: usize,
    generation: u64,
    now: u64,
    stats: AssemblyStats,
    /// Spans a restored checkpoint named, by WAL record: (place in the
    /// record, trace). Empty when nothing is awaited.
    wanted: HashMap<u64, Vec<(u32, TraceId)>, ahash::RandomState>,
}

impl fmt::Debug for TraceBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceBuffer")
            .field("traces", &self.traces.len())
            .field("spans", &self.buffered_spans)
            .finish_non_exhaustive()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl TraceBuffer {
    pub fn new(config: AssemblyConfig) -> TraceBuffer {
        TraceBuffer {
            config,
            traces: HashMap::default(),
            deadlines: Deadlines::default(),
            recent: VecDeque::new(),
            recent_set: HashSet::default(),
            buffered_spans: 0,
            generation: 0,
            now: 0,
            stats: AssemblyStats::default(),
            wanted: HashMap::default(),
        }
    }

    pub fn config(&self) -> &AssemblyConfig {
        &self.config
    }

    pub fn stats(&self) -> AssemblyStats {
        AssemblyStats {
            buffered_traces: self.traces.len(),
            buffered_spans: self.buffered_spans,
            ..self.stats.clone()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The earliest time at which [`TraceBuffer::complete`] may hand a
    /// trace over (possibly early: calling it then is harmless), or `None`
    /// when nothing is buffered. For scheduling a timer.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.traces.is_empty() {
            return None;
        }
        self.deadlines.peek().map(|(d, _, _)| d)
    }

    /// Buffers one span that arrived at `now`. Traces a limit pushes out
    /// are appended to `out`.
    pub fn push(&mut self, span: SpanRecord, now: u64, out: &mut Vec<AssembledTrace>) {
        self.push_from(span, None, now, out);
    }

    /// [`TraceBuffer::push`] of a span whose WAL record is known: a
    /// checkpoint names it there instead of copying it.
    pub fn push_from(
        &mut self,
        span: SpanRecord,
        origin: Option<Origin>,
        now: u64,
        out: &mut Vec<AssembledTrace>,
    ) {
        self.now = self.now.max(now);
        let now = self.now;
        self.stats.spans += 1;
        let id = span.span.trace_id;
        let is_root = span.span.parent_span_id.is_none_or(|p| p.is_zero());
        if let Some(pending) = self.traces.get_mut(&id) {
            pending.last_arrival = now;
            if is_root && pending.root_arrival.is_none() {
                pending.root_arrival = Some(now);
            }
            Arc::make_mut(&mut pending.spans).push(span, origin);
            self.buffered_spans += 1;
            if pending.spans.len() >= self.config.max_spans_per_trace {
                self.hand_over(id, Some(Partial::TraceSpanLimit), out);
            }
        } else {
            while self.traces.len() >= self.config.max_traces.max(1) {
                if !self.evict_one(Partial::TraceLimit, out) {
                    break;
                }
            }
            self.generation += 1;
            let pending = Pending {
                spans: Arc::new(Buffered::one(span, origin)),
                first_arrival: now,
                last_arrival: now,
                root_arrival: is_root.then_some(now),
                generation: self.generation,
                late: self.recent_set.contains(&id),
                awaiting: 0,
            };
            let deadline = self.deadline(&pending);
            self.deadlines.push((deadline, pending.generation, id));
            self.traces.insert(id, pending);
            self.buffered_spans += 1;
            if self.config.max_spans_per_trace <= 1 {
                self.hand_over(id, Some(Partial::TraceSpanLimit), out);
            }
        }
        while self.buffered_spans > self.config.max_spans.max(1) {
            if !self.evict_one(Partial::SpanLimit, out) {
                break;
            }
        }
    }

    /// The buffered traces, copied: what a checkpoint holds
    /// ([`TraceBuffer::snapshot`] encodes to the same bytes without the
    /// copy). Resources and scopes shared by spans are stored once.
    pub fn saved(&self) -> SavedTraces {
        self.snapshot().to_saved()
    }

    /// Buffers the traces of a checkpoint again, with their arrival times:
    /// those whose idle time passed while the server was down complete at
    /// the first [`TraceBuffer::complete`] after their named spans came
    /// back ([`TraceBuffer::refill`], [`TraceBuffer::refilled`]). A trace
    /// already buffered (spans replayed before the restore) keeps both sets
    /// of spans. Limits apply as on arrival; traces they push out go to
    /// `out`.
    pub fn restore(&mut self, saved: SavedTraces, out: &mut Vec<AssembledTrace>) {
        let resources: Vec<Arc<Resource>> = saved.resources.into_iter().map(Arc::new).collect();
        let scopes: Vec<Arc<Scope>> = saved.scopes.into_iter().map(Arc::new).collect();
        for trace in saved.traces {
            let id = trace.trace_id;
            let mut records = Buffered::default();
            let mut named = 0;
            for span in trace.spans {
                match span {
                    SavedSpan::Copied(resource, scope, span) => {
                        let (Some(resource), Some(scope)) =
                            (resources.get(resource as usize), scopes.get(scope as usize))
                        else {
                            continue;
                        };
                        // Copied: no origin to name at the next checkpoint.
                        records.push(
                            SpanRecord {
                                resource: Arc::clone(resource),
                                scope: Arc::clone(scope),
                                span: span.into(),
                            },
                            None,
                        );
                    }
                    SavedSpan::Named(origin) => {
                        self.wanted
                            .entry(origin.lsn.get())
                            .or_default()
                            .push((origin.index, id));
                        named += 1;
                    }
                }
            }
            if records.len() == 0 && named == 0 {
                continue;
            }
            self.now = self.now.max(trace.last_arrival);
            if let Some(pending) = self.traces.get_mut(&id) {
                self.buffered_spans += records.len();
                let spans = Arc::make_mut(&mut pending.spans);
                spans.records.extend(records.records);
                spans.origins.extend(records.origins);
                pending.first_arrival = pending.first_arrival.min(trace.first_arrival);
                pending.awaiting = pending.awaiting.saturating_add(named);
                continue;
            }
            while self.traces.len() >= self.config.max_traces.max(1) {
                if !self.evict_one(Partial::TraceLimit, out) {
                    break;
                }
            }
            self.generation += 1;
            self.buffered_spans += records.len();
            let pending = Pending {
                spans: Arc::new(records),
                first_arrival: trace.first_arrival,
                last_arrival: trace.last_arrival,
                root_arrival: trace.root_arrival,
                generation: self.generation,
                late: trace.late,
                awaiting: named,
            };
            let deadline = self.deadline(&pending);
            self.deadlines.push((deadline, pending.generation, id));
            self.traces.insert(id, pending);
        }
        while self.buffered_spans > self.config.max_spans.max(1) {
            if !self.evict_one(Partial::SpanLimit, out) {
                break;
            }
        }
    }

    /// The WAL records (LSNs, ascending) holding spans a restored
    /// checkpoint named, still awaited.
    pub fn wanted_lsns(&self) -> Vec<u64> {
        let mut lsns: Vec<u64> = self.wanted.keys().copied().collect();
        lsns.sort_unstable();
        lsns
    }

    /// Whether spans named by a restored checkpoint are still awaited
    /// (until [`TraceBuffer::refilled`]).
    pub fn is_refilling(&self) -> bool {
        // No checkpoint can be taken meanwhile: the awaited spans are in no
        // trace yet.
        !self.wanted.is_empty()
    }

    /// Puts back the named spans of the WAL record `lsn`, whose spans are
    /// `spans` in the record's order. Records refilled in the WAL's order
    /// give each trace its spans in the order they first arrived. A span
    /// whose trace id does not match the name (not the record the
    /// checkpoint meant), or whose trace was pushed out meanwhile, is
    /// counted missing. A trace whose last awaited span came back completes
    /// as usual, at once if its idle time has passed.
    pub fn refill(&mut self, lsn: u64, spans: &[SpanRecord]) {
        let Some(mut wanted) = self.wanted.remove(&lsn) else {
            return;
        };
        wanted.sort_unstable_by_key(|&(index, _)| index);
        let origin_lsn = std::num::NonZeroU64::new(lsn);
        for (index, id) in wanted {
            let span = spans
                .get(index as usize)
                .filter(|record| record.span.trace_id == id);
            match span {
                Some(record) => {
                    let origin = origin_lsn.map(|lsn| Origin { lsn, index });
                    if let Some(pending) = self.traces.get_mut(&id) {
                        Arc::make_mut(&mut pending.spans).push(record.clone(), origin);
                        self.buffered_spans += 1;
                    } else {
                        self.stats.missing_restored_spans += 1;
                    }
                }
                None => self.stats.missing_restored_spans += 1,
            }
            self.came_back(id);
        }
    }

    /// The replay is over: spans still awaited are counted missing, and
    /// their traces complete as usual.
    pub fn refilled(&mut self) {
        let wanted = std::mem::take(&mut self.wanted);
        for (_, id) in wanted.into_values().flatten() {
            self.stats.missing_restored_spans += 1;
            self.came_back(id);
        }
    }

    /// One awaited span of trace `id` came back (or never will): with none
    /// left, its deadline is queued again (`complete` dropped it while
    /// spans were awaited).
    fn came_back(&mut self, id: TraceId) {
        let Some(pending) = self.traces.get_mut(&id) else {
            return;
        };
        if pending.awaiting == 0 {
            return;
        }
        pending.awaiting -= 1;
        if pending.awaiting > 0 {
            return;
        }
        if let Some(pending) = self.traces.get(&id) {
            let entry = (self.deadline(pending), pending.generation, id);
            self.deadlines.push(entry);
        }
    }

    /// Hands over, into `out`, every trace complete at `now`.
    pub fn complete(&mut self, now: u64, out: &mut Vec<AssembledTrace>) {
        self.now = self.now.max(now);
        let now = self.now;
        while let Some((queued, generation, id)) = self.deadlines.peek() {
            if queued > now {
                break;
            }
            self.deadlines.pop();
            let Some(pending) = self.traces.get(&id) else {
                continue;
            };
            // Awaiting named spans: queued again when they are back.
            if pending.generation != generation || pending.awaiting > 0 {
                continue;
            }
            let deadline = self.deadline(pending);
            if deadline > now {
                self.deadlines.push((deadline, generation, id));
                continue;
            }
            let quiet = self.quiet_deadline(pending) <= now;
            let partial = if pending.late {
                Some(Partial::LateSpans)
            } else if quiet {
                None
            } else {
                Some(Partial::MaxWait)
            };
            self.hand_over(id, partial, out);
        }
    }

    /// Hands over every buffered trace, in the order they started arriving
    /// (shutdown, the end of an offline scan). Traces are taken as
    /// complete: no more spans will come.
    pub fn drain(&mut self, out: &mut Vec<AssembledTrace>) {
        self.refilled();
        let mut ids: Vec<(u64, TraceId)> = self
            .traces
            .iter()
            .map(|(id, p)| (p.generation, *id))
            .collect();
        ids.sort_unstable();
        for (_, id) in ids {
            let late = self.traces.get(&id).is_some_and(|p| p.late);
            self.hand_over(id, late.then_some(Partial::LateSpans), out);
        }
        self.deadlines.clear();
    }

    /// When the trace goes quiet: `idle` after its root arrived, else
    /// `idle` after its last span.
    fn quiet_deadline(&self, pending: &Pending) -> u64 {
        pending
            .root_arrival
            .unwrap_or(pending.last_arrival)
            .saturating_add(nanos(self.config.idle))
    }

    fn deadline(&self, pending: &Pending) -> u64 {
        let max_wait = pending
            .first_arrival
            .saturating_add(nanos(self.config.max_wait));
        self.quiet_deadline(pending).min(max_wait)
    }

    /// Pushes out the trace whose queued deadline is earliest. False when
    /// nothing is buffered.
    fn evict_one(&mut self, reason: Partial, out: &mut Vec<AssembledTrace>) -> bool {
        while let Some((_, generation, id)) = self.deadlines.pop() {
            if self
                .traces
                .get(&id)
                .is_some_and(|p| p.generation == generation)
            {
                self.hand_over(id, Some(reason), out);
                return true;
            }
        }
        // Every buffered trace has a queued entry; reaching this means the
        // buffer is empty.
        false
    }

    fn hand_over(&mut self, id: TraceId, partial: Option<Partial>, out: &mut Vec<AssembledTrace>) {
        let Some(pending) = self.traces.remove(&id) else {
            return;
        };
        self.buffered_spans = self.buffered_spans.saturating_sub(pending.spans.len());
        let due = self.deadline(&pending).min(self.now);
        let partial = match partial {
            None if pending.late => Some(Partial::LateSpans),
            other => other,
        };
        match partial {
            None => self.stats.complete_traces += 1,
            Some(reason) => {
                self.stats.partial_traces += 1;
                match reason {
                    Partial::TraceLimit => self.stats.evicted_trace_limit += 1,
                    Partial::SpanLimit => self.stats.evicted_span_limit += 1,
                    Partial::TraceSpanLimit => self.stats.split_traces += 1,
                    Partial::MaxWait => self.stats.max_wait_traces += 1,
                    Partial::LateSpans => self.stats.late_fragments += 1,
                }
            }
        }
        self.remember(id);
        // Spans a checkpoint being written still holds are copied.
        let spans = match Arc::try_unwrap(pending.spans) {
            Ok(spans) => spans.records,
            Err(shared) => shared.records.clone(),
        };
        out.push(AssembledTrace {
            trace_id: id,
            spans,
            partial,
            due,
        });
    }

    fn remember(&mut self, id: TraceId) {
        if self.config.remember_completed == 0 || !self.recent_set.insert(id) {
            return;
        }
        self.recent.push_back(id);
        while self.recent.len() > self.config.remember_completed {
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{Span, SpanId};

    use super::*;

    const S: u64 = 1_000_000_000;

    fn span(trace: u8, id: u8, parent: Option<u8>) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([trace; 16]),
            SpanId::from_bytes([id; 8]),
            "op",
        );
        span.parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
        SpanRecord {
            resource: Arc::default(),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn buffer(config: AssemblyConfig) -> (TraceBuffer, Vec<AssembledTrace>) {
        (TraceBuffer::new(config), Vec::new())
    }

    fn summary(out: &[AssembledTrace]) -> Vec<(u8, usize, Option<Partial>)> {
        out.iter()
            .map(|t| (t.trace_id.as_bytes()[0], t.spans.len(), t.partial))
            .collect()
    }

    #[test]
    fn complete_after_idle_without_new_spans() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        b.push(span(1, 2, Some(1)), 0, &mut out);
        b.push(span(1, 3, Some(1)), 3 * S, &mut out);
        b.complete(7 * S, &mut out);
        assert!(out.is_empty(), "a span arrived 4 s ago");
        assert_eq!(b.next_deadline(), Some(8 * S));
        b.complete(8 * S, &mut out);
        assert_eq!(summary(&out), vec![(1, 2, None)]);
        assert!(b.is_empty());
        assert_eq!(b.stats().complete_traces, 1);
    }

    #[test]
    fn saved_traces_come_back_with_their_arrival_times() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        let shop = Arc::new(Resource {
            attributes: vec![tracewarden_model::KeyValue::new("service.name", "shop")],
            ..Resource::default()
        });
        for (trace, id, at) in [(1, 2, 0), (2, 5, S), (1, 3, 3 * S)] {
            let mut record = span(trace, id, Some(1));
            record.resource = Arc::clone(&shop);
            b.push(record, at, &mut out);
        }
        let saved = b.saved();
        assert_eq!((saved.traces.len(), saved.spans()), (2, 3));
        assert_eq!(saved.resources.len(), 1, "the shared resource is kept once");
        let bytes = postcard::to_allocvec(&saved).expect("encode");
        let saved: SavedTraces = postcard::from_bytes(&bytes).expect("decode");
        let (mut restored, mut out) = buffer(AssemblyConfig::default());
        restored.restore(saved, &mut out);
        assert!(out.is_empty());
        assert_eq!(restored.stats().buffered_spans, 3);
        // Trace 2 went quiet at 6 s, trace 1 at 8 s, as before the save.
        assert_eq!(restored.next_deadline(), Some(6 * S));
        restored.complete(6 * S, &mut out);
        assert_eq!(summary(&out), vec![(2, 1, None)]);
        restored.complete(8 * S, &mut out);
        assert_eq!(summary(&out), vec![(2, 1, None), (1, 2, None)]);
        assert_eq!(out[1].spans[0].resource, shop);
    }

    fn origin(lsn: u64, index: usize) -> Option<Origin> {
        Origin::new(lsn, index)
    }

    /// Spans pushed with their WAL record are saved as that record and
    /// come back from it: the trace completes only once the replay is
    /// over, with every span the records still held, and what they did
    /// not hold is counted.
    #[test]
    fn named_spans_come_back_from_their_records() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        // Record 7 holds spans of traces 1 and 2, record 9 one of trace 1;
        // one span of trace 2 came without a record and is copied.
        let seven = [span(1, 1, None), span(2, 5, Some(4))];
        let nine = [span(1, 2, Some(1))];
        b.push_from(seven[0].clone(), origin(7, 0), 0, &mut out);
        b.push_from(seven[1].clone(), origin(7, 1), S, &mut out);
        b.push(span(2, 6, Some(4)), S, &mut out);
        b.push_from(nine[0].clone(), origin(9, 0), 2 * S, &mut out);
        let saved = b.saved();
        let named = |t: &SavedTrace| {
            t.spans
                .iter()
                .filter(|s| matches!(s, SavedSpan::Named(_)))
                .count()
        };
        assert_eq!(
            saved.traces.iter().map(named).collect::<Vec<_>>(),
            vec![2, 1]
        );
        let bytes = postcard::to_allocvec(&saved).expect("encode");
        let saved: SavedTraces = postcard::from_bytes(&bytes).expect("decode");

        let (mut restored, mut out) = buffer(AssemblyConfig::default());
        restored.restore(saved, &mut out);
        assert_eq!(restored.wanted_lsns(), vec![7, 9]);
        assert!(restored.is_refilling());
        assert_eq!(restored.stats().buffered_spans, 1, "the copied span");
        restored.complete(60 * S, &mut out);
        assert!(out.is_empty(), "no trace completes without its named spans");
        // Record 7 no longer holds trace 2's span where the checkpoint
        // said (another record); a record comes back once, and one never
        // named changes nothing.
        restored.refill(7, &[seven[0].clone(), span(3, 5, Some(4))]);
        restored.refill(7, &seven);
        restored.refill(8, &seven);
        assert!(restored.is_refilling());
        restored.refill(9, &nine);
        assert_eq!(restored.stats().missing_restored_spans, 1);
        assert!(!restored.is_refilling(), "nothing more is awaited");
        assert_eq!(restored.stats().buffered_spans, 3);
        // Both traces complete with what came back, before the replay's
        // end is even called.
        restored.complete(60 * S, &mut out);
        restored.refilled();
        let spans: Vec<(u8, u8)> = out
            .iter()
            .flat_map(|t| &t.spans)
            .map(|r| (r.span.trace_id.as_bytes()[0], r.span.span_id.as_bytes()[0]))
            .collect();
        // Trace 1 went quiet first (its root at 0 s), its spans in the WAL's
        // order.
        assert_eq!(spans, vec![(1, 1), (1, 2), (2, 6)]);

        // Refilled spans keep their origin: the next checkpoint names them
        // again.
        let (mut again, mut out) = buffer(AssemblyConfig::default());
        let mut b2 = TraceBuffer::new(AssemblyConfig::default());
        b2.push_from(nine[0].clone(), origin(9, 0), 0, &mut out);
        again.restore(b2.saved(), &mut out);
        again.refill(9, &nine);
        again.refilled();
        assert_eq!(again.wanted_lsns(), Vec::<u64>::new());
        assert!(matches!(
            again.saved().traces[0].spans[0],
            SavedSpan::Named(Origin { index: 0, .. })
        ));
    }

    /// Spans never refilled are counted when the replay ends, and their
    /// trace then completes as usual; a drain during the replay ends it.
    #[test]
    fn named_spans_the_replay_never_brings_are_counted_missing() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        b.push_from(span(1, 1, None), origin(3, 0), 0, &mut out);
        b.push_from(span(1, 2, Some(1)), origin(3, 1), 0, &mut out);
        b.push_from(span(2, 1, None), origin(4, 0), 0, &mut out);
        b.push(span(2, 2, Some(1)), 0, &mut out);
        let saved = b.saved();

        let (mut restored, mut out) = buffer(AssemblyConfig::default());
        restored.restore(saved.clone(), &mut out);
        restored.complete(60 * S, &mut out);
        assert!(out.is_empty());
        restored.refilled();
        assert_eq!(restored.stats().missing_restored_spans, 3);
        restored.complete(60 * S, &mut out);
        assert_eq!(summary(&out), vec![(1, 0, None), (2, 1, None)]);

        let (mut restored, mut out) = buffer(AssemblyConfig::default());
        restored.restore(saved, &mut out);
        restored.drain(&mut out);
        assert_eq!(restored.stats().missing_restored_spans, 3);
        assert_eq!(summary(&out), vec![(1, 0, None), (2, 1, None)]);
        assert!(!restored.is_refilling());
    }

    #[test]
    fn root_arrival_starts_the_idle_clock() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        b.push(span(1, 1, None), 0, &mut out);
        b.push(span(1, 2, Some(1)), 2 * S, &mut out);
        b.push(span(1, 3, Some(1)), 4 * S, &mut out);
        b.complete(5 * S, &mut out);
        assert_eq!(summary(&out), vec![(1, 3, None)]);
    }

    #[test]
    fn max_wait_hands_over_a_trace_that_never_goes_quiet() {
        let config = AssemblyConfig {
            max_wait: Duration::from_secs(20),
            ..AssemblyConfig::default()
        };
        let (mut b, mut out) = buffer(config);
        for t in 0..10 {
            b.push(span(1, t + 2, Some(1)), u64::from(t) * 3 * S, &mut out);
            b.complete(u64::from(t) * 3 * S, &mut out);
        }
        assert_eq!(summary(&out), vec![(1, 8, Some(Partial::MaxWait))]);
        assert_eq!(b.stats().max_wait_traces, 1);
    }

    #[test]
    fn limits_evict_and_count_never_lose_spans() {
        let config = AssemblyConfig {
            max_traces: 2,
            max_spans: 3,
            max_spans_per_trace: 3,
            ..AssemblyConfig::default()
        };
        let (mut b, mut out) = buffer(config);
        b.push(span(1, 1, None), 0, &mut out);
        b.push(span(2, 1, None), S, &mut out);
        b.push(span(3, 1, None), 2 * S, &mut out);
        // A third trace in a buffer of two: the oldest goes.
        assert_eq!(summary(&out), vec![(1, 1, Some(Partial::TraceLimit))]);
        b.push(span(2, 2, Some(1)), 2 * S, &mut out);
        b.push(span(2, 3, Some(1)), 2 * S, &mut out);
        assert_eq!(
            summary(&out[1..]),
            vec![(2, 3, Some(Partial::TraceSpanLimit))]
        );
        // The rest of trace 2 is a late fragment.
        b.push(span(2, 4, Some(1)), 3 * S, &mut out);
        b.push(span(3, 2, Some(1)), 3 * S, &mut out);
        b.push(span(2, 5, Some(1)), 3 * S, &mut out);
        // 4 spans buffered > 3: the trace nearest its deadline (3) goes.
        assert_eq!(summary(&out[2..]), vec![(3, 2, Some(Partial::SpanLimit))]);
        b.drain(&mut out);
        assert_eq!(summary(&out[3..]), vec![(2, 2, Some(Partial::LateSpans))]);
        let stats = b.stats();
        let handed: usize = out.iter().map(|t| t.spans.len()).sum();
        assert_eq!(handed as u64, stats.spans, "every span handed over once");
        assert_eq!(
            (
                stats.evicted_trace_limit,
                stats.split_traces,
                stats.evicted_span_limit,
                stats.late_fragments,
                stats.partial_traces,
                stats.complete_traces
            ),
            (1, 1, 1, 1, 4, 0)
        );
        assert_eq!((stats.buffered_traces, stats.buffered_spans), (0, 0));
    }

    #[test]
    fn late_spans_of_a_completed_trace_are_a_partial_fragment() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        b.push(span(1, 1, None), 0, &mut out);
        b.complete(5 * S, &mut out);
        b.push(span(1, 2, Some(1)), 6 * S, &mut out);
        b.complete(11 * S, &mut out);
        assert_eq!(
            summary(&out),
            vec![(1, 1, None), (1, 1, Some(Partial::LateSpans))]
        );
    }

    #[test]
    fn now_never_goes_backwards() {
        let (mut b, mut out) = buffer(AssemblyConfig::default());
        b.push(span(1, 1, Some(9)), 10 * S, &mut out);
        // A caller clock stepping back does not extend the trace's life.
        b.push(span(1, 2, Some(9)), 2 * S, &mut out);
        b.complete(15 * S, &mut out);
        assert_eq!(out.len(), 1);
    }
}
