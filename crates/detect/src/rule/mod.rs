//! Detection rules as data: one YAML file per rule, parsed into typed
//! structs, with every mistake reported by file, line and column.
//!
//! A rule has an `id`, a `title`, a `description`, a `severity`, MITRE
//! ATT&CK `tags`, a `response` for the analyst, `enabled`, and a `kind`
//! with its parameters, each built on a TraceQL `condition` (the parser of
//! search: a hunt becomes a rule unchanged):
//!
//! - [`RuleKind::Match`]: a span satisfies the condition (or, for
//!   structural TraceQL, a whole trace does);
//! - [`RuleKind::Threshold`]: matching spans per `group_by` key in a
//!   sliding `window` reach `count`, or the number of `distinct` values does;
//! - [`RuleKind::Sequence`]: ordered `steps` by the same key within a window;
//! - [`RuleKind::NewTerms`]: a value (tuple of `fields`) never seen before
//!   for its `group_by` key, after a `learning` period;
//! - [`RuleKind::Baseline`]: a key's matching spans per `interval` far above
//!   its own moving baseline (bursts, floods).
//! - [`RuleKind::Topology`]: the service graph of assembled traces against
//!   allowed edges and entry services (declared as site facts, or learned);
//! - [`RuleKind::DataFlow`]: personal data reaching a third party or a
//!   service outside an allowed set.
//!
//! Match and threshold rules may add a `payload` section ([`PayloadMatch`]):
//! the span must also carry an attack payload (SQL injection, XSS, path
//! traversal, command injection) in one of the named string attributes,
//! found by [`crate::inject`] once the condition holds. Match, threshold
//! and sequence rules may list `evidence` fields, whose values in the span
//! that fires the detection names ([`crate::engine::field_evidence`]).
//!
//! [`load_dir`] loads every `*.yaml`/`*.yml` file of a directory and
//! returns all rules or all errors; [`parse_rule`] parses one file's text;
//! [`test_dir`] runs each rule against its fixtures. The format is
//! documented in `docs/DETECTION.md`, section "Rules".
//!
//! ```
//! use std::path::Path;
//! use tracewarden_detect::rule::{RuleKind, parse_rule};
//!
//! let text = r#"
//! id: brute-force-login
//! title: Brute-force login
//! severity: high
//! tags: [T1110.001]
//! kind: threshold
//! condition: '{ span.http.route =~ ".*login.*" && span.http.response.status_code = 401 }'
//! group_by: [span.client.address]
//! window: 5m
//! count: 10
//! "#;
//! let rule = parse_rule(text, Path::new("brute-force-login.yaml")).unwrap();
//! assert!(matches!(rule.kind, RuleKind::Threshold(ref t) if t.count == 10));
//!
//! let errors = parse_rule("id: x\ntitle: y\nseverity: urgent\nkind: match\ncondition: '{ }'\n", Path::new("x.yaml")).unwrap_err();
//! assert_eq!(errors[0].to_string(), "x.yaml:3:11: unknown severity `urgent` (expected one of: info, low, medium, high, critical)");
//! ```

mod baseline;
mod block;
mod builtin;
mod data_flow;
mod duration;
mod error;
mod exception;
mod facts;
mod field;
pub(crate) mod fixture;
pub mod join;
mod new_terms;
mod payload;
mod site;
mod topology;

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use tracewarden_model::{AttributeKey, RecordView, SpanRecord};
use tracewarden_traceql::{ParseError, Query};

pub use baseline::{
    BaselineRule, DEFAULT_BASELINE_LEARNING, DEFAULT_DEVIATIONS, DEFAULT_MIN_COUNT, DistinctGate,
    MAX_BASELINE_LEARNING, MAX_INTERVAL, MIN_INTERVAL,
};
pub use block::{ActorKind, BlockAction, DEFAULT_TOKEN_FIELD, MAX_BLOCK};
pub use builtin::{BUILTIN_RULE_FILES, builtin_rule_ids, builtin_rules, builtin_rules_for};
pub use data_flow::{
    DEFAULT_CLASSIFICATION_KEYS, DEFAULT_CLASSIFICATION_VALUES, DESTINATION_KEYS, DataFlowRule,
    Destination, NameCache, PersonalData, PiiHit,
};
pub use duration::{MAX_WINDOW, format_duration, parse_duration};
pub use error::{LoadErrors, RuleError, RuleErrorKind};
pub use exception::{Exception, MAX_EXCEPTION_RULES, RuleException, apply_exceptions};
pub(crate) use field::push_decimal;
pub use field::{FieldRef, MAX_VALUE_BYTES};
pub use fixture::{
    CaseResult, Expectation, FixtureCase, FixtureError, FixtureFile, FixtureLog, FixtureSite,
    FixtureSpan, Report, RuleReport, read_fixture, run_fixture, test_dir, test_dir_for,
};
pub use new_terms::{
    DEFAULT_MAX_TERMS_PER_KEY, MAX_TERM_FIELDS, MAX_TERMS_PER_KEY, NewKeys, NewTermsRule,
};
pub use payload::{
    DETECTOR_NAMES, MAX_PAYLOAD_FIELD_BYTES, MAX_PAYLOAD_FIELDS, PayloadHit, PayloadMatch,
    detector_from_name, detector_name,
};
pub use site::{FACT_NAMES, Site, UnknownFact};
pub use topology::{TopologyCheck, TopologyRule};

/// Largest rule file read, in bytes.
pub const MAX_RULE_FILE_BYTES: u64 = 1024 * 1024;
/// Largest `count` of a threshold rule: state per key keeps at most `count`
/// timestamps, so this bounds memory per key.
pub const MAX_COUNT: u64 = 10_000;
/// Largest `distinct.min` of a baseline rule, and the distinct values a
/// threshold key counts exactly: a larger `count` with `distinct` is
/// reached by an estimate (see `engine::threshold`).
pub const MAX_DISTINCT: u64 = 1_000;
/// Largest `count` of a threshold rule with `distinct`.
pub const MAX_DISTINCT_COUNT: u64 = 1_000_000;
/// Most steps in a sequence rule.
pub const MAX_STEPS: usize = 16;
/// Largest `count` of one sequence step.
pub const MAX_STEP_COUNT: u64 = 1_000;
/// Most fields in `group_by`.
pub const MAX_GROUP_BY: usize = 8;
/// Most fields in `evidence`.
pub const MAX_EVIDENCE_FIELDS: usize = 8;

