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
//! # Climbing to an ancestor
//!
//! Applications often log inside a child span (a database call, a manual
//! span of the handler) while the caller's address and user sit on the
//! service's entry span. A span that lacks a joined attribute and whose
//! parent is in the same process (not a server or consumer span, and not
//! marked as continuing a remote context) is indexed with its parent id
//! (once some record has climbed: the engine decides), and a record
//! climbs from its span through such links, at most
//! [`MAX_JOIN_HOPS`] ancestors, taking each attribute from the nearest
//! span that carries it. A record whose chain reaches a span not seen yet
//! waits for that span (a parent ends, so is exported, after its child).
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
use tracewarden_model::{
    KeyValue, LogEntry, LogRecord, Resource, Scope, SpanId, TraceId, find_attribute,
};

/// Most ancestors a record climbs from its span to find a joined attribute
/// (a handler's span, its children, theirs: a few levels in practice).
pub const MAX_JOIN_HOPS: u8 = 8;

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
    /// How long after the engine's first batch spans lacking a joined
    /// attribute are indexed as links to their parent though no record has
    /// climbed yet (default 60 s): after a start nothing says whether
    /// records name child spans. (Until a record needs a join, spans are
    /// only kept, a shared clone each, for `wait` and at most `max_spans`;
    /// the first record that needs one indexes those, as links too, so it
    /// joins the spans that came before it whenever it comes.)
    pub eager: Duration,
}

impl Default for LogJoinConfig {
    fn default() -> Self {
        LogJoinConfig {
            wait: Duration::from_secs(5),
            max_pending: 100_000,
            max_spans: 100_000,
            eager: Duration::from_secs(60),
        }
    }
}

/// Counters of the join.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogJoinStats {
    /// Records held to wait for their span (a record climbing to an
    /// ancestor not seen yet is held again, and counted again).
    pub held_records: u64,
    /// Records evaluated with their span's attributes (after waiting, or
    /// at once when the span had arrived first).
    pub joined_records: u64,
    /// Of those, records whose span lacked a joined attribute and that
    /// climbed to an ancestor span for it.
    pub ancestor_joined_records: u64,
    /// Held records whose span did not arrive within `wait`: evaluated
    /// with their own attributes.
    pub expired_records: u64,
    /// Held records pushed out by `max_pending`: evaluated at once with
    /// their own attributes.
    pub evicted_records: u64,
    /// Held records evaluated alone at a drain (shutdown, end of a scan).
    pub drained_records: u64,
    /// Spans put in the index (they carried a joined attribute, or lacked
    /// one and have a parent in the same process to climb to).
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
    gathered: Vec<KeyValue>,
    hops: u8,
}

/// A record leaving the buffer: the joined attributes gathered so far from
/// its span and the ancestors it climbed (nearest first; empty when none
/// was seen) and how many ancestors it climbed.
#[derive(Clone, Debug)]
pub struct Released {
    pub entry: LogEntry,
    pub gathered: Vec<KeyValue>,
    pub hops: u8,
}

impl Released {
    fn of(held: Held) -> Released {
        Released {
            entry: held.entry,
            gathered: held.gathered,
            hops: held.hops,
        }
    }
}

/// How far an engine's join has come, kept in the checkpoint beside what
/// it holds: `wanted` once a record has needed a join (spans are indexed
/// from then on), `climbs` once a record has climbed to an ancestor (spans
/// lacking a joined attribute are indexed as links too). Without it, a
/// restart that held nothing would index no span until a record waited
/// again, and the first records whose span had already passed would be
/// evaluated alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinProgress {
    pub wanted: bool,
    pub climbs: bool,
}

impl JoinProgress {
    /// Whether anything is set (a checkpoint writes it only then).
    pub fn any(self) -> bool {
        self.wanted || self.climbs
    }
}

/// What a [`JoinBuffer`] holds, as a checkpoint keeps it
/// ([`JoinBuffer::saved`], [`JoinBuffer::restore`]): the waiting records
/// with their deadlines and the indexed spans with their arrival times;
/// resources and scopes once each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedJoin {
    resources: Vec<Resource>,
    scopes: Vec<Scope>,
    /// (deadline, span, resource index, scope index, record, gathered
    /// attributes, hops), oldest first.
    held: Vec<SavedHeld>,
    /// (arrival, span, joined attributes, parent to climb to), oldest first.
    index: Vec<(u64, SpanKey, Vec<KeyValue>, Option<SpanId>)>,
}

