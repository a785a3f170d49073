//! Whole-trace evaluation: the engine's trace-assembly buffer
//! ([`crate::assembly`]) and the rules that run on assembled traces
//! (whole-trace `match`, `topology`, the per-trace part of `data_flow`).
//!
//! # Driving it
//!
//! ```text
//! engine.process(&spans, now)        // span rules; buffers spans when a rule needs traces
//! engine.process_owned(spans, now)   // the same, moving the spans into the buffer
//! engine.process_record(spans, now, lsn) // the same, noting each span's WAL record
//! engine.flush(now)                  // on a timer: evaluates traces complete at `now`
//! engine.next_flush_due()            // when the next trace may complete (for that timer)
//! engine.drain()                     // shutdown, end of an offline scan: everything
//! engine.process_trace(&trace)       // one trace known to be complete, bypassing the buffer
//! ```
//!
//! `process` also returns the detections of traces a buffer limit pushed
//! out. Nothing is buffered (and no span cloned) when no enabled rule needs
//! whole traces. A trace handed over partial ([`crate::assembly::Partial`])
//! is evaluated as it is; its detections say so in their evidence, and
//! checks that rely on a span's absence (spoofed context without span
//! flags) skip it.

use tracewarden_model::SpanRecord;
use tracewarden_traceql::TraceView;

use super::evidence::trace_field_evidence;
use super::{Detection, Engine, RuleStats, State, data_flow};
use crate::assembly::{AssembledTrace, Origin, Partial};
use crate::rule::{Rule, RuleKind};

/// Trace delays kept between two `take_trace_delays` calls.
const MAX_TRACE_DELAYS: usize = 65_536;

impl Engine {
    /// Whether some enabled rule runs on assembled traces (then `process`
    /// buffers spans and `flush` must be called).
    pub fn needs_traces(&self) -> bool {
        self.buffer.is_some()
    }

    /// Like [`Engine::process`], taking the spans: when a rule needs whole
    /// traces they move into the buffer instead of being cloned.
    pub fn process_owned(&mut self, spans: Vec<SpanRecord>, now_unix_nano: u64) -> Vec<Detection> {
        self.process_record(spans, now_unix_nano, 0)
    }

    /// [`Engine::process_owned`] of the spans of WAL record `lsn`, in the
    /// record's order: the buffer notes each span's origin, and a
    /// checkpoint names the spans there instead of copying them (see
    /// [`Engine::refill`] for the way back). LSN 0: no record.
    pub fn process_record(
        &mut self,
        spans: Vec<SpanRecord>,
        now_unix_nano: u64,
        lsn: u64,
    ) -> Vec<Detection> {
        let mut detections = self.run_span_rules(&spans, now_unix_nano);
        if let Some(buffer) = &mut self.buffer {
            for (index, record) in spans.into_iter().enumerate() {
                let origin = Origin::new(lsn, index);
                buffer.push_from(record, origin, now_unix_nano, &mut self.assembled);
            }
        }
        self.evaluate_assembled(&mut detections);
        detections
    }

    /// The WAL records (LSNs, ascending) holding buffered spans the
    /// restored checkpoint named rather than copied. Replay each into
    /// [`Engine::refill`], in WAL order, then call [`Engine::refilled`]. A
    /// trace completes only once its named spans are back (or the replay is
    /// over); no checkpoint can be taken before the replay is over.
    pub fn wanted_lsns(&self) -> Vec<u64> {
        self.buffer
            .as_ref()
            .map(|b| b.wanted_lsns())
            .unwrap_or_default()
    }

    /// Whether the buffer awaits spans the restored checkpoint named.
    pub fn is_refilling(&self) -> bool {
        self.buffer.as_ref().is_some_and(|b| b.is_refilling())
    }

    /// Puts back the buffered spans of WAL record `lsn` (its spans in the
    /// record's order, enriched as they were when first processed). Span
    /// rules do not see them again.
    pub fn refill(&mut self, lsn: u64, spans: &[SpanRecord]) {
        if let Some(buffer) = &mut self.buffer {
            buffer.refill(lsn, spans);
        }
    }

