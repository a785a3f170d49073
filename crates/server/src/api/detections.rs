//! `GET /api/v1/detections` (the most recent detections, newest first) and
//! `GET /api/v1/rules` (the rules loaded, with their counters). Alerts with
//! a lifecycle, grouping and routing build on these (issue 6).

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tracewarden_detect::engine::Detection;

use super::{ApiError, ApiState};
use crate::auth::{Caller, ResultCount, masked};
use crate::detection::{Detector, RECENT_DETECTIONS};

#[derive(Debug, Default, Deserialize)]
pub struct DetectionParams {
    pub limit: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionsResponse {
    pub detections: Vec<DetectionJson>,
    pub stats: StatsJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionJson {
    pub rule_id: String,
    pub title: String,
    pub severity: &'static str,
    pub kind: &'static str,
    /// The actor: each group-by field and its value.
    pub key: serde_json::Map<String, serde_json::Value>,
    pub count: u64,
    pub first_seen_unix_nano: String,
    pub last_seen_unix_nano: String,
    /// Open them with `/api/v1/traces/{id}`.
    pub trace_ids: Vec<String>,
    /// What a payload rule found, e.g. `sql_injection in url.query: union select`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsJson {
    pub batches: u64,
    pub spans: u64,
    pub logs: u64,
    /// Batches stored but not detected on because detection was behind.
    pub dropped_batches: u64,
    pub dropped_spans: u64,
    pub detections: u64,
    /// WAL records detected on at start-up (not covered by the checkpoint).
    pub replayed_batches: u64,
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
    /// Why the checkpoint found at start could not be restored: detection
    /// started empty, and the file was kept as `checkpoint.bad-<seconds>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_restore_error: Option<String>,
    /// The trace-assembly buffer of whole-trace rules.
    pub assembly: AssemblyJson,
    /// Log records of `join` rules waiting for, or joined to, their span.
    pub log_join: LogJoinJson,
    /// From a batch's WAL acknowledgement to the rules having run on it
    /// (milliseconds, bucket upper bounds within 25%): the delay of span and
    /// window detections. Whole-trace rules add the trace idle time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
    /// Whole-trace rules: from a trace becoming complete (the idle time
    /// after its last span, or after its root) to its evaluation
    /// (milliseconds, as above). Their latency is the batch latency, plus
    /// the idle time, plus this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_delay_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_delay_p99_ms: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssemblyJson {
    pub buffered_traces: usize,
    pub buffered_spans: usize,
    pub complete_traces: u64,
    /// Evaluated before they were known complete (limits, maximum wait,
    /// late spans); the detections of such traces say so.
    pub partial_traces: u64,
    pub evicted_trace_limit: u64,
    pub evicted_span_limit: u64,
    pub split_traces: u64,
    pub max_wait_traces: u64,
    pub late_fragments: u64,
    /// Spans the restored checkpoint named by their WAL record that the
    /// replay at start-up no longer found.
    pub missing_restored_spans: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogJoinJson {
    /// Records waiting for their span now.
    pub pending_records: usize,
    /// Spans whose attributes are kept for records still to come.
    pub index_spans: usize,
    pub held_records: u64,
    /// Evaluated with their span's attributes (after waiting or at once).
    pub joined_records: u64,
    /// Of those, records that took an attribute from an ancestor of their
    /// span (logged in a child span of the handler).
    pub ancestor_joined_records: u64,
    /// Their span did not come within `log_join_wait`: evaluated alone.
    pub expired_records: u64,
    /// Pushed out by `log_join_max_pending`: evaluated alone.
    pub evicted_records: u64,
    /// Evaluated alone at shutdown.
    pub drained_records: u64,
    pub indexed_spans: u64,
    /// Pushed out of the index by `log_join_max_spans`.
    pub evicted_spans: u64,
}

fn detector(state: &ApiState) -> Result<&std::sync::Arc<Detector>, ApiError> {
    state.pipeline.detector().ok_or_else(|| {
        ApiError::NotFound("detection is off (`[detection] enabled = false`)".to_string())
    })
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Query(params): Query<DetectionParams>,
) -> Result<(Extension<ResultCount>, Json<DetectionsResponse>), ApiError> {
    let limit = super::params::limit(params.limit.as_deref(), 100, RECENT_DETECTIONS)?;
    let detector = detector(&state)?;
    let stats = detector.stats();
    let latency = detector.latency();
    let trace_delay = detector.trace_delay();
    let mut detections: Vec<DetectionJson> = detector.recent(limit).iter().map(detection).collect();
    // A viewer sees what fired, not on whom.
    if caller.is_some_and(|c| c.role().masks_actors()) {
        for d in &mut detections {
            d.key.values_mut().for_each(|v| *v = masked().into());
            if let Some(evidence) = &mut d.evidence {
                *evidence = masked();
            }
        }
    }
    let count = ResultCount(detections.len() as u64);
    Ok((
        Extension(count),
        Json(DetectionsResponse {
            detections,
            stats: StatsJson {
                batches: stats.batches,
                spans: stats.spans,
                logs: stats.logs,
                dropped_batches: stats.dropped_batches,
                dropped_spans: stats.dropped_spans,
                detections: stats.detections,
                replayed_batches: stats.replayed_batches,
                checkpoints: stats.checkpoints,
                checkpoint_failures: stats.checkpoint_failures,
                checkpoint_restore_error: stats.checkpoint_restore_error.clone(),
                latency_p50_ms: latency.0.map(|d| d.as_secs_f64() * 1e3),
                latency_p99_ms: latency.1.map(|d| d.as_secs_f64() * 1e3),
                trace_delay_p50_ms: trace_delay.0.map(|d| d.as_secs_f64() * 1e3),
                trace_delay_p99_ms: trace_delay.1.map(|d| d.as_secs_f64() * 1e3),
                assembly: {
                    let a = detector.assembly_stats();
                    AssemblyJson {
                        buffered_traces: a.buffered_traces,
                        buffered_spans: a.buffered_spans,
                        complete_traces: a.complete_traces,
                        partial_traces: a.partial_traces,
                        evicted_trace_limit: a.evicted_trace_limit,
                        evicted_span_limit: a.evicted_span_limit,
                        split_traces: a.split_traces,
                        max_wait_traces: a.max_wait_traces,
                        late_fragments: a.late_fragments,
                        missing_restored_spans: a.missing_restored_spans,
                    }
                },
                log_join: {
                    let j = detector.log_join_stats();
                    LogJoinJson {
                        pending_records: j.pending_records,
                        index_spans: j.index_spans,
                        held_records: j.held_records,
                        joined_records: j.joined_records,
                        ancestor_joined_records: j.ancestor_joined_records,
                        expired_records: j.expired_records,
                        evicted_records: j.evicted_records,
                        drained_records: j.drained_records,
                        indexed_spans: j.indexed_spans,
                        evicted_spans: j.evicted_spans,
                    }
                },
            },
        }),
    ))
}

fn detection(d: &Detection) -> DetectionJson {
    DetectionJson {
        rule_id: d.rule_id.to_string(),
        title: d.title.to_string(),
        severity: d.severity.as_str(),
        kind: d.kind,
        key: d
            .key
            .iter()
            .map(|(field, value)| (field.clone(), serde_json::Value::String(value.clone())))
            .collect(),
        count: d.count,
        first_seen_unix_nano: d.first_seen_unix_nano.to_string(),
        last_seen_unix_nano: d.last_seen_unix_nano.to_string(),
        trace_ids: d.trace_ids.iter().map(|id| id.to_hex()).collect(),
        evidence: d.evidence.clone(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesResponse {
    pub rules: Vec<RuleJson>,
    pub reload: ReloadJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleJson {
    pub id: String,
    pub title: String,
    pub severity: &'static str,
    pub kind: &'static str,
    /// `spans` or `logs`.
    pub source: &'static str,
    /// Span attributes a log rule takes from the record's span (`join:`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    pub tags: Vec<String>,
    /// Whether the rule runs: `false` when disabled in its file or made
    /// inactive by a site fact left empty (`inactive` says which).
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive: Option<String>,
    /// Ids of the exceptions applied to the rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    /// Spans (or log records) that matched the rule's condition so far.
    pub matched_spans: u64,
    pub detections: u64,
    /// The rule's other counters: what it evaluated, skipped, evicted and
    /// holds (since it was loaded).
    pub counters: CountersJson,
}

/// [`RuleStats`](tracewarden_detect::engine::RuleStats) but for the two
/// counters [`RuleJson`] shows at its top level.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CountersJson {
    /// Spans (or log records) evaluated, plus assembled traces for
    /// whole-trace rules.
    pub evaluated: u64,
    /// Matching spans without a `group_by` or `distinct` field.
    pub missing_key: u64,
    /// Matching spans older than the window, dropped.
    pub late_spans: u64,
    /// Matching spans whose start time was too far in the future (taken at now).
    pub future_spans: u64,
    /// Keys evicted at `max_keys_per_rule` (least recently seen first).
    pub evicted_keys: u64,
    /// Keys dropped after their window passed without spans.
    pub expired_keys: u64,
    /// Matches of a `suppress` rule not reported (their key fired within the period).
    pub suppressed: u64,
    /// Terms a new_terms rule forgot at `max_terms_per_key`.
    pub evicted_terms: u64,
    /// Matches left out because one of the rule's exceptions held.
    pub excepted: u64,
    /// Keys (actors) held now.
    pub keys: usize,
}

impl From<&tracewarden_detect::engine::RuleStats> for CountersJson {
    fn from(s: &tracewarden_detect::engine::RuleStats) -> CountersJson {
        CountersJson {
            evaluated: s.evaluated,
            missing_key: s.missing_key,
            late_spans: s.late_spans,
            future_spans: s.future_spans,
            evicted_keys: s.evicted_keys,
            expired_keys: s.expired_keys,
            suppressed: s.suppressed,
            evicted_terms: s.evicted_terms,
            excepted: s.excepted,
            keys: s.keys,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadJson {
    pub reloads: u64,
    pub failures: u64,
    /// When the rules last changed (unix nanoseconds as a string), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload_unix_nano: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_summary: Option<SummaryJson>,
    /// Every error of the last failed reload; the previous rules run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Serialize)]
pub struct SummaryJson {
    pub kept: Vec<String>,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

fn summary(s: &tracewarden_detect::engine::ReloadSummary) -> SummaryJson {
    SummaryJson {
        kept: s.kept.clone(),
        added: s.added.clone(),
        changed: s.changed.clone(),
        removed: s.removed.clone(),
    }
}

/// `POST /api/v1/rules/reload`: reloads the built-in pack and `rules_dir`
/// now. 200 with what changed; 422 with every error when a file is wrong
/// (the running rules stay).
pub async fn reload(State(state): State<ApiState>) -> Result<Json<SummaryJson>, ApiError> {
    let detector = detector(&state)?.clone();
    let result = tokio::task::spawn_blocking(move || detector.reload())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    result
        .map(|s| Json(summary(&s)))
        .map_err(ApiError::Unprocessable)
}

pub async fn rules(State(state): State<ApiState>) -> Result<Json<RulesResponse>, ApiError> {
    let detector = detector(&state)?;
    let stats = detector.rule_stats();
    Ok(Json(RulesResponse {
        rules: detector
            .rules()
            .iter()
            .map(|rule| {
                let counters = stats.iter().find(|s| s.rule_id == rule.id);
                RuleJson {
                    id: rule.id.clone(),
                    title: rule.title.clone(),
                    severity: rule.severity,
                    kind: rule.kind,
                    source: rule.source,
                    join: rule.join.clone(),
                    tags: rule.tags.clone(),
                    active: rule.enabled && rule.inactive.is_none(),
                    inactive: rule.inactive.clone(),
                    exceptions: rule.exceptions.clone(),
                    matched_spans: counters.map(|c| c.matched_spans).unwrap_or(0),
                    detections: counters.map(|c| c.detections).unwrap_or(0),
                    counters: counters.map(CountersJson::from).unwrap_or_default(),
                }
            })
            .collect(),
        reload: {
            let status = detector.reload_status();
            ReloadJson {
                reloads: status.reloads,
                failures: status.failures,
                last_reload_unix_nano: (status.last_reload_unix_nano != 0)
                    .then(|| status.last_reload_unix_nano.to_string()),
                last_summary: status.last_summary.as_ref().map(summary),
                last_error: status.last_error,
            }
        },
    }))
}
