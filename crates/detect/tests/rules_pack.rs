//! The built-in rule pack (`rules/` at the repository root): every rule
//! loads, and every rule meets its fixtures (expected detections and
//! expected silence), as `tracewarden rules test` will check.

use std::path::{Path, PathBuf};

use tracewarden_detect::rule::{FixtureError, RuleKind, Site, load_dir, test_dir, test_dir_for};

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
        "new-user-agent-for-user",
        "ddos-burst",
        "unexpected-data-modification",
        "enumeration-idor",
        "session-hijack",
        "session-hijack-user-agent",
        "authorization-bypass",
        "ssrf-internal-address",
        "ssrf-cloud-metadata",
        "csrf-foreign-origin",
        "geo-policy",
        "scripting-user-agent",
        "excessive-request-rate-user",
        "excessive-request-rate-token",
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
    // Every rule file of the pack ran (none skipped).
    let files = tracewarden_detect::rule::rule_files(&pack_dir()).unwrap();
    assert!(files.len() >= 14, "{} rule files", files.len());
    assert_eq!(report.rules.len(), files.len(), "\n{report}");
    for rule in &report.rules {
        assert!(rule.cases.iter().any(|c| c.positive), "{}", rule.rule_id);
        assert!(rule.cases.iter().any(|c| !c.positive), "{}", rule.rule_id);
    }
    // Rules whose facts the default site leaves empty are reported as off,
    // and still tested through their fixtures' own `site`.
    let mut off: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.inactive.is_some())
        .map(|r| r.rule_id.as_str())
        .collect();
    off.sort_unstable();
    assert_eq!(
        off,
        [
            "csrf-foreign-origin",
            "geo-policy",
            "pii-to-third-party",
            "ssrf-internal-address",
            "topology-internal-no-parent",
            "topology-spoofed-context",
            "topology-wrong-caller",
        ]
    );
    let table = report.to_string();
    assert!(table.contains("ok    brute-force-login"), "{table}");
    assert!(
        table.contains(
            "off   geo-policy                           inactive: the site leaves site.allowed_countries empty"
        ),
        "{table}"
    );
    assert!(table.contains("(7 inactive with this site)"), "{table}");
    assert!(
        table.ends_with("failed") && table.contains(", 0 failed"),
        "{table}"
    );
}

/// The example policies in rules/examples (copied and adapted by sites, not
/// built in) meet their fixtures too, and are not embedded in the pack.
#[test]
fn example_rules_meet_their_fixtures() {
    let dir = pack_dir().join("examples");
    let report = test_dir(&dir);
    println!("{report}");
    assert!(report.passed(), "\n{report}");
    let files = tracewarden_detect::rule::rule_files(&dir).unwrap();
    let (rules, exceptions) =
        tracewarden_detect::rule::load_dir_parts_for(&dir, &Default::default()).unwrap();
    assert!(rules.len() >= 2, "{} example rules", rules.len());
    assert!(!exceptions.is_empty(), "an example exception");
    assert_eq!(rules.len() + exceptions.len(), files.len());
    assert_eq!(report.rules.len(), rules.len(), "\n{report}");
    let pack = tracewarden_detect::rule::builtin_rules().unwrap();
    for example in &report.rules {
        assert!(
            example.cases.iter().any(|c| c.positive),
            "{}",
            example.rule_id
        );
        assert!(
            example.cases.iter().any(|c| !c.positive),
            "{}",
            example.rule_id
        );
        assert!(
            pack.iter().all(|r| r.id != example.rule_id),
            "{} is in the built-in pack",
            example.rule_id
        );
    }
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

#[test]
fn a_site_that_sets_the_facts_activates_the_rules() {
    let site = Site {
        allowed_countries: vec!["DE".into()],
        entry_services: vec!["api-gateway".into()],
        trusted_origins: vec![r"https://shop\.example\.com".into()],
        allowed_edges: vec![
            "api-gateway -> weather".into(),
            "weather -> location".into(),
        ],
        third_parties: vec!["partner-.*".into()],
        ..Site::default()
    };
    let report = test_dir_for(&pack_dir(), &site);
    assert!(report.passed(), "\n{report}");
    assert!(
        report.rules.iter().all(|r| r.inactive.is_none()),
        "\n{report}"
    );
    assert!(!report.to_string().contains("inactive"), "\n{report}");
}

const GEO_RULE: &str = "id: geo\ntitle: t\nseverity: low\ntags: [T1078]\nkind: match\ncondition: '{ span.geo.country.iso_code !~ $allowed_countries }'\n";

const GEO_CASES: &str = r#""cases": [
  { "name": "FR", "expect": [ { "count": 1 } ],
    "spans": [ { "attributes": { "geo.country.iso_code": "FR" } } ] },
  { "name": "DE", "expect": [],
    "spans": [ { "attributes": { "geo.country.iso_code": "DE" } } ] } ]"#;

