//! `tracewarden verify`: checks the segments of a data directory against
//! their manifest chain (hashes, links, signatures, retention records), and
//! the hash chain of its audit log (`audit/`).
//!
//! Exit status 0 only when everything verifies; 1 when something does not,
//! or verification could not run (a missing data directory, a bad key file).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tracewarden_server::auth::audit;
use tracewarden_store::integrity::{VerifyReport, load_verifying_key, verify};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The data directory to verify (its `segments/`) [default: ./data].
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Public key file (64 hex characters) to check signatures with; without
    /// it signatures are not checked, and someone who can write the
    /// directory could recompute every hash.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per finding, then a summary line.
    Text,
    /// One JSON object: the counts and every finding with its message.
    Json,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = match &args.public_key {
        Some(path) => Some(load_verifying_key(path)?),
        None => None,
    };
    let report = verify(&args.data_dir, key.as_ref())
        .with_context(|| format!("cannot verify `{}`", args.data_dir.display()))?;
    let audit_dir = args.data_dir.join(audit::AUDIT_DIR);
    let audit = audit::verify(&audit_dir)
        .with_context(|| format!("cannot verify `{}`", audit_dir.display()))?;
    let output = match args.format {
        Format::Text => text(&report) + &audit_text(&audit),
        Format::Json => json(&report, &audit)?,
    };
    print!("{output}");
    Ok(if report.ok && audit.failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Findings first (`FAIL` or `info`, one per line), then the verdict.
fn text(report: &VerifyReport) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let severity = if finding.is_failure() { "FAIL" } else { "info" };
        let _ = writeln!(out, "{severity}: {finding}");
    }
    let failures = report.failures().count();
    let counts = format!(
        "{} segments, {} files ({} bytes), {} retention records",
        report.segments_checked,
        report.files_checked,
        report.bytes_checked,
        report.retention_entries
    );
    if report.ok {
        let _ = writeln!(out, "OK: {counts} verified");
    } else {
        let plural = if failures == 1 { "" } else { "s" };
        let _ = writeln!(out, "FAILED: {failures} problem{plural} in {counts}");
    }
    match &report.head {
        Some((segment_id, sha256)) => {
            let _ = writeln!(
                out,
                "chain head: segment {segment_id}, manifest sha256 {sha256}"
            );
        }
        None => {
            let _ = writeln!(out, "chain head: none");
        }
    }
    match &report.key_id {
        Some(id) => {
            let _ = writeln!(out, "signatures: checked with key {id}");
        }
        None => {
            let _ = writeln!(out, "signatures: not checked (no --public-key given)");
        }
    }
    out
}

/// The audit log's verdict, after the store's.
fn audit_text(audit: &audit::VerifyReport) -> String {
    let mut out = String::new();
    if !audit.present {
        let _ = writeln!(out, "audit log: none");
        return out;
    }
    if let Some(failure) = &audit.failure {
        let _ = writeln!(out, "FAIL: audit log: {failure}");
        let _ = writeln!(
            out,
            "audit log: FAILED after {} intact entries",
            audit.entries
        );
        return out;
    }
    if audit.torn_tail {
        let _ = writeln!(
            out,
            "info: audit log: a torn last line (a crash mid-write; cut off at the next start)"
        );
    }
    let _ = writeln!(
        out,
        "audit log: OK: {} entries chained, head sha256 {}",
        audit.entries,
        audit.head.as_deref().unwrap_or("none")
    );
    if audit.first_seq > 1 {
        let _ = writeln!(
            out,
            "info: audit log: kept from entry {} (older rotated files removed by [auth.audit] keep_files)",
            audit.first_seq
        );
    }
    out
}

fn json(report: &VerifyReport, audit: &audit::VerifyReport) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(report)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("audit".into(), serde_json::to_value(audit)?);
        let ok = report.ok && audit.failure.is_none();
        object.insert("ok".into(), ok.into());
    }
    // Each finding gets its message and severity next to its fields.
    let messages = report
        .findings
        .iter()
        .map(|f| (f.to_string(), f.is_failure()));
    if let Some(findings) = value.get_mut("findings").and_then(|f| f.as_array_mut()) {
        for (finding, (message, failure)) in findings.iter_mut().zip(messages) {
            if let Some(object) = finding.as_object_mut() {
                object.insert("failure".into(), failure.into());
                object.insert("message".into(), message.into());
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}
