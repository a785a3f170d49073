//! Receivers at run time: each has a bounded queue and a task that
//! delivers from it, so a slow or dead receiver never blocks the caller.
//!
//! [`Notifier::notify`] only enqueues (`try_send`): when a receiver's queue
//! is full the notification is dropped and counted. The receiver's task
//! sends each notification, retrying failures that may pass (transport
//! errors, HTTP 408, 429 and 5xx) with exponential backoff and jitter up to
//! `max_attempts`, each attempt bounded by `timeout`; a notification that
//! still fails is counted as failed and logged. Delivery is at least once:
//! a retry may repeat what a receiver half-took.

mod file;
mod http;
mod syslog;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::http::Uri;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{ReceiverConfig, ReceiverKind, SlackConfig, ValidConfig};
use crate::error::{AlertError, Result};
use crate::notification::Notification;
use crate::payload::alertmanager::postable_alerts;
use crate::payload::slack::slack_message;
use crate::payload::webhook::webhook_message;

pub use self::http::HttpClient;
use file::FileSink;
use syslog::SyslogSink;

/// A failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub retryable: bool,
    pub message: String,
}

impl SendError {
    pub fn retryable(message: String) -> SendError {
        SendError {
            retryable: true,
            message,
        }
    }

    pub fn permanent(message: String) -> SendError {
        SendError {
            retryable: false,
            message,
        }
    }
}

/// Counters of one receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub name: String,
    /// `webhook`, `slack`, `alertmanager`, `file`, `syslog` or `discard`.
    pub kind: &'static str,
    pub sent: u64,
    /// Given up after `max_attempts` or a permanent error.
    pub failed: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Waiting in the queue now.
    pub queued: usize,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
}

#[derive(Debug)]
struct Handle {
    kind: &'static str,
    capacity: usize,
    tx: mpsc::Sender<Notification>,
    counters: Arc<Counters>,
}

/// Delivers notifications to the configured receivers.
#[derive(Debug)]
pub struct Notifier {
    receivers: HashMap<Arc<str>, Handle>,
    tasks: Vec<JoinHandle<()>>,
    /// Notifications for a receiver that does not exist.
    unknown: AtomicU64,
}

impl Notifier {
    /// Starts a task per receiver on the current tokio runtime. Relative
    /// file paths are resolved against `base_dir`.
    pub fn start(config: &ValidConfig, base_dir: &Path) -> Result<Notifier> {
        let mut receivers = HashMap::new();
        let mut tasks = Vec::new();
        let mut http: Option<HttpClient> = None;
        let external_url = config.config.external_url.clone();
        // One client for every HTTP receiver; it connects within the
        // shortest of their timeouts (each attempt is bounded by its own).
        let connect_timeout = config
            .config
            .receivers
            .iter()
            .map(|r| r.timeout)
            .min()
            .unwrap_or(Duration::from_secs(10));
        for cfg in &config.config.receivers {
            let kind = cfg.kind().map_err(|kinds| AlertError::Receiver {
                receiver: cfg.name.clone(),
                message: format!("a receiver has one kind, found {}", kinds.join(" and ")),
            })?;
            let mut client = || -> Result<HttpClient> {
                if let Some(c) = &http {
                    return Ok(c.clone());
                }
                let c =
                    HttpClient::new(connect_timeout).map_err(|message| AlertError::Receiver {
                        receiver: cfg.name.clone(),
                        message,
                    })?;
                http = Some(c.clone());
                Ok(c)
            };
            let uri = |url: &str, suffix: &str| -> Result<Uri> {
                let full = format!("{}{suffix}", url.trim_end_matches('/'));
                full.parse().map_err(|e| AlertError::Receiver {
                    receiver: cfg.name.clone(),
                    message: format!("`{full}` is not a URL: {e}"),
                })
            };
            let sink = match &kind {
                ReceiverKind::Webhook(c) => Sink::Webhook {
                    http: client()?,
                    uri: c.url.parse().map_err(|e| AlertError::Receiver {
                        receiver: cfg.name.clone(),
                        message: format!("`{}` is not a URL: {e}", c.url),
                    })?,
                    max_alerts: c.max_alerts,
                },
                ReceiverKind::Slack(c) => Sink::Slack {
                    http: client()?,
                    uri: uri(&c.url, "")?,
                    config: c.clone(),
                },
                ReceiverKind::Alertmanager(c) => Sink::Alertmanager {
                    http: client()?,
                    uri: uri(&c.url, "/api/v2/alerts")?,
                    resend_interval: c.resend_interval,
                },
                ReceiverKind::File(c) => Sink::File(FileSink::new(base_dir.join(&c.path))),
                ReceiverKind::Syslog(c) => Sink::Syslog(SyslogSink::new(c)),
                ReceiverKind::Discard => Sink::Discard,
            };
            let (tx, rx) = mpsc::channel(cfg.queue_capacity);
            let counters = Arc::new(Counters::default());
            let worker = Worker {
                name: cfg.name.clone(),
                sink,
                external_url: external_url.clone(),
                delivery: Delivery::of(cfg),
                counters: counters.clone(),
            };
            tasks.push(tokio::spawn(worker.run(rx)));
            receivers.insert(
                Arc::from(cfg.name.as_str()),
                Handle {
                    kind: kind_name(&kind),
                    capacity: cfg.queue_capacity,
                    tx,
                    counters,
                },
            );
        }
        Ok(Notifier {
            receivers,
            tasks,
            unknown: AtomicU64::new(0),
        })
    }

