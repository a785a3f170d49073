//! Parquet modular encryption of segment files.
//!
//! Uniform encryption with an encrypted footer (AES-GCM-V1, AES-256): every
//! page, the column and offset indexes, and the footer (schema, statistics,
//! key-value metadata) are encrypted with the file's key. The footer's
//! plaintext key metadata says which key: `TWSEG1 | key id (8) | file salt
//! (16)`; the file key is derived from the segment key and the salt (see
//! [`super`]). The AAD prefix, not stored in the file, is
//! `tracewarden segment {id} {spans|logs|resources}`: a file renamed to another
//! segment or kind fails authentication.
//!
//! parquet-rs 60 writes bloom filters unencrypted even in an encrypted file
//! (the Parquet spec's bloom filter modules are not implemented). A bloom
//! filter tells whoever holds the file whether a given trace id, client
//! address, user id or session id is in it, so encrypted segments are
//! written without them (see docs/STORAGE.md for the pruning that costs).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;

use super::{EncryptionKey, FILE_SALT_LEN, KeyId, random_bytes};
use crate::error::StoreError;

const KEY_METADATA_MAGIC: &[u8; 6] = b"TWSEG1";
const KEY_METADATA_LEN: usize = KEY_METADATA_MAGIC.len() + 8 + FILE_SALT_LEN;

fn aad_prefix(id: u64, kind: &str) -> Vec<u8> {
    format!("tracewarden segment {id} {kind}").into_bytes()
}

/// Encryption properties for a new segment file (a fresh salt, so a fresh key).
pub(crate) fn encryption_properties(
    key: &EncryptionKey,
    id: u64,
    kind: &str,
) -> Result<Arc<FileEncryptionProperties>, String> {
    let mut salt = [0u8; FILE_SALT_LEN];
    random_bytes(&mut salt).map_err(|e| e.to_string())?;
    let mut metadata = Vec::with_capacity(KEY_METADATA_LEN);
    metadata.extend_from_slice(KEY_METADATA_MAGIC);
    metadata.extend_from_slice(&key.id().0);
    metadata.extend_from_slice(&salt);
    let file_key = key.segment_file_key(&salt);
    FileEncryptionProperties::builder(file_key.to_vec())
        .with_footer_key_metadata(metadata)
        .with_aad_prefix(aad_prefix(id, kind))
        .with_aad_prefix_storage(false)
        .build()
        .map_err(|e| e.to_string())
}

/// What the footer's key metadata said, as seen by [`KeyCheck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// A tracewarden key id.
    Key(KeyId),
    /// Key metadata that is not tracewarden's.
    Foreign,
}

/// Hands parquet the file key for the configured key, and remembers which
/// key id the file asked for so a failed open can say why.
#[derive(Debug)]
pub(crate) struct KeyCheck {
    key: Option<Arc<EncryptionKey>>,
    seen: Mutex<Option<Seen>>,
}

impl KeyRetriever for KeyCheck {
    fn retrieve_key(&self, metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        let parsed = metadata
            .strip_prefix(KEY_METADATA_MAGIC.as_slice())
            .filter(|rest| rest.len() == 8 + FILE_SALT_LEN)
            .and_then(|rest| {
                let (id, salt) = rest.split_at(8);
                Some((
                    KeyId(<[u8; 8]>::try_from(id).ok()?),
                    <[u8; FILE_SALT_LEN]>::try_from(salt).ok()?,
                ))
            });
        let Some((id, salt)) = parsed else {
            *self.seen.lock() = Some(Seen::Foreign);
            return Err(ParquetError::General(
                "the footer's key metadata is not a tracewarden key id".into(),
            ));
        };
        *self.seen.lock() = Some(Seen::Key(id));
        match &self.key {
            Some(key) if key.id() == id => Ok(key.segment_file_key(&salt).to_vec()),
            Some(_) => Err(ParquetError::General("encrypted with another key".into())),
            None => Err(ParquetError::General("no encryption key configured".into())),
        }
    }
}

impl KeyCheck {
    /// The typed error for a failed open of the file at `path`, when the
    /// key explains it: `None` when the file is not encrypted, or was
    /// encrypted with the configured key (then the failure is damage or
    /// tampering).
    pub(crate) fn key_error(&self, path: &Path) -> Option<StoreError> {
        let seen = *self.seen.lock();
        match (seen?, &self.key) {
            (Seen::Foreign, _) => Some(StoreError::Decrypt {
                path: path.to_owned(),
                offset: 0,
                reason: "encrypted, but not with a tracewarden key (unknown key metadata)".into(),
            }),
            (Seen::Key(id), None) => Some(StoreError::KeyRequired {
                path: path.to_owned(),
                key_id: id.to_string(),
            }),
            (Seen::Key(id), Some(key)) if key.id() != id => Some(StoreError::WrongKey {
                path: path.to_owned(),
                file_key_id: id.to_string(),
                configured_key_id: key.id().to_string(),
            }),
            (Seen::Key(_), Some(_)) => None,
        }
    }

    /// Whether the file asked for a key (it is encrypted).
    pub(crate) fn encrypted(&self) -> bool {
        self.seen.lock().is_some()
    }
}

/// Decryption properties for segment file `id` of `kind`, with the key
/// configured (or none: an encrypted file then fails with
/// [`StoreError::KeyRequired`] through [`KeyCheck::key_error`]).
pub(crate) fn decryption_properties(
    key: Option<Arc<EncryptionKey>>,
    id: u64,
    kind: &str,
) -> Result<(Arc<FileDecryptionProperties>, Arc<KeyCheck>), String> {
    let check = Arc::new(KeyCheck {
        key,
        seen: Mutex::new(None),
    });
    let properties = FileDecryptionProperties::with_key_retriever(check.clone())
        .with_aad_prefix(aad_prefix(id, kind))
        .build()
        .map_err(|e| e.to_string())?;
    Ok((properties, check))
}
