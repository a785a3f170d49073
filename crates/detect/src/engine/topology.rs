//! Topology rules over one assembled trace: the service edges it shows,
//! its parentless server spans and its context taken from outside, checked
//! against declared and learned facts.
//!
//! Edges: a server or consumer span of service B whose parent span (in the
//! trace) is of service A gives `A -> B`; a consumer span linked to a
//! producer span of A in the same trace does too (messaging). Spans without
//! `service.name` and calls within one service give no edge. Links to
//! other traces are not followed.
//!
//! A span's parent context is remote when OTLP's span flags say so
//! (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE` 0x100 set, `..._IS_REMOTE` 0x200
//! set); with 0x100 set and 0x200 clear the parent is local (in-process),
//! so a missing parent is a missing span, not context from outside. When
//! the flags say nothing, a parent span id that is not in a complete trace
//! counts as remote; in a partial trace it proves nothing and is skipped.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use tracewarden_model::{AnyValue, SpanId, SpanKind, SpanRecord};
use tracewarden_traceql::TraceView;

use crate::assembly::Partial;
use crate::rule::{TopologyCheck, TopologyRule};

/// OTLP `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`.
const HAS_IS_REMOTE: u32 = 0x100;
/// OTLP `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;
/// Most edges and services a rule learns (each a few dozen bytes); past
/// this, new ones still fire but are not remembered.
pub(crate) const MAX_LEARNED: usize = 10_000;

type Edges = HashMap<Box<str>, HashSet<Box<str>>>;

fn contains(edges: &Edges, caller: &str, callee: &str) -> bool {
    edges.get(caller).is_some_and(|c| c.contains(callee))
}

/// What a rule learned and declared (checkpointed: learned edges and entry
/// services survive restarts).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TopologyState {
    declared_edges: Edges,
    declared_entries: HashSet<Box<str>>,
    learned_edges: Edges,
    learned_edge_count: usize,
    learned_entries: HashSet<Box<str>>,
    /// Entry services seen taking context from outside while learning
    /// (browser or partner tracing): not reported as spoofed.
    remote_ok: HashSet<Box<str>>,
    /// End of learning (event time), set by the first trace evaluated.
    learn_until: Option<u64>,
}

/// The edges topology rules allow, for showing a service graph against
/// them: declared in the rules (the site's `$allowed_edges`) and learned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyPolicy {
    /// An enabled topology rule checks callers (`wrong_caller`): without
    /// one, no edge is allowed or forbidden by a rule.
    pub checks_callers: bool,
    /// A caller-checking rule learns edges (`learn:` set).
    pub learns: bool,
    /// `(caller, callee)` pairs declared.
    pub declared: BTreeSet<(String, String)>,
    /// `(caller, callee)` pairs learned so far.
    pub learned: BTreeSet<(String, String)>,
}

/// One finding of a topology rule in one trace.
#[derive(Debug)]
pub(crate) struct Finding {
    pub check: TopologyCheck,
    /// An exception of the rule holds for the spans that showed it: left
    /// out, counted.
    pub excepted: bool,
    pub key: Vec<(String, String)>,
    pub evidence: String,
    pub first: u64,
    pub last: u64,
    pub count: u64,
}

pub(crate) fn service_of(record: &SpanRecord) -> &str {
    record
        .resource
        .attribute("service.name")
        .and_then(AnyValue::as_str)
        .unwrap_or("")
}

impl TopologyState {
    pub(crate) fn new(rule: &TopologyRule) -> TopologyState {
        let mut declared_edges = Edges::new();
        for (caller, callee) in &rule.allowed_edges {
            declared_edges
                .entry(Box::from(caller.as_str()))
                .or_default()
                .insert(Box::from(callee.as_str()));
        }
        TopologyState {
            declared_edges,
            declared_entries: rule
                .entry_services
                .iter()
                .map(|s| Box::from(s.as_str()))
                .collect(),
            learned_edges: Edges::new(),
            learned_edge_count: 0,
            learned_entries: HashSet::new(),
            remote_ok: HashSet::new(),
            learn_until: None,
        }
    }

    /// Edges learned so far (cheap: tells a caller whether
    /// [`TopologyState::add_to`] would add anything new).
    pub(crate) fn learned_edge_count(&self) -> usize {
        self.learned_edge_count
    }

