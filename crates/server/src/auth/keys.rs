//! API keys: `data_dir/auth/keys.json` holds each key's id, name, role,
//! creation time, revocation time and the SHA-256 of the key, never the
//! key. Keys are 256 random bits, so a plain hash is enough (nothing to
//! brute-force). The file is written whole to a temporary file (mode
//! 0600), fsynced and renamed over the old one, so a reader never sees
//! half of it; the CLI writes it offline and a running server re-reads it
//! when it changes ([`super::Guard`]).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AuthError, Role};
use crate::blocks::{format_time, now_unix_ms};

/// The directory under the data directory.
pub const AUTH_DIR: &str = "auth";
const KEYS_FILE: &str = "keys.json";
const FORMAT_VERSION: u32 = 1;
/// Every key starts so, for secret scanners and for people.
pub const KEY_PREFIX: &str = "twk_";
const MAX_NAME_BYTES: usize = 64;

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

pub fn hash_key(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// One key as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    /// Short and public: what logs, the audit log and `keys revoke` use.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    pub created_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_unix_ms: Option<u64>,
}

impl KeyRecord {
    pub fn created(&self) -> String {
        format_time(self.created_unix_ms)
    }

    pub fn revoked(&self) -> Option<String> {
        self.revoked_unix_ms.map(format_time)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    version: u32,
    keys: Vec<KeyRecord>,
}

/// The keys file of a data directory.
#[derive(Clone, Debug)]
pub struct KeyStore {
    path: PathBuf,
}

impl KeyStore {
    pub fn new(data_dir: &Path) -> KeyStore {
        KeyStore {
            path: data_dir.join(AUTH_DIR).join(KEYS_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every key, revoked ones too; none when the file does not exist.
    pub fn load(&self) -> Result<Vec<KeyRecord>, AuthError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(AuthError::io("read", &self.path, source)),
        };
        let file: KeysFile = serde_json::from_slice(&text).map_err(|e| AuthError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if file.version != FORMAT_VERSION {
            return Err(AuthError::Corrupt {
                path: self.path.clone(),
                message: format!("format version {} is not {FORMAT_VERSION}", file.version),
            });
        }
        Ok(file.keys)
    }

    /// Makes a key; returns it (shown once, never stored) and its record.
    pub fn create(&self, name: &str, role: Role) -> Result<(String, KeyRecord), AuthError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > MAX_NAME_BYTES
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        {
            return Err(AuthError::Invalid(format!(
                "a key name is 1 to {MAX_NAME_BYTES} letters, digits, `-`, `_`, `.` or `@`, not `{name}`"
            )));
        }
        let mut keys = self.load()?;
        if keys
            .iter()
            .any(|k| k.name == name && k.revoked_unix_ms.is_none())
        {
            return Err(AuthError::Invalid(format!(
                "a key named `{name}` exists (revoke it first)"
            )));
        }
        let secret: [u8; 32] = rand::random();
        let key = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let hash = hash_key(&key);
        let record = KeyRecord {
            // Derived from the hash: public, unique, and says nothing of the key.
            id: hex(&hash[..6]),
            name: name.to_string(),
            role,
            sha256: hex(&hash),
            created_unix_ms: now_unix_ms(),
            revoked_unix_ms: None,
        };
        keys.push(record.clone());
        self.save(&keys)?;
        Ok((key, record))
    }

    /// Revokes the key with this id, or the live key with this name.
    pub fn revoke(&self, name_or_id: &str) -> Result<KeyRecord, AuthError> {
        let wanted = name_or_id.trim();
        let mut keys = self.load()?;
        let found = keys
            .iter()
            .position(|k| k.id == wanted && k.revoked_unix_ms.is_none())
            .or_else(|| {
                keys.iter()
                    .position(|k| k.name == wanted && k.revoked_unix_ms.is_none())
            })
            .ok_or_else(|| {
                AuthError::Invalid(format!("no live key has the id or name `{wanted}`"))
            })?;
        keys[found].revoked_unix_ms = Some(now_unix_ms());
        let record = keys[found].clone();
        self.save(&keys)?;
        Ok(record)
    }

    fn save(&self, keys: &[KeyRecord]) -> Result<(), AuthError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let text = serde_json::to_vec_pretty(&KeysFile {
            version: FORMAT_VERSION,
            keys: keys.to_vec(),
        })
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = private_file(&tmp)?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| AuthError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| AuthError::io("rename", &self.path, e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| AuthError::io("fsync", dir, e))
    }
}

/// A directory only the owner can enter.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), AuthError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| AuthError::io("create directory", dir, e))
}

