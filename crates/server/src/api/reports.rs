//! `GET /api/v1/reports/compliance?start=&end=&format=json|csv|html`: the
//! compliance report of a period ([`crate::compliance`]).

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::graph::site_and_policy;
use super::period::{PeriodParams, now_unix_nano};
use super::{ApiError, ApiState};
use crate::auth::ResultCount;
use crate::compliance::{self, Inputs, render};

#[derive(Debug, Default, Deserialize)]
pub struct ReportParams {
    pub start: Option<String>,
    pub end: Option<String>,
    pub since: Option<String>,
    /// `json` (default), `csv` or `html`.
    pub format: Option<String>,
}

pub async fn compliance(
    State(state): State<ApiState>,
    Query(params): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let format = params
        .format
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .unwrap_or("json")
        .to_ascii_lowercase();
    if !["json", "csv", "html"].contains(&format.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "format must be json, csv or html, not `{format}`"
        )));
    }
    let now = now_unix_nano();
    let (start, end) = PeriodParams {
        start: params.start,
        end: params.end,
        since: params.since,
    }
    .resolve(now)?;
    let store = state.pipeline.store().cloned().ok_or_else(|| {
        ApiError::Unavailable("the write-ahead log is being replayed".to_string())
    })?;
    let (site, _) = site_and_policy(&state);
    let alerts = state.pipeline.alerts().cloned();
    let report = tokio::task::spawn_blocking(move || {
        let alerts: Vec<tracewarden_alert::Alert> = alerts
            .map(|a| a.read(|engine| engine.alerts().into_iter().cloned().collect()))
            .unwrap_or_default();
        let snapshot = store.snapshot();
        let verify = || store.verify_integrity().map_err(|e| e.to_string());
        let inputs = Inputs {
            start,
            end,
            now,
            site: &site,
            alerts: &alerts,
            verify: &verify,
        };
        compliance::build(&snapshot, inputs)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("compliance report task failed: {e}")))?
    .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let read = Extension(ResultCount(report.summary.spans));
    Ok(match format.as_str() {
        "csv" => (
            read,
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    CONTENT_DISPOSITION,
                    "attachment; filename=\"compliance-report.csv\"",
                ),
            ],
            render::csv(&report),
        )
            .into_response(),
        "html" => (
            read,
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            render::html(&report),
        )
            .into_response(),
        _ => (read, axum::Json(report)).into_response(),
    })
}
