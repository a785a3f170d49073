//! RFC 5424 syslog messages, one per alert, and their framing.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG` with
//! MSGID `firing` or `resolved`, structured data under the SD-ID
//! `tracewarden@32473` (32473 is the private enterprise number RFC 5612
//! reserves for documentation: ours until one is registered) carrying the
//! fingerprint, status, labels, count, first/last seen and the latest
//! trace id, and a one-line text. Severity: critical -> 2 (crit), high ->
//! 3 (err), medium -> 4 (warning), low -> 5 (notice), info -> 6 (info); a
//! resolution is 5 (notice) whatever the rule's severity.

use std::fmt::Write as _;

use super::actor;
use crate::alert::{self, Alert};
use crate::config::Facility;
use crate::labels;
use crate::time::format_rfc3339;

pub const SD_ID: &str = "tracewarden@32473";
/// Largest UDP message sent (RFC 5426: every receiver takes 2048 bytes).
pub const MAX_UDP_BYTES: usize = 2048;
/// Largest TCP message sent.
pub const MAX_TCP_BYTES: usize = 64 * 1024;

/// The header fields that do not come from the alert.
#[derive(Clone, Debug)]
pub struct SyslogHeader {
    pub facility: Facility,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
}

/// The syslog severity of an alert.
pub fn severity_code(alert: &Alert) -> u8 {
    if !alert.is_firing() {
        return 5;
    }
    match alert.labels.get(labels::SEVERITY) {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    }
}

/// One message (without framing), at most `max_bytes` long: a long text is
/// cut at a character boundary.
pub fn syslog_message(
    alert: &Alert,
    header: &SyslogHeader,
    at_unix_nano: u64,
    max_bytes: usize,
) -> String {
    let pri = u16::from(header.facility.code()) * 8 + u16::from(severity_code(alert));
    let status = alert.state.as_str();
    let mut out = String::with_capacity(512);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "<{pri}>1 {} {} {} {} {status} [{SD_ID}",
        format_rfc3339(at_unix_nano),
        nil_or(&header.hostname),
        nil_or(&header.app_name),
        nil_or(&header.procid),
    );
    param(&mut out, "fingerprint", &alert.fingerprint.to_string());
    param(&mut out, "status", status);
    for (name, value) in alert.labels.iter() {
        // PARAM-NAME is at most 32 characters.
        if name.len() <= 32 && !matches!(name, "fingerprint" | "status" | "count") {
            param(&mut out, name, value);
        }
    }
    let evidence = &alert.evidence;
    param(&mut out, "count", &evidence.count.to_string());
    param(
        &mut out,
        "first_seen",
        &format_rfc3339(evidence.first_seen_unix_nano),
    );
    param(
        &mut out,
        "last_seen",
        &format_rfc3339(evidence.last_seen_unix_nano),
    );
    if let Some(trace) = evidence.trace_ids.first() {
        param(&mut out, "trace_id", trace);
    }
    out.push_str("] \u{feff}");
    let _ = write!(
        out,
        "{} ({}) {status}",
        alert.annotation(alert::TITLE),
        alert.labels.get(labels::ALERTNAME)
    );
    let actor = actor(alert);
    if !actor.is_empty() {
        let _ = write!(out, ": {actor}");
    }
    let found = alert.annotation(alert::EVIDENCE);
    if !found.is_empty() {
        let _ = write!(out, "; {found}");
    }
    // One message is one line for collectors that split on newlines.
    let mut out = out.replace(['\n', '\r'], " ");
    truncate(&mut out, max_bytes);
    out
}

/// RFC 6587 octet counting: `LEN SP MSG`.
pub fn octet_counted(message: &str) -> String {
    format!("{} {message}", message.len())
}

fn nil_or(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

fn param(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn truncate(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertState;
    use crate::payload::tests::{SEC, T0, alert};

    fn header() -> SyslogHeader {
        SyslogHeader {
            facility: Facility::Auth,
            hostname: "tw-1".into(),
            app_name: "tracewarden".into(),
            procid: "4242".into(),
        }
    }

    #[test]
    fn rfc5424_message() {
        let mut a = alert("203.0.113.9", AlertState::Firing);
        a.annotations
            .insert("evidence".into(), "say \"hi\" ] \\ x".into());
        let m = syslog_message(&a, &header(), T0 + 630 * SEC, MAX_TCP_BYTES);
        assert_eq!(
            m,
            "<35>1 2026-01-01T00:10:30.000Z tw-1 tracewarden 4242 firing [tracewarden@32473 \
             fingerprint=\""
                .to_string()
                + &a.fingerprint.to_string()
                + "\" status=\"firing\" alertname=\"brute-force-login\" client_address=\"203.0.113.9\" \
             rule_kind=\"threshold\" severity=\"high\" count=\"20\" first_seen=\"2025-12-31T23:59:00.000Z\" \
             last_seen=\"2026-01-01T00:04:50.000Z\" trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"] \
             \u{feff}Brute-force login from one address (brute-force-login) firing: client_address=203.0.113.9; \
             say \"hi\" ] \\ x"
        );
    }

    #[test]
    fn severities_and_escapes() {
        let mut a = alert("x\"]\\", AlertState::Firing);
        let h = SyslogHeader {
            facility: Facility::Local0,
            hostname: String::new(),
            ..header()
        };
        for (severity, code) in [
            ("critical", 2),
            ("high", 3),
            ("medium", 4),
            ("low", 5),
            ("info", 6),
        ] {
            a.labels.insert("severity", severity);
            let m = syslog_message(&a, &h, T0, MAX_TCP_BYTES);
            assert!(
                m.starts_with(&format!("<{}>1 ", 128 + code)),
                "{severity}: {m}"
            );
        }
        let m = syslog_message(&a, &h, T0, MAX_TCP_BYTES);
        assert!(
            m.contains(" - tracewarden 4242 firing "),
            "nil hostname: {m}"
        );
        assert!(m.contains(r#"client_address="x\"\]\\""#), "{m}");
        let resolved = alert("a", AlertState::Resolved);
        assert_eq!(severity_code(&resolved), 5);
        assert!(
            syslog_message(&resolved, &header(), T0, MAX_TCP_BYTES)
                .contains(" resolved [tracewarden@32473")
        );
    }

    #[test]
    fn truncation_and_framing() {
        let mut a = alert("a", AlertState::Firing);
        a.annotations.insert("title".into(), "é".repeat(3000));
        let m = syslog_message(&a, &header(), T0, MAX_UDP_BYTES);
        assert!(m.len() <= MAX_UDP_BYTES && m.len() >= MAX_UDP_BYTES - 1);
        assert_eq!(octet_counted("<13>1 - - - - - -"), "17 <13>1 - - - - - -");
        let framed = octet_counted(&m);
        let (len, rest) = framed.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
    }
}
