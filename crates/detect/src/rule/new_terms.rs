//! `kind: new_terms`: a value never seen before for its key (a new user
//! agent for a user, a new table written by a service), after a learning
//! period. Parsing only; the state is `engine/new_terms.rs`.

use std::time::Duration;

use saphyr::MarkedYaml;

use super::{Checker, Condition, FieldRef, Getter, RuleErrorKind, RuleKind, required, string_of};

/// Most fields in `fields` (the term is the tuple of their values).
pub const MAX_TERM_FIELDS: usize = 4;
/// `max_terms_per_key` when the rule does not set it.
pub const DEFAULT_MAX_TERMS_PER_KEY: usize = 256;
/// Largest `max_terms_per_key`: it bounds memory per key (12 bytes a term).
pub const MAX_TERMS_PER_KEY: u64 = 10_000;

/// The keys of a new_terms rule (besides the common ones).
pub(super) const KEYS: [&str; 7] = [
    "condition",
    "group_by",
    "fields",
    "learning",
    "max_terms_per_key",
    "new_keys",
    "evidence",
];

/// What a key seen for the first time after learning does with its first
/// term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewKeys {
    /// Records it silently: a brand new user is not an alert, its second
    /// user agent is.
    Learn,
    /// Fires on it, as on any other new term.
    Alert,
}

/// `kind: new_terms`.
#[derive(Clone, Debug)]
pub struct NewTermsRule {
    /// One spanset filter, decided span by span.
    pub condition: Condition,
    /// The key: terms are remembered per distinct tuple of these values.
    /// Empty: one key for all spans.
    pub group_by: Vec<FieldRef>,
    /// 1 to [`MAX_TERM_FIELDS`] fields whose tuple of values is the term.
    pub fields: Vec<FieldRef>,
    /// History period, in event time from the first span the rule saw:
    /// terms seen in it are recorded and never fire.
    pub learning: Duration,
    /// Terms kept per key; beyond it the least recently seen is forgotten.
    pub max_terms_per_key: usize,
    pub new_keys: NewKeys,
}

