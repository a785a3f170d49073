//! Payloads: what each receiver sends, built from a notification. Pure
//! functions, so their shapes are tested against golden files.
//!
//! Annotations sent are the alert's (`title`, `description`, `response`,
//! `tags`, `evidence`) plus its evidence as text: `count`, `first_seen`,
//! `last_seen` (RFC 3339) and `trace_ids` (comma-separated, most recent
//! first).

pub mod alertmanager;
pub mod slack;
pub mod syslog;
pub mod webhook;

use std::collections::BTreeMap;

use crate::alert::Alert;
use crate::labels;
use crate::time::format_rfc3339;

/// The link of an alert: its most recent trace in tracewarden's API, or
/// the external URL alone; empty without an external URL.
pub fn generator_url(external_url: &str, alert: &Alert) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    let base = external_url.trim_end_matches('/');
    match alert.evidence.trace_ids.first() {
        Some(id) => format!("{base}/api/v1/traces/{id}"),
        None => base.to_string(),
    }
}

/// The alert's annotations plus its evidence as text.
pub fn annotations(alert: &Alert) -> BTreeMap<String, String> {
    let mut out = alert.annotations.clone();
    let evidence = &alert.evidence;
    out.insert("count".to_string(), evidence.count.to_string());
    out.insert(
        "first_seen".to_string(),
        format_rfc3339(evidence.first_seen_unix_nano),
    );
    out.insert(
        "last_seen".to_string(),
        format_rfc3339(evidence.last_seen_unix_nano),
    );
    if !evidence.trace_ids.is_empty() {
        out.insert("trace_ids".to_string(), evidence.trace_ids.join(","));
    }
    out
}

/// The labels naming the actor: all but `alertname`, `severity` and
/// `rule_kind`, as `name=value` joined by `, `; empty for rules without a
/// key.
pub fn actor(alert: &Alert) -> String {
    alert
        .labels
        .iter()
        .filter(|(name, _)| {
            ![labels::ALERTNAME, labels::SEVERITY, labels::RULE_KIND].contains(name)
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Entries every map has with the same value.
fn common<'a>(
    maps: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut maps = maps.into_iter();
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for map in maps {
        out.retain(|k, v| map.get(k) == Some(v));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::{AlertState, Evidence};
    use crate::labels::LabelSet;
    use crate::notification::{Notification, NotifyReason};

    pub(crate) const SEC: u64 = 1_000_000_000;
    pub(crate) const T0: u64 = 1_767_225_600 * SEC;

    pub(crate) fn alert(address: &str, state: AlertState) -> Alert {
        let labels: LabelSet = [
            ("alertname", "brute-force-login"),
            ("severity", "high"),
            ("rule_kind", "threshold"),
            ("client_address", address),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let annotations = [
            ("title", "Brute-force login from one address"),
            ("description", "Many failed logins from one client address."),
            ("response", "Block or rate-limit the address at the edge."),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations,
            state,
            starts_at_unix_nano: T0,
            ends_at_unix_nano: (state == AlertState::Resolved).then_some(T0 + 600 * SEC),
            updated_at_unix_nano: T0 + 300 * SEC,
            evidence: Evidence {
                detections: 2,
                count: 20,
                first_seen_unix_nano: T0 - 60 * SEC,
                last_seen_unix_nano: T0 + 290 * SEC,
                trace_ids: vec![
                    "4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
                    "00f067aa0ba902b700f067aa0ba902b7".to_string(),
                ],
            },
            acknowledged: None,
        }
    }

    /// Two alerts of one group, one firing, one resolved.
    pub(crate) fn notification() -> Notification {
        let group_labels: LabelSet = [("alertname".to_string(), "brute-force-login".to_string())]
            .into_iter()
            .collect();
        Notification {
            receiver: Arc::from("soc"),
            group_key: format!("{{}}:{group_labels}"),
            group_labels,
            status: AlertState::Firing,
            alerts: vec![
                alert("198.51.100.7", AlertState::Resolved),
                alert("203.0.113.9", AlertState::Firing),
            ],
            reason: NotifyReason::NewAlertsInGroup,
            at_unix_nano: T0 + 630 * SEC,
        }
    }

    /// Compares with a golden file under tests/golden; with
    /// `TW_UPDATE_GOLDEN=1` writes it instead.
    #[track_caller]
    pub(crate) fn assert_golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("TW_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (TW_UPDATE_GOLDEN=1 writes it)", path.display()));
        assert_eq!(actual, expected, "{name} differs from its golden file");
    }

    #[test]
    fn links_and_actor() {
        let a = alert("203.0.113.9", AlertState::Firing);
        assert_eq!(generator_url("", &a), "");
        assert_eq!(
            generator_url("https://tw.example.com/", &a),
            "https://tw.example.com/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(actor(&a), "client_address=203.0.113.9");
    }

    #[test]
    fn common_entries() {
        let n = notification();
        let labels = common(n.alerts.iter().map(|a| a.labels.as_map()));
        assert_eq!(labels.len(), 3);
        assert!(!labels.contains_key("client_address"));
        assert!(common(std::iter::empty()).is_empty());
    }
}
