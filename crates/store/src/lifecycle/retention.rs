//! Dropping old segments (see [`crate::lifecycle`], "Retention").

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{FailPoint, Lifecycle, LiveSegment, format_duration, now_unix_nano, remove_files};
use crate::error::Result;
use crate::wal::trim::file_ranges;

impl Lifecycle {
    /// Drops the segments retention says to, oldest first. Returns the ids
    /// dropped. A segment whose WAL records are still in the WAL waits.
    pub fn enforce_retention(&mut self) -> Result<Vec<u64>> {
        let result = self.enforce_retention_inner();
        if let Err(error) = &result {
            tracing::error!(%error, "retention failed; it is retried later");
        }
        result
    }

    fn enforce_retention_inner(&mut self) -> Result<Vec<u64>> {
        let retention = self.options.retention.clone();
        if retention.max_age.is_none() && retention.max_total_bytes.is_none() {
            return Ok(Vec::new());
        }
        self.adopt_stray_manifest()?;
        if self.pending.is_some() {
            self.finish_pending()?;
        }
        let now = now_unix_nano();
        // Oldest first: by the age of the segment's data, then id.
        let mut order: Vec<(u64, u64)> = self
            .live
            .iter()
            .map(|(id, live)| (age_time(live), *id))
            .collect();
        order.sort_unstable();
        let mut total: u64 = self.live.values().map(LiveSegment::bytes).sum();

        let mut doomed: Vec<(u64, String)> = Vec::new();
        for (time, id) in order {
            let age = Duration::from_nanos(now.saturating_sub(time));
            let bytes = self.live.get(&id).map_or(0, LiveSegment::bytes);
            let reason = match (retention.max_age, retention.max_total_bytes) {
                (Some(max_age), _) if age > max_age => format!(
                    "max_age: its newest data is {} old, over {}",
                    format_duration(age),
                    format_duration(max_age)
                ),
                (_, Some(max_bytes)) if total > max_bytes => {
                    format!("max_total_bytes: segments held {total} bytes, over {max_bytes}")
                }
                // Sorted oldest first: nothing after this one is due either.
                _ => break,
            };
            total = total.saturating_sub(bytes);
            doomed.push((id, reason));
        }
        if doomed.is_empty() {
            return Ok(Vec::new());
        }

        let wal = file_ranges(&*self.wal)?;
        let mut dropped = Vec::new();
        for (id, reason) in doomed {
            let Some(live) = self.live.get(&id) else {
                continue;
            };
            let lsns = live.lsns();
            let in_wal = wal
                .iter()
                .any(|file| lsns.intersects(file.first, file.last.unwrap_or(u64::MAX)));
            if in_wal {
                // Replay would bring the records back: wait until the WAL
                // files holding them are trimmed (after the next flush).
                tracing::debug!(segment = id, "retention waits for the WAL to be trimmed");
                break;
            }
            let sha256 = live.sha256.clone();
            if let Err(error) = self.chain()?.record_drop(id, &sha256, &reason) {
                self.chain = None;
                return Err(error.into());
            }
            self.fail_point(FailPoint::RetentionDropRecorded)?;
            let _none = self.tiers.publish(None, &[id], false);
            self.live.remove(&id);
            self.update_stats();
            self.stats.dropped_segments.fetch_add(1, Ordering::Relaxed);
            remove_files(&self.dir, &super::segment_file_names(id))?;
            tracing::info!(segment = id, %reason, "dropped a segment (retention)");
            dropped.push(id);
        }
        Ok(dropped)
    }
}

/// The time a segment's age is counted from: its newest data, but never
/// after the segment was written, so a span stamped in the future cannot
/// keep its segment forever.
fn age_time(live: &LiveSegment) -> u64 {
    live.manifest
        .max_time_unix_nano
        .min(live.manifest.created_unix_nano)
}
