//! `join:` of a log rule: the span attributes a log record takes from the
//! span it was emitted in (same trace id and span id) when it lacks them.
//!
//! ```yaml
//! source: logs
//! join: [span.client.address]
//! group_by: [span.client.address]
//! ```
//!
//! Like an Elastic enrich policy's `enrich_fields`, the rule names what it
//! borrows and then reads it under its usual name: the condition, `group_by`
//! and `distinct` see `span.client.address` whether the record or its span
//! carried it. The record's own value wins (it is the more specific). Only
//! span attributes can be joined: the record's resource and intrinsics are
//! its own. Parsing only; the waiting and joining are `engine/logs.rs` and
//! [`crate::log_join`].

use saphyr::MarkedYaml;
use tracewarden_traceql::{AttributeScope, Field};

use super::{Checker, RuleErrorKind, Source};

/// Most fields a rule may join.
pub const MAX_JOIN_FIELDS: usize = 8;

/// Parses `join` into attribute names; an error unless the rule reads logs
/// (`source` is `None` when `source` itself was wrong: already reported).
pub(super) fn parse(
    checker: &mut Checker<'_>,
    node: &MarkedYaml<'_>,
    source: Option<Source>,
) -> Option<Vec<String>> {
    let fields = checker.fields(
        node,
        "join",
        1,
        MAX_JOIN_FIELDS,
        "a list of span attributes, e.g. [span.client.address]",
    )?;
    if source == Some(Source::Spans) {
        checker.error(
            node,
            RuleErrorKind::Invalid {
                key: "join".to_string(),
                reason: "`join` is for log rules (`source: logs`): a span has its own attributes"
                    .to_string(),
            },
        );
        return None;
    }
    let before = checker.errors.len();
    let mut names = Vec::with_capacity(fields.len());
    for field in &fields {
        match field.field() {
            Field::Attribute {
                scope: AttributeScope::Span | AttributeScope::Unscoped,
                name,
            } => names.push(name.to_string()),
            _ => checker.error(
                node,
                RuleErrorKind::Invalid {
                    key: "join".to_string(),
                    reason: format!(
                        "`{}` is not a span attribute: write `span.<key>` (a record's resource and intrinsics are its own)",
                        field.as_str()
                    ),
                },
            ),
        }
    }
    (checker.errors.len() == before).then_some(names)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::rule::parse_rule;

    const BASE: &str = "id: r\ntitle: t\nseverity: low\nsource: logs\nkind: threshold\ncondition: '{ span.log.body =~ \"(?i).*denied.*\" }'\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 3\n";

    #[test]
    fn join_lists_span_attributes_by_name() {
        let rule = parse_rule(
            &format!("{BASE}join: [span.client.address, .enduser.id]\n"),
            Path::new("r.yaml"),
        )
        .expect("valid");
        assert_eq!(rule.join, vec!["client.address", "enduser.id"]);
        let plain = parse_rule(BASE, Path::new("r.yaml")).expect("valid");
        assert!(plain.join.is_empty());
    }

    #[test]
    fn join_is_refused_off_log_rules_and_for_other_fields() {
        let spans = BASE.replace("source: logs\n", "");
        let errors = parse_rule(
            &format!("{spans}join: [span.client.address]\n"),
            Path::new("r.yaml"),
        )
        .expect_err("spans");
        assert!(
            errors[0].to_string().contains("`join` is for log rules"),
            "{}",
            errors[0]
        );
        let errors = parse_rule(
            &format!("{BASE}join: [resource.service.name]\n"),
            Path::new("r.yaml"),
        )
        .expect_err("resource");
        assert!(
            errors[0].to_string().contains("is not a span attribute"),
            "{}",
            errors[0]
        );
        let errors =
            parse_rule(&format!("{BASE}join: []\n"), Path::new("r.yaml")).expect_err("empty");
        assert!(errors[0].to_string().contains("join"), "{}", errors[0]);
    }
}
