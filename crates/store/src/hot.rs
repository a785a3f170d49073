//! The hot tier: recent spans and logs in memory, indexed by trace id.
//!
//! Traces are spread over [`SHARDS`] shards, each a `RwLock<HashMap>`, so
//! concurrent appends and reads of different traces rarely meet on a lock.
//! A batch takes each shard's write lock at most once: its spans and logs are
//! first bucketed by shard. The shard of a trace id comes from a randomly
//! keyed hash, so senders cannot aim every trace at one shard.
//!
//! Resources and scopes stay shared: every span holds an `Arc` of the
//! resource and scope it arrived with, never a deep copy.
//!
//! A hot tier also remembers the WAL log sequence numbers (LSNs) of the
//! records applied to it: when the store freezes it and flushes it into a
//! Parquet segment, the segment's manifest records exactly those LSNs, which
//! is what lets replay skip them and the WAL files holding them be removed
//! (see [`crate::lifecycle`]). Log records without a trace id are kept too
//! (they were acknowledged), in a per-shard list served by
//! [`crate::Store::logs_without_trace`].

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
pub use tracewarden_model::{LogEntry, SpanRecord, Trace};
use tracewarden_model::{Records, TraceId};

use crate::lifecycle::LsnSet;
use crate::prefetch::{prefetch, prefetch_strings, prefetch_whole};
use crate::segment::{self, SpanFacts};
use crate::wal::Lsn;

/// Number of lock shards of the hot tier.
pub const SHARDS: usize = 16;

#[derive(Default)]
struct TraceEntry {
    /// Each span with its row-size estimate for the segment writer, taken
    /// while the span is in cache at apply (a flush would otherwise walk
    /// every span's attributes once more in cold memory just for it). One
    /// vector, not two: one allocation per trace at apply, one free and one
    /// cache miss per trace at flush.
    spans: Vec<(SpanRecord, u32)>,
    logs: Vec<LogEntry>,
}

#[derive(Default)]
struct Shard {
    /// Keyed by ids senders choose: a random key per shard (aHash, a third
    /// of SipHash's cost on 16-byte ids).
    traces: HashMap<TraceId, TraceEntry, ahash::RandomState>,
    untraced_logs: Vec<LogEntry>,
    /// LSNs of the records applied, kept in the first shard each batch
    /// locks anyway, so recording them takes no lock of its own.
    lsns: Vec<Lsn>,
}

/// Spans and logs in memory, sharded by trace id.
pub(crate) struct HotTier {
    shards: Box<[RwLock<Shard>]>,
    hasher: ahash::RandomState,
    spans: AtomicU64,
    logs: AtomicU64,
    traces: AtomicU64,
    /// The spans' time range ([`segment::span_time_range`]), taken at apply;
    /// `u64::MAX` and 0 while there are none. Exact once the tier is frozen:
    /// an apply holds the tiers' read lock until it has updated these, and
    /// freezing takes the write lock (`lifecycle::tiers`).
    span_min_time: AtomicU64,
    span_max_time: AtomicU64,
    next_untraced_shard: AtomicUsize,
    /// When the first record was applied: the age of the oldest data not yet
    /// in a segment, for the flush-by-age trigger.
    first_applied: OnceLock<Instant>,
}

impl Drop for HotTier {
    /// A flushed tier goes whole: a million spans, each reached through
    /// pointers. Freed in the order the trace map holds them, every span is
    /// somewhere else in memory and each free waits on its misses. Freed in
    /// address order, which is the order ingest allocated them in (and
    /// their attribute arrays and strings, each size in pages filled in
    /// order), consecutive frees touch neighbouring memory, which the CPU
    /// streams in, and land in the same allocator page.
    fn drop(&mut self) {
        let spans = self.spans.load(Ordering::Relaxed);
        let mut records: Vec<SpanRecord> = Vec::with_capacity(usize::try_from(spans).unwrap_or(0));
        for shard in self.shards.iter_mut() {
            let traces = std::mem::take(&mut shard.get_mut().traces);
            take_spans(traces.into_values().collect(), &mut records);
        }
        // The key is the pointer itself: sorting reads no span.
        records.sort_unstable_by_key(|record| Arc::as_ptr(&record.span) as usize);
        release(records);
    }
}

/// Moves every entry's spans into `records` and drops the entries (their
/// span arrays and log records), prefetching later entries' span arrays:
/// the entries are in no order in memory.
fn take_spans(entries: Vec<TraceEntry>, records: &mut Vec<SpanRecord>) {
    const AHEAD: usize = 8;
    let mut entries = entries.into_iter();
    loop {
        if let Some(later) = entries.as_slice().get(AHEAD) {
            prefetch(later.spans.as_ptr());
        }
        let Some(entry) = entries.next() else {
            break;
        };
        records.extend(entry.spans.into_iter().map(|(record, _)| record));
    }
}

