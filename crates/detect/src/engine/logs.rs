//! Log records seen through rules: a rule with `source: logs` evaluates its
//! TraceQL condition on a span-shaped view of each log record, so one
//! language serves both.
//!
//! The view of a record (see docs/DETECTION.md, "Rules on log records"):
//! - `span.<key>` (and `.<key>`): the record's attributes, plus
//!   `log.body` (the body as sent: a string for text logs),
//!   `log.severity_text`, `log.severity_number` and `log.event_name` when
//!   set;
//! - `resource.<key>`: the resource the record came with;
//! - `name`: the event name (empty for most records);
//! - `trace:id` and `span:id`: the ids the record carries (zero when none),
//!   so a detection links to the trace the record belongs to;
//! - the start time is the record's time (or its observed time).
//!
//! Keys (`group_by`) come from the record and its resource: a log rule
//! keys on what the log carries, and with `join:` on what its span carries.
//!
//! # Joining a record to its span
//!
//! A rule with `join: [span.client.address]` reads `client.address` from
//! the record, or, when the record lacks it, from the span the record was
//! emitted in (same trace id and span id) or the nearest of that span's
//! in-process ancestors that carries it (a record logged in a child span of
//! the handler), appended to the view for that rule only. A record waits
//! (in [`JoinBuffer`]) only when some rule joins a field it lacks, it
//! carries a span id, and its span is not in the index of recent spans;
//! other rules evaluate it at once. When its span
//! arrives the waiting rules evaluate it joined; when the wait ends, or the
//! buffer is full, or at a drain, alone (counted in [`LogJoinStats`]).
//! What waits, and the index, are in the engine's checkpoint
//! (`checkpoint.rs`).

use std::collections::VecDeque;
use std::sync::Arc;

use tracewarden_model::{
    AnyValue, KeyValue, LogEntry, RecordView, Span, SpanId, SpanKind, SpanRecord, TraceId,
    find_attribute,
};

use super::{Compiled, Detection, Engine, EngineConfig, SpanTime, duration_nanos, process_span};
use crate::log_join::{
    JoinBuffer, JoinProgress, LogJoinStats, MAX_JOIN_HOPS, Released, SavedJoin, SpanKey,
    merge_nearest,
};
use crate::rule::Source;

/// OTLP `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` and
/// `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`: both set, the parent is remote.
const REMOTE_PARENT: u32 = 0x100 | 0x200;

/// The join state of an engine whose log rules join span attributes.
pub(super) struct LogJoin {
    buffer: JoinBuffer,
    /// Attribute names some enabled log rule joins (deduplicated).
    fields: Vec<String>,
    /// The indexed span attributes of the record being evaluated (reused).
    span: Vec<KeyValue>,
    /// A record has needed a join (it lacked a joined field and named its
    /// span): from then on spans are indexed. A deployment that sends no
    /// such records pays nothing per span.
    wanted: bool,
    /// A record has climbed from its span to an ancestor: from then on
    /// spans lacking a joined attribute are indexed as links to their
    /// parent too. A deployment whose records name the span carrying the
    /// attributes pays nothing for links.
    climbs: bool,
    /// Until when spans lacking a joined attribute are indexed as links
    /// though no record has climbed yet: `LogJoinConfig::eager` after the
    /// first batch. `None` before the first batch, `Some(0)` once closed.
    /// Not checkpointed: every start gets its window.
    eager_until: Option<u64>,
    /// The spans of the last `wait` while no record has needed a join:
    /// (arrival, span), at most `max_spans`. Only the span is shared (the
    /// join reads nothing of its resource or scope), so keeping a span
    /// costs one reference count where indexing it would copy its
    /// attributes; the first record that needs a join indexes them, as
    /// links too ([`LogJoin::want`]), whenever it comes.
    recent: VecDeque<(u64, Arc<Span>)>,
    /// Records a restore could not hold again (smaller caps): evaluated
    /// at the next flush with what they gathered.
    overflow: Vec<Released>,
}

impl LogJoin {
    /// Sets up (or updates after a reload) the join for `rules`: created
    /// when a rule first joins; kept afterwards so held records still leave.
    pub(super) fn update(join: &mut Option<LogJoin>, rules: &[Compiled], config: &EngineConfig) {
        let mut fields: Vec<String> = Vec::new();
        for c in rules.iter().filter(|c| c.rule.source == Source::Logs) {
            for name in &c.rule.join {
                if !fields.contains(name) {
                    fields.push(name.clone());
                }
            }
        }
        match join {
            Some(join) => join.fields = fields,
            None if !fields.is_empty() => {
                *join = Some(LogJoin {
                    buffer: JoinBuffer::new(config.log_join.clone()),
                    fields,
                    span: Vec::new(),
                    wanted: false,
                    climbs: false,
                    eager_until: None,
                    recent: VecDeque::new(),
                    overflow: Vec::new(),
                });
            }
            None => {}
        }
    }

