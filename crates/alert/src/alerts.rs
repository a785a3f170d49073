//! The alert lifecycle: detections become alerts, alerts with the same
//! labels merge, quiet alerts resolve.
//!
//! Time is the caller's `now` (unix nanoseconds), never a clock read here,
//! so the same calls give the same alerts. An alert fires from its first
//! detection; each detection with the same labels updates it (evidence,
//! `updated_at`); once no detection has come for the rule's resolve timeout
//! it resolves, with `ends_at = updated_at + timeout` (the moment it went
//! quiet for long enough, whatever the tick rate). A detection for a
//! resolved alert opens it again as a new incident: new `starts_at`, fresh
//! evidence, no acknowledgement. Resolved alerts are kept for
//! `resolved_retention`, then forgotten.

use std::collections::HashMap;
use std::time::Duration;

use tracewarden_detect::engine::Detection;
use tracewarden_detect::rule::Rule;

use crate::alert::{self, Acknowledgement, Alert, AlertState, Evidence};
use crate::error::{AlertError, Result};
use crate::labels::{self, Fingerprint, LabelSet};
use crate::time;

/// Limits and timings of the alert set.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    /// Quiet time after which a firing alert resolves.
    pub resolve_timeout: Duration,
    /// Per-rule resolve timeouts (rule id -> timeout).
    pub rule_resolve_timeout: HashMap<String, Duration>,
    /// Trace ids kept per alert.
    pub max_trace_ids: usize,
    /// Alerts held; past it the oldest resolved alert is forgotten, and when
    /// every alert fires, new ones are dropped (counted).
    pub max_alerts: usize,
    /// How long a resolved alert is kept.
    pub resolved_retention: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            resolve_timeout: Duration::from_secs(300),
            rule_resolve_timeout: HashMap::new(),
            max_trace_ids: 20,
            max_alerts: 10_000,
            resolved_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a detection did to the alert set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A new alert.
    New(Fingerprint),
    /// A firing alert got more evidence.
    Updated(Fingerprint),
    /// A resolved alert fires again.
    Reopened(Fingerprint),
    /// The set is full of firing alerts.
    Dropped,
}

/// Texts of a rule that annotate its alerts.
#[derive(Clone, Debug, Default)]
struct RuleText {
    description: String,
    response: String,
    tags: String,
}

fn rule_texts(rules: &[Rule]) -> HashMap<String, RuleText> {
    rules
        .iter()
        .map(|r| {
            let text = RuleText {
                description: r.description.clone(),
                response: r.response.clone(),
                tags: r.tags.join(","),
            };
            (r.id.clone(), text)
        })
        .collect()
}

/// Every alert, by fingerprint.
#[derive(Debug, Default)]
pub struct AlertSet {
    alerts: HashMap<Fingerprint, Alert>,
    rules: HashMap<String, RuleText>,
    lifecycle: Lifecycle,
    dropped: u64,
}

impl AlertSet {
    /// An empty set; `rules` give the alerts' description and response.
    pub fn new(lifecycle: Lifecycle, rules: &[Rule]) -> AlertSet {
        AlertSet {
            alerts: HashMap::new(),
            rules: rule_texts(rules),
            lifecycle,
            dropped: 0,
        }
    }

    /// Replaces the rules whose texts annotate new alerts (after a rule
    /// reload); alerts already held keep theirs.
    pub fn set_rules(&mut self, rules: &[Rule]) {
        self.rules = rule_texts(rules);
    }

    /// Sets the resolve timeout of one rule's alerts.
    pub fn set_resolve_timeout(&mut self, rule_id: &str, timeout: Duration) {
        self.lifecycle
            .rule_resolve_timeout
            .insert(rule_id.to_string(), timeout);
    }

    pub fn resolve_timeout(&self, rule_id: &str) -> Duration {
        self.lifecycle
            .rule_resolve_timeout
            .get(rule_id)
            .copied()
            .unwrap_or(self.lifecycle.resolve_timeout)
    }

    /// The labels of a detection's alert.
    pub fn labels_of(detection: &Detection) -> LabelSet {
        let mut labels = LabelSet::new();
        labels.insert(labels::ALERTNAME, detection.rule_id.as_ref());
        labels.insert(labels::SEVERITY, detection.severity.as_str());
        labels.insert(labels::RULE_KIND, detection.kind);
        let names = labels::key_label_names(detection.key.iter().map(|(f, _)| f.as_str()));
        for (name, (_, value)) in names.into_iter().zip(&detection.key) {
            labels.insert(name, value.as_str());
        }
        labels
    }