/// How serious a detection of the rule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity named `text` (lowercase, as in rule files).
    pub fn from_name(text: &str) -> Option<Severity> {
        Some(match text {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TraceQL condition of a rule.
#[derive(Clone, Debug)]
pub struct Condition {
    text: String,
    query: Query,
    span_level: bool,
}

impl Condition {
    /// Parses a condition. Errors carry the position within `text`.
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        let query = tracewarden_traceql::parse(text)?;
        let span_level = !query.needs_whole_trace() && !has_pipeline_stage(&query.to_string());
        Ok(Condition {
            text: text.to_string(),
            query,
            span_level,
        })
    }

    /// The condition as written in the rule file.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Whether the condition is one spanset filter (`{ ... }`), decided
    /// span by span. False for structural operators, spanset `&&`/`||`,
    /// trace-level intrinsics and pipelines (`| count() > 3`, `| by(...)`):
    /// those need the whole trace.
    pub fn is_span_level(&self) -> bool {
        self.span_level
    }

    /// For a span-level condition: whether the span satisfies it. For the
    /// others, whether it may take part in a match (a pre-filter). Allocates
    /// nothing.
    pub fn matches_span(&self, span: &SpanRecord) -> bool {
        self.query.matches_span(span)
    }

    /// [`Condition::matches_span`] through the engine's view of the span.
    pub fn matches_view(&self, view: &mut RecordView<'_, '_>) -> bool {
        self.query.matches_view(view)
    }
}

/// Whether the canonical text of a query has a pipeline stage (a `|` at the
/// top level, outside strings and braces). `Query::matches_span` decides
/// only the first spanset filter, so a condition with stages cannot be
/// decided span by span.
fn has_pipeline_stage(canonical: &str) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = canonical.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '(' => depth += 1,
            '}' | ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => {
                if chars.peek() == Some(&'|') {
                    chars.next();
                } else {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// A rule loaded from a file.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// MITRE ATT&CK technique ids (`T1110`, `T1110.003`).
    pub tags: Vec<String>,
    /// What an analyst should do when the rule fires.
    pub response: String,
    pub enabled: bool,
    /// Why the rule does not run although enabled: it references site
    /// facts the site leaves empty (see [`Site`]). `None`: it runs.
    pub inactive: Option<String>,
    /// What the rule reads: spans (default) or log records.
    pub source: Source,
    /// For `source: logs`: span attribute names a record takes from the
    /// span it belongs to (same trace and span id) when it lacks them
    /// (`join:`; see [`join`] and docs/DETECTION.md, "Joining a record to
    /// its span"). Empty: the record is evaluated alone, at once.
    pub join: Vec<String>,
    pub kind: RuleKind,
    /// What to block when the rule fires (`block:`; see [`BlockAction`]).
    pub block: Option<BlockAction>,
    /// Fields of the span that made the rule fire (of the spans a
    /// whole-trace match returned), named with their values in the
    /// detection's evidence
    /// (`evidence:`; see [`crate::engine::field_evidence`]). Empty: none.
    pub evidence: Vec<FieldRef>,
    /// Exceptions applied to the rule ([`apply_exceptions`]): spans that
    /// satisfy one are left out. Not part of the file, nor of the digest: a
    /// rule keeps its state when its exceptions change.
    pub exceptions: Vec<RuleException>,
    /// The file the rule came from.
    pub file: PathBuf,
    /// 1-based line of the `id` value in the file.
    pub line: usize,
    /// 1-based column of the `id` value in the file.
    pub column: usize,
    /// A stable hash (FNV-1a, 64 bits) of what the rule matches and counts:
    /// the file's entries as parsed, but for its title, description,
    /// response, tags, severity, `enabled` and `block`. A reload keeps the
    /// state of a rule whose id and digest are unchanged (so rewording a
    /// rule, or changing its severity, keeps its windows), and a
    /// checkpoint restores only into the same rule.
    pub digest: u64,
}

/// What a rule's conditions are evaluated on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// Spans (the default).
    #[default]
    Spans,
    /// Log records, through their span-shaped view (`span.log.body`,
    /// `span.log.severity_number`, the record's attributes; see
    /// docs/DETECTION.md, "Rules on log records").
    Logs,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Spans => "spans",
            Source::Logs => "logs",
        }
    }
}

/// The kind of a rule and its parameters.
#[derive(Clone, Debug)]
pub enum RuleKind {
    Match(MatchRule),
    Threshold(ThresholdRule),
    Sequence(SequenceRule),
    NewTerms(NewTermsRule),
    Baseline(BaselineRule),
    Topology(TopologyRule),
    DataFlow(DataFlowRule),
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Match(_) => "match",
            RuleKind::Threshold(_) => "threshold",
            RuleKind::Sequence(_) => "sequence",
            RuleKind::NewTerms(_) => "new_terms",
            RuleKind::Baseline(_) => "baseline",
            RuleKind::Topology(_) => "topology",
            RuleKind::DataFlow(_) => "data_flow",
        }
    }

    /// Whether the rule runs on assembled traces (a whole-trace match, a
    /// topology rule, the propagation part of a data-flow rule), so the
    /// engine must buffer spans per trace.
    pub fn needs_traces(&self) -> bool {
        match self {
            RuleKind::Match(m) => m.needs_whole_trace(),
            RuleKind::Topology(_) | RuleKind::DataFlow(_) => true,
            RuleKind::Threshold(_)
            | RuleKind::Sequence(_)
            | RuleKind::NewTerms(_)
            | RuleKind::Baseline(_) => false,
        }
    }
}

/// `kind: match`.
#[derive(Clone, Debug)]
pub struct MatchRule {
    pub condition: Condition,
    /// Also requires an attack payload in the span (span-level rules only).
    pub payload: Option<PayloadMatch>,
    /// One detection per key and period instead of one per span.
    pub suppress: Option<Suppress>,
}

/// `suppress:` of a match rule: after a detection, matching spans with the
/// same `by` values are not reported again for `for` (event time). The
/// detection carries the `by` values as its key (the actor); a span lacking
/// one of them still fires, with an empty value for it.
#[derive(Clone, Debug)]
pub struct Suppress {
    pub by: Vec<FieldRef>,
    pub period: Duration,
}

impl MatchRule {
    /// Whether the rule is decided on whole traces (structural TraceQL, a
    /// pipeline) rather than span by span.
    pub fn needs_whole_trace(&self) -> bool {
        !self.condition.is_span_level()
    }
}

/// `kind: threshold`.
#[derive(Clone, Debug)]
pub struct ThresholdRule {
    pub condition: Condition,
    /// The key: spans are counted per distinct tuple of these values. Empty:
    /// one key for all spans.
    pub group_by: Vec<FieldRef>,
    pub window: Duration,
    /// Fires when the matching spans (or the distinct values) per key in
    /// the window reach this.
    pub count: u64,
    /// Count distinct values of this field instead of spans.
    pub distinct: Option<FieldRef>,
    /// Counts only spans that also carry an attack payload.
    pub payload: Option<PayloadMatch>,
}

/// `kind: sequence`.
#[derive(Clone, Debug)]
pub struct SequenceRule {
    pub group_by: Vec<FieldRef>,
    /// The whole sequence, first span of the first step to the last span of
    /// the last step, fits in this.
    pub window: Duration,
    pub steps: Vec<Step>,
}

/// One step of a sequence.
#[derive(Clone, Debug)]
pub struct Step {
    pub condition: Condition,
    /// Spans that must satisfy the condition for the step (default 1).
    pub count: u64,
}

