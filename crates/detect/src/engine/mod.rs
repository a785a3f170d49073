//! The rule engine: runs match, threshold, sequence, new_terms and baseline
//! rules (and the span part of data-flow rules) over spans as they arrive
//! and returns detections; whole-trace rules (structural match, topology,
//! data flow) run on traces it assembles (`traces.rs`,
//! [`crate::assembly`]). The history kinds document their own time and
//! memory rules (`new_terms.rs`: terms never expire, nothing is late;
//! `baseline.rs`: buckets, one bucket of grace); what follows is for the
//! windowed kinds.
//!
//! # Time
//!
//! Windows slide on event time: a span's start time (`start_time_unix_nano`).
//! A span belongs to the window `(newest - window, newest]`, where `newest`
//! is the newest start time seen for its key. Late data:
//!
//! - spans arrive out of order within a window: they are placed by their
//!   start time and count normally;
//! - a span older than the window, relative to the newest start time the
//!   engine has seen for any span (the watermark) or for its key, can no
//!   longer change a live window: it is dropped and counted in
//!   [`RuleStats::late_spans`];
//! - a span that starts more than [`EngineConfig::max_future_skew`] after
//!   `now` (a wrong clock) is taken at `now` and counted in
//!   [`RuleStats::future_spans`]; spans ahead of `now` within the skew
//!   count at their own start time. The watermark never moves past `now`,
//!   so one bad clock cannot make every other span late.
//!
//! # Memory
//!
//! Each threshold or sequence rule keeps state per key (the `group_by`
//! values), at most [`EngineConfig::max_keys_per_rule`] keys. Creating a key
//! in a full map evicts the least recently seen sixteenth of the keys,
//! counted in [`RuleStats::evicted_keys`]; keys idle for a window are
//! dropped ([`RuleStats::expired_keys`]). A threshold key keeps at most
//! `count` entries (see `threshold.rs`), a sequence key at most `count + 64`
//! per step.
//!
//! # Hot path
//!
//! For each span and rule the engine evaluates the rule's TraceQL condition
//! ([`tracewarden_traceql::Query::matches_span`], allocation-free). Keys
//! are built only for matching spans, into reused buffers; a key allocates
//! only when it is new. A rule's `payload` detectors
//! ([`crate::rule::PayloadMatch`]) run only on spans that satisfy its
//! condition, and allocate nothing when none of the named attributes is
//! present; the evidence text is built only for a detection.
//!
//! ```
//! use std::sync::Arc;
//! use std::path::Path;
//! use tracewarden_detect::engine::Engine;
//! use tracewarden_detect::rule::parse_rule;
//! use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanRecord, TraceId};
//!
//! let rule = parse_rule(r#"
//! id: login-401-burst
//! title: Many failed logins from one address
//! severity: high
//! kind: threshold
//! condition: '{ span.http.route = "/login" && span.http.response.status_code = 401 }'
//! group_by: [span.client.address]
//! window: 1m
//! count: 3
//! "#, Path::new("inline.yaml")).unwrap();
//! let mut engine = Engine::new(vec![rule]);
//! let base = 1_767_225_600_000_000_000u64;
//! let spans: Vec<SpanRecord> = (0..5u8).map(|i| {
//!     let mut span = Span::new(TraceId::from_bytes([i + 1; 16]), SpanId::from_bytes([1; 8]), "POST /login");
//!     span.start_time_unix_nano = base + u64::from(i) * 1_000_000_000;
//!     span.attributes.push(KeyValue::new("http.route", "/login"));
//!     span.attributes.push(KeyValue::new("http.response.status_code", AnyValue::Int(401)));
//!     span.attributes.push(KeyValue::new("client.address", "203.0.113.9"));
//!     SpanRecord::new(Arc::default(), Arc::default(), span)
//! }).collect();
//! let detections = engine.process(&spans, base + 5_000_000_000);
//! assert_eq!(detections.len(), 1, "fires once, at the third failure");
//! assert_eq!(detections[0].key, vec![("span.client.address".to_string(), "203.0.113.9".to_string())]);
//! assert_eq!(detections[0].count, 3);
//! ```

mod baseline;
mod checkpoint;
mod data_flow;
mod evidence;
mod hashing;
mod keys;
mod logs;
mod new_terms;
mod sequence;
mod sketch;
mod threshold;
mod topology;
mod traces;

use std::sync::Arc;
use std::time::Duration;

use tracewarden_model::{AttributeMemo, RecordView, SpanRecord, TraceId};

