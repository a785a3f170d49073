//! `tracewarden rules test [DIR]` and `tracewarden rules lint [DIR]`: rules
//! tested like code, as Falco's and the Core Rule Set's are. `--config`
//! takes the site facts (`[detection.site]`) from a server config file, so
//! the rules are checked as that deployment will run them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use tracewarden_detect::rule::{
    LoadErrors, Rule, builtin_rules_for, load_dir_for, load_dir_parts_for, load_file_for,
    rule_files, test_dir_for,
};
use tracewarden_server::Config;
use tracewarden_server::config::DetectionConfig;
use tracewarden_server::detection::rule_set;

use super::alerts::ServerArg;
use super::client;

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Run every rule of DIR against its fixtures (DIR/fixtures/<rule id>.json):
    /// expected detections and expected silence; a pass/fail line per case,
    /// and an `off` line for each rule the site leaves inactive.
    Test {
        /// The rule directory [default: the --config file's `[detection]
        /// rules_dir`, else ./rules, the built-in pack's source].
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Take the site facts from this tracewarden.toml's [detection.site]
        /// [default: the built-in defaults].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Reload a running server's rules now (`POST /api/v1/rules/reload`):
    /// what was kept, added, changed and removed, or every error of the
    /// files (the running rules then stay).
    Reload {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Check rule files without running them: every error with file, line and
    /// column, and which rules are inactive and why. DIR may be one file. Without DIR, the
    /// built-in pack embedded in this binary; with --config and no DIR, the
    /// rules that config runs (built-in pack and `[detection] rules_dir`).
    Lint {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Take the site facts from this tracewarden.toml's [detection.site].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RulesCommand::Test { dir, config } => {
            let detection = detection(config.as_deref())?;
            let dir = dir
                .or_else(|| detection.as_ref().and_then(|d| d.rules_dir.clone()))
                .unwrap_or_else(|| PathBuf::from("rules"));
            if !dir.is_dir() {
                anyhow::bail!("`{}` is not a directory of rule files", dir.display());
            }
            // Nothing tested is no pass (like pytest's "no tests ran"): a
            // mistyped directory must not turn a CI check green.
            if rule_files(&dir).is_ok_and(|files| files.is_empty()) {
                anyhow::bail!(
                    "no rule files (*.yaml, *.yml) in `{}`: nothing to test",
                    dir.display()
                );
            }
            let site = detection.map(|d| d.site).unwrap_or_default();
            let report = test_dir_for(&dir, &site);
            println!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RulesCommand::Reload { server } => {
            let answer =
                client::request(&server.server, Method::POST, "/api/v1/rules/reload", None)?;
            let names = |field: &str| -> Vec<String> {
                answer[field]
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| id.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let kept = names("kept");
            println!("reloaded: {} kept", kept.len());
            for field in ["added", "changed", "removed"] {
                let ids = names(field);
                if !ids.is_empty() {
                    println!("{field}: {}", ids.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Lint { dir, config } => {
            let detection = detection(config.as_deref())?;
            let site = detection
                .as_ref()
                .map(|d| d.site.clone())
                .unwrap_or_default();
            let (what, loaded) = match (&dir, &detection) {
                // One file: lint it alone.
                (Some(file), _) if file.is_file() => (
                    file.display().to_string(),
                    load_file_for(file, &site)
                        .map(|rule| vec![rule])
                        .map_err(LoadErrors),
                ),
                (Some(dir), _) => (dir.display().to_string(), load_dir_for(dir, &site)),
                // What the server would run with this config.
                (None, Some(detection)) => server_rules(detection),
                (None, None) => ("the built-in pack".to_string(), builtin_rules_for(&site)),
            };
            match loaded {
                Ok(rules) => {
                    for rule in &rules {
                        println!("{}", describe(rule));
                    }
                    let off = rules
                        .iter()
                        .filter(|r| !r.enabled || r.inactive.is_some())
                        .count();
                    // Exception files are not rules: counted apart.
                    let exceptions_dir = match (&dir, &detection) {
                        (Some(dir), _) if dir.is_dir() => Some(dir.clone()),
                        (None, Some(detection)) => detection.rules_dir.clone(),
                        _ => None,
                    };
                    let exceptions = exceptions_dir
                        .and_then(|d| load_dir_parts_for(&d, &site).ok())
                        .map_or(0, |(_, e)| e.len());
                    let exceptions = match exceptions {
                        0 => String::new(),
                        1 => ", 1 exception".to_string(),
                        n => format!(", {n} exceptions"),
                    };
                    println!(
                        "{}: {} rules ({} running, {} off){exceptions}, no errors",
                        what,
                        rules.len(),
                        rules.len() - off,
                        off
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for error in &errors.0 {
                        println!("{error}");
                    }
                    let n = errors.0.len();
                    println!("{what}: {n} error{}", if n == 1 { "" } else { "s" });
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// A config file's `[detection]` section, its site facts checked as the
/// server checks them at start; `None` without a file.
fn detection(config: Option<&Path>) -> anyhow::Result<Option<DetectionConfig>> {
    let Some(path) = config else {
        return Ok(None);
    };
    let detection = Config::from_file(path)?.detection;
    let problems = detection.site.validate();
    if !problems.is_empty() {
        anyhow::bail!(
            "{}: [detection.site]: {}",
            path.display(),
            problems.join("; ")
        );
    }
    Ok(Some(detection))
}

/// The rules a server with `detection` runs, and how to name them.
fn server_rules(detection: &DetectionConfig) -> (String, Result<Vec<Rule>, LoadErrors>) {
    let mut parts = Vec::new();
    if detection.builtin_rules {
        parts.push("the built-in pack".to_string());
    }
    if let Some(dir) = &detection.rules_dir {
        parts.push(dir.display().to_string());
    }
    let what = if parts.is_empty() {
        "no rules (builtin_rules = false and no rules_dir)".to_string()
    } else {
        parts.join(" and ")
    };
    (what, rule_set(detection))
}

/// One line per rule: `ok` when it runs, `off` with the reason when not.
fn describe(rule: &Rule) -> String {
    let line = format!(
        "{:<32} {:<9} {:<8} {}",
        rule.id,
        rule.kind.name(),
        rule.severity.as_str(),
        rule.title
    );
    let mut text = match (&rule.inactive, rule.enabled) {
        (_, false) => format!("off  {line}\n       disabled (enabled: false)"),
        (Some(why), true) => format!("off  {line}\n       inactive: {why}"),
        (None, true) => format!("ok   {line}"),
    };
    if !rule.exceptions.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let ids: Vec<String> = rule
            .exceptions
            .iter()
            .map(|e| match e.expires_unix_nano {
                None => e.id.clone(),
                Some(at) => {
                    let when = tracewarden_model::time::format_rfc3339(at);
                    let state = if e.applies_at(now) {
                        "until"
                    } else {
                        "expired"
                    };
                    format!("{} ({state} {when})", e.id)
                }
            })
            .collect();
        text.push_str(&format!("\n       except: {}", ids.join(", ")));
    }
    text
}
