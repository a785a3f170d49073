//! The `block` response of a rule: when the rule fires, block the actor of
//! the detection (an address, a user, or a bearer token's fingerprint) for
//! a time. The server's blocklist applies it (`crates/server/src/blocks/`);
//! here it is only parsed and checked against the rule's key.
//!
//! ```yaml
//! group_by: [span.client.address]
//! block: { actor: span.client.address, for: 1h }
//! ```
//!
//! The actor must be one of the rule's `group_by` fields: a detection
//! carries only its key's values, so nothing else can be read from it.

use std::time::Duration;

use saphyr::MarkedYaml;

use saphyr::{Scalar, YamlData};

use super::{Checker, FieldRef, RuleErrorKind, parse_duration, string_of};

/// Longest block a rule may ask for.
pub const MAX_BLOCK: Duration = Duration::from_secs(7 * 24 * 3600);

/// The field a `token` actor reads when `field` is not given: the
/// credential fingerprint ingest stamps on spans before redaction masks
/// the `Authorization` header (`tracewarden_model::credential`).
pub const DEFAULT_TOKEN_FIELD: &str = "span.tracewarden.token.fingerprint";

/// What a block applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorKind {
    /// A client address (exact, or a CIDR range for analysts' blocks).
    Address,
    /// An authenticated user id.
    User,
    /// A bearer token, kept only as a SHA-256 fingerprint.
    Token,
}

impl ActorKind {
    pub const ALL: [ActorKind; 3] = [ActorKind::Address, ActorKind::User, ActorKind::Token];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Address => "address",
            ActorKind::User => "user",
            ActorKind::Token => "token",
        }
    }

    pub fn from_name(text: &str) -> Option<ActorKind> {
        ActorKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The kind a field's name implies: addresses and user ids by their
    /// semantic-convention names.
    fn of_field(field: &FieldRef) -> Option<ActorKind> {
        let text = field.as_str();
        let name = text
            .strip_prefix("span.")
            .or_else(|| text.strip_prefix("resource."))
            .or_else(|| text.strip_prefix('.'))
            .unwrap_or(text);
        match name {
            "client.address" | "source.address" | "network.peer.address" => {
                Some(ActorKind::Address)
            }
            "enduser.id" | "user.id" | "user.name" => Some(ActorKind::User),
            "tracewarden.token.fingerprint" | "http.request.header.authorization" => {
                Some(ActorKind::Token)
            }
            _ => None,
        }
    }
}

/// A rule's `block` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockAction {
    pub kind: ActorKind,
    /// The key field whose value is the actor (canonical TraceQL).
    pub field: FieldRef,
    /// How long the block lasts from the detection.
    pub duration: Duration,
}

const BLOCK_KEYS: [&str; 4] = ["actor", "for", "kind", "field"];

