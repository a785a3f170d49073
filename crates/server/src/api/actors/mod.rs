//! `GET /api/v1/actors/{kind}/{value}/timeline`: every request of one actor
//! (an address, a user, a session) in time order, with what each touched,
//! the alerts citing its trace and the trace's log records, paged, and a
//! summary of the whole period. docs/INVESTIGATION.md describes it.
//!
//! Two reads, both off the async workers: a scan of every tier for the
//! actor's spans (pushed down to the dedicated column and its bloom
//! filters, time-bounded, decoding only the dedicated columns), then the
//! whole traces of the page's requests only.

mod timeline;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tracewarden_alert::alert::Alert;
use tracewarden_alert::labels;
use tracewarden_detect::pii::{self, PiiKinds};
use tracewarden_model::{AnyValue, SpanRecord, Trace, TraceId};
use tracewarden_store::segment::{DedicatedColumn, SpanFilter, SpanProjection};
use tracewarden_store::{ScanUnit, Snapshot, StoreError};

use self::timeline::{ActorKind, Key, Request, Summary};
use super::json::value;
use super::period::{PeriodParams, now_unix_nano};
use super::{ApiError, ApiState};
use crate::auth::ResultCount;
use crate::parallel::in_parallel;

const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// Attributes whose value names the class of data a span touched.
const CLASSIFICATION_KEYS: [&str; 3] = [
    "app.data.classification",
    "data.classification",
    "db.data.classification",
];

