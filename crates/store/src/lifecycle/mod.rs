//! The store's lifecycle: hot tier -> Parquet segments, WAL trim,
//! compaction, retention, and what a crash at any step leaves.
//!
//! # Flush (`flush.rs`)
//!
//! A dedicated thread (never a tokio worker: Parquet encoding and fsync
//! block) flushes the hot tier once it holds `flush_spans` spans and log
//! records, or once its oldest data is `flush_age` old; [`crate::Store::close`]
//! flushes what is left. A flush:
//!
//! 1. **freezes** the hot tier: a new, empty hot tier takes the appends
//!    while the frozen one stays readable (see `tiers.rs`);
//! 2. writes its spans and logs into segment files ([`crate::segment::write_segment`]);
//! 3. appends the segment's **manifest** to the chain
//!    ([`crate::integrity::ChainWriter::append`]), recording the exact set of
//!    WAL LSNs the frozen tier held (`lsn_ranges`);
//! 4. **publishes** the segment and drops the frozen tier, in one step for readers;
//! 5. **trims** the WAL: every WAL file (but the newest) whose LSNs the
//!    manifests all cover is deleted, unless it reaches the LSN of the
//!    [`StoreOptions::wal_hold`] (records the detection's checkpoint names).
//!
//! A failure at any step is logged and retried later, from where it stopped;
//! nothing is lost, since the WAL keeps every record until a durable
//! manifest covers it.
//!
//! # Compaction (`compaction.rs`)
//!
//! Segments holding fewer than `compaction.below_spans` spans and log
//! records (flushes by age, shutdown flushes) are merged, oldest first, into
//! one segment whose manifest lists the segments it `replaces` and the union
//! of their LSN ranges. The old files are deleted only once that manifest is
//! durable.
//!
//! # Retention (`retention.rs`)
//!
//! With `retention.max_age` or `retention.max_total_bytes`, whole segments
//! are dropped, oldest first; each drop is recorded in the retention log
//! ([`crate::integrity::ChainWriter::record_drop`]) before the files are
//! deleted. A segment whose LSNs the WAL still holds waits until they are
//! trimmed, so a replay can never bring dropped data back.
//!
//! # Open and crash recovery (`recovery.rs`)
//!
//! At open, before WAL replay: leftover `*.tmp` files are deleted; a segment
//! recorded as dropped or replaced whose files remain (a crash between the
//! record and the deletion) is deleted; segment files without a manifest (a
//! crash before the manifest) are deleted, their data being still in the
//! WAL; every other segment is opened, and one that fails (unreadable
//! manifest, missing or truncated file, bad footer) is **quarantined**: its
//! files (data and manifest) move to `segments/quarantine/` with a
//! `<id>.reason` file, an error names it, and the rest of the store serves. Replay then skips every WAL record a live
//! manifest covers. Whatever step a crash interrupts, every acknowledged
//! span is afterwards readable exactly once.
//!
//! # Failure injection ([`FailPoint`])
//!
//! Tests stop a step half-way through [`StoreOptions::fail_points`]
//! (tantivy's failpoints idea): a hook called at each point below; an
//! `Err` aborts the step there, as a crash would. Unused in production.
//!
//! [`StoreOptions::fail_points`]: crate::StoreOptions::fail_points
//! [`StoreOptions::wal_hold`]: crate::StoreOptions::wal_hold

pub(crate) mod compaction;
mod filter;
pub(crate) mod flush;
mod lsn;
mod options;
pub(crate) mod recovery;
pub(crate) mod retention;
pub(crate) mod tiers;
pub(crate) mod worker;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use filter::span_matches;
pub use lsn::LsnSet;
pub use options::{
    CompactionOptions, LifecycleOptions, RetentionOptions, format_duration, parse_duration,
};
pub(crate) use tiers::TierState;
pub use tiers::{TraceLookup, UnreadableSegment};

use crate::error::{Result, StoreError};
use crate::integrity::{ChainWriter, Manifest, SigningKey, manifest_file_name};
use crate::segment::{
    Segment, SegmentWriteOptions, logs_file_name, resources_file_name, spans_file_name,
};
use crate::wal::writer::Shared;
use crate::wal::{WalDirectory, WalHold};
use tiers::Tiers;