use crate::assembly::{AssembledTrace, AssemblyConfig, AssemblyStats, TraceBuffer};
use crate::log_join::{LogJoinConfig, LogJoinStats};
use crate::rule::{FieldRef, PayloadHit, PayloadMatch, Rule, RuleKind, Severity, Source};

use baseline::BaselineState;
pub use checkpoint::{Checkpoint, CheckpointError, RestoreSummary};
pub use evidence::field_evidence;
use evidence::{EVIDENCE_VALUES, distinct_evidence};
use keys::{KeyMap, Slot, build_key, build_key_lenient, decode_key};
use new_terms::NewTermsState;
use sequence::SequenceKey;
use threshold::{Crossing, ThresholdKey};
pub use topology::TopologyPolicy;
use topology::TopologyState;

/// A matching span: start time (unix nanoseconds) and trace id.
pub(crate) type Hit = (u64, TraceId);

/// Limits of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Keys of state per threshold or sequence rule.
    pub max_keys_per_rule: usize,
    /// Trace ids sampled into a detection.
    pub max_trace_ids: usize,
    /// How far in the future (after `now`) a span may start before its
    /// start time is clamped.
    pub max_future_skew: Duration,
    /// The trace-assembly buffer, used when a rule needs whole traces.
    pub assembly: AssemblyConfig,
    /// Log records waiting for their span, used when a log rule has `join`.
    pub log_join: LogJoinConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_keys_per_rule: 100_000,
            max_trace_ids: 10,
            max_future_skew: Duration::from_secs(300),
            assembly: AssemblyConfig::default(),
            log_join: LogJoinConfig::default(),
        }
    }
}

/// One alert-worthy finding, with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub rule_id: Arc<str>,
    pub title: Arc<str>,
    pub severity: Severity,
    /// `match`, `threshold`, `sequence`, `new_terms`, `baseline`, `topology`
    /// or `data_flow`.
    pub kind: &'static str,
    /// The actor: each `group_by` field (canonical TraceQL) and its value.
    /// Empty for match rules and rules without `group_by`.
    pub key: Vec<(String, String)>,
    /// Matching spans in the window when a threshold rule fired (the
    /// threshold), distinct values for `distinct` rules, spans in the chain
    /// for sequence rules, matched spans for match rules, 1 (the span with
    /// the new term) for new_terms rules, spans in the bucket when a
    /// baseline rule fired.
    pub count: u64,
    /// Start time of the earliest span of the evidence (unix nanoseconds).
    pub first_seen_unix_nano: u64,
    /// Start time of the latest span of the evidence.
    pub last_seen_unix_nano: u64,
    /// Up to [`EngineConfig::max_trace_ids`] distinct trace ids of the
    /// evidence, most recent first.
    pub trace_ids: Vec<TraceId>,
    /// For rules with a `payload` section: what was found in the span that
    /// made the rule fire, e.g. `sql_injection in url.query: union select`;
    /// for new_terms rules the new term (`new span.user_agent.original for
    /// span.enduser.id=alice: "curl/8.1"`); for baseline rules the bucket
    /// against its baseline (count, mean, sd, z-score, distinct values).
    /// For topology and data-flow rules: the edge, service or data and
    /// destination (personal data masked); `[partial trace: ...]` at the
    /// end when the trace was evaluated partial.
    pub evidence: Option<String>,
}

/// Counters of one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleStats {
    pub rule_id: String,
    /// Spans (or log records) the rule was evaluated on, plus assembled
    /// traces for whole-trace rules.
    pub evaluated: u64,
    /// Spans that satisfied the condition (any step for sequences).
    pub matched_spans: u64,
    pub detections: u64,
    /// Matching spans that lacked a `group_by` or `distinct` field.
    pub missing_key: u64,
    /// Matching spans dropped as older than the window.
    pub late_spans: u64,
    /// Matching spans whose start time was clamped (too far in the future).
    pub future_spans: u64,
    /// Keys evicted because the rule reached `max_keys_per_rule`.
    pub evicted_keys: u64,
    /// Keys dropped after a window without spans.
    pub expired_keys: u64,
    /// Matching spans of `suppress` rules not reported (their key fired
    /// within the period).
    pub suppressed: u64,
    /// Spans that satisfied the condition but also one of the rule's
    /// exceptions, so were left out (see [`crate::rule::Exception`]). Not
    /// in checkpoints (it counts from the start of the process): keeping it
    /// there would change their encoding, and restore older ones wrongly.
    #[serde(skip)]
    pub excepted: u64,
    /// Terms a new_terms rule forgot because a key reached
    /// `max_terms_per_key` (the least recently seen one each time).
    pub evicted_terms: u64,
    /// Keys held now.
    pub keys: usize,
}