/// Drops the spans in order, each step prefetching what a later span's
/// drop reads: the span, then its attribute array, then its strings, each
/// fetched once the pointer to it has arrived.
fn release(records: Vec<SpanRecord>) {
    const AHEAD: usize = 8;
    let mut records = records.into_iter();
    loop {
        // The spans not yet dropped, the next one first.
        let rest = records.as_slice();
        if let Some(later) = rest.get(AHEAD) {
            prefetch_whole(&*later.span);
        }
        if let Some(later) = rest.get(AHEAD / 2) {
            prefetch(later.span.attributes.as_ptr());
        }
        if let Some(later) = rest.get(1) {
            prefetch_strings(&later.span.attributes);
        }
        let Some(record) = records.next() else {
            break;
        };
        drop(record);
    }
}

/// Counts of what the hot tier holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HotCounts {
    pub spans: u64,
    pub logs: u64,
    pub traces: u64,
}

impl HotTier {
    pub fn new() -> HotTier {
        HotTier {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: ahash::RandomState::new(),
            spans: AtomicU64::new(0),
            logs: AtomicU64::new(0),
            traces: AtomicU64::new(0),
            span_min_time: AtomicU64::new(u64::MAX),
            span_max_time: AtomicU64::new(0),
            next_untraced_shard: AtomicUsize::new(0),
            first_applied: OnceLock::new(),
        }
    }

    fn shard_of(&self, trace_id: &TraceId) -> usize {
        // Truncating the hash is fine: only its low bits pick the shard.
        (self.hasher.hash_one(trace_id) as usize) % SHARDS
    }

    /// Adds every span and log record of `records`, the WAL record `lsn`
    /// (moved in: a caller that shares them, as detection does, clones the
    /// records first, which shares the spans and copies only log records).
    pub fn apply(&self, lsn: Lsn, records: Records) {
        self.first_applied.get_or_init(Instant::now);
        // Sized for an even spread (ids are hashed), so the buckets rarely
        // grow one push at a time (seen in the ingest profile).
        let span_count = records.spans.len();
        let per_shard = span_count / SHARDS + span_count / (SHARDS * 4) + 1;
        let mut span_buckets: [Vec<(SpanRecord, u32)>; SHARDS] =
            std::array::from_fn(|_| Vec::with_capacity(per_shard));
        let mut log_buckets: [Vec<LogEntry>; SHARDS] = Default::default();
        let mut untraced = Vec::new();

        let log_count = records.logs.len() as u64;
        let mut times: Option<(u64, u64)> = None;
        for record in records.spans {
            let shard = self.shard_of(&record.span.trace_id);
            let bytes = segment::span_row_bytes(&record.span);
            let range = segment::span_time_range(&record.span);
            times = Some(times.map_or(range, |times| segment::widen(times, range)));
            span_buckets[shard].push((record, bytes));
        }
        for entry in records.logs {
            match entry.record.trace_id {
                Some(trace_id) => log_buckets[self.shard_of(&trace_id)].push(entry),
                None => untraced.push(entry),
            }
        }
        let span_count = span_count as u64;

        let mut new_traces = 0u64;
        let mut lsn_recorded = false;
        for (index, (spans, logs)) in span_buckets.into_iter().zip(log_buckets).enumerate() {
            if spans.is_empty() && logs.is_empty() {
                continue;
            }
            let mut shard = self.shards[index].write();
            if !lsn_recorded {
                shard.lsns.push(lsn);
                lsn_recorded = true;
            }
            for (record, bytes) in spans {
                let entry = shard.traces.entry(record.span.trace_id).or_insert_with(|| {
                    new_traces += 1;
                    TraceEntry::default()
                });
                entry.spans.push((record, bytes));
            }
            for log in logs {
                // Bucketed above only when the record has a trace id.
                let Some(trace_id) = log.record.trace_id else {
                    continue;
                };
                let entry = shard.traces.entry(trace_id).or_insert_with(|| {
                    new_traces += 1;
                    TraceEntry::default()
                });
                entry.logs.push(log);
            }
        }
        if !untraced.is_empty() || !lsn_recorded {
            // Round-robin, so untraced logs do not all queue on one lock.
            let index = self.next_untraced_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
            let mut shard = self.shards[index].write();
            shard.untraced_logs.extend(untraced);
            if !lsn_recorded {
                // An empty batch (or one of untraced logs only) still has a
                // WAL record, which the next segment must cover.
                shard.lsns.push(lsn);
            }
        }

        if let Some((min, max)) = times {
            self.span_min_time.fetch_min(min, Ordering::Relaxed);
            self.span_max_time.fetch_max(max, Ordering::Relaxed);
        }
        self.spans.fetch_add(span_count, Ordering::Relaxed);
        self.logs.fetch_add(log_count, Ordering::Relaxed);
        self.traces.fetch_add(new_traces, Ordering::Relaxed);
    }

