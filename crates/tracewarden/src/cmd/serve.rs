//! `tracewarden serve`: the server on its defaults, a config file, or flags.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tracewarden_server::{Config, Server};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file (see tracewarden.example.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the write-ahead log and the store live [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long, value_name = "HOST:PORT")]
    pub otlp_grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address [default: 127.0.0.1:4318].
    #[arg(long, value_name = "HOST:PORT")]
    pub otlp_http: Option<SocketAddr>,
    /// Zipkin v2 listen address [default: 127.0.0.1:9411].
    #[arg(long, value_name = "HOST:PORT")]
    pub zipkin: Option<SocketAddr>,
    /// API listen address [default: 127.0.0.1:7700].
    #[arg(long, value_name = "HOST:PORT")]
    pub api: Option<SocketAddr>,
    /// Start without API keys even on non-loopback addresses (`[auth]
    /// allow_unauthenticated = true`): anyone who reaches the listeners can
    /// read every trace. Logged loudly.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve plain text even on non-loopback addresses (`[tls]
    /// allow_plaintext = true`), e.g. behind a TLS-terminating proxy. Logged loudly.
    #[arg(long)]
    pub insecure_no_tls: bool,
    /// TLS certificate chain (PEM) for every listener; needs --tls-key (`[tls] cert`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM) (`[tls] key`).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// The configuration: defaults, then the file, then the flags.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        let listen = &mut config.listen;
        for (flag, slot) in [
            (self.otlp_grpc, &mut listen.otlp_grpc),
            (self.otlp_http, &mut listen.otlp_http),
            (self.zipkin, &mut listen.zipkin),
            (self.api, &mut listen.api),
        ] {
            if let Some(addr) = flag {
                *slot = addr;
            }
        }
        if self.insecure_no_auth {
            config.auth.allow_unauthenticated = true;
        }
        if self.insecure_no_tls {
            config.tls.allow_plaintext = true;
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls.cert = Some(cert.clone());
            config.tls.key = Some(key.clone());
        }
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging("info");
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tracewarden")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config.clone()).await?;
    print_listening(server.addrs(), &config);
    server.run(shutdown_signal()).await?;
    println!("tracewarden stopped");
    Ok(())
}

/// Printed on stdout, one line per listener, so scripts and tests can read them.
pub(crate) fn print_listening(addrs: tracewarden_server::BoundAddrs, config: &Config) {
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    println!(
        "tracewarden {} listening{}:",
        env!("CARGO_PKG_VERSION"),
        if config.tls.enabled() {
            " (TLS only)"
        } else {
            ""
        }
    );
    println!(
        "  otlp-grpc  {}  (OTLP/gRPC: TraceService, LogsService)",
        addrs.otlp_grpc
    );
    println!(
        "  otlp-http  {scheme}://{}  (POST /v1/traces, /v1/logs)",
        addrs.otlp_http
    );
    println!(
        "  zipkin     {scheme}://{}  (POST /api/v2/spans)",
        addrs.zipkin
    );
    println!(
        "  api        {scheme}://{}  (/api/v1/search, /api/v1/traces/{{id}}, /api/v1/detections, Tempo API, /healthz)",
        addrs.api
    );
    println!("  data-dir   {}", config.data_dir.display());
}

/// Logs to stderr at `default` level unless `TRACEWARDEN_LOG` says otherwise.
pub(crate) fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRACEWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