/// Counters of the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub spans: u64,
    /// Log records seen by `source: logs` rules.
    pub logs: u64,
    pub detections: u64,
    /// Enabled rules that need whole traces (whole-trace match, topology,
    /// data flow): they run on assembled traces.
    pub trace_rules: usize,
    pub rules: Vec<RuleStats>,
    /// The trace-assembly buffer (all zero when no rule needs traces).
    pub assembly: AssemblyStats,
    /// Log records joined to their span (all zero when no log rule joins).
    pub log_join: LogJoinStats,
}

impl EngineStats {
    pub fn evicted_keys(&self) -> u64 {
        self.rules.iter().map(|r| r.evicted_keys).sum()
    }

    pub fn late_spans(&self) -> u64 {
        self.rules.iter().map(|r| r.late_spans).sum()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
enum State {
    Match,
    /// A match rule with `suppress`: per key, the last firing (`newest`).
    MatchSuppressed(KeyMap<()>),
    TraceMatch,
    Threshold(KeyMap<ThresholdKey>),
    Sequence(KeyMap<SequenceKey>),
    NewTerms(NewTermsState),
    Baseline(BaselineState),
    Topology(Box<TopologyState>),
    DataFlow,
}

struct Compiled {
    rule: Rule,
    rule_id: Arc<str>,
    title: Arc<str>,
    state: State,
    stats: RuleStats,
    /// The span kinds its condition can hold on (bit `SpanKind as u8`):
    /// most of the pack's rules read `kind = server` first, and a span of
    /// another kind passes them by without an evaluation. Whole-trace
    /// rules, which do nothing span by span, have none.
    span_kinds: u8,
}

impl Compiled {
    /// Whether spans count as evaluated by this rule (`RuleStats::evaluated`):
    /// not for whole-trace rules, which see traces.
    fn counts_spans(&self) -> bool {
        !matches!(self.state, State::TraceMatch | State::Topology(_))
    }
}

/// Runs rules over spans. Single-threaded: give each worker its own engine
/// over a partition of keys, or wrap it in a lock.
pub struct Engine {
    config: EngineConfig,
    rules: Vec<Compiled>,
    spans: u64,
    detections: u64,
    /// Newest (clamped) span start time seen.
    watermark: u64,
    scratch: Scratch,
    /// Attribute lookups remembered across the rules run on one span.
    memo: AttributeMemo,
    /// The span-shaped view of the log record being evaluated, reused.
    log_view: SpanRecord,
    logs: u64,
    /// Spans per trace, when a rule needs whole traces.
    buffer: Option<TraceBuffer>,
    /// Traces handed over by the buffer, waiting for evaluation (reused).
    assembled: Vec<AssembledTrace>,
    /// Per trace evaluated by `flush`, nanoseconds from its completion to
    /// its evaluation; taken by `take_trace_delays`. At most
    /// `MAX_TRACE_DELAYS` wait (a sample, when nobody takes them).
    trace_delays: Vec<u64>,
    /// Log records waiting for their span, when a log rule has `join`.
    join: Option<logs::LogJoin>,
}

/// Buffers reused across spans, so keys and terms are built without
/// allocating once they have grown.
#[derive(Default)]
struct Scratch {
    key: String,
    value: String,
    term: String,
}

/// When a span happened, as the engine takes it.
#[derive(Clone, Copy)]
struct SpanTime {
    /// Its start time (clamped when in the future).
    ts: u64,
    future: bool,
    watermark: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the default limits. Disabled rules, and rules made
    /// inactive by unset site facts, are left out.
    pub fn new(rules: Vec<Rule>) -> Engine {
        Engine::with_config(rules, EngineConfig::default())
    }

    pub fn with_config(rules: Vec<Rule>, config: EngineConfig) -> Engine {
        let rules = rules
            .into_iter()
            .filter(|rule| rule.enabled && rule.inactive.is_none())
            .map(|rule| compile(rule, &config))
            .collect::<Vec<Compiled>>();
        // Spans are buffered (cloned) only when some rule needs traces.
        let buffer = rules
            .iter()
            .any(|c| c.rule.kind.needs_traces())
            .then(|| TraceBuffer::new(config.assembly.clone()));
        let mut join = None;
        logs::LogJoin::update(&mut join, &rules, &config);
        Engine {
            config,
            rules,
            spans: 0,
            detections: 0,
            watermark: 0,
            scratch: Scratch::default(),
            memo: AttributeMemo::new(),
            log_view: logs::empty_view(),
            logs: 0,
            buffer,
            assembled: Vec::new(),
            trace_delays: Vec::new(),
            join,
        }
    }

    /// Replaces the rules without losing window state: a rule with the
    /// same id and the same file text ([`Rule::digest`]) keeps its state
    /// and counters; a changed rule starts afresh; others come and go. The
    /// watermark carries on, so late spans stay late.
    pub fn reload(&mut self, rules: Vec<Rule>) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let mut old: Vec<Option<Compiled>> = std::mem::take(&mut self.rules)
            .into_iter()
            .map(Some)
            .collect();
        for rule in rules
            .into_iter()
            .filter(|rule| rule.enabled && rule.inactive.is_none())
        {
            let previous = old
                .iter_mut()
                .find(|c| c.as_ref().is_some_and(|c| c.rule.id == rule.id))
                .and_then(Option::take);
            match previous {
                Some(mut compiled) if compiled.rule.digest == rule.digest => {
                    summary.kept.push(rule.id.clone());
                    // The same text; take the new value anyway (its file
                    // path may differ).
                    compiled.rule = rule;
                    self.rules.push(compiled);
                }
                Some(_) => {
                    summary.changed.push(rule.id.clone());
                    self.rules.push(compile(rule, &self.config));
                }
                None => {
                    summary.added.push(rule.id.clone());
                    self.rules.push(compile(rule, &self.config));
                }
            }
        }
        summary.removed = old.into_iter().flatten().map(|c| c.rule.id).collect();
        if self.buffer.is_none() && self.rules.iter().any(|c| c.rule.kind.needs_traces()) {
            self.buffer = Some(TraceBuffer::new(self.config.assembly.clone()));
        }
        logs::LogJoin::update(&mut self.join, &self.rules, &self.config);
        summary
    }

    /// The enabled rules.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// Edges the enabled topology rules learned, in all (changes when one
    /// learns an edge: a cheap test before [`Engine::topology_policy`]).
    pub fn learned_edges(&self) -> usize {
        self.rules
            .iter()
            .map(|c| match &c.state {
                State::Topology(state) => state.learned_edge_count(),
                _ => 0,
            })
            .sum()
    }

    /// The edges the enabled topology rules allow, declared and learned.
    pub fn topology_policy(&self) -> TopologyPolicy {
        let mut policy = TopologyPolicy::default();
        for c in &self.rules {
            if let (State::Topology(state), RuleKind::Topology(rule)) = (&c.state, &c.rule.kind) {
                state.add_to(rule, &mut policy);
            }
        }
        policy
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            spans: self.spans,
            logs: self.logs,
            detections: self.detections,
            trace_rules: self
                .rules
                .iter()
                .filter(|c| c.rule.kind.needs_traces())
                .count(),
            rules: self
                .rules
                .iter()
                .map(|c| {
                    let mut stats = c.stats.clone();
                    stats.keys = match &c.state {
                        State::Threshold(keys) => keys.len(),
                        State::MatchSuppressed(keys) => keys.len(),
                        State::Sequence(keys) => keys.len(),
                        State::NewTerms(state) => state.keys.len(),
                        State::Baseline(state) => state.keys.len(),
                        State::Match | State::TraceMatch | State::Topology(_) | State::DataFlow => {
                            0
                        }
                    };
                    stats
                })
                .collect(),
            assembly: self
                .buffer
                .as_ref()
                .map(TraceBuffer::stats)
                .unwrap_or_default(),
            log_join: self
                .join
                .as_ref()
                .map(logs::LogJoin::stats)
                .unwrap_or_default(),
        }
    }

