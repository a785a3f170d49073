//! Exceptions: spans some rules must not count, declared beside the rules
//! instead of in a copy of each rule.
//!
//! ```yaml
//! id: uptime-monitor
//! title: Our uptime monitor runs curl from one address
//! expires: 2027-01-31T00:00:00Z        # optional: spans from then on count again
//! exception:
//!   rules: [scripting-user-agent, excessive-request-rate]   # or ["*"]: every rule it can apply to
//!   condition: '{ span.client.address = "198.51.100.10" }'
//! ```
//!
//! Like Elastic's rule exceptions, Falco's `exceptions` and Sigma's filter
//! documents: a site tunes the built-in pack without copying its rules, so
//! the rules keep their updates. A span (or log record) that satisfies a
//! rule's condition and one of its exceptions' conditions is left out of the
//! rule, counted in `RuleStats::excepted`. An exception is a file of the
//! rules directory, told from a rule by its `exception` key; it names rules
//! of the built-in pack or of the directory by id (an unknown id is an error,
//! so a typo cannot silently except nothing). Exceptions apply to every
//! kind: a whole-trace match is left out when a span of the trace satisfies
//! the exception; a topology finding when its server or consumer span does
//! (the health check that calls an internal service directly); a data
//! flow when the span it reaches the party by, or the span carrying the
//! data, does.

use std::path::PathBuf;

use saphyr::{MarkedYaml, YamlData};

use super::{Checker, Condition, RuleErrorKind, position, string_of, valid_id};
use crate::rule::{Rule, RuleError};

/// Most rule ids one exception names.
pub const MAX_EXCEPTION_RULES: usize = 64;

/// Top-level keys of an exception file.
pub(super) const KEYS: [&str; 6] = [
    "id",
    "title",
    "description",
    "enabled",
    "expires",
    "exception",
];
const EXCEPTION_KEYS: [&str; 2] = ["rules", "condition"];

/// A rule id as an exception names it, with its 1-based line and column.
pub type NamedRule = (String, usize, usize);

/// An exception file, parsed.
#[derive(Clone, Debug)]
pub struct Exception {
    pub id: String,
    pub title: String,
    pub description: String,
    pub enabled: bool,
    /// Why an enabled exception is not applied: its condition references
    /// site facts the site leaves empty. `None`: it applies.
    pub inactive: Option<String>,
    /// Spans starting at or after this (unix nanoseconds) are no longer
    /// excepted: an agreed pentest window, a partner's trial.
    pub expires_unix_nano: Option<u64>,
    /// The rule ids named (`*`: every rule an exception can apply to), with the
    /// 1-based line and column of each.
    pub rules: Vec<NamedRule>,
    pub condition: Condition,
    pub file: PathBuf,
    /// 1-based line and column of the `id` value.
    pub line: usize,
    pub column: usize,
}

/// An exception as a rule holds it: its id and condition.
#[derive(Clone, Debug)]
pub struct RuleException {
    pub id: String,
    pub condition: Condition,
    /// See [`Exception::expires_unix_nano`].
    pub expires_unix_nano: Option<u64>,
}

impl RuleException {
    /// Whether the exception holds for a span starting at `ts` (event
    /// time, like windows: replay and late spans are judged by when they
    /// happened).
    pub fn applies_at(&self, ts: u64) -> bool {
        self.expires_unix_nano.is_none_or(|expires| ts < expires)
    }
}

/// Whether a YAML root is an exception file (it has an `exception` key).
pub(super) fn is_exception(root: &MarkedYaml<'_>) -> bool {
    match &root.data {
        YamlData::Mapping(map) => map.iter().any(|(k, _)| string_of(k) == Some("exception")),
        _ => false,
    }
}

