//! Detection on acknowledged batches.
//!
//! The pipeline hands every batch the WAL acknowledged to a [`Detector`]
//! through a bounded queue and never waits on it: a dedicated thread runs
//! the rule engine (tracewarden-detect) and keeps the most recent
//! detections for the API. When the queue is full (detection slower than
//! ingest) the batch is not detected on, and that is counted and logged,
//! never a reason to slow or refuse ingest. Batches replayed from the WAL at
//! start-up are not detected on again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracewarden_detect::engine::{Detection, Engine, EngineConfig, RuleStats};
use tracewarden_detect::rule::{Rule, builtin_rules_for, load_dir_for};

use crate::config::DetectionConfig;
use tracewarden_model::{Batch, LogEntry, SpanRecord};

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
    pub tags: Vec<String>,
    pub enabled: bool,
    /// Why an enabled rule does not run (a site fact left empty).
    pub inactive: Option<String>,
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
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    spans: AtomicU64,
    logs: AtomicU64,
    dropped_batches: AtomicU64,
    dropped_spans: AtomicU64,
    detections: AtomicU64,
}

struct Shared {
    counters: Counters,
    recent: Mutex<VecDeque<Detection>>,
    rule_stats: Mutex<Vec<RuleStats>>,
}

/// The detection thread's front: cheap to share behind an `Arc`.
pub struct Detector {
    sender: SyncSender<Batch>,
    shared: Arc<Shared>,
    rules: Vec<RuleInfo>,
}

impl Detector {
    /// Starts the detection thread with `rules`; `queue` batches may wait.
    pub fn start(rules: Vec<Rule>, queue: usize) -> std::io::Result<Detector> {
        let infos = rules
            .iter()
            .map(|rule| RuleInfo {
                id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity.as_str(),
                kind: rule.kind.name(),
                source: rule.source.as_str(),
                tags: rule.tags.clone(),
                enabled: rule.enabled,
                inactive: rule.inactive.clone(),
            })
            .collect();
        let (sender, receiver) = std::sync::mpsc::sync_channel(queue.max(1));
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            recent: Mutex::new(VecDeque::new()),
            rule_stats: Mutex::new(Vec::new()),
        });
        let engine = Engine::with_config(rules, EngineConfig::default());
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("detection".to_string())
            .spawn(move || run(engine, receiver, &thread_shared))?;
        Ok(Detector {
            sender,
            shared,
            rules: infos,
        })
    }

    /// Queues an acknowledged batch; never blocks.
    pub fn offer(&self, batch: Batch) {
        let spans = batch.span_count() as u64;
        if spans == 0 && batch.log_count() == 0 {
            return;
        }
        match self.sender.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
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

    /// The most recent detections, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Detection> {
        self.shared
            .recent
            .lock()
            .map(|recent| recent.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
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
        }
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
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

fn run(mut engine: Engine, batches: Receiver<Batch>, shared: &Shared) {
    let mut spans: Vec<SpanRecord> = Vec::new();
    let mut logs: Vec<LogEntry> = Vec::new();
    // The per-rule counters are copied out for the API when the queue runs
    // dry and before detections are published, not after every batch.
    let publish_stats = |engine: &Engine| {
        if let Ok(mut stats) = shared.rule_stats.lock() {
            *stats = engine.stats().rules;
        }
    };
    loop {
        let batch = match batches.try_recv() {
            Ok(batch) => batch,
            Err(TryRecvError::Empty) => {
                publish_stats(&engine);
                match batches.recv() {
                    Ok(batch) => batch,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => return,
        };
        spans.clear();
        for resource_spans in batch.resource_spans {
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    spans.push(SpanRecord {
                        resource: Arc::clone(&resource_spans.resource),
                        scope: Arc::clone(&scope_spans.scope),
                        span,
                    });
                }
            }
        }
        logs.clear();
        for resource_logs in batch.resource_logs {
            for scope_logs in resource_logs.scope_logs {
                for record in scope_logs.log_records {
                    logs.push(LogEntry {
                        resource: Arc::clone(&resource_logs.resource),
                        scope: Arc::clone(&scope_logs.scope),
                        record,
                    });
                }
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut detections = engine.process(&spans, now);
        detections.extend(engine.process_logs(&logs, now));
        shared.counters.batches.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .spans
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        shared
            .counters
            .logs
            .fetch_add(logs.len() as u64, Ordering::Relaxed);
        if detections.is_empty() {
            continue;
        }
        publish_stats(&engine);
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
        if let Ok(mut recent) = shared.recent.lock() {
            for detection in detections {
                if recent.len() == RECENT_DETECTIONS {
                    recent.pop_front();
                }
                recent.push_back(detection);
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
    let mut rules = if config.builtin_rules {
        builtin_rules_for(&config.site).map_err(|e| format!("the built-in rules: {e}"))?
    } else {
        Vec::new()
    };
    if let Some(dir) = &config.rules_dir {
        let extra = load_dir_for(dir, &config.site).map_err(|e| e.to_string())?;
        rules.retain(|rule| !extra.iter().any(|other| other.id == rule.id));
        rules.extend(extra);
    }
    Ok(rules)
}
