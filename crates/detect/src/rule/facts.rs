//! Rule keys whose value is a site fact or an inline list: the topology and
//! data-flow kinds take their policy from `[detection.site]` by default and
//! let a rule name the fact (`allowed_edges: $allowed_edges`) or write its
//! own list.
//!
//! A fact the site leaves empty makes the rule inactive (as `$facts` in
//! conditions do), unless the rule learns what the fact would say.

use regex::Regex;
use saphyr::MarkedYaml;
use saphyr::YamlData;

use super::{Checker, RuleErrorKind, site, string_of};

/// The written value of a fact key.
pub(super) enum FactValue<'a> {
    /// `$name`.
    Fact(&'a str),
    /// A YAML list of strings, each with its node.
    List(Vec<(&'a str, &'a MarkedYaml<'a>)>),
}

/// Most entries in an inline list.
pub(super) const MAX_LIST: usize = 1_000;

impl Checker<'_> {
    /// Reads `$name` (which must name a fact, one of `allowed` when given)
    /// or a list of strings.
    pub(super) fn fact_value<'a>(
        &mut self,
        key: &'static str,
        node: &'a MarkedYaml<'a>,
        allowed: Option<&[&str]>,
    ) -> Option<FactValue<'a>> {
        if let Some(text) = string_of(node) {
            let Some(name) = text.strip_prefix('$') else {
                self.error(
                    node,
                    RuleErrorKind::WrongType {
                        key: key.to_string(),
                        expected: "a site fact such as $third_parties, or a list",
                    },
                );
                return None;
            };
            if let Err(e) = self.site.regex(name) {
                self.error(node, RuleErrorKind::SiteFact(e));
                return None;
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&name)
            {
                self.error(
                    node,
                    RuleErrorKind::Invalid {
                        key: key.to_string(),
                        reason: format!(
                            "takes {}",
                            allowed
                                .iter()
                                .map(|a| format!("${a}"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    },
                );
                return None;
            }
            return Some(FactValue::Fact(name));
        }
        let YamlData::Sequence(items) = &node.data else {
            self.error(
                node,
                RuleErrorKind::WrongType {
                    key: key.to_string(),
                    expected: "a site fact such as $third_parties, or a list",
                },
            );
            return None;
        };
        if items.len() > MAX_LIST {
            self.error(
                node,
                RuleErrorKind::Invalid {
                    key: key.to_string(),
                    reason: format!("at most {MAX_LIST} entries"),
                },
            );
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match string_of(item) {
                Some(s) if !s.trim().is_empty() => out.push((s.trim(), item)),
                _ => self.error(
                    item,
                    RuleErrorKind::WrongType {
                        key: key.to_string(),
                        expected: "a non-empty string",
                    },
                ),
            }
        }
        (out.len() == items.len()).then_some(FactValue::List(out))
    }

    /// Records that the rule relies on a fact the site leaves empty.
    pub(super) fn empty_fact(&mut self, name: &str) {
        if !self.empty_facts.iter().any(|f| f == name) {
            self.empty_facts.push(name.to_string());
        }
    }

    /// A regex key (`third_parties`, `allowed`): `$fact` expanded as
    /// conditions expand it, or a list of regexes; compiled anchored (the
    /// whole value must match). `Err(name)`: the fact is empty. With
    /// `fact`, that fact is read and `node` is only for positions.
    pub(super) fn fact_regex<'a>(
        &mut self,
        key: &'static str,
        node: &'a MarkedYaml<'a>,
        fact: Option<&'a str>,
    ) -> Option<Result<Regex, String>> {
        let value = match fact {
            Some(name) => FactValue::Fact(name),
            None => self.fact_value(key, node, None)?,
        };
        let pattern = match value {
            FactValue::Fact(name) => match self.site.regex(name) {
                Ok(Some(pattern)) => pattern,
                Ok(None) => return Some(Err(name.to_string())),
                Err(e) => {
                    self.error(node, RuleErrorKind::SiteFact(e));
                    return None;
                }
            },
            FactValue::List(items) => {
                if items.is_empty() {
                    self.error(
                        node,
                        RuleErrorKind::Invalid {
                            key: key.to_string(),
                            reason: "an empty list matches nothing".to_string(),
                        },
                    );
                    return None;
                }
                let before = self.errors.len();
                for (pattern, item) in &items {
                    if let Err(e) = Regex::new(pattern) {
                        self.error(
                            item,
                            RuleErrorKind::Invalid {
                                key: key.to_string(),
                                reason: format!("`{pattern}` is not a regex: {e}"),
                            },
                        );
                    }
                }
                if self.errors.len() != before {
                    return None;
                }
                let joined: Vec<String> = items.iter().map(|(p, _)| format!("(?:{p})")).collect();
                format!("(?:{})", joined.join("|"))
            }
        };
        match Regex::new(&format!("^(?s:{pattern})$")) {
            Ok(re) => Some(Ok(re)),
            Err(e) => {
                self.error(
                    node,
                    RuleErrorKind::Invalid {
                        key: key.to_string(),
                        reason: format!("not a regex: {e}"),
                    },
                );
                None
            }
        }
    }
}

/// `caller -> callee` pairs of an inline list, or the site's.
pub(super) fn edge_list(
    checker: &mut Checker<'_>,
    key: &'static str,
    value: FactValue<'_>,
) -> Option<Vec<(String, String)>> {
    match value {
        FactValue::Fact(_) => Some(checker.site.edges()),
        FactValue::List(items) => {
            let before = checker.errors.len();
            let mut edges = Vec::with_capacity(items.len());
            for (text, item) in items {
                match site::parse_edge(text) {
                    Some((a, b)) => edges.push((a.to_string(), b.to_string())),
                    None => checker.error(
                        item,
                        RuleErrorKind::Invalid {
                            key: key.to_string(),
                            reason: format!("`{text}` is not written `caller -> callee`"),
                        },
                    ),
                }
            }
            (checker.errors.len() == before).then_some(edges)
        }
    }
}
