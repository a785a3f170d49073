//! Checkpoints of the engine's state: windows, keys, counters and the
//! watermark, so a restart does not forget a brute force in progress.
//!
//! Format: the magic `TWDETCK1`, a postcard-encoded body, optionally the
//! buffers (postcard: the traces buffered for assembly,
//! [`crate::assembly::SavedTraces`], and the log records waiting for their
//! span with the recent-span index, [`crate::log_join::SavedJoin`]),
//! optionally how far the log join had come
//! ([`crate::log_join::JoinProgress`], after the buffers, which are then
//! written even when empty), and the CRC-32C of all (4 bytes, little
//! endian). The buffers are absent when nothing is buffered and no record
//! has needed a join; the progress when no record has needed a join; both
//! in checkpoints of earlier builds.
//! Each optional section is read only when bytes are left, and a reader
//! ignores bytes after the sections it knows: adding a section at the end
//! needs no new version, in either direction. With the buffers in the
//! checkpoint, a trace waiting for its idle time (or a record waiting for
//! its span) at a crash is evaluated after the restart: its batch is
//! covered by the checkpoint, so replay does not feed it again, and span
//! rules never see it twice. A rule's state is restored only
//! into a rule with the same id and the same file digest
//! ([`crate::rule::Rule::digest`]): a changed rule starts afresh, as on a
//! reload. Which input a checkpoint covers is the caller's business (the
//! server records the WAL positions beside it, so that replay after a crash
//! neither counts a span twice nor skips one).

use serde::{Deserialize, Serialize};

use super::{Engine, RuleStats, State};
use crate::assembly::{SavedTraces, TracesSnapshot};
use crate::log_join::{JoinProgress, SavedJoin};
use crate::rule::RuleKind;

const MAGIC: &[u8; 8] = b"TWDETCK1";
/// Bumped when the encoding of any state changes; an older checkpoint is
/// refused (the engine starts empty) rather than misread.
// 2: baseline keys count spans per distinct value (`max_share`).
// 3: threshold keys hold a sketch past the exact distinct bound.
// 4: log records waiting in the join carry what their climb gathered, and
//    indexed spans the parent to climb to.
// 5: buffered traces carry their id, and a span may be named by its WAL
//    record instead of copied.
const VERSION: u32 = 5;

/// A checkpoint that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a detection checkpoint (bad magic)")]
    Magic,
    #[error("the checkpoint is truncated")]
    Truncated,
    #[error("the checkpoint is damaged (checksum mismatch)")]
    Checksum,
    #[error("checkpoint version {found}, this build reads {VERSION}")]
    Version { found: u32 },
    #[error("cannot encode or decode the checkpoint: {0}")]
    Encoding(String),
    #[error("buffered spans named by the restored checkpoint are still awaited (Engine::refilled)")]
    Refilling,
}

/// What [`Engine::restore`] did, by rule id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Rules whose state came back.
    pub restored: Vec<String>,
    /// Rules in the checkpoint whose file changed since: left empty.
    pub changed: Vec<String>,
    /// Rules in the checkpoint that no longer run.
    pub unknown: Vec<String>,
    /// Spans of traces that were waiting for assembly, buffered again.
    pub buffered_spans: usize,
    /// Log records that were waiting for their span, held again.
    pub held_logs: usize,
}

#[derive(Serialize)]
struct CheckpointRef<'a> {
    version: u32,
    watermark: u64,
    spans: u64,
    logs: u64,
    detections: u64,
    rules: Vec<RuleRef<'a>>,
}

#[derive(Serialize)]
struct RuleRef<'a> {
    id: &'a str,
    digest: u64,
    stats: &'a RuleStats,
    state: &'a State,
}

#[derive(Deserialize)]
struct CheckpointRead {
    version: u32,
    watermark: u64,
    spans: u64,
    logs: u64,
    detections: u64,
    rules: Vec<RuleCheckpoint>,
}

#[derive(Deserialize)]
struct RuleCheckpoint {
    id: String,
    digest: u64,
    stats: RuleStats,
    state: State,
}

/// What follows the rule state when something is buffered.
#[derive(Default, Serialize, Deserialize)]
struct Buffers {
    traces: SavedTraces,
    log_join: SavedJoin,
}

/// [`Buffers`] as written: the traces shared with the buffer (the same
/// bytes, without copying every buffered span first).
#[derive(Clone, Debug, Default, Serialize)]
struct BuffersSnapshot {
    traces: TracesSnapshot,
    log_join: SavedJoin,
}

