//! The [`Store`]: the WAL and the hot tier behind one handle.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::oneshot;
use tracewarden_model::{Batch, TraceId};

use crate::error::{Result, StoreError};
use crate::hot::{HotTier, LogEntry, Trace};
use crate::wal::directory::{FsWalDirectory, WalDirectory};
use crate::wal::replay::{ReplayReport, replay};
use crate::wal::writer::{Command, Queued, Shared, Writer};
use crate::wal::{Frame, Lsn, WalOptions};

/// How long an overloaded sender is asked to wait before retrying. The
/// queue drains in a few group commits (milliseconds each) when the disk
/// keeps up; a second spreads retries without idling a healthy sender long.
pub const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where and how the store keeps its data.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The store's directory; the WAL lives in `data_dir/wal`.
    pub data_dir: PathBuf,
    pub wal: WalOptions,
}

impl StoreOptions {
    /// Options with the default WAL settings.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            data_dir: data_dir.into(),
            wal: WalOptions::default(),
        }
    }
}

/// Counters of the store, for metrics and the status API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreStats {
    /// Spans in the hot tier.
    pub spans: u64,
    /// Log records in the hot tier (with or without a trace id).
    pub logs: u64,
    /// Traces in the hot tier.
    pub traces: u64,
    /// Bytes in WAL files.
    pub wal_bytes: u64,
    /// WAL files.
    pub wal_files: u64,
    /// The last LSN made durable.
    pub last_lsn: Lsn,
    /// Appends acknowledged since open.
    pub appends: u64,
    /// `fdatasync` calls on WAL files since open; with group commit, fewer than appends.
    pub fsyncs: u64,
    /// Encoded bytes waiting for the WAL writer.
    pub pending_bytes: u64,
    /// Appends waiting for the WAL writer.
    pub pending_appends: u64,
}

