//! Joining log records to their span: a log rule with `join:` reads
//! attributes (the caller's `client.address`, `enduser.id`) that only the
//! span the record was emitted in carries. A record is usually exported
//! before its span (the span ends after the log line is written, and SDKs
//! flush logs sooner), so [`JoinBuffer`] holds such records, keyed by
//! (trace id, span id), until their span arrives; and it keeps the join
//! attributes of recently arrived spans, so a record exported after its
//! span joins at once. The engine decides what waits (`engine/logs.rs`):
//! only records that lack a field some rule joins and that carry a span id.
//!
//! # Time
//!
//! As in [`crate::assembly`], time is the `now` the caller passes (unix
//! nanoseconds, the arrival clock) and never goes backwards. A held record
//! waits at most [`LogJoinConfig::wait`]; then it is handed back to be
//! evaluated alone (its own attributes), counted as expired. A span stays
//! in the index for `wait` after it arrived: a record and its span join
//! when they arrive within `wait` of each other, in either order.
//!
//! # Limits
//!
//! [`LogJoinConfig::max_pending`] records held and
//! [`LogJoinConfig::max_spans`] spans indexed, both oldest-first evicted
//! and counted ([`LogJoinStats`]): an evicted record is evaluated alone at
//! once, never dropped. Memory: a held record is an owned
//! [`LogEntry`] (about 200 bytes plus its body and attributes; resource
//! and scope are shared with the batch), plus about 60 bytes of index; an
//! indexed span keeps only the joined attributes (56 bytes each plus
//! strings over 24 bytes) and about 80 bytes of map and order entry.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracewarden_model::{KeyValue, LogEntry, LogRecord, Resource, Scope, SpanId, TraceId};

/// Limits and timing of the join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogJoinConfig {
    /// How long a record waits for its span, and a span waits in the index
    /// for its records (default 5 s, the trace idle time).
    pub wait: Duration,
    /// Records held at once (default 100,000); beyond, the oldest is
    /// evaluated alone (counted). 0: records never wait.
    pub max_pending: usize,
    /// Spans indexed at once (default 100,000); beyond, the oldest is
    /// forgotten (counted). 0: no index.
    pub max_spans: usize,
}

impl Default for LogJoinConfig {
    fn default() -> Self {
        LogJoinConfig {
            wait: Duration::from_secs(5),
            max_pending: 100_000,
            max_spans: 100_000,
        }
    }
}

/// Counters of the join.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogJoinStats {
    /// Records held to wait for their span.
    pub held_records: u64,
    /// Records evaluated with their span's attributes (after waiting, or
    /// at once when the span had arrived first).
    pub joined_records: u64,
    /// Held records whose span did not arrive within `wait`: evaluated
    /// with their own attributes.
    pub expired_records: u64,
    /// Held records pushed out by `max_pending`: evaluated at once with
    /// their own attributes.
    pub evicted_records: u64,
    /// Held records evaluated alone at a drain (shutdown, end of a scan).
    pub drained_records: u64,
    /// Spans put in the index (they carried a joined attribute).
    pub indexed_spans: u64,
    /// Spans pushed out of the index by `max_spans` before `wait`.
    pub evicted_spans: u64,
    /// Records held now.
    pub pending_records: usize,
    /// Spans in the index now.
    pub index_spans: usize,
}

/// Where a record was emitted.
pub type SpanKey = (TraceId, SpanId);

struct Held {
    seq: u64,
    entry: LogEntry,
}

/// What a [`JoinBuffer`] holds, as a checkpoint keeps it
/// ([`JoinBuffer::saved`], [`JoinBuffer::restore`]): the waiting records
/// with their deadlines and the indexed spans with their arrival times;
/// resources and scopes once each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedJoin {
    resources: Vec<Resource>,
    scopes: Vec<Scope>,
    /// (deadline, span, resource index, scope index, record), oldest first.
    held: Vec<(u64, SpanKey, u32, u32, LogRecord)>,
    /// (arrival, span, joined attributes), oldest first.
    index: Vec<(u64, SpanKey, Vec<KeyValue>)>,
}

impl SavedJoin {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.index.is_empty()
    }

    /// Records saved waiting.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

struct Indexed {
    arrived: u64,
    attributes: Vec<KeyValue>,
}