type SavedHeld = (u64, SpanKey, u32, u32, LogRecord, Vec<KeyValue>, u8);

impl SavedJoin {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.index.is_empty()
    }

    /// Records saved waiting.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether a record had climbed to an ancestor, or a span was indexed
    /// as a link to its parent.
    pub fn has_climbs(&self) -> bool {
        self.held.iter().any(|held| held.6 > 0) || self.index.iter().any(|span| span.3.is_some())
    }
}

struct Indexed {
    arrived: u64,
    attributes: Vec<KeyValue>,
    /// The parent a record climbs to for what `attributes` lacks.
    parent: Option<SpanId>,
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

    pub fn config(&self) -> &LogJoinConfig {
        &self.config
    }

    fn advance(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    /// Records held now.
    pub fn pending(&self) -> usize {
        self.pending_count
    }

    /// Walks from `span` up its indexed ancestors (spans that arrived
    /// within `wait` of `now`), appending to `gathered` each joined
    /// attribute it does not hold yet, until `complete(gathered)`, a span
    /// with no parent to climb to, or [`MAX_JOIN_HOPS`] (counted in
    /// `hops`). `Some(key)`: the chain reaches a span not in the index, to
    /// wait for; `None`: the chain ended, `gathered` is what there is.
    pub fn climb(
        &self,
        span: SpanKey,
        gathered: &mut Vec<KeyValue>,
        hops: &mut u8,
        complete: impl Fn(&[KeyValue]) -> bool,
        now: u64,
    ) -> Option<SpanKey> {
        let now = self.now.max(now);
        let mut at = span;
        loop {
            let Some(indexed) = self
                .index
                .get(&at)
                .filter(|i| i.arrived.saturating_add(self.wait) > now)
            else {
                return Some(at);
            };
            merge_nearest(gathered, &indexed.attributes);
            if complete(gathered) {
                return None;
            }
            match indexed.parent {
                Some(parent) if *hops < MAX_JOIN_HOPS => {
                    *hops += 1;
                    at = (at.0, parent);
                }
                _ => return None,
            }
        }
    }

    /// Holds `entry` until `span` arrives or `wait` passes, with the
    /// attributes gathered so far (`gathered`, after `hops` ancestors: a
    /// record climbing to a parent not seen yet). Records the cap pushes out
    /// (the oldest; `entry` itself when nothing may wait) go to `evicted`,
    /// to be evaluated now with what they gathered.
    pub fn hold(
        &mut self,
        span: SpanKey,
        entry: LogEntry,
        gathered: Vec<KeyValue>,
        hops: u8,
        now: u64,
        evicted: &mut Vec<Released>,
    ) {
        let now = self.advance(now);
        if self.config.max_pending == 0 {
            self.stats.evicted_records += 1;
            evicted.push(Released {
                entry,
                gathered,
                hops,
            });
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
        self.pending.entry(span).or_default().push(Held {
            seq,
            entry,
            gathered,
            hops,
        });
        self.pending_count += 1;
        self.stats.held_records += 1;
        self.compact_order();
    }

    /// `span` arrived: its held records go to `out` (to be evaluated with
    /// its attributes, or to climb on to its parent).
    pub fn take_held(&mut self, span: &SpanKey, out: &mut Vec<Released>) {
        if let Some(held) = self.pending.remove(span) {
            self.pending_count -= held.len();
            out.extend(held.into_iter().map(Released::of));
        }
    }

    /// Counts a record evaluated with its span's attributes, found after
    /// climbing `hops` ancestors.
    pub fn count_joined(&mut self, hops: u8) {
        self.stats.joined_records += 1;
        if hops > 0 {
            self.stats.ancestor_joined_records += 1;
        }
    }

    /// Keeps the joined attributes of a span that arrived at `now`, and the
    /// parent to climb to for those it lacks, for records arriving within
    /// `wait`.
    pub fn index(
        &mut self,
        span: SpanKey,
        attributes: Vec<KeyValue>,
        parent: Option<SpanId>,
        now: u64,
    ) {
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
                parent,
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

    /// Records whose wait ended by `now` go to `out` (to be evaluated with
    /// what they gathered, alone when nothing); spans indexed `wait` ago are
    /// forgotten.
    pub fn expire(&mut self, now: u64, out: &mut Vec<Released>) {
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

    /// Every held record goes to `out` (to be evaluated with what it
    /// gathered), oldest first.
    pub fn drain(&mut self, out: &mut Vec<Released>) {
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
            saved.held.push((
                deadline,
                span,
                resource,
                scope,
                entry.record.clone(),
                held.gathered.clone(),
                held.hops,
            ));
        }
        for &(arrived, span) in &self.index_order {
            if let Some(indexed) = self.index.get(&span)
                && indexed.arrived == arrived
            {
                saved
                    .index
                    .push((arrived, span, indexed.attributes.clone(), indexed.parent));
            }
        }
        saved
    }

    /// Holds and indexes again what a checkpoint saved, with its deadlines
    /// and arrival times; caps apply as on arrival (records pushed out go
    /// to `evicted`, to be evaluated with what they gathered).
    pub fn restore(&mut self, saved: SavedJoin, evicted: &mut Vec<Released>) {
        let resources: Vec<Arc<Resource>> = saved.resources.into_iter().map(Arc::new).collect();
        let scopes: Vec<Arc<Scope>> = saved.scopes.into_iter().map(Arc::new).collect();
        for (arrived, span, attributes, parent) in saved.index {
            self.index(span, attributes, parent, arrived);
        }
        for (deadline, span, resource, scope, record, gathered, hops) in saved.held {
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
            self.hold(span, entry, gathered, hops, arrived, evicted);
        }
    }

    pub fn stats(&self) -> LogJoinStats {
        LogJoinStats {
            pending_records: self.pending_count,
            index_spans: self.index.len(),
            ..self.stats.clone()
        }
    }

    fn pop_oldest(&mut self) -> Option<Released> {
        while let Some((_, span, seq)) = self.pending_order.pop_front() {
            if let Some(entry) = self.remove_held(&span, seq) {
                return Some(entry);
            }
        }
        None
    }

    fn remove_held(&mut self, span: &SpanKey, seq: u64) -> Option<Released> {
        let held = self.pending.get_mut(span)?;
        let at = held.iter().position(|h| h.seq == seq)?;
        let entry = Released::of(held.remove(at));
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

/// Appends the attributes of `span` whose key `gathered` lacks: a nearer
/// span's value wins.
pub(crate) fn merge_nearest(gathered: &mut Vec<KeyValue>, span: &[KeyValue]) {
    for kv in span {
        if find_attribute(gathered, &kv.key).is_none() {
            gathered.push(kv.clone());
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

    fn bodies(released: &[Released]) -> Vec<String> {
        released
            .iter()
            .map(|r| r.entry.record.body.to_text())
            .collect()
    }

    /// What a record emitted in `span` joins at `now`: `None` when it must
    /// wait.
    fn lookup(buffer: &JoinBuffer, span: SpanKey, now: u64) -> Option<Vec<KeyValue>> {
        let mut gathered = Vec::new();
        let mut hops = 0;
        let wait = buffer.climb(span, &mut gathered, &mut hops, |_| false, now);
        wait.is_none().then_some(gathered)
    }

    fn config(max_pending: usize, max_spans: usize) -> LogJoinConfig {
        LogJoinConfig {
            wait: Duration::from_secs(5),
            max_pending,
            max_spans,
            eager: Duration::ZERO,
        }
    }

    #[test]
    fn held_records_leave_with_their_span_or_at_their_deadline() {
        let mut buffer = JoinBuffer::new(config(10, 10));
        let mut out = Vec::new();
        buffer.hold(key(1), entry("a"), Vec::new(), 0, 10 * S, &mut out);
        buffer.hold(key(2), entry("b"), Vec::new(), 0, 11 * S, &mut out);
        buffer.hold(key(1), entry("c"), Vec::new(), 0, 12 * S, &mut out);
        assert!(out.is_empty());
        assert_eq!(buffer.next_deadline(), Some(15 * S));
        buffer.take_held(&key(1), &mut out);
        assert_eq!(bodies(&out), ["a", "c"]);
        // The engine counts a join once it evaluates the record (a record
        // may climb on instead).
        for released in out.drain(..) {
            buffer.count_joined(released.hops);
        }
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
            buffer.hold(
                key(1),
                entry(body),
                Vec::new(),
                0,
                (10 + i as u64) * S,
                &mut out,
            );
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
        none.hold(key(1), entry("x"), Vec::new(), 0, S, &mut out);
        assert_eq!(bodies(&out), ["x"], "nothing may wait: evaluated at once");
    }

    #[test]
    fn the_index_forgets_spans_after_the_wait_and_beyond_its_cap() {
        let mut buffer = JoinBuffer::new(config(10, 2));
        let attrs = |v: &str| vec![KeyValue::new("client.address", v)];
        buffer.index(key(1), attrs("1"), None, 10 * S);
        buffer.index(key(2), attrs("2"), None, 11 * S);
        buffer.index(key(3), attrs("3"), None, 12 * S);
        assert!(
            lookup(&buffer, key(1), 12 * S).is_none(),
            "evicted by the cap"
        );
        assert_eq!(buffer.stats().evicted_spans, 1);
        assert_eq!(lookup(&buffer, key(3), 12 * S), Some(attrs("3")));
        // 16 s: span 2 arrived 5 s ago, so it is gone.
        let mut out = Vec::new();
        buffer.expire(16 * S, &mut out);
        assert!(lookup(&buffer, key(2), 16 * S).is_none());
        assert!(lookup(&buffer, key(3), 16 * S).is_some());
        assert_eq!(buffer.stats().index_spans, 1);
    }

    /// A span lacking an attribute links to its parent; the climb takes each
    /// attribute from the nearest span carrying it, waits for an ancestor not
    /// seen yet, and stops after `MAX_JOIN_HOPS`.
    #[test]
    fn a_climb_takes_the_nearest_value_and_waits_for_unseen_ancestors() {
        let mut buffer = JoinBuffer::new(config(10, 100));
        let trace = TraceId::from_bytes([7; 16]);
        let id = |n: u8| SpanId::from_bytes([n; 8]);
        let at = |n: u8| (trace, id(n));
        let both = |g: &[KeyValue]| {
            find_attribute(g, "client.address").is_some()
                && find_attribute(g, "enduser.id").is_some()
        };
        // 1 (entry: address and user) <- 2 (user only) <- 3 (nothing) <- 4
        // (its parent 5 not seen).
        buffer.index(
            at(1),
            vec![
                KeyValue::new("client.address", "203.0.113.9"),
                KeyValue::new("enduser.id", "root-user"),
            ],
            None,
            S,
        );
        buffer.index(
            at(2),
            vec![KeyValue::new("enduser.id", "alice")],
            Some(id(1)),
            S,
        );
        buffer.index(at(3), Vec::new(), Some(id(2)), S);
        buffer.index(at(4), Vec::new(), Some(id(5)), S);
        let mut gathered = Vec::new();
        let mut hops = 0;
        assert_eq!(
            buffer.climb(at(3), &mut gathered, &mut hops, both, 2 * S),
            None
        );
        assert_eq!(hops, 2);
        assert_eq!(
            gathered,
            [
                KeyValue::new("enduser.id", "alice"),
                KeyValue::new("client.address", "203.0.113.9"),
            ],
            "the nearer user wins"
        );
        // Complete early: no climb past what is needed.
        let (mut gathered, mut hops) = (Vec::new(), 0);
        let user = |g: &[KeyValue]| find_attribute(g, "enduser.id").is_some();
        assert_eq!(
            buffer.climb(at(3), &mut gathered, &mut hops, user, 2 * S),
            None
        );
        assert_eq!(hops, 1);
        // An ancestor not seen yet: wait for it.
        let (mut gathered, mut hops) = (Vec::new(), 0);
        assert_eq!(
            buffer.climb(at(4), &mut gathered, &mut hops, both, 2 * S),
            Some(at(5))
        );
        assert_eq!(hops, 1);
        // A chain longer than the bound ends there.
        for n in 10..30u8 {
            buffer.index(at(n), Vec::new(), Some(id(n + 1)), S);
        }
        let (mut gathered, mut hops) = (Vec::new(), 0);
        assert_eq!(
            buffer.climb(at(10), &mut gathered, &mut hops, both, 2 * S),
            None
        );
        assert_eq!(hops, MAX_JOIN_HOPS);
        // Past the wait the links are gone too.
        let (mut gathered, mut hops) = (Vec::new(), 0);
        assert_eq!(
            buffer.climb(at(3), &mut gathered, &mut hops, both, 7 * S),
            Some(at(3))
        );
    }
}
