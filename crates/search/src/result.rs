//! What a search returns.

use tracewarden_model::{SpanRecord, TraceId};
use tracewarden_traceql::Static;

/// The traces found, newest data first, and what it took.
#[derive(Clone, Debug, Default)]
pub struct SearchResult {
    pub traces: Vec<TraceMatch>,
    pub metrics: SearchMetrics,
}

/// One matching trace.
#[derive(Clone, Debug)]
pub struct TraceMatch {
    pub trace_id: TraceId,
    /// Service and name of the root span; `None` when the root span is not
    /// stored (yet).
    pub root_service_name: Option<String>,
    pub root_span_name: Option<String>,
    /// Earliest span start and latest span end of the whole trace.
    pub start_unix_nano: u64,
    pub duration_nanos: u64,
    /// Spans in the whole trace.
    pub span_count: usize,
    /// Service name → (spans, spans with status error), for Tempo's
    /// `serviceStats`.
    pub service_stats: Vec<(String, ServiceStats)>,
    pub spansets: Vec<MatchedSpanSet>,
}

/// Spans of one service within a trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    pub span_count: usize,
    pub error_count: usize,
}

/// One spanset the query yielded for a trace.
#[derive(Clone, Debug)]
pub struct MatchedSpanSet {
    /// The first `spans_per_spanset` matched spans, by start time.
    pub spans: Vec<MatchedSpan>,
    /// How many spans matched (may exceed `spans.len()`).
    pub matched: usize,
    /// `by()` values and aggregates (`count()`, `avg(duration)`...).
    pub attributes: Vec<(String, Static)>,
}

/// A matched span, with the values `select(...)` asked for.
#[derive(Clone, Debug)]
pub struct MatchedSpan {
    pub record: SpanRecord,
    pub selected: Vec<(String, Static)>,
}

/// What the search did: for the response's metrics and for tuning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchMetrics {
    /// Spans the store handed over after pruning (each checked by the query).
    pub inspected_spans: u64,
    /// Whole traces evaluated.
    pub inspected_traces: u64,
    /// Of those, the traces looked up by id across every unit (the others
    /// were read in bulk from the one unit holding them).
    pub looked_up_traces: u64,
    /// Of those, the traces gathered from every unit in one pass (read in
    /// bulk from one unit while another may hold part of them).
    pub assembled_traces: u64,
    /// In-memory tiers and segments scanned, and segments skipped by their
    /// time range.
    pub scanned_units: u64,
    pub skipped_units: u64,
    /// Set when the search stopped before looking at everything for a reason
    /// other than having found `limit` traces (the candidate bound): the
    /// result may miss matches.
    pub partial: Option<String>,
    /// Parts of the store that could not be read (a damaged segment): the
    /// search went on without them, so it may miss matches.
    pub unreadable: Vec<String>,
}
