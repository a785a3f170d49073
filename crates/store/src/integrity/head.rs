//! `chain.head`: the newest manifest and the end of the retention log, so
//! that removing the newest segments (or the last log lines) shows.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::is_sha256_hex;
use super::error::{IntegrityError, Result};
use super::fsio::{read_capped, write_atomic};
use super::manifest::to_json;
use super::signing::{SigningKey, key_id, sign_hex};

/// The format of `chain.head` this build writes and reads.
pub const HEAD_FORMAT_VERSION: u32 = 1;

const HEAD_LIMIT_BYTES: u64 = 64 * 1024;

/// The content of `chain.head`. Serialised like a manifest (field order, no
/// whitespace, then `\n`); the signature covers it without `signature` and
/// `key_id`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub format_version: u32,
    /// The newest manifest appended to the chain.
    pub segment_id: u64,
    /// SHA-256 (hex) of that manifest's file.
    pub manifest_sha256: String,
    /// How many lines the retention log holds.
    pub retention_entries: u64,
    /// SHA-256 (hex) of the retention log's last line (without its `\n`).
    pub retention_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl ChainHead {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        to_json(&ChainHead {
            signature: None,
            key_id: None,
            ..self.clone()
        })
    }

    /// Parses `chain.head`'s bytes.
    pub fn from_file_bytes(bytes: &[u8]) -> std::result::Result<ChainHead, String> {
        let head: ChainHead = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if head.format_version != HEAD_FORMAT_VERSION {
            return Err(format!(
                "format version {} (this build reads {HEAD_FORMAT_VERSION})",
                head.format_version
            ));
        }
        let hashes = std::iter::once(&head.manifest_sha256).chain(&head.retention_sha256);
        if let Some(bad) = hashes.into_iter().find(|h| !is_sha256_hex(h)) {
            return Err(format!("malformed sha256 {bad:?}"));
        }
        if (head.retention_entries == 0) != head.retention_sha256.is_none() {
            return Err("retention_entries and retention_sha256 disagree".into());
        }
        Ok(head)
    }

    /// Sets (or clears, without a key) the signature.
    pub(crate) fn sign(&mut self, key: Option<&SigningKey>) {
        self.signature = None;
        self.key_id = None;
        if let Some(key) = key {
            self.signature = Some(sign_hex(key, &self.signed_bytes()));
            self.key_id = Some(key_id(&key.verifying_key()));
        }
    }
}

/// Reads `dir/chain.head`; `Ok(None)` when there is none.
pub(crate) fn read_head(dir: &Path) -> Result<Option<ChainHead>> {
    let path = dir.join(super::CHAIN_HEAD_FILE);
    let Some(bytes) = read_capped(&path, HEAD_LIMIT_BYTES)? else {
        return Ok(None);
    };
    ChainHead::from_file_bytes(&bytes)
        .map(Some)
        .map_err(|reason| IntegrityError::invalid(path, reason))
}

/// Replaces `dir/chain.head` durably.
pub(crate) fn write_head(dir: &Path, head: &ChainHead) -> Result<()> {
    let mut bytes = to_json(head);
    bytes.push(b'\n');
    write_atomic(dir, super::CHAIN_HEAD_FILE, &bytes)
}