/// A point between two steps of the lifecycle where a test can inject a
/// failure (see [`FailPoints`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailPoint {
    /// A flush wrote the segment's data files; its manifest is not written.
    FlushSegmentWritten,
    /// A flush's manifest is durable; the WAL files it covers are not removed.
    FlushManifestWritten,
    /// A compaction's merged segment and manifest are durable; the segments
    /// it replaces are not removed.
    CompactionManifestWritten,
    /// A retention drop is recorded in the retention log; the segment's
    /// files are not deleted.
    RetentionDropRecorded,
}

impl std::fmt::Display for FailPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            FailPoint::FlushSegmentWritten => "flush: segment files written, manifest not yet",
            FailPoint::FlushManifestWritten => "flush: manifest written, WAL not yet trimmed",
            FailPoint::CompactionManifestWritten => {
                "compaction: merged segment written, replaced segments not yet removed"
            }
            FailPoint::RetentionDropRecorded => {
                "retention: drop recorded, segment files not yet deleted"
            }
        };
        f.write_str(name)
    }
}

/// The failure-injection hook: called at every [`FailPoint`]; an `Err`
/// aborts the step there. For tests only.
#[derive(Clone)]
pub struct FailPoints(Arc<dyn Fn(FailPoint) -> Result<()> + Send + Sync>);

impl FailPoints {
    pub fn new(hook: impl Fn(FailPoint) -> Result<()> + Send + Sync + 'static) -> FailPoints {
        FailPoints(Arc::new(hook))
    }
}

impl std::fmt::Debug for FailPoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailPoints(..)")
    }
}

/// Counters of the lifecycle, read by [`crate::Store::stats`] without
/// waiting for a flush in progress.
#[derive(Debug, Default)]
pub(crate) struct LifecycleStats {
    pub segments: AtomicU64,
    pub segment_bytes: AtomicU64,
    pub segment_spans: AtomicU64,
    pub segment_logs: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_failures: AtomicU64,
    pub compactions: AtomicU64,
    pub dropped_segments: AtomicU64,
    pub quarantined_segments: AtomicU64,
    pub trimmed_wal_files: AtomicU64,
}

/// A published segment and its manifest.
pub(crate) struct LiveSegment {
    pub manifest: Manifest,
    /// SHA-256 (hex) of the manifest file.
    pub sha256: String,
    pub segment: Arc<Segment>,
}

impl LiveSegment {
    /// Bytes of the segment's data files.
    pub fn bytes(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.bytes).sum()
    }

    pub fn rows(&self) -> u64 {
        self.manifest.spans.saturating_add(self.manifest.logs)
    }

    pub fn lsns(&self) -> LsnSet {
        LsnSet::from_ranges(self.manifest.lsn_ranges.iter().copied())
    }
}

/// A step that wrote to disk and is not finished; retried from there.
pub(crate) enum Pending {
    /// A flush wrote segment `id`'s files; its manifest is not appended.
    Written {
        frozen: Arc<crate::hot::HotTier>,
        lsns: LsnSet,
        written: crate::segment::WrittenSegment,
    },
    /// A manifest (a flush's or a compaction's) is durable; the segment is
    /// not published (and what it replaces not removed).
    Appended {
        manifest: Manifest,
        sha256: String,
        /// The frozen tier the segment holds (a flush), dropped on publish.
        frozen: Option<Arc<crate::hot::HotTier>>,
    },
}

