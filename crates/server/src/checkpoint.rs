//! The detection checkpoint file: the engine's state and the WAL records
//! (LSNs) whose effect it holds, written together so that after a crash the
//! WAL replay feeds detection exactly the records the state lacks: none
//! counted twice, none skipped while the WAL still holds it.
//!
//! Layout of `data_dir/detection/checkpoint`: the magic `TWDCHK01`, a
//! postcard body (covered LSN ranges, engine checkpoint bytes), the CRC-32C
//! of the body. Written to a temporary file, synced, renamed over the old
//! one and the directory synced: a crash leaves the old or the new file,
//! never a torn one. With encryption at rest configured the whole file is
//! sealed with the store's key ([`EncryptionKey::seal_file`]): the state
//! holds actors (addresses, user names) like the data it was computed from.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracewarden_detect::engine::Checkpoint;
use tracewarden_store::{EncryptionKey, LsnSet, WalHold};

/// What the sealed file is, bound into its key.
const PURPOSE: &str = "detection checkpoint";

const MAGIC: &[u8; 8] = b"TWDCHK01";
/// Largest checkpoint read back (state is bounded by the per-rule key caps;
/// this only guards against reading a wrong file whole).
const MAX_BYTES: u64 = 4 << 30;

/// The file name within the detection directory.
pub const FILE_NAME: &str = "checkpoint";

