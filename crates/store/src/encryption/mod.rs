//! Encryption at rest: one key file encrypts the WAL and the segments.
//!
//! # The key
//!
//! A key file holds 32 random bytes as 64 hex characters on one line
//! ([`generate_key_file`] writes one with mode 0600; `tracewarden
//! encryption-key generate` calls it). [`EncryptionKey::from_file`] refuses a
//! missing file, one that is not 64 hex characters, and one every user may
//! read (a key any local user can read protects nothing at rest); a key
//! readable by its group is loaded with a warning (container secrets are
//! often mounted 0440). Errors name the file and never quote its content.
//!
//! Nothing uses the key directly. HKDF-SHA256 (extract with the salt
//! `"tracewarden"`, then expand) derives:
//!
//! | info | bytes | use |
//! | --- | --- | --- |
//! | `tracewarden key id v1` | 8 | the **key id**, stored in every encrypted file |
//! | `tracewarden wal v1` | 32 | the WAL key |
//! | `tracewarden segment v1` | 32 | the segment key |
//!
//! and each file gets its own AES-256-GCM key from the WAL or segment key and
//! a random 16-byte salt stored in the file (HKDF with that salt, info
//! `tracewarden wal file v1` or `tracewarden segment file v1`). Per-file keys
//! keep the number of messages under one AES-GCM key small and make nonce
//! reuse across files impossible.
//!
//! The key id is derived from the key, so it can be shown and stored without
//! revealing anything about it. A file whose key id is not the configured
//! key's is refused up front with [`StoreError::WrongKey`]: a wrong key is
//! never mistaken for damage, so WAL replay never skips or truncates records
//! because of one. An encrypted file with no key configured gives
//! [`StoreError::KeyRequired`]; a record or page that fails authentication
//! under the right key, [`StoreError::Decrypt`] (tampering).
//!
//! # What is encrypted where
//!
//! - WAL files (`crate::wal`, format version 2): each record's payload is
//!   sealed with AES-256-GCM; the nonce is the record's LSN.
//! - Segment files ([`crate::segment`]): Parquet modular encryption (uniform
//!   encryption with an encrypted footer, AES-GCM): pages, column and offset
//!   indexes and the footer with its key-value metadata are encrypted; the
//!   key id and file salt are the footer's plaintext key metadata.

pub(crate) mod segment;

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::integrity::to_hex;

/// Key files are one line of hex; anything longer is not a key file.
const KEY_FILE_LIMIT: u64 = 1024;
/// Bytes of an AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the random salt each encrypted file stores for its own key.
pub const FILE_SALT_LEN: usize = 16;

/// The 8-byte id of an encryption key, derived from it: shown in errors and
/// stored in encrypted files so a wrong key is recognised before any
/// decryption is tried.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The store's encryption key: the sub-keys derived from a key file.
/// `Debug` shows the key id only; the key material is wiped on drop.
pub struct EncryptionKey {
    id: KeyId,
    wal: Zeroizing<[u8; 32]>,
    segment: Zeroizing<[u8; 32]>,
    /// For the server's own state files (detection checkpoints, alerts).
    file: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Two keys are equal when their ids are (ids are derived from the key).
impl PartialEq for EncryptionKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl EncryptionKey {
    /// The key from 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> EncryptionKey {
        let prk = Salt::new(HKDF_SHA256, b"tracewarden").extract(secret);
        let mut id = [0u8; 8];
        expand(&prk, &[b"tracewarden key id v1"], &mut id);
        let mut wal = Zeroizing::new([0u8; 32]);
        expand(&prk, &[b"tracewarden wal v1"], wal.as_mut());
        let mut segment = Zeroizing::new([0u8; 32]);
        expand(&prk, &[b"tracewarden segment v1"], segment.as_mut());
        let mut file = Zeroizing::new([0u8; 32]);
        expand(&prk, &[b"tracewarden state file v1"], file.as_mut());
        EncryptionKey {
            id: KeyId(id),
            wal,
            segment,
            file,
        }
    }

