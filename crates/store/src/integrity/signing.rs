//! ed25519 keys for signing manifests, the chain head and the retention log.
//!
//! # Key files
//!
//! - **Signing key** (secret): the 32-byte ed25519 secret seed as 64 hex
//!   characters, optionally followed by a newline. Generated with mode 0600;
//!   loading one that others can read logs a warning.
//! - **Public key**: the 32-byte ed25519 public key as 64 hex characters,
//!   optionally followed by a newline. [`generate_signing_key`] writes it
//!   next to the signing key, as `<signing key file>.pub`.
//!
//! A key's id ([`key_id`]) is the first 16 hex characters of the SHA-256 of
//! the public key; manifests carry it so a reader knows which key to use.
//! Nothing here logs or formats key material: errors name the file only.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer};
use rand::TryRngCore;
use zeroize::Zeroizing;

pub use ed25519_dalek::{SigningKey, VerifyingKey};

use super::digest::{from_hex, sha256_hex, to_hex};
use super::error::{IntegrityError, Result};
use super::fsio::sync_dir;

/// Key files are one line of hex; anything longer is not a key file.
const KEY_FILE_LIMIT: u64 = 1024;

/// The id of a key: the first 16 hex characters of SHA-256(public key).
pub fn key_id(key: &VerifyingKey) -> String {
    let mut id = sha256_hex(key.as_bytes());
    id.truncate(16);
    id
}

/// Where [`generate_signing_key`] puts the public key of the signing key at
/// `path`: `path` with `.pub` appended.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Generates a signing key from the operating system's random source and
/// writes it to `path` (mode 0600) and its public key to
/// [`public_key_path`]`(path)` (mode 0644). Refuses to overwrite either file.
pub fn generate_signing_key(path: &Path) -> Result<SigningKey> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(seed.as_mut())
        .map_err(|error| {
            IntegrityError::io("read random bytes for", path, io::Error::other(error))
        })?;
    let key = SigningKey::from_bytes(&seed);
    let public_path = public_key_path(path);
    if public_path.exists() {
        return Err(IntegrityError::io(
            "create",
            public_path,
            io::Error::from(io::ErrorKind::AlreadyExists),
        ));
    }
    let mut secret_line = Zeroizing::new(to_hex(seed.as_ref()));
    secret_line.push('\n');
    write_new(path, secret_line.as_bytes(), 0o600)?;
    write_verifying_key(&public_path, &key.verifying_key())?;
    Ok(key)
}

/// Writes `key` to a new file at `path` in the public key format.
pub fn write_verifying_key(path: &Path, key: &VerifyingKey) -> Result<()> {
    let line = format!("{}\n", to_hex(key.as_bytes()));
    write_new(path, line.as_bytes(), 0o644)
}

/// Creates `path` (never overwriting) with `mode`, writes `bytes`, and makes
/// it durable.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        // The umask may have narrowed `mode`; never widened it, but the public
        // key should be readable as asked.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    written.map_err(|source| IntegrityError::io("create", path, source))?;
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => sync_dir(Path::new(".")),
    }
}

/// Loads a signing key file (64 hex characters: the secret seed).
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    let text = read_key_file(path)?;
    let seed =
        Zeroizing::new(
            from_hex::<32>(text.trim()).ok_or_else(|| IntegrityError::InvalidKey {
                path: path.to_path_buf(),
                reason: "expected 64 hex characters (the ed25519 secret seed)".into(),
            })?,
        );
    if let Ok(metadata) = fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the signing key file can be read by other users; make it mode 0600"
        );
    }
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads a public key file (64 hex characters).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey> {
    let text = read_key_file(path)?;
    let invalid = |reason: &str| IntegrityError::InvalidKey {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let bytes = from_hex::<32>(text.trim())
        .ok_or_else(|| invalid("expected 64 hex characters (the ed25519 public key)"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("not a valid ed25519 public key"))
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>> {
    let bytes = super::fsio::read_capped(path, KEY_FILE_LIMIT)
        .map_err(|error| match error {
            IntegrityError::Invalid { path, .. } => IntegrityError::InvalidKey {
                path,
                reason: format!("larger than {KEY_FILE_LIMIT} bytes"),
            },
            other => other,
        })?
        .ok_or_else(|| {
            IntegrityError::io("open", path, io::Error::from(io::ErrorKind::NotFound))
        })?;
    let bytes = Zeroizing::new(bytes);
    let text = std::str::from_utf8(&bytes).map_err(|_| IntegrityError::InvalidKey {
        path: path.to_path_buf(),
        reason: "not text".into(),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Signs `message`; the signature as 128 hex characters.
pub(crate) fn sign_hex(key: &SigningKey, message: &[u8]) -> String {
    to_hex(&key.sign(message).to_bytes())
}

/// Whether `signature_hex` is `key`'s signature of `message` (strict
/// verification: no malleable or small-order forms).
pub(crate) fn verify_hex(key: &VerifyingKey, message: &[u8], signature_hex: &str) -> bool {
    match from_hex::<64>(signature_hex) {
        Some(bytes) => key
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_keys_load_back_with_modes_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let key = generate_signing_key(&path).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&public_key_path(&path)), 0o644);

        let loaded = load_signing_key(&path).unwrap();
        assert_eq!(loaded.to_bytes(), key.to_bytes());
        let public = load_verifying_key(&public_key_path(&path)).unwrap();
        assert_eq!(public, key.verifying_key());

        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let id = key_id(&public);
        assert_eq!(id.len(), 16);
        assert_eq!(id, sha256_hex(public.as_bytes())[..16]);

        // Never overwrites.
        assert!(generate_signing_key(&path).is_err());
        assert_eq!(load_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
    }

    #[test]
    fn bad_key_files_are_refused_without_quoting_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        fs::write(&path, "secretsecretsecret").unwrap();
        let message = load_signing_key(&path).unwrap_err().to_string();
        assert!(message.contains("64 hex characters"), "{message}");
        assert!(!message.contains("secretsecret"), "{message}");
        fs::write(&path, "z".repeat(5000)).unwrap();
        assert!(load_verifying_key(&path).is_err());
        assert!(load_verifying_key(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let signature = sign_hex(&key, b"manifest");
        assert_eq!(signature.len(), 128);
        assert!(verify_hex(&key.verifying_key(), b"manifest", &signature));
        assert!(!verify_hex(&key.verifying_key(), b"manifesT", &signature));
        assert!(!verify_hex(&other.verifying_key(), b"manifest", &signature));
        assert!(!verify_hex(&key.verifying_key(), b"manifest", "00"));
    }
}
