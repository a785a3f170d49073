//! The service graph of a period: services, entry points and the edges
//! between them with call, error and latency figures, each edge marked
//! against the topology policy (`GET /api/v1/service-graph`, and Jaeger's
//! `GET /api/dependencies`).
//!
//! One pass over the spans starting in the period, segments pruned by
//! their time range and read without the generic attribute column (only
//! ids, kind, times, status, links, the resource and four dedicated
//! columns). Each span becomes a few dozen bytes of [`edges::SpanFacts`];
//! the facts are grouped by trace and each trace's edges derived
//! ([`edges`]). Memory grows with the spans of the period (about 80 bytes
//! a span with the grouping): a 10M-span period takes some hundreds of MB
//! while it is computed. Blocking: call it from `spawn_blocking`.

pub mod edges;
pub mod policy;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;

use regex::Regex;
use serde::{Deserialize, Serialize};
use tracewarden_detect::engine::TopologyPolicy;
use tracewarden_detect::rule::Site;
use tracewarden_model::semconv::{
    HTTP_REQUEST_METHOD, HTTP_ROUTE, SERVER_ADDRESS, SERVICE_NAME, SERVICE_PEER_NAME,
};
use tracewarden_model::{AnyValue, SpanKind, StatusCode};
use tracewarden_store::{
    DedicatedColumn, ScanUnit, Snapshot, SpanFilter, SpanProjection, SpanRecord,
};

use edges::{Call, EdgeKind, NONE, SpanFacts};
pub use policy::{EdgePolicy, Policy};

/// The service graph of a period (the API's JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceGraph {
    /// Unix nanoseconds, as strings.
    pub start: String,
    pub end: String,
    /// By name.
    pub services: Vec<ServiceNode>,
    /// By caller, then callee, then kind.
    pub edges: Vec<Edge>,
    /// Spans read.
    pub spans: u64,
    /// A segment could not be read: figures may be low.
    pub incomplete: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable_segments: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNode {
    pub name: String,
    /// Has a server or consumer span without a parent: requests enter here.
    pub entry: bool,
    /// Spans of the service (0 for a peer known only from client spans).
    pub spans: u64,
    /// Of which with status error.
    pub errors: u64,
    /// Matches the site's `third_parties`.
    pub third_party: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub caller: String,
    pub callee: String,
    /// `http`, `rpc`, `messaging` or `link`.
    pub kind: String,
    pub calls: u64,
    pub errors: u64,
    /// Latency percentiles (nearest rank) of the callee spans, nanoseconds.
    pub p50_ns: String,
    pub p99_ns: String,
    pub policy: EdgePolicy,
}

/// Why a graph could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    #[error("the site's third_parties is not a valid regex: {0}")]
    ThirdParties(String),
}

/// The site's `third_parties` as one anchored regex, `None` when empty.
pub fn third_parties(site: &Site) -> Result<Option<Regex>, GraphError> {
    match site.regex("third_parties") {
        Ok(Some(re)) => Regex::new(&format!("^(?s:{re})$"))
            .map(Some)
            .map_err(|e| GraphError::ThirdParties(e.to_string())),
        Ok(None) => Ok(None),
        Err(e) => Err(GraphError::ThirdParties(e.to_string())),
    }
}

/// What [`build`] reads of a span.
fn projection() -> SpanProjection {
    let mut projection = SpanProjection::NONE;
    projection.links = true;
    for column in [
        DedicatedColumn::HttpRequestMethod,
        DedicatedColumn::HttpRoute,
        DedicatedColumn::ServerAddress,
        DedicatedColumn::ServicePeerName,
    ] {
        projection = projection.with_dedicated(column);
    }
    projection
}

/// Names to small numbers, so each span holds two `u32`s, not strings.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return NONE;
        }
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NONE);
        if id != NONE {
            self.names.push(Box::from(name));
            self.ids.insert(Box::from(name), id);
        }
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

#[derive(Default, Clone, Copy)]
struct ServiceCounts {
    spans: u64,
    errors: u64,
    entry: bool,
}

fn str_attribute<'a>(record: &'a SpanRecord, key: &str) -> Option<&'a str> {
    record
        .span
        .attribute(key)
        .and_then(AnyValue::as_str)
        .filter(|s| !s.is_empty())
}