#[derive(Serialize, Deserialize)]
struct Body {
    /// Inclusive LSN ranges whose batches the engine state reflects (or
    /// that were skipped while detection was behind and will never be).
    covered: Vec<(u64, u64)>,
    engine: Vec<u8>,
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Saved {
    pub covered: LsnSet,
    /// [`tracewarden_detect::engine::Engine::checkpoint`] bytes.
    pub engine: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a detection checkpoint, or damaged ({reason})")]
    Invalid { path: PathBuf, reason: String },
}

fn io(path: &Path, source: std::io::Error) -> CheckpointFileError {
    CheckpointFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a checkpoint atomically into `dir` (created if needed).
pub fn write(
    dir: &Path,
    covered: &LsnSet,
    engine: &[u8],
    key: Option<&EncryptionKey>,
) -> Result<(), CheckpointFileError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // The postcard encoding of `Body`, without copying the engine's bytes
    // into it: its fields in order, the engine bytes as a length-prefixed
    // sequence (a test holds this equal to encoding `Body` itself).
    let mut head = MAGIC.to_vec();
    head = postcard::to_extend(&(covered.ranges(), engine.len()), head).map_err(|e| {
        CheckpointFileError::Invalid {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(head.get(MAGIC.len()..).unwrap_or(&[])),
        engine,
    )
    .to_le_bytes();
    let sealed = match key {
        Some(key) => {
            let plain = [head.as_slice(), engine, &crc].concat();
            Some(key.seal_file(PURPOSE, &plain).map_err(|e| io(dir, e))?)
        }
        None => None,
    };

    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    match &sealed {
        Some(sealed) => file.write_all(sealed),
        None => file
            .write_all(&head)
            .and_then(|()| file.write_all(engine))
            .and_then(|()| file.write_all(&crc)),
    }
    .map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(())
}

/// What a finished write reports to its caller.
pub type WriteResult = Result<WriteReport, CheckpointFileError>;

/// A checkpoint written by a [`Writer`].
#[derive(Clone, Copy, Debug)]
pub struct WriteReport {
    /// Bytes of engine state.
    pub bytes: usize,
    /// Encoding the buffered traces, framing, CRC, sealing, the write and
    /// the fsyncs.
    pub took: Duration,
}

/// One checkpoint to write.
struct Job {
    covered: LsnSet,
    engine: Checkpoint,
    /// The lowest WAL record a restart from this checkpoint may need
    /// besides those it names (see [`Writer::write`]).
    keep_from: u64,
}

/// Writes checkpoints on a thread of its own, so the detection thread pays
/// only for taking its state ([`tracewarden_detect::engine::Engine::take_checkpoint`]):
/// encoding the buffered traces, the file's framing, the CRC, sealing, the
/// write and the fsyncs (nearly all the time of a large checkpoint) happen
/// here while detection goes on. One checkpoint at a
/// time: while one is being written, [`Writer::is_busy`] says to wait for
/// the next turn rather than serialise another.
pub struct Writer {
    sender: Option<SyncSender<Job>>,
    busy: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writing thread for `dir`; `done` is called on it after
    /// each write with its outcome.
    pub fn spawn(
        dir: PathBuf,
        key: Option<Arc<EncryptionKey>>,
        hold: Arc<WalHold>,
        done: impl Fn(WriteResult) + Send + 'static,
    ) -> std::io::Result<Writer> {
        // Room for one job: the final checkpoint of a shutdown may be
        // queued behind one being written.
        let (sender, receiver) = sync_channel::<Job>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let thread_busy = Arc::clone(&busy);
        let thread = std::thread::Builder::new()
            .name("detection-checkpoint".to_string())
            .spawn(move || {
                // Kept from one checkpoint to the next (as large as the
                // largest): see `Checkpoint::encode_into`.
                let mut engine = Vec::new();
                for job in receiver {
                    let started = Instant::now();
                    let keep_from = job.keep_from;
                    let result = job
                        .engine
                        .encode_into(&mut engine)
                        .map_err(|e| CheckpointFileError::Invalid {
                            path: dir.clone(),
                            reason: e.to_string(),
                        })
                        .and_then(|named| {
                            let keep = named.map_or(keep_from, |lsn| lsn.min(keep_from));
                            // Until the new file replaces the old, both may
                            // be the one a restart reads: keep what either
                            // needs.
                            hold.hold_from(hold.get().map_or(keep, |held| held.min(keep)));
                            write(&dir, &job.covered, &engine, key.as_deref())?;
                            hold.hold_from(keep);
                            Ok(WriteReport {
                                bytes: engine.len(),
                                took: started.elapsed(),
                            })
                        });
                    if result.is_err() {
                        // A checkpoint that cannot be written must not make
                        // the WAL grow without bound: the traces the file
                        // on disk names may then come back without some
                        // spans (counted as missing restored spans).
                        hold.release();
                    }
                    // Before `done`: a caller that sees the outcome may
                    // offer the next checkpoint.
                    thread_busy.store(false, Ordering::Release);
                    done(result);
                }
            })?;
        Ok(Writer {
            sender: Some(sender),
            busy,
            thread: Some(thread),
        })
    }

    /// Whether a checkpoint is being written (or waits to be).
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Hands a checkpoint over; waits only if one is already queued behind
    /// the one being written (callers check [`Writer::is_busy`] first).
    /// Once it is written, the WAL is held from the lowest record it names
    /// or `keep_from`, whichever is lower: the records a restart from it
    /// would replay or refill from.
    pub fn write(&self, covered: LsnSet, engine: Checkpoint, keep_from: u64) {
        self.busy.store(true, Ordering::Release);
        if let Some(sender) = &self.sender
            && sender
                .send(Job {
                    covered,
                    engine,
                    keep_from,
                })
                .is_err()
        {
            self.busy.store(false, Ordering::Release);
            tracing::error!("the checkpoint writer has stopped; the checkpoint is not written");
        }
    }

    /// Waits until every checkpoint handed over is written.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the checkpoint writer panicked");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the checkpoint of `dir`; `Ok(None)` when there is none yet.
pub fn read(dir: &Path, key: Option<&EncryptionKey>) -> Result<Option<Saved>, CheckpointFileError> {
    let path = dir.join(FILE_NAME);
    let metadata = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path, e)),
    };
    let invalid = |reason: &str| CheckpointFileError::Invalid {
        path: path.clone(),
        reason: reason.to_string(),
    };
    if metadata.len() > MAX_BYTES {
        return Err(invalid("larger than any checkpoint"));
    }
    let mut bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
    if EncryptionKey::is_sealed(&bytes) {
        let key = key.ok_or_else(|| invalid("encrypted, and no encryption key is configured"))?;
        bytes = key.open_file(PURPOSE, &bytes).map_err(|e| invalid(&e))?;
    }
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| invalid("bad magic"))?;
    let (body, crc) = body
        .split_last_chunk::<4>()
        .ok_or_else(|| invalid("truncated"))?;
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
        return Err(invalid("checksum mismatch"));
    }
    let body: Body = postcard::from_bytes(body).map_err(|e| invalid(&e.to_string()))?;
    Ok(Some(Saved {
        covered: LsnSet::from_ranges(body.covered),
        engine: body.engine,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine checkpoint whose bytes tell it apart from `other`'s.
    fn engine_checkpoint(spans: u64) -> (Checkpoint, Vec<u8>) {
        let mut engine = tracewarden_detect::engine::Engine::new(Vec::new());
        let records: Vec<tracewarden_model::SpanRecord> = (0..spans)
            .map(|i| tracewarden_model::SpanRecord {
                resource: Default::default(),
                scope: Default::default(),
                span: tracewarden_model::Span::new(
                    tracewarden_model::TraceId::from_bytes([1; 16]),
                    tracewarden_model::SpanId::from_bytes(i.to_le_bytes()),
                    "span",
                )
                .into(),
            })
            .collect();
        engine.process(&records, 1);
        let taken = engine.take_checkpoint().unwrap();
        (taken, engine.checkpoint().unwrap())
    }

    #[test]
    fn the_writer_writes_in_order_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let hold = Arc::new(WalHold::new());
        let writer = Writer::spawn(
            dir.path().join("detection"),
            None,
            Arc::clone(&hold),
            move |result| {
                tx.send(result.map(|r| r.bytes).map_err(|e| e.to_string()))
                    .unwrap();
            },
        )
        .unwrap();
        let (one, one_bytes) = engine_checkpoint(1);
        writer.write(LsnSet::from_ranges([(1, 3)]), one, 4);
        assert_eq!(rx.recv().unwrap(), Ok(one_bytes.len()));
        assert!(!writer.is_busy());
        // Written: the WAL is held from where a restart from it replays.
        assert_eq!(hold.get(), Some(4));
        // The last one handed over is on disk once `finish` returns.
        let (two, two_bytes) = engine_checkpoint(2);
        let (three, three_bytes) = engine_checkpoint(3);
        assert_ne!(two_bytes, three_bytes);
        writer.write(LsnSet::from_ranges([(1, 4)]), two, 5);
        writer.write(LsnSet::from_ranges([(1, 5)]), three, 6);
        writer.finish();
        assert_eq!(hold.get(), Some(6));
        let saved = read(&dir.path().join("detection"), None).unwrap().unwrap();
        assert_eq!(saved.engine, three_bytes);
        assert_eq!(saved.covered, LsnSet::from_ranges([(1, 5)]));
        assert_eq!(
            rx.iter().collect::<Vec<_>>(),
            vec![Ok(two_bytes.len()), Ok(three_bytes.len())]
        );

        // A directory that cannot be created: the failure comes back.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"x").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer::spawn(
            blocked.join("detection"),
            None,
            Arc::clone(&hold),
            move |result| {
                tx.send(result.is_err()).unwrap();
            },
        )
        .unwrap();
        writer.write(LsnSet::new(), engine_checkpoint(1).0, 7);
        assert!(rx.recv().unwrap());
        assert!(!writer.is_busy());
        // A checkpoint that cannot be written holds nothing back.
        assert_eq!(hold.get(), None);
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), None).unwrap().is_none());
        let covered = LsnSet::from_ranges([(1, 10), (12, 12)]);
        write(dir.path(), &covered, &[1, 2, 3], None).unwrap();
        let saved = read(dir.path(), None).unwrap().unwrap();
        assert_eq!(saved.covered, covered);
        assert_eq!(saved.engine, vec![1, 2, 3]);
        // Overwritten whole.
        write(dir.path(), &LsnSet::from_ranges([(1, 20)]), &[9], None).unwrap();
        assert_eq!(read(dir.path(), None).unwrap().unwrap().engine, vec![9]);

        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = read(dir.path(), None).unwrap_err().to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
        std::fs::write(&path, b"TWDC").unwrap();
        assert!(
            read(dir.path(), None)
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
    }

    #[test]
    fn the_file_is_the_postcard_body_however_it_is_framed() {
        // Written without copying the engine bytes into a `Body`; the bytes
        // must be exactly those of one (older files, and `read`, use it).
        let dir = tempfile::tempdir().unwrap();
        let covered = LsnSet::from_ranges([(1, 10), (12, 12), (300, 1 << 40)]);
        let engine: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        write(dir.path(), &covered, &engine, None).unwrap();
        let body = Body {
            covered: covered.ranges().to_vec(),
            engine: engine.clone(),
        };
        let mut expected = MAGIC.to_vec();
        expected = postcard::to_extend(&body, expected).unwrap();
        let crc = crc32c::crc32c(&expected[MAGIC.len()..]);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), expected);
        assert_eq!(read(dir.path(), None).unwrap().unwrap().engine, engine);
    }

    #[test]
    fn a_reused_buffer_encodes_what_a_fresh_one_does() {
        let (first, fresh) = engine_checkpoint(40);
        let mut buffer = vec![7; 1 << 16];
        first.encode_into(&mut buffer).unwrap();
        assert_eq!(buffer, fresh);
        let (small, fresh) = engine_checkpoint(1);
        small.encode_into(&mut buffer).unwrap();
        assert_eq!(buffer, fresh);
    }

    #[test]
    fn encrypted_with_the_store_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptionKey::from_bytes(&[3; 32]);
        let covered = LsnSet::from_ranges([(1, 4)]);
        write(dir.path(), &covered, b"203.0.113.7", Some(&key)).unwrap();
        let raw = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert!(!raw.windows(11).any(|w| w == b"203.0.113.7"));
        let saved = read(dir.path(), Some(&key)).unwrap().unwrap();
        assert_eq!(saved.engine, b"203.0.113.7");
        assert_eq!(saved.covered, covered);
        let e = read(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("no encryption key is configured"), "{e}");
        let other = EncryptionKey::from_bytes(&[4; 32]);
        assert!(read(dir.path(), Some(&other)).is_err());
        // A plain checkpoint from before encryption was switched on reads.
        write(dir.path(), &covered, &[1], None).unwrap();
        assert_eq!(
            read(dir.path(), Some(&key)).unwrap().unwrap().engine,
            vec![1]
        );
    }
}
