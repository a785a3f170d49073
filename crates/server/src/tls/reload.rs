//! Certificates replaced while the server runs: cert-manager, ACME clients
//! and SPIFFE agents rotate short-lived certificates on disk and expect the
//! server to pick them up without a restart.
//!
//! Each listener reads its rustls configuration from a [`LiveConfig`] per
//! connection, so a swap applies to the next handshake and leaves
//! established connections alone. A watcher thread reads the certificate,
//! key and client CA files every `[tls] reload_interval`; when their bytes
//! change it builds the whole configuration again with the same checks as
//! at start-up and swaps it in. A change that does not load (a key that no
//! longer matches because only the certificate was written yet, a truncated
//! file) is logged, naming the file, and counted; the running configuration
//! stays, and the next change is tried again.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use rustls::ServerConfig;

use super::{HandshakeCounts, TlsConfig};

/// A rustls configuration that can be replaced while listeners use it.
#[derive(Debug)]
pub struct LiveConfig(RwLock<Arc<ServerConfig>>);

impl LiveConfig {
    pub fn new(config: Arc<ServerConfig>) -> Arc<LiveConfig> {
        Arc::new(LiveConfig(RwLock::new(config)))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, config: Arc<ServerConfig>) {
        match self.0.write() {
            Ok(mut guard) => *guard = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

/// The bytes of the files a configuration was built from.
#[derive(Debug, PartialEq, Eq)]
struct Files(Vec<(PathBuf, Option<Vec<u8>>)>);

impl Files {
    fn read(config: &TlsConfig) -> Files {
        Files(
            [&config.cert, &config.key, &config.client_ca]
                .into_iter()
                .flatten()
                .map(|path| (path.clone(), std::fs::read(path).ok()))
                .collect(),
        )
    }
}

/// Starts the watcher of `config`'s files for the two live configurations;
/// it stops when both are dropped (the server stopped).
pub fn watch(
    config: TlsConfig,
    receivers: &Arc<LiveConfig>,
    api: &Arc<LiveConfig>,
    interval: Duration,
    counts: Arc<HandshakeCounts>,
) -> std::io::Result<()> {
    let (receivers, api) = (Arc::downgrade(receivers), Arc::downgrade(api));
    let mut loaded = Files::read(&config);
    std::thread::Builder::new()
        .name("tls-reload".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                if receivers.strong_count() == 0 && api.strong_count() == 0 {
                    return;
                }
                let files = Files::read(&config);
                if files == loaded {
                    continue;
                }
                loaded = files;
                reload(&config, &receivers, &api, &counts);
            }
        })?;
    Ok(())
}

/// Builds the configuration from the files as they are now and swaps it in,
/// or keeps the running one and says why.
fn reload(
    config: &TlsConfig,
    receivers: &Weak<LiveConfig>,
    api: &Weak<LiveConfig>,
    counts: &HandshakeCounts,
) {
    match config.load() {
        Ok(Some(fresh)) => {
            if let Some(live) = receivers.upgrade() {
                live.replace(fresh.receivers.current());
            }
            if let Some(live) = api.upgrade() {
                live.replace(fresh.api.current());
            }
            counts.reloads_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                cert = %config.cert.as_deref().unwrap_or_else(|| std::path::Path::new("")).display(),
                "TLS certificate files changed: reloaded; new connections use them"
            );
        }
        // Validated at start-up: the paths cannot have gone.
        Ok(None) => {}
        Err(error) => {
            counts.reloads_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "TLS certificate files changed but do not load; still serving the previous ones");
        }
    }
}
