//! The alerting service: detections become alerts (tracewarden-alert),
//! notifications go to the configured receivers, and alerts, silences and
//! acknowledgements survive restarts.
//!
//! ```text
//!  detection thread ─ DetectionSink::deliver ─> bounded queue ─> "alerting" thread
//!                                                               owns Alerting (a mutex the API shares):
//!                                                               observe, tick every second, persist
//!                                                               └─> Notifier: a queue and a task per receiver
//! ```
//!
//! The detection thread never waits on alerting: when the queue is full the
//! detections are dropped and counted. The engine's state is kept in
//! `data_dir/alerts/alerts-state.json`; file receivers with relative paths
//! write in `data_dir/alerts/` too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracewarden_alert::engine::{Alerting, AlertingStats};
use tracewarden_alert::receiver::{Notifier, ReceiverStats};
use tracewarden_alert::state::Sealer;
use tracewarden_alert::{AlertError, ValidConfig};
use tracewarden_detect::engine::Detection;
use tracewarden_store::EncryptionKey;

use crate::config::{Config, DetectionConfig};
use crate::detection::{DetectionSink, Detector, load_rules};

/// The directory of the alert state (and of relative file receivers),
/// within the data directory.
pub const ALERTS_DIR: &str = "alerts";
/// Detection batches waiting for the alerting thread; more are dropped.
pub const QUEUE_BATCHES: usize = 1024;
/// How often alerts are checked for resolution and groups for
/// notifications: the resolution of every timing in `[alerts]`.
const TICK: Duration = Duration::from_secs(1);
/// How long a shutdown waits for the receivers' queues to drain.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Why the alerting service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertingError {
    /// A mistake in `[alerts]`; the field is named from `alerts.`.
    #[error("invalid configuration: alerts.{0}")]
    Config(tracewarden_alert::ConfigError),
    #[error("{0}")]
    Engine(#[from] AlertError),
    #[error("cannot load the rules that annotate alerts: {0}")]
    Rules(String),
    #[error("cannot start the alerting thread: {0}")]
    Thread(std::io::Error),
}

/// Counters of the service itself (the engine and the receivers have
/// their own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertServiceStats {
    pub engine: AlertingStats,
    pub receivers: Vec<ReceiverStats>,
    /// Detection batches (and the detections in them) dropped because the
    /// queue was full.
    pub dropped_batches: u64,
    pub dropped_detections: u64,
    /// Saves of the state file that failed (retried at the next tick).
    pub persist_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    dropped_batches: AtomicU64,
    dropped_detections: AtomicU64,
    persist_failures: AtomicU64,
}

enum Message {
    Detections(Vec<Detection>),
    /// Save the state and stop.
    Stop,
}

/// The alerting service's front, shared by the detector (as a sink), the
/// API and the server's shutdown.
pub struct AlertService {
    engine: Arc<Mutex<Alerting>>,
    sender: SyncSender<Message>,
    counters: Arc<Counters>,
    worker: Mutex<Option<JoinHandle<()>>>,
    notifier: Mutex<Option<Arc<Notifier>>>,
    external_url: String,
    dir: PathBuf,
}

/// `external_url` when set, else the API's address as bound (`localhost`
/// for an unspecified address such as `0.0.0.0`).
pub fn external_url(configured: &str, api: SocketAddr) -> String {
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_string();
    }
    if api.ip().is_unspecified() {
        format!("http://localhost:{}", api.port())
    } else {
        format!("http://{api}")
    }
}

/// The alert state encrypted with the store's key.
#[derive(Debug)]
struct StateSealer(Arc<EncryptionKey>);

const STATE_PURPOSE: &str = "alert state";

impl Sealer for StateSealer {
    fn seal(&self, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        self.0.seal_file(STATE_PURPOSE, plain)
    }

    fn open(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if !EncryptionKey::is_sealed(bytes) {
            return Ok(None);
        }
        self.0.open_file(STATE_PURPOSE, bytes).map(Some)
    }
}

