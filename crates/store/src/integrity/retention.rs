//! `retention.jsonl`: one line per segment deleted on purpose (retention, or
//! replaced by a compaction), written before its files are deleted.
//!
//! Each line is a [`RetentionEntry`] serialised like a manifest (field order,
//! no whitespace). Lines are chained: `prev_entry_sha256` is the SHA-256 of
//! the previous line's bytes (without its `\n`), and `chain.head` holds the
//! count and hash of the last line, so an edited, removed or re-ordered line
//! shows. With a key each line is signed like a manifest.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::{is_sha256_hex, sha256_hex};
use super::error::{IntegrityError, Result};
use super::manifest::to_json;
use super::signing::{SigningKey, key_id, sign_hex};

/// A log line is a few hundred bytes; longer ones are not ours.
pub(crate) const ENTRY_LIMIT_BYTES: usize = 64 * 1024;
/// The longest `reason` kept; longer ones are cut (at a character boundary).
pub(crate) const REASON_LIMIT_BYTES: usize = 1024;

/// One dropped segment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionEntry {
    /// 1 for the first line, then +1 per line.
    pub seq: u64,
    pub segment_id: u64,
    /// SHA-256 (hex) of the dropped segment's manifest file.
    pub manifest_sha256: String,
    /// The dropped manifest's own `prev_manifest_sha256`: the link that lets
    /// `verify` walk the chain through the dropped segment.
    pub manifest_prev_sha256: Option<String>,
    /// What the dropped segment held, for the record.
    pub spans: u64,
    pub logs: u64,
    pub min_time_unix_nano: u64,
    pub max_time_unix_nano: u64,
    /// The compaction segment that replaces it; `None` for a retention drop.
    pub replaced_by: Option<u64>,
    /// Why it was dropped (e.g. `max_age`, `max_total_bytes`, `compacted`).
    pub reason: String,
    pub recorded_unix_nano: u64,
    /// SHA-256 (hex) of the previous line; `None` on the first.
    pub prev_entry_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl RetentionEntry {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        to_json(&RetentionEntry {
            signature: None,
            key_id: None,
            ..self.clone()
        })
    }

    /// The line (without `\n`), signed with `key` when there is one.
    pub(crate) fn signed_line(mut self, key: Option<&SigningKey>) -> Vec<u8> {
        self.signature = None;
        self.key_id = None;
        if let Some(key) = key {
            self.signature = Some(sign_hex(key, &self.signed_bytes()));
            self.key_id = Some(key_id(&key.verifying_key()));
        }
        to_json(&self)
    }

    fn parse(line: &[u8]) -> std::result::Result<RetentionEntry, String> {
        let entry: RetentionEntry = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let hashes = std::iter::once(&entry.manifest_sha256)
            .chain(&entry.manifest_prev_sha256)
            .chain(&entry.prev_entry_sha256);
        for hash in hashes {
            if !is_sha256_hex(hash) {
                return Err(format!("malformed sha256 {hash:?}"));
            }
        }
        Ok(entry)
    }
}

/// Cuts `reason` to [`REASON_LIMIT_BYTES`] at a character boundary.
pub(crate) fn bounded_reason(reason: &str) -> String {
    let mut end = reason.len().min(REASON_LIMIT_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default().to_owned()
}

/// One line of the log as read.
#[derive(Debug)]
pub(crate) struct LogLine {
    /// 1-based line number.
    pub line: u64,
    /// SHA-256 (hex) of the line's bytes, without the `\n`.
    pub sha256: String,
    pub entry: std::result::Result<RetentionEntry, String>,
}

/// The retention log as read.
#[derive(Debug, Default)]
pub(crate) struct LogRead {
    /// Every line ended by `\n`.
    pub lines: Vec<LogLine>,
    /// Byte length of those lines.
    pub complete_len: u64,
    /// Bytes after the last `\n`: a line torn by a crash.
    pub torn_bytes: u64,
}

/// Reads the log at `path` (empty when missing).
pub(crate) fn read_log(path: &Path) -> Result<LogRead> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(LogRead::default()),
        Err(source) => return Err(IntegrityError::io("open", path, source)),
    };
    read_lines(BufReader::new(file)).map_err(|source| IntegrityError::io("read", path, source))
}

