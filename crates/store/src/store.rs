//! The [`Store`]: the WAL, the hot tier and the segments behind one handle.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::oneshot;
use tracewarden_model::{Batch, Records, TraceId};

use crate::encryption::EncryptionKey;
use crate::error::{Result, StoreError};
use crate::hot::{HotTier, LogEntry, SpanRecord, Trace};
use crate::integrity::{SEGMENTS_DIR, load_signing_key};
use crate::lifecycle::recovery::recover;
use crate::lifecycle::tiers::Tiers;
use crate::lifecycle::worker::{self, Signal};
use crate::lifecycle::{FailPoints, Lifecycle, LifecycleOptions, LifecycleStats, LsnSet};
use crate::segment::{SegmentWriteOptions, SpanFilter};
use crate::wal::directory::{FsWalDirectory, WalDirectory};
use crate::wal::replay::{ReplayReport, replay};
use crate::wal::trim::file_ranges;
use crate::wal::writer::{Command, Queued, Shared, Writer};
use crate::wal::{Frame, Lsn, WalHold, WalOptions};

/// How long an overloaded sender is asked to wait before retrying. The
/// queue drains in a few group commits (milliseconds each) when the disk
/// keeps up; a second spreads retries without idling a healthy sender long.
pub const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Appends wait (up to `memory_wait`), then are refused with
/// [`StoreError::Overloaded`], while the in-memory tiers hold this many times
/// `flush_spans` spans and log records: flushes cannot keep up, and memory
/// must not grow without bound. A lone batch is still taken below the limit,
/// however large. Two: the frozen tier being flushed plus a hot tier as
/// large; at the default 1M spans per flush that bounds the tiers near 3 GiB
/// (4 let a 30 s benchmark reach 7.6 GiB RSS).
pub const MEMORY_LIMIT_FLUSHES: u64 = 2;

/// The refusal of an append the store cannot take now.
fn overloaded() -> StoreError {
    StoreError::Overloaded {
        retry_after: OVERLOAD_RETRY_AFTER,
    }
}

/// Where and how the store keeps its data.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The store's directory: the WAL lives in `data_dir/wal`, the segments
    /// in `data_dir/segments`.
    pub data_dir: PathBuf,
    pub wal: WalOptions,
    /// Flush triggers, compaction, retention, signing key.
    pub lifecycle: LifecycleOptions,
    /// How segment files are written.
    pub segment: SegmentWriteOptions,
    /// Run the lifecycle thread, which flushes by size and age and runs
    /// compaction and retention (default true). Tests that drive
    /// [`Store::flush`], [`Store::compact`] and [`Store::enforce_retention`]
    /// by hand turn it off.
    pub lifecycle_thread: bool,
    /// Failure injection for crash tests; `None` in production.
    pub fail_points: Option<FailPoints>,
    /// Keeps the WAL files from its LSN on through every trim, at open too
    /// (default `None`: files go once segments hold their records). The
    /// server's detection holds the records its checkpoint names, to get them
    /// back from [`Store::open_observed`] at the next start.
    pub wal_hold: Option<Arc<WalHold>>,
}

impl StoreOptions {
    /// Options with the default settings.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            data_dir: data_dir.into(),
            wal: WalOptions::default(),
            lifecycle: LifecycleOptions::default(),
            segment: SegmentWriteOptions::default(),
            lifecycle_thread: true,
            fail_points: None,
            wal_hold: None,
        }
    }
}

/// Counters of the store, for metrics and the status API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreStats {
    /// Spans in memory (the hot tier and a tier being flushed).
    pub spans: u64,
    /// Log records in memory (with or without a trace id).
    pub logs: u64,
    /// Traces in memory (a trace in both in-memory tiers counts twice).
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
    /// How long those WAL file fsyncs took.
    pub wal_fsync: crate::wal::FsyncHistogram,
    /// Encoded bytes waiting for the WAL writer.
    pub pending_bytes: u64,
    /// Appends waiting for the WAL writer.
    pub pending_appends: u64,
    /// Segments served.
    pub segments: u64,
    /// Bytes of their data files.
    pub segment_bytes: u64,
    /// Spans in segments.
    pub segment_spans: u64,
    /// Log records in segments.
    pub segment_logs: u64,
    /// Flushes of the hot tier into a segment since open.
    pub flushes: u64,
    /// Flushes that failed (and were retried) since open.
    pub flush_failures: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// Segments dropped by retention since open.
    pub dropped_segments: u64,
    /// Segments in quarantine (corrupt, not served).
    pub quarantined_segments: u64,
    /// WAL files removed since open because segments hold their records.
    pub trimmed_wal_files: u64,
    /// Appends that found memory full (flushes behind) and waited for a
    /// flush since open; those still refused after the wait are counted by
    /// the receivers as overloaded.
    pub memory_waits: u64,
}

