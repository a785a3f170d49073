//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ApiState;

/// Alive as soon as the API listens.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready once the WAL replay has finished and the receivers accept data.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    match state.pipeline.store() {
        Some(store) => {
            let stats = store.stats();
            (
                StatusCode::OK,
                Json(json!({ "status": "ready", "store": stats })),
            )
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "replaying", "message": "the write-ahead log is being replayed" }),
            ),
        ),
    }
}
