//! Errors of the alert crate.

use std::path::PathBuf;

use crate::labels::Fingerprint;

pub type Result<T, E = AlertError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// A request (a silence, an acknowledgement) has a bad field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no alert with fingerprint {0}")]
    UnknownAlert(Fingerprint),
    #[error("no silence with id `{0}`")]
    UnknownSilence(String),
    #[error("silence `{0}` has already expired")]
    SilenceExpired(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("failed to {action} alert state `{path}`: {source}")]
    StateIo {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The state file exists but cannot be read as alert state: not
    /// overwritten, so nothing is lost; move it away to start empty.
    #[error("alert state `{path}` is corrupt: {message}")]
    CorruptState { path: PathBuf, message: String },
    #[error("receiver `{receiver}`: {message}")]
    Receiver { receiver: String, message: String },
}

/// A configuration mistake, naming the field (`route.routes[1].matchers[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}
