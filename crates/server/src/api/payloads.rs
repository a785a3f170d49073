//! The payload store's API (docs/PAYLOADS.md):
//!
//! - `POST /api/v1/payloads?traceId=&spanId=&kind=request|response[&truncated=true]`
//!   (role ingest): the raw body with its `Content-Type`; 201 with the
//!   stored payload's reference once it is durable.
//! - `GET /api/v1/payloads?traceId=` (role analyst): the references of a
//!   trace's payloads.
//! - `GET /api/v1/payloads/{id}` (role analyst): the (redacted) body with
//!   its content type, as an attachment the browser never renders.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracewarden_model::{SpanId, TraceId};
use tracewarden_store::{NewPayload, PayloadKind, PayloadMeta};

use super::{ApiError, ApiState};
use crate::auth::ResultCount;
use crate::payloads::{Payloads, Rejection, body, now_unix_nano};

/// A payload's reference, as the trace view and the listing show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadRef {
    pub id: String,
    pub trace_id: String,
    pub span_id: String,
    pub kind: &'static str,
    pub content_type: String,
    /// Bytes of the stored (redacted) body.
    pub size: u64,
    /// When it was stored, unix nanoseconds.
    pub time: String,
    /// The sender cut the body before sending it.
    pub truncated: bool,
    /// Values masked or hashed in it before it was stored.
    pub redactions: u64,
    /// `/api/v1/payloads/{id}`.
    pub href: String,
}

impl PayloadRef {
    pub fn new(meta: &PayloadMeta) -> PayloadRef {
        PayloadRef {
            id: meta.id.clone(),
            trace_id: meta.trace_id.to_hex(),
            span_id: meta.span_id.to_hex(),
            kind: meta.kind.as_str(),
            content_type: meta.content_type.clone(),
            size: meta.size,
            time: meta.time_unix_nano.to_string(),
            truncated: meta.truncated,
            redactions: meta.redactions,
            href: format!("/api/v1/payloads/{}", meta.id),
        }
    }
}

/// A refused body: the status, counted by reason.
struct Refused(StatusCode, Rejection, String);

impl Refused {
    fn bad(message: impl Into<String>) -> Refused {
        Refused(
            StatusCode::BAD_REQUEST,
            Rejection::BadRequest,
            message.into(),
        )
    }

    fn response(self, payloads: Option<&Payloads>) -> Response {
        let Refused(status, why, message) = self;
        if let Some(payloads) = payloads {
            payloads.count_rejected(why);
        }
        let body = json!({ "error": { "code": status.as_u16(), "message": message } });
        (status, Json(body)).into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostParams {
    trace_id: Option<String>,
    span_id: Option<String>,
    kind: Option<String>,
    truncated: Option<String>,
}

/// What a POST names, checked.
struct Target {
    trace_id: TraceId,
    span_id: SpanId,
    kind: PayloadKind,
    truncated: bool,
}

fn target(params: &PostParams) -> Result<Target, Refused> {
    let required = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Refused::bad(format!("`{name}` is required")))
    };
    let trace_id = TraceId::from_hex_padded(&required(&params.trace_id, "traceId")?)
        .map_err(|e| Refused::bad(format!("invalid traceId: {e}")))?;
    let span_id = SpanId::from_hex(&required(&params.span_id, "spanId")?)
        .map_err(|e| Refused::bad(format!("invalid spanId: {e}")))?;
    let kind_text = required(&params.kind, "kind")?;
    let kind = PayloadKind::parse(&kind_text).ok_or_else(|| {
        Refused::bad(format!(
            "invalid kind `{kind_text}` (expected request or response)"
        ))
    })?;
    let truncated = match params.truncated.as_deref().map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Refused::bad(format!(
                "invalid truncated `{other}` (expected true or false)"
            )));
        }
    };
    Ok(Target {
        trace_id,
        span_id,
        kind,
        truncated,
    })
}

fn too_large(limit: usize) -> Refused {
    Refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        Rejection::TooLarge,
        format!(
            "the body is larger than the limit of {limit} bytes (`[payloads] max_bytes`); cut it and send truncated=true"
        ),
    )
}

/// Reads the body, refusing it (413) as soon as it passes `limit`.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Refused::bad(format!("cannot read the body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `POST /api/v1/payloads`.
pub async fn post(
    State(state): State<ApiState>,
    params: Result<Query<PostParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(payloads) = state.pipeline.payloads().cloned() else {
        return ApiError::Unavailable("the payload store is not open".into()).into_response();
    };
    match store(&state, &payloads, params, &headers, body).await {
        Ok(reference) => (StatusCode::CREATED, Json(reference)).into_response(),
        Err(refused) => refused.response(Some(&payloads)),
    }
}

