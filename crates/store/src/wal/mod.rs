//! The write-ahead log: every batch is made durable here before it is acknowledged.
//!
//! # On-disk format (version 1)
//!
//! The WAL is a directory (`<data_dir>/wal`) of files named
//! `wal-{first_lsn:020}.log`, where `first_lsn` is the log sequence number
//! (LSN) of the first record the file was created for. Zero-padding makes the
//! lexical order the LSN order. A file is closed and a new one started once
//! adding a record would take it past `segment_bytes` (a single record larger
//! than that gets a file to itself).
//!
//! ```text
//! file   = header record*
//! header = magic "TWWAL" (5 bytes) | format version: u16 LE | reserved: u8 (0)
//!        | salt: u32 LE | crc32c of the 12 bytes before it: u32 LE          (16 bytes)
//! record = length of payload: u32 LE | crc: u32 LE | lsn: u64 LE | payload  (16 + length)
//! crc    = crc32c(salt LE | lsn LE | payload)
//! payload = codec version: u8 | encoded batch                              (see crate::codec)
//! ```
//!
//! # Encrypted files (version 2)
//!
//! With an encryption key configured ([`crate::encryption`]), new files are
//! written in version 2: the version 1 header (with version 2; a build that
//! only reads version 1 reports an unsupported version rather than damage),
//! then the key:
//!
//! ```text
//! header  = magic "TWWAL" | version: u16 LE (2) | flags: u8 (1: encrypted)
//!         | salt: u32 LE | crc32c of the 12 bytes before it: u32 LE
//!         | key id: 8 bytes | key salt: 16 bytes
//!         | crc32c of the 40 bytes before it: u32 LE                     (44 bytes)
//! payload = AES-256-GCM(file key, nonce = lsn LE | 0u32, codec payload) | tag (16 bytes)
//! ```
//!
//! The file key is derived from the WAL key and the file's random key salt.
//! Records are framed exactly as in version 1 and the crc covers the
//! ciphertext, so torn writes and damage are found (and cut or skipped) as
//! before, without the key. A record that passes its crc but fails
//! authentication was modified on purpose: the open fails with
//! [`StoreError::Decrypt`](crate::StoreError::Decrypt) naming the file and
//! offset, and nothing is cut. A file whose key id is not the configured
//! key's fails the open with `WrongKey` before any record is read (a wrong
//! key is never taken for damage); an encrypted file with no key
//! configured, with `KeyRequired`. Version 1 files still replay when a key
//! is configured: the writer starts a new, encrypted file instead of
//! appending to them.
//!
//! **Nonce uniqueness.** A nonce repeats under one key only if one file
//! held two records sealed with the same LSN. LSNs strictly increase within
//! a file as written, and the one way an LSN is written twice is a torn tail:
//! replay cuts the unacknowledged record and its LSN is used again. The
//! writer therefore never appends to an encrypted file it did not create in
//! this process: at open it starts a new file (a new key salt, so a new key),
//! rewriting the header of the last file only when that file holds no
//! record.
//!
//! Records within and across files have strictly increasing LSNs, one apart
//! as written. The salt is random per file: a record from another file (a
//! recycled disk block, a copied file) or a WAL frame smuggled inside an
//! attribute value of a batch does not validate in this file, so scanning for
//! the next good record after damage cannot be fooled into replaying it.
//! The header has its own checksum so one flipped bit in the salt is seen as
//! a damaged header rather than as every record being corrupt.
//!
//! # Write path (`writer`)
//!
//! The caller's task encodes the batch straight into a `Frame` (header
//! space then payload) and computes the payload's crc32c. A dedicated writer
//! thread (fsync blocks, so not a tokio worker) takes everything queued,
//! assigns LSNs, fills in each record header (combining the payload crc with
//! the salt and LSN, without reading the payload again), writes the records
//! with one vectored write, calls `fdatasync` once for the whole group, and
//! only then answers every waiting append. Creating a file is followed by an
//! fsync of the directory so the new name survives a crash.
//!
//! # Read path (`replay`)
//!
//! On open, files are read in LSN order and each valid record is decoded and
//! handed to the hot tier. Damage is handled so nothing is lost silently:
//! - bytes at the end of the *last* file that hold no valid record (a write
//!   torn by a crash: a truncated record, or a bad checksum with nothing valid
//!   after it) were never acknowledged; they are cut off (`tracing::warn!`
//!   with the file, offset and bytes cut) and new records follow the good ones;
//! - a bad record followed by a valid one, or any bad bytes in a file other
//!   than the last, is corruption: it is reported (`tracing::error!` with the
//!   file and offset, counted in [`ReplayReport::corrupt_records`]) and
//!   skipped. Replay resynchronises by scanning forward, byte by byte, for the
//!   next record whose header is plausible and whose checksum validates;
//! - a length over [`MAX_RECORD_BYTES`] is damage, never an allocation;
//! - a file or record of a newer format version stops the open with
//!   [`StoreError::UnsupportedVersion`](crate::StoreError::UnsupportedVersion)
//!   rather than skipping what this build cannot read.
//!
//! Records whose LSN a segment manifest covers are skipped (counted in
//! [`ReplayReport::skipped_records`], not decoded): a crash between a
//! segment's manifest and the removal of the WAL files it covers replays
//! nothing twice. Those the caller of [`crate::Store::open_observed`] asks
//! for are decoded and shown to it, never applied
//! ([`ReplayReport::observed_in_segments`]).
//!
//! # Trim (`trim.rs`)
//!
//! Once a segment's manifest is durable, every WAL file but the newest whose
//! LSNs are all covered by manifests is deleted and the directory fsynced
//! (see [`crate::lifecycle`]), except the files from a [`WalHold`]'s LSN on
//! (see `hold.rs`).