    /// Merges a detection seen at `now` into its alert.
    pub fn observe(&mut self, detection: &Detection, now: u64) -> Observed {
        let labels = Self::labels_of(detection);
        let fingerprint = labels.fingerprint();
        let max_trace_ids = self.lifecycle.max_trace_ids;
        if let Some(alert) = self.alerts.get_mut(&fingerprint) {
            if alert.is_firing() {
                merge(alert, detection, now, max_trace_ids);
                return Observed::Updated(fingerprint);
            }
            let fresh = self.new_alert(labels, fingerprint, detection, now);
            self.alerts.insert(fingerprint, fresh);
            return Observed::Reopened(fingerprint);
        }
        if self.alerts.len() >= self.lifecycle.max_alerts && !self.evict_oldest_resolved() {
            self.dropped += 1;
            return Observed::Dropped;
        }
        let alert = self.new_alert(labels, fingerprint, detection, now);
        self.alerts.insert(fingerprint, alert);
        Observed::New(fingerprint)
    }

    fn new_alert(
        &self,
        labels: LabelSet,
        fingerprint: Fingerprint,
        detection: &Detection,
        now: u64,
    ) -> Alert {
        let text = self
            .rules
            .get(detection.rule_id.as_ref())
            .cloned()
            .unwrap_or_default();
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(alert::TITLE.to_string(), detection.title.to_string());
        if !text.description.is_empty() {
            annotations.insert(alert::DESCRIPTION.to_string(), text.description);
        }
        if !text.response.is_empty() {
            annotations.insert(alert::RESPONSE.to_string(), text.response);
        }
        if !text.tags.is_empty() {
            annotations.insert(alert::TAGS.to_string(), text.tags);
        }
        let mut alert = Alert {
            fingerprint,
            labels,
            annotations,
            state: AlertState::Firing,
            starts_at_unix_nano: now,
            ends_at_unix_nano: None,
            updated_at_unix_nano: now,
            evidence: Evidence {
                detections: 0,
                count: 0,
                first_seen_unix_nano: detection.first_seen_unix_nano,
                last_seen_unix_nano: detection.last_seen_unix_nano,
                trace_ids: Vec::new(),
            },
            acknowledged: None,
        };
        merge(&mut alert, detection, now, self.lifecycle.max_trace_ids);
        alert
    }

    fn evict_oldest_resolved(&mut self) -> bool {
        let oldest = self
            .alerts
            .values()
            .filter(|a| !a.is_firing())
            .min_by_key(|a| (a.ends_at_unix_nano, a.fingerprint))
            .map(|a| a.fingerprint);
        match oldest {
            Some(fp) => self.alerts.remove(&fp).is_some(),
            None => false,
        }
    }

    /// Resolves the firing alerts quiet for their resolve timeout at `now`;
    /// returns their fingerprints.
    pub fn resolve_quiet(&mut self, now: u64) -> Vec<Fingerprint> {
        let mut resolved = Vec::new();
        for alert in self.alerts.values_mut() {
            if !alert.is_firing() {
                continue;
            }
            let timeout = self
                .lifecycle
                .rule_resolve_timeout
                .get(alert.labels.get(labels::ALERTNAME))
                .copied()
                .unwrap_or(self.lifecycle.resolve_timeout);
            let quiet_until = time::add(alert.updated_at_unix_nano, timeout);
            if now >= quiet_until {
                alert.state = AlertState::Resolved;
                alert.ends_at_unix_nano = Some(quiet_until);
                resolved.push(alert.fingerprint);
            }
        }
        resolved.sort_unstable();
        resolved
    }

    /// Forgets alerts resolved longer than the retention ago; returns them.
    pub fn forget_resolved(&mut self, now: u64) -> Vec<Fingerprint> {
        let retention = self.lifecycle.resolved_retention;
        let mut gone = Vec::new();
        self.alerts.retain(|fp, alert| {
            let keep = match alert.ends_at_unix_nano {
                Some(ends) if !alert.is_firing() => now < time::add(ends, retention),
                _ => true,
            };
            if !keep {
                gone.push(*fp);
            }
            keep
        });
        gone
    }

    /// Records who acknowledged an alert, and why.
    pub fn acknowledge(
        &mut self,
        fingerprint: Fingerprint,
        by: &str,
        comment: &str,
        now: u64,
    ) -> Result<()> {
        if by.trim().is_empty() {
            return Err(AlertError::Invalid {
                field: "by",
                message: "who acknowledges must be named".to_string(),
            });
        }
        for (field, text) in [("by", by), ("comment", comment)] {
            if text.len() > crate::silence::MAX_TEXT_BYTES {
                return Err(AlertError::Invalid {
                    field,
                    message: format!("longer than {} bytes", crate::silence::MAX_TEXT_BYTES),
                });
            }
        }
        let alert = self
            .alerts
            .get_mut(&fingerprint)
            .ok_or(AlertError::UnknownAlert(fingerprint))?;
        alert.acknowledged = Some(Acknowledgement {
            by: by.to_string(),
            at_unix_nano: now,
            comment: comment.to_string(),
        });
        Ok(())
    }

