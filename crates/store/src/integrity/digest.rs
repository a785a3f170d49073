//! SHA-256 and hex: the hashes in manifests, the head and the log are
//! lowercase hex strings, so the files can be read and checked by hand
//! (`sha256sum`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// How much of a data file is read at a time while hashing it.
const HASH_BUFFER_BYTES: usize = 256 * 1024;

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes exactly `N` bytes of hex (either case); `None` for anything else.
pub(crate) fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = match pair {
            [high, low] => (nibble(*high)?, nibble(*low)?),
            _ => return None,
        };
        *slot = (high << 4) | low;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether `text` is a SHA-256 as written in our files: 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lowercase hex SHA-256 of a file's bytes and its length, reading it in
/// blocks (data files can be gigabytes).
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; HASH_BUFFER_BYTES];
    let mut total = 0u64;
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let chunk = buffer.get(..read).unwrap_or_default();
        hasher.update(chunk);
        total += chunk.len() as u64;
    }
    Ok((to_hex(&hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = [0x00, 0x7f, 0x80, 0xff, 0x12];
        assert_eq!(to_hex(&bytes), "007f80ff12");
        assert_eq!(from_hex::<5>("007f80ff12"), Some(bytes));
        assert_eq!(from_hex::<5>("007F80FF12"), Some(bytes));
        assert_eq!(from_hex::<5>("007f80ff1"), None);
        assert_eq!(from_hex::<5>("007f80ff1g"), None);
        assert_eq!(from_hex::<2>("é0"), None);
    }

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&sha256_hex(b"")));
        assert!(!is_sha256_hex(&sha256_hex(b"").to_uppercase()));
    }

    #[test]
    fn file_hash_streams_over_several_blocks() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data");
        let content: Vec<u8> = (0..HASH_BUFFER_BYTES * 2 + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &content)?;
        assert_eq!(
            sha256_file(&path)?,
            (sha256_hex(&content), content.len() as u64)
        );
        Ok(())
    }
}
