//! `GET /api/v1/traces/{trace_id}`: a whole trace with its log records,
//! its span tree, the alerts whose evidence cites it and the references of
//! its stored payloads.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;
use tracewarden_model::TraceId;

use super::json::{LogJson, SpanJson};
use super::payloads::PayloadRef;
use super::trace_tree::{self, SpanLink, TreeNode};
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
    /// The span tree (see [`trace_tree`]).
    pub tree: Vec<TreeNode>,
    /// Alerts whose evidence cites this trace, newest first.
    pub alerts: Vec<TraceAlert>,
    /// Request and response bodies stored for its spans, by time.
    pub payloads: Vec<PayloadRef>,
}

/// An alert citing the trace (no actor values: a title, not who).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceAlert {
    pub fingerprint: String,
    pub rule_id: String,
    pub title: String,
    pub severity: String,
    pub state: &'static str,
    /// `/api/v1/alerts/{fingerprint}`.
    pub href: String,
}

/// The alerts whose evidence sample holds `trace_hex`. A scan over the
/// alerts in memory: at most `[alerts] max_alerts` (10 000), each with at
/// most `max_trace_ids` (20) trace ids, so at worst 200 000 comparisons of
/// short strings (about a millisecond), off the async workers; an index
/// kept in step with the engine would cost more than it saves.
fn citing_alerts(state: &ApiState, trace_hex: &str) -> Vec<TraceAlert> {
    use tracewarden_alert::alert::TITLE;
    use tracewarden_alert::labels;
    let Some(service) = state.pipeline.alerts() else {
        return Vec::new();
    };
    service.read(|engine| {
        let mut citing: Vec<_> = engine
            .alerts()
            .into_iter()
            .filter(|a| a.evidence.trace_ids.iter().any(|t| t == trace_hex))
            .collect();
        citing.sort_by(|a, b| {
            b.starts_at_unix_nano
                .cmp(&a.starts_at_unix_nano)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        citing
            .into_iter()
            .map(|a| TraceAlert {
                fingerprint: a.fingerprint.to_string(),
                rule_id: a.labels.get(labels::ALERTNAME).to_string(),
                title: a.annotation(TITLE).to_string(),
                severity: a.labels.get(labels::SEVERITY).to_string(),
                state: a.state.as_str(),
                href: format!("/api/v1/alerts/{}", a.fingerprint),
            })
            .collect()
    })
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
    let links: Vec<SpanLink> = trace
        .spans
        .iter()
        .map(|r| SpanLink {
            span_id: r.span.span_id,
            parent_span_id: r.span.parent_span_id,
            start_time_unix_nano: r.span.start_time_unix_nano,
        })
        .collect();
    let trace_hex = id.to_hex();
    let for_task = state.clone();
    let (tree, alerts) = tokio::task::spawn_blocking(move || {
        (
            trace_tree::build(&links),
            citing_alerts(&for_task, &trace_hex),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("trace view task failed: {e}")))?;
    let payloads: Vec<PayloadRef> = state
        .pipeline
        .payloads()
        .map(|p| p.store.list(&id).iter().map(PayloadRef::new).collect())
        .unwrap_or_default();
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
            tree,
            alerts,
            payloads,
        }),
    ))
}
