//! The tracewarden server: binds the receivers and the API, opens the store
//! (replaying the WAL), and wires receivers -> pipeline -> store.
//!
//! ```text
//!  OTLP gRPC :4317 ─┐
//!  OTLP HTTP :4318 ─┼─> decode ─> Pipeline (normalise, redact) ─> Store::append (WAL fsync) ─> ack
//!  Zipkin    :9411 ─┘                                         └─> hot tier
//!  API       :7700 ─> /api/v1/traces/{id}, /healthz, /readyz ─┘
//!
//!  acknowledged batch ─> Detector (thread) ─> DetectionSink ─> AlertService (thread) ─> receivers
//!  API ─> /api/v1/alerts, /api/v1/silences ─┘
//! ```
//!
//! Every listener passes [`auth::Guard`] first (API keys and roles; the
//! API also rate limits and audits), and [`exposure::check`] refuses to
//! open a non-loopback listener without protection.
//!
//! Start-up order matters for "ready only after WAL replay": every listener
//! is bound first (so a port clash fails at once and the probes answer), then
//! the WAL is replayed on a blocking thread; until it is done receivers
//! answer 503 / `UNAVAILABLE` and `/readyz` answers 503.
//!
//! With a `[tls]` certificate every listener serves TLS only: [`tls`] wraps
//! each TCP listener in a [`tls::TlsListener`] (concurrent handshakes, a
//! timeout each) that axum and tonic serve as they would plain TCP.

pub mod alerting;
pub mod api;
pub mod auth;
pub mod blocks;
mod checkpoint;
pub mod compliance;
pub mod config;
pub mod detection;
pub mod exposure;
pub mod graph;
mod latency;
pub mod metrics;
pub mod parallel;
pub mod payloads;
pub mod pipeline;
mod redaction;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracewarden_ingest::{BatchSink, IngestStats};
use tracewarden_store::{Store, StoreError};

