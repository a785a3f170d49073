//! Merging small segments (see [`crate::lifecycle`], "Compaction").

use std::sync::atomic::Ordering;

use super::flush::new_manifest;
use super::{Lifecycle, LsnSet, Pending};
use crate::error::Result;
use crate::integrity::ReplacedSegment;
use crate::segment::write_segment_with_key;

impl Lifecycle {
    /// Merges the oldest small segments into one (whether or not
    /// `compaction.enabled`, which only governs the lifecycle thread).
    /// Returns the new segment's id, or `None` when fewer than two segments
    /// are small.
    pub fn compact(&mut self) -> Result<Option<u64>> {
        let result = self.compact_inner();
        match &result {
            Ok(Some(id)) => {
                self.stats.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(segment = id, "compacted small segments");
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "compaction failed; it is retried later"),
        }
        result
    }

    fn compact_inner(&mut self) -> Result<Option<u64>> {
        self.adopt_stray_manifest()?;
        // One step at a time: a pending flush or compaction finishes first.
        if self.pending.is_some() {
            self.finish_pending()?;
        }
        let group = self.compaction_group();
        if group.len() < 2 {
            return Ok(None);
        }
        let mut spans = Vec::new();
        let mut logs = Vec::new();
        let mut lsns = LsnSet::new();
        let mut replaces = Vec::with_capacity(group.len());
        for id in &group {
            let Some(live) = self.live.get(id) else {
                continue;
            };
            let (segment_spans, segment_logs) = live.segment.read_all()?;
            spans.extend(segment_spans);
            logs.extend(segment_logs);
            lsns.union_with(&live.lsns());
            replaces.push(ReplacedSegment {
                segment_id: *id,
                manifest_sha256: live.sha256.clone(),
            });
        }
        let id = self.next_id;
        let spans: Vec<_> = spans.iter().collect();
        let logs: Vec<_> = logs.iter().collect();
        // With a key, plain segments come out encrypted: compaction migrates them.
        let written = write_segment_with_key(
            &self.dir,
            id,
            &spans,
            &logs,
            &self.segment_options,
            self.encryption_key.as_deref(),
        )?;
        let manifest = new_manifest(&written, &lsns, replaces);
        let (manifest, sha256) = self.append_manifest(manifest)?;
        self.pending = Some(Pending::Appended {
            manifest,
            sha256,
            frozen: None,
        });
        self.finish_pending()?;
        Ok(Some(id))
    }

    /// The oldest segments (by id) under `below_spans` rows, as many as fit
    /// in `max_spans` rows together.
    fn compaction_group(&self) -> Vec<u64> {
        let options = &self.options.compaction;
        let mut group = Vec::new();
        let mut rows = 0u64;
        for (id, live) in &self.live {
            if live.rows() >= options.below_spans {
                continue;
            }
            if rows.saturating_add(live.rows()) > options.max_spans {
                break;
            }
            rows += live.rows();
            group.push(*id);
        }
        group
    }
}
