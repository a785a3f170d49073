//! Block decisions and the blocklist over HTTP (docs/PREVENTION.md):
//!
//! - `GET /api/v1/decision?address=&user=&authorization=`: allow or deny,
//!   with the reason, as JSON;
//! - `GET /api/v1/decision/nginx`: for nginx `auth_request`: the client
//!   from `X-Forwarded-For` (first hop from the right not in
//!   `trusted_proxies`) or `X-Real-IP`, the user from `user_header`, the
//!   token from `Authorization`; 200, or 403 with `X-Tracewarden-Reason`;
//! - `GET /api/v1/blocks`, `GET /api/v1/blocks.txt` (addresses and ranges,
//!   one a line), `POST /api/v1/blocks`, `DELETE /api/v1/blocks/{kind}/{value}`,
//!   `GET /api/v1/blocks/history`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState};
use crate::blocks::{
    Block, BlockKind, BlockRequest, Blocklist, BlocksConfig, BlocksError, Change, HistoryEntry,
    Target, format_time, net, now_unix_ms, token,
};

/// The blocklist and how gateways' requests are read.
pub struct Gate {
    pub list: Arc<Blocklist>,
    trusted: Vec<net::IpNet>,
    user_header: HeaderName,
}

impl Gate {
    /// Fails when `config.user_header` is not a header name.
    pub fn new(list: Arc<Blocklist>, config: &BlocksConfig) -> Result<Gate, String> {
        config.validate()?;
        let user_header = HeaderName::from_bytes(config.user_header.as_bytes())
            .map_err(|e| format!("[blocks] user_header: {e}"))?;
        Ok(Gate {
            list,
            trusted: config.trusted_proxies.clone(),
            user_header,
        })
    }
}

/// The header with the reason of a deny.
pub const REASON_HEADER: &str = "x-tracewarden-reason";
/// Longest reason header, in bytes.
const MAX_REASON_HEADER: usize = 512;
/// Most history entries answered.
pub const MAX_HISTORY: usize = 10_000;

fn gate(state: &ApiState) -> Result<&Arc<Gate>, ApiError> {
    state
        .blocks
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("blocks are off (`[blocks] enabled = false`)".into()))
}

fn api_error(error: BlocksError) -> ApiError {
    match error {
        BlocksError::Invalid(message) => ApiError::BadRequest(message),
        BlocksError::Full(_) => ApiError::Unprocessable(error.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

fn kind(text: &str) -> Result<BlockKind, ApiError> {
    BlockKind::from_name(text.trim()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown block kind `{text}` (expected address, user or token)"
        ))
    })
}

/// A block as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockJson {
    pub kind: &'static str,
    pub value: String,
    pub reason: String,
    pub by: String,
    pub created: String,
    pub created_unix_ms: u64,
    /// Absent: until removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_unix_ms: Option<u64>,
}

fn block_json(b: &Block) -> BlockJson {
    BlockJson {
        kind: b.kind.as_str(),
        value: b.value.clone(),
        reason: b.reason.clone(),
        by: b.by.clone(),
        created: format_time(b.created_unix_ms),
        created_unix_ms: b.created_unix_ms,
        until: b.until_unix_ms.map(format_time),
        until_unix_ms: b.until_unix_ms,
    }
}

/// Why a request is denied, in one line.
fn reason(b: &Block) -> String {
    let until = b.until_unix_ms.map_or_else(
        || "until removed".to_string(),
        |u| format!("until {}", format_time(u)),
    );
    format!(
        "{} {} blocked by {} {until}: {}",
        b.kind.as_str(),
        b.value,
        b.by,
        b.reason
    )
}

/// Unknown parameters are refused: a gateway configured with a misspelt
/// one (`client_address=`) would otherwise be told `allow` for a blocked
/// address.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionParams {
    pub address: Option<String>,
    pub user: Option<String>,
    /// The request's `Authorization` value (or a token fingerprint).
    pub authorization: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionJson {
    /// `allow` or `deny`.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockJson>,
}

fn token_of(authorization: Option<&str>) -> Option<String> {
    let value = authorization.map(str::trim).filter(|a| !a.is_empty())?;
    Some(if token::is_fingerprint(value) {
        value.to_string()
    } else {
        token::fingerprint(value)
    })
}

/// `GET /api/v1/decision`.
pub async fn decision(
    State(state): State<ApiState>,
    Query(params): Query<DecisionParams>,
) -> Result<Json<DecisionJson>, ApiError> {
    let gate = gate(&state)?;
    if params.address.is_none() && params.user.is_none() && params.authorization.is_none() {
        return Err(ApiError::BadRequest(
            "ask about at least one of `address`, `user` and `authorization` (an empty value is an anonymous request)".to_string(),
        ));
    }
    let address = match params.address.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            net::parse_hop(text)
                .ok_or_else(|| ApiError::BadRequest(format!("`{text}` is not an IP address")))?,
        ),
    };
    let token = token_of(params.authorization.as_deref());
    let found = gate.list.decide(
        address,
        params.user.as_deref(),
        token.as_deref(),
        now_unix_ms(),
    );
    Ok(Json(match found {
        None => DecisionJson {
            decision: "allow",
            reason: None,
            until: None,
            block: None,
        },
        Some(b) => DecisionJson {
            decision: "deny",
            reason: Some(reason(&b)),
            until: b.until_unix_ms.map(format_time),
            block: Some(block_json(&b)),
        },
    }))
}

/// A header value from text: printable ASCII kept, the rest `?`, cut to
/// [`MAX_REASON_HEADER`] bytes.
fn header_text(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .take(MAX_REASON_HEADER)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("blocked"))
}