const COMMON_KEYS: [&str; 11] = [
    "id",
    "title",
    "description",
    "severity",
    "tags",
    "response",
    "enabled",
    "source",
    "join",
    "kind",
    "block",
];
/// The kinds that may read log records (`source: logs`).
const LOG_KINDS: [&str; 3] = ["match", "threshold", "sequence"];
const KIND_KEYS: [&str; 26] = [
    "condition",
    "evidence",
    "suppress",
    "group_by",
    "window",
    "count",
    "distinct",
    "steps",
    "payload",
    "fields",
    "learning",
    "max_terms_per_key",
    "new_keys",
    "interval",
    "deviations",
    "factor",
    "min_count",
    "detect",
    "allowed_edges",
    "entry_services",
    "learn",
    "third_parties",
    "allowed",
    "classification_keys",
    "classification_values",
    "attribute_names",
];
/// The kinds, as rule files name them.
pub const KIND_NAMES: [&str; 7] = [
    "match",
    "threshold",
    "sequence",
    "new_terms",
    "baseline",
    "topology",
    "data_flow",
];
const STEP_KEYS: [&str; 2] = ["condition", "count"];
const PAYLOAD_KEYS: [&str; 2] = ["detect", "fields"];

fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "new_terms" => &new_terms::KEYS,
        "baseline" => &baseline::KEYS,
        "match" => &["condition", "payload", "suppress", "evidence"],
        "threshold" => &[
            "condition",
            "group_by",
            "window",
            "count",
            "distinct",
            "payload",
            "evidence",
        ],
        "sequence" => &["group_by", "window", "steps", "evidence"],
        "topology" => &topology::KEYS,
        "data_flow" => &data_flow::KEYS,
        _ => &KIND_KEYS,
    }
}

type Mapping<'a> = Vec<(&'a str, &'a MarkedYaml<'a>, &'a MarkedYaml<'a>)>;

/// Collects errors for one file.
struct Checker<'s> {
    file: &'s Path,
    source: &'s str,
    site: &'s Site,
    /// Site facts referenced by the rule's conditions that the site leaves
    /// empty.
    empty_facts: Vec<String>,
    errors: Vec<RuleError>,
    /// The rule's id and its position, once read: known even when the
    /// file has other mistakes, so duplicates are reported in the same pass.
    found_id: Option<(String, usize, usize)>,
}

impl<'s> Checker<'s> {
    fn error_at(&mut self, line: usize, column: usize, kind: RuleErrorKind) {
        self.errors.push(RuleError {
            file: self.file.to_path_buf(),
            line,
            column,
            kind,
        });
    }

    fn error(&mut self, node: &MarkedYaml<'_>, kind: RuleErrorKind) {
        let (line, column) = position(node);
        self.error_at(line, column, kind);
    }

