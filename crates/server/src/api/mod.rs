//! The HTTP API on the API port: traces, health and readiness.

mod alerts;
mod detections;
mod error;
mod health;
mod json;
mod search;
mod tempo;
mod traces;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use error::ApiError;
pub use search::{SearchParams, native_json};

use crate::pipeline::Pipeline;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub pipeline: Arc<Pipeline>,
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/traces/{trace_id}", get(traces::get_trace))
        .route("/api/v1/search", get(search::search_v1))
        .route("/api/v1/detections", get(detections::list))
        .route("/api/v1/rules", get(detections::rules))
        .route("/api/v1/rules/reload", post(detections::reload))
        .route("/api/search", get(search::search_tempo))
        // Alerts and silences (reads and actions apart, for auth to guard).
        .merge(alerts::routes())
        .merge(tempo::routes())
        .fallback(error::not_found)
        .with_state(state)
}
