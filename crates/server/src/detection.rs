//! Detection on acknowledged batches.
//!
//! The pipeline hands every batch the WAL acknowledged to a [`Detector`]
//! through a bounded queue and never waits on it: a dedicated thread runs
//! the rule engine (tracewarden-detect) and keeps the most recent
//! detections for the API. When the queue is full (detection slower than
//! ingest) the batch is not detected on, and that is counted and logged,
//! never a reason to slow or refuse ingest.
//!
//! The engine's state is checkpointed (`data_dir/detection/checkpoint`)
//! with the WAL positions (LSNs) it covers. At start-up the state comes
//! back and the WAL replay feeds detection only the records the checkpoint
//! does not cover: after a crash no span is counted twice, and none the WAL
//! still holds is missed.
//!
//! Spans waiting for trace assembly are named in the checkpoint by their
//! WAL record, not copied ([`tracewarden_detect::assembly::Origin`]): the
//! replay hands those records back ([`Detector::wants`],
//! [`Detector::refill`], [`Detector::refilled`]) even when a segment
//! already holds them. So the store must keep them: the detector holds the
//! WAL ([`Detector::wal_hold`]) from the lowest record its latest
//! checkpoint names, or from the first it may take in after it, whichever
//! is lower. A checkpoint names only spans of traces buffered for less
//! than `NAMED_MAX_AGE` (30 s), so the hold keeps the WAL longer than the
//! segments alone would by at most about that, plus detection's lag and
//! one checkpoint interval (typically the idle time plus those two).

use std::collections::VecDeque;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracewarden_store::{EncryptionKey, Lsn, LsnSet, WalHold};

use crate::checkpoint;
use crate::latency::{Exposed, Histogram};

use tracewarden_detect::assembly::{AssemblyConfig, AssemblyStats};
use tracewarden_detect::engine::{
    Detection, Engine, EngineConfig, ReloadSummary, RuleStats, TopologyPolicy,
};
use tracewarden_detect::geoip::Lookup;
use tracewarden_detect::log_join::{LogJoinConfig, LogJoinStats};
use tracewarden_detect::rule::{
    BlockAction, LoadErrors, Rule, apply_exceptions, builtin_rules_for, load_dir_parts_for,
};

use crate::config::DetectionConfig;
use tracewarden_model::Records;

/// The directory of the detection checkpoint, within the data directory.
pub const CHECKPOINT_DIR: &str = "detection";

/// Restores the engine from the checkpoint in `dir`, if any; the LSNs it
/// covers, and why it could not be restored. A checkpoint that cannot be
/// read or restored is moved aside (`checkpoint.bad-<unix seconds>`, kept
/// for inspection, never overwritten by the next checkpoint), logged and
/// shown in the detector's stats: the engine starts empty and the replay
/// feeds it everything the WAL holds.
fn restore(
    engine: &mut Engine,
    dir: &Path,
    key: Option<&EncryptionKey>,
) -> (LsnSet, Option<String>) {
    let failed = |error: String| {
        let path = dir.join(checkpoint::FILE_NAME);
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = dir.join(format!("{}.bad-{secs}", checkpoint::FILE_NAME));
        match std::fs::rename(&path, &aside) {
            Ok(()) => tracing::error!(
                %error,
                kept = %aside.display(),
                "ignoring the detection checkpoint: detection starts empty"
            ),
            Err(rename) => tracing::error!(
                %error,
                %rename,
                "ignoring the detection checkpoint: detection starts empty, and the file could not be moved aside"
            ),
        }
        (LsnSet::new(), Some(error))
    };
    let saved = match checkpoint::read(dir, key) {
        Ok(Some(saved)) => saved,
        Ok(None) => return (LsnSet::new(), None),
        Err(error) => return failed(error.to_string()),
    };
    match engine.restore(&saved.engine) {
        Ok(summary) => {
            tracing::info!(
                restored = summary.restored.len(),
                buffered_spans = summary.buffered_spans,
                held_logs = summary.held_logs,
                changed = ?summary.changed,
                unknown = ?summary.unknown,
                "detection state restored from its checkpoint"
            );
            (saved.covered, None)
        }
        Err(error) => failed(error.to_string()),
    }
}

/// Detections kept for `GET /api/v1/detections`.
pub const RECENT_DETECTIONS: usize = 10_000;

/// A rule as the API lists it.
#[derive(Clone, Debug)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub severity: &'static str,
    pub kind: &'static str,
    pub source: &'static str,
    /// Span attributes a log rule takes from the record's span (`join:`).
    pub join: Vec<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// Why an enabled rule does not run (a site fact left empty).
    pub inactive: Option<String>,
    /// The rule's `block:` response.
    pub block: Option<BlockAction>,
    /// Ids of the exceptions applied to the rule.
    pub exceptions: Vec<String>,
}

/// Counters of the detector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    pub batches: u64,
    pub spans: u64,
    /// Log records detected on (by `source: logs` rules).
    pub logs: u64,
    /// Batches not detected on because the queue was full.
    pub dropped_batches: u64,
    pub dropped_spans: u64,
    pub detections: u64,
    /// WAL records fed to detection at start-up because the checkpoint did
    /// not cover them.
    pub replayed_batches: u64,
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
    /// Why the checkpoint found at start could not be restored (detection
    /// started empty; the file was moved aside), if so.
    pub checkpoint_restore_error: Option<String>,
    /// Batches waiting in the queue now.
    pub queued_batches: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    spans: AtomicU64,
    logs: AtomicU64,
    dropped_batches: AtomicU64,
    dropped_spans: AtomicU64,
    detections: AtomicU64,
    replayed_batches: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_failures: AtomicU64,
    queued_batches: AtomicU64,
}

