//! `tracewarden investigate --actor KIND=VALUE`: an actor's timeline from a
//! running server (`GET /api/v1/actors/{kind}/{value}/timeline`), a summary
//! block then one line per request, paging through with the cursor up to
//! `--limit` requests.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use http::Method;
use serde_json::Value;
use tracewarden_model::credential;
use tracewarden_search::format_time;

use super::client::{self, DEFAULT_SERVER, percent_encode, query_string, text};

/// Requests asked per page (the server's maximum).
const PAGE: usize = 1000;

#[derive(Args, Debug)]
pub struct InvestigateArgs {
    /// Who: KIND=VALUE with KIND client.address, enduser.id, session.id or
    /// token (e.g. client.address=203.0.113.7). A token is given as its
    /// fingerprint (sha256:...), as the token or `Authorization` value
    /// (fingerprinted here; only the fingerprint is sent), or as `-` to read
    /// it from standard input (kept out of the shell's history).
    #[arg(long)]
    pub actor: String,
    /// The period: this long before --end (e.g. 24h, 7d); default 24h.
    #[arg(long, conflicts_with = "start")]
    pub since: Option<String>,
    /// Start of the period (Unix seconds or RFC 3339).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the period (Unix seconds or RFC 3339); default now.
    #[arg(long)]
    pub end: Option<String>,
    /// Requests listed at most (the summary always covers the whole period).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The server's API address.
    #[arg(long, default_value = DEFAULT_SERVER)]
    pub server: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: InvestigateArgs) -> anyhow::Result<()> {
    let (kind, value) = args
        .actor
        .split_once('=')
        .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        .with_context(|| {
            format!(
                "--actor must be KIND=VALUE (e.g. client.address=203.0.113.7), not `{}`",
                args.actor
            )
        })?;
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let (kind, value) = (kind.trim(), value.trim());
    let value = if kind == "token" {
        token_fingerprint(value)?
    } else {
        value.to_string()
    };
    let timeline = fetch(&args, kind, &value)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&timeline)?),
        Format::Table => print!("{}", table(&timeline)),
    }
    Ok(())
}

/// The fingerprint of a token actor: given as one, as the token (or a
/// whole `Authorization` value), or `-` for a line of standard input.
fn token_fingerprint(value: &str) -> anyhow::Result<String> {
    let token = if value == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the token from standard input")?;
        line.trim().to_string()
    } else {
        value.to_string()
    };
    if token.is_empty() {
        bail!("the token is empty");
    }
    let lower = token.to_ascii_lowercase();
    Ok(if credential::is_fingerprint(&lower) {
        lower
    } else {
        credential::fingerprint(&token)
    })
}

/// The first page's answer with the requests of every page fetched, up to
/// `--limit`; `nextCursor` is the last page's.
fn fetch(args: &InvestigateArgs, kind: &str, value: &str) -> anyhow::Result<Value> {
    let path = format!(
        "/api/v1/actors/{}/{}/timeline",
        percent_encode(kind),
        percent_encode(value)
    );
    let mut timeline: Option<Value> = None;
    let mut requests: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    // The first answer's period, so later pages see the same one even when
    // `end` defaults to now.
    let mut period: Option<(String, String)> = None;
    loop {
        let left = args.limit - requests.len();
        let limit = left.min(PAGE).to_string();
        let (start, end) = match &period {
            Some((start, end)) => (Some(start.as_str()), Some(end.as_str())),
            None => (args.start.as_deref(), args.end.as_deref()),
        };
        let since = if period.is_none() {
            args.since.as_deref()
        } else {
            None
        };
        // The API reads times in seconds or RFC 3339: nanoseconds go back
        // as RFC 3339 with their fraction.
        let start_text = start.map(period_time);
        let end_text = end.map(period_time);
        let query = query_string([
            ("start", start_text.as_deref()),
            ("end", end_text.as_deref()),
            ("since", since),
            ("limit", Some(limit.as_str())),
            ("cursor", cursor.as_deref()),
        ]);
        let mut page = client::request(&args.server, Method::GET, &format!("{path}{query}"), None)?;
        if period.is_none() {
            period = Some((
                text(&page, "/start").to_string(),
                text(&page, "/end").to_string(),
            ));
        }
        if let Some(Value::Array(items)) = page.get_mut("requests").map(Value::take) {
            requests.extend(items);
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        let first = timeline.get_or_insert_with(|| page.clone());
        first["nextCursor"] = page.get("nextCursor").cloned().unwrap_or(Value::Null);
        if cursor.is_none() || requests.len() >= args.limit {
            break;
        }
    }
    let mut timeline = timeline.context("the server answered no page")?;
    timeline["requests"] = Value::Array(requests);
    Ok(timeline)
}

/// A period bound as the API answered it (nanoseconds) in a form the API
/// reads back exactly; anything else (what the user typed) as given.
fn period_time(given: &str) -> String {
    match given.parse::<u64>() {
        Ok(nanos) if given.len() > 12 => {
            let seconds = nanos / 1_000_000_000;
            let fraction = nanos % 1_000_000_000;
            format!("{seconds}.{fraction:09}")
        }
        _ => given.to_string(),
    }
}

fn nanos(value: &Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer)?.as_str()?.parse().ok()
}

fn when(value: &Value, pointer: &str) -> String {
    nanos(value, pointer).map_or_else(|| "-".to_string(), format_time)
}