    /// Whether `now` is in the window after the first batch (which the
    /// first call starts).
    fn eager(&mut self, now: u64) -> bool {
        let window = duration_nanos(self.buffer.config().eager);
        let until = *self.eager_until.get_or_insert(now.saturating_add(window));
        if now < until {
            return true;
        }
        self.eager_until = Some(0);
        false
    }

    /// Keeps `spans`, arrived at `now`, in the recent spans.
    fn keep_recent(&mut self, spans: &[SpanRecord], now: u64) {
        let config = self.buffer.config();
        let (wait, cap) = (duration_nanos(config.wait), config.max_spans);
        for record in spans {
            self.recent.push_back((now, Arc::clone(&record.span)));
        }
        while self.recent.len() > cap
            || self
                .recent
                .front()
                .is_some_and(|(arrived, _)| arrived.saturating_add(wait) <= now)
        {
            self.recent.pop_front();
        }
    }

    /// A record needs a join: spans are indexed from now on, starting with
    /// those kept of the last `wait` (as links too).
    fn want(&mut self) {
        if self.wanted {
            return;
        }
        self.wanted = true;
        for (arrived, span) in std::mem::take(&mut self.recent) {
            let (attributes, parent) = joined_of(&self.fields, &span);
            if !attributes.is_empty() || parent.is_some() {
                self.buffer
                    .index((span.trace_id, span.span_id), attributes, parent, arrived);
            }
        }
    }

    pub(super) fn stats(&self) -> LogJoinStats {
        self.buffer.stats()
    }

    pub(super) fn next_deadline(&self) -> Option<u64> {
        if !self.overflow.is_empty() {
            return Some(0);
        }
        self.buffer.next_deadline()
    }

    /// What is held and indexed, for a checkpoint.
    pub(super) fn saved(&self) -> SavedJoin {
        self.buffer.saved()
    }

    /// How far the join has come, for a checkpoint.
    pub(super) fn progress(&self) -> JoinProgress {
        JoinProgress {
            wanted: self.wanted,
            climbs: self.climbs,
        }
    }

    /// Holds and indexes again what a checkpoint saved, and goes on
    /// indexing spans as far as the join had come. (A checkpoint of an
    /// earlier build has no progress: what it holds says as much.)
    pub(super) fn restore(&mut self, saved: SavedJoin, progress: JoinProgress) {
        self.wanted |= progress.wanted || !saved.is_empty();
        self.climbs |= progress.climbs || saved.has_climbs();
        self.buffer.restore(saved, &mut self.overflow);
    }
}

/// Where a record is in its join.
#[derive(Clone, Copy)]
enum Stage<'a> {
    /// Just arrived: rules that join a missing field use the indexed span
    /// (`span`), or wait when `can_wait`, or else read the record alone.
    Arrival {
        span: Option<&'a [KeyValue]>,
        can_wait: bool,
    },
    /// Leaving the buffer: only the rules that waited run, with the
    /// attributes gathered from the span and its ancestors (empty when the
    /// span did not come: alone).
    Release { span: &'a [KeyValue] },
}

/// The (trace, span) a record was emitted in; `None` when it carries no
/// (or a zero) span id: nothing to wait for.
fn span_key(entry: &LogEntry) -> Option<SpanKey> {
    let trace = entry.record.trace_id?;
    let span = entry.record.span_id?;
    (trace.as_bytes() != &[0; 16] && span.as_bytes() != &[0; 8]).then_some((trace, span))
}

/// Whether the record lacks one of `names` among its own attributes.
fn lacks_any(entry: &LogEntry, names: &[String]) -> bool {
    names
        .iter()
        .any(|name| find_attribute(&entry.record.attributes, name).is_none())
}

/// Whether every one of `names` is in the record or in `gathered`: the
/// climb to ancestors can stop.
fn joined_all(entry: &LogEntry, names: &[String], gathered: &[KeyValue]) -> bool {
    names.iter().all(|name| {
        find_attribute(&entry.record.attributes, name).is_some()
            || find_attribute(gathered, name).is_some()
    })
}