    /// Adds this rule's declared and learned edges to `policy`.
    pub(crate) fn add_to(&self, rule: &TopologyRule, policy: &mut TopologyPolicy) {
        if !rule.checks(TopologyCheck::WrongCaller) {
            return;
        }
        policy.checks_callers = true;
        policy.learns |= rule.learn.is_some();
        let pairs = |edges: &Edges| -> Vec<(String, String)> {
            edges
                .iter()
                .flat_map(|(caller, callees)| {
                    callees
                        .iter()
                        .map(move |callee| (caller.to_string(), callee.to_string()))
                })
                .collect()
        };
        policy.declared.extend(pairs(&self.declared_edges));
        policy.learned.extend(pairs(&self.learned_edges));
    }

    fn allowed(&self, caller: &str, callee: &str) -> bool {
        contains(&self.declared_edges, caller, callee)
            || contains(&self.learned_edges, caller, callee)
    }

    fn is_entry(&self, service: &str) -> bool {
        self.declared_entries.contains(service) || self.learned_entries.contains(service)
    }

    fn learn_edge(&mut self, caller: &str, callee: &str) {
        if self.learned_edge_count >= MAX_LEARNED || contains(&self.learned_edges, caller, callee) {
            return;
        }
        self.learned_edges
            .entry(Box::from(caller))
            .or_default()
            .insert(Box::from(callee));
        self.learned_edge_count += 1;
    }

    fn learn_entry(&mut self, service: &str) {
        if self.learned_entries.len() < MAX_LEARNED && !self.learned_entries.contains(service) {
            self.learned_entries.insert(Box::from(service));
        }
    }