pub mod crc;
pub mod directory;
mod hold;
pub(crate) mod latency;
pub(crate) mod replay;
pub(crate) mod trim;
pub(crate) mod writer;

use serde::{Deserialize, Serialize};

use crate::encryption::{FILE_SALT_LEN, KeyId, RecordCipher, TAG_LEN};

pub use directory::{FsWalDirectory, WalDirectory, WalFile, WalFileReader};
pub use hold::WalHold;
pub use latency::{FSYNC_BUCKETS, FsyncHistogram};
pub use replay::ReplayReport;

/// A log sequence number: the position of a record in the WAL, from 1.
/// 0 means "no record".
pub type Lsn = u64;

/// The first bytes of every WAL file.
pub const MAGIC: &[u8; 5] = b"TWWAL";
/// The file format version written by this build without encryption.
pub const FORMAT_VERSION: u16 = 1;
/// The file format version of encrypted WAL files.
pub const ENCRYPTED_FORMAT_VERSION: u16 = 2;
/// Length of the file header (version 1).
pub const FILE_HEADER_LEN: usize = 16;
/// Length of the file header of an encrypted file (version 2).
pub const ENCRYPTED_FILE_HEADER_LEN: usize = 44;
/// The flag of version 2 headers saying the records are encrypted.
const FLAG_ENCRYPTED: u8 = 1;
/// Length of a record header (length, crc, lsn).
pub const RECORD_HEADER_LEN: usize = 16;
/// The largest payload of one record. A longer length field is damage.
pub const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// Options of the write-ahead log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalOptions {
    /// Start a new WAL file once adding a record would take the current one
    /// past this size, in bytes (default 64 MiB).
    pub segment_bytes: u64,
    /// Bytes queued for the writer (encoded, not yet fsynced) before
    /// appends are refused with `Overloaded` (default 64 MiB). One batch
    /// larger than this is still taken when nothing else is queued.
    pub max_pending_bytes: usize,
    /// Call `fdatasync` before acknowledging (default true). **Unsafe when
    /// false**: an acknowledged batch can be lost in a crash or power cut.
    /// Only for benchmarks and tests.
    pub fsync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 * 1024 * 1024,
            max_pending_bytes: 64 * 1024 * 1024,
            fsync: true,
        }
    }
}

impl WalOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.segment_bytes <= (FILE_HEADER_LEN + RECORD_HEADER_LEN) as u64 {
            return Err(format!(
                "segment_bytes must be over {} (a header and a record), got {}",
                FILE_HEADER_LEN + RECORD_HEADER_LEN,
                self.segment_bytes
            ));
        }
        if self.max_pending_bytes == 0 {
            return Err("max_pending_bytes must be over 0".to_owned());
        }
        Ok(())
    }
}

/// The name of the WAL file whose first record has `first_lsn`.
pub fn file_name(first_lsn: Lsn) -> String {
    format!("wal-{first_lsn:020}.log")
}

