//! The keyed hash of `hash` rules: HMAC-SHA256 (RFC 2104) with a 32-byte
//! key kept in a file.
//!
//! Keyed, so that a value with little entropy (a user id, an e-mail
//! address) cannot be recovered by hashing guesses without the key; stable,
//! so the same user gives the same output in every span and still joins.
//! Rotating the key changes every output: values hashed before and after
//! no longer join.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use base64::Engine as _;
use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};

use crate::error::{RedactError, Result};

/// SHA-256's block size: keys are padded to it.
const BLOCK: usize = 64;

/// The HMAC-SHA256 key, with the hash states after the padded key
/// precomputed (each hash then clones two states instead of rehashing the key).
#[derive(Clone)]
pub struct HashKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    pub fn new(key: &[u8]) -> HashKey {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut state = Sha256::new();
            state.update(block.map(|b| b ^ byte));
            state
        };
        HashKey {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC-SHA256 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(data);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// Loads the key at `path` (64 hex characters), or creates one from the
    /// operating system's random source (mode 0600) when there is no file.
    pub fn load_or_create(path: &Path) -> Result<HashKey> {
        match fs::read_to_string(path) {
            Ok(text) => HashKey::parse(path, &text),
            Err(error) if error.kind() == io::ErrorKind::NotFound => HashKey::create(path),
            Err(source) => Err(RedactError::KeyIo {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<HashKey> {
        let text = text.trim();
        let bytes = (text.len() == 64)
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten()
            .ok_or_else(|| RedactError::InvalidKey {
                path: path.to_path_buf(),
                reason: "expected 64 hex characters (32 random bytes)".to_string(),
            })?;
        Ok(HashKey::new(&bytes))
    }

    fn create(path: &Path) -> Result<HashKey> {
        let io_error = |action, source| RedactError::KeyIo {
            action,
            path: path.to_path_buf(),
            source,
        };
        let mut key = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| io_error("generate", io::Error::other(e)))?;
        let mut line: String = key.iter().map(|b| format!("{b:02x}")).collect();
        line.push('\n');
        let written = (|| -> io::Result<()> {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(line.as_bytes())?;
            file.sync_all()
        })();
        written.map_err(|source| io_error("create", source))?;
        Ok(HashKey::new(&key))
    }
}

/// How a hash is written into the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "hex" => Some(Encoding::Hex),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }

    /// Appends `hmac:` and the encoded MAC to `out`.
    pub fn write(self, mac: &[u8; 32], out: &mut String) {
        out.push_str(HASH_PREFIX);
        match self {
            Encoding::Hex => {
                for b in mac {
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 0xf)]));
                }
            }
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode_string(mac, out),
        }
    }
}

/// What starts every hashed value, so a reader knows it is not the original.
pub const HASH_PREFIX: &str = "hmac:";

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than a block).
    #[test]
    fn rfc_4231_vectors() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hex(&HashKey::new(key).mac(data)), expected);
        }
    }

    #[test]
    fn stable_per_key_and_different_across_keys() {
        let a = HashKey::new(b"key a");
        let b = HashKey::new(b"key b");
        assert_eq!(a.mac(b"user-42"), a.mac(b"user-42"));
        assert_ne!(a.mac(b"user-42"), b.mac(b"user-42"));
        assert_ne!(a.mac(b"user-42"), a.mac(b"user-43"));
    }

    #[test]
    fn key_file_created_0600_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("redaction.key");
        let created = HashKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = HashKey::load_or_create(&path).unwrap();
        assert_eq!(created.mac(b"x"), loaded.mac(b"x"));
        fs::write(&path, "not hex").unwrap();
        let err = HashKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex"), "{err}");
    }

    #[test]
    fn encodings() {
        let mac = HashKey::new(b"k").mac(b"v");
        let mut hex_out = String::new();
        Encoding::Hex.write(&mac, &mut hex_out);
        assert_eq!(hex_out, format!("hmac:{}", hex(&mac)));
        let mut b64 = String::new();
        Encoding::Base64.write(&mac, &mut b64);
        assert!(b64.starts_with("hmac:") && b64.len() == 5 + 44, "{b64}");
    }
}
