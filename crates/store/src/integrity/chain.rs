//! [`ChainWriter`]: appends manifests to the chain and records dropped
//! segments in the retention log, keeping `chain.head` current.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::digest::{is_sha256_hex, sha256_hex};
use super::error::{IntegrityError, Result};
use super::fsio::{
    TMP_SUFFIX, create_dir_durable, list_dir, now_unix_nano, sync_dir, write_atomic,
};
use super::head::{ChainHead, HEAD_FORMAT_VERSION, read_head, write_head};
use super::manifest::{
    Manifest, ReadManifest, manifest_file_name, manifest_id_of_file, read_manifest,
};
use super::retention::{LogRead, RetentionEntry, bounded_reason, read_log};
use super::signing::{SigningKey, VerifyingKey, key_id, verify_hex};
use super::{CHAIN_HEAD_FILE, RETENTION_LOG_FILE};

/// Appends to the manifest chain of one segments directory. One per
/// directory at a time (the store holds it under its lifecycle lock).
///
/// It always continues from what `chain.head` says, not from what else is on
/// disk: if segments or log lines were removed behind its back, the next
/// manifest still links to the missing one, and `verify` reports the gap
/// instead of the writer papering over it.
pub struct ChainWriter {
    dir: PathBuf,
    signing_key: Option<SigningKey>,
    /// What `chain.head` holds (or will hold once written); `None` before the
    /// first manifest.
    head: Option<ChainHead>,
    /// Manifest hashes the retention log records as dropped.
    dropped: HashSet<String>,
    /// Set when a write failed half-way: what reached the disk is unknown,
    /// so the writer refuses everything until it is reopened (which repairs).
    failed: Option<String>,
}

