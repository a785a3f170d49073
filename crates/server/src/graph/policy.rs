//! Edges marked against the topology policy: the site's declared
//! `$allowed_edges` (and edges declared in topology rules) and the edges
//! topology rules learned.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tracewarden_detect::engine::TopologyPolicy;

/// Where an edge stands against the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgePolicy {
    /// Declared, or learned by a topology rule.
    Allowed,
    /// Edges are declared and this one is neither declared nor learned.
    Violating,
    /// Nothing is declared, a topology rule learns, and it has not learned
    /// this edge (first seen after learning, or not yet evaluated).
    New,
    /// No policy: nothing declared, nothing learned, no rule learning.
    Unknown,
}

/// The allowed edges, as one lookup.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    declared: BTreeSet<(String, String)>,
    learned: BTreeSet<(String, String)>,
    learns: bool,
}

impl Policy {
    /// From the site's `allowed_edges` and the topology rules' state.
    pub fn new(site_edges: Vec<(String, String)>, rules: &TopologyPolicy) -> Policy {
        let mut declared: BTreeSet<(String, String)> = site_edges.into_iter().collect();
        declared.extend(rules.declared.iter().cloned());
        Policy {
            declared,
            learned: rules.learned.clone(),
            learns: rules.learns,
        }
    }

    pub fn mark(&self, caller: &str, callee: &str) -> EdgePolicy {
        let pair = (caller.to_string(), callee.to_string());
        if self.declared.contains(&pair) || self.learned.contains(&pair) {
            EdgePolicy::Allowed
        } else if !self.declared.is_empty() {
            EdgePolicy::Violating
        } else if self.learns || !self.learned.is_empty() {
            EdgePolicy::New
        } else {
            EdgePolicy::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn marks() {
        use EdgePolicy::*;
        let site = vec![("gw".to_string(), "weather".to_string())];
        let learning = TopologyPolicy {
            checks_callers: true,
            learns: true,
            declared: pairs(&[("weather", "location")]),
            learned: pairs(&[("gw", "billing")]),
        };
        let none = TopologyPolicy::default();
        // (case, site edges, rules' policy, caller, callee, mark)
        type Case<'a> = (
            &'a str,
            Vec<(String, String)>,
            &'a TopologyPolicy,
            &'a str,
            &'a str,
            EdgePolicy,
        );
        let cases: [Case<'_>; 8] = [
            ("site edge", site.clone(), &none, "gw", "weather", Allowed),
            (
                "undeclared",
                site.clone(),
                &none,
                "gw",
                "location",
                Violating,
            ),
            ("reversed", site.clone(), &none, "weather", "gw", Violating),
            (
                "rule edge",
                site.clone(),
                &learning,
                "weather",
                "location",
                Allowed,
            ),
            ("learned", site.clone(), &learning, "gw", "billing", Allowed),
            (
                "declared beats new",
                Vec::new(),
                &learning,
                "gw",
                "x",
                Violating,
            ),
            (
                "learning only",
                Vec::new(),
                &TopologyPolicy {
                    learns: true,
                    checks_callers: true,
                    ..TopologyPolicy::default()
                },
                "gw",
                "x",
                New,
            ),
            ("no policy", Vec::new(), &none, "gw", "weather", Unknown),
        ];
        for (name, site, rules, caller, callee, want) in cases {
            let policy = Policy::new(site, rules);
            assert_eq!(policy.mark(caller, callee), want, "{name}");
        }
    }
}