    /// The string/key pairs of a mapping node, reporting non-string keys,
    /// unknown keys (not in `allowed`) and keys valid only for other kinds.
    fn mapping<'a>(
        &mut self,
        node: &'a MarkedYaml<'a>,
        what: &'static str,
        allowed: &[&str],
        kind: Option<&str>,
    ) -> Option<Mapping<'a>> {
        let YamlData::Mapping(map) = &node.data else {
            self.error(
                node,
                RuleErrorKind::WrongType {
                    key: what.to_string(),
                    expected: "a mapping",
                },
            );
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(name) = string_of(key) else {
                self.error(
                    key,
                    RuleErrorKind::WrongType {
                        key: "a key".to_string(),
                        expected: "a string",
                    },
                );
                continue;
            };
            if !allowed.contains(&name) {
                match kind {
                    Some(kind) if KIND_KEYS.contains(&name) => self.error(
                        key,
                        RuleErrorKind::KeyNotForKind {
                            key: name.to_string(),
                            kind: kind.to_string(),
                        },
                    ),
                    _ => self.error(
                        key,
                        RuleErrorKind::UnknownKey {
                            key: name.to_string(),
                            allowed: allowed.join(", "),
                        },
                    ),
                }
                continue;
            }
            entries.push((name, key, value));
        }
        Some(entries)
    }

    fn string(&mut self, key: &str, node: &MarkedYaml<'_>) -> Option<String> {
        match string_of(node) {
            Some(s) => Some(s.to_string()),
            None => {
                self.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: key.to_string(),
                        expected: "a string",
                    },
                );
                None
            }
        }
    }

    fn count(&mut self, key: &str, node: &MarkedYaml<'_>, max: u64) -> Option<u64> {
        let value = match &node.data {
            YamlData::Value(Scalar::Integer(i)) => *i,
            _ => {
                self.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: key.to_string(),
                        expected: "an integer",
                    },
                );
                return None;
            }
        };
        match u64::try_from(value) {
            Ok(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    node,
                    RuleErrorKind::Invalid {
                        key: key.to_string(),
                        reason: format!("must be between 1 and {max}"),
                    },
                );
                None
            }
        }
    }

    fn window(&mut self, node: &MarkedYaml<'_>) -> Option<Duration> {
        self.duration("window", node)
    }

    /// A duration such as `5m` (see [`parse_duration`]).
    fn duration(&mut self, key: &str, node: &MarkedYaml<'_>) -> Option<Duration> {
        let Some(text) = string_of(node) else {
            let text = match &node.data {
                YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                _ => String::new(),
            };
            if text.is_empty() {
                self.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: key.to_string(),
                        expected: "a duration such as 5m",
                    },
                );
            } else {
                self.error(
                    node,
                    RuleErrorKind::BadDuration {
                        text,
                        reason: "missing unit (ms, s, m, h, d), e.g. 5m",
                    },
                );
            }
            return None;
        };
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.error(
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

    fn field(&mut self, node: &MarkedYaml<'_>, key: &str) -> Option<FieldRef> {
        let text = self.string(key, node)?;
        match FieldRef::parse(&text) {
            Ok(field) => Some(field),
            Err(reason) => {
                self.error(
                    node,
                    RuleErrorKind::BadField {
                        field: text,
                        reason,
                    },
                );
                None
            }
        }
    }

    fn group_by(&mut self, node: &MarkedYaml<'_>) -> Option<Vec<FieldRef>> {
        self.fields(
            node,
            "group_by",
            0,
            MAX_GROUP_BY,
            "a list of fields, e.g. [span.client.address]",
        )
    }

    /// The items of a YAML sequence of `min..=max` items, else an error:
    /// `expected` when it is not a list, `reason` when it has too few or
    /// too many.
    fn sized_list<'a>(
        &mut self,
        node: &'a MarkedYaml<'a>,
        key: &str,
        (min, max): (usize, usize),
        expected: &'static str,
        reason: impl FnOnce() -> String,
    ) -> Option<&'a [MarkedYaml<'a>]> {
        let YamlData::Sequence(items) = &node.data else {
            self.error(
                node,
                RuleErrorKind::WrongType {
                    key: key.to_string(),
                    expected,
                },
            );
            return None;
        };
        if !(min..=max).contains(&items.len()) {
            self.error(
                node,
                RuleErrorKind::Invalid {
                    key: key.to_string(),
                    reason: reason(),
                },
            );
            return None;
        }
        Some(items)
    }

    /// A list of `min` to `max` fields, none listed twice.
    fn fields(
        &mut self,
        node: &MarkedYaml<'_>,
        key: &str,
        min: usize,
        max: usize,
        expected: &'static str,
    ) -> Option<Vec<FieldRef>> {
        let items = self.sized_list(node, key, (min, max), expected, || {
            if min == 0 {
                format!("at most {max} fields")
            } else {
                format!("list {min} to {max} fields")
            }
        })?;
        let before = self.errors.len();
        let mut fields: Vec<FieldRef> = Vec::with_capacity(items.len());
        for item in items {
            let Some(field) = self.field(item, key) else {
                continue;
            };
            if fields.contains(&field) {
                self.error(
                    item,
                    RuleErrorKind::Invalid {
                        key: key.to_string(),
                        reason: format!("`{}` is listed twice", field.as_str()),
                    },
                );
            } else {
                fields.push(field);
            }
        }
        (self.errors.len() == before).then_some(fields)
    }

    /// Parses a `payload` section: `detect` (detector names) and `fields`
    /// (span attribute names), both non-empty lists without repeats.
    fn payload(&mut self, node: &MarkedYaml<'_>) -> Option<PayloadMatch> {
        let entries = self.mapping(node, "payload", &PAYLOAD_KEYS, None)?;
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, _, v)| *v)
        };
        let before = self.errors.len();
        let detect = match get("detect") {
            None => {
                self.error(node, RuleErrorKind::MissingKey("payload.detect"));
                None
            }
            Some(list) => self.payload_list(list, "payload.detect", 4).map(|items| {
                let mut classes = Vec::with_capacity(items.len());
                for (name, item) in items {
                    match detector_from_name(name) {
                        Some(class) if classes.contains(&class) => self.error(
                            item,
                            RuleErrorKind::Invalid {
                                key: "payload.detect".to_string(),
                                reason: format!("`{name}` is listed twice"),
                            },
                        ),
                        Some(class) => classes.push(class),
                        None => self.error(
                            item,
                            RuleErrorKind::UnknownDetector {
                                name: name.to_string(),
                                allowed: DETECTOR_NAMES.join(", "),
                            },
                        ),
                    }
                }
                classes
            }),
        };
        let fields = match get("fields") {
            None => {
                self.error(node, RuleErrorKind::MissingKey("payload.fields"));
                None
            }
            Some(list) => self
                .payload_list(list, "payload.fields", MAX_PAYLOAD_FIELDS)
                .map(|items| {
                    let mut fields: Vec<AttributeKey> = Vec::with_capacity(items.len());
                    for (name, item) in items {
                        if let Err(reason) = payload::check_field_name(name) {
                            self.error(
                                item,
                                RuleErrorKind::BadField {
                                    field: name.to_string(),
                                    reason,
                                },
                            );
                        } else if fields.iter().any(|f| f == name) {
                            self.error(
                                item,
                                RuleErrorKind::Invalid {
                                    key: "payload.fields".to_string(),
                                    reason: format!("`{name}` is listed twice"),
                                },
                            );
                        } else {
                            fields.push(name.into());
                        }
                    }
                    fields
                }),
        };
        if self.errors.len() != before {
            return None;
        }
        Some(PayloadMatch::new(detect?, fields?))
    }

    /// The strings of a non-empty list of at most `max` items, each with
    /// its node (for positions); reports wrong types, emptiness, length.
    fn payload_list<'a>(
        &mut self,
        node: &'a MarkedYaml<'a>,
        key: &'static str,
        max: usize,
    ) -> Option<Vec<(&'a str, &'a MarkedYaml<'a>)>> {
        let expected = if key == "payload.detect" {
            "a list of detectors, e.g. [sql_injection, xss]"
        } else {
            "a list of span attribute names, e.g. [url.query, url.path]"
        };
        let YamlData::Sequence(items) = &node.data else {
            self.error(
                node,
                RuleErrorKind::WrongType {
                    key: key.to_string(),
                    expected,
                },
            );
            return None;
        };
        if items.is_empty() || items.len() > max {
            self.error(
                node,
                RuleErrorKind::Invalid {
                    key: key.to_string(),
                    reason: format!("list 1 to {max} entries"),
                },
            );
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match string_of(item) {
                Some(s) => out.push((s, item)),
                None => self.error(
                    item,
                    RuleErrorKind::WrongType {
                        key: key.to_string(),
                        expected: "a string",
                    },
                ),
            }
        }
        (out.len() == items.len()).then_some(out)
    }

    /// The `id` of a rule or an exception, and its position; remembered in
    /// `found_id` so duplicates are reported even when the file has other
    /// mistakes.
    fn id(
        &mut self,
        root: &MarkedYaml<'_>,
        node: Option<&MarkedYaml<'_>>,
    ) -> (Option<String>, (usize, usize)) {
        let Some(node) = node else {
            self.error(root, RuleErrorKind::MissingKey("id"));
            return (None, (0, 0));
        };
        let Some(text) = self.string("id", node) else {
            return (None, (0, 0));
        };
        if !valid_id(&text) {
            self.error(node, RuleErrorKind::BadId(text));
            return (None, (0, 0));
        }
        let at = position(node);
        self.found_id = Some((text.clone(), at.0, at.1));
        (Some(text), at)
    }

    /// The required `title`.
    fn title(&mut self, root: &MarkedYaml<'_>, node: Option<&MarkedYaml<'_>>) -> Option<String> {
        match node {
            Some(node) => self.string("title", node),
            None => {
                self.error(root, RuleErrorKind::MissingKey("title"));
                None
            }
        }
    }

    /// `enabled`, `true` when absent.
    fn enabled(&mut self, node: Option<&MarkedYaml<'_>>) -> Option<bool> {
        match node.map(|n| (n, &n.data)) {
            None => Some(true),
            Some((_, YamlData::Value(Scalar::Boolean(b)))) => Some(*b),
            Some((node, _)) => {
                self.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: "enabled".to_string(),
                        expected: "true or false",
                    },
                );
                None
            }
        }
    }

    /// Why what was parsed does not run although enabled: the site facts
    /// its conditions reference that the site leaves empty.
    fn inactive(&self) -> Option<String> {
        (!self.empty_facts.is_empty()).then(|| {
            let facts: Vec<String> = self
                .empty_facts
                .iter()
                .map(|f| format!("site.{f}"))
                .collect();
            format!("the site leaves {} empty", facts.join(", "))
        })
    }

    /// `evidence: [fields]`: 1 to [`MAX_EVIDENCE_FIELDS`] fields read from
    /// the span that makes the rule fire (for a whole-trace match, from the
    /// first span the query returned that has the field).
    fn evidence(&mut self, node: &MarkedYaml<'_>) -> Option<Vec<FieldRef>> {
        let fields = self.fields(
            node,
            "evidence",
            1,
            MAX_EVIDENCE_FIELDS,
            "a list of fields, e.g. [span.user_agent.original, span.url.path]",
        )?;
        Some(fields)
    }

    /// `suppress: { by: [fields], for: <duration> }`.
    fn suppress(&mut self, node: &MarkedYaml<'_>) -> Option<Suppress> {
        let entries = self.mapping(node, "suppress", &["by", "for"], None)?;
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, _, v)| *v)
        };
        let by = match get("by") {
            Some(by) => self.group_by(by),
            None => {
                self.error(node, RuleErrorKind::MissingKey("suppress.by"));
                None
            }
        };
        let period = match get("for") {
            Some(period) => self.window(period),
            None => {
                self.error(node, RuleErrorKind::MissingKey("suppress.for"));
                None
            }
        };
        let by = by?;
        if by.is_empty() {
            self.error(
                node,
                RuleErrorKind::Invalid {
                    key: "suppress.by".to_string(),
                    reason: "name at least one field (the actor)".to_string(),
                },
            );
            return None;
        }
        Some(Suppress {
            by,
            period: period?,
        })
    }

    /// Parses a TraceQL condition; a parse error points at the line and
    /// column of the YAML file where the TraceQL mistake is.
    fn condition(&mut self, node: &MarkedYaml<'_>, span_level: bool) -> Option<Condition> {
        let Some(text) = string_of(node) else {
            self.error(
                node,
                RuleErrorKind::WrongType {
                    key: "condition".to_string(),
                    expected: "a TraceQL string (quote it, or use a block scalar `|`: a bare `{` starts a YAML mapping)",
                },
            );
            return None;
        };
        let expanded = match site::expand(text, self.site) {
            Ok(expanded) => expanded,
            Err(e) => {
                let (line, column) = offset_position(text, e.offset);
                let at = ParseError {
                    kind: tracewarden_traceql::ParseErrorKind::Syntax,
                    offset: e.offset,
                    line,
                    column,
                    message: String::new(),
                };
                let (line, column) = map_traceql_position(self.source, node, &at);
                self.error_at(line, column, RuleErrorKind::SiteFact(e.error));
                return None;
            }
        };
        for fact in &expanded.empty {
            if !self.empty_facts.contains(fact) {
                self.empty_facts.push(fact.clone());
            }
        }
        let parsed = Condition::parse(&expanded.text).map(|mut condition| {
            condition.text = text.to_string();
            condition
        });
        match parsed.map_err(|mut e| {
            // Positions in the expanded text, mapped back to what was written.
            e.offset = expanded.original_offset(e.offset);
            (e.line, e.column) = offset_position(text, e.offset);
            e
        }) {
            Ok(condition) => {
                if span_level && !condition.is_span_level() {
                    self.error(
                        node,
                        RuleErrorKind::Invalid {
                            key: "condition".to_string(),
                            reason: "the condition of a threshold, sequence, new_terms or baseline rule must be one spanset filter `{ ... }` decided span by span (no structural operators, trace-level intrinsics or pipeline stages)".to_string(),
                        },
                    );
                    return None;
                }
                Some(condition)
            }
            Err(e) => {
                let (line, column) = map_traceql_position(self.source, node, &e);
                self.error_at(line, column, RuleErrorKind::TraceQl(e.message));
                None
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset of `text`.
fn offset_position(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// 1-based line and column of a node.
fn position(node: &MarkedYaml<'_>) -> (usize, usize) {
    (node.span.start.line(), node.span.start.col() + 1)
}

fn string_of<'a>(node: &'a MarkedYaml<'_>) -> Option<&'a str> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s),
        _ => None,
    }
}

/// Maps the position of a TraceQL error inside a condition (a byte offset
/// of the scalar's value) onto the YAML file: 1-based line and column.
///
/// The value differs from the text that wrote it by quotes, escapes,
/// indentation, folded line breaks (quoted and plain scalars spanning
/// lines) and a literal block's leading blank lines, so the two are
/// aligned character by character from the node's start: a value
/// character is found at or after the current source position, skipping
/// only what YAML removes (whitespace, quotes, backslashes); whitespace in
/// the value that the source does not have (a folded line break) is
/// skipped. Where they cannot be aligned (an escape such as `\x41`), the
/// node's own position.
fn map_traceql_position(source: &str, node: &MarkedYaml<'_>, e: &ParseError) -> (usize, usize) {
    map_value_position(source, node, e.offset).unwrap_or_else(|| position(node))
}

fn map_value_position(
    source: &str,
    node: &MarkedYaml<'_>,
    offset: usize,
) -> Option<(usize, usize)> {
    fn advance(c: char, line: &mut usize, column: &mut usize) {
        if c == '\n' {
            *line += 1;
            *column = 0;
        } else {
            *column += 1;
        }
    }
    let removable = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\');
    let value = string_of(node)?;
    let before = value.get(..offset)?;
    let start = node.span.start;
    let mut text = source.chars().skip(start.index()).peekable();
    // 1-based line and 0-based column of the next character of `text`.
    let (mut line, mut column) = (start.line(), start.col());
    for wanted in before.chars() {
        loop {
            let &c = text.peek()?;
            if c == wanted || (wanted == ' ' && c == '\n') {
                advance(c, &mut line, &mut column);
                text.next();
                break;
            }
            if wanted.is_whitespace() && !c.is_whitespace() {
                // Whitespace the source does not have here (a fold or a
                // literal block's leading blank line).
                break;
            }
            if !removable(c) {
                return None;
            }
            advance(c, &mut line, &mut column);
            text.next();
        }
    }
    // The character at the offset, past what YAML removed before it; at
    // the end of the value, just after its last character.
    if let Some(wanted) = value.get(offset..).and_then(|rest| rest.chars().next()) {
        while let Some(&c) = text.peek() {
            if c == wanted || wanted.is_whitespace() || !removable(c) {
                break;
            }
            advance(c, &mut line, &mut column);
            text.next();
        }
    }
    Some((line, column + 1))
}

/// Deepest nesting of mappings and sequences a rule file may have; the
/// built-in rules use five.
const MAX_YAML_DEPTH: usize = 32;

/// Where `source` first nests mappings and sequences deeper than
/// [`MAX_YAML_DEPTH`], from the parser's events before any tree is built:
/// building and dropping the tree recurse once per level, and the YAML
/// parser bounds only flow collections (`[`, `{`), not block sequences such
/// as `- - - x`, so a small file could overflow the stack of the thread
/// that reloads rules. A syntax error ends the walk; the loader reports it.
fn too_deep(source: &str) -> Option<(usize, usize)> {
    use saphyr_parser::{Event, Parser};
    let mut parser = Parser::new_from_str(source);
    let mut depth = 0usize;
    while let Some(Ok((event, span))) = parser.next_event() {
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Some((span.start.line(), span.start.col() + 1));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::StreamEnd => break,
            _ => {}
        }
    }
    None
}