pub use config::{Config, ConfigError, Listen};
pub use pipeline::Pipeline;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("failed to listen for {what} on {addr}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to open the store in `{path}`")]
    Store { path: String, source: StoreError },
    #[error("the {what} listener failed")]
    Serve {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the OTLP/gRPC listener failed")]
    Grpc(#[from] tonic::transport::Error),
    #[error("a server task failed: {0}")]
    Task(String),
    #[error("detection rules: {0}")]
    Rules(String),
    #[error("alerts: {0}")]
    Alerts(#[from] alerting::AlertingError),
    #[error("blocks: {0}")]
    Blocks(String),
    #[error(transparent)]
    Redaction(#[from] tracewarden_redact::RedactError),
    #[error(transparent)]
    Unprotected(#[from] exposure::Unprotected),
    #[error("auth: {0}")]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("payloads: {0}")]
    Payloads(String),
}

/// The store's encryption key, for the server's own state files, when
/// encryption at rest is configured.
fn encryption_key(
    config: &Config,
) -> Result<Option<Arc<tracewarden_store::EncryptionKey>>, ServerError> {
    match &config.store.encryption_key_file {
        None => Ok(None),
        Some(path) => tracewarden_store::EncryptionKey::from_file(path)
            .map(|key| Some(Arc::new(key)))
            .map_err(|source| ServerError::Store {
                path: path.display().to_string(),
                source,
            }),
    }
}

/// The addresses actually bound (ports resolved when the config said 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundAddrs {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub zipkin: SocketAddr,
    pub api: SocketAddr,
}

/// A server whose listeners are bound but not yet serving.
pub struct Server {
    config: Config,
    addrs: BoundAddrs,
    listeners: [TcpListener; 4],
    pipeline: Arc<Pipeline>,
    stats: Arc<IngestStats>,
    blocks: Option<Arc<api::blocks::Gate>>,
    metrics: Arc<metrics::Metrics>,
    /// Applies rule blocks and sweeps expired ones while it lives.
    rule_blocks: Option<Arc<blocks::RuleBlocks>>,
    /// Keys, rate limits and the audit log, on every listener.
    guard: Arc<auth::Guard>,
    /// The loaded `[tls]` section, when TLS is on.
    tls: Option<tls::ServerTls>,
    handshakes: Arc<tls::HandshakeCounts>,
}

impl Server {
    /// Binds every listener of the configuration.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        // Certificates first: a bad file stops the start before any port is taken.
        let tls = config.tls.load()?;
        // Before any port is bound: an unprotected public listener never opens.
        let keys = auth::KeyStore::new(&config.data_dir).load()?;
        let mode = exposure::check(&config, &keys)?;
        let grpc = bind("OTLP/gRPC", config.listen.otlp_grpc).await?;
        let http = bind("OTLP/HTTP", config.listen.otlp_http).await?;
        let zipkin = bind("Zipkin", config.listen.zipkin).await?;
        let api = bind("the API", config.listen.api).await?;
        let addrs = BoundAddrs {
            otlp_grpc: local_addr(&grpc, "OTLP/gRPC", config.listen.otlp_grpc)?,
            otlp_http: local_addr(&http, "OTLP/HTTP", config.listen.otlp_http)?,
            zipkin: local_addr(&zipkin, "Zipkin", config.listen.zipkin)?,
            api: local_addr(&api, "the API", config.listen.api)?,
        };
        let pipeline = Arc::new(Pipeline::new());
        if let Some(redactor) =
            tracewarden_redact::Redactor::from_config(&config.redaction, &config.data_dir)?
        {
            tracing::info!(rules = %redactor.rule_names().join(","), "redaction on");
            pipeline.set_redactor(Arc::new(redactor));
        } else {
            tracing::warn!("redaction off: secrets in spans and logs are stored as received");
        }
        let key = encryption_key(&config)?;
        if config.detection.enabled {
            let detector = Arc::new(
                detection::Detector::start(&config.detection, Some(&config.data_dir), key.clone())
                    .map_err(ServerError::Rules)?,
            );
            tracing::info!(rules = detector.rules().len(), "detection on");
            if let Some(interval) = config.detection.reload_interval {
                detection::watch_rules(&detector, interval).map_err(|e| {
                    ServerError::Task(format!("cannot start the rule watcher: {e}"))
                })?;
            }
            pipeline.set_detector(detector);
        }
        let payloads = start_payloads(&config, key.clone())?;
        let alerts = alerting::AlertService::start(&config, addrs.api, pipeline.detector(), key)?;
        pipeline.set_alerts(alerts);
        let (blocks, rule_blocks) = if config.blocks.enabled {
            let (gate, rule_blocks) = start_blocks(&config, &pipeline)?;
            (Some(gate), Some(rule_blocks))
        } else {
            (None, None)
        };
        let stats = Arc::new(IngestStats::default());
        let metrics = Arc::new(metrics::Metrics::new(stats.clone()));
        let guard = auth::Guard::start(&config.data_dir, mode, &config.auth)?;
        metrics.add_source(guard.clone());
        if let Some(alerts) = pipeline.alerts() {
            metrics.add_source(alerts.clone());
        }
        if let Some(redactor) = pipeline.redactor() {
            metrics.add_source(Arc::new(redaction::RedactionMetrics(redactor.clone())));
        }
        metrics.add_source(payloads.clone());
        pipeline.set_payloads(payloads);
        let handshakes = Arc::new(tls::HandshakeCounts::default());
        if tls.is_some() {
            metrics.add_source(handshakes.clone());
        }
        Ok(Server {
            config,
            addrs,
            listeners: [grpc, http, zipkin, api],
            pipeline,
            metrics,
            stats,
            blocks,
            rule_blocks,
            guard,
            tls,
            handshakes,
        })
    }

    pub fn addrs(&self) -> BoundAddrs {
        self.addrs
    }

    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.clone()
    }

    /// What `GET /metrics` reports: add a [`metrics::MetricsSource`] to it
    /// before [`Server::run`].
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets
    /// in-flight requests finish, and closes the store (draining the WAL writer).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            config,
            listeners,
            pipeline,
            stats,
            blocks,
            rule_blocks,
            metrics,
            guard,
            tls,
            handshakes,
            ..
        } = self;
        // The TLS configuration of a listener: the API's may ask for client
        // certificates differently from the receivers'.
        let tls_for = |api: bool| {
            tls.as_ref().map(|tls| HttpTls {
                config: if api {
                    tls.api.clone()
                } else {
                    tls.receivers.clone()
                },
                handshake_timeout: tls.handshake_timeout,
                counts: handshakes.clone(),
            })
        };
        // Certificates replaced on disk apply to new connections.
        if let (Some(tls), Some(interval)) = (&tls, config.tls.reload_interval) {
            tls::reload::watch(
                config.tls.clone(),
                &tls.receivers,
                &tls.api,
                interval,
                handshakes.clone(),
            )
            .map_err(|source| ServerError::Serve {
                what: "the TLS certificate watcher",
                source,
            })?;
        }
        let [grpc, http, zipkin, api] = listeners;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };

        let sink: Arc<dyn BatchSink> = pipeline.clone();
        let receiver_state = tracewarden_ingest::receiver::http::HttpReceiverState::new(
            sink.clone(),
            config.limits.clone(),
            stats.clone(),
        );
        let grpc_routes = tracewarden_ingest::receiver::grpc::otlp_grpc_routes(
            tracewarden_ingest::receiver::grpc::GrpcReceiverState::new(
                sink,
                config.limits.clone(),
                stats.clone(),
            ),
        );
        // Every listener gets the guard as a layer; ingest stays auth-agnostic.
        let ingest_gate = |listener| {
            axum::middleware::from_fn_with_state(
                auth::IngestGate {
                    guard: guard.clone(),
                    listener,
                },
                auth::ingest_layer,
            )
        };
        let grpc_routes = tonic::service::Routes::from(
            grpc_routes
                .into_axum_router()
                .layer(ingest_gate(auth::Listener::OtlpGrpc)),
        );

        let mut tasks = tokio::task::JoinSet::new();
        let api_router = api::router(api::ApiState {
            pipeline: pipeline.clone(),
            blocks,
            metrics,
            auth: Some(guard.clone()),
        })
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            auth::api_layer,
        ));
        tasks.spawn(serve_http(
            ("the API", "api"),
            api,
            tls_for(true),
            api_router,
            stopped(),
        ));
        tasks.spawn(serve_http(
            ("OTLP/HTTP", "otlp_http"),
            http,
            tls_for(false),
            tracewarden_ingest::receiver::http::otlp_router(receiver_state.clone())
                .layer(ingest_gate(auth::Listener::OtlpHttp)),
            stopped(),
        ));
        tasks.spawn(serve_http(
            ("Zipkin", "zipkin"),
            zipkin,
            tls_for(false),
            tracewarden_ingest::receiver::http::zipkin_router(receiver_state)
                .layer(ingest_gate(auth::Listener::Zipkin)),
            stopped(),
        ));
        let grpc_stop = stopped();
        let grpc_tls = tls_for(false);
        tasks.spawn(async move {
            let server = tonic::transport::Server::builder().add_routes(grpc_routes);
            match grpc_tls {
                // Without TCP_NODELAY, Nagle plus the client's delayed ACK held every
                // response ~40 ms (measured: 23k -> 296k spans/s on one connection).
                None => server
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
                        grpc_stop,
                    )
                    .await
                    .map_err(ServerError::from),
                Some(tls) => {
                    let listener = tls.start("OTLP/gRPC", "otlp_grpc", grpc)?;
                    server
                        .serve_with_incoming_shutdown(listener.into_grpc_incoming(), grpc_stop)
                        .await
                        .map_err(ServerError::from)
                }
            }
        });

        // Replay the WAL while the listeners already answer (503 until ready).
        let mut options = config.store_options();
        let started = Instant::now();
        // Detection catches up on the records its checkpoint lacks, and
        // takes back the buffered spans it named; the WAL keeps both.
        let detector = pipeline.detector().cloned();
        options.wal_hold = detector.as_ref().and_then(|d| d.wal_hold());
        let opened = tokio::task::spawn_blocking(move || match detector {
            Some(detector) => {
                let opened = Store::open_observed(
                    options,
                    &|lsn| detector.wants(lsn) || !detector.covers(lsn),
                    &mut |lsn, records| {
                        if detector.wants(lsn) {
                            detector.refill(lsn, records.clone());
                        } else if !detector.covers(lsn) {
                            detector.replay(lsn, records.clone());
                        }
                    },
                );
                detector.refilled();
                opened
            }
            None => Store::open(options),
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?;
        let (store, report) = opened.map_err(|source| ServerError::Store {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        tracing::info!(
            records = report.records,
            spans = report.spans,
            logs = report.logs,
            corrupt_records = report.corrupt_records,
            torn_tail_bytes = report.torn_tail_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "write-ahead log replayed; ready"
        );
        let store = Arc::new(store);
        pipeline.set_store(store.clone());

        tokio::select! {
            () = shutdown => {}
            Some(result) = tasks.join_next() => {
                // A listener stopped on its own: that is an error; stop the rest.
                let _ = stop_tx.send(true);
                store.close();
                return match result {
                    Ok(Ok(())) => Err(ServerError::Task("a listener stopped unexpectedly".to_string())),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(ServerError::Task(e.to_string())),
                };
            }
        }
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "listener stopped with an error during shutdown")
                }
                Err(e) => tracing::warn!(error = %e, "listener task failed during shutdown"),
            }
        }
        // The last detection checkpoint covers everything acknowledged.
        if let Some(detector) = pipeline.detector().cloned() {
            let _ = tokio::task::spawn_blocking(move || detector.shutdown()).await;
        }
        // After the detector: its last detections are alerted on and saved.
        if let Some(alerts) = pipeline.alerts().cloned() {
            alerts.shutdown().await;
        }
        drop(rule_blocks);
        // The last audit entries reach the disk.
        let closing = guard.clone();
        let _ = tokio::task::spawn_blocking(move || closing.close()).await;
        // Closing flushes the hot tier into a segment (seconds for a full
        // one): off the async workers.
        let closing = store.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || closing.close()).await {
            tracing::error!(%error, "closing the store failed");
        }
        Ok(())
    }
}