    /// Runs the span-level rules (match, threshold, sequence, the span
    /// part of data flow) over `spans`, in order, and, when a rule needs
    /// whole traces, buffers a clone of each record (its span shared, not
    /// copied) for trace assembly
    /// (see [`Engine::flush`]). `now_unix_nano` is the current time: it
    /// clamps start times from the future and is the arrival time of the
    /// spans for assembly. Returns the detections of the spans and of any
    /// trace a buffer limit pushed out.
    pub fn process(&mut self, spans: &[SpanRecord], now_unix_nano: u64) -> Vec<Detection> {
        let mut detections = self.run_span_rules(spans, now_unix_nano);
        self.buffer_spans(spans, now_unix_nano, &mut detections);
        detections
    }

    fn run_span_rules(&mut self, spans: &[SpanRecord], now_unix_nano: u64) -> Vec<Detection> {
        let mut detections = Vec::new();
        for record in spans {
            self.spans += 1;
            let time = self.span_time(record.span.start_time_unix_nano, now_unix_nano);
            // The rules read the same few attributes of a span over and
            // over; the view remembers where each was (`model::memo`).
            let mut view = RecordView::memoised(record, &mut self.memo);
            let kind = record.span.kind.bit();
            for compiled in self
                .rules
                .iter_mut()
                .filter(|c| c.rule.source == Source::Spans)
            {
                if compiled.span_kinds & kind == 0 {
                    compiled.stats.evaluated += u64::from(compiled.counts_spans());
                    continue;
                }
                process_span(
                    compiled,
                    &mut view,
                    time,
                    &self.config,
                    &mut self.scratch,
                    &mut detections,
                );
            }
        }
        // Log records waiting for these spans (`join:`; logs.rs).
        self.join_spans(spans, now_unix_nano, &mut detections);
        self.detections += detections.len() as u64;
        detections
    }