/// The durable store: appends go through the WAL into the hot tier, which
/// the lifecycle flushes into Parquet segments.
///
/// `Send + Sync`; share it as `Arc<Store>`. [`Store::close`] is the graceful
/// shutdown (it flushes the hot tier); dropping the store stops it without a
/// flush, leaving the hot tier's data in the WAL for the next open.
pub struct Store {
    tiers: Arc<Tiers>,
    shared: Arc<Shared>,
    commands: Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    options: WalOptions,
    lifecycle: Arc<Mutex<Lifecycle>>,
    lifecycle_stats: Arc<LifecycleStats>,
    signal: Arc<Signal>,
    worker: Mutex<Option<JoinHandle<()>>>,
    flush_spans: u64,
    /// Appends wait, then are refused, while the in-memory tiers hold this
    /// many rows.
    memory_limit: u64,
    /// How long an append waits for a flush to bring memory under the limit.
    memory_wait: Duration,
    /// Appends that found memory full and waited (counted once each).
    memory_waits: AtomicU64,
    /// Set once [`Store::close`] ran its final flush.
    flushed_at_close: AtomicBool,
    /// WAL records are encrypted (by the writer, which has the key).
    encrypted: bool,
    /// The exclusive lock on `data_dir/LOCK`, released when the store is
    /// dropped (or the process dies: the kernel releases it).
    _data_dir_lock: std::fs::File,
}

