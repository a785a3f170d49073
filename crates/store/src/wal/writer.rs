//! The WAL writer thread and its group commit.
//!
//! Appends queue a [`Queued`] frame on an unbounded channel (bounded in
//! practice by the `max_pending_bytes` check before queueing). The thread
//! takes the first, drains whatever else is queued, writes the whole group
//! with one vectored write, fsyncs once and answers every append of the
//! group. While it waits on that fsync, new appends queue up and form the
//! next group: the busier the store, the more appends share one fsync.
//!
//! A failed write or fsync ends the thread: every waiting append gets an
//! error and the store refuses appends from then on. After a failed fsync
//! the kernel may have dropped the dirty pages and cleared the error, so a
//! retry could "succeed" without the data on disk; only a reopen, which
//! replays what really is in the files, is trustworthy.

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use super::directory::{WalDirectory, WalFile};
use super::replay::Tail;
use super::{
    ENCRYPTED_FILE_HEADER_LEN, FILE_HEADER_LEN, Frame, Lsn, WalOptions, encrypted_file_header,
    file_header, file_name,
};
use crate::encryption::{EncryptionKey, FILE_SALT_LEN, RecordCipher, random_bytes};
use crate::error::{Result, StoreError};

/// State shared by the store and its writer thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Bytes of frames queued or being written, not yet answered.
    pub pending_bytes: AtomicUsize,
    /// Appends queued or being written, not yet answered.
    pub pending_appends: AtomicUsize,
    /// Set once, when a write or fsync failed.
    pub failure: OnceLock<String>,
    pub closed: AtomicBool,
    /// The last LSN made durable.
    pub last_lsn: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_files: AtomicU64,
    /// Appends acknowledged.
    pub appends: AtomicU64,
    /// `fdatasync` calls on WAL files.
    pub fsyncs: AtomicU64,
    /// How long they took.
    pub fsync_latency: super::latency::FsyncLatency,
}

impl Shared {
    /// The error for an append that found the writer gone.
    pub fn stopped_error(&self) -> StoreError {
        match self.failure.get() {
            Some(reason) => StoreError::Failed {
                reason: reason.clone(),
            },
            None => StoreError::Closed,
        }
    }
}

/// A frame waiting for the writer. Its share of the pending counters is
/// released when it is answered, or when it is dropped unanswered (thrown
/// away with the channel), so the overload check never counts an append
/// that is gone.
pub(crate) struct Queued {
    frame: Frame,
    /// Assigned by the writer.
    lsn: Lsn,
    /// `None` once answered.
    reply: Option<oneshot::Sender<Result<Lsn>>>,
    shared: Arc<Shared>,
}

impl Queued {
    /// Wraps a frame whose bytes the caller already added to
    /// `pending_bytes`; counts it in `pending_appends`.
    pub fn new(frame: Frame, reply: oneshot::Sender<Result<Lsn>>, shared: Arc<Shared>) -> Queued {
        shared.pending_appends.fetch_add(1, Ordering::AcqRel);
        Queued {
            frame,
            lsn: 0,
            reply: Some(reply),
            shared,
        }
    }

    fn answer(&mut self, result: Result<Lsn>) {
        if let Some(reply) = self.reply.take() {
            // Released before the answer, so a caller that sees its result
            // never sees itself still counted as pending.
            self.release();
            // The caller may be gone (its runtime shut down); nothing to tell.
            let _ = reply.send(result);
        }
    }

    fn release(&self) {
        self.shared
            .pending_bytes
            .fetch_sub(self.frame.len(), Ordering::AcqRel);
        self.shared.pending_appends.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if self.reply.is_some() {
            self.release();
        }
    }
}

pub(crate) enum Command {
    Append(Queued),
    /// Commit what was queued before this, then stop.
    Close,
}

/// An I/O failure, kept so every append of the group gets its own copy.
struct Failure {
    op: &'static str,
    path: PathBuf,
    error: io::Error,
}

impl Failure {
    fn to_error(&self) -> StoreError {
        StoreError::io(
            self.op,
            self.path.clone(),
            io::Error::new(self.error.kind(), self.error.to_string()),
        )
    }
}

/// The writer: owns the current WAL file.
pub(crate) struct Writer {
    dir: Arc<dyn WalDirectory>,
    options: WalOptions,
    shared: Arc<Shared>,
    file: Box<dyn WalFile>,
    file_name: String,
    file_len: u64,
    salt: u32,
    next_lsn: Lsn,
    /// The encryption key: every file this writer starts is encrypted.
    key: Option<Arc<EncryptionKey>>,
    /// The current file's cipher (with a key).
    cipher: Option<RecordCipher>,
}

