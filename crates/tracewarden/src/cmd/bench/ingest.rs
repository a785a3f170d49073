//! `bench ingest`, start to end: build the workload, start the server if
//! asked, connect, drive, measure, report.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::args::{IngestArgs, Protocol, Target};
use super::driver::{self, Exporter};
use super::report::{Costs, Report, Setting};
use super::spawn::SpawnedServer;
use super::usage::Process;
use super::workload::{Framing, Workload, WorkloadSpec};

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let endpoint = args.target()?;
    let protocol = endpoint
        .as_ref()
        .map(|target| target.protocol)
        .or(args.protocol)
        .unwrap_or(Protocol::Grpc);

    // Encoding happens before the runtime exists and before the clock starts.
    let started = Instant::now();
    let workload = Workload::build(WorkloadSpec {
        batch_spans: args.batch_spans as usize,
        batches: args.batches as usize,
        gzip: args.gzip,
        seed: args.seed,
        calls: args.calls,
        framing: match protocol {
            Protocol::Grpc => Framing::GrpcLengthPrefixed,
            Protocol::Http => Framing::Bare,
        },
    })
    .context("failed to build the workload")?;
    eprintln!(
        "pre-encoded {} batches of {} spans in {:.2} s: {:.0} B/span protobuf, {:.0} B/span as sent",
        workload.templates.len(),
        args.batch_spans,
        started.elapsed().as_secs_f64(),
        workload.protobuf_bytes_per_span(),
        workload.body_bytes_per_span(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.client_threads))
        .enable_all()
        .thread_name("bench-ingest")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(ingest(args, endpoint, protocol, workload))
}

async fn ingest(
    args: IngestArgs,
    endpoint: Option<Target>,
    protocol: Protocol,
    workload: Workload,
) -> anyhow::Result<()> {
    let server = if args.spawn_server {
        let server = SpawnedServer::start(args.server_config.as_deref(), args.temp_dir.as_deref())
            .await
            .context("failed to start the server")?;
        eprintln!("started `tracewarden serve` (pid {}), ready", server.pid());
        Some(server)
    } else {
        None
    };
    let target = match (endpoint, &server) {
        (Some(target), _) => target,
        (None, Some(server)) => Target::local(protocol, server.addr(protocol))?,
        (None, None) => anyhow::bail!("give --endpoint URL or --spawn-server"),
    };

    let mut exporters = Vec::with_capacity(usize::from(args.connections));
    for _ in 0..args.connections {
        let exporter = Exporter::connect(&target, args.gzip)
            .await
            .with_context(|| format!("failed to connect to {target}"))?;
        exporters.push(exporter);
    }
    eprintln!(
        "sending to {target} over {} connection(s) for {:?}{}",
        args.connections,
        args.duration,
        args.rate
            .map(|rate| format!(" at {rate} spans/s"))
            .unwrap_or_default()
    );

    let server_process = server.as_ref().map(|server| Process::Child(server.pid()));
    let client_before = Process::This.cpu_time();
    let server_before = server_process.and_then(Process::cpu_time);
    let setting = Setting {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        target: target.to_string(),
        protocol,
        connections: args.connections,
        gzip: args.gzip,
        batch_spans: args.batch_spans,
        batches: args.batches,
        seed: args.seed,
        duration: args.duration,
        rate: args.rate,
        protobuf_bytes_per_span: workload.protobuf_bytes_per_span(),
        body_bytes_per_span: workload.body_bytes_per_span(),
    };
    let pace = args.pace();
    let run = driver::drive(
        exporters,
        Arc::new(workload),
        args.seed,
        args.duration,
        pace,
    )
    .await?;
    let costs = Costs {
        client_cpu: Process::This
            .cpu_time()
            .zip(client_before)
            .map(|(after, before)| after.saturating_sub(before)),
        server_cpu: server_process
            .and_then(Process::cpu_time)
            .zip(server_before)
            .map(|(after, before)| after.saturating_sub(before)),
        server_peak_rss_bytes: server_process.and_then(Process::peak_rss_bytes),
        server_spawned: server.is_some(),
    };
    if let Some(server) = server {
        server.stop()?;
    }

    let report = Report::new(setting, run, costs);
    print!("{report}");
    if let Some(path) = &args.json_out {
        report.write_json(path)?;
    }
    Ok(())
}
