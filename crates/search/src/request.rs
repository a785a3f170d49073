//! What to search for.

use tracewarden_traceql::Query;

use crate::SearchError;

/// Traces returned when the request does not say (Tempo's default).
pub const DEFAULT_LIMIT: usize = 20;
/// Spans listed per spanset when the request does not say (Tempo's `spss`).
pub const DEFAULT_SPANS_PER_SPANSET: usize = 3;
/// The most traces one request may ask for.
pub const MAX_LIMIT: usize = 10_000;
/// Traces looked up by id for one query at most (candidates too few in
/// their unit to read it whole): beyond it the result is marked partial
/// rather than the search running for minutes.
pub const DEFAULT_MAX_CANDIDATE_TRACES: usize = 100_000;

/// A TraceQL search over a time range.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub query: Query,
    /// Spans starting at or after this time (unix nanoseconds) ...
    pub start_unix_nano: u64,
    /// ... and before this one.
    pub end_unix_nano: u64,
    /// Traces returned at most.
    pub limit: usize,
    /// Spans listed per spanset at most (the `matched` count is exact).
    pub spans_per_spanset: usize,
    /// Only traces lasting at least / at most this long (nanoseconds).
    pub min_trace_duration_nanos: Option<u64>,
    pub max_trace_duration_nanos: Option<u64>,
    /// Bound on the traces looked up by id (see
    /// [`DEFAULT_MAX_CANDIDATE_TRACES`]).
    pub max_candidate_traces: usize,
    /// Passes over a unit that may stop early (finding the limit in the
    /// newest data fast) before a whole-trace query reads the unit, and the
    /// older ones, whole and in parallel.
    pub early_passes: usize,
}

impl SearchRequest {
    /// A request for `query` over `[start, end)` with the default limits.
    pub fn new(
        query: Query,
        start_unix_nano: u64,
        end_unix_nano: u64,
    ) -> Result<SearchRequest, SearchError> {
        if end_unix_nano <= start_unix_nano {
            return Err(SearchError::Request(format!(
                "the time range is empty: end ({end_unix_nano}) is not after start ({start_unix_nano})"
            )));
        }
        Ok(SearchRequest {
            query,
            start_unix_nano,
            end_unix_nano,
            limit: DEFAULT_LIMIT,
            spans_per_spanset: DEFAULT_SPANS_PER_SPANSET,
            min_trace_duration_nanos: None,
            max_trace_duration_nanos: None,
            max_candidate_traces: DEFAULT_MAX_CANDIDATE_TRACES,
            early_passes: 3,
        })
    }

    /// Sets the trace limit, refusing 0 and more than [`MAX_LIMIT`].
    pub fn with_limit(mut self, limit: usize) -> Result<SearchRequest, SearchError> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(SearchError::Request(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {limit}"
            )));
        }
        self.limit = limit;
        Ok(self)
    }

    /// Whether a trace of this duration passes the duration bounds.
    pub(crate) fn duration_ok(&self, duration_nanos: u64) -> bool {
        self.min_trace_duration_nanos
            .is_none_or(|min| duration_nanos >= min)
            && self
                .max_trace_duration_nanos
                .is_none_or(|max| duration_nanos <= max)
    }
}