/// What a record emitted in `span` would take from it: the `fields` it
/// carries, and the parent to climb to for those it lacks (see
/// [`local_parent`]). Allocates only for spans carrying a joined field.
fn joined_of(fields: &[String], span: &Span) -> (Vec<KeyValue>, Option<SpanId>) {
    let attributes: Vec<KeyValue> = fields
        .iter()
        .filter_map(|name| {
            span.attribute(name)
                .map(|value| KeyValue::new(name.as_str(), value.clone()))
        })
        .collect();
    let parent = local_parent(span).filter(|_| attributes.len() < fields.len());
    (attributes, parent)
}

/// The parent a record emitted in `span` may climb to: one in the same
/// process. A server or consumer span is where the service was entered,
/// and a span marked as continuing a remote context has its parent in
/// another process: their parents' attributes describe another hop.
fn local_parent(span: &Span) -> Option<SpanId> {
    if matches!(span.kind, SpanKind::Server | SpanKind::Consumer)
        || span.flags & REMOTE_PARENT == REMOTE_PARENT
    {
        return None;
    }
    span.parent_span_id.filter(|parent| !parent.is_zero())
}

impl Engine {
    /// Indexes spans for `join` rules from the first span on, not only
    /// once a record has needed a join: for an offline scan, where a file
    /// of spans may come before the file of their records. Nothing to do
    /// when no log rule joins.
    pub fn index_spans_for_join(&mut self) {
        if let Some(join) = &mut self.join {
            join.want();
        }
    }

    /// Runs the rules with `source: logs` over log records, each through
    /// its span-shaped view, with the same windows, late and future
    /// handling as spans (a record's time is its start time). A record a
    /// `join` rule must see with its span's attributes may wait for its
    /// span: its detections then come from a later `process`, `flush` or
    /// `drain` (see [`crate::log_join`]).
    pub fn process_logs(&mut self, entries: &[LogEntry], now_unix_nano: u64) -> Vec<Detection> {
        let mut detections = Vec::new();
        if !self.rules.iter().any(|c| c.rule.source == Source::Logs) {
            return detections;
        }
        let mut evicted = Vec::new();
        for entry in entries {
            self.logs += 1;
            view_into(entry, &mut self.log_view);
            let time = self.span_time(self.log_view.span.start_time_unix_nano, now_unix_nano);
            // The span's (and its ancestors') attributes, copied out of the
            // index when a joined field is missing (records that carry them
            // never look); or the span to wait for.
            let key = span_key(entry);
            let mut indexed = None;
            let mut wait_on = None;
            if let Some(join) = &mut self.join
                && let Some(key) = key
                && lacks_any(entry, &join.fields)
            {
                join.want();
                let mut gathered = std::mem::take(&mut join.span);
                gathered.clear();
                let mut hops = 0;
                let fields = &join.fields;
                match join.buffer.climb(
                    key,
                    &mut gathered,
                    &mut hops,
                    |g| joined_all(entry, fields, g),
                    now_unix_nano,
                ) {
                    None => {
                        join.buffer.count_joined(hops);
                        indexed = Some(gathered);
                    }
                    // What the record's own span lacked, gathered from
                    // the ancestors seen so far, waits with it.
                    Some(span) => wait_on = Some((span, hops, gathered)),
                }
                // Climbing through indexed links shows that records name
                // child spans as surely as a climb while held does.
                join.climbs |= hops > 0;
            }
            let stage = Stage::Arrival {
                span: indexed.as_deref(),
                can_wait: key.is_some() && self.join.is_some(),
            };
            let wait = evaluate(self, entry, time, stage, &mut detections);
            if let (Some(join), Some(span)) = (&mut self.join, indexed) {
                join.span = span;
            }
            if let (true, Some(key), Some(join)) = (wait, key, &mut self.join) {
                let (span, hops, gathered) = wait_on.unwrap_or((key, 0, Vec::new()));
                join.buffer.hold(
                    span,
                    entry.clone(),
                    gathered,
                    hops,
                    now_unix_nano,
                    &mut evicted,
                );
            }
        }
        for released in std::mem::take(&mut evicted) {
            self.release(&released, now_unix_nano, &mut detections);
        }
        self.detections += detections.len() as u64;
        detections
    }

