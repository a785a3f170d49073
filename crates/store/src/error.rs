//! Why a store operation failed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::CodecError;

/// `Result` with a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A failure of the store.
///
/// For a caller answering a client: [`StoreError::Overloaded`] is a retryable
/// 429 / `RESOURCE_EXHAUSTED`; [`StoreError::Closed`] a 503 / `UNAVAILABLE`;
/// [`StoreError::TooLarge`] and [`StoreError::Codec`] describe a batch the
/// store will never take (413 / 400); everything else is an internal failure.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// An operating-system call on a WAL file or directory failed.
    #[error("failed to {op} `{path}`: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// More than `max_pending_bytes` wait for the WAL writer; nothing was queued.
    #[error("the WAL writer is overloaded, retry after {retry_after:?}")]
    Overloaded { retry_after: Duration },
    /// A WAL or segment file holds bytes that are not what the writer wrote
    /// (for a WAL file: and replay cannot safely skip or truncate them). For
    /// a segment file, `offset` is where the damaged structure starts: the
    /// footer, or the row group being read.
    #[error("corrupt file `{path}` at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A segment file could not be written, or was refused for a reason
    /// other than damage (invalid options, data the format cannot hold).
    #[error("segment file `{path}`: {reason}")]
    Segment { path: PathBuf, reason: String },
    /// A WAL file or record written by a newer (or unknown) format version.
    /// Replay refuses it rather than skipping data it cannot read.
    #[error("`{path}` holds a {what} of version {version}; this build reads version {supported}")]
    UnsupportedVersion {
        path: PathBuf,
        what: &'static str,
        version: u16,
        supported: u16,
    },
    /// The store was closed (shutdown); it takes no more appends.
    #[error("the store is closed")]
    Closed,
    /// A write or fsync of the WAL failed earlier. The state of the page cache
    /// is unknown after a failed fsync, so the store refuses every append
    /// until it is reopened (which replays what really reached the disk).
    #[error("the WAL failed earlier and refuses appends until the store is reopened: {reason}")]
    Failed { reason: String },
    /// The batch could not be encoded (or a record decoded).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The encoded batch is over the largest record the WAL takes.
    #[error("encoded batch of {bytes} bytes is over the WAL record limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// [`crate::WalOptions`] or [`crate::LifecycleOptions`] that cannot work.
    /// Another process (or another open store in this one) holds the data
    /// directory: two writers would corrupt the WAL.
    #[error(
        "the data directory `{path}` is in use by another tracewarden process (it holds `{path}/LOCK`)"
    )]
    InUse { path: PathBuf },

    #[error("invalid store options: {0}")]
    InvalidOptions(String),
    /// The manifest chain, the retention log or a key file failed.
    #[error(transparent)]
    Integrity(#[from] crate::integrity::IntegrityError),
    /// The encryption key file cannot be used (missing, malformed, readable
    /// by every user). The reason never quotes the file's content.
    #[error("invalid encryption key file `{path}`: {reason}")]
    EncryptionKey { path: PathBuf, reason: String },
    /// An encrypted WAL or segment file, and no encryption key configured.
    /// Nothing was read, skipped or truncated.
    #[error(
        "`{path}` is encrypted (key id {key_id}) but no encryption key is configured (`[store] encryption_key_file`)"
    )]
    KeyRequired { path: PathBuf, key_id: String },
    /// A WAL or segment file encrypted with another key than the configured
    /// one (told apart by key id before anything is decrypted). Nothing was
    /// read, skipped or truncated.
    #[error(
        "`{path}` was encrypted with key id {file_key_id}, the configured key is {configured_key_id}"
    )]
    WrongKey {
        path: PathBuf,
        file_key_id: String,
        configured_key_id: String,
    },
    /// Encrypted data that fails authentication under the right key: it was
    /// modified after it was written (tampering, or damage the WAL checksum
    /// did not catch). `offset` is the WAL record's, or the segment
    /// structure's being read.
    #[error("failed to decrypt `{path}` at offset {offset}: {reason}")]
    Decrypt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A test's failure-injection hook stopped a lifecycle step here
    /// (see [`crate::lifecycle::FailPoint`]).
    #[error("injected failure at {point}")]
    Injected { point: crate::lifecycle::FailPoint },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
