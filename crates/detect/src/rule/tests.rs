use std::path::Path;

use super::*;

const VALID: &str = r#"id: brute-force-login
title: Brute-force login
description: Many failed logins from one address.
severity: high
tags: [T1110, T1110.001]
response: Block the address.
kind: threshold
condition: '{ span.http.response.status_code = 401 }'
group_by: [span.client.address]
window: 5m
count: 10
"#;

fn errs(text: &str) -> Vec<String> {
    match parse_rule(text, Path::new("r.yaml")) {
        Ok(rule) => panic!("accepted: {rule:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn parses_a_threshold_rule() {
    let rule = parse_rule(VALID, Path::new("r.yaml")).unwrap();
    assert_eq!(rule.id, "brute-force-login");
    assert_eq!(rule.severity, Severity::High);
    assert_eq!(rule.tags, vec!["T1110", "T1110.001"]);
    assert!(rule.enabled);
    assert_eq!((rule.line, rule.column), (1, 5));
    let RuleKind::Threshold(t) = &rule.kind else {
        panic!("not a threshold: {:?}", rule.kind);
    };
    assert_eq!(t.window, Duration::from_secs(300));
    assert_eq!(t.count, 10);
    assert_eq!(t.group_by.len(), 1);
    assert_eq!(t.group_by[0].as_str(), "span.client.address");
    assert!(t.distinct.is_none());
    assert!(t.condition.is_span_level());
}

#[test]
fn parses_match_and_sequence_rules() {
    let text = "id: scanner\ntitle: t\nseverity: low\nenabled: false\nkind: match\ncondition: |\n  { span.user_agent.original =~ \".*sqlmap.*\" }\n";
    let rule = parse_rule(text, Path::new("m.yaml")).unwrap();
    assert!(!rule.enabled);
    assert!(matches!(&rule.kind, RuleKind::Match(m) if !m.needs_whole_trace()));

    let text = "id: structural\ntitle: t\nseverity: low\nkind: match\ncondition: '{ kind = server } >> { span.db.system = \"redis\" }'\n";
    let rule = parse_rule(text, Path::new("m.yaml")).unwrap();
    assert!(matches!(&rule.kind, RuleKind::Match(m) if m.needs_whole_trace()));
    let text = "id: pipeline\ntitle: t\nseverity: low\nkind: match\ncondition: '{ status = error } | count() > 3'\n";
    let rule = parse_rule(text, Path::new("m.yaml")).unwrap();
    assert!(matches!(&rule.kind, RuleKind::Match(m) if m.needs_whole_trace()));

    let text = r#"id: brute-then-success
title: t
severity: critical
kind: sequence
group_by: [span.client.address]
window: 10m
steps:
  - condition: '{ span.http.response.status_code = 401 }'
    count: 5
  - condition: '{ span.http.response.status_code = 200 }'
"#;
    let rule = parse_rule(text, Path::new("s.yaml")).unwrap();
    let RuleKind::Sequence(s) = &rule.kind else {
        panic!("not a sequence");
    };
    assert_eq!(s.steps.len(), 2);
    assert_eq!((s.steps[0].count, s.steps[1].count), (5, 1));
}

#[test]
fn every_error_with_its_position() {
    let text = "id: x\ntitle: t\nseverity: urgent\ntags: [T11, T1110.1]\nkind: threshold\ncondition: '{ span.a = 1 }'\nwindow: 5 minutes\ncount: 0\ngroupby: [span.a]\n";
    let errors = errs(text);
    assert_eq!(
        errors,
        vec![
            "r.yaml:9:1: unknown key `groupby` (expected one of: id, title, description, severity, tags, response, enabled, source, join, kind, block, condition, group_by, window, count, distinct, payload, evidence)",
            "r.yaml:3:11: unknown severity `urgent` (expected one of: info, low, medium, high, critical)",
            "r.yaml:4:8: invalid tag `T11`: expected a MITRE ATT&CK technique id such as T1110 or T1110.003",
            "r.yaml:4:13: invalid tag `T1110.1`: expected a MITRE ATT&CK technique id such as T1110 or T1110.003",
            "r.yaml:7:9: invalid duration `5 minutes`: missing unit (ms, s, m, h, d), e.g. 5m",
            "r.yaml:8:8: invalid `count`: must be between 1 and 10000",
        ]
    );
}

#[test]
fn missing_keys_unknown_kind_and_kind_specific_keys() {
    let errors = errs("title: t\nkind: threshold\ncondition: '{ }'\nwindow: 1m\n");
    assert!(
        errors.contains(&"r.yaml:1:1: missing required key `id`".to_string()),
        "{errors:?}"
    );
    assert!(
        errors.contains(&"r.yaml:1:1: missing required key `severity`".to_string()),
        "{errors:?}"
    );
    assert!(
        errors.contains(&"r.yaml:1:1: missing required key `count`".to_string()),
        "{errors:?}"
    );

    let errors = errs("id: x\ntitle: t\nseverity: low\nkind: correlate\n");
    assert_eq!(
        errors,
        vec![
            "r.yaml:4:7: unknown kind `correlate` (expected one of: match, threshold, sequence, new_terms, baseline, topology, data_flow)"
        ]
    );

    let errors =
        errs("id: x\ntitle: t\nseverity: low\nkind: match\ncondition: '{ }'\nwindow: 5m\n");
    assert_eq!(
        errors,
        vec!["r.yaml:6:1: key `window` is not valid for kind `match`"]
    );
}

#[test]
fn traceql_errors_point_into_the_yaml() {
    // Plain scalar: the TraceQL column is added to the scalar's column.
    let errors = errs("id: x\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.a = }'\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("r.yaml:5:24: TraceQL: "),
        "{errors:?}"
    );
    // Block scalar: line of the mistake inside the block.
    let errors = errs(
        "id: x\ntitle: t\nseverity: low\nkind: match\ncondition: |\n  { span.a = 1 &&\n    span.b foo }\n",
    );
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("r.yaml:7:12: TraceQL: "),
        "{errors:?}"
    );
    // An unquoted `{` is a YAML mapping, not TraceQL.
    let errors = errs("id: x\ntitle: t\nseverity: low\nkind: match\ncondition: { span.a = 1 }\n");
    assert!(
        errors[0].contains("`condition` must be a TraceQL string"),
        "{errors:?}"
    );
}

#[test]
fn span_rules_refuse_whole_trace_conditions() {
    let errors = errs(
        "id: x\ntitle: t\nseverity: low\nkind: threshold\ncondition: '{ } >> { }'\nwindow: 1m\ncount: 2\n",
    );
    assert!(
        errors[0].starts_with("r.yaml:5:12: invalid `condition`"),
        "{errors:?}"
    );
}

#[test]
fn fields_and_limits() {
    let errors = errs(
        "id: x\ntitle: t\nseverity: low\nkind: threshold\ncondition: '{ }'\nwindow: 1m\ncount: 5\ndistinct: event.name\ngroup_by: [span.a, 'span.b || span.c']\n",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("invalid field `span.b || span.c`"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("invalid field `event.name`"),
        "{errors:?}"
    );
    let errors = errs(
        "id: x\ntitle: t\nseverity: low\nkind: threshold\ncondition: '{ }'\nwindow: 1m\ncount: 5000000\ndistinct: span.user\n",
    );
    assert_eq!(
        errors,
        vec!["r.yaml:7:8: invalid `count`: must be between 1 and 1000000"]
    );
}

#[test]
fn yaml_errors_and_documents() {
    let errors = errs("id: x\nid: y\n");
    assert!(
        errors[0].starts_with("r.yaml:") && errors[0].contains("invalid YAML"),
        "{errors:?}"
    );
    assert_eq!(errs("")[0], "r.yaml:1:1: the file is empty");
    assert!(errs("id: a\n---\nid: b\n")[0].contains("one rule per file"));
    assert!(errs("- a\n- b\n")[0].contains("must be a mapping"));
    assert!(errs("id: [\n")[0].contains("invalid YAML"));
    assert!(
        errs("id: 'bad id'\ntitle: t\nseverity: low\nkind: match\ncondition: '{ }'\n")[0]
            .contains("invalid id")
    );
}

#[test]
fn hostile_input_does_not_panic() {
    let inputs = [
        "a: &a [*a, *a]\n",
        "a: &x [1]\nb: [*x, *x, *x, *x]\n",
        "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
        "id: x\ntitle: t\nseverity: low\nkind: match\ncondition: \"\\u0000\"\n",
        "? [a, b]\n: c\n",
        "id: x\ntitle: t\nseverity: low\nkind: sequence\nwindow: 1m\nsteps: [{condition: '{ }'}, 3]\n",
        "\u{feff}id: é\n",
    ];
    for input in inputs {
        assert!(parse_rule(input, Path::new("h.yaml")).is_err(), "{input:?}");
    }
    let deep = "[".repeat(10_000);
    assert!(parse_rule(&deep, Path::new("h.yaml")).is_err());
}

#[test]
fn pipeline_detection_ignores_strings_and_union() {
    assert!(has_pipeline_stage("{ } | count() > 1"));
    assert!(!has_pipeline_stage("{ span.a = \"x | y\" }"));
    assert!(!has_pipeline_stage("{ span.a = \"\\\" | \" }"));
    assert!(!has_pipeline_stage("{ } || { }"));
    assert!(!has_pipeline_stage("({ } | count() > 1)"));
}

#[test]
fn load_dir_reports_every_file_and_duplicate_ids() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), VALID).unwrap();
    std::fs::write(dir.path().join("b.yml"), VALID).unwrap();
    std::fs::write(dir.path().join("c.yaml"), "id: c\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
    let errors = load_dir(dir.path()).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("b.yml:1:5: duplicate rule id `brute-force-login`")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("c.yaml:1:1: missing required key `title`")),
        "{text:?}"
    );
    std::fs::remove_file(dir.path().join("b.yml")).unwrap();
    std::fs::remove_file(dir.path().join("c.yaml")).unwrap();
    assert_eq!(load_dir(dir.path()).unwrap().len(), 1);
    assert!(load_dir(&dir.path().join("missing")).is_err());
}