/// `GET /api/v1/decision/nginx`, for `auth_request`.
pub async fn nginx(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let gate = gate(&state)?;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let address = net::client_address(forwarded, text("x-real-ip"), &gate.trusted);
    let user = headers.get(&gate.user_header).and_then(|v| v.to_str().ok());
    let token = token_of(text("authorization"));
    let found = gate
        .list
        .decide(address, user, token.as_deref(), now_unix_ms());
    Ok(match found {
        None => StatusCode::OK.into_response(),
        Some(b) => {
            let mut response = (StatusCode::FORBIDDEN, reason(&b)).into_response();
            response
                .headers_mut()
                .insert(REASON_HEADER, header_text(&reason(&b)));
            response
        }
    })
}

#[derive(Serialize)]
pub struct BlocksResponse {
    pub blocks: Vec<BlockJson>,
}

/// `GET /api/v1/blocks`.
pub async fn list(State(state): State<ApiState>) -> Result<Json<BlocksResponse>, ApiError> {
    let gate = gate(&state)?;
    Ok(Json(BlocksResponse {
        blocks: gate
            .list
            .list(now_unix_ms())
            .iter()
            .map(block_json)
            .collect(),
    }))
}

/// `GET /api/v1/blocks.txt`: the addresses and ranges blocked, one a line
/// (for nginx `geo` includes, ipset, firewalls).
pub async fn list_text(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let gate = gate(&state)?;
    let mut text = String::new();
    for b in gate.list.list(now_unix_ms()) {
        if b.kind == BlockKind::Address {
            text.push_str(&b.value);
            text.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    pub kind: String,
    pub value: String,
    /// `1h`, `30m`, ... (at most `7d`); absent: until removed.
    pub duration: Option<String>,
    pub reason: String,
    pub by: String,
}

#[derive(Serialize)]
pub struct BlockChangeJson {
    /// `added`, `extended` or `unchanged`.
    pub change: &'static str,
    pub block: Option<BlockJson>,
}

/// `POST /api/v1/blocks`: a block by an analyst.
pub async fn add(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let gate = gate(&state)?.clone();
    let body: BlockBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid block: {e}")))?;
    let duration = match body.duration.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            tracewarden_detect::rule::parse_duration(text)
                .map_err(|e| ApiError::BadRequest(format!("invalid duration `{text}`: {e}")))?,
        ),
    };
    let target = Target::parse(kind(&body.kind)?, &body.value).map_err(api_error)?;
    let request = BlockRequest {
        target: target.clone(),
        duration,
        reason: body.reason,
        by: body.by,
    };
    let list = Arc::clone(&gate.list);
    let (change, block) = tokio::task::spawn_blocking(move || {
        let now = now_unix_ms();
        let change = list.apply(&[request], now)?;
        let block = list
            .list(now)
            .into_iter()
            .find(|b| b.kind == target.kind && b.value == target.value);
        Ok::<_, BlocksError>((change.first().copied(), block))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(api_error)?;
    let (status, change) = match change {
        Some(Change::Added) => (StatusCode::CREATED, "added"),
        Some(Change::Extended) => (StatusCode::OK, "extended"),
        _ => (StatusCode::OK, "unchanged"),
    };
    Ok((
        status,
        Json(BlockChangeJson {
            change,
            block: block.as_ref().map(block_json),
        }),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct UnblockParams {
    pub by: Option<String>,
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct UnblockJson {
    pub removed: BlockJson,
}

/// `DELETE /api/v1/blocks/{kind}/{value}?by=&reason=`.
pub async fn remove(
    State(state): State<ApiState>,
    Path((kind_text, value)): Path<(String, String)>,
    Query(params): Query<UnblockParams>,
) -> Result<Json<UnblockJson>, ApiError> {
    let gate = gate(&state)?.clone();
    let target = Target::parse(kind(&kind_text)?, &value).map_err(api_error)?;
    let by = params
        .by
        .ok_or_else(|| ApiError::BadRequest("`by` is required: who unblocks".into()))?;
    let reason = params
        .reason
        .ok_or_else(|| ApiError::BadRequest("`reason` is required: why".into()))?;
    let list = Arc::clone(&gate.list);
    let shown = target.value.clone();
    let removed =
        tokio::task::spawn_blocking(move || list.unblock(&target, &by, &reason, now_unix_ms()))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(api_error)?;
    match removed {
        Some(b) => Ok(Json(UnblockJson {
            removed: block_json(&b),
        })),
        None => Err(ApiError::NotFound(format!(
            "no {} block in force for `{shown}`",
            kind_text.trim()
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    pub limit: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryJson {
    pub at: String,
    pub at_unix_ms: u64,
    pub action: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub by: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

fn history_json(e: &HistoryEntry) -> HistoryJson {
    HistoryJson {
        at: format_time(e.at_unix_ms),
        at_unix_ms: e.at_unix_ms,
        action: e.action.as_str(),
        kind: e.kind.as_str(),
        value: e.value.clone(),
        by: e.by.clone(),
        reason: e.reason.clone(),
        until: e.until_unix_ms.map(format_time),
    }
}

#[derive(Serialize)]
pub struct HistoryResponse {
    /// Oldest first.
    pub history: Vec<HistoryJson>,
}

/// `GET /api/v1/blocks/history?limit=` (default 100).
pub async fn history(
    State(state): State<ApiState>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let gate = gate(&state)?.clone();
    let limit = super::params::limit(params.limit.as_deref(), 100, MAX_HISTORY)?;
    let entries = tokio::task::spawn_blocking(move || gate.list.history(limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(api_error)?;
    Ok(Json(HistoryResponse {
        history: entries.iter().map(history_json).collect(),
    }))
}
