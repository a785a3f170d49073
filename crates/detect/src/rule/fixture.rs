//! Testing rules like code: each rule file `<dir>/<file>.yaml` has fixtures
//! in `<dir>/fixtures/<rule id>.json`, cases of spans with the detections
//! they must produce (a positive case) or must not (a negative case, an
//! empty `expect`). [`test_dir`] runs them all, as `tracewarden rules test`
//! will.
//!
//! Fixture format (JSON; unknown keys are errors):
//!
//! ```json
//! { "cases": [ {
//!     "name": "twelve failed logins from one address",
//!     "spans": [ { "at": "0s", "repeat": 12, "every": "2s", "name": "POST /login",
//!                  "kind": "server", "status": "error", "duration": "20ms",
//!                  "attributes": { "http.route": "/login", "http.response.status_code": 401,
//!                                  "client.address": "203.0.113.7", "enduser.id": "user{i}" },
//!                  "resource": { "service.name": "shop" } } ],
//!     "expect": [ { "key": ["203.0.113.7"], "count": 10 } ] } ] }
//! ```
//!
//! A span entry: `at` (offset from the fixture epoch, a duration, default
//! `0s`), `repeat` (default 1, at most 10000) copies `every` apart (default
//! `1s`), `name`, `kind` (server, client, producer, consumer, internal),
//! `status` (unset, ok, error), `duration`, `trace_id` (32 hex digits;
//! default: one new trace per copy), `attributes` and `resource` (string,
//! integer, float or boolean values). `{i}` in the name and string values is
//! replaced by the copy's index (0-based). For trace structure: `span_id`
//! (16 hex digits, with `repeat` 1), `parent_span_id`, `links` (span ids of
//! the same trace) and `flags` (OTLP span flags). Spans are fed to the
//! engine in the order listed, all in one batch, then the engine is drained:
//! whole-trace rules (whole-trace match, topology, data flow) get each
//! trace, assembled.
//!
//! A case of a log rule lists `logs` (see [`FixtureLog`]); with `join:` it
//! may also list the `spans` the records were emitted in (same `trace_id`
//! and `span_id`): the records are fed first, then the spans, then the
//! engine is drained, so the case runs the wait-then-join path.
//!
//! A file may set `site` (the `[detection.site]` facts, over the defaults,
//! e.g. `{ "allowed_edges": ["api-gateway -> weather"] }`): its rule is then
//! loaded again with those facts.
//!
//! A file may set site facts for its cases with `site`, a mapping with
//! the keys of `[detection.site]` (`{ "site": { "allowed_countries": ["DE"] },
//! "cases": [...] }`): the facts named replace those of the site in effect,
//! so a rule that is inactive by default (an empty fact) is still tested.
//! Attribute values may also be arrays of strings, numbers or booleans
//! (`"user.roles": ["admin"]`, `"http.request.header.origin": ["https://a"]`).
//!
//! An expectation: optional `key` (the `group_by` values, in order),
//! optional `count` and optional `evidence` (text the detection's evidence
//! must contain, for rules with `payload`, new_terms and baseline); the case passes when the rule produces exactly as many
//! detections as expectations, each matching the expectation at its index.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tracewarden_model::{
    AnyValue, KeyValue, Link, LogEntry, LogRecord, Resource, Span, SpanId, SpanKind, SpanRecord,
    StatusCode, TraceId,
};

use super::{
    FACT_NAMES, Rule, RuleError, Site, Source, load_dir_for, load_file_for, parse_duration,
};
use crate::engine::{Detection, Engine};

/// Start of fixture time: 2026-01-01T00:00:00Z, in unix nanoseconds.
pub const FIXTURE_EPOCH_UNIX_NANO: u64 = 1_767_225_600_000_000_000;
/// Most spans one fixture file may expand to.
pub const MAX_FIXTURE_SPANS: usize = 100_000;
/// Largest fixture file read, in bytes.
pub const MAX_FIXTURE_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A fixture file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// Site facts the cases need, over the site in effect.
    #[serde(default)]
    pub site: Option<FixtureSite>,
    pub cases: Vec<FixtureCase>,
}

