//! A Slack incoming-webhook message: a `text` summary (shown in
//! notifications and where blocks are not), and one attachment per alert,
//! coloured by severity, with blocks for the title, severity, rule, actor,
//! evidence and a link to the trace.

use serde_json::{Value, json};

use super::{actor, generator_url};
use crate::alert::{self, Alert, AlertState};
use crate::config::SlackConfig;
use crate::labels;
use crate::notification::Notification;
use crate::time::format_rfc3339;

/// Alerts given an attachment each; the rest are counted in a last one.
pub const MAX_ATTACHMENTS: usize = 10;

pub fn slack_message(n: &Notification, external_url: &str, cfg: &SlackConfig) -> Value {
    let firing = n.firing().count();
    let resolved = n.alerts.len() - firing;
    let title = n.alerts.first().map_or("", |a| a.annotation(alert::TITLE));
    let status = match n.status {
        AlertState::Firing => format!("FIRING:{firing}"),
        AlertState::Resolved => format!("RESOLVED:{resolved}"),
    };
    let mut text = format!("[{status}] {}", escape(title));
    if n.status == AlertState::Firing && resolved > 0 {
        text.push_str(&format!(" ({resolved} resolved)"));
    }
    let mut attachments: Vec<Value> = n
        .alerts
        .iter()
        .take(MAX_ATTACHMENTS)
        .map(|a| attachment(a, external_url))
        .collect();
    if n.alerts.len() > MAX_ATTACHMENTS {
        let more = n.alerts.len() - MAX_ATTACHMENTS;
        attachments.push(json!({
            "color": "#80868b",
            "blocks": [{
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": format!("and {more} more alerts in group {}", escape(&n.group_key))}]
            }]
        }));
    }
    let mut message = json!({ "text": text, "attachments": attachments });
    if let Some(channel) = &cfg.channel {
        message["channel"] = json!(channel);
    }
    if let Some(username) = &cfg.username {
        message["username"] = json!(username);
    }
    message
}

fn attachment(a: &Alert, external_url: &str) -> Value {
    let severity = a.labels.get(labels::SEVERITY);
    let link = generator_url(external_url, a);
    let title = escape(a.annotation(alert::TITLE));
    let heading = if link.is_empty() {
        format!("*{title}*")
    } else {
        format!("*<{link}|{title}>*")
    };
    let mut summary = heading;
    let description = a.annotation(alert::DESCRIPTION);
    if !description.is_empty() {
        summary.push('\n');
        summary.push_str(&escape(description));
    }
    let actor = actor(a);
    let evidence = &a.evidence;
    let mut fields = vec![
        field("Severity", severity),
        field("Rule", &format!("`{}`", a.labels.get(labels::ALERTNAME))),
        field("Actor", if actor.is_empty() { "-" } else { &actor }),
        field(
            "Evidence",
            &format!(
                "{} matching, {} to {}",
                evidence.count,
                format_rfc3339(evidence.first_seen_unix_nano),
                format_rfc3339(evidence.last_seen_unix_nano)
            ),
        ),
    ];
    let found = a.annotation(alert::EVIDENCE);
    if !found.is_empty() {
        fields.push(field("Found", found));
    }
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": summary}}),
        json!({"type": "section", "fields": fields}),
    ];
    let response = a.annotation(alert::RESPONSE);
    if a.is_firing() && !response.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Response*\n{}", escape(response))}}));
    }
    let when = match a.ends_at_unix_nano {
        Some(ends) if !a.is_firing() => format!("resolved at {}", format_rfc3339(ends)),
        _ => format!("firing since {}", format_rfc3339(a.starts_at_unix_nano)),
    };
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("{when} · fingerprint {}", a.fingerprint)}]
    }));
    json!({ "color": color(a), "blocks": blocks })
}

fn field(name: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", escape(value))})
}

fn color(a: &Alert) -> &'static str {
    if !a.is_firing() {
        return "#2eb67d";
    }
    match a.labels.get(labels::SEVERITY) {
        "critical" => "#a50e0e",
        "high" => "#d93025",
        "medium" => "#f29900",
        "low" => "#1a73e8",
        _ => "#80868b",
    }
}

/// Slack's mrkdwn escapes: `&`, `<`, `>` (links and mentions otherwise).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::tests::{assert_golden, notification};

    fn cfg() -> SlackConfig {
        SlackConfig {
            url: "https://hooks.slack.com/services/T/B/X".into(),
            send_resolved: true,
            channel: Some("#soc".into()),
            username: None,
        }
    }

    #[test]
    fn golden_message() {
        let message = slack_message(&notification(), "https://tracewarden.example.com", &cfg());
        let text = serde_json::to_string_pretty(&message).unwrap() + "\n";
        assert_golden("slack.json", &text);
    }

    #[test]
    fn escapes_and_caps() {
        let mut n = notification();
        n.alerts[1]
            .annotations
            .insert("title".into(), "<script> & co".into());
        let one = n.alerts[1].clone();
        n.alerts = vec![one; MAX_ATTACHMENTS + 3];
        let message = slack_message(&n, "", &cfg());
        let attachments = message["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), MAX_ATTACHMENTS + 1);
        let last = attachments[MAX_ATTACHMENTS].to_string();
        assert!(last.contains("and 3 more alerts"), "{last}");
        assert_eq!(message["text"], "[FIRING:13] &lt;script&gt; &amp; co");
        assert!(!message.to_string().contains("<script>"));
    }
}
