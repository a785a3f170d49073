//! The compliance report of a period: who (`enduser.id`) and which
//! services accessed personal data, which flows reached third parties, the
//! policy violations raised (data-flow and topology alerts) and whether
//! the store's manifest chain verifies (`GET /api/v1/reports/compliance`,
//! `tracewarden report compliance`).
//!
//! Personal data is decided as the data-flow rule decides it
//! ([`PersonalData::find`]): a classification attribute
//! (`app.data.classification = pii`), an attribute whose name says so
//! (`user.email`), or a value holding an e-mail address, card number (Luhn),
//! phone number, national id or IBAN. Each span counts once, under the first
//! of these found. A third-party flow is a span whose destination matches
//! the site's `third_parties` ([`DataFlowRule::destination`]): a client or
//! producer span naming the party, or a server span of the party itself.
//!
//! One pass over the spans of the period: segments pruned by time, read
//! without events and the renamed originals; the segments are split
//! between threads (one per core) and their tallies merged. Blocking.

pub mod render;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use tracewarden_alert::Alert;
use tracewarden_detect::rule::{DataFlowRule, NameCache, PersonalData, Site};
use tracewarden_model::AnyValue;
use tracewarden_model::semconv::{ENDUSER_ID, SERVICE_NAME};
use tracewarden_store::{ScanUnit, Snapshot, SpanFilter, SpanProjection, SpanRecord, VerifyReport};

use crate::graph::{GraphError, third_parties};

/// Rule kinds whose alerts are policy violations in the report.
pub const VIOLATION_KINDS: [&str; 2] = ["data_flow", "topology"];

/// The report (the API's JSON; CSV and HTML render it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceReport {
    /// The period, Unix nanoseconds as strings.
    pub start: String,
    pub end: String,
    pub generated_at: String,
    pub summary: Summary,
    /// By accesses, most first.
    pub users: Vec<UserAccess>,
    /// By accesses, most first.
    pub services: Vec<ServiceAccess>,
    /// One row per (user, service, classification), by user then service.
    pub accesses: Vec<Access>,
    /// By calls, most first.
    pub third_party_flows: Vec<ThirdPartyFlow>,
    /// By first seen.
    pub violations: Vec<Violation>,
    pub integrity: Integrity,
    /// A segment could not be read: figures may be low.
    pub incomplete: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable_segments: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Spans read in the period.
    pub spans: u64,
    /// Spans carrying personal data.
    pub personal_data_spans: u64,
    /// Distinct `enduser.id`s with an access (spans without one are not a user).
    pub users: u64,
    /// Services with an access.
    pub services: u64,
    /// Spans sending to (or served by) a third party.
    pub third_party_calls: u64,
    /// Of which carrying personal data.
    pub third_party_calls_with_personal_data: u64,
    pub violations: u64,
}

/// One user's accesses to personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAccess {
    pub user: String,
    pub accesses: u64,
    pub services: Vec<String>,
    pub classifications: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// One service's accesses to personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccess {
    pub service: String,
    pub accesses: u64,
    /// Distinct users among them.
    pub users: u64,
    pub classifications: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// Spans of one user in one service carrying one kind of personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// `enduser.id`; empty when the spans carry none.
    pub user: String,
    pub service: String,
    /// `email`, `payment_card`, `phone`, `national_id`, `iban`, an
    /// attribute-name entry (`date_of_birth`), or `classification pii`.
    pub classification: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// Calls from a service to a third party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThirdPartyFlow {
    pub service: String,
    /// The host, peer, queue or service name that matched.
    pub destination: String,
    /// The attribute it came from.
    pub field: String,
    pub calls: u64,
    /// Calls whose span carried personal data.
    pub with_personal_data: u64,
    pub classifications: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// An alert of a data-flow or topology rule whose evidence falls in the
/// period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_kind: String,
    pub severity: String,
    pub state: String,
    pub title: String,
    /// The rule's key (`caller`, `callee`, `destination`, `data`...).
    pub labels: BTreeMap<String, String>,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// The store's integrity as `verify` finds it when the report is made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integrity {
    /// The chain verifies (no failure) and was checked.
    pub ok: bool,
    /// `verified` (signatures checked and good), `failed`, or `unsigned`
    /// (the store does not sign manifests).
    pub signatures: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Segments holding spans of the period (ids).
    pub segments_in_period: Vec<u64>,
    /// Manifests and data files checked (the whole chain).
    pub segments_checked: u64,
    pub files_checked: u64,
    pub bytes_checked: u64,
    /// `chain.head`: segment id and manifest SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_segment: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha256: Option<String>,
    /// What failed, as `tracewarden verify` says it.
    pub failures: Vec<String>,
}