/// The `site` of a fixture file: facts by name, each checked as
/// `[detection.site]` checks it (errors carry the line and column).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixtureSite(pub BTreeMap<String, Vec<String>>);

impl FixtureSite {
    /// `base` with the facts of this fixture replacing its own.
    pub fn apply(&self, base: &Site) -> Site {
        let mut site = base.clone();
        for (name, values) in &self.0 {
            // Names were checked when the file was read.
            let _ = site.set(name, values.clone());
        }
        site
    }
}

impl<'de> Deserialize<'de> for FixtureSite {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FixtureSite;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of site facts to lists of strings")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FixtureSite, A::Error> {
                use serde::de::Error as _;
                let mut facts = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    if !FACT_NAMES.contains(&name.as_str()) {
                        return Err(A::Error::unknown_field(&name, &FACT_NAMES));
                    }
                    if facts.contains_key(&name) {
                        return Err(A::Error::custom(format!("duplicate site fact `{name}`")));
                    }
                    let values: Vec<String> = map.next_value()?;
                    // Checked alone, as the server checks `[detection.site]`.
                    let mut alone = Site::empty();
                    alone
                        .set(&name, values.clone())
                        .map_err(|e| A::Error::custom(e.to_string()))?;
                    if let Some(problem) = alone.validate().into_iter().next() {
                        return Err(A::Error::custom(problem));
                    }
                    facts.insert(name, values);
                }
                Ok(FixtureSite(facts))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureCase {
    pub name: String,
    #[serde(default)]
    pub spans: Vec<FixtureSpan>,
    /// Log records, for rules with `source: logs`; their `spans` (for
    /// `join:`) are fed after them.
    #[serde(default)]
    pub logs: Vec<FixtureLog>,
    pub expect: Vec<Expectation>,
}

/// A log record entry: `at`, `repeat` and `every` as for spans, `body`,
/// `severity_text`, `severity_number` (0 to 24), `trace_id` / `span_id`
/// (hex; default none), `attributes` and `resource`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureLog {
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub repeat: Option<u32>,
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub severity_text: Option<String>,
    #[serde(default)]
    pub severity_number: Option<i32>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub span_id: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub resource: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSpan {
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub repeat: Option<u32>,
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
    /// 16 hex digits; default an id per entry and copy. Only with `repeat` 1.
    #[serde(default)]
    pub span_id: Option<String>,
    /// The parent's span id (16 hex digits); default none (a root span).
    #[serde(default)]
    pub parent_span_id: Option<String>,
    /// Span ids of the same trace this span links to.
    #[serde(default)]
    pub links: Vec<String>,
    /// OTLP span flags (e.g. 768 = 0x300: the parent context is remote).
    #[serde(default)]
    pub flags: Option<u32>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub resource: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    #[serde(default)]
    pub key: Option<Vec<String>>,
    #[serde(default)]
    pub count: Option<u64>,
    /// Text the detection's evidence must contain (rules with `payload`,
    /// new_terms and baseline rules),
    /// e.g. `"sql_injection in url.query"`.
    #[serde(default)]
    pub evidence: Option<String>,
}

/// A fixture file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    #[error("no fixture file {0}")]
    Missing(PathBuf),
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: invalid fixture: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Every rule needs a case that must fire and one that must stay silent.
    #[error(
        "{path}: needs at least one positive case (non-empty expect) and one negative case (empty expect)"
    )]
    Incomplete { path: PathBuf },
    /// The rule stays inactive with the fixture's site: its cases could
    /// not fail for the right reason.
    #[error("{path}: the rule is inactive ({why}); set the fact in the fixture's `site`")]
    Inactive { path: PathBuf, why: String },
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub positive: bool,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub detail: String,
}

/// The outcome of one rule's fixtures.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleReport {
    pub rule_id: String,
    pub fixture: PathBuf,
    pub cases: Vec<CaseResult>,
    /// The fixtures could not be run.
    pub error: Option<FixtureError>,
    /// Why the rule does not run with the site in effect (the fixtures may
    /// still test it with their own `site`).
    pub inactive: Option<String>,
}

impl RuleReport {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.cases.iter().all(|c| c.passed)
    }
}