/// A parameter's text, `None` when absent or blank.
fn given(param: &Option<String>) -> Option<&str> {
    param.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

#[derive(Debug, Default, Deserialize)]
pub struct TimelineParams {
    pub start: Option<String>,
    pub end: Option<String>,
    pub since: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A checked request.
#[derive(Debug)]
struct Timeline {
    kind: ActorKind,
    value: String,
    start: u64,
    end: u64,
    limit: usize,
    after: Option<Key>,
}

impl Timeline {
    fn parse(
        kind: &str,
        value: &str,
        params: &TimelineParams,
        now: u64,
    ) -> Result<Timeline, ApiError> {
        let kind = ActorKind::parse(kind.trim()).map_err(ApiError::BadRequest)?;
        let value = timeline::actor_value(kind, value).map_err(ApiError::BadRequest)?;
        let (start, end) = PeriodParams {
            start: params.start.clone(),
            end: params.end.clone(),
            since: params.since.clone(),
        }
        .resolve(now)?;
        let limit = super::params::limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let after = given(&params.cursor)
            .map(timeline::decode_cursor)
            .transpose()
            .map_err(ApiError::BadRequest)?;
        Ok(Timeline {
            kind,
            value,
            start,
            end,
            limit,
            after,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineResponse {
    pub actor: ActorJson,
    pub start: String,
    pub end: String,
    pub summary: SummaryJson,
    pub requests: Vec<RequestJson>,
    pub next_cursor: Option<String>,
    /// True when part of the store could not be read (`unreadableSegments`
    /// says which): the timeline may miss requests.
    pub incomplete: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_segments: Vec<String>,
}

#[derive(Serialize)]
pub struct ActorJson {
    pub kind: &'static str,
    pub value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryJson {
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub requests: u64,
    pub traces: u64,
    pub by_status: Vec<StatusCountJson>,
    pub by_route: Vec<RouteCountJson>,
    pub identities: Vec<IdentityJson>,
    pub alerts: Vec<AlertRefJson>,
}

#[derive(Serialize)]
pub struct StatusCountJson {
    pub status: String,
    pub count: u64,
}

#[derive(Serialize)]
pub struct RouteCountJson {
    pub route: String,
    pub count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityJson {
    pub kind: &'static str,
    pub value: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRefJson {
    pub fingerprint: String,
    pub rule_id: String,
    pub severity: String,
    pub state: &'static str,
    pub title: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestJson {
    pub time: String,
    pub trace_id: String,
    pub span_id: String,
    pub service: String,
    pub name: String,
    pub method: String,
    pub route: String,
    pub path: String,
    pub status: String,
    pub duration_ns: String,
    /// Every service of the trace, sorted.
    pub services: Vec<String>,
    /// Classification values and personal-data kinds found in the trace.
    pub classifications: Vec<String>,
    pub alerts: Vec<AlertRefJson>,
    pub logs: Vec<TimelineLogJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineLogJson {
    pub time: String,
    pub severity_text: String,
    pub body: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    pub service: String,
}

pub async fn timeline(
    State(state): State<ApiState>,
    Path((kind, value)): Path<(String, String)>,
    Query(params): Query<TimelineParams>,
) -> Result<(Extension<ResultCount>, Json<TimelineResponse>), ApiError> {
    let request = Timeline::parse(&kind, &value, &params, now_unix_nano())?;
    let store = state.pipeline.store().cloned().ok_or_else(|| {
        ApiError::Unavailable("the write-ahead log is being replayed".to_string())
    })?;
    let alerts = alert_index(&state).await?;
    // Scans read segment files: keep them off the async workers.
    let response = tokio::task::spawn_blocking(move || build(&store.snapshot(), &request, &alerts))
        .await
        .map_err(|e| ApiError::Internal(format!("timeline task failed: {e}")))??;
    let read = response.requests.len() as u64;
    Ok((Extension(ResultCount(read)), Json(response)))
}

/// What the timeline needs of the alerts: each one's labels and the
/// traces its evidence cites.
struct AlertIndex {
    alerts: Vec<IndexedAlert>,
}

struct IndexedAlert {
    json: AlertRefJson,
    labels: Vec<(String, String)>,
    /// The evidence's trace ids (hex).
    traces: Vec<String>,
}

async fn alert_index(state: &ApiState) -> Result<AlertIndex, ApiError> {
    let Some(service) = state.pipeline.alerts().cloned() else {
        // Alerting off: no alert to cite.
        return Ok(AlertIndex { alerts: Vec::new() });
    };
    tokio::task::spawn_blocking(move || {
        service.read(|engine| AlertIndex {
            alerts: engine
                .alerts()
                .into_iter()
                .map(|a| IndexedAlert {
                    json: alert_ref(a),
                    labels: a
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    traces: a.evidence.trace_ids.clone(),
                })
                .collect(),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("alerts task failed: {e}")))
}

fn alert_ref(alert: &Alert) -> AlertRefJson {
    AlertRefJson {
        fingerprint: alert.fingerprint.to_string(),
        rule_id: alert.labels.get(labels::ALERTNAME).to_string(),
        severity: alert.labels.get(labels::SEVERITY).to_string(),
        state: alert.state.as_str(),
        title: alert
            .annotation(tracewarden_alert::alert::TITLE)
            .to_string(),
    }
}

/// The timeline from one snapshot.
fn build(
    snapshot: &Snapshot,
    request: &Timeline,
    alerts: &AlertIndex,
) -> Result<TimelineResponse, ApiError> {
    let mut unreadable = Vec::new();
    let spans = actor_spans(snapshot, request, &mut unreadable);
    let requests = timeline::select_requests(&spans);
    let summary = timeline::summarise(request.kind, &requests, &spans);
    let (page, next) = timeline::page(&requests, request.after, request.limit);

    let traces = page_traces(snapshot, page, &mut unreadable);
    let citing = |trace_hex: &str| -> Vec<AlertRefJson> {
        alerts
            .alerts
            .iter()
            .filter(|a| a.traces.iter().any(|t| t == trace_hex))
            .map(|a| a.json.clone())
            .collect()
    };
    let requests_json: Vec<RequestJson> = page
        .iter()
        .map(|r| {
            let trace_hex = r.trace_id.to_hex();
            let alerts = citing(&trace_hex);
            request_json(r, trace_hex, traces.get(&r.trace_id), alerts)
        })
        .collect();
    let summary_alerts = summary_alerts(request, &requests, alerts);
    Ok(TimelineResponse {
        actor: ActorJson {
            kind: request.kind.as_str(),
            value: request.value.clone(),
        },
        start: request.start.to_string(),
        end: request.end.to_string(),
        summary: summary_json(summary, summary_alerts),
        requests: requests_json,
        next_cursor: next.map(timeline::encode_cursor),
        incomplete: !unreadable.is_empty(),
        unreadable_segments: unreadable,
    })
}

fn note(unreadable: &mut Vec<String>, what: String) {
    if !unreadable.contains(&what) {
        tracing::error!(%what, "a timeline could not read part of the store");
        unreadable.push(what);
    }
}

/// Every span of the period carrying the actor, with the dedicated columns
/// only (the scan's cost is the actor's spans, not the store's).
fn actor_spans(
    snapshot: &Snapshot,
    request: &Timeline,
    unreadable: &mut Vec<String>,
) -> Vec<SpanRecord> {
    // The store reads a dedicated column's key from its column (statistics
    // and bloom filters skip what cannot hold the actor) and compares any
    // other attribute, such as a token's fingerprint, on the attribute
    // column before a span is decoded.
    let filter = SpanFilter {
        start_unix_nano: Some(request.start),
        end_unix_nano: Some(request.end),
        attribute_equals: vec![(
            request.kind.attribute_key().to_string(),
            request.value.clone(),
        )],
        ..SpanFilter::default()
    };
    let projection = READ_COLUMNS
        .into_iter()
        .fold(SpanProjection::NONE, SpanProjection::with_dedicated);
    let units: Vec<ScanUnit> = snapshot
        .units()
        .into_iter()
        .filter(|unit| unit.may_overlap(request.start, request.end))
        .collect();
    let mut spans = Vec::new();
    for (unit, scanned) in in_parallel(&units, |unit| {
        let mut found = Vec::new();
        unit.for_each_span_projected(&filter, projection, &mut |record| {
            found.push(record.into_owned());
            ControlFlow::Continue(())
        })
        .map(|_| found)
    }) {
        match scanned {
            Ok(found) => spans.extend(found),
            Err(error) => note(unreadable, unit_error(unit.segment_id(), &error)),
        }
    }
    spans
}

/// The dedicated columns a timeline reads: the identities, and what a
/// request shows (not the user agent, query or peer names: long strings
/// no answer uses).
const READ_COLUMNS: [DedicatedColumn; 7] = [
    DedicatedColumn::ClientAddress,
    DedicatedColumn::EnduserId,
    DedicatedColumn::SessionId,
    DedicatedColumn::HttpRoute,
    DedicatedColumn::UrlPath,
    DedicatedColumn::HttpRequestMethod,
    DedicatedColumn::HttpResponseStatusCode,
];

/// How far from its request a trace's other spans are looked for: the
/// tiers holding data within this of the page's requests are read.
const TRACE_SLACK_NANOS: u64 = 3600 * 1_000_000_000;

/// The page's traces, spans (without events and links) and log records,
/// from one read per tier for all of them (a lookup per trace would read a
/// page of every column per trace). Tiers whose time range is more than
/// [`TRACE_SLACK_NANOS`] away from every request of the page are not read.
fn page_traces(
    snapshot: &Snapshot,
    page: &[Request],
    unreadable: &mut Vec<String>,
) -> HashMap<TraceId, Trace> {
    let mut traces: HashMap<TraceId, Trace> = HashMap::with_capacity(page.len());
    let (Some(first), Some(last)) = (
        page.iter().map(|r| r.time).min(),
        page.iter().map(|r| r.end).max(),
    ) else {
        return traces;
    };
    let ids: Arc<HashSet<TraceId>> = Arc::new(page.iter().map(|r| r.trace_id).collect());
    let filter = SpanFilter {
        trace_ids: Some(Arc::clone(&ids)),
        ..SpanFilter::default()
    };
    let projection = SpanProjection {
        attributes: true,
        ..DedicatedColumn::ALL
            .into_iter()
            .fold(SpanProjection::NONE, SpanProjection::with_dedicated)
    };
    let (from, to) = (
        first.saturating_sub(TRACE_SLACK_NANOS),
        last.saturating_add(TRACE_SLACK_NANOS),
    );
    let units: Vec<ScanUnit> = snapshot
        .units()
        .into_iter()
        .filter(|unit| unit.may_overlap(from, to))
        .collect();
    let read = in_parallel(&units, |unit| {
        let mut spans = Vec::new();
        // The visitor never breaks.
        let _ = unit.for_each_span_projected(&filter, projection, &mut |record| {
            spans.push(record.into_owned());
            ControlFlow::Continue(())
        })?;
        Ok::<_, StoreError>((spans, unit.logs_of_traces(&ids)?))
    });
    for (unit, outcome) in read {
        match outcome {
            Ok((spans, logs)) => {
                for record in spans {
                    trace_of(&mut traces, record.span.trace_id)
                        .spans
                        .push(record);
                }
                for entry in logs {
                    if let Some(id) = entry.record.trace_id {
                        trace_of(&mut traces, id).logs.push(entry);
                    }
                }
            }
            Err(error) => note(unreadable, unit_error(unit.segment_id(), &error)),
        }
    }
    for trace in traces.values_mut() {
        trace.spans.sort_by_key(|r| r.span.start_time_unix_nano);
        trace
            .logs
            .sort_by_key(|e| e.record.effective_time_unix_nano());
    }
    traces
}

fn trace_of(traces: &mut HashMap<TraceId, Trace>, id: TraceId) -> &mut Trace {
    traces.entry(id).or_insert_with(|| Trace {
        trace_id: id,
        spans: Vec::new(),
        logs: Vec::new(),
    })
}

fn unit_error(segment: Option<u64>, error: &StoreError) -> String {
    match segment {
        Some(id) => format!("segment {id}: {error}"),
        None => format!("memory tier: {error}"),
    }
}

fn request_json(
    r: &Request,
    trace_id: String,
    trace: Option<&Trace>,
    alerts: Vec<AlertRefJson>,
) -> RequestJson {
    let (services, classifications, logs) = match trace {
        Some(trace) => (services(trace), classifications(trace), logs(trace)),
        None => Default::default(),
    };
    RequestJson {
        time: r.time.to_string(),
        trace_id,
        span_id: hex(&r.span_id),
        service: r.service.clone(),
        name: r.name.clone(),
        method: r.method.clone(),
        route: r.route.clone(),
        path: r.path.clone(),
        status: r.status.clone(),
        duration_ns: (r.end - r.time).to_string(),
        services,
        classifications,
        alerts,
        logs,
    }
}

fn services(trace: &Trace) -> Vec<String> {
    let names: BTreeSet<&str> = trace
        .spans
        .iter()
        .map(|r| r.resource.service_name())
        .filter(|s| !s.is_empty())
        .collect();
    names.into_iter().map(str::to_string).collect()
}

/// The classification attributes' values (lowercase) and the kinds of
/// personal data the detection pack's value detectors find in the trace's
/// string attributes (`email`, `payment_card`, ...).
fn classifications(trace: &Trace) -> Vec<String> {
    let mut found: BTreeSet<String> = BTreeSet::new();
    for record in &trace.spans {
        for kv in &record.span.attributes {
            let AnyValue::Str(text) = &kv.value else {
                continue;
            };
            if CLASSIFICATION_KEYS.contains(&kv.key.as_ref()) {
                if !text.is_empty() {
                    found.insert(text.to_lowercase().to_string());
                }
            } else if let Some(pii) = pii::find(text, PiiKinds::ALL) {
                found.insert(pii.kind.as_str().to_string());
            }
        }
    }
    found.into_iter().collect()
}

fn logs(trace: &Trace) -> Vec<TimelineLogJson> {
    trace
        .logs
        .iter()
        .map(|e| TimelineLogJson {
            time: e.record.effective_time_unix_nano().to_string(),
            severity_text: e.record.severity_text.to_string(),
            body: value(&e.record.body),
            span_id: e.record.span_id.map(|id| id.to_hex()),
            service: e.resource.service_name().to_string(),
        })
        .collect()
}

/// The alerts whose labels name the actor (a rule grouping by the actor's
/// attribute), then those citing any of its traces.
fn summary_alerts(
    request: &Timeline,
    requests: &[Request],
    alerts: &AlertIndex,
) -> Vec<AlertRefJson> {
    let label = request.kind.label_name();
    let traces: HashSet<String> = requests.iter().map(|r| r.trace_id.to_hex()).collect();
    let naming = alerts.alerts.iter().filter(|a| {
        a.labels
            .iter()
            .any(|(name, value)| name == label && *value == request.value)
    });
    let citing = alerts
        .alerts
        .iter()
        .filter(|a| a.traces.iter().any(|t| traces.contains(t)));
    let mut seen = HashSet::new();
    naming
        .chain(citing)
        .filter(|a| seen.insert(a.json.fingerprint.clone()))
        .map(|a| a.json.clone())
        .collect()
}

fn summary_json(summary: Summary, alerts: Vec<AlertRefJson>) -> SummaryJson {
    SummaryJson {
        first_seen: summary.first_seen.map(|t| t.to_string()),
        last_seen: summary.last_seen.map(|t| t.to_string()),
        requests: summary.requests,
        traces: summary.traces,
        by_status: summary
            .by_status
            .into_iter()
            .map(|c| StatusCountJson {
                status: c.value,
                count: c.count,
            })
            .collect(),
        by_route: summary
            .by_route
            .into_iter()
            .map(|c| RouteCountJson {
                route: c.value,
                count: c.count,
            })
            .collect(),
        identities: summary
            .identities
            .into_iter()
            .map(|i| IdentityJson {
                kind: i.kind,
                value: i.value,
                count: i.count,
                first_seen: i.first_seen.to_string(),
                last_seen: i.last_seen.to_string(),
            })
            .collect(),
        alerts,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> TimelineParams {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        TimelineParams {
            start: get("start"),
            end: get("end"),
            since: get("since"),
            limit: get("limit"),
            cursor: get("cursor"),
        }
    }

    const NOW: u64 = 1_733_340_000_000_000_000;

    #[test]
    fn defaults_are_the_last_day_and_a_hundred_requests() {
        let t = Timeline::parse("client.address", "203.0.113.7", &params(&[]), NOW).unwrap();
        assert_eq!(
            (t.start, t.end, t.limit),
            (NOW - super::super::period::DEFAULT_PERIOD_NANOS, NOW, 100)
        );
        assert_eq!(t.after, None);
        let t = Timeline::parse("enduser.id", "alice", &params(&[("since", "1h")]), NOW).unwrap();
        assert_eq!(t.start, NOW - 3_600_000_000_000);
        let t = Timeline::parse(
            "session.id",
            "s1",
            &params(&[
                ("start", "1733000000"),
                ("end", "2024-12-04T19:20:00Z"),
                ("limit", "1000"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(
            (t.start, t.end, t.limit),
            (1_733_000_000_000_000_000, NOW, 1000)
        );
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let bad = |kind: &str, value: &str, pairs: &[(&str, &str)], says: &str| {
            let error = Timeline::parse(kind, value, &params(pairs), NOW).unwrap_err();
            assert!(matches!(error, ApiError::BadRequest(_)), "{error}");
            assert!(error.to_string().contains(says), "{error} lacks {says}");
        };
        bad(
            "token",
            "sha256:00",
            &[],
            "a token actor is its fingerprint",
        );
        bad(
            "user",
            "alice",
            &[],
            "supported kinds: client.address, enduser.id, session.id, token",
        );
        bad("ip", "1.2.3.4", &[], "unknown actor kind");
        bad("client.address", " ", &[], "empty");
        bad(
            "client.address",
            "1.2.3.4",
            &[("start", "yesterday")],
            "start:",
        );
        bad("client.address", "1.2.3.4", &[("end", "soon")], "end:");
        bad(
            "client.address",
            "1.2.3.4",
            &[("since", "a while")],
            "since:",
        );
        bad(
            "client.address",
            "1.2.3.4",
            &[("since", "1h"), ("start", "1")],
            "not both",
        );
        bad(
            "client.address",
            "1.2.3.4",
            &[("start", "1733340001")],
            "before end",
        );
        bad(
            "client.address",
            "1.2.3.4",
            &[("limit", "1001")],
            "between 1 and 1000",
        );
        bad(
            "client.address",
            "1.2.3.4",
            &[("cursor", "abc")],
            "invalid cursor",
        );
    }

    /// Requests spread over three segments and the hot tier: read in
    /// parallel, in time order, each with its trace's spans and logs.
    #[tokio::test]
    async fn a_timeline_reads_segments_and_memory_alike() {
        use tracewarden_model::{
            Batch, KeyValue, LogRecord, Resource, ResourceLogs, ResourceSpans, ScopeLogs,
            ScopeSpans, Span, SpanId, SpanKind,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut options = tracewarden_store::StoreOptions::new(dir.path());
        options.lifecycle_thread = false;
        let (store, _) = tracewarden_store::Store::open(options).unwrap();
        let resource = |name: &str| {
            Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", name)],
                ..Resource::default()
            })
        };
        let base = NOW - 3_600_000_000_000;
        for n in 1..=8u8 {
            let trace = TraceId::from_bytes([n; 16]);
            let mut root = Span::new(trace, SpanId::from_bytes([n; 8]), "POST /login");
            root.kind = SpanKind::Server;
            root.start_time_unix_nano = base + u64::from(9 - n) * 1_000_000_000;
            root.end_time_unix_nano = root.start_time_unix_nano + 1000;
            root.attributes = vec![KeyValue::new("client.address", "203.0.113.7")];
            let mut child = Span::new(trace, SpanId::from_bytes([n + 100; 8]), "SELECT users");
            child.parent_span_id = Some(root.span_id);
            child.start_time_unix_nano = root.start_time_unix_nano + 10;
            child.attributes = vec![KeyValue::new("app.data.classification", "PII")];
            let log = LogRecord {
                time_unix_nano: root.start_time_unix_nano + 20,
                body: AnyValue::from("login failed"),
                trace_id: Some(trace),
                ..LogRecord::default()
            };
            let batch = Batch {
                resource_spans: vec![
                    ResourceSpans {
                        resource: resource("gateway"),
                        scope_spans: vec![ScopeSpans {
                            scope: Arc::default(),
                            spans: vec![root],
                        }],
                    },
                    ResourceSpans {
                        resource: resource("users"),
                        scope_spans: vec![ScopeSpans {
                            scope: Arc::default(),
                            spans: vec![child],
                        }],
                    },
                ],
                resource_logs: vec![ResourceLogs {
                    resource: resource("users"),
                    scope_logs: vec![ScopeLogs {
                        scope: Arc::default(),
                        log_records: vec![log],
                    }],
                }],
            };
            store.append(batch).await.unwrap();
            if n % 3 == 0 {
                store.flush().unwrap();
            }
        }
        assert_eq!(store.segment_ids().len(), 2);
        let request = Timeline::parse(
            "client.address",
            "203.0.113.7",
            &params(&[("limit", "5")]),
            NOW,
        )
        .unwrap();
        let alerts = AlertIndex { alerts: Vec::new() };
        let first = build(&store.snapshot(), &request, &alerts).unwrap();
        assert_eq!(first.summary.requests, 8);
        assert!(!first.incomplete);
        let order: Vec<String> = first.requests.iter().map(|r| r.trace_id.clone()).collect();
        let expected: Vec<String> = (4..=8u8)
            .rev()
            .map(|n| TraceId::from_bytes([n; 16]).to_hex())
            .collect();
        assert_eq!(order, expected);
        for r in &first.requests {
            assert_eq!(r.services, vec!["gateway", "users"]);
            assert_eq!(r.classifications, vec!["pii"]);
            assert_eq!(r.logs.len(), 1);
            assert_eq!(r.logs[0].body, "login failed");
        }
        let mut next = request;
        next.after = Some(timeline::decode_cursor(first.next_cursor.as_deref().unwrap()).unwrap());
        let second = build(&store.snapshot(), &next, &alerts).unwrap();
        let order: Vec<String> = second.requests.iter().map(|r| r.trace_id.clone()).collect();
        let expected: Vec<String> = (1..=3u8)
            .rev()
            .map(|n| TraceId::from_bytes([n; 16]).to_hex())
            .collect();
        assert_eq!(order, expected);
        assert!(second.next_cursor.is_none());
        assert!(second.requests.iter().all(|r| r.logs.len() == 1));
        store.close();
    }
}
