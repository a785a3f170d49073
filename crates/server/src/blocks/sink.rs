//! Rule blocks: the [`DetectionSink`] that turns detections of rules with
//! a `block:` response into blocks.
//!
//! `deliver` runs on the detection thread and must not wait on a disk, so
//! it only reads the actor from each detection's key and queues the
//! request (bounded; a full queue is counted, not waited on). The `blocks`
//! thread applies the queue in batches (one file write per batch) and
//! sweeps expired blocks every second.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tracewarden_detect::engine::Detection;

use super::{BlockKind, BlockRequest, Blocklist, Target, now_unix_ms, token};
use crate::detection::{DetectionSink, Detector};

/// Rule blocks waiting for the blocks thread.
const QUEUE: usize = 4096;
/// How often expired blocks are swept.
const SWEEP: Duration = Duration::from_secs(1);

/// Applies the `block:` responses of rules.
pub struct RuleBlocks {
    detector: Weak<Detector>,
    blocklist: Arc<Blocklist>,
    queue: SyncSender<BlockRequest>,
}

impl RuleBlocks {
    /// Starts the blocks thread, which applies what [`DetectionSink::deliver`]
    /// queues and sweeps expired blocks while this value lives. Add it to
    /// `detector` as a sink to apply rule blocks (`Weak::new()` without
    /// detection: the thread then only sweeps).
    pub fn start(
        detector: Weak<Detector>,
        blocklist: Arc<Blocklist>,
    ) -> std::io::Result<RuleBlocks> {
        let (queue, requests) = std::sync::mpsc::sync_channel(QUEUE);
        let worker = Arc::clone(&blocklist);
        std::thread::Builder::new()
            .name("blocks".to_string())
            .spawn(move || run(&worker, &requests))?;
        Ok(RuleBlocks {
            detector,
            blocklist,
            queue,
        })
    }

    fn refuse(&self) {
        self.blocklist
            .rule_blocks_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The block request for one detection, if its rule blocks.
    fn request(&self, detector: &Detector, detection: &Detection) -> Option<BlockRequest> {
        let action = detector.rule_block(&detection.rule_id)?;
        let Some((_, value)) = detection
            .key
            .iter()
            .find(|(field, _)| field == action.field.as_str())
        else {
            self.refuse();
            return None;
        };
        if action.kind == BlockKind::Token && token::is_cut(value) {
            // The engine keeps only a prefix and a hash of long values.
            tracing::warn!(
                rule = %detection.rule_id,
                "not blocking: the token is longer than a detection key keeps"
            );
            self.refuse();
            return None;
        }
        let target = match Target::parse(action.kind, value) {
            Ok(target) => target,
            Err(error) => {
                tracing::warn!(rule = %detection.rule_id, %error, "not blocking: unreadable actor");
                self.refuse();
                return None;
            }
        };
        Some(BlockRequest {
            target,
            duration: Some(action.duration),
            reason: format!("{}: {}", detection.rule_id, detection.title),
            by: format!("rule:{}", detection.rule_id),
        })
    }
}

impl DetectionSink for RuleBlocks {
    fn deliver(&self, detections: &[Detection]) {
        let Some(detector) = self.detector.upgrade() else {
            return;
        };
        for detection in detections {
            let Some(request) = self.request(&detector, detection) else {
                continue;
            };
            match self.queue.try_send(request) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.refuse(),
            }
        }
    }
}

fn run(blocklist: &Blocklist, requests: &Receiver<BlockRequest>) {
    loop {
        let first = match requests.recv_timeout(SWEEP) {
            Ok(request) => Some(request),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = now_unix_ms();
        if let Some(first) = first {
            let mut batch = vec![first];
            batch.extend(requests.try_iter().take(QUEUE));
            match blocklist.apply(&batch, now) {
                Ok(changes) => {
                    for (request, change) in batch.iter().zip(changes) {
                        if change != super::Change::Unchanged {
                            tracing::warn!(
                                kind = request.target.kind.as_str(),
                                value = %request.target.value,
                                by = %request.by,
                                change = ?change,
                                "blocked"
                            );
                        }
                    }
                }
                Err(error) => {
                    blocklist
                        .rule_blocks_refused
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::error!(%error, "rule blocks not applied");
                }
            }
        }
        if let Err(error) = blocklist.sweep(now) {
            tracing::error!(%error, "expired blocks not removed; retrying");
        }
    }
}