/// The durable store: appends go through the WAL into the hot tier.
///
/// `Send + Sync`; share it as `Arc<Store>`. Dropping it closes it.
pub struct Store {
    hot: Arc<HotTier>,
    shared: Arc<Shared>,
    commands: Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    options: WalOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Store {
    /// Opens (creating) `data_dir/wal`, replays every WAL record into the hot
    /// tier, and starts the WAL writer. Blocking: run it in `spawn_blocking`.
    pub fn open(options: StoreOptions) -> Result<(Store, ReplayReport)> {
        let path = options.data_dir.join("wal");
        let directory = FsWalDirectory::open(&path)
            .map_err(|e| StoreError::io("create WAL directory", &path, e))?;
        Store::open_in(Arc::new(directory), options.wal)
    }

    /// [`Store::open`] with the WAL in any [`WalDirectory`] (tests inject
    /// failures through one).
    pub fn open_in(
        directory: Arc<dyn WalDirectory>,
        options: WalOptions,
    ) -> Result<(Store, ReplayReport)> {
        options.validate().map_err(StoreError::InvalidOptions)?;
        let hot = Arc::new(HotTier::new());
        let replayed = replay(&*directory, &mut |batch| hot.apply(batch))?;
        let report = replayed.report;
        tracing::info!(
            wal = %directory.path().display(),
            files = report.files,
            records = report.records,
            spans = report.spans,
            logs = report.logs,
            torn_tail_bytes = report.torn_tail_bytes,
            corrupt_records = report.corrupt_records,
            last_lsn = report.last_lsn,
            "replayed WAL"
        );

        let shared = Arc::new(Shared::default());
        shared.last_lsn.store(report.last_lsn, Ordering::Release);
        shared
            .wal_bytes
            .store(replayed.wal_bytes, Ordering::Relaxed);
        shared.wal_files.store(report.files, Ordering::Relaxed);
        let writer = Writer::open(
            Arc::clone(&directory),
            options.clone(),
            Arc::clone(&shared),
            replayed.tail,
            replayed.next_lsn,
        )?;
        let (commands, receiver) = mpsc::channel();
        let handle = writer
            .spawn(receiver)
            .map_err(|e| StoreError::io("start WAL writer thread for", directory.path(), e))?;
        let store = Store {
            hot,
            shared,
            commands,
            writer: Mutex::new(Some(handle)),
            options,
        };
        Ok((store, report))
    }

    /// Encodes the batch, appends it to the WAL, resolves once the record is
    /// fsynced (group commit: concurrent appends share one fsync), then
    /// applies it to the hot tier and returns the record's LSN.
    ///
    /// `Err(StoreError::Overloaded)` at once, without queueing, when more than
    /// `max_pending_bytes` wait for the writer.
    ///
    /// Cancel-safe for the store: once queued, the record is written and
    /// applied to the hot tier even if this future is dropped (the wait runs
    /// in a spawned task when a tokio runtime is present). An `Err` other than
    /// `Overloaded`, `TooLarge` or `Codec` does not prove the batch is absent
    /// after a reopen: a write can reach the disk before its fsync fails.
    pub async fn append(&self, batch: Batch) -> Result<Lsn> {
        if let Some(reason) = self.shared.failure.get() {
            return Err(StoreError::Failed {
                reason: reason.clone(),
            });
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        // Encoding runs here, in the caller's task, so encodes of concurrent
        // appends use every core while the writer thread only writes.
        let frame = Frame::encode(&batch)?;
        let bytes = frame.len();
        let before = self.shared.pending_bytes.fetch_add(bytes, Ordering::AcqRel);
        // A batch alone is always taken, or one larger than the limit could
        // never be; otherwise the queue stays within the limit.
        if before > 0 && before.saturating_add(bytes) > self.options.max_pending_bytes {
            self.shared.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(StoreError::Overloaded {
                retry_after: OVERLOAD_RETRY_AFTER,
            });
        }
        let (reply, answer) = oneshot::channel();
        let queued = Queued::new(frame, reply, Arc::clone(&self.shared));
        if self.commands.send(Command::Append(queued)).is_err() {
            // The writer is gone; the returned command is dropped, which
            // releases its pending bytes.
            return Err(self.shared.stopped_error());
        }

        let hot = Arc::clone(&self.hot);
        let shared = Arc::clone(&self.shared);
        let finish = async move {
            let lsn = answer.await.map_err(|_| shared.stopped_error())??;
            hot.apply(batch);
            Ok(lsn)
        };
        match tokio::runtime::Handle::try_current() {
            // A spawned task is not cancelled with this future, so a durable
            // record always reaches the hot tier.
            Ok(runtime) => runtime
                .spawn(finish)
                .await
                .unwrap_or(Err(StoreError::Closed)),
            Err(_) => finish.await,
        }
    }

    /// The whole trace: spans (each with its resource and scope) ordered by
    /// start time, and the log records carrying its trace id ordered by
    /// time. `None` if no span or log record carries the id.
    pub fn trace(&self, trace_id: TraceId) -> Option<Trace> {
        self.hot.trace(trace_id)
    }

    /// Ids of every trace held, in no particular order.
    pub fn trace_ids(&self) -> Vec<TraceId> {
        self.hot.trace_ids()
    }

    /// Log records that carry no trace id, ordered by time.
    pub fn logs_without_trace(&self) -> Vec<LogEntry> {
        self.hot.untraced_logs()
    }

    pub fn stats(&self) -> StoreStats {
        let hot = self.hot.counts();
        let shared = &self.shared;
        StoreStats {
            spans: hot.spans,
            logs: hot.logs,
            traces: hot.traces,
            wal_bytes: shared.wal_bytes.load(Ordering::Relaxed),
            wal_files: shared.wal_files.load(Ordering::Relaxed),
            last_lsn: shared.last_lsn.load(Ordering::Acquire),
            appends: shared.appends.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
            pending_bytes: shared.pending_bytes.load(Ordering::Relaxed) as u64,
            pending_appends: shared.pending_appends.load(Ordering::Relaxed) as u64,
        }
    }

    /// Stops the writer thread after it has written and fsynced everything
    /// queued before the call (graceful shutdown); later appends get
    /// `Closed`. Blocks until then (one group commit at most). Idempotent.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Fails only when the writer already stopped.
        let _ = self.commands.send(Command::Close);
        // The lock is held through the join so a concurrent close also
        // returns only once the writer has drained.
        let mut writer = self.writer.lock();
        if let Some(handle) = writer.take()
            && handle.join().is_err()
        {
            tracing::error!("the WAL writer thread panicked");
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}