#[test]
fn traceql_positions_for_double_quoted_and_first_block_line() {
    let errors = errs("id: x\ntitle: t\nseverity: low\nkind: match\ncondition: \"{ span.a = }\"\n");
    assert!(
        errors[0].starts_with("r.yaml:5:24: TraceQL: "),
        "{errors:?}"
    );
    let errors =
        errs("id: x\ntitle: t\nseverity: low\nkind: match\ncondition: |\n  { span.a === 1 }\n");
    assert!(errors[0].starts_with("r.yaml:6:"), "{errors:?}");
    // Inside a sequence step.
    let errors = errs(
        "id: x\ntitle: t\nseverity: low\nkind: sequence\nwindow: 1m\nsteps:\n  - condition: '{ }'\n  - condition: '{ span.a = }'\n    colour: red\n",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("r.yaml:9:5: unknown key `colour`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("r.yaml:8:28: TraceQL: "),
        "{errors:?}"
    );
}

#[test]
fn traceql_positions_in_conditions_written_over_several_lines() {
    let head = "id: x\ntitle: t\nseverity: low\nkind: match\n";
    // Single-quoted, folded onto a second line: the `}` is at 6:12.
    let errors = errs(&format!(
        "{head}condition: '{{ span.x = 1 &&\n  span.y = }}'\n"
    ));
    assert!(
        errors[0].starts_with("r.yaml:6:12: TraceQL: "),
        "{errors:?}"
    );
    // Double-quoted, the operator on the second line: `}` at 6:15.
    let errors = errs(&format!(
        "{head}condition: \"{{ span.x = 1\n  && span.y = }}\"\n"
    ));
    assert!(
        errors[0].starts_with("r.yaml:6:15: TraceQL: "),
        "{errors:?}"
    );
    // A literal block whose first line is blank: `}` at 8:15.
    let errors = errs(&format!(
        "{head}condition: |\n\n  {{ span.x = 1\n  && span.y = }}\n"
    ));
    assert!(
        errors[0].starts_with("r.yaml:8:15: TraceQL: "),
        "{errors:?}"
    );
    // A sequence step over two lines: `}` at 9:16.
    let errors = errs(
        "id: x\ntitle: t\nseverity: low\nkind: sequence\nwindow: 1m\nsteps:\n  - condition: '{ }'\n  - condition: '{ span.x = 1 &&\n      span.y = }'\n",
    );
    assert!(
        errors[0].starts_with("r.yaml:9:16: TraceQL: "),
        "{errors:?}"
    );
    // Escapes before the mistake still align: YAML's `\"` and `\\` are one
    // character each, and TraceQL's own mistake is the `\.` written `\\.`.
    let errors = errs(&format!(
        "{head}condition: \"{{ span.x =~ \\\"a\\\\.b\\\" && }}\"\n"
    ));
    assert!(
        errors[0].starts_with("r.yaml:5:28: TraceQL: unknown escape"),
        "{errors:?}"
    );
}

#[test]
fn deep_nesting_is_a_mistake_not_a_stack_overflow() {
    // Block sequences nest without a limit in the YAML parser; building
    // (and dropping) the tree of this 20 kB file overflowed the stack.
    let text = format!(
        "id: deep\ntitle: t\nseverity: high\nkind: match\ncondition: '{{ }}'\ntags:\n{}x\n",
        "- ".repeat(10_000)
    );
    let errors = errs(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("r.yaml:7:63: invalid YAML: mappings and sequences nested deeper than 32"),
        "{errors:?}"
    );
    // The same depth in flow style, and the built-in rules' depth, load.
    let shallow =
        "id: ok\ntitle: t\nseverity: high\nkind: match\ncondition: '{ }'\ntags:\n- - - - x\n";
    assert!(errs(shallow)[0].contains("tags"), "only the tags are wrong");
}

#[test]
fn a_file_that_is_not_utf8_is_positioned_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, b"id: bad\ntitle: caf\xc3\xa9 \xff\xfe\n").unwrap();
    let errors = load_file(&path).unwrap_err();
    let text = errors[0].to_string();
    assert!(text.contains("bad.yaml:2:13: "), "{text}");
    assert!(text.contains("not UTF-8"), "{text}");
}