/// A new file (truncated) only the owner can read.
fn private_file(path: &Path) -> Result<std::fs::File, AuthError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| AuthError::io("create", path, e))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<KeyHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Who a request is, once its key was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// What a presented key turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Valid(KeyInfo),
    Revoked(KeyInfo),
    Unknown,
}

/// The keys in memory, by hash: one SHA-256 and one map lookup per
/// request, no file I/O.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_hash: HashMap<KeyHash, (KeyInfo, bool)>,
    live: usize,
}

impl KeyRing {
    pub fn new(records: &[KeyRecord]) -> KeyRing {
        let mut ring = KeyRing::default();
        for record in records {
            let Some(hash) = unhex(&record.sha256) else {
                tracing::warn!(id = %record.id, "a key record has a malformed hash; ignored");
                continue;
            };
            let live = record.revoked_unix_ms.is_none();
            ring.live += usize::from(live);
            let info = KeyInfo {
                id: record.id.clone(),
                name: record.name.clone(),
                role: record.role,
            };
            ring.by_hash.insert(hash, (info, live));
        }
        ring
    }

    /// Keys not revoked.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn lookup(&self, key: &str) -> Lookup {
        match self.by_hash.get(&hash_key(key)) {
            Some((info, true)) => Lookup::Valid(info.clone()),
            Some((info, false)) => Lookup::Revoked(info.clone()),
            None => Lookup::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        assert!(store.load().unwrap().is_empty());
        let (key, record) = store.create("alice", Role::Analyst).unwrap();
        assert!(key.starts_with(KEY_PREFIX), "{key}");
        assert!(key.len() >= KEY_PREFIX.len() + 43, "{key}");
        // Only the hash is on disk.
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(&key[KEY_PREFIX.len()..]), "{text}");
        assert!(text.contains(&record.sha256));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let err = store.create("alice", Role::Admin).unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        assert!(store.create("bad name", Role::Admin).is_err());
        let (other, _) = store.create("bob", Role::Viewer).unwrap();
        assert_ne!(key, other);

        let ring = KeyRing::new(&store.load().unwrap());
        assert_eq!(ring.live(), 2);
        let Lookup::Valid(info) = ring.lookup(&key) else {
            panic!("alice's key not found")
        };
        assert_eq!((info.name.as_str(), info.role), ("alice", Role::Analyst));
        assert_eq!(ring.lookup("twk_nope"), Lookup::Unknown);

        let revoked = store.revoke("alice").unwrap();
        assert_eq!(revoked.id, record.id);
        let ring = KeyRing::new(&store.load().unwrap());
        assert_eq!(ring.live(), 1);
        assert!(matches!(ring.lookup(&key), Lookup::Revoked(_)));
        // By id too; a revoked key cannot be revoked again.
        assert!(store.revoke(&record.id).is_err());
        let bob = store.load().unwrap()[1].id.clone();
        store.revoke(&bob).unwrap();
        assert_eq!(KeyRing::new(&store.load().unwrap()).live(), 0);
        // The name is free again.
        store.create("alice", Role::Admin).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        std::fs::write(store.path(), "{not json").unwrap();
        let err = store.load().unwrap_err();
        assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
        assert!(store.create("a", Role::Admin).is_err());
    }
}
