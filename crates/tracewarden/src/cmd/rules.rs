//! `tracewarden rules test [DIR]` and `tracewarden rules lint [DIR]`: rules
//! tested like code, as Falco's and the Core Rule Set's are. `--config`
//! takes the site facts (`[detection.site]`) from a server config file, so
//! the rules are checked as that deployment will run them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tracewarden_detect::rule::{
    Rule, Site, builtin_rules_for, load_dir_for, rule_files, test_dir_for,
};
use tracewarden_server::Config;

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
        /// The rule directory [default: ./rules, the built-in pack's source].
        #[arg(value_name = "DIR", default_value = "rules")]
        dir: PathBuf,
        /// Take the site facts from this tracewarden.toml's [detection.site]
        /// [default: the built-in defaults].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check rule files without running them: every error with file, line and
    /// column, and which rules are inactive and why. Without DIR, the
    /// built-in pack embedded in this binary.
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
            let site = site(config.as_deref())?;
            let report = test_dir_for(&dir, &site);
            println!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RulesCommand::Lint { dir, config } => {
            let site = site(config.as_deref())?;
            let (what, loaded) = match &dir {
                Some(dir) => (dir.display().to_string(), load_dir_for(dir, &site)),
                None => ("the built-in pack".to_string(), builtin_rules_for(&site)),
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
                    println!(
                        "{}: {} rules ({} running, {} off), no errors",
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
                    println!("{}: {} errors", what, errors.0.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// The site facts: the defaults, or a config file's `[detection.site]`,
/// checked as the server checks them at start.
fn site(config: Option<&Path>) -> anyhow::Result<Site> {
    let Some(path) = config else {
        return Ok(Site::default());
    };
    let site = Config::from_file(path)?.detection.site;
    let problems = site.validate();
    if !problems.is_empty() {
        anyhow::bail!(
            "{}: [detection.site]: {}",
            path.display(),
            problems.join("; ")
        );
    }
    Ok(site)
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
    match (&rule.inactive, rule.enabled) {
        (_, false) => format!("off  {line}\n       disabled (enabled: false)"),
        (Some(why), true) => format!("off  {line}\n       inactive: {why}"),
        (None, true) => format!("ok   {line}"),
    }
}