impl Integrity {
    /// From a verification (or why it could not run).
    pub fn new(verified: Result<VerifyReport, String>, segments_in_period: Vec<u64>) -> Integrity {
        match verified {
            Ok(report) => {
                let failures: Vec<String> = report.failures().map(ToString::to_string).collect();
                let bad_signature = report.failures().any(|f| {
                    matches!(
                        f,
                        tracewarden_store::Finding::BadSignature { .. }
                            | tracewarden_store::Finding::Unsigned { .. }
                    )
                });
                let signatures = match (&report.key_id, bad_signature) {
                    (None, _) => "unsigned",
                    (Some(_), true) => "failed",
                    (Some(_), false) => "verified",
                };
                Integrity {
                    ok: report.ok,
                    signatures: signatures.to_string(),
                    key_id: report.key_id.clone(),
                    segments_in_period,
                    segments_checked: report.segments_checked,
                    files_checked: report.files_checked,
                    bytes_checked: report.bytes_checked,
                    head_segment: report.head.as_ref().map(|h| h.0),
                    head_sha256: report.head.map(|h| h.1),
                    failures,
                }
            }
            Err(reason) => Integrity {
                ok: false,
                signatures: "unknown".to_string(),
                segments_in_period,
                failures: vec![format!("verification could not run: {reason}")],
                ..Integrity::default()
            },
        }
    }
}

/// What the report reads besides the spans.
pub struct Inputs<'a> {
    pub start: u64,
    pub end: u64,
    pub now: u64,
    pub site: &'a Site,
    /// Every alert (those in the period and of [`VIOLATION_KINDS`] are kept).
    pub alerts: &'a [Alert],
    /// Verifies the store (run on its own thread, beside the scan: hashing
    /// files is I/O, the scan CPU), or says why it could not.
    pub verify: &'a (dyn Fn() -> Result<VerifyReport, String> + Sync),
}

/// (count, first, last) of a group of spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    count: u64,
    first: u64,
    last: u64,
}

impl Seen {
    fn new(ts: u64) -> Seen {
        Seen {
            count: 1,
            first: ts,
            last: ts,
        }
    }