    /// After the span rules ran on `spans`: each span's held records are
    /// evaluated with its attributes (or climb on to its parent for those
    /// it lacks), and spans carrying a joined attribute, or lacking one and
    /// having a parent in the same process, are indexed for records still
    /// to come. Nothing to do when no log rule joins.
    pub(super) fn join_spans(
        &mut self,
        spans: &[SpanRecord],
        now_unix_nano: u64,
        detections: &mut Vec<Detection>,
    ) {
        let Some(join) = &mut self.join else {
            return;
        };
        let eager = join.eager(now_unix_nano);
        if join.buffer.pending() == 0 && (join.fields.is_empty() || !join.wanted) {
            if !join.fields.is_empty() {
                join.keep_recent(spans, now_unix_nano);
            }
            return;
        }
        let mut held = Vec::new();
        let mut ready = Vec::new();
        let mut here = Vec::new();
        let mut evicted = Vec::new();
        for record in spans {
            let Some(join) = &mut self.join else {
                return;
            };
            let span = &record.span;
            let key = (span.trace_id, span.span_id);
            let (attributes, parent) = joined_of(&join.fields, span);
            if join.buffer.pending() > 0 {
                join.buffer.take_held(&key, &mut held);
            }
            if held.is_empty() {
                let link = parent.filter(|_| join.climbs || eager);
                if !attributes.is_empty() || link.is_some() {
                    join.buffer.index(key, attributes, link, now_unix_nano);
                }
                continue;
            }
            if !attributes.is_empty() || parent.is_some() {
                join.buffer
                    .index(key, attributes.clone(), parent, now_unix_nano);
            }
            for Released {
                entry,
                mut gathered,
                mut hops,
            } in held.drain(..)
            {
                let fields = &join.fields;
                // The common case: nothing gathered below, and this span
                // has what the record lacks (or is where the climb ends):
                // the record reads the span's attributes, with no copy.
                if gathered.is_empty()
                    && (parent.is_none() || joined_all(&entry, fields, &attributes))
                {
                    join.buffer.count_joined(hops);
                    here.push(entry);
                    continue;
                }
                merge_nearest(&mut gathered, &attributes);
                let wait_on = match parent {
                    Some(parent)
                        if hops < MAX_JOIN_HOPS && !joined_all(&entry, fields, &gathered) =>
                    {
                        hops += 1;
                        join.climbs = true;
                        join.buffer.climb(
                            (key.0, parent),
                            &mut gathered,
                            &mut hops,
                            |g| joined_all(&entry, fields, g),
                            now_unix_nano,
                        )
                    }
                    _ => None,
                };
                match wait_on {
                    // An ancestor not seen yet (a parent ends after its
                    // child): the record waits for it, possibly later in
                    // this batch.
                    Some(ancestor) => join.buffer.hold(
                        ancestor,
                        entry,
                        gathered,
                        hops,
                        now_unix_nano,
                        &mut evicted,
                    ),
                    None => {
                        join.buffer.count_joined(hops);
                        ready.push(Released {
                            entry,
                            gathered,
                            hops,
                        });
                    }
                }
            }
            for entry in here.drain(..) {
                self.evaluate_held(&entry, &attributes, now_unix_nano, detections);
            }
            for released in ready.drain(..) {
                self.release(&released, now_unix_nano, detections);
            }
        }
        for released in evicted {
            self.release(&released, now_unix_nano, detections);
        }
    }

    /// Evaluates held records whose wait ended by `now` (each alone).
    pub(super) fn expire_held(&mut self, now_unix_nano: u64, detections: &mut Vec<Detection>) {
        let mut out = Vec::new();
        if let Some(join) = &mut self.join {
            out.append(&mut join.overflow);
            join.buffer.expire(now_unix_nano, &mut out);
        }
        let before = detections.len();
        for released in out {
            self.release(&released, now_unix_nano, detections);
        }
        self.detections += (detections.len() - before) as u64;
    }

    /// Evaluates every held record, alone (shutdown, end of a scan).
    pub(super) fn drain_held(&mut self, detections: &mut Vec<Detection>) {
        let mut out = Vec::new();
        if let Some(join) = &mut self.join {
            out.append(&mut join.overflow);
            join.buffer.drain(&mut out);
        }
        let before = detections.len();
        for released in out {
            // The record's own time: nothing is clamped at a drain.
            let now = released
                .entry
                .record
                .effective_time_unix_nano()
                .max(self.watermark);
            self.release(&released, now, detections);
        }
        self.detections += (detections.len() - before) as u64;
    }

    /// Runs the rules that waited for a record, with the attributes its
    /// span and the ancestors it climbed gave (none when its span did not
    /// come: a wait that ended, a full buffer, a drain).
    fn release(
        &mut self,
        released: &Released,
        now_unix_nano: u64,
        detections: &mut Vec<Detection>,
    ) {
        self.evaluate_held(
            &released.entry,
            &released.gathered,
            now_unix_nano,
            detections,
        );
    }

