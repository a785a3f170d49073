//! `GET /api/v1/service-graph` and Jaeger's `GET /api/dependencies`: the
//! services and edges of a period ([`crate::graph`]).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tracewarden_detect::engine::TopologyPolicy;
use tracewarden_detect::rule::Site;

use super::period::{PeriodParams, now_unix_nano};
use super::{ApiError, ApiState};
use crate::auth::ResultCount;
use crate::graph::{self, ServiceGraph};

/// The site facts and topology policy the detector runs with (the
/// defaults when detection is off).
pub(super) fn site_and_policy(state: &ApiState) -> (Site, Arc<TopologyPolicy>) {
    match state.pipeline.detector() {
        Some(detector) => (detector.site().clone(), detector.topology_policy()),
        None => (Site::default(), Arc::default()),
    }
}

/// The graph of `[start, end)`, computed off the async workers.
async fn compute(state: &ApiState, start: u64, end: u64) -> Result<ServiceGraph, ApiError> {
    let snapshot = state
        .pipeline
        .store()
        .ok_or_else(|| ApiError::Unavailable("the write-ahead log is being replayed".to_string()))?
        .snapshot();
    let (site, policy) = site_and_policy(state);
    tokio::task::spawn_blocking(move || graph::build(&snapshot, start, end, &site, &policy))
        .await
        .map_err(|e| ApiError::Internal(format!("service graph task failed: {e}")))?
        .map_err(|e| ApiError::Unprocessable(e.to_string()))
}

pub async fn service_graph(
    State(state): State<ApiState>,
    Query(params): Query<PeriodParams>,
) -> Result<(Extension<ResultCount>, Json<ServiceGraph>), ApiError> {
    let (start, end) = params.resolve(now_unix_nano())?;
    let graph = compute(&state, start, end).await?;
    Ok((Extension(ResultCount(graph.spans)), Json(graph)))
}

/// Jaeger query's parameters: milliseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyParams {
    /// End of the period, Unix milliseconds (default: now).
    pub end_ts: Option<String>,
    /// Length of the period, milliseconds (default: 24 hours).
    pub lookback: Option<String>,
}

/// Jaeger's `model.DependencyLink`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

/// Jaeger query's `structuredResponse`.
#[derive(Debug, Serialize)]
pub struct Dependencies {
    pub data: Vec<DependencyLink>,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub errors: Option<Vec<String>>,
}

fn millis(text: Option<&str>, name: &str, default: u64) -> Result<u64, ApiError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("{name} must be milliseconds, not `{text}`"))
            }),
    }
}

/// Jaeger's dependency links: one per caller and callee (edge kinds
/// merged), as Jaeger UI's dependency view and Grafana's Jaeger data
/// source's node graph read them.
pub async fn dependencies(
    State(state): State<ApiState>,
    Query(params): Query<DependencyParams>,
) -> Result<(Extension<ResultCount>, Json<Dependencies>), ApiError> {
    let now = now_unix_nano();
    let end = millis(params.end_ts.as_deref(), "endTs", now)?;
    let lookback = millis(
        params.lookback.as_deref(),
        "lookback",
        super::period::DEFAULT_PERIOD_NANOS,
    )?;
    if lookback == 0 {
        return Err(ApiError::BadRequest("lookback must be above 0".to_string()));
    }
    let graph = compute(&state, end.saturating_sub(lookback), end).await?;
    let mut data: Vec<DependencyLink> = Vec::new();
    for edge in graph.edges {
        match data.last_mut() {
            // Edges come sorted by caller and callee: kinds are adjacent.
            Some(last) if last.parent == edge.caller && last.child == edge.callee => {
                last.call_count += edge.calls;
            }
            _ => data.push(DependencyLink {
                parent: edge.caller,
                child: edge.callee,
                call_count: edge.calls,
            }),
        }
    }
    Ok((
        Extension(ResultCount(graph.spans)),
        Json(Dependencies {
            total: data.len(),
            data,
            limit: 0,
            offset: 0,
            errors: None,
        }),
    ))
}