    /// Loads a key file: 64 hex characters, optionally followed by a newline.
    /// Refused when missing, malformed, or readable by every user.
    pub fn from_file(path: &Path) -> Result<EncryptionKey> {
        let invalid = |reason: String| StoreError::EncryptionKey {
            path: path.to_owned(),
            reason,
        };
        let metadata = fs::metadata(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
        if !metadata.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        let mode = metadata.permissions().mode();
        if mode & 0o004 != 0 {
            return Err(invalid(format!(
                "every user can read it (mode {:o}); make it mode 0600 or 0400",
                mode & 0o777
            )));
        }
        if mode & 0o040 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the encryption key file can be read by its group; make it mode 0600"
            );
        }
        if metadata.len() > KEY_FILE_LIMIT {
            return Err(invalid(format!("larger than {KEY_FILE_LIMIT} bytes")));
        }
        let bytes =
            Zeroizing::new(fs::read(path).map_err(|e| invalid(format!("cannot read it: {e}")))?);
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid("not text".into()))?;
        let text = text.trim();
        if text.len() != 64 {
            return Err(invalid(format!(
                "expected 64 hex characters (32 bytes), found {} characters",
                text.len()
            )));
        }
        let secret = Zeroizing::new(from_hex32(text).ok_or_else(|| {
            invalid("expected 64 hex characters (32 bytes), found other characters".into())
        })?);
        Ok(EncryptionKey::from_bytes(&secret))
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The AES-256-GCM key of the WAL file with `salt`.
    pub(crate) fn wal_file_cipher(
        &self,
        salt: &[u8; FILE_SALT_LEN],
    ) -> Result<RecordCipher, &'static str> {
        let mut key = Zeroizing::new([0u8; 32]);
        let prk = Salt::new(HKDF_SHA256, salt).extract(self.wal.as_ref());
        expand(&prk, &[b"tracewarden wal file v1"], key.as_mut());
        RecordCipher::new(&key)
    }

    /// The Parquet (AES-256) key of the segment file with `salt`.
    pub(crate) fn segment_file_key(&self, salt: &[u8; FILE_SALT_LEN]) -> Zeroizing<Vec<u8>> {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        let prk = Salt::new(HKDF_SHA256, salt).extract(self.segment.as_ref());
        expand(&prk, &[b"tracewarden segment file v1"], key.as_mut());
        key
    }
}

/// The first bytes of a sealed state file.
const SEALED_MAGIC: &[u8; 8] = b"TWSEAL01";

impl EncryptionKey {
    /// Encrypts the whole content of a state file (a detection checkpoint,
    /// the alert state): `TWSEAL01`, the key id, a random salt, then the
    /// content under AES-256-GCM with a key derived (HKDF) from the salt and
    /// `purpose`, which also names what the file is (a checkpoint cannot be
    /// passed off as alert state). A fresh salt per file gives a fresh key,
    /// so the fixed nonce is never reused.
    pub fn seal_file(&self, purpose: &str, content: &[u8]) -> io::Result<Vec<u8>> {
        let mut salt = [0u8; FILE_SALT_LEN];
        random_bytes(&mut salt)?;
        let cipher = self
            .state_file_cipher(purpose, &salt)
            .map_err(io::Error::other)?;
        let mut out =
            Vec::with_capacity(SEALED_MAGIC.len() + 8 + FILE_SALT_LEN + content.len() + TAG_LEN);
        out.extend_from_slice(SEALED_MAGIC);
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&salt);
        let body = out.len();
        out.extend_from_slice(content);
        out.resize(out.len() + TAG_LEN, 0);
        cipher
            .seal(0, out.get_mut(body..).unwrap_or_default())
            .map_err(io::Error::other)?;
        Ok(out)
    }

    /// Whether `bytes` is a sealed state file (of any key).
    pub fn is_sealed(bytes: &[u8]) -> bool {
        bytes.starts_with(SEALED_MAGIC)
    }

    /// Decrypts a file written by [`EncryptionKey::seal_file`] with the
    /// same `purpose`. Errors say whether the key is another one or the
    /// content was altered.
    pub fn open_file(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let rest = sealed
            .strip_prefix(SEALED_MAGIC)
            .ok_or("not an encrypted state file")?;
        let (id, rest) = rest.split_at_checked(8).ok_or("truncated")?;
        if id != self.id.0 {
            let mut other = [0u8; 8];
            other.copy_from_slice(id);
            return Err(format!(
                "encrypted with key {}, not with the configured key {}",
                KeyId(other),
                self.id
            ));
        }
        let (salt, body) = rest.split_at_checked(FILE_SALT_LEN).ok_or("truncated")?;
        let mut salt_bytes = [0u8; FILE_SALT_LEN];
        salt_bytes.copy_from_slice(salt);
        let cipher = self.state_file_cipher(purpose, &salt_bytes)?;
        let mut body = body.to_vec();
        let plain = cipher
            .open(0, &mut body)
            .map_err(|()| "damaged or altered (authentication failed)".to_string())?;
        Ok(plain.to_vec())
    }

    fn state_file_cipher(
        &self,
        purpose: &str,
        salt: &[u8; FILE_SALT_LEN],
    ) -> Result<RecordCipher, &'static str> {
        let mut key = Zeroizing::new([0u8; 32]);
        let prk = Salt::new(HKDF_SHA256, salt).extract(self.file.as_ref());
        expand(
            &prk,
            &[b"tracewarden state file v1 ", purpose.as_bytes()],
            key.as_mut(),
        );
        RecordCipher::new(&key)
    }
}