/// Opens the payload store in `data_dir/payloads` and starts its
/// retention sweep.
fn start_payloads(
    config: &Config,
    key: Option<Arc<tracewarden_store::EncryptionKey>>,
) -> Result<Arc<payloads::Payloads>, ServerError> {
    if config.payloads.max_bytes == 0 {
        return Err(ServerError::Payloads(
            "`[payloads] max_bytes` must be at least 1".to_string(),
        ));
    }
    let payloads = payloads::Payloads::open(&config.payloads, &config.data_dir, key)
        .map(Arc::new)
        .map_err(|e| ServerError::Payloads(e.to_string()))?;
    payloads::start_sweeper(&payloads)
        .map_err(|e| ServerError::Task(format!("cannot start the payload sweep: {e}")))?;
    Ok(payloads)
}

/// Opens the blocklist in `data_dir/blocks` and starts the thread that
/// applies rule blocks (as a sink of the detector, when there is one and
/// `rule_blocks` is on) and sweeps expired blocks.
fn start_blocks(
    config: &Config,
    pipeline: &Pipeline,
) -> Result<(Arc<api::blocks::Gate>, Arc<blocks::RuleBlocks>), ServerError> {
    let dir = config.data_dir.join(blocks::BLOCKS_DIR);
    let list = blocks::Blocklist::open(&dir, config.blocks.max_blocks, blocks::now_unix_ms())
        .map(Arc::new)
        .map_err(|e| ServerError::Blocks(e.to_string()))?;
    let gate = api::blocks::Gate::new(list.clone(), &config.blocks).map_err(ServerError::Blocks)?;
    let detector = pipeline.detector().map(Arc::downgrade).unwrap_or_default();
    let rule_blocks = blocks::RuleBlocks::start(detector, list)
        .map(Arc::new)
        .map_err(|e| ServerError::Task(format!("cannot start the blocks thread: {e}")))?;
    if config.blocks.rule_blocks
        && let Some(detector) = pipeline.detector()
    {
        detector.add_sink(rule_blocks.clone());
    }
    Ok((Arc::new(gate), rule_blocks))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { what, addr, source })
}

