//! The API's error shape: a status and `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to an API client. Client errors carry their message;
/// internal errors are logged once here and answered with a generic text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// TraceQL that does not parse: a 400 whose body also says where
    /// (`position`: byte offset, line, column), for a UI to point at.
    #[error("invalid TraceQL: {0}")]
    InvalidQuery(tracewarden_traceql::ParseError),
    #[error("{0}")]
    NotFound(String),
    /// The caller's key may call the route, but not ask this of it (a
    /// viewer filtering alerts by the actors it may not see).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    /// The request is understood but what it acts on is wrong (e.g. a
    /// reload of rule files that have mistakes).
    #[error("{0}")]
    Unprocessable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error in API handler");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": status.as_u16(), "message": message } });
        if let ApiError::InvalidQuery(e) = &self {
            body["error"]["position"] =
                json!({ "offset": e.offset, "line": e.line, "column": e.column });
        }
        (status, Json(body)).into_response()
    }
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for `{}`", uri.path()))
}