    /// When a span (or record) starting at `start` counts, advancing the
    /// watermark: a start more than `max_future_skew` after `now` is taken
    /// at `now` (a wrong clock), and so is a start of 0 (none); a start ahead of `now` within the skew
    /// counts at its own time but does not move the watermark past `now`.
    fn span_time(&mut self, start: u64, now_unix_nano: u64) -> SpanTime {
        let horizon = now_unix_nano.saturating_add(
            u64::try_from(self.config.max_future_skew.as_nanos()).unwrap_or(u64::MAX),
        );
        let (ts, future) = if start > horizon {
            (now_unix_nano, true)
        } else if start == 0 {
            // No start time (OTLP's default when an exporter leaves it
            // out): taken at `now`, not at 1970, where it would end a
            // new_terms rule's learning at once and look like a key never
            // fired to a suppressed match rule.
            (now_unix_nano, false)
        } else {
            (start, false)
        };
        self.watermark = self.watermark.max(ts.min(now_unix_nano));
        SpanTime {
            ts,
            future,
            watermark: self.watermark,
        }
    }

    /// Runs the whole-trace rules (whole-trace match, topology, the
    /// per-trace part of data flow) over one complete trace: every span
    /// of it, in any order, bypassing the assembly buffer. Whole-trace
    /// match rules give one detection per matching rule, with the number
    /// of spans in its result.
    pub fn process_trace(&mut self, spans: &[SpanRecord]) -> Vec<Detection> {
        self.evaluate_trace(spans, None)
    }
}

/// A rule with fresh state.
fn compile(rule: Rule, config: &EngineConfig) -> Compiled {
    let state = match &rule.kind {
        RuleKind::Match(m) if m.needs_whole_trace() => State::TraceMatch,
        RuleKind::Match(m) => match m.suppress {
            Some(_) => State::MatchSuppressed(KeyMap::new(config.max_keys_per_rule)),
            None => State::Match,
        },
        RuleKind::Threshold(_) => State::Threshold(KeyMap::new(config.max_keys_per_rule)),
        RuleKind::Sequence(_) => State::Sequence(KeyMap::new(config.max_keys_per_rule)),
        RuleKind::NewTerms(_) => State::NewTerms(NewTermsState::new(config.max_keys_per_rule)),
        RuleKind::Baseline(b) => State::Baseline(BaselineState::new(b, config)),
        RuleKind::Topology(t) => State::Topology(Box::new(TopologyState::new(t))),
        RuleKind::DataFlow(_) => State::DataFlow,
    };
    let kinds = |condition: &crate::rule::Condition| condition.query().span_kinds();
    let span_kinds = match &rule.kind {
        RuleKind::Match(m) if m.needs_whole_trace() => 0,
        RuleKind::Match(m) => kinds(&m.condition),
        RuleKind::Threshold(t) => kinds(&t.condition),
        RuleKind::Sequence(s) => s.steps.iter().fold(0, |k, step| k | kinds(&step.condition)),
        RuleKind::Baseline(b) => kinds(&b.condition),
        // Learning is measured from the first span of any kind, and data
        // flow has no condition.
        RuleKind::NewTerms(_) | RuleKind::DataFlow(_) => u8::MAX,
        RuleKind::Topology(_) => 0,
    };
    Compiled {
        span_kinds,
        rule_id: Arc::from(rule.id.as_str()),
        title: Arc::from(rule.title.as_str()),
        stats: RuleStats {
            rule_id: rule.id.clone(),
            ..RuleStats::default()
        },
        rule,
        state,
    }
}

