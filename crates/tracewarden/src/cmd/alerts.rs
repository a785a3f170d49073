//! `tracewarden alerts`: list a running server's alerts, show one, and
//! acknowledge one (`GET /api/v1/alerts`, `GET /api/v1/alerts/{fp}`,
//! `POST /api/v1/alerts/{fp}/ack`).

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use super::client::{self, DEFAULT_SERVER, percent_encode, query_string, text};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Args, Debug)]
pub struct ServerArg {
    /// The server's API address.
    #[arg(long, default_value = DEFAULT_SERVER)]
    pub server: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// `firing` or `resolved`.
    #[arg(long)]
    pub state: Option<String>,
    /// info, low, medium, high or critical (comma-separated for several).
    #[arg(long)]
    pub severity: Option<String>,
    /// A rule id.
    #[arg(long)]
    pub rule: Option<String>,
    /// A key value (e.g. 203.0.113.7) or label=value (client_address=203.0.113.7).
    #[arg(long)]
    pub actor: Option<String>,
    /// Alerts active within this long (e.g. 1h) or since this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Alerts listed at most.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// One alert: its texts, evidence and traces, whether it is muted.
    Show {
        /// The alert's fingerprint (16 hex digits, as listed).
        fingerprint: String,
        #[command(flatten)]
        server: ServerArg,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert.
    Ack {
        /// The alert's fingerprint (16 hex digits, as listed).
        fingerprint: String,
        /// Who acknowledges.
        #[arg(long)]
        by: String,
        /// Why, or what is being done.
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

pub fn run(args: AlertsArgs) -> anyhow::Result<()> {
    match args.command {
        None => list(&args.list),
        Some(AlertsCommand::Show {
            fingerprint,
            server,
            json,
        }) => {
            let path = format!("/api/v1/alerts/{}", percent_encode(&fingerprint));
            let alert = client::request(&server.server, Method::GET, &path, None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&alert)?);
            } else {
                print!("{}", details(&alert, &server.server));
            }
            Ok(())
        }
        Some(AlertsCommand::Ack {
            fingerprint,
            by,
            comment,
            server,
        }) => {
            let path = format!("/api/v1/alerts/{}/ack", percent_encode(&fingerprint));
            let body = json!({ "by": by, "comment": comment });
            let alert = client::request(&server.server, Method::POST, &path, Some(&body))?;
            println!(
                "acknowledged {} ({}) by {}",
                text(&alert, "/fingerprint"),
                text(&alert, "/title"),
                text(&alert, "/acknowledged/by")
            );
            Ok(())
        }
    }
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    let limit = args.limit.map(|n| n.to_string());
    let query = query_string([
        ("state", args.state.as_deref()),
        ("severity", args.severity.as_deref()),
        ("rule", args.rule.as_deref()),
        ("actor", args.actor.as_deref()),
        ("since", args.since.as_deref()),
        ("limit", limit.as_deref()),
    ]);
    let response = client::request(
        &args.server.server,
        Method::GET,
        &format!("/api/v1/alerts{query}"),
        None,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        print!("{}", table(&response));
    }
    Ok(())
}

/// `name=value, ...` of an object of strings.
fn pairs(object: Option<&Value>) -> String {
    object
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The alerts as a table, newest first, then a count.
fn table(response: &Value) -> String {
    let alerts = response
        .get("alerts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}  {:<8}  {:<8}  {:<26}  {:<28}  {:<24}  {:>6}  {:<10}  TITLE",
        "FINGERPRINT", "STATUS", "SEVERITY", "RULE", "ACTOR", "STARTED (UTC)", "COUNT", "ACK"
    );
    for alert in alerts {
        let _ = writeln!(
            out,
            "{:<16}  {:<8}  {:<8}  {:<26}  {:<28}  {:<24}  {:>6}  {:<10}  {}",
            text(alert, "/fingerprint"),
            text(alert, "/status"),
            text(alert, "/severity"),
            text(alert, "/ruleId"),
            pairs(alert.get("actor")),
            text(alert, "/startsAt"),
            alert
                .pointer("/evidence/count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            match text(alert, "/acknowledged/by") {
                "" => "-",
                by => by,
            },
            text(alert, "/title"),
        );
    }
    let total = response.get("total").and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(out, "{} of {total} alerts", alerts.len());
    out
}

/// One alert, a field per line, its traces as URLs of `server`.
fn details(alert: &Value, server: &str) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(out, "{name:<13} {value}");
        }
    };
    line("fingerprint", text(alert, "/fingerprint"));
    line("title", text(alert, "/title"));
    line("status", text(alert, "/status"));
    line("severity", text(alert, "/severity"));
    line("rule", text(alert, "/ruleId"));
    line("actor", &pairs(alert.get("actor")));
    line("started", text(alert, "/startsAt"));
    line("ended", text(alert, "/endsAt"));
    line("updated", text(alert, "/updatedAt"));
    let number = |p: &str| alert.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    line(
        "evidence",
        &format!(
            "{} detections, count {}, seen {} .. {}",
            number("/evidence/detections"),
            number("/evidence/count"),
            text(alert, "/evidence/firstSeen"),
            text(alert, "/evidence/lastSeen")
        ),
    );
    line("found", text(alert, "/annotations/evidence"));
    line("tags", text(alert, "/annotations/tags"));
    line("description", text(alert, "/annotations/description"));
    line("response", text(alert, "/annotations/response"));
    let ack = match text(alert, "/acknowledged/by") {
        "" => String::new(),
        by => format!(
            "by {by} at {} {}",
            text(alert, "/acknowledged/at"),
            text(alert, "/acknowledged/comment")
        ),
    };
    line("acknowledged", ack.trim_end());
    let silenced: Vec<&str> = alert
        .get("silencedBy")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    line("silenced by", &silenced.join(", "));
    if alert.get("inhibited").and_then(Value::as_bool) == Some(true) {
        line("inhibited", "yes (a firing alert's inhibit rule mutes it)");
    }
    let base = server.trim_end_matches('/');
    let traces: Vec<String> = alert
        .get("traces")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|t| format!("{base}{}", text(t, "/href")))
                .collect()
        })
        .unwrap_or_default();
    for (i, url) in traces.iter().enumerate() {
        line(if i == 0 { "traces" } else { "" }, url);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_details() {
        let alert = json!({
            "fingerprint": "8b1a9953c4611296", "status": "firing", "severity": "high",
            "ruleId": "brute-force-login", "title": "Brute-force login from one address",
            "actor": {"client_address": "203.0.113.7"}, "startsAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:05.000Z",
            "evidence": {"detections": 1, "count": 10, "firstSeen": "a", "lastSeen": "b", "traceIds": ["ab"]},
            "annotations": {"tags": "T1110"},
            "acknowledged": {"by": "ana", "at": "2026-01-01T00:01:00.000Z"},
            "traces": [{"traceId": "ab", "href": "/api/v1/traces/ab"}],
            "silencedBy": [], "inhibited": false,
        });
        let out = table(&json!({"alerts": [alert.clone()], "total": 3}));
        let row = out.lines().nth(1).unwrap();
        for word in [
            "8b1a9953c4611296",
            "firing",
            "client_address=203.0.113.7",
            " 10 ",
            "ana",
        ] {
            assert!(row.contains(word), "{word}: {row}");
        }
        assert_eq!(out.lines().last(), Some("1 of 3 alerts"));
        let out = details(&alert, "http://127.0.0.1:7700/");
        assert!(
            out.contains("traces        http://127.0.0.1:7700/api/v1/traces/ab"),
            "{out}"
        );
        assert!(
            out.contains("acknowledged  by ana at 2026-01-01T00:01:00.000Z\n"),
            "{out}"
        );
        assert!(!out.contains("silenced"), "{out}");
    }
}