impl AlertService {
    /// Validates `[alerts]`, opens the state in `data_dir/alerts/`, starts
    /// the receivers (on the current tokio runtime) and the alerting
    /// thread, and registers as a sink of `detector`.
    pub fn start(
        config: &Config,
        api: SocketAddr,
        detector: Option<&Arc<Detector>>,
        key: Option<Arc<EncryptionKey>>,
    ) -> Result<Arc<AlertService>, AlertingError> {
        let mut alerts = config.alerts.clone();
        if key.is_some() && alerts.receivers == tracewarden_alert::Config::default().receivers {
            // Encryption at rest: the default receiver would keep a plain
            // JSON-lines log of alerts (actors, evidence) in the data
            // directory. The encrypted state and the API keep them.
            for receiver in &mut alerts.receivers {
                receiver.file = None;
            }
            tracing::info!(
                "encryption at rest is on: the default alerts.jsonl receiver is left out (alerts stay in the encrypted state and the API)"
            );
        }
        alerts.external_url = external_url(&alerts.external_url, api);
        let valid = alerts.validate().map_err(AlertingError::Config)?;
        let rules = match detector {
            Some(_) => load_rules(&config.detection).map_err(AlertingError::Rules)?,
            None => Vec::new(),
        };
        let dir = config.data_dir.join(ALERTS_DIR);
        let sealer = key.map(|key| Arc::new(StateSealer(key)) as Arc<dyn Sealer>);
        let engine = Alerting::open_sealed(valid.clone(), &rules, &dir, now_unix_nano(), sealer)?;
        let notifier = Arc::new(Notifier::start(&valid, &dir)?);
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE_BATCHES);
        let engine = Arc::new(Mutex::new(engine));
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            engine: engine.clone(),
            notifier: notifier.clone(),
            counters: counters.clone(),
            rules: detector.map(|d| RuleSource {
                detector: Arc::downgrade(d),
                config: config.detection.clone(),
                reloads: d.reload_status().reloads,
            }),
        };
        let handle = std::thread::Builder::new()
            .name("alerting".to_string())
            .spawn(move || worker.run(&receiver))
            .map_err(AlertingError::Thread)?;
        let service = Arc::new(AlertService {
            engine,
            sender,
            counters,
            worker: Mutex::new(Some(handle)),
            notifier: Mutex::new(Some(notifier)),
            external_url: valid.config.external_url.clone(),
            dir,
        });
        if let Some(detector) = detector {
            detector.add_sink(service.clone());
        }
        log_config(&valid);
        Ok(service)
    }

    /// Reads the engine. Blocks while the alerting thread holds it (at most
    /// a state save): call it off the async workers.
    pub fn read<R>(&self, f: impl FnOnce(&Alerting) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the engine (silences, acknowledgements save the state at
    /// once). Call it off the async workers.
    pub fn write<R>(&self, f: impl FnOnce(&mut Alerting) -> R) -> R {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Alerting> {
        // A panic elsewhere leaves the engine consistent (every change is
        // one call): keep serving it.
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The URL links in notifications start with.
    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// Where the state file is.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn stats(&self) -> AlertServiceStats {
        let receivers = self
            .notifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|n| n.stats())
            .unwrap_or_default();
        AlertServiceStats {
            engine: self.read(|e| e.stats(now_unix_nano())),
            receivers,
            dropped_batches: self.counters.dropped_batches.load(Ordering::Relaxed),
            dropped_detections: self.counters.dropped_detections.load(Ordering::Relaxed),
            persist_failures: self.counters.persist_failures.load(Ordering::Relaxed),
        }
    }

    /// Saves the state, stops the alerting thread, and gives the receivers
    /// a few seconds to deliver what they hold. Call it after the detector
    /// has stopped, so its last detections are in.
    pub async fn shutdown(&self) {
        // A full queue is drained by the thread before it sees Stop.
        let sender = self.sender.clone();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let stopped = tokio::task::spawn_blocking(move || {
            let _ = sender.send(Message::Stop);
            worker.map(JoinHandle::join)
        })
        .await;
        if !matches!(stopped, Ok(None | Some(Ok(())))) {
            tracing::error!("the alerting thread failed; the last changes may be unsaved");
        }
        let notifier = self
            .notifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(notifier) = notifier.and_then(|n| Arc::try_unwrap(n).ok())
            && !notifier.shutdown(DRAIN_DEADLINE).await
        {
            tracing::warn!("receivers did not deliver everything queued before shutdown");
        }
    }
}

impl DetectionSink for AlertService {
    fn deliver(&self, detections: &[Detection]) {
        match self
            .sender
            .try_send(Message::Detections(detections.to_vec()))
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self
                    .counters
                    .dropped_batches
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .dropped_detections
                    .fetch_add(detections.len() as u64, Ordering::Relaxed);
                // The first, then every 1000th.
                if dropped.is_multiple_of(1000) {
                    tracing::warn!(
                        dropped_batches = dropped + 1,
                        "alerting is behind detection: detections dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("the alerting thread has stopped; detections are not alerted on");
            }
        }
    }
}

fn log_config(valid: &ValidConfig) {
    let receivers: Vec<&str> = valid
        .config
        .receivers
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    tracing::info!(
        receivers = ?receivers,
        external_url = %valid.config.external_url,
        "alerting on"
    );
}

/// Where new rule texts come from after a reload.
struct RuleSource {
    detector: Weak<Detector>,
    config: DetectionConfig,
    /// Reloads seen so far.
    reloads: u64,
}

impl RuleSource {
    /// Gives the engine the rules again when the detector reloaded them.
    fn refresh(&mut self, engine: &Mutex<Alerting>) {
        let Some(detector) = self.detector.upgrade() else {
            return;
        };
        let reloads = detector.reload_status().reloads;
        if reloads == self.reloads {
            return;
        }
        self.reloads = reloads;
        match load_rules(&self.config) {
            Ok(rules) => engine
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .set_rules(&rules),
            Err(error) => {
                tracing::warn!(%error, "new alerts keep the previous rules' texts");
            }
        }
    }
}

/// The alerting thread.
struct Worker {
    engine: Arc<Mutex<Alerting>>,
    notifier: Arc<Notifier>,
    counters: Arc<Counters>,
    rules: Option<RuleSource>,
}

impl Worker {
    fn run(mut self, messages: &Receiver<Message>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match messages.recv_timeout(wait) {
                Ok(Message::Detections(detections)) => {
                    self.lock().observe(&detections, now_unix_nano());
                }
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.persist();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_tick {
                // A late tick is not made up for: the engine's timings come
                // from `now`, not from the number of ticks.
                next_tick = Instant::now() + TICK;
                self.tick();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Alerting> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tick(&mut self) {
        if let Some(rules) = &mut self.rules {
            rules.refresh(&self.engine);
        }
        let now = now_unix_nano();
        let notifications = self.lock().tick(now);
        // Queued before the save: a crash in between re-sends (at least
        // once), never loses a notification.
        for notification in notifications {
            self.notifier.notify(notification);
        }
        // Merged detections wait up to `UPDATES_SAVED_EVERY` for the save.
        self.save(|engine| engine.persist_at(now));
    }

    /// Saves whatever changed (at shutdown).
    fn persist(&self) {
        self.save(Alerting::persist);
    }

    fn save(&self, save: impl FnOnce(&mut Alerting) -> tracewarden_alert::error::Result<bool>) {
        if let Err(error) = save(&mut self.lock()) {
            self.counters
                .persist_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "cannot save the alert state; retrying at the next tick");
        }
    }
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Alerts by state and severity, receivers' deliveries and failures, and
/// the alerting queue, for `GET /metrics`.
impl crate::metrics::MetricsSource for AlertService {
    fn collect(&self, out: &mut crate::metrics::Exposition) {
        use std::collections::BTreeMap;

        use crate::metrics::Kind;
        let mut by_state: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
        self.read(|engine| {
            for alert in engine.alerts() {
                let state = if alert.is_firing() {
                    "firing"
                } else {
                    "resolved"
                };
                *by_state
                    .entry((state, alert.labels.get("severity").to_string()))
                    .or_default() += 1;
            }
        });
        out.family(
            "tracewarden_alerts",
            Kind::Gauge,
            "Alerts held, by state and severity.",
        );
        for ((state, severity), count) in &by_state {
            out.sample(
                "tracewarden_alerts",
                &[("state", state), ("severity", severity)],
                *count as f64,
            );
        }
        let stats = self.stats();
        out.single(
            "tracewarden_silences_active",
            Kind::Gauge,
            "Silences in force now.",
            stats.engine.silences_active as f64,
        );
        out.single(
            "tracewarden_alerts_dropped_detections_total",
            Kind::Counter,
            "Detections not turned into alerts because the alerting queue was full.",
            stats.dropped_detections as f64,
        );
        for (name, help, value) in [
            (
                "tracewarden_alert_notifications_sent_total",
                "Notifications a receiver delivered.",
                (|r: &ReceiverStats| r.sent) as fn(&ReceiverStats) -> u64,
            ),
            (
                "tracewarden_alert_notifications_failed_total",
                "Notifications a receiver gave up on (retries exhausted or a permanent error).",
                |r: &ReceiverStats| r.failed,
            ),
            (
                "tracewarden_alert_notifications_dropped_total",
                "Notifications dropped because the receiver's queue was full.",
                |r: &ReceiverStats| r.dropped,
            ),
            (
                "tracewarden_alert_notification_retries_total",
                "Delivery attempts after the first.",
                |r: &ReceiverStats| r.retries,
            ),
        ] {
            out.family(name, Kind::Counter, help);
            for receiver in &stats.receivers {
                out.sample(
                    name,
                    &[("receiver", &receiver.name), ("kind", receiver.kind)],
                    value(receiver) as f64,
                );
            }
        }
        out.family(
            "tracewarden_alert_notifications_queued",
            Kind::Gauge,
            "Notifications waiting in a receiver's queue.",
        );
        for receiver in &stats.receivers {
            out.sample(
                "tracewarden_alert_notifications_queued",
                &[("receiver", &receiver.name), ("kind", receiver.kind)],
                receiver.queued as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_url_defaults_to_the_api_address() {
        let api: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        assert_eq!(external_url("", api), "http://127.0.0.1:7700");
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(external_url("", any), "http://localhost:8080");
        assert_eq!(
            external_url("https://tw.example.com/", api),
            "https://tw.example.com"
        );
    }

    #[test]
    fn configuration_mistakes_stop_the_start_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let api: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        let cases = [
            (
                "[alerts.route]\nreceiver = \"soc\"\n",
                "alerts.route.receiver: no receiver named `soc`",
            ),
            (
                "[[alerts.receivers]]\nname = \"default\"\n[alerts.receivers.webhook]\nurl = \"ftp://x\"\n",
                "alerts.receivers[0].webhook.url",
            ),
            (
                "[alerts]\nexternal_url = \"not a url\"\n",
                "alerts.external_url",
            ),
        ];
        for (text, field) in cases {
            let mut config = Config::from_toml(text).unwrap();
            config.data_dir = dir.path().to_path_buf();
            let err = AlertService::start(&config, api, None, None)
                .err()
                .unwrap_or_else(|| panic!("{text}: accepted"));
            assert!(matches!(err, AlertingError::Config(_)), "{text}: {err}");
            assert!(err.to_string().contains(field), "{text}: {err}");
        }
        assert!(
            !dir.path().join(ALERTS_DIR).exists(),
            "nothing written for a refused configuration"
        );
    }
}
