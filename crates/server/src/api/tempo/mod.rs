//! A Tempo-compatible HTTP API, so Grafana's Tempo data source works when
//! pointed at tracewarden's API port: trace by id (v1 and v2, JSON and
//! protobuf), tag names and tag values (v1 and v2), and Tempo's probes.
//! TraceQL search (`/api/search`) lives elsewhere.
//!
//! Errors are plain text with the status code, as Tempo answers them (not
//! the `{"error": ...}` JSON of tracewarden's own endpoints).
//! docs/TEMPO_API.md describes every endpoint and what differs from Tempo.

mod otlp_json;
mod otlp_proto;
mod status;
mod tags;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prost::Message as _;
use serde_json::json;
use tracewarden_model::{SpanRecord, Trace, TraceId};
use tracewarden_store::SpanFilter;

use super::ApiState;
use otlp_proto::TraceByIdResponse;
use tags::{DEFAULT_MAX_TAG_NAMES, DEFAULT_MAX_TAG_VALUES, Tag, TagScope};

/// The tag endpoints look at no more than this many spans of the range (the
/// first ones by start time), so one request's memory and time are bounded
/// whatever the range holds.
pub const MAX_SPANS_INSPECTED: usize = 100_000;

/// The range of the tag endpoints when the request gives neither `start`
/// nor `end`: the last hour. (Tempo then looks at its recent, not yet
/// flushed, data.)
pub const DEFAULT_RANGE_SECONDS: u64 = 3_600;

const PROTOBUF: &str = "application/protobuf";

/// The Tempo routes, to merge into the API router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/traces/{trace_id}", get(trace_v1))
        .route("/api/v2/traces/{trace_id}", get(trace_v2))
        .route("/api/search/tags", get(search_tags_v1))
        .route("/api/v2/search/tags", get(search_tags_v2))
        .route("/api/search/tag/{tag}/values", get(tag_values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tag_values_v2))
        .route("/api/echo", get(status::echo))
        .route("/ready", get(status::ready))
        .route("/api/status/buildinfo", get(status::buildinfo))
}

/// An error answered to a Tempo client: a status and a plain-text message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TempoError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl TempoError {
    fn replaying() -> TempoError {
        TempoError::Unavailable("not ready: the write-ahead log is being replayed".to_string())
    }
}

impl IntoResponse for TempoError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            TempoError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            TempoError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            TempoError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            TempoError::Internal(detail) => {
                tracing::error!(%detail, "internal error in a Tempo API handler");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        plain_text(status, message)
    }
}

impl From<tags::TagError> for TempoError {
    fn from(e: tags::TagError) -> Self {
        TempoError::BadRequest(e.to_string())
    }
}

fn plain_text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn json_response(body: &serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn protobuf_response(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, PROTOBUF)], bytes).into_response()
}

/// Whether the client asked for protobuf (`Accept: application/protobuf`,
/// as Grafana sends; `application/x-protobuf` too).
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|media| media.split(';').next().unwrap_or("").trim())
        .any(|media| {
            media.eq_ignore_ascii_case(PROTOBUF)
                || media.eq_ignore_ascii_case("application/x-protobuf")
        })
}

/// Reads a trace id as Tempo does: up to 32 hex digits, left-padded with
/// zeroes (64-bit ids of older tracers, leading zeroes dropped).
pub fn parse_trace_id(text: &str) -> Result<TraceId, TempoError> {
    let text = text.trim();
    if let Some((position, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        let c: String = c.escape_default().collect();
        return Err(TempoError::BadRequest(format!(
            "trace IDs can only contain hex characters: invalid character '{c}' at position {}",
            position + 1
        )));
    }
    if text.len() > TraceId::LEN * 2 {
        return Err(TempoError::BadRequest(
            "trace IDs can't be larger than 128 bits".to_string(),
        ));
    }
    TraceId::from_hex_padded(text)
        .map_err(|e| TempoError::BadRequest(format!("invalid trace id: {e}")))
}

/// An optional unix-seconds parameter.
fn seconds(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, TempoError> {
    match params.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
            TempoError::BadRequest(format!(
                "invalid {name}: `{}` is not unix epoch seconds",
                text.chars().take(64).collect::<String>()
            ))
        }),
    }
}

/// `start` and `end` in unix seconds, `start <= end`, either may be absent.
fn start_end(params: &HashMap<String, String>) -> Result<(Option<u64>, Option<u64>), TempoError> {
    let start = seconds(params, "start")?;
    let end = seconds(params, "end")?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(TempoError::BadRequest(format!(
            "invalid start and end: start ({s}) is after end ({e})"
        )));
    }
    Ok((start, end))
}

