//! Tempo's probe and status endpoints: `/api/echo` (Grafana's "Save & test"
//! of a Tempo data source), `/ready`, and `/api/status/buildinfo` (Grafana
//! reads the version to decide which Tempo features to use).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::{ApiState, TempoError, plain_text};

/// `GET /api/echo`: `echo`, as plain text.
pub async fn echo() -> axum::response::Response {
    plain_text(StatusCode::OK, "echo")
}

/// `GET /ready`: `ready` once the WAL replay is done and the store is open,
/// 503 before.
pub async fn ready(State(state): State<ApiState>) -> Result<axum::response::Response, TempoError> {
    match state.pipeline.store() {
        Some(_) => Ok(plain_text(StatusCode::OK, "ready")),
        None => Err(TempoError::replaying()),
    }
}

/// Prometheus' build-information shape, which Tempo answers on
/// `/api/status/buildinfo`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// tracewarden's version. Grafana compares it with Tempo versions: below
    /// 2.2 it does not try Tempo's gRPC streaming, which tracewarden does not
    /// serve, and uses the HTTP endpoints.
    pub version: &'static str,
    pub revision: &'static str,
    pub branch: &'static str,
    pub build_user: &'static str,
    pub build_date: &'static str,
    /// Tempo reports its Go version; tracewarden is not written in Go.
    pub go_version: &'static str,
}

impl BuildInfo {
    /// What this binary knows about its build. Revision, branch, user and
    /// date come from the build environment when a release build sets them
    /// (`TRACEWARDEN_GIT_REVISION`, ...), and are empty otherwise.
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("TRACEWARDEN_GIT_REVISION").unwrap_or(""),
            branch: option_env!("TRACEWARDEN_GIT_BRANCH").unwrap_or(""),
            build_user: option_env!("TRACEWARDEN_BUILD_USER").unwrap_or(""),
            build_date: option_env!("TRACEWARDEN_BUILD_DATE").unwrap_or(""),
            go_version: "",
        }
    }
}

/// `GET /api/status/buildinfo`.
pub async fn buildinfo() -> Json<BuildInfo> {
    Json(BuildInfo::current())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildinfo_has_tempos_field_names() {
        let value = serde_json::to_value(BuildInfo::current()).unwrap_or_default();
        let mut keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "branch",
                "buildDate",
                "buildUser",
                "goVersion",
                "revision",
                "version"
            ]
        );
        assert_eq!(value["version"], env!("CARGO_PKG_VERSION"));
    }
}
