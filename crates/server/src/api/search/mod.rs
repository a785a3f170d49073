//! TraceQL search: `GET /api/v1/search` (ours: matched spans with every
//! attribute) and `GET /api/search` (Grafana Tempo's shape, for Grafana's
//! Tempo data source).

mod native;
mod params;
mod tempo;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use tracewarden_search::{SearchError, SearchRequest, SearchResult};

pub use params::SearchParams;

use super::{ApiError, ApiState};
use crate::auth::ResultCount;

/// `GET /api/v1/search?q=&start=&end=&since=&limit=&spss=`
pub async fn search_v1(
    State(state): State<ApiState>,
    Query(params): Query<SearchParams>,
) -> Result<(Extension<ResultCount>, Json<native::SearchResponse>), ApiError> {
    let request = params.request()?;
    let result = run(&state, request).await?;
    Ok((
        Extension(ResultCount(result.traces.len() as u64)),
        Json(native::SearchResponse::new(&result)),
    ))
}

/// `GET /api/search?q=&tags=&start=&end=&limit=&spss=&minDuration=&maxDuration=`
pub async fn search_tempo(
    State(state): State<ApiState>,
    Query(params): Query<SearchParams>,
) -> Result<(Extension<ResultCount>, Json<tempo::SearchResponse>), ApiError> {
    let request = params.request()?;
    let fields = tempo::shown_fields(&request);
    let result = run(&state, request).await?;
    Ok((
        Extension(ResultCount(result.traces.len() as u64)),
        Json(tempo::SearchResponse::new(&result, &fields)),
    ))
}

/// The native response for `result` as JSON (what `GET /api/v1/search`
/// answers; `tracewarden query --data-dir` prints the same).
pub fn native_json(result: &SearchResult) -> serde_json::Value {
    serde_json::to_value(native::SearchResponse::new(result)).unwrap_or(serde_json::Value::Null)
}

/// Runs the search off the async workers: it reads segment files.
async fn run(state: &ApiState, request: SearchRequest) -> Result<SearchResult, ApiError> {
    let store = state.pipeline.store().cloned().ok_or_else(|| {
        ApiError::Unavailable("the write-ahead log is being replayed".to_string())
    })?;
    tokio::task::spawn_blocking(move || tracewarden_search::search(&store, &request))
        .await
        .map_err(|e| ApiError::Internal(format!("search task failed: {e}")))?
        .map_err(|e| match e {
            SearchError::Query(_) | SearchError::Request(_) => ApiError::BadRequest(e.to_string()),
            SearchError::Store(e) => ApiError::Internal(e.to_string()),
        })
}