/// Top-level keys that describe a rule or what to do when it fires, not
/// what it matches or counts: editing them keeps its state on reload.
const DESCRIPTIVE_KEYS: [&str; 8] = [
    "title",
    "evidence",
    "description",
    "response",
    "tags",
    "severity",
    "enabled",
    "block",
];

/// The digest of what a rule's state depends on (see [`Rule::digest`]):
/// every top-level entry but the [`DESCRIPTIVE_KEYS`], as parsed, so
/// comments, quoting, layout and key order do not count either.
fn state_digest(root: &MarkedYaml<'_>) -> u64 {
    let mut canonical = String::new();
    match &root.data {
        YamlData::Mapping(map) => {
            let mut entries: Vec<(String, String)> = map
                .iter()
                .filter(|(k, _)| !string_of(k).is_some_and(|k| DESCRIPTIVE_KEYS.contains(&k)))
                .map(|(k, v)| (canonical_node(k), canonical_node(v)))
                .collect();
            entries.sort();
            for (k, v) in entries {
                canonical.push_str(&k);
                canonical.push_str(&v);
            }
        }
        _ => canonical = canonical_node(root),
    }
    fnv1a(canonical.as_bytes())
}

/// A node as text that two nodes share exactly when their values are the
/// same: strings length-prefixed, mapping entries sorted.
fn canonical_node(node: &MarkedYaml<'_>) -> String {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => format!("s{}:{text}", text.len()),
        YamlData::Value(scalar) => format!("v{scalar:?};"),
        YamlData::Representation(text, ..) => format!("r{}:{text}", text.len()),
        YamlData::Sequence(items) => {
            let inner: String = items.iter().map(canonical_node).collect();
            format!("[{inner}]")
        }
        YamlData::Mapping(map) => {
            let mut entries: Vec<String> = map
                .iter()
                .map(|(k, v)| canonical_node(k) + &canonical_node(v))
                .collect();
            entries.sort();
            format!("{{{}}}", entries.concat())
        }
        YamlData::Tagged(tag, inner) => format!("t{tag:?}{}", canonical_node(inner)),
        YamlData::Alias(id) => format!("a{id};"),
        YamlData::BadValue => "!".to_string(),
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's
/// hasher), so digests in checkpoints stay comparable.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn valid_id(id: &str) -> bool {
    id.len() <= 128
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `T` and four digits, optionally `.` and three digits.
fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match bytes {
        [b'T', rest @ ..] if rest.len() == 4 => digits(rest),
        [b'T', rest @ ..] if rest.len() == 8 => match rest.split_at(4) {
            (technique, [b'.', sub @ ..]) => digits(technique) && digits(sub),
            _ => false,
        },
        _ => false,
    }
}

