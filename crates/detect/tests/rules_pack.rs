//! The built-in rule pack (`rules/` at the repository root): every rule
//! loads, and every rule meets its fixtures (expected detections and
//! expected silence), as `tracewarden rules test` will check.

use std::path::{Path, PathBuf};

use tracewarden_detect::rule::{RuleKind, load_dir, test_dir};

fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

#[test]
fn every_built_in_rule_loads() {
    let rules = load_dir(&pack_dir()).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    for expected in [
        "brute-force-login",
        "credential-stuffing",
        "password-spraying",
        "brute-force-then-success",
        "privilege-probing",
        "scanner-user-agent",
        "excessive-request-rate",
        "sql-injection",
        "cross-site-scripting",
        "path-traversal",
        "command-injection",
        "topology-wrong-caller",
        "topology-internal-no-parent",
        "topology-spoofed-context",
        "pii-to-third-party",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }
    for rule in &rules {
        assert!(!rule.description.is_empty(), "{}: no description", rule.id);
        assert!(!rule.response.is_empty(), "{}: no response", rule.id);
        assert!(!rule.tags.is_empty(), "{}: no ATT&CK tags", rule.id);
        assert_eq!(
            rule.file.file_stem().and_then(|s| s.to_str()),
            Some(rule.id.as_str()),
            "rule files are named after their id"
        );
        if let RuleKind::Match(m) = &rule.kind {
            assert!(
                !m.needs_whole_trace(),
                "{}: the pack runs on spans",
                rule.id
            );
        }
    }
}

#[test]
fn every_built_in_rule_meets_its_fixtures() {
    let report = test_dir(&pack_dir());
    // The table `tracewarden rules test` prints (shown with --nocapture).
    println!("{report}");
    assert!(report.passed(), "\n{report}");
    assert_eq!(report.rules.len(), 15, "\n{report}");
    for rule in &report.rules {
        assert!(rule.cases.iter().any(|c| c.positive), "{}", rule.rule_id);
        assert!(rule.cases.iter().any(|c| !c.positive), "{}", rule.rule_id);
    }
    let table = report.to_string();
    assert!(table.contains("ok    brute-force-login"), "{table}");
    assert!(
        table.ends_with("failed") && table.contains(", 0 failed"),
        "{table}"
    );
}

#[test]
fn site_policy_rules_wait_for_their_facts() {
    // Topology and data-flow rules compare traces with the site's policy:
    // with the default (empty) site they load but stay inactive, saying why.
    let rules = load_dir(&pack_dir()).unwrap_or_else(|e| panic!("{e}"));
    for (id, fact) in [
        ("topology-wrong-caller", "site.allowed_edges"),
        ("topology-internal-no-parent", "site.entry_services"),
        ("topology-spoofed-context", "site.entry_services"),
        ("pii-to-third-party", "site.third_parties"),
    ] {
        let rule = rules
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id}"));
        assert!(rule.kind.needs_traces(), "{id}");
        assert_eq!(
            rule.inactive.as_deref(),
            Some(format!("the site leaves {fact} empty").as_str()),
            "{id}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
}

const RULE: &str = "id: r\ntitle: t\nseverity: low\ntags: [T1110]\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 1m\ncount: 3\n";

#[test]
fn the_runner_fails_wrong_expectations() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("fixtures")).unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "r.yaml", RULE);
    // The positive case expects the wrong key; the negative case really fires.
    write(
        dir.path(),
        "fixtures/r.json",
        r#"{ "cases": [
          { "name": "wrong key", "expect": [ { "key": ["10.0.0.2"] } ],
            "spans": [ { "repeat": 3, "attributes": { "http.response.status_code": 401, "client.address": "10.0.0.1" } } ] },
          { "name": "not silent", "expect": [],
            "spans": [ { "repeat": 4, "attributes": { "http.response.status_code": 401, "client.address": "10.0.0.1" } } ] },
          { "name": "right", "expect": [ { "key": ["10.0.0.1"], "count": 3 } ],
            "spans": [ { "repeat": 4, "every": "10s", "attributes": { "http.response.status_code": 401, "client.address": "10.0.0.1" } } ] }
        ] }"#,
    );
    let report = test_dir(dir.path());
    assert!(!report.passed());
    let cases = &report.rules[0].cases;
    assert_eq!(
        cases.iter().map(|c| c.passed).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    assert!(
        cases[0].detail.contains("expected key [\"10.0.0.2\"]"),
        "{}",
        cases[0].detail
    );
    assert!(
        cases[1].detail.contains("expected 0 detection(s), got 1"),
        "{}",
        cases[1].detail
    );
    assert_eq!(report.failed_cases(), 2);
}

#[test]
fn the_runner_reports_missing_incomplete_and_invalid_fixtures() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("fixtures")).unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "r.yaml", RULE);
    let report = test_dir(dir.path());
    assert!(
        report.rules[0]
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().starts_with("no fixture file"))
    );

    write(
        dir.path(),
        "fixtures/r.json",
        r#"{ "cases": [ { "name": "n", "expect": [], "spans": [] } ] }"#,
    );
    let report = test_dir(dir.path());
    assert!(
        report.rules[0]
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("needs at least one positive case"))
    );

    write(
        dir.path(),
        "fixtures/r.json",
        r#"{ "cases": [ { "name": "n", "expect": [], "spans": [ { "attributes": {}, "colour": "red" } ] } ] }"#,
    );
    let report = test_dir(dir.path());
    assert!(
        report.rules[0]
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("unknown field `colour`")),
        "{report}"
    );

    write(
        dir.path(),
        "fixtures/r.json",
        r#"{ "cases": [ { "name": "n", "expect": [], "spans": [ { "repeat": 100000 } ] } ] }"#,
    );
    let report = test_dir(dir.path());
    assert!(
        report.rules[0]
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("repeat")),
        "{report}"
    );

    // A broken rule file: load errors, no rule run.
    write(dir.path(), "broken.yaml", "id: b\nkind: nope\n");
    let report = test_dir(dir.path());
    assert!(!report.load_errors.is_empty() && report.rules.is_empty());
    assert!(report.to_string().starts_with("LOAD  "), "{report}");
}