    /// The trace's spans and logs, ordered; `None` if no span or log carries the id.
    pub fn trace(&self, trace_id: TraceId) -> Option<Trace> {
        let (mut spans, mut logs) = {
            let shard = self.shards[self.shard_of(&trace_id)].read();
            let entry = shard.traces.get(&trace_id)?;
            let spans: Vec<SpanRecord> = entry.spans.iter().map(|(s, _)| s.clone()).collect();
            (spans, entry.logs.clone())
        };
        // Sorted outside the lock and on read: appends stay cheap, and spans
        // of one trace arrive from many services in any order anyway.
        spans.sort_by_key(|s| (s.span.start_time_unix_nano, s.span.span_id));
        logs.sort_by_key(|l| l.record.effective_time_unix_nano());
        Some(Trace {
            trace_id,
            spans,
            logs,
        })
    }

    /// Whether any span or log record of the trace is held.
    pub fn contains_trace(&self, trace_id: TraceId) -> bool {
        self.shards[self.shard_of(&trace_id)]
            .read()
            .traces
            .contains_key(&trace_id)
    }

    /// Ids of every trace held, in no particular order.
    pub fn trace_ids(&self) -> Vec<TraceId> {
        let mut ids = Vec::new();
        for shard in self.shards.iter() {
            ids.extend(shard.read().traces.keys().copied());
        }
        ids
    }

    /// Log records without a trace id, ordered by time.
    pub fn untraced_logs(&self) -> Vec<LogEntry> {
        let mut logs = Vec::new();
        for shard in self.shards.iter() {
            logs.extend(shard.read().untraced_logs.iter().cloned());
        }
        logs.sort_by_key(|l| l.record.effective_time_unix_nano());
        logs
    }

    /// The LSNs of every record applied.
    pub fn lsns(&self) -> LsnSet {
        let mut lsns = Vec::new();
        for shard in self.shards.iter() {
            lsns.extend_from_slice(&shard.read().lsns);
        }
        LsnSet::from_lsns(lsns)
    }

    /// How long ago the first record was applied; `None` before any.
    pub fn age(&self) -> Option<Duration> {
        self.first_applied.get().map(Instant::elapsed)
    }

    /// Whether no record was applied at all.
    pub fn is_empty(&self) -> bool {
        self.first_applied.get().is_none()
    }

    /// Calls `f` with every span and log record held (traced and untraced),
    /// borrowed, in no particular order: what a flush writes into a segment;
    /// with each span's row-size estimate ([`segment::span_row_bytes`]), in
    /// the spans' order.
    ///
    /// Every shard's read lock is held while `f` runs. That is meant for a
    /// frozen tier, which nothing writes to any more (appliers only reach the
    /// hot tier): readers still take the read locks alongside, and the flush
    /// copies nothing out.
    pub fn with_records<R>(
        &self,
        f: impl FnOnce(&[&SpanRecord], SpanFacts<'_>, &[&LogEntry]) -> R,
    ) -> R {
        let shards: Vec<_> = self.shards.iter().map(|shard| shard.read()).collect();
        let counts = self.counts();
        // The counts are exact once the tier is frozen; only a capacity hint.
        let mut spans = Vec::with_capacity(usize::try_from(counts.spans).unwrap_or(0));
        let mut span_bytes = Vec::with_capacity(spans.capacity());
        let mut logs = Vec::with_capacity(usize::try_from(counts.logs).unwrap_or(0));
        for shard in &shards {
            for entry in shard.traces.values() {
                for (span, bytes) in &entry.spans {
                    spans.push(span);
                    span_bytes.push(*bytes);
                }
                logs.extend(&entry.logs);
            }
            logs.extend(&shard.untraced_logs);
        }
        let times = (!spans.is_empty()).then(|| {
            (
                self.span_min_time.load(Ordering::Relaxed),
                self.span_max_time.load(Ordering::Relaxed),
            )
        });
        let facts = SpanFacts {
            row_bytes: &span_bytes,
            times,
        };
        f(&spans, facts, &logs)
    }

    /// Copies of the spans for which `keep` holds, in no particular order,
    /// at most `limit` of them.
    pub fn scan_spans(
        &self,
        keep: &dyn Fn(&SpanRecord) -> bool,
        limit: Option<usize>,
    ) -> Vec<SpanRecord> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut found = Vec::new();
        let _ = self.for_each_span(&mut |span| {
            if found.len() >= limit {
                return ControlFlow::Break(());
            }
            if keep(span) {
                found.push(span.clone());
            }
            ControlFlow::Continue(())
        });
        found
    }

