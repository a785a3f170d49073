//! Alerts and silences: `GET /api/v1/alerts`, `GET /api/v1/alerts/{fp}`,
//! `POST /api/v1/alerts/{fp}/ack`, `GET /api/v1/silences`,
//! `POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`.
//!
//! Times are RFC 3339 (as in Alertmanager's API); silence matchers are
//! Alertmanager's `{"name", "value", "isRegex", "isEqual"}`. The engine is
//! reached off the async workers: actions save the state file (fsync).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracewarden_alert::alert::{Alert, TITLE};
use tracewarden_alert::labels::{self, Fingerprint, key_label_names};
use tracewarden_alert::matcher::{MatchType, Matcher};
use tracewarden_alert::silence::{NewSilence, Silence};
use tracewarden_alert::time::format_rfc3339;
use tracewarden_alert::{AlertError, AlertState};
use tracewarden_detect::rule::Severity;
use tracewarden_search::{parse_duration, parse_time};

use super::{ApiError, ApiState};
use crate::alerting::AlertService;
use crate::auth::{Caller, ResultCount, masked};

/// Alerts answered at most by one list request.
pub const MAX_LIMIT: usize = 10_000;
const DEFAULT_LIMIT: usize = 100;

/// The alert routes. Reads and actions are apart so that authentication
/// can guard them differently: when it comes, a `route_layer` on `reads`
/// asks for a viewer and one on `actions` for a responder, and [`who`]
/// takes the identity from the request instead of the body.
pub fn routes() -> Router<ApiState> {
    let reads = Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/{fingerprint}", get(show))
        .route("/api/v1/silences", get(silences));
    let actions = Router::new()
        .route("/api/v1/alerts/{fingerprint}/ack", post(acknowledge))
        .route("/api/v1/silences", post(create_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence));
    reads.merge(actions)
}

/// Who performs an action: the name of the API key the request carries;
/// without one (auth off), the name the client gives.
fn who(field: &str, given: &str, caller: Option<&Caller>) -> Result<String, ApiError> {
    if let Some(name) = caller.and_then(Caller::name) {
        return Ok(name.to_string());
    }
    let name = given.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must name who acts")));
    }
    Ok(name.to_string())
}

fn service(state: &ApiState) -> Result<Arc<AlertService>, ApiError> {
    state
        .pipeline
        .alerts()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("alerting is not running".to_string()))
}

/// Runs `f` on the engine off the async workers.
async fn blocking<R: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&AlertService) -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    let service = service(state)?;
    tokio::task::spawn_blocking(move || f(&service))
        .await
        .map_err(|e| ApiError::Internal(format!("alerts task failed: {e}")))?
}