/// The first LSN of a WAL file, from its name; `None` for another file.
pub fn parse_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a new WAL file with the given salt.
pub(crate) fn file_header(salt: u32) -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[..5].copy_from_slice(MAGIC);
    header[5..7].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&salt.to_le_bytes());
    let crc = crc32c::crc32c(&header[..12]);
    header[12..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The header of a new encrypted WAL file (version 2).
pub(crate) fn encrypted_file_header(
    salt: u32,
    key_id: KeyId,
    key_salt: &[u8; FILE_SALT_LEN],
) -> [u8; ENCRYPTED_FILE_HEADER_LEN] {
    let mut header = [0u8; ENCRYPTED_FILE_HEADER_LEN];
    header[..5].copy_from_slice(MAGIC);
    header[5..7].copy_from_slice(&ENCRYPTED_FORMAT_VERSION.to_le_bytes());
    header[7] = FLAG_ENCRYPTED;
    header[8..12].copy_from_slice(&salt.to_le_bytes());
    let crc = crc32c::crc32c(&header[..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header[16..24].copy_from_slice(&key_id.0);
    header[24..40].copy_from_slice(key_salt);
    let crc = crc32c::crc32c(&header[..40]);
    header[40..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What the first bytes of a file say about it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileHeader {
    /// A header of the current format: its salt.
    Valid { salt: u32 },
    /// An encrypted file's header (version 2).
    Encrypted {
        salt: u32,
        key_id: KeyId,
        key_salt: [u8; FILE_SALT_LEN],
    },
    /// Our magic, but a version this build does not read.
    UnsupportedVersion(u16),
    /// Shorter than a header, and what is there is a prefix of one: the
    /// file was torn while being created.
    Torn,
    /// Not a WAL header (or a damaged one).
    Invalid(&'static str),
}

pub(crate) fn parse_file_header(bytes: &[u8]) -> FileHeader {
    let Some(header) = bytes.get(..FILE_HEADER_LEN) else {
        let magic_len = bytes.len().min(MAGIC.len());
        return if bytes.get(..magic_len) == MAGIC.get(..magic_len) {
            FileHeader::Torn
        } else {
            FileHeader::Invalid("bad magic")
        };
    };
    if header.get(..5) != Some(MAGIC.as_slice()) {
        return FileHeader::Invalid("bad magic");
    }
    let version = u16::from_le_bytes([header[5], header[6]]);
    let stored_crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    if crc32c::crc32c(&header[..12]) != stored_crc {
        return FileHeader::Invalid("bad header checksum");
    }
    let salt = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version == ENCRYPTED_FORMAT_VERSION {
        return parse_encrypted_header(bytes, salt);
    }
    if version != FORMAT_VERSION {
        return FileHeader::UnsupportedVersion(version);
    }
    FileHeader::Valid { salt }
}

/// The rest of a version 2 header whose first 16 bytes are valid.
fn parse_encrypted_header(bytes: &[u8], salt: u32) -> FileHeader {
    let Some(header) = bytes.get(..ENCRYPTED_FILE_HEADER_LEN) else {
        return FileHeader::Torn;
    };
    let stored_crc = u32::from_le_bytes([header[40], header[41], header[42], header[43]]);
    if crc32c::crc32c(&header[..40]) != stored_crc {
        return FileHeader::Invalid("bad header checksum");
    }
    if header[7] != FLAG_ENCRYPTED {
        return FileHeader::Invalid("unknown header flags");
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&header[16..24]);
    let mut key_salt = [0u8; FILE_SALT_LEN];
    key_salt.copy_from_slice(&header[24..40]);
    FileHeader::Encrypted {
        salt,
        key_id: KeyId(key_id),
        key_salt,
    }
}

/// A record header as read from disk, not yet validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub len: u32,
    pub crc: u32,
    pub lsn: Lsn,
}

impl RecordHeader {
    pub fn parse(bytes: &[u8; RECORD_HEADER_LEN]) -> RecordHeader {
        let [
            l0,
            l1,
            l2,
            l3,
            c0,
            c1,
            c2,
            c3,
            n0,
            n1,
            n2,
            n3,
            n4,
            n5,
            n6,
            n7,
        ] = *bytes;
        RecordHeader {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            lsn: u64::from_le_bytes([n0, n1, n2, n3, n4, n5, n6, n7]),
        }
    }
}

/// The checksum of a record: crc32c over salt, LSN and payload, computed
/// from the crc32c of the payload alone so the writer never reads it again.
pub(crate) fn record_crc(salt: u32, lsn: Lsn, payload_crc: u32, payload_len: usize) -> u32 {
    let mut prefix = [0u8; 12];
    prefix[..4].copy_from_slice(&salt.to_le_bytes());
    prefix[4..].copy_from_slice(&lsn.to_le_bytes());
    crc::combine(crc32c::crc32c(&prefix), payload_crc, payload_len)
}

/// One encoded record on its way to the writer: header space, then payload.
#[derive(Debug)]
pub(crate) struct Frame {
    bytes: Vec<u8>,
    payload_crc: u32,
}

impl Frame {
    /// Encodes `batch` into a frame. Runs in the caller's task. With
    /// `encrypted`, the frame ends with room for the AES-GCM tag (so its
    /// length, counted in the pending bytes, never changes) and is sealed by
    /// the writer with [`Frame::seal_encrypted`], which knows the LSN.
    pub fn encode(
        batch: &tracewarden_model::Batch,
        encrypted: bool,
    ) -> Result<Frame, crate::StoreError> {
        let tag = if encrypted { TAG_LEN } else { 0 };
        let mut bytes =
            Vec::with_capacity(RECORD_HEADER_LEN + crate::codec::estimated_len(batch) + tag);
        bytes.resize(RECORD_HEADER_LEN, 0);
        crate::codec::encode_into(batch, &mut bytes)?;
        bytes.resize(bytes.len() + tag, 0);
        let payload = bytes.get(RECORD_HEADER_LEN..).unwrap_or_default();
        if payload.len() > MAX_RECORD_BYTES {
            return Err(crate::StoreError::TooLarge {
                bytes: payload.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        // An encrypted frame's crc covers the ciphertext: computed when sealed.
        let payload_crc = if encrypted {
            0
        } else {
            crc32c::crc32c(payload)
        };
        Ok(Frame { bytes, payload_crc })
    }

    /// Encrypts the payload for `lsn` with the file's cipher, then fills in
    /// the record header as [`Frame::seal`] does (the crc over the
    /// ciphertext). Runs on the writer thread, once per frame.
    pub(crate) fn seal_encrypted(
        &mut self,
        salt: u32,
        lsn: Lsn,
        cipher: &RecordCipher,
    ) -> Result<(), &'static str> {
        let payload = self
            .bytes
            .get_mut(RECORD_HEADER_LEN..)
            .ok_or("frame shorter than its header")?;
        cipher.seal(lsn, payload)?;
        self.payload_crc = crc32c::crc32c(payload);
        self.seal(salt, lsn);
        Ok(())
    }

    /// Bytes on disk: header and payload.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Fills in the record header for `lsn` in a file with `salt`.
    pub fn seal(&mut self, salt: u32, lsn: Lsn) {
        let payload_len = self.bytes.len().saturating_sub(RECORD_HEADER_LEN);
        // `encode` refused payloads over MAX_RECORD_BYTES, which fits in u32.
        let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
        let crc = record_crc(salt, lsn, self.payload_crc, payload_len);
        if let Some(header) = self.bytes.get_mut(..RECORD_HEADER_LEN) {
            header[..4].copy_from_slice(&len.to_le_bytes());
            header[4..8].copy_from_slice(&crc.to_le_bytes());
            header[8..].copy_from_slice(&lsn.to_le_bytes());
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_lsn_and_parse_back() {
        assert_eq!(file_name(42), "wal-00000000000000000042.log");
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        for bad in [
            "wal-42.log",
            "wal-0000000000000000004x.log",
            "x-00000000000000000042.log",
            "wal-99999999999999999999.log",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_header_round_trips_and_detects_damage() {
        let header = file_header(0xDEAD_BEEF);
        assert_eq!(
            parse_file_header(&header),
            FileHeader::Valid { salt: 0xDEAD_BEEF }
        );
        for cut in 0..FILE_HEADER_LEN {
            assert_eq!(
                parse_file_header(&header[..cut]),
                FileHeader::Torn,
                "cut at {cut}"
            );
        }
        for i in 0..FILE_HEADER_LEN {
            let mut damaged = header;
            damaged[i] ^= 0x10;
            assert!(
                matches!(parse_file_header(&damaged), FileHeader::Invalid(_)),
                "byte {i}"
            );
        }
        assert_eq!(
            parse_file_header(b"PK\x03"),
            FileHeader::Invalid("bad magic")
        );
    }

    #[test]
    fn newer_versions_are_recognised_as_such() {
        let mut header = file_header(1);
        header[5..7].copy_from_slice(&7u16.to_le_bytes());
        let crc = crc32c::crc32c(&header[..12]);
        header[12..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            parse_file_header(&header),
            FileHeader::UnsupportedVersion(7)
        );
    }

    #[test]
    fn encrypted_header_round_trips_and_old_readers_see_a_newer_version() {
        let key_id = KeyId([1, 2, 3, 4, 5, 6, 7, 8]);
        let header = encrypted_file_header(0xFEED, key_id, &[9; FILE_SALT_LEN]);
        assert_eq!(
            parse_file_header(&header),
            FileHeader::Encrypted {
                salt: 0xFEED,
                key_id,
                key_salt: [9; FILE_SALT_LEN],
            }
        );
        // A version 1 reader checks the first 16 bytes only: valid, version 2.
        let first = &header[..FILE_HEADER_LEN];
        assert_eq!(u16::from_le_bytes([first[5], first[6]]), 2);
        assert_eq!(
            crc32c::crc32c(&first[..12]).to_le_bytes(),
            [first[12], first[13], first[14], first[15]]
        );
        for cut in FILE_HEADER_LEN..ENCRYPTED_FILE_HEADER_LEN {
            assert_eq!(
                parse_file_header(&header[..cut]),
                FileHeader::Torn,
                "cut {cut}"
            );
        }
        for i in 0..ENCRYPTED_FILE_HEADER_LEN {
            let mut damaged = header;
            damaged[i] ^= 0x10;
            assert!(
                matches!(parse_file_header(&damaged), FileHeader::Invalid(_)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn encrypted_frames_keep_their_length_and_checksum_the_ciphertext() {
        let key = crate::encryption::EncryptionKey::from_bytes(&[5; 32]);
        let cipher = key.wal_file_cipher(&[6; FILE_SALT_LEN]).unwrap();
        let batch = tracewarden_model::Batch::default();
        let plain = Frame::encode(&batch, false).unwrap();
        let mut frame = Frame::encode(&batch, true).unwrap();
        let len = frame.len();
        assert_eq!(len, plain.len() + TAG_LEN);
        frame.seal_encrypted(3, 11, &cipher).unwrap();
        assert_eq!(frame.len(), len, "the pending-bytes count stays right");
        let bytes = frame.as_bytes();
        let header = RecordHeader::parse(bytes[..RECORD_HEADER_LEN].try_into().unwrap());
        let mut payload = bytes[RECORD_HEADER_LEN..].to_vec();
        assert_eq!(
            header.crc,
            record_crc(3, 11, crc32c::crc32c(&payload), payload.len())
        );
        let opened = cipher.open(11, &mut payload).unwrap();
        assert_eq!(opened, &plain.as_bytes()[RECORD_HEADER_LEN..]);
    }

    #[test]
    fn sealed_frame_checksum_covers_salt_lsn_and_payload() {
        let mut frame = Frame::encode(&tracewarden_model::Batch::default(), false).unwrap();
        frame.seal(5, 9);
        let bytes = frame.as_bytes();
        let header = RecordHeader::parse(bytes[..RECORD_HEADER_LEN].try_into().unwrap());
        let payload = &bytes[RECORD_HEADER_LEN..];
        assert_eq!(header.len as usize, payload.len());
        assert_eq!(header.lsn, 9);
        let mut covered = Vec::new();
        covered.extend_from_slice(&5u32.to_le_bytes());
        covered.extend_from_slice(&9u64.to_le_bytes());
        covered.extend_from_slice(payload);
        assert_eq!(header.crc, crc32c::crc32c(&covered));
        assert_ne!(
            header.crc,
            record_crc(6, 9, crc32c::crc32c(payload), payload.len())
        );
    }

    #[test]
    fn options_are_validated() {
        assert!(WalOptions::default().validate().is_ok());
        assert!(
            WalOptions {
                segment_bytes: 16,
                ..WalOptions::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            WalOptions {
                max_pending_bytes: 0,
                ..WalOptions::default()
            }
            .validate()
            .is_err()
        );
    }
}
