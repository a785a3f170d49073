//! `tracewarden bench`: load generators that reproduce the figures in
//! docs/BENCHMARKS.md against a real server.
//!
//! `bench ingest` drives the OTLP receivers the way a fleet of exporters
//! would, and measures what the server durably acknowledges:
//!
//! ```text
//!  args ──> workload (pre-encoded OTLP batches, built before the clock starts)
//!             │
//!             ▼
//!  driver: N workers, one connection each ──> grpc | http ──> server
//!             │                                               (or a child
//!             ▼                                                `serve` with
//!  report: spans/s, MB/s, latency percentiles, 429s, CPU       --spawn-server)
//! ```
//!
//! The client is built to stay out of the way of the server it measures on
//! a shared machine: request bodies are encoded (and gzipped) once, before
//! the timed run; per request the client only copies a body and rewrites its
//! trace ids in place, so the server never sees the same trace twice.

// `args` and `driver` (the OTLP exporters) are shared with `tracewarden demo`.
pub(crate) mod args;
pub(crate) mod driver;
mod grpc;
pub(crate) mod http;
mod ingest;
mod report;
mod spawn;
mod store;
#[cfg(test)]
mod tests;
mod usage;
mod workload;

use clap::{Args, Subcommand};

pub use args::IngestArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Send pre-encoded OTLP trace batches over N connections for a fixed time
    /// and report the spans per second the server durably acknowledged.
    Ingest(IngestArgs),
    /// Build a large data directory without the network (realistic traces
    /// over 30 days, an actor to investigate) for the investigation and
    /// compliance benchmarks.
    Store(store::StoreArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Ingest(args) => ingest::run(args),
        BenchCommand::Store(args) => store::run(args),
    }
}