    fn add(&mut self, other: Seen) {
        self.count += other.count;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

#[derive(Default)]
struct FlowTally {
    seen: Option<Seen>,
    with_personal_data: u64,
    classifications: BTreeSet<String>,
}

/// What one thread counted over its segments.
#[derive(Default)]
struct Tally {
    spans: u64,
    personal: u64,
    third_party: u64,
    third_party_personal: u64,
    /// (user, service, classification).
    accesses: HashMap<(String, String, String), Seen>,
    /// (service, destination, field).
    flows: HashMap<(String, String, String), FlowTally>,
    unreadable: Vec<String>,
    /// Attribute names that say personal data, per key (keys repeat).
    names: NameCache,
}

fn add_seen<K: Eq + std::hash::Hash>(map: &mut HashMap<K, Seen>, key: K, seen: Seen) {
    map.entry(key).and_modify(|s| s.add(seen)).or_insert(seen);
}

impl Tally {
    fn span(&mut self, rule: &DataFlowRule, record: &SpanRecord) {
        self.spans += 1;
        let ts = record.span.start_time_unix_nano;
        let service = record
            .resource
            .attribute(SERVICE_NAME)
            .and_then(AnyValue::as_str)
            .unwrap_or("");
        let hit = rule
            .personal_data
            .find_cached(&record.span.attributes, &mut self.names);
        if let Some(hit) = &hit {
            self.personal += 1;
            let user = record
                .span
                .attribute(ENDUSER_ID)
                .and_then(AnyValue::as_str)
                .unwrap_or("");
            add_seen(
                &mut self.accesses,
                (user.to_string(), service.to_string(), hit.kind.clone()),
                Seen::new(ts),
            );
        }
        if let Some(destination) = rule.destination(record).filter(|d| d.third_party) {
            self.third_party += 1;
            let flow = self
                .flows
                .entry((
                    service.to_string(),
                    destination.name.to_string(),
                    destination.field.to_string(),
                ))
                .or_default();
            match &mut flow.seen {
                Some(seen) => seen.add(Seen::new(ts)),
                None => flow.seen = Some(Seen::new(ts)),
            }
            if let Some(hit) = hit {
                self.third_party_personal += 1;
                flow.with_personal_data += 1;
                flow.classifications.insert(hit.kind);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.spans += other.spans;
        self.personal += other.personal;
        self.third_party += other.third_party;
        self.third_party_personal += other.third_party_personal;
        for (key, seen) in other.accesses {
            add_seen(&mut self.accesses, key, seen);
        }
        for (key, flow) in other.flows {
            let mine = self.flows.entry(key).or_default();
            match (&mut mine.seen, flow.seen) {
                (Some(a), Some(b)) => a.add(b),
                (None, b) => mine.seen = b,
                _ => {}
            }
            mine.with_personal_data += flow.with_personal_data;
            mine.classifications.extend(flow.classifications);
        }
        self.unreadable.extend(other.unreadable);
    }
}

/// What the report reads of a span: everything but events, links and the
/// renamed originals (personal data can sit in any attribute).
fn projection() -> SpanProjection {
    SpanProjection {
        events: false,
        links: false,
        original_attributes: false,
        ..SpanProjection::ALL
    }
}

fn scan(units: &[ScanUnit], filter: &SpanFilter, rule: &DataFlowRule) -> Tally {
    let mut tally = Tally::default();
    for unit in units {
        let mut visit = |record: Cow<'_, SpanRecord>| {
            tally.span(rule, record.as_ref());
            ControlFlow::Continue(())
        };
        if let Err(e) = unit.for_each_span_projected(filter, projection(), &mut visit) {
            let which = unit
                .segment_id()
                .map_or_else(|| "memory".to_string(), |id| id.to_string());
            tally.unreadable.push(format!("segment {which}: {e}"));
        }
    }
    tally
}

/// Builds the report of `inputs.start..inputs.end` over `snapshot`.
pub fn build(snapshot: &Snapshot, inputs: Inputs<'_>) -> Result<ComplianceReport, GraphError> {
    let (start, end) = (inputs.start, inputs.end);
    let rule = DataFlowRule {
        third_parties: third_parties(inputs.site)?,
        allowed: None,
        personal_data: PersonalData::default(),
    };
    let (filter, units) = crate::parallel::period_units(snapshot, start, end);
    let mut segments_in_period: Vec<u64> = units.iter().filter_map(ScanUnit::segment_id).collect();
    segments_in_period.sort_unstable();
    // Each tier read on its own thread (several at once: the value
    // detectors make the scan CPU-bound), the chain verified beside them.
    let mut tally = Tally::default();
    let verify = inputs.verify;
    let verified = std::thread::scope(|scope| {
        let verifying = scope.spawn(verify);
        for (_, part) in crate::parallel::in_parallel(&units, |unit| {
            scan(std::slice::from_ref(unit), &filter, &rule)
        }) {
            tally.merge(part);
        }
        verifying
            .join()
            .unwrap_or_else(|_| Err("the verification thread failed".to_string()))
    });
    Ok(assemble(tally, inputs, verified, segments_in_period))
}

fn assemble(
    tally: Tally,
    inputs: Inputs<'_>,
    verified: Result<VerifyReport, String>,
    segments_in_period: Vec<u64>,
) -> ComplianceReport {
    let (start, end) = (inputs.start, inputs.end);
    let mut accesses: Vec<Access> = tally
        .accesses
        .iter()
        .map(|((user, service, classification), seen)| Access {
            user: user.clone(),
            service: service.clone(),
            classification: classification.clone(),
            count: seen.count,
            first_seen: seen.first.to_string(),
            last_seen: seen.last.to_string(),
        })
        .collect();
    accesses.sort_by(|a, b| {
        (&a.user, &a.service, &a.classification).cmp(&(&b.user, &b.service, &b.classification))
    });
    let users = group(&tally.accesses, |(user, _, _)| user.as_str(), |(_, s, _)| s);
    let services = group(
        &tally.accesses,
        |(_, service, _)| service.as_str(),
        |(u, _, _)| u,
    );
    let users: Vec<UserAccess> = users
        .into_iter()
        .filter(|(user, _)| !user.is_empty())
        .map(|(user, g)| UserAccess {
            user: user.to_string(),
            accesses: g.seen.count,
            services: g.others.into_iter().map(str::to_string).collect(),
            classifications: g.classifications.into_iter().map(str::to_string).collect(),
            first_seen: g.seen.first.to_string(),
            last_seen: g.seen.last.to_string(),
        })
        .collect();
    let services: Vec<ServiceAccess> = services
        .into_iter()
        .map(|(service, g)| ServiceAccess {
            service: service.to_string(),
            accesses: g.seen.count,
            users: g.others.iter().filter(|u| !u.is_empty()).count() as u64,
            classifications: g.classifications.into_iter().map(str::to_string).collect(),
            first_seen: g.seen.first.to_string(),
            last_seen: g.seen.last.to_string(),
        })
        .collect();
    let mut flows: Vec<ThirdPartyFlow> = tally
        .flows
        .into_iter()
        .filter_map(|((service, destination, field), flow)| {
            let seen = flow.seen?;
            Some(ThirdPartyFlow {
                service,
                destination,
                field,
                calls: seen.count,
                with_personal_data: flow.with_personal_data,
                classifications: flow.classifications.into_iter().collect(),
                first_seen: seen.first.to_string(),
                last_seen: seen.last.to_string(),
            })
        })
        .collect();
    flows.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| (&a.service, &a.destination).cmp(&(&b.service, &b.destination)))
    });
    let mut violations: Vec<Violation> = inputs
        .alerts
        .iter()
        .filter(|a| VIOLATION_KINDS.contains(&a.labels.get(tracewarden_alert::labels::RULE_KIND)))
        .filter(|a| {
            a.evidence.first_seen_unix_nano < end && a.evidence.last_seen_unix_nano >= start
        })
        .map(violation)
        .collect();
    violations.sort_by(|a, b| {
        let first = |v: &Violation| v.first_seen.parse::<u64>().unwrap_or(0);
        first(a)
            .cmp(&first(b))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    let summary = Summary {
        spans: tally.spans,
        personal_data_spans: tally.personal,
        users: users.len() as u64,
        services: services.len() as u64,
        third_party_calls: tally.third_party,
        third_party_calls_with_personal_data: tally.third_party_personal,
        violations: violations.len() as u64,
    };
    ComplianceReport {
        start: start.to_string(),
        end: end.to_string(),
        generated_at: inputs.now.to_string(),
        summary,
        users,
        services,
        accesses,
        third_party_flows: flows,
        violations,
        integrity: Integrity::new(verified, segments_in_period),
        incomplete: !tally.unreadable.is_empty(),
        unreadable_segments: tally.unreadable,
    }
}

fn violation(alert: &Alert) -> Violation {
    use tracewarden_alert::labels::{ALERTNAME, RULE_KIND, SEVERITY};
    Violation {
        fingerprint: alert.fingerprint.to_string(),
        rule_id: alert.labels.get(ALERTNAME).to_string(),
        rule_kind: alert.labels.get(RULE_KIND).to_string(),
        severity: alert.labels.get(SEVERITY).to_string(),
        state: alert.state.as_str().to_string(),
        title: alert
            .annotation(tracewarden_alert::alert::TITLE)
            .to_string(),
        labels: alert
            .labels
            .iter()
            .filter(|(k, _)| ![ALERTNAME, RULE_KIND, SEVERITY].contains(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        count: alert.evidence.count,
        first_seen: alert.evidence.first_seen_unix_nano.to_string(),
        last_seen: alert.evidence.last_seen_unix_nano.to_string(),
    }
}

/// Accesses grouped by one part of the key, most accesses first.
struct Group<'a> {
    seen: Seen,
    others: BTreeSet<&'a str>,
    classifications: BTreeSet<&'a str>,
}

type AccessKey = (String, String, String);

fn group<'a>(
    accesses: &'a HashMap<AccessKey, Seen>,
    by: impl Fn(&'a AccessKey) -> &'a str,
    other: impl Fn(&'a AccessKey) -> &'a String,
) -> Vec<(&'a str, Group<'a>)> {
    let mut groups: HashMap<&str, Group<'_>> = HashMap::new();
    for (key, seen) in accesses {
        let g = groups.entry(by(key)).or_insert(Group {
            seen: Seen {
                count: 0,
                first: u64::MAX,
                last: 0,
            },
            others: BTreeSet::new(),
            classifications: BTreeSet::new(),
        });
        g.seen.add(*seen);
        g.others.insert(other(key).as_str());
        g.classifications.insert(key.2.as_str());
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.seen.count.cmp(&a.1.seen.count).then(a.0.cmp(b.0)));
    groups
}

#[cfg(test)]
mod tests;