/// The time range of a tag request as `[start, end)` in unix nanoseconds:
/// `start` and `end` are whole seconds, both included; a missing end is now,
/// a missing start one hour before the end.
fn tag_range(params: &HashMap<String, String>) -> Result<(u64, u64), TempoError> {
    let (start, end) = start_end(params)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let end = end.unwrap_or_else(|| now.max(start.unwrap_or(0)));
    let start = start.unwrap_or_else(|| end.saturating_sub(DEFAULT_RANGE_SECONDS));
    const NANOS: u64 = 1_000_000_000;
    Ok((
        start.saturating_mul(NANOS),
        end.saturating_add(1).saturating_mul(NANOS),
    ))
}

/// The `limit` parameter; absent or 0 is `default`.
fn limit(params: &HashMap<String, String>, default: usize) -> Result<usize, TempoError> {
    match params.get("limit").map(|v| v.trim()) {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(0) => Ok(default),
            Ok(n) => Ok(n),
            Err(_) => Err(TempoError::BadRequest(format!(
                "invalid limit: `{}` is not a positive integer",
                text.chars().take(64).collect::<String>()
            ))),
        },
    }
}

/// The trace, or the Tempo error for an id that is bad or not held.
/// `start` and `end` are validated; the lookup is by id across every tier
/// regardless (an index lookup, not a scan), so they narrow nothing.
async fn lookup(
    state: &ApiState,
    trace_id: &str,
    params: &HashMap<String, String>,
) -> Result<Trace, TempoError> {
    let id = parse_trace_id(trace_id)?;
    start_end(params)?;
    let store = state
        .pipeline
        .store()
        .cloned()
        .ok_or_else(TempoError::replaying)?;
    // A lookup may read segment files: keep it off the async workers.
    let trace = tokio::task::spawn_blocking(move || store.trace(id))
        .await
        .map_err(|e| TempoError::Internal(format!("trace lookup task failed: {e}")))?;
    match trace {
        Some(trace) if !trace.spans.is_empty() => Ok(trace),
        // Only log records carry the id: Tempo has no spans to show.
        _ => Err(TempoError::NotFound(format!(
            "trace not found: {}",
            id.to_hex()
        ))),
    }
}