/// The engine's errors as API errors; field names as the API spells them.
fn api_error(error: AlertError) -> ApiError {
    match error {
        AlertError::Invalid { field, message } => {
            let field = match field {
                "created_by" => "createdBy",
                "ends_at" => "endsAt",
                "starts_at" => "startsAt",
                other => other,
            };
            ApiError::BadRequest(format!("{field}: {message}"))
        }
        AlertError::UnknownAlert(_) | AlertError::UnknownSilence(_) => {
            ApiError::NotFound(error.to_string())
        }
        AlertError::SilenceExpired(_) => ApiError::BadRequest(error.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

fn fingerprint(text: &str) -> Result<Fingerprint, ApiError> {
    text.trim().parse().map_err(ApiError::BadRequest)
}

fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Default, Deserialize)]
pub struct AlertParams {
    pub state: Option<String>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub actor: Option<String>,
    pub since: Option<String>,
    pub limit: Option<String>,
}

/// An actor filter: any key label with this value, or one label.
#[derive(Debug, PartialEq, Eq)]
enum ActorFilter {
    Value(String),
    Label(String, String),
}

impl ActorFilter {
    fn parse(text: &str) -> ActorFilter {
        match text.split_once('=') {
            Some((key, value)) => {
                let key = key.trim();
                // `client_address=...` as labels are named, or the rule's
                // field (`span.client.address=...`).
                let name = if labels::is_valid_label_name(key) {
                    key.to_string()
                } else {
                    key_label_names([key]).remove(0)
                };
                ActorFilter::Label(name, value.trim().to_string())
            }
            None => ActorFilter::Value(text.trim().to_string()),
        }
    }

    fn matches(&self, alert: &Alert) -> bool {
        match self {
            ActorFilter::Label(name, value) => {
                alert.labels.contains(name) && alert.labels.get(name) == value
            }
            ActorFilter::Value(value) => actor(alert).any(|(_, v)| v == value),
        }
    }
}

/// The alert's key labels: all but `alertname`, `severity`, `rule_kind`.
fn actor(alert: &Alert) -> impl Iterator<Item = (&str, &str)> {
    alert.labels.iter().filter(|(name, _)| {
        ![labels::ALERTNAME, labels::SEVERITY, labels::RULE_KIND].contains(name)
    })
}

/// A checked list request.
#[derive(Debug)]
struct AlertFilter {
    state: Option<AlertState>,
    severities: Vec<&'static str>,
    rule: Option<String>,
    actor: Option<ActorFilter>,
    /// Unix nanoseconds: alerts with activity at or after it.
    since: Option<u64>,
    limit: usize,
}

impl AlertFilter {
    fn parse(params: &AlertParams, now: u64) -> Result<AlertFilter, ApiError> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        let state = match given(&params.state).as_deref() {
            None => None,
            Some("firing") => Some(AlertState::Firing),
            Some("resolved") => Some(AlertState::Resolved),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "state must be `firing` or `resolved`, not `{other}`"
                )));
            }
        };
        let mut severities = Vec::new();
        if let Some(text) = given(&params.severity) {
            for name in text.split(',').map(str::trim) {
                let severity = Severity::from_name(name).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "severity must be info, low, medium, high or critical, not `{name}`"
                    ))
                })?;
                severities.push(severity.as_str());
            }
        }
        let since = match given(&params.since) {
            None => None,
            Some(text) => Some(match parse_duration(&text) {
                Ok(ago) => now.saturating_sub(ago),
                Err(_) => parse_time(&text).map_err(|e| {
                    ApiError::BadRequest(format!(
                        "since must be a duration (1h) or a time (RFC 3339, Unix seconds): {e}"
                    ))
                })?,
            }),
        };
        let limit = super::params::limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        Ok(AlertFilter {
            state,
            severities,
            rule: given(&params.rule),
            actor: given(&params.actor).map(|a| ActorFilter::parse(&a)),
            since,
            limit,
        })
    }

    fn matches(&self, alert: &Alert) -> bool {
        self.state.is_none_or(|s| alert.state == s)
            && (self.severities.is_empty()
                || self
                    .severities
                    .contains(&alert.labels.get(labels::SEVERITY)))
            && self
                .rule
                .as_deref()
                .is_none_or(|r| alert.labels.get(labels::ALERTNAME) == r)
            && self.actor.as_ref().is_none_or(|a| a.matches(alert))
            && self.since.is_none_or(|since| {
                alert.updated_at_unix_nano >= since
                    || alert.ends_at_unix_nano.is_none_or(|ends| ends >= since)
            })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsResponse {
    /// Newest first (by `startsAt`).
    pub alerts: Vec<AlertJson>,
    /// Alerts matching the filters, before `limit`.
    pub total: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertJson {
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub status: &'static str,
    pub rule_id: String,
    pub severity: String,
    pub title: String,
    /// The key labels (who or what the rule fired for).
    pub actor: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// The latest detection merged into it.
    pub updated_at: String,
    pub evidence: EvidenceJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<AckJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceJson {
    pub detections: u64,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// Most recent first; open them with `/api/v1/traces/{id}`.
    pub trace_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AckJson {
    pub by: String,
    pub at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl AlertJson {
    /// For a viewer: who the alert is about (the actor's values, in its
    /// labels too) and the annotations that may quote it are masked.
    fn mask(&mut self) {
        for (name, value) in self.actor.iter_mut() {
            *value = masked();
            if let Some(label) = self.labels.get_mut(name) {
                *label = masked();
            }
        }
        for (name, value) in self.annotations.iter_mut() {
            if name != TITLE {
                *value = masked();
            }
        }
        // An analyst's note may name the actor too.
        if let Some(ack) = &mut self.acknowledged
            && !ack.comment.is_empty()
        {
            ack.comment = masked();
        }
    }

    fn new(alert: &Alert) -> AlertJson {
        let labels = alert.labels.as_map().clone();
        let label = |name: &str| alert.labels.get(name).to_string();
        AlertJson {
            fingerprint: alert.fingerprint.to_string(),
            status: alert.state.as_str(),
            rule_id: label(labels::ALERTNAME),
            severity: label(labels::SEVERITY),
            title: alert.annotation(TITLE).to_string(),
            actor: actor(alert)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels,
            annotations: alert.annotations.clone(),
            starts_at: format_rfc3339(alert.starts_at_unix_nano),
            ends_at: alert.ends_at_unix_nano.map(format_rfc3339),
            updated_at: format_rfc3339(alert.updated_at_unix_nano),
            evidence: EvidenceJson {
                detections: alert.evidence.detections,
                count: alert.evidence.count,
                first_seen: format_rfc3339(alert.evidence.first_seen_unix_nano),
                last_seen: format_rfc3339(alert.evidence.last_seen_unix_nano),
                trace_ids: alert.evidence.trace_ids.clone(),
            },
            acknowledged: alert.acknowledged.as_ref().map(|a| AckJson {
                by: a.by.clone(),
                at: format_rfc3339(a.at_unix_nano),
                comment: a.comment.clone(),
            }),
        }
    }
}

/// `GET /api/v1/alerts`: filters `state`, `severity` (comma-separated),
/// `rule`, `actor` (a value, or `label=value`), `since` (a duration or a
/// time), `limit`; newest first.
pub async fn list(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Query(params): Query<AlertParams>,
) -> Result<(Extension<ResultCount>, Json<AlertsResponse>), ApiError> {
    // Which alerts match an actor would tell a viewer the actors it may
    // not see, one guess at a time.
    if masks(caller.as_deref()) && params.actor.is_some() {
        return Err(ApiError::Forbidden(
            "a viewer key sees alerts without their actors, so it cannot filter by `actor`: use an analyst key".to_string(),
        ));
    }
    let filter = AlertFilter::parse(&params, now_unix_nano())?;
    let response = blocking(&state, move |service| {
        Ok(service.read(|engine| {
            let mut matching: Vec<&Alert> = engine
                .alerts()
                .into_iter()
                .filter(|a| filter.matches(a))
                .collect();
            matching.sort_by(|a, b| {
                b.starts_at_unix_nano
                    .cmp(&a.starts_at_unix_nano)
                    .then(a.fingerprint.cmp(&b.fingerprint))
            });
            AlertsResponse {
                total: matching.len(),
                alerts: matching
                    .into_iter()
                    .take(filter.limit)
                    .map(AlertJson::new)
                    .collect(),
            }
        }))
    })
    .await?;
    let mut response = response;
    if masks(caller.as_deref()) {
        response.alerts.iter_mut().for_each(AlertJson::mask);
    }
    Ok((
        Extension(ResultCount(response.alerts.len() as u64)),
        Json(response),
    ))
}

/// Whether the caller sees actors masked (a viewer key).
fn masks(caller: Option<&Caller>) -> bool {
    caller.is_some_and(|c| c.role().masks_actors())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertDetailJson {
    #[serde(flatten)]
    pub alert: AlertJson,
    /// The evidence's traces, as links into this API.
    pub traces: Vec<TraceLink>,
    /// Ids of the active silences muting it.
    pub silenced_by: Vec<String>,
    /// Whether a firing alert inhibits it (an inhibit rule).
    pub inhibited: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceLink {
    pub trace_id: String,
    /// `/api/v1/traces/{id}`.
    pub href: String,
}

fn detail(service: &AlertService, fp: Fingerprint) -> Result<AlertDetailJson, ApiError> {
    let now = now_unix_nano();
    service.read(|engine| {
        let alert = engine
            .alert(fp)
            .ok_or_else(|| api_error(AlertError::UnknownAlert(fp)))?;
        let mute = engine.mute_status(fp, now).unwrap_or_default();
        Ok(AlertDetailJson {
            alert: AlertJson::new(alert),
            traces: alert
                .evidence
                .trace_ids
                .iter()
                .map(|id| TraceLink {
                    trace_id: id.clone(),
                    href: format!("/api/v1/traces/{id}"),
                })
                .collect(),
            silenced_by: mute.silenced_by,
            inhibited: mute.inhibited,
        })
    })
}

/// `GET /api/v1/alerts/{fingerprint}`: one alert, its evidence's traces
/// and whether it is muted.
pub async fn show(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path(text): Path<String>,
) -> Result<Json<AlertDetailJson>, ApiError> {
    let fp = fingerprint(&text)?;
    let mut detail = blocking(&state, move |service| detail(service, fp)).await?;
    if masks(caller.as_deref()) {
        detail.alert.mask();
    }
    Ok(Json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    #[serde(default)]
    by: String,
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/alerts/{fingerprint}/ack` with `{"by", "comment"}`: the
/// alert as `GET` shows it.
pub async fn acknowledge(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path(text): Path<String>,
    body: Bytes,
) -> Result<Json<AlertDetailJson>, ApiError> {
    let fp = fingerprint(&text)?;
    let body: AckBody = json_body(&body)?;
    let by = who("by", &body.by, caller.as_deref())?;
    blocking(&state, move |service| {
        service
            .write(|engine| engine.acknowledge(fp, &by, body.comment.trim(), now_unix_nano()))
            .map_err(api_error)?;
        detail(service, fp)
    })
    .await
    .map(Json)
}

/// A silence matcher as Alertmanager's API writes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatcherJson {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl MatcherJson {
    fn new(m: &Matcher) -> MatcherJson {
        let (is_regex, is_equal) = match m.kind() {
            MatchType::Equal => (false, true),
            MatchType::NotEqual => (false, false),
            MatchType::Regex => (true, true),
            MatchType::NotRegex => (true, false),
        };
        MatcherJson {
            name: m.name().to_string(),
            value: m.value().to_string(),
            is_regex,
            is_equal,
        }
    }

    fn matcher(&self) -> Result<Matcher, String> {
        let kind = match (self.is_regex, self.is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regex,
            (true, false) => MatchType::NotRegex,
        };
        Matcher::new(&self.name, kind, &self.value)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceJson {
    pub id: String,
    pub status: SilenceStatus,
    pub matchers: Vec<MatcherJson>,
    pub starts_at: String,
    pub ends_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub comment: String,
}

#[derive(Serialize)]
pub struct SilenceStatus {
    /// `pending`, `active` or `expired`.
    pub state: &'static str,
}

impl SilenceJson {
    /// For a viewer: the values a silence matches on (an actor, unless the
    /// label is the rule, severity or kind) and its comment are masked.
    fn mask(&mut self) {
        for matcher in &mut self.matchers {
            if ![labels::ALERTNAME, labels::SEVERITY, labels::RULE_KIND]
                .contains(&matcher.name.as_str())
            {
                matcher.value = masked();
            }
        }
        if !self.comment.is_empty() {
            self.comment = masked();
        }
    }

    fn new(s: &Silence, now: u64) -> SilenceJson {
        use tracewarden_alert::silence::SilenceState;
        SilenceJson {
            id: s.id.clone(),
            status: SilenceStatus {
                state: match s.state(now) {
                    SilenceState::Pending => "pending",
                    SilenceState::Active => "active",
                    SilenceState::Expired => "expired",
                },
            },
            matchers: s.matchers.iter().map(MatcherJson::new).collect(),
            starts_at: format_rfc3339(s.starts_at_unix_nano),
            ends_at: format_rfc3339(s.ends_at_unix_nano),
            updated_at: format_rfc3339(s.updated_at_unix_nano),
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct SilencesResponse {
    /// Active first, then pending, then expired; newest first within each.
    pub silences: Vec<SilenceJson>,
}

/// `GET /api/v1/silences`: pending, active and recently expired silences.
pub async fn silences(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<SilencesResponse>, ApiError> {
    let now = now_unix_nano();
    let mask = masks(caller.as_deref());
    blocking(&state, move |service| {
        Ok(service.read(|engine| {
            let mut list: Vec<SilenceJson> = engine
                .silences()
                .iter()
                .map(|s| SilenceJson::new(s, now))
                .map(|mut s| {
                    if mask {
                        s.mask();
                    }
                    s
                })
                .collect();
            let rank = |s: &SilenceJson| match s.status.state {
                "active" => 0,
                "pending" => 1,
                _ => 2,
            };
            // RFC 3339 in UTC with fixed width sorts as time.
            list.sort_by(|a, b| {
                rank(a)
                    .cmp(&rank(b))
                    .then_with(|| b.updated_at.cmp(&a.updated_at))
            });
            SilencesResponse { silences: list }
        }))
    })
    .await
    .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PostSilence {
    /// Alertmanager clients send it to edit a silence; not supported.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    matchers: Vec<MatcherJson>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    /// Instead of `endsAt`: how long from `startsAt` (or now), e.g. `2h`.
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

impl PostSilence {
    fn into_new(self, now: u64, caller: Option<&Caller>) -> Result<NewSilence, ApiError> {
        let bad = |m: String| ApiError::BadRequest(m);
        if self.id.as_deref().is_some_and(|id| !id.is_empty()) {
            return Err(bad(
                "id: silences are not edited in place; expire it and create another".to_string(),
            ));
        }
        let matchers = self
            .matchers
            .iter()
            .enumerate()
            .map(|(i, m)| m.matcher().map_err(|e| bad(format!("matchers[{i}]: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let time =
            |field: &str, text: &str| parse_time(text).map_err(|e| bad(format!("{field}: {e}")));
        let starts = match &self.starts_at {
            Some(text) => time("startsAt", text)?,
            None => now,
        };
        let ends = match (&self.ends_at, &self.duration) {
            (Some(_), Some(_)) => {
                return Err(bad("give endsAt or duration, not both".to_string()));
            }
            (None, None) => return Err(bad("endsAt or duration is needed".to_string())),
            (Some(text), None) => time("endsAt", text)?,
            (None, Some(text)) => {
                let length = parse_duration(text).map_err(|e| bad(format!("duration: {e}")))?;
                starts.max(now).saturating_add(length)
            }
        };
        Ok(NewSilence {
            matchers,
            starts_at_unix_nano: starts,
            ends_at_unix_nano: ends,
            created_by: who("createdBy", &self.created_by, caller)?,
            comment: self.comment.trim().to_string(),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceCreated {
    pub silence_id: String,
}

/// `POST /api/v1/silences`: creates a silence; answers its id.
pub async fn create_silence(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<Json<SilenceCreated>, ApiError> {
    let body: PostSilence = json_body(&body)?;
    let now = now_unix_nano();
    let silence = body.into_new(now, caller.as_deref())?;
    let id = blocking(&state, move |service| {
        service
            .write(|engine| engine.create_silence(silence, now))
            .map_err(api_error)
    })
    .await?;
    tracing::info!(silence = %id, "silence created");
    Ok(Json(SilenceCreated { silence_id: id }))
}

/// `DELETE /api/v1/silences/{id}`: expires the silence now.
pub async fn expire_silence(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<SilenceJson>, ApiError> {
    let now = now_unix_nano();
    blocking(&state, move |service| {
        service.write(|engine| {
            engine.expire_silence(&id, now).map_err(api_error)?;
            engine
                .silences()
                .iter()
                .find(|s| s.id == id)
                .map(|s| SilenceJson::new(s, now))
                .ok_or_else(|| api_error(AlertError::UnknownSilence(id.clone())))
        })
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;
    const NOW: u64 = 1_767_225_600 * SEC;

    fn params(pairs: &[(&str, &str)]) -> AlertParams {
        let mut p = AlertParams::default();
        for (k, v) in pairs {
            let slot = match *k {
                "state" => &mut p.state,
                "severity" => &mut p.severity,
                "rule" => &mut p.rule,
                "actor" => &mut p.actor,
                "since" => &mut p.since,
                "limit" => &mut p.limit,
                other => panic!("{other}"),
            };
            *slot = Some(v.to_string());
        }
        p
    }

    #[test]
    fn bad_filters_are_refused_naming_the_parameter() {
        let cases = [
            (vec![("state", "open")], "state"),
            (vec![("severity", "high,urgent")], "severity"),
            (vec![("since", "yesterday")], "since"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "10001")], "limit"),
        ];
        for (pairs, word) in cases {
            match AlertFilter::parse(&params(&pairs), NOW) {
                Err(ApiError::BadRequest(m)) => assert!(m.starts_with(word), "{pairs:?}: {m}"),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
        let f = AlertFilter::parse(
            &params(&[("since", "1h"), ("severity", "high, critical")]),
            NOW,
        )
        .unwrap();
        assert_eq!(f.since, Some(NOW - 3600 * SEC));
        assert_eq!(f.severities, vec!["high", "critical"]);
        let f = AlertFilter::parse(&params(&[("since", "2026-01-01T00:00:00Z")]), NOW).unwrap();
        assert_eq!(f.since, Some(NOW));
    }

    #[test]
    fn actor_filters() {
        assert_eq!(
            ActorFilter::parse("203.0.113.7"),
            ActorFilter::Value("203.0.113.7".into())
        );
        assert_eq!(
            ActorFilter::parse("client_address=203.0.113.7"),
            ActorFilter::Label("client_address".into(), "203.0.113.7".into())
        );
        assert_eq!(
            ActorFilter::parse("span.client.address = 203.0.113.7"),
            ActorFilter::Label("client_address".into(), "203.0.113.7".into())
        );
    }

    #[test]
    fn silence_bodies() {
        let parse = |text: &str| {
            serde_json::from_str::<PostSilence>(text)
                .map_err(|e| e.to_string())
                .and_then(|b| b.into_new(NOW, None).map_err(|e| e.to_string()))
        };
        let ok = parse(
            r#"{"matchers": [{"name": "client_address", "value": "203.0.113.7"}],
                "duration": "2h", "createdBy": "ana", "comment": "pen test"}"#,
        )
        .unwrap();
        assert_eq!(ok.matchers[0].to_string(), "client_address=\"203.0.113.7\"");
        assert_eq!(ok.starts_at_unix_nano, NOW);
        assert_eq!(ok.ends_at_unix_nano, NOW + 7200 * SEC);
        let ok = parse(
            r#"{"matchers": [{"name": "severity", "value": "high|critical", "isRegex": true, "isEqual": false}],
                "startsAt": "2026-01-01T01:00:00Z", "endsAt": "2026-01-01T02:00:00Z",
                "createdBy": "ana", "comment": "x"}"#,
        )
        .unwrap();
        assert_eq!(ok.matchers[0].kind(), MatchType::NotRegex);
        assert_eq!(ok.starts_at_unix_nano, NOW + 3600 * SEC);
        let cases = [
            (
                r#"{"matchers": [], "createdBy": "a", "comment": "c"}"#,
                "endsAt or duration",
            ),
            (
                r#"{"matchers": [], "duration": "1h", "endsAt": "1", "createdBy": "a", "comment": "c"}"#,
                "not both",
            ),
            (
                r#"{"matchers": [{"name": "a-b", "value": "1"}], "duration": "1h", "createdBy": "a", "comment": "c"}"#,
                "matchers[0]",
            ),
            (
                r#"{"matchers": [{"name": "a", "value": "("}], "duration": "1h", "createdBy": "a", "comment": "c", "x": 1}"#,
                "unknown field",
            ),
            (
                r#"{"matchers": [{"name": "a", "value": "1"}], "duration": "soon", "createdBy": "a", "comment": "c"}"#,
                "duration",
            ),
            (
                r#"{"matchers": [{"name": "a", "value": "1"}], "duration": "1h", "comment": "c"}"#,
                "createdBy",
            ),
            (
                r#"{"id": "x", "matchers": [{"name": "a", "value": "1"}], "duration": "1h", "createdBy": "a", "comment": "c"}"#,
                "edited in place",
            ),
        ];
        for (text, word) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(word), "{text}: {err}");
        }
    }
}