/// Records waiting for their span and the join attributes of recent spans.
pub struct JoinBuffer {
    config: LogJoinConfig,
    wait: u64,
    now: u64,
    seq: u64,
    pending: HashMap<SpanKey, Vec<Held>>,
    /// (deadline, span, seq) in arrival order, so in deadline order;
    /// entries of records already released are skipped when met.
    pending_order: VecDeque<(u64, SpanKey, u64)>,
    pending_count: usize,
    index: HashMap<SpanKey, Indexed>,
    /// (arrival, span) in arrival order; stale when the span was indexed
    /// again later.
    index_order: VecDeque<(u64, SpanKey)>,
    stats: LogJoinStats,
}

impl JoinBuffer {
    pub fn new(config: LogJoinConfig) -> JoinBuffer {
        JoinBuffer {
            wait: u64::try_from(config.wait.as_nanos()).unwrap_or(u64::MAX),
            config,
            now: 0,
            seq: 0,
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            pending_count: 0,
            index: HashMap::new(),
            index_order: VecDeque::new(),
            stats: LogJoinStats::default(),
        }
    }

    fn advance(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    /// Records held now.
    pub fn pending(&self) -> usize {
        self.pending_count
    }

    /// The joined attributes of `span` when it arrived within `wait` of
    /// `now`.
    pub fn lookup(&self, span: &SpanKey, now: u64) -> Option<&[KeyValue]> {
        let indexed = self.index.get(span)?;
        let now = self.now.max(now);
        (indexed.arrived.saturating_add(self.wait) > now).then_some(&indexed.attributes[..])
    }

    /// Holds `entry` until its span arrives or `wait` passes. Records the
    /// cap pushes out (the oldest; `entry` itself when nothing may wait)
    /// go to `evicted`, to be evaluated alone now.
    pub fn hold(&mut self, span: SpanKey, entry: LogEntry, now: u64, evicted: &mut Vec<LogEntry>) {
        let now = self.advance(now);
        if self.config.max_pending == 0 {
            self.stats.evicted_records += 1;
            evicted.push(entry);
            return;
        }
        while self.pending_count >= self.config.max_pending {
            match self.pop_oldest() {
                Some(old) => {
                    self.stats.evicted_records += 1;
                    evicted.push(old);
                }
                None => break,
            }
        }
        self.seq += 1;
        let seq = self.seq;
        self.pending_order
            .push_back((now.saturating_add(self.wait), span, seq));
        self.pending
            .entry(span)
            .or_default()
            .push(Held { seq, entry });
        self.pending_count += 1;
        self.stats.held_records += 1;
        self.compact_order();
    }

    /// `span` arrived: its held records go to `out` (to be evaluated with
    /// its attributes).
    pub fn take_held(&mut self, span: &SpanKey, out: &mut Vec<LogEntry>) {
        if let Some(held) = self.pending.remove(span) {
            self.pending_count -= held.len();
            self.stats.joined_records += held.len() as u64;
            out.extend(held.into_iter().map(|h| h.entry));
        }
    }

    /// Counts a record joined at once (its span was in the index).
    pub fn count_joined(&mut self) {
        self.stats.joined_records += 1;
    }

    /// Keeps the joined attributes of a span that arrived at `now`, for
    /// records arriving within `wait`.
    pub fn index(&mut self, span: SpanKey, attributes: Vec<KeyValue>, now: u64) {
        let now = self.advance(now);
        self.prune_index();
        if self.config.max_spans == 0 {
            return;
        }
        // `contains_key` hashes only when full: one hash per span otherwise.
        if self.index.len() >= self.config.max_spans && !self.index.contains_key(&span) {
            while self.index.len() >= self.config.max_spans {
                let Some((arrived, old)) = self.index_order.pop_front() else {
                    break;
                };
                if self.index.get(&old).is_some_and(|i| i.arrived == arrived) {
                    self.index.remove(&old);
                    self.stats.evicted_spans += 1;
                }
            }
        }
        self.index.insert(
            span,
            Indexed {
                arrived: now,
                attributes,
            },
        );
        self.index_order.push_back((now, span));
        self.stats.indexed_spans += 1;
        // Re-indexed spans leave stale order entries; keep them bounded.
        if self.index_order.len() > self.index.len().saturating_mul(2).max(1024) {
            let index = &self.index;
            self.index_order
                .retain(|(arrived, key)| index.get(key).is_some_and(|i| i.arrived == *arrived));
        }
    }

    /// Records whose wait ended by `now` go to `out` (to be evaluated
    /// alone); spans indexed `wait` ago are forgotten.
    pub fn expire(&mut self, now: u64, out: &mut Vec<LogEntry>) {
        let now = self.advance(now);
        while let Some(&(deadline, span, seq)) = self.pending_order.front() {
            if deadline > now {
                break;
            }
            self.pending_order.pop_front();
            if let Some(entry) = self.remove_held(&span, seq) {
                self.stats.expired_records += 1;
                out.push(entry);
            }
        }
        self.prune_index();
    }

    /// Every held record goes to `out` (to be evaluated alone), oldest first.
    pub fn drain(&mut self, out: &mut Vec<LogEntry>) {
        while let Some(entry) = self.pop_oldest() {
            self.stats.drained_records += 1;
            out.push(entry);
        }
        self.pending_order.clear();
    }

    /// The earliest arrival time at which a held record's wait ends; `None`
    /// when none is held.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.pending_count == 0 {
            return None;
        }
        // The front may be a released record's entry: an early wake-up at
        // worst, and `expire` removes it.
        self.pending_order.front().map(|&(deadline, _, _)| deadline)
    }

    /// The waiting records and indexed spans, for a checkpoint.
    pub fn saved(&self) -> SavedJoin {
        let mut saved = SavedJoin::default();
        let mut resources: HashMap<*const Resource, u32> = HashMap::new();
        let mut scopes: HashMap<*const Scope, u32> = HashMap::new();
        for &(deadline, span, seq) in &self.pending_order {
            let Some(held) = self
                .pending
                .get(&span)
                .and_then(|held| held.iter().find(|h| h.seq == seq))
            else {
                continue;
            };
            let entry = &held.entry;
            let resource = *resources
                .entry(Arc::as_ptr(&entry.resource))
                .or_insert_with(|| {
                    saved.resources.push((*entry.resource).clone());
                    u32::try_from(saved.resources.len() - 1).unwrap_or(u32::MAX)
                });
            let scope = *scopes.entry(Arc::as_ptr(&entry.scope)).or_insert_with(|| {
                saved.scopes.push((*entry.scope).clone());
                u32::try_from(saved.scopes.len() - 1).unwrap_or(u32::MAX)
            });
            saved
                .held
                .push((deadline, span, resource, scope, entry.record.clone()));
        }
        for &(arrived, span) in &self.index_order {
            if let Some(indexed) = self.index.get(&span)
                && indexed.arrived == arrived
            {
                saved
                    .index
                    .push((arrived, span, indexed.attributes.clone()));
            }
        }
        saved
    }

    /// Holds and indexes again what a checkpoint saved, with its deadlines
    /// and arrival times; caps apply as on arrival (records pushed out go
    /// to `evicted`, to be evaluated alone).
    pub fn restore(&mut self, saved: SavedJoin, evicted: &mut Vec<LogEntry>) {
        let resources: Vec<Arc<Resource>> = saved.resources.into_iter().map(Arc::new).collect();
        let scopes: Vec<Arc<Scope>> = saved.scopes.into_iter().map(Arc::new).collect();
        for (arrived, span, attributes) in saved.index {
            self.index(span, attributes, arrived);
        }
        for (deadline, span, resource, scope, record) in saved.held {
            let (Some(resource), Some(scope)) =
                (resources.get(resource as usize), scopes.get(scope as usize))
            else {
                continue;
            };
            let entry = LogEntry {
                resource: Arc::clone(resource),
                scope: Arc::clone(scope),
                record,
            };
            // Held again with the deadline it had.
            let arrived = deadline.saturating_sub(self.wait);
            self.hold(span, entry, arrived, evicted);
        }
    }

    pub fn stats(&self) -> LogJoinStats {
        LogJoinStats {
            pending_records: self.pending_count,
            index_spans: self.index.len(),
            ..self.stats.clone()
        }
    }

    fn pop_oldest(&mut self) -> Option<LogEntry> {
        while let Some((_, span, seq)) = self.pending_order.pop_front() {
            if let Some(entry) = self.remove_held(&span, seq) {
                return Some(entry);
            }
        }
        None
    }

    fn remove_held(&mut self, span: &SpanKey, seq: u64) -> Option<LogEntry> {
        let held = self.pending.get_mut(span)?;
        let at = held.iter().position(|h| h.seq == seq)?;
        let entry = held.remove(at).entry;
        if held.is_empty() {
            self.pending.remove(span);
        }
        self.pending_count -= 1;
        Some(entry)
    }

    /// Drops order entries of released records when they outnumber the
    /// held ones: memory stays proportional to what is held.
    fn compact_order(&mut self) {
        if self.pending_order.len() > self.pending_count.saturating_mul(2).max(1024) {
            let pending = &self.pending;
            self.pending_order.retain(|(_, span, seq)| {
                pending
                    .get(span)
                    .is_some_and(|held| held.iter().any(|h| h.seq == *seq))
            });
        }
    }

    fn prune_index(&mut self) {
        while let Some(&(arrived, span)) = self.index_order.front() {
            if arrived.saturating_add(self.wait) > self.now {
                break;
            }
            self.index_order.pop_front();
            if self.index.get(&span).is_some_and(|i| i.arrived == arrived) {
                self.index.remove(&span);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewarden_model::{AnyValue, LogRecord};

    use super::*;

    const S: u64 = 1_000_000_000;

    fn key(n: u8) -> SpanKey {
        (TraceId::from_bytes([n; 16]), SpanId::from_bytes([n; 8]))
    }

    fn entry(body: &str) -> LogEntry {
        LogEntry {
            resource: Arc::default(),
            scope: Arc::default(),
            record: LogRecord {
                time_unix_nano: 1,
                observed_time_unix_nano: 1,
                severity_number: 0,
                severity_text: Default::default(),
                body: AnyValue::from(body),
                attributes: Vec::new(),
                original_attributes: Vec::new(),
                dropped_attributes_count: 0,
                flags: 0,
                trace_id: None,
                span_id: None,
                event_name: Default::default(),
            },
        }
    }

    fn bodies(entries: &[LogEntry]) -> Vec<String> {
        entries.iter().map(|e| e.record.body.to_text()).collect()
    }

    fn config(max_pending: usize, max_spans: usize) -> LogJoinConfig {
        LogJoinConfig {
            wait: Duration::from_secs(5),
            max_pending,
            max_spans,
        }
    }

    #[test]
    fn held_records_leave_with_their_span_or_at_their_deadline() {
        let mut buffer = JoinBuffer::new(config(10, 10));
        let mut out = Vec::new();
        buffer.hold(key(1), entry("a"), 10 * S, &mut out);
        buffer.hold(key(2), entry("b"), 11 * S, &mut out);
        buffer.hold(key(1), entry("c"), 12 * S, &mut out);
        assert!(out.is_empty());
        assert_eq!(buffer.next_deadline(), Some(15 * S));
        buffer.take_held(&key(1), &mut out);
        assert_eq!(bodies(&out), ["a", "c"]);
        out.clear();
        buffer.expire(15 * S, &mut out);
        assert!(out.is_empty(), "a's entry is stale");
        buffer.expire(16 * S, &mut out);
        assert_eq!(bodies(&out), ["b"]);
        assert_eq!(buffer.next_deadline(), None);
        let stats = buffer.stats();
        assert_eq!(
            (
                stats.held_records,
                stats.joined_records,
                stats.expired_records
            ),
            (3, 2, 1)
        );
        assert_eq!(stats.pending_records, 0);
    }

    #[test]
    fn the_pending_cap_evicts_the_oldest_record() {
        let mut buffer = JoinBuffer::new(config(2, 10));
        let mut out = Vec::new();
        for (i, body) in ["a", "b", "c"].into_iter().enumerate() {
            buffer.hold(key(1), entry(body), (10 + i as u64) * S, &mut out);
        }
        assert_eq!(bodies(&out), ["a"]);
        assert_eq!(buffer.stats().evicted_records, 1);
        assert_eq!(buffer.pending(), 2);
        out.clear();
        buffer.drain(&mut out);
        assert_eq!(bodies(&out), ["b", "c"]);
        assert_eq!(buffer.stats().drained_records, 2);
        let mut none = JoinBuffer::new(config(0, 10));
        out.clear();
        none.hold(key(1), entry("x"), S, &mut out);
        assert_eq!(bodies(&out), ["x"], "nothing may wait: evaluated at once");
    }

    #[test]
    fn the_index_forgets_spans_after_the_wait_and_beyond_its_cap() {
        let mut buffer = JoinBuffer::new(config(10, 2));
        let attrs = |v: &str| vec![KeyValue::new("client.address", v)];
        buffer.index(key(1), attrs("1"), 10 * S);
        buffer.index(key(2), attrs("2"), 11 * S);
        buffer.index(key(3), attrs("3"), 12 * S);
        assert!(
            buffer.lookup(&key(1), 12 * S).is_none(),
            "evicted by the cap"
        );
        assert_eq!(buffer.stats().evicted_spans, 1);
        assert_eq!(buffer.lookup(&key(3), 12 * S), Some(&attrs("3")[..]));
        // 16 s: span 2 arrived 5 s ago, so it is gone.
        let mut out = Vec::new();
        buffer.expire(16 * S, &mut out);
        assert!(buffer.lookup(&key(2), 16 * S).is_none());
        assert!(buffer.lookup(&key(3), 16 * S).is_some());
        assert_eq!(buffer.stats().index_spans, 1);
    }
}
