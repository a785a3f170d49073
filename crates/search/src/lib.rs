//! TraceQL search over the store: the engine behind `tracewarden query`,
//! `GET /api/v1/search` and Tempo's `GET /api/search`.
//!
//! ```
//! use tracewarden_search::{SearchError, SearchRequest, search};
//! use tracewarden_store::Store;
//!
//! fn failed_logins(store: &Store) -> Result<(), Box<dyn std::error::Error>> {
//!     let query = tracewarden_traceql::parse("{ span.http.response.status_code = 401 }")?;
//!     let request = SearchRequest::new(query, 0, u64::MAX)?.with_limit(20)?;
//!     for found in search(store, &request)?.traces {
//!         println!("{} {:?}", found.trace_id, found.root_span_name);
//!     }
//!     Ok(())
//! }
//! # let _ = failed_logins;
//! # let _: Option<SearchError> = None;
//! ```

mod error;
mod execute;
mod pushdown;
mod request;
mod result;
mod time;

pub use error::SearchError;
pub use execute::{MAX_BUFFERED_SPANS, search, search_snapshot};
pub use pushdown::Pushdown;
pub use request::{
    DEFAULT_LIMIT, DEFAULT_MAX_CANDIDATE_TRACES, DEFAULT_SPANS_PER_SPANSET, MAX_LIMIT,
    SearchRequest,
};
pub use result::{
    MatchedSpan, MatchedSpanSet, SearchMetrics, SearchResult, ServiceStats, TraceMatch,
};
pub use time::{format_time, parse_duration, parse_time};