    /// The replay is over: named spans that did not come back are counted
    /// (`missing_restored_spans`), and traces complete again.
    pub fn refilled(&mut self) {
        if let Some(buffer) = &mut self.buffer {
            buffer.refilled();
        }
    }

    /// Evaluates the traces complete at `now` (no new span for the idle
    /// time, or root arrived and idle time passed, or buffered for the
    /// maximum wait). Call it on a timer, e.g. every second.
    pub fn flush(&mut self, now_unix_nano: u64) -> Vec<Detection> {
        let mut detections = Vec::new();
        if let Some(buffer) = &mut self.buffer {
            buffer.complete(now_unix_nano, &mut self.assembled);
        }
        // Traces that went quiet (or waited their longest): how long after
        // that their rules run.
        let room = MAX_TRACE_DELAYS.saturating_sub(self.trace_delays.len());
        self.trace_delays.extend(
            self.assembled
                .iter()
                .take(room)
                .map(|t| now_unix_nano.saturating_sub(t.due)),
        );
        self.evaluate_assembled(&mut detections);
        // Log records whose wait for their span ended (logs.rs).
        self.expire_held(now_unix_nano, &mut detections);
        detections
    }

    /// Takes the delays noted by [`Engine::flush`] since the last call: per
    /// trace it handed over, nanoseconds from the trace becoming complete
    /// (the idle time after its last span, or after its root; or its
    /// longest wait) to its evaluation. A whole-trace rule's latency is the
    /// idle time plus this.
    pub fn take_trace_delays(&mut self) -> std::vec::Drain<'_, u64> {
        self.trace_delays.drain(..)
    }

    /// Evaluates every buffered trace, complete or not (shutdown, the end
    /// of an offline scan), in the order they started arriving.
    pub fn drain(&mut self) -> Vec<Detection> {
        let mut detections = Vec::new();
        if let Some(buffer) = &mut self.buffer {
            buffer.drain(&mut self.assembled);
        }
        self.evaluate_assembled(&mut detections);
        self.drain_held(&mut detections);
        detections
    }

    /// The earliest arrival time (unix nanoseconds) at which `flush` may
    /// have a trace (or a log record that waited for its span) to
    /// evaluate; `None` when nothing is buffered.
    pub fn next_flush_due(&self) -> Option<u64> {
        let trace = self.buffer.as_ref().and_then(|b| b.next_deadline());
        let log = self.join.as_ref().and_then(|j| j.next_deadline());
        match (trace, log) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds spans to the buffer (cloned) after the span rules ran.
    pub(super) fn buffer_spans(
        &mut self,
        spans: &[SpanRecord],
        now: u64,
        detections: &mut Vec<Detection>,
    ) {
        if let Some(buffer) = &mut self.buffer {
            for record in spans {
                buffer.push(record.clone(), now, &mut self.assembled);
            }
        }
        self.evaluate_assembled(detections);
    }

    fn evaluate_assembled(&mut self, detections: &mut Vec<Detection>) {
        let traces = std::mem::take(&mut self.assembled);
        for AssembledTrace { spans, partial, .. } in &traces {
            detections.extend(self.evaluate_trace(spans, *partial));
        }
        // Keep the allocation for the next hand-over.
        self.assembled = traces;
        self.assembled.clear();
    }

    /// Runs the whole-trace rules over one trace.
    pub(super) fn evaluate_trace(
        &mut self,
        spans: &[SpanRecord],
        partial: Option<Partial>,
    ) -> Vec<Detection> {
        let mut detections = Vec::new();
        if spans.is_empty() {
            return detections;
        }
        let view = TraceView::new(spans);
        let trace_id = spans.first().map(|s| s.span.trace_id);
        // A span without a start time (0) is seen at the newest start time
        // the engine has seen, as a span rule sees it at `now`.
        let undated = self.watermark;
        let started = |record: &SpanRecord| match record.span.start_time_unix_nano {
            0 => undated,
            t => t,
        };
        let note = |evidence: String| match partial {
            None => evidence,
            Some(reason) => format!("{evidence} [partial trace: {reason}]"),
        };
        let mut findings = Vec::new();
        let mut flows = Vec::new();
        for compiled in &mut self.rules {
            if compiled.rule.kind.needs_traces() {
                compiled.stats.evaluated += 1;
            }
            let rule = &compiled.rule;
            let make = |key: Vec<(String, String)>,
                        count: u64,
                        first: u64,
                        last: u64,
                        evidence: Option<String>| Detection {
                rule_id: compiled.rule_id.clone(),
                title: compiled.title.clone(),
                severity: rule.severity,
                kind: rule.kind.name(),
                key,
                count,
                first_seen_unix_nano: first,
                last_seen_unix_nano: last,
                trace_ids: trace_id.into_iter().collect(),
                evidence,
            };
            let before = detections.len();
            match (&mut compiled.state, &rule.kind) {
                (State::TraceMatch, RuleKind::Match(m)) => {
                    if !spans.iter().any(|s| m.condition.matches_span(s)) {
                        continue;
                    }
                    let sets = m.condition.query().evaluate(&view);
                    if sets.is_empty() {
                        continue;
                    }
                    if trace_excepted(rule, spans, started, &mut compiled.stats) {
                        continue;
                    }
                    let mut matched: Vec<usize> =
                        sets.iter().flat_map(|s| s.spans.iter().copied()).collect();
                    matched.sort_unstable();
                    matched.dedup();
                    let matched_spans = || matched.iter().filter_map(|&i| spans.get(i));
                    let times = matched_spans().map(started);
                    let first = times.clone().min().unwrap_or(view.start_unix_nano());
                    let last = times.max().unwrap_or(view.start_unix_nano());
                    compiled.stats.matched_spans += matched.len() as u64;
                    let fields = trace_field_evidence(None, &rule.evidence, matched_spans());
                    let evidence = match (fields, partial) {
                        (Some(fields), _) => Some(note(fields)),
                        (None, Some(reason)) => Some(format!("partial trace: {reason}")),
                        (None, None) => None,
                    };
                    detections.push(make(
                        Vec::new(),
                        matched.len() as u64,
                        first,
                        last,
                        evidence,
                    ));
                }
                (State::Topology(state), RuleKind::Topology(t)) => {
                    findings.clear();
                    let except = |record: &SpanRecord| excepts(rule, record, started(record));
                    state.evaluate(t, &view, partial, undated, &except, &mut findings);
                    for f in findings.drain(..) {
                        if f.excepted {
                            compiled.stats.excepted += f.count;
                            continue;
                        }
                        compiled.stats.matched_spans += f.count;
                        detections.push(make(
                            f.key,
                            f.count,
                            f.first,
                            f.last,
                            Some(note(f.evidence)),
                        ));
                    }
                }
                (State::DataFlow, RuleKind::DataFlow(d)) => {
                    flows.clear();
                    let except = |record: &SpanRecord| excepts(rule, record, started(record));
                    data_flow::check_trace(d, &view, &except, &mut flows);
                    for f in flows.drain(..) {
                        if f.excepted {
                            compiled.stats.excepted += 1;
                            continue;
                        }
                        compiled.stats.matched_spans += 1;
                        let ts = if f.ts == 0 { undated } else { f.ts };
                        detections.push(make(f.key, 1, ts, ts, Some(note(f.evidence))));
                    }
                }
                _ => {}
            }
            compiled.stats.detections += (detections.len() - before) as u64;
        }
        self.detections += detections.len() as u64;
        detections
    }
}

/// Whether one of a whole-trace match's exceptions holds in the trace (a
/// span of it satisfies the exception, which had not expired when that
/// span started): the trace is left out of the rule, counted. Asked only of
/// traces the rule matched.
fn trace_excepted(
    rule: &Rule,
    spans: &[SpanRecord],
    started: impl Fn(&SpanRecord) -> u64,
    stats: &mut RuleStats,
) -> bool {
    if rule.exceptions.is_empty() {
        return false;
    }
    let hit = spans.iter().any(|span| excepts(rule, span, started(span)));
    stats.excepted += u64::from(hit);
    hit
}

/// Whether one of the rule's exceptions holds for `record`, started at
/// `ts` (event time, as `expires` is judged).
fn excepts(rule: &Rule, record: &SpanRecord, ts: u64) -> bool {
    rule.exceptions
        .iter()
        .any(|exception| exception.applies_at(ts) && exception.condition.matches_span(record))
}
