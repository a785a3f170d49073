//! Who may do what: API keys with roles, checked on every listener; the
//! hash-chained audit log of API requests; per-key rate limits on the
//! query API (docs/SECURITY.md).
//!
//! ```text
//!  keys.json (CLI writes) ──poll mtime──> Guard.keys (KeyRing: sha256 -> key)
//!  request ─> credential (Authorization: Bearer / X-Tracewarden-Key)
//!          ─> KeyRing lookup ─> routes::required(method, path) ─> Role::grants
//!          ─> RateLimiter (API reads and actions) ─> handler
//!          ─> AuditLog (API only; a writer thread, batched fsync)
//! ```
//!
//! The receivers and the API get the same [`Guard`] as a tower layer where
//! the server assembles its routers (`lib.rs`), so `ingest` knows nothing
//! of keys.

pub mod audit;
mod guard;
pub mod keys;
pub mod limit;
mod role;
pub mod routes;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use guard::{
    Caller, Guard, IngestGate, KEY_HEADER, Listener, PeerAddr, api_layer, ingest_layer,
};
pub use keys::{KeyRecord, KeyStore};
pub use limit::RateLimitConfig;
pub use role::{Access, Role};

/// Why a key or audit operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("failed to {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl AuthError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> AuthError {
        AuthError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `[auth] enabled`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Keys are required once any exists; with none, only a server on
    /// loopback (or one told `allow_unauthenticated`) starts, unprotected.
    #[default]
    Auto,
    /// Keys are always required (with none, every request is refused).
    On,
    /// No keys are checked. Off loopback, needs `allow_unauthenticated`.
    Off,
}

/// The `[auth]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub enabled: AuthMode,
    /// Start without keys on a non-loopback address (logged loudly at
    /// start-up); `tracewarden serve --insecure-no-auth` sets it.
    pub allow_unauthenticated: bool,
    /// `[auth.rate_limit]`: the per-key budget of the query API.
    pub rate_limit: RateLimitConfig,
    /// `[auth.audit]`: rotation and retention of the audit log.
    pub audit: AuditConfig,
}

/// The `[auth.audit]` section.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// `audit.log` is rotated once it holds this many bytes (at least
    /// 65536).
    pub max_bytes: u64,
    /// Rotated files kept; the oldest beyond are removed (at least 1).
    pub keep_files: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let rotation = audit::Rotation::default();
        AuditConfig {
            max_bytes: rotation.max_bytes,
            keep_files: rotation.keep_files,
        }
    }
}

impl AuditConfig {
    /// The rotation it describes, or why it cannot be used.
    pub fn rotation(&self) -> Result<audit::Rotation, String> {
        if self.max_bytes < 65_536 {
            return Err("[auth.audit] max_bytes must be at least 65536".to_string());
        }
        if self.keep_files == 0 {
            return Err("[auth.audit] keep_files must be at least 1".to_string());
        }
        Ok(audit::Rotation {
            max_bytes: self.max_bytes,
            keep_files: self.keep_files,
        })
    }
}

/// How many results a handler answered; the audit layer records it.
/// Handlers add it as a response extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultCount(pub u64);

/// What a viewer sees in place of an actor (an address, a user id, a
/// payload).
pub fn masked() -> String {
    "[masked]".to_string()
}
