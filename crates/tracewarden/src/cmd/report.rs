//! `tracewarden report compliance`: a running server's compliance report
//! (`GET /api/v1/reports/compliance`) as JSON, CSV or HTML, to stdout or a
//! file. The server sends the JSON; CSV and HTML are rendered here by the
//! same code the server uses for `format=csv|html`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use http::Method;
use tracewarden_server::compliance::{ComplianceReport, render};

use super::client;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub report: Report,
}

#[derive(Subcommand, Debug)]
pub enum Report {
    /// Who and which services accessed personal data, flows to third
    /// parties, policy violations and the store's integrity, for a period.
    Compliance(ComplianceArgs),
}

#[derive(Args, Debug)]
pub struct ComplianceArgs {
    /// How far back the period reaches (e.g. 30d, 24h); ignored with --start.
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// Start of the period: Unix seconds or RFC 3339 (overrides --since).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the period: Unix seconds or RFC 3339 [default: now].
    #[arg(long)]
    pub end: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The server's API address.
    #[arg(long, default_value = client::DEFAULT_SERVER)]
    pub server: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The report's model, as the API sends it.
    Json,
    /// One table of accesses: user, service, classification, count, first, last.
    Csv,
    /// One self-contained printable document.
    Html,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    match args.report {
        Report::Compliance(args) => compliance(args),
    }
}

fn compliance(args: ComplianceArgs) -> anyhow::Result<()> {
    let since = args.start.is_none().then_some(args.since.as_str());
    let query = client::query_string([
        ("start", args.start.as_deref()),
        ("since", since),
        ("end", args.end.as_deref()),
        ("format", Some("json")),
    ]);
    let json = client::request(
        &args.server,
        Method::GET,
        &format!("/api/v1/reports/compliance{query}"),
        None,
    )?;
    let text = match args.format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json)?;
            text.push('\n');
            text
        }
        Format::Csv | Format::Html => {
            let report: ComplianceReport = serde_json::from_value(json)
                .context("the server's report is not in the expected shape")?;
            if args.format == Format::Csv {
                render::csv(&report)
            } else {
                render::html(&report)
            }
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to `{}`", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write the report to stdout")?,
    }
    Ok(())
}