fn local_addr(
    listener: &TcpListener,
    what: &'static str,
    addr: SocketAddr,
) -> Result<SocketAddr, ServerError> {
    listener
        .local_addr()
        .map_err(|source| ServerError::Bind { what, addr, source })
}

/// What a listener needs to serve TLS.
struct HttpTls {
    config: Arc<tls::LiveConfig>,
    handshake_timeout: std::time::Duration,
    counts: Arc<tls::HandshakeCounts>,
}

impl HttpTls {
    /// `label` names the listener in `/metrics`.
    fn start(
        self,
        what: &'static str,
        label: &'static str,
        listener: TcpListener,
    ) -> Result<tls::TlsListener, ServerError> {
        tls::TlsListener::start(
            what,
            listener,
            self.config,
            self.handshake_timeout,
            self.counts.listener(label),
        )
        .map_err(|source| ServerError::Serve { what, source })
    }
}

async fn serve_http(
    (what, label): (&'static str, &'static str),
    listener: TcpListener,
    tls: Option<HttpTls>,
    router: axum::Router,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // The client address: the audit log records it, and rate limits fall
    // back to it when auth is off.
    let router = router.into_make_service_with_connect_info::<auth::PeerAddr>();
    if let Some(tls) = tls {
        // TCP_NODELAY is set by the TLS accept loop.
        return axum::serve(tls.start(what, label, listener)?, router)
            .with_graceful_shutdown(stopped)
            .await
            .map_err(|source| ServerError::Serve { what, source });
    }
    axum::serve(PlainListener(listener), router)
        .with_graceful_shutdown(stopped)
        .await
        .map_err(|source| ServerError::Serve { what, source })
}

/// A plain TCP listener whose connections have TCP_NODELAY set (responses
/// are small; Nagle would hold them back) and whose peers' addresses reach
/// the handlers as [`auth::PeerAddr`].
pub struct PlainListener(TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "failed to set TCP_NODELAY");
        }
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
