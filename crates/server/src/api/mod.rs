//! The HTTP API on the API port: traces, health and readiness.

mod error;
mod health;
mod json;
mod traces;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use error::ApiError;

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
        .fallback(error::not_found)
        .with_state(state)
}