/// What [`Engine::reload`] did, by rule id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Unchanged rules: their windows, keys and counters carry on.
    pub kept: Vec<String>,
    /// Rules new to the engine (or newly enabled or active).
    pub added: Vec<String>,
    /// Rules whose file changed: they start with empty state, since their
    /// condition, key or window may mean something else now.
    pub changed: Vec<String>,
    /// Rules no longer running (deleted, disabled or made inactive).
    pub removed: Vec<String>,
}

fn process_span(
    compiled: &mut Compiled,
    view: &mut RecordView<'_, '_>,
    time: SpanTime,
    config: &EngineConfig,
    scratch: &mut Scratch,
    detections: &mut Vec<Detection>,
) {
    let counts_span = compiled.counts_spans();
    let Compiled {
        rule,
        rule_id,
        title,
        state,
        stats,
        ..
    } = compiled;
    let SpanTime {
        ts,
        future,
        watermark,
    } = time;
    let record = view.record();
    let Scratch { key, value, term } = scratch;
    stats.evaluated += u64::from(counts_span);
    let hit = (ts, record.span.trace_id);
    let detection = |group_by: &[FieldRef], key: &str, crossing: Crossing, evidence| Detection {
        rule_id: rule_id.clone(),
        title: title.clone(),
        severity: rule.severity,
        kind: rule.kind.name(),
        key: group_by
            .iter()
            .map(|f| f.as_str().to_string())
            .zip(decode_key(key))
            .collect(),
        count: crossing.count,
        first_seen_unix_nano: crossing.first_seen,
        last_seen_unix_nano: crossing.last_seen,
        trace_ids: crossing.trace_ids,
        evidence,
    };
    // The payload found (or the values counted), then the rule's
    // `evidence:` fields of this span, the one that fires.
    let evidence_of = |view: &mut RecordView<'_, '_>, found: Option<String>| {
        field_evidence(found, &rule.evidence, view)
    };
    match (state, &rule.kind) {
        (State::Match, RuleKind::Match(m)) => {
            if !m.condition.matches_view(view) || excepted(rule, view, ts, stats) {
                return;
            }
            let Some(payload) = find_payload(m.payload.as_ref(), view) else {
                return;
            };
            stats.matched_spans += 1;
            stats.future_spans += u64::from(future);
            stats.detections += 1;
            let evidence = evidence_of(view, payload.map(|hit| hit.evidence()));
            detections.push(detection(
                &[],
                "",
                Crossing {
                    count: 1,
                    first_seen: ts,
                    last_seen: ts,
                    trace_ids: threshold::sample_trace_ids(&[hit], config.max_trace_ids),
                },
                evidence,
            ));
        }
        (State::MatchSuppressed(keys), RuleKind::Match(m)) => {
            let Some(suppress) = &m.suppress else {
                return;
            };
            if !m.condition.matches_view(view) || excepted(rule, view, ts, stats) {
                return;
            }
            let Some(payload) = find_payload(m.payload.as_ref(), view) else {
                return;
            };
            stats.matched_spans += 1;
            stats.future_spans += u64::from(future);
            let period = duration_nanos(suppress.period);
            keys.sweep(watermark, period, stats);
            build_key_lenient(&suppress.by, view, key, value);
            let slot = keys.slot(key, stats);
            // A fresh key has `newest` 0: it fires.
            if slot.newest != 0 && ts < slot.newest.saturating_add(period) {
                stats.suppressed += 1;
                return;
            }
            slot.newest = ts;
            stats.detections += 1;
            let evidence = evidence_of(view, payload.map(|hit| hit.evidence()));
            detections.push(detection(
                &suppress.by,
                key,
                Crossing {
                    count: 1,
                    first_seen: ts,
                    last_seen: ts,
                    trace_ids: threshold::sample_trace_ids(&[hit], config.max_trace_ids),
                },
                evidence,
            ));
        }
        (State::Threshold(keys), RuleKind::Threshold(t)) => {
            if !t.condition.matches_view(view) || excepted(rule, view, ts, stats) {
                return;
            }
            let Some(payload) = find_payload(t.payload.as_ref(), view) else {
                return;
            };
            let window = duration_nanos(t.window);
            let span = Admitted {
                ts,
                future,
                watermark,
                window,
                // A span up to a window behind the watermark is admitted,
                // and its window reaches a window further back.
                expiry: window.saturating_mul(2),
            };
            if !admit(keys, &t.group_by, &span, view, key, value, stats) {
                return;
            }
            let distinct = match &t.distinct {
                None => None,
                Some(field) => {
                    value.clear();
                    if !field.write_value_in(view, value) {
                        stats.missing_key += 1;
                        return;
                    }
                    Some(value.as_str())
                }
            };
            let Some(slot) = slot_for(keys, key, &span, stats) else {
                return;
            };
            let newest = slot.newest;
            if let Some(crossing) =
                slot.value
                    .record(hit, distinct, newest, window, t.count, config.max_trace_ids)
            {
                stats.detections += 1;
                // The payload found, else for `distinct` the values counted
                // (the user names tried from one address, say).
                let evidence = match (payload, &t.distinct) {
                    (Some(hit), _) => Some(hit.evidence()),
                    (None, Some(field)) => Some(distinct_evidence(
                        field,
                        crossing.count,
                        slot.value.is_estimated(),
                        &slot.value.newest_distinct(EVIDENCE_VALUES),
                    )),
                    (None, None) => None,
                };
                let evidence = evidence_of(view, evidence);
                detections.push(detection(&t.group_by, key, crossing, evidence));
            }
        }
        (State::Sequence(keys), RuleKind::Sequence(s)) => {
            let mut matched = 0u32;
            for (i, step) in s.steps.iter().enumerate() {
                if step.condition.matches_view(view) {
                    matched |= 1 << i;
                }
            }
            if matched == 0 || excepted(rule, view, ts, stats) {
                return;
            }
            let window = duration_nanos(s.window);
            let span = Admitted {
                ts,
                future,
                watermark,
                window,
                // A span up to a window behind the watermark is admitted,
                // and its window reaches a window further back.
                expiry: window.saturating_mul(2),
            };
            if !admit(keys, &s.group_by, &span, view, key, value, stats) {
                return;
            }
            let Some(slot) = slot_for(keys, key, &span, stats) else {
                return;
            };
            let newest = slot.newest;
            // Step counts are few (at most MAX_STEPS) and fixed per rule.
            let mut counts = [0u64; crate::rule::MAX_STEPS];
            for (c, step) in counts.iter_mut().zip(&s.steps) {
                *c = step.count;
            }
            let counts = counts.get(..s.steps.len()).unwrap_or(&[]);
            if let Some(crossing) =
                slot.value
                    .record(matched, hit, newest, window, counts, config.max_trace_ids)
            {
                stats.detections += 1;
                let evidence = evidence_of(view, None);
                detections.push(detection(&s.group_by, key, crossing, evidence));
            }
        }
        (State::NewTerms(state), RuleKind::NewTerms(n)) => {
            // Learning is measured from the first span the rule saw,
            // matching or not: "the rule has watched traffic for `learning`".
            let learning_end = state.learning_end(ts, duration_nanos(n.learning));
            if !n.condition.matches_view(view) || excepted(rule, view, ts, stats) {
                return;
            }
            // Terms are history, not a window: nothing is late and keys do
            // not expire (they are bounded by the key cap).
            let span = Admitted {
                ts,
                future,
                watermark,
                window: u64::MAX,
                expiry: u64::MAX,
            };
            if !admit(&mut state.keys, &n.group_by, &span, view, key, value, stats) {
                return;
            }
            if !build_key(&n.fields, view, term, value) {
                stats.missing_key += 1;
                return;
            }
            if let Some(evidence) = state.observe(n, key, term, &span, learning_end, stats) {
                stats.detections += 1;
                let crossing = Crossing {
                    count: 1,
                    first_seen: ts,
                    last_seen: ts,
                    trace_ids: threshold::sample_trace_ids(&[hit], config.max_trace_ids),
                };
                let evidence = evidence_of(view, Some(evidence));
                detections.push(detection(&n.group_by, key, crossing, evidence));
            }
        }
        (State::Baseline(state), RuleKind::Baseline(b)) => {
            if !b.condition.matches_view(view) || excepted(rule, view, ts, stats) {
                return;
            }
            let interval = duration_nanos(b.interval);
            // One bucket of grace for out-of-order spans; a key idle for
            // its whole learning period starts afresh, so it can go.
            let span = Admitted {
                ts,
                future,
                watermark,
                window: interval.saturating_mul(2),
                expiry: interval.saturating_mul(b.learning.saturating_add(2)),
            };
            if !admit(&mut state.keys, &b.group_by, &span, view, key, value, stats) {
                return;
            }
            let distinct = state.distinct_hash(b, view, value);
            if let Some((crossing, evidence)) =
                state.record(b, key, &span, record.span.trace_id, distinct, stats)
            {
                stats.detections += 1;
                let evidence = evidence_of(view, Some(evidence));
                detections.push(detection(&b.group_by, key, crossing, evidence));
            }
        }
        (State::DataFlow, RuleKind::DataFlow(d)) => {
            if let Some(flow) = data_flow::check_span(d, record) {
                if excepted(rule, view, ts, stats) {
                    return;
                }
                stats.matched_spans += 1;
                stats.detections += 1;
                detections.push(Detection {
                    rule_id: rule_id.clone(),
                    title: title.clone(),
                    severity: rule.severity,
                    kind: rule.kind.name(),
                    key: flow.key,
                    count: 1,
                    // The span's time as the engine takes it (clamped
                    // from the future, `now` when it has none).
                    first_seen_unix_nano: ts,
                    last_seen_unix_nano: ts,
                    trace_ids: threshold::sample_trace_ids(&[hit], config.max_trace_ids),
                    evidence: Some(flow.evidence),
                });
            }
        }
        // A state always matches its rule's kind (both set in `with_config`);
        // whole-trace rules run on assembled traces (`traces.rs`).
        _ => {}
    }
}

