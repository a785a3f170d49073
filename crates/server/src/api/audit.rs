//! `GET /api/v1/keys` (the keys, without their secrets) and
//! `GET /api/v1/audit?since=&key=&limit=` (the audit log, newest first),
//! for admins (auth::routes).

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tracewarden_search::{parse_duration, parse_time};

use super::{ApiError, ApiState};
use crate::auth::{Guard, ResultCount, audit};

/// Entries answered at most by one audit request.
pub const MAX_LIMIT: usize = 10_000;
const DEFAULT_LIMIT: usize = 100;

fn guard(state: &ApiState) -> Result<&std::sync::Arc<Guard>, ApiError> {
    state
        .auth
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("auth is not running here".into()))
}

/// `GET /api/v1/keys`.
pub async fn keys(
    State(state): State<ApiState>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let store = guard(&state)?.store().clone();
    let records = tokio::task::spawn_blocking(move || store.load())
        .await
        .map_err(|e| ApiError::Internal(format!("keys task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let keys: Vec<Value> = records
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "name": k.name,
                "role": k.role,
                "created": k.created(),
                "revoked": k.revoked(),
            })
        })
        .collect();
    Ok((
        Extension(ResultCount(keys.len() as u64)),
        Json(json!({ "keys": keys })),
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    pub since: Option<String>,
    pub key: Option<String>,
    pub limit: Option<String>,
}

/// `GET /api/v1/audit`.
pub async fn audit(
    State(state): State<ApiState>,
    Query(params): Query<AuditParams>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let dir = guard(&state)?.audit_dir().to_path_buf();
    let limit = super::params::limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let now = crate::blocks::now_unix_ms();
    let since_unix_ms = match params.since.as_deref().map(str::trim) {
        None | Some("") => None,
        // A duration ago (`1h`) or a time (RFC 3339, Unix seconds).
        Some(text) => Some(match parse_duration(text) {
            Ok(ago) => now.saturating_sub(ago / 1_000_000),
            Err(_) => {
                parse_time(text).map_err(|e| {
                    ApiError::BadRequest(format!(
                        "since must be a duration (1h) or a time (RFC 3339, Unix seconds): {e}"
                    ))
                })? / 1_000_000
            }
        }),
    };
    let filter = audit::Filter {
        since_unix_ms,
        key: params.key.filter(|k| !k.trim().is_empty()),
        limit,
    };
    let entries = tokio::task::spawn_blocking(move || audit::read(&dir, &filter))
        .await
        .map_err(|e| ApiError::Internal(format!("audit task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        Extension(ResultCount(entries.len() as u64)),
        Json(json!({ "entries": entries })),
    ))
}