/// Parses the text of one rule file. `file` is used in errors and recorded
/// in the rule.
pub fn parse_rule(source: &str, file: &Path) -> Result<Rule, Vec<RuleError>> {
    parse_rule_for(source, file, &Site::default())
}

/// Parses the text of one rule file, with `$facts` in its conditions taken
/// from `site`.
pub fn parse_rule_for(source: &str, file: &Path, site: &Site) -> Result<Rule, Vec<RuleError>> {
    parse_rule_with_id(source, file, site).0
}

/// A rule id as read from a file: the id, its line and column.
type FoundId = Option<(String, usize, usize)>;

/// [`parse_rule_for`], and the rule's id whenever it could be read.
fn parse_rule_with_id(
    source: &str,
    file: &Path,
    site: &Site,
) -> (Result<Rule, Vec<RuleError>>, FoundId) {
    let (document, id) = parse_document_with_id(source, file, site);
    (document.and_then(|d| only_rule(d, file)), id)
}

/// The rule of a document; an exception where a rule was expected is an
/// error (exceptions are loaded with their rules directory).
fn only_rule(document: Document, file: &Path) -> Result<Rule, Vec<RuleError>> {
    match document {
        Document::Rule(rule) => Ok(*rule),
        Document::Exception(e) => Err(vec![RuleError {
            file: file.to_path_buf(),
            line: e.line,
            column: e.column,
            kind: RuleErrorKind::Document(
                "an exception (it has `exception`), not a rule: load it with its rules directory"
                    .to_string(),
            ),
        }]),
    }
}

/// Parses the text of one file of a rules directory: a rule or an
/// exception, and its id whenever it could be read.
fn parse_document_with_id(
    source: &str,
    file: &Path,
    site: &Site,
) -> (Result<Document, Vec<RuleError>>, FoundId) {
    let mut checker = Checker {
        file,
        source,
        site,
        empty_facts: Vec::new(),
        errors: Vec::new(),
        found_id: None,
    };
    let document = parse_checked(&mut checker);
    (document, checker.found_id)
}

/// What a file of a rules directory holds.
#[derive(Clone, Debug)]
pub enum Document {
    Rule(Box<Rule>),
    Exception(Box<Exception>),
}

fn parse_checked(checker: &mut Checker<'_>) -> Result<Document, Vec<RuleError>> {
    let source = checker.source;
    if let Some((line, column)) = too_deep(source) {
        checker.error_at(
            line,
            column,
            RuleErrorKind::Yaml(format!(
                "mappings and sequences nested deeper than {MAX_YAML_DEPTH} levels"
            )),
        );
        return Err(std::mem::take(&mut checker.errors));
    }
    let docs = match MarkedYaml::load_from_str(source) {
        Ok(docs) => docs,
        Err(e) => {
            checker.error_at(
                e.marker().line(),
                e.marker().col() + 1,
                RuleErrorKind::Yaml(e.info().to_string()),
            );
            return Err(std::mem::take(&mut checker.errors));
        }
    };
    let root = match docs.as_slice() {
        [root] => root,
        [] => {
            checker.error_at(
                1,
                1,
                RuleErrorKind::Document("the file is empty".to_string()),
            );
            return Err(std::mem::take(&mut checker.errors));
        }
        [_, second, ..] => {
            checker.error(
                second,
                RuleErrorKind::Document(
                    "one rule per file: found a second YAML document".to_string(),
                ),
            );
            return Err(std::mem::take(&mut checker.errors));
        }
    };
    let document = if exception::is_exception(root) {
        exception::parse(checker, root).map(|e| Document::Exception(Box::new(e)))
    } else {
        parse_root(checker, root).map(|r| Document::Rule(Box::new(r)))
    };
    match document {
        Some(document) if checker.errors.is_empty() => Ok(document),
        _ => Err(std::mem::take(&mut checker.errors)),
    }
}