/// Takes the exclusive lock on `data_dir/LOCK`, creating the directory and
/// the file as needed.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::io("create data directory", data_dir, e))?;
    let path = data_dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: data_dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io("lock", &path, e)),
    }
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
    /// Opens (creating) `data_dir/wal` and `data_dir/segments`, recovers the
    /// segments (see [`crate::lifecycle`]), replays the WAL records no
    /// segment holds into the hot tier, and starts the WAL writer and the
    /// lifecycle thread. Blocking: run it in `spawn_blocking`.
    pub fn open(options: StoreOptions) -> Result<(Store, ReplayReport)> {
        Store::open_observed(options, &|_| false, &mut |_, _| {})
    }

    /// [`Store::open`], showing `observer` each WAL record replayed into
    /// the hot tier (its LSN and records, shared with the hot tier) before
    /// it is applied: the detection thread catches up on what its last
    /// checkpoint did not cover.
    ///
    /// Records a segment already holds are not replayed. Those still in the
    /// WAL (see [`StoreOptions::wal_hold`]) for whose LSN `wants_in_segments`
    /// is true are decoded and shown to `observer` too, never applied to the
    /// hot tier (counted in [`ReplayReport::observed_in_segments`]): the
    /// detection restores the spans its checkpoint names. Every record is
    /// shown in LSN order. One of those that fails to decode is reported as
    /// corrupt and left out; it never fails the open.
    pub fn open_observed(
        options: StoreOptions,
        wants_in_segments: &dyn Fn(Lsn) -> bool,
        observer: &mut dyn FnMut(Lsn, &Records),
    ) -> Result<(Store, ReplayReport)> {
        let path = options.data_dir.join("wal");
        let directory = FsWalDirectory::open(&path)
            .map_err(|e| StoreError::io("create WAL directory", &path, e))?;
        Store::open_full(Arc::new(directory), options, wants_in_segments, observer)
    }

    /// [`Store::open`] with the WAL in any [`WalDirectory`] (tests inject
    /// failures through one) and default options otherwise; the segments go
    /// in `segments/` next to the WAL directory.
    pub fn open_in(
        directory: Arc<dyn WalDirectory>,
        options: WalOptions,
    ) -> Result<(Store, ReplayReport)> {
        let wal_path = directory.path();
        let data_dir = wal_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(wal_path)
            .to_path_buf();
        Store::open_with(
            directory,
            StoreOptions {
                wal: options,
                ..StoreOptions::new(data_dir)
            },
        )
    }

    /// [`Store::open`] with the WAL in any [`WalDirectory`]; `options.data_dir`
    /// holds the segments.
    pub fn open_with(
        directory: Arc<dyn WalDirectory>,
        options: StoreOptions,
    ) -> Result<(Store, ReplayReport)> {
        Store::open_full(directory, options, &|_| false, &mut |_, _| {})
    }

    fn open_full(
        directory: Arc<dyn WalDirectory>,
        options: StoreOptions,
        wants_in_segments: &dyn Fn(Lsn) -> bool,
        observer: &mut dyn FnMut(Lsn, &Records),
    ) -> Result<(Store, ReplayReport)> {
        options.wal.validate().map_err(StoreError::InvalidOptions)?;
        options
            .lifecycle
            .validate()
            .map_err(StoreError::InvalidOptions)?;
        let signing_key = match &options.lifecycle.signing_key_file {
            Some(path) => Some(load_signing_key(path)?),
            None => None,
        };
        let encryption_key = match &options.lifecycle.encryption_key_file {
            Some(path) => Some(Arc::new(EncryptionKey::from_file(path)?)),
            None => None,
        };
        let data_dir_lock = lock_data_dir(&options.data_dir)?;
        let segments_dir = options.data_dir.join(SEGMENTS_DIR);
        let recovered = recover(&segments_dir, signing_key.clone(), encryption_key.clone())?;
        let mut covered = LsnSet::new();
        for live in recovered.live.values() {
            covered.union_with(&live.lsns());
        }

        let hot = HotTier::new();
        let replayed = replay(
            &*directory,
            &covered,
            encryption_key.as_deref(),
            wants_in_segments,
            &mut |lsn, batch, in_segment| {
                let records = Records::from_batch(batch);
                observer(lsn, &records);
                // A segment serves it already.
                if !in_segment {
                    hot.apply(lsn, records);
                }
            },
        )?;
        let report = replayed.report;
        tracing::info!(
            wal = %directory.path().display(),
            files = report.files,
            records = report.records,
            skipped_records = report.skipped_records,
            observed_in_segments = report.observed_in_segments,
            spans = report.spans,
            logs = report.logs,
            torn_tail_bytes = report.torn_tail_bytes,
            corrupt_records = report.corrupt_records,
            last_lsn = report.last_lsn,
            segments = recovered.live.len(),
            quarantined_segments = recovered.quarantined,
            "opened the store"
        );

        // LSNs of the WAL's range that neither a segment nor the hot tier
        // holds were lost to damage (reported above): they must not keep
        // their WAL files forever.
        let mut known = covered.clone();
        known.union_with(&hot.lsns());
        let dead_lsns = match file_ranges(&*directory)?.first() {
            Some(first) => known.gaps_in(first.first, report.last_lsn),
            None => LsnSet::new(),
        };
        // LSNs never go back, even if every WAL file were gone: a reused LSN
        // would be skipped at the next replay as already in a segment.
        let next_lsn = replayed
            .next_lsn
            .max(covered.max().map_or(1, |max| max.saturating_add(1)));

        let shared = Arc::new(Shared::default());
        shared
            .last_lsn
            .store(next_lsn.saturating_sub(1), Ordering::Release);
        shared
            .wal_bytes
            .store(replayed.wal_bytes, Ordering::Relaxed);
        shared.wal_files.store(report.files, Ordering::Relaxed);
        let writer = Writer::open(
            Arc::clone(&directory),
            options.wal.clone(),
            Arc::clone(&shared),
            replayed.tail,
            next_lsn,
            encryption_key.clone(),
        )?;

        let tiers = Arc::new(Tiers::new(
            hot,
            recovered
                .live
                .values()
                .map(|live| Arc::clone(&live.segment))
                .collect(),
        ));
        let lifecycle_stats = Arc::new(LifecycleStats::default());
        lifecycle_stats
            .quarantined_segments
            .store(recovered.quarantined, Ordering::Relaxed);
        let lifecycle = Lifecycle {
            dir: segments_dir,
            options: options.lifecycle.clone(),
            segment_options: options.segment.clone(),
            fail_points: options.fail_points.clone(),
            signing_key,
            encryption_key: encryption_key.clone(),
            chain: Some(recovered.chain),
            live: recovered.live,
            next_id: recovered.next_id,
            tiers: Arc::clone(&tiers),
            wal: Arc::clone(&directory),
            wal_shared: Arc::clone(&shared),
            dead_lsns,
            wal_hold: options.wal_hold.clone(),
            pending: None,
            stats: Arc::clone(&lifecycle_stats),
        };
        let mut lifecycle = lifecycle;
        lifecycle.update_stats();
        // A crash between a manifest and the WAL trim left covered WAL files:
        // remove them now rather than at the next flush.
        if let Err(error) = lifecycle.trim_wal() {
            tracing::warn!(%error, "failed to trim the WAL at open; the next flush retries");
        }
        let lifecycle = Arc::new(Mutex::new(lifecycle));

        let (commands, receiver) = mpsc::channel();
        let handle = writer
            .spawn(receiver)
            .map_err(|e| StoreError::io("start WAL writer thread for", directory.path(), e))?;
        let signal = Arc::new(Signal::default());
        let store = Store {
            tiers: Arc::clone(&tiers),
            shared,
            commands,
            writer: Mutex::new(Some(handle)),
            options: options.wal,
            lifecycle: Arc::clone(&lifecycle),
            lifecycle_stats,
            signal: Arc::clone(&signal),
            worker: Mutex::new(None),
            flush_spans: options.lifecycle.flush_spans,
            memory_limit: options
                .lifecycle
                .flush_spans
                .saturating_mul(MEMORY_LIMIT_FLUSHES),
            memory_wait: options.lifecycle.memory_wait,
            memory_waits: AtomicU64::new(0),
            flushed_at_close: AtomicBool::new(false),
            encrypted: encryption_key.is_some(),
            _data_dir_lock: data_dir_lock,
        };
        if options.lifecycle_thread {
            let handle = worker::spawn(lifecycle, tiers, signal).map_err(|e| {
                StoreError::io("start the lifecycle thread for", &options.data_dir, e)
            })?;
            *store.worker.lock() = Some(handle);
        }
        Ok((store, report))
    }

    /// Encodes the batch, appends it to the WAL, resolves once the record is
    /// fsynced (group commit: concurrent appends share one fsync), then
    /// applies it to the hot tier and returns the record's LSN.
    ///
    /// `Err(StoreError::Overloaded)` at once, without queueing, when more than
    /// `max_pending_bytes` wait for the writer. While the in-memory tiers hold
    /// [`MEMORY_LIMIT_FLUSHES`] times `flush_spans` rows (flushes are behind),
    /// the append first waits up to `memory_wait` for the flush under way to
    /// free them, then is refused the same way. The wait needs a tokio
    /// runtime with timers (`enable_all`); outside a runtime the append is
    /// refused at once.
    ///
    /// Cancel-safe for the store: once queued, the record is written and
    /// applied to the hot tier even if this future is dropped (the wait runs
    /// in a spawned task when a tokio runtime is present). An `Err` other than
    /// `Overloaded`, `TooLarge` or `Codec` does not prove the batch is absent
    /// after a reopen: a write can reach the disk before its fsync fails.
    pub async fn append(&self, batch: Batch) -> Result<Lsn> {
        self.append_inner(batch, false).await.map(|(lsn, _)| lsn)
    }

    /// [`Store::append`], also returning the batch's records as the hot
    /// tier holds them (the spans shared, not copied; log records copied):
    /// what detection reads once the batch is durable.
    pub async fn append_sharing(&self, batch: Batch) -> Result<(Lsn, Records)> {
        self.append_inner(batch, true)
            .await
            .map(|(lsn, records)| (lsn, records.unwrap_or_default()))
    }

    /// Waits until the in-memory tiers are under the limit, for at most
    /// `memory_wait`. A sender refused at once would pause for the whole
    /// retry hint, idling the cores the flush leaves free (the flush frees
    /// memory in one step, when it publishes); waiting here resumes the
    /// append the moment it does, and no retry decodes the batch again.
    async fn wait_for_memory(&self) -> Result<()> {
        if self.memory_wait.is_zero() || tokio::runtime::Handle::try_current().is_err() {
            return Err(overloaded());
        }
        let deadline = tokio::time::Instant::now() + self.memory_wait;
        let mut counted = false;
        loop {
            // Registered before the check: a publish between the check and
            // the wait still wakes this one.
            let freed = self.tiers.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.tiers.memory_rows() < self.memory_limit {
                return Ok(());
            }
            self.ensure_open()?;
            if !counted {
                self.memory_waits.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(overloaded());
            }
        }
    }

    /// `Failed` once the WAL writer has failed, `Closed` once the store is
    /// closing: what an append answers instead of going ahead.
    fn ensure_open(&self) -> Result<()> {
        if let Some(reason) = self.shared.failure.get() {
            return Err(StoreError::Failed {
                reason: reason.clone(),
            });
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    async fn append_inner(&self, batch: Batch, share: bool) -> Result<(Lsn, Option<Records>)> {
        self.ensure_open()?;
        // Flushes are behind: wait for one, then refuse rather than grow
        // memory without bound.
        if self.tiers.memory_rows() >= self.memory_limit {
            self.wait_for_memory().await?;
        }
        // Encoding runs here, in the caller's task, so encodes of concurrent
        // appends use every core while the writer thread only writes.
        let frame = Frame::encode(&batch, self.encrypted)?;
        let bytes = frame.len();
        let before = self.shared.pending_bytes.fetch_add(bytes, Ordering::AcqRel);
        // A batch alone is always taken, or one larger than the limit could
        // never be; otherwise the queue stays within the limit.
        if before > 0 && before.saturating_add(bytes) > self.options.max_pending_bytes {
            self.shared.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(overloaded());
        }
        let (reply, answer) = oneshot::channel();
        let queued = Queued::new(frame, reply, Arc::clone(&self.shared));
        // Taken apart while the writer writes (the hot tier keeps them,
        // detection may share them).
        let records = Records::from_batch(batch);
        if self.commands.send(Command::Append(queued)).is_err() {
            // The writer is gone; the returned command is dropped, which
            // releases its pending bytes.
            return Err(self.shared.stopped_error());
        }

        let tiers = Arc::clone(&self.tiers);
        let shared = Arc::clone(&self.shared);
        let signal = Arc::clone(&self.signal);
        let flush_spans = self.flush_spans;
        let finish = async move {
            let lsn = answer.await.map_err(|_| shared.stopped_error())??;
            // Under the tier lock's read side: a flush cannot freeze the hot
            // tier half-way through this batch.
            let shared = share.then(|| records.clone());
            let counts = tiers.apply(lsn, records);
            if counts.spans.saturating_add(counts.logs) >= flush_spans {
                signal.nudge();
            }
            Ok((lsn, shared))
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

    /// The whole trace, from the hot tier, a tier being flushed and the
    /// segments: spans (each with its resource and scope) ordered by start
    /// time, and the log records carrying its trace id ordered by time; each
    /// once. `None` if no span or log record carries the id. Blocking when
    /// segments are read (milliseconds): from async code, `spawn_blocking`.
    ///
    /// A segment that fails to read is logged and left out.
    pub fn trace(&self, trace_id: TraceId) -> Option<Trace> {
        self.tiers.trace(trace_id)
    }

    /// [`Store::trace`], also naming the segments that could not be read,
    /// so a caller can say the trace may be incomplete.
    pub fn trace_checked(&self, trace_id: TraceId) -> crate::TraceLookup {
        self.tiers.snapshot().trace_checked(trace_id)
    }

    /// The spans matching `filter` in every tier (the in-memory ones
    /// filtered in memory, segments pruned by their statistics and bloom
    /// filters), ordered by start time. With `filter.limit`, at most that
    /// many. Blocking, like [`Store::trace`].
    pub fn find_spans(&self, filter: &SpanFilter) -> Result<Vec<SpanRecord>> {
        self.tiers.find_spans(filter)
    }

    /// A consistent view of every tier for a query that reads in several
    /// steps (see [`crate::Snapshot`]).
    pub fn snapshot(&self) -> crate::Snapshot {
        crate::Snapshot::new(self.tiers.snapshot())
    }

    /// Ids of the traces in memory (not yet flushed into segments), each once.
    pub fn trace_ids(&self) -> Vec<TraceId> {
        self.tiers.memory_trace_ids()
    }

    /// Log records in memory (not yet flushed) that carry no trace id,
    /// ordered by time.
    pub fn logs_without_trace(&self) -> Vec<LogEntry> {
        self.tiers.memory_untraced_logs()
    }

    /// Ids of the segments served, oldest first.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.tiers
            .snapshot()
            .segments
            .iter()
            .map(|s| s.id())
            .collect()
    }

    pub fn stats(&self) -> StoreStats {
        let memory = self.tiers.memory_counts();
        let shared = &self.shared;
        let lifecycle = &self.lifecycle_stats;
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        StoreStats {
            spans: memory.spans,
            logs: memory.logs,
            traces: memory.traces,
            wal_bytes: shared.wal_bytes.load(Ordering::Relaxed),
            wal_files: shared.wal_files.load(Ordering::Relaxed),
            last_lsn: shared.last_lsn.load(Ordering::Acquire),
            appends: shared.appends.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
            wal_fsync: shared.fsync_latency.snapshot(),
            pending_bytes: shared.pending_bytes.load(Ordering::Relaxed) as u64,
            pending_appends: shared.pending_appends.load(Ordering::Relaxed) as u64,
            segments: load(&lifecycle.segments),
            segment_bytes: load(&lifecycle.segment_bytes),
            segment_spans: load(&lifecycle.segment_spans),
            segment_logs: load(&lifecycle.segment_logs),
            flushes: load(&lifecycle.flushes),
            flush_failures: load(&lifecycle.flush_failures),
            compactions: load(&lifecycle.compactions),
            dropped_segments: load(&lifecycle.dropped_segments),
            quarantined_segments: load(&lifecycle.quarantined_segments),
            trimmed_wal_files: load(&lifecycle.trimmed_wal_files),
            memory_waits: load(&self.memory_waits),
        }
    }

    /// Verifies the segments against their manifest chain ([`crate::verify()`]),
    /// checking signatures with the store's own key when it signs. Holds the
    /// lifecycle (no flush, compaction or retention meanwhile) so that a
    /// segment being written is not taken for an inserted one. Blocking: it
    /// hashes every segment file.
    pub fn verify_integrity(&self) -> Result<crate::VerifyReport> {
        let lifecycle = self.lifecycle.lock();
        let key = lifecycle.signing_key.as_ref().map(|k| k.verifying_key());
        Ok(crate::integrity::verify::verify_segments(
            &lifecycle.dir,
            key.as_ref(),
        )?)
    }

    /// Flushes the hot tier into a segment now (finishing first a flush that
    /// failed half-way), then trims the WAL. Returns the id of the last
    /// segment written, `None` if there was nothing to flush. Blocking.
    pub fn flush(&self) -> Result<Option<u64>> {
        let mut lifecycle = self.lifecycle.lock();
        let mut last = None;
        // A flush that finishes an earlier one leaves the hot tier for the
        // next round; two more rounds at most.
        for _ in 0..3 {
            match lifecycle.flush()? {
                Some(id) => last = Some(id),
                None => break,
            }
            let state = self.tiers.snapshot();
            if state.hot.is_empty() && state.frozen.is_none() {
                break;
            }
        }
        Ok(last)
    }

    /// Merges the oldest small segments now. Returns the merged segment's
    /// id, `None` when fewer than two segments are under
    /// `compaction.below_spans`. Blocking.
    pub fn compact(&self) -> Result<Option<u64>> {
        self.lifecycle.lock().compact()
    }

    /// Drops the segments retention says to now. Returns their ids. Blocking.
    pub fn enforce_retention(&self) -> Result<Vec<u64>> {
        self.lifecycle.lock().enforce_retention()
    }

    /// Graceful shutdown: stops the WAL writer after it has written and
    /// fsynced everything queued before the call (later appends get
    /// `Closed`), stops the lifecycle thread, then flushes the hot tier into
    /// a segment so the next open has little to replay. Blocks until done. A
    /// failed flush is logged: its data stays in the WAL. Idempotent.
    pub fn close(&self) {
        self.stop();
        if self.flushed_at_close.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(error) = self.flush() {
            tracing::error!(%error, "flush at shutdown failed; the WAL keeps the data for the next start");
        }
    }

    /// Stops the WAL writer and the lifecycle thread, without a flush.
    fn stop(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Appends waiting for memory answer `Closed` now, not at their deadline.
        self.tiers.freed.notify_waiters();
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
        drop(writer);
        self.signal.stop();
        let mut worker = self.worker.lock();
        if let Some(handle) = worker.take()
            && handle.join().is_err()
        {
            tracing::error!("the lifecycle thread panicked");
        }
    }
}

impl Drop for Store {
    /// Stops the threads without a flush (see [`Store::close`]).
    fn drop(&mut self) {
        self.stop();
    }
}