struct Shared {
    counters: Counters,
    /// Why the checkpoint found at start could not be restored, if so.
    restore_error: Option<String>,
    recent: Mutex<VecDeque<Detection>>,
    rule_stats: Mutex<Vec<RuleStats>>,
    /// The WAL records (LSNs) detection has taken in: processed, or
    /// skipped while it was behind. Checkpointed with the engine state.
    covered: Mutex<LsnSet>,
    sinks: Mutex<Vec<Arc<dyn DetectionSink>>>,
    /// The trace-assembly buffer's counters, as of the last publication.
    assembly: Mutex<AssemblyStats>,
    /// The log-join counters (records waiting for their span), likewise.
    log_join: Mutex<LogJoinStats>,
    /// Hand-over to processed, per batch.
    latency: Histogram,
    /// The last checkpoint write failed: write one at the next turn even
    /// if nothing changed since.
    checkpoint_retry: AtomicBool,
    /// A trace complete (idle) to the trace evaluated, per trace.
    trace_delay: Histogram,
    /// The topology rules' declared and learned edges (for the service
    /// graph), and the learned count it was taken at.
    topology: Mutex<(usize, Arc<TopologyPolicy>)>,
    /// The WAL records (ascending) holding buffered spans the restored
    /// checkpoint named: the replay refills them.
    wanted: Vec<Lsn>,
    /// What the WAL must keep for a restart from the latest checkpoint;
    /// `None` without checkpoints.
    hold: Option<Arc<WalHold>>,
}

/// Where detections go besides the log and the API's recent list: the
/// alerting layer, block decisions. Called on the detection thread after
/// each batch that raised detections; implementations must not block
/// (queue and return).
pub trait DetectionSink: Send + Sync {
    fn deliver(&self, detections: &[Detection]);
}

/// What the detection thread is sent.
enum Message {
    /// An acknowledged (or replayed) batch, its WAL position and when it
    /// was handed over (for the detection latency).
    Batch(Lsn, Records, Instant),
    /// A WAL record replayed because the restored checkpoint named spans
    /// in it: they go back into the trace-assembly buffer, nothing else.
    Refill(Lsn, Records),
    /// The replay is over: nothing more comes back.
    Refilled,
    /// New rules, and where to say what changed.
    Reload(Vec<Rule>, std::sync::mpsc::Sender<ReloadSummary>),
    /// Write a last checkpoint and stop.
    Shutdown(std::sync::mpsc::Sender<()>),
}

/// The outcome of the last reloads, for the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Successful reloads since start.
    pub reloads: u64,
    /// Reloads refused because a rule file was wrong (the previous rules
    /// kept running).
    pub failures: u64,
    /// When the rules last changed (unix nanoseconds), 0 if never.
    pub last_reload_unix_nano: u64,
    /// What the last successful reload did.
    pub last_summary: Option<ReloadSummary>,
    /// Every error of the last failed reload, cleared by a good one.
    pub last_error: Option<String>,
}

/// The detection thread's front: cheap to share behind an `Arc`.
pub struct Detector {
    sender: SyncSender<Message>,
    shared: Arc<Shared>,
    rules: Mutex<Vec<RuleInfo>>,
    config: DetectionConfig,
    reload: Mutex<ReloadStatus>,
    /// Held for a whole reload, from reading the files to the thread's
    /// answer: two reloads at once (the watcher's and the API's) could
    /// otherwise switch to the older files last.
    reloading: Mutex<()>,
}

fn rule_infos(rules: &[Rule]) -> Vec<RuleInfo> {
    rules
        .iter()
        .map(|rule| RuleInfo {
            id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity.as_str(),
            kind: rule.kind.name(),
            source: rule.source.as_str(),
            join: rule.join.clone(),
            tags: rule.tags.clone(),
            enabled: rule.enabled,
            inactive: rule.inactive.clone(),
            block: rule.block.clone(),
            exceptions: rule.exceptions.iter().map(|e| e.id.clone()).collect(),
        })
        .collect()
}

impl Detector {
    /// Loads the rules `config` asks for and starts the detection thread;
    /// `config.queue_batches` batches may wait. With `data_dir`, the state
    /// is restored from `data_dir/detection/checkpoint` and checkpointed
    /// there every `config.checkpoint_interval`.
    pub fn start(
        config: &DetectionConfig,
        data_dir: Option<&Path>,
        key: Option<Arc<EncryptionKey>>,
    ) -> Result<Detector, String> {
        let rules = load_rules(config)?;
        Detector::start_with(rules, config.clone(), data_dir, key)
            .map_err(|e| format!("cannot start the detection thread: {e}"))
    }

