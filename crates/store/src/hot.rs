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
//! Everything stays in memory for now, without bound: a later change flushes
//! the hot tier to Parquet segments and removes the WAL files they cover.
//! Log records without a trace id are kept too (they were acknowledged), in
//! a per-shard list served by [`crate::Store::logs_without_trace`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use tracewarden_model::{Batch, LogRecord, Resource, Scope, Span, TraceId};

/// Number of lock shards of the hot tier.
pub const SHARDS: usize = 16;

/// A span with the resource and scope it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub span: Span,
}

/// A log record with the resource and scope it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub record: LogRecord,
}

/// Everything held for one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub trace_id: TraceId,
    /// Ordered by start time (then span id, so the order is stable).
    pub spans: Vec<SpanRecord>,
    /// Log records carrying this trace id, ordered by time
    /// ([`LogRecord::effective_time_unix_nano`]).
    pub logs: Vec<LogEntry>,
}

#[derive(Default)]
struct TraceEntry {
    spans: Vec<SpanRecord>,
    logs: Vec<LogEntry>,
}

#[derive(Default)]
struct Shard {
    traces: HashMap<TraceId, TraceEntry>,
    untraced_logs: Vec<LogEntry>,
}

/// Spans and logs in memory, sharded by trace id.
pub(crate) struct HotTier {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    spans: AtomicU64,
    logs: AtomicU64,
    traces: AtomicU64,
    next_untraced_shard: AtomicUsize,
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
            hasher: RandomState::new(),
            spans: AtomicU64::new(0),
            logs: AtomicU64::new(0),
            traces: AtomicU64::new(0),
            next_untraced_shard: AtomicUsize::new(0),
        }
    }

    fn shard_of(&self, trace_id: &TraceId) -> usize {
        // Truncating the hash is fine: only its low bits pick the shard.
        (self.hasher.hash_one(trace_id) as usize) % SHARDS
    }

    /// Adds every span and log record of `batch`.
    pub fn apply(&self, batch: Batch) {
        let mut span_buckets: [Vec<SpanRecord>; SHARDS] = Default::default();
        let mut log_buckets: [Vec<LogEntry>; SHARDS] = Default::default();
        let mut untraced = Vec::new();
        let (mut span_count, mut log_count) = (0u64, 0u64);

        for rs in batch.resource_spans {
            let resource = rs.resource;
            for ss in rs.scope_spans {
                let scope = ss.scope;
                for span in ss.spans {
                    span_count += 1;
                    let shard = self.shard_of(&span.trace_id);
                    span_buckets[shard].push(SpanRecord {
                        resource: Arc::clone(&resource),
                        scope: Arc::clone(&scope),
                        span,
                    });
                }
            }
        }
        for rl in batch.resource_logs {
            let resource = rl.resource;
            for sl in rl.scope_logs {
                let scope = sl.scope;
                for record in sl.log_records {
                    log_count += 1;
                    let trace_id = record.trace_id;
                    let entry = LogEntry {
                        resource: Arc::clone(&resource),
                        scope: Arc::clone(&scope),
                        record,
                    };
                    match trace_id {
                        Some(trace_id) => log_buckets[self.shard_of(&trace_id)].push(entry),
                        None => untraced.push(entry),
                    }
                }
            }
        }

        let mut new_traces = 0u64;
        for (index, (spans, logs)) in span_buckets.into_iter().zip(log_buckets).enumerate() {
            if spans.is_empty() && logs.is_empty() {
                continue;
            }
            let mut shard = self.shards[index].write();
            for record in spans {
                let entry = shard.traces.entry(record.span.trace_id).or_insert_with(|| {
                    new_traces += 1;
                    TraceEntry::default()
                });
                entry.spans.push(record);
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
        if !untraced.is_empty() {
            // Round-robin, so untraced logs do not all queue on one lock.
            let index = self.next_untraced_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
            self.shards[index].write().untraced_logs.extend(untraced);
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
            (entry.spans.clone(), entry.logs.clone())
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
    use tracewarden_model::{ResourceLogs, ResourceSpans, ScopeLogs, ScopeSpans, SpanId};

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

    fn batch(spans: Vec<Span>, logs: Vec<LogRecord>) -> Batch {
        Batch {
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
        }
    }

    #[test]
    fn trace_orders_spans_and_logs_by_time_across_batches() {
        let hot = HotTier::new();
        hot.apply(batch(
            vec![span(1, 3, 300), span(1, 1, 100), span(2, 9, 5)],
            vec![log(Some(1), 50)],
        ));
        hot.apply(batch(
            vec![span(1, 2, 200)],
            vec![log(Some(1), 10), log(None, 1)],
        ));

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
        hot.apply(batch(vec![span(1, 1, 1), span(1, 2, 2)], Vec::new()));
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
        hot.apply(batch(Vec::new(), vec![log(Some(4), 1)]));
        let trace = hot.trace(TraceId::from_bytes([4; 16])).unwrap();
        assert!(trace.spans.is_empty());
        assert_eq!(trace.logs.len(), 1);
    }
}