/// Parses an exception file's root mapping.
pub(super) fn parse(checker: &mut Checker<'_>, root: &MarkedYaml<'_>) -> Option<Exception> {
    let entries = checker.mapping(root, "an exception", &KEYS, None)?;
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
    let enabled = checker.enabled(get("enabled"));
    let expires = match get("expires") {
        None => Some(None),
        Some(node) => checker.string("expires", node).and_then(|text| {
            let parsed = tracewarden_model::time::parse_rfc3339(&text);
            if parsed.is_none() {
                checker.error(
                    node,
                    RuleErrorKind::Invalid {
                        key: "expires".to_string(),
                        reason: format!(
                            "`{text}` is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)"
                        ),
                    },
                );
            }
            parsed.map(Some)
        }),
    };
    let (rules, condition) = match get("exception") {
        Some(node) => body(checker, node),
        None => (None, None),
    };
    let inactive = checker.inactive();
    Some(Exception {
        id: id?,
        title: title?,
        description: description?,
        enabled: enabled?,
        inactive,
        expires_unix_nano: expires?,
        rules: rules?,
        condition: condition?,
        file: checker.file.to_path_buf(),
        line: id_position.0,
        column: id_position.1,
    })
}

/// `exception: { rules: [ids], condition: '{ ... }' }`.
fn body(
    checker: &mut Checker<'_>,
    node: &MarkedYaml<'_>,
) -> (Option<Vec<NamedRule>>, Option<Condition>) {
    let Some(entries) = checker.mapping(node, "exception", &EXCEPTION_KEYS, None) else {
        return (None, None);
    };
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, _, v)| *v)
    };
    let rules = match get("rules") {
        None => {
            checker.error(node, RuleErrorKind::MissingKey("exception.rules"));
            None
        }
        Some(list) => rule_ids(checker, list),
    };
    let condition = match get("condition") {
        None => {
            checker.error(node, RuleErrorKind::MissingKey("exception.condition"));
            None
        }
        // Decided span by span: it is asked of the span a rule is about
        // to count (of each span of a trace a whole-trace match matched).
        Some(text) => checker.condition(text, true),
    };
    (rules, condition)
}

fn rule_ids(checker: &mut Checker<'_>, node: &MarkedYaml<'_>) -> Option<Vec<NamedRule>> {
    let items = checker.sized_list(
        node,
        "exception.rules",
        (1, MAX_EXCEPTION_RULES),
        "a list of rule ids, e.g. [scripting-user-agent], or [\"*\"]",
        || format!("list 1 to {MAX_EXCEPTION_RULES} rule ids"),
    )?;
    let before = checker.errors.len();
    let mut ids: Vec<NamedRule> = Vec::with_capacity(items.len());
    for item in items {
        let Some(id) = checker.string("exception.rules", item) else {
            continue;
        };
        let (line, column) = position(item);
        if id != "*" && !valid_id(&id) {
            checker.error(item, RuleErrorKind::BadId(id));
        } else if ids.iter().any(|(other, _, _)| *other == id) {
            checker.error(
                item,
                RuleErrorKind::Invalid {
                    key: "exception.rules".to_string(),
                    reason: format!("`{id}` is listed twice"),
                },
            );
        } else {
            ids.push((id, line, column));
        }
    }
    if ids.len() > 1 && ids.iter().any(|(id, _, _)| id == "*") {
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: "exception.rules".to_string(),
                reason: "`*` already names every rule: list it alone".to_string(),
            },
        );
    }
    (checker.errors.len() == before).then_some(ids)
}

