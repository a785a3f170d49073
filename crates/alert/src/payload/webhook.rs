//! Alertmanager's webhook payload, version 4, so receivers written for
//! Alertmanager work unchanged.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{annotations, common, generator_url};
use crate::alert::Alert;
use crate::notification::Notification;
use crate::time::{GO_ZERO_TIME, format_rfc3339};

/// The JSON body, fields in Alertmanager's order.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<WebhookAlert>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: &'static str,
    pub group_key: String,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    /// Go's zero time while firing, as Alertmanager sends it.
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// The payload of a notification; `max_alerts` 0 sends every alert.
pub fn webhook_message(n: &Notification, external_url: &str, max_alerts: usize) -> WebhookMessage {
    let kept = if max_alerts == 0 {
        n.alerts.len()
    } else {
        n.alerts.len().min(max_alerts)
    };
    let alerts: Vec<WebhookAlert> = n.alerts[..kept]
        .iter()
        .map(|a| webhook_alert(a, external_url))
        .collect();
    WebhookMessage {
        receiver: n.receiver.to_string(),
        status: n.status.as_str(),
        group_labels: n.group_labels.as_map().clone(),
        common_labels: common(n.alerts.iter().map(|a| a.labels.as_map())),
        common_annotations: common(alerts.iter().map(|a| &a.annotations)),
        external_url: external_url.to_string(),
        version: "4",
        group_key: n.group_key.clone(),
        truncated_alerts: n.alerts.len() - kept,
        alerts,
    }
}

fn webhook_alert(alert: &Alert, external_url: &str) -> WebhookAlert {
    WebhookAlert {
        status: alert.state.as_str(),
        labels: alert.labels.as_map().clone(),
        annotations: annotations(alert),
        starts_at: format_rfc3339(alert.starts_at_unix_nano),
        ends_at: match (alert.is_firing(), alert.ends_at_unix_nano) {
            (false, Some(ends)) => format_rfc3339(ends),
            _ => GO_ZERO_TIME.to_string(),
        },
        generator_url: generator_url(external_url, alert),
        fingerprint: alert.fingerprint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::tests::{assert_golden, notification};

    #[test]
    fn golden_v4_payload() {
        let message = webhook_message(&notification(), "https://tracewarden.example.com", 0);
        let text = serde_json::to_string_pretty(&message).unwrap() + "\n";
        assert_golden("webhook_v4.json", &text);
    }

    #[test]
    fn max_alerts_truncates_and_counts() {
        let message = webhook_message(&notification(), "", 1);
        assert_eq!(message.alerts.len(), 1);
        assert_eq!(message.truncated_alerts, 1);
        assert_eq!(message.alerts[0].generator_url, "");
        // Common labels still describe the whole group.
        assert!(!message.common_labels.contains_key("client_address"));
    }
}