#[test]
fn a_duplicate_id_is_reported_with_the_files_other_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let valid = "id: same\ntitle: t\nseverity: high\nkind: match\ncondition: '{ }'\n";
    std::fs::write(dir.path().join("a.yaml"), valid).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        valid.replace("severity: high", "severity: urgent"),
    )
    .unwrap();
    let errors: Vec<String> = load_dir(dir.path())
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("b.yaml:1:5: duplicate rule id `same`")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("b.yaml:3:11: ")),
        "{errors:?}"
    );
}

#[test]
fn the_digest_follows_what_a_rule_matches_and_counts() {
    let digest = |text: &str| parse_rule(text, Path::new("r.yaml")).unwrap().digest;
    let base = digest(VALID);
    // Words, severity, tags, comments, quoting and key order: the same state.
    let reworded = VALID
        .replace("severity: high", "severity: low # note")
        .replace("[T1110, T1110.001]", "[T1078]")
        .replace("Many failed logins from one address.", "'Reworded.'")
        .replace("window: 5m", "window: \"5m\"");
    assert_eq!(digest(&reworded), base);
    let mut lines: Vec<&str> = VALID.lines().collect();
    lines.reverse();
    assert_eq!(digest(&(lines.join("\n") + "\n")), base);
    // The evidence named is what a detection says, not what it counts.
    assert_eq!(
        digest(&format!("{VALID}evidence: [span.user_agent.original]\n")),
        base
    );
    // What it counts, or over which window: another rule's state.
    assert_ne!(digest(&VALID.replace("window: 5m", "window: 2m")), base);
    assert_ne!(digest(&VALID.replace("401", "403")), base);
}