/// Hands each enabled, active exception to the rules it names. An id no
/// rule has is an error unless `elsewhere(id)` says another set holds it
/// (a directory's exception may name a built-in rule the directory does
/// not hold); `*` applies to every rule. Errors carry the position of the
/// id.
pub fn apply_exceptions(
    rules: &mut [Rule],
    exceptions: &[Exception],
    elsewhere: impl Fn(&str) -> bool,
) -> Vec<RuleError> {
    let mut errors = Vec::new();
    for exception in exceptions {
        let applied = RuleException {
            id: exception.id.clone(),
            condition: exception.condition.clone(),
            expires_unix_nano: exception.expires_unix_nano,
        };
        let active = exception.enabled && exception.inactive.is_none();
        for (id, line, column) in &exception.rules {
            let error = |kind| RuleError {
                file: exception.file.clone(),
                line: *line,
                column: *column,
                kind,
            };
            if id == "*" {
                if active {
                    for rule in rules.iter_mut() {
                        rule.exceptions.push(applied.clone());
                    }
                }
                continue;
            }
            match rules.iter_mut().find(|r| r.id == *id) {
                Some(rule) => {
                    if active {
                        rule.exceptions.push(applied.clone());
                    }
                }
                None if elsewhere(id) => {}
                None => errors.push(error(RuleErrorKind::Invalid {
                    key: "exception.rules".to_string(),
                    reason: format!("no rule has the id `{id}`"),
                })),
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rule::{
        Document, Site, load_dir, load_dir_parts_for, parse_document_with_id, parse_rule,
    };

    const EXCEPTION: &str = "id: uptime-monitor\ntitle: Our uptime monitor\nexception:\n  rules: [scanner, burst]\n  condition: '{ span.client.address = \"198.51.100.10\" }'\n";
    const SCANNER: &str = "id: scanner\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.user_agent.original =~ \"(?i)sqlmap.*\" }'\n";
    const BURST: &str = "id: burst\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 3\n";
    const TRACE: &str = "id: structural\ntitle: t\nseverity: low\nkind: match\ncondition: '{ kind = server } >> { span.db.system = \"redis\" }'\n";
    const TOPOLOGY: &str = "id: graph\ntitle: t\nseverity: high\nkind: topology\ndetect: [no_parent]\nentry_services: [gateway]\n";

    fn exception(text: &str) -> Result<Exception, Vec<String>> {
        match parse_document_with_id(text, Path::new("e.yaml"), &Site::default()).0 {
            Ok(Document::Exception(e)) => Ok(*e),
            Ok(Document::Rule(r)) => panic!("a rule: {r:?}"),
            Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
        }
    }

    fn rule(text: &str) -> Rule {
        parse_rule(text, Path::new("r.yaml")).unwrap()
    }

    #[test]
    fn parses_an_exception_file() {
        let e = exception(EXCEPTION).unwrap();
        assert_eq!(e.id, "uptime-monitor");
        assert_eq!((e.line, e.column), (1, 5));
        assert!(e.enabled && e.inactive.is_none() && e.expires_unix_nano.is_none());
        let until = exception(
            &EXCEPTION.replace("exception:", "expires: 2027-01-31T00:00:00Z\nexception:"),
        )
        .unwrap();
        assert_eq!(until.expires_unix_nano, Some(1_801_353_600_000_000_000));
        assert_eq!(
            exception(&EXCEPTION.replace("exception:", "expires: next week\nexception:"))
                .unwrap_err(),
            vec![
                "e.yaml:3:10: invalid `expires`: `next week` is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)"
            ]
        );
        assert_eq!(
            e.rules,
            vec![("scanner".to_string(), 4, 11), ("burst".to_string(), 4, 20)]
        );
        assert_eq!(
            e.condition.text(),
            "{ span.client.address = \"198.51.100.10\" }"
        );
        // A site fact left empty makes it inactive, like a rule.
        let e = exception(&EXCEPTION.replace("= \"198.51.100.10\"", "=~ $trusted_origins"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            e.inactive.as_deref(),
            Some("the site leaves site.trusted_origins empty")
        );
    }

    #[test]
    fn every_error_with_its_position() {
        assert_eq!(
            exception("id: x\nexception:\n  rules: []\n  condition: '{ }'\n  extra: 1\n")
                .unwrap_err(),
            vec![
                "e.yaml:1:1: missing required key `title`",
                "e.yaml:5:3: unknown key `extra` (expected one of: rules, condition)",
                "e.yaml:3:10: invalid `exception.rules`: list 1 to 64 rule ids",
            ]
        );
        assert_eq!(
            exception("id: x\ntitle: t\nexception:\n  rules: [a, 'b c', a, '*']\n  condition: '{ kind = server } >> { }'\n")
                .unwrap_err()[..3],
            [
                "e.yaml:4:14: invalid id `b c`: use 1 to 128 of A-Z a-z 0-9 . _ - starting with a letter or digit",
                "e.yaml:4:21: invalid `exception.rules`: `a` is listed twice",
                "e.yaml:4:10: invalid `exception.rules`: `*` already names every rule: list it alone",
            ]
        );
        let errors = exception("id: x\ntitle: t\nexception:\n  rules: [a]\n").unwrap_err();
        assert_eq!(
            errors,
            vec!["e.yaml:4:3: missing required key `exception.condition`"]
        );
        let errors = exception(
            "id: x\ntitle: t\nkind: match\nexception:\n  rules: [a]\n  condition: '{ }'\n",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "e.yaml:3:1: unknown key `kind` (expected one of: id, title, description, enabled, expires, exception)"
            ]
        );
        // A whole-trace condition cannot be asked of one span.
        let errors = exception(
            "id: x\ntitle: t\nexception:\n  rules: [a]\n  condition: '{ kind = server } >> { }'\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("e.yaml:5:14: "), "{errors:?}");
        // An exception is not a rule.
        let errors: Vec<String> = parse_rule(EXCEPTION, Path::new("e.yaml"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            vec![
                "e.yaml:1:5: an exception (it has `exception`), not a rule: load it with its rules directory"
            ]
        );
    }

    #[test]
    fn applies_to_the_rules_it_names() {
        let mut rules = vec![rule(SCANNER), rule(BURST), rule(TRACE)];
        let e = exception(EXCEPTION).unwrap();
        assert!(apply_exceptions(&mut rules, &[e], |_| false).is_empty());
        let ids = |r: &Rule| {
            r.exceptions
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&rules[0]), ["uptime-monitor"]);
        assert_eq!(ids(&rules[1]), ["uptime-monitor"]);
        assert!(rules[2].exceptions.is_empty());

        // `*`: every rule, whole-trace and topology ones included.
        let mut rules = vec![rule(SCANNER), rule(TRACE), rule(TOPOLOGY)];
        let every = exception(&EXCEPTION.replace("[scanner, burst]", "['*']")).unwrap();
        assert!(apply_exceptions(&mut rules, &[every], |_| false).is_empty());
        for rule in &rules {
            assert_eq!(ids(rule), ["uptime-monitor"], "{}", rule.id);
        }

        // Disabled: loaded and checked, not applied.
        let mut rules = vec![rule(SCANNER), rule(BURST)];
        let off =
            exception(&EXCEPTION.replace("exception:", "enabled: false\nexception:")).unwrap();
        assert!(apply_exceptions(&mut rules, &[off], |_| false).is_empty());
        assert!(rules.iter().all(|r| r.exceptions.is_empty()));
    }

    #[test]
    fn unknown_rules_are_errors_at_their_position() {
        let mut rules = vec![rule(SCANNER), rule(TOPOLOGY)];
        let e =
            exception(&EXCEPTION.replace("[scanner, burst]", "[scaner, graph, brust]")).unwrap();
        let errors: Vec<String> = apply_exceptions(&mut rules, std::slice::from_ref(&e), |_| false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            vec![
                "e.yaml:4:11: invalid `exception.rules`: no rule has the id `scaner`",
                "e.yaml:4:26: invalid `exception.rules`: no rule has the id `brust`",
            ]
        );
        assert_eq!(rules[1].exceptions.len(), 1, "the topology rule takes it");
        // An id another set holds (the built-in pack) is left to it.
        let errors = apply_exceptions(&mut rules, &[e], |id| id == "scaner");
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn a_directory_holds_rules_and_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scanner.yaml"), SCANNER).unwrap();
        std::fs::write(dir.path().join("burst.yaml"), BURST).unwrap();
        std::fs::write(dir.path().join("uptime.yaml"), EXCEPTION).unwrap();
        let (rules, exceptions) = load_dir_parts_for(dir.path(), &Site::default()).unwrap();
        assert_eq!((rules.len(), exceptions.len()), (2, 1));
        let rules = load_dir(dir.path()).unwrap();
        assert!(rules.iter().all(|r| r.exceptions.len() == 1), "{rules:?}");
        // A built-in rule's id is fine in a directory that lacks it.
        std::fs::write(
            dir.path().join("uptime.yaml"),
            EXCEPTION.replace("[scanner, burst]", "[scanner, scripting-user-agent]"),
        )
        .unwrap();
        assert!(load_dir(dir.path()).is_ok());
        // Ids are unique across rules and exceptions.
        std::fs::write(
            dir.path().join("uptime.yaml"),
            EXCEPTION.replace("uptime-monitor", "burst"),
        )
        .unwrap();
        let errors = load_dir(dir.path()).unwrap_err().to_string();
        assert!(errors.contains("duplicate rule id `burst`"), "{errors}");
    }
}
