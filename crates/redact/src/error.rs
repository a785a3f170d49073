//! Why redaction could not be set up.

use std::path::PathBuf;

/// A configuration or key-file error, found at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    #[error("redaction rule `{rule}`: {message}")]
    Rule { rule: String, message: String },
    #[error("redaction: {0}")]
    Config(String),
    #[error("failed to {action} the redaction hash key `{path}`")]
    KeyIo {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid redaction hash key `{path}`: {reason}")]
    InvalidKey { path: PathBuf, reason: String },
}

impl RedactError {
    pub(crate) fn rule(rule: &str, message: impl Into<String>) -> RedactError {
        RedactError::Rule {
            rule: rule.to_string(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = RedactError> = std::result::Result<T, E>;