const PAYLOAD_MATCH: &str = "id: sqli\ntitle: t\nseverity: high\nkind: match\ncondition: '{ kind = server }'\npayload:\n  detect: [sql_injection, xss]\n  fields: [url.query, url.path]\n";

#[test]
fn parses_payload_sections_of_match_and_threshold_rules() {
    let rule = parse_rule(PAYLOAD_MATCH, Path::new("p.yaml")).unwrap();
    let RuleKind::Match(m) = &rule.kind else {
        panic!("not a match rule");
    };
    let payload = m.payload.as_ref().unwrap();
    assert_eq!(
        payload.detect(),
        vec![
            crate::inject::AttackClass::SqlInjection,
            crate::inject::AttackClass::CrossSiteScripting
        ]
    );
    assert_eq!(payload.fields(), ["url.query", "url.path"]);

    let text = format!("{VALID}payload:\n  detect: [path_traversal]\n  fields: [url.path]\n");
    let rule = parse_rule(&text, Path::new("p.yaml")).unwrap();
    let RuleKind::Threshold(t) = &rule.kind else {
        panic!("not a threshold rule");
    };
    assert_eq!(
        t.payload.as_ref().map(|p| p.detect().to_vec()),
        Some(vec![crate::inject::AttackClass::PathTraversal])
    );
    // Without the section, nothing changes.
    let rule = parse_rule(VALID, Path::new("p.yaml")).unwrap();
    assert!(matches!(&rule.kind, RuleKind::Threshold(t) if t.payload.is_none()));
}