impl fmt::Debug for ChainWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself: only its public id.
        f.debug_struct("ChainWriter")
            .field("dir", &self.dir)
            .field("key_id", &self.key_id())
            .field("head", &self.head)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ChainWriter {
    /// Opens the chain in `segments_dir` (created if missing), signing what it
    /// writes with `signing_key` when given.
    ///
    /// Repairs what a crash can leave: leftover `.tmp` files of its own, a
    /// torn last log line, log lines or one chain of manifests written after
    /// `chain.head` was last updated (adopted only when they link to it and,
    /// with a key, carry valid signatures). Refuses, with
    /// [`IntegrityError::Unsafe`], to extend a chain whose `chain.head` was
    /// removed while manifests remain, or (with a key) is not signed by it:
    /// signing a new head over that would hide the tampering.
    pub fn open(segments_dir: &Path, signing_key: Option<SigningKey>) -> Result<ChainWriter> {
        create_dir_durable(segments_dir)?;
        let dir = segments_dir.to_path_buf();
        let names = list_dir(&dir)?;
        remove_own_tmp_files(&dir, &names)?;

        let verifying_key = signing_key.as_ref().map(SigningKey::verifying_key);
        let mut head = read_head(&dir)?;
        if let (Some(head), Some(key)) = (&head, &verifying_key) {
            check_head_signature(&dir, head, key)?;
        }

        let log_path = dir.join(RETENTION_LOG_FILE);
        let log = read_log(&log_path)?;
        if log.torn_bytes > 0 {
            repair_torn_log(&log_path, &log)?;
        }
        let mut changed = false;
        match &mut head {
            Some(head) => {
                changed |= adopt_log_lines(&log, head, verifying_key.as_ref());
                changed |= adopt_manifests(&dir, &names, head, verifying_key.as_ref());
            }
            None => {
                head = adopt_genesis(&dir, &names, &log, verifying_key.as_ref())?;
                changed = head.is_some();
            }
        }
        let dropped = log
            .lines
            .iter()
            .filter_map(|line| line.entry.as_ref().ok())
            .map(|entry| entry.manifest_sha256.clone())
            .collect();
        let mut writer = ChainWriter {
            dir,
            signing_key,
            head,
            dropped,
            failed: None,
        };
        if changed {
            writer.write_head()?;
        }
        Ok(writer)
    }

    /// The segments directory.
    pub fn segments_dir(&self) -> &Path {
        &self.dir
    }

    /// The head of the chain: the newest manifest and the retention log's end.
    pub fn head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }

    /// The id of the signing key, if there is one.
    pub fn key_id(&self) -> Option<String> {
        self.signing_key
            .as_ref()
            .map(|key| key_id(&key.verifying_key()))
    }

    /// Whether `manifest_sha256` is recorded in the retention log as dropped.
    pub fn is_dropped(&self, manifest_sha256: &str) -> bool {
        self.dropped.contains(manifest_sha256)
    }

    /// Appends `manifest` to the chain: fills in `prev_manifest_sha256` (and
    /// the signature with a key), writes `<id>.manifest.json` durably, then
    /// `chain.head`. Returns the manifest as written and its file's SHA-256.
    ///
    /// For a compaction (`replaces` not empty), first records each replaced
    /// segment in the retention log (reading its manifest, which must still
    /// be there and match the given hash), so the replaced files may be
    /// deleted once this returns.
    ///
    /// The segment id must be above every id appended before. On an error the
    /// manifest may or may not be durable: do not delete the segment's files;
    /// reopening the writer settles it.
    pub fn append(&mut self, mut manifest: Manifest) -> Result<(Manifest, String)> {
        self.check_not_failed(manifest.segment_id)?;
        let id = manifest.segment_id;
        let refuse = |reason: String| IntegrityError::Refused {
            segment_id: id,
            reason,
        };
        manifest.prev_manifest_sha256 = None;
        manifest.signature = None;
        manifest.key_id = None;
        manifest.validate().map_err(&refuse)?;
        if let Some(head) = &self.head
            && id <= head.segment_id
        {
            return Err(refuse(format!(
                "segment ids must increase: the chain is at segment {}",
                head.segment_id
            )));
        }
        let path = self.dir.join(manifest_file_name(id));
        if path.exists() {
            return Err(refuse(format!("`{}` exists", path.display())));
        }
        let replaced = self.read_replaced(&manifest).map_err(&refuse)?;

        for (entry_source, replaced_hash) in replaced {
            if let Some(source) = entry_source {
                let entry =
                    self.entry_for(&source, Some(id), &format!("compacted into segment {id}"));
                self.append_entry(entry, replaced_hash)?;
            }
        }

        manifest.prev_manifest_sha256 = self.head.as_ref().map(|h| h.manifest_sha256.clone());
        if let Some(key) = &self.signing_key {
            manifest.signature = Some(super::signing::sign_hex(key, &manifest.signed_bytes()));
            manifest.key_id = Some(key_id(&key.verifying_key()));
        }
        let bytes = manifest.file_bytes();
        let sha256 = sha256_hex(&bytes);
        if let Err(error) = write_atomic(&self.dir, &manifest_file_name(id), &bytes) {
            self.failed = Some(error.to_string());
            return Err(error);
        }
        let (retention_entries, retention_sha256) = match &self.head {
            Some(head) => (head.retention_entries, head.retention_sha256.clone()),
            None => (0, None),
        };
        self.head = Some(ChainHead {
            format_version: HEAD_FORMAT_VERSION,
            segment_id: id,
            manifest_sha256: sha256.clone(),
            retention_entries,
            retention_sha256,
            signature: None,
            key_id: None,
        });
        self.write_head()?;
        Ok((manifest, sha256))
    }

    /// Records in the retention log that segment `segment_id`, whose manifest
    /// file has SHA-256 `manifest_sha256`, is being dropped for `reason`
    /// (cut to 1 KiB). Call it *before* deleting the segment's files: once it
    /// returns, the drop is durable and `verify` tells it from tampering.
    /// Recording the same manifest twice is a no-op.
    pub fn record_drop(
        &mut self,
        segment_id: u64,
        manifest_sha256: &str,
        reason: &str,
    ) -> Result<()> {
        self.check_not_failed(segment_id)?;
        if self.dropped.contains(manifest_sha256) {
            return Ok(());
        }
        let refuse = |reason: String| IntegrityError::Refused { segment_id, reason };
        if !is_sha256_hex(manifest_sha256) {
            return Err(refuse(
                "the manifest sha256 is not 64 lowercase hex digits".into(),
            ));
        }
        let source = self
            .read_on_chain(segment_id, manifest_sha256)
            .map_err(&refuse)?;
        let entry = self.entry_for(&source, None, reason);
        self.append_entry(entry, manifest_sha256.to_owned())?;
        self.write_head()
    }

    fn check_not_failed(&self, segment_id: u64) -> Result<()> {
        match &self.failed {
            Some(reason) => Err(IntegrityError::Refused {
                segment_id,
                reason: format!(
                    "an earlier write failed ({reason}); reopen the chain writer to repair"
                ),
            }),
            None => Ok(()),
        }
    }

    /// For each replaced segment: its manifest as read (to record), or `None`
    /// when the log already records it dropped; with its hash.
    fn read_replaced(
        &self,
        manifest: &Manifest,
    ) -> std::result::Result<Vec<(Option<ReadManifest>, String)>, String> {
        let mut seen = HashSet::new();
        let mut replaced = Vec::with_capacity(manifest.replaces.len());
        for old in &manifest.replaces {
            if old.segment_id >= manifest.segment_id {
                return Err(format!(
                    "it replaces segment {}, which is not older",
                    old.segment_id
                ));
            }
            if !seen.insert(old.segment_id) {
                return Err(format!("it replaces segment {} twice", old.segment_id));
            }
            if self.dropped.contains(&old.manifest_sha256) {
                replaced.push((None, old.manifest_sha256.clone()));
                continue;
            }
            let read = self.read_on_chain(old.segment_id, &old.manifest_sha256)?;
            replaced.push((Some(read), old.manifest_sha256.clone()));
        }
        Ok(replaced)
    }

    /// Reads segment `segment_id`'s manifest and checks its hash.
    fn read_on_chain(
        &self,
        segment_id: u64,
        manifest_sha256: &str,
    ) -> std::result::Result<ReadManifest, String> {
        let path = self.dir.join(manifest_file_name(segment_id));
        let read = match read_manifest(&path) {
            Ok(Some(read)) => read,
            Ok(None) => return Err(format!("`{}` does not exist", path.display())),
            Err(error) => return Err(error.to_string()),
        };
        if read.sha256 != manifest_sha256 || read.manifest.segment_id != segment_id {
            return Err(format!(
                "`{}` has sha256 {}, not {manifest_sha256}",
                path.display(),
                read.sha256
            ));
        }
        Ok(read)
    }

    fn entry_for(
        &self,
        source: &ReadManifest,
        replaced_by: Option<u64>,
        reason: &str,
    ) -> RetentionEntry {
        let m = &source.manifest;
        let (seq, prev) = match &self.head {
            Some(head) => (head.retention_entries + 1, head.retention_sha256.clone()),
            None => (1, None),
        };
        RetentionEntry {
            seq,
            segment_id: m.segment_id,
            manifest_sha256: source.sha256.clone(),
            manifest_prev_sha256: m.prev_manifest_sha256.clone(),
            spans: m.spans,
            logs: m.logs,
            min_time_unix_nano: m.min_time_unix_nano,
            max_time_unix_nano: m.max_time_unix_nano,
            replaced_by,
            reason: bounded_reason(reason),
            recorded_unix_nano: now_unix_nano(),
            prev_entry_sha256: prev,
            signature: None,
            key_id: None,
        }
    }

    /// Appends one line to the log (fsynced) and moves the head's view of the
    /// log to it; `chain.head` itself is written by the caller.
    fn append_entry(&mut self, entry: RetentionEntry, manifest_sha256: String) -> Result<()> {
        let Some(head) = &mut self.head else {
            return Err(IntegrityError::Refused {
                segment_id: entry.segment_id,
                reason: "no manifest has been appended to this chain".into(),
            });
        };
        let mut line = entry.signed_line(self.signing_key.as_ref());
        let line_sha256 = sha256_hex(&line);
        line.push(b'\n');
        let path = self.dir.join(RETENTION_LOG_FILE);
        let created = !path.exists();
        let written = (|| -> io::Result<()> {
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(&line)?;
            file.sync_data()
        })();
        if let Err(source) = written {
            let error = IntegrityError::io("append to", &path, source);
            self.failed = Some(error.to_string());
            return Err(error);
        }
        if created && let Err(error) = sync_dir(&self.dir) {
            self.failed = Some(error.to_string());
            return Err(error);
        }
        head.retention_entries += 1;
        head.retention_sha256 = Some(line_sha256);
        self.dropped.insert(manifest_sha256);
        Ok(())
    }

    fn write_head(&mut self) -> Result<()> {
        let Some(head) = &mut self.head else {
            return Ok(());
        };
        head.sign(self.signing_key.as_ref());
        if let Err(error) = write_head(&self.dir, head) {
            self.failed = Some(error.to_string());
            return Err(error);
        }
        Ok(())
    }
}