impl Writer {
    /// Opens the file to continue (the tail left by replay) or creates the
    /// first one; runs before the thread starts so the open reports errors.
    ///
    /// With a key, records are never appended to a file that holds any: a
    /// new encrypted file is started (see the nonce note in [`crate::wal`]).
    pub fn open(
        dir: Arc<dyn WalDirectory>,
        options: WalOptions,
        shared: Arc<Shared>,
        tail: Option<Tail>,
        next_lsn: Lsn,
        key: Option<Arc<EncryptionKey>>,
    ) -> Result<Writer> {
        let path = |name: &str| dir.path().join(name);
        let create = |name: &str| {
            dir.create(name)
                .map_err(|e| StoreError::io("create WAL file", path(name), e))
        };
        let (file_name, file, resume) = match tail {
            // Without a key, continue a plain file (an encrypted one with no
            // key failed replay).
            Some(Tail {
                name,
                len,
                salt: Some(salt),
                encrypted: false,
            }) if key.is_none() => {
                let file = dir
                    .open_append(&name)
                    .map_err(|e| StoreError::io("open WAL file", path(&name), e))?;
                (name, file, Some((len, salt)))
            }
            // With a key, a file holding records gets a successor. The tail
            // is named for an LSN at most its first record's, so only a file
            // with no record can have the successor's name: it is emptied and
            // gets a new header (a new salt, so a new key).
            Some(Tail {
                name, len, salt, ..
            }) => {
                if salt.is_some() && name != file_name(next_lsn) {
                    let name = file_name(next_lsn);
                    let file = create(&name)?;
                    shared.wal_files.fetch_add(1, Ordering::Relaxed);
                    (name, file, None)
                } else {
                    if len > 0 {
                        dir.truncate(&name, 0)
                            .map_err(|e| StoreError::io("truncate WAL file", path(&name), e))?;
                        shared.wal_bytes.fetch_sub(len, Ordering::Relaxed);
                    }
                    let file = dir
                        .open_append(&name)
                        .map_err(|e| StoreError::io("open WAL file", path(&name), e))?;
                    (name, file, None)
                }
            }
            None => {
                let name = file_name(next_lsn);
                let file = create(&name)?;
                shared.wal_files.fetch_add(1, Ordering::Relaxed);
                (name, file, None)
            }
        };
        let mut writer = Writer {
            dir,
            options,
            shared,
            file,
            file_name,
            file_len: 0,
            salt: 0,
            next_lsn,
            key,
            cipher: None,
        };
        match resume {
            Some((len, salt)) => {
                writer.file_len = len;
                writer.salt = salt;
            }
            // A new file, or one whose torn header replay cut to nothing.
            None => writer.start_file().map_err(|f| f.to_error())?,
        }
        Ok(writer)
    }

    /// Length of the current file's header.
    fn header_len(&self) -> u64 {
        if self.cipher.is_some() {
            ENCRYPTED_FILE_HEADER_LEN as u64
        } else {
            FILE_HEADER_LEN as u64
        }
    }

