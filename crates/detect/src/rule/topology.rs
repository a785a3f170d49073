//! `kind: topology`: who may call whom. Runs on assembled traces (see
//! [`crate::assembly`]) and checks the service graph a trace shows
//! against the site's allowed edges and entry services, declared or
//! learned.
//!
//! ```yaml
//! kind: topology
//! detect: [wrong_caller, no_parent, spoofed_context]
//! allowed_edges: $allowed_edges     # the default; or a list of `caller -> callee`
//! entry_services: $entry_services   # the default; or a list of service names
//! learn: 1d                         # optional: also learn them for a day
//! ```

use std::time::Duration;

use saphyr::{MarkedYaml, YamlData};

use super::facts::{FactValue, edge_list};
use super::{Checker, Getter, RuleErrorKind, RuleKind, parse_duration, required, string_of};

/// What a topology rule looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopologyCheck {
    /// A server or consumer span of service B called by service A (its
    /// parent span, or for a consumer a linked producer span, is A's) when
    /// `A -> B` is not allowed.
    WrongCaller,
    /// A server span with no parent span id in a service that is not an
    /// entry service: an internal service reached directly.
    NoParent,
    /// A server span of an entry service whose parent span id names a span
    /// outside the trace: trace context supplied by the caller.
    SpoofedContext,
}

impl TopologyCheck {
    pub const ALL: [TopologyCheck; 3] = [
        TopologyCheck::WrongCaller,
        TopologyCheck::NoParent,
        TopologyCheck::SpoofedContext,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TopologyCheck::WrongCaller => "wrong_caller",
            TopologyCheck::NoParent => "no_parent",
            TopologyCheck::SpoofedContext => "spoofed_context",
        }
    }

    pub fn from_name(name: &str) -> Option<TopologyCheck> {
        TopologyCheck::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether the check needs the allowed edges (else the entry services).
    pub fn needs_edges(self) -> bool {
        self == TopologyCheck::WrongCaller
    }
}

/// `kind: topology`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyRule {
    /// The checks, in the order written, without repeats.
    pub detect: Vec<TopologyCheck>,
    /// Declared `(caller, callee)` service pairs.
    pub allowed_edges: Vec<(String, String)>,
    /// Declared entry services.
    pub entry_services: Vec<String>,
    /// Learn edges and entry services from the traces of this period
    /// (event time from the first trace evaluated); nothing fires while
    /// learning, and afterwards a new edge or entry fires once.
    pub learn: Option<Duration>,
}

impl TopologyRule {
    pub fn checks(&self, check: TopologyCheck) -> bool {
        self.detect.contains(&check)
    }
}

pub(super) const KEYS: [&str; 4] = ["detect", "allowed_edges", "entry_services", "learn"];

pub(super) fn parse(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    let detect = required(checker, root, get, "detect").and_then(|n| parse_checks(checker, n));
    let learn = match get("learn") {
        None => Some(None),
        Some(node) => learn(checker, node).map(Some),
    };
    let edges_node = get("allowed_edges");
    let edges = match edges_node {
        None => Some((checker.site.edges(), true)),
        Some(node) => checker
            .fact_value("allowed_edges", node, Some(&["allowed_edges"]))
            .and_then(|value| {
                let from_site = matches!(value, FactValue::Fact(..));
                edge_list(checker, "allowed_edges", value).map(|e| (e, from_site))
            }),
    };
    let entries = match get("entry_services") {
        None => Some((checker.site.entry_services.clone(), true)),
        Some(node) => checker
            .fact_value("entry_services", node, Some(&["entry_services"]))
            .map(|value| match value {
                FactValue::Fact(..) => (checker.site.entry_services.clone(), true),
                FactValue::List(items) => {
                    (items.iter().map(|(s, _)| (*s).to_string()).collect(), false)
                }
            }),
    };
    let (detect, learn) = (detect?, learn?);
    let ((allowed_edges, edges_from_site), (entry_services, entries_from_site)) =
        (edges?, entries?);
    // Without learning, a check whose facts are empty has nothing to
    // compare against: a site fact left empty makes the rule inactive, an
    // empty inline list is a mistake.
    if learn.is_none() {
        let needs_edges = detect.iter().any(|c| c.needs_edges());
        let needs_entries = detect.iter().any(|c| !c.needs_edges());
        for (needed, empty, from_site, key) in [
            (
                needs_edges,
                allowed_edges.is_empty(),
                edges_from_site,
                "allowed_edges",
            ),
            (
                needs_entries,
                entry_services.is_empty(),
                entries_from_site,
                "entry_services",
            ),
        ] {
            if !(needed && empty) {
                continue;
            }
            if from_site {
                checker.empty_fact(key);
            } else {
                checker.error(
                    get(key).unwrap_or(root),
                    RuleErrorKind::Invalid {
                        key: key.to_string(),
                        reason: "empty, and the rule does not `learn`".to_string(),
                    },
                );
                return None;
            }
        }
    }
    Some(RuleKind::Topology(TopologyRule {
        detect,
        allowed_edges,
        entry_services,
        learn,
    }))
}

fn parse_checks(checker: &mut Checker<'_>, node: &MarkedYaml<'_>) -> Option<Vec<TopologyCheck>> {
    let names: Vec<&str> = TopologyCheck::ALL.iter().map(|c| c.as_str()).collect();
    let YamlData::Sequence(items) = &node.data else {
        checker.error(
            node,
            RuleErrorKind::WrongType {
                key: "detect".to_string(),
                expected: "a list of checks, e.g. [wrong_caller, no_parent, spoofed_context]",
            },
        );
        return None;
    };
    if items.is_empty() {
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: "detect".to_string(),
                reason: format!("name at least one of: {}", names.join(", ")),
            },
        );
        return None;
    }
    let before = checker.errors.len();
    let mut checks = Vec::with_capacity(items.len());
    for item in items {
        let name = string_of(item).unwrap_or("");
        match TopologyCheck::from_name(name) {
            Some(check) if checks.contains(&check) => checker.error(
                item,
                RuleErrorKind::Invalid {
                    key: "detect".to_string(),
                    reason: format!("`{name}` is listed twice"),
                },
            ),
            Some(check) => checks.push(check),
            None => checker.error(
                item,
                RuleErrorKind::Invalid {
                    key: "detect".to_string(),
                    reason: format!(
                        "unknown check `{name}` (expected one of: {})",
                        names.join(", ")
                    ),
                },
            ),
        }
    }
    (checker.errors.len() == before).then_some(checks)
}

/// A `learn` duration (at most 7 days, as windows).
pub(super) fn learn(checker: &mut Checker<'_>, node: &MarkedYaml<'_>) -> Option<Duration> {
    let Some(text) = string_of(node) else {
        checker.error(
            node,
            RuleErrorKind::WrongType {
                key: "learn".to_string(),
                expected: "a duration such as 1d",
            },
        );
        return None;
    };
    match parse_duration(text) {
        Ok(d) => Some(d),
        Err(reason) => {
            checker.error(
                node,
                RuleErrorKind::BadDuration {
                    text: text.to_string(),
                    reason,
                },
            );
            None
        }
    }
}
