//! `tracewarden block add|remove|list|history`: the blocklist of a running
//! server, through its API (`/api/v1/blocks`; docs/PREVENTION.md).

use clap::{Args, Subcommand, ValueEnum};
use http::Method;
use serde_json::{Value, json};

use super::client::percent_encode;

/// The server's answer to `method path` with an optional JSON body.
fn request(server: &str, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    super::client::request(server, method, path, body.as_ref())
}

#[derive(Args, Debug)]
pub struct BlockArgs {
    #[command(subcommand)]
    pub command: BlockCommand,
    /// The server's API address.
    #[arg(long, global = true, default_value = "http://127.0.0.1:7700")]
    pub server: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Address,
    User,
    Token,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Address => "address",
            Kind::User => "user",
            Kind::Token => "token",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BlockCommand {
    /// Block an address or CIDR range, a user id, or a token (kept as a
    /// SHA-256 fingerprint).
    Add {
        kind: Kind,
        value: String,
        /// How long (e.g. 30m, 1h, 7d); omitted: until removed.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Why (recorded in the history, shown to gateways).
        #[arg(long)]
        reason: String,
        /// Who blocks [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
    /// Remove a block.
    Remove {
        kind: Kind,
        value: String,
        #[arg(long)]
        reason: String,
        /// Who unblocks [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
    /// The blocks in force.
    List {
        /// Print the JSON of `GET /api/v1/blocks`.
        #[arg(long)]
        json: bool,
    },
    /// The last changes (block, extend, unblock, expire).
    History {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "cli".to_string())
}

pub fn run(args: BlockArgs) -> anyhow::Result<()> {
    let server = args.server.as_str();
    match args.command {
        BlockCommand::Add {
            kind,
            value,
            duration,
            reason,
            by,
        } => {
            let body = json!({
                "kind": kind.as_str(),
                "value": value,
                "duration": duration,
                "reason": reason,
                "by": who(by),
            });
            let answer = request(server, Method::POST, "/api/v1/blocks", Some(body))?;
            let block = &answer["block"];
            println!(
                "{} {} {} until {}",
                answer["change"].as_str().unwrap_or("?"),
                block["kind"].as_str().unwrap_or("?"),
                block["value"].as_str().unwrap_or("?"),
                block["until"].as_str().unwrap_or("removed"),
            );
        }
        BlockCommand::Remove {
            kind,
            value,
            reason,
            by,
        } => {
            let path = format!(
                "/api/v1/blocks/{}/{}?by={}&reason={}",
                kind.as_str(),
                percent_encode(&value),
                percent_encode(&who(by)),
                percent_encode(&reason)
            );
            let answer = request(server, Method::DELETE, &path, None)?;
            println!(
                "removed {} {}",
                answer["removed"]["kind"].as_str().unwrap_or("?"),
                answer["removed"]["value"].as_str().unwrap_or("?")
            );
        }
        BlockCommand::List { json } => {
            let answer = request(server, Method::GET, "/api/v1/blocks", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            let blocks = answer["blocks"].as_array().cloned().unwrap_or_default();
            println!(
                "{:<8} {:<42} {:<21} {:<24} REASON",
                "KIND", "VALUE", "UNTIL", "BY"
            );
            for b in &blocks {
                println!(
                    "{:<8} {:<42} {:<21} {:<24} {}",
                    b["kind"].as_str().unwrap_or(""),
                    b["value"].as_str().unwrap_or(""),
                    b["until"].as_str().unwrap_or("(until removed)"),
                    b["by"].as_str().unwrap_or(""),
                    b["reason"].as_str().unwrap_or("")
                );
            }
        }
        BlockCommand::History { limit } => {
            let path = format!("/api/v1/blocks/history?limit={limit}");
            let answer = request(server, Method::GET, &path, None)?;
            for e in answer["history"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{} {:<7} {} {} by {} ({}){}",
                    e["at"].as_str().unwrap_or(""),
                    e["action"].as_str().unwrap_or(""),
                    e["kind"].as_str().unwrap_or(""),
                    e["value"].as_str().unwrap_or(""),
                    e["by"].as_str().unwrap_or(""),
                    e["reason"].as_str().unwrap_or(""),
                    e["until"]
                        .as_str()
                        .map(|u| format!(" until {u}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