/// The service graph of the spans starting in `[start, end)`.
pub fn build(
    snapshot: &Snapshot,
    start: u64,
    end: u64,
    site: &Site,
    topology: &TopologyPolicy,
) -> Result<ServiceGraph, GraphError> {
    let third_parties = third_parties(site)?;
    let policy = Policy::new(site.edges(), topology);
    let (filter, units) = crate::parallel::period_units(snapshot, start, end);
    // Each tier read on its own thread (several at once), then the parts'
    // names mapped onto one interner.
    let parts: Vec<Part> = crate::parallel::in_parallel(&units, |unit| {
        scan_units(std::slice::from_ref(unit), &filter)
    })
    .into_iter()
    .map(|(_, part)| part)
    .collect();
    let mut names = Interner::default();
    let mut services: HashMap<u32, ServiceCounts> = HashMap::new();
    let mut facts: Vec<SpanFacts> = Vec::with_capacity(parts.iter().map(|p| p.facts.len()).sum());
    let mut unreadable = Vec::new();
    for part in parts {
        let map: Vec<u32> = part.names.names.iter().map(|n| names.id(n)).collect();
        let global = |id: u32| map.get(id as usize).copied().unwrap_or(NONE);
        for (id, counts) in part.services {
            let mine = services.entry(global(id)).or_default();
            mine.spans += counts.spans;
            mine.errors += counts.errors;
            mine.entry |= counts.entry;
        }
        facts.extend(part.facts.into_iter().map(|mut f| {
            f.service = global(f.service);
            f.peer = global(f.peer);
            f
        }));
        unreadable.extend(part.unreadable);
    }
    let span_count = facts.len() as u64;
    // Group by trace (the order within a trace does not matter).
    facts.sort_unstable_by_key(|f| f.trace_id);
    let mut calls: Vec<Call> = Vec::new();
    for trace in facts.chunk_by(|a, b| a.trace_id == b.trace_id) {
        edges::calls(trace, &mut calls);
    }
    drop(facts);
    let mut by_edge: HashMap<(u32, u32, EdgeKind), (u64, Vec<u64>)> = HashMap::new();
    for call in &calls {
        let entry = by_edge
            .entry((call.caller, call.callee, call.kind))
            .or_default();
        entry.0 += u64::from(call.error);
        entry.1.push(call.duration_nanos);
        // A peer known only from client spans is a service of the graph.
        services.entry(call.callee).or_default();
        services.entry(call.caller).or_default();
    }
    let mut edge_list: Vec<Edge> = by_edge
        .into_iter()
        .map(|((caller, callee, kind), (errors, mut durations))| {
            let (caller, callee) = (names.name(caller), names.name(callee));
            Edge {
                caller: caller.to_string(),
                callee: callee.to_string(),
                kind: kind.as_str().to_string(),
                calls: durations.len() as u64,
                errors,
                p50_ns: percentile(&mut durations, 50).to_string(),
                p99_ns: percentile(&mut durations, 99).to_string(),
                policy: policy.mark(caller, callee),
            }
        })
        .collect();
    edge_list.sort_by(|a, b| (&a.caller, &a.callee, &a.kind).cmp(&(&b.caller, &b.callee, &b.kind)));
    let mut service_list: Vec<ServiceNode> = services
        .into_iter()
        .filter(|(id, _)| *id != NONE)
        .map(|(id, counts)| {
            let name = names.name(id);
            ServiceNode {
                name: name.to_string(),
                entry: counts.entry,
                spans: counts.spans,
                errors: counts.errors,
                third_party: third_parties.as_ref().is_some_and(|re| re.is_match(name)),
            }
        })
        .collect();
    service_list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ServiceGraph {
        start: start.to_string(),
        end: end.to_string(),
        services: service_list,
        edges: edge_list,
        spans: span_count,
        incomplete: !unreadable.is_empty(),
        unreadable_segments: unreadable,
    })
}

/// What one thread read of its segments: names interned its own way.
#[derive(Default)]
struct Part {
    names: Interner,
    services: HashMap<u32, ServiceCounts>,
    facts: Vec<SpanFacts>,
    unreadable: Vec<String>,
}