fn parse_root(checker: &mut Checker<'_>, root: &MarkedYaml<'_>) -> Option<Rule> {
    let kind_name = match &root.data {
        YamlData::Mapping(map) => map
            .iter()
            .find(|(k, _)| string_of(k) == Some("kind"))
            .map(|(_, v)| v),
        _ => None,
    };
    let kind_text = kind_name.and_then(string_of);
    let specific: &[&str] = match kind_text {
        Some(k) if KIND_NAMES.contains(&k) => kind_keys(k),
        _ => &KIND_KEYS,
    };
    let allowed: Vec<&str> = COMMON_KEYS.iter().chain(specific).copied().collect();
    let entries = checker.mapping(root, "a rule", &allowed, kind_text)?;
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, _, v)| *v)
    };

    let (id, id_position) = checker.id(root, get("id"));
    let title = checker.title(root, get("title"));
    let description =
        get("description").map_or(Some(String::new()), |n| checker.string("description", n));
    let response = get("response").map_or(Some(String::new()), |n| checker.string("response", n));
    let severity = match get("severity") {
        Some(node) => checker.string("severity", node).and_then(|text| {
            let severity = Severity::from_name(&text);
            if severity.is_none() {
                checker.error(node, RuleErrorKind::BadSeverity(text));
            }
            severity
        }),
        None => {
            checker.error(root, RuleErrorKind::MissingKey("severity"));
            None
        }
    };
    let enabled = checker.enabled(get("enabled"));
    let source = match get("source") {
        None => Some(Source::Spans),
        Some(node) => match checker.string("source", node).as_deref() {
            Some("spans") => Some(Source::Spans),
            Some("logs") => match kind_text {
                Some(kind) if !LOG_KINDS.contains(&kind) => {
                    checker.error(
                        node,
                        RuleErrorKind::Invalid {
                            key: "source".to_string(),
                            reason: format!(
                                "kind `{kind}` reads spans only (`source: logs` is for {})",
                                LOG_KINDS.join(", ")
                            ),
                        },
                    );
                    None
                }
                _ => Some(Source::Logs),
            },
            Some(other) => {
                checker.error(
                    node,
                    RuleErrorKind::Invalid {
                        key: "source".to_string(),
                        reason: format!("`{other}` is neither `spans` nor `logs`"),
                    },
                );
                None
            }
            None => None,
        },
    };
    let join = match get("join") {
        None => Some(Vec::new()),
        Some(node) => join::parse(checker, node, source),
    };
    let tags = match get("tags") {
        None => Some(Vec::new()),
        Some(node) => match &node.data {
            YamlData::Sequence(items) => {
                let before = checker.errors.len();
                let mut tags = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(tag) = checker.string("tags", item) {
                        if valid_tag(&tag) {
                            tags.push(tag);
                        } else {
                            checker.error(item, RuleErrorKind::BadTag(tag));
                        }
                    }
                }
                (checker.errors.len() == before).then_some(tags)
            }
            _ => {
                checker.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: "tags".to_string(),
                        expected: "a list of MITRE ATT&CK ids, e.g. [T1110]",
                    },
                );
                None
            }
        },
    };

    let kind = match (get("kind"), kind_text) {
        (None, _) => {
            checker.error(root, RuleErrorKind::MissingKey("kind"));
            None
        }
        (Some(node), None) => {
            checker.error(
                node,
                RuleErrorKind::WrongType {
                    key: "kind".to_string(),
                    expected: "a string (match, threshold, sequence, new_terms, baseline, topology or data_flow)",
                },
            );
            None
        }
        (Some(node), Some(text)) => match text {
            "match" => parse_match(checker, root, &get),
            "threshold" => parse_threshold(checker, root, &get),
            "sequence" => parse_sequence(checker, root, &get),
            "new_terms" => new_terms::parse(checker, root, &get),
            "baseline" => baseline::parse(checker, root, &get),
            "topology" => topology::parse(checker, root, &get),
            "data_flow" => data_flow::parse(checker, root, &get),
            other => {
                checker.error(node, RuleErrorKind::UnknownKind(other.to_string()));
                None
            }
        },
    };
    // Log records are never assembled into traces: a whole-trace condition
    // on them would run on the spans' traces instead.
    let kind = match (kind, source, get("condition")) {
        (Some(RuleKind::Match(m)), Some(Source::Logs), Some(node)) if m.needs_whole_trace() => {
            checker.error(
                node,
                RuleErrorKind::Invalid {
                    key: "condition".to_string(),
                    reason: "`source: logs` needs a condition decided record by record (one spanset filter `{ ... }`): log records are not assembled into traces".to_string(),
                },
            );
            None
        }
        (kind, _, _) => kind,
    };

    let block = match get("block") {
        None => Some(None),
        Some(node) => checker.block(node, get("group_by")).map(Some),
    };
    let evidence = match get("evidence") {
        None => Some(Vec::new()),
        Some(node) => checker.evidence(node),
    };

    Some(Rule {
        id: id?,
        title: title?,
        description: description?,
        severity: severity?,
        tags: tags?,
        response: response?,
        enabled: enabled?,
        inactive: checker.inactive(),
        source: source?,
        join: join?,
        kind: kind?,
        block: block?,
        evidence: evidence?,
        exceptions: Vec::new(),
        file: checker.file.to_path_buf(),
        line: id_position.0,
        column: id_position.1,
        digest: state_digest(root),
    })
}

type Getter<'g, 'a> = dyn Fn(&str) -> Option<&'a MarkedYaml<'a>> + 'g;

fn required<'a>(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, 'a>,
    key: &'static str,
) -> Option<&'a MarkedYaml<'a>> {
    let node = get(key);
    if node.is_none() {
        checker.error(root, RuleErrorKind::MissingKey(key));
    }
    node
}

fn parse_match(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    let payload_node = get("payload");
    let payload = match payload_node {
        None => Some(None),
        Some(node) => checker.payload(node).map(Some),
    };
    let suppress_node = get("suppress");
    let suppress = match suppress_node {
        None => Some(None),
        Some(node) => checker.suppress(node).map(Some),
    };
    let node = required(checker, root, get, "condition")?;
    let condition = checker.condition(node, false)?;
    if let (Some(node), false) = (suppress_node, condition.is_span_level()) {
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: "suppress".to_string(),
                reason: "needs a condition decided span by span (one spanset filter `{ ... }`)"
                    .to_string(),
            },
        );
        return None;
    }
    if let (Some(node), false) = (payload_node, condition.is_span_level()) {
        // The payload is read from one span; a whole-trace condition has no
        // single span to read it from.
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: "payload".to_string(),
                reason: "needs a condition decided span by span (one spanset filter `{ ... }`)"
                    .to_string(),
            },
        );
        return None;
    }
    Some(RuleKind::Match(MatchRule {
        condition,
        payload: payload?,
        suppress: suppress?,
    }))
}

