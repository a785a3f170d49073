//! `GET /metrics`: Prometheus text format (see [`crate::metrics`]).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiState;

/// `GET /metrics`.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let text = state.metrics.render(
        &state.pipeline,
        state.blocks.as_ref().map(|g| g.list.as_ref()),
    );
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}