    /// Queues a notification for its receiver; never waits.
    pub fn notify(&self, notification: Notification) {
        let Some(handle) = self.receivers.get(&notification.receiver) else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(receiver = %notification.receiver, "notification for an unknown receiver dropped");
            return;
        };
        if let Err(e) = handle.tx.try_send(notification) {
            handle.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let (reason, n) = match e {
                mpsc::error::TrySendError::Full(n) => ("queue full", n),
                mpsc::error::TrySendError::Closed(n) => ("receiver stopped", n),
            };
            tracing::warn!(receiver = %n.receiver, group = %n.group_key, reason, "notification dropped");
        }
    }

    /// Counters of every receiver, by name.
    pub fn stats(&self) -> Vec<ReceiverStats> {
        let mut out: Vec<ReceiverStats> = self
            .receivers
            .iter()
            .map(|(name, h)| ReceiverStats {
                name: name.to_string(),
                kind: h.kind,
                sent: h.counters.sent.load(Ordering::Relaxed),
                failed: h.counters.failed.load(Ordering::Relaxed),
                dropped: h.counters.dropped.load(Ordering::Relaxed),
                retries: h.counters.retries.load(Ordering::Relaxed),
                queued: h.capacity - h.tx.capacity(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Notifications addressed to receivers that do not exist.
    pub fn unknown(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed)
    }

    /// Stops taking notifications and waits up to `deadline` for the queues
    /// to drain; returns whether they did (tasks still running are
    /// aborted).
    pub async fn shutdown(self, deadline: Duration) -> bool {
        let Notifier {
            receivers, tasks, ..
        } = self;
        drop(receivers);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = join_all(tasks);
        match tokio::time::timeout(deadline, all).await {
            Ok(()) => true,
            Err(_) => {
                for a in aborts {
                    a.abort();
                }
                false
            }
        }
    }
}

async fn join_all(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        // A task that panicked has nothing left to drain.
        let _ = task.await;
    }
}

fn kind_name(kind: &ReceiverKind) -> &'static str {
    match kind {
        ReceiverKind::Webhook(_) => "webhook",
        ReceiverKind::Slack(_) => "slack",
        ReceiverKind::Alertmanager(_) => "alertmanager",
        ReceiverKind::File(_) => "file",
        ReceiverKind::Syslog(_) => "syslog",
        ReceiverKind::Discard => "discard",
    }
}

