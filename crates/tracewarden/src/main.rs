//! The `tracewarden` command line: `main` parses the flags and hands each
//! mode to its module in `cmd/`. Errors are printed once, with their causes.

mod alloc;
mod cmd;
mod pipe;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Security analytics on distributed traces.
#[derive(Parser)]
#[command(name = "tracewarden", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// API key for the commands that talk to a running server (query,
    /// alerts, silence, block, report, rules reload, bench); default: the
    /// environment variable TRACEWARDEN_API_KEY (not shown in `ps`).
    #[arg(long, global = true, value_name = "KEY")]
    api_key: Option<String>,
    /// CA certificate (PEM) to trust for an https:// --server [env: TRACEWARDEN_CA_CERT].
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a server that requires mutual TLS [env: TRACEWARDEN_CLIENT_CERT].
    #[arg(long, global = true, value_name = "FILE", requires = "client_key")]
    client_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM) [env: TRACEWARDEN_CLIENT_KEY].
    #[arg(long, global = true, value_name = "FILE", requires = "client_cert")]
    client_key: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Receive spans and logs (OTLP gRPC/HTTP, Zipkin), store them durably, serve the API.
    Serve(cmd::serve::ServeArgs),
    /// The geo-weather system under attack: a server and a simulator, alerts within a minute.
    Demo(cmd::demo::DemoArgs),
    /// Load generators that reproduce the figures in docs/BENCHMARKS.md.
    Bench(cmd::bench::BenchArgs),
    /// Search stored traces with TraceQL (a running server, or --data-dir).
    Query(cmd::query::QueryArgs),
    /// An actor's requests in time order, with a summary (a running server).
    Investigate(cmd::investigate::InvestigateArgs),
    /// List, show and acknowledge a running server's alerts.
    Alerts(cmd::alerts::AlertsArgs),
    /// Add, list and expire a running server's silences.
    Silence(cmd::silence::SilenceArgs),
    /// Test and lint detection rules.
    Rules(cmd::rules::RulesArgs),
    /// Reports over a running server's store (`report compliance`).
    Report(cmd::report::ReportArgs),
    /// Check stored segments against their signed manifest chain (exit 0 only if intact).
    Verify(cmd::verify::VerifyArgs),
    /// Manage the ed25519 key that signs manifests.
    SigningKey(cmd::signing_key::SigningKeyArgs),
    /// Manage the key that encrypts the WAL and segments at rest.
    EncryptionKey(cmd::encryption_key::EncryptionKeyArgs),
    /// Run the rule pack over exported OTLP or Zipkin files, without a server.
    Scan(cmd::scan::ScanArgs),
    /// Block or unblock an address, a user or a token on a running server.
    Block(cmd::block::BlockArgs),
    /// Create, list and revoke API keys (offline, in the data directory).
    Keys(cmd::keys::KeysArgs),
    /// Write certificates for trying TLS and mutual TLS (`certs dev`).
    Certs(cmd::certs::CertsArgs),
}

fn main() -> ExitCode {
    alloc::configure();
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Demo(_) | Command::Bench(_)
    ) {
        pipe::end_quietly_when_stdout_closes();
    }
    cmd::client::set_api_key(cli.api_key);
    cmd::client::ClientTls {
        ca_cert: cli.ca_cert,
        client_cert: cli.client_cert,
        client_key: cli.client_key,
    }
    .install();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => cmd::demo::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => cmd::bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Query(args) => cmd::query::run(args).map(|()| ExitCode::SUCCESS),
        Command::Rules(args) => cmd::rules::run(args),
        Command::Investigate(args) => cmd::investigate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Alerts(args) => cmd::alerts::run(args).map(|()| ExitCode::SUCCESS),
        Command::Silence(args) => cmd::silence::run(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => cmd::report::run(args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => cmd::verify::run(args),
        Command::SigningKey(args) => cmd::signing_key::run(args).map(|()| ExitCode::SUCCESS),
        Command::EncryptionKey(args) => cmd::encryption_key::run(args).map(|()| ExitCode::SUCCESS),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Block(args) => cmd::block::run(args).map(|()| ExitCode::SUCCESS),
        Command::Keys(args) => cmd::keys::run(args).map(|()| ExitCode::SUCCESS),
        Command::Certs(args) => cmd::certs::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
