//! Flushing the hot tier into a segment (see [`crate::lifecycle`], "Flush").

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{FailPoint, Lifecycle, LiveSegment, LsnSet, Pending, now_unix_nano, remove_files};
use crate::error::{Result, StoreError};
use crate::hot::HotTier;
use crate::integrity::manifest::read_manifest;
use crate::integrity::{MANIFEST_FORMAT_VERSION, Manifest, ManifestFile, manifest_file_name};
use crate::segment::{Segment, WrittenSegment, write_segment_sized};

impl Lifecycle {
    /// Flushes the hot tier (or finishes a flush that failed half-way) into
    /// a segment, publishes it, and trims the WAL. Returns the new segment's
    /// id, or `None` when there was nothing to flush.
    pub fn flush(&mut self) -> Result<Option<u64>> {
        let started = Instant::now();
        let result = self.flush_inner();
        match &result {
            Ok(Some(id)) => {
                self.stats.flushes.fetch_add(1, Ordering::Relaxed);
                let (spans, logs, bytes) = self.live.get(id).map_or((0, 0, 0), |live| {
                    (live.manifest.spans, live.manifest.logs, live.bytes())
                });
                tracing::info!(
                    segment = id,
                    spans,
                    logs,
                    bytes,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "flushed the hot tier into a segment"
                );
            }
            Ok(None) => {}
            Err(error) => {
                self.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    %error,
                    "flush failed; it is retried later, and the WAL keeps the data meanwhile"
                );
            }
        }
        result
    }

    fn flush_inner(&mut self) -> Result<Option<u64>> {
        let mut flushed = None;
        self.adopt_stray_manifest()?;
        // A step left half-way by an earlier failure goes first.
        if self.pending.is_some() {
            flushed = self.finish_pending()?;
        }
        if flushed.is_none() {
            let Some(frozen) = self.tiers.freeze() else {
                return Ok(None);
            };
            self.write_frozen(frozen)?;
            flushed = self.finish_pending()?;
        }
        self.fail_point(FailPoint::FlushManifestWritten)?;
        self.trim_wal()?;
        Ok(flushed)
    }

    /// Writes the frozen tier's data files as segment `next_id`.
    fn write_frozen(&mut self, frozen: Arc<HotTier>) -> Result<()> {
        let lsns = frozen.lsns();
        let id = self.next_id;
        // Written straight from the frozen tier, which nothing changes any
        // more and which readers keep using meanwhile. On error write_segment
        // removed its temporary files; a file it had already renamed is
        // overwritten by the retry, which uses the same id.
        let written = frozen.with_records(|spans, facts, logs| {
            write_segment_sized(
                &self.dir,
                id,
                spans,
                facts,
                logs,
                &self.segment_options,
                self.encryption_key.as_deref(),
            )
        })?;
        self.pending = Some(Pending::Written {
            frozen,
            lsns,
            written,
        });
        Ok(())
    }

    /// Carries a pending step through: appends the manifest of written
    /// files, then publishes. Returns the id of the flushed segment, if the
    /// step was a flush.
    pub(crate) fn finish_pending(&mut self) -> Result<Option<u64>> {
        if let Some(Pending::Written {
            frozen,
            lsns,
            written,
        }) = &self.pending
        {
            let (frozen, lsns, written) = (Arc::clone(frozen), lsns.clone(), written.clone());
            // Any `?` below leaves the step pending, to be retried from here.
            self.fail_point(FailPoint::FlushSegmentWritten)?;
            let manifest = new_manifest(&written, &lsns, Vec::new());
            let (manifest, sha256) = self.append_manifest(manifest)?;
            self.pending = Some(Pending::Appended {
                manifest,
                sha256,
                frozen: Some(frozen),
            });
        }
        let Some(Pending::Appended {
            manifest,
            sha256,
            frozen,
        }) = &self.pending
        else {
            return Ok(None);
        };
        let (manifest, sha256, frozen) = (manifest.clone(), sha256.clone(), frozen.clone());
        let id = manifest.segment_id;
        let is_flush = frozen.is_some();
        if !manifest.replaces.is_empty() {
            self.fail_point(FailPoint::CompactionManifestWritten)?;
        }
        let segment = Arc::new(Segment::open_with_key(
            &self.dir,
            id,
            self.encryption_key.clone(),
        )?);
        let replaced: Vec<u64> = manifest.replaces.iter().map(|r| r.segment_id).collect();
        let unfrozen = self
            .tiers
            .publish(Some(Arc::clone(&segment)), &replaced, is_flush);
        drop(unfrozen);
        for old in &replaced {
            self.live.remove(old);
        }
        self.live.insert(
            id,
            LiveSegment {
                manifest,
                sha256,
                segment,
            },
        );
        self.pending = None;
        self.update_stats();
        // The replaced segments are recorded in the retention log and no
        // longer served: their files can go.
        for old in replaced {
            if let Err(error) = remove_files(&self.dir, &super::segment_file_names(old)) {
                // Deleted at the next open instead.
                tracing::warn!(segment = old, %error, "failed to remove a compacted segment's files");
            }
        }
        Ok(is_flush.then_some(id))
    }

    /// Appends a manifest to the chain. On an error the manifest may or may
    /// not have reached the disk: the chain writer is dropped, and
    /// [`Lifecycle::adopt_stray_manifest`] settles it before the next step.
    pub(crate) fn append_manifest(&mut self, manifest: Manifest) -> Result<(Manifest, String)> {
        let id = manifest.segment_id;
        match self.chain()?.append(manifest) {
            Ok(appended) => {
                self.next_id = self.next_id.max(id.saturating_add(1));
                Ok(appended)
            }
            Err(error) => {
                self.chain = None;
                Err(error.into())
            }
        }
    }

    /// After a failed append: reopens the chain (which adopts a manifest
    /// that reached the disk) and, if the manifest of segment `next_id` is
    /// now on the chain, makes it the pending step to publish, so it is
    /// neither lost nor appended twice.
    pub(crate) fn adopt_stray_manifest(&mut self) -> Result<()> {
        if self.chain.is_some() {
            return Ok(());
        }
        let id = self.next_id;
        let head = self.chain()?.head().cloned();
        let Some(head) = head.filter(|head| head.segment_id == id) else {
            return Ok(());
        };
        let path = self.dir.join(manifest_file_name(id));
        let Some(read) = read_manifest(&path)? else {
            return Ok(());
        };
        if read.sha256 != head.manifest_sha256 {
            return Err(StoreError::Corrupt {
                path,
                offset: 0,
                reason: "the manifest differs from the one chain.head records".into(),
            });
        }
        let frozen = match self.pending.take() {
            Some(Pending::Written {
                frozen, written, ..
            }) if written.id == id => Some(frozen),
            other => {
                self.pending = other;
                None
            }
        };
        tracing::info!(
            segment = id,
            "a manifest whose append failed reached the disk; adopting it"
        );
        self.next_id = id.saturating_add(1);
        self.pending = Some(Pending::Appended {
            manifest: read.manifest,
            sha256: read.sha256,
            frozen,
        });
        Ok(())
    }
}

/// The manifest of freshly written files (the chain fills in the links).
pub(crate) fn new_manifest(
    written: &WrittenSegment,
    lsns: &LsnSet,
    replaces: Vec<crate::integrity::ReplacedSegment>,
) -> Manifest {
    Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        segment_id: written.id,
        created_unix_nano: now_unix_nano(),
        files: written
            .files
            .iter()
            .map(|f| ManifestFile::new(f.name.clone(), f.bytes, &f.sha256))
            .collect(),
        spans: written.spans,
        logs: written.logs,
        min_time_unix_nano: written.min_time_unix_nano,
        max_time_unix_nano: written.max_time_unix_nano,
        lsn_ranges: lsns.ranges().to_vec(),
        replaces,
        prev_manifest_sha256: None,
        signature: None,
        key_id: None,
    }
}
