//! `tracewarden demo`: the source article's geo-weather system under
//! attack, in one command. Starts the server (as `serve` would, with the
//! demo system's site facts) and a simulator that sends the system's
//! spans and logs over OTLP; prints each attack, progress, and each alert
//! as the server raises it. With `--endpoint` the simulator alone sends to
//! a server that is already running.
//!
//! ```text
//!  simulator ── OTLP gRPC/HTTP (bench's exporters) ──> server ──> rules ──> alerts
//!     └─ ATTACK lines                     watcher <── GET /api/v1/alerts ──┘
//! ```

mod otlp;
mod scenario;
mod simulator;
mod site;
mod system;
#[cfg(test)]
mod tests;
mod watch;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tokio::sync::watch as signal;

use super::bench::args::{Protocol, Target, parse_duration};
use super::bench::http::get_status;
use super::client::DEFAULT_SERVER;
use super::serve::{ServeArgs, init_logging, print_listening, shutdown_signal};
use scenario::{SCENARIOS, Scenario};
use simulator::{Run, Settings, Simulator, stamp};

/// The warm-up that gives ddos-burst its baseline: its 30 buckets of 10 s,
/// and one more minute so the first bucket's partial count is long folded.
const DDOS_WARM_UP: Duration = Duration::from_secs(6 * 60);
/// After the last attack, how long to keep reading alerts: whole-trace
/// rules wait for the trace idle time, then the alert is listed.
const SETTLE: Duration = Duration::from_secs(4);

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Send to a tracewarden already running instead of starting one: its
    /// OTLP endpoint, grpc://HOST:4317 or http://HOST:4317 (gRPC), or
    /// http://HOST:4318 (HTTP).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// With --endpoint: the running server's API, to follow its alerts.
    #[arg(long, value_name = "URL", requires = "endpoint", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Benign requests per second (each is 1 to 3 services' spans).
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub rate: f64,
    /// How long to send live traffic ("90s", "5m"); default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Attacks to play, by name (repeat the flag or separate with commas);
    /// default: all of them, in turn.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub scenario: Vec<String>,
    /// List the attacks and the rules they trigger, and exit.
    #[arg(long)]
    pub list_scenarios: bool,
    /// Seed of the simulated traffic: the same seed sends the same traffic
    /// (ids, users, requests); default: a random one, printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Benign users only: no attack (and no alert is expected).
    #[arg(long, conflicts_with = "scenario")]
    pub no_attacks: bool,
    /// Time between two attacks.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub every: Duration,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 200_000.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a rate above 0 and up to 200000 requests per second"
        )),
    }
}

impl DemoArgs {
    /// The attacks to play, checked.
    fn scenarios(&self) -> anyhow::Result<Vec<&'static Scenario>> {
        if self.no_attacks {
            return Ok(Vec::new());
        }
        if self.scenario.is_empty() {
            return Ok(SCENARIOS.iter().collect());
        }
        self.scenario
            .iter()
            .map(|name| {
                scenario::find(name.trim()).with_context(|| {
                    format!(
                        "unknown scenario `{name}` (expected one of: {}; see --list-scenarios)",
                        SCENARIOS.map(|s| s.name).join(", ")
                    )
                })
            })
            .collect()
    }

    fn serve_flags_given(&self) -> bool {
        let s = &self.serve;
        s.config.is_some()
            || s.data_dir.is_some()
            || s.otlp_grpc.is_some()
            || s.otlp_http.is_some()
            || s.zipkin.is_some()
            || s.api.is_some()
    }

    /// `--endpoint` as a target; `http://` on the gRPC port 4317 is gRPC,
    /// as OTLP exporters configured with that endpoint would speak.
    fn target(&self, endpoint: &str) -> anyhow::Result<Target> {
        let grpc_port = endpoint
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| uri.port_u16())
            == Some(4317);
        let protocol = grpc_port.then_some(Protocol::Grpc);
        Ok(Target::parse(endpoint, protocol)?)
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.list_scenarios {
        print!("{}", scenario_table());
        return Ok(());
    }
    let scenarios = args.scenarios()?;
    if args.every.is_zero() {
        bail!("--every must be longer than zero");
    }
    if args.duration.is_some_and(|d| d.is_zero()) {
        bail!("--duration must be longer than zero");
    }
    if args.endpoint.is_some() && args.serve_flags_given() {
        bail!(
            "--endpoint sends to a running server: the server flags (--config, --data-dir, \
             --otlp-grpc, --otlp-http, --zipkin, --api) do not apply"
        );
    }
    // The demo's terminal is for attacks and alerts (which it prints
    // itself): the server logs only warnings, detections not among them.
    init_logging("warn,tracewarden_server::detection=error");
    let seed = args.seed.unwrap_or_else(simulator::random_seed);
    let warm_up = if scenarios.iter().any(|s| s.name == "ddos") {
        DDOS_WARM_UP
    } else {
        Duration::ZERO
    };
    let settings = Settings {
        rate: args.rate,
        seed,
        scenarios,
        every: args.every,
        warm_up,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tracewarden-demo")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(demo(args, settings))
}

