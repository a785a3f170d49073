//! The `[redaction]` section of the server configuration, as written.
//!
//! Rules stay strings here (action, detector, key patterns) so that
//! [`crate::Redactor::new`] can check them once at start-up and name the
//! rule in its error; nothing is parsed per span.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Redaction settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Redact every batch before the write-ahead log.
    pub enabled: bool,
    /// What replaces a masked value (or the masked part of one).
    pub marker: String,
    /// Names of built-in rules to turn off (`jwt`, `payment_card`, ...).
    pub disable: Vec<String>,
    /// The HMAC-SHA256 key of `hash` rules: a file of 64 hex characters.
    /// None: `<data_dir>/redaction.key`, generated (mode 0600) on first
    /// start when a rule needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_key_file: Option<PathBuf>,
    /// Rules of the operator, tried before the built-in ones; a rule named
    /// like a built-in one replaces it.
    pub rules: Vec<RuleConfig>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            marker: crate::DEFAULT_MARKER.to_string(),
            disable: Vec::new(),
            hash_key_file: None,
            rules: Vec::new(),
        }
    }
}

/// One rule: what it matches (a key pattern, a value detector, or both)
/// and what it does with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in the start-up log and as the `rule` label of
    /// `tracewarden_redactions_total`.
    pub name: String,
    /// Attribute keys the rule applies to: exact (case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Attribute keys as globs (`*` any run, `?` one character; case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_globs: Vec<String>,
    /// Attribute keys as a regular expression (Rust `regex` syntax).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_regex: Option<String>,
    /// A value detector (`bearer`, `jwt`, `secret_param`, `payment_card`,
    /// `email`, `aws_access_key`, `github_token`, `slack_token`,
    /// `stripe_key`, `google_api_key`, `private_key`): only what it finds is
    /// acted on. Without one, the whole value of a matching key is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// `drop`, `mask` or `hash`.
    pub action: String,
    /// `mask`: characters kept at the end (the last 4 of a card number).
    #[serde(skip_serializing_if = "is_zero")]
    pub keep_last: usize,
    /// `hash`: `hex` (default) or `base64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