    /// Runs the rule's checks over one trace, appending findings (one per
    /// check and edge or service, with the spans that showed it counted).
    /// A server or consumer span `except` holds for (the rule's
    /// exceptions) is neither learnt from nor a finding: its findings come
    /// marked `excepted`, to be counted.
    pub(crate) fn evaluate(
        &mut self,
        rule: &TopologyRule,
        view: &TraceView<'_>,
        partial: Option<Partial>,
        undated: u64,
        except: &dyn Fn(&SpanRecord) -> bool,
        out: &mut Vec<Finding>,
    ) {
        let spans = view.spans();
        let learning = match rule.learn {
            None => false,
            Some(period) => {
                let start = view.start_unix_nano();
                let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
                start < *self.learn_until.get_or_insert(start.saturating_add(period))
            }
        };
        let learns = rule.learn.is_some();
        let wrong_caller = rule.checks(TopologyCheck::WrongCaller);
        let mut links: Option<HashMap<SpanId, usize>> = None;
        let mut callers: Vec<&str> = Vec::new();
        for (i, record) in spans.iter().enumerate() {
            let span = &record.span;
            let service = service_of(record);
            if service.is_empty() || !matches!(span.kind, SpanKind::Server | SpanKind::Consumer) {
                continue;
            }
            // An excepted span teaches nothing: while learning it is
            // skipped, afterwards its findings are marked and it is not
            // learnt from (`learn`).
            let excepted = except(record);
            if excepted && learning {
                continue;
            }
            let learns = learns && !excepted;
            if wrong_caller {
                // One span shows an edge once, however many ways it names
                // the caller (a consumer may take its producer as parent
                // and link to it, or link to several of its spans).
                callers.clear();
                let parent = view.parent(i).map(|p| (p, "parent"));
                let linked = linked_producers(spans, record, &mut links).map(|j| (j, "link"));
                for (j, via) in parent.into_iter().chain(linked) {
                    let caller = spans.get(j).map_or("", service_of);
                    if callers.contains(&caller) {
                        continue;
                    }
                    callers.push(caller);
                    let mode = Mode {
                        learning,
                        learns,
                        excepted,
                    };
                    self.edge(spans, j, i, via, mode, undated, out);
                }
            }
            if span.kind != SpanKind::Server {
                continue;
            }
            match span.parent_span_id.filter(|p| !p.is_zero()) {
                None => {
                    if learning {
                        self.learn_entry(service);
                    } else if rule.checks(TopologyCheck::NoParent) && !self.is_entry(service) {
                        let evidence = format!(
                            "no_parent: {service} is not an entry service, yet its server span \"{}\" has no parent span",
                            span.name
                        );
                        push(
                            out,
                            TopologyCheck::NoParent,
                            &[("service", service)],
                            evidence,
                            record,
                            undated,
                            excepted,
                        );
                        if learns {
                            self.learn_entry(service);
                        }
                    }
                }
                Some(parent) if view.parent(i).is_none() => {
                    let remote =
                        (span.flags & HAS_IS_REMOTE != 0).then_some(span.flags & IS_REMOTE != 0);
                    let how = match (remote, partial) {
                        // A partial trace: the parent may be in another
                        // fragment. SDKs mark every parent that came over
                        // the network remote, a traced upstream one too, so
                        // the flag cannot tell a split from outside context.
                        (_, Some(_)) => continue,
                        (Some(true), None) => "marked remote by the span flags",
                        (None, None) => "not in the trace",
                        // A local parent (per the flags) that is missing.
                        (Some(false), None) => continue,
                    };
                    if learning {
                        if self.remote_ok.len() < MAX_LEARNED {
                            self.remote_ok.insert(Box::from(service));
                        }
                    } else if rule.checks(TopologyCheck::NoParent)
                        && !self.is_entry(service)
                        && !self.remote_ok.contains(service)
                    {
                        // An internal service called with a trace context
                        // that no traced service gave it: a forged
                        // `traceparent` reaches it as surely as none.
                        let evidence = with_parent(
                            format!(
                                "no_parent: {service} is not an entry service, yet its server span \"{}\" has parent span ",
                                span.name
                            ),
                            parent,
                            &format!("{how} of a complete trace"),
                        );
                        push(
                            out,
                            TopologyCheck::NoParent,
                            &[("service", service)],
                            evidence,
                            record,
                            undated,
                            excepted,
                        );
                    } else if rule.checks(TopologyCheck::SpoofedContext)
                        && self.is_entry(service)
                        && !self.remote_ok.contains(service)
                    {
                        let evidence = with_parent(
                            format!(
                                "spoofed_context: entry service {service} took trace context from outside: server span \"{}\" has parent span ",
                                span.name
                            ),
                            parent,
                            how,
                        );
                        push(
                            out,
                            TopologyCheck::SpoofedContext,
                            &[("service", service)],
                            evidence,
                            record,
                            undated,
                            excepted,
                        );
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The edge from span `caller_index` to span `callee_index`: learned,
    /// allowed, or a finding.
    #[allow(clippy::too_many_arguments)]
    fn edge(
        &mut self,
        spans: &[SpanRecord],
        caller_index: usize,
        callee_index: usize,
        via: &str,
        mode: Mode,
        undated: u64,
        out: &mut Vec<Finding>,
    ) {
        let Mode {
            learning,
            learns,
            excepted,
        } = mode;
        let (Some(caller_span), Some(callee_span)) =
            (spans.get(caller_index), spans.get(callee_index))
        else {
            return;
        };
        let (caller, callee) = (service_of(caller_span), service_of(callee_span));
        if caller.is_empty() || caller == callee {
            return;
        }
        if learning {
            self.learn_edge(caller, callee);
            return;
        }
        if self.allowed(caller, callee) {
            return;
        }
        let evidence = format!(
            "wrong_caller: {caller} -> {callee} is not an allowed edge: {} span \"{}\" of {callee} called from {} span \"{}\" of {caller} ({via})",
            callee_span.span.kind.as_str(),
            callee_span.span.name,
            caller_span.span.kind.as_str(),
            caller_span.span.name,
        );
        push(
            out,
            TopologyCheck::WrongCaller,
            &[("caller", caller), ("callee", callee)],
            evidence,
            callee_span,
            undated,
            excepted,
        );
        if learns {
            self.learn_edge(caller, callee);
        }
    }
}

/// Adds a finding, or counts the span into the same check and key.
/// The producer spans of this trace that consumer span `record` links to
/// (messaging: a consumer links to its producer, besides or instead of
/// taking it as parent). `span_ids`, the trace's span id -> index map, is
/// built on first use.
pub(crate) fn linked_producers<'a>(
    spans: &'a [SpanRecord],
    record: &'a SpanRecord,
    span_ids: &'a mut Option<HashMap<SpanId, usize>>,
) -> impl Iterator<Item = usize> + 'a {
    let span = &record.span;
    let ids = (span.kind == SpanKind::Consumer && !span.links.is_empty()).then(|| {
        &*span_ids.get_or_insert_with(|| {
            spans
                .iter()
                .enumerate()
                .map(|(j, r)| (r.span.span_id, j))
                .collect()
        })
    });
    ids.into_iter().flat_map(move |ids| {
        span.links
            .iter()
            .filter(move |link| link.trace_id == span.trace_id)
            .filter_map(move |link| ids.get(&link.span_id).copied())
            .filter(move |&j| {
                spans
                    .get(j)
                    .is_some_and(|r| r.span.kind == SpanKind::Producer)
            })
    })
}

/// `evidence`, then the parent span id in hex and how it is known to be
/// outside the trace.
fn with_parent(mut evidence: String, parent: SpanId, how: &str) -> String {
    for b in parent.as_bytes() {
        let _ = write!(evidence, "{b:02x}");
    }
    let _ = write!(evidence, ", {how}");
    evidence
}

/// How [`TopologyState::edge`] treats the edge of one callee span.
#[derive(Clone, Copy)]
struct Mode {
    /// The rule is still learning: edges are learnt, not findings.
    learning: bool,
    /// After learning, a finding's edge is learnt too (`learn` rules).
    learns: bool,
    /// An exception holds for the callee span: its finding is marked.
    excepted: bool,
}

fn push(
    out: &mut Vec<Finding>,
    check: TopologyCheck,
    key: &[(&str, &str)],
    evidence: String,
    record: &SpanRecord,
    undated: u64,
    excepted: bool,
) {
    // A span without a start time is seen at `undated` (the watermark).
    let ts = match record.span.start_time_unix_nano {
        0 => undated,
        t => t,
    };
    let same = |f: &&mut Finding| {
        f.check == check
            && f.excepted == excepted
            && f.key.len() == key.len()
            && f.key
                .iter()
                .zip(key)
                .all(|((a, b), (c, d))| a == c && b == d)
    };
    if let Some(f) = out.iter_mut().find(same) {
        f.count += 1;
        f.first = f.first.min(ts);
        f.last = f.last.max(ts);
        return;
    }
    out.push(Finding {
        check,
        excepted,
        key: key
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        evidence,
        first: ts,
        last: ts,
        count: 1,
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tracewarden_model::{KeyValue, Link, Resource, Span, TraceId};

    use super::*;

    fn span(id: u8, parent: Option<u8>, service: &str, kind: SpanKind, flags: u32) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([id; 8]),
            "op",
        );
        span.parent_span_id = parent.map(|p| SpanId::from_bytes([p; 8]));
        span.kind = kind;
        span.flags = flags;
        SpanRecord {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", service)],
                ..Resource::default()
            }),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn rule(detect: &[TopologyCheck], learn: Option<Duration>) -> TopologyRule {
        TopologyRule {
            detect: detect.to_vec(),
            allowed_edges: vec![("gw".into(), "weather".into())],
            entry_services: vec!["gw".into()],
            learn,
        }
    }

    fn run(
        state: &mut TopologyState,
        rule: &TopologyRule,
        spans: &[SpanRecord],
        partial: Option<Partial>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        state.evaluate(
            rule,
            &TraceView::new(spans),
            partial,
            0,
            &|_| false,
            &mut out,
        );
        out.into_iter().map(|f| f.evidence).collect()
    }

    #[test]
    fn links_to_other_traces_and_non_producers_give_no_edge() {
        let rule = rule(&[TopologyCheck::WrongCaller], None);
        let mut state = TopologyState::new(&rule);
        let mut consumer = span(2, None, "location", SpanKind::Consumer, 0);
        let link = |trace: [u8; 16], id: u8| Link {
            trace_id: TraceId::from_bytes(trace),
            span_id: SpanId::from_bytes([id; 8]),
            trace_state: Default::default(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
        };
        consumer.span_mut().links = vec![link([9; 16], 1), link([7; 16], 3)];
        let spans = [
            span(1, None, "billing", SpanKind::Producer, 0),
            consumer,
            span(3, None, "billing", SpanKind::Internal, 0),
        ];
        assert!(run(&mut state, &rule, &spans, None).is_empty());
        let mut consumer = spans[1].clone();
        consumer.span_mut().links = vec![link([7; 16], 1)];
        let found = run(&mut state, &rule, &[spans[0].clone(), consumer], None);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("wrong_caller: billing -> location"),
            "{found:?}"
        );
    }

    #[test]
    fn a_consumer_both_child_and_link_of_its_producer_counts_once() {
        // Messaging instrumentations may parent a consumer span on the
        // producer span and link it too: one span showed the edge.
        let rule = rule(&[TopologyCheck::WrongCaller], None);
        let mut state = TopologyState::new(&rule);
        let mut consumer = span(2, Some(1), "location", SpanKind::Consumer, 0);
        consumer.span_mut().links = vec![Link {
            trace_id: TraceId::from_bytes([7; 16]),
            span_id: SpanId::from_bytes([1; 8]),
            trace_state: Default::default(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
        }];
        let spans = [span(1, None, "billing", SpanKind::Producer, 0), consumer];
        let mut out = Vec::new();
        state.evaluate(
            &rule,
            &TraceView::new(&spans),
            None,
            0,
            &|_| false,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 1, "{}", out[0].evidence);
    }

    #[test]
    fn the_policy_lists_declared_and_learned_edges() {
        let other = rule(&[TopologyCheck::NoParent], None);
        let rule = rule(&[TopologyCheck::WrongCaller], Some(Duration::from_secs(60)));
        let mut state = TopologyState::new(&rule);
        let spans = [
            span(1, None, "gw", SpanKind::Server, 0),
            span(2, Some(1), "billing", SpanKind::Server, 0),
        ];
        assert!(run(&mut state, &rule, &spans, None).is_empty(), "learning");
        let mut policy = TopologyPolicy::default();
        state.add_to(&rule, &mut policy);
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert!(policy.checks_callers && policy.learns);
        assert_eq!(
            policy.declared.iter().collect::<Vec<_>>(),
            [&pair("gw", "weather")]
        );
        assert_eq!(
            policy.learned.iter().collect::<Vec<_>>(),
            [&pair("gw", "billing")]
        );
        assert_eq!(state.learned_edge_count(), 1);
        // A rule that does not check callers allows and forbids nothing.
        let mut policy = TopologyPolicy::default();
        TopologyState::new(&other).add_to(&other, &mut policy);
        assert_eq!(policy, TopologyPolicy::default());
    }

    #[test]
    fn spoofed_context_needs_a_complete_trace_or_the_remote_flag() {
        let rule = rule(&[TopologyCheck::SpoofedContext], None);
        let mut state = TopologyState::new(&rule);
        let outside = [span(1, Some(9), "gw", SpanKind::Server, 0)];
        assert_eq!(run(&mut state, &rule, &outside, None).len(), 1);
        assert!(run(&mut state, &rule, &outside, Some(Partial::TraceLimit)).is_empty());
        let remote = [span(
            1,
            Some(9),
            "gw",
            SpanKind::Server,
            HAS_IS_REMOTE | IS_REMOTE,
        )];
        assert_eq!(run(&mut state, &rule, &remote, None).len(), 1);
        // SDKs mark a parent from a traced upstream service remote too: in
        // a partial trace the flag does not tell a split from a spoof.
        assert!(run(&mut state, &rule, &remote, Some(Partial::TraceLimit)).is_empty());
        let local = [span(1, Some(9), "gw", SpanKind::Server, HAS_IS_REMOTE)];
        assert!(run(&mut state, &rule, &local, None).is_empty());
        // Not an entry service: another rule's business.
        assert!(
            run(
                &mut state,
                &rule,
                &[span(1, Some(9), "weather", SpanKind::Server, 0)],
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn an_internal_service_given_a_context_from_nowhere_has_no_parent() {
        let rule = rule(&[TopologyCheck::NoParent], None);
        let mut state = TopologyState::new(&rule);
        // `weather` is internal; its parent 9 is in no span of the
        // complete trace: a forged `traceparent`, as good as none.
        let forged = [span(1, Some(9), "weather", SpanKind::Server, 0)];
        let findings = run(&mut state, &rule, &forged, None);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].starts_with("no_parent: weather is not an entry service")
                && findings[0].ends_with("not in the trace of a complete trace"),
            "{findings:?}"
        );
        // A split trace, a parent the flags call local, or an entry service
        // (the spoofed-context check's) are not this finding.
        assert!(run(&mut state, &rule, &forged, Some(Partial::TraceLimit)).is_empty());
        let local = [span(1, Some(9), "weather", SpanKind::Server, HAS_IS_REMOTE)];
        assert!(run(&mut state, &rule, &local, None).is_empty());
        let entry = [span(1, Some(9), "gw", SpanKind::Server, 0)];
        assert!(run(&mut state, &rule, &entry, None).is_empty());
    }

    #[test]
    fn outside_context_seen_while_learning_is_not_reported() {
        let rule = rule(
            &[TopologyCheck::SpoofedContext],
            Some(Duration::from_secs(60)),
        );
        let mut state = TopologyState::new(&rule);
        let mut browser = span(1, Some(9), "gw", SpanKind::Server, 0);
        browser.span_mut().start_time_unix_nano = 1_000;
        assert!(run(&mut state, &rule, std::slice::from_ref(&browser), None).is_empty());
        browser.span_mut().start_time_unix_nano = 120_000_000_000;
        assert!(
            run(&mut state, &rule, &[browser], None).is_empty(),
            "learned as normal"
        );
    }
}
