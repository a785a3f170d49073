//! Why a search failed.

use tracewarden_store::StoreError;
use tracewarden_traceql::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is not valid TraceQL, or uses a part tracewarden does not
    /// support (the message says which).
    #[error("invalid query: {0}")]
    Query(#[from] ParseError),
    /// The request's parameters do not make sense (an empty time range...).
    #[error("invalid request: {0}")]
    Request(String),
    /// A segment could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}
