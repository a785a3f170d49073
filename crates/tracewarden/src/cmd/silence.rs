//! `tracewarden silence add|list|expire`: a running server's silences
//! (`POST`/`GET /api/v1/silences`, `DELETE /api/v1/silences/{id}`).

use std::fmt::Write as _;

use anyhow::Context;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};
use tracewarden_alert::matcher::{MatchType, Matcher};

use super::alerts::ServerArg;
use super::client::{self, percent_encode, text};

#[derive(Args, Debug)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub command: SilenceCommand,
}

#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Mute the alerts matching every --matcher for a while.
    Add {
        /// An Alertmanager matcher: name=value, name!=value, name=~regex,
        /// name!~regex (value quoted or bare); repeat for several.
        #[arg(long = "matcher", required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h (or give --ends-at).
        #[arg(long, conflicts_with = "ends_at", required_unless_present = "ends_at")]
        duration: Option<String>,
        /// When it ends: RFC 3339 or Unix seconds.
        #[arg(long)]
        ends_at: Option<String>,
        /// When it starts [default: now].
        #[arg(long)]
        starts_at: Option<String>,
        /// Why (required).
        #[arg(long)]
        comment: String,
        /// Who creates it.
        #[arg(long)]
        by: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Active, pending and recently expired silences.
    List {
        #[command(flatten)]
        server: ServerArg,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence's id (as `silence add` printed it or `silence list` shows it).
        id: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

pub fn run(args: SilenceArgs) -> anyhow::Result<()> {
    match args.command {
        SilenceCommand::Add {
            matchers,
            duration,
            ends_at,
            starts_at,
            comment,
            by,
            server,
        } => {
            let matchers = matchers
                .iter()
                .map(|text| {
                    text.parse::<Matcher>()
                        .map_err(|e| anyhow::anyhow!("--matcher {e}"))
                        .map(|m| matcher_json(&m))
                })
                .collect::<anyhow::Result<Vec<Value>>>()?;
            let mut body = json!({
                "matchers": matchers,
                "createdBy": by,
                "comment": comment,
            });
            for (key, value) in [
                ("duration", duration),
                ("endsAt", ends_at),
                ("startsAt", starts_at),
            ] {
                if let Some(value) = value {
                    body[key] = Value::String(value);
                }
            }
            let answer = client::request(
                &server.server,
                Method::POST,
                "/api/v1/silences",
                Some(&body),
            )?;
            let id = answer
                .get("silenceId")
                .and_then(Value::as_str)
                .context("the server answered no silenceId")?;
            println!("{id}");
            Ok(())
        }
        SilenceCommand::List { server, json } => {
            let answer = client::request(&server.server, Method::GET, "/api/v1/silences", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print!("{}", table(&answer));
            }
            Ok(())
        }
        SilenceCommand::Expire { id, server } => {
            let path = format!("/api/v1/silences/{}", percent_encode(&id));
            let answer = client::request(&server.server, Method::DELETE, &path, None)?;
            println!(
                "expired {} at {}",
                text(&answer, "/id"),
                text(&answer, "/endsAt")
            );
            Ok(())
        }
    }
}

/// A matcher as the API takes it (Alertmanager's form).
fn matcher_json(m: &Matcher) -> Value {
    let (is_regex, is_equal) = match m.kind() {
        MatchType::Equal => (false, true),
        MatchType::NotEqual => (false, false),
        MatchType::Regex => (true, true),
        MatchType::NotRegex => (true, false),
    };
    json!({"name": m.name(), "value": m.value(), "isRegex": is_regex, "isEqual": is_equal})
}

/// The matchers of a silence as Alertmanager prints them.
fn matchers_text(silence: &Value) -> String {
    silence
        .get("matchers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|m| {
                    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
                    let op = match (flag("isRegex"), flag("isEqual")) {
                        (false, true) => "=",
                        (false, false) => "!=",
                        (true, true) => "=~",
                        (true, false) => "!~",
                    };
                    format!("{}{op}\"{}\"", text(m, "/name"), text(m, "/value"))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn table(answer: &Value) -> String {
    let silences = answer
        .get("silences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36}  {:<8}  {:<24}  {:<12}  {:<40}  COMMENT",
        "ID", "STATE", "ENDS (UTC)", "CREATED BY", "MATCHERS"
    );
    for s in silences {
        let _ = writeln!(
            out,
            "{:<36}  {:<8}  {:<24}  {:<12}  {:<40}  {}",
            text(s, "/id"),
            text(s, "/status/state"),
            text(s, "/endsAt"),
            text(s, "/createdBy"),
            matchers_text(s),
            text(s, "/comment"),
        );
    }
    let _ = writeln!(out, "{} silences", silences.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_round_trip_through_the_api_form() {
        for text in [
            "client_address=\"203.0.113.7\"",
            "a!=\"b\"",
            "severity=~\"high|critical\"",
            "x!~\"y.*\"",
        ] {
            let m: Matcher = text.parse().unwrap();
            let silence = json!({ "matchers": [matcher_json(&m)] });
            assert_eq!(matchers_text(&silence), text);
        }
        let bare: Matcher = "client_address=203.0.113.7".parse().unwrap();
        assert_eq!(
            matcher_json(&bare),
            json!({"name": "client_address", "value": "203.0.113.7", "isRegex": false, "isEqual": true})
        );
    }
}