#[test]
fn payload_errors_with_their_positions() {
    let base = "id: x\ntitle: t\nseverity: high\nkind: match\ncondition: '{ kind = server }'\n";
    let errors = errs(&format!(
        "{base}payload:\n  detect: [sql_injection, sqli, xss, xss]\n  fields: [url.query, span.url.path, 3]\n  field: [x]\n"
    ));
    assert_eq!(
        errors,
        vec![
            "r.yaml:9:3: unknown key `field` (expected one of: detect, fields)",
            "r.yaml:7:27: unknown detector `sqli` (expected one of: sql_injection, xss, path_traversal, command_injection)",
            "r.yaml:7:38: invalid `payload.detect`: `xss` is listed twice",
            "r.yaml:8:38: `payload.fields` must be a string",
        ]
    );
    let errors = errs(&format!(
        "{base}payload:\n  detect: []\n  fields: [url.query]\n"
    ));
    assert_eq!(
        errors,
        vec!["r.yaml:7:11: invalid `payload.detect`: list 1 to 4 entries"]
    );
    let errors = errs(&format!("{base}payload:\n  detect: [xss]\n"));
    assert_eq!(
        errors,
        vec!["r.yaml:7:3: missing required key `payload.fields`"]
    );
    let errors = errs(&format!(
        "{base}payload:\n  detect: [xss]\n  fields: [span.url.query]\n"
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "r.yaml:8:12: invalid field `span.url.query`: write the span attribute name alone"
        ),
        "{errors:?}"
    );
    let errors = errs(&format!("{base}payload: [xss]\n"));
    assert_eq!(errors, vec!["r.yaml:6:10: `payload` must be a mapping"]);

    // A payload is read from one span: whole-trace conditions are refused.
    let errors = errs(
        "id: x\ntitle: t\nseverity: high\nkind: match\ncondition: '{ kind = server } >> { kind = client }'\npayload:\n  detect: [xss]\n  fields: [url.query]\n",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("r.yaml:7:3: invalid `payload`: needs a condition decided span by span"),
        "{errors:?}"
    );

    // Sequences have no payload.
    let errors = errs(
        "id: x\ntitle: t\nseverity: high\nkind: sequence\nwindow: 1m\nsteps:\n  - condition: '{ kind = server }'\n  - condition: '{ kind = client }'\npayload:\n  detect: [xss]\n  fields: [url.query]\n",
    );
    assert_eq!(
        errors,
        vec!["r.yaml:9:1: key `payload` is not valid for kind `sequence`"]
    );
}

#[test]
fn evidence_fields_of_match_threshold_and_sequence_rules() {
    let rule = parse_rule(
        &format!("{VALID}evidence: [span.user_agent.original, name, resource.service.name]\n"),
        Path::new("r.yaml"),
    )
    .unwrap();
    let names: Vec<&str> = rule.evidence.iter().map(FieldRef::as_str).collect();
    assert_eq!(
        names,
        ["span.user_agent.original", "name", "resource.service.name"]
    );
    assert!(
        parse_rule(VALID, Path::new("r.yaml"))
            .unwrap()
            .evidence
            .is_empty()
    );
    let sequence = "id: x\ntitle: t\nseverity: high\nkind: sequence\nwindow: 1m\nsteps:\n  - condition: '{ kind = server }'\n  - condition: '{ kind = client }'\nevidence: [span.url.path]\n";
    assert_eq!(
        parse_rule(sequence, Path::new("r.yaml"))
            .unwrap()
            .evidence
            .len(),
        1
    );

    let base = "id: x\ntitle: t\nseverity: high\nkind: match\ncondition: '{ kind = server }'\n";
    assert_eq!(
        errs(&format!("{base}evidence: []\n")),
        vec!["r.yaml:6:11: invalid `evidence`: list 1 to 8 fields"]
    );
    assert_eq!(
        errs(&format!("{base}evidence: span.url.path\n")),
        vec![
            "r.yaml:6:11: `evidence` must be a list of fields, e.g. [span.user_agent.original, span.url.path]"
        ]
    );
    assert_eq!(
        errs(&format!("{base}evidence: [span.a, event.x, span.a]\n")),
        vec![
            "r.yaml:6:20: invalid field `event.x`: event and link fields have one value per event or link; use a span, resource or instrumentation field",
            "r.yaml:6:29: invalid `evidence`: `span.a` is listed twice",
        ]
    );
    // A whole-trace match reads them from the spans its query returned;
    // topology and data-flow rules describe edges and parties in theirs.
    let whole = parse_rule(
        "id: x\ntitle: t\nseverity: high\nkind: match\ncondition: '{ kind = server } >> { kind = client }'\nevidence: [span.url.path]\n",
        Path::new("r.yaml"),
    )
    .expect("a whole-trace match may list evidence fields");
    assert_eq!(whole.evidence.len(), 1);
    let errors = errs(
        "id: x\ntitle: t\nseverity: high\nkind: topology\ndetect: [no_parent]\nentry_services: [gateway]\nevidence: [span.url.path]\n",
    );
    assert_eq!(
        errors,
        vec!["r.yaml:7:1: key `evidence` is not valid for kind `topology`"]
    );
}

