//! `GET /api/v1/traces/{trace_id}`: a whole trace with its log records.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;
use tracewarden_model::TraceId;

use super::json::{LogJson, SpanJson};
use super::{ApiError, ApiState};
use crate::auth::ResultCount;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceResponse {
    pub trace_id: String,
    pub span_count: usize,
    pub log_count: usize,
    /// True when a segment holding part of the store could not be read:
    /// the trace may miss spans or log records (`unreadableSegments` says
    /// which, and why).
    pub incomplete: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_segments: Vec<String>,
    /// Spans by start time.
    pub spans: Vec<SpanJson>,
    /// Log records carrying the trace id, by time.
    pub logs: Vec<LogJson>,
}

pub async fn get_trace(
    State(state): State<ApiState>,
    Path(trace_id): Path<String>,
) -> Result<(Extension<ResultCount>, Json<TraceResponse>), ApiError> {
    // Zipkin's 64-bit ids are left-padded, as Tempo reads them.
    let id = TraceId::from_hex_padded(trace_id.trim())
        .map_err(|e| ApiError::BadRequest(format!("invalid trace id: {e}")))?;
    let store = state.pipeline.store().cloned().ok_or_else(|| {
        ApiError::Unavailable("the write-ahead log is being replayed".to_string())
    })?;
    // A lookup may read segment files: keep it off the async workers.
    let lookup = tokio::task::spawn_blocking(move || store.trace_checked(id))
        .await
        .map_err(|e| ApiError::Internal(format!("trace lookup task failed: {e}")))?;
    let unreadable_segments: Vec<String> = lookup
        .unreadable
        .iter()
        .map(|u| format!("segment {}: {}", u.segment, u.error))
        .collect();
    let trace = lookup.trace.ok_or_else(|| {
        if unreadable_segments.is_empty() {
            ApiError::NotFound(format!("trace {} not found", id.to_hex()))
        } else {
            ApiError::Internal(format!(
                "trace {} not found in the readable tiers; unreadable: {}",
                id.to_hex(),
                unreadable_segments.join("; ")
            ))
        }
    })?;
    let spans: Vec<SpanJson> = trace
        .spans
        .iter()
        .map(|r| SpanJson::new(&r.resource, &r.scope, &r.span))
        .collect();
    let logs: Vec<LogJson> = trace
        .logs
        .iter()
        .map(|e| LogJson::new(&e.resource, &e.scope, &e.record))
        .collect();
    // Spans and log records read, for the audit log.
    let read = (spans.len() + logs.len()) as u64;
    Ok((
        Extension(ResultCount(read)),
        Json(TraceResponse {
            trace_id: id.to_hex(),
            span_count: spans.len(),
            log_count: logs.len(),
            incomplete: !unreadable_segments.is_empty(),
            unreadable_segments,
            spans,
            logs,
        }),
    ))
}
