//! Inhibition: a firing alert mutes others that it makes redundant.
//!
//! As in Alertmanager: a rule mutes an alert matching `target_matchers`
//! while some firing alert matches `source_matchers` and has the same
//! values for every `equal` label (absent on both sides counts as equal).
//! An alert that matches both sides is not muted by alerts that also match
//! both sides, so a rule cannot make a group of alerts mute each other.

use std::collections::HashMap;

use crate::alert::Alert;
use crate::config::{InhibitRuleConfig, check_label_names, parse_matchers};
use crate::error::ConfigError;
use crate::labels::LabelSet;
use crate::matcher::{Matcher, matches_all};

#[derive(Clone, Debug)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    pub fn compile(cfg: &InhibitRuleConfig, path: &str) -> Result<InhibitRule, ConfigError> {
        let source_matchers =
            parse_matchers(&cfg.source_matchers, &format!("{path}.source_matchers"))?;
        let target_matchers =
            parse_matchers(&cfg.target_matchers, &format!("{path}.target_matchers"))?;
        check_label_names(&cfg.equal, &format!("{path}.equal"))?;
        Ok(InhibitRule {
            source_matchers,
            target_matchers,
            equal: cfg.equal.clone(),
        })
    }

    fn equal_values(&self, labels: &LabelSet) -> Vec<String> {
        self.equal
            .iter()
            .map(|n| labels.get(n).to_string())
            .collect()
    }
}

/// The firing sources of every rule at one instant, indexed by their
/// `equal` values, to answer "is this alert inhibited?" in one lookup per
/// rule.
#[derive(Debug)]
pub struct Inhibitions<'a> {
    rules: &'a [InhibitRule],
    /// Per rule: equal values -> whether some source there does not also
    /// match the target side.
    sources: Vec<HashMap<Vec<String>, bool>>,
}

impl<'a> Inhibitions<'a> {
    /// Indexes the firing alerts that match a rule's source side.
    pub fn new<'b>(
        rules: &'a [InhibitRule],
        alerts: impl Iterator<Item = &'b Alert> + Clone,
    ) -> Self {
        let sources = rules
            .iter()
            .map(|rule| {
                let mut by_values: HashMap<Vec<String>, bool> = HashMap::new();
                for alert in alerts.clone() {
                    if !alert.is_firing() || !matches_all(&rule.source_matchers, &alert.labels) {
                        continue;
                    }
                    let one_sided = !matches_all(&rule.target_matchers, &alert.labels);
                    let entry = by_values
                        .entry(rule.equal_values(&alert.labels))
                        .or_insert(false);
                    *entry |= one_sided;
                }
                by_values
            })
            .collect();
        Inhibitions { rules, sources }
    }

    /// Whether an alert with these labels is inhibited.
    pub fn inhibits(&self, labels: &LabelSet) -> bool {
        self.rules.iter().zip(&self.sources).any(|(rule, sources)| {
            if sources.is_empty() || !matches_all(&rule.target_matchers, labels) {
                return false;
            }
            let two_sided = matches_all(&rule.source_matchers, labels);
            match sources.get(&rule.equal_values(labels)) {
                None => false,
                Some(one_sided_source) => !two_sided || *one_sided_source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertState, Evidence};
    use crate::config::default_inhibit_rules;

    fn alert(pairs: &[(&str, &str)], state: AlertState) -> Alert {
        let labels: LabelSet = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations: Default::default(),
            state,
            starts_at_unix_nano: 0,
            ends_at_unix_nano: None,
            updated_at_unix_nano: 0,
            evidence: Evidence {
                detections: 1,
                count: 1,
                first_seen_unix_nano: 0,
                last_seen_unix_nano: 0,
                trace_ids: vec![],
            },
            acknowledged: None,
        }
    }

    fn rules(cfgs: &[InhibitRuleConfig]) -> Vec<InhibitRule> {
        cfgs.iter()
            .map(|c| InhibitRule::compile(c, "r").unwrap())
            .collect()
    }

    #[test]
    fn success_after_brute_force_inhibits_the_brute_force_alert() {
        let rules = rules(&default_inhibit_rules());
        let success = alert(
            &[
                ("alertname", "brute-force-then-success"),
                ("client_address", "203.0.113.9"),
            ],
            AlertState::Firing,
        );
        let same = [
            ("alertname", "brute-force-login"),
            ("client_address", "203.0.113.9"),
        ];
        let other = [
            ("alertname", "brute-force-login"),
            ("client_address", "198.51.100.7"),
        ];
        let unrelated = [
            ("alertname", "sql-injection"),
            ("client_address", "203.0.113.9"),
        ];

        let all = [success.clone()];
        let index = Inhibitions::new(&rules, all.iter());
        assert!(index.inhibits(&alert(&same, AlertState::Firing).labels));
        assert!(
            !index.inhibits(&alert(&other, AlertState::Firing).labels),
            "other address"
        );
        assert!(!index.inhibits(&alert(&unrelated, AlertState::Firing).labels));
        assert!(!index.inhibits(&success.labels), "the source itself");

        // A resolved source inhibits nothing.
        let resolved = [alert(
            &[
                ("alertname", "brute-force-then-success"),
                ("client_address", "203.0.113.9"),
            ],
            AlertState::Resolved,
        )];
        let index = Inhibitions::new(&rules, resolved.iter());
        assert!(!index.inhibits(&alert(&same, AlertState::Firing).labels));
    }

    #[test]
    fn absent_equal_labels_are_equal() {
        let rules = rules(&[InhibitRuleConfig {
            source_matchers: vec!["severity=\"critical\"".into()],
            target_matchers: vec!["severity=\"low\"".into()],
            equal: vec!["service_name".into()],
        }]);
        let sources = [alert(&[("severity", "critical")], AlertState::Firing)];
        let index = Inhibitions::new(&rules, sources.iter());
        assert!(index.inhibits(&alert(&[("severity", "low")], AlertState::Firing).labels));
        assert!(
            !index.inhibits(
                &alert(
                    &[("severity", "low"), ("service_name", "api")],
                    AlertState::Firing
                )
                .labels
            )
        );
    }

    #[test]
    fn two_sided_alerts_do_not_inhibit_each_other() {
        let rules = rules(&[InhibitRuleConfig {
            source_matchers: vec!["team=\"soc\"".into()],
            target_matchers: vec!["team=\"soc\"".into()],
            equal: vec!["client_address".into()],
        }]);
        let a = alert(
            &[("team", "soc"), ("client_address", "x"), ("n", "1")],
            AlertState::Firing,
        );
        let b = alert(
            &[("team", "soc"), ("client_address", "x"), ("n", "2")],
            AlertState::Firing,
        );
        let all = [a.clone(), b.clone()];
        let index = Inhibitions::new(&rules, all.iter());
        assert!(!index.inhibits(&a.labels));
        assert!(!index.inhibits(&b.labels));
    }
}