const SITE_RULE: &str = "id: geo\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.client.geo.country.iso_code !~ $allowed_countries && span.http.route =~ $login_routes }'\n";

#[test]
fn site_facts_expand_and_empty_facts_make_the_rule_inactive() {
    let rule = parse_rule(SITE_RULE, Path::new("g.yaml")).unwrap();
    assert_eq!(
        rule.inactive.as_deref(),
        Some("the site leaves site.allowed_countries empty")
    );
    // The condition keeps the text as written.
    assert!(
        matches!(&rule.kind, RuleKind::Match(m) if m.condition.text().contains("$allowed_countries"))
    );
    let site = Site {
        allowed_countries: vec!["DE".into(), "FR".into()],
        ..Site::default()
    };
    let rule = parse_rule_for(SITE_RULE, Path::new("g.yaml"), &site).unwrap();
    assert_eq!(rule.inactive, None);
    let RuleKind::Match(m) = &rule.kind else {
        panic!("match rule")
    };
    let span = |country: &str, route: &str| {
        let mut span = tracewarden_model::Span::new(
            tracewarden_model::TraceId::from_bytes([1; 16]),
            tracewarden_model::SpanId::from_bytes([1; 8]),
            "GET",
        );
        span.attributes.push(tracewarden_model::KeyValue::new(
            "client.geo.country.iso_code",
            country,
        ));
        span.attributes
            .push(tracewarden_model::KeyValue::new("http.route", route));
        tracewarden_model::SpanRecord {
            resource: Default::default(),
            scope: Default::default(),
            span: span.into(),
        }
    };
    assert!(m.condition.matches_span(&span("KP", "/api/login")));
    assert!(!m.condition.matches_span(&span("DE", "/api/login")));
    assert!(!m.condition.matches_span(&span("KP", "/api/items")));
    // An inactive rule does not run.
    let inactive = parse_rule(SITE_RULE, Path::new("g.yaml")).unwrap();
    assert_eq!(
        crate::engine::Engine::new(vec![inactive]).rules().count(),
        0
    );
}