    /// Runs the rules that waited for `entry`, with `span`'s attributes.
    fn evaluate_held(
        &mut self,
        entry: &LogEntry,
        span: &[KeyValue],
        now_unix_nano: u64,
        detections: &mut Vec<Detection>,
    ) {
        view_into(entry, &mut self.log_view);
        let time = self.span_time(self.log_view.span.start_time_unix_nano, now_unix_nano);
        evaluate(self, entry, time, Stage::Release { span }, detections);
    }
}

/// Runs the log rules `stage` calls for on `engine.log_view` (the view of
/// `entry`); true when a rule must wait for the record's span.
fn evaluate(
    engine: &mut Engine,
    entry: &LogEntry,
    time: SpanTime,
    stage: Stage<'_>,
    detections: &mut Vec<Detection>,
) -> bool {
    let Engine {
        rules,
        log_view,
        config,
        scratch,
        ..
    } = engine;
    let base = log_view.span.attributes.len();
    let mut wait = false;
    for compiled in rules.iter_mut().filter(|c| c.rule.source == Source::Logs) {
        let lacking = lacks_any(entry, &compiled.rule.join);
        let span = match stage {
            Stage::Arrival { .. } if !lacking => None,
            Stage::Arrival {
                span: Some(span), ..
            } => Some(span),
            Stage::Arrival { can_wait: true, .. } => {
                wait = true;
                continue;
            }
            Stage::Arrival { .. } => None,
            Stage::Release { .. } if !lacking => continue,
            Stage::Release { span } => Some(span),
        };
        if let Some(span) = span {
            join_into(&compiled.rule.join, entry, span, log_view);
        }
        // Not remembered: the view's attributes change from rule to rule.
        let mut view = RecordView::new(log_view);
        process_span(compiled, &mut view, time, config, scratch, detections);
        log_view.span_mut().attributes.truncate(base);
    }
    wait
}

/// Appends to the view the joined attributes the record lacks.
fn join_into(names: &[String], entry: &LogEntry, span: &[KeyValue], view: &mut SpanRecord) {
    for name in names {
        if find_attribute(&entry.record.attributes, name).is_none()
            && let Some(value) = find_attribute(span, name)
        {
            view.span_mut()
                .attributes
                .push(KeyValue::new(name.as_str(), value.clone()));
        }
    }
}

/// Writes the view of `entry` into `view`, reusing its buffers: the
/// attribute vector keeps its capacity across records.
pub(crate) fn view_into(entry: &LogEntry, view: &mut SpanRecord) {
    let record = &entry.record;
    view.resource = std::sync::Arc::clone(&entry.resource);
    view.scope = std::sync::Arc::clone(&entry.scope);
    let span = view.span_mut();
    span.trace_id = record.trace_id.unwrap_or(TraceId::from_bytes([0; 16]));
    span.span_id = record.span_id.unwrap_or(SpanId::from_bytes([0; 8]));
    span.parent_span_id = None;
    span.name = record.event_name.clone();
    let time = record.effective_time_unix_nano();
    span.start_time_unix_nano = time;
    span.end_time_unix_nano = time;
    span.flags = record.flags;
    span.attributes.clear();
    span.attributes.extend(record.attributes.iter().cloned());
    if !matches!(record.body, AnyValue::Empty) {
        span.attributes
            .push(KeyValue::new("log.body", record.body.clone()));
    }
    if !record.severity_text.is_empty() {
        span.attributes.push(KeyValue::new(
            "log.severity_text",
            AnyValue::Str(record.severity_text.clone()),
        ));
    }
    if record.severity_number != 0 {
        span.attributes.push(KeyValue::new(
            "log.severity_number",
            AnyValue::Int(i64::from(record.severity_number)),
        ));
    }
    if !record.event_name.is_empty() {
        span.attributes.push(KeyValue::new(
            "log.event_name",
            AnyValue::Str(record.event_name.clone()),
        ));
    }
}

/// An empty view to reuse.
pub(crate) fn empty_view() -> SpanRecord {
    SpanRecord {
        resource: std::sync::Arc::default(),
        scope: std::sync::Arc::default(),
        span: tracewarden_model::Span::new(
            TraceId::from_bytes([0; 16]),
            SpanId::from_bytes([0; 8]),
            "",
        )
        .into(),
    }
}