/// A checkpoint taken but not yet encoded whole: the rule state already as
/// bytes, the buffered traces shared with the buffer. Taking it is quick;
/// [`Checkpoint::encode`] (most of the work when many spans are buffered)
/// may run on another thread while the engine goes on.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    head: Vec<u8>,
    buffers: BuffersSnapshot,
    progress: JoinProgress,
}

impl Checkpoint {
    /// The checkpoint's bytes (see the module documentation).
    pub fn encode(self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// [`Checkpoint::encode`] into `out`, cleared first. A writer that
    /// passes the same buffer every time keeps its memory: a large
    /// checkpoint neither grows a new vector by doubling nor faults in
    /// fresh pages (both were a third of the writer's time, measured).
    /// Returns the lowest WAL record (LSN) it names buffered spans in, if
    /// any: a restart restores them from there
    /// ([`Engine::wanted_lsns`]), so the WAL must keep it while this is
    /// the latest checkpoint.
    pub fn encode_into(self, out: &mut Vec<u8>) -> Result<Option<u64>, CheckpointError> {
        let Checkpoint {
            head,
            buffers,
            progress,
        } = self;
        out.clear();
        out.extend_from_slice(&head);
        if !buffers.traces.is_empty() || !buffers.log_join.is_empty() || progress.any() {
            *out = postcard::to_extend(&buffers, std::mem::take(out))
                .map_err(|e| CheckpointError::Encoding(e.to_string()))?;
        }
        if progress.any() {
            *out = postcard::to_extend(&progress, std::mem::take(out))
                .map_err(|e| CheckpointError::Encoding(e.to_string()))?;
        }
        let crc = crc32c::crc32c(out.get(MAGIC.len()..).unwrap_or(&[]));
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(buffers.traces.lowest_named_lsn())
    }

    /// Buffered spans it holds.
    pub fn buffered_spans(&self) -> usize {
        self.buffers.traces.spans()
    }
}

/// The version is read first on its own, so a checkpoint of another version
/// is told apart from a damaged one.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

impl Engine {
    /// The engine's state as bytes (see the module documentation).
    pub fn checkpoint(&self) -> Result<Vec<u8>, CheckpointError> {
        self.take_checkpoint()?.encode()
    }

    /// The engine's state, to encode later ([`Checkpoint::encode`]): the
    /// rules' windows and counters are encoded now, the buffered traces
    /// are only shared.
    pub fn take_checkpoint(&self) -> Result<Checkpoint, CheckpointError> {
        // The awaited spans are in no buffer yet: a checkpoint now would
        // lose them.
        if self.is_refilling() {
            return Err(CheckpointError::Refilling);
        }
        let body = CheckpointRef {
            version: VERSION,
            watermark: self.watermark,
            spans: self.spans,
            logs: self.logs,
            detections: self.detections,
            rules: self
                .rules
                .iter()
                .map(|c| RuleRef {
                    id: &c.rule.id,
                    digest: c.rule.digest,
                    stats: &c.stats,
                    state: &c.state,
                })
                .collect(),
        };
        let head = postcard::to_extend(&body, MAGIC.to_vec())
            .map_err(|e| CheckpointError::Encoding(e.to_string()))?;
        Ok(Checkpoint {
            head,
            buffers: BuffersSnapshot {
                traces: self
                    .buffer
                    .as_ref()
                    .map(|b| b.snapshot())
                    .unwrap_or_default(),
                log_join: self.join.as_ref().map(|j| j.saved()).unwrap_or_default(),
            },
            progress: self.join.as_ref().map(|j| j.progress()).unwrap_or_default(),
        })
    }