#[test]
fn unknown_site_facts_and_traceql_errors_after_facts_have_positions() {
    let text =
        "id: x\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.a =~ $login_route }'\n";
    let errors = parse_rule(text, Path::new("x.yaml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().starts_with(
            "x.yaml:5:25: unknown site fact `$login_route` (expected one of: $login_routes,"
        ),
        "{}",
        errors[0]
    );
    // The mistake after the fact (`= =`) is reported where it was written,
    // not where it lies in the expanded text.
    let text = "id: x\ntitle: t\nseverity: low\nkind: match\ncondition: '{ span.a =~ $login_routes && span.b = = 1 }'\n";
    let errors = parse_rule(text, Path::new("x.yaml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    let expected_column = 12 + "{ span.a =~ $login_routes && span.b = ".len() + 1;
    assert!(
        errors[0]
            .to_string()
            .starts_with(&format!("x.yaml:5:{expected_column}: TraceQL")),
        "{}",
        errors[0]
    );
}

const TOPOLOGY: &str = "id: t\ntitle: t\nseverity: high\nkind: topology\n";

fn with_site(text: &str, site: &Site) -> Rule {
    parse_rule_for(text, Path::new("t.yaml"), site).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn topology_rules_take_site_facts_lists_or_learning() {
    let site = Site {
        allowed_edges: vec![
            "api-gateway -> weather".into(),
            "weather -> location".into(),
        ],
        entry_services: vec!["api-gateway".into()],
        ..Site::default()
    };
    // Implicit: the site's facts.
    let rule = with_site(
        &format!("{TOPOLOGY}detect: [wrong_caller, no_parent]\n"),
        &site,
    );
    let RuleKind::Topology(t) = &rule.kind else {
        panic!("{:?}", rule.kind)
    };
    assert_eq!(t.allowed_edges.len(), 2);
    assert_eq!(t.entry_services, vec!["api-gateway".to_string()]);
    assert!(rule.inactive.is_none());
    assert!(rule.kind.needs_traces());

    // The same facts with an empty site: inactive, naming the facts.
    let rule = with_site(
        &format!(
            "{TOPOLOGY}detect: [wrong_caller, spoofed_context]\nallowed_edges: $allowed_edges\n"
        ),
        &Site::default(),
    );
    assert_eq!(
        rule.inactive.as_deref(),
        Some("the site leaves site.allowed_edges, site.entry_services empty")
    );
    // Learning needs no facts.
    let rule = with_site(
        &format!("{TOPOLOGY}detect: [wrong_caller]\nlearn: 1d\n"),
        &Site::default(),
    );
    assert!(rule.inactive.is_none());
    assert!(
        matches!(&rule.kind, RuleKind::Topology(t) if t.learn == Some(Duration::from_secs(86_400)))
    );
    // Inline lists.
    let rule = with_site(
        &format!("{TOPOLOGY}detect: [wrong_caller]\nallowed_edges: ['a -> b']\n"),
        &Site::default(),
    );
    assert!(
        matches!(&rule.kind, RuleKind::Topology(t) if t.allowed_edges == vec![("a".to_string(), "b".to_string())])
    );
}

#[test]
fn topology_and_data_flow_mistakes_are_positioned() {
    for (text, expected) in [
        (
            format!("{TOPOLOGY}detect: [wrong_caler]\n"),
            "t.yaml:5:10: invalid `detect`: unknown check `wrong_caler` (expected one of: wrong_caller, no_parent, spoofed_context)",
        ),
        (
            format!("{TOPOLOGY}detect: [no_parent, no_parent]\nlearn: 1h\n"),
            "t.yaml:5:21: invalid `detect`: `no_parent` is listed twice",
        ),
        (
            format!("{TOPOLOGY}detect: [wrong_caller]\nallowed_edges: ['a - b']\n"),
            "t.yaml:6:17: invalid `allowed_edges`: `a - b` is not written `caller -> callee`",
        ),
        (
            format!("{TOPOLOGY}detect: [wrong_caller]\nallowed_edges: $third_parties\n"),
            "t.yaml:6:16: invalid `allowed_edges`: takes $allowed_edges",
        ),
        (
            format!("{TOPOLOGY}detect: [wrong_caller]\nallowed_edges: []\n"),
            "t.yaml:6:16: invalid `allowed_edges`: empty, and the rule does not `learn`",
        ),
        (
            format!("{TOPOLOGY}detect: [wrong_caller]\nlearn: 30\n"),
            "t.yaml:6:8: `learn` must be a duration such as 1d",
        ),
        (
            format!("{TOPOLOGY}detect: [wrong_caller]\nthird_parties: $x\n"),
            "t.yaml:6:1: key `third_parties` is not valid for kind `topology`",
        ),
        (
            "id: d\ntitle: t\nseverity: high\nkind: data_flow\ndetect: [email, passport]\n"
                .to_string(),
            "t.yaml:5:17: invalid `detect`: unknown detector `passport` (expected one of: email, payment_card, phone, national_id, iban)",
        ),
        (
            "id: d\ntitle: t\nseverity: high\nkind: data_flow\nthird_parties: ['(']\n".to_string(),
            "t.yaml:5:17: invalid `third_parties`: `(` is not a regex",
        ),
        (
            "id: d\ntitle: t\nseverity: high\nkind: data_flow\nthird_parties: $nope\n".to_string(),
            "t.yaml:5:16: unknown site fact `$nope`",
        ),
    ] {
        let errors = match parse_rule_for(&text, Path::new("t.yaml"), &Site::default()) {
            Ok(rule) => panic!("accepted {text}: {rule:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{text}\n{errors:?}"
        );
    }
}

#[test]
fn data_flow_rules_default_to_the_sites_third_parties() {
    let text = "id: d\ntitle: t\nseverity: high\nkind: data_flow\n";
    let rule = with_site(text, &Site::default());
    assert_eq!(
        rule.inactive.as_deref(),
        Some("the site leaves site.third_parties empty")
    );
    let site = Site {
        third_parties: vec![r"partner\.example\.com".into(), "partner-api".into()],
        ..Site::default()
    };
    let rule = with_site(text, &site);
    assert!(rule.inactive.is_none());
    let RuleKind::DataFlow(d) = &rule.kind else {
        panic!("{:?}", rule.kind)
    };
    let third = d.third_parties.as_ref().unwrap();
    assert!(third.is_match("partner.example.com"));
    assert!(!third.is_match("partner.example.com.evil.test"), "anchored");
    assert!(d.allowed.is_none());
    // An allow-list alone is enough.
    let rule = with_site(
        &format!("{text}allowed: [api-gateway, weather]\n"),
        &Site::default(),
    );
    assert!(rule.inactive.is_none());
    let rule = with_site(
        &format!(
            "{text}attribute_names: [loyalty_id]\ndetect: [payment_card]\nclassification_values: [PII]\n"
        ),
        &site,
    );
    let RuleKind::DataFlow(d) = &rule.kind else {
        panic!("{:?}", rule.kind)
    };
    assert_eq!(
        d.personal_data.classification_values,
        vec!["pii".to_string()]
    );
    assert_eq!(
        d.personal_data.attribute_names.matches("app.loyalty_id"),
        Some("loyalty_id")
    );
    assert_eq!(d.personal_data.attribute_names.matches("user.email"), None);
}

#[test]
fn suppress_sections_and_their_mistakes() {
    let ok = "id: s\ntitle: t\nseverity: low\nkind: match\ncondition: '{ kind = server }'\nsuppress:\n  by: [span.client.address]\n  for: 10m\n";
    let rule = parse_rule(ok, Path::new("s.yaml")).unwrap();
    let RuleKind::Match(m) = &rule.kind else {
        panic!("match")
    };
    let suppress = m.suppress.as_ref().unwrap();
    assert_eq!(suppress.by[0].as_str(), "span.client.address");
    assert_eq!(suppress.period, std::time::Duration::from_secs(600));

    let errors = |text: &str| -> Vec<String> {
        parse_rule(text, Path::new("s.yaml"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let e = errors(&ok.replace("  for: 10m\n", ""));
    assert_eq!(e, vec!["s.yaml:7:3: missing required key `suppress.for`"]);
    let e = errors(&ok.replace("[span.client.address]", "[]"));
    assert!(e[0].contains("suppress.by"), "{e:?}");
    let e = errors(&ok.replace("10m", "10 minutes"));
    assert!(e[0].starts_with("s.yaml:8:8: invalid duration"), "{e:?}");
    let e = errors(&ok.replace("  for: 10m\n", "  for: 10m\n  per: x\n"));
    assert!(e[0].contains("unknown key `per`"), "{e:?}");
    let e = errors(&ok.replace(
        "'{ kind = server }'",
        "'{ kind = server } >> { kind = client }'",
    ));
    assert!(e.iter().any(|e| e.contains("`suppress`")), "{e:?}");
}

/// The name cache gives what matching each time gives, on hits and misses,
/// before and after the key is remembered.
#[test]
fn cached_personal_data_finds_what_uncached_finds() {
    use tracewarden_model::KeyValue;

    use super::{NameCache, PersonalData};
    let data = PersonalData::default();
    let spans: Vec<Vec<KeyValue>> = vec![
        vec![KeyValue::new("user.email", "a@b.example")],
        vec![
            KeyValue::new("iphone.model", "x"),
            KeyValue::new("customerPhoneNumber", "+1 415 555 0100"),
        ],
        vec![KeyValue::new("user.email", "***")],
        vec![KeyValue::new("note", "card 4111 1111 1111 1111")],
        vec![KeyValue::new("app.data.classification", "internal, pii")],
        vec![KeyValue::new("iphone.model", "x")],
        vec![KeyValue::new("user.email", "c@d.example")],
    ];
    let mut cache = NameCache::default();
    for round in 0..2 {
        for attributes in &spans {
            assert_eq!(
                data.find_cached(attributes, &mut cache),
                data.find(attributes),
                "round {round}: {attributes:?}"
            );
        }
    }
    assert!(data.find(&spans[0]).is_some() && data.find(&spans[5]).is_none());
}
