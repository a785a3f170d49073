//! The HTTP API on the API port: traces, health and readiness, and the web
//! UI (`/`, `/ui/...`).

mod actors;
mod alerts;
mod audit;
pub mod blocks;
mod detections;
mod error;
mod graph;
mod health;
mod json;
mod metrics;
mod params;
mod payloads;
mod period;
mod reports;
mod search;
mod tempo;
mod trace_tree;
mod traces;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

pub use error::ApiError;
pub use search::{SearchParams, native_json};

use crate::pipeline::Pipeline;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub pipeline: Arc<Pipeline>,
    /// The blocklist, when `[blocks] enabled`.
    pub blocks: Option<Arc<blocks::Gate>>,
    /// What `GET /metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Keys and the audit log (`/api/v1/keys`, `/api/v1/audit`); None in
    /// tests and tools that build the router alone.
    pub auth: Option<Arc<crate::auth::Guard>>,
}

impl ApiState {
    /// The state with only the pipeline: no blocklist, metrics without
    /// ingest counters (tests, tools).
    pub fn new(pipeline: Arc<Pipeline>) -> ApiState {
        ApiState {
            pipeline,
            blocks: None,
            metrics: Arc::new(crate::metrics::Metrics::new(Default::default())),
            auth: None,
        }
    }
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/traces/{trace_id}", get(traces::get_trace))
        .route("/api/v1/search", get(search::search_v1))
        .route(
            "/api/v1/actors/{kind}/{value}/timeline",
            get(actors::timeline),
        )
        .route("/api/v1/detections", get(detections::list))
        .route("/api/v1/rules", get(detections::rules))
        .route("/api/v1/rules/reload", post(detections::reload))
        .route("/api/v1/decision", get(blocks::decision))
        .route("/api/v1/decision/nginx", get(blocks::nginx))
        .route("/api/v1/blocks", get(blocks::list).post(blocks::add))
        .route("/api/v1/blocks.txt", get(blocks::list_text))
        .route("/api/v1/blocks/history", get(blocks::history))
        .route("/api/v1/blocks/{kind}/{value}", delete(blocks::remove))
        .route("/metrics", get(metrics::metrics))
        .route("/api/search", get(search::search_tempo))
        .route("/api/v1/keys", get(audit::keys))
        .route("/api/v1/payloads", get(payloads::list).post(payloads::post))
        .route("/api/v1/payloads/{id}", get(payloads::get))
        .route("/api/v1/audit", get(audit::audit))
        .route("/api/v1/service-graph", get(graph::service_graph))
        .route("/api/dependencies", get(graph::dependencies))
        .route("/api/v1/reports/compliance", get(reports::compliance))
        // Alerts and silences (reads and actions apart, for auth to guard).
        .merge(alerts::routes())
        .merge(tempo::routes())
        // The web UI (docs/UI.md).
        .merge(ui::routes())
        .fallback(error::not_found)
        .with_state(state)
}