/// Whether one of the rule's exceptions holds for a span its condition
/// holds for: the span is left out of the rule, counted. Asked only after
/// the condition, so a rule pays for its exceptions on its matches only.
fn excepted(rule: &Rule, view: &mut RecordView<'_, '_>, ts: u64, stats: &mut RuleStats) -> bool {
    if rule.exceptions.is_empty() {
        return false;
    }
    let hit = rule
        .exceptions
        .iter()
        .any(|e| e.applies_at(ts) && e.condition.matches_view(view));
    stats.excepted += u64::from(hit);
    hit
}

/// A span a keyed rule's condition holds for, and its window.
struct Admitted {
    /// Its start time (clamped when in the future).
    ts: u64,
    future: bool,
    watermark: u64,
    /// Spans this much older than the watermark or their key's newest span
    /// are late.
    window: u64,
    /// Keys idle this long (in event time) are dropped.
    expiry: u64,
}

/// What every windowed rule does first with a span its condition holds
/// for: count it, drop the keys idle for a window, refuse it when it is
/// older than the window, and build its key into `key`. False: the span goes
/// no further (counted).
fn admit<V: Default>(
    keys: &mut KeyMap<V>,
    group_by: &[FieldRef],
    span: &Admitted,
    view: &mut RecordView<'_, '_>,
    key: &mut String,
    value: &mut String,
    stats: &mut RuleStats,
) -> bool {
    stats.matched_spans += 1;
    stats.future_spans += u64::from(span.future);
    keys.sweep(span.watermark, span.expiry, stats);
    if span.ts.saturating_add(span.window) <= span.watermark {
        stats.late_spans += 1;
        return false;
    }
    if !build_key(group_by, view, key, value) {
        stats.missing_key += 1;
        return false;
    }
    true
}

/// The slot of `key` with its newest time advanced to the span's; `None`
/// when the key cannot be held or the span is older than the key's window
/// (counted late).
fn slot_for<'a, V: Default>(
    keys: &'a mut KeyMap<V>,
    key: &str,
    span: &Admitted,
    stats: &mut RuleStats,
) -> Option<&'a mut Slot<V>> {
    let slot = keys.slot(key, stats);
    if span.ts.saturating_add(span.window) <= slot.newest {
        stats.late_spans += 1;
        return None;
    }
    slot.newest = slot.newest.max(span.ts);
    Some(slot)
}

/// Whether a span that satisfies a rule's condition passes its `payload`
/// test: `Some(None)` for rules without one, `Some(Some(hit))` with the
/// payload found, `None` when the rule asks for a payload and the span has
/// none. Runs only after the condition held, so the detectors see only
/// candidate spans.
fn find_payload<'a>(
    payload: Option<&'a PayloadMatch>,
    view: &mut RecordView<'_, '_>,
) -> Option<Option<PayloadHit<'a>>> {
    match payload {
        None => Some(None),
        Some(p) => p.find(view).map(Some),
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod log_join_tests;
#[cfg(test)]
mod tests;