/// Everything the lifecycle thread and [`crate::Store`]'s blocking calls
/// share, behind one mutex: only one lifecycle step runs at a time.
pub(crate) struct Lifecycle {
    pub dir: PathBuf,
    pub options: LifecycleOptions,
    pub segment_options: SegmentWriteOptions,
    pub fail_points: Option<FailPoints>,
    pub signing_key: Option<SigningKey>,
    /// Segments are written encrypted with it, and read with it.
    pub encryption_key: Option<Arc<crate::encryption::EncryptionKey>>,
    /// `None` after a failed append or drop: reopened (which repairs the
    /// head from what reached the disk) before the next one.
    pub chain: Option<ChainWriter>,
    pub live: BTreeMap<u64, LiveSegment>,
    /// The id of the next segment: above every id ever used.
    pub next_id: u64,
    pub tiers: Arc<Tiers>,
    pub wal: Arc<dyn WalDirectory>,
    pub wal_shared: Arc<Shared>,
    /// LSNs in the WAL's range that hold no data (records lost to damage,
    /// found by replay): no segment will ever cover them, so they do not
    /// keep their WAL file alive.
    pub dead_lsns: LsnSet,
    /// The WAL files from its LSN on are kept; read at each trim, since its
    /// holder moves it at run time.
    pub wal_hold: Option<Arc<WalHold>>,
    pub pending: Option<Pending>,
    pub stats: Arc<LifecycleStats>,
}

impl Lifecycle {
    /// Calls the failure-injection hook, if any.
    pub fn fail_point(&self, point: FailPoint) -> Result<()> {
        match &self.fail_points {
            Some(hook) => (hook.0)(point),
            None => Ok(()),
        }
    }

    /// The chain writer, reopened if an earlier step failed with it.
    pub fn chain(&mut self) -> Result<&mut ChainWriter> {
        let chain = match self.chain.take() {
            Some(chain) => chain,
            None => ChainWriter::open(&self.dir, self.signing_key.clone())?,
        };
        Ok(self.chain.insert(chain))
    }

    /// Every LSN whose WAL record no longer needs the WAL: covered by a
    /// published segment, or holding no data.
    pub fn covered_lsns(&self) -> LsnSet {
        let mut covered = self.dead_lsns.clone();
        for live in self.live.values() {
            covered.union_with(&live.lsns());
        }
        covered
    }

    /// Recomputes the segment counters from the published segments.
    pub fn update_stats(&self) {
        let stats = &self.stats;
        stats
            .segments
            .store(self.live.len() as u64, Ordering::Relaxed);
        let sum = |f: fn(&LiveSegment) -> u64| self.live.values().map(f).sum::<u64>();
        stats
            .segment_bytes
            .store(sum(LiveSegment::bytes), Ordering::Relaxed);
        stats
            .segment_spans
            .store(sum(|l| l.manifest.spans), Ordering::Relaxed);
        stats
            .segment_logs
            .store(sum(|l| l.manifest.logs), Ordering::Relaxed);
    }

    /// Removes the WAL files whose records are all covered and that end
    /// before the hold, if any. Only called once the manifests that cover
    /// them are durable.
    pub fn trim_wal(&mut self) -> Result<()> {
        let covered = self.covered_lsns();
        let hold = self.wal_hold.as_ref().and_then(|hold| hold.get());
        let trimmed = crate::wal::trim::trim(&*self.wal, &covered, hold)?;
        if trimmed.files > 0 {
            let shared = &self.wal_shared;
            // The writer only adds to these; a trim only removes files it
            // counted, so they cannot go below zero.
            shared.wal_bytes.fetch_sub(trimmed.bytes, Ordering::Relaxed);
            shared.wal_files.fetch_sub(trimmed.files, Ordering::Relaxed);
            self.stats
                .trimmed_wal_files
                .fetch_add(trimmed.files, Ordering::Relaxed);
            tracing::debug!(
                files = trimmed.files,
                bytes = trimmed.bytes,
                "trimmed WAL files held in segments"
            );
        }
        Ok(())
    }
}

/// The data files and manifest of segment `id`, the manifest last (a
/// version 1 segment has no resources file).
pub(crate) fn segment_file_names(id: u64) -> [String; 4] {
    [
        spans_file_name(id),
        logs_file_name(id),
        resources_file_name(id),
        manifest_file_name(id),
    ]
}

/// Deletes the named files of `dir` that exist, then fsyncs `dir` if any
/// was deleted. Returns how many were.
pub(crate) fn remove_files(dir: &Path, names: &[String]) -> Result<usize> {
    let mut removed = 0;
    for name in names {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::io("remove segment file", path, error)),
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Makes a directory's entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// Nanoseconds since the Unix epoch (0 before 1970).
pub(crate) fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