/// The outcome of [`test_dir`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Rule files that did not load (then no rule is run).
    pub load_errors: Vec<RuleError>,
    pub rules: Vec<RuleReport>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.load_errors.is_empty() && self.rules.iter().all(RuleReport::passed)
    }

    pub fn failed_cases(&self) -> usize {
        self.rules
            .iter()
            .map(|r| r.cases.iter().filter(|c| !c.passed).count() + usize::from(r.error.is_some()))
            .sum()
    }
}

/// A pass/fail table, one line per case.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.load_errors {
            writeln!(f, "LOAD  {error}")?;
        }
        for rule in &self.rules {
            if let Some(why) = &rule.inactive {
                writeln!(f, "off   {:<36} inactive: {why}", rule.rule_id)?;
            }
            if let Some(error) = &rule.error {
                writeln!(f, "FAIL  {:<36} {error}", rule.rule_id)?;
            }
            for case in &rule.cases {
                let verdict = if case.passed { "ok  " } else { "FAIL" };
                let sign = if case.positive { "+" } else { "-" };
                write!(f, "{verdict}  {:<36} {sign} {}", rule.rule_id, case.name)?;
                if !case.passed {
                    write!(f, ": {}", case.detail)?;
                }
                writeln!(f)?;
            }
        }
        let cases: usize = self.rules.iter().map(|r| r.cases.len()).sum();
        let inactive = self.rules.iter().filter(|r| r.inactive.is_some()).count();
        write!(f, "{} rules", self.rules.len())?;
        if inactive > 0 {
            write!(f, " ({inactive} inactive with this site)")?;
        }
        write!(
            f,
            ", {} cases, {} failed",
            cases,
            self.failed_cases() + self.load_errors.len()
        )
    }
}

/// Loads the rules of `dir` and runs each against
/// `dir/fixtures/<rule id>.json`, with the default site facts.
pub fn test_dir(dir: &Path) -> Report {
    test_dir_for(dir, &Site::default())
}

/// [`test_dir`] with the facts of `site` (a fixture's own `site` replaces
/// the facts it names).
pub fn test_dir_for(dir: &Path, site: &Site) -> Report {
    let rules = match load_dir_for(dir, site) {
        Ok(rules) => rules,
        Err(errors) => {
            return Report {
                load_errors: errors.0,
                rules: Vec::new(),
            };
        }
    };
    let fixtures = dir.join("fixtures");
    let rules = rules
        .iter()
        .map(|rule| {
            let path = fixtures.join(format!("{}.json", rule.id));
            let mut report = RuleReport {
                rule_id: rule.id.clone(),
                fixture: path.clone(),
                cases: Vec::new(),
                error: None,
                inactive: rule.inactive.clone(),
            };
            let prepared = read_fixture(&path).and_then(|file| {
                let rule = fixture_rule(rule, &file, site, &path)?;
                Ok((file, rule))
            });
            match prepared {
                Ok((file, rule)) => match run_fixture(&rule, &file) {
                    Ok(cases) => {
                        report.cases = cases;
                        let positive = report.cases.iter().any(|c| c.positive);
                        let negative = report.cases.iter().any(|c| !c.positive);
                        if !(positive && negative) {
                            report.error = Some(FixtureError::Incomplete { path });
                        }
                    }
                    Err(message) => report.error = Some(FixtureError::Invalid { path, message }),
                },
                Err(e) => report.error = Some(e),
            }
            report
        })
        .collect();
    Report {
        load_errors: Vec::new(),
        rules,
    }
}

/// The rule as the fixture's cases see it: re-read with the fixture's site
/// when it sets one. Still inactive is an error (its cases would test
/// nothing).
fn fixture_rule(
    rule: &Rule,
    file: &FixtureFile,
    site: &Site,
    path: &Path,
) -> Result<Rule, FixtureError> {
    let rule = match &file.site {
        None => rule.clone(),
        Some(facts) => load_file_for(&rule.file, &facts.apply(site)).map_err(|errors| {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            FixtureError::Invalid {
                path: path.to_path_buf(),
                message: format!("the rule with the fixture's site: {}", errors.join("; ")),
            }
        })?,
    };
    match &rule.inactive {
        Some(why) => Err(FixtureError::Inactive {
            path: path.to_path_buf(),
            why: why.clone(),
        }),
        None => Ok(rule),
    }
}