/// Decodes 64 hex characters (either case).
fn from_hex32(text: &str) -> Option<[u8; 32]> {
    fn nibble(digit: u8) -> Option<u8> {
        char::from(digit)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *slot = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Some(out)
}

/// HKDF output length for ring's `expand`.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &Prk, info: &[&[u8]], out: &mut [u8]) {
    // ring refuses only outputs over 255 hash lengths; ours are 8 and 32 bytes.
    let filled = prk
        .expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out));
    debug_assert!(filled.is_ok(), "HKDF output of {} bytes", out.len());
}

/// Fills `out` from the operating system's random source.
pub(crate) fn random_bytes(out: &mut [u8]) -> io::Result<()> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| io::Error::other("the operating system's random source failed"))
}

/// AES-256-GCM for the records of one WAL file. The nonce is the record's
/// LSN (8 bytes little-endian, then 4 zero bytes): unique under the file's
/// key because LSNs strictly increase within a file and a file is never
/// appended to by another writer than the one that created it (see
/// `crate::wal`).
pub(crate) struct RecordCipher {
    key: LessSafeKey,
}

impl RecordCipher {
    fn new(key: &[u8; 32]) -> Result<RecordCipher, &'static str> {
        // Never fails: a 32-byte key is what AES-256-GCM takes.
        let unbound =
            UnboundKey::new(&AES_256_GCM, key).map_err(|_| "AES-256-GCM refused the key")?;
        Ok(RecordCipher {
            key: LessSafeKey::new(unbound),
        })
    }

    fn nonce(lsn: u64) -> Nonce {
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&lsn.to_le_bytes());
        Nonce::assume_unique_for_key(bytes)
    }

    /// Encrypts `sealed[..len - TAG_LEN]` in place and writes the tag into
    /// the last [`TAG_LEN`] bytes.
    pub fn seal(&self, lsn: u64, sealed: &mut [u8]) -> Result<(), &'static str> {
        let split = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or("record shorter than a tag")?;
        let (plaintext, tag_out) = sealed.split_at_mut(split);
        let tag = self
            .key
            .seal_in_place_separate_tag(Self::nonce(lsn), Aad::empty(), plaintext)
            .map_err(|_| "AES-GCM refused the record")?;
        tag_out.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts a sealed record in place; the plaintext is the returned
    /// prefix. `Err` when it fails authentication.
    pub fn open<'a>(&self, lsn: u64, sealed: &'a mut [u8]) -> Result<&'a [u8], ()> {
        let split = sealed.len().checked_sub(TAG_LEN).ok_or(())?;
        let (ciphertext, tag) = sealed.split_at_mut(split);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| ())?;
        self.key
            .open_in_place_separate_tag(
                Self::nonce(lsn),
                Aad::empty(),
                Tag::from(tag),
                ciphertext,
                0..,
            )
            .map(|plaintext| &*plaintext)
            .map_err(|_| ())
    }
}

