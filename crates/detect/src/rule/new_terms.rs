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
pub(super) const KEYS: [&str; 6] = [
    "condition",
    "group_by",
    "fields",
    "learning",
    "max_terms_per_key",
    "new_keys",
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