/// Reads `units` into span facts.
fn scan_units(units: &[ScanUnit], filter: &SpanFilter) -> Part {
    let projection = projection();
    let Part {
        mut names,
        mut services,
        mut facts,
        mut unreadable,
    } = Part::default();
    let most = units.iter().map(ScanUnit::span_count).sum::<u64>();
    facts.reserve(usize::try_from(most).unwrap_or(0));
    for unit in units {
        let mut visit = |record: Cow<'_, SpanRecord>| {
            let record = record.as_ref();
            let span = &record.span;
            let service = names.id(record
                .resource
                .attribute(SERVICE_NAME)
                .and_then(AnyValue::as_str)
                .unwrap_or(""));
            let error = span.status.code == StatusCode::Error;
            let parent = span.parent_span_id.filter(|p| !p.is_zero());
            if service != NONE {
                let counts = services.entry(service).or_default();
                counts.spans += 1;
                counts.errors += u64::from(error);
                counts.entry |=
                    parent.is_none() && matches!(span.kind, SpanKind::Server | SpanKind::Consumer);
            }
            // Attribute lookups scan the span's attributes: only where needed.
            let (peer, http) = match span.kind {
                SpanKind::Client | SpanKind::Producer => (
                    names.id(str_attribute(record, SERVICE_PEER_NAME)
                        .or_else(|| str_attribute(record, SERVER_ADDRESS))
                        .unwrap_or("")),
                    span.attribute(HTTP_REQUEST_METHOD).is_some()
                        || span.attribute(HTTP_ROUTE).is_some(),
                ),
                SpanKind::Server => (
                    NONE,
                    span.attribute(HTTP_REQUEST_METHOD).is_some()
                        || span.attribute(HTTP_ROUTE).is_some(),
                ),
                _ => (NONE, false),
            };
            let links = if span.links.is_empty() {
                None
            } else {
                let same: Vec<_> = span
                    .links
                    .iter()
                    .filter(|l| l.trace_id == span.trace_id)
                    .map(|l| l.span_id)
                    .collect();
                (!same.is_empty()).then(|| same.into_boxed_slice())
            };
            facts.push(SpanFacts {
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent,
                service,
                kind: span.kind,
                error,
                http,
                duration_nanos: span.duration_nanos(),
                peer,
                links,
            });
            ControlFlow::Continue(())
        };
        if let Err(e) = unit.for_each_span_projected(filter, projection, &mut visit) {
            let which = unit
                .segment_id()
                .map_or_else(|| "memory".to_string(), |id| id.to_string());
            unreadable.push(format!("segment {which}: {e}"));
        }
    }
    Part {
        names,
        services,
        facts,
        unreadable,
    }
}

/// The `q`th percentile (nearest rank) of `values`, 0 when empty.
/// Reorders `values`.
pub fn percentile(values: &mut [u64], q: u64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let n = values.len() as u64;
    // Nearest rank: the smallest value with at least q% at or below it.
    let rank = (q.min(100) * n).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).unwrap_or(0).min(values.len() - 1);
    *values.select_nth_unstable(index).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let cases: [(&[u64], u64, u64); 7] = [
            (&[], 50, 0),
            (&[7], 99, 7),
            (&[3, 1, 2], 50, 2),
            (&[4, 3, 2, 1], 50, 2),
            (&[4, 3, 2, 1], 99, 4),
            (&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 90, 90),
            (&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 99, 100),
        ];
        for (values, q, want) in cases {
            let mut v = values.to_vec();
            assert_eq!(percentile(&mut v, q), want, "p{q} of {values:?}");
        }
        let mut hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut hundred, 99), 99);
        assert_eq!(percentile(&mut hundred, 50), 50);
    }

    #[test]
    fn third_parties_are_anchored() {
        let mut site = Site::empty();
        assert!(third_parties(&site).unwrap().is_none());
        site.set(
            "third_parties",
            vec![r"partner\.example\.com".into(), "stripe".into()],
        )
        .unwrap();
        let re = third_parties(&site).unwrap().unwrap();
        assert!(re.is_match("partner.example.com") && re.is_match("stripe"));
        assert!(!re.is_match("api.partner.example.com") && !re.is_match("stripe-proxy"));
    }
}