pub(super) fn parse(
    checker: &mut Checker<'_>,
    root: &MarkedYaml<'_>,
    get: &Getter<'_, '_>,
) -> Option<RuleKind> {
    let condition =
        required(checker, root, get, "condition").and_then(|n| checker.condition(n, true));
    let group_by = get("group_by").map_or(Some(Vec::new()), |n| checker.group_by(n));
    let fields = required(checker, root, get, "fields").and_then(|n| {
        checker.fields(
            n,
            "fields",
            1,
            MAX_TERM_FIELDS,
            "a list of fields, e.g. [span.user_agent.original]",
        )
    });
    let learning =
        required(checker, root, get, "learning").and_then(|n| checker.duration("learning", n));
    let max_terms_per_key = match get("max_terms_per_key") {
        None => Some(DEFAULT_MAX_TERMS_PER_KEY),
        Some(n) => checker
            .count("max_terms_per_key", n, MAX_TERMS_PER_KEY)
            .and_then(|c| usize::try_from(c).ok()),
    };
    let new_keys = match get("new_keys") {
        None => Some(NewKeys::Learn),
        Some(node) => match string_of(node) {
            Some("learn") => Some(NewKeys::Learn),
            Some("alert") => Some(NewKeys::Alert),
            _ => {
                checker.error(
                    node,
                    RuleErrorKind::Invalid {
                        key: "new_keys".to_string(),
                        reason: "expected `learn` or `alert`".to_string(),
                    },
                );
                None
            }
        },
    };
    if let (Some(group_by), Some(fields), Some(node)) = (&group_by, &fields, get("fields")) {
        // A term field that is also a key field has one value per key: it
        // could never be new after the key's first span.
        if let Some(both) = fields.iter().find(|f| group_by.contains(f)) {
            checker.error(
                node,
                RuleErrorKind::Invalid {
                    key: "fields".to_string(),
                    reason: format!("`{}` is also in group_by", both.as_str()),
                },
            );
            return None;
        }
    }
    Some(RuleKind::NewTerms(NewTermsRule {
        condition: condition?,
        group_by: group_by?,
        fields: fields?,
        learning: learning?,
        max_terms_per_key: max_terms_per_key?,
        new_keys: new_keys?,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rule::parse_rule;

    const HEAD: &str = "id: x\ntitle: t\nseverity: low\nkind: new_terms\n";

    fn errs(body: &str) -> Vec<String> {
        match parse_rule(&format!("{HEAD}{body}"), Path::new("r.yaml")) {
            Ok(rule) => panic!("accepted: {rule:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn parses_with_defaults_and_options() {
        let text = format!(
            "{HEAD}condition: '{{ kind = server }}'\ngroup_by: [span.enduser.id]\nfields: [span.user_agent.original]\nlearning: 7d\n"
        );
        let RuleKind::NewTerms(n) = parse_rule(&text, Path::new("r.yaml")).unwrap().kind else {
            panic!("not new_terms");
        };
        assert_eq!(n.learning, Duration::from_secs(7 * 86_400));
        assert_eq!(n.max_terms_per_key, DEFAULT_MAX_TERMS_PER_KEY);
        assert_eq!(n.new_keys, NewKeys::Learn);
        assert_eq!(n.fields[0].as_str(), "span.user_agent.original");

        let text = format!(
            "{HEAD}condition: '{{ }}'\nfields: [span.a, span.b]\nlearning: 1h\nmax_terms_per_key: 10000\nnew_keys: alert\n"
        );
        let RuleKind::NewTerms(n) = parse_rule(&text, Path::new("r.yaml")).unwrap().kind else {
            panic!("not new_terms");
        };
        assert!(n.group_by.is_empty());
        assert_eq!((n.max_terms_per_key, n.new_keys), (10_000, NewKeys::Alert));
    }

    #[test]
    fn every_error_with_its_position() {
        let cases: &[(&str, &[&str])] = &[
            (
                "condition: '{ }'\nlearning: 1d\n",
                &["r.yaml:1:1: missing required key `fields`"],
            ),
            (
                "condition: '{ }'\nfields: []\nlearning: 1d\n",
                &["r.yaml:6:9: invalid `fields`: list 1 to 4 fields"],
            ),
            (
                "condition: '{ }'\nfields: [span.a, span.b, span.c, span.d, span.e]\nlearning: 1d\n",
                &["r.yaml:6:9: invalid `fields`: list 1 to 4 fields"],
            ),
            (
                "condition: '{ }'\nfields: [span.a, .a, span.a]\nlearning: 1d\n",
                &["r.yaml:6:22: invalid `fields`: `span.a` is listed twice"],
            ),
            (
                "condition: '{ }'\nfields: span.a\nlearning: 1d\n",
                &["r.yaml:6:9: `fields` must be a list of fields, e.g. [span.user_agent.original]"],
            ),
            (
                "condition: '{ }'\nfields: [event.name]\nlearning: 1d\n",
                &[
                    "r.yaml:6:10: invalid field `event.name`: event and link fields have one value per event or link; use a span, resource or instrumentation field",
                ],
            ),
            (
                "condition: '{ }'\ngroup_by: [span.user]\nfields: [span.user]\nlearning: 1d\n",
                &["r.yaml:7:9: invalid `fields`: `span.user` is also in group_by"],
            ),
            (
                "condition: '{ }'\nfields: [span.a]\nlearning: 30\n",
                &["r.yaml:7:11: invalid duration `30`: missing unit (ms, s, m, h, d), e.g. 5m"],
            ),
            (
                "condition: '{ }'\nfields: [span.a]\nlearning: 8d\n",
                &["r.yaml:7:11: invalid duration `8d`: longer than the 7d maximum"],
            ),
            (
                "condition: '{ }'\nfields: [span.a]\nlearning: 1d\nmax_terms_per_key: 20000\n",
                &["r.yaml:8:20: invalid `max_terms_per_key`: must be between 1 and 10000"],
            ),
            (
                "condition: '{ }'\nfields: [span.a]\nlearning: 1d\nnew_keys: ignore\n",
                &["r.yaml:8:11: invalid `new_keys`: expected `learn` or `alert`"],
            ),
            (
                "condition: '{ } >> { }'\nfields: [span.a]\nlearning: 1d\n",
                &[
                    "r.yaml:5:12: invalid `condition`: the condition of a threshold, sequence, new_terms or baseline rule must be one spanset filter `{ ... }` decided span by span (no structural operators, trace-level intrinsics or pipeline stages)",
                ],
            ),
            (
                "condition: '{ }'\nfields: [span.a]\nlearning: 1d\nwindow: 5m\ninterval: 10s\n",
                &[
                    "r.yaml:8:1: key `window` is not valid for kind `new_terms`",
                    "r.yaml:9:1: key `interval` is not valid for kind `new_terms`",
                ],
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(&errs(body), expected, "{body}");
        }
    }
}