fn read_lines(mut reader: impl BufRead) -> io::Result<LogRead> {
    let mut read = LogRead::default();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let cap = u64::try_from(ENTRY_LIMIT_BYTES + 1).unwrap_or(u64::MAX);
        let taken = (&mut reader).take(cap).read_until(b'\n', &mut buffer)?;
        if taken == 0 {
            return Ok(read);
        }
        let line = u64::try_from(read.lines.len()).unwrap_or(u64::MAX) + 1;
        if buffer.last() == Some(&b'\n') {
            buffer.pop();
            read.complete_len += taken as u64;
            read.lines.push(LogLine {
                line,
                sha256: sha256_hex(&buffer),
                entry: RetentionEntry::parse(&buffer),
            });
            continue;
        }
        if buffer.len() <= ENTRY_LIMIT_BYTES {
            // The file ended inside a line.
            read.torn_bytes = taken as u64;
            return Ok(read);
        }
        // An over-long line: hash it whole (it is evidence), streaming.
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut hasher, &buffer);
        let mut length = taken as u64;
        let mut ended = false;
        while !ended {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let (used, found) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            let body = chunk.get(..used - usize::from(found)).unwrap_or_default();
            sha2::Digest::update(&mut hasher, body);
            reader.consume(used);
            length += used as u64;
            ended = found;
        }
        if !ended {
            read.torn_bytes = length;
            return Ok(read);
        }
        read.complete_len += length;
        read.lines.push(LogLine {
            line,
            sha256: super::digest::to_hex(&sha2::Digest::finalize(hasher)),
            entry: Err(format!("longer than {ENTRY_LIMIT_BYTES} bytes")),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(seq: u64, prev: Option<String>) -> RetentionEntry {
        RetentionEntry {
            seq,
            segment_id: seq,
            manifest_sha256: "ab".repeat(32),
            manifest_prev_sha256: None,
            spans: 1,
            logs: 0,
            min_time_unix_nano: 0,
            max_time_unix_nano: 0,
            replaced_by: None,
            reason: "max_age".into(),
            recorded_unix_nano: 5,
            prev_entry_sha256: prev,
            signature: None,
            key_id: None,
        }
    }

    #[test]
    fn lines_are_read_hashed_and_a_torn_tail_is_measured() {
        let first = entry(1, None).signed_line(None);
        let second = entry(2, Some(sha256_hex(&first))).signed_line(None);
        let mut file = Vec::new();
        for line in [&first, &second] {
            file.extend_from_slice(line);
            file.push(b'\n');
        }
        let complete = file.len() as u64;
        file.extend_from_slice(b"{\"seq\":3");
        let read = read_lines(&file[..]).unwrap();
        assert_eq!(read.lines.len(), 2);
        assert_eq!(read.complete_len, complete);
        assert_eq!(read.torn_bytes, 8);
        assert_eq!(read.lines[1].line, 2);
        assert_eq!(read.lines[0].sha256, sha256_hex(&first));
        assert_eq!(
            read.lines[1].entry.as_ref().unwrap(),
            &entry(2, Some(sha256_hex(&first)))
        );
    }

    #[test]
    fn garbage_and_over_long_lines_are_findings_not_errors() {
        let long = vec![b'x'; ENTRY_LIMIT_BYTES * 3];
        let mut file = b"not json\n".to_vec();
        file.extend_from_slice(&long);
        file.push(b'\n');
        file.extend_from_slice(&entry(3, None).signed_line(None));
        file.push(b'\n');
        let read = read_lines(BufReader::with_capacity(1000, &file[..])).unwrap();
        assert_eq!(read.lines.len(), 3);
        assert!(read.lines[0].entry.is_err());
        assert!(
            read.lines[1]
                .entry
                .as_ref()
                .unwrap_err()
                .contains("longer than")
        );
        assert_eq!(read.lines[1].sha256, sha256_hex(&long));
        assert!(read.lines[2].entry.is_ok());
        assert_eq!(read.complete_len, file.len() as u64);
        assert_eq!(read.torn_bytes, 0);
    }

    #[test]
    fn reasons_are_bounded_at_a_character_boundary() {
        let reason = "é".repeat(REASON_LIMIT_BYTES);
        let cut = bounded_reason(&reason);
        assert!(cut.len() <= REASON_LIMIT_BYTES && cut.len() >= REASON_LIMIT_BYTES - 1);
        assert_eq!(bounded_reason("max_age"), "max_age");
    }
}