    /// Starts the detection thread with `rules` (reloads read `config`).
    pub fn start_with(
        rules: Vec<Rule>,
        config: DetectionConfig,
        data_dir: Option<&Path>,
        key: Option<Arc<EncryptionKey>>,
    ) -> std::io::Result<Detector> {
        let infos = rule_infos(&rules);
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.queue_batches.max(1));
        let engine_config = engine_config(&config);
        let geo = match &config.geoip_database {
            Some(path) => Some(
                Lookup::open(path)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            ),
            None => None,
        };
        let mut engine = Engine::with_config(rules, engine_config);
        let checkpoint_dir = match (data_dir, config.checkpoint_interval) {
            (Some(dir), Some(_)) => Some(dir.join(CHECKPOINT_DIR)),
            _ => None,
        };
        let (covered, restore_error) = checkpoint_dir
            .as_deref()
            .map(|dir| restore(&mut engine, dir, key.as_deref()))
            .unwrap_or_default();
        let wanted = engine.wanted_lsns();
        let hold = checkpoint_dir.as_ref().map(|_| {
            // Before the first checkpoint of this run, what the restored
            // one needs: its named records, and every record after it.
            let hold = WalHold::new();
            hold.hold_from(keep_from(wanted.first().copied(), None, &covered));
            Arc::new(hold)
        });
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            recent: Mutex::new(VecDeque::new()),
            rule_stats: Mutex::new(engine.stats().rules),
            covered: Mutex::new(covered),
            sinks: Mutex::new(Vec::new()),
            assembly: Mutex::new(AssemblyStats::default()),
            log_join: Mutex::new(LogJoinStats::default()),
            latency: Histogram::default(),
            checkpoint_retry: AtomicBool::new(false),
            trace_delay: Histogram::default(),
            topology: Mutex::new((engine.learned_edges(), Arc::new(engine.topology_policy()))),
            restore_error,
            wanted,
            hold: hold.clone(),
        });
        let writer = match (checkpoint_dir, hold) {
            (Some(dir), Some(hold)) => {
                let counted = Arc::clone(&shared);
                Some(checkpoint::Writer::spawn(dir, key, hold, move |result| {
                    counted.checkpoint_written(result)
                })?)
            }
            _ => None,
        };
        let runner = Runner {
            engine,
            writer,
            interval: config.checkpoint_interval.unwrap_or(Duration::from_secs(1)),
            last_checkpoint: Instant::now(),
            dirty: false,
            lowest_since_checkpoint: None,
            geo,
        };
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("detection".to_string())
            .spawn(move || run(runner, receiver, &thread_shared))?;
        Ok(Detector {
            sender,
            shared,
            rules: Mutex::new(infos),
            config,
            reload: Mutex::new(ReloadStatus::default()),
            reloading: Mutex::new(()),
        })
    }

    /// Sends every later detection to `sink` too.
    pub fn add_sink(&self, sink: Arc<dyn DetectionSink>) {
        if let Ok(mut sinks) = self.shared.sinks.lock() {
            sinks.push(sink);
        }
    }

    /// Whether detection has taken in the WAL record `lsn` (as of the
    /// checkpoint it started from, or since).
    pub fn covers(&self, lsn: Lsn) -> bool {
        self.shared
            .covered
            .lock()
            .map(|c| c.contains(lsn))
            .unwrap_or(false)
    }

    /// What the store must keep of the WAL for a restart from the latest
    /// detection checkpoint (`StoreOptions::wal_hold`); `None` when
    /// detection keeps no checkpoint.
    pub fn wal_hold(&self) -> Option<Arc<WalHold>> {
        self.shared.hold.clone()
    }

    /// Whether the restored checkpoint named buffered spans in WAL record
    /// `lsn`: the replay must hand it to [`Detector::refill`], even when a
    /// segment already holds it.
    pub fn wants(&self, lsn: Lsn) -> bool {
        self.shared.wanted.binary_search(&lsn).is_ok()
    }

    /// Hands back a WAL record replayed at start-up whose spans the
    /// restored checkpoint named ([`Detector::wants`]), in WAL order. Waits
    /// for room in the queue.
    pub fn refill(&self, lsn: Lsn, records: Records) {
        if !self.wants(lsn) {
            return;
        }
        if self.sender.send(Message::Refill(lsn, records)).is_err() {
            tracing::error!("the detection thread has stopped; buffered traces are not restored");
        }
    }

    /// The replay is over: traces the restored checkpoint held complete
    /// again, without the named spans that did not come back (counted).
    pub fn refilled(&self) {
        if !self.shared.wanted.is_empty() {
            let _ = self.sender.send(Message::Refilled);
        }
    }

    /// Feeds a WAL record replayed at start-up that the checkpoint did not
    /// cover. Waits for room in the queue: replay must not skip records.
    pub fn replay(&self, lsn: Lsn, records: Records) {
        if self.covers(lsn) {
            return;
        }
        self.shared
            .counters
            .replayed_batches
            .fetch_add(1, Ordering::Relaxed);
        // Counted before it is sent: the thread may take it at once.
        let queued = &self.shared.counters.queued_batches;
        queued.fetch_add(1, Ordering::Relaxed);
        if self
            .sender
            .send(Message::Batch(lsn, records, Instant::now()))
            .is_err()
        {
            queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(
                "the detection thread has stopped; replayed batches are not detected on"
            );
        }
    }

    /// Writes a last checkpoint and stops the detection thread; batches
    /// offered afterwards are not detected on.
    pub fn shutdown(&self) {
        let (reply, done) = std::sync::mpsc::channel();
        if self.sender.send(Message::Shutdown(reply)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(60));
        }
    }

    /// Reloads the rules from the configuration (built-in pack and
    /// `rules_dir`). On any error in any file the running rules stay and
    /// every error is returned; otherwise unchanged rules keep their window
    /// state (see [`Engine::reload`]). Blocks until the detection thread
    /// has switched (it finishes the batch in hand first).
    pub fn reload(&self) -> Result<ReloadSummary, String> {
        self.reload_with(|| load_rules(&self.config))
    }

    /// [`Detector::reload`] with the rules `load` reads: one reload at a
    /// time, so the rules read last are the rules that run.
    fn reload_with(
        &self,
        load: impl FnOnce() -> Result<Vec<Rule>, String>,
    ) -> Result<ReloadSummary, String> {
        // A reload that panicked poisoned nothing this guards.
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = load().and_then(|rules| {
            let infos = rule_infos(&rules);
            let (reply, answer) = std::sync::mpsc::channel();
            self.sender
                .send(Message::Reload(rules, reply))
                .map_err(|_| "the detection thread has stopped".to_string())?;
            let summary = answer
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "the detection thread did not answer".to_string())?;
            if let Ok(mut current) = self.rules.lock() {
                *current = infos;
            }
            Ok(summary)
        });
        if let Ok(mut status) = self.reload.lock() {
            match &result {
                Ok(summary) => {
                    status.reloads += 1;
                    status.last_reload_unix_nano = now_unix_nano();
                    status.last_summary = Some(summary.clone());
                    status.last_error = None;
                }
                Err(error) => {
                    status.failures += 1;
                    status.last_error = Some(error.clone());
                }
            }
        }
        match &result {
            Ok(summary) => tracing::info!(
                kept = summary.kept.len(),
                added = ?summary.added,
                changed = ?summary.changed,
                removed = ?summary.removed,
                "rules reloaded"
            ),
            Err(error) => {
                tracing::error!("rules not reloaded, the previous ones keep running: {error}")
            }
        }
        result
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.reload.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The directory watched for rule changes, if any.
    pub fn rules_dir(&self) -> Option<&PathBuf> {
        self.config.rules_dir.as_ref()
    }

    /// Queues an acknowledged batch; never blocks.
    pub fn offer(&self, lsn: Lsn, records: Records) {
        let spans = records.spans.len() as u64;
        if records.is_empty() {
            self.skip(lsn);
            return;
        }
        // Counted before it is sent: the thread may take it at once.
        let queued = &self.shared.counters.queued_batches;
        queued.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .sender
            .try_send(Message::Batch(lsn, records, Instant::now()));
        if sent.is_err() {
            queued.fetch_sub(1, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // Never detected on, now or at a replay.
                self.skip(lsn);
                let dropped = self
                    .shared
                    .counters
                    .dropped_batches
                    .fetch_add(1, Ordering::Relaxed);
                self.shared
                    .counters
                    .dropped_spans
                    .fetch_add(spans, Ordering::Relaxed);
                // The first, then every 1000th: a flood of warnings would
                // only add to the load.
                if dropped.is_multiple_of(1000) {
                    tracing::warn!(
                        dropped_batches = dropped + 1,
                        "detection is behind ingest: batches are stored but not detected on"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("the detection thread has stopped; batches are not detected on");
            }
        }
    }

    fn skip(&self, lsn: Lsn) {
        if let Ok(mut covered) = self.shared.covered.lock() {
            covered.insert(lsn);
        }
    }

    /// The most recent detections, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Detection> {
        self.shared
            .recent
            .lock()
            .map(|recent| recent.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// The trace-assembly buffer's counters (all zero when no rule needs
    /// whole traces).
    pub fn assembly_stats(&self) -> AssemblyStats {
        self.shared
            .assembly
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// The counters of log records joined to their span (all zero when no
    /// log rule has `join`).
    pub fn log_join_stats(&self) -> LogJoinStats {
        self.shared
            .log_join
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Time from a batch's WAL acknowledgement to the rules having run on
    /// it: (p50, p99, batches measured).
    pub fn latency(&self) -> (Option<Duration>, Option<Duration>, u64) {
        let h = &self.shared.latency;
        (h.quantile(0.5), h.quantile(0.99), h.count())
    }

    /// The batch latency and trace delay histograms, for `/metrics`.
    pub fn latency_histograms(&self) -> (Exposed, Exposed) {
        (
            self.shared.latency.exposed(),
            self.shared.trace_delay.exposed(),
        )
    }

    /// Time from a trace becoming complete (its idle time passed) to the
    /// whole-trace rules having run on it: (p50, p99, traces measured).
    pub fn trace_delay(&self) -> (Option<Duration>, Option<Duration>, u64) {
        let h = &self.shared.trace_delay;
        (h.quantile(0.5), h.quantile(0.99), h.count())
    }

    pub fn stats(&self) -> DetectorStats {
        let c = &self.shared.counters;
        DetectorStats {
            batches: c.batches.load(Ordering::Relaxed),
            spans: c.spans.load(Ordering::Relaxed),
            logs: c.logs.load(Ordering::Relaxed),
            dropped_batches: c.dropped_batches.load(Ordering::Relaxed),
            dropped_spans: c.dropped_spans.load(Ordering::Relaxed),
            detections: c.detections.load(Ordering::Relaxed),
            replayed_batches: c.replayed_batches.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            checkpoint_failures: c.checkpoint_failures.load(Ordering::Relaxed),
            queued_batches: c.queued_batches.load(Ordering::Relaxed),
            checkpoint_restore_error: self.shared.restore_error.clone(),
        }
    }

    /// The topology rules' declared and learned edges, as of the last time
    /// the queue ran dry.
    pub fn topology_policy(&self) -> Arc<TopologyPolicy> {
        self.shared
            .topology
            .lock()
            .map(|t| Arc::clone(&t.1))
            .unwrap_or_default()
    }

    /// The `[detection.site]` facts.
    pub fn site(&self) -> &tracewarden_detect::rule::Site {
        &self.config.site
    }

    pub fn rules(&self) -> Vec<RuleInfo> {
        self.rules.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The `block:` response of the rule `id`, if it has one.
    pub fn rule_block(&self, id: &str) -> Option<BlockAction> {
        let rules = self.rules.lock().ok()?;
        rules.iter().find(|r| r.id == id)?.block.clone()
    }

    /// The engine's counters per rule, as of the last time the queue ran
    /// dry or a rule fired.
    pub fn rule_stats(&self) -> Vec<RuleStats> {
        self.shared
            .rule_stats
            .lock()
            .map(|stats| stats.clone())
            .unwrap_or_default()
    }
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The detection thread's own state besides the engine.
struct Runner {
    engine: Engine,
    /// Writes checkpoints (sealed with the store's key when encryption at
    /// rest is on); `None`: never written.
    writer: Option<checkpoint::Writer>,
    interval: Duration,
    last_checkpoint: Instant,
    /// Batches processed since the last checkpoint.
    dirty: bool,
    /// The lowest WAL record processed since the last checkpoint was
    /// taken: one offered out of order comes after it, not before.
    lowest_since_checkpoint: Option<Lsn>,
    /// Client countries for `geo.country.iso_code`, when configured.
    geo: Option<Lookup>,
}

fn run(mut runner: Runner, batches: Receiver<Message>, shared: &Shared) {
    loop {
        let message = match batches.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                // The queue ran dry: time for the counters, due traces and
                // a checkpoint; then wait, waking for the next of those.
                runner.publish_stats(shared);
                runner.flush_traces(shared);
                runner.checkpoint_if_due(shared);
                match batches.recv_timeout(runner.wait()) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        runner.stop(shared);
                        return;
                    }
                }
            }
            Err(TryRecvError::Disconnected) => {
                runner.stop(shared);
                return;
            }
        };
        let (lsn, batch, offered) = match message {
            Message::Batch(lsn, batch, offered) => {
                shared
                    .counters
                    .queued_batches
                    .fetch_sub(1, Ordering::Relaxed);
                (lsn, batch, offered)
            }
            Message::Refill(lsn, records) => {
                runner.refill(lsn, records);
                continue;
            }
            Message::Refilled => {
                runner.engine.refilled();
                let missing = runner.engine.stats().assembly.missing_restored_spans;
                if missing > 0 {
                    tracing::warn!(
                        missing_spans = missing,
                        "spans of traces waiting for assembly were named by the checkpoint but are no longer in the WAL; their traces are evaluated without them"
                    );
                }
                runner.dirty = true;
                runner.publish_stats(shared);
                continue;
            }
            Message::Reload(rules, reply) => {
                let summary = runner.engine.reload(rules);
                runner.publish_stats(shared);
                runner.publish_topology(shared, true);
                let _ = reply.send(summary);
                continue;
            }
            Message::Shutdown(reply) => {
                runner.stop(shared);
                let _ = reply.send(());
                return;
            }
        };
        let (detections, counts) = runner.process(lsn, batch);
        // From the WAL acknowledgement to the rules having run: the delay
        // of every span and window detection in this batch.
        shared.latency.record(offered.elapsed());
        if let Ok(mut covered) = shared.covered.lock() {
            covered.insert(lsn);
        }
        runner.dirty = true;
        publish(detections, &runner.engine, shared);
        // Counted after the detections are listed: a reader who sees a
        // batch counted also sees what it raised.
        counts.add_to(&shared.counters);
        // Under a steady stream the queue never runs dry: due traces and
        // checkpoints are handled between batches too.
        runner.flush_traces(shared);
        runner.checkpoint_if_due(shared);
    }
}

/// The first WAL record a restart from a checkpoint covering `covered`
/// may need, besides the records it names: the lowest of `named` (the
/// lowest it names, when known), `lowest_processed` (the lowest taken in
/// since the previous checkpoint: a record offered out of order, after
/// the checkpoint, comes after that one) and the record after the last it
/// covers. Nothing covered yet: everything (0).
fn keep_from(named: Option<Lsn>, lowest_processed: Option<Lsn>, covered: &LsnSet) -> Lsn {
    let Some(last) = covered.max() else {
        return 0;
    };
    [named, lowest_processed]
        .into_iter()
        .flatten()
        .fold(last.saturating_add(1), Lsn::min)
}

/// The engine settings of a `[detection]` section (trace assembly limits).
pub fn engine_config(config: &DetectionConfig) -> EngineConfig {
    EngineConfig {
        assembly: AssemblyConfig {
            idle: config.trace_idle,
            max_wait: config.trace_max_wait,
            max_traces: config.max_traces,
            max_spans_per_trace: config.max_spans_per_trace,
            max_spans: config.max_buffered_spans,
            ..AssemblyConfig::default()
        },
        max_keys_per_rule: config.max_keys_per_rule,
        log_join: LogJoinConfig {
            wait: config.log_join_wait,
            max_pending: config.log_join_max_pending,
            max_spans: config.log_join_max_spans,
            ..LogJoinConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// What one batch adds to the detection counters.
struct BatchCounts {
    spans: u64,
    logs: u64,
}

impl BatchCounts {
    fn add_to(&self, c: &Counters) {
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.spans.fetch_add(self.spans, Ordering::Relaxed);
        c.logs.fetch_add(self.logs, Ordering::Relaxed);
    }
}

/// Logs detections and hands them to the sinks and the API's recent list.
fn publish(detections: Vec<Detection>, engine: &Engine, shared: &Shared) {
    if detections.is_empty() {
        return;
    }
    if let Ok(mut stats) = shared.rule_stats.lock() {
        *stats = engine.stats().rules;
    }
    shared
        .counters
        .detections
        .fetch_add(detections.len() as u64, Ordering::Relaxed);
    for detection in &detections {
        let actor: Vec<String> = detection
            .key
            .iter()
            .map(|(field, value)| format!("{field}={value}"))
            .collect();
        tracing::warn!(
            rule = %detection.rule_id,
            severity = detection.severity.as_str(),
            actor = %actor.join(" "),
            count = detection.count,
            "detection: {}",
            detection.title
        );
    }
    if let Ok(sinks) = shared.sinks.lock() {
        for sink in sinks.iter() {
            sink.deliver(&detections);
        }
    }
    if let Ok(mut recent) = shared.recent.lock() {
        for detection in detections {
            if recent.len() == RECENT_DETECTIONS {
                recent.pop_front();
            }
            recent.push_back(detection);
        }
    }
}

impl Runner {
    fn enrich(&self, spans: &mut [tracewarden_model::SpanRecord]) {
        if let Some(geo) = &self.geo {
            // A span that gets a country is copied first (copy on write):
            // the hot tier shares it, and the country is for rules only.
            for record in spans.iter_mut() {
                geo.enrich(record);
            }
        }
    }

    /// Puts the spans a restored checkpoint named in WAL record `lsn` back
    /// into the trace-assembly buffer, enriched as when first processed.
    fn refill(&mut self, lsn: Lsn, records: Records) {
        let mut spans = records.spans;
        self.enrich(&mut spans);
        self.engine.refill(lsn, &spans);
    }

    /// Runs the rules over one batch's (WAL record `lsn`'s) spans and log
    /// records.
    fn process(&mut self, lsn: Lsn, records: Records) -> (Vec<Detection>, BatchCounts) {
        let Records { mut spans, logs } = records;
        self.enrich(&mut spans);
        let now = now_unix_nano();
        let span_count = spans.len() as u64;
        self.lowest_since_checkpoint =
            Some(self.lowest_since_checkpoint.map_or(lsn, |l| l.min(lsn)));
        // Moved, not cloned, into the trace-assembly buffer when a rule
        // needs whole traces; each noted with its place in the WAL.
        let mut detections = self.engine.process_record(spans, now, lsn);
        detections.extend(self.engine.process_logs(&logs, now));
        let counts = BatchCounts {
            spans: span_count,
            logs: logs.len() as u64,
        };
        (detections, counts)
    }

    /// Copies the engine's counters out for the API.
    fn publish_stats(&self, shared: &Shared) {
        let stats = self.engine.stats();
        if let Ok(mut rules) = shared.rule_stats.lock() {
            *rules = stats.rules;
        }
        if let Ok(mut assembly) = shared.assembly.lock() {
            *assembly = stats.assembly;
        }
        if let Ok(mut log_join) = shared.log_join.lock() {
            *log_join = stats.log_join;
        }
        self.publish_topology(shared, false);
    }

    /// Copies the topology policy out when an edge was learned since the
    /// last copy (or always, with `force`: the rules changed).
    fn publish_topology(&self, shared: &Shared, force: bool) {
        let learned = self.engine.learned_edges();
        if let Ok(mut topology) = shared.topology.lock()
            && (force || topology.0 != learned)
        {
            *topology = (learned, Arc::new(self.engine.topology_policy()));
        }
    }

    /// Evaluates the traces the assembly buffer holds complete by now, and
    /// the log records whose wait for their span ended.
    fn flush_traces(&mut self, shared: &Shared) {
        let now = now_unix_nano();
        if self.engine.next_flush_due().is_some_and(|due| due <= now) {
            let detections = self.engine.flush(now);
            for nanos in self.engine.take_trace_delays() {
                shared.trace_delay.record(Duration::from_nanos(nanos));
            }
            // The buffered traces are in the checkpoint: one evaluated now
            // must not come back from the current one after a crash.
            self.dirty = true;
            publish(detections, &self.engine, shared);
            self.publish_stats(shared);
        }
    }

    /// How long to wait for the next batch: until the next trace may
    /// complete or the next checkpoint is due, whichever is first.
    fn wait(&self) -> Duration {
        let mut wait = self.interval;
        if let Some(due) = self.engine.next_flush_due() {
            let until = Duration::from_nanos(due.saturating_sub(now_unix_nano()));
            wait = wait.min(until.max(Duration::from_millis(10)));
        }
        wait
    }

    /// Shutdown: buffered traces, and log records still waiting for their
    /// span, are evaluated as they are, then a last checkpoint is written
    /// (waited for).
    fn stop(&mut self, shared: &Shared) {
        let detections = self.engine.drain();
        publish(detections, &self.engine, shared);
        self.publish_stats(shared);
        self.checkpoint(shared, true);
        if let Some(writer) = self.writer.take() {
            writer.finish();
        }
    }

    fn checkpoint_if_due(&mut self, shared: &Shared) {
        if self.last_checkpoint.elapsed() >= self.interval {
            self.checkpoint(shared, false);
        }
    }

    /// Takes the engine state (the rules' state encoded, the buffered spans
    /// shared) with the LSNs it covers, between two batches on the only
    /// thread that changes either (so the two agree), and hands both to the
    /// writer. While the previous one is still being
    /// written, this turn is skipped (unless `last`): the state stays dirty.
    fn checkpoint(&mut self, shared: &Shared, last: bool) {
        let Some(writer) = &self.writer else {
            return;
        };
        self.last_checkpoint = Instant::now();
        if writer.is_busy() && !last {
            return;
        }
        // Spans the restored checkpoint named are still coming back from
        // the replay: the one on disk stays until they are in.
        if self.engine.is_refilling() {
            return;
        }
        // A failed write is retried with the state as it is now.
        let retry = shared.checkpoint_retry.swap(false, Ordering::AcqRel);
        if !self.dirty && !retry {
            return;
        }
        let covered = shared.covered.lock().map(|c| c.clone()).unwrap_or_default();
        let started = Instant::now();
        match self.engine.take_checkpoint() {
            Ok(taken) => {
                tracing::debug!(
                    buffered_spans = taken.buffered_spans(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "detection state taken for its checkpoint"
                );
                let keep = keep_from(None, self.lowest_since_checkpoint.take(), &covered);
                writer.write(covered, taken, keep);
                self.dirty = false;
            }
            Err(error) => {
                shared
                    .counters
                    .checkpoint_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "cannot take the detection state; retrying later");
            }
        }
    }
}

impl Shared {
    /// Called by the checkpoint writer's thread after each write.
    fn checkpoint_written(&self, result: checkpoint::WriteResult) {
        match result {
            Ok(report) => {
                tracing::debug!(
                    bytes = report.bytes,
                    write_ms = report.took.as_millis() as u64,
                    "detection checkpoint written"
                );
                self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters
                    .checkpoint_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.checkpoint_retry.store(true, Ordering::Release);
                tracing::error!(%error, "cannot write the detection checkpoint; retrying later");
            }
        }
    }
}

/// The rules `config` asks for: the built-in pack, then the rules of
/// `rules_dir` (replacing built-in ones with the same id). Every error of
/// every file, with its position, when one is wrong.
pub fn load_rules(config: &DetectionConfig) -> Result<Vec<Rule>, String> {
    let problems = config.site.validate();
    if !problems.is_empty() {
        return Err(format!("[detection.site]: {}", problems.join("; ")));
    }
    rule_set(config).map_err(|e| e.to_string())
}

/// The rule set of `config`, its site facts taken as valid: the built-in
/// pack (unless `builtin_rules = false`), then `rules_dir`, whose rules
/// replace built-in ones of the same id, then the exceptions of
/// `rules_dir` applied to the merged set; every error of all.
pub fn rule_set(config: &DetectionConfig) -> Result<Vec<Rule>, LoadErrors> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    if config.builtin_rules {
        match builtin_rules_for(&config.site) {
            Ok(found) => rules = found,
            Err(mut found) => errors.append(&mut found.0),
        }
    }
    if let Some(dir) = &config.rules_dir {
        match load_dir_parts_for(dir, &config.site) {
            Ok((extra, exceptions)) => {
                rules.retain(|rule| !extra.iter().any(|other| other.id == rule.id));
                rules.extend(extra);
                // An exception may name a built-in rule: applied here, to the
                // merged set, where every id is known.
                errors.extend(apply_exceptions(&mut rules, &exceptions, |_| false));
            }
            Err(mut found) => errors.append(&mut found.0),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(LoadErrors(errors))
    }
}

/// What identifies the state of a rules directory: each rule file's path,
/// length and modification time. `None` when it cannot be listed.
fn dir_fingerprint(dir: &std::path::Path) -> Option<Vec<(PathBuf, u64, Option<SystemTime>)>> {
    let files = tracewarden_detect::rule::rule_files(dir).ok()?;
    Some(
        files
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path).ok();
                let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                let modified = meta.and_then(|m| m.modified().ok());
                (path, len, modified)
            })
            .collect(),
    )
}

/// Checks `rules_dir` every `interval` and reloads the rules when a rule
/// file appears, disappears or changes. A reload that fails (a mistake in
/// a file) keeps the running rules, logs every error and is tried again at
/// the next change. The thread ends when the detector is dropped.
pub fn watch_rules(detector: &Arc<Detector>, interval: Duration) -> std::io::Result<()> {
    let Some(dir) = detector.rules_dir().cloned() else {
        return Ok(());
    };
    let weak = Arc::downgrade(detector);
    let mut seen = dir_fingerprint(&dir);
    std::thread::Builder::new()
        .name("rule-watcher".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(detector) = weak.upgrade() else {
                    return;
                };
                let now = dir_fingerprint(&dir);
                if now != seen {
                    seen = now;
                    // Errors are logged and kept in the reload status.
                    let _ = detector.reload();
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn rule(id: &str) -> Vec<Rule> {
        let yaml = format!(
            "id: {id}\ntitle: t\ndescription: d\nseverity: low\nkind: match\n\
             condition: '{{ span.http.route = \"/{id}\" }}'\n"
        );
        vec![tracewarden_detect::rule::parse_rule(&yaml, Path::new("test.yaml")).unwrap()]
    }

    #[test]
    fn a_restart_needs_the_named_records_and_every_one_after_the_checkpoint() {
        let covered = LsnSet::from_ranges([(1, 10)]);
        assert_eq!(
            keep_from(None, None, &LsnSet::new()),
            0,
            "nothing covered yet"
        );
        assert_eq!(keep_from(None, None, &covered), 11);
        assert_eq!(keep_from(None, Some(7), &covered), 7);
        assert_eq!(keep_from(Some(4), Some(7), &covered), 4);
    }

    /// The checkpoint names a buffered span by its WAL record and holds the
    /// WAL from there; a detector started from it wants that record back,
    /// holds the WAL from it before the store opens, and completes the trace
    /// only once the record came back.
    #[test]
    fn buffered_spans_are_held_in_the_wal_and_wanted_back() {
        let dir = tempfile::tempdir().unwrap();
        let nested = "id: nested\ntitle: t\nseverity: high\nkind: match\ncondition: '{ name = \"GET /\" } >> { name = \"POST /login\" }'\n";
        let rules =
            || vec![tracewarden_detect::rule::parse_rule(nested, Path::new("n.yaml")).unwrap()];
        let config = DetectionConfig {
            checkpoint_interval: Some(Duration::from_millis(10)),
            trace_idle: Duration::from_secs(3600),
            ..DetectionConfig::default()
        };
        let span = |id: u8, parent: Option<u8>, name: &str| {
            let mut span = tracewarden_model::Span::new(
                tracewarden_model::TraceId::from_bytes([7; 16]),
                tracewarden_model::SpanId::from_bytes([id; 8]),
                name,
            );
            span.parent_span_id = parent.map(|p| tracewarden_model::SpanId::from_bytes([p; 8]));
            tracewarden_model::SpanRecord::new(Arc::default(), Arc::default(), span)
        };
        let records = |spans| Records {
            spans,
            logs: Vec::new(),
        };
        let detector =
            Detector::start_with(rules(), config.clone(), Some(dir.path()), None).unwrap();
        let hold = detector.wal_hold().expect("a hold with checkpoints");
        assert_eq!(hold.get(), Some(0), "no checkpoint yet: everything");
        detector.offer(5, records(vec![span(2, Some(1), "POST /login")]));
        detector.offer(6, records(vec![span(1, None, "GET /")]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while hold.get() != Some(5) {
            assert!(Instant::now() < deadline, "hold {:?}", hold.get());
            std::thread::sleep(Duration::from_millis(5));
        }
        detector.shutdown();
        assert_eq!(hold.get(), Some(5));

        let detector = Detector::start_with(rules(), config, Some(dir.path()), None).unwrap();
        assert!(detector.wants(5) && detector.wants(6) && !detector.wants(7));
        assert_eq!(detector.wal_hold().and_then(|h| h.get()), Some(5));
        detector.refill(5, records(vec![span(2, Some(1), "POST /login")]));
        detector.refill(6, records(vec![span(1, None, "GET /")]));
        detector.refilled();
        // Complete at shutdown, with both spans: the rule fires.
        detector.shutdown();
        assert_eq!(detector.assembly_stats().missing_restored_spans, 0);
        assert_eq!(detector.recent(10).len(), 1);
    }

    #[test]
    fn the_rules_read_last_are_the_rules_that_run() {
        let detector = Arc::new(
            Detector::start_with(rule("old"), DetectionConfig::default(), None, None).unwrap(),
        );
        // Reload A reads the files (version 1) and is held before it hands
        // them over; reload B reads them after a change (version 2). B must
        // not switch first and then be overwritten by A's older rules.
        let (loaded, a_loaded) = mpsc::channel();
        let (go, a_go) = mpsc::channel::<()>();
        let a = std::thread::spawn({
            let detector = Arc::clone(&detector);
            move || {
                detector.reload_with(|| {
                    let rules = rule("v1");
                    loaded.send(()).unwrap();
                    let _ = a_go.recv_timeout(Duration::from_secs(10));
                    Ok(rules)
                })
            }
        });
        a_loaded.recv().unwrap();
        let (b_done, b_finished) = mpsc::channel();
        let b = std::thread::spawn({
            let detector = Arc::clone(&detector);
            move || {
                let result = detector.reload_with(|| Ok(rule("v2")));
                let _ = b_done.send(());
                result
            }
        });
        // Unserialised, B reads and switches now; serialised, it waits for A.
        let b_first = b_finished.recv_timeout(Duration::from_secs(2)).is_ok();
        go.send(()).unwrap();
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
        assert!(!b_first, "a second reload ran while the first was in hand");
        let ids: Vec<String> = detector.rules().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["v2"]);
        assert_eq!(detector.reload_status().reloads, 2);
        detector.shutdown();
    }
}