/// `GET /api/traces/{traceID}`: the trace as `{"batches": [ResourceSpans]}`
/// (the JSON key Tempo keeps on this endpoint), or with `Accept:
/// application/protobuf` Tempo's `Trace` message (wire-identical to OTLP's
/// `TracesData`).
async fn trace_v1(
    State(state): State<ApiState>,
    Path(trace_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let trace = lookup(&state, &trace_id, &params).await?;
    let data = otlp_proto::traces_data(&trace.spans);
    if wants_protobuf(&headers) {
        return Ok(protobuf_response(data.encode_to_vec()));
    }
    Ok(json_response(
        &json!({ "batches": otlp_json::resource_spans(&data) }),
    ))
}

/// `GET /api/v2/traces/{traceID}`: Tempo's `TraceByIDResponse`, as JSON
/// `{"trace": {"resourceSpans": [...]}}` or protobuf. The status is always
/// `COMPLETE` (tracewarden does not cut traces short), which proto3 JSON
/// leaves out.
async fn trace_v2(
    State(state): State<ApiState>,
    Path(trace_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let trace = lookup(&state, &trace_id, &params).await?;
    let data = otlp_proto::traces_data(&trace.spans);
    if wants_protobuf(&headers) {
        let response = TraceByIdResponse {
            trace: Some(data),
            status: 0,
            message: String::new(),
        };
        return Ok(protobuf_response(response.encode_to_vec()));
    }
    Ok(json_response(
        &json!({ "trace": otlp_json::traces_data(&data) }),
    ))
}

/// The spans of a tag request's range, at most [`MAX_SPANS_INSPECTED`]
/// handed over by the store. With a TraceQL `q` (Grafana sends the query
/// being edited), only spans that pass its filter: the store prunes with
/// what the query implies, and a single-filter query is applied to each
/// span; a query that needs whole traces (structural operators) only
/// prunes.
async fn spans_in_range(
    state: &ApiState,
    params: &HashMap<String, String>,
) -> Result<Vec<SpanRecord>, TempoError> {
    let (start, end) = tag_range(params)?;
    let query = match params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        Some(text) => Some(
            tracewarden_traceql::parse(text)
                .map_err(|e| TempoError::BadRequest(format!("invalid TraceQL query: {e}")))?,
        ),
        None => None,
    };
    let store = state
        .pipeline
        .store()
        .cloned()
        .ok_or_else(TempoError::replaying)?;
    let pushdown = query
        .as_ref()
        .map(|q| tracewarden_search::Pushdown::choose(&q.required_conditions()))
        .unwrap_or_default();
    let filter = SpanFilter {
        limit: Some(MAX_SPANS_INSPECTED),
        ..pushdown.filter(start, end)
    };
    let mut records = tokio::task::spawn_blocking(move || store.find_spans(&filter))
        .await
        .map_err(|e| TempoError::Internal(format!("span scan task failed: {e}")))?
        .map_err(|e| TempoError::Internal(format!("span scan failed: {e}")))?;
    if let Some(query) = query.filter(|q| !q.needs_whole_trace()) {
        records.retain(|record| query.matches_span(record));
    }
    Ok(records)
}

/// `GET /api/search/tags`: `{"tagNames": [...]}`.
async fn search_tags_v1(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, TempoError> {
    let scope = TagScope::parse(params.get("scope").map(String::as_str))?;
    let limit = limit(&params, DEFAULT_MAX_TAG_NAMES)?;
    let records = spans_in_range(&state, &params).await?;
    let names = tags::tag_names_v1(&records, scope, limit);
    Ok(json_response(&json!({ "tagNames": names })))
}

/// `GET /api/v2/search/tags`: `{"scopes": [{"name", "tags"}]}`, over the
/// spans `q` (a TraceQL filter) lets through (see [`spans_in_range`]).
async fn search_tags_v2(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, TempoError> {
    let scope = TagScope::parse(params.get("scope").map(String::as_str))?;
    let limit = limit(&params, DEFAULT_MAX_TAG_NAMES)?;
    let records = spans_in_range(&state, &params).await?;
    let scopes = tags::tag_names_v2(&records, scope, limit);
    Ok(json_response(&json!({ "scopes": scopes })))
}

/// `GET /api/search/tag/{tag}/values`: `{"tagValues": ["..."]}`.
async fn tag_values_v1(
    State(state): State<ApiState>,
    Path(tag): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, TempoError> {
    if tag.is_empty() {
        return Err(TempoError::BadRequest(
            "please provide a non-empty tagName".to_string(),
        ));
    }
    let limit = limit(&params, DEFAULT_MAX_TAG_VALUES)?;
    let records = spans_in_range(&state, &params).await?;
    let values = tags::tag_values_v1(&records, &tag, limit);
    Ok(json_response(&json!({ "tagValues": values })))
}

/// `GET /api/v2/search/tag/{tag}/values`: `{"tagValues": [{"type",
/// "value"}]}` for a TraceQL identifier, over the spans `q` lets through.
async fn tag_values_v2(
    State(state): State<ApiState>,
    Path(tag): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, TempoError> {
    let tag = Tag::parse(&tag)?;
    let limit = limit(&params, DEFAULT_MAX_TAG_VALUES)?;
    let records = spans_in_range(&state, &params).await?;
    let values = tags::tag_values_v2(&records, &tag, limit);
    Ok(json_response(&json!({ "tagValues": values })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn trace_ids_as_tempo_reads_them() {
        assert_eq!(
            parse_trace_id("5B8EFFF798038103D269B633813FC60C")
                .unwrap()
                .to_hex(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(
            parse_trace_id("d269b633813fc60c").unwrap().to_hex(),
            "0000000000000000d269b633813fc60c"
        );
        assert_eq!(
            parse_trace_id("abc").unwrap().to_hex(),
            "00000000000000000000000000000abc",
            "odd lengths are padded too"
        );
        let message = |text: &str| parse_trace_id(text).unwrap_err().to_string();
        assert!(message("zz").contains("position 1"), "{}", message("zz"));
        assert!(message(&"1".repeat(33)).contains("128 bits"));
        assert!(message("0000").contains("zero"), "{}", message("0000"));
        assert!(parse_trace_id("").is_err());
    }

    #[test]
    fn accept_header_negotiation() {
        let mut headers = HeaderMap::new();
        assert!(!wants_protobuf(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, application/protobuf;q=0.9"),
        );
        assert!(wants_protobuf(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_protobuf(&headers));
    }

    #[test]
    fn tag_ranges_include_the_end_second() {
        let (start, end) = tag_range(&params(&[("start", "10"), ("end", "20")])).unwrap();
        assert_eq!((start, end), (10_000_000_000, 21_000_000_000));
        let (start, end) = tag_range(&params(&[("end", "7200")])).unwrap();
        assert_eq!(end - start, (DEFAULT_RANGE_SECONDS + 1) * 1_000_000_000);
        let (start, end) = tag_range(&params(&[])).unwrap();
        assert_eq!(end - start, (DEFAULT_RANGE_SECONDS + 1) * 1_000_000_000);
        assert!(tag_range(&params(&[("start", "20"), ("end", "10")])).is_err());
        assert!(tag_range(&params(&[("start", "yesterday")])).is_err());
        // Far-future seconds saturate instead of overflowing.
        let (_, end) = tag_range(&params(&[("end", &u64::MAX.to_string())])).unwrap();
        assert_eq!(end, u64::MAX);
    }

    #[test]
    fn limits() {
        assert_eq!(limit(&params(&[]), 7).unwrap(), 7);
        assert_eq!(limit(&params(&[("limit", "0")]), 7).unwrap(), 7);
        assert_eq!(limit(&params(&[("limit", "3")]), 7).unwrap(), 3);
        assert!(limit(&params(&[("limit", "-1")]), 7).is_err());
    }
}