impl Checker<'_> {
    /// `for`: a duration in the window syntax, such as `1h`.
    fn block_duration(&mut self, node: &MarkedYaml<'_>) -> Option<Duration> {
        let text = match &node.data {
            YamlData::Value(Scalar::String(s)) => s.to_string(),
            YamlData::Value(Scalar::Integer(i)) => i.to_string(),
            _ => {
                self.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: "block.for".to_string(),
                        expected: "a duration such as 1h",
                    },
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.error(node, RuleErrorKind::BadDuration { text, reason });
                None
            }
        }
    }

    /// Parses `block: { actor, for, [kind], [field] }`. `group_by` is the
    /// rule's key (its YAML node), whatever the rule's kind.
    pub(super) fn block(
        &mut self,
        node: &MarkedYaml<'_>,
        group_by: Option<&MarkedYaml<'_>>,
    ) -> Option<BlockAction> {
        let entries = self.mapping(node, "block", &BLOCK_KEYS, None)?;
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, _, v)| *v)
        };
        let before = self.errors.len();
        let duration = match get("for") {
            None => {
                self.error(node, RuleErrorKind::MissingKey("block.for"));
                None
            }
            Some(n) => self.block_duration(n).and_then(|d| {
                if d < Duration::from_secs(1) || d > MAX_BLOCK {
                    self.error(
                        n,
                        RuleErrorKind::Invalid {
                            key: "block.for".to_string(),
                            reason: "a block lasts 1s to 7d".to_string(),
                        },
                    );
                    None
                } else {
                    Some(d)
                }
            }),
        };
        let explicit_kind = get("kind").and_then(|n| {
            let text = self.string("block.kind", n)?;
            let kind = ActorKind::from_name(&text);
            if kind.is_none() {
                self.error(
                    n,
                    RuleErrorKind::Invalid {
                        key: "block.kind".to_string(),
                        reason: format!("`{text}` is not one of address, user, token"),
                    },
                );
            }
            kind
        });
        let Some(actor_node) = get("actor") else {
            self.error(node, RuleErrorKind::MissingKey("block.actor"));
            return None;
        };
        let actor_text = self.string("block.actor", actor_node)?;
        // `actor: token` reads the bearer token from `field` (default: the
        // Authorization header attribute).
        let (field_node, field_text, token) = if actor_text.trim() == "token" {
            match get("field") {
                Some(n) => (n, self.string("block.field", n)?, true),
                None => (actor_node, DEFAULT_TOKEN_FIELD.to_string(), true),
            }
        } else {
            if let Some(n) = get("field") {
                self.error(
                    n,
                    RuleErrorKind::Invalid {
                        key: "block.field".to_string(),
                        reason: "only for `actor: token` (otherwise the actor is the field)"
                            .to_string(),
                    },
                );
            }
            (actor_node, actor_text, false)
        };
        let field = match FieldRef::parse(&field_text) {
            Ok(field) => field,
            Err(reason) => {
                self.error(
                    field_node,
                    RuleErrorKind::BadField {
                        field: field_text,
                        reason,
                    },
                );
                return None;
            }
        };
        let keys = group_by
            .map(|n| match &n.data {
                YamlData::Sequence(items) => items
                    .iter()
                    .filter_map(string_of)
                    .filter_map(|s| FieldRef::parse(s).ok())
                    .collect(),
                _ => Vec::new(),
            })
            .unwrap_or_default();
        if !keys.contains(&field) {
            let listed: Vec<&str> = keys.iter().map(FieldRef::as_str).collect();
            self.error(
                field_node,
                RuleErrorKind::Invalid {
                    key: "block.actor".to_string(),
                    reason: if listed.is_empty() {
                        format!(
                            "`{}` must be a `group_by` field: a detection carries only its key, and this rule has none",
                            field.as_str()
                        )
                    } else {
                        format!(
                            "`{}` is not a `group_by` field of this rule ({})",
                            field.as_str(),
                            listed.join(", ")
                        )
                    },
                },
            );
            return None;
        }
        let kind = match (token, explicit_kind, ActorKind::of_field(&field)) {
            (true, Some(k), _) if k != ActorKind::Token => {
                self.error(
                    actor_node,
                    RuleErrorKind::Invalid {
                        key: "block.kind".to_string(),
                        reason: "`actor: token` blocks a token".to_string(),
                    },
                );
                None
            }
            (true, _, _) => Some(ActorKind::Token),
            (false, Some(k), _) => Some(k),
            (false, None, Some(k)) => Some(k),
            (false, None, None) => {
                self.error(
                    actor_node,
                    RuleErrorKind::Invalid {
                        key: "block.actor".to_string(),
                        reason: format!(
                            "cannot tell whether `{}` is an address or a user: add `kind: address` or `kind: user`",
                            field.as_str()
                        ),
                    },
                );
                None
            }
        };
        if self.errors.len() != before {
            return None;
        }
        Some(BlockAction {
            kind: kind?,
            field,
            duration: duration?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rule::parse_rule;

    fn rule(extra: &str) -> String {
        format!(
            "id: brute\ntitle: t\nseverity: high\nkind: threshold\n\
             condition: '{{ span.http.response.status_code = 401 }}'\n\
             group_by: [span.client.address, span.enduser.id, span.tracewarden.token.fingerprint]\n\
             window: 5m\ncount: 3\n{extra}"
        )
    }

    fn errors(extra: &str) -> Vec<String> {
        parse_rule(&rule(extra), Path::new("r.yaml"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn actors_by_field_and_token() {
        let parsed = |extra: &str| {
            parse_rule(&rule(extra), Path::new("r.yaml"))
                .unwrap()
                .block
                .unwrap()
        };
        let b = parsed("block: { actor: span.client.address, for: 1h }\n");
        assert_eq!(b.kind, ActorKind::Address);
        assert_eq!(b.field.as_str(), "span.client.address");
        assert_eq!(b.duration, Duration::from_secs(3600));
        let b = parsed("block:\n  actor: span.enduser.id\n  for: 30m\n");
        assert_eq!(b.kind, ActorKind::User);
        let b = parsed("block: { actor: token, for: 10m }\n");
        assert_eq!(b.kind, ActorKind::Token);
        assert_eq!(b.field.as_str(), DEFAULT_TOKEN_FIELD);
        assert!(
            parse_rule(&rule(""), Path::new("r.yaml"))
                .unwrap()
                .block
                .is_none()
        );
    }

    #[test]
    fn positioned_errors() {
        assert_eq!(
            errors("block: { actor: span.http.route, for: 1h }\n"),
            vec![
                "r.yaml:9:17: invalid `block.actor`: `span.http.route` is not a `group_by` field of this rule (span.client.address, span.enduser.id, span.tracewarden.token.fingerprint)"
            ]
        );
        assert_eq!(
            errors("block: { actor: span.client.address, for: 1 }\n"),
            vec!["r.yaml:9:43: invalid duration `1`: missing unit (ms, s, m, h, d), e.g. 5m"]
        );
        assert_eq!(
            errors("block: { actor: span.client.address, for: 8d }\n"),
            vec!["r.yaml:9:43: invalid duration `8d`: longer than the 7d maximum"]
        );
        assert_eq!(
            errors("block: { actor: span.client.address }\n"),
            vec!["r.yaml:9:8: missing required key `block.for`"]
        );
        assert_eq!(
            errors("block: { actor: span.client.address, for: 1h, until: 2h }\n"),
            vec!["r.yaml:9:47: unknown key `until` (expected one of: actor, for, kind, field)"]
        );
        assert_eq!(
            errors("block: { actor: span.client.address, for: 1h, field: x }\n"),
            vec![
                "r.yaml:9:54: invalid `block.field`: only for `actor: token` (otherwise the actor is the field)"
            ]
        );
    }

    #[test]
    fn the_kind_of_an_unknown_field_must_be_said() {
        let text = "id: r\ntitle: t\nseverity: low\nkind: threshold\ncondition: '{ }'\n\
                    group_by: [span.peer]\nwindow: 1m\ncount: 1\n";
        let errs: Vec<String> = parse_rule(
            &format!("{text}block: {{ actor: span.peer, for: 1h }}\n"),
            Path::new("r.yaml"),
        )
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert!(errs[0].contains("add `kind: address`"), "{errs:?}");
        let rule = parse_rule(
            &format!("{text}block: {{ actor: span.peer, kind: address, for: 1h }}\n"),
            Path::new("r.yaml"),
        )
        .unwrap();
        assert_eq!(rule.block.unwrap().kind, ActorKind::Address);
    }

    #[test]
    fn match_rules_have_no_key_to_block() {
        let errs: Vec<String> = parse_rule(
            "id: m\ntitle: t\nseverity: low\nkind: match\ncondition: '{ }'\n\
             block: { actor: span.client.address, for: 1h }\n",
            Path::new("m.yaml"),
        )
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            errs,
            vec![
                "m.yaml:6:17: invalid `block.actor`: `span.client.address` must be a `group_by` field: a detection carries only its key, and this rule has none"
            ]
        );
    }
}