fn names(value: Option<&Value>, field: &str) -> String {
    let list = value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names: Vec<&str> = list
        .iter()
        .map(|item| match item {
            Value::String(s) => s.as_str(),
            other => other.get(field).and_then(Value::as_str).unwrap_or(""),
        })
        .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

fn counts(value: Option<&Value>, field: &str) -> String {
    let list = value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let parts: Vec<String> = list
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.get(field).and_then(Value::as_str).unwrap_or(""),
                c.get("count").and_then(Value::as_u64).unwrap_or(0)
            )
        })
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// The summary block, then a line per request.
fn table(timeline: &Value) -> String {
    let mut out = String::new();
    let summary = timeline.get("summary").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        out,
        "actor       {}={}",
        text(timeline, "/actor/kind"),
        text(timeline, "/actor/value")
    );
    let _ = writeln!(
        out,
        "period      {} .. {}",
        when(timeline, "/start"),
        when(timeline, "/end")
    );
    let _ = writeln!(
        out,
        "seen        {} .. {}",
        when(&summary, "/firstSeen"),
        when(&summary, "/lastSeen")
    );
    let number = |p: &str| summary.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(
        out,
        "requests    {} in {} traces",
        number("/requests"),
        number("/traces")
    );
    let _ = writeln!(
        out,
        "by status   {}",
        counts(summary.get("byStatus"), "status")
    );
    let _ = writeln!(
        out,
        "by route    {}",
        counts(summary.get("byRoute"), "route")
    );
    let identities = summary
        .get("identities")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let identities: Vec<String> = identities
        .iter()
        .map(|i| {
            format!(
                "{}={} ({})",
                text(i, "/kind"),
                text(i, "/value"),
                i.get("count").and_then(Value::as_u64).unwrap_or(0)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "identities  {}",
        if identities.is_empty() {
            "-".to_string()
        } else {
            identities.join(", ")
        }
    );
    let alerts = summary
        .get("alerts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let alerts: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} ({}, {})",
                text(a, "/fingerprint"),
                text(a, "/ruleId"),
                text(a, "/severity"),
                text(a, "/state")
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "alerts      {}",
        if alerts.is_empty() {
            "-".to_string()
        } else {
            alerts.join(", ")
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<24}  {:<6}  {:<32}  {:<32}  {:<8}  ALERTS",
        "TIME (UTC)", "STATUS", "REQUEST", "SERVICES", "LOGS"
    );
    let requests = timeline
        .get("requests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for r in requests {
        let request = format!("{} {}", text(r, "/method"), text(r, "/route"));
        let logs = r.get("logs").and_then(Value::as_array).map_or(0, Vec::len);
        let _ = writeln!(
            out,
            "{:<24}  {:<6}  {:<32}  {:<32}  {:<8}  {}",
            when(r, "/time"),
            text(r, "/status"),
            request.trim(),
            names(r.get("services"), ""),
            logs,
            names(r.get("alerts"), "ruleId"),
        );
    }
    let more = if timeline.get("nextCursor").is_some_and(Value::is_string) {
        " (more in the period: raise --limit)"
    } else {
        ""
    };
    let _ = writeln!(out, "{} requests listed{more}", requests.len());
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_period_bound_in_nanoseconds_goes_back_exactly() {
        assert_eq!(period_time("1733340000123456789"), "1733340000.123456789");
        assert_eq!(period_time("1733340000"), "1733340000");
        assert_eq!(period_time("2024-12-04T19:20:00Z"), "2024-12-04T19:20:00Z");
    }

    #[test]
    fn the_table_has_the_summary_then_a_line_per_request() {
        let timeline = json!({
            "actor": {"kind": "client.address", "value": "203.0.113.7"},
            "start": "1733250000000000000", "end": "1733340000000000000",
            "summary": {
                "firstSeen": "1733339000000000000", "lastSeen": "1733339001000000000",
                "requests": 2, "traces": 2,
                "byStatus": [{"status": "401", "count": 1}, {"status": "200", "count": 1}],
                "byRoute": [{"route": "/login", "count": 2}],
                "identities": [{"kind": "enduser.id", "value": "alice", "count": 2}],
                "alerts": [{"fingerprint": "00ff", "ruleId": "brute-force-login", "severity": "high", "state": "firing"}]
            },
            "requests": [
                {"time": "1733339000000000000", "status": "401", "method": "POST", "route": "/login",
                 "services": ["auth", "gateway"], "alerts": [{"ruleId": "brute-force-login"}], "logs": [{}]},
                {"time": "1733339001000000000", "status": "200", "method": "POST", "route": "/login",
                 "services": ["auth", "gateway"], "alerts": [], "logs": []}
            ],
            "nextCursor": null
        });
        let out = table(&timeline);
        assert!(
            out.contains("actor       client.address=203.0.113.7"),
            "{out}"
        );
        assert!(out.contains("by status   401 1, 200 1"), "{out}");
        assert!(out.contains("identities  enduser.id=alice (2)"), "{out}");
        assert!(
            out.contains("00ff brute-force-login (high, firing)"),
            "{out}"
        );
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("2024-12-04"))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].contains("401") && lines[0].contains("POST /login"),
            "{out}"
        );
        assert!(lines[0].contains("auth,gateway") && lines[0].ends_with("brute-force-login"));
        assert!(lines[1].ends_with('-'), "{out}");
        assert!(out.ends_with("2 requests listed\n"), "{out}");
    }
}