    pub fn spawn(self, commands: Receiver<Command>) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("tracewarden-wal".into())
            .spawn(move || self.run(commands))
    }

    fn run(mut self, commands: Receiver<Command>) {
        let mut group: Vec<Queued> = Vec::new();
        loop {
            let mut closing = match commands.recv() {
                Ok(Command::Append(queued)) => {
                    group.push(queued);
                    false
                }
                // Close, or every sender dropped with the store.
                Ok(Command::Close) | Err(_) => true,
            };
            while !closing {
                match commands.try_recv() {
                    Ok(Command::Append(queued)) => group.push(queued),
                    Ok(Command::Close) | Err(TryRecvError::Disconnected) => closing = true,
                    Err(TryRecvError::Empty) => break,
                }
            }
            if !group.is_empty() {
                match self.commit(&mut group) {
                    Ok(()) => group.clear(),
                    Err(failure) => {
                        self.fail(&failure, group, &commands);
                        return;
                    }
                }
            }
            if closing {
                // Appends queued after the close are dropped unanswered,
                // which their callers see as `Closed`.
                while commands.try_recv().is_ok() {}
                return;
            }
        }
    }

    /// Writes and fsyncs a group, answering each append once the file it
    /// went to is fsynced.
    fn commit(&mut self, group: &mut [Queued]) -> Result<(), Failure> {
        let mut run_start = 0;
        let mut run_len = 0u64;
        for index in 0..group.len() {
            let frame_len = group.get(index).map_or(0, |q| q.frame.len() as u64);
            let file_len = self.file_len + run_len;
            // Rotate before a record that would take a file holding records
            // past segment_bytes; a record larger than that gets a file to itself.
            if file_len > self.header_len() && file_len + frame_len > self.options.segment_bytes {
                self.write_run(group.get_mut(run_start..index).unwrap_or_default())?;
                self.rotate()?;
                run_start = index;
                run_len = 0;
            }
            if let Some(queued) = group.get_mut(index) {
                match &self.cipher {
                    Some(cipher) => queued
                        .frame
                        .seal_encrypted(self.salt, self.next_lsn, cipher)
                        .map_err(|reason| {
                            self.failure("encrypt a record for WAL file", io::Error::other(reason))
                        })?,
                    None => queued.frame.seal(self.salt, self.next_lsn),
                }
                queued.lsn = self.next_lsn;
            }
            self.next_lsn += 1;
            run_len += frame_len;
        }
        self.write_run(group.get_mut(run_start..).unwrap_or_default())
    }

    /// Writes records to the current file with one vectored write, fsyncs
    /// it, and answers their appends.
    fn write_run(&mut self, run: &mut [Queued]) -> Result<(), Failure> {
        let Some(last_lsn) = run.last().map(|q| q.lsn) else {
            return Ok(());
        };
        let bufs: Vec<&[u8]> = run.iter().map(|q| q.frame.as_bytes()).collect();
        let bytes: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        self.file
            .write_all(&bufs)
            .map_err(|error| self.failure("write WAL file", error))?;
        self.file_len += bytes;
        self.shared.wal_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.sync_file()?;

        // Counters first, so an append that sees Ok also sees them.
        self.shared.last_lsn.store(last_lsn, Ordering::Release);
        self.shared
            .appends
            .fetch_add(run.len() as u64, Ordering::Relaxed);
        for queued in run {
            let lsn = queued.lsn;
            queued.answer(Ok(lsn));
        }
        Ok(())
    }

    fn sync_file(&mut self) -> Result<(), Failure> {
        if self.options.fsync {
            let started = std::time::Instant::now();
            self.file
                .sync_data()
                .map_err(|error| self.failure("fsync WAL file", error))?;
            self.shared.fsync_latency.record(started.elapsed());
            self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Closes the current file (already fsynced) and starts the next, named
    /// for the next LSN.
    fn rotate(&mut self) -> Result<(), Failure> {
        let name = file_name(self.next_lsn);
        let file = self.dir.create(&name).map_err(|error| Failure {
            op: "create WAL file",
            path: self.dir.path().join(&name),
            error,
        })?;
        self.file = file;
        self.file_name = name;
        self.file_len = 0;
        self.start_file()?;
        self.shared.wal_files.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            file = %self.dir.path().join(&self.file_name).display(),
            "started WAL file"
        );
        Ok(())
    }

    /// Writes the header of the (empty) current file and makes the file and
    /// its directory entry durable before any record goes in.
    fn start_file(&mut self) -> Result<(), Failure> {
        self.salt = new_salt();
        let header: Vec<u8> = match &self.key {
            Some(key) => {
                let mut key_salt = [0u8; FILE_SALT_LEN];
                random_bytes(&mut key_salt)
                    .map_err(|error| self.failure("generate a key salt for WAL file", error))?;
                let cipher = key.wal_file_cipher(&key_salt).map_err(|reason| {
                    self.failure("derive the key of WAL file", io::Error::other(reason))
                })?;
                self.cipher = Some(cipher);
                encrypted_file_header(self.salt, key.id(), &key_salt).to_vec()
            }
            None => file_header(self.salt).to_vec(),
        };
        self.file
            .write_all(&[&header])
            .map_err(|error| self.failure("write WAL file header", error))?;
        self.file_len = header.len() as u64;
        self.shared
            .wal_bytes
            .fetch_add(header.len() as u64, Ordering::Relaxed);
        self.sync_file()?;
        if self.options.fsync {
            self.dir.sync().map_err(|error| Failure {
                op: "fsync WAL directory",
                path: self.dir.path().to_owned(),
                error,
            })?;
        }
        Ok(())
    }

    fn failure(&self, op: &'static str, error: io::Error) -> Failure {
        Failure {
            op,
            path: self.dir.path().join(&self.file_name),
            error,
        }
    }

    /// Fails the group and everything still queued, and marks the store failed.
    fn fail(self, failure: &Failure, group: Vec<Queued>, commands: &Receiver<Command>) {
        let reason = format!(
            "failed to {} `{}`: {}",
            failure.op,
            failure.path.display(),
            failure.error
        );
        tracing::error!(%reason, "WAL write failed; the store refuses appends until reopened");
        let _ = self.shared.failure.set(reason.clone());
        for mut queued in group {
            queued.answer(Err(failure.to_error()));
        }
        while let Ok(command) = commands.try_recv() {
            if let Command::Append(mut queued) = command {
                queued.answer(Err(StoreError::Failed {
                    reason: reason.clone(),
                }));
            }
        }
    }
}

/// A salt for a new WAL file. Not secret-grade randomness, but unknown to
/// senders: std's `RandomState` is keyed from the OS's random source.
fn new_salt() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Truncation keeps 32 of the hash's 64 bits, all equally random.
    RandomState::new().hash_one(nanos) as u32
}