    /// Restores the state of a checkpoint into the rules running now (same
    /// id and digest); other rules keep their current state. Nothing changes
    /// when the checkpoint cannot be read.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<RestoreSummary, CheckpointError> {
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or(if bytes.len() < MAGIC.len() {
                CheckpointError::Truncated
            } else {
                CheckpointError::Magic
            })?;
        let (body, crc) = body
            .split_last_chunk::<4>()
            .ok_or(CheckpointError::Truncated)?;
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return Err(CheckpointError::Checksum);
        }
        let version: VersionOnly =
            postcard::from_bytes(body).map_err(|e| CheckpointError::Encoding(e.to_string()))?;
        if version.version != VERSION {
            return Err(CheckpointError::Version {
                found: version.version,
            });
        }
        let (checkpoint, rest): (CheckpointRead, &[u8]) = postcard::take_from_bytes(body)
            .map_err(|e| CheckpointError::Encoding(e.to_string()))?;
        let (buffers, rest): (Buffers, &[u8]) = if rest.is_empty() {
            (Buffers::default(), rest)
        } else {
            postcard::take_from_bytes(rest).map_err(|e| CheckpointError::Encoding(e.to_string()))?
        };
        let progress: JoinProgress = if rest.is_empty() {
            JoinProgress::default()
        } else {
            postcard::from_bytes(rest).map_err(|e| CheckpointError::Encoding(e.to_string()))?
        };
        debug_assert_eq!(checkpoint.version, VERSION);
        let mut summary = RestoreSummary::default();
        self.watermark = self.watermark.max(checkpoint.watermark);
        self.spans += checkpoint.spans;
        self.logs += checkpoint.logs;
        self.detections += checkpoint.detections;
        for saved in checkpoint.rules {
            let Some(compiled) = self.rules.iter_mut().find(|c| c.rule.id == saved.id) else {
                summary.unknown.push(saved.id);
                continue;
            };
            if compiled.rule.digest != saved.digest {
                summary.changed.push(saved.id);
                continue;
            }
            let mut state = saved.state;
            let cap = self.config.max_keys_per_rule;
            match (&mut state, &compiled.rule.kind) {
                (State::Threshold(keys), _) => keys.set_cap(cap),
                (State::Sequence(keys), _) => keys.set_cap(cap),
                (State::MatchSuppressed(keys), _) => keys.set_cap(cap),
                (State::NewTerms(terms), _) => terms.keys.set_cap(cap),
                (State::Baseline(baseline), RuleKind::Baseline(rule)) => {
                    baseline.set_params(rule, &self.config);
                }
                (State::Baseline(_), _) => {
                    // Cannot happen with the same digest; start empty
                    // rather than run without parameters.
                    summary.changed.push(saved.id);
                    continue;
                }
                (State::Match | State::TraceMatch | State::Topology(_) | State::DataFlow, _) => {}
            }
            // The same digest means the same kind, so the same state shape.
            compiled.state = state;
            compiled.stats = saved.stats;
            summary.restored.push(saved.id);
        }
        // Traces a limit pushes out are evaluated at the next flush; with no
        // whole-trace rule running any more, the spans have nothing to feed.
        if let Some(buffer) = &mut self.buffer
            && !buffers.traces.is_empty()
        {
            summary.buffered_spans = buffers.traces.spans();
            buffer.restore(buffers.traces, &mut self.assembled);
        }
        // Likewise records waiting for their span, and how far the join had
        // come, when a rule still joins (nothing saved restores nothing).
        if let Some(join) = &mut self.join {
            summary.held_logs = buffers.log_join.held();
            join.restore(buffers.log_join, progress);
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use tracewarden_model::{AnyValue, KeyValue, Span, SpanId, SpanRecord, TraceId};

    use super::*;
    use crate::rule::parse_rule;

    const SEC: u64 = 1_000_000_000;
    const BASE: u64 = 1_767_225_600 * SEC;
    const RULE: &str = "id: brute\ntitle: t\nseverity: high\nkind: threshold\ncondition: '{ span.http.response.status_code = 401 }'\ngroup_by: [span.client.address]\nwindow: 5m\ncount: 5\n";
    const SEQ: &str = "id: seq\ntitle: t\nseverity: high\nkind: sequence\ngroup_by: [span.client.address]\nwindow: 5m\nsteps:\n  - condition: '{ span.http.response.status_code = 401 }'\n    count: 2\n  - condition: '{ span.http.response.status_code = 200 }'\n";

    fn failure(i: u8, status: i64) -> SpanRecord {
        let mut span = Span::new(
            TraceId::from_bytes([i; 16]),
            SpanId::from_bytes([i; 8]),
            "POST /login",
        );
        span.start_time_unix_nano = BASE + u64::from(i) * SEC;
        span.attributes.push(KeyValue::new(
            "http.response.status_code",
            AnyValue::Int(status),
        ));
        span.attributes
            .push(KeyValue::new("client.address", "198.51.100.7"));
        SpanRecord {
            resource: Arc::default(),
            scope: Arc::default(),
            span: span.into(),
        }
    }

    fn engine() -> Engine {
        Engine::new(vec![
            parse_rule(RULE, Path::new("r.yaml")).unwrap(),
            parse_rule(SEQ, Path::new("s.yaml")).unwrap(),
        ])
    }

    #[test]
    fn a_restored_engine_carries_on_where_the_checkpoint_left() {
        let mut before = engine();
        let three: Vec<SpanRecord> = (1..=3).map(|i| failure(i, 401)).collect();
        assert!(before.process(&three, BASE + 10 * SEC).is_empty());
        let bytes = before.checkpoint().unwrap();

        let mut after = engine();
        let summary = after.restore(&bytes).unwrap();
        assert_eq!(summary.restored, vec!["brute", "seq"]);
        assert_eq!(after.stats().rules[0].matched_spans, 3);
        // Two more failures reach five with the three restored, and a
        // success completes the sequence begun before the checkpoint.
        let more = [failure(4, 401), failure(5, 401), failure(6, 200)];
        let fired: Vec<(String, u64)> = after
            .process(&more, BASE + 10 * SEC)
            .iter()
            .map(|d| (d.rule_id.to_string(), d.count))
            .collect();
        assert_eq!(
            fired,
            vec![("brute".to_string(), 5), ("seq".to_string(), 3)]
        );
        // Without the checkpoint the same spans fire only the sequence
        // (two failures and a success), not the threshold.
        let fresh: Vec<String> = engine()
            .process(&more, BASE + 10 * SEC)
            .iter()
            .map(|d| d.rule_id.to_string())
            .collect();
        assert_eq!(fresh, vec!["seq"]);
    }

    /// A whole-trace rule: a login failure under a request of the same trace.
    const TRACE_RULE: &str = "id: nested\ntitle: t\nseverity: high\nkind: match\ncondition: '{ name = \"GET /\" } >> { span.http.response.status_code = 401 }'\n";

    fn trace_rules() -> Vec<crate::rule::Rule> {
        vec![
            parse_rule(RULE, Path::new("r.yaml")).unwrap(),
            parse_rule(TRACE_RULE, Path::new("t.yaml")).unwrap(),
        ]
    }

    /// A page request (the root) and a failed login under it, of trace 1.
    fn request_and_failure() -> (SpanRecord, SpanRecord) {
        let mut root = failure(1, 200);
        root.span_mut().name = "GET /".into();
        root.span_mut().span_id = SpanId::from_bytes([9; 8]);
        let mut child = failure(1, 401);
        child.span_mut().parent_span_id = Some(root.span.span_id);
        (root, child)
    }

    #[test]
    fn traces_waiting_for_assembly_survive_a_restart() {
        let rules = trace_rules;
        let mut before = Engine::new(rules());
        let (root, child) = request_and_failure();
        let now = BASE + 10 * SEC;
        assert!(before.process(&[child, root], now).is_empty());
        assert_eq!(before.stats().assembly.buffered_spans, 2);
        let bytes = before.checkpoint().unwrap();

        // The crash: a new engine from the checkpoint alone.
        let mut after = Engine::new(rules());
        let summary = after.restore(&bytes).unwrap();
        assert_eq!(summary.buffered_spans, 2);
        assert_eq!(after.stats().rules[0].matched_spans, 1, "counted once");
        assert_eq!(after.next_flush_due(), Some(now + 5 * SEC));
        let fired: Vec<String> = after
            .flush(now + 5 * SEC)
            .iter()
            .map(|d| d.rule_id.to_string())
            .collect();
        assert_eq!(fired, vec!["nested"]);
        assert_eq!(
            after.stats().rules[0].matched_spans,
            1,
            "span rules saw nothing"
        );
        // A checkpoint of an engine without buffered traces has no such
        // part, and one of an engine without whole-trace rules drops them.
        let empty = Engine::new(rules()).checkpoint().unwrap();
        assert!(empty.len() < bytes.len());
        let mut span_only = Engine::new(vec![parse_rule(RULE, Path::new("r.yaml")).unwrap()]);
        assert_eq!(span_only.restore(&bytes).unwrap().buffered_spans, 0);
    }

    /// Spans processed as WAL records are named in the checkpoint, not
    /// copied; after a restart they come back from the replayed records,
    /// and only then does the trace complete. The span rules count them
    /// once, and no checkpoint is taken while they are awaited.
    #[test]
    fn traces_named_by_their_wal_records_survive_a_restart() {
        let rules = trace_rules;
        let mut before = Engine::new(rules());
        let (root, child) = request_and_failure();
        let now = BASE + 10 * SEC;
        // Two WAL records: the child alone in 41, the root second in 42.
        let record_41 = vec![child];
        let record_42 = vec![failure(2, 200), root];
        assert!(before.process_record(record_41.clone(), now, 41).is_empty());
        assert!(before.process_record(record_42.clone(), now, 42).is_empty());
        let taken = before.take_checkpoint().unwrap();
        let mut bytes = Vec::new();
        assert_eq!(taken.encode_into(&mut bytes).unwrap(), Some(41));
        // Named, the spans take a few bytes each: the same engine fed
        // without records writes them whole.
        let mut copied = Engine::new(rules());
        copied.process(&record_41, now);
        copied.process(&record_42, now);
        assert!(bytes.len() + 100 < copied.checkpoint().unwrap().len());
        let unnamed = copied.take_checkpoint().unwrap();
        assert_eq!(unnamed.encode_into(&mut Vec::new()).unwrap(), None);
        let empty = Engine::new(rules()).take_checkpoint().unwrap();
        assert_eq!(empty.encode_into(&mut Vec::new()).unwrap(), None);

        let mut after = Engine::new(rules());
        assert_eq!(after.restore(&bytes).unwrap().buffered_spans, 3);
        assert_eq!(after.wanted_lsns(), vec![41, 42]);
        assert!(matches!(
            after.take_checkpoint(),
            Err(CheckpointError::Refilling)
        ));
        assert!(
            after.flush(now + 5 * SEC).is_empty(),
            "not before the replay"
        );
        after.refill(41, &record_41);
        after.refill(42, &record_42);
        after.refilled();
        assert_eq!(after.stats().assembly.buffered_spans, 3);
        assert_eq!(after.stats().assembly.missing_restored_spans, 0);
        let fired: Vec<String> = after
            .flush(now + 5 * SEC)
            .iter()
            .map(|d| d.rule_id.to_string())
            .collect();
        assert_eq!(fired, vec!["nested"]);
        assert_eq!(after.stats().rules[0].matched_spans, 1, "counted once");
        assert!(after.take_checkpoint().is_ok());
    }

    #[test]
    fn changed_rules_start_empty_and_bad_bytes_change_nothing() {
        let mut before = engine();
        before.process(&[failure(1, 401)], BASE + 10 * SEC);
        let bytes = before.checkpoint().unwrap();

        let changed = RULE.replace("count: 5", "count: 6");
        let mut after = Engine::new(vec![parse_rule(&changed, Path::new("r.yaml")).unwrap()]);
        let summary = after.restore(&bytes).unwrap();
        assert_eq!(summary.changed, vec!["brute"]);
        assert_eq!(summary.unknown, vec!["seq"]);
        assert_eq!(after.stats().rules[0].matched_spans, 0);

        let mut engine = engine();
        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        assert!(matches!(
            engine.restore(&damaged),
            Err(CheckpointError::Checksum)
        ));
        assert!(matches!(
            engine.restore(&bytes[..bytes.len() - 3]),
            Err(CheckpointError::Checksum | CheckpointError::Truncated)
        ));
        assert!(matches!(
            engine.restore(b"TWDE"),
            Err(CheckpointError::Truncated)
        ));
        assert!(matches!(
            engine.restore(b"something else"),
            Err(CheckpointError::Magic)
        ));
        assert_eq!(engine.stats().rules[0].matched_spans, 0);
        // Any byte string is refused cleanly, never a panic.
        for len in 0..bytes.len() {
            let _ = engine.restore(&bytes[..len]);
        }
    }

    #[test]
    fn learned_terms_survive_a_restore() {
        const TERMS: &str = "id: agents\ntitle: t\nseverity: low\nkind: new_terms\ncondition: '{ span.enduser.id != nil }'\ngroup_by: [span.enduser.id]\nfields: [span.user_agent.original]\nlearning: 1h\n";
        let rule = || parse_rule(TERMS, Path::new("n.yaml")).unwrap();
        let at = |secs: u64, agent: &str| {
            let mut span = Span::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes([1; 8]),
                "GET /",
            );
            span.start_time_unix_nano = BASE + secs * SEC;
            span.attributes.push(KeyValue::new("enduser.id", "alice"));
            span.attributes
                .push(KeyValue::new("user_agent.original", agent));
            SpanRecord {
                resource: Arc::default(),
                scope: Arc::default(),
                span: span.into(),
            }
        };
        let mut before = Engine::new(vec![rule()]);
        before.process(&[at(0, "curl/8"), at(7200, "curl/8")], BASE + 7200 * SEC);
        let bytes = before.checkpoint().unwrap();

        let mut after = Engine::new(vec![rule()]);
        assert_eq!(after.restore(&bytes).unwrap().restored, vec!["agents"]);
        assert!(
            after
                .process(&[at(9000, "curl/8")], BASE + 9000 * SEC)
                .is_empty()
        );
        let fired = after.process(&[at(9001, "wget/1")], BASE + 9001 * SEC);
        assert_eq!(fired.len(), 1, "learning is over and the term is new");
        // A fresh engine would be learning again and stay silent.
        let mut fresh = Engine::new(vec![rule()]);
        assert!(
            fresh
                .process(&[at(9000, "curl/8"), at(9001, "wget/1")], BASE + 9001 * SEC)
                .is_empty()
        );
    }
}
