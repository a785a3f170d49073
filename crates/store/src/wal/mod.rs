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
//! Records within and across files have strictly increasing LSNs, one apart
//! as written. The salt is random per file: a record from another file (a
//! recycled disk block, a copied file) or a WAL frame smuggled inside an
//! attribute value of a batch does not validate in this file, so scanning for
//! the next good record after damage cannot be fooled into replaying it.
//! The header has its own checksum so one flipped bit in the salt is seen as
//! a damaged header rather than as every record being corrupt.
//!
//! # Write path ([`writer`])
//!
//! The caller's task encodes the batch straight into a [`Frame`] (header
//! space then payload) and computes the payload's crc32c. A dedicated writer
//! thread (fsync blocks, so not a tokio worker) takes everything queued,
//! assigns LSNs, fills in each record header (combining the payload crc with
//! the salt and LSN, without reading the payload again), writes the records
//! with one vectored write, calls `fdatasync` once for the whole group, and
//! only then answers every waiting append. Creating a file is followed by an
//! fsync of the directory so the new name survives a crash.
//!
//! # Read path ([`replay`])
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
//! nothing twice.
//!
//! # Trim (`trim.rs`)
//!
//! Once a segment's manifest is durable, every WAL file but the newest whose
//! LSNs are all covered by manifests is deleted and the directory fsynced
//! (see [`crate::lifecycle`]).

pub mod directory;
pub(crate) mod replay;
pub(crate) mod trim;
pub(crate) mod writer;

use serde::{Deserialize, Serialize};

pub use directory::{FsWalDirectory, WalDirectory, WalFile, WalFileReader};
pub use replay::ReplayReport;

/// A log sequence number: the position of a record in the WAL, from 1.
/// 0 means "no record".
pub type Lsn = u64;

/// The first bytes of every WAL file.
pub const MAGIC: &[u8; 5] = b"TWWAL";
/// The file format version written by this build.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 16;
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

/// What the first bytes of a file say about it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileHeader {
    /// A header of the current format: its salt.
    Valid { salt: u32 },
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
    if version != FORMAT_VERSION {
        return FileHeader::UnsupportedVersion(version);
    }
    FileHeader::Valid {
        salt: u32::from_le_bytes([header[8], header[9], header[10], header[11]]),
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
    crc32c::crc32c_combine(crc32c::crc32c(&prefix), payload_crc, payload_len)
}

/// One encoded record on its way to the writer: header space, then payload.
#[derive(Debug)]
pub(crate) struct Frame {
    bytes: Vec<u8>,
    payload_crc: u32,
}

impl Frame {
    /// Encodes `batch` into a frame. Runs in the caller's task.
    pub fn encode(batch: &tracewarden_model::Batch) -> Result<Frame, crate::StoreError> {
        let mut bytes = Vec::with_capacity(RECORD_HEADER_LEN + crate::codec::estimated_len(batch));
        bytes.resize(RECORD_HEADER_LEN, 0);
        crate::codec::encode_into(batch, &mut bytes)?;
        let payload = bytes.get(RECORD_HEADER_LEN..).unwrap_or_default();
        if payload.len() > MAX_RECORD_BYTES {
            return Err(crate::StoreError::TooLarge {
                bytes: payload.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let payload_crc = crc32c::crc32c(payload);
        Ok(Frame { bytes, payload_crc })
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
    fn sealed_frame_checksum_covers_salt_lsn_and_payload() {
        let mut frame = Frame::encode(&tracewarden_model::Batch::default()).unwrap();
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