#[test]
fn fixtures_set_site_facts_for_rules_inactive_by_default() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("fixtures")).unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "geo.yaml", GEO_RULE);

    // Without `site`, the rule is inactive: its cases could not fail for
    // the right reason, so the fixture is refused.
    write(
        dir.path(),
        "fixtures/geo.json",
        &format!("{{ {GEO_CASES} }}"),
    );
    let report = test_dir(dir.path());
    assert!(!report.passed());
    assert!(
        matches!(report.rules[0].error, Some(FixtureError::Inactive { .. })),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains("set the fact in the fixture's `site`"),
        "{report}"
    );

    // With `site`, the cases run against the facts they set.
    write(
        dir.path(),
        "fixtures/geo.json",
        &format!("{{ \"site\": {{ \"allowed_countries\": [\"DE\", \"AT\"] }},\n {GEO_CASES} }}"),
    );
    let report = test_dir(dir.path());
    assert!(report.passed(), "{report}");
    assert!(report.rules[0].inactive.is_some(), "{report}");
    assert!(report.to_string().starts_with("off   geo "), "{report}");

    // A fixture fact that sets a different value: the DE case now fires.
    write(
        dir.path(),
        "fixtures/geo.json",
        &format!("{{ \"site\": {{ \"allowed_countries\": [\"FR\"] }},\n {GEO_CASES} }}"),
    );
    let report = test_dir(dir.path());
    let passed: Vec<bool> = report.rules[0].cases.iter().map(|c| c.passed).collect();
    assert_eq!(passed, [false, false], "{report}");
}

#[test]
fn fixture_site_errors_have_positions() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("fixtures")).unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "geo.yaml", GEO_RULE);
    for (site, expected) in [
        (
            r#"{ "allowed_country": ["DE"] }"#,
            "unknown field `allowed_country`, expected one of",
        ),
        (
            r#"{ "allowed_countries": ["germany"] }"#,
            "`germany` is not an ISO 3166-1 alpha-2 code",
        ),
        (r#"{ "trusted_origins": ["("] }"#, "is not a regex"),
        (r#"{ "allowed_countries": "DE" }"#, "expected a sequence"),
        (
            r#"{ "admin_roles": ["a"], "admin_roles": ["b"] }"#,
            "duplicate site fact `admin_roles`",
        ),
    ] {
        write(
            dir.path(),
            "fixtures/geo.json",
            &format!("{{\n  \"site\": {site},\n {GEO_CASES} }}"),
        );
        let report = test_dir(dir.path());
        let error = report.rules[0]
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(error.contains(expected), "{site}: {error}");
        assert!(error.contains("at line 2 column"), "{site}: {error}");
    }
}

#[test]
fn fixture_attributes_may_be_arrays() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("fixtures")).unwrap_or_else(|e| panic!("{e}"));
    write(
        dir.path(),
        "roles.yaml",
        "id: roles\ntitle: t\nseverity: low\ntags: [T1078]\nkind: match\ncondition: '{ span.user.roles !~ $admin_roles && span.n = 2 }'\n",
    );
    write(
        dir.path(),
        "fixtures/roles.json",
        r#"{ "cases": [
          { "name": "no admin role", "expect": [ { "count": 1 } ],
            "spans": [ { "attributes": { "user.roles": ["viewer", "editor"], "n": 2 } } ] },
          { "name": "admin among the roles", "expect": [],
            "spans": [ { "attributes": { "user.roles": ["viewer", "admin"], "n": 2 } } ] } ] }"#,
    );
    let report = test_dir(dir.path());
    assert!(report.passed(), "{report}");

    write(
        dir.path(),
        "fixtures/roles.json",
        r#"{ "cases": [ { "name": "n", "expect": [],
            "spans": [ { "attributes": { "user.roles": [["nested"]] } } ] } ] }"#,
    );
    let report = test_dir(dir.path());
    assert!(
        report.rules[0]
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("array elements are strings")),
        "{report}"
    );
}