async fn demo(args: DemoArgs, settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let (stop_tx, stop_rx) = signal::channel(false);
    // The server stops after the last alerts are read.
    let (server_stop, server_stopped) = signal::channel(false);
    // Ctrl-C or SIGTERM stops the simulator, then the server.
    let ctrl_c = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = ctrl_c.send(true);
    });
    let mut server_task = None;
    let mut _temp_dir = None;
    let (target, api) = match &args.endpoint {
        Some(endpoint) => {
            let target = args.target(endpoint)?;
            println!("sending to the tracewarden at {target}; its config needs these facts:\n");
            println!("{}", site::SITE_TOML);
            println!(
                "(whole-trace rules answer after its [detection] trace_idle, 5s by default)\n"
            );
            (target, args.server.clone())
        }
        None => {
            let mut config = args.serve.config()?;
            if args.serve.data_dir.is_none() {
                // A fresh store each run, removed at exit: the demo's
                // attacks should not land in ./data.
                let dir = tempfile::Builder::new()
                    .prefix("tracewarden-demo-")
                    .tempdir()
                    .context("cannot create a temporary data directory")?;
                config.data_dir = dir.path().to_path_buf();
                _temp_dir = Some(dir);
            }
            site::apply(&mut config)?;
            let server = tracewarden_server::Server::bind(config.clone()).await?;
            let addrs = server.addrs();
            print_listening(addrs, &config);
            println!(
                "demo site facts ([detection.site]) and trace_idle = {}s applied",
                site::TRACE_IDLE.as_secs()
            );
            let mut stopped = server_stopped.clone();
            server_task = Some(tokio::spawn(server.run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })));
            wait_ready(addrs.api).await?;
            let target = Target::local(Protocol::Grpc, addrs.otlp_grpc)?;
            (target, api_url(addrs.api))
        }
    };
    println!(
        "simulating the geo-weather system: {} benign requests/s from {} users, seed {}{}",
        settings.rate,
        settings.user_count(),
        settings.seed,
        if settings.scenarios.is_empty() {
            ", no attacks".to_string()
        } else {
            format!(", an attack every {}s", settings.every.as_secs_f64())
        }
    );
    let watcher = watch::Watcher::start(api.clone(), started)?;
    let run = Run {
        target,
        duration: args.duration,
        started,
    };
    let simulator = Simulator::new(settings);
    let outcome = simulator::drive(simulator, &run, stop_rx.clone()).await;
    if outcome.is_ok() && !*stop_rx.borrow() {
        // Let the last traces complete and their alerts be listed.
        let mut stop = stop_rx.clone();
        tokio::select! {
            () = tokio::time::sleep(SETTLE) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    let seen = tokio::task::spawn_blocking(move || watcher.finish())
        .await
        .unwrap_or_default();
    let _ = server_stop.send(true);
    if let Some(task) = server_task {
        match task.await {
            Ok(result) => result?,
            Err(e) => bail!("the server task failed: {e}"),
        }
    }
    let (sent, launched) = outcome?;
    println!(
        "{} done: sent {} requests, {} spans, {} log records; {} alerts",
        stamp(started),
        sent.requests,
        sent.spans,
        sent.logs,
        seen.len()
    );
    print!("{}", summary(&launched, &seen));
    Ok(())
}

/// For each attack played: its rules, and the alert that answered each.
fn summary(launched: &[simulator::Launched], seen: &[watch::Seen]) -> String {
    let mut out = String::new();
    for attack in launched {
        for rule in attack.scenario.rules {
            let alert = seen
                .iter()
                .find(|a| a.rule == *rule && a.actor.values().any(|v| names(v, &attack.actor)));
            out.push_str(&match alert {
                Some(alert) => format!(
                    "  ok       {:<21} {:<28} alert {}\n",
                    attack.scenario.name, rule, alert.fingerprint
                ),
                None => format!(
                    "  missing  {:<21} {:<28} no alert for {}\n",
                    attack.scenario.name, rule, attack.actor
                ),
            });
        }
    }
    out
}

/// Whether an alert's key value names `actor`: the value itself, or a
/// one-element array of it (captured headers are arrays).
fn names(value: &str, actor: &str) -> bool {
    value == actor || value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) == Some(actor)
}

fn scenario_table() -> String {
    let mut out = String::new();
    for s in &SCENARIOS {
        out.push_str(&format!(
            "{:<21} {}\n{:<21} rules: {}\n",
            s.name,
            s.summary,
            "",
            s.rules.join(", ")
        ));
    }
    out
}

fn api_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Waits until the server has replayed its WAL and takes exports.
async fn wait_ready(api: SocketAddr) -> anyhow::Result<()> {
    let authority = http::uri::Authority::try_from(api.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = get_status(&authority, "/readyz").await
            && status.is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server did not become ready within a minute");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
