//! Why writing or reading the chain failed. Tampering found by `verify` is
//! not an error but a [`Finding`](super::Finding): verification only fails
//! with an error when it cannot run at all.

use std::io;
use std::path::PathBuf;

/// `Result` with an [`IntegrityError`].
pub type Result<T, E = IntegrityError> = std::result::Result<T, E>;

/// A failure of the manifest chain, the retention log or a key file.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum IntegrityError {
    /// An operating-system call failed.
    #[error("failed to {op} `{path}`: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A manifest, `chain.head` or retention log file that cannot be read as
    /// one: bad JSON, unknown fields, a newer format version, unsafe file
    /// names, a file name that does not match its content.
    #[error("invalid `{path}`: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// A key file that does not hold a key in the documented format. The
    /// reason never quotes the file's content.
    #[error("invalid key file `{path}`: {reason}")]
    InvalidKey { path: PathBuf, reason: String },
    /// [`ChainWriter::append`](super::ChainWriter::append) or
    /// [`ChainWriter::record_drop`](super::ChainWriter::record_drop) was asked
    /// for something that would break the chain; nothing was written.
    #[error("refused for segment {segment_id}: {reason}")]
    Refused { segment_id: u64, reason: String },
    /// The chain on disk cannot be extended without hiding what happened to
    /// it (e.g. `chain.head` was deleted while manifests remain, or it is not
    /// signed by the configured key). Run `tracewarden verify` to see why.
    #[error(
        "the manifest chain in `{path}` cannot be extended safely: {reason}; run `tracewarden verify` for details"
    )]
    Unsafe { path: PathBuf, reason: String },
}

impl IntegrityError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        IntegrityError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        IntegrityError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