fn parse_threshold(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    let condition =
        required(checker, root, get, "condition").and_then(|n| checker.condition(n, true));
    let group_by = get("group_by").map_or(Some(Vec::new()), |n| checker.group_by(n));
    let window = required(checker, root, get, "window").and_then(|n| checker.window(n));
    let distinct = match get("distinct") {
        None => Some(None),
        Some(node) => checker.field(node, "distinct").map(Some),
    };
    let max = if matches!(distinct, Some(Some(_))) {
        MAX_DISTINCT_COUNT
    } else {
        MAX_COUNT
    };
    let count = required(checker, root, get, "count").and_then(|n| checker.count("count", n, max));
    let payload = match get("payload") {
        None => Some(None),
        Some(node) => checker.payload(node).map(Some),
    };
    Some(RuleKind::Threshold(ThresholdRule {
        condition: condition?,
        group_by: group_by?,
        window: window?,
        count: count?,
        distinct: distinct?,
        payload: payload?,
    }))
}

fn parse_sequence(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    let group_by = get("group_by").map_or(Some(Vec::new()), |n| checker.group_by(n));
    let window = required(checker, root, get, "window").and_then(|n| checker.window(n));
    let steps = required(checker, root, get, "steps").and_then(|node| {
        let items = checker.sized_list(
            node,
            "steps",
            (2, MAX_STEPS),
            "a list of steps, each a mapping with a condition",
            || format!("a sequence has 2 to {MAX_STEPS} steps"),
        )?;
        let before = checker.errors.len();
        let mut steps = Vec::with_capacity(items.len());
        for item in items {
            let Some(entries) = checker.mapping(item, "a step", &STEP_KEYS, None) else {
                continue;
            };
            let step_get = |name: &str| {
                entries
                    .iter()
                    .find(|(k, _, _)| *k == name)
                    .map(|(_, _, v)| *v)
            };
            let condition = match step_get("condition") {
                Some(n) => checker.condition(n, true),
                None => {
                    checker.error(item, RuleErrorKind::MissingKey("condition"));
                    None
                }
            };
            let count =
                step_get("count").map_or(Some(1), |n| checker.count("count", n, MAX_STEP_COUNT));
            if let (Some(condition), Some(count)) = (condition, count) {
                steps.push(Step { condition, count });
            }
        }
        (checker.errors.len() == before).then_some(steps)
    });
    Some(RuleKind::Sequence(SequenceRule {
        group_by: group_by?,
        window: window?,
        steps: steps?,
    }))
}

/// Reads and parses one rule file.
pub fn load_file(path: &Path) -> Result<Rule, Vec<RuleError>> {
    load_file_for(path, &Site::default())
}

/// Reads and parses one rule file with the facts of `site`.
pub fn load_file_for(path: &Path, site: &Site) -> Result<Rule, Vec<RuleError>> {
    load_file_with_id(path, site).0
}

/// [`load_file_for`], and the rule's id whenever it could be read.
fn load_file_with_id(path: &Path, site: &Site) -> (Result<Rule, Vec<RuleError>>, FoundId) {
    let (document, id) = load_document_with_id(path, site);
    (document.and_then(|d| only_rule(d, path)), id)
}

/// One file of a rules directory, a rule or an exception, and its id
/// whenever it could be read.
fn load_document_with_id(path: &Path, site: &Site) -> (Result<Document, Vec<RuleError>>, FoundId) {
    match read_rule_file(path) {
        Ok(text) => parse_document_with_id(&text, path, site),
        Err(errors) => (Err(errors), None),
    }
}

/// The text of a rule file, within the size limit and valid UTF-8.
fn read_rule_file(path: &Path) -> Result<String, Vec<RuleError>> {
    let whole_file = |kind| {
        vec![RuleError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            kind,
        }]
    };
    let file =
        std::fs::File::open(path).map_err(|e| whole_file(RuleErrorKind::Io(e.to_string())))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "exactly at" from "over".
    file.take(MAX_RULE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole_file(RuleErrorKind::Io(e.to_string())))?;
    if bytes.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(whole_file(RuleErrorKind::TooLarge {
            limit: MAX_RULE_FILE_BYTES,
        }));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        // Where the first bad byte is: the text before it is valid.
        let valid = e.utf8_error().valid_up_to();
        let before =
            std::str::from_utf8(e.as_bytes().get(..valid).unwrap_or_default()).unwrap_or_default();
        let (line, column) = offset_position(before, before.len());
        vec![RuleError {
            file: path.to_path_buf(),
            line: line as usize,
            column: column as usize,
            kind: RuleErrorKind::Io(format!("not UTF-8: {}", e.utf8_error())),
        }]
    })?;
    Ok(text)
}

/// The rule files of a directory: `*.yaml` and `*.yml`, sorted by name,
/// not recursive (so `fixtures/` beside them is not read as rules).
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, RuleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RuleError {
        file: dir.to_path_buf(),
        line: 0,
        column: 0,
        kind: RuleErrorKind::Io(format!("not a directory of rule files: {e}")),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every rule file of a directory: all rules, or every error of every
/// file (including ids defined in more than one file).
pub fn load_dir(dir: &Path) -> Result<Vec<Rule>, LoadErrors> {
    load_dir_for(dir, &Site::default())
}

/// Loads every rule file of a directory with the facts of `site`, with the
/// directory's exceptions applied to its rules. An exception may also name
/// rules of the built-in pack, which the directory does not hold: those
/// are applied where the pack and the directory are merged
/// ([`load_dir_parts_for`] and [`apply_exceptions`]).
pub fn load_dir_for(dir: &Path, site: &Site) -> Result<Vec<Rule>, LoadErrors> {
    let (mut rules, exceptions) = load_dir_parts_for(dir, site)?;
    let builtin = builtin_rule_ids();
    let errors = apply_exceptions(&mut rules, &exceptions, |id| builtin.contains(&id));
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(LoadErrors(errors))
    }
}

/// The rules and the exceptions of a directory, exceptions not yet
/// applied; ids are unique across both.
pub fn load_dir_parts_for(
    dir: &Path,
    site: &Site,
) -> Result<(Vec<Rule>, Vec<Exception>), LoadErrors> {
    let files = rule_files(dir).map_err(|e| LoadErrors(vec![e]))?;
    let mut rules = Vec::with_capacity(files.len());
    let mut exceptions = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in files {
        let (document, id) = load_document_with_id(&path, site);
        // A file with mistakes still claims its id, so a duplicate is
        // reported now, not after the other mistakes are mended.
        let duplicate = match id {
            Some((id, line, column)) => match seen.get(&id) {
                Some(first) => {
                    errors.push(RuleError {
                        file: path.clone(),
                        line,
                        column,
                        kind: RuleErrorKind::DuplicateId {
                            id,
                            first: first.display().to_string(),
                        },
                    });
                    true
                }
                None => {
                    seen.insert(id, path.clone());
                    false
                }
            },
            None => false,
        };
        match document {
            Ok(Document::Rule(rule)) if !duplicate => rules.push(*rule),
            Ok(Document::Exception(e)) if !duplicate => exceptions.push(*e),
            Ok(_) => {}
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    if errors.is_empty() {
        Ok((rules, exceptions))
    } else {
        Err(LoadErrors(errors))
    }
}

#[cfg(test)]
mod tests;