/// Retry and timeout options of a receiver.
#[derive(Clone, Copy, Debug)]
struct Delivery {
    max_attempts: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
    timeout: Duration,
}

impl Delivery {
    fn of(cfg: &ReceiverConfig) -> Delivery {
        Delivery {
            max_attempts: cfg.max_attempts.max(1),
            backoff_initial: cfg.backoff_initial,
            backoff_max: cfg.backoff_max,
            timeout: cfg.timeout,
        }
    }
}

/// The delay before retry number `retry` (1 for the first retry):
/// `initial * 2^(retry-1)` capped at `max`, then a random point in its
/// upper half, so receivers that failed together do not retry together.
pub fn backoff(initial: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let base = initial.saturating_mul(factor).min(max);
    let half = base / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rand::random_range(0..=jitter_nanos))
}

enum Sink {
    Webhook {
        http: HttpClient,
        uri: Uri,
        max_alerts: usize,
    },
    Slack {
        http: HttpClient,
        uri: Uri,
        config: SlackConfig,
    },
    Alertmanager {
        http: HttpClient,
        uri: Uri,
        resend_interval: Duration,
    },
    File(FileSink),
    Syslog(SyslogSink),
    Discard,
}

impl Sink {
    async fn send(&mut self, n: &Notification, external_url: &str) -> Result<(), SendError> {
        let encode = |e: serde_json::Error| SendError::permanent(format!("cannot encode: {e}"));
        match self {
            Sink::Webhook {
                http,
                uri,
                max_alerts,
            } => {
                let body = serde_json::to_vec(&webhook_message(n, external_url, *max_alerts))
                    .map_err(encode)?;
                http.post_json(uri, body).await
            }
            Sink::Slack { http, uri, config } => {
                let body =
                    serde_json::to_vec(&slack_message(n, external_url, config)).map_err(encode)?;
                http.post_json(uri, body).await
            }
            Sink::Alertmanager {
                http,
                uri,
                resend_interval,
            } => {
                let body = serde_json::to_vec(&postable_alerts(n, external_url, *resend_interval))
                    .map_err(encode)?;
                http.post_json(uri, body).await
            }
            Sink::File(file) => {
                let line =
                    serde_json::to_vec(&webhook_message(n, external_url, 0)).map_err(encode)?;
                file.append(line).await
            }
            Sink::Syslog(syslog) => syslog.send(n).await,
            Sink::Discard => Ok(()),
        }
    }
}

struct Worker {
    name: String,
    sink: Sink,
    external_url: String,
    delivery: Delivery,
    counters: Arc<Counters>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Notification>) {
        while let Some(n) = rx.recv().await {
            self.deliver(&n).await;
        }
    }

    async fn deliver(&mut self, n: &Notification) {
        let d = self.delivery;
        let mut attempt = 1;
        loop {
            let outcome = tokio::time::timeout(d.timeout, self.sink.send(n, &self.external_url))
                .await
                .unwrap_or_else(|_| {
                    Err(SendError::retryable(format!(
                        "no answer within {}",
                        crate::config::format_duration(d.timeout)
                    )))
                });
            let error = match outcome {
                Ok(()) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => e,
            };
            if !error.retryable || attempt >= d.max_attempts {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    receiver = %self.name,
                    group = %n.group_key,
                    attempts = attempt,
                    error = %error.message,
                    "notification failed"
                );
                return;
            }
            tracing::debug!(receiver = %self.name, attempt, error = %error.message, "notification attempt failed; retrying");
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(d.backoff_initial, d.backoff_max, attempt)).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for (retry, base_ms) in [
            (1u32, 100u64),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            for _ in 0..50 {
                let d = backoff(initial, max, retry);
                let base = Duration::from_millis(base_ms);
                assert!(d >= base / 2 && d <= base, "retry {retry}: {d:?}");
            }
        }
    }
}