    /// Calls `visit` with every span, shard by shard under the shard's read
    /// lock (appends to that shard wait: keep `visit` short), until it
    /// breaks.
    pub fn for_each_span(
        &self,
        visit: &mut dyn FnMut(&SpanRecord) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for shard in self.shards.iter() {
            let shard = shard.read();
            for (span, _) in shard.traces.values().flat_map(|entry| &entry.spans) {
                visit(span)?;
            }
        }
        ControlFlow::Continue(())
    }

    pub fn counts(&self) -> HotCounts {
        HotCounts {
            spans: self.spans.load(Ordering::Relaxed),
            logs: self.logs.load(Ordering::Relaxed),
            traces: self.traces.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{
        Batch, KeyValue, LogRecord, Resource, ResourceLogs, ResourceSpans, ScopeLogs, ScopeSpans,
        Span, SpanId,
    };

    use super::*;

    fn span(trace: u8, span: u8, start: u64) -> Span {
        let mut s = Span::new(
            TraceId::from_bytes([trace; 16]),
            SpanId::from_bytes([span; 8]),
            "op",
        );
        s.start_time_unix_nano = start;
        s
    }

    fn log(trace: Option<u8>, time: u64) -> LogRecord {
        LogRecord {
            time_unix_nano: time,
            trace_id: trace.map(|t| TraceId::from_bytes([t; 16])),
            ..LogRecord::default()
        }
    }

    fn batch(spans: Vec<Span>, logs: Vec<LogRecord>) -> Records {
        Records::from_batch(Batch {
            resource_spans: vec![ResourceSpans {
                resource: Arc::new(Resource {
                    schema_url: "r".into(),
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::default(),
                    spans,
                }],
            }],
            resource_logs: vec![ResourceLogs {
                resource: Arc::default(),
                scope_logs: vec![ScopeLogs {
                    scope: Arc::default(),
                    log_records: logs,
                }],
            }],
        })
    }

    #[test]
    fn trace_orders_spans_and_logs_by_time_across_batches() {
        let hot = HotTier::new();
        hot.apply(
            1,
            batch(
                vec![span(1, 3, 300), span(1, 1, 100), span(2, 9, 5)],
                vec![log(Some(1), 50)],
            ),
        );
        hot.apply(
            2,
            batch(vec![span(1, 2, 200)], vec![log(Some(1), 10), log(None, 1)]),
        );

        let trace = hot.trace(TraceId::from_bytes([1; 16])).unwrap();
        let starts: Vec<u64> = trace
            .spans
            .iter()
            .map(|s| s.span.start_time_unix_nano)
            .collect();
        assert_eq!(starts, [100, 200, 300]);
        let times: Vec<u64> = trace.logs.iter().map(|l| l.record.time_unix_nano).collect();
        assert_eq!(times, [10, 50]);
        assert_eq!(
            hot.trace(TraceId::from_bytes([2; 16])).unwrap().spans.len(),
            1
        );
        assert!(hot.trace(TraceId::from_bytes([3; 16])).is_none());
        assert_eq!(hot.untraced_logs().len(), 1);
        assert_eq!(
            hot.counts(),
            HotCounts {
                spans: 4,
                logs: 3,
                traces: 2
            }
        );
        let mut ids = hot.trace_ids();
        ids.sort();
        assert_eq!(
            ids,
            [TraceId::from_bytes([1; 16]), TraceId::from_bytes([2; 16])]
        );
    }

    #[test]
    fn spans_share_their_resource_and_scope() {
        let hot = HotTier::new();
        hot.apply(1, batch(vec![span(1, 1, 1), span(1, 2, 2)], Vec::new()));
        let trace = hot.trace(TraceId::from_bytes([1; 16])).unwrap();
        assert!(Arc::ptr_eq(
            &trace.spans[0].resource,
            &trace.spans[1].resource
        ));
        assert!(Arc::ptr_eq(&trace.spans[0].scope, &trace.spans[1].scope));
    }

    #[test]
    fn a_trace_known_only_from_logs_is_found() {
        let hot = HotTier::new();
        hot.apply(1, batch(Vec::new(), vec![log(Some(4), 1)]));
        let trace = hot.trace(TraceId::from_bytes([4; 16])).unwrap();
        assert!(trace.spans.is_empty());
        assert_eq!(trace.logs.len(), 1);
    }

    #[test]
    fn every_applied_lsn_is_remembered_even_for_empty_batches() {
        let hot = HotTier::new();
        assert!(hot.is_empty());
        assert_eq!(hot.age(), None);
        hot.apply(7, batch(vec![span(1, 1, 1)], Vec::new()));
        hot.apply(5, Records::default());
        hot.apply(6, batch(Vec::new(), vec![log(None, 1)]));
        hot.apply(
            9,
            batch(vec![span(2, 1, 1), span(3, 1, 1)], vec![log(Some(4), 2)]),
        );
        assert!(!hot.is_empty());
        assert!(hot.age().is_some());
        assert_eq!(hot.lsns().ranges(), [(5, 7), (9, 9)]);
    }

    #[test]
    fn dropping_a_tier_releases_every_span_once() {
        let hot = HotTier::new();
        let mut long = span(1, 1, 10);
        long.attributes.push(KeyValue::new(
            "url.full",
            "https://example.com/a/path/longer/than/inline",
        ));
        // Enough traces that the drop's look-ahead runs past both ends, and
        // traces of several spans.
        let spans: Vec<Span> = (2..40)
            .map(|t| span(t, 1, 20))
            .chain([long, span(2, 2, 21), span(2, 3, 22)])
            .collect();
        let records = batch(spans, vec![log(Some(1), 1)]);
        // Held here too, as detection holds them: the tier must let go of
        // its reference and only that one.
        let kept: Vec<Arc<Span>> = records.spans.iter().map(|r| Arc::clone(&r.span)).collect();
        hot.apply(1, records);
        assert!(kept.iter().all(|s| Arc::strong_count(s) == 2));
        drop(hot);
        assert!(kept.iter().all(|s| Arc::strong_count(s) == 1));
        assert_eq!(kept.len(), 41);
    }

    #[test]
    fn the_span_time_range_covers_every_batch_and_only_spans() {
        let hot = HotTier::new();
        // Logs only: no span time range, however late the log.
        hot.apply(1, batch(Vec::new(), vec![log(Some(1), 99)]));
        assert_eq!(hot.with_records(|_, facts, _| facts.times), None);
        let mut late_end = span(1, 1, 50);
        late_end.end_time_unix_nano = 70;
        hot.apply(2, batch(vec![late_end], Vec::new()));
        // An end before the start counts as the start.
        let mut backwards = span(2, 1, 30);
        backwards.end_time_unix_nano = 5;
        hot.apply(3, batch(vec![backwards, span(3, 1, 40)], Vec::new()));
        assert_eq!(hot.with_records(|_, facts, _| facts.times), Some((30, 70)));
    }

    #[test]
    fn records_and_scans_see_every_span_and_log() {
        let hot = HotTier::new();
        hot.apply(
            1,
            batch(
                vec![span(1, 1, 10), span(2, 1, 20), span(2, 2, 30)],
                vec![log(Some(1), 1), log(None, 2)],
            ),
        );
        let (mut span_starts, mut log_times) = hot.with_records(|spans, facts, logs| {
            // One estimate per span, each the span's own.
            assert_eq!(facts.row_bytes.len(), spans.len());
            for (span, bytes) in spans.iter().zip(facts.row_bytes) {
                assert_eq!(*bytes, segment::span_row_bytes(&span.span));
            }
            // The time range of all spans.
            let range = spans
                .iter()
                .map(|s| segment::span_time_range(&s.span))
                .reduce(segment::widen);
            assert_eq!(facts.times, range);
            assert_eq!(facts.times.map(|(min, _)| min), Some(10));
            (
                spans
                    .iter()
                    .map(|s| s.span.start_time_unix_nano)
                    .collect::<Vec<_>>(),
                logs.iter()
                    .map(|l| l.record.time_unix_nano)
                    .collect::<Vec<_>>(),
            )
        });
        span_starts.sort();
        log_times.sort();
        assert_eq!(span_starts, [10, 20, 30]);
        assert_eq!(log_times, [1, 2]);
        let late = hot.scan_spans(&|s| s.span.start_time_unix_nano >= 20, None);
        let mut starts: Vec<u64> = late.iter().map(|s| s.span.start_time_unix_nano).collect();
        starts.sort();
        assert_eq!(starts, [20, 30]);
        assert_eq!(hot.scan_spans(&|_| true, Some(2)).len(), 2);
    }
}