/// Reads and parses a fixture file.
pub fn read_fixture(path: &Path) -> Result<FixtureFile, FixtureError> {
    let metadata =
        std::fs::metadata(path).map_err(|_| FixtureError::Missing(path.to_path_buf()))?;
    if metadata.len() > MAX_FIXTURE_FILE_BYTES {
        return Err(FixtureError::Invalid {
            path: path.to_path_buf(),
            message: format!("larger than {MAX_FIXTURE_FILE_BYTES} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| FixtureError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| FixtureError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Runs one rule (enabled or not) over each case of a fixture file. The
/// file's `site` is not applied here: [`test_dir_for`] re-reads the rule
/// with it; callers of this function pass a rule loaded with those facts.
pub fn run_fixture(rule: &Rule, file: &FixtureFile) -> Result<Vec<CaseResult>, String> {
    let mut rule = rule.clone();
    rule.enabled = true;
    let mut results = Vec::with_capacity(file.cases.len());
    let mut total_spans = 0usize;
    for (case_index, case) in file.cases.iter().enumerate() {
        let spans = expand_spans(case_index, &case.spans, &mut total_spans)
            .map_err(|e| format!("case {:?}: {e}", case.name))?;
        let logs = expand_logs(&case.logs, &mut total_spans)
            .map_err(|e| format!("case {:?}: {e}", case.name))?;
        let mut engine = Engine::new(vec![rule.clone()]);
        let detections = if rule.source == Source::Logs {
            let now = logs
                .iter()
                .map(|l| l.record.effective_time_unix_nano())
                .max()
                .unwrap_or(FIXTURE_EPOCH_UNIX_NANO);
            // Records first (SDKs export logs before the span ends), then
            // the spans they may join (`join:`), then whatever still waits.
            let mut detections = engine.process_logs(&logs, now);
            if !spans.is_empty() {
                detections.extend(engine.process_owned(spans, now));
            }
            detections.extend(engine.drain());
            detections
        } else {
            let now = spans
                .iter()
                .map(|s| s.span.start_time_unix_nano)
                .max()
                .unwrap_or(FIXTURE_EPOCH_UNIX_NANO);
            // One batch, then every buffered trace evaluated (whole-trace
            // rules run on the assembled traces, in the order listed).
            let mut detections = engine.process_owned(spans, now);
            detections.extend(engine.drain());
            detections
        };
        let detail = compare(&case.expect, &detections);
        results.push(CaseResult {
            name: case.name.clone(),
            positive: !case.expect.is_empty(),
            passed: detail.is_empty(),
            detail,
        });
    }
    Ok(results)
}

/// Empty when the detections meet the expectations, else what differs.
fn compare(expect: &[Expectation], detections: &[Detection]) -> String {
    if expect.len() != detections.len() {
        let got: Vec<String> = detections.iter().map(describe).collect();
        return format!(
            "expected {} detection(s), got {}: [{}]",
            expect.len(),
            detections.len(),
            got.join("; ")
        );
    }
    for (i, (e, d)) in expect.iter().zip(detections).enumerate() {
        let values: Vec<&str> = d.key.iter().map(|(_, v)| v.as_str()).collect();
        if let Some(key) = &e.key
            && key.iter().map(String::as_str).ne(values.iter().copied())
        {
            return format!("detection {i}: expected key {key:?}, got {}", describe(d));
        }
        if let Some(count) = e.count
            && count != d.count
        {
            return format!("detection {i}: expected count {count}, got {}", describe(d));
        }
        if let Some(evidence) = &e.evidence
            && !d
                .evidence
                .as_deref()
                .is_some_and(|t| t.contains(evidence.as_str()))
        {
            return format!(
                "detection {i}: expected evidence containing {evidence:?}, got {}",
                describe(d)
            );
        }
    }
    String::new()
}

fn describe(d: &Detection) -> String {
    let values: Vec<&str> = d.key.iter().map(|(_, v)| v.as_str()).collect();
    match &d.evidence {
        Some(evidence) => format!("key {values:?} count {} evidence {evidence:?}", d.count),
        None => format!("key {values:?} count {}", d.count),
    }
}

fn duration_field(text: Option<&String>, default: u64, what: &str) -> Result<u64, String> {
    match text {
        None => Ok(default),
        Some(t) if t.trim() == "0s" || t.trim() == "0" => Ok(0),
        Some(t) => parse_duration(t)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .map_err(|e| format!("`{what}`: {e}")),
    }
}

fn json_value(value: &serde_json::Value, index: u32) -> Result<AnyValue, String> {
    Ok(match value {
        serde_json::Value::String(s) => {
            AnyValue::from(s.replace("{i}", &index.to_string()).as_str())
        }
        serde_json::Value::Bool(b) => AnyValue::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AnyValue::Int(i),
            (None, Some(f)) => AnyValue::Double(f),
            _ => return Err(format!("number {n} out of range")),
        },
        // OpenTelemetry arrays are homogeneous arrays of primitives
        // (`user.roles`, `http.request.header.*`).
        serde_json::Value::Array(items) => AnyValue::Array(
            items
                .iter()
                .map(|item| match item {
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => Err(format!(
                        "array elements are strings, numbers or booleans, got {item}"
                    )),
                    _ => json_value(item, index),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "attribute values are strings, numbers, booleans or arrays of them, got {other}"
            ));
        }
    })
}

fn attributes(
    map: &BTreeMap<String, serde_json::Value>,
    index: u32,
) -> Result<Vec<KeyValue>, String> {
    map.iter()
        .map(|(k, v)| Ok(KeyValue::new(k.as_str(), json_value(v, index)?)))
        .collect()
}

/// Expands fixture span entries into span records.
pub(crate) fn expand_spans(
    case_index: usize,
    entries: &[FixtureSpan],
    total: &mut usize,
) -> Result<Vec<SpanRecord>, String> {
    let mut records = Vec::new();
    for (entry_index, entry) in entries.iter().enumerate() {
        let repeat = entry.repeat.unwrap_or(1);
        if !(1..=10_000).contains(&repeat) {
            return Err("`repeat` must be between 1 and 10000".to_string());
        }
        *total += repeat as usize;
        if *total > MAX_FIXTURE_SPANS {
            return Err(format!("more than {MAX_FIXTURE_SPANS} spans"));
        }
        let at = duration_field(entry.at.as_ref(), 0, "at")?;
        let every = duration_field(entry.every.as_ref(), 1_000_000_000, "every")?;
        let duration = duration_field(entry.duration.as_ref(), 10_000_000, "duration")?;
        let kind = match entry.kind.as_deref().unwrap_or("server") {
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            "internal" => SpanKind::Internal,
            other => return Err(format!("unknown span kind `{other}`")),
        };
        let status = match entry.status.as_deref().unwrap_or("unset") {
            "unset" => StatusCode::Unset,
            "ok" => StatusCode::Ok,
            "error" => StatusCode::Error,
            other => return Err(format!("unknown status `{other}`")),
        };
        let fixed_trace = match &entry.trace_id {
            Some(hex) => Some(TraceId::from_hex(hex).map_err(|e| format!("trace_id: {e}"))?),
            None => None,
        };
        let hex_span =
            |text: &str, what: &str| SpanId::from_hex(text).map_err(|e| format!("{what}: {e}"));
        let fixed_span = match &entry.span_id {
            Some(_) if repeat > 1 => return Err("`span_id` needs `repeat` 1".to_string()),
            Some(hex) => Some(hex_span(hex, "span_id")?),
            None => None,
        };
        let parent = match &entry.parent_span_id {
            Some(hex) => Some(hex_span(hex, "parent_span_id")?),
            None => None,
        };
        let links = entry
            .links
            .iter()
            .map(|hex| hex_span(hex, "links"))
            .collect::<Result<Vec<SpanId>, String>>()?;
        for i in 0..repeat {
            let resource = Resource {
                attributes: attributes(&entry.resource, i)?,
                ..Resource::default()
            };
            // Distinct ids per case, entry and copy, readable in reports.
            let mut id = [0u8; 16];
            id[0..4].copy_from_slice(&u32::try_from(case_index).unwrap_or(u32::MAX).to_be_bytes());
            id[4..8].copy_from_slice(&u32::try_from(entry_index).unwrap_or(u32::MAX).to_be_bytes());
            id[12..16].copy_from_slice(&i.to_be_bytes());
            id[8] = 1;
            let trace_id = fixed_trace.unwrap_or(TraceId::from_bytes(id));
            let span_id = fixed_span.unwrap_or(SpanId::from_bytes([
                id[4],
                id[5],
                id[6],
                id[7],
                id[12],
                id[13],
                id[14],
                id[15] | 1,
            ]));
            let name = entry
                .name
                .as_deref()
                .unwrap_or("span")
                .replace("{i}", &i.to_string());
            let mut span = Span::new(trace_id, span_id, name.as_str());
            span.kind = kind;
            span.status.code = status;
            span.start_time_unix_nano = FIXTURE_EPOCH_UNIX_NANO
                .saturating_add(at)
                .saturating_add(every.saturating_mul(u64::from(i)));
            span.end_time_unix_nano = span.start_time_unix_nano.saturating_add(duration);
            span.attributes = attributes(&entry.attributes, i)?;
            // As ingest does before redaction: a credential becomes its
            // fingerprint attribute, which token rules key on.
            tracewarden_model::credential::stamp(&mut span.attributes);
            span.parent_span_id = parent;
            span.flags = entry.flags.unwrap_or(0);
            span.links = links
                .iter()
                .map(|&link| Link {
                    trace_id,
                    span_id: link,
                    trace_state: Default::default(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                    flags: 0,
                })
                .collect();
            records.push(SpanRecord {
                resource: Arc::new(resource),
                scope: Arc::default(),
                span: span.into(),
            });
        }
    }
    Ok(records)
}

/// Expands fixture log entries into log records (counted with the spans
/// against [`MAX_FIXTURE_SPANS`]).
fn expand_logs(entries: &[FixtureLog], total: &mut usize) -> Result<Vec<LogEntry>, String> {
    let mut out = Vec::new();
    for entry in entries {
        let repeat = entry.repeat.unwrap_or(1);
        if !(1..=10_000).contains(&repeat) {
            return Err("`repeat` must be between 1 and 10000".to_string());
        }
        *total += repeat as usize;
        if *total > MAX_FIXTURE_SPANS {
            return Err(format!("more than {MAX_FIXTURE_SPANS} spans and logs"));
        }
        let severity_number = entry.severity_number.unwrap_or(0);
        if !(0..=24).contains(&severity_number) {
            return Err("`severity_number` must be between 0 and 24".to_string());
        }
        let at = duration_field(entry.at.as_ref(), 0, "at")?;
        let every = duration_field(entry.every.as_ref(), 1_000_000_000, "every")?;
        let trace_id = match &entry.trace_id {
            Some(hex) => Some(TraceId::from_hex(hex).map_err(|e| format!("trace_id: {e}"))?),
            None => None,
        };
        let span_id = match &entry.span_id {
            Some(hex) => Some(SpanId::from_hex(hex).map_err(|e| format!("span_id: {e}"))?),
            None => None,
        };
        for i in 0..repeat {
            let time = FIXTURE_EPOCH_UNIX_NANO
                .saturating_add(at)
                .saturating_add(every.saturating_mul(u64::from(i)));
            let record = LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time,
                severity_number,
                severity_text: entry.severity_text.as_deref().unwrap_or("").into(),
                body: entry.body.as_deref().map_or(AnyValue::Empty, |b| {
                    AnyValue::from(b.replace("{i}", &i.to_string()).as_str())
                }),
                attributes: attributes(&entry.attributes, i)?,
                original_attributes: Vec::new(),
                dropped_attributes_count: 0,
                flags: 0,
                trace_id,
                span_id,
                event_name: Default::default(),
            };
            out.push(LogEntry {
                resource: Arc::new(Resource {
                    attributes: attributes(&entry.resource, i)?,
                    ..Resource::default()
                }),
                scope: Arc::default(),
                record,
            });
        }
    }
    Ok(out)
}
