//! `tracewarden rules test [DIR]` and `tracewarden rules lint [DIR]`: rules
//! tested like code, as Falco's and the Core Rule Set's are.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tracewarden_detect::rule::{Rule, builtin_rules, load_dir, test_dir};

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Run every rule of DIR against its fixtures (DIR/fixtures/<rule id>.json):
    /// expected detections and expected silence; a pass/fail line per case.
    Test {
        /// The rule directory [default: ./rules, the built-in pack's source].
        #[arg(value_name = "DIR", default_value = "rules")]
        dir: PathBuf,
    },
    /// Check rule files without running them: every error with file, line and
    /// column. Without DIR, the built-in pack embedded in this binary.
    Lint {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RulesCommand::Test { dir } => {
            if !dir.is_dir() {
                anyhow::bail!("`{}` is not a directory of rule files", dir.display());
            }
            let report = test_dir(&dir);
            println!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RulesCommand::Lint { dir } => {
            let (what, loaded) = match &dir {
                Some(dir) => (dir.display().to_string(), load_dir(dir)),
                None => ("the built-in pack".to_string(), builtin_rules()),
            };
            match loaded {
                Ok(rules) => {
                    for rule in &rules {
                        println!("ok  {}", describe(rule));
                    }
                    println!("{}: {} rules, no errors", what, rules.len());
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

fn describe(rule: &Rule) -> String {
    format!(
        "{:<32} {:<9} {:<8} {}",
        rule.id,
        rule.kind.name(),
        rule.severity.as_str(),
        rule.title
    )
}