async fn store(
    state: &ApiState,
    payloads: &std::sync::Arc<Payloads>,
    params: Result<Query<PostParams>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<PayloadRef, Refused> {
    if !payloads.config.enabled {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            Rejection::Disabled,
            "the payload store does not accept bodies (`[payloads] enabled = false`)".into(),
        ));
    }
    let Query(params) =
        params.map_err(|e| Refused::bad(format!("invalid query: {}", e.body_text())))?;
    let target = target(&params)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| {
            v.to_str()
                .map_err(|_| "the Content-Type is not ASCII".to_string())
        })
        .transpose()
        .and_then(body::media_type)
        .map_err(|message| {
            Refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Rejection::UnsupportedType,
                message,
            )
        })?;
    let limit = payloads.config.max_bytes;
    // A declared length over the limit is refused before reading.
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(too_large(limit));
    }
    let raw = read_limited(body, limit).await?;
    // Checked before the write; concurrent posts may pass the bound by a
    // few bodies at most.
    let total = payloads.config.max_total_bytes;
    if payloads
        .store
        .stats()
        .bytes
        .saturating_add(raw.len() as u64)
        > total
    {
        return Err(Refused(
            StatusCode::INSUFFICIENT_STORAGE,
            Rejection::Full,
            format!(
                "the payload store holds its limit of {total} bytes (`[payloads] max_total_bytes`); payloads are freed as their retention passes"
            ),
        ));
    }
    let redactor = state.pipeline.redactor().cloned();
    let payloads = payloads.clone();
    let stored = tokio::task::spawn_blocking(move || {
        // Redaction before anything touches the disk.
        let redacted = body::redact(redactor.as_deref(), content_type.kind, &raw);
        let new = NewPayload {
            trace_id: target.trace_id,
            span_id: target.span_id,
            kind: target.kind,
            content_type: content_type.content_type,
            time_unix_nano: now_unix_nano(),
            truncated: target.truncated,
            redactions: redacted.redactions,
        };
        let meta = payloads.store.put(new, redacted.text.as_bytes());
        if let Ok(meta) = &meta {
            payloads.count_stored(meta.size);
        }
        meta
    })
    .await;
    match stored {
        Ok(Ok(meta)) => Ok(PayloadRef::new(&meta)),
        Ok(Err(error)) => {
            tracing::error!(%error, "a payload could not be stored");
            Err(Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                Rejection::Failed,
                "the payload could not be stored".into(),
            ))
        }
        Err(error) => {
            tracing::error!(%error, "the payload store task failed");
            Err(Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                Rejection::Failed,
                "the payload could not be stored".into(),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    trace_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub trace_id: String,
    pub payloads: Vec<PayloadRef>,
}

fn payloads(state: &ApiState) -> Result<std::sync::Arc<Payloads>, ApiError> {
    state
        .pipeline
        .payloads()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("the payload store is not open".into()))
}

/// `GET /api/v1/payloads?traceId=`.
pub async fn list(
    State(state): State<ApiState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<(Extension, Json<ListResponse>), ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let text = params
        .trace_id
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("`traceId` is required".into()))?;
    let trace_id = TraceId::from_hex_padded(text)
        .map_err(|e| ApiError::BadRequest(format!("invalid traceId: {e}")))?;
    let refs: Vec<PayloadRef> = payloads(&state)?
        .store
        .list(&trace_id)
        .iter()
        .map(PayloadRef::new)
        .collect();
    Ok((
        axum::Extension(ResultCount(refs.len() as u64)),
        Json(ListResponse {
            trace_id: trace_id.to_hex(),
            payloads: refs,
        }),
    ))
}

type Extension = axum::Extension<ResultCount>;

/// `GET /api/v1/payloads/{id}`: the body as stored (redacted), never
/// rendered by a browser (`nosniff`, an attachment, a sandboxing CSP).
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let payloads = payloads(&state)?;
    let lookup = id.clone();
    let found = tokio::task::spawn_blocking(move || payloads.store.get(&lookup))
        .await
        .map_err(|e| ApiError::Internal(format!("payload read task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some((meta, bytes)) = found else {
        return Err(ApiError::NotFound(format!("payload `{id}` not found")));
    };
    let content_type = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"payload-{}-{}.txt\"",
        meta.id,
        meta.kind.as_str()
    ))
    .unwrap_or(HeaderValue::from_static("attachment"));
    let mut response = (
        axum::Extension(ResultCount(1)),
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-payload-trace-id", meta.trace_id.to_hex()),
        ("x-payload-span-id", meta.span_id.to_hex()),
        ("x-payload-kind", meta.kind.as_str().to_string()),
        ("x-payload-truncated", meta.truncated.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}