    pub fn get(&self, fingerprint: Fingerprint) -> Option<&Alert> {
        self.alerts.get(&fingerprint)
    }

    /// Every alert, in no particular order.
    pub fn iter(&self) -> std::collections::hash_map::Values<'_, Fingerprint, Alert> {
        self.alerts.values()
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// New alerts dropped because the set was full of firing alerts.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Puts back alerts from a saved state (the fingerprint is recomputed
    /// from the labels, so a hand-edited file cannot split an alert).
    pub fn restore(&mut self, alerts: Vec<Alert>) {
        for mut alert in alerts {
            alert.fingerprint = alert.labels.fingerprint();
            self.alerts.insert(alert.fingerprint, alert);
        }
    }
}

fn merge(alert: &mut Alert, detection: &Detection, now: u64, max_trace_ids: usize) {
    let evidence = &mut alert.evidence;
    evidence.detections += 1;
    evidence.count = evidence.count.saturating_add(detection.count);
    evidence.first_seen_unix_nano = evidence
        .first_seen_unix_nano
        .min(detection.first_seen_unix_nano);
    evidence.last_seen_unix_nano = evidence
        .last_seen_unix_nano
        .max(detection.last_seen_unix_nano);
    // The detection's ids are the most recent: they go first.
    let mut ids: Vec<String> = Vec::with_capacity(max_trace_ids);
    let fresh = detection.trace_ids.iter().map(|t| t.to_hex());
    for id in fresh.chain(evidence.trace_ids.drain(..)) {
        if ids.len() == max_trace_ids {
            break;
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    evidence.trace_ids = ids;
    if let Some(found) = &detection.evidence {
        alert
            .annotations
            .insert(alert::EVIDENCE.to_string(), found.clone());
    }
    alert.updated_at_unix_nano = alert.updated_at_unix_nano.max(now);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use tracewarden_detect::rule::Severity;
    use tracewarden_model::TraceId;

    use super::*;

    pub(crate) const SEC: u64 = 1_000_000_000;
    pub(crate) const T0: u64 = 1_767_225_600 * SEC;

    pub(crate) fn detection(rule: &str, address: &str, trace: u8) -> Detection {
        Detection {
            rule_id: Arc::from(rule),
            title: Arc::from("Brute-force login from one address"),
            severity: Severity::High,
            kind: "threshold",
            key: vec![("span.client.address".to_string(), address.to_string())],
            count: 10,
            first_seen_unix_nano: T0,
            last_seen_unix_nano: T0 + 5 * SEC,
            trace_ids: vec![TraceId::from_bytes([trace; 16])],
            evidence: None,
        }
    }

    fn set() -> AlertSet {
        AlertSet::new(
            Lifecycle {
                max_trace_ids: 3,
                ..Lifecycle::default()
            },
            &[],
        )
    }

    #[test]
    fn labels_of_a_detection() {
        let labels = AlertSet::labels_of(&detection("brute-force-login", "203.0.113.9", 1));
        assert_eq!(
            labels.to_string(),
            r#"{alertname="brute-force-login", client_address="203.0.113.9", rule_kind="threshold", severity="high"}"#
        );
    }

    #[test]
    fn same_labels_update_one_alert() {
        let mut alerts = set();
        let a = detection("brute-force-login", "203.0.113.9", 1);
        let Observed::New(fp) = alerts.observe(&a, T0) else {
            panic!("first detection makes an alert");
        };
        for (i, trace) in [2u8, 3, 1, 4].into_iter().enumerate() {
            let mut d = detection("brute-force-login", "203.0.113.9", trace);
            d.last_seen_unix_nano = T0 + 60 * SEC * (i as u64 + 1);
            assert_eq!(
                alerts.observe(&d, T0 + SEC * (i as u64 + 1)),
                Observed::Updated(fp)
            );
        }
        assert_eq!(alerts.len(), 1);
        let alert = alerts.get(fp).unwrap();
        assert_eq!(alert.evidence.detections, 5);
        assert_eq!(alert.evidence.count, 50);
        assert_eq!(alert.evidence.first_seen_unix_nano, T0);
        assert_eq!(alert.evidence.last_seen_unix_nano, T0 + 240 * SEC);
        assert_eq!(alert.updated_at_unix_nano, T0 + 4 * SEC);
        assert_eq!(alert.starts_at_unix_nano, T0);
        let hex = |b: u8| TraceId::from_bytes([b; 16]).to_hex();
        assert_eq!(alert.evidence.trace_ids, vec![hex(4), hex(1), hex(3)]);

        let other = detection("brute-force-login", "198.51.100.7", 1);
        assert!(matches!(alerts.observe(&other, T0), Observed::New(f) if f != fp));
        assert_eq!(alerts.len(), 2);
    }

    #[test]
    fn quiet_alerts_resolve_and_reopen_as_new_incidents() {
        let mut alerts = set();
        let Observed::New(fp) = alerts.observe(&detection("r", "a", 1), T0) else {
            panic!()
        };
        alerts.observe(&detection("r", "a", 2), T0 + 60 * SEC);
        alerts
            .acknowledge(fp, "ana", "on it", T0 + 61 * SEC)
            .unwrap();
        // Quiet for 4m59s: still firing.
        assert!(alerts.resolve_quiet(T0 + 359 * SEC).is_empty());
        // Ticks may be late: ends_at is when the quiet period was over.
        assert_eq!(alerts.resolve_quiet(T0 + 400 * SEC), vec![fp]);
        let alert = alerts.get(fp).unwrap();
        assert_eq!(alert.state, AlertState::Resolved);
        assert_eq!(alert.ends_at_unix_nano, Some(T0 + 360 * SEC));
        assert!(alerts.resolve_quiet(T0 + 500 * SEC).is_empty(), "once");

        assert_eq!(
            alerts.observe(&detection("r", "a", 3), T0 + 600 * SEC),
            Observed::Reopened(fp)
        );
        let alert = alerts.get(fp).unwrap();
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.starts_at_unix_nano, T0 + 600 * SEC);
        assert_eq!(alert.ends_at_unix_nano, None);
        assert_eq!(alert.evidence.detections, 1);
        assert_eq!(alert.acknowledged, None);
    }

    #[test]
    fn per_rule_resolve_timeout() {
        let mut alerts = set();
        alerts.set_resolve_timeout("slow", Duration::from_secs(3600));
        alerts.observe(&detection("slow", "a", 1), T0);
        alerts.observe(&detection("fast", "a", 1), T0);
        let resolved = alerts.resolve_quiet(T0 + 600 * SEC);
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            alerts.get(resolved[0]).unwrap().labels.get("alertname"),
            "fast"
        );
        assert_eq!(alerts.resolve_quiet(T0 + 3600 * SEC).len(), 1);
    }

    #[test]
    fn bounded_and_forgetful() {
        let mut alerts = AlertSet::new(
            Lifecycle {
                max_alerts: 2,
                resolved_retention: Duration::from_secs(60),
                ..Lifecycle::default()
            },
            &[],
        );
        alerts.observe(&detection("r", "a", 1), T0);
        alerts.observe(&detection("r", "b", 1), T0 + SEC);
        assert_eq!(
            alerts.observe(&detection("r", "c", 1), T0 + SEC),
            Observed::Dropped
        );
        assert_eq!(alerts.dropped(), 1);
        // `a` resolves first; a new alert takes its place.
        alerts.resolve_quiet(T0 + 300 * SEC);
        assert!(matches!(
            alerts.observe(&detection("r", "c", 1), T0 + 302 * SEC),
            Observed::New(_)
        ));
        assert_eq!(alerts.len(), 2);
        assert!(alerts.iter().all(|a| a.labels.get("client_address") != "a"));
        // `b` resolves at T0+301s, is forgotten a minute later.
        assert_eq!(alerts.resolve_quiet(T0 + 301 * SEC).len(), 1);
        assert!(alerts.forget_resolved(T0 + 360 * SEC).is_empty());
        assert_eq!(alerts.forget_resolved(T0 + 361 * SEC).len(), 1);
        assert_eq!(alerts.len(), 1);
    }

    #[test]
    fn annotations_come_from_the_rule_and_detection() {
        let rule = tracewarden_detect::rule::builtin_rules()
            .unwrap()
            .into_iter()
            .find(|r| r.id == "brute-force-login")
            .unwrap();
        let mut alerts = AlertSet::new(Lifecycle::default(), std::slice::from_ref(&rule));
        let mut d = detection("brute-force-login", "a", 1);
        d.evidence = Some("sql_injection in url.query: union select".to_string());
        let Observed::New(fp) = alerts.observe(&d, T0) else {
            panic!()
        };
        let alert = alerts.get(fp).unwrap();
        assert_eq!(
            alert.annotation(alert::TITLE),
            "Brute-force login from one address"
        );
        assert_eq!(alert.annotation(alert::DESCRIPTION), rule.description);
        assert_eq!(alert.annotation(alert::RESPONSE), rule.response);
        assert!(!rule.tags.is_empty());
        assert_eq!(alert.annotation(alert::TAGS), rule.tags.join(","));
        assert_eq!(
            alert.annotation(alert::EVIDENCE),
            "sql_injection in url.query: union select"
        );
        assert!(alerts.acknowledge(Fingerprint(1), "x", "", T0).is_err());
        assert!(alerts.acknowledge(fp, " ", "", T0).is_err());
    }
}
