//! The body of Alertmanager's `POST /api/v2/alerts`, as Prometheus sends
//! it: a firing alert carries an `endsAt` a few resend intervals ahead, so
//! Alertmanager resolves it by itself if tracewarden goes silent, and a
//! resolved one its real `endsAt`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{annotations, generator_url};
use crate::notification::Notification;
use crate::time::{self, format_rfc3339};

/// How many resend intervals a firing alert stays valid (Prometheus uses
/// four).
pub const VALIDITY_RESENDS: u32 = 4;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// The alerts of a notification, to POST as a JSON array.
pub fn postable_alerts(
    n: &Notification,
    external_url: &str,
    resend_interval: Duration,
) -> Vec<PostableAlert> {
    let valid_until = time::add(n.at_unix_nano, resend_interval * VALIDITY_RESENDS);
    n.alerts
        .iter()
        .map(|alert| PostableAlert {
            labels: alert.labels.as_map().clone(),
            annotations: annotations(alert),
            starts_at: format_rfc3339(alert.starts_at_unix_nano),
            ends_at: format_rfc3339(match alert.ends_at_unix_nano {
                Some(ends) if !alert.is_firing() => ends,
                _ => valid_until,
            }),
            generator_url: generator_url(external_url, alert),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::tests::{assert_golden, notification};

    #[test]
    fn golden_v2_body() {
        let body = postable_alerts(
            &notification(),
            "https://tracewarden.example.com",
            Duration::from_secs(60),
        );
        let text = serde_json::to_string_pretty(&body).unwrap() + "\n";
        assert_golden("alertmanager_v2_alerts.json", &text);
    }

    #[test]
    fn firing_alerts_stay_valid_four_resends() {
        let n = notification();
        let body = postable_alerts(&n, "", Duration::from_secs(30));
        let firing = &body[1];
        assert_eq!(
            firing.ends_at,
            format_rfc3339(n.at_unix_nano + 120_000_000_000)
        );
        assert_eq!(firing.generator_url, "");
        let json = serde_json::to_value(firing).unwrap();
        assert!(json.get("generatorURL").is_none(), "omitted when empty");
    }
}