fn remove_own_tmp_files(dir: &Path, names: &[String]) -> Result<()> {
    let head_tmp = format!("{CHAIN_HEAD_FILE}{TMP_SUFFIX}");
    let mut removed = false;
    for name in names {
        let ours = name == &head_tmp
            || name
                .strip_suffix(TMP_SUFFIX)
                .is_some_and(|n| manifest_id_of_file(n).is_some());
        if ours {
            let path = dir.join(name);
            fs::remove_file(&path).map_err(|source| IntegrityError::io("remove", &path, source))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn unsafe_error(dir: &Path, reason: String) -> IntegrityError {
    IntegrityError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    }
}

/// With a key, the head must be signed by it; an unsigned head is accepted
/// only while the chain was never signed (its newest manifest is unsigned
/// too), which is how a key is introduced on an existing store.
fn check_head_signature(dir: &Path, head: &ChainHead, key: &VerifyingKey) -> Result<()> {
    match &head.signature {
        Some(signature) if verify_hex(key, &head.signed_bytes(), signature) => Ok(()),
        Some(_) => Err(unsafe_error(
            dir,
            format!(
                "chain.head is not signed by the configured key (key id {})",
                key_id(key)
            ),
        )),
        None => {
            let newest = read_manifest(&dir.join(manifest_file_name(head.segment_id)))
                .ok()
                .flatten();
            match newest {
                Some(read)
                    if read.sha256 == head.manifest_sha256 && read.manifest.signature.is_none() =>
                {
                    Ok(())
                }
                _ => Err(unsafe_error(
                    dir,
                    "chain.head is unsigned but the chain it names is not an unsigned one".into(),
                )),
            }
        }
    }
}

fn repair_torn_log(path: &Path, log: &LogRead) -> Result<()> {
    tracing::warn!(
        path = %path.display(),
        bytes = log.torn_bytes,
        "cutting a torn last line (a crash while recording a drop) off the retention log"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| IntegrityError::io("open", path, source))?;
    file.set_len(log.complete_len)
        .and_then(|()| file.sync_all())
        .map_err(|source| IntegrityError::io("truncate", path, source))
}

/// Moves the head's view of the log over lines written after it (a crash
/// before `chain.head` was updated). Returns whether it moved.
fn adopt_log_lines(log: &LogRead, head: &mut ChainHead, key: Option<&VerifyingKey>) -> bool {
    let known = usize::try_from(head.retention_entries).unwrap_or(usize::MAX);
    if log.lines.len() < known {
        tracing::warn!(
            recorded = head.retention_entries,
            found = log.lines.len(),
            "the retention log is shorter than chain.head records; `tracewarden verify` reports it"
        );
        return false;
    }
    if known > 0 && log.lines.get(known - 1).map(|l| &l.sha256) != head.retention_sha256.as_ref() {
        tracing::warn!(
            "the retention log's last recorded line differs from chain.head; `tracewarden verify` reports it"
        );
        return false;
    }
    let mut moved = false;
    for line in log.lines.iter().skip(known) {
        let adoptable = line.entry.as_ref().is_ok_and(|entry| {
            entry.seq == head.retention_entries + 1
                && entry.prev_entry_sha256 == head.retention_sha256
                && signed_by(key, entry.signature.as_deref(), || entry.signed_bytes())
        });
        if !adoptable {
            tracing::warn!(
                line = line.line,
                "a retention log line after chain.head does not continue the log; not adopting it"
            );
            break;
        }
        head.retention_entries += 1;
        head.retention_sha256 = Some(line.sha256.clone());
        moved = true;
    }
    moved
}

/// Moves the head over manifests appended after it (a crash before
/// `chain.head` was updated): the next id up whose manifest links to the
/// head, and so on. Returns whether it moved.
fn adopt_manifests(
    dir: &Path,
    names: &[String],
    head: &mut ChainHead,
    key: Option<&VerifyingKey>,
) -> bool {
    let mut newer: Vec<u64> = names
        .iter()
        .filter_map(|name| manifest_id_of_file(name))
        .filter(|&id| id > head.segment_id)
        .collect();
    newer.sort_unstable();
    let mut moved = false;
    for id in newer {
        let read = read_manifest(&dir.join(manifest_file_name(id)))
            .ok()
            .flatten();
        let Some(read) = read.filter(|read| {
            read.manifest.segment_id == id
                && read.manifest.prev_manifest_sha256.as_ref() == Some(&head.manifest_sha256)
                && signed_by(key, read.manifest.signature.as_deref(), || {
                    read.manifest.signed_bytes()
                })
        }) else {
            tracing::warn!(
                segment_id = id,
                "a manifest newer than chain.head does not extend the chain; not adopting it"
            );
            break;
        };
        head.segment_id = id;
        head.manifest_sha256 = read.sha256;
        moved = true;
    }
    moved
}

/// No `chain.head`: a new directory, or a crash right after the very first
/// manifest. Anything else means the head was removed, and is refused.
fn adopt_genesis(
    dir: &Path,
    names: &[String],
    log: &LogRead,
    key: Option<&VerifyingKey>,
) -> Result<Option<ChainHead>> {
    let ids: Vec<u64> = names
        .iter()
        .filter_map(|name| manifest_id_of_file(name))
        .collect();
    if !log.lines.is_empty() {
        return Err(unsafe_error(
            dir,
            "chain.head is missing but the retention log has entries".into(),
        ));
    }
    let [id] = ids.as_slice() else {
        if ids.is_empty() {
            return Ok(None);
        }
        return Err(unsafe_error(
            dir,
            format!("chain.head is missing but {} manifests exist", ids.len()),
        ));
    };
    let read = read_manifest(&dir.join(manifest_file_name(*id)))?;
    match read {
        Some(read)
            if read.manifest.segment_id == *id
                && read.manifest.prev_manifest_sha256.is_none()
                && signed_by(key, read.manifest.signature.as_deref(), || {
                    read.manifest.signed_bytes()
                }) =>
        {
            Ok(Some(ChainHead {
                format_version: HEAD_FORMAT_VERSION,
                segment_id: *id,
                manifest_sha256: read.sha256,
                retention_entries: 0,
                retention_sha256: None,
                signature: None,
                key_id: None,
            }))
        }
        _ => Err(unsafe_error(
            dir,
            format!("chain.head is missing and segment {id}'s manifest does not start a chain"),
        )),
    }
}

/// Without a key anything passes; with one, only a valid signature.
fn signed_by(
    key: Option<&VerifyingKey>,
    signature: Option<&str>,
    signed_bytes: impl FnOnce() -> Vec<u8>,
) -> bool {
    match (key, signature) {
        (None, _) => true,
        (Some(key), Some(signature)) => verify_hex(key, &signed_bytes(), signature),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::integrity::digest::to_hex;

    #[test]
    fn debug_output_shows_the_key_id_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[9; 32]);
        let writer = ChainWriter::open(dir.path(), Some(key.clone())).unwrap();
        let debug = format!("{writer:?}");
        assert!(debug.contains(&key_id(&key.verifying_key())), "{debug}");
        assert!(!debug.contains(&to_hex(&key.to_bytes())), "{debug}");
        assert!(!debug.contains("[9, 9"), "{debug}");
    }

    #[test]
    fn own_tmp_files_are_removed_at_open_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "chain.head.tmp",
            "00000000000000000001.manifest.json.tmp",
            "00000000000000000001.spans.parquet.tmp",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        ChainWriter::open(dir.path(), None).unwrap();
        assert_eq!(
            list_dir(dir.path()).unwrap(),
            ["00000000000000000001.spans.parquet.tmp"]
        );
    }
}