/// Generates a key from the operating system's random source and writes it
/// to a new file at `path` (mode 0600, never overwriting). Returns its id.
pub fn generate_key_file(path: &Path) -> Result<KeyId> {
    let io_error = |op: &'static str, e: io::Error| StoreError::io(op, path, e);
    let mut secret = Zeroizing::new([0u8; 32]);
    random_bytes(secret.as_mut()).map_err(|e| io_error("generate a key for", e))?;
    let mut line = Zeroizing::new(to_hex(secret.as_ref()));
    line.push('\n');
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(line.as_bytes())?;
        file.sync_all()
    })();
    written.map_err(|e| io_error("create", e))?;
    let parent: PathBuf = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_owned(),
        None => PathBuf::from("."),
    };
    fs::File::open(&parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| StoreError::io("fsync directory", &parent, e))?;
    Ok(EncryptionKey::from_bytes(&secret).id())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_state_files_round_trip_and_refuse_the_wrong_key_or_purpose() {
        let key = EncryptionKey::from_bytes(&[7; 32]);
        let content = b"client 203.0.113.7 tried 12 passwords";
        let sealed = key.seal_file("detection checkpoint", content).unwrap();
        assert!(EncryptionKey::is_sealed(&sealed));
        assert!(
            !sealed.windows(11).any(|w| w == b"203.0.113.7"),
            "no clear text"
        );
        assert_eq!(
            key.open_file("detection checkpoint", &sealed).unwrap(),
            content
        );
        // Two seals of the same content differ (fresh salt).
        assert_ne!(
            sealed,
            key.seal_file("detection checkpoint", content).unwrap()
        );
        assert!(
            key.open_file("alert state", &sealed).is_err(),
            "another purpose"
        );
        let other = EncryptionKey::from_bytes(&[8; 32]);
        let e = other
            .open_file("detection checkpoint", &sealed)
            .unwrap_err();
        assert!(e.contains("not with the configured key"), "{e}");
        let mut altered = sealed.clone();
        let last = altered.len() - 20;
        altered[last] ^= 1;
        assert!(
            key.open_file("detection checkpoint", &altered)
                .unwrap_err()
                .contains("altered")
        );
        for len in 0..sealed.len() {
            assert!(
                key.open_file("detection checkpoint", &sealed[..len])
                    .is_err()
            );
        }
    }

    #[test]
    fn sub_keys_and_ids_differ_per_key_and_purpose() {
        let a = EncryptionKey::from_bytes(&[1; 32]);
        let b = EncryptionKey::from_bytes(&[2; 32]);
        assert_ne!(a.id(), b.id());
        assert_ne!(*a.wal, *a.segment);
        assert_eq!(a.id(), EncryptionKey::from_bytes(&[1; 32]).id());
        assert_eq!(a.id().to_string().len(), 16);
        assert!(!format!("{a:?}").contains(&to_hex(a.wal.as_ref())));
        let salt = [9u8; FILE_SALT_LEN];
        assert_ne!(
            *a.segment_file_key(&salt),
            *a.segment_file_key(&[8; FILE_SALT_LEN])
        );
    }

    #[test]
    fn records_round_trip_and_detect_tampering_wrong_lsn_and_key() {
        let key = EncryptionKey::from_bytes(&[3; 32]);
        let cipher = key.wal_file_cipher(&[4; FILE_SALT_LEN]).unwrap();
        let mut record = b"attribute value secret-token-42".to_vec();
        let plain_len = record.len();
        record.extend_from_slice(&[0; TAG_LEN]);
        cipher.seal(7, &mut record).unwrap();
        assert!(!record.windows(12).any(|w| w == b"secret-token"));

        let mut copy = record.clone();
        assert_eq!(
            cipher.open(7, &mut copy).unwrap(),
            b"attribute value secret-token-42"
        );
        assert_eq!(plain_len, 31);
        assert!(cipher.open(8, &mut record.clone()).is_err(), "wrong LSN");
        let other = key.wal_file_cipher(&[5; FILE_SALT_LEN]).unwrap();
        assert!(
            other.open(7, &mut record.clone()).is_err(),
            "another file's key"
        );
        for i in 0..record.len() {
            let mut damaged = record.clone();
            damaged[i] ^= 1;
            assert!(cipher.open(7, &mut damaged).is_err(), "byte {i}");
        }
        assert!(cipher.open(7, &mut [0u8; 3]).is_err());
    }

    #[test]
    fn key_files_are_generated_loaded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        let id = generate_key_file(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(EncryptionKey::from_file(&path).unwrap().id(), id);
        assert!(generate_key_file(&path).is_err(), "never overwrites");
        assert_eq!(EncryptionKey::from_file(&path).unwrap().id(), id);

        let check = |content: &str, mode: u32, expected: &str| {
            let bad = dir.path().join("bad.key");
            let _ = fs::remove_file(&bad);
            fs::write(&bad, content).unwrap();
            fs::set_permissions(&bad, fs::Permissions::from_mode(mode)).unwrap();
            let message = EncryptionKey::from_file(&bad).unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("bad.key"), "{message}");
            assert!(!message.contains("zz"), "never quotes the file: {message}");
        };
        check("abcd", 0o600, "found 4 characters");
        check(&"zz".repeat(32), 0o600, "other characters");
        check(&"ab".repeat(32), 0o644, "every user can read it");
        check(&"a".repeat(5000), 0o600, "larger than");
        let missing = EncryptionKey::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(missing, StoreError::EncryptionKey { .. }),
            "{missing}"
        );
    }
}
